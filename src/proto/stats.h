/* stats: the realtime layers' part of /metrics: clients, users, channels,
 * subscriptions, publications, pushes, resyncs and dropped events (hub),
 * command counts and latency histograms by method, errors and disconnects
 * by code, server API calls (protocol), engine failures by operation and
 * the engine's own gauges. */
#ifndef PLAZA_STATS_H
#define PLAZA_STATS_H

#include "obs/metrics.h"

/* A server metrics section; ud is the hub (whose locals carry the
 * protocol's per-worker state). */
void proto_render_metrics(metrics_text *t, void *ud);

#endif
