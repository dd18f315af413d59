/* ws_msg: an outgoing WebSocket message encoded once for any number of
 * receivers. It holds the complete frame (header + payload) as a shared
 * rcbuf and, built on first need by a connection that negotiated
 * permessage-deflate, the compressed frame too (also shared: Plaza
 * compresses without context takeover, so the bytes are the same for
 * everyone). Safe to use from every worker thread. */
#ifndef PLAZA_WS_MSG_H
#define PLAZA_WS_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "core/rcbuf.h"

typedef struct ws_msg {
    atomic_uint refs;
    uint8_t opcode;
    uint8_t hdr_len;                 /* header bytes at the start of plain */
    rcbuf *plain;                   /* the uncompressed frame */
    _Atomic(rcbuf *) deflated;      /* compressed frame, or plain if not smaller */
} ws_msg;

/* A text/binary/control message of len payload bytes (copied). */
ws_msg *ws_msg_new(int opcode, const void *payload, size_t len);

ws_msg *ws_msg_ref(ws_msg *m);
void ws_msg_unref(ws_msg *m);

static inline size_t ws_msg_payload_len(const ws_msg *m) {
    return m->plain->len - m->hdr_len;
}

/* The frame to send to a connection with permessage-deflate: compressed
 * once at the given level, shared afterwards. Returns a new reference. */
rcbuf *ws_msg_deflated(ws_msg *m, int level);

#endif
