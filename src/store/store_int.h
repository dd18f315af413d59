/* store_int: what store.c (the running log) and store_admin.c (the
 * operator's commands) share: the schema and two small SQLite helpers. Not
 * for use outside src/store/. */
#ifndef PLAZA_STORE_INT_H
#define PLAZA_STORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

/* Schema 2 added the map columns `key` and `aux` to `log` (schema 1 had
 * seven columns and is migrated in place by store_migrate). */
#define STORE_SCHEMA 2
#define STORE_EPOCH_LEN 8

/* Creates the tables of an empty store (idempotent). */
extern const char STORE_SCHEMA_SQL[];

/* Brings a schema-1 database to STORE_SCHEMA in one transaction (nothing
 * to do for any other schema). 0, or -1 with the reason in err. */
int store_migrate(sqlite3 *db, char *err, size_t errlen);

/* 1 if `log` of database `schema` ("main", "src") has the map columns, 0
 * if not (schema 1), -1 if that cannot be read. */
int store_has_map_columns(sqlite3 *db, const char *schema);

/* PRAGMA quick_check: 0 if "ok", else -1 with the first problem in err. */
int store_quick_check(sqlite3 *db, char *err, size_t errlen);

/* The integer a query returns (its first column of its first row), or def. */
int64_t store_query_int(sqlite3 *db, const char *sql, int64_t def);

#endif
