/* actions: the server API's actions on connections (subscribe, unsubscribe,
 * disconnect, refresh, for a user's connections or one client's) that
 * reach the connections on whichever node they live. The API encodes an
 * action as a control message (compact JSON) and hands it to the engine
 * (engine_ops.control), which delivers it to every node, this one
 * included; there the hub passes it to the protocol (hub_sink.control),
 * which runs it on the workers holding the matching connections. */
#ifndef PLAZA_ACTIONS_H
#define PLAZA_ACTIONS_H

#include <stddef.h>
#include <stdint.h>
#include "hub/hub.h"

enum { ACT_SUB, ACT_UNSUB, ACT_DISCONNECT, ACT_REFRESH };

typedef struct proto_action {
    int kind;                    /* ACT_* */
    const char *user;            /* whose connections ("" with client: that client only) */
    const char *client;          /* NULL or "": all of the user's */
    const char *channel;         /* ACT_SUB, ACT_UNSUB */
    int code;                    /* ACT_DISCONNECT */
    const char *reason;
    int expired;                 /* ACT_REFRESH */
    int64_t expire_at;
} proto_action;

/* The control message of a (malloc'd, *len bytes), or NULL if out of memory. */
char *proto_action_encode(const proto_action *a, size_t *len);

/* A decoded action; the strings are owned (proto_action_clear frees them). */
typedef struct proto_action_msg {
    int kind, code, expired;
    int64_t expire_at;
    char *user, *client, *channel, *reason;  /* client, channel, reason may be NULL */
} proto_action_msg;

/* Decodes a control message: 0, or -1 (not JSON, an unknown kind, a field
 * missing for its kind) with m cleared. */
int proto_action_decode(const char *msg, size_t len, proto_action_msg *m);
void proto_action_clear(proto_action_msg *m);

/* hub_sink.control: decodes msg and runs it on this node's connections
 * (a message it cannot read is logged and dropped). Any thread. */
void proto_action_control(hub *h, const char *msg, size_t len);

#endif
