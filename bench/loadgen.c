/* loadgen: a load generator for Plaza and its peers (nginx + Nchan, a Node
 * `ws` broadcast server), for side-by-side runs on one machine.
 *
 *   loadgen --server plaza|plaza-presence|plaza-map|plaza-board|nchan|node --port P --scenario NAME [options]
 *
 * It opens N WebSocket subscribers (ramped, source addresses spread over
 * 127.0.0.1..250, in as many forked processes as the fd limit asks), spreads
 * them over C channels, then publishes M messages/s for D seconds through the
 * server's HTTP publish endpoint on a few pipelined keep-alive connections.
 * With --ports the subscribers and publisher connections are spread over
 * several nodes (subscriber i and connection i on port i % n).
 * Every payload carries its channel, a per-channel sequence number and the
 * CLOCK_MONOTONIC time it was written, so each subscriber measures
 * publish-to-deliver latency and checks for gaps, duplicates and reordering.
 * Given the server's pids (--pid, repeatable or comma-separated) it reads
 * /proc before and after: server CPU per delivered message, and server RSS
 * per connection once everyone is connected and nothing is sent.
 *
 * Scenarios set defaults that any option overrides:
 *   fanout    5,000 subscribers on 1 channel, 20 msg/s, 10 s
 *   channels  5,000 subscribers over 1,000 channels, 5,000 msg/s, 10 s
 *   idle      100,000 connections, no traffic: memory per connection
 *   storm     10,000 handshakes, 2,000 in flight: handshakes per second
 *   sweep     fan-out, rates rising x1.5 from 10 msg/s, 5 s each, until
 *             p99 > 50 ms or delivery < 99%; reports the highest sustained
 *   large     1,000 subscribers over 10 channels, 100 msg/s of 16 KiB
 *
 * Output: one line of key=value per run (per step for sweep; the line with
 * final=1 is the run's result) on stdout, and a summary for people on
 * stderr. `loadgen --free-port` prints a free loopback port. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "loadgen/loadgen.h"

static lg_opts O;
static const adapter *AD;
static uv_loop_t *L;
static ctl *kids;
static pid_t *kid_pids;
static int *kid_fds;
static int nkids;
static publisher *PUB;

/* ---- options ---------------------------------------------------------------- */

static void scenario_defaults(const char *name) {
    O.subs = 5000; O.channels = 1; O.rate = 20; O.seconds = 10; O.publish = 1;
    if (strcmp(name, "fanout") == 0) {
    } else if (strcmp(name, "channels") == 0) {
        O.channels = 1000; O.rate = 5000;
    } else if (strcmp(name, "idle") == 0) {
        O.subs = 100000; O.publish = 0; O.settle_ms = 3000;
    } else if (strcmp(name, "storm") == 0) {
        O.subs = 10000; O.publish = 0; O.ramp = 2000;
    } else if (strcmp(name, "sweep") == 0) {
        O.rate = 10; O.seconds = 5; O.sweep = 1;
    } else if (strcmp(name, "large") == 0) {
        O.subs = 1000; O.channels = 10; O.rate = 100; O.payload = 16384;
    } else {
        die("unknown scenario %s (fanout, channels, idle, storm, sweep, large)", name);
    }
}

static void usage(void) {
    fprintf(stderr,
        "usage: loadgen --server plaza|plaza-presence|plaza-map|plaza-board|nchan|node --port P [--scenario NAME] [options]\n"
        "  --scenario fanout|channels|idle|storm|sweep|large   (default fanout)\n"
        "  --ports P1,P2,.. (several nodes: subscribers and publisher connections spread)\n"
        "  --host ADDR (127.0.0.1)   --subs N   --channels C   --rate MSG/S   --seconds D\n"
        "  --payload BYTES   --pubconns N (4)   --procs N (by fd limit)   --ramp N (500)\n"
        "  --pid PID[,PID..] (repeatable)   --api-key KEY (bench)   --label TEXT\n"
        "  --settle-ms MS (1000)   --drain-ms MS (5000)   --connect-timeout-ms MS (30000)\n"
        "  --hook CMD (runs \"CMD begin STEP\" before each step's publishing, \"CMD end STEP\" after its drain)\n"
        "  --no-publish   --sweep   --sweep-factor F (1.5)   --sweep-steps N (15)\n"
        "  --sweep-p99-ms MS (50)   --sweep-min-delivery FRACTION (0.99)\n"
        "  loadgen --free-port      prints a free port on 127.0.0.1\n");
    exit(2);
}

static void add_pids(const char *s) {
    char *end;
    while (*s) {
        long pid = strtol(s, &end, 10);
        if (end == s || pid <= 0) die("bad --pid %s", s);
        if (O.npids == LG_MAX_PIDS) die("too many pids");
        O.pids[O.npids++] = (int)pid;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') die("bad --pid list");
    }
}

static void add_ports(const char *s) {
    char *end;
    while (*s) {
        long port = strtol(s, &end, 10);
        if (end == s || port <= 0 || port > 65535 || O.nports == 16) die("bad --ports %s", s);
        O.ports[O.nports++] = (int)port;
        if (*end && *end != ',') die("bad --ports list");
        s = *end == ',' ? end + 1 : end;
    }
    O.port = O.ports[0];
}

static int set_option(const char *k, const char *v) {
    if (!strcmp(k, "--server")) O.server = v;
    else if (!strcmp(k, "--scenario")) O.scenario = v;
    else if (!strcmp(k, "--label")) O.label = v;
    else if (!strcmp(k, "--hook")) O.hook = v;
    else if (!strcmp(k, "--host")) O.host = v;
    else if (!strcmp(k, "--port")) O.port = atoi(v);
    else if (!strcmp(k, "--ports")) add_ports(v);
    else if (!strcmp(k, "--api-key")) O.api_key = v;
    else if (!strcmp(k, "--subs")) O.subs = atoi(v);
    else if (!strcmp(k, "--channels")) O.channels = atoi(v);
    else if (!strcmp(k, "--rate")) O.rate = atof(v);
    else if (!strcmp(k, "--seconds")) O.seconds = atof(v);
    else if (!strcmp(k, "--payload")) O.payload = atoi(v);
    else if (!strcmp(k, "--pubconns")) O.pubconns = atoi(v);
    else if (!strcmp(k, "--procs")) O.procs = atoi(v);
    else if (!strcmp(k, "--ramp")) O.ramp = atoi(v);
    else if (!strcmp(k, "--pid")) add_pids(v);
    else if (!strcmp(k, "--settle-ms")) O.settle_ms = atoi(v);
    else if (!strcmp(k, "--drain-ms")) O.drain_ms = atoi(v);
    else if (!strcmp(k, "--connect-timeout-ms")) O.connect_timeout_ms = atoi(v);
    else if (!strcmp(k, "--sweep-factor")) O.sweep_factor = atof(v);
    else if (!strcmp(k, "--sweep-steps")) O.sweep_steps = atoi(v);
    else if (!strcmp(k, "--sweep-p99-ms")) O.sweep_max_p99_ms = atof(v);
    else if (!strcmp(k, "--sweep-min-delivery")) O.sweep_min_delivery = atof(v);
    else return -1;
    return 0;
}

static void parse_args(int argc, char **argv) {
    O.scenario = "fanout";
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--scenario")) O.scenario = argv[i + 1];
    O.host = "127.0.0.1"; O.api_key = "bench"; O.label = "";
    O.pubconns = 4; O.ramp = 500; O.settle_ms = 1000; O.drain_ms = 5000;
    O.connect_timeout_ms = 30000; O.sweep_factor = 1.5; O.sweep_steps = 15;
    O.sweep_max_p99_ms = 50; O.sweep_min_delivery = 0.99;
    scenario_defaults(O.scenario);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-publish")) { O.publish = 0; continue; }
        if (!strcmp(argv[i], "--sweep")) { O.sweep = 1; continue; }
        if (i + 1 >= argc || set_option(argv[i], argv[i + 1]) != 0) usage();
        i++;
    }
    if (!O.server || !(AD = adapter_find(O.server))) die("--server plaza, plaza-presence, plaza-map, plaza-board, nchan or node");
    if (O.port <= 0) die("--port is required");
    if (O.subs < 1 || O.channels < 1 || O.rate <= 0 || O.seconds <= 0) die("bad sizes");
    if (!O.procs) O.procs = (O.subs + LG_MAX_SOCKETS_PER_CHILD - 1) / LG_MAX_SOCKETS_PER_CHILD;
    if (O.procs > O.subs) O.procs = O.subs;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &len))
        die("cannot find a free port");
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

/* ---- children ------------------------------------------------------------------ */

static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    int per_child = (O.subs + O.procs - 1) / O.procs;
    if ((rlim_t)per_child + 64 > rl.rlim_cur)
        die("%d sockets per process but the fd limit is %llu: use more --procs", per_child,
            (unsigned long long)rl.rlim_cur);
}

static void spawn_children(void) {
    int fds[256][2];
    nkids = O.procs;
    if (nkids > 256) die("at most 256 processes");
    kids = calloc((size_t)nkids, sizeof(ctl));
    kid_pids = calloc((size_t)nkids, sizeof(pid_t));
    kid_fds = calloc((size_t)nkids, sizeof(int));
    if (!kids || !kid_pids || !kid_fds) die("out of memory");
    for (int i = 0; i < nkids; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i])) die("socketpair failed");
    for (int i = 0; i < nkids; i++) {
        int first = (int)((long)O.subs * i / nkids), last = (int)((long)O.subs * (i + 1) / nkids);
        int window = (O.ramp + nkids - 1) / nkids;
        pid_t pid = fork();
        if (pid < 0) die("fork failed");
        if (pid == 0) {
            for (int j = 0; j < nkids; j++) {
                close(fds[j][0]);
                if (j != i) close(fds[j][1]);
            }
            child_main(&O, AD, fds[i][1], first, last - first, window);
        }
        kid_pids[i] = pid;
    }
    for (int i = 0; i < nkids; i++) {
        close(fds[i][1]);
        kid_fds[i] = fds[i][0];
    }
}

static void on_kid_line(ctl *c, char *line) {
    free(c->reply);
    c->reply = line;
}

static int all_replied(void *arg) {
    (void)arg;
    for (int i = 0; i < nkids; i++)
        if (!kids[i].reply && !kids[i].eof) return 0;
    return 1;
}

/* Sends a command to every child and waits for each one's answer line. */
static void ask_all(const char *cmd, size_t n, uint64_t timeout_ms) {
    for (int i = 0; i < nkids; i++) {
        free(kids[i].reply);
        kids[i].reply = NULL;
        ctl_send(&kids[i], cmd, n);
    }
    if (!run_until(L, all_replied, NULL, timeout_ms)) die("subscriber processes did not answer");
    for (int i = 0; i < nkids; i++)
        if (!kids[i].reply) die("a subscriber process died");
}

/* Sends "<name> P1 .. PC": messages published so far, per channel. */
static void ask_with_pubs(const char *name) {
    lgbuf b = {0};
    const uint64_t *seq = pub_seqs(PUB);
    buf_printf(&b, "%s", name);
    for (int k = 0; k < O.channels; k++) buf_printf(&b, " %llu", (unsigned long long)seq[k]);
    buf_add(&b, "\n", 1);
    ask_all(b.p, b.len, 60000);
    buf_free(&b);
}

/* Sums the children's answers. */
static void gather(lg_counters *c, hist *lat, hist *hs) {
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < nkids; i++) {
        const char *r = kids[i].reply, *h;
        counters_decode_add(c, r);
        if (lat && (h = strstr(r, " lat=")) && hist_decode(lat, h + 5)) die("bad histogram");
        if (hs && (h = strstr(r, " hs=")) && hist_decode(hs, h + 4)) die("bad histogram");
    }
}

static void stop_children(void) {
    for (int i = 0; i < nkids; i++) ctl_send(&kids[i], "exit\n", 5);
    run_for(L, 20);
    for (int i = 0; i < nkids; i++) waitpid(kid_pids[i], NULL, 0);
}

/* ---- results ---------------------------------------------------------------- */

typedef struct connect_phase {
    lg_counters c;
    hist hs;
    double seconds;
    uint64_t srv_cpu_us, rss0_kb, rss1_kb, pss0_kb, pss1_kb;
} connect_phase;

typedef struct step {
    int n, pass;
    double rate, wall;
    lg_counters c;
    hist lat, rtt;
    uint64_t sent, ok, err, dropped, srv_cpu_us, srv_user_us, gen_cpu_us;
} step;

static connect_phase CP;

static double ms(uint64_t ns) { return (double)ns / 1e6; }
static double us(uint64_t ns) { return (double)ns / 1e3; }

static int64_t errors(const lg_counters *c) {
    return c->gaps + c->lost + c->dups + c->reorder + c->misrouted + c->bad_msg + c->disconnects;
}

static double per_conn(uint64_t kb0, uint64_t kb1) {
    int64_t d = (int64_t)kb1 - (int64_t)kb0;
    return CP.c.conn_ok ? (double)d * 1024.0 / (double)CP.c.conn_ok : 0;
}

static double rss_per_conn(void) { return per_conn(CP.rss0_kb, CP.rss1_kb); }
static double pss_per_conn(void) { return per_conn(CP.pss0_kb, CP.pss1_kb); }

static void print_connect_kv(lgbuf *b) {
    buf_printf(b, "server=%s scenario=%s label=%s subs=%d channels=%d procs=%d payload=%d "
               "subs_ok=%lld conn_fail=%lld sub_fail=%lld connect_s=%.3f handshakes_per_s=%.0f "
               "hs_p50_ms=%.2f hs_p99_ms=%.2f hs_max_ms=%.2f srv_cpu_us_per_conn=%.1f "
               "rss0_kb=%llu rss1_kb=%llu rss_per_conn_b=%.0f pss0_kb=%llu pss1_kb=%llu "
               "pss_per_conn_b=%.0f",
               O.server, O.scenario, O.label[0] ? O.label : "-", O.subs, O.channels, O.procs,
               O.payload, (long long)CP.c.conn_ok, (long long)CP.c.conn_fail,
               (long long)CP.c.sub_fail, CP.seconds,
               CP.seconds > 0 ? (double)CP.c.conn_ok / CP.seconds : 0,
               ms(hist_quantile(&CP.hs, 0.5)), ms(hist_quantile(&CP.hs, 0.99)), ms(CP.hs.max),
               CP.c.conn_ok ? (double)CP.srv_cpu_us / (double)CP.c.conn_ok : 0,
               (unsigned long long)CP.rss0_kb, (unsigned long long)CP.rss1_kb, rss_per_conn(),
               (unsigned long long)CP.pss0_kb, (unsigned long long)CP.pss1_kb, pss_per_conn());
}

static double per_msg(uint64_t cpu_us, const lg_counters *c) {
    return c->delivered ? (double)cpu_us / (double)c->delivered : 0;
}

static void print_step_kv(lgbuf *b, const step *s) {
    const lg_counters *c = &s->c;
    double pct = c->expected ? 100.0 * (double)c->delivered / (double)c->expected : 0;
    buf_printf(b, " step=%d pass=%d rate=%.1f seconds=%.1f pub_sent=%llu pub_ok=%llu pub_err=%llu "
               "pub_dropped=%llu pub_rtt_p50_us=%.0f pub_rtt_p99_us=%.0f delivered=%lld expected=%lld "
               "delivery_pct=%.3f deliveries_per_s=%.0f lat_p50_us=%.0f lat_p90_us=%.0f "
               "lat_p99_us=%.0f lat_p999_us=%.0f lat_max_us=%.0f gaps=%lld dups=%lld reorder=%lld "
               "misrouted=%lld bad_msg=%lld disconnects=%lld pings=%lld errors=%lld srv_cpu_pct=%.1f "
               "srv_cpu_us_per_msg=%.3f srv_user_us_per_msg=%.3f srv_sys_us_per_msg=%.3f "
               "gen_cpu_pct=%.1f",
               s->n, s->pass, s->rate, O.seconds, (unsigned long long)s->sent,
               (unsigned long long)s->ok, (unsigned long long)s->err,
               (unsigned long long)s->dropped, us(hist_quantile(&s->rtt, 0.5)),
               us(hist_quantile(&s->rtt, 0.99)), (long long)c->delivered, (long long)c->expected,
               pct, (double)c->delivered / O.seconds, us(hist_quantile(&s->lat, 0.5)),
               us(hist_quantile(&s->lat, 0.9)), us(hist_quantile(&s->lat, 0.99)),
               us(hist_quantile(&s->lat, 0.999)), us(s->lat.max), (long long)(c->gaps + c->lost),
               (long long)c->dups, (long long)c->reorder, (long long)c->misrouted,
               (long long)c->bad_msg, (long long)c->disconnects, (long long)c->pings,
               (long long)errors(c),
               100.0 * (double)s->srv_cpu_us / 1e6 / s->wall,
               per_msg(s->srv_cpu_us, c), per_msg(s->srv_user_us, c),
               per_msg(s->srv_cpu_us - s->srv_user_us, c),
               100.0 * (double)s->gen_cpu_us / 1e6 / s->wall);
}

static void emit(const step *s, int final, const step *best, int capped) {
    lgbuf b = {0};
    buf_printf(&b, "loadgen ");
    print_connect_kv(&b);
    if (s) print_step_kv(&b, s);
    else buf_printf(&b, " errors=%lld", (long long)errors(&CP.c));
    if (O.sweep && final)
        buf_printf(&b, " sweep_rate=%.1f sweep_deliveries_per_s=%.0f sweep_capped=%d",
                   best ? best->rate : 0, best ? (double)best->c.delivered / O.seconds : 0, capped);
    buf_printf(&b, " final=%d\n", final);
    fwrite(b.p, 1, b.len, stdout);
    fflush(stdout);
    buf_free(&b);
}

static void human_connect(void) {
    say("%s %s: %lld/%d subscribed in %.2f s (%.0f handshakes/s, p99 %.1f ms), "
        "%lld failed; server RSS %llu -> %llu kB = %.0f B/connection (PSS %.0f B)",
        O.server, O.scenario, (long long)CP.c.conn_ok, O.subs, CP.seconds,
        CP.seconds > 0 ? (double)CP.c.conn_ok / CP.seconds : 0, ms(hist_quantile(&CP.hs, 0.99)),
        (long long)(CP.c.conn_fail + CP.c.sub_fail), (unsigned long long)CP.rss0_kb,
        (unsigned long long)CP.rss1_kb, rss_per_conn(), pss_per_conn());
}

static void human_step(const step *s) {
    const lg_counters *c = &s->c;
    say("  %.1f msg/s x %.0f s: %lld/%lld delivered (%.2f%%), %.0f/s; latency p50 %.2f p90 %.2f "
        "p99 %.2f p99.9 %.2f max %.2f ms", s->rate, O.seconds, (long long)c->delivered,
        (long long)c->expected, c->expected ? 100.0 * (double)c->delivered / (double)c->expected : 0,
        (double)c->delivered / O.seconds, ms(hist_quantile(&s->lat, 0.5)),
        ms(hist_quantile(&s->lat, 0.9)), ms(hist_quantile(&s->lat, 0.99)),
        ms(hist_quantile(&s->lat, 0.999)), ms(s->lat.max));
    say("  server CPU %.0f%% = %.2f us/delivery (user %.2f, kernel %.2f); generator CPU %.0f%%; "
        "publishes %llu ok %llu "
        "failed %llu dropped; gaps %lld dups %lld reorder %lld disconnects %lld%s",
        100.0 * (double)s->srv_cpu_us / 1e6 / s->wall,
        per_msg(s->srv_cpu_us, c), per_msg(s->srv_user_us, c),
        per_msg(s->srv_cpu_us - s->srv_user_us, c),
        100.0 * (double)s->gen_cpu_us / 1e6 / s->wall, (unsigned long long)s->ok,
        (unsigned long long)s->err, (unsigned long long)s->dropped, (long long)(c->gaps + c->lost),
        (long long)c->dups, (long long)c->reorder, (long long)c->disconnects,
        O.sweep ? (s->pass ? "  [sustained]" : "  [broken]") : "");
}

/* ---- phases ------------------------------------------------------------------ */

static void connect_phase_run(void) {
    CP.rss0_kb = proc_rss_kb(O.pids, O.npids);
    CP.pss0_kb = proc_pss_kb(O.pids, O.npids);
    uint64_t cpu0 = proc_cpu_us(O.pids, O.npids), t0 = now_ns();
    ask_all("connect\n", 8, 3600000);
    CP.seconds = (double)(now_ns() - t0) / 1e9;
    CP.srv_cpu_us = proc_cpu_us(O.pids, O.npids) - cpu0;
    hist_reset(&CP.hs);
    gather(&CP.c, NULL, &CP.hs);
    run_for(L, (uint64_t)O.settle_ms);
    CP.rss1_kb = proc_rss_kb(O.pids, O.npids);
    CP.pss1_kb = proc_pss_kb(O.pids, O.npids);
    human_connect();
}

static int drained(void *arg) {
    (void)arg;
    ask_with_pubs("poll");
    lg_counters c;
    gather(&c, NULL, NULL);
    if (c.delivered >= c.expected) return 1;
    run_for(L, 50);
    return 0;
}

static int step_passes(const step *s) {
    double want = s->rate * O.seconds;
    return s->c.expected > 0 &&
           (double)s->c.delivered >= O.sweep_min_delivery * (double)s->c.expected &&
           ms(hist_quantile(&s->lat, 0.99)) <= O.sweep_max_p99_ms && s->err == 0 &&
           s->dropped == 0 && (double)s->sent >= 0.99 * want;
}

static void hook(const char *what, int n) {
    if (!O.hook) return;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s %d", O.hook, what, n);
    if (system(cmd) != 0) say("hook failed: %s", cmd);
}

static void run_step(step *s, int n, double rate) {
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->rate = rate;
    ask_with_pubs("reset");
    pub_reset_stats(PUB);
    hook("begin", n);
    proc_cpu cpu0 = proc_cpu_read(O.pids, O.npids);
    uint64_t self0 = self_cpu_us(), t0 = now_ns();
    pub_start(PUB, rate);
    run_for(L, (uint64_t)(O.seconds * 1000));
    pub_stop(PUB);
    run_until(L, pub_idle, PUB, (uint64_t)O.drain_ms);
    run_until(L, drained, NULL, (uint64_t)O.drain_ms);
    hook("end", n);
    s->wall = (double)(now_ns() - t0) / 1e9;
    proc_cpu cpu1 = proc_cpu_read(O.pids, O.npids);
    s->srv_user_us = cpu1.user_us - cpu0.user_us;
    s->srv_cpu_us = s->srv_user_us + cpu1.sys_us - cpu0.sys_us;
    uint64_t self = self_cpu_us() - self0;
    ask_with_pubs("report");
    gather(&s->c, &s->lat, NULL);
    s->gen_cpu_us = self + (uint64_t)s->c.cpu_us;
    pub_stats(PUB, &s->sent, &s->ok, &s->err, &s->dropped, &s->rtt);
    s->pass = step_passes(s);
}

static void publish_phase_run(void) {
    PUB = pub_new(L, &O, AD);
    if (!run_until(L, pub_connected, PUB, 10000)) die("publisher connections failed");
    step *cur = calloc(1, sizeof(step)), *best = calloc(1, sizeof(step));
    int have_best = 0, steps = O.sweep ? O.sweep_steps : 1;
    for (int i = 0; i < steps; i++) {
        run_step(cur, i, O.rate * pow(O.sweep_factor, i));
        human_step(cur);
        if (!O.sweep) { emit(cur, 1, NULL, 0); break; }
        emit(cur, 0, NULL, 0);
        if (!cur->pass) break;
        *best = *cur;
        have_best = 1;
    }
    if (O.sweep) {
        int capped = cur->pass;           /* never broke: the real limit is higher */
        emit(have_best ? best : cur, 1, have_best ? best : NULL, capped);
        say("  highest sustained rate: %s%.1f msg/s (%.0f deliveries/s)%s", capped ? ">= " : "",
            have_best ? best->rate : 0, have_best ? (double)best->c.delivered / O.seconds : 0,
            capped ? ", the last step allowed (--sweep-steps)" : "");
    }
    free(cur);
    free(best);
}

static void on_tick(uv_timer_t *t) { (void)t; }

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--free-port")) return free_port();
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    spawn_children();
    L = uv_default_loop();
    uv_timer_t tick;                      /* wakes run_until() every 10 ms */
    uv_timer_init(L, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    for (int i = 0; i < nkids; i++) ctl_open(&kids[i], L, kid_fds[i], on_kid_line);
    connect_phase_run();
    if (O.publish) publish_phase_run();
    else emit(NULL, 1, NULL, 0);
    stop_children();
    return 0;
}
