/* loadgen.h: the load generator's shared declarations.
 *
 * The generator is one parent process and one or more forked children:
 *
 *   parent   publishers (HTTP, pipelined, keep-alive), the scenario's steps,
 *            /proc accounting of the server, the report;
 *   children the WebSocket subscribers (each child < 19,000 sockets, so the
 *            per-process fd limit never caps the connection count).
 *
 * They talk over a socketpair in lines (ctl.c): the parent asks, every child
 * answers one line of key=value counters (and histograms when asked).
 *
 * Each protocol (Plaza, Nchan, the Node ws server) is an adapter
 * (adapters.c): the WebSocket path and subscribe handshake, how a text
 * message is read, and how a publish request is written. The payload is the
 * same everywhere: {"ch":K,"seq":S,"ts":NS[,"pad":"xxx..."]}, where seq
 * counts per channel from 1 and ts is CLOCK_MONOTONIC nanoseconds at write. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- options ------------------------------------------------------------ */

#define LG_MAX_PIDS 64
#define LG_MAX_SOCKETS_PER_CHILD 18000

typedef struct lg_opts {
    const char *server;        /* plaza | nchan | node */
    const char *scenario;      /* fanout | channels | idle | storm | sweep | large */
    const char *label;         /* free text copied into the result line */
    const char *host;
    int port;
    int ports[16];             /* --ports: several nodes; subscriber i and publisher connection i use */
    int nports;                /* ports[i % nports] (0: only port) */
    const char *api_key;       /* plaza: X-API-Key */
    int subs, channels;        /* N subscribers over C channels (sub i: channel i % C) */
    double rate;               /* publications per second, all channels together */
    double seconds;            /* publishing time per step */
    int payload;               /* payload size in bytes (padding added up to it) */
    int pubconns;              /* HTTP publisher connections */
    int procs;                 /* subscriber processes; 0: as few as the fd limit allows */
    int ramp;                  /* connection handshakes in flight at once (all children) */
    int settle_ms;             /* wait after connecting before the idle RSS reading */
    int drain_ms;              /* longest wait for deliveries after publishing stops */
    int connect_timeout_ms;    /* a subscriber not subscribed by then has failed */
    int pids[LG_MAX_PIDS];     /* server processes for /proc accounting */
    int npids;
    int publish;               /* 0: connect only (idle, storm) */
    const char *hook;          /* --hook CMD: run as "CMD begin N" / "CMD end N" around step N's publishing */
    int sweep;                 /* rising rates until the server breaks */
    double sweep_factor;
    int sweep_steps;
    double sweep_max_p99_ms;
    double sweep_min_delivery; /* fraction, e.g. 0.99 */
} lg_opts;

/* The port of the i-th subscriber or publisher connection (--ports spreads
 * them over several nodes). */
static inline int lg_port(const lg_opts *o, int i) { return o->nports ? o->ports[i % o->nports] : o->port; }

/* ---- small helpers (util.c) --------------------------------------------- */

typedef struct lgbuf { char *p; size_t len, cap; } lgbuf;

void buf_reserve(lgbuf *b, size_t extra);
void buf_add(lgbuf *b, const void *data, size_t n);
void buf_printf(lgbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(lgbuf *b);
void buf_consume(lgbuf *b, size_t n);      /* drops n bytes from the front */

uint64_t now_ns(void);                       /* CLOCK_MONOTONIC */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* stderr, prefixed */
extern const char *lg_who;                   /* "loadgen" or "loadgen[child 2]" */

/* Writes data on a stream; the bytes are copied. */
void stream_send(uv_stream_t *s, const void *data, size_t n);
/* Same, taking ownership of a malloc'd buffer. */
void stream_send_owned(uv_stream_t *s, char *data, size_t n);

/* Runs loop until done(arg) is true or timeout_ms passes; returns done(arg). */
int run_until(uv_loop_t *loop, int (*done)(void *), void *arg, uint64_t timeout_ms);
void run_for(uv_loop_t *loop, uint64_t ms);

/* ---- histogram (hist.c): log-linear buckets, ~1% precision ------------- */

#define HIST_SUB_BITS 7
#define HIST_BUCKETS (128 + 64 * 40)

typedef struct hist {
    uint64_t count, max, min, sum;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_reset(hist *h);
void hist_add(hist *h, uint64_t v);
void hist_merge(hist *into, const hist *from);
uint64_t hist_quantile(const hist *h, double q);   /* q in [0,1] */
void hist_encode(const hist *h, lgbuf *out);       /* "cnt,max,min,sum;i:c,i:c..." */
int hist_decode(hist *h, const char *s);           /* adds into h; 0 or -1 */

/* ---- counters exchanged between children and parent -------------------- */

#define LG_COUNTERS(X)                                                         \
    X(conn_ok) X(conn_fail) X(sub_fail) X(disconnects) X(delivered)             \
    X(expected) X(gaps) X(lost) X(dups) X(reorder) X(misrouted) X(bad_msg)      \
    X(bytes) X(pings) X(cpu_us)

typedef struct lg_counters {
#define LG_FIELD(n) int64_t n;
    LG_COUNTERS(LG_FIELD)
#undef LG_FIELD
} lg_counters;

void counters_encode(const lg_counters *c, lgbuf *out);
void counters_decode_add(lg_counters *c, const char *line);
void counters_add(lg_counters *into, const lg_counters *from);

/* ---- subscribers (sub.c) ------------------------------------------------ */

enum { SUB_IDLE, SUB_CONNECTING, SUB_HANDSHAKE, SUB_SUBSCRIBING, SUB_ACTIVE, SUB_CLOSED };

typedef struct sub {
    uv_tcp_t tcp;
    struct subset *set;
    int idx;                   /* global subscriber number */
    int chan;
    uint8_t state;
    uint8_t failed;
    uint64_t t_start;          /* connect started, ns */
    uint64_t last;             /* highest seq seen */
    uint64_t seen;             /* bit i: seq last-1-i was seen */
    lgbuf in;                  /* unparsed bytes between reads */
    lgbuf frag;                /* a fragmented message being assembled */
} sub;

typedef struct subset {
    uv_loop_t *loop;
    const lg_opts *o;
    const struct adapter *ad;
    sub *subs;
    int first, n;              /* global indices first .. first+n-1 */
    int next;                  /* next to connect */
    int in_progress, window;   /* handshakes in flight, and the most allowed */
    int done;                  /* subscribed or failed */
    uint64_t now;              /* time of the current read, ns */
    lg_counters c;
    hist lat;                  /* publish-to-deliver, ns */
    hist hs;                   /* connect-to-subscribed, ns */
    uv_timer_t watchdog;
} subset;

void subset_init(subset *ss, uv_loop_t *loop, const lg_opts *o, const struct adapter *ad,
                 int first, int n, int window);
void subset_connect_all(subset *ss);       /* starts the ramp */
int subset_connected(void *ss);            /* all subscribed or failed */
void subset_abort(subset *ss);             /* RST every socket (no TIME_WAIT) */

/* Called by adapters. */
void sub_send_text(sub *s, const char *text, size_t n);
void sub_subscribed(sub *s);
void sub_failed(sub *s, const char *why);
void sub_payload(sub *s, const char *p, size_t n);   /* a publication's payload */
/* A publication that carries n items (a board's batch): counted as n
 * deliveries, without order or latency checks. */
void sub_pixels(sub *s, size_t n, size_t bytes);
/* A message whose sequence number and latency (ns) the adapter worked out. */
void sub_measured(sub *s, uint64_t seq, uint64_t lat_ns, size_t bytes);

/* ---- protocol adapters (adapters.c) ------------------------------------- */

typedef struct adapter {
    const char *name;
    /* WebSocket path for a subscriber of channel k. */
    void (*ws_path)(int k, char *out, size_t cap);
    /* After the 101: send subscribe commands, or call sub_subscribed(). */
    void (*on_open)(sub *s);
    /* A whole text/binary message from the server. */
    void (*on_message)(sub *s, const char *p, size_t n);
    /* Appends one publish request (HTTP/1.1, keep-alive) to out. */
    void (*pub_request)(lgbuf *out, const lg_opts *o, int k, const char *payload, size_t n);
    /* Whether a publish response is a success. */
    int (*pub_ok)(int status, const char *body, size_t n);
    /* 1: requests go round-robin over all publisher connections (one
     * channel's order is not kept); 0: channel k always on connection k % n. */
    int spread;
} adapter;

const adapter *adapter_find(const char *name);

/* Finds "ch", "seq" and "ts" in a payload; 0 or -1. */
int payload_parse(const char *p, size_t n, long *ch, uint64_t *seq, uint64_t *ts);

/* ---- publishers (pub.c) ------------------------------------------------- */

typedef struct publisher publisher;

publisher *pub_new(uv_loop_t *loop, const lg_opts *o, const adapter *ad);
int pub_connected(void *p);                   /* every connection is up */
void pub_start(publisher *p, double rate);    /* publishes at rate until pub_stop */
void pub_stop(publisher *p);
int pub_idle(void *p);                        /* no request awaits its answer */
const uint64_t *pub_seqs(const publisher *p); /* messages sent per channel */
void pub_stats(const publisher *p, uint64_t *sent, uint64_t *ok, uint64_t *err,
               uint64_t *dropped, hist *rtt);
void pub_reset_stats(publisher *p);

/* ---- control channel (ctl.c) -------------------------------------------- */

typedef struct ctl {
    uv_pipe_t pipe;
    lgbuf in;
    char *reply;               /* the last line received (parent side) */
    int eof;
    void (*on_line)(struct ctl *c, char *line);
    void *data;
} ctl;

void ctl_open(ctl *c, uv_loop_t *loop, int fd, void (*on_line)(ctl *, char *));
void ctl_send(ctl *c, const char *line, size_t n);   /* line must end in '\n' */

/* Child process main: runs subscribers first..first+n-1; never returns. */
void child_main(const lg_opts *o, const adapter *ad, int fd, int first, int n,
                int window) __attribute__((noreturn));

/* ---- /proc (procfs.c) --------------------------------------------------- */

typedef struct proc_cpu { uint64_t user_us, sys_us; } proc_cpu;
proc_cpu proc_cpu_read(const int *pids, int n);   /* utime, stime, summed */
uint64_t proc_cpu_us(const int *pids, int n);      /* utime+stime, summed */
uint64_t proc_rss_kb(const int *pids, int n);      /* VmRSS, summed */
uint64_t proc_pss_kb(const int *pids, int n);      /* Pss_Anon + Pss_Shmem, summed */
uint64_t self_cpu_us(void);                        /* this process */

#endif
