/* client: connection lifecycle of the client protocol: open, the command
 * queue, connect, pings and expiry, disconnect (see client.h and
 * client_int.h; subscriptions in client_sub.c, other commands in
 * client_ops.c, the hub's sink at the end of this file). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "core/version.h"
#include "net/server.h"
#include "net/worker.h"
#include "net/ws_conn.h"
#include "obs/log.h"
#include "proto/actions.h"
#include "proto/client_int.h"
#include "proto/push.h"
#include "core/keylimit.h"

proto_local *proto_local_of(conn *c) { return ((hub_local *)c->w->ext)->ext; }

int proto_setup(proto_env *env, server *srv) {
    if (!(env->limits = keylimit_new())) return -1;
    for (int i = 0; i < srv->nworkers; i++) {
        hub_local *hl = env->hub->locals[i];
        proto_local *pl = calloc(1, sizeof(*pl));
        if (!pl) return -1;
        pl->env = env;
        hl->ext = pl;
        srv->workers[i]->ext = hl;
    }
    srv->ws_handler = &proto_client_handler;
    return 0;
}

void proto_teardown(proto_env *env) {
    keylimit_free(env->limits);
    env->limits = NULL;
    if (!env->hub) return;
    for (int i = 0; i < env->hub->nlocals; i++) {
        free(env->hub->locals[i]->ext);
        env->hub->locals[i]->ext = NULL;
    }
}

client *client_ref(client *cl) {
    cl->refs++;
    return cl;
}

void client_unref(client *cl) {
    if (--cl->refs) return;
    sb_free(&cl->out);
    if (cl->queue) free(cl->queue->p);
    free(cl->queue);
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

void reply_error_why(client *cl, uint32_t id, int code, const char *why) {
    proto_metrics *m = &client_pl(cl)->metrics;
    if (code >= 100 && code < 116) METRIC_ADD(m->errors[code - 100], 1);
    reply_sep(cl);
    sb_printf(&cl->out, "{\"id\":%u,\"error\":{\"code\":%d,\"message\":\"%s%s%s%s\"%s}}",
              id, code, proto_error_message(code), why ? " (" : "", why ? why : "", why ? ")" : "",
              code == ERR_INTERNAL || code == ERR_TOO_MANY_REQUESTS
                  ? ",\"temporary\":true" : "");
    if (!cl->in_batch) client_flush(cl);
}

void reply_error(client *cl, uint32_t id, int code) { reply_error_why(cl, id, code, NULL); }

void client_flush(client *cl) {
    if (!cl->out.len && !cl->out.oom) return;
    int oom = cl->out.oom;
    if (!cl->closed && !oom)
        ws_send(cl->c, WS_OP_TEXT, cl->out.p, cl->out.len);
    sb_free(&cl->out);            /* idle clients hold no reply buffer */
    if (oom) client_close(cl, DISC_INTERNAL, "internal error");
}

void client_push(client *cl, ws_msg *m) {
    if (!m) return;
    if (!cl->closed) ws_send_msg(cl->c, m);
    ws_msg_unref(m);
}

void client_close(client *cl, int code, const char *reason) {
    if (cl->closed || !cl->c) return;
    client_flush(cl);
    proto_metrics *m = &client_pl(cl)->metrics;
    if (code >= 3000 && code < 3016) METRIC_ADD(m->disconnects[code - 3000], 1);
    else if (code >= 3500 && code < 3516) METRIC_ADD(m->disconnects[16 + code - 3500], 1);
    ws_conn_close(cl->c, code, reason);
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
    const config *cfg = client_env(cl)->cfg;
    uint64_t due = cl->connected ? 0 : cl->stale_deadline_ms;
    due = min_nonzero(due, cl->ping_outstanding && cl->pong_required
                               ? cl->pong_deadline_ms : cl->next_ping_ms);
    int64_t exp = cl->expire_at;
    int64_t sub_exp = client_next_sub_expiry(cl);
    if (sub_exp && (!exp || sub_exp < exp)) exp = sub_exp;
    if (exp) {   /* wall-clock expiry -> loop time, plus the grace period */
        int64_t in_ms = exp * 1000 + cfg->client_expired_close_delay_ms - clock_now_ms();
        uint64_t now = conn_now(cl->c);
        due = min_nonzero(due, in_ms > 0 ? now + (uint64_t)in_ms : now + 1);
    }
    if (due) conn_set_deadline(cl->c, due);
}

static void send_ping(client *cl, uint64_t now) {
    const config *cfg = client_env(cl)->cfg;
    ws_send(cl->c, WS_OP_TEXT, "{}", 2);
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
        /* ms, as client_rearm schedules it */
        if (cl->expire_at && clock_now_ms() >= cl->expire_at * 1000 +
                client_env(cl)->cfg->client_expired_close_delay_ms) {
            client_close(cl, DISC_EXPIRED, "expired");
            return;
        }
        client_check_sub_expiry(cl);
        if (cl->ping_outstanding && cl->pong_required && now >= cl->pong_deadline_ms) {
            client_close(cl, DISC_NO_PONG, "no pong");
            return;
        }
        if (cl->next_ping_ms && now >= cl->next_ping_ms) send_ping(cl, now);
    }
    client_rearm(cl);
}

/* ---- connect ---- */

typedef struct connect_op {
    connect_subs cs;
    uint32_t id;
    uint64_t t0;
} connect_op;

static void write_connect_result(client *cl, const char *subs, size_t subs_len) {
    const config *cfg = client_env(cl)->cfg;
    sbuf *sb = &cl->out;
    sb_puts(sb, "{\"client\":\"");
    sb_puts(sb, cl->hc.id);
    sb_puts(sb, "\",\"version\":\"" PLAZA_VERSION "\"");
    if (cfg->client_ping_interval_ms > 0)
        sb_printf(sb, ",\"ping\":%d,\"pong\":%s",
                  (cfg->client_ping_interval_ms + 999) / 1000,
                  cl->pong_required ? "true" : "false");
    if (cl->expire_at) {
        int64_t ttl = cl->expire_at - clock_now_s();
        sb_printf(sb, ",\"expires\":true,\"ttl\":%lld", (long long)(ttl > 0 ? ttl : 1));
    }
    if (subs_len > 2) { sb_puts(sb, ",\"subs\":"); sb_append(sb, subs, subs_len); }
    sb_puts(sb, ",\"node\":\"");
    sb_puts(sb, client_env(cl)->hub->node_id);
    sb_puts(sb, "\",\"time\":");
    sb_i64(sb, clock_now_ms());
    sb_putc(sb, '}');
}

/* Authenticates the connect command. Returns 0 (token filled or anonymous),
 * or a disconnect code (>= 3000) or an error code (< 3000). */
static int authenticate(client *cl, proto_cmd *cmd, conn_token *tok) {
    proto_env *env = client_env(cl);
    memset(tok, 0, sizeof(*tok));
    if (!cmd->token || !cmd->token[0]) {
        if (!env->cfg->client_allow_anonymous) return DISC_BAD_REQUEST;
        tok->user = strdup("");
        return tok->user ? 0 : ERR_INTERNAL;
    }
    char err[160];
    int rc = token_verify_conn(env->keys, cmd->token, clock_now_s(), tok, err, sizeof(err));
    if (rc == TOKEN_EXPIRED) return ERR_TOKEN_EXPIRED;
    if (rc != TOKEN_OK) {
        log_debug("connect refused: %s", err);
        return DISC_INVALID_TOKEN;
    }
    return 0;
}

static void start_pings(client *cl) {
    uint64_t interval = (uint64_t)client_env(cl)->cfg->client_ping_interval_ms;
    if (interval)
        cl->next_ping_ms = conn_now(cl->c) + interval / 2 + (uint64_t)rand() % (interval / 2 + 1);
    client_rearm(cl);
}

static void connect_op_free(connect_op *op) {
    connect_subs *cs = &op->cs;
    for (int i = 0; i < cs->n; i++) { free(cs->channels[i]); sb_free(&cs->results[i]); }
    free(cs->channels);
    free(cs->results);
    free(cs->subs);
    free(cs->serials);
    free(op);
}

/* Every server-side subscription has its answer: reply, then go live. */
static void connect_subs_done(connect_subs *cs) {
    connect_op *op = cs->ud;
    client *cl = cs->cl;
    if (!cl->closed) {
        client_answer_begin(cl);
        sbuf subs;
        sb_init(&subs);
        sb_putc(&subs, '{');
        for (int i = 0; i < cs->n; i++) {
            if (!cs->subs[i]) continue;
            if (subs.len > 1) sb_putc(&subs, ',');
            sb_json_str(&subs, cs->channels[i], strlen(cs->channels[i]));
            sb_putc(&subs, ':');
            sb_append(&subs, cs->results[i].p, cs->results[i].len);
        }
        sb_putc(&subs, '}');
        reply_begin(cl, op->id, "connect");
        write_connect_result(cl, subs.p, subs.len);
        sb_free(&subs);
        reply_end(cl);
        client_flush(cl);              /* sent before any push of those channels */
        client_connect_subs_live(cs);
        start_pings(cl);
        client_cmd_done(cl, CMD_CONNECT, op->t0);
    }
    connect_op_free(op);
    client_unref(cl);
}

/* Takes the token's identity into the client. */
static void adopt_identity(client *cl, conn_token *tok) {
    if (cl->hc.user != hub_anonymous) free(cl->hc.user);   /* a connect retried after error 106 */
    free(cl->hc.conn_info);
    cl->hc.user = tok->user && tok->user[0] ? tok->user : hub_anonymous;
    if (cl->hc.user == hub_anonymous) free(tok->user);
    tok->user = NULL;
    cl->hc.conn_info = tok->info;
    cl->hc.conn_info_len = (uint32_t)tok->info_len;
    tok->info = NULL;
    cl->expire_at = tok->expire_at ? tok->expire_at : tok->exp;
}

/* Moves the token's channels into a connect op (NULL if out of memory). */
static connect_op *connect_op_new(client *cl, proto_cmd *cmd, conn_token *tok, uint64_t t0) {
    connect_op *op = calloc(1, sizeof(*op));
    int n = tok->nchannels;
    if (!op) return NULL;
    op->id = cmd->id;
    op->t0 = t0;
    connect_subs *cs = &op->cs;
    cs->cl = cl;
    cs->n = n;
    cs->ud = op;
    cs->done = connect_subs_done;
    cs->channels = calloc((size_t)n + 1, sizeof(char *));
    cs->results = calloc((size_t)n + 1, sizeof(sbuf));
    cs->subs = calloc((size_t)n + 1, sizeof(hub_sub *));
    cs->serials = calloc((size_t)n + 1, sizeof(uint32_t));
    if (!cs->channels || !cs->results || !cs->subs || !cs->serials) { connect_op_free(op); return NULL; }
    for (int i = 0; i < n; i++) {
        cs->channels[i] = tok->channels[i];
        tok->channels[i] = NULL;
        sb_init(&cs->results[i]);
    }
    return op;
}

static int cmd_connect(client *cl, proto_cmd *cmd, uint64_t t0) {
    conn_token tok;
    int rc = authenticate(cl, cmd, &tok);
    if (rc >= 3000) { conn_token_free(&tok); client_close(cl, rc, rc == DISC_INVALID_TOKEN ? "invalid token" : "bad request"); return CMD_DONE; }
    if (rc) { conn_token_free(&tok); reply_error(cl, cmd->id, rc); return CMD_DONE; }
    adopt_identity(cl, &tok);
    if (hub_client_register(&cl->hc) != 0) {
        conn_token_free(&tok);
        reply_error(cl, cmd->id, ERR_LIMIT_EXCEEDED);
        return CMD_DONE;
    }
    cl->connected = 1;
    if (!tok.nchannels) {
        conn_token_free(&tok);
        reply_begin(cl, cmd->id, "connect");
        write_connect_result(cl, "{}", 2);
        reply_end(cl);
        start_pings(cl);
        return CMD_DONE;
    }
    connect_op *op = connect_op_new(cl, cmd, &tok, t0);
    conn_token_free(&tok);
    if (!op) { client_close(cl, DISC_INTERNAL, "internal error"); return CMD_DONE; }
    op->cs.cl = client_ref(cl);
    cl->busy = 1;
    client_connect_subs(&op->cs, cmd->subs);
    return CMD_LATER;
}

/* ---- the command queue ---- */

static int run_command(client *cl, proto_cmd *cmd, uint64_t t0) {
    switch (cmd->type) {
    case CMD_SUBSCRIBE: return cmd_subscribe(cl, cmd, t0);
    case CMD_UNSUBSCRIBE: return cmd_unsubscribe(cl, cmd);
    case CMD_PUBLISH: return cmd_publish(cl, cmd, t0);
    case CMD_PRESENCE: return cmd_presence(cl, cmd, t0);
    case CMD_PRESENCE_STATS: return cmd_presence_stats(cl, cmd, t0);
    case CMD_HISTORY: return cmd_history(cl, cmd, t0);
    case CMD_RPC: return cmd_rpc(cl, cmd, t0);
    case CMD_REFRESH: return cmd_refresh(cl, cmd);
    case CMD_SUB_REFRESH: return cmd_sub_refresh(cl, cmd);
    case CMD_PING: reply_empty(cl, cmd->id, "ping"); return CMD_DONE;
    case CMD_SEND: return CMD_DONE;             /* no handler: ignored */
    default: client_close(cl, DISC_BAD_REQUEST, "bad request"); return CMD_DONE;
    }
}

/* Token bucket per connection: over it -> 111; sustained -> 3013. */
static int rate_limited(client *cl, proto_cmd *cmd) {
    const config *cfg = client_env(cl)->cfg;
    if (!cfg->client_command_rate) return 0;
    if (ratelimit_take(&cl->rl, cfg->client_command_rate, cfg->client_command_burst,
                       conn_now(cl->c))) {
        cl->refused = 0;
        return 0;
    }
    if (++cl->refused >= (unsigned)cfg->client_rate_limit_close_after)
        client_close(cl, DISC_TOO_MANY_REQUESTS, "too many requests");
    else if (cmd->id)
        reply_error(cl, cmd->id, ERR_TOO_MANY_REQUESTS);
    return 1;
}

static void observe(client *cl, cmd_type t, uint64_t t0) {
    static const uint64_t bounds_us[11] = {10, 25, 50, 100, 250, 500, 1000,
                                           2500, 5000, 10000, 100000};
    proto_metrics *m = &client_pl(cl)->metrics;
    uint64_t us = (uv_hrtime() - t0) / 1000;
    int b = 0;
    if ((unsigned)t >= 16) return;
    while (b < 11 && us > bounds_us[b]) b++;
    METRIC_ADD(m->commands[t], 1);
    METRIC_ADD(m->command_us[t], us);
    METRIC_ADD(m->latency_buckets[t][b], 1);
}

/* Runs one command; CMD_LATER when it waits for the engine. */
static int handle_command(client *cl, proto_cmd *cmd) {
    if (cmd->type == CMD_PONG) { cl->ping_outstanding = 0; client_rearm(cl); return CMD_DONE; }
    uint64_t t0 = uv_hrtime();
    int rc;
    if (!cl->connected) {
        if (cmd->type != CMD_CONNECT) { client_close(cl, DISC_BAD_REQUEST, "bad request"); return CMD_DONE; }
        rc = cmd_connect(cl, cmd, t0);
    } else {
        if (cmd->type == CMD_CONNECT) { client_close(cl, DISC_BAD_REQUEST, "bad request"); return CMD_DONE; }
        if (rate_limited(cl, cmd)) return CMD_DONE;
        rc = run_command(cl, cmd, t0);
    }
    if (rc == CMD_DONE) observe(cl, cmd->type, t0);
    return rc;
}

static int queue_append(client *cl, const char *p, size_t len) {
    cmd_queue *q = cl->queue;
    if (!q && !(q = cl->queue = calloc(1, sizeof(*q)))) return -1;
    if (q->len + len + 1 > q->cap) {
        if (q->pos) {                    /* drop what has been read */
            memmove(q->p, q->p + q->pos, q->len - q->pos);
            q->len -= q->pos;
            q->pos = 0;
        }
        size_t cap = q->cap ? q->cap : 256;
        while (cap < q->len + len + 1) cap *= 2;
        char *np = cap != q->cap ? realloc(q->p, cap) : q->p;
        if (!np) return -1;
        q->p = np;
        q->cap = cap;
    }
    memcpy(q->p + q->len, p, len);
    q->len += len;
    q->p[q->len++] = '\n';
    return 0;
}

static void queue_free(client *cl) {
    if (!cl->queue) return;
    free(cl->queue->p);
    free(cl->queue);
    cl->queue = NULL;
}

/* Decodes and runs one line (blank lines are skipped). */
static void run_line(client *cl, const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\r' || *p == '\t')) p++;
    if (p == end) return;
    proto_cmd cmd;
    char err[128];
    if (proto_cmd_decode(p, (size_t)(end - p), &cmd, err, sizeof(err)) != 0) {
        log_debug("client %s: %s", cl->hc.id, err);
        client_close(cl, DISC_BAD_REQUEST, "bad request");
        return;
    }
    handle_command(cl, &cmd);
    proto_cmd_free(&cmd);
}

/* Runs the commands of [p, end), one per line, until one waits; the rest
 * is queued behind it. */
static void run_lines(client *cl, const char *p, const char *end) {
    while (p < end && !cl->closed && !cl->busy) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        run_line(cl, p, line_end);
        p = line_end + (nl ? 1 : 0);
    }
    if (p < end && !cl->closed && queue_append(cl, p, (size_t)(end - p)) != 0)
        client_close(cl, DISC_INTERNAL, "internal error");
}

/* Runs the queued commands, in place, until one waits or none is left;
 * reading resumes once the queue is empty. (Nothing appends to the queue
 * while one of its lines runs: messages arrive only from the loop.) */
static void run_queue(client *cl) {
    while (cl->queue && !cl->busy && !cl->closed) {
        cmd_queue *q = cl->queue;
        if (q->pos >= q->len) { queue_free(cl); break; }
        const char *p = q->p + q->pos, *end = q->p + q->len;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        q->pos = (size_t)(line_end - q->p) + (nl ? 1 : 0);
        run_line(cl, p, line_end);
    }
    if (!cl->queue && !cl->closed) conn_read_resume(cl->c);
}

void client_answer_begin(client *cl) { cl->in_batch = 1; }

void client_cmd_done(client *cl, cmd_type type, uint64_t t0) {
    observe(cl, type, t0);
    cl->busy = 0;
    cl->in_batch = 1;
    if (!cl->closed) run_queue(cl);
    cl->in_batch = 0;
    client_flush(cl);
}

static void on_message(conn *c, const uint8_t *data, size_t len, int binary) {
    client *cl = c->udata;
    if (binary) { client_close(cl, DISC_BAD_REQUEST, "bad request"); return; }
    if (cl->busy || cl->queue) {        /* waits behind the command in flight */
        if (queue_append(cl, (const char *)data, len) != 0) {
            client_close(cl, DISC_INTERNAL, "internal error");
            return;
        }
        size_t waiting = cl->queue->len - cl->queue->pos;
        if (waiting >= (size_t)client_env(cl)->cfg->ws_max_message_bytes) conn_read_pause(c);
        return;
    }
    client_ref(cl);
    cl->in_batch = 1;
    run_lines(cl, (const char *)data, (const char *)data + len);
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
    cl->refs = 1;
    cl->c = c;
    cl->hc.hl = c->w->ext;
    hub_new_id(cl->hc.id);
    c->udata = cl;
    proto_env *env = client_env(cl);
    const config *cfg = env->cfg;
    cl->pong_required = cfg->client_pong_timeout_ms > 0;
    ratelimit_init(&cl->rl, cfg->client_command_rate, cfg->client_command_burst, conn_now(c));
    cl->stale_deadline_ms = conn_now(c) + (uint64_t)cfg->client_stale_close_delay_ms;
    if (cfg->client_connection_limit_per_ip) {
        char ip[64];
        peer_ip(c, ip, sizeof(ip));
        if (!(cl->hc.ip = strdup(ip)) || hub_ip_acquire(env->hub, ip) != 0) {
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
    while (cl->hc.nsubs) client_drop_sub(cl, cl->hc.subs[cl->hc.nsubs - 1]);
    hub_client_unregister(&cl->hc);
    if (cl->hc.ip) hub_ip_release(client_env(cl)->hub, cl->hc.ip);
    queue_free(cl);
    cl->c = NULL;
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

/* ---- the hub's sink ---- */

static void *sink_pub(const char *channel, const engine_pub *pub) { return push_pub(channel, pub); }
static void *sink_join(const char *ch, const char *info, size_t len) { return push_join(ch, info, len); }
static void *sink_leave(const char *ch, const char *info, size_t len) { return push_leave(ch, info, len); }
static void sink_unref(void *m) { ws_msg_unref(m); }

static int sink_send(hub_client *hc, void *m) {
    client *cl = client_of(hc);
    if (cl->closed) return -1;
    assert(inbox_on_owner(hc->hl->ib));
    return ws_send_msg(cl->c, m);
}

static void sink_resync(hub_client *hc) {
    client_close(client_of(hc), DISC_INSUFFICIENT_STATE, "insufficient state");
}

static void sink_presence_map_refresh(hub_client *hc, hub_sub *s) {
    client_presence_maps_join(client_of(hc), s);
}

static char *sink_client_info(const hub_client *cl, const hub_sub *sub, size_t *len) {
    sbuf sb;
    sb_init(&sb);
    push_client_info(&sb, cl->user, cl->id, cl->conn_info, cl->conn_info_len,
                     sub ? sub->chan_info : NULL, sub ? sub->chan_info_len : 0);
    return sb_take(&sb, len);
}

const hub_sink proto_hub_sink = {
    .pub_msg = sink_pub,
    .join_msg = sink_join,
    .leave_msg = sink_leave,
    .msg_unref = sink_unref,
    .send = sink_send,
    .resync = sink_resync,
    .client_info = sink_client_info,
    .presence_map_refresh = sink_presence_map_refresh,
    .control = proto_action_control,
};
