/* ratelimit: a token bucket, e.g. for the commands of one connection. The
 * bucket holds up to burst tokens and refills at rate tokens per second;
 * each allowed event takes one. Time is given by the caller in milliseconds
 * (a monotonic clock), so the arithmetic is exact and testable: tokens are
 * counted in thousandths, and one millisecond refills exactly rate of them.
 * The rate and burst are passed to every call rather than stored, which
 * keeps the struct at 16 bytes; pass the same values each time. */
#ifndef PLAZA_RATELIMIT_H
#define PLAZA_RATELIMIT_H

#include <stdint.h>

typedef struct ratelimit {
    uint64_t milli;     /* tokens available, in thousandths of a token */
    uint64_t last_ms;   /* when milli was last brought up to date */
} ratelimit;

/* Starts a full bucket (burst tokens) at now_ms. rate_per_s is accepted
 * for symmetry with ratelimit_take and not used. burst < 1 counts as 1. */
void ratelimit_init(ratelimit *rl, int rate_per_s, int burst, uint64_t now_ms);

/* Takes one token: 1 if the event is allowed, 0 if refused (a refused
 * event takes nothing). rate_per_s <= 0 turns the limit off (always 1).
 * A clock that goes backwards refills nothing. */
int ratelimit_take(ratelimit *rl, int rate_per_s, int burst, uint64_t now_ms);

#endif
