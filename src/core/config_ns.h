/* config_ns: the channel-option part of the configuration, private to
 * src/core/config*.c. It lists the ns_options fields once (NS_OPTION_KEYS),
 * from which config.c builds the "channel.options.*" keys, and it owns the
 * "channel.namespaces" array: parsing it from JSON or from JSON text (an
 * environment variable or flag), checking it, deep-copying and freeing it.
 *
 * A namespace starts from all-false/0 options: nothing is inherited from
 * "channel.options" (Centrifugo does not inherit either). */
#ifndef PLAZA_CONFIG_NS_H
#define PLAZA_CONFIG_NS_H

#include <limits.h>
#include <stddef.h>
#include <jansson.h>
#include "core/config.h"

#define NS_HISTORY_SIZE_MAX 1000000
#define NS_NAME_MAX 64
#define NS_BOARD_SIDE_MAX 4096

/* X(json_key, ns_options field, type, a, b, help); every default is
 * 0/false/the first choice/"". Types: INT (a..b), BOOL, ENUM (a = the
 * NULL-terminated choices, stored as the index), STR. A dotted key
 * ("map.mode") is written as a nested object ({"map": {"mode": ...}}). */
#define NS_OPTION_KEYS(X)                                                     \
    X("presence", presence, BOOL, 0, 1,                                       \
      "Keep presence; clients may call presence and presence_stats.")         \
    X("join_leave", join_leave, BOOL, 0, 1,                                   \
      "Send join/leave pushes to subscribers that ask for them.")             \
    X("force_push_join_leave", force_push_join_leave, BOOL, 0, 1,             \
      "Send join/leave pushes to every subscriber, asked or not.")            \
    X("history_size", history_size, INT, 0, NS_HISTORY_SIZE_MAX,              \
      "Publications kept per channel; 0 keeps no history.")                   \
    X("history_ttl_ms", history_ttl_ms, INT, 0, INT_MAX,                      \
      "How long history is kept; 0 keeps it until trimmed by size.")          \
    X("force_recovery", force_recovery, BOOL, 0, 1,                           \
      "Subscriptions are positioned and recoverable whatever the client "     \
      "asks; needs history_size > 0.")                                        \
    X("allow_publish_for_subscriber", allow_publish_for_subscriber, BOOL,     \
      0, 1, "A subscribed client may publish.")                               \
    X("allow_publish_for_client", allow_publish_for_client, BOOL, 0, 1,       \
      "Any connected client may publish, subscribed or not.")                 \
    X("allow_subscribe_for_client", allow_subscribe_for_client, BOOL, 0, 1,  \
      "An authenticated client may subscribe without a subscription token.")  \
    X("allow_subscribe_for_anonymous", allow_subscribe_for_anonymous, BOOL,   \
      0, 1, "Anonymous clients may subscribe without a token too.")           \
    X("allow_presence_for_subscriber", allow_presence_for_subscriber, BOOL,   \
      0, 1, "A subscribed client may call presence and presence_stats.")      \
    X("allow_history_for_subscriber", allow_history_for_subscriber, BOOL,     \
      0, 1, "A subscribed client may call history.")                          \
    X("protected", protected_, BOOL, 0, 1,                                    \
      "A subscription token is always required (the allow_subscribe_* "       \
      "options do not apply).")                                               \
    X("allow_publish_for_anonymous", allow_publish_for_anonymous, BOOL, 0, 1, \
      "Anonymous clients may publish (and write map keys) too, under the "    \
      "for_client/for_subscriber rules.")                                     \
    X("allow_presence_for_client", allow_presence_for_client, BOOL, 0, 1,     \
      "Any connected client may call presence and presence_stats.")           \
    X("allow_presence_for_anonymous", allow_presence_for_anonymous, BOOL,     \
      0, 1, "Anonymous clients may call presence too, under the "             \
      "for_client/for_subscriber rules.")                                     \
    X("allow_history_for_client", allow_history_for_client, BOOL, 0, 1,       \
      "Any connected client may call history.")                               \
    X("allow_history_for_anonymous", allow_history_for_anonymous, BOOL, 0, 1, \
      "Anonymous clients may call history too, under the "                    \
      "for_client/for_subscriber rules.")                                     \
    X("subscription_type", subscription_type, ENUM, ns_subscription_types, 0, \
      "What a subscription receives: stream (publications), map (keyed "      \
      "state), map_clients or map_users (presence as a map).")                \
    X("map.mode", map_mode, ENUM, ns_map_modes, 0,                            \
      "Map channels: ephemeral (keys expire, no stream), recoverable (keys "  \
      "expire, changes go to a stream), persistent (keys stay, stream).")     \
    X("map.key_ttl_ms", map_key_ttl_ms, INT, 0, INT_MAX,                      \
      "Map channels: a key expires this long after its last write "           \
      "(needed by ephemeral and recoverable, not allowed for persistent).")   \
    X("map.stream_size", map_stream_size, INT, 0, NS_HISTORY_SIZE_MAX,        \
      "Map channels: changes kept in the stream for recovery; 0 = 100.")      \
    X("map.stream_ttl_ms", map_stream_ttl_ms, INT, 0, INT_MAX,                \
      "Map channels: how long changes stay in the stream; 0 = 60000.")        \
    X("map.default_page_size", map_default_page_size, INT, 0, 100000,        \
      "Map channels: state entries per subscribe page when the client asks "  \
      "for no size; 0 = 100.")                                                \
    X("map.max_page_size", map_max_page_size, INT, 0, 100000,                 \
      "Map channels: most state entries per subscribe page; 0 = 1000.")       \
    X("allow_remove_for_subscriber", allow_remove_for_subscriber, BOOL, 0, 1, \
      "Map channels: a subscribed client may remove keys.")                   \
    X("allow_remove_for_client", allow_remove_for_client, BOOL, 0, 1,         \
      "Map channels: any connected client may remove keys.")                  \
    X("allow_remove_for_anonymous", allow_remove_for_anonymous, BOOL, 0, 1,   \
      "Map channels: anonymous clients may remove keys too.")                 \
    X("client_key", client_key, ENUM, ns_client_keys, 0,                      \
      "Map channels: the key of a client's write: any (the client's own), "   \
      "client_id or user_id (forced, whatever the client sends).")            \
    X("map_clients_presence_channel_prefix",                                  \
      map_clients_presence_channel_prefix, STR, 0, 0,                         \
      "Stream channels: each live subscriber is an entry (key = client id) "  \
      "of the map channel named by this prefix + the channel; that "          \
      "namespace must be a map_clients one. Empty: none.")                    \
    X("map_users_presence_channel_prefix",                                    \
      map_users_presence_channel_prefix, STR, 0, 0,                           \
      "Stream channels: each subscribed user is an entry (key = user id) of " \
      "the map channel named by this prefix + the channel (a map_users "      \
      "namespace). Empty: none.")                                             \
    X("board.width", board_width, INT, 0, NS_BOARD_SIDE_MAX,                  \
      "Boards: pixels across (64 to 4096); 0 = the channels are not boards. " \
      "A board is a stream channel whose publications are batches of pixel "  \
      "writes; it needs history_size > 0.")                                   \
    X("board.height", board_height, INT, 0, NS_BOARD_SIDE_MAX,                \
      "Boards: pixels down (64 to 4096).")                                    \
    X("board.bits", board_bits, INT, 0, 8,                                    \
      "Boards: bits per pixel, 4 (16 colours) or 8 (256); 0 = 4.")            \
    X("board.palette", board_palette, STR, 0, 0,                              \
      "Boards: the colours, \"#rrggbb,#rrggbb,...\" (2 to 2^bits of them); "  \
      "empty = the 16 colours of r/place 2017.")                              \
    X("board.cooldown_ms", board_cooldown_ms, INT, 0, INT_MAX,                \
      "Boards: least time between two pixels of one user (the server API "    \
      "has none); 0 = none.")                                                 \
    X("board.batch_ms", board_batch_ms, INT, 0, 1000,                         \
      "Boards: pixels written within this window go out as one "              \
      "publication; 0 = 5.")                                                  \
    X("board.max_age_ms", board_max_age_ms, INT, 0, 3600000,                  \
      "Boards: GET /boards/<channel> is cached this long (Cache-Control "     \
      "max-age, and how often the snapshot is encoded again); 0 = 1000.")     \
    X("board.snapshot_every_s", board_snapshot_every_s, INT, 0, 86400,        \
      "Boards with the durable store: the whole board is logged this often "  \
      "when it changed, so replay and restore read only what came after; "    \
      "0 = 60.")                                                              \
    X("publish_rate_limit", publish_rate_limit, INT, 0, 1000000,              \
      "Publications (and map writes) per second one user may make in the "    \
      "namespace on average, per node (anonymous clients: per connection); "  \
      "more get error 111. 0 = no limit.")                                    \
    X("publish_rate_burst", publish_rate_burst, INT, 0, 1000000,              \
      "Publications one user may make at once above publish_rate_limit; "     \
      "0 = 1.")                                                               \
    X("max_publication_bytes", max_publication_bytes, INT, 0, INT_MAX,        \
      "Largest data of a client's publication or map write, in bytes of "     \
      "JSON; larger gets error 107 saying so. 0 = no limit but "              \
      "websocket.max_message_bytes.")                                         \
    X("auction.enabled", auction_enabled, BOOL, 0, 1,                         \
      "Auctions: the channels are auction maps (key = lot), written only "    \
      "through the RPC methods auction.open and auction.bid, which check "    \
      "every bid; the namespace must be a persistent map.")                   \
    X("auction.extend_ms", auction_extend_ms, INT, 0, 3600000,                \
      "Auctions: a bid in the last extend_ms of a lot moves its end to "      \
      "extend_ms after the bid (anti-sniping); 0 = never.")                   \
    X("auction.bid_interval_ms", auction_bid_interval_ms, INT, 0, 3600000,    \
      "Auctions: least time between two bids of one user, per node; "         \
      "0 = none.")


/* Parses a JSON array of namespace objects ({"name": ..., <options>}) into a
 * new array *out of *n entries. key names the array in errors
 * ("channel.namespaces"). Returns 0, or -1 with err set and nothing kept. */
int config_ns_parse_json(const json_t *j, const char *key, ns_options **out,
                         int *n, char *err);

/* The same from JSON text; blank text is an empty array. */
int config_ns_parse_text(const char *text, const char *key, ns_options **out,
                         int *n, char *err);

/* Checks one set of options whose keys are "<prefix>.<option>": ranges and
 * force_recovery needing history. */
int config_ns_check_options(const ns_options *o, const char *prefix, char *err);

/* Checks that the presence-map prefixes of r's options (top and spaces)
 * name namespaces of the right subscription_type. */
int config_ns_check_prefixes(const ns_registry *r, char *err);

/* Checks every namespace of r: names, uniqueness, options. */
int config_ns_check_spaces(const ns_registry *r, const char *key, char *err);

/* Deep-copies src's heap parts (top.name, spaces) into dst, whose own
 * pointers are not freed (dst is typically a shallow copy of src). On
 * failure dst holds only what was copied, for config_ns_free. */
int config_ns_copy(ns_registry *dst, const ns_registry *src);

/* Frees an array of n namespaces (names included). */
void config_ns_free_spaces(ns_options *spaces, int n);

/* Frees r's heap parts and NULLs them (safe to repeat). */
void config_ns_free(ns_registry *r);

/* Edit distance for "did you mean" hints (in config.c); SIZE_MAX when either
 * string is too long to compare. */
size_t config_edit_distance(const char *a, const char *b);

/* Writes a printf-style message into err (CONFIG_ERR_MAX bytes, may be
 * NULL) and returns -1: the error path of every config parser. */
int config_fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
