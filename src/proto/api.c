/* api: server API methods (see api.h). Each method validates its params
 * (a missing or mistyped field is error 107 naming the field), acts through
 * the hub and the engine, and writes the result object.
 *
 * Methods that ask the engine (publish, broadcast, presence,
 * presence_stats, history, history_remove) answer later: a request is a
 * small state machine (api_ctx) whose steps run on the worker that
 * received the HTTP request, and the HTTP response goes out when its last
 * step is done (http_later); the connection reads no further pipelined
 * request until then. broadcast and batch run their parts in order, one
 * engine answer at a time. An engine failure is error 100 with the
 * engine's reason, counted in /metrics. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "core/clock.h"
#include "core/sbuf.h"
#include "core/version.h"
#include "net/http_conn.h"
#include "net/server.h"
#include "net/worker.h"
#include "proto/api.h"
#include "proto/actions.h"
#include "proto/api_int.h"
#include "proto/client.h"
#include "proto/codes.h"
#include "proto/command.h"
#include "proto/push.h"

int api_fail(api_ctx *a, int code, const char *fmt, const char *field) {
    snprintf(a->msg, sizeof(a->msg), fmt, field);
    return code;
}

int api_engine_fail(api_ctx *a, const char *what, int err) {
    METRIC_ADD(a->pl->metrics.engine_failures, 1);
    a->engine_err = err;
    snprintf(a->msg, sizeof(a->msg), "%s failed: %s", what, engine_strerror(err));
    return ERR_INTERNAL;
}

int api_get_str(api_ctx *a, const char *field, int required, const char **out) {
    json_t *v = json_object_get(a->p, field);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? api_fail(a, ERR_BAD_REQUEST, "%s required", field) : 0;
    if (!json_is_string(v)) return api_fail(a, ERR_BAD_REQUEST, "%s: expected a string", field);
    *out = json_string_value(v);
    return 0;
}

int api_get_int(api_ctx *a, const char *field, int64_t *out) {
    json_t *v = json_object_get(a->p, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return api_fail(a, ERR_BAD_REQUEST, "%s: expected an integer", field);
    *out = json_integer_value(v);
    return 0;
}

int api_get_bool(api_ctx *a, const char *field, int *out) {
    json_t *v = json_object_get(a->p, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return api_fail(a, ERR_BAD_REQUEST, "%s: expected a boolean", field);
    *out = json_is_true(v);
    return 0;
}

/* The channel field, validated, and its namespace. */
int api_get_channel(api_ctx *a, const char *ch, const ns_options **ns) {
    const ns_registry *reg = &a->h->cfg->namespaces;
    if (!ns_channel_valid(reg, ch, strlen(ch)))
        return api_fail(a, ERR_BAD_REQUEST, "%s: invalid channel name", "channel");
    *ns = ns_lookup(reg, ch);
    return *ns ? 0 : api_fail(a, ERR_UNKNOWN_CHANNEL, "%s: unknown namespace", "channel");
}

static void write_error(sbuf *sb, int code, const char *msg) {
    sb_printf(sb, "{\"error\":{\"code\":%d,\"message\":", code);
    sb_json_str(sb, msg, strlen(msg));
    sb_puts(sb, "}}");
}

/* An engine call whose answer runs fn on this worker. */
void *api_engine_call(api_ctx *a, hub_answer_fn fn) { return hub_call(a->hl, fn, a); }

/* ---- publish, broadcast ---- */

static void published(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = 0;
    if (r->err) rc = api_engine_fail(a, "publish", r->err);
    else {
        sb_putc(a->res, '{');
        if (r->top.offset) {
            sb_puts(a->res, "\"offset\":");
            sb_u64(a->res, r->top.offset);
            sb_puts(a->res, ",\"epoch\":");
            sb_json_str(a->res, r->top.epoch, strlen(r->top.epoch));
        }
        sb_putc(a->res, '}');
    }
    engine_result_free(r);
    a->done(a, rc);
}

static int publish_one(api_ctx *a, const char *channel, const char *data,
                       size_t len, int skip_history) {
    const ns_options *ns;
    int rc = api_get_channel(a, channel, &ns);
    if (rc) return rc;
    rcbuf *payload = push_payload(data, len, NULL, 0);
    void *call = payload ? api_engine_call(a, published) : NULL;
    if (!call) { rcbuf_unref(payload); return api_fail(a, ERR_INTERNAL, "%s", "out of memory"); }
    engine_publish_req req = {
        .channel = channel, .payload = payload,
        .history_size = skip_history ? 0 : ns->history_size,
        .history_ttl_ms = ns->history_ttl_ms, .now_ms = clock_now_ms(),
    };
    a->h->eng->ops->publish(a->h->eng, &req, hub_call_cb, call);
    rcbuf_unref(payload);
    return API_LATER;
}

/* The publication's `data` and, when given, its `tags` (an object of
 * strings, as Centrifugo's): compact JSON `D` or `D,"tags":T`, which
 * push_payload puts after `"data":` (so tags travel with the payload into
 * history, the durable log and every Publication). */
int api_data_field(api_ctx *a, char **data, size_t *len) {
    json_t *v = json_object_get(a->p, "data"), *tags = json_object_get(a->p, "tags");
    if (!v) return api_fail(a, ERR_BAD_REQUEST, "%s required", "data");
    if (tags && !json_is_null(tags)) {
        const char *k;
        json_t *tv;
        int ok = json_is_object(tags);
        if (ok) json_object_foreach(tags, k, tv) ok &= json_is_string(tv);
        if (!ok) return api_fail(a, ERR_BAD_REQUEST, "%s: expected an object of strings", "tags");
        if (json_object_size(tags) == 0) tags = NULL;
    } else {
        tags = NULL;
    }
    size_t dl, tl = 0;
    char *d = proto_json_compact(v, &dl), *t = tags ? proto_json_compact(tags, &tl) : NULL;
    *data = NULL;
    if (d && (!tags || t)) {
        static const char T[] = ",\"tags\":";
        *data = tags ? malloc(dl + sizeof(T) - 1 + tl) : d;
        if (*data && tags) {
            memcpy(*data, d, dl);
            memcpy(*data + dl, T, sizeof(T) - 1);
            memcpy(*data + dl + sizeof(T) - 1, t, tl);
            dl += sizeof(T) - 1 + tl;
        }
    }
    if (*data != d) free(d);
    free(t);
    *len = dl;
    return *data ? 0 : api_fail(a, ERR_INTERNAL, "%s", "out of memory");
}

static void publish_done(api_ctx *a, int rc) {
    free(a->data);
    a->data = NULL;
    a->done = a->bdone;
    a->done(a, rc);
}

static int m_publish(api_ctx *a) {
    const char *ch;
    int skip = 0, rc;
    if ((rc = api_get_str(a, "channel", 1, &ch)) || (rc = api_get_bool(a, "skip_history", &skip)) ||
        (rc = api_data_field(a, &a->data, &a->data_len)))
        return rc;
    a->bdone = a->done;
    a->done = publish_done;
    rc = publish_one(a, ch, a->data, a->data_len, skip);
    if (rc != API_LATER) { a->done = a->bdone; free(a->data); a->data = NULL; }
    return rc;
}

/* broadcast: the channels one after the other; each step's reply, then
 * the next (a loop, not a recursion, when steps answer at once). */
static void broadcast_next(api_ctx *a);

static void broadcast_step_done(api_ctx *a, int rc) {
    sbuf *outer = a->bres;
    if (a->bi) sb_putc(outer, ',');
    if (rc) write_error(outer, rc, a->msg);
    else { sb_puts(outer, "{\"result\":"); sb_append(outer, a->bone.p, a->bone.len); sb_putc(outer, '}'); }
    a->bi++;
    if (a->in_bstep) { a->bstep_sync = 1; return; }
    broadcast_next(a);
}

static void broadcast_next(api_ctx *a) {
    while (a->bi < json_array_size(a->chs)) {
        json_t *c = json_array_get(a->chs, a->bi);
        sb_reset(&a->bone);
        a->res = &a->bone;
        a->done = broadcast_step_done;
        a->in_bstep = 1;
        a->bstep_sync = 0;
        int rc = json_is_string(c) ? publish_one(a, json_string_value(c), a->data, a->data_len, a->skip)
                                   : api_fail(a, ERR_BAD_REQUEST, "%s: expected strings", "channels");
        if (rc != API_LATER) broadcast_step_done(a, rc);
        a->in_bstep = 0;
        if (!a->bstep_sync) return;                /* resumes in broadcast_step_done */
    }
    sb_puts(a->bres, "]}");
    free(a->data);
    a->data = NULL;
    sb_free(&a->bone);
    a->res = a->bres;
    a->done = a->bdone;
    a->done(a, 0);
}

static int m_broadcast(api_ctx *a) {
    json_t *chs = json_object_get(a->p, "channels");
    int rc;
    a->skip = 0;
    if (!json_is_array(chs)) return api_fail(a, ERR_BAD_REQUEST, "%s: expected an array of strings", "channels");
    if ((rc = api_get_bool(a, "skip_history", &a->skip)) || (rc = api_data_field(a, &a->data, &a->data_len))) return rc;
    a->chs = chs;
    a->bi = 0;
    a->bres = a->res;
    a->bdone = a->done;
    sb_init(&a->bone);
    sb_puts(a->bres, "{\"responses\":[");
    broadcast_next(a);
    return API_LATER;
}

/* ---- actions on connections (on whichever node they live) ---- */

typedef struct act { int kind; int code; int64_t expire_at; int expired; char *channel; char *reason; } act;

static void act_free(act *x) {
    free(x->channel);
    free(x->reason);
    free(x);
}

static void act_sent(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = 0;
    if (r->err) rc = api_engine_fail(a, "the action", r->err);
    else sb_puts(a->res, "{}");
    engine_result_free(r);
    a->done(a, rc);
}

/* The action goes to every node through the engine (actions.h). */
static int act_on_user(api_ctx *a, act *x) {
    const char *user, *client;
    int rc;
    if ((rc = api_get_str(a, "user", 1, &user)) || (rc = api_get_str(a, "client", 0, &client))) {
        act_free(x);
        return rc;
    }
    proto_action pa = {.kind = x->kind, .user = user, .client = client, .channel = x->channel,
                       .code = x->code, .reason = x->reason, .expired = x->expired,
                       .expire_at = x->expire_at};
    size_t len = 0;
    char *msg = proto_action_encode(&pa, &len);
    act_free(x);
    void *call = msg ? api_engine_call(a, act_sent) : NULL;
    if (!call) { free(msg); return api_fail(a, ERR_INTERNAL, "%s", "out of memory"); }
    a->h->eng->ops->control(a->h->eng, msg, len, hub_call_cb, call);
    free(msg);
    return API_LATER;
}

static int m_sub_or_unsub(api_ctx *a, int kind) {
    const char *ch;
    const ns_options *ns;
    int rc;
    if ((rc = api_get_str(a, "channel", 1, &ch)) || (rc = api_get_channel(a, ch, &ns))) return rc;
    act *x = calloc(1, sizeof(*x));
    if (!x || !(x->channel = strdup(ch))) { free(x); return api_fail(a, ERR_INTERNAL, "%s", "out of memory"); }
    x->kind = kind;
    return act_on_user(a, x);
}

static int m_subscribe(api_ctx *a) { return m_sub_or_unsub(a, ACT_SUB); }
static int m_unsubscribe(api_ctx *a) { return m_sub_or_unsub(a, ACT_UNSUB); }

static int m_disconnect(api_ctx *a) {
    act *x = calloc(1, sizeof(*x));
    if (!x) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    x->kind = ACT_DISCONNECT;
    x->code = DISC_FORCE_DISCONNECT;
    json_t *d = json_object_get(a->p, "disconnect");
    const char *reason = "force disconnect";
    if (json_is_object(d)) {
        json_t *code = json_object_get(d, "code"), *r = json_object_get(d, "reason");
        if (json_is_integer(code)) {
            json_int_t v = json_integer_value(code);
            if (v < 3000 || v > 4999) { free(x); return api_fail(a, ERR_BAD_REQUEST, "%s: expected 3000..4999", "disconnect.code"); }
            x->code = (int)v;
        }
        if (json_is_string(r)) reason = json_string_value(r);
    }
    x->reason = strndup(reason, 120);
    if (!x->reason) { free(x); return api_fail(a, ERR_INTERNAL, "%s", "out of memory"); }
    return act_on_user(a, x);
}

static int m_refresh(api_ctx *a) {
    act *x = calloc(1, sizeof(*x));
    int rc;
    if (!x) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    x->kind = ACT_REFRESH;
    if ((rc = api_get_bool(a, "expired", &x->expired)) || (rc = api_get_int(a, "expire_at", &x->expire_at))) {
        free(x);
        return rc;
    }
    return act_on_user(a, x);
}

/* ---- presence, history ---- */

static void presence_answer(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = 0;
    if (r->err) rc = api_engine_fail(a, "presence", r->err);
    else {
        sb_puts(a->res, "{\"presence\":{");
        for (size_t i = 0; i < r->nentries; i++) {
            const engine_presence_entry *e = &r->entries[i];
            if (i) sb_putc(a->res, ',');
            sb_json_str(a->res, e->client, strlen(e->client));
            sb_putc(a->res, ':');
            sb_append(a->res, e->info, e->info_len);
        }
        sb_puts(a->res, "}}");
    }
    engine_result_free(r);
    a->done(a, rc);
}

static void stats_answer(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = 0;
    if (r->err) rc = api_engine_fail(a, "presence_stats", r->err);
    else sb_printf(a->res, "{\"num_clients\":%u,\"num_users\":%u}", r->num_clients, r->num_users);
    engine_result_free(r);
    a->done(a, rc);
}

static int presence_channel(api_ctx *a, const char **ch) {
    const ns_options *ns;
    int rc;
    if ((rc = api_get_str(a, "channel", 1, ch)) || (rc = api_get_channel(a, *ch, &ns))) return rc;
    return ns->presence ? 0 : api_fail(a, ERR_NOT_AVAILABLE, "%s", "presence is not enabled for the channel");
}

static int m_presence(api_ctx *a) {
    const char *ch;
    int rc = presence_channel(a, &ch);
    if (rc) return rc;
    void *call = api_engine_call(a, presence_answer);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->presence(a->h->eng, ch, clock_now_ms(), hub_call_cb, call);
    return API_LATER;
}

static int m_presence_stats(api_ctx *a) {
    const char *ch;
    int rc = presence_channel(a, &ch);
    if (rc) return rc;
    void *call = api_engine_call(a, stats_answer);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->presence_stats(a->h->eng, ch, clock_now_ms(), hub_call_cb, call);
    return API_LATER;
}

void api_history_answer(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = 0;
    if (r->err == ENGINE_ERR_EPOCH) rc = api_fail(a, ERR_UNRECOVERABLE_POSITION, "%s", "unrecoverable position");
    else if (r->err) rc = api_engine_fail(a, "history", r->err);
    else {
        sbuf *sb = a->res;
        sb_puts(sb, "{\"publications\":");
        push_write_publications(sb, r->pubs, r->npubs);
        sb_puts(sb, ",\"offset\":");
        sb_u64(sb, r->top.offset);
        sb_puts(sb, ",\"epoch\":");
        sb_json_str(sb, r->top.epoch, strlen(r->top.epoch));
        sb_putc(sb, '}');
    }
    engine_result_free(r);
    a->done(a, rc);
}

static int history_channel(api_ctx *a, const char **ch) {
    const ns_options *ns;
    int rc;
    if ((rc = api_get_str(a, "channel", 1, ch)) || (rc = api_get_channel(a, *ch, &ns))) return rc;
    return ns->history_size > 0 ? 0 : api_fail(a, ERR_NOT_AVAILABLE, "%s", "history is not enabled for the channel");
}

int api_history_since(api_ctx *a, engine_history_req *req) {
    json_t *since = json_object_get(a->p, "since");
    if (!since || json_is_null(since)) return 0;
    json_t *off = json_object_get(since, "offset"), *ep = json_object_get(since, "epoch");
    if (!json_is_object(since) || (off && (!json_is_integer(off) || json_integer_value(off) < 0)) ||
        (ep && !json_is_string(ep)))
        return api_fail(a, ERR_BAD_REQUEST, "%s: expected {offset, epoch}", "since");
    req->has_since = 1;
    req->since_offset = off ? (uint64_t)json_integer_value(off) : 0;
    req->since_epoch = ep ? json_string_value(ep) : NULL;
    return 0;
}

static int m_history(api_ctx *a) {
    const char *ch;
    int64_t limit = 0;
    int reverse = 0, rc;
    if ((rc = history_channel(a, &ch)) || (rc = api_get_int(a, "limit", &limit)) ||
        (rc = api_get_bool(a, "reverse", &reverse)))
        return rc;
    if (limit < -1)
        return api_fail(a, ERR_BAD_REQUEST, "%s: expected -1 (all), 0 (only the position) or a positive number", "limit");
    engine_history_req req = {.channel = ch, .limit = limit > 1000000 ? 1000000 : (int)limit,
                              .reverse = reverse, .now_ms = clock_now_ms()};
    if ((rc = api_history_since(a, &req))) return rc;
    void *call = api_engine_call(a, api_history_answer);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->history(a->h->eng, &req, hub_call_cb, call);
    return API_LATER;
}

static void history_removed(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = r->err ? api_engine_fail(a, "history_remove", r->err) : 0;
    if (!rc) sb_puts(a->res, "{}");
    engine_result_free(r);
    a->done(a, rc);
}

static int m_history_remove(api_ctx *a) {
    const char *ch;
    int rc = history_channel(a, &ch);
    if (rc) return rc;
    void *call = api_engine_call(a, history_removed);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->history_remove(a->h->eng, ch, hub_call_cb, call);
    return API_LATER;
}

/* ---- channels, info ---- */

typedef struct chan_list { sbuf *sb; const char *pattern; int n; } chan_list;

static void add_channel(void *ud, const char *channel, int n) {
    chan_list *l = ud;
    if (l->pattern && l->pattern[0] && fnmatch(l->pattern, channel, 0) != 0) return;
    if (l->n++) sb_putc(l->sb, ',');
    sb_json_str(l->sb, channel, strlen(channel));
    sb_printf(l->sb, ":{\"num_clients\":%d}", n);
}

static int m_channels(api_ctx *a) {
    const char *pattern;
    int rc = api_get_str(a, "pattern", 0, &pattern);
    if (rc) return rc;
    chan_list l = {a->res, pattern, 0};
    sb_puts(a->res, "{\"channels\":{");
    hub_channels(a->h, add_channel, &l);
    sb_puts(a->res, "}}");
    return 0;
}

static int m_info(api_ctx *a) {
    int clients, users, channels;
    hub_counts(a->h, &clients, &users, &channels);
    sb_puts(a->res, "{\"nodes\":[{\"uid\":\"");
    sb_puts(a->res, a->h->node_id);
    sb_printf(a->res, "\",\"name\":\"plaza\",\"version\":\"" PLAZA_VERSION "\","
              "\"num_clients\":%d,\"num_users\":%d,\"num_channels\":%d,\"uptime\":%lld}]}",
              clients, users, channels, (long long)((clock_now_ms() - a->h->started_ms) / 1000));
    return 0;
}

/* ---- dispatch, batch ---- */

static int m_batch(api_ctx *a);

static const struct { const char *name; int (*fn)(api_ctx *); } METHODS[] = {
    {"publish", m_publish}, {"broadcast", m_broadcast}, {"subscribe", m_subscribe},
    {"unsubscribe", m_unsubscribe}, {"disconnect", m_disconnect}, {"refresh", m_refresh},
    {"presence", m_presence}, {"presence_stats", m_presence_stats}, {"history", m_history},
    {"history_remove", m_history_remove}, {"channels", m_channels}, {"info", m_info},
    {"batch", m_batch}, {"map_publish", api_map_publish}, {"map_remove", api_map_remove},
    {"map_read_state", api_map_read_state}, {"map_read_stream", api_map_read_stream},
    {"map_stats", api_map_stats}, {"map_clear", api_map_clear},
};

/* Runs a method; done(a, rc) runs when it is finished, now or later. */
static void method_run(api_ctx *a, const char *method, json_t *params, sbuf *res,
                       api_done_fn done) {
    a->p = params;
    a->res = res;
    a->done = done;
    METRIC_ADD(a->pl->metrics.api_calls, 1);
    int rc = api_fail(a, ERR_METHOD_NOT_FOUND, "%s", "method not found");
    if (!json_is_object(params)) {
        rc = api_fail(a, ERR_BAD_REQUEST, "%s", "params: expected an object");
    } else {
        for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]); i++)
            if (strcmp(method, METHODS[i].name) == 0) { rc = METHODS[i].fn(a); break; }
    }
    if (rc != API_LATER) a->done(a, rc);
}

/* batch: {"commands":[{"publish":{...}}, ...]} ->
 * {"replies":[{"publish":{...}}|{"error":..}]}, in order. */
static void batch_next(api_ctx *a);

static const char *batch_name(json_t *c) {
    return json_is_object(c) && json_object_size(c) == 1 ? json_object_iter_key(json_object_iter(c)) : NULL;
}

static void batch_step_done(api_ctx *a, int rc) {
    sbuf *outer = a->cres;
    const char *name = batch_name(json_array_get(a->cmds, a->ci));
    if (a->ci) sb_putc(outer, ',');
    if (rc) { METRIC_ADD(a->pl->metrics.api_errors, 1); write_error(outer, rc, a->msg); }
    else {
        sb_puts(outer, "{");
        sb_json_str(outer, name, strlen(name));
        sb_putc(outer, ':');
        sb_append(outer, a->cone.p, a->cone.len);
        sb_putc(outer, '}');
    }
    a->ci++;
    if (a->in_cstep) { a->cstep_sync = 1; return; }
    batch_next(a);
}

static void batch_next(api_ctx *a) {
    while (a->ci < json_array_size(a->cmds)) {
        json_t *c = json_array_get(a->cmds, a->ci);
        const char *name = batch_name(c);
        sb_reset(&a->cone);
        if (!name || strcmp(name, "batch") == 0) {
            a->in_cstep = 1;
            batch_step_done(a, api_fail(a, ERR_BAD_REQUEST, "%s", "commands: each item is {\"<method>\": {params}}"));
            a->in_cstep = 0;
            continue;
        }
        a->in_cstep = 1;
        a->cstep_sync = 0;
        method_run(a, name, json_object_get(c, name), &a->cone, batch_step_done);
        a->in_cstep = 0;
        if (!a->cstep_sync) return;                /* resumes in batch_step_done */
    }
    sb_puts(a->cres, "]}");
    sb_free(&a->cone);
    a->res = a->cres;
    a->done = a->cdone;
    a->done(a, 0);
}

static int m_batch(api_ctx *a) {
    json_t *cmds = json_object_get(a->p, "commands");
    if (!json_is_array(cmds)) return api_fail(a, ERR_BAD_REQUEST, "%s: expected an array", "commands");
    a->cmds = cmds;
    a->ci = 0;
    a->cres = a->res;
    a->cdone = a->done;
    sb_init(&a->cone);
    sb_puts(a->cres, "{\"replies\":[");
    batch_next(a);
    return API_LATER;
}

/* ---- HTTP ---- */

const char *api_query_param(const char *query, const char *name, size_t *len) {
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            *len = amp ? (size_t)(amp - p - nl - 1) : strlen(p + nl + 1);
            return p + nl + 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static int key_matches(const char *given, size_t len, const char *key) {
    size_t kl = strlen(key);
    return given && len == kl && CRYPTO_memcmp(given, key, kl) == 0;
}

int api_key_ok(const config *cfg, const http_request *req) {
    if (cfg->api_insecure) return 1;
    if (!cfg->api_key[0]) return 0;
    const http_header *x = http_request_header(req, "X-API-Key");
    if (x && key_matches(x->value, x->value_len, cfg->api_key)) return 1;
    const http_header *auth = http_request_header(req, "Authorization");
    if (auth && auth->value_len > 7 && strncasecmp(auth->value, "apikey ", 7) == 0 &&
        key_matches(auth->value + 7, auth->value_len - 7, cfg->api_key))
        return 1;
    size_t ql = 0;
    const char *q = api_query_param(req->query, "api_key", &ql);
    return key_matches(q, ql, cfg->api_key);
}

static void respond_json(conn *c, const http_request *req, int status, const sbuf *sb) {
    http_respond(c, req, status, "application/json", "Cache-Control: no-store\r\n",
                 sb->p ? sb->p : "", sb->len);
}

static void ctx_free(api_ctx *a) {
    json_decref(a->body);
    json_decref(a->empty);
    free(a->data);
    sb_free(&a->top);
    sb_free(&a->out);
    sb_free(&a->bone);
    sb_free(&a->cone);
    free(a);
}

/* HTTP status of a reply: 200, or 5xx when the method failed because the
 * engine did (503 when it is unreachable or late: try again). */
static int reply_status(const api_ctx *a, int rc) {
    if (rc != ERR_INTERNAL || !a->engine_err) return 200;
    int e = a->engine_err;
    return e == ENGINE_ERR_UNAVAILABLE || e == ENGINE_ERR_TIMEOUT || e == ENGINE_ERR_SHUTDOWN ||
           e == ENGINE_ERR_STORE ? 503 : 500;
}

/* The request's method is done: the reply goes out now (still inside
 * api_route) or later (after an engine answer). */
static void request_done(api_ctx *a, int rc) {
    a->status = reply_status(a, rc);
    if (rc) { METRIC_ADD(a->pl->metrics.api_errors, 1); write_error(&a->out, rc, a->msg); }
    else { sb_puts(&a->out, "{\"result\":"); sb_append(&a->out, a->top.p, a->top.len); sb_putc(&a->out, '}'); }
    a->finished = 1;
    if (a->in_route) return;                    /* api_route answers */
    if (a->later) {
        const char *body = a->out.oom ? "{\"error\":{\"code\":100,\"message\":\"out of memory\"}}" : a->out.p;
        http_later_respond(a->later, a->status, "application/json", "Cache-Control: no-store\r\n",
                           body, a->out.oom ? strlen(body) : a->out.len);
    }
    ctx_free(a);
}

/* Parses the body: POST /api/<method> {params} or POST /api {"method","params"}. */
static int parse_request(api_ctx *a, const http_request *req, const char **method, json_t **params) {
    json_error_t jerr;
    const char *path = req->path;
    a->body = json_loadb(req->body ? (const char *)req->body : "", req->body_len,
                         JSON_REJECT_DUPLICATES, &jerr);
    *method = path[4] == '/' ? path + 5 : NULL;
    *params = a->body;
    if (!a->body) {
        snprintf(a->msg, sizeof(a->msg), "bad request: body is not JSON (%.160s)", jerr.text);
        return ERR_BAD_REQUEST;
    }
    if (!*method) {
        *method = json_string_value(json_object_get(a->body, "method"));
        *params = json_object_get(a->body, "params");
        if (!*params) *params = a->empty = json_object();
    }
    if (!*method) { snprintf(a->msg, sizeof(a->msg), "method required"); return ERR_BAD_REQUEST; }
    return 0;
}

int api_route(conn *c, const http_request *req, void *ud) {
    hub *h = ud;
    const char *path = req->path;
    if (strcmp(path, "/api") != 0 && strncmp(path, "/api/", 5) != 0) return HTTP_ROUTE_NOT_MINE;
    sbuf out;
    sb_init(&out);
    if (strcmp(req->method, "POST") != 0) {
        write_error(&out, ERR_BAD_REQUEST, "use POST");
        http_respond(c, req, 405, "application/json", "Allow: POST\r\n", out.p, out.len);
        sb_free(&out);
        return HTTP_ROUTE_DONE;
    }
    if (!api_key_ok(h->cfg, req)) {
        write_error(&out, ERR_UNAUTHORIZED, h->cfg->api_key[0] || h->cfg->api_insecure
                    ? "unauthorized: missing or wrong API key" : "unauthorized: the API is disabled (no api.key)");
        respond_json(c, req, 401, &out);
        sb_free(&out);
        return HTTP_ROUTE_DONE;
    }
    api_ctx *a = calloc(1, sizeof(*a));
    if (!a) { http_respond_error(c, req, 500, "out of memory", 1); return HTTP_ROUTE_DONE; }
    a->h = h;
    a->hl = c->w->ext;
    a->pl = proto_local_of(c);
    sb_init(&a->top);
    sb_init(&a->out);
    const char *method;
    json_t *params = NULL;
    a->in_route = 1;
    int rc = parse_request(a, req, &method, &params);
    if (rc) request_done(a, rc);
    else method_run(a, method, params, &a->top, request_done);
    a->in_route = 0;
    if (a->finished) {
        respond_json(c, req, a->status, &a->out);
        ctx_free(a);
        return HTTP_ROUTE_DONE;
    }
    if (!(a->later = http_later_begin(c, req))) {
        /* the engine still answers: the context frees itself then */
        http_respond_error(c, req, 500, "out of memory", 1);
        return HTTP_ROUTE_DONE;
    }
    return HTTP_ROUTE_LATER;
}
