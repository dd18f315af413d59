/* Unit tests for src/store/store.c: records come back from replay as they
 * were appended (every field, in order, across a reopen), every callback
 * runs once after its commit, concurrent appends are grouped into fewer
 * commits, and a damaged file, a foreign database or an unwritable place
 * are refused with a clear error. Real files in a temporary folder. */
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
    store_rec r = {STORE_PUB, 1700000000000 + i, ch, (uint64_t)i, ep, pl, (size_t)pn};
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
    store_rec trim = {STORE_EPOCH, 5, "x", 0, "ep", NULL, 0};
    store_rec rm = {STORE_REMOVE, 6, "x", 12, "ep", NULL, 0};
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
        store_rec r = {STORE_PUB, i, ch, (uint64_t)i + 1, "e", "x", 1};
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
    store_rec r = {STORE_PUB, 1, "c", 1, "e", "p", 1};
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
 * publications; "none" keeps no history; "ttl" keeps them 1 s. */
static void hist(void *ud, const char *ch, int *size, int64_t *ttl_ms) {
    ++*(int *)ud;
    *size = strcmp(ch, "none") == 0 ? 0 : strcmp(ch, "ttl") == 0 ? 100 : 3;
    *ttl_ms = strcmp(ch, "ttl") == 0 ? 1000 : 0;
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
        {STORE_EPOCH, old, "h3", 0, "e1", NULL, 0},      /* dead: a publication carries e1 */
        {STORE_PUB, old, "h3", 1, "e1", "x", 1},         /* dead: trimmed by 4 (size 3) */
        {STORE_PUB, old, "h3", 2, "e1", "x", 1},
        {STORE_PUB, old, "h3", 3, "e1", "x", 1},
        {STORE_PUB, old, "h3", 4, "e1", "x", 1},
        {STORE_PUB, old, "none", 1, "e", "x", 1},        /* dead: no history */
        {STORE_PUB, old, "h3", 0, "", "x", 1},           /* dead: offset 0 */
        {STORE_PUB, old, "ttl", 1, "t", "x", 1},         /* dead: expired long before the cutoff */
        {STORE_PUB, old, "r", 1, "q", "x", 1},           /* dead: removed */
        {STORE_REMOVE, old, "r", 1, "q", NULL, 0},       /* dead once applied */
        {STORE_PUB, young, "r", 2, "q", "x", 1},         /* young: kept, and stops the pass */
        {STORE_PUB, old, "h3", 5, "e1", "x", 1},         /* after the stop: kept */
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
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
