/* engine_delayed: a test-only engine (built with PLAZA_TEST_ENGINES) that
 * puts the memory engine behind random delays, to prove that nothing above
 * the engine assumes when, or on which thread, an engine answers.
 *
 * Every call is copied and queued; one thread of its own runs it on the
 * inner memory engine after a random delay of 0..engine.delay_max_ms, and
 * the answer goes to the caller from that thread. Every event the inner
 * engine reports (publication, join, leave) is queued again with its own
 * random delay before it reaches the hub, and only for channels of
 * interest (engine.subscribe), as a networked engine would deliver them.
 *
 * Order: calls on one channel run in the order they were made (a channel's
 * next due time is never before its previous one), and so do its events;
 * different channels interleave freely. The random source is seeded from
 * engine.delay_seed (0 = a random seed), and the seed is logged at start so
 * that a failing run can be replayed.
 *
 * Failure paths: every call on a channel whose name starts with
 * engine.delay_fail_prefix (when set) answers ENGINE_ERR_UNAVAILABLE after
 * its delay, as a networked engine that lost its server would.
 *
 * quiesce runs everything still queued at once, and from then on calls run
 * inline: the workers are being torn down and will not wait. */
#ifdef PLAZA_TEST_ENGINES

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>
#include "core/dict.h"
#include "engine/engine.h"
#include "engine/engine_memory.h"
#include "obs/log.h"

typedef enum {
    D_PUBLISH, D_JOIN, D_LEAVE, D_HISTORY, D_HISTORY_REMOVE, D_PRESENCE_ADD,
    D_PRESENCE_REMOVE, D_PRESENCE, D_PRESENCE_STATS, D_SUBSCRIBE, D_UNSUBSCRIBE,
    D_MAP_WRITE, D_MAP_STATE, D_MAP_STATS, D_MAP_CLEAR, D_BOARD_PUT, D_BOARD_SNAPSHOT,
    D_CONTROL, D_EV_PUB, D_EV_JOIN, D_EV_LEAVE,
} d_kind;

#define D_LAST_CALL D_CONTROL

/* A queued call or event, with copies of everything it refers to. */
typedef struct d_item {
    uint64_t due_ns, seq;          /* run order: due time, then arrival */
    d_kind kind;
    engine_cb cb;
    void *ud;
    char *channel;
    char *text;                    /* info, client id, or since epoch */
    size_t text_len;
    char *user;
    rcbuf *payload;
    rcbuf *key;                    /* an event's map key */
    char *strs[4];                 /* a map request's strings */
    engine_publish_req pub;
    engine_history_req hist;
    engine_map_write_req mw;
    engine_map_state_req ms;
    engine_board_put_req bp;
    engine_board_opts bo;
    engine_pub evpub;
    int64_t ttl_ms, now_ms;
} d_item;

typedef struct d_engine {
    engine base;
    engine *inner;
    uv_thread_t thread;
    uv_mutex_t lock;               /* guards everything below */
    uv_cond_t cond;
    d_item **heap;                 /* min-heap by (due_ns, seq) */
    size_t n, cap;
    uint64_t seq;
    dict *call_due;                /* channel -> last due of its calls (uint64 boxed) */
    dict *event_due;               /* channel -> last due of its events */
    dict *interest;                /* channels this node listens to */
    uint64_t rng;
    int max_ms, stop, quiesced, running;
    char *fail_prefix;             /* NULL: nothing fails */
} d_engine;

/* ---------------------------------------------------------------- heap */

static int item_before(const d_item *a, const d_item *b) {
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static int heap_push(d_engine *d, d_item *it) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        d_item **h = realloc(d->heap, cap * sizeof(*h));
        if (!h) return -1;
        d->heap = h;
        d->cap = cap;
    }
    size_t i = d->n++;
    while (i && item_before(it, d->heap[(i - 1) / 2])) {
        d->heap[i] = d->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    d->heap[i] = it;
    return 0;
}

static d_item *heap_pop(d_engine *d) {
    d_item *top = d->heap[0], *last = d->heap[--d->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= d->n) break;
        if (c + 1 < d->n && item_before(d->heap[c + 1], d->heap[c])) c++;
        if (!item_before(d->heap[c], last)) break;
        d->heap[i] = d->heap[c];
        i = c;
    }
    if (d->n) d->heap[i] = last;
    return top;
}

/* ------------------------------------------------------------- timing */

static uint64_t next_rand(d_engine *d) {          /* splitmix64 */
    uint64_t z = (d->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* now + a random delay, but not before the channel's previous item in
 * `order` (per-channel order). Under the lock. */
static uint64_t due_for(d_engine *d, dict *order, const char *channel) {
    uint64_t delay = d->max_ms ? next_rand(d) % ((uint64_t)d->max_ms * 1000000u + 1) : 0;
    uint64_t due = uv_hrtime() + delay;
    void **slot = channel ? dict_slot(order, channel, strlen(channel), NULL) : NULL;
    if (slot) {
        uint64_t prev = (uint64_t)(uintptr_t)*slot;
        if (prev > due) due = prev;
        *slot = (void *)(uintptr_t)due;
    }
    return due;
}

/* ---------------------------------------------------------------- items */

static void item_free(d_item *it) {
    free(it->channel);
    free(it->text);
    free(it->user);
    if (it->payload) rcbuf_unref(it->payload);
    if (it->key) rcbuf_unref(it->key);
    for (int i = 0; i < 4; i++) free(it->strs[i]);
    free(it);
}

static d_item *item_new(d_kind kind, const char *channel, engine_cb cb, void *ud) {
    d_item *it = calloc(1, sizeof(*it));
    if (!it) return NULL;
    it->kind = kind;
    it->cb = cb;
    it->ud = ud;
    if (channel && !(it->channel = strdup(channel))) { free(it); return NULL; }
    return it;
}

static int item_text(d_item *it, const char *text, size_t len) {
    if (!text) return 0;
    it->text = malloc(len + 1);
    if (!it->text) return -1;
    memcpy(it->text, text, len);
    it->text[len] = '\0';
    it->text_len = len;
    return 0;
}

static engine_op op_of(d_kind k) {
    static const engine_op ops[] = {
        ENGINE_OP_PUBLISH, ENGINE_OP_JOIN, ENGINE_OP_LEAVE, ENGINE_OP_HISTORY,
        ENGINE_OP_HISTORY_REMOVE, ENGINE_OP_PRESENCE_ADD, ENGINE_OP_PRESENCE_REMOVE,
        ENGINE_OP_PRESENCE, ENGINE_OP_PRESENCE_STATS, ENGINE_OP_SUBSCRIBE,
        ENGINE_OP_UNSUBSCRIBE, ENGINE_OP_MAP_WRITE, ENGINE_OP_MAP_STATE,
        ENGINE_OP_MAP_STATS, ENGINE_OP_MAP_CLEAR, ENGINE_OP_BOARD_PUT,
        ENGINE_OP_BOARD_SNAPSHOT, ENGINE_OP_CONTROL,
    };
    return k <= D_LAST_CALL ? ops[k] : ENGINE_OP_PUBLISH;
}

/* Runs a call on the inner engine (its answer goes straight to the
 * caller's callback), or delivers an event to the hub. Not under the lock. */
static int fails(const d_engine *d, const d_item *it) {
    return d->fail_prefix && it->kind <= D_LAST_CALL && it->channel &&
           strncmp(it->channel, d->fail_prefix, strlen(d->fail_prefix)) == 0;
}

static void item_run(d_engine *d, d_item *it) {
    engine *in = d->inner;
    const engine_events *ev = &d->base.events;
    if (fails(d, it)) {
        engine_op op = op_of(it->kind);
        engine_answer(it->cb, it->ud, op, engine_result_new(op, ENGINE_ERR_UNAVAILABLE));
        item_free(it);
        return;
    }
    switch (it->kind) {
    case D_PUBLISH: in->ops->publish(in, &it->pub, it->cb, it->ud); break;
    case D_JOIN: in->ops->publish_join(in, it->channel, it->text, it->text_len, it->cb, it->ud); break;
    case D_LEAVE: in->ops->publish_leave(in, it->channel, it->text, it->text_len, it->cb, it->ud); break;
    case D_HISTORY: in->ops->history(in, &it->hist, it->cb, it->ud); break;
    case D_HISTORY_REMOVE: in->ops->history_remove(in, it->channel, it->cb, it->ud); break;
    case D_PRESENCE_ADD: {
        engine_presence_entry e = {it->text, it->user, it->text + strlen(it->text) + 1,
                                   it->text_len - strlen(it->text) - 1};
        in->ops->presence_add(in, it->channel, &e, it->ttl_ms, it->now_ms, it->cb, it->ud);
        break;
    }
    case D_PRESENCE_REMOVE: in->ops->presence_remove(in, it->channel, it->text, it->cb, it->ud); break;
    case D_PRESENCE: in->ops->presence(in, it->channel, it->now_ms, it->cb, it->ud); break;
    case D_PRESENCE_STATS: in->ops->presence_stats(in, it->channel, it->now_ms, it->cb, it->ud); break;
    case D_SUBSCRIBE:
    case D_UNSUBSCRIBE: {
        int on = it->kind == D_SUBSCRIBE;
        uv_mutex_lock(&d->lock);
        if (on) dict_set(d->interest, it->channel, d);
        else dict_del(d->interest, it->channel, NULL);
        uv_mutex_unlock(&d->lock);
        if (on) in->ops->subscribe(in, it->channel, it->cb, it->ud);
        else in->ops->unsubscribe(in, it->channel, it->cb, it->ud);
        break;
    }
    case D_MAP_WRITE: in->ops->map_write(in, &it->mw, it->cb, it->ud); break;
    case D_MAP_STATE: in->ops->map_state(in, &it->ms, it->cb, it->ud); break;
    case D_MAP_STATS: in->ops->map_stats(in, it->channel, it->now_ms, it->cb, it->ud); break;
    case D_MAP_CLEAR: in->ops->map_clear(in, it->channel, it->cb, it->ud); break;
    case D_BOARD_PUT: in->ops->board_put(in, &it->bp, it->cb, it->ud); break;
    case D_CONTROL: in->ops->control(in, it->text, it->text_len, it->cb, it->ud); break;
    case D_BOARD_SNAPSHOT:
        in->ops->board_snapshot(in, it->channel, &it->bo, it->now_ms, it->cb, it->ud);
        break;
    case D_EV_PUB: if (ev->on_publication) ev->on_publication(ev->ud, it->channel, &it->evpub); break;
    case D_EV_JOIN: if (ev->on_join) ev->on_join(ev->ud, it->channel, it->text, it->text_len); break;
    case D_EV_LEAVE: if (ev->on_leave) ev->on_leave(ev->ud, it->channel, it->text, it->text_len); break;
    }
    item_free(it);
}

/* Queues a call (or, once quiesced, runs it now). On failure the caller
 * still gets its answer: an internal error. */
static void submit(d_engine *d, d_item *it, d_kind kind, engine_cb cb, void *ud) {
    if (!it) { engine_answer(cb, ud, op_of(kind), NULL); return; }
    uv_mutex_lock(&d->lock);
    if (d->quiesced) {
        uv_mutex_unlock(&d->lock);
        item_run(d, it);
        return;
    }
    it->due_ns = due_for(d, d->call_due, it->channel);
    it->seq = d->seq++;
    int rc = heap_push(d, it);
    if (!rc) uv_cond_signal(&d->cond);
    uv_mutex_unlock(&d->lock);
    if (rc) { item_free(it); engine_answer(cb, ud, op_of(kind), NULL); }
}

/* ----------------------------------------------------- inner events */

/* The inner engine reports an event (on the delay thread, under its shard
 * lock): queue it for the hub if this node listens to the channel. */
static void queue_event(d_engine *d, d_item *it) {
    if (!it) { log_error("delayed engine: out of memory; an event is lost"); return; }
    uv_mutex_lock(&d->lock);
    if (!dict_get(d->interest, it->channel)) { uv_mutex_unlock(&d->lock); item_free(it); return; }
    if (d->quiesced) { uv_mutex_unlock(&d->lock); item_run(d, it); return; }
    it->due_ns = due_for(d, d->event_due, it->channel);
    it->seq = d->seq++;
    int rc = heap_push(d, it);
    if (!rc) uv_cond_signal(&d->cond);
    uv_mutex_unlock(&d->lock);
    if (rc) { log_error("delayed engine: out of memory; an event is lost"); item_free(it); }
}

static void on_inner_pub(void *ud, const char *channel, const engine_pub *pub) {
    d_item *it = item_new(D_EV_PUB, channel, NULL, NULL);
    if (it) {
        it->evpub = *pub;
        it->payload = it->evpub.payload = pub->payload ? rcbuf_ref(pub->payload) : NULL;
        it->key = it->evpub.key = pub->key ? rcbuf_ref(pub->key) : NULL;
    }
    queue_event(ud, it);
}

static void inner_info_event(void *ud, d_kind kind, const char *channel,
                             const char *info, size_t len) {
    d_item *it = item_new(kind, channel, NULL, NULL);
    if (it && item_text(it, info, len)) { item_free(it); it = NULL; }
    queue_event(ud, it);
}

static void on_inner_join(void *ud, const char *channel, const char *info, size_t len) {
    inner_info_event(ud, D_EV_JOIN, channel, info, len);
}

static void on_inner_leave(void *ud, const char *channel, const char *info, size_t len) {
    inner_info_event(ud, D_EV_LEAVE, channel, info, len);
}

/* A control message: to the hub at once (its call was delayed already). */
static void on_inner_control(void *ud, const char *msg, size_t len) {
    d_engine *d = ud;
    if (d->base.events.on_control) d->base.events.on_control(d->base.events.ud, msg, len);
}

/* --------------------------------------------------------------- thread */

/* Forgets the channels' last due times (under the lock, heap empty: every
 * earlier item has run, so any new due time is after them). */
static void reset_order(d_engine *d) {
    if (dict_size(d->call_due)) { dict *n = dict_new(); if (n) { dict_free(d->call_due, NULL); d->call_due = n; } }
    if (dict_size(d->event_due)) { dict *n = dict_new(); if (n) { dict_free(d->event_due, NULL); d->event_due = n; } }
}

static void delay_main(void *arg) {
    d_engine *d = arg;
    uv_mutex_lock(&d->lock);
    while (!d->stop) {
        if (!d->n) {            /* nothing waits: no order left to keep */
            reset_order(d);
            uv_cond_wait(&d->cond, &d->lock);
            continue;
        }
        uint64_t now = uv_hrtime(), due = d->heap[0]->due_ns;
        if (due > now) { uv_cond_timedwait(&d->cond, &d->lock, due - now); continue; }
        d_item *it = heap_pop(d);
        uv_mutex_unlock(&d->lock);
        item_run(d, it);
        uv_mutex_lock(&d->lock);
    }
    uv_mutex_unlock(&d->lock);
}

/* Runs everything queued, in due order, the events that produces included. */
static void run_queued(d_engine *d) {
    for (;;) {
        uv_mutex_lock(&d->lock);
        d_item *it = d->n ? heap_pop(d) : NULL;
        uv_mutex_unlock(&d->lock);
        if (!it) return;
        item_run(d, it);
    }
}

static void thread_stop(d_engine *d) {
    if (!d->running) return;
    uv_mutex_lock(&d->lock);
    d->stop = 1;
    uv_cond_signal(&d->cond);
    uv_mutex_unlock(&d->lock);
    uv_thread_join(&d->thread);
    d->running = 0;
}

/* ------------------------------------------------------------------ ops */

#define D(e) ((d_engine *)(e))

static void d_publish(engine *e, const engine_publish_req *req, engine_cb cb, void *ud) {
    d_item *it = item_new(D_PUBLISH, req->channel, cb, ud);
    if (it) {
        it->pub = *req;
        it->pub.channel = it->channel;
        it->payload = it->pub.payload = rcbuf_ref(req->payload);
    }
    submit(D(e), it, D_PUBLISH, cb, ud);
}

static void d_info_call(engine *e, d_kind kind, const char *channel, const char *info,
                        size_t len, engine_cb cb, void *ud) {
    d_item *it = item_new(kind, channel, cb, ud);
    if (it && item_text(it, info, len)) { item_free(it); it = NULL; }
    submit(D(e), it, kind, cb, ud);
}

static void d_join(engine *e, const char *ch, const char *info, size_t len, engine_cb cb, void *ud) {
    d_info_call(e, D_JOIN, ch, info, len, cb, ud);
}

static void d_leave(engine *e, const char *ch, const char *info, size_t len, engine_cb cb, void *ud) {
    d_info_call(e, D_LEAVE, ch, info, len, cb, ud);
}

static void d_history(engine *e, const engine_history_req *req, engine_cb cb, void *ud) {
    d_item *it = item_new(D_HISTORY, req->channel, cb, ud);
    if (it) {
        it->hist = *req;
        it->hist.channel = it->channel;
        const char *ep = req->since_epoch;
        if (ep && item_text(it, ep, strlen(ep))) { item_free(it); it = NULL; }
        else if (it) it->hist.since_epoch = it->text;
    }
    submit(D(e), it, D_HISTORY, cb, ud);
}

static void d_channel_call(engine *e, d_kind kind, const char *channel, int64_t now_ms,
                           engine_cb cb, void *ud) {
    d_item *it = item_new(kind, channel, cb, ud);
    if (it) it->now_ms = now_ms;
    submit(D(e), it, kind, cb, ud);
}

static void d_history_remove(engine *e, const char *ch, engine_cb cb, void *ud) {
    d_channel_call(e, D_HISTORY_REMOVE, ch, 0, cb, ud);
}

static void d_presence(engine *e, const char *ch, int64_t now_ms, engine_cb cb, void *ud) {
    d_channel_call(e, D_PRESENCE, ch, now_ms, cb, ud);
}

static void d_presence_stats(engine *e, const char *ch, int64_t now_ms, engine_cb cb, void *ud) {
    d_channel_call(e, D_PRESENCE_STATS, ch, now_ms, cb, ud);
}

static void d_subscribe(engine *e, const char *ch, engine_cb cb, void *ud) {
    d_channel_call(e, D_SUBSCRIBE, ch, 0, cb, ud);
}

static void d_unsubscribe(engine *e, const char *ch, engine_cb cb, void *ud) {
    d_channel_call(e, D_UNSUBSCRIBE, ch, 0, cb, ud);
}

/* text holds "client NUL info" so one copy carries the entry. */
static void d_presence_add(engine *e, const char *channel, const engine_presence_entry *en,
                           int64_t ttl_ms, int64_t now_ms, engine_cb cb, void *ud) {
    d_item *it = item_new(D_PRESENCE_ADD, channel, cb, ud);
    size_t cl = strlen(en->client), il = en->info ? en->info_len : 0;
    char *buf = it ? malloc(cl + 1 + il + 1) : NULL;
    if (it && (!buf || !(it->user = strdup(en->user)))) { free(buf); item_free(it); it = NULL; buf = NULL; }
    if (it) {
        memcpy(buf, en->client, cl + 1);
        if (il) memcpy(buf + cl + 1, en->info, il);
        buf[cl + 1 + il] = '\0';
        it->text = buf;
        it->text_len = cl + 1 + il;
        it->ttl_ms = ttl_ms;
        it->now_ms = now_ms;
    }
    submit(D(e), it, D_PRESENCE_ADD, cb, ud);
}

static void d_presence_remove(engine *e, const char *channel, const char *client,
                              engine_cb cb, void *ud) {
    d_item *it = item_new(D_PRESENCE_REMOVE, channel, cb, ud);
    if (it && item_text(it, client, strlen(client))) { item_free(it); it = NULL; }
    submit(D(e), it, D_PRESENCE_REMOVE, cb, ud);
}

/* Copies s (NULL stays NULL) into the item's i-th string. -1 if out of memory. */
static int item_str(d_item *it, int i, const char *s, const char **out) {
    *out = NULL;
    if (!s) return 0;
    if (!(it->strs[i] = strdup(s))) return -1;
    *out = it->strs[i];
    return 0;
}

static void d_map_write(engine *e, const engine_map_write_req *req, engine_cb cb, void *ud) {
    d_item *it = item_new(D_MAP_WRITE, req->channel, cb, ud);
    if (it) {
        it->mw = *req;
        it->mw.channel = it->channel;
        it->payload = it->mw.payload = req->payload ? rcbuf_ref(req->payload) : NULL;
        char *key = malloc(req->key_len + 1);
        if (key) { memcpy(key, req->key, req->key_len); key[req->key_len] = '\0'; }
        it->strs[0] = key;
        it->mw.key = key;
        if (!key || item_str(it, 1, req->version_epoch, &it->mw.version_epoch) ||
            item_str(it, 2, req->expected_epoch, &it->mw.expected_epoch) ||
            item_str(it, 3, req->idempotency_key, &it->mw.idempotency_key)) {
            item_free(it);
            it = NULL;
        }
    }
    submit(D(e), it, D_MAP_WRITE, cb, ud);
}

static void d_map_state(engine *e, const engine_map_state_req *req, engine_cb cb, void *ud) {
    d_item *it = item_new(D_MAP_STATE, req->channel, cb, ud);
    if (it) {
        it->ms = *req;
        it->ms.channel = it->channel;
        if (item_str(it, 0, req->cursor, &it->ms.cursor) || item_str(it, 1, req->key, &it->ms.key) ||
            item_str(it, 2, req->epoch, &it->ms.epoch)) {
            item_free(it);
            it = NULL;
        }
    }
    submit(D(e), it, D_MAP_STATE, cb, ud);
}

static void d_map_stats(engine *e, const char *ch, int64_t now_ms, engine_cb cb, void *ud) {
    d_channel_call(e, D_MAP_STATS, ch, now_ms, cb, ud);
}

static void d_map_clear(engine *e, const char *ch, engine_cb cb, void *ud) {
    d_channel_call(e, D_MAP_CLEAR, ch, 0, cb, ud);
}

static void d_board_put(engine *e, const engine_board_put_req *req, engine_cb cb, void *ud) {
    d_item *it = item_new(D_BOARD_PUT, req->channel, cb, ud);
    if (it) {
        it->bp = *req;
        it->bp.channel = it->channel;
        if (item_str(it, 0, req->user, &it->bp.user)) { item_free(it); it = NULL; }
    }
    submit(D(e), it, D_BOARD_PUT, cb, ud);
}

static void d_control(engine *e, const char *msg, size_t len, engine_cb cb, void *ud) {
    d_item *it = item_new(D_CONTROL, "", cb, ud);
    if (it && item_text(it, msg, len)) { item_free(it); it = NULL; }
    submit(D(e), it, D_CONTROL, cb, ud);
}

static void d_board_snapshot(engine *e, const char *ch, const engine_board_opts *o,
                             int64_t now_ms, engine_cb cb, void *ud) {
    d_item *it = item_new(D_BOARD_SNAPSHOT, ch, cb, ud);
    if (it) {
        it->bo = *o;
        it->now_ms = now_ms;
    }
    submit(D(e), it, D_BOARD_SNAPSHOT, cb, ud);
}

static void d_gauges(engine *e, engine_gauge_fn fn, void *ud) {
    engine *in = D(e)->inner;
    in->ops->gauges(in, fn, ud);
}

static void d_quiesce(engine *e) {
    d_engine *d = D(e);
    thread_stop(d);
    uv_mutex_lock(&d->lock);
    d->quiesced = 1;
    uv_mutex_unlock(&d->lock);
    run_queued(d);
}

static void d_destroy(engine *e) {
    d_engine *d = D(e);
    if (!d) return;
    d_quiesce(e);
    if (d->inner) d->inner->ops->destroy(d->inner);
    dict_free(d->call_due, NULL);
    dict_free(d->event_due, NULL);
    dict_free(d->interest, NULL);
    free(d->heap);
    free(d->fail_prefix);
    uv_cond_destroy(&d->cond);
    uv_mutex_destroy(&d->lock);
    free(d);
}

static const engine_ops d_ops = {
    .publish = d_publish,
    .publish_join = d_join,
    .publish_leave = d_leave,
    .history = d_history,
    .history_remove = d_history_remove,
    .presence_add = d_presence_add,
    .presence_remove = d_presence_remove,
    .presence = d_presence,
    .presence_stats = d_presence_stats,
    .subscribe = d_subscribe,
    .unsubscribe = d_unsubscribe,
    .map_write = d_map_write,
    .map_state = d_map_state,
    .map_stats = d_map_stats,
    .map_clear = d_map_clear,
    .board_put = d_board_put,
    .board_snapshot = d_board_snapshot,
    .control = d_control,
    .gauges = d_gauges,
    .quiesce = d_quiesce,
    .destroy = d_destroy,
};

static uint64_t pick_seed(int configured) {
    uint32_t s = (uint32_t)configured;
    while (!s && getrandom(&s, sizeof(s), 0) == (ssize_t)sizeof(s) && !(s &= 0x7fffffff)) {}
    return s ? s : 1;
}

engine *engine_delayed_new(const config *cfg, const engine_events *events) {
    d_engine *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->base.ops = &d_ops;
    if (events) d->base.events = *events;
    uv_mutex_init(&d->lock);
    uv_cond_init(&d->cond);
    d->max_ms = cfg->engine_delay_max_ms;
    uint64_t seed = pick_seed(cfg->engine_delay_seed);
    d->rng = seed;
    if (cfg->engine_delay_fail_prefix && cfg->engine_delay_fail_prefix[0])
        d->fail_prefix = strdup(cfg->engine_delay_fail_prefix);
    d->call_due = dict_new();
    d->event_due = dict_new();
    d->interest = dict_new();
    engine_events inner_ev = {on_inner_pub, on_inner_join, on_inner_leave, d, NULL, on_inner_control};
    d->inner = engine_memory_new(cfg, &inner_ev);
    if (!d->call_due || !d->event_due || !d->interest || !d->inner ||
        uv_thread_create(&d->thread, delay_main, d) != 0) {
        d_destroy(&d->base);
        return NULL;
    }
    d->running = 1;
    log_info("engine: delayed (test build): answers and events after 0..%d ms, "
             "seed %llu (engine.delay_seed=%llu replays it)", d->max_ms,
             (unsigned long long)seed, (unsigned long long)seed);
    return &d->base;
}

#endif /* PLAZA_TEST_ENGINES */
