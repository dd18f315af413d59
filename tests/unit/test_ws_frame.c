/* Unit tests for src/net/ws_frame.c: every frame-level violation, payload
 * delivery and unmasking across arbitrary read splits, the size limit, the
 * header encoder and the close code check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws_frame.h"

/* ------------------------------------------------------------------------ */
/* Event recorder                                                           */
/* ------------------------------------------------------------------------ */

enum { EV_BEGIN = 1, EV_DATA, EV_END, EV_CTRL };

typedef struct rec_event {
    int type;
    int opcode;       /* BEGIN, CTRL */
    int compressed;   /* BEGIN */
    int in_place;     /* CTRL: payload pointed into the fed buffer */
    uint8_t *data;    /* DATA (consecutive calls merged), CTRL */
    size_t len, cap;
} rec_event;

typedef struct recorder {
    rec_event *ev;
    size_t n, cap;
    size_t data_calls;          /* on_message_data calls, unmerged */
    int stop_type;              /* event type that returns stop_code */
    int stop_code;
    const uint8_t *buf_lo, *buf_hi;   /* the buffer being fed */
} recorder;

static rec_event *rec_push(recorder *r, int type) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->ev = realloc(r->ev, r->cap * sizeof(*r->ev));
        assert_non_null(r->ev);
    }
    memset(&r->ev[r->n], 0, sizeof(r->ev[0]));
    r->ev[r->n].type = type;
    return &r->ev[r->n++];
}

static void rec_append(rec_event *e, const uint8_t *d, size_t len) {
    if (e->len + len > e->cap) {
        e->cap = (e->len + len) * 2 + 16;
        e->data = realloc(e->data, e->cap);
        assert_non_null(e->data);
    }
    if (len) memcpy(e->data + e->len, d, len);
    e->len += len;
}

static void rec_free(recorder *r) {
    for (size_t i = 0; i < r->n; i++) free(r->ev[i].data);
    free(r->ev);
    memset(r, 0, sizeof(*r));
}

static int on_begin(void *ud, int opcode, int compressed) {
    recorder *r = ud;
    rec_event *e = rec_push(r, EV_BEGIN);
    e->opcode = opcode;
    e->compressed = compressed;
    return r->stop_type == EV_BEGIN ? r->stop_code : 0;
}

static int on_data(void *ud, const uint8_t *d, size_t len) {
    recorder *r = ud;
    rec_event *e = (r->n && r->ev[r->n - 1].type == EV_DATA)
                       ? &r->ev[r->n - 1] : rec_push(r, EV_DATA);
    r->data_calls++;
    rec_append(e, d, len);
    return r->stop_type == EV_DATA ? r->stop_code : 0;
}

static int on_end(void *ud) {
    recorder *r = ud;
    rec_push(r, EV_END);
    return r->stop_type == EV_END ? r->stop_code : 0;
}

static int on_control(void *ud, int opcode, const uint8_t *p, size_t len) {
    recorder *r = ud;
    rec_event *e = rec_push(r, EV_CTRL);
    assert_true(len <= WS_MAX_CONTROL);
    e->opcode = opcode;
    e->in_place = p >= r->buf_lo && p + len <= r->buf_hi;
    rec_append(e, p, len);
    return r->stop_type == EV_CTRL ? r->stop_code : 0;
}

static const ws_parser_events events = {on_begin, on_data, on_end, on_control};

/* ------------------------------------------------------------------------ */
/* Frame builder                                                            */
/* ------------------------------------------------------------------------ */

#define FIN 0x80
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10

enum { LEN_MIN = 0, LEN_16 = 16, LEN_64 = 64 };

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

typedef struct stream {
    uint8_t *b;
    size_t n, cap;
} stream;

static void put(stream *s, const void *d, size_t len) {
    if (s->n + len > s->cap) {
        s->cap = (s->n + len) * 2 + 64;
        s->b = realloc(s->b, s->cap);
        assert_non_null(s->b);
    }
    if (len) memcpy(s->b + s->n, d, len);
    s->n += len;
}

/* Appends a frame with first byte b0, payload len bytes (masked with mask
 * if not NULL) and the length in the given form. */
static void put_frame_ex(stream *s, uint8_t b0, const void *payload,
                         size_t len, const uint8_t *mask, int form) {
    uint8_t h[14];
    size_t hn = 2;
    uint8_t mbit = mask ? 0x80 : 0;

    h[0] = b0;
    if (form == LEN_MIN && len < 126) {
        h[1] = (uint8_t)(mbit | len);
    } else if (form == LEN_16 || (form == LEN_MIN && len <= 0xffff)) {
        h[1] = mbit | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hn = 4;
    } else {
        h[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hn = 10;
    }
    if (mask) {
        memcpy(h + hn, mask, 4);
        hn += 4;
    }
    put(s, h, hn);
    size_t at = s->n;
    put(s, payload, len);
    if (mask)
        for (size_t i = 0; i < len; i++) s->b[at + i] ^= mask[i & 3];
}

static void put_frame(stream *s, uint8_t b0, const void *payload, size_t len) {
    put_frame_ex(s, b0, payload, len, MASK, LEN_MIN);
}

static void put_str(stream *s, uint8_t b0, const char *str) {
    put_frame(s, b0, str, strlen(str));
}

/* ------------------------------------------------------------------------ */
/* Running a parser                                                         */
/* ------------------------------------------------------------------------ */

typedef struct config {
    int require_mask, allow_rsv1;
    uint64_t max_message;
} config;

static const config SERVER = {1, 0, 0};
static const config SERVER_DEFLATE = {1, 1, 0};

/* Feeds a fresh copy of src[0..n) to a new parser, cut at the (ascending)
 * offsets in cuts. Returns the first non-zero feed result, else 0. */
static int run_cuts(config c, const uint8_t *src, size_t n, const size_t *cuts,
                    size_t ncuts, recorder *r) {
    uint8_t *buf = malloc(n ? n : 1);
    ws_parser p;
    size_t at = 0;
    int rc = 0;

    assert_non_null(buf);
    if (n) memcpy(buf, src, n);
    ws_parser_init(&p, c.require_mask, c.allow_rsv1, c.max_message);
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        r->buf_lo = buf + at;
        r->buf_hi = buf + end;
        rc = ws_parser_feed(&p, buf + at, end - at, &events, r);
        at = end;
    }
    if (rc) {
        assert_true(p.failed);
        assert_non_null(p.error);
    } else {
        assert_false(p.failed);
    }
    ws_parser_free(&p);
    free(buf);
    return rc;
}

static int run_all(config c, const stream *s, recorder *r) {
    return run_cuts(c, s->b, s->n, NULL, 0, r);
}

/* Feeds chunks of `step` bytes. */
static int run_step(config c, const stream *s, size_t step, recorder *r) {
    size_t ncuts = s->n / step + 1, k = 0;
    size_t *cuts = malloc(ncuts * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t at = step; at < s->n; at += step) cuts[k++] = at;
    int rc = run_cuts(c, s->b, s->n, cuts, k, r);
    free(cuts);
    return rc;
}

static void assert_same(const recorder *a, const recorder *b) {
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const rec_event *x = &a->ev[i], *y = &b->ev[i];
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->opcode, y->opcode);
        assert_int_equal(x->compressed, y->compressed);
        assert_int_equal(x->len, y->len);
        if (x->len) assert_memory_equal(x->data, y->data, x->len);
    }
}

static void expect_begin(const recorder *r, size_t i, int op, int comp) {
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].type, EV_BEGIN);
    assert_int_equal(r->ev[i].opcode, op);
    assert_int_equal(r->ev[i].compressed, comp);
}

static void expect_data(const recorder *r, size_t i, const void *d, size_t len) {
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].type, EV_DATA);
    assert_int_equal(r->ev[i].len, len);
    assert_memory_equal(r->ev[i].data, d, len);
}

static void expect_str(const recorder *r, size_t i, const char *str) {
    expect_data(r, i, str, strlen(str));
}

static void expect_end(const recorder *r, size_t i) {
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].type, EV_END);
}

static void expect_ctrl(const recorder *r, size_t i, int op, const void *d,
                        size_t len) {
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].type, EV_CTRL);
    assert_int_equal(r->ev[i].opcode, op);
    assert_int_equal(r->ev[i].len, len);
    if (len) assert_memory_equal(r->ev[i].data, d, len);
}

/* Runs a stream expected to fail with `code`, all at once and one byte at a
 * time (same events both ways); leaves the all-at-once events in *r. */
static void expect_failure(config c, const stream *s, int code, recorder *r) {
    recorder r1 = {0};
    assert_int_equal(run_all(c, s, r), code);
    assert_int_equal(run_step(c, s, 1, &r1), code);
    assert_same(r, &r1);
    rec_free(&r1);
}

/* ------------------------------------------------------------------------ */
/* Basic delivery                                                           */
/* ------------------------------------------------------------------------ */

static void test_rfc_masked_hello(void **state) {
    (void)state;
    /* RFC 6455 section 5.7. */
    uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    recorder r = {0};
    assert_int_equal(run_cuts(SERVER, f, sizeof f, NULL, 0, &r), 0);
    assert_int_equal(r.n, 3);
    expect_begin(&r, 0, WS_OP_TEXT, 0);
    expect_str(&r, 1, "Hello");
    expect_end(&r, 2);
    assert_int_equal(r.data_calls, 1);
    rec_free(&r);
}

static void test_client_side_unmasked_ok(void **state) {
    (void)state;
    uint8_t f[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    config client = {0, 0, 0};
    recorder r = {0};
    assert_int_equal(run_cuts(client, f, sizeof f, NULL, 0, &r), 0);
    assert_int_equal(r.n, 3);
    expect_str(&r, 1, "Hello");
    rec_free(&r);
}

static void test_binary_and_rsv1_allowed(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_str(&s, FIN | RSV1 | WS_OP_BINARY, "zzz");
    assert_int_equal(run_all(SERVER_DEFLATE, &s, &r), 0);
    assert_int_equal(r.n, 3);
    expect_begin(&r, 0, WS_OP_BINARY, 1);
    expect_str(&r, 1, "zzz");
    rec_free(&r);
    free(s.b);
}

static void test_fragmented_with_interleaved_ping(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_str(&s, WS_OP_TEXT, "Hel");
    put_str(&s, FIN | WS_OP_PING, "p1");
    put_str(&s, WS_OP_CONT, "lo, ");
    put_str(&s, FIN | WS_OP_PONG, "");
    put_str(&s, FIN | WS_OP_CONT, "world");
    put_str(&s, FIN | WS_OP_BINARY, "next");
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 10);
    expect_begin(&r, 0, WS_OP_TEXT, 0);
    expect_str(&r, 1, "Hel");
    expect_ctrl(&r, 2, WS_OP_PING, "p1", 2);
    expect_str(&r, 3, "lo, ");
    expect_ctrl(&r, 4, WS_OP_PONG, "", 0);
    expect_str(&r, 5, "world");
    expect_end(&r, 6);
    expect_begin(&r, 7, WS_OP_BINARY, 0);
    expect_str(&r, 8, "next");
    expect_end(&r, 9);
    rec_free(&r);
    free(s.b);
}

static void test_fragmented_compressed_flag_from_first(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_str(&s, RSV1 | WS_OP_TEXT, "ab");
    put_str(&s, FIN | WS_OP_CONT, "cd");
    assert_int_equal(run_all(SERVER_DEFLATE, &s, &r), 0);
    assert_int_equal(r.n, 3);
    expect_begin(&r, 0, WS_OP_TEXT, 1);
    expect_str(&r, 1, "abcd");
    rec_free(&r);
    free(s.b);
}

static void test_empty_text_message(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_str(&s, FIN | WS_OP_TEXT, "");
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 2);
    expect_begin(&r, 0, WS_OP_TEXT, 0);
    expect_end(&r, 1);
    rec_free(&r);
    free(s.b);
}

static void test_empty_final_fragment(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_str(&s, WS_OP_TEXT, "abc");
    put_str(&s, WS_OP_CONT, "");
    put_str(&s, FIN | WS_OP_CONT, "");
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 3);
    expect_begin(&r, 0, WS_OP_TEXT, 0);
    expect_str(&r, 1, "abc");
    expect_end(&r, 2);
    rec_free(&r);

    /* All fragments empty. */
    free(s.b);
    memset(&s, 0, sizeof s);
    put_str(&s, WS_OP_BINARY, "");
    put_str(&s, FIN | WS_OP_CONT, "");
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 2);
    expect_begin(&r, 0, WS_OP_BINARY, 0);
    expect_end(&r, 1);
    rec_free(&r);
    free(s.b);
}

static void test_empty_control_frames(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_str(&s, FIN | WS_OP_PING, "");
    put_str(&s, FIN | WS_OP_CLOSE, "");
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 2);
    expect_ctrl(&r, 0, WS_OP_PING, "", 0);
    expect_ctrl(&r, 1, WS_OP_CLOSE, "", 0);
    rec_free(&r);
    free(s.b);
}

static void test_close_payload_delivered_unchecked(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    /* A 1-byte close payload and an invalid code are the caller's call. */
    put_str(&s, FIN | WS_OP_CLOSE, "\x03");
    put_frame(&s, FIN | WS_OP_CLOSE, "\x03\xed", 2);   /* 1005 */
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 2);
    expect_ctrl(&r, 0, WS_OP_CLOSE, "\x03", 1);
    expect_ctrl(&r, 1, WS_OP_CLOSE, "\x03\xed", 2);
    rec_free(&r);
    free(s.b);
}

static void test_control_max_125(void **state) {
    (void)state;
    uint8_t pl[125];
    stream s = {0};
    recorder r = {0};
    for (size_t i = 0; i < sizeof pl; i++) pl[i] = (uint8_t)(i * 7);
    put_frame(&s, FIN | WS_OP_PING, pl, sizeof pl);
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 1);
    expect_ctrl(&r, 0, WS_OP_PING, pl, sizeof pl);
    rec_free(&r);
    free(s.b);
}

static void test_length_16bit(void **state) {
    (void)state;
    uint8_t pl[300];
    stream s = {0};
    recorder r = {0};
    for (size_t i = 0; i < sizeof pl; i++) pl[i] = (uint8_t)(i ^ 0x5a);
    put_frame(&s, FIN | WS_OP_BINARY, pl, sizeof pl);
    assert_int_equal(s.b[1], 0x80 | 126);
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 3);
    expect_data(&r, 1, pl, sizeof pl);
    assert_int_equal(r.data_calls, 1);
    rec_free(&r);
    free(s.b);
}

static void test_length_64bit_70000(void **state) {
    (void)state;
    size_t n = 70000;
    uint8_t *pl = malloc(n);
    stream s = {0};
    recorder r0 = {0};
    assert_non_null(pl);
    for (size_t i = 0; i < n; i++) pl[i] = (uint8_t)(i * 31 + (i >> 8));
    put_frame(&s, FIN | WS_OP_BINARY, pl, n);
    put_str(&s, FIN | WS_OP_TEXT, "after");
    assert_int_equal(s.b[1], 0x80 | 127);

    assert_int_equal(run_all(SERVER, &s, &r0), 0);
    assert_int_equal(r0.n, 6);
    expect_begin(&r0, 0, WS_OP_BINARY, 0);
    expect_data(&r0, 1, pl, n);
    expect_end(&r0, 2);
    expect_str(&r0, 4, "after");
    assert_int_equal(r0.data_calls, 2);

    size_t steps[] = {1, 3, 7, 4096, 65543, 69999};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        recorder r = {0};
        assert_int_equal(run_step(SERVER, &s, steps[i], &r), 0);
        assert_same(&r0, &r);
        rec_free(&r);
    }
    rec_free(&r0);
    free(pl);
    free(s.b);
}

static void test_non_minimal_length_allowed(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_frame_ex(&s, FIN | WS_OP_TEXT, "abcde", 5, MASK, LEN_16);
    put_frame_ex(&s, FIN | WS_OP_TEXT, "fgh", 3, MASK, LEN_64);
    put_frame_ex(&s, FIN | WS_OP_PING, "pi", 2, MASK, LEN_16);
    put_frame_ex(&s, FIN | WS_OP_PONG, "po", 2, MASK, LEN_64);
    put_frame_ex(&s, FIN | WS_OP_BINARY, "", 0, MASK, LEN_64);
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 10);
    expect_str(&r, 1, "abcde");
    expect_str(&r, 4, "fgh");
    expect_ctrl(&r, 6, WS_OP_PING, "pi", 2);
    expect_ctrl(&r, 7, WS_OP_PONG, "po", 2);
    expect_begin(&r, 8, WS_OP_BINARY, 0);
    expect_end(&r, 9);
    rec_free(&r);
    free(s.b);
}

static void test_many_frames_one_buffer(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    char msg[32];
    for (int i = 0; i < 200; i++) {
        snprintf(msg, sizeof msg, "message %d", i);
        put_str(&s, FIN | (i & 1 ? WS_OP_BINARY : WS_OP_TEXT), msg);
        if (i % 10 == 0) put_str(&s, FIN | WS_OP_PING, "hb");
    }
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 200 * 3 + 20);
    size_t k = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(msg, sizeof msg, "message %d", i);
        expect_begin(&r, k++, i & 1 ? WS_OP_BINARY : WS_OP_TEXT, 0);
        expect_str(&r, k++, msg);
        expect_end(&r, k++);
        if (i % 10 == 0) {
            expect_ctrl(&r, k, WS_OP_PING, "hb", 2);
            assert_true(r.ev[k++].in_place);
        }
    }
    assert_int_equal(r.data_calls, 200);
    rec_free(&r);
    free(s.b);
}

/* ------------------------------------------------------------------------ */
/* Splits and unmasking                                                     */
/* ------------------------------------------------------------------------ */

/* A stream touching every path: header forms, fragments with interleaved
 * control frames, empty frames, RSV1. */
static void build_mixed(stream *s, int with_big) {
    uint8_t big[300];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 13 + 1);
    put_str(s, FIN | WS_OP_TEXT, "Hello");
    put_str(s, RSV1 | WS_OP_TEXT, "frag1-");
    put_str(s, FIN | WS_OP_PING, "ping!");
    put_str(s, WS_OP_CONT, "");
    put_str(s, FIN | WS_OP_PONG, "");
    put_str(s, WS_OP_CONT, "middle-");
    put_frame_ex(s, FIN | WS_OP_PING, "x", 1, MASK, LEN_64);
    put_str(s, FIN | WS_OP_CONT, "end");
    put_frame(s, FIN | WS_OP_CLOSE, "\x03\xe8" "bye", 5);
    put_str(s, FIN | WS_OP_TEXT, "");
    put_frame_ex(s, FIN | WS_OP_BINARY, "0123456789abcdefghij", 20, MASK, LEN_64);
    if (with_big) {
        put_frame(s, FIN | WS_OP_BINARY, big, 200);
        put_frame(s, FIN | WS_OP_PING, big, 125);
        put_frame_ex(s, FIN | WS_OP_TEXT, big, 130, MASK, LEN_64);
    }
    put_str(s, FIN | WS_OP_BINARY, "z");
}

static void test_one_byte_at_a_time(void **state) {
    (void)state;
    stream s = {0};
    recorder r0 = {0}, r1 = {0};
    build_mixed(&s, 1);
    assert_int_equal(run_all(SERVER_DEFLATE, &s, &r0), 0);
    assert_int_equal(run_step(SERVER_DEFLATE, &s, 1, &r1), 0);
    assert_same(&r0, &r1);
    expect_begin(&r0, 0, WS_OP_TEXT, 0);
    expect_str(&r0, 1, "Hello");
    expect_begin(&r0, 3, WS_OP_TEXT, 1);
    expect_str(&r0, 4, "frag1-");
    expect_ctrl(&r0, 5, WS_OP_PING, "ping!", 5);
    rec_free(&r0);
    rec_free(&r1);
    free(s.b);
}

static void test_every_split_point(void **state) {
    (void)state;
    stream s = {0};
    recorder r0 = {0};
    build_mixed(&s, 1);
    assert_int_equal(run_all(SERVER_DEFLATE, &s, &r0), 0);
    for (size_t k = 0; k <= s.n; k++) {
        recorder r = {0};
        assert_int_equal(run_cuts(SERVER_DEFLATE, s.b, s.n, &k, 1, &r), 0);
        assert_same(&r0, &r);
        rec_free(&r);
    }
    rec_free(&r0);
    free(s.b);
}

static void test_every_pair_of_split_points(void **state) {
    (void)state;
    stream s = {0};
    recorder r0 = {0};
    build_mixed(&s, 0);
    assert_int_equal(run_all(SERVER_DEFLATE, &s, &r0), 0);
    for (size_t i = 0; i <= s.n; i++) {
        for (size_t j = i; j <= s.n; j++) {
            size_t cuts[2] = {i, j};
            recorder r = {0};
            assert_int_equal(run_cuts(SERVER_DEFLATE, s.b, s.n, cuts, 2, &r), 0);
            assert_same(&r0, &r);
            rec_free(&r);
        }
    }
    rec_free(&r0);
    free(s.b);
}

/* Payload unmasked in place at every buffer alignment, payload length and
 * split inside the payload (so the mask offset carries across reads). */
static void test_unmask_in_place_across_splits(void **state) {
    (void)state;
    uint8_t pl[200], mask[4] = {0xa1, 0x02, 0xff, 0x7c};
    for (size_t i = 0; i < sizeof pl; i++) pl[i] = (uint8_t)(i * 37 + 11);

    for (size_t len = 0; len <= 150; len += (len < 70 ? 1 : 13)) {
        stream s = {0};
        put_frame_ex(&s, FIN | WS_OP_BINARY, pl, len, mask, LEN_MIN);
        size_t hlen = s.n - len;
        for (size_t align = 0; align < 8; align++) {
            for (size_t cut = 0; cut <= len; cut += (cut < 9 ? 1 : 7)) {
                uint8_t *mem = malloc(s.n + 8);
                ws_parser p;
                recorder r = {0};
                assert_non_null(mem);
                uint8_t *buf = mem + align;
                memcpy(buf, s.b, s.n);
                ws_parser_init(&p, 1, 0, 0);
                assert_int_equal(ws_parser_feed(&p, buf, hlen + cut, &events, &r), 0);
                assert_int_equal(ws_parser_feed(&p, buf + hlen + cut,
                                                len - cut, &events, &r), 0);
                if (len) assert_memory_equal(buf + hlen, pl, len);
                assert_int_equal(r.n, len ? 3 : 2);
                if (len) expect_data(&r, 1, pl, len);
                ws_parser_free(&p);
                rec_free(&r);
                free(mem);
            }
        }
        free(s.b);
    }
}

static void test_control_in_place_or_buffered(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    ws_parser p;
    put_str(&s, FIN | WS_OP_PING, "hello");   /* 2 + 4 + 5 bytes */

    /* Whole frame in one read: pointer into the buffer, no allocation. */
    assert_int_equal(run_all(SERVER, &s, &r), 0);
    assert_int_equal(r.n, 1);
    assert_true(r.ev[0].in_place);
    rec_free(&r);

    /* Payload split: collected, then the buffer is released. */
    ws_parser_init(&p, 1, 0, 0);
    r.buf_lo = s.b;
    r.buf_hi = s.b + s.n;
    assert_int_equal(ws_parser_feed(&p, s.b, 4, &events, &r), 0);
    assert_null(p.ctrl_buf);       /* part of the header only */
    assert_int_equal(ws_parser_feed(&p, s.b + 4, 4, &events, &r), 0);
    assert_non_null(p.ctrl_buf);   /* header and 2 payload bytes */
    assert_int_equal(r.n, 0);
    assert_int_equal(ws_parser_feed(&p, s.b + 8, s.n - 8, &events, &r), 0);
    assert_null(p.ctrl_buf);
    assert_int_equal(r.n, 1);
    expect_ctrl(&r, 0, WS_OP_PING, "hello", 5);
    assert_false(r.ev[0].in_place);
    ws_parser_free(&p);
    rec_free(&r);
    free(s.b);
}

static void test_free_mid_control_frame(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    ws_parser p;
    put_str(&s, FIN | WS_OP_PING, "hello");
    ws_parser_init(&p, 1, 0, 0);
    assert_int_equal(ws_parser_feed(&p, s.b, 8, &events, &r), 0);
    assert_non_null(p.ctrl_buf);
    ws_parser_free(&p);            /* ASan reports a leak otherwise */
    assert_null(p.ctrl_buf);
    rec_free(&r);
    free(s.b);
}

/* ------------------------------------------------------------------------ */
/* Violations                                                               */
/* ------------------------------------------------------------------------ */

/* One frame with raw first byte b0, expected to fail with code and deliver
 * no events at all. */
static void expect_frame_rejected(config c, uint8_t b0, const char *pl,
                                  int code) {
    stream s = {0};
    recorder r = {0};
    put_str(&s, b0, pl);
    put_str(&s, FIN | WS_OP_TEXT, "never");
    expect_failure(c, &s, code, &r);
    assert_int_equal(r.n, 0);
    rec_free(&r);
    free(s.b);
}

static void test_unmasked_client_frame(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_frame_ex(&s, FIN | WS_OP_TEXT, "Hello", 5, NULL, LEN_MIN);
    expect_failure(SERVER, &s, WS_CLOSE_PROTOCOL, &r);
    assert_int_equal(r.n, 0);
    rec_free(&r);

    /* Also a control frame, after a valid message. */
    free(s.b);
    memset(&s, 0, sizeof s);
    put_str(&s, FIN | WS_OP_TEXT, "ok");
    put_frame_ex(&s, FIN | WS_OP_PING, "", 0, NULL, LEN_MIN);
    expect_failure(SERVER, &s, WS_CLOSE_PROTOCOL, &r);
    assert_int_equal(r.n, 3);
    rec_free(&r);
    free(s.b);
}

static void test_rsv2_set(void **state) {
    (void)state;
    expect_frame_rejected(SERVER_DEFLATE, FIN | RSV2 | WS_OP_TEXT, "a",
                          WS_CLOSE_PROTOCOL);
}

static void test_rsv3_set(void **state) {
    (void)state;
    expect_frame_rejected(SERVER_DEFLATE, FIN | RSV3 | WS_OP_BINARY, "a",
                          WS_CLOSE_PROTOCOL);
}

static void test_rsv1_without_extension(void **state) {
    (void)state;
    expect_frame_rejected(SERVER, FIN | RSV1 | WS_OP_TEXT, "a",
                          WS_CLOSE_PROTOCOL);
}

static void test_rsv1_on_continuation(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    put_str(&s, RSV1 | WS_OP_TEXT, "ab");
    put_str(&s, FIN | RSV1 | WS_OP_CONT, "cd");
    expect_failure(SERVER_DEFLATE, &s, WS_CLOSE_PROTOCOL, &r);
    assert_int_equal(r.n, 2);     /* begin + "ab", then the violation */
    expect_str(&r, 1, "ab");
    rec_free(&r);
    free(s.b);
}

static void test_rsv1_on_control(void **state) {
    (void)state;
    expect_frame_rejected(SERVER_DEFLATE, FIN | RSV1 | WS_OP_PING, "a",
                          WS_CLOSE_PROTOCOL);
    expect_frame_rejected(SERVER_DEFLATE, FIN | RSV1 | WS_OP_CLOSE, "",
                          WS_CLOSE_PROTOCOL);
}

static void test_unknown_data_opcodes(void **state) {
    (void)state;
    for (uint8_t op = 3; op <= 7; op++)
        expect_frame_rejected(SERVER, FIN | op, "a", WS_CLOSE_PROTOCOL);
}

static void test_unknown_control_opcodes(void **state) {
    (void)state;
    for (uint8_t op = 0xB; op <= 0xF; op++)
        expect_frame_rejected(SERVER, FIN | op, "", WS_CLOSE_PROTOCOL);
}

static void test_control_not_final(void **state) {
    (void)state;
    expect_frame_rejected(SERVER, WS_OP_PING, "a", WS_CLOSE_PROTOCOL);
    expect_frame_rejected(SERVER, WS_OP_CLOSE, "", WS_CLOSE_PROTOCOL);
}

static void test_control_too_long(void **state) {
    (void)state;
    uint8_t pl[126] = {0};
    stream s = {0};
    recorder r = {0};
    put_frame(&s, FIN | WS_OP_PING, pl, 126);
    expect_failure(SERVER, &s, WS_CLOSE_PROTOCOL, &r);
    assert_int_equal(r.n, 0);
    rec_free(&r);
    free(s.b);

    /* Rejected from the header alone, before any payload. */
    uint8_t hdr[] = {FIN | WS_OP_PONG, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0,
                     1, 2, 3, 4};
    assert_int_equal(run_cuts(SERVER, hdr, sizeof hdr, NULL, 0, &r),
                     WS_CLOSE_PROTOCOL);
    assert_int_equal(r.n, 0);
    rec_free(&r);
}

static void test_continuation_without_message(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    expect_frame_rejected(SERVER, FIN | WS_OP_CONT, "a", WS_CLOSE_PROTOCOL);
    expect_frame_rejected(SERVER, WS_OP_CONT, "a", WS_CLOSE_PROTOCOL);

    /* After a complete message, too. */
    put_str(&s, FIN | WS_OP_TEXT, "done");
    put_str(&s, FIN | WS_OP_CONT, "more");
    expect_failure(SERVER, &s, WS_CLOSE_PROTOCOL, &r);
    assert_int_equal(r.n, 3);
    rec_free(&r);
    free(s.b);
}

static void test_new_message_inside_fragmented(void **state) {
    (void)state;
    for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
        stream s = {0};
        recorder r = {0};
        put_str(&s, WS_OP_TEXT, "first");
        put_str(&s, FIN | WS_OP_PING, "");
        put_str(&s, (uint8_t)(FIN | op), "second");
        expect_failure(SERVER, &s, WS_CLOSE_PROTOCOL, &r);
        assert_int_equal(r.n, 3);
        rec_free(&r);
        free(s.b);
    }
}

static void test_64bit_length_top_bit(void **state) {
    (void)state;
    uint8_t f[] = {FIN | WS_OP_BINARY, 0x80 | 127,
                   0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 'a', 'b'};
    stream s = {0};
    recorder r = {0};
    put(&s, f, sizeof f);
    expect_failure(SERVER, &s, WS_CLOSE_PROTOCOL, &r);
    assert_int_equal(r.n, 0);
    rec_free(&r);
    free(s.b);
}

static void test_max_message_single_frame(void **state) {
    (void)state;
    config c = {1, 0, 100};
    stream s = {0};
    recorder r = {0};
    uint8_t pl[101] = {0};

    put_frame(&s, FIN | WS_OP_TEXT, pl, 100);     /* exactly the limit */
    assert_int_equal(run_all(c, &s, &r), 0);
    assert_int_equal(r.n, 3);
    rec_free(&r);

    put_frame(&s, FIN | WS_OP_TEXT, pl, 101);
    expect_failure(c, &s, WS_CLOSE_TOO_BIG, &r);
    assert_int_equal(r.n, 3);                     /* only the first */
    rec_free(&r);
    free(s.b);

    /* Announced by the header alone: refused before any payload. */
    uint8_t hdr[] = {FIN | WS_OP_BINARY, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0,
                     1, 2, 3, 4};
    assert_int_equal(run_cuts(c, hdr, sizeof hdr, NULL, 0, &r),
                     WS_CLOSE_TOO_BIG);
    assert_int_equal(r.n, 0);
    rec_free(&r);
}

static void test_max_message_fragments(void **state) {
    (void)state;
    config c = {1, 0, 10};
    stream s = {0};
    recorder r = {0};

    /* 4 + 6 = 10 fits; the limit is per message, control frames excluded. */
    put_str(&s, WS_OP_TEXT, "abcd");
    put_str(&s, FIN | WS_OP_PING, "0123456789abc");
    put_str(&s, FIN | WS_OP_CONT, "efghij");
    put_str(&s, FIN | WS_OP_TEXT, "0123456789");
    assert_int_equal(run_all(c, &s, &r), 0);
    assert_int_equal(r.n, 8);
    rec_free(&r);

    put_str(&s, WS_OP_TEXT, "abcd");
    put_str(&s, WS_OP_CONT, "efg");
    put_str(&s, FIN | WS_OP_CONT, "hijk");        /* 11 > 10 */
    expect_failure(c, &s, WS_CLOSE_TOO_BIG, &r);
    assert_int_equal(r.n, 8 + 2);                 /* begin, "abcdefg" */
    expect_str(&r, 9, "abcdefg");
    rec_free(&r);
    free(s.b);
}

/* ------------------------------------------------------------------------ */
/* Events that stop the parser                                              */
/* ------------------------------------------------------------------------ */

static void stop_case(int type, const stream *s, size_t expect_events) {
    recorder r = {0}, r1 = {0};
    r.stop_type = r1.stop_type = type;
    r.stop_code = r1.stop_code = 4001;
    assert_int_equal(run_all(SERVER, s, &r), 4001);
    assert_int_equal(r.n, expect_events);
    assert_int_equal(r.ev[r.n - 1].type, type);
    assert_int_equal(run_step(SERVER, s, 1, &r1), 4001);
    assert_int_equal(r1.ev[r1.n - 1].type, type);
    rec_free(&r);
    rec_free(&r1);
}

static void test_event_stops_parser(void **state) {
    (void)state;
    stream s = {0};
    put_str(&s, FIN | WS_OP_PING, "ping");
    put_str(&s, FIN | WS_OP_TEXT, "abc");
    put_str(&s, FIN | WS_OP_TEXT, "def");
    stop_case(EV_CTRL, &s, 1);
    stop_case(EV_BEGIN, &s, 2);
    stop_case(EV_DATA, &s, 3);
    stop_case(EV_END, &s, 4);
    free(s.b);
}

static void test_no_feed_after_failure(void **state) {
    (void)state;
    stream s = {0};
    recorder r = {0};
    ws_parser p;
    put_str(&s, FIN | RSV2 | WS_OP_TEXT, "x");
    put_str(&s, FIN | WS_OP_TEXT, "y");
    ws_parser_init(&p, 1, 0, 0);
    assert_int_equal(ws_parser_feed(&p, s.b, s.n, &events, &r),
                     WS_CLOSE_PROTOCOL);
    assert_true(p.failed);
    assert_non_null(p.error);
    assert_int_not_equal(ws_parser_feed(&p, s.b, s.n, &events, &r), 0);
    assert_int_equal(r.n, 0);
    ws_parser_free(&p);
    free(s.b);
}

static void test_null_callbacks(void **state) {
    (void)state;
    stream s = {0};
    ws_parser p;
    ws_parser_events none = {0};
    build_mixed(&s, 1);
    ws_parser_init(&p, 1, 1, 0);
    assert_int_equal(ws_parser_feed(&p, s.b, s.n, &none, NULL), 0);
    ws_parser_free(&p);
    free(s.b);
}

/* ------------------------------------------------------------------------ */
/* Header encoder                                                           */
/* ------------------------------------------------------------------------ */

static void test_header_forms(void **state) {
    (void)state;
    uint8_t h[WS_MAX_HEADER];
    const struct { uint64_t len; size_t hlen; } cases[] = {
        {0, 2}, {1, 2}, {125, 2}, {126, 4}, {127, 4}, {65535, 4},
        {65536, 10}, {70000, 10}, {(uint64_t)1 << 40, 10},
        {((uint64_t)1 << 63) - 1, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t len = cases[i].len;
        assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 1, 0, len, NULL),
                         cases[i].hlen);
        assert_int_equal(h[0], 0x82);
        assert_int_equal(h[1] & 0x80, 0);
        uint64_t got = h[1] & 0x7f;
        if (cases[i].hlen == 4) {
            assert_int_equal(got, 126);
            got = (uint64_t)h[2] << 8 | h[3];
        } else if (cases[i].hlen == 10) {
            assert_int_equal(got, 127);
            got = 0;
            for (int j = 0; j < 8; j++) got = got << 8 | h[2 + j];
        }
        assert_int_equal(got, len);

        assert_int_equal(ws_frame_header(h, WS_OP_TEXT, 0, 1, len, MASK),
                         cases[i].hlen + 4);
        assert_int_equal(h[0], 0x41);
        assert_int_equal(h[1] & 0x80, 0x80);
        assert_memory_equal(h + cases[i].hlen, MASK, 4);
    }
    assert_int_equal(ws_frame_header(h, WS_OP_CLOSE, 1, 0, 2, NULL), 2);
    assert_int_equal(h[0], 0x88);
    assert_int_equal(h[1], 2);
}

/* Encodes frame(s) with a mask, masks the payload, parses it back. */
static void round_trip(int opcode, int fin, int rsv1, size_t len) {
    uint8_t mask[4] = {0x12, 0x9a, 0x00, 0xee};
    uint8_t *buf = malloc(WS_MAX_HEADER + len + 2 + 4);
    uint8_t *pl = malloc(len ? len : 1);
    recorder r = {0};
    ws_parser p;
    assert_non_null(buf);
    assert_non_null(pl);
    for (size_t i = 0; i < len; i++) pl[i] = (uint8_t)(i * 101 + 7);

    size_t n = ws_frame_header(buf, opcode, fin, rsv1, len, mask);
    for (size_t i = 0; i < len; i++) buf[n + i] = pl[i] ^ mask[i & 3];
    n += len;
    if (!fin) n += ws_frame_header(buf + n, WS_OP_CONT, 1, 0, 0, mask);

    ws_parser_init(&p, 1, 1, 0);
    r.buf_lo = buf;
    r.buf_hi = buf + n;
    assert_int_equal(ws_parser_feed(&p, buf, n, &events, &r), 0);
    if (opcode & 8) {
        assert_int_equal(r.n, 1);
        expect_ctrl(&r, 0, opcode, pl, len);
    } else {
        assert_int_equal(r.n, len ? 3 : 2);
        expect_begin(&r, 0, opcode, rsv1);
        if (len) expect_data(&r, 1, pl, len);
        expect_end(&r, r.n - 1);
    }
    ws_parser_free(&p);
    rec_free(&r);
    free(pl);
    free(buf);
}

static void test_header_round_trip(void **state) {
    (void)state;
    const size_t lens[] = {0, 1, 5, 125, 126, 127, 1000, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        round_trip(WS_OP_TEXT, 1, 0, lens[i]);
        round_trip(WS_OP_BINARY, 1, 1, lens[i]);
        round_trip(WS_OP_BINARY, 0, 0, lens[i]);
        if (lens[i] <= WS_MAX_CONTROL) {
            round_trip(WS_OP_PING, 1, 0, lens[i]);
            round_trip(WS_OP_CLOSE, 1, 0, lens[i]);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Close codes                                                              */
/* ------------------------------------------------------------------------ */

static void test_close_code_valid(void **state) {
    (void)state;
    for (unsigned c = 0; c < 70000; c++) {
        int want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                   (c >= 3000 && c <= 4999);
        assert_int_equal(ws_close_code_valid(c), want);
    }
    assert_false(ws_close_code_valid(1004));
    assert_false(ws_close_code_valid(1005));
    assert_false(ws_close_code_valid(1006));
    assert_false(ws_close_code_valid(1015));
    assert_false(ws_close_code_valid(2999));
    assert_false(ws_close_code_valid(5000));
    assert_false(ws_close_code_valid(0xffffffffu));
    assert_true(ws_close_code_valid(1000));
    assert_true(ws_close_code_valid(1014));
    assert_true(ws_close_code_valid(3000));
    assert_true(ws_close_code_valid(4999));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_masked_hello),
        cmocka_unit_test(test_client_side_unmasked_ok),
        cmocka_unit_test(test_binary_and_rsv1_allowed),
        cmocka_unit_test(test_fragmented_with_interleaved_ping),
        cmocka_unit_test(test_fragmented_compressed_flag_from_first),
        cmocka_unit_test(test_empty_text_message),
        cmocka_unit_test(test_empty_final_fragment),
        cmocka_unit_test(test_empty_control_frames),
        cmocka_unit_test(test_close_payload_delivered_unchecked),
        cmocka_unit_test(test_control_max_125),
        cmocka_unit_test(test_length_16bit),
        cmocka_unit_test(test_length_64bit_70000),
        cmocka_unit_test(test_non_minimal_length_allowed),
        cmocka_unit_test(test_many_frames_one_buffer),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_every_pair_of_split_points),
        cmocka_unit_test(test_unmask_in_place_across_splits),
        cmocka_unit_test(test_control_in_place_or_buffered),
        cmocka_unit_test(test_free_mid_control_frame),
        cmocka_unit_test(test_unmasked_client_frame),
        cmocka_unit_test(test_rsv2_set),
        cmocka_unit_test(test_rsv3_set),
        cmocka_unit_test(test_rsv1_without_extension),
        cmocka_unit_test(test_rsv1_on_continuation),
        cmocka_unit_test(test_rsv1_on_control),
        cmocka_unit_test(test_unknown_data_opcodes),
        cmocka_unit_test(test_unknown_control_opcodes),
        cmocka_unit_test(test_control_not_final),
        cmocka_unit_test(test_control_too_long),
        cmocka_unit_test(test_continuation_without_message),
        cmocka_unit_test(test_new_message_inside_fragmented),
        cmocka_unit_test(test_64bit_length_top_bit),
        cmocka_unit_test(test_max_message_single_frame),
        cmocka_unit_test(test_max_message_fragments),
        cmocka_unit_test(test_event_stops_parser),
        cmocka_unit_test(test_no_feed_after_failure),
        cmocka_unit_test(test_null_callbacks),
        cmocka_unit_test(test_header_forms),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_close_code_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
