/* interest: this node's interest in channels, towards the engine (see
 * hub.h): a record per channel with subscribers here (their count, the
 * engine's subscribe state, the subscriptions waiting for it), and the
 * subscribe/unsubscribe calls, made in the order they were decided. */
#include <stdlib.h>
#include <string.h>
#include "hub/hub_int.h"
#include "obs/log.h"

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

/* An interest call to make, in order (see hub_interest_flush). */
typedef struct hub_icall {
    struct hub_icall *next;
    int on;
    hub *h;
    char channel[];
} hub_icall;

/* ----------------------------------------------------------- interest */

/* Makes the queued interest calls, in order, on whichever thread finds
 * nobody doing it (a combiner): calls go out in the order they were
 * decided even though they are made outside the lock (an engine may answer
 * inside the call, and the answer takes the lock). */
static void interest_answer(void *ud, engine_result *res);

void hub_interest_flush(hub *h) {
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
    hub_count_error(h, res);
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
    hub_interest_flush(h);
}

/* Counts a new local subscriber of channel (under the lock). */
int hub_interest_add(hub *h, const char *channel) {
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
void hub_interest_drop(hub *h, const char *channel) {
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
    if (subscribe) hub_interest_flush(h);
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

void hub_interest_free(hub *h) {
    dict_free(h->chans, free);
    h->chans = NULL;
    while (h->icalls_head) {
        hub_icall *c = h->icalls_head;
        h->icalls_head = c->next;
        free(c);
    }
}
