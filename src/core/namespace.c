/* namespace: channel names and the options they map to. A channel name is
 * 1..channel_max_length bytes of printable ASCII without space (0x21..0x7E).
 * Its namespace is the part before the first ':' ("chat:room:1" is in "chat",
 * whose own names never contain ':'); a name without ':' takes the top-level
 * options. A leading ':' names the empty namespace, which is never
 * configured. Lookup is a linear scan: deployments have a handful of
 * namespaces, and the registry is read-only after start-up. */
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
