/*
 * msg.h: the framed messages between roles (manager, core, workers).
 *
 * Every channel is a SOCK_SEQPACKET socketpair, so one send is one record and
 * boundaries survive. A message is one JSON object; the record that carries
 * it starts with an 8-byte header:
 *
 *   'W' 'F' version(1) flags  uint32 length (host byte order)
 *
 * where length is the size of the compact JSON text. Limits, as enforced:
 *
 *   - text of at most MSG_INLINE_MAX (64 KiB) follows the header in the same
 *     record (so no record exceeds MSG_REC_MAX, well under the socket's send
 *     buffer);
 *   - longer text travels in a sealed memfd (MSG_F_MEMFD), the record's first
 *     SCM_RIGHTS descriptor, and the record is the header alone;
 *   - no message is larger than the process-wide maximum, msg_max_bytes()
 *     (MSG_DEFAULT_MAX_BYTES, 16 MiB, unless msg_set_max_bytes changed it),
 *     or the smaller limit a caller passes: both sender and receiver refuse
 *     it with EMSGSIZE;
 *   - a message may carry one caller descriptor (MSG_F_FD), the record's last
 *     SCM_RIGHTS descriptor.
 *
 * A record that breaks any of these rules, or that the kernel truncated, is a
 * protocol error (EBADMSG), never end of file. msg_encode/msg_decode are the
 * pure format layer; msg_send/msg_recv use it on a socket, and chan.h builds
 * the non-blocking channel on the same layer.
 */
#ifndef WF_MSG_H
#define WF_MSG_H

#include <stddef.h>

#include <cJSON.h>

#define MSG_HDR_LEN 8
#define MSG_VERSION 1
#define MSG_INLINE_MAX (64 * 1024)
#define MSG_REC_MAX (MSG_HDR_LEN + MSG_INLINE_MAX)
#define MSG_DEFAULT_MAX_BYTES (16 * 1024 * 1024)
#define MSG_MAX_MAX_BYTES (1024 * 1024 * 1024) /* msg_set_max_bytes clamps to this */

#define MSG_F_MEMFD 0x01 /* the text is in a sealed memfd, the first descriptor */
#define MSG_F_FD 0x02    /* one caller descriptor rides along, the last descriptor */

/* Sets the process-wide maximum message size (JSON text bytes); 0 restores
 * MSG_DEFAULT_MAX_BYTES and values above MSG_MAX_MAX_BYTES are clamped. Set
 * it once at start (from the configuration); reading it is safe from any
 * thread. */
void msg_set_max_bytes(size_t max);
size_t msg_max_bytes(void);

/*
 * One encoded message, ready to send. Owns buf (malloc'ed: the header
 * followed by the inline text, len bytes in all) and memfd (the sealed
 * payload holding memfd_len bytes; -1 and 0 without one). Free with
 * msg_rec_free.
 */
struct msg_rec {
    unsigned char *buf; /* header + inline text */
    size_t len;         /* bytes in buf */
    int memfd;          /* sealed payload, or -1 */
    size_t memfd_len;   /* bytes in memfd, 0 without one */
};

/*
 * Serializes msg (not consumed; must be an object) into *out: inline up to
 * MSG_INLINE_MAX bytes of text, in a sealed memfd beyond. max is the largest
 * text accepted (0: msg_max_bytes()). Returns 0, or -1 with errno EMSGSIZE
 * (text over max, or a tree cJSON cannot print), EINVAL (not an object),
 * ENOMEM, or the errno of the memfd call that failed; *out is then left
 * empty (buf NULL, memfd -1) and nothing leaks.
 */
int msg_encode(const cJSON *msg, size_t max, struct msg_rec *out)
    __attribute__((warn_unused_result));

/* Frees rec's buffer, closes its memfd and leaves it empty; safe to call on
 * an empty record or twice. */
void msg_rec_free(struct msg_rec *rec);

/* The wire size of rec: record bytes plus memfd payload, what the queues
 * and counters account. */
size_t msg_rec_size(const struct msg_rec *rec);

/*
 * Sends rec as one record on sock with sendmsg(flags | MSG_NOSIGNAL), its
 * memfd first and pass_fd (if >= 0, still owned by the caller) last; sets or
 * clears MSG_F_FD in rec's header to match. Retries EINTR. Returns 0, or -1
 * with errno from sendmsg (EAGAIN with a full non-blocking socket, EPIPE or
 * ECONNRESET when the peer is gone).
 */
int msg_rec_send(int sock, struct msg_rec *rec, int pass_fd, int flags)
    __attribute__((warn_unused_result));

/*
 * Decodes one received record: rec[0..n-1] with the descriptors fds[0..nfds-1]
 * that came with it. max is the largest text accepted (0: msg_max_bytes()).
 * Checks the header, that the descriptors match the flags exactly and, for a
 * memfd payload, that it is sealed against writes, shrinking and growing and
 * holds exactly the header's length; then parses the text, which must be a
 * JSON object. Returns 0 with *out a new cJSON object (caller deletes) and
 * *user_fd the passed descriptor or -1 (caller closes; if user_fd is NULL it
 * is closed here). Returns -1 with errno EBADMSG (malformed: a protocol
 * error; also when mapping or parsing ran out of memory, as the message is
 * lost either way) or EMSGSIZE (over max), *out and *user_fd untouched.
 * Always consumes fds: each is handed out or closed.
 */
int msg_decode(const char *rec, size_t n, const int *fds, size_t nfds, size_t max, cJSON **out,
               int *user_fd) __attribute__((warn_unused_result));

/*
 * Receives and decodes one record from sock without blocking (MSG_DONTWAIT),
 * descriptors close-on-exec. Results as msg_recv, with max as in msg_decode;
 * if wire is not NULL, *wire is set to the message's wire size on success.
 */
int msg_recv_max(int sock, size_t max, cJSON **out, int *recv_fd, size_t *wire)
    __attribute__((warn_unused_result));

/* Creates a close-on-exec SEQPACKET socketpair with a 2 s send timeout on
 * both ends. Returns 0, or -1 with errno set. */
int msg_socketpair(int sv[2]) __attribute__((warn_unused_result));

/* Sends msg (not consumed) and, if pass_fd >= 0, that descriptor (still owned
 * by the caller, who may close it after). Blocks while the socket is full, up
 * to its SO_SNDTIMEO. Returns 0, or -1 with errno set (EMSGSIZE over
 * msg_max_bytes(), EAGAIN on timeout, EPIPE when the peer is gone). */
int msg_send(int fd, const cJSON *msg, int pass_fd) __attribute__((warn_unused_result));

/*
 * Receives one message without blocking. Returns 1 with *out a new cJSON
 * object (caller deletes) and *recv_fd a received close-on-exec descriptor or
 * -1 (caller closes); 0 on end of file (a zero-length read with no
 * descriptor: the peer is gone); -1 with errno set on error: EAGAIN when
 * nothing is waiting, EBADMSG for a malformed or truncated record (a
 * protocol error, not end of file), EMSGSIZE for a message over
 * msg_max_bytes(), others from recvmsg. Any descriptor of a refused record is
 * closed. recv_fd may be NULL, in which case a passed descriptor is closed.
 */
int msg_recv(int fd, cJSON **out, int *recv_fd) __attribute__((warn_unused_result));

#endif
