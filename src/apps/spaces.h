/* spaces: the HTTP presence API, for clients that cannot hold a socket
 * (a server-side job, a device that polls). A space <s> is the channel
 * <spaces.namespace>:<s>; its presence map (the namespace's
 * map_clients_presence_channel_prefix) lists the WebSocket subscribers
 * (key = client id, info = ClientInfo) and, next to them, the users put
 * here (key = "http:<user>", data = the display data, info = {user,
 * client: the key}), so one live list shows both. Entries expire by the
 * map's key TTL unless put again.
 *
 *   PUT    /v1/spaces/<s>/users/<user>  body: a JSON object (display data)
 *          201 {"result":{"created":true,"ttl_ms":N}}, or 200 with
 *          created:false when the entry was there (a heartbeat: its TTL
 *          starts again; the display data stays that of the first put)
 *   DELETE /v1/spaces/<s>/users/<user>  200 {"result":{}}
 *   GET    /v1/spaces/<s>/users         200 {"result":{"users":[entry...]}}
 *          each entry as the map's state has it: key, info, data (HTTP
 *          entries), offset, time (when it was first written: since when)
 *
 * Callers: the server API key, or a user's connection token (Bearer),
 * which may put and delete only its own user. Spaces and users are 1 to
 * 64 of A-Z a-z 0-9 _ - . (no decoding in paths). */
#ifndef PLAZA_SPACES_H
#define PLAZA_SPACES_H

#include "net/http_reader.h"
#include "net/server.h"

#define SPACES_NAME_MAX 64
#define SPACES_DATA_MAX 4096

#define SPACES_HTTP_PREFIX "/v1/spaces/"

/* Splits /v1/spaces/<space>/users[/<user>] into space and user ("" for
 * the list), each 1 to SPACES_NAME_MAX of A-Z a-z 0-9 _ - . and buffers
 * of SPACES_NAME_MAX + 1. 0, or -1 with err naming the part (both left
 * empty). */
int spaces_parse_path(const char *path, char *space, char *user, const char **err);

/* The route handler for SPACES_HTTP_PREFIX (ud = the proto_env). */
int spaces_route(conn *c, const http_request *req, void *ud);

#endif
