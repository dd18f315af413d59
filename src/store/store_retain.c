/* store_retain: which old records the log may forget (see store_retain.h).
 *
 * A pass reads the records older than its cutoff (now - retain_ms) in log
 * order, a batch per step, stopping at the first record at or after the
 * cutoff (times are taken just before append, so they are not strictly
 * ordered: cutting by sequence keeps what is read a prefix of the log). It
 * follows each channel the way replay does and deletes a record once
 * something older than the cutoff made it useless: a publication trimmed
 * by the history size, expired by the TTL before the cutoff, removed, or
 * replaced by a new stream; an epoch mark once a publication carries the
 * epoch; a lease once it is released; a record of a channel with no
 * history. So a record is deleted only if it was already useless at the
 * cutoff, and the log restores every moment from the cutoff on exactly:
 * meta 'complete_since' says from when, in the same transaction as the
 * deletes. What a pass keeps (history tails, open leases, epoch marks of
 * empty streams) is read again by the next pass.
 *
 * Map channels (a channel is one from its first STORE_MAP_PUT/REMOVE in
 * the pass) follow their own rule, because a map is state, not only a
 * stream. Each change is a stream entry, kept while in the stream window
 * (the size and TTL the history callback gives for the channel; size 0: a
 * map without a stream, nothing is in the window); a PUT is moreover its
 * key's current state until a later PUT or REMOVE of the key, and the
 * channel's latest change or EPOCH (with a REEPOCH after it, which only
 * raises the top) says its epoch and top. A map record goes once none of
 * the three holds any more: out of the window, and a REMOVE or a
 * superseded PUT, and not the position. So the latest PUT of a live key is
 * kept however old. A new epoch (EPOCH, REEPOCH) restarts the stream or
 * not as replay does, but leaves the entries; a history removal (REMOVE)
 * and the no-history rule do not touch map records. Stream and board
 * records of a channel that is a map (its type changed) are kept. One
 * loss: an empty map without a stream whose only record left is an epoch
 * mark cannot be told from a stream channel without history, and is
 * forgotten (the engine then gives it a new epoch: its clients load it
 * again).
 *
 * Replay of a map channel therefore meets offset gaps (deleted changes
 * between the kept ones): a change past a gap must be taken, its stream
 * window started again. Here a gap is not taken for a voided record, as it
 * is for publications, since the pass cannot tell one from the other.
 *
 * The key tracking costs memory during a pass: per map channel seen, a
 * dict of its live keys (key -> seq of its current PUT). That is the size
 * of the maps' state, which the engine holds in memory anyway.
 *
 * Board channels (a channel is one from its first STORE_BOARD_BATCH or
 * STORE_BOARD_SNAP in the pass) are a stream and a state: replay rebuilds
 * the board from its latest SNAP and every BATCH logged after it. A BATCH
 * is followed exactly like a publication (window by size and TTL, REMOVE,
 * EPOCH, REEPOCH, voided and reused offsets, no history) to tell when it
 * is out of the stream; it goes only once it is out of the stream and
 * covered, i.e. a SNAP of its channel with a greater seq was read in the
 * pass (so before the cutoff). A batch out of the stream but not yet
 * covered waits in its channel's list until the next SNAP, which deletes
 * the list; a batch still in the window stays even if covered. A SNAP
 * goes once a later SNAP of its channel is read: the latest before the
 * cutoff stays (the next pass reads it again). So any moment from the
 * cutoff on has, in the log cut there, its latest SNAP and every batch
 * after it. Other records of a board channel follow the stream rules, in
 * turn: while batches wait, a record the stream no longer needs (a
 * publication out of the window, a REMOVE, a replaced epoch mark) waits
 * with them and goes at the same SNAP, after them. Deleting it first
 * would change the replayed stream: a gap after a kept batch (replay
 * skips what follows a gap), or batches a REMOVE or a new stream had
 * dropped back in history. What a board deletes stays a prefix of its
 * stream, as for publications. The list costs 8 bytes per record between
 * two snapshots (the engine writes one every minute or so); out of
 * memory, the channel is stuck: nothing more of it is deleted this pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/dict.h"
#include "obs/log.h"
#include "store/store.h"
#include "store/store_retain.h"

typedef struct cand {                  /* a publication (map change, batch) that may be in history */
    int64_t seq, time_ms;
    uint64_t offset;
    int live;                          /* map: a key's current PUT (out of the window, still kept) */
    int batch;                         /* a board's batch: out of the window, it waits for a SNAP */
} cand;

typedef struct chan {                  /* one channel as the pass has followed it */
    cand *c;                           /* ring of candidates, oldest at head */
    uint32_t cap, head, n;
    int size;                          /* history_size now */
    int64_t ttl_ms;
    uint64_t top;                      /* the stream's top as replay would have it */
    int known;                         /* top and epoch known (a record set them in this pass) */
    int64_t epoch_seq, lease_seq;      /* the epoch mark and open lease kept, or 0 */
    char epoch[32];
    /* map channels only */
    dict *keys;                        /* non-NULL: a map; key -> seq of its current PUT */
    int64_t pos_seq;                   /* the last change or EPOCH: it sets the epoch and top */
    int pos_live;                      /* ... and is a key's current PUT */
    int64_t reepoch_seq;               /* a REEPOCH after it, or 0 */
    /* board channels only */
    int64_t snap_seq;                  /* the latest SNAP read, or 0 */
    int64_t *wait;                     /* batches out of the stream that no SNAP covers yet */
    size_t nwait, wcap;
    int stuck;                         /* out of memory: nothing more of it is deleted this pass */
} chan;

_Static_assert(sizeof(void *) >= sizeof(int64_t), "a seq is kept as a dict value");

struct store_retainer {
    store_history_fn history;
    void *ud;
    int64_t retain_ms;
    int batch;
    /* the pass */
    dict *chans;                       /* channel -> chan */
    int64_t cursor, cutoff;            /* next seq to read; the pass's cutoff */
    int64_t *dead;                     /* seqs to delete at the end of the step */
    size_t ndead, dcap;
    int full;                          /* out of memory for dead: nothing more is deleted this pass */
    int in_pass;
};

store_retainer *store_retainer_new(store_history_fn history, void *ud, int64_t retain_ms, int batch) {
    store_retainer *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->history = history;
    r->ud = ud;
    r->retain_ms = retain_ms;
    r->batch = batch > 0 ? batch : 512;
    return r;
}

static void chan_free(void *p) {
    chan *c = p;
    dict_free(c->keys, NULL);
    free(c->wait);
    free(c->c);
    free(c);
}

static void pass_end(store_retainer *r) {
    dict_free(r->chans, chan_free);
    r->chans = NULL;
    r->in_pass = 0;
    r->full = 0;
    r->cursor = 0;
}

void store_retainer_free(store_retainer *r) {
    if (!r) return;
    pass_end(r);
    free(r->dead);
    free(r);
}

/* Deletes record seq at the end of the step. Out of memory, it and every
 * later decision of the pass are dropped (retried by a later pass): what
 * goes stays a prefix of the decisions, so a record that undoes others (a
 * REMOVE, a new epoch) never goes before them. */
static void kill(store_retainer *r, int64_t seq) {
    if (!seq || r->full) return;
    if (r->ndead == r->dcap) {
        size_t cap = r->dcap ? r->dcap * 2 : 256;
        int64_t *d = realloc(r->dead, cap * sizeof(*d));
        if (!d) { r->full = 1; return; }
        r->dead = d;
        r->dcap = cap;
    }
    r->dead[r->ndead++] = seq;
}

static cand *cand_at(chan *c, uint32_t i) { return &c->c[(c->head + i) % c->cap]; }

/* ---------------------------------------------------------- board channels */

/* Out of memory: the channel keeps all it has from here on (this pass). */
static void set_stuck(chan *c) {
    c->stuck = 1;
    free(c->wait);
    c->wait = NULL;
    c->nwait = c->wcap = 0;
}

/* Record seq goes with the channel's next SNAP. */
static void wait_snap(chan *c, int64_t seq) {
    if (c->stuck) return;
    if (c->nwait == c->wcap) {
        size_t cap = c->wcap ? c->wcap * 2 : 16;
        int64_t *w = realloc(c->wait, cap * sizeof(*w));
        if (!w) { set_stuck(c); return; }          /* the record stays, untracked */
        c->wait = w;
        c->wcap = cap;
    }
    c->wait[c->nwait++] = seq;
}

/* Batch seq is out of the stream: it goes if a SNAP read after it covers
 * it, else it waits for the next one. */
static void batch_out(store_retainer *r, chan *c, int64_t seq) {
    if (c->snap_seq > seq) kill(r, seq);
    else wait_snap(c, seq);
}

/* Record seq is of no use to the stream any more, but while batches wait
 * it waits with them: deleting a publication after a kept batch would
 * leave a gap in the replayed stream, deleting a REMOVE or a replaced
 * epoch mark would bring the batches it dropped back into history. */
static void kill_in_turn(store_retainer *r, chan *c, int64_t seq) {
    if (!seq) return;
    if (c->nwait) wait_snap(c, seq);
    else kill(r, seq);
}

/* SNAP seq covers every batch before it: what waits goes (in order), and
 * so does the previous SNAP. A big list's memory is given back. */
static void board_snap(store_retainer *r, chan *c, int64_t seq) {
    for (size_t i = 0; i < c->nwait; i++) kill(r, c->wait[i]);
    c->nwait = 0;
    if (c->wcap > 4096) {
        free(c->wait);
        c->wait = NULL;
        c->wcap = 0;
    }
    kill(r, c->snap_seq);
    c->snap_seq = seq;
}

/* Record seq is no use to the stream (any more): a publication goes, a
 * batch once covered. */
static void unneeded(store_retainer *r, chan *c, int64_t seq, int batch) {
    if (batch) batch_out(r, c, seq);
    else kill(r, seq);
}

/* ------------------------------------------------------------------ stream */

/* A candidate leaves the history (the stream window). A publication is
 * then useless (in turn); a batch once covered; a map change may still be
 * its key's state, or the position. */
static void leave(store_retainer *r, chan *c, const cand *k) {
    if (c->stuck) return;
    if (k->batch) batch_out(r, c, k->seq);
    else if (!c->keys) kill_in_turn(r, c, k->seq);
    else if (!k->live && k->seq != c->pos_seq) kill(r, k->seq);
}

static void drop_oldest(store_retainer *r, chan *c) {
    leave(r, c, cand_at(c, 0));
    c->head = (c->head + 1) % c->cap;
    c->n--;
}

static void drop_newest(store_retainer *r, chan *c) {
    leave(r, c, cand_at(c, c->n - 1));
    c->n--;
}

/* The candidate of record seq, or NULL (candidates are in log order). */
static cand *cand_of(chan *c, int64_t seq) {
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        cand *k = cand_at(c, mid);
        if (k->seq == seq) return k;
        if (k->seq < seq) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static void drop_all(store_retainer *r, chan *c) {
    while (c->n) drop_oldest(r, c);
}

/* Candidates whose TTL ran out before the cutoff. */
static void expire(store_retainer *r, chan *c) {
    while (c->ttl_ms > 0 && c->n && cand_at(c, 0)->time_ms + c->ttl_ms <= r->cutoff)
        drop_oldest(r, c);
}

static int push(store_retainer *r, chan *c, const cand *x) {
    while (c->size > 0 && c->n >= (uint32_t)c->size) drop_oldest(r, c);
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 8;
        cand *g = malloc(cap * sizeof(*g));
        if (!g) return -1;
        for (uint32_t i = 0; i < c->n; i++) g[i] = *cand_at(c, i);
        free(c->c);
        c->c = g;
        c->cap = cap;
        c->head = 0;
    }
    *cand_at(c, c->n++) = *x;
    return 0;
}

static chan *chan_of(store_retainer *r, const char *name, int *fresh) {
    void **slot = dict_slot(r->chans, name, strlen(name), fresh);
    if (!slot) return NULL;
    if (*fresh) {
        chan *c = calloc(1, sizeof(*c));
        if (!c) { dict_del(r->chans, name, NULL); return NULL; }
        r->history(r->ud, name, &c->size, &c->ttl_ms);
        *slot = c;
    }
    return *slot;
}

/* A publication (or a board's batch), followed as replay does
 * (engine_durable.c). */
static void on_pub(store_retainer *r, chan *c, const store_rec *x, int64_t seq) {
    int batch = x->kind == STORE_BOARD_BATCH;
    if (strcmp(c->epoch, x->epoch) != 0) {
        if (x->offset != c->top + 1 || x->offset == 1) drop_all(r, c);
        snprintf(c->epoch, sizeof(c->epoch), "%s", x->epoch);
    } else if (c->known && x->offset > c->top + 1) {
        unneeded(r, c, seq, batch);                /* voided by a failed commit: skipped */
        return;
    } else if (c->known && x->offset <= c->top) {
        while (c->n && cand_at(c, c->n - 1)->offset >= x->offset) drop_newest(r, c);
    }
    kill(r, c->epoch_seq);                         /* the publication carries the epoch */
    c->epoch_seq = 0;
    c->top = x->offset;
    c->known = 1;
    cand k = {.seq = seq, .time_ms = x->time_ms, .offset = x->offset, .batch = batch};
    if (push(r, c, &k)) { set_stuck(c); return; }  /* untracked: keep all of it */
    expire(r, c);
}

/* ------------------------------------------------------------ map channels */

static int is_map_change(int kind) { return kind == STORE_MAP_PUT || kind == STORE_MAP_REMOVE; }

/* The channel turns out to be a map (its first change in this pass). What
 * was followed as a stream is kept as it is: the candidates are forgotten,
 * not deleted, and a kept epoch mark becomes the position. */
static int become_map(chan *c) {
    if (!(c->keys = dict_new())) return -1;
    c->n = c->head = 0;
    c->pos_seq = c->epoch_seq;
    c->epoch_seq = 0;
    return 0;
}

/* Record seq (a change or an EPOCH) sets the channel's position now, on
 * its own; the previous one goes unless the window or its key still holds
 * it, and so does a REEPOCH after it. */
static void move_pos(store_retainer *r, chan *c, int64_t seq, int live) {
    if (c->pos_seq && !c->pos_live && !cand_of(c, c->pos_seq)) kill(r, c->pos_seq);
    kill(r, c->reepoch_seq);
    c->pos_seq = seq;
    c->pos_live = live;
    c->reepoch_seq = 0;
}

/* PUT s is no longer its key's state: it goes, unless the window or being
 * the position still holds it. */
static void supersede(store_retainer *r, chan *c, int64_t s) {
    cand *k = cand_of(c, s);
    if (k) k->live = 0;
    if (s == c->pos_seq) c->pos_live = 0;
    else if (!k) kill(r, s);
}

/* The stream's position before a change, as replay has it: a new epoch
 * restarts the window unless it continues the top; a reused offset (after
 * a failed commit) drops what it replaces. A change past a gap is taken
 * as it is (see the top of the file). */
static void map_position(store_retainer *r, chan *c, const store_rec *x) {
    if (strcmp(c->epoch, x->epoch) != 0) {
        if (x->offset != c->top + 1 || x->offset == 1) while (c->n) drop_oldest(r, c);
        snprintf(c->epoch, sizeof(c->epoch), "%s", x->epoch);
    } else if (c->known && x->offset <= c->top) {
        while (c->n && cand_at(c, c->n - 1)->offset >= x->offset) drop_newest(r, c);
    }
    c->top = x->offset;
    c->known = 1;
}

/* A PUT or REMOVE: it ends its key's previous PUT, becomes the position,
 * and enters the window. */
static void map_change(store_retainer *r, chan *c, const store_rec *x, int64_t seq) {
    int put = x->kind == STORE_MAP_PUT, added = 0;
    void **slot = put ? dict_slot(c->keys, x->key, x->key_len, &added)
                      : dict_find(c->keys, x->key, x->key_len);
    if (put && !slot) { c->stuck = 1; return; }
    map_position(r, c, x);
    if (slot && !added) supersede(r, c, (int64_t)(intptr_t)*slot);
    if (put) *slot = (void *)(intptr_t)seq;
    else if (slot) dict_deln(c->keys, x->key, x->key_len, NULL);
    move_pos(r, c, seq, put);
    if (c->size <= 0) return;                      /* no stream: no window */
    cand k = {.seq = seq, .time_ms = x->time_ms, .offset = x->offset, .live = put};
    if (push(r, c, &k)) { c->stuck = 1; return; }  /* untracked: keep all of it */
    expire(r, c);
}

static void follow_map(store_retainer *r, chan *c, const store_rec *x, int64_t seq) {
    if (c->stuck) return;
    switch (x->kind) {
    case STORE_MAP_PUT:
    case STORE_MAP_REMOVE:
        if (!x->key || !x->key_len) kill(r, seq);  /* replay skips a change without a key */
        else map_change(r, c, x, seq);
        break;
    case STORE_EPOCH:                              /* a new stream; the entries stay */
        while (c->n) drop_oldest(r, c);
        c->top = 0;
        c->known = 1;
        snprintf(c->epoch, sizeof(c->epoch), "%s", x->epoch);
        move_pos(r, c, seq, 0);
        break;
    case STORE_REEPOCH:
        /* replay raises the top to the record's at most: the record that
         * set the position before (an EPOCH's top 0, a reused offset)
         * stays with it; a later REEPOCH replaces it */
        if (c->top < x->offset) c->top = x->offset;
        c->known = 1;
        snprintf(c->epoch, sizeof(c->epoch), "%s", x->epoch);
        kill(r, c->reepoch_seq);
        c->reepoch_seq = seq;
        break;
    default:
        break;                                     /* a stream or board record of a map: kept */
    }
}

/* ------------------------------------------------------------------ follow */

static void follow(store_retainer *r, const store_rec *x, int64_t seq) {
    if (x->kind == STORE_PUB && x->offset == 0) { kill(r, seq); return; }
    int fresh = 0;
    chan *c = chan_of(r, x->channel, &fresh);
    (void)fresh;
    if (!c) return;
    if (is_map_change(x->kind) && !c->keys && become_map(c)) return;
    if (c->keys) { follow_map(r, c, x, seq); return; }
    if (c->stuck) return;
    if (x->kind == STORE_BOARD_SNAP) { board_snap(r, c, seq); return; }
    if (x->kind == STORE_BOARD_BATCH && (x->offset == 0 || c->size <= 0)) {
        batch_out(r, c, seq);                      /* never in the stream */
        return;
    }
    if (c->size <= 0) { kill(r, seq); return; }    /* the channel keeps no history now */
    switch (x->kind) {
    case STORE_PUB:
    case STORE_BOARD_BATCH: on_pub(r, c, x, seq); break;
    case STORE_REMOVE:
        while (c->n && cand_at(c, 0)->offset <= x->offset) drop_oldest(r, c);
        kill_in_turn(r, c, seq);
        break;
    case STORE_EPOCH:                              /* a new stream */
        drop_all(r, c);
        c->top = 0;
        /* fall through */
    case STORE_REEPOCH:                            /* history stays; top as the record says */
        if (c->top < x->offset) c->top = x->offset;
        if (c->n && cand_at(c, c->n - 1)->offset != c->top) drop_all(r, c);   /* as replay */
        c->known = 1;
        kill_in_turn(r, c, c->epoch_seq);
        c->epoch_seq = seq;
        snprintf(c->epoch, sizeof(c->epoch), "%s", x->epoch);
        break;
    case STORE_LEASE:
        kill(r, c->lease_seq);
        c->lease_seq = seq;
        break;
    case STORE_RELEASE:
        kill(r, c->lease_seq);
        c->lease_seq = 0;
        kill(r, seq);
        break;
    default:
        break;                                     /* unknown: kept */
    }
}

static int delete_dead(store_retainer *r, sqlite3 *db, sqlite3_stmt *del) {
    if (!r->ndead) return 0;
    sqlite3_stmt *meta = NULL;
    int ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta VALUES ('complete_since', ?)",
                                -1, &meta, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(meta, 1, r->cutoff);
        ok = sqlite3_step(meta) == SQLITE_DONE;
    }
    sqlite3_finalize(meta);
    for (size_t i = 0; i < r->ndead && ok; i++) {
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 1, r->dead[i]);
        ok = sqlite3_step(del) == SQLITE_DONE;
    }
    sqlite3_reset(del);
    if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        int n = (int)r->ndead;
        r->ndead = 0;
        return n;
    }
    log_warn("store: retention: %s (retried by the next pass)", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    r->ndead = 0;
    pass_end(r);
    return -1;
}

int store_retain_step(store_retainer *r, sqlite3 *db, sqlite3_stmt *scan, sqlite3_stmt *del,
                      int64_t now_ms, uint64_t *deleted) {
    if (!r->in_pass) {
        if (!(r->chans = dict_new())) return 0;
        r->in_pass = 1;
        r->cursor = 0;
        r->cutoff = now_ms - r->retain_ms;
    }
    int seen = 0, done = 0, rc;
    sqlite3_reset(scan);
    sqlite3_bind_int64(scan, 1, r->cursor);
    sqlite3_bind_int(scan, 2, r->batch);
    while ((rc = sqlite3_step(scan)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(scan, 0);
        store_rec x = {
            .time_ms = sqlite3_column_int64(scan, 1), .kind = sqlite3_column_int(scan, 2),
            .channel = (const char *)sqlite3_column_text(scan, 3),
            .offset = (uint64_t)sqlite3_column_int64(scan, 4),
            .epoch = (const char *)sqlite3_column_text(scan, 5),
            .key = sqlite3_column_blob(scan, 6),
            .key_len = (size_t)sqlite3_column_bytes(scan, 6),
        };
        if (x.time_ms >= r->cutoff) { done = 1; break; }
        r->cursor = seq + 1;
        seen++;
        if (x.channel && x.epoch) follow(r, &x, seq);
    }
    if (rc == SQLITE_DONE) done = 1;
    sqlite3_reset(scan);
    if (done) {                                    /* TTLs that ran out before the cutoff */
        dict_iter it;
        void *v;
        dict_iter_init(&it, r->chans);
        while (dict_next(&it, NULL, &v)) expire(r, v);
    }
    int n = delete_dead(r, db, del);
    if (n > 0) *deleted += (uint64_t)n;
    if (done && r->in_pass) pass_end(r);
    return done ? 0 : seen;
}
