/* namespace: channel options and channel names. A channel "ns:rest" takes
 * the options of namespace "ns"; a channel without ':' takes the top-level
 * channel options. Names are validated (length, allowed characters) before
 * any lookup. Configured once at start, read-only afterwards (no locks). */
#ifndef PLAZA_NAMESPACE_H
#define PLAZA_NAMESPACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ns_options {
    char *name;                         /* "" for the top-level options */
    int presence;                       /* keep presence; presence/presence_stats allowed */
    int join_leave;                     /* join/leave pushes available */
    int force_push_join_leave;          /* sent even if the client did not ask */
    int history_size;                   /* 0 = no history */
    int history_ttl_ms;                 /* 0 with history_size > 0 = keep until trimmed by size */
    int force_recovery;                 /* positioned + recoverable regardless of the client */
    int allow_publish_for_subscriber;   /* a subscribed client may publish */
    int allow_publish_for_client;       /* any connected client may publish */
    int allow_subscribe_for_client;     /* any connected (authenticated) client may subscribe without token */
    int allow_subscribe_for_anonymous;  /* anonymous clients too */
    int allow_presence_for_subscriber;
    int allow_history_for_subscriber;
    int protected_;                     /* "protected": a subscription token is required */
} ns_options;

typedef struct ns_registry {
    ns_options top;                     /* channels without a namespace */
    ns_options *spaces;
    int nspaces;
    int channel_max_length;             /* bytes */
} ns_registry;

/* 1 if name is a valid channel name: 1..max_length bytes, printable ASCII
 * without space, no leading/trailing ':' issues (see namespace.c). */
int ns_channel_valid(const ns_registry *r, const char *name, size_t len);

/* The options for channel, or NULL if its namespace is not configured
 * (error 102 unknown channel). */
const ns_options *ns_lookup(const ns_registry *r, const char *channel);

#endif
