/* api: the server HTTP API for backends (protocol.md A12): POST
 * /api/<method> (or POST /api with {"method","params"}) with a JSON body,
 * authenticated by the API key in X-API-Key, `Authorization: apikey KEY` or
 * ?api_key=. Replies are HTTP 200 with {"result":{...}} or
 * {"error":{"code","message"}}; a missing or wrong key is HTTP 401.
 * Methods that ask the engine answer when it has answered (the HTTP
 * response is given later, see http_later). */
#ifndef PLAZA_API_H
#define PLAZA_API_H

#include <jansson.h>
#include "hub/hub.h"
#include "net/conn.h"
#include "net/http_reader.h"

/* 1 if the request carries the API key (X-API-Key, `Authorization: apikey
 * KEY` or ?api_key=), or api.insecure is set. */
int api_key_ok(const config *cfg, const http_request *req);

/* The value of a query parameter (not decoded; *len bytes), or NULL. */
const char *api_query_param(const char *query, const char *name, size_t *len);

/* The route handler for "/api" (ud = hub). */
int api_route(conn *c, const http_request *req, void *ud);

#endif
