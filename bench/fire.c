/*
 * fire.c: see fire.h.
 *
 * One thread, one epoll set. Each connection is in one of three states
 * (idle, writing a request, reading its reply); the next request goes to
 * an idle connection as soon as there is one (closed loop), or at its
 * scheduled time i / rate after the start (open loop; a request that finds
 * no idle connection then is sent late, and counted). Replies must carry a
 * Content-Length (libmicrohttpd's do, for the server's JSON replies); a
 * reply the parser cannot read, a closed connection or a timeout fails the
 * request in flight (a trigger is not idempotent: never resent) and the
 * connection is opened again. Everything is bounded: the count, the total
 * time (max_seconds), each request (timeout_ms), each reply (RBUF bytes).
 */
#include "fire.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

#define RBUF 16384
#define ID_LEN 36

enum conn_state {
    C_DOWN,    /* no socket (could not connect) */
    C_IDLE,    /* connected, no request */
    C_WRITING, /* request partly written */
    C_READING  /* request written, reply not complete */
};

struct req {
    double sent;     /* monotonic s; 0: not sent */
    int64_t wall_us; /* CLOCK_REALTIME µs when written */
    float lat_ms;    /* -1 until answered */
    short status;    /* HTTP status, 0: transport failure */
    char id[ID_LEN + 1];
};

struct conn {
    int fd;
    enum conn_state state;
    long req;    /* index in flight */
    int wantout; /* EPOLLOUT armed: the socket's buffer was full */
    size_t woff;
    double deadline;
    size_t rlen;
    char rbuf[RBUF];
};

struct fire {
    const struct fire_opts *o;
    int ep;
    struct conn *conns;
    int *idle; /* stack of idle connection indices */
    int nidle;
    struct req *reqs;
    char *wire; /* the request's bytes */
    size_t wire_len;
    long next, done, errors, late, reconnects;
    double t0, first_sent, last_reply;
    double max_late_ms;
    int printed;
};

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Opens connection i (blocking connect on loopback, then non-blocking).
 * Returns 0, or -1 with the connection left C_DOWN. */
static int conn_open(struct fire *f, int i)
{
    struct conn *c = &f->conns[i];
    struct sockaddr_in sa;
    struct epoll_event ev;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    c->state = C_DOWN;
    c->fd = -1;
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)f->o->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        close(fd);
        return -1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u32 = (uint32_t)i;
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->wantout = 0;
    c->state = C_IDLE;
    c->rlen = 0;
    f->idle[f->nidle++] = i;
    return 0;
}

/* Closes connection i (its request in flight, if any, is the caller's). */
static void conn_close(struct fire *f, int i)
{
    struct conn *c = &f->conns[i];

    if (c->state == C_IDLE) {
        for (int k = 0; k < f->nidle; k++) {
            if (f->idle[k] == i) {
                f->idle[k] = f->idle[--f->nidle];
                break;
            }
        }
    }
    if (c->fd >= 0) {
        (void)epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_DOWN;
}

/* Request i ended with status (0: transport failure); its connection c
 * becomes idle again, or is reopened when it cannot be reused. */
static void finish(struct fire *f, int ci, int status, const char *why, int reuse)
{
    struct conn *c = &f->conns[ci];
    struct req *r = &f->reqs[c->req];
    double now = mono_s();

    r->lat_ms = (float)((now - r->sent) * 1000.0);
    r->status = (short)status;
    f->done++;
    f->last_reply = now;
    if (status < 200 || status > 299) {
        f->errors++;
        if (f->printed < 5) {
            f->printed++;
            fprintf(stderr, "bench_http fire: request %ld: %s\n", c->req, why);
        }
    }
    c->req = -1;
    c->rlen = 0;
    if (reuse) {
        c->state = C_IDLE;
        f->idle[f->nidle++] = ci;
        return;
    }
    conn_close(f, ci);
    f->reconnects++;
    (void)conn_open(f, ci);
}

/* Writes what is left of c's request. */
static void conn_write(struct fire *f, int ci)
{
    struct conn *c = &f->conns[ci];

    while (c->woff < f->wire_len) {
        ssize_t n = send(c->fd, f->wire + c->woff, f->wire_len - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP,
                                         .data.u32 = (uint32_t)ci};
                if (!c->wantout)
                    (void)epoll_ctl(f->ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->wantout = 1;
                c->state = C_WRITING;
                return;
            }
            finish(f, ci, 0, strerror(errno), 0);
            return;
        }
        c->woff += (size_t)n;
    }
    if (c->wantout) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)ci};
        (void)epoll_ctl(f->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->wantout = 0;
    }
    c->state = C_READING;
}

/* Sends request idx on an idle connection. */
static void send_one(struct fire *f, long idx, double sched)
{
    int ci = f->idle[--f->nidle];
    struct conn *c = &f->conns[ci];
    struct req *r = &f->reqs[idx];
    double now = mono_s();

    if (sched > 0 && now - sched > 0.001) {
        f->late++;
        if ((now - sched) * 1000.0 > f->max_late_ms)
            f->max_late_ms = (now - sched) * 1000.0;
    }
    r->sent = now;
    r->wall_us = wall_us();
    if (f->first_sent == 0)
        f->first_sent = now;
    c->req = idx;
    c->woff = 0;
    c->rlen = 0;
    c->deadline = now + (double)f->o->timeout_ms / 1000.0;
    c->state = C_WRITING;
    conn_write(f, ci);
}

/* The time request idx is due (open loop), or 0 (closed loop). */
static double due(const struct fire *f, long idx)
{
    return f->o->rate > 0 ? f->t0 + (double)idx / f->o->rate : 0;
}

/* Hands out requests to idle connections while any is due. */
static void dispatch(struct fire *f)
{
    while (f->nidle > 0 && f->next < f->o->count) {
        double d = due(f, f->next);
        if (d > 0 && d > mono_s())
            return;
        send_one(f, f->next++, d);
    }
}

/* Parses c's buffer: returns 1 once a whole reply is there (status, the
 * id, whether the server closes), 0 while more is needed, -1 when it
 * cannot be read. */
static int parse_reply(struct conn *c, int *status, char id[ID_LEN + 1], int *closes)
{
    char *end, *p, *line;
    long clen = -1;
    size_t hlen;

    c->rbuf[c->rlen] = '\0';
    end = strstr(c->rbuf, "\r\n\r\n");
    if (end == NULL)
        return c->rlen >= RBUF - 1 ? -1 : 0;
    hlen = (size_t)(end - c->rbuf) + 4;
    if (strncmp(c->rbuf, "HTTP/1.", 7) != 0 || c->rlen < 12)
        return -1;
    *status = (int)strtol(c->rbuf + 9, NULL, 10);
    *closes = 0;
    for (line = strstr(c->rbuf, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        p = line + 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtol(p + 15, NULL, 10);
        else if (strncasecmp(p, "Connection:", 11) == 0 && strstr(p, "close") != NULL &&
                 strstr(p, "close") < strstr(p, "\r\n"))
            *closes = 1;
        else if (strncasecmp(p, "Transfer-Encoding:", 18) == 0)
            return -1; /* chunked: not what the server sends */
    }
    if (clen < 0 || hlen + (size_t)clen >= RBUF)
        return -1;
    if (c->rlen < hlen + (size_t)clen)
        return 0;
    c->rbuf[hlen + (size_t)clen] = '\0';
    id[0] = '\0';
    p = strstr(c->rbuf + hlen, "\"executionId\":\"");
    if (p != NULL && strlen(p + 15) > ID_LEN) {
        memcpy(id, p + 15, ID_LEN);
        id[ID_LEN] = '\0';
    }
    return 1;
}

static void conn_read(struct fire *f, int ci)
{
    struct conn *c = &f->conns[ci];

    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF - 1 - c->rlen, 0);
        int status = 0, closes = 0, rc;
        char id[ID_LEN + 1];
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (c->state == C_READING || c->state == C_WRITING) {
                finish(f, ci, 0, n == 0 ? "connection closed" : strerror(errno), 0);
            } else {
                conn_close(f, ci); /* an idle connection the server closed */
                f->reconnects++;
                (void)conn_open(f, ci);
            }
            return;
        }
        if (c->state != C_READING) {
            conn_close(f, ci); /* bytes nobody asked for */
            (void)conn_open(f, ci);
            return;
        }
        c->rlen += (size_t)n;
        rc = parse_reply(c, &status, id, &closes);
        if (rc == 0)
            continue;
        if (rc < 0) {
            finish(f, ci, 0, "unreadable reply", 0);
            return;
        }
        memcpy(f->reqs[c->req].id, id, sizeof(id));
        if (status < 200 || status > 299) {
            char why[200];
            const char *body = strstr(c->rbuf, "\r\n\r\n");
            snprintf(why, sizeof(why), "HTTP %d: %.150s", status, body != NULL ? body + 4 : "");
            finish(f, ci, status, why, !closes);
        } else {
            finish(f, ci, status, "", !closes);
        }
        return;
    }
}

/* Fails the requests whose time is up. */
static void check_timeouts(struct fire *f, double now)
{
    for (int i = 0; i < f->o->conns; i++) {
        struct conn *c = &f->conns[i];
        if ((c->state == C_READING || c->state == C_WRITING) && now > c->deadline)
            finish(f, i, 0, "timed out", 0);
    }
}

static int write_ids(const struct fire *f)
{
    FILE *out = fopen(f->o->ids_path, "w");

    if (out == NULL) {
        fprintf(stderr, "bench_http fire: cannot write %s: %s\n", f->o->ids_path, strerror(errno));
        return -1;
    }
    for (long i = 0; i < f->o->count; i++) {
        const struct req *r = &f->reqs[i];
        if (r->status >= 200 && r->status <= 299 && r->id[0] != '\0')
            fprintf(out, "%s\t%lld\t%lld\n", r->id, (long long)r->wall_us,
                    (long long)(r->wall_us + (int64_t)(r->lat_ms * 1000.0f)));
    }
    return fclose(out) == 0 ? 0 : -1;
}

static void summary(const struct fire *f)
{
    double *lat = malloc(sizeof(double) * (size_t)(f->o->count + 1));
    double span = f->last_reply > f->first_sent ? f->last_reply - f->first_sent : 0;
    long n = 0, sent = 0;
    int64_t first_wall = 0;
    struct rusage ru;
    double cpu_ms = 0;

    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;

    for (long i = 0; i < f->o->count; i++) {
        const struct req *r = &f->reqs[i];
        if (r->sent > 0) {
            sent++;
            if (first_wall == 0 || r->wall_us < first_wall)
                first_wall = r->wall_us;
        }
        if (lat != NULL && r->lat_ms >= 0 && r->status >= 200 && r->status <= 299)
            lat[n++] = r->lat_ms;
    }
    if (lat != NULL)
        qsort(lat, (size_t)n, sizeof(double), stats_cmp_double);
    printf("{\"label\":\"%s\",\"n\":%ld,\"sent\":%ld,\"ok\":%ld,\"errors\":%ld,\"conns\":%d,"
           "\"rate\":%.1f,\"total_ms\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"late\":%ld,\"max_late_ms\":%.3f,"
           "\"reconnects\":%ld,\"cpu_ms\":%.1f,\"first_sent_epoch_us\":%lld,\"complete\":%s}\n",
           f->o->label, f->o->count, sent, n, f->errors + (sent - f->done), f->o->conns, f->o->rate,
           span * 1000.0, span > 0 ? (double)n / span : 0.0, stats_pct(lat, n, 50),
           stats_pct(lat, n, 95), stats_pct(lat, n, 99), n > 0 ? lat[n - 1] : 0.0, f->late,
           f->max_late_ms, f->reconnects, cpu_ms, (long long)first_wall,
           n == f->o->count ? "true" : "false");
    free(lat);
}

int fire_main(const struct fire_opts *o)
{
    struct fire f;
    struct epoll_event evs[256];
    size_t blen = strlen(o->body);
    int rc = 2;

    memset(&f, 0, sizeof(f));
    f.o = o;
    f.ep = epoll_create1(EPOLL_CLOEXEC);
    f.conns = calloc((size_t)o->conns, sizeof(*f.conns));
    f.idle = calloc((size_t)o->conns, sizeof(*f.idle));
    f.reqs = calloc((size_t)o->count, sizeof(*f.reqs));
    f.wire = malloc(strlen(o->path) + blen + 256);
    if (f.ep < 0 || f.conns == NULL || f.idle == NULL || f.reqs == NULL || f.wire == NULL) {
        fprintf(stderr, "bench_http fire: out of memory\n");
        goto out;
    }
    f.wire_len = (size_t)snprintf(f.wire, strlen(o->path) + blen + 256,
                                  "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                  o->path, blen, o->body);
    for (long i = 0; i < o->count; i++)
        f.reqs[i].lat_ms = -1;
    for (int i = 0; i < o->conns; i++) {
        f.conns[i].fd = -1;
        f.conns[i].req = -1;
        if (conn_open(&f, i) < 0) {
            fprintf(stderr, "bench_http fire: cannot connect to 127.0.0.1:%d: %s\n", o->port,
                    strerror(errno));
            goto out;
        }
    }
    f.t0 = mono_s();
    dispatch(&f);
    while (f.done < f.next || f.next < o->count) {
        double now = mono_s(), wait_ms = 10;
        int n;
        if (now - f.t0 > o->max_seconds) {
            fprintf(stderr, "bench_http fire: stopped after %.0f s (%ld of %ld answered)\n",
                    o->max_seconds, f.done, o->count);
            break;
        }
        if (o->rate > 0 && f.nidle > 0 && f.next < o->count) {
            double d = (due(&f, f.next) - now) * 1000.0;
            wait_ms = d < wait_ms ? d : wait_ms;
        }
        n = epoll_wait(f.ep, evs, 256, wait_ms < 1 ? (wait_ms > 0 ? 1 : 0) : (int)wait_ms);
        for (int k = 0; k < n; k++) {
            int ci = (int)evs[k].data.u32;
            struct conn *c = &f.conns[ci];
            if (c->state == C_WRITING && (evs[k].events & EPOLLOUT))
                conn_write(&f, ci);
            if (c->fd >= 0 && (evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                conn_read(&f, ci);
        }
        check_timeouts(&f, mono_s());
        for (int i = 0; i < o->conns && f.nidle == 0; i++) {
            if (f.conns[i].state == C_DOWN && conn_open(&f, i) == 0)
                f.reconnects++;
        }
        dispatch(&f);
    }
    summary(&f);
    rc = f.errors == 0 && f.done == o->count ? 0 : 1;
    if (o->ids_path != NULL && write_ids(&f) < 0)
        rc = 2;
out:
    if (f.conns != NULL) {
        for (int i = 0; i < o->conns; i++) {
            if (f.conns[i].fd >= 0)
                close(f.conns[i].fd);
        }
    }
    if (f.ep >= 0)
        close(f.ep);
    free(f.conns);
    free(f.idle);
    free(f.reqs);
    free(f.wire);
    return rc;
}
