/* board: pixel boards (r/place) over HTTP and the client protocol's RPC.
 * A board is a channel of a namespace with `board.width` set; the engine
 * holds its pixels and publishes its writes in batches on the channel
 * (engine.h, boards); viewers subscribe to the channel like any other.
 *
 *   GET  /boards/<channel>[?format=png]  the snapshot: the bitfield
 *        (application/octet-stream) or a PNG, with the stream position it
 *        reflects (X-Board-Offset, X-Board-Epoch), ETag and Cache-Control
 *        max-age; served from a per-worker cache encoded again at most once
 *        per board.max_age_ms, never per request.
 *   PUT  /boards/<channel>/pixels  {"x","y","color"}: a pixel, by the API
 *        key (no cooldown) or a user's connection token (Bearer; cooldown).
 *   RPC  board.put {"channel","x","y","color"}: the same from a client,
 *        under the namespace's publish permissions and the cooldown.
 *
 * Errors: bounds and colours are 107 / HTTP 400 naming the field, the
 * cooldown 111 / HTTP 429 with retry_after (ms) and Retry-After. */
#ifndef PLAZA_BOARD_H
#define PLAZA_BOARD_H

#include <stddef.h>
#include <stdint.h>
#include "net/http_reader.h"
#include "net/server.h"
#include "proto/client.h"

typedef struct board_app board_app;

/* Set up for srv's workers (after proto_setup); registers board.put in
 * env's RPC registry. NULL if out of memory. */
board_app *board_app_new(proto_env *env, server *srv);
void board_app_free(board_app *app);

/* The route handler for "/boards/" (ud = the board_app). */
int board_route(conn *c, const http_request *req, void *ud);

/* A pixel write as a request body or RPC params carries it. */
typedef struct board_put_params {
    char channel[256];           /* "" when not given (HTTP: it is in the path) */
    int64_t x, y, color;
} board_put_params;

/* Parses {"x":N,"y":N,"color":N[,"channel":S]}. Returns 0, or -1 with a
 * message naming the field in err. */
int board_parse_put(const char *body, size_t len, board_put_params *out, char *err,
                    size_t errlen);

#endif
