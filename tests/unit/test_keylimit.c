/* Unit tests for core/keylimit: buckets per key, refusal with the wait,
 * refill, "off", a clock that goes back, the sweep of full buckets, and
 * several threads on one table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/keylimit.h"

static void test_burst_then_wait(void **state) {
    (void)state;
    keylimit *kl = keylimit_new();
    for (int i = 0; i < 5; i++) assert_int_equal(keylimit_take(kl, "ann", 2, 5, 1000), 0);
    int64_t wait = keylimit_take(kl, "ann", 2, 5, 1000);
    assert_true(wait > 490 && wait <= 501);               /* 2 per second: 500 ms a token */
    assert_int_equal(keylimit_take(kl, "bob", 2, 5, 1000), 0);   /* another key, its own bucket */
    assert_true(keylimit_take(kl, "ann", 2, 5, 1499) > 0);       /* refusals took nothing ... */
    assert_int_equal(keylimit_take(kl, "ann", 2, 5, 1500), 0);   /* ... so one is there at 500 ms */
    assert_true(keylimit_take(kl, "ann", 2, 5, 1500) > 0);
    keylimit_free(kl);
}

static void test_interval(void **state) {
    (void)state;
    keylimit *kl = keylimit_new();                       /* one per 100 ms, burst 1 */
    assert_int_equal(keylimit_take(kl, "b", 10, 1, 0), 0);
    assert_int_equal(keylimit_take(kl, "b", 10, 1, 50), 51);
    assert_int_equal(keylimit_take(kl, "b", 10, 1, 100), 0);
    assert_true(keylimit_take(kl, "b", 10, 1, 100) > 0);
    keylimit_free(kl);
}

static void test_off_and_clock_back(void **state) {
    (void)state;
    keylimit *kl = keylimit_new();
    for (int i = 0; i < 100; i++) assert_int_equal(keylimit_take(kl, "x", 0, 1, 0), 0);
    assert_int_equal(keylimit_size(kl), 0);              /* off: nothing kept */
    assert_int_equal(keylimit_take(kl, "y", 1, 1, 10000), 0);
    assert_true(keylimit_take(kl, "y", 1, 1, 5000) > 0);  /* back in time: no refill */
    keylimit_free(kl);
}

static void test_sweep_forgets_full_buckets(void **state) {
    (void)state;
    keylimit *kl = keylimit_new();
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        keylimit_take(kl, key, 10, 1, 0);
    }
    assert_int_equal(keylimit_size(kl), 1000);
    /* long after: every bucket is full again; the sweep runs within the
     * next KEYLIMIT_SWEEP_EVERY takes and keeps only the busy one */
    for (int i = 0; i < KEYLIMIT_SWEEP_EVERY; i++) keylimit_take(kl, "busy", 1000000, 1000000, 60000);
    assert_true(keylimit_size(kl) <= 2);
    keylimit_free(kl);
}

static keylimit *shared;
static int allowed[4];

static void *taker(void *arg) {
    int *n = arg;
    for (int i = 0; i < 10000; i++) *n += keylimit_take(shared, "one", 1, 100, 0) == 0;
    return NULL;
}

static void test_threads_share_a_bucket(void **state) {
    (void)state;
    shared = keylimit_new();
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, taker, &allowed[i]);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert_int_equal(allowed[0] + allowed[1] + allowed[2] + allowed[3], 100);  /* the burst, once */
    keylimit_free(shared);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_wait),
        cmocka_unit_test(test_interval),
        cmocka_unit_test(test_off_and_clock_back),
        cmocka_unit_test(test_sweep_forgets_full_buckets),
        cmocka_unit_test(test_threads_share_a_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
