/* conn: a connection's socket, TLS, outbound queue and deadlines (see
 * conn.h). Protocol handling lives in http_conn.c and ws_conn.c. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif
#include "net/conn.h"
#include "net/http_conn.h"
#include "net/send_ring.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/worker.h"
#include "net/ws_conn.h"
#include "obs/log.h"

#define MAX_IOV 64
#define LINGER_MS 2000

static const char REFUSED[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";

uint64_t conn_now(const conn *c) { return uv_now(&c->w->loop); }

void conn_peer(const conn *c, char *buf, size_t len) {
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(buf, len, "%s:%d", ip, port);
}

void conn_set_mstate(conn *c, int mstate) {
    METRIC_SUB(c->w->metrics.conns[c->mstate], 1);
    METRIC_ADD(c->w->metrics.conns[mstate], 1);
    c->mstate = (uint8_t)mstate;
}

void conn_set_deadline(conn *c, uint64_t due_ms) {
    CONN_ASSERT_OWNER(c);
    if (!c->closed) wheel_schedule(&c->w->wheel, &c->deadline, due_ms);
}

/* ---- queue ---- */

static void queue_free(conn *c) {
    while (c->q_count) {
        rcbuf_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_count--;
    }
    if (c->q != c->q_small) free(c->q);
    c->q = NULL;
    c->q_cap = c->q_head = c->q_off = 0;
    c->out_bytes = 0;
}

/* The ring starts in the connection itself (QUEUE_SMALL slots) and moves
 * to the heap only while more is queued. */
static int queue_grow(conn *c) {
    if (!c->q_cap) {
        c->q = c->q_small;
        c->q_cap = QUEUE_SMALL;
        c->q_head = 0;
        return 0;
    }
    uint32_t cap = c->q_cap * 2;
    rcbuf **nq = malloc(sizeof(*nq) * cap);
    if (!nq) return -1;
    for (uint32_t i = 0; i < c->q_count; i++)
        nq[i] = c->q[(c->q_head + i) % c->q_cap];
    if (c->q != c->q_small) free(c->q);
    c->q = nq;
    c->q_cap = cap;
    c->q_head = 0;
    return 0;
}

/* Drops n written bytes from the head of the queue. */
static void queue_consume(conn *c, size_t n) {
    METRIC_ADD(c->w->metrics.bytes_out, n);
    c->out_bytes -= n;
    while (n) {
        rcbuf *b = c->q[c->q_head];
        size_t rest = b->len - c->q_off;
        if (n < rest) { c->q_off += (uint32_t)n; return; }
        n -= rest;
        rcbuf_unref(b);
        c->q_off = 0;
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_count--;
    }
    if (!c->q_count && c->q != c->q_small) queue_free(c);   /* back to the inline ring */
}

/* An asynchronous write and what it carries (kept out of the connection,
 * which would hold these bytes for nothing while idle). */
typedef struct write_req {
    uv_write_t req;
    size_t bytes;            /* submitted with it */
    rcbuf *tls_out;         /* TLS: the ciphertext being written */
} write_req;

static size_t inflight_bytes(const conn *c) {
    return c->wreq ? ((const write_req *)c->wreq)->bytes : 0;
}

/* Slow consumer: drop what is not already being written, tell the peer
 * why, and give it close_timeout to take it. */
static void conn_slow(conn *c) {
    server *srv = c->w->srv;
    METRIC_ADD(c->w->metrics.slow_consumers, 1);
    size_t keep = c->tls ? 0 : inflight_bytes(c);
    uint32_t kept = 0;
    size_t covered = 0, off = c->q_off;
    while (kept < c->q_count && covered < keep) {
        rcbuf *b = c->q[(c->q_head + kept) % c->q_cap];
        covered += b->len - off;
        off = 0;
        kept++;
    }
    while (c->q_count > kept) {
        uint32_t last = (c->q_head + c->q_count - 1) % c->q_cap;
        c->out_bytes -= c->q[last]->len - (c->q_count == 1 ? c->q_off : 0);
        rcbuf_unref(c->q[last]);
        c->q_count--;
    }
    if (!c->q_count) c->q_off = 0;
    ws_conn_close(c, srv->ws_slow_close_code, "slow consumer");
}

/* 1 if queuing len more bytes would pass the slow-consumer limit even
 * after writing what the socket takes now. */
static int over_limit(conn *c, size_t len) {
    size_t limit = (size_t)c->w->srv->cfg->ws_max_outbound_bytes;
    if (c->kind != CONN_WS || c->ws->close_sent || c->out_bytes + len <= limit)
        return 0;
    conn_flush(c);     /* the kernel may take it: only unwritable bytes count */
    return !c->closed && c->out_bytes + len > limit;
}

int conn_send(conn *c, rcbuf *b) {
    CONN_ASSERT_OWNER(c);
    if (c->closed || c->shut || c->ending) { rcbuf_unref(b); return -1; }
    if (over_limit(c, b->len)) {
        rcbuf_unref(b);
        conn_slow(c);
        return -1;
    }
    if (c->closed) { rcbuf_unref(b); return -1; }
    if (c->q_count == c->q_cap && queue_grow(c) != 0) {
        rcbuf_unref(b);
        conn_abort(c);
        return -1;
    }
    c->q[(c->q_head + c->q_count) % c->q_cap] = b;
    c->q_count++;
    c->out_bytes += b->len;
    worker_want_flush(c->w, c);
    return 0;
}

int conn_send_copy(conn *c, const void *data, size_t len) {
    rcbuf *b = rcbuf_copy(data, len);
    if (!b) { conn_abort(c); return -1; }
    return conn_send(c, b);
}

/* ---- writing ---- */

static void finish_end(conn *c);
static void flush_plain(conn *c);

static void on_write_done(uv_write_t *req, int status) {
    conn *c = req->data;
    write_req *wr = (write_req *)req;
    size_t bytes = wr->bytes;
    rcbuf *tls_out = wr->tls_out;
    free(wr);
    c->wreq = NULL;
    if (c->tls) {
        METRIC_ADD(c->w->metrics.bytes_out, bytes);
        rcbuf_unref(tls_out);
    } else if (status == 0) {
        queue_consume(c, bytes);
    }
    if (c->closed) return;
    if (status < 0) { conn_abort(c); return; }
    conn_flush(c);
}

/* tls_out (TLS only) is taken over, also on failure. */
static int submit_write(conn *c, uv_buf_t *bufs, unsigned n, size_t bytes,
                        rcbuf *tls_out) {
    write_req *wr = malloc(sizeof(*wr));
    if (!wr) { rcbuf_unref(tls_out); return -1; }
    wr->req.data = c;
    wr->bytes = bytes;
    wr->tls_out = tls_out;
    c->wreq = &wr->req;
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, bufs, n, on_write_done)) {
        free(wr);
        c->wreq = NULL;
        rcbuf_unref(tls_out);
        return -1;
    }
    return 0;
}

/* Gathers up to MAX_IOV queued buffers; returns the count and total. */
static unsigned gather(conn *c, uv_buf_t *bufs, size_t *total) {
    unsigned n = 0;
    *total = 0;
    for (uint32_t i = 0; i < c->q_count && n < MAX_IOV; i++) {
        rcbuf *b = c->q[(c->q_head + i) % c->q_cap];
        uint32_t off = i == 0 ? c->q_off : 0;
        bufs[n] = uv_buf_init((char *)b->data + off, b->len - off);
        *total += b->len - off;
        n++;
    }
    return n;
}

/* What is left after a write of r of total bytes: the rest of a partial
 * write waits for the socket (libuv), more than MAX_IOV buffers get another
 * write, an ending connection shuts down once empty. */
static void after_write(conn *c, size_t r, size_t total) {
    queue_consume(c, r);
    if (r < total) {
        uv_buf_t bufs[MAX_IOV];
        unsigned n = gather(c, bufs, &total);
        if (submit_write(c, bufs, n, total, NULL) != 0) conn_abort(c);
        return;
    }
    if (c->q_count) flush_plain(c);
    else if (c->ending) finish_end(c);
}

static void flush_plain(conn *c) {
    uv_buf_t bufs[MAX_IOV];
    size_t total;
    unsigned n = gather(c, bufs, &total);
    if (!n) {
        if (c->ending) finish_end(c);
        return;
    }
    int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (r == UV_EAGAIN) r = 0;
    if (r < 0) { conn_abort(c); return; }
    after_write(c, (size_t)r, total);
}

static void flush_tls(conn *c) {
    while (c->q_count) {
        rcbuf *b = c->q[c->q_head];
        if (tls_conn_write(c->tls, b->data + c->q_off, b->len - c->q_off)) {
            conn_abort(c);
            return;
        }
        c->out_bytes -= b->len - c->q_off;
        rcbuf_unref(b);
        c->q_off = 0;
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_count--;
    }
    rcbuf *out = tls_conn_take_output(c->tls);
    if (!out) {
        if (c->ending) finish_end(c);
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)out->data, out->len);
    if (submit_write(c, &buf, 1, out->len, out) != 0) conn_abort(c);
}

void conn_flush(conn *c) {
    CONN_ASSERT_OWNER(c);
    if (c->closed || c->wreq || c->shut || c->in_batch) return;
    if (c->tls) flush_tls(c);
    else flush_plain(c);
}

/* ---- flushing a loop turn's connections together ---- */

static void on_batch_sent(void *ud, int res, size_t len) {
    conn *c = ud;
    c->in_batch = 0;
    if (c->closed) return;
    if (res == -ECANCELED) { conn_flush(c); return; }   /* ring failed: unsent */
    if (res == -EAGAIN) res = 0;
    if (res < 0) { conn_abort(c); return; }
    after_write(c, (size_t)res, len);
}

/* A plain connection with bytes queued and no write in flight: its
 * send can join the batch. */
static int batchable(conn *c) {
    return !c->closed && !c->wreq && !c->shut && !c->tls && !c->in_batch &&
           c->q_count;
}

static void batch_add(send_ring *ring, conn *c) {
    uv_buf_t bufs[MAX_IOV];
    size_t total;
    unsigned n = gather(c, bufs, &total);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) { conn_flush(c); return; }
    /* uv_buf_t is laid out as struct iovec on Unix (uv-unix.h). */
    const struct iovec *iov = (const struct iovec *)bufs;
    if (send_ring_add(ring, fd, iov, n, c) != 0) {
        send_ring_submit(ring, on_batch_sent);       /* full: send these first */
        if (send_ring_add(ring, fd, iov, n, c) != 0) { conn_flush(c); return; }
    }
    c->in_batch = 1;   /* its bytes are the kernel's until the completion */
}

void conn_flush_list(worker *w, send_ring *ring) {
    while (w->flush_list) {
        conn *c = w->flush_list;
        w->flush_list = c->flush_next;
        c->flush_next = NULL;
        c->in_flush = 0;
        if (ring && batchable(c)) batch_add(ring, c);
        else conn_flush(c);
    }
    if (ring && send_ring_pending(ring)) send_ring_submit(ring, on_batch_sent);
}

/* ---- ending and closing ---- */

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    free(req);
}

/* The queue is written: send FIN and wait (briefly) for the peer's. */
static void finish_end(conn *c) {
    uv_shutdown_t *req = malloc(sizeof(*req));
    c->shut = 1;
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
        free(req);
        conn_abort(c);
        return;
    }
    conn_set_deadline(c, conn_now(c) + LINGER_MS);
}

void conn_end(conn *c) {
    CONN_ASSERT_OWNER(c);
    if (c->closed || c->ending) return;
    c->ending = 1;
    conn_set_deadline(c, conn_now(c) + LINGER_MS);
    worker_want_flush(c->w, c);
}

static void remove_from_flush_list(conn *c) {
    conn **p = &c->w->flush_list;
    while (*p && *p != c) p = &(*p)->flush_next;
    if (*p) *p = c->flush_next;
    c->in_flush = 0;
}

/* The upper layer learns of the close here, after the loop phase in which
 * the connection was aborted: an abort in the middle of a fan-out loop or
 * a command batch never changes the lists those are walking. */
static void on_closed(uv_handle_t *h) {
    conn *c = h->data;
    if (c->kind == CONN_WS && c->handler && !c->close_notified) {
        c->close_notified = 1;
        if (c->handler->on_close) c->handler->on_close(c);
    }
    if (c->in_flush) remove_from_flush_list(c);
    queue_free(c);
    tls_conn_free(c->tls);
    http_conn_free(c);
    ws_conn_free(c);
    free(c);
}

void conn_abort(conn *c) {
    CONN_ASSERT_OWNER(c);
    if (c->closed) return;
    c->closed = 1;
    wheel_cancel(&c->deadline);
    METRIC_SUB(c->w->metrics.conns[c->mstate], 1);
    atomic_fetch_sub(&c->w->srv->nconns, 1);
    worker_remove_conn(c->w, c);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void conn_shutdown(conn *c) {
    if (c->closed) return;
    if (c->kind == CONN_WS)
        ws_conn_close(c, c->w->srv->ws_close_on_shutdown, "server shutting down");
    else
        http_conn_shutdown(c);
}

/* Bytes the peer has not acknowledged yet: queued here, in libuv and (on
 * Linux) in the kernel's send queue, which shrinks with every ACK. */
static size_t unacked(conn *c) {
    size_t n = c->out_bytes +
               uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
#ifdef SIOCOUTQ
    uv_os_fd_t fd;
    int q = 0;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
        ioctl(fd, SIOCOUTQ, &q) == 0 && q > 0)
        n += (size_t)q;
#endif
    return n;
}

/* HTTP: a response still moving to the peer is not idleness. Puts the
 * deadline off by keepalive_timeout_ms if bytes left since the last one. */
static int http_still_sending(conn *c) {
    if (c->kind != CONN_HTTP || c->shut) return 0;
    size_t left = unacked(c);
    if (!left || left == c->unsent_mark) return 0;
    c->unsent_mark = left;
    conn_set_deadline(c, conn_now(c) +
                      (uint64_t)c->w->srv->cfg->http_keepalive_timeout_ms);
    return 1;
}

void conn_on_deadline(conn *c) {
    if (c->closed) return;
    if (http_still_sending(c)) return;
    if (c->shut || c->ending) { conn_abort(c); return; }
    if (c->kind == CONN_HTTP) http_conn_on_deadline(c);
    else ws_conn_on_deadline(c);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    conn *c = h->data;
    buf->base = (char *)c->w->read_buf;
    buf->len = sizeof(c->w->read_buf);
}

/* Plaintext in: hand it to the protocol. Returns 1 to stop. */
static int dispatch(void *ud, uint8_t *data, size_t len) {
    conn *c = ud;
    if (c->shut || c->ending) return c->closed;   /* draining */
    if (c->kind == CONN_HTTP) http_conn_on_data(c, data, len);
    else ws_conn_on_data(c, data, len);
    return c->closed;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    conn *c = s->data;
    if (nread < 0) { conn_abort(c); return; }
    if (nread == 0 || c->closed) return;
    c->last_rx_ms = conn_now(c);
    METRIC_ADD(c->w->metrics.bytes_in, nread);
    if (!c->tls) { dispatch(c, (uint8_t *)buf->base, (size_t)nread); return; }
    int ready = 0;
    if (tls_conn_feed(c->tls, (uint8_t *)buf->base, (size_t)nread,
                      c->w->tls_buf, sizeof(c->w->tls_buf), dispatch, c)) {
        if (!tls_conn_ready(c->tls))
            METRIC_ADD(c->w->metrics.tls_handshake_failed, 1);
        conn_abort(c);
        return;
    }
    (void)ready;
    if (!c->closed) worker_want_flush(c->w, c);   /* handshake records */
}

int conn_on_owner(const conn *c) { return inbox_on_owner(&c->w->ib); }

void conn_read_pause(conn *c) {
    if (c->closed || c->read_paused) return;
    c->read_paused = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

void conn_read_resume(conn *c) {
    if (c->closed || !c->read_paused) return;
    c->read_paused = 0;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- accepting ---- */

static void refuse(conn *c) {
    METRIC_ADD(c->w->metrics.refused, 1);
    conn_send_copy(c, REFUSED, sizeof(REFUSED) - 1);
    conn_end(c);
}

conn *conn_accept(worker *w, uv_stream_t *listener) {
    server *srv = w->srv;
    conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closed = 1;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int n = atomic_fetch_add(&srv->nconns, 1) + 1;
    worker_add_conn(w, c);
    METRIC_ADD(w->metrics.accepted, 1);
    METRIC_ADD(w->metrics.conns[MSTATE_HTTP], 1);
    c->mstate = MSTATE_HTTP;
    c->last_rx_ms = conn_now(c);
    if (srv->tls && !(c->tls = tls_conn_new(srv->tls))) {
        conn_abort(c);
        return NULL;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (srv->cfg->max_connections && n > srv->cfg->max_connections && !c->tls) {
        refuse(c);
        return c;
    }
    if (srv->cfg->max_connections && n > srv->cfg->max_connections) {
        conn_abort(c);
        return NULL;
    }
    conn_set_deadline(c, c->last_rx_ms + (uint64_t)srv->cfg->http_read_timeout_ms);
    return c;
}
