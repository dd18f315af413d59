/* engine_map: map channels in the memory engine (see engine.h, "maps").
 * A map is a sorted array of entries per channel, next to the channel's
 * stream (engine_memory.c): every change takes the stream's next offset,
 * goes into its ring when the map keeps a stream, and is reported through
 * on_publication under the shard lock, so a channel's changes and its
 * other events keep one order.
 *
 * Why a sorted array: state pages are read in key order with a cursor (the
 * last key of the previous page), which a binary search finds; lookups are
 * binary searches too. A new key costs a memmove of the pointers after it
 * (8 bytes each: 80 KB for a map of 10,000 keys), which maps of the size
 * shared state has (lots, switches, who is here) afford.
 *
 * Expiry: keys with a TTL are removed by the sweeper, and by any operation
 * on the channel that meets one first, so a read never returns an expired
 * key and the removal is reported exactly once. */
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "engine/engine_memory_int.h"

/* ------------------------------------------------------------ entries */

static const char *key_of(const mem_map_entry *e) { return (const char *)e->pub.key->data; }

/* Bytes, then length: the order pages are read in. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* The index of key, or of where it would go (*found = 0). */
static uint32_t map_find(const mem_map *m, const char *key, size_t len, int *found) {
    uint32_t lo = 0, hi = m->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const mem_map_entry *e = m->v[mid];
        int c = key_cmp(key_of(e), e->pub.key->len, key, len);
        if (c == 0) { *found = 1; return mid; }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = 0;
    return lo;
}

static void entry_free(mem_map_entry *e) {
    engine_pub_unref(&e->pub);
    free(e->version_epoch);
    free(e);
}

void mem_map_free(mem_map *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->n; i++) entry_free(m->v[i]);
    free(m->v);
    dict_free(m->idem, NULL);
    free(m);
}

static int map_insert(mem_map *m, uint32_t at, mem_map_entry *e) {
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 4;
        mem_map_entry **v = realloc(m->v, (size_t)cap * sizeof(*v));
        if (!v) return -1;
        m->v = v;
        m->cap = cap;
    }
    memmove(&m->v[at + 1], &m->v[at], (size_t)(m->n - at) * sizeof(*m->v));
    m->v[at] = e;
    m->n++;
    return 0;
}

static void map_delete(mem_map *m, uint32_t at) {
    entry_free(m->v[at]);
    memmove(&m->v[at], &m->v[at + 1], (size_t)(m->n - at - 1) * sizeof(*m->v));
    m->n--;
    if (m->n == 0) { free(m->v); m->v = NULL; m->cap = 0; }
}

/* A key buffer: the bytes, NUL-terminated (not counted in len). */
static rcbuf *key_buf(const char *key, size_t len) {
    rcbuf *b = rcbuf_new(len + 1);
    if (!b) return NULL;
    memcpy(b->data, key, len);
    b->data[len] = '\0';
    b->len = (uint32_t)len;
    return b;
}

/* ------------------------------------------------------------ changes */

/* Takes the next offset for a change, appends it to the stream (if the map
 * keeps one) and reports it. pub has payload and key set; the stream and
 * the event take their own references. */
static void map_change(mem_engine *me, mem_stream *st, const mem_map *m, const char *channel,
                       engine_pub *pub, int64_t now_ms) {
    pub->offset = st->next = ++st->top;
    pub->time_ms = now_ms;
    if (m->stream_size > 0) {
        st->ttl_ms = m->stream_ttl_ms;
        mem_stream_append(st, pub, (uint32_t)m->stream_size);
    } else {
        pub->flags |= ENGINE_PUB_UNSTREAMED;
    }
    if (me->base.events.on_publication)
        me->base.events.on_publication(me->base.events.ud, channel, pub);
}

/* Removes the entry at index i as a change (a removal, with its event). */
static int map_remove_at(mem_engine *me, mem_stream *st, mem_map *m, const char *channel,
                         uint32_t i, int64_t now_ms) {
    engine_pub pub = {.payload = rcbuf_new(0), .key = m->v[i]->pub.key,
                      .flags = ENGINE_PUB_REMOVED};
    if (!pub.payload) return ENGINE_ERR_INTERNAL;
    rcbuf_ref(pub.key);
    map_delete(m, i);
    map_change(me, st, m, channel, &pub, now_ms);
    engine_pub_unref(&pub);
    return ENGINE_OK;
}

static int expired(const mem_map_entry *e, int64_t now_ms) {
    return e->expires_at && now_ms >= e->expires_at;
}

/* Removes every expired key (a change each) and forgets expired
 * idempotency records. Under the shard lock. */
static void map_expire(mem_engine *me, mem_shard *sh, mem_channel *ch, const char *channel,
                       int64_t now_ms) {
    mem_map *m = ch->map;
    if (!m) return;
    mem_stream *st = NULL;
    for (uint32_t i = 0; i < m->n;) {
        if (!expired(m->v[i], now_ms)) { i++; continue; }
        if (!st && !(st = mem_stream_open(sh, ch))) return;
        if (map_remove_at(me, st, m, channel, i, now_ms) != ENGINE_OK) return;
    }
    if (m->idem) {
        dict_iter it;
        const char *k;
        void *v;
        dict_iter_init(&it, m->idem);
        while (dict_next(&it, &k, &v))
            if (now_ms >= (int64_t)(intptr_t)v) dict_del(m->idem, k, NULL);
    }
}

void mem_map_sweep(mem_engine *me, mem_shard *sh, mem_channel *ch, const char *channel,
                   int64_t now_ms) {
    map_expire(me, sh, ch, channel, now_ms);
}

/* -------------------------------------------------------------- write */

static int same_epoch(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Why req cannot be applied to the entry (NULL = absent), or NONE. */
static int suppress_reason(const engine_map_write_req *req, const mem_map_entry *e,
                           const mem_stream *st) {
    if (req->has_expected &&
        (!e || e->pub.offset != req->expected_offset ||
         (req->expected_epoch && req->expected_epoch[0] && strcmp(req->expected_epoch, st->epoch))))
        return ENGINE_SUPPRESS_POSITION_MISMATCH;
    if (req->remove) return e ? ENGINE_SUPPRESS_NONE : ENGINE_SUPPRESS_KEY_NOT_FOUND;
    if (req->key_mode == ENGINE_KEY_IF_NEW && e) return ENGINE_SUPPRESS_KEY_EXISTS;
    if (req->key_mode == ENGINE_KEY_IF_EXISTS && !e) return ENGINE_SUPPRESS_KEY_NOT_FOUND;
    if (req->version && e && e->version && same_epoch(e->version_epoch, req->version_epoch) &&
        req->version <= e->version)
        return ENGINE_SUPPRESS_VERSION;
    return ENGINE_SUPPRESS_NONE;
}

/* Writes the key (new or replaced) as a change. */
static int map_put(mem_engine *me, mem_stream *st, mem_map *m, const engine_map_write_req *req,
                   uint32_t at, int found) {
    mem_map_entry *e = found ? m->v[at] : calloc(1, sizeof(*e));
    char *vep = req->version && req->version_epoch && req->version_epoch[0]
                ? strdup(req->version_epoch) : NULL;
    rcbuf *key = found ? NULL : key_buf(req->key, req->key_len);
    if (!e || (!found && !key) || (req->version && req->version_epoch && req->version_epoch[0] && !vep)) {
        if (!found) free(e);
        free(vep);
        if (key) rcbuf_unref(key);
        return ENGINE_ERR_INTERNAL;
    }
    if (!found) {
        e->pub.key = key;
        if (map_insert(m, at, e) != 0) { free(vep); entry_free(e); return ENGINE_ERR_INTERNAL; }
    }
    if (e->pub.payload) rcbuf_unref(e->pub.payload);
    e->pub.payload = rcbuf_ref(req->payload);
    e->pub.flags = 0;
    e->expires_at = req->map.key_ttl_ms > 0 ? req->now_ms + req->map.key_ttl_ms : 0;
    if (req->version) {
        free(e->version_epoch);
        e->version_epoch = vep;
        e->version = req->version;
    }
    map_change(me, st, m, req->channel, &e->pub, req->now_ms);
    return ENGINE_OK;
}

static int idem_seen(const mem_map *m, const engine_map_write_req *req) {
    if (!req->idempotency_key || !req->idempotency_key[0] || !m->idem) return 0;
    void *v = dict_get(m->idem, req->idempotency_key);
    return v && req->now_ms < (int64_t)(intptr_t)v;
}

static void idem_record(mem_map *m, const engine_map_write_req *req) {
    if (!req->idempotency_key || !req->idempotency_key[0]) return;
    if (!m->idem && !(m->idem = dict_new())) return;
    int64_t ttl = req->idempotent_ttl_ms > 0 ? req->idempotent_ttl_ms : 300000;
    dict_set(m->idem, req->idempotency_key, (void *)(intptr_t)(req->now_ms + ttl));
}

static int write_locked(mem_engine *me, mem_shard *sh, const engine_map_write_req *req,
                        engine_result *res) {
    mem_channel *ch = mem_channel_open(sh, req->channel, strlen(req->channel));
    if (!ch) return ENGINE_ERR_INTERNAL;
    if (!ch->map && !(ch->map = calloc(1, sizeof(mem_map)))) return ENGINE_ERR_INTERNAL;
    mem_stream *st = mem_stream_open(sh, ch);
    if (!st) return ENGINE_ERR_INTERNAL;
    mem_map *m = ch->map;
    m->stream_size = req->map.stream_size;
    m->stream_ttl_ms = req->map.stream_ttl_ms;
    map_expire(me, sh, ch, req->channel, req->now_ms);
    mem_stream_expire(st, req->now_ms);
    int found;
    uint32_t at = map_find(m, req->key, req->key_len, &found);
    mem_map_entry *e = found ? m->v[at] : NULL;
    int why = idem_seen(m, req) ? ENGINE_SUPPRESS_IDEMPOTENCY : suppress_reason(req, e, st);
    int err = ENGINE_OK;
    if (why == ENGINE_SUPPRESS_KEY_EXISTS && req->refresh_ttl_on_suppress && req->map.key_ttl_ms > 0)
        e->expires_at = req->now_ms + req->map.key_ttl_ms;
    if (why == ENGINE_SUPPRESS_NONE) {
        err = req->remove ? map_remove_at(me, st, m, req->channel, at, req->now_ms)
                          : map_put(me, st, m, req, at, found);
        if (!err) idem_record(m, req);
    }
    res->suppressed = why;
    mem_top_of(st, &res->top);
    return err;
}

void mem_map_write(engine *e, const engine_map_write_req *req, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_MAP_WRITE, ENGINE_OK);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_MAP_WRITE, NULL); return; }
    if (!req->key_len || (!req->remove && !req->payload)) {
        res->err = ENGINE_ERR_INTERNAL;         /* the protocol layer checks both */
        engine_answer(cb, ud, ENGINE_OP_MAP_WRITE, res);
        return;
    }
    mem_shard *sh = mem_lock_shard(me, req->channel);
    res->err = write_locked(me, sh, req, res);
    mem_channel *ch = dict_get(sh->channels, req->channel);
    if (ch) mem_channel_gc(sh, req->channel, ch);
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_MAP_WRITE, res);
}

/* --------------------------------------------------------------- read */

/* References entries [from, from + k) into res->pubs. */
static int copy_entries(const mem_map *m, uint32_t from, uint32_t k, engine_result *res) {
    if (!k) return ENGINE_OK;
    engine_pub *pubs = malloc((size_t)k * sizeof(*pubs));
    if (!pubs) return ENGINE_ERR_INTERNAL;
    for (uint32_t i = 0; i < k; i++) {
        pubs[i] = m->v[from + i]->pub;
        engine_pub_ref(&pubs[i]);
    }
    res->pubs = pubs;
    res->npubs = k;
    return ENGINE_OK;
}

static int state_page(const mem_map *m, const engine_map_state_req *req, engine_result *res) {
    int found = 0;
    if (!m) return ENGINE_OK;
    if (req->key) {
        uint32_t at = map_find(m, req->key, strlen(req->key), &found);
        return found ? copy_entries(m, at, 1, res) : ENGINE_OK;
    }
    uint32_t from = 0;
    if (req->cursor && req->cursor[0]) {
        from = map_find(m, req->cursor, strlen(req->cursor), &found);
        if (found) from++;                          /* the cursor is the last key given */
    }
    uint32_t left = m->n - from;
    uint32_t k = req->limit < 0 || (uint32_t)req->limit > left ? left : (uint32_t)req->limit;
    if (copy_entries(m, from, k, res) != ENGINE_OK) return ENGINE_ERR_INTERNAL;
    if (k && from + k < m->n && !(res->cursor = strdup(key_of(m->v[from + k - 1]))))
        return ENGINE_ERR_INTERNAL;
    return ENGINE_OK;
}

void mem_map_state(engine *e, const engine_map_state_req *req, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_MAP_STATE, ENGINE_ERR_INTERNAL);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_MAP_STATE, NULL); return; }
    mem_shard *sh = mem_lock_shard(me, req->channel);
    mem_channel *ch = mem_channel_open(sh, req->channel, strlen(req->channel));
    mem_stream *st = ch ? mem_stream_open(sh, ch) : NULL;
    if (st) {
        map_expire(me, sh, ch, req->channel, req->now_ms);
        mem_top_of(st, &res->top);
        if (req->epoch && req->epoch[0] && strcmp(req->epoch, st->epoch))
            res->err = ENGINE_ERR_EPOCH;
        else if (req->limit == 0 && !req->key)
            res->err = ENGINE_OK;
        else
            res->err = state_page(ch->map, req, res);
    }
    if (ch) mem_channel_gc(sh, req->channel, ch);
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_MAP_STATE, res);
}

void mem_map_stats(engine *e, const char *channel, int64_t now_ms, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_MAP_STATS, ENGINE_OK);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_MAP_STATS, NULL); return; }
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = dict_get(sh->channels, channel);
    if (ch && ch->map) {
        map_expire(me, sh, ch, channel, now_ms);
        res->num_keys = ch->map ? ch->map->n : 0;
        mem_channel_gc(sh, channel, ch);
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_MAP_STATS, res);
}

/* Every key is removed as a change of its own, so live subscribers see
 * the map empty without a resync, and offsets go on. */
void mem_map_clear(engine *e, const char *channel, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_MAP_CLEAR, ENGINE_OK);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_MAP_CLEAR, NULL); return; }
    int64_t now_ms = clock_now_ms();
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = dict_get(sh->channels, channel);
    mem_stream *st = ch && ch->map ? mem_stream_open(sh, ch) : NULL;
    while (st && ch->map->n && !res->err)
        res->err = map_remove_at(me, st, ch->map, channel, ch->map->n - 1, now_ms);
    if (ch && ch->map) {
        dict_free(ch->map->idem, NULL);
        ch->map->idem = NULL;
    }
    if (st) mem_top_of(st, &res->top);
    if (ch) mem_channel_gc(sh, channel, ch);
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_MAP_CLEAR, res);
}
