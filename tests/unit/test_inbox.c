/* Unit tests for src/core/inbox.c: the FIFO from several threads (each
 * thread's posts run in its order, on the loop's thread, all exactly once),
 * the bound of inbox_post_bounded against a stalled loop, inbox_defer from
 * the owner thread (a private list run by inbox_run_deferred in the same
 * turn, or by the idle handle) and from other threads (through the FIFO, in
 * order with posts), tasks deferred while deferred tasks run, inbox_run_all,
 * and inbox_destroy running what is left after the loop is gone.
 *
 * Tasks only record what happened; cmocka asserts run on the test's thread
 * (after the loop thread is joined, or after a condition variable says the
 * tasks ran). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/inbox.h"

#define WAIT_NS 5000000000ull        /* a test that waits longer has failed */

/* ------------------------------------------------------------- helpers */

/* A log of task runs, shared by the loop thread and the test thread. */
typedef struct runlog {
    uv_mutex_t mu;
    uv_cond_t cv;
    int n;                           /* tasks run */
    int order[64];                   /* ids, in run order (the first 64) */
    int off_owner;                   /* runs on a thread other than the owner */
    inbox *ib;
} runlog;

typedef struct item {
    task t;
    runlog *log;
    int id;
    int runs;
    void (*then)(struct item *it);   /* optional: what the task does next */
    struct item *next_items[2];
} item;

static void runlog_init(runlog *l, inbox *ib) {
    memset(l, 0, sizeof(*l));
    assert_int_equal(uv_mutex_init(&l->mu), 0);
    assert_int_equal(uv_cond_init(&l->cv), 0);
    l->ib = ib;
}

static void runlog_free(runlog *l) {
    uv_cond_destroy(&l->cv);
    uv_mutex_destroy(&l->mu);
}

static void item_run(task *t) {
    item *it = TASK_OWNER(t, item, t);
    runlog *l = it->log;
    int owner = inbox_on_owner(l->ib);
    uv_mutex_lock(&l->mu);
    it->runs++;
    if (l->n < 64) l->order[l->n] = it->id;
    l->n++;
    if (!owner) l->off_owner++;
    uv_cond_broadcast(&l->cv);
    uv_mutex_unlock(&l->mu);
    if (it->then) it->then(it);
}

static void item_init(item *it, runlog *l, int id) {
    memset(it, 0, sizeof(*it));
    it->t.run = item_run;
    it->log = l;
    it->id = id;
}

/* Waits (bounded) until at least n tasks have run; returns how many did. */
static int runlog_wait(runlog *l, int n) {
    uint64_t deadline = uv_hrtime() + WAIT_NS;
    uv_mutex_lock(&l->mu);
    while (l->n < n) {
        uint64_t now = uv_hrtime();
        if (now >= deadline) break;
        uv_cond_timedwait(&l->cv, &l->mu, deadline - now);
    }
    int got = l->n;
    uv_mutex_unlock(&l->mu);
    return got;
}

static void expect_order(runlog *l, const int *want, int n) {
    assert_int_equal(l->n, n);
    for (int i = 0; i < n; i++) assert_int_equal(l->order[i], want[i]);
}

#define ORDER(...) ((const int[]){ __VA_ARGS__ }), \
    (int)(sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int))

/* An inbox whose loop is run by the test thread itself (which owns it). */
typedef struct local_loop {
    uv_loop_t loop;
    inbox ib;
} local_loop;

static void local_start(local_loop *ll) {
    assert_int_equal(uv_loop_init(&ll->loop), 0);
    assert_int_equal(inbox_init(&ll->ib, &ll->loop), 0);
    inbox_set_owner(&ll->ib);
}

/* Closes the handles, lets the loop finish closing, destroys the inbox. */
static void local_stop(local_loop *ll) {
    inbox_close(&ll->ib);
    uv_run(&ll->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&ll->loop), 0);
    inbox_destroy(&ll->ib);
}

/* An inbox whose loop runs on a thread of its own (the owner). */
typedef struct loop_thread {
    uv_loop_t loop;
    inbox ib;
    uv_thread_t thread;
    uv_sem_t owned;                  /* posted once the loop thread is the owner */
    task stop;
} loop_thread;

static void loop_main(void *arg) {
    loop_thread *lt = arg;
    inbox_set_owner(&lt->ib);
    uv_sem_post(&lt->owned);
    uv_run(&lt->loop, UV_RUN_DEFAULT);
}

/* Returns once the loop thread owns the inbox (so other threads may call
 * inbox_defer, which reads the owner). */
static void loop_start(loop_thread *lt) {
    assert_int_equal(uv_loop_init(&lt->loop), 0);
    assert_int_equal(inbox_init(&lt->ib, &lt->loop), 0);
    assert_int_equal(uv_sem_init(&lt->owned, 0), 0);
    assert_int_equal(uv_thread_create(&lt->thread, loop_main, lt), 0);
    uv_sem_wait(&lt->owned);
}

static void stop_run(task *t) {
    loop_thread *lt = TASK_OWNER(t, loop_thread, stop);
    inbox_close(&lt->ib);            /* no handle left: uv_run returns */
}

/* Stops the loop through the FIFO (after everything posted before). */
static void loop_stop(loop_thread *lt) {
    lt->stop.run = stop_run;
    inbox_post(&lt->ib, &lt->stop);
    uv_thread_join(&lt->thread);
    uv_sem_destroy(&lt->owned);
    assert_int_equal(uv_loop_close(&lt->loop), 0);
    inbox_destroy(&lt->ib);
}

/* --------------------------------------------------------------- the FIFO */

enum { POSTERS = 4, PER_POSTER = 20000 };

typedef struct seq_item {
    task t;
    int thread, seq, runs;
} seq_item;

typedef struct fifo_state {
    loop_thread lt;
    uv_barrier_t start;
    seq_item *items;                 /* POSTERS * PER_POSTER */
    int last_seq[POSTERS];           /* loop thread only */
    int out_of_order, off_owner;     /* loop thread only */
    runlog done;                     /* counts runs; signals the test */
} fifo_state;

static fifo_state *fifo;

static void seq_run(task *t) {
    seq_item *s = TASK_OWNER(t, seq_item, t);
    s->runs++;
    if (s->seq != fifo->last_seq[s->thread] + 1) fifo->out_of_order++;
    fifo->last_seq[s->thread] = s->seq;
    if (!inbox_on_owner(&fifo->lt.ib)) fifo->off_owner++;
    uv_mutex_lock(&fifo->done.mu);
    if (++fifo->done.n == POSTERS * PER_POSTER) uv_cond_broadcast(&fifo->done.cv);
    uv_mutex_unlock(&fifo->done.mu);
}

typedef struct poster_arg {
    int thread;
    int on_owner;                    /* inbox_on_owner seen by the poster */
} poster_arg;

static void poster(void *p) {
    poster_arg *a = p;
    a->on_owner = inbox_on_owner(&fifo->lt.ib);
    uv_barrier_wait(&fifo->start);
    for (int i = 0; i < PER_POSTER; i++)
        inbox_post(&fifo->lt.ib, &fifo->items[a->thread * PER_POSTER + i].t);
}

static void test_post_fifo_from_threads(void **state) {
    (void)state;
    fifo_state st;
    memset(&st, 0, sizeof(st));
    fifo = &st;
    st.items = calloc(POSTERS * PER_POSTER, sizeof(seq_item));
    assert_non_null(st.items);
    for (int th = 0; th < POSTERS; th++) {
        st.last_seq[th] = -1;
        for (int i = 0; i < PER_POSTER; i++) {
            seq_item *s = &st.items[th * PER_POSTER + i];
            s->t.run = seq_run;
            s->thread = th;
            s->seq = i;
        }
    }
    runlog_init(&st.done, &st.lt.ib);
    assert_int_equal(uv_barrier_init(&st.start, POSTERS), 0);
    loop_start(&st.lt);

    uv_thread_t threads[POSTERS];
    poster_arg args[POSTERS];
    for (int th = 0; th < POSTERS; th++) {
        args[th] = (poster_arg){ th, -1 };
        assert_int_equal(uv_thread_create(&threads[th], poster, &args[th]), 0);
    }
    for (int th = 0; th < POSTERS; th++) uv_thread_join(&threads[th]);
    assert_int_equal(runlog_wait(&st.done, POSTERS * PER_POSTER), POSTERS * PER_POSTER);
    loop_stop(&st.lt);

    assert_int_equal(st.out_of_order, 0);
    assert_int_equal(st.off_owner, 0);
    for (int th = 0; th < POSTERS; th++) {
        assert_int_equal(st.last_seq[th], PER_POSTER - 1);
        assert_int_equal(args[th].on_owner, 0);
    }
    for (int i = 0; i < POSTERS * PER_POSTER; i++) assert_int_equal(st.items[i].runs, 1);
    assert_int_equal(st.done.n, POSTERS * PER_POSTER);   /* nothing ran twice */
    uv_barrier_destroy(&st.start);
    runlog_free(&st.done);
    free(st.items);
    fifo = NULL;
}

/* --------------------------------------------------------------- bounded */

/* A task that holds the loop until released. */
typedef struct gate {
    task t;
    uv_mutex_t mu;
    uv_cond_t cv;
    int entered, released;
} gate;

static void gate_run(task *t) {
    gate *g = TASK_OWNER(t, gate, t);
    uv_mutex_lock(&g->mu);
    g->entered = 1;
    uv_cond_broadcast(&g->cv);
    while (!g->released) uv_cond_wait(&g->cv, &g->mu);
    uv_mutex_unlock(&g->mu);
}

static void test_post_bounded(void **state) {
    (void)state;
    enum { MAX = 3 };
    loop_thread lt;
    runlog l;
    item it[MAX + 3];
    gate g;
    memset(&g, 0, sizeof(g));
    g.t.run = gate_run;
    uv_mutex_init(&g.mu);
    uv_cond_init(&g.cv);
    runlog_init(&l, &lt.ib);
    for (int i = 0; i < MAX + 3; i++) item_init(&it[i], &l, i);
    loop_start(&lt);

    /* Stall the loop inside a task (the FIFO it was taken from is empty). */
    assert_int_equal(inbox_post_bounded(&lt.ib, &g.t, MAX), 0);
    uv_mutex_lock(&g.mu);
    while (!g.entered) uv_cond_wait(&g.cv, &g.mu);
    uv_mutex_unlock(&g.mu);

    for (int i = 0; i < MAX; i++) assert_int_equal(inbox_post_bounded(&lt.ib, &it[i].t, MAX), 0);
    assert_int_equal(inbox_queued(&lt.ib), MAX);
    assert_int_equal(inbox_post_bounded(&lt.ib, &it[MAX].t, MAX), -1);   /* refused */
    assert_int_equal(inbox_queued(&lt.ib), MAX);
    assert_int_equal(inbox_post_bounded(&lt.ib, &it[MAX].t, MAX + 1), 0); /* a larger bound */
    assert_int_equal(inbox_post_bounded(&lt.ib, &it[MAX + 1].t, 0), -1);  /* max 0: never */

    /* Release the loop: the waiting tasks run, and room is back. */
    uv_mutex_lock(&g.mu);
    g.released = 1;
    uv_cond_broadcast(&g.cv);
    uv_mutex_unlock(&g.mu);
    assert_int_equal(runlog_wait(&l, MAX + 1), MAX + 1);
    assert_int_equal(inbox_queued(&lt.ib), 0);
    assert_int_equal(inbox_post_bounded(&lt.ib, &it[MAX + 1].t, MAX), 0);
    assert_int_equal(runlog_wait(&l, MAX + 2), MAX + 2);
    loop_stop(&lt);

    expect_order(&l, ORDER(0, 1, 2, 3, 4));
    assert_int_equal(it[MAX + 2].runs, 0);           /* never posted */
    assert_int_equal(l.off_owner, 0);
    runlog_free(&l);
    uv_cond_destroy(&g.cv);
    uv_mutex_destroy(&g.mu);
}

/* ----------------------------------------------------------------- defer */

/* From the owner thread a deferred task waits on the private list (not the
 * FIFO, no wakeup) until inbox_run_deferred. */
static void test_defer_on_owner(void **state) {
    (void)state;
    local_loop ll;
    runlog l;
    item a, b;
    local_start(&ll);
    runlog_init(&l, &ll.ib);
    item_init(&a, &l, 1);
    item_init(&b, &l, 2);
    assert_true(inbox_on_owner(&ll.ib));

    inbox_defer(&ll.ib, &a.t);
    inbox_defer(&ll.ib, &b.t);
    assert_int_equal(l.n, 0);                        /* not run inline */
    assert_int_equal(inbox_queued(&ll.ib), 0);       /* not in the FIFO */
    assert_true(uv_is_active((uv_handle_t *)&ll.ib.idle));
    inbox_run_deferred(&ll.ib);
    expect_order(&l, ORDER(1, 2));
    assert_false(uv_is_active((uv_handle_t *)&ll.ib.idle));  /* nothing waits */
    inbox_run_deferred(&ll.ib);                      /* empty: a no-op */
    assert_int_equal(l.n, 2);
    uv_run(&ll.loop, UV_RUN_NOWAIT);                 /* nothing else to run */
    assert_int_equal(l.n, 2);
    local_stop(&ll);
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 1);
    runlog_free(&l);
}

/* In a loop turn: a FIFO task defers another; the check phase (where the
 * worker calls inbox_run_deferred) runs it in the same turn. */
static void on_check(uv_check_t *h) { inbox_run_deferred(h->data); }

static void defer_next(item *it) { inbox_defer(it->log->ib, &it->next_items[0]->t); }

static void test_defer_same_turn(void **state) {
    (void)state;
    local_loop ll;
    runlog l;
    item a, b;
    uv_check_t check;
    local_start(&ll);
    runlog_init(&l, &ll.ib);
    item_init(&a, &l, 1);
    item_init(&b, &l, 2);
    a.then = defer_next;
    a.next_items[0] = &b;
    uv_check_init(&ll.loop, &check);
    check.data = &ll.ib;
    uv_check_start(&check, on_check);

    inbox_post(&ll.ib, &a.t);
    uv_run(&ll.loop, UV_RUN_NOWAIT);                 /* one turn */
    expect_order(&l, ORDER(1, 2));
    assert_false(uv_is_active((uv_handle_t *)&ll.ib.idle));

    uv_close((uv_handle_t *)&check, NULL);
    local_stop(&ll);
    runlog_free(&l);
}

/* Deferred outside any loop callback, with no check phase to run it: the
 * active idle handle runs it in the next turn and keeps the poll from
 * blocking. The task stops the loop; if the poll blocked instead, only the
 * watchdog timer would end uv_run, seconds later. */
static void stop_loop(item *it) {
    uv_stop(uv_handle_get_loop((uv_handle_t *)&it->log->ib->idle));
}

static void on_watchdog(uv_timer_t *t) { uv_stop(uv_handle_get_loop((uv_handle_t *)t)); }

static void test_defer_idle_runs_next_turn(void **state) {
    (void)state;
    local_loop ll;
    runlog l;
    item a;
    uv_timer_t watchdog;
    local_start(&ll);
    runlog_init(&l, &ll.ib);
    item_init(&a, &l, 1);
    a.then = stop_loop;
    uv_timer_init(&ll.loop, &watchdog);
    uv_timer_start(&watchdog, on_watchdog, WAIT_NS / 1000000, 0);

    inbox_defer(&ll.ib, &a.t);
    uint64_t t0 = uv_hrtime();
    uv_run(&ll.loop, UV_RUN_DEFAULT);
    assert_true(uv_hrtime() - t0 < WAIT_NS / 5);    /* a stopped it, not the watchdog */
    expect_order(&l, ORDER(1));
    assert_false(uv_is_active((uv_handle_t *)&ll.ib.idle));

    uv_close((uv_handle_t *)&watchdog, NULL);
    local_stop(&ll);
    runlog_free(&l);
}

/* From another thread inbox_defer is inbox_post: the task runs on the
 * owner's thread, in FIFO order with the posts around it. */
typedef struct defer_arg {
    inbox *ib;
    task *t;
} defer_arg;

static void deferrer(void *p) {
    defer_arg *a = p;
    inbox_defer(a->ib, a->t);
}

static void test_defer_from_other_thread(void **state) {
    (void)state;
    local_loop ll;
    runlog l;
    item a, b, c;
    local_start(&ll);
    runlog_init(&l, &ll.ib);
    item_init(&a, &l, 1);
    item_init(&b, &l, 2);
    item_init(&c, &l, 3);

    inbox_post(&ll.ib, &a.t);
    defer_arg arg = { &ll.ib, &b.t };
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, deferrer, &arg), 0);
    uv_thread_join(&th);
    inbox_post(&ll.ib, &c.t);
    assert_int_equal(inbox_queued(&ll.ib), 3);       /* b is in the FIFO */
    inbox_run_deferred(&ll.ib);                      /* ... not on the private list */
    assert_int_equal(l.n, 0);
    uv_run(&ll.loop, UV_RUN_ONCE);                   /* the wakeup runs the FIFO */
    expect_order(&l, ORDER(1, 2, 3));
    assert_int_equal(l.off_owner, 0);
    local_stop(&ll);
    runlog_free(&l);
}

/* The same through a loop running on its own thread: the test thread is not
 * the owner, so its inbox_defer wakes the loop. */
static void test_defer_from_other_thread_wakes_loop(void **state) {
    (void)state;
    loop_thread lt;
    runlog l;
    item a;
    runlog_init(&l, &lt.ib);
    item_init(&a, &l, 1);
    loop_start(&lt);
    inbox_defer(&lt.ib, &a.t);
    assert_int_equal(runlog_wait(&l, 1), 1);
    loop_stop(&lt);
    assert_int_equal(a.runs, 1);
    assert_int_equal(l.off_owner, 0);
    runlog_free(&l);
}

/* Tasks deferred while deferred tasks run are run by the same call. */
static void defer_both(item *it) {
    inbox_defer(it->log->ib, &it->next_items[0]->t);
    if (it->next_items[1]) inbox_defer(it->log->ib, &it->next_items[1]->t);
}

static void test_defer_while_running_deferred(void **state) {
    (void)state;
    local_loop ll;
    runlog l;
    item t1, t2, t3, t4;
    local_start(&ll);
    runlog_init(&l, &ll.ib);
    item_init(&t1, &l, 1);
    item_init(&t2, &l, 2);
    item_init(&t3, &l, 3);
    item_init(&t4, &l, 4);
    t1.then = defer_both;                /* t1 defers t2 and t3 */
    t1.next_items[0] = &t2;
    t1.next_items[1] = &t3;
    t2.then = defer_both;                /* t2 defers t4 */
    t2.next_items[0] = &t4;

    inbox_defer(&ll.ib, &t1.t);
    inbox_run_deferred(&ll.ib);
    expect_order(&l, ORDER(1, 2, 3, 4));
    assert_false(uv_is_active((uv_handle_t *)&ll.ib.idle));
    assert_int_equal(inbox_queued(&ll.ib), 0);
    local_stop(&ll);
    runlog_free(&l);
}

/* ----------------------------------------------------------- run_all */

static void post_next(item *it) { inbox_post(it->log->ib, &it->next_items[0]->t); }

static void defer_and_post(item *it) {
    inbox_defer(it->log->ib, &it->next_items[0]->t);
    inbox_post(it->log->ib, &it->next_items[1]->t);
}

/* Everything queued runs, including what the tasks queue: the FIFO first,
 * then the deferred, until both are empty. */
static void test_run_all(void **state) {
    (void)state;
    local_loop ll;
    runlog l;
    item p1, p2, p3, p4, d1, d2;
    local_start(&ll);
    runlog_init(&l, &ll.ib);
    item_init(&p1, &l, 1);
    item_init(&p2, &l, 2);
    item_init(&p3, &l, 3);
    item_init(&p4, &l, 4);
    item_init(&d1, &l, 11);
    item_init(&d2, &l, 12);
    p1.then = defer_and_post;            /* p1 defers d2 and posts p3 */
    p1.next_items[0] = &d2;
    p1.next_items[1] = &p3;
    d1.then = post_next;                 /* d1 posts p4 */
    d1.next_items[0] = &p4;

    inbox_post(&ll.ib, &p1.t);
    inbox_post(&ll.ib, &p2.t);
    inbox_defer(&ll.ib, &d1.t);
    inbox_run_all(&ll.ib);
    expect_order(&l, ORDER(1, 2, 11, 12, 3, 4));
    assert_int_equal(inbox_queued(&ll.ib), 0);
    assert_false(uv_is_active((uv_handle_t *)&ll.ib.idle));
    inbox_run_all(&ll.ib);                           /* nothing left */
    uv_run(&ll.loop, UV_RUN_NOWAIT);                 /* a stale wakeup finds nothing */
    assert_int_equal(l.n, 6);

    /* Only deferred tasks, the FIFO empty: they run too. */
    item d3;
    item_init(&d3, &l, 13);
    inbox_defer(&ll.ib, &d3.t);
    inbox_run_all(&ll.ib);
    assert_int_equal(l.n, 7);
    assert_int_equal(d3.runs, 1);
    local_stop(&ll);
    runlog_free(&l);
}

/* ----------------------------------------------------------- destroy */

typedef struct post_arg {
    inbox *ib;
    task *t;
} post_arg;

static void poster_once(void *p) {
    post_arg *a = p;
    inbox_post(a->ib, a->t);
}

/* Whatever is still queued when the loop is gone runs in inbox_destroy
 * (posts, deferred tasks, posts after close, and what those queue). */
static void test_destroy_runs_leftovers(void **state) {
    (void)state;
    local_loop ll;
    runlog l;
    item p1, p2, p3, d1, d2;
    local_start(&ll);
    runlog_init(&l, &ll.ib);
    item_init(&p1, &l, 1);
    item_init(&p2, &l, 2);
    item_init(&p3, &l, 3);
    item_init(&d1, &l, 11);
    item_init(&d2, &l, 12);
    p1.then = defer_next;                /* during destroy: goes through the FIFO */
    p1.next_items[0] = &d2;

    inbox_post(&ll.ib, &p1.t);
    post_arg arg = { &ll.ib, &p2.t };
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, poster_once, &arg), 0);
    uv_thread_join(&th);
    inbox_defer(&ll.ib, &d1.t);

    inbox_close(&ll.ib);
    inbox_post(&ll.ib, &p3.t);                       /* after close: queued, no wakeup */
    uv_run(&ll.loop, UV_RUN_DEFAULT);                /* finishes closing; runs no task */
    assert_int_equal(l.n, 0);
    assert_int_equal(uv_loop_close(&ll.loop), 0);
    inbox_destroy(&ll.ib);
    expect_order(&l, ORDER(1, 2, 3, 11, 12));
    assert_int_equal(p1.runs + p2.runs + p3.runs + d1.runs + d2.runs, 5);
    runlog_free(&l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_fifo_from_threads),
        cmocka_unit_test(test_post_bounded),
        cmocka_unit_test(test_defer_on_owner),
        cmocka_unit_test(test_defer_same_turn),
        cmocka_unit_test(test_defer_idle_runs_next_turn),
        cmocka_unit_test(test_defer_from_other_thread),
        cmocka_unit_test(test_defer_from_other_thread_wakes_loop),
        cmocka_unit_test(test_defer_while_running_deferred),
        cmocka_unit_test(test_run_all),
        cmocka_unit_test(test_destroy_runs_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
