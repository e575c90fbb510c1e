/*
 * msg.c: SOCK_SEQPACKET framing with optional SCM_RIGHTS, see msg.h.
 *
 * Invariant: a descriptor received here is either handed to the caller or
 * closed before returning; none leaks on an error path.
 */
#include "msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int msg_socketpair(int sv[2])
{
    struct timeval tv = {2, 0};

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (setsockopt(sv[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
            int saved = errno;
            close(sv[0]);
            close(sv[1]);
            errno = saved;
            return -1;
        }
    }
    return 0;
}

int msg_send(int fd, const cJSON *msg, int pass_fd)
{
    char *text = cJSON_PrintUnformatted(msg);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov;
    struct msghdr mh;
    size_t len;
    ssize_t n;

    if (text == NULL) {
        errno = ENOMEM;
        return -1;
    }
    len = strlen(text);
    if (len > MSG_MAX_BYTES) {
        free(text);
        errno = EMSGSIZE;
        return -1;
    }
    memset(&mh, 0, sizeof(mh));
    iov.iov_base = text;
    iov.iov_len = len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    do {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    free(text);
    if (n < 0)
        return -1;
    return 0;
}

int msg_recv(int fd, cJSON **out, int *recv_fd)
{
    static __thread char buf[MSG_MAX_BYTES + 1];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct iovec iov = {buf, MSG_MAX_BYTES};
    struct msghdr mh;
    int got_fd = -1;
    ssize_t n;
    cJSON *json;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    do {
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfds; i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (got_fd < 0)
                got_fd = f;
            else
                close(f); /* one descriptor per message; extras are dropped */
        }
    }
    if (n == 0 && got_fd < 0)
        return 0;
    if ((mh.msg_flags & MSG_TRUNC) != 0) {
        if (got_fd >= 0)
            close(got_fd);
        errno = EMSGSIZE;
        return -1;
    }
    buf[n] = '\0';
    json = cJSON_ParseWithLength(buf, (size_t)n);
    if (json == NULL || !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        if (got_fd >= 0)
            close(got_fd);
        errno = EBADMSG;
        return -1;
    }
    *out = json;
    if (recv_fd != NULL)
        *recv_fd = got_fd;
    else if (got_fd >= 0)
        close(got_fd);
    return 1;
}
