/* Unit tests for src/hub/hub.c, on one loop driven by the test thread, with
 * a fake sink (messages are small refcounted structs; sends and resyncs are
 * counted per client) and a fake engine (subscribe and unsubscribe are
 * recorded and answered when, and how, the test says; the other operations
 * answer at once).
 *
 * Covered: delivery to live subscribers (once each; positioned ones skip
 * what they have seen and advance), events held before going live and
 * merged by hub_sub_go_live, the held-events bound (resync HELD), a gap in
 * offsets (resync GAP), the bounded inbox (events_dropped, resync INBOX of
 * that channel only), channel interest towards the engine (one subscribe
 * per channel, waiters told later on the loop, unsubscribe after the last
 * subscriber and only once a subscribe in flight is answered, errors,
 * strict alternation), channel.max_clients, many subscriptions on one
 * client, hub_call answers on the loop with error counts, hub_for_user. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/config.h"
#include "core/dict.h"
#include "core/inbox.h"
#include "core/rcbuf.h"
#include "engine/engine.h"
#include "hub/hub.h"
#include "obs/log.h"

/* ------------------------------------------------------------ fake sink */

enum { MSG_PUB = 1, MSG_JOIN, MSG_LEAVE };

typedef struct tmsg {
    int refs;
    int kind;
    uint64_t offset;
} tmsg;

static int msgs_alive;               /* messages made and not yet released */

static void *tmsg_new(int kind, uint64_t offset) {
    tmsg *m = malloc(sizeof(*m));
    if (!m) return NULL;
    m->refs = 1;
    m->kind = kind;
    m->offset = offset;
    msgs_alive++;
    return m;
}

static void *sink_pub(const char *channel, const engine_pub *pub) {
    (void)channel;
    return tmsg_new(MSG_PUB, pub->offset);
}

static void *sink_join(const char *channel, const char *info, size_t len) {
    (void)channel, (void)info, (void)len;
    return tmsg_new(MSG_JOIN, 0);
}

static void *sink_leave(const char *channel, const char *info, size_t len) {
    (void)channel, (void)info, (void)len;
    return tmsg_new(MSG_LEAVE, 0);
}

static void sink_unref(void *msg) {
    tmsg *m = msg;
    if (--m->refs == 0) {
        free(m);
        msgs_alive--;
    }
}

#define MAX_GOT 64

/* A test client: the hub's struct first, then what the sink saw. */
typedef struct tclient {
    hub_client hc;
    int sends;                       /* messages queued on it */
    uint64_t got[MAX_GOT];           /* their offsets, in order (the first MAX_GOT) */
    int resyncs;                     /* sink.resync calls */
    int visits;                      /* hub_for_user fn calls */
} tclient;

static tclient *tc_of(const hub_client *cl) {
    return (tclient *)(void *)((char *)cl - offsetof(tclient, hc));
}

static int sink_send(hub_client *cl, void *msg) {
    tclient *tc = tc_of(cl);
    const tmsg *m = msg;
    if (tc->sends < MAX_GOT) tc->got[tc->sends] = m->offset;
    tc->sends++;
    return 0;
}

static void sink_resync(hub_client *cl) { tc_of(cl)->resyncs++; }

static char *sink_client_info(const hub_client *cl, const hub_sub *sub, size_t *len) {
    (void)cl, (void)sub;
    *len = 2;
    return strdup("{}");
}

static const hub_sink test_sink = {
    .pub_msg = sink_pub,
    .join_msg = sink_join,
    .leave_msg = sink_leave,
    .msg_unref = sink_unref,
    .send = sink_send,
    .resync = sink_resync,
    .client_info = sink_client_info,
};

/* ---------------------------------------------------------- fake engine */

#define MAX_CALLS 64

typedef struct fcall {
    int on;                          /* 1 subscribe, 0 unsubscribe */
    char channel[64];
    engine_cb cb;
    void *ud;
    int answered;
} fcall;

/* Per channel: whether the engine holds (or is making) a subscription, and
 * whether a subscribe is unanswered. */
typedef struct fchan {
    int subscribed;
    int sub_pending;
} fchan;

typedef struct fake_engine {
    engine base;
    fcall calls[MAX_CALLS];
    int ncalls;
    dict *chans;                     /* channel -> fchan */
    int order_errors;                /* calls out of alternation */
} fake_engine;

static fchan *fchan_of(fake_engine *fe, const char *channel) {
    fchan *c = dict_get(fe->chans, channel);
    if (!c) {
        c = calloc(1, sizeof(*c));
        assert_non_null(c);
        assert_int_equal(dict_set(fe->chans, channel, c), 1);
    }
    return c;
}

static void fake_interest(engine *e, int on, const char *channel, engine_cb cb, void *ud) {
    fake_engine *fe = (fake_engine *)e;
    fchan *c = fchan_of(fe, channel);
    /* subscribe only when not subscribed; unsubscribe only when subscribed
     * and the subscribe has been answered */
    if (on ? c->subscribed : (!c->subscribed || c->sub_pending)) fe->order_errors++;
    c->subscribed = on;
    c->sub_pending = on;
    if (fe->ncalls == MAX_CALLS) { fe->order_errors++; return; }
    fcall *f = &fe->calls[fe->ncalls++];
    f->on = on;
    snprintf(f->channel, sizeof(f->channel), "%s", channel);
    f->cb = cb;
    f->ud = ud;
    f->answered = 0;
}

static void fake_subscribe(engine *e, const char *channel, engine_cb cb, void *ud) {
    fake_interest(e, 1, channel, cb, ud);
}

static void fake_unsubscribe(engine *e, const char *channel, engine_cb cb, void *ud) {
    fake_interest(e, 0, channel, cb, ud);
}

static void answer_now(engine_cb cb, void *ud, engine_op op) {
    engine_answer(cb, ud, op, engine_result_new(op, ENGINE_OK));
}

static void fake_publish(engine *e, const engine_publish_req *req, engine_cb cb, void *ud) {
    (void)e, (void)req;
    answer_now(cb, ud, ENGINE_OP_PUBLISH);
}

static void fake_publish_join(engine *e, const char *channel, const char *info,
                              size_t len, engine_cb cb, void *ud) {
    (void)e, (void)channel, (void)info, (void)len;
    answer_now(cb, ud, ENGINE_OP_JOIN);
}

static void fake_publish_leave(engine *e, const char *channel, const char *info,
                               size_t len, engine_cb cb, void *ud) {
    (void)e, (void)channel, (void)info, (void)len;
    answer_now(cb, ud, ENGINE_OP_LEAVE);
}

static void fake_history(engine *e, const engine_history_req *req, engine_cb cb, void *ud) {
    (void)e, (void)req;
    answer_now(cb, ud, ENGINE_OP_HISTORY);
}

static void fake_history_remove(engine *e, const char *channel, engine_cb cb, void *ud) {
    (void)e, (void)channel;
    answer_now(cb, ud, ENGINE_OP_HISTORY_REMOVE);
}

static void fake_presence_add(engine *e, const char *channel,
                              const engine_presence_entry *entry, int64_t ttl_ms,
                              int64_t now_ms, engine_cb cb, void *ud) {
    (void)e, (void)channel, (void)entry, (void)ttl_ms, (void)now_ms;
    answer_now(cb, ud, ENGINE_OP_PRESENCE_ADD);
}

static void fake_presence_remove(engine *e, const char *channel, const char *client,
                                 engine_cb cb, void *ud) {
    (void)e, (void)channel, (void)client;
    answer_now(cb, ud, ENGINE_OP_PRESENCE_REMOVE);
}

static void fake_presence(engine *e, const char *channel, int64_t now_ms,
                          engine_cb cb, void *ud) {
    (void)e, (void)channel, (void)now_ms;
    answer_now(cb, ud, ENGINE_OP_PRESENCE);
}

static void fake_presence_stats(engine *e, const char *channel, int64_t now_ms,
                                engine_cb cb, void *ud) {
    (void)e, (void)channel, (void)now_ms;
    answer_now(cb, ud, ENGINE_OP_PRESENCE_STATS);
}

static void fake_quiesce(engine *e) { (void)e; }
static void fake_destroy(engine *e) { (void)e; }

static const engine_ops fake_ops = {
    .publish = fake_publish,
    .publish_join = fake_publish_join,
    .publish_leave = fake_publish_leave,
    .history = fake_history,
    .history_remove = fake_history_remove,
    .presence_add = fake_presence_add,
    .presence_remove = fake_presence_remove,
    .presence = fake_presence,
    .presence_stats = fake_presence_stats,
    .subscribe = fake_subscribe,
    .unsubscribe = fake_unsubscribe,
    .gauges = NULL,
    .quiesce = fake_quiesce,
    .destroy = fake_destroy,
};

/* ------------------------------------------------------------- fixture */

#define MAX_CLIENTS 16

typedef struct fixture {
    config cfg;
    uv_loop_t loop;
    inbox ib;
    hub *h;
    hub_local *hl;
    fake_engine eng;
    tclient *clients[MAX_CLIENTS];
    int nclients;
} fixture;

static fixture F;

/* Defaults; a test changes F.cfg between fx_init and fx_start. */
static void fx_init(void) {
    memset(&F, 0, sizeof(F));
    msgs_alive = 0;
    config_defaults(&F.cfg);
}

static void fx_start(void) {
    assert_int_equal(uv_loop_init(&F.loop), 0);
    assert_int_equal(inbox_init(&F.ib, &F.loop), 0);
    inbox_set_owner(&F.ib);
    uv_loop_t *loops[1] = { &F.loop };
    inbox *inboxes[1] = { &F.ib };
    F.h = hub_new(&F.cfg, &test_sink, 1, loops, inboxes);
    assert_non_null(F.h);
    F.hl = F.h->locals[0];
    F.eng.base.ops = &fake_ops;
    F.eng.base.events = hub_engine_events(F.h);
    F.eng.chans = dict_new();
    assert_non_null(F.eng.chans);
    hub_set_engine(F.h, &F.eng.base);
}

/* Runs what is queued on the loop: the inbox FIFO (async wakeup) and the
 * deferred list (idle handle, and the check phase a worker has). */
static void pump(void) {
    for (int i = 0; i < 4; i++) {
        uv_run(&F.loop, UV_RUN_NOWAIT);
        inbox_run_deferred(&F.ib);
    }
}

static void answer(int i, int err) {
    assert_true(i >= 0 && i < F.eng.ncalls);
    fcall *f = &F.eng.calls[i];
    assert_false(f->answered);
    f->answered = 1;
    if (f->on) {
        fchan *c = fchan_of(&F.eng, f->channel);
        c->sub_pending = 0;
        if (err) c->subscribed = 0;       /* the engine did not subscribe */
    }
    f->cb(f->ud, engine_result_new(f->on ? ENGINE_OP_SUBSCRIBE : ENGINE_OP_UNSUBSCRIBE, err));
}

/* Calls of kind on (1 subscribe, 0 unsubscribe) made for channel. */
static int ncalls(const char *channel, int on) {
    int n = 0;
    for (int i = 0; i < F.eng.ncalls; i++)
        if (F.eng.calls[i].on == on && strcmp(F.eng.calls[i].channel, channel) == 0) n++;
    return n;
}

/* Index of the last call of kind on for channel (-1 if none). */
static int last_call(const char *channel, int on) {
    for (int i = F.eng.ncalls - 1; i >= 0; i--)
        if (F.eng.calls[i].on == on && strcmp(F.eng.calls[i].channel, channel) == 0) return i;
    return -1;
}

static void remove_all_subs(tclient *tc) {
    while (tc->hc.nsubs) hub_sub_remove(tc->hc.subs[tc->hc.nsubs - 1]);
}

static void close_handle(uv_handle_t *hd, void *arg) {
    (void)arg;
    if (!uv_is_closing(hd)) uv_close(hd, NULL);
}

/* Removes every subscription and client, answers what the engine still
 * holds, closes the loop and frees everything. */
static void fx_stop(void) {
    for (int i = 0; i < F.nclients; i++) {
        tclient *tc = F.clients[i];
        remove_all_subs(tc);
        hub_client_unregister(&tc->hc);
        hub_client_release(&tc->hc);
        free(tc);
    }
    F.nclients = 0;
    for (int i = 0; i < F.eng.ncalls; i++)       /* answers may make more calls */
        if (!F.eng.calls[i].answered) answer(i, ENGINE_OK);
    pump();
    assert_int_equal(F.eng.order_errors, 0);

    inbox_close(&F.ib);
    uv_walk(&F.loop, close_handle, NULL);      /* the hub's presence timer */
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    inbox_destroy(&F.ib);
    hub_free(F.h);
    dict_free(F.eng.chans, free);
    config_free(&F.cfg);
    assert_int_equal(msgs_alive, 0);
}

static tclient *client_new(const char *user, const char *id) {
    assert_true(F.nclients < MAX_CLIENTS);
    tclient *tc = calloc(1, sizeof(*tc));
    assert_non_null(tc);
    tc->hc.hl = F.hl;
    tc->hc.user = user ? strdup(user) : hub_anonymous;
    assert_non_null(tc->hc.user);
    snprintf(tc->hc.id, sizeof(tc->hc.id), "%s", id);
    F.clients[F.nclients++] = tc;
    return tc;
}

static hub_sub *sub_add(tclient *tc, const char *channel) {
    hub_sub *s = NULL;
    assert_int_equal(hub_sub_add(&tc->hc, channel, &F.cfg.namespaces.top, &s), HUB_ADD_OK);
    assert_non_null(s);
    return s;
}

static hub_sub *sub_live(tclient *tc, const char *channel, int positioned, uint64_t at) {
    hub_sub *s = sub_add(tc, channel);
    s->positioned = s->recoverable = (uint8_t)positioned;
    hub_sub_go_live(s, at);
    return s;
}

/* An engine event, as the engine reports it (any thread; here the test's). */
static void inject_pub(const char *channel, uint64_t offset) {
    engine_events ev = hub_engine_events(F.h);
    rcbuf *payload = rcbuf_copy("{\"x\":1}", 7);
    assert_non_null(payload);
    engine_pub pub = { .offset = offset, .time_ms = 1700000000000, .payload = payload };
    ev.on_publication(ev.ud, channel, &pub);
    rcbuf_unref(payload);
}

static void expect_got(const tclient *tc, const uint64_t *want, int n) {
    assert_int_equal(tc->sends, n);
    for (int i = 0; i < n; i++) assert_int_equal(tc->got[i], want[i]);
}

#define GOT(...) ((const uint64_t[]){ __VA_ARGS__ }), \
    (int)(sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t))

static uint64_t resyncs(int reason) { return METRIC_GET(F.hl->metrics.resyncs[reason]); }

/* ------------------------------------------------------------- delivery */

/* Live subscribers get each event once, in order; a positioned one skips
 * offsets it has seen and advances its position; other channels' subscribers
 * get nothing. */
static void test_delivery(void **state) {
    (void)state;
    fx_init();
    fx_start();
    tclient *a = client_new(NULL, "a"), *b = client_new(NULL, "b"), *c = client_new(NULL, "c");
    sub_live(a, "room", 0, 0);
    hub_sub *sb = sub_live(b, "room", 1, 3);     /* has seen up to offset 3 */
    sub_live(c, "other", 0, 0);

    for (uint64_t off = 1; off <= 5; off++) inject_pub("room", off);
    assert_int_equal(a->sends, 0);               /* queued on the loop, not delivered inline */
    pump();
    expect_got(a, GOT(1, 2, 3, 4, 5));
    expect_got(b, GOT(4, 5));
    assert_int_equal(sb->offset, 5);
    assert_int_equal(c->sends, 0);

    inject_pub("room", 5);                       /* seen already by b */
    inject_pub("room", 6);
    pump();
    expect_got(b, GOT(4, 5, 6));
    assert_int_equal(sb->offset, 6);
    assert_int_equal(a->sends, 7);
    pump();                                      /* nothing delivered twice */
    assert_int_equal(a->sends, 7);
    assert_int_equal(b->sends, 3);
    assert_int_equal(a->resyncs + b->resyncs + c->resyncs, 0);
    assert_int_equal(METRIC_GET(F.hl->metrics.pushes_out), 10);
    fx_stop();
}

/* A subscription not live yet holds events; going live at an offset
 * delivers those above it, in order, and none below. */
static void test_held_events(void **state) {
    (void)state;
    fx_init();
    fx_start();
    tclient *a = client_new(NULL, "a");
    hub_sub *s = sub_add(a, "room");
    s->positioned = s->recoverable = 1;
    for (uint64_t off = 1; off <= 5; off++) inject_pub("room", off);
    pump();
    assert_int_equal(a->sends, 0);               /* held */
    hub_sub_go_live(s, 2);                       /* history gave it up to 2 */
    expect_got(a, GOT(3, 4, 5));
    assert_int_equal(s->offset, 5);
    inject_pub("room", 6);
    pump();
    expect_got(a, GOT(3, 4, 5, 6));
    assert_int_equal(a->resyncs, 0);
    fx_stop();
}

/* Past client.max_held_events, a subscription not live yet is told to
 * resync (once) and gets nothing after, even once live. */
static void test_held_events_bound(void **state) {
    (void)state;
    fx_init();
    F.cfg.client_max_held_events = 3;
    fx_start();
    tclient *a = client_new(NULL, "a"), *b = client_new(NULL, "b");
    hub_sub *s = sub_add(a, "room");
    s->positioned = s->recoverable = 1;
    sub_live(b, "room", 1, 0);                   /* live: unaffected */
    for (uint64_t off = 1; off <= 3; off++) inject_pub("room", off);
    pump();
    assert_int_equal(a->resyncs, 0);
    inject_pub("room", 4);
    pump();
    assert_int_equal(a->resyncs, 1);
    assert_int_equal(resyncs(HUB_RESYNC_HELD), 1);
    assert_true(s->dead);
    inject_pub("room", 5);
    pump();
    hub_sub_go_live(s, 0);
    inject_pub("room", 6);
    pump();
    assert_int_equal(a->sends, 0);
    assert_int_equal(a->resyncs, 1);
    assert_int_equal(resyncs(HUB_RESYNC_HELD), 1);
    assert_int_equal(resyncs(HUB_RESYNC_GAP) + resyncs(HUB_RESYNC_INBOX), 0);
    expect_got(b, GOT(1, 2, 3, 4, 5, 6));
    assert_int_equal(b->resyncs, 0);
    fx_stop();
}

/* A live positioned subscriber that would skip an offset resyncs and gets
 * nothing more. */
static void test_gap(void **state) {
    (void)state;
    fx_init();
    fx_start();
    tclient *a = client_new(NULL, "a");
    hub_sub *s = sub_live(a, "room", 1, 5);
    inject_pub("room", 7);                       /* 6 is missing */
    pump();
    assert_int_equal(a->resyncs, 1);
    assert_int_equal(resyncs(HUB_RESYNC_GAP), 1);
    assert_true(s->dead);
    inject_pub("room", 8);
    inject_pub("room", 6);
    pump();
    assert_int_equal(a->sends, 0);
    assert_int_equal(a->resyncs, 1);
    assert_int_equal(resyncs(HUB_RESYNC_GAP), 1);
    assert_int_equal(resyncs(HUB_RESYNC_HELD) + resyncs(HUB_RESYNC_INBOX), 0);
    fx_stop();
}

/* channel.max_queued_events: events a full inbox refuses are counted, and
 * the subscribers of that channel (only) resync once, after the events that
 * did fit; new subscribers of the channel are served again. */
static void test_inbox_bound(void **state) {
    (void)state;
    fx_init();
    F.cfg.channel_max_queued_events = 16;
    fx_start();
    tclient *a = client_new(NULL, "a"), *b = client_new(NULL, "b");
    hub_sub *sa = sub_live(a, "A", 1, 0);
    sub_live(b, "B", 1, 0);
    inject_pub("B", 1);
    pump();
    expect_got(b, GOT(1));

    for (uint64_t off = 1; off <= 20; off++) inject_pub("A", off);
    assert_int_equal(atomic_load(&F.hl->events_dropped), 4);
    assert_int_equal(a->sends, 0);
    pump();
    expect_got(a, GOT(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
    assert_int_equal(a->resyncs, 1);
    assert_true(sa->dead);
    assert_int_equal(resyncs(HUB_RESYNC_INBOX), 1);
    assert_int_equal(resyncs(HUB_RESYNC_HELD) + resyncs(HUB_RESYNC_GAP), 0);
    expect_got(b, GOT(1));
    assert_int_equal(b->resyncs, 0);

    tclient *c = client_new(NULL, "c");
    sub_live(c, "A", 0, 0);
    inject_pub("A", 21);
    inject_pub("B", 2);
    pump();
    assert_int_equal(a->sends, 16);              /* dead: nothing more */
    assert_int_equal(a->resyncs, 1);
    expect_got(b, GOT(1, 2));
    assert_int_equal(b->resyncs, 0);
    expect_got(c, GOT(21));
    assert_int_equal(resyncs(HUB_RESYNC_INBOX), 1);
    assert_int_equal(atomic_load(&F.hl->events_dropped), 4);

    /* It happens again: the overflow is re-armed once handled. */
    for (uint64_t off = 22; off <= 41; off++) inject_pub("A", off);
    assert_int_equal(atomic_load(&F.hl->events_dropped), 8);
    pump();
    assert_int_equal(c->sends, 17);              /* 21, then 22..37 */
    assert_int_equal(c->got[16], 37);
    assert_int_equal(c->resyncs, 1);
    assert_int_equal(resyncs(HUB_RESYNC_INBOX), 2);
    assert_int_equal(a->resyncs, 1);
    assert_int_equal(b->resyncs, 0);
    fx_stop();
}

/* ------------------------------------------------------------- interest */

typedef struct waiter {
    int runs, err;
    int early;                       /* ran inside hub_sub_when_ready */
} waiter;

static int in_when_ready;

static void on_ready(void *ud, int err) {
    waiter *w = ud;
    w->runs++;
    w->err = err;
    if (in_when_ready) w->early++;
}

static void when_ready(hub_sub *s, waiter *w) {
    in_when_ready = 1;
    assert_int_equal(hub_sub_when_ready(s, on_ready, w), 0);
    in_when_ready = 0;
    assert_int_equal(w->runs, 0);
}

static void expect_told(const waiter *w, int err) {
    assert_int_equal(w->runs, 1);
    assert_int_equal(w->err, err);
    assert_int_equal(w->early, 0);
}

/* One subscribe per channel while it has subscribers here; waiters told on
 * the loop once it is answered; one unsubscribe after the last one leaves,
 * made only once a subscribe in flight is answered; a failed subscribe is
 * asked again by the next subscriber. The fake engine checks that calls
 * alternate per channel. */
static void test_interest(void **state) {
    (void)state;
    fx_init();
    fx_start();
    tclient *a = client_new(NULL, "a"), *b = client_new(NULL, "b"), *c = client_new(NULL, "c");

    /* Two subscribers while the subscribe is in flight, a third once ready. */
    waiter wa = {0}, wb = {0}, wc = {0};
    hub_sub *sa = sub_add(a, "room");
    when_ready(sa, &wa);
    assert_int_equal(F.eng.ncalls, 1);
    assert_int_equal(ncalls("room", 1), 1);
    pump();
    assert_int_equal(wa.runs, 0);                /* not answered yet */
    hub_sub *sb = sub_add(b, "room");
    when_ready(sb, &wb);
    assert_int_equal(F.eng.ncalls, 1);
    answer(last_call("room", 1), ENGINE_OK);
    assert_int_equal(wa.runs + wb.runs, 0);      /* on the loop, not in the answer */
    pump();
    expect_told(&wa, 0);
    expect_told(&wb, 0);
    hub_sub *sc = sub_add(c, "room");
    when_ready(sc, &wc);                         /* ready: told later all the same */
    pump();
    expect_told(&wc, 0);
    assert_int_equal(F.eng.ncalls, 1);
    hub_sub_remove(sa);
    hub_sub_remove(sb);
    assert_int_equal(ncalls("room", 0), 0);
    hub_sub_remove(sc);
    assert_int_equal(ncalls("room", 0), 1);
    assert_int_equal(F.eng.ncalls, 2);
    answer(last_call("room", 0), ENGINE_OK);
    pump();

    /* The last subscriber leaves while the subscribe is in flight: the
     * unsubscribe waits for its answer. */
    waiter wd = {0};
    hub_sub *sd = sub_add(a, "lobby");
    when_ready(sd, &wd);
    assert_int_equal(ncalls("lobby", 1), 1);
    hub_sub_remove(sd);
    assert_int_equal(ncalls("lobby", 0), 0);
    answer(last_call("lobby", 1), ENGINE_OK);
    assert_int_equal(ncalls("lobby", 0), 1);
    answer(last_call("lobby", 0), ENGINE_OK);
    pump();
    expect_told(&wd, 0);                         /* fn checks that its sub is gone */

    /* A failed subscribe: its waiters get the error, the next subscriber
     * asks again. */
    waiter we1 = {0}, we2 = {0}, we3 = {0};
    hub_sub *se1 = sub_add(a, "news"), *se2 = sub_add(b, "news");
    when_ready(se1, &we1);
    when_ready(se2, &we2);
    assert_int_equal(ncalls("news", 1), 1);
    answer(last_call("news", 1), ENGINE_ERR_UNAVAILABLE);
    pump();
    expect_told(&we1, ENGINE_ERR_UNAVAILABLE);
    expect_told(&we2, ENGINE_ERR_UNAVAILABLE);
    assert_int_equal(atomic_load(&F.h->engine_errors[ENGINE_OP_SUBSCRIBE]), 1);
    hub_sub_remove(se1);                         /* nothing to unsubscribe */
    assert_int_equal(ncalls("news", 0), 0);
    hub_sub *se3 = sub_add(c, "news");
    when_ready(se3, &we3);
    assert_int_equal(ncalls("news", 1), 2);
    answer(last_call("news", 1), ENGINE_OK);
    pump();
    expect_told(&we3, 0);
    assert_int_equal(we2.runs, 1);
    hub_sub_remove(se2);
    assert_int_equal(ncalls("news", 0), 0);
    hub_sub_remove(se3);
    assert_int_equal(ncalls("news", 0), 1);

    /* A subscriber while the unsubscribe is in flight subscribes again. */
    waiter we4 = {0};
    hub_sub *se4 = sub_add(a, "news");
    when_ready(se4, &we4);
    assert_int_equal(ncalls("news", 1), 3);
    answer(last_call("news", 0), ENGINE_OK);
    answer(last_call("news", 1), ENGINE_OK);
    pump();
    expect_told(&we4, 0);
    hub_sub_remove(se4);
    assert_int_equal(ncalls("news", 0), 2);
    answer(last_call("news", 0), ENGINE_OK);
    pump();

    for (int i = 0; i < F.eng.ncalls; i++) assert_true(F.eng.calls[i].answered);
    assert_int_equal(F.eng.ncalls, 9);
    assert_int_equal(F.eng.order_errors, 0);
    int clients, users, channels;
    hub_counts(F.h, &clients, &users, &channels);
    assert_int_equal(channels, 0);
    fx_stop();
}

/* ------------------------------------------------------------- limits */

static void count_chan(void *ud, const char *channel, int n) {
    if (strcmp(channel, "vip") == 0) *(int *)ud = n;
}

/* channel.max_clients: the subscriber past the limit is refused, and
 * leaves no trace; a place freed is taken again. */
static void test_channel_max_clients(void **state) {
    (void)state;
    fx_init();
    F.cfg.channel_max_clients = 2;
    fx_start();
    tclient *a = client_new(NULL, "a"), *b = client_new(NULL, "b"), *c = client_new(NULL, "c");
    hub_sub *sa = sub_add(a, "vip");
    sub_add(b, "vip");
    hub_sub *s = (hub_sub *)&s;                 /* any non-NULL: *out must be cleared */
    assert_int_equal(hub_sub_add(&c->hc, "vip", &F.cfg.namespaces.top, &s), HUB_ADD_LIMIT);
    assert_null(s);
    assert_int_equal(c->hc.nsubs, 0);
    assert_null(hub_client_sub(&c->hc, "vip"));
    int n = -1;
    hub_channels(F.h, count_chan, &n);
    assert_int_equal(n, 2);
    sub_add(c, "other");                         /* other channels are not limited */
    hub_sub_remove(sa);
    sub_add(c, "vip");
    n = -1;
    hub_channels(F.h, count_chan, &n);
    assert_int_equal(n, 2);
    fx_stop();
}

/* ------------------------------------------------ many subscriptions */

enum { MANY = 70000 };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) {                      /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void many_name(char *buf, size_t size, int i) { snprintf(buf, size, "many%05d", i); }

static void check_client_subs(const hub_client *cl) {
    for (uint32_t i = 0; i < cl->nsubs; i++) assert_int_equal(cl->subs[i]->cl_index, i);
}

/* One client with more subscriptions than 16 bits count: lookups find
 * them, removal in any order keeps the count and the lookups right. Linear
 * lookups or removals would make this take minutes (ctest's timeout). */
static void test_many_subscriptions(void **state) {
    (void)state;
    fx_init();
    fx_start();
    tclient *a = client_new(NULL, "a");
    hub_sub **subs = malloc(MANY * sizeof(*subs));
    int *order = malloc(MANY * sizeof(*order));
    assert_non_null(subs);
    assert_non_null(order);
    char name[32];
    for (int i = 0; i < MANY; i++) {
        many_name(name, sizeof(name), i);
        subs[i] = sub_add(a, name);
        order[i] = i;
    }
    assert_int_equal(a->hc.nsubs, MANY);
    check_client_subs(&a->hc);
    assert_int_equal(METRIC_GET(F.hl->metrics.subscriptions), MANY);
    int clients, users, channels;
    hub_counts(F.h, &clients, &users, &channels);
    assert_int_equal(channels, MANY);
    const int probe[] = { 0, MANY / 2, MANY - 1, 65535, 65536 };
    for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++) {
        many_name(name, sizeof(name), probe[k]);
        assert_ptr_equal(hub_client_sub(&a->hc, name), subs[probe[k]]);
    }
    assert_null(hub_client_sub(&a->hc, "many70000"));

    for (int i = MANY - 1; i > 0; i--) {         /* Fisher-Yates */
        int j = (int)(rng() % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int half = MANY / 2;
    for (int k = 0; k < half; k++) {
        hub_sub_remove(subs[order[k]]);
        subs[order[k]] = NULL;
    }
    assert_int_equal(a->hc.nsubs, MANY - half);
    assert_int_equal(METRIC_GET(F.hl->metrics.subscriptions), MANY - half);
    check_client_subs(&a->hc);
    for (int i = 0; i < MANY; i += 7) {          /* a sample, kept and removed */
        many_name(name, sizeof(name), i);
        assert_ptr_equal(hub_client_sub(&a->hc, name), subs[i]);
    }
    for (int k = half; k < MANY; k++) {          /* all that are left */
        hub_sub *s = subs[order[k]];
        assert_ptr_equal(hub_client_sub(&a->hc, s->channel), s);
    }
    hub_counts(F.h, &clients, &users, &channels);
    assert_int_equal(channels, MANY - half);

    for (int k = half; k < MANY; k++) hub_sub_remove(subs[order[k]]);
    assert_int_equal(a->hc.nsubs, 0);
    assert_int_equal(METRIC_GET(F.hl->metrics.subscriptions), 0);
    many_name(name, sizeof(name), order[MANY - 1]);
    assert_null(hub_client_sub(&a->hc, name));
    hub_counts(F.h, &clients, &users, &channels);
    assert_int_equal(channels, 0);
    assert_int_equal(F.eng.ncalls, 0);           /* nobody asked for readiness */
    free(subs);
    free(order);
    fx_stop();
}

/* ------------------------------------------------------------- hub_call */

typedef struct call_rec {
    int runs;
    engine_result *res;
    int err;
    uint64_t top;
} call_rec;

static void on_answer(void *ud, engine_result *res) {
    call_rec *r = ud;
    r->runs++;
    r->res = res;
    r->err = res->err;
    r->top = res->top.offset;
    engine_result_free(res);
}

typedef struct cross_call {
    void *call;
    engine_result *res;
} cross_call;

static void answer_from_thread(void *p) {
    cross_call *x = p;
    hub_call_cb(x->call, x->res);
}

/* The answer runs on the loop (deferred), unchanged; errors are counted by
 * operation. */
static void test_hub_call(void **state) {
    (void)state;
    fx_init();
    fx_start();
    call_rec r1 = {0}, r2 = {0}, r3 = {0};

    void *call = hub_call(F.hl, on_answer, &r1);
    assert_non_null(call);
    engine_result *res = engine_result_new(ENGINE_OP_HISTORY, ENGINE_OK);
    assert_non_null(res);
    res->top.offset = 42;
    hub_call_cb(call, res);                      /* on the loop's thread */
    assert_int_equal(r1.runs, 0);
    pump();
    assert_int_equal(r1.runs, 1);
    assert_ptr_equal(r1.res, res);
    assert_int_equal(r1.top, 42);
    assert_int_equal(r1.err, 0);
    for (int op = 0; op < ENGINE_OP_COUNT; op++)
        assert_int_equal(atomic_load(&F.h->engine_errors[op]), 0);

    call = hub_call(F.hl, on_answer, &r2);
    assert_non_null(call);
    res = engine_result_new(ENGINE_OP_PRESENCE, ENGINE_ERR_TIMEOUT);
    assert_non_null(res);
    hub_call_cb(call, res);
    assert_int_equal(atomic_load(&F.h->engine_errors[ENGINE_OP_PRESENCE]), 1);
    assert_int_equal(r2.runs, 0);
    pump();
    assert_int_equal(r2.runs, 1);
    assert_ptr_equal(r2.res, res);
    assert_int_equal(r2.err, ENGINE_ERR_TIMEOUT);

    /* From another thread: through the inbox, still run on the loop. */
    cross_call x = { hub_call(F.hl, on_answer, &r3),
                     engine_result_new(ENGINE_OP_PUBLISH, ENGINE_ERR_UNAVAILABLE) };
    assert_non_null(x.call);
    assert_non_null(x.res);
    engine_result *sent = x.res;
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, answer_from_thread, &x), 0);
    uv_thread_join(&th);
    assert_int_equal(r3.runs, 0);
    pump();
    assert_int_equal(r3.runs, 1);
    assert_ptr_equal(r3.res, sent);
    assert_int_equal(r3.err, ENGINE_ERR_UNAVAILABLE);
    assert_int_equal(atomic_load(&F.h->engine_errors[ENGINE_OP_PUBLISH]), 1);
    for (int op = 0; op < ENGINE_OP_COUNT; op++)
        if (op != ENGINE_OP_PRESENCE && op != ENGINE_OP_PUBLISH)
            assert_int_equal(atomic_load(&F.h->engine_errors[op]), 0);
    fx_stop();
}

/* ---------------------------------------------------------- hub_for_user */

typedef struct user_arg {
    int marker;
} user_arg;

static int arg_frees;
static user_arg *arg_seen;
static int arg_mismatch;

static void visit(hub_client *cl, void *arg) {
    if (arg != arg_seen) arg_mismatch++;
    tc_of(cl)->visits++;
}

static void free_user_arg(void *arg) {
    if (arg != arg_seen) arg_mismatch++;
    arg_frees++;
    free(arg);
}

static void reset_visits(void) {
    for (int i = 0; i < F.nclients; i++) F.clients[i]->visits = 0;
    arg_frees = 0;
}

/* Runs for_user(user, client_id) on the loop and checks the arg was freed
 * once, after the visits. */
static void for_user(const char *user, const char *client_id) {
    reset_visits();
    arg_seen = malloc(sizeof(*arg_seen));
    assert_non_null(arg_seen);
    assert_int_equal(hub_for_user(F.h, user, client_id, visit, arg_seen, free_user_arg), 0);
    for (int i = 0; i < F.nclients; i++) assert_int_equal(F.clients[i]->visits, 0);
    assert_int_equal(arg_frees, 0);
    pump();
    assert_int_equal(arg_frees, 1);
    assert_int_equal(arg_mismatch, 0);
}

static void test_for_user(void **state) {
    (void)state;
    fx_init();
    fx_start();
    arg_mismatch = 0;
    tclient *a1 = client_new("alice", "id-a1"), *a2 = client_new("alice", "id-a2");
    tclient *b = client_new("bob", "id-b"), *anon = client_new(NULL, "id-anon");
    tclient *gone = client_new("alice", "id-gone");      /* never registered */
    assert_int_equal(hub_client_register(&a1->hc), 0);
    assert_int_equal(hub_client_register(&a2->hc), 0);
    assert_int_equal(hub_client_register(&b->hc), 0);
    assert_int_equal(hub_client_register(&anon->hc), 0);

    for_user("alice", "");
    assert_int_equal(a1->visits, 1);
    assert_int_equal(a2->visits, 1);
    assert_int_equal(b->visits + anon->visits + gone->visits, 0);

    for_user("alice", "id-a2");
    assert_int_equal(a2->visits, 1);
    assert_int_equal(a1->visits + b->visits + anon->visits + gone->visits, 0);

    for_user("bob", "id-a1");                    /* that client is not bob's */
    assert_int_equal(a1->visits + a2->visits + b->visits + anon->visits + gone->visits, 0);

    for_user("", "id-b");                        /* by client id alone */
    assert_int_equal(b->visits, 1);
    assert_int_equal(a1->visits + a2->visits + anon->visits + gone->visits, 0);

    for_user("carol", "");                       /* nobody: arg freed all the same */
    assert_int_equal(a1->visits + a2->visits + b->visits + anon->visits + gone->visits, 0);

    hub_client_unregister(&a1->hc);              /* gone from the list */
    for_user("alice", "");
    assert_int_equal(a2->visits, 1);
    assert_int_equal(a1->visits + b->visits + anon->visits + gone->visits, 0);
    fx_stop();
}

/* A gap among the held events resyncs the subscription while it goes
 * live: nothing is released twice, nothing after the gap is delivered. */
static void test_golive_gap(void **state) {
    (void)state;
    fx_init();
    fx_start();
    tclient *a = client_new(NULL, "a");
    hub_sub *s = sub_add(a, "room");
    s->positioned = s->recoverable = 1;
    inject_pub("room", 3);
    inject_pub("room", 5);
    inject_pub("room", 6);
    pump();
    hub_sub_go_live(s, 2);
    expect_got(a, GOT(3));
    assert_int_equal(a->resyncs, 1);
    fx_stop();
}

int main(void) {
    log_set_level("error");                      /* the engine error test warns */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery),
        cmocka_unit_test(test_held_events),
        cmocka_unit_test(test_held_events_bound),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_inbox_bound),
        cmocka_unit_test(test_interest),
        cmocka_unit_test(test_channel_max_clients),
        cmocka_unit_test(test_many_subscriptions),
        cmocka_unit_test(test_hub_call),
        cmocka_unit_test(test_for_user),
        cmocka_unit_test(test_golive_gap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
