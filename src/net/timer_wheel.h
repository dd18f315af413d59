/* timer_wheel: coarse per-worker deadlines for many connections (read
 * timeouts, pings, pong and close deadlines) without one libuv timer each.
 * A hashed wheel of slots; scheduling and cancelling are O(1). Deadlines past
 * the wheel's span simply wait in a slot and are re-filed when it comes up.
 * Owners keep activity timestamps themselves and re-arm lazily when a
 * deadline fires, so activity costs nothing here. */
#ifndef PLAZA_TIMER_WHEEL_H
#define PLAZA_TIMER_WHEEL_H

#include <stdint.h>

#define WHEEL_SLOTS 1024
#define WHEEL_TICK_MS 50

typedef struct wheel_node {
    struct wheel_node *prev, *next;  /* NULL when not scheduled */
    uint64_t due_ms;
} wheel_node;

typedef struct timer_wheel {
    wheel_node slots[WHEEL_SLOTS];   /* list heads (sentinels) */
    uint64_t tick;                   /* next tick to process */
} timer_wheel;

typedef void (*wheel_fire_fn)(wheel_node *n, void *ud);

void wheel_init(timer_wheel *w, uint64_t now_ms);
void wheel_schedule(timer_wheel *w, wheel_node *n, uint64_t due_ms);
void wheel_cancel(wheel_node *n);
static inline int wheel_scheduled(const wheel_node *n) { return n->next != 0; }

/* Fires every node whose deadline is <= now_ms (unscheduling it first). */
void wheel_advance(timer_wheel *w, uint64_t now_ms, wheel_fire_fn fire,
                   void *ud);

#endif
