/* config_ns: the "channel.namespaces" array of the configuration and the
 * checks shared with "channel.options" (see config_ns.h). Errors follow
 * config.c's style and name the exact element:
 *   key "channel.namespaces[2].name": duplicate namespace "chat" */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/config_ns.h"

/* ---------------------------------------------------------------------------
 * The option table, from NS_OPTION_KEYS
 * ------------------------------------------------------------------------ */

typedef struct opt_spec {
    const char *key;
    size_t off;                 /* offsetof the int field in ns_options */
    int is_bool;
    long long min, max;
} opt_spec;

#define IS_BOOL_BOOL 1
#define IS_BOOL_INT 0
#define OPT(key, field, type, lo, hi, help) \
    { key, offsetof(ns_options, field), IS_BOOL_##type, lo, hi },

static const opt_spec opts[] = { NS_OPTION_KEYS(OPT) };

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int *opt_at(ns_options *o, const opt_spec *s) {
    return (int *)(void *)((char *)o + s->off);
}

static const opt_spec *find_opt(const char *key) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].key, key) == 0) return &opts[i];
    return NULL;
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
    if (s->is_bool) snprintf(buf, size, "true or false");
    else if (s->max == INT_MAX) snprintf(buf, size, "an integer >= %lld", s->min);
    else snprintf(buf, size, "an integer between %lld and %lld", s->min, s->max);
    return buf;
}

/* unknown key "channel.namespaces[0].presense" (did you mean "presence"?) */
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

int config_ns_check_options(const ns_options *o, const char *prefix, char *err) {
    ns_options *m = (ns_options *)o; /* opt_at is not const; nothing is written */
    char exp[64];
    for (size_t i = 0; i < NOPTS; i++) {
        int v = *opt_at(m, &opts[i]);
        if (v < opts[i].min || v > opts[i].max)
            return config_fail(err, "key \"%s.%s\": expected %s, got %d", prefix, opts[i].key,
                        opt_expected(&opts[i], exp, sizeof(exp)), v);
    }
    if (o->force_recovery && o->history_size == 0)
        return config_fail(err, "key \"%s.force_recovery\": needs %s.history_size > 0 "
                    "(recovery needs history)", prefix, prefix);
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
    char exp[64];
    int ok = s->is_bool ? json_is_boolean(j)
                        : json_is_integer(j) && json_integer_value(j) >= s->min &&
                          json_integer_value(j) <= s->max;
    if (!ok) return bad_json(err, path, opt_expected(s, exp, sizeof(exp)), j);
    *opt_at(o, s) = s->is_bool ? json_is_true(j) : (int)json_integer_value(j);
    return 0;
}

/* One {"name": ..., <options>} object into o (zeroed by the caller). */
static int parse_space(const json_t *obj, const char *prefix, ns_options *o, char *err) {
    const char *key;
    json_t *j;
    if (!json_is_object(obj)) return bad_json(err, prefix, "an object", obj);
    json_object_foreach((json_t *)obj, key, j) {
        char path[160];
        const opt_spec *s = find_opt(key);
        snprintf(path, sizeof(path), "%s.%s", prefix, key);
        int rc = strcmp(key, "name") == 0 ? parse_name(j, path, o, err)
                 : s ? parse_opt(s, j, path, o, err)
                     : unknown_opt(err, path, key);
        if (rc < 0) return -1;
    }
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
        dst->spaces[i] = src->spaces[i];
        dst->spaces[i].name = NULL;
        if (src->spaces[i].name && !(dst->spaces[i].name = strdup(src->spaces[i].name)))
            return -1;
    }
    return 0;
}

void config_ns_free_spaces(ns_options *spaces, int n) {
    for (int i = 0; i < n; i++) free(spaces[i].name);
    free(spaces);
}

void config_ns_free(ns_registry *r) {
    free(r->top.name);
    r->top.name = NULL;
    config_ns_free_spaces(r->spaces, r->nspaces);
    r->spaces = NULL;
    r->nspaces = 0;
}
