/* signin: POST /v1/sign-in, a token for the user and name a person
 * chooses, so that demo pages (web/) have users without a backend of their
 * own. On only with client.sign_in, which anyone-can-be-anyone makes a
 * demo and development feature: in production your backend signs tokens.
 *
 *   POST /v1/sign-in {"user":"u-1a2b","name":"Ann","color":"#e50000"}
 *   200 {"token":"<JWT>","user","name","color","region","expires_in":86400}
 *
 * The token is HS256 with client.token_hmac_secret_key: sub = user, info =
 * {"name","color","region"} (region: this node's), so presence entries,
 * join/leave and publications carry the name and colour in conn_info.
 * Errors: 400 naming the field, 404 while client.sign_in is off. */
#ifndef PLAZA_SIGNIN_H
#define PLAZA_SIGNIN_H

#include "net/http_reader.h"
#include "net/server.h"

#define SIGNIN_TTL_S 86400
#define SIGNIN_USER_MAX 64
#define SIGNIN_NAME_MAX 32         /* characters */

/* The route handler for "/v1/sign-in" (ud = the proto_env). */
int signin_route(conn *c, const http_request *req, void *ud);

#endif
