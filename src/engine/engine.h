/* engine: the shared truth behind channels: per-channel offsets and epochs,
 * history, presence with expiry, and the fan-out of publications and
 * join/leave events to every node's hub. The interface is asynchronous:
 * every query answers through a callback, so a Redis engine can implement
 * it exactly like the in-memory one (which answers before returning).
 *
 * Publications are stored pre-encoded: `json` is the complete Centrifugo
 * Publication object ({"data":...,"info":...,"offset":N,"time":T}), so
 * history replies and pushes are concatenations, never re-encodings.
 *
 * Threads: any worker thread may call any function. Callbacks run on the
 * calling thread (memory engine) or on a thread of the engine's choosing
 * (future engines); callers must not assume which. The engine's event
 * callbacks (on_publication, on_join, on_leave) run in per-channel order:
 * two publications of one channel are reported in offset order. */
#ifndef PLAZA_ENGINE_H
#define PLAZA_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "core/rcbuf.h"

#define ENGINE_EPOCH_MAX 16     /* epoch strings are at most this long */

/* Errors reported to callbacks (0 = ok). */
enum {
    ENGINE_OK = 0,
    ENGINE_ERR_INTERNAL = -1,
    ENGINE_ERR_NOT_FOUND = -2,   /* no such stream (history on an unknown channel is not an error: empty) */
    ENGINE_ERR_EPOCH = -3,       /* since.epoch does not match the stream's epoch */
};

typedef struct engine_pub {
    uint64_t offset;             /* 0 when the channel keeps no history */
    int64_t time_ms;             /* server time of publishing (unix ms) */
    rcbuf *json;                /* the encoded Publication object */
} engine_pub;

typedef struct engine_stream_top {
    uint64_t offset;             /* offset of the last publication (0 = none yet) */
    char epoch[ENGINE_EPOCH_MAX + 1];
} engine_stream_top;

typedef struct engine_publish_req {
    const char *channel;
    const char *data;            /* raw JSON value, already validated, no raw newlines */
    size_t data_len;
    const char *info;            /* raw JSON ClientInfo object of the publisher, or NULL */
    size_t info_len;
    int history_size;            /* keep at most this many (0 = no history) */
    int64_t history_ttl_ms;      /* drop older than this (0 = no TTL) */
    int64_t now_ms;
} engine_publish_req;

typedef void (*engine_publish_cb)(void *ud, int err, const engine_stream_top *pos);

typedef struct engine_history_req {
    const char *channel;
    int limit;                   /* 0 = only the top; -1 = all; N = at most N */
    int has_since;               /* filter by offset */
    uint64_t since_offset;
    const char *since_epoch;     /* NULL or "" = do not check */
    int reverse;                 /* newest first */
    int64_t now_ms;
} engine_history_req;

/* pubs[] (n entries) and their json buffers are valid only during the
 * callback: take references to keep them. */
typedef void (*engine_history_cb)(void *ud, int err, const engine_stream_top *top,
                                  const engine_pub *pubs, size_t n);

typedef struct engine_presence_entry {
    const char *client;          /* client id */
    const char *user;            /* user id ("" = anonymous) */
    const char *info;            /* raw JSON ClientInfo object ({"user","client","conn_info","chan_info"}) */
    size_t info_len;
} engine_presence_entry;

typedef void (*engine_presence_cb)(void *ud, int err,
                                   const engine_presence_entry *entries, size_t n);
typedef void (*engine_stats_cb)(void *ud, int err, uint32_t num_clients,
                                uint32_t num_users);
typedef void (*engine_done_cb)(void *ud, int err);

/* What the engine tells the hub(s). json/info are valid during the call;
 * take a reference (rcbuf_ref) to keep them. */
typedef struct engine_events {
    void (*on_publication)(void *ud, const char *channel, const engine_pub *pub);
    void (*on_join)(void *ud, const char *channel, const char *info, size_t info_len);
    void (*on_leave)(void *ud, const char *channel, const char *info, size_t info_len);
    void *ud;
} engine_events;

typedef struct engine engine;

typedef struct engine_ops {
    /* Assigns the next offset, appends to history (if history_size > 0),
     * reports the publication through on_publication, all as one atomic
     * step per channel; then answers with the new stream position. */
    void (*publish)(engine *e, const engine_publish_req *req,
                    engine_publish_cb cb, void *ud);
    /* Sends a join/leave event to the channel's subscribers everywhere. */
    void (*publish_join)(engine *e, const char *channel, const char *info, size_t info_len);
    void (*publish_leave)(engine *e, const char *channel, const char *info, size_t info_len);
    void (*history)(engine *e, const engine_history_req *req,
                    engine_history_cb cb, void *ud);
    /* Drops the publications but keeps the offset and epoch. */
    void (*history_remove)(engine *e, const char *channel, engine_done_cb cb, void *ud);
    /* Adds or refreshes a presence entry that expires after ttl_ms unless
     * refreshed again. */
    void (*presence_add)(engine *e, const char *channel,
                         const engine_presence_entry *entry, int64_t ttl_ms,
                         int64_t now_ms);
    void (*presence_remove)(engine *e, const char *channel, const char *client);
    void (*presence)(engine *e, const char *channel, int64_t now_ms,
                     engine_presence_cb cb, void *ud);
    void (*presence_stats)(engine *e, const char *channel, int64_t now_ms,
                           engine_stats_cb cb, void *ud);
    /* Periodic housekeeping: expire presence and history by TTL. */
    void (*tick)(engine *e, int64_t now_ms);
    void (*destroy)(engine *e);
} engine_ops;

struct engine {
    const engine_ops *ops;
    engine_events events;
};

/* The single-node engine: everything in this process's memory. */
engine *engine_memory_new(const engine_events *events);

#endif
