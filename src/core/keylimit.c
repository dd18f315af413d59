/* keylimit: token buckets by key (see keylimit.h). Tokens are doubles:
 * rates are small (a few per second) and exactness to a microtoken is not
 * needed; what matters is that a refused event takes nothing. */
#include <pthread.h>
#include <stdlib.h>
#include "core/dict.h"
#include "core/keylimit.h"

typedef struct bucket {
    double tokens;
    int64_t last_ms;
    double full_after_ms;     /* from last_ms, when the bucket is full again */
} bucket;

struct keylimit {
    pthread_mutex_t mu;
    dict *buckets;            /* key -> bucket */
    uint64_t takes;
};

keylimit *keylimit_new(void) {
    keylimit *kl = calloc(1, sizeof(*kl));
    if (!kl) return NULL;
    kl->buckets = dict_new();
    if (!kl->buckets) { free(kl); return NULL; }
    pthread_mutex_init(&kl->mu, NULL);
    return kl;
}

void keylimit_free(keylimit *kl) {
    if (!kl) return;
    dict_free(kl->buckets, free);
    pthread_mutex_destroy(&kl->mu);
    free(kl);
}

/* Forgets the buckets that are full again (as good as new). */
static void sweep(keylimit *kl, int64_t now_ms) {
    dict_iter it;
    dict_iter_init(&it, kl->buckets);
    const char *key;
    void *v;
    while (dict_next(&it, &key, &v)) {
        bucket *b = v;
        if ((double)(now_ms - b->last_ms) >= b->full_after_ms) {
            dict_del(kl->buckets, key, NULL);
            free(b);
        }
    }
}

int64_t keylimit_take(keylimit *kl, const char *key, double per_s, int burst, int64_t now_ms) {
    if (per_s <= 0) return 0;
    if (burst < 1) burst = 1;
    int64_t wait = 0;
    pthread_mutex_lock(&kl->mu);
    if (++kl->takes % KEYLIMIT_SWEEP_EVERY == 0) sweep(kl, now_ms);
    bucket *b = dict_get(kl->buckets, key);
    if (!b) {
        b = malloc(sizeof(*b));
        if (!b || dict_set(kl->buckets, key, b) < 0) { free(b); goto out; }
        b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * per_s / 1000.0;
        if (b->tokens > burst) b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) b->tokens -= 1.0;
    else wait = (int64_t)((1.0 - b->tokens) * 1000.0 / per_s) + 1;
    b->full_after_ms = ((double)burst - b->tokens) * 1000.0 / per_s;
out:
    pthread_mutex_unlock(&kl->mu);
    return wait;
}

uint64_t keylimit_size(keylimit *kl) {
    pthread_mutex_lock(&kl->mu);
    uint64_t n = dict_size(kl->buckets);
    pthread_mutex_unlock(&kl->mu);
    return n;
}
