/* timer_wheel: hashed timing wheel for per-connection deadlines (see
 * timer_wheel.h). */
#include <stddef.h>
#include "net/timer_wheel.h"

void wheel_init(timer_wheel *w, uint64_t now_ms) {
    for (int i = 0; i < WHEEL_SLOTS; i++)
        w->slots[i].prev = w->slots[i].next = &w->slots[i];
    w->tick = now_ms / WHEEL_TICK_MS;
}

void wheel_cancel(wheel_node *n) {
    if (!n->next) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

void wheel_schedule(timer_wheel *w, wheel_node *n, uint64_t due_ms) {
    wheel_cancel(n);
    uint64_t t = (due_ms + WHEEL_TICK_MS - 1) / WHEEL_TICK_MS;
    if (t < w->tick) t = w->tick;
    if (t >= w->tick + WHEEL_SLOTS) t = w->tick + WHEEL_SLOTS - 1;
    wheel_node *head = &w->slots[t % WHEEL_SLOTS];
    n->due_ms = due_ms;
    n->next = head;
    n->prev = head->prev;
    head->prev->next = n;
    head->prev = n;
}

/* Processes one slot: fires what is due, re-files what is not. The slot is
 * first detached so fire callbacks may schedule into it safely. */
static void wheel_run_slot(timer_wheel *w, uint64_t now_ms,
                           wheel_node *head, wheel_fire_fn fire, void *ud) {
    wheel_node pending;
    if (head->next == head) return;
    pending.next = head->next;
    pending.prev = head->prev;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    head->prev = head->next = head;
    while (pending.next != &pending) {
        wheel_node *n = pending.next;
        wheel_cancel(n);
        if (n->due_ms <= now_ms) fire(n, ud);
        else wheel_schedule(w, n, n->due_ms);
    }
}

void wheel_advance(timer_wheel *w, uint64_t now_ms, wheel_fire_fn fire,
                   void *ud) {
    uint64_t target = now_ms / WHEEL_TICK_MS;
    uint64_t steps = 0;
    while (w->tick <= target && steps++ < WHEEL_SLOTS) {
        wheel_node *head = &w->slots[w->tick % WHEEL_SLOTS];
        w->tick++;
        wheel_run_slot(w, now_ms, head, fire, ud);
    }
    if (w->tick <= target) w->tick = target + 1;
}
