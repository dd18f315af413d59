/* push: encoders for what the server sends without being asked: the
 * pushes (pub, join, leave, unsubscribe, subscribe, message), the
 * ClientInfo object, and the Publication object. A publication's payload,
 * as the engine stores it, is the protocol's `"data":D[,"info":I]` members,
 * encoded once when published; its offset and time, which the engine
 * assigns, are added when a Publication object is written (a push: once
 * per publication, shared by every receiver; a history reply: a copy of
 * the payload bytes and two numbers). These encoders are the encoding side
 * of the hub's sink (client.c adds the delivery side). */
#ifndef PLAZA_PUSH_H
#define PLAZA_PUSH_H

#include "core/rcbuf.h"
#include "core/sbuf.h"
#include "engine/engine.h"
#include "net/ws_msg.h"

/* The payload of a publication: `"data":<data>` and, when info is not
 * NULL, `,"info":<info>` (both raw JSON). NULL if out of memory. */
rcbuf *push_payload(const char *data, size_t data_len, const char *info, size_t info_len);

/* Appends the Publication object {payload,"offset":N,"time":T}. */
/* A payload with only "info":<info> (a presence map's client entry). */
rcbuf *push_payload_info(const char *info, size_t info_len);

void push_write_publication(sbuf *sb, const engine_pub *pub);

/* Appends a JSON array of Publication objects. */
void push_write_publications(sbuf *sb, const engine_pub *pubs, size_t n);

/* Appends a ClientInfo object. chan_info may be NULL. */
void push_client_info(sbuf *sb, const char *user, const char *client,
                      const char *conn_info, size_t conn_info_len,
                      const char *chan_info, size_t chan_info_len);

/* {"push":{"channel":C,"pub":<Publication>}} */
ws_msg *push_pub(const char *channel, const engine_pub *pub);

/* {"push":{"channel":C,"join"|"leave":{"info":I}}} */
ws_msg *push_join(const char *channel, const char *info, size_t len);
ws_msg *push_leave(const char *channel, const char *info, size_t len);

/* {"push":{"channel":C,"unsubscribe":{"code":N,"reason":R}}} */
ws_msg *push_unsubscribe(const char *channel, int code, const char *reason);

/* {"push":{"channel":C,"subscribe":{...}}} for server-side subscriptions;
 * body is the raw SubscribeResult-like object. */
ws_msg *push_subscribe(const char *channel, const char *body, size_t len);

/* {"push":{"message":{"data":D}}} */
ws_msg *push_message(const char *data, size_t len);

#endif
