/* store: the durable log under the engine, on SQLite (WAL). Every write the
 * engine makes durable (a publication, a history removal, a new epoch, a
 * map change) is one record appended with its time to one append-only
 * table keyed by a global sequence; nothing in the commit path is indexed
 * per channel (measured: a (channel, offset) key tops out near 20k
 * commits/s, the global sequence near 200k). The engine keeps serving
 * recent history from memory and rebuilds it from the log at start
 * (store_replay).
 *
 * Commits happen on the store's own thread, never on a network loop, and
 * are grouped: every record that arrives while one commit runs goes into
 * the next. Back-to-back fsyncs are spaced by commit_window_us at least
 * (this VM's hypervisor pauses a writer that fsyncs without a break),
 * measured from the end of the previous commit, so a lone record is
 * committed at once. Each record's callback runs on the store thread once
 * its commit is on disk (or failed: err != 0, nothing of the group was
 * kept), in append order.
 *
 * Map records (STORE_MAP_PUT, STORE_MAP_REMOVE) are a map channel's
 * changes: each takes the channel's next stream offset like a publication,
 * and carries the map key and, for a PUT, the value (payload) and opaque
 * engine bytes (aux, e.g. a version). Replaying them in order rebuilds the
 * map: a key's state is its latest PUT, unless a REMOVE came after it.
 * (Schema 2 of the log added the key and aux columns; a schema-1 database
 * is migrated when it is opened.)
 *
 * Board records are a pixel board's: a STORE_BOARD_BATCH is a batch of
 * pixel writes, a stream entry of its channel exactly like a publication
 * (offset, epoch, payload = the engine's bytes); a STORE_BOARD_SNAP is the
 * board's whole state (payload: the bitfield, aux: the engine's header)
 * as of its stream position (offset, epoch). A snapshot holds every batch
 * of its channel logged before it, so replay rebuilds a board from its
 * latest snapshot and the batches logged after it, in order.
 *
 * Retention runs on the same thread between commits, a small batch at a
 * time (store_retain.c): a record older than retain_ms is deleted once it
 * was useless for replay already retain_ms ago (trimmed from history by
 * the channel's size or TTL, removed, superseded). A map record is useless
 * once out of its stream's window and no longer its key's state (a REMOVE,
 * or a PUT with a later change of its key), so a key's latest PUT stays
 * however old. A board's batch is useless once out of its stream's window
 * and covered by a later snapshot, a snapshot once a later one follows.
 * So the log can be replayed as of any moment in that window
 * (store_admin.c: restore at a time), and stays bounded.
 *
 * The store knows nothing of connections, hubs or JSON: channels, epochs,
 * keys, payloads and aux are bytes to it. */
#ifndef PLAZA_STORE_H
#define PLAZA_STORE_H

#include <stddef.h>
#include <stdint.h>

enum {
    STORE_OK = 0,
    STORE_ERR_IO = -1,          /* the disk refused (full, read-only, I/O error) */
    STORE_ERR_CORRUPT = -2,     /* the database is damaged */
    STORE_ERR_CLOSED = -3,      /* the store is closing */
    STORE_ERR_NOMEM = -4,
};

/* What a record says (the log's `kind` column). */
enum {
    STORE_PUB = 1,              /* a publication: channel, offset (0 = no history), epoch, payload */
    STORE_REMOVE = 2,           /* the channel's history was removed (offset: its top then) */
    STORE_EPOCH = 3,            /* a new stream: epoch, top 0, no history */
    STORE_REEPOCH = 4,          /* the stream keeps top and history under a new epoch */
    STORE_LEASE = 5,            /* async: the channel's lease opens (before its publications) */
    STORE_RELEASE = 6,          /* the channel's async lease ended: all before it is on disk */
    STORE_MAP_PUT = 7,          /* a map key written: channel, offset, epoch, key, payload, aux */
    STORE_MAP_REMOVE = 8,       /* a map key removed (or expired): channel, offset, epoch, key */
    STORE_BOARD_BATCH = 9,      /* a board's batch of pixel writes: exactly like STORE_PUB (channel,
                                   offset, epoch, payload = the engine's bytes) for the stream, and
                                   part of the board's state */
    STORE_BOARD_SNAP = 10,      /* a board's whole state: channel, offset and epoch (the stream
                                   position it reflects), payload (the bitfield), aux (the engine's
                                   header bytes) */
};

typedef struct store_rec {
    int kind;
    int64_t time_ms;
    const char *channel;
    uint64_t offset;
    const char *epoch;
    const void *payload;        /* STORE_PUB, STORE_LEASE, STORE_MAP_PUT, STORE_BOARD_BATCH,
                                   STORE_BOARD_SNAP; NULL otherwise */
    size_t payload_len;
    const void *key;            /* STORE_MAP_*: the map key (bytes); NULL otherwise */
    size_t key_len;
    const void *aux;            /* the engine's own bytes: STORE_MAP_PUT (version), STORE_BOARD_SNAP
                                   (header); may be NULL; NULL for other kinds */
    size_t aux_len;
} store_rec;

/* A channel's history size and TTL; for a map channel, its stream's. */
typedef void (*store_history_fn)(void *ud, const char *channel, int *size, int64_t *ttl_ms);

typedef struct store_opts {
    int sync;                   /* 1: fsync every commit (synchronous=FULL) */
    int commit_window_us;       /* least time between two commits under load */
    int checkpoint_pages;       /* wal_autocheckpoint; 0 = 100 */
    int64_t retain_ms;          /* keep every record this long; 0 = delete once unneeded */
    int retain_batch;           /* records looked at per retention step; 0 = 512 */
    int retain_every_ms;        /* rest between two retention passes; 0 = 10 s */
    /* Retention asks for a channel's history size and TTL (ms, 0 = none)
     * as configured now. Runs on the store thread; NULL = no retention. */
    store_history_fn history;
    void *history_ud;
} store_opts;

typedef struct store store;

typedef void (*store_done_fn)(void *ud, int err, const store_rec *r);

/* Opens (creating) the database at path and checks it. NULL with err set
 * (saying what to do) if it cannot be opened or written, is not a Plaza
 * store, or is damaged. */
store *store_open(const char *path, const store_opts *o, char *err, size_t errlen);

/* 1 if the last process that had the store open closed it cleanly. */
int store_was_clean(const store *s);

/* Calls fn for every record in append order. Only before the first
 * store_append (at start). fn returns 0 to go on. Returns 0 or an error. */
int store_replay(store *s, int (*fn)(void *ud, const store_rec *r), void *ud,
                 char *err, size_t errlen);

/* Starts the store's thread: commits and retention. The first append
 * starts it too; the engine starts it after replaying. */
int store_start(store *s);

/* Queues a record (copied); done(ud, err, the record) runs on the store thread once
 * the record's commit is on disk or failed. Returns 0, or an error (done is
 * then not called). */
int store_append(store *s, const store_rec *r, store_done_fn done, void *ud);

/* Counters (any thread). */
typedef struct store_stats {
    uint64_t records, commits, failed;   /* records committed, commits, records failed */
    uint64_t queued;                     /* records waiting for a commit now */
    uint64_t commit_us_max;              /* longest commit since open */
    uint64_t lag_us_max;                 /* longest append -> on disk since open */
    uint64_t rows;                       /* records in the log now */
    uint64_t deleted;                    /* records deleted by retention since open */
    uint64_t bytes;                      /* database file size (pages in use and free) */
    int failing;                         /* the last commit failed */
} store_stats;

void store_get_stats(store *s, store_stats *out);

/* Commits what is queued (callbacks run), stops the thread, marks the
 * store clean if no commit failed; appends are refused afterwards. Safe to
 * repeat. */
void store_stop(store *s);

/* store_stop, then closes the database and frees s. */
void store_close(store *s);

/* The database file of a store folder: "<dir>/plaza.db" into out. */
int store_file(const char *dir, char *out, size_t outlen);

#endif
