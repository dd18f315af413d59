/* engine_map_log: map changes through the durable log (store.path set).
 *
 * A change is logged first (STORE_MAP_PUT / STORE_MAP_REMOVE, with the
 * offset it takes: stream.next) and becomes the key's latest change at once,
 * so the conditions of the writes that follow compare with it; readers and
 * subscribers see it only once its commit is on disk (map_done, on the
 * store thread, in append order: so in offset order), exactly as a
 * publication in sync mode. That holds with store.durability async too:
 * a conditional write must never be acknowledged and then lost.
 *
 * A failed commit voids every change of the channel still in flight
 * (stream.gen), rewinds stream.next and puts every key back to its last
 * committed change: those offsets were never seen, and are assigned again.
 *
 * Known limit: a change voided by a failed commit whose record still
 * reached the disk in a later commit is replayed (a gap no longer tells it
 * apart: retention makes gaps too).
 *
 * Replay rebuilds entries (with their expiry from the namespace's key TTL
 * and their version from the record's aux bytes) and the stream ring; keys
 * that expired while Plaza was down are removed by the first sweep, as
 * changes, so clients that recover are told. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "engine/engine_memory_int.h"
#include "obs/log.h"

/* A change waiting for its commit. */
typedef struct map_wait {
    mem_engine *me;
    engine_cb cb;                /* NULL: nobody waits (expiry, clear) */
    void *ud;
    engine_result *res;
    engine_pub pub;              /* the change, referenced */
    uint32_t gen;
    char channel[];
} map_wait;

/* aux: the version (8 bytes, little endian) then the version epoch. */
static size_t aux_encode(uint8_t *out, size_t cap, uint64_t version, const char *epoch) {
    size_t el = epoch ? strlen(epoch) : 0;
    if (!version || 8 + el > cap) return 0;
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(version >> (8 * i));
    memcpy(out + 8, epoch ? epoch : "", el);
    return 8 + el;
}

static uint64_t aux_version(const uint8_t *aux, size_t len, char *epoch, size_t cap) {
    uint64_t v = 0;
    epoch[0] = '\0';
    if (!aux || len < 8) return 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)aux[i] << (8 * i);
    snprintf(epoch, cap, "%.*s", (int)(len - 8), (const char *)aux + 8);
    return v;
}

/* --------------------------------------------------------- the commit */

/* Every key back to its last committed change (a failed commit voided the
 * rest). */
static void revert(mem_map *m) {
    for (uint32_t i = m->n; i-- > 0;) {
        mem_map_entry *e = m->v[i];
        if (!e->pending) continue;
        e->pending = 0;
        if (!e->seen.payload) { mem_map_delete(m, i); continue; }
        engine_pub_unref(&e->pub);
        e->pub = e->seen;
        memset(&e->seen, 0, sizeof(e->seen));
    }
}

/* The committed change is now what readers see of its key. */
static void settle(mem_map *m, const engine_pub *pub) {
    int found;
    uint32_t at = mem_map_find(m, (const char *)pub->key->data, pub->key->len, &found);
    if (!found) return;
    mem_map_entry *e = m->v[at];
    if (!e->pending) return;
    engine_pub_unref(&e->seen);
    memset(&e->seen, 0, sizeof(e->seen));
    if (--e->pending == 0) {
        if (e->pub.flags & ENGINE_PUB_REMOVED) mem_map_delete(m, at);
        else e->pub.flags = pub->flags;
        return;
    }
    if (!(pub->flags & ENGINE_PUB_REMOVED)) {
        e->seen = *pub;
        engine_pub_ref(&e->seen);
    }
}

/* Store thread: a change's commit is done. */
static void map_done(void *ud, int err, const store_rec *r) {
    map_wait *d = ud;
    mem_engine *me = d->me;
    int rc = ENGINE_OK;
    (void)r;
    mem_shard *sh = mem_lock_shard(me, d->channel);
    mem_channel *ch = dict_get(sh->channels, d->channel);
    mem_stream *st = ch ? ch->stream : NULL;          /* kept while pending */
    if (st) st->pending--;
    if (!st || !ch->map || err || d->gen != st->gen) {
        if (st && err && d->gen == st->gen) {
            st->gen++;
            st->next = st->top;
            if (ch->map) revert(ch->map);
        }
        rc = ENGINE_ERR_STORE;
    } else {
        st->top = d->pub.offset;
        mem_map_report(me, d->channel, ch->map, st, &d->pub);
        settle(ch->map, &d->pub);
        if (d->res) mem_top_of(st, &d->res->top);
    }
    if (ch) mem_channel_gc(sh, d->channel, ch);
    pthread_mutex_unlock(&sh->lock);
    if (rc) atomic_fetch_add(&me->store_errors, 1);
    if (d->res) {
        d->res->err = rc;
        engine_answer(d->cb, d->ud, d->res->op, d->res);
    }
    engine_pub_unref(&d->pub);
    free(d);
}

/* ---------------------------------------------------------- the change */

/* The entry becomes the change's latest (the committed one kept in seen). */
static int make_latest(mem_map *m, const mem_map_change *c, const engine_pub *pub) {
    mem_map_entry *e = c->found ? m->v[c->at] : calloc(1, sizeof(*e));
    if (!e) return -1;
    if (!c->found && mem_map_insert(m, c->at, e) != 0) { free(e); return -1; }
    if (c->payload && mem_map_set_version(e, c->version, c->version_epoch)) return -1;
    if (e->pending == 0) e->seen = e->pub;           /* the committed change (none if new) */
    else engine_pub_unref(&e->pub);
    e->pub = *pub;
    engine_pub_ref(&e->pub);
    e->pending++;
    if (c->payload) e->expires_at = c->expires_at;
    return 0;
}

int mem_map_stage(mem_engine *me, mem_channel *ch, const mem_map_change *c,
                  engine_result *res, engine_cb cb, void *ud) {
    mem_stream *st = ch->stream;
    mem_map *m = ch->map;
    mem_map_entry *e = c->found ? m->v[c->at] : NULL;
    size_t len = strlen(c->channel) + 1;
    map_wait *d = calloc(1, sizeof(*d) + len);
    if (!d) return ENGINE_ERR_INTERNAL;
    memcpy(d->channel, c->channel, len);
    d->me = me;
    d->cb = cb;
    d->ud = ud;
    d->res = res;
    d->gen = st->gen;
    d->pub = (engine_pub){.offset = st->next + 1, .time_ms = c->now_ms,
                          .payload = c->payload ? rcbuf_ref(c->payload) : rcbuf_new(0),
                          .key = e ? rcbuf_ref(e->pub.key) : engine_key_new(c->key, c->key_len),
                          .flags = c->payload ? 0 : ENGINE_PUB_REMOVED};
    uint8_t aux[8 + 64];
    size_t aux_len = c->payload ? aux_encode(aux, sizeof(aux), c->version, c->version_epoch) : 0;
    store_rec r = {.kind = c->payload ? STORE_MAP_PUT : STORE_MAP_REMOVE, .time_ms = c->now_ms,
                   .channel = c->channel, .offset = d->pub.offset, .epoch = st->epoch,
                   .payload = c->payload ? c->payload->data : NULL,
                   .payload_len = c->payload ? c->payload->len : 0,
                   .key = d->pub.key ? d->pub.key->data : NULL,
                   .key_len = d->pub.key ? d->pub.key->len : 0,
                   .aux = aux_len ? aux : NULL, .aux_len = aux_len};
    int rc = d->pub.payload && d->pub.key ? 0 : ENGINE_ERR_INTERNAL;
    if (!rc && (rc = store_append(me->store, &r, map_done, d)) != 0)
        rc = rc == STORE_ERR_CLOSED ? ENGINE_ERR_SHUTDOWN : ENGINE_ERR_STORE;
    if (!rc && make_latest(m, c, &d->pub) != 0)
        log_error("engine: out of memory staging a change of %s; it shows once committed", c->channel);
    if (rc) {
        if (rc == ENGINE_ERR_STORE) atomic_fetch_add(&me->store_errors, 1);
        engine_pub_unref(&d->pub);
        free(d);
        return rc;
    }
    st->next = d->pub.offset;                          /* map_done waits for the shard lock we hold */
    st->pending++;
    return ENGINE_OK;
}

/* ------------------------------------------------------------- replay */

/* The stream's position before a record at offset of epoch: a new epoch,
 * a gap (retention keeps a key's latest change long after the changes
 * around it) or a reused offset restart the ring there. */
static int replay_position(mem_stream *st, const store_rec *r) {
    if (strcmp(st->epoch, r->epoch) != 0)
        snprintf(st->epoch, sizeof(st->epoch), "%s", r->epoch);
    else if (r->offset == st->top + 1)
        return 0;
    mem_stream_clear(st);
    st->top = r->offset - 1;
    return 0;
}

static int replay_change(mem_map *m, const store_rec *r, int64_t key_ttl_ms, engine_pub *pub) {
    int found;
    uint32_t at = mem_map_find(m, r->key, r->key_len, &found);
    if (r->kind == STORE_MAP_REMOVE) {          /* in the ring even if the key is unknown */
        pub->key = found ? rcbuf_ref(m->v[at]->pub.key) : engine_key_new(r->key, r->key_len);
        if (found) mem_map_delete(m, at);
        return pub->key ? 0 : -1;
    }
    mem_map_entry *e = found ? m->v[at] : calloc(1, sizeof(*e));
    if (!e || (!found && !(e->pub.key = engine_key_new(r->key, r->key_len)))) { free(e); return -1; }
    if (!found && mem_map_insert(m, at, e) != 0) { rcbuf_unref(e->pub.key); free(e); return -1; }
    char epoch[65];
    uint64_t v = aux_version(r->aux, r->aux_len, epoch, sizeof(epoch));
    if (mem_map_set_version(e, v, epoch)) return -1;
    if (e->pub.payload) rcbuf_unref(e->pub.payload);
    e->pub.payload = rcbuf_ref(pub->payload);
    e->pub.offset = r->offset;
    e->pub.time_ms = r->time_ms;
    e->expires_at = key_ttl_ms > 0 ? r->time_ms + key_ttl_ms : 0;
    pub->key = rcbuf_ref(e->pub.key);
    return 0;
}

int mem_map_replay(mem_shard *sh, const store_rec *r, const ns_options *ns) {
    if (!r->key || !r->key_len) return 0;
    mem_channel *ch = mem_channel_open(sh, r->channel, strlen(r->channel));
    if (!ch) return -1;
    if (!ch->stream && !(ch->stream = calloc(1, sizeof(mem_stream)))) return -1;
    if (!ch->map && !(ch->map = calloc(1, sizeof(mem_map)))) return -1;
    mem_stream *st = ch->stream;
    mem_map *m = ch->map;
    m->stream_size = ns_map_stream_size(ns);
    m->stream_ttl_ms = ns_map_stream_ttl_ms(ns);
    m->key_ttl_ms = ns->map_key_ttl_ms;
    if (replay_position(st, r)) return 0;
    engine_pub pub = {.offset = r->offset, .time_ms = r->time_ms,
                      .payload = rcbuf_copy(r->payload ? r->payload : "", r->payload_len),
                      .flags = r->kind == STORE_MAP_REMOVE ? ENGINE_PUB_REMOVED : 0};
    int rc = pub.payload ? replay_change(m, r, m->key_ttl_ms, &pub) : -1;
    if (!rc && m->stream_size > 0) {
        st->ttl_ms = m->stream_ttl_ms;
        mem_stream_append(st, &pub, (uint32_t)m->stream_size);
    }
    engine_pub_unref(&pub);
    st->top = st->next = r->offset;
    return rc;
}
