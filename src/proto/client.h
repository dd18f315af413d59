/* client: the Centrifugo client protocol (JSON) on a WebSocket connection.
 * This is the ws_handler installed on /connection/websocket: it splits
 * newline-batched frames into commands, runs them one at a time against the
 * hub and the engine (a command waiting for the engine holds the ones
 * behind it, as the protocol's order requires), batches replies, pings,
 * and closes with the protocol's disconnect codes.
 *
 * The protocol's environment (hub, configuration, token keys, RPC methods)
 * is passed in once, proto_setup, and reached from each client through its
 * worker: there is no process-wide state. */
#ifndef PLAZA_CLIENT_H
#define PLAZA_CLIENT_H

#include "auth/token.h"
#include "hub/hub.h"
#include "net/conn.h"
#include "proto/rpc.h"

struct server;

/* What every client of a server shares. */
typedef struct proto_env {
    hub *hub;
    const config *cfg;
    const token_keys *keys;
    rpc_registry rpc;
    struct keylimit *limits;       /* per-user publish limits (publish_rate_limit) */
} proto_env;

/* Per-worker protocol counters (written by the worker, summed by
 * /metrics). */
typedef struct proto_metrics {
    metric_t publications_in;      /* publications submitted by clients */
    metric_t commands[16];         /* by command type */
    metric_t command_us[16];       /* total latency by command type */
    metric_t latency_buckets[16][12];
    metric_t errors[16];           /* by code - 100 (100..115) */
    metric_t disconnects[32];      /* close codes 3000..3015 / 3500..3515 */
    metric_t api_calls, api_errors;   /* server API methods, and those that failed */
    metric_t engine_failures;      /* commands and API calls the engine failed */
} proto_metrics;

typedef struct proto_local {
    proto_env *env;
    proto_metrics metrics;
} proto_local;

extern const ws_handler proto_client_handler;

/* The engine's map options of a map namespace (stream size and TTL with
 * their defaults, key TTL): what every map write of the namespace passes. */
engine_map_opts proto_map_opts(const ns_options *ns);

/* The hub's sink: the protocol's encoders and delivery. */
extern const hub_sink proto_hub_sink;

/* Attaches the protocol to the server's workers (after hub_new): each
 * worker's ext is its hub_local, each hub_local's ext its proto_local.
 * Installs the WebSocket handler. Returns 0 or -1. */
int proto_setup(proto_env *env, struct server *srv);
void proto_teardown(proto_env *env);

/* The protocol state of the worker that owns c. */
proto_local *proto_local_of(conn *c);

/* Closes a client from the server side (API disconnect, limits). */
void proto_client_disconnect(hub_client *cl, int code, const char *reason);

/* Server-side subscribe/unsubscribe of a live client (server API): sends
 * the subscribe/unsubscribe push. */
void proto_client_server_subscribe(hub_client *cl, const char *channel);
void proto_client_server_unsubscribe(hub_client *cl, const char *channel);

/* Server API refresh: new expiry (unix s, 0 = never) or expire now. */
void proto_client_refresh(hub_client *cl, int expired, int64_t expire_at);

#endif
