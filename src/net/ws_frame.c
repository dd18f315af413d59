/* ws_frame: owns the RFC 6455 frame codec: the incremental frame parser
 * (header collection, frame and fragmentation rules, in-place unmasking,
 * delivery of message data and control frames), the frame header encoder
 * and the close code check.
 *
 * The parser is a two-state machine: HEADER collects the 2..14 header bytes
 * (straight from the caller's buffer when they are all there, else into
 * p->hdr), PAYLOAD hands the frame's payload over as it arrives. A frame
 * with an empty payload is completed as soon as its header is.
 *
 * Internal conventions (no extra struct fields are needed):
 *  - p->mask is all zeros for an unmasked frame, which makes unmasking a
 *    no-op that we skip with a single 32-bit test.
 *  - p->in_message is set from the first frame of a text/binary message
 *    until its final fragment has been delivered.
 *  - p->ctrl_buf exists only while a control frame's payload is split
 *    across reads; it is freed as soon as the frame is delivered. */
#include "net/ws_frame.h"

#include <stdlib.h>
#include <string.h>

enum { ST_HEADER = 0, ST_PAYLOAD = 1 };

/* ------------------------------------------------------------------------ */
/* Unmasking                                                                */
/* ------------------------------------------------------------------------ */

/* XORs n bytes at d with the 4-byte key, starting at key offset pos.
 * Returns the key offset for the byte after the last one. The bulk is done
 * 8 bytes at a time with the key rotated to the current offset and
 * replicated into a 64-bit word; memcpy keeps it free of aliasing and
 * alignment UB and compiles to plain loads and stores. */
static unsigned ws_unmask(uint8_t *d, size_t n, const uint8_t mask[4],
                          unsigned pos) {
    size_t i = 0;

    /* Byte by byte up to an 8-byte boundary, so the word loop below uses
     * aligned accesses on targets where that matters. */
    while (i < n && ((uintptr_t)(d + i) & 7) != 0) {
        d[i++] ^= mask[pos];
        pos = (pos + 1) & 3;
    }
    if (n - i >= 8) {
        uint8_t key[8];
        uint64_t k, w;
        for (unsigned j = 0; j < 8; j++) key[j] = mask[(pos + j) & 3];
        memcpy(&k, key, 8);
        for (; n - i >= 32; i += 32) {
            uint8_t *q = d + i;
            for (int j = 0; j < 32; j += 8) {
                memcpy(&w, q + j, 8);
                w ^= k;
                memcpy(q + j, &w, 8);
            }
        }
        for (; n - i >= 8; i += 8) {
            memcpy(&w, d + i, 8);
            w ^= k;
            memcpy(d + i, &w, 8);
        }
        /* Whole words leave pos unchanged (8 is a multiple of 4). */
    }
    while (i < n) {
        d[i++] ^= mask[pos];
        pos = (pos + 1) & 3;
    }
    return pos;
}

static int ws_has_mask(const ws_parser *p) {
    uint32_t m;
    memcpy(&m, p->mask, 4);
    return m != 0;
}

/* ------------------------------------------------------------------------ */
/* Parser helpers                                                           */
/* ------------------------------------------------------------------------ */

static int ws_fail(ws_parser *p, int code, const char *why) {
    p->failed = 1;
    p->error = why;
    return code;
}

/* An event handler asked to stop: record it and pass its code on. */
static int ws_stopped(ws_parser *p, int rc) {
    return ws_fail(p, rc, "stopped by event handler");
}

static int ws_is_control(unsigned opcode) {
    return (opcode & 0x8) != 0;
}

/* Header length announced by the second header byte. */
static size_t ws_header_size(uint8_t b1) {
    size_t n = 2 + ((b1 & 0x80) ? 4 : 0);
    unsigned len7 = b1 & 0x7f;
    if (len7 == 126) n += 2;
    else if (len7 == 127) n += 8;
    return n;
}

/* Rules that the first two header bytes alone decide. */
static int ws_check_start(ws_parser *p, uint8_t b0, uint8_t b1) {
    unsigned op = b0 & 0x0f;
    int rsv1 = (b0 & 0x40) != 0;

    if (p->require_mask && !(b1 & 0x80))
        return ws_fail(p, WS_CLOSE_PROTOCOL, "unmasked client frame");
    if (b0 & 0x30)
        return ws_fail(p, WS_CLOSE_PROTOCOL, "RSV2/RSV3 set");
    if (rsv1 && !p->allow_rsv1)
        return ws_fail(p, WS_CLOSE_PROTOCOL, "RSV1 set without extension");

    switch (op) {
    case WS_OP_CONT:
        if (rsv1) return ws_fail(p, WS_CLOSE_PROTOCOL, "RSV1 on continuation");
        if (!p->in_message)
            return ws_fail(p, WS_CLOSE_PROTOCOL, "continuation without message");
        return 0;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (p->in_message)
            return ws_fail(p, WS_CLOSE_PROTOCOL, "new message inside fragmented one");
        return 0;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (rsv1) return ws_fail(p, WS_CLOSE_PROTOCOL, "RSV1 on control frame");
        if (!(b0 & 0x80))
            return ws_fail(p, WS_CLOSE_PROTOCOL, "fragmented control frame");
        return 0;
    default:
        return ws_fail(p, WS_CLOSE_PROTOCOL, "unknown opcode");
    }
}

static uint64_t ws_read_be(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | b[i];
    return v;
}

/* Delivers a complete control frame and drops the collection buffer. */
static int ws_deliver_control(ws_parser *p, const uint8_t *payload, size_t len,
                              const ws_parser_events *ev, void *ud) {
    int rc = ev->on_control ? ev->on_control(ud, p->opcode, payload, len) : 0;
    free(p->ctrl_buf);
    p->ctrl_buf = NULL;
    p->ctrl_len = 0;
    return rc ? ws_stopped(p, rc) : 0;
}

/* The current data frame's payload is complete. */
static int ws_end_data_frame(ws_parser *p, const ws_parser_events *ev,
                             void *ud) {
    int rc;
    if (!p->fin) return 0;
    p->in_message = 0;
    p->message_bytes = 0;
    rc = ev->on_message_end ? ev->on_message_end(ud) : 0;
    return rc ? ws_stopped(p, rc) : 0;
}

/* Acts on a complete header at h (ws_check_start already passed): checks
 * the length rules, records the frame, fires on_message_begin and, for an
 * empty payload, completes the frame at once. */
static int ws_begin_frame(ws_parser *p, const uint8_t *h,
                          const ws_parser_events *ev, void *ud) {
    uint8_t b0 = h[0], b1 = h[1];
    unsigned op = b0 & 0x0f, len7 = b1 & 0x7f;
    size_t pos = 2;
    uint64_t len = len7;
    int rc;

    if (len7 == 126) {
        len = ws_read_be(h + 2, 2);
        pos = 4;
    } else if (len7 == 127) {
        len = ws_read_be(h + 2, 8);
        pos = 10;
        if (len >> 63)
            return ws_fail(p, WS_CLOSE_PROTOCOL, "64-bit length with top bit set");
    }

    if (ws_is_control(op)) {
        if (len > WS_MAX_CONTROL)
            return ws_fail(p, WS_CLOSE_PROTOCOL, "control frame too long");
    } else {
        uint64_t max = p->max_message;   /* widened: the slack below */
        if (op != WS_OP_CONT) {
            p->message_bytes = 0;
            p->msg_compressed = (b0 & 0x40) != 0;
        }
        /* A compressed message is limited after inflation by the caller;
         * on the wire allow for incompressible data growing a little. */
        if (max && p->msg_compressed) max += max / 8 + 64;
        /* message_bytes <= max holds, so this cannot wrap. */
        if (max && len > max - p->message_bytes)
            return ws_fail(p, WS_CLOSE_TOO_BIG, "message too big");
        p->message_bytes += len;
    }

    if (b1 & 0x80) memcpy(p->mask, h + pos, 4);
    else memset(p->mask, 0, 4);
    p->mask_pos = 0;
    p->frames++;
    p->opcode = (uint8_t)op;
    p->fin = (b0 & 0x80) != 0;
    p->remaining = len;
    p->ctrl_len = 0;
    p->hdr_len = 0;
    p->state = len ? ST_PAYLOAD : ST_HEADER;

    if (op == WS_OP_TEXT || op == WS_OP_BINARY) {
        p->in_message = 1;
        rc = ev->on_message_begin
                 ? ev->on_message_begin(ud, (int)op, (b0 & 0x40) != 0) : 0;
        if (rc) return ws_stopped(p, rc);
    }
    if (len) return 0;
    if (ws_is_control(op)) return ws_deliver_control(p, h, 0, ev, ud);
    return ws_end_data_frame(p, ev, ud);
}

/* HEADER state: consumes header bytes from d (n > 0) and sets *used. */
static int ws_read_header(ws_parser *p, const uint8_t *d, size_t n,
                          size_t *used, const ws_parser_events *ev, void *ud) {
    size_t need, take;
    int rc;

    /* Fast path: the whole header is in the buffer, parse it in place. */
    if (p->hdr_len == 0 && n >= 2 && n >= ws_header_size(d[1])) {
        *used = ws_header_size(d[1]);
        if ((rc = ws_check_start(p, d[0], d[1])) != 0) return rc;
        return ws_begin_frame(p, d, ev, ud);
    }

    /* Slow path: collect into p->hdr. */
    take = 0;
    if (p->hdr_len < 2) {
        take = 2 - p->hdr_len;
        if (take > n) take = n;
        memcpy(p->hdr + p->hdr_len, d, take);
        p->hdr_len += (uint8_t)take;
        if (p->hdr_len < 2) {
            *used = take;
            return 0;
        }
        if ((rc = ws_check_start(p, p->hdr[0], p->hdr[1])) != 0) {
            *used = take;
            return rc;
        }
    }
    need = ws_header_size(p->hdr[1]) - p->hdr_len;
    if (need > n - take) need = n - take;
    memcpy(p->hdr + p->hdr_len, d + take, need);
    p->hdr_len += (uint8_t)need;
    *used = take + need;
    if (p->hdr_len < ws_header_size(p->hdr[1])) return 0;
    return ws_begin_frame(p, p->hdr, ev, ud);
}

/* PAYLOAD state, control frame: deliver in place when the whole payload is
 * here, else collect it in the lazily allocated p->ctrl_buf. */
static int ws_read_control(ws_parser *p, uint8_t *d, size_t n,
                           const ws_parser_events *ev, void *ud) {
    if (ws_has_mask(p))
        p->mask_pos = (uint8_t)ws_unmask(d, n, p->mask, p->mask_pos);
    p->remaining -= n;
    if (p->remaining == 0) p->state = ST_HEADER;

    if (p->ctrl_len == 0 && p->remaining == 0)
        return ws_deliver_control(p, d, n, ev, ud);

    if (!p->ctrl_buf && !(p->ctrl_buf = malloc(WS_MAX_CONTROL)))
        return ws_fail(p, WS_CLOSE_INTERNAL, "out of memory");
    memcpy(p->ctrl_buf + p->ctrl_len, d, n);
    p->ctrl_len += (uint8_t)n;
    if (p->remaining) return 0;
    return ws_deliver_control(p, p->ctrl_buf, p->ctrl_len, ev, ud);
}

/* PAYLOAD state, data frame: one on_message_data call per chunk. */
static int ws_read_data(ws_parser *p, uint8_t *d, size_t n,
                        const ws_parser_events *ev, void *ud) {
    int rc;
    if (ws_has_mask(p))
        p->mask_pos = (uint8_t)ws_unmask(d, n, p->mask, p->mask_pos);
    p->remaining -= n;
    if (p->remaining == 0) p->state = ST_HEADER;

    rc = ev->on_message_data ? ev->on_message_data(ud, d, n) : 0;
    if (rc) return ws_stopped(p, rc);
    return p->remaining ? 0 : ws_end_data_frame(p, ev, ud);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

void ws_parser_init(ws_parser *p, int require_mask, int allow_rsv1,
                    uint32_t max_message) {
    memset(p, 0, sizeof(*p));
    p->require_mask = require_mask != 0;
    p->allow_rsv1 = allow_rsv1 != 0;
    p->max_message = max_message;
    p->state = ST_HEADER;
}

void ws_parser_free(ws_parser *p) {
    free(p->ctrl_buf);
    p->ctrl_buf = NULL;
    p->ctrl_len = 0;
}

int ws_parser_feed(ws_parser *p, uint8_t *data, size_t len,
                   const ws_parser_events *ev, void *ud) {
    size_t off = 0;

    if (p->failed) return WS_CLOSE_PROTOCOL;   /* misuse: fed after failure */
    while (off < len) {
        size_t avail = len - off, used;
        int rc;

        if (p->state == ST_HEADER) {
            rc = ws_read_header(p, data + off, avail, &used, ev, ud);
        } else {
            used = p->remaining < avail ? (size_t)p->remaining : avail;
            rc = ws_is_control(p->opcode)
                     ? ws_read_control(p, data + off, used, ev, ud)
                     : ws_read_data(p, data + off, used, ev, ud);
        }
        if (rc) return rc;
        off += used;
    }
    return 0;
}

size_t ws_frame_header(uint8_t *out, int opcode, int fin, int rsv1,
                       uint64_t payload_len, const uint8_t *mask) {
    uint8_t mbit = mask ? 0x80 : 0;
    size_t n;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    if (payload_len < 126) {
        out[1] = (uint8_t)(mbit | payload_len);
        n = 2;
    } else if (payload_len <= 0xffff) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

int ws_close_code_valid(unsigned code) {
    if (code >= 1000 && code <= 1003) return 1;
    if (code >= 1007 && code <= 1014) return 1;
    return code >= 3000 && code <= 4999;
}
