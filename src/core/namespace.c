/* namespace: channel names and the options they map to. A channel name is
 * 1..channel_max_length bytes of printable ASCII without space (0x21..0x7E).
 * Its namespace is the part before the first ':' ("chat:room:1" is in "chat",
 * whose own names never contain ':'); a name without ':' takes the top-level
 * options. A leading ':' names the empty namespace, which is never
 * configured. Lookup is a linear scan: deployments have a handful of
 * namespaces, and the registry is read-only after start-up. */
#include <stdlib.h>
#include <string.h>
#include "core/namespace.h"

int ns_channel_valid(const ns_registry *r, const char *name, size_t len) {
    if (len == 0 || len > (size_t)r->channel_max_length) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x21 || ch > 0x7E) return 0;
    }
    return 1;
}

const ns_options *ns_lookup(const ns_registry *r, const char *channel) {
    const char *colon = strchr(channel, ':');
    if (!colon) return &r->top;
    size_t n = (size_t)(colon - channel);
    if (n == 0) return NULL;
    for (int i = 0; i < r->nspaces; i++) {
        const char *name = r->spaces[i].name;
        if (strncmp(name, channel, n) == 0 && name[n] == '\0') return &r->spaces[i];
    }
    return NULL;
}

const char *const ns_subscription_types[] = {"stream", "map", "map_clients", "map_users", NULL};
const char *const ns_map_modes[] = {"ephemeral", "recoverable", "persistent", NULL};
const char *const ns_client_keys[] = {"any", "client_id", "user_id", NULL};

int ns_map_stream_size(const ns_options *o) {
    if (o->map_mode == NS_MAP_EPHEMERAL) return 0;
    return o->map_stream_size > 0 ? o->map_stream_size : NS_MAP_STREAM_SIZE_DEFAULT;
}

int ns_map_stream_ttl_ms(const ns_options *o) {
    return o->map_stream_ttl_ms > 0 ? o->map_stream_ttl_ms : NS_MAP_STREAM_TTL_DEFAULT_MS;
}

int ns_map_page_size(const ns_options *o, int asked) {
    int def = o->map_default_page_size > 0 ? o->map_default_page_size : NS_MAP_PAGE_SIZE_DEFAULT;
    int max = o->map_max_page_size > 0 ? o->map_max_page_size : NS_MAP_PAGE_SIZE_MAX_DEFAULT;
    if (def > max) def = max;
    if (asked <= 0) return def;
    return asked > max ? max : asked;
}

/* The rule Centrifugo applies to publish, presence and history: a client
 * qualifies by being connected (for_client) or subscribed (for_subscriber),
 * and an anonymous one needs for_anonymous on top. */
int ns_allowed(int for_client, int for_subscriber, int for_anonymous,
               int anonymous, int subscribed) {
    if (!for_client && !(for_subscriber && subscribed)) return 0;
    return !anonymous || for_anonymous;
}

int ns_board_bits(const ns_options *o) { return o->board_bits ? o->board_bits : 4; }

int ns_board_batch_ms(const ns_options *o) {
    return o->board_batch_ms > 0 ? o->board_batch_ms : NS_BOARD_BATCH_DEFAULT_MS;
}

int ns_board_max_age_ms(const ns_options *o) {
    return o->board_max_age_ms > 0 ? o->board_max_age_ms : NS_BOARD_MAX_AGE_DEFAULT_MS;
}

int ns_board_snapshot_every_s(const ns_options *o) {
    return o->board_snapshot_every_s > 0 ? o->board_snapshot_every_s : NS_BOARD_SNAPSHOT_DEFAULT_S;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ns_board_palette(const ns_options *o, uint32_t *rgb) {
    const char *p = o->board_palette && o->board_palette[0] ? o->board_palette
                                                            : NS_BOARD_PALETTE_DEFAULT;
    int n = 0;
    for (;;) {
        while (*p == ' ') p++;
        if (*p++ != '#' || n == 256) return -1;
        uint32_t v = 0;
        for (int i = 0; i < 6; i++) {
            int h = hexval(*p++);
            if (h < 0) return -1;
            v = v << 4 | (uint32_t)h;
        }
        rgb[n++] = v;
        while (*p == ' ') p++;
        if (*p == '\0') return n;
        if (*p++ != ',') return -1;
    }
}
