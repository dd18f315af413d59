/* netbuf: reference-counted immutable buffers shared across connections and
 * worker threads (see netbuf.h). */
#include <stdlib.h>
#include <string.h>
#include "net/netbuf.h"

netbuf *netbuf_new(size_t len) {
    if (len > UINT32_MAX) return NULL;
    netbuf *b = malloc(sizeof(*b) + len);
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)len;
    return b;
}

netbuf *netbuf_copy(const void *data, size_t len) {
    netbuf *b = netbuf_new(len);
    if (b && len) memcpy(b->data, data, len);
    return b;
}

void netbuf_unref(netbuf *b) {
    if (!b) return;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}
