/* client: connection lifecycle of the client protocol: open, the command
 * batch of one frame, connect, pings and expiry, disconnect (see client.h;
 * subscriptions in client_sub.c, other commands in client_ops.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/version.h"
#include "net/server.h"
#include "net/worker.h"
#include "net/ws_conn.h"
#include "obs/log.h"
#include "proto/client_int.h"
#include "proto/push.h"

client_env client_env_g;

void proto_client_setup(hub *h, const token_keys *keys) {
    client_env_g.hub = h;
    client_env_g.cfg = h->cfg;
    client_env_g.keys = keys;
}

int64_t client_now_s(void) { return (int64_t)time(NULL); }

client *client_ref(client *cl) {
    atomic_fetch_add(&cl->refs, 1);
    return cl;
}

void client_unref(client *cl) {
    if (atomic_fetch_sub(&cl->refs, 1) != 1) return;
    sb_free(&cl->out);
    hub_client_release(&cl->hc);
    free(cl);
}

/* ---- replies ---- */

static void reply_sep(client *cl) {
    if (cl->out.len) sb_putc(&cl->out, '\n');
}

void reply_begin(client *cl, uint32_t id, const char *name) {
    reply_sep(cl);
    sb_puts(&cl->out, "{\"id\":");
    sb_u64(&cl->out, id);
    sb_puts(&cl->out, ",\"");
    sb_puts(&cl->out, name);
    sb_puts(&cl->out, "\":");
}

void reply_end(client *cl) {
    sb_putc(&cl->out, '}');
    if (!cl->in_batch) client_flush(cl);
}

void reply_empty(client *cl, uint32_t id, const char *name) {
    reply_begin(cl, id, name);
    sb_puts(&cl->out, "{}");
    reply_end(cl);
}

void reply_error(client *cl, uint32_t id, int code) {
    hub_local *hl = cl->hc.hl;
    if (code >= 100 && code < 116) METRIC_ADD(hl->metrics.errors[code - 100], 1);
    reply_sep(cl);
    sb_printf(&cl->out, "{\"id\":%u,\"error\":{\"code\":%d,\"message\":\"%s\"%s}}",
              id, code, proto_error_message(code),
              code == ERR_INTERNAL || code == ERR_TOO_MANY_REQUESTS
                  ? ",\"temporary\":true" : "");
    if (!cl->in_batch) client_flush(cl);
}

void client_flush(client *cl) {
    if (!cl->out.len && !cl->out.oom) return;
    int oom = cl->out.oom;
    if (!cl->closed && !oom)
        ws_send(cl->hc.c, WS_OP_TEXT, cl->out.p, cl->out.len);
    sb_free(&cl->out);            /* idle clients hold no reply buffer */
    if (oom) client_close(cl, DISC_INTERNAL, "internal error");
}

void client_close(client *cl, int code, const char *reason) {
    if (cl->closed) return;
    client_flush(cl);
    hub_local *hl = cl->hc.hl;
    if (code >= 3000 && code < 3016) METRIC_ADD(hl->metrics.disconnects[code - 3000], 1);
    else if (code >= 3500 && code < 3516) METRIC_ADD(hl->metrics.disconnects[16 + code - 3500], 1);
    ws_conn_close(cl->hc.c, code, reason);
}

/* ---- timers ---- */

static uint64_t min_nonzero(uint64_t a, uint64_t b) {
    if (!a) return b;
    if (!b) return a;
    return a < b ? a : b;
}

/* Puts the connection's single deadline at the earliest of its timers. */
void client_rearm(client *cl) {
    if (cl->closed) return;
    const config *cfg = client_env_g.cfg;
    uint64_t due = cl->connected ? 0 : cl->stale_deadline_ms;
    due = min_nonzero(due, cl->ping_outstanding && cl->pong_required
                               ? cl->pong_deadline_ms : cl->next_ping_ms);
    int64_t exp = cl->expire_at;
    int64_t sub_exp = client_next_sub_expiry(cl);
    if (sub_exp && (!exp || sub_exp < exp)) exp = sub_exp;
    if (exp) {   /* wall-clock expiry -> loop time, plus the grace period */
        int64_t in_ms = exp * 1000 + cfg->client_expired_close_delay_ms - hub_now_ms();
        uint64_t now = conn_now(cl->hc.c);
        due = min_nonzero(due, in_ms > 0 ? now + (uint64_t)in_ms : now + 1);
    }
    if (due) conn_set_deadline(cl->hc.c, due);
}

static void send_ping(client *cl, uint64_t now) {
    const config *cfg = client_env_g.cfg;
    ws_send(cl->hc.c, WS_OP_TEXT, "{}", 2);
    cl->ping_outstanding = 1;
    cl->pong_deadline_ms = now + (uint64_t)cfg->client_pong_timeout_ms;
    cl->next_ping_ms = now + (uint64_t)cfg->client_ping_interval_ms;
}

static void on_deadline(conn *c) {
    client *cl = c->udata;
    uint64_t now = conn_now(c);
    if (!cl->connected) {
        if (now >= cl->stale_deadline_ms) { client_close(cl, DISC_STALE, "stale"); return; }
    } else {
        int64_t now_s = client_now_s();
        /* ms, as client_rearm schedules it: whole seconds here closed up to
         * 1 s late and re-armed the deadline every 1 ms until then */
        if (cl->expire_at && hub_now_ms() >= cl->expire_at * 1000 +
                client_env_g.cfg->client_expired_close_delay_ms) {
            client_close(cl, DISC_EXPIRED, "expired");
            return;
        }
        client_check_sub_expiry(cl, now_s);
        if (cl->ping_outstanding && cl->pong_required && now >= cl->pong_deadline_ms) {
            client_close(cl, DISC_NO_PONG, "no pong");
            return;
        }
        if (cl->next_ping_ms && now >= cl->next_ping_ms) send_ping(cl, now);
    }
    client_rearm(cl);
}

/* ---- connect ---- */

static void write_connect_result(client *cl, const char *subs, size_t subs_len) {
    const config *cfg = client_env_g.cfg;
    sbuf *sb = &cl->out;
    sb_puts(sb, "{\"client\":\"");
    sb_puts(sb, cl->hc.id);
    sb_puts(sb, "\",\"version\":\"" PLAZA_VERSION "\"");
    if (cfg->client_ping_interval_ms > 0)
        sb_printf(sb, ",\"ping\":%d,\"pong\":%s",
                  (cfg->client_ping_interval_ms + 999) / 1000,
                  cl->pong_required ? "true" : "false");
    if (cl->expire_at) {
        int64_t ttl = cl->expire_at - client_now_s();
        sb_printf(sb, ",\"expires\":true,\"ttl\":%lld", (long long)(ttl > 0 ? ttl : 1));
    }
    if (subs_len > 2) { sb_puts(sb, ",\"subs\":"); sb_append(sb, subs, subs_len); }
    sb_puts(sb, ",\"node\":\"");
    sb_puts(sb, client_env_g.hub->node_id);
    sb_puts(sb, "\",\"time\":");
    sb_i64(sb, hub_now_ms());
    sb_putc(sb, '}');
}

/* Authenticates the connect command. Returns 0 (token filled or anonymous),
 * or a disconnect code (>= 3000) or an error code (< 3000). */
static int authenticate(proto_cmd *cmd, conn_token *tok) {
    memset(tok, 0, sizeof(*tok));
    if (!cmd->token || !cmd->token[0]) {
        if (!client_env_g.cfg->client_allow_anonymous) return DISC_BAD_REQUEST;
        tok->user = strdup("");
        return tok->user ? 0 : ERR_INTERNAL;
    }
    char err[160];
    int rc = token_verify_conn(client_env_g.keys, cmd->token, client_now_s(), tok,
                               err, sizeof(err));
    if (rc == TOKEN_EXPIRED) return ERR_TOKEN_EXPIRED;
    if (rc != TOKEN_OK) {
        log_debug("connect refused: %s", err);
        return DISC_INVALID_TOKEN;
    }
    return 0;
}

/* Server-side subscriptions from the token's `channels` claim. */
static void connect_subs(client *cl, conn_token *tok, json_t *recover,
                         sbuf *subs, hub_sub **live, int *nlive) {
    sb_putc(subs, '{');
    for (int i = 0; i < tok->nchannels; i++) {
        sbuf res;
        sb_init(&res);
        hub_sub *s = NULL;
        json_t *pos = recover ? json_object_get(recover, tok->channels[i]) : NULL;
        client_subscribe_server_side(cl, tok->channels[i], pos, &res, &s);
        if (s) {
            if (subs->len > 1) sb_putc(subs, ',');
            sb_json_str(subs, tok->channels[i], strlen(tok->channels[i]));
            sb_putc(subs, ':');
            sb_append(subs, res.p, res.len);
            live[(*nlive)++] = s;
        }
        sb_free(&res);
    }
    sb_putc(subs, '}');
}

static void cmd_connect(client *cl, proto_cmd *cmd) {
    conn_token tok;
    int rc = authenticate(cmd, &tok);
    if (rc >= 3000) { conn_token_free(&tok); client_close(cl, rc, rc == DISC_INVALID_TOKEN ? "invalid token" : "bad request"); return; }
    if (rc) { conn_token_free(&tok); reply_error(cl, cmd->id, rc); return; }
    if (cl->hc.user != hub_anonymous) free(cl->hc.user);   /* a connect retried after error 106 */
    free(cl->hc.conn_info);
    cl->hc.user = tok.user && tok.user[0] ? tok.user : hub_anonymous;
    if (cl->hc.user == hub_anonymous) free(tok.user);
    tok.user = NULL;
    cl->hc.conn_info = tok.info;
    cl->hc.conn_info_len = (uint32_t)tok.info_len;
    tok.info = NULL;
    cl->expire_at = tok.expire_at ? tok.expire_at : tok.exp;
    if (hub_client_register(&cl->hc) != 0) {
        conn_token_free(&tok);
        reply_error(cl, cmd->id, ERR_LIMIT_EXCEEDED);
        return;
    }
    cl->connected = 1;
    hub_sub **live = tok.nchannels ? calloc((size_t)tok.nchannels, sizeof(*live)) : NULL;
    int nlive = 0;
    if (tok.nchannels && !live) tok.nchannels = 0;
    sbuf subs;
    sb_init(&subs);
    connect_subs(cl, &tok, cmd->subs, &subs, live, &nlive);
    conn_token_free(&tok);
    reply_begin(cl, cmd->id, "connect");
    write_connect_result(cl, subs.p, subs.len);
    sb_free(&subs);
    reply_end(cl);
    client_flush(cl);                  /* sent before any push of those channels */
    for (int i = 0; i < nlive; i++) hub_sub_go_live(live[i], live[i]->offset);
    free(live);
    uint64_t interval = (uint64_t)client_env_g.cfg->client_ping_interval_ms;
    if (interval) cl->next_ping_ms = conn_now(cl->hc.c) + interval / 2 + (uint64_t)rand() % (interval / 2 + 1);
    client_rearm(cl);
}

/* ---- dispatch ---- */

static void run_command(client *cl, proto_cmd *cmd) {
    switch (cmd->type) {
    case CMD_SUBSCRIBE: cmd_subscribe(cl, cmd); break;
    case CMD_UNSUBSCRIBE: cmd_unsubscribe(cl, cmd); break;
    case CMD_PUBLISH: cmd_publish(cl, cmd); break;
    case CMD_PRESENCE: cmd_presence(cl, cmd); break;
    case CMD_PRESENCE_STATS: cmd_presence_stats(cl, cmd); break;
    case CMD_HISTORY: cmd_history(cl, cmd); break;
    case CMD_RPC: cmd_rpc(cl, cmd); break;
    case CMD_REFRESH: cmd_refresh(cl, cmd); break;
    case CMD_SUB_REFRESH: cmd_sub_refresh(cl, cmd); break;
    case CMD_PING: reply_empty(cl, cmd->id, "ping"); break;
    case CMD_SEND: break;                       /* no handler: ignored */
    default: client_close(cl, DISC_BAD_REQUEST, "bad request"); break;
    }
}

/* Token bucket per connection: over it -> 111; sustained -> 3013. */
static int rate_limited(client *cl, proto_cmd *cmd) {
    const config *cfg = client_env_g.cfg;
    if (!cfg->client_command_rate) return 0;
    if (ratelimit_take(&cl->rl, cfg->client_command_rate, cfg->client_command_burst,
                       conn_now(cl->hc.c))) {
        cl->refused = 0;
        return 0;
    }
    if (++cl->refused >= cfg->client_rate_limit_close_after)
        client_close(cl, DISC_TOO_MANY_REQUESTS, "too many requests");
    else if (cmd->id)
        reply_error(cl, cmd->id, ERR_TOO_MANY_REQUESTS);
    return 1;
}

static void observe(client *cl, cmd_type t, uint64_t t0) {
    static const uint64_t bounds_us[11] = {10, 25, 50, 100, 250, 500, 1000,
                                           2500, 5000, 10000, 100000};
    hub_metrics *m = &cl->hc.hl->metrics;
    uint64_t us = (uv_hrtime() - t0) / 1000;
    int b = 0;
    while (b < 11 && us > bounds_us[b]) b++;
    METRIC_ADD(m->commands[t], 1);
    METRIC_ADD(m->command_us[t], us);
    METRIC_ADD(m->latency_buckets[t][b], 1);
}

static void handle_command(client *cl, proto_cmd *cmd) {
    if (cmd->type == CMD_PONG) { cl->ping_outstanding = 0; client_rearm(cl); return; }
    if (!cl->connected) {
        if (cmd->type != CMD_CONNECT) { client_close(cl, DISC_BAD_REQUEST, "bad request"); return; }
        uint64_t t0 = uv_hrtime();
        cmd_connect(cl, cmd);
        observe(cl, cmd->type, t0);
        return;
    }
    if (cmd->type == CMD_CONNECT) { client_close(cl, DISC_BAD_REQUEST, "bad request"); return; }
    if (rate_limited(cl, cmd)) return;
    uint64_t t0 = uv_hrtime();
    run_command(cl, cmd);
    observe(cl, cmd->type, t0);
}

static void on_message(conn *c, const uint8_t *data, size_t len, int binary) {
    client *cl = c->udata;
    if (binary) { client_close(cl, DISC_BAD_REQUEST, "bad request"); return; }
    client_ref(cl);
    cl->in_batch = 1;
    const char *p = (const char *)data, *end = p + len;
    while (p < end && !cl->closed && !c->closed && !c->ending) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *q = p;
        while (q < line_end && (*q == ' ' || *q == '\r' || *q == '\t')) q++;
        if (q < line_end) {
            proto_cmd cmd;
            char err[128];
            if (proto_cmd_decode(q, (size_t)(line_end - q), &cmd, err, sizeof(err)) != 0) {
                log_debug("client %s: %s", cl->hc.id, err);
                client_close(cl, DISC_BAD_REQUEST, "bad request");
                break;
            }
            handle_command(cl, &cmd);
            proto_cmd_free(&cmd);
        }
        p = line_end + 1;
    }
    cl->in_batch = 0;
    client_flush(cl);
    client_unref(cl);
}

/* ---- open and close ---- */

static void peer_ip(conn *c, char *ip, size_t len) {
    conn_peer(c, ip, len);
    char *colon = strrchr(ip, ':');
    if (colon) *colon = '\0';
}

static void on_open(conn *c) {
    client *cl = calloc(1, sizeof(*cl));
    if (!cl) { ws_conn_close(c, DISC_INTERNAL, "internal error"); return; }
    atomic_init(&cl->refs, 1);
    cl->hc.c = c;
    cl->hc.hl = hub_local_of(c);
    hub_new_id(cl->hc.id);
    c->udata = cl;
    const config *cfg = client_env_g.cfg;
    cl->pong_required = cfg->client_pong_timeout_ms > 0;
    ratelimit_init(&cl->rl, cfg->client_command_rate, cfg->client_command_burst, conn_now(c));
    cl->stale_deadline_ms = conn_now(c) + (uint64_t)cfg->client_stale_close_delay_ms;
    if (cfg->client_connection_limit_per_ip) {
        char ip[64];
        peer_ip(c, ip, sizeof(ip));
        if (!(cl->hc.ip = strdup(ip)) || hub_ip_acquire(client_env_g.hub, ip) != 0) {
            free(cl->hc.ip);
            cl->hc.ip = NULL;
            client_close(cl, DISC_CONNECTION_LIMIT, "connection limit");
            return;
        }
    }
    client_rearm(cl);
}

static void on_close(conn *c) {
    client *cl = c->udata;
    if (!cl) return;
    cl->closed = 1;
    while (cl->hc.nsubs) client_drop_sub(cl, cl->hc.subs[cl->hc.nsubs - 1], 1);
    hub_client_unregister(&cl->hc);
    if (cl->hc.ip) hub_ip_release(client_env_g.hub, cl->hc.ip);
    cl->hc.c = NULL;
    c->udata = NULL;
    client_unref(cl);
}

const ws_handler proto_client_handler = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
    .on_deadline = on_deadline,
};

/* ---- server-side actions (server API) ---- */

void proto_client_disconnect(hub_client *hc, int code, const char *reason) {
    client_close(client_of(hc), code, reason);
}

void proto_client_refresh(hub_client *hc, int expired, int64_t expire_at) {
    client *cl = client_of(hc);
    if (cl->closed) return;
    if (expired) { client_close(cl, DISC_EXPIRED, "expired"); return; }
    cl->expire_at = expire_at;
    client_rearm(cl);
}
