/* hub: registry, per-worker channel maps and fan-out (see hub.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>
#include "hub/hub.h"
#include "net/server.h"
#include "net/worker.h"
#include "net/ws_conn.h"
#include "obs/log.h"

/* This worker's subscribers of one channel. */
typedef struct hub_chan {
    hub_sub **subs;
    uint32_t n, cap;
} hub_chan;

int64_t hub_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

hub_local *hub_local_of(conn *c) { return c->w->ext; }

char hub_anonymous[1];

void hub_client_release(hub_client *cl) {
    if (cl->subs != cl->sub_small) free(cl->subs);
    if (cl->user != hub_anonymous) free(cl->user);
    free(cl->conn_info);
    free(cl->ip);
    cl->subs = NULL;
    cl->user = NULL;
    cl->conn_info = NULL;
    cl->ip = NULL;
}

/* ---- events ---- */

static hub_event *event_new(int kind, const char *channel, uint64_t offset,
                            ws_msg *msg) {
    size_t cl = strlen(channel);
    hub_event *ev = malloc(sizeof(*ev) + cl + 1);
    if (!ev) { ws_msg_unref(msg); return NULL; }
    atomic_init(&ev->refs, 1);
    ev->kind = (uint8_t)kind;
    ev->offset = offset;
    ev->pub_json = NULL;
    ev->msg = msg;
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
    ws_msg_unref(ev->msg);
    rcbuf_unref(ev->pub_json);
    free(ev);
}

/* Holds an event for a subscription that is not live yet. */
static void sub_hold(hub_sub *s, hub_event *ev) {
    if (s->npending == s->cap_pending) {
        uint32_t cap = s->cap_pending ? s->cap_pending * 2 : 8;
        hub_event **np = realloc(s->pending, cap * sizeof(*np));
        if (!np) {   /* cannot keep the order: make the client reconnect and recover */
            ws_conn_close(s->cl->c, HUB_CLOSE_INSUFFICIENT_STATE, "insufficient state");
            return;
        }
        s->pending = np;
        s->cap_pending = cap;
    }
    s->pending[s->npending++] = event_ref(ev);
}

/* Delivers one event to one subscriber, in offset order, never twice. */
static void sub_deliver(hub_sub *s, hub_event *ev) {
    hub_local *hl = s->cl->hl;
    if (ev->kind != HUB_EV_PUB) {
        if (!s->join_leave) return;
    } else if (s->positioned && ev->offset) {
        if (ev->offset <= s->offset) return;          /* already seen */
        s->offset = ev->offset;
    }
    if (ws_send_msg(s->cl->c, ev->msg) == 0)
        METRIC_ADD(hl->metrics.pushes_out, 1);
}

static void local_deliver(worker *w, void *arg) {
    hub_event *ev = arg;
    hub_local *hl = w->ext;
    hub_chan *ch = dict_get(hl->channels, ev->channel);
    for (uint32_t i = 0; ch && i < ch->n; i++) {
        hub_sub *s = ch->subs[i];
        if (s->live) sub_deliver(s, ev);
        else sub_hold(s, ev);
    }
    event_unref(ev);
}

/* Hands an event to every worker (runs under the engine's channel lock, so
 * the per-worker FIFO inboxes keep each channel's order). */
static void broadcast(hub *h, hub_event *ev) {
    for (int i = 0; i < h->nlocals; i++) {
        event_ref(ev);
        if (worker_post(h->locals[i]->w, local_deliver, ev) != 0) event_unref(ev);
    }
    event_unref(ev);
}

static void on_publication(void *ud, const char *channel, const engine_pub *pub) {
    hub *h = ud;
    atomic_fetch_add_explicit(&h->publications, 1, memory_order_relaxed);
    ws_msg *m = h->codec.pub_push(channel, pub);
    if (!m) return;
    hub_event *ev = event_new(HUB_EV_PUB, channel, pub->offset, m);
    if (!ev) return;
    ev->pub_json = rcbuf_ref(pub->json);
    broadcast(h, ev);
}

static void on_join(void *ud, const char *channel, const char *info, size_t len) {
    hub *h = ud;
    ws_msg *m = h->codec.join_push(channel, info, len);
    hub_event *ev = m ? event_new(HUB_EV_JOIN, channel, 0, m) : NULL;
    if (ev) broadcast(h, ev);
}

static void on_leave(void *ud, const char *channel, const char *info, size_t len) {
    hub *h = ud;
    ws_msg *m = h->codec.leave_push(channel, info, len);
    hub_event *ev = m ? event_new(HUB_EV_LEAVE, channel, 0, m) : NULL;
    if (ev) broadcast(h, ev);
}

const engine_events hub_engine_events_template = {
    .on_publication = on_publication,
    .on_join = on_join,
    .on_leave = on_leave,
    .ud = NULL,
};

/* ---- registry ---- */

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
    const config *cfg = h->cfg;
    int rc = 0;
    uv_mutex_lock(&h->lock);
    if (cl->user[0] && count_add(h->users, cl->user, 1, cfg->client_user_connection_limit))
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

/* ---- subscriptions ---- */

static hub_chan *chan_get(hub_local *hl, const char *channel) {
    hub_chan *ch = dict_get(hl->channels, channel);
    if (ch) return ch;
    ch = calloc(1, sizeof(*ch));
    if (ch && dict_set(hl->channels, channel, ch) < 0) { free(ch); return NULL; }
    return ch;
}

static int chan_count(hub *h, const char *channel, int delta) {
    uv_mutex_lock(&h->lock);
    int rc = count_add(h->chan_counts, channel, delta,
                       delta > 0 ? h->cfg->channel_max_clients : 0);
    uv_mutex_unlock(&h->lock);
    return rc;
}

static int client_add_sub(hub_client *cl, hub_sub *s) {
    if (!cl->cap_subs) {                  /* the first one lives inline */
        cl->subs = cl->sub_small;
        cl->cap_subs = 1;
    } else if (cl->nsubs == cl->cap_subs) {
        uint16_t cap = (uint16_t)(cl->cap_subs < 4 ? 4 : cl->cap_subs * 2);
        hub_sub **ns = malloc(cap * sizeof(*ns));
        if (!ns) return -1;
        memcpy(ns, cl->subs, cl->nsubs * sizeof(*ns));
        if (cl->subs != cl->sub_small) free(cl->subs);
        cl->subs = ns;
        cl->cap_subs = cap;
    }
    cl->subs[cl->nsubs++] = s;
    return 0;
}

static int chan_push(hub_chan *ch, hub_sub *s) {
    if (ch->n == ch->cap) {
        uint32_t cap = ch->cap ? ch->cap * 2 : 4;
        hub_sub **ns = realloc(ch->subs, cap * sizeof(*ns));
        if (!ns) return -1;
        ch->subs = ns;
        ch->cap = cap;
    }
    s->index = ch->n;
    ch->subs[ch->n++] = s;
    return 0;
}

hub_sub *hub_sub_add(hub_client *cl, const char *channel,
                     const ns_options *ns, int *limited) {
    hub_local *hl = cl->hl;
    *limited = 0;
    if (chan_count(hl->hub, channel, 1) != 0) { *limited = 1; return NULL; }
    size_t len = strlen(channel);
    hub_sub *s = calloc(1, offsetof(hub_sub, channel) + len + 1);
    hub_chan *ch = chan_get(hl, channel);
    if (!s || !ch) goto fail;
    memcpy(s->channel, channel, len + 1);
    if (client_add_sub(cl, s) != 0) goto fail;
    if (chan_push(ch, s) != 0) { cl->nsubs--; goto fail; }
    s->cl = cl;
    s->ns = ns;
    METRIC_ADD(hl->metrics.subscriptions, 1);
    return s;
fail:
    chan_count(hl->hub, channel, -1);
    if (ch && ch->n == 0) { dict_del(hl->channels, channel, NULL); free(ch->subs); free(ch); }
    free(s);
    return NULL;
}

void hub_sub_go_live(hub_sub *s, uint64_t offset) {
    s->offset = offset;
    s->live = 1;
    for (uint32_t i = 0; i < s->npending; i++) {
        sub_deliver(s, s->pending[i]);
        event_unref(s->pending[i]);
    }
    free(s->pending);
    s->pending = NULL;
    s->npending = s->cap_pending = 0;
}

static void chan_unlink(hub_local *hl, hub_sub *s) {
    hub_chan *ch = dict_get(hl->channels, s->channel);
    if (!ch) return;
    hub_sub *last = ch->subs[--ch->n];
    ch->subs[s->index] = last;
    last->index = s->index;
    if (ch->n == 0) {
        dict_del(hl->channels, s->channel, NULL);
        free(ch->subs);
        free(ch);
    }
}

void hub_sub_remove(hub_sub *s) {
    hub_client *cl = s->cl;
    hub_local *hl = cl->hl;
    chan_unlink(hl, s);
    chan_count(hl->hub, s->channel, -1);
    for (uint16_t i = 0; i < cl->nsubs; i++)
        if (cl->subs[i] == s) { cl->subs[i] = cl->subs[--cl->nsubs]; break; }
    for (uint32_t i = 0; i < s->npending; i++) event_unref(s->pending[i]);
    METRIC_SUB(hl->metrics.subscriptions, 1);
    free(s->pending);
    free(s->chan_info);
    free(s);
}

hub_sub *hub_client_sub(const hub_client *cl, const char *channel) {
    for (uint16_t i = 0; i < cl->nsubs; i++)
        if (strcmp(cl->subs[i]->channel, channel) == 0) return cl->subs[i];
    return NULL;
}

/* ---- cross-worker actions ---- */

typedef struct user_task {
    atomic_int refs;
    char *user, *client_id;
    void (*fn)(hub_client *cl, void *arg);
    void *arg;
    void (*free_arg)(void *arg);
} user_task;

static void user_task_unref(user_task *t) {
    if (atomic_fetch_sub(&t->refs, 1) != 1) return;
    if (t->free_arg) t->free_arg(t->arg);
    free(t->user);
    free(t->client_id);
    free(t);
}

static void run_user_task(worker *w, void *arg) {
    user_task *t = arg;
    hub_local *hl = w->ext;
    /* Collect first: fn may change the list. A scan, not an index: server
     * API actions are rare, and an index would cost memory per client. */
    size_t n = hl->nclients, k = 0;
    hub_client **match = n ? malloc(n * sizeof(*match)) : NULL;
    for (hub_client *cl = hl->clients; match && cl; cl = cl->next) {
        if (t->client_id[0] && strcmp(cl->id, t->client_id) != 0) continue;
        if ((t->user[0] || !t->client_id[0]) && strcmp(cl->user, t->user) != 0) continue;
        match[k++] = cl;
    }
    for (size_t i = 0; i < k; i++) t->fn(match[i], t->arg);
    free(match);
    user_task_unref(t);
}

int hub_for_user(hub *h, const char *user, const char *client_id,
                 void (*fn)(hub_client *cl, void *arg), void *arg,
                 void (*free_arg)(void *arg)) {
    user_task *t = calloc(1, sizeof(*t));
    if (!t) { if (free_arg) free_arg(arg); return -1; }
    t->user = strdup(user ? user : "");
    t->client_id = strdup(client_id ? client_id : "");
    t->fn = fn;
    t->arg = arg;
    t->free_arg = free_arg;
    atomic_init(&t->refs, h->nlocals + 1);
    for (int i = 0; i < h->nlocals; i++)
        if (worker_post(h->locals[i]->w, run_user_task, t) != 0) user_task_unref(t);
    user_task_unref(t);
    return 0;
}

void hub_channels(hub *h, void (*fn)(void *ud, const char *channel, int n), void *ud) {
    uv_mutex_lock(&h->lock);
    dict_iter it;
    dict_iter_init(&it, h->chan_counts);
    const char *key;
    void *val;
    while (dict_next(&it, &key, &val)) fn(ud, key, (int)(intptr_t)val);
    uv_mutex_unlock(&h->lock);
}

void hub_counts(hub *h, int *clients, int *users, int *channels) {
    uv_mutex_lock(&h->lock);
    *clients = h->nclients;
    *users = (int)dict_size(h->users);
    *channels = (int)dict_size(h->chan_counts);
    uv_mutex_unlock(&h->lock);
}

/* ---- presence refresh, lifecycle ---- */

/* Refreshes the presence entries of this worker's subscriptions well
 * before their TTL, so entries of a node that dies expire by themselves. */
static void on_presence_timer(uv_timer_t *t) {
    hub_local *hl = t->data;
    hub *h = hl->hub;
    int64_t now = hub_now_ms(), ttl = h->cfg->channel_presence_ttl_ms;
    for (hub_client *cl = hl->clients; cl; cl = cl->next) {
        for (uint16_t i = 0; i < cl->nsubs; i++) {
            hub_sub *s = cl->subs[i];
            if (!s->presence) continue;
            size_t len = 0;
            char *info = h->codec.client_info(cl, s, &len);
            if (!info) continue;
            engine_presence_entry e = {cl->id, cl->user, info, len};
            h->eng->ops->presence_add(h->eng, s->channel, &e, ttl, now);
            free(info);
        }
    }
    if (hl->w->id == 0) h->eng->ops->tick(h->eng, now);
}

static hub_local *local_new(hub *h, worker *w) {
    hub_local *hl = calloc(1, sizeof(*hl));
    if (!hl) return NULL;
    hl->hub = h;
    hl->w = w;
    hl->channels = dict_new();
    if (!hl->channels) {
        free(hl);
        return NULL;
    }
    uint64_t period = (uint64_t)h->cfg->channel_presence_ttl_ms / 3;
    if (period < 100) period = 100;
    uv_timer_init(&w->loop, &hl->presence_timer);
    hl->presence_timer.data = hl;
    uv_timer_start(&hl->presence_timer, on_presence_timer, period, period);
    w->ext = hl;
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

hub *hub_new(server *srv, engine *e, const hub_codec *codec) {
    hub *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->srv = srv;
    h->cfg = srv->cfg;
    h->eng = e;
    h->codec = *codec;
    h->started_ms = hub_now_ms();
    uuid_v4(h->node_id);
    uv_mutex_init(&h->lock);
    h->users = dict_new();
    h->ips = dict_new();
    h->chan_counts = dict_new();
    h->locals = calloc((size_t)srv->nworkers, sizeof(*h->locals));
    if (!h->users || !h->ips || !h->chan_counts || !h->locals) {
        hub_free(h);
        return NULL;
    }
    for (int i = 0; i < srv->nworkers; i++) {
        if (!(h->locals[i] = local_new(h, srv->workers[i]))) { hub_free(h); return NULL; }
        h->nlocals = i + 1;
    }
    return h;
}

static void free_chan(void *v) {
    hub_chan *ch = v;
    free(ch->subs);
    free(ch);
}

/* After server_free: the loops and their handles are gone, every
 * connection has been closed (and its client cleaned up). */
void hub_free(hub *h) {
    if (!h) return;
    for (int i = 0; i < h->nlocals; i++) {
        hub_local *hl = h->locals[i];
        dict_iter it;
        dict_iter_init(&it, hl->channels);
        const char *key;
        void *val;
        while (dict_next(&it, &key, &val)) free_chan(val);
        dict_free(hl->channels, NULL);
        free(hl);
    }
    free(h->locals);
    dict_free(h->users, NULL);
    dict_free(h->ips, NULL);
    dict_free(h->chan_counts, NULL);
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
