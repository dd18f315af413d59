/* ws_echo: the test/debug echo handler (see ws_echo.h). */
#include <stdlib.h>
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

/* A broadcast for one worker: a task node carrying a message reference. */
typedef struct echo_task {
    task t;
    worker *w;
    ws_msg *m;
} echo_task;

static void deliver(worker *w, ws_msg *m) {
    worker_each_conn(w, deliver_one, m);
    ws_msg_unref(m);
}

static void deliver_task(task *t) {
    echo_task *et = TASK_OWNER(t, echo_task, t);
    deliver(et->w, et->m);
    free(et);
}

static void broadcast(conn *c, const uint8_t *data, size_t len) {
    ws_msg *m = ws_msg_new(WS_OP_TEXT, data, len);
    if (!m) { ws_conn_close(c, WS_CLOSE_INTERNAL, "out of memory"); return; }
    server *srv = c->w->srv;
    /* The sender's own worker delivers inline; the others by their inbox. */
    for (int i = 0; i < srv->nworkers; i++) {
        if (srv->workers[i] == c->w) continue;
        echo_task *et = malloc(sizeof(*et));
        if (!et) continue;            /* a debug handler: that worker misses it */
        et->t.run = deliver_task;
        et->w = srv->workers[i];
        et->m = ws_msg_ref(m);
        inbox_post(&et->w->ib, &et->t);
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
