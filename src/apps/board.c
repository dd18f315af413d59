/* board: pixel boards over HTTP and RPC (see board.h).
 *
 * Snapshots: each worker keeps, per board, the last snapshot the engine
 * gave it (the bitfield, and its PNG once asked for) and serves every GET
 * from it while it is younger than board.max_age_ms. The first GET after
 * that asks the engine again; the GETs that arrive meanwhile on the worker
 * wait for the same answer. So a board is copied at most once per max-age
 * per worker, whatever the request rate, and no lock is shared between
 * workers. The ETag is the stream position (epoch and offset), which moves
 * with every batch: an unchanged board answers If-None-Match with 304.
 *
 * Writes: a put is checked here (bounds, colour, permissions) and by the
 * engine (the cooldown), which answers once the pixel's batch is out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "apps/app_http.h"
#include "apps/board.h"
#include "apps/board_png.h"
#include "core/clock.h"
#include "core/dict.h"
#include "net/http_conn.h"
#include "net/worker.h"
#include "obs/log.h"
#include "proto/api.h"
#include "proto/codes.h"

typedef struct palette {             /* a board namespace's colours */
    const ns_options *ns;
    int n;
    uint32_t rgb[256];
    char header[256 * 8 + 1];        /* "#rrggbb,..." for X-Board-Palette */
} palette;

typedef struct bwait {               /* a GET waiting for the snapshot */
    http_later *later;
    int png, head;
    char inm[96];                    /* If-None-Match, as sent */
    struct bwait *next;
} bwait;

typedef struct bcache {              /* one board, as one worker serves it */
    int64_t built_ms;                /* when the engine answered (0: never) */
    rcbuf *raw;                      /* the bitfield */
    rcbuf *png;                      /* its PNG, once asked for */
    uint64_t offset;
    char epoch[ENGINE_EPOCH_MAX + 1];
    int building;
    bwait *waits;
    const ns_options *ns;
    const palette *pal;
} bcache;

struct board_app {
    proto_env *env;
    int nworkers;
    dict **caches;                   /* per worker: channel -> bcache */
    palette *pals;
    int npals;
};

/* -------------------------------------------------------------- options */

static const palette *palette_of(const board_app *app, const ns_options *ns) {
    for (int i = 0; i < app->npals; i++)
        if (app->pals[i].ns == ns) return &app->pals[i];
    return NULL;
}

static engine_board_opts opts_of(const ns_options *ns) {
    return (engine_board_opts){
        .width = (uint32_t)ns->board_width, .height = (uint32_t)ns->board_height,
        .bits = ns_board_bits(ns), .batch_ms = ns_board_batch_ms(ns),
        .history_size = ns->history_size, .history_ttl_ms = ns->history_ttl_ms,
        .snapshot_every_ms = (int64_t)ns_board_snapshot_every_s(ns) * 1000,
    };
}

/* The board's namespace, or NULL with err set (107 bad name, 102 unknown
 * namespace, 108 not a board). */
static const ns_options *board_ns(const board_app *app, const char *channel, int *code,
                                  const char **err) {
    const ns_registry *reg = &app->env->cfg->namespaces;
    if (!ns_channel_valid(reg, channel, strlen(channel))) {
        *code = ERR_BAD_REQUEST, *err = "channel: invalid name";
        return NULL;
    }
    const ns_options *ns = ns_lookup(reg, channel);
    if (!ns) { *code = ERR_UNKNOWN_CHANNEL, *err = "channel: unknown namespace"; return NULL; }
    if (!ns_is_board(ns) || !palette_of(app, ns)) {
        *code = ERR_NOT_AVAILABLE, *err = "channel: not a board (its namespace has no board.width)";
        return NULL;
    }
    return ns;
}

/* --------------------------------------------------------------- params */

static int get_int(json_t *o, const char *field, int64_t *out, char *err, size_t errlen) {
    json_t *v = json_object_get(o, field);
    if (!v) { snprintf(err, errlen, "%s required", field); return -1; }
    if (!json_is_integer(v)) { snprintf(err, errlen, "%s: expected an integer", field); return -1; }
    *out = json_integer_value(v);
    return 0;
}

int board_parse_put(const char *body, size_t len, board_put_params *out, char *err,
                    size_t errlen) {
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (!o || !json_is_object(o)) {
        snprintf(err, errlen, "body: expected a JSON object {\"x\",\"y\",\"color\"}");
        goto out;
    }
    json_t *ch = json_object_get(o, "channel");
    if (ch && !json_is_string(ch)) { snprintf(err, errlen, "channel: expected a string"); goto out; }
    if (ch && (json_string_length(ch) >= sizeof(out->channel) ||
               strlen(json_string_value(ch)) != json_string_length(ch))) {
        snprintf(err, errlen, "channel: too long, or not a channel name");
        goto out;
    }
    if (ch) memcpy(out->channel, json_string_value(ch), json_string_length(ch) + 1);
    if (get_int(o, "x", &out->x, err, errlen) || get_int(o, "y", &out->y, err, errlen) ||
        get_int(o, "color", &out->color, err, errlen))
        goto out;
    rc = 0;
out:
    if (rc) memset(out, 0, sizeof(*out));
    json_decref(o);
    return rc;
}

/* Bounds and colour (107 with the field named). */
static int check_pixel(const ns_options *ns, const palette *pal, const board_put_params *p,
                       char *err, size_t errlen) {
    if (p->x < 0 || p->x >= ns->board_width) {
        snprintf(err, errlen, "x: out of the board (0 to %d)", ns->board_width - 1);
        return -1;
    }
    if (p->y < 0 || p->y >= ns->board_height) {
        snprintf(err, errlen, "y: out of the board (0 to %d)", ns->board_height - 1);
        return -1;
    }
    if (p->color < 0 || p->color >= pal->n) {
        snprintf(err, errlen, "color: not in the palette (0 to %d)", pal->n - 1);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------- puts */

typedef struct put_ctx {             /* a put waiting for the engine */
    int rpc;                         /* 1: rpc_reply(reply); 0: HTTP */
    void *reply;
    http_later *later;
    proto_local *pl;
    int64_t cooldown_ms;             /* the writer's, for the answer */
} put_ctx;

static int put_start(board_app *app, hub_local *hl, const char *channel, const ns_options *ns,
                     const board_put_params *p, const char *user, int64_t cooldown_ms,
                     hub_answer_fn fn, put_ctx *ctx) {
    void *call = hub_call(hl, fn, ctx);
    if (!call) return -1;
    ctx->cooldown_ms = cooldown_ms;
    engine_board_put_req req = {
        .channel = channel, .board = opts_of(ns), .x = (uint32_t)p->x, .y = (uint32_t)p->y,
        .color = (uint32_t)p->color, .user = user, .cooldown_ms = cooldown_ms,
        .now_ms = clock_now_ms(),
    };
    engine *e = app->env->hub->eng;
    e->ops->board_put(e, &req, hub_call_cb, call);
    return 0;
}

/* The result object of an accepted put, or the error's message. */
static void put_result(const engine_result *r, int64_t cooldown_ms, sbuf *sb) {
    sb_puts(sb, "{\"offset\":");
    sb_u64(sb, r->top.offset);
    sb_puts(sb, ",\"epoch\":");
    sb_json_str(sb, r->top.epoch, strlen(r->top.epoch));
    sb_puts(sb, ",\"cooldown_ms\":");
    sb_i64(sb, cooldown_ms);
    sb_putc(sb, '}');
}

static void rpc_put_done(void *ud, engine_result *r) {
    put_ctx *ctx = ud;
    char msg[96];
    if (r->err) {
        METRIC_ADD(ctx->pl->metrics.engine_failures, 1);
        rpc_reply(ctx->reply, ERR_INTERNAL, NULL, 0, engine_strerror(r->err));
    } else if (r->suppressed) {
        snprintf(msg, sizeof(msg), "cooldown: retry after %lld ms", (long long)r->retry_after_ms);
        rpc_reply(ctx->reply, ERR_TOO_MANY_REQUESTS, NULL, 0, msg);
    } else {
        sbuf sb;
        sb_init(&sb);
        put_result(r, ctx->cooldown_ms, &sb);
        if (sb.oom) rpc_reply(ctx->reply, ERR_INTERNAL, NULL, 0, "out of memory");
        else rpc_reply(ctx->reply, 0, sb.p, sb.len, NULL);
        sb_free(&sb);
    }
    engine_result_free(r);
    free(ctx);
}

/* board.put: publish permissions of the namespace, cooldown per user
 * (anonymous clients: per connection). */
static int rpc_board_put(void *ud, const rpc_call *call, sbuf *out, const char **errmsg) {
    board_app *app = ud;
    static _Thread_local char err[160];
    (void)out;
    board_put_params p;
    if (board_parse_put(call->data, call->data_len, &p, err, sizeof(err))) {
        *errmsg = err;
        return ERR_BAD_REQUEST;
    }
    int code = 0;
    const char *why = NULL;
    if (!p.channel[0]) { *errmsg = "channel required"; return ERR_BAD_REQUEST; }
    const ns_options *ns = board_ns(app, p.channel, &code, &why);
    if (!ns) { *errmsg = why; return code; }
    int anon = call->user[0] == '\0';
    if (!ns_allowed(ns->allow_publish_for_client, ns->allow_publish_for_subscriber,
                    ns->allow_publish_for_anonymous, anon, hub_client_sub(call->hc, p.channel) != NULL)) {
        *errmsg = "writing to this board is not allowed";
        return ERR_PERMISSION_DENIED;
    }
    if (check_pixel(ns, palette_of(app, ns), &p, err, sizeof(err))) { *errmsg = err; return ERR_BAD_REQUEST; }
    char user[ENGINE_BOARD_USER_MAX + 1];
    snprintf(user, sizeof(user), "%s%s", anon ? "anonymous:" : "", anon ? call->client : call->user);
    put_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) { *errmsg = "out of memory"; return ERR_INTERNAL; }
    ctx->rpc = 1;
    ctx->reply = call->reply;
    ctx->pl = call->hl->ext;
    if (put_start(app, call->hl, p.channel, ns, &p, user, ns->board_cooldown_ms, rpc_put_done, ctx)) {
        free(ctx);
        *errmsg = "out of memory";
        return ERR_INTERNAL;
    }
    return RPC_LATER;
}

/* ----------------------------------------------------------------- HTTP */

static void http_put_done(void *ud, engine_result *r) {
    put_ctx *ctx = ud;
    sbuf sb;
    sb_init(&sb);
    int status = 200;
    char hdr[96] = "Cache-Control: no-store\r\n";
    if (r->err) {
        METRIC_ADD(ctx->pl->metrics.engine_failures, 1);
        status = 503;
        app_json_error(&sb, ERR_INTERNAL, engine_strerror(r->err), -1);
    } else if (r->suppressed) {
        char msg[96];
        status = 429;
        snprintf(msg, sizeof(msg), "cooldown: retry after %lld ms", (long long)r->retry_after_ms);
        app_json_error(&sb, ERR_TOO_MANY_REQUESTS, msg, r->retry_after_ms);
        snprintf(hdr, sizeof(hdr), "Cache-Control: no-store\r\nRetry-After: %lld\r\n",
                 (long long)((r->retry_after_ms + 999) / 1000));
    } else {
        sb_puts(&sb, "{\"result\":");
        put_result(r, ctx->cooldown_ms, &sb);
        sb_putc(&sb, '}');
    }
    if (sb.oom) { status = 500; sb_free(&sb); sb_init(&sb); }
    http_later_respond(ctx->later, status, "application/json", hdr, sb.p ? sb.p : "", sb.len);
    sb_free(&sb);
    engine_result_free(r);
    free(ctx);
}

static int route_put(board_app *app, conn *c, const http_request *req, const char *channel) {
    int code = 0;
    const char *why = NULL;
    const ns_options *ns = board_ns(app, channel, &code, &why);
    if (!ns) return app_respond_error(c, req, code, why);
    char err[200];
    app_caller who;
    if (app_http_caller(app->env, req, &who, err, sizeof(err)))
        return app_respond_error(c, req, ERR_UNAUTHORIZED, err);
    int api = who.api;
    char user[ENGINE_BOARD_USER_MAX + 1];
    snprintf(user, sizeof(user), "%s", api ? "api" : who.user);
    if (!api && !ns->allow_publish_for_client && !ns->allow_publish_for_subscriber)
        return app_respond_error(c, req, ERR_PERMISSION_DENIED, "writing to this board is not allowed");
    board_put_params p;
    if (board_parse_put((const char *)req->body, req->body_len, &p, err, sizeof(err)) ||
        check_pixel(ns, palette_of(app, ns), &p, err, sizeof(err)))
        return app_respond_error(c, req, ERR_BAD_REQUEST, err);
    put_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx || !(ctx->later = http_later_begin(c, req))) {
        free(ctx);
        return app_respond_error(c, req, ERR_INTERNAL, "out of memory");
    }
    ctx->pl = proto_local_of(c);
    hub_local *hl = c->w->ext;
    if (put_start(app, hl, channel, ns, &p, user, api ? 0 : ns->board_cooldown_ms, http_put_done, ctx)) {
        http_later_respond(ctx->later, 500, "application/json", NULL, "", 0);
        free(ctx);
    }
    return HTTP_ROUTE_LATER;
}

/* ------------------------------------------------------------ snapshots */

typedef struct build_ctx {
    board_app *app;
    int worker;
    char channel[];
} build_ctx;

static void cache_free(void *v) {
    bcache *bc = v;
    for (bwait *w = bc->waits, *n; w; w = n) { n = w->next; free(w); }
    rcbuf_unref(bc->raw);
    rcbuf_unref(bc->png);
    free(bc);
}

/* The representation asked for (encoding the PNG the first time). */
static const rcbuf *body_of(bcache *bc, int png) {
    if (!png) return bc->raw;
    if (bc->png) return bc->png;
    const ns_options *ns = bc->ns;
    sbuf sb;
    sb_init(&sb);
    if (board_png_encode(bc->raw->data, (uint32_t)ns->board_width, (uint32_t)ns->board_height,
                         ns_board_bits(ns), bc->pal->rgb, bc->pal->n, &sb) == 0)
        bc->png = rcbuf_copy(sb.p, sb.len);
    sb_free(&sb);
    return bc->png;
}

/* The response headers of a snapshot into h. */
static void snapshot_headers(const bcache *bc, int png, sbuf *h) {
    const ns_options *ns = bc->ns;
    int max_age = ns_board_max_age_ms(ns) / 1000;
    sb_printf(h, "Cache-Control: public, max-age=%d\r\nETag: \"%s-%llu-%s\"\r\n", max_age,
              bc->epoch, (unsigned long long)bc->offset, png ? "png" : "raw");
    sb_printf(h, "X-Board-Offset: %llu\r\nX-Board-Epoch: %s\r\n", (unsigned long long)bc->offset,
              bc->epoch);
    sb_printf(h, "X-Board-Width: %d\r\nX-Board-Height: %d\r\nX-Board-Bits: %d\r\n",
              ns->board_width, ns->board_height, ns_board_bits(ns));
    sb_printf(h, "X-Board-Palette: %s\r\n", bc->pal->header);
    sb_puts(h, "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: ETag, "
               "X-Board-Offset, X-Board-Epoch, X-Board-Width, X-Board-Height, X-Board-Bits, "
               "X-Board-Palette\r\n");
}

static int etag_matches(const bcache *bc, int png, const char *inm) {
    char tag[96];
    snprintf(tag, sizeof(tag), "\"%s-%llu-%s\"", bc->epoch, (unsigned long long)bc->offset,
             png ? "png" : "raw");
    return inm && inm[0] && strstr(inm, tag) != NULL;
}

/* Answers one GET from the cache: now (c, req) or later (l). */
static void serve(bcache *bc, int png, const char *inm, conn *c, const http_request *req,
                  http_later *l) {
    sbuf h;
    sb_init(&h);
    snapshot_headers(bc, png, &h);
    const char *type = png ? "image/png" : "application/octet-stream";
    const rcbuf *body = etag_matches(bc, png, inm) ? NULL : body_of(bc, png);
    int status = etag_matches(bc, png, inm) ? 304 : body ? 200 : 500;
    const void *p = body ? (const void *)body->data : (const void *)"";
    size_t len = body ? body->len : 0;
    if (h.oom) status = 500;
    if (c) http_respond(c, req, status, type, h.oom ? NULL : h.p, p, len);
    else http_later_respond(l, status, type, h.oom ? NULL : h.p, p, len);
    sb_free(&h);
}

static void built(void *ud, engine_result *r) {
    build_ctx *b = ud;
    bcache *bc = dict_get(b->app->caches[b->worker], b->channel);
    if (bc) {
        bc->building = 0;
        if (!r->err && r->blob) {
            rcbuf_unref(bc->raw);
            rcbuf_unref(bc->png);
            bc->raw = r->blob;
            r->blob = NULL;
            bc->png = NULL;
            bc->offset = r->top.offset;
            memcpy(bc->epoch, r->top.epoch, sizeof(bc->epoch));
            bc->built_ms = clock_now_ms();
        }
        bwait *w = bc->waits;
        bc->waits = NULL;
        for (bwait *n; w; w = n) {
            n = w->next;
            if (bc->raw && !r->err) serve(bc, w->png, w->inm, NULL, NULL, w->later);
            else {
                char msg[200];
                snprintf(msg, sizeof(msg), "{\"error\":{\"code\":100,\"message\":\"snapshot failed: %s\"}}",
                         engine_strerror(r->err));
                http_later_respond(w->later, 503, "application/json", "Cache-Control: no-store\r\n",
                                   msg, strlen(msg));
            }
            free(w);
        }
    }
    engine_result_free(r);
    free(b);
}

static bcache *cache_of(board_app *app, int wid, const char *channel, const ns_options *ns) {
    bcache *bc = dict_get(app->caches[wid], channel);
    if (bc) return bc;
    if (!(bc = calloc(1, sizeof(*bc)))) return NULL;
    bc->ns = ns;
    bc->pal = palette_of(app, ns);
    if (dict_set(app->caches[wid], channel, bc) < 0) { free(bc); return NULL; }
    return bc;
}

/* Asks the engine for the board (the answer comes back to this worker). */
static int rebuild(board_app *app, hub_local *hl, int wid, const char *channel, bcache *bc) {
    size_t len = strlen(channel) + 1;
    build_ctx *b = malloc(sizeof(*b) + len);
    void *call = b ? hub_call(hl, built, b) : NULL;
    if (!call) { free(b); return -1; }
    b->app = app;
    b->worker = wid;
    memcpy(b->channel, channel, len);
    bc->building = 1;
    engine_board_opts o = opts_of(bc->ns);
    engine *e = app->env->hub->eng;
    e->ops->board_snapshot(e, channel, &o, clock_now_ms(), hub_call_cb, call);
    return 0;
}

static int route_get(board_app *app, conn *c, const http_request *req, const char *channel) {
    int code = 0;
    const char *why = NULL;
    const ns_options *ns = board_ns(app, channel, &code, &why);
    if (!ns) return app_respond_error(c, req, code, why);
    size_t fl = 0;
    const char *f = api_query_param(req->query, "format", &fl);
    int png = f && fl == 3 && strncmp(f, "png", 3) == 0;
    if (f && !png && !(fl == 3 && strncmp(f, "raw", 3) == 0))
        return app_respond_error(c, req, ERR_BAD_REQUEST, "format: png or raw");
    const http_header *inm = http_request_header(req, "If-None-Match");
    int wid = c->w->id;
    bcache *bc = cache_of(app, wid, channel, ns);
    if (!bc) return app_respond_error(c, req, ERR_INTERNAL, "out of memory");
    if (bc->raw && clock_now_ms() - bc->built_ms < ns_board_max_age_ms(ns)) {
        serve(bc, png, inm ? inm->value : NULL, c, req, NULL);
        return HTTP_ROUTE_DONE;
    }
    bwait *w = calloc(1, sizeof(*w));
    if (!w || !(w->later = http_later_begin(c, req))) {
        free(w);
        return app_respond_error(c, req, ERR_INTERNAL, "out of memory");
    }
    w->png = png;
    if (inm) snprintf(w->inm, sizeof(w->inm), "%s", inm->value);
    if (!bc->building && rebuild(app, c->w->ext, wid, channel, bc)) {
        http_later_respond(w->later, 500, "text/plain", NULL, "out of memory", 13);
        free(w);
        return HTTP_ROUTE_LATER;
    }
    w->next = bc->waits;
    bc->waits = w;
    return HTTP_ROUTE_LATER;
}

/* -------------------------------------------------------------- routing */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (size bytes). -1 if malformed or too long. */
static int url_decode(const char *s, size_t len, char *out, size_t size) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= len) return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= size) return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

int board_route(conn *c, const http_request *req, void *ud) {
    board_app *app = ud;
    static const char P[] = "/boards/", PX[] = "/pixels";
    if (strncmp(req->path, P, sizeof(P) - 1) != 0) return HTTP_ROUTE_NOT_MINE;
    const char *rest = req->path + sizeof(P) - 1;
    size_t len = strlen(rest);
    int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int is_put = strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0;
    int pixels = len > sizeof(PX) - 1 && strcmp(rest + len - (sizeof(PX) - 1), PX) == 0;
    if (pixels) len -= sizeof(PX) - 1;
    char channel[256];
    if (len == 0 || url_decode(rest, len, channel, sizeof(channel)))
        return app_respond_error(c, req, ERR_BAD_REQUEST, "channel: a board's channel after /boards/");
    if (pixels && is_put) return route_put(app, c, req, channel);
    if (!pixels && is_get) return route_get(app, c, req, channel);
    static const char NA[] = "{\"error\":{\"code\":107,\"message\":\"method not allowed\"}}";
    http_respond(c, req, 405, "application/json", pixels ? "Allow: PUT, POST\r\n" : "Allow: GET, HEAD\r\n",
                 NA, sizeof(NA) - 1);
    return HTTP_ROUTE_DONE;
}

/* ---------------------------------------------------------------- setup */

static int palettes_init(board_app *app) {
    const ns_registry *reg = &app->env->cfg->namespaces;
    app->pals = calloc((size_t)reg->nspaces + 1, sizeof(palette));
    if (!app->pals) return -1;
    for (int i = -1; i < reg->nspaces; i++) {
        const ns_options *ns = i < 0 ? &reg->top : &reg->spaces[i];
        if (!ns_is_board(ns)) continue;
        palette *p = &app->pals[app->npals];
        p->ns = ns;
        p->n = ns_board_palette(ns, p->rgb);
        if (p->n < 2) continue;                     /* refused by the config check */
        size_t o = 0;
        for (int k = 0; k < p->n; k++)
            o += (size_t)snprintf(p->header + o, sizeof(p->header) - o, "%s#%06x", k ? "," : "",
                                  (unsigned)p->rgb[k]);
        app->npals++;
    }
    return 0;
}

board_app *board_app_new(proto_env *env, server *srv) {
    board_app *app = calloc(1, sizeof(*app));
    if (!app) return NULL;
    app->env = env;
    app->nworkers = srv->nworkers;
    app->caches = calloc((size_t)srv->nworkers, sizeof(dict *));
    if (!app->caches || palettes_init(app)) { board_app_free(app); return NULL; }
    for (int i = 0; i < srv->nworkers; i++)
        if (!(app->caches[i] = dict_new())) { board_app_free(app); return NULL; }
    if (rpc_register(&env->rpc, "board.put", rpc_board_put, app)) {
        log_error("board: cannot register the board.put RPC method");
        board_app_free(app);
        return NULL;
    }
    return app;
}

void board_app_free(board_app *app) {
    if (!app) return;
    for (int i = 0; app->caches && i < app->nworkers; i++) dict_free(app->caches[i], cache_free);
    free(app->caches);
    free(app->pals);
    free(app);
}
