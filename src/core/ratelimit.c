/* ratelimit: token bucket in fixed point (thousandths of a token); see
 * ratelimit.h. */
#include "core/ratelimit.h"

#define MILLI 1000u

static uint64_t capacity(int burst) {
    return (uint64_t)(burst < 1 ? 1 : burst) * MILLI;
}

void ratelimit_init(ratelimit *rl, int rate_per_s, int burst, uint64_t now_ms) {
    (void)rate_per_s;
    rl->milli = capacity(burst);
    rl->last_ms = now_ms;
}

/* Adds what the time since last_ms earned: rate_per_s thousandths per ms. */
static void refill(ratelimit *rl, uint64_t rate, uint64_t cap, uint64_t now_ms) {
    if (now_ms <= rl->last_ms) return;
    uint64_t elapsed = now_ms - rl->last_ms;
    rl->last_ms = now_ms;
    if (rl->milli >= cap) {
        rl->milli = cap;
        return;
    }
    uint64_t room = cap - rl->milli;
    /* elapsed <= room / rate keeps elapsed * rate <= room: no overflow */
    rl->milli = elapsed > room / rate ? cap : rl->milli + elapsed * rate;
}

int ratelimit_take(ratelimit *rl, int rate_per_s, int burst, uint64_t now_ms) {
    if (rate_per_s <= 0) return 1;
    refill(rl, (uint64_t)rate_per_s, capacity(burst), now_ms);
    if (rl->milli < MILLI) return 0;
    rl->milli -= MILLI;
    return 1;
}
