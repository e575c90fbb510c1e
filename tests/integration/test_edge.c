/*
 * test_edge.c: the HTTP edge cannot be exhausted by a client without the
 * token (docs/operations.md "The HTTP edge", docs/api.md), against the
 * real server over raw TCP sockets on 127.0.0.0/8, so that the test sees
 * exactly how many bytes the server took and when it answered.
 *
 * Four servers, one after the other, on one database:
 *   A (WF_API_TOKEN set): an unauthenticated 60 MB PUT, with and without
 *     "Expect: 100-continue", is answered 401 before any body byte is sent
 *     (and without "100 Continue"); 200 such uploads at once leave core's
 *     peak RSS (VmHWM) within EDGE_RSS_BOUND_KB of where it was, while
 *     /health answers; with the token, "Expect: 100-continue" is still
 *     answered "100 Continue".
 *   A' (no token): the same flood leaves core's peak RSS within the body
 *     budget plus EDGE_RSS_BOUND_KB: a few uploads are taken whole, the
 *     others answered 503 before their body.
 *   B (no token, small body budget, loopback): 10 concurrent 2 MB bodies
 *     against an 8 MiB budget: some are answered 503 "server busy" before
 *     their body is sent, the others are created, and the most reserved at
 *     once never passed the budget (/metrics); a chunked body works; two
 *     Content-Length headers, or one with chunked, are 400; bodies with a
 *     \u0000 escape, a NUL byte or invalid UTF-8 are 400 and start nothing.
 *     No warning about a missing token on 127.0.0.1.
 *   C (no token, 0.0.0.0, small connection limits and deadline): the
 *     warning about the missing token is logged; 1,000 abandoned requests
 *     log a handful of lines; idle connections beyond the per-address
 *     limit and beyond the global limit do not keep /health (from another
 *     address) from answering; a client trickling its headers a byte at a
 *     time is cut off at the deadline.
 *   D: an empty WF_API_TOKEN and a body budget below the body cap are
 *     refused at start with exit code 100 and a message.
 * Every wait is bounded; every socket goes to 127.0.0.x.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define BIG_BODY (60L << 20)    /* the attacker's upload */
#define N_UPLOADS 200           /* of them at once */
#define EDGE_RSS_BOUND_KB 65536 /* core's peak RSS may grow this much under them */
#define SMALL_PART (16L << 20)  /* what a refused upload may push into socket buffers */
#define BUDGET (8L << 20)       /* server B's WF_MAX_INFLIGHT_BODY_BYTES */
#define N_BUSY 10               /* concurrent bodies against it */
#define BUSY_BODY 2000000L      /* each */
#define PER_IP 32               /* server C's WF_MAX_CONNECTIONS_PER_IP */
#define MAX_CONNS 128           /* server C's WF_MAX_CONNECTIONS */
#define DEADLINE_MS 2000        /* server C's WF_REQUEST_TIMEOUT_MS */
#define N_ABORTED 1000
#define FLOOD_ADDRS 8 /* 127.0.0.3 … 127.0.0.10, PER_IP each */

static char chunk[1 << 20]; /* body bytes */

/* ---- raw sockets ---- */

/* A blocking TCP connection from src (127.0.0.x) to 127.0.0.1:port, or -1. */
static int tcp_connect(const char *src, int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, src, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Writes all of buf (blocking socket). Returns 0 or -1. */
static int send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Reads a reply within timeout_ms: until the headers and Content-Length
 * bytes of body are in, or the peer closes, or a "100 Continue" is in.
 * Fills buf (NUL-terminated).
 * Returns the status of the first status line, 0 when the connection
 * closed before any, -1 on timeout with nothing.
 */
static int read_reply(int fd, int timeout_ms, char *buf, size_t cap)
{
    long long until = th_now_ms() + timeout_ms;
    size_t len = 0;
    int status = 0;

    buf[0] = '\0';
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = until - th_now_ms();
        char *eoh;
        ssize_t r;

        if (left <= 0)
            return len > 0 ? status : -1;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
            status = 0;
        eoh = strstr(buf, "\r\n\r\n");
        if (eoh != NULL && status == 100)
            break; /* an interim reply: the caller sends the body */
        if (eoh != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            long n = cl != NULL && cl < eoh ? strtol(cl + 17, NULL, 10) : 0;
            if ((size_t)(eoh + 4 - buf) + (size_t)n <= len || len == cap - 1)
                break;
        }
        if (len == cap - 1)
            break;
    }
    return status;
}

/* GET path from src: the status, or -1; *ms gets the time it took. */
static int get_from(const char *src, int port, const char *path, int timeout_ms, long long *ms)
{
    char req[256], buf[4096];
    long long t0 = th_now_ms();
    int fd = tcp_connect(src, port);
    int st = -1;

    if (fd >= 0) {
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
        if (send_all(fd, req, strlen(req)) == 0)
            st = read_reply(fd, timeout_ms, buf, sizeof(buf));
        close(fd);
    }
    if (ms != NULL)
        *ms = th_now_ms() - t0;
    return st;
}

/* A raw request (headers and body as given) from 127.0.0.1: the status. */
static int raw_request(int port, const char *text, size_t len, char *reply, size_t cap)
{
    int fd = tcp_connect("127.0.0.1", port);
    int st = -1;

    if (fd < 0)
        return -1;
    if (send_all(fd, text, len) == 0)
        st = read_reply(fd, 5000, reply, cap);
    close(fd);
    return st;
}

/* ---- /proc ---- */

/* A "VmRSS"/"VmHWM" figure of pid in kB, or -1. */
static long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    FILE *f;
    long v = -1;
    size_t n = strlen(field);

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The number of lines of the server's log containing needle. */
static int log_count(const struct th_server *s, const char *needle)
{
    size_t len;
    char *text = th_read_file(s->log_path, &len);
    int n = 0;

    if (text == NULL)
        return -1;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

/* ---- A: the token is checked before the body ---- */

/*
 * One unauthenticated 60 MB PUT: headers first, then a reply is awaited
 * before any body byte is sent (it must come: 401, and no 100 Continue);
 * then the body is pushed until the server's close stops it. Returns the
 * body bytes the socket took, or -1 when the reply was wrong.
 */
static long refused_upload(const struct th_server *s, int expect)
{
    char req[512], buf[4096];
    int fd = tcp_connect("127.0.0.1", s->port);
    long sent = 0;
    int st;

    if (!CHECK(fd >= 0))
        return -1;
    snprintf(req, sizeof(req),
             "PUT /projects/p1/activities/x HTTP/1.1\r\nHost: x\r\nContent-Length: %ld\r\n"
             "Content-Type: application/octet-stream\r\n%s\r\n",
             BIG_BODY, expect ? "Expect: 100-continue\r\n" : "");
    if (!CHECK(send_all(fd, req, strlen(req)) == 0)) {
        close(fd);
        return -1;
    }
    st = read_reply(fd, 5000, buf, sizeof(buf));
    if (!CHECK_EQ_INT(st, 401) || !CHECK(strstr(buf, "100 Continue") == NULL) ||
        !CHECK(strstr(buf, "missing or invalid API token") != NULL)) {
        fprintf(stderr, "  reply: %.200s\n", buf);
        close(fd);
        return -1;
    }
    set_nonblock(fd);
    {
        long long until = th_now_ms() + 3000;
        while (sent < BIG_BODY && th_now_ms() < until) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            ssize_t w;
            if (poll(&p, 1, 100) <= 0)
                continue;
            w = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (w <= 0)
                break;
            sent += w;
        }
    }
    close(fd);
    return sent;
}

/* 200 unauthenticated 60 MB uploads at once, from 8 addresses (the
 * per-address limit stays out of it), pushed as fast as the server lets
 * them. Counts the replies by status (401, 503, any other), checks every
 * upload ended, and returns the body bytes all sockets took. */
struct upload {
    int fd;
    size_t hdr_off, hdr_len;
    long sent;
    int done;
    char hdr[256];
};

static long upload_flood(const struct th_server *s, int *n401, int *n503, int *nother)
{
    static struct upload up[N_UPLOADS];
    long total = 0;
    int left = 0;
    long long until = th_now_ms() + 30000;

    *n401 = *n503 = *nother = 0;
    for (int i = 0; i < N_UPLOADS; i++) {
        char src[32];
        snprintf(src, sizeof(src), "127.0.0.%d", 10 + i % 8);
        memset(&up[i], 0, sizeof(up[i]));
        up[i].fd = tcp_connect(src, s->port);
        if (up[i].fd < 0) {
            up[i].done = 1;
            continue;
        }
        set_nonblock(up[i].fd);
        up[i].hdr_len = (size_t)snprintf(up[i].hdr, sizeof(up[i].hdr),
                                         "PUT /projects/p%d/activities/x HTTP/1.1\r\nHost: x\r\n"
                                         "Content-Length: %ld\r\n\r\n",
                                         i, BIG_BODY);
        left++;
    }
    while (left > 0 && th_now_ms() < until) {
        static struct pollfd p[N_UPLOADS];
        int n = 0;
        int idx[N_UPLOADS];
        for (int i = 0; i < N_UPLOADS; i++) {
            if (up[i].done)
                continue;
            p[n].fd = up[i].fd;
            p[n].events = POLLIN | (up[i].sent < BIG_BODY ? POLLOUT : 0);
            p[n].revents = 0;
            idx[n++] = i;
        }
        if (poll(p, (nfds_t)n, 200) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            struct upload *u = &up[idx[k]];
            if (p[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                char buf[2048];
                ssize_t r = recv(u->fd, buf, sizeof(buf) - 1, 0);
                if (r > 0) {
                    buf[r] = '\0';
                    if (strncmp(buf, "HTTP/1.1 401", 12) == 0)
                        (*n401)++;
                    else if (strncmp(buf, "HTTP/1.1 503", 12) == 0)
                        (*n503)++;
                    else
                        (*nother)++;
                }
                if (r > 0 || (r < 0 && errno != EAGAIN)) {
                    u->done = 1; /* refused (the server closes after its reply) */
                } else if (r == 0) {
                    u->done = 1;
                }
                if (u->done) {
                    close(u->fd);
                    left--;
                    continue;
                }
            }
            if (p[k].revents & POLLOUT) {
                ssize_t w;
                if (u->hdr_off < u->hdr_len) {
                    w = send(u->fd, u->hdr + u->hdr_off, u->hdr_len - u->hdr_off, MSG_NOSIGNAL);
                    if (w > 0)
                        u->hdr_off += (size_t)w;
                } else {
                    size_t want = sizeof(chunk);
                    if ((long)want > BIG_BODY - u->sent)
                        want = (size_t)(BIG_BODY - u->sent);
                    w = send(u->fd, chunk, want, MSG_NOSIGNAL);
                    if (w > 0)
                        u->sent += w;
                }
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    u->done = 1;
                    close(u->fd);
                    left--;
                }
            }
        }
    }
    for (int i = 0; i < N_UPLOADS; i++) {
        if (!up[i].done)
            close(up[i].fd);
        total += up[i].sent;
    }
    CHECK_EQ_INT(left, 0);
    return total;
}

static void test_token_first(struct th_db *db)
{
    static const char *const env[] = {"WF_API_TOKEN=edge-secret", "WF_LISTEN_ADDR=127.0.0.1", NULL};
    struct th_server s;
    pid_t core;
    long rss0, hwm0, hwm1, sent;
    long long t0, health_ms = 0;
    int answered = 0, busy, other;

    if (!CHECK(th_server_start(&s, db, env) == 0))
        goto out;
    core = th_proc_child(s.pid, "wf-core");
    if (!CHECK(core > 0))
        goto out;
    CHECK(!th_server_log_contains(&s, "WF_API_TOKEN is not set"));
    rss0 = proc_kb(core, "VmRSS");

    sent = refused_upload(&s, 0);
    CHECK(sent >= 0 && sent < SMALL_PART);
    fprintf(stderr, "  401 without Expect: the socket took %ld of %ld body bytes\n", sent,
            BIG_BODY);
    sent = refused_upload(&s, 1);
    CHECK(sent >= 0 && sent < SMALL_PART);
    fprintf(stderr, "  401 with Expect: 100-continue: the socket took %ld body bytes\n", sent);
    CHECK(proc_kb(core, "VmRSS") < rss0 + 8192);

    hwm0 = proc_kb(core, "VmHWM");
    t0 = th_now_ms();
    sent = upload_flood(&s, &answered, &busy, &other);
    fprintf(stderr,
            "  %d uploads of %ld MB at once: %d answered 401, sockets took %ld MB in all, "
            "%lld ms\n",
            N_UPLOADS, BIG_BODY >> 20, answered, sent >> 20, th_now_ms() - t0);
    CHECK(answered > N_UPLOADS / 2);
    CHECK(get_from("127.0.0.2", s.port, "/health", 2000, &health_ms) == 200);
    hwm1 = proc_kb(core, "VmHWM");
    fprintf(stderr, "  core VmHWM %ld kB before, %ld kB after (bound +%d kB); /health %lld ms\n",
            hwm0, hwm1, EDGE_RSS_BOUND_KB, health_ms);
    CHECK(hwm0 > 0 && hwm1 - hwm0 < EDGE_RSS_BOUND_KB);
    CHECK(th_metric(&s, "wf_http_body_bytes_buffered_max") == 0);
    /* With the token, Expect: 100-continue is still answered 100. */
    {
        static const char req[] = "PUT /projects/nope/activities/x HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: Bearer edge-secret\r\nContent-Length: 4\r\n"
                                  "Expect: 100-continue\r\n\r\n";
        char buf[4096];
        int fd = tcp_connect("127.0.0.1", s.port);
        if (CHECK(fd >= 0)) {
            CHECK(send_all(fd, req, sizeof(req) - 1) == 0);
            CHECK_EQ_INT(read_reply(fd, 5000, buf, sizeof(buf)), 100);
            CHECK(send_all(fd, "abcd", 4) == 0);
            CHECK_EQ_INT(read_reply(fd, 5000, buf, sizeof(buf)), 422); /* not ELF */
            close(fd);
        }
    }
out:
    CHECK(th_server_stop(&s, 10000) == 0);
    th_server_cleanup(&s);
}

/* Without a token: the same flood is bounded by the body budget (its
 * default, 256 MiB): a few uploads are buffered whole, the others are
 * answered 503 before their body; core's peak RSS grows by the budget at
 * most (plus EDGE_RSS_BOUND_KB). */
static void test_no_token_flood(struct th_db *db)
{
    static const char *const env[] = {"WF_LISTEN_ADDR=127.0.0.1", NULL};
    struct th_server s;
    pid_t core;
    long hwm0, hwm1, sent;
    long long t0, budget;
    int n401, busy, other;

    if (!CHECK(th_server_start(&s, db, env) == 0))
        goto out;
    core = th_proc_child(s.pid, "wf-core");
    budget = th_metric(&s, "wf_http_body_bytes_budget");
    if (!CHECK(core > 0) || !CHECK_EQ_INT(budget, 256LL << 20))
        goto out;
    hwm0 = proc_kb(core, "VmHWM");
    t0 = th_now_ms();
    sent = upload_flood(&s, &n401, &busy, &other);
    hwm1 = proc_kb(core, "VmHWM");
    fprintf(stderr,
            "  no token: %d uploads of %ld MB at once: %d answered 503, %d taken whole "
            "(%d otherwise), sockets took %ld MB, %lld ms; core VmHWM %ld kB before, %ld kB "
            "after (bound: + %lld kB budget + %d kB)\n",
            N_UPLOADS, BIG_BODY >> 20, busy, other, n401, sent >> 20, th_now_ms() - t0, hwm0, hwm1,
            budget >> 10, EDGE_RSS_BOUND_KB);
    CHECK(busy >= N_UPLOADS - (int)(budget / BIG_BODY) - 1);
    CHECK(other >= 1);
    CHECK(th_metric(&s, "wf_http_body_bytes_buffered_max") <= budget);
    CHECK(hwm1 - hwm0 < (budget >> 10) + EDGE_RSS_BOUND_KB);
    CHECK_EQ_INT(get_from("127.0.0.2", s.port, "/health", 2000, NULL), 200);
out:
    CHECK(th_server_stop(&s, 10000) == 0);
    th_server_cleanup(&s);
}

/* ---- B: the body budget, framing, JSON text ---- */

/* 10 bodies of 2 MB at once against the 8 MiB budget: headers of all
 * first, so their reservations overlap, then the bodies of those not yet
 * answered. */
static void busy_bodies(const struct th_server *s)
{
    int fd[N_BUSY], status[N_BUSY];
    char *body = malloc((size_t)BUSY_BODY);
    int created = 0, busy = 0;
    char buf[4096];

    if (!CHECK(body != NULL))
        return;
    for (int i = 0; i < N_BUSY; i++) {
        char hdr[256];
        fd[i] = tcp_connect("127.0.0.1", s->port);
        status[i] = 0;
        snprintf(hdr, sizeof(hdr),
                 "POST /projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: %ld\r\n\r\n",
                 BUSY_BODY);
        if (!CHECK(fd[i] >= 0) || !CHECK(send_all(fd[i], hdr, strlen(hdr)) == 0))
            goto out;
    }
    /* The refused ones are answered now, before any body byte. */
    for (int i = 0; i < N_BUSY; i++) {
        struct pollfd p = {.fd = fd[i], .events = POLLIN};
        if (poll(&p, 1, i == 0 ? 500 : 50) == 1)
            status[i] = read_reply(fd[i], 2000, buf, sizeof(buf));
        if (status[i] == 503)
            CHECK(strstr(buf, "server busy") != NULL);
    }
    for (int i = 0; i < N_BUSY; i++) {
        int n;
        if (status[i] != 0)
            continue;
        n = snprintf(body, (size_t)BUSY_BODY, "{\"id\":\"busy%d\"}", i);
        memset(body + n, ' ', (size_t)(BUSY_BODY - n));
        if (CHECK(send_all(fd[i], body, (size_t)BUSY_BODY) == 0))
            status[i] = read_reply(fd[i], 10000, buf, sizeof(buf));
    }
    for (int i = 0; i < N_BUSY; i++) {
        char path[64];
        cJSON *j = NULL;
        if (status[i] == 201) {
            created++;
            snprintf(path, sizeof(path), "/projects/busy%d", i);
            CHECK_EQ_INT(th_http_json(s, "GET", path, NULL, &j), 200);
            cJSON_Delete(j);
        } else if (status[i] == 503) {
            busy++;
        }
    }
    fprintf(stderr, "  %d bodies of %ld bytes against a %ld budget: %d created, %d busy\n", N_BUSY,
            BUSY_BODY, BUDGET, created, busy);
    CHECK(created >= 1 && busy >= 1);
    CHECK_EQ_INT(created + busy, N_BUSY);
    CHECK(th_metric(s, "wf_http_body_bytes_buffered_max") <= BUDGET);
    CHECK(th_metric(s, "wf_http_body_bytes_buffered_max") > 0);
out:
    for (int i = 0; i < N_BUSY; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    free(body);
}

/* A chunked JSON body of about 3 MB (the reservation grows with it). */
static void chunked_body(const struct th_server *s)
{
    static const char hdr[] = "POST /projects HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              "Content-Type: application/json\r\n\r\n";
    static const char start[] = "{\"id\":\"chunky\"}";
    char buf[4096], line[32];
    int fd = tcp_connect("127.0.0.1", s->port);
    int ok;

    if (!CHECK(fd >= 0))
        return;
    memset(chunk, ' ', sizeof(chunk));
    ok = send_all(fd, hdr, sizeof(hdr) - 1) == 0;
    snprintf(line, sizeof(line), "%zx\r\n", sizeof(start) - 1);
    ok = ok && send_all(fd, line, strlen(line)) == 0 &&
         send_all(fd, start, sizeof(start) - 1) == 0 && send_all(fd, "\r\n", 2) == 0;
    for (int i = 0; i < 3 && ok; i++) {
        snprintf(line, sizeof(line), "%zx\r\n", sizeof(chunk));
        ok = send_all(fd, line, strlen(line)) == 0 && send_all(fd, chunk, sizeof(chunk)) == 0 &&
             send_all(fd, "\r\n", 2) == 0;
    }
    ok = ok && send_all(fd, "0\r\n\r\n", 5) == 0;
    CHECK(ok);
    CHECK_EQ_INT(read_reply(fd, 10000, buf, sizeof(buf)), 201);
    close(fd);
    memset(chunk, 'a', sizeof(chunk));
}

static void framing(const struct th_server *s)
{
    static const char two_cl[] = "POST /projects HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                 "Content-Length: 11\r\n\r\n{}";
    static const char cl_chunked[] = "POST /projects HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    char buf[4096];

    CHECK_EQ_INT(raw_request(s->port, two_cl, sizeof(two_cl) - 1, buf, sizeof(buf)), 400);
    CHECK(strstr(buf, "more than one Content-Length header") != NULL);
    CHECK_EQ_INT(raw_request(s->port, cl_chunked, sizeof(cl_chunked) - 1, buf, sizeof(buf)), 400);
    CHECK(strstr(buf, "Content-Length together with Transfer-Encoding") != NULL);
}

/* POST path with a body of len bytes (may hold NULs): the status. */
static long post_bytes(const struct th_server *s, const char *path, const char *body, size_t len,
                       char *err, size_t errlen)
{
    struct th_reply r;
    long st = th_http(s, "POST", path, body, len, &r);

    snprintf(err, errlen, "%s", r.body != NULL ? r.body : "");
    th_reply_free(&r);
    return st;
}

static void json_text(const struct th_server *s)
{
    static const char nul_escape[] = "{\"projectId\":\"p1\\u0000x\"}";
    static const char nul_byte[] = "{\"projectId\":\"p1\0x\"}";
    static const char bad_id[] = "{\"projectId\":\"p\xff"
                                 "1\"}";
    static const char bad_name[] = "{\"id\":\"u1\",\"name\":\"a\xc3\x28\"}";
    static const char surrogate[] = "{\"id\":\"u2\",\"name\":\"\xed\xa0\x80\"}";
    static const char good_name[] = "{\"id\":\"u3\",\"name\":\"caf\xc3\xa9 \\u00e9\"}";
    char err[512];
    cJSON *j = NULL;

    CHECK_EQ_INT(th_create_project(s, "p1", &j), 201);
    cJSON_Delete(j);
    CHECK_EQ_INT(
        post_bytes(s, "/workers/start", nul_escape, sizeof(nul_escape) - 1, err, sizeof(err)), 400);
    CHECK(strstr(err, "NUL") != NULL);
    CHECK_EQ_INT(post_bytes(s, "/workers/start", nul_byte, sizeof(nul_byte) - 1, err, sizeof(err)),
                 400);
    CHECK_EQ_INT(post_bytes(s, "/workers/start", bad_id, sizeof(bad_id) - 1, err, sizeof(err)),
                 400);
    CHECK(strstr(err, "UTF-8") != NULL);
    /* p1 was not started by any of them. */
    j = NULL;
    CHECK_EQ_INT(th_http_json(s, "GET", "/workers/status/p1", NULL, &j), 200);
    CHECK(th_json_bool(j, "isRunning") == 0);
    cJSON_Delete(j);
    CHECK_EQ_INT(post_bytes(s, "/projects", bad_name, sizeof(bad_name) - 1, err, sizeof(err)), 400);
    CHECK(strstr(err, "UTF-8") != NULL);
    CHECK_EQ_INT(post_bytes(s, "/projects", surrogate, sizeof(surrogate) - 1, err, sizeof(err)),
                 400);
    CHECK_EQ_INT(th_http_json(s, "GET", "/projects/u1", NULL, NULL), 404);
    CHECK_EQ_INT(post_bytes(s, "/projects", good_name, sizeof(good_name) - 1, err, sizeof(err)),
                 201);
}

static void test_budget(struct th_db *db)
{
    static const char *const env[] = {"WF_LISTEN_ADDR=127.0.0.1", "WF_MAX_BODY_BYTES=4194304",
                                      "WF_MAX_ARTIFACT_BYTES=4194304",
                                      "WF_MAX_INFLIGHT_BODY_BYTES=8388608", NULL};
    struct th_server s;

    if (!CHECK(th_server_start(&s, db, env) == 0))
        goto out;
    CHECK(!th_server_log_contains(&s, "WF_API_TOKEN is not set"));
    busy_bodies(&s);
    chunked_body(&s);
    framing(&s);
    json_text(&s);
    CHECK_EQ_INT(th_metric(&s, "wf_http_body_bytes_buffered"), 0);
out:
    CHECK(th_server_stop(&s, 10000) == 0);
    th_server_cleanup(&s);
}

/* ---- C: connections ---- */

/* 1,000 requests abandoned halfway: libmicrohttpd logs each; a few lines
 * must reach the log. */
static void aborted_requests(const struct th_server *s)
{
    static const char part[] = "POST /projects HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    int before = log_count(s, "http: ");
    int after;

    for (int i = 0; i < N_ABORTED; i++) {
        int fd = tcp_connect("127.0.0.1", s->port);
        struct linger lg = {1, 0};
        if (fd < 0)
            continue;
        (void)send_all(fd, part, sizeof(part) - 1);
        if (i % 2 == 0) /* half closed nicely, half reset */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    }
    th_sleep_ms(1000);
    after = log_count(s, "http: ");
    fprintf(stderr, "  %d abandoned requests: %d lines of http warnings\n", N_ABORTED,
            after - before);
    CHECK(after - before >= 1);
    CHECK(after - before <= 10);
}

/* Idle connections: fds[0..n) from src; returns how many connected. */
static int open_idle(int *fds, int n, const char *src, int port)
{
    int ok = 0;

    for (int i = 0; i < n; i++) {
        fds[i] = tcp_connect(src, port);
        ok += fds[i] >= 0;
    }
    return ok;
}

/* Re-opens the flood's connections the server closed, like an attacker
 * would. Returns how many it re-opened. */
static int refill(int *fds, int n, int port)
{
    int again = 0;

    for (int i = 0; i < n && again < 64; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char src[32], b[64];
        if (fds[i] >= 0 && (poll(&p, 1, 0) == 0 || recv(fds[i], b, sizeof(b), 0) > 0))
            continue;
        if (fds[i] >= 0)
            close(fds[i]);
        snprintf(src, sizeof(src), "127.0.0.%d", 3 + i / PER_IP);
        fds[i] = tcp_connect(src, port);
        again++;
    }
    return again;
}

static void connection_flood(const struct th_server *s)
{
    static int own[3 * PER_IP], flood[FLOOD_ADDRS * PER_IP];
    long long ms, worst = 0;
    int n, probes = 0, ok = 0, reopened = 0;
    long long until;

    /* Beyond the per-address limit from 127.0.0.1. */
    n = open_idle(own, 3 * PER_IP, "127.0.0.1", s->port);
    th_sleep_ms(300);
    CHECK_EQ_INT(get_from("127.0.0.2", s->port, "/health", 2000, &ms), 200);
    fprintf(stderr,
            "  %d idle connections from 127.0.0.1 (limit %d per address): /health from "
            "127.0.0.2 in %lld ms\n",
            n, PER_IP, ms);
    /* Beyond the global limit, from 8 more addresses, re-opened as the
     * server closes them; /health probed throughout. */
    n = 0;
    for (int a = 0; a < FLOOD_ADDRS; a++) {
        char src[32];
        snprintf(src, sizeof(src), "127.0.0.%d", 3 + a);
        n += open_idle(flood + a * PER_IP, PER_IP, src, s->port);
    }
    until = th_now_ms() + 5000;
    while (th_now_ms() < until) {
        int st = get_from("127.0.0.2", s->port, "/health", 3000, &ms);
        probes++;
        ok += st == 200;
        if (ms > worst)
            worst = ms;
        reopened += refill(flood, FLOOD_ADDRS * PER_IP, s->port);
        th_sleep_ms(100);
    }
    fprintf(stderr,
            "  %d + %d idle connections against a limit of %d (%d re-opened): /health %d/%d "
            "answered 200, slowest %lld ms, %lld connections open\n",
            3 * PER_IP, n, MAX_CONNS, reopened, ok, probes, worst,
            th_metric(s, "wf_http_connections"));
    CHECK_EQ_INT(ok, probes);
    CHECK(probes >= 10);
    for (int i = 0; i < 3 * PER_IP; i++)
        if (own[i] >= 0)
            close(own[i]);
    for (int i = 0; i < FLOOD_ADDRS * PER_IP; i++)
        if (flood[i] >= 0)
            close(flood[i]);
}

/* A client sending its headers a byte every 100 ms is cut off at the
 * deadline, though it is never idle. */
static void slow_loris(const struct th_server *s)
{
    static const char start[] = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    int fd = tcp_connect("127.0.0.2", s->port);
    long long t0 = th_now_ms(), cut = -1;

    if (!CHECK(fd >= 0))
        return;
    CHECK(send_all(fd, start, sizeof(start) - 1) == 0);
    while (th_now_ms() - t0 < 4 * DEADLINE_MS) {
        char b[256];
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1 ||
            (poll(&p, 1, 100) == 1 && recv(fd, b, sizeof(b), 0) <= 0)) {
            cut = th_now_ms() - t0;
            break;
        }
    }
    close(fd);
    fprintf(stderr, "  a client trickling its headers was cut off after %lld ms (deadline %d)\n",
            cut, DEADLINE_MS);
    CHECK(cut >= DEADLINE_MS - 100 && cut < DEADLINE_MS + 1500);
}

static void test_connections(struct th_db *db)
{
    char pi[64], mc[64], rt[64];
    const char *env[] = {pi, mc, rt, "WF_LISTEN_ADDR", NULL};
    struct th_server s;

    snprintf(pi, sizeof(pi), "WF_MAX_CONNECTIONS_PER_IP=%d", PER_IP);
    snprintf(mc, sizeof(mc), "WF_MAX_CONNECTIONS=%d", MAX_CONNS);
    snprintf(rt, sizeof(rt), "WF_REQUEST_TIMEOUT_MS=%d", DEADLINE_MS);
    if (!CHECK(th_server_start(&s, db, env) == 0))
        goto out;
    CHECK_EQ_INT(log_count(&s, "WF_API_TOKEN is not set and the API listens on 0.0.0.0"), 1);
    CHECK(th_server_log_contains(&s, "without a password"));
    aborted_requests(&s);
    connection_flood(&s);
    slow_loris(&s);
    CHECK_EQ_INT(get_from("127.0.0.1", s.port, "/health", 2000, NULL), 200);
out:
    CHECK(th_server_stop(&s, 10000) == 0);
    th_server_cleanup(&s);
}

/* ---- D: start-up refusals ---- */

static void test_refused_config(struct th_db *db)
{
    static const struct {
        const char *setting, *message;
    } cases[] = {
        {"WF_API_TOKEN=", "WF_API_TOKEN is set but empty"},
        {"WF_MAX_INFLIGHT_BODY_BYTES=2097152", "WF_MAX_INFLIGHT_BODY_BYTES"},
        {"WF_MAX_CONNECTIONS_PER_IP=-1", "WF_MAX_CONNECTIONS_PER_IP"},
        {"WF_REQUEST_TIMEOUT_MS=5", "WF_REQUEST_TIMEOUT_MS"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i].setting, NULL};
        struct th_server s;
        if (!CHECK(th_server_spawn(&s, db, env) == 0))
            continue;
        CHECK(th_server_wait(&s, 5000) == 0);
        if (!CHECK_EQ_INT(th_exit_code(&s), 100) ||
            !CHECK(th_server_log_contains(&s, cases[i].message)))
            fprintf(stderr, "  case %s\n", cases[i].setting);
        th_server_cleanup(&s);
    }
}

int main(void)
{
    struct th_db db;
    struct rlimit rl;

    memset(&db, 0, sizeof(db));
    if (th_init("test_edge", 1) != 0)
        return TH_SKIP;
    /* The floods need a few hundred descriptors here. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(chunk, 'a', sizeof(chunk));
    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    test_refused_config(&db);
    test_token_first(&db);
    test_no_token_flood(&db);
    test_budget(&db);
    test_connections(&db);
out:
    th_db_drop(&db);
    return th_finish();
}
