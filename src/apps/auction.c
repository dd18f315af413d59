/* auction: lots and bids over a persistent map (see auction.h). A bid is
 * three steps on the caller's worker: read the lot (map_state of one key),
 * check it, write it back on the condition that it is still at the offset
 * read (expected_offset); a lost race reads again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <jansson.h>
#include "apps/app_http.h"
#include "apps/auction.h"
#include "core/clock.h"
#include "core/keylimit.h"
#include "hub/hub.h"
#include "net/http_conn.h"
#include "net/worker.h"
#include "proto/codes.h"
#include "proto/push.h"
#include "proto/rpc.h"

#define LOT_MAX 64

typedef struct bid_ctx {             /* one open or bid, across its engine calls */
    proto_env *env;
    hub_local *hl;
    void *reply;                     /* RPC: rpc_reply(reply, ...) */
    http_later *later;               /* HTTP: http_later_respond(later, ...) */
    const ns_options *ns;
    char channel[256];
    char lot[LOT_MAX + 1];
    char user[256];
    char *name;                      /* the caller's display name */
    char *info;                      /* the caller's ClientInfo (the entry's info) */
    size_t info_len;
    json_t *lot_data;                /* auction.open: the new lot */
    json_int_t amount;
    int tries;
    json_int_t price, ends_at;
    int extended;
} bid_ctx;

static void ctx_free(bid_ctx *ctx) {
    free(ctx->name);
    free(ctx->info);
    json_decref(ctx->lot_data);
    free(ctx);
}

/* The answer: code 0 with the result object (raw JSON), or an error. */
static void answer(bid_ctx *ctx, int code, const char *json, size_t len, const char *msg) {
    if (!ctx->later) {
        rpc_reply(ctx->reply, code, json, len, msg);
        return;
    }
    sbuf sb;
    sb_init(&sb);
    if (code) app_json_error(&sb, code, msg, -1);
    else { sb_puts(&sb, "{\"result\":"); sb_append(&sb, json, len); sb_putc(&sb, '}'); }
    int status = sb.oom ? 503 : code ? app_http_status(code) : 200;
    http_later_respond(ctx->later, status, "application/json", "Cache-Control: no-store\r\n",
                       sb.oom ? "" : sb.p, sb.oom ? 0 : sb.len);
    sb_free(&sb);
}

static void fail(bid_ctx *ctx, int code, const char *msg) {
    answer(ctx, code, NULL, 0, msg);
    ctx_free(ctx);
}

/* ---- params and rules ---- */

static int lot_ok(json_t *v) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!s || n < 1 || n > LOT_MAX || strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++) if (!app_id_char(s[i], 1)) return 0;
    return 1;
}

static int get_int(json_t *o, const char *f, json_int_t lo, json_int_t hi, json_int_t *out,
                   char *err, size_t errlen) {
    json_t *v = json_object_get(o, f);
    if (!json_is_integer(v)) { snprintf(err, errlen, "%s: required, an integer", f); return -1; }
    *out = json_integer_value(v);
    if (*out < lo || *out > hi) {
        snprintf(err, errlen, "%s: %lld to %lld", f, (long long)lo, (long long)hi);
        return -1;
    }
    return 0;
}

/* Who calls: a client over RPC, or an HTTP caller (the API key, or a
 * user's token). */
typedef struct caller {
    proto_env *env;
    hub_local *hl;
    const char *user;                /* "" = anonymous */
    const char *name;                /* display name */
    int may_subscribe;               /* subscribed, or the rules let it subscribe */
    int api;                         /* the server API key: no rules */
    const char *info;                /* the entry's ClientInfo (raw JSON) */
    size_t info_len;
} caller;

/* The auction namespace of channel, and the caller's right to use it;
 * NULL with *code and err set. */
static const ns_options *check_channel(const caller *who, const char *channel, int *code,
                                       char *err, size_t errlen) {
    const ns_registry *reg = &who->env->cfg->namespaces;
    const ns_options *ns = ns_channel_valid(reg, channel, strlen(channel)) ? ns_lookup(reg, channel) : NULL;
    if (!ns) { *code = ERR_UNKNOWN_CHANNEL, snprintf(err, errlen, "channel: unknown"); return NULL; }
    if (!ns->auction_enabled) {
        *code = ERR_NOT_AVAILABLE, snprintf(err, errlen, "channel: not an auction (auction.enabled)");
        return NULL;
    }
    if (!who->user[0]) {
        *code = ERR_PERMISSION_DENIED, snprintf(err, errlen, "sign in to bid: anonymous clients cannot");
        return NULL;
    }
    if (!who->api && !who->may_subscribe && !ns->allow_subscribe_for_client) {
        *code = ERR_PERMISSION_DENIED, snprintf(err, errlen, "subscribe to the auction first");
        return NULL;
    }
    return ns;
}

static bid_ctx *ctx_new(const caller *who, const ns_options *ns, const char *channel) {
    bid_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return NULL;
    ctx->env = who->env, ctx->hl = who->hl, ctx->ns = ns;
    snprintf(ctx->channel, sizeof(ctx->channel), "%s", channel);
    snprintf(ctx->user, sizeof(ctx->user), "%s", who->user);
    ctx->name = strdup(who->name[0] ? who->name : who->user);
    ctx->info = malloc(who->info_len + 1);
    if (!ctx->name || !ctx->info) { ctx_free(ctx); return NULL; }
    memcpy(ctx->info, who->info, who->info_len);
    ctx->info[who->info_len] = '\0';
    ctx->info_len = who->info_len;
    return ctx;
}

/* Writes data as the lot (key_mode / expected position as given). */
static int write_lot(bid_ctx *ctx, json_t *data, int key_mode, const engine_pub *at,
                     const char *epoch, hub_answer_fn fn) {
    char *text = json_dumps(data, JSON_COMPACT);
    rcbuf *payload = text ? push_payload(text, strlen(text), ctx->info, ctx->info_len) : NULL;
    free(text);
    void *call = payload ? hub_call(ctx->hl, fn, ctx) : NULL;
    if (!call) { rcbuf_unref(payload); return -1; }
    const ns_options *ns = ctx->ns;
    engine_map_write_req req = {
        .channel = ctx->channel, .key = ctx->lot, .key_len = strlen(ctx->lot),
        .payload = payload, .key_mode = key_mode,
        .map = proto_map_opts(ns),
        .has_expected = at != NULL, .expected_offset = at ? at->offset : 0,
        .expected_epoch = epoch, .now_ms = clock_now_ms(),
    };
    engine *e = ctx->env->hub->eng;
    e->ops->map_write(e, &req, hub_call_cb, call);
    rcbuf_unref(payload);
    return 0;
}

static void reply_position(bid_ctx *ctx, const engine_result *res, int bid) {
    sbuf sb;
    sb_init(&sb);
    if (bid) {
        sb_printf(&sb, "{\"price\":%lld,\"ends_at\":%lld,\"extended\":%s,\"offset\":",
                  (long long)ctx->price, (long long)ctx->ends_at, ctx->extended ? "true" : "false");
    } else {
        sb_puts(&sb, "{\"lot\":");
        sb_json_str(&sb, ctx->lot, strlen(ctx->lot));
        sb_printf(&sb, ",\"ends_at\":%lld,\"offset\":", (long long)ctx->ends_at);
    }
    sb_u64(&sb, res->top.offset);
    sb_putc(&sb, '}');
    if (sb.oom) answer(ctx, ERR_INTERNAL, NULL, 0, "out of memory");
    else answer(ctx, 0, sb.p, sb.len, NULL);
    sb_free(&sb);
}

/* ---- auction.open ---- */

static void opened(void *ud, engine_result *res) {
    bid_ctx *ctx = ud;
    if (res->err) fail(ctx, ERR_INTERNAL, engine_strerror(res->err));
    else if (res->suppressed) fail(ctx, ERR_BAD_REQUEST, "lot: taken (a lot with this id exists)");
    else { reply_position(ctx, res, 0); ctx_free(ctx); }
    engine_result_free(res);
}

static int title_ok(const char *s, size_t n) { return app_label_ok(s, n, AUCTION_TITLE_MAX); }

/* Starts auction.open with params p (a JSON object): 0 (the answer comes
 * later, to ctx's reply or later, set by the caller in *out), or an error
 * code with err. */
static int open_start(const caller *who, json_t *p, const char *channel, bid_ctx **out,
                      char *err, size_t errlen) {
    int code = ERR_BAD_REQUEST;
    json_int_t start, inc, dur;
    json_t *title = json_object_get(p, "title"), *lot = json_object_get(p, "lot");
    const ns_options *ns = check_channel(who, channel, &code, err, errlen);
    if (!ns) return code;
    if (!json_is_string(title) || strlen(json_string_value(title)) != json_string_length(title) ||
        !title_ok(json_string_value(title), json_string_length(title))) {
        snprintf(err, errlen, "title: 1 to %d characters", AUCTION_TITLE_MAX);
        return ERR_BAD_REQUEST;
    }
    if (lot && !lot_ok(lot)) { snprintf(err, errlen, "lot: 1 to %d of A-Z a-z 0-9 _ - .", LOT_MAX); return code; }
    if (get_int(p, "start_price", 1, AUCTION_PRICE_MAX, &start, err, errlen) ||
        get_int(p, "increment", 1, AUCTION_PRICE_MAX, &inc, err, errlen) ||
        get_int(p, "duration_ms", AUCTION_DURATION_MIN_MS, AUCTION_DURATION_MAX_MS, &dur, err, errlen))
        return ERR_BAD_REQUEST;
    bid_ctx *ctx = ctx_new(who, ns, channel);
    if (!ctx) { snprintf(err, errlen, "out of memory"); return ERR_INTERNAL; }
    int64_t now = clock_now_ms();
    if (lot) {
        snprintf(ctx->lot, sizeof(ctx->lot), "%s", json_string_value(lot));
    } else {
        uint16_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (uint16_t)now;
        snprintf(ctx->lot, sizeof(ctx->lot), "lot-%013lld-%04x", (long long)now, rnd);
    }
    ctx->ends_at = now + dur;
    ctx->lot_data = json_pack("{s:O, s:I, s:I, s:I, s:i, s:n, s:n, s:I, s:n, s:s, s:s}",
                              "title", title, "start_price", start, "increment", inc,
                              "price", start, "bids", 0, "leader", "leader_name",
                              "ends_at", (json_int_t)ctx->ends_at, "bid_at",
                              "opened_by", ctx->user, "opened_by_name", ctx->name);
    *out = ctx;
    return 0;
}

static void open_go(bid_ctx *ctx) {
    if (!ctx->lot_data || write_lot(ctx, ctx->lot_data, ENGINE_KEY_IF_NEW, NULL, NULL, opened))
        fail(ctx, ERR_INTERNAL, "out of memory");
}

/* ---- auction.bid ---- */

static void bid_read(bid_ctx *ctx);

static void bid_written(void *ud, engine_result *res) {
    bid_ctx *ctx = ud;
    if (res->err) fail(ctx, ERR_INTERNAL, engine_strerror(res->err));
    else if (!res->suppressed) { reply_position(ctx, res, 1); ctx_free(ctx); }
    else if (++ctx->tries < AUCTION_CAS_TRIES) bid_read(ctx);   /* someone bid first: check again */
    else fail(ctx, ERR_INTERNAL, "too much contention on the lot: bid again");
    engine_result_free(res);
}

/* The lot's data from its entry, or NULL. */
static json_t *lot_of(const engine_pub *pub) {
    if (!pub->payload) return NULL;
    size_t n = pub->payload->len;
    char *text = malloc(n + 2);
    if (!text) return NULL;
    text[0] = '{';
    memcpy(text + 1, pub->payload->data, n);
    text[n + 1] = '}';
    json_t *whole = json_loadb(text, n + 2, 0, NULL);
    free(text);
    json_t *data = json_incref(json_object_get(whole, "data"));
    json_decref(whole);
    if (!json_is_object(data)) { json_decref(data); return NULL; }
    return data;
}

static json_int_t int_of(json_t *o, const char *f) {
    return json_integer_value(json_object_get(o, f));
}

/* Checks the bid against the lot and makes the new lot into data; 0, or
 * an error code with msg. */
static int apply_bid(bid_ctx *ctx, json_t *data, char *msg, size_t len) {
    int64_t now = clock_now_ms();
    json_int_t ends = int_of(data, "ends_at"), bids = int_of(data, "bids");
    json_int_t min = bids > 0 ? int_of(data, "price") + int_of(data, "increment")
                              : int_of(data, "start_price");
    const char *leader = json_string_value(json_object_get(data, "leader"));
    if (now >= ends) { snprintf(msg, len, "lot: ended"); return ERR_BAD_REQUEST; }
    if (leader && strcmp(leader, ctx->user) == 0) {
        snprintf(msg, len, "amount: you lead already at %lld", (long long)int_of(data, "price"));
        return ERR_BAD_REQUEST;
    }
    if (ctx->amount < min) { snprintf(msg, len, "amount: at least %lld", (long long)min); return ERR_BAD_REQUEST; }
    int64_t extend = ctx->ns->auction_extend_ms;
    ctx->extended = extend > 0 && ends - now < extend;
    ctx->ends_at = ctx->extended ? now + extend : ends;
    ctx->price = ctx->amount;
    if (json_object_set_new(data, "price", json_integer(ctx->amount)) ||
        json_object_set_new(data, "bids", json_integer(bids + 1)) ||
        json_object_set_new(data, "leader", json_string(ctx->user)) ||
        json_object_set_new(data, "leader_name", json_string(ctx->name)) ||
        json_object_set_new(data, "ends_at", json_integer(ctx->ends_at)) ||
        json_object_set_new(data, "bid_at", json_integer(now))) {
        snprintf(msg, len, "out of memory");
        return ERR_INTERNAL;
    }
    return 0;
}

static void bid_state(void *ud, engine_result *res) {
    bid_ctx *ctx = ud;
    char msg[128];
    json_t *data = NULL;
    int code = 0;
    if (res->err) code = ERR_INTERNAL, snprintf(msg, sizeof(msg), "%s", engine_strerror(res->err));
    else if (res->npubs == 0) code = ERR_BAD_REQUEST, snprintf(msg, sizeof(msg), "lot: no such lot");
    else if (!(data = lot_of(&res->pubs[0])))
        code = ERR_BAD_REQUEST, snprintf(msg, sizeof(msg), "lot: not a lot (its data is not an object)");
    else if (!(code = apply_bid(ctx, data, msg, sizeof(msg))) &&
             write_lot(ctx, data, ENGINE_KEY_ANY, &res->pubs[0], res->top.epoch, bid_written))
        code = ERR_INTERNAL, snprintf(msg, sizeof(msg), "out of memory");
    json_decref(data);
    engine_result_free(res);
    if (code) fail(ctx, code, msg);
}

static void bid_read(bid_ctx *ctx) {
    void *call = hub_call(ctx->hl, bid_state, ctx);
    if (!call) { fail(ctx, ERR_INTERNAL, "out of memory"); return; }
    engine_map_state_req req = {.channel = ctx->channel, .key = ctx->lot, .limit = 1,
                                .now_ms = clock_now_ms()};
    engine *e = ctx->env->hub->eng;
    e->ops->map_state(e, &req, hub_call_cb, call);
}

/* Starts auction.bid with params p, as open_start. */
static int bid_start(const caller *who, json_t *p, const char *channel, const char *lot,
                     bid_ctx **out, char *err, size_t errlen) {
    int code = ERR_BAD_REQUEST;
    json_int_t amount = 0;
    const ns_options *ns = check_channel(who, channel, &code, err, errlen);
    if (!ns) return code;
    if (!lot) { snprintf(err, errlen, "lot: required, a lot id"); return ERR_BAD_REQUEST; }
    if (get_int(p, "amount", 1, AUCTION_PRICE_MAX, &amount, err, errlen)) return ERR_BAD_REQUEST;
    if (ns->auction_bid_interval_ms > 0) {
        char key[512];
        snprintf(key, sizeof(key), "b|%s|%s", ns->name, who->user);
        int64_t wait = keylimit_take(who->env->limits, key, 1000.0 / ns->auction_bid_interval_ms, 1,
                                     clock_now_ms());
        if (wait) {
            snprintf(err, errlen, "one bid per %d ms: retry after %lld ms", ns->auction_bid_interval_ms,
                     (long long)wait);
            return ERR_TOO_MANY_REQUESTS;
        }
    }
    bid_ctx *ctx = ctx_new(who, ns, channel);
    if (!ctx) { snprintf(err, errlen, "out of memory"); return ERR_INTERNAL; }
    snprintf(ctx->lot, sizeof(ctx->lot), "%s", lot);
    ctx->amount = amount;
    *out = ctx;
    return 0;
}

/* ---- the RPC face ---- */

/* The params object and its channel; NULL with err. */
static json_t *rpc_params(const rpc_call *call, char *channel, char *err, size_t errlen) {
    json_t *p = json_loadb(call->data ? call->data : "", call->data_len, 0, NULL);
    json_t *ch = json_object_get(p, "channel");
    if (!json_is_object(p)) snprintf(err, errlen, "data: expected a JSON object");
    else if (!json_is_string(ch) || json_string_length(ch) >= 256 ||
             strlen(json_string_value(ch)) != json_string_length(ch))
        snprintf(err, errlen, "channel: required, a channel name");
    else { strcpy(channel, json_string_value(ch)); return p; }
    json_decref(p);
    return NULL;
}

/* The RPC caller: its user, name (the token's info.name) and ClientInfo. */
static void rpc_caller(proto_env *env, const rpc_call *call, const char *channel, caller *who,
                       sbuf *info, char *name, size_t namelen) {
    const hub_client *hc = call->hc;
    json_t *ci = hc->conn_info ? json_loadb(hc->conn_info, hc->conn_info_len, 0, NULL) : NULL;
    const char *nm = json_string_value(json_object_get(ci, "name"));
    snprintf(name, namelen, "%s", nm ? nm : "");
    json_decref(ci);
    push_client_info(info, hc->user, hc->id, hc->conn_info, hc->conn_info_len, NULL, 0);
    *who = (caller){.env = env, .hl = call->hl, .user = call->user, .name = name,
                    .may_subscribe = hub_client_sub(hc, channel) != NULL,
                    .info = info->p ? info->p : "{}", .info_len = info->p ? info->len : 2};
}

static int rpc_call_start(void *ud, const rpc_call *call, const char **errmsg, int bid) {
    static _Thread_local char err[160];
    char channel[256], name[128];
    json_t *p = rpc_params(call, channel, err, sizeof(err));
    if (!p) { *errmsg = err; return ERR_BAD_REQUEST; }
    caller who;
    sbuf info;
    sb_init(&info);
    rpc_caller(ud, call, channel, &who, &info, name, sizeof(name));
    bid_ctx *ctx = NULL;
    json_t *lot = json_object_get(p, "lot");
    int code = info.oom ? (snprintf(err, sizeof(err), "out of memory"), ERR_INTERNAL)
             : bid ? bid_start(&who, p, channel, lot && lot_ok(lot) ? json_string_value(lot) : NULL, &ctx,
                               err, sizeof(err))
                   : open_start(&who, p, channel, &ctx, err, sizeof(err));
    json_decref(p);
    sb_free(&info);
    if (code) { *errmsg = err; return code; }
    ctx->reply = call->reply;
    if (bid) bid_read(ctx); else open_go(ctx);
    return RPC_LATER;
}

static int rpc_open(void *ud, const rpc_call *call, sbuf *out, const char **errmsg) {
    (void)out;
    return rpc_call_start(ud, call, errmsg, 0);
}

static int rpc_bid(void *ud, const rpc_call *call, sbuf *out, const char **errmsg) {
    (void)out;
    return rpc_call_start(ud, call, errmsg, 1);
}

/* ---- the HTTP face ---- */

int auction_parse_path(const char *path, char *channel, size_t chlen, char *lot, size_t lotlen) {
    if (strncmp(path, AUCTION_HTTP_PREFIX, strlen(AUCTION_HTTP_PREFIX)) != 0) return -1;
    const char *p = path + strlen(AUCTION_HTTP_PREFIX);
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) >= chlen || strncmp(slash, "/lots", 5) != 0) return -1;
    memcpy(channel, p, (size_t)(slash - p));
    channel[slash - p] = '\0';
    p = slash + 5;
    lot[0] = '\0';
    if (!*p) return 0;
    if (*p != '/') return -1;
    slash = strchr(p + 1, '/');
    if (!slash || strcmp(slash, "/bids") != 0 || slash == p + 1 || (size_t)(slash - p - 1) >= lotlen) return -1;
    memcpy(lot, p + 1, (size_t)(slash - p - 1));
    lot[slash - p - 1] = '\0';
    for (const char *q = lot; *q; q++) if (!app_id_char(*q, 1)) return -1;
    return 0;
}

int auction_route(conn *c, const http_request *req, void *ud) {
    proto_env *env = ud;
    if (strncmp(req->path, AUCTION_HTTP_PREFIX, strlen(AUCTION_HTTP_PREFIX)) != 0) return HTTP_ROUTE_NOT_MINE;
    char channel[256], lot[LOT_MAX + 1], err[200];
    if (auction_parse_path(req->path, channel, sizeof(channel), lot, sizeof(lot)))
        return app_respond_error(c, req, ERR_BAD_REQUEST,
                                 "path: /auctions/<channel>/lots or /auctions/<channel>/lots/<lot>/bids");
    if (strcmp(req->method, "POST") != 0)
        return app_respond_error_status(c, req, 405, ERR_BAD_REQUEST, "method: POST a JSON body");
    app_caller ac;
    if (app_http_caller(env, req, &ac, err, sizeof(err)))
        return app_respond_error(c, req, ERR_UNAUTHORIZED, err);
    json_t *p = json_loadb(req->body ? (const char *)req->body : "", req->body_len, 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        return app_respond_error(c, req, ERR_BAD_REQUEST, "body: expected a JSON object");
    }
    /* with the API key, the body names the bidder */
    const char *user = ac.user, *name = ac.name;
    if (ac.api) {
        json_t *u = json_object_get(p, "user"), *n = json_object_get(p, "name");
        user = json_is_string(u) && lot_ok(u) ? json_string_value(u) : "";
        name = json_is_string(n) && json_string_length(n) < 128 ? json_string_value(n) : "";
        if (!user[0]) {
            json_decref(p);
            return app_respond_error(c, req, ERR_BAD_REQUEST, "user: required with the API key "
                                     "(1 to 64 of A-Z a-z 0-9 _ - .)");
        }
    }
    sbuf info;
    sb_init(&info);
    push_client_info(&info, user, "http", NULL, 0, NULL, 0);
    caller who = {.env = env, .hl = c->w->ext, .user = user, .name = name, .api = ac.api,
                  .info = info.p ? info.p : "{}", .info_len = info.p ? info.len : 2};
    bid_ctx *ctx = NULL;
    int code = info.oom ? (snprintf(err, sizeof(err), "out of memory"), ERR_INTERNAL)
             : lot[0] ? bid_start(&who, p, channel, lot, &ctx, err, sizeof(err))
                      : open_start(&who, p, channel, &ctx, err, sizeof(err));
    json_decref(p);
    sb_free(&info);
    if (code) return app_respond_error(c, req, code, err);
    if (!(ctx->later = http_later_begin(c, req))) {
        ctx_free(ctx);
        return app_respond_error(c, req, ERR_INTERNAL, "out of memory");
    }
    if (lot[0]) bid_read(ctx); else open_go(ctx);
    return HTTP_ROUTE_LATER;
}

int auction_register(proto_env *env) {
    if (rpc_register(&env->rpc, "auction.open", rpc_open, env) ||
        rpc_register(&env->rpc, "auction.bid", rpc_bid, env))
        return -1;
    return 0;
}
