/* worker: an event-loop thread and what it owns (see worker.h): the
 * listener, the connection list, the flush list drained once per loop turn,
 * the timing wheel ticked by one libuv timer, and the inbox. Deferred
 * answers run in the check phase, just before the flush, so a reply made
 * from an engine answer leaves in the same loop turn. */
#include <stdlib.h>
#include <string.h>
#include "net/worker.h"
#include "net/send_ring.h"
#include "net/server.h"
#include "obs/log.h"

#define TICK_MS WHEEL_TICK_MS
#define LAG_WINDOW_MS 10000
#define SEND_RING_DEPTH 256    /* sends per io_uring_enter() */

static void on_connection(uv_stream_t *listener, int status) {
    worker *w = listener->data;
    if (status < 0) {
        log_warn("worker %d: accept: %s", w->id, uv_strerror(status));
        return;
    }
    conn_accept(w, listener);
}

/* After the I/O phase: one write per connection that got data this turn,
 * all of them in one system call when the send ring is there. */
static void on_check(uv_check_t *h) {
    worker *w = h->data;
    inbox_run_deferred(&w->ib);
    conn_flush_list(w, w->sends);
    if (w->sends && send_ring_broken(w->sends)) {
        log_warn("worker %d: io_uring failed; writing one socket at a time",
                 w->id);
        send_ring_free(w->sends);
        w->sends = NULL;
    }
}

static void fire_deadline(wheel_node *n, void *ud) {
    (void)ud;
    conn *c = (conn *)((char *)n - offsetof(conn, deadline));
    conn_on_deadline(c);
}

static void measure_lag(worker *w, uint64_t now) {
    uint64_t expected = w->last_tick_ms + TICK_MS;
    uint64_t lag_us = now > expected ? (now - expected) * 1000 : 0;
    METRIC_SET(w->metrics.loop_lag_us, lag_us);
    if (now - w->lag_window_start > LAG_WINDOW_MS) {
        w->lag_window_start = now;
        METRIC_SET(w->metrics.loop_lag_max_us, lag_us);
    } else if (lag_us > METRIC_GET(w->metrics.loop_lag_max_us)) {
        METRIC_SET(w->metrics.loop_lag_max_us, lag_us);
    }
    w->last_tick_ms = now;
}

static void on_tick(uv_timer_t *t) {
    worker *w = t->data;
    uv_update_time(&w->loop);
    uint64_t now = uv_now(&w->loop);
    measure_lag(w, now);
    wheel_advance(&w->wheel, now, fire_deadline, w);
}

int worker_init(worker *w, server *srv, int id, int listen_fd) {
    memset(w, 0, offsetof(worker, read_buf));
    w->id = id;
    w->srv = srv;
    int rc = uv_loop_init(&w->loop);
    if (rc) return rc;
    w->loop.data = w;
    if ((rc = inbox_init(&w->ib, &w->loop)) != 0) return rc;
    if (srv->cfg->io_uring) {
        w->sends = send_ring_new(SEND_RING_DEPTH);
        if (!w->sends && id == 0)
            log_warn("io_uring unavailable; writing one socket at a time");
    }
    uv_check_init(&w->loop, &w->flusher);
    w->flusher.data = w;
    uv_check_start(&w->flusher, on_check);
    uv_timer_init(&w->loop, &w->ticker);
    w->ticker.data = w;
    wheel_init(&w->wheel, uv_now(&w->loop));
    w->last_tick_ms = w->lag_window_start = uv_now(&w->loop);
    uv_timer_start(&w->ticker, on_tick, TICK_MS, TICK_MS);
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if ((rc = uv_tcp_open(&w->listener, listen_fd)) != 0) return rc;
    if ((rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection)) != 0)
        return rc;
    w->listening = 1;
    return 0;
}

void worker_join(worker *w) { uv_thread_join(&w->thread); }

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void close_all_handles(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
}

static void abort_conn(conn *c, void *arg) {
    (void)arg;
    conn_abort(c);
}

void worker_destroy(worker *w) {
    /* Connections still open here were cut by the shutdown timeout. (Not
     * "stopping" any more: the last removal must not stop the loop that
     * runs their close callbacks below.) */
    w->stopping = 0;
    w->destroying = 1;
    inbox_set_owner(&w->ib);     /* this thread runs the loop from now on */
    worker_each_conn(w, abort_conn, NULL);
    inbox_run_all(&w->ib);       /* tasks posted during shutdown own references */
    inbox_close(&w->ib);
    uv_walk(&w->loop, close_all_handles, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        log_warn("worker %d: loop had handles left at exit", w->id);
    inbox_destroy(&w->ib);       /* runs what the close callbacks posted */
    send_ring_free(w->sends);
    w->sends = NULL;
}

void worker_add_conn(worker *w, conn *c) {
    (void)c;
    w->nconns++;
}

void worker_remove_conn(worker *w, conn *c) {
    (void)c;
    w->nconns--;
    if (w->stopping && !w->nconns) uv_stop(&w->loop);
}

typedef struct each_ctx {
    worker *w;
    void (*fn)(conn *c, void *arg);
    void *arg;
} each_ctx;

static void each_handle(uv_handle_t *h, void *arg) {
    each_ctx *e = arg;
    if (h->type != UV_TCP || h == (uv_handle_t *)&e->w->listener) return;
    e->fn(h->data, e->arg);
}

void worker_each_conn(worker *w, void (*fn)(conn *c, void *arg), void *arg) {
    each_ctx e = {w, fn, arg};
    uv_walk(&w->loop, each_handle, &e);
}

void worker_want_flush(worker *w, conn *c) {
    if (c->in_flush) return;
    c->in_flush = 1;
    c->flush_next = w->flush_list;
    w->flush_list = c;
}

static void shutdown_conn(conn *c, void *arg) {
    (void)arg;
    conn_shutdown(c);
}

/* Graceful: stop accepting, ask every connection to go away, and stop the
 * loop once the last one has closed. */
static void task_shutdown(task *t) {
    worker *w = TASK_OWNER(t, worker, shutdown_task);
    w->stopping = 1;
    if (w->listening) {
        uv_close((uv_handle_t *)&w->listener, on_handle_closed);
        w->listening = 0;
    }
    worker_each_conn(w, shutdown_conn, NULL);
    if (!w->nconns) uv_stop(&w->loop);
}

static void task_stop(task *t) {
    worker *w = TASK_OWNER(t, worker, stop_task);
    if (!w->destroying) uv_stop(&w->loop);   /* a late stop must not cut worker_destroy */
}

/* Each task node is posted at most once at a time: a second signal while
 * the first shutdown task waits would corrupt the FIFO. */
void worker_shutdown(worker *w) {
    if (atomic_exchange(&w->shutdown_posted, 1)) return;
    w->shutdown_task.run = task_shutdown;
    inbox_post(&w->ib, &w->shutdown_task);
}

void worker_stop(worker *w) {
    if (atomic_exchange(&w->stop_posted, 1)) return;
    w->stop_task.run = task_stop;
    inbox_post(&w->ib, &w->stop_task);
}
