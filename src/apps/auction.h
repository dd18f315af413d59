/* auction: live bidding on lots, each lot an entry of a persistent map
 * channel whose namespace sets auction.enabled. Clients subscribe to the
 * map (newMapSubscription) and see every lot and every accepted bid in
 * order; they cannot write the map directly (the config refuses
 * allow_publish_*): they call two RPC methods, which check and write.
 *
 *   auction.open {"channel","title","start_price","increment","duration_ms"}
 *     -> {"lot":"<key>","ends_at":<unix ms>,"offset":N}
 *   auction.bid  {"channel","lot","amount"}
 *     -> {"price","ends_at","offset","extended":bool}
 *
 * The same over HTTP, for backends and clients without a socket (the
 * server API key, with "user" and maybe "name" in the body; or a user's
 * connection token as Bearer):
 *
 *   POST /auctions/<channel>/lots             the params of auction.open
 *   POST /auctions/<channel>/lots/<lot>/bids  {"amount"}
 *     -> 200 {"result":{...as above}}, or {"error":{"code","message"}} with
 *        the status of the code (400, 403, 404, 429)
 *
 * auction.open may name the lot ("lot": 1 to 64 of A-Z a-z 0-9 _ - .);
 * a lot that exists is not replaced (107 "lot: taken").
 *
 * A bid must be at least the start price (first bid) or the current price
 * plus the increment, arrive before the lot ends, and not come from the
 * leader. It is a conditional write (compare-and-set on the lot's offset):
 * the lot is read, checked and written only if nobody wrote it since, else
 * read again, so two racing bids can never both win, on one node or many.
 * A bid within auction.extend_ms of the end moves the end to extend_ms
 * after the bid (anti-sniping). A user bids at most once per
 * auction.bid_interval_ms (per node, see keylimit.h).
 *
 * A lot's data: {"title","start_price","increment","price","bids","leader",
 * "leader_name","ends_at","bid_at","opened_by","opened_by_name"}; bid_at is
 * the server time the last bid was accepted (pages measure latency from
 * it). Errors: 107 naming the field or the rule ("amount: at least 130",
 * "lot: ended"), 103 for anonymous callers or without subscribe
 * permission, 108 when the channel is not an auction, 111 too soon. */
#ifndef PLAZA_AUCTION_H
#define PLAZA_AUCTION_H

#include "net/http_reader.h"
#include "net/server.h"
#include "proto/client.h"

#define AUCTION_TITLE_MAX 80            /* characters */
#define AUCTION_PRICE_MAX 1000000000000LL
#define AUCTION_DURATION_MIN_MS 10000
#define AUCTION_DURATION_MAX_MS 604800000
#define AUCTION_CAS_TRIES 16            /* reads and writes of one bid under contention */

#define AUCTION_HTTP_PREFIX "/auctions/"

/* Registers auction.open and auction.bid in env's RPC registry. -1 if full. */
int auction_register(proto_env *env);

/* Splits /auctions/<channel>/lots[/<lot>/bids] into channel (the text
 * between the prefix and "/lots", no '/', shorter than chlen; checked as a
 * channel name later) and lot ("" for /lots; else 1 to lotlen - 1 of
 * A-Z a-z 0-9 _ - .). 0, or -1 if the path is not one of those. */
int auction_parse_path(const char *path, char *channel, size_t chlen, char *lot, size_t lotlen);

/* The route handler for AUCTION_HTTP_PREFIX (ud = the proto_env). */
int auction_route(conn *c, const http_request *req, void *ud);

#endif
