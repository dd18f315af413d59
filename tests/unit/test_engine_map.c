/* Unit tests for src/engine/engine_map.c: map channels in the memory
 * engine. Writes and removals as changes (offsets, events with the key,
 * the stream history reads); state pages in key order with cursors; the
 * single-key read; conditional writes (if_new, if_exists, versions,
 * compare-and-set, idempotency keys) suppressed without a change; key TTL
 * expiry reported once, by the sweeper or the first operation that meets
 * it; ephemeral maps (no stream, offsets not shown); epochs; stats; clear;
 * and memory returning to nothing once a map is empty. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rcbuf.h"
#include "engine/engine.h"
#include "engine/engine_memory.h"

/* ------------------------------------------------------------- helpers */

#define MAXEV 64

typedef struct event {
    char channel[32], key[32];
    uint64_t offset;
    uint32_t flags;
    char payload[64];
} event;

static struct {
    event ev[MAXEV];
    int n;
} R;

static void rec_pub(void *ud, const char *channel, const engine_pub *pub) {
    (void)ud;
    if (R.n >= MAXEV) return;
    event *e = &R.ev[R.n++];
    snprintf(e->channel, sizeof(e->channel), "%s", channel);
    snprintf(e->key, sizeof(e->key), "%s", pub->key ? (const char *)pub->key->data : "");
    snprintf(e->payload, sizeof(e->payload), "%.*s", (int)pub->payload->len, (const char *)pub->payload->data);
    e->offset = pub->offset;
    e->flags = pub->flags;
}

static engine *new_engine(void) {
    memset(&R, 0, sizeof(R));
    engine_events ev = {rec_pub, NULL, NULL, NULL, NULL, NULL};
    engine *e = engine_memory_new(NULL, &ev);
    assert_non_null(e);
    return e;
}

static void keep(void *ud, engine_result *res) { *(engine_result **)ud = res; }

static const engine_map_opts PERSISTENT = {.stream_size = 100};
static const engine_map_opts EPHEMERAL = {.stream_size = 0, .key_ttl_ms = 1000};

typedef struct wopt {
    int remove, key_mode, refresh;
    uint64_t version;
    const char *version_epoch;
    int has_expected;
    uint64_t expected_offset;
    const char *idem;
    int64_t now;
    engine_map_opts map;
} wopt;

/* Writes key (payload text, or a removal); returns the result (caller frees). */
static engine_result *write_key(engine *e, const char *ch, const char *key, const char *text,
                                wopt o) {
    rcbuf *p = text ? rcbuf_copy(text, strlen(text)) : NULL;
    engine_map_write_req req = {
        .channel = ch, .key = key, .key_len = strlen(key), .remove = o.remove, .payload = p,
        .map = o.map.stream_size || o.map.key_ttl_ms ? o.map : PERSISTENT,
        .key_mode = o.key_mode, .refresh_ttl_on_suppress = o.refresh, .version = o.version,
        .version_epoch = o.version_epoch, .has_expected = o.has_expected,
        .expected_offset = o.expected_offset, .idempotency_key = o.idem,
        .now_ms = o.now ? o.now : 1000,
    };
    engine_result *res = NULL;
    e->ops->map_write(e, &req, keep, &res);
    if (p) rcbuf_unref(p);
    assert_non_null(res);
    assert_int_equal(res->op, ENGINE_OP_MAP_WRITE);
    return res;
}

/* A write expected to change the map; returns its offset. */
static uint64_t put(engine *e, const char *ch, const char *key, const char *text) {
    engine_result *res = write_key(e, ch, key, text, (wopt){0});
    assert_int_equal(res->err, ENGINE_OK);
    assert_int_equal(res->suppressed, ENGINE_SUPPRESS_NONE);
    uint64_t off = res->top.offset;
    engine_result_free(res);
    return off;
}

/* A write expected to be suppressed with reason why. */
static void suppressed(engine *e, const char *ch, const char *key, const char *text, wopt o,
                       int why) {
    int before = R.n;
    engine_result *res = write_key(e, ch, key, text, o);
    assert_int_equal(res->err, ENGINE_OK);
    assert_int_equal(res->suppressed, why);
    engine_result_free(res);
    assert_int_equal(R.n, before);                 /* no change, no event */
}

static engine_result *state(engine *e, const char *ch, const char *cursor, int limit,
                            const char *key, const char *epoch, int64_t now) {
    engine_map_state_req req = {.channel = ch, .cursor = cursor, .limit = limit, .key = key,
                                .epoch = epoch, .now_ms = now ? now : 1000};
    engine_result *res = NULL;
    e->ops->map_state(e, &req, keep, &res);
    assert_non_null(res);
    return res;
}

static const char *pub_key(const engine_pub *p) { return (const char *)p->key->data; }

/* ------------------------------------------------------------- tests */

static void test_writes_are_changes(void **state_) {
    (void)state_;
    engine *e = new_engine();
    assert_int_equal(put(e, "m:a", "k1", "\"data\":1"), 1);
    assert_int_equal(put(e, "m:a", "k2", "\"data\":2"), 2);
    assert_int_equal(put(e, "m:a", "k1", "\"data\":3"), 3);          /* replace */
    engine_result *r = write_key(e, "m:a", "k2", NULL, (wopt){.remove = 1});
    assert_int_equal(r->top.offset, 4);
    engine_result_free(r);
    assert_int_equal(R.n, 4);
    assert_string_equal(R.ev[2].key, "k1");
    assert_string_equal(R.ev[2].payload, "\"data\":3");
    assert_int_equal(R.ev[3].flags, ENGINE_PUB_REMOVED);
    assert_string_equal(R.ev[3].key, "k2");
    assert_string_equal(R.ev[3].payload, "");

    /* the stream is what history reads: four changes with their keys */
    engine_history_req hr = {.channel = "m:a", .limit = -1, .has_since = 1, .since_offset = 1,
                             .now_ms = 1000};
    engine_result *h = NULL;
    e->ops->history(e, &hr, keep, &h);
    assert_int_equal(h->npubs, 3);
    assert_string_equal(pub_key(&h->pubs[0]), "k2");
    assert_int_equal(h->pubs[2].flags, ENGINE_PUB_REMOVED);
    engine_result_free(h);

    /* the state: k1 at offset 3 */
    engine_result *s = state(e, "m:a", NULL, -1, NULL, NULL, 0);
    assert_int_equal(s->err, ENGINE_OK);
    assert_int_equal(s->npubs, 1);
    assert_string_equal(pub_key(&s->pubs[0]), "k1");
    assert_int_equal(s->pubs[0].offset, 3);
    assert_int_equal(s->top.offset, 4);
    assert_null(s->cursor);
    engine_result_free(s);
    e->ops->destroy(e);
}

static void test_pages_in_key_order(void **state_) {
    (void)state_;
    engine *e = new_engine();
    const char *keys[] = {"d", "b", "a", "e", "c", "ab"};
    for (int i = 0; i < 6; i++) put(e, "m:p", keys[i], "\"data\":0");
    const char *want[] = {"a", "ab", "b", "c", "d", "e"};
    char cursor[32] = "";
    int got = 0, pages = 0;
    do {
        engine_result *s = state(e, "m:p", cursor, 4, NULL, NULL, 0);
        assert_int_equal(s->err, ENGINE_OK);
        for (size_t i = 0; i < s->npubs; i++) assert_string_equal(pub_key(&s->pubs[i]), want[got++]);
        snprintf(cursor, sizeof(cursor), "%s", s->cursor ? s->cursor : "");
        pages++;
        engine_result_free(s);
    } while (cursor[0]);
    assert_int_equal(got, 6);
    assert_int_equal(pages, 2);
    /* a cursor that is no longer a key still finds its place */
    engine_result *s = state(e, "m:p", "bb", 10, NULL, NULL, 0);
    assert_int_equal(s->npubs, 3);
    assert_string_equal(pub_key(&s->pubs[0]), "c");
    engine_result_free(s);
    /* one key; limit 0 = only the position; an epoch that is not the stream's */
    s = state(e, "m:p", NULL, 0, "c", NULL, 0);
    assert_int_equal(s->npubs, 1);
    char epoch[ENGINE_EPOCH_MAX + 1];
    snprintf(epoch, sizeof(epoch), "%s", s->top.epoch);
    engine_result_free(s);
    s = state(e, "m:p", NULL, 0, NULL, NULL, 0);
    assert_int_equal(s->npubs, 0);
    assert_int_equal(s->top.offset, 6);
    engine_result_free(s);
    s = state(e, "m:p", NULL, 10, NULL, "other", 0);
    assert_int_equal(s->err, ENGINE_ERR_EPOCH);
    engine_result_free(s);
    s = state(e, "m:p", NULL, 10, NULL, epoch, 0);
    assert_int_equal(s->npubs, 6);
    engine_result_free(s);
    e->ops->destroy(e);
}

static void test_conditional_writes(void **state_) {
    (void)state_;
    engine *e = new_engine();
    put(e, "m:c", "lot", "\"data\":100");
    suppressed(e, "m:c", "lot", "\"data\":1", (wopt){.key_mode = ENGINE_KEY_IF_NEW},
               ENGINE_SUPPRESS_KEY_EXISTS);
    suppressed(e, "m:c", "none", "\"data\":1", (wopt){.key_mode = ENGINE_KEY_IF_EXISTS},
               ENGINE_SUPPRESS_KEY_NOT_FOUND);
    suppressed(e, "m:c", "none", NULL, (wopt){.remove = 1}, ENGINE_SUPPRESS_KEY_NOT_FOUND);
    /* compare-and-set: only the writer that saw offset 1 wins */
    engine_result *r = write_key(e, "m:c", "lot", "\"data\":110",
                                 (wopt){.has_expected = 1, .expected_offset = 1});
    assert_int_equal(r->suppressed, ENGINE_SUPPRESS_NONE);
    assert_int_equal(r->top.offset, 2);
    engine_result_free(r);
    suppressed(e, "m:c", "lot", "\"data\":111", (wopt){.has_expected = 1, .expected_offset = 1},
               ENGINE_SUPPRESS_POSITION_MISMATCH);
    suppressed(e, "m:c", "new", "\"data\":1", (wopt){.has_expected = 1, .expected_offset = 1},
               ENGINE_SUPPRESS_POSITION_MISMATCH);
    /* versions: only newer ones, within one version epoch */
    put(e, "m:c", "v", "\"data\":0");
    r = write_key(e, "m:c", "v", "\"data\":5", (wopt){.version = 5});
    assert_int_equal(r->suppressed, ENGINE_SUPPRESS_NONE);
    engine_result_free(r);
    suppressed(e, "m:c", "v", "\"data\":4", (wopt){.version = 4}, ENGINE_SUPPRESS_VERSION);
    suppressed(e, "m:c", "v", "\"data\":5", (wopt){.version = 5}, ENGINE_SUPPRESS_VERSION);
    r = write_key(e, "m:c", "v", "\"data\":1", (wopt){.version = 1, .version_epoch = "x"});
    assert_int_equal(r->suppressed, ENGINE_SUPPRESS_NONE);
    engine_result_free(r);
    /* idempotency: the same key is a no-op until it is forgotten */
    r = write_key(e, "m:c", "i", "\"data\":1", (wopt){.idem = "req-1"});
    assert_int_equal(r->suppressed, ENGINE_SUPPRESS_NONE);
    engine_result_free(r);
    suppressed(e, "m:c", "i", "\"data\":1", (wopt){.idem = "req-1"}, ENGINE_SUPPRESS_IDEMPOTENCY);
    r = write_key(e, "m:c", "i", "\"data\":2", (wopt){.idem = "req-1", .now = 1000 + 300000});
    assert_int_equal(r->suppressed, ENGINE_SUPPRESS_NONE);
    engine_result_free(r);
    const char *names[] = {"", "idempotency", "version", "key_exists", "key_not_found",
                           "position_mismatch"};
    for (int i = 0; i < 6; i++) assert_string_equal(engine_suppress_name(i), names[i]);
    e->ops->destroy(e);
}

static void test_ttl_expiry(void **state_) {
    (void)state_;
    engine *e = new_engine();
    engine_map_opts rec = {.stream_size = 10, .key_ttl_ms = 1000};
    engine_result *r = write_key(e, "m:t", "a", "\"data\":1", (wopt){.map = rec, .now = 1000});
    engine_result_free(r);
    r = write_key(e, "m:t", "b", "\"data\":1", (wopt){.map = rec, .now = 1500});
    engine_result_free(r);
    /* a refresh of b (if_new + refresh): suppressed, but b lives on */
    suppressed(e, "m:t", "b", "\"data\":1",
               (wopt){.map = rec, .now = 1900, .key_mode = ENGINE_KEY_IF_NEW, .refresh = 1},
               ENGINE_SUPPRESS_KEY_EXISTS);
    engine_memory_sweep(e, 1999);
    assert_int_equal(R.n, 2);
    engine_memory_sweep(e, 2000);                  /* a expires: one removal */
    assert_int_equal(R.n, 3);
    assert_string_equal(R.ev[2].key, "a");
    assert_int_equal(R.ev[2].flags, ENGINE_PUB_REMOVED);
    assert_int_equal(R.ev[2].offset, 3);
    engine_memory_sweep(e, 2100);
    assert_int_equal(R.n, 3);
    /* a read meets b's expiry first: removed once, not returned */
    engine_result *s = state(e, "m:t", NULL, -1, NULL, NULL, 2900);
    assert_int_equal(s->npubs, 0);
    assert_int_equal(s->top.offset, 4);
    engine_result_free(s);
    assert_int_equal(R.n, 4);
    engine_memory_sweep(e, 5000);
    assert_int_equal(R.n, 4);
    e->ops->destroy(e);
}

static void test_ephemeral(void **state_) {
    (void)state_;
    engine *e = new_engine();
    engine_result *r = write_key(e, "m:e", "x", "\"data\":1", (wopt){.map = EPHEMERAL});
    assert_int_equal(r->top.offset, 1);           /* offsets still order the changes */
    engine_result_free(r);
    assert_int_equal(R.ev[0].flags, ENGINE_PUB_UNSTREAMED);
    engine_history_req hr = {.channel = "m:e", .limit = -1, .now_ms = 1000};
    engine_result *h = NULL;
    e->ops->history(e, &hr, keep, &h);
    assert_int_equal(h->npubs, 0);                 /* no stream */
    engine_result_free(h);
    engine_memory_sweep(e, 2000);
    assert_int_equal(R.n, 2);
    assert_int_equal(R.ev[1].flags, ENGINE_PUB_REMOVED | ENGINE_PUB_UNSTREAMED);
    e->ops->destroy(e);
}

static void test_stats_clear_and_memory(void **state_) {
    (void)state_;
    engine *e = new_engine();
    for (int i = 0; i < 5; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        put(e, "m:s", k, "\"data\":0");
    }
    engine_result *r = NULL;
    e->ops->map_stats(e, "m:s", 1000, keep, &r);
    assert_int_equal(r->num_keys, 5);
    engine_result_free(r);
    r = NULL;
    e->ops->map_clear(e, "m:s", keep, &r);
    assert_int_equal(r->err, ENGINE_OK);
    assert_int_equal(r->top.offset, 10);           /* five removals, offsets go on */
    engine_result_free(r);
    assert_int_equal(R.n, 10);
    for (int i = 5; i < 10; i++) assert_int_equal(R.ev[i].flags, ENGINE_PUB_REMOVED);
    r = NULL;
    e->ops->map_stats(e, "m:s", 1000, keep, &r);
    assert_int_equal(r->num_keys, 0);
    engine_result_free(r);
    /* an empty map whose stream has expired leaves nothing behind (m:s
     * keeps its stream: ten changes, no TTL) */
    engine_result *w = write_key(e, "m:g", "k", "\"data\":0",
                                 (wopt){.map = {.stream_size = 5, .stream_ttl_ms = 100}});
    engine_result_free(w);
    w = write_key(e, "m:g", "k", NULL, (wopt){.remove = 1, .map = {.stream_size = 5, .stream_ttl_ms = 100}});
    engine_result_free(w);
    engine_memory_sweep(e, 1000000);
    engine_memory_counts c;
    engine_memory_counts_get(e, &c);
    assert_int_equal(c.channels, 1);
    assert_int_equal(c.publications, 10);
    e->ops->destroy(e);
}

static void test_bad_requests(void **state_) {
    (void)state_;
    engine *e = new_engine();
    engine_result *r = NULL;
    engine_map_write_req req = {.channel = "m:b", .key = "", .key_len = 0, .map = PERSISTENT};
    e->ops->map_write(e, &req, keep, &r);          /* empty key */
    assert_int_equal(r->err, ENGINE_ERR_INTERNAL);
    engine_result_free(r);
    r = NULL;
    req.key = "k";
    req.key_len = 1;
    e->ops->map_write(e, &req, keep, &r);          /* a write without a payload */
    assert_int_equal(r->err, ENGINE_ERR_INTERNAL);
    engine_result_free(r);
    assert_int_equal(R.n, 0);
    e->ops->destroy(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_are_changes),
        cmocka_unit_test(test_pages_in_key_order),
        cmocka_unit_test(test_conditional_writes),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_ephemeral),
        cmocka_unit_test(test_stats_clear_and_memory),
        cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
