/* client_map: map channels for clients (map-subscriptions.md): the
 * subscribe exchange in pages, recovery, and writes (publish with type 1).
 *
 * Every subscribe request of a map flow is answered on its own, from what
 * the request carries (cursor, frozen offset and epoch): the server keeps
 * no pagination state between pages. Each request is a small state
 * machine (map_op):
 *   1. hub_sub_add: the subscription exists, not live; events are held.
 *   2. hub_sub_when_ready: this node receives the channel's changes.
 *   3. a read: a state page (phase 2) or the stream after an offset
 *      (phase 1, recovery included), and for the last state page of a
 *      flow whose position was frozen, the stream after that position.
 *   4. either a page reply (more to come: the subscription is dropped
 *      again), or the live reply, after which the held changes newer than
 *      the reply's offset are delivered (hub_sub_go_live).
 * Registering before reading is what makes the live transition exact: a
 * change is either in the reply (offset <= the reply's offset) or held and
 * delivered after it, never both and never neither. The state entries of
 * a frozen flow are those not changed after the frozen offset; the stream
 * after it brings the rest, in order. */
#include <stdlib.h>
#include <string.h>
#include "obs/log.h"
#include "proto/client_int.h"
#include "proto/push.h"

enum { PHASE_LIVE = 0, PHASE_STREAM = 1, PHASE_STATE = 2 };

typedef struct map_op {
    client *cl;                    /* a reference */
    const ns_options *ns;
    hub_sub *s;
    uint32_t serial, id;
    uint64_t t0;
    int type, phase, recover, limit, has_pos;
    uint64_t offset;               /* the frozen position (has_pos) */
    char epoch[ENGINE_EPOCH_MAX + 1];
    char *cursor;
    char *chan_info;               /* from a subscription token, moved into the subscription */
    size_t chan_info_len;
    int64_t expire_at;
    engine_result *state;          /* the last state page, while the stream is read */
    char channel[];
} map_op;

/* The subscription_type each map subscribe type asks for. */
static int ns_type_of(int sub_type) {
    switch (sub_type) {
    case 1: return NS_SUB_MAP;
    case 2: return NS_SUB_MAP_CLIENTS;
    case 3: return NS_SUB_MAP_USERS;
    default: return -1;
    }
}

static int streamed(const ns_options *ns) { return ns_map_stream_size(ns) > 0; }

engine_map_opts proto_map_opts(const ns_options *ns) {
    return (engine_map_opts){.stream_size = ns_map_stream_size(ns),
                             .stream_ttl_ms = ns_map_stream_ttl_ms(ns),
                             .key_ttl_ms = ns->map_key_ttl_ms};
}

/* Most changes a live transition (or a recovery) catches up in one reply:
 * the largest page. */
static int catch_up_limit(const ns_options *ns) { return ns_map_page_size(ns, INT32_MAX); }

static void op_free(map_op *op) {
    free(op->cursor);
    free(op->chan_info);
    engine_result_free(op->state);
    client_unref(op->cl);
    free(op);
}

static int op_alive(const map_op *op) {
    const client *cl = op->cl;
    if (cl->closed) return 0;
    hub_sub *s = hub_client_sub(&cl->hc, op->channel);
    return s == op->s && s->serial == op->serial && !s->dead;
}

/* Ends the request with an error code, or an engine failure (err != 0):
 * the subscription, if still ours, is removed; a client that closed
 * meanwhile gets nothing. */
static void op_fail(map_op *op, int code, int err) {
    client *cl = op->cl;
    if (!cl->closed) {
        if (op_alive(op)) hub_sub_remove(op->s);
        client_answer_begin(cl);
        if (err) reply_engine_error(cl, op->id, err);
        else reply_error(cl, op->id, code);
        client_cmd_done(cl, CMD_SUBSCRIBE, op->t0);
    }
    op_free(op);
}

/* Ends the request after its reply was written to cl->out: a live reply
 * makes the subscription live, a page drops it again. */
static void op_done(map_op *op, int live) {
    client *cl = op->cl;
    if (live) {
        client_flush(cl);              /* the reply goes before any push of the channel */
        hub_sub_go_live(op->s, op->s->offset);
        client_rearm(cl);
    } else {
        hub_sub_remove(op->s);
    }
    client_cmd_done(cl, CMD_SUBSCRIBE, op->t0);
    op_free(op);
}

/* Writes entries (those not changed after max, when max > 0). */
static void write_entries(sbuf *sb, const char *name, const engine_pub *pubs, size_t n,
                          uint64_t max) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (max && pubs[i].offset > max) continue;
        sb_puts(sb, k++ ? "," : name);
        push_write_publication(sb, &pubs[i]);
    }
    if (k) sb_putc(sb, ']');
}

static void write_position(sbuf *sb, const char *epoch, uint64_t offset) {
    sb_puts(sb, ",\"epoch\":");
    sb_json_str(sb, epoch, strlen(epoch));
    sb_puts(sb, ",\"offset\":");
    sb_u64(sb, offset);
}

/* A page reply (phase 2 or 1): more is to come. */
static void reply_page(map_op *op, int phase, const engine_result *res, const char *cursor,
                       uint64_t offset, uint64_t max) {
    client *cl = op->cl;
    client_answer_begin(cl);
    reply_begin(cl, op->id, "subscribe");
    sb_printf(&cl->out, "{\"type\":%d,\"phase\":%d", op->type, phase);
    if (cursor) { sb_puts(&cl->out, ",\"cursor\":"); sb_json_str(&cl->out, cursor, strlen(cursor)); }
    write_position(&cl->out, res->top.epoch, offset);
    if (phase == PHASE_STATE) write_entries(&cl->out, ",\"state\":[", res->pubs, res->npubs, max);
    else write_entries(&cl->out, ",\"publications\":[", res->pubs, res->npubs, 0);
    sb_putc(&cl->out, '}');
    reply_end(cl);
    op_done(op, 0);
}

/* The live reply: state (entries up to max), the stream's publications,
 * the position they reach (top). */
static void reply_live(map_op *op, const engine_result *st, uint64_t max,
                       const engine_result *stream, const engine_stream_top *top) {
    client *cl = op->cl;
    hub_sub *s = op->s;
    client_answer_begin(cl);
    reply_begin(cl, op->id, "subscribe");
    sb_printf(&cl->out, "{\"type\":%d", op->type);
    if (s->recoverable) sb_puts(&cl->out, ",\"recoverable\":true,\"positioned\":true");
    write_position(&cl->out, top->epoch, top->offset);
    if (op->recover) sb_puts(&cl->out, ",\"recovered\":true,\"was_recovering\":true");
    if (st) write_entries(&cl->out, ",\"state\":[", st->pubs, st->npubs, max);
    if (stream) write_entries(&cl->out, ",\"publications\":[", stream->pubs, stream->npubs, 0);
    if (s->expire_at) {
        int64_t ttl = s->expire_at - clock_now_s();
        sb_printf(&cl->out, ",\"expires\":true,\"ttl\":%lld", (long long)(ttl > 0 ? ttl : 1));
    }
    sb_putc(&cl->out, '}');
    reply_end(cl);
    s->offset = top->offset;
    memcpy(s->epoch, top->epoch, sizeof(s->epoch));
    op_done(op, 1);
}

/* An engine answer arrived: the client, the subscription, no error? */
static int answer_ok(map_op *op, engine_result *res) {
    int err = res->err;
    if (op_alive(op) && !err) return 1;
    engine_result_free(res);
    if (!op_alive(op)) op_fail(op, ERR_INTERNAL, 0);   /* a server unsubscribe, a resync, a close */
    else if (err == ENGINE_ERR_EPOCH) op_fail(op, ERR_UNRECOVERABLE_POSITION, 0);
    else op_fail(op, ERR_INTERNAL, err);
    return 0;
}

/* Does the stream read cover (from, top] without a gap? */
static int stream_covers(const engine_result *res, uint64_t from) {
    if (from > res->top.offset) return 0;
    if (from == res->top.offset) return 1;
    return res->npubs && res->pubs[0].offset == from + 1;
}

/* ---- reading the stream (phase 1, and after the last frozen state page) ---- */

static void on_stream(void *ud, engine_result *res) {
    map_op *op = ud;
    if (!answer_ok(op, res)) return;
    if (!stream_covers(res, op->offset)) {
        engine_result_free(res);
        op_fail(op, ERR_UNRECOVERABLE_POSITION, 0);
        return;
    }
    uint64_t reached = res->npubs ? res->pubs[res->npubs - 1].offset : op->offset;
    if (reached == res->top.offset) {
        reply_live(op, op->state, op->offset, res, &res->top);
    } else if (op->state) {
        /* the stream is too far ahead to join now: the state is done,
         * the client reads the stream in pages (phase 2, no cursor) */
        reply_page(op, PHASE_STATE, op->state, NULL, op->offset, op->offset);
    } else if (op->recover) {
        op_fail(op, ERR_UNRECOVERABLE_POSITION, 0);   /* too much missed: resync */
    } else {
        reply_page(op, PHASE_STREAM, res, NULL, reached, 0);
    }
    engine_result_free(res);
}

static void read_stream(map_op *op, int limit) {
    client *cl = op->cl;
    engine *e = client_env(cl)->hub->eng;
    engine_history_req hr = {.channel = op->channel, .limit = limit, .has_since = 1,
                             .since_offset = op->offset, .since_epoch = op->epoch,
                             .now_ms = clock_now_ms()};
    void *call = hub_call(cl->hc.hl, on_stream, op);
    if (!call) { op_fail(op, ERR_INTERNAL, 0); return; }
    e->ops->history(e, &hr, hub_call_cb, call);
}

/* ---- reading the state (phase 2) ---- */

static void on_state(void *ud, engine_result *res) {
    map_op *op = ud;
    if (!answer_ok(op, res)) return;
    uint64_t pos = op->has_pos ? op->offset : res->top.offset;
    if (res->cursor) {                                /* more pages */
        reply_page(op, PHASE_STATE, res, res->cursor, pos, op->has_pos ? pos : 0);
        engine_result_free(res);
        return;
    }
    if (!op->has_pos || pos == res->top.offset || !streamed(op->ns)) {
        /* one read holds it all (or an ephemeral map: no stream to catch
         * up from, the entries as they are now) */
        reply_live(op, res, 0, NULL, &res->top);
        engine_result_free(res);
        return;
    }
    op->state = res;                                  /* catch up from the frozen offset */
    read_stream(op, catch_up_limit(op->ns));
}

static void read_state(map_op *op) {
    client *cl = op->cl;
    engine *e = client_env(cl)->hub->eng;
    engine_map_state_req req = {.channel = op->channel, .cursor = op->cursor,
                                .limit = ns_map_page_size(op->ns, op->limit),
                                .epoch = op->has_pos ? op->epoch : NULL, .now_ms = clock_now_ms()};
    void *call = hub_call(cl->hc.hl, on_state, op);
    if (!call) { op_fail(op, ERR_INTERNAL, 0); return; }
    e->ops->map_state(e, &req, hub_call_cb, call);
}

static void on_ready(void *ud, int err) {
    map_op *op = ud;
    if (!op_alive(op)) { op_fail(op, ERR_INTERNAL, 0); return; }
    if (err) { op_fail(op, ERR_INTERNAL, 0); return; }
    if (op->phase == PHASE_STREAM)
        read_stream(op, op->recover ? catch_up_limit(op->ns) : ns_map_page_size(op->ns, op->limit));
    else
        read_state(op);
}

/* ---- the subscribe command ---- */

/* What the request asks, checked: 0 or an error code. */
static int check_request(client *cl, proto_cmd *cmd, const ns_options *ns) {
    if (ns_type_of(cmd->sub_type) != ns->subscription_type) return ERR_BAD_REQUEST;
    if (cmd->tf) return ERR_BAD_REQUEST;                   /* tags filters: not offered */
    if (cmd->phase != PHASE_STATE && cmd->phase != PHASE_STREAM && cmd->phase != PHASE_LIVE)
        return ERR_BAD_REQUEST;
    if (cmd->phase == PHASE_STREAM && !streamed(ns)) return ERR_BAD_REQUEST;
    if (cmd->limit < 0) return ERR_BAD_REQUEST;
    if (hub_client_sub(&cl->hc, cmd->channel)) return ERR_ALREADY_SUBSCRIBED;
    if (cl->hc.nsubs >= (uint32_t)client_env(cl)->cfg->client_channel_limit) return ERR_LIMIT_EXCEEDED;
    return 0;
}

static map_op *op_new(client *cl, proto_cmd *cmd, const ns_options *ns, uint64_t t0) {
    size_t len = strlen(cmd->channel);
    map_op *op = calloc(1, sizeof(*op) + len + 1);
    if (!op) return NULL;
    memcpy(op->channel, cmd->channel, len + 1);
    if (cmd->cursor && cmd->cursor[0] && !(op->cursor = strdup(cmd->cursor))) { free(op); return NULL; }
    op->cl = client_ref(cl);
    op->ns = ns;
    op->id = cmd->id;
    op->t0 = t0;
    op->type = cmd->sub_type;
    op->phase = cmd->phase == PHASE_STREAM ? PHASE_STREAM : PHASE_STATE;
    op->recover = op->phase == PHASE_STREAM && cmd->recover;
    op->limit = cmd->limit;
    op->offset = cmd->offset;
    snprintf(op->epoch, sizeof(op->epoch), "%s", cmd->epoch ? cmd->epoch : "");
    /* a state page carries the frozen position once the flow has one */
    op->has_pos = op->phase == PHASE_STREAM || (cmd->epoch && cmd->epoch[0]);
    return op;
}

/* Adds the (held) subscription and waits for the channel's changes. */
static int op_start(map_op *op) {
    client *cl = op->cl;
    hub_sub *s;
    int rc = hub_sub_add(&cl->hc, op->channel, op->ns, &s);
    if (rc) return rc == HUB_ADD_LIMIT ? ERR_LIMIT_EXCEEDED : ERR_INTERNAL;
    s->positioned = 1;                   /* changes are deduplicated by offset */
    s->recoverable = (uint8_t)streamed(op->ns);
    s->chan_info = op->chan_info;
    s->chan_info_len = (uint32_t)op->chan_info_len;
    op->chan_info = NULL;
    s->expire_at = op->expire_at;
    if (s->expire_at) cl->sub_expiry = 1;
    op->s = s;
    op->serial = s->serial;
    if (hub_sub_when_ready(s, on_ready, op) != 0) {
        hub_sub_remove(s);
        op->s = NULL;
        return ERR_INTERNAL;
    }
    return 0;
}

int cmd_map_subscribe(client *cl, proto_cmd *cmd, const ns_options *ns, uint64_t t0) {
    int rc = check_request(cl, cmd, ns);
    map_op *op = rc ? NULL : op_new(cl, cmd, ns, t0);
    if (!rc && !op) rc = ERR_INTERNAL;
    if (!rc) rc = client_sub_authorize(cl, cmd, ns, &op->chan_info, &op->chan_info_len,
                                       &op->expire_at);
    if (rc >= 3000) { op_free(op); client_close(cl, rc, "invalid token"); return CMD_DONE; }
    if (!rc) rc = op_start(op);
    if (rc) {
        if (op) op_free(op);
        reply_error(cl, cmd->id, rc);
        return CMD_DONE;
    }
    cl->busy = 1;
    return CMD_LATER;
}

/* ---- writes: publish with type 1 ---- */

/* The key a client's write uses (client_key may force it); NULL = 107. */
static const char *write_key(client *cl, proto_cmd *cmd, const ns_options *ns) {
    if (ns->client_key == NS_CLIENT_KEY_CLIENT_ID) return cl->hc.id;
    if (ns->client_key == NS_CLIENT_KEY_USER_ID) return cl->hc.user[0] ? cl->hc.user : NULL;
    return cmd->key && cmd->key[0] ? cmd->key : NULL;
}

int cmd_map_publish(client *cl, proto_cmd *cmd, const ns_options *ns, uint64_t t0) {
    if (ns->subscription_type == NS_SUB_STREAM || cmd->pub_type != 1) {
        reply_error(cl, cmd->id, ERR_BAD_REQUEST);     /* a map write to a stream, or the reverse */
        return CMD_DONE;
    }
    int anonymous = cl->hc.user[0] == '\0';
    int subscribed = hub_client_sub(&cl->hc, cmd->channel) != NULL;
    int allowed = cmd->removed
        ? ns_allowed(ns->allow_remove_for_client, ns->allow_remove_for_subscriber,
                     ns->allow_remove_for_anonymous, anonymous, subscribed)
        : ns_allowed(ns->allow_publish_for_client, ns->allow_publish_for_subscriber,
                     ns->allow_publish_for_anonymous, anonymous, subscribed);
    const char *key = write_key(cl, cmd, ns);
    if (!key) { reply_error(cl, cmd->id, ERR_BAD_REQUEST); return CMD_DONE; }
    if (!allowed) { reply_error(cl, cmd->id, ERR_PERMISSION_DENIED); return CMD_DONE; }
    if (cmd_publish_limits(cl, cmd, ns)) return CMD_DONE;
    rcbuf *payload = NULL;
    if (!cmd->removed) {
        hub *h = client_env(cl)->hub;
        size_t info_len = 0;
        char *info = h->sink.client_info(&cl->hc, hub_client_sub(&cl->hc, cmd->channel), &info_len);
        payload = info ? push_payload(cmd->data, cmd->data_len, info, info_len) : NULL;
        free(info);
        if (!payload) { reply_error(cl, cmd->id, ERR_INTERNAL); return CMD_DONE; }
    }
    void *call = cmd_call(cl, cmd, t0, cmd_publish_done);
    if (!call) { if (payload) rcbuf_unref(payload); reply_error(cl, cmd->id, ERR_INTERNAL); return CMD_DONE; }
    engine_map_write_req req = {
        .channel = cmd->channel, .key = key, .key_len = strlen(key), .remove = cmd->removed,
        .payload = payload,
        .map = proto_map_opts(ns),
        .now_ms = clock_now_ms(),
    };
    engine *e = client_env(cl)->hub->eng;
    e->ops->map_write(e, &req, hub_call_cb, call);
    if (payload) rcbuf_unref(payload);
    return CMD_LATER;
}

/* ---- presence as maps: a stream channel's subscribers listed live ---- */

/* Writes (or removes) the client's entry in the map channel prefix +
 * channel: key_mode if_new with the TTL refreshed, so a refresh changes
 * nothing but the expiry and only the first write is an update. */
static void presence_map_write(client *cl, const char *prefix, const char *channel,
                               const char *key, rcbuf *payload, int remove) {
    proto_env *env = client_env(cl);
    size_t pl = strlen(prefix), cl_len = strlen(channel);
    char *name = malloc(pl + cl_len + 1);
    if (!name) return;
    memcpy(name, prefix, pl);
    memcpy(name + pl, channel, cl_len + 1);
    const ns_options *ns = ns_lookup(&env->cfg->namespaces, name);
    if (!ns || ns->subscription_type == NS_SUB_STREAM) { free(name); return; }   /* config checks prevent it */
    engine_map_write_req req = {
        .channel = name, .key = key, .key_len = strlen(key), .remove = remove,
        .payload = payload, .key_mode = remove ? ENGINE_KEY_ANY : ENGINE_KEY_IF_NEW,
        .refresh_ttl_on_suppress = 1,
        .map = proto_map_opts(ns),
        .now_ms = clock_now_ms(),
    };
    hub *h = env->hub;
    h->eng->ops->map_write(h->eng, &req, hub_count_cb, h);
    free(name);
}

static int has_prefix(const char *p) { return p && p[0]; }

void client_presence_maps_join(client *cl, hub_sub *s) {
    const ns_options *ns = s->ns;
    if (has_prefix(ns->map_clients_presence_channel_prefix)) {
        hub *h = client_env(cl)->hub;
        size_t len = 0;
        char *info = h->sink.client_info(&cl->hc, s, &len);
        rcbuf *payload = info ? push_payload_info(info, len) : NULL;
        free(info);
        if (payload) {
            presence_map_write(cl, ns->map_clients_presence_channel_prefix, s->channel, cl->hc.id,
                               payload, 0);
            rcbuf_unref(payload);
        }
    }
    if (has_prefix(ns->map_users_presence_channel_prefix) && cl->hc.user[0]) {
        rcbuf *empty = rcbuf_new(0);
        if (empty) {
            presence_map_write(cl, ns->map_users_presence_channel_prefix, s->channel, cl->hc.user,
                               empty, 0);
            rcbuf_unref(empty);
        }
    }
}

/* The client's entry goes; a user's entry stays until its TTL (another
 * tab of the user may still be there, on any node). */
void client_presence_maps_leave(client *cl, hub_sub *s) {
    if (has_prefix(s->ns->map_clients_presence_channel_prefix))
        presence_map_write(cl, s->ns->map_clients_presence_channel_prefix, s->channel, cl->hc.id,
                           NULL, 1);
}

int client_presence_maps_wanted(const ns_options *ns) {
    return has_prefix(ns->map_clients_presence_channel_prefix) ||
           has_prefix(ns->map_users_presence_channel_prefix);
}
