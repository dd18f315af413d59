/* ws_conn: the WebSocket side of a connection after the upgrade: message
 * assembly from frames (zero-copy when a message arrives in one piece),
 * permessage-deflate, UTF-8 checks on text, ping/pong, the close handshake,
 * idle pings, and the send calls the upper layer uses. */
#ifndef PLAZA_WS_CONN_H
#define PLAZA_WS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include "net/conn.h"
#include "net/ws_msg.h"

/* Switches c to WebSocket with handler h. Returns 0 or -1 (c aborted). */
int ws_conn_open(conn *c, const ws_handler *h, const ws_deflate_params *dp);

void ws_conn_on_data(conn *c, uint8_t *data, size_t len);
void ws_conn_on_deadline(conn *c);
void ws_conn_free(conn *c);

/* Sends one message (opcode WS_OP_TEXT or WS_OP_BINARY). Returns 0 or -1
 * (closing, or became a slow consumer). */
int ws_send(conn *c, int opcode, const void *data, size_t len);

/* Sends a shared message; the caller keeps its reference. */
int ws_send_msg(conn *c, ws_msg *m);

/* Starts the close handshake with code and reason (reason <= 123 bytes,
 * cut otherwise). The TCP connection closes when the peer answers or after
 * websocket.close_timeout_ms. */
void ws_conn_close(conn *c, int code, const char *reason);

#endif
