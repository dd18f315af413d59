/* engine_redis_cluster: which Redis server a channel lives on.
 *
 * Several standalone servers (shards): a jump consistent hash (Lamping &
 * Veach) of the channel name's FNV-1a hash, the same on every node; adding
 * a server moves only about 1/n of the channels.
 *
 * A Redis Cluster (engine.redis.cluster): the slot of the channel's keys
 * (CRC16 of the hash tag {prefix:channel}, mod 16384), and the node that
 * serves that slot from the slot map. The map comes from CLUSTER SLOTS,
 * asked of any connected node when one connects, every 5 s, and whenever a
 * reply says MOVED. A MOVED reply also fixes its slot at once and the call
 * goes again to the node named; an ASK reply sends the call once to the
 * node named, after ASKING. Channels of interest follow their slot: when
 * it moves, the channel is subscribed on its new node (and marked lost, so
 * subscribers recover what moved meanwhile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "engine/engine_redis_int.h"
#include "obs/log.h"

#define MAX_NODES 1024

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster
 * hashes keys. Bit by bit: a slot is computed once per call. */
static unsigned crc16(const unsigned char *p, size_t n) {
    unsigned crc = 0;
    while (n--) {
        crc ^= (unsigned)*p++ << 8;
        for (int i = 0; i < 8; i++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    return crc & 0xffff;
}

/* The slot of a key: only the part between the first '{' and the next '}'
 * counts, when that part is not empty. */
unsigned redis_key_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close && close > open + 1)
            return crc16((const unsigned char *)open + 1, (size_t)(close - open - 1)) % REDIS_SLOTS;
    }
    return crc16((const unsigned char *)key, len) % REDIS_SLOTS;
}

static unsigned channel_slot(redis_engine *re, const char *channel) {
    char key[1024];
    redis_key(re, channel, "m", key, sizeof(key));
    return redis_key_slot(key, strlen(key));
}

static rshard *jump(redis_engine *re, const char *channel) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)channel; *p; p++) h = (h ^ *p) * 1099511628211ULL;
    int64_t b = -1, j = 0;
    while (j < re->nshards) {
        b = j;
        h = h * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((h >> 33) + 1)));
    }
    return re->shards[b < 0 ? 0 : b];
}

/* The server of a channel; NULL when the cluster's slot map does not know
 * its slot yet (a refresh is asked for). */
rshard *redis_route(redis_engine *re, const char *channel) {
    if (!re->cluster) return jump(re, channel);
    unsigned n = re->slot_node[channel_slot(re, channel)];
    if (n) return re->shards[n - 1];
    redis_cluster_refresh(re);
    return NULL;
}

/* The node at host:port, added (and connected) if it is new. */
rshard *redis_node(redis_engine *re, const char *host, int port) {
    for (int i = 0; i < re->nshards; i++)
        if (re->shards[i]->port == port && strcmp(re->shards[i]->host, host) == 0) return re->shards[i];
    if (re->nshards >= MAX_NODES || strlen(host) >= sizeof(re->shards[0]->host)) return NULL;
    if (re->nshards == re->cap) {
        int cap = re->cap ? re->cap * 2 : 8;
        rshard **n = realloc(re->shards, (size_t)cap * sizeof(*n));
        if (!n) return NULL;
        re->shards = n;
        re->cap = cap;
    }
    rshard *sh = calloc(1, sizeof(*sh));
    if (!sh) return NULL;
    snprintf(sh->host, sizeof(sh->host), "%s", host);
    sh->port = port;
    sh->re = re;
    sh->index = re->nshards;
    sh->backoff_ms = REDIS_BACKOFF_MIN_MS;
    uv_timer_init(&re->loop, &sh->retry);
    sh->retry.data = sh;
    re->shards[re->nshards++] = sh;
    if (re->started) {
        log_info("redis: cluster node %s:%d", host, port);
        redis_connect(sh);
    }
    return sh;
}

/* Each channel of interest on the node of its slot (subscribed there if it
 * was elsewhere). */
void redis_place_channels(redis_engine *re) {
    dict_iter it;
    const char *name;
    void *v;
    dict_iter_init(&it, re->interest);
    while (dict_next(&it, &name, &v)) {
        rchan *rc = v;
        rshard *owner = redis_route(re, name);
        if (owner && owner != rc->on) redis_subscribe_channel(re, name, rc, owner);
    }
}

/* CLUSTER SLOTS: {{start, end, {host, port, id}, replicas...}, ...}. An
 * empty host means the node that answered. */
static void on_slots(redisAsyncContext *ac, void *reply, void *priv) {
    redis_engine *re = priv;
    rshard *asked = ac->data;
    redisReply *r = reply;
    re->refreshing = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: CLUSTER SLOTS: %s", r->str);
        return;
    }
    uint16_t *map = calloc(REDIS_SLOTS, sizeof(*map));
    if (!map) return;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[2]->type != REDIS_REPLY_ARRAY ||
            e->element[2]->elements < 2)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        const redisReply *m = e->element[2];
        const char *host = m->element[0]->type == REDIS_REPLY_STRING && m->element[0]->len && m->element[0]->str[0] != '?'
                               ? m->element[0]->str : asked->host;
        rshard *sh = redis_node(re, host, (int)m->element[1]->integer);
        if (!sh || lo < 0 || hi >= REDIS_SLOTS || lo > hi) continue;
        for (long long s = lo; s <= hi; s++) map[s] = (uint16_t)(sh->index + 1);
    }
    memcpy(re->slot_node, map, REDIS_SLOTS * sizeof(*map));
    free(map);
    for (int i = 0; i < re->nshards; i++) re->shards[i]->owns_slots = 0;
    re->slot_gap = -1;
    for (unsigned s = 0; s < REDIS_SLOTS; s++) {
        if (re->slot_node[s]) re->shards[re->slot_node[s] - 1]->owns_slots = 1;
        else if (re->slot_gap < 0) re->slot_gap = (int)s;
    }
    if (!re->slots_known) log_info("redis: cluster slot map read from %s:%d", asked->host, asked->port);
    re->slots_known = 1;
    redis_place_channels(re);
    redis_pick_control(re);
}

/* Asks a connected node for the slot map (one request at a time). */
void redis_cluster_refresh(redis_engine *re) {
    if (!re->cluster || re->refreshing || re->stopping) return;
    for (int i = 0; i < re->nshards; i++) {
        rshard *sh = re->shards[i];
        if (!sh->cmd_up) continue;
        if (redisAsyncCommand(sh->cmd, on_slots, re, "CLUSTER SLOTS") == REDIS_OK) re->refreshing = 1;
        re->next_refresh_ms = clock_now_ms() + 5000;
        return;
    }
}

/* A MOVED or ASK reply: the call goes to the node named (at most
 * REDIS_MAX_REDIRECTS times); a MOVED also fixes the slot map. Returns 1
 * when it took the call (sent again, or answered). */
int redis_redirected(rcall *c, const redisReply *r) {
    if (!r || r->type != REDIS_REPLY_ERROR) return 0;
    int ask = strncmp(r->str, "ASK ", 4) == 0;
    if (!ask && strncmp(r->str, "MOVED ", 6) != 0) return 0;
    redis_engine *re = c->re;
    unsigned slot;
    char host[256];
    int port;
    const char *addr = strchr(r->str, ' ');
    const char *hp = addr ? strchr(addr + 1, ' ') : NULL;
    const char *colon = hp ? strrchr(hp, ':') : NULL;
    if (!hp || !colon || (size_t)(colon - hp - 1) >= sizeof(host) || sscanf(addr + 1, "%u", &slot) != 1 ||
        slot >= REDIS_SLOTS || (port = atoi(colon + 1)) <= 0) {
        log_warn("redis: a redirection I cannot read: %s", r->str);
        return 0;
    }
    memcpy(host, hp + 1, (size_t)(colon - hp - 1));
    host[colon - hp - 1] = '\0';
    if (!host[0]) snprintf(host, sizeof(host), "%s", c->sh->host);
    rshard *to = redis_node(re, host, port);
    if (!ask && to) {
        re->slot_node[slot] = (uint16_t)(to->index + 1);
        to->owns_slots = 1;
        redis_cluster_refresh(re);
    }
    if (c->answered) { redis_finish(c, NULL, 0); return 1; }
    if (!to || !to->cmd || c->redirects >= REDIS_MAX_REDIRECTS || (!to->cmd_up && to->ever_up)) {
        log_warn("redis: %s for %s cannot be followed", r->str, c->channel);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return 1;
    }
    redis_finish_flight(c);
    c->redirects++;
    c->sh = to;
    if (ask) redisAsyncCommand(to->cmd, NULL, NULL, "ASKING");
    redis_send_call(re, c);
    return 1;
}

/* Healthy when every slot has a node and every node serving slots is
 * connected (what the last slot map said: on_slots keeps both). */
int redis_cluster_health(redis_engine *re, char *why, size_t size) {
    if (!re->slots_known) {
        snprintf(why, size, "redis cluster slot map not read yet (seeds %s)", re->cfg->engine_redis_address);
        return -1;
    }
    if (re->slot_gap >= 0) {
        snprintf(why, size, "redis cluster slot %d has no node", re->slot_gap);
        return -1;
    }
    for (int i = 0; i < re->nshards; i++) {
        rshard *sh = re->shards[i];
        if (!sh->owns_slots || atomic_load(&sh->up)) continue;
        snprintf(why, size, "redis cluster node %s:%d unreachable", sh->host, sh->port);
        return -1;
    }
    return 0;
}
