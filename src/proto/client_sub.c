/* client_sub: subscribe, unsubscribe and sub_refresh, with permissions,
 * subscription tokens, recovery (protocol.md A8), presence and join/leave
 * (see client_int.h).
 *
 * A subscription is a small state machine (sub_op), the same for a client's
 * subscribe command, the token's channels at connect and the server API's
 * subscribe:
 *   1. hub_sub_add: the subscription exists, not live; events are held.
 *   2. hub_sub_when_ready: this node receives the channel's events.
 *   3. positioned channels: one history read (the stream top, and the
 *      missed publications when recovering) and the recovery decision.
 *   4. presence channels: the client's presence entry is added.
 *   5. the caller replies, then hub_sub_go_live merges the held events by
 *      offset, and the join is published.
 * Each step's answer comes back on the client's worker, later; before going
 * on, a step checks that the client and this very subscription are still
 * there (a server API unsubscribe, a resync or a close may have ended it),
 * and otherwise ends quietly. No push of a channel precedes its subscribe
 * reply, and the reply's publications and the live ones neither overlap
 * nor leave a gap. */
#include <stdlib.h>
#include <string.h>
#include "hub/recovery.h"
#include "net/ws_conn.h"
#include "obs/log.h"
#include "proto/client_int.h"
#include "proto/push.h"

/* sub_op's result codes besides the protocol's errors. */
#define SUB_OK 0
#define SUB_GONE (-1)          /* the client or the subscription went away */

typedef struct sub_req {
    int recover, want_positioned, want_recoverable, want_join_leave;
    uint64_t offset;
    char epoch[ENGINE_EPOCH_MAX + 1];
    int64_t flag;
    char *chan_info;        /* moved into the subscription */
    size_t chan_info_len;
    int64_t expire_at;
    int server_side;
} sub_req;

typedef struct sub_op sub_op;
typedef void (*sub_done_fn)(sub_op *op, int code);

struct sub_op {
    client *cl;             /* a reference */
    hub_sub *s;
    uint32_t serial;
    sub_req r;
    sbuf res;               /* the SubscribeResult object */
    sub_done_fn done;
    uint32_t id;            /* the command's id (client subscribe) */
    uint64_t t0;
    connect_subs *cs;       /* connect: which slot */
    int index;
    char channel[];
};

static void sub_op_free(sub_op *op) {
    free(op->r.chan_info);
    sb_free(&op->res);
    client_unref(op->cl);
    free(op);
}

/* Is the subscription this op made still there, and its client? */
static int op_alive(const sub_op *op) {
    const client *cl = op->cl;
    if (cl->closed) return 0;
    hub_sub *s = hub_client_sub(&cl->hc, op->channel);
    return s == op->s && s->serial == op->serial && !s->dead;
}

/* Ends the state machine with an error: the subscription (if still ours)
 * is removed. */
static void op_fail(sub_op *op, int code) {
    if (op_alive(op)) client_drop_sub(op->cl, op->s);
    op->s = NULL;
    op->done(op, op->cl->closed ? SUB_GONE : code);
}

static void op_gone(sub_op *op) {
    op->s = NULL;
    op->done(op, SUB_GONE);
}

static void op_finish(sub_op *op) {
    hub_sub *s = op->s;
    sbuf *res = &op->res;
    if (s->expire_at) {
        int64_t ttl = s->expire_at - clock_now_s();
        sb_printf(res, "%s\"expires\":true,\"ttl\":%lld", res->len > 1 ? "," : "",
                  (long long)(ttl > 0 ? ttl : 1));
    }
    sb_putc(res, '}');
    op->done(op, res->oom ? ERR_INTERNAL : SUB_OK);
}

/* ---- step 4: presence ---- */

static void on_presence_added(void *ud, engine_result *res) {
    sub_op *op = ud;
    int err = res->err;
    engine_result_free(res);
    if (!op_alive(op)) { op_gone(op); return; }
    if (err) { op_fail(op, ERR_INTERNAL); return; }
    op_finish(op);
}

static void add_presence(sub_op *op) {
    client *cl = op->cl;
    hub_sub *s = op->s;
    if (!s->presence) { op_finish(op); return; }
    hub *h = client_env(cl)->hub;
    size_t len = 0;
    char *info = h->sink.client_info(&cl->hc, s, &len);
    void *call = info ? hub_call(cl->hc.hl, on_presence_added, op) : NULL;
    if (!call) { free(info); op_fail(op, ERR_INTERNAL); return; }
    engine_presence_entry e = {cl->hc.id, cl->hc.user, info, len};
    h->eng->ops->presence_add(h->eng, s->channel, &e, client_env(cl)->cfg->channel_presence_ttl_ms,
                              clock_now_ms(), hub_call_cb, call);
    free(info);
}

/* ---- step 3: the stream position ---- */

static void write_position(sub_op *op, const engine_result *v, int recovered) {
    sbuf *res = &op->res;
    sb_puts(res, "\"recoverable\":true,\"positioned\":true,\"epoch\":");
    sb_json_str(res, v->top.epoch, strlen(v->top.epoch));
    sb_puts(res, ",\"offset\":");
    sb_u64(res, recovered ? op->r.offset : v->top.offset);
    if (!op->r.recover) return;
    sb_puts(res, ",\"was_recovering\":true");
    if (recovered) {
        sb_puts(res, ",\"recovered\":true");
        if (v->npubs) { sb_puts(res, ",\"publications\":"); push_write_publications(res, v->pubs, v->npubs); }
    }
}

static void on_stream(void *ud, engine_result *v) {
    sub_op *op = ud;
    if (!op_alive(op)) { engine_result_free(v); op_gone(op); return; }
    if (v->err) { engine_result_free(v); op_fail(op, ERR_INTERNAL); return; }
    sub_req *r = &op->r;
    int recovered = r->recover && recovery_decide(r->offset, r->epoch, &v->top, v->pubs, v->npubs);
    if (r->recover && !recovered && (r->flag & 2)) {
        engine_result_free(v);
        op_fail(op, ERR_UNRECOVERABLE_POSITION);
        return;
    }
    write_position(op, v, recovered);
    memcpy(op->s->epoch, v->top.epoch, sizeof(op->s->epoch));
    op->s->offset = v->top.offset;
    engine_result_free(v);
    add_presence(op);
}

static void read_stream(sub_op *op) {
    client *cl = op->cl;
    engine *e = client_env(cl)->hub->eng;
    engine_history_req hr = {.channel = op->channel, .limit = 0, .now_ms = clock_now_ms()};
    if (op->r.recover && op->s->recoverable) {
        hr.limit = client_env(cl)->cfg->client_history_max_publications;
        hr.has_since = 1;
        hr.since_offset = op->r.offset;
    }
    void *call = hub_call(cl->hc.hl, on_stream, op);
    if (!call) { op_fail(op, ERR_INTERNAL); return; }
    e->ops->history(e, &hr, hub_call_cb, call);
}

/* ---- step 2: events flow ---- */

static void on_ready(void *ud, int err) {
    sub_op *op = ud;
    if (!op_alive(op)) { op_gone(op); return; }
    if (err) { op_fail(op, ERR_INTERNAL); return; }
    if (op->s->positioned) read_stream(op);
    else add_presence(op);
}

/* ---- step 1 ---- */

/* Starts a subscription. Returns 0 (op->done will be called, later), or an
 * error code (op untouched: the caller frees it). */
static int sub_start(sub_op *op, const ns_options *ns) {
    client *cl = op->cl;
    sub_req *r = &op->r;
    if (cl->hc.nsubs >= (uint32_t)client_env(cl)->cfg->client_channel_limit) return ERR_LIMIT_EXCEEDED;
    hub_sub *s;
    int rc = hub_sub_add(&cl->hc, op->channel, ns, &s);
    if (rc) return rc == HUB_ADD_LIMIT ? ERR_LIMIT_EXCEEDED : ERR_INTERNAL;
    int history = ns->history_size > 0;
    s->positioned = s->recoverable = history &&
        (ns->force_recovery || r->want_recoverable || r->want_positioned || r->server_side);
    s->join_leave = ns->join_leave && (r->want_join_leave || ns->force_push_join_leave);
    s->presence = ns->presence;
    s->presence_map = (uint8_t)client_presence_maps_wanted(ns);
    s->server_side = (uint8_t)r->server_side;
    s->chan_info = r->chan_info;
    s->chan_info_len = (uint32_t)r->chan_info_len;
    r->chan_info = NULL;
    s->expire_at = r->expire_at;
    if (s->expire_at) cl->sub_expiry = 1;
    op->s = s;
    op->serial = s->serial;
    sb_putc(&op->res, '{');
    if (hub_sub_when_ready(s, on_ready, op) != 0) {
        hub_sub_remove(s);
        op->s = NULL;
        return ERR_INTERNAL;
    }
    return 0;
}

static sub_op *sub_op_new(client *cl, const char *channel, sub_done_fn done) {
    size_t len = strlen(channel);
    sub_op *op = calloc(1, sizeof(*op) + len + 1);
    if (!op) return NULL;
    memcpy(op->channel, channel, len + 1);
    op->cl = client_ref(cl);
    op->done = done;
    sb_init(&op->res);
    return op;
}

/* After the reply: live, and the join for everyone else. */
static void go_live(client *cl, hub_sub *s) {
    hub_sub_go_live(s, s->offset);
    if (s->presence_map) client_presence_maps_join(cl, s);
    if (!s->ns->join_leave) return;
    hub *h = client_env(cl)->hub;
    size_t len = 0;
    char *info = h->sink.client_info(&cl->hc, s, &len);
    if (info) h->eng->ops->publish_join(h->eng, s->channel, info, len, hub_count_cb, h);
    free(info);
}

/* ---- permissions ---- */

/* Checks the subscription token or the namespace's permissions. Returns 0,
 * an error code, or a disconnect code (>= 3000). */
static int authorize(client *cl, proto_cmd *cmd, const ns_options *ns, sub_req *r) {
    proto_env *env = client_env(cl);
    if (cmd->token && cmd->token[0]) {
        sub_token t;
        char err[160];
        int rc = token_verify_sub(env->keys, cmd->token, clock_now_s(), &t, err, sizeof(err));
        if (rc == TOKEN_EXPIRED) return ERR_TOKEN_EXPIRED;
        if (rc != TOKEN_OK) { log_debug("subscription token refused: %s", err); return ERR_PERMISSION_DENIED; }
        int mismatch = strcmp(t.channel, cmd->channel) != 0 || strcmp(t.user, cl->hc.user) != 0 ||
                       (t.client && t.client[0] && strcmp(t.client, cl->hc.id) != 0);
        if (!mismatch) {
            r->chan_info = t.info;
            r->chan_info_len = t.info_len;
            t.info = NULL;
            r->expire_at = t.expire_at ? t.expire_at : t.exp;
        }
        sub_token_free(&t);
        return mismatch ? DISC_INVALID_TOKEN : 0;
    }
    if (ns->protected_) return ERR_PERMISSION_DENIED;
    int anonymous = cl->hc.user[0] == '\0';
    if (anonymous ? ns->allow_subscribe_for_anonymous : ns->allow_subscribe_for_client)
        return 0;
    return ERR_PERMISSION_DENIED;
}

static int check_channel(client *cl, const char *channel, const ns_options **ns) {
    const ns_registry *reg = &client_env(cl)->cfg->namespaces;
    if (!channel || !ns_channel_valid(reg, channel, strlen(channel))) return ERR_BAD_REQUEST;
    *ns = ns_lookup(reg, channel);
    return *ns ? 0 : ERR_UNKNOWN_CHANNEL;
}

int client_check_channel(client *cl, const char *channel, const ns_options **ns) {
    return check_channel(cl, channel, ns);
}

int client_sub_authorize(client *cl, proto_cmd *cmd, const ns_options *ns, char **chan_info,
                         size_t *chan_info_len, int64_t *expire_at) {
    sub_req r;
    memset(&r, 0, sizeof(r));
    int rc = authorize(cl, cmd, ns, &r);
    *chan_info = r.chan_info;
    *chan_info_len = r.chan_info_len;
    *expire_at = r.expire_at;
    return rc;
}

static void set_epoch(sub_req *r, const char *epoch) {
    snprintf(r->epoch, sizeof(r->epoch), "%s", epoch ? epoch : "");
}

/* ---- the subscribe command ---- */

static void subscribe_done(sub_op *op, int code) {
    client *cl = op->cl;
    if (!cl->closed) {
        client_answer_begin(cl);
        if (code) {      /* SUB_GONE: a server unsubscribe or a resync ended it */
            reply_error(cl, op->id, code == SUB_GONE ? ERR_INTERNAL : code);
        } else {
            reply_begin(cl, op->id, "subscribe");
            sb_append(&cl->out, op->res.p, op->res.len);
            reply_end(cl);
            client_flush(cl);          /* the reply goes before any push of the channel */
            go_live(cl, op->s);
            client_rearm(cl);
        }
    }
    if (!cl->closed) client_cmd_done(cl, CMD_SUBSCRIBE, op->t0);
    sub_op_free(op);
}

int cmd_subscribe(client *cl, proto_cmd *cmd, uint64_t t0) {
    const ns_options *ns = NULL;
    int rc = check_channel(cl, cmd->channel, &ns);
    if (!rc && (cmd->sub_type != 0 || ns->subscription_type != NS_SUB_STREAM))
        return cmd_map_subscribe(cl, cmd, ns, t0);
    if (!rc && hub_client_sub(&cl->hc, cmd->channel)) rc = ERR_ALREADY_SUBSCRIBED;
    sub_op *op = rc ? NULL : sub_op_new(cl, cmd->channel, subscribe_done);
    if (!rc && !op) rc = ERR_INTERNAL;
    if (op) {
        sub_req *r = &op->r;
        r->recover = cmd->recover;
        r->want_positioned = cmd->positioned;
        r->want_recoverable = cmd->recoverable;
        r->want_join_leave = cmd->join_leave;
        r->offset = cmd->offset;
        r->flag = cmd->flag;
        set_epoch(r, cmd->epoch);
        op->id = cmd->id;
        op->t0 = t0;
        rc = authorize(cl, cmd, ns, r);
    }
    if (rc >= 3000) { sub_op_free(op); client_close(cl, rc, "invalid token"); return CMD_DONE; }
    if (!rc) rc = sub_start(op, ns);
    if (rc) { if (op) sub_op_free(op); reply_error(cl, cmd->id, rc); return CMD_DONE; }
    cl->busy = 1;
    return CMD_LATER;
}

/* ---- connect's server-side subscriptions ---- */

static void connect_sub_done(sub_op *op, int code) {
    connect_subs *cs = op->cs;
    if (code == SUB_OK) {
        cs->subs[op->index] = op->s;
        cs->serials[op->index] = op->serial;
        cs->results[op->index] = op->res;
        sb_init(&op->res);
    }
    sub_op_free(op);
    if (--cs->left == 0) cs->done(cs);
}

/* Starts one; 0 if it will report through connect_sub_done. */
static int connect_sub_start(connect_subs *cs, int i, json_t *pos) {
    client *cl = cs->cl;
    const ns_options *ns;
    const char *channel = cs->channels[i];
    if (check_channel(cl, channel, &ns) || hub_client_sub(&cl->hc, channel)) return -1;
    sub_op *op = sub_op_new(cl, channel, connect_sub_done);
    if (!op) return -1;
    op->cs = cs;
    op->index = i;
    op->r.server_side = 1;
    if (json_is_object(pos) && json_is_true(json_object_get(pos, "recover"))) {
        op->r.recover = 1;
        json_t *o = json_object_get(pos, "offset");
        op->r.offset = json_is_integer(o) && json_integer_value(o) > 0 ? (uint64_t)json_integer_value(o) : 0;
        set_epoch(&op->r, json_string_value(json_object_get(pos, "epoch")));
    }
    if (sub_start(op, ns) != 0) { sub_op_free(op); return -1; }
    return 0;
}

void client_connect_subs(connect_subs *cs, json_t *recover) {
    cs->left = cs->n + 1;              /* + 1: none finishes before all started */
    for (int i = 0; i < cs->n; i++) {
        json_t *pos = recover ? json_object_get(recover, cs->channels[i]) : NULL;
        if (connect_sub_start(cs, i, pos) != 0) cs->left--;
    }
    if (--cs->left == 0) cs->done(cs);
}

void client_connect_subs_live(connect_subs *cs) {
    client *cl = cs->cl;
    for (int i = 0; i < cs->n; i++) {
        hub_sub *s = cs->subs[i];
        if (!s || hub_client_sub(&cl->hc, cs->channels[i]) != s || s->serial != cs->serials[i])
            continue;
        go_live(cl, s);
    }
}

/* ---- leaving ---- */

/* Removes a subscription: its presence entry (it may have been added even
 * if the subscription never went live) and, if it joined, the leave. */
void client_drop_sub(client *cl, hub_sub *s) {
    hub *h = client_env(cl)->hub;
    if (s->presence_map && s->live) client_presence_maps_leave(cl, s);
    if (s->presence)
        h->eng->ops->presence_remove(h->eng, s->channel, cl->hc.id, hub_count_cb, h);
    if (s->ns->join_leave && s->live) {
        size_t len = 0;
        char *info = h->sink.client_info(&cl->hc, s, &len);
        if (info) h->eng->ops->publish_leave(h->eng, s->channel, info, len, hub_count_cb, h);
        free(info);
    }
    hub_sub_remove(s);
}

int cmd_unsubscribe(client *cl, proto_cmd *cmd) {
    hub_sub *s = cmd->channel ? hub_client_sub(&cl->hc, cmd->channel) : NULL;
    if (s) client_drop_sub(cl, s);
    reply_empty(cl, cmd->id, "unsubscribe");
    client_rearm(cl);
    return CMD_DONE;
}

int cmd_sub_refresh(client *cl, proto_cmd *cmd) {
    hub_sub *s = cmd->channel ? hub_client_sub(&cl->hc, cmd->channel) : NULL;
    if (!s) { reply_error(cl, cmd->id, ERR_BAD_REQUEST); return CMD_DONE; }
    sub_token t;
    char err[160];
    int rc = token_verify_sub(client_env(cl)->keys, cmd->token, clock_now_s(), &t, err, sizeof(err));
    if (rc == TOKEN_EXPIRED) { reply_error(cl, cmd->id, ERR_TOKEN_EXPIRED); return CMD_DONE; }
    if (rc != TOKEN_OK) { reply_error(cl, cmd->id, ERR_PERMISSION_DENIED); return CMD_DONE; }
    int mismatch = strcmp(t.channel, s->channel) != 0 || strcmp(t.user, cl->hc.user) != 0 ||
                   (t.client && t.client[0] && strcmp(t.client, cl->hc.id) != 0);
    if (!mismatch) s->expire_at = t.expire_at ? t.expire_at : t.exp;
    if (s->expire_at) cl->sub_expiry = 1;
    sub_token_free(&t);
    if (mismatch) { client_close(cl, DISC_INVALID_TOKEN, "invalid token"); return CMD_DONE; }
    reply_begin(cl, cmd->id, "sub_refresh");
    if (s->expire_at) {
        int64_t ttl = s->expire_at - clock_now_s();
        sb_printf(&cl->out, "{\"expires\":true,\"ttl\":%lld}", (long long)(ttl > 0 ? ttl : 1));
    } else {
        sb_puts(&cl->out, "{}");
    }
    reply_end(cl);
    client_rearm(cl);
    return CMD_DONE;
}

/* Subscriptions whose token expired more than the grace period ago get an
 * unsubscribe push (2501: the client resubscribes with a fresh token). */
void client_check_sub_expiry(client *cl) {
    if (!cl->sub_expiry) return;
    int64_t now_ms = clock_now_ms(), grace_ms = client_env(cl)->cfg->client_expired_close_delay_ms;
    for (uint32_t i = cl->hc.nsubs; i-- > 0;) {
        hub_sub *s = cl->hc.subs[i];
        if (!s->expire_at || now_ms < s->expire_at * 1000 + grace_ms) continue;
        client_push(cl, push_unsubscribe(s->channel, UNSUB_EXPIRED, "subscription expired"));
        client_drop_sub(cl, s);
    }
}

/* A scan only while some subscription may expire (cl->sub_expiry, cleared
 * when a scan finds none): without it, rearming after each of a client's
 * thousands of subscribes would cost a scan each. */
int64_t client_next_sub_expiry(client *cl) {
    if (!cl->sub_expiry) return 0;
    int64_t next = 0;
    for (uint32_t i = 0; i < cl->hc.nsubs; i++) {
        int64_t e = cl->hc.subs[i]->expire_at;
        if (e && (!next || e < next)) next = e;
    }
    if (!next) cl->sub_expiry = 0;
    return next;
}

/* ---- server API ---- */

static void server_sub_done(sub_op *op, int code) {
    client *cl = op->cl;
    if (code == SUB_OK && !cl->closed) {
        client_push(cl, push_subscribe(op->channel, op->res.p, op->res.len));
        go_live(cl, op->s);
        client_rearm(cl);
    } else if (code > 0) {
        log_debug("server subscribe of %s to %s failed: %d", cl->hc.id, op->channel, code);
    }
    sub_op_free(op);
}

void proto_client_server_subscribe(hub_client *hc, const char *channel) {
    client *cl = client_of(hc);
    const ns_options *ns;
    if (cl->closed || !cl->connected) return;
    if (check_channel(cl, channel, &ns) || hub_client_sub(hc, channel)) return;
    sub_op *op = sub_op_new(cl, channel, server_sub_done);
    if (!op) return;
    op->r.server_side = 1;
    if (sub_start(op, ns) != 0) sub_op_free(op);
}

void proto_client_server_unsubscribe(hub_client *hc, const char *channel) {
    client *cl = client_of(hc);
    hub_sub *s = cl->closed ? NULL : hub_client_sub(hc, channel);
    if (!s) return;
    client_drop_sub(cl, s);
    client_push(cl, push_unsubscribe(channel, UNSUB_SERVER, "server unsubscribe"));
}
