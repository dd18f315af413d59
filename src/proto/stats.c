/* stats: rendering of the per-worker counters of the hub and the protocol,
 * and of the engine's (see stats.h). */
#include "hub/hub.h"
#include "proto/client.h"
#include "proto/command.h"
#include "proto/stats.h"

static const double BOUNDS_S[11] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
                                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1};

#define SUM(field) sum_of(h, offsetof(proto_metrics, field))
#define HSUM(field) hsum_of(h, offsetof(hub_metrics, field))

/* A protocol counter summed over the workers. */
static uint64_t sum_of(hub *h, size_t off) {
    uint64_t s = 0;
    for (int i = 0; i < h->nlocals; i++) {
        proto_local *pl = h->locals[i]->ext;
        if (pl) s += METRIC_GET(*(metric_t *)((char *)&pl->metrics + off));
    }
    return s;
}

/* A hub counter summed over the workers. */
static uint64_t hsum_of(hub *h, size_t off) {
    uint64_t s = 0;
    for (int i = 0; i < h->nlocals; i++)
        s += METRIC_GET(*(metric_t *)((char *)&h->locals[i]->metrics + off));
    return s;
}

static void gauge(metrics_text *t, const char *name, const char *help, uint64_t v) {
    metrics_printf(t, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
                   (unsigned long long)v);
}

static void counter(metrics_text *t, const char *name, const char *help, uint64_t v) {
    metrics_printf(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                   (unsigned long long)v);
}

static void render_commands(metrics_text *t, hub *h) {
    metrics_printf(t, "# HELP plaza_command_duration_seconds Client command latency by method.\n"
                      "# TYPE plaza_command_duration_seconds histogram\n");
    for (int c = 1; c < CMD_COUNT && c < 16; c++) {
        uint64_t n = SUM(commands[c]);
        if (!n) continue;
        const char *name = proto_cmd_name((cmd_type)c);
        uint64_t cum = 0;
        for (int b = 0; b < 12; b++) {
            cum += SUM(latency_buckets[c][b]);
            if (b < 11)
                metrics_printf(t, "plaza_command_duration_seconds_bucket{method=\"%s\",le=\"%g\"} %llu\n",
                               name, BOUNDS_S[b], (unsigned long long)cum);
        }
        metrics_printf(t, "plaza_command_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n"
                          "plaza_command_duration_seconds_sum{method=\"%s\"} %.6f\n"
                          "plaza_command_duration_seconds_count{method=\"%s\"} %llu\n",
                       name, (unsigned long long)cum, name,
                       (double)SUM(command_us[c]) / 1e6, name, (unsigned long long)n);
    }
}

static void render_codes(metrics_text *t, hub *h) {
    metrics_printf(t, "# HELP plaza_client_errors_total Error replies by code.\n"
                      "# TYPE plaza_client_errors_total counter\n");
    for (int i = 0; i < 16; i++) {
        uint64_t v = SUM(errors[i]);
        if (v) metrics_printf(t, "plaza_client_errors_total{code=\"%d\"} %llu\n", 100 + i,
                              (unsigned long long)v);
    }
    metrics_printf(t, "# HELP plaza_client_disconnects_total Disconnects by close code.\n"
                      "# TYPE plaza_client_disconnects_total counter\n");
    for (int i = 0; i < 32; i++) {
        uint64_t v = SUM(disconnects[i]);
        if (v) metrics_printf(t, "plaza_client_disconnects_total{code=\"%d\"} %llu\n",
                              i < 16 ? 3000 + i : 3500 + i - 16, (unsigned long long)v);
    }
}

static void render_engine_gauge(void *ud, const char *name, const char *help, uint64_t v) {
    gauge(ud, name, help, v);
}

static void render_hub(metrics_text *t, hub *h) {
    static const char *const reasons[HUB_RESYNC_COUNT] = {"inbox_full", "held_events", "gap"};
    metrics_printf(t, "# HELP plaza_resyncs_total Subscribers told to reconnect and recover "
                      "(close 3010), by reason.\n# TYPE plaza_resyncs_total counter\n");
    for (int r = 0; r < HUB_RESYNC_COUNT; r++)
        metrics_printf(t, "plaza_resyncs_total{reason=\"%s\"} %llu\n", reasons[r],
                       (unsigned long long)HSUM(resyncs[r]));
    uint64_t dropped = 0, queued = 0;
    for (int i = 0; i < h->nlocals; i++) {
        dropped += atomic_load_explicit(&h->locals[i]->events_dropped, memory_order_relaxed);
        queued += inbox_queued(h->locals[i]->ib);
    }
    counter(t, "plaza_events_refused_total",
            "Events a full worker inbox refused (their subscribers resync).", dropped);
    gauge(t, "plaza_inbox_queued", "Tasks waiting in the workers' inboxes.", queued);
    metrics_printf(t, "# HELP plaza_engine_errors_total Engine operations that failed, by operation.\n"
                      "# TYPE plaza_engine_errors_total counter\n");
    for (int op = 0; op < ENGINE_OP_COUNT; op++)
        metrics_printf(t, "plaza_engine_errors_total{op=\"%s\"} %llu\n", engine_op_name((engine_op)op),
                       (unsigned long long)atomic_load_explicit(&h->engine_errors[op], memory_order_relaxed));
    if (h->eng && h->eng->ops->gauges) h->eng->ops->gauges(h->eng, render_engine_gauge, t);
}

void proto_render_metrics(metrics_text *t, void *ud) {
    hub *h = ud;
    int clients, users, channels;
    hub_counts(h, &clients, &users, &channels);
    gauge(t, "plaza_clients", "Connected (authenticated) clients.", (uint64_t)clients);
    gauge(t, "plaza_users", "Distinct users connected.", (uint64_t)users);
    gauge(t, "plaza_channels", "Channels with at least one subscriber.", (uint64_t)channels);
    gauge(t, "plaza_subscriptions", "Subscriptions on this node.", HSUM(subscriptions));
    counter(t, "plaza_client_publications_total", "Publications submitted by clients.", SUM(publications_in));
    counter(t, "plaza_publications_total", "Publications fanned out (clients and server API).",
            atomic_load_explicit(&h->publications, memory_order_relaxed));
    counter(t, "plaza_pushes_total", "Pushes queued to subscribers (pub, join, leave).", HSUM(pushes_out));
    counter(t, "plaza_api_calls_total", "Server API methods called (batch items included).", SUM(api_calls));
    counter(t, "plaza_api_errors_total", "Server API methods that answered an error.", SUM(api_errors));
    counter(t, "plaza_engine_failures_total",
            "Client commands and API methods answered error 100 because the engine failed.",
            SUM(engine_failures));
    render_commands(t, h);
    render_codes(t, h);
    render_hub(t, h);
}
