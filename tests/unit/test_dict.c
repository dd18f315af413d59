/* Unit tests for src/core/dict.c: set/get/replace/delete, length-delimited
 * keys, growth and shrinking over many keys, find-or-insert slots, safe
 * iteration (delete the current entry, abandon an iterator), and the
 * value destructor of dict_free. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dict.h"

#define V(n) ((void *)(uintptr_t)(n))

static void test_basic(void **state) {
    (void)state;
    dict *d = dict_new();
    assert_non_null(d);
    assert_int_equal(dict_size(d), 0);
    assert_null(dict_get(d, "a"));
    assert_int_equal(dict_del(d, "a", NULL), 0);

    assert_int_equal(dict_set(d, "a", V(1)), 1);
    assert_int_equal(dict_set(d, "b", V(2)), 1);
    assert_int_equal(dict_set(d, "", V(3)), 1);      /* the empty key is a key */
    assert_int_equal(dict_size(d), 3);
    assert_ptr_equal(dict_get(d, "a"), V(1));
    assert_ptr_equal(dict_get(d, "b"), V(2));
    assert_ptr_equal(dict_get(d, ""), V(3));

    assert_int_equal(dict_set(d, "a", V(10)), 0);    /* replaced */
    assert_int_equal(dict_size(d), 3);
    assert_ptr_equal(dict_get(d, "a"), V(10));

    void *old = NULL;
    assert_int_equal(dict_del(d, "a", &old), 1);
    assert_ptr_equal(old, V(10));
    assert_null(dict_get(d, "a"));
    assert_int_equal(dict_size(d), 2);
    dict_free(d, NULL);
    dict_free(NULL, NULL);
}

static void test_keys_are_copied(void **state) {
    (void)state;
    dict *d = dict_new();
    char key[16];
    strcpy(key, "chan");
    assert_int_equal(dict_set(d, key, V(7)), 1);
    strcpy(key, "xxxx");
    assert_ptr_equal(dict_get(d, "chan"), V(7));
    assert_null(dict_get(d, "xxxx"));
    dict_free(d, NULL);
}

static void test_length_delimited(void **state) {
    (void)state;
    dict *d = dict_new();
    const char *buf = "news:sportsXYZ";
    assert_int_equal(dict_setn(d, buf, 4, V(1)), 1);        /* "news" */
    assert_int_equal(dict_setn(d, buf, 11, V(2)), 1);       /* "news:sports" */
    assert_ptr_equal(dict_get(d, "news"), V(1));
    assert_ptr_equal(dict_get(d, "news:sports"), V(2));
    assert_ptr_equal(dict_getn(d, "news:sports!", 11), V(2));
    assert_null(dict_getn(d, buf, 5));
    assert_int_equal(dict_deln(d, buf, 4, NULL), 1);
    assert_null(dict_get(d, "news"));
    /* Iteration hands out NUL-terminated keys. */
    dict_iter it;
    const char *k;
    void *v;
    dict_iter_init(&it, d);
    assert_true(dict_next(&it, &k, &v));
    assert_string_equal(k, "news:sports");
    assert_false(dict_next(&it, &k, &v));
    dict_free(d, NULL);
}

static void test_many_keys(void **state) {
    (void)state;
    enum { N = 50000 };
    dict *d = dict_new();
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "client-%d", i);
        assert_int_equal(dict_set(d, key, V(i + 1)), 1);
    }
    assert_int_equal(dict_size(d), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "client-%d", i);
        assert_ptr_equal(dict_get(d, key), V(i + 1));
    }
    /* Delete all but 10 (the table shrinks on the way), then check. */
    for (int i = 10; i < N; i++) {
        snprintf(key, sizeof(key), "client-%d", i);
        assert_int_equal(dict_del(d, key, NULL), 1);
    }
    assert_int_equal(dict_size(d), 10);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "client-%d", i);
        if (i < 10) assert_ptr_equal(dict_get(d, key), V(i + 1));
        else assert_null(dict_get(d, key));
    }
    dict_free(d, NULL);
}

static void test_slot(void **state) {
    (void)state;
    dict *d = dict_new();
    int added = -1;
    void **slot = dict_slot(d, "user", 4, &added);
    assert_non_null(slot);
    assert_int_equal(added, 1);
    assert_null(*slot);
    *slot = V((uintptr_t)*slot + 1);
    /* Entries do not move when the table grows. */
    char key[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(dict_set(d, key, V(1)), 1);
    }
    void **again = dict_slot(d, "user", 4, &added);
    assert_ptr_equal(again, slot);
    assert_int_equal(added, 0);
    *again = V((uintptr_t)*again + 1);
    assert_ptr_equal(dict_get(d, "user"), V(2));
    /* dict_find tells a stored NULL from a missing key. */
    assert_int_equal(dict_set(d, "zero", NULL), 1);
    assert_non_null(dict_find(d, "zero", 4));
    assert_null(*dict_find(d, "zero", 4));
    assert_null(dict_find(d, "none", 4));
    assert_ptr_equal(dict_find(d, "user", 4), slot);
    dict_free(d, NULL);
}

static void test_iterate_all_once(void **state) {
    (void)state;
    enum { N = 1000 };
    dict *d = dict_new();
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "%d", i);
        dict_set(d, key, V(i));
    }
    static int seen[N];
    memset(seen, 0, sizeof(seen));
    dict_iter it;
    const char *k;
    void *v;
    dict_iter_init(&it, d);
    while (dict_next(&it, &k, &v)) {
        int i = atoi(k);
        assert_int_equal((uintptr_t)v, (uintptr_t)i);
        seen[i]++;
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    /* An empty dict iterates nothing. */
    dict *e = dict_new();
    dict_iter_init(&it, e);
    assert_false(dict_next(&it, &k, &v));
    dict_free(e, NULL);
    dict_free(d, NULL);
}

static void test_delete_while_iterating(void **state) {
    (void)state;
    enum { N = 5000 };
    dict *d = dict_new();
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "%d", i);
        dict_set(d, key, V(i));
    }
    /* Delete the odd ones while iterating: every entry is still visited
     * exactly once, even though the dict gets sparse. */
    int visited = 0;
    dict_iter it;
    const char *k;
    void *v;
    dict_iter_init(&it, d);
    while (dict_next(&it, &k, &v)) {
        visited++;
        if ((uintptr_t)v % 2) assert_int_equal(dict_del(d, k, NULL), 1);
    }
    assert_int_equal(visited, N);
    assert_int_equal(dict_size(d), N / 2);
    /* Now delete everything while iterating. */
    dict_iter_init(&it, d);
    visited = 0;
    while (dict_next(&it, &k, &v)) {
        visited++;
        assert_int_equal(dict_del(d, k, NULL), 1);
    }
    assert_int_equal(visited, N / 2);
    assert_int_equal(dict_size(d), 0);
    /* The dict is still usable (its table was dropped when it emptied). */
    assert_int_equal(dict_set(d, "x", V(1)), 1);
    assert_ptr_equal(dict_get(d, "x"), V(1));
    dict_free(d, NULL);
}

static void test_abandon_and_shrink(void **state) {
    (void)state;
    dict *d = dict_new();
    char key[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "%d", i);
        dict_set(d, key, V(i));
    }
    /* An iterator may be abandoned without cleanup. */
    dict_iter it;
    const char *k;
    void *v;
    dict_iter_init(&it, d);
    assert_true(dict_next(&it, &k, &v));
    /* Mass delete, then inserts shrink the table and everything is found. */
    for (int i = 0; i < 9990; i++) {
        snprintf(key, sizeof(key), "%d", i);
        assert_int_equal(dict_del(d, key, NULL), 1);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        assert_int_equal(dict_set(d, key, V(i)), 1);
    }
    assert_int_equal(dict_size(d), 110);
    for (int i = 9990; i < 10000; i++) {
        snprintf(key, sizeof(key), "%d", i);
        assert_ptr_equal(dict_get(d, key), V(i));
    }
    int visited = 0;
    dict_iter_init(&it, d);
    while (dict_next(&it, NULL, NULL)) visited++;
    assert_int_equal(visited, 110);
    dict_free(d, NULL);
}

static int freed;
static void count_free(void *v) {
    freed++;
    free(v);
}

static void test_free_with_destructor(void **state) {
    (void)state;
    dict *d = dict_new();
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "%d", i);
        dict_set(d, key, malloc(8));
    }
    freed = 0;
    dict_free(d, count_free);
    assert_int_equal(freed, 100);
}

static void test_hash(void **state) {
    (void)state;
    assert_true(dict_hash("a", 1) == dict_hash("a", 1));
    assert_true(dict_hash("a", 1) != dict_hash("b", 1));
    assert_true(dict_hash("abcdefgh", 8) != dict_hash("abcdefgh", 7));
    /* High bits spread over shards: 64 shards see most of 1000 keys. */
    int hit[64] = {0}, used = 0;
    char key[16];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "chan%d", i);
        hit[dict_hash(key, (size_t)n) >> 58] = 1;
    }
    for (int i = 0; i < 64; i++) used += hit[i];
    assert_true(used >= 60);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_keys_are_copied),
        cmocka_unit_test(test_length_delimited),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_slot),
        cmocka_unit_test(test_iterate_all_once),
        cmocka_unit_test(test_delete_while_iterating),
        cmocka_unit_test(test_abandon_and_shrink),
        cmocka_unit_test(test_free_with_destructor),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
