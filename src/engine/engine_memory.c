/* engine_memory: the single-node engine. It owns every channel's stream
 * (top offset, epoch, a bounded ring of recent publications) and presence
 * (client id -> user, info, expiry), sharded over MEM_SHARDS mutexes by the
 * channel's hash, plus one epoch random source per shard, and a sweeper
 * thread of its own that expires history and presence every
 * engine.sweep_interval_ms.
 *
 * Atomicity and order: publish takes the channel's shard lock, assigns the
 * offset, appends to the ring and calls events.on_publication before
 * releasing it, so the events of one channel (publications, joins, leaves)
 * are reported in one total order that matches the offsets. The event
 * callbacks therefore run under a shard lock: they must be short and must
 * not call back into the engine (that could deadlock).
 *
 * Answers run on the calling thread before the function returns, always
 * after the shard lock is released; the engine_result they carry is the
 * receiver's (history holds referenced payloads, presence a private copy).
 *
 * Memory: a channel exists in a shard only while it has a stream, presence
 * entries or this node's interest (subscribers). Publishing with
 * history_size == 0 touches no state. A stream's meta (offset, epoch) lives
 * while the channel has publications in history or subscribers: once both
 * are gone the sweeper frees it, so the memory per distinct channel name
 * ever used returns to nothing; the channel's next publication starts a new
 * epoch, which tells a returning client "not recovered" rather than letting
 * it skip or re-read offsets. The ring is freed whenever it empties (TTL,
 * history_remove) and grows by doubling up to history_size. Channel
 * interest is counted but filters nothing: every event goes to the hub,
 * which drops events of channels without local subscribers. */
#include <malloc.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uv.h>
#include "core/clock.h"
#include "core/dict.h"
#include "engine/engine.h"
#include "engine/engine_memory.h"
#include "engine/engine_memory_int.h"

/* ------------------------------------------------------------ shards */

static mem_shard *shard_of(mem_engine *me, const char *channel, size_t len) {
    return &me->shards[dict_hash(channel, len) >> (64 - MEM_SHARD_BITS)];
}

static uint64_t shard_rand(mem_shard *sh) {
    uint64_t z = (sh->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t seed64(unsigned salt) {
    uint64_t s;
    if (getrandom(&s, sizeof(s), 0) == (ssize_t)sizeof(s)) return s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
           ((uint64_t)(uintptr_t)&s << 7) ^ ((uint64_t)salt << 48);
}

void mem_epoch_new(mem_shard *sh, char *out) {
    static const char abc[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t r = shard_rand(sh);
    for (int i = 0; i < MEM_EPOCH_LEN; i++) {
        out[i] = abc[r % 62];
        r /= 62;
    }
    out[MEM_EPOCH_LEN] = '\0';
}

/* -------------------------------------------------------------- streams */

engine_pub *mem_ring_at(const mem_stream *st, uint32_t i) {
    return &st->ring[(st->head + i) % st->cap];
}

/* Moves the ring into n slots, oldest first (n >= count; n == 0 frees it).
 * -1 if out of memory (nothing changed). */
static int ring_resize(mem_stream *st, uint32_t n) {
    engine_pub *r = NULL;
    if (n && !(r = malloc((size_t)n * sizeof(*r)))) return -1;
    for (uint32_t i = 0; i < st->count; i++) r[i] = *mem_ring_at(st, i);
    free(st->ring);
    st->ring = r;
    st->cap = n;
    st->head = 0;
    return 0;
}

static void stream_drop_oldest(mem_stream *st) {
    engine_pub_unref(&st->ring[st->head]);
    st->head = (st->head + 1) % st->cap;
    st->count--;
}

void mem_stream_clear(mem_stream *st) {
    while (st->count) stream_drop_oldest(st);
    ring_resize(st, 0);
}

/* Drops publications whose TTL has passed (they live while
 * now < time_ms + ttl_ms); frees the ring once it is empty. */
void mem_stream_expire(mem_stream *st, int64_t now_ms) {
    if (st->ttl_ms <= 0) return;
    while (st->count && now_ms - st->ring[st->head].time_ms >= st->ttl_ms)
        stream_drop_oldest(st);
    if (st->count == 0 && st->cap) ring_resize(st, 0);
}

/* Appends pub (taking a reference), keeping at most size publications. If
 * the ring cannot grow, the oldest publication makes room. */
void mem_stream_append(mem_stream *st, const engine_pub *pub, uint32_t size) {
    while (st->count >= size) stream_drop_oldest(st);
    if (st->cap > size) ring_resize(st, size);          /* history_size shrank */
    if (st->count == st->cap) {
        uint32_t want = st->cap >= size / 2 ? size : st->cap * 2;
        if (want < MEM_RING_MIN) want = size < MEM_RING_MIN ? size : MEM_RING_MIN;
        if (ring_resize(st, want)) {
            if (!st->cap) return;               /* not stored; top still advanced */
            stream_drop_oldest(st);
        }
    }
    *mem_ring_at(st, st->count) = *pub;
    engine_pub_ref(mem_ring_at(st, st->count));
    st->count++;
}

void mem_stream_free(mem_stream *st) {
    if (!st) return;
    mem_stream_clear(st);
    free(st);
}

void mem_top_of(const mem_stream *st, engine_stream_top *top) {
    top->offset = st->top;
    memcpy(top->epoch, st->epoch, MEM_EPOCH_LEN + 1);
}

/* ------------------------------------------------------------- channels */

static void member_free(void *m) { free(m); }

static void channel_free(void *p) {
    mem_channel *ch = p;
    mem_stream_free(ch->stream);
    mem_map_free(ch->map);
    mem_board_free(ch->board);
    dict_free(ch->presence, member_free);
    free(ch);
}

/* Frees what the channel no longer needs, and the channel itself once
 * nothing is left: the stream meta goes when history is empty and nobody
 * on this node listens (see the top of the file). */
void mem_channel_gc(mem_shard *sh, const char *name, mem_channel *ch) {
    if (ch->presence && dict_size(ch->presence) == 0) {
        dict_free(ch->presence, NULL);
        ch->presence = NULL;
    }
    if (ch->map && ch->map->n == 0 && (!ch->map->idem || dict_size(ch->map->idem) == 0)) {
        mem_map_free(ch->map);
        ch->map = NULL;
    }
    if (ch->stream && ch->stream->count == 0 && !ch->interest && !ch->map && !ch->board && !ch->stream->pending &&
        !ch->stream->leasing && !ch->stream->leased && (!sh->keep_until || clock_now_ms() >= sh->keep_until)) {
        mem_stream_free(ch->stream);
        ch->stream = NULL;
    }
    if (ch->stream || ch->map || ch->board || ch->presence || ch->interest) return;
    dict_del(sh->channels, name, NULL);
    free(ch);
}

/* Finds or creates a channel; NULL if out of memory. */
mem_channel *mem_channel_open(mem_shard *sh, const char *name, size_t len) {
    int added;
    void **slot = dict_slot(sh->channels, name, len, &added);
    if (!slot) return NULL;
    if (added && !(*slot = calloc(1, sizeof(mem_channel)))) {
        dict_deln(sh->channels, name, len, NULL);
        return NULL;
    }
    return *slot;
}

/* Finds or creates a channel's stream (with a new epoch). */
mem_stream *mem_stream_open(mem_shard *sh, mem_channel *ch) {
    if (!ch->stream) {
        ch->stream = calloc(1, sizeof(mem_stream));
        if (!ch->stream) return NULL;
        mem_epoch_new(sh, ch->stream->epoch);
    }
    return ch->stream;
}

/* The channel's stream for a read (history, a map's state): created with a
 * new epoch if missing, and that epoch goes into the durable log, so the
 * epoch a reader sees first survives a restart. */
mem_stream *mem_stream_open_read(mem_engine *me, mem_shard *sh, mem_channel *ch,
                                 const char *channel, int64_t now_ms) {
    int fresh = !ch->stream;
    mem_stream *st = mem_stream_open(sh, ch);
    if (st && fresh && me->store) mem_durable_epoch(me, channel, st, now_ms);
    return st;
}

/* Locks the channel's shard. */
mem_shard *mem_lock_shard(mem_engine *me, const char *channel) {
    mem_shard *sh = shard_of(me, channel, strlen(channel));
    pthread_mutex_lock(&sh->lock);
    return sh;
}

/* ------------------------------------------------------------- publish */

/* The atomic step, under the shard lock: offset, ring, event. */
static int publish_locked(mem_engine *me, mem_shard *sh, const engine_publish_req *req,
                          engine_stream_top *pos) {
    engine_pub pub = { .offset = 0, .time_ms = req->now_ms, .payload = req->payload,
                       .flags = req->flags };
    if (req->history_size > 0) {
        mem_channel *ch = mem_channel_open(sh, req->channel, strlen(req->channel));
        mem_stream *st = ch ? mem_stream_open(sh, ch) : NULL;
        if (!st) {
            if (ch) mem_channel_gc(sh, req->channel, ch);
            return ENGINE_ERR_INTERNAL;
        }
        st->ttl_ms = req->history_ttl_ms > 0 ? req->history_ttl_ms : 0;
        mem_stream_expire(st, req->now_ms);
        pub.offset = st->next = ++st->top;
        mem_top_of(st, pos);
        mem_stream_append(st, &pub, (uint32_t)req->history_size);
    }
    if (me->base.events.on_publication)
        me->base.events.on_publication(me->base.events.ud, req->channel, &pub);
    return ENGINE_OK;
}

static void mem_publish(engine *e, const engine_publish_req *req,
                        engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_PUBLISH, ENGINE_OK);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_PUBLISH, NULL); return; }
    mem_shard *sh = mem_lock_shard(me, req->channel);
    if (me->store) {                  /* through the durable log: unlocks, answers */
        mem_durable_publish(me, sh, req, res, cb, ud);
        return;
    }
    res->err = publish_locked(me, sh, req, &res->top);
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_PUBLISH, res);
}

static void mem_join_leave(engine *e, const char *channel, const char *info,
                           size_t info_len, int join, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_op op = join ? ENGINE_OP_JOIN : ENGINE_OP_LEAVE;
    engine_result *res = engine_result_new(op, ENGINE_OK);
    void (*fn)(void *, const char *, const char *, size_t) =
        join ? me->base.events.on_join : me->base.events.on_leave;
    if (res && fn) {
        mem_shard *sh = mem_lock_shard(me, channel);   /* ordered with the channel's publications */
        fn(me->base.events.ud, channel, info, info_len);
        pthread_mutex_unlock(&sh->lock);
    }
    engine_answer(cb, ud, op, res);
}

static void mem_publish_join(engine *e, const char *channel, const char *info,
                             size_t len, engine_cb cb, void *ud) {
    mem_join_leave(e, channel, info, len, 1, cb, ud);
}

static void mem_publish_leave(engine *e, const char *channel, const char *info,
                              size_t len, engine_cb cb, void *ud) {
    mem_join_leave(e, channel, info, len, 0, cb, ud);
}

/* One node: the control message is this node's at once. */
static void mem_control(engine *e, const char *msg, size_t len, engine_cb cb, void *ud) {
    if (e->events.on_control) e->events.on_control(e->events.ud, msg, len);
    engine_answer(cb, ud, ENGINE_OP_CONTROL, engine_result_new(ENGINE_OP_CONTROL, ENGINE_OK));
}

/* ------------------------------------------------------------- history */

/* Copies (and references) the publications req asks for, in reply order. */
static int history_select(const mem_stream *st, const engine_history_req *req,
                          engine_result *res) {
    if (req->limit == 0 || st->count == 0) return ENGINE_OK;
    /* The ring holds consecutive offsets: position i has offset oldest + i. */
    uint64_t oldest = st->ring[st->head].offset, since = req->since_offset;
    size_t lo = 0, hi = st->count;                  /* ring positions [lo, hi) */
    if (req->has_since && !req->reverse && since >= oldest)      /* offset > since */
        lo = since - oldest + 1 < hi ? (size_t)(since - oldest + 1) : hi;
    else if (req->has_since && req->reverse)                     /* offset < since */
        hi = since <= oldest ? 0 : since - oldest < hi ? (size_t)(since - oldest) : hi;
    if (lo >= hi) return ENGINE_OK;
    size_t k = hi - lo;
    if (req->limit > 0 && k > (size_t)req->limit) k = (size_t)req->limit;
    engine_pub *pubs = malloc(k * sizeof(*pubs));
    if (!pubs) return ENGINE_ERR_INTERNAL;
    for (size_t i = 0; i < k; i++) {
        size_t at = req->reverse ? hi - 1 - i : lo + i;
        pubs[i] = *mem_ring_at(st, (uint32_t)at);
        engine_pub_ref(&pubs[i]);
    }
    res->pubs = pubs;
    res->npubs = k;
    return ENGINE_OK;
}

static void mem_history(engine *e, const engine_history_req *req,
                        engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_HISTORY, ENGINE_ERR_INTERNAL);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_HISTORY, NULL); return; }
    mem_shard *sh = mem_lock_shard(me, req->channel);
    mem_channel *ch = mem_channel_open(sh, req->channel, strlen(req->channel));
    mem_stream *st = ch ? mem_stream_open_read(me, sh, ch, req->channel, req->now_ms) : NULL;
    if (st) {
        mem_stream_expire(st, req->now_ms);
        mem_top_of(st, &res->top);
        if (req->since_epoch && req->since_epoch[0] && strcmp(req->since_epoch, st->epoch))
            res->err = ENGINE_ERR_EPOCH;
        else
            res->err = history_select(st, req, res);
    } else if (ch) {
        mem_channel_gc(sh, req->channel, ch);
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_HISTORY, res);
}

static void mem_history_remove(engine *e, const char *channel, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = dict_get(sh->channels, channel);
    if (me->store) {                  /* through the durable log: unlocks, answers */
        mem_durable_remove(me, sh, channel, ch, cb, ud);
        return;
    }
    if (ch && ch->stream) mem_stream_clear(ch->stream);
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_HISTORY_REMOVE,
                  engine_result_new(ENGINE_OP_HISTORY_REMOVE, ENGINE_OK));
}

/* ------------------------------------------------------------- presence */

static mem_member *member_new(const engine_presence_entry *en, int64_t expires_at) {
    size_t ulen = strlen(en->user), ilen = en->info ? en->info_len : 0;
    if (ulen >= UINT32_MAX || ilen >= UINT32_MAX) return NULL;
    mem_member *m = malloc(sizeof(*m) + ulen + 1 + ilen + 1);
    if (!m) return NULL;
    m->expires_at = expires_at;
    m->user_len = (uint32_t)ulen;
    m->info_len = (uint32_t)ilen;
    memcpy(m->data, en->user, ulen + 1);
    if (ilen) memcpy(m->data + ulen + 1, en->info, ilen);
    m->data[ulen + 1 + ilen] = '\0';
    return m;
}

static int member_same(const mem_member *m, const engine_presence_entry *en) {
    size_t ulen = strlen(en->user), ilen = en->info ? en->info_len : 0;
    return m->user_len == ulen && m->info_len == ilen &&
           memcmp(m->data, en->user, ulen) == 0 &&
           (ilen == 0 || memcmp(m->data + ulen + 1, en->info, ilen) == 0);
}

/* Inserts or refreshes; a heartbeat with unchanged data allocates nothing. */
static int presence_put(mem_channel *ch, const engine_presence_entry *en, int64_t expires_at) {
    if (!ch->presence && !(ch->presence = dict_new())) return ENGINE_ERR_INTERNAL;
    void **slot = dict_slot(ch->presence, en->client, strlen(en->client), NULL);
    if (!slot) return ENGINE_ERR_INTERNAL;
    mem_member *old = *slot;
    if (old && member_same(old, en)) {
        old->expires_at = expires_at;
        return ENGINE_OK;
    }
    mem_member *m = member_new(en, expires_at);
    if (!m) {
        if (!old) dict_del(ch->presence, en->client, NULL);
        return ENGINE_ERR_INTERNAL;
    }
    free(old);
    *slot = m;
    return ENGINE_OK;
}

static void mem_presence_add(engine *e, const char *channel, const engine_presence_entry *entry,
                             int64_t ttl_ms, int64_t now_ms, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    int err = ENGINE_ERR_INTERNAL;
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = mem_channel_open(sh, channel, strlen(channel));
    if (ch) {
        err = presence_put(ch, entry, now_ms + ttl_ms);
        mem_channel_gc(sh, channel, ch);
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_PRESENCE_ADD,
                  engine_result_new(ENGINE_OP_PRESENCE_ADD, err));
}

static void mem_presence_remove(engine *e, const char *channel, const char *client,
                                engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = dict_get(sh->channels, channel);
    void *m = NULL;
    if (ch && ch->presence && dict_del(ch->presence, client, &m)) {
        free(m);
        mem_channel_gc(sh, channel, ch);
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_PRESENCE_REMOVE,
                  engine_result_new(ENGINE_OP_PRESENCE_REMOVE, ENGINE_OK));
}

/* Deletes the expired entries of a channel. */
static void presence_prune(mem_channel *ch, int64_t now_ms) {
    if (!ch->presence) return;
    dict_iter it;
    const char *client;
    void *v;
    dict_iter_init(&it, ch->presence);
    while (dict_next(&it, &client, &v)) {
        mem_member *m = v;
        if (now_ms >= m->expires_at) {
            dict_del(ch->presence, client, NULL);
            free(m);
        }
    }
}

/* A private copy of the live entries into res: one block with the entry
 * array followed by their strings. */
static int presence_snapshot(dict *pr, engine_result *res) {
    size_t count = dict_size(pr), bytes = count * sizeof(engine_presence_entry);
    dict_iter it;
    const char *client;
    void *v;
    if (!count) return ENGINE_OK;
    dict_iter_init(&it, pr);
    while (dict_next(&it, &client, &v)) {
        const mem_member *m = v;
        bytes += strlen(client) + 1 + m->user_len + 1 + m->info_len + 1;
    }
    engine_presence_entry *out = malloc(bytes);
    if (!out) return ENGINE_ERR_INTERNAL;
    char *p = (char *)(out + count);
    dict_iter_init(&it, pr);
    for (size_t i = 0; dict_next(&it, &client, &v); i++) {
        const mem_member *m = v;
        size_t clen = strlen(client) + 1, mlen = m->user_len + 1 + m->info_len + 1;
        out[i].client = memcpy(p, client, clen);
        out[i].user = memcpy(p + clen, m->data, mlen);
        out[i].info = out[i].user + m->user_len + 1;
        out[i].info_len = m->info_len;
        p += clen + mlen;
    }
    res->entries = out;
    res->nentries = count;
    return ENGINE_OK;
}

/* Locks the channel's shard and prunes its presence; returns the channel
 * (NULL if it has no presence). The caller unlocks. */
static mem_channel *presence_open(mem_engine *me, const char *channel, int64_t now_ms,
                                  mem_shard **shp) {
    mem_shard *sh = *shp = mem_lock_shard(me, channel);
    mem_channel *ch = dict_get(sh->channels, channel);
    if (!ch || !ch->presence) return NULL;
    presence_prune(ch, now_ms);
    if (dict_size(ch->presence) == 0) {
        mem_channel_gc(sh, channel, ch);
        return NULL;
    }
    return ch;
}

static void mem_presence(engine *e, const char *channel, int64_t now_ms,
                         engine_cb cb, void *ud) {
    engine_result *res = engine_result_new(ENGINE_OP_PRESENCE, ENGINE_OK);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_PRESENCE, NULL); return; }
    mem_shard *sh;
    mem_channel *ch = presence_open((mem_engine *)e, channel, now_ms, &sh);
    if (ch) res->err = presence_snapshot(ch->presence, res);
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_PRESENCE, res);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct user ids among the entries ("" counts as one user). */
static int presence_users(dict *pr, uint32_t *users) {
    size_t n = dict_size(pr), k = 0;
    *users = 0;
    if (!n) return ENGINE_OK;
    const char **u = malloc(n * sizeof(*u));
    if (!u) return ENGINE_ERR_INTERNAL;
    dict_iter it;
    void *v;
    dict_iter_init(&it, pr);
    while (dict_next(&it, NULL, &v)) u[k++] = ((const mem_member *)v)->data;
    qsort(u, n, sizeof(*u), cmp_str);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(u[i], u[i - 1]) != 0) (*users)++;
    free(u);
    return ENGINE_OK;
}

static void mem_presence_stats(engine *e, const char *channel, int64_t now_ms,
                               engine_cb cb, void *ud) {
    engine_result *res = engine_result_new(ENGINE_OP_PRESENCE_STATS, ENGINE_OK);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_PRESENCE_STATS, NULL); return; }
    mem_shard *sh;
    mem_channel *ch = presence_open((mem_engine *)e, channel, now_ms, &sh);
    if (ch) {
        res->num_clients = (uint32_t)dict_size(ch->presence);
        res->err = presence_users(ch->presence, &res->num_users);
        if (res->err) res->num_clients = 0;
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_PRESENCE_STATS, res);
}

/* ------------------------------------------------------------- interest */

static void mem_interest(engine *e, const char *channel, int on, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_op op = on ? ENGINE_OP_SUBSCRIBE : ENGINE_OP_UNSUBSCRIBE;
    int err = ENGINE_OK;
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = on ? mem_channel_open(sh, channel, strlen(channel))
                         : dict_get(sh->channels, channel);
    if (ch) {
        ch->interest = (uint8_t)on;
        mem_channel_gc(sh, channel, ch);
    } else if (on) {
        err = ENGINE_ERR_INTERNAL;
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, op, engine_result_new(op, err));
}

static void mem_subscribe(engine *e, const char *channel, engine_cb cb, void *ud) {
    mem_interest(e, channel, 1, cb, ud);
}

static void mem_unsubscribe(engine *e, const char *channel, engine_cb cb, void *ud) {
    mem_interest(e, channel, 0, cb, ud);
}

/* ------------------------------------------------------- housekeeping */

/* Returns how many channels it freed. */
static size_t shard_sweep(mem_engine *me, mem_shard *sh, int64_t now_ms) {
    dict_iter it;
    const char *name;
    void *v;
    pthread_mutex_lock(&sh->lock);
    size_t before = dict_size(sh->channels);
    dict_iter_init(&it, sh->channels);
    while (dict_next(&it, &name, &v)) {
        mem_channel *ch = v;
        if (ch->map) mem_map_sweep(me, sh, ch, name, now_ms);
        if (ch->board) mem_board_sweep(ch->board, now_ms);
        if (ch->stream) mem_stream_expire(ch->stream, now_ms);
        if (ch->stream && me->async) mem_durable_sweep(me, name, ch->stream, now_ms);
        presence_prune(ch, now_ms);
        mem_channel_gc(sh, name, ch);             /* deletes only the current entry */
    }
    size_t freed = before - dict_size(sh->channels);
    pthread_mutex_unlock(&sh->lock);
    return freed;
}

size_t engine_memory_sweep(engine *e, int64_t now_ms) {
    mem_engine *me = (mem_engine *)e;
    size_t freed = 0;
    for (unsigned i = 0; i < MEM_SHARDS; i++) freed += shard_sweep(me, &me->shards[i], now_ms);
    return freed;
}

/* Hands free pages back to the system once many channels were freed, or
 * once a run of frees has ended (a sweep that freed nothing after some
 * that did): glibc keeps them in the arenas of the threads that allocated
 * them (the workers), and the memory of names no longer used would
 * otherwise stay in the RSS. At most one trim per sweep. */
#define MEM_TRIM_AFTER 10000

static void give_back(mem_engine *me, size_t freed) {
    me->untrimmed += freed;
    if (!me->untrimmed || (me->untrimmed < MEM_TRIM_AFTER && freed)) return;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    me->untrimmed = 0;
}

static void sweeper_main(void *arg) {
    mem_engine *me = arg;
    uv_mutex_lock(&me->sweep_lock);
    while (!me->stop) {
        if (uv_cond_timedwait(&me->sweep_cond, &me->sweep_lock, me->sweep_interval_ns) != 0 &&
            !me->stop) {
            uv_mutex_unlock(&me->sweep_lock);
            give_back(me, engine_memory_sweep(&me->base, clock_now_ms()));
            uv_mutex_lock(&me->sweep_lock);
        }
    }
    uv_mutex_unlock(&me->sweep_lock);
}

void engine_memory_counts_get(engine *e, engine_memory_counts *out) {
    mem_engine *me = (mem_engine *)e;
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < MEM_SHARDS; i++) {
        mem_shard *sh = &me->shards[i];
        dict_iter it;
        void *v;
        pthread_mutex_lock(&sh->lock);
        out->channels += dict_size(sh->channels);
        dict_iter_init(&it, sh->channels);
        while (dict_next(&it, NULL, &v)) {
            const mem_channel *ch = v;
            out->streams += ch->stream != NULL;
            out->publications += ch->stream ? ch->stream->count : 0;
            out->presence += ch->presence ? dict_size(ch->presence) : 0;
        }
        pthread_mutex_unlock(&sh->lock);
    }
}

static void mem_gauges(engine *e, engine_gauge_fn fn, void *ud) {
    engine_memory_counts c;
    engine_memory_counts_get(e, &c);
    fn(ud, "plaza_engine_channels", "Channels the engine holds state for.", c.channels);
    fn(ud, "plaza_engine_streams", "Channels with a history stream (offset and epoch).", c.streams);
    fn(ud, "plaza_engine_history_publications", "Publications kept in history.", c.publications);
    fn(ud, "plaza_engine_presence_entries", "Presence entries.", c.presence);
    if (((mem_engine *)e)->store) mem_durable_gauges((mem_engine *)e, fn, ud);
}

/* Answers are never late, but for publications waiting for their commit:
 * the store commits what it has and answers them now. */
static void mem_quiesce(engine *e) {
    mem_boards_stop((mem_engine *)e);     /* open batches out, boards logged */
    mem_durable_close((mem_engine *)e);
}

static void sweeper_stop(mem_engine *me) {
    if (!me->sweeping) return;
    uv_mutex_lock(&me->sweep_lock);
    me->stop = 1;
    uv_cond_signal(&me->sweep_cond);
    uv_mutex_unlock(&me->sweep_lock);
    uv_thread_join(&me->sweeper);
    me->sweeping = 0;
}

static void mem_destroy(engine *e) {
    mem_engine *me = (mem_engine *)e;
    if (!me) return;
    sweeper_stop(me);
    mem_boards_stop(me);
    mem_durable_close(me);            /* answers what waits for a commit */
    store_close(me->store);
    uv_cond_destroy(&me->sweep_cond);
    uv_mutex_destroy(&me->sweep_lock);
    for (unsigned i = 0; i < MEM_SHARDS; i++) {
        dict_free(me->shards[i].channels, channel_free);
        pthread_mutex_destroy(&me->shards[i].lock);
    }
    free(me->shards);
    free(me);
}

static const engine_ops mem_ops = {
    .publish = mem_publish,
    .publish_join = mem_publish_join,
    .publish_leave = mem_publish_leave,
    .history = mem_history,
    .history_remove = mem_history_remove,
    .presence_add = mem_presence_add,
    .presence_remove = mem_presence_remove,
    .presence = mem_presence,
    .presence_stats = mem_presence_stats,
    .subscribe = mem_subscribe,
    .unsubscribe = mem_unsubscribe,
    .map_write = mem_map_write,
    .map_state = mem_map_state,
    .map_stats = mem_map_stats,
    .map_clear = mem_map_clear,
    .board_put = mem_board_put,
    .board_snapshot = mem_board_snapshot,
    .control = mem_control,
    .gauges = mem_gauges,
    .quiesce = mem_quiesce,
    .destroy = mem_destroy,
};

static int shards_init(mem_engine *me) {
    me->shards = aligned_alloc(_Alignof(mem_shard), MEM_SHARDS * sizeof(mem_shard));
    if (!me->shards) return -1;
    unsigned i;
    for (i = 0; i < MEM_SHARDS; i++) {
        mem_shard *sh = &me->shards[i];
        sh->rng = seed64(i);
        sh->keep_until = 0;
        if (!(sh->channels = dict_new())) break;
        if (pthread_mutex_init(&sh->lock, NULL)) { dict_free(sh->channels, NULL); break; }
    }
    if (i == MEM_SHARDS) return 0;
    while (i--) {
        dict_free(me->shards[i].channels, NULL);
        pthread_mutex_destroy(&me->shards[i].lock);
    }
    free(me->shards);
    me->shards = NULL;
    return -1;
}

engine *engine_memory_open(const config *cfg, const engine_events *events,
                           char *err, size_t errlen) {
    engine *e = engine_memory_new(cfg, events);
    if (!e) {
        snprintf(err, errlen, "engine.type \"memory\": out of memory");
        return NULL;
    }
    if (!cfg->store_path || !cfg->store_path[0]) return e;
    mem_engine *me = (mem_engine *)e;
    if (mem_durable_open(me, cfg, err, errlen)) {
        mem_destroy(e);
        return NULL;
    }
    int64_t grace = clock_now_ms() + MEM_REPLAY_GRACE_MS;
    for (unsigned i = 0; i < MEM_SHARDS; i++) {
        pthread_mutex_lock(&me->shards[i].lock);
        me->shards[i].keep_until = grace;
        pthread_mutex_unlock(&me->shards[i].lock);
    }
    return e;
}

engine *engine_memory_new(const config *cfg, const engine_events *events) {
    mem_engine *me = calloc(1, sizeof(*me));
    if (!me) return NULL;
    me->base.ops = &mem_ops;
    if (events) me->base.events = *events;
    if (shards_init(me)) { free(me); return NULL; }
    uv_mutex_init(&me->sweep_lock);
    uv_cond_init(&me->sweep_cond);
    if (mem_boards_start(me)) { mem_destroy(&me->base); return NULL; }
    int interval = cfg ? cfg->engine_sweep_interval_ms : 0;   /* 0: no thread (tests sweep by hand) */
    if (interval > 0) {
        me->sweep_interval_ns = (uint64_t)interval * 1000000u;
        if (uv_thread_create(&me->sweeper, sweeper_main, me) != 0) {
            mem_destroy(&me->base);
            return NULL;
        }
        me->sweeping = 1;
    }
    return &me->base;
}
