/* store_int: what store.c (the running log) and store_admin.c (the
 * operator's commands) share: the schema and two small SQLite helpers. Not
 * for use outside src/store/. */
#ifndef PLAZA_STORE_INT_H
#define PLAZA_STORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#define STORE_SCHEMA 1
#define STORE_EPOCH_LEN 8

/* Creates the tables of an empty store (idempotent). */
extern const char STORE_SCHEMA_SQL[];

/* PRAGMA quick_check: 0 if "ok", else -1 with the first problem in err. */
int store_quick_check(sqlite3 *db, char *err, size_t errlen);

/* The integer a query returns (its first column of its first row), or def. */
int64_t store_query_int(sqlite3 *db, const char *sql, int64_t def);

#endif
