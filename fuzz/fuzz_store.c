/* fuzz_store: any log replays into streams that hold (a log written by an
 * older or broken process, or edited by hand): the input is read as a
 * sequence of records (kind, offset, epoch, channel, payload) written to a
 * fresh store; the memory engine replays it, and every stream must come out
 * with gapless history ending at its top, and publish top + 1 next. The
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
    for (size_t i = 0; i + 3 <= size && i < 3 * 200; i += 3) {
        store_rec r = {
            .kind = 1 + data[i] % 6, .time_ms = clock_now_ms(),
            .channel = CHANNELS[(data[i] >> 3) % 4], .offset = data[i + 1] % 16,
            .epoch = EPOCHS[data[i + 2] % 4], .payload = "x", .payload_len = 1,
        };
        if (r.kind != STORE_PUB) r.payload = NULL, r.payload_len = 0;
        store_append(s, &r, NULL, NULL);
    }
    store_close(s);

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
        engine_history_req h = {CHANNELS[k], -1, 0, 0, NULL, 0, clock_now_ms()};
        e->ops->history(e, &h, check, &top);        /* memory engine: answers inline */
        rcbuf *p = rcbuf_copy("y", 1);
        engine_publish_req req = {CHANNELS[k], p, 5, 0, clock_now_ms()};
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
