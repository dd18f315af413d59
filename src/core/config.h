/* config: Plaza's settings. Defaults are compiled in; a JSON file, then
 * environment variables (PLAZA_<KEY>, dots as underscores, upper case), then
 * command-line flags override them, in that order. Every key is described
 * once in a table in config.c (name, type, range, default, help), which
 * drives parsing, validation, the environment mapping and docs. An unknown
 * key or a bad value is an error that names the key and what was expected;
 * an unknown PLAZA_* variable is only a warning (Kubernetes injects
 * PLAZA_SERVICE_HOST and the like for a Service named "plaza"). */
#ifndef PLAZA_CONFIG_H
#define PLAZA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core/namespace.h"

#define CONFIG_ERR_MAX 256
#define CONFIG_WARN_MAX 16

/* Warnings a loader reports without failing, for the caller to print: the
 * first CONFIG_WARN_MAX messages, and how many more there were. Start it
 * zeroed ({0}). */
typedef struct config_warnings {
    int n;                                  /* messages in msg */
    int dropped;                            /* warnings past CONFIG_WARN_MAX */
    char msg[CONFIG_WARN_MAX][CONFIG_ERR_MAX];
} config_warnings;

/* Representation: bools are ints (0/1). Strings are never NULL after
 * config_defaults (an unset string such as tls.cert is ""). enum strings hold
 * the canonical lower-case choice. ws_allowed_origins is NULL when empty,
 * else an array of ws_nallowed_origins non-empty strings plus a NULL. */
typedef struct config {
    /* server */
    char *host;                     /* "host": listen address (default "0.0.0.0") */
    int port;                       /* "port": 8000 (0 = any free port) */
    int reuse_port;                 /* "reuse_port": false; true = share the port with other processes */
    int workers;                    /* "workers": event-loop threads, 0 = one per core (0..256) */
    char *web_root;                 /* "web_root": static files folder, "web" */
    char *log_level;                /* "log_level": debug|info|warn|error */
    char *log_format;               /* "log_format": text|json */
    int shutdown_timeout_ms;        /* "shutdown_timeout_ms": 5000 */
    int max_connections;            /* "max_connections": 0 = no limit */
    int io_uring;                   /* "io_uring": batch socket writes (fallback: one write each) */
    int debug_echo;                 /* "debug_echo": echo handler on /connection/websocket (tests only) */
    char *region;                   /* "region": this node's region name, "local" */

    /* http.* */
    int http_max_header_bytes;      /* "http.max_header_bytes": 16384 */
    int http_max_headers;           /* "http.max_headers": 64 */
    int http_max_body_bytes;        /* "http.max_body_bytes": 1048576 */
    int http_read_timeout_ms;       /* "http.read_timeout_ms": 10000 (a request must arrive whole within it) */
    int http_keepalive_timeout_ms;  /* "http.keepalive_timeout_ms": 60000 */
    int http_static_max_age;        /* "http.static_max_age": Cache-Control max-age seconds, 60 */

    /* websocket.* */
    int ws_max_message_bytes;       /* "websocket.max_message_bytes": 1048576 (after decompression) */
    int ws_compression;             /* "websocket.compression": false */
    int ws_compression_level;       /* "websocket.compression_level": 1..9, 1 */
    int ws_compression_min_bytes;   /* "websocket.compression_min_bytes": 128 */
    int ws_ping_interval_ms;        /* "websocket.ping_interval_ms": 25000 (0 = off) */
    int ws_pong_timeout_ms;         /* "websocket.pong_timeout_ms": 10000 */
    int ws_close_timeout_ms;        /* "websocket.close_timeout_ms": 3000 */
    int ws_max_outbound_bytes;      /* "websocket.max_outbound_bytes": 4194304 (slow consumer limit) */
    char **ws_allowed_origins;      /* "websocket.allowed_origins": [] = any */
    int ws_nallowed_origins;

    /* tls.* */
    char *tls_cert;                 /* "tls.cert": PEM file; empty = plain TCP */
    char *tls_key;                  /* "tls.key": PEM file */

    /* client.* : the client protocol on /connection/websocket */
    char *client_token_hmac_secret_key;     /* "client.token_hmac_secret_key": "" = HMAC tokens refused */
    char *client_token_rsa_public_key;      /* "client.token_rsa_public_key": PEM file path, "" = RS* refused */
    char *client_token_ecdsa_public_key;    /* "client.token_ecdsa_public_key": PEM file path, "" = ES* refused */
    char *client_token_audience;            /* "client.token_audience": "" = not checked */
    char *client_token_issuer;              /* "client.token_issuer": "" = not checked */
    int client_allow_anonymous;             /* "client.allow_anonymous_connect_without_token": false */
    int client_sign_in;                     /* "client.sign_in": false; true = POST /v1/sign-in issues tokens */
    int client_ping_interval_ms;            /* "client.ping_interval_ms": 25000 (app-level {} pings), at most a day */
    int client_pong_timeout_ms;             /* "client.pong_timeout_ms": 10000 (0 = pongs not required) */
    int client_stale_close_delay_ms;        /* "client.stale_close_delay_ms": 10000 (connect must arrive within) */
    int client_expired_close_delay_ms;      /* "client.expired_close_delay_ms": 25000 (grace after token expiry) */
    int client_channel_limit;               /* "client.channel_limit": 128 subscriptions per connection */
    int client_user_connection_limit;       /* "client.user_connection_limit": 0 = no limit (per user id, per node) */
    int client_connection_limit_per_ip;     /* "client.connection_limit_per_ip": 0 = no limit */
    int client_command_rate;                /* "client.command_rate_limit": 100 commands per second (0 = off) */
    int client_command_burst;               /* "client.command_rate_burst": 200 */
    int client_rate_limit_close_after;      /* "client.rate_limit_close_after": 50 refused commands in a row -> close 3013 */
    int client_history_max_publications;    /* "client.recovery_max_publications": 10000 */
    int client_max_held_events;             /* "client.max_held_events": 10000 per subscription while subscribing (past it: disconnect 3010) */

    /* channel.* */
    int channel_max_length;                 /* "channel.max_length": 255 */
    int channel_max_clients;                /* "channel.max_clients": 0 = no limit (subscribers per channel, per node) */
    int channel_presence_ttl_ms;            /* "channel.presence_ttl_ms": 60000; refreshed every ttl/3 */
    int channel_max_queued_events;          /* "channel.max_queued_events": 65536 in one worker's inbox (past it: disconnect 3010) */
    ns_registry namespaces;                 /* "channel.options" (top) and "channel.namespaces": [ {name, ...} ] */

    /* spaces.* : the HTTP presence API on /v1/spaces */
    char *spaces_namespace;                 /* "spaces.namespace": "" = the API is off */

    /* api.* : the server HTTP API on /api */
    char *api_key;                          /* "api.key": "" = API disabled (every call 401) */
    int api_insecure;                       /* "api.insecure": false; true = no key needed (tests, private networks) */

    /* engine.* : where the shared state (history, presence, offsets) lives */
    char *engine_type;                      /* "engine.type": "memory" (test builds: also "delayed") */
    int engine_sweep_interval_ms;           /* "engine.sweep_interval_ms": 1000 (expired history and presence) */
    int engine_delay_max_ms;                /* "engine.delay_max_ms": 20 (delayed engine: random delay 0..this) */
    int engine_delay_seed;                  /* "engine.delay_seed": 0 = random, printed at start (delayed engine) */
    char *engine_delay_fail_prefix;         /* "engine.delay_fail_prefix": "" (delayed engine: calls on these channels fail) */
    char *engine_redis_address;             /* "engine.redis.address": "127.0.0.1:6379" */
    int engine_redis_cluster;               /* "engine.redis.cluster": false; true = the addresses are cluster seeds */
    char *engine_redis_prefix;              /* "engine.redis.prefix": "plaza" (keys and pub/sub channels) */
    int engine_redis_max_pending;           /* "engine.redis.max_pending": 100000 calls in flight at most */
    int engine_redis_timeout_ms;            /* "engine.redis.timeout_ms": 1000 (a call fails with "engine timeout") */
    int engine_redis_meta_ttl_s;            /* "engine.redis.meta_ttl_s": 30 days (0 = for ever) */

    /* store.* : the durable log under the memory engine (src/store/) */
    char *store_path;                       /* "store.path": "data" (folder of plaza.db); "" = memory only */
    char *store_durability;                 /* "store.durability": "sync" (ack once on disk) or "async" */
    int store_commit_window_us;             /* "store.commit_window_us": 100 (least time between commits) */
    int store_restore_window_s;             /* "store.restore_window_s": 604800 (7 days of log kept for restore) */
    int store_lease_idle_ms;                /* "store.lease_idle_ms": 1000 (async: a channel idle this long is released) */
} config;

/* Fills c with the defaults (c's old contents are not freed). Aborts only if
 * the few default strings cannot be allocated. */
void config_defaults(config *c);

/* Frees the strings and arrays held by c and NULLs them (safe to repeat). */
void config_free(config *c);

/* Loaders and config_set either apply everything or, on error, leave c
 * untouched. err may be NULL. */

/* Applies a JSON file. Returns 0, or -1 with err set (names the key). */
int config_load_file(config *c, const char *path, char err[CONFIG_ERR_MAX]);

/* Applies a JSON document given as text (the file loader's core). It must be
 * an object; sections are nested objects: {"http": {"max_headers": 32}}. */
int config_load_json(config *c, const char *text, size_t len,
                     char err[CONFIG_ERR_MAX]);

/* Applies PLAZA_* variables from envp (NULL-terminated "K=V" strings; NULL =
 * none). Lists are comma-separated. An unknown PLAZA_* variable is skipped
 * with a warning in warn (which may be NULL), except PLAZA_CONFIG (the config
 * file path, read by main), which is skipped silently. A bad value is an
 * error, and so is a Kubernetes service link in a key's variable
 * (PLAZA_PORT=tcp://10.0.0.1:8000, from a Service named "plaza"). */
int config_load_env(config *c, char *const *envp, config_warnings *warn,
                    char err[CONFIG_ERR_MAX]);

/* Sets one key from its text form, as a flag or env var gives it
 * ("websocket.compression", "true"). ints: decimal; bools: true/false, 1/0,
 * yes/no, on/off (any case); lists: comma-separated, blanks trimmed. */
int config_set(config *c, const char *key, const char *value,
               char err[CONFIG_ERR_MAX]);

/* Cross-key checks (e.g. tls.cert without tls.key). */
int config_validate(const config *c, char err[CONFIG_ERR_MAX]);

/* Adds a warning to warn for each combination of keys that is valid but
 * likely a mistake (api.key set while api.insecure ignores it). */
void config_lint(const config *c, config_warnings *warn);

/* Writes one line per key to out: name, type, default, help. */
void config_print_keys(FILE *out);

/* Writes the markdown table of every key (key, env var, type, default,
 * meaning), as in docs/configuration.md. */
void config_write_markdown(FILE *out);

#endif
