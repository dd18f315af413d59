/* push: encoders for what the server sends without being asked: the
 * pushes (pub, join, leave, unsubscribe, subscribe, message) and the
 * ClientInfo object. These are the hub's codec: each push is encoded once
 * and shared by every receiver. */
#ifndef PLAZA_PUSH_H
#define PLAZA_PUSH_H

#include "core/sbuf.h"
#include "hub/hub.h"

extern const hub_codec proto_hub_codec;

/* Appends a ClientInfo object. chan_info may be NULL. */
void push_client_info(sbuf *sb, const char *user, const char *client,
                      const char *conn_info, size_t conn_info_len,
                      const char *chan_info, size_t chan_info_len);

/* {"push":{"channel":C,"unsubscribe":{"code":N,"reason":R}}} */
ws_msg *push_unsubscribe(const char *channel, int code, const char *reason);

/* {"push":{"channel":C,"subscribe":{...}}} for server-side subscriptions;
 * body is the raw SubscribeResult-like object. */
ws_msg *push_subscribe(const char *channel, const char *body, size_t len);

/* {"push":{"message":{"data":D}}} */
ws_msg *push_message(const char *data, size_t len);

#endif
