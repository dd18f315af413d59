/* Unit tests for src/engine/engine_board.c: boards in the memory engine.
 * Puts of one batch window go out as one publication (ENGINE_PUB_BOARD,
 * the pixels in write order, who and when), each put answered with its
 * position; the bitfield's packing (4 and 8 bits); cooldowns per user
 * (suppressed with retry_after, nothing changed); snapshots with the
 * position they reflect; the batch record reader on truncated input; and,
 * over the durable log, the board rebuilt after a clean stop (snapshot
 * record). */
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
#include "core/clock.h"
#include "core/config.h"
#include "core/rcbuf.h"
#include "engine/engine.h"
#include "engine/engine_memory.h"

/* ------------------------------------------------------------- helpers */

typedef struct rec {               /* what the engine said, from any thread */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int answers, events;
    engine_result *res[64];
    uint8_t batch[8][512];
    size_t batch_len[8];
    uint64_t ev_offset[8];
    uint32_t ev_flags[8];
} rec;

static rec R;

static void rec_reset(void) {
    for (int i = 0; i < R.answers && i < 64; i++) engine_result_free(R.res[i]);
    R.answers = R.events = 0;
}

static void on_pub(void *ud, const char *channel, const engine_pub *pub) {
    (void)ud;
    (void)channel;
    pthread_mutex_lock(&R.lock);
    if (R.events < 8) {
        size_t n = pub->payload->len < 512 ? pub->payload->len : 512;
        memcpy(R.batch[R.events], pub->payload->data, n);
        R.batch_len[R.events] = n;
        R.ev_offset[R.events] = pub->offset;
        R.ev_flags[R.events] = pub->flags;
    }
    R.events++;
    pthread_cond_broadcast(&R.cond);
    pthread_mutex_unlock(&R.lock);
}

static void on_answer(void *ud, engine_result *res) {
    (void)ud;
    pthread_mutex_lock(&R.lock);
    if (R.answers < 64) R.res[R.answers] = res;
    else engine_result_free(res);
    R.answers++;
    pthread_cond_broadcast(&R.cond);
    pthread_mutex_unlock(&R.lock);
}

static void wait_answers(int n) {
    pthread_mutex_lock(&R.lock);
    int64_t until = clock_now_ms() + 5000;
    while (R.answers < n && clock_now_ms() < until) {
        pthread_mutex_unlock(&R.lock);
        usleep(1000);
        pthread_mutex_lock(&R.lock);
    }
    pthread_mutex_unlock(&R.lock);
    assert_int_equal(R.answers, n);
}

static const engine_board_opts OPTS = {
    .width = 64, .height = 32, .bits = 4, .batch_ms = 20, .history_size = 100,
    .snapshot_every_ms = 60000,
};

static void put(engine *e, const char *ch, engine_board_opts o, uint32_t x, uint32_t y,
                uint32_t c, const char *user, int64_t cooldown_ms) {
    engine_board_put_req req = {.channel = ch, .board = o, .x = x, .y = y, .color = c,
                                .user = user, .cooldown_ms = cooldown_ms, .now_ms = clock_now_ms()};
    e->ops->board_put(e, &req, on_answer, NULL);
}

/* A snapshot's bitfield (copied into out) and position. */
static engine_stream_top snap(engine *e, const char *ch, engine_board_opts o, uint8_t *out, size_t len) {
    int before = R.answers;
    e->ops->board_snapshot(e, ch, &o, clock_now_ms(), on_answer, NULL);
    wait_answers(before + 1);
    engine_result *r = R.res[before];
    assert_int_equal(r->err, 0);
    assert_non_null(r->blob);
    assert_int_equal(r->blob->len, len);
    memcpy(out, r->blob->data, len);
    return r->top;
}

static engine *mem_engine(void) {
    memset(&R, 0, sizeof(R));
    pthread_mutex_init(&R.lock, NULL);
    pthread_cond_init(&R.cond, NULL);
    engine_events ev = {on_pub, NULL, NULL, NULL, NULL, NULL};
    engine *e = engine_memory_new(NULL, &ev);
    assert_non_null(e);
    return e;
}

static void done(engine *e) {
    e->ops->quiesce(e);
    e->ops->destroy(e);
    rec_reset();
}

/* --------------------------------------------------------------- tests */

static void test_a_batch_is_one_publication(void **state) {
    (void)state;
    engine *e = mem_engine();
    put(e, "b", OPTS, 1, 2, 3, "alice", 0);
    put(e, "b", OPTS, 63, 31, 15, "bob", 0);
    put(e, "b", OPTS, 1, 2, 7, "carol", 0);
    wait_answers(3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(R.res[i]->err, 0);
        assert_int_equal(R.res[i]->suppressed, 0);
        assert_int_equal(R.res[i]->top.offset, 1);                /* the batch's offset */
    }
    assert_int_equal(R.events, 1);
    assert_int_equal(R.ev_offset[0], 1);
    assert_true(R.ev_flags[0] & ENGINE_PUB_BOARD);
    size_t pos = 0;
    engine_board_pixel px;
    const char *users[] = {"alice", "bob", "carol"};
    uint32_t want[3][3] = {{1, 2, 3}, {63, 31, 15}, {1, 2, 7}};
    for (int i = 0; i < 3; i++) {
        assert_true(engine_board_next(R.batch[0], R.batch_len[0], &pos, &px));
        assert_int_equal(px.x, want[i][0]);
        assert_int_equal(px.y, want[i][1]);
        assert_int_equal(px.color, want[i][2]);
        assert_int_equal(px.user_len, strlen(users[i]));
        assert_memory_equal(px.user, users[i], px.user_len);
        assert_true(px.time_ms > 0 && px.time_ms <= clock_now_ms());
    }
    assert_false(engine_board_next(R.batch[0], R.batch_len[0], &pos, &px));
    /* the bitfield: the later write of (1,2) won; 4 bits, left pixel high */
    uint8_t b[64 / 2 * 32];
    engine_stream_top top = snap(e, "b", OPTS, b, sizeof(b));
    assert_int_equal(top.offset, 1);
    assert_int_equal(b[2 * 32 + 0], 0x07);          /* (0,2)=0 (1,2)=7 */
    assert_int_equal(b[31 * 32 + 31], 0x0F);        /* (62,31)=0 (63,31)=15 */
    /* a later put goes in a new batch */
    put(e, "b", OPTS, 0, 2, 10, "alice", 0);
    wait_answers(5);
    assert_int_equal(R.res[4]->top.offset, 2);
    snap(e, "b", OPTS, b, sizeof(b));
    assert_int_equal(b[2 * 32 + 0], 0xA7);
    done(e);
}

static void test_eight_bits(void **state) {
    (void)state;
    engine *e = mem_engine();
    engine_board_opts o = OPTS;
    o.bits = 8;
    o.width = 100;
    put(e, "b8", o, 99, 0, 200, "u", 0);
    put(e, "b8", o, 0, 31, 255, "u", 0);
    wait_answers(2);
    uint8_t b[100 * 32];
    snap(e, "b8", o, b, sizeof(b));
    assert_int_equal(b[99], 200);
    assert_int_equal(b[31 * 100], 255);
    assert_int_equal(engine_board_bytes(101, 3, 4), 51 * 3);
    done(e);
}

static void test_cooldown(void **state) {
    (void)state;
    engine *e = mem_engine();
    put(e, "c", OPTS, 1, 1, 1, "alice", 10000);
    wait_answers(1);
    put(e, "c", OPTS, 2, 2, 2, "alice", 10000);        /* too soon: answered at once */
    wait_answers(2);
    assert_int_equal(R.res[1]->err, 0);
    assert_int_equal(R.res[1]->suppressed, ENGINE_SUPPRESS_COOLDOWN);
    assert_string_equal(engine_suppress_name(R.res[1]->suppressed), "cooldown");
    assert_true(R.res[1]->retry_after_ms > 9000 && R.res[1]->retry_after_ms <= 10000);
    put(e, "c", OPTS, 3, 3, 3, "bob", 10000);          /* another user may */
    put(e, "c", OPTS, 4, 4, 4, "alice", 0);            /* no cooldown asked (the API) */
    wait_answers(4);
    assert_int_equal(R.res[2]->suppressed, 0);
    assert_int_equal(R.res[3]->suppressed, 0);
    uint8_t b[64 / 2 * 32];
    snap(e, "c", OPTS, b, sizeof(b));
    assert_int_equal(b[2 * 32 + 1], 0x00);             /* the refused (2,2) changed nothing */
    assert_int_equal(b[3 * 32 + 1], 0x03);
    assert_int_equal(R.events, 2);
    done(e);
}

static void test_bad_requests_and_records(void **state) {
    (void)state;
    engine *e = mem_engine();
    put(e, "x", OPTS, 64, 0, 1, "u", 0);               /* the caller checks: a bug, answered */
    put(e, "x", OPTS, 0, 0, 16, "u", 0);
    engine_board_opts bad = OPTS;
    bad.bits = 5;
    put(e, "x", bad, 0, 0, 1, "u", 0);
    wait_answers(3);
    for (int i = 0; i < 3; i++) assert_int_equal(R.res[i]->err, ENGINE_ERR_INTERNAL);
    assert_int_equal(R.events, 0);
    /* a truncated record is the end */
    uint8_t rec_[ENGINE_BOARD_PIXEL_SIZE + 3] = {1, 0, 2, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'};
    size_t pos = 0;
    engine_board_pixel px;
    assert_true(engine_board_next(rec_, sizeof(rec_), &pos, &px));
    pos = 0;
    assert_false(engine_board_next(rec_, sizeof(rec_) - 1, &pos, &px));
    pos = 0;
    assert_false(engine_board_next(rec_, 5, &pos, &px));
    done(e);
}

/* ------------------------------------------------------- durable log */

static char dir[64];

static engine *durable_engine(const char *name, char *path, size_t len, config *c) {
    memset(c, 0, sizeof(*c));
    snprintf(path, len, "%s/%s", dir, name);
    c->store_path = path;
    c->store_durability = "sync";
    c->store_commit_window_us = 200;
    c->store_restore_window_s = 3600;
    c->store_lease_idle_ms = 1000;
    c->namespaces.top.history_size = 100;
    c->namespaces.top.board_width = 64;
    c->namespaces.top.board_height = 32;
    c->namespaces.channel_max_length = 255;
    memset(&R, 0, sizeof(R));
    pthread_mutex_init(&R.lock, NULL);
    pthread_cond_init(&R.cond, NULL);
    engine_events ev = {on_pub, NULL, NULL, NULL, NULL, NULL};
    char err[256];
    engine *e = engine_memory_open(c, &ev, err, sizeof(err));
    if (!e) fail_msg("%s", err);
    return e;
}

static void test_board_through_the_log(void **state) {
    (void)state;
    char path[128];
    config c;
    snprintf(dir, sizeof(dir), "/tmp/plaza-board-XXXXXX");
    assert_non_null(mkdtemp(dir));
    engine *e = durable_engine("a", path, sizeof(path), &c);
    for (uint32_t i = 0; i < 20; i++) {
        put(e, "bd", OPTS, i, i % 32, (i % 15) + 1, "u", 0);
        wait_answers((int)i + 1);                        /* one batch each */
        assert_int_equal(R.res[i]->top.offset, i + 1);
    }
    uint8_t before[64 / 2 * 32], after[64 / 2 * 32];
    engine_stream_top t0 = snap(e, "bd", OPTS, before, sizeof(before));
    done(e);                                             /* clean: the board is logged */
    e = durable_engine("a", path, sizeof(path), &c);
    engine_stream_top t1 = snap(e, "bd", OPTS, after, sizeof(after));
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(t1.offset, t0.offset);
    assert_string_equal(t1.epoch, t0.epoch);
    put(e, "bd", OPTS, 5, 5, 9, "u", 0);
    wait_answers(2);
    assert_int_equal(R.res[1]->top.offset, 21);
    /* destroy without quiesce logs the board too (kill -9, where replay
     * applies the batches after the last snapshot: tests/e2e/board.test.mjs) */
    e->ops->destroy(e);
    rec_reset();
    e = durable_engine("a", path, sizeof(path), &c);
    snap(e, "bd", OPTS, after, sizeof(after));
    assert_int_equal(after[5 * 32 + 2] & 0x0F, 9);
    done(e);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_batch_is_one_publication),
        cmocka_unit_test(test_eight_bits),
        cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_bad_requests_and_records),
        cmocka_unit_test(test_board_through_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
