/*
 * msg.c: the record format of msg.h (header, inline text or sealed memfd,
 * optional caller descriptor) and the blocking send / non-blocking receive
 * over a SOCK_SEQPACKET socket.
 *
 * Why a memfd rather than chunking a large message into several records: a
 * large message then never occupies the socket buffer (the record is the
 * 8-byte header and one descriptor), so small messages queued behind it are
 * not held back while megabytes drain, and the receiver needs no reassembly
 * state per channel: every record is a whole message. The memfd is sealed
 * against writes, shrinking and growing before it is sent, and the receiver
 * checks those seals before it maps the bytes: the sender may be a worker
 * hosting untrusted plugin code, which must not be able to change the text
 * while we parse it.
 *
 * Invariants: every descriptor received here is either handed to the caller
 * or closed before returning, on every path; a record that does not follow
 * the format exactly is EBADMSG (a protocol error), never end of file; the
 * size limit is checked on both sides, EMSGSIZE.
 */
#include "msg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* The most descriptors a received record may bring in one piece; a valid one
 * has at most 2, more is refused (and closed) as malformed. */
#define MSG_MAX_FDS 8

/* The seals a memfd payload must carry before the receiver maps it. */
#define MSG_SEALS_REQUIRED (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

static size_t max_bytes = MSG_DEFAULT_MAX_BYTES;

void msg_set_max_bytes(size_t max)
{
    if (max == 0)
        max = MSG_DEFAULT_MAX_BYTES;
    if (max > UINT32_MAX)
        max = UINT32_MAX;
    __atomic_store_n(&max_bytes, max, __ATOMIC_RELAXED);
}

size_t msg_max_bytes(void)
{
    return __atomic_load_n(&max_bytes, __ATOMIC_RELAXED);
}

static void close_fds(const int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void put_header(unsigned char *h, unsigned flags, uint32_t len)
{
    h[0] = 'W';
    h[1] = 'F';
    h[2] = MSG_VERSION;
    h[3] = (unsigned char)flags;
    memcpy(h + 4, &len, sizeof(len));
}

/* A sealed memfd holding text[0..len-1]. Returns the descriptor, or -1 with
 * errno set (nothing left open). */
static int make_memfd(const char *text, size_t len)
{
    int fd = memfd_create("wf-msg", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    size_t off = 0;

    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : EIO;
            close(fd);
            errno = saved;
            return -1;
        }
        off += (size_t)w;
    }
    /* F_SEAL_SEAL too: the receiver cannot be asked to trust seals that
     * anyone could still change. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int msg_encode(const cJSON *msg, size_t max, struct msg_rec *out)
{
    char *text;
    size_t len;
    unsigned flags = 0;

    out->buf = NULL;
    out->len = 0;
    out->memfd = -1;
    out->memfd_len = 0;
    if (max == 0)
        max = msg_max_bytes();
    if (!cJSON_IsObject(msg)) {
        errno = EINVAL;
        return -1;
    }
    text = cJSON_PrintUnformatted(msg);
    if (text == NULL) {
        errno = ENOMEM;
        return -1;
    }
    len = strlen(text);
    if (len > max || len > UINT32_MAX) {
        cJSON_free(text);
        errno = EMSGSIZE;
        return -1;
    }
    if (len > MSG_INLINE_MAX) {
        out->memfd = make_memfd(text, len);
        if (out->memfd < 0) {
            int saved = errno;
            cJSON_free(text);
            errno = saved;
            return -1;
        }
        out->memfd_len = len;
        flags |= MSG_F_MEMFD;
    }
    out->len = MSG_HDR_LEN + (out->memfd >= 0 ? 0 : len);
    out->buf = malloc(out->len);
    if (out->buf == NULL) {
        cJSON_free(text);
        msg_rec_free(out);
        errno = ENOMEM;
        return -1;
    }
    put_header(out->buf, flags, (uint32_t)len);
    if (out->memfd < 0)
        memcpy(out->buf + MSG_HDR_LEN, text, len);
    cJSON_free(text);
    return 0;
}

void msg_rec_free(struct msg_rec *rec)
{
    free(rec->buf);
    rec->buf = NULL;
    rec->len = 0;
    if (rec->memfd >= 0)
        close(rec->memfd);
    rec->memfd = -1;
    rec->memfd_len = 0;
}

size_t msg_rec_size(const struct msg_rec *rec)
{
    return rec->len + rec->memfd_len;
}

int msg_rec_send(int sock, struct msg_rec *rec, int pass_fd, int flags)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 2)];
    } ctl;
    int fds[2];
    size_t nfds = 0;
    struct iovec iov;
    struct msghdr mh;
    ssize_t n;

    if (rec->memfd >= 0)
        fds[nfds++] = rec->memfd;
    if (pass_fd >= 0) {
        fds[nfds++] = pass_fd;
        rec->buf[3] |= MSG_F_FD;
    } else {
        rec->buf[3] &= (unsigned char)~MSG_F_FD;
    }
    memset(&mh, 0, sizeof(mh));
    iov.iov_base = rec->buf;
    iov.iov_len = rec->len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    do {
        n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

/*
 * Maps the sealed memfd fd (len bytes, 0 < len) read-only and parses it.
 * Returns the parsed tree or NULL (with errno EBADMSG); fd is not closed.
 *
 * The mapping is followed by one page of anonymous zeroes, so the text is
 * NUL-terminated in memory even when len is a multiple of the page size: a
 * parser that peeks one byte past the length it was given (older cJSON did,
 * on a trailing backslash) reads a zero, not an unmapped page.
 */
static cJSON *parse_memfd(int fd, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t span;
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    void *area, *map;
    cJSON *json;

    if (seals < 0 || (seals & MSG_SEALS_REQUIRED) != MSG_SEALS_REQUIRED)
        goto bad; /* not a memfd, or one its sender could still change */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size != len)
        goto bad;
    if (page <= 0)
        page = 4096;
    span = (len / (size_t)page + 1) * (size_t)page;
    area = mmap(NULL, span, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        goto bad;
    map = mmap(area, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (map == MAP_FAILED) {
        munmap(area, span);
        goto bad;
    }
    json = cJSON_ParseWithLength(map, len);
    munmap(area, span);
    return json;
bad:
    errno = EBADMSG;
    return NULL;
}

int msg_decode(const char *rec, size_t n, const int *fds, size_t nfds, size_t max, cJSON **out,
               int *user_fd)
{
    unsigned char flags;
    uint32_t len;
    size_t want;
    cJSON *json;
    int err = EBADMSG;

    if (max == 0)
        max = msg_max_bytes();
    if (n < MSG_HDR_LEN || rec[0] != 'W' || rec[1] != 'F' || rec[2] != MSG_VERSION)
        goto fail;
    flags = (unsigned char)rec[3];
    memcpy(&len, rec + 4, sizeof(len));
    if ((flags & ~(MSG_F_MEMFD | MSG_F_FD)) != 0)
        goto fail;
    want = ((flags & MSG_F_MEMFD) != 0) + ((flags & MSG_F_FD) != 0);
    if (nfds != want)
        goto fail;
    if ((flags & MSG_F_MEMFD) != 0) {
        if (n != MSG_HDR_LEN || len == 0)
            goto fail;
    } else if (len != n - MSG_HDR_LEN || len > MSG_INLINE_MAX) {
        goto fail;
    }
    if (len > max) {
        err = EMSGSIZE;
        goto fail;
    }
    if ((flags & MSG_F_MEMFD) != 0)
        json = parse_memfd(fds[0], len);
    else
        json = cJSON_ParseWithLength(rec + MSG_HDR_LEN, len);
    if (json == NULL || !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        goto fail;
    }
    if ((flags & MSG_F_MEMFD) != 0)
        close(fds[0]);
    *out = json;
    if ((flags & MSG_F_FD) == 0) {
        if (user_fd != NULL)
            *user_fd = -1;
    } else if (user_fd != NULL) {
        *user_fd = fds[nfds - 1];
    } else {
        close(fds[nfds - 1]);
    }
    return 0;
fail:
    close_fds(fds, nfds);
    errno = err;
    return -1;
}

int msg_recv_max(int sock, size_t max, cJSON **out, int *recv_fd, size_t *wire)
{
    /* One record is at most MSG_REC_MAX bytes; anything longer arrives
     * truncated (MSG_TRUNC) and is refused. Per thread, as callers are. The
     * byte after the record is set to NUL (see parse_memfd for why). */
    static __thread char buf[MSG_REC_MAX + 1];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
    } ctl;
    struct iovec iov = {buf, MSG_REC_MAX};
    struct msghdr mh;
    int fds[MSG_MAX_FDS];
    size_t nfds = 0;
    int bad = 0;
    ssize_t n;
    uint32_t len;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    do {
        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        size_t k;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            bad = 1; /* nothing else is ever sent on these sockets */
            continue;
        }
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int f;

            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (nfds < MSG_MAX_FDS) {
                fds[nfds++] = f;
            } else {
                close(f);
                bad = 1;
            }
        }
    }
    if (n == 0 && nfds == 0 && !bad && (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0)
        return 0;
    if (bad || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
        close_fds(fds, nfds);
        errno = EBADMSG;
        return -1;
    }
    buf[n] = '\0';
    if (msg_decode(buf, (size_t)n, fds, nfds, max, out, recv_fd) < 0)
        return -1;
    if (wire != NULL) {
        memcpy(&len, buf + 4, sizeof(len));
        *wire = (size_t)n + ((buf[3] & MSG_F_MEMFD) != 0 ? len : 0);
    }
    return 1;
}

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
    struct msg_rec rec;
    int r, saved;

    if (msg_encode(msg, msg_max_bytes(), &rec) < 0)
        return -1;
    r = msg_rec_send(fd, &rec, pass_fd, 0);
    saved = errno;
    msg_rec_free(&rec);
    errno = saved;
    return r;
}

int msg_recv(int fd, cJSON **out, int *recv_fd)
{
    return msg_recv_max(fd, msg_max_bytes(), out, recv_fd, NULL);
}
