/* ws_frame: the WebSocket frame codec of RFC 6455 section 5.
 *
 * The parser is incremental: it is fed whatever bytes a read produced (one
 * byte, or many frames at once) and keeps only a few dozen bytes of state
 * between calls, so an idle connection holds no buffer. It unmasks payload
 * in place and enforces every frame-level and fragmentation rule, reporting
 * a violation as the close code to send (1002, 1009).
 *
 * We own this codec instead of using wslay because the write path encodes a
 * frame once and queues the same bytes on many connections, and the read path
 * unmasks straight into the loop's shared read buffer; wslay's per-context
 * queue and callbacks allow neither. */
#ifndef PLAZA_WS_FRAME_H
#define PLAZA_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes used by the net layer (RFC 6455 section 7.4.1). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005,   /* never sent on the wire */
    WS_CLOSE_ABNORMAL = 1006,    /* never sent on the wire */
    WS_CLOSE_BAD_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

#define WS_MAX_HEADER 14      /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MAX_CONTROL 125

/* Events delivered while parsing. Each returns 0 to go on, or a close code
 * (>= 1000) to stop: ws_parser_feed then returns that code. Data pointers
 * point into the buffer given to ws_parser_feed (already unmasked) or, for a
 * control frame split across reads, into the parser's own small buffer; they
 * are valid only during the call. */
typedef struct ws_parser_events {
    /* A text or binary message starts. compressed = RSV1 of its first frame. */
    int (*on_message_begin)(void *ud, int opcode, int compressed);
    /* Payload bytes of the current message (any split, possibly len 0). */
    int (*on_message_data)(void *ud, const uint8_t *data, size_t len);
    /* The final fragment of the current message is complete. */
    int (*on_message_end)(void *ud);
    /* A complete control frame (close, ping, pong), payload <= 125 bytes.
     * Control frames may arrive between the fragments of a message. */
    int (*on_control)(void *ud, int opcode, const uint8_t *payload, size_t len);
} ws_parser_events;

typedef struct ws_parser {
    uint64_t remaining;      /* payload bytes left in the current frame */
    uint64_t message_bytes;  /* wire payload bytes in the current message */
    uint32_t max_message;    /* limit on message_bytes; 0 = unlimited */
    uint32_t frames;         /* frame headers parsed (wraps; for metrics) */
    uint8_t *ctrl_buf;       /* only while a control frame spans reads */
    uint8_t hdr[WS_MAX_HEADER];
    uint8_t hdr_len;         /* header bytes collected so far */
    uint8_t mask[4];
    uint8_t mask_pos;        /* offset into mask for the next payload byte */
    uint8_t ctrl_len;        /* control payload bytes collected so far */
    uint8_t state;           /* internal */
    uint8_t opcode;          /* opcode of the current frame */
    uint8_t fin;
    uint8_t in_message;      /* a fragmented message is in progress */
    uint8_t msg_compressed;  /* RSV1 was set on the current message's first frame */
    uint8_t allow_rsv1;      /* permessage-deflate was negotiated */
    uint8_t require_mask;    /* 1 on the server side */
    uint8_t failed;          /* a violation was reported; feed refuses more */
    const char *error;       /* static text describing the last violation */
} ws_parser;

/* Prepares a parser. require_mask: 1 for frames from clients. max_message:
 * limit on a message's total payload as it appears on the wire (0 = none);
 * a compressed (RSV1) message may exceed it by deflate's worst-case
 * expansion (max_message / 8 + 64), its inflated size being the caller's
 * to check. */
void ws_parser_init(ws_parser *p, int require_mask, int allow_rsv1,
                    uint32_t max_message);

/* Releases what the parser holds (the control buffer, if any). */
void ws_parser_free(ws_parser *p);

/* Parses len bytes of data, unmasking payload in place. Returns 0 when all
 * bytes were consumed, or the close code of a violation / the code an event
 * returned. After a non-zero return the parser is failed and must not be fed
 * again; p->error then names the violation. */
int ws_parser_feed(ws_parser *p, uint8_t *data, size_t len,
                   const ws_parser_events *ev, void *ud);

/* Writes a frame header into out (at least WS_MAX_HEADER bytes) and returns
 * its length. mask is NULL for server frames (unmasked). */
size_t ws_frame_header(uint8_t *out, int opcode, int fin, int rsv1,
                       uint64_t payload_len, const uint8_t *mask);

/* 1 if code may appear in a close frame received from a peer. */
int ws_close_code_valid(unsigned code);

#endif
