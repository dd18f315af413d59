/* client_ops: the client commands that do not change subscriptions:
 * publish, presence, presence_stats, history, rpc, refresh (see client.h).
 * Engine results arrive by callback with a reference on the client, so a
 * client that disconnected meanwhile is simply not answered. */
#include <stdlib.h>
#include <string.h>
#include "core/version.h"
#include "obs/log.h"
#include "proto/client_int.h"
#include "proto/rpc.h"

/* Context of one engine call made for a client command. */
typedef struct op_ctx {
    client *cl;
    uint32_t id;
} op_ctx;

static op_ctx *op_new(client *cl, uint32_t id) {
    op_ctx *o = malloc(sizeof(*o));
    if (!o) return NULL;
    o->cl = client_ref(cl);
    o->id = id;
    return o;
}

/* Ends a call: returns the client if it is still there to be answered. */
static client *op_end(op_ctx *o, uint32_t *id) {
    client *cl = o->cl;
    *id = o->id;
    free(o);
    if (cl->closed || cl->hc.c->closed) { client_unref(cl); return NULL; }
    return cl;
}

/* Resolves the channel's namespace; replies with the error if any. */
static const ns_options *channel_ns(client *cl, proto_cmd *cmd) {
    const ns_registry *reg = &client_env_g.cfg->namespaces;
    if (!cmd->channel || !ns_channel_valid(reg, cmd->channel, strlen(cmd->channel))) {
        reply_error(cl, cmd->id, ERR_BAD_REQUEST);
        return NULL;
    }
    const ns_options *ns = ns_lookup(reg, cmd->channel);
    if (!ns) reply_error(cl, cmd->id, ERR_UNKNOWN_CHANNEL);
    return ns;
}

/* ---- publish ---- */

static void publish_done(void *ud, int err, const engine_stream_top *pos) {
    (void)pos;
    uint32_t id;
    client *cl = op_end(ud, &id);
    if (!cl) return;
    if (err) reply_error(cl, id, ERR_INTERNAL);
    else reply_empty(cl, id, "publish");
    client_unref(cl);
}

void cmd_publish(client *cl, proto_cmd *cmd) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns) return;
    hub_sub *sub = hub_client_sub(&cl->hc, cmd->channel);
    if (!ns->allow_publish_for_client && !(ns->allow_publish_for_subscriber && sub)) {
        reply_error(cl, cmd->id, ERR_PERMISSION_DENIED);
        return;
    }
    hub *h = client_env_g.hub;
    size_t info_len = 0;
    char *info = h->codec.client_info(&cl->hc, sub, &info_len);
    op_ctx *o = op_new(cl, cmd->id);
    if (!info || !o) { free(info); free(o); reply_error(cl, cmd->id, ERR_INTERNAL); return; }
    engine_publish_req req = {
        .channel = cmd->channel, .data = cmd->data, .data_len = cmd->data_len,
        .info = info, .info_len = info_len,
        .history_size = ns->history_size, .history_ttl_ms = ns->history_ttl_ms,
        .now_ms = hub_now_ms(),
    };
    METRIC_ADD(cl->hc.hl->metrics.publications_in, 1);
    h->eng->ops->publish(h->eng, &req, publish_done, o);
    free(info);
}

/* ---- presence ---- */

static int presence_allowed(client *cl, proto_cmd *cmd, const ns_options *ns) {
    if (!ns->presence) { reply_error(cl, cmd->id, ERR_NOT_AVAILABLE); return 0; }
    if (!ns->allow_presence_for_subscriber || !hub_client_sub(&cl->hc, cmd->channel)) {
        reply_error(cl, cmd->id, ERR_PERMISSION_DENIED);
        return 0;
    }
    return 1;
}

static void presence_done(void *ud, int err, const engine_presence_entry *e, size_t n) {
    uint32_t id;
    client *cl = op_end(ud, &id);
    if (!cl) return;
    if (err) { reply_error(cl, id, ERR_INTERNAL); client_unref(cl); return; }
    reply_begin(cl, id, "presence");
    sbuf *sb = &cl->out;
    sb_puts(sb, "{\"presence\":{");
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putc(sb, ',');
        sb_json_str(sb, e[i].client, strlen(e[i].client));
        sb_putc(sb, ':');
        sb_append(sb, e[i].info, e[i].info_len);
    }
    sb_puts(sb, "}}");
    reply_end(cl);
    client_unref(cl);
}

void cmd_presence(client *cl, proto_cmd *cmd) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns || !presence_allowed(cl, cmd, ns)) return;
    op_ctx *o = op_new(cl, cmd->id);
    if (!o) { reply_error(cl, cmd->id, ERR_INTERNAL); return; }
    engine *e = client_env_g.hub->eng;
    e->ops->presence(e, cmd->channel, hub_now_ms(), presence_done, o);
}

static void stats_done(void *ud, int err, uint32_t clients, uint32_t users) {
    uint32_t id;
    client *cl = op_end(ud, &id);
    if (!cl) return;
    if (err) reply_error(cl, id, ERR_INTERNAL);
    else {
        reply_begin(cl, id, "presence_stats");
        sb_printf(&cl->out, "{\"num_clients\":%u,\"num_users\":%u}", clients, users);
        reply_end(cl);
    }
    client_unref(cl);
}

void cmd_presence_stats(client *cl, proto_cmd *cmd) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns || !presence_allowed(cl, cmd, ns)) return;
    op_ctx *o = op_new(cl, cmd->id);
    if (!o) { reply_error(cl, cmd->id, ERR_INTERNAL); return; }
    engine *e = client_env_g.hub->eng;
    e->ops->presence_stats(e, cmd->channel, hub_now_ms(), stats_done, o);
}

/* ---- history ---- */

static void history_done(void *ud, int err, const engine_stream_top *top,
                         const engine_pub *pubs, size_t n) {
    uint32_t id;
    client *cl = op_end(ud, &id);
    if (!cl) return;
    if (err == ENGINE_ERR_EPOCH) reply_error(cl, id, ERR_UNRECOVERABLE_POSITION);
    else if (err) reply_error(cl, id, ERR_INTERNAL);
    else {
        reply_begin(cl, id, "history");
        sbuf *sb = &cl->out;
        sb_putc(sb, '{');
        if (n) { sb_puts(sb, "\"publications\":"); write_publications(sb, pubs, n); sb_putc(sb, ','); }
        sb_puts(sb, "\"epoch\":");
        sb_json_str(sb, top->epoch, strlen(top->epoch));
        if (top->offset) { sb_puts(sb, ",\"offset\":"); sb_u64(sb, top->offset); }
        sb_putc(sb, '}');
        reply_end(cl);
    }
    client_unref(cl);
}

void cmd_history(client *cl, proto_cmd *cmd) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns) return;
    if (ns->history_size <= 0) { reply_error(cl, cmd->id, ERR_NOT_AVAILABLE); return; }
    if (!ns->allow_history_for_subscriber || !hub_client_sub(&cl->hc, cmd->channel)) {
        reply_error(cl, cmd->id, ERR_PERMISSION_DENIED);
        return;
    }
    op_ctx *o = op_new(cl, cmd->id);
    if (!o) { reply_error(cl, cmd->id, ERR_INTERNAL); return; }
    engine_history_req req = {
        .channel = cmd->channel, .limit = cmd->limit,
        .has_since = cmd->has_since, .since_offset = cmd->since_offset,
        .since_epoch = cmd->since_epoch, .reverse = cmd->reverse,
        .now_ms = hub_now_ms(),
    };
    engine *e = client_env_g.hub->eng;
    e->ops->history(e, &req, history_done, o);
}

/* ---- rpc, refresh ---- */

void cmd_rpc(client *cl, proto_cmd *cmd) {
    rpc_call call = {cl->hc.user, cl->hc.id, cmd->data, cmd->data_len};
    sbuf out;
    sb_init(&out);
    const char *msg = NULL;
    int rc = rpc_invoke(cmd->method ? cmd->method : "", &call, &out, &msg);
    if (rc) { sb_free(&out); reply_error(cl, cmd->id, rc); return; }
    reply_begin(cl, cmd->id, "rpc");
    sb_puts(&cl->out, "{\"data\":");
    if (out.len) sb_append(&cl->out, out.p, out.len);
    else sb_puts(&cl->out, "null");
    sb_putc(&cl->out, '}');
    sb_free(&out);
    reply_end(cl);
}

void cmd_refresh(client *cl, proto_cmd *cmd) {
    conn_token t;
    char err[160];
    int rc = token_verify_conn(client_env_g.keys, cmd->token ? cmd->token : "",
                               client_now_s(), &t, err, sizeof(err));
    if (rc == TOKEN_EXPIRED) { reply_error(cl, cmd->id, ERR_TOKEN_EXPIRED); return; }
    if (rc != TOKEN_OK || strcmp(t.user, cl->hc.user) != 0) {
        if (rc == TOKEN_OK) conn_token_free(&t);
        client_close(cl, DISC_INVALID_TOKEN, "invalid token");
        return;
    }
    cl->expire_at = t.expire_at ? t.expire_at : t.exp;
    conn_token_free(&t);
    reply_begin(cl, cmd->id, "refresh");
    sb_puts(&cl->out, "{\"client\":\"");
    sb_puts(&cl->out, cl->hc.id);
    sb_puts(&cl->out, "\",\"version\":\"" PLAZA_VERSION "\"");
    if (cl->expire_at) {
        int64_t ttl = cl->expire_at - client_now_s();
        sb_printf(&cl->out, ",\"expires\":true,\"ttl\":%lld", (long long)(ttl > 0 ? ttl : 1));
    }
    sb_putc(&cl->out, '}');
    reply_end(cl);
    client_rearm(cl);
}
