/*
 * test_msg.c: the record format of msg.h over a real SEQPACKET socketpair:
 * boundaries kept, descriptors passed with SCM_RIGHTS, inline and memfd
 * payloads of every size up to the cap, the cap on both sides, and
 * hand-forged bad records (each refused as a protocol error, never read as
 * end of file, and without leaking a descriptor), then EOF.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jsonutil.h"
#include "msg.h"
#include "testhelp.h"

/* {"s":"<filler>"} whose compact text is exactly size bytes (size >= 8). */
static cJSON *obj_of_size(size_t size)
{
    size_t n = size - 8;
    char *s = malloc(n + 1);
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + i % 26);
    s[n] = '\0';
    cJSON_AddStringToObject(o, "s", s);
    free(s);
    return o;
}

/* 1 if got is {"s":...} with the filler obj_of_size(size) produced. */
static int is_obj_of_size(const cJSON *got, size_t size)
{
    const char *s = ju_str(got, "s");

    if (s == NULL || strlen(s) != size - 8)
        return 0;
    for (size_t i = 0; i < size - 8; i++)
        if (s[i] != (char)('a' + i % 26))
            return 0;
    return 1;
}

/* Sends a raw record with nfds descriptors, bypassing msg_send. */
static ssize_t send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 16)];
    } ctl;
    struct iovec iov = {(void *)(uintptr_t)buf, len};
    struct msghdr mh;

    memset(&mh, 0, sizeof(mh));
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *c;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static void header(unsigned char *h, int magic_ok, int version, int flags, uint32_t len)
{
    h[0] = magic_ok ? 'W' : 'X';
    h[1] = 'F';
    h[2] = (unsigned char)version;
    h[3] = (unsigned char)flags;
    memcpy(h + 4, &len, 4);
}

/* A memfd holding text, with the given seals added (0: none). */
static int memfd_with(const char *text, size_t len, int seals)
{
    int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        return -1;
    if (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) < 0)
        return -1;
    return fd;
}

/* Receives on sock and expects a refusal with errno err. */
static void expect_refused(int sock, int err, int line)
{
    cJSON *got = NULL;
    int fd = -2;
    int r = msg_recv(sock, &got, &fd);

    if (r != -1 || errno != err)
        fprintf(stderr, "test_msg.c:%d: expected refusal with %s, got %d (%s)\n", line,
                strerror(err), r, strerror(errno));
    CHECK_INT(r, -1);
    CHECK_INT(errno, err);
    CHECK(got == NULL);
    CHECK_INT(fd, -2);
}

/* A message sent afterwards still arrives: the refusal was not EOF. */
static void expect_alive(int tx, int rx)
{
    cJSON *a = cJSON_CreateObject(), *got = NULL;

    cJSON_AddStringToObject(a, "t", "alive");
    CHECK_INT(msg_send(tx, a, -1), 0);
    CHECK_INT(msg_recv(rx, &got, NULL), 1);
    CHECK_STR(ju_str(got, "t"), "alive");
    cJSON_Delete(got);
    cJSON_Delete(a);
}

/* One round trip of a size-byte message, optionally with a pipe's write
 * end, checking payload, descriptor and that inline/memfd was chosen. */
static void round_trip(size_t size, int with_fd)
{
    int sv[2], pp[2] = {-1, -1};
    cJSON *a = obj_of_size(size), *got = NULL;
    struct msg_rec rec;
    int fd = -2;
    char c = 0;

    CHECK_INT(msg_encode(a, 0, &rec), 0);
    CHECK_INT(rec.memfd >= 0, size > MSG_INLINE_MAX);
    CHECK_INT(msg_rec_size(&rec), MSG_HDR_LEN + size);
    msg_rec_free(&rec);

    CHECK_INT(msg_socketpair(sv), 0);
    if (with_fd)
        CHECK_INT(pipe(pp), 0);
    CHECK_INT(msg_send(sv[0], a, pp[1]), 0);
    if (with_fd)
        close(pp[1]);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 1);
    if (!is_obj_of_size(got, size))
        fprintf(stderr, "test_msg.c: round trip of %zu bytes changed the payload\n", size);
    CHECK(is_obj_of_size(got, size));
    cJSON_Delete(got);
    if (with_fd) {
        CHECK(fd >= 0);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK_INT(write(fd, "x", 1), 1);
        close(fd);
        CHECK_INT(read(pp[0], &c, 1), 1);
        CHECK_INT(c, 'x');
        close(pp[0]);
    } else {
        CHECK_INT(fd, -1);
    }
    cJSON_Delete(a);
    close(sv[0]);
    close(sv[1]);
}

static void test_sizes(void)
{
    static const size_t sizes[] = {
        1024,
        200 * 1024,
        300 * 1024,
        8 * 1024 * 1024,
        MSG_INLINE_MAX,
        MSG_INLINE_MAX + 1,
        MSG_INLINE_MAX - 1,
        8,
        MSG_DEFAULT_MAX_BYTES,
    };
    int before = count_fds();

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        round_trip(sizes[i], 0);
        round_trip(sizes[i], 1);
    }
    CHECK_INT(count_fds(), before);
}

static void test_cap(void)
{
    int sv[2], mfd, pp[2];
    cJSON *a = obj_of_size(MSG_DEFAULT_MAX_BYTES + 1), *got = NULL;
    unsigned char h[MSG_HDR_LEN];
    struct msg_rec rec;
    int before = count_fds();
    char *text;
    size_t wire = 0;

    CHECK_INT(msg_max_bytes(), MSG_DEFAULT_MAX_BYTES);
    CHECK_INT(msg_socketpair(sv), 0);

    /* One byte over the cap: refused at the sender, nothing sent. */
    CHECK_INT(msg_send(sv[0], a, -1), -1);
    CHECK_INT(errno, EMSGSIZE);
    CHECK_INT(msg_encode(a, 0, &rec), -1);
    CHECK_INT(errno, EMSGSIZE);
    CHECK(rec.buf == NULL && rec.memfd == -1);
    CHECK_INT(msg_recv(sv[1], &got, NULL), -1);
    CHECK_INT(errno, EAGAIN);

    /* A forged, well-sealed memfd over the receiver's cap: EMSGSIZE. */
    text = cJSON_PrintUnformatted(a);
    mfd = memfd_with(text, strlen(text), F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    CHECK(mfd >= 0);
    header(h, 1, MSG_VERSION, MSG_F_MEMFD, (uint32_t)strlen(text));
    CHECK_INT(send_raw(sv[0], h, sizeof(h), &mfd, 1), sizeof(h));
    close(mfd);
    cJSON_free(text);
    expect_refused(sv[1], EMSGSIZE, __LINE__);
    expect_alive(sv[0], sv[1]);
    cJSON_Delete(a);

    /* A smaller process-wide cap applies to both sides. */
    msg_set_max_bytes(1000);
    CHECK_INT(msg_max_bytes(), 1000);
    a = obj_of_size(1000);
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    CHECK_INT(msg_recv(sv[1], &got, NULL), 1);
    CHECK(is_obj_of_size(got, 1000));
    cJSON_Delete(got);
    cJSON_Delete(a);
    a = obj_of_size(1001);
    CHECK_INT(msg_send(sv[0], a, -1), -1);
    CHECK_INT(errno, EMSGSIZE);
    /* Forged inline record over the receiver's cap, with a descriptor that
     * must be closed. */
    CHECK_INT(msg_encode(a, 2000, &rec), 0);
    CHECK_INT(pipe(pp), 0);
    CHECK_INT(msg_rec_send(sv[0], &rec, pp[1], 0), 0);
    close(pp[0]);
    close(pp[1]);
    msg_rec_free(&rec);
    expect_refused(sv[1], EMSGSIZE, __LINE__);
    cJSON_Delete(a);
    /* ... and a caller's own limit can be smaller still. */
    a = obj_of_size(500);
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    CHECK_INT(msg_recv_max(sv[1], 499, &got, NULL, NULL), -1);
    CHECK_INT(errno, EMSGSIZE);
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    CHECK_INT(msg_recv_max(sv[1], 500, &got, NULL, &wire), 1);
    CHECK_INT(wire, MSG_HDR_LEN + 500);
    cJSON_Delete(got);
    cJSON_Delete(a);
    /* Far over a cap above the inline size: printing stops at the cap. */
    msg_set_max_bytes(100 * 1024);
    a = obj_of_size(300 * 1024);
    CHECK_INT(msg_send(sv[0], a, -1), -1);
    CHECK_INT(errno, EMSGSIZE);
    cJSON_Delete(a);
    a = obj_of_size(100 * 1024);
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    CHECK_INT(msg_recv(sv[1], &got, NULL), 1);
    CHECK(is_obj_of_size(got, 100 * 1024));
    cJSON_Delete(got);
    cJSON_Delete(a);
    msg_set_max_bytes(0);
    CHECK_INT(msg_max_bytes(), MSG_DEFAULT_MAX_BYTES);
    msg_set_max_bytes((size_t)1 << 40);
    CHECK_INT(msg_max_bytes(), MSG_MAX_MAX_BYTES);
    msg_set_max_bytes(0);

    close(sv[0]);
    close(sv[1]);
    CHECK_INT(count_fds(), before);
}

static void test_forged(void)
{
    static const char obj[] = "{\"t\":\"x\"}";
    const int all_seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    unsigned char rec[MSG_HDR_LEN + 64];
    unsigned char *big;
    int sv[2], pp[2], fds[12];
    int before = count_fds();
    size_t olen = strlen(obj);

    CHECK_INT(msg_socketpair(sv), 0);
    CHECK_INT(pipe(pp), 0);

    /* Shorter than the header. */
    header(rec, 1, MSG_VERSION, 0, 0);
    CHECK_INT(send_raw(sv[0], rec, 5, NULL, 0), 5);
    expect_refused(sv[1], EBADMSG, __LINE__);
    /* ... even with a descriptor, which is closed. */
    CHECK_INT(send_raw(sv[0], rec, 0, &pp[1], 1), 0);
    expect_refused(sv[1], EBADMSG, __LINE__);

    /* Bad magic, bad version, unknown flag. */
    header(rec, 0, MSG_VERSION, 0, (uint32_t)olen);
    memcpy(rec + MSG_HDR_LEN, obj, olen);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, NULL, 0), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);
    header(rec, 1, 2, 0, (uint32_t)olen);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, NULL, 0), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);
    header(rec, 1, MSG_VERSION, 0x80, (uint32_t)olen);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, NULL, 0), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);

    /* Length that is not the payload's. */
    header(rec, 1, MSG_VERSION, 0, (uint32_t)olen + 1);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, NULL, 0), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);
    header(rec, 1, MSG_VERSION, 0, (uint32_t)olen - 1);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, NULL, 0), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);

    /* Payloads that are not one JSON object. */
    header(rec, 1, MSG_VERSION, 0, 5);
    memcpy(rec + MSG_HDR_LEN, "[1,2]", 5);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + 5, NULL, 0), MSG_HDR_LEN + 5);
    expect_refused(sv[1], EBADMSG, __LINE__);
    memcpy(rec + MSG_HDR_LEN, "{nope", 5);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + 5, NULL, 0), MSG_HDR_LEN + 5);
    expect_refused(sv[1], EBADMSG, __LINE__);
    header(rec, 1, MSG_VERSION, 0, 0);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN, NULL, 0), MSG_HDR_LEN);
    expect_refused(sv[1], EBADMSG, __LINE__);

    /* Descriptors that do not match the flags: a flag without its
     * descriptor, a descriptor without its flag, extras. */
    header(rec, 1, MSG_VERSION, MSG_F_FD, (uint32_t)olen);
    memcpy(rec + MSG_HDR_LEN, obj, olen);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, NULL, 0), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);
    header(rec, 1, MSG_VERSION, MSG_F_MEMFD, (uint32_t)olen);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN, NULL, 0), MSG_HDR_LEN);
    expect_refused(sv[1], EBADMSG, __LINE__);
    header(rec, 1, MSG_VERSION, 0, (uint32_t)olen);
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, &pp[1], 1), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);
    header(rec, 1, MSG_VERSION, MSG_F_FD, (uint32_t)olen);
    fds[0] = pp[1];
    fds[1] = pp[1];
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, fds, 2), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);
    for (int i = 0; i < 12; i++)
        fds[i] = pp[1]; /* more than the receiver's control buffer holds */
    CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN + olen, fds, 12), MSG_HDR_LEN + olen);
    expect_refused(sv[1], EBADMSG, __LINE__);
    CHECK_INT(count_fds(), before + 4);

    /* memfd payloads: not sealed, partly sealed, size not the header's, a
     * pipe instead of a memfd, inline bytes besides the memfd, not JSON. */
    for (int k = 0; k < 7; k++) {
        int seals = k == 0   ? 0
                    : k == 1 ? F_SEAL_WRITE
                    : k == 2 ? F_SEAL_SHRINK | F_SEAL_GROW
                             : all_seals;
        uint32_t len = (uint32_t)olen + (k == 3 ? 1 : 0);
        size_t n = MSG_HDR_LEN + (k == 5 ? 1 : 0);
        int fd;

        if (k == 4)
            fd = dup(pp[0]);
        else if (k == 6)
            fd = memfd_with("[1]", 3, all_seals);
        else
            fd = memfd_with(obj, olen, seals);
        if (k == 6)
            len = 3;
        CHECK(fd >= 0);
        header(rec, 1, MSG_VERSION, MSG_F_MEMFD, len);
        CHECK_INT(send_raw(sv[0], rec, n, &fd, 1), n);
        close(fd);
        expect_refused(sv[1], EBADMSG, __LINE__);
    }
    /* The same with everything right is accepted, and with a user fd. */
    {
        int two[2];
        cJSON *got = NULL;
        int ufd = -2;

        two[0] = memfd_with(obj, olen, all_seals);
        two[1] = pp[1];
        header(rec, 1, MSG_VERSION, MSG_F_MEMFD | MSG_F_FD, (uint32_t)olen);
        CHECK_INT(send_raw(sv[0], rec, MSG_HDR_LEN, two, 2), MSG_HDR_LEN);
        close(two[0]);
        CHECK_INT(msg_recv(sv[1], &got, &ufd), 1);
        CHECK_STR(ju_str(got, "t"), "x");
        CHECK(ufd >= 0);
        close(ufd);
        cJSON_Delete(got);
    }

    /* A record longer than any valid one arrives truncated: a protocol
     * error, not EOF and not a message; its descriptor is closed. */
    big = calloc(1, MSG_REC_MAX + 100);
    header(big, 1, MSG_VERSION, MSG_F_FD, MSG_INLINE_MAX + 100);
    memset(big + MSG_HDR_LEN, ' ', MSG_INLINE_MAX + 100);
    big[MSG_HDR_LEN] = '{';
    big[MSG_REC_MAX + 99] = '}';
    CHECK_INT(send_raw(sv[0], big, MSG_REC_MAX + 100, &pp[1], 1), MSG_REC_MAX + 100);
    expect_refused(sv[1], EBADMSG, __LINE__);
    free(big);
    expect_alive(sv[0], sv[1]);

    /* msg_decode directly: consumes the descriptors it refuses. */
    {
        int d = dup(pp[1]);
        cJSON *got = NULL;

        header(rec, 1, MSG_VERSION, 0, (uint32_t)olen);
        memcpy(rec + MSG_HDR_LEN, obj, olen);
        CHECK_INT(msg_decode((char *)rec, MSG_HDR_LEN + olen, &d, 1, 0, &got, NULL), -1);
        CHECK_INT(errno, EBADMSG);
        CHECK_INT(fcntl(d, F_GETFD), -1);
        CHECK_INT(msg_decode((char *)rec, MSG_HDR_LEN + olen, NULL, 0, 0, &got, NULL), 0);
        CHECK_STR(ju_str(got, "t"), "x");
        cJSON_Delete(got);
    }

    close(pp[0]);
    close(pp[1]);
    /* EOF when the peer closes, after everything above was refused. */
    close(sv[0]);
    {
        cJSON *got = NULL;
        CHECK_INT(msg_recv(sv[1], &got, NULL), 0);
    }
    close(sv[1]);
    CHECK_INT(count_fds(), before);
}

int main(void)
{
    int sv[2], pp[2];
    cJSON *a = cJSON_CreateObject();
    cJSON *got = NULL;
    int fd = -2;
    char c = 0;

    CHECK_INT(msg_socketpair(sv), 0);
    CHECK(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);

    /* Nothing waiting. */
    CHECK_INT(msg_recv(sv[1], &got, &fd), -1);
    CHECK_INT(errno, EAGAIN);

    /* Two messages keep their boundaries. */
    cJSON_AddStringToObject(a, "t", "one");
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    cJSON_ReplaceItemInObject(a, "t", cJSON_CreateString("two"));
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 1);
    CHECK_STR(ju_str(got, "t"), "one");
    CHECK_INT(fd, -1);
    cJSON_Delete(got);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 1);
    CHECK_STR(ju_str(got, "t"), "two");
    cJSON_Delete(got);

    /* A descriptor travels with its message and works on the other side;
     * without recv_fd it is closed. */
    CHECK_INT(pipe(pp), 0);
    CHECK_INT(msg_send(sv[0], a, pp[1]), 0);
    CHECK_INT(msg_send(sv[0], a, pp[1]), 0);
    close(pp[1]);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 1);
    cJSON_Delete(got);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK_INT(write(fd, "x", 1), 1);
    close(fd);
    CHECK_INT(read(pp[0], &c, 1), 1);
    CHECK_INT(c, 'x');
    CHECK_INT(msg_recv(sv[1], &got, NULL), 1);
    cJSON_Delete(got);
    CHECK_INT(read(pp[0], &c, 1), 0); /* every write end is closed */
    close(pp[0]);

    /* Only objects are sent. */
    {
        cJSON *arr = cJSON_CreateArray();
        CHECK_INT(msg_send(sv[0], arr, -1), -1);
        CHECK_INT(errno, EINVAL);
        cJSON_Delete(arr);
    }
    cJSON_Delete(a);

    /* EOF when the peer closes. */
    close(sv[0]);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 0);
    close(sv[1]);

    test_sizes();
    test_cap();
    test_forged();
    TEST_REPORT("test_msg");
}
