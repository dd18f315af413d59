/* namespace: channel options and channel names. A channel "ns:rest" takes
 * the options of namespace "ns"; a channel without ':' takes the top-level
 * channel options. Names are validated (length, allowed characters) before
 * any lookup. Configured once at start, read-only afterwards (no locks). */
#ifndef PLAZA_NAMESPACE_H
#define PLAZA_NAMESPACE_H

#include <stddef.h>
#include <stdint.h>

/* subscription_type: what a subscription to the channel receives. */
enum { NS_SUB_STREAM = 0, NS_SUB_MAP, NS_SUB_MAP_CLIENTS, NS_SUB_MAP_USERS };
/* map.mode: ephemeral keys expire and there is no stream; recoverable keys
 * expire and every change (expiry too) goes to the stream; persistent keys
 * stay until removed. */
enum { NS_MAP_EPHEMERAL = 0, NS_MAP_RECOVERABLE, NS_MAP_PERSISTENT };
/* client_key: which key a client's map write uses. */
enum { NS_CLIENT_KEY_ANY = 0, NS_CLIENT_KEY_CLIENT_ID, NS_CLIENT_KEY_USER_ID };

/* The choices of those options, in enum order (NULL-terminated). */
extern const char *const ns_subscription_types[];
extern const char *const ns_map_modes[];
extern const char *const ns_client_keys[];

/* Defaults of the map options written as 0. */
#define NS_MAP_STREAM_SIZE_DEFAULT 100
#define NS_MAP_STREAM_TTL_DEFAULT_MS 60000
#define NS_MAP_PAGE_SIZE_DEFAULT 100
#define NS_MAP_PAGE_SIZE_MAX_DEFAULT 1000

/* Defaults of the board options written as 0. */
#define NS_BOARD_BATCH_DEFAULT_MS 5
#define NS_BOARD_MAX_AGE_DEFAULT_MS 1000
#define NS_BOARD_SNAPSHOT_DEFAULT_S 60
#define NS_BOARD_SIDE_MIN 64
/* The 16 colours of r/place (2017). */
#define NS_BOARD_PALETTE_DEFAULT "#ffffff,#e4e4e4,#888888,#222222,#ffa7d1,#e50000," \
    "#e59500,#a06a42,#e5d900,#94e044,#02be01,#00d3dd,#0083c7,#0000ea,#cf6ee4,#820080"

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
    int allow_publish_for_anonymous;    /* the publish rules above apply to anonymous clients too */
    int allow_presence_for_client;      /* any connected client may call presence */
    int allow_presence_for_anonymous;
    int allow_history_for_client;       /* any connected client may call history */
    int allow_history_for_anonymous;
    /* map channels (subscription_type != stream) */
    int subscription_type;              /* NS_SUB_* */
    int map_mode;                       /* NS_MAP_* */
    int map_key_ttl_ms;                 /* keys expire unless written again (not persistent) */
    int map_stream_size;                /* 0 = NS_MAP_STREAM_SIZE_DEFAULT */
    int map_stream_ttl_ms;              /* 0 = NS_MAP_STREAM_TTL_DEFAULT_MS */
    int map_default_page_size;          /* 0 = NS_MAP_PAGE_SIZE_DEFAULT */
    int map_max_page_size;              /* 0 = NS_MAP_PAGE_SIZE_MAX_DEFAULT */
    int allow_remove_for_subscriber;    /* map: a subscribed client may remove keys */
    int allow_remove_for_client;
    int allow_remove_for_anonymous;
    int client_key;                     /* NS_CLIENT_KEY_* */
    /* stream channels: presence as live maps ("" or NULL = none) */
    char *map_clients_presence_channel_prefix;
    char *map_users_presence_channel_prefix;
    /* boards (board_width > 0): stream channels of pixel batches */
    int board_width, board_height;
    int board_bits;                     /* 0 = 4 */
    char *board_palette;                /* "" or NULL = NS_BOARD_PALETTE_DEFAULT */
    int board_cooldown_ms;
    int board_batch_ms;                 /* 0 = NS_BOARD_BATCH_DEFAULT_MS */
    int board_max_age_ms;               /* 0 = NS_BOARD_MAX_AGE_DEFAULT_MS */
    int board_snapshot_every_s;         /* 0 = NS_BOARD_SNAPSHOT_DEFAULT_S */
    /* what a client may write (publications and map writes) */
    int publish_rate_limit;             /* per user per second; 0 = none */
    int publish_rate_burst;             /* 0 = 1 */
    int max_publication_bytes;          /* 0 = none */
    /* auctions (auction_enabled): persistent maps of lots, written by RPC */
    int auction_enabled;
    int auction_extend_ms;              /* anti-sniping window; 0 = none */
    int auction_bid_interval_ms;        /* per user; 0 = none */
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

/* Map options with their defaults applied. */
int ns_map_stream_size(const ns_options *o);     /* 0 for ephemeral maps */
int ns_map_stream_ttl_ms(const ns_options *o);
int ns_map_page_size(const ns_options *o, int asked);   /* asked <= 0: the default; clamped */

/* Board options with their defaults applied. */
static inline int ns_is_board(const ns_options *o) { return o->board_width > 0; }
int ns_board_bits(const ns_options *o);
int ns_board_batch_ms(const ns_options *o);
int ns_board_max_age_ms(const ns_options *o);
int ns_board_snapshot_every_s(const ns_options *o);
/* The palette as 0xRRGGBB values into rgb (room for 256); returns how
 * many, or -1 if the text is not "#rrggbb" items separated by commas. */
int ns_board_palette(const ns_options *o, uint32_t *rgb);

/* 1 if a client (anonymous or not, subscribed or not) passes a
 * for_client / for_subscriber / for_anonymous rule. */
int ns_allowed(int for_client, int for_subscriber, int for_anonymous,
               int anonymous, int subscribed);

#endif
