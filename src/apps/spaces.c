/* spaces: the HTTP presence API (see spaces.h): a thin face over the
 * presence map that the WebSocket subscribers of the space are in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "apps/app_http.h"
#include "apps/spaces.h"
#include "core/clock.h"
#include "hub/hub.h"
#include "net/http_conn.h"
#include "net/worker.h"
#include "proto/codes.h"
#include "proto/push.h"

typedef struct space_req {           /* a parsed path */
    char space[SPACES_NAME_MAX + 1];
    char user[SPACES_NAME_MAX + 1];  /* "" for the list */
    char channel[2 * SPACES_NAME_MAX + 8];     /* ns:space */
    char map[4 * SPACES_NAME_MAX + 16];        /* prefix + channel */
    char key[SPACES_NAME_MAX + 8];             /* http:<user> */
    const ns_options *map_ns;
} space_req;

typedef struct later_ctx {
    http_later *later;
    int put;                         /* PUT: 201/200 by suppressed */
    int list;                        /* GET: the entries */
    int64_t ttl_ms;
} later_ctx;

/* Copies one path segment of 1..64 name characters; returns its end or NULL. */
static const char *segment(const char *p, char *out) {
    size_t n = 0;
    while (p[n] && p[n] != '/') {
        char ch = p[n];
        if (n >= SPACES_NAME_MAX || !app_id_char(ch, 1)) {
            out[0] = '\0';
            return NULL;
        }
        out[n] = ch;
        n++;
    }
    out[n] = '\0';
    if (!n) return NULL;
    return p + n;
}

int spaces_parse_path(const char *path, char *space, char *user, const char **err) {
    space[0] = user[0] = '\0';
    if (strncmp(path, SPACES_HTTP_PREFIX, strlen(SPACES_HTTP_PREFIX)) != 0) {
        *err = "path: /v1/spaces/<space>/users[/<user>]";
        return -1;
    }
    const char *p = segment(path + strlen(SPACES_HTTP_PREFIX), space);
    if (!p) { *err = "space: 1 to 64 of A-Z a-z 0-9 _ - ."; return -1; }
    if (strncmp(p, "/users", 6) != 0 || (p[6] && p[6] != '/')) {
        space[0] = '\0';
        *err = "path: /v1/spaces/<space>/users[/<user>]";
        return -1;
    }
    p += 6;
    if (*p == '/' && p[1] && (!(p = segment(p + 1, user)) || *p)) {
        space[0] = user[0] = '\0';
        *err = "user: 1 to 64 of A-Z a-z 0-9 _ - .";
        return -1;
    }
    return 0;
}

/* The path, and the channels it names, into r; 0, or -1 with err. */
static int parse_path(const proto_env *env, const http_request *req, space_req *r,
                      const char **err) {
    memset(r, 0, sizeof(*r));
    if (spaces_parse_path(req->path, r->space, r->user, err)) return -1;
    const config *cfg = env->cfg;
    const ns_registry *reg = &cfg->namespaces;
    snprintf(r->channel, sizeof(r->channel), "%s:%s", cfg->spaces_namespace, r->space);
    const ns_options *ns = ns_lookup(reg, r->channel);
    if (!ns) { *err = "spaces.namespace is not a namespace"; return -1; }   /* config prevents it */
    snprintf(r->map, sizeof(r->map), "%s%s", ns->map_clients_presence_channel_prefix, r->channel);
    r->map_ns = ns_lookup(reg, r->map);
    if (!r->map_ns || !ns_channel_valid(reg, r->map, strlen(r->map))) {
        *err = "space: its channel name is too long";
        return -1;
    }
    snprintf(r->key, sizeof(r->key), "http:%s", r->user);
    return 0;
}


/* ---- answers ---- */

static void respond_later(later_ctx *ctx, int status, sbuf *sb) {
    if (sb->oom) { status = 503; sb_free(sb); sb_init(sb); app_json_error(sb, ERR_INTERNAL, "out of memory", -1); }
    http_later_respond(ctx->later, status, "application/json", "Cache-Control: no-store\r\n",
                       sb->p ? sb->p : "", sb->len);
}

/* Every answer: an engine failure is 503; else the result of the request. */
static void answered(void *ud, engine_result *res) {
    later_ctx *ctx = ud;
    sbuf sb;
    sb_init(&sb);
    int status = 200;
    if (res->err) {
        status = 503;
        app_json_error(&sb, ERR_INTERNAL, engine_strerror(res->err), -1);
    } else if (ctx->list) {
        sb_puts(&sb, "{\"result\":{\"users\":");
        push_write_publications(&sb, res->pubs, res->npubs);
        sb_puts(&sb, "}}");
    } else if (ctx->put) {
        int created = !res->suppressed;
        status = created ? 201 : 200;
        sb_printf(&sb, "{\"result\":{\"created\":%s,\"ttl_ms\":%lld}}", created ? "true" : "false",
                  (long long)ctx->ttl_ms);
    } else {
        sb_puts(&sb, "{\"result\":{}}");
    }
    respond_later(ctx, status, &sb);
    sb_free(&sb);
    engine_result_free(res);
    free(ctx);
}

/* ---- requests ---- */

/* The entry's payload: data = the body (compacted), info = {user, client}. */
static rcbuf *put_payload(const http_request *req, const space_req *r, const char **err) {
    json_error_t jerr;
    if (req->body_len > SPACES_DATA_MAX) { *err = "body: at most 4096 bytes of JSON"; return NULL; }
    json_t *o = json_loadb(req->body ? (const char *)req->body : "", req->body_len,
                           JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        *err = "body: expected a JSON object (the user's display data, e.g. {\"name\":\"Ann\"})";
        return NULL;
    }
    char *data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sbuf info;
    sb_init(&info);
    push_client_info(&info, r->user, r->key, NULL, 0, NULL, 0);
    rcbuf *payload = data && !info.oom ? push_payload(data, strlen(data), info.p, info.len) : NULL;
    free(data);
    sb_free(&info);
    if (!payload) *err = "out of memory";
    return payload;
}

int spaces_route(conn *c, const http_request *req, void *ud) {
    const proto_env *env = ud;
    if (strncmp(req->path, SPACES_HTTP_PREFIX, strlen(SPACES_HTTP_PREFIX)) != 0) return HTTP_ROUTE_NOT_MINE;
    if (!env->cfg->spaces_namespace[0])
        return app_respond_error(c, req, ERR_NOT_AVAILABLE,
                                 "the spaces API is off (spaces.namespace is empty)");
    space_req r;
    const char *why = NULL;
    if (parse_path(env, req, &r, &why)) return app_respond_error(c, req, ERR_BAD_REQUEST, why);
    int get = strcmp(req->method, "GET") == 0, put = strcmp(req->method, "PUT") == 0;
    int del = strcmp(req->method, "DELETE") == 0;
    if (r.user[0] ? !(put || del) : !get)
        return app_respond_error_status(c, req, 405, ERR_BAD_REQUEST, r.user[0]
                                 ? "method: PUT or DELETE a user" : "method: GET the users");
    char err[200];
    app_caller who;
    if (app_http_caller(env, req, &who, err, sizeof(err)))
        return app_respond_error(c, req, ERR_UNAUTHORIZED, err);
    if (!who.api && r.user[0] && strcmp(who.user, r.user) != 0)
        return app_respond_error(c, req, ERR_PERMISSION_DENIED,
                                 "a user's token may put and delete only that user");
    rcbuf *payload = NULL;
    if (put && !(payload = put_payload(req, &r, &why)))
        return app_respond_error(c, req, ERR_BAD_REQUEST, why);
    later_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx || !(ctx->later = http_later_begin(c, req))) {
        free(ctx);
        rcbuf_unref(payload);
        return app_respond_error(c, req, ERR_INTERNAL, "out of memory");
    }
    void *call = hub_call(c->w->ext, answered, ctx);
    if (!call) {
        http_later_respond(ctx->later, 503, "application/json", NULL, "", 0);
        free(ctx);
        rcbuf_unref(payload);
        return HTTP_ROUTE_LATER;
    }
    ctx->put = put;
    ctx->list = get;
    ctx->ttl_ms = r.map_ns->map_key_ttl_ms;
    engine *e = env->hub->eng;
    int64_t now = clock_now_ms();
    if (get) {
        engine_map_state_req sr = {.channel = r.map, .limit = -1, .now_ms = now};
        e->ops->map_state(e, &sr, hub_call_cb, call);
    } else {
        engine_map_write_req wr = {
            .channel = r.map, .key = r.key, .key_len = strlen(r.key), .remove = del,
            .payload = payload, .map = proto_map_opts(r.map_ns),
            .key_mode = put ? ENGINE_KEY_IF_NEW : ENGINE_KEY_ANY, .refresh_ttl_on_suppress = put,
            .now_ms = now,
        };
        e->ops->map_write(e, &wr, hub_call_cb, call);
    }
    rcbuf_unref(payload);
    return HTTP_ROUTE_LATER;
}
