/* ws_deflate: permessage-deflate (RFC 7692) with zlib: parsing an offer and
 * choosing the response parameters, and the per-message compress and
 * decompress steps.
 *
 * Plaza always answers with server_no_context_takeover, so every outgoing
 * message is compressed on its own: a broadcast is compressed once and the
 * same bytes go to every subscriber. Incoming messages use the context the
 * client chose; decompression stops at a size limit (zip bombs). */
#ifndef PLAZA_WS_DEFLATE_H
#define PLAZA_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ws_deflate_params {   /* kept per connection: bytes, not ints */
    uint8_t enabled;                  /* an offer was accepted */
    uint8_t client_no_context_takeover;
    uint8_t client_max_window_bits;   /* 8..15; 15 when not negotiated */
    uint8_t server_max_window_bits;   /* 8..15 */
} ws_deflate_params;

/* Parses a Sec-WebSocket-Extensions header value (possibly several
 * comma-separated offers, possibly other extensions) and picks the first
 * acceptable permessage-deflate offer. Returns 1 and fills *out if one was
 * accepted, 0 if none (not an error: the connection goes on uncompressed). */
int ws_deflate_negotiate(const char *header, ws_deflate_params *out);

/* Writes the response extension header value for p, e.g.
 * "permessage-deflate; server_no_context_takeover". Returns length or 0. */
size_t ws_deflate_response(const ws_deflate_params *p, char *out, size_t cap);

/* Receiving side: a zlib inflate stream, allocated on the first compressed
 * message and kept only when the client keeps its context. */
typedef struct ws_inflater ws_inflater;

ws_inflater *ws_inflater_new(const ws_deflate_params *p);
void ws_inflater_free(ws_inflater *inf);

/* Decompresses one message's payload, given in pieces. Appends output to
 * *out (realloc-ed; out_len and out_cap updated). Returns 0, or -1 when the
 * data is not valid deflate (close 1007) or -2 when the output would pass
 * max_out bytes (close 1009). Call ws_inflater_finish at the message end. */
int ws_inflater_feed(ws_inflater *inf, const uint8_t *in, size_t len,
                     uint8_t **out, size_t *out_len, size_t *out_cap,
                     size_t max_out);
int ws_inflater_finish(ws_inflater *inf, uint8_t **out, size_t *out_len,
                       size_t *out_cap, size_t max_out);

/* Sending side: compresses one whole message on its own (no context kept)
 * into a newly allocated buffer with `reserve` spare bytes in front (room
 * for the frame header). Returns the buffer, or NULL on failure; *out_len
 * gets the compressed length (excluding reserve). level: zlib level 1..9. */
uint8_t *ws_deflate_message(const uint8_t *in, size_t len, int level,
                            size_t reserve, size_t *out_len);

#endif
