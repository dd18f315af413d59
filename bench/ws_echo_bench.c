/* ws_echo_bench: measures a WebSocket echo server (Plaza with --debug-echo)
 * from the outside.
 *
 *   echo mode: N connections each keep W messages of S bytes in flight and
 *     send a new one for every echo; reports echoed frames per second.
 *   idle mode (--idle): opens N connections, waits, and reports the server's
 *     resident memory per connection from /proc/PID/status (--pid).
 *
 * Source addresses are spread over 127.0.0.1..127.0.0.250 so more than one
 * address's worth of ephemeral ports can be used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct bconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    int upgraded;
    size_t hdr_seen;
    uint8_t *buf;             /* unparsed server bytes */
    size_t len, cap;
} bconn;

static struct {
    int port, conns, window, size, seconds, idle, pid;
    uv_loop_t *loop;
    uint8_t *frame;           /* one masked client frame, reused */
    size_t frame_len;
    long connected, failed, echoed;
    int measuring;
    uint64_t t0;
} B;

static const char UPGRADE[] =
    "GET /connection/websocket HTTP/1.1\r\nHost: localhost\r\n"
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

static void on_write(uv_write_t *w, int status) { (void)status; free(w); }

static void send_bytes(bconn *c, const void *data, size_t len) {
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write)) free(w);
}

static void build_frame(void) {
    size_t n = (size_t)B.size, h = n < 126 ? 6 : n < 65536 ? 8 : 14;
    B.frame = malloc(h + n);
    B.frame[0] = 0x82;
    if (n < 126) B.frame[1] = (uint8_t)(0x80 | n);
    else if (n < 65536) { B.frame[1] = 0x80 | 126; B.frame[2] = (uint8_t)(n >> 8); B.frame[3] = (uint8_t)n; }
    else { B.frame[1] = 0x80 | 127; for (int i = 0; i < 8; i++) B.frame[2 + i] = (uint8_t)(n >> (56 - 8 * i)); }
    memset(B.frame + h - 4, 0, 4);      /* zero mask key: payload as is */
    memset(B.frame + h, 'x', n);
    B.frame_len = h + n;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)h; (void)hint;
    static char slab[65536];
    buf->base = slab;
    buf->len = sizeof(slab);
}

/* Counts complete server frames in c->buf and keeps the remainder. */
static long consume_frames(bconn *c) {
    long n = 0;
    size_t off = 0;
    while (c->len - off >= 2) {
        uint8_t *p = c->buf + off;
        size_t pl = p[1] & 0x7f, h = 2;
        if (pl == 126) { if (c->len - off < 4) break; pl = (size_t)p[2] << 8 | p[3]; h = 4; }
        else if (pl == 127) { if (c->len - off < 10) break; pl = 0; for (int i = 0; i < 8; i++) pl = pl << 8 | p[2 + i]; h = 10; }
        if (c->len - off < h + pl) break;
        off += h + pl;
        n++;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return n;
}

static void append(bconn *c, const char *data, size_t n) {
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
}

static void on_write_free(uv_write_t *w, int status) {
    (void)status;
    free(w->data);
    free(w);
}

/* Sends n copies of the frame in one write. */
static void send_frames(bconn *c, long n) {
    if (n <= 0) return;
    uint8_t *data = malloc((size_t)n * B.frame_len);
    for (long i = 0; i < n; i++) memcpy(data + (size_t)i * B.frame_len, B.frame, B.frame_len);
    uv_write_t *w = malloc(sizeof(*w));
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)((size_t)n * B.frame_len));
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write_free)) { free(data); free(w); }
}

static void start_sending(bconn *c) { send_frames(c, B.window); }

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    bconn *c = s->data;
    if (n < 0) { B.failed++; uv_close((uv_handle_t *)s, NULL); return; }
    append(c, buf->base, (size_t)n);
    if (!c->upgraded) {
        uint8_t *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return;
        if (memcmp(c->buf, "HTTP/1.1 101", 12) != 0) { B.failed++; uv_close((uv_handle_t *)s, NULL); return; }
        size_t hl = (size_t)(end - c->buf) + 4;
        memmove(c->buf, c->buf + hl, c->len - hl);
        c->len -= hl;
        c->upgraded = 1;
        B.connected++;
        if (!B.idle) start_sending(c);
    }
    long got = consume_frames(c);
    if (B.measuring) B.echoed += got;
    if (!B.idle) send_frames(c, got);
}

static void on_connect(uv_connect_t *req, int status) {
    bconn *c = req->data;
    if (status) { B.failed++; uv_close((uv_handle_t *)&c->tcp, NULL); return; }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_bytes(c, UPGRADE, sizeof(UPGRADE) - 1);
}

static long rss_kb(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static void connect_all(void) {
    struct sockaddr_in dst;
    uv_ip4_addr("127.0.0.1", B.port, &dst);
    for (int i = 0; i < B.conns; i++) {
        bconn *c = calloc(1, sizeof(*c));
        uv_tcp_init(B.loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        char src[32];
        snprintf(src, sizeof(src), "127.0.0.%d", 1 + (i / 20000) % 250);
        struct sockaddr_in sa;
        uv_ip4_addr(src, 0, &sa);
        uv_tcp_bind(&c->tcp, (struct sockaddr *)&sa, 0);
        uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst, on_connect);
        if (i % 500 == 499) uv_run(B.loop, UV_RUN_NOWAIT);
    }
}

static void run_for(uint64_t ms) {
    uint64_t end = uv_now(B.loop) + ms;
    while (uv_now(B.loop) < end) { uv_run(B.loop, UV_RUN_ONCE); uv_update_time(B.loop); }
}

static void wait_connected(void) {
    uint64_t end = uv_now(B.loop) + 60000;
    while (B.connected + B.failed < B.conns && uv_now(B.loop) < end)
        uv_run(B.loop, UV_RUN_ONCE);
}

static int usage(void) {
    fprintf(stderr, "usage: ws_echo_bench --port P [--conns N] [--window W] [--size S]\n"
                    "                      [--seconds D] [--idle --pid PID]\n");
    return 2;
}

int main(int argc, char **argv) {
    B.conns = 50; B.window = 16; B.size = 64; B.seconds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--idle")) { B.idle = 1; continue; }
        if (i + 1 >= argc) return usage();
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--port")) B.port = v;
        else if (!strcmp(argv[i], "--conns")) B.conns = v;
        else if (!strcmp(argv[i], "--window")) B.window = v;
        else if (!strcmp(argv[i], "--size")) B.size = v;
        else if (!strcmp(argv[i], "--seconds")) B.seconds = v;
        else if (!strcmp(argv[i], "--pid")) B.pid = v;
        else return usage();
        i++;
    }
    if (!B.port || (B.idle && !B.pid)) return usage();
    B.loop = uv_default_loop();
    build_frame();
    long rss0 = B.idle ? rss_kb(B.pid) : 0;
    connect_all();
    wait_connected();
    if (B.idle) {
        run_for(2000);
        long rss1 = rss_kb(B.pid);
        printf("idle: %ld connections (%ld failed), server RSS %ld kB -> %ld kB, %.0f bytes/connection\n",
               B.connected, B.failed, rss0, rss1,
               (double)(rss1 - rss0) * 1024.0 / (double)(B.connected ? B.connected : 1));
        return B.failed ? 1 : 0;
    }
    run_for(1000);                      /* warm-up */
    B.measuring = 1;
    uint64_t t0 = uv_hrtime();
    run_for((uint64_t)B.seconds * 1000);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("echo: %d connections x %d in flight, %d-byte messages: %.0f echoes/s (%ld failed)\n",
           B.conns, B.window, B.size, (double)B.echoed / secs, B.failed);
    return B.failed ? 1 : 0;
}
