/* app_http: errors and callers of the apps' HTTP routes (see app_http.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "apps/app_http.h"
#include "auth/token.h"
#include "core/clock.h"
#include "net/http_conn.h"
#include "proto/api.h"
#include "proto/codes.h"

int app_label_ok(const char *s, size_t len, size_t max_chars) {
    size_t chars = 0;
    int visible = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) return 0;
        if ((ch & 0xc0) != 0x80) chars++;
        if (ch != ' ') visible = 1;
    }
    return visible && chars >= 1 && chars <= max_chars;
}

int app_id_char(char ch, int dot) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || (dot && ch == '.');
}

int app_http_status(int code) {
    switch (code) {
    case ERR_UNAUTHORIZED: return 401;
    case ERR_PERMISSION_DENIED: return 403;
    case ERR_UNKNOWN_CHANNEL: case ERR_NOT_AVAILABLE: return 404;
    case ERR_TOO_MANY_REQUESTS: return 429;
    case ERR_INTERNAL: return 503;
    default: return 400;
    }
}

void app_json_error(sbuf *sb, int code, const char *msg, int64_t retry_after) {
    sb_printf(sb, "{\"error\":{\"code\":%d,\"message\":", code);
    sb_json_str(sb, msg, strlen(msg));
    if (retry_after >= 0) { sb_puts(sb, ",\"retry_after\":"); sb_i64(sb, retry_after); }
    sb_puts(sb, "}}");
}

int app_respond_json(conn *c, const http_request *req, int status, const sbuf *body) {
    if (body->oom) {
        static const char oom[] = "{\"error\":{\"code\":100,\"message\":\"out of memory\"}}";
        http_respond(c, req, 503, "application/json", "Cache-Control: no-store\r\n", oom,
                     sizeof(oom) - 1);
        return HTTP_ROUTE_DONE;
    }
    http_respond(c, req, status, "application/json", "Cache-Control: no-store\r\n",
                 body->p ? body->p : "", body->len);
    return HTTP_ROUTE_DONE;
}

int app_respond_error_status(conn *c, const http_request *req, int status, int code,
                             const char *msg) {
    sbuf sb;
    sb_init(&sb);
    app_json_error(&sb, code, msg, -1);
    app_respond_json(c, req, status, &sb);
    sb_free(&sb);
    return HTTP_ROUTE_DONE;
}

int app_respond_error(conn *c, const http_request *req, int code, const char *msg) {
    return app_respond_error_status(c, req, app_http_status(code), code, msg);
}

int app_http_caller(const proto_env *env, const http_request *req, app_caller *out,
                    char *err, size_t errlen) {
    const config *cfg = env->cfg;
    memset(out, 0, sizeof(*out));
    if (cfg->api_key[0] && api_key_ok(cfg, req)) { out->api = 1; return 0; }
    const http_header *auth = http_request_header(req, "Authorization");
    if (!auth || auth->value_len <= 7 || strncasecmp(auth->value, "Bearer ", 7) != 0) {
        snprintf(err, errlen, "unauthorized: send the API key or a user's connection token "
                 "(Authorization: Bearer <token>)");
        return -1;
    }
    conn_token t;
    char why[120];
    if (token_verify_conn(env->keys, auth->value + 7, clock_now_s(), &t, why, sizeof(why))) {
        snprintf(err, errlen, "unauthorized: %s", why);
        return -1;
    }
    int ok = t.user[0] != '\0' && strlen(t.user) < sizeof(out->user);
    if (ok) snprintf(out->user, sizeof(out->user), "%s", t.user);
    json_t *info = t.info ? json_loadb(t.info, t.info_len, 0, NULL) : NULL;
    const char *name = json_string_value(json_object_get(info, "name"));
    if (ok && name && strlen(name) < sizeof(out->name)) snprintf(out->name, sizeof(out->name), "%s", name);
    json_decref(info);
    conn_token_free(&t);
    if (!ok) snprintf(err, errlen, "unauthorized: an anonymous token (no sub) cannot do this");
    return ok ? 0 : -1;
}
