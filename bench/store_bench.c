/* store_bench: the durable log (src/store/) alone, and the disk under it.
 *
 *   store_bench floor DIR [SECONDS]
 *       The disk's own limit: pwrite 4 KiB + fdatasync in a loop, one
 *       thread; prints flushes/s and the flush latency p50/p99/max.
 *   store_bench engine DIR|- RATE SECONDS [sync|async] [WINDOW_US]
 *       The same load through the memory engine's publish with the store
 *       under it (DIR) or without (-): the ack is the publish answer, after
 *       the publication was reported to the hub (sync: once on disk). Two
 *       producer threads, 1,000 channels with history, 100-byte payloads.
 *   store_bench log DIR RATE SECONDS [THREADS] [PAYLOAD] [WINDOW_US]
 *       THREADS producers append records (PAYLOAD bytes, 1,000 channels)
 *       at RATE records/s in total, paced (open loop), for SECONDS; each
 *       record's ack is its commit callback. Prints the rate achieved, ack
 *       latency p50/p99/max, commits and records per commit.
 *
 * One line of key=value per run on stdout, for BENCHMARKS.md. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/clock.h"
#include "core/config.h"
#include "engine/engine.h"
#include "store/store.h"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Latency histogram: 10 us buckets up to 1 s. */
#define NB 100000
static _Atomic uint32_t hist[NB];
static _Atomic uint64_t lat_max, acked;

static void record(uint64_t ns) {
    uint64_t us = ns / 1000, b = us / 10;
    atomic_fetch_add(&hist[b < NB ? b : NB - 1], 1);
    uint64_t m = atomic_load(&lat_max);
    while (us > m && !atomic_compare_exchange_weak(&lat_max, &m, us)) {}
}

static double pct(double p) {
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < NB; i++) total += hist[i];
    for (int i = 0; i < NB; i++) {
        seen += hist[i];
        if (total && seen >= p * (double)total) return (i + 1) * 10 / 1000.0;
    }
    return 0;
}

static int floor_run(const char *dir, double seconds) {
    char path[512];
    snprintf(path, sizeof(path), "%s/floor.bin", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0) { perror(path); return 1; }
    char buf[4096];
    memset(buf, 'x', sizeof(buf));
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), n = 0, t0 = now_ns();
    while (now_ns() < end) {
        uint64_t a = now_ns();
        if (pwrite(fd, buf, sizeof(buf), (off_t)((n % 256) * sizeof(buf))) != (ssize_t)sizeof(buf) ||
            fdatasync(fd) != 0) { perror("write"); return 1; }
        record(now_ns() - a);
        n++;
    }
    double el = (now_ns() - t0) / 1e9;
    printf("floor flushes_per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", n / el, pct(0.5),
           pct(0.99), atomic_load(&lat_max) / 1000.0);
    close(fd);
    unlink(path);
    return 0;
}

typedef struct prod {
    store *s;
    double rate;                  /* this thread's records/s */
    double seconds;
    int payload, id;
    uint64_t sent;
} prod;

static void on_done(void *ud, int err, const store_rec *r) {
    (void)r;
    if (err) return;
    record(now_ns() - (uint64_t)(uintptr_t)ud);
    atomic_fetch_add(&acked, 1);
}

/* Paced by 200 us ticks: each tick appends the records due by then (no
 * spinning: the producers share two cores with the store's thread). */
static void *producer(void *arg) {
    prod *p = arg;
    char payload[4096];
    memset(payload, 'p', sizeof(payload));
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(p->seconds * 1e9), i = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end) break;
        uint64_t due = (uint64_t)((double)(now - t0) / 1e9 * p->rate);
        for (; i < due; i++) {
            char ch[32];
            snprintf(ch, sizeof(ch), "bench:%d", (int)((i * 7 + (uint64_t)p->id) % 1000));
            store_rec r = {.kind = STORE_PUB, .time_ms = 1700000000000, .channel = ch, .offset = i + 1,
                           .epoch = "epoch123", .payload = payload, .payload_len = (size_t)p->payload};
            if (store_append(p->s, &r, on_done, (void *)(uintptr_t)now_ns()) == STORE_OK) p->sent++;
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int log_run(const char *dir, double rate, double seconds, int threads, int payload, int window) {
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    unlink(path);
    store_opts o = {.sync = 1, .commit_window_us = window, .checkpoint_pages = getenv("CKPT") ? atoi(getenv("CKPT")) : 0};
    store *s = store_open(path, &o, err, sizeof(err));
    if (!s) { fprintf(stderr, "%s\n", err); return 1; }
    pthread_t t[64];
    prod ps[64];
    uint64_t t0 = now_ns();
    for (int i = 0; i < threads; i++) {
        ps[i] = (prod){s, rate / threads, seconds, payload, i, 0};
        pthread_create(&t[i], NULL, producer, &ps[i]);
    }
    uint64_t sent = 0;
    for (int i = 0; i < threads; i++) { pthread_join(t[i], NULL); sent += ps[i].sent; }
    store_stats st;
    do { usleep(1000); store_get_stats(s, &st); } while (st.queued);
    double el = (now_ns() - t0) / 1e9;
    printf("log rate=%.0f threads=%d payload=%d window_us=%d sent=%llu acked_per_s=%.0f "
           "ack_p50_ms=%.3f ack_p99_ms=%.3f ack_max_ms=%.3f commits=%llu per_commit=%.1f "
           "commit_max_ms=%.3f bytes_per_record=%llu\n",
           rate, threads, payload, window, (unsigned long long)sent, atomic_load(&acked) / el,
           pct(0.5), pct(0.99), atomic_load(&lat_max) / 1000.0, (unsigned long long)st.commits,
           st.commits ? (double)st.records / st.commits : 0, st.commit_us_max / 1000.0,
           (unsigned long long)(st.rows ? st.bytes / st.rows : 0));
    store_close(s);
    unlink(path);
    return 0;
}

/* ---- through the engine ---- */

typedef struct eprod {
    engine *e;
    double rate, seconds;
    int id;
    uint64_t sent;
} eprod;

static _Atomic uint64_t events, failed;

static void on_answer(void *ud, engine_result *res) {
    if (res->err) atomic_fetch_add(&failed, 1);
    else {
        record(now_ns() - (uint64_t)(uintptr_t)ud);
        atomic_fetch_add(&acked, 1);
    }
    engine_result_free(res);
}

static void on_event(void *ud, const char *channel, const engine_pub *pub) {
    (void)ud; (void)channel; (void)pub;
    atomic_fetch_add(&events, 1);
}

static void *eproducer(void *arg) {
    eprod *p = arg;
    char payload[100];
    memset(payload, 'p', sizeof(payload));
    rcbuf *pl = rcbuf_copy(payload, sizeof(payload));
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(p->seconds * 1e9), i = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end) break;
        uint64_t due = (uint64_t)((double)(now - t0) / 1e9 * p->rate);
        for (; i < due; i++) {
            char ch[32];
            snprintf(ch, sizeof(ch), "bench:%d", (int)((i * 7 + (uint64_t)p->id) % 1000));
            engine_publish_req req = {ch, pl, 100, 0, clock_now_ms(), 0};
            p->e->ops->publish(p->e, &req, on_answer, (void *)(uintptr_t)now_ns());
            p->sent++;
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    rcbuf_unref(pl);
    return NULL;
}

static int engine_run(const char *dir, double rate, double seconds, const char *mode, int window) {
    config c;
    memset(&c, 0, sizeof(c));
    char path[512] = "";
    if (strcmp(dir, "-") != 0) {
        snprintf(path, sizeof(path), "%s/engine-bench", dir);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
        if (system(cmd) != 0) return 1;
    }
    c.store_path = path;
    c.store_durability = (char *)mode;
    c.store_commit_window_us = window;
    c.store_restore_window_s = 3600;
    c.store_lease_idle_ms = 1000;
    c.engine_sweep_interval_ms = 1000;
    c.namespaces.top.history_size = 100;
    c.namespaces.channel_max_length = 255;
    engine_events ev = {on_event, NULL, NULL, NULL, NULL, NULL};
    char err[512];
    engine *e = engine_new(&c, &ev, err, sizeof(err));
    if (!e) { fprintf(stderr, "%s\n", err); return 1; }
    pthread_t t[2];
    eprod ps[2];
    uint64_t t0 = now_ns(), sent = 0;
    for (int i = 0; i < 2; i++) {
        ps[i] = (eprod){e, rate / 2, seconds, i, 0};
        pthread_create(&t[i], NULL, eproducer, &ps[i]);
    }
    for (int i = 0; i < 2; i++) { pthread_join(t[i], NULL); sent += ps[i].sent; }
    while (atomic_load(&acked) + atomic_load(&failed) < sent) usleep(1000);
    double el = (now_ns() - t0) / 1e9;
    printf("engine store=%s durability=%s rate=%.0f window_us=%d sent=%llu acked_per_s=%.0f "
           "ack_p50_ms=%.3f ack_p99_ms=%.3f ack_max_ms=%.3f events=%llu failed=%llu\n",
           path[0] ? "on" : "off", mode, rate, window, (unsigned long long)sent,
           atomic_load(&acked) / el, pct(0.5), pct(0.99), atomic_load(&lat_max) / 1000.0,
           (unsigned long long)atomic_load(&events), (unsigned long long)atomic_load(&failed));
    e->ops->quiesce(e);
    e->ops->destroy(e);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "floor")) return floor_run(argv[2], argc > 3 ? atof(argv[3]) : 5);
    if (argc >= 5 && !strcmp(argv[1], "engine"))
        return engine_run(argv[2], atof(argv[3]), atof(argv[4]), argc > 5 ? argv[5] : "sync",
                          argc > 6 ? atoi(argv[6]) : 100);
    if (argc >= 5 && !strcmp(argv[1], "log"))
        return log_run(argv[2], atof(argv[3]), atof(argv[4]), argc > 5 ? atoi(argv[5]) : 4,
                       argc > 6 ? atoi(argv[6]) : 100, argc > 7 ? atoi(argv[7]) : 100);
    fprintf(stderr, "usage: store_bench floor DIR [SECONDS]\n"
                    "       store_bench engine DIR|- RATE SECONDS [sync|async] [WINDOW_US]\n"
                    "       store_bench log DIR RATE SECONDS [THREADS] [PAYLOAD] [WINDOW_US]\n");
    return 2;
}
