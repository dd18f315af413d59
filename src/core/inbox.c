/* inbox: tasks handed to a loop thread (see inbox.h). */
#include "core/inbox.h"

static task *take_fifo(inbox *ib) {
    uv_mutex_lock(&ib->lock);
    task *t = ib->head;
    ib->head = ib->tail = NULL;
    ib->queued = 0;
    uv_mutex_unlock(&ib->lock);
    return t;
}

static void run_list(task *t) {
    while (t) {
        task *next = t->next;
        t->next = NULL;
        t->run(t);
        t = next;
    }
}

static void on_wakeup(uv_async_t *a) { run_list(take_fifo(a->data)); }

static void on_idle(uv_idle_t *h) { inbox_run_deferred(h->data); }

int inbox_init(inbox *ib, uv_loop_t *loop) {
    ib->head = ib->tail = ib->dhead = ib->dtail = NULL;
    ib->queued = 0;
    atomic_init(&ib->has_owner, 0);
    atomic_init(&ib->closed, 0);
    int rc = uv_mutex_init(&ib->lock);
    if (rc) return rc;
    if ((rc = uv_async_init(loop, &ib->wakeup, on_wakeup)) != 0) {
        uv_mutex_destroy(&ib->lock);
        return rc;
    }
    ib->wakeup.data = ib;
    uv_idle_init(loop, &ib->idle);
    ib->idle.data = ib;
    return 0;
}

void inbox_set_owner(inbox *ib) {
    ib->owner = uv_thread_self();
    atomic_store(&ib->has_owner, 1);
}

int inbox_on_owner(const inbox *ib) {
    uv_thread_t self = uv_thread_self();
    return atomic_load(&ib->has_owner) && uv_thread_equal(&ib->owner, &self);
}

static void enqueue(inbox *ib, task *t) {
    t->next = NULL;
    if (ib->tail) ib->tail->next = t;
    else ib->head = t;
    ib->tail = t;
    ib->queued++;
}

/* The wakeup is sent under the lock, so it never races inbox_close. */
void inbox_post(inbox *ib, task *t) {
    uv_mutex_lock(&ib->lock);
    enqueue(ib, t);
    if (!atomic_load(&ib->closed)) uv_async_send(&ib->wakeup);
    uv_mutex_unlock(&ib->lock);
}

int inbox_post_bounded(inbox *ib, task *t, size_t max) {
    uv_mutex_lock(&ib->lock);
    int full = ib->queued >= max;
    if (!full) {
        enqueue(ib, t);
        if (!atomic_load(&ib->closed)) uv_async_send(&ib->wakeup);
    }
    uv_mutex_unlock(&ib->lock);
    return full ? -1 : 0;
}

void inbox_defer(inbox *ib, task *t) {
    if (!inbox_on_owner(ib)) { inbox_post(ib, t); return; }
    t->next = NULL;
    if (ib->dtail) ib->dtail->next = t;
    else ib->dhead = t;
    ib->dtail = t;
    /* A task deferred after this turn's check phase (from a close callback)
     * must not wait for the next I/O event: an active idle handle makes the
     * loop poll without blocking. */
    if (!atomic_load(&ib->closed) && !uv_is_active((uv_handle_t *)&ib->idle))
        uv_idle_start(&ib->idle, on_idle);
}

void inbox_run_deferred(inbox *ib) {
    while (ib->dhead) {
        task *t = ib->dhead;
        ib->dhead = ib->dtail = NULL;
        run_list(t);
    }
    if (uv_is_active((uv_handle_t *)&ib->idle)) uv_idle_stop(&ib->idle);
}

void inbox_run_all(inbox *ib) {
    for (;;) {
        task *t = take_fifo(ib);
        if (!t && !ib->dhead) return;
        run_list(t);
        inbox_run_deferred(ib);
    }
}

size_t inbox_queued(inbox *ib) {
    uv_mutex_lock(&ib->lock);
    size_t n = ib->queued;
    uv_mutex_unlock(&ib->lock);
    return n;
}

void inbox_close(inbox *ib) {
    uv_mutex_lock(&ib->lock);
    atomic_store(&ib->closed, 1);
    uv_mutex_unlock(&ib->lock);
    if (!uv_is_closing((uv_handle_t *)&ib->wakeup)) uv_close((uv_handle_t *)&ib->wakeup, NULL);
    if (!uv_is_closing((uv_handle_t *)&ib->idle)) uv_close((uv_handle_t *)&ib->idle, NULL);
}

void inbox_destroy(inbox *ib) {
    atomic_store(&ib->has_owner, 0);   /* deferred from here on go to the FIFO */
    inbox_run_all(ib);
    uv_mutex_destroy(&ib->lock);
}
