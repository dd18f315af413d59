/* fuzz_control: libFuzzer target for proto_action_decode, the decoder of the
 * control messages nodes exchange through the engine (the server API's
 * actions on connections). Any violation of these invariants abort()s:
 *   - failure leaves the message cleared (nothing to free);
 *   - success gives a known kind, a user, a channel for subscribe and
 *     unsubscribe, a reason for disconnect; and the message encoded again
 *     decodes to the same action. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/actions.h"

static int same_str(const char *a, const char *b) {
    if (!a || !b) return a == b || (a && !a[0]) || (b && !b[0]);
    return strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_action_msg m;
    if (proto_action_decode((const char *)data, size, &m)) {
        if (m.user || m.client || m.channel || m.reason || m.kind) abort();
        return 0;
    }
    if (m.kind < ACT_SUB || m.kind > ACT_REFRESH || !m.user) abort();
    if ((m.kind == ACT_SUB || m.kind == ACT_UNSUB) && !m.channel) abort();
    if (m.kind == ACT_DISCONNECT && !m.reason) abort();
    proto_action a = {.kind = m.kind, .user = m.user, .client = m.client, .channel = m.channel,
                      .code = m.code, .reason = m.reason, .expired = m.expired,
                      .expire_at = m.expire_at};
    size_t len = 0;
    char *again = proto_action_encode(&a, &len);
    if (again) {
        proto_action_msg m2;
        if (proto_action_decode(again, len, &m2)) abort();
        if (m2.kind != m.kind || !same_str(m2.user, m.user) || !same_str(m2.client, m.client) ||
            !same_str(m2.channel, m.channel))
            abort();
        if (m.kind == ACT_DISCONNECT && (m2.code != m.code || !same_str(m2.reason, m.reason))) abort();
        if (m.kind == ACT_REFRESH && (m2.expired != m.expired || m2.expire_at != m.expire_at)) abort();
        proto_action_clear(&m2);
        free(again);
    }
    proto_action_clear(&m);
    return 0;
}
