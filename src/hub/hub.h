/* hub: connections <-> channels on this node. It keeps each worker's list
 * of clients and map of channel -> local subscribers, the node-wide counts
 * (clients, connections per user and per IP, subscribers per channel) that
 * limits and the server API need, this node's channel interest towards the
 * engine, and delivers what the engine reports (publications, joins,
 * leaves) to the subscribers of every worker: each event is encoded once
 * (by the sink the protocol layer installs) and the same message is queued
 * on every subscriber.
 *
 * The hub knows neither sockets nor JSON: it reaches clients through a
 * hub_sink that the protocol layer implements (encode, send, resync). It
 * sits on the engine (below) and on libuv loops given to it by main, one
 * per worker, each with its inbox (core/inbox.h).
 *
 * Threads: a client and its subscriptions belong to one worker and are only
 * touched on that worker's thread. Engine answers come back to the worker
 * that asked (hub_call). The node-wide counts and the interest records are
 * behind one mutex taken on connect, disconnect, subscribe and unsubscribe,
 * never per message. Events are posted to every worker's inbox in the
 * engine's per-channel order. */
#ifndef PLAZA_HUB_H
#define PLAZA_HUB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/config.h"
#include "core/dict.h"
#include "core/inbox.h"
#include "engine/engine.h"
#include "obs/metrics.h"

struct hub_local;
struct hub_event;

typedef struct hub_client hub_client;

typedef struct hub_sub {          /* one per subscription: fields by size */
    hub_client *cl;
    const ns_options *ns;
    uint64_t offset;               /* last delivered offset (positioned) */
    char *chan_info;               /* raw JSON from the subscription token, or NULL */
    int64_t expire_at;             /* unix seconds; 0 = never */
    struct hub_event **pending;    /* events that arrived before going live */
    uint32_t index;                /* position in the channel's local array */
    uint32_t cl_index;             /* position in the client's array */
    uint32_t chan_info_len;        /* token claims are far below 4 GiB */
    uint32_t npending;             /* room for them: the power of two >= npending, 8 at least */
    uint32_t serial;               /* tells a new subscription from an old one */
    char epoch[ENGINE_EPOCH_MAX + 1];
    uint8_t positioned : 1, recoverable : 1, join_leave : 1, presence : 1,
            live : 1, server_side : 1;
    uint8_t dead : 1,              /* resync asked: deliver nothing more */
            presence_map : 1;      /* the namespace lists subscribers in presence maps */
    char channel[];                /* the channel name (inline) */
} hub_sub;

struct hub_client {
    struct hub_local *hl;
    char id[37];                   /* UUID v4 */
    uint8_t registered;
    char *user;                    /* "" = anonymous */
    char *conn_info;               /* raw JSON, or NULL */
    char *ip;                      /* only with client.connection_limit_per_ip */
    struct hub_client *prev, *next;   /* hub_local's list */
    hub_sub **subs;                /* sub_small, or a heap array */
    union {                        /* while subs is sub_small (cap_subs 1): */
        hub_sub *sub_small[1];
        dict *sub_index;           /* once subs is on the heap: channel -> sub, or NULL */
    };
    uint32_t nsubs, cap_subs;
    uint32_t conn_info_len;        /* token claims are far below 4 GiB */
};

/* What the protocol layer gives the hub: encoders (the hub knows no JSON)
 * and the way to a client's connection (the hub knows no sockets). A
 * message is opaque to the hub: made once per event, sent to many. */
struct hub;

typedef struct hub_sink {
    void *(*pub_msg)(const char *channel, const engine_pub *pub);
    void *(*join_msg)(const char *channel, const char *info, size_t len);
    void *(*leave_msg)(const char *channel, const char *info, size_t len);
    void (*msg_unref)(void *msg);
    /* Queues msg on the client's connection (owner worker). 0 or -1. */
    int (*send)(hub_client *cl, void *msg);
    /* The client missed events it cannot be given any more: it must
     * reconnect and recover (the protocol closes it with 3010). Called
     * while the hub walks a channel's subscribers: it must not remove
     * subscriptions (the close that follows does). */
    void (*resync)(hub_client *cl);
    /* The opaque info blob for presence, join/leave and publications. */
    char *(*client_info)(const hub_client *cl, const hub_sub *sub, size_t *len);
    /* Refreshes the client's entries in the presence maps of a live
     * subscription (s->presence_map), before their TTL ends. */
    void (*presence_map_refresh)(hub_client *cl, hub_sub *s);
    /* A control message from some node (engine_ops.control): the protocol
     * decodes it and acts on this node's connections. Any thread. */
    void (*control)(struct hub *h, const char *msg, size_t len);
} hub_sink;

/* Why subscribers were told to resync (metrics). */
enum { HUB_RESYNC_INBOX, HUB_RESYNC_HELD, HUB_RESYNC_GAP, HUB_RESYNC_COUNT };

/* Per-worker hub counters (written by the worker, summed by /metrics). */
typedef struct hub_metrics {
    metric_t subscriptions;        /* gauge */
    metric_t pushes_out;           /* pushes queued to subscribers */
    metric_t resyncs[HUB_RESYNC_COUNT];   /* subscribers told to resync, by reason */
} hub_metrics;

typedef struct hub_local {
    struct hub *hub;
    int id;                        /* worker index */
    uv_loop_t *loop;
    inbox *ib;
    dict *channels;                /* channel -> hub_chan (this worker's subscribers) */
    hub_client *clients;           /* this worker's registered clients (list) */
    size_t nclients;
    uint32_t sub_serial;           /* the last subscription serial given */
    uv_timer_t presence_timer;
    hub_metrics metrics;
    /* events that could not be queued here (see hub.c: overflow) */
    uv_mutex_t overflow_lock;
    dict *overflowed;              /* channels whose subscribers must resync */
    int overflow_all;              /* could not even record the channel */
    atomic_int overflow_posted;
    task overflow_task;
    _Atomic uint64_t events_dropped;   /* events refused by the full inbox */
    void *ext;                     /* the protocol layer's per-worker state */
} hub_local;

typedef struct hub {
    const config *cfg;
    engine *eng;
    hub_sink sink;
    hub_local **locals;            /* one per worker, index = worker id */
    int nlocals;
    uv_mutex_t lock;               /* guards the fields below */
    int nclients;                  /* registered clients, all workers */
    dict *users;                   /* user -> number of connections */
    dict *ips;                     /* ip -> number of connections */
    dict *chans;                   /* channel -> hub_interest (subscribers, all workers) */
    struct hub_icall *icalls_head, *icalls_tail;   /* interest calls to make, in order */
    int icalls_running;            /* a thread is making them */
    int64_t started_ms;
    _Atomic uint64_t publications;   /* every publication fanned out (client and API) */
    _Atomic uint64_t engine_errors[ENGINE_OP_COUNT];
    char node_id[37];
} hub;

/* Creates the hub on n loops (one per worker, with their inboxes). The
 * engine comes after (it needs hub_engine_events): hub_set_engine. */
hub *hub_new(const config *cfg, const hub_sink *sink, int n, uv_loop_t **loops,
             inbox **inboxes);
void hub_set_engine(hub *h, engine *e);
void hub_free(hub *h);

/* The engine events that feed this hub (ud = h). */
engine_events hub_engine_events(hub *h);

/* ---- engine calls answered on the caller's worker ---- */

/* fn runs on hl's worker with the answer, which it owns
 * (engine_result_free). */
typedef void (*hub_answer_fn)(void *ud, engine_result *res);

/* A call context for one engine operation: pass hub_call_cb as the engine
 * callback and this as its ud. NULL if out of memory (make no call). */
void *hub_call(hub_local *hl, hub_answer_fn fn, void *ud);
void hub_call_cb(void *call, engine_result *res);

/* An engine callback for calls whose answer nobody waits for (presence
 * refresh, leave): failures are counted, nothing else. ud = the hub. */
void hub_count_cb(void *hub, engine_result *res);

/* ---- registry ---- */

/* Returns 0, or -1 when a limit is reached (user). */
int hub_client_register(hub_client *cl);
void hub_client_unregister(hub_client *cl);

/* ---- subscriptions ---- */

enum { HUB_ADD_OK = 0, HUB_ADD_LIMIT, HUB_ADD_NOMEM };

/* Creates a subscription in the channel's local list, not live: events are
 * held until hub_sub_go_live. *out is set on HUB_ADD_OK. */
int hub_sub_add(hub_client *cl, const char *channel, const ns_options *ns,
                hub_sub **out);

/* Calls fn(ud, err) on the subscription's worker once the engine delivers
 * the channel's events to this node (err != 0: it could not). Always
 * later, never inside this call. The subscription may be gone by then:
 * fn checks (hub_client_sub and serial). Returns -1 if out of memory. */
int hub_sub_when_ready(hub_sub *s, void (*fn)(void *ud, int err), void *ud);

/* Makes a subscription live at offset (positioned) and delivers, in order,
 * the held events it has not seen. */
void hub_sub_go_live(hub_sub *s, uint64_t offset);

/* Removes the subscription from the channel and frees it. Presence and
 * leave are the caller's business. */
void hub_sub_remove(hub_sub *s);

hub_sub *hub_client_sub(const hub_client *cl, const char *channel);

/* ---- node-wide ---- */

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

#endif
