/*
 * test_chan.c: the non-blocking channel over a real SEQPACKET socketpair:
 * a peer that does not read (queue cap, ENOBUFS, EPOLLOUT state, stall time
 * on an injected clock), order of mixed small and memfd-sized messages,
 * descriptors through the queue, a peer gone (EPIPE), chan_free closing
 * queued descriptors, one message per chan_recv (the read budget), limits
 * and counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "jsonutil.h"
#include "msg.h"
#include "testhelp.h"

static int64_t fake_now;

static int64_t fake_clock(void)
{
    return fake_now;
}

static void pair(int sv[2])
{
    CHECK_INT(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* {"seq":seq,"s":"<size filler bytes>"}. */
static cJSON *msg_seq(int seq, size_t size)
{
    cJSON *o = cJSON_CreateObject();
    char *s = malloc(size + 1);

    for (size_t i = 0; i < size; i++)
        s[i] = (char)('a' + (i + (size_t)seq) % 26);
    s[size] = '\0';
    cJSON_AddNumberToObject(o, "seq", seq);
    cJSON_AddStringToObject(o, "s", s);
    free(s);
    return o;
}

/* 1 if got is msg_seq(seq, size). */
static int is_seq(const cJSON *got, int seq, size_t size)
{
    int64_t v = -1;
    const char *s = ju_str(got, "s");

    if (ju_int(got, "seq", &v) < 0 || v != seq || s == NULL || strlen(s) != size)
        return 0;
    for (size_t i = 0; i < size; i++)
        if (s[i] != (char)('a' + (i + (size_t)seq) % 26))
            return 0;
    return 1;
}

static void test_full_queue(void)
{
    struct chan_limits lim = {0, 256 * 1024};
    int sv[2], sent = 0, got_n = 0, r = 0;
    struct chan *ch;
    cJSON *got;

    pair(sv);
    ch = chan_new(sv[0], &lim);
    CHECK(ch != NULL);
    CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    chan_set_clock(ch, fake_clock);
    fake_now = 1000;
    CHECK_INT(chan_stalled_ms(ch, fake_now), 0);
    CHECK_INT(chan_flush(ch, fake_now), 0);

    /* The peer reads nothing: first the socket fills, then the queue. */
    for (int i = 0; i < 100000; i++) {
        cJSON *m = msg_seq(i, 1000);
        r = chan_send(ch, m, -1);
        cJSON_Delete(m);
        if (r < 0)
            break;
        sent++;
    }
    CHECK_INT(r, -1);
    CHECK_INT(errno, ENOBUFS);
    CHECK(chan_queued_msgs(ch) > 0);
    CHECK(chan_queued_bytes(ch) <= lim.max_out_bytes);
    CHECK(chan_queued_bytes(ch) > lim.max_out_bytes - 2000);
    CHECK(chan_wants_write(ch));
    CHECK_INT(chan_flush(ch, fake_now), 1);

    /* Stall time grows while nothing moves. */
    fake_now = 1500;
    CHECK_INT(chan_stalled_ms(ch, fake_now), 500);
    CHECK_INT(chan_flush(ch, fake_now), 1);
    CHECK_INT(chan_stalled_ms(ch, 4000), 3000);

    /* The peer reads one message: a flush makes progress and the stall
     * clock restarts from there. */
    fake_now = 4000;
    CHECK_INT(msg_recv(sv[1], &got, NULL), 1);
    CHECK(is_seq(got, got_n++, 1000));
    cJSON_Delete(got);
    CHECK_INT(chan_flush(ch, fake_now), 1);
    CHECK_INT(chan_stalled_ms(ch, fake_now), 0);
    CHECK_INT(chan_stalled_ms(ch, fake_now + 250), 250);

    /* The peer reads everything, in order. */
    for (int turn = 0; turn < 100000 && got_n < sent; turn++) {
        int k = msg_recv(sv[1], &got, NULL);
        if (k == 1) {
            CHECK(is_seq(got, got_n, 1000));
            got_n++;
            cJSON_Delete(got);
        } else {
            CHECK_INT(errno, EAGAIN);
            fake_now += 10;
            CHECK(chan_flush(ch, fake_now) >= 0);
        }
    }
    CHECK_INT(got_n, sent);
    CHECK_INT(chan_flush(ch, fake_now), 0);
    CHECK(!chan_wants_write(ch));
    CHECK_INT(chan_queued_bytes(ch), 0);
    CHECK_INT(chan_queued_msgs(ch), 0);
    CHECK_INT(chan_stalled_ms(ch, fake_now + 100000), 0);

    /* Room again: the next send goes straight out. */
    got = msg_seq(sent, 10);
    CHECK_INT(chan_send(ch, got, -1), 0);
    cJSON_Delete(got);
    CHECK_INT(chan_queued_msgs(ch), 0);
    CHECK_INT(msg_recv(sv[1], &got, NULL), 1);
    CHECK(is_seq(got, sent, 10));
    cJSON_Delete(got);
    {
        struct chan_counters c;
        chan_get_counters(ch, &c);
        CHECK_INT(c.msgs_out, sent + 1);
        CHECK(c.bytes_out > (uint64_t)sent * 1000);
        CHECK_INT(c.msgs_in, 0);
    }
    chan_free(ch);
    close(sv[1]);
}

static void test_order(void)
{
    static const size_t sizes[] = {10, 70 * 1024, 100, 300 * 1024, 5, 64 * 1024, 2 * 1024 * 1024};
    const int total = 400;
    int sv[2], sent = 0, got_n = 0, turns = 0;
    struct chan *a, *b;
    struct chan_counters ca, cb;

    pair(sv);
    a = chan_new(sv[0], NULL);
    b = chan_new(sv[1], NULL);
    CHECK(a != NULL && b != NULL);
    /* Send in bursts bigger than the socket holds, drain in between. */
    while (got_n < total && turns++ < 100000) {
        for (int k = 0; k < 40 && sent < total && !chan_wants_write(a); k++, sent++) {
            cJSON *m = msg_seq(sent, sizes[sent % 7] - (sent % 3));
            CHECK_INT(chan_send(a, m, -1), 0);
            cJSON_Delete(m);
        }
        for (int k = 0; k < 16; k++) {
            cJSON *got = NULL;
            int r = chan_recv(b, &got, NULL);
            if (r != 1) {
                CHECK_INT(errno, EAGAIN);
                break;
            }
            if (!is_seq(got, got_n, sizes[got_n % 7] - (size_t)(got_n % 3)))
                fprintf(stderr, "test_chan.c: message %d out of order or changed\n", got_n);
            CHECK(is_seq(got, got_n, sizes[got_n % 7] - (size_t)(got_n % 3)));
            got_n++;
            cJSON_Delete(got);
        }
        CHECK(chan_flush(a, ju_mono_ms()) >= 0);
    }
    CHECK_INT(got_n, total);
    CHECK_INT(chan_queued_msgs(a), 0);
    chan_get_counters(a, &ca);
    chan_get_counters(b, &cb);
    CHECK_INT(ca.msgs_out, total);
    CHECK_INT(cb.msgs_in, total);
    CHECK_INT(ca.bytes_out, cb.bytes_in);
    chan_free(a);
    chan_free(b);
}

/* The wire size of m as chan accounts it. */
static size_t wire_size(const cJSON *m)
{
    struct msg_rec rec;
    size_t n;

    if (msg_encode(m, 0, &rec) < 0)
        return 0;
    n = msg_rec_size(&rec);
    msg_rec_free(&rec);
    return n;
}

/* Fills sv's socket with small messages through ch until one is queued. */
static int fill(struct chan *ch)
{
    int n = 0;

    while (chan_queued_msgs(ch) == 0 && n < 100000) {
        cJSON *m = msg_seq(n, 100);
        CHECK_INT(chan_send(ch, m, -1), 0);
        cJSON_Delete(m);
        n++;
    }
    return n;
}

static void test_fd_through_queue(void)
{
    int sv[2], pp[2], n, fd = -2, got_n = 0;
    struct chan *a, *b;
    cJSON *m, *got;
    char c = 0;

    pair(sv);
    a = chan_new(sv[0], NULL);
    b = chan_new(sv[1], NULL);
    n = fill(a); /* messages 0..n-1, the last one queued */
    CHECK_INT(pipe(pp), 0);
    m = msg_seq(n, 200 * 1024); /* memfd payload and a descriptor */
    CHECK_INT(chan_send(a, m, pp[1]), 0);
    cJSON_Delete(m);
    close(pp[1]); /* the caller's own copy: the queue holds a duplicate */
    CHECK_INT(chan_queued_msgs(a), 2);
    {
        cJSON *q0 = msg_seq(n - 1, 100), *q1 = msg_seq(n, 200 * 1024);
        CHECK_INT(chan_queued_bytes(a), wire_size(q0) + wire_size(q1));
        cJSON_Delete(q0);
        cJSON_Delete(q1);
    }
    for (int turn = 0; turn < 100000 && got_n <= n; turn++) {
        int r = chan_recv(b, &got, &fd);
        if (r != 1) {
            CHECK_INT(errno, EAGAIN);
            CHECK(chan_flush(a, ju_mono_ms()) >= 0);
            continue;
        }
        if (got_n < n) {
            CHECK_INT(fd, -1);
            CHECK(is_seq(got, got_n, 100));
        } else {
            CHECK(is_seq(got, n, 200 * 1024));
            CHECK(fd >= 0);
        }
        got_n++;
        cJSON_Delete(got);
    }
    CHECK_INT(got_n, n + 1);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, "y", 1), 1);
    close(fd);
    CHECK_INT(read(pp[0], &c, 1), 1);
    CHECK_INT(c, 'y');
    CHECK_INT(read(pp[0], &c, 1), 0); /* no other write end left open */
    close(pp[0]);
    chan_free(a);
    chan_free(b);
}

static void test_peer_gone(void)
{
    int sv[2];
    struct chan *ch;
    cJSON *m = msg_seq(0, 10);

    /* Nothing queued: the send itself fails. */
    pair(sv);
    ch = chan_new(sv[0], NULL);
    close(sv[1]);
    CHECK_INT(chan_send(ch, m, -1), -1);
    CHECK(errno == EPIPE || errno == ECONNRESET);
    CHECK_INT(chan_send(ch, m, -1), -1); /* and stays failed */
    CHECK(errno == EPIPE || errno == ECONNRESET);
    CHECK_INT(chan_flush(ch, 0), -1);
    chan_free(ch);

    /* A queue waiting: the flush fails and drops it. */
    pair(sv);
    ch = chan_new(sv[0], NULL);
    fill(ch);
    CHECK(chan_wants_write(ch));
    close(sv[1]);
    CHECK_INT(chan_flush(ch, 0), -1);
    CHECK(errno == EPIPE || errno == ECONNRESET);
    CHECK_INT(chan_queued_msgs(ch), 0);
    CHECK_INT(chan_queued_bytes(ch), 0);
    CHECK(!chan_wants_write(ch));
    CHECK_INT(chan_send(ch, m, -1), -1);
    chan_free(ch);

    /* The reading side sees EOF. */
    pair(sv);
    ch = chan_new(sv[0], NULL);
    close(sv[1]);
    {
        cJSON *got = NULL;
        CHECK_INT(chan_recv(ch, &got, NULL), 0);
    }
    chan_free(ch);
    cJSON_Delete(m);
}

static void test_free_closes(void)
{
    int before = count_fds();
    int sv[2], pp[2];
    struct chan *ch;

    pair(sv);
    CHECK_INT(pipe(pp), 0);
    ch = chan_new(sv[0], NULL);
    fill(ch);
    for (int i = 0; i < 5; i++) {
        cJSON *m = msg_seq(i, i % 2 ? 100 * 1024 : 10);
        CHECK_INT(chan_send(ch, m, pp[1]), 0);
        cJSON_Delete(m);
    }
    CHECK_INT(chan_queued_msgs(ch), 6);
    CHECK(count_fds() >= before + 4 + 5 + 2); /* pair, pipe, dups, memfds */
    chan_free(ch);
    close(sv[1]);
    close(pp[0]);
    close(pp[1]);
    CHECK_INT(count_fds(), before);
}

static void test_read_budget(void)
{
    const int total = 1000;
    int sv[2], got_n = 0, turns = 0;
    struct chan *a, *b;

    pair(sv);
    a = chan_new(sv[0], NULL);
    b = chan_new(sv[1], NULL);
    for (int i = 0; i < total; i++) {
        cJSON *m = msg_seq(i, 20);
        CHECK_INT(chan_send(a, m, -1), 0);
        cJSON_Delete(m);
    }
    CHECK(chan_queued_msgs(a) > 0); /* more than the socket holds */
    /* Each call returns exactly one message; a turn takes at most 8. */
    while (got_n < total && turns++ < 10000) {
        for (int k = 0; k < 8; k++) {
            cJSON *got = NULL;
            int r = chan_recv(b, &got, NULL);
            if (r != 1) {
                CHECK_INT(errno, EAGAIN);
                break;
            }
            CHECK(is_seq(got, got_n, 20));
            got_n++;
            cJSON_Delete(got);
        }
        CHECK(chan_flush(a, ju_mono_ms()) >= 0);
    }
    CHECK_INT(got_n, total);
    CHECK(turns >= total / 8);
    {
        struct chan_counters c;
        chan_get_counters(b, &c);
        CHECK_INT(c.msgs_in, total);
    }
    chan_free(a);
    chan_free(b);
}

static void test_limits(void)
{
    struct chan_limits small = {1000, 0};
    int sv[2], before = count_fds(), pp[2];
    struct chan *a, *b;
    cJSON *m, *got = NULL;

    pair(sv);
    a = chan_new(sv[0], NULL);
    b = chan_new(sv[1], &small);
    chan_set_clock(a, NULL);

    /* Over the receiver's limit: refused there, and not taken for EOF. */
    m = msg_seq(1, 2000);
    CHECK_INT(chan_send(a, m, -1), 0);
    CHECK_INT(chan_recv(b, &got, NULL), -1);
    CHECK_INT(errno, EMSGSIZE);
    /* Over the sender's own limit: refused, nothing queued. */
    CHECK_INT(chan_send(b, m, -1), -1);
    CHECK_INT(errno, EMSGSIZE);
    CHECK_INT(chan_queued_msgs(b), 0);
    cJSON_Delete(m);
    m = msg_seq(2, 10);
    CHECK_INT(pipe(pp), 0);
    CHECK_INT(chan_send(a, m, pp[0]), 0);
    CHECK_INT(chan_recv(b, &got, NULL), 1); /* fd not wanted: closed */
    CHECK(is_seq(got, 2, 10));
    cJSON_Delete(got);
    cJSON_Delete(m);
    close(pp[0]);
    close(pp[1]);

    /* A queue cap smaller than one message: nothing can wait. */
    chan_free(a);
    chan_free(b);
    pair(sv);
    {
        struct chan_limits tiny = {0, 50};
        a = chan_new(sv[0], &tiny);
    }
    m = msg_seq(0, 100);
    for (int i = 0; i < 100000; i++)
        if (chan_send(a, m, -1) < 0)
            break;
    CHECK_INT(errno, ENOBUFS);
    CHECK_INT(chan_queued_msgs(a), 0);
    cJSON_Delete(m);
    chan_free(a);
    close(sv[1]);

    /* A bad descriptor: chan_new fails and leaves it alone. */
    CHECK(chan_new(-1, NULL) == NULL);
    CHECK_INT(errno, EBADF);
    CHECK_INT(count_fds(), before);
}

int main(void)
{
    test_full_queue();
    test_order();
    test_fd_through_queue();
    test_peer_gone();
    test_free_closes();
    test_read_budget();
    test_limits();
    TEST_REPORT("test_chan");
}
