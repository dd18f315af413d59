/* Unit tests for hub/namespace: channel name validity and the lookup of a
 * channel's options (top level, namespaced, unknown namespace). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include "core/namespace.h"

static ns_options spaces[] = {
    {.name = "chat", .presence = 1},
    {.name = "news", .history_size = 10},
    {.name = "a.b-c_d"},
};

static const ns_registry reg = {
    .top = {.name = "", .join_leave = 1},
    .spaces = spaces,
    .nspaces = 3,
    .channel_max_length = 16,
};

static int valid(const char *s) { return ns_channel_valid(&reg, s, strlen(s)); }

static void test_valid_names(void **state) {
    (void)state;
    static const char *const good[] = {
        "a", "chat:room", "news:1", "x:y:z", "chat:", ":lead", "$private",
        "user#42", "a,b;c=d&e", "~!@%^*()[]{}\"'", "0123456789abcdef",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!valid(good[i])) fail_msg("\"%s\" should be valid", good[i]);
}

static void test_invalid_names(void **state) {
    (void)state;
    static const char *const bad[] = {
        "", "a b", " a", "a\t", "tab\tx", "new\nline", "del\x7f", "\x01",
        "caf\xc3\xa9", "0123456789abcdefg", /* 17 bytes > 16 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (valid(bad[i])) fail_msg("\"%s\" should be invalid", bad[i]);
    /* the length is what counts, not a NUL */
    assert_int_equal(ns_channel_valid(&reg, "ab\0c", 4), 0);
    assert_int_equal(ns_channel_valid(&reg, "abc", 2), 1);
    assert_int_equal(ns_channel_valid(&reg, "abc", 0), 0);
}

static void test_lookup(void **state) {
    (void)state;
    assert_ptr_equal(ns_lookup(&reg, "general"), &reg.top);
    assert_ptr_equal(ns_lookup(&reg, "$private"), &reg.top);
    assert_ptr_equal(ns_lookup(&reg, "chat:room"), &spaces[0]);
    assert_ptr_equal(ns_lookup(&reg, "chat:"), &spaces[0]);
    assert_ptr_equal(ns_lookup(&reg, "chat:a:b"), &spaces[0]); /* first ':' */
    assert_ptr_equal(ns_lookup(&reg, "news:x"), &spaces[1]);
    assert_ptr_equal(ns_lookup(&reg, "a.b-c_d:1"), &spaces[2]);
    assert_int_equal(ns_lookup(&reg, "chat:room")->presence, 1);
    assert_int_equal(ns_lookup(&reg, "lobby")->join_leave, 1);
}

static void test_lookup_unknown(void **state) {
    (void)state;
    assert_null(ns_lookup(&reg, "games:1"));
    assert_null(ns_lookup(&reg, ":room"));      /* empty namespace */
    assert_null(ns_lookup(&reg, "cha:room"));   /* prefix of "chat" */
    assert_null(ns_lookup(&reg, "chats:room")); /* "chat" is a prefix */
    assert_null(ns_lookup(&reg, "CHAT:room"));  /* case matters */
    assert_null(ns_lookup(&reg, "news.x:1"));
}

static void test_no_namespaces(void **state) {
    (void)state;
    ns_registry empty = {.top = {.name = ""}, .channel_max_length = 255};
    assert_ptr_equal(ns_lookup(&empty, "abc"), &empty.top);
    assert_null(ns_lookup(&empty, "chat:abc"));
    assert_int_equal(ns_channel_valid(&empty, "abc", 3), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_lookup_unknown),
        cmocka_unit_test(test_no_namespaces),
    };
    return cmocka_run_group_tests_name("namespace", tests, NULL, NULL);
}
