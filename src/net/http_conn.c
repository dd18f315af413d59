/* http_conn: HTTP/1.1 request handling on a connection (see http_conn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/http_conn.h"
#include "net/server.h"
#include "net/static_files.h"
#include "net/worker.h"
#include "net/ws_conn.h"
#include "net/ws_handshake.h"
#include "obs/log.h"

#define HTTP_MAX_QUEUED_BYTES (4u << 20)

/* A response a route gives later (see http_later_begin). */
struct http_later {
    conn *c;                  /* NULL once the connection is gone */
    int keep_alive, version_minor, head;
};

/* What HTTP keeps on a connection: the reader, and while a response is
 * being waited for, the handle and the bytes that came after the request
 * (pipelined requests wait their turn). */
typedef struct http_state {
    http_reader r;            /* first: c->http points here */
    http_later *later;
    uint8_t *held;
    size_t held_len;
} http_state;

static http_state *state_of(conn *c) { return (http_state *)(void *)c->http; }

/* How a response ends: from the request, or from a later's copy of it. */
typedef struct resp_mode { int keep_alive, version_minor, head; } resp_mode;

static resp_mode mode_of(const http_request *req) {
    resp_mode m = {0, 1, 0};
    if (req) {
        m.keep_alive = req->keep_alive;
        m.version_minor = req->version_minor;
        m.head = strcmp(req->method, "HEAD") == 0;
    }
    return m;
}

const char *http_status_text(int status) {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Queues one response; ends the connection after it unless it is kept
 * alive. */
static void respond_as(conn *c, resp_mode m, int status,
                       const char *content_type, const char *extra_headers,
                       const void *body, size_t body_len, int close_after) {
    int keep = !close_after && m.keep_alive && !c->w->stopping;
    int head_only = m.head;
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: plaza\r\n"
                     "%s%s%sContent-Length: %zu\r\n%s%s\r\n",
                     status, http_status_text(status),
                     content_type ? "Content-Type: " : "",
                     content_type ? content_type : "",
                     content_type ? "\r\n" : "", body_len,
                     !keep ? "Connection: close\r\n"
                     : m.version_minor == 0 ? "Connection: keep-alive\r\n" : "",
                     extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(head)) { conn_abort(c); return; }
    size_t blen = head_only || status == 304 ? 0 : body_len;
    rcbuf *b = rcbuf_new((size_t)n + blen);
    if (!b) { conn_abort(c); return; }
    memcpy(b->data, head, (size_t)n);
    if (blen) memcpy(b->data + n, body, blen);
    METRIC_ADD(c->w->metrics.http_requests, 1);
    if (status >= 400) METRIC_ADD(c->w->metrics.http_errors, 1);
    conn_send(c, b);
    if (!keep) conn_end(c);
}

static void respond(conn *c, const http_request *req, int status,
                    const char *content_type, const char *extra_headers,
                    const void *body, size_t body_len, int close_after) {
    respond_as(c, mode_of(req), status, content_type, extra_headers, body,
               body_len, close_after);
}

void http_respond(conn *c, const http_request *req, int status,
                  const char *content_type, const char *extra_headers,
                  const void *body, size_t body_len) {
    respond(c, req, status, content_type, extra_headers, body, body_len, 0);
}

void http_respond_error(conn *c, const http_request *req, int status,
                        const char *msg, int close_after) {
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", msg);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof(body)) n = sizeof(body) - 1;
    respond(c, req, status, "text/plain; charset=utf-8", NULL, body,
            (size_t)n, close_after);
}

static void on_metrics(conn *c, const http_request *req) {
    server *srv = c->w->srv;
    net_metrics *per[256];
    int n = srv->nworkers < 256 ? srv->nworkers : 256;
    for (int i = 0; i < n; i++) per[i] = &srv->workers[i]->metrics;
    metrics_text t = {0};
    metrics_render_net(&t, per, n);
    for (int i = 0; i < srv->nmetrics; i++)
        srv->metrics[i].fn(&t, srv->metrics[i].ud);
    if (t.oom) { http_respond_error(c, req, 500, "out of memory", 1); free(t.buf); return; }
    http_respond(c, req, 200, "text/plain; version=0.0.4; charset=utf-8",
                 "Cache-Control: no-store\r\n", t.buf, t.len);
    free(t.buf);
}

/* The WebSocket endpoint: validate, answer 101, switch protocols. Returns
 * 1 if the connection is now a WebSocket. */
static int upgrade(conn *c, const http_request *req) {
    server *srv = c->w->srv;
    const config *cfg = srv->cfg;
    ws_handshake_opts opts = {
        .origins = (const char *const *)cfg->ws_allowed_origins,
        .norigins = cfg->ws_nallowed_origins,
        .deflate_enabled = cfg->ws_compression,
    };
    ws_handshake_result res;
    if (!req->upgrade) {
        http_respond_error(c, req, 400, "WebSocket upgrade expected", 1);
        METRIC_ADD(c->w->metrics.handshakes_failed, 1);
        return 0;
    }
    if (ws_handshake_check(req, &opts, &res) != 101) {
        METRIC_ADD(c->w->metrics.handshakes_failed, 1);
        if (res.status == 426) {
            respond(c, req, 426, "text/plain; charset=utf-8",
                    "Sec-WebSocket-Version: 13\r\n", res.error,
                    strlen(res.error), 1);
        } else {
            http_respond_error(c, req, res.status, res.error, 1);
        }
        return 0;
    }
    char out[1024];
    size_t n = ws_handshake_response(&res, out, sizeof(out));
    if (!n || conn_send_copy(c, out, n) != 0) { conn_abort(c); return 0; }
    METRIC_ADD(c->w->metrics.handshakes_ok, 1);
    http_conn_free(c);
    return ws_conn_open(c, srv->ws_handler, &res.deflate) == 0;
}

/* Answers one complete request. Returns 1 if the connection switched to
 * WebSocket, 2 if a route answers later. */
static int route(conn *c, const http_request *req) {
    server *srv = c->w->srv;
    const char *path = req->path;
    if (strcmp(path, WS_ENDPOINT) == 0 && srv->ws_handler)
        return upgrade(c, req);
    if (strcmp(path, "/healthz") == 0) {
        char why[160], body[200];
        if (srv->health && srv->health(srv->health_ud, why, sizeof(why))) {
            int n = snprintf(body, sizeof(body), "degraded: %s\n", why);
            http_respond(c, req, 503, "text/plain; charset=utf-8", "Cache-Control: no-store\r\n",
                         body, n > 0 && (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
            return 0;
        }
        http_respond(c, req, 200, "text/plain; charset=utf-8",
                     "Cache-Control: no-store\r\n", "ok\n", 3);
        return 0;
    }
    if (strcmp(path, "/metrics") == 0) { on_metrics(c, req); return 0; }
    for (int i = 0; i < srv->nroutes; i++) {
        size_t pl = strlen(srv->routes[i].prefix);
        if (strncmp(path, srv->routes[i].prefix, pl) != 0) continue;
        int rc = srv->routes[i].fn(c, req, srv->routes[i].ud);
        if (rc == HTTP_ROUTE_LATER) return 2;
        if (rc == HTTP_ROUTE_DONE) return 0;
    }
    if (!srv->web_root) {
        http_respond_error(c, req, 404, "not found", 0);
        return 0;
    }
    static_serve(c, req, srv->web_root, srv->cfg->http_static_max_age);
    return 0;
}

static http_reader *reader_for(conn *c) {
    if (c->http) return c->http;
    http_state *hs = calloc(1, sizeof(*hs));
    if (!hs) return NULL;
    const config *cfg = c->w->srv->cfg;
    http_limits lim = {
        .max_header_bytes = (size_t)cfg->http_max_header_bytes,
        .max_headers = cfg->http_max_headers,
        .max_body_bytes = (size_t)cfg->http_max_body_bytes,
    };
    http_reader_init(&hs->r, &lim);
    c->http = &hs->r;
    return c->http;
}

/* Keeps bytes that arrived while a response is being waited for. */
static void hold(conn *c, const uint8_t *data, size_t len) {
    http_state *hs = state_of(c);
    if (!len) return;
    uint8_t *p = realloc(hs->held, hs->held_len + len);
    if (!p) { conn_abort(c); return; }
    memcpy(p + hs->held_len, data, len);
    hs->held = p;
    hs->held_len += len;
}

void http_conn_on_data(conn *c, uint8_t *data, size_t len) {
    if (c->http && state_of(c)->later) { hold(c, data, len); return; }
    while (len && !c->closed && !c->ending && c->kind == CONN_HTTP) {
        http_reader *r = reader_for(c);
        if (!r) { conn_abort(c); return; }
        int was_busy = http_reader_busy(r);
        size_t used = 0;
        int rc = http_reader_feed(r, (const char *)data, len, &used);
        data += used;
        len -= used;
        if (rc == HTTP_READ_MORE) {
            if (!was_busy)
                conn_set_deadline(c, conn_now(c) + (uint64_t)c->w->srv->cfg->http_read_timeout_ms);
            return;
        }
        if (rc == HTTP_READ_ERROR) {
            http_respond_error(c, NULL, r->err_status, r->err_msg, 1);
            return;
        }
        /* A client that pipelines requests without reading the answers
         * gets no more of them while this much is unsent (it could make us
         * hold any number of file copies). */
        if (c->out_bytes > HTTP_MAX_QUEUED_BYTES) { conn_end(c); return; }
        int upgraded = route(c, &r->req);
        if (upgraded == 2) {                 /* answered later: wait for it */
            if (!c->closed) { hold(c, data, len); conn_read_pause(c); }
            return;
        }
        if (upgraded) {
            if (len) ws_conn_on_data(c, data, len);
            return;
        }
        if (c->kind == CONN_HTTP && c->http) {
            if (r->req.upgrade) { conn_end(c); return; }  /* reader stopped */
            http_reader_next(r);
        }
        conn_set_deadline(c, conn_now(c) + (uint64_t)c->w->srv->cfg->http_keepalive_timeout_ms);
    }
}

void http_conn_on_deadline(conn *c) {
    if (c->http && state_of(c)->later) {      /* a route is still answering */
        conn_set_deadline(c, conn_now(c) + (uint64_t)c->w->srv->cfg->http_keepalive_timeout_ms);
        return;
    }
    if (c->http && http_reader_busy(c->http)) {
        METRIC_ADD(c->w->metrics.idle_timeouts, 1);
        http_respond_error(c, NULL, 408, "request timeout", 1);
        return;
    }
    conn_end(c);   /* idle keep-alive connection */
}

void http_conn_free(conn *c) {
    if (!c->http) return;
    http_state *hs = state_of(c);
    if (hs->later) hs->later->c = NULL;       /* its answer goes nowhere */
    free(hs->held);
    http_reader_free(&hs->r);
    free(hs);
    c->http = NULL;
}

void http_conn_shutdown(conn *c) {
    if (c->http && state_of(c)->later) return;   /* ends after the response */
    conn_end(c);
}

/* ---- responses given later ---- */

http_later *http_later_begin(conn *c, const http_request *req) {
    http_state *hs = state_of(c);
    if (!hs || hs->later) return NULL;
    http_later *l = malloc(sizeof(*l));
    if (!l) return NULL;
    resp_mode m = mode_of(req);
    l->c = c;
    l->keep_alive = m.keep_alive;
    l->version_minor = m.version_minor;
    l->head = m.head;
    hs->later = l;
    return l;
}

/* After a later response: the next request, the held bytes first. */
static void resume(conn *c) {
    http_state *hs = state_of(c);
    http_reader_next(&hs->r);
    conn_set_deadline(c, conn_now(c) + (uint64_t)c->w->srv->cfg->http_keepalive_timeout_ms);
    uint8_t *held = hs->held;
    size_t n = hs->held_len;
    hs->held = NULL;
    hs->held_len = 0;
    if (!c->ending && !c->closed) conn_read_resume(c);
    if (held && !c->ending && !c->closed) http_conn_on_data(c, held, n);
    free(held);
}

void http_later_respond(http_later *l, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t len) {
    conn *c = l->c;
    resp_mode m = {l->keep_alive, l->version_minor, l->head};
    free(l);
    if (!c) return;
    state_of(c)->later = NULL;
    if (c->closed) return;
    respond_as(c, m, status, content_type, extra_headers, body, len, 0);
    resume(c);
}
