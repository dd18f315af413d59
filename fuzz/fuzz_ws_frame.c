/* fuzz_ws_frame: libFuzzer target for the ws_frame parser (server side).
 *
 * The first input byte picks the configuration, the rest is the byte stream:
 *   bit 0     allow_rsv1
 *   bits 1-2  split pattern: 0 = alternating 1 and 13 bytes, 1 = one byte at
 *             a time, 2 = fixed chunks of (param + 2), 3 = pseudo-random
 *             chunks of 1 .. 2^(param+1)
 *   bits 3-5  param
 *   bit 6     max_message = 64 (else unlimited)
 *   bit 7     an event handler stops the parser at the (param + 2)th
 *             non-data event
 *
 * The stream is parsed twice, split as above and all at once; callbacks
 * check the event invariants, and both runs must give the same events
 * (data merged) and the same result. Any violation abort()s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws_frame.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

#define STOP_CODE 4000
#define FUZZ_MAX_MESSAGE 64

typedef struct fz_config {
    int allow_rsv1;
    int split;
    unsigned param;
    uint64_t max_message;
    unsigned stop_at;        /* 0 = never */
} fz_config;

typedef struct fz_run {
    const fz_config *cfg;
    const ws_parser *p;
    const uint8_t *lo, *hi;  /* the chunk being fed */
    int in_message;
    uint64_t msg_bytes;
    int compressed;           /* RSV1 of the current message */
    unsigned non_data_events;
    int last;                /* last event type, to merge data */
    uint64_t digest;         /* FNV-1a over the events */
    int rc;
} fz_run;

static void mix(fz_run *r, const uint8_t *d, size_t len) {
    for (size_t i = 0; i < len; i++) {
        r->digest ^= d[i];
        r->digest *= 0x100000001b3ULL;
    }
}

static void mix_event(fz_run *r, int type, int a, int b) {
    uint8_t e[3] = {(uint8_t)type, (uint8_t)a, (uint8_t)b};
    mix(r, e, sizeof e);
    r->last = type;
}

static int stop_check(fz_run *r) {
    r->non_data_events++;
    return r->non_data_events == r->cfg->stop_at ? STOP_CODE : 0;
}

static int in_chunk(const fz_run *r, const uint8_t *d, size_t len) {
    return d >= r->lo && len <= (size_t)(r->hi - d);
}

static int on_begin(void *ud, int opcode, int compressed) {
    fz_run *r = ud;
    CHECK(!r->in_message);
    CHECK(opcode == WS_OP_TEXT || opcode == WS_OP_BINARY);
    CHECK(compressed == 0 || compressed == 1);
    CHECK(!compressed || r->cfg->allow_rsv1);
    r->in_message = 1;
    r->compressed = compressed;
    r->msg_bytes = 0;
    mix_event(r, 'B', opcode, compressed);
    return stop_check(r);
}

static int on_data(void *ud, const uint8_t *d, size_t len) {
    fz_run *r = ud;
    CHECK(r->in_message);
    CHECK(in_chunk(r, d, len));            /* data frames are never copied */
    r->msg_bytes += len;
    /* compressed messages may exceed the limit on the wire by deflate's
     * worst-case expansion (the decompressed size is checked exactly) */
    uint64_t max = r->cfg->max_message;
    if (max && r->compressed) max += max / 8 + 64;
    CHECK(!max || r->msg_bytes <= max);
    if (r->last != 'D') mix_event(r, 'D', 0, 0);
    mix(r, d, len);
    return 0;
}

static int on_end(void *ud) {
    fz_run *r = ud;
    CHECK(r->in_message);
    r->in_message = 0;
    mix_event(r, 'E', 0, 0);
    return stop_check(r);
}

static int on_control(void *ud, int opcode, const uint8_t *d, size_t len) {
    fz_run *r = ud;
    CHECK(opcode == WS_OP_CLOSE || opcode == WS_OP_PING || opcode == WS_OP_PONG);
    CHECK(len <= WS_MAX_CONTROL);
    CHECK(d != NULL);
    CHECK(len == 0 || in_chunk(r, d, len) ||
          (r->p->ctrl_buf && d == r->p->ctrl_buf));
    mix_event(r, 'C', opcode, (int)len);
    mix(r, d, len);
    return stop_check(r);
}

static const ws_parser_events events = {on_begin, on_data, on_end, on_control};

/* Size of the next chunk for the split pattern. */
static size_t next_step(const fz_config *c, size_t i, uint32_t *rng) {
    switch (c->split) {
    case 0: return (i & 1) ? 13 : 1;
    case 1: return 1;
    case 2: return c->param + 2;
    default:
        *rng ^= *rng << 13;
        *rng ^= *rng >> 17;
        *rng ^= *rng << 5;
        return 1 + *rng % (2u << c->param);
    }
}

/* What must hold after every feed. */
static void check_after_feed(const ws_parser *p, const fz_run *r, int rc) {
    if (rc == 0) {
        CHECK(!p->failed);
        CHECK(p->in_message == r->in_message);
        /* An idle parser holds no heap memory. */
        CHECK(!p->ctrl_buf || (p->ctrl_len > 0 && p->remaining > 0));
        return;
    }
    CHECK(p->failed && p->error);
    CHECK(rc == WS_CLOSE_PROTOCOL || rc == WS_CLOSE_TOO_BIG ||
          rc == WS_CLOSE_INTERNAL || rc == STOP_CODE);
    CHECK(rc != WS_CLOSE_TOO_BIG || p->max_message);
}

static void run(const fz_config *c, const uint8_t *in, size_t n, int split,
                fz_run *r) {
    uint8_t *buf = malloc(n ? n : 1);
    uint32_t rng = 0x9e3779b9u ^ (uint32_t)n;
    ws_parser p;
    size_t at = 0;

    CHECK(buf != NULL);
    if (n) memcpy(buf, in, n);
    memset(r, 0, sizeof(*r));
    r->cfg = c;
    r->p = &p;
    r->digest = 0xcbf29ce484222325ULL;

    ws_parser_init(&p, 1, c->allow_rsv1, c->max_message);
    CHECK(ws_parser_feed(&p, buf, 0, &events, r) == 0);
    for (size_t i = 0; at < n && r->rc == 0; i++) {
        size_t step = split ? next_step(c, i, &rng) : n;
        if (step > n - at) step = n - at;
        r->lo = buf + at;
        r->hi = buf + at + step;
        r->rc = ws_parser_feed(&p, buf + at, step, &events, r);
        check_after_feed(&p, r, r->rc);
        at += step;
    }
    if (r->rc) CHECK(ws_parser_feed(&p, buf, n, &events, r) != 0);
    ws_parser_free(&p);
    CHECK(p.ctrl_buf == NULL);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_config c;
    fz_run split, whole;

    if (size < 1) return 0;
    c.allow_rsv1 = data[0] & 1;
    c.split = (data[0] >> 1) & 3;
    c.param = (data[0] >> 3) & 7;
    c.max_message = (data[0] & 0x40) ? FUZZ_MAX_MESSAGE : 0;
    c.stop_at = (data[0] & 0x80) ? c.param + 2 : 0;

    run(&c, data + 1, size - 1, 1, &split);
    run(&c, data + 1, size - 1, 0, &whole);
    CHECK(split.rc == whole.rc);
    CHECK(split.digest == whole.digest);
    CHECK(split.non_data_events == whole.non_data_events);
    CHECK(split.in_message == whole.in_message);
    return 0;
}
