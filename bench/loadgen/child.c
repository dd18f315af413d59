/* child.c: a subscriber process. It holds its share of the subscribers
 * and answers the parent's commands, one line each:
 *
 *   connect       ramp the subscribers up; answers "ready <counters> hs=H"
 *                 once every one is subscribed or has failed
 *   reset P...    a step starts; P is the messages published so far per
 *                 channel. Clears the step's counters; answers "ok"
 *   poll P...     answers "<counters>": deliveries so far and those expected
 *                 (P less the step's start, over the live subscribers)
 *   report P...   as poll, plus "lost" (numbers past each subscriber's last,
 *                 never delivered) and the latency histogram lat=H
 *   exit          resets every socket and exits
 *
 * Gaps, duplicates, reordering and disconnections add up over the whole
 * run; deliveries, bytes, latencies and CPU are per step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "loadgen.h"

static struct {
    uv_loop_t loop;
    subset ss;
    ctl ctl;
    uv_timer_t ready_timer;
    uint64_t *base;            /* per channel: published at the step's start */
    uint64_t *pubs;            /* per channel: the numbers of the last command */
    uint64_t cpu_base;
    int channels;
} C;

static void parse_pubs(const char *p) {
    char *end;
    for (int k = 0; k < C.channels; k++) {
        C.pubs[k] = strtoull(p, &end, 10);
        p = end;
    }
}

static void send_line(lgbuf *b) {
    buf_add(b, "\n", 1);
    ctl_send(&C.ctl, b->p, b->len);
    buf_free(b);
}

/* Fills the step's expected and (with tail) lost counts. */
static void tally(lg_counters *c, int tail) {
    c->expected = c->lost = 0;
    for (int i = 0; i < C.ss.n; i++) {
        const sub *s = &C.ss.subs[i];
        if (s->state != SUB_ACTIVE) continue;
        c->expected += (int64_t)(C.pubs[s->chan] - C.base[s->chan]);
        if (tail && C.pubs[s->chan] > s->last) c->lost += (int64_t)(C.pubs[s->chan] - s->last);
    }
    c->cpu_us = (int64_t)(self_cpu_us() - C.cpu_base);
}

static void on_ready_check(uv_timer_t *t) {
    if (!subset_connected(&C.ss)) return;
    uv_timer_stop(t);
    lgbuf b = {0};
    buf_printf(&b, "ready");
    counters_encode(&C.ss.c, &b);
    buf_printf(&b, " hs=");
    hist_encode(&C.ss.hs, &b);
    send_line(&b);
}

static void do_reset(const char *args) {
    parse_pubs(args);
    memcpy(C.base, C.pubs, sizeof(uint64_t) * (size_t)C.channels);
    lg_counters *c = &C.ss.c;
    c->delivered = c->expected = c->bytes = c->lost = 0;
    hist_reset(&C.ss.lat);
    C.cpu_base = self_cpu_us();
    lgbuf b = {0};
    buf_printf(&b, "ok");
    send_line(&b);
}

static void do_poll(const char *args, int report) {
    parse_pubs(args);
    tally(&C.ss.c, report);
    lgbuf b = {0};
    buf_printf(&b, "stats");
    counters_encode(&C.ss.c, &b);
    if (report) {
        buf_printf(&b, " lat=");
        hist_encode(&C.ss.lat, &b);
    }
    send_line(&b);
}

__attribute__((noreturn)) static void leave(void) {
    subset_abort(&C.ss);
    _exit(0);
}

static void on_line(ctl *c, char *line) {
    (void)c;
    if (strcmp(line, "connect") == 0) {
        subset_connect_all(&C.ss);
        uv_timer_start(&C.ready_timer, on_ready_check, 10, 10);
    } else if (strncmp(line, "reset ", 6) == 0) {
        do_reset(line + 6);
    } else if (strncmp(line, "poll ", 5) == 0) {
        do_poll(line + 5, 0);
    } else if (strncmp(line, "report ", 7) == 0) {
        do_poll(line + 7, 1);
    } else if (strcmp(line, "exit") == 0) {
        leave();
    } else {
        say("unknown command %s", line);
    }
    free(line);
}

static void on_parent_gone(uv_timer_t *t) {
    (void)t;
    if (C.ctl.eof) leave();
}

void child_main(const lg_opts *o, const adapter *ad, int fd, int first, int n, int window) {
    static char who[64];
    snprintf(who, sizeof(who), "loadgen[subscribers %d..%d]", first, first + n - 1);
    lg_who = who;
    uv_loop_init(&C.loop);
    C.channels = o->channels;
    C.base = calloc((size_t)o->channels, sizeof(uint64_t));
    C.pubs = calloc((size_t)o->channels, sizeof(uint64_t));
    if (!C.base || !C.pubs) die("out of memory");
    subset_init(&C.ss, &C.loop, o, ad, first, n, window);
    hist_reset(&C.ss.lat);
    hist_reset(&C.ss.hs);
    ctl_open(&C.ctl, &C.loop, fd, on_line);
    uv_timer_init(&C.loop, &C.ready_timer);
    uv_timer_t gone;
    uv_timer_init(&C.loop, &gone);
    uv_timer_start(&gone, on_parent_gone, 100, 100);
    C.cpu_base = self_cpu_us();
    uv_run(&C.loop, UV_RUN_DEFAULT);
    leave();
}
