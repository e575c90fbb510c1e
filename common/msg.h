/*
 * msg.h: the framed messages between roles (manager, core, workers).
 *
 * Every channel is a SOCK_SEQPACKET socketpair, so one send is one message and
 * boundaries survive. A message is one compact JSON object of at most
 * MSG_MAX_BYTES, optionally carrying one file descriptor (SCM_RIGHTS).
 * Sends block (bounded by the socket's SO_SNDTIMEO, set by msg_socketpair);
 * receives never block.
 */
#ifndef WF_MSG_H
#define WF_MSG_H

#include <cJSON.h>

#define MSG_MAX_BYTES (256 * 1024)

/* Creates a close-on-exec SEQPACKET socketpair with a 2 s send timeout on
 * both ends. Returns 0, or -1 with errno set. */
int msg_socketpair(int sv[2]) __attribute__((warn_unused_result));

/* Sends msg (not consumed) and, if pass_fd >= 0, that descriptor (still owned
 * by the caller, who may close it after). Returns 0, or -1 with errno set. */
int msg_send(int fd, const cJSON *msg, int pass_fd) __attribute__((warn_unused_result));

/*
 * Receives one message without blocking. Returns 1 with *out a new cJSON
 * object (caller deletes) and *recv_fd a received close-on-exec descriptor or
 * -1 (caller closes); 0 on end of file (peer gone); -1 with errno set on
 * error, EAGAIN when nothing is waiting, EBADMSG when the payload is not a
 * JSON object (any passed descriptor is closed). recv_fd may be NULL, in which
 * case a passed descriptor is closed.
 */
int msg_recv(int fd, cJSON **out, int *recv_fd) __attribute__((warn_unused_result));

#endif
