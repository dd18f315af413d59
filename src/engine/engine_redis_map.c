/* engine_redis_map: map channels on Redis (see engine.h, "maps"; the
 * scripts and key layout are in engine_redis_lua.h, REDIS_LUA_MAP_*).
 *
 * A map write is one script call: expired keys removed first (each a
 * change), the suppression checks (idempotency, compare-and-set on the
 * key's offset, key mode, version), then the change with the channel's
 * next offset, in the stream when the map keeps one, published as an "M"
 * event that carries the key. State pages are read in key order from a
 * sorted set with ZRANGEBYLEX (the cursor is the last key of the previous
 * page); stats and clear are the same read script. Keys with a TTL expire
 * on any operation on the channel and by the engine's sweep over the map
 * channels this node uses, so removals are published even when nobody
 * writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "core/namespace.h"
#include "engine/engine_redis_int.h"
#include "obs/log.h"

_Static_assert(ENGINE_SUPPRESS_IDEMPOTENCY == 1 && ENGINE_SUPPRESS_VERSION == 2 &&
                   ENGINE_SUPPRESS_KEY_EXISTS == 3 && ENGINE_SUPPRESS_KEY_NOT_FOUND == 4 &&
                   ENGINE_SUPPRESS_POSITION_MISMATCH == 5,
               "REDIS_LUA_MAP_WRITE returns these codes");
_Static_assert(ENGINE_KEY_IF_NEW == 1 && ENGINE_KEY_IF_EXISTS == 2, "REDIS_LUA_MAP_WRITE reads these modes");

void redis_map_free(rmap *m) {
    if (!m) return;
    free(m->key);
    free(m->version_epoch);
    free(m->expected_epoch);
    free(m->idem);
    free(m->cursor);
    free(m->epoch);
    free(m);
}

/* ------------------------------------------------------------- replies */

static void on_write(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: map_write: %s", r->str);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(ENGINE_OP_MAP_WRITE, ENGINE_OK);
    if (!res) { redis_finish(c, NULL, ENGINE_ERR_INTERNAL); return; }
    res->top.offset = redis_reply_u64(r->element[0]);
    redis_reply_epoch(r->element[1], res->top.epoch);
    res->suppressed = (int)redis_reply_u64(r->element[2]);
    redis_finish(c, res, 0);
}

/* A state entry: "<offset> <time> <version> <n> <version epoch><payload>". */
static int entry_decode(const redisReply *k, const redisReply *v, engine_pub *p) {
    const char *s = v->str, *end = v->str + v->len;
    char *q;
    p->offset = strtoull(s, &q, 10);
    if (q >= end || *q != ' ') return -1;
    p->time_ms = strtoll(q + 1, &q, 10);
    if (q >= end || *q != ' ') return -1;
    strtoull(q + 1, &q, 10);                                   /* the version */
    if (q >= end || *q != ' ') return -1;
    size_t n = strtoull(q + 1, &q, 10);
    if (q >= end || *q != ' ' || (size_t)(end - q - 1) < n) return -1;
    q += 1 + n;
    p->payload = rcbuf_copy(q, (size_t)(end - q));
    p->key = engine_key_new(k->str, k->len);
    return p->payload && p->key ? 0 : -1;
}

static void on_read(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    int state = c->kind == R_MAP_STATE;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < (state ? 4u : 3u)) {
        if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: map read: %s", r->str);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(redis_op_of(c->kind), ENGINE_OK);
    if (!res) { redis_finish(c, NULL, ENGINE_ERR_INTERNAL); return; }
    res->top.offset = redis_reply_u64(r->element[0]);
    redis_reply_epoch(r->element[1], res->top.epoch);
    if (!state) {
        res->num_keys = redis_reply_u64(r->element[2]);
        redis_finish(c, res, 0);
        return;
    }
    if (c->map->epoch && c->map->epoch[0] && strcmp(c->map->epoch, res->top.epoch) != 0) {
        redis_finish(c, res, ENGINE_ERR_EPOCH);
        return;
    }
    const redisReply *list = r->element[2], *more = r->element[3];
    size_t n = list->type == REDIS_REPLY_ARRAY ? list->elements / 2 : 0;
    int err = 0;
    if (n && !(res->pubs = calloc(n, sizeof(engine_pub)))) err = ENGINE_ERR_INTERNAL;
    for (size_t i = 0; i < n && !err; i++) {
        engine_pub *p = &res->pubs[res->npubs];
        if (entry_decode(list->element[2 * i], list->element[2 * i + 1], p) == 0) res->npubs++;
        else { engine_pub_unref(p); memset(p, 0, sizeof(*p)); err = ENGINE_ERR_INTERNAL; }
    }
    if (!err && more->type == REDIS_REPLY_STRING && more->len && !(res->cursor = strndup(more->str, more->len)))
        err = ENGINE_ERR_INTERNAL;
    redis_finish(c, res, err);
}

/* ------------------------------------------------------------- sending */

static const char *num(char *buf, long long v) {
    snprintf(buf, 24, "%lld", v);
    return buf;
}

/* Sends a map call: c->kind is R_MAP_WRITE, _STATE, _STATS, _CLEAR or
 * _SWEEP (stats, for the expiry it makes). */
int redis_map_send(redis_engine *re, rcall *c) {
    char k[5][1100], idem[1400], ch[1100], epoch[ENGINE_EPOCH_MAX + 1], n[12][24];
    static const char *const sfx[] = {"m", "s", "h", "k", "x"};
    for (int i = 0; i < 5; i++) redis_key(re, c->channel, sfx[i], k[i], sizeof(k[i]));
    redis_pubsub_name(re, c->channel, ch, sizeof(ch));
    redis_new_epoch(re, epoch);
    const char *verb = re->cluster ? "SPUBLISH" : "PUBLISH";
    const rmap *m = c->map;
    if (c->kind != R_MAP_WRITE) {
        const char *op = c->kind == R_MAP_STATE ? "state" : c->kind == R_MAP_CLEAR ? "clear" : "stats";
        const char *argv[] = {"EVALSHA", re->sha_map_read, "5", k[0], k[1], k[2], k[3], k[4], op,
                              num(n[0], c->now_ms), epoch, ch, verb,
                              m && m->single ? "1" : "0", num(n[1], m ? m->limit : 0),
                              m && m->key ? m->key : "", m && m->cursor ? m->cursor : ""};
        size_t lens[17];
        for (int i = 0; i < 17; i++) lens[i] = i == 15 && m && m->key ? m->key_len : strlen(argv[i]);
        return redis_send_argv(re, on_read, c, 17, argv, lens);
    }
    snprintf(idem, sizeof(idem), "%s.%s", k[0], m->idem ? m->idem : "");
    int64_t idem_ttl = m->idem_ttl_ms > 0 ? m->idem_ttl_ms : 300000;
    char version[24], expected[24];
    snprintf(version, sizeof(version), "%llu", (unsigned long long)m->version);
    snprintf(expected, sizeof(expected), "%llu", (unsigned long long)m->expected_offset);
    const char *argv[] = {"EVALSHA", re->sha_map_write, "6", k[0], k[1], k[2], k[3], k[4], idem,
                          m->key, m->remove ? "1" : "0",
                          c->payload ? (const char *)c->payload->data : "",
                          num(n[0], m->opts.stream_size), num(n[1], m->opts.stream_ttl_ms),
                          num(n[2], m->opts.key_ttl_ms), num(n[3], m->key_mode), m->refresh ? "1" : "0",
                          version, m->version_epoch ? m->version_epoch : "", m->has_expected ? "1" : "0",
                          expected, m->expected_epoch ? m->expected_epoch : "", m->idem ? "1" : "0",
                          num(n[4], idem_ttl), num(n[5], c->now_ms), epoch, num(n[6], re->meta_ttl_ms), ch, verb};
    size_t lens[29];
    for (int i = 0; i < 29; i++)                      /* the key and payload are bytes */
        lens[i] = i == 9 ? m->key_len : i == 11 ? (c->payload ? c->payload->len : 0) : strlen(argv[i]);
    return redis_send_argv(re, on_write, c, 29, argv, lens);
}

/* ------------------------------------------------------------- the ops */

static char *dup_or_null(const char *s) { return s && s[0] ? strdup(s) : NULL; }

void redis_map_write(engine *e, const engine_map_write_req *req, engine_cb cb, void *ud) {
    redis_engine *re = (redis_engine *)e;
    rcall *c = redis_call_new(re, R_MAP_WRITE, req->channel, cb, ud);
    rmap *m = c ? calloc(1, sizeof(*m)) : NULL;
    if (m) {
        c->map = m;
        c->now_ms = req->now_ms;
        if (!req->remove && req->payload) c->payload = rcbuf_ref(req->payload);
        m->key = malloc(req->key_len + 1);
        if (m->key) { memcpy(m->key, req->key, req->key_len); m->key[req->key_len] = '\0'; }
        m->key_len = req->key_len;
        m->remove = req->remove;
        m->opts = req->map;
        m->key_mode = req->key_mode;
        m->refresh = req->refresh_ttl_on_suppress;
        m->version = req->version;
        m->version_epoch = dup_or_null(req->version_epoch);
        m->has_expected = req->has_expected;
        m->expected_offset = req->expected_offset;
        m->expected_epoch = dup_or_null(req->expected_epoch);
        m->idem = dup_or_null(req->idempotency_key);
        m->idem_ttl_ms = req->idempotent_ttl_ms;
    }
    int bad = !m || !m->key || (req->version_epoch && req->version_epoch[0] && !m->version_epoch) ||
              (req->expected_epoch && req->expected_epoch[0] && !m->expected_epoch) ||
              (req->idempotency_key && req->idempotency_key[0] && !m->idem);
    if (c && bad) { redis_call_free(c); c = NULL; }
    if (c && (!req->key_len || (!req->remove && !req->payload))) {
        redis_call_free(c);                           /* the protocol layer checks both */
        engine_answer(cb, ud, ENGINE_OP_MAP_WRITE, engine_result_new(ENGINE_OP_MAP_WRITE, ENGINE_ERR_INTERNAL));
        return;
    }
    redis_submit(re, c, R_MAP_WRITE, cb, ud);
}

void redis_map_state(engine *e, const engine_map_state_req *req, engine_cb cb, void *ud) {
    redis_engine *re = (redis_engine *)e;
    rcall *c = redis_call_new(re, R_MAP_STATE, req->channel, cb, ud);
    rmap *m = c ? calloc(1, sizeof(*m)) : NULL;
    if (m) {
        c->map = m;
        c->now_ms = req->now_ms;
        m->limit = req->limit;
        m->single = req->key != NULL;
        m->key = req->key ? strdup(req->key) : NULL;
        m->key_len = req->key ? strlen(req->key) : 0;
        m->cursor = dup_or_null(req->cursor);
        m->epoch = dup_or_null(req->epoch);
    }
    if (c && (!m || (req->key && !m->key) || (req->cursor && req->cursor[0] && !m->cursor) ||
              (req->epoch && req->epoch[0] && !m->epoch))) {
        redis_call_free(c);
        c = NULL;
    }
    redis_submit(re, c, R_MAP_STATE, cb, ud);
}

void redis_map_stats(engine *e, const char *channel, int64_t now_ms, engine_cb cb, void *ud) {
    redis_engine *re = (redis_engine *)e;
    rcall *c = redis_call_new(re, R_MAP_STATS, channel, cb, ud);
    if (c) c->now_ms = now_ms;
    redis_submit(re, c, R_MAP_STATS, cb, ud);
}

void redis_map_clear(engine *e, const char *channel, engine_cb cb, void *ud) {
    redis_engine *re = (redis_engine *)e;
    rcall *c = redis_call_new(re, R_MAP_CLEAR, channel, cb, ud);
    if (c) c->now_ms = clock_now_ms();
    redis_submit(re, c, R_MAP_CLEAR, cb, ud);
}
