/* client_sub: subscribe, unsubscribe and sub_refresh, with permissions,
 * subscription tokens, recovery (protocol.md A8), presence and join/leave
 * (see client.h). A subscription is created not live, the history needed
 * for the reply is read, the reply is sent, and only then does the
 * subscription go live, so no push of a channel precedes its subscribe
 * reply and publications racing the history read are merged by offset. */
#include <stdlib.h>
#include <string.h>
#include "hub/recovery.h"
#include "net/ws_conn.h"
#include "obs/log.h"
#include "proto/client_int.h"
#include "proto/push.h"

typedef struct sub_req {
    int recover, want_positioned, want_recoverable, want_join_leave;
    uint64_t offset;
    const char *epoch;
    int64_t flag;
    char *chan_info;        /* moved into the subscription */
    size_t chan_info_len;
    int64_t expire_at;
    int server_side;
} sub_req;

/* What the engine's history read produced, kept until the reply is built. */
typedef struct history_view {
    int err;
    engine_stream_top top;
    engine_pub *pubs;
    size_t n;
} history_view;

static void keep_history(void *ud, int err, const engine_stream_top *top,
                         const engine_pub *pubs, size_t n) {
    history_view *v = ud;
    v->err = err;
    if (top) v->top = *top;
    if (err || !n) return;
    v->pubs = malloc(n * sizeof(*pubs));
    if (!v->pubs) { v->err = ENGINE_ERR_INTERNAL; return; }
    for (size_t i = 0; i < n; i++) {
        v->pubs[i] = pubs[i];
        rcbuf_ref(pubs[i].json);
    }
    v->n = n;
}

static void drop_history(history_view *v) {
    for (size_t i = 0; i < v->n; i++) rcbuf_unref(v->pubs[i].json);
    free(v->pubs);
}

void write_publications(sbuf *sb, const engine_pub *pubs, size_t n) {
    sb_putc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putc(sb, ',');
        sb_append(sb, pubs[i].json->data, pubs[i].json->len);
    }
    sb_putc(sb, ']');
}

/* Reads the stream position (and the missed publications when
 * recovering). The memory engine answers before returning. */
static void read_stream(hub_sub *s, const sub_req *r, history_view *v) {
    engine *e = client_env_g.hub->eng;
    engine_history_req hr = {
        .channel = s->channel,
        .limit = 0,
        .now_ms = hub_now_ms(),
    };
    if (r->recover && s->recoverable) {
        hr.limit = client_env_g.cfg->client_history_max_publications;
        hr.has_since = 1;
        hr.since_offset = r->offset;
    }
    memset(v, 0, sizeof(*v));
    v->err = ENGINE_ERR_INTERNAL;
    e->ops->history(e, &hr, keep_history, v);
}

static void write_position(sbuf *res, const hub_sub *s, const sub_req *r,
                           const history_view *v, int recovered) {
    sb_puts(res, "\"recoverable\":true,\"positioned\":true,\"epoch\":");
    sb_json_str(res, v->top.epoch, strlen(v->top.epoch));
    sb_puts(res, ",\"offset\":");
    sb_u64(res, recovered ? r->offset : v->top.offset);
    if (!r->recover) return;
    sb_puts(res, ",\"was_recovering\":true");
    if (recovered) {
        sb_puts(res, ",\"recovered\":true");
        if (v->n) { sb_puts(res, ",\"publications\":"); write_publications(res, v->pubs, v->n); }
    }
    (void)s;
}

static void announce(client *cl, hub_sub *s) {
    hub *h = client_env_g.hub;
    if (!s->presence && !s->join_leave && !s->ns->join_leave) return;
    size_t len = 0;
    char *info = h->codec.client_info(&cl->hc, s, &len);
    if (!info) return;
    if (s->presence) {
        engine_presence_entry e = {cl->hc.id, cl->hc.user, info, len};
        h->eng->ops->presence_add(h->eng, s->channel, &e,
                                  client_env_g.cfg->channel_presence_ttl_ms, hub_now_ms());
    }
    if (s->ns->join_leave) h->eng->ops->publish_join(h->eng, s->channel, info, len);
    free(info);
}

/* Creates the subscription and writes its SubscribeResult object into res.
 * Returns 0 with *out set (not live yet: the caller sends the reply, then
 * calls hub_sub_go_live), or an error code. */
static int subscribe(client *cl, const char *channel, const ns_options *ns,
                     sub_req *r, sbuf *res, hub_sub **out) {
    int limited;
    *out = NULL;
    if (cl->hc.nsubs >= client_env_g.cfg->client_channel_limit) return ERR_LIMIT_EXCEEDED;
    hub_sub *s = hub_sub_add(&cl->hc, channel, ns, &limited);
    if (!s) return limited ? ERR_LIMIT_EXCEEDED : ERR_INTERNAL;
    int history = ns->history_size > 0;
    s->positioned = s->recoverable = history &&
        (ns->force_recovery || r->want_recoverable || r->want_positioned || r->server_side);
    s->join_leave = ns->join_leave && (r->want_join_leave || ns->force_push_join_leave);
    s->presence = ns->presence;
    s->server_side = (uint8_t)r->server_side;
    s->chan_info = r->chan_info;
    s->chan_info_len = (uint32_t)r->chan_info_len;
    r->chan_info = NULL;
    s->expire_at = r->expire_at;
    sb_putc(res, '{');
    if (s->positioned) {
        history_view v;
        read_stream(s, r, &v);
        if (v.err) { drop_history(&v); hub_sub_remove(s); return ERR_INTERNAL; }
        int recovered = r->recover && recovery_decide(r->offset, r->epoch, &v.top, v.pubs, v.n);
        if (r->recover && !recovered && (r->flag & 2)) {
            drop_history(&v);
            hub_sub_remove(s);
            return ERR_UNRECOVERABLE_POSITION;
        }
        write_position(res, s, r, &v, recovered);
        memcpy(s->epoch, v.top.epoch, sizeof(s->epoch));
        s->offset = v.top.offset;
        drop_history(&v);
    }
    if (s->expire_at) {
        int64_t ttl = s->expire_at - client_now_s();
        sb_printf(res, "%s\"expires\":true,\"ttl\":%lld", res->len > 1 ? "," : "",
                  (long long)(ttl > 0 ? ttl : 1));
    }
    sb_putc(res, '}');
    *out = s;
    return 0;
}

/* ---- permissions ---- */

/* Checks the subscription token or the namespace's permissions. Returns 0,
 * an error code, or a disconnect code (>= 3000). */
static int authorize(client *cl, proto_cmd *cmd, const ns_options *ns, sub_req *r) {
    if (cmd->token && cmd->token[0]) {
        sub_token t;
        char err[160];
        int rc = token_verify_sub(client_env_g.keys, cmd->token, client_now_s(), &t, err, sizeof(err));
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

static int check_channel(const char *channel, const ns_options **ns) {
    const ns_registry *reg = &client_env_g.cfg->namespaces;
    if (!channel || !ns_channel_valid(reg, channel, strlen(channel))) return ERR_BAD_REQUEST;
    *ns = ns_lookup(reg, channel);
    return *ns ? 0 : ERR_UNKNOWN_CHANNEL;
}

void cmd_subscribe(client *cl, proto_cmd *cmd) {
    const ns_options *ns;
    int rc = check_channel(cmd->channel, &ns);
    if (!rc && cmd->sub_type != 0) rc = ERR_NOT_AVAILABLE;
    if (!rc && hub_client_sub(&cl->hc, cmd->channel)) rc = ERR_ALREADY_SUBSCRIBED;
    sub_req r = {
        .recover = cmd->recover, .want_positioned = cmd->positioned,
        .want_recoverable = cmd->recoverable, .want_join_leave = cmd->join_leave,
        .offset = cmd->offset, .epoch = cmd->epoch, .flag = cmd->flag,
    };
    if (!rc) rc = authorize(cl, cmd, ns, &r);
    if (rc >= 3000) { free(r.chan_info); client_close(cl, rc, "invalid token"); return; }
    sbuf res;
    sb_init(&res);
    hub_sub *s = NULL;
    if (!rc) rc = subscribe(cl, cmd->channel, ns, &r, &res, &s);
    free(r.chan_info);
    if (rc) { sb_free(&res); reply_error(cl, cmd->id, rc); return; }
    reply_begin(cl, cmd->id, "subscribe");
    sb_append(&cl->out, res.p, res.len);
    sb_free(&res);
    reply_end(cl);
    client_flush(cl);             /* the reply goes before any push of the channel */
    hub_sub_go_live(s, s->offset);
    announce(cl, s);
    client_rearm(cl);
}

void client_subscribe_server_side(client *cl, const char *channel,
                                  json_t *pos, sbuf *res, hub_sub **out) {
    const ns_options *ns;
    *out = NULL;
    if (check_channel(channel, &ns) || hub_client_sub(&cl->hc, channel)) return;
    sub_req r = {.server_side = 1};
    if (json_is_object(pos) && json_is_true(json_object_get(pos, "recover"))) {
        r.recover = 1;
        json_t *o = json_object_get(pos, "offset");
        r.offset = json_is_integer(o) && json_integer_value(o) > 0 ? (uint64_t)json_integer_value(o) : 0;
        r.epoch = json_string_value(json_object_get(pos, "epoch"));
    }
    if (subscribe(cl, channel, ns, &r, res, out) != 0) *out = NULL;
    else announce(cl, *out);
}

/* ---- leaving ---- */

void client_drop_sub(client *cl, hub_sub *s, int notify_engine) {
    hub *h = client_env_g.hub;
    if (notify_engine && (s->presence || s->ns->join_leave)) {
        if (s->presence) h->eng->ops->presence_remove(h->eng, s->channel, cl->hc.id);
        if (s->ns->join_leave) {
            size_t len = 0;
            char *info = h->codec.client_info(&cl->hc, s, &len);
            if (info) h->eng->ops->publish_leave(h->eng, s->channel, info, len);
            free(info);
        }
    }
    hub_sub_remove(s);
}

void cmd_unsubscribe(client *cl, proto_cmd *cmd) {
    hub_sub *s = cmd->channel ? hub_client_sub(&cl->hc, cmd->channel) : NULL;
    if (s) client_drop_sub(cl, s, 1);
    reply_empty(cl, cmd->id, "unsubscribe");
    client_rearm(cl);
}

void cmd_sub_refresh(client *cl, proto_cmd *cmd) {
    hub_sub *s = cmd->channel ? hub_client_sub(&cl->hc, cmd->channel) : NULL;
    if (!s) { reply_error(cl, cmd->id, ERR_BAD_REQUEST); return; }
    sub_token t;
    char err[160];
    int rc = token_verify_sub(client_env_g.keys, cmd->token, client_now_s(), &t, err, sizeof(err));
    if (rc == TOKEN_EXPIRED) { reply_error(cl, cmd->id, ERR_TOKEN_EXPIRED); return; }
    if (rc != TOKEN_OK) { reply_error(cl, cmd->id, ERR_PERMISSION_DENIED); return; }
    int mismatch = strcmp(t.channel, s->channel) != 0 || strcmp(t.user, cl->hc.user) != 0 ||
                   (t.client && t.client[0] && strcmp(t.client, cl->hc.id) != 0);
    if (!mismatch) s->expire_at = t.expire_at ? t.expire_at : t.exp;
    sub_token_free(&t);
    if (mismatch) { client_close(cl, DISC_INVALID_TOKEN, "invalid token"); return; }
    reply_begin(cl, cmd->id, "sub_refresh");
    if (s->expire_at) {
        int64_t ttl = s->expire_at - client_now_s();
        sb_printf(&cl->out, "{\"expires\":true,\"ttl\":%lld}", (long long)(ttl > 0 ? ttl : 1));
    } else {
        sb_puts(&cl->out, "{}");
    }
    reply_end(cl);
    client_rearm(cl);
}

/* Subscriptions whose token expired more than the grace period ago get an
 * unsubscribe push (2501: the client resubscribes with a fresh token). */
void client_check_sub_expiry(client *cl, int64_t now_s) {
    /* in ms, as client_rearm schedules it: the grace in whole seconds cut
     * it short (to 0 below 1000 ms) whenever another timer woke us first */
    int64_t now_ms = hub_now_ms(), grace_ms = client_env_g.cfg->client_expired_close_delay_ms;
    (void)now_s;
    for (int i = cl->hc.nsubs - 1; i >= 0; i--) {
        hub_sub *s = cl->hc.subs[i];
        if (!s->expire_at || now_ms < s->expire_at * 1000 + grace_ms) continue;
        ws_msg *m = push_unsubscribe(s->channel, UNSUB_EXPIRED, "subscription expired");
        if (m) { ws_send_msg(cl->hc.c, m); ws_msg_unref(m); }
        client_drop_sub(cl, s, 1);
    }
}

int64_t client_next_sub_expiry(client *cl) {
    int64_t next = 0;
    for (uint16_t i = 0; i < cl->hc.nsubs; i++) {
        int64_t e = cl->hc.subs[i]->expire_at;
        if (e && (!next || e < next)) next = e;
    }
    return next;
}

/* ---- server API ---- */

void proto_client_server_subscribe(hub_client *hc, const char *channel) {
    client *cl = client_of(hc);
    if (cl->closed || !cl->connected) return;
    sbuf res;
    sb_init(&res);
    hub_sub *s = NULL;
    client_subscribe_server_side(cl, channel, NULL, &res, &s);
    if (s) {
        ws_msg *m = push_subscribe(channel, res.p, res.len);
        if (m) { ws_send_msg(hc->c, m); ws_msg_unref(m); }
        hub_sub_go_live(s, s->offset);
    }
    sb_free(&res);
}

void proto_client_server_unsubscribe(hub_client *hc, const char *channel) {
    client *cl = client_of(hc);
    hub_sub *s = cl->closed ? NULL : hub_client_sub(hc, channel);
    if (!s) return;
    client_drop_sub(cl, s, 1);
    ws_msg *m = push_unsubscribe(channel, UNSUB_SERVER, "server unsubscribe");
    if (m) { ws_send_msg(hc->c, m); ws_msg_unref(m); }
}
