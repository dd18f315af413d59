/* ws_conn: WebSocket message layer of a connection (see ws_conn.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "net/server.h"
#include "net/worker.h"
#include "net/ws_conn.h"
#include "obs/log.h"

#define STOP 1   /* event result: stop parsing, nothing to send */

static const config *cfg_of(conn *c) { return c->w->srv->cfg; }

/* ---- sending ---- */

static int send_frame(conn *c, int opcode, const void *data, size_t len,
                      int rsv1) {
    uint8_t hdr[WS_MAX_HEADER];
    size_t hl = ws_frame_header(hdr, opcode, 1, rsv1, len, NULL);
    rcbuf *b = rcbuf_new(hl + len);
    if (!b) { conn_abort(c); return -1; }
    memcpy(b->data, hdr, hl);
    if (len) memcpy(b->data + hl, data, len);
    METRIC_ADD(c->w->metrics.frames_out, 1);
    return conn_send(c, b);
}

static int wants_deflate(conn *c, size_t len) {
    const ws_deflate_params *d = &c->ws->deflate;
    return d->enabled && d->server_max_window_bits == 15 &&
           len >= (size_t)cfg_of(c)->ws_compression_min_bytes;
}

int ws_send(conn *c, int opcode, const void *data, size_t len) {
    CONN_ASSERT_OWNER(c);
    if (c->closed || !c->ws || c->ws->close_sent) return -1;
    METRIC_ADD(c->w->metrics.messages_out, 1);
    if (wants_deflate(c, len)) {
        size_t zlen = 0;
        uint8_t *z = ws_deflate_message(data, len, cfg_of(c)->ws_compression_level,
                                        0, &zlen);
        if (z && zlen < len) {
            int rc = send_frame(c, opcode, z, zlen, 1);
            free(z);
            return rc;
        }
        free(z);
    }
    return send_frame(c, opcode, data, len, 0);
}

int ws_send_msg(conn *c, ws_msg *m) {
    CONN_ASSERT_OWNER(c);
    if (c->closed || !c->ws || c->ws->close_sent) return -1;
    METRIC_ADD(c->w->metrics.messages_out, 1);
    METRIC_ADD(c->w->metrics.frames_out, 1);
    if (wants_deflate(c, ws_msg_payload_len(m)))
        return conn_send(c, ws_msg_deflated(m, cfg_of(c)->ws_compression_level));
    return conn_send(c, rcbuf_ref(m->plain));
}

void ws_conn_close(conn *c, int code, const char *reason) {
    CONN_ASSERT_OWNER(c);
    if (c->closed || !c->ws || c->ws->close_sent) return;
    uint8_t payload[WS_MAX_CONTROL];
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > WS_MAX_CONTROL - 2) rl = WS_MAX_CONTROL - 2;
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)(code & 0xff);
    if (rl) memcpy(payload + 2, reason, rl);
    c->ws->close_sent = 1;
    send_frame(c, WS_OP_CLOSE, payload, code ? rl + 2 : 0, 0);
    metrics_close_sent(&c->w->metrics, (unsigned)code);
    if (!c->closed) conn_set_mstate(c, MSTATE_CLOSING);
    if (c->ws->close_received) conn_end(c);
    else conn_set_deadline(c, conn_now(c) + (uint64_t)cfg_of(c)->ws_close_timeout_ms);
}

/* A violation by the peer: close with code and drop the connection. */
static void ws_fail(conn *c, int code, const char *why) {
    if (c->closed) return;
    log_debug("websocket closed with %d: %s", code, why ? why : "");
    c->ws->close_received = 1;     /* don't wait for the peer */
    ws_conn_close(c, code, why);
    conn_end(c);
}

/* ---- receiving ---- */

/* Message lengths fit 32 bits: websocket.max_message_bytes is at most
 * INT_MAX, on the wire and inflated. */
static int buf_append(ws_state *ws, const uint8_t *data, size_t len) {
    if (ws->msg_len + len > ws->msg_cap) {
        size_t cap = ws->msg_cap ? ws->msg_cap : 1024;
        while (cap < ws->msg_len + len) cap *= 2;
        if (cap > UINT32_MAX) return -1;
        uint8_t *nb = realloc(ws->msg, cap);
        if (!nb) return -1;
        ws->msg = nb;
        ws->msg_cap = (uint32_t)cap;
    }
    memcpy(ws->msg + ws->msg_len, data, len);
    ws->msg_len += (uint32_t)len;
    return 0;
}

/* Moves a borrowed chunk into the owned buffer. */
static int unborrow(ws_state *ws) {
    if (!ws->borrowed) return 0;
    const uint8_t *b = ws->borrowed;
    ws->borrowed = NULL;
    return buf_append(ws, b, ws->borrowed_len);
}

static void msg_reset(ws_state *ws) {
    ws->borrowed = NULL;
    ws->borrowed_len = 0;
    ws->msg_len = 0;
    free(ws->msg);           /* idle connections hold no buffer */
    ws->msg = NULL;
    ws->msg_cap = 0;
}

static int ev_begin(void *ud, int opcode, int compressed) {
    conn *c = ud;
    ws_state *ws = c->ws;
    ws->msg_opcode = (uint8_t)opcode;
    ws->msg_compressed = (uint8_t)compressed;
    utf8_init(&ws->utf8);
    return 0;
}

static int inflate_result(int rc) {
    if (rc == -1) return WS_CLOSE_BAD_DATA;
    if (rc == -2) return WS_CLOSE_TOO_BIG;
    return rc ? WS_CLOSE_INTERNAL : 0;
}

static int check_text(ws_state *ws, const uint8_t *data, size_t len) {
    if (ws->msg_opcode == WS_OP_TEXT && utf8_feed(&ws->utf8, data, len))
        return WS_CLOSE_BAD_DATA;
    return 0;
}

/* The inflater works in size_t; what it leaves is within the limit. */
static void set_lengths(ws_state *ws, size_t len, size_t cap) {
    ws->msg_len = (uint32_t)len;
    ws->msg_cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
}

static int ev_data_compressed(conn *c, const uint8_t *data, size_t len) {
    ws_state *ws = c->ws;
    if (!ws->inflater && !(ws->inflater = ws_inflater_new(&ws->deflate)))
        return WS_CLOSE_INTERNAL;
    size_t before = ws->msg_len, mlen = ws->msg_len, mcap = ws->msg_cap;
    int rc = inflate_result(ws_inflater_feed(ws->inflater, data, len, &ws->msg,
                            &mlen, &mcap,
                            (size_t)cfg_of(c)->ws_max_message_bytes));
    set_lengths(ws, mlen, mcap);
    if (rc) return rc;
    return check_text(ws, ws->msg + before, ws->msg_len - before);
}

static int ev_data(void *ud, const uint8_t *data, size_t len) {
    conn *c = ud;
    ws_state *ws = c->ws;
    if (ws->msg_compressed) return ev_data_compressed(c, data, len);
    int rc = check_text(ws, data, len);
    if (rc || !len) return rc;
    if (!ws->borrowed && !ws->msg_len) {
        ws->borrowed = data;
        ws->borrowed_len = (uint32_t)len;
        return 0;
    }
    if (unborrow(ws) || buf_append(ws, data, len)) return WS_CLOSE_INTERNAL;
    return 0;
}

static int ev_end(void *ud) {
    conn *c = ud;
    ws_state *ws = c->ws;
    /* No inflater yet: no compressed byte arrived, an empty message. */
    if (ws->msg_compressed && ws->inflater) {
        size_t before = ws->msg_len, mlen = ws->msg_len, mcap = ws->msg_cap;
        int rc = inflate_result(ws_inflater_finish(ws->inflater, &ws->msg,
                                &mlen, &mcap,
                                (size_t)cfg_of(c)->ws_max_message_bytes));
        set_lengths(ws, mlen, mcap);
        if (rc) return rc;
        if ((rc = check_text(ws, ws->msg + before, ws->msg_len - before)))
            return rc;
    }
    if (ws->msg_opcode == WS_OP_TEXT && !utf8_done(&ws->utf8))
        return WS_CLOSE_BAD_DATA;
    const uint8_t *data = ws->borrowed ? ws->borrowed : ws->msg;
    size_t len = ws->borrowed ? ws->borrowed_len : ws->msg_len;
    METRIC_ADD(c->w->metrics.messages_in, 1);
    if (c->handler->on_message)
        c->handler->on_message(c, data ? data : (const uint8_t *)"", len,
                               ws->msg_opcode == WS_OP_BINARY);
    if (!c->closed) msg_reset(ws);
    return c->closed || c->ending ? STOP : 0;
}

static int on_close_frame(conn *c, const uint8_t *p, size_t len) {
    ws_state *ws = c->ws;
    ws->close_received = 1;
    if (ws->close_sent) { conn_end(c); return STOP; }
    if (len == 1) return WS_CLOSE_PROTOCOL;
    unsigned code = 0;
    if (len >= 2) {
        code = (unsigned)p[0] << 8 | p[1];
        if (!ws_close_code_valid(code)) return WS_CLOSE_PROTOCOL;
        if (!utf8_valid(p + 2, len - 2)) return WS_CLOSE_BAD_DATA;
    }
    ws_conn_close(c, (int)code, NULL);   /* echo the code (none if none) */
    return STOP;
}

static int ev_control(void *ud, int opcode, const uint8_t *p, size_t len) {
    conn *c = ud;
    switch (opcode) {
    case WS_OP_CLOSE: return on_close_frame(c, p, len);
    case WS_OP_PING:
        if (!c->ws->close_sent) send_frame(c, WS_OP_PONG, p, len, 0);
        return 0;
    case WS_OP_PONG:
        c->ws->awaiting_pong = 0;
        return 0;
    default:
        return WS_CLOSE_PROTOCOL;
    }
}

static const ws_parser_events EVENTS = {
    .on_message_begin = ev_begin,
    .on_message_data = ev_data,
    .on_message_end = ev_end,
    .on_control = ev_control,
};

void ws_conn_on_data(conn *c, uint8_t *data, size_t len) {
    ws_state *ws = c->ws;
    if (ws->close_received || ws->parser.failed) return;  /* after close: ignored */
    uint32_t frames = ws->parser.frames;
    int rc = ws_parser_feed(&ws->parser, data, len, &EVENTS, c);
    METRIC_ADD(c->w->metrics.frames_in, (uint32_t)(ws->parser.frames - frames));
    if (c->closed) return;
    if (rc >= 1000) {
        ws_fail(c, rc, ws->parser.error);
        return;
    }
    if (rc == 0 && unborrow(ws)) ws_fail(c, WS_CLOSE_INTERNAL, "out of memory");
}

/* ---- lifecycle ---- */

static void schedule_ping(conn *c) {
    if (c->handler->on_deadline) return;     /* the handler pings */
    int interval = cfg_of(c)->ws_ping_interval_ms;
    if (interval > 0) conn_set_deadline(c, c->last_rx_ms + (uint64_t)interval);
    else wheel_cancel(&c->deadline);
}

int ws_conn_open(conn *c, const ws_handler *h, const ws_deflate_params *dp) {
    ws_state *ws = calloc(1, sizeof(*ws));
    if (!ws) { conn_abort(c); return -1; }
    ws->deflate = *dp;
    ws_parser_init(&ws->parser, 1, dp->enabled,
                   (uint32_t)cfg_of(c)->ws_max_message_bytes);
    c->ws = ws;
    c->kind = CONN_WS;
    c->handler = h;
    conn_set_mstate(c, MSTATE_WS);
    c->last_rx_ms = conn_now(c);
    schedule_ping(c);
    if (h->on_open) h->on_open(c);
    return c->closed ? -1 : 0;
}

void ws_conn_on_deadline(conn *c) {
    ws_state *ws = c->ws;
    uint64_t now = conn_now(c);
    if (ws->close_sent) { conn_abort(c); return; }     /* close timeout */
    if (c->handler->on_deadline) { c->handler->on_deadline(c); return; }
    if (ws->awaiting_pong && c->last_rx_ms <= ws->ping_sent_ms) {
        METRIC_ADD(c->w->metrics.idle_timeouts, 1);
        conn_abort(c);                                  /* no answer */
        return;
    }
    ws->awaiting_pong = 0;
    int interval = cfg_of(c)->ws_ping_interval_ms;
    if (interval <= 0) return;
    if (now - c->last_rx_ms >= (uint64_t)interval) {
        send_frame(c, WS_OP_PING, NULL, 0, 0);
        ws->awaiting_pong = 1;
        ws->ping_sent_ms = now;
        conn_set_deadline(c, now + (uint64_t)cfg_of(c)->ws_pong_timeout_ms);
        return;
    }
    schedule_ping(c);
}

void ws_conn_free(conn *c) {
    ws_state *ws = c->ws;
    if (!ws) return;
    ws_parser_free(&ws->parser);
    ws_inflater_free(ws->inflater);
    free(ws->msg);
    free(ws);
    c->ws = NULL;
}
