/* fuzz_command: libFuzzer target for proto_cmd_decode. The input is one
 * command line. Any violation of these invariants abort()s:
 *   - failure leaves a non-empty error and a zeroed cmd (nothing to free);
 *   - success gives type < CMD_COUNT, id 0 exactly for pong and send, the
 *     required strings present, tf an object, data present on every publish
 *     but a map removal, and raw data that has no raw newline, is
 *     NUL-terminated at data_len, and re-encodes to itself (valid, compact). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/command.h"

static void check_data(const proto_cmd *c) {
    if (!c->data) {
        if (c->data_len != 0) abort();
        /* only a map removal (publish type 1, removed) goes without data */
        if (c->type == CMD_PUBLISH && !(c->pub_type == 1 && c->removed)) abort();
        return;
    }
    if (strlen(c->data) != c->data_len) abort();
    if (memchr(c->data, '\n', c->data_len)) abort();
    json_t *v = json_loadb(c->data, c->data_len, JSON_DECODE_ANY, NULL);
    if (!v) abort();
    size_t len;
    char *again = proto_json_compact(v, &len);
    if (!again || len != c->data_len || memcmp(again, c->data, len) != 0) abort();
    free(again);
    json_decref(v);
}

static void check_ok(const proto_cmd *c) {
    if ((unsigned)c->type >= CMD_COUNT || !c->root) abort();
    int no_id = c->type == CMD_PONG || c->type == CMD_SEND;
    if (no_id != (c->id == 0)) abort();
    switch (c->type) {
    case CMD_SUBSCRIBE: case CMD_UNSUBSCRIBE: case CMD_PUBLISH: case CMD_PRESENCE:
    case CMD_PRESENCE_STATS: case CMD_HISTORY:
        if (!c->channel) abort();
        break;
    case CMD_SUB_REFRESH:
        if (!c->channel || !c->token) abort();
        break;
    case CMD_REFRESH:
        if (!c->token) abort();
        break;
    case CMD_RPC:
        if (!c->method) abort();
        break;
    default:
        break;
    }
    if (c->subs && !json_is_object(c->subs)) abort();
    if (c->tf && !json_is_object(c->tf)) abort();
    check_data(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_cmd c;
    char err[128];
    if (proto_cmd_decode((const char *)data, size, &c, err, sizeof(err)) != 0) {
        if (!err[0] || c.root || c.data) abort();
        return 0;
    }
    check_ok(&c);
    proto_cmd_free(&c);
    return 0;
}
