/* engine_redis: the engine on Redis (engine.type = redis), so that several
 * Plaza nodes share one channel space. Built on hiredis (Debian's 0.14).
 * This file owns the engine ops: calls queued, sent, answered; the
 * connections are engine_redis_conn.c's, the choice of server (shards,
 * cluster slots, redirections) engine_redis_cluster.c's.
 *
 * Threads: the engine has a thread of its own running a libuv loop with two
 * connections to each Redis server: one for commands (scripts, pipelined),
 * one for pub/sub. A call from any thread is copied into a queue and the
 * loop is woken; the loop sends it and answers from the reply, on the
 * engine thread (the seam allows any thread). Calls in flight are bounded
 * (engine.redis.max_pending): past it, and whenever the channel's Redis is
 * not connected, a call fails at once with ENGINE_ERR_UNAVAILABLE; a
 * connection that drops fails its calls in flight the same way; a call
 * not answered within engine.redis.timeout_ms fails with ENGINE_ERR_TIMEOUT.
 *
 * Keys, per channel C (hash-tagged by channel, so a cluster keeps a
 * channel's keys on one slot): {P:C}.m the meta hash (t = top offset,
 * e = epoch), {P:C}.s the history stream (entry id <offset>-1, fields
 * p payload, t time, f flags), {P:C}.p the presence hash (client ->
 * user NUL info) and {P:C}.z its expiry times (a sorted set). Events go
 * through the pub/sub channel P.C (on a cluster the shard channel {P:C}.e,
 * SPUBLISH/SSUBSCRIBE): "P<offset> <epoch> <time> <flags> <payload>",
 * "J<info>", "L<info>". Control messages (the server API's actions on
 * connections) go through P#control, which every node subscribes to (a
 * name no channel can take).
 *
 * Every operation that must be atomic is one Lua script (engine_redis_lua.h):
 * publish (next offset, the epoch created once, the stream appended and
 * trimmed, expiry, PUBLISH with the offset) so offsets are gapless and in
 * order across nodes; history (position and entries in one read);
 * presence (expired entries removed, with their leave, then read). A
 * periodic sweep removes expired presence of the channels this node uses.
 * Channel interest from the hub drives the pub/sub subscriptions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "core/clock.h"
#include "core/namespace.h"
#include "core/sbuf.h"
#include "engine/engine_redis_int.h"
#include "engine/engine_redis_lua.h"
#include "obs/log.h"

static const engine_op OP_OF[] = {
    ENGINE_OP_PUBLISH, ENGINE_OP_JOIN, ENGINE_OP_LEAVE, ENGINE_OP_HISTORY,
    ENGINE_OP_HISTORY_REMOVE, ENGINE_OP_PRESENCE_ADD, ENGINE_OP_PRESENCE_REMOVE,
    ENGINE_OP_PRESENCE, ENGINE_OP_PRESENCE_STATS, ENGINE_OP_SUBSCRIBE, ENGINE_OP_UNSUBSCRIBE,
    ENGINE_OP_CONTROL, ENGINE_OP_PRESENCE, ENGINE_OP_MAP_WRITE, ENGINE_OP_MAP_STATE, ENGINE_OP_MAP_STATS,
    ENGINE_OP_MAP_CLEAR, ENGINE_OP_MAP_STATS, ENGINE_OP_BOARD_PUT, ENGINE_OP_BOARD_PUT,
    ENGINE_OP_BOARD_SNAPSHOT,
};
_Static_assert(sizeof(OP_OF) / sizeof(OP_OF[0]) == R_BOARD_SNAPSHOT + 1, "an op per call kind");

engine_op redis_op_of(r_kind kind) { return OP_OF[kind]; }

static redis_engine *R(engine *e) { return (redis_engine *)e; }

/* ------------------------------------------------------------- answers */

void redis_call_free(rcall *c) {
    redis_map_free(c->map);
    if (c->board) free(c->board->user);
    free(c->board);
    free(c->channel);
    rcbuf_unref(c->payload);
    free(c->text);
    free(c->user);
    free(c);
}

/* Takes c off its server's in-flight list (it is sent again, or answered). */
void redis_finish_flight(rcall *c) {
    if (!c->sent_ms) return;
    rshard *sh = c->sh;
    if (c->fprev) c->fprev->fnext = c->fnext;
    else sh->flight_head = c->fnext;
    if (c->fnext) c->fnext->fprev = c->fprev;
    else sh->flight_tail = c->fprev;
    c->fprev = c->fnext = NULL;
    c->sent_ms = 0;
}

static void flight_add(rcall *c) {
    rshard *sh = c->sh;
    c->sent_ms = clock_now_ms();
    c->fprev = sh->flight_tail;
    c->fnext = NULL;
    if (sh->flight_tail) sh->flight_tail->fnext = c;
    else sh->flight_head = c;
    sh->flight_tail = c;
}

/* Answers c with res (or with an error) and frees it. Engine thread, or
 * the caller's when it never got queued. */
void redis_finish(rcall *c, engine_result *res, int err) {
    redis_engine *re = c->re;
    redis_finish_flight(c);
    if (c->answered) {                                /* timed out: nobody waits for it */
        engine_result_free(res);
    } else {
        if (!res) res = engine_result_new(OP_OF[c->kind], err);
        else if (err) res->err = err;
        engine_answer(c->cb, c->ud, OP_OF[c->kind], res);
    }
    uv_mutex_lock(&re->lock);
    re->pending--;
    uv_mutex_unlock(&re->lock);
    redis_call_free(c);
}

/* ------------------------------------------------------------ names */

/* A key of channel C: {P:C}.suffix (the hash tag keeps a channel's keys on
 * one cluster slot). */
void redis_key(const redis_engine *re, const char *channel, const char *suffix, char *out, size_t size) {
    snprintf(out, size, "{%s:%s}.%s", re->prefix, channel, suffix);
}

/* The pub/sub channel of C: P.C on standalone servers; {P:C}.e on a
 * cluster, a shard channel in the slot of C's keys. */
void redis_pubsub_name(const redis_engine *re, const char *channel, char *out, size_t size) {
    if (re->cluster) snprintf(out, size, "{%s:%s}.e", re->prefix, channel);
    else snprintf(out, size, "%s.%s", re->prefix, channel);
}

/* The channel named by a pub/sub channel (not NUL-terminated: *out_len
 * bytes), or NULL if the name is not one of ours. */
const char *redis_pubsub_channel(const redis_engine *re, const char *name, size_t len, size_t *out_len) {
    size_t pl = strlen(re->prefix);
    if (re->cluster) {
        if (len < pl + 6 || name[0] != '{' || memcmp(name + 1, re->prefix, pl) != 0 || name[pl + 1] != ':' ||
            memcmp(name + len - 3, "}.e", 3) != 0)
            return NULL;
        *out_len = len - pl - 5;
        return name + pl + 2;
    }
    if (len <= pl + 1 || memcmp(name, re->prefix, pl) != 0 || name[pl] != '.') return NULL;
    *out_len = len - pl - 1;
    return name + pl + 1;
}


void redis_new_epoch(redis_engine *re, char *out) {
    static const char A[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t z = (re->rng += 0x9e3779b97f4a7c15ULL) ^ (uint64_t)clock_now_ms();
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int i = 0; i < 8; i++, z >>= 6) out[i] = A[z % 62];
    out[8] = '\0';
}

/* --------------------------------------------------------- replies */

static int reply_failed(const redisReply *r) { return !r || r->type == REDIS_REPLY_ERROR; }

uint64_t redis_reply_u64(const redisReply *r) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return (uint64_t)r->integer;
    if (r->type == REDIS_REPLY_STRING) return strtoull(r->str, NULL, 10);
    return 0;
}

void redis_reply_epoch(const redisReply *r, char *out) {
    size_t n = r && r->type == REDIS_REPLY_STRING ? r->len : 0;
    if (n > ENGINE_EPOCH_MAX) n = ENGINE_EPOCH_MAX;
    if (n) memcpy(out, r->str, n);
    out[n] = '\0';
}

static void log_error_reply(const char *what, const redisReply *r) {
    if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: %s: %s", what, r->str);
}

static void on_publish(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    if (reply_failed(r) || (c->history_size > 0 && (r->type != REDIS_REPLY_ARRAY || r->elements < 2))) {
        log_error_reply("publish", r);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(ENGINE_OP_PUBLISH, ENGINE_OK);
    if (res && c->history_size > 0) {
        res->top.offset = redis_reply_u64(r->element[0]);
        redis_reply_epoch(r->element[1], res->top.epoch);
    }
    redis_finish(c, res, res ? 0 : ENGINE_ERR_INTERNAL);
}

static void on_simple(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    if (reply_failed(reply)) {
        log_error_reply(engine_op_name(OP_OF[c->kind]), reply);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(OP_OF[c->kind], ENGINE_OK);
    redis_finish(c, res, res ? 0 : ENGINE_ERR_INTERNAL);
}

/* history: {top, epoch, entries}; an entry is {id, {field, value, ...}}. */
static int history_entries(rcall *c, const redisReply *list, engine_result *res) {
    if (!list || list->type != REDIS_REPLY_ARRAY || list->elements == 0) return 0;
    const ns_options *ns = ns_lookup(&c->re->cfg->namespaces, c->channel);
    int64_t ttl = !ns ? 0 : ns->subscription_type != NS_SUB_STREAM ? ns_map_stream_ttl_ms(ns) : ns->history_ttl_ms;
    res->pubs = calloc(list->elements, sizeof(engine_pub));
    if (!res->pubs) return -1;
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
        const redisReply *f = e->element[1];
        engine_pub p = {.offset = strtoull(e->element[0]->str, NULL, 10)};
        const redisReply *payload = NULL, *key = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            const char *name = f->element[k]->str;
            if (strcmp(name, "p") == 0) payload = f->element[k + 1];
            else if (strcmp(name, "k") == 0) key = f->element[k + 1];
            else if (strcmp(name, "t") == 0) p.time_ms = (int64_t)redis_reply_u64(f->element[k + 1]);
            else if (strcmp(name, "f") == 0) p.flags = (uint32_t)redis_reply_u64(f->element[k + 1]);
        }
        if (ttl > 0 && p.time_ms + ttl <= c->now_ms) continue;       /* expired in the stream */
        p.payload = rcbuf_copy(payload ? payload->str : "", payload ? payload->len : 0);
        if (key && !(p.key = engine_key_new(key->str, key->len))) { engine_pub_unref(&p); return -1; }
        if (!p.payload) return -1;
        res->pubs[res->npubs++] = p;
    }
    return 0;
}

static void on_history(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    if (reply_failed(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        log_error_reply("history", r);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(ENGINE_OP_HISTORY, ENGINE_OK);
    if (!res) { redis_finish(c, NULL, ENGINE_ERR_INTERNAL); return; }
    res->top.offset = redis_reply_u64(r->element[0]);
    redis_reply_epoch(r->element[1], res->top.epoch);
    if (c->text && c->text[0] && strcmp(c->text, res->top.epoch) != 0) {
        redis_finish(c, res, ENGINE_ERR_EPOCH);
        return;
    }
    redis_finish(c, res, history_entries(c, r->element[2], res) ? ENGINE_ERR_INTERNAL : 0);
}

/* presence: HGETALL's flat {client, user NUL info, ...}, into one block. */
static void on_presence(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    if (reply_failed(r) || r->type != REDIS_REPLY_ARRAY) {
        log_error_reply("presence", r);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(OP_OF[c->kind], ENGINE_OK);
    if (!res) { redis_finish(c, NULL, ENGINE_ERR_INTERNAL); return; }
    size_t n = r->elements / 2, bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += r->element[2 * i]->len + r->element[2 * i + 1]->len + 2;
    if (c->kind == R_PRESENCE_STATS) {
        dict *users = dict_new();
        if (!users) { engine_result_free(res); redis_finish(c, NULL, ENGINE_ERR_INTERNAL); return; }
        for (size_t i = 0; i < n; i++) {
            const redisReply *v = r->element[2 * i + 1];
            const char *nul = memchr(v->str, '\0', v->len);
            if (nul) dict_setn(users, v->str, (size_t)(nul - v->str), users);   /* "" (anonymous) is a user too */
        }
        res->num_clients = (uint32_t)n;
        res->num_users = (uint32_t)dict_size(users);
        dict_free(users, NULL);
        redis_finish(c, res, 0);
        return;
    }
    if (n && !(res->entries = malloc(n * sizeof(engine_presence_entry) + bytes))) {
        engine_result_free(res);
        redis_finish(c, NULL, ENGINE_ERR_INTERNAL);
        return;
    }
    char *s = (char *)(res->entries + n);
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        const char *nul = memchr(v->str, '\0', v->len);
        size_t ulen = nul ? (size_t)(nul - v->str) : 0;
        const char *info = nul ? nul + 1 : v->str;
        size_t ilen = nul ? v->len - ulen - 1 : v->len;
        engine_presence_entry *e = &res->entries[res->nentries++];
        e->client = memcpy(s, k->str, k->len);
        s[k->len] = '\0';
        s += k->len + 1;
        e->user = memcpy(s, v->str, ulen);
        s[ulen] = '\0';
        s += ulen + 1;
        e->info = memcpy(s, info, ilen);
        e->info_len = ilen;
        s += ilen;
    }
    redis_finish(c, res, 0);
}

/* ----------------------------------------------------------- sending */

int redis_send_argv(redis_engine *re, redisCallbackFn *fn, rcall *c, int argc, const char **argv,
                    const size_t *lens) {
    (void)re;
    if (!c->sh->cmd || redisAsyncCommandArgv(c->sh->cmd, fn, c, argc, argv, lens) != REDIS_OK) return -1;
    flight_add(c);
    return 0;
}

static const char *publish_verb(const redis_engine *re) { return re->cluster ? "SPUBLISH" : "PUBLISH"; }

void redis_send_call(redis_engine *re, rcall *c) {
    if (c->kind >= R_MAP_WRITE) {
        int rc = c->kind >= R_BOARD_PUT ? redis_board_send(re, c) : redis_map_send(re, c);
        if (rc) redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    char meta[512], stream[512], pres[512], zset[512], ch[512], n1[32], n2[32], n3[32], n4[32],
         n5[32], epoch[ENGINE_EPOCH_MAX + 1];
    redis_key(re, c->channel, "m", meta, sizeof(meta));
    redis_key(re, c->channel, "s", stream, sizeof(stream));
    redis_key(re, c->channel, "p", pres, sizeof(pres));
    redis_key(re, c->channel, "z", zset, sizeof(zset));
    redis_pubsub_name(re, c->channel, ch, sizeof(ch));
    int rc = 0;
    switch (c->kind) {
    case R_PUBLISH:
        if (c->history_size <= 0) {               /* no offset: a plain PUBLISH */
            sbuf msg;
            sb_init(&msg);
            sb_printf(&msg, "P0 - %lld %u ", (long long)c->now_ms, c->flags);
            sb_append(&msg, c->payload->data, c->payload->len);
            const char *argv[] = {publish_verb(re), ch, msg.p};
            size_t lens[] = {strlen(argv[0]), strlen(ch), msg.len};
            rc = msg.oom ? -1 : redis_send_argv(re, on_publish, c, 3, argv, lens);
            sb_free(&msg);
            break;
        }
        redis_new_epoch(re, epoch);
        snprintf(n1, sizeof(n1), "%d", c->history_size);
        snprintf(n2, sizeof(n2), "%lld", (long long)c->ttl_ms);
        snprintf(n3, sizeof(n3), "%lld", (long long)c->now_ms);
        snprintf(n4, sizeof(n4), "%u", c->flags);
        snprintf(n5, sizeof(n5), "%lld", (long long)re->meta_ttl_ms);
        {
            const char *argv[] = {"EVALSHA", re->sha_publish, "2", meta, stream, (const char *)c->payload->data,
                                  n1, n2, n3, ch, n4, epoch, n5, publish_verb(re)};
            size_t lens[14];
            for (int i = 0; i < 14; i++) lens[i] = i == 5 ? c->payload->len : strlen(argv[i]);
            rc = redis_send_argv(re, on_publish, c, 14, argv, lens);
        }
        break;
    case R_JOIN:
    case R_LEAVE: {
        sbuf msg;
        sb_init(&msg);
        sb_putc(&msg, c->kind == R_JOIN ? 'J' : 'L');
        sb_append(&msg, c->text, c->text_len);
        const char *argv[] = {publish_verb(re), ch, msg.p};
        size_t lens[] = {strlen(argv[0]), strlen(ch), msg.len};
        rc = msg.oom ? -1 : redis_send_argv(re, on_simple, c, 3, argv, lens);
        sb_free(&msg);
        break;
    }
    case R_HISTORY: {
        redis_new_epoch(re, epoch);
        snprintf(n1, sizeof(n1), "%d", c->limit);
        snprintf(n2, sizeof(n2), "%llu", (unsigned long long)c->since);
        snprintf(n5, sizeof(n5), "%lld", (long long)re->meta_ttl_ms);
        const char *argv[] = {"EVALSHA", re->sha_history, "2", meta, stream, n1, c->has_since ? "1" : "0",
                              n2, c->reverse ? "1" : "0", epoch, n5};
        size_t lens[11];
        for (int i = 0; i < 11; i++) lens[i] = strlen(argv[i]);
        rc = redis_send_argv(re, on_history, c, 11, argv, lens);
        break;
    }
    case R_HISTORY_REMOVE: {
        const char *argv[] = {"DEL", stream};
        size_t lens[] = {3, strlen(stream)};
        rc = redis_send_argv(re, on_simple, c, 2, argv, lens);
        break;
    }
    case R_PRESENCE_ADD: {
        sbuf v;
        sb_init(&v);
        sb_puts(&v, c->user);
        sb_putc(&v, '\0');
        sb_append(&v, c->payload ? c->payload->data : NULL, c->payload ? c->payload->len : 0);
        snprintf(n1, sizeof(n1), "%lld", (long long)(c->now_ms + c->ttl_ms));
        snprintf(n2, sizeof(n2), "%lld", (long long)(c->ttl_ms * 2));
        const char *argv[] = {"EVALSHA", re->sha_presence, "2", pres, zset, "add", c->text, v.p ? v.p : "",
                              n1, n2};
        size_t lens[10];
        for (int i = 0; i < 10; i++) lens[i] = i == 7 ? v.len : strlen(argv[i]);
        rc = v.oom ? -1 : redis_send_argv(re, on_simple, c, 10, argv, lens);
        sb_free(&v);
        break;
    }
    case R_PRESENCE_REMOVE: {
        const char *argv[] = {"EVALSHA", re->sha_presence, "2", pres, zset, "remove", c->text};
        size_t lens[7];
        for (int i = 0; i < 7; i++) lens[i] = strlen(argv[i]);
        rc = redis_send_argv(re, on_simple, c, 7, argv, lens);
        break;
    }
    case R_PRESENCE:
    case R_PRESENCE_STATS:
    case R_SWEEP: {                                   /* expired entries go (with their leave) */
        const ns_options *ns = ns_lookup(&re->cfg->namespaces, c->channel);
        int leave = c->kind == R_SWEEP ? (int)c->flags : ns && ns->join_leave;
        snprintf(n1, sizeof(n1), "%lld", (long long)c->now_ms);
        const char *argv[] = {"EVALSHA", re->sha_presence, "2", pres, zset, c->kind == R_SWEEP ? "sweep" : "get",
                              n1, leave ? ch : "", publish_verb(re)};
        size_t lens[9];
        for (int i = 0; i < 9; i++) lens[i] = strlen(argv[i]);
        rc = redis_send_argv(re, c->kind == R_SWEEP ? on_simple : on_presence, c, 9, argv, lens);
        break;
    }
    case R_CONTROL: {
        const char *argv[] = {"PUBLISH", re->control, c->text};
        size_t lens[] = {7, strlen(re->control), c->text_len};
        rc = redis_send_argv(re, on_simple, c, 3, argv, lens);
        break;
    }
    case R_SUBSCRIBE:
    case R_UNSUBSCRIBE:                               /* send_interest */
    case R_MAP_WRITE:
    case R_MAP_STATE:
    case R_MAP_STATS:
    case R_MAP_CLEAR:
    case R_MAP_SWEEP:                                 /* redis_map_send */
    case R_BOARD_PUT:
    case R_BOARD_BATCH:
    case R_BOARD_SNAPSHOT:                            /* redis_board_send */
        break;
    }
    if (rc) redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
}

/* ------------------------------------------------------------ events */

void redis_deliver(redis_engine *re, const char *channel, const char *msg, size_t len) {
    const engine_events *ev = &re->base.events;
    if (len && (msg[0] == 'J' || msg[0] == 'L')) {
        void (*fn)(void *, const char *, const char *, size_t) = msg[0] == 'J' ? ev->on_join : ev->on_leave;
        if (fn) fn(ev->ud, channel, msg + 1, len - 1);
        return;
    }
    if (!len || (msg[0] != 'P' && msg[0] != 'M') || !ev->on_publication) return;
    /* P<offset> <epoch> <time> <flags> <payload>, or a map change:
     * M<offset> <epoch> <time> <flags> <key length> <key><payload> */
    const char *p = msg + 1, *end = msg + len;
    char *q;
    engine_pub pub = {.offset = strtoull(p, &q, 10)};
    if (q >= end || *q != ' ') return;
    const char *sp = memchr(q + 1, ' ', (size_t)(end - q - 1));   /* after the epoch */
    if (!sp) return;
    pub.time_ms = strtoll(sp + 1, &q, 10);
    if (q >= end || *q != ' ') return;
    pub.flags = (uint32_t)strtoul(q + 1, &q, 10);
    if (q >= end || *q != ' ') return;
    q++;
    if (msg[0] == 'M') {
        size_t klen = strtoull(q, &q, 10);
        if (q >= end || *q != ' ' || (size_t)(end - q - 1) < klen) return;
        if (!(pub.key = engine_key_new(q + 1, klen))) goto oom;
        q += 1 + klen;
    }
    pub.payload = rcbuf_copy(q, (size_t)(end - q));
    if (!pub.payload) goto oom;
    ev->on_publication(ev->ud, channel, &pub);
    engine_pub_unref(&pub);
    return;
oom:
    engine_pub_unref(&pub);
    log_error("redis: out of memory; a publication of %s is lost", channel);
}

void redis_answer_waiting(rchan *rc) {
    if (!rc->waiting) return;
    rcall *c = rc->waiting;
    rc->waiting = NULL;
    engine_answer(c->cb, c->ud, ENGINE_OP_SUBSCRIBE, engine_result_new(ENGINE_OP_SUBSCRIBE, ENGINE_OK));
    redis_call_free(c);
}

/* Interest: a subscribe on the pub/sub connection of the channel's server.
 * It is answered once Redis confirms it (events flow from then on), or at
 * once when the server is not connected (the channel is subscribed when it
 * is, and marked lost: the hub then recovers what it missed). */
static void send_interest(redis_engine *re, rcall *c) {
    rchan *rc = dict_get(re->interest, c->channel);
    if (c->kind == R_UNSUBSCRIBE) {
        if (rc) {
            dict_del(re->interest, c->channel, NULL);
            redis_answer_waiting(rc);
            if (rc->on && rc->on->sub_up && rc->confirmed)
                redis_sub_send(rc->on, re->cluster ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", c->channel);
            free(rc);
        }
        redis_finish(c, NULL, 0);
        return;
    }
    if (!rc) {
        if (!(rc = calloc(1, sizeof(*rc))) || dict_set(re->interest, c->channel, rc) < 0) {
            free(rc);
            redis_finish(c, NULL, ENGINE_ERR_INTERNAL);
            return;
        }
    }
    redis_answer_waiting(rc);                         /* a repeated subscribe: the older one first */
    uv_mutex_lock(&re->lock);
    re->pending--;                                    /* held by the channel, not as a call */
    uv_mutex_unlock(&re->lock);
    rc->waiting = c;
    rshard *on = redis_route(re, c->channel);
    if (!on) {                                        /* slot map unknown: placed when it is read */
        rc->lost = 1;
        redis_answer_waiting(rc);
        return;
    }
    if (!on->sub_up) rc->lost = 1;
    rc->on = NULL;
    redis_subscribe_channel(re, c->channel, rc, on);
}

/* ------------------------------------------------------------ ticking */

/* Expired presence entries of the channels this node is interested in are
 * removed (and their leave published when the namespace has join/leave),
 * so a client whose node died leaves everywhere within the presence TTL;
 * so are the expired keys of its map channels (their removals published),
 * every engine.sweep_interval_ms.
 * Several nodes may sweep a channel: the script is atomic, one of them
 * finds each expired entry. */
static void sweep(redis_engine *re, int64_t now, int presence, int maps) {
    dict_iter it;
    const char *name;
    void *v;
    dict_iter_init(&it, re->interest);
    while (dict_next(&it, &name, &v)) {
        const ns_options *ns = ns_lookup(&re->cfg->namespaces, name);
        int map = ns && ns->subscription_type != NS_SUB_STREAM && ns->map_key_ttl_ms > 0;
        if (!ns || !(map ? maps : presence && ns->presence)) continue;
        rcall *c = redis_call_new(re, map ? R_MAP_SWEEP : R_SWEEP, name, NULL, NULL);
        if (!c) return;
        c->now_ms = now;
        c->flags = (uint32_t)ns->join_leave;
        uv_mutex_lock(&re->lock);
        re->pending++;
        uv_mutex_unlock(&re->lock);
        c->sh = redis_route(re, name);
        if (!c->sh || !c->sh->cmd_up) redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        else redis_send_call(re, c);
    }
}

/* What /healthz and the gauges read, computed here (the server list and
 * the slot map belong to this thread). */
static void update_health(redis_engine *re) {
    char why[sizeof(re->health)] = "";
    int up = 0;
    for (int i = 0; i < re->nshards; i++) up += atomic_load(&re->shards[i]->up);
    if (re->cluster) {
        if (redis_cluster_health(re, why, sizeof(why)) == 0) why[0] = '\0';
    } else {
        for (int i = 0; i < re->nshards && !why[0]; i++)
            if (!atomic_load(&re->shards[i]->up))
                snprintf(why, sizeof(why), "redis at %s:%d unreachable", re->shards[i]->host, re->shards[i]->port);
    }
    uv_mutex_lock(&re->lock);
    memcpy(re->health, why, sizeof(why));
    re->up_count = up;
    uv_mutex_unlock(&re->lock);
}

/* Every 50 ms: a call sent longer than engine.redis.timeout_ms ago is
 * answered ENGINE_ERR_TIMEOUT now (a stalled Redis never holds a client or
 * an API request longer); its reply, if it comes, is dropped. It stays
 * counted in pending until then, so a stall still bounds memory. Also the
 * presence sweep, the cluster's slot map every 5 s, and health. */
static void on_tick(uv_timer_t *t) {
    redis_engine *re = t->data;
    int64_t now = clock_now_ms();
    for (int i = 0; i < re->nshards; i++) {
        rshard *sh = re->shards[i];
        while (sh->flight_head && sh->flight_head->sent_ms + re->timeout_ms <= now) {
            rcall *c = sh->flight_head;
            redis_finish_flight(c);
            c->answered = 1;
            engine_answer(c->cb, c->ud, OP_OF[c->kind],
                          engine_result_new(OP_OF[c->kind], ENGINE_ERR_TIMEOUT));
        }
    }
    int presence = now >= re->next_sweep_ms, maps = now >= re->next_map_sweep_ms;
    if (presence) {                                   /* a quarter of the TTL is soon enough */
        int64_t every = re->cfg->channel_presence_ttl_ms / 4;
        if (every < re->cfg->engine_sweep_interval_ms) every = re->cfg->engine_sweep_interval_ms;
        re->next_sweep_ms = now + every;
    }
    if (maps) re->next_map_sweep_ms = now + re->cfg->engine_sweep_interval_ms;
    if (presence || maps) sweep(re, now, presence, maps);
    if (re->cluster && now >= re->next_refresh_ms) {
        re->next_refresh_ms = now + 5000;
        redis_cluster_refresh(re);
    }
    update_health(re);
}

/* ----------------------------------------------------------- the loop */

/* Can a call be sent to sh now? When connected; on a cluster also while a
 * node just learned of is connecting (the call waits in its buffer). */
static int reachable(const redis_engine *re, const rshard *sh) {
    return sh->cmd_up || (re->cluster && sh->cmd && !sh->ever_up);
}

static rshard *control_server(redis_engine *re) {
    if (!re->cluster) return re->shards[0];
    for (int i = 0; i < re->nshards; i++)
        if (re->shards[i]->cmd_up) return re->shards[i];
    return re->shards[0];
}

static void drain(redis_engine *re) {
    uv_mutex_lock(&re->lock);
    rcall *c = re->q_head;
    re->q_head = NULL;
    re->q_tail = &re->q_head;
    uv_mutex_unlock(&re->lock);
    while (c) {
        rcall *next = c->next;
        if (c->kind == R_SUBSCRIBE || c->kind == R_UNSUBSCRIBE) {
            send_interest(re, c);
        } else {
            c->sh = c->kind == R_CONTROL ? control_server(re) : redis_route(re, c->channel);
            if (re->stopping) redis_finish(c, NULL, ENGINE_ERR_SHUTDOWN);
            else if (!c->sh || !reachable(re, c->sh)) redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
            else redis_send_call(re, c);
        }
        c = next;
    }
}

static void on_wake(uv_async_t *a) {
    redis_engine *re = a->data;
    drain(re);
    if (re->stopping) {
        dict_iter it;                                 /* subscribes still unconfirmed */
        const char *name;
        void *v;
        dict_iter_init(&it, re->interest);
        while (dict_next(&it, &name, &v)) redis_answer_waiting(v);
        redis_boards_stop(re);                        /* open batches out before the close */
        for (int i = 0; i < re->nshards; i++) redis_close(re->shards[i]);
        uv_close((uv_handle_t *)&re->tick, NULL);
        uv_close((uv_handle_t *)&re->wake, NULL);
    }
}

static void thread_main(void *arg) {
    redis_engine *re = arg;
    re->started = 1;
    for (int i = 0; i < re->nshards; i++) redis_connect(re->shards[i]);
    uv_run(&re->loop, UV_RUN_DEFAULT);
}

/* Queues c (any thread); fails it at once when too much waits. */
void redis_submit(redis_engine *re, rcall *c, r_kind kind, engine_cb cb, void *ud) {
    if (!c) { engine_answer(cb, ud, OP_OF[kind], NULL); return; }
    uv_mutex_lock(&re->lock);
    int refuse = re->stopping ? ENGINE_ERR_SHUTDOWN
                 : re->pending >= re->max_pending && kind != R_UNSUBSCRIBE ? ENGINE_ERR_UNAVAILABLE : 0;
    if (!refuse) {
        c->next = NULL;
        *re->q_tail = c;
        re->q_tail = &c->next;
        re->pending++;
    }
    uv_mutex_unlock(&re->lock);
    if (refuse) {
        engine_answer(cb, ud, OP_OF[kind], engine_result_new(OP_OF[kind], refuse));
        redis_call_free(c);
        return;
    }
    uv_async_send(&re->wake);
}

rcall *redis_call_new(redis_engine *re, r_kind kind, const char *channel, engine_cb cb, void *ud) {
    rcall *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->re = re;
    c->kind = kind;
    c->cb = cb;
    c->ud = ud;
    if (!(c->channel = strdup(channel))) { free(c); return NULL; }
    return c;
}

static int set_text(rcall *c, const char *s, size_t len) {
    if (!s) return 0;
    c->text = malloc(len + 1);
    if (!c->text) return -1;
    memcpy(c->text, s, len);
    c->text[len] = '\0';
    c->text_len = len;
    return 0;
}

/* ------------------------------------------------------------ the ops */

static void r_publish(engine *e, const engine_publish_req *req, engine_cb cb, void *ud) {
    rcall *c = redis_call_new(R(e), R_PUBLISH, req->channel, cb, ud);
    if (c) {
        c->payload = rcbuf_ref(req->payload);
        c->history_size = req->history_size;
        c->ttl_ms = req->history_ttl_ms;
        c->now_ms = req->now_ms;
        c->flags = req->flags;
    }
    redis_submit(R(e), c, R_PUBLISH, cb, ud);
}

static void r_join_leave(engine *e, r_kind kind, const char *channel, const char *info, size_t len,
                         engine_cb cb, void *ud) {
    rcall *c = redis_call_new(R(e), kind, channel, cb, ud);
    if (c && set_text(c, info, len)) { redis_call_free(c); c = NULL; }
    redis_submit(R(e), c, kind, cb, ud);
}

static void r_publish_join(engine *e, const char *ch, const char *info, size_t len, engine_cb cb, void *ud) {
    r_join_leave(e, R_JOIN, ch, info, len, cb, ud);
}

static void r_publish_leave(engine *e, const char *ch, const char *info, size_t len, engine_cb cb, void *ud) {
    r_join_leave(e, R_LEAVE, ch, info, len, cb, ud);
}

static void r_history(engine *e, const engine_history_req *req, engine_cb cb, void *ud) {
    rcall *c = redis_call_new(R(e), R_HISTORY, req->channel, cb, ud);
    if (c) {
        c->limit = req->limit;
        c->has_since = req->has_since;
        c->since = req->since_offset;
        c->reverse = req->reverse;
        c->now_ms = req->now_ms;
        if (req->since_epoch && set_text(c, req->since_epoch, strlen(req->since_epoch))) {
            redis_call_free(c);
            c = NULL;
        }
    }
    redis_submit(R(e), c, R_HISTORY, cb, ud);
}

static void r_channel_call(engine *e, r_kind kind, const char *channel, engine_cb cb, void *ud) {
    redis_submit(R(e), redis_call_new(R(e), kind, channel, cb, ud), kind, cb, ud);
}

static void r_history_remove(engine *e, const char *ch, engine_cb cb, void *ud) {
    r_channel_call(e, R_HISTORY_REMOVE, ch, cb, ud);
}

static void r_presence_add(engine *e, const char *channel, const engine_presence_entry *en,
                           int64_t ttl_ms, int64_t now_ms, engine_cb cb, void *ud) {
    rcall *c = redis_call_new(R(e), R_PRESENCE_ADD, channel, cb, ud);
    if (c) {
        c->ttl_ms = ttl_ms;
        c->now_ms = now_ms;
        c->payload = rcbuf_copy(en->info, en->info_len);
        if (set_text(c, en->client, strlen(en->client)) || !(c->user = strdup(en->user)) || !c->payload) {
            redis_call_free(c);
            c = NULL;
        }
    }
    redis_submit(R(e), c, R_PRESENCE_ADD, cb, ud);
}

static void r_presence_remove(engine *e, const char *channel, const char *client, engine_cb cb, void *ud) {
    rcall *c = redis_call_new(R(e), R_PRESENCE_REMOVE, channel, cb, ud);
    if (c && set_text(c, client, strlen(client))) { redis_call_free(c); c = NULL; }
    redis_submit(R(e), c, R_PRESENCE_REMOVE, cb, ud);
}

static void r_presence_read(engine *e, r_kind kind, const char *channel, int64_t now_ms, engine_cb cb,
                            void *ud) {
    rcall *c = redis_call_new(R(e), kind, channel, cb, ud);
    if (c) c->now_ms = now_ms;
    redis_submit(R(e), c, kind, cb, ud);
}

static void r_presence(engine *e, const char *ch, int64_t now_ms, engine_cb cb, void *ud) {
    r_presence_read(e, R_PRESENCE, ch, now_ms, cb, ud);
}

static void r_presence_stats(engine *e, const char *ch, int64_t now_ms, engine_cb cb, void *ud) {
    r_presence_read(e, R_PRESENCE_STATS, ch, now_ms, cb, ud);
}

static void r_subscribe(engine *e, const char *ch, engine_cb cb, void *ud) {
    r_channel_call(e, R_SUBSCRIBE, ch, cb, ud);
}

static void r_unsubscribe(engine *e, const char *ch, engine_cb cb, void *ud) {
    r_channel_call(e, R_UNSUBSCRIBE, ch, cb, ud);
}

static int r_health(engine *e, char *why, size_t size) {
    redis_engine *re = R(e);
    uv_mutex_lock(&re->lock);
    int bad = re->health[0] != '\0';
    if (bad) snprintf(why, size, "%s", re->health);
    uv_mutex_unlock(&re->lock);
    return bad ? -1 : 0;
}

static void r_control(engine *e, const char *msg, size_t len, engine_cb cb, void *ud) {
    rcall *c = redis_call_new(R(e), R_CONTROL, "", cb, ud);
    if (c && set_text(c, msg, len)) { redis_call_free(c); c = NULL; }
    redis_submit(R(e), c, R_CONTROL, cb, ud);
}

static void r_gauges(engine *e, engine_gauge_fn fn, void *ud) {
    redis_engine *re = R(e);
    uv_mutex_lock(&re->lock);
    uint64_t pending = (uint64_t)re->pending, up = (uint64_t)re->up_count;
    uv_mutex_unlock(&re->lock);
    fn(ud, "plaza_engine_redis_pending", "Calls to Redis queued or waiting for an answer.", pending);
    fn(ud, "plaza_engine_redis_up", "Redis servers (shards or cluster nodes) both of whose connections are up.", up);
}

/* Stops the thread: queued calls fail with ENGINE_ERR_SHUTDOWN, calls in
 * flight with the disconnect, channel interest is dropped. */
static void r_quiesce(engine *e) {
    redis_engine *re = R(e);
    if (!re->running) return;
    uv_mutex_lock(&re->lock);
    re->stopping = 1;
    uv_mutex_unlock(&re->lock);
    uv_async_send(&re->wake);
    uv_thread_join(&re->thread);
    re->running = 0;
}

static void free_interest(void *v) {
    rchan *rc = v;
    if (rc->waiting) redis_call_free(rc->waiting);
    free(rc);
}

static void free_all(redis_engine *re) {
    dict_free(re->interest, free_interest);
    dict_free(re->boards, NULL);                      /* empty once stopped */
    for (int i = 0; i < re->nshards; i++) free(re->shards[i]);
    free(re->shards);
    free(re->slot_node);
    free(re);
}

static void r_destroy(engine *e) {
    redis_engine *re = R(e);
    r_quiesce(e);
    uv_loop_close(&re->loop);
    uv_mutex_destroy(&re->lock);
    free_all(re);
}

static const engine_ops redis_ops = {
    .publish = r_publish,
    .publish_join = r_publish_join,
    .publish_leave = r_publish_leave,
    .history = r_history,
    .history_remove = r_history_remove,
    .presence_add = r_presence_add,
    .presence_remove = r_presence_remove,
    .presence = r_presence,
    .presence_stats = r_presence_stats,
    .subscribe = r_subscribe,
    .unsubscribe = r_unsubscribe,
    .map_write = redis_map_write,
    .map_state = redis_map_state,
    .map_stats = redis_map_stats,
    .map_clear = redis_map_clear,
    .board_put = redis_board_put,
    .board_snapshot = redis_board_snapshot,
    .control = r_control,
    .health = r_health,
    .gauges = r_gauges,
    .quiesce = r_quiesce,
    .destroy = r_destroy,
};

static void sha1_hex(const char *text, char out[41]) {
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, strlen(text), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* engine.redis.address: host:port, or several separated by commas (shards,
 * or a cluster's seed nodes). */
static int parse_addresses(redis_engine *re, const char *list, char *err, size_t errlen) {
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memrchr(p, ':', len);
        size_t hl = colon ? (size_t)(colon - p) : 0;
        char *stop = NULL;
        long port = colon ? strtol(colon + 1, &stop, 10) : 0;
        char host[256];
        if (!colon || hl == 0 || hl >= sizeof(host) || port <= 0 || port > 65535 || stop != p + len) {
            snprintf(err, errlen, "key \"engine.redis.address\": expected host:port[,host:port...], "
                     "got \"%s\"", list);
            return -1;
        }
        memcpy(host, p, hl);
        host[hl] = '\0';
        if (!redis_node(re, host, (int)port)) {
            snprintf(err, errlen, "engine.type \"redis\": out of memory");
            return -1;
        }
        if (!end) return 0;
        p = end + 1;
    }
}

engine *engine_redis_new(const config *cfg, const engine_events *events, char *err, size_t errlen) {
    redis_engine *re = calloc(1, sizeof(*re));
    if (!re) { snprintf(err, errlen, "engine.type \"redis\": out of memory"); return NULL; }
    re->base.ops = &redis_ops;
    if (events) re->base.events = *events;
    re->cfg = cfg;
    re->cluster = cfg->engine_redis_cluster;
    snprintf(re->prefix, sizeof(re->prefix), "%s", cfg->engine_redis_prefix);
    snprintf(re->control, sizeof(re->control), "%s#control", re->prefix);
    re->meta_ttl_ms = (int64_t)cfg->engine_redis_meta_ttl_s * 1000;
    re->max_pending = cfg->engine_redis_max_pending;
    re->timeout_ms = cfg->engine_redis_timeout_ms;
    re->rng = (uint64_t)clock_now_ms() ^ (uint64_t)(uintptr_t)re;
    re->q_tail = &re->q_head;
    snprintf(re->health, sizeof(re->health), "redis not connected yet");
    sha1_hex(REDIS_LUA_PUBLISH, re->sha_publish);
    sha1_hex(REDIS_LUA_HISTORY, re->sha_history);
    sha1_hex(REDIS_LUA_PRESENCE, re->sha_presence);
    sha1_hex(REDIS_LUA_MAP_WRITE, re->sha_map_write);
    sha1_hex(REDIS_LUA_MAP_READ, re->sha_map_read);
    sha1_hex(REDIS_LUA_BOARD_BATCH, re->sha_board_batch);
    sha1_hex(REDIS_LUA_BOARD_SNAPSHOT, re->sha_board_snapshot);
    sha1_hex(REDIS_LUA_COOLDOWN, re->sha_cooldown);
    if (uv_loop_init(&re->loop)) {
        free(re);
        snprintf(err, errlen, "engine.type \"redis\": cannot start");
        return NULL;
    }
    int bad = !(re->interest = dict_new()) || !(re->boards = dict_new()) || !(re->slot_node = calloc(REDIS_SLOTS, sizeof(uint16_t)));
    if (bad) snprintf(err, errlen, "engine.type \"redis\": out of memory");
    if (!bad && parse_addresses(re, cfg->engine_redis_address, err, errlen)) bad = 1;
    uv_mutex_init(&re->lock);
    uv_async_init(&re->loop, &re->wake, on_wake);
    re->wake.data = re;
    uv_timer_init(&re->loop, &re->tick);
    re->tick.data = re;
    uv_timer_start(&re->tick, on_tick, 50, 50);
    int seeds = re->nshards;                          /* the thread adds cluster nodes */
    if (!bad && uv_thread_create(&re->thread, thread_main, re)) {
        snprintf(err, errlen, "engine.type \"redis\": cannot start its thread");
        bad = 1;
    }
    if (bad) {
        uv_close((uv_handle_t *)&re->wake, NULL);
        for (int i = 0; i < re->nshards; i++) uv_close((uv_handle_t *)&re->shards[i]->retry, NULL);
        uv_close((uv_handle_t *)&re->tick, NULL);
        uv_run(&re->loop, UV_RUN_DEFAULT);
        uv_loop_close(&re->loop);
        uv_mutex_destroy(&re->lock);
        free_all(re);
        return NULL;
    }
    re->running = 1;
    log_info("engine: redis%s, %d %s (%s), prefix \"%s\"", re->cluster ? " cluster" : "", seeds,
             re->cluster ? "seed(s)" : seeds > 1 ? "servers" : "server", cfg->engine_redis_address,
             re->prefix);
    return &re->base;
}
