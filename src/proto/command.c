/* command: owns the decoding of one client command line (protocol.md A3/A5)
 * into a proto_cmd, and the compact re-encoding of raw JSON values.
 *
 * Flow: jansson parses the line; one pass over the top-level keys finds `id`
 * and the first non-null request field (in protocol order, so `connect` wins
 * over `subscribe` if a client sent both); one pass over the request object
 * fills proto_cmd from a per-command field table. Keys no table names are
 * ignored, so newer clients keep working.
 *
 * Lifetime: the string fields of proto_cmd point into cmd->root (they are
 * json_string_value results) and cmd->subs is borrowed from it; all of them
 * are valid until proto_cmd_free. cmd->data is a malloc'd copy. rpc's method
 * is "" (never NULL) when absent; an id sent with `send` is dropped (0).
 *
 * null values: a null request field is absent; a null typed field (string,
 * bool, number, object) is absent too (protobuf JSON semantics); a null raw
 * `data` is the JSON value null and is kept as "null". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/command.h"

/* ---------------------------------------------------------------------------
 * Errors and names
 * ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Indexed by cmd_type; entries 1.. are the request field names. */
static const char *const cmd_names[CMD_COUNT] = {
    "pong", "connect", "subscribe", "unsubscribe", "publish", "presence",
    "presence_stats", "history", "ping", "send", "rpc", "refresh",
    "sub_refresh",
};

const char *proto_cmd_name(cmd_type t) {
    return (unsigned)t < CMD_COUNT ? cmd_names[t] : "unknown";
}

/* The command type a top-level key requests, or CMD_PONG if it is not a
 * request field. */
static cmd_type request_type(const char *key) {
    for (int t = CMD_CONNECT; t < CMD_COUNT; t++)
        if (strcmp(key, cmd_names[t]) == 0) return (cmd_type)t;
    return CMD_PONG;
}

/* ---------------------------------------------------------------------------
 * Compact re-encoding of raw JSON
 * ------------------------------------------------------------------------ */

/* jansson >= 2.8 always keeps object keys in insertion order, so no
 * JSON_PRESERVE_ORDER. It escapes control characters in strings, so the
 * output of a compact dump never holds a raw newline. */
#define COMPACT_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

typedef struct dump_buf {
    char *p;
    size_t len, cap;
} dump_buf;

/* json_dump_callback sink: appends into one growing buffer, keeping room for
 * the terminating NUL (cheaper than json_dumps, which copies once more). */
static int dump_append(const char *buf, size_t size, void *data) {
    dump_buf *b = data;
    if (b->len + size + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + size + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, size);
    b->len += size;
    return 0;
}

char *proto_json_compact(const json_t *value, size_t *len) {
    dump_buf b = {NULL, 0, 0};
    if (!value || json_dump_callback(value, dump_append, &b, COMPACT_FLAGS) != 0 ||
        !b.p) {
        free(b.p);
        return NULL;
    }
    b.p[b.len] = '\0';
    if (len) *len = b.len;
    return b.p;
}

/* ---------------------------------------------------------------------------
 * Field tables
 * ------------------------------------------------------------------------ */

typedef enum {
    F_STR,      /* const char * into root */
    F_BOOL,     /* int 0/1 */
    F_INT,      /* int, int32 range */
    F_I32,      /* int32_t */
    F_I64,      /* int64_t */
    F_U64,      /* uint64_t, >= 0 */
    F_RAW,      /* any JSON value -> cmd->data, cmd->data_len */
    F_OBJECT,   /* json_t * object, borrowed from root */
    F_SINCE     /* history.since {offset, epoch} */
} field_kind;

typedef struct field_spec {
    const char *name;
    field_kind kind;
    size_t off;         /* offsetof the target in proto_cmd (F_RAW, F_SINCE: unused) */
    int required;
} field_spec;

/* offsetof that fails to compile if the field does not have type T. */
#define OFF(f, T) _Generic(((proto_cmd *)0)->f, T: offsetof(proto_cmd, f))

#define STR(n, f)      { n, F_STR, OFF(f, const char *), 0 }
#define NEED_STR(n, f) { n, F_STR, OFF(f, const char *), 1 }
#define BOOL(n, f)     { n, F_BOOL, OFF(f, int), 0 }
#define INT(n, f)      { n, F_INT, OFF(f, int), 0 }
#define I32(n, f)      { n, F_I32, OFF(f, int32_t), 0 }
#define I64(n, f)      { n, F_I64, OFF(f, int64_t), 0 }
#define U64(n, f)      { n, F_U64, OFF(f, uint64_t), 0 }
#define OBJECT(n, f)   { n, F_OBJECT, OFF(f, json_t *), 0 }
#define RAW(req)       { "data", F_RAW, 0, req }

static const field_spec connect_fields[] = {
    STR("token", token), RAW(0), STR("name", name),
    STR("version", version), OBJECT("subs", subs),
};
static const field_spec subscribe_fields[] = {
    NEED_STR("channel", channel), STR("token", token), RAW(0),
    BOOL("recover", recover), BOOL("positioned", positioned),
    BOOL("recoverable", recoverable), BOOL("join_leave", join_leave),
    U64("offset", offset), STR("epoch", epoch), I64("flag", flag),
    INT("type", sub_type), INT("phase", phase), STR("cursor", cursor),
    I32("limit", limit), OBJECT("tf", tf), STR("delta", delta),
};
static const field_spec channel_fields[] = { NEED_STR("channel", channel) };
static const field_spec publish_fields[] = {
    NEED_STR("channel", channel), RAW(0), INT("type", pub_type), STR("key", key),
    BOOL("removed", removed),
};
static const field_spec history_fields[] = {
    NEED_STR("channel", channel), I32("limit", limit),
    { "since", F_SINCE, 0, 0 }, BOOL("reverse", reverse),
};
static const field_spec since_fields[] = {
    U64("offset", since_offset), STR("epoch", since_epoch),
};
static const field_spec send_fields[] = { RAW(0) };
static const field_spec rpc_fields[] = { STR("method", method), RAW(0) };
static const field_spec refresh_fields[] = { NEED_STR("token", token) };
static const field_spec sub_refresh_fields[] = {
    NEED_STR("channel", channel), NEED_STR("token", token),
};

typedef struct field_table {
    const field_spec *specs;
    size_t n;
} field_table;

#define TABLE(a) { a, sizeof(a) / sizeof(a[0]) }

/* Indexed by cmd_type. */
static const field_table cmd_tables[CMD_COUNT] = {
    [CMD_CONNECT] = TABLE(connect_fields),
    [CMD_SUBSCRIBE] = TABLE(subscribe_fields),
    [CMD_UNSUBSCRIBE] = TABLE(channel_fields),
    [CMD_PUBLISH] = TABLE(publish_fields),
    [CMD_PRESENCE] = TABLE(channel_fields),
    [CMD_PRESENCE_STATS] = TABLE(channel_fields),
    [CMD_HISTORY] = TABLE(history_fields),
    [CMD_SEND] = TABLE(send_fields),
    [CMD_RPC] = TABLE(rpc_fields),
    [CMD_REFRESH] = TABLE(refresh_fields),
    [CMD_SUB_REFRESH] = TABLE(sub_refresh_fields),
};

static const field_table since_table = TABLE(since_fields);

/* ---------------------------------------------------------------------------
 * Field decoding
 * ------------------------------------------------------------------------ */

static int parse_fields(proto_cmd *cmd, json_t *obj, const field_table *tab,
                        const char *prefix, char *err, size_t errlen);

/* Reads an integer in [lo, hi]. */
static int get_int(const json_t *v, long long lo, long long hi, long long *out,
                   const char *prefix, const char *name, char *err, size_t errlen) {
    if (!json_is_integer(v))
        return fail(err, errlen, "%s.%s: expected an integer", prefix, name);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return fail(err, errlen, "%s.%s: out of range", prefix, name);
    *out = x;
    return 0;
}

static int set_number(proto_cmd *cmd, const field_spec *s, const json_t *v,
                      const char *prefix, char *err, size_t errlen) {
    char *p = (char *)cmd + s->off;
    long long x;
    switch (s->kind) {
    case F_INT:
        if (get_int(v, INT32_MIN, INT32_MAX, &x, prefix, s->name, err, errlen)) return -1;
        *(int *)p = (int)x;
        return 0;
    case F_I32:
        if (get_int(v, INT32_MIN, INT32_MAX, &x, prefix, s->name, err, errlen)) return -1;
        *(int32_t *)p = (int32_t)x;
        return 0;
    case F_I64:
        if (get_int(v, INT64_MIN, INT64_MAX, &x, prefix, s->name, err, errlen)) return -1;
        *(int64_t *)p = (int64_t)x;
        return 0;
    default: /* F_U64; json integers never exceed INT64_MAX */
        if (get_int(v, 0, INT64_MAX, &x, prefix, s->name, err, errlen)) return -1;
        *(uint64_t *)p = (uint64_t)x;
        return 0;
    }
}

static int set_object(proto_cmd *cmd, const field_spec *s, json_t *v,
                      const char *prefix, char *err, size_t errlen) {
    if (!json_is_object(v))
        return fail(err, errlen, "%s.%s: expected an object", prefix, s->name);
    if (s->kind == F_OBJECT) {
        *(json_t **)((char *)cmd + s->off) = v;
        return 0;
    }
    char sub[64];                       /* F_SINCE: "history.since" */
    snprintf(sub, sizeof(sub), "%s.%s", prefix, s->name);
    cmd->has_since = 1;
    return parse_fields(cmd, v, &since_table, sub, err, errlen);
}

/* Stores one non-null (or raw) value according to its spec. */
static int set_field(proto_cmd *cmd, const field_spec *s, json_t *v,
                     const char *prefix, char *err, size_t errlen) {
    char *p = (char *)cmd + s->off;
    switch (s->kind) {
    case F_STR:
        if (!json_is_string(v))
            return fail(err, errlen, "%s.%s: expected a string", prefix, s->name);
        *(const char **)p = json_string_value(v);
        return 0;
    case F_BOOL:
        if (!json_is_boolean(v))
            return fail(err, errlen, "%s.%s: expected a boolean", prefix, s->name);
        *(int *)p = json_is_true(v);
        return 0;
    case F_RAW:
        cmd->data = proto_json_compact(v, &cmd->data_len);
        return cmd->data ? 0 : fail(err, errlen, "%s.data: out of memory", prefix);
    case F_OBJECT:
    case F_SINCE:
        return set_object(cmd, s, v, prefix, err, errlen);
    default:
        return set_number(cmd, s, v, prefix, err, errlen);
    }
}

/* One pass over obj's keys: each key the table names is decoded, others are
 * ignored; then every required field must have been seen. */
static int parse_fields(proto_cmd *cmd, json_t *obj, const field_table *tab,
                        const char *prefix, char *err, size_t errlen) {
    unsigned seen = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t i = 0;
        while (i < tab->n && strcmp(key, tab->specs[i].name) != 0) i++;
        if (i == tab->n) continue;
        if (json_is_null(v) && tab->specs[i].kind != F_RAW) continue;
        if (set_field(cmd, &tab->specs[i], v, prefix, err, errlen) != 0) return -1;
        seen |= 1u << i;
    }
    for (size_t i = 0; i < tab->n; i++)
        if (tab->specs[i].required && !(seen & (1u << i)))
            return fail(err, errlen, "%s.%s: required", prefix, tab->specs[i].name);
    return 0;
}

/* ---------------------------------------------------------------------------
 * The envelope
 * ------------------------------------------------------------------------ */

static int decode_id(const json_t *v, uint32_t *id, char *err, size_t errlen) {
    if (json_is_null(v)) return 0;
    if (!json_is_integer(v)) return fail(err, errlen, "id: expected an integer");
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > (json_int_t)UINT32_MAX) return fail(err, errlen, "id: out of range");
    *id = (uint32_t)x;
    return 0;
}

/* Fills cmd->id and cmd->type from the top-level keys; *body is the request
 * object (NULL for a pong). */
static int decode_envelope(proto_cmd *cmd, json_t **body, char *err, size_t errlen) {
    const char *key;
    json_t *v;
    int unknown = 0;
    cmd_type type = CMD_COUNT;
    *body = NULL;
    json_object_foreach(cmd->root, key, v) {
        if (strcmp(key, "id") == 0) {
            if (decode_id(v, &cmd->id, err, errlen) != 0) return -1;
            continue;
        }
        cmd_type t = request_type(key);
        if (t == CMD_PONG) unknown = 1;
        else if (!json_is_null(v) && t < type) {
            type = t;
            *body = v;
        }
    }
    if (!*body) {                                   /* {} is a pong */
        if (cmd->id == 0) return 0;
        return fail(err, errlen, "%s", unknown ? "unknown command" : "no request");
    }
    if (!json_is_object(*body))
        return fail(err, errlen, "%s: expected an object", cmd_names[type]);
    if (type == CMD_SEND) cmd->id = 0;              /* send is never answered */
    else if (cmd->id == 0) return fail(err, errlen, "%s: id required", cmd_names[type]);
    cmd->type = type;
    return 0;
}

static int decode_root(proto_cmd *cmd, char *err, size_t errlen) {
    json_t *body;
    if (!json_is_object(cmd->root)) return fail(err, errlen, "not a JSON object");
    if (decode_envelope(cmd, &body, err, errlen) != 0) return -1;
    if (!body) return 0;
    if (parse_fields(cmd, body, &cmd_tables[cmd->type], cmd_names[cmd->type],
                     err, errlen) != 0)
        return -1;
    if (cmd->type == CMD_RPC && !cmd->method) cmd->method = "";
    /* a publication has data; only a map removal (type 1) goes without */
    if (cmd->type == CMD_PUBLISH && !cmd->data && !(cmd->pub_type == 1 && cmd->removed))
        return fail(err, errlen, "publish.data: required");
    return 0;
}

int proto_cmd_decode(const char *line, size_t len, proto_cmd *cmd,
                     char *err, size_t errlen) {
    json_error_t jerr;
    memset(cmd, 0, sizeof(*cmd));
    if (err && errlen) err[0] = '\0';
    cmd->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!cmd->root)
        return fail(err, errlen, "invalid JSON at %d: %s", jerr.position, jerr.text);
    if (decode_root(cmd, err, errlen) != 0) {
        proto_cmd_free(cmd);
        return -1;
    }
    return 0;
}

void proto_cmd_free(proto_cmd *cmd) {
    if (!cmd) return;
    json_decref(cmd->root);
    free(cmd->data);
    memset(cmd, 0, sizeof(*cmd));
}
