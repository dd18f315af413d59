/* adapters.c: what differs between the servers compared.
 *
 *   plaza  Centrifugo client protocol on /connection/websocket: connect
 *          {"id":1,"connect":{}} (anonymous) and {"id":2,"subscribe":
 *          {"channel":"bench:K"}}; publications come as {"push":{"channel":..,
 *          "pub":{"data":PAYLOAD,..}}}, several replies may share a frame
 *          (one per line), and the server's {} ping is answered with {}.
 *          Publish: POST /api/publish {"channel":"bench:K","data":PAYLOAD}.
 *   plaza-presence  the same server and protocol on channels "pbench:K"
 *          (a namespace with presence: every subscriber is a presence entry).
 *   plaza-map    the same server, a map channel: subscribe {"channel":
 *          "mbench:K","type":1,"phase":2} (an empty map: the live reply at
 *          once); publish POST /api/map_publish {"channel":"mbench:K",
 *          "key":"k<seq % 16>","data":PAYLOAD}. Pushes carry the key.
 *   plaza-board  the same server, a board channel "bboard:K" (a plain
 *          subscribe); each publication writes one pixel, PUT
 *          /boards/bboard:K/pixels {"x","y","color"} with the API key, the
 *          pixel's place given by its sequence number; the pushes are
 *          batches {"p":[x,y,c,...]}, counted pixel by pixel (no per-message
 *          latency: the batch carries no send time; the publishers' request
 *          round trip is the write's latency). Requests are spread over all
 *          publisher connections (a connection waits for each write's batch).
 *   plaza-auction  the same server, an auction (issue 13): subscribe to
 *          the map "abench:K" (its lot "lot" opened beforehand, e.g. by
 *          bench/auction); each publication is a bid, POST
 *          /auctions/abench:K/lots/lot/bids {"amount":<seq>,"user":...}
 *          with the API key (the lot opens at 1, increment 1, so the n-th
 *          bid of a channel bids n); the pushes are the lot, whose "bids"
 *          is the sequence number and "bid_at" the server's accept time
 *          (Unix ms): the latency is accept -> receive, by the wall clock
 *          (ms resolution: it reads up to 1 ms high).
 *   nchan  nginx + Nchan: WebSocket on /sub/bench-K (subscribed once
 *          upgraded), POST /pub/bench-K; messages are the raw payload.
 *   node   bench/peers/node-ws-server.mjs: WebSocket on /ws, then
 *          {"sub":"bench-K"}, answered {"subscribed":"bench-K"}; POST
 *          /pub/bench-K; messages are the raw payload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "loadgen.h"

/* ---- the payload ---------------------------------------------------------- */

static const char *find_num(const char *p, size_t n, const char *key, size_t klen) {
    const char *k = memmem(p, n, key, klen);
    return k ? k + klen : NULL;
}

int payload_parse(const char *p, size_t n, long *ch, uint64_t *seq, uint64_t *ts) {
    if (n > 512) n = 512;                 /* the numbers come before any padding */
    const char *a = find_num(p, n, "\"ch\":", 5);
    const char *b = find_num(p, n, "\"seq\":", 6);
    const char *c = find_num(p, n, "\"ts\":", 5);
    if (!a || !b || !c) return -1;
    *ch = strtol(a, NULL, 10);
    *seq = strtoull(b, NULL, 10);
    *ts = strtoull(c, NULL, 10);
    return 0;
}

static void http_post(lgbuf *out, const lg_opts *o, const char *path, const char *extra,
                      size_t body_len) {
    buf_printf(out, "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: application/json\r\n"
               "Content-Length: %zu\r\n\r\n", path, o->host, o->port, extra, body_len);
}

static int ok_2xx(int status, const char *body, size_t n) {
    (void)body; (void)n;
    return status >= 200 && status < 300;
}

/* ---- plaza ------------------------------------------------------------------ */

static void plaza_path(int k, char *out, size_t cap) {
    (void)k;
    snprintf(out, cap, "/connection/websocket");
}

static void plaza_subscribe(sub *s, const char *body) {
    static const char connect[] = "{\"id\":1,\"connect\":{}}";
    sub_send_text(s, connect, sizeof(connect) - 1);
    sub_send_text(s, body, strlen(body));
}

static void plaza_map_open(sub *s) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "{\"id\":2,\"subscribe\":{\"channel\":\"mbench:%d\",\"type\":1,\"phase\":2}}", s->chan);
    plaza_subscribe(s, cmd);
}

static void plaza_board_open(sub *s) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "{\"id\":2,\"subscribe\":{\"channel\":\"bboard:%d\"}}", s->chan);
    plaza_subscribe(s, cmd);
}

static void plaza_open_ns(sub *s, const char *ns) {
    char cmd[128];
    int n = snprintf(cmd, sizeof(cmd), "{\"id\":2,\"subscribe\":{\"channel\":\"%s:%d\"}}", ns, s->chan);
    static const char connect[] = "{\"id\":1,\"connect\":{}}";
    sub_send_text(s, connect, sizeof(connect) - 1);
    sub_send_text(s, cmd, (size_t)n);
}

static void plaza_open(sub *s) { plaza_open_ns(s, "bench"); }

static void plaza_auction_open(sub *s) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "{\"id\":2,\"subscribe\":{\"channel\":\"abench:%d\",\"type\":1,\"phase\":2}}",
             s->chan);
    plaza_subscribe(s, cmd);
}

/* A lot after a bid: "bids" is the sequence, "bid_at" the accept time. */
static void auction_pub(sub *s, const char *p, size_t n) {
    const char *b = find_num(p, n, "\"bids\":", 7), *t = find_num(p, n, "\"bid_at\":", 9);
    if (!b || !t || *t == 'n') { sub_payload(s, p, n); return; }   /* reported as unreadable */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t at = strtoull(t, NULL, 10) * 1000000u;                /* ms -> ns */
    sub_measured(s, strtoull(b, NULL, 10), now > at ? now - at : 0, n);
}
static void plaza_presence_open(sub *s) { plaza_open_ns(s, "pbench"); }

/* A board's batch: its pixels are counted. */
static void board_pub(sub *s, const char *p, size_t n) {
    const char *a = memmem(p, n, "\"p\":[", 5);
    if (!a) { sub_payload(s, p, n); return; }         /* reported as unreadable */
    const char *end = memchr(a, ']', n - (size_t)(a - p));
    size_t commas = 0;
    for (const char *q = a + 5; end && q < end; q++) commas += *q == ',';
    sub_pixels(s, end && end > a + 5 ? (commas + 1) / 3 : 0, n);
}

static void plaza_line(sub *s, const char *p, size_t n) {
    if (n == 2 && p[0] == '{' && p[1] == '}') {      /* ping */
        s->set->c.pings++;
        sub_send_text(s, "{}", 2);
        return;
    }
    if (n > 8 && memcmp(p, "{\"push\":", 8) == 0) {
        if (memmem(p, n < 256 ? n : 256, "\"pub\":", 6)) {
            if (s->set->ad->on_open == plaza_board_open) board_pub(s, p, n);
            else if (s->set->ad->on_open == plaza_auction_open) auction_pub(s, p, n);
            else sub_payload(s, p, n);
        } else if (memmem(p, n, "\"disconnect\":", 13) || memmem(p, n, "\"unsubscribe\":", 14))
            sub_failed(s, "plaza pushed disconnect/unsubscribe");
        return;
    }
    size_t head = n < 16 ? n : 16;            /* replies start {"id":N, */
    int is_sub = head >= 6 && memmem(p, head, "\"id\":2", 6) != NULL;
    if (memmem(p, n, "\"error\":", 8)) {
        char why[200];
        snprintf(why, sizeof(why), "plaza refused: %.*s", (int)(n > 150 ? 150 : n), p);
        sub_failed(s, why);
    } else if (is_sub) {
        sub_subscribed(s);
    }
}

static void plaza_message(sub *s, const char *p, size_t n) {
    size_t off = 0;
    while (off < n && s->state != SUB_CLOSED) {      /* one reply per line */
        const char *line = p + off;
        const char *nl = memchr(line, '\n', n - off);
        size_t len = nl ? (size_t)(nl - line) : n - off;
        if (len) plaza_line(s, line, len);
        off += len + 1;
    }
}

static void plaza_publish_ns(lgbuf *out, const lg_opts *o, const char *ns, int k, const char *payload,
                             size_t n) {
    char head[64], extra[160];
    int hl = snprintf(head, sizeof(head), "{\"channel\":\"%s:%d\",\"data\":", ns, k);
    snprintf(extra, sizeof(extra), "X-API-Key: %s\r\n", o->api_key);
    http_post(out, o, "/api/publish", extra, (size_t)hl + n + 1);
    buf_add(out, head, (size_t)hl);
    buf_add(out, payload, n);
    buf_add(out, "}", 1);
}

static void plaza_publish(lgbuf *out, const lg_opts *o, int k, const char *payload, size_t n) {
    plaza_publish_ns(out, o, "bench", k, payload, n);
}

static void plaza_presence_publish(lgbuf *out, const lg_opts *o, int k, const char *payload, size_t n) {
    plaza_publish_ns(out, o, "pbench", k, payload, n);
}

static void plaza_map_publish(lgbuf *out, const lg_opts *o, int k, const char *payload, size_t n) {
    char head[96], extra[160];
    long ch;
    uint64_t seq = 0, ts;
    payload_parse(payload, n, &ch, &seq, &ts);
    int hl = snprintf(head, sizeof(head), "{\"channel\":\"mbench:%d\",\"key\":\"k%llu\",\"data\":", k,
                      (unsigned long long)(seq % 16));
    snprintf(extra, sizeof(extra), "X-API-Key: %s\r\n", o->api_key);
    http_post(out, o, "/api/map_publish", extra, (size_t)hl + n + 1);
    buf_add(out, head, (size_t)hl);
    buf_add(out, payload, n);
    buf_add(out, "}", 1);
}

#define BOARD_SIDE 1024

static void plaza_board_publish(lgbuf *out, const lg_opts *o, int k, const char *payload, size_t n) {
    char body[96];
    long ch;
    uint64_t seq = 0, ts;
    payload_parse(payload, n, &ch, &seq, &ts);
    int bl = snprintf(body, sizeof(body), "{\"x\":%llu,\"y\":%llu,\"color\":%llu}",
                      (unsigned long long)(seq % BOARD_SIDE),
                      (unsigned long long)(seq / BOARD_SIDE % BOARD_SIDE), (unsigned long long)(seq % 15 + 1));
    buf_printf(out, "PUT /boards/bboard:%d/pixels HTTP/1.1\r\nHost: %s:%d\r\nX-API-Key: %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", k, o->host, o->port,
               o->api_key, bl);
    buf_add(out, body, (size_t)bl);
}

static void plaza_auction_publish(lgbuf *out, const lg_opts *o, int k, const char *payload, size_t n) {
    char body[96];
    long ch;
    uint64_t seq = 0, ts;
    payload_parse(payload, n, &ch, &seq, &ts);
    int bl = snprintf(body, sizeof(body), "{\"amount\":%llu,\"user\":\"b%llu\"}",
                      (unsigned long long)seq, (unsigned long long)(seq % 7));
    buf_printf(out, "POST /auctions/abench:%d/lots/lot/bids HTTP/1.1\r\nHost: %s:%d\r\nX-API-Key: %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", k, o->host, o->port,
               o->api_key, bl);
    buf_add(out, body, (size_t)bl);
}

static int plaza_ok(int status, const char *body, size_t n) {
    return status == 200 && !(n >= 9 && memcmp(body, "{\"error\":", 9) == 0);
}

/* ---- nchan ------------------------------------------------------------------- */

static void nchan_path(int k, char *out, size_t cap) { snprintf(out, cap, "/sub/bench-%d", k); }

static void nchan_open(sub *s) { sub_subscribed(s); }

static void raw_message(sub *s, const char *p, size_t n) { sub_payload(s, p, n); }

static void peer_publish(lgbuf *out, const lg_opts *o, int k, const char *payload, size_t n) {
    char path[64];
    snprintf(path, sizeof(path), "/pub/bench-%d", k);
    http_post(out, o, path, "", n);
    buf_add(out, payload, n);
}

/* ---- node ws ------------------------------------------------------------------- */

static void node_path(int k, char *out, size_t cap) {
    (void)k;
    snprintf(out, cap, "/ws");
}

static void node_open(sub *s) {
    char cmd[64];
    int n = snprintf(cmd, sizeof(cmd), "{\"sub\":\"bench-%d\"}", s->chan);
    sub_send_text(s, cmd, (size_t)n);
}

static void node_message(sub *s, const char *p, size_t n) {
    if (s->state == SUB_SUBSCRIBING && n > 14 && memcmp(p, "{\"subscribed\":", 14) == 0)
        sub_subscribed(s);
    else
        sub_payload(s, p, n);
}

/* ---- registry ----------------------------------------------------------------- */

static const adapter ADAPTERS[] = {
    {"plaza", plaza_path, plaza_open, plaza_message, plaza_publish, plaza_ok, 0},
    {"plaza-presence", plaza_path, plaza_presence_open, plaza_message, plaza_presence_publish, plaza_ok, 0},
    {"plaza-map", plaza_path, plaza_map_open, plaza_message, plaza_map_publish, plaza_ok, 0},
    {"plaza-board", plaza_path, plaza_board_open, plaza_message, plaza_board_publish, plaza_ok, 1},
    {"plaza-auction", plaza_path, plaza_auction_open, plaza_message, plaza_auction_publish, plaza_ok, 0},
    {"nchan", nchan_path, nchan_open, raw_message, peer_publish, ok_2xx, 0},
    {"node", node_path, node_open, node_message, peer_publish, ok_2xx, 0},
};

const adapter *adapter_find(const char *name) {
    for (size_t i = 0; i < sizeof(ADAPTERS) / sizeof(ADAPTERS[0]); i++)
        if (strcmp(ADAPTERS[i].name, name) == 0) return &ADAPTERS[i];
    return NULL;
}
