/* auction: lots and bids over a persistent map (see auction.h). A bid is
 * three steps on the caller's worker: read the lot (map_state of one key),
 * check it, write it back on the condition that it is still at the offset
 * read (expected_offset); a lost race reads again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <jansson.h>
#include "apps/auction.h"
#include "core/clock.h"
#include "core/keylimit.h"
#include "hub/hub.h"
#include "proto/codes.h"
#include "proto/push.h"
#include "proto/rpc.h"

#define LOT_MAX 64

typedef struct bid_ctx {             /* one open or bid, across its engine calls */
    proto_env *env;
    hub_local *hl;
    void *reply;
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

static void fail(bid_ctx *ctx, int code, const char *msg) {
    rpc_reply(ctx->reply, code, NULL, 0, msg);
    ctx_free(ctx);
}

/* ---- params and rules ---- */

static int name_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
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

/* The auction namespace of the call's channel, and the caller's right to
 * use it; NULL with *code and err set. */
static const ns_options *check_call(proto_env *env, const rpc_call *call, json_t *p, char *channel,
                                    int *code, char *err, size_t errlen) {
    json_t *ch = json_object_get(p, "channel");
    if (!json_is_string(ch) || json_string_length(ch) >= 256 ||
        strlen(json_string_value(ch)) != json_string_length(ch)) {
        *code = ERR_BAD_REQUEST, snprintf(err, errlen, "channel: required, a channel name");
        return NULL;
    }
    strcpy(channel, json_string_value(ch));
    const ns_registry *reg = &env->cfg->namespaces;
    const ns_options *ns = ns_channel_valid(reg, channel, strlen(channel)) ? ns_lookup(reg, channel) : NULL;
    if (!ns) { *code = ERR_UNKNOWN_CHANNEL, snprintf(err, errlen, "channel: unknown"); return NULL; }
    if (!ns->auction_enabled) {
        *code = ERR_NOT_AVAILABLE, snprintf(err, errlen, "channel: not an auction (auction.enabled)");
        return NULL;
    }
    if (!call->user[0]) {
        *code = ERR_PERMISSION_DENIED, snprintf(err, errlen, "sign in to bid: anonymous clients cannot");
        return NULL;
    }
    if (!ns->allow_subscribe_for_client && !hub_client_sub(call->hc, channel)) {
        *code = ERR_PERMISSION_DENIED, snprintf(err, errlen, "subscribe to the auction first");
        return NULL;
    }
    return ns;
}

/* A new context with the caller's identity. */
static bid_ctx *ctx_new(proto_env *env, const rpc_call *call, const ns_options *ns,
                        const char *channel) {
    bid_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return NULL;
    ctx->env = env, ctx->hl = call->hl, ctx->reply = call->reply, ctx->ns = ns;
    snprintf(ctx->channel, sizeof(ctx->channel), "%s", channel);
    snprintf(ctx->user, sizeof(ctx->user), "%s", call->user);
    const hub_client *hc = call->hc;
    json_t *ci = hc->conn_info ? json_loadb(hc->conn_info, hc->conn_info_len, 0, NULL) : NULL;
    json_t *nm = json_object_get(ci, "name");
    ctx->name = strdup(json_is_string(nm) ? json_string_value(nm) : call->user);
    json_decref(ci);
    sbuf sb;
    sb_init(&sb);
    push_client_info(&sb, hc->user, hc->id, hc->conn_info, hc->conn_info_len, NULL, 0);
    ctx->info = sb.oom ? NULL : sb.p;
    ctx->info_len = sb.len;
    if (sb.oom) sb_free(&sb);
    if (!ctx->name || !ctx->info) { ctx_free(ctx); return NULL; }
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
        .map = {.stream_size = ns_map_stream_size(ns), .stream_ttl_ms = ns_map_stream_ttl_ms(ns),
                .key_ttl_ms = ns->map_key_ttl_ms},
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
    if (sb.oom) rpc_reply(ctx->reply, ERR_INTERNAL, NULL, 0, "out of memory");
    else rpc_reply(ctx->reply, 0, sb.p, sb.len, NULL);
    sb_free(&sb);
}

/* ---- auction.open ---- */

static void opened(void *ud, engine_result *res) {
    bid_ctx *ctx = ud;
    if (res->err) fail(ctx, ERR_INTERNAL, engine_strerror(res->err));
    else if (res->suppressed) fail(ctx, ERR_INTERNAL, "lot id taken: try again");
    else { reply_position(ctx, res, 0); ctx_free(ctx); }
    engine_result_free(res);
}

static int title_ok(const char *s, size_t n) {
    size_t chars = 0;
    int visible = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) return 0;
        if ((ch & 0xc0) != 0x80) chars++;
        if (ch != ' ') visible = 1;
    }
    return visible && chars <= AUCTION_TITLE_MAX;
}

static int rpc_open(void *ud, const rpc_call *call, sbuf *out, const char **errmsg) {
    proto_env *env = ud;
    static _Thread_local char err[160];
    (void)out;
    json_t *p = json_loadb(call->data ? call->data : "", call->data_len, 0, NULL);
    char channel[256];
    int code = ERR_BAD_REQUEST;
    json_int_t start, inc, dur;
    const ns_options *ns = NULL;
    json_t *title = json_object_get(p, "title");
    if (!json_is_object(p)) snprintf(err, sizeof(err), "data: expected a JSON object");
    else if (!(ns = check_call(env, call, p, channel, &code, err, sizeof(err)))) ;
    else if (!json_is_string(title) || !title_ok(json_string_value(title), json_string_length(title)) ||
             strlen(json_string_value(title)) != json_string_length(title))
        ns = NULL, snprintf(err, sizeof(err), "title: 1 to %d characters", AUCTION_TITLE_MAX);
    else if (get_int(p, "start_price", 1, AUCTION_PRICE_MAX, &start, err, sizeof(err)) ||
             get_int(p, "increment", 1, AUCTION_PRICE_MAX, &inc, err, sizeof(err)) ||
             get_int(p, "duration_ms", AUCTION_DURATION_MIN_MS, AUCTION_DURATION_MAX_MS, &dur,
                     err, sizeof(err)))
        ns = NULL;
    bid_ctx *ctx = ns ? ctx_new(env, call, ns, channel) : NULL;
    if (ns && !ctx) code = ERR_INTERNAL, snprintf(err, sizeof(err), "out of memory");
    if (!ctx) { json_decref(p); *errmsg = err; return code; }
    uint16_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (uint16_t)clock_now_ms();
    int64_t now = clock_now_ms();
    snprintf(ctx->lot, sizeof(ctx->lot), "lot-%013lld-%04x", (long long)now, rnd);
    ctx->ends_at = now + dur;
    ctx->lot_data = json_pack("{s:O, s:I, s:I, s:I, s:i, s:n, s:n, s:I, s:n, s:s, s:s}",
                              "title", title, "start_price", start, "increment", inc,
                              "price", start, "bids", 0, "leader", "leader_name",
                              "ends_at", (json_int_t)ctx->ends_at, "bid_at",
                              "opened_by", ctx->user, "opened_by_name", ctx->name);
    json_decref(p);
    if (!ctx->lot_data || write_lot(ctx, ctx->lot_data, ENGINE_KEY_IF_NEW, NULL, NULL, opened)) {
        ctx_free(ctx);
        *errmsg = "out of memory";
        return ERR_INTERNAL;
    }
    return RPC_LATER;
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

static int rpc_bid(void *ud, const rpc_call *call, sbuf *out, const char **errmsg) {
    proto_env *env = ud;
    static _Thread_local char err[160];
    (void)out;
    json_t *p = json_loadb(call->data ? call->data : "", call->data_len, 0, NULL);
    char channel[256];
    int code = ERR_BAD_REQUEST;
    json_int_t amount = 0;
    const ns_options *ns = NULL;
    json_t *lot = json_object_get(p, "lot");
    const char *ls = json_string_value(lot);
    size_t ln = json_string_length(lot);
    int lot_ok = ls && ln >= 1 && ln <= LOT_MAX && strlen(ls) == ln;
    for (size_t i = 0; lot_ok && i < ln; i++) lot_ok = name_char(ls[i]);
    if (!json_is_object(p)) snprintf(err, sizeof(err), "data: expected a JSON object");
    else if (!(ns = check_call(env, call, p, channel, &code, err, sizeof(err)))) ;
    else if (!lot_ok) ns = NULL, snprintf(err, sizeof(err), "lot: required, a lot id");
    else if (get_int(p, "amount", 1, AUCTION_PRICE_MAX, &amount, err, sizeof(err))) ns = NULL;
    if (ns && ns->auction_bid_interval_ms > 0) {
        char key[512];
        snprintf(key, sizeof(key), "b|%s|%s", ns->name, call->user);
        int64_t wait = keylimit_take(env->limits, key, 1000.0 / ns->auction_bid_interval_ms, 1,
                                     clock_now_ms());
        if (wait) {
            snprintf(err, sizeof(err), "one bid per %d ms: retry after %lld ms",
                     ns->auction_bid_interval_ms, (long long)wait);
            code = ERR_TOO_MANY_REQUESTS, ns = NULL;
        }
    }
    bid_ctx *ctx = ns ? ctx_new(env, call, ns, channel) : NULL;
    if (ns && !ctx) code = ERR_INTERNAL, snprintf(err, sizeof(err), "out of memory");
    if (ctx) { snprintf(ctx->lot, sizeof(ctx->lot), "%s", ls); ctx->amount = amount; }
    json_decref(p);
    if (!ctx) { *errmsg = err; return code; }
    bid_read(ctx);
    return RPC_LATER;
}

int auction_register(proto_env *env) {
    if (rpc_register(&env->rpc, "auction.open", rpc_open, env) ||
        rpc_register(&env->rpc, "auction.bid", rpc_bid, env))
        return -1;
    return 0;
}
