/* ctl.c: the line channel between the parent and its children (a
 * socketpair under a uv_pipe_t), and the counters they exchange on it as
 * "name=value" words. */
#include <stdlib.h>
#include <string.h>
#include "loadgen.h"

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    ctl *c = h->data;
    buf_reserve(&c->in, 65536);
    buf->base = c->in.p + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    (void)buf;                            /* it points into c->in */
    ctl *c = s->data;
    if (n < 0) {
        c->eof = 1;
        uv_read_stop(s);
        return;
    }
    c->in.len += (size_t)n;
    char *nl;
    while ((nl = memchr(c->in.p, '\n', c->in.len)) != NULL) {
        size_t len = (size_t)(nl - c->in.p);
        char *line = malloc(len + 1);
        if (!line) die("out of memory");
        memcpy(line, c->in.p, len);
        line[len] = 0;
        buf_consume(&c->in, len + 1);
        c->on_line(c, line);              /* takes ownership of line */
    }
}

void ctl_open(ctl *c, uv_loop_t *loop, int fd, void (*on_line)(ctl *, char *)) {
    memset(&c->in, 0, sizeof(c->in));
    c->reply = NULL;
    c->eof = 0;
    c->on_line = on_line;
    uv_pipe_init(loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_pipe_open(&c->pipe, fd)) die("uv_pipe_open failed");
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

void ctl_send(ctl *c, const char *line, size_t n) {
    stream_send((uv_stream_t *)&c->pipe, line, n);
}

/* ---- counters ------------------------------------------------------------ */

void counters_encode(const lg_counters *c, lgbuf *out) {
#define LG_ENC(n) buf_printf(out, " " #n "=%lld", (long long)c->n);
    LG_COUNTERS(LG_ENC)
#undef LG_ENC
}

static void add_named(lg_counters *c, const char *name, size_t len, long long v) {
#define LG_DEC(n)                                                          \
    if (len == sizeof(#n) - 1 && memcmp(name, #n, len) == 0) { c->n += v; return; }
    LG_COUNTERS(LG_DEC)
#undef LG_DEC
}

void counters_decode_add(lg_counters *c, const char *line) {
    const char *p = line;
    while (*p) {
        while (*p == ' ') p++;
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ' ') eq++;
        if (*eq == '=') add_named(c, p, (size_t)(eq - p), strtoll(eq + 1, NULL, 10));
        while (*p && *p != ' ') p++;
    }
}

void counters_add(lg_counters *into, const lg_counters *from) {
#define LG_ADD(n) into->n += from->n;
    LG_COUNTERS(LG_ADD)
#undef LG_ADD
}
