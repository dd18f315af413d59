/* hub: connections <-> channels on this node. It keeps each worker's list
 * of clients and map of channel -> local subscribers, the node-wide counts
 * (clients, connections per user and per IP, subscribers per channel) that
 * limits and the server API need, and delivers what the engine
 * reports (publications, joins, leaves) to the subscribers of every worker:
 * the push is encoded once per event (by the codec the protocol layer
 * installs) and the same frame is queued on every subscriber.
 *
 * Threads: a client and its subscriptions belong to one worker and are only
 * touched on that worker's thread. The node-wide counts are behind one mutex taken on connect, disconnect, subscribe and
 * unsubscribe, never per message. Cross-worker actions (server API
 * disconnect/subscribe/...) are posted to the owning workers. */
#ifndef PLAZA_HUB_H
#define PLAZA_HUB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/config.h"
#include "core/dict.h"
#include "engine/engine.h"
#include "net/conn.h"
#include "core/rcbuf.h"
#include "net/ws_msg.h"
#include "obs/metrics.h"

struct server;
struct worker;
struct hub_local;

/* A shared event for subscribers of one channel: the encoded push frame and
 * the publication offset (0 for join/leave or channels without history). */
typedef struct hub_event {
    atomic_uint refs;
    uint8_t kind;                  /* HUB_EV_PUB, HUB_EV_JOIN, HUB_EV_LEAVE */
    uint64_t offset;
    rcbuf *pub_json;              /* publications: the Publication object (for recovery merges) */
    ws_msg *msg;                   /* the complete push frame */
    char channel[];
} hub_event;

enum { HUB_EV_PUB = 1, HUB_EV_JOIN, HUB_EV_LEAVE };

/* Close code when a subscriber's event order cannot be kept (protocol
 * disconnect 3010: the client reconnects and recovers from history). */
#define HUB_CLOSE_INSUFFICIENT_STATE 3010

typedef struct hub_client hub_client;

typedef struct hub_sub {          /* one per subscription: fields by size */
    hub_client *cl;
    const ns_options *ns;
    uint64_t offset;               /* last delivered offset (positioned) */
    char *chan_info;               /* raw JSON from the subscription token, or NULL */
    int64_t expire_at;             /* unix seconds; 0 = never */
    hub_event **pending;           /* events that arrived before going live */
    uint32_t index;                /* position in the channel's local array */
    uint32_t chan_info_len;        /* token claims are far below 4 GiB */
    uint32_t npending, cap_pending;
    char epoch[ENGINE_EPOCH_MAX + 1];
    uint8_t positioned, recoverable, join_leave, presence, live, server_side;
    char channel[];                /* the channel name (inline) */
} hub_sub;

struct hub_client {
    conn *c;
    struct hub_local *hl;
    char id[37];                   /* UUID v4 */
    uint8_t registered;
    char *user;                    /* "" = anonymous */
    char *conn_info;               /* raw JSON, or NULL */
    char *ip;                      /* only with client.connection_limit_per_ip */
    struct hub_client *prev, *next;   /* hub_local's list */
    hub_sub **subs;                /* sub_small, or a heap array */
    hub_sub *sub_small[1];
    uint16_t nsubs, cap_subs;
    uint32_t conn_info_len;        /* token claims are far below 4 GiB */
};

/* Encoders the protocol layer installs (the hub knows no JSON). */
typedef struct hub_codec {
    ws_msg *(*pub_push)(const char *channel, const engine_pub *pub);
    ws_msg *(*join_push)(const char *channel, const char *info, size_t len);
    ws_msg *(*leave_push)(const char *channel, const char *info, size_t len);
    /* ClientInfo object for presence/join/leave/publications. */
    char *(*client_info)(const hub_client *cl, const hub_sub *sub, size_t *len);
} hub_codec;

/* Per-worker hub counters (written by the worker, summed by /metrics). */
typedef struct hub_metrics {
    metric_t subscriptions;        /* gauge */
    metric_t publications_in;      /* publications submitted by this worker's clients */
    metric_t pushes_out;           /* pushes queued to subscribers */
    metric_t commands[16];         /* by command type */
    metric_t command_us[16];       /* total latency by command type */
    metric_t latency_buckets[16][12];
    metric_t errors[16];           /* by code - 100 (100..115) */
    metric_t disconnects[32];      /* close codes 3000..3015 / 3500..3515 */
} hub_metrics;

typedef struct hub_local {
    struct hub *hub;
    struct worker *w;
    dict *channels;                /* channel -> hub_chan (this worker's subscribers) */
    hub_client *clients;           /* this worker's registered clients (list) */
    size_t nclients;
    uv_timer_t presence_timer;
    hub_metrics metrics;
} hub_local;

typedef struct hub {
    struct server *srv;
    const config *cfg;
    engine *eng;
    hub_codec codec;
    hub_local **locals;            /* one per worker, index = worker id */
    int nlocals;
    uv_mutex_t lock;               /* guards the fields below */
    int nclients;                  /* registered clients, all workers */
    dict *users;                   /* user -> number of connections */
    dict *ips;                     /* ip -> number of connections */
    dict *chan_counts;             /* channel -> number of subscribers (all workers) */
    int64_t started_ms;
    _Atomic uint64_t publications;   /* every publication fanned out (client and API) */
    char node_id[37];
} hub;

/* Creates the hub on srv's workers (before server_run) with engine e. */
hub *hub_new(struct server *srv, engine *e, const hub_codec *codec);
void hub_free(hub *h);

/* The engine event callbacks (engine_events.ud = hub). */
extern const engine_events hub_engine_events_template;

hub_local *hub_local_of(conn *c);

/* Registry. Returns 0, or -1 when a limit is reached (user or IP). */
int hub_client_register(hub_client *cl);
void hub_client_unregister(hub_client *cl);

/* Creates a subscription in the channel's local list. It is not live: events
 * are held until hub_sub_go_live. Returns NULL when the per-channel client
 * limit is reached (*limited = 1) or out of memory. */
hub_sub *hub_sub_add(hub_client *cl, const char *channel,
                     const ns_options *ns, int *limited);

/* Makes a subscription live at offset (positioned) and delivers, in order,
 * the held events it has not seen. */
void hub_sub_go_live(hub_sub *s, uint64_t offset);

/* Removes the subscription from the channel and frees it. Presence and
 * leave are the caller's business. */
void hub_sub_remove(hub_sub *s);

hub_sub *hub_client_sub(const hub_client *cl, const char *channel);

/* Runs fn(cl, arg) on the owning worker of every client of user (and only
 * client client_id if non-empty). arg is passed to every worker: it must be
 * immutable and freed by free_arg once all workers are done (refcounted
 * inside). */
int hub_for_user(hub *h, const char *user, const char *client_id,
                 void (*fn)(hub_client *cl, void *arg), void *arg,
                 void (*free_arg)(void *arg));

/* Snapshot of channels with subscribers: calls fn for each (under the lock). */
void hub_channels(hub *h, void (*fn)(void *ud, const char *channel, int n), void *ud);

/* Totals for the info API: clients, distinct users, channels. */
void hub_counts(hub *h, int *clients, int *users, int *channels);

/* Per-IP connection count (client.connection_limit_per_ip). acquire
 * returns -1 when the limit is reached (nothing counted then). */
int hub_ip_acquire(hub *h, const char *ip);
void hub_ip_release(hub *h, const char *ip);

/* A new random UUID v4 (client ids). */
void hub_new_id(char out[37]);

/* The user id of anonymous clients: one shared "" (never freed). */
extern char hub_anonymous[1];

/* Frees what the hub_client holds (user, subs array, ip, conn_info). */
void hub_client_release(hub_client *cl);

/* Current unix time in ms. */
int64_t hub_now_ms(void);

#endif
