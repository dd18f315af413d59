/* rpc: the method registry (see rpc.h). A short fixed table: methods are a
 * handful per module and looked up by a linear scan. */
#include <string.h>
#include "core/clock.h"
#include "proto/codes.h"
#include "proto/rpc.h"

void rpc_init(rpc_registry *r) { r->n = 0; }

int rpc_register(rpc_registry *r, const char *method, rpc_fn fn, void *ud) {
    if (r->n == RPC_MAX || strcmp(method, "plaza.time") == 0) return -1;
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->methods[i].method, method) == 0) return -1;
    r->methods[r->n].method = method;
    r->methods[r->n].fn = fn;
    r->methods[r->n].ud = ud;
    r->n++;
    return 0;
}

static int rpc_time(sbuf *out) {
    sb_puts(out, "{\"time\":");
    sb_i64(out, clock_now_ms());
    sb_putc(out, '}');
    return 0;
}

int rpc_invoke(const rpc_registry *r, const char *method, const rpc_call *call,
               sbuf *out, const char **errmsg) {
    if (strcmp(method, "plaza.time") == 0) return rpc_time(out);
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->methods[i].method, method) == 0)
            return r->methods[i].fn(r->methods[i].ud, call, out, errmsg);
    *errmsg = "no handler for this method";
    return ERR_NOT_AVAILABLE;    /* not available: as Centrifugo answers without an RPC handler */
}
