/* store_admin: what an operator does to a store folder from the command
 * line (plaza backup, plaza restore, plaza store check|repair), on its own
 * SQLite connection, while a server may be running on the same folder.
 * Each function prints what it did to out and returns 0, or -1 with err
 * set to a message that says what to do. */
#ifndef PLAZA_STORE_ADMIN_H
#define PLAZA_STORE_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An online, consistent copy of the store in folder `from` into the new
 * folder `to` (VACUUM INTO: one read transaction; the server keeps
 * committing), with a manifest (backup.json). */
int store_backup(const char *from, const char *to, FILE *out, char *err, size_t errlen);

/* Rebuilds the data as it was at at_ms (unix ms; INT64_MAX = everything)
 * from the store or backup folder `from` into the new folder `to`: every
 * record up to at_ms, then a new epoch for every channel, so clients that
 * hold positions from after at_ms are told "not recovered". Refuses a time
 * the log no longer covers exactly (retention). */
int store_restore(const char *from, const char *to, int64_t at_ms, FILE *out,
                  char *err, size_t errlen);

/* Checks a store folder's database (integrity, schema, what it holds).
 * Returns 0 if it is sound, 1 if damaged, -1 if it cannot be read. */
int store_check(const char *dir, FILE *out, char *err, size_t errlen);

/* Copies every readable record of a damaged database into a new one, in
 * order, keeps the damaged file beside it (plaza.db.damaged-<time>) and
 * puts the new one in its place. Channels get a new epoch. Run with the
 * server stopped. */
int store_repair(const char *dir, FILE *out, char *err, size_t errlen);

/* Parses a time for --at: unix milliseconds, or RFC 3339 UTC
 * (2026-12-04T21:05:00Z, with optional .mmm). 0, or -1. */
int store_parse_time(const char *s, int64_t *out_ms);

#endif
