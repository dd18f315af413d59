/* Unit tests for ws_deflate: offer negotiation, the response value, and
 * the inflate/deflate steps of RFC 7692 including its section 7.2.3
 * examples, context takeover, window sizes and the output limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "net/ws_deflate.h"

#define MiB ((size_t)1 << 20)
#define NO_LIMIT ((size_t)-1)

/* ---- helpers ---------------------------------------------------------- */

/* Deterministic filler: text-like (compressible) or noise. */
static uint8_t *make_data(size_t len, int noise) {
    uint8_t *p = malloc(len ? len : 1);
    uint32_t x = 2463534242u;

    assert_non_null(p);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = noise ? (uint8_t)x : (uint8_t)("plaza says hello "[x % 17]);
    }
    return p;
}

/* A client-side compressor: raw deflate with its own window and context,
 * one Z_SYNC_FLUSH per message, tail stripped (RFC 7692 7.2.1). */
static void client_init(z_stream *zs, int window_bits) {
    memset(zs, 0, sizeof *zs);
    assert_int_equal(deflateInit2(zs, 6, Z_DEFLATED, -window_bits, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
}

static uint8_t *client_compress(z_stream *zs, const uint8_t *in, size_t len,
                                size_t *out_len) {
    size_t cap = deflateBound(zs, len) + 64;
    uint8_t *out = malloc(cap);

    assert_non_null(out);
    zs->next_in = (Bytef *)in;
    zs->avail_in = (uInt)len;
    zs->next_out = out;
    zs->avail_out = (uInt)cap;
    assert_int_equal(deflate(zs, Z_SYNC_FLUSH), Z_OK);
    assert_int_equal(zs->avail_in, 0);
    *out_len = cap - zs->avail_out;
    assert_true(*out_len >= 4);
    assert_memory_equal(out + *out_len - 4, "\x00\x00\xff\xff", 4);
    *out_len -= 4;
    return out;
}

/* Feeds in[] to inf in pieces of `step` bytes, then finishes. */
static int inflate_msg(ws_inflater *inf, const uint8_t *in, size_t len,
                       size_t step, size_t max_out, uint8_t **out,
                       size_t *out_len, size_t *out_cap) {
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        int rc = ws_inflater_feed(inf, in + off, n, out, out_len, out_cap,
                                  max_out);
        if (rc != 0) return rc;
    }
    return ws_inflater_finish(inf, out, out_len, out_cap, max_out);
}

/* Inflates one message into a fresh buffer and checks it equals want. */
static void expect_inflate(ws_inflater *inf, const uint8_t *in, size_t len,
                           size_t step, const void *want, size_t want_len) {
    uint8_t *out = NULL;
    size_t out_len = 0, out_cap = 0;

    assert_int_equal(inflate_msg(inf, in, len, step, NO_LIMIT, &out,
                                 &out_len, &out_cap), 0);
    assert_int_equal(out_len, want_len);
    if (want_len) assert_memory_equal(out, want, want_len);
    free(out);
}

static int inflate_status(ws_inflater *inf, const uint8_t *in, size_t len,
                          size_t step, size_t max_out) {
    uint8_t *out = NULL;
    size_t out_len = 0, out_cap = 0;
    int rc = inflate_msg(inf, in, len, step, max_out, &out, &out_len,
                         &out_cap);

    assert_true(out_len <= max_out);
    assert_true(out_cap <= max_out);
    free(out);
    return rc;
}

static ws_deflate_params params(int cnct, int cmwb) {
    ws_deflate_params p = {1, cnct, cmwb, 15};
    return p;
}

/* ---- negotiation ------------------------------------------------------ */

typedef struct offer_case {
    const char *header;
    int accepted, cnct, cmwb, smwb;
} offer_case;

static void test_negotiate_offers(void **state) {
    static const offer_case cases[] = {
        /* plain and with parameters */
        {"permessage-deflate", 1, 0, 15, 15},
        {"permessage-deflate; client_max_window_bits", 1, 0, 15, 15},
        {"permessage-deflate; client_max_window_bits=10", 1, 0, 10, 15},
        {"permessage-deflate; server_no_context_takeover", 1, 0, 15, 15},
        {"permessage-deflate;client_no_context_takeover", 1, 1, 15, 15},
        {"permessage-deflate; server_max_window_bits=12; "
         "client_no_context_takeover; server_no_context_takeover; "
         "client_max_window_bits=9", 1, 1, 9, 12},
        {"permessage-deflate; server_max_window_bits=15", 1, 0, 15, 15},
        {"permessage-deflate; server_max_window_bits=8", 1, 0, 15, 8},
        {"PerMessage-Deflate; Client_Max_Window_Bits=11", 1, 0, 11, 15},
        {"  permessage-deflate ; client_max_window_bits = 11 ", 1, 0, 11, 15},
        /* quoted values, with an escape */
        {"permessage-deflate; client_max_window_bits=\"10\"", 1, 0, 10, 15},
        {"permessage-deflate; server_max_window_bits=\"1\\3\"", 1, 0, 15, 13},
        /* bad values */
        {"permessage-deflate; server_max_window_bits", 0, 0, 0, 0},
        {"permessage-deflate; server_max_window_bits=16", 0, 0, 0, 0},
        {"permessage-deflate; server_max_window_bits=7", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=08", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=1O", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=-9", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=\"\"", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=\"10 \"", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=1000000000000000000010",
         0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=", 0, 0, 0, 0},
        {"permessage-deflate; client_no_context_takeover=1", 0, 0, 0, 0},
        {"permessage-deflate; server_no_context_takeover=\"\"", 0, 0, 0, 0},
        /* duplicates and unknown parameters */
        {"permessage-deflate; server_no_context_takeover; "
         "server_no_context_takeover", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits; "
         "client_max_window_bits=10", 0, 0, 0, 0},
        {"permessage-deflate; client_no_context_takeover; "
         "CLIENT_NO_CONTEXT_TAKEOVER", 0, 0, 0, 0},
        {"permessage-deflate; foo", 0, 0, 0, 0},
        {"permessage-deflate; mux=1", 0, 0, 0, 0},
        /* several offers: the first acceptable one wins */
        {"permessage-deflate; server_max_window_bits=10; foo, "
         "permessage-deflate", 1, 0, 15, 15},
        {"permessage-deflate; client_max_window_bits=20, "
         "permessage-deflate; client_max_window_bits=9", 1, 0, 9, 15},
        {"permessage-deflate; client_no_context_takeover, "
         "permessage-deflate; client_max_window_bits=9", 1, 1, 15, 15},
        /* other extensions first */
        {"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
         1, 0, 15, 15},
        {"foo; bar=\"a,b;c\", permessage-deflate; client_no_context_takeover",
         1, 1, 15, 15},
        {"deflate-frame; no_context_takeover, permessage-deflate", 1, 0, 15,
         15},
        /* syntax errors skip to the next offer */
        {"permessage-deflate; ; client_max_window_bits, permessage-deflate; "
         "client_max_window_bits=12", 1, 0, 12, 15},
        {"permessage-deflate; =x, permessage-deflate", 1, 0, 15, 15},
        {"permessage-deflate client_no_context_takeover, permessage-deflate; "
         "client_no_context_takeover", 1, 1, 15, 15},
        {"@@@, permessage-deflate", 1, 0, 15, 15},
        {"foo; bar=\"unterminated, permessage-deflate", 0, 0, 0, 0},
        {"permessage-deflate; client_max_window_bits=\"11", 0, 0, 0, 0},
        /* empty list elements */
        {"  ,  , permessage-deflate ,,", 1, 0, 15, 15},
        /* no offer at all */
        {"", 0, 0, 0, 0},
        {" , ", 0, 0, 0, 0},
        {"permessage-deflatex", 0, 0, 0, 0},
        {"x-permessage-deflate", 0, 0, 0, 0},
        {"deflate-frame", 0, 0, 0, 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const offer_case *c = &cases[i];
        ws_deflate_params p;

        memset(&p, 0x5a, sizeof p);
        int got = ws_deflate_negotiate(c->header, &p);
        if (got != c->accepted)
            fail_msg("offer \"%s\": got %d, want %d", c->header, got,
                     c->accepted);
        if (!got) continue;
        assert_int_equal(p.enabled, 1);
        assert_int_equal(p.client_no_context_takeover, c->cnct);
        assert_int_equal(p.client_max_window_bits, c->cmwb);
        assert_int_equal(p.server_max_window_bits, c->smwb);
    }
    assert_int_equal(ws_deflate_negotiate(NULL, &(ws_deflate_params){0}), 0);
}

static void test_response_value(void **state) {
    ws_deflate_params p = params(0, 15);
    char out[256];
    const char *all = "permessage-deflate; server_no_context_takeover; "
                      "client_no_context_takeover; server_max_window_bits=10; "
                      "client_max_window_bits=12";
    (void)state;

    assert_int_equal(ws_deflate_response(&p, out, sizeof out),
                     strlen("permessage-deflate; server_no_context_takeover"));
    assert_string_equal(out, "permessage-deflate; server_no_context_takeover");

    p.client_no_context_takeover = 1;
    p.server_max_window_bits = 10;
    p.client_max_window_bits = 12;
    assert_int_equal(ws_deflate_response(&p, out, sizeof out), strlen(all));
    assert_string_equal(out, all);
    assert_int_equal(ws_deflate_response(&p, out, strlen(all)), 0);
    assert_int_equal(ws_deflate_response(&p, out, strlen(all) + 1),
                     strlen(all));

    /* What an offer negotiates is what the response says. */
    assert_int_equal(ws_deflate_negotiate("permessage-deflate; "
                     "server_max_window_bits=\"9\"; client_max_window_bits",
                     &p), 1);
    assert_true(ws_deflate_response(&p, out, sizeof out) > 0);
    assert_string_equal(out, "permessage-deflate; server_no_context_takeover"
                             "; server_max_window_bits=9");

    p.enabled = 0;
    assert_int_equal(ws_deflate_response(&p, out, sizeof out), 0);
}

/* ---- RFC 7692 7.2.3 examples ------------------------------------------ */

static void test_rfc_examples(void **state) {
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                     0x65, 0x6c, 0x6c, 0x6f, 0x00};
    static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                     0x00, 0x00};
    ws_deflate_params p = params(0, 15);
    ws_inflater *inf = ws_inflater_new(&p);
    (void)state;

    assert_non_null(inf);
    /* 7.2.3.1, whole and as two fragments "f2 48 cd" + "c9 c9 07 00". */
    expect_inflate(inf, hello, sizeof hello, sizeof hello, "Hello", 5);
    expect_inflate(inf, hello, sizeof hello, 3, "Hello", 5);
    /* 7.2.3.2: the second message refers to the first one's window. */
    expect_inflate(inf, again, sizeof again, sizeof again, "Hello", 5);
    /* 7.2.3.3 stored block, 7.2.3.4 BFINAL set. */
    expect_inflate(inf, stored, sizeof stored, 1, "Hello", 5);
    expect_inflate(inf, bfinal, sizeof bfinal, 1, "Hello", 5);
    /* After a BFINAL message the window is still there. */
    expect_inflate(inf, again, sizeof again, 1, "Hello", 5);
    ws_inflater_free(inf);
}

/* ---- round trips ------------------------------------------------------ */

static void round_trip(size_t len, int noise, size_t step, int level) {
    uint8_t *data = make_data(len, noise);
    size_t clen = 0;
    uint8_t *comp = ws_deflate_message(data, len, level, 0, &clen);
    ws_deflate_params p = params(1, 15);
    ws_inflater *inf = ws_inflater_new(&p);

    assert_non_null(comp);
    assert_non_null(inf);
    assert_true(clen > 0);
    expect_inflate(inf, comp, clen, step, data, len);
    expect_inflate(inf, comp, clen, clen, data, len);   /* and again */
    ws_inflater_free(inf);
    free(comp);
    free(data);
}

static void test_round_trip_sizes(void **state) {
    static const size_t sizes[] = {1, 2, 5, 100, 1000, 65535, 65536, 100003};
    (void)state;

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        round_trip(sizes[i], 0, sizes[i] + 1, 6);
        round_trip(sizes[i], 1, sizes[i] + 1, 1);
    }
}

static void test_round_trip_1mib(void **state) {
    (void)state;
    round_trip(MiB, 0, 4093, 6);
    round_trip(MiB, 1, 65537, 9);
}

static void test_round_trip_odd_splits(void **state) {
    static const size_t steps[] = {1, 2, 3, 7, 13, 255, 1021};
    (void)state;

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        round_trip(20000, 0, steps[i], 6);
        round_trip(3000, 1, steps[i], 6);
    }
}

static void test_empty_message(void **state) {
    size_t clen = 99;
    uint8_t *comp = ws_deflate_message(NULL, 0, 6, 0, &clen);
    ws_deflate_params p = params(0, 15);
    ws_inflater *inf = ws_inflater_new(&p);
    uint8_t *out = NULL;
    size_t out_len = 0, out_cap = 0;
    (void)state;

    /* RFC 7692 7.2.3.6: an empty message compresses to the byte 0x00. */
    assert_non_null(comp);
    assert_int_equal(clen, 1);
    assert_int_equal(comp[0], 0x00);
    expect_inflate(inf, comp, clen, 1, "", 0);
    /* A compressed message with no payload bytes at all: empty too. */
    assert_int_equal(ws_inflater_finish(inf, &out, &out_len, &out_cap, 0), 0);
    assert_int_equal(out_len, 0);
    /* Zero-length pieces are no-ops. */
    assert_int_equal(ws_inflater_feed(inf, comp, 0, &out, &out_len, &out_cap,
                                      0), 0);
    expect_inflate(inf, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7, 7,
                   "Hello", 5);
    ws_inflater_free(inf);
    free(comp);
    free(out);
}

static void test_reserve_and_levels(void **state) {
    static const int levels[] = {1, 9, 6, 9, 1, 0};
    uint8_t *data = make_data(5000, 0);
    ws_deflate_params p = params(1, 15);
    ws_inflater *inf = ws_inflater_new(&p);
    size_t clen;
    (void)state;

    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        uint8_t *buf = ws_deflate_message(data, 5000, levels[i], 14, &clen);
        assert_non_null(buf);
        memset(buf, 0xee, 14);          /* the reserve is ours to write */
        expect_inflate(inf, buf + 14, clen, clen, data, 5000);
        free(buf);
    }
    assert_null(ws_deflate_message(data, 5000, 42, 0, &clen));
    /* A bad level leaves later calls working. */
    uint8_t *buf = ws_deflate_message(data, 5000, 6, 0, &clen);
    assert_non_null(buf);
    expect_inflate(inf, buf, clen, clen, data, 5000);
    free(buf);
    ws_inflater_free(inf);
    free(data);
}

/* The same message compresses to the same bytes every time: no context
 * leaks from one message to the next (server_no_context_takeover). */
static void test_deflate_no_context(void **state) {
    uint8_t *data = make_data(3000, 0);
    size_t l1, l2;
    uint8_t *c1 = ws_deflate_message(data, 3000, 6, 0, &l1);
    uint8_t *c2 = ws_deflate_message(data, 3000, 6, 0, &l2);
    ws_deflate_params p = params(1, 15);
    ws_inflater *inf = ws_inflater_new(&p);
    (void)state;

    assert_int_equal(l1, l2);
    assert_memory_equal(c1, c2, l1);
    expect_inflate(inf, c2, l2, l2, data, 3000);   /* fresh context works */
    ws_inflater_free(inf);
    free(c1);
    free(c2);
    free(data);
}

static void *thread_compress(void *arg) {
    size_t clen;
    uint8_t *buf = ws_deflate_message(arg, 1000, 6, 0, &clen);

    free(buf);
    return buf ? arg : NULL;
}

/* Each thread has its own cached stream, freed at thread exit (the leak
 * checker of -fsanitize=address would report it otherwise). */
static void test_deflate_threads(void **state) {
    uint8_t *data = make_data(1000, 0);
    pthread_t th[3];
    void *ret;
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_compress, data),
                         0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_ptr_equal(ret, data);
    }
    free(data);
}

/* ---- context takeover ------------------------------------------------- */

static void test_context_takeover(void **state) {
    uint8_t *data = make_data(4000, 1);
    z_stream client;
    size_t l1, l2;
    uint8_t *m1, *m2;
    ws_deflate_params keep = params(0, 15), reset = params(1, 15);
    ws_inflater *inf;
    (void)state;

    client_init(&client, 15);
    m1 = client_compress(&client, data, 4000, &l1);
    m2 = client_compress(&client, data, 4000, &l2);
    /* The second message is a back-reference into the first. */
    assert_true(l2 < 100);
    inf = ws_inflater_new(&keep);
    expect_inflate(inf, m1, l1, 7, data, 4000);
    expect_inflate(inf, m2, l2, 7, data, 4000);
    ws_inflater_free(inf);

    /* Without context takeover the window is gone after a message. */
    inf = ws_inflater_new(&reset);
    expect_inflate(inf, m1, l1, l1, data, 4000);
    assert_int_equal(inflate_status(inf, m2, l2, l2, NO_LIMIT), -1);
    ws_inflater_free(inf);

    deflateEnd(&client);
    free(m1);
    free(m2);
    free(data);
}

/* A client that ends each message with a BFINAL block (7.2.3.4) yet keeps
 * its window: the next message is a new zlib stream whose dictionary is the
 * previous message. */
static void test_bfinal_keeps_window(void **state) {
    uint8_t *data = make_data(2000, 1);
    uint8_t m1[4096], m2[4096];
    size_t l1, l2;
    z_stream zs;
    ws_deflate_params keep = params(0, 15);
    ws_inflater *inf = ws_inflater_new(&keep);
    (void)state;

    client_init(&zs, 15);
    zs.next_in = data;
    zs.avail_in = 2000;
    zs.next_out = m1;
    zs.avail_out = sizeof m1;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    l1 = sizeof m1 - zs.avail_out;
    assert_int_equal(deflateReset(&zs), Z_OK);
    assert_int_equal(deflateSetDictionary(&zs, data, 2000), Z_OK);
    zs.next_in = data;
    zs.avail_in = 2000;
    zs.next_out = m2;
    zs.avail_out = sizeof m2;
    assert_int_equal(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
    l2 = sizeof m2 - zs.avail_out - 4;
    assert_true(l2 < 100);

    expect_inflate(inf, m1, l1, 3, data, 2000);
    expect_inflate(inf, m2, l2, 3, data, 2000);
    deflateEnd(&zs);
    ws_inflater_free(inf);
    free(data);
}

/* ---- window sizes ----------------------------------------------------- */

static void test_client_window_bits(void **state) {
    /* 1000 bytes of noise, repeated 20000 bytes later: with a 32 KiB window
     * the repeat is a back-reference, with 512 bytes it cannot be. */
    uint8_t *data = make_data(21000, 1);
    const ws_deflate_params small[] = {params(1, 9), params(1, 10),
                                       params(1, 8)};
    size_t len;
    (void)state;

    memcpy(data + 20000, data, 1000);
    for (int bits = 9; bits <= 15; bits += 6) {
        z_stream zs;
        uint8_t *m;

        client_init(&zs, bits);
        m = client_compress(&zs, data, 21000, &len);

        /* client_max_window_bits 9, 10 and 8 (zlib clients that agreed to
         * 8 compress with 9). A client using a bigger window than it
         * agreed to is caught by zlib: -1. */
        for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
            ws_inflater *inf = ws_inflater_new(&small[i]);
            if (bits == 9)
                expect_inflate(inf, m, len, 1000, data, 21000);
            else
                assert_int_equal(inflate_status(inf, m, len, len, NO_LIMIT),
                                 -1);
            ws_inflater_free(inf);
        }
        deflateEnd(&zs);
        free(m);
    }
    free(data);
}

/* ---- limits and bad input --------------------------------------------- */

static void test_zip_bomb(void **state) {
    size_t big = 10 * MiB, clen;
    uint8_t *zeros = calloc(big, 1);
    uint8_t *bomb;
    ws_deflate_params p = params(0, 15);
    ws_inflater *inf = ws_inflater_new(&p);
    (void)state;

    assert_non_null(zeros);
    bomb = ws_deflate_message(zeros, big, 9, 0, &clen);
    assert_non_null(bomb);
    assert_true(clen < 20000);
    assert_int_equal(inflate_status(inf, bomb, clen, clen, MiB), -2);
    ws_inflater_free(inf);

    inf = ws_inflater_new(&p);
    assert_int_equal(inflate_status(inf, bomb, clen, 97, 64 * 1024), -2);
    ws_inflater_free(inf);
    free(bomb);
    free(zeros);
}

/* A message of exactly max_out bytes fits; one byte less does not. The
 * limit counts what *out already held. */
static void test_limit_exact(void **state) {
    uint8_t *data = make_data(10000, 0);
    size_t clen;
    uint8_t *comp = ws_deflate_message(data, 10000, 6, 0, &clen);
    ws_deflate_params p = params(1, 15);
    ws_inflater *inf = ws_inflater_new(&p);
    uint8_t *out;
    size_t out_len, out_cap;
    (void)state;

    assert_int_equal(inflate_status(inf, comp, clen, 5, 10000), 0);
    assert_int_equal(inflate_status(inf, comp, clen, 5, 9999), -2);
    ws_inflater_free(inf);

    inf = ws_inflater_new(&p);
    out = malloc(16);
    memcpy(out, "prefix", 6);
    out_len = 6;
    out_cap = 16;
    assert_int_equal(inflate_msg(inf, comp, clen, clen, 10006, &out, &out_len,
                                 &out_cap), 0);
    assert_int_equal(out_len, 10006);
    assert_memory_equal(out, "prefix", 6);
    assert_memory_equal(out + 6, data, 10000);
    out_len = 6;
    assert_int_equal(inflate_msg(inf, comp, clen, clen, 10005, &out, &out_len,
                                 &out_cap), -2);
    assert_true(out_len <= 10005);
    ws_inflater_free(inf);
    free(out);
    free(comp);
    free(data);
}

static void test_garbage(void **state) {
    static const uint8_t reserved_btype[] = {0x07, 0x00, 0x00};
    static const uint8_t bad_stored[] = {0x00, 0x05, 0x00, 0x00, 0x00, 'x'};
    uint8_t *noise = make_data(4096, 1);
    ws_deflate_params p = params(0, 15);
    ws_inflater *inf = ws_inflater_new(&p);
    (void)state;

    assert_int_equal(inflate_status(inf, reserved_btype,
                                    sizeof reserved_btype, 1, NO_LIMIT), -1);
    ws_inflater_free(inf);
    inf = ws_inflater_new(&p);
    assert_int_equal(inflate_status(inf, bad_stored, sizeof bad_stored,
                                    sizeof bad_stored, NO_LIMIT), -1);
    ws_inflater_free(inf);
    inf = ws_inflater_new(&p);
    assert_int_equal(inflate_status(inf, noise, 4096, 100, NO_LIMIT), -1);
    ws_inflater_free(inf);
    free(noise);
}

/* A payload that stops inside a deflate block is invalid. (Cutting after
 * the first byte of a stored block is not a test: "00" is the valid
 * compressed form of an empty message.) */
static void test_truncated(void **state) {
    ws_deflate_params p = params(1, 15);
    (void)state;

    for (int noise = 0; noise <= 1; noise++) {
        uint8_t *data = make_data(5000, noise);
        size_t clen;
        uint8_t *comp = ws_deflate_message(data, 5000, 6, 0, &clen);

        assert_true(clen > 100);
        for (size_t cut = 2; cut < clen; cut += clen / 13) {
            ws_inflater *inf = ws_inflater_new(&p);
            int rc = inflate_status(inf, comp, cut, cut, NO_LIMIT);
            if (rc != -1)
                fail_msg("noise %d, cut %zu of %zu: %d", noise, cut, clen, rc);
            ws_inflater_free(inf);
        }
        free(comp);
        free(data);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate_offers),
        cmocka_unit_test(test_response_value),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_round_trip_1mib),
        cmocka_unit_test(test_round_trip_odd_splits),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_reserve_and_levels),
        cmocka_unit_test(test_deflate_no_context),
        cmocka_unit_test(test_deflate_threads),
        cmocka_unit_test(test_context_takeover),
        cmocka_unit_test(test_bfinal_keeps_window),
        cmocka_unit_test(test_client_window_bits),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_limit_exact),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
