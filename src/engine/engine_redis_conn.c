/* engine_redis_conn: the Redis engine's connections, all on its libuv loop.
 *
 * Each server has two. Commands go through hiredis's async context, driven
 * by a small adapter of our own (hiredis's libuv adapter drops poll
 * errors). The pub/sub connection is a plain hiredis context that this file
 * reads and writes itself: it carries SUBSCRIBE/UNSUBSCRIBE on a set of
 * servers, SSUBSCRIBE/SUNSUBSCRIBE on a cluster (hiredis 0.14's async
 * layer does not know sharded pub/sub), and every reply is dispatched
 * here: a message is an event, a confirmation answers the subscribe call,
 * an unsubscribe the server sent (the slot moved) re-places the channel.
 *
 * A connection that drops fails the calls in flight on it, and both are
 * opened again with a backoff (100 ms doubling to 2 s). When a pub/sub
 * connection comes back, the server's channels of interest are subscribed
 * again and marked lost, so the hub recovers what was missed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "engine/engine_redis_int.h"
#include "engine/engine_redis_lua.h"
#include "obs/log.h"

static void lost(rshard *sh, const char *which, const char *why);

/* ------------------------------------------- hiredis async on the loop */

typedef struct uvev {
    redisAsyncContext *ac;         /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} uvev;

static void ev_poll(uv_poll_t *h, int status, int events) {
    uvev *p = h->data;
    if (!p->ac) return;
    if (status < 0) events = p->events;      /* hiredis reads the socket's error itself */
    if (events & UV_READABLE) redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void ev_update(uvev *p) {
    if (p->events) uv_poll_start(&p->poll, p->events, ev_poll);
    else uv_poll_stop(&p->poll);
}

static void ev_add_read(void *d) { uvev *p = d; p->events |= UV_READABLE; ev_update(p); }
static void ev_del_read(void *d) { uvev *p = d; p->events &= ~UV_READABLE; ev_update(p); }
static void ev_add_write(void *d) { uvev *p = d; p->events |= UV_WRITABLE; ev_update(p); }
static void ev_del_write(void *d) { uvev *p = d; p->events &= ~UV_WRITABLE; ev_update(p); }
static void ev_closed(uv_handle_t *h) { free(h->data); }

static void ev_cleanup(void *d) {
    uvev *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    uvev *p = calloc(1, sizeof(*p));
    if (!p) return -1;
    if (uv_poll_init(loop, &p->poll, ac->c.fd)) { free(p); return -1; }
    p->ac = ac;
    p->poll.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return 0;
}

/* ------------------------------------------------ the pub/sub connection */

struct rsubio {
    uv_poll_t poll;
    redisContext *c;
    rshard *sh;                    /* NULL once closed */
    int events;
    int connecting;
};

static void sub_freed(uv_handle_t *h) {
    struct rsubio *io = h->data;
    redisFree(io->c);
    free(io);
}

static void sub_close(rshard *sh) {
    struct rsubio *io = sh->sub;
    if (!io) return;
    sh->sub = NULL;
    io->sh = NULL;
    uv_close((uv_handle_t *)&io->poll, sub_freed);
}

static void sub_poll(uv_poll_t *h, int status, int events);

static void sub_want(struct rsubio *io, int events) {
    if (events == io->events) return;
    io->events = events;
    uv_poll_start(&io->poll, events, sub_poll);
}

static int sub_flush(rshard *sh) {
    struct rsubio *io = sh->sub;
    int done = 0;
    if (redisBufferWrite(io->c, &done) != REDIS_OK) {
        lost(sh, "pub/sub", io->c->errstr);
        return -1;
    }
    sub_want(io, UV_READABLE | (done ? 0 : UV_WRITABLE));
    return 0;
}

/* Sends VERB NAME on the pub/sub connection (written at once when it can). */
static int sub_command(rshard *sh, const char *verb, const char *name) {
    if (!sh->sub || !sh->sub_up) return -1;
    const char *argv[] = {verb, name};
    size_t lens[] = {strlen(verb), strlen(name)};
    if (redisAppendCommandArgv(sh->sub->c, 2, argv, lens) != REDIS_OK) return -1;
    return sub_flush(sh);
}

int redis_sub_send(rshard *sh, const char *verb, const char *channel) {
    char name[1100];
    redis_pubsub_name(sh->re, channel, name, sizeof(name));
    return sub_command(sh, verb, name);
}

static const char *verb(const redis_engine *re, int subscribe) {
    if (re->cluster) return subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE";
    return subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
}

/* Subscribes a channel of interest on server `on`, unsubscribing it where it
 * was; a channel that had events flowing elsewhere is marked lost. */
void redis_subscribe_channel(redis_engine *re, const char *channel, rchan *rc, rshard *on) {
    if (rc->on && rc->on != on) {
        if (rc->confirmed) {
            rc->lost = 1;
            redis_sub_send(rc->on, verb(re, 0), channel);
        }
    }
    rc->on = on;
    rc->confirmed = 0;
    if (redis_sub_send(on, verb(re, 1), channel) != 0) redis_answer_waiting(rc);
}

/* The control channel on one pub/sub connection: the first server's on a
 * set of shards (control messages are published there), any connected
 * node's on a cluster (a plain PUBLISH reaches every node). */
void redis_pick_control(redis_engine *re) {
    if (re->control_on && re->control_on->sub_up) return;
    re->control_on = NULL;
    for (int i = 0; i < (re->cluster ? re->nshards : 1); i++) {
        rshard *sh = re->shards[i];
        if (sh->sub_up && sub_command(sh, "SUBSCRIBE", re->control) == 0) {
            re->control_on = sh;
            return;
        }
    }
}

static void on_lost_event(redis_engine *re, const char *channel) {
    if (re->base.events.on_lost) re->base.events.on_lost(re->base.events.ud, channel);
}

/* An unsubscribe Redis sent by itself (a cluster slot moved away): the
 * channel is placed again once the slot map is read. */
static void dropped_by_server(redis_engine *re, rshard *sh, const char *channel) {
    rchan *rc = dict_get(re->interest, channel);
    if (!rc || rc->on != sh || !rc->confirmed) return;    /* ours, or moved already */
    log_info("redis: %s:%d unsubscribed %s (its slot moved)", sh->host, sh->port, channel);
    rc->on = NULL;
    rc->confirmed = 0;
    rc->lost = 1;
    redis_cluster_refresh(re);
}

/* A pub/sub error reply: a subscribe sent to a node that does not serve the
 * slot (MOVED): the slot is fixed and its channels placed again. */
static void sub_error(redis_engine *re, rshard *sh, const redisReply *r) {
    unsigned slot;
    char addr[300];
    if (re->cluster && sscanf(r->str, "MOVED %u %299s", &slot, addr) == 2 && slot < REDIS_SLOTS) {
        char *colon = strrchr(addr, ':');
        if (colon) {
            *colon = '\0';
            rshard *to = redis_node(re, addr[0] ? addr : sh->host, atoi(colon + 1));
            if (to) {
                re->slot_node[slot] = (uint16_t)(to->index + 1);
                to->owns_slots = 1;
            }
        }
        redis_place_channels(re);
        redis_cluster_refresh(re);
        return;
    }
    log_warn("redis: %s:%d pub/sub: %s", sh->host, sh->port, r->str);
}

static void sub_dispatch(rshard *sh, const redisReply *r) {
    redis_engine *re = sh->re;
    if (r->type == REDIS_REPLY_ERROR) { sub_error(re, sh, r); return; }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *type = r->element[0]->str;
    const redisReply *name = r->element[1], *m = r->element[2];
    int message = strcmp(type, "message") == 0 || strcmp(type, "smessage") == 0;
    if (strcmp(name->str, re->control) == 0) {
        if (message && m->type == REDIS_REPLY_STRING && re->base.events.on_control)
            re->base.events.on_control(re->base.events.ud, m->str, m->len);
        return;
    }
    size_t len;
    const char *ch = redis_pubsub_channel(re, name->str, name->len, &len);
    char stack[512], *channel = len < sizeof(stack) ? stack : malloc(len + 1);
    if (!ch || !channel) return;
    memcpy(channel, ch, len);
    channel[len] = '\0';
    if (message) {
        if (m->type == REDIS_REPLY_STRING) redis_deliver(re, channel, m->str, m->len);
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "ssubscribe") == 0) {
        rchan *rc = dict_get(re->interest, channel);
        if (rc && rc->on == sh) {
            rc->confirmed = 1;
            redis_answer_waiting(rc);
            if (rc->lost) {                               /* events flow again: recover the gap */
                rc->lost = 0;
                on_lost_event(re, channel);
            }
        }
    } else if (strcmp(type, "sunsubscribe") == 0) {
        dropped_by_server(re, sh, channel);
    }
    if (channel != stack) free(channel);
}

static void sub_read(rshard *sh) {
    struct rsubio *io = sh->sub;
    if (redisBufferRead(io->c) != REDIS_OK) {
        lost(sh, "pub/sub", io->c->errstr[0] ? io->c->errstr : "closed");
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(io->c, &reply) != REDIS_OK) {
            lost(sh, "pub/sub", io->c->errstr);
            return;
        }
        if (!reply) return;
        sub_dispatch(sh, reply);
        freeReplyObject(reply);
        if (sh->sub != io) return;                        /* closed meanwhile */
    }
}

/* The servers' channels of interest (and the control channel), subscribed
 * again on a new pub/sub connection. */
static void resubscribe(rshard *sh) {
    redis_engine *re = sh->re;
    redis_pick_control(re);
    dict_iter it;
    const char *name;
    void *v;
    dict_iter_init(&it, re->interest);
    while (dict_next(&it, &name, &v)) {
        rchan *rc = v;
        if (redis_route(re, name) != sh) continue;
        rc->lost = rc->lost || sh->sub_lost;
        rc->on = NULL;
        redis_subscribe_channel(re, name, rc, sh);
    }
    sh->sub_lost = 0;
}

static void both_up(rshard *sh) {
    if (!sh->cmd_up || !sh->sub_up) return;
    atomic_store(&sh->up, 1);
    sh->ever_up = 1;
    sh->backoff_ms = REDIS_BACKOFF_MIN_MS;
    log_info("redis: connected to %s:%d", sh->host, sh->port);
}

static void sub_poll(uv_poll_t *h, int status, int events) {
    struct rsubio *io = h->data;
    rshard *sh = io->sh;
    if (!sh) return;
    if (status < 0) { lost(sh, "pub/sub", uv_strerror(status)); return; }
    if (io->connecting && (events & (UV_WRITABLE | UV_READABLE))) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(io->c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err) { lost(sh, "pub/sub", strerror(err)); return; }
        io->connecting = 0;
        io->c->flags |= REDIS_CONNECTED;
        sh->sub_up = 1;
        sub_want(io, UV_READABLE);
        resubscribe(sh);
        if (sh->sub != io) return;
        both_up(sh);
        return;
    }
    if (events & UV_READABLE) sub_read(sh);
    if (sh->sub == io && (events & UV_WRITABLE)) sub_flush(sh);
}

static int sub_open(rshard *sh) {
    struct rsubio *io = calloc(1, sizeof(*io));
    if (!io) return -1;
    io->c = redisConnectNonBlock(sh->host, sh->port);
    if (!io->c || io->c->err || uv_poll_init(&sh->re->loop, &io->poll, io->c->fd)) {
        if (io->c) redisFree(io->c);
        free(io);
        return -1;
    }
    io->sh = sh;
    io->connecting = 1;
    io->poll.data = io;
    sh->sub = io;
    sub_want(io, UV_WRITABLE);
    return 0;
}

/* --------------------------------------------------------- both, retried */

static void retry_cb(uv_timer_t *t) { redis_connect(t->data); }

static void schedule(rshard *sh) {
    if (sh->re->stopping || uv_is_active((uv_handle_t *)&sh->retry)) return;
    uv_timer_start(&sh->retry, retry_cb, (uint64_t)sh->backoff_ms, 0);
    sh->backoff_ms = sh->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : sh->backoff_ms * 2;
}

/* The pub/sub connection dropped: its channels are unconfirmed until it is
 * back (and then marked lost); the control channel moves if it was here. */
static void lost(rshard *sh, const char *which, const char *why) {
    redis_engine *re = sh->re;
    int was_up = sh->sub_up;
    sub_close(sh);
    sh->sub_up = 0;
    sh->sub_lost = 1;
    atomic_store(&sh->up, 0);
    dict_iter it;
    const char *name;
    void *v;
    dict_iter_init(&it, re->interest);
    while (dict_next(&it, &name, &v)) {
        rchan *rc = v;
        if (rc->on != sh) continue;
        redis_answer_waiting(rc);
        rc->confirmed = 0;
    }
    if (re->control_on == sh) {
        re->control_on = NULL;
        redis_pick_control(re);
    }
    if (re->stopping) return;
    if (was_up) log_warn("redis: %s connection to %s:%d lost (%s); connecting again", which, sh->host, sh->port, why);
    schedule(sh);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    rshard *sh = ac->data;
    (void)status;
    sh->cmd = NULL;
    int was_up = sh->cmd_up;
    sh->cmd_up = 0;
    atomic_store(&sh->up, 0);
    if (sh->re->stopping) return;
    if (was_up)
        log_warn("redis: connection to %s:%d lost (%s); connecting again", sh->host, sh->port,
                 ac->errstr[0] ? ac->errstr : "closed");
    schedule(sh);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    rshard *sh = ac->data;
    if (status != REDIS_OK) {
        sh->cmd = NULL;                               /* hiredis frees it */
        if (!sh->re->stopping) schedule(sh);
        return;
    }
    sh->cmd_up = 1;
    both_up(sh);
    if (sh->re->cluster) redis_cluster_refresh(sh->re);
}

static redisAsyncContext *cmd_open(rshard *sh) {
    redisAsyncContext *ac = redisAsyncConnect(sh->host, sh->port);
    if (!ac) return NULL;
    if (ac->err) { redisAsyncFree(ac); return NULL; }
    ac->data = sh;
    if (ev_attach(ac, &sh->re->loop)) { redisAsyncFree(ac); return NULL; }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* the scripts first: commands after them on this connection find them */
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_PUBLISH);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_HISTORY);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_PRESENCE);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_MAP_WRITE);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_MAP_READ);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_BOARD_BATCH);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_BOARD_SNAPSHOT);
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", REDIS_LUA_COOLDOWN);
    return ac;
}

/* Opens whichever of the two connections is missing. */
void redis_connect(rshard *sh) {
    if (sh->re->stopping) return;
    if (!sh->cmd) sh->cmd = cmd_open(sh);
    if (!sh->sub && sub_open(sh)) sh->sub = NULL;
    if (!sh->cmd || !sh->sub) schedule(sh);
}

/* Closes both (stopping): calls in flight are answered by the disconnect. */
void redis_close(rshard *sh) {
    if (sh->cmd) redisAsyncDisconnect(sh->cmd);
    sub_close(sh);
    sh->sub_up = 0;
    uv_timer_stop(&sh->retry);
    uv_close((uv_handle_t *)&sh->retry, NULL);
}
