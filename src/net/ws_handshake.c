/* ws_handshake: the server side of the RFC 6455 opening handshake. This
 * file owns the validation of an upgrade request (4.2.1), the choice of
 * subprotocol and of permessage-deflate parameters, the
 * Sec-WebSocket-Accept value and the text of the 101 response. The error
 * responses (400, 403, 426 with "Sec-WebSocket-Version: 13") are written
 * by the caller from res->status and res->error.
 *
 * Status choices:
 *  - a missing Sec-WebSocket-Version gets 426, like a wrong one: clients
 *    that omit it speak a pre-RFC draft (hixie-76, hybi-00), and 426 with
 *    the supported version is the answer 4.2.2 gives to a version we do not
 *    speak. A repeated Sec-WebSocket-Version is malformed (11.3.5): 400.
 *  - a missing Origin is allowed even with an allow-list: browsers always
 *    send it, other clients have none to send.
 *  - if OpenSSL cannot compute the accept value (allocation failure), the
 *    status is 500. */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "net/ws_handshake.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN 24   /* base64 of 16 bytes: 22 characters + "==" */

static int fail(ws_handshake_result *res, int status, const char *error) {
    res->status = status;
    res->error = error;
    return status;
}

static int header_count(const http_request *req, const char *name) {
    int n = 0;

    for (int i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) n++;
    return n;
}

/* Token search over every header line called `name` (a list header may be
 * split over several lines, e.g. "Connection: keep-alive" then
 * "Connection: Upgrade"). */
static int headers_have_token(const http_request *req, const char *name,
                              const char *token) {
    for (int i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        if (strcasecmp(h->name, name) == 0 &&
            http_list_has_token(h->value, token))
            return 1;
    }
    return 0;
}

static int is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* 16 bytes in base64: exactly 22 alphabet characters then "==". The unused
 * low bits of the last character are not required to be zero: RFC 6455's
 * own example key ("AQIDBAUGBwgJCgsMDQ4PEC==") has them set. */
static int key_is_valid(const http_header *h) {
    if (h->value_len != WS_KEY_LEN) return 0;
    for (int i = 0; i < WS_KEY_LEN - 2; i++)
        if (!is_base64_char(h->value[i])) return 0;
    return h->value[22] == '=' && h->value[23] == '=';
}

static int origin_allowed(const http_request *req,
                          const ws_handshake_opts *opts) {
    const http_header *h;

    if (opts->norigins <= 0) return 1;
    if ((h = http_request_header(req, "Origin")) == NULL) return 1;
    if (header_count(req, "Origin") > 1) return 0;
    for (int i = 0; i < opts->norigins; i++)
        if (strcasecmp(h->value, opts->origins[i]) == 0) return 1;
    return 0;
}

/* 1 if the comma-separated list has `token`, compared exactly: the client
 * checks that the echoed subprotocol is byte-for-byte one it sent. */
static int list_has_exact(const char *value, const char *token) {
    size_t toklen = strlen(token);
    const char *p = value;

    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',') p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
        if ((size_t)(end - start) == toklen &&
            memcmp(start, token, toklen) == 0)
            return 1;
    }
    return 0;
}

static int client_offered_protocol(const http_request *req, const char *p) {
    for (int i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        if (strcasecmp(h->name, "Sec-WebSocket-Protocol") == 0 &&
            list_has_exact(h->value, p))
            return 1;
    }
    return 0;
}

/* Our first preference the client offered, or NULL. */
static const char *pick_subprotocol(const http_request *req,
                                    const ws_handshake_opts *opts) {
    for (int i = 0; i < opts->nsubprotocols; i++)
        if (client_offered_protocol(req, opts->subprotocols[i]))
            return opts->subprotocols[i];
    return NULL;
}

/* Each Sec-WebSocket-Extensions line is negotiated in order; since no offer
 * spans two lines this is the same as negotiating their concatenation. */
static void pick_deflate(const http_request *req, ws_deflate_params *d) {
    for (int i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        if (strcasecmp(h->name, "Sec-WebSocket-Extensions") == 0 &&
            ws_deflate_negotiate(h->value, d))
            return;
    }
    d->enabled = 0;
}

static void result_init(ws_handshake_result *res) {
    memset(res, 0, sizeof *res);
    res->deflate.client_max_window_bits = 15;
    res->deflate.server_max_window_bits = 15;
}

/* Request line and the headers every upgrade needs (4.2.1 items 1-4). */
static int check_upgrade(const http_request *req, ws_handshake_result *res) {
    int hosts = header_count(req, "Host");

    if (strcmp(req->method, "GET") != 0)
        return fail(res, 400, "WebSocket handshake requires GET");
    if (req->version_major < 1 ||
        (req->version_major == 1 && req->version_minor < 1))
        return fail(res, 400, "WebSocket handshake requires HTTP/1.1");
    if (hosts == 0) return fail(res, 400, "missing Host header");
    if (hosts > 1) return fail(res, 400, "duplicate Host header");
    if (!headers_have_token(req, "Upgrade", "websocket"))
        return fail(res, 400, "Upgrade header must include websocket");
    if (!headers_have_token(req, "Connection", "upgrade"))
        return fail(res, 400, "Connection header must include Upgrade");
    return 0;
}

/* Sec-WebSocket-Version and Sec-WebSocket-Key (4.2.1 items 5-6). */
static int check_websocket(const http_request *req, ws_handshake_result *res) {
    const http_header *v = http_request_header(req, "Sec-WebSocket-Version");
    const http_header *k = http_request_header(req, "Sec-WebSocket-Key");

    if (v == NULL || strcmp(v->value, "13") != 0)
        return fail(res, 426, "unsupported WebSocket version; supported: 13");
    if (header_count(req, "Sec-WebSocket-Version") > 1)
        return fail(res, 400, "duplicate Sec-WebSocket-Version header");
    if (k == NULL) return fail(res, 400, "missing Sec-WebSocket-Key header");
    if (header_count(req, "Sec-WebSocket-Key") > 1)
        return fail(res, 400, "duplicate Sec-WebSocket-Key header");
    if (!key_is_valid(k)) return fail(res, 400, "invalid Sec-WebSocket-Key");
    return 0;
}

int ws_handshake_check(const http_request *req, const ws_handshake_opts *opts,
                       ws_handshake_result *res) {
    const http_header *key;

    result_init(res);
    if (check_upgrade(req, res) || check_websocket(req, res)) return res->status;
    if (!origin_allowed(req, opts))
        return fail(res, 403, "origin not allowed");
    key = http_request_header(req, "Sec-WebSocket-Key");
    ws_handshake_accept(key->value, key->value_len, res->accept);
    if (res->accept[0] == '\0')
        return fail(res, 500, "cannot compute Sec-WebSocket-Accept");
    res->subprotocol = pick_subprotocol(req, opts);
    if (opts->deflate_enabled) pick_deflate(req, &res->deflate);
    res->status = 101;
    return 101;
}

/* On failure out is the empty string. */
void ws_handshake_accept(const char *key, size_t key_len, char out[29]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL &&
             EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, key, key_len) &&
             EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 20;

    EVP_MD_CTX_free(ctx);
    out[0] = '\0';
    if (ok) EVP_EncodeBlock((unsigned char *)out, md, 20);  /* 28 + NUL */
}

typedef struct outbuf {
    char *p;
    size_t len, cap;
    int overflow;
} outbuf;

static void put(outbuf *b, const char *s) {
    size_t n = strlen(s);

    if (b->overflow || n >= b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

size_t ws_handshake_response(const ws_handshake_result *res, char *out,
                             size_t cap) {
    outbuf b = {out, 0, cap, cap == 0};
    char ext[160];

    if (res->status != 101) return 0;
    put(&b, "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: ");
    put(&b, res->accept);
    put(&b, "\r\n");
    if (res->subprotocol != NULL) {
        put(&b, "Sec-WebSocket-Protocol: ");
        put(&b, res->subprotocol);
        put(&b, "\r\n");
    }
    if (res->deflate.enabled) {
        if (ws_deflate_response(&res->deflate, ext, sizeof ext) == 0) return 0;
        put(&b, "Sec-WebSocket-Extensions: ");
        put(&b, ext);
        put(&b, "\r\n");
    }
    put(&b, "\r\n");
    return b.overflow ? 0 : b.len;
}
