/* rcbuf: an immutable, reference-counted byte buffer, shared by any number
 * of owners on any thread; the last release frees it. An outgoing frame is
 * encoded once into an rcbuf and queued on every connection that receives
 * it; the engine keeps publication payloads in them. */
#ifndef PLAZA_RCBUF_H
#define PLAZA_RCBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rcbuf {
    atomic_uint refs;
    uint32_t len;
    uint8_t data[];
} rcbuf;

/* A buffer of len bytes with one reference; NULL if out of memory. */
rcbuf *rcbuf_new(size_t len);

/* A new buffer holding a copy of data. */
rcbuf *rcbuf_copy(const void *data, size_t len);

static inline rcbuf *rcbuf_ref(rcbuf *b) {
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void rcbuf_unref(rcbuf *b);

#endif
