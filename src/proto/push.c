/* push: encoding of server pushes, publications and ClientInfo (see
 * push.h). */
#include <stdlib.h>
#include <string.h>
#include "net/ws_frame.h"
#include "proto/push.h"

static ws_msg *finish(sbuf *sb) {
    ws_msg *m = sb->oom ? NULL : ws_msg_new(WS_OP_TEXT, sb->p, sb->len);
    sb_free(sb);
    return m;
}

static void open_push(sbuf *sb, const char *channel, const char *type) {
    sb_init(sb);
    sb_puts(sb, "{\"push\":{\"channel\":");
    sb_json_str(sb, channel, strlen(channel));
    sb_puts(sb, ",\"");
    sb_puts(sb, type);
    sb_puts(sb, "\":");
}

rcbuf *push_payload(const char *data, size_t data_len, const char *info, size_t info_len) {
    static const char D[] = "\"data\":", I[] = ",\"info\":";
    size_t n = sizeof(D) - 1 + data_len + (info ? sizeof(I) - 1 + info_len : 0);
    rcbuf *b = rcbuf_new(n);
    if (!b) return NULL;
    uint8_t *p = b->data;
    memcpy(p, D, sizeof(D) - 1);
    p += sizeof(D) - 1;
    memcpy(p, data, data_len);
    p += data_len;
    if (info) {
        memcpy(p, I, sizeof(I) - 1);
        memcpy(p + sizeof(I) - 1, info, info_len);
    }
    return b;
}

/* A Publication object: the payload's fields ("data", "info", "tags"),
 * then, for map channels, "key" (and "removed"), then the offset (unless
 * the map keeps no stream) and the time. */
rcbuf *push_payload_info(const char *info, size_t info_len) {
    static const char I[] = "\"info\":";
    rcbuf *b = rcbuf_new(sizeof(I) - 1 + info_len);
    if (!b) return NULL;
    memcpy(b->data, I, sizeof(I) - 1);
    memcpy(b->data + sizeof(I) - 1, info, info_len);
    return b;
}

/* A board's batch: "data":{"p":[x,y,colour,x,y,colour,...]}, the pixels
 * in the order they were written (the log keeps who and when). */
static void write_board_batch(sbuf *sb, const rcbuf *batch) {
    sb_puts(sb, "\"data\":{\"p\":[");
    size_t pos = 0;
    engine_board_pixel px;
    for (int i = 0; batch && engine_board_next(batch->data, batch->len, &pos, &px); i++) {
        if (i) sb_putc(sb, ',');
        sb_u64(sb, px.x);
        sb_putc(sb, ',');
        sb_u64(sb, px.y);
        sb_putc(sb, ',');
        sb_u64(sb, px.color);
    }
    sb_puts(sb, "]}");
}

void push_write_publication(sbuf *sb, const engine_pub *pub) {
    size_t start = sb->len;
    sb_putc(sb, '{');
    if (pub->flags & ENGINE_PUB_BOARD) write_board_batch(sb, pub->payload);
    else if (pub->payload && pub->payload->len) sb_append(sb, pub->payload->data, pub->payload->len);
    if (pub->key) {
        if (sb->len > start + 1) sb_putc(sb, ',');
        sb_puts(sb, "\"key\":");
        sb_json_str(sb, (const char *)pub->key->data, pub->key->len);
        if (pub->flags & ENGINE_PUB_REMOVED) sb_puts(sb, ",\"removed\":true");
    }
    if (pub->offset && !(pub->flags & ENGINE_PUB_UNSTREAMED)) {
        if (sb->len > start + 1) sb_putc(sb, ',');
        sb_puts(sb, "\"offset\":");
        sb_u64(sb, pub->offset);
    }
    if (pub->time_ms) {
        if (sb->len > start + 1) sb_putc(sb, ',');
        sb_puts(sb, "\"time\":");
        sb_i64(sb, pub->time_ms);
    }
    sb_putc(sb, '}');
}

void push_write_publications(sbuf *sb, const engine_pub *pubs, size_t n) {
    sb_putc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putc(sb, ',');
        push_write_publication(sb, &pubs[i]);
    }
    sb_putc(sb, ']');
}

void push_client_info(sbuf *sb, const char *user, const char *client,
                      const char *conn_info, size_t conn_info_len,
                      const char *chan_info, size_t chan_info_len) {
    sb_puts(sb, "{\"user\":");
    sb_json_str(sb, user, strlen(user));
    sb_puts(sb, ",\"client\":");
    sb_json_str(sb, client, strlen(client));
    if (conn_info) {
        sb_puts(sb, ",\"conn_info\":");
        sb_append(sb, conn_info, conn_info_len);
    }
    if (chan_info) {
        sb_puts(sb, ",\"chan_info\":");
        sb_append(sb, chan_info, chan_info_len);
    }
    sb_putc(sb, '}');
}

ws_msg *push_pub(const char *channel, const engine_pub *pub) {
    sbuf sb;
    open_push(&sb, channel, "pub");
    push_write_publication(&sb, pub);
    sb_puts(&sb, "}}");
    return finish(&sb);
}

static ws_msg *info_push(const char *channel, const char *type,
                         const char *info, size_t len) {
    sbuf sb;
    open_push(&sb, channel, type);
    sb_puts(&sb, "{\"info\":");
    sb_append(&sb, info, len);
    sb_puts(&sb, "}}}");
    return finish(&sb);
}

ws_msg *push_join(const char *channel, const char *info, size_t len) {
    return info_push(channel, "join", info, len);
}

ws_msg *push_leave(const char *channel, const char *info, size_t len) {
    return info_push(channel, "leave", info, len);
}

ws_msg *push_unsubscribe(const char *channel, int code, const char *reason) {
    sbuf sb;
    open_push(&sb, channel, "unsubscribe");
    sb_printf(&sb, "{\"code\":%d,\"reason\":", code);
    sb_json_str(&sb, reason, strlen(reason));
    sb_puts(&sb, "}}}");
    return finish(&sb);
}

ws_msg *push_subscribe(const char *channel, const char *body, size_t len) {
    sbuf sb;
    open_push(&sb, channel, "subscribe");
    sb_append(&sb, body, len);
    sb_puts(&sb, "}}");
    return finish(&sb);
}

ws_msg *push_message(const char *data, size_t len) {
    sbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "{\"push\":{\"message\":{\"data\":");
    sb_append(&sb, data, len);
    sb_puts(&sb, "}}}");
    return finish(&sb);
}
