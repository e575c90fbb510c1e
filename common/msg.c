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
 * Encoding prints the JSON straight where it will be sent from: a per-thread
 * scratch buffer for inline text (then copied out at its exact size), or the
 * mapped memfd for longer text, so megabytes are not printed into a heap
 * buffer and copied again, and a message over the maximum costs at most the
 * maximum's worth of printing before it is refused.
 *
 * Invariants: every descriptor received here is either handed to the caller
 * or closed before returning, on every path; a record that does not follow
 * the format exactly is EBADMSG (a protocol error), never end of file; the
 * size limit is checked on both sides, EMSGSIZE.
 */
#include "msg.h"

#include "memfd.h"

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

static size_t max_bytes = MSG_DEFAULT_MAX_BYTES;

void msg_set_max_bytes(size_t max)
{
    if (max == 0)
        max = MSG_DEFAULT_MAX_BYTES;
    if (max > MSG_MAX_MAX_BYTES)
        max = MSG_MAX_MAX_BYTES;
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

/*
 * Scratch space of the calling thread: msg_encode prints into it and
 * msg_recv_max receives into it. Neither calls the other while using it.
 * MSG_PRINT_SLACK: cJSON_PrintPreallocated may need a few bytes more than it
 * prints (its documentation says 5), so every buffer it gets has this much
 * on top of the largest text that may come out.
 */
#define MSG_PRINT_SLACK 64
static __thread char scratch[MSG_REC_MAX + MSG_PRINT_SLACK];

/* cJSON_PrintPreallocated takes a non-const item but does not modify it. */
static int print_into(const cJSON *msg, char *buf, size_t size)
{
    return cJSON_PrintPreallocated((cJSON *)(uintptr_t)msg, buf, (int)size, 0) ? 0 : -1;
}

/*
 * Prints msg straight into a new memfd (no intermediate copy: the text may
 * be megabytes), at most max bytes, then trims and seals it. Returns the
 * descriptor with *len set, or -1 with errno EMSGSIZE (the text is longer
 * than max, or cJSON could not print the tree) or that of the failed call;
 * nothing is left open.
 */
static int print_memfd(const cJSON *msg, size_t max, size_t *len)
{
    size_t size = max + MSG_PRINT_SLACK;
    int fd = memfd_create("wf-msg", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    char *map;
    int saved;

    if (fd < 0)
        return -1;
    /* Sparse: only the pages the text touches are ever allocated. */
    if (ftruncate(fd, (off_t)size) < 0)
        goto fail;
    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    if (print_into(msg, map, size) < 0) {
        munmap(map, size);
        errno = EMSGSIZE;
        goto fail;
    }
    *len = strnlen(map, size);
    /* Unmapped before sealing: F_SEAL_WRITE refuses while a writable shared
     * mapping exists. */
    munmap(map, size);
    if (*len > max) {
        errno = EMSGSIZE;
        goto fail;
    }
    if (ftruncate(fd, (off_t)*len) < 0)
        goto fail;
    if (memfd_seal(fd) < 0)
        goto fail;
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int msg_encode(const cJSON *msg, size_t max, struct msg_rec *out)
{
    size_t len;

    out->buf = NULL;
    out->len = 0;
    out->memfd = -1;
    out->memfd_len = 0;
    if (max == 0)
        max = msg_max_bytes();
    if (max > MSG_MAX_MAX_BYTES)
        max = MSG_MAX_MAX_BYTES;
    if (!cJSON_IsObject(msg)) {
        errno = EINVAL;
        return -1;
    }
    /* Most messages are small: print into the scratch buffer, and copy out
     * what fits inline. */
    if (print_into(msg, scratch, MSG_INLINE_MAX + MSG_PRINT_SLACK) == 0) {
        len = strlen(scratch);
        if (len > max) {
            errno = EMSGSIZE;
            return -1;
        }
        if (len <= MSG_INLINE_MAX) {
            out->buf = malloc(MSG_HDR_LEN + len);
            if (out->buf == NULL) {
                errno = ENOMEM;
                return -1;
            }
            out->len = MSG_HDR_LEN + len;
            put_header(out->buf, 0, (uint32_t)len);
            memcpy(out->buf + MSG_HDR_LEN, scratch, len);
            return 0;
        }
    }
    /* Longer than inline (or cJSON could not print it at all). */
    out->memfd = print_memfd(msg, max, &len);
    if (out->memfd < 0)
        return -1;
    out->memfd_len = len;
    out->buf = malloc(MSG_HDR_LEN);
    if (out->buf == NULL) {
        msg_rec_free(out);
        errno = ENOMEM;
        return -1;
    }
    out->len = MSG_HDR_LEN;
    put_header(out->buf, MSG_F_MEMFD, (uint32_t)len);
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
    void *area, *map;
    cJSON *json;

    if (!memfd_is_sealed(fd))
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
     * truncated (MSG_TRUNC) and is refused. The byte after the record is
     * set to NUL (see parse_memfd for why). */
    char *buf = scratch;
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
