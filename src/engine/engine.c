/* engine: what every engine shares: results, error texts, operation names,
 * and the table that builds an engine from `engine.type` (see engine.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/engine.h"

const char *engine_strerror(int err) {
    switch (err) {
    case ENGINE_OK: return "ok";
    case ENGINE_ERR_EPOCH: return "epoch mismatch";
    case ENGINE_ERR_UNAVAILABLE: return "engine unavailable";
    case ENGINE_ERR_TIMEOUT: return "engine timeout";
    case ENGINE_ERR_SHUTDOWN: return "engine shutting down";
    case ENGINE_ERR_STORE: return "durable store unavailable (the disk refused the write: full, "
                                  "read-only or failing)";
    default: return "engine internal error";
    }
}

static const char *const OP_NAMES[ENGINE_OP_COUNT] = {
    "publish", "join", "leave", "history", "history_remove", "presence_add",
    "presence_remove", "presence", "presence_stats", "subscribe", "unsubscribe",
    "map_write", "map_state", "map_stats", "map_clear", "board_put", "board_snapshot",
    "control",
};

const char *engine_suppress_name(int reason) {
    switch (reason) {
    case ENGINE_SUPPRESS_IDEMPOTENCY: return "idempotency";
    case ENGINE_SUPPRESS_VERSION: return "version";
    case ENGINE_SUPPRESS_KEY_EXISTS: return "key_exists";
    case ENGINE_SUPPRESS_KEY_NOT_FOUND: return "key_not_found";
    case ENGINE_SUPPRESS_POSITION_MISMATCH: return "position_mismatch";
    case ENGINE_SUPPRESS_COOLDOWN: return "cooldown";
    default: return "";
    }
}

void engine_pub_ref(engine_pub *p) {
    if (p->payload) rcbuf_ref(p->payload);
    if (p->key) rcbuf_ref(p->key);
}

void engine_pub_unref(engine_pub *p) {
    if (p->payload) rcbuf_unref(p->payload);
    if (p->key) rcbuf_unref(p->key);
}

const char *engine_op_name(engine_op op) {
    return op >= 0 && op < ENGINE_OP_COUNT ? OP_NAMES[op] : "unknown";
}

/* The answer when not even an error result can be allocated: shared,
 * read-only, never freed (engine_result_free knows it). */
static engine_result oom_result = {.err = ENGINE_ERR_INTERNAL};

engine_result *engine_result_new(engine_op op, int err) {
    engine_result *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->op = op;
    r->err = err;
    return r;
}

void engine_result_free(engine_result *res) {
    if (!res || res == &oom_result) return;
    for (size_t i = 0; i < res->npubs; i++) engine_pub_unref(&res->pubs[i]);
    free(res->pubs);
    free(res->cursor);
    free(res->entries);
    rcbuf_unref(res->blob);
    free(res);
}

rcbuf *engine_key_new(const char *key, size_t len) {
    rcbuf *b = rcbuf_new(len + 1);
    if (!b) return NULL;
    memcpy(b->data, key, len);
    b->data[len] = '\0';
    b->len = (uint32_t)len;
    return b;
}

void engine_answer(engine_cb cb, void *ud, engine_op op, engine_result *res) {
    if (!res) res = engine_result_new(op, ENGINE_ERR_INTERNAL);
    if (!res) res = &oom_result;
    if (cb) cb(ud, res);
    else engine_result_free(res);
}

/* ---- boards ---- */

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int engine_board_next(const uint8_t *p, size_t len, size_t *pos, engine_board_pixel *px) {
    if (*pos > len || len - *pos < ENGINE_BOARD_PIXEL_SIZE) return 0;
    const uint8_t *r = p + *pos;
    size_t ulen = r[5];
    if (len - *pos - ENGINE_BOARD_PIXEL_SIZE < ulen) return 0;
    px->x = (uint32_t)le(r, 2);
    px->y = (uint32_t)le(r + 2, 2);
    px->color = r[4];
    px->user_len = ulen;
    px->time_ms = (int64_t)le(r + 6, 8);
    px->user = (const char *)r + ENGINE_BOARD_PIXEL_SIZE;
    *pos += ENGINE_BOARD_PIXEL_SIZE + ulen;
    return 1;
}

size_t engine_board_bytes(uint32_t width, uint32_t height, int bits) {
    return ((size_t)width * (size_t)bits + 7) / 8 * height;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++, v >>= 8) p[i] = (uint8_t)v;
}

size_t engine_board_user_len(const char *user) {
    size_t n = strlen(user);
    return n > ENGINE_BOARD_USER_MAX ? ENGINE_BOARD_USER_MAX : n;
}

size_t engine_board_encode(uint8_t *out, const engine_board_put_req *req) {
    size_t ulen = engine_board_user_len(req->user);
    put_le(out, req->x, 2);
    put_le(out + 2, req->y, 2);
    out[4] = (uint8_t)req->color;
    out[5] = (uint8_t)ulen;
    put_le(out + 6, (uint64_t)req->now_ms, 8);
    memcpy(out + ENGINE_BOARD_PIXEL_SIZE, req->user, ulen);
    return ENGINE_BOARD_PIXEL_SIZE + ulen;
}

int engine_board_opts_valid(const engine_board_opts *o) {
    return o->width && o->height && o->width <= 65535 && o->height <= 65535 && (o->bits == 4 || o->bits == 8) &&
           o->batch_ms > 0 && o->history_size > 0;
}

int engine_board_valid(const engine_board_put_req *req) {
    const engine_board_opts *o = &req->board;
    return engine_board_opts_valid(o) && req->x < o->width && req->y < o->height && req->color < 1u << o->bits &&
           req->user;
}

/* ---- the table ---- */

typedef struct engine_type {
    const char *name;
    engine *(*make)(const config *cfg, const engine_events *events, char *err, size_t errlen);
} engine_type;

#ifdef PLAZA_TEST_ENGINES
static engine *delayed_make(const config *cfg, const engine_events *events,
                            char *err, size_t errlen) {
    engine *e = engine_delayed_new(cfg, events);
    if (!e) snprintf(err, errlen, "engine.type \"delayed\": the engine could not start");
    return e;
}
#endif

static const engine_type TYPES[] = {
    {"memory", engine_memory_open},
    {"redis", engine_redis_new},
#ifdef PLAZA_TEST_ENGINES
    {"delayed", delayed_make},
#endif
};

#define NTYPES (sizeof(TYPES) / sizeof(TYPES[0]))

const char *engine_types(void) {
#ifdef PLAZA_TEST_ENGINES
    return "memory, redis, delayed";
#else
    return "memory, redis";
#endif
}

engine *engine_new(const config *cfg, const engine_events *events,
                   char *err, size_t errlen) {
    const char *type = cfg->engine_type && cfg->engine_type[0] ? cfg->engine_type : "memory";
    for (size_t i = 0; i < NTYPES; i++) {
        if (strcmp(TYPES[i].name, type) != 0) continue;
        return TYPES[i].make(cfg, events, err, errlen);
    }
    snprintf(err, errlen, "engine.type: unknown engine \"%s\" (this build has: %s)",
             type, engine_types());
    return NULL;
}
