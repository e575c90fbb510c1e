/*
 * chan.c: the non-blocking channel of chan.h: one SEQPACKET socket, a FIFO
 * of encoded records waiting for room in it, counters.
 *
 * Invariants:
 *   - records leave in the order chan_send accepted them: a new record is
 *     written directly only when nothing is queued before it;
 *   - queued_bytes is the sum of msg_rec_size over the queue and never
 *     exceeds max_out_bytes; queued_msgs is its length;
 *   - every queued descriptor (memfd payload, duplicate of a passed fd) is
 *     owned by its queue item and closed when the item is sent or dropped;
 *   - after a write error (err != 0) the queue is empty and stays empty: the
 *     peer is gone, nothing more is sent.
 *
 * A record is written whole or not at all (SEQPACKET), so there is no
 * partial-write state; EINTR is retried in msg_rec_send.
 */
#include "chan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jsonutil.h"
#include "msg.h"

struct chan_item {
    struct chan_item *next;
    struct msg_rec rec;
    int fd;      /* duplicate of the caller's descriptor, or -1 */
    size_t size; /* msg_rec_size(&rec) */
};

struct chan {
    int fd;
    size_t max_msg;
    size_t max_out;
    struct chan_item *head; /* next to write */
    struct chan_item *tail;
    size_t queued_bytes;
    size_t queued_msgs;
    int64_t progress_ms; /* last record written, or when the queue filled */
    int err;             /* sticky write error; 0 while the peer is there */
    chan_clock_fn clock;
    struct chan_counters cnt;
};

static void item_free(struct chan_item *it)
{
    msg_rec_free(&it->rec);
    if (it->fd >= 0)
        close(it->fd);
    free(it);
}

/* Drops the whole queue, closing its descriptors. */
static void drop_queue(struct chan *ch)
{
    while (ch->head != NULL) {
        struct chan_item *it = ch->head;
        ch->head = it->next;
        item_free(it);
    }
    ch->tail = NULL;
    ch->queued_bytes = 0;
    ch->queued_msgs = 0;
}

/* The peer is gone: remember why and drop what can no longer be sent. */
static void chan_fail(struct chan *ch, int err)
{
    ch->err = err != 0 ? err : EPIPE;
    drop_queue(ch);
}

struct chan *chan_new(int fd, const struct chan_limits *lim)
{
    struct chan *ch = calloc(1, sizeof(*ch));
    int fl;

    if (ch == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int saved = errno;
        free(ch);
        errno = saved;
        return NULL;
    }
    ch->fd = fd;
    ch->max_msg = lim != NULL && lim->max_msg_bytes > 0 ? lim->max_msg_bytes : msg_max_bytes();
    if (ch->max_msg > MSG_MAX_MAX_BYTES)
        ch->max_msg = MSG_MAX_MAX_BYTES;
    ch->max_out =
        lim != NULL && lim->max_out_bytes > 0 ? lim->max_out_bytes : 2 * ch->max_msg + 1024 * 1024;
    ch->clock = ju_mono_ms;
    return ch;
}

void chan_free(struct chan *ch)
{
    if (ch == NULL)
        return;
    drop_queue(ch);
    close(ch->fd);
    free(ch);
}

int chan_fd(const struct chan *ch)
{
    return ch->fd;
}

void chan_set_clock(struct chan *ch, chan_clock_fn clock)
{
    ch->clock = clock != NULL ? clock : ju_mono_ms;
}

static void count_out(struct chan *ch, size_t size)
{
    ch->cnt.msgs_out++;
    ch->cnt.bytes_out += size;
}

int chan_flush(struct chan *ch, int64_t now_ms)
{
    if (ch->err != 0) {
        errno = ch->err;
        return -1;
    }
    while (ch->head != NULL) {
        struct chan_item *it = ch->head;

        if (msg_rec_send(ch->fd, &it->rec, it->fd, MSG_DONTWAIT) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            chan_fail(ch, errno);
            errno = ch->err;
            return -1;
        }
        ch->head = it->next;
        if (ch->head == NULL)
            ch->tail = NULL;
        ch->queued_bytes -= it->size;
        ch->queued_msgs--;
        ch->progress_ms = now_ms;
        count_out(ch, it->size);
        item_free(it);
    }
    return 0;
}

int chan_send(struct chan *ch, const cJSON *msg, int pass_fd)
{
    struct chan_item *it;
    struct msg_rec rec;
    size_t size;
    int was_empty = ch->head == NULL;

    if (ch->err != 0) {
        errno = ch->err;
        return -1;
    }
    if (msg_encode(msg, ch->max_msg, &rec) < 0)
        return -1;
    size = msg_rec_size(&rec);
    if (was_empty) {
        /* Nothing ahead of it: write now, and queue only if the socket is
         * full (no allocation, no duplicate on the common path). */
        if (msg_rec_send(ch->fd, &rec, pass_fd, MSG_DONTWAIT) == 0) {
            count_out(ch, size);
            msg_rec_free(&rec);
            return 0;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            chan_fail(ch, errno);
            msg_rec_free(&rec);
            errno = ch->err;
            return -1;
        }
    }
    if (size > ch->max_out || ch->queued_bytes > ch->max_out - size) {
        msg_rec_free(&rec);
        errno = ENOBUFS;
        return -1;
    }
    it = malloc(sizeof(*it));
    if (it == NULL) {
        msg_rec_free(&rec);
        errno = ENOMEM;
        return -1;
    }
    it->next = NULL;
    it->rec = rec;
    it->size = size;
    it->fd = -1;
    if (pass_fd >= 0) {
        it->fd = fcntl(pass_fd, F_DUPFD_CLOEXEC, 0);
        if (it->fd < 0) {
            int saved = errno;
            item_free(it);
            errno = saved;
            return -1;
        }
    }
    if (ch->tail != NULL)
        ch->tail->next = it;
    else
        ch->head = it;
    ch->tail = it;
    ch->queued_bytes += size;
    ch->queued_msgs++;
    if (was_empty) {
        /* The socket just said it is full: no point in writing again. */
        ch->progress_ms = ch->clock();
        return 0;
    }
    /* Records were already waiting; the peer may have read since. */
    return chan_flush(ch, ch->clock()) < 0 ? -1 : 0;
}

int chan_wants_write(const struct chan *ch)
{
    return ch->head != NULL;
}

size_t chan_queued_bytes(const struct chan *ch)
{
    return ch->queued_bytes;
}

size_t chan_queued_msgs(const struct chan *ch)
{
    return ch->queued_msgs;
}

int64_t chan_stalled_ms(const struct chan *ch, int64_t now_ms)
{
    if (ch->head == NULL || now_ms <= ch->progress_ms)
        return 0;
    return now_ms - ch->progress_ms;
}

int chan_recv(struct chan *ch, cJSON **out, int *fd)
{
    size_t wire = 0;
    int r = msg_recv_max(ch->fd, ch->max_msg, out, fd, &wire);

    if (r == 1) {
        ch->cnt.msgs_in++;
        ch->cnt.bytes_in += wire;
    }
    return r;
}

void chan_get_counters(const struct chan *ch, struct chan_counters *out)
{
    *out = ch->cnt;
}
