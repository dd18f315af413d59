/* fuzz_store: any log replays into streams that hold (a log written by an
 * older or broken process, or edited by hand): the input is read as a
 * sequence of records (kind, offset, epoch, channel, payload; with bit 7 of
 * the third byte, a map change with its key and maybe aux; with bit 6 and
 * not 7, a board's batch or snapshot, the snapshot with its header unless
 * bit 5) written to a fresh store. The store gives every record back as it
 * was appended; the memory engine replays the log, and every stream must
 * come out with gapless history ending at its top, and publish top + 1
 * next (map changes of these stream channels are left out by replay). The
 * same bytes also go to the --at time parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/clock.h"
#include "core/config.h"
#include "engine/engine.h"
#include "store/store.h"
#include "store/store_admin.h"

static const char *CHANNELS[] = {"a", "b", "c", "ns:d"};
static const char *EPOCHS[] = {"e1", "e2", "e3", ""};
static const struct { const char *p; size_t len; } KEYS[] = {
    {"k1", 2}, {"k2", 2}, {"k\0z", 3}, {"", 0},                /* a NUL inside; an empty key */
};
static const char AUX[] = "\x01\0\0\0\0\0\0\0e1";             /* a version, as the engine writes it */
static const char BITS[] = "\0\x0f\xf0\0";                    /* a board's pixels, NULs inside */
static const char HEADER[] = "\x04\0\x01\0\x04";              /* a snapshot's header (size, depth) */

enum { MAX_RECS = 200 };

/* Record i of the input (3 bytes at d). */
static store_rec record_of(const uint8_t *d) {
    store_rec r = {
        .kind = 1 + d[0] % 6, .time_ms = clock_now_ms(),
        .channel = CHANNELS[(d[0] >> 3) % 4], .offset = d[1] % 16,
        .epoch = EPOCHS[d[2] % 4], .payload = "x", .payload_len = 1,
    };
    if (d[2] & 0x80) {
        r.kind = d[0] & 1 ? STORE_MAP_REMOVE : STORE_MAP_PUT;
        r.key = KEYS[(d[2] >> 2) % 4].p;
        r.key_len = KEYS[(d[2] >> 2) % 4].len;
        if (r.kind == STORE_MAP_PUT && d[2] & 0x40) r.aux = AUX, r.aux_len = sizeof(AUX) - 1;
    } else if (d[2] & 0x40) {
        r.kind = d[0] & 1 ? STORE_BOARD_SNAP : STORE_BOARD_BATCH;
        r.payload = BITS;
        r.payload_len = sizeof(BITS) - 1;
        if (r.kind == STORE_BOARD_SNAP && !(d[2] & 0x20)) r.aux = HEADER, r.aux_len = sizeof(HEADER) - 1;
    }
    if (r.kind != STORE_PUB && r.kind != STORE_MAP_PUT && r.kind != STORE_BOARD_BATCH &&
        r.kind != STORE_BOARD_SNAP)
        r.payload = NULL, r.payload_len = 0;
    return r;
}

static void count_failed(void *ud, int err, const store_rec *r) {
    (void)r;
    if (err) ++*(int *)ud;
}

static int same_bytes(const void *a, size_t alen, const void *b, size_t blen) {
    if (!b || !blen) return !a && alen == 0;                    /* empty comes back as NULL */
    return a && alen == blen && memcmp(a, b, blen) == 0;
}

typedef struct replayed { const store_rec *want; size_t n, i; } replayed;

/* Every record comes back as appended, in order. */
static int compare(void *ud, const store_rec *r) {
    replayed *p = ud;
    const store_rec *w = p->i < p->n ? &p->want[p->i++] : NULL;
    if (!w || r->kind != w->kind || r->offset != w->offset || strcmp(r->channel, w->channel) ||
        strcmp(r->epoch, w->epoch) || !same_bytes(r->payload, r->payload_len, w->payload, w->payload_len) ||
        !same_bytes(r->key, r->key_len, w->key, w->key_len) ||
        !same_bytes(r->aux, r->aux_len, w->aux, w->aux_len))
        abort();
    return 0;
}

static void check(void *ud, engine_result *res) {
    uint64_t *expect_top = ud;
    if (res->err) abort();
    for (size_t i = 0; i < res->npubs; i++)          /* gapless, ending at the top */
        if (res->pubs[i].offset != res->top.offset - res->npubs + 1 + i) abort();
    *expect_top = res->top.offset;
    engine_result_free(res);
}

static void published(void *ud, engine_result *res) {
    uint64_t *top = ud;
    if (res->err || res->top.offset != *top + 1) abort();
    engine_result_free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t ms;
    store_parse_time(text, &ms);
    free(text);

    char dir[64], file[128], err[512];
    snprintf(dir, sizeof(dir), "/dev/shm/fuzz-store-%d", (int)getpid());
    snprintf(file, sizeof(file), "%s/plaza.db", dir);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
    if (system(cmd) != 0) return 0;
    store_opts o = {.sync = 0};
    store *s = store_open(file, &o, err, sizeof(err));
    if (!s) abort();
    static store_rec recs[MAX_RECS];
    size_t n = 0;
    int failed = 0;
    for (size_t i = 0; i + 3 <= size && n < MAX_RECS; i += 3) {
        recs[n] = record_of(data + i);
        if (store_append(s, &recs[n], count_failed, &failed) == STORE_OK) n++;
    }
    store_close(s);
    if (!failed) {                                  /* a failed commit (disk) drops a group */
        if (!(s = store_open(file, &o, err, sizeof(err)))) abort();
        replayed p = {recs, n, 0};
        if (store_replay(s, compare, &p, err, sizeof(err)) != STORE_OK || p.i != n) abort();
        store_close(s);
    }

    config c;
    memset(&c, 0, sizeof(c));
    c.store_path = dir;
    c.store_durability = size && data[0] & 1 ? "async" : "sync";
    c.store_commit_window_us = 0;
    c.store_restore_window_s = 3600;
    c.store_lease_idle_ms = 1000;
    c.namespaces.top.history_size = 5;
    c.namespaces.channel_max_length = 255;
    engine *e = engine_new(&c, NULL, err, sizeof(err));
    if (!e) abort();
    for (int k = 0; k < 4; k++) {
        uint64_t top = 0;
        engine_history_req h = {.channel = CHANNELS[k], .limit = -1, .now_ms = clock_now_ms()};
        e->ops->history(e, &h, check, &top);        /* memory engine: answers inline */
        rcbuf *p = rcbuf_copy("y", 1);
        engine_publish_req req = {.channel = CHANNELS[k], .payload = p, .history_size = 5,
                                  .now_ms = clock_now_ms()};
        e->ops->publish(e, &req, published, &top);   /* sync: answered by the store thread */
        rcbuf_unref(p);
        e->ops->quiesce(e);                          /* ... at the latest here */
        e->ops->destroy(e);
        if (!(e = engine_new(&c, NULL, err, sizeof(err)))) abort();
    }
    e->ops->quiesce(e);
    e->ops->destroy(e);
    return 0;
}
