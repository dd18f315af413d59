/* signin: tokens for the demo pages (see signin.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "apps/app_http.h"
#include "apps/signin.h"
#include "auth/token.h"
#include "core/clock.h"
#include "proto/codes.h"

static int user_ok(const char *s, size_t n) {
    if (n < 1 || n > SIGNIN_USER_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!app_id_char(s[i], 0)) return 0;
    return 1;
}

static int name_ok(const char *s, size_t n) { return app_label_ok(s, n, SIGNIN_NAME_MAX); }

static int color_ok(const char *s, size_t n) {
    if (n != 7 || s[0] != '#') return 0;
    for (int i = 1; i < 7; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i])) return 0;
    return 1;
}

/* The string field, or NULL with err set. */
static const char *field(json_t *o, const char *name, int (*ok)(const char *, size_t),
                         const char *what, char *err, size_t errlen) {
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v)) { snprintf(err, errlen, "%s: required, a string", name); return NULL; }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n || !ok(s, n)) { snprintf(err, errlen, "%s: %s", name, what); return NULL; }
    return s;
}

static int sign_in(const proto_env *env, conn *c, const http_request *req) {
    char err[160];
    json_error_t jerr;
    json_t *o = json_loadb(req->body ? (const char *)req->body : "", req->body_len,
                           JSON_REJECT_DUPLICATES, &jerr);
    const char *user = NULL, *name = NULL, *color = NULL;
    int rc;
    if (!json_is_object(o)) {
        snprintf(err, sizeof(err), "body: expected a JSON object {\"user\",\"name\",\"color\"}");
    } else if ((user = field(o, "user", user_ok, "1 to 64 of A-Z a-z 0-9 _ -", err, sizeof(err))) &&
               (name = field(o, "name", name_ok, "1 to 32 characters, no control characters",
                             err, sizeof(err))) &&
               (color = field(o, "color", color_ok, "#rrggbb", err, sizeof(err)))) {
        err[0] = '\0';
    }
    if (err[0]) { rc = app_respond_error(c, req, ERR_BAD_REQUEST, err); json_decref(o); return rc; }
    json_t *info = json_pack("{s:s, s:s, s:s}", "name", name, "color", color,
                             "region", env->cfg->region);
    char *info_text = info ? json_dumps(info, JSON_COMPACT) : NULL;
    char *token = info_text ? token_sign_conn(env->cfg->client_token_hmac_secret_key, user,
                                              info_text, clock_now_s() + SIGNIN_TTL_S) : NULL;
    sbuf sb;
    sb_init(&sb);
    if (token) {
        sb_puts(&sb, "{\"token\":");
        sb_json_str(&sb, token, strlen(token));
        sb_puts(&sb, ",\"user\":");
        sb_json_str(&sb, user, strlen(user));
        sb_puts(&sb, ",\"name\":");
        sb_json_str(&sb, name, strlen(name));
        sb_puts(&sb, ",\"color\":");
        sb_json_str(&sb, color, strlen(color));
        sb_puts(&sb, ",\"region\":");
        sb_json_str(&sb, env->cfg->region, strlen(env->cfg->region));
        sb_printf(&sb, ",\"expires_in\":%d}", SIGNIN_TTL_S);
        rc = app_respond_json(c, req, 200, &sb);
    } else {
        rc = app_respond_error(c, req, ERR_INTERNAL, "out of memory");
    }
    sb_free(&sb);
    free(token);
    free(info_text);
    json_decref(info);
    json_decref(o);
    return rc;
}

int signin_route(conn *c, const http_request *req, void *ud) {
    const proto_env *env = ud;
    if (strcmp(req->path, "/v1/sign-in") != 0) return HTTP_ROUTE_NOT_MINE;
    if (!env->cfg->client_sign_in)
        return app_respond_error(c, req, ERR_NOT_AVAILABLE,
                                 "sign-in is off (client.sign_in): tokens come from your backend");
    if (strcmp(req->method, "POST") != 0)
        return app_respond_error_status(c, req, 405, ERR_BAD_REQUEST, "method: POST a JSON body");
    return sign_in(env, c, req);
}
