/* main: the command line. `plaza serve` loads the configuration (defaults,
 * then the JSON file, then PLAZA_* variables, then flags), starts the server
 * and runs it until SIGINT/SIGTERM; `plaza checkconfig FILE` validates a
 * file with the PLAZA_* variables applied; `plaza backup`, `plaza restore`
 * and `plaza store check|repair` work on the durable store (cmd_store.c);
 * `plaza version` prints the version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include "apps/auction.h"
#include "apps/board.h"
#include "apps/signin.h"
#include "apps/spaces.h"
#include "core/config.h"
#include "core/version.h"
#include "auth/token.h"
#include "net/server.h"
#include "net/worker.h"
#include "engine/engine.h"
#include "hub/hub.h"
#include "net/ws_echo.h"
#include "obs/log.h"
#include "proto/api.h"
#include "proto/client.h"
#include "proto/codes.h"
#include "proto/stats.h"
#include "cmd_store.h"

extern char **environ;

static void usage(FILE *out) {
    fprintf(out,
        "usage: plaza serve [--config FILE] [--port N] [--host ADDR]\n"
        "                   [--workers N] [--set KEY=VALUE]... [--debug-echo]\n"
        "       plaza checkconfig FILE\n"
        "%s"
        "       plaza keys            (every configuration key)\n"
        "       plaza version\n"
        "\n"
        "Configuration: compiled-in defaults, then the JSON file (--config or\n"
        "PLAZA_CONFIG), then PLAZA_* environment variables, then flags.\n", CMD_STORE_USAGE);
}

/* Flags of `serve` that map to a key. */
static const struct { const char *flag, *key; } FLAG_KEYS[] = {
    {"--port", "port"}, {"--host", "host"}, {"--workers", "workers"},
    {"--web-root", "web_root"}, {"--log-level", "log_level"},
};

static const char *config_path(int argc, char **argv) {
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], "--config") == 0) return argv[i + 1];
    return getenv("PLAZA_CONFIG");
}

static int apply_flag(config *cfg, int argc, char **argv, int *i,
                      char err[CONFIG_ERR_MAX]) {
    const char *a = argv[*i];
    if (strcmp(a, "--debug-echo") == 0) return config_set(cfg, "debug_echo", "true", err);
    if (*i + 1 >= argc) { snprintf(err, CONFIG_ERR_MAX, "%s needs a value", a); return -1; }
    const char *v = argv[++*i];
    if (strcmp(a, "--config") == 0) return 0;
    for (size_t k = 0; k < sizeof(FLAG_KEYS) / sizeof(FLAG_KEYS[0]); k++)
        if (strcmp(a, FLAG_KEYS[k].flag) == 0) return config_set(cfg, FLAG_KEYS[k].key, v, err);
    if (strcmp(a, "--set") == 0) {
        char key[128];
        const char *eq = strchr(v, '=');
        if (!eq || (size_t)(eq - v) >= sizeof(key)) {
            snprintf(err, CONFIG_ERR_MAX, "--set expects KEY=VALUE, got \"%s\"", v);
            return -1;
        }
        memcpy(key, v, (size_t)(eq - v));
        key[eq - v] = '\0';
        return config_set(cfg, key, eq + 1, err);
    }
    snprintf(err, CONFIG_ERR_MAX, "unknown option \"%s\"", a);
    return -1;
}

/* Defaults, then the JSON file (if any), then PLAZA_* variables: the part
 * of the configuration serve and checkconfig load alike. */
static int load_file_and_env(config *cfg, const char *path, config_warnings *warn,
                             char err[CONFIG_ERR_MAX]) {
    config_defaults(cfg);
    if (path && config_load_file(cfg, path, err)) return -1;
    return config_load_env(cfg, environ, warn, err);
}

/* Logs the loaders' warnings and config_lint's, with cfg's log settings. */
static void log_warnings(const config *cfg, config_warnings *warn) {
    config_lint(cfg, warn);
    log_set_level(cfg->log_level);
    log_set_format(cfg->log_format);
    for (int i = 0; i < warn->n; i++) log_warn("%s", warn->msg[i]);
    if (warn->dropped) log_warn("%d more configuration warnings", warn->dropped);
}

/* Builds the configuration from every source. Returns 0 or -1 (printed). */
static int load_config(config *cfg, int argc, char **argv) {
    char err[CONFIG_ERR_MAX];
    config_warnings warn = {0};
    if (load_file_and_env(cfg, config_path(argc, argv), &warn, err)) goto fail;
    for (int i = 2; i < argc; i++)
        if (apply_flag(cfg, argc, argv, &i, err)) goto fail;
    if (config_validate(cfg, err)) goto fail;
    log_warnings(cfg, &warn);
    return 0;
fail:
    fprintf(stderr, "plaza: configuration error: %s\n", err);
    return -1;
}

/* The realtime stack on top of the server: hub (over the workers' loops),
 * engine (chosen by engine.type, feeding the hub), client protocol on
 * /connection/websocket, server API on /api, metrics. */
typedef struct stack {
    engine *eng;
    hub *hub;
    token_keys keys;
    proto_env env;
    board_app *boards;
} stack;

static int stack_hub(stack *st, server *srv, const config *cfg) {
    uv_loop_t *loops[srv->nworkers];
    inbox *inboxes[srv->nworkers];
    for (int i = 0; i < srv->nworkers; i++) {
        loops[i] = &srv->workers[i]->loop;
        inboxes[i] = &srv->workers[i]->ib;
    }
    st->hub = hub_new(cfg, &proto_hub_sink, srv->nworkers, loops, inboxes);
    return st->hub ? 0 : -1;
}

static int engine_health(void *ud, char *why, size_t size) {
    engine *e = ud;
    return e->ops->health(e, why, size);
}

static int stack_start(stack *st, server *srv, const config *cfg) {
    char err[256];
    st->keys.hmac_secret = cfg->client_token_hmac_secret_key;
    st->keys.audience = cfg->client_token_audience;
    st->keys.issuer = cfg->client_token_issuer;
    if (token_keys_load(&st->keys, cfg->client_token_rsa_public_key,
                        cfg->client_token_ecdsa_public_key, err, sizeof(err))) {
        log_error("%s", err);
        return -1;
    }
    if (stack_hub(st, srv, cfg)) return -1;
    engine_events ev = hub_engine_events(st->hub);
    if (!(st->eng = engine_new(cfg, &ev, err, sizeof(err)))) {
        log_error("%s", err);
        return -1;
    }
    hub_set_engine(st->hub, st->eng);
    st->env.hub = st->hub;
    st->env.cfg = cfg;
    st->env.keys = &st->keys;
    rpc_init(&st->env.rpc);
    if (proto_setup(&st->env, srv)) return -1;
    srv->ws_close_on_shutdown = DISC_SHUTDOWN;
    srv->ws_slow_close_code = DISC_SLOW;
    server_add_route(srv, "/api", api_route, st->hub);
    if (!(st->boards = board_app_new(&st->env, srv))) return -1;
    server_add_route(srv, "/boards/", board_route, st->boards);
    server_add_route(srv, "/v1/sign-in", signin_route, &st->env);
    server_add_route(srv, "/v1/spaces/", spaces_route, &st->env);
    server_add_route(srv, AUCTION_HTTP_PREFIX, auction_route, &st->env);
    if (auction_register(&st->env)) { log_error("auction: cannot register its RPC methods"); return -1; }
    server_add_metrics(srv, proto_render_metrics, st->hub);
    if (st->eng->ops->health) server_set_health(srv, engine_health, st->eng);
    return 0;
}

/* After server_run: the engine answers what it still holds (into the
 * workers' inboxes, which worker_destroy runs), then the workers go, then
 * the layers above the engine, then the engine. */
static void stack_quiesce(stack *st) {
    if (st->eng) st->eng->ops->quiesce(st->eng);
}

static void stack_stop(stack *st) {
    board_app_free(st->boards);
    proto_teardown(&st->env);
    hub_free(st->hub);
    if (st->eng) st->eng->ops->destroy(st->eng);
    token_keys_free(&st->keys);
}

static int cmd_serve(int argc, char **argv) {
    config cfg;
    if (load_config(&cfg, argc, argv)) { config_free(&cfg); return 2; }
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_format);
    server srv;
    stack st;
    memset(&st, 0, sizeof(st));
    int rc = 1;
    if (server_init(&srv, &cfg) == 0) {
        if (cfg.debug_echo) {
            srv.ws_handler = &ws_echo_handler;
            log_warn("debug_echo is on: /connection/websocket echoes (tests only)");
            rc = server_run(&srv);
        } else if (stack_start(&st, &srv, &cfg) == 0) {
            rc = server_run(&srv);
        }
    }
    stack_quiesce(&st);
    server_free(&srv);     /* closes every connection: clients clean up here */
    stack_stop(&st);
    config_free(&cfg);
    return rc;
}

/* Loads FILE and the PLAZA_* variables as serve does (flags aside). */
static int cmd_checkconfig(int argc, char **argv) {
    if (argc != 3) { usage(stderr); return 2; }
    config cfg;
    char err[CONFIG_ERR_MAX];
    config_warnings warn = {0};
    int rc = load_file_and_env(&cfg, argv[2], &warn, err) || config_validate(&cfg, err);
    if (rc) {
        fprintf(stderr, "plaza: %s\n", err);
    } else {
        log_warnings(&cfg, &warn);
        printf("%s: ok\n", argv[2]);
    }
    config_free(&cfg);
    return rc ? 1 : 0;
}

/* The store commands: the folder is --store DIR, or store.path of the
 * configuration (--config FILE or PLAZA_CONFIG, and PLAZA_* variables). */
static int cmd_with_store(int argc, char **argv, int (*fn)(int, char **, const char *)) {
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], "--store") == 0) return fn(argc, argv, argv[i + 1]);
    config cfg;
    char err[CONFIG_ERR_MAX];
    config_warnings warn = {0};
    if (load_file_and_env(&cfg, config_path(argc, argv), &warn, err)) {
        fprintf(stderr, "plaza: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    int rc;
    if (!cfg.store_path || !cfg.store_path[0]) {
        fprintf(stderr, "plaza: store.path is empty (memory only): give --store DIR\n");
        rc = 2;
    } else {
        rc = fn(argc, argv, cfg.store_path);
    }
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc, argv);
    if (strcmp(cmd, "checkconfig") == 0) return cmd_checkconfig(argc, argv);
    if (strcmp(cmd, "backup") == 0) return cmd_with_store(argc, argv, cmd_backup);
    if (strcmp(cmd, "restore") == 0) return cmd_with_store(argc, argv, cmd_restore);
    if (strcmp(cmd, "store") == 0)      /* a wrong subcommand is told before the folder */
        return argc < 3 || (strcmp(argv[2], "check") && strcmp(argv[2], "repair"))
                   ? cmd_store(argc, argv, NULL) : cmd_with_store(argc, argv, cmd_store);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("plaza %s\n", PLAZA_VERSION);
        return 0;
    }
    if (strcmp(cmd, "keys") == 0) { config_print_keys(stdout); return 0; }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "plaza: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
