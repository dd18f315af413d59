/* client_int: what the files of the client protocol share (client.c:
 * lifecycle, batching, connect, timers; client_sub.c: subscriptions and
 * recovery; client_ops.c: publish, presence, history, rpc, refresh). */
#ifndef PLAZA_CLIENT_INT_H
#define PLAZA_CLIENT_INT_H

#include <stdint.h>
#include "core/ratelimit.h"
#include "core/sbuf.h"
#include "proto/client.h"
#include "proto/codes.h"
#include "proto/command.h"

typedef struct client {
    hub_client hc;                 /* first: a hub_client* is a client* */
    atomic_int refs;               /* engine calls in flight hold one each */
    uint8_t connected, closed, in_batch, pong_required, ping_outstanding;
    int refused;                   /* commands refused in a row by the rate limit */
    int64_t expire_at;             /* unix s; 0 = never */
    uint64_t next_ping_ms;
    union {                        /* one struct member less per connection: */
        uint64_t stale_deadline_ms;   /* until connected */
        uint64_t pong_deadline_ms;    /* once connected */
    };
    ratelimit rl;
    sbuf out;                      /* replies waiting to be sent as one frame */
} client;

typedef struct client_env {
    hub *hub;
    const config *cfg;
    const token_keys *keys;
} client_env;

extern client_env client_env_g;

static inline client *client_of(hub_client *hc) { return (client *)hc; }

client *client_ref(client *cl);
void client_unref(client *cl);

/* Reply writing: begins {"id":N,"<name>": ... ; end with reply_end. */
void reply_begin(client *cl, uint32_t id, const char *name);
void reply_end(client *cl);
void reply_empty(client *cl, uint32_t id, const char *name);
void reply_error(client *cl, uint32_t id, int code);
/* Sends what is batched now (outside a frame's processing, replies to
 * asynchronous results go out at once). */
void client_flush(client *cl);
void client_close(client *cl, int code, const char *reason);
void client_rearm(client *cl);

int64_t client_now_s(void);

/* client_sub.c */
void cmd_subscribe(client *cl, proto_cmd *cmd);
void cmd_unsubscribe(client *cl, proto_cmd *cmd);
void cmd_sub_refresh(client *cl, proto_cmd *cmd);
void client_subscribe_server_side(client *cl, const char *channel,
                                  json_t *recover_pos, sbuf *res, hub_sub **out);
void client_drop_sub(client *cl, hub_sub *s, int notify_engine);
void client_check_sub_expiry(client *cl, int64_t now_s);
int64_t client_next_sub_expiry(client *cl);

/* client_ops.c */
void cmd_publish(client *cl, proto_cmd *cmd);
void cmd_presence(client *cl, proto_cmd *cmd);
void cmd_presence_stats(client *cl, proto_cmd *cmd);
void cmd_history(client *cl, proto_cmd *cmd);
void cmd_rpc(client *cl, proto_cmd *cmd);
void cmd_refresh(client *cl, proto_cmd *cmd);

/* Appends a JSON array of publications (their encoded objects). */
void write_publications(sbuf *sb, const engine_pub *pubs, size_t n);

#endif
