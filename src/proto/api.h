/* api: the server HTTP API for backends (protocol.md A12): POST
 * /api/<method> (or POST /api with {"method","params"}) with a JSON body,
 * authenticated by the API key in X-API-Key, `Authorization: apikey KEY` or
 * ?api_key=. Replies are HTTP 200 with {"result":{...}} or
 * {"error":{"code","message"}}; a missing or wrong key is HTTP 401. */
#ifndef PLAZA_API_H
#define PLAZA_API_H

#include <jansson.h>
#include "hub/hub.h"
#include "net/conn.h"
#include "net/http_reader.h"

/* The route handler for "/api" (ud = hub). */
int api_route(conn *c, const http_request *req, void *ud);

/* Runs one API method on params and writes the reply object
 * ({"result":..} or {"error":..}) into out. Used by the route and by batch.
 * Returns 0, or the error code written. */
struct sbuf;
int api_call(hub *h, const char *method, json_t *params, struct sbuf *out);

#endif
