/* engine: the shared truth behind channels: per-channel offsets and epochs,
 * history, presence with expiry, and the events (publications, joins,
 * leaves) every node's hub fans out. It is the bottom of the realtime
 * stack: it includes only core, and knows nothing of connections,
 * workers, or JSON.
 *
 * Bytes: a publication's payload is opaque to the engine (the protocol
 * layer encodes it, once); the engine stores it by reference with the
 * channel, offset, epoch and time it assigns, and hands the same bytes back
 * in history answers and events. Presence entries carry an opaque info
 * blob the same way.
 *
 * Asynchronous, for true: every operation answers through a callback, once,
 * with an engine_result the callback owns (engine_result_free). The answer
 * may come before the call returns (memory engine), or later on a thread of
 * the engine's choosing (delayed test engine, Redis); callers assume
 * neither. Every operation can fail: res->err says how. A NULL callback
 * means the caller does not want the answer (the engine frees it).
 *
 * Events: on_publication, on_join and on_leave run on an engine thread (any
 * thread), in per-channel order: two events of one channel are reported in
 * the order of their offsets. They must be short and must not call back into
 * the engine. An engine reports events only for channels of interest: the
 * hub calls subscribe(channel) when this node's first subscriber of the
 * channel arrives and unsubscribe(channel) when its last one leaves (an
 * engine that sees every event anyway, like the memory engine, may answer
 * at once and deliver everything).
 *
 * Engines are built by name from a table (engine_new with `engine.type`). */
#ifndef PLAZA_ENGINE_H
#define PLAZA_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "core/config.h"
#include "core/rcbuf.h"

#define ENGINE_EPOCH_MAX 16     /* epoch strings are at most this long */

/* Errors (res->err; 0 = ok). */
enum {
    ENGINE_OK = 0,
    ENGINE_ERR_INTERNAL = -1,    /* out of memory, or a bug */
    ENGINE_ERR_EPOCH = -3,       /* since.epoch does not match the stream's epoch */
    ENGINE_ERR_UNAVAILABLE = -4, /* the engine cannot be reached (Redis down) */
    ENGINE_ERR_TIMEOUT = -5,     /* no answer in time */
    ENGINE_ERR_SHUTDOWN = -6,    /* the engine is stopping */
    ENGINE_ERR_STORE = -7,       /* the durable log could not commit (disk full, read-only) */
};

/* A short text for an error ("internal error", "engine unavailable"...). */
const char *engine_strerror(int err);

/* The operations, for metrics by operation. */
typedef enum {
    ENGINE_OP_PUBLISH, ENGINE_OP_JOIN, ENGINE_OP_LEAVE, ENGINE_OP_HISTORY,
    ENGINE_OP_HISTORY_REMOVE, ENGINE_OP_PRESENCE_ADD, ENGINE_OP_PRESENCE_REMOVE,
    ENGINE_OP_PRESENCE, ENGINE_OP_PRESENCE_STATS, ENGINE_OP_SUBSCRIBE,
    ENGINE_OP_UNSUBSCRIBE, ENGINE_OP_MAP_WRITE, ENGINE_OP_MAP_STATE,
    ENGINE_OP_MAP_STATS, ENGINE_OP_MAP_CLEAR, ENGINE_OP_BOARD_PUT,
    ENGINE_OP_BOARD_SNAPSHOT, ENGINE_OP_CONTROL, ENGINE_OP_COUNT
} engine_op;

const char *engine_op_name(engine_op op);

/* engine_pub.flags */
#define ENGINE_PUB_REMOVED 1     /* a map key's removal (no payload bytes) */
#define ENGINE_PUB_UNSTREAMED 2  /* a change of a map without a stream: its offset
                                  * orders events but is not shown to clients */
#define ENGINE_PUB_BOARD 4       /* a board's batch of pixels: the payload is
                                  * engine_board_pixel records (see boards) */

typedef struct engine_pub {
    uint64_t offset;             /* 0 when the channel keeps no history */
    int64_t time_ms;             /* server time of publishing (unix ms) */
    rcbuf *payload;              /* the publisher's opaque bytes (maybe empty) */
    rcbuf *key;                  /* map channels: the entry's key; else NULL */
    uint32_t flags;              /* ENGINE_PUB_* */
} engine_pub;

/* A map entry's key buffer: the bytes, NUL-terminated (not counted in len). */
rcbuf *engine_key_new(const char *key, size_t len);

/* References / releases a publication's buffers (payload and key). */
void engine_pub_ref(engine_pub *p);
void engine_pub_unref(engine_pub *p);

typedef struct engine_stream_top {
    uint64_t offset;             /* offset of the last publication (0 = none yet) */
    char epoch[ENGINE_EPOCH_MAX + 1];
} engine_stream_top;

typedef struct engine_presence_entry {
    const char *client;          /* client id */
    const char *user;            /* user id ("" = anonymous) */
    const char *info;            /* opaque info blob (the protocol's ClientInfo) */
    size_t info_len;
} engine_presence_entry;

/* An answer. Which fields mean something depends on the operation; the
 * rest are zero. Owned by the callback that receives it. */
typedef struct engine_result {
    int err;
    engine_op op;
    engine_stream_top top;             /* publish (the new position), history */
    engine_pub *pubs;                  /* history, in reply order */
    size_t npubs;
    engine_presence_entry *entries;    /* presence (strings in the same block) */
    size_t nentries;
    uint32_t num_clients, num_users;   /* presence_stats */
    int suppressed;                    /* map_write: ENGINE_SUPPRESS_* (0 = written) */
    char *cursor;                      /* map_state: where the next page starts
                                        * (NULL = this was the last page) */
    uint64_t num_keys;                 /* map_stats */
    int64_t retry_after_ms;            /* board_put suppressed by the cooldown */
    rcbuf *blob;                       /* board_snapshot: the bitfield */
} engine_result;

typedef void (*engine_cb)(void *ud, engine_result *res);

/* A result with err set and nothing else, or NULL if out of memory. */
engine_result *engine_result_new(engine_op op, int err);
void engine_result_free(engine_result *res);

/* Answers cb with res (or frees res if cb is NULL); with res == NULL (out
 * of memory), makes a fresh error result if it can. Every engine answers
 * through this. */
void engine_answer(engine_cb cb, void *ud, engine_op op, engine_result *res);

typedef struct engine_publish_req {
    const char *channel;
    rcbuf *payload;              /* opaque; the engine takes its own reference */
    int history_size;            /* keep at most this many (0 = no history) */
    int64_t history_ttl_ms;      /* drop older than this (0 = no TTL) */
    int64_t now_ms;              /* the publication's time */
    uint32_t flags;              /* 0; ENGINE_PUB_BOARD for a board's own batches */
} engine_publish_req;

typedef struct engine_history_req {
    const char *channel;
    int limit;                   /* 0 = only the top; -1 = all; N = at most N */
    int has_since;               /* filter by offset */
    uint64_t since_offset;
    const char *since_epoch;     /* NULL or "" = do not check */
    int reverse;                 /* newest first */
    int64_t now_ms;
} engine_history_req;

/* ---- maps: keyed state with a stream of changes ----
 *
 * A map channel holds key -> entry (a payload, the offset of its last
 * change, maybe an expiry). Every change (a write, a removal, an expiry)
 * takes the channel's next offset, is appended to the channel's stream
 * (the same one history reads) when the map keeps one, and is reported
 * through on_publication with pub->key set, in offset order. A suppressed
 * write changes nothing and reports nothing. */

enum { ENGINE_KEY_ANY = 0, ENGINE_KEY_IF_NEW, ENGINE_KEY_IF_EXISTS };

enum {                               /* why a map write was suppressed */
    ENGINE_SUPPRESS_NONE = 0, ENGINE_SUPPRESS_IDEMPOTENCY, ENGINE_SUPPRESS_VERSION,
    ENGINE_SUPPRESS_KEY_EXISTS, ENGINE_SUPPRESS_KEY_NOT_FOUND,
    ENGINE_SUPPRESS_POSITION_MISMATCH,
    ENGINE_SUPPRESS_COOLDOWN,        /* board_put: the user wrote too recently */
};

/* "idempotency", "version", "key_exists", "key_not_found",
 * "position_mismatch" (Centrifugo's names), "cooldown", or "" for NONE. */
const char *engine_suppress_name(int reason);

typedef struct engine_map_opts {
    int stream_size;             /* changes kept in the stream; 0 = none (ephemeral) */
    int64_t stream_ttl_ms;       /* 0 = kept until trimmed by size */
    int64_t key_ttl_ms;          /* a key expires this long after its write; 0 = never */
} engine_map_opts;

typedef struct engine_map_write_req {
    const char *channel;
    const char *key;             /* non-empty */
    size_t key_len;
    int remove;                  /* remove the key (payload unused) */
    rcbuf *payload;              /* the entry's opaque bytes; the engine takes a reference */
    engine_map_opts map;
    int key_mode;                /* ENGINE_KEY_* */
    int refresh_ttl_on_suppress; /* key_exists: the key's TTL starts again */
    uint64_t version;            /* > 0: written only if above the key's version */
    const char *version_epoch;   /* versions compare within one version epoch */
    int has_expected;            /* compare-and-set: the key must exist at */
    uint64_t expected_offset;    /*   this offset */
    const char *expected_epoch;  /*   of this epoch (NULL or "" = the current) */
    const char *idempotency_key; /* NULL or "": none */
    int64_t idempotent_ttl_ms;   /* how long it is remembered */
    int64_t now_ms;
} engine_map_write_req;

typedef struct engine_map_state_req {
    const char *channel;
    const char *cursor;          /* NULL or "": from the first key */
    int limit;                   /* entries per page; -1 = all; 0 = only the position */
    const char *key;             /* non-NULL: only this key (cursor, limit ignored) */
    const char *epoch;           /* non-empty: ENGINE_ERR_EPOCH unless the stream's */
    int64_t now_ms;
} engine_map_state_req;

/* ---- boards: a grid of pixels with a stream of batched writes ----
 *
 * A board channel holds width x height pixels of `bits` (4 or 8) each, as
 * one bitfield: rows top to bottom, each ceil(width * bits / 8) bytes, a
 * byte's high nibble the left pixel (PNG's packing of indexed colours). A
 * board never written is all colour 0. board_put checks the user's
 * cooldown, sets the pixel at once (snapshots see it), and adds it to the
 * board's open batch; batch_ms after the batch opened, the engine publishes
 * it as one publication of the channel (flags ENGINE_PUB_BOARD, an offset
 * in the stream like any other, reported through on_publication) and then
 * answers each put of it with that position (top). A put suppressed by the
 * cooldown changes nothing and answers at once (suppressed, retry_after_ms).
 *
 * A batch's payload is its pixels in write order, each record
 * ENGINE_BOARD_PIXEL_SIZE bytes and then the user: x, y (u16 little
 * endian), colour (u8), user length (u8), time (unix ms, i64 little
 * endian), user bytes. engine_board_next reads them.
 *
 * board_snapshot answers with a copy of the bitfield (res->blob) and the
 * stream position it reflects (top): every batch up to top is in it (later
 * ones may be too, so a viewer applies the batches after top over it and
 * ends where everyone else does). */

#define ENGINE_BOARD_PIXEL_SIZE 14
#define ENGINE_BOARD_USER_MAX 255

typedef struct engine_board_opts {
    uint32_t width, height;      /* 1..65535 */
    int bits;                    /* 4 or 8 */
    int64_t batch_ms;            /* how long a batch stays open (> 0) */
    int history_size;            /* the stream of batches (> 0) */
    int64_t history_ttl_ms;
    int64_t snapshot_every_ms;   /* durable log: the whole board this often when changed */
} engine_board_opts;

typedef struct engine_board_put_req {
    const char *channel;
    engine_board_opts board;
    uint32_t x, y, color;        /* checked by the caller: in the board, in the palette */
    const char *user;            /* whose cooldown (at most ENGINE_BOARD_USER_MAX bytes) */
    int64_t cooldown_ms;         /* 0 = none (the server API) */
    int64_t now_ms;
} engine_board_put_req;

typedef struct engine_board_pixel {
    uint32_t x, y, color;
    int64_t time_ms;
    const char *user;            /* not NUL-terminated: user_len bytes */
    size_t user_len;
} engine_board_pixel;

/* Reads the pixel at *pos of a batch payload and moves *pos past it.
 * Returns 1, or 0 at the end (or at a truncated record). */
int engine_board_next(const uint8_t *p, size_t len, size_t *pos, engine_board_pixel *px);

/* Bytes of a board's bitfield. */
size_t engine_board_bytes(uint32_t width, uint32_t height, int bits);

/* A put's record in a batch payload: writes ENGINE_BOARD_PIXEL_SIZE +
 * engine_board_user_len(req->user) bytes at out and returns that count. */
size_t engine_board_user_len(const char *user);
size_t engine_board_encode(uint8_t *out, const engine_board_put_req *req);

/* A put an engine can take: options in range, the pixel on the board, the
 * colour in `bits` (the caller checked them; 0 is a bug of the caller's). */
int engine_board_valid(const engine_board_put_req *req);
int engine_board_opts_valid(const engine_board_opts *o);

/* What the engine tells the hub. The payload and info are valid during the
 * call; take a reference (rcbuf_ref) or a copy to keep them. */
typedef struct engine_events {
    void (*on_publication)(void *ud, const char *channel, const engine_pub *pub);
    void (*on_join)(void *ud, const char *channel, const char *info, size_t info_len);
    void (*on_leave)(void *ud, const char *channel, const char *info, size_t info_len);
    void *ud;
    /* The engine may have lost events of the channel (Redis: the pub/sub
     * connection dropped and came back): its subscribers must recover from
     * history. Optional (NULL); the memory engine never loses one. */
    void (*on_lost)(void *ud, const char *channel);
    /* A control message (engine_ops.control) from any node, this one
     * included. Optional (NULL). */
    void (*on_control)(void *ud, const char *msg, size_t len);
} engine_events;

typedef struct engine engine;

/* One gauge for /metrics: name, help text, value. */
typedef void (*engine_gauge_fn)(void *ud, const char *name, const char *help,
                                uint64_t value);

typedef struct engine_ops {
    /* Assigns the next offset, appends to history (if history_size > 0) and
     * reports the publication through on_publication, as one atomic step
     * per channel; answers with the new stream position (top). */
    void (*publish)(engine *e, const engine_publish_req *req, engine_cb cb, void *ud);
    /* Join/leave events to the channel's subscribers on every node, in
     * order with the channel's publications. */
    void (*publish_join)(engine *e, const char *channel, const char *info,
                         size_t info_len, engine_cb cb, void *ud);
    void (*publish_leave)(engine *e, const char *channel, const char *info,
                          size_t info_len, engine_cb cb, void *ud);
    /* The stream top and the publications req asks for. History on a
     * channel never published to creates its stream (top 0, a new epoch), so
     * the epoch a subscriber sees first is the one the first publication
     * carries (the hub subscribes first: a stream nobody listens to and
     * that has no history left may be forgotten, and its next publication
     * then starts a new epoch). */
    void (*history)(engine *e, const engine_history_req *req, engine_cb cb, void *ud);
    /* Drops the publications but keeps the offset and epoch. */
    void (*history_remove)(engine *e, const char *channel, engine_cb cb, void *ud);
    /* Adds or refreshes a presence entry that expires after ttl_ms unless
     * refreshed again. */
    void (*presence_add)(engine *e, const char *channel,
                         const engine_presence_entry *entry, int64_t ttl_ms,
                         int64_t now_ms, engine_cb cb, void *ud);
    void (*presence_remove)(engine *e, const char *channel, const char *client,
                            engine_cb cb, void *ud);
    void (*presence)(engine *e, const char *channel, int64_t now_ms,
                     engine_cb cb, void *ud);
    void (*presence_stats)(engine *e, const char *channel, int64_t now_ms,
                           engine_cb cb, void *ud);
    /* Channel interest of this node (see the top of this file). For one
     * channel, calls come strictly alternating (subscribe, unsubscribe,
     * subscribe...) and are handled in that order. subscribe answers once
     * events of the channel flow to this node. */
    void (*subscribe)(engine *e, const char *channel, engine_cb cb, void *ud);
    void (*unsubscribe)(engine *e, const char *channel, engine_cb cb, void *ud);
    /* Maps (see above). map_write answers with the position after it (top)
     * and res->suppressed. map_state answers with entries in key order
     * (res->pubs, each with its key and offset), the position the page
     * reflects (top) and res->cursor; it creates the stream (and its epoch)
     * of a channel that has none, like history, which reads the stream.
     * map_stats answers with res->num_keys; map_clear drops the state and
     * the stream (the next write starts a new epoch). */
    void (*map_write)(engine *e, const engine_map_write_req *req, engine_cb cb, void *ud);
    void (*map_state)(engine *e, const engine_map_state_req *req, engine_cb cb, void *ud);
    void (*map_stats)(engine *e, const char *channel, int64_t now_ms, engine_cb cb, void *ud);
    void (*map_clear)(engine *e, const char *channel, engine_cb cb, void *ud);
    /* Boards (see above). */
    void (*board_put)(engine *e, const engine_board_put_req *req, engine_cb cb, void *ud);
    void (*board_snapshot)(engine *e, const char *channel, const engine_board_opts *opts,
                           int64_t now_ms, engine_cb cb, void *ud);
    /* Delivers msg (opaque bytes) to every node's on_control, this node's
     * included; answers once it is on its way to all of them. The server
     * API's actions on connections (disconnect a user, subscribe a client)
     * reach the node the connection lives on this way. */
    void (*control)(engine *e, const char *msg, size_t len, engine_cb cb, void *ud);
    /* Optional (NULL = always healthy): 0, or -1 with a short reason (e.g.
     * Redis unreachable) for /healthz. Any thread. */
    int (*health)(engine *e, char *why, size_t size);
    /* Optional (NULL = none): the engine's gauges for /metrics. */
    void (*gauges)(engine *e, engine_gauge_fn fn, void *ud);
    /* Before the workers are torn down: answer everything still in flight
     * now (on this thread), accept no new work that would answer later. */
    void (*quiesce)(engine *e);
    void (*destroy)(engine *e);
} engine_ops;

struct engine {
    const engine_ops *ops;
    engine_events events;
};

/* Builds the engine cfg->engine_type names, with the hub's events. NULL
 * with err set (naming the key) if the type is unknown or it cannot start. */
engine *engine_new(const config *cfg, const engine_events *events,
                   char *err, size_t errlen);

/* The names engine_new accepts, comma-separated (for messages and docs). */
const char *engine_types(void);

/* The constructors engine_new dispatches to. engine_memory_open adds the
 * durable log when cfg->store_path names a folder (engine_durable.c);
 * engine_memory_new is memory only. */
engine *engine_memory_open(const config *cfg, const engine_events *events,
                           char *err, size_t errlen);
engine *engine_memory_new(const config *cfg, const engine_events *events);
/* engine.type = redis (engine_redis.c): several nodes on one Redis. */
engine *engine_redis_new(const config *cfg, const engine_events *events, char *err, size_t errlen);
#ifdef PLAZA_TEST_ENGINES
/* Test builds: the memory engine behind random delays (engine_delayed.c). */
engine *engine_delayed_new(const config *cfg, const engine_events *events);
#endif

#endif
