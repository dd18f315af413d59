/* rpc: a registry of RPC methods clients call with the `rpc` command.
 * Modules (boards, shared state) register their methods at start-up,
 * before the workers run; the registry is read-only afterwards (no lock).
 * Each server owns its registry (proto_env.rpc): no process-wide table.
 * Unknown method -> error 108 (not available), as Centrifugo answers when no
 * RPC handler serves it. Built in: "plaza.time" returns
 * {"time": <server unix ms>} so a client can estimate its clock offset for
 * latency measurements. */
#ifndef PLAZA_RPC_H
#define PLAZA_RPC_H

#include <stddef.h>
#include "core/sbuf.h"

struct hub_local;
struct hub_client;

typedef struct rpc_call {
    const char *user;            /* caller's user id ("" = anonymous) */
    const char *client;          /* caller's client id */
    const char *data;            /* raw JSON params, or NULL */
    size_t data_len;
    struct hub_local *hl;        /* the caller's worker (engine answers come back to it) */
    const struct hub_client *hc; /* the caller (its subscriptions) */
    void *reply;                 /* for rpc_reply, after RPC_LATER */
} rpc_call;

#define RPC_LATER (-1)

/* Writes the result's raw JSON data into out and returns 0, or returns an
 * error code (e.g. 107 bad request, 103 permission denied) with a message
 * (plain text, no quotes), or RPC_LATER: the method answers later, once,
 * with rpc_reply(call->reply, ...) on the caller's worker (hub_call brings
 * an engine answer there); the caller's commands wait until then. */
typedef int (*rpc_fn)(void *ud, const rpc_call *call, sbuf *out,
                      const char **errmsg);

#define RPC_MAX 64

typedef struct rpc_registry {
    struct { const char *method; rpc_fn fn; void *ud; } methods[RPC_MAX];
    int n;
} rpc_registry;

/* An empty registry (plaza.time is always there). */
void rpc_init(rpc_registry *r);

/* Adds a method (method is kept by pointer). -1 if full or taken. */
int rpc_register(rpc_registry *r, const char *method, rpc_fn fn, void *ud);

/* Calls method. Returns 0, an error code, 108 if unknown, or RPC_LATER. */
int rpc_invoke(const rpc_registry *r, const char *method, const rpc_call *call,
               sbuf *out, const char **errmsg);

/* The later answer of a method that returned RPC_LATER: code 0 with data
 * (raw JSON; NULL = null), or an error code with a message (plain text, or
 * NULL). Implemented by the client protocol (client_ops.c). */
void rpc_reply(void *reply, int code, const char *data, size_t len, const char *msg);

#endif
