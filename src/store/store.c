/* store: the durable log on SQLite (see store.h). One connection, used by
 * the caller before the first append (replay) and by the store's thread
 * afterwards (commits, retention); prepared statements for the insert and
 * the retention scan; a queue of copied records guarded by a mutex. */
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include <uv.h>
#include "obs/log.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/store_retain.h"

#define RETAIN_EVERY_NS 50000000ull      /* a retention step every 50 ms at most */

typedef struct srec {               /* a queued record and its callback */
    struct srec *next;
    uint64_t enq_ns;                /* when it was appended */
    store_rec r;
    store_done_fn done;
    void *ud;
    char data[];                    /* channel NUL epoch NUL payload key aux */
} srec;

struct store {
    sqlite3 *db;
    sqlite3_stmt *insert, *scan, *del;
    store_opts o;
    int was_clean;
    store_retainer *retainer;       /* NULL: no retention */
    uint64_t retain_next_ns;        /* when the next retention step is due */
    uv_thread_t thread;
    uv_mutex_t lock;                /* guards the queue and stop */
    uv_cond_t cond;
    srec *head, *tail;
    int stop, running;
    int idle;                       /* the thread waits for records (appends wake it) */
    uint64_t last_end_ns;           /* when the last commit ended */
    _Atomic uint64_t records, commits, failed, queued, commit_us_max, lag_us_max;
    _Atomic uint64_t rows, deleted, bytes;
    _Atomic int failing;
};

/* ---------------------------------------------------------------- open */

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

/* PRAGMA quick_check: "ok", or the first problem. */
int store_quick_check(sqlite3 *db, char *err, size_t errlen) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = sqlite3_step(st), ok = rc == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    if (!ok) snprintf(err, errlen, "%s", rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
                                                        : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* key and aux come last: schema 1 ended at payload, and ALTER TABLE can
 * only add columns at the end, so old and new databases look the same. */
const char STORE_SCHEMA_SQL[] =
    "CREATE TABLE IF NOT EXISTS log ("
    " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " channel TEXT NOT NULL, offset INTEGER NOT NULL, epoch TEXT NOT NULL, payload BLOB,"
    " key BLOB, aux BLOB);"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO meta VALUES ('schema', 2);"
    "INSERT OR IGNORE INTO meta VALUES ('clean', 1);";

int store_has_map_columns(sqlite3 *db, const char *schema) {
    char *q = sqlite3_mprintf("SELECT count(*) FROM pragma_table_info('log', %Q) "
                              "WHERE name IN ('key', 'aux')", schema);
    int64_t n = q ? store_query_int(db, q, -1) : -1;
    sqlite3_free(q);
    return n == 2 ? 1 : n < 0 ? -1 : 0;
}

/* The version is read inside the write transaction: two processes opening
 * the same old store at once must not both add the columns. */
int store_migrate(sqlite3 *db, char *err, size_t errlen) {
    if (exec(db, "BEGIN IMMEDIATE", err, errlen)) return -1;
    int64_t v = store_query_int(db, "SELECT value FROM meta WHERE key = 'schema'", -1);
    if (v == 1 && (exec(db, "ALTER TABLE log ADD COLUMN key BLOB;"
                            "ALTER TABLE log ADD COLUMN aux BLOB;"
                            "UPDATE meta SET value = 2 WHERE key = 'schema'", err, errlen))) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (exec(db, "COMMIT", err, errlen)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* The integer a query returns (its first column), or def. */
int64_t store_query_int(sqlite3 *db, const char *sql, int64_t def) {
    sqlite3_stmt *st;
    int64_t v = def;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return def;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void update_bytes(store *s) {
    int64_t pages = store_query_int(s->db, "PRAGMA page_count", 0);
    int64_t size = store_query_int(s->db, "PRAGMA page_size", 4096);
    atomic_store(&s->bytes, (uint64_t)(pages * size));
}

static int prepare(store *s, const char *sql, sqlite3_stmt **st) {
    return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK ? 0 : -1;
}

static int setup(store *s, char *err, size_t errlen) {
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA wal_autocheckpoint=%d;",
             s->o.sync ? "FULL" : "NORMAL", s->o.checkpoint_pages > 0 ? s->o.checkpoint_pages : 100);
    char why[200];
    if (store_quick_check(s->db, why, sizeof(why))) {
        snprintf(err, errlen, "the database is damaged (%s): run `plaza store check`, "
                 "restore a backup, or move the file away to start empty", why);
        return STORE_ERR_CORRUPT;
    }
    if (exec(s->db, pragmas, why, sizeof(why)) || exec(s->db, STORE_SCHEMA_SQL, why, sizeof(why)) ||
        store_migrate(s->db, why, sizeof(why))) {
        snprintf(err, errlen, "cannot set up the database: %s", why);
        return STORE_ERR_IO;
    }
    int64_t v = store_query_int(s->db, "SELECT value FROM meta WHERE key = 'schema'", -1);
    if (v != STORE_SCHEMA) {
        snprintf(err, errlen, "not a Plaza store of schema %d (found %lld)", STORE_SCHEMA, (long long)v);
        return STORE_ERR_CORRUPT;
    }
    s->was_clean = store_query_int(s->db, "SELECT value FROM meta WHERE key = 'clean'", 1) != 0;
    /* From here until store_close, a crash leaves the store marked unclean. */
    if (exec(s->db, "UPDATE meta SET value = 0 WHERE key = 'clean'", why, sizeof(why))) {
        snprintf(err, errlen, "cannot write the database: %s", why);
        return STORE_ERR_IO;
    }
    atomic_store(&s->rows, (uint64_t)store_query_int(s->db, "SELECT count(*) FROM log", 0));
    update_bytes(s);
    if (prepare(s, "INSERT INTO log (time_ms, kind, channel, offset, epoch, payload, key, aux) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &s->insert) ||
        prepare(s, "SELECT seq, time_ms, kind, channel, offset, epoch, key FROM log "
                   "WHERE seq >= ? ORDER BY seq LIMIT ?", &s->scan) ||
        prepare(s, "DELETE FROM log WHERE seq = ?", &s->del)) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
        return STORE_ERR_IO;
    }
    return STORE_OK;
}

static void store_thread(void *arg);

/* Frees what store_open made before the thread and locks. */
static void store_close_db(store *s) {
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->scan);
    sqlite3_finalize(s->del);
    sqlite3_close(s->db);
    store_retainer_free(s->retainer);
    free(s);
}

store *store_open(const char *path, const store_opts *o, char *err, size_t errlen) {
    store *s = calloc(1, sizeof(*s));
    if (!s) { snprintf(err, errlen, "out of memory"); return NULL; }
    s->o = *o;
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
        sqlite3_close(s->db);
        free(s);
        return NULL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);      /* a backup or check holding a read lock */
    char why[320];
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(err, errlen, "%s: the database is read-only (file or folder permissions, or a "
                 "read-only mount): Plaza must be able to write its store", path);
        sqlite3_close(s->db);
        free(s);
        return NULL;
    }
    if (setup(s, why, sizeof(why)) != STORE_OK) {
        snprintf(err, errlen, "%s: %s", path, why);
        store_close_db(s);
        return NULL;
    }
    if (o->history && !(s->retainer = store_retainer_new(o->history, o->history_ud, o->retain_ms,
                                                          o->retain_batch))) {
        snprintf(err, errlen, "out of memory");
        store_close_db(s);
        return NULL;
    }
    uv_mutex_init(&s->lock);
    uv_cond_init(&s->cond);
    return s;
}

/* ------------------------------------------------------------- appends */

/* Starts the thread (commits, retention) once; under the lock. */
static int start_locked(store *s) {
    if (s->running) return STORE_OK;
    if (s->stop) return STORE_ERR_CLOSED;
    s->retain_next_ns = uv_hrtime() + RETAIN_EVERY_NS;
    if (uv_thread_create(&s->thread, store_thread, s) != 0) return STORE_ERR_NOMEM;
    s->running = 1;
    return STORE_OK;
}

int store_start(store *s) {
    uv_mutex_lock(&s->lock);
    int rc = start_locked(s);
    uv_mutex_unlock(&s->lock);
    return rc;
}

/* Copies len bytes of p to *at and moves *at past them; NULL stays NULL. */
static const void *copy_bytes(char **at, const void *p, size_t len) {
    if (!p) return NULL;
    void *out = memcpy(*at, p, len);
    *at += len;
    return out;
}

int store_append(store *s, const store_rec *r, store_done_fn done, void *ud) {
    size_t cl = strlen(r->channel) + 1, el = strlen(r->epoch ? r->epoch : "") + 1;
    size_t pl = r->payload ? r->payload_len : 0, kl = r->key ? r->key_len : 0,
           al = r->aux ? r->aux_len : 0;
    srec *q = malloc(sizeof(*q) + cl + el + pl + kl + al);
    if (!q) return STORE_ERR_NOMEM;
    q->next = NULL;
    q->enq_ns = uv_hrtime();
    q->r = *r;
    q->done = done;
    q->ud = ud;
    q->r.channel = memcpy(q->data, r->channel, cl);
    q->r.epoch = memcpy(q->data + cl, r->epoch ? r->epoch : "", el);
    char *at = q->data + cl + el;
    q->r.payload = copy_bytes(&at, r->payload, pl);
    q->r.key = copy_bytes(&at, r->key, kl);
    q->r.aux = copy_bytes(&at, r->aux, al);
    q->r.payload_len = pl;
    q->r.key_len = kl;
    q->r.aux_len = al;
    uv_mutex_lock(&s->lock);
    int rc = s->stop ? STORE_ERR_CLOSED : start_locked(s);
    if (rc) { uv_mutex_unlock(&s->lock); free(q); return rc; }
    if (s->tail) s->tail->next = q;
    else s->head = q;
    s->tail = q;
    atomic_fetch_add(&s->queued, 1);
    /* Only a thread waiting for work is woken: during the commit window it
     * sleeps to the deadline anyway (a wakeup per append would cost a
     * context switch per record). */
    if (s->idle) uv_cond_signal(&s->cond);
    uv_mutex_unlock(&s->lock);
    return STORE_OK;
}

/* A blob column: NULL stays NULL (what replay gives back for it). */
static void bind_bytes(sqlite3_stmt *st, int col, const void *p, size_t len) {
    if (p) sqlite3_bind_blob(st, col, p, (int)len, SQLITE_STATIC);
    else sqlite3_bind_null(st, col);
}

static int insert(store *s, const store_rec *r) {
    sqlite3_stmt *st = s->insert;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, r->time_ms);
    sqlite3_bind_int(st, 2, r->kind);
    sqlite3_bind_text(st, 3, r->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)r->offset);
    sqlite3_bind_text(st, 5, r->epoch, -1, SQLITE_STATIC);
    bind_bytes(st, 6, r->payload, r->payload_len);
    bind_bytes(st, 7, r->key, r->key_len);
    bind_bytes(st, 8, r->aux, r->aux_len);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
}

/* Writes one group in one transaction. 0, or -1 (rolled back). */
static int commit_group(store *s, srec *g) {
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return -1;
    for (srec *q = g; q; q = q->next)
        if (insert(s, &q->r)) {
            log_error("store: %s", sqlite3_errmsg(s->db));
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        log_error("store: commit: %s", sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* Tells each record of the group how its commit went, in order. */
/* Counts the group first, then runs its callbacks: whoever sees an ack
 * also sees it in the stats. */
static void finish_group(store *s, srec *g, int err) {
    uint64_t n = 0, now = uv_hrtime();
    if (g && now - g->enq_ns > atomic_load(&s->lag_us_max) * 1000)
        atomic_store(&s->lag_us_max, (now - g->enq_ns) / 1000);
    for (srec *x = g; x; x = x->next) n++;
    atomic_store(&s->failing, err != 0);
    if (err) atomic_fetch_add(&s->failed, n);
    else {
        atomic_fetch_add(&s->records, n);
        atomic_fetch_add(&s->rows, n);
        atomic_fetch_add(&s->commits, 1);
    }
    atomic_fetch_sub(&s->queued, n);
    while (g) {
        srec *next = g->next;
        if (g->done) g->done(g->ud, err, &g->r);
        free(g);
        g = next;
    }
}

/* ----------------------------------------------------------- retention */


/* Runs a retention step if one is due (store thread, no lock held). */
static void retain_maybe(store *s) {
    uint64_t now = uv_hrtime();
    if (!s->retainer || now < s->retain_next_ns) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t deleted = 0;
    int seen = store_retain_step(s->retainer, s->db, s->scan, s->del, now_ms, &deleted);
    if (deleted) {
        atomic_fetch_sub(&s->rows, deleted);
        atomic_fetch_add(&s->deleted, deleted);
    }
    if (seen > 0) {
        s->retain_next_ns = now + RETAIN_EVERY_NS;
    } else {                                  /* a pass is done: start over later */
        s->retain_next_ns = now + (uint64_t)(s->o.retain_every_ms > 0 ? s->o.retain_every_ms : 10000) * 1000000u;
        update_bytes(s);
    }
}

/* ------------------------------------------------------------ the thread */

/* Waits for records (and for the commit window under load); takes them
 * all. Returns NULL when it is time for a retention step, or once stopped
 * and drained. Under the lock. */
static srec *take_group(store *s) {
    while (!s->head && !s->stop) {
        uint64_t now = uv_hrtime();
        if (s->retainer && now >= s->retain_next_ns) return NULL;
        s->idle = 1;
        if (!s->retainer) uv_cond_wait(&s->cond, &s->lock);
        else uv_cond_timedwait(&s->cond, &s->lock, s->retain_next_ns - now);
        s->idle = 0;
    }
    uint64_t window = (uint64_t)s->o.commit_window_us * 1000u, now = uv_hrtime();
    while (s->head && !s->stop && s->last_end_ns && now < s->last_end_ns + window) {
        uv_cond_timedwait(&s->cond, &s->lock, s->last_end_ns + window - now);
        now = uv_hrtime();
    }
    srec *g = s->head;
    s->head = s->tail = NULL;
    return g;
}

static void store_thread(void *arg) {
    store *s = arg;
    uv_mutex_lock(&s->lock);
    for (;;) {
        srec *g = take_group(s);
        if (!g && s->stop) break;
        uv_mutex_unlock(&s->lock);
        if (g) {
            uint64_t t0 = uv_hrtime();
            int err = commit_group(s, g) ? STORE_ERR_IO : STORE_OK;
            uint64_t t1 = uv_hrtime(), us = (t1 - t0) / 1000;
            if (us > atomic_load(&s->commit_us_max)) atomic_store(&s->commit_us_max, us);
            finish_group(s, g, err);
            s->last_end_ns = t1;
        }
        retain_maybe(s);
        uv_mutex_lock(&s->lock);
    }
    uv_mutex_unlock(&s->lock);
}

/* -------------------------------------------------------------- replay */

int store_replay(store *s, int (*fn)(void *ud, const store_rec *r), void *ud,
                 char *err, size_t errlen) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT time_ms, kind, channel, offset, epoch, payload, key, aux "
                           "FROM log ORDER BY seq", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
        return STORE_ERR_IO;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_rec r = {
            .time_ms = sqlite3_column_int64(st, 0),
            .kind = sqlite3_column_int(st, 1),
            .channel = (const char *)sqlite3_column_text(st, 2),
            .offset = (uint64_t)sqlite3_column_int64(st, 3),
            .epoch = (const char *)sqlite3_column_text(st, 4),
            .payload = sqlite3_column_blob(st, 5),      /* NULL or empty: NULL, 0 */
            .payload_len = (size_t)sqlite3_column_bytes(st, 5),
            .key = sqlite3_column_blob(st, 6),
            .key_len = (size_t)sqlite3_column_bytes(st, 6),
            .aux = sqlite3_column_blob(st, 7),
            .aux_len = (size_t)sqlite3_column_bytes(st, 7),
        };
        if (!r.channel || !r.epoch) { rc = SQLITE_NOMEM; break; }
        if (fn(ud, &r)) { rc = SQLITE_DONE; break; }
    }
    int ok = rc == SQLITE_DONE;
    if (!ok) snprintf(err, errlen, "reading the log: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return ok ? STORE_OK : (rc == SQLITE_CORRUPT ? STORE_ERR_CORRUPT : STORE_ERR_IO);
}

/* --------------------------------------------------------------- close */

void store_get_stats(store *s, store_stats *out) {
    out->records = atomic_load(&s->records);
    out->commits = atomic_load(&s->commits);
    out->failed = atomic_load(&s->failed);
    out->queued = atomic_load(&s->queued);
    out->commit_us_max = atomic_load(&s->commit_us_max);
    out->lag_us_max = atomic_load(&s->lag_us_max);
    out->rows = atomic_load(&s->rows);
    out->deleted = atomic_load(&s->deleted);
    out->bytes = atomic_load(&s->bytes);
    out->failing = atomic_load(&s->failing);
}

int store_was_clean(const store *s) { return s->was_clean; }

int store_file(const char *dir, char *out, size_t outlen) {
    int n = snprintf(out, outlen, "%s/plaza.db", dir);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

void store_stop(store *s) {
    uv_mutex_lock(&s->lock);
    int was_stopped = s->stop;
    s->stop = 1;
    uv_cond_signal(&s->cond);
    uv_mutex_unlock(&s->lock);
    if (was_stopped) return;
    if (s->running) uv_thread_join(&s->thread);
    s->running = 0;
    /* the thread commits all that was queued before it stops; appends are
     * refused from here on */
    if (atomic_load(&s->failed) == 0 &&       /* records failed since open: not clean (async tails) */
        sqlite3_exec(s->db, "UPDATE meta SET value = 1 WHERE key = 'clean'", NULL, NULL, NULL) != SQLITE_OK)
        log_warn("store: cannot mark the store closed cleanly: %s", sqlite3_errmsg(s->db));
}

void store_close(store *s) {
    if (!s) return;
    store_stop(s);
    uv_cond_destroy(&s->cond);
    uv_mutex_destroy(&s->lock);
    store_close_db(s);
}
