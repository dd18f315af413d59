/* Unit tests for src/engine/engine_durable.c: the memory engine over the
 * durable log. A sync publication is answered and reported once committed
 * and survives a reopen; replay follows the log's rules (a reused offset
 * supersedes, a record past a gap is skipped, removals, new streams and new
 * epochs); after an unclean stop, channels with an open async lease get a
 * new epoch and released ones keep theirs. Real files in a temporary
 * folder; logs are written with the store API to craft exact cases. */
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
#include <sqlite3.h>
#include "core/clock.h"
#include "core/config.h"
#include "engine/engine.h"
#include "engine/engine_memory.h"
#include "store/store.h"

static char dir[64];

static int setup_dir(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/plaza-durable-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A config whose channels keep 10 publications, store in dir/<name>. */
static config cfg_for(const char *name, char *path, size_t len, const char *durability) {
    config c;
    memset(&c, 0, sizeof(c));
    snprintf(path, len, "%s/%s", dir, name);
    c.store_path = path;
    c.store_durability = (char *)durability;
    c.store_commit_window_us = 200;
    c.store_restore_window_s = 3600;
    c.store_lease_idle_ms = 1000;
    c.namespaces.top.history_size = 10;
    c.namespaces.channel_max_length = 255;
    return c;
}

/* Answers arrive on the store thread: wait for them. */
typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls, err, events;
    engine_stream_top top;
    engine_pub pubs[16];
    size_t npubs;
} waiter;

static void on_answer(void *ud, engine_result *res) {
    waiter *w = ud;
    pthread_mutex_lock(&w->lock);
    w->calls++;
    w->err = res->err;
    w->top = res->top;
    w->npubs = res->npubs < 16 ? res->npubs : 16;
    for (size_t i = 0; i < w->npubs; i++) w->pubs[i] = (engine_pub){.offset = res->pubs[i].offset, .time_ms = res->pubs[i].time_ms};
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    engine_result_free(res);
}

static void on_pub(void *ud, const char *channel, const engine_pub *pub) {
    waiter *w = ud;
    (void)channel;
    (void)pub;
    pthread_mutex_lock(&w->lock);
    w->events++;
    pthread_mutex_unlock(&w->lock);
}

static void wait_calls(waiter *w, int n) {
    pthread_mutex_lock(&w->lock);
    while (w->calls < n) pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static engine *open_engine(const config *c, waiter *w) {
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    engine_events ev = {on_pub, NULL, NULL, w, NULL, NULL};
    char err[512] = "";
    engine *e = engine_new(c, &ev, err, sizeof(err));
    if (!e) fprintf(stderr, "engine_new: %s\n", err);
    assert_non_null(e);
    return e;
}

static void close_engine(engine *e) {
    e->ops->quiesce(e);
    e->ops->destroy(e);
}

static engine_stream_top publish(engine *e, waiter *w, const char *channel, const char *data) {
    rcbuf *p = rcbuf_copy(data, strlen(data));
    engine_publish_req req = {channel, p, 10, 0, clock_now_ms(), 0};
    int before = w->calls;
    e->ops->publish(e, &req, on_answer, w);
    rcbuf_unref(p);
    wait_calls(w, before + 1);
    assert_int_equal(w->err, ENGINE_OK);
    return w->top;
}

/* History of channel: top into *top, offsets into out; returns how many. */
static size_t history(engine *e, waiter *w, const char *channel, engine_stream_top *top,
                      uint64_t *out) {
    engine_history_req req = {channel, -1, 0, 0, NULL, 0, clock_now_ms()};
    int before = w->calls;
    e->ops->history(e, &req, on_answer, w);
    wait_calls(w, before + 1);
    assert_int_equal(w->err, ENGINE_OK);
    *top = w->top;
    for (size_t i = 0; i < w->npubs; i++) out[i] = w->pubs[i].offset;
    return w->npubs;
}

static void test_sync_publish_survives_reopen(void **state) {
    (void)state;
    char path[128];
    config c = cfg_for("a", path, sizeof(path), "sync");
    waiter w;
    engine *e = open_engine(&c, &w);
    engine_stream_top t1 = publish(e, &w, "ch", "1");
    publish(e, &w, "ch", "2");
    engine_stream_top t3 = publish(e, &w, "ch", "3");
    assert_int_equal(t1.offset, 1);
    assert_int_equal(t3.offset, 3);
    assert_int_equal(w.events, 3);                 /* reported once committed */
    close_engine(e);
    e = open_engine(&c, &w);
    engine_stream_top top;
    uint64_t offs[16];
    assert_int_equal(history(e, &w, "ch", &top, offs), 3);
    assert_int_equal(top.offset, 3);
    assert_string_equal(top.epoch, t1.epoch);
    assert_int_equal(offs[0], 1);
    assert_int_equal(offs[2], 3);
    assert_int_equal(publish(e, &w, "ch", "4").offset, 4);
    close_engine(e);
}

/* Writes records straight into the store of folder path. */
static void craft(const char *path, const store_rec *recs, size_t n, int unclean) {
    char file[256], err[256];
    char mk[300];
    snprintf(mk, sizeof(mk), "mkdir -p %s", path);
    assert_int_equal(system(mk), 0);
    store_file(path, file, sizeof(file));
    store_opts o = {.sync = 1};
    store *s = store_open(file, &o, err, sizeof(err));
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) assert_int_equal(store_append(s, &recs[i], NULL, NULL), STORE_OK);
    store_close(s);
    if (unclean) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = 0 WHERE key = 'clean'", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
}

#define PUB(ch, off, ep, data) {.kind = STORE_PUB, .time_ms = 1000, .channel = ch, .offset = off, \
    .epoch = ep, .payload = data, .payload_len = sizeof(data) - 1}
#define REC(k, ch, off, ep) {.kind = k, .time_ms = 1000, .channel = ch, .offset = off, .epoch = ep}

static void test_replay_rules(void **state) {
    (void)state;
    char path[128];
    config c = cfg_for("b", path, sizeof(path), "sync");
    store_rec recs[] = {
        /* a: 3 failed (never on disk), 4 committed after it (void), then 3 and 4 again */
        PUB("a", 1, "e1", "a1"), PUB("a", 2, "e1", "a2"), PUB("a", 4, "e1", "a4-void"),
        PUB("a", 3, "e1", "a3"), PUB("a", 4, "e1", "a4"),
        /* b: history removed: top stays */
        PUB("b", 1, "e1", "b1"), PUB("b", 2, "e1", "b2"), REC(STORE_REMOVE, "b", 2, "e1"),
        /* c: a new epoch keeps history and top */
        PUB("c", 1, "e1", "c1"), REC(STORE_REEPOCH, "c", 1, "e2"),
        /* d: a new stream */
        PUB("d", 1, "e1", "d1"), REC(STORE_EPOCH, "d", 0, "e3"),
        /* f: an offset reused after a failed commit supersedes */
        PUB("f", 1, "e1", "f1"), PUB("f", 2, "e1", "f2-failed"), PUB("f", 2, "e1", "f2"),
        /* g: publications on a channel with no history are not replayed */
        PUB("g", 0, "", "g"),
    };
    craft(path, recs, sizeof(recs) / sizeof(recs[0]), 0);
    waiter w;
    engine *e = open_engine(&c, &w);
    engine_stream_top top;
    uint64_t offs[16];
    assert_int_equal(history(e, &w, "a", &top, offs), 4);
    assert_int_equal(top.offset, 4);
    assert_string_equal(top.epoch, "e1");
    for (int i = 0; i < 4; i++) assert_int_equal(offs[i], (uint64_t)i + 1);
    assert_int_equal(history(e, &w, "b", &top, offs), 0);
    assert_int_equal(top.offset, 2);
    assert_int_equal(history(e, &w, "c", &top, offs), 1);
    assert_string_equal(top.epoch, "e2");
    assert_int_equal(history(e, &w, "d", &top, offs), 0);
    assert_int_equal(top.offset, 0);
    assert_string_equal(top.epoch, "e3");
    assert_int_equal(history(e, &w, "f", &top, offs), 2);
    assert_int_equal(top.offset, 2);
    /* the next publications continue each stream */
    assert_int_equal(publish(e, &w, "a", "a5").offset, 5);
    assert_int_equal(publish(e, &w, "b", "b3").offset, 3);
    engine_stream_top d1 = publish(e, &w, "d", "d1");
    assert_int_equal(d1.offset, 1);
    assert_string_equal(d1.epoch, "e3");
    close_engine(e);
}

static void test_unclean_async_leases_get_new_epochs(void **state) {
    (void)state;
    char path[128];
    config c = cfg_for("c", path, sizeof(path), "async");
    store_rec recs[] = {
        REC(STORE_LEASE, "open", 1, "e1"), PUB("open", 1, "e1", "o1"), PUB("open", 2, "e1", "o2"),
        REC(STORE_LEASE, "done", 1, "e1"), PUB("done", 1, "e1", "d1"), REC(STORE_RELEASE, "done", 1, "e1"),
        PUB("sync", 1, "e1", "s1"),
    };
    craft(path, recs, sizeof(recs) / sizeof(recs[0]), 1);
    waiter w;
    engine *e = open_engine(&c, &w);
    engine_stream_top top;
    uint64_t offs[16];
    assert_int_equal(history(e, &w, "open", &top, offs), 2);
    assert_int_equal(top.offset, 2);
    assert_string_not_equal(top.epoch, "e1");           /* may have lost a tail */
    char reepoched[ENGINE_EPOCH_MAX + 1];
    snprintf(reepoched, sizeof(reepoched), "%s", top.epoch);
    history(e, &w, "done", &top, offs);
    assert_string_equal(top.epoch, "e1");
    history(e, &w, "sync", &top, offs);
    assert_string_equal(top.epoch, "e1");
    /* async publications after the first (lease) one answer at once */
    assert_int_equal(publish(e, &w, "open", "o3").offset, 3);
    assert_int_equal(publish(e, &w, "open", "o4").offset, 4);
    close_engine(e);
    /* a clean stop: the new epoch is in the log, and nothing changes again */
    e = open_engine(&c, &w);
    assert_int_equal(history(e, &w, "open", &top, offs), 4);
    assert_string_equal(top.epoch, reepoched);
    close_engine(e);
}

/* A folder that cannot be a store: clear error naming store.path. */
static void test_bad_store_path(void **state) {
    (void)state;
    char path[128];
    config c = cfg_for("file", path, sizeof(path), "sync");
    FILE *f = fopen(path, "w");                           /* a file where the folder should be */
    assert_non_null(f);
    fclose(f);
    char err[512] = "";
    assert_null(engine_new(&c, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "store.path"));
}


/* ---- maps through the log ---- */

static int suppressed_last;

static void on_write(void *ud, engine_result *res) {
    waiter *w = ud;
    pthread_mutex_lock(&w->lock);
    if (res->suppressed) suppressed_last = res->suppressed;
    pthread_mutex_unlock(&w->lock);
    on_answer(ud, res);
}

static void map_write(engine *e, waiter *w, const char *ch, const char *key, const char *data,
                      int key_mode, int64_t key_ttl_ms, int wait) {
    rcbuf *p = data ? rcbuf_copy(data, strlen(data)) : NULL;
    engine_map_write_req req = {.channel = ch, .key = key, .key_len = strlen(key), .remove = !data,
                                .payload = p, .key_mode = key_mode,
                                .map = {.stream_size = 10, .key_ttl_ms = key_ttl_ms},
                                .now_ms = clock_now_ms()};
    int before = w->calls;
    e->ops->map_write(e, &req, on_write, w);
    if (p) rcbuf_unref(p);
    if (wait) wait_calls(w, before + 1);
}

static void keep(void *ud, engine_result *r) { *(engine_result **)ud = r; }

/* The map's keys (state, key order) into out ("k1=3,k9=x"); returns top. */
static engine_stream_top map_state(engine *e, const char *ch, char *out, size_t len) {
    engine_map_state_req req = {.channel = ch, .limit = -1, .now_ms = clock_now_ms()};
    engine_result *res = NULL;
    e->ops->map_state(e, &req, keep, &res);       /* reads answer inline */
    assert_non_null(res);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < res->npubs; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s=%.*s", i ? "," : "",
                              (const char *)res->pubs[i].key->data, (int)res->pubs[i].payload->len,
                              (const char *)res->pubs[i].payload->data);
    engine_stream_top top = res->top;
    engine_result_free(res);
    return top;
}

static void test_maps_through_the_log(void **state) {
    (void)state;
    char path[128], got[256];
    config c = cfg_for("maps", path, sizeof(path), "async");   /* maps commit first even so */
    ns_options spaces[2] = {
        {.name = "m", .subscription_type = NS_SUB_MAP, .map_mode = NS_MAP_PERSISTENT, .map_stream_size = 10},
        {.name = "t", .subscription_type = NS_SUB_MAP, .map_mode = NS_MAP_RECOVERABLE,
         .map_key_ttl_ms = 300, .map_stream_size = 10},
    };
    c.namespaces.spaces = spaces;
    c.namespaces.nspaces = 2;
    waiter w;
    engine *e = open_engine(&c, &w);
    map_write(e, &w, "m:a", "k1", "1", ENGINE_KEY_ANY, 0, 1);
    map_write(e, &w, "m:a", "k2", "2", ENGINE_KEY_ANY, 0, 1);
    map_write(e, &w, "m:a", "k1", "3", ENGINE_KEY_ANY, 0, 1);
    map_write(e, &w, "m:a", "k2", NULL, ENGINE_KEY_ANY, 0, 1);
    assert_int_equal(w.err, ENGINE_OK);
    assert_int_equal(w.top.offset, 4);
    assert_int_equal(w.events, 4);                  /* reported once committed */
    /* two if_new writes back to back: the second sees the first, still
     * waiting for its commit, and is suppressed */
    suppressed_last = 0;
    int before = w.calls;
    map_write(e, &w, "m:a", "k9", "x", ENGINE_KEY_IF_NEW, 0, 0);
    map_write(e, &w, "m:a", "k9", "y", ENGINE_KEY_IF_NEW, 0, 0);
    wait_calls(&w, before + 2);
    assert_int_equal(suppressed_last, ENGINE_SUPPRESS_KEY_EXISTS);
    engine_stream_top t = map_state(e, "m:a", got, sizeof(got));
    assert_string_equal(got, "k1=3,k9=x");
    assert_int_equal(t.offset, 5);
    map_write(e, &w, "t:x", "soon", "1", ENGINE_KEY_ANY, 300, 1);
    close_engine(e);

    e = open_engine(&c, &w);                         /* replayed from the log */
    engine_stream_top t2 = map_state(e, "m:a", got, sizeof(got));
    assert_string_equal(got, "k1=3,k9=x");
    assert_int_equal(t2.offset, 5);
    assert_string_equal(t2.epoch, t.epoch);
    engine_stream_top top;
    uint64_t offs[16];
    assert_int_equal(history(e, &w, "m:a", &top, offs), 5);     /* the stream too */
    assert_int_equal(offs[4], 5);
    map_write(e, &w, "m:a", "k1", "4", ENGINE_KEY_ANY, 0, 1);
    assert_int_equal(w.top.offset, 6);
    /* a key that expired while the engine was closed goes as a change */
    usleep(350 * 1000);
    int events = w.events;
    engine_memory_sweep(e, clock_now_ms());
    for (int i = 0; i < 200 && w.events == events; i++) usleep(5000);
    assert_int_equal(w.events, events + 1);
    map_state(e, "t:x", got, sizeof(got));
    assert_string_equal(got, "");
    close_engine(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_publish_survives_reopen),
        cmocka_unit_test(test_replay_rules),
        cmocka_unit_test(test_unclean_async_leases_get_new_epochs),
        cmocka_unit_test(test_bad_store_path),
        cmocka_unit_test(test_maps_through_the_log),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
