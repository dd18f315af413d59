/* util.c: growable buffers, clocks, messages, stream writes and loop
 * helpers shared by the generator's parts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "loadgen.h"

const char *lg_who = "loadgen";

void buf_reserve(lgbuf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) die("out of memory");
    b->p = p;
    b->cap = cap;
}

void buf_add(lgbuf *b, const void *data, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void buf_printf(lgbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_free(lgbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void buf_consume(lgbuf *b, size_t n) {
    if (n >= b->len) { b->len = 0; return; }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", lg_who);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", lg_who);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

typedef struct owned_write { uv_write_t w; char *data; } owned_write;

static void on_owned_write(uv_write_t *w, int status) {
    (void)status;
    owned_write *ow = (owned_write *)w;
    free(ow->data);
    free(ow);
}

void stream_send_owned(uv_stream_t *s, char *data, size_t n) {
    owned_write *ow = malloc(sizeof(*ow));
    if (!ow) die("out of memory");
    ow->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)n);
    if (uv_is_closing((uv_handle_t *)s) || uv_write(&ow->w, s, &b, 1, on_owned_write)) {
        free(data);
        free(ow);
    }
}

void stream_send(uv_stream_t *s, const void *data, size_t n) {
    char *copy = malloc(n ? n : 1);
    if (!copy) die("out of memory");
    memcpy(copy, data, n);
    stream_send_owned(s, copy, n);
}

int run_until(uv_loop_t *loop, int (*done)(void *), void *arg, uint64_t timeout_ms) {
    uint64_t end = now_ns() + timeout_ms * 1000000u;
    while (!done(arg) && now_ns() < end) uv_run(loop, UV_RUN_ONCE);
    return done(arg);
}

static int never(void *arg) {
    (void)arg;
    return 0;
}

void run_for(uv_loop_t *loop, uint64_t ms) { run_until(loop, never, NULL, ms); }
