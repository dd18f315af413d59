/* metrics: counters and gauges kept per worker thread, summed when /metrics
 * is scraped. Only the owning worker writes its counters (plain relaxed
 * load+store, no lock and no atomic read-modify-write on the hot path);
 * the scraper reads them with relaxed loads. */
#ifndef PLAZA_METRICS_H
#define PLAZA_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef _Atomic uint64_t metric_t;

#define METRIC_ADD(m, n) \
    atomic_store_explicit(&(m), atomic_load_explicit(&(m), memory_order_relaxed) + (uint64_t)(n), memory_order_relaxed)
#define METRIC_SUB(m, n) METRIC_ADD(m, -(uint64_t)(n))
#define METRIC_SET(m, v) atomic_store_explicit(&(m), (uint64_t)(v), memory_order_relaxed)
#define METRIC_GET(m) atomic_load_explicit(&(m), memory_order_relaxed)

#define METRICS_CLOSE_MIN 1000
#define METRICS_CLOSE_MAX 4999

/* Connection states shown as a gauge. */
enum { MSTATE_HTTP = 0, MSTATE_WS, MSTATE_CLOSING, MSTATE_COUNT };

typedef struct net_metrics {
    metric_t conns[MSTATE_COUNT];        /* gauge: connections per state */
    metric_t accepted;                   /* connections accepted */
    metric_t refused;                    /* over max_connections */
    metric_t bytes_in, bytes_out;
    metric_t frames_in, frames_out;
    metric_t messages_in, messages_out;
    metric_t http_requests;
    metric_t http_errors;                /* 4xx/5xx we produced from bad input */
    metric_t handshakes_ok, handshakes_failed;
    metric_t slow_consumers;             /* disconnected for unsent bytes */
    metric_t idle_timeouts;              /* closed for not answering pings */
    metric_t tls_handshake_failed;
    metric_t loop_lag_us;                /* gauge: last measured tick delay */
    metric_t loop_lag_max_us;            /* gauge: max since last scrape window */
    metric_t close_sent[METRICS_CLOSE_MAX - METRICS_CLOSE_MIN + 1];
} net_metrics;

static inline void metrics_close_sent(net_metrics *m, unsigned code) {
    if (code >= METRICS_CLOSE_MIN && code <= METRICS_CLOSE_MAX)
        METRIC_ADD(m->close_sent[code - METRICS_CLOSE_MIN], 1);
}

/* A growable text buffer for rendering. */
typedef struct metrics_text {
    char *buf;
    size_t len, cap;
    int oom;
} metrics_text;

void metrics_printf(metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Renders the sum of n workers' metrics in Prometheus text format (0.0.4). */
void metrics_render_net(metrics_text *t, net_metrics *const *per_worker,
                        int n);

#endif
