/* engine_board: boards in the memory engine (see engine.h, boards).
 *
 * A board lives in its channel (mem_channel.board) with the channel's
 * stream, under the shard lock. A put is checked against the user's
 * cooldown and added to the board's open batch; the first put of a batch
 * queues the board on the engine's flusher, a thread that wakes when the
 * earliest batch is due. A flush takes the batch, applies its pixels to
 * the bitfield and publishes it through the engine's own publish (so the
 * durable log, history, offsets and the hub's fan-out are those of any
 * publication), then answers the batch's puts with its position. Pixels
 * are applied at the flush, in the order the puts came: the bitfield is
 * always every batch flushed so far, nothing of a batch still open, so a
 * snapshot read between two flushes is exact, and one read while a flush
 * publishes holds at most that batch ahead of its position, which a viewer
 * applying the batches after the position applies again, to the same end.
 *
 * With the durable log, the flusher also logs the whole board
 * (STORE_BOARD_SNAP) right after a flush when the last such record is
 * older than snapshot_every_ms (and at a clean stop): replay starts from
 * the latest and applies the batches logged after it
 * (STORE_BOARD_BATCH), and retention forgets batches a later snapshot
 * covers. The snapshot follows the batch's record in the log and holds
 * exactly the batches before it.
 *
 * A batch is published once batch_ms after it opened, or at once when it
 * holds MEM_BOARD_BATCH_MAX pixels, so a burst never makes one huge push.
 * Cooldowns are remembered per user (user -> time of the last pixel) and
 * forgotten by the sweeper once older than the longest cooldown asked. */
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "engine/engine_memory_int.h"
#include "obs/log.h"

#define MEM_BOARD_BATCH_MAX 4096

typedef struct board_wait {        /* a put waiting for its batch to go out */
    engine_cb cb;
    void *ud;
    struct board_wait *next;
} board_wait;

struct mem_board {
    uint32_t width, height;
    int bits;
    size_t row, bytes;             /* bytes per row, of the bitfield */
    uint8_t *px;
    dict *last;                    /* user -> unix ms of their last pixel (in the pointer) */
    int64_t cooldown_max_ms;
    uint8_t *batch;                /* the open batch's records */
    size_t batch_len, batch_cap;
    uint32_t batch_n;
    board_wait *waits, **waits_tail;
    int open;                      /* a batch is open (the flusher will publish it) */
    engine_board_opts opts;        /* of the latest put: the batch goes out with them */
    int dirty;                     /* durable: changed since the last snapshot record */
    int64_t snap_due;              /* durable: when the next snapshot record may be written */
};

typedef struct board_due {         /* the flusher's queue: a board whose batch is due */
    int64_t at;                    /* unix ms */
    struct board_due *next;
    char channel[];
} board_due;

/* ------------------------------------------------------------ the bitfield */

static mem_board *board_new(uint32_t width, uint32_t height, int bits) {
    mem_board *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->width = width;
    b->height = height;
    b->bits = bits;
    b->row = ((size_t)width * (size_t)bits + 7) / 8;
    b->bytes = b->row * height;
    b->px = calloc(1, b->bytes);
    b->last = dict_new();
    b->waits_tail = &b->waits;
    if (!b->px || !b->last) { mem_board_free(b); return NULL; }
    return b;
}

void mem_board_free(mem_board *b) {
    if (!b) return;
    for (board_wait *w = b->waits, *n; w; w = n) {    /* only at teardown: nothing waits */
        n = w->next;
        engine_answer(w->cb, w->ud, ENGINE_OP_BOARD_PUT, engine_result_new(ENGINE_OP_BOARD_PUT, ENGINE_ERR_SHUTDOWN));
        free(w);
    }
    dict_free(b->last, NULL);
    free(b->px);
    free(b->batch);
    free(b);
}

static void set_px(mem_board *b, uint32_t x, uint32_t y, uint32_t color) {
    if (x >= b->width || y >= b->height) return;
    if (b->bits == 8) { b->px[(size_t)y * b->row + x] = (uint8_t)color; return; }
    uint8_t *p = &b->px[(size_t)y * b->row + x / 2];
    *p = x % 2 ? (uint8_t)((*p & 0xF0) | (color & 0x0F)) : (uint8_t)((*p & 0x0F) | (color & 0x0F) << 4);
}

static uint32_t get_px(const mem_board *b, uint32_t x, uint32_t y) {
    if (b->bits == 8) return b->px[(size_t)y * b->row + x];
    uint8_t v = b->px[(size_t)y * b->row + x / 2];
    return x % 2 ? v & 0x0Fu : v >> 4;
}

void mem_board_apply(mem_board *b, const uint8_t *batch, size_t len) {
    size_t pos = 0;
    engine_board_pixel px;
    while (engine_board_next(batch, len, &pos, &px)) set_px(b, px.x, px.y, px.color);
}

/* The board of a channel, created (blank) with these dimensions. */
mem_board *mem_board_open(mem_channel *ch, uint32_t width, uint32_t height, int bits) {
    if (!ch->board) ch->board = board_new(width, height, bits);
    return ch->board;
}

int mem_board_load(mem_channel *ch, uint32_t width, uint32_t height, int bits,
                   const uint8_t *px, size_t len, uint32_t from_w, uint32_t from_h, int from_bits) {
    mem_board *b = mem_board_open(ch, width, height, bits);
    if (!b) return -1;
    if (from_w == width && from_h == height && from_bits == bits && len == b->bytes) {
        memcpy(b->px, px, len);
        return 0;
    }
    /* The configuration changed since the record: keep what still fits. */
    mem_board *from = board_new(from_w, from_h, from_bits);
    if (!from || from->bytes != len) { mem_board_free(from); return from ? 0 : -1; }
    memcpy(from->px, px, len);
    memset(b->px, 0, b->bytes);
    uint32_t mask = (1u << bits) - 1;
    for (uint32_t y = 0; y < height && y < from_h; y++)
        for (uint32_t x = 0; x < width && x < from_w; x++) set_px(b, x, y, get_px(from, x, y) & mask);
    mem_board_free(from);
    log_warn("board %ux%u/%u from the log loaded as %ux%u/%u (the configuration changed)",
             from_w, from_h, from_bits, width, height, bits);
    return 0;
}

/* ------------------------------------------------------------------- put */

static int batch_add(mem_board *b, const engine_board_put_req *req) {
    size_t need = b->batch_len + ENGINE_BOARD_PIXEL_SIZE + engine_board_user_len(req->user);
    if (need > b->batch_cap) {
        size_t cap = b->batch_cap ? b->batch_cap * 2 : 1024;
        while (cap < need) cap *= 2;
        uint8_t *p = realloc(b->batch, cap);
        if (!p) return -1;
        b->batch = p;
        b->batch_cap = cap;
    }
    b->batch_len += engine_board_encode(b->batch + b->batch_len, req);
    b->batch_n++;
    return 0;
}

/* The user's cooldown: 0 if they may write now (and it starts again), else
 * how long they must wait. -1 if out of memory. */
static int64_t cooldown(mem_board *b, const engine_board_put_req *req) {
    if (req->cooldown_ms <= 0) return 0;
    size_t ulen = strlen(req->user);
    void **last = dict_find(b->last, req->user, ulen);
    if (last) {
        int64_t wait = (int64_t)(intptr_t)*last + req->cooldown_ms - req->now_ms;
        if (wait > 0) return wait;
    }
    int added;
    void **slot = last ? last : dict_slot(b->last, req->user, ulen, &added);
    if (!slot) return -1;
    *slot = (void *)(intptr_t)req->now_ms;
    if (req->cooldown_ms > b->cooldown_max_ms) b->cooldown_max_ms = req->cooldown_ms;
    return 0;
}

/* Queues the board's batch on the flusher, due at `at`. */
static int due(mem_engine *me, const char *channel, int64_t at) {
    size_t len = strlen(channel) + 1;
    board_due *d = malloc(sizeof(*d) + len);
    if (!d) return -1;
    d->at = at;
    memcpy(d->channel, channel, len);
    uv_mutex_lock(&me->board_lock);
    board_due **p = (board_due **)&me->board_q;   /* a void* holding a board_due* */
    while (*p && (*p)->at <= at) p = &(*p)->next;      /* kept in due order */
    d->next = *p;
    *p = d;
    uv_cond_signal(&me->board_cond);
    uv_mutex_unlock(&me->board_lock);
    return 0;
}

void mem_board_put(engine *e, const engine_board_put_req *req, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_BOARD_PUT, ENGINE_ERR_INTERNAL);
    board_wait *w = malloc(sizeof(*w));
    if (!res || !w || !engine_board_valid(req)) {
        free(w);
        engine_answer(cb, ud, ENGINE_OP_BOARD_PUT, res);   /* a bug of the caller's */
        return;
    }
    mem_shard *sh = mem_lock_shard(me, req->channel);
    if (atomic_load(&me->board_stop)) {             /* nobody would publish its batch */
        pthread_mutex_unlock(&sh->lock);
        free(w);
        res->err = ENGINE_ERR_SHUTDOWN;
        engine_answer(cb, ud, ENGINE_OP_BOARD_PUT, res);
        return;
    }
    mem_channel *ch = mem_channel_open(sh, req->channel, strlen(req->channel));
    mem_board *b = ch ? mem_board_open(ch, req->board.width, req->board.height, req->board.bits) : NULL;
    int64_t wait = b ? cooldown(b, req) : -1;
    if (wait != 0 || req->x >= b->width || req->y >= b->height || batch_add(b, req)) {
        if (wait > 0) {
            res->err = ENGINE_OK;
            res->suppressed = ENGINE_SUPPRESS_COOLDOWN;
            res->retry_after_ms = wait;
        }
        if (ch) mem_channel_gc(sh, req->channel, ch);
        pthread_mutex_unlock(&sh->lock);
        free(w);
        engine_answer(cb, ud, ENGINE_OP_BOARD_PUT, res);
        return;
    }
    engine_result_free(res);
    w->cb = cb;
    w->ud = ud;
    w->next = NULL;
    *b->waits_tail = w;
    b->waits_tail = &w->next;
    b->opts = req->board;
    int opened = !b->open, full = b->batch_n == MEM_BOARD_BATCH_MAX;
    b->open = 1;
    pthread_mutex_unlock(&sh->lock);
    /* Out of memory here leaves the batch to the next put's queueing or the
     * stop's flush: the pixel is not lost. */
    if (opened && due(me, req->channel, req->now_ms + req->board.batch_ms))
        log_warn("board %s: out of memory queueing a batch", req->channel);
    if (full && !opened) due(me, req->channel, 0);
}

/* -------------------------------------------------------------- snapshot */

void mem_board_snapshot(engine *e, const char *channel, const engine_board_opts *o,
                        int64_t now_ms, engine_cb cb, void *ud) {
    mem_engine *me = (mem_engine *)e;
    engine_result *res = engine_result_new(ENGINE_OP_BOARD_SNAPSHOT, ENGINE_ERR_INTERNAL);
    if (!res || !engine_board_opts_valid(o)) { engine_answer(cb, ud, ENGINE_OP_BOARD_SNAPSHOT, res); return; }
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = mem_channel_open(sh, channel, strlen(channel));
    mem_board *b = ch ? mem_board_open(ch, o->width, o->height, o->bits) : NULL;
    mem_stream *st = b ? mem_stream_open_read(me, sh, ch, channel, now_ms) : NULL;
    if (st && (res->blob = rcbuf_copy(b->px, b->bytes))) {
        mem_stream_expire(st, now_ms);
        mem_top_of(st, &res->top);
        res->err = ENGINE_OK;
    }
    if (ch) mem_channel_gc(sh, channel, ch);
    pthread_mutex_unlock(&sh->lock);
    engine_answer(cb, ud, ENGINE_OP_BOARD_SNAPSHOT, res);
}

/* ----------------------------------------------------------------- flush */

typedef struct flush_ctx {
    board_wait *waits;
} flush_ctx;

/* The batch's publication is answered: so is each put of it. */
static void flushed(void *ud, engine_result *pres) {
    flush_ctx *f = ud;
    for (board_wait *w = f->waits, *n; w; w = n) {
        n = w->next;
        engine_result *res = engine_result_new(ENGINE_OP_BOARD_PUT, pres->err);
        if (res) res->top = pres->top;
        engine_answer(w->cb, w->ud, ENGINE_OP_BOARD_PUT, res);
        free(w);
    }
    free(f);
    engine_result_free(pres);
}

static void snap_done(void *ud, int err, const store_rec *r) {
    if (!err) return;
    mem_engine *me = ud;
    mem_shard *sh = mem_lock_shard(me, r->channel);
    mem_channel *ch = dict_get(sh->channels, r->channel);
    if (ch && ch->board) ch->board->dirty = 1;        /* try again after the next batch */
    pthread_mutex_unlock(&sh->lock);
}

/* Durable log: the whole board, when due (force: at a clean stop). Under
 * the shard lock. */
static void snapshot_record(mem_engine *me, const char *channel, mem_channel *ch, int64_t now_ms,
                            int force) {
    mem_board *b = ch->board;
    if (!me->store || !b->dirty || (!force && now_ms < b->snap_due)) return;
    uint8_t hdr[5] = {(uint8_t)b->width, (uint8_t)(b->width >> 8), (uint8_t)b->height,
                      (uint8_t)(b->height >> 8), (uint8_t)b->bits};     /* u16 LE, u16 LE, u8 */
    mem_stream *st = ch->stream;
    store_rec r = {.kind = STORE_BOARD_SNAP, .time_ms = now_ms, .channel = channel,
                   .offset = st ? st->next : 0, .epoch = st ? st->epoch : "",
                   .payload = b->px, .payload_len = b->bytes, .aux = hdr, .aux_len = sizeof(hdr)};
    if (store_append(me->store, &r, snap_done, me) == 0) b->dirty = 0;
    int64_t every = b->opts.snapshot_every_ms > 0 ? b->opts.snapshot_every_ms : 60000;
    b->snap_due = now_ms + every;
}

/* Publishes the channel's open batch, if any (the flusher, or the stop). */
static void flush(mem_engine *me, const char *channel, int force_snapshot) {
    mem_shard *sh = mem_lock_shard(me, channel);
    mem_channel *ch = dict_get(sh->channels, channel);
    mem_board *b = ch ? ch->board : NULL;
    if (!b || (!b->open && !force_snapshot)) { pthread_mutex_unlock(&sh->lock); return; }
    flush_ctx *f = b->open ? malloc(sizeof(*f)) : NULL;
    rcbuf *payload = f ? rcbuf_copy(b->batch, b->batch_len) : NULL;
    if (b->open && !payload) {                     /* out of memory: later */
        free(f);
        pthread_mutex_unlock(&sh->lock);
        due(me, channel, clock_now_ms() + 10);
        return;
    }
    engine_board_opts o = b->opts;
    if (f) {
        mem_board_apply(b, b->batch, b->batch_len);
        f->waits = b->waits;
        b->waits = NULL;
        b->waits_tail = &b->waits;
        b->batch_len = 0;
        b->batch_n = 0;
        b->open = 0;
        b->dirty = 1;
    }
    pthread_mutex_unlock(&sh->lock);
    int64_t now = clock_now_ms();
    if (f) {
        engine_publish_req req = {.channel = channel, .payload = payload,
                                  .history_size = o.history_size, .history_ttl_ms = o.history_ttl_ms,
                                  .now_ms = now, .flags = ENGINE_PUB_BOARD};
        me->base.ops->publish(&me->base, &req, flushed, f);
        rcbuf_unref(payload);
    }
    if (!me->store) return;
    sh = mem_lock_shard(me, channel);               /* after the batch's record */
    ch = dict_get(sh->channels, channel);
    if (ch && ch->board) snapshot_record(me, channel, ch, now, force_snapshot);
    pthread_mutex_unlock(&sh->lock);
}

static void flusher_main(void *arg) {
    mem_engine *me = arg;
    uv_mutex_lock(&me->board_lock);
    while (!me->board_stop) {
        board_due *d = me->board_q;
        int64_t now = clock_now_ms();
        if (!d) { uv_cond_wait(&me->board_cond, &me->board_lock); continue; }
        if (d->at > now) {
            uv_cond_timedwait(&me->board_cond, &me->board_lock, (uint64_t)(d->at - now) * 1000000u);
            continue;
        }
        me->board_q = d->next;
        uv_mutex_unlock(&me->board_lock);
        flush(me, d->channel, 0);
        free(d);
        uv_mutex_lock(&me->board_lock);
    }
    uv_mutex_unlock(&me->board_lock);
}

int mem_boards_start(mem_engine *me) {
    uv_mutex_init(&me->board_lock);
    uv_cond_init(&me->board_cond);
    if (uv_thread_create(&me->board_flusher, flusher_main, me) != 0) return -1;
    me->board_running = 1;
    return 0;
}

/* The channels that have a board (under each shard's lock, copied). */
static char **board_channels(mem_engine *me, size_t *n) {
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    for (unsigned i = 0; i < MEM_SHARDS; i++) {
        mem_shard *sh = &me->shards[i];
        pthread_mutex_lock(&sh->lock);
        dict_iter it;
        const char *name;
        void *val;
        dict_iter_init(&it, sh->channels);
        while (dict_next(&it, &name, &val)) {
            if (!((mem_channel *)val)->board) continue;
            if (*n == cap) {
                char **g = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
                if (!g) break;
                v = g;
            }
            if ((v[*n] = strdup(name))) (*n)++;
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return v;
}

void mem_boards_stop(mem_engine *me) {
    if (!me->board_running) return;
    uv_mutex_lock(&me->board_lock);
    me->board_stop = 1;
    uv_cond_signal(&me->board_cond);
    uv_mutex_unlock(&me->board_lock);
    uv_thread_join(&me->board_flusher);
    me->board_running = 0;
    for (board_due *d = me->board_q, *n; d; d = n) { n = d->next; free(d); }
    me->board_q = NULL;
    /* What is still open goes out now, and each board's latest state to
     * the log, so a restart replays little. */
    size_t n;
    char **chans = board_channels(me, &n);
    for (size_t i = 0; i < n; i++) { flush(me, chans[i], 1); free(chans[i]); }
    free(chans);
    uv_cond_destroy(&me->board_cond);
    uv_mutex_destroy(&me->board_lock);
}

/* Sweeper, under the shard lock: cooldowns that ended are forgotten. */
void mem_board_sweep(mem_board *b, int64_t now_ms) {
    if (!b->last || dict_size(b->last) == 0) return;
    dict_iter it;
    const char *k;
    void *v;
    dict_iter_init(&it, b->last);
    while (dict_next(&it, &k, &v))
        if ((int64_t)(intptr_t)v + b->cooldown_max_ms <= now_ms) dict_del(b->last, k, NULL);
}

size_t mem_board_bytes(const mem_board *b) { return b->bytes; }
