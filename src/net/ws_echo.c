/* ws_echo: the test/debug echo handler (see ws_echo.h). */
#include <string.h>
#include "net/server.h"
#include "net/worker.h"
#include "net/ws_conn.h"
#include "net/ws_echo.h"
#include "obs/log.h"

#define BROADCAST "broadcast:"

static void deliver_one(conn *c, void *arg) {
    if (!c->closed && c->kind == CONN_WS && c->handler == &ws_echo_handler)
        ws_send_msg(c, arg);
}

static void deliver(worker *w, void *arg) {
    ws_msg *m = arg;
    worker_each_conn(w, deliver_one, m);
    ws_msg_unref(m);
}

static void *ref_for_worker(void *ctx, int id) {
    (void)id;
    return ws_msg_ref(ctx);
}

static void broadcast(conn *c, const uint8_t *data, size_t len) {
    ws_msg *m = ws_msg_new(WS_OP_TEXT, data, len);
    if (!m) { ws_conn_close(c, WS_CLOSE_INTERNAL, "out of memory"); return; }
    server *srv = c->w->srv;
    /* The sender's own worker delivers inline; the others by their inbox. */
    for (int i = 0; i < srv->nworkers; i++) {
        if (srv->workers[i] == c->w) continue;
        ws_msg *ref = ref_for_worker(m, i);
        if (worker_post(srv->workers[i], deliver, ref) != 0) ws_msg_unref(ref);
    }
    deliver(c->w, m);
}

static void on_message(conn *c, const uint8_t *data, size_t len, int binary) {
    size_t bl = sizeof(BROADCAST) - 1;
    if (!binary && len >= bl && memcmp(data, BROADCAST, bl) == 0) {
        broadcast(c, data + bl, len - bl);
        return;
    }
    ws_send(c, binary ? WS_OP_BINARY : WS_OP_TEXT, data, len);
}

const ws_handler ws_echo_handler = {
    .on_open = NULL,
    .on_message = on_message,
    .on_close = NULL,
};
