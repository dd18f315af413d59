/* conn: one client connection on one worker loop: its socket (plain TCP or
 * TLS), its outbound queue and its deadlines. The protocol spoken on it is
 * HTTP until an upgrade makes it WebSocket (http_conn.c, ws_conn.c).
 *
 * Write path: senders append reference-counted buffers to the queue; the
 * worker flushes every connection that got data during a loop turn once,
 * after the I/O phase, with one writev of everything queued; with io_uring
 * (send_ring.c), all those writes go to the kernel in one system call. Unsent bytes
 * are counted; past the configured limit the connection is a slow consumer
 * and is closed instead of growing. An idle connection holds no buffer. */
#ifndef PLAZA_CONN_H
#define PLAZA_CONN_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/rcbuf.h"
#include "net/timer_wheel.h"
#include "net/ws_frame.h"
#include "net/utf8.h"
#include "net/ws_deflate.h"

struct worker;
struct http_reader;
struct tls_conn;
struct conn;

enum { CONN_HTTP = 0, CONN_WS };

#define QUEUE_SMALL 2   /* outbound ring slots kept inside the connection */

/* What the upper layer (echo handler, client protocol) sees of a WebSocket. */
typedef struct ws_handler {
    void (*on_open)(struct conn *c);
    void (*on_message)(struct conn *c, const uint8_t *data, size_t len,
                       int binary);
    void (*on_close)(struct conn *c);   /* the connection is going away */
    /* Optional: the handler runs its own timers (pings, expiry) on the
     * connection's deadline; without it ws_conn sends WebSocket pings. */
    void (*on_deadline)(struct conn *c);
} ws_handler;

/* WebSocket state of a connection (see ws_conn.c). */
typedef struct ws_state {
    ws_parser parser;
    utf8_state utf8;
    ws_deflate_params deflate;
    struct ws_inflater *inflater;    /* only once a compressed message came */
    uint8_t *msg;                     /* assembly buffer of the current message */
    const uint8_t *borrowed;          /* zero-copy single-chunk message */
    uint64_t ping_sent_ms;
    uint32_t msg_len, msg_cap;        /* messages are < 2 GiB (the limit's range) */
    uint32_t borrowed_len;
    uint8_t msg_opcode, msg_compressed;
    uint8_t close_sent, close_received, awaiting_pong;
} ws_state;

typedef struct conn {
    uv_tcp_t tcp;
    struct worker *w;
    struct tls_conn *tls;             /* NULL for plain TCP */
    struct conn *flush_next;          /* worker's flush list */
    wheel_node deadline;
    uint64_t last_rx_ms;
    /* outbound queue: a ring of buffers, the first partly written */
    rcbuf **q;                       /* q_small, or a heap ring while busy */
    rcbuf *q_small[QUEUE_SMALL];
    uint32_t q_head, q_count, q_cap;
    uint32_t q_off;                   /* bytes of q[q_head] already written */
    size_t out_bytes;                 /* queued, not yet written */
    uv_write_t *wreq;                 /* in-flight write, if any (conn.c) */
    size_t unsent_mark;               /* HTTP: bytes unsent at last deadline */
    /* protocol state */
    uint8_t kind;                     /* CONN_HTTP or CONN_WS */
    uint8_t mstate;                   /* metrics state (MSTATE_*) */
    uint8_t closed : 1;               /* uv_close called */
    uint8_t ending : 1;               /* close once the queue is written */
    uint8_t shut : 1;                 /* write side shut down */
    uint8_t in_flush : 1;             /* on the worker's flush list */
    uint8_t close_notified : 1;       /* handler->on_close called */
    uint8_t in_batch : 1;             /* queued bytes given to the send ring */
    uint8_t read_paused : 1;          /* the upper layer stopped reading */
    struct http_reader *http;         /* while an HTTP request is being read */
    const ws_handler *handler;        /* WebSocket only */
    ws_state *ws;                     /* WebSocket only */
    void *udata;                      /* owned by the upper layer */
} conn;

/* Created by the worker for an accepted socket. */
conn *conn_accept(struct worker *w, uv_stream_t *listener);

/* Queues b (the caller's reference is taken over). Returns 0, or -1 if the
 * connection is closing or just became a slow consumer (b released). */
int conn_send(conn *c, rcbuf *b);

/* Queues a copy of data. */
int conn_send_copy(conn *c, const void *data, size_t len);

/* Writes what is queued, then shuts the connection down gracefully. */
void conn_end(conn *c);

/* Closes the socket now; queued data is dropped. */
void conn_abort(conn *c);

/* Server shutdown: WebSocket connections get a close frame, HTTP ones end
 * after the response in progress. */
void conn_shutdown(conn *c);

/* Deadline of the connection's current state (read timeout, ping...). */
void conn_set_deadline(conn *c, uint64_t due_ms);

/* Writes what is queued now (one connection). */
void conn_flush(conn *c);

/* Called by the worker once per loop turn: writes every connection on its
 * flush list; with a send ring, the plain ones in one system call. */
struct send_ring;
void conn_flush_list(struct worker *w, struct send_ring *ring);

/* Called by the worker's wheel when the deadline passes. */
void conn_on_deadline(conn *c);

/* Changes the metrics state gauge. */
void conn_set_mstate(conn *c, int mstate);

/* Stops / restarts reading from the socket (backpressure: an upper layer
 * that cannot take more input yet). Bytes already read are still handed
 * up. */
void conn_read_pause(conn *c);
void conn_read_resume(conn *c);

/* 1 if the calling thread owns c's loop. Every operation on a connection
 * asserts it in debug builds (a connection is its worker's alone). */
int conn_on_owner(const conn *c);
#define CONN_ASSERT_OWNER(c) assert(conn_on_owner(c))

/* Writes the peer's "ip:port" into buf. */
void conn_peer(const conn *c, char *buf, size_t len);

/* now in milliseconds on the connection's loop. */
uint64_t conn_now(const conn *c);

#endif
