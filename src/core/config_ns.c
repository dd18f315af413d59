/* config_ns: the "channel.namespaces" array of the configuration and the
 * checks shared with "channel.options" (see config_ns.h). Errors follow
 * config.c's style and name the exact element:
 *   key "channel.namespaces[2].name": duplicate namespace "chat" */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/config_ns.h"

/* ---------------------------------------------------------------------------
 * The option table, from NS_OPTION_KEYS
 * ------------------------------------------------------------------------ */

typedef enum { NT_INT, NT_BOOL, NT_ENUM, NT_STR } opt_type;

typedef struct opt_spec {
    const char *key;
    size_t off;                 /* offsetof the field in ns_options */
    opt_type type;
    long long min, max;         /* NT_INT */
    const char *const *choices; /* NT_ENUM */
} opt_spec;

#define OPT_INT(key, field, lo, hi) { key, offsetof(ns_options, field), NT_INT, lo, hi, NULL },
#define OPT_BOOL(key, field, lo, hi) { key, offsetof(ns_options, field), NT_BOOL, 0, 1, NULL },
#define OPT_ENUM(key, field, ch, x) { key, offsetof(ns_options, field), NT_ENUM, 0, 0, ch },
#define OPT_STR(key, field, x, y) { key, offsetof(ns_options, field), NT_STR, 0, 0, NULL },
#define OPT(key, field, type, a, b, help) OPT_##type(key, field, a, b)

static const opt_spec opts[] = { NS_OPTION_KEYS(OPT) };

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int *opt_at(ns_options *o, const opt_spec *s) {
    return (int *)(void *)((char *)o + s->off);
}

static char **str_opt_at(ns_options *o, const opt_spec *s) {
    return (char **)(void *)((char *)o + s->off);
}

static const opt_spec *find_opt(const char *key) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].key, key) == 0) return &opts[i];
    return NULL;
}

/* 1 if some option's key starts with "<name>." (a nested object). */
static int is_group(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < NOPTS; i++)
        if (strncmp(opts[i].key, name, n) == 0 && opts[i].key[n] == '.') return 1;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */


/* key "<path>": expected <what>, got <j as compact JSON>. */
static int bad_json(char *err, const char *path, const char *what, const json_t *j) {
    char *got = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    const char *dots = got && strlen(got) > 40 ? "..." : "";
    config_fail(err, "key \"%s\": expected %s, got %.40s%s", path, what, got ? got : "?", dots);
    free(got);
    return -1;
}

static const char *opt_expected(const opt_spec *s, char *buf, size_t size) {
    size_t o = 0;
    switch (s->type) {
    case NT_BOOL: snprintf(buf, size, "true or false"); break;
    case NT_STR: snprintf(buf, size, "a string"); break;
    case NT_INT:
        if (s->max == INT_MAX) snprintf(buf, size, "an integer >= %lld", s->min);
        else snprintf(buf, size, "an integer between %lld and %lld", s->min, s->max);
        break;
    case NT_ENUM:
        o = (size_t)snprintf(buf, size, "one of ");
        for (int i = 0; s->choices[i] && o < size; i++)
            o += (size_t)snprintf(buf + o, size - o, "%s\"%s\"", i ? ", " : "", s->choices[i]);
        break;
    }
    return buf;
}

/* unknown key "channel.namespaces[0].presense" (did you mean "presence"?);
 * key is the option's dotted name ("map.mdoe"). */
static int unknown_opt(char *err, const char *path, const char *key) {
    const char *best = NULL;
    size_t bestd = 3; /* at most 2 edits */
    for (size_t i = 0; i <= NOPTS; i++) {
        const char *cand = i < NOPTS ? opts[i].key : "name";
        size_t d = config_edit_distance(key, cand);
        if (d < bestd) bestd = d, best = cand;
    }
    if (best) return config_fail(err, "unknown key \"%s\" (did you mean \"%s\"?)", path, best);
    return config_fail(err, "unknown key \"%s\"", path);
}

/* ---------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------ */

/* 1..NS_NAME_MAX bytes of A-Z a-z 0-9 _ - . */
static int name_valid(const char *s, size_t len) {
    if (len < 1 || len > NS_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok) return 0;
    }
    return 1;
}

#define NAME_EXPECTED "1 to 64 characters of A-Z a-z 0-9 _ - ."

/* The map options that must agree with each other. */
static int check_map(const ns_options *o, const char *prefix, char *err) {
    if (o->subscription_type == NS_SUB_STREAM) return 0;
    const char *mode = ns_map_modes[o->map_mode];
    if (o->history_size || o->force_recovery)
        return config_fail(err, "key \"%s.%s\": a %s channel keeps its changes in "
                           "map.stream_size, not history", prefix,
                           o->history_size ? "history_size" : "force_recovery",
                           ns_subscription_types[o->subscription_type]);
    if (o->map_mode == NS_MAP_PERSISTENT && o->map_key_ttl_ms)
        return config_fail(err, "key \"%s.map.key_ttl_ms\": persistent keys never "
                           "expire (leave it 0, or use map.mode recoverable)", prefix);
    if (o->map_mode != NS_MAP_PERSISTENT && !o->map_key_ttl_ms)
        return config_fail(err, "key \"%s.map.key_ttl_ms\": map.mode %s needs a key TTL "
                           "(> 0)", prefix, mode);
    if (o->map_mode == NS_MAP_PERSISTENT && o->subscription_type != NS_SUB_MAP)
        return config_fail(err, "key \"%s.map.mode\": presence maps (%s) cannot be "
                           "persistent", prefix, ns_subscription_types[o->subscription_type]);
    return 0;
}

/* The board options that must agree with each other. */
static int check_board(const ns_options *o, const char *prefix, char *err) {
    if (!o->board_width && !o->board_height) return 0;
    int bits = ns_board_bits(o);
    uint32_t rgb[256];
    int n = ns_board_palette(o, rgb);
    if (o->board_width < NS_BOARD_SIDE_MIN || o->board_height < NS_BOARD_SIDE_MIN)
        return config_fail(err, "key \"%s.board.%s\": a board is %d to %d pixels on a side",
                           prefix, o->board_width < NS_BOARD_SIDE_MIN ? "width" : "height",
                           NS_BOARD_SIDE_MIN, NS_BOARD_SIDE_MAX);
    if (bits != 4 && bits != 8)
        return config_fail(err, "key \"%s.board.bits\": 4 or 8 (got %d)", prefix, bits);
    if (n < 2 || n > 1 << bits)
        return config_fail(err, "key \"%s.board.palette\": expected 2 to %d colours as "
                           "\"#rrggbb,#rrggbb,...\"", prefix, 1 << bits);
    if (o->subscription_type != NS_SUB_STREAM)
        return config_fail(err, "key \"%s.subscription_type\": a board is a stream channel",
                           prefix);
    if (o->history_size <= 0)
        return config_fail(err, "key \"%s.history_size\": a board needs history (> 0): "
                           "viewers catch up from its batches", prefix);
    return 0;
}

/* An auction is a persistent map that clients do not write directly. */
static int check_auction(const ns_options *o, const char *prefix, char *err) {
    if (!o->auction_enabled) return 0;
    if (o->subscription_type != NS_SUB_MAP || o->map_mode != NS_MAP_PERSISTENT)
        return config_fail(err, "key \"%s.auction.enabled\": an auction is a map channel "
                           "with map.mode persistent", prefix);
    if (o->allow_publish_for_client || o->allow_publish_for_subscriber ||
        o->allow_remove_for_client || o->allow_remove_for_subscriber)
        return config_fail(err, "key \"%s.auction.enabled\": clients write lots only through "
                           "auction.open and auction.bid; turn allow_publish_* and "
                           "allow_remove_* off", prefix);
    return 0;
}

int config_ns_check_options(const ns_options *o, const char *prefix, char *err) {
    ns_options *m = (ns_options *)o; /* opt_at is not const; nothing is written */
    char exp[160];
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_spec *s = &opts[i];
        if (s->type == NT_STR) continue;
        int v = *opt_at(m, s), n = 0;
        if (s->type == NT_ENUM) while (s->choices[n]) n++;
        int lo = s->type == NT_ENUM ? 0 : (int)s->min;
        int hi = s->type == NT_ENUM ? n - 1 : (int)s->max;
        if (v < lo || v > hi)
            return config_fail(err, "key \"%s.%s\": expected %s, got %d", prefix, s->key,
                        opt_expected(s, exp, sizeof(exp)), v);
    }
    if (o->force_recovery && o->history_size == 0)
        return config_fail(err, "key \"%s.force_recovery\": needs %s.history_size > 0 "
                    "(recovery needs history)", prefix, prefix);
    if (check_map(o, prefix, err) < 0 || check_board(o, prefix, err) < 0) return -1;
    return check_auction(o, prefix, err);
}

/* A presence prefix must name a namespace of the right map type. */
static int check_prefix(const ns_registry *r, const char *pfx, int type, const char *path,
                        const char *key, char *err) {
    if (!pfx || !pfx[0]) return 0;
    const char *colon = strchr(pfx, ':');
    const ns_options *target = colon ? ns_lookup(r, pfx) : NULL;
    if (!target || target->subscription_type != type)
        return config_fail(err, "key \"%s.%s\": \"%s\" must start with the name of a "
                           "namespace whose subscription_type is %s, then ':'", path, key,
                           pfx, ns_subscription_types[type]);
    return 0;
}

int config_ns_check_prefixes(const ns_registry *r, char *err) {
    char path[128];
    for (int i = -1; i < r->nspaces; i++) {
        const ns_options *o = i < 0 ? &r->top : &r->spaces[i];
        if (i < 0) snprintf(path, sizeof(path), "channel.options");
        else snprintf(path, sizeof(path), "channel.namespaces[%d]", i);
        if (check_prefix(r, o->map_clients_presence_channel_prefix, NS_SUB_MAP_CLIENTS, path,
                         "map_clients_presence_channel_prefix", err) < 0 ||
            check_prefix(r, o->map_users_presence_channel_prefix, NS_SUB_MAP_USERS, path,
                         "map_users_presence_channel_prefix", err) < 0)
            return -1;
    }
    return 0;
}

/* Names present, valid and unique; options in range. */
int config_ns_check_spaces(const ns_registry *r, const char *key, char *err) {
    char path[128];
    for (int i = 0; i < r->nspaces; i++) {
        const char *name = r->spaces[i].name;
        snprintf(path, sizeof(path), "%s[%d]", key, i);
        if (!name)
            return config_fail(err, "key \"%s.name\": missing (every namespace needs a name)", path);
        if (!name_valid(name, strlen(name)))
            return config_fail(err, "key \"%s.name\": expected " NAME_EXPECTED ", got \"%.70s\"",
                        path, name);
        for (int j = 0; j < i; j++)
            if (strcmp(r->spaces[j].name, name) == 0)
                return config_fail(err, "key \"%s.name\": duplicate namespace \"%s\"", path, name);
        if (config_ns_check_options(&r->spaces[i], path, err) < 0) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------ */

static int parse_name(const json_t *j, const char *path, ns_options *o, char *err) {
    const char *s = json_string_value(j);
    if (!s || !name_valid(s, json_string_length(j)))
        return bad_json(err, path, NAME_EXPECTED, j);
    return (o->name = strdup(s)) ? 0 : config_fail(err, "out of memory");
}

static int parse_opt(const opt_spec *s, const json_t *j, const char *path,
                     ns_options *o, char *err) {
    char exp[160];
    const char *str = json_string_value(j);
    switch (s->type) {
    case NT_BOOL:
        if (!json_is_boolean(j)) break;
        *opt_at(o, s) = json_is_true(j);
        return 0;
    case NT_INT:
        if (!json_is_integer(j) || json_integer_value(j) < s->min ||
            json_integer_value(j) > s->max) break;
        *opt_at(o, s) = (int)json_integer_value(j);
        return 0;
    case NT_ENUM:
        for (int i = 0; str && s->choices[i]; i++)
            if (strcasecmp(str, s->choices[i]) == 0) { *opt_at(o, s) = i; return 0; }
        break;
    case NT_STR:
        if (!str) break;
        free(*str_opt_at(o, s));
        return (*str_opt_at(o, s) = strdup(str)) ? 0 : config_fail(err, "out of memory");
    }
    return bad_json(err, path, opt_expected(s, exp, sizeof(exp)), j);
}

/* One member of a namespace object; group is "" or "map." inside "map". */
static int parse_member(const char *group, const char *key, const json_t *j,
                        const char *prefix, ns_options *o, char *err) {
    char path[192], full[96];
    snprintf(path, sizeof(path), "%s.%s%s", prefix, group, key);
    snprintf(full, sizeof(full), "%s%s", group, key);
    if (!group[0] && strcmp(key, "name") == 0) return parse_name(j, path, o, err);
    const opt_spec *s = find_opt(full);
    if (s) return parse_opt(s, j, path, o, err);
    if (!group[0] && is_group(key)) {
        const char *k;
        json_t *v;
        char sub[16];
        if (!json_is_object(j)) return bad_json(err, path, "an object", j);
        snprintf(sub, sizeof(sub), "%s.", key);
        json_object_foreach((json_t *)j, k, v)
            if (parse_member(sub, k, v, prefix, o, err) < 0) return -1;
        return 0;
    }
    return unknown_opt(err, path, full);
}

/* One {"name": ..., <options>} object into o (zeroed by the caller). */
static int parse_space(const json_t *obj, const char *prefix, ns_options *o, char *err) {
    const char *key;
    json_t *j;
    if (!json_is_object(obj)) return bad_json(err, prefix, "an object", obj);
    json_object_foreach((json_t *)obj, key, j)
        if (parse_member("", key, j, prefix, o, err) < 0) return -1;
    return 0;
}

int config_ns_parse_json(const json_t *j, const char *key, ns_options **out,
                         int *n, char *err) {
    size_t i, count = json_array_size(j);
    const json_t *item;
    if (!json_is_array(j)) return bad_json(err, key, "an array of namespace objects", j);
    if (count > INT_MAX / 2) return config_fail(err, "key \"%s\": too many namespaces", key);
    ns_options *spaces = count ? calloc(count, sizeof(*spaces)) : NULL;
    if (count && !spaces) return config_fail(err, "out of memory");
    json_array_foreach(j, i, item) {
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "%s[%zu]", key, i);
        if (parse_space(item, prefix, &spaces[i], err) < 0)
            return config_ns_free_spaces(spaces, (int)count), -1;
    }
    ns_registry r = {.spaces = spaces, .nspaces = (int)count};
    if (config_ns_check_spaces(&r, key, err) < 0)
        return config_ns_free_spaces(spaces, (int)count), -1;
    *out = spaces;
    *n = (int)count;
    return 0;
}

int config_ns_parse_text(const char *text, const char *key, ns_options **out,
                         int *n, char *err) {
    json_error_t jerr;
    if (text[strspn(text, " \t\r\n")] == '\0') return *out = NULL, *n = 0, 0;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j)
        return config_fail(err, "key \"%s\": invalid JSON at column %d: %s", key,
                    jerr.column, jerr.text);
    int rc = config_ns_parse_json(j, key, out, n, err);
    json_decref(j);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Copy and free
 * ------------------------------------------------------------------------ */

int config_ns_copy(ns_registry *dst, const ns_registry *src) {
    int n = src->nspaces;
    dst->top.name = NULL;
    dst->spaces = NULL;
    dst->nspaces = 0;
    if (src->top.name && !(dst->top.name = strdup(src->top.name))) return -1;
    if (n == 0) return 0;
    if (!(dst->spaces = calloc((size_t)n, sizeof(*dst->spaces)))) return -1;
    dst->nspaces = n;
    for (int i = 0; i < n; i++) {
        ns_options *d = &dst->spaces[i];
        *d = src->spaces[i];
        d->name = NULL;
        for (size_t k = 0; k < NOPTS; k++)
            if (opts[k].type == NT_STR) *str_opt_at(d, &opts[k]) = NULL;
        if (src->spaces[i].name && !(d->name = strdup(src->spaces[i].name))) return -1;
        for (size_t k = 0; k < NOPTS; k++) {
            if (opts[k].type != NT_STR) continue;
            const char *from = *str_opt_at(&src->spaces[i], &opts[k]);
            if (from && !(*str_opt_at(d, &opts[k]) = strdup(from))) return -1;
        }
    }
    return 0;
}

void config_ns_free_spaces(ns_options *spaces, int n) {
    for (int i = 0; i < n; i++) {
        free(spaces[i].name);
        for (size_t k = 0; k < NOPTS; k++)
            if (opts[k].type == NT_STR) free(*str_opt_at(&spaces[i], &opts[k]));
    }
    free(spaces);
}

void config_ns_free(ns_registry *r) {
    free(r->top.name);
    r->top.name = NULL;
    config_ns_free_spaces(r->spaces, r->nspaces);
    r->spaces = NULL;
    r->nspaces = 0;
}

