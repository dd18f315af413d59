/* hub: registry, per-worker channel maps, fan-out, engine answers on the
 * asking worker, and channel interest (see hub.h).
 *
 * Overflow: an event is posted to every worker's inbox with a bound
 * (channel.max_queued_events). When a worker's inbox is full, the event is
 * not dropped silently: the channel is recorded in that worker's overflow
 * set and an overflow task (a node of the worker's own, so posting it
 * cannot fail) is queued behind the events already waiting. It runs before
 * any later event of the channel, and tells every local subscriber of the
 * channel to resync (the protocol closes them with 3010; they reconnect and
 * recover the gap from history). Subscribers told to resync are marked dead
 * and get nothing more. */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include "core/clock.h"
#include "hub/hub.h"
#include "obs/log.h"

/* This worker's subscribers of one channel. */
typedef struct hub_chan {
    hub_sub **subs;
    uint32_t n, cap;
} hub_chan;

/* A shared event for subscribers of one channel: the encoded message and
 * the publication offset (0 for join/leave or channels without history),
 * with one inbox node per worker. */
typedef struct hub_event_node {
    task t;
    struct hub_event *ev;
} hub_event_node;

typedef struct hub_event {
    atomic_uint refs;
    uint8_t kind;                  /* HUB_EV_PUB, HUB_EV_JOIN, HUB_EV_LEAVE */
    uint64_t offset;
    void *msg;                     /* the sink's encoded message */
    hub *h;
    char *channel;                 /* inline, after the nodes */
    hub_event_node nodes[];        /* one per worker */
} hub_event;

enum { HUB_EV_PUB = 1, HUB_EV_JOIN, HUB_EV_LEAVE };

/* Node-wide state of one channel: subscribers on this node and the
 * engine's interest (see hub_sub_when_ready). */
enum { INT_NONE, INT_SUBSCRIBING, INT_READY };

typedef struct hub_waiter {
    struct hub_waiter *next;
    task t;
    hub_local *hl;
    void (*fn)(void *ud, int err);
    void *ud;
    int err;
} hub_waiter;

typedef struct hub_interest {
    int n;                         /* subscribers on this node */
    uint8_t state;
    hub_waiter *waiters;           /* waiting for the subscribe answer */
} hub_interest;

/* An interest call to make, in order (see icalls_run). */
typedef struct hub_icall {
    struct hub_icall *next;
    int on;
    hub *h;
    char channel[];
} hub_icall;

char hub_anonymous[1];

void hub_client_release(hub_client *cl) {
    if (cl->subs != cl->sub_small) {
        free(cl->subs);
        dict_free(cl->sub_index, NULL);
    }
    if (cl->user != hub_anonymous) free(cl->user);
    free(cl->conn_info);
    free(cl->ip);
    cl->subs = NULL;
    cl->sub_index = NULL;
    cl->user = NULL;
    cl->conn_info = NULL;
    cl->ip = NULL;
}

/* ------------------------------------------------------ engine calls */

static void count_error(hub *h, const engine_result *res) {
    if (res->err && res->op >= 0 && res->op < ENGINE_OP_COUNT)
        atomic_fetch_add_explicit(&h->engine_errors[res->op], 1, memory_order_relaxed);
}

typedef struct hub_call_ctx {
    task t;
    hub_local *hl;
    hub_answer_fn fn;
    void *ud;
    engine_result *res;
} hub_call_ctx;

static void call_run(task *t) {
    hub_call_ctx *c = TASK_OWNER(t, hub_call_ctx, t);
    c->fn(c->ud, c->res);
    free(c);
}

void *hub_call(hub_local *hl, hub_answer_fn fn, void *ud) {
    hub_call_ctx *c = malloc(sizeof(*c));
    if (!c) return NULL;
    c->t.run = call_run;
    c->hl = hl;
    c->fn = fn;
    c->ud = ud;
    c->res = NULL;
    return c;
}

/* Any thread: the answer goes to the asking worker (without a lock or a
 * wakeup when the engine answered on that worker's own thread). */
void hub_call_cb(void *call, engine_result *res) {
    hub_call_ctx *c = call;
    count_error(c->hl->hub, res);
    c->res = res;
    inbox_defer(c->hl->ib, &c->t);
}

void hub_count_cb(void *ud, engine_result *res) {
    count_error(ud, res);
    engine_result_free(res);
}

/* ------------------------------------------------------------ events */

static hub_event *event_new(hub *h, int kind, const char *channel, uint64_t offset,
                            void *msg) {
    size_t cl = strlen(channel), nn = (size_t)h->nlocals;
    hub_event *ev = malloc(sizeof(*ev) + nn * sizeof(hub_event_node) + cl + 1);
    if (!ev) { h->sink.msg_unref(msg); return NULL; }
    atomic_init(&ev->refs, 1);
    ev->kind = (uint8_t)kind;
    ev->offset = offset;
    ev->msg = msg;
    ev->h = h;
    ev->channel = (char *)&ev->nodes[nn];
    memcpy(ev->channel, channel, cl + 1);
    return ev;
}

static hub_event *event_ref(hub_event *ev) {
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
    return ev;
}

static void event_unref(hub_event *ev) {
    if (!ev || atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) != 1)
        return;
    ev->h->sink.msg_unref(ev->msg);
    free(ev);
}

/* The subscriber missed something it can no longer be given: it must
 * reconnect and recover. Nothing more is delivered to it. */
static void sub_resync(hub_sub *s, int reason) {
    if (s->dead) return;
    s->dead = 1;
    hub_local *hl = s->cl->hl;
    METRIC_ADD(hl->metrics.resyncs[reason], 1);
    for (uint32_t i = 0; i < s->npending; i++) event_unref(s->pending[i]);
    free(s->pending);
    s->pending = NULL;
    s->npending = 0;
    hl->hub->sink.resync(s->cl);
}

/* Holds an event for a subscription that is not live yet, up to
 * client.max_held_events. */
static void sub_hold(hub_sub *s, hub_event *ev) {
    if (s->dead) return;
    if (s->npending >= (uint32_t)s->cl->hl->hub->cfg->client_max_held_events) {
        sub_resync(s, HUB_RESYNC_HELD);
        return;
    }
    uint32_t n = s->npending;
    if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {   /* full: 0, 8, 16, 32... */
        uint32_t cap = n ? n * 2 : 8;
        hub_event **np = realloc(s->pending, cap * sizeof(*np));
        if (!np) { sub_resync(s, HUB_RESYNC_HELD); return; }
        s->pending = np;
    }
    s->pending[s->npending++] = event_ref(ev);
}

/* Delivers one event to one subscriber, in offset order, never twice; a
 * positioned subscriber that would skip an offset resyncs instead. */
static void sub_deliver(hub_sub *s, hub_event *ev) {
    hub_local *hl = s->cl->hl;
    if (s->dead) return;
    if (ev->kind != HUB_EV_PUB) {
        if (!s->join_leave) return;
    } else if (s->positioned && ev->offset) {
        if (ev->offset <= s->offset) return;          /* already seen */
        if (ev->offset != s->offset + 1) { sub_resync(s, HUB_RESYNC_GAP); return; }
        s->offset = ev->offset;
    }
    if (hl->hub->sink.send(s->cl, ev->msg) == 0)
        METRIC_ADD(hl->metrics.pushes_out, 1);
}

static void chan_resync(hub_local *hl, const char *channel) {
    hub_chan *ch = dict_get(hl->channels, channel);
    for (uint32_t i = 0; ch && i < ch->n; i++) sub_resync(ch->subs[i], HUB_RESYNC_INBOX);
}

/* The overflow task: every subscriber of a channel whose event could not
 * be queued here resyncs (all of them if even that was not recorded). */
static void overflow_run(task *t) {
    hub_local *hl = TASK_OWNER(t, hub_local, overflow_task);
    uv_mutex_lock(&hl->overflow_lock);
    dict *set = hl->overflowed;
    int all = hl->overflow_all;
    hl->overflowed = NULL;
    hl->overflow_all = 0;
    atomic_store(&hl->overflow_posted, 0);
    uv_mutex_unlock(&hl->overflow_lock);
    dict_iter it;
    const char *name;
    if (all) {
        dict_iter_init(&it, hl->channels);
        while (dict_next(&it, &name, NULL)) chan_resync(hl, name);
    } else if (set) {
        dict_iter_init(&it, set);
        while (dict_next(&it, &name, NULL)) chan_resync(hl, name);
    }
    dict_free(set, NULL);
}

/* Any thread, in the channel's order: records that hl missed an event of
 * channel, and makes sure the overflow task runs. */
static void overflow_mark(hub_local *hl, const char *channel) {
    atomic_fetch_add_explicit(&hl->events_dropped, 1, memory_order_relaxed);
    uv_mutex_lock(&hl->overflow_lock);
    if (!hl->overflowed) hl->overflowed = dict_new();
    if (!hl->overflowed || dict_set(hl->overflowed, channel, NULL) < 0) hl->overflow_all = 1;
    int posted = atomic_exchange(&hl->overflow_posted, 1);
    uv_mutex_unlock(&hl->overflow_lock);
    if (!posted) inbox_post(hl->ib, &hl->overflow_task);
}

static void local_deliver(task *t) {
    hub_event_node *node = TASK_OWNER(t, hub_event_node, t);
    hub_event *ev = node->ev;
    hub_local *hl = ev->h->locals[node - ev->nodes];
    hub_chan *ch = dict_get(hl->channels, ev->channel);
    for (uint32_t i = 0; ch && i < ch->n; i++) {
        hub_sub *s = ch->subs[i];
        if (s->live) sub_deliver(s, ev);
        else sub_hold(s, ev);
    }
    event_unref(ev);
}

/* Hands an event to every worker. Runs in the engine's per-channel order
 * (under its channel lock, for the memory engine), so the FIFO inboxes
 * keep each channel's order. */
static void broadcast(hub *h, hub_event *ev) {
    size_t max = (size_t)h->cfg->channel_max_queued_events;
    for (int i = 0; i < h->nlocals; i++) {
        hub_event_node *node = &ev->nodes[i];
        node->t.run = local_deliver;
        node->ev = event_ref(ev);
        if (inbox_post_bounded(h->locals[i]->ib, &node->t, max) != 0) {
            event_unref(ev);
            overflow_mark(h->locals[i], ev->channel);
        }
    }
    event_unref(ev);
}

/* Out of memory for an event: every worker's subscribers of the channel
 * resync, as if the event had not fit in their inboxes. */
static void lost_everywhere(hub *h, const char *channel) {
    log_warn("out of memory: an event of %s is lost; its subscribers resync", channel);
    for (int i = 0; i < h->nlocals; i++) overflow_mark(h->locals[i], channel);
}

static void on_publication(void *ud, const char *channel, const engine_pub *pub) {
    hub *h = ud;
    atomic_fetch_add_explicit(&h->publications, 1, memory_order_relaxed);
    void *m = h->sink.pub_msg(channel, pub);
    hub_event *ev = m ? event_new(h, HUB_EV_PUB, channel, pub->offset, m) : NULL;
    if (ev) broadcast(h, ev);
    else lost_everywhere(h, channel);
}

static void on_info_event(hub *h, int kind, const char *channel, void *m) {
    hub_event *ev = m ? event_new(h, kind, channel, 0, m) : NULL;
    if (ev) broadcast(h, ev);
    else lost_everywhere(h, channel);
}

static void on_join(void *ud, const char *channel, const char *info, size_t len) {
    hub *h = ud;
    on_info_event(h, HUB_EV_JOIN, channel, h->sink.join_msg(channel, info, len));
}

static void on_leave(void *ud, const char *channel, const char *info, size_t len) {
    hub *h = ud;
    on_info_event(h, HUB_EV_LEAVE, channel, h->sink.leave_msg(channel, info, len));
}

engine_events hub_engine_events(hub *h) {
    engine_events ev = {on_publication, on_join, on_leave, h};
    return ev;
}

/* ----------------------------------------------------------- registry */

static int count_add(dict *d, const char *key, int delta, int limit) {
    intptr_t n = (intptr_t)dict_get(d, key);
    if (delta > 0 && limit > 0 && n + delta > limit) return -1;
    n += delta;
    if (n <= 0) dict_del(d, key, NULL);
    else if (dict_set(d, key, (void *)n) < 0) return -1;
    return 0;
}

int hub_client_register(hub_client *cl) {
    hub *h = cl->hl->hub;
    int rc = 0;
    uv_mutex_lock(&h->lock);
    if (cl->user[0] && count_add(h->users, cl->user, 1, h->cfg->client_user_connection_limit))
        rc = -1;
    else
        h->nclients++;
    uv_mutex_unlock(&h->lock);
    if (rc) return rc;
    hub_local *hl = cl->hl;
    cl->prev = NULL;
    cl->next = hl->clients;
    if (hl->clients) hl->clients->prev = cl;
    hl->clients = cl;
    hl->nclients++;
    cl->registered = 1;
    return 0;
}

void hub_client_unregister(hub_client *cl) {
    if (!cl->registered) return;
    hub *h = cl->hl->hub;
    uv_mutex_lock(&h->lock);
    h->nclients--;
    if (cl->user[0]) count_add(h->users, cl->user, -1, 0);
    uv_mutex_unlock(&h->lock);
    hub_local *hl = cl->hl;
    if (cl->prev) cl->prev->next = cl->next;
    else hl->clients = cl->next;
    if (cl->next) cl->next->prev = cl->prev;
    cl->prev = cl->next = NULL;
    hl->nclients--;
    cl->registered = 0;
}

/* ----------------------------------------------------------- interest */

/* Makes the queued interest calls, in order, on whichever thread finds
 * nobody doing it (a combiner): calls go out in the order they were
 * decided even though they are made outside the lock (an engine may answer
 * inside the call, and the answer takes the lock). */
static void interest_answer(void *ud, engine_result *res);

static void icalls_run(hub *h) {
    uv_mutex_lock(&h->lock);
    if (h->icalls_running) { uv_mutex_unlock(&h->lock); return; }
    h->icalls_running = 1;
    while (h->icalls_head) {
        hub_icall *c = h->icalls_head;
        h->icalls_head = c->next;
        if (!h->icalls_head) h->icalls_tail = NULL;
        uv_mutex_unlock(&h->lock);
        if (c->on) h->eng->ops->subscribe(h->eng, c->channel, interest_answer, c);
        else h->eng->ops->unsubscribe(h->eng, c->channel, interest_answer, c);
        uv_mutex_lock(&h->lock);
    }
    h->icalls_running = 0;
    uv_mutex_unlock(&h->lock);
}

/* Under the lock. -1 if out of memory. */
static int icall_queue(hub *h, const char *channel, int on) {
    size_t len = strlen(channel);
    hub_icall *c = malloc(sizeof(*c) + len + 1);
    if (!c) return -1;
    c->next = NULL;
    c->on = on;
    c->h = h;
    memcpy(c->channel, channel, len + 1);
    if (h->icalls_tail) h->icalls_tail->next = c;
    else h->icalls_head = c;
    h->icalls_tail = c;
    return 0;
}

static void waiter_run(task *t) {
    hub_waiter *w = TASK_OWNER(t, hub_waiter, t);
    w->fn(w->ud, w->err);
    free(w);
}

static void waiters_post(hub_waiter *w, int err) {
    while (w) {
        hub_waiter *next = w->next;
        w->err = err;
        w->t.run = waiter_run;
        inbox_defer(w->hl->ib, &w->t);
        w = next;
    }
}

/* Any thread: the engine answered a subscribe or an unsubscribe. */
static void interest_answer(void *ud, engine_result *res) {
    hub_icall *c = ud;
    hub *h = c->h;
    int err = res->err;
    count_error(h, res);
    engine_result_free(res);
    hub_waiter *ready = NULL;
    uv_mutex_lock(&h->lock);
    hub_interest *in = c->on ? dict_get(h->chans, c->channel) : NULL;
    if (in && in->state == INT_SUBSCRIBING) {
        ready = in->waiters;
        in->waiters = NULL;
        if (err) in->state = INT_NONE;          /* the next subscriber asks again */
        else in->state = INT_READY;
        if (in->n == 0) {                       /* everyone left meanwhile */
            if (!err && icall_queue(h, c->channel, 0) != 0)
                log_warn("out of memory: interest in %s is kept", c->channel);
            dict_del(h->chans, c->channel, NULL);
            free(in);
        }
    }
    uv_mutex_unlock(&h->lock);
    if (err) log_warn("engine %s %s: %s", c->on ? "subscribe" : "unsubscribe",
                      c->channel, engine_strerror(err));
    waiters_post(ready, err);
    free(c);
    icalls_run(h);
}

/* Counts a new local subscriber of channel (under the lock). */
static int interest_add(hub *h, const char *channel) {
    int added;
    void **slot = dict_slot(h->chans, channel, strlen(channel), &added);
    if (!slot) return HUB_ADD_NOMEM;
    hub_interest *in = *slot;
    int max = h->cfg->channel_max_clients;
    if (!added && max > 0 && in->n >= max) return HUB_ADD_LIMIT;
    if (added && !(in = *slot = calloc(1, sizeof(*in)))) {
        dict_del(h->chans, channel, NULL);
        return HUB_ADD_NOMEM;
    }
    in->n++;
    return HUB_ADD_OK;
}

/* The last local subscriber of channel is gone: unsubscribe, unless a
 * subscribe is still in flight (its answer does it). Under the lock. */
static void interest_drop(hub *h, const char *channel) {
    hub_interest *in = dict_get(h->chans, channel);
    if (!in || --in->n > 0) return;
    if (in->state == INT_SUBSCRIBING) return;
    if (in->state == INT_READY && icall_queue(h, channel, 0) != 0)
        log_warn("out of memory: interest in %s is kept", channel);
    dict_del(h->chans, channel, NULL);
    free(in);
}

int hub_sub_when_ready(hub_sub *s, void (*fn)(void *ud, int err), void *ud) {
    hub_local *hl = s->cl->hl;
    hub *h = hl->hub;
    hub_waiter *w = calloc(1, sizeof(*w));
    if (!w) return -1;
    w->hl = hl;
    w->fn = fn;
    w->ud = ud;
    int subscribe = 0, now = 0;
    uv_mutex_lock(&h->lock);
    hub_interest *in = dict_get(h->chans, s->channel);
    if (!in || in->state == INT_READY) {
        now = 1;
    } else {
        if (in->state == INT_NONE) {
            if (icall_queue(h, s->channel, 1) != 0) { uv_mutex_unlock(&h->lock); free(w); return -1; }
            in->state = INT_SUBSCRIBING;
            subscribe = 1;
        }
        w->next = in->waiters;
        in->waiters = w;
    }
    uv_mutex_unlock(&h->lock);
    if (now) waiters_post(w, 0);
    if (subscribe) icalls_run(h);
    return 0;
}

/* ------------------------------------------------------ subscriptions */

static hub_chan *chan_get(hub_local *hl, const char *channel) {
    hub_chan *ch = dict_get(hl->channels, channel);
    if (ch) return ch;
    ch = calloc(1, sizeof(*ch));
    if (ch && dict_set(hl->channels, channel, ch) < 0) { free(ch); return NULL; }
    return ch;
}

static void chan_free_if_empty(hub_local *hl, const char *channel, hub_chan *ch) {
    if (!ch || ch->n) return;
    dict_del(hl->channels, channel, NULL);
    free(ch->subs);
    free(ch);
}

/* Past this many subscriptions a client looks them up in a dict. */
#define SUB_INDEX_MIN 16

static int client_add_sub(hub_client *cl, hub_sub *s) {
    if (!cl->cap_subs) {                  /* the first one lives inline */
        cl->subs = cl->sub_small;
        cl->cap_subs = 1;
    } else if (cl->nsubs == cl->cap_subs) {
        if (cl->cap_subs > UINT32_MAX / 2) return -1;
        uint32_t cap = cl->cap_subs < 4 ? 4 : cl->cap_subs * 2;
        hub_sub **ns = malloc((size_t)cap * sizeof(*ns));
        if (!ns) return -1;
        memcpy(ns, cl->subs, (size_t)cl->nsubs * sizeof(*ns));
        if (cl->subs != cl->sub_small) free(cl->subs);
        else cl->sub_index = NULL;         /* the union's other member from now on */
        cl->subs = ns;
        cl->cap_subs = cap;
    }
    if (cl->nsubs >= SUB_INDEX_MIN) {
        if (!cl->sub_index) {
            if (!(cl->sub_index = dict_new())) return -1;
            for (uint32_t i = 0; i < cl->nsubs; i++)
                if (dict_set(cl->sub_index, cl->subs[i]->channel, cl->subs[i]) < 0) {
                    dict_free(cl->sub_index, NULL);
                    cl->sub_index = NULL;
                    return -1;
                }
        }
        if (dict_set(cl->sub_index, s->channel, s) < 0) return -1;
    }
    s->cl_index = cl->nsubs;
    cl->subs[cl->nsubs++] = s;
    return 0;
}

static dict *sub_index(const hub_client *cl) {
    return cl->subs != cl->sub_small ? cl->sub_index : NULL;
}

static void client_del_sub(hub_client *cl, hub_sub *s) {
    hub_sub *last = cl->subs[--cl->nsubs];
    cl->subs[s->cl_index] = last;
    last->cl_index = s->cl_index;
    if (sub_index(cl)) dict_del(cl->sub_index, s->channel, NULL);
}

static int chan_push(hub_chan *ch, hub_sub *s) {
    if (ch->n == ch->cap) {
        if (ch->cap > UINT32_MAX / 2) return -1;
        uint32_t cap = ch->cap ? ch->cap * 2 : 4;
        hub_sub **ns = realloc(ch->subs, (size_t)cap * sizeof(*ns));
        if (!ns) return -1;
        ch->subs = ns;
        ch->cap = cap;
    }
    s->index = ch->n;
    ch->subs[ch->n++] = s;
    return 0;
}

/* Serials tell a subscription from a later one of the same client and
 * channel at the same address; per worker, as subscriptions are. */
static uint32_t next_serial(hub_local *hl) { return ++hl->sub_serial; }

int hub_sub_add(hub_client *cl, const char *channel, const ns_options *ns,
                hub_sub **out) {
    hub_local *hl = cl->hl;
    hub *h = hl->hub;
    *out = NULL;
    uv_mutex_lock(&h->lock);
    int rc = interest_add(h, channel);
    uv_mutex_unlock(&h->lock);
    if (rc) return rc;
    size_t len = strlen(channel);
    hub_sub *s = calloc(1, offsetof(hub_sub, channel) + len + 1);
    hub_chan *ch = chan_get(hl, channel);
    if (!s || !ch) goto fail;
    memcpy(s->channel, channel, len + 1);
    if (client_add_sub(cl, s) != 0) goto fail;
    if (chan_push(ch, s) != 0) { client_del_sub(cl, s); goto fail; }
    s->cl = cl;
    s->ns = ns;
    s->serial = next_serial(hl);
    METRIC_ADD(hl->metrics.subscriptions, 1);
    *out = s;
    return HUB_ADD_OK;
fail:
    uv_mutex_lock(&h->lock);
    interest_drop(h, channel);
    uv_mutex_unlock(&h->lock);
    icalls_run(h);
    chan_free_if_empty(hl, channel, ch);
    free(s);
    return HUB_ADD_NOMEM;
}

void hub_sub_go_live(hub_sub *s, uint64_t offset) {
    hub_event **held = s->pending;          /* taken out: a resync while */
    uint32_t n = s->npending;               /* delivering them frees nothing twice */
    s->pending = NULL;
    s->npending = 0;
    s->offset = offset;
    s->live = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (!s->dead) sub_deliver(s, held[i]);
        event_unref(held[i]);
    }
    free(held);
}

static void chan_unlink(hub_local *hl, hub_sub *s) {
    hub_chan *ch = dict_get(hl->channels, s->channel);
    if (!ch) return;
    hub_sub *last = ch->subs[--ch->n];
    ch->subs[s->index] = last;
    last->index = s->index;
    chan_free_if_empty(hl, s->channel, ch);
}

void hub_sub_remove(hub_sub *s) {
    hub_client *cl = s->cl;
    hub_local *hl = cl->hl;
    hub *h = hl->hub;
    chan_unlink(hl, s);
    uv_mutex_lock(&h->lock);
    interest_drop(h, s->channel);
    uv_mutex_unlock(&h->lock);
    icalls_run(h);
    client_del_sub(cl, s);
    for (uint32_t i = 0; i < s->npending; i++) event_unref(s->pending[i]);
    METRIC_SUB(hl->metrics.subscriptions, 1);
    free(s->pending);
    free(s->chan_info);
    free(s);
}

hub_sub *hub_client_sub(const hub_client *cl, const char *channel) {
    if (sub_index(cl)) return dict_get(cl->sub_index, channel);
    for (uint32_t i = 0; i < cl->nsubs; i++)
        if (strcmp(cl->subs[i]->channel, channel) == 0) return cl->subs[i];
    return NULL;
}

/* ------------------------------------------------ cross-worker actions */

typedef struct user_task_node {
    task t;
    struct user_task *ut;
    hub_local *hl;
} user_task_node;

typedef struct user_task {
    atomic_int refs;
    char *user, *client_id;
    void (*fn)(hub_client *cl, void *arg);
    void *arg;
    void (*free_arg)(void *arg);
    user_task_node nodes[];
} user_task;

static void user_task_unref(user_task *t) {
    if (atomic_fetch_sub(&t->refs, 1) != 1) return;
    if (t->free_arg) t->free_arg(t->arg);
    free(t->user);
    free(t->client_id);
    free(t);
}

static void run_user_task(task *tk) {
    user_task_node *node = TASK_OWNER(tk, user_task_node, t);
    user_task *t = node->ut;
    hub_local *hl = node->hl;
    /* Collect first: fn may change the list. A scan, not an index: server
     * API actions are rare, and an index would cost memory per client. */
    size_t n = hl->nclients, k = 0;
    hub_client **match = n ? malloc(n * sizeof(*match)) : NULL;
    for (hub_client *cl = hl->clients; match && cl; cl = cl->next) {
        if (t->client_id[0] && strcmp(cl->id, t->client_id) != 0) continue;
        if ((t->user[0] || !t->client_id[0]) && strcmp(cl->user, t->user) != 0) continue;
        match[k++] = cl;
    }
    if (n && !match) log_warn("out of memory: a server API action skipped worker %d", hl->id);
    for (size_t i = 0; i < k; i++) t->fn(match[i], t->arg);
    free(match);
    user_task_unref(t);
}

int hub_for_user(hub *h, const char *user, const char *client_id,
                 void (*fn)(hub_client *cl, void *arg), void *arg,
                 void (*free_arg)(void *arg)) {
    user_task *t = calloc(1, sizeof(*t) + (size_t)h->nlocals * sizeof(user_task_node));
    if (t) {
        t->user = strdup(user ? user : "");
        t->client_id = strdup(client_id ? client_id : "");
    }
    if (!t || !t->user || !t->client_id) {
        if (t) { free(t->user); free(t->client_id); free(t); }
        if (free_arg) free_arg(arg);
        return -1;
    }
    t->fn = fn;
    t->arg = arg;
    t->free_arg = free_arg;
    atomic_init(&t->refs, h->nlocals);
    for (int i = 0; i < h->nlocals; i++) {
        t->nodes[i].t.run = run_user_task;
        t->nodes[i].ut = t;
        t->nodes[i].hl = h->locals[i];
        inbox_post(h->locals[i]->ib, &t->nodes[i].t);
    }
    return 0;
}

void hub_channels(hub *h, void (*fn)(void *ud, const char *channel, int n), void *ud) {
    uv_mutex_lock(&h->lock);
    dict_iter it;
    dict_iter_init(&it, h->chans);
    const char *key;
    void *val;
    while (dict_next(&it, &key, &val)) fn(ud, key, ((hub_interest *)val)->n);
    uv_mutex_unlock(&h->lock);
}

void hub_counts(hub *h, int *clients, int *users, int *channels) {
    uv_mutex_lock(&h->lock);
    *clients = h->nclients;
    *users = (int)dict_size(h->users);
    *channels = (int)dict_size(h->chans);
    uv_mutex_unlock(&h->lock);
}

/* --------------------------------------------- presence refresh, lifecycle */

/* Refreshes the presence entries of this worker's subscriptions well
 * before their TTL, so entries of a node that dies expire by themselves. */
static void on_presence_timer(uv_timer_t *t) {
    hub_local *hl = t->data;
    hub *h = hl->hub;
    int64_t now = clock_now_ms(), ttl = h->cfg->channel_presence_ttl_ms;
    for (hub_client *cl = hl->clients; cl; cl = cl->next) {
        for (uint32_t i = 0; i < cl->nsubs; i++) {
            hub_sub *s = cl->subs[i];
            if (!s->presence || !s->live || s->dead) continue;
            size_t len = 0;
            char *info = h->sink.client_info(cl, s, &len);
            if (!info) continue;
            engine_presence_entry e = {cl->id, cl->user, info, len};
            h->eng->ops->presence_add(h->eng, s->channel, &e, ttl, now, hub_count_cb, h);
            free(info);
        }
    }
}

static hub_local *local_new(hub *h, int id, uv_loop_t *loop, inbox *ib) {
    hub_local *hl = calloc(1, sizeof(*hl));
    if (!hl) return NULL;
    hl->hub = h;
    hl->id = id;
    hl->loop = loop;
    hl->ib = ib;
    hl->overflow_task.run = overflow_run;
    atomic_init(&hl->overflow_posted, 0);
    atomic_init(&hl->events_dropped, 0);
    hl->channels = dict_new();
    if (!hl->channels) { free(hl); return NULL; }
    uv_mutex_init(&hl->overflow_lock);
    uint64_t period = (uint64_t)h->cfg->channel_presence_ttl_ms / 3;
    if (period < 100) period = 100;
    uv_timer_init(loop, &hl->presence_timer);
    hl->presence_timer.data = hl;
    uv_timer_start(&hl->presence_timer, on_presence_timer, period, period);
    return hl;
}

static void uuid_v4(char out[37]) {
    unsigned char b[16];
    static const char hex[] = "0123456789abcdef";
    if (RAND_bytes(b, sizeof(b)) != 1)
        for (size_t i = 0; i < sizeof(b); i++) b[i] = (unsigned char)rand();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void hub_new_id(char out[37]) { uuid_v4(out); }

hub *hub_new(const config *cfg, const hub_sink *sink, int n, uv_loop_t **loops,
             inbox **inboxes) {
    hub *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->cfg = cfg;
    h->sink = *sink;
    h->started_ms = clock_now_ms();
    uuid_v4(h->node_id);
    uv_mutex_init(&h->lock);
    h->users = dict_new();
    h->ips = dict_new();
    h->chans = dict_new();
    h->locals = calloc((size_t)n, sizeof(*h->locals));
    if (!h->users || !h->ips || !h->chans || !h->locals) {
        hub_free(h);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!(h->locals[i] = local_new(h, i, loops[i], inboxes[i]))) { hub_free(h); return NULL; }
        h->nlocals = i + 1;
    }
    return h;
}

void hub_set_engine(hub *h, engine *e) { h->eng = e; }

static void free_chan(void *v) {
    hub_chan *ch = v;
    free(ch->subs);
    free(ch);
}

/* After the loops are gone: every connection has been closed (and its
 * client cleaned up), every task run. */
void hub_free(hub *h) {
    if (!h) return;
    for (int i = 0; i < h->nlocals; i++) {
        hub_local *hl = h->locals[i];
        dict_free(hl->channels, free_chan);
        dict_free(hl->overflowed, NULL);
        uv_mutex_destroy(&hl->overflow_lock);
        free(hl);
    }
    free(h->locals);
    dict_free(h->users, NULL);
    dict_free(h->ips, NULL);
    dict_free(h->chans, free);
    while (h->icalls_head) {
        hub_icall *c = h->icalls_head;
        h->icalls_head = c->next;
        free(c);
    }
    uv_mutex_destroy(&h->lock);
    free(h);
}

int hub_ip_acquire(hub *h, const char *ip) {
    uv_mutex_lock(&h->lock);
    int rc = count_add(h->ips, ip, 1, h->cfg->client_connection_limit_per_ip);
    uv_mutex_unlock(&h->lock);
    return rc;
}

void hub_ip_release(hub *h, const char *ip) {
    uv_mutex_lock(&h->lock);
    count_add(h->ips, ip, -1, 0);
    uv_mutex_unlock(&h->lock);
}
