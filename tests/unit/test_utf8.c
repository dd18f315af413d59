/* Unit tests for src/net/utf8.c: valid and invalid sequences, split feeds,
 * the ASCII fast path at every offset, and a comparison with a plain
 * reference decoder over all short inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/utf8.h"

/* Straightforward decoder used as the reference (RFC 3629). */
static int ref_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        uint32_t cp, min;
        size_t k;
        if (b < 0x80) { i++; continue; }
        if ((b & 0xe0) == 0xc0) { k = 1; cp = b & 0x1f; min = 0x80; }
        else if ((b & 0xf0) == 0xe0) { k = 2; cp = b & 0x0f; min = 0x800; }
        else if ((b & 0xf8) == 0xf0) { k = 3; cp = b & 0x07; min = 0x10000; }
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int valid_str(const char *s) {
    return utf8_valid((const uint8_t *)s, strlen(s));
}

/* Valid/invalid as two feeds split at `cut`. */
static int valid_split(const uint8_t *s, size_t n, size_t cut) {
    utf8_state st;
    utf8_init(&st);
    if (utf8_feed(&st, s, cut) != 0) return 0;
    if (utf8_feed(&st, s + cut, n - cut) != 0) return 0;
    return utf8_done(&st);
}

static void test_empty_and_ascii(void **state) {
    (void)state;
    utf8_state st;
    utf8_init(&st);
    assert_true(utf8_done(&st));
    assert_int_equal(utf8_feed(&st, (const uint8_t *)"", 0), 0);
    assert_true(utf8_done(&st));
    assert_true(utf8_valid(NULL, 0));
    assert_true(valid_str("hello, world"));
    assert_true(valid_str("\x01\x7f"));
    assert_true(utf8_valid((const uint8_t *)"\0\0", 2));
}

static void test_valid_two_byte(void **state) {
    (void)state;
    assert_true(valid_str("\xc2\x80"));            /* U+0080 */
    assert_true(valid_str("caf\xc3\xa9"));         /* é */
    assert_true(valid_str("\xdf\xbf"));            /* U+07FF */
    assert_true(valid_str("\xd0\x9f\xd1\x80\xd0\xb8"));
}

static void test_valid_three_byte(void **state) {
    (void)state;
    assert_true(valid_str("\xe0\xa0\x80"));        /* U+0800 */
    assert_true(valid_str("\xe2\x82\xac"));        /* € */
    assert_true(valid_str("\xed\x9f\xbf"));        /* U+D7FF */
    assert_true(valid_str("\xee\x80\x80"));        /* U+E000 */
    assert_true(valid_str("\xef\xbf\xbf"));        /* U+FFFF */
    assert_true(valid_str("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"));
}

static void test_valid_four_byte(void **state) {
    (void)state;
    assert_true(valid_str("\xf0\x90\x80\x80"));    /* U+10000 */
    assert_true(valid_str("\xf0\x9d\x84\x9e"));    /* U+1D11E */
    assert_true(valid_str("\xf0\x9f\x98\x80"));    /* U+1F600 */
    assert_true(valid_str("\xf3\xbf\xbf\xbf"));    /* U+FFFFF */
    assert_true(valid_str("\xf4\x8f\xbf\xbf"));    /* U+10FFFF */
}

static void test_overlong_two_byte(void **state) {
    (void)state;
    assert_false(valid_str("\xc0\x80"));           /* U+0000 */
    assert_false(valid_str("\xc0\xaf"));           /* '/' */
    assert_false(valid_str("\xc1\xbf"));           /* U+007F */
}

static void test_overlong_three_byte(void **state) {
    (void)state;
    assert_false(valid_str("\xe0\x80\x80"));
    assert_false(valid_str("\xe0\x80\xaf"));
    assert_false(valid_str("\xe0\x9f\xbf"));       /* U+07FF */
}

static void test_overlong_four_byte(void **state) {
    (void)state;
    assert_false(valid_str("\xf0\x80\x80\x80"));
    assert_false(valid_str("\xf0\x80\x80\xaf"));
    assert_false(valid_str("\xf0\x8f\xbf\xbf"));   /* U+FFFF */
}

static void test_surrogates(void **state) {
    (void)state;
    assert_false(valid_str("\xed\xa0\x80"));       /* U+D800 */
    assert_false(valid_str("\xed\xad\xbf"));       /* U+DB7F */
    assert_false(valid_str("\xed\xb0\x80"));       /* U+DC00 */
    assert_false(valid_str("\xed\xbf\xbf"));       /* U+DFFF */
    assert_false(valid_str("\xed\xa0\xbd\xed\xb8\x80"));   /* CESU pair */
}

static void test_above_10ffff(void **state) {
    (void)state;
    assert_false(valid_str("\xf4\x90\x80\x80"));   /* U+110000 */
    assert_false(valid_str("\xf4\xbf\xbf\xbf"));
    assert_false(valid_str("\xf5\x80\x80\x80"));
    assert_false(valid_str("\xf7\xbf\xbf\xbf"));
    assert_false(valid_str("\xf8\x88\x80\x80\x80"));
    assert_false(valid_str("\xfc\x84\x80\x80\x80\x80"));
    assert_false(valid_str("\xfe"));
    assert_false(valid_str("\xff"));
}

static void test_stray_continuation(void **state) {
    (void)state;
    assert_false(valid_str("\x80"));
    assert_false(valid_str("\xbf"));
    assert_false(valid_str("a\x80z"));
    assert_false(valid_str("\xc3\xa9\xa9"));       /* one too many */
    assert_false(valid_str("\xe2\x82\xac\x80"));
}

static void test_truncated_sequences(void **state) {
    (void)state;
    const char *cases[] = {
        "\xc3", "\xe2", "\xe2\x82", "\xf0", "\xf0\x9f", "\xf0\x9f\x98",
        "abc\xf4\x8f\xbf", "\xe0\xa0", "\xed\x9f",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        utf8_state st;
        utf8_init(&st);
        /* Not an error yet: the rest may come in the next fragment... */
        assert_int_equal(utf8_feed(&st, (const uint8_t *)cases[i],
                                   strlen(cases[i])), 0);
        assert_false(utf8_done(&st));
        assert_false(valid_str(cases[i]));
        /* ...but a lead byte followed by ASCII is. */
        assert_int_equal(utf8_feed(&st, (const uint8_t *)"a", 1), -1);
        assert_false(utf8_done(&st));
    }
}

static void test_invalid_is_sticky(void **state) {
    (void)state;
    utf8_state st;
    utf8_init(&st);
    assert_int_equal(utf8_feed(&st, (const uint8_t *)"ok\xff", 3), -1);
    assert_int_equal(utf8_feed(&st, (const uint8_t *)"fine", 4), -1);
    assert_int_equal(utf8_feed(&st, (const uint8_t *)"", 0), -1);
    assert_false(utf8_done(&st));
}

static void test_valid_split_every_boundary(void **state) {
    (void)state;
    const char *s = "a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80 0123456789"
                    "\xed\x9f\xbf\xf4\x8f\xbf\xbf\xc2\x80!";
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut++)
        assert_true(valid_split((const uint8_t *)s, n, cut));
}

static void test_invalid_split_every_boundary(void **state) {
    (void)state;
    const char *cases[] = {
        "abc\xc0\x80xyz", "0123456789\xe0\x9f\xbf", "\xed\xa0\x80tail",
        "\xf4\x90\x80\x80", "ok \xf0\x8f\xbf\xbf", "\xc3\xa9\xa9", "x\x80",
        "0123456789abcdef\xe2\x82", "\xe2\x82\xac\xf0\x9f\x98",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i]);
        for (size_t cut = 0; cut <= n; cut++)
            assert_false(valid_split((const uint8_t *)cases[i], n, cut));
    }
}

/* A multi-byte character, a bad byte or a truncated lead at every offset
 * of an ASCII buffer, across the 8-byte fast path boundaries. */
static void test_fast_path_every_offset(void **state) {
    (void)state;
    const char *ins_ok[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    const char *ins_bad[] = {"\x80", "\xc0\x80", "\xed\xa0\x80", "\xff"};
    uint8_t buf[80];
    for (size_t pos = 0; pos < 64; pos++) {
        for (size_t k = 0; k < 3; k++) {
            size_t l = strlen(ins_ok[k]);
            memset(buf, 'x', sizeof buf);
            memcpy(buf + pos, ins_ok[k], l);
            assert_true(utf8_valid(buf, 64 + l));
            assert_false(utf8_valid(buf, pos + l - 1));   /* cut short */
        }
        for (size_t k = 0; k < 4; k++) {
            memset(buf, 'x', sizeof buf);
            memcpy(buf + pos, ins_bad[k], strlen(ins_bad[k]));
            assert_false(utf8_valid(buf, 72));
        }
        memset(buf, 'x', sizeof buf);
        buf[pos] = 0x80;                                  /* high bit alone */
        assert_true(utf8_valid(buf, pos));
        assert_false(utf8_valid(buf, pos + 1));
    }
}

static void test_exhaustive_short_vs_reference(void **state) {
    (void)state;
    uint8_t s[3];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        assert_int_equal(utf8_valid(s, 1), ref_valid(s, 1));
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            assert_int_equal(utf8_valid(s, 2), ref_valid(s, 2));
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                if (utf8_valid(s, 3) != ref_valid(s, 3))
                    fail_msg("mismatch on %02x %02x %02x", a, b, c);
            }
        }
    }
}

static void test_four_byte_vs_reference(void **state) {
    (void)state;
    const uint8_t pick[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                            0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xf4, 0xff};
    const size_t np = sizeof pick;
    uint8_t s[4];
    for (unsigned a = 0; a < 256; a++)
        for (size_t i = 0; i < np; i++)
            for (size_t j = 0; j < np; j++)
                for (size_t k = 0; k < np; k++) {
                    s[0] = (uint8_t)a;
                    s[1] = pick[i];
                    s[2] = pick[j];
                    s[3] = pick[k];
                    assert_int_equal(utf8_valid(s, 4), ref_valid(s, 4));
                }
}

/* Random mixes of characters and junk, fed in random pieces. */
static void test_random_split_feeds_vs_reference(void **state) {
    (void)state;
    const char *parts[] = {"a", "0123456789abcdef", "\xc3\xa9", "\xe2\x82\xac",
                           "\xf0\x9f\x98\x80", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf",
                           "\x80", "\xc0", "\xed\xa0", "\xf4\x90", "\xe0"};
    const size_t np = sizeof parts / sizeof parts[0];
    uint32_t rnd = 12345;
    uint8_t buf[256];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        int junk = iter % 4 == 0;   /* most strings stay valid */
        while (n < 200) {
            rnd = rnd * 1103515245u + 12345u;
            size_t k = (rnd >> 16) % (junk ? np : 7);
            size_t l = strlen(parts[k]);
            memcpy(buf + n, parts[k], l);
            n += l;
        }
        int want = ref_valid(buf, n);
        utf8_state st;
        size_t at = 0;
        int ok = 1;
        utf8_init(&st);
        while (at < n && ok) {
            rnd = rnd * 1103515245u + 12345u;
            size_t step = 1 + (rnd >> 16) % 23;
            if (step > n - at) step = n - at;
            ok = utf8_feed(&st, buf + at, step) == 0;
            at += step;
        }
        assert_int_equal(ok && utf8_done(&st), want);
        assert_int_equal(utf8_valid(buf, n), want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_ascii),
        cmocka_unit_test(test_valid_two_byte),
        cmocka_unit_test(test_valid_three_byte),
        cmocka_unit_test(test_valid_four_byte),
        cmocka_unit_test(test_overlong_two_byte),
        cmocka_unit_test(test_overlong_three_byte),
        cmocka_unit_test(test_overlong_four_byte),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_above_10ffff),
        cmocka_unit_test(test_stray_continuation),
        cmocka_unit_test(test_truncated_sequences),
        cmocka_unit_test(test_invalid_is_sticky),
        cmocka_unit_test(test_valid_split_every_boundary),
        cmocka_unit_test(test_invalid_split_every_boundary),
        cmocka_unit_test(test_fast_path_every_offset),
        cmocka_unit_test(test_exhaustive_short_vs_reference),
        cmocka_unit_test(test_four_byte_vs_reference),
        cmocka_unit_test(test_random_split_feeds_vs_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
