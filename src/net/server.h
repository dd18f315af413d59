/* server: the set of workers and what they share: configuration, the TLS
 * context, the WebSocket handler, the static files root, the global
 * connection count and shutdown. Started and stopped from the main thread. */
#ifndef PLAZA_SERVER_H
#define PLAZA_SERVER_H

#include <stdatomic.h>
#include <uv.h>
#include "core/config.h"
#include "net/conn.h"

struct worker;
struct tls_ctx;
struct http_request;

/* An HTTP handler: answers req on c and returns HTTP_ROUTE_DONE, or
 * returns HTTP_ROUTE_NOT_MINE if the path is not its own, or
 * HTTP_ROUTE_LATER after http_later_begin (it answers later). */
enum { HTTP_ROUTE_NOT_MINE = 0, HTTP_ROUTE_DONE = 1, HTTP_ROUTE_LATER = 2 };
typedef int (*http_route_fn)(conn *c, const struct http_request *req,
                             void *ud);

#define SERVER_MAX_ROUTES 16
#define SERVER_MAX_METRICS 4

struct metrics_text;
typedef void (*metrics_render_fn)(struct metrics_text *t, void *ud);

/* Whether the layers above are healthy: 0, or -1 with a short reason in
 * why (any thread: it runs on the worker answering /healthz). */
typedef int (*health_fn)(void *ud, char *why, size_t size);

typedef struct server {
    const config *cfg;
    int nworkers;
    struct worker **workers;
    struct tls_ctx *tls;
    const ws_handler *ws_handler;         /* on /connection/websocket */
    int ws_close_on_shutdown;             /* close code sent at shutdown */
    int ws_slow_close_code;               /* close code for slow consumers */
    struct { const char *prefix; http_route_fn fn; void *ud; } routes[SERVER_MAX_ROUTES];
    int nroutes;
    struct { metrics_render_fn fn; void *ud; } metrics[SERVER_MAX_METRICS];
    int nmetrics;                         /* extra /metrics sections */
    health_fn health;                     /* /healthz asks it (NULL: always ok) */
    void *health_ud;
    char *web_root;                       /* realpath of cfg->web_root, or NULL */
    atomic_int nconns;                    /* all workers */
    int port;                             /* the bound port */
    uv_loop_t main_loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t shutdown_timer;
    int shutting_down;
    atomic_int workers_running;           /* worker threads still in uv_run */
    uv_async_t *workers_done;             /* a worker's loop returned */
    int exit_code;
} server;

/* Prepares srv from cfg (binds the port, loads TLS). Returns 0, or -1 with
 * the error logged. */
int server_init(server *srv, const config *cfg);

/* Adds an HTTP route for paths starting with prefix (checked before static
 * files). Call before server_run. */
int server_add_route(server *srv, const char *prefix, http_route_fn fn,
                     void *ud);

/* Adds a section to /metrics. Call before server_run. */
int server_add_metrics(server *srv, metrics_render_fn fn, void *ud);

/* /healthz answers 200 "ok", or 503 "degraded: <why>" when fn says so. */
void server_set_health(server *srv, health_fn fn, void *ud);

/* Runs until SIGINT/SIGTERM and a graceful shutdown. Returns the exit code. */
int server_run(server *srv);

void server_free(server *srv);

#endif
