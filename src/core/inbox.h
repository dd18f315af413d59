/* inbox: how other threads hand work to an event-loop thread. A task is a
 * node the caller embeds in its own struct (so posting never allocates and
 * never fails for lack of memory); the inbox runs task->run(task) on the
 * loop's thread.
 *
 * Two ways in:
 *   - inbox_post: one FIFO for every thread, the loop's own included. Use it
 *     for ordered streams (a channel's events): the order of posts is the
 *     order of runs. It takes a mutex and wakes the loop (uv_async_t).
 *     inbox_post_bounded refuses once `max` tasks are waiting, so a stalled
 *     loop cannot make memory grow without bound; the caller decides what a
 *     refusal means.
 *   - inbox_defer: for answers (engine results) that need no order with the
 *     FIFO. From the loop's own thread it goes on a private list, without a
 *     lock or a system call, run in the same loop turn (the worker calls
 *     inbox_run_deferred from its check phase, before it flushes sockets);
 *     from any other thread it is the same as inbox_post.
 *
 * Threads: inbox_init, inbox_set_owner, inbox_run_deferred and inbox_close
 * on the loop's thread (init before the loop runs); posts from anywhere. */
#ifndef PLAZA_INBOX_H
#define PLAZA_INBOX_H

#include <stdatomic.h>
#include <stddef.h>
#include <uv.h>

typedef struct task {
    struct task *next;
    void (*run)(struct task *t);
} task;

/* The struct that embeds a task: container_of for task nodes. */
#define TASK_OWNER(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

typedef struct inbox {
    uv_mutex_t lock;
    task *head, *tail;         /* FIFO, guarded by lock */
    size_t queued;             /* tasks in the FIFO */
    uv_async_t wakeup;
    uv_thread_t owner;         /* the loop's thread, once set */
    atomic_int has_owner;      /* set before any other thread posts */
    task *dhead, *dtail;       /* deferred, owner thread only */
    uv_idle_t idle;            /* keeps the loop turning while deferred wait */
    atomic_int closed;         /* handles closing: posts no longer wake */
} inbox;

int inbox_init(inbox *ib, uv_loop_t *loop);

/* Marks the calling thread as the loop's thread (call it from that thread
 * before the loop runs). */
void inbox_set_owner(inbox *ib);

void inbox_post(inbox *ib, task *t);

/* 1 if the calling thread is the loop's (debug assertions). */
int inbox_on_owner(const inbox *ib);

/* Returns -1 (t not queued) when max tasks wait already (tasks taken for
 * running no longer count, nor do they wait: a bound on what piles up
 * while the loop is busy, not on what is alive). */
int inbox_post_bounded(inbox *ib, task *t, size_t max);

void inbox_defer(inbox *ib, task *t);

/* Runs the deferred tasks, those they defer included. Owner thread. */
void inbox_run_deferred(inbox *ib);

/* Runs everything queued now (FIFO, then deferred). Owner thread, or any
 * thread once the loop has stopped for good. */
void inbox_run_all(inbox *ib);

/* Tasks waiting in the FIFO (a snapshot, for metrics). */
size_t inbox_queued(inbox *ib);

/* Closes the handles (the loop must run once more to finish closing). */
void inbox_close(inbox *ib);

/* After the loop is closed: frees the mutex. Tasks still queued are run
 * first (they own references that must be released). */
void inbox_destroy(inbox *ib);

#endif
