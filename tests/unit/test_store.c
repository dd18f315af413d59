/* Unit tests for src/store/: records come back from replay as they were
 * appended (every field, map keys and aux included, in order, across a
 * reopen), every callback runs once after its commit, concurrent appends
 * are grouped into fewer commits, a damaged file, a foreign database or an
 * unwritable place are refused with a clear error, a schema-1 store is
 * migrated, retention keeps what replay needs (a map's latest PUTs however
 * old, a board's latest snapshot and the batches after it), and restore
 * and repair give map and board channels a new epoch. Real files in a
 * temporary folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include "store/store.h"
#include "store/store_admin.h"

/* A record without map fields. */
#define REC(k, t, ch, off, ep, p, pl) \
    {.kind = (k), .time_ms = (t), .channel = (ch), .offset = (off), .epoch = (ep), \
     .payload = (p), .payload_len = (pl)}
/* Map changes; key and payload are strings. */
#define MPUT(t, ch, off, ep, k, p) \
    {.kind = STORE_MAP_PUT, .time_ms = (t), .channel = (ch), .offset = (off), .epoch = (ep), \
     .payload = (p), .payload_len = strlen(p), .key = (k), .key_len = strlen(k)}
#define MREM(t, ch, off, ep, k) \
    {.kind = STORE_MAP_REMOVE, .time_ms = (t), .channel = (ch), .offset = (off), .epoch = (ep), \
     .key = (k), .key_len = strlen(k)}
/* Board records; payload (and a snapshot's header) are strings. */
#define BATCH(t, ch, off, ep) \
    {.kind = STORE_BOARD_BATCH, .time_ms = (t), .channel = (ch), .offset = (off), .epoch = (ep), \
     .payload = "px", .payload_len = 2}
#define SNAP(t, ch, off, ep) \
    {.kind = STORE_BOARD_SNAP, .time_ms = (t), .channel = (ch), .offset = (off), .epoch = (ep), \
     .payload = "bits", .payload_len = 4, .aux = "hdr", .aux_len = 3}

static const store_opts OPTS = {.sync = 1, .commit_window_us = 500, .checkpoint_pages = 100};

static char dir[64];

static int setup_dir(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/plaza-store-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", dir, name); }

/* ---------------------------------------------------------------- helpers */

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, failed;
    int order_ok;
    int last;
} waiter;

static void waiter_init(waiter *w) {
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->order_ok = 1;
    w->last = -1;
}

/* ud: the record's index (single-threaded appends check the order). */
typedef struct cb_arg { waiter *w; int index; } cb_arg;

static void on_done(void *ud, int err, const store_rec *r) {
    (void)r;
    cb_arg *a = ud;
    waiter *w = a->w;
    pthread_mutex_lock(&w->lock);
    if (err) w->failed++;
    if (a->index >= 0) {
        if (a->index != w->last + 1) w->order_ok = 0;
        w->last = a->index;
    }
    w->done++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void wait_for(waiter *w, int n) {
    pthread_mutex_lock(&w->lock);
    while (w->done < n) pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static store *open_ok(const char *name) {
    char p[128], err[512];
    path_of(p, sizeof(p), name);
    store *s = store_open(p, &OPTS, err, sizeof(err));
    if (!s) fprintf(stderr, "store_open: %s\n", err);
    assert_non_null(s);
    return s;
}

typedef struct collected {
    int n, bad;
    char last_channel[64];
} collected;

/* Checks that record i is ch<i%7>, offset i, epoch "e<i%3>", payload "p<i>". */
static int check_rec(void *ud, const store_rec *r) {
    collected *c = ud;
    int i = c->n++;
    char ch[32], ep[8], pl[32];
    snprintf(ch, sizeof(ch), "chan:%d", i % 7);
    snprintf(ep, sizeof(ep), "e%d", i % 3);
    int pn = snprintf(pl, sizeof(pl), "{\"n\":%d}", i);
    if (r->kind != STORE_PUB || strcmp(r->channel, ch) || r->offset != (uint64_t)i ||
        strcmp(r->epoch, ep) || r->time_ms != 1700000000000 + i ||
        r->payload_len != (size_t)pn || memcmp(r->payload, pl, (size_t)pn))
        c->bad++;
    snprintf(c->last_channel, sizeof(c->last_channel), "%s", r->channel);
    return 0;
}

static void append_numbered(store *s, int i, waiter *w, cb_arg *arg) {
    char ch[32], ep[8], pl[32];
    snprintf(ch, sizeof(ch), "chan:%d", i % 7);
    snprintf(ep, sizeof(ep), "e%d", i % 3);
    int pn = snprintf(pl, sizeof(pl), "{\"n\":%d}", i);
    store_rec r = REC(STORE_PUB, 1700000000000 + i, ch, (uint64_t)i, ep, pl, (size_t)pn);
    arg->w = w;
    arg->index = i;
    assert_int_equal(store_append(s, &r, on_done, arg), STORE_OK);
}

/* ------------------------------------------------------------------ tests */

static void test_append_replay_reopen(void **state) {
    (void)state;
    enum { N = 500 };
    store *s = open_ok("a.db");
    waiter w;
    waiter_init(&w);
    static cb_arg args[N];
    for (int i = 0; i < N; i++) append_numbered(s, i, &w, &args[i]);
    wait_for(&w, N);
    assert_int_equal(w.failed, 0);
    assert_true(w.order_ok);                 /* callbacks in append order */
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.records, N);
    assert_int_equal(st.queued, 0);
    store_close(s);

    s = open_ok("a.db");                     /* what was acked is there */
    collected c = {0};
    char err[256];
    assert_int_equal(store_replay(s, check_rec, &c, err, sizeof(err)), STORE_OK);
    assert_int_equal(c.n, N);
    assert_int_equal(c.bad, 0);
    store_close(s);
}

static int stop_after_3(void *ud, const store_rec *r) {
    (void)r;
    return ++*(int *)ud == 3;
}

static void test_replay_stops_early_and_kinds(void **state) {
    (void)state;
    store *s = open_ok("b.db");
    waiter w;
    waiter_init(&w);
    cb_arg a = {&w, -1};
    store_rec trim = REC(STORE_EPOCH, 5, "x", 0, "ep", NULL, 0);
    store_rec rm = REC(STORE_REMOVE, 6, "x", 12, "ep", NULL, 0);
    for (int i = 0; i < 5; i++) assert_int_equal(store_append(s, i % 2 ? &trim : &rm, on_done, &a), 0);
    wait_for(&w, 5);
    int seen = 0;
    char err[256];
    assert_int_equal(store_replay(s, stop_after_3, &seen, err, sizeof(err)), STORE_OK);
    assert_int_equal(seen, 3);
    store_close(s);
}

typedef struct thread_arg { store *s; waiter *w; int id; cb_arg args[400]; } thread_arg;

static void *appender(void *p) {
    thread_arg *t = p;
    for (int i = 0; i < 400; i++) {
        char ch[32];
        snprintf(ch, sizeof(ch), "t%d", t->id);
        store_rec r = REC(STORE_PUB, i, ch, (uint64_t)i + 1, "e", "x", 1);
        t->args[i].w = t->w;
        t->args[i].index = -1;
        if (store_append(t->s, &r, on_done, &t->args[i]) != STORE_OK) abort();
    }
    return NULL;
}

/* Per channel (thread), offsets come back in the order appended. */
typedef struct per_thread { uint64_t last[4]; int bad, n; } per_thread;

static int check_thread_order(void *ud, const store_rec *r) {
    per_thread *p = ud;
    int id = r->channel[1] - '0';
    if (id < 0 || id > 3 || r->offset != p->last[id] + 1) p->bad++;
    else p->last[id] = r->offset;
    p->n++;
    return 0;
}

static void test_concurrent_appends_are_grouped(void **state) {
    (void)state;
    store *s = open_ok("c.db");
    waiter w;
    waiter_init(&w);
    static thread_arg ta[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ta[i].s = s;
        ta[i].w = &w;
        ta[i].id = i;
        pthread_create(&th[i], NULL, appender, &ta[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    wait_for(&w, 1600);
    assert_int_equal(w.failed, 0);
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.records, 1600);
    assert_true(st.commits < 1600);          /* grouped: fewer commits than records */
    assert_true(st.commits >= 1);
    per_thread p = {{0}, 0, 0};
    char err[256];
    store_close(s);
    s = open_ok("c.db");
    assert_int_equal(store_replay(s, check_thread_order, &p, err, sizeof(err)), STORE_OK);
    assert_int_equal(p.n, 1600);
    assert_int_equal(p.bad, 0);
    store_close(s);
}

static void test_close_commits_what_is_queued(void **state) {
    (void)state;
    store *s = open_ok("d.db");
    waiter w;
    waiter_init(&w);
    static cb_arg args[200];
    for (int i = 0; i < 200; i++) append_numbered(s, i, &w, &args[i]);
    store_close(s);                          /* no wait: close drains */
    assert_int_equal(w.done, 200);
    assert_int_equal(w.failed, 0);
    s = open_ok("d.db");
    collected c = {0};
    char err[256];
    assert_int_equal(store_replay(s, check_rec, &c, err, sizeof(err)), STORE_OK);
    assert_int_equal(c.n, 200);
    assert_int_equal(c.bad, 0);
    store_close(s);
}

static void test_damaged_file_refused(void **state) {
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof(p), "garbage.db");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++) fputc("not a database "[i % 15], f);
    fclose(f);
    assert_null(store_open(p, &OPTS, err, sizeof(err)));
    assert_non_null(strstr(err, p));
    assert_true(strstr(err, "not a database") || strstr(err, "damaged"));
}

static void test_foreign_database_refused(void **state) {
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof(p), "foreign.db");
    store *s = open_ok("foreign.db");        /* make it a store, then break its schema mark */
    store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'schema'",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(store_open(p, &OPTS, err, sizeof(err)));
    assert_non_null(strstr(err, "schema"));
}

static void test_unwritable_place_refused(void **state) {
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof(p), "missing-dir/x.db");
    assert_null(store_open(p, &OPTS, err, sizeof(err)));
    assert_non_null(strstr(err, "missing-dir/x.db"));
    if (geteuid() == 0) return;              /* root writes anywhere */
    char ro[128];
    path_of(ro, sizeof(ro), "ro");
    mkdir(ro, 0500);
    path_of(p, sizeof(p), "ro/x.db");
    assert_null(store_open(p, &OPTS, err, sizeof(err)));
}

static int count_recs(void *ud, const store_rec *r) {
    (void)r;
    ++*(int *)ud;
    return 0;
}

static void test_null_callback(void **state) {
    (void)state;
    store *s = open_ok("e.db");
    store_rec r = REC(STORE_PUB, 1, "c", 1, "e", "p", 1);
    assert_int_equal(store_append(s, &r, NULL, NULL), STORE_OK);
    store_close(s);
    s = open_ok("e.db");
    int n = 0;
    char err[256];
    assert_int_equal(store_replay(s, count_recs, &n, err, sizeof(err)), STORE_OK);
    assert_int_equal(n, 1);
    store_close(s);
}

/* Retention: follows the log as replay does and deletes what was useless
 * at the cutoff, nothing younger than the window. Channel "h3" keeps 3
 * publications; "none" keeps no history; "ttl" keeps them 1 s. Maps: "m"
 * has a stream of 2, "m0" none, "mt" a stream of 100 for 1 s. Boards: "bd"
 * has a stream of 2, "b0" none, others 3. */
static void hist(void *ud, const char *ch, int *size, int64_t *ttl_ms) {
    ++*(int *)ud;
    int timed = !strcmp(ch, "ttl") || !strcmp(ch, "mt");
    int none = !strcmp(ch, "none") || !strcmp(ch, "m0") || !strcmp(ch, "b0");
    *size = none ? 0 : !strcmp(ch, "m") || !strcmp(ch, "bd") ? 2 : timed ? 100 : 3;
    *ttl_ms = timed ? 1000 : 0;
}

static int collect_seqs(void *ud, const store_rec *r) {
    char *out = ud;
    char one[64];
    snprintf(one, sizeof(one), "%s/%d/%llu ", r->channel, r->kind, (unsigned long long)r->offset);
    strcat(out, one);
    return 0;
}

static void test_retention(void **state) {
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof(p), "ret.db");
    int asked = 0;
    store_opts o = OPTS;
    o.retain_ms = 60000;
    o.history = hist;
    o.history_ud = &asked;
    store *s = store_open(p, &o, err, sizeof(err));
    assert_non_null(s);
    int64_t old = 1000, young = 4102444800000;       /* 1970 and 2100 */
    store_rec recs[] = {
        REC(STORE_EPOCH, old, "h3", 0, "e1", NULL, 0),   /* dead: a publication carries e1 */
        REC(STORE_PUB, old, "h3", 1, "e1", "x", 1),      /* dead: trimmed by 4 (size 3) */
        REC(STORE_PUB, old, "h3", 2, "e1", "x", 1),
        REC(STORE_PUB, old, "h3", 3, "e1", "x", 1),
        REC(STORE_PUB, old, "h3", 4, "e1", "x", 1),
        REC(STORE_PUB, old, "none", 1, "e", "x", 1),     /* dead: no history */
        REC(STORE_PUB, old, "h3", 0, "", "x", 1),        /* dead: offset 0 */
        REC(STORE_PUB, old, "ttl", 1, "t", "x", 1),      /* dead: expired long before the cutoff */
        REC(STORE_PUB, old, "r", 1, "q", "x", 1),        /* dead: removed */
        REC(STORE_REMOVE, old, "r", 1, "q", NULL, 0),    /* dead once applied */
        REC(STORE_PUB, young, "r", 2, "q", "x", 1),      /* young: kept, and stops the pass */
        REC(STORE_PUB, old, "h3", 5, "e1", "x", 1),      /* after the stop: kept */
    };
    size_t n = sizeof(recs) / sizeof(recs[0]);
    for (size_t i = 0; i < n; i++) assert_int_equal(store_append(s, &recs[i], NULL, NULL), STORE_OK);
    store_stats st;
    for (int t = 0; t < 300; t++) {               /* steps run every 200 ms: at most 3 s */
        store_get_stats(s, &st);
        if (st.deleted >= 7) break;
        usleep(10000);
    }
    usleep(300000);                                /* and no more than that */
    store_get_stats(s, &st);
    assert_int_equal(st.deleted, 7);
    assert_int_equal(st.rows, n - 7);
    assert_true(st.bytes > 0);
    store_close(s);
    assert_true(asked > 0);
    s = open_ok("ret.db");
    char seen[1024] = "";
    assert_int_equal(store_replay(s, collect_seqs, seen, err, sizeof(err)), STORE_OK);
    assert_string_equal(seen, "h3/1/2 h3/1/3 h3/1/4 r/1/2 h3/1/5 ");
    store_close(s);
}

/* The clean mark: set while open, cleared by store_close. */
static void test_clean_mark(void **state) {
    (void)state;
    store *s = open_ok("clean.db");
    assert_true(store_was_clean(s));                 /* a new store */
    store_close(s);
    s = open_ok("clean.db");
    assert_true(store_was_clean(s));
    char p[128], err[256];
    path_of(p, sizeof(p), "clean.db");
    store *s2 = store_open(p, &OPTS, err, sizeof(err));   /* as a crashed process would leave it */
    assert_non_null(s2);
    assert_false(store_was_clean(s2));
    store_close(s2);
    store_close(s);
}

/* ------------------------------------------------------------- map records */

static int same_bytes(const void *got, size_t got_len, const void *want, size_t want_len) {
    if (!want || !want_len) return !got && got_len == 0;          /* NULL and empty: NULL, 0 */
    return got && got_len == want_len && memcmp(got, want, want_len) == 0;
}

typedef struct expect { const store_rec *want; size_t n, i; int bad; } expect;

static int check_against(void *ud, const store_rec *r) {
    expect *e = ud;
    const store_rec *w = e->i < e->n ? &e->want[e->i] : NULL;
    e->i++;
    if (!w || r->kind != w->kind || r->time_ms != w->time_ms || strcmp(r->channel, w->channel) ||
        r->offset != w->offset || strcmp(r->epoch, w->epoch) ||
        !same_bytes(r->payload, r->payload_len, w->payload, w->payload_len) ||
        !same_bytes(r->key, r->key_len, w->key, w->key_len) ||
        !same_bytes(r->aux, r->aux_len, w->aux, w->aux_len))
        e->bad++;
    return 0;
}

static void test_map_records_round_trip(void **state) {
    (void)state;
    static const unsigned char ver[] = {7, 0, 0, 0, 0, 0, 0, 0, 'v', '1'};
    store_rec want[] = {
        {.kind = STORE_MAP_PUT, .time_ms = 10, .channel = "m:a", .offset = 1, .epoch = "e",
         .payload = "{\"p\":1}", .payload_len = 7, .key = "lot\0one", .key_len = 7,   /* binary key */
         .aux = ver, .aux_len = sizeof(ver)},
        MPUT(11, "m:a", 2, "e", "k2", "2"),                          /* no aux */
        MREM(12, "m:a", 3, "e", "lot\0one"),
        REC(STORE_PUB, 13, "s", 1, "e", "x", 1),                     /* no key */
        MPUT(14, "m:a", 4, "e", "k3", ""),                           /* an empty value */
    };
    want[2].key_len = 7;
    size_t n = sizeof(want) / sizeof(want[0]);
    store *s = open_ok("map.db");
    for (size_t i = 0; i < n; i++) {
        /* the store copies: the caller's bytes may change at once */
        char key[16], val[16];
        store_rec r = want[i];
        if (r.key) r.key = memcpy(key, want[i].key, want[i].key_len);
        if (r.payload) r.payload = memcpy(val, want[i].payload, want[i].payload_len);
        assert_int_equal(store_append(s, &r, NULL, NULL), STORE_OK);
        memset(key, 'X', sizeof(key));
        memset(val, 'X', sizeof(val));
    }
    store_close(s);
    s = open_ok("map.db");
    expect e = {want, n, 0, 0};
    char err[256];
    assert_int_equal(store_replay(s, check_against, &e, err, sizeof(err)), STORE_OK);
    assert_int_equal(e.i, n);
    assert_int_equal(e.bad, 0);
    store_close(s);
}

/* A store as Plaza wrote it before maps (schema 1: seven columns). */
static void make_schema1(const char *path) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "CREATE TABLE log (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind INTEGER NOT NULL,"
        " channel TEXT NOT NULL, offset INTEGER NOT NULL, epoch TEXT NOT NULL, payload BLOB);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;"
        "INSERT INTO meta VALUES ('schema', 1), ('clean', 1);"
        "INSERT INTO log VALUES (1, 100, 3, 'c', 0, 'e1', NULL), (2, 101, 1, 'c', 1, 'e1', x'6869');",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int64_t sql_int(const char *path, const char *sql) {
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_schema1_migrated(void **state) {
    (void)state;
    char p[128];
    path_of(p, sizeof(p), "old.db");
    make_schema1(p);
    store *s = open_ok("old.db");
    assert_true(store_was_clean(s));
    store_rec put = MPUT(102, "m", 1, "e", "k", "v");
    assert_int_equal(store_append(s, &put, NULL, NULL), STORE_OK);
    store_close(s);
    assert_int_equal(sql_int(p, "SELECT value FROM meta WHERE key = 'schema'"), 2);
    assert_int_equal(sql_int(p, "SELECT count(*) FROM pragma_table_info('log')"), 9);
    s = open_ok("old.db");                            /* once migrated, opens as it is */
    store_rec want[] = {
        REC(STORE_EPOCH, 100, "c", 0, "e1", NULL, 0),
        REC(STORE_PUB, 101, "c", 1, "e1", "hi", 2),
        MPUT(102, "m", 1, "e", "k", "v"),
    };
    expect e = {want, 3, 0, 0};
    char err[256];
    assert_int_equal(store_replay(s, check_against, &e, err, sizeof(err)), STORE_OK);
    assert_int_equal(e.i, 3);
    assert_int_equal(e.bad, 0);
    store_close(s);
}

/* Map retention: a change is kept while in its stream's window, a PUT
 * while it is its key's state, and the channel's last record (its epoch
 * and top); passes run again and again and must agree. */
static void test_map_retention(void **state) {
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof(p), "mret.db");
    int asked = 0;
    store_opts o = OPTS;
    o.retain_ms = 60000;
    o.retain_every_ms = 20;                          /* many passes */
    o.history = hist;
    o.history_ud = &asked;
    store *s = store_open(p, &o, err, sizeof(err));
    assert_non_null(s);
    int64_t old = 1000, young = 4102444800000;
    store_rec recs[] = {
        MPUT(old, "m", 1, "e", "a", "1"),            /* dead: a@3 supersedes it */
        MPUT(old, "m", 2, "e", "b", "2"),            /* dead: removed by 4 */
        MPUT(old, "m", 3, "e", "a", "3"),            /* kept: a's state, far out of the window */
        MREM(old, "m", 4, "e", "b"),                 /* dead: out of the window */
        MPUT(old, "m", 5, "e", "c", "5"),            /* kept: c's state (8 comes after the cutoff) */
        MREM(old, "m", 6, "e", "d"),                 /* kept: in the window (2) */
        MREM(old, "m", 7, "e", "e"),                 /* kept: in the window, the last */
        REC(STORE_REMOVE, old, "m", 7, "e", NULL, 0),   /* kept: a history removal is not for maps */
        MPUT(old, "m0", 1, "g", "x", "1"),           /* dead: x@1 of h supersedes it */
        MPUT(old, "m0", 2, "g", "y", "2"),           /* kept: a new epoch leaves the entries */
        REC(STORE_EPOCH, old, "m0", 0, "h", NULL, 0),   /* dead: the next change carries h */
        MPUT(old, "m0", 1, "h", "x", "3"),           /* kept */
        MPUT(old, "m0", 2, "h", "z", "4"),           /* dead: removed, and no stream */
        MREM(old, "m0", 3, "h", "z"),                /* kept: the last (epoch h, top 3) */
        MPUT(old, "mt", 1, "t", "k", "1"),           /* dead */
        MPUT(old, "mt", 2, "t", "k", "2"),           /* kept: expired from the stream, k's state */
        MREM(old, "mt", 3, "t", "j"),                /* dead: expired, not the last */
        MPUT(old, "mt", 4, "t", "j", "4"),           /* kept */
        MPUT(young, "m", 8, "e", "c", "8"),          /* young: kept, stops the pass */
        MPUT(old, "m", 9, "e", "a", "9"),            /* after the stop: kept, and a@3 too */
    };
    size_t n = sizeof(recs) / sizeof(recs[0]);
    for (size_t i = 0; i < n; i++) assert_int_equal(store_append(s, &recs[i], NULL, NULL), STORE_OK);
    store_stats st;
    for (int t = 0; t < 300; t++) {
        store_get_stats(s, &st);
        if (st.deleted >= 8) break;
        usleep(10000);
    }
    usleep(400000);                                  /* later passes delete nothing more */
    store_get_stats(s, &st);
    assert_int_equal(st.deleted, 8);
    assert_int_equal(st.rows, n - 8);
    store_close(s);
    s = open_ok("mret.db");
    char seen[1024] = "";
    assert_int_equal(store_replay(s, collect_seqs, seen, err, sizeof(err)), STORE_OK);
    assert_string_equal(seen, "m/7/3 m/7/5 m/8/6 m/8/7 m/2/7 m0/7/2 m0/7/1 m0/8/3 "
                              "mt/7/2 mt/7/4 m/7/8 m/7/9 ");
    store_close(s);
}

/* ----------------------------------------------------------- board records */

static void test_board_records_round_trip(void **state) {
    (void)state;
    static const unsigned char bits[] = {0x00, 0xff, 0x00, 0x0f, 0xf0, 0x00};   /* NULs inside */
    static const unsigned char hdr[] = {0x10, 0, 0x08, 0, 4, 0, 0, 0, 0, 0};
    store_rec want[] = {
        {.kind = STORE_BOARD_BATCH, .time_ms = 20, .channel = "b:1", .offset = 1, .epoch = "e",
         .payload = bits, .payload_len = 4},
        {.kind = STORE_BOARD_SNAP, .time_ms = 21, .channel = "b:1", .offset = 1, .epoch = "e",
         .payload = bits, .payload_len = sizeof(bits), .aux = hdr, .aux_len = sizeof(hdr)},
        {.kind = STORE_BOARD_BATCH, .time_ms = 22, .channel = "b:1", .offset = 2, .epoch = "e",
         .payload = "\x01\x02", .payload_len = 2},
        {.kind = STORE_BOARD_SNAP, .time_ms = 23, .channel = "b:2", .offset = 0, .epoch = "f",
         .payload = bits, .payload_len = sizeof(bits)},                    /* no header */
        REC(STORE_PUB, 24, "s", 1, "e", "x", 1),
    };
    size_t n = sizeof(want) / sizeof(want[0]);
    store *s = open_ok("board.db");
    for (size_t i = 0; i < n; i++) {
        /* the store copies: the caller's bytes may change at once */
        unsigned char val[16], aux[16];
        store_rec r = want[i];
        r.payload = memcpy(val, want[i].payload, want[i].payload_len);
        if (r.aux) r.aux = memcpy(aux, want[i].aux, want[i].aux_len);
        assert_int_equal(store_append(s, &r, NULL, NULL), STORE_OK);
        memset(val, 'X', sizeof(val));
        memset(aux, 'X', sizeof(aux));
    }
    store_close(s);
    s = open_ok("board.db");
    expect e = {want, n, 0, 0};
    char err[256];
    assert_int_equal(store_replay(s, check_against, &e, err, sizeof(err)), STORE_OK);
    assert_int_equal(e.i, n);
    assert_int_equal(e.bad, 0);
    store_close(s);
}

/* Appends recs to store `name` opened with retention (a 60 s window, a
 * pass every 20 ms), waits until the passes deleted `want` records, then
 * a while more: later passes must delete nothing else. */
static void retain_run(const char *name, const store_rec *recs, size_t n, uint64_t want) {
    char p[128], err[512];
    path_of(p, sizeof(p), name);
    int asked = 0;
    store_opts o = OPTS;
    o.retain_ms = 60000;
    o.retain_every_ms = 20;
    o.history = hist;
    o.history_ud = &asked;
    store *s = store_open(p, &o, err, sizeof(err));
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) assert_int_equal(store_append(s, &recs[i], NULL, NULL), STORE_OK);
    store_stats st;
    for (int t = 0; t < 300; t++) {
        store_get_stats(s, &st);
        if (st.deleted >= want) break;
        usleep(10000);
    }
    usleep(400000);
    store_get_stats(s, &st);
    assert_int_equal(st.deleted, want);
    store_close(s);
}

/* What store `name` replays, as channel/kind/offset words. */
static void replayed(const char *name, char *seen) {
    char err[256];
    seen[0] = '\0';
    store *s = open_ok(name);
    assert_int_equal(store_replay(s, collect_seqs, seen, err, sizeof(err)), STORE_OK);
    store_close(s);
}

/* A board's batch goes once out of its stream's window and covered by a
 * later snapshot; a snapshot once a later one is read. */
static void test_board_retention(void **state) {
    (void)state;
    int64_t old = 1000;
    store_rec recs[11];
    for (int i = 0; i < 6; i++) {
        store_rec b = BATCH(old, "bd", (uint64_t)i + 1, "e");
        recs[i] = b;
    }
    store_rec snap = SNAP(old, "bd", 6, "e");
    recs[6] = snap;
    for (int i = 6; i < 10; i++) {
        store_rec b = BATCH(old, "bd", (uint64_t)i + 1, "e");
        recs[i + 1] = b;
    }
    /* 1..6 out of the window (2) and covered: deleted; 7..8 out of the
     * window, not covered: kept; 9..10 in the window; the snapshot kept */
    retain_run("bret.db", recs, 11, 6);
    char seen[1024];
    replayed("bret.db", seen);
    assert_string_equal(seen, "bd/10/6 bd/9/7 bd/9/8 bd/9/9 bd/9/10 ");
    /* a later snapshot covers 7..8 and replaces the first */
    store_rec snap2 = SNAP(old, "bd", 10, "e");
    retain_run("bret.db", &snap2, 1, 3);
    replayed("bret.db", seen);
    assert_string_equal(seen, "bd/9/9 bd/9/10 bd/10/10 ");
}

/* A history removal puts a board's batches out of the stream, but they
 * still wait for a snapshot, and so does the REMOVE (without it, replay
 * would bring them back into history). */
static void test_board_remove_waits(void **state) {
    (void)state;
    int64_t old = 1000;
    store_rec recs[] = {
        BATCH(old, "br", 1, "e"),
        BATCH(old, "br", 2, "e"),
        BATCH(old, "br", 3, "e"),
        REC(STORE_REMOVE, old, "br", 3, "e", NULL, 0),
        REC(STORE_PUB, old, "none", 1, "e", "x", 1),     /* deleted: a pass ran */
    };
    retain_run("brm.db", recs, sizeof(recs) / sizeof(recs[0]), 1);
    char seen[1024];
    replayed("brm.db", seen);
    assert_string_equal(seen, "br/9/1 br/9/2 br/9/3 br/2/3 ");
    store_rec snap = SNAP(old, "br", 3, "e");
    retain_run("brm.db", &snap, 1, 4);
    replayed("brm.db", seen);
    assert_string_equal(seen, "br/10/3 ");
}

/* While a board's batches wait for a snapshot, what the stream no longer
 * needs after them waits too: a publication out of the window (a gap
 * would void what follows it), an epoch mark a REEPOCH replaces (the new
 * stream dropped the batches). Batches of a board without history are
 * never in the stream: they wait for a snapshot only. */
static void test_board_retention_in_turn(void **state) {
    (void)state;
    int64_t old = 1000;
    store_rec recs[] = {
        BATCH(old, "bx", 1, "e"),
        BATCH(old, "bx", 2, "e"),
        BATCH(old, "bx", 3, "e"),
        REC(STORE_PUB, old, "bx", 4, "e", "x", 1),
        REC(STORE_PUB, old, "bx", 5, "e", "x", 1),
        REC(STORE_PUB, old, "bx", 6, "e", "x", 1),
        REC(STORE_PUB, old, "bx", 7, "e", "x", 1),
        BATCH(old, "be", 1, "e1"),
        BATCH(old, "be", 2, "e1"),
        REC(STORE_EPOCH, old, "be", 0, "e2", NULL, 0),
        REC(STORE_REEPOCH, old, "be", 0, "e3", NULL, 0),
        BATCH(old, "b0", 0, ""),
        BATCH(old, "b0", 0, ""),
        REC(STORE_PUB, old, "none", 1, "e", "x", 1),     /* deleted: a pass ran */
    };
    retain_run("bturn.db", recs, sizeof(recs) / sizeof(recs[0]), 1);
    char seen[1024];
    replayed("bturn.db", seen);
    assert_string_equal(seen, "bx/9/1 bx/9/2 bx/9/3 bx/1/4 bx/1/5 bx/1/6 bx/1/7 "
                              "be/9/1 be/9/2 be/3/0 be/4/0 b0/9/0 b0/9/0 ");
    store_rec snaps[] = {SNAP(old, "bx", 7, "e"), SNAP(old, "be", 0, "e3"), SNAP(old, "b0", 0, "")};
    retain_run("bturn.db", snaps, 3, 9);
    replayed("bturn.db", seen);
    assert_string_equal(seen, "bx/1/5 bx/1/6 bx/1/7 be/4/0 bx/10/7 be/10/0 b0/10/0 ");
}

/* ----------------------------------------------------- restore and repair */

static void store_dir_of(char *out, size_t len, const char *name) {
    path_of(out, len, name);
    mkdir(out, 0750);
}

/* Writes recs into a new store in folder name (plaza.db). */
static void make_store(const char *name, const store_rec *recs, size_t n) {
    char d[128], f[160], err[256];
    store_dir_of(d, sizeof(d), name);
    assert_int_equal(store_file(d, f, sizeof(f)), 0);
    store *s = store_open(f, &OPTS, err, sizeof(err));
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) assert_int_equal(store_append(s, &recs[i], NULL, NULL), STORE_OK);
    store_close(s);
}

static void test_restore_old_backup_and_maps(void **state) {
    (void)state;
    char from[128], to[128], f[160], err[512];
    FILE *out = tmpfile();
    assert_non_null(out);
    /* a backup made by an older Plaza (schema 1) */
    store_dir_of(from, sizeof(from), "bk-old");
    assert_int_equal(store_file(from, f, sizeof(f)), 0);
    make_schema1(f);
    path_of(to, sizeof(to), "restored-old");
    assert_int_equal(store_restore(from, to, INT64_MAX, out, err, sizeof(err)), 0);
    assert_int_equal(store_file(to, f, sizeof(f)), 0);
    assert_int_equal(sql_int(f, "SELECT value FROM meta WHERE key = 'schema'"), 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE seq <= 2 "
                                "AND key IS NULL AND aux IS NULL"), 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 4 "
                                "AND channel = 'c' AND offset = 1"), 1);
    /* a store with maps: every map channel gets a new epoch at its top too */
    static const unsigned char ver[] = {1, 0, 0, 0, 0, 0, 0, 0};
    store_rec recs[] = {
        {.kind = STORE_MAP_PUT, .time_ms = 10, .channel = "m:a", .offset = 1, .epoch = "e",
         .payload = "1", .payload_len = 1, .key = "k", .key_len = 1, .aux = ver, .aux_len = sizeof(ver)},
        MPUT(11, "m:a", 2, "e", "k2", "2"),
        MREM(12, "m:a", 3, "e", "k"),
        MREM(13, "m:b", 1, "f", "gone"),
        REC(STORE_PUB, 14, "s", 1, "e", "x", 1),
        REC(STORE_PUB, 15, "live", 0, "", "x", 1),   /* no history: no epoch */
        MPUT(2000, "m:a", 4, "e", "late", "4"),      /* after --at */
    };
    make_store("maps", recs, sizeof(recs) / sizeof(recs[0]));
    path_of(from, sizeof(from), "maps");
    assert_int_equal(store_file(from, f, sizeof(f)), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE key = CAST('late' AS BLOB)"), 1);
    path_of(to, sizeof(to), "restored-maps");
    assert_int_equal(store_restore(from, to, 100, out, err, sizeof(err)), 0);
    assert_int_equal(store_file(to, f, sizeof(f)), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 4"), 3);
    assert_int_equal(sql_int(f, "SELECT offset FROM log WHERE kind = 4 AND channel = 'm:a'"), 3);
    assert_int_equal(sql_int(f, "SELECT offset FROM log WHERE kind = 4 AND channel = 'm:b'"), 1);
    assert_int_equal(sql_int(f, "SELECT offset FROM log WHERE kind = 4 AND channel = 's'"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE key = CAST('late' AS BLOB)"), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 7 AND key = x'6b' "
                                "AND aux = x'0100000000000000' AND payload = x'31'"), 1);
    fclose(out);
}

/* A board channel gets a new epoch at its top: its last batch or the
 * position of its last snapshot; a batch without history gives none (as
 * a publication). Snapshots are copied whole. */
static void test_restore_boards(void **state) {
    (void)state;
    char from[128], to[128], f[160], err[512];
    FILE *out = tmpfile();
    assert_non_null(out);
    store_rec recs[] = {
        BATCH(10, "bd:a", 1, "e"),
        BATCH(11, "bd:a", 2, "e"),
        SNAP(12, "bd:a", 2, "e"),
        SNAP(13, "bd:b", 5, "e"),                    /* what retention leaves of a quiet board */
        BATCH(14, "bd:c", 0, ""),                    /* no history: no epoch */
        SNAP(15, "bd:d", 1, "e"),
        BATCH(16, "bd:d", 2, "e"),
        BATCH(2000, "bd:a", 3, "e"),                 /* after --at */
    };
    make_store("boards", recs, sizeof(recs) / sizeof(recs[0]));
    path_of(from, sizeof(from), "boards");
    path_of(to, sizeof(to), "restored-boards");
    assert_int_equal(store_restore(from, to, 100, out, err, sizeof(err)), 0);
    assert_int_equal(store_file(to, f, sizeof(f)), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 4"), 3);
    assert_int_equal(sql_int(f, "SELECT offset FROM log WHERE kind = 4 AND channel = 'bd:a'"), 2);
    assert_int_equal(sql_int(f, "SELECT offset FROM log WHERE kind = 4 AND channel = 'bd:b'"), 5);
    assert_int_equal(sql_int(f, "SELECT offset FROM log WHERE kind = 4 AND channel = 'bd:d'"), 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 9 AND offset = 3"), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 10 AND payload = "
                                "CAST('bits' AS BLOB) AND aux = CAST('hdr' AS BLOB)"), 3);
    fclose(out);
}

static void test_repair_keeps_map_records(void **state) {
    (void)state;
    char d[128], f[160], err[256];
    /* enough publications for many pages, then map changes (the last pages) */
    enum { NPUB = 300 };
    static store_rec recs[NPUB + 2];
    static char pad[200];
    memset(pad, 'x', sizeof(pad));
    for (int i = 0; i < NPUB; i++) {
        store_rec r = REC(STORE_PUB, 10, "s", (uint64_t)i + 1, "e", pad, sizeof(pad));
        recs[i] = r;
    }
    store_rec put = MPUT(11, "m:a", 1, "e", "k", "v"), rem = MREM(12, "m:a", 2, "e", "j");
    recs[NPUB] = put;
    recs[NPUB + 1] = rem;
    make_store("damaged", recs, NPUB + 2);
    store_dir_of(d, sizeof(d), "damaged");
    assert_int_equal(store_file(d, f, sizeof(f)), 0);
    struct stat sb;
    assert_int_equal(stat(f, &sb), 0);
    FILE *fp = fopen(f, "r+b");
    assert_non_null(fp);
    char junk[4096];
    memset(junk, 0x5a, sizeof(junk));
    fseek(fp, (long)(sb.st_size / 4096 / 2) * 4096, SEEK_SET);
    fwrite(junk, 1, sizeof(junk), fp);
    fclose(fp);
    FILE *out = tmpfile();
    assert_non_null(out);
    assert_int_equal(store_repair(d, out, err, sizeof(err)), 0);
    char said[2048] = "";
    rewind(out);
    assert_true(fread(said, 1, sizeof(said) - 1, out) > 0);
    fclose(out);
    assert_non_null(strstr(said, "repaired"));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 7 AND key = CAST('k' AS BLOB) "
                                "AND payload = CAST('v' AS BLOB)"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM log WHERE kind = 8 "
                                "AND key = CAST('j' AS BLOB)"), 1);
    assert_int_equal(sql_int(f, "SELECT offset FROM log WHERE kind = 4 AND channel = 'm:a'"), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_replay_reopen),
        cmocka_unit_test(test_replay_stops_early_and_kinds),
        cmocka_unit_test(test_concurrent_appends_are_grouped),
        cmocka_unit_test(test_close_commits_what_is_queued),
        cmocka_unit_test(test_damaged_file_refused),
        cmocka_unit_test(test_foreign_database_refused),
        cmocka_unit_test(test_unwritable_place_refused),
        cmocka_unit_test(test_null_callback),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_clean_mark),
        cmocka_unit_test(test_map_records_round_trip),
        cmocka_unit_test(test_schema1_migrated),
        cmocka_unit_test(test_map_retention),
        cmocka_unit_test(test_board_records_round_trip),
        cmocka_unit_test(test_board_retention),
        cmocka_unit_test(test_board_remove_waits),
        cmocka_unit_test(test_board_retention_in_turn),
        cmocka_unit_test(test_restore_boards),
        cmocka_unit_test(test_restore_old_backup_and_maps),
        cmocka_unit_test(test_repair_keeps_map_records),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
