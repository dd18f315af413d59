/* rpc: the method registry (see rpc.h). A short fixed table: methods are a
 * handful per module and looked up by a linear scan of interned names. */
#include <string.h>
#include "hub/hub.h"
#include "proto/rpc.h"

#define RPC_MAX 64

static struct { const char *method; rpc_fn fn; void *ud; } methods[RPC_MAX];
static int nmethods;

int rpc_register(const char *method, rpc_fn fn, void *ud) {
    if (nmethods == RPC_MAX) return -1;
    for (int i = 0; i < nmethods; i++)
        if (strcmp(methods[i].method, method) == 0) return -1;
    methods[nmethods].method = method;
    methods[nmethods].fn = fn;
    methods[nmethods].ud = ud;
    nmethods++;
    return 0;
}

static int rpc_time(void *ud, const rpc_call *call, sbuf *out,
                    const char **errmsg) {
    (void)ud; (void)call; (void)errmsg;
    sb_puts(out, "{\"time\":");
    sb_i64(out, hub_now_ms());
    sb_putc(out, '}');
    return 0;
}

int rpc_invoke(const char *method, const rpc_call *call, sbuf *out,
               const char **errmsg) {
    if (strcmp(method, "plaza.time") == 0) return rpc_time(NULL, call, out, errmsg);
    for (int i = 0; i < nmethods; i++)
        if (strcmp(methods[i].method, method) == 0)
            return methods[i].fn(methods[i].ud, call, out, errmsg);
    *errmsg = "method not found";
    return 104;
}

void rpc_reset(void) { nmethods = 0; }
