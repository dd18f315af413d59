/* worker: one event-loop thread. It owns its listener (SO_REUSEPORT, so the
 * kernel spreads new connections over the workers), its connections, a
 * timing wheel for their deadlines, a read buffer shared by all of them, a
 * flush list and a task inbox through which other threads hand it work
 * (fan-out, shutdown). Nothing on a connection's path takes a lock. */
#ifndef PLAZA_WORKER_H
#define PLAZA_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>
#include "core/inbox.h"
#include "net/conn.h"
#include "net/timer_wheel.h"
#include "obs/metrics.h"

struct server;
struct send_ring;

#define WORKER_READ_BUF (64 * 1024)

typedef struct worker {
    int id;
    struct server *srv;
    uv_loop_t loop;
    uv_thread_t thread;
    inbox ib;                    /* tasks from other threads, deferred answers */
    task shutdown_task, stop_task;
    atomic_int shutdown_posted, stop_posted;
    uv_check_t flusher;
    uv_timer_t ticker;
    uv_tcp_t listener;
    int listening;
    size_t nconns;               /* open connections (not yet aborted) */
    conn *flush_list;
    struct send_ring *sends;     /* io_uring batch of the flush, or NULL */
    timer_wheel wheel;
    uint64_t last_tick_ms;
    uint64_t lag_window_start;
    int stopping;                /* graceful shutdown in progress */
    int destroying;              /* worker_destroy runs the loop one last time */
    net_metrics metrics;
    void *ext;                   /* upper layer's per-worker state (hub) */
    uint8_t read_buf[WORKER_READ_BUF];
    uint8_t tls_buf[WORKER_READ_BUF];
} worker;

/* Creates the loop and its handles and binds the listener to fd. */
int worker_init(worker *w, struct server *srv, int id, int listen_fd);
void worker_join(worker *w);
void worker_destroy(worker *w);

/* Loop thread only. */
void worker_add_conn(worker *w, conn *c);
void worker_remove_conn(worker *w, conn *c);
/* Calls fn for each connection of the loop, closing ones included (fn
 * checks c->closed). There is no list: every TCP handle on a worker's loop
 * but its listener is a connection's, and libuv's handle queue is walked,
 * which keeps two pointers out of every connection. fn may close c. */
void worker_each_conn(worker *w, void (*fn)(conn *c, void *arg), void *arg);
void worker_want_flush(worker *w, conn *c);

/* From any thread: begin graceful shutdown / stop the loop now. */
void worker_shutdown(worker *w);
void worker_stop(worker *w);

#endif
