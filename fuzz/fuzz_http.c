/* fuzz_http.c: libFuzzer target for net/http_reader.c. The first input byte
 * picks how the rest is cut into network reads; each read is fed the way a
 * connection does (unconsumed bytes are fed again, http_reader_next after
 * each request). Every request is checked for the reader's invariants, and
 * the results must not depend on how the input was cut: the same stream fed
 * in one piece has to produce the same requests and the same error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_reader.h"

/* Small limits, so that fuzzing reaches them. */
static const http_limits fuzz_limits = {512, 8, 2048};

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static uint64_t mix(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static uint64_t mix_int(uint64_t h, uint64_t v) {
    return mix(h, &v, sizeof(v));
}

/* p[0, len] (including the NUL at p[len]) lies inside the arena. */
static void check_in_arena(const http_reader *r, const void *p, size_t len) {
    const char *c = p;
    CHECK(r->arena != NULL);
    CHECK(c >= r->arena && c + len < r->arena + r->arena_len);
}

static void check_str(const http_reader *r, const char *s, size_t len) {
    check_in_arena(r, s, len);
    CHECK(s[len] == '\0' && strlen(s) == len);
}

static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void check_request(const http_reader *r) {
    const http_request *q = &r->req;
    CHECK(q->method != NULL && q->method[0] != '\0');
    check_str(r, q->target, q->target_len);
    check_str(r, q->path, q->path_len);
    CHECK(q->path_len <= q->target_len);
    CHECK(memcmp(q->path, q->target, q->path_len) == 0);
    CHECK(q->query[0] == '\0' || (q->query >= r->arena &&
                                  q->query < r->arena + r->arena_len));
    CHECK(q->version_major == 1 && (q->version_minor == 0 || q->version_minor == 1));
    CHECK(q->nheaders >= 0 && q->nheaders <= fuzz_limits.max_headers);
    CHECK((q->headers == NULL) == (q->nheaders == 0));
    for (int i = 0; i < q->nheaders; i++) {
        const http_header *h = &q->headers[i];
        check_in_arena(r, h, sizeof(*h) - 1);
        CHECK(h->name_len > 0);
        check_str(r, h->name, h->name_len);
        check_str(r, h->value, h->value_len);
        CHECK(h->value_len == 0 || (!is_ws(h->value[0]) &&
                                    !is_ws(h->value[h->value_len - 1])));
        CHECK(strpbrk(h->value, "\r\n") == NULL);
    }
    CHECK((q->body == NULL) == (q->body_len == 0));
    CHECK(q->body_len <= fuzz_limits.max_body_bytes);
    if (q->body_len) check_in_arena(r, q->body, q->body_len - 1);
    CHECK(r->head_bytes <= fuzz_limits.max_header_bytes);
    CHECK(q->keep_alive == 0 || q->keep_alive == 1);
    CHECK(q->upgrade == 0 || q->upgrade == 1);
}

static uint64_t hash_request(uint64_t h, const http_request *q, size_t at) {
    h = mix_int(h, at);
    h = mix(h, q->method, strlen(q->method));
    h = mix(h, q->target, q->target_len + 1);
    h = mix_int(h, (uint64_t)q->nheaders);
    for (int i = 0; i < q->nheaders; i++) {
        h = mix(h, q->headers[i].name, q->headers[i].name_len + 1);
        h = mix(h, q->headers[i].value, q->headers[i].value_len + 1);
    }
    if (q->body_len) h = mix(h, q->body, q->body_len);
    h = mix_int(h, (uint64_t)(q->keep_alive * 2 + q->upgrade));
    return h;
}

static int known_status(int s) {
    return s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505;
}

/* Piece sizes cycle through two nibbles of the pattern byte; 0 = all. */
static size_t piece_size(uint8_t pattern, unsigned i) {
    if (pattern == 0) return SIZE_MAX;
    unsigned nib = (i & 1) ? pattern >> 4 : pattern & 15;
    return (size_t)nib * (i % 3 + 1) + 1;
}

/* Feeds data in pieces; returns a hash of what came out. */
static uint64_t run(const char *data, size_t n, uint8_t pattern) {
    http_reader r;
    uint64_t h = 14695981039346656037ULL;
    size_t off = 0, delivered = 0;
    unsigned piece = 0;
    int done = 0;

    http_reader_init(&r, &fuzz_limits);
    while (!done && delivered < n) {
        size_t step = piece_size(pattern, piece++);
        delivered = step >= n - delivered ? n : delivered + step;
        for (;;) {
            size_t len = delivered - off, used = SIZE_MAX;
            int rc = http_reader_feed(&r, data + off, len, &used);
            CHECK(used <= len);
            if (rc == HTTP_READ_MORE) {
                CHECK(used == len);
                off += used;
                break;
            }
            if (rc == HTTP_READ_ERROR) {
                CHECK(known_status(r.err_status) && r.err_msg != NULL);
                h = mix_int(h, (uint64_t)r.err_status);
                done = 1;
                break;
            }
            CHECK(rc == HTTP_READ_REQUEST);
            CHECK(used > 0); /* a request ends inside the feed that ends it */
            off += used;
            check_request(&r);
            CHECK(!http_reader_busy(&r));
            h = hash_request(h, &r.req, off);
            if (r.req.upgrade) {
                done = 1;
                break;
            }
            http_reader_next(&r);
            CHECK(r.arena == NULL && !http_reader_busy(&r));
        }
    }
    http_reader_free(&r);
    return mix_int(h, done);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *stream = (const char *)data + 1;
    uint64_t split = run(stream, size - 1, data[0]);
    uint64_t whole = run(stream, size - 1, 0);
    CHECK(split == whole);
    return 0;
}
