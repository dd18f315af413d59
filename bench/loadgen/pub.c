/* pub.c: the publishers: a few keep-alive HTTP/1.1 connections that
 * pipeline publish requests.
 *
 * A 1 ms timer publishes what is due at the rate (due = elapsed * rate -
 * sent), going round the channels; channel k always goes through connection
 * k % n, so one channel's publications reach the server in order. All of a
 * tick's requests for a connection leave in one write. Responses are read
 * with llhttp and matched to requests in order (the round-trip time of each
 * publish is kept). A connection the server closed is opened again on the
 * next publication; requests that were in flight on it count as errors.
 *
 * A request that would overfill a connection (too many unanswered, or too
 * much unsent) is not made: it counts as dropped and takes no sequence
 * number, so it shows as a missed rate, never as a gap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <llhttp.h>
#include "loadgen.h"

#define MAX_INFLIGHT 50000
#define MAX_UNSENT (16u << 20)

enum { PC_DOWN, PC_CONNECTING, PC_UP, PC_CLOSING };

typedef struct pubconn {
    uv_tcp_t tcp;
    publisher *p;
    int state;
    llhttp_t http;
    lgbuf out;                 /* requests not yet written */
    uint64_t *ring;            /* send times of the requests in flight */
    size_t rhead, rcount, rcap;
    char body[16];             /* the start of the current response body */
    size_t blen;
} pubconn;

struct publisher {
    uv_loop_t *loop;
    const lg_opts *o;
    const adapter *ad;
    pubconn *conns;
    int n;
    uint64_t *seq;             /* per channel: messages sent */
    uint64_t sent, ok, err, dropped;
    hist rtt;
    double rate;
    uint64_t t0, step_sent, rr;
    int running;
    uv_timer_t timer;
    llhttp_settings_t settings;
    lgbuf payload;
};

static void conn_open(pubconn *pc);

/* ---- responses ------------------------------------------------------------ */

static int on_message_begin(llhttp_t *h) {
    ((pubconn *)h->data)->blen = 0;
    return 0;
}

static int on_body(llhttp_t *h, const char *at, size_t len) {
    pubconn *pc = h->data;
    size_t room = sizeof(pc->body) - pc->blen;
    if (len > room) len = room;
    memcpy(pc->body + pc->blen, at, len);
    pc->blen += len;
    return 0;
}

static int on_message_complete(llhttp_t *h) {
    pubconn *pc = h->data;
    publisher *p = pc->p;
    if (!pc->rcount) return 0;            /* an answer nobody asked for */
    uint64_t t = pc->ring[pc->rhead];
    pc->rhead = (pc->rhead + 1) % pc->rcap;
    pc->rcount--;
    hist_add(&p->rtt, now_ns() - t);
    if (p->ad->pub_ok(h->status_code, pc->body, pc->blen)) {
        p->ok++;
    } else {
        if (p->err++ < 3)
            say("publish refused: HTTP %d %.*s", h->status_code, (int)pc->blen, pc->body);
    }
    return 0;
}

/* ---- connection life ------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
    pubconn *pc = h->data;
    pc->state = PC_DOWN;
    if (pc->out.len) conn_open(pc);
}

static void conn_lost(pubconn *pc, const char *why) {
    publisher *p = pc->p;
    if (pc->rcount) {
        say("publisher connection lost (%s), %zu publications unanswered", why, pc->rcount);
        p->err += pc->rcount;
    }
    pc->rcount = pc->rhead = 0;
    pc->state = PC_CLOSING;
    uv_close((uv_handle_t *)&pc->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)h; (void)hint;
    static char slab[65536];
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    pubconn *pc = s->data;
    if (n == 0) return;
    if (n < 0) { conn_lost(pc, uv_strerror((int)n)); return; }
    llhttp_errno_t e = llhttp_execute(&pc->http, buf->base, (size_t)n);
    if (e != HPE_OK) conn_lost(pc, llhttp_errno_name(e));
}

static void flush(pubconn *pc) {
    if (pc->state != PC_UP || !pc->out.len) return;
    stream_send_owned((uv_stream_t *)&pc->tcp, pc->out.p, pc->out.len);
    memset(&pc->out, 0, sizeof(pc->out));
}

static void on_connect(uv_connect_t *req, int status) {
    pubconn *pc = req->data;
    free(req);
    if (status) {
        say("publisher cannot connect: %s", uv_strerror(status));
        pc->state = PC_CLOSING;
        uv_close((uv_handle_t *)&pc->tcp, on_closed);
        return;
    }
    pc->state = PC_UP;
    uv_tcp_nodelay(&pc->tcp, 1);
    llhttp_init(&pc->http, HTTP_RESPONSE, &pc->p->settings);
    pc->http.data = pc;
    uv_read_start((uv_stream_t *)&pc->tcp, on_alloc, on_read);
    flush(pc);
}

static void conn_open(pubconn *pc) {
    publisher *p = pc->p;
    struct sockaddr_in dst;
    uv_ip4_addr(p->o->host, lg_port(p->o, (int)(pc - p->conns)), &dst);
    uv_tcp_init(p->loop, &pc->tcp);
    pc->tcp.data = pc;
    pc->state = PC_CONNECTING;
    uv_connect_t *req = malloc(sizeof(*req));
    if (!req) die("out of memory");
    req->data = pc;
    int rc = uv_tcp_connect(req, &pc->tcp, (const struct sockaddr *)&dst, on_connect);
    if (rc) die("publisher connect: %s", uv_strerror(rc));
}

/* ---- publishing ------------------------------------------------------------ */

static void make_payload(publisher *p, int k, uint64_t seq, uint64_t ts) {
    lgbuf *b = &p->payload;
    b->len = 0;
    buf_printf(b, "{\"ch\":%d,\"seq\":%llu,\"ts\":%llu", k, (unsigned long long)seq,
               (unsigned long long)ts);
    size_t want = (size_t)p->o->payload;
    if (want > b->len + 10) {             /* ,"pad":"xxx"} up to the size asked */
        size_t pad = want - b->len - 10;
        buf_add(b, ",\"pad\":\"", 8);
        buf_reserve(b, pad);
        memset(b->p + b->len, 'x', pad);
        b->len += pad;
        buf_add(b, "\"", 1);
    }
    buf_add(b, "}", 1);
}

static int has_room(pubconn *pc) {
    size_t unsent = pc->out.len;
    if (pc->state == PC_UP) unsent += uv_stream_get_write_queue_size((uv_stream_t *)&pc->tcp);
    return pc->rcount < MAX_INFLIGHT && unsent < MAX_UNSENT;
}

static void ring_push(pubconn *pc, uint64_t t) {
    if (pc->rcount == pc->rcap) {
        size_t cap = pc->rcap ? pc->rcap * 2 : 1024;
        uint64_t *r = malloc(cap * sizeof(*r));
        if (!r) die("out of memory");
        for (size_t i = 0; i < pc->rcount; i++) r[i] = pc->ring[(pc->rhead + i) % pc->rcap];
        free(pc->ring);
        pc->ring = r;
        pc->rcap = cap;
        pc->rhead = 0;
    }
    pc->ring[(pc->rhead + pc->rcount) % pc->rcap] = t;
    pc->rcount++;
}

static void publish_one(publisher *p, uint64_t now) {
    int k = (int)(p->rr++ % (uint64_t)p->o->channels);
    pubconn *pc = &p->conns[(p->ad->spread ? p->rr : (uint64_t)k) % (uint64_t)p->n];
    if (!has_room(pc)) { p->dropped++; return; }
    make_payload(p, k, ++p->seq[k], now);
    p->ad->pub_request(&pc->out, p->o, k, p->payload.p, p->payload.len);
    ring_push(pc, now);
    p->sent++;
}

static void on_tick(uv_timer_t *t) {
    publisher *p = t->data;
    uint64_t now = now_ns();
    uint64_t target = (uint64_t)((double)(now - p->t0) / 1e9 * p->rate);
    if (target <= p->step_sent) return;
    uint64_t due = target - p->step_sent;
    p->step_sent = target;
    for (uint64_t i = 0; i < due; i++) publish_one(p, now);
    for (int i = 0; i < p->n; i++) {
        pubconn *pc = &p->conns[i];
        if (pc->state == PC_DOWN && pc->out.len) conn_open(pc);
        flush(pc);
    }
}

/* ---- interface ------------------------------------------------------------- */

publisher *pub_new(uv_loop_t *loop, const lg_opts *o, const adapter *ad) {
    publisher *p = calloc(1, sizeof(*p));
    if (!p) die("out of memory");
    p->loop = loop;
    p->o = o;
    p->ad = ad;
    p->n = o->pubconns > 0 ? o->pubconns : 1;
    p->conns = calloc((size_t)p->n, sizeof(pubconn));
    p->seq = calloc((size_t)o->channels, sizeof(uint64_t));
    if (!p->conns || !p->seq) die("out of memory");
    llhttp_settings_init(&p->settings);
    p->settings.on_message_begin = on_message_begin;
    p->settings.on_body = on_body;
    p->settings.on_message_complete = on_message_complete;
    hist_reset(&p->rtt);
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    for (int i = 0; i < p->n; i++) {
        p->conns[i].p = p;
        conn_open(&p->conns[i]);
    }
    return p;
}

int pub_connected(void *arg) {
    publisher *p = arg;
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].state != PC_UP) return 0;
    return 1;
}

void pub_start(publisher *p, double rate) {
    p->rate = rate;
    p->t0 = now_ns();
    p->step_sent = 0;
    p->running = 1;
    uv_timer_start(&p->timer, on_tick, 1, 1);
}

void pub_stop(publisher *p) {
    p->running = 0;
    uv_timer_stop(&p->timer);
    for (int i = 0; i < p->n; i++) flush(&p->conns[i]);
}

int pub_idle(void *arg) {
    publisher *p = arg;
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].rcount || p->conns[i].out.len) return 0;
    return 1;
}

const uint64_t *pub_seqs(const publisher *p) { return p->seq; }

void pub_stats(const publisher *p, uint64_t *sent, uint64_t *ok, uint64_t *err,
               uint64_t *dropped, hist *rtt) {
    *sent = p->sent;
    *ok = p->ok;
    *err = p->err;
    *dropped = p->dropped;
    if (rtt) *rtt = p->rtt;
}

void pub_reset_stats(publisher *p) {
    p->sent = p->ok = p->err = p->dropped = 0;
    hist_reset(&p->rtt);
}
