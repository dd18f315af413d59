/* send_ring: batched nonblocking socket sends over io_uring (see
 * send_ring.h for why). One ring per worker thread, used only by it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <liburing.h>
#include "net/send_ring.h"

#define IOV_PER_SEND 4   /* average the iovec pool is sized for */

typedef struct slot {
    struct msghdr msg;
    void *ud;
    size_t len;
    int done;
} slot;

struct send_ring {
    struct io_uring ring;
    unsigned depth;
    unsigned used;            /* slots queued since the last submit */
    slot *slots;
    struct iovec *iov;
    unsigned iov_cap, iov_used;
    int broken;               /* the kernel failed the ring: not used again */
};

static int supports_send(struct io_uring *ring) {
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    if (!p) return 0;
    int ok = io_uring_opcode_supported(p, IORING_OP_SENDMSG) &&
             io_uring_opcode_supported(p, IORING_OP_SEND);
    io_uring_free_probe(p);
    return ok;
}

send_ring *send_ring_new(unsigned depth) {
    send_ring *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->depth = depth;
    r->iov_cap = depth * IOV_PER_SEND;
    r->slots = calloc(depth, sizeof(*r->slots));
    r->iov = calloc(r->iov_cap, sizeof(*r->iov));
    if (!r->slots || !r->iov) goto fail;
    /* SUBMIT_ALL (Linux 5.18): one bad entry does not stop the submission
     * of the rest. Older kernels stop there; send_ring_submit() then goes
     * on submitting what is left, so the flag only saves system calls. */
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SUBMIT_ALL;
    if (io_uring_queue_init_params(depth, &r->ring, &p) != 0) {
        memset(&p, 0, sizeof(p));
        if (io_uring_queue_init_params(depth, &r->ring, &p) != 0) goto fail;
    }
    if (!supports_send(&r->ring)) {
        io_uring_queue_exit(&r->ring);
        goto fail;
    }
    return r;
fail:
    free(r->slots);
    free(r->iov);
    free(r);
    return NULL;
}

void send_ring_free(send_ring *r) {
    if (!r) return;
    if (!r->broken) io_uring_queue_exit(&r->ring);
    free(r->slots);
    free(r->iov);
    free(r);
}

unsigned send_ring_pending(const send_ring *r) { return r->used; }

int send_ring_add(send_ring *r, int fd, const struct iovec *iov, unsigned n,
                  void *ud) {
    if (r->broken || r->used == r->depth || r->iov_used + n > r->iov_cap) return -1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -1;
    unsigned idx = r->used++;
    slot *s = &r->slots[idx];
    struct iovec *dst = r->iov + r->iov_used;
    memcpy(dst, iov, n * sizeof(*iov));
    r->iov_used += n;
    memset(&s->msg, 0, sizeof(s->msg));
    s->msg.msg_iov = dst;
    s->msg.msg_iovlen = n;
    s->ud = ud;
    s->len = 0;
    s->done = 0;
    for (unsigned i = 0; i < n; i++) s->len += iov[i].iov_len;
    if (n == 1)   /* the common case: plain send, no msghdr to import */
        io_uring_prep_send(sqe, fd, dst->iov_base, dst->iov_len,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    else
        io_uring_prep_sendmsg(sqe, fd, &s->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, idx);
    return 0;
}

/* Hands every posted completion to done(); returns how many. */
static unsigned reap(send_ring *r, send_ring_done_fn done) {
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&r->ring, head, cqe) {
        slot *s = &r->slots[io_uring_cqe_get_data64(cqe)];
        s->done = 1;
        done(s->ud, cqe->res, s->len);
        seen++;
    }
    io_uring_cq_advance(&r->ring, seen);
    return seen;
}

/* The ring itself failed (not one send): tear it down, which waits for
 * whatever the kernel still holds, and hand every unfinished send back
 * unsent so that the caller writes it the ordinary way. */
static void give_up(send_ring *r, send_ring_done_fn done) {
    reap(r, done);
    io_uring_queue_exit(&r->ring);
    r->broken = 1;
    for (unsigned i = 0; i < r->used; i++)
        if (!r->slots[i].done) done(r->slots[i].ud, -ECANCELED, r->slots[i].len);
}

unsigned send_ring_submit(send_ring *r, send_ring_done_fn done) {
    unsigned want = r->used, got = 0;
    while (got < want) {
        int rc = io_uring_submit_and_wait(&r->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            give_up(r, done);
            break;
        }
        got += reap(r, done);
    }
    r->used = 0;
    r->iov_used = 0;
    return got;
}

int send_ring_broken(const send_ring *r) { return r->broken; }
