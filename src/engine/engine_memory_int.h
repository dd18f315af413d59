/* engine_memory_int: what engine_memory.c (the state in memory) and
 * engine_durable.c (its write-through to the durable log) share: the
 * shard, channel and stream structures and the stream operations. Not for
 * use outside src/engine/. */
#ifndef PLAZA_ENGINE_MEMORY_INT_H
#define PLAZA_ENGINE_MEMORY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>
#include "core/dict.h"
#include "core/namespace.h"
#include "engine/engine.h"
#include "store/store.h"

#define MEM_SHARD_BITS 6
#define MEM_SHARDS (1u << MEM_SHARD_BITS)
#define MEM_EPOCH_LEN 8
#define MEM_RING_MIN 4
/* After a restart, a replayed stream with no history left stays this long
 * even with no subscriber, so its clients can come back and recover. */
#define MEM_REPLAY_GRACE_MS 60000

/* A channel's stream. Memory only: top == next always. With the durable
 * log, next runs ahead of top by the publications waiting for their
 * commit (sync): top, the ring and what subscribers see hold committed
 * publications only. */
typedef struct mem_stream {
    uint64_t top;                  /* offset of the last publication (committed) */
    uint64_t next;                 /* offset of the last publication assigned */
    engine_pub *ring;              /* cap slots (NULL when cap == 0) */
    uint32_t cap, head, count;     /* head = index of the oldest */
    uint32_t pending;              /* store records in flight (the stream stays) */
    uint32_t gen;                  /* bumped by a failed commit: later records are void */
    uint8_t leased;                /* async: the lease record is on disk */
    uint8_t leasing;               /* async: the lease record is being committed */
    int64_t ttl_ms;                /* history_ttl_ms of the last publish; 0 = none */
    int64_t last_pub_ms;           /* async: time of the last publication */
    char epoch[MEM_EPOCH_LEN + 1];
} mem_stream;

typedef struct mem_member {        /* a presence entry; the client id is the dict key */
    int64_t expires_at;            /* unix ms; expired when now >= expires_at */
    uint32_t user_len, info_len;
    char data[];                   /* user NUL info NUL */
} mem_member;

/* A map channel's entry. pub is its latest change (what conditional
 * writes compare with): the key, the payload and the offset. With the
 * durable log, changes wait for their commit before anyone sees them:
 * while pending > 0, readers see `seen` (the last committed change; no
 * payload = not visible yet) and pub may be a removal (ENGINE_PUB_REMOVED)
 * still on its way to disk. Without the log, pending is always 0. */
typedef struct mem_map_entry {
    engine_pub pub;
    engine_pub seen;
    uint32_t pending;              /* changes of this key waiting for their commit */
    int64_t expires_at;            /* unix ms; 0 = never (of the latest write) */
    uint64_t version;              /* of the last versioned write; 0 = none */
    char *version_epoch;           /* NULL = "" */
} mem_map_entry;

typedef struct mem_map {
    mem_map_entry **v;             /* sorted by key (engine_map.c: key_cmp) */
    uint32_t n, cap;
    int stream_size;               /* of the last write: removals by expiry use them */
    int64_t stream_ttl_ms;
    int64_t key_ttl_ms;
    dict *idem;                    /* idempotency key -> expiry (unix ms, in the pointer) */
} mem_map;

/* A change to make to a map: a write (payload) or a removal (NULL). */
typedef struct mem_map_change {
    const char *channel;
    const char *key;
    size_t key_len;
    uint32_t at;                   /* the key's index (or where it goes) */
    int found;                     /* the key has an entry */
    rcbuf *payload;                /* NULL: a removal */
    int64_t expires_at;
    uint64_t version;
    const char *version_epoch;
    int64_t now_ms;
} mem_map_change;

typedef struct mem_board mem_board;   /* engine_board.c */

typedef struct mem_channel {
    mem_stream *stream;            /* NULL: no history meta */
    mem_board *board;              /* board channels: the pixels (kept for good) */
    mem_map *map;                  /* map channels with keys (or idempotency records) */
    dict *presence;                /* client id -> mem_member; NULL when empty */
    uint8_t interest;              /* this node has subscribers (engine.subscribe) */
} mem_channel;

typedef struct mem_shard {
    _Alignas(64) pthread_mutex_t lock;   /* one cache line per shard */
    dict *channels;                /* channel name -> mem_channel */
    uint64_t rng;                  /* splitmix64 state for epochs */
    int64_t keep_until;            /* after replay: streams stay until then (unix ms) */
} mem_shard;

typedef struct mem_engine {
    engine base;
    mem_shard *shards;             /* MEM_SHARDS of them */
    uv_thread_t sweeper;
    uv_mutex_t sweep_lock;         /* guards stop, with sweep_cond */
    uv_cond_t sweep_cond;
    int stop, sweeping;
    uint64_t sweep_interval_ns;
    size_t untrimmed;              /* channels freed since the last malloc_trim */
    /* the durable log (engine_durable.c); NULL = memory only */
    store *store;
    int async;                     /* store.durability = async */
    int64_t lease_idle_ms;
    const config *cfg;             /* namespaces, for replay */
    _Atomic uint64_t store_errors; /* publications refused because a commit failed */
    _Atomic uint64_t reepochs;     /* streams given a new epoch after a lost tail */
    /* boards (engine_board.c): the flusher publishes batches when due */
    uv_thread_t board_flusher;
    uv_mutex_t board_lock;         /* guards board_q and board_stop, with board_cond */
    uv_cond_t board_cond;
    void *board_q;                 /* boards with a batch due, earliest first */
    _Atomic int board_stop;        /* puts are refused (ENGINE_ERR_SHUTDOWN) */
    int board_running;
} mem_engine;

/* Stream and channel operations (engine_memory.c); the caller holds the
 * shard lock. */
mem_shard *mem_lock_shard(mem_engine *me, const char *channel);
mem_channel *mem_channel_open(mem_shard *sh, const char *name, size_t len);
void mem_channel_gc(mem_shard *sh, const char *name, mem_channel *ch);
mem_stream *mem_stream_open(mem_shard *sh, mem_channel *ch);
mem_stream *mem_stream_open_read(mem_engine *me, mem_shard *sh, mem_channel *ch,
                                 const char *channel, int64_t now_ms);
void mem_stream_append(mem_stream *st, const engine_pub *pub, uint32_t size);
void mem_stream_clear(mem_stream *st);
void mem_stream_expire(mem_stream *st, int64_t now_ms);
void mem_stream_free(mem_stream *st);
void mem_top_of(const mem_stream *st, engine_stream_top *top);
engine_pub *mem_ring_at(const mem_stream *st, uint32_t i);
void mem_epoch_new(mem_shard *sh, char *out);

/* Maps (engine_map.c). */
void mem_map_free(mem_map *m);
/* Sweeper, under the shard lock: expired keys are removed (each removal a
 * change, with its event), idempotency records forgotten. */
void mem_map_sweep(mem_engine *me, mem_shard *sh, mem_channel *ch, const char *channel,
                   int64_t now_ms);
void mem_map_write(engine *e, const engine_map_write_req *req, engine_cb cb, void *ud);
void mem_map_state(engine *e, const engine_map_state_req *req, engine_cb cb, void *ud);
void mem_map_stats(engine *e, const char *channel, int64_t now_ms, engine_cb cb, void *ud);
void mem_map_clear(engine *e, const char *channel, engine_cb cb, void *ud);
/* The entry parts engine_map_log.c shares. */
uint32_t mem_map_find(const mem_map *m, const char *key, size_t len, int *found);
int mem_map_insert(mem_map *m, uint32_t at, mem_map_entry *e);
void mem_map_delete(mem_map *m, uint32_t at);
/* Sets the entry's version from a write (0: left as it is). -1 if out of memory. */
int mem_map_set_version(mem_map_entry *e, uint64_t version, const char *epoch);
/* A committed change: into the stream's ring (if the map keeps one) and
 * reported to the hub. pub has its offset and time. */
void mem_map_report(mem_engine *me, const char *channel, const mem_map *m, mem_stream *st,
                    engine_pub *pub);

/* Maps through the durable log (engine_map_log.c). */
/* Logs the change; it becomes visible (and cb is answered, if any) once
 * committed. Under the shard lock. Returns ENGINE_OK (answered later) or
 * an error (cb not called). */
int mem_map_stage(mem_engine *me, mem_channel *ch, const mem_map_change *c,
                  engine_result *res, engine_cb cb, void *ud);
/* Replays a map record into the channel. Under the shard lock. */
int mem_map_replay(mem_shard *sh, const store_rec *r, const ns_options *ns);

/* Boards (engine_board.c). */
void mem_board_put(engine *e, const engine_board_put_req *req, engine_cb cb, void *ud);
void mem_board_snapshot(engine *e, const char *channel, const engine_board_opts *o,
                        int64_t now_ms, engine_cb cb, void *ud);
/* Starts the flusher thread; stops it, publishing what is still open and
 * logging each board's state (before the store closes). */
int mem_boards_start(mem_engine *me);
void mem_boards_stop(mem_engine *me);
void mem_board_free(mem_board *b);
void mem_board_sweep(mem_board *b, int64_t now_ms);
/* Replay, under the shard lock: the channel's board (blank if new), a
 * logged state loaded into it (converted if the dimensions changed), a
 * batch applied to it. */
mem_board *mem_board_open(mem_channel *ch, uint32_t width, uint32_t height, int bits);
int mem_board_load(mem_channel *ch, uint32_t width, uint32_t height, int bits,
                   const uint8_t *px, size_t len, uint32_t from_w, uint32_t from_h, int from_bits);
void mem_board_apply(mem_board *b, const uint8_t *batch, size_t len);

/* The durable log (engine_durable.c). */

/* Opens cfg's store, replays it into me, and starts it. 0, or -1 with err. */
int mem_durable_open(mem_engine *me, const config *cfg, char *err, size_t errlen);
/* Commits what is queued and closes the store (after the sweeper stopped). */
void mem_durable_close(mem_engine *me);
/* Publishes through the log, under the shard lock; answers cb now or once
 * committed. */
void mem_durable_publish(mem_engine *me, mem_shard *sh, const engine_publish_req *req,
                         engine_result *res, engine_cb cb, void *ud);
/* Removes history through the log, under the shard lock (answers later). */
void mem_durable_remove(mem_engine *me, mem_shard *sh, const char *channel,
                        mem_channel *ch, engine_cb cb, void *ud);
/* A stream just created by a history read: its epoch goes into the log. */
void mem_durable_epoch(mem_engine *me, const char *channel, const mem_stream *st, int64_t now_ms);
/* Sweeper, under the shard lock: async leases of idle streams end. */
void mem_durable_sweep(mem_engine *me, const char *channel, mem_stream *st, int64_t now_ms);
void mem_durable_gauges(mem_engine *me, engine_gauge_fn fn, void *ud);

#endif
