/* client: the Centrifugo client protocol (JSON) on a WebSocket connection.
 * This is the ws_handler installed on /connection/websocket: it splits
 * newline-batched frames into commands, runs them against the hub and the
 * engine, batches the replies of one frame into one frame, pings, and
 * closes with the protocol's disconnect codes. */
#ifndef PLAZA_CLIENT_H
#define PLAZA_CLIENT_H

#include "auth/token.h"
#include "hub/hub.h"
#include "net/conn.h"

extern const ws_handler proto_client_handler;

/* Called once at start-up with the hub and the token keys all connections
 * use (kept by pointer). */
void proto_client_setup(hub *h, const token_keys *keys);

/* Closes a client from the server side (API disconnect, limits). */
void proto_client_disconnect(hub_client *cl, int code, const char *reason);

/* Server-side subscribe/unsubscribe of a live client (server API): sends
 * the subscribe/unsubscribe push. */
void proto_client_server_subscribe(hub_client *cl, const char *channel);
void proto_client_server_unsubscribe(hub_client *cl, const char *channel);

/* Server API refresh: new expiry (unix s, 0 = never) or expire now. */
void proto_client_refresh(hub_client *cl, int expired, int64_t expire_at);

#endif
