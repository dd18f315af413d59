/* engine_durable: the memory engine's write-through to the durable log
 * (src/store/), when store.path names a folder. The memory engine keeps
 * serving history from memory; this file decides when a write becomes
 * visible, and rebuilds memory from the log at start.
 *
 * sync (store.durability, the default): a publication gets its offset
 * under the channel's shard lock (stream.next) and goes to the log; only
 * once its commit is on disk is it appended to history, reported to the
 * hub and acknowledged (on the store thread, which takes the shard lock:
 * commits come back in append order, so in offset order). No subscriber
 * ever sees an offset a crash could take back. A failed commit voids the
 * stream's later records still in flight (stream.gen) and rewinds
 * stream.next to the committed top: those offsets were never seen, so they
 * are assigned again; replay lets a later record of an offset supersede an
 * earlier one and skips a record past a gap.
 *
 * async: a channel's first publication after a pause goes the sync way,
 * after a lease record (STORE_LEASE); while the lease is on disk, publications
 * are visible and acknowledged at once and committed within the commit
 * window. A channel idle for store.lease_idle_ms gets a release record
 * (all before it is on disk). After an unclean shutdown, every channel
 * whose lease was still open may have lost a tail that subscribers saw:
 * it gets a new epoch (STORE_REEPOCH), so returning clients are told "not
 * recovered" instead of skipping or re-reading offsets. A failed commit
 * does the same at once for the channels it touched.
 *
 * Retention (store thread, store_retain.c) follows the log itself; it asks
 * only for each channel's history size and TTL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/clock.h"
#include "core/namespace.h"
#include "engine/engine_memory.h"
#include "engine/engine_memory_int.h"
#include "obs/log.h"

/* A publication or removal waiting for its commit (sync). */
typedef struct dwait {
    mem_engine *me;
    engine_cb cb;
    void *ud;
    engine_result *res;
    engine_pub pub;              /* payload referenced; offset 0 = no history */
    uint32_t gen, size;          /* stream.gen at append; history_size */
    int kind;
    int lease;                   /* async: a lease record went just before */
    char channel[];
} dwait;

static dwait *dwait_new(mem_engine *me, const char *channel, engine_result *res,
                        engine_cb cb, void *ud) {
    size_t len = strlen(channel) + 1;
    dwait *d = calloc(1, sizeof(*d) + len);
    if (!d) return NULL;
    d->me = me;
    d->cb = cb;
    d->ud = ud;
    d->res = res;
    memcpy(d->channel, channel, len);
    return d;
}

static int store_err(int rc) {
    return rc == STORE_ERR_CLOSED ? ENGINE_ERR_SHUTDOWN : ENGINE_ERR_STORE;
}

static void report(mem_engine *me, const char *channel, const engine_pub *pub) {
    if (me->base.events.on_publication)
        me->base.events.on_publication(me->base.events.ud, channel, pub);
}

/* Drops history entries with offset <= upto (oldest first). */
static void drop_through(mem_stream *st, uint64_t upto) {
    while (st->count && mem_ring_at(st, 0)->offset <= upto) {
        engine_pub *p = mem_ring_at(st, 0);
        engine_pub_unref(p);
        st->head = (st->head + 1) % st->cap;
        st->count--;
    }
}

/* Drops history entries with offset >= from (newest first). */
static void drop_from(mem_stream *st, uint64_t from) {
    while (st->count && mem_ring_at(st, st->count - 1)->offset >= from) {
        engine_pub_unref(mem_ring_at(st, st->count - 1));
        st->count--;
    }
}

/* A new epoch for a stream whose tail may be lost; logged (no wait: the
 * next publication's record comes after it). */
static void reepoch(mem_engine *me, mem_shard *sh, const char *channel, mem_stream *st,
                    int64_t now_ms) {
    mem_epoch_new(sh, st->epoch);
    st->leased = 0;
    atomic_fetch_add(&me->reepochs, 1);
    store_rec r = {.kind = STORE_REEPOCH, .time_ms = now_ms, .channel = channel,
                   .offset = st->top, .epoch = st->epoch};
    if (store_append(me->store, &r, NULL, NULL))
        log_warn("store: cannot log the new epoch of %s", channel);
}

/* ------------------------------------------------------------- publish */

/* Store thread: a sync publication's commit is done. */
static void pub_done(void *ud, int err, const store_rec *r) {
    dwait *d = ud;
    mem_engine *me = d->me;
    engine_result *res = d->res;
    (void)r;
    mem_shard *sh = mem_lock_shard(me, d->channel);
    if (d->pub.offset == 0) {                         /* a channel without history */
        if (err) res->err = ENGINE_ERR_STORE;
        else report(me, d->channel, &d->pub);
    } else {
        mem_channel *ch = dict_get(sh->channels, d->channel);
        mem_stream *st = ch ? ch->stream : NULL;      /* kept while pending */
        if (st) st->pending--;
        if (st && d->lease) st->leasing = 0;
        if (!st || err || d->gen != st->gen) {
            if (st && err && d->gen == st->gen) {     /* void what follows, reuse the offsets */
                st->gen++;
                st->next = st->top;
            }
            res->err = ENGINE_ERR_STORE;
        } else {
            st->top = d->pub.offset;
            mem_stream_append(st, &d->pub, d->size);
            if (d->lease) st->leased = 1;
            st->last_pub_ms = d->pub.time_ms;
            mem_top_of(st, &res->top);
            report(me, d->channel, &d->pub);
        }
        if (ch) mem_channel_gc(sh, d->channel, ch);
    }
    pthread_mutex_unlock(&sh->lock);
    if (res->err) atomic_fetch_add(&me->store_errors, 1);
    rcbuf_unref(d->pub.payload);
    engine_answer(d->cb, d->ud, ENGINE_OP_PUBLISH, res);
    free(d);
}

/* Store thread: an async record's commit is done; a failure loses a tail
 * subscribers may have seen: new epoch. */
static void async_done(void *ud, int err, const store_rec *r) {
    if (!err) return;
    mem_engine *me = ud;
    atomic_fetch_add(&me->store_errors, 1);
    if (r->offset == 0) return;
    mem_shard *sh = mem_lock_shard(me, r->channel);
    mem_channel *ch = dict_get(sh->channels, r->channel);
    if (ch && ch->stream && strcmp(ch->stream->epoch, r->epoch) == 0)
        reepoch(me, sh, r->channel, ch->stream, clock_now_ms());
    pthread_mutex_unlock(&sh->lock);
}

/* A board's batch is logged as such (replay applies it to the board). */
static int pub_kind(const engine_publish_req *req) {
    return req->flags & ENGINE_PUB_BOARD ? STORE_BOARD_BATCH : STORE_PUB;
}

/* async, lease on disk, nothing in flight: visible and answered now. */
static int publish_now(mem_engine *me, const engine_publish_req *req, mem_stream *st,
                       engine_result *res) {
    engine_pub pub = {.offset = st ? st->top + 1 : 0, .time_ms = req->now_ms,
                      .payload = req->payload, .flags = req->flags};
    store_rec r = {.kind = pub_kind(req), .time_ms = req->now_ms, .channel = req->channel,
                   .offset = pub.offset, .epoch = st ? st->epoch : "",
                   .payload = req->payload->data, .payload_len = req->payload->len};
    int rc = store_append(me->store, &r, async_done, me);
    if (rc) return store_err(rc);
    if (st) {
        st->top = st->next = pub.offset;
        st->last_pub_ms = req->now_ms;
        mem_stream_append(st, &pub, (uint32_t)req->history_size);
        mem_top_of(st, &res->top);
    }
    report(me, req->channel, &pub);
    return ENGINE_OK;
}

/* The sync way: to the log now, visible once committed (pub_done). */
static int publish_later(mem_engine *me, const engine_publish_req *req, mem_stream *st,
                         engine_result *res, engine_cb cb, void *ud) {
    dwait *d = dwait_new(me, req->channel, res, cb, ud);
    if (!d) return ENGINE_ERR_INTERNAL;
    d->kind = pub_kind(req);
    d->lease = me->async && st && !st->leased && !st->leasing;
    d->pub = (engine_pub){.offset = st ? st->next + 1 : 0, .time_ms = req->now_ms,
                          .payload = rcbuf_ref(req->payload), .flags = req->flags};
    d->gen = st ? st->gen : 0;
    d->size = (uint32_t)req->history_size;
    store_rec r = {.kind = d->kind, .time_ms = req->now_ms, .channel = req->channel,
                   .offset = d->pub.offset, .epoch = st ? st->epoch : "",
                   .payload = req->payload->data, .payload_len = req->payload->len};
    store_rec lease = {.kind = STORE_LEASE, .time_ms = req->now_ms, .channel = req->channel,
                       .offset = d->pub.offset, .epoch = r.epoch};
    int rc = d->lease ? store_append(me->store, &lease, NULL, NULL) : 0;
    if (!rc) rc = store_append(me->store, &r, pub_done, d);   /* committed with or after the lease */
    if (rc) {
        rcbuf_unref(d->pub.payload);
        free(d);
        return store_err(rc);
    }
    if (st) {                     /* pub_done waits for the shard lock we hold */
        st->next = d->pub.offset;
        st->pending++;
        if (d->lease) st->leasing = 1;
    }
    return 1;
}

void mem_durable_publish(mem_engine *me, mem_shard *sh, const engine_publish_req *req,
                         engine_result *res, engine_cb cb, void *ud) {
    mem_channel *ch = NULL;
    mem_stream *st = NULL;
    int rc;
    if (req->history_size > 0) {
        ch = mem_channel_open(sh, req->channel, strlen(req->channel));
        st = ch ? mem_stream_open(sh, ch) : NULL;
        if (!st) {
            if (ch) mem_channel_gc(sh, req->channel, ch);
            rc = ENGINE_ERR_INTERNAL;
            goto answer;
        }
        st->ttl_ms = req->history_ttl_ms > 0 ? req->history_ttl_ms : 0;
        mem_stream_expire(st, req->now_ms);
    }
    if (me->async && (!st || (st->leased && st->next == st->top)))
        rc = publish_now(me, req, st, res);
    else if ((rc = publish_later(me, req, st, res, cb, ud)) == 1) {
        pthread_mutex_unlock(&sh->lock);
        return;                                        /* pub_done answers */
    }
    if (ch) mem_channel_gc(sh, req->channel, ch);
answer:
    pthread_mutex_unlock(&sh->lock);
    res->err = rc;
    if (rc == ENGINE_ERR_STORE) atomic_fetch_add(&me->store_errors, 1);
    engine_answer(cb, ud, ENGINE_OP_PUBLISH, res);
}

/* ------------------------------------------------------- history remove */

static void remove_done(void *ud, int err, const store_rec *r) {
    dwait *d = ud;
    mem_shard *sh = mem_lock_shard(d->me, d->channel);
    mem_channel *ch = dict_get(sh->channels, d->channel);
    mem_stream *st = ch ? ch->stream : NULL;
    if (st) {
        st->pending--;
        if (!err && strcmp(st->epoch, r->epoch) == 0) drop_through(st, r->offset);
        mem_channel_gc(sh, d->channel, ch);
    }
    pthread_mutex_unlock(&sh->lock);
    d->res->err = err ? ENGINE_ERR_STORE : ENGINE_OK;
    engine_answer(d->cb, d->ud, ENGINE_OP_HISTORY_REMOVE, d->res);
    free(d);
}

void mem_durable_remove(mem_engine *me, mem_shard *sh, const char *channel,
                        mem_channel *ch, engine_cb cb, void *ud) {
    mem_stream *st = ch ? ch->stream : NULL;
    engine_result *res = engine_result_new(ENGINE_OP_HISTORY_REMOVE, ENGINE_OK);
    dwait *d = st && res ? dwait_new(me, channel, res, cb, ud) : NULL;
    if (d) {
        store_rec r = {.kind = STORE_REMOVE, .time_ms = clock_now_ms(), .channel = channel,
                       .offset = st->next, .epoch = st->epoch};
        int rc = store_append(me->store, &r, remove_done, d);
        if (rc == 0) {
            st->pending++;
            pthread_mutex_unlock(&sh->lock);
            return;
        }
        free(d);
        res->err = store_err(rc);
    } else if (st && res) {
        res->err = ENGINE_ERR_INTERNAL;
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_HISTORY_REMOVE, res);
}

/* --------------------------------------------------- epochs and leases */

void mem_durable_epoch(mem_engine *me, const char *channel, const mem_stream *st, int64_t now_ms) {
    store_rec r = {.kind = STORE_EPOCH, .time_ms = now_ms, .channel = channel,
                   .offset = 0, .epoch = st->epoch};
    if (store_append(me->store, &r, NULL, NULL))
        log_warn("store: cannot log the epoch of %s", channel);
}

void mem_durable_sweep(mem_engine *me, const char *channel, mem_stream *st, int64_t now_ms) {
    if (!st->leased || st->next != st->top || now_ms - st->last_pub_ms < me->lease_idle_ms)
        return;
    store_rec r = {.kind = STORE_RELEASE, .time_ms = now_ms, .channel = channel,
                   .offset = st->top, .epoch = st->epoch};
    if (store_append(me->store, &r, NULL, NULL) == 0) st->leased = 0;
}

/* ------------------------------------------------------------ retention */

/* Store thread: a channel's history size and TTL as configured now. */
static void history_of(void *ud, const char *channel, int *size, int64_t *ttl_ms) {
    const mem_engine *me = ud;
    const ns_options *ns = ns_lookup(&me->cfg->namespaces, channel);
    int map = ns && ns->subscription_type != NS_SUB_STREAM;
    *size = !ns ? 0 : map ? ns_map_stream_size(ns) : ns->history_size;
    *ttl_ms = !ns ? 0 : map ? ns_map_stream_ttl_ms(ns) : ns->history_ttl_ms;
}

/* --------------------------------------------------------------- replay */

typedef struct replay {
    mem_engine *me;
    uint64_t records, skipped;
} replay;

/* The channel's stream as replay rebuilds it (created if missing). */
static mem_stream *replay_stream(mem_engine *me, const char *channel, mem_shard **shp) {
    mem_shard *sh = *shp = mem_lock_shard(me, channel);
    mem_channel *ch = mem_channel_open(sh, channel, strlen(channel));
    if (!ch) return NULL;
    if (!ch->stream) ch->stream = calloc(1, sizeof(mem_stream));
    return ch->stream;
}

/* A publication: appended if it follows the top; a reused offset (after a
 * failed commit) supersedes what was there; a record past a gap was voided
 * by a failed commit before it and is skipped; a new epoch restarts the
 * stream from this record. */
static int replay_pub(replay *rp, const store_rec *r, const ns_options *ns, mem_stream *st) {
    if (strcmp(st->epoch, r->epoch) != 0) {
        if (r->offset != st->top + 1 || r->offset == 1) {
            mem_stream_clear(st);
            st->top = r->offset - 1;
        }
        snprintf(st->epoch, sizeof(st->epoch), "%s", r->epoch);
    } else if (r->offset > st->top + 1) {
        rp->skipped++;
        return 0;
    } else if (r->offset <= st->top) {
        drop_from(st, r->offset);
        st->top = r->offset - 1;
    }
    rcbuf *payload = rcbuf_copy(r->payload ? r->payload : "", r->payload_len);
    if (!payload) return -1;
    engine_pub pub = {.offset = r->offset, .time_ms = r->time_ms, .payload = payload,
                      .flags = r->kind == STORE_BOARD_BATCH ? ENGINE_PUB_BOARD : 0};
    mem_stream_append(st, &pub, (uint32_t)ns->history_size);
    rcbuf_unref(payload);
    st->top = st->next = r->offset;
    st->ttl_ms = ns->history_ttl_ms;
    st->last_pub_ms = r->time_ms;
    return 0;
}

/* A record of a map channel: its changes, and its epochs (which leave
 * the state as it is: a new epoch only tells clients to load it again). */
static int replay_map(replay *rp, const store_rec *r, const ns_options *ns) {
    mem_engine *me = rp->me;
    mem_shard *sh = mem_lock_shard(me, r->channel);
    int rc = 0;
    if (r->kind == STORE_MAP_PUT || r->kind == STORE_MAP_REMOVE) {
        rc = mem_map_replay(sh, r, ns);
    } else if (r->kind == STORE_EPOCH || r->kind == STORE_REEPOCH) {
        mem_channel *ch = mem_channel_open(sh, r->channel, strlen(r->channel));
        if (ch && !ch->stream) ch->stream = calloc(1, sizeof(mem_stream));
        mem_stream *st = ch ? ch->stream : NULL;
        if (!st) rc = -1;
        else {
            if (r->kind == STORE_EPOCH) { mem_stream_clear(st); st->top = st->next = 0; }
            else if (st->top < r->offset) st->top = st->next = r->offset;
            snprintf(st->epoch, sizeof(st->epoch), "%s", r->epoch);
        }
    } else {
        rp->skipped++;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* A board's records: its state (a snapshot), and each batch applied to it
 * (the batch goes to the stream like a publication as well). */
static int replay_board(const store_rec *r, const ns_options *ns, mem_channel *ch) {
    uint32_t w = (uint32_t)ns->board_width, h = (uint32_t)ns->board_height;
    int bits = ns_board_bits(ns);
    if (r->kind == STORE_BOARD_BATCH) {
        mem_board *b = mem_board_open(ch, w, h, bits);
        if (!b) return -1;
        mem_board_apply(b, r->payload, r->payload_len);
        return 0;
    }
    const uint8_t *hdr = r->aux;
    if (r->aux_len < 5 || !r->payload) return 0;     /* not one of ours: skipped */
    return mem_board_load(ch, w, h, bits, r->payload, r->payload_len, le16(hdr), le16(hdr + 2),
                          hdr[4]);
}

static int replay_rec(void *ud, const store_rec *r) {
    replay *rp = ud;
    mem_engine *me = rp->me;
    rp->records++;
    if (r->kind == STORE_PUB && r->offset == 0) return 0;
    const ns_options *ns = ns_lookup(&me->cfg->namespaces, r->channel);
    if (ns && ns->subscription_type != NS_SUB_STREAM) return replay_map(rp, r, ns);
    if (r->kind == STORE_MAP_PUT || r->kind == STORE_MAP_REMOVE) return 0;   /* not a map any more */
    if (!ns || ns->history_size <= 0) return 0;      /* no history here any more */
    int board = r->kind == STORE_BOARD_BATCH || r->kind == STORE_BOARD_SNAP;
    if (board && !ns_is_board(ns)) return 0;         /* not a board any more */
    mem_shard *sh;
    mem_stream *st = replay_stream(me, r->channel, &sh);
    int rc = st ? 0 : -1, same = st && strcmp(st->epoch, r->epoch) == 0;
    if (st && board) {
        mem_channel *ch = dict_get(sh->channels, r->channel);
        rc = ch ? replay_board(r, ns, ch) : -1;
    }
    if (st && !rc) switch (r->kind) {
    case STORE_BOARD_SNAP:              /* the first record left of the channel: its position */
        if (!st->epoch[0]) {
            snprintf(st->epoch, sizeof(st->epoch), "%s", r->epoch);
            st->top = st->next = r->offset;
        }
        break;
    case STORE_BOARD_BATCH:
    case STORE_PUB: rc = replay_pub(rp, r, ns, st); break;
    case STORE_LEASE: st->leased = 1; break;
    case STORE_REMOVE: if (same) drop_through(st, r->offset); break;
    case STORE_EPOCH:
        mem_stream_clear(st);
        st->top = st->next = 0;
        st->leased = 0;
        snprintf(st->epoch, sizeof(st->epoch), "%s", r->epoch);
        break;
    case STORE_REEPOCH:                  /* history and top stay (top: as the record says) */
        snprintf(st->epoch, sizeof(st->epoch), "%s", r->epoch);
        if (st->top < r->offset) st->top = st->next = r->offset;
        st->leased = 0;
        break;
    case STORE_RELEASE: st->leased = 0; break;
    default: rp->skipped++;
    }
    /* A log edited or written badly must not make a history that does not
     * end at the top (history reads count on it): such a history goes. */
    if (st && st->count && mem_ring_at(st, st->count - 1)->offset != st->top) {
        mem_stream_clear(st);
        rp->skipped++;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

/* After an unclean stop: the channels whose lease was open. */
static uint64_t reepoch_leased(mem_engine *me, int64_t now_ms) {
    uint64_t n = 0;
    for (unsigned i = 0; i < MEM_SHARDS; i++) {
        mem_shard *sh = &me->shards[i];
        dict_iter it;
        const char *name;
        void *v;
        pthread_mutex_lock(&sh->lock);
        dict_iter_init(&it, sh->channels);
        while (dict_next(&it, &name, &v)) {
            mem_channel *ch = v;
            if (ch->stream && ch->stream->leased) {
                reepoch(me, sh, name, ch->stream, now_ms);
                n++;
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return n;
}

/* mkdir -p for the store folder. */
static int make_dir(const char *path, char *err, size_t errlen) {
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        snprintf(err, errlen, "store.path: too long");
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0') continue;
        *p = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "store.path: cannot create %s: %s", buf, strerror(errno));
            return -1;
        }
        *p = c;
        if (!c) return 0;
    }
}

int mem_durable_open(mem_engine *me, const config *cfg, char *err, size_t errlen) {
    char file[4200], why[1024];
    if (make_dir(cfg->store_path, err, errlen)) return -1;
    if (store_file(cfg->store_path, file, sizeof(file))) {
        snprintf(err, errlen, "store.path: too long");
        return -1;
    }
    store_opts o = {
        .sync = 1,                 /* fsync each commit: async acks early but still syncs */
        .commit_window_us = cfg->store_commit_window_us,
        .retain_ms = (int64_t)cfg->store_restore_window_s * 1000,
        .retain_every_ms = cfg->engine_sweep_interval_ms,
        .history = history_of,
        .history_ud = me,
    };
    me->cfg = cfg;
    me->async = cfg->store_durability && strcmp(cfg->store_durability, "async") == 0;
    me->lease_idle_ms = cfg->store_lease_idle_ms;
    me->store = store_open(file, &o, why, sizeof(why));
    if (!me->store) {
        snprintf(err, errlen, "store.path: %s", why);
        return -1;
    }
    uint64_t t0 = uv_hrtime();
    replay rp = {.me = me};
    if (store_replay(me->store, replay_rec, &rp, why, sizeof(why))) {
        snprintf(err, errlen, "store.path: %s: %s (run `plaza store check --store %s`)",
                 file, why, cfg->store_path);
        store_close(me->store);
        me->store = NULL;
        return -1;
    }
    int clean = store_was_clean(me->store);
    uint64_t reep = clean ? 0 : reepoch_leased(me, clock_now_ms());
    engine_memory_counts c;
    engine_memory_counts_get(&me->base, &c);
    log_info("store: %s: %llu records replayed in %llu ms (%zu streams, %zu publications in "
             "history)%s; durability %s", file, (unsigned long long)rp.records,
             (unsigned long long)((uv_hrtime() - t0) / 1000000), c.streams, c.publications,
             clean ? "" : ", after an unclean stop", me->async ? "async" : "sync");
    if (reep)
        log_warn("store: %llu channels may have lost publications not yet on disk at the crash "
                 "(async): they start a new epoch", (unsigned long long)reep);
    if (rp.skipped)
        log_info("store: %llu records voided by a failed commit were skipped",
                 (unsigned long long)rp.skipped);
    if (store_start(me->store)) {
        snprintf(err, errlen, "store.path: cannot start the store thread");
        store_close(me->store);
        me->store = NULL;
        return -1;
    }
    return 0;
}

void mem_durable_close(mem_engine *me) {
    if (me->store) store_stop(me->store);
}

void mem_durable_gauges(mem_engine *me, engine_gauge_fn fn, void *ud) {
    store_stats s;
    store_get_stats(me->store, &s);
    fn(ud, "plaza_store_records", "Records in the durable log now.", s.rows);
    fn(ud, "plaza_store_bytes", "Size of the durable log's database file.", s.bytes);
    fn(ud, "plaza_store_bytes_per_record", "Database bytes per record in the log.",
       s.rows ? s.bytes / s.rows : 0);
    fn(ud, "plaza_store_commits", "Commits (fsyncs) of the durable log since start.", s.commits);
    fn(ud, "plaza_store_records_committed", "Records committed since start.", s.records);
    fn(ud, "plaza_store_records_failed", "Records whose commit failed since start.", s.failed);
    fn(ud, "plaza_store_records_deleted", "Records retention deleted since start.", s.deleted);
    fn(ud, "plaza_store_queued", "Records waiting for a commit now.", s.queued);
    fn(ud, "plaza_store_commit_us_max", "Longest commit since start, microseconds.", s.commit_us_max);
    fn(ud, "plaza_store_lag_us_max", "Longest time from append to on disk since start, "
       "microseconds (async: the window a crash can lose).", s.lag_us_max);
    fn(ud, "plaza_store_failing", "1 while the last commit failed (disk full, read-only).",
       (uint64_t)s.failing);
    fn(ud, "plaza_store_publish_errors", "Publications refused because the log could not "
       "commit them.", atomic_load(&me->store_errors));
    fn(ud, "plaza_store_reepochs", "Streams given a new epoch because a tail may be lost.",
       atomic_load(&me->reepochs));
}
