/* api_int: what the files of the server API share (api.c: the HTTP side,
 * dispatch, batch and the channel methods; api_map.c: the map methods):
 * the request context and the helpers that read params and fail with a
 * message. Not for use outside src/proto/api*.c. */
#ifndef PLAZA_API_INT_H
#define PLAZA_API_INT_H

#include <jansson.h>
#include "core/sbuf.h"
#include "hub/hub.h"
#include "net/http_conn.h"
#include "proto/client.h"

#define API_LATER (-1)      /* a method will call a->done itself */

typedef struct api_ctx api_ctx;
typedef void (*api_done_fn)(api_ctx *a, int rc);   /* rc 0: *a->res holds the result */

struct api_ctx {
    hub *h;
    hub_local *hl;            /* the worker answering */
    proto_local *pl;
    json_t *p;                /* params of the method running */
    sbuf *res;                /* its result object goes here */
    api_done_fn done;         /* and its end here */
    char msg[208];            /* error message when a method fails */
    int engine_err;           /* the engine's error, when that is why */
    /* the request */
    json_t *body, *empty;     /* the request; {} for a legacy call without params */
    http_later *later;
    int in_route, finished, status;
    sbuf top, out;
    /* broadcast */
    json_t *chs;
    size_t bi;
    char *data;
    size_t data_len;
    int skip, bstep_sync, in_bstep;
    sbuf bone, *bres;
    api_done_fn bdone;
    /* batch */
    json_t *cmds;
    size_t ci;
    int cstep_sync, in_cstep;
    sbuf cone, *cres;
    api_done_fn cdone;
};

/* Sets the error message (fmt has one %s: field) and returns code. */
int api_fail(api_ctx *a, int code, const char *fmt, const char *field);
/* An engine failure: error 100 "<what> failed: <reason>", counted. */
int api_engine_fail(api_ctx *a, const char *what, int err);
/* Params: a missing field is fine unless required; a mistyped one is 107. */
int api_get_str(api_ctx *a, const char *field, int required, const char **out);
int api_get_int(api_ctx *a, const char *field, int64_t *out);
int api_get_bool(api_ctx *a, const char *field, int *out);
/* The channel name, validated, and its namespace (107 / 102). */
int api_get_channel(api_ctx *a, const char *ch, const ns_options **ns);
/* `data` and `tags` as push_payload's data part (malloc'd). */
int api_data_field(api_ctx *a, char **data, size_t *len);
/* An engine call whose answer runs fn on this worker (NULL: out of memory). */
void *api_engine_call(api_ctx *a, hub_answer_fn fn);

/* history's `since` {offset, epoch} into req (107 if malformed), and its
 * answer ({publications, offset, epoch}; 112 on another epoch): shared with
 * map_read_stream, which is history on a map channel. */
int api_history_since(api_ctx *a, engine_history_req *req);
void api_history_answer(void *ud, engine_result *r);

/* api_map.c */
int api_map_publish(api_ctx *a);
int api_map_remove(api_ctx *a);
int api_map_read_state(api_ctx *a);
int api_map_read_stream(api_ctx *a);
int api_map_stats(api_ctx *a);
int api_map_clear(api_ctx *a);

#endif
