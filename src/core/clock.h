/* clock: Plaza's one notion of "now" for everything above the network
 * layer: wall-clock unix time in milliseconds. Publication times, token
 * expiry (claims are unix seconds: compare against clock_now_ms() / 1000),
 * presence and history TTLs all read it. The network layer's deadlines run
 * on each loop's monotonic time instead (conn_now), which never jumps; the
 * two meet only where a wall-clock expiry becomes a loop deadline
 * (client_rearm). */
#ifndef PLAZA_CLOCK_H
#define PLAZA_CLOCK_H

#include <stdint.h>

/* Current unix time in ms (CLOCK_REALTIME). */
int64_t clock_now_ms(void);

/* Current unix time in whole seconds (token claims). */
static inline int64_t clock_now_s(void) { return clock_now_ms() / 1000; }

#endif
