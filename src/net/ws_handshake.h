/* ws_handshake: the opening handshake of RFC 6455 section 4.2 on top of a
 * parsed HTTP request: validation (method, version, Upgrade/Connection
 * tokens, Sec-WebSocket-Version 13, a 16-byte base64 key, optional Origin
 * allow-list), the Sec-WebSocket-Accept value, the permessage-deflate offer
 * (RFC 7692) and the 101 response. It never selects a subprotocol the client
 * did not offer. */
#ifndef PLAZA_WS_HANDSHAKE_H
#define PLAZA_WS_HANDSHAKE_H

#include <stddef.h>
#include "net/http_reader.h"
#include "net/ws_deflate.h"

typedef struct ws_handshake_opts {
    const char *const *origins;   /* allowed Origin values; NULL/0 = any */
    int norigins;
    int deflate_enabled;          /* accept permessage-deflate offers */
    const char *const *subprotocols; /* protocols we support, in preference order */
    int nsubprotocols;
} ws_handshake_opts;

typedef struct ws_handshake_result {
    int status;                   /* 101 on success; else 400, 403, 426 */
    const char *error;            /* static text when status != 101 */
    char accept[29];              /* base64 SHA-1, NUL-terminated */
    const char *subprotocol;      /* chosen from opts->subprotocols, or NULL */
    ws_deflate_params deflate;    /* deflate.enabled = 1 if negotiated */
} ws_handshake_result;

/* Validates req as a WebSocket upgrade and fills *res. Returns res->status. */
int ws_handshake_check(const http_request *req, const ws_handshake_opts *opts,
                       ws_handshake_result *res);

/* Computes Sec-WebSocket-Accept for key (base64 of SHA-1 of key + GUID). */
void ws_handshake_accept(const char *key, size_t key_len, char out[29]);

/* Writes the 101 response for res into out (cap bytes). Returns its length,
 * or 0 if cap is too small. */
size_t ws_handshake_response(const ws_handshake_result *res, char *out,
                             size_t cap);

#endif
