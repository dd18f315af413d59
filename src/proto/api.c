/* api: server API methods (see api.h). Each method validates its params
 * (a missing or mistyped field is error 107 naming the field), acts through
 * the hub and the engine, and writes the result object. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "core/sbuf.h"
#include "core/version.h"
#include "net/http_conn.h"
#include "proto/api.h"
#include "proto/client.h"
#include "proto/codes.h"
#include "proto/command.h"

typedef struct api_ctx {
    hub *h;
    json_t *p;            /* params object */
    sbuf *res;            /* the result object's body goes here */
    char msg[160];        /* error message when a method fails */
} api_ctx;

static int fail(api_ctx *a, int code, const char *fmt, const char *field) {
    snprintf(a->msg, sizeof(a->msg), fmt, field);
    return code;
}

static int get_str(api_ctx *a, const char *field, int required, const char **out) {
    json_t *v = json_object_get(a->p, field);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? fail(a, ERR_BAD_REQUEST, "%s required", field) : 0;
    if (!json_is_string(v)) return fail(a, ERR_BAD_REQUEST, "%s: expected a string", field);
    *out = json_string_value(v);
    return 0;
}

static int get_int(api_ctx *a, const char *field, int64_t *out) {
    json_t *v = json_object_get(a->p, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return fail(a, ERR_BAD_REQUEST, "%s: expected an integer", field);
    *out = json_integer_value(v);
    return 0;
}

static int get_bool(api_ctx *a, const char *field, int *out) {
    json_t *v = json_object_get(a->p, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return fail(a, ERR_BAD_REQUEST, "%s: expected a boolean", field);
    *out = json_is_true(v);
    return 0;
}

/* The channel field, validated, and its namespace. */
static int get_channel(api_ctx *a, const char *ch, const ns_options **ns) {
    const ns_registry *reg = &a->h->cfg->namespaces;
    if (!ns_channel_valid(reg, ch, strlen(ch)))
        return fail(a, ERR_BAD_REQUEST, "%s: invalid channel name", "channel");
    *ns = ns_lookup(reg, ch);
    return *ns ? 0 : fail(a, ERR_UNKNOWN_CHANNEL, "%s: unknown namespace", "channel");
}

/* ---- publish, broadcast ---- */

typedef struct pub_result { int err; engine_stream_top top; } pub_result;

static void publish_done(void *ud, int err, const engine_stream_top *top) {
    pub_result *r = ud;
    r->err = err;
    if (top) r->top = *top;
}

static int publish_one(api_ctx *a, const char *channel, const char *data,
                       size_t len, int skip_history) {
    const ns_options *ns;
    int rc = get_channel(a, channel, &ns);
    if (rc) return rc;
    engine_publish_req req = {
        .channel = channel, .data = data, .data_len = len,
        .history_size = skip_history ? 0 : ns->history_size,
        .history_ttl_ms = ns->history_ttl_ms, .now_ms = hub_now_ms(),
    };
    pub_result r = {.err = ENGINE_ERR_INTERNAL};
    a->h->eng->ops->publish(a->h->eng, &req, publish_done, &r);
    if (r.err) return fail(a, ERR_INTERNAL, "%s", "publish failed");
    sb_putc(a->res, '{');
    if (r.top.offset) {
        sb_puts(a->res, "\"offset\":");
        sb_u64(a->res, r.top.offset);
        sb_puts(a->res, ",\"epoch\":");
        sb_json_str(a->res, r.top.epoch, strlen(r.top.epoch));
    }
    sb_putc(a->res, '}');
    return 0;
}

static int data_field(api_ctx *a, char **data, size_t *len) {
    json_t *v = json_object_get(a->p, "data");
    if (!v) return fail(a, ERR_BAD_REQUEST, "%s required", "data");
    *data = proto_json_compact(v, len);
    return *data ? 0 : fail(a, ERR_INTERNAL, "%s", "out of memory");
}

static int m_publish(api_ctx *a) {
    const char *ch;
    int skip = 0, rc;
    char *data;
    size_t len;
    if ((rc = get_str(a, "channel", 1, &ch)) || (rc = get_bool(a, "skip_history", &skip)) ||
        (rc = data_field(a, &data, &len)))
        return rc;
    rc = publish_one(a, ch, data, len, skip);
    free(data);
    return rc;
}

static void write_error(sbuf *sb, int code, const char *msg) {
    sb_printf(sb, "{\"error\":{\"code\":%d,\"message\":", code);
    sb_json_str(sb, msg, strlen(msg));
    sb_puts(sb, "}}");
}

static int m_broadcast(api_ctx *a) {
    json_t *chs = json_object_get(a->p, "channels");
    int skip = 0, rc;
    char *data;
    size_t len;
    if (!json_is_array(chs)) return fail(a, ERR_BAD_REQUEST, "%s: expected an array of strings", "channels");
    if ((rc = get_bool(a, "skip_history", &skip)) || (rc = data_field(a, &data, &len))) return rc;
    sbuf *outer = a->res;
    sb_puts(outer, "{\"responses\":[");
    for (size_t i = 0; i < json_array_size(chs); i++) {
        json_t *c = json_array_get(chs, i);
        if (i) sb_putc(outer, ',');
        sbuf one;
        sb_init(&one);
        a->res = &one;
        rc = json_is_string(c) ? publish_one(a, json_string_value(c), data, len, skip)
                               : fail(a, ERR_BAD_REQUEST, "%s: expected strings", "channels");
        a->res = outer;
        if (rc) write_error(outer, rc, a->msg);
        else { sb_puts(outer, "{\"result\":"); sb_append(outer, one.p, one.len); sb_putc(outer, '}'); }
        sb_free(&one);
    }
    sb_puts(outer, "]}");
    free(data);
    return 0;
}

/* ---- actions on connections (run on their workers) ---- */

typedef struct act { int kind; int code; int64_t expire_at; int expired; char *channel; char *reason; } act;
enum { ACT_SUB, ACT_UNSUB, ACT_DISCONNECT, ACT_REFRESH };

static void act_free(void *p) {
    act *x = p;
    free(x->channel);
    free(x->reason);
    free(x);
}

static void act_run(hub_client *cl, void *p) {
    act *x = p;
    switch (x->kind) {
    case ACT_SUB: proto_client_server_subscribe(cl, x->channel); break;
    case ACT_UNSUB: proto_client_server_unsubscribe(cl, x->channel); break;
    case ACT_DISCONNECT: proto_client_disconnect(cl, x->code, x->reason); break;
    case ACT_REFRESH: proto_client_refresh(cl, x->expired, x->expire_at); break;
    }
}

static int act_on_user(api_ctx *a, act *x) {
    const char *user, *client;
    int rc;
    if ((rc = get_str(a, "user", 1, &user)) || (rc = get_str(a, "client", 0, &client))) {
        act_free(x);
        return rc;
    }
    hub_for_user(a->h, user, client, act_run, x, act_free);
    sb_puts(a->res, "{}");
    return 0;
}

static int m_sub_or_unsub(api_ctx *a, int kind) {
    const char *ch;
    const ns_options *ns;
    int rc;
    if ((rc = get_str(a, "channel", 1, &ch)) || (rc = get_channel(a, ch, &ns))) return rc;
    act *x = calloc(1, sizeof(*x));
    if (!x || !(x->channel = strdup(ch))) { free(x); return fail(a, ERR_INTERNAL, "%s", "out of memory"); }
    x->kind = kind;
    return act_on_user(a, x);
}

static int m_subscribe(api_ctx *a) { return m_sub_or_unsub(a, ACT_SUB); }
static int m_unsubscribe(api_ctx *a) { return m_sub_or_unsub(a, ACT_UNSUB); }

static int m_disconnect(api_ctx *a) {
    act *x = calloc(1, sizeof(*x));
    if (!x) return fail(a, ERR_INTERNAL, "%s", "out of memory");
    x->kind = ACT_DISCONNECT;
    x->code = DISC_FORCE_DISCONNECT;
    json_t *d = json_object_get(a->p, "disconnect");
    const char *reason = "force disconnect";
    if (json_is_object(d)) {
        json_t *code = json_object_get(d, "code"), *r = json_object_get(d, "reason");
        if (json_is_integer(code)) {
            json_int_t v = json_integer_value(code);
            if (v < 3000 || v > 4999) { free(x); return fail(a, ERR_BAD_REQUEST, "%s: expected 3000..4999", "disconnect.code"); }
            x->code = (int)v;
        }
        if (json_is_string(r)) reason = json_string_value(r);
    }
    x->reason = strndup(reason, 120);
    return act_on_user(a, x);
}

static int m_refresh(api_ctx *a) {
    act *x = calloc(1, sizeof(*x));
    int rc;
    if (!x) return fail(a, ERR_INTERNAL, "%s", "out of memory");
    x->kind = ACT_REFRESH;
    if ((rc = get_bool(a, "expired", &x->expired)) || (rc = get_int(a, "expire_at", &x->expire_at))) {
        free(x);
        return rc;
    }
    return act_on_user(a, x);
}

/* ---- presence, history, channels, info ---- */

typedef struct collect { api_ctx *a; int err; } collect;

static void presence_done(void *ud, int err, const engine_presence_entry *e, size_t n) {
    collect *k = ud;
    k->err = err;
    if (err) return;
    sb_puts(k->a->res, "{\"presence\":{");
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putc(k->a->res, ',');
        sb_json_str(k->a->res, e[i].client, strlen(e[i].client));
        sb_putc(k->a->res, ':');
        sb_append(k->a->res, e[i].info, e[i].info_len);
    }
    sb_puts(k->a->res, "}}");
}

static void stats_done(void *ud, int err, uint32_t clients, uint32_t users) {
    collect *k = ud;
    k->err = err;
    if (!err) sb_printf(k->a->res, "{\"num_clients\":%u,\"num_users\":%u}", clients, users);
}

static int presence_channel(api_ctx *a, const char **ch) {
    const ns_options *ns;
    int rc;
    if ((rc = get_str(a, "channel", 1, ch)) || (rc = get_channel(a, *ch, &ns))) return rc;
    return ns->presence ? 0 : fail(a, ERR_NOT_AVAILABLE, "%s", "presence is not enabled for the channel");
}

static int m_presence(api_ctx *a) {
    const char *ch;
    int rc = presence_channel(a, &ch);
    if (rc) return rc;
    collect k = {a, ENGINE_ERR_INTERNAL};
    a->h->eng->ops->presence(a->h->eng, ch, hub_now_ms(), presence_done, &k);
    return k.err ? fail(a, ERR_INTERNAL, "%s", "presence failed") : 0;
}

static int m_presence_stats(api_ctx *a) {
    const char *ch;
    int rc = presence_channel(a, &ch);
    if (rc) return rc;
    collect k = {a, ENGINE_ERR_INTERNAL};
    a->h->eng->ops->presence_stats(a->h->eng, ch, hub_now_ms(), stats_done, &k);
    return k.err ? fail(a, ERR_INTERNAL, "%s", "presence_stats failed") : 0;
}

static void history_done(void *ud, int err, const engine_stream_top *top,
                         const engine_pub *pubs, size_t n) {
    collect *k = ud;
    sbuf *sb = k->a->res;
    k->err = err;
    if (err) return;
    sb_puts(sb, "{\"publications\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putc(sb, ',');
        sb_append(sb, pubs[i].json->data, pubs[i].json->len);
    }
    sb_puts(sb, "],\"offset\":");
    sb_u64(sb, top->offset);
    sb_puts(sb, ",\"epoch\":");
    sb_json_str(sb, top->epoch, strlen(top->epoch));
    sb_putc(sb, '}');
}

static int history_channel(api_ctx *a, const char **ch) {
    const ns_options *ns;
    int rc;
    if ((rc = get_str(a, "channel", 1, ch)) || (rc = get_channel(a, *ch, &ns))) return rc;
    return ns->history_size > 0 ? 0 : fail(a, ERR_NOT_AVAILABLE, "%s", "history is not enabled for the channel");
}

static int m_history(api_ctx *a) {
    const char *ch;
    int64_t limit = 0;
    int reverse = 0, rc;
    if ((rc = history_channel(a, &ch)) || (rc = get_int(a, "limit", &limit)) ||
        (rc = get_bool(a, "reverse", &reverse)))
        return rc;
    engine_history_req req = {.channel = ch, .limit = limit < -1 ? -1 : limit > 1000000 ? 1000000 : (int)limit,
                              .reverse = reverse, .now_ms = hub_now_ms()};
    json_t *since = json_object_get(a->p, "since");
    if (since && !json_is_null(since)) {
        json_t *off = json_object_get(since, "offset"), *ep = json_object_get(since, "epoch");
        if (!json_is_object(since) || (off && (!json_is_integer(off) || json_integer_value(off) < 0)) ||
            (ep && !json_is_string(ep)))
            return fail(a, ERR_BAD_REQUEST, "%s: expected {offset, epoch}", "since");
        req.has_since = 1;
        req.since_offset = off ? (uint64_t)json_integer_value(off) : 0;
        req.since_epoch = ep ? json_string_value(ep) : NULL;
    }
    collect k = {a, ENGINE_ERR_INTERNAL};
    a->h->eng->ops->history(a->h->eng, &req, history_done, &k);
    if (k.err == ENGINE_ERR_EPOCH) return fail(a, ERR_UNRECOVERABLE_POSITION, "%s", "unrecoverable position");
    return k.err ? fail(a, ERR_INTERNAL, "%s", "history failed") : 0;
}

static void done_cb(void *ud, int err) { ((collect *)ud)->err = err; }

static int m_history_remove(api_ctx *a) {
    const char *ch;
    int rc = history_channel(a, &ch);
    if (rc) return rc;
    collect k = {a, ENGINE_ERR_INTERNAL};
    a->h->eng->ops->history_remove(a->h->eng, ch, done_cb, &k);
    if (k.err) return fail(a, ERR_INTERNAL, "%s", "history_remove failed");
    sb_puts(a->res, "{}");
    return 0;
}

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
    int rc = get_str(a, "pattern", 0, &pattern);
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
              clients, users, channels, (long long)((hub_now_ms() - a->h->started_ms) / 1000));
    return 0;
}

static int m_batch(api_ctx *a);

static const struct { const char *name; int (*fn)(api_ctx *); } METHODS[] = {
    {"publish", m_publish}, {"broadcast", m_broadcast}, {"subscribe", m_subscribe},
    {"unsubscribe", m_unsubscribe}, {"disconnect", m_disconnect}, {"refresh", m_refresh},
    {"presence", m_presence}, {"presence_stats", m_presence_stats}, {"history", m_history},
    {"history_remove", m_history_remove}, {"channels", m_channels}, {"info", m_info},
    {"batch", m_batch},
};

/* Runs method; writes {"result":..} or {"error":..} into out. */
int api_call(hub *h, const char *method, json_t *params, sbuf *out) {
    sbuf res;
    sb_init(&res);
    api_ctx a = {.h = h, .p = params, .res = &res};
    int rc = ERR_METHOD_NOT_FOUND;
    snprintf(a.msg, sizeof(a.msg), "method not found");
    if (!json_is_object(params)) {
        rc = ERR_BAD_REQUEST;
        snprintf(a.msg, sizeof(a.msg), "params: expected an object");
    } else {
        for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]); i++)
            if (strcmp(method, METHODS[i].name) == 0) { rc = METHODS[i].fn(&a); break; }
    }
    if (rc) write_error(out, rc, a.msg);
    else { sb_puts(out, "{\"result\":"); sb_append(out, res.p, res.len); sb_putc(out, '}'); }
    sb_free(&res);
    return rc;
}

/* batch: {"commands":[{"publish":{...}}, ...]} -> {"replies":[{"publish":{...}}|{"error":..}]} */
static int m_batch(api_ctx *a) {
    json_t *cmds = json_object_get(a->p, "commands");
    if (!json_is_array(cmds)) return fail(a, ERR_BAD_REQUEST, "%s: expected an array", "commands");
    sb_puts(a->res, "{\"replies\":[");
    for (size_t i = 0; i < json_array_size(cmds); i++) {
        json_t *c = json_array_get(cmds, i);
        const char *name = json_is_object(c) && json_object_size(c) == 1 ? json_object_iter_key(json_object_iter(c)) : NULL;
        if (i) sb_putc(a->res, ',');
        if (!name || strcmp(name, "batch") == 0) {
            write_error(a->res, ERR_BAD_REQUEST, "commands: each item is {\"<method>\": {params}}");
            continue;
        }
        sbuf one;
        sb_init(&one);
        int rc = api_call(a->h, name, json_object_get(c, name), &one);
        if (rc) sb_append(a->res, one.p, one.len);
        else { sb_puts(a->res, "{\""); sb_puts(a->res, name); sb_puts(a->res, "\":");
               sb_append(a->res, one.p + 10, one.len - 11); sb_putc(a->res, '}'); }
        sb_free(&one);
    }
    sb_puts(a->res, "]}");
    return 0;
}

/* ---- HTTP ---- */

static const char *query_param(const char *query, const char *name, size_t *len) {
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

static int authorized(hub *h, const http_request *req) {
    const config *cfg = h->cfg;
    if (cfg->api_insecure) return 1;
    if (!cfg->api_key[0]) return 0;
    const http_header *x = http_request_header(req, "X-API-Key");
    if (x && key_matches(x->value, x->value_len, cfg->api_key)) return 1;
    const http_header *auth = http_request_header(req, "Authorization");
    if (auth && auth->value_len > 7 && strncasecmp(auth->value, "apikey ", 7) == 0 &&
        key_matches(auth->value + 7, auth->value_len - 7, cfg->api_key))
        return 1;
    size_t ql = 0;
    const char *q = query_param(req->query, "api_key", &ql);
    return key_matches(q, ql, cfg->api_key);
}

static void respond_json(conn *c, const http_request *req, int status, const sbuf *sb) {
    http_respond(c, req, status, "application/json", "Cache-Control: no-store\r\n",
                 sb->p ? sb->p : "", sb->len);
}

int api_route(conn *c, const http_request *req, void *ud) {
    hub *h = ud;
    const char *path = req->path;
    if (strcmp(path, "/api") != 0 && strncmp(path, "/api/", 5) != 0) return 0;
    sbuf out;
    sb_init(&out);
    if (strcmp(req->method, "POST") != 0) {
        write_error(&out, ERR_BAD_REQUEST, "use POST");
        http_respond(c, req, 405, "application/json", "Allow: POST\r\n", out.p, out.len);
    } else if (!authorized(h, req)) {
        write_error(&out, ERR_UNAUTHORIZED, h->cfg->api_key[0] || h->cfg->api_insecure
                    ? "unauthorized: missing or wrong API key" : "unauthorized: the API is disabled (no api.key)");
        respond_json(c, req, 401, &out);
    } else {
        json_error_t jerr;
        json_t *body = json_loadb(req->body ? (const char *)req->body : "", req->body_len,
                                  JSON_REJECT_DUPLICATES, &jerr);
        const char *method = path[4] == '/' ? path + 5 : NULL;
        json_t *params = body;
        if (body && !method) {                       /* POST /api {"method","params"} */
            method = json_string_value(json_object_get(body, "method"));
            params = json_object_get(body, "params");
            if (!params) params = json_object();     /* freed with body below? no: see decref */
            else json_incref(params);
        } else if (body) {
            json_incref(params);
        }
        if (!body) {
            char msg[200];
            snprintf(msg, sizeof(msg), "bad request: body is not JSON (%s)", jerr.text);
            write_error(&out, ERR_BAD_REQUEST, msg);
        } else if (!method) {
            write_error(&out, ERR_BAD_REQUEST, "method required");
        } else {
            api_call(h, method, params, &out);
        }
        json_decref(params);
        json_decref(body);
        respond_json(c, req, 200, &out);
    }
    sb_free(&out);
    return 1;
}
