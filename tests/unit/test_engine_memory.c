/* Unit tests for src/engine/engine_memory.c: offsets and epochs, the
 * encoded Publication, history queries (limit, since, reverse, epoch),
 * trimming by size and TTL, history_remove, presence with refresh, expiry
 * and stats, join/leave events, memory kept per channel, and publication
 * order under concurrent publishers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_memory.h"

/* ------------------------------------------------------------- helpers */

typedef struct recorder {
    pthread_mutex_t lock;
    int npubs;
    uint64_t last_offset;
    int out_of_order;
    char last_json[256];
    char last_channel[64];
    int joins, leaves;
    char last_info[128];
} recorder;

static void rec_pub(void *ud, const char *channel, const engine_pub *pub) {
    recorder *r = ud;
    pthread_mutex_lock(&r->lock);
    if (pub->offset && pub->offset != r->last_offset + 1) r->out_of_order++;
    if (pub->offset) r->last_offset = pub->offset;
    r->npubs++;
    snprintf(r->last_json, sizeof(r->last_json), "%.*s", (int)pub->json->len,
             (const char *)pub->json->data);
    snprintf(r->last_channel, sizeof(r->last_channel), "%s", channel);
    pthread_mutex_unlock(&r->lock);
}

static void rec_join(void *ud, const char *channel, const char *info, size_t len) {
    recorder *r = ud;
    (void)channel;
    r->joins++;
    snprintf(r->last_info, sizeof(r->last_info), "%.*s", (int)len, info);
}

static void rec_leave(void *ud, const char *channel, const char *info, size_t len) {
    recorder *r = ud;
    (void)channel;
    r->leaves++;
    snprintf(r->last_info, sizeof(r->last_info), "%.*s", (int)len, info);
}

static engine *new_engine(recorder *r) {
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    engine_events ev = { rec_pub, rec_join, rec_leave, r };
    engine *e = engine_memory_new(&ev);
    assert_non_null(e);
    return e;
}

static void free_engine(engine *e, recorder *r) {
    e->ops->destroy(e);
    pthread_mutex_destroy(&r->lock);
}

typedef struct pub_result {
    int called, err;
    engine_stream_top pos;
} pub_result;

static void on_published(void *ud, int err, const engine_stream_top *pos) {
    pub_result *p = ud;
    p->called++;
    p->err = err;
    p->pos = *pos;
}

static pub_result publish_at(engine *e, const char *ch, const char *data, int size,
                             int64_t ttl_ms, int64_t now_ms) {
    engine_publish_req req = {
        .channel = ch, .data = data, .data_len = strlen(data),
        .history_size = size, .history_ttl_ms = ttl_ms, .now_ms = now_ms,
    };
    pub_result p = {0};
    e->ops->publish(e, &req, on_published, &p);
    assert_int_equal(p.called, 1);
    return p;
}

static pub_result publish(engine *e, const char *ch, int size) {
    return publish_at(e, ch, "{}", size, 0, 1000);
}

#define MAXH 64
typedef struct hist_result {
    int called, err;
    engine_stream_top top;
    size_t n;
    uint64_t offsets[MAXH];
} hist_result;

static void on_history(void *ud, int err, const engine_stream_top *top,
                       const engine_pub *pubs, size_t n) {
    hist_result *h = ud;
    h->called++;
    h->err = err;
    h->top = *top;
    h->n = n;
    for (size_t i = 0; i < n && i < MAXH; i++) h->offsets[i] = pubs[i].offset;
}

static hist_result history(engine *e, const char *ch, int limit, int has_since,
                           uint64_t since, const char *epoch, int reverse, int64_t now) {
    engine_history_req req = {
        .channel = ch, .limit = limit, .has_since = has_since, .since_offset = since,
        .since_epoch = epoch, .reverse = reverse, .now_ms = now,
    };
    hist_result h;
    memset(&h, 0, sizeof(h));
    e->ops->history(e, &req, on_history, &h);
    assert_int_equal(h.called, 1);
    return h;
}

/* Checks the returned offsets against a list terminated by 0. */
static void expect_offsets(const hist_result *h, const uint64_t *want) {
    size_t n = 0;
    while (want[n]) n++;
    assert_int_equal(h->err, ENGINE_OK);
    assert_int_equal(h->n, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(h->offsets[i], want[i]);
}

#define OFFS(...) ((const uint64_t[]){ __VA_ARGS__, 0 })

static engine_memory_counts counts(engine *e) {
    engine_memory_counts c;
    engine_memory_counts_get(e, &c);
    return c;
}

/* --------------------------------------------------------------- streams */

static void test_offsets_and_epoch(void **state) {
    (void)state;
    recorder r, r2;
    engine *e = new_engine(&r);
    pub_result first = publish(e, "chat", 10);
    assert_int_equal(first.err, ENGINE_OK);
    assert_int_equal(first.pos.offset, 1);
    assert_int_equal(strlen(first.pos.epoch), 8);
    for (uint64_t i = 2; i <= 25; i++) {
        pub_result p = publish(e, "chat", 10);
        assert_int_equal(p.pos.offset, i);
        assert_string_equal(p.pos.epoch, first.pos.epoch);
    }
    /* Offsets are per channel. */
    assert_int_equal(publish(e, "other", 10).pos.offset, 1);
    /* Another engine (a restart) has another epoch. */
    engine *e2 = new_engine(&r2);
    pub_result again = publish(e2, "chat", 10);
    assert_int_equal(again.pos.offset, 1);
    assert_string_not_equal(again.pos.epoch, first.pos.epoch);
    free_engine(e2, &r2);
    free_engine(e, &r);
}

static void test_publication_json(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    const char *info = "{\"user\":\"u1\",\"client\":\"c1\"}";
    engine_publish_req req = {
        .channel = "room", .data = "{\"x\":1}", .data_len = 7,
        .info = info, .info_len = strlen(info),
        .history_size = 5, .now_ms = 1700000000123,
    };
    pub_result p = {0};
    e->ops->publish(e, &req, on_published, &p);
    assert_string_equal(r.last_channel, "room");
    assert_string_equal(r.last_json, "{\"data\":{\"x\":1},\"info\":{\"user\":\"u1\",\"client\":\"c1\"},"
                                     "\"offset\":1,\"time\":1700000000123}");
    /* No info, no history: offset omitted; time 0 omitted too. */
    publish_at(e, "plain", "\"hi\"", 0, 0, 5);
    assert_string_equal(r.last_json, "{\"data\":\"hi\",\"time\":5}");
    publish_at(e, "plain", "[1,2]", 0, 0, 0);
    assert_string_equal(r.last_json, "{\"data\":[1,2]}");
    assert_int_equal(r.npubs, 3);
    /* The history holds the same bytes. */
    hist_result h = history(e, "room", -1, 0, 0, NULL, 0, 1700000000123);
    expect_offsets(&h, OFFS(1));
    free_engine(e, &r);
}

static void test_no_history(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    pub_result p = publish(e, "ephemeral", 0);
    assert_int_equal(p.err, ENGINE_OK);
    assert_int_equal(p.pos.offset, 0);
    assert_int_equal(r.npubs, 1);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, 0);                /* nothing allocated */
    assert_int_equal(c.streams, 0);
    publish(e, "ephemeral", 0);
    assert_int_equal(counts(e).channels, 0);
    free_engine(e, &r);
}

static void test_history_queries(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    for (int i = 0; i < 10; i++) publish(e, "h", 100);
    hist_result h = history(e, "h", 0, 0, 0, NULL, 0, 1000);
    assert_int_equal(h.err, ENGINE_OK);
    assert_int_equal(h.n, 0);                        /* limit 0: only the top */
    assert_int_equal(h.top.offset, 10);
    const char *epoch = h.top.epoch;
    char ep[ENGINE_EPOCH_MAX + 1];
    strcpy(ep, epoch);

    h = history(e, "h", -1, 0, 0, NULL, 0, 1000);
    expect_offsets(&h, OFFS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    h = history(e, "h", 3, 0, 0, NULL, 0, 1000);
    expect_offsets(&h, OFFS(1, 2, 3));
    h = history(e, "h", -1, 1, 7, ep, 0, 1000);
    expect_offsets(&h, OFFS(8, 9, 10));
    assert_string_equal(h.top.epoch, ep);
    h = history(e, "h", 2, 1, 7, "", 0, 1000);
    expect_offsets(&h, OFFS(8, 9));
    h = history(e, "h", -1, 1, 0, NULL, 0, 1000);
    assert_int_equal(h.n, 10);
    h = history(e, "h", -1, 1, 10, NULL, 0, 1000);
    assert_int_equal(h.n, 0);
    h = history(e, "h", -1, 1, 99, NULL, 0, 1000);
    assert_int_equal(h.n, 0);
    /* Reverse: newest first; with since, offsets below it. */
    h = history(e, "h", -1, 0, 0, NULL, 1, 1000);
    expect_offsets(&h, OFFS(10, 9, 8, 7, 6, 5, 4, 3, 2, 1));
    h = history(e, "h", 3, 0, 0, NULL, 1, 1000);
    expect_offsets(&h, OFFS(10, 9, 8));
    h = history(e, "h", -1, 1, 5, NULL, 1, 1000);
    expect_offsets(&h, OFFS(4, 3, 2, 1));
    h = history(e, "h", 2, 1, 5, NULL, 1, 1000);
    expect_offsets(&h, OFFS(4, 3));
    h = history(e, "h", -1, 1, 1, NULL, 1, 1000);
    assert_int_equal(h.n, 0);
    h = history(e, "h", -1, 1, 50, NULL, 1, 1000);
    assert_int_equal(h.n, 10);
    assert_int_equal(h.offsets[0], 10);
    free_engine(e, &r);
}

static void test_epoch_mismatch(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    publish(e, "h", 10);
    publish(e, "h", 10);
    hist_result h = history(e, "h", -1, 1, 0, "notmine", 0, 1000);
    assert_int_equal(h.err, ENGINE_ERR_EPOCH);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.top.offset, 2);               /* the current position comes along */
    assert_int_equal(strlen(h.top.epoch), 8);
    free_engine(e, &r);
}

static void test_trim_by_size(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    for (int i = 0; i < 12; i++) publish(e, "t", 5);
    hist_result h = history(e, "t", -1, 0, 0, NULL, 0, 1000);
    expect_offsets(&h, OFFS(8, 9, 10, 11, 12));     /* first = top - size + 1 */
    /* Recovery from before the kept window gets what is left. */
    h = history(e, "t", -1, 1, 3, NULL, 0, 1000);
    expect_offsets(&h, OFFS(8, 9, 10, 11, 12));
    /* history_size shrinks (configuration change). */
    publish(e, "t", 2);
    h = history(e, "t", -1, 0, 0, NULL, 0, 1000);
    expect_offsets(&h, OFFS(12, 13));
    /* ... and grows again. */
    for (int i = 0; i < 40; i++) publish(e, "t", 30);
    h = history(e, "t", -1, 0, 0, NULL, 0, 1000);
    assert_int_equal(h.n, 30);
    assert_int_equal(h.offsets[0], 53 - 30 + 1);
    assert_int_equal(h.offsets[29], 53);
    /* A size of one keeps the last publication. */
    publish(e, "one", 1);
    publish(e, "one", 1);
    h = history(e, "one", -1, 0, 0, NULL, 0, 1000);
    expect_offsets(&h, OFFS(2));
    free_engine(e, &r);
}

static void test_ttl(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    publish_at(e, "ttl", "1", 10, 1000, 10000);
    publish_at(e, "ttl", "2", 10, 1000, 10500);
    publish_at(e, "ttl", "3", 10, 1000, 10900);
    hist_result h = history(e, "ttl", -1, 0, 0, NULL, 0, 10999);
    expect_offsets(&h, OFFS(1, 2, 3));
    h = history(e, "ttl", -1, 0, 0, NULL, 0, 11000); /* offset 1 is 1000 ms old */
    expect_offsets(&h, OFFS(2, 3));
    const char *ep0 = h.top.epoch;
    char ep[ENGINE_EPOCH_MAX + 1];
    strcpy(ep, ep0);
    e->ops->tick(e, 11600);
    assert_int_equal(counts(e).publications, 1);
    e->ops->tick(e, 20000);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.publications, 0);
    assert_int_equal(c.streams, 1);                  /* meta stays */
    h = history(e, "ttl", -1, 0, 0, NULL, 0, 20000);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.top.offset, 3);
    assert_string_equal(h.top.epoch, ep);
    /* The stream continues where it was. */
    pub_result p = publish_at(e, "ttl", "4", 10, 1000, 20001);
    assert_int_equal(p.pos.offset, 4);
    assert_string_equal(p.pos.epoch, ep);
    /* Expiry also happens on publish. */
    p = publish_at(e, "ttl", "5", 10, 1000, 30000);
    h = history(e, "ttl", -1, 1, 3, ep, 0, 30000);
    expect_offsets(&h, OFFS(5));
    free_engine(e, &r);
}

static void on_done(void *ud, int err) {
    assert_int_equal(err, ENGINE_OK);
    (*(int *)ud)++;
}

static void test_history_remove_and_unknown(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    /* An unknown channel: top 0 and an epoch that stays (and that the
     * first publication carries). */
    hist_result h = history(e, "new", 0, 0, 0, NULL, 0, 1000);
    assert_int_equal(h.err, ENGINE_OK);
    assert_int_equal(h.top.offset, 0);
    assert_int_equal(strlen(h.top.epoch), 8);
    char ep[ENGINE_EPOCH_MAX + 1];
    strcpy(ep, h.top.epoch);
    h = history(e, "new", -1, 1, 0, ep, 0, 1000);
    assert_int_equal(h.err, ENGINE_OK);
    assert_string_equal(h.top.epoch, ep);
    for (int i = 0; i < 4; i++) {
        pub_result p = publish(e, "new", 10);
        assert_string_equal(p.pos.epoch, ep);
    }
    int done = 0;
    e->ops->history_remove(e, "new", on_done, &done);
    e->ops->history_remove(e, "never-seen", on_done, &done);
    assert_int_equal(done, 2);
    assert_int_equal(counts(e).streams, 1);          /* removing unknown creates nothing */
    h = history(e, "new", -1, 0, 0, NULL, 0, 1000);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.top.offset, 4);
    assert_string_equal(h.top.epoch, ep);
    assert_int_equal(counts(e).publications, 0);
    assert_int_equal(publish(e, "new", 10).pos.offset, 5);
    free_engine(e, &r);
}

/* -------------------------------------------------------------- presence */

typedef struct pres_result {
    int called, err;
    size_t n;
    char dump[512];                  /* "client/user/info;" sorted by client */
    uint32_t clients, users;
} pres_result;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const engine_presence_entry *)a)->client,
                  ((const engine_presence_entry *)b)->client);
}

static void on_presence(void *ud, int err, const engine_presence_entry *en, size_t n) {
    pres_result *p = ud;
    p->called++;
    p->err = err;
    p->n = n;
    engine_presence_entry sorted[16];
    assert_true(n <= 16);
    if (n) memcpy(sorted, en, n * sizeof(*en));
    qsort(sorted, n, sizeof(*en), cmp_entry);
    p->dump[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(p->dump);
        snprintf(p->dump + l, sizeof(p->dump) - l, "%s/%s/%.*s;", sorted[i].client,
                 sorted[i].user, (int)sorted[i].info_len, sorted[i].info);
    }
}

static void on_stats(void *ud, int err, uint32_t clients, uint32_t users) {
    pres_result *p = ud;
    p->called++;
    p->err = err;
    p->clients = clients;
    p->users = users;
}

static void add(engine *e, const char *ch, const char *client, const char *user,
                const char *info, int64_t ttl, int64_t now) {
    engine_presence_entry en = { client, user, info, strlen(info) };
    e->ops->presence_add(e, ch, &en, ttl, now);
}

static pres_result presence(engine *e, const char *ch, int64_t now) {
    pres_result p;
    memset(&p, 0, sizeof(p));
    e->ops->presence(e, ch, now, on_presence, &p);
    assert_int_equal(p.called, 1);
    assert_int_equal(p.err, ENGINE_OK);
    return p;
}

static pres_result stats(engine *e, const char *ch, int64_t now) {
    pres_result p;
    memset(&p, 0, sizeof(p));
    e->ops->presence_stats(e, ch, now, on_stats, &p);
    assert_int_equal(p.called, 1);
    assert_int_equal(p.err, ENGINE_OK);
    return p;
}

static void test_presence(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    pres_result p = presence(e, "room", 0);
    assert_int_equal(p.n, 0);
    p = stats(e, "room", 0);
    assert_int_equal(p.clients, 0);
    assert_int_equal(p.users, 0);

    /* Two users, the first in two tabs. */
    add(e, "room", "c1", "alice", "{\"a\":1}", 1000, 0);
    add(e, "room", "c2", "alice", "{\"a\":2}", 1000, 0);
    add(e, "room", "c3", "bob", "{\"b\":1}", 1000, 0);
    p = stats(e, "room", 10);
    assert_int_equal(p.clients, 3);
    assert_int_equal(p.users, 2);
    p = presence(e, "room", 10);
    assert_string_equal(p.dump, "c1/alice/{\"a\":1};c2/alice/{\"a\":2};c3/bob/{\"b\":1};");

    /* Refresh c1 (new info, later expiry), remove c3. */
    add(e, "room", "c1", "alice", "{\"a\":9}", 1000, 800);
    add(e, "room", "c2", "alice", "{\"a\":2}", 1000, 800);   /* same data: refresh only */
    e->ops->presence_remove(e, "room", "c3");
    e->ops->presence_remove(e, "room", "nobody");
    e->ops->presence_remove(e, "nowhere", "c1");
    p = presence(e, "room", 1500);                   /* the original expiry has passed */
    assert_string_equal(p.dump, "c1/alice/{\"a\":9};c2/alice/{\"a\":2};");
    p = stats(e, "room", 1500);
    assert_int_equal(p.clients, 2);
    assert_int_equal(p.users, 1);

    /* Expiry: entries live while now < added + ttl. */
    add(e, "room", "c4", "", "{}", 5000, 0);         /* anonymous */
    p = stats(e, "room", 1800);
    assert_int_equal(p.clients, 1);
    assert_int_equal(p.users, 1);
    assert_int_equal(counts(e).presence, 1);         /* pruned on access */
    e->ops->tick(e, 5000);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.presence, 0);
    assert_int_equal(c.channels, 0);                 /* nothing left: freed */
    free_engine(e, &r);
}

static void test_presence_and_stream_share_channel(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    publish(e, "both", 10);
    add(e, "both", "c1", "u", "{}", 100, 0);
    assert_int_equal(counts(e).channels, 1);
    e->ops->tick(e, 1000);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, 1);                 /* the stream keeps it */
    assert_int_equal(c.presence, 0);
    assert_int_equal(history(e, "both", -1, 0, 0, NULL, 0, 1000).n, 1);
    free_engine(e, &r);
}

static void test_join_leave(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    e->ops->publish_join(e, "room", "{\"user\":\"u\"}", 12);
    assert_int_equal(r.joins, 1);
    assert_string_equal(r.last_info, "{\"user\":\"u\"}");
    e->ops->publish_leave(e, "room", "{\"user\":\"v\"}", 12);
    assert_int_equal(r.leaves, 1);
    assert_string_equal(r.last_info, "{\"user\":\"v\"}");
    assert_int_equal(counts(e).channels, 0);
    free_engine(e, &r);
    /* An engine without event callbacks is fine. */
    engine *quiet = engine_memory_new(NULL);
    assert_non_null(quiet);
    quiet->ops->publish_join(quiet, "room", "{}", 2);
    assert_int_equal(publish(quiet, "room", 3).pos.offset, 1);
    quiet->ops->destroy(quiet);
}

/* ----------------------------------------------------------- concurrency */

enum { THREADS = 4, PER_THREAD = 3000 };

typedef struct worker_arg {
    engine *e;
    int errors;
} worker_arg;

static void *publisher(void *p) {
    worker_arg *w = p;
    for (int i = 0; i < PER_THREAD; i++) {
        engine_publish_req req = {
            .channel = "hot", .data = "1", .data_len = 1,
            .history_size = 100, .now_ms = 1000,
        };
        pub_result res = {0};
        w->e->ops->publish(w->e, &req, on_published, &res);
        if (res.called != 1 || res.err != ENGINE_OK || res.pos.offset == 0) w->errors++;
        if (i % 64 == 0) {
            add(w->e, "hot", "x", "u", "{}", 10, i);
            w->e->ops->tick(w->e, i);
        }
    }
    return NULL;
}

static void test_concurrent_publish_order(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    pthread_t t[THREADS];
    worker_arg w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_arg){ e, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, publisher, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    /* Every offset 1..N reported once, in increasing order. */
    assert_int_equal(r.npubs, THREADS * PER_THREAD);
    assert_int_equal(r.out_of_order, 0);
    assert_int_equal(r.last_offset, THREADS * PER_THREAD);
    hist_result h = history(e, "hot", 0, 0, 0, NULL, 0, 1000);
    assert_int_equal(h.top.offset, THREADS * PER_THREAD);
    free_engine(e, &r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_and_epoch),
        cmocka_unit_test(test_publication_json),
        cmocka_unit_test(test_no_history),
        cmocka_unit_test(test_history_queries),
        cmocka_unit_test(test_epoch_mismatch),
        cmocka_unit_test(test_trim_by_size),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_history_remove_and_unknown),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_presence_and_stream_share_channel),
        cmocka_unit_test(test_join_leave),
        cmocka_unit_test(test_concurrent_publish_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
