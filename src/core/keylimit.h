/* keylimit: token buckets by key, shared by every worker of a process: the
 * per-user limits that span connections (a user's publications in a
 * namespace, an auction's bids). A bucket holds up to burst tokens and
 * refills at per_s tokens per second; an allowed event takes one.
 *
 * Buckets that would be full again are forgotten (a sweep every
 * KEYLIMIT_SWEEP_EVERY takes), so memory follows the users active in the
 * last burst / per_s seconds, not every user ever seen. One mutex guards
 * the table: a take is a hash lookup and a few operations under it.
 *
 * Per process: several nodes each limit on their own (a user spread over
 * n nodes gets up to n times the rate). */
#ifndef PLAZA_KEYLIMIT_H
#define PLAZA_KEYLIMIT_H

#include <stdint.h>

#define KEYLIMIT_SWEEP_EVERY 4096

typedef struct keylimit keylimit;

/* An empty table; NULL if out of memory. */
keylimit *keylimit_new(void);
void keylimit_free(keylimit *kl);

/* Takes a token of key's bucket: 0 if allowed, else how many ms until a
 * token is there (nothing taken). per_s <= 0 allows everything; burst < 1
 * counts as 1. Out of memory allows the event (a limit is not a reason to
 * refuse service). Time is the caller's, in ms (a clock that goes back
 * refills nothing). */
int64_t keylimit_take(keylimit *kl, const char *key, double per_s, int burst, int64_t now_ms);

/* Buckets held (for tests and metrics). */
uint64_t keylimit_size(keylimit *kl);

#endif
