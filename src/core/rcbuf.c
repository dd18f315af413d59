/* rcbuf: reference-counted immutable buffers shared across connections and
 * worker threads (see rcbuf.h). */
#include <stdlib.h>
#include <string.h>
#include "core/rcbuf.h"

rcbuf *rcbuf_new(size_t len) {
    if (len > UINT32_MAX) return NULL;
    rcbuf *b = malloc(sizeof(*b) + len);
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)len;
    return b;
}

rcbuf *rcbuf_copy(const void *data, size_t len) {
    rcbuf *b = rcbuf_new(len);
    if (b && len) memcpy(b->data, data, len);
    return b;
}

void rcbuf_unref(rcbuf *b) {
    if (!b) return;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}
