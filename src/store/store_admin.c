/* store_admin: backup, restore at a time, check and repair of a store
 * folder (see store_admin.h). Every function works on its own connection
 * with a busy timeout, so a running server only sees one more reader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "store/store.h"
#include "store/store_admin.h"
#include "store/store_int.h"

#define BUSY_MS 10000

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Opens an existing store database of folder dir (no create). */
static sqlite3 *open_existing(const char *dir, char *file, size_t filelen,
                              char *err, size_t errlen) {
    if (store_file(dir, file, filelen)) { snprintf(err, errlen, "%s: path too long", dir); return NULL; }
    if (!file_exists(file)) {
        snprintf(err, errlen, "%s: no store here (no plaza.db)", dir);
        return NULL;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", file, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, BUSY_MS);
    return db;
}

/* Creates folder `to` (its parent must exist) for a new store; refuses a
 * folder that already holds one. */
static int new_folder(const char *to, char *file, size_t filelen, char *err, size_t errlen) {
    if (mkdir(to, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create the folder: %s", to, strerror(errno));
        return -1;
    }
    if (store_file(to, file, filelen)) { snprintf(err, errlen, "%s: path too long", to); return -1; }
    if (file_exists(file)) {
        snprintf(err, errlen, "%s already exists: give a new folder (nothing is overwritten)", file);
        return -1;
    }
    return 0;
}

/* A store these functions can read: the current schema, or schema 1
 * (a backup or store of an older Plaza: read as is, its map columns are
 * NULL; what they write is a new database of the current schema). */
static int schema_ok(sqlite3 *db, const char *file, char *err, size_t errlen) {
    int64_t v = store_query_int(db, "SELECT value FROM meta WHERE key = 'schema'", -1);
    if (v >= 1 && v <= STORE_SCHEMA) return 0;
    snprintf(err, errlen, "%s: not a Plaza store of schema %d (found %lld)", file, STORE_SCHEMA,
             (long long)v);
    return -1;
}

/* The columns of a log row, for copies from a database of any schema. */
#define LOG_COLUMNS "seq, time_ms, kind, channel, offset, epoch, payload, key, aux"
#define LOG_NCOLUMNS 9

/* What to select from `log` of database `schema` for LOG_COLUMNS: a
 * schema-1 log has no key and aux (NULL). When that cannot be told (a
 * damaged schema) all columns are asked for: reading map records without
 * their keys would lose them quietly. */
static const char *log_select(sqlite3 *db, const char *schema) {
    return store_has_map_columns(db, schema) == 0
           ? "seq, time_ms, kind, channel, offset, epoch, payload, NULL, NULL" : LOG_COLUMNS;
}

static void epoch_random(char *out) {
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[STORE_EPOCH_LEN];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        for (int i = 0; i < STORE_EPOCH_LEN; i++) r[i] = (unsigned char)(rand() ^ (int)now_ms());
    for (int i = 0; i < STORE_EPOCH_LEN; i++) out[i] = abc[r[i] % 62];
    out[STORE_EPOCH_LEN] = '\0';
}

/* The records that give a channel its stream position: publications and
 * board batches (1, 9: alike for the stream), epochs, leases, map changes
 * (7, 8: a map keeps its entries across a new epoch, and its clients must
 * load them again) and board snapshots (10: the position the state
 * reflects; the same holds for a board). */
#define POSITIONED "kind IN (1, 3, 4, 5, 7, 8, 9, 10) AND NOT (kind IN (1, 5, 9) AND offset = 0)"

/* Appends a new epoch (STORE_REEPOCH) for every channel with a stream, a map or a
 * board in db's log. Returns how many, or -1. */
static int64_t reepoch_all(sqlite3 *db, int64_t t) {
    static const char q[] =
        "INSERT INTO log (time_ms, kind, channel, offset, epoch, payload) "
        "SELECT ?, 4, l.channel, l.offset, ?, NULL FROM log l JOIN "
        " (SELECT channel, max(seq) AS s FROM log WHERE " POSITIONED " GROUP BY channel) m "
        " ON l.seq = m.s WHERE l.channel = ?";
    sqlite3_stmt *chans, *ins;
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT channel FROM log WHERE " POSITIONED,
                           -1, &chans, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_prepare_v2(db, q, -1, &ins, NULL) != SQLITE_OK) { sqlite3_finalize(chans); return -1; }
    /* channels first (the insert must not feed the query it reads) */
    size_t n = 0, cap = 0;
    char **names = NULL;
    int rc;
    while ((rc = sqlite3_step(chans)) == SQLITE_ROW) {
        if (n == cap) {
            char **g = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*g));
            if (!g) { rc = SQLITE_NOMEM; break; }
            names = g;
        }
        if (!(names[n] = strdup((const char *)sqlite3_column_text(chans, 0)))) { rc = SQLITE_NOMEM; break; }
        n++;
    }
    sqlite3_finalize(chans);
    int64_t done = rc == SQLITE_DONE ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        char ep[STORE_EPOCH_LEN + 1];
        epoch_random(ep);
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, t);
        sqlite3_bind_text(ins, 2, ep, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, names[i], -1, SQLITE_STATIC);
        if (done >= 0 && sqlite3_step(ins) != SQLITE_DONE) done = -1;
        else if (done >= 0) done++;
        free(names[i]);
    }
    free(names);
    sqlite3_finalize(ins);
    return done;
}

/* A new, empty store database at file. */
static sqlite3 *create_db(const char *file, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    char *msg = NULL;
    if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, STORE_SCHEMA_SQL, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", file, msg ? msg : db ? sqlite3_errmsg(db) : "cannot create");
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Writes a small JSON value of a path (quotes and backslashes escaped). */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
    fputc('"', f);
}

/* ---------------------------------------------------------------- backup */

int store_backup(const char *from, const char *to, FILE *out, char *err, size_t errlen) {
    char src[4200], dst[4200];
    sqlite3 *db = open_existing(from, src, sizeof(src), err, errlen);
    if (!db) return -1;
    int rc = -1;
    if (schema_ok(db, src, err, errlen) || new_folder(to, dst, sizeof(dst), err, errlen)) goto done;
    int64_t t0 = now_ms();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "VACUUM INTO ?", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_text(st, 1, dst, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        snprintf(err, errlen, "backup into %s failed: %s", dst, sqlite3_errmsg(db));
        unlink(dst);
        goto done;
    }
    sqlite3 *b = NULL;
    if (sqlite3_open_v2(dst, &b, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", dst, b ? sqlite3_errmsg(b) : "cannot open the copy");
        sqlite3_close(b);
        goto done;
    }
    /* the copy is a consistent snapshot: nothing of it was in flight; a copy
     * of an older store is brought to the current schema (it is ours) */
    char why[200];
    sqlite3_exec(b, "PRAGMA journal_mode=WAL; UPDATE meta SET value = 1 WHERE key = 'clean'", NULL, NULL, NULL);
    if (store_migrate(b, why, sizeof(why)))      /* restore reads it as it is anyway */
        fprintf(out, "note: the copy keeps the older schema (%s)\n", why);
    int64_t rows = store_query_int(b, "SELECT count(*) FROM log", 0);
    int64_t last = store_query_int(b, "SELECT time_ms FROM log ORDER BY seq DESC LIMIT 1", 0);
    int64_t seq = store_query_int(b, "SELECT max(seq) FROM log", 0);
    sqlite3_close(b);
    char manifest[4300];
    snprintf(manifest, sizeof(manifest), "%s/backup.json", to);
    FILE *m = fopen(manifest, "w");
    if (!m) {
        snprintf(err, errlen, "%s: %s", manifest, strerror(errno));
        goto done;
    }
    fprintf(m, "{\"taken_at_ms\": %lld, \"source\": ", (long long)t0);
    json_str(m, src);
    fprintf(m, ", \"records\": %lld, \"last_seq\": %lld, \"last_record_ms\": %lld}\n",
            (long long)rows, (long long)seq, (long long)last);
    if (fclose(m) != 0) {
        snprintf(err, errlen, "%s: %s", manifest, strerror(errno));
        goto done;
    }
    fprintf(out, "backup of %s into %s: %lld records, last at %lld, %lld ms\n", src, dst,
            (long long)rows, (long long)last, (long long)(now_ms() - t0));
    rc = 0;
done:
    sqlite3_close(db);
    return rc;
}

/* --------------------------------------------------------------- restore */

int store_restore(const char *from, const char *to, int64_t at_ms, FILE *out,
                  char *err, size_t errlen) {
    char src[4200], dst[4200];
    sqlite3 *s = open_existing(from, src, sizeof(src), err, errlen);
    if (!s) return -1;
    int rc = -1;
    sqlite3 *db = NULL;
    if (schema_ok(s, src, err, errlen)) goto done;
    int64_t since = store_query_int(s, "SELECT value FROM meta WHERE key = 'complete_since'", 0);
    if (at_ms < since) {
        snprintf(err, errlen, "%s covers every write only from %lld (unix ms) on: retention deleted "
                 "older ones; restore an older backup for an earlier time", src, (long long)since);
        goto done;
    }
    if (new_folder(to, dst, sizeof(dst), err, errlen) || !(db = create_db(dst, err, errlen))) goto done;
    sqlite3_close(s);
    s = NULL;
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    /* Every record before the first one later than at_ms, in order (times
     * are taken a little before append, so they are not strictly ordered:
     * cutting by seq keeps the log gapless). */
    int ok = sqlite3_prepare_v2(db, "ATTACH DATABASE ? AS src", -1, &st, NULL) == SQLITE_OK;
    if (ok) {                                   /* ATTACH comes before BEGIN */
        sqlite3_bind_text(st, 1, src, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    ok = ok && sqlite3_exec(db, "BEGIN", NULL, NULL, &msg) == SQLITE_OK;
    char copy[512];                             /* explicit columns: src may be schema 1 */
    snprintf(copy, sizeof(copy), "INSERT INTO main.log (" LOG_COLUMNS ") SELECT %s FROM src.log "
             "WHERE seq < coalesce((SELECT min(seq) FROM src.log WHERE time_ms > ?1), "
             "9223372036854775807) ORDER BY seq", ok ? log_select(db, "src") : "");
    ok = ok && sqlite3_prepare_v2(db, copy, -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, at_ms);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    int64_t rows = ok ? sqlite3_changes64(db) : 0;
    int64_t chans = ok ? reepoch_all(db, now_ms()) : -1;
    ok = ok && chans >= 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) == SQLITE_OK;
    if (!ok) {
        snprintf(err, errlen, "restore into %s failed: %s", dst, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        db = NULL;
        unlink(dst);
        goto done;
    }
    sqlite3_exec(db, "DETACH DATABASE src", NULL, NULL, NULL);
    int64_t last = store_query_int(db, "SELECT time_ms FROM log WHERE kind <> 4 ORDER BY seq DESC LIMIT 1", 0);
    fprintf(out, "restored %s as of %lld into %s: %lld records (the last at %lld), %lld channels "
            "under a new epoch\n", src, (long long)at_ms, dst, (long long)rows, (long long)last,
            (long long)chans);
    rc = 0;
done:
    sqlite3_close(s);
    sqlite3_close(db);
    return rc;
}

/* ----------------------------------------------------------------- check */

int store_check(const char *dir, FILE *out, char *err, size_t errlen) {
    char file[4200];
    sqlite3 *db = open_existing(dir, file, sizeof(file), err, errlen);
    if (!db) return -1;
    sqlite3_stmt *st;
    int problems = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        fprintf(out, "%s: damaged: %s\n", file, sqlite3_errmsg(db));
        problems = 1;
    } else {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *line = (const char *)sqlite3_column_text(st, 0);
            if (line && strcmp(line, "ok") != 0) {
                if (problems++ < 20) fprintf(out, "%s: damaged: %s\n", file, line);
            }
        }
        if (rc != SQLITE_DONE) {
            fprintf(out, "%s: damaged: %s\n", file, sqlite3_errmsg(db));
            problems++;
        }
        sqlite3_finalize(st);
    }
    if (!problems && schema_ok(db, file, err, errlen)) {
        fprintf(out, "%s\n", err);
        problems = 1;
    }
    if (!problems) {
        int64_t v = store_query_int(db, "SELECT value FROM meta WHERE key = 'schema'", -1);
        fprintf(out, "%s: sound; %lld records, %lld channels, from %lld to %lld (unix ms); "
                "complete since %lld; %s%s\n", file,
                (long long)store_query_int(db, "SELECT count(*) FROM log", 0),
                (long long)store_query_int(db, "SELECT count(DISTINCT channel) FROM log", 0),
                (long long)store_query_int(db, "SELECT min(time_ms) FROM log", 0),
                (long long)store_query_int(db, "SELECT max(time_ms) FROM log", 0),
                (long long)store_query_int(db, "SELECT value FROM meta WHERE key = 'complete_since'", 0),
                store_query_int(db, "SELECT value FROM meta WHERE key = 'clean'", 1)
                    ? "closed cleanly" : "open, or not closed cleanly",
                v < STORE_SCHEMA ? "; an older schema (Plaza brings it up to date when it opens it)"
                                 : "");
    } else {
        fprintf(out, "%s: run `plaza store repair --store %s` with the server stopped (it keeps "
                "the damaged file), or restore a backup\n", file, dir);
    }
    sqlite3_close(db);
    return problems ? 1 : 0;
}

/* ---------------------------------------------------------------- repair */

/* Copies the rows of src readable from seq `from` on into ins; returns the
 * seq to probe next after an unreadable stretch, or -1 at the end. */
static int64_t copy_run(sqlite3 *src, const char *cols, sqlite3_stmt *ins, int64_t from,
                        int64_t *copied) {
    char q[256];
    snprintf(q, sizeof(q), "SELECT %s FROM log WHERE seq >= ? ORDER BY seq", cols);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(src, q, -1, &st, NULL) != SQLITE_OK) return from + 1;
    sqlite3_bind_int64(st, 1, from);
    int64_t last = from - 1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        sqlite3_reset(ins);
        for (int c = 0; c < LOG_NCOLUMNS; c++)
            sqlite3_bind_value(ins, c + 1, sqlite3_column_value(st, c));
        if (sqlite3_step(ins) == SQLITE_DONE) ++*copied;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? -1 : last + 1;
}

/* After an unreadable row at seq, the next seq that reads (growing jumps),
 * or -1 if none does up to max. */
static int64_t probe_next(sqlite3 *src, int64_t seq, int64_t max) {
    for (int64_t jump = 1; seq + jump <= max && jump > 0; jump *= 2) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(src, "SELECT seq FROM log WHERE seq >= ? ORDER BY seq LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK) continue;
        sqlite3_bind_int64(st, 1, seq + jump);
        int rc = sqlite3_step(st);
        int64_t got = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW) return got;
        if (rc == SQLITE_DONE) return -1;
    }
    return -1;
}

int store_repair(const char *dir, FILE *out, char *err, size_t errlen) {
    char file[4200], tmp[4300], kept[4300];
    int c = store_check(dir, out, err, errlen);
    if (c <= 0) {
        if (c == 0) fprintf(out, "nothing to repair\n");
        return c;
    }
    sqlite3 *src = open_existing(dir, file, sizeof(file), err, errlen);
    if (!src) return -1;
    snprintf(tmp, sizeof(tmp), "%s.repairing", file);
    unlink(tmp);
    sqlite3 *db = create_db(tmp, err, errlen);
    if (!db) { sqlite3_close(src); return -1; }
    sqlite3_stmt *ins = NULL;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO log (" LOG_COLUMNS ") "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &ins, NULL);
    const char *cols = log_select(src, "main");          /* the damaged file may be schema 1 */
    int64_t max = store_query_int(src, "SELECT max(seq) FROM log", INT64_MAX / 4), copied = 0, holes = 0;
    for (int64_t at = 0; at >= 0 && ins;) {
        int64_t bad = copy_run(src, cols, ins, at, &copied);
        if (bad < 0) break;
        holes++;
        at = probe_next(src, bad, max);
    }
    sqlite3_finalize(ins);
    int64_t chans = reepoch_all(db, now_ms());
    int ok = ins && chans >= 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    sqlite3_close(src);
    if (!ok) {
        snprintf(err, errlen, "repair: writing %s failed", tmp);
        unlink(tmp);
        return -1;
    }
    snprintf(kept, sizeof(kept), "%s.damaged-%lld", file, (long long)now_ms());
    if (rename(file, kept) != 0 || rename(tmp, file) != 0) {
        snprintf(err, errlen, "repair: cannot swap the files: %s", strerror(errno));
        return -1;
    }
    char side[4400];
    snprintf(side, sizeof(side), "%s-wal", file);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", file);
    unlink(side);
    fprintf(out, "repaired %s: %lld readable records kept (%lld unreadable stretches skipped), "
            "%lld channels under a new epoch; the damaged file is %s\n", file, (long long)copied,
            (long long)holes, (long long)chans, kept);
    return 0;
}

/* ------------------------------------------------------------------ time */

int store_parse_time(const char *s, int64_t *out_ms) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && errno == 0 && v >= 0) { *out_ms = v; return 0; }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) return -1;
    int ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) ms = ms * 10 + (*p - '0');
        if (!digits) return -1;
        for (; digits < 3; digits++) ms *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0) return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    *out_ms = (int64_t)t * 1000 + ms;
    return 0;
}
