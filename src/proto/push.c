/* push: encoding of server pushes and ClientInfo (see push.h). */
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

static ws_msg *pub_push(const char *channel, const engine_pub *pub) {
    sbuf sb;
    open_push(&sb, channel, "pub");
    sb_append(&sb, pub->json->data, pub->json->len);
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

static ws_msg *join_push(const char *channel, const char *info, size_t len) {
    return info_push(channel, "join", info, len);
}

static ws_msg *leave_push(const char *channel, const char *info, size_t len) {
    return info_push(channel, "leave", info, len);
}

static char *client_info(const hub_client *cl, const hub_sub *sub, size_t *len) {
    sbuf sb;
    sb_init(&sb);
    push_client_info(&sb, cl->user, cl->id, cl->conn_info, cl->conn_info_len,
                     sub ? sub->chan_info : NULL, sub ? sub->chan_info_len : 0);
    return sb_take(&sb, len);
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

const hub_codec proto_hub_codec = {
    .pub_push = pub_push,
    .join_push = join_push,
    .leave_push = leave_push,
    .client_info = client_info,
};
