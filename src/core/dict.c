/* dict: chained hash map from byte-string keys (copied) to void * values,
 * with SipHash-1-3 under a per-process random key (see dict.h). This file
 * owns the hash key: 128 random bits drawn once per process. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "core/dict.h"

#define DICT_MIN_BUCKETS 4

struct dict_entry {
    dict_entry *next;
    void *val;
    uint32_t hash;                 /* low 32 bits of dict_hash(key) */
    uint32_t len;                  /* key length, without the NUL */
    char key[];                    /* NUL-terminated copy */
};

struct dict {
    dict_entry **table;            /* NULL until the first insert */
    size_t mask;                   /* buckets - 1 (when table != NULL) */
    size_t size;
};

/* ---------------------------------------------------------------- hashing */

static uint64_t sip_k0, sip_k1;
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void sip_seed(void) {
    uint64_t k[2];
    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
        /* No kernel randomness: still vary per process. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
        k[1] = (uint64_t)(uintptr_t)&ts ^ ((uint64_t)ts.tv_nsec << 32);
    }
    sip_k0 = k[0];
    sip_k1 = k[1];
}

static inline uint64_t load64le(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                            \
    do {                                                                    \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);           \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                              \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                              \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);           \
    } while (0)

/* SipHash-1-3: one compression round, three finalization rounds (the
 * variant Redis and Rust's std use for hash tables). */
static uint64_t siphash13(const uint8_t *in, size_t len, uint64_t k0, uint64_t k1) {
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56;
    const uint8_t *end = in + (len & ~(size_t)7);

    for (; in != end; in += 8) {
        uint64_t m = load64le(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++) b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t dict_hash(const void *key, size_t len) {
    pthread_once(&sip_once, sip_seed);
    return siphash13(key, len, sip_k0, sip_k1);
}

/* ------------------------------------------------------------ the table */

dict *dict_new(void) { return calloc(1, sizeof(dict)); }

size_t dict_size(const dict *d) { return d->size; }

static size_t buckets(const dict *d) { return d->table ? d->mask + 1 : 0; }

/* Relinks every entry into a table of n buckets (n a power of two, or 0 to
 * drop the table of an empty dict). -1 if out of memory (nothing changed). */
static int dict_resize(dict *d, size_t n) {
    dict_entry **nt = NULL;
    if (n && !(nt = calloc(n, sizeof(*nt)))) return -1;
    for (size_t i = 0; i < buckets(d); i++) {
        dict_entry *e = d->table[i];
        while (e) {
            dict_entry *next = e->next;
            e->next = nt[e->hash & (n - 1)];
            nt[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(d->table);
    d->table = nt;
    d->mask = n ? n - 1 : 0;
    return 0;
}

/* The link that points to key's entry, or NULL when absent. */
static dict_entry **dict_link(const dict *d, const char *key, size_t len, uint32_t h) {
    if (!d->table) return NULL;
    dict_entry **link = &d->table[h & d->mask];
    for (; *link; link = &(*link)->next) {
        const dict_entry *e = *link;
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return link;
    }
    return NULL;
}

void *dict_getn(const dict *d, const char *key, size_t len) {
    if (!d->size) return NULL;
    dict_entry **link = dict_link(d, key, len, (uint32_t)dict_hash(key, len));
    return link ? (*link)->val : NULL;
}

void *dict_get(const dict *d, const char *key) { return dict_getn(d, key, strlen(key)); }

void **dict_find(const dict *d, const char *key, size_t len) {
    if (!d->size) return NULL;
    dict_entry **link = dict_link(d, key, len, (uint32_t)dict_hash(key, len));
    return link ? &(*link)->val : NULL;
}

/* Sizes the table for one more entry: doubles at load 1, shrinks to a load
 * of about 1/2 when under 1/8 (deletes leave that to the next insert). A
 * failed resize only changes the load, except for the very first table. */
static int dict_make_room(dict *d) {
    size_t n = buckets(d), want = DICT_MIN_BUCKETS;
    if (n == 0) return dict_resize(d, DICT_MIN_BUCKETS);
    if (d->size >= n) {
        dict_resize(d, n * 2);
    } else if (n > DICT_MIN_BUCKETS && d->size < n / 8) {
        while (want < 2 * (d->size + 1)) want *= 2;
        dict_resize(d, want);
    }
    return 0;
}

void **dict_slot(dict *d, const char *key, size_t len, int *added) {
    uint32_t h = (uint32_t)dict_hash(key, len);
    dict_entry **link = dict_link(d, key, len, h);
    if (added) *added = 0;
    if (link) return &(*link)->val;
    if (len >= UINT32_MAX || dict_make_room(d)) return NULL;
    dict_entry *e = malloc(sizeof(*e) + len + 1);
    if (!e) return NULL;
    e->val = NULL;
    e->hash = h;
    e->len = (uint32_t)len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->next = d->table[h & d->mask];
    d->table[h & d->mask] = e;
    d->size++;
    if (added) *added = 1;
    return &e->val;
}

int dict_setn(dict *d, const char *key, size_t len, void *val) {
    int added;
    void **slot = dict_slot(d, key, len, &added);
    if (!slot) return -1;
    *slot = val;
    return added;
}

int dict_set(dict *d, const char *key, void *val) {
    return dict_setn(d, key, strlen(key), val);
}

int dict_deln(dict *d, const char *key, size_t len, void **val) {
    if (!d->size) return 0;
    dict_entry **link = dict_link(d, key, len, (uint32_t)dict_hash(key, len));
    if (!link) return 0;
    dict_entry *e = *link;
    *link = e->next;
    if (val) *val = e->val;
    free(e);
    /* Dropping the table of an empty dict is safe even mid-iteration: no
     * entry is left to visit. */
    if (--d->size == 0) dict_resize(d, 0);
    return 1;
}

int dict_del(dict *d, const char *key, void **val) {
    return dict_deln(d, key, strlen(key), val);
}

void dict_free(dict *d, void (*val_free)(void *val)) {
    if (!d) return;
    for (size_t i = 0; i < buckets(d); i++) {
        dict_entry *e = d->table[i];
        while (e) {
            dict_entry *next = e->next;
            if (val_free) val_free(e->val);
            free(e);
            e = next;
        }
    }
    free(d->table);
    free(d);
}

/* -------------------------------------------------------------- iteration */

/* Moves it->next to the first entry at or after it->bucket, if none is
 * pending. */
static void iter_fill(dict_iter *it) {
    const dict *d = it->d;
    while (!it->next && it->bucket < buckets(d)) it->next = d->table[it->bucket++];
}

void dict_iter_init(dict_iter *it, const dict *d) {
    it->d = d;
    it->bucket = 0;
    it->next = NULL;
    iter_fill(it);
}

int dict_next(dict_iter *it, const char **key, void **val) {
    dict_entry *e = it->next;
    if (!e) return 0;
    /* Step past e now, so that the caller may delete it. */
    it->next = e->next;
    iter_fill(it);
    if (key) *key = e->key;
    if (val) *val = e->val;
    return 1;
}
