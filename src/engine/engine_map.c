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
 * With the durable log (engine_map_log.c) a change is logged first and
 * seen once committed; conditions compare with the latest change, readers
 * see committed ones only (mem_map_entry in engine_memory_int.h). Without
 * it, a change is made and reported at once.
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

uint32_t mem_map_find(const mem_map *m, const char *key, size_t len, int *found) {
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
    engine_pub_unref(&e->seen);
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

int mem_map_insert(mem_map *m, uint32_t at, mem_map_entry *e) {
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

void mem_map_delete(mem_map *m, uint32_t at) {
    entry_free(m->v[at]);
    memmove(&m->v[at], &m->v[at + 1], (size_t)(m->n - at - 1) * sizeof(*m->v));
    m->n--;
    if (m->n == 0) { free(m->v); m->v = NULL; m->cap = 0; }
}

int mem_map_set_version(mem_map_entry *e, uint64_t version, const char *epoch) {
    if (!version) return 0;
    char *ep = epoch && epoch[0] ? strdup(epoch) : NULL;
    if (epoch && epoch[0] && !ep) return -1;
    free(e->version_epoch);
    e->version_epoch = ep;
    e->version = version;
    return 0;
}

static int expired(const mem_map_entry *e, int64_t now_ms) {
    return e->expires_at && now_ms >= e->expires_at;
}

/* What readers see of an entry, or NULL (expired, or not committed yet). */
static const engine_pub *entry_view(const mem_map_entry *e, int64_t now_ms) {
    if (expired(e, now_ms)) return NULL;
    if (e->pending) return e->seen.payload ? &e->seen : NULL;
    return &e->pub;
}

/* The latest change is a value (not a removal on its way). */
static int latest_present(const mem_map_entry *e) {
    return e && !(e->pub.flags & ENGINE_PUB_REMOVED);
}

/* ------------------------------------------------------------ changes */

void mem_map_report(mem_engine *me, const char *channel, const mem_map *m, mem_stream *st,
                    engine_pub *pub) {
    if (m->stream_size > 0) {
        st->ttl_ms = m->stream_ttl_ms;
        mem_stream_append(st, pub, (uint32_t)m->stream_size);
    } else {
        pub->flags |= ENGINE_PUB_UNSTREAMED;
    }
    if (me->base.events.on_publication)
        me->base.events.on_publication(me->base.events.ud, channel, pub);
}

/* Without the log: the change is made and reported now. */
static int change_now(mem_engine *me, mem_stream *st, mem_map *m, const mem_map_change *c) {
    mem_map_entry *e = c->found ? m->v[c->at] : NULL;
    engine_pub pub = {.time_ms = c->now_ms};
    if (!c->payload) {                                   /* a removal */
        pub.payload = rcbuf_new(0);
        pub.key = rcbuf_ref(e->pub.key);
        pub.flags = ENGINE_PUB_REMOVED;
        if (!pub.payload) { rcbuf_unref(pub.key); return ENGINE_ERR_INTERNAL; }
        mem_map_delete(m, c->at);
        e = NULL;
    } else {
        if (!e) {
            rcbuf *key = engine_key_new(c->key, c->key_len);
            e = key ? calloc(1, sizeof(*e)) : NULL;
            if (!e || mem_map_insert(m, c->at, e) != 0) {
                if (key) rcbuf_unref(key);
                free(e);
                return ENGINE_ERR_INTERNAL;
            }
            e->pub.key = key;
        }
        if (mem_map_set_version(e, c->version, c->version_epoch)) return ENGINE_ERR_INTERNAL;
        if (e->pub.payload) rcbuf_unref(e->pub.payload);
        e->pub.payload = rcbuf_ref(c->payload);
        e->pub.flags = 0;
        e->expires_at = c->expires_at;
        pub = e->pub;
        engine_pub_ref(&pub);
    }
    pub.offset = st->next = ++st->top;
    pub.time_ms = c->now_ms;
    if (e && c->payload) e->pub.offset = pub.offset, e->pub.time_ms = c->now_ms;
    mem_map_report(me, c->channel, m, st, &pub);
    if (e && c->payload) e->pub.flags = pub.flags;
    engine_pub_unref(&pub);
    return ENGINE_OK;
}

/* Makes a change: now, or through the log (answered later: 1). */
static int change(mem_engine *me, mem_channel *ch, mem_stream *st,
                  const mem_map_change *c, engine_result *res, engine_cb cb, void *ud) {
    if (!me->store) return change_now(me, st, ch->map, c);
    int err = mem_map_stage(me, ch, c, res, cb, ud);
    return err ? err : 1;
}

/* Removes every expired key (a change each) and forgets expired
 * idempotency records. Under the shard lock. */
static void map_expire(mem_engine *me, mem_shard *sh, mem_channel *ch, const char *channel,
                       int64_t now_ms) {
    mem_map *m = ch->map;
    if (!m) return;
    mem_stream *st = NULL;
    for (uint32_t i = 0; i < m->n; i++) {
        mem_map_entry *e = m->v[i];
        if (!expired(e, now_ms) || e->pending) continue;  /* a pending change decides */
        if (!st && !(st = mem_stream_open(sh, ch))) return;
        mem_map_change c = {.channel = channel, .key = key_of(e), .key_len = e->pub.key->len,
                            .at = i, .found = 1, .now_ms = now_ms};
        if (change(me, ch, st, &c, NULL, NULL, NULL) < 0) return;
        if (!me->store) i--;                          /* the entry is gone: same index again */
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

/* Why req cannot be applied to the key's latest change (NULL = absent). */
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

/* The channel's map and stream, created if needed, set to req's options. */
static mem_stream *open_map(mem_shard *sh, mem_channel *ch, const engine_map_opts *o) {
    if (!ch->map && !(ch->map = calloc(1, sizeof(mem_map)))) return NULL;
    ch->map->stream_size = o->stream_size;
    ch->map->stream_ttl_ms = o->stream_ttl_ms;
    ch->map->key_ttl_ms = o->key_ttl_ms;
    return mem_stream_open(sh, ch);
}

/* Returns ENGINE_OK (answered: res filled), 1 (answered later), or an error. */
static int write_locked(mem_engine *me, mem_shard *sh, const engine_map_write_req *req,
                        engine_result *res, engine_cb cb, void *ud) {
    mem_channel *ch = mem_channel_open(sh, req->channel, strlen(req->channel));
    mem_stream *st = ch ? open_map(sh, ch, &req->map) : NULL;
    if (!st) return ENGINE_ERR_INTERNAL;
    mem_map *m = ch->map;
    map_expire(me, sh, ch, req->channel, req->now_ms);
    mem_stream_expire(st, req->now_ms);
    mem_map_change c = {.channel = req->channel, .key = req->key, .key_len = req->key_len,
                        .payload = req->remove ? NULL : req->payload, .version = req->version,
                        .version_epoch = req->version_epoch, .now_ms = req->now_ms,
                        .expires_at = req->map.key_ttl_ms > 0 ? req->now_ms + req->map.key_ttl_ms : 0};
    c.at = mem_map_find(m, req->key, req->key_len, &c.found);
    mem_map_entry *e = c.found ? m->v[c.at] : NULL;
    int why = idem_seen(m, req) ? ENGINE_SUPPRESS_IDEMPOTENCY
                                : suppress_reason(req, latest_present(e) ? e : NULL, st);
    res->suppressed = why;
    mem_top_of(st, &res->top);
    if (why == ENGINE_SUPPRESS_KEY_EXISTS && req->refresh_ttl_on_suppress && req->map.key_ttl_ms > 0)
        e->expires_at = req->now_ms + req->map.key_ttl_ms;
    if (why != ENGINE_SUPPRESS_NONE) return ENGINE_OK;
    int rc = change(me, ch, st, &c, res, cb, ud);
    if (rc >= 0) idem_record(m, req);
    if (rc == ENGINE_OK) mem_top_of(st, &res->top);
    return rc;
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
    int rc = write_locked(me, sh, req, res, cb, ud);
    mem_channel *ch = dict_get(sh->channels, req->channel);
    if (ch) mem_channel_gc(sh, req->channel, ch);
    pthread_mutex_unlock(&sh->lock);
    if (rc == 1) return;                         /* answered once committed */
    res->err = rc;
    engine_answer(cb, ud, ENGINE_OP_MAP_WRITE, res);
}

/* --------------------------------------------------------------- read */

/* Copies (references) what readers see of up to limit entries from index
 * from on (limit < 0: all); *next = the index after the last one looked at. */
static int copy_visible(const mem_map *m, uint32_t from, int limit, int64_t now_ms,
                        engine_result *res, uint32_t *next) {
    size_t cap = limit < 0 || (uint32_t)limit > m->n - from ? m->n - from : (size_t)limit;
    engine_pub *pubs = cap ? malloc(cap * sizeof(*pubs)) : NULL;
    if (cap && !pubs) return ENGINE_ERR_INTERNAL;
    size_t k = 0;
    uint32_t i = from;
    for (; i < m->n && k < cap; i++) {
        const engine_pub *v = entry_view(m->v[i], now_ms);
        if (!v) continue;
        pubs[k] = *v;
        engine_pub_ref(&pubs[k++]);
    }
    if (!k) { free(pubs); pubs = NULL; }
    res->pubs = pubs;
    res->npubs = k;
    *next = i;
    return ENGINE_OK;
}

static int state_page(const mem_map *m, const engine_map_state_req *req, engine_result *res) {
    int found = 0;
    uint32_t from = 0, next;
    if (!m) return ENGINE_OK;
    if (req->key) {
        from = mem_map_find(m, req->key, strlen(req->key), &found);
        return found ? copy_visible(m, from, 1, req->now_ms, res, &next) : ENGINE_OK;
    }
    if (req->cursor && req->cursor[0]) {
        from = mem_map_find(m, req->cursor, strlen(req->cursor), &found);
        if (found) from++;                          /* the cursor is the last key given */
    }
    if (copy_visible(m, from, req->limit, req->now_ms, res, &next) != ENGINE_OK)
        return ENGINE_ERR_INTERNAL;
    while (next < m->n && !entry_view(m->v[next], req->now_ms)) next++;
    if (res->npubs && next < m->n &&
        !(res->cursor = strdup((const char *)res->pubs[res->npubs - 1].key->data)))
        return ENGINE_ERR_INTERNAL;
    return ENGINE_OK;
}

void mem_map_state(engine *e, const engine_map_state_req *req, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_MAP_STATE, ENGINE_ERR_INTERNAL);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_MAP_STATE, NULL); return; }
    mem_shard *sh = mem_lock_shard(me, req->channel);
    mem_channel *ch = mem_channel_open(sh, req->channel, strlen(req->channel));
    mem_stream *st = ch ? mem_stream_open_read(me, sh, ch, req->channel, req->now_ms) : NULL;
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
        for (uint32_t i = 0; ch->map && i < ch->map->n; i++)
            res->num_keys += entry_view(ch->map->v[i], now_ms) != NULL;
        mem_channel_gc(sh, channel, ch);
    }
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_MAP_STATS, res);
}

/* Every key is removed as a change of its own, so live subscribers see
 * the map empty without a resync, and offsets go on. With the log, the
 * answer comes with the last removal's commit. */
void mem_map_clear(engine *e, const char *channel, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_MAP_CLEAR, ENGINE_OK);
    if (!res) { engine_answer(cb, ud, ENGINE_OP_MAP_CLEAR, NULL); return; }
    int64_t now_ms = clock_now_ms();
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = dict_get(sh->channels, channel);
    mem_stream *st = ch && ch->map ? mem_stream_open(sh, ch) : NULL;
    int rc = ENGINE_OK;
    uint32_t first = 0;                            /* the last removal (lowest index) answers */
    while (st && first < ch->map->n && !latest_present(ch->map->v[first])) first++;
    for (uint32_t i = st ? ch->map->n : 0; i-- > first && rc == ENGINE_OK;) {
        mem_map_entry *en = ch->map->v[i];
        if (!latest_present(en)) continue;
        int last = i == first;
        mem_map_change c = {.channel = channel, .key = key_of(en), .key_len = en->pub.key->len,
                            .at = i, .found = 1, .now_ms = now_ms};
        rc = change(me, ch, st, &c, last ? res : NULL, last ? cb : NULL, last ? ud : NULL);
        if (rc == 1) { rc = ENGINE_OK; if (last) res = NULL; }
    }
    if (ch && ch->map) {
        dict_free(ch->map->idem, NULL);
        ch->map->idem = NULL;
    }
    if (res && st) mem_top_of(st, &res->top);
    if (ch) mem_channel_gc(sh, channel, ch);
    pthread_mutex_unlock(&sh->lock);
    if (!res) return;                               /* the last removal answers */
    res->err = rc;
    engine_answer(cb, ud, ENGINE_OP_MAP_CLEAR, res);
}
