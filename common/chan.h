/*
 * chan.h: a non-blocking message channel over one SOCK_SEQPACKET socket,
 * with a bounded output queue (DESIGN.md §2.1, "Worker sockets are
 * non-blocking"). Messages use the record format of msg.h, so a chan talks
 * to a peer using msg_send/msg_recv as well as to another chan.
 *
 * Threads: a chan is owned by one thread (the loop that polls its socket);
 * none of these functions may be called on the same chan from two threads.
 *
 * Never blocks: chan_send writes at once when the socket has room and queues
 * the record otherwise; the owner then watches EPOLLOUT while
 * chan_wants_write() and calls chan_flush when it fires. The queue is
 * bounded (max_out_bytes); a send that would exceed it fails with ENOBUFS
 * and the owner treats the peer as hung. chan_stalled_ms tells how long a
 * non-empty queue has made no progress, for the same verdict by deadline.
 *
 * Read budget: chan_recv reads at most one message per call and the channel
 * never drains a socket by itself; the owner calls it at most N times per
 * readiness event (level-triggered epoll reports the socket again), so one
 * chatty peer cannot starve the others.
 *
 * Clock: chan_flush and chan_stalled_ms take now_ms from the caller;
 * chan_send, which has no such argument, reads the chan's clock
 * (CLOCK_MONOTONIC in ms unless chan_set_clock replaced it, as tests do).
 * Both must be the same clock.
 */
#ifndef WF_CHAN_H
#define WF_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

struct chan;

struct chan_limits {
    size_t max_msg_bytes; /* largest message sent or received; 0: msg_max_bytes() */
    size_t max_out_bytes; /* output queue cap (record bytes plus memfd payloads);
                             0: 2 * max_msg_bytes + 1 MiB */
};

/* Totals since chan_new, for metrics. Bytes are wire bytes: records plus
 * memfd payloads. */
struct chan_counters {
    uint64_t msgs_out;  /* messages written to the socket */
    uint64_t bytes_out; /* their bytes */
    uint64_t msgs_in;   /* messages received and decoded */
    uint64_t bytes_in;  /* their bytes */
};

typedef int64_t (*chan_clock_fn)(void);

/*
 * A channel on fd, which it takes over: sets O_NONBLOCK and closes fd in
 * chan_free. lim may be NULL (all defaults). Returns the chan (caller frees
 * with chan_free), or NULL with errno set, in which case fd is left as it
 * was and still the caller's.
 */
struct chan *chan_new(int fd, const struct chan_limits *lim) __attribute__((warn_unused_result));

/* Closes the socket and every descriptor still queued, frees everything
 * queued. NULL is fine. */
void chan_free(struct chan *ch);

int chan_fd(const struct chan *ch);

/* Replaces the clock chan_send reads (NULL: CLOCK_MONOTONIC in ms). */
void chan_set_clock(struct chan *ch, chan_clock_fn clock);

/*
 * Sends msg (not consumed) and, if pass_fd >= 0, that descriptor: the
 * caller keeps its own; if the record has to wait in the queue, the chan
 * holds a close-on-exec duplicate until it is sent. Encodes at once, writes
 * right away if nothing is queued before it, else queues it and flushes.
 * Returns 0 (sent or queued), or -1 with errno: EMSGSIZE (message over
 * max_msg_bytes), ENOBUFS (the queue would exceed max_out_bytes: the peer is
 * not reading), EPIPE, ECONNRESET or another write error (the peer is gone;
 * the chan is dead from then on), ENOMEM or EMFILE. Nothing is queued on
 * failure.
 */
int chan_send(struct chan *ch, const cJSON *msg, int pass_fd) __attribute__((warn_unused_result));

/*
 * Writes queued records until the queue is empty or the socket is full.
 * Returns 0 when the queue is empty, 1 when records remain (watch EPOLLOUT),
 * -1 on a write error with errno set (the peer is gone; the queue is dropped,
 * and every later send or flush fails the same way).
 */
int chan_flush(struct chan *ch, int64_t now_ms) __attribute__((warn_unused_result));

/* 1 if records wait in the queue (watch EPOLLOUT), else 0. */
int chan_wants_write(const struct chan *ch);

/* Queued wire bytes and messages. */
size_t chan_queued_bytes(const struct chan *ch);
size_t chan_queued_msgs(const struct chan *ch);

/* 0 when the queue is empty; otherwise the ms since the queue last made
 * progress (a record written) or became non-empty, whichever is later. */
int64_t chan_stalled_ms(const struct chan *ch, int64_t now_ms);

/*
 * Receives one message without blocking, as msg_recv does but with the
 * chan's max_msg_bytes: 1 with *out (caller deletes) and *fd (a passed
 * descriptor or -1; caller closes; fd may be NULL to close it); 0 at end of
 * file; -1 with errno EAGAIN (nothing waiting), EBADMSG (malformed or
 * truncated record: a protocol error), EMSGSIZE (over the limit), or a read
 * error.
 */
int chan_recv(struct chan *ch, cJSON **out, int *fd) __attribute__((warn_unused_result));

/* Copies the chan's counters into *out. */
void chan_get_counters(const struct chan *ch, struct chan_counters *out);

#endif
