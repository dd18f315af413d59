/* netbuf: an immutable, reference-counted byte buffer. An outgoing frame is
 * encoded once into a netbuf and the same netbuf is queued on every
 * connection that must receive it, on any worker thread; the last release
 * frees it. */
#ifndef PLAZA_NETBUF_H
#define PLAZA_NETBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct netbuf {
    atomic_uint refs;
    uint32_t len;
    uint8_t data[];
} netbuf;

/* A buffer of len bytes with one reference; NULL if out of memory. */
netbuf *netbuf_new(size_t len);

/* A new buffer holding a copy of data. */
netbuf *netbuf_copy(const void *data, size_t len);

static inline netbuf *netbuf_ref(netbuf *b) {
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void netbuf_unref(netbuf *b);

#endif
