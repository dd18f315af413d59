/* engine_redis_board: boards on Redis (see engine.h, "boards"; scripts in
 * engine_redis_lua.h, REDIS_LUA_BOARD_* and REDIS_LUA_COOLDOWN).
 *
 * The bitfield is a Redis string next to the channel's stream
 * ({P:C}.b), so every node serves the same board. A put with a cooldown
 * first asks Redis (SET NX PX of the user's key {P:C}.c.<user>: one round
 * trip; refused at once with the time left). Accepted puts join this node's
 * open batch of the board; batch_ms after it opened (or at once when it
 * holds REDIS_BOARD_BATCH_MAX pixels) one script sets its pixels with
 * BITFIELD and publishes it like any publication (next offset, the stream,
 * PUBLISH), then every put of the batch is answered with that position.
 * Several nodes each batch their own puts; Redis orders the batches, so a
 * board has one write order. A snapshot is the bitfield and the position
 * it reflects, read in one script: every batch up to it is in it.
 *
 * Engine thread only, but redis_board_put/_snapshot (any thread: they queue
 * a call). At stop, open batches go out before the connections close. */
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "engine/engine_redis_int.h"
#include "obs/log.h"

#define REDIS_BOARD_BATCH_MAX 4096

/* A board's open batch on this node. */
typedef struct rboard {
    redis_engine *re;
    char *channel;
    engine_board_opts opts;        /* of the latest put: the batch goes out with them */
    uint8_t *rec;                  /* the records (engine_board_encode) */
    size_t len, cap;
    uint32_t n;
    uint32_t *px;                  /* per pixel: bit offset, colour */
    rcall *waits, **waits_tail;    /* the puts of the batch, answered when it is out */
    uv_timer_t timer;
    int open;
} rboard;

typedef struct rbatch {            /* a batch on its way: whom to answer */
    rcall *waits;
} rbatch;

static void board_free_cb(uv_handle_t *h) {
    rboard *b = h->data;
    free(b->channel);
    free(b->rec);
    free(b->px);
    free(b);
}

/* ------------------------------------------------------------ answers */

/* The batch's call answered: each put gets the batch's position (or its
 * error). Engine thread: from the reply, a timeout or a dropped connection. */
static void answer_waits(rcall *waits, const engine_result *res, int err) {
    for (rcall *w = waits, *next; w; w = next) {
        next = w->next;
        engine_result *r = res ? engine_result_new(ENGINE_OP_BOARD_PUT, res->err) : NULL;
        if (r) r->top = res->top;
        redis_finish(w, r, r ? 0 : err);
    }
}

static void batch_done(void *ud, engine_result *res) {
    rbatch *bt = ud;
    answer_waits(bt->waits, res, ENGINE_ERR_INTERNAL);
    engine_result_free(res);
    free(bt);
}

static void on_batch(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: board batch of %s: %s", c->channel, r->str);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(ENGINE_OP_BOARD_PUT, ENGINE_OK);
    if (res) {
        res->top.offset = redis_reply_u64(r->element[0]);
        redis_reply_epoch(r->element[1], res->top.epoch);
    }
    redis_finish(c, res, res ? 0 : ENGINE_ERR_INTERNAL);
}

static void on_snapshot(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: board snapshot of %s: %s", c->channel, r->str);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    engine_result *res = engine_result_new(ENGINE_OP_BOARD_SNAPSHOT, ENGINE_OK);
    size_t bytes = engine_board_bytes(c->board->opts.width, c->board->opts.height, c->board->opts.bits);
    if (!res || !(res->blob = rcbuf_new(bytes))) {
        engine_result_free(res);
        redis_finish(c, NULL, ENGINE_ERR_INTERNAL);
        return;
    }
    res->top.offset = redis_reply_u64(r->element[0]);
    redis_reply_epoch(r->element[1], res->top.epoch);
    const redisReply *bits = r->element[2];
    size_t have = bits->type == REDIS_REPLY_STRING ? (bits->len < bytes ? bits->len : bytes) : 0;
    memcpy(res->blob->data, bits->str, have);                 /* a board never drawn on is 0 */
    memset(res->blob->data + have, 0, bytes - have);
    redis_finish(c, res, 0);
}

/* --------------------------------------------------------------- batches */

/* Sends the board's open batch: one script call, whose answer answers the
 * batch's puts (batch_done). */
static void flush(rboard *b) {
    redis_engine *re = b->re;
    if (!b->open) return;
    b->open = 0;
    uv_timer_stop(&b->timer);
    rbatch *bt = calloc(1, sizeof(*bt));
    rcall *c = bt ? calloc(1, sizeof(*c)) : NULL;
    int argc = 16 + 2 * (int)b->n;                     /* 16 before the pixels */
    const char **argv = c ? malloc((size_t)argc * sizeof(*argv)) : NULL;
    size_t *lens = argv ? malloc((size_t)argc * sizeof(*lens)) : NULL;
    char *nums = lens ? malloc((size_t)b->n * 2 * 12 + 8 * 24) : NULL;
    rcall *waits = b->waits;
    b->waits = NULL;
    b->waits_tail = &b->waits;
    if (!nums || !(c->channel = strdup(b->channel)) || !(c->payload = rcbuf_copy(b->rec, b->len))) {
        log_error("redis: out of memory; a batch of board %s fails", b->channel);
        answer_waits(waits, NULL, ENGINE_ERR_INTERNAL);  /* its puts are told */
        if (c) { free(c->channel); free(c); }
        free(bt); free(argv); free(lens); free(nums);
        b->len = b->n = 0;
        return;
    }
    bt->waits = waits;
    c->re = re;
    c->kind = R_BOARD_BATCH;
    c->cb = batch_done;
    c->ud = bt;
    uv_mutex_lock(&re->lock);
    re->pending++;
    uv_mutex_unlock(&re->lock);
    char keys[3][1100], ch[1100], epoch[ENGINE_EPOCH_MAX + 1];
    redis_key(re, b->channel, "m", keys[0], sizeof(keys[0]));
    redis_key(re, b->channel, "s", keys[1], sizeof(keys[1]));
    redis_key(re, b->channel, "b", keys[2], sizeof(keys[2]));
    redis_pubsub_name(re, b->channel, ch, sizeof(ch));
    redis_new_epoch(re, epoch);
    char *q = nums;
    const char *hs = q; q += snprintf(q, 24, "%d", b->opts.history_size) + 1;
    const char *ttl = q; q += snprintf(q, 24, "%lld", (long long)b->opts.history_ttl_ms) + 1;
    const char *now = q; q += snprintf(q, 24, "%lld", (long long)clock_now_ms()) + 1;
    const char *flags = q; q += snprintf(q, 24, "%u", (unsigned)ENGINE_PUB_BOARD) + 1;
    const char *mttl = q; q += snprintf(q, 24, "%lld", (long long)re->meta_ttl_ms) + 1;
    int i = 0;
    argv[i++] = "EVALSHA"; argv[i++] = re->sha_board_batch; argv[i++] = "3";
    argv[i++] = keys[0]; argv[i++] = keys[1]; argv[i++] = keys[2];
    argv[i++] = (const char *)c->payload->data;
    argv[i++] = hs; argv[i++] = ttl; argv[i++] = now; argv[i++] = ch; argv[i++] = flags; argv[i++] = epoch;
    argv[i++] = mttl; argv[i++] = re->cluster ? "SPUBLISH" : "PUBLISH";
    argv[i++] = b->opts.bits == 4 ? "u4" : "u8";
    argc = i + 2 * (int)b->n;
    for (uint32_t k = 0; k < 2 * b->n; k++) {
        argv[i++] = q;
        q += snprintf(q, 12, "%u", b->px[k]) + 1;
    }
    for (int k = 0; k < argc; k++) lens[k] = k == 6 ? c->payload->len : strlen(argv[k]);   /* records: bytes */
    b->len = b->n = 0;
    c->sh = redis_route(re, c->channel);
    if (!c->sh || !c->sh->cmd_up || redis_send_argv(re, on_batch, c, argc, argv, lens))
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
    free(argv);
    free(lens);
    free(nums);
}

static void on_due(uv_timer_t *t) { flush(t->data); }

static rboard *board_of(redis_engine *re, const char *channel) {
    rboard *b = dict_get(re->boards, channel);
    if (b) return b;
    if (!(b = calloc(1, sizeof(*b))) || !(b->channel = strdup(channel))) { free(b); return NULL; }
    b->re = re;
    b->waits_tail = &b->waits;
    uv_timer_init(&re->loop, &b->timer);
    b->timer.data = b;
    if (dict_set(re->boards, channel, b) < 0) {
        uv_close((uv_handle_t *)&b->timer, board_free_cb);
        return NULL;
    }
    return b;
}

/* An accepted put joins its board's open batch (which it opens if none). */
static void batch_add(redis_engine *re, rcall *c) {
    const rbput *p = c->board;
    rboard *b = board_of(re, c->channel);
    size_t ulen = engine_board_user_len(p->req.user);
    size_t need = b ? b->len + ENGINE_BOARD_PIXEL_SIZE + ulen : 0;
    if (b && need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < need) cap *= 2;
        uint8_t *rec = realloc(b->rec, cap);
        uint32_t *px = realloc(b->px, (cap / ENGINE_BOARD_PIXEL_SIZE + 1) * 2 * sizeof(uint32_t));
        if (rec) b->rec = rec;
        if (px) b->px = px;
        if (rec && px) b->cap = cap;
    }
    if (!b || need > b->cap) { redis_finish(c, NULL, ENGINE_ERR_INTERNAL); return; }
    b->len += engine_board_encode(b->rec + b->len, &p->req);
    size_t row = ((size_t)p->req.board.width * (size_t)p->req.board.bits + 7) / 8;
    b->px[2 * b->n] = (uint32_t)(row * 8 * p->req.y + (size_t)p->req.x * (size_t)p->req.board.bits);
    b->px[2 * b->n + 1] = p->req.color;
    b->n++;
    b->opts = p->req.board;
    c->next = NULL;
    *b->waits_tail = c;
    b->waits_tail = &c->next;
    if (!b->open) {
        b->open = 1;
        uv_timer_start(&b->timer, on_due, (uint64_t)p->req.board.batch_ms, 0);
    }
    if (b->n >= REDIS_BOARD_BATCH_MAX) flush(b);
}

static void on_cooldown(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rcall *c = priv;
    if (redis_redirected(c, reply)) return;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: board cooldown: %s", r->str);
        redis_finish(c, NULL, ENGINE_ERR_UNAVAILABLE);
        return;
    }
    if (c->answered) { redis_finish(c, NULL, 0); return; }
    if (r->integer > 0) {
        engine_result *res = engine_result_new(ENGINE_OP_BOARD_PUT, ENGINE_OK);
        if (res) {
            res->suppressed = ENGINE_SUPPRESS_COOLDOWN;
            res->retry_after_ms = r->integer;
        }
        redis_finish(c, res, res ? 0 : ENGINE_ERR_INTERNAL);
        return;
    }
    redis_finish_flight(c);
    batch_add(c->re, c);
}

/* Sends a board call (engine thread): a put's cooldown check (or, without
 * a cooldown, the put joins its batch at once), or a snapshot. */
int redis_board_send(redis_engine *re, rcall *c) {
    char key[1400], meta[1100], stream[1100], bf[1100], epoch[ENGINE_EPOCH_MAX + 1], n1[24], n2[24];
    if (c->kind == R_BOARD_PUT) {
        if (c->board->req.cooldown_ms <= 0) { batch_add(re, c); return 0; }
        redis_key(re, c->channel, "c", meta, sizeof(meta));
        snprintf(key, sizeof(key), "%s.%s", meta, c->board->req.user);
        snprintf(n1, sizeof(n1), "%lld", (long long)c->board->req.cooldown_ms);
        const char *argv[] = {"EVALSHA", re->sha_cooldown, "1", key, n1};
        size_t lens[] = {7, strlen(re->sha_cooldown), 1, strlen(key), strlen(n1)};
        return redis_send_argv(re, on_cooldown, c, 5, argv, lens);
    }
    redis_key(re, c->channel, "m", meta, sizeof(meta));
    redis_key(re, c->channel, "s", stream, sizeof(stream));
    redis_key(re, c->channel, "b", bf, sizeof(bf));
    redis_new_epoch(re, epoch);
    snprintf(n2, sizeof(n2), "%lld", (long long)re->meta_ttl_ms);
    const char *argv[] = {"EVALSHA", re->sha_board_snapshot, "3", meta, stream, bf, epoch, n2};
    size_t lens[8];
    for (int i = 0; i < 8; i++) lens[i] = strlen(argv[i]);
    return redis_send_argv(re, on_snapshot, c, 8, argv, lens);
}

/* Stopping: every open batch goes out now (its answer comes before the
 * connections close), and the boards' timers are closed. */
void redis_boards_stop(redis_engine *re) {
    dict_iter it;
    const char *name;
    void *v;
    dict_iter_init(&it, re->boards);
    while (dict_next(&it, &name, &v)) {
        rboard *b = v;
        flush(b);
        uv_close((uv_handle_t *)&b->timer, board_free_cb);
    }
    dict_free(re->boards, NULL);
    re->boards = NULL;
}

/* ------------------------------------------------------------- the ops */

void redis_board_put(engine *e, const engine_board_put_req *req, engine_cb cb, void *ud) {
    redis_engine *re = (redis_engine *)e;
    if (!engine_board_valid(req)) {                   /* a bug of the caller's */
        engine_answer(cb, ud, ENGINE_OP_BOARD_PUT, engine_result_new(ENGINE_OP_BOARD_PUT, ENGINE_ERR_INTERNAL));
        return;
    }
    rcall *c = redis_call_new(re, R_BOARD_PUT, req->channel, cb, ud);
    rbput *p = c ? calloc(1, sizeof(*p)) : NULL;
    if (p) {
        c->board = p;
        p->req = *req;
        p->req.channel = c->channel;
        p->req.user = p->user = strdup(req->user);
        p->opts = req->board;
    }
    if (c && (!p || !p->user)) { redis_call_free(c); c = NULL; }
    redis_submit(re, c, R_BOARD_PUT, cb, ud);
}

void redis_board_snapshot(engine *e, const char *channel, const engine_board_opts *o, int64_t now_ms,
                          engine_cb cb, void *ud) {
    redis_engine *re = (redis_engine *)e;
    (void)now_ms;
    if (!engine_board_opts_valid(o)) {
        engine_answer(cb, ud, ENGINE_OP_BOARD_SNAPSHOT,
                      engine_result_new(ENGINE_OP_BOARD_SNAPSHOT, ENGINE_ERR_INTERNAL));
        return;
    }
    rcall *c = redis_call_new(re, R_BOARD_SNAPSHOT, channel, cb, ud);
    rbput *p = c ? calloc(1, sizeof(*p)) : NULL;
    if (p) { c->board = p; p->opts = *o; }
    if (c && !p) { redis_call_free(c); c = NULL; }
    redis_submit(re, c, R_BOARD_SNAPSHOT, cb, ud);
}
