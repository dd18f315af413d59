/* client_int: what the files of the client protocol share (client.c:
 * lifecycle, the command queue, connect, timers; client_sub.c:
 * subscriptions and recovery; client_ops.c: publish, presence, history,
 * rpc, refresh).
 *
 * Commands run one at a time per connection. A command that asks the
 * engine returns CMD_LATER with the client marked busy; the commands that
 * arrive meanwhile wait in the client's queue (reading from the socket
 * pauses once it holds websocket.max_message_bytes), and run when the
 * answer has been replied to (client_cmd_done). Every engine answer comes
 * back on the client's worker (hub_call) holding a reference to the
 * client, so a client that closed meanwhile is freed only after its last
 * answer, which then replies to nobody. */
#ifndef PLAZA_CLIENT_INT_H
#define PLAZA_CLIENT_INT_H

#include <stdint.h>
#include "core/clock.h"
#include "core/ratelimit.h"
#include "core/sbuf.h"
#include "net/ws_msg.h"
#include "proto/client.h"
#include "proto/codes.h"
#include "proto/command.h"

typedef struct cmd_queue {         /* command text waiting its turn */
    char *p;
    size_t len, cap, pos;          /* unread bytes are [pos, len) */
} cmd_queue;

typedef struct client {
    hub_client hc;                 /* first: a hub_client* is a client* */
    conn *c;                       /* NULL once the connection is gone */
    int refs;                      /* the connection and each answer awaited */
    uint16_t refused;              /* commands refused in a row (client.rate_limit_close_after <= 65535) */
    uint8_t connected : 1, closed : 1, in_batch : 1, pong_required : 1,
            ping_outstanding : 1, busy : 1,
            sub_expiry : 1;        /* some subscription may have an expiry */
    int64_t expire_at;             /* unix s; 0 = never */
    uint64_t next_ping_ms;
    union {                        /* one struct member less per connection: */
        uint64_t stale_deadline_ms;   /* until connected */
        uint64_t pong_deadline_ms;    /* once connected */
    };
    ratelimit rl;
    sbuf out;                      /* replies waiting to be sent as one frame */
    cmd_queue *queue;              /* only while a command waits */
} client;

enum { CMD_DONE = 0, CMD_LATER = 1 };

static inline client *client_of(hub_client *hc) { return (client *)hc; }

static inline proto_local *client_pl(const client *cl) { return cl->hc.hl->ext; }
static inline proto_env *client_env(const client *cl) { return client_pl(cl)->env; }

client *client_ref(client *cl);
void client_unref(client *cl);

/* Reply writing: begins {"id":N,"<name>": ... ; end with reply_end. */
void reply_begin(client *cl, uint32_t id, const char *name);
void reply_end(client *cl);
void reply_empty(client *cl, uint32_t id, const char *name);
void reply_error(client *cl, uint32_t id, int code);
/* The same with the reason after the standard message: "internal server
 * error (durable store unavailable ...)". why: plain text, no quotes. */
void reply_error_why(client *cl, uint32_t id, int code, const char *why);

/* A publication's or map write's size and per-user rate limits
 * (max_publication_bytes, publish_rate_limit): 0, or -1 with the error
 * replied (107 naming the size, 111 with the wait). */
int cmd_publish_limits(client *cl, proto_cmd *cmd, const ns_options *ns);
/* An engine failure: error 100 with the engine's reason, counted. */
void reply_engine_error(client *cl, uint32_t id, int err);
/* Sends what is batched now. */
void client_flush(client *cl);
void client_close(client *cl, int code, const char *reason);
void client_rearm(client *cl);
/* Sends a push (a shared message) to the client. */
void client_push(client *cl, ws_msg *m);

/* An answer arrived for the command that made the client busy: replies
 * written from here on go out with those of the queued commands, which
 * run next. Call client_answer_begin before writing the reply and
 * client_cmd_done after (t0 and type: for the latency metrics). */
void client_answer_begin(client *cl);
void client_cmd_done(client *cl, cmd_type type, uint64_t t0);

/* An engine call for a command: passes the engine result to fn on the
 * client's worker. Returns the context to give hub_call_cb, or NULL (out of
 * memory: reply 100). */
typedef struct cmd_op {
    client *cl;                    /* a reference */
    uint32_t id;                   /* command id */
    cmd_type type;
    uint64_t t0;                   /* when the command started (uv_hrtime) */
} cmd_op;

/* client_sub.c */
int cmd_subscribe(client *cl, proto_cmd *cmd, uint64_t t0);
int cmd_unsubscribe(client *cl, proto_cmd *cmd);
int cmd_sub_refresh(client *cl, proto_cmd *cmd);
void client_drop_sub(client *cl, hub_sub *s);
void client_check_sub_expiry(client *cl);
int64_t client_next_sub_expiry(client *cl);
/* Connect's server-side subscriptions (the token's channels): starts them
 * all; fn(ud) runs once each has finished, its result object in
 * results[i] (NULL when it failed) and the subscription in subs[i]. */
typedef struct connect_subs connect_subs;
struct connect_subs {
    client *cl;
    int n, left;
    char **channels;
    sbuf *results;                 /* n SubscribeResult bodies */
    hub_sub **subs;                /* n, NULL where it failed */
    uint32_t *serials;
    void (*done)(connect_subs *cs);
    void *ud;
};
void client_connect_subs(connect_subs *cs, json_t *recover);
/* Makes the subscriptions connect_subs created live (after the reply). */
void client_connect_subs_live(connect_subs *cs);

/* The channel's options (0), or 107 (bad name) / 102 (unknown namespace). */
int client_check_channel(client *cl, const char *channel, const ns_options **ns);
/* Checks a subscribe's token or the namespace's permissions (0, an error
 * code, or a disconnect code >= 3000); a token's info and expiry come out
 * (the info is the caller's to free). */
int client_sub_authorize(client *cl, proto_cmd *cmd, const ns_options *ns, char **chan_info,
                         size_t *chan_info_len, int64_t *expire_at);

/* client_map.c: map channels (subscribe in pages, recovery, writes) */
int cmd_map_subscribe(client *cl, proto_cmd *cmd, const ns_options *ns, uint64_t t0);
int cmd_map_publish(client *cl, proto_cmd *cmd, const ns_options *ns, uint64_t t0);
/* Presence maps (the namespace's map_*_presence_channel_prefix): the
 * client's entries written when a subscription goes live (and refreshed,
 * by the same call), the client's entry removed when it ends. */
int client_presence_maps_wanted(const ns_options *ns);
void client_presence_maps_join(client *cl, hub_sub *s);
void client_presence_maps_leave(client *cl, hub_sub *s);

/* client_ops.c */
/* The answer of a publish (a stream publication or a map write): {} or 100. */
void cmd_publish_done(void *ud, engine_result *res);
int cmd_publish(client *cl, proto_cmd *cmd, uint64_t t0);
int cmd_presence(client *cl, proto_cmd *cmd, uint64_t t0);
int cmd_presence_stats(client *cl, proto_cmd *cmd, uint64_t t0);
int cmd_history(client *cl, proto_cmd *cmd, uint64_t t0);
int cmd_rpc(client *cl, proto_cmd *cmd, uint64_t t0);
int cmd_refresh(client *cl, proto_cmd *cmd);

/* Makes a cmd_op for an engine call (a reference on cl); NULL if out of
 * memory. */
void *cmd_call(client *cl, proto_cmd *cmd, uint64_t t0, hub_answer_fn fn);
/* Ends the op: returns the client if it is still there to be answered
 * (client_answer_begin done), else NULL (op and reference released). */
client *cmd_answer(cmd_op *op);
/* After the reply: releases the op and runs the queued commands. */
void cmd_finish(cmd_op *op, client *cl);

#endif
