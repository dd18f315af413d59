/* hist.c: a log-linear histogram in the manner of HdrHistogram.
 *
 * Values below 128 have a bucket each. Above, every power of two is cut in
 * 64 equal buckets, so a bucket is at most 1/64 (1.6%) of its value wide.
 * With 40 powers of two above 2^7, nanosecond values up to 2^47 (39 hours)
 * fit; larger ones land in the last bucket. Quantiles report a bucket's
 * highest value (never above the exact maximum). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "loadgen.h"

static int bucket_of(uint64_t v) {
    if (v < 128) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (HIST_SUB_BITS - 1);
    int i = 128 + (shift - 1) * 64 + (int)((v >> shift) - 64);
    return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

static uint64_t bucket_high(int i) {
    if (i < 128) return (uint64_t)i;
    int shift = (i - 128) / 64 + 1;
    uint64_t part = (uint64_t)((i - 128) % 64) + 64;
    return ((part + 1) << shift) - 1;
}

void hist_reset(hist *h) { memset(h, 0, sizeof(*h)); }

void hist_add(hist *h, uint64_t v) {
    h->b[bucket_of(v)]++;
    if (h->count == 0 || v < h->min) h->min = v;
    if (v > h->max) h->max = v;
    h->count++;
    h->sum += v;
}

void hist_merge(hist *into, const hist *from) {
    if (!from->count) return;
    if (into->count == 0 || from->min < into->min) into->min = from->min;
    if (from->max > into->max) into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
    for (int i = 0; i < HIST_BUCKETS; i++) into->b[i] += from->b[i];
}

uint64_t hist_quantile(const hist *h, double q) {
    if (!h->count) return 0;
    if (q >= 1.0) return h->max;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count), seen = 0;   /* 1-based */
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            return v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
    return h->max;
}

void hist_encode(const hist *h, lgbuf *out) {
    buf_printf(out, "%llu,%llu,%llu,%llu;", (unsigned long long)h->count,
               (unsigned long long)h->max, (unsigned long long)h->min,
               (unsigned long long)h->sum);
    int first = 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        if (!h->b[i]) continue;
        buf_printf(out, "%s%d:%llu", first ? "" : ",", i, (unsigned long long)h->b[i]);
        first = 0;
    }
}

int hist_decode(hist *h, const char *s) {
    hist part;
    hist_reset(&part);
    char *end;
    part.count = strtoull(s, &end, 10);
    if (*end++ != ',') return -1;
    part.max = strtoull(end, &end, 10);
    if (*end++ != ',') return -1;
    part.min = strtoull(end, &end, 10);
    if (*end++ != ',') return -1;
    part.sum = strtoull(end, &end, 10);
    if (*end++ != ';') return -1;
    while (*end >= '0' && *end <= '9') {
        long i = strtol(end, &end, 10);
        if (*end++ != ':' || i < 0 || i >= HIST_BUCKETS) return -1;
        part.b[i] = strtoull(end, &end, 10);
        if (*end == ',') end++;
    }
    hist_merge(h, &part);
    return 0;
}
