/* http_reader.c: owns the per-connection HTTP/1.x request reader on top of
 * llhttp: the request arena, the client limits (431/414/413), the mapping of
 * llhttp errors to statuses, pipelining (one request per feed, via llhttp
 * pause) and the stop after an upgrade request head.
 *
 * Arena layout while a request is parsed (all offsets, since the arena may
 * move when it grows):
 *
 *   target\0 [path\0] [query\0] name\0value\0 ... name\0value\0 body [pad] headers[]
 *
 * The method is llhttp's static name for it. The http_header array is put at
 * the end when the request completes, and only then are the pointers in
 * r->req set. Trailers of a chunked body are counted against the header
 * limits but not kept. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/http_reader.h"

#define ARENA_INIT HTTP_READER_ARENA_INIT

/* r->stage: where the parser is in the current request. */
enum {
    STAGE_IDLE = 0,   /* nothing of a request seen yet */
    STAGE_URL,        /* request line started, target not complete */
    STAGE_HEAD,       /* target complete, reading headers */
    STAGE_BODY,       /* head complete, reading the body */
    STAGE_TRAILER,    /* last chunk seen, reading trailers */
    STAGE_DONE,       /* request complete, waiting for http_reader_next */
};

/* ------------------------------------------------------------------------
 * Arena
 * ---------------------------------------------------------------------- */

/* Makes room for need more bytes. Returns 0, or -1 if out of memory. */
static int arena_reserve(http_reader *r, size_t need) {
    if (r->arena_cap - r->arena_len >= need) return 0;
    if (need > SIZE_MAX / 2 - r->arena_len) return -1;
    size_t cap = r->arena_cap ? r->arena_cap * 2 : ARENA_INIT;
    if (cap < r->arena_len + need) cap = r->arena_len + need;
    char *p = realloc(r->arena, cap);
    if (p == NULL) return -1;
    r->arena = p;
    r->arena_cap = cap;
    return 0;
}

static int arena_append(http_reader *r, const void *data, size_t len) {
    if (arena_reserve(r, len) != 0) return -1;
    if (len) memcpy(r->arena + r->arena_len, data, len);
    r->arena_len += len;
    return 0;
}

/* Appends a NUL-terminated copy of arena[off, off+len). */
static int arena_copy_str(http_reader *r, size_t off, size_t len) {
    if (arena_reserve(r, len + 1) != 0) return -1;
    memcpy(r->arena + r->arena_len, r->arena + off, len);
    r->arena[r->arena_len + len] = '\0';
    r->arena_len += len + 1;
    return 0;
}

static void arena_free(http_reader *r) {
    free(r->arena);
    r->arena = NULL;
    r->arena_len = r->arena_cap = 0;
}

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

/* Records the first error only; returns -1 for the callers' convenience. */
static int fail(http_reader *r, int status, const char *msg) {
    if (r->err_status == 0) {
        r->err_status = status;
        r->err_msg = msg;
    }
    return -1;
}

static int fail_oom(http_reader *r) {
    return fail(r, 503, "out of memory");
}

/* Status and message for an error llhttp found by itself. */
static void fail_llhttp(http_reader *r, llhttp_errno_t err) {
    const char *msg = "bad request", *reason;
    switch (err) {
    case HPE_INVALID_VERSION:
        /* Well-formed but unknown versions (HTTP/3.0, HTTP/1.2) get this
         * reason; malformed ones get "Invalid major/minor version". */
        reason = llhttp_get_error_reason(&r->parser);
        if (reason && strcmp(reason, "Invalid HTTP version") == 0) {
            fail(r, 505, "HTTP version not supported");
            return;
        }
        msg = "bad request: invalid version";
        break;
    case HPE_PAUSED_H2_UPGRADE:
        fail(r, 505, "HTTP version not supported");
        return;
    case HPE_INVALID_METHOD: msg = "bad request: invalid method"; break;
    case HPE_INVALID_URL: msg = "bad request: invalid target"; break;
    case HPE_INVALID_CONSTANT: msg = "bad request: invalid constant"; break;
    case HPE_INVALID_HEADER_TOKEN:
        msg = "bad request: invalid header token"; break;
    case HPE_INVALID_CONTENT_LENGTH:
        msg = "bad request: invalid content-length"; break;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        msg = "bad request: unexpected content-length"; break;
    case HPE_INVALID_CHUNK_SIZE: msg = "bad request: invalid chunk size"; break;
    case HPE_INVALID_TRANSFER_ENCODING:
        msg = "bad request: invalid transfer-encoding"; break;
    case HPE_CR_EXPECTED:
    case HPE_LF_EXPECTED: msg = "bad request: invalid line ending"; break;
    case HPE_UNEXPECTED_SPACE: msg = "bad request: unexpected space"; break;
    case HPE_STRICT: msg = "bad request: strict mode violation"; break;
    case HPE_CLOSED_CONNECTION:
        msg = "bad request: data after connection close"; break;
    default: break;
    }
    fail(r, 400, msg);
}

/* ------------------------------------------------------------------------
 * Request line
 * ---------------------------------------------------------------------- */

static http_reader *reader(llhttp_t *p) {
    return p->data;
}

static int on_message_begin(llhttp_t *p) {
    reader(p)->stage = STAGE_URL;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
    http_reader *r = reader(p);
    if (arena_append(r, at, len) != 0) {
        fail_oom(r);
        return HPE_USER;
    }
    r->req.target_len += len;
    return 0;
}

/* Length of the prefix of s[0, len) without any of the chars in stop. */
static size_t span_until(const char *s, size_t len, const char *stop) {
    size_t i = 0;
    while (i < len && strchr(stop, s[i]) == NULL) i++;
    return i;
}

/* The target is at offset 0. The path is its prefix up to '?' or '#', the
 * query what follows '?' (up to '#'); each gets its own NUL-terminated copy
 * unless it already ends where the target ends. Offsets are computed before
 * copying, as a copy may move the arena. */
static int split_target(http_reader *r) {
    size_t len = r->req.target_len;
    size_t path_len = span_until(r->arena, len, "?#");
    size_t qoff = path_len + 1, qend = len;
    int has_query = path_len < len && r->arena[path_len] == '?';

    if (has_query) qend = qoff + span_until(r->arena + qoff, len - qoff, "#");
    r->req.path_len = path_len;
    r->path_off = 0;
    r->query_off = has_query ? qoff : SIZE_MAX;
    if (path_len < len) {
        r->path_off = r->arena_len;
        if (arena_copy_str(r, 0, path_len) != 0) return -1;
    }
    if (has_query && qend < len) {
        r->query_off = r->arena_len;
        if (arena_copy_str(r, qoff, qend - qoff) != 0) return -1;
    }
    return 0;
}

static int on_url_complete(llhttp_t *p) {
    http_reader *r = reader(p);
    if (arena_append(r, "", 1) != 0) return fail_oom(r);
    if (split_target(r) != 0) return fail_oom(r);
    r->hdr_off = r->arena_len;
    r->stage = STAGE_HEAD;
    return 0;
}

static int check_version(llhttp_t *p) {
    if (p->http_major == 1 && (p->http_minor == 0 || p->http_minor == 1))
        return 0;
    return fail(reader(p), 505, "HTTP version not supported");
}

/* Rejects HTTP/2.0 etc. early; a request line without a version (HTTP/0.9
 * style, which llhttp lets through) is caught at headers complete. */
static int on_version_complete(llhttp_t *p) {
    return check_version(p);
}

/* ------------------------------------------------------------------------
 * Headers (and trailers, which are dropped)
 *
 * Limits are checked when a name is complete, not as its bytes arrive, so
 * the outcome does not depend on how the input was split.
 * ---------------------------------------------------------------------- */

static int is_trailer(const http_reader *r) {
    return r->stage == STAGE_TRAILER;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
    http_reader *r = reader(p);
    if (is_trailer(r)) return 0;
    if (!r->in_field) {
        r->in_field = 1;
        r->field_off = r->arena_len;
    }
    if (arena_append(r, at, len) != 0) {
        fail_oom(r);
        return HPE_USER;
    }
    return 0;
}

/* RFC 9110 5.1: a field name is a non-empty token. llhttp outside its
 * compile-time strict mode lets spaces and empty names through. */
static int is_token(const char *s, size_t len) {
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || (c && strchr(tchar, c))))
            return 0;
    }
    return 1;
}

static int on_header_field_complete(llhttp_t *p) {
    http_reader *r = reader(p);
    if (is_trailer(r)) return 0;
    int started = r->in_field;
    r->in_field = 0;
    if (!started || !is_token(r->arena + r->field_off,
                              r->arena_len - r->field_off))
        return fail(r, 400, "bad request: invalid header token");
    if (r->req.nheaders >= r->limits.max_headers)
        return fail(r, 431, "too many headers");
    r->req.nheaders++;
    if (arena_append(r, "", 1) != 0) return fail_oom(r);
    r->field_off = r->arena_len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
    http_reader *r = reader(p);
    if (is_trailer(r)) return 0;
    if (arena_append(r, at, len) != 0) {
        fail_oom(r);
        return HPE_USER;
    }
    return 0;
}

static int is_ows(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims the value in place (arena[field_off, arena_len)) and ends it with a
 * NUL. A folded line's CR LF (obs-fold) becomes spaces. */
static int on_header_value_complete(llhttp_t *p) {
    http_reader *r = reader(p);
    if (is_trailer(r)) return 0;
    char *v = r->arena + r->field_off;
    size_t len = r->arena_len - r->field_off, skip = 0;
    while (len > 0 && is_ows(v[len - 1])) len--;
    while (skip < len && is_ows(v[skip])) skip++;
    len -= skip;
    memmove(v, v + skip, len);
    for (size_t i = 0; i < len; i++)
        if (v[i] == '\r' || v[i] == '\n') v[i] = ' ';
    r->arena_len = r->field_off + len;
    if (arena_append(r, "", 1) != 0) return fail_oom(r);
    return 0;
}

/* ------------------------------------------------------------------------
 * Head complete: body framing checks
 * ---------------------------------------------------------------------- */

/* Offset of the NUL-terminated string after the one at off. */
static size_t next_str(const http_reader *r, size_t off) {
    return off + strlen(r->arena + off) + 1;
}

/* Walks a comma-separated coding list: counts the codings and remembers
 * whether the last one is "chunked". */
static void scan_codings(const char *v, int *count, int *last_chunked) {
    while (*v) {
        size_t n = strcspn(v, ",");
        size_t b = 0, e = n;
        while (b < e && (v[b] == ' ' || v[b] == '\t')) b++;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > b) {
            (*count)++;
            *last_chunked = (e - b == 7 && strncasecmp(v + b, "chunked", 7) == 0);
        }
        v += n + (v[n] == ',');
    }
}

/* Transfer-Encoding must be exactly "chunked": a final coding other than
 * chunked makes the body length unknowable (400, RFC 9112 6.3); other
 * codings before chunked are not implemented (501). */
static int check_transfer_encoding(http_reader *r) {
    int count = 0, last_chunked = 0, seen = 0;
    size_t off = r->hdr_off;
    for (int i = 0; i < r->req.nheaders; i++) {
        size_t voff = next_str(r, off);
        if (strcasecmp(r->arena + off, "transfer-encoding") == 0) {
            seen = 1;
            scan_codings(r->arena + voff, &count, &last_chunked);
        }
        off = next_str(r, voff);
    }
    if (!seen) return 0;
    if (!last_chunked)
        return fail(r, 400, "bad request: invalid transfer-encoding");
    if (count > 1) return fail(r, 501, "transfer-encoding not implemented");
    return 0;
}

/* Returns 0 to read the body, 2 for an upgrade (llhttp skips the body and
 * stops), HPE_PAUSED to let the feed loop measure the head exactly, or -1. */
static int on_headers_complete(llhttp_t *p) {
    http_reader *r = reader(p);
    r->stage = STAGE_BODY;
    r->body_off = r->arena_len;
    if (check_version(p) != 0 || check_transfer_encoding(r) != 0) return -1;
    if ((p->flags & F_CONTENT_LENGTH) &&
        p->content_length > r->limits.max_body_bytes)
        return fail(r, 413, "payload too large");
    if (p->upgrade) return 2;
    if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED) &&
        arena_reserve(r, p->content_length + 64 +
                      (size_t)r->req.nheaders * sizeof(http_header)) != 0)
        return fail_oom(r);
    return HPE_PAUSED;
}

/* ------------------------------------------------------------------------
 * Body and completion
 * ---------------------------------------------------------------------- */

/* The last chunk (size 0) starts the trailers, which share the header
 * byte budget: pause so the feed loop counts them like the head. */
static int on_chunk_header(llhttp_t *p) {
    http_reader *r = reader(p);
    if (p->content_length > r->limits.max_body_bytes - r->req.body_len)
        return fail(r, 413, "payload too large");
    if (p->content_length > 0) return 0;
    r->stage = STAGE_TRAILER;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
    http_reader *r = reader(p);
    int bad = len > r->limits.max_body_bytes - r->req.body_len
                  ? fail(r, 413, "payload too large")
                  : arena_append(r, at, len) != 0 ? fail_oom(r) : 0;
    if (bad) return HPE_USER;
    r->req.body_len += len;
    return 0;
}

/* Appends the header array (aligned) and points r->req into the arena. */
static int finish_request(http_reader *r) {
    http_request *q = &r->req;
    size_t pad = (-r->arena_len) & (_Alignof(http_header) - 1);
    size_t n = (size_t)q->nheaders;
    if (arena_reserve(r, pad + n * sizeof(http_header)) != 0) return -1;
    size_t hoff = r->arena_len + pad;
    r->arena_len = hoff + n * sizeof(http_header);

    char *a = r->arena;
    http_header *h = (http_header *)(void *)(a + hoff);
    size_t off = r->hdr_off;
    for (size_t i = 0; i < n; i++) {
        h[i].name = a + off;
        h[i].name_len = strlen(a + off);
        off += h[i].name_len + 1;
        h[i].value = a + off;
        h[i].value_len = strlen(a + off);
        off += h[i].value_len + 1;
    }
    q->headers = n ? h : NULL;
    q->target = a;
    q->path = a + r->path_off;
    q->query = r->query_off == SIZE_MAX ? "" : a + r->query_off;
    q->body = q->body_len ? (const uint8_t *)a + r->body_off : NULL;
    return 0;
}

static int on_message_complete(llhttp_t *p) {
    http_reader *r = reader(p);
    if (finish_request(r) != 0) return fail_oom(r);
    r->req.method = llhttp_method_name((llhttp_method_t)p->method);
    r->req.version_major = p->http_major;
    r->req.version_minor = p->http_minor;
    r->req.keep_alive = llhttp_should_keep_alive(p);
    r->req.upgrade = p->upgrade != 0;
    r->stage = STAGE_DONE;
    /* An upgrade makes llhttp return HPE_PAUSED_UPGRADE by itself. */
    return p->upgrade ? 0 : HPE_PAUSED;
}

static const llhttp_settings_t reader_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_chunk_header = on_chunk_header,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------- */

static void reset_request(http_reader *r) {
    memset(&r->req, 0, sizeof(r->req));
    r->head_bytes = r->body_off = r->hdr_off = r->field_off = 0;
    r->path_off = 0;
    r->query_off = SIZE_MAX;
    r->stage = STAGE_IDLE;
    r->in_field = 0;
}

void http_reader_init(http_reader *r, const http_limits *limits) {
    memset(r, 0, sizeof(*r));
    r->limits = *limits;
    llhttp_init(&r->parser, HTTP_REQUEST, &reader_settings);
    r->parser.data = r;
    r->parser.lenient_flags = 0; /* strict framing: no lenient modes */
    reset_request(r);
}

void http_reader_free(http_reader *r) {
    arena_free(r);
}

void http_reader_next(http_reader *r) {
    arena_free(r);
    reset_request(r);
    if (llhttp_get_errno(&r->parser) == HPE_PAUSED)
        llhttp_resume(&r->parser);
}

int http_reader_busy(const http_reader *r) {
    return r->stage != STAGE_IDLE && r->stage != STAGE_DONE;
}

/* Too many bytes before the head ended: 414 while still in the target. */
static int head_too_large(http_reader *r) {
    if (r->stage == STAGE_URL)
        fail(r, 414, "URI too long");
    else
        fail(r, 431, "request header fields too large");
    return HTTP_READ_ERROR;
}

/* Runs llhttp over data, never giving it more head bytes than the limit
 * allows. Pauses: after the head (resumed here at once, so head_bytes is
 * exact), after a complete request (resumed by http_reader_next), and for
 * an upgrade (never resumed). */
int http_reader_feed(http_reader *r, const char *data, size_t len,
                     size_t *consumed) {
    size_t off = 0;
    *consumed = 0;
    if (data == NULL) data = ""; /* len must be 0; avoids NULL + 0 */
    if (r->err_status) return HTTP_READ_ERROR;
    if (r->stage == STAGE_DONE || r->upgraded) {
        fail(r, 500, "internal error: reader not ready");
        return HTTP_READ_ERROR;
    }
    for (;;) {
        size_t n = len - off;
        int in_head = r->stage < STAGE_BODY || r->stage == STAGE_TRAILER;
        int capped = 0;
        if (in_head) {
            size_t room = r->limits.max_header_bytes > r->head_bytes
                              ? r->limits.max_header_bytes - r->head_bytes : 0;
            if (n > room) n = room, capped = 1;
        }
        llhttp_errno_t err = llhttp_execute(&r->parser, data + off, n);
        size_t used = n;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
            used = (size_t)(llhttp_get_error_pos(&r->parser) - (data + off));
        if (in_head) r->head_bytes += used;
        off += used;
        *consumed = off;

        if (err == HPE_OK) {
            if (capped) return head_too_large(r);
            return HTTP_READ_MORE;
        } else if (err == HPE_PAUSED) {
            if (r->stage == STAGE_DONE) return HTTP_READ_REQUEST;
            llhttp_resume(&r->parser);  /* head or trailer pause: read on */
        } else if (err == HPE_PAUSED_UPGRADE && r->stage == STAGE_DONE) {
            r->upgraded = 1;
            return HTTP_READ_REQUEST;
        } else {
            if (r->err_status == 0) fail_llhttp(r, err);
            return HTTP_READ_ERROR;
        }
    }
}
