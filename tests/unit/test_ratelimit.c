/* Unit tests for core/ratelimit: a full burst, refusal, refill timing with
 * explicit clocks, the cap, "off", and clock oddities. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ratelimit.h"

/* Takes n times at now; returns how many were allowed. */
static int take_n(ratelimit *rl, int rate, int burst, uint64_t now, int n) {
    int ok = 0;
    for (int i = 0; i < n; i++) ok += ratelimit_take(rl, rate, burst, now);
    return ok;
}

static void test_small(void **state) {
    (void)state;
    assert_true(sizeof(ratelimit) <= 16);
}

static void test_burst_then_refused(void **state) {
    (void)state;
    ratelimit rl;
    ratelimit_init(&rl, 10, 5, 1000);
    assert_int_equal(take_n(&rl, 10, 5, 1000, 5), 5);
    assert_int_equal(ratelimit_take(&rl, 10, 5, 1000), 0);
    assert_int_equal(ratelimit_take(&rl, 10, 5, 1000), 0); /* refusals take nothing */
}

static void test_refill_timing(void **state) {
    (void)state;
    ratelimit rl;
    ratelimit_init(&rl, 10, 5, 0); /* one token per 100 ms */
    assert_int_equal(take_n(&rl, 10, 5, 0, 5), 5);
    assert_int_equal(ratelimit_take(&rl, 10, 5, 99), 0);  /* 0.99 tokens */
    assert_int_equal(ratelimit_take(&rl, 10, 5, 100), 1); /* exactly 1 */
    assert_int_equal(ratelimit_take(&rl, 10, 5, 100), 0);
    assert_int_equal(take_n(&rl, 10, 5, 350, 5), 2);      /* 2.5 earned */
    assert_int_equal(ratelimit_take(&rl, 10, 5, 399), 0); /* 0.5 + 0.49 */
    assert_int_equal(ratelimit_take(&rl, 10, 5, 400), 1); /* 0.5 + 0.5 */
}

static void test_refill_capped_at_burst(void **state) {
    (void)state;
    ratelimit rl;
    ratelimit_init(&rl, 100, 3, 0);
    assert_int_equal(take_n(&rl, 100, 3, 0, 3), 3);
    assert_int_equal(take_n(&rl, 100, 3, 60000, 10), 3); /* a minute later: 3, not 6000 */
    assert_int_equal(take_n(&rl, 100, 3, UINT64_MAX - 1, 10), 3); /* no overflow */
}

static void test_steady_rate(void **state) {
    (void)state;
    ratelimit rl;
    ratelimit_init(&rl, 1000, 1, 0); /* one per ms */
    int ok = 0;
    for (uint64_t t = 0; t < 1000; t++) ok += take_n(&rl, 1000, 1, t, 3);
    assert_int_equal(ok, 1000);
    ratelimit_init(&rl, 3, 2, 0); /* 3/s: 1000/3 ms is not whole, yet exact */
    ok = 0;
    for (uint64_t t = 0; t <= 10000; t++) ok += ratelimit_take(&rl, 3, 2, t);
    assert_int_equal(ok, 32); /* the burst of 2, then 30 in 10 s */
}

static void test_off_and_odd_inputs(void **state) {
    (void)state;
    ratelimit rl;
    ratelimit_init(&rl, 0, 1, 0);
    assert_int_equal(take_n(&rl, 0, 1, 0, 1000), 1000);  /* rate 0: off */
    assert_int_equal(take_n(&rl, -1, 1, 0, 10), 10);
    ratelimit_init(&rl, 1, 0, 0);                         /* burst 0 counts as 1 */
    assert_int_equal(take_n(&rl, 1, 0, 0, 3), 1);
    ratelimit_init(&rl, 1, 1, 5000);
    assert_int_equal(ratelimit_take(&rl, 1, 1, 5000), 1);
    assert_int_equal(ratelimit_take(&rl, 1, 1, 1000), 0); /* clock went back */
    assert_int_equal(ratelimit_take(&rl, 1, 1, 5999), 0);
    assert_int_equal(ratelimit_take(&rl, 1, 1, 6000), 1);
    ratelimit_init(&rl, 2147483647, 2147483647, 0);       /* extremes */
    assert_int_equal(take_n(&rl, 2147483647, 2147483647, 0, 5), 5);
    assert_int_equal(take_n(&rl, 2147483647, 2147483647, UINT64_MAX, 5), 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_burst_then_refused),
        cmocka_unit_test(test_refill_timing),
        cmocka_unit_test(test_refill_capped_at_burst),
        cmocka_unit_test(test_steady_rate),
        cmocka_unit_test(test_off_and_odd_inputs),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
