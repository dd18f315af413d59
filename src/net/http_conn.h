/* http_conn: HTTP/1.1 on a connection: reads requests in order (keep-alive,
 * pipelining), routes them (/healthz, /metrics, registered routes, the
 * WebSocket endpoint, static files), writes responses, and turns the
 * connection into a WebSocket on a valid upgrade. */
#ifndef PLAZA_HTTP_CONN_H
#define PLAZA_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>
#include "net/conn.h"
#include "net/http_reader.h"

#define WS_ENDPOINT "/connection/websocket"

void http_conn_on_data(conn *c, uint8_t *data, size_t len);
void http_conn_on_deadline(conn *c);
void http_conn_free(conn *c);

/* Writes a complete response. extra_headers: "Name: value\r\n"... or NULL.
 * For HEAD the body is left out. If the request does not keep the
 * connection alive, the connection ends after the response. */
void http_respond(conn *c, const http_request *req, int status,
                  const char *content_type, const char *extra_headers,
                  const void *body, size_t body_len);

/* An error response with a short text body; closes the connection when
 * close_after is set. */
void http_respond_error(conn *c, const http_request *req, int status,
                        const char *msg, int close_after);

const char *http_status_text(int status);

/* Server shutdown: end the connection once the response in progress (a
 * later one included) is out. */
void http_conn_shutdown(conn *c);

/* A response given later, when a route must wait (for the engine). The
 * route calls http_later_begin and returns HTTP_ROUTE_LATER; the
 * connection then reads no further request (pipelined ones wait, in order)
 * until http_later_respond, which must be called once, on the connection's
 * worker. If the connection closed meanwhile, the response goes nowhere and
 * the handle is freed all the same. NULL if out of memory or a response is
 * already pending (answer at once then). */
typedef struct http_later http_later;
http_later *http_later_begin(conn *c, const http_request *req);
void http_later_respond(http_later *l, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t len);

#endif
