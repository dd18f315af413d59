/* http_reader: turns the bytes of one HTTP/1.1 connection into requests,
 * one at a time, with limits. Parsing is done by llhttp; this module owns
 * the storage of the current request (method, target, headers, body, all in
 * one growable arena), the limits on what a client may send, and the mapping
 * of every parse failure to a 4xx status with a short message.
 *
 * Pipelining: the reader stops after each complete request (llhttp pause),
 * so the caller answers requests strictly in order and feeds the rest of the
 * buffer again. Upgrade requests stop the reader for good: the bytes after
 * the request head belong to the new protocol. */
#ifndef PLAZA_HTTP_READER_H
#define PLAZA_HTTP_READER_H

#include <stddef.h>
#include <stdint.h>
#include <llhttp.h>

/* First arena size: a typical request head fits, and the allocation stays
 * within glibc's per-thread cache (chunks up to 1032 bytes), which matters
 * because the arena is freed after every request to keep idle connections
 * empty. */
#define HTTP_READER_ARENA_INIT 1008

typedef struct http_limits {
    size_t max_header_bytes;  /* request line + all header lines; over => 431 (414 if the target alone is too long) */
    int max_headers;          /* header count; over => 431 */
    size_t max_body_bytes;    /* decoded body (chunked or not); over => 413 */
} http_limits;

typedef struct http_header {
    const char *name;         /* NUL-terminated, as received */
    const char *value;        /* NUL-terminated, surrounding whitespace trimmed */
    size_t name_len, value_len;
} http_header;

typedef struct http_request {
    const char *method;       /* "GET", ... (NUL-terminated) */
    const char *target;       /* request target as received, e.g. "/a/b?x=1" */
    const char *path;         /* target up to '?', NUL-terminated (not decoded) */
    const char *query;        /* after '?', or "" */
    size_t target_len, path_len;
    int version_major, version_minor;
    http_header *headers;
    int nheaders;
    const uint8_t *body;      /* decoded body (de-chunked); NULL if none */
    size_t body_len;
    int keep_alive;           /* 1 if the connection may serve another request */
    int upgrade;              /* 1 if this is an Upgrade request (e.g. WebSocket) */
} http_request;

enum {
    HTTP_READ_MORE = 0,       /* all bytes consumed, request not complete yet */
    HTTP_READ_REQUEST = 1,    /* a complete request is in r->req */
    HTTP_READ_ERROR = -1,     /* bad request: r->err_status, r->err_msg */
};

typedef struct http_reader {
    llhttp_t parser;          /* llhttp state; settings are shared, static */
    http_limits limits;
    http_request req;
    char *arena;              /* request storage (NULL while idle) */
    size_t arena_len, arena_cap;
    size_t head_bytes;        /* bytes of request line + headers so far */
    size_t body_off;          /* arena offset of the body */
    size_t path_off;          /* internal: arena offset of path (0 = target) */
    size_t query_off;         /* internal: arena offset of query (SIZE_MAX = none) */
    size_t hdr_off;           /* internal: arena offset of the first header name */
    size_t field_off;         /* internal: arena offset of the name/value being read */
    int stage;                /* internal: where the parser is in a request */
    int in_field;             /* internal: parser is inside a header name */
    int upgraded;             /* internal: an upgrade request ended the reader */
    int err_status;           /* 400, 413, 414, 431, 501, 505 ... */
    const char *err_msg;      /* static text for the response body */
} http_reader;

void http_reader_init(http_reader *r, const http_limits *limits);

/* Frees the arena and anything else held. */
void http_reader_free(http_reader *r);

/* Feeds bytes. Sets *consumed to how many were used. Returns
 * HTTP_READ_REQUEST as soon as one request is complete (the caller answers
 * it, calls http_reader_next and feeds the remaining bytes), HTTP_READ_MORE
 * when more input is needed, HTTP_READ_ERROR on a bad request. For an
 * upgrade request, *consumed stops at the end of the request head. */
int http_reader_feed(http_reader *r, const char *data, size_t len,
                     size_t *consumed);

/* Forgets the current request and frees its storage so an idle keep-alive
 * connection holds nothing; ready for the next request. */
void http_reader_next(http_reader *r);

/* 1 if some bytes of an incomplete request have been received. */
int http_reader_busy(const http_reader *r);

/* Case-insensitive header lookup; the first match, or NULL. */
const http_header *http_request_header(const http_request *req,
                                       const char *name);

/* 1 if the comma-separated list in value contains token (case-insensitive,
 * whitespace around items ignored). */
int http_list_has_token(const char *value, const char *token);

#endif
