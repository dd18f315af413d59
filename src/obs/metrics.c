/* metrics: Prometheus text rendering of the per-worker counters (see
 * metrics.h). Each family gets its HELP and TYPE lines once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "obs/metrics.h"

void metrics_printf(metrics_text *t, const char *fmt, ...) {
    if (t->oom) return;
    for (;;) {
        va_list ap;
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) { t->oom = 1; return; }
        if ((size_t)n < room) { t->len += (size_t)n; return; }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap - t->len <= (size_t)n) cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) { t->oom = 1; return; }
        t->buf = nb;
        t->cap = cap;
    }
}

static uint64_t sum_at(net_metrics *const *w, int n, size_t off) {
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += METRIC_GET(*(metric_t *)((char *)w[i] + off));
    return s;
}

static uint64_t max_at(net_metrics *const *w, int n, size_t off) {
    uint64_t s = 0;
    for (int i = 0; i < n; i++) {
        uint64_t v = METRIC_GET(*(metric_t *)((char *)w[i] + off));
        if (v > s) s = v;
    }
    return s;
}

static void family(metrics_text *t, const char *name, const char *type,
                   const char *help) {
    metrics_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void simple(metrics_text *t, net_metrics *const *w, int n,
                   const char *name, const char *type, const char *help,
                   size_t off) {
    family(t, name, type, help);
    metrics_printf(t, "%s %llu\n", name,
                   (unsigned long long)sum_at(w, n, off));
}

#define OFF(f) offsetof(net_metrics, f)

static void render_conns(metrics_text *t, net_metrics *const *w, int n) {
    static const char *names[MSTATE_COUNT] = {"http", "websocket", "closing"};
    family(t, "plaza_connections", "gauge", "Open connections by state.");
    for (int s = 0; s < MSTATE_COUNT; s++)
        metrics_printf(t, "plaza_connections{state=\"%s\"} %llu\n", names[s],
                       (unsigned long long)sum_at(w, n, OFF(conns[s])));
}

static void render_close_codes(metrics_text *t, net_metrics *const *w, int n) {
    family(t, "plaza_ws_close_sent_total", "counter",
           "WebSocket close frames sent, by close code.");
    for (int c = METRICS_CLOSE_MIN; c <= METRICS_CLOSE_MAX; c++) {
        uint64_t v = sum_at(w, n, OFF(close_sent[c - METRICS_CLOSE_MIN]));
        if (v) metrics_printf(t, "plaza_ws_close_sent_total{code=\"%d\"} %llu\n",
                              c, (unsigned long long)v);
    }
}

static void render_lag(metrics_text *t, net_metrics *const *w, int n) {
    family(t, "plaza_loop_lag_seconds", "gauge",
           "Event-loop lag: delay of the periodic tick, worst worker.");
    metrics_printf(t, "plaza_loop_lag_seconds %.6f\n",
                   (double)max_at(w, n, OFF(loop_lag_us)) / 1e6);
    family(t, "plaza_loop_lag_max_seconds", "gauge",
           "Largest event-loop lag seen in the last 10 seconds, worst worker.");
    metrics_printf(t, "plaza_loop_lag_max_seconds %.6f\n",
                   (double)max_at(w, n, OFF(loop_lag_max_us)) / 1e6);
}

void metrics_render_net(metrics_text *t, net_metrics *const *w, int n) {
    render_conns(t, w, n);
    simple(t, w, n, "plaza_connections_accepted_total", "counter", "TCP connections accepted.", OFF(accepted));
    simple(t, w, n, "plaza_connections_refused_total", "counter", "Connections refused over max_connections.", OFF(refused));
    simple(t, w, n, "plaza_bytes_received_total", "counter", "Bytes read from sockets (with TLS: the encrypted bytes).", OFF(bytes_in));
    simple(t, w, n, "plaza_bytes_sent_total", "counter", "Bytes written to sockets (with TLS: the encrypted bytes).", OFF(bytes_out));
    simple(t, w, n, "plaza_ws_frames_received_total", "counter", "WebSocket frames received.", OFF(frames_in));
    simple(t, w, n, "plaza_ws_frames_sent_total", "counter", "WebSocket frames queued for sending.", OFF(frames_out));
    simple(t, w, n, "plaza_ws_messages_received_total", "counter", "WebSocket messages received.", OFF(messages_in));
    simple(t, w, n, "plaza_http_requests_total", "counter", "HTTP requests answered.", OFF(http_requests));
    simple(t, w, n, "plaza_http_bad_requests_total", "counter", "Requests refused as malformed or over a limit.", OFF(http_errors));
    simple(t, w, n, "plaza_ws_handshakes_ok_total", "counter", "WebSocket handshakes accepted.", OFF(handshakes_ok));
    simple(t, w, n, "plaza_ws_handshakes_failed_total", "counter", "WebSocket handshakes refused.", OFF(handshakes_failed));
    simple(t, w, n, "plaza_slow_consumer_disconnects_total", "counter", "Connections closed for too many unsent bytes.", OFF(slow_consumers));
    simple(t, w, n, "plaza_idle_timeouts_total", "counter", "Connections closed for not answering pings or timing out.", OFF(idle_timeouts));
    simple(t, w, n, "plaza_tls_handshakes_failed_total", "counter", "TLS handshakes that failed.", OFF(tls_handshake_failed));
    render_close_codes(t, w, n);
    render_lag(t, w, n);
}
