/* Unit tests for src/hub/recovery.c: recovery_decide, the recovered /
 * not-recovered decision of protocol.md A8 (same epoch with nothing missed,
 * a complete run of missed publications, a gap at the start because history
 * was trimmed, a run cut at the end by the recovery limit, an epoch
 * mismatch, and an empty request epoch that is not checked). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "engine/engine.h"
#include "hub/recovery.h"

/* A stream top with the given offset and epoch. */
static engine_stream_top top_of(uint64_t offset, const char *epoch) {
    engine_stream_top t;
    memset(&t, 0, sizeof(t));
    t.offset = offset;
    strncpy(t.epoch, epoch, ENGINE_EPOCH_MAX);
    return t;
}

/* n publications with consecutive offsets starting at first (payload unused
 * by the decision, left NULL). */ 
static void run_of(engine_pub *pubs, size_t n, uint64_t first) {
    for (size_t i = 0; i < n; i++) {
        pubs[i].offset = first + i;
        pubs[i].time_ms = 1700000000000 + (int64_t)i;
        pubs[i].payload = NULL;
    }
}

static void same_epoch_nothing_missed_is_recovered(void **state) {
    (void)state;
    engine_stream_top t = top_of(42, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t, NULL, 0), 1);
    /* a fresh stream (top 0) and a client at 0 */
    engine_stream_top t0 = top_of(0, "abcdEFGH");
    assert_int_equal(recovery_decide(0, "abcdEFGH", &t0, NULL, 0), 1);
}

static void top_ahead_without_pubs_is_not_recovered(void **state) {
    (void)state;
    /* the stream moved on but history returned nothing (all trimmed) */
    engine_stream_top t = top_of(50, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t, NULL, 0), 0);
    /* a client ahead of the stream (cannot happen in one epoch) */
    engine_stream_top t2 = top_of(10, "abcdEFGH");
    assert_int_equal(recovery_decide(11, "abcdEFGH", &t2, NULL, 0), 0);
}

static void complete_run_is_recovered(void **state) {
    (void)state;
    engine_pub pubs[8];
    run_of(pubs, 8, 43);                                   /* 43..50 */
    engine_stream_top t = top_of(50, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t, pubs, 8), 1);
    /* one missed publication */
    engine_stream_top t1 = top_of(43, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t1, pubs, 1), 1);
    /* from the very beginning of a stream */
    engine_pub all[3];
    run_of(all, 3, 1);
    engine_stream_top t3 = top_of(3, "abcdEFGH");
    assert_int_equal(recovery_decide(0, "abcdEFGH", &t3, all, 3), 1);
}

static void gap_at_start_is_not_recovered(void **state) {
    (void)state;
    engine_pub pubs[5];
    run_of(pubs, 5, 46);                                   /* 46..50: 43..45 trimmed */
    engine_stream_top t = top_of(50, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t, pubs, 5), 0);
    /* off by one: the first returned is the client's own offset */
    engine_pub same[9];
    run_of(same, 9, 42);
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t, same, 9), 0);
}

static void cut_at_end_is_not_recovered(void **state) {
    (void)state;
    engine_pub pubs[5];
    run_of(pubs, 5, 43);                                   /* 43..47, top 50: limit cut */
    engine_stream_top t = top_of(50, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t, pubs, 5), 0);
    assert_int_equal(recovery_decide(42, "abcdEFGH", &t, pubs, 1), 0);
}

static void epoch_mismatch_is_not_recovered(void **state) {
    (void)state;
    engine_pub pubs[8];
    run_of(pubs, 8, 43);
    engine_stream_top t = top_of(50, "newEPOCH");
    /* an otherwise complete run */
    assert_int_equal(recovery_decide(42, "oldEPOCH", &t, pubs, 8), 0);
    /* nothing missed by offset, but another incarnation of the stream */
    engine_stream_top t2 = top_of(42, "newEPOCH");
    assert_int_equal(recovery_decide(42, "oldEPOCH", &t2, NULL, 0), 0);
    /* the sentinel centrifuge-js uses after invalidation */
    engine_stream_top t0 = top_of(0, "newEPOCH");
    assert_int_equal(recovery_decide(0, "_", &t0, NULL, 0), 0);
    /* epoch compare is exact (a prefix is not the same epoch) */
    assert_int_equal(recovery_decide(42, "newEPOC", &t2, NULL, 0), 0);
}

static void empty_request_epoch_is_not_checked(void **state) {
    (void)state;
    engine_pub pubs[8];
    run_of(pubs, 8, 43);
    engine_stream_top t = top_of(50, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "", &t, pubs, 8), 1);
    assert_int_equal(recovery_decide(42, NULL, &t, pubs, 8), 1);
    engine_stream_top t2 = top_of(42, "abcdEFGH");
    assert_int_equal(recovery_decide(42, "", &t2, NULL, 0), 1);
    assert_int_equal(recovery_decide(42, NULL, &t2, NULL, 0), 1);
    /* the offset rules still apply without an epoch */
    assert_int_equal(recovery_decide(42, "", &t, pubs + 1, 7), 0);   /* gap */
    assert_int_equal(recovery_decide(42, NULL, &t, pubs, 7), 0);     /* cut */
    assert_int_equal(recovery_decide(41, NULL, &t2, NULL, 0), 0);    /* top ahead */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_epoch_nothing_missed_is_recovered),
        cmocka_unit_test(top_ahead_without_pubs_is_not_recovered),
        cmocka_unit_test(complete_run_is_recovered),
        cmocka_unit_test(gap_at_start_is_not_recovered),
        cmocka_unit_test(cut_at_end_is_not_recovered),
        cmocka_unit_test(epoch_mismatch_is_not_recovered),
        cmocka_unit_test(empty_request_epoch_is_not_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
