/* app_http: what the HTTP faces of the apps (boards, sign-in, spaces)
 * share: JSON errors {"error":{"code","message"}} with the HTTP status of a
 * protocol error code, and who calls: the server API key, or a user's
 * connection token (Authorization: Bearer <token>). */
#ifndef PLAZA_APP_HTTP_H
#define PLAZA_APP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "core/sbuf.h"
#include "net/http_reader.h"
#include "net/server.h"
#include "proto/client.h"

/* A label people see (a name, a title): UTF-8 (checked by the JSON
 * parser) of 1 to max_chars characters, no control characters, not only
 * spaces. */
int app_label_ok(const char *s, size_t len, size_t max_chars);

/* A character of the apps' ids (users, spaces, lots): A-Z a-z 0-9 _ -
 * and, with dot, '.'. */
int app_id_char(char ch, int dot);

/* The HTTP status of a protocol error code (101 -> 401, 103 -> 403, ...). */
int app_http_status(int code);

/* {"error":{"code":C,"message":M[,"retry_after":R]}} (retry_after < 0: none). */
void app_json_error(sbuf *sb, int code, const char *msg, int64_t retry_after);

/* Answers req with that error; returns HTTP_ROUTE_DONE. */
int app_respond_error(conn *c, const http_request *req, int code, const char *msg);

/* The same with another HTTP status (405 for a wrong method). */
int app_respond_error_status(conn *c, const http_request *req, int status, int code,
                             const char *msg);

/* Answers req with 200 (or status) and the JSON body; HTTP_ROUTE_DONE. */
int app_respond_json(conn *c, const http_request *req, int status, const sbuf *body);

typedef struct app_caller {
    int api;                     /* 1: the server API key */
    char user[256];              /* the token's user ("" with api) */
    char name[128];              /* the token's info.name, or "" */
} app_caller;

/* Who sent req: 0, or -1 with a message for a 401 in err (no credentials,
 * an invalid or expired token, an anonymous token). */
int app_http_caller(const proto_env *env, const http_request *req, app_caller *out,
                    char *err, size_t errlen);

#endif
