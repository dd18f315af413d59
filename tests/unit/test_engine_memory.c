/* Unit tests for src/engine/engine_memory.c (and the shared parts in
 * engine.c): every operation answers exactly once through its callback
 * (before returning, for this engine); offsets and epochs; the opaque
 * payload, offset and time coming back unchanged in events and history;
 * publishing without history touching no state; history queries (limit,
 * since, reverse, epoch mismatch); trimming by size and TTL; history_remove;
 * channel interest keeping a stream's meta, and its absence letting sweeps
 * free it (no memory left per channel name ever used); the sweeper thread;
 * presence with refresh, expiry and stats; join/leave events; gauges;
 * NULL callbacks; result, error and operation-name helpers; and publication
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
#include <uv.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/rcbuf.h"
#include "engine/engine.h"
#include "engine/engine_memory.h"

/* ASan (and TSan) make the one-million-channel test several times slower
 * and bigger: those builds use 100,000 names instead. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PLAZA_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PLAZA_TEST_SANITIZED 1
#endif
#endif

/* ------------------------------------------------------------- helpers */

/* The events the engine reports, recorded. Publications of channel "hot"
 * are checked for order (the concurrency test). */
typedef struct recorder {
    pthread_mutex_t lock;
    int npubs;
    uint64_t hot_last, last_offset;
    int hot_out_of_order;
    char last_channel[64];
    rcbuf *last_payload;             /* a reference the recorder holds */
    int64_t last_time;
    int joins, leaves;
    char last_info[128];
} recorder;

static void rec_pub(void *ud, const char *channel, const engine_pub *pub) {
    recorder *r = ud;
    pthread_mutex_lock(&r->lock);
    if (strcmp(channel, "hot") == 0) {
        if (pub->offset != r->hot_last + 1) r->hot_out_of_order++;
        r->hot_last = pub->offset;
    }
    r->npubs++;
    r->last_offset = pub->offset;
    r->last_time = pub->time_ms;
    snprintf(r->last_channel, sizeof(r->last_channel), "%s", channel);
    rcbuf_unref(r->last_payload);
    r->last_payload = rcbuf_ref(pub->payload);
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
    engine_events ev = { rec_pub, rec_join, rec_leave, r, NULL, NULL };
    engine *e = engine_memory_new(NULL, &ev);     /* no sweeper thread */
    assert_non_null(e);
    return e;
}

static void free_engine(engine *e, recorder *r) {
    e->ops->destroy(e);
    rcbuf_unref(r->last_payload);
    pthread_mutex_destroy(&r->lock);
}

/* Synchronous capture: the memory engine answers before the call returns,
 * so after the call `calls` must be exactly 1 and `res` is ours. */
typedef struct capture {
    int calls;
    engine_result *res;
} capture;

static void on_result(void *ud, engine_result *res) {
    capture *c = ud;
    c->calls++;
    engine_result_free(c->res);          /* a second answer: keep the last */
    c->res = res;
}

/* The one answer of an operation on c; the caller frees it. */
static engine_result *answer(capture *c, engine_op op) {
    assert_int_equal(c->calls, 1);
    assert_non_null(c->res);
    assert_int_equal(c->res->op, op);
    return c->res;
}

/* Asserts the one answer is err and frees it. */
static void expect_answer(capture *c, engine_op op, int err) {
    engine_result *res = answer(c, op);
    assert_int_equal(res->err, err);
    engine_result_free(res);
}

typedef struct pub_result {
    int err;
    engine_stream_top pos;
} pub_result;

static pub_result publish_buf(engine *e, const char *ch, rcbuf *payload, int size,
                              int64_t ttl_ms, int64_t now_ms) {
    engine_publish_req req = {
        .channel = ch, .payload = payload,
        .history_size = size, .history_ttl_ms = ttl_ms, .now_ms = now_ms,
    };
    capture c = {0};
    e->ops->publish(e, &req, on_result, &c);
    engine_result *res = answer(&c, ENGINE_OP_PUBLISH);
    pub_result p = { res->err, res->top };
    assert_null(res->pubs);
    assert_int_equal(res->npubs, 0);
    engine_result_free(res);
    return p;
}

static pub_result publish_at(engine *e, const char *ch, const char *data, int size,
                             int64_t ttl_ms, int64_t now_ms) {
    rcbuf *b = rcbuf_copy(data, strlen(data));
    assert_non_null(b);
    pub_result p = publish_buf(e, ch, b, size, ttl_ms, now_ms);
    rcbuf_unref(b);                      /* the engine holds its own */
    return p;
}

static pub_result publish(engine *e, const char *ch, int size) {
    return publish_at(e, ch, "{}", size, 0, 1000);
}

#define MAXH 64
typedef struct hist_result {
    int err;
    engine_stream_top top;
    size_t n;
    uint64_t offsets[MAXH];
} hist_result;

static engine_result *history_raw(engine *e, const char *ch, int limit, int has_since,
                                  uint64_t since, const char *epoch, int reverse,
                                  int64_t now) {
    engine_history_req req = {
        .channel = ch, .limit = limit, .has_since = has_since, .since_offset = since,
        .since_epoch = epoch, .reverse = reverse, .now_ms = now,
    };
    capture c = {0};
    e->ops->history(e, &req, on_result, &c);
    return answer(&c, ENGINE_OP_HISTORY);
}

static hist_result history(engine *e, const char *ch, int limit, int has_since,
                           uint64_t since, const char *epoch, int reverse, int64_t now) {
    engine_result *res = history_raw(e, ch, limit, has_since, since, epoch, reverse, now);
    hist_result h;
    memset(&h, 0, sizeof(h));
    h.err = res->err;
    h.top = res->top;
    h.n = res->npubs;
    assert_true(h.n <= MAXH);
    for (size_t i = 0; i < h.n; i++) h.offsets[i] = res->pubs[i].offset;
    engine_result_free(res);
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

static void subscribe(engine *e, const char *ch) {
    capture c = {0};
    e->ops->subscribe(e, ch, on_result, &c);
    expect_answer(&c, ENGINE_OP_SUBSCRIBE, ENGINE_OK);
}

static void unsubscribe(engine *e, const char *ch) {
    capture c = {0};
    e->ops->unsubscribe(e, ch, on_result, &c);
    expect_answer(&c, ENGINE_OP_UNSUBSCRIBE, ENGINE_OK);
}

static void history_remove(engine *e, const char *ch) {
    capture c = {0};
    e->ops->history_remove(e, ch, on_result, &c);
    expect_answer(&c, ENGINE_OP_HISTORY_REMOVE, ENGINE_OK);
}

static engine_memory_counts counts(engine *e) {
    engine_memory_counts c;
    engine_memory_counts_get(e, &c);
    return c;
}

static unsigned refs(rcbuf *b) { return atomic_load(&b->refs); }

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
        assert_int_equal(p.err, ENGINE_OK);
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

/* The engine does not look into payloads: the same buffer, with the offset
 * and time it assigned, comes back in the event and in history; it keeps
 * one reference per stored publication and none without history. */
static void test_payload_round_trip(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    static const uint8_t bytes[] = { 0x00, 0xff, '{', 0x01, '"', 0x00, 0x7f };
    rcbuf *b = rcbuf_copy(bytes, sizeof(bytes));
    assert_non_null(b);

    pub_result p = publish_buf(e, "room", b, 5, 0, 1700000000123);
    assert_int_equal(p.err, ENGINE_OK);
    assert_int_equal(p.pos.offset, 1);
    assert_string_equal(r.last_channel, "room");
    assert_ptr_equal(r.last_payload, b);             /* the same bytes, not a copy */
    assert_int_equal(r.last_offset, 1);
    assert_int_equal(r.last_time, 1700000000123);
    rcbuf_unref(r.last_payload);
    r.last_payload = NULL;
    assert_int_equal(refs(b), 2);                    /* ours and the history's */

    engine_result *res = history_raw(e, "room", -1, 0, 0, NULL, 0, 1700000000123);
    assert_int_equal(res->err, ENGINE_OK);
    assert_int_equal(res->npubs, 1);
    assert_ptr_equal(res->pubs[0].payload, b);
    assert_int_equal(res->pubs[0].offset, 1);
    assert_int_equal(res->pubs[0].time_ms, 1700000000123);
    assert_int_equal(res->pubs[0].payload->len, sizeof(bytes));
    assert_memory_equal(res->pubs[0].payload->data, bytes, sizeof(bytes));
    assert_int_equal(refs(b), 3);                    /* the answer holds one */
    engine_result_free(res);
    assert_int_equal(refs(b), 2);

    /* Without history: offset 0, the time still comes along, no reference
     * kept. */
    rcbuf *plain = rcbuf_copy("hi", 2);
    p = publish_buf(e, "plain", plain, 0, 0, 5);
    assert_int_equal(p.err, ENGINE_OK);
    assert_int_equal(p.pos.offset, 0);
    assert_ptr_equal(r.last_payload, plain);
    assert_int_equal(r.last_offset, 0);
    assert_int_equal(r.last_time, 5);
    rcbuf_unref(r.last_payload);
    r.last_payload = NULL;
    assert_int_equal(refs(plain), 1);
    rcbuf_unref(plain);
    assert_int_equal(r.npubs, 2);

    /* The history's reference goes with the engine. */
    free_engine(e, &r);
    assert_int_equal(refs(b), 1);
    rcbuf_unref(b);
}

static void test_no_history(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    pub_result p = publish(e, "ephemeral", 0);
    assert_int_equal(p.err, ENGINE_OK);
    assert_int_equal(p.pos.offset, 0);
    assert_int_equal(p.pos.epoch[0], '\0');
    assert_int_equal(r.npubs, 1);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, 0);                /* nothing allocated */
    assert_int_equal(c.streams, 0);
    publish(e, "ephemeral", 0);
    assert_int_equal(counts(e).channels, 0);
    assert_int_equal(r.npubs, 2);
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
    char ep[ENGINE_EPOCH_MAX + 1];
    strcpy(ep, h.top.epoch);

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
    assert_int_equal(h.err, ENGINE_OK);
    assert_int_equal(h.n, 0);
    h = history(e, "h", -1, 1, 99, NULL, 0, 1000);
    assert_int_equal(h.err, ENGINE_OK);
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
    assert_int_equal(counts(e).publications, 5);
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

/* TTL expiry on read, on sweep and on publish. The channel has a
 * subscriber, so its meta outlives the publications. */
static void test_ttl(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    subscribe(e, "ttl");
    publish_at(e, "ttl", "1", 10, 1000, 10000);
    publish_at(e, "ttl", "2", 10, 1000, 10500);
    publish_at(e, "ttl", "3", 10, 1000, 10900);
    hist_result h = history(e, "ttl", -1, 0, 0, NULL, 0, 10999);
    expect_offsets(&h, OFFS(1, 2, 3));
    h = history(e, "ttl", -1, 0, 0, NULL, 0, 11000); /* offset 1 is 1000 ms old */
    expect_offsets(&h, OFFS(2, 3));
    char ep[ENGINE_EPOCH_MAX + 1];
    strcpy(ep, h.top.epoch);
    engine_memory_sweep(e, 11600);
    assert_int_equal(counts(e).publications, 1);
    engine_memory_sweep(e, 20000);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.publications, 0);
    assert_int_equal(c.streams, 1);                  /* meta stays: subscribed */
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
    assert_int_equal(counts(e).publications, 1);
    h = history(e, "ttl", -1, 1, 3, ep, 0, 30000);
    expect_offsets(&h, OFFS(5));
    free_engine(e, &r);
}

/* History of a channel never published to creates its stream, whose epoch
 * the first publication carries; history_remove keeps offset and epoch
 * while the channel is of interest, and creates nothing for an unknown
 * channel. */
static void test_history_remove_and_unknown(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    subscribe(e, "new");
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
    history_remove(e, "new");
    history_remove(e, "never-seen");
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, 1);                 /* removing unknown creates nothing */
    assert_int_equal(c.streams, 1);
    assert_int_equal(c.publications, 0);
    engine_memory_sweep(e, 1000000);
    assert_int_equal(counts(e).streams, 1);          /* still subscribed */
    h = history(e, "new", -1, 0, 0, NULL, 0, 1000);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.top.offset, 4);
    assert_string_equal(h.top.epoch, ep);
    pub_result p = publish(e, "new", 10);
    assert_int_equal(p.pos.offset, 5);
    assert_string_equal(p.pos.epoch, ep);
    free_engine(e, &r);
}

/* -------------------------------------------------------------- interest */

/* Interest keeps the meta through an empty history; without it the meta
 * goes and the next publication starts a new epoch at offset 1. */
static void test_interest_keeps_stream(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    subscribe(e, "s");
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, 1);                 /* interest alone is a channel */
    assert_int_equal(c.streams, 0);
    pub_result p = publish_at(e, "s", "a", 10, 100, 10000);
    assert_int_equal(p.pos.offset, 1);
    char ep[ENGINE_EPOCH_MAX + 1];
    strcpy(ep, p.pos.epoch);
    publish_at(e, "s", "b", 10, 100, 10000);

    engine_memory_sweep(e, 20000);                   /* both expired */
    c = counts(e);
    assert_int_equal(c.publications, 0);
    assert_int_equal(c.streams, 1);
    assert_int_equal(c.channels, 1);
    p = publish_at(e, "s", "c", 10, 100, 20000);
    assert_int_equal(p.pos.offset, 3);
    assert_string_equal(p.pos.epoch, ep);
    history_remove(e, "s");
    engine_memory_sweep(e, 20001);
    assert_int_equal(counts(e).streams, 1);
    p = publish_at(e, "s", "d", 10, 100, 20001);
    assert_int_equal(p.pos.offset, 4);
    assert_string_equal(p.pos.epoch, ep);

    /* Interest ends: once history is empty, the meta is freed. */
    unsubscribe(e, "s");
    assert_int_equal(counts(e).streams, 1);          /* offset 4 is still in history */
    engine_memory_sweep(e, 30000);
    c = counts(e);
    assert_int_equal(c.channels, 0);
    assert_int_equal(c.streams, 0);
    assert_int_equal(c.publications, 0);
    p = publish_at(e, "s", "e", 10, 100, 30000);
    assert_int_equal(p.err, ENGINE_OK);
    assert_int_equal(p.pos.offset, 1);
    assert_int_equal(strlen(p.pos.epoch), 8);
    assert_string_not_equal(p.pos.epoch, ep);
    /* A recovering client with the old epoch hears so. */
    hist_result h = history(e, "s", -1, 1, 4, ep, 0, 30000);
    assert_int_equal(h.err, ENGINE_ERR_EPOCH);
    free_engine(e, &r);
}

/* Unsubscribing a channel that holds nothing frees it at once; unsubscribe
 * of a channel never subscribed answers OK and creates nothing. */
static void test_interest_only_channel(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    subscribe(e, "x");
    subscribe(e, "y");
    assert_int_equal(counts(e).channels, 2);
    unsubscribe(e, "x");
    assert_int_equal(counts(e).channels, 1);
    unsubscribe(e, "never");
    assert_int_equal(counts(e).channels, 1);
    subscribe(e, "x");                               /* again, after unsubscribe */
    unsubscribe(e, "x");
    unsubscribe(e, "y");
    assert_int_equal(counts(e).channels, 0);
    free_engine(e, &r);
}

/* Without interest, a stream whose history empties (TTL, history_remove)
 * is freed by the sweep. */
static void test_gc_without_interest(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    pub_result p = publish_at(e, "g", "1", 10, 50, 1000);
    char ep[ENGINE_EPOCH_MAX + 1];
    strcpy(ep, p.pos.epoch);
    publish_at(e, "g", "2", 10, 50, 1010);
    engine_memory_sweep(e, 1049);                    /* nothing expired yet */
    assert_int_equal(counts(e).streams, 1);
    assert_int_equal(counts(e).publications, 2);
    engine_memory_sweep(e, 1060);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, 0);
    assert_int_equal(c.streams, 0);
    p = publish_at(e, "g", "3", 10, 50, 2000);
    assert_int_equal(p.pos.offset, 1);
    assert_string_not_equal(p.pos.epoch, ep);

    /* history_remove without interest: gone at the next sweep. */
    publish(e, "h", 10);
    history_remove(e, "h");
    engine_memory_sweep(e, 2000);
    assert_int_equal(counts(e).streams, 1);          /* "g" still holds offset 1 */
    assert_int_equal(history(e, "h", 0, 0, 0, NULL, 0, 2000).top.offset, 0);
    free_engine(e, &r);
}

/* Memory per channel name ever used returns to nothing: a million distinct
 * names, published once each with a short TTL, leave no trace after a
 * sweep. (Sanitizer builds use 100,000 names to stay within a few
 * seconds.) */
#ifdef PLAZA_TEST_SANITIZED
#define MANY_CHANNELS 100000
#else
#define MANY_CHANNELS 1000000
#endif

static void count_ok(void *ud, engine_result *res) {
    if (res->err == ENGINE_OK && res->op == ENGINE_OP_PUBLISH && res->top.offset == 1)
        (*(size_t *)ud)++;
    engine_result_free(res);
}

static void test_no_leak_per_channel_name(void **state) {
    (void)state;
    engine *e = engine_memory_new(NULL, NULL);
    assert_non_null(e);
    rcbuf *b = rcbuf_copy("x", 1);
    size_t ok = 0;
    char name[32];
    for (int i = 0; i < MANY_CHANNELS; i++) {
        snprintf(name, sizeof(name), "ch:%d", i);
        engine_publish_req req = {
            .channel = name, .payload = b,
            .history_size = 1, .history_ttl_ms = 1, .now_ms = 1000,
        };
        e->ops->publish(e, &req, count_ok, &ok);
    }
    assert_int_equal(ok, MANY_CHANNELS);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, MANY_CHANNELS);
    assert_int_equal(c.streams, MANY_CHANNELS);
    assert_int_equal(c.publications, MANY_CHANNELS);
    assert_int_equal(refs(b), MANY_CHANNELS + 1);

    engine_memory_sweep(e, (int64_t)1 << 50);
    c = counts(e);
    assert_int_equal(c.channels, 0);
    assert_int_equal(c.streams, 0);
    assert_int_equal(c.publications, 0);
    assert_int_equal(c.presence, 0);
    assert_int_equal(refs(b), 1);                    /* every stored reference released */
    e->ops->destroy(e);
    rcbuf_unref(b);
}

/* ------------------------------------------------------------- sweeper */

static engine *engine_with_sweeper(int interval_ms) {
    config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.engine_sweep_interval_ms = interval_ms;
    engine *e = engine_memory_new(&cfg, NULL);
    assert_non_null(e);
    return e;
}

/* A config with engine_sweep_interval_ms > 0 starts a thread that expires
 * history (and frees the channel) with no explicit sweep. */
static void test_sweeper_thread_expires(void **state) {
    (void)state;
    engine *e = engine_with_sweeper(20);
    pub_result p = publish_at(e, "soon", "x", 10, 50, clock_now_ms());
    assert_int_equal(p.err, ENGINE_OK);
    assert_int_equal(p.pos.offset, 1);
    uint64_t deadline = uv_hrtime() + 1000000000ull;   /* 1 s */
    engine_memory_counts c = counts(e);
    while ((c.publications || c.channels) && uv_hrtime() < deadline) {
        uv_sleep(5);
        c = counts(e);
    }
    assert_int_equal(c.publications, 0);
    assert_int_equal(c.streams, 0);
    assert_int_equal(c.channels, 0);
    uint64_t t0 = uv_hrtime();
    e->ops->destroy(e);
    assert_true(uv_hrtime() - t0 < 500000000ull);
}

/* destroy does not wait out the interval (3 s here): it wakes and joins
 * the thread. */
static void test_sweeper_destroy_is_prompt(void **state) {
    (void)state;
    engine *e = engine_with_sweeper(3000);
    publish_at(e, "kept", "x", 10, 1, 1000);         /* expired, but nobody sweeps */
    uv_sleep(10);
    assert_int_equal(counts(e).publications, 1);
    uint64_t t0 = uv_hrtime();
    e->ops->destroy(e);
    assert_true(uv_hrtime() - t0 < 500000000ull);
    /* ... also right after creation (the thread may not have waited yet). */
    e = engine_with_sweeper(3000);
    t0 = uv_hrtime();
    e->ops->destroy(e);
    assert_true(uv_hrtime() - t0 < 500000000ull);
}

/* -------------------------------------------------------------- presence */

typedef struct pres_result {
    int err;
    size_t n;
    char dump[512];                  /* "client/user/info;" sorted by client */
    uint32_t clients, users;
} pres_result;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const engine_presence_entry *)a)->client,
                  ((const engine_presence_entry *)b)->client);
}

static void add(engine *e, const char *ch, const char *client, const char *user,
                const char *info, int64_t ttl, int64_t now) {
    engine_presence_entry en = { client, user, info, strlen(info) };
    capture c = {0};
    e->ops->presence_add(e, ch, &en, ttl, now, on_result, &c);
    expect_answer(&c, ENGINE_OP_PRESENCE_ADD, ENGINE_OK);
}

static void presence_remove(engine *e, const char *ch, const char *client) {
    capture c = {0};
    e->ops->presence_remove(e, ch, client, on_result, &c);
    expect_answer(&c, ENGINE_OP_PRESENCE_REMOVE, ENGINE_OK);
}

static pres_result presence(engine *e, const char *ch, int64_t now) {
    capture c = {0};
    e->ops->presence(e, ch, now, on_result, &c);
    engine_result *res = answer(&c, ENGINE_OP_PRESENCE);
    assert_int_equal(res->err, ENGINE_OK);
    pres_result p;
    memset(&p, 0, sizeof(p));
    p.n = res->nentries;
    assert_true(p.n <= 16);
    engine_presence_entry sorted[16];
    if (p.n) memcpy(sorted, res->entries, p.n * sizeof(sorted[0]));
    qsort(sorted, p.n, sizeof(sorted[0]), cmp_entry);
    for (size_t i = 0; i < p.n; i++) {
        size_t l = strlen(p.dump);
        snprintf(p.dump + l, sizeof(p.dump) - l, "%s/%s/%.*s;", sorted[i].client,
                 sorted[i].user, (int)sorted[i].info_len, sorted[i].info);
    }
    engine_result_free(res);
    return p;
}

static pres_result stats(engine *e, const char *ch, int64_t now) {
    capture c = {0};
    e->ops->presence_stats(e, ch, now, on_result, &c);
    engine_result *res = answer(&c, ENGINE_OP_PRESENCE_STATS);
    assert_int_equal(res->err, ENGINE_OK);
    pres_result p;
    memset(&p, 0, sizeof(p));
    p.clients = res->num_clients;
    p.users = res->num_users;
    engine_result_free(res);
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
    assert_int_equal(counts(e).channels, 0);         /* reading creates nothing */

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
    presence_remove(e, "room", "c3");
    presence_remove(e, "room", "nobody");
    presence_remove(e, "nowhere", "c1");
    p = presence(e, "room", 1500);                   /* the original expiry has passed */
    assert_string_equal(p.dump, "c1/alice/{\"a\":9};c2/alice/{\"a\":2};");
    p = stats(e, "room", 1500);
    assert_int_equal(p.clients, 2);
    assert_int_equal(p.users, 1);

    /* Expiry: entries live while now < added + ttl. */
    add(e, "room", "c4", "", "{}", 5000, 0);         /* anonymous */
    p = stats(e, "room", 1799);
    assert_int_equal(p.clients, 3);
    p = stats(e, "room", 1800);
    assert_int_equal(p.clients, 1);
    assert_int_equal(p.users, 1);
    assert_int_equal(counts(e).presence, 1);         /* pruned on access */
    engine_memory_sweep(e, 5000);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.presence, 0);
    assert_int_equal(c.channels, 0);                 /* nothing left: freed */

    /* Removing the last entry frees the channel at once. */
    add(e, "solo", "c1", "u", "", 1000, 0);
    assert_int_equal(counts(e).channels, 1);
    presence_remove(e, "solo", "c1");
    assert_int_equal(counts(e).channels, 0);
    free_engine(e, &r);
}

static void test_presence_and_stream_share_channel(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    publish(e, "both", 10);
    add(e, "both", "c1", "u", "{}", 100, 0);
    assert_int_equal(counts(e).channels, 1);
    engine_memory_sweep(e, 1000);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.channels, 1);                 /* the stream keeps it */
    assert_int_equal(c.streams, 1);
    assert_int_equal(c.presence, 0);
    assert_int_equal(history(e, "both", -1, 0, 0, NULL, 0, 1000).n, 1);
    /* And presence keeps the channel once the stream is gone. */
    add(e, "both", "c2", "u", "{}", 100000, 1000);
    history_remove(e, "both");
    engine_memory_sweep(e, 2000);
    c = counts(e);
    assert_int_equal(c.channels, 1);
    assert_int_equal(c.streams, 0);
    assert_int_equal(c.presence, 1);
    assert_int_equal(presence(e, "both", 2000).n, 1);
    free_engine(e, &r);
}

/* ---------------------------------------------------------------- events */

static void test_join_leave(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    capture c = {0};
    e->ops->publish_join(e, "room", "{\"user\":\"u\"}", 12, on_result, &c);
    expect_answer(&c, ENGINE_OP_JOIN, ENGINE_OK);
    assert_int_equal(r.joins, 1);
    assert_string_equal(r.last_info, "{\"user\":\"u\"}");
    c = (capture){0};
    e->ops->publish_leave(e, "room", "{\"user\":\"v\"}", 12, on_result, &c);
    expect_answer(&c, ENGINE_OP_LEAVE, ENGINE_OK);
    assert_int_equal(r.leaves, 1);
    assert_string_equal(r.last_info, "{\"user\":\"v\"}");
    assert_int_equal(counts(e).channels, 0);
    free_engine(e, &r);

    /* An engine without event callbacks is fine, and still answers. */
    engine *quiet = engine_memory_new(NULL, NULL);
    assert_non_null(quiet);
    c = (capture){0};
    quiet->ops->publish_join(quiet, "room", "{}", 2, on_result, &c);
    expect_answer(&c, ENGINE_OP_JOIN, ENGINE_OK);
    c = (capture){0};
    quiet->ops->publish_leave(quiet, "room", "{}", 2, on_result, &c);
    expect_answer(&c, ENGINE_OP_LEAVE, ENGINE_OK);
    assert_int_equal(publish(quiet, "room", 3).pos.offset, 1);
    quiet->ops->destroy(quiet);
}

/* A NULL callback means "no answer wanted": every operation still does its
 * work (and frees its result: ASan builds check). */
static void test_null_callback(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    rcbuf *b = rcbuf_copy("p", 1);
    engine_publish_req req = { .channel = "n", .payload = b, .history_size = 10, .now_ms = 1 };
    e->ops->subscribe(e, "n", NULL, NULL);
    e->ops->publish(e, &req, NULL, NULL);
    e->ops->publish(e, &req, NULL, NULL);
    assert_int_equal(r.npubs, 2);
    engine_history_req hreq = { .channel = "n", .limit = -1, .now_ms = 1 };
    e->ops->history(e, &hreq, NULL, NULL);
    e->ops->publish_join(e, "n", "j", 1, NULL, NULL);
    e->ops->publish_leave(e, "n", "l", 1, NULL, NULL);
    assert_int_equal(r.joins, 1);
    assert_int_equal(r.leaves, 1);
    engine_presence_entry en = { "c", "u", "i", 1 };
    e->ops->presence_add(e, "n", &en, 1000, 1, NULL, NULL);
    e->ops->presence(e, "n", 1, NULL, NULL);
    e->ops->presence_stats(e, "n", 1, NULL, NULL);
    engine_memory_counts c = counts(e);
    assert_int_equal(c.publications, 2);
    assert_int_equal(c.presence, 1);
    e->ops->presence_remove(e, "n", "c", NULL, NULL);
    e->ops->history_remove(e, "n", NULL, NULL);
    c = counts(e);
    assert_int_equal(c.publications, 0);
    assert_int_equal(c.presence, 0);
    assert_int_equal(c.streams, 1);
    e->ops->unsubscribe(e, "n", NULL, NULL);
    engine_memory_sweep(e, 2);
    assert_int_equal(counts(e).channels, 0);
    e->ops->quiesce(e);                              /* nothing in flight: a no-op */
    free_engine(e, &r);
    assert_int_equal(refs(b), 1);
    rcbuf_unref(b);
}

/* ---------------------------------------------------------------- gauges */

typedef struct gauge_rec {
    int n;
    char names[8][64];
    uint64_t values[8];
    int bad_help;
} gauge_rec;

static void on_gauge(void *ud, const char *name, const char *help, uint64_t value) {
    gauge_rec *g = ud;
    if (!help || !help[0]) g->bad_help++;
    if (g->n < 8) {
        snprintf(g->names[g->n], sizeof(g->names[0]), "%s", name);
        g->values[g->n] = value;
    }
    g->n++;
}

static uint64_t gauge(const gauge_rec *g, const char *name) {
    for (int i = 0; i < g->n && i < 8; i++)
        if (strcmp(g->names[i], name) == 0) return g->values[i];
    fail_msg("gauge %s not reported", name);
    return 0;
}

static void test_gauges(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    assert_non_null(e->ops->gauges);
    gauge_rec g;
    memset(&g, 0, sizeof(g));
    e->ops->gauges(e, on_gauge, &g);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.bad_help, 0);
    assert_int_equal(gauge(&g, "plaza_engine_channels"), 0);
    assert_int_equal(gauge(&g, "plaza_engine_streams"), 0);
    assert_int_equal(gauge(&g, "plaza_engine_history_publications"), 0);
    assert_int_equal(gauge(&g, "plaza_engine_presence_entries"), 0);

    for (int i = 0; i < 3; i++) publish(e, "a", 10);
    publish(e, "b", 10);
    add(e, "p", "c1", "u1", "", 1000, 0);
    add(e, "p", "c2", "u2", "", 1000, 0);
    subscribe(e, "s");
    memset(&g, 0, sizeof(g));
    e->ops->gauges(e, on_gauge, &g);
    assert_int_equal(g.n, 4);
    assert_int_equal(gauge(&g, "plaza_engine_channels"), 4);
    assert_int_equal(gauge(&g, "plaza_engine_streams"), 2);
    assert_int_equal(gauge(&g, "plaza_engine_history_publications"), 4);
    assert_int_equal(gauge(&g, "plaza_engine_presence_entries"), 2);
    free_engine(e, &r);
}

/* ------------------------------------------------------- shared helpers */

static int answers;
static engine_result *answered;

static void keep_answer(void *ud, engine_result *res) {
    (void)ud;
    answers++;
    answered = res;
}

static void test_results_and_names(void **state) {
    (void)state;
    engine_result_free(NULL);                        /* safe */

    engine_result *res = engine_result_new(ENGINE_OP_HISTORY, ENGINE_ERR_TIMEOUT);
    assert_non_null(res);
    assert_int_equal(res->op, ENGINE_OP_HISTORY);
    assert_int_equal(res->err, ENGINE_ERR_TIMEOUT);
    assert_null(res->pubs);
    assert_int_equal(res->npubs, 0);
    assert_null(res->entries);
    assert_int_equal(res->top.offset, 0);
    engine_result_free(res);

    /* engine_answer: NULL cb frees; NULL res becomes an internal error. */
    engine_answer(NULL, NULL, ENGINE_OP_PUBLISH, engine_result_new(ENGINE_OP_PUBLISH, 0));
    engine_answer(NULL, NULL, ENGINE_OP_PUBLISH, NULL);
    answers = 0;
    engine_answer(keep_answer, NULL, ENGINE_OP_PRESENCE, NULL);
    assert_int_equal(answers, 1);
    assert_non_null(answered);
    assert_int_equal(answered->err, ENGINE_ERR_INTERNAL);
    assert_int_equal(answered->op, ENGINE_OP_PRESENCE);
    engine_result_free(answered);

    /* Every error has a text; the known ones differ. */
    static const int errs[] = {
        ENGINE_OK, ENGINE_ERR_INTERNAL, ENGINE_ERR_EPOCH, ENGINE_ERR_UNAVAILABLE,
        ENGINE_ERR_TIMEOUT, ENGINE_ERR_SHUTDOWN,
    };
    enum { NERRS = sizeof(errs) / sizeof(errs[0]) };
    for (size_t i = 0; i < NERRS; i++) {
        const char *s = engine_strerror(errs[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
        for (size_t j = 0; j < i; j++) assert_string_not_equal(s, engine_strerror(errs[j]));
    }
    assert_true(engine_strerror(-2)[0] != '\0');     /* unassigned values too */
    assert_true(engine_strerror(-99)[0] != '\0');
    assert_true(engine_strerror(42)[0] != '\0');

    /* Every operation has a distinct name; out of range is not a crash. */
    for (int op = 0; op < ENGINE_OP_COUNT; op++) {
        const char *s = engine_op_name((engine_op)op);
        assert_non_null(s);
        assert_true(s[0] != '\0');
        assert_string_not_equal(s, "unknown");
        for (int j = 0; j < op; j++) assert_string_not_equal(s, engine_op_name((engine_op)j));
    }
    assert_true(engine_op_name(ENGINE_OP_COUNT)[0] != '\0');
    assert_string_equal(engine_op_name(ENGINE_OP_PUBLISH), "publish");
    assert_string_equal(engine_op_name(ENGINE_OP_UNSUBSCRIBE), "unsubscribe");
}

static void test_engine_new_by_type(void **state) {
    (void)state;
    config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char err[256] = "";
    engine *e = engine_new(&cfg, NULL, err, sizeof(err));      /* unset: memory */
    assert_non_null(e);
    assert_int_equal(publish(e, "c", 1).pos.offset, 1);
    e->ops->destroy(e);
    cfg.engine_type = "memory";
    e = engine_new(&cfg, NULL, err, sizeof(err));
    assert_non_null(e);
    e->ops->destroy(e);
    cfg.engine_type = "nosuch";
    assert_null(engine_new(&cfg, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "nosuch"));
    assert_non_null(strstr(err, "memory"));                    /* lists what exists */
}

/* ----------------------------------------------------------- concurrency */

enum { THREADS = 4, PER_THREAD = 3000 };

typedef struct worker_arg {
    engine *e;
    rcbuf *payload;
    int id;
    int errors;
} worker_arg;

/* Counts instead of asserting: cmocka asserts only on the test's thread. */
static int call_ok(capture *c, engine_op op) {
    int ok = c->calls == 1 && c->res && c->res->op == op && c->res->err == ENGINE_OK;
    engine_result_free(c->res);
    *c = (capture){0};
    return ok;
}

static void *publisher(void *p) {
    worker_arg *w = p;
    engine *e = w->e;
    char mine[32];
    snprintf(mine, sizeof(mine), "mine:%d", w->id);
    for (int i = 0; i < PER_THREAD; i++) {
        engine_publish_req req = {
            .channel = "hot", .payload = w->payload, .history_size = 100, .now_ms = 1000,
        };
        capture c = {0};
        e->ops->publish(e, &req, on_result, &c);
        if (c.calls != 1 || !c.res || c.res->err != ENGINE_OK || c.res->top.offset == 0)
            w->errors++;
        engine_result_free(c.res);
        c = (capture){0};
        if (i % 64 == 0) {
            /* Other operations and the sweep interleave with the publishers. */
            engine_presence_entry en = { "x", "u", "{}", 2 };
            e->ops->presence_add(e, "hot", &en, 10, i, on_result, &c);
            if (!call_ok(&c, ENGINE_OP_PRESENCE_ADD)) w->errors++;
            e->ops->subscribe(e, mine, on_result, &c);
            if (!call_ok(&c, ENGINE_OP_SUBSCRIBE)) w->errors++;
            req.channel = mine;
            req.history_ttl_ms = 1;
            e->ops->publish(e, &req, on_result, &c);
            if (!call_ok(&c, ENGINE_OP_PUBLISH)) w->errors++;
            e->ops->unsubscribe(e, mine, on_result, &c);
            if (!call_ok(&c, ENGINE_OP_UNSUBSCRIBE)) w->errors++;
            engine_history_req hreq = { .channel = "hot", .limit = 5, .reverse = 1, .now_ms = 1000 };
            e->ops->history(e, &hreq, on_result, &c);
            if (!call_ok(&c, ENGINE_OP_HISTORY)) w->errors++;
            engine_memory_sweep(e, 1000 + i);
        }
    }
    return NULL;
}

static void test_concurrent_publish_order(void **state) {
    (void)state;
    recorder r;
    engine *e = new_engine(&r);
    rcbuf *b = rcbuf_copy("1", 1);
    pthread_t t[THREADS];
    worker_arg w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_arg){ e, b, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, publisher, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    /* Every offset 1..N of "hot" reported once, in increasing order. */
    assert_int_equal(r.hot_out_of_order, 0);
    assert_int_equal(r.hot_last, THREADS * PER_THREAD);
    hist_result h = history(e, "hot", 0, 0, 0, NULL, 0, 1000);
    assert_int_equal(h.top.offset, THREADS * PER_THREAD);
    assert_int_equal(counts(e).publications >= 100, 1);
    free_engine(e, &r);
    assert_int_equal(refs(b), 1);
    rcbuf_unref(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_and_epoch),
        cmocka_unit_test(test_payload_round_trip),
        cmocka_unit_test(test_no_history),
        cmocka_unit_test(test_history_queries),
        cmocka_unit_test(test_epoch_mismatch),
        cmocka_unit_test(test_trim_by_size),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_history_remove_and_unknown),
        cmocka_unit_test(test_interest_keeps_stream),
        cmocka_unit_test(test_interest_only_channel),
        cmocka_unit_test(test_gc_without_interest),
        cmocka_unit_test(test_no_leak_per_channel_name),
        cmocka_unit_test(test_sweeper_thread_expires),
        cmocka_unit_test(test_sweeper_destroy_is_prompt),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_presence_and_stream_share_channel),
        cmocka_unit_test(test_join_leave),
        cmocka_unit_test(test_null_callback),
        cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_results_and_names),
        cmocka_unit_test(test_engine_new_by_type),
        cmocka_unit_test(test_concurrent_publish_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
