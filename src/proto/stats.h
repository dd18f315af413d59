/* stats: the client protocol's part of /metrics: clients, users, channels,
 * subscriptions, publications in, pushes out, command counts and latency
 * histograms by method, errors by code, disconnects by code. */
#ifndef PLAZA_STATS_H
#define PLAZA_STATS_H

#include "obs/metrics.h"

/* A server metrics section; ud is the hub. */
void proto_render_metrics(metrics_text *t, void *ud);

#endif
