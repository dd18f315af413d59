/* config: the one table of every key (JSON path, type, range, default, help)
 * and the code it drives: defaults, the JSON-file and PLAZA_* environment
 * loaders, config_set for flags, cross-key validation, and the key listings
 * used by docs and `plaza checkconfig`. Loaders work on a copy and swap it in
 * only on success, so a bad file or variable never leaves c half-applied.
 * The channel options and the namespace array live in config_ns.c. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "core/config.h"
#include "core/config_ns.h"

/* ---------------------------------------------------------------------------
 * The key table
 * ------------------------------------------------------------------------ */

typedef enum { T_INT, T_BOOL, T_STR, T_ENUM, T_IENUM, T_LIST, T_NS } key_type;

typedef struct key_spec {
    const char *name;           /* JSON path, e.g. "http.max_headers" */
    key_type type;
    size_t off;                 /* offsetof the field in struct config
                                 * (T_NS: the ns_registry) */
    size_t count_off;           /* T_LIST: offsetof the int element count */
    long long min, max;         /* T_INT: accepted range */
    long long def_int;          /* T_INT, T_BOOL: default */
    const char *def_str;        /* T_STR, T_ENUM: default */
    const char *const *choices; /* T_ENUM, T_IENUM: NULL-terminated; T_IENUM
                                 * stores the index in an int (default 0) */
    int nonempty;               /* T_STR: "" is rejected */
    const char *help;
} key_spec;

/* offsetof that fails to compile if the field does not have type T. */
#define OFF(f, T) _Generic(((config *)0)->f, T: offsetof(config, f))

#define INT(n, f, lo, hi, def, h) \
    { .name = n, .type = T_INT, .off = OFF(f, int), .min = lo, .max = hi, \
      .def_int = def, .help = h }
#define BOOL(n, f, def, h) \
    { .name = n, .type = T_BOOL, .off = OFF(f, int), .def_int = def, .help = h }
#define STR(n, f, def, nonempty_, h) \
    { .name = n, .type = T_STR, .off = OFF(f, char *), .def_str = def, \
      .nonempty = nonempty_, .help = h }
#define ENUM(n, f, ch, def, h) \
    { .name = n, .type = T_ENUM, .off = OFF(f, char *), .choices = ch, \
      .def_str = def, .help = h }
#define LIST(n, f, count, h) \
    { .name = n, .type = T_LIST, .off = OFF(f, char **), \
      .count_off = OFF(count, int), .help = h }
#define NSLIST(n, f, h) \
    { .name = n, .type = T_NS, .off = OFF(f, ns_registry), .help = h }

/* "channel.options.<option>" keys, from config_ns.h's list of options. */
#define NS_KEY(key, field, type, lo, hi, h) \
    NS_KEY_##type("channel.options." key, namespaces.top.field, lo, hi, h),
#define NS_KEY_INT(n, f, lo, hi, h) INT(n, f, lo, hi, 0, h)
#define NS_KEY_BOOL(n, f, lo, hi, h) BOOL(n, f, 0, h)
#define NS_KEY_ENUM(n, f, ch, x, h) \
    { .name = n, .type = T_IENUM, .off = OFF(f, int), .choices = ch, .help = h }
#define NS_KEY_STR(n, f, x, y, h) STR(n, f, "", 0, h)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const durabilities[] = {"sync", "async", NULL};

static const key_spec keys[] = {
    STR("host", host, "0.0.0.0", 1, "Address to listen on."),
    INT("port", port, 0, 65535, 8000, "TCP port to listen on; 0 picks a free port."),
    BOOL("reuse_port", reuse_port, 0,
         "Share the port with other processes, e.g. several Plaza nodes on one host "
         "behind the kernel's balancing (only with a shared engine); without it, a "
         "port already in use is an error."),
    INT("workers", workers, 0, 256, 0, "Event-loop threads; 0 means one per CPU core."),
    STR("web_root", web_root, "web", 1, "Folder served as static files."),
    ENUM("log_level", log_level, log_levels, "info", "Lowest level that is logged."),
    ENUM("log_format", log_format, log_formats, "text",
         "Log lines as plain text, or as one JSON object per line."),
    INT("shutdown_timeout_ms", shutdown_timeout_ms, 0, INT_MAX, 5000,
        "On shutdown, how long open connections get to finish."),
    INT("max_connections", max_connections, 0, INT_MAX, 0,
        "Most simultaneous connections; 0 means no limit."),
    BOOL("io_uring", io_uring, 1,
         "Hand each loop turn's socket writes to the kernel in one system call "
         "(io_uring); without it, or where the kernel refuses io_uring, one "
         "write per socket."),
    BOOL("debug_echo", debug_echo, 0,
         "Serve an echo handler on /connection/websocket (tests only)."),
    STR("region", region, "local", 1,
        "This node's region, as pages show it (the sign-in token's info.region)."),

    INT("http.max_header_bytes", http_max_header_bytes, 256, INT_MAX, 16384,
        "Largest request head (request line and headers) accepted."),
    INT("http.max_headers", http_max_headers, 1, INT_MAX, 64,
        "Most header fields accepted in one request."),
    INT("http.max_body_bytes", http_max_body_bytes, 0, INT_MAX, 1048576,
        "Largest request body accepted."),
    INT("http.read_timeout_ms", http_read_timeout_ms, 1, INT_MAX, 10000,
        "A request must arrive whole within this time."),
    INT("http.keepalive_timeout_ms", http_keepalive_timeout_ms, 1, INT_MAX, 60000,
        "Idle time allowed between requests on a kept-alive connection."),
    INT("http.static_max_age", http_static_max_age, 0, INT_MAX, 60,
        "Cache-Control max-age, in seconds, sent with static files."),

    INT("websocket.max_message_bytes", ws_max_message_bytes, 1, INT_MAX, 1048576,
        "Largest message accepted, measured after decompression."),
    BOOL("websocket.compression", ws_compression, 0,
         "Accept permessage-deflate (RFC 7692) when a client offers it."),
    INT("websocket.compression_level", ws_compression_level, 1, 9, 1,
        "zlib level for outgoing messages: 1 fastest, 9 smallest."),
    INT("websocket.compression_min_bytes", ws_compression_min_bytes, 0, INT_MAX, 128,
        "Outgoing messages shorter than this are sent uncompressed."),
    INT("websocket.ping_interval_ms", ws_ping_interval_ms, 0, INT_MAX, 25000,
        "Interval between server pings; 0 turns pings off."),
    INT("websocket.pong_timeout_ms", ws_pong_timeout_ms, 1, INT_MAX, 10000,
        "A connection whose pong is this late is closed."),
    INT("websocket.close_timeout_ms", ws_close_timeout_ms, 1, INT_MAX, 3000,
        "How long to wait for the peer's Close frame before dropping it."),
    INT("websocket.max_outbound_bytes", ws_max_outbound_bytes, 1024, INT_MAX, 4194304,
        "Bytes queued for one client before it is dropped as too slow."),
    LIST("websocket.allowed_origins", ws_allowed_origins, ws_nallowed_origins,
         "Origin header values accepted on upgrade; empty accepts any."),

    STR("tls.cert", tls_cert, "", 0, "PEM certificate chain file; empty serves plain TCP."),
    STR("tls.key", tls_key, "", 0, "PEM private key file for tls.cert."),

    STR("client.token_hmac_secret_key", client_token_hmac_secret_key, "", 0,
        "Secret for HS256/384/512 tokens; empty refuses them."),
    STR("client.token_rsa_public_key", client_token_rsa_public_key, "", 0,
        "PEM file with the RSA public key for RS256/384/512 tokens; empty refuses them."),
    STR("client.token_ecdsa_public_key", client_token_ecdsa_public_key, "", 0,
        "PEM file with the ECDSA public key for ES256/384/512 tokens; empty refuses them."),
    STR("client.token_audience", client_token_audience, "", 0,
        "Required aud claim of tokens; empty does not check it."),
    STR("client.token_issuer", client_token_issuer, "", 0,
        "Required iss claim of tokens; empty does not check it."),
    BOOL("client.allow_anonymous_connect_without_token", client_allow_anonymous, 0,
         "Accept a connect without a token, as an anonymous user (\"\")."),
    BOOL("client.sign_in", client_sign_in, 0,
         "Serve POST /v1/sign-in, which gives anyone a token (HS256, with "
         "client.token_hmac_secret_key) for the user and name they choose: for "
         "demos and development only."),
    INT("client.ping_interval_ms", client_ping_interval_ms, 1, 86400000, 25000,
        "Interval between the protocol's {} pings to a client."),
    INT("client.pong_timeout_ms", client_pong_timeout_ms, 0, INT_MAX, 10000,
        "A client whose pong is this late is closed; 0 asks for no pongs."),
    INT("client.stale_close_delay_ms", client_stale_close_delay_ms, 1, INT_MAX, 10000,
        "A connection that sends no connect command within this time is closed."),
    INT("client.expired_close_delay_ms", client_expired_close_delay_ms, 0, INT_MAX, 25000,
        "Grace after a connection token expires before the connection is closed."),
    INT("client.channel_limit", client_channel_limit, 1, INT_MAX, 128,
        "Most subscriptions on one connection."),
    INT("client.user_connection_limit", client_user_connection_limit, 0, INT_MAX, 0,
        "Most connections of one user on this node; 0 means no limit."),
    INT("client.connection_limit_per_ip", client_connection_limit_per_ip, 0, INT_MAX, 0,
        "Most connections from one IP address; 0 means no limit."),
    INT("client.command_rate_limit", client_command_rate, 0, INT_MAX, 100,
        "Commands per second a connection may send on average; 0 turns the limit off."),
    INT("client.command_rate_burst", client_command_burst, 1, INT_MAX, 200,
        "Commands a connection may send at once, above the average rate."),
    INT("client.rate_limit_close_after", client_rate_limit_close_after, 1, 65535, 50,
        "Refused commands in a row after which the connection is closed."),
    INT("client.recovery_max_publications", client_history_max_publications, 1, INT_MAX,
        10000, "Most publications sent to recover a subscription; more is not recovered."),
    INT("client.max_held_events", client_max_held_events, 1, 1000000, 10000,
        "Events held for one subscription while its subscribe is being answered; "
        "past it the client is disconnected with 3010 to reconnect and recover."),

    INT("channel.max_length", channel_max_length, 1, 65535, 255,
        "Longest channel name, in bytes."),
    INT("channel.max_clients", channel_max_clients, 0, INT_MAX, 0,
        "Most subscribers of one channel on this node; 0 means no limit."),
    INT("channel.presence_ttl_ms", channel_presence_ttl_ms, 100, INT_MAX, 60000,
        "Presence entries expire after this unless refreshed (every third of it)."),
    INT("channel.max_queued_events", channel_max_queued_events, 16, 16777216, 65536,
        "Events of all channels waiting in one worker's inbox; past it, the subscribers "
        "of a channel whose event could not be queued are disconnected with code 3010 "
        "to reconnect and recover, and it is counted."),
    NS_OPTION_KEYS(NS_KEY)
    NSLIST("channel.namespaces", namespaces,
           "Namespaces: a channel \"ns:rest\" takes the options of namespace ns."),

    STR("spaces.namespace", spaces_namespace, "", 0,
        "Serve the HTTP presence API /v1/spaces/<space>/users on the channels "
        "<namespace>:<space>, whose presence map (map_clients_presence_channel_prefix) "
        "holds the entries; empty turns it off."),

    STR("api.key", api_key, "", 0,
        "Key the server API on /api requires; empty disables the API."),
    BOOL("api.insecure", api_insecure, 0,
         "Serve the API without a key (tests and private networks only)."),

    STR("engine.type", engine_type, "memory", 1,
        "Which engine holds the shared state: memory (one node) or redis (several "
        "nodes sharing one Redis). Test builds also have delayed (memory behind "
        "random delays, for tests)."),
    INT("engine.sweep_interval_ms", engine_sweep_interval_ms, 10, 3600000, 1000,
        "How often the engine removes expired history and presence."),
    INT("engine.delay_max_ms", engine_delay_max_ms, 0, 60000, 20,
        "Delayed engine only (test builds): each answer and event comes after a "
        "random delay of 0..this many ms."),
    INT("engine.delay_seed", engine_delay_seed, 0, INT_MAX, 0,
        "Delayed engine only (test builds): seed of the random delays; 0 picks a "
        "random seed, printed at start."),
    STR("engine.delay_fail_prefix", engine_delay_fail_prefix, "", 0,
        "Delayed engine only (test builds): every call on a channel whose name "
        "starts with this prefix fails with \"engine unavailable\" (failure "
        "paths in tests); empty fails nothing."),

    STR("engine.redis.address", engine_redis_address, "127.0.0.1:6379", 1,
        "Redis engine: the Redis server, host:port; or several, comma-separated "
        "(host:port,host:port,...): channels are spread over them by a consistent "
        "hash of their name, every node must list the same servers in the same order."),
    BOOL("engine.redis.cluster", engine_redis_cluster, 0,
         "Redis engine: engine.redis.address lists seed nodes of one Redis Cluster "
         "(any of its nodes will do); the slot map is read from CLUSTER SLOTS, "
         "MOVED/ASK are followed, and publications use sharded pub/sub."),
    STR("engine.redis.prefix", engine_redis_prefix, "plaza", 1,
        "Redis engine: the prefix of every key and pub/sub channel Plaza uses, so "
        "several Plaza clusters can share one Redis."),
    INT("engine.redis.max_pending", engine_redis_max_pending, 1, 10000000, 100000,
        "Redis engine: calls waiting to be sent or answered at most; past it a call "
        "fails at once with \"engine unavailable\" (a slow or stopped Redis never "
        "grows memory without bound)."),
    INT("engine.redis.timeout_ms", engine_redis_timeout_ms, 10, 600000, 1000,
        "Redis engine: a call Redis has not answered within this fails with "
        "\"engine timeout\" (a stalled Redis never holds a client longer)."),
    INT("engine.redis.meta_ttl_s", engine_redis_meta_ttl_s, 0, INT_MAX, 2592000,
        "Redis engine: a channel's offset and epoch are kept this long after its last "
        "publication (0 = for ever); then its next publication starts a new epoch."),

    STR("store.path", store_path, "data", 0,
        "Folder of the durable log (plaza.db, SQLite) under the memory engine: history, "
        "offsets and epochs survive a restart. Empty keeps everything in memory only."),
    ENUM("store.durability", store_durability, durabilities, "sync",
         "sync: a publication is delivered and acknowledged once it is on disk. async: at "
         "once, on disk within the commit window; after a crash, channels that may have "
         "lost their last publications get a new epoch."),
    INT("store.commit_window_us", store_commit_window_us, 0, 1000000, 100,
        "Least time between two commits under load: what arrives meanwhile is committed "
        "together (one fsync)."),
    INT("store.restore_window_s", store_restore_window_s, 0, INT_MAX, 604800,
        "Every write is kept this long, so the data can be restored as of any moment "
        "within it (plaza restore --at); older writes no history needs are deleted."),
    INT("store.lease_idle_ms", store_lease_idle_ms, 10, 3600000, 1000,
        "async only: a channel that published nothing this long is marked fully on disk "
        "(a crash then keeps its epoch)."),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* PLAZA_* variables that are not keys and that config_load_env ignores. */
static const char *const env_ignored[] = {
    "PLAZA_CONFIG", /* the config file path, read by main */
    NULL,
};

/* ---------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

int config_fail(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CONFIG_ERR_MAX, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int oom(char *err) { return config_fail(err, "out of memory"); }

static void warn_add(config_warnings *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds a message to w (NULL: dropped); past CONFIG_WARN_MAX only counts it. */
static void warn_add(config_warnings *w, const char *fmt, ...) {
    if (!w) return;
    if (w->n == CONFIG_WARN_MAX) {
        w->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg[w->n++], CONFIG_ERR_MAX, fmt, ap);
    va_end(ap);
}

static int *int_at(config *c, const key_spec *k) {
    return (int *)(void *)((char *)c + k->off);
}
static char **str_at(config *c, const key_spec *k) {
    return (char **)(void *)((char *)c + k->off);
}
static ns_registry *reg_at(config *c, const key_spec *k) {
    return (ns_registry *)(void *)((char *)c + k->off);
}
static char ***list_at(config *c, const key_spec *k) {
    return (char ***)(void *)((char *)c + k->off);
}
static int *count_at(config *c, const key_spec *k) {
    return (int *)(void *)((char *)c + k->count_off);
}

static const key_spec *find_key(const char *name) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

/* "http" is a section: some key starts with "http.". */
static int is_section(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(keys[i].name, name, n) == 0 && keys[i].name[n] == '.')
            return 1;
    return 0;
}

/* "websocket.max_message_bytes" -> "PLAZA_WEBSOCKET_MAX_MESSAGE_BYTES". */
static void env_name(const key_spec *k, char *buf, size_t size) {
    size_t o = (size_t)snprintf(buf, size, "PLAZA_");
    for (const char *p = k->name; *p && o + 1 < size; p++)
        buf[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    buf[o] = '\0';
}

static int env_ignored_name(const char *name, size_t len) {
    for (int i = 0; env_ignored[i]; i++)
        if (strlen(env_ignored[i]) == len && memcmp(env_ignored[i], name, len) == 0)
            return 1;
    return 0;
}

/* Edit distance, for "did you mean" hints; long inputs are not compared. */
size_t config_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64) return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* The key (or its env var, if env) closest to s, when it is a likely typo. */
static const key_spec *closest(const char *s, int env) {
    const key_spec *best = NULL;
    size_t bestd = 3; /* at most 2 edits */
    char buf[128];
    for (size_t i = 0; i < NKEYS; i++) {
        if (env) env_name(&keys[i], buf, sizeof(buf));
        size_t d = config_edit_distance(s, env ? buf : keys[i].name);
        if (d < bestd) bestd = d, best = &keys[i];
    }
    return best;
}

static int unknown_key(const char *name, char *err) {
    const key_spec *k = closest(name, 0);
    if (k) return config_fail(err, "unknown key \"%s\" (did you mean \"%s\"?)", name, k->name);
    return config_fail(err, "unknown key \"%s\"", name);
}

/* ---------------------------------------------------------------------------
 * Describing keys and values (errors and docs)
 * ------------------------------------------------------------------------ */

static void join_choices(const key_spec *k, const char *sep, char *buf, size_t size) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; k->choices[i] && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? sep : "", k->choices[i]);
}

/* What a value of k must look like, for "expected ..." in errors. */
static const char *expected(const key_spec *k, int json, char *buf, size_t size) {
    char choices[128];
    switch (k->type) {
    case T_INT:
        if (k->max == INT_MAX) snprintf(buf, size, "an integer >= %lld", k->min);
        else snprintf(buf, size, "an integer between %lld and %lld", k->min, k->max);
        break;
    case T_BOOL:
        snprintf(buf, size, "%s", json ? "true or false"
                 : "a boolean (true/false, yes/no, on/off, 1/0)");
        break;
    case T_STR:
        snprintf(buf, size, "%s", k->nonempty ? "a non-empty string" : "a string");
        break;
    case T_ENUM:
    case T_IENUM:
        join_choices(k, ", ", choices, sizeof(choices));
        snprintf(buf, size, "one of %s", choices);
        break;
    case T_LIST:
        snprintf(buf, size, "%s", json ? "an array of non-empty strings"
                 : "a comma-separated list");
        break;
    case T_NS:
        snprintf(buf, size, "%s", json ? "an array of namespace objects"
                 : "a JSON array of namespace objects");
        break;
    }
    return buf;
}

/* The short type column of the docs: "integer 1..9", "bool", ... */
static const char *type_name(const key_spec *k, char *buf, size_t size) {
    switch (k->type) {
    case T_INT:
        if (k->max == INT_MAX) snprintf(buf, size, "integer >= %lld", k->min);
        else snprintf(buf, size, "integer %lld..%lld", k->min, k->max);
        break;
    case T_BOOL: snprintf(buf, size, "bool"); break;
    case T_STR: snprintf(buf, size, "string"); break;
    case T_ENUM:
    case T_IENUM: join_choices(k, "|", buf, size); break;
    case T_LIST: snprintf(buf, size, "list of strings"); break;
    case T_NS: snprintf(buf, size, "array of namespaces"); break;
    }
    return buf;
}

/* The default as it would be written in the JSON file. */
static const char *default_text(const key_spec *k, char *buf, size_t size) {
    switch (k->type) {
    case T_INT: snprintf(buf, size, "%lld", k->def_int); break;
    case T_BOOL: snprintf(buf, size, "%s", k->def_int ? "true" : "false"); break;
    case T_STR:
    case T_ENUM: snprintf(buf, size, "\"%s\"", k->def_str); break;
    case T_IENUM: snprintf(buf, size, "\"%s\"", k->choices[0]); break;
    case T_LIST:
    case T_NS: snprintf(buf, size, "[]"); break;
    }
    return buf;
}

/* `got "abc"` for text input, cut short so the error still fits. */
static int bad_text(const key_spec *k, const char *text, char *err) {
    char exp[160];
    const char *dots = strlen(text) > 40 ? "..." : "";
    return config_fail(err, "key \"%s\": expected %s, got \"%.40s%s\"",
                k->name, expected(k, 0, exp, sizeof(exp)), text, dots);
}

/* `got 3.5` / `got [1, 2]` for JSON input, as compact JSON. */
static int bad_json(const key_spec *k, const json_t *j, char *err) {
    char exp[160];
    char *got = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    const char *dots = got && strlen(got) > 40 ? "..." : "";
    config_fail(err, "key \"%s\": expected %s, got %.40s%s", k->name,
         expected(k, 1, exp, sizeof(exp)), got ? got : "?", dots);
    free(got);
    return -1;
}

/* ---------------------------------------------------------------------------
 * Values: parsed first, then stored (so a bad value changes nothing)
 * ------------------------------------------------------------------------ */

typedef struct value {
    long long i;    /* T_INT, T_BOOL, T_IENUM */
    char *s;        /* T_STR, T_ENUM */
    char **list;    /* T_LIST: NULL-terminated, or NULL when n == 0 */
    ns_options *spaces; /* T_NS */
    int n;          /* T_LIST, T_NS: element count */
} value;

static void free_list(char **list) {
    if (!list) return;
    for (char **p = list; *p; p++) free(*p);
    free(list);
}

static void value_free(value *v) {
    free(v->s);
    free_list(v->list);
    config_ns_free_spaces(v->spaces, v->spaces ? v->n : 0);
    memset(v, 0, sizeof(*v));
}

/* Appends a copy of s[0..len) to v's list. */
static int list_push(value *v, const char *s, size_t len) {
    char **grown = realloc(v->list, sizeof(char *) * ((size_t)v->n + 2));
    if (!grown) return -1;
    v->list = grown;
    if (!(v->list[v->n] = strndup(s, len))) return -1;
    v->list[++v->n] = NULL;
    return 0;
}

/* Moves v into c's field for k, freeing what was there. */
static void store(config *c, const key_spec *k, value *v) {
    switch (k->type) {
    case T_INT:
    case T_BOOL:
    case T_IENUM:
        *int_at(c, k) = (int)v->i;
        break;
    case T_STR:
    case T_ENUM:
        free(*str_at(c, k));
        *str_at(c, k) = v->s;
        break;
    case T_LIST:
        free_list(*list_at(c, k));
        *list_at(c, k) = v->list;
        *count_at(c, k) = v->n;
        break;
    case T_NS:
        config_ns_free_spaces(reg_at(c, k)->spaces, reg_at(c, k)->nspaces);
        reg_at(c, k)->spaces = v->spaces;
        reg_at(c, k)->nspaces = v->n;
        break;
    }
    memset(v, 0, sizeof(*v));
}

/* Decimal only, the whole string, no blanks: "-12", "8000". */
static int parse_int(const char *s, long long *out) {
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (!isdigit((unsigned char)digits[0])) return -1;
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno || *end ? -1 : 0;
}

static int parse_bool(const char *s, long long *out) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

static const char *parse_enum(const key_spec *k, const char *s) {
    for (int i = 0; k->choices[i]; i++)
        if (strcasecmp(s, k->choices[i]) == 0) return k->choices[i];
    return NULL;
}

/* "a, b,,c" -> ["a", "b", "c"]: items trimmed, empty items skipped. */
static int parse_list(const char *s, value *v) {
    while (*s) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        while (s < end && isspace((unsigned char)*s)) s++;
        const char *last = end;
        while (last > s && isspace((unsigned char)last[-1])) last--;
        if (last > s && list_push(v, s, (size_t)(last - s)) < 0) return -1;
        s = comma ? comma + 1 : end;
    }
    return 0;
}

/* Parses the text form of a value of k into v. */
static int parse_text(const key_spec *k, const char *text, value *v, char *err) {
    const char *choice;
    switch (k->type) {
    case T_INT:
        if (parse_int(text, &v->i) < 0 || v->i < k->min || v->i > k->max)
            return bad_text(k, text, err);
        return 0;
    case T_BOOL:
        return parse_bool(text, &v->i) < 0 ? bad_text(k, text, err) : 0;
    case T_STR:
        if (k->nonempty && !text[0]) return bad_text(k, text, err);
        return (v->s = strdup(text)) ? 0 : oom(err);
    case T_ENUM:
        if (!(choice = parse_enum(k, text))) return bad_text(k, text, err);
        return (v->s = strdup(choice)) ? 0 : oom(err);
    case T_IENUM:
        if (!(choice = parse_enum(k, text))) return bad_text(k, text, err);
        for (v->i = 0; k->choices[v->i] != choice; v->i++) {}
        return 0;
    case T_LIST:
        if (parse_list(text, v) < 0) return value_free(v), oom(err);
        return 0;
    case T_NS:
        return config_ns_parse_text(text, k->name, &v->spaces, &v->n, err);
    }
    return -1;
}

static int parse_json_list(const key_spec *k, const json_t *j, value *v, char *err) {
    size_t i;
    const json_t *item;
    if (!json_is_array(j)) return bad_json(k, j, err);
    json_array_foreach(j, i, item) {
        const char *s = json_string_value(item);
        if (!s || !s[0]) {
            char *got = json_dumps(item, JSON_ENCODE_ANY | JSON_COMPACT);
            config_fail(err, "key \"%s[%zu]\": expected a non-empty string, got %.40s",
                 k->name, i, got ? got : "?");
            free(got);
            return value_free(v), -1;
        }
        if (list_push(v, s, json_string_length(item)) < 0)
            return value_free(v), oom(err);
    }
    return 0;
}

/* Parses the JSON form of a value of k into v: JSON types must match. */
static int parse_json(const key_spec *k, const json_t *j, value *v, char *err) {
    switch (k->type) {
    case T_INT:
        if (!json_is_integer(j) || json_integer_value(j) < k->min ||
            json_integer_value(j) > k->max)
            return bad_json(k, j, err);
        v->i = json_integer_value(j);
        return 0;
    case T_BOOL:
        if (!json_is_boolean(j)) return bad_json(k, j, err);
        v->i = json_is_true(j);
        return 0;
    case T_STR:
    case T_ENUM:
    case T_IENUM:
        if (!json_is_string(j)) return bad_json(k, j, err);
        return parse_text(k, json_string_value(j), v, err);
    case T_LIST:
        return parse_json_list(k, j, v, err);
    case T_NS:
        return config_ns_parse_json(j, k->name, &v->spaces, &v->n, err);
    }
    return -1;
}

/* ---------------------------------------------------------------------------
 * Whole configs
 * ------------------------------------------------------------------------ */

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (!d) {
        fputs("config: out of memory\n", stderr);
        abort();
    }
    return d;
}

/* Fields derived from keys, refreshed whenever keys change. */
static void finish(config *c) {
    c->namespaces.channel_max_length = c->channel_max_length;
}

void config_defaults(config *c) {
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++) {
        const key_spec *k = &keys[i];
        if (k->type == T_INT || k->type == T_BOOL) *int_at(c, k) = (int)k->def_int;
        else if (k->type == T_STR || k->type == T_ENUM) *str_at(c, k) = xstrdup(k->def_str);
    }
    c->namespaces.top.name = xstrdup("");
    finish(c);
}

void config_free(config *c) {
    for (size_t i = 0; i < NKEYS; i++) {
        const key_spec *k = &keys[i];
        if (k->type == T_STR || k->type == T_ENUM) {
            free(*str_at(c, k));
            *str_at(c, k) = NULL;
        } else if (k->type == T_LIST) {
            free_list(*list_at(c, k));
            *list_at(c, k) = NULL;
            *count_at(c, k) = 0;
        } else if (k->type == T_NS) {
            config_ns_free(reg_at(c, k)); /* the namespaces and top.name */
        }
    }
}

/* Copies one key's heap value from src to dst (whose field is NULL). */
static int copy_key(config *dst, const config *src, const key_spec *k) {
    config *s = (config *)src; /* the accessors are not const; nothing is written */
    if (k->type == T_STR || k->type == T_ENUM) {
        const char *from = *str_at(s, k);
        return from && !(*str_at(dst, k) = strdup(from)) ? -1 : 0;
    }
    if (k->type == T_LIST) {
        value v = {0};
        char **from = *list_at(s, k);
        for (int i = 0; i < *count_at(s, k); i++)
            if (list_push(&v, from[i], strlen(from[i])) < 0) return value_free(&v), -1;
        store(dst, k, &v);
    }
    if (k->type == T_NS) return config_ns_copy(reg_at(dst, k), reg_at(s, k));
    return 0;
}

/* A deep copy of src, for loaders to work on. */
static int config_copy(config *dst, const config *src, char *err) {
    *dst = *src;
    for (size_t i = 0; i < NKEYS; i++) {
        const key_spec *k = &keys[i];
        if (k->type == T_STR || k->type == T_ENUM) *str_at(dst, k) = NULL;
        else if (k->type == T_LIST) *list_at(dst, k) = NULL, *count_at(dst, k) = 0;
        else if (k->type == T_NS) {
            ns_registry *r = reg_at(dst, k);
            r->top.name = NULL, r->spaces = NULL, r->nspaces = 0;
        }
    }
    for (size_t i = 0; i < NKEYS; i++)
        if (copy_key(dst, src, &keys[i]) < 0) return config_free(dst), oom(err);
    return 0;
}

/* Ends a loader's work on tmp: on success it replaces *c, else it is dropped. */
static int commit(config *c, config *tmp, int rc) {
    if (rc < 0) {
        config_free(tmp);
        return -1;
    }
    config_free(c);
    *c = *tmp;
    finish(c);
    return 0;
}

int config_set(config *c, const char *key, const char *text, char err[CONFIG_ERR_MAX]) {
    const key_spec *k = find_key(key);
    value v = {0};
    if (!k) return unknown_key(key, err);
    if (parse_text(k, text, &v, err) < 0) return -1;
    store(c, k, &v);
    finish(c);
    return 0;
}

/* ---------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------ */

static int apply_object(config *c, const json_t *obj, const char *prefix, char *err);

static int apply_member(config *c, const char *path, const json_t *j, char *err) {
    const key_spec *k = find_key(path);
    value v = {0};
    if (k) {
        if (parse_json(k, j, &v, err) < 0) return -1;
        store(c, k, &v);
        return 0;
    }
    if (!is_section(path)) return unknown_key(path, err);
    if (!json_is_object(j)) return config_fail(err, "key \"%s\": expected an object", path);
    return apply_object(c, j, path, err);
}

static int apply_object(config *c, const json_t *obj, const char *prefix, char *err) {
    const char *name;
    json_t *j;
    json_object_foreach((json_t *)obj, name, j) {
        char path[128];
        if (strchr(name, '.') && find_key(name))
            return config_fail(err, "key \"%s\": write sections as nested objects, "
                        "not dotted names", name);
        snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "",
                 prefix ? "." : "", name);
        if (apply_member(c, path, j, err) < 0) return -1;
    }
    return 0;
}

int config_load_json(config *c, const char *text, size_t len, char err[CONFIG_ERR_MAX]) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return config_fail(err, "invalid JSON at line %d, column %d: %s",
                    jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return config_fail(err, "the configuration must be a JSON object ({...})");
    }
    config tmp;
    int rc = config_copy(&tmp, c, err);
    if (rc == 0) rc = commit(c, &tmp, apply_object(&tmp, root, NULL, err));
    json_decref(root);
    return rc;
}

/* Reads a whole file into a malloc'd buffer. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    if (!f) return NULL;
    do {
        if (n == cap) {
            char *grown = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!grown) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        n += got = fread(buf + n, 1, cap - n, f);
    } while (got > 0);
    if (ferror(f)) {
        int saved = errno ? errno : EIO;
        free(buf);
        fclose(f);
        errno = saved;
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int config_load_file(config *c, const char *path, char err[CONFIG_ERR_MAX]) {
    char inner[CONFIG_ERR_MAX];
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return config_fail(err, "%s: %s", path, strerror(errno));
    int rc = config_load_json(c, text, len, inner);
    free(text);
    return rc < 0 ? config_fail(err, "%s: %s", path, inner) : 0;
}

/* ---------------------------------------------------------------------------
 * Environment
 * ------------------------------------------------------------------------ */

static const key_spec *find_env(const char *name, size_t len) {
    char buf[128];
    for (size_t i = 0; i < NKEYS; i++) {
        env_name(&keys[i], buf, sizeof(buf));
        if (strlen(buf) == len && memcmp(buf, name, len) == 0) return &keys[i];
    }
    return NULL;
}

/* "tcp://10.0.0.1:8000": what Kubernetes puts in <SERVICE>_PORT. */
static int is_link_value(const char *v) {
    return strncmp(v, "tcp://", 6) == 0 || strncmp(v, "udp://", 6) == 0 ||
           strncmp(v, "sctp://", 7) == 0;
}

/* Kubernetes' variables for a Service: <S>_SERVICE_HOST, <S>_SERVICE_PORT
 * (and _<NAME>), <S>_PORT, and <S>_PORT_<N>_<PROTO> (and _PROTO, _PORT,
 * _ADDR). */
static int is_link_name(const char *name) {
    const char *p = name;
    if (strstr(name, "_SERVICE_HOST") || strstr(name, "_SERVICE_PORT")) return 1;
    while ((p = strstr(p, "_PORT_")))
        if (isdigit((unsigned char)(p += 6)[0])) return 1;
    return 0;
}

/* An unknown PLAZA_* variable: a warning, with a hint when there is one. */
static void unknown_env(const char *name, const char *text, config_warnings *w) {
    char buf[128];
    const key_spec *k = closest(name, 1);
    if (is_link_value(text) || is_link_name(name)) {
        warn_add(w, "unknown environment variable %s ignored (it looks like a "
                 "Kubernetes service link)", name);
    } else if (k) {
        env_name(k, buf, sizeof(buf));
        warn_add(w, "unknown environment variable %s ignored (did you mean %s?)",
                 name, buf);
    } else {
        warn_add(w, "unknown environment variable %s ignored", name);
    }
}

/* PLAZA_PORT=tcp://10.0.0.1:8000 is Kubernetes' link to a Service named
 * "plaza", not a port: an error that says so and how to avoid it. Any key
 * whose variable ends in _PORT can meet one (reuse_port: "plaza-reuse"). */
static int service_link(const key_spec *k, const char *name, const char *text,
                        char *err) {
    size_t n = strlen(name), o = 0;
    char service[64];
    if (n < 5 || strcmp(name + n - 5, "_PORT") != 0 || !is_link_value(text)) return 0;
    for (size_t i = 0; i + 5 < n && o + 1 < sizeof(service); i++)
        service[o++] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
    service[o] = '\0';
    return config_fail(err, "%s=\"%.40s\" looks like a Kubernetes service link, not "
                       "a %s: name the Service something other than \"%s\", or set "
                       "enableServiceLinks: false in the pod spec, or set %s in the "
                       "container's env", name, text, k->name, service, name);
}

/* Applies one "PLAZA_X=v" entry; others are ignored. */
static int apply_env(config *c, const char *entry, config_warnings *warn, char *err) {
    const char *eq = strchr(entry, '=');
    char inner[CONFIG_ERR_MAX], name[96];
    value v = {0};
    if (strncmp(entry, "PLAZA_", 6) != 0 || !eq) return 0;
    size_t len = (size_t)(eq - entry);
    if (env_ignored_name(entry, len)) return 0;
    snprintf(name, sizeof(name), "%.*s", (int)len, entry);
    const key_spec *k = find_env(entry, len);
    if (!k) {
        unknown_env(name, eq + 1, warn);
        return 0;
    }
    if (service_link(k, name, eq + 1, err) < 0) return -1;
    if (parse_text(k, eq + 1, &v, inner) < 0)
        return config_fail(err, "%s: %s", name, inner);
    store(c, k, &v);
    return 0;
}

int config_load_env(config *c, char *const *envp, config_warnings *warn,
                    char err[CONFIG_ERR_MAX]) {
    config tmp;
    int rc = 0;
    if (!envp) return 0;
    if (config_copy(&tmp, c, err) < 0) return -1;
    for (size_t i = 0; envp[i] && rc == 0; i++)
        rc = apply_env(&tmp, envp[i], warn, err);
    return commit(c, &tmp, rc);
}

/* ---------------------------------------------------------------------------
 * Validation and listings
 * ------------------------------------------------------------------------ */

/* Re-checks one key's value, in case code assigned the field directly. */
static int check_key(config *c, const key_spec *k, char *err) {
    char got[32];
    const char *s;
    switch (k->type) {
    case T_INT:
        if (*int_at(c, k) >= k->min && *int_at(c, k) <= k->max) return 0;
        snprintf(got, sizeof(got), "%d", *int_at(c, k));
        return bad_text(k, got, err);
    case T_BOOL:
        return *int_at(c, k) == 0 || *int_at(c, k) == 1 ? 0
               : config_fail(err, "key \"%s\": expected 0 or 1", k->name);
    case T_STR:
        s = *str_at(c, k);
        return s && (s[0] || !k->nonempty) ? 0 : bad_text(k, s ? s : "", err);
    case T_ENUM:
        s = *str_at(c, k);
        return s && parse_enum(k, s) ? 0 : bad_text(k, s ? s : "", err);
    case T_IENUM: {
        int n = 0;
        while (k->choices[n]) n++;
        return *int_at(c, k) >= 0 && *int_at(c, k) < n ? 0
               : config_fail(err, "key \"%s\": bad choice %d", k->name, *int_at(c, k));
    }
    case T_LIST:
        return *count_at(c, k) >= 0 && (*count_at(c, k) == 0 || *list_at(c, k)) ? 0
               : config_fail(err, "key \"%s\": bad list", k->name);
    case T_NS:
        if (reg_at(c, k)->nspaces < 0 || (reg_at(c, k)->nspaces && !reg_at(c, k)->spaces))
            return config_fail(err, "key \"%s\": bad list", k->name);
        return config_ns_check_spaces(reg_at(c, k), k->name, err);
    }
    return 0;
}

/* spaces.namespace names a stream namespace with a presence map of clients. */
static int check_spaces(const config *c, char *err) {
    const char *name = c->spaces_namespace;
    if (!name[0]) return 0;
    for (int i = 0; i < c->namespaces.nspaces; i++) {
        const ns_options *o = &c->namespaces.spaces[i];
        if (strcmp(o->name, name) != 0) continue;
        if (o->subscription_type != NS_SUB_STREAM || !o->map_clients_presence_channel_prefix ||
            !o->map_clients_presence_channel_prefix[0])
            return config_fail(err, "key \"spaces.namespace\": namespace \"%s\" must be a "
                               "stream namespace with map_clients_presence_channel_prefix", name);
        return 0;
    }
    return config_fail(err, "key \"spaces.namespace\": no namespace \"%s\" in "
                       "\"channel.namespaces\"", name);
}

int config_validate(const config *c, char err[CONFIG_ERR_MAX]) {
    config *m = (config *)c; /* the accessors are not const; nothing is written */
    for (size_t i = 0; i < NKEYS; i++)
        if (check_key(m, &keys[i], err) < 0) return -1;
    int has_cert = c->tls_cert[0] != '\0', has_key = c->tls_key[0] != '\0';
    if (has_cert != has_key)
        return config_fail(err, "keys \"tls.cert\" and \"tls.key\" must be set together "
                    "(\"%s\" is empty)", has_cert ? "tls.key" : "tls.cert");
    /* An empty api.key without api.insecure is fine: the API is disabled. */
    if (config_ns_check_options(&c->namespaces.top, "channel.options", err) < 0) return -1;
    if (config_ns_check_prefixes(&c->namespaces, err) < 0) return -1;
    if (c->client_sign_in && !c->client_token_hmac_secret_key[0])
        return config_fail(err, "key \"client.sign_in\": signing tokens needs "
                           "\"client.token_hmac_secret_key\"");
    return check_spaces(c, err);
}

void config_lint(const config *c, config_warnings *warn) {
    if (c->api_insecure && c->api_key[0])
        warn_add(warn, "keys \"api.insecure\" and \"api.key\" are both set: the API "
                 "accepts every call without a key, and api.key is ignored");
}

void config_print_keys(FILE *out) {
    char type[64], def[64];
    for (size_t i = 0; i < NKEYS; i++) {
        const key_spec *k = &keys[i];
        fprintf(out, "%-45s %-22s %-9s %s\n", k->name,
                type_name(k, type, sizeof(type)),
                default_text(k, def, sizeof(def)), k->help);
    }
}

void config_write_markdown(FILE *out) {
    char env[128], type[64], def[64];
    fputs("| Key | Environment variable | Type | Default | Meaning |\n"
          "|-----|----------------------|------|---------|---------|\n", out);
    for (size_t i = 0; i < NKEYS; i++) {
        const key_spec *k = &keys[i];
        env_name(k, env, sizeof(env));
        type_name(k, type, sizeof(type));
        for (char *p = type; *p; p++) if (*p == '|') *p = '/'; /* table cells */
        fprintf(out, "| `%s` | `%s` | %s | `%s` | %s |\n", k->name, env, type,
                default_text(k, def, sizeof(def)), k->help);
    }
}
