/* send_ring: many nonblocking socket writes handed to the kernel in one
 * system call, through io_uring (liburing).
 *
 * Why not libuv: libuv writes each stream with its own writev(), so a
 * publication fanned out to N sockets costs N system calls. bench/ measured
 * the kernel entry and exit as about 40% of the server's CPU per delivery
 * on the development VM (7.8 -> 4.8 us per 100-byte loopback send, 5,000
 * sockets); batching them through one io_uring_enter() removes that share.
 *
 * Every send is issued with MSG_DONTWAIT: it either takes what the socket
 * buffer has room for or completes with -EAGAIN, like write() on a
 * nonblocking socket, and never waits in the kernel. send_ring_submit()
 * returns once every queued send has completed, so the buffers passed to
 * send_ring_add() only need to live until then. */
#ifndef PLAZA_SEND_RING_H
#define PLAZA_SEND_RING_H

#include <stddef.h>
#include <sys/uio.h>

typedef struct send_ring send_ring;

/* res: bytes written, or -errno (-EAGAIN: the socket buffer was full);
 * len: the bytes that were asked for. */
typedef void (*send_ring_done_fn)(void *ud, int res, size_t len);

/* A ring of depth sends (a power of two). NULL if the kernel refuses
 * io_uring or lacks the send operation (callers then write one by one). */
send_ring *send_ring_new(unsigned depth);
void send_ring_free(send_ring *r);

/* Queues a send of iov[0..n) to fd (the iovec array is copied, the bytes
 * are not). Returns 0, or -1 if the ring is full: submit, then add again. */
int send_ring_add(send_ring *r, int fd, const struct iovec *iov, unsigned n,
                  void *ud);

/* Number of sends queued and not yet submitted. */
unsigned send_ring_pending(const send_ring *r);

/* Issues every queued send and calls done() for each, in completion order,
 * before returning. Returns the number of completions. If the ring itself
 * fails, the sends not done complete with -ECANCELED (nothing was written)
 * and the ring is broken from then on. */
unsigned send_ring_submit(send_ring *r, send_ring_done_fn done);

/* 1 once the ring failed; the caller frees it and writes one by one. */
int send_ring_broken(const send_ring *r);

#endif
