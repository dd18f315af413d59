/* fanout: what the engine says, brought to this node's subscribers (see
 * hub.h): engine answers posted back to the worker that asked (hub_call),
 * publications, joins and leaves encoded once and handed to every worker's
 * inbox in the engine's per-channel order, and delivered there to the
 * local subscribers of the channel, live or held.
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
#include "hub/hub_int.h"
#include "obs/log.h"

/* ------------------------------------------------------ engine calls */

void hub_count_error(hub *h, const engine_result *res) {
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
    hub_count_error(c->hl->hub, res);
    c->res = res;
    inbox_defer(c->hl->ib, &c->t);
}

void hub_count_cb(void *ud, engine_result *res) {
    hub_count_error(ud, res);
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

void hub_event_unref(hub_event *ev) {
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
    for (uint32_t i = 0; i < s->npending; i++) hub_event_unref(s->pending[i]);
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

void hub_sub_deliver(hub_sub *s, hub_event *ev) {
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
void hub_overflow_run(task *t) {
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
        if (s->live) hub_sub_deliver(s, ev);
        else sub_hold(s, ev);
    }
    hub_event_unref(ev);
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
            hub_event_unref(ev);
            overflow_mark(h->locals[i], ev->channel);
        }
    }
    hub_event_unref(ev);
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

/* The engine lost events of the channel: its subscribers everywhere resync
 * (reconnect and recover from history, or are told it is gone). */
static void on_lost(void *ud, const char *channel) {
    hub *h = ud;
    log_warn("engine: events of %s may have been lost; its subscribers recover from history", channel);
    for (int i = 0; i < h->nlocals; i++) overflow_mark(h->locals[i], channel);
}

/* A control message from some node: the protocol runs it (any thread). */
static void on_control(void *ud, const char *msg, size_t len) {
    hub *h = ud;
    if (h->sink.control) h->sink.control(h, msg, len);
}

engine_events hub_engine_events(hub *h) {
    engine_events ev = {on_publication, on_join, on_leave, h, on_lost, on_control};
    return ev;
}
