/* engine_redis_int: what the files of the Redis engine share (not a public
 * header): the engine, its Redis servers (shards or cluster nodes), calls
 * and channels of interest.
 *
 *   engine_redis.c          the engine ops: calls queued, sent, answered
 *   engine_redis_conn.c     connections: hiredis on the engine's libuv loop,
 *                           the pub/sub connection, reconnects, resubscribes
 *   engine_redis_cluster.c  Redis Cluster: slots, CLUSTER SLOTS, MOVED/ASK,
 *                           and which server a channel lives on
 *   engine_redis_map.c      map channels
 *   engine_redis_board.c    boards */
#ifndef PLAZA_ENGINE_REDIS_INT_H
#define PLAZA_ENGINE_REDIS_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <uv.h>
#include "core/dict.h"
#include "engine/engine.h"

#define REDIS_SLOTS 16384
#define REDIS_MAX_REDIRECTS 5
#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 2000

typedef enum {
    R_PUBLISH, R_JOIN, R_LEAVE, R_HISTORY, R_HISTORY_REMOVE, R_PRESENCE_ADD,
    R_PRESENCE_REMOVE, R_PRESENCE, R_PRESENCE_STATS, R_SUBSCRIBE, R_UNSUBSCRIBE, R_CONTROL,
    R_SWEEP, R_MAP_WRITE, R_MAP_STATE, R_MAP_STATS, R_MAP_CLEAR, R_MAP_SWEEP,
    R_BOARD_PUT, R_BOARD_BATCH, R_BOARD_SNAPSHOT,
} r_kind;

/* A board call's own arguments (engine_redis_board.c). */
typedef struct rbput {
    engine_board_put_req req;      /* a put: its user is `user`, its channel the call's */
    char *user;
    engine_board_opts opts;        /* a snapshot: the board's size */
} rbput;

/* A map call's own arguments (engine_redis_map.c). */
typedef struct rmap {
    char *key;                     /* NUL-terminated; key_len bytes */
    size_t key_len;
    int remove, key_mode, refresh, has_expected;
    uint64_t version, expected_offset;
    char *version_epoch, *expected_epoch, *idem;
    int64_t idem_ttl_ms;
    engine_map_opts opts;
    int single, limit;             /* map_state: one key; entries per page */
    char *cursor, *epoch;          /* map_state */
} rmap;

struct redis_engine;
struct rshard;

/* A call, copied when made, sent and answered on the engine thread. */
typedef struct rcall {
    struct rcall *next;
    struct rcall *fprev, *fnext;   /* in flight on the command connection, oldest first */
    int64_t sent_ms;               /* when it was sent (0: not in flight) */
    int answered;                  /* answered already (timed out): the reply is dropped */
    int redirects;                 /* MOVED/ASK followed so far */
    struct redis_engine *re;
    struct rshard *sh;             /* the Redis it goes to (the channel's server) */
    r_kind kind;
    engine_cb cb;
    void *ud;
    char *channel;
    rcbuf *payload;                /* publish */
    char *text;                    /* join/leave info, presence client, since epoch */
    size_t text_len;
    char *user;                    /* presence_add */
    int history_size, limit, has_since, reverse;
    int64_t ttl_ms, now_ms;
    uint64_t since;
    uint32_t flags;
    rmap *map;                     /* map calls */
    rbput *board;                  /* board calls */
} rcall;

/* The pub/sub connection of a server: a plain hiredis context read and
 * written on the loop by engine_redis_conn.c (hiredis 0.14's async layer
 * does not know sharded pub/sub, so its replies are dispatched there). */
struct rsubio;

/* One Redis server of the engine: a shard (engine.redis.address lists
 * several, channels spread by a consistent hash) or a cluster node
 * (discovered from CLUSTER SLOTS). Engine thread only, but `up`. */
typedef struct rshard {
    struct redis_engine *re;
    int index;                     /* in re->shards */
    char host[256];
    int port;
    redisAsyncContext *cmd;
    struct rsubio *sub;            /* NULL: not connected */
    int cmd_up, sub_up;
    int ever_up;                   /* connected once (a new cluster node: calls may wait for it) */
    int owns_slots;                /* cluster: serves slots in the slot map */
    _Atomic int up;                /* both connections up (read by /healthz) */
    int sub_lost;                  /* the pub/sub connection dropped: events may be lost */
    int64_t backoff_ms;
    uv_timer_t retry;
    rcall *flight_head, *flight_tail;   /* calls sent, waiting for their reply */
} rshard;

/* A channel of interest; `waiting` is its subscribe call until Redis
 * confirms it. `on` is the server it is subscribed on (it moves with its
 * cluster slot). */
typedef struct rchan {
    rcall *waiting;
    rshard *on;
    int lost;                      /* subscribed again after a drop: events may be lost */
    int confirmed;                 /* Redis confirmed the subscribe on `on` */
} rchan;

typedef struct redis_engine {
    engine base;
    const config *cfg;
    rshard **shards;               /* shards, or cluster nodes (the seeds first) */
    int nshards, cap;
    int cluster;                   /* engine.redis.cluster */
    char prefix[64];
    char control[80];              /* the control channel: <prefix>#control */
    int64_t meta_ttl_ms;
    int max_pending;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_mutex_t lock;               /* guards the queue, stopping, pending */
    rcall *q_head, **q_tail;
    _Atomic int stopping;          /* set by quiesce (any thread), read by the loop */
    int running;
    int started;                   /* the loop runs (engine thread only) */
    int pending;                   /* calls queued or in flight */
    /* engine thread only */
    dict *interest;                /* channels subscribed: name -> rchan */
    uv_timer_t tick;               /* times calls out, sweeps presence, refreshes slots */
    int64_t timeout_ms;
    int64_t next_sweep_ms, next_map_sweep_ms, next_refresh_ms;
    char sha_publish[41], sha_history[41], sha_presence[41], sha_map_write[41], sha_map_read[41],
         sha_board_batch[41], sha_board_snapshot[41], sha_cooldown[41];
    dict *boards;                  /* open batches: channel -> rboard (engine_redis_board.c) */
    uint64_t rng;
    /* cluster */
    uint16_t *slot_node;           /* REDIS_SLOTS entries: node index + 1, 0 = unknown */
    int slots_known;
    int slot_gap;                  /* a slot with no node in the map, or -1 */
    int refreshing;                /* a CLUSTER SLOTS is in flight */
    rshard *control_on;            /* the node whose pub/sub connection has the control channel */
    char health[300];              /* "" when healthy; set by the loop, read under lock */
    int up_count;                  /* servers up; the same */
} redis_engine;

/* engine_redis.c */
engine_op redis_op_of(r_kind kind);
rcall *redis_call_new(redis_engine *re, r_kind kind, const char *channel, engine_cb cb, void *ud);
void redis_call_free(rcall *c);
void redis_submit(redis_engine *re, rcall *c, r_kind kind, engine_cb cb, void *ud);
int redis_send_argv(redis_engine *re, redisCallbackFn *fn, rcall *c, int argc, const char **argv,
                    const size_t *lens);
uint64_t redis_reply_u64(const redisReply *r);
void redis_reply_epoch(const redisReply *r, char *out);
void redis_new_epoch(redis_engine *re, char *out);
void redis_finish(rcall *c, engine_result *res, int err);
void redis_finish_flight(rcall *c);
void redis_send_call(redis_engine *re, rcall *c);
void redis_answer_waiting(rchan *rc);
void redis_deliver(redis_engine *re, const char *channel, const char *msg, size_t len);
void redis_key(const redis_engine *re, const char *channel, const char *suffix, char *out, size_t size);
void redis_pubsub_name(const redis_engine *re, const char *channel, char *out, size_t size);
const char *redis_pubsub_channel(const redis_engine *re, const char *name, size_t len, size_t *out_len);

/* engine_redis_map.c */
int redis_map_send(redis_engine *re, rcall *c);
void redis_map_free(rmap *m);
void redis_map_write(engine *e, const engine_map_write_req *req, engine_cb cb, void *ud);
void redis_map_state(engine *e, const engine_map_state_req *req, engine_cb cb, void *ud);
void redis_map_stats(engine *e, const char *channel, int64_t now_ms, engine_cb cb, void *ud);
void redis_map_clear(engine *e, const char *channel, engine_cb cb, void *ud);

/* engine_redis_board.c */
int redis_board_send(redis_engine *re, rcall *c);
void redis_boards_stop(redis_engine *re);
void redis_board_put(engine *e, const engine_board_put_req *req, engine_cb cb, void *ud);
void redis_board_snapshot(engine *e, const char *channel, const engine_board_opts *o, int64_t now_ms,
                          engine_cb cb, void *ud);

/* engine_redis_conn.c */
void redis_connect(rshard *sh);
void redis_close(rshard *sh);
int redis_sub_send(rshard *sh, const char *verb, const char *name);
void redis_subscribe_channel(redis_engine *re, const char *channel, rchan *rc, rshard *on);
void redis_pick_control(redis_engine *re);

/* engine_redis_cluster.c */
unsigned redis_key_slot(const char *key, size_t len);
rshard *redis_route(redis_engine *re, const char *channel);
rshard *redis_node(redis_engine *re, const char *host, int port);
void redis_cluster_refresh(redis_engine *re);
void redis_place_channels(redis_engine *re);
int redis_redirected(rcall *c, const redisReply *r);
int redis_cluster_health(redis_engine *re, char *why, size_t size);   /* engine thread */

#endif
