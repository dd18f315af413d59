/* client_ops: the client commands that do not change subscriptions:
 * publish, presence, presence_stats, history, rpc, refresh (see
 * client_int.h). The engine's answer comes back on the client's worker
 * with a reference on the client (cmd_op), so a client that disconnected
 * meanwhile is simply not answered; an engine failure is error 100
 * (temporary), counted in /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "core/keylimit.h"
#include "core/version.h"
#include "obs/log.h"
#include "proto/client_int.h"
#include "proto/push.h"

/* ---- engine calls for commands ---- */

void *cmd_call(client *cl, proto_cmd *cmd, uint64_t t0, hub_answer_fn fn) {
    cmd_op *op = malloc(sizeof(*op));
    if (!op) return NULL;
    void *call = hub_call(cl->hc.hl, fn, op);
    if (!call) { free(op); return NULL; }
    op->cl = client_ref(cl);
    op->id = cmd->id;
    op->type = cmd->type;
    op->t0 = t0;
    cl->busy = 1;
    return call;
}

client *cmd_answer(cmd_op *op) {
    client *cl = op->cl;
    if (cl->closed) {
        client_unref(cl);
        free(op);
        return NULL;
    }
    client_answer_begin(cl);
    return cl;
}

void cmd_finish(cmd_op *op, client *cl) {
    client_cmd_done(cl, op->type, op->t0);
    client_unref(cl);
    free(op);
}

/* An engine failure: error 100 with the engine's reason, counted. */
void reply_engine_error(client *cl, uint32_t id, int err) {
    METRIC_ADD(client_pl(cl)->metrics.engine_failures, 1);
    reply_error_why(cl, id, ERR_INTERNAL, engine_strerror(err));
}

/* Resolves the channel's namespace; replies with the error if any. */
static const ns_options *channel_ns(client *cl, proto_cmd *cmd) {
    const ns_registry *reg = &client_env(cl)->cfg->namespaces;
    if (!cmd->channel || !ns_channel_valid(reg, cmd->channel, strlen(cmd->channel))) {
        reply_error(cl, cmd->id, ERR_BAD_REQUEST);
        return NULL;
    }
    const ns_options *ns = ns_lookup(reg, cmd->channel);
    if (!ns) reply_error(cl, cmd->id, ERR_UNKNOWN_CHANNEL);
    return ns;
}

/* ---- publish ---- */

void cmd_publish_done(void *ud, engine_result *res) {
    cmd_op *op = ud;
    client *cl = cmd_answer(op);
    if (cl) {
        if (res->err) reply_engine_error(cl, op->id, res->err);
        else reply_empty(cl, op->id, "publish");
        cmd_finish(op, cl);
    }
    engine_result_free(res);
}

/* What a client's publication or map write must also pass: the
 * namespace's size limit and its per-user rate (anonymous clients: per
 * connection). 0, or -1 with the error replied. */
int cmd_publish_limits(client *cl, proto_cmd *cmd, const ns_options *ns) {
    char why[128];
    if (ns->max_publication_bytes > 0 && cmd->data_len > (size_t)ns->max_publication_bytes) {
        snprintf(why, sizeof(why), "data: larger than %d bytes", ns->max_publication_bytes);
        reply_error_why(cl, cmd->id, ERR_BAD_REQUEST, why);
        return -1;
    }
    if (ns->publish_rate_limit <= 0) return 0;
    char key[512];
    int anon = cl->hc.user[0] == '\0';
    snprintf(key, sizeof(key), "p|%s|%s%s", ns->name, anon ? "~" : "", anon ? cl->hc.id : cl->hc.user);
    int64_t wait = keylimit_take(client_env(cl)->limits, key, ns->publish_rate_limit,
                                 ns->publish_rate_burst, clock_now_ms());
    if (!wait) return 0;
    snprintf(why, sizeof(why), "at most %d per second: retry after %lld ms",
             ns->publish_rate_limit, (long long)wait);
    reply_error_why(cl, cmd->id, ERR_TOO_MANY_REQUESTS, why);
    return -1;
}

int cmd_publish(client *cl, proto_cmd *cmd, uint64_t t0) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns) return CMD_DONE;
    if (cmd->pub_type != 0 || ns->subscription_type != NS_SUB_STREAM)
        return cmd_map_publish(cl, cmd, ns, t0);
    hub_sub *sub = hub_client_sub(&cl->hc, cmd->channel);
    if (!ns_allowed(ns->allow_publish_for_client, ns->allow_publish_for_subscriber,
                    ns->allow_publish_for_anonymous, cl->hc.user[0] == '\0', sub != NULL)) {
        reply_error(cl, cmd->id, ERR_PERMISSION_DENIED);
        return CMD_DONE;
    }
    if (cmd_publish_limits(cl, cmd, ns)) return CMD_DONE;
    hub *h = client_env(cl)->hub;
    size_t info_len = 0;
    char *info = h->sink.client_info(&cl->hc, sub, &info_len);
    rcbuf *payload = info ? push_payload(cmd->data, cmd->data_len, info, info_len) : NULL;
    free(info);
    void *call = payload ? cmd_call(cl, cmd, t0, cmd_publish_done) : NULL;
    if (!call) { rcbuf_unref(payload); reply_error(cl, cmd->id, ERR_INTERNAL); return CMD_DONE; }
    engine_publish_req req = {
        .channel = cmd->channel, .payload = payload,
        .history_size = ns->history_size, .history_ttl_ms = ns->history_ttl_ms,
        .now_ms = clock_now_ms(),
    };
    METRIC_ADD(client_pl(cl)->metrics.publications_in, 1);
    h->eng->ops->publish(h->eng, &req, hub_call_cb, call);
    rcbuf_unref(payload);
    return CMD_LATER;
}

/* ---- presence ---- */

static int presence_allowed(client *cl, proto_cmd *cmd, const ns_options *ns) {
    if (!ns->presence) { reply_error(cl, cmd->id, ERR_NOT_AVAILABLE); return 0; }
    if (!ns_allowed(ns->allow_presence_for_client, ns->allow_presence_for_subscriber,
                    ns->allow_presence_for_anonymous, cl->hc.user[0] == '\0',
                    hub_client_sub(&cl->hc, cmd->channel) != NULL)) {
        reply_error(cl, cmd->id, ERR_PERMISSION_DENIED);
        return 0;
    }
    return 1;
}

static void presence_done(void *ud, engine_result *res) {
    cmd_op *op = ud;
    client *cl = cmd_answer(op);
    if (cl && res->err) reply_engine_error(cl, op->id, res->err);
    else if (cl) {
        reply_begin(cl, op->id, "presence");
        sbuf *sb = &cl->out;
        sb_puts(sb, "{\"presence\":{");
        for (size_t i = 0; i < res->nentries; i++) {
            const engine_presence_entry *e = &res->entries[i];
            if (i) sb_putc(sb, ',');
            sb_json_str(sb, e->client, strlen(e->client));
            sb_putc(sb, ':');
            sb_append(sb, e->info, e->info_len);
        }
        sb_puts(sb, "}}");
        reply_end(cl);
    }
    if (cl) cmd_finish(op, cl);
    engine_result_free(res);
}

int cmd_presence(client *cl, proto_cmd *cmd, uint64_t t0) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns || !presence_allowed(cl, cmd, ns)) return CMD_DONE;
    void *call = cmd_call(cl, cmd, t0, presence_done);
    if (!call) { reply_error(cl, cmd->id, ERR_INTERNAL); return CMD_DONE; }
    engine *e = client_env(cl)->hub->eng;
    e->ops->presence(e, cmd->channel, clock_now_ms(), hub_call_cb, call);
    return CMD_LATER;
}

static void stats_done(void *ud, engine_result *res) {
    cmd_op *op = ud;
    client *cl = cmd_answer(op);
    if (cl && res->err) reply_engine_error(cl, op->id, res->err);
    else if (cl) {
        reply_begin(cl, op->id, "presence_stats");
        sb_printf(&cl->out, "{\"num_clients\":%u,\"num_users\":%u}",
                  res->num_clients, res->num_users);
        reply_end(cl);
    }
    if (cl) cmd_finish(op, cl);
    engine_result_free(res);
}

int cmd_presence_stats(client *cl, proto_cmd *cmd, uint64_t t0) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns || !presence_allowed(cl, cmd, ns)) return CMD_DONE;
    void *call = cmd_call(cl, cmd, t0, stats_done);
    if (!call) { reply_error(cl, cmd->id, ERR_INTERNAL); return CMD_DONE; }
    engine *e = client_env(cl)->hub->eng;
    e->ops->presence_stats(e, cmd->channel, clock_now_ms(), hub_call_cb, call);
    return CMD_LATER;
}

/* ---- history ---- */

static void history_done(void *ud, engine_result *res) {
    cmd_op *op = ud;
    client *cl = cmd_answer(op);
    if (cl && res->err == ENGINE_ERR_EPOCH) reply_error(cl, op->id, ERR_UNRECOVERABLE_POSITION);
    else if (cl && res->err) reply_engine_error(cl, op->id, res->err);
    else if (cl) {
        reply_begin(cl, op->id, "history");
        sbuf *sb = &cl->out;
        sb_putc(sb, '{');
        if (res->npubs) {
            sb_puts(sb, "\"publications\":");
            push_write_publications(sb, res->pubs, res->npubs);
            sb_putc(sb, ',');
        }
        sb_puts(sb, "\"epoch\":");
        sb_json_str(sb, res->top.epoch, strlen(res->top.epoch));
        if (res->top.offset) { sb_puts(sb, ",\"offset\":"); sb_u64(sb, res->top.offset); }
        sb_putc(sb, '}');
        reply_end(cl);
    }
    if (cl) cmd_finish(op, cl);
    engine_result_free(res);
}

int cmd_history(client *cl, proto_cmd *cmd, uint64_t t0) {
    const ns_options *ns = channel_ns(cl, cmd);
    if (!ns) return CMD_DONE;
    if (ns->history_size <= 0) { reply_error(cl, cmd->id, ERR_NOT_AVAILABLE); return CMD_DONE; }
    if (!ns_allowed(ns->allow_history_for_client, ns->allow_history_for_subscriber,
                    ns->allow_history_for_anonymous, cl->hc.user[0] == '\0',
                    hub_client_sub(&cl->hc, cmd->channel) != NULL)) {
        reply_error(cl, cmd->id, ERR_PERMISSION_DENIED);
        return CMD_DONE;
    }
    if (cmd->limit < -1) { reply_error(cl, cmd->id, ERR_BAD_REQUEST); return CMD_DONE; }
    void *call = cmd_call(cl, cmd, t0, history_done);
    if (!call) { reply_error(cl, cmd->id, ERR_INTERNAL); return CMD_DONE; }
    engine_history_req req = {
        .channel = cmd->channel, .limit = cmd->limit,
        .has_since = cmd->has_since, .since_offset = cmd->since_offset,
        .since_epoch = cmd->since_epoch, .reverse = cmd->reverse,
        .now_ms = clock_now_ms(),
    };
    engine *e = client_env(cl)->hub->eng;
    e->ops->history(e, &req, hub_call_cb, call);
    return CMD_LATER;
}

/* ---- rpc, refresh ---- */

static void rpc_answer(client *cl, uint32_t id, int code, const char *data, size_t len,
                       const char *msg) {
    if (code) { reply_error_why(cl, id, code, msg); return; }
    reply_begin(cl, id, "rpc");
    sb_puts(&cl->out, "{\"data\":");
    if (data && len) sb_append(&cl->out, data, len);
    else sb_puts(&cl->out, "null");
    sb_putc(&cl->out, '}');
    reply_end(cl);
}

/* A method answers later (RPC_LATER): the command waits like one that asks
 * the engine, holding a reference to the client. */
void rpc_reply(void *reply, int code, const char *data, size_t len, const char *msg) {
    cmd_op *op = reply;
    client *cl = cmd_answer(op);
    if (!cl) return;
    rpc_answer(cl, op->id, code, data, len, msg);
    cmd_finish(op, cl);
}

int cmd_rpc(client *cl, proto_cmd *cmd, uint64_t t0) {
    cmd_op *op = malloc(sizeof(*op));
    if (!op) { reply_error(cl, cmd->id, ERR_INTERNAL); return CMD_DONE; }
    *op = (cmd_op){.cl = cl, .id = cmd->id, .type = cmd->type, .t0 = t0};
    rpc_call call = {cl->hc.user, cl->hc.id, cmd->data, cmd->data_len, cl->hc.hl, &cl->hc, op};
    sbuf out;
    sb_init(&out);
    const char *msg = NULL;
    client_ref(cl);                 /* before the call: the answer may be on its way at once */
    cl->busy = 1;
    int rc = rpc_invoke(&client_env(cl)->rpc, cmd->method ? cmd->method : "", &call, &out, &msg);
    if (rc == RPC_LATER) { sb_free(&out); return CMD_LATER; }
    cl->busy = 0;
    client_unref(cl);
    free(op);
    rpc_answer(cl, cmd->id, rc, out.p, out.len, msg);
    sb_free(&out);
    return CMD_DONE;
}

int cmd_refresh(client *cl, proto_cmd *cmd) {
    conn_token t;
    char err[160];
    int rc = token_verify_conn(client_env(cl)->keys, cmd->token ? cmd->token : "",
                               clock_now_s(), &t, err, sizeof(err));
    if (rc == TOKEN_EXPIRED) { reply_error(cl, cmd->id, ERR_TOKEN_EXPIRED); return CMD_DONE; }
    if (rc != TOKEN_OK || strcmp(t.user, cl->hc.user) != 0) {
        if (rc == TOKEN_OK) conn_token_free(&t);
        client_close(cl, DISC_INVALID_TOKEN, "invalid token");
        return CMD_DONE;
    }
    cl->expire_at = t.expire_at ? t.expire_at : t.exp;
    conn_token_free(&t);
    reply_begin(cl, cmd->id, "refresh");
    sb_puts(&cl->out, "{\"client\":\"");
    sb_puts(&cl->out, cl->hc.id);
    sb_puts(&cl->out, "\",\"version\":\"" PLAZA_VERSION "\"");
    if (cl->expire_at) {
        int64_t ttl = cl->expire_at - clock_now_s();
        sb_printf(&cl->out, ",\"expires\":true,\"ttl\":%lld", (long long)(ttl > 0 ? ttl : 1));
    }
    sb_putc(&cl->out, '}');
    reply_end(cl);
    client_rearm(cl);
    return CMD_DONE;
}
