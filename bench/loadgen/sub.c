/* sub.c: the WebSocket subscribers of one process.
 *
 * A subset holds subscribers first..first+n-1 in one array. They are
 * connected as a ramp: at most `window` handshakes (TCP connect, HTTP
 * upgrade, the adapter's subscribe) are in flight, and each one that ends
 * starts the next. Source addresses go round 127.0.0.1..127.0.0.250, each
 * with its own ephemeral ports, so far more than 28k connections fit.
 *
 * Reads go into one slab per process and are parsed in place; only a
 * partial frame is copied into the subscriber's own buffer. Every payload's
 * sequence number is checked against the subscriber's last one, with a
 * 64-wide window of seen numbers that tells duplicates from late arrivals:
 *   gaps     numbers skipped (less the ones that came late),
 *   reorder  a number below the highest seen that had not been seen,
 *   dups     a number seen before. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "loadgen.h"

static char slab[256 * 1024];
static int complaints;

static void start_next(subset *ss);

/* ---- sending ------------------------------------------------------------ */

void sub_send_text(sub *s, const char *text, size_t n) {
    if (s->state == SUB_CLOSED) return;
    char *f = malloc(n + 14);
    if (!f) die("out of memory");
    size_t h;
    f[0] = (char)0x81;
    if (n < 126) { f[1] = (char)(0x80 | n); h = 2; }
    else if (n < 65536) { f[1] = (char)(0x80 | 126); f[2] = (char)(n >> 8); f[3] = (char)n; h = 4; }
    else {
        f[1] = (char)(0x80 | 127);
        for (int i = 0; i < 8; i++) f[2 + i] = (char)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    memset(f + h, 0, 4);                  /* mask key 0: the payload goes as is */
    memcpy(f + h + 4, text, n);
    stream_send_owned((uv_stream_t *)&s->tcp, f, h + 4 + n);
}

static void send_control(sub *s, int opcode, const uint8_t *data, size_t n) {
    uint8_t f[2 + 4 + 125];
    if (n > 125) n = 125;
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)(0x80 | n);
    memset(f + 2, 0, 4);
    memcpy(f + 6, data, n);
    stream_send((uv_stream_t *)&s->tcp, f, 6 + n);
}

/* ---- life cycle ------------------------------------------------------------ */

static void close_sub(sub *s) {
    if (s->state == SUB_CLOSED) return;
    s->state = SUB_CLOSED;
    if (!uv_is_closing((uv_handle_t *)&s->tcp)) uv_close((uv_handle_t *)&s->tcp, NULL);
    buf_free(&s->in);
    buf_free(&s->frag);
}

static void finish_handshake(sub *s) {
    subset *ss = s->set;
    ss->in_progress--;
    ss->done++;
    start_next(ss);
}

void sub_subscribed(sub *s) {
    if (s->state == SUB_ACTIVE || s->state == SUB_CLOSED) return;
    s->state = SUB_ACTIVE;
    s->set->c.conn_ok++;
    hist_add(&s->set->hs, now_ns() - s->t_start);
    finish_handshake(s);
}

void sub_failed(sub *s, const char *why) {
    subset *ss = s->set;
    if (s->state == SUB_CLOSED) return;
    if (complaints++ < 5) say("subscriber %d: %s", s->idx, why);
    if (s->state == SUB_ACTIVE) {
        ss->c.disconnects++;
    } else {
        if (s->state == SUB_SUBSCRIBING) ss->c.sub_fail++;
        else ss->c.conn_fail++;
        s->failed = 1;
        finish_handshake(s);
    }
    close_sub(s);
}

/* ---- receiving ----------------------------------------------------------- */

static void account_seq(sub *s, uint64_t seq) {
    lg_counters *c = &s->set->c;
    if (seq > s->last) {
        uint64_t jump = seq - s->last;
        if (jump > 1) c->gaps += (int64_t)(jump - 1);
        s->seen = jump >= 64 ? 0 : s->seen << jump;
        if (jump <= 64) s->seen |= 1ull << (jump - 1);
        s->last = seq;
    } else if (seq == s->last) {
        c->dups++;
    } else {
        uint64_t d = s->last - seq, bit = d <= 64 ? 1ull << (d - 1) : 0;
        if (bit && (s->seen & bit)) {
            c->dups++;
        } else {
            c->reorder++;
            if (bit) { s->seen |= bit; c->gaps--; }
        }
    }
}

void sub_payload(sub *s, const char *p, size_t n) {
    subset *ss = s->set;
    long ch;
    uint64_t seq, ts;
    if (payload_parse(p, n, &ch, &seq, &ts) != 0) {
        if (ss->c.bad_msg++ < 3) say("subscriber %d: unreadable message %.*s", s->idx, (int)(n > 120 ? 120 : n), p);
        return;
    }
    if (ch != s->chan) { ss->c.misrouted++; return; }
    ss->c.delivered++;
    ss->c.bytes += (int64_t)n;
    hist_add(&ss->lat, ss->now > ts ? ss->now - ts : 0);
    account_seq(s, seq);
}

void sub_measured(sub *s, uint64_t seq, uint64_t lat_ns, size_t bytes) {
    subset *ss = s->set;
    ss->c.delivered++;
    ss->c.bytes += (int64_t)bytes;
    hist_add(&ss->lat, lat_ns);
    account_seq(s, seq);
}

void sub_pixels(sub *s, size_t n, size_t bytes) {
    subset *ss = s->set;
    ss->c.delivered += (int64_t)n;
    ss->c.bytes += (int64_t)bytes;
    s->last += n;                /* what the tail check compares with the writes made */
}

static void on_message(sub *s, char *p, size_t n) {
    s->set->ad->on_message(s, p, n);
}

/* One frame; returns 0, or -1 when the subscriber was closed. */
static int on_frame(sub *s, int fin, int op, char *data, size_t n) {
    switch (op) {
    case 0x9:
        s->set->c.pings++;
        send_control(s, 0xA, (const uint8_t *)data, n);
        return 0;
    case 0xA:
        return 0;
    case 0x8:
        sub_failed(s, "server closed the WebSocket");
        return -1;
    case 0x0:
    case 0x1:
    case 0x2:
        if (fin && op != 0 && !s->frag.len) { on_message(s, data, n); break; }
        buf_add(&s->frag, data, n);
        if (fin) {
            on_message(s, s->frag.p, s->frag.len);
            buf_free(&s->frag);
        }
        break;
    default:
        sub_failed(s, "unknown opcode");
        return -1;
    }
    return s->state == SUB_CLOSED ? -1 : 0;
}

/* Parses whole frames from p; returns the bytes used. */
static size_t parse_frames(sub *s, char *p, size_t n) {
    size_t off = 0;
    while (n - off >= 2 && s->state != SUB_CLOSED) {
        const uint8_t *h = (const uint8_t *)p + off;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n - off < 4) break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (n - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
            hl = 10;
        }
        int masked = h[1] & 0x80;
        if (masked) hl += 4;
        if (n - off < hl || n - off - hl < len) break;
        char *data = p + off + hl;
        if (masked)
            for (uint64_t i = 0; i < len; i++) data[i] ^= (char)h[hl - 4 + (i & 3)];
        int fin = h[0] & 0x80, op = h[0] & 0x0f;
        off += hl + (size_t)len;
        if (on_frame(s, fin, op, data, (size_t)len) < 0) return n;
    }
    return off;
}

static size_t parse_upgrade(sub *s, char *p, size_t n) {
    char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) {
        if (n > 16384) sub_failed(s, "upgrade response too long");
        return 0;
    }
    if (n < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
        char why[160];
        const char *eol = memchr(p, '\r', n);
        int len = (int)(eol ? eol - p : 0);
        snprintf(why, sizeof(why), "upgrade refused: %.*s", len > 120 ? 120 : len, p);
        sub_failed(s, why);
        return n;
    }
    s->state = SUB_SUBSCRIBING;
    s->set->ad->on_open(s);
    return (size_t)(end - p) + 4;
}

static size_t parse(sub *s, char *p, size_t n) {
    size_t off = 0;
    if (s->state == SUB_HANDSHAKE) {
        off = parse_upgrade(s, p, n);
        if (off == 0 || s->state == SUB_CLOSED) return s->state == SUB_CLOSED ? n : 0;
    }
    return off + parse_frames(s, p + off, n - off);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)h; (void)hint;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    sub *s = stream->data;
    if (nread == 0) return;
    if (nread < 0) {
        sub_failed(s, nread == UV_EOF ? "server closed the connection" : uv_strerror((int)nread));
        return;
    }
    s->set->now = now_ns();
    if (s->in.len) {                      /* a partial frame waits: append */
        buf_add(&s->in, buf->base, (size_t)nread);
        size_t used = parse(s, s->in.p, s->in.len);
        if (s->state == SUB_CLOSED) return;
        buf_consume(&s->in, used);
        if (!s->in.len && s->in.cap > 65536) buf_free(&s->in);
        return;
    }
    size_t used = parse(s, buf->base, (size_t)nread);
    if (s->state != SUB_CLOSED && used < (size_t)nread)
        buf_add(&s->in, buf->base + used, (size_t)nread - used);
}

/* ---- connecting ------------------------------------------------------------ */

static void on_connect(uv_connect_t *req, int status) {
    sub *s = req->data;
    free(req);
    if (s->state == SUB_CLOSED) return;
    if (status) { sub_failed(s, uv_strerror(status)); return; }
    subset *ss = s->set;
    char path[256], head[512];
    ss->ad->ws_path(s->chan, path, sizeof(path));
    int n = snprintf(head, sizeof(head),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path, ss->o->host, ss->o->port);
    s->state = SUB_HANDSHAKE;
    uv_tcp_nodelay(&s->tcp, 1);
    uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    stream_send((uv_stream_t *)&s->tcp, head, (size_t)n);
}

static void start_one(subset *ss, sub *s) {
    s->state = SUB_CONNECTING;
    s->t_start = now_ns();
    ss->in_progress++;
    uv_tcp_init(ss->loop, &s->tcp);
    s->tcp.data = s;
    int rc = 0;
    if (strncmp(ss->o->host, "127.", 4) == 0) {   /* spread over 127.0.0.1..250 */
        char src[32];
        struct sockaddr_in sa;
        snprintf(src, sizeof(src), "127.0.0.%d", 1 + s->idx % 250);
        uv_ip4_addr(src, 0, &sa);
        rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&sa, 0);
    }
    struct sockaddr_in dst;
    uv_ip4_addr(ss->o->host, lg_port(ss->o, s->idx), &dst);
    uv_connect_t *req = malloc(sizeof(*req));
    if (!req) die("out of memory");
    req->data = s;
    if (!rc) rc = uv_tcp_connect(req, &s->tcp, (const struct sockaddr *)&dst, on_connect);
    if (rc) { free(req); sub_failed(s, uv_strerror(rc)); }
}

static void start_next(subset *ss) {
    while (ss->in_progress < ss->window && ss->next < ss->n)
        start_one(ss, &ss->subs[ss->next++]);
}

static void on_watchdog(uv_timer_t *t) {
    subset *ss = t->data;
    uint64_t now = now_ns(), limit = (uint64_t)ss->o->connect_timeout_ms * 1000000u;
    for (int i = 0; i < ss->next; i++) {
        sub *s = &ss->subs[i];
        if (s->state >= SUB_CONNECTING && s->state <= SUB_SUBSCRIBING && now - s->t_start > limit)
            sub_failed(s, "handshake timed out");
    }
    if (ss->done == ss->n) uv_timer_stop(t);
}

void subset_init(subset *ss, uv_loop_t *loop, const lg_opts *o, const adapter *ad,
                 int first, int n, int window) {
    memset(ss, 0, sizeof(*ss));
    ss->loop = loop;
    ss->o = o;
    ss->ad = ad;
    ss->first = first;
    ss->n = n;
    ss->window = window > 0 ? window : 1;
    ss->subs = calloc((size_t)(n ? n : 1), sizeof(sub));
    if (!ss->subs) die("out of memory");
    for (int i = 0; i < n; i++) {
        ss->subs[i].set = ss;
        ss->subs[i].idx = first + i;
        ss->subs[i].chan = (first + i) % o->channels;
    }
    uv_timer_init(loop, &ss->watchdog);
    ss->watchdog.data = ss;
}

void subset_connect_all(subset *ss) {
    start_next(ss);
    uv_timer_start(&ss->watchdog, on_watchdog, 1000, 1000);
}

int subset_connected(void *arg) {
    subset *ss = arg;
    return ss->done == ss->n;
}

void subset_abort(subset *ss) {
    struct linger lg = {1, 0};
    for (int i = 0; i < ss->next; i++) {
        uv_os_fd_t fd;
        sub *s = &ss->subs[i];
        if (s->state != SUB_CLOSED && uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
}
