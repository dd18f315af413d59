/* ws_msg: encode-once outgoing messages (see ws_msg.h). */
#include <stdlib.h>
#include <string.h>
#include "net/ws_deflate.h"
#include "net/ws_frame.h"
#include "net/ws_msg.h"

ws_msg *ws_msg_new(int opcode, const void *payload, size_t len) {
    uint8_t hdr[WS_MAX_HEADER];
    size_t hl = ws_frame_header(hdr, opcode, 1, 0, len, NULL);
    ws_msg *m = malloc(sizeof(*m));
    if (!m) return NULL;
    m->plain = rcbuf_new(hl + len);
    if (!m->plain) { free(m); return NULL; }
    memcpy(m->plain->data, hdr, hl);
    if (len) memcpy(m->plain->data + hl, payload, len);
    atomic_init(&m->refs, 1);
    atomic_init(&m->deflated, NULL);
    m->opcode = (uint8_t)opcode;
    m->hdr_len = (uint8_t)hl;
    return m;
}

ws_msg *ws_msg_ref(ws_msg *m) {
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void ws_msg_unref(ws_msg *m) {
    if (!m) return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    rcbuf_unref(m->plain);
    rcbuf_unref(atomic_load(&m->deflated));
    free(m);
}

/* Builds the compressed frame; falls back to the plain one when
 * compression does not make it smaller. */
static rcbuf *build_deflated(ws_msg *m, int level) {
    size_t clen = 0, plen = ws_msg_payload_len(m);
    uint8_t *z = ws_deflate_message(m->plain->data + m->hdr_len, plen, level,
                                    WS_MAX_HEADER, &clen);
    if (!z || clen >= plen) { free(z); return rcbuf_ref(m->plain); }
    uint8_t hdr[WS_MAX_HEADER];
    size_t hl = ws_frame_header(hdr, m->opcode, 1, 1, clen, NULL);
    rcbuf *b = rcbuf_new(hl + clen);
    if (!b) { free(z); return rcbuf_ref(m->plain); }
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, z + WS_MAX_HEADER, clen);
    free(z);
    return b;
}

rcbuf *ws_msg_deflated(ws_msg *m, int level) {
    rcbuf *d = atomic_load_explicit(&m->deflated, memory_order_acquire);
    if (d) return rcbuf_ref(d);
    rcbuf *mine = build_deflated(m, level);
    rcbuf *expected = NULL;
    if (atomic_compare_exchange_strong(&m->deflated, &expected, mine))
        return rcbuf_ref(mine);
    rcbuf_unref(mine);   /* another thread won */
    return rcbuf_ref(expected);
}
