/* server: binds the listening sockets, starts the workers, and runs the
 * main thread's loop, which only waits for signals and drives the graceful
 * shutdown (see server.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "net/server.h"
#include "net/tls.h"
#include "net/worker.h"
#include "obs/log.h"

/* A socket bound to host:port. The workers' listeners are bound with
 * SO_REUSEPORT (reuseport) so that every worker can have its own and the
 * kernel balances connections between them. Bound without it, the socket is
 * refused a port that another socket listens on, SO_REUSEPORT or not: the
 * probe of port_free. SO_REUSEADDR lets both past TIME_WAIT connections. */
static int bind_socket(const char *host, int port, int reuseport, int *bound_port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        log_error("host \"%s\" is not an IPv4 or IPv6 address", host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { log_error("socket: %s", strerror(errno)); return -1; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    socklen_t sl = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        if (!reuseport && errno == EADDRINUSE)
            log_error("port %d is already in use on %s (another Plaza or another "
                      "program); set reuse_port=true to share it on purpose", port, host);
        else
            log_error("bind %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound_port = ntohs(ss.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* SO_REUSEPORT would let a second Plaza on the same port start silently,
 * the kernel then splitting clients between two nodes that share no state.
 * Unless reuse_port asks for that, the port must be free: 0, or -1 (logged). */
static int port_free(const config *cfg) {
    int port = cfg->port;
    if (cfg->reuse_port || port == 0) return 0;
    int fd = bind_socket(cfg->host, port, 0, &port);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int resolve_web_root(server *srv) {
    char real[PATH_MAX];
    if (!realpath(srv->cfg->web_root, real)) {
        log_warn("web_root \"%s\": %s; static files disabled",
                 srv->cfg->web_root, strerror(errno));
        return 0;
    }
    srv->web_root = strdup(real);
    return srv->web_root ? 0 : -1;
}

static int load_tls(server *srv) {
    const config *cfg = srv->cfg;
    if (!cfg->tls_cert[0]) return 0;
    char err[256];
    srv->tls = tls_ctx_new(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
    if (!srv->tls) { log_error("%s", err); return -1; }
    return 0;
}

static int start_workers(server *srv) {
    const config *cfg = srv->cfg;
    if (port_free(cfg)) return -1;
    int n = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    srv->workers = calloc((size_t)n, sizeof(*srv->workers));
    if (!srv->workers) return -1;
    int port = cfg->port;
    for (int i = 0; i < n; i++) {
        int fd = bind_socket(cfg->host, port, 1, &port);
        if (fd < 0) return -1;
        worker *w = malloc(sizeof(*w));
        if (!w) { close(fd); return -1; }
        srv->workers[i] = w;
        srv->nworkers = i + 1;
        int rc = worker_init(w, srv, i, fd);
        if (rc) { log_error("worker %d: %s", i, uv_strerror(rc)); return -1; }
    }
    srv->port = port;
    return 0;
}

int server_init(server *srv, const config *cfg) {
    memset(srv, 0, sizeof(*srv));
    srv->cfg = cfg;
    srv->ws_close_on_shutdown = WS_CLOSE_GOING_AWAY;
    srv->ws_slow_close_code = WS_CLOSE_POLICY;
    atomic_init(&srv->nconns, 0);
    if (load_tls(srv) || resolve_web_root(srv) || start_workers(srv))
        return -1;
    return 0;
}

int server_add_route(server *srv, const char *prefix, http_route_fn fn,
                     void *ud) {
    if (srv->nroutes == SERVER_MAX_ROUTES) return -1;
    srv->routes[srv->nroutes].prefix = prefix;
    srv->routes[srv->nroutes].fn = fn;
    srv->routes[srv->nroutes].ud = ud;
    srv->nroutes++;
    return 0;
}

void server_set_health(server *srv, health_fn fn, void *ud) {
    srv->health = fn;
    srv->health_ud = ud;
}

int server_add_metrics(server *srv, metrics_render_fn fn, void *ud) {
    if (srv->nmetrics == SERVER_MAX_METRICS) return -1;
    srv->metrics[srv->nmetrics].fn = fn;
    srv->metrics[srv->nmetrics].ud = ud;
    srv->nmetrics++;
    return 0;
}

/* ---- running and shutdown ---- */

static void on_force_stop(uv_timer_t *t) {
    server *srv = t->data;
    log_warn("shutdown timeout: closing remaining connections");
    for (int i = 0; i < srv->nworkers; i++) worker_stop(srv->workers[i]);
}

static void begin_shutdown(server *srv, int signum) {
    if (srv->shutting_down) {
        log_warn("second signal: stopping now");
        on_force_stop(&srv->shutdown_timer);
        return;
    }
    srv->shutting_down = 1;
    log_info("signal %d: shutting down (timeout %d ms)", signum,
             srv->cfg->shutdown_timeout_ms);
    for (int i = 0; i < srv->nworkers; i++) worker_shutdown(srv->workers[i]);
    uv_timer_start(&srv->shutdown_timer, on_force_stop,
                   (uint64_t)srv->cfg->shutdown_timeout_ms, 0);
}

static void on_signal(uv_signal_t *s, int signum) {
    begin_shutdown(s->data, signum);
}

static void on_worker_done(uv_async_t *a) {
    server *srv = a->data;
    if (atomic_load(&srv->workers_running) == 0)
        uv_stop(&srv->main_loop);
}

static void worker_thread(void *arg) {
    worker *w = arg;
    inbox_set_owner(&w->ib);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    atomic_fetch_sub(&w->srv->workers_running, 1);
    uv_async_send(w->srv->workers_done);
}

int server_run(server *srv) {
    uv_loop_init(&srv->main_loop);
    uv_signal_init(&srv->main_loop, &srv->sigint);
    uv_signal_init(&srv->main_loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_timer_init(&srv->main_loop, &srv->shutdown_timer);
    srv->shutdown_timer.data = srv;
    uv_async_t done;
    uv_async_init(&srv->main_loop, &done, on_worker_done);
    done.data = srv;
    srv->workers_done = &done;
    atomic_store(&srv->workers_running, srv->nworkers);
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_create(&srv->workers[i]->thread, worker_thread, srv->workers[i]);
    log_info("plaza listening on %s:%d (%d workers%s)", srv->cfg->host,
             srv->port, srv->nworkers, srv->tls ? ", TLS" : "");
    uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    for (int i = 0; i < srv->nworkers; i++) worker_join(srv->workers[i]);
    uv_close((uv_handle_t *)&done, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->shutdown_timer, NULL);
    uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->main_loop);
    srv->workers_done = NULL;
    log_info("plaza stopped");
    return srv->exit_code;
}

void server_free(server *srv) {
    for (int i = 0; i < srv->nworkers; i++) {
        worker_destroy(srv->workers[i]);
        free(srv->workers[i]);
    }
    free(srv->workers);
    tls_ctx_free(srv->tls);
    free(srv->web_root);
    srv->workers = NULL;
    srv->nworkers = 0;
}
