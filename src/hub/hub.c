/* hub: the registry of clients, their subscriptions in each worker's
 * channel map, cross-worker actions, presence refresh and the hub's
 * lifecycle (see hub.h; events and engine answers in fanout.c, channel
 * interest in interest.c). */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include "core/clock.h"
#include "hub/hub_int.h"
#include "obs/log.h"

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
    int rc = hub_interest_add(h, channel);
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
    hub_interest_drop(h, channel);
    uv_mutex_unlock(&h->lock);
    hub_interest_flush(h);
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
        if (!s->dead) hub_sub_deliver(s, held[i]);
        hub_event_unref(held[i]);
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
    hub_interest_drop(h, s->channel);
    uv_mutex_unlock(&h->lock);
    hub_interest_flush(h);
    client_del_sub(cl, s);
    for (uint32_t i = 0; i < s->npending; i++) hub_event_unref(s->pending[i]);
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
            if (s->presence_map && s->live && !s->dead && h->sink.presence_map_refresh)
                h->sink.presence_map_refresh(cl, s);
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

/* How often presence is refreshed: a third of the shortest TTL, of
 * channel.presence_ttl_ms and of the presence maps' map.key_ttl_ms. */
static uint64_t presence_period(const config *cfg) {
    const ns_registry *r = &cfg->namespaces;
    int64_t ttl = cfg->channel_presence_ttl_ms;
    for (int i = -1; i < r->nspaces; i++) {
        const ns_options *o = i < 0 ? &r->top : &r->spaces[i];
        int presence_map = o->subscription_type == NS_SUB_MAP_CLIENTS ||
                           o->subscription_type == NS_SUB_MAP_USERS;
        if (presence_map && o->map_key_ttl_ms > 0 && o->map_key_ttl_ms < ttl) ttl = o->map_key_ttl_ms;
    }
    uint64_t period = (uint64_t)ttl / 3;
    return period < 100 ? 100 : period;
}

static hub_local *local_new(hub *h, int id, uv_loop_t *loop, inbox *ib) {
    hub_local *hl = calloc(1, sizeof(*hl));
    if (!hl) return NULL;
    hl->hub = h;
    hl->id = id;
    hl->loop = loop;
    hl->ib = ib;
    hl->overflow_task.run = hub_overflow_run;
    atomic_init(&hl->overflow_posted, 0);
    atomic_init(&hl->events_dropped, 0);
    hl->channels = dict_new();
    if (!hl->channels) { free(hl); return NULL; }
    uv_mutex_init(&hl->overflow_lock);
    uint64_t period = presence_period(h->cfg);
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
    hub_interest_free(h);
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
