/*
 * bench_chan.c: what the worker channel (common/chan.c) costs over the bare
 * socket it runs on, between two processes (a forked echo child).
 *
 *   bench_chan rtt N   N round trips of a 1 KiB JSON request echoed back by
 *                      the child: through chan (encode, send, receive and
 *                      parse on both sides), then through a bare SEQPACKET
 *                      socketpair moving 1 KiB of raw bytes with write/read
 *   bench_chan big N   N passes of a JSON object with one 8 MiB string,
 *                      timed until the child's 1-byte or {"t":"ack"} reply:
 *                      through chan (print, sealed memfd, map and parse);
 *                      raw bytes of the same text over a SOCK_STREAM
 *                      socketpair; the same with cJSON_ParseWithLength in
 *                      the child; and with the sender printing the object
 *                      too (the work chan does, minus the memfd)
 *
 * Each scenario prints one JSON object on stdout: rtt scenarios with round
 * trips per second and percentiles in µs, big ones with percentiles in ms
 * and MB/s at the median. N is at most 100000 (rtt) or 1000 (big); every
 * loop also stops after 60 s, and any wait longer than 10 s counts as an
 * error and ends the scenario. Exit 0 when every round trip succeeded.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "chan.h"
#include "stats.h"

#define MAX_N_RTT 100000
#define MAX_N_BIG 1000
#define MAX_SECONDS 60.0
#define WAIT_MS 10000
#define RTT_BYTES 1024
#define BIG_BYTES (8 * 1024 * 1024)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for events on fd; 0 when they came, -1 on timeout or error. */
static int wait_fd(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    int r;

    do {
        r = poll(&p, 1, WAIT_MS);
    } while (r < 0 && errno == EINTR);
    return r == 1 ? 0 : -1;
}

/* Writes or reads exactly n bytes on a blocking socket; 0, or -1. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends through ch and flushes until the queue is empty; 0, or -1. */
static int chan_send_all(struct chan *ch, const cJSON *msg)
{
    int r;

    if (chan_send(ch, msg, -1) < 0)
        return -1;
    while ((r = chan_flush(ch, 0)) == 1) /* no stall deadline here */
        if (wait_fd(chan_fd(ch), POLLOUT) < 0)
            return -1;
    return r;
}

/* Receives one message from ch, waiting for it; 1, or -1. */
static int chan_recv_wait(struct chan *ch, cJSON **out)
{
    for (;;) {
        int r = chan_recv(ch, out, NULL);
        if (r == 1)
            return 1;
        if (r == 0 || errno != EAGAIN || wait_fd(chan_fd(ch), POLLIN) < 0)
            return -1;
    }
}

/* The children: serve until end of file, then _exit. */

static void child_chan_echo(int fd)
{
    struct chan *ch = chan_new(fd, NULL);
    cJSON *m;

    if (ch == NULL)
        _exit(1);
    while (chan_recv_wait(ch, &m) == 1) {
        int r = chan_send_all(ch, m);
        cJSON_Delete(m);
        if (r < 0)
            break;
    }
    chan_free(ch);
    _exit(0);
}

static void child_bare_echo(int fd)
{
    char buf[RTT_BYTES * 2];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    _exit(0);
}

static void child_chan_ack(int fd)
{
    struct chan *ch = chan_new(fd, NULL);
    cJSON *ack = cJSON_CreateObject(), *m;

    if (ch == NULL || ack == NULL)
        _exit(1);
    cJSON_AddStringToObject(ack, "t", "ack");
    while (chan_recv_wait(ch, &m) == 1) {
        int ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "data"));
        cJSON_Delete(m);
        if (!ok || chan_send_all(ch, ack) < 0)
            break;
    }
    cJSON_Delete(ack);
    chan_free(ch);
    _exit(0);
}

/* Reads len bytes per pass (parsing them if parse), replies one byte. */
static void child_stream_ack(int fd, size_t len, int parse)
{
    char *buf = malloc(len);

    if (buf == NULL)
        _exit(1);
    while (read_all(fd, buf, len) == 0) {
        char ack = 'k';
        if (parse) {
            cJSON *m = cJSON_ParseWithLength(buf, len);
            if (!cJSON_IsObject(m))
                ack = 'e';
            cJSON_Delete(m);
        }
        if (write_all(fd, &ack, 1) < 0)
            break;
    }
    free(buf);
    _exit(0);
}

/* Forks a child running fn on sv[1]; parent keeps sv[0]. */
static pid_t start_child(int type, int sv[2], void (*fn)(int))
{
    pid_t pid;

    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        fn(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    return pid;
}

static void reap(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

static void report_rtt(const char *label, double *us, long n, long errors, double elapsed)
{
    double sum = 0;

    qsort(us, (size_t)n, sizeof(double), stats_cmp_double);
    for (long i = 0; i < n; i++)
        sum += us[i];
    printf("{\"label\":\"%s\",\"n\":%ld,\"errors\":%ld,\"msg_bytes\":%d,\"rtt_per_s\":%.0f,"
           "\"mean_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f}\n",
           label, n, errors, RTT_BYTES, elapsed > 0 ? (double)n / elapsed : 0.0,
           n > 0 ? sum / (double)n : 0.0, stats_pct(us, n, 50), stats_pct(us, n, 99),
           n > 0 ? us[n - 1] : 0.0);
}

static void report_big(const char *label, double *ms, long n, long errors, size_t bytes)
{
    double p50;

    qsort(ms, (size_t)n, sizeof(double), stats_cmp_double);
    p50 = stats_pct(ms, n, 50);
    printf("{\"label\":\"%s\",\"n\":%ld,\"errors\":%ld,\"bytes\":%zu,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"min_ms\":%.3f,\"mb_per_s_p50\":%.0f}\n",
           label, n, errors, bytes, p50, stats_pct(ms, n, 99), n > 0 ? ms[0] : 0.0,
           p50 > 0 ? (double)bytes / (1024.0 * 1024.0) / (p50 / 1000.0) : 0.0);
}

/* {"t":"req","seq":0,"data":"xxx…"} of exactly RTT_BYTES compact bytes
 * while seq has one digit (it counts 0..9). */
static cJSON *rtt_request(void)
{
    static char data[RTT_BYTES];
    size_t fill = RTT_BYTES - strlen("{\"t\":\"req\",\"seq\":0,\"data\":\"\"}");
    cJSON *o = cJSON_CreateObject();

    memset(data, 'x', fill);
    data[fill] = '\0';
    cJSON_AddStringToObject(o, "t", "req");
    cJSON_AddNumberToObject(o, "seq", 0);
    cJSON_AddStringToObject(o, "data", data);
    return o;
}

static int bench_rtt(long n)
{
    long warm = n / 10 < 100 ? n / 10 : 100;
    double *v = calloc((size_t)n, sizeof(double));
    cJSON *req = rtt_request();
    char out[RTT_BYTES], in[RTT_BYTES * 2];
    long done, errors, total_errors = 0;
    struct chan *ch;
    double t0 = now_s(), t;
    pid_t pid;
    int sv[2];

    if (v == NULL || req == NULL)
        return 2;

    /* Through chan. */
    pid = start_child(SOCK_SEQPACKET, sv, child_chan_echo);
    ch = pid > 0 ? chan_new(sv[0], NULL) : NULL;
    if (ch == NULL)
        return 2;
    done = errors = 0;
    for (long i = -warm; i < n; i++) {
        cJSON *rep = NULL;
        int ok;

        if (i == 0)
            t0 = now_s();
        if (i >= 0 && now_s() - t0 >= MAX_SECONDS)
            break;
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(req, "seq"),
                             (double)((i + warm) % 10));
        t = now_s();
        ok = chan_send_all(ch, req) == 0 && chan_recv_wait(ch, &rep) == 1;
        ok = ok && cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rep, "seq")) ==
                       (double)((i + warm) % 10);
        t = now_s() - t;
        cJSON_Delete(rep);
        if (i < 0)
            continue;
        v[done++] = t * 1e6;
        if (!ok) {
            errors++;
            break;
        }
    }
    t = now_s() - t0;
    chan_free(ch);
    reap(pid);
    report_rtt("rtt_chan", v, done, errors, t);
    total_errors += errors + (done < n);

    /* The bare socket, raw bytes. */
    memcpy(out, "raw", 3);
    memset(out + 3, 'x', sizeof(out) - 3);
    pid = start_child(SOCK_SEQPACKET, sv, child_bare_echo);
    if (pid < 0)
        return 2;
    done = errors = 0;
    for (long i = -warm; i < n; i++) {
        int ok;

        if (i == 0)
            t0 = now_s();
        if (i >= 0 && now_s() - t0 >= MAX_SECONDS)
            break;
        t = now_s();
        ok = send(sv[0], out, sizeof(out), MSG_NOSIGNAL) == (ssize_t)sizeof(out) &&
             read(sv[0], in, sizeof(in)) == (ssize_t)sizeof(out);
        t = now_s() - t;
        if (i < 0)
            continue;
        v[done++] = t * 1e6;
        if (!ok) {
            errors++;
            break;
        }
    }
    t = now_s() - t0;
    close(sv[0]);
    reap(pid);
    report_rtt("rtt_bare", v, done, errors, t);
    total_errors += errors + (done < n);

    cJSON_Delete(req);
    free(v);
    return total_errors == 0 ? 0 : 1;
}

static size_t stream_len;
static int stream_parse;

static void child_stream(int fd)
{
    child_stream_ack(fd, stream_len, stream_parse);
}

/* One stream scenario: raw text, or printed from obj each pass if print. */
static long big_stream(const char *label, const cJSON *obj, const char *text, size_t len, int parse,
                       int print, double *v, long n)
{
    long done = 0, errors = 0;
    double t0 = now_s();
    pid_t pid;
    int sv[2];

    stream_len = len;
    stream_parse = parse;
    pid = start_child(SOCK_STREAM, sv, child_stream);
    if (pid < 0)
        return 1;
    for (long i = 0; i < n && now_s() - t0 < MAX_SECONDS; i++) {
        double t = now_s();
        char ack = 0;
        char *p = print ? cJSON_PrintUnformatted(obj) : NULL;
        int ok = (!print || (p != NULL && strlen(p) == len)) &&
                 write_all(sv[0], print ? p : text, len) == 0 && read_all(sv[0], &ack, 1) == 0 &&
                 ack == 'k';

        cJSON_free(p);
        v[done++] = (now_s() - t) * 1000.0;
        if (!ok) {
            errors++;
            break;
        }
    }
    close(sv[0]);
    reap(pid);
    report_big(label, v, done, errors, len);
    return errors + (done < n);
}

static int bench_big(long n)
{
    double *v = calloc((size_t)n, sizeof(double));
    char *data = malloc(BIG_BYTES + 1);
    cJSON *obj = cJSON_CreateObject();
    long done = 0, errors = 0, total_errors = 0;
    struct chan *ch;
    char *text;
    size_t len;
    double t0;
    pid_t pid;
    int sv[2];

    if (v == NULL || data == NULL || obj == NULL)
        return 2;
    memset(data, 'x', BIG_BYTES);
    data[BIG_BYTES] = '\0';
    cJSON_AddStringToObject(obj, "data", data);
    free(data);
    text = cJSON_PrintUnformatted(obj);
    if (text == NULL)
        return 2;
    len = strlen(text);

    /* Through chan: print, memfd, map, parse, ack. */
    pid = start_child(SOCK_SEQPACKET, sv, child_chan_ack);
    ch = pid > 0 ? chan_new(sv[0], NULL) : NULL;
    if (ch == NULL)
        return 2;
    t0 = now_s();
    for (long i = 0; i < n && now_s() - t0 < MAX_SECONDS; i++) {
        double t = now_s();
        cJSON *ack = NULL;
        int ok = chan_send_all(ch, obj) == 0 && chan_recv_wait(ch, &ack) == 1;

        cJSON_Delete(ack);
        v[done++] = (now_s() - t) * 1000.0;
        if (!ok) {
            errors++;
            break;
        }
    }
    chan_free(ch);
    reap(pid);
    report_big("big_chan", v, done, errors, len);
    total_errors += errors + (done < n);

    total_errors += big_stream("big_stream_raw", obj, text, len, 0, 0, v, n);
    total_errors += big_stream("big_stream_parse", obj, text, len, 1, 0, v, n);
    total_errors += big_stream("big_stream_print_parse", obj, text, len, 1, 1, v, n);

    cJSON_free(text);
    cJSON_Delete(obj);
    free(v);
    return total_errors == 0 ? 0 : 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_chan rtt N | big N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    char *end;
    long n;

    if (argc != 3)
        usage();
    errno = 0;
    n = strtol(argv[2], &end, 10);
    if (errno != 0 || *end != '\0' || n < 1)
        usage();
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[1], "rtt") == 0 && n <= MAX_N_RTT)
        return bench_rtt(n);
    if (strcmp(argv[1], "big") == 0 && n <= MAX_N_BIG)
        return bench_big(n);
    usage();
    return 2;
}
