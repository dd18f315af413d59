/* send_floor: what the kernel alone charges a server for one small send to
 * each of N loopback TCP sockets, with no server around it. It bounds from
 * below the CPU per delivered message any server can reach when each
 * subscriber gets one message per send (the fan-out scenario's rate).
 *
 *   send_floor [--conns N] [--rounds R] [--size B] [--gap-ms G]
 *
 * A child process connects N sockets and reads everything with epoll, as a
 * subscriber would; the parent sends one B-byte message to every socket per
 * round (a "publication"), sleeps G ms, and repeats. Each round is done three
 * ways, alternating so that the machine's noise hits all alike:
 *   write    one write() per socket (libuv's way, one system call each);
 *   uring    one io_uring send per socket, all submitted in one call;
 * and reports the parent's CPU (user + system, from getrusage) per send.
 * On loopback the sender is also charged for the receiver's TCP processing
 * (it runs in the sender's softirq), as it is in bench/compare's runs.
 *
 * Needs N + a few open files in each process (ulimit -n). */

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MODE_WRITE, MODE_URING, NMODES };
static const char *MODE_NAMES[NMODES] = {"write", "uring"};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static double cpu_us(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 +
           r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

/* The subscribers: connect n sockets, then read until the parent's end. */
static void reader(struct sockaddr_in *addr, int n, int ready_fd) {
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)addr, sizeof(*addr)) != 0)
            die("reader connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) != 0) die("epoll_ctl");
    }
    if (write(ready_fd, "r", 1) != 1) die("ready");
    static char buf[65536];
    struct epoll_event evs[512];
    int open_socks = n;
    while (open_socks > 0) {
        int k = epoll_wait(ep, evs, 512, -1);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) die("epoll_wait");
        for (int i = 0; i < k; i++) {
            ssize_t r = read(evs[i].data.fd, buf, sizeof(buf));
            if (r == 0) { close(evs[i].data.fd); open_socks--; }
        }
    }
    _exit(0);
}

static void round_write(const int *fd, int n, const char *msg, size_t len) {
    for (int i = 0; i < n; i++)
        if (write(fd[i], msg, len) != (ssize_t)len) die("write");
}

static void round_uring(struct io_uring *ring, unsigned depth, const int *fd,
                        int n, const char *msg, size_t len) {
    int i = 0;
    while (i < n) {
        unsigned batch = 0;
        for (; i < n && batch < depth; i++, batch++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            io_uring_prep_send(sqe, fd[i], msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        if (io_uring_submit_and_wait(ring, batch) < 0) die("io_uring_submit");
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe) {
            if (cqe->res != (int)len) {
                fprintf(stderr, "send: %d\n", cqe->res);
                exit(1);
            }
            seen++;
        }
        io_uring_cq_advance(ring, seen);
    }
}

int main(int argc, char **argv) {
    int n = 5000, rounds = 100, gap_ms = 50;
    size_t size = 100;
    for (int i = 1; i < argc; i += 2) {   /* options come in pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "%s needs a value\n", a); return 2; }
        if (!strcmp(a, "--conns")) n = atoi(v);
        else if (!strcmp(a, "--rounds")) rounds = atoi(v);
        else if (!strcmp(a, "--size")) size = (size_t)atol(v);
        else if (!strcmp(a, "--gap-ms")) gap_ms = atoi(v);
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
    }
    if (n < 1 || rounds < 1 || size < 1 || size > 65536 || gap_ms < 0) {
        fprintf(stderr, "bad option value\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(ls, 4096) != 0 || getsockname(ls, (struct sockaddr *)&addr, &alen) != 0)
        die("listen");
    int ready[2];
    if (pipe(ready) != 0) die("pipe");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) { close(ls); reader(&addr, n, ready[1]); }

    int *fd = malloc(sizeof(int) * (size_t)n);
    if (!fd) die("malloc");
    for (int i = 0; i < n; i++) {
        if ((fd[i] = accept(ls, NULL, NULL)) < 0) die("accept");
        int one = 1;
        setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    char r;
    if (read(ready[0], &r, 1) != 1) die("ready");

    unsigned depth = 1024;
    struct io_uring ring;
    int have_uring = io_uring_queue_init(depth, &ring, 0) == 0;
    if (!have_uring) fprintf(stderr, "send_floor: io_uring unavailable, write only\n");

    char *msg = malloc(size);
    if (!msg) die("malloc");
    memset(msg, 'x', size);
    double spent[NMODES] = {0};
    long sends[NMODES] = {0};
    struct timespec gap = {gap_ms / 1000, (long)(gap_ms % 1000) * 1000000L};
    for (int k = 0; k < rounds; k++) {
        for (int m = 0; m < NMODES; m++) {
            if (m == MODE_URING && !have_uring) continue;
            double t0 = cpu_us();
            if (m == MODE_WRITE) round_write(fd, n, msg, size);
            else round_uring(&ring, depth, fd, n, msg, size);
            spent[m] += cpu_us() - t0;
            sends[m] += n;
            if (gap_ms) nanosleep(&gap, NULL);
        }
    }
    for (int i = 0; i < n; i++) close(fd[i]);
    int status;
    waitpid(child, &status, 0);
    printf("send_floor: %d loopback sockets, %zu-byte sends, %d rounds, %d ms apart\n",
           n, size, rounds, gap_ms);
    for (int m = 0; m < NMODES; m++)
        if (sends[m])
            printf("  %-6s %.2f us of sender CPU per send\n", MODE_NAMES[m],
                   spent[m] / (double)sends[m]);
    return 0;
}
