/*
 * test_events.c: the live event streams (server/events.c, docs/api.md
 * "Live events") against the real server, database and a sandboxed worker
 * running the engine's test plugin (tests/plugins/engine_recorder.h):
 *   - a multi-step run's stream: every step once, in seq (commit) order,
 *     then the run's final status; event ids grow;
 *   - a reconnect with Last-Event-ID in the middle of a run misses nothing
 *     and repeats nothing; one after the end sends nothing more;
 *   - a project stream: its ready event, the runs' changes, a resume;
 *   - a failed run retried: the stream says "retry" and sends the new
 *     history; a resume from before the retry does the same;
 *   - errors: malformed ids 400, unknown run or project 404, a malformed
 *     Last-Event-ID 400;
 *   - a client that stops reading (small receive buffer) while a run
 *     writes 600 KB of events: core's memory stays bounded, and once it
 *     reads again every event arrives, in order;
 *   - 1,000 idle subscribers cost core less than 20 MiB and /health still
 *     answers;
 *   - a second server on the same database (another host id, no worker)
 *     streams a run the first one executes: events come from the rows;
 *   - a clean shutdown with streams open ends them and exits 0;
 *   - `wfctl events RUN --output json` follows a run to its end: one JSON
 *     object per line, every step once, exit 0 (WFCTL_BIN; skipped when
 *     unset).
 * The SSE client below speaks HTTP/1.1 over a plain loopback socket
 * (chunked body), so a test can hold many streams and choose when to read.
 * Every wait is bounded.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;
static struct th_server *sse_srv = &srv; /* where sse_open connects */
static PGconn *pg;
static char dir[256];

#define N_IDLE 1000
#ifdef WF_SANITIZED
/* AddressSanitizer's redzones and quarantine of freed memory multiply
 * what the same buffers cost (seen: +44 MB for 1,000 idle streams): the
 * bounds only catch growth without limit there. */
#define IDLE_RSS_BOUND_KB (96 * 1024)
#define SLOW_RSS_BOUND_KB (64 * 1024)
#else
#define IDLE_RSS_BOUND_KB (20 * 1024)
#define SLOW_RSS_BOUND_KB (16 * 1024)
#endif

/* ---- a small SSE client ---- */

struct sse {
    int fd;
    int status;
    int eof;
    char *raw; /* received, not yet de-chunked */
    size_t rlen, rcap;
    char *body; /* de-chunked, not yet parsed into events */
    size_t blen, bcap;
};

struct sse_ev {
    char id[160];
    char event[32];
    char *data; /* malloc'ed, or NULL */
};

static void grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    while (*cap < need)
        *cap = *cap ? *cap * 2 : 4096;
    *buf = realloc(*buf, *cap);
    if (*buf == NULL)
        abort();
}

/* Connects to the server and sends GET path (Last-Event-ID last, if not
 * NULL); rcvbuf > 0 sets SO_RCVBUF first. Returns 0 or -1. */
static int sse_open(struct sse *s, const char *path, const char *last, int rcvbuf)
{
    struct sockaddr_in a;
    char req[1024];
    int n;

    memset(s, 0, sizeof(*s));
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -1;
    if (rcvbuf > 0)
        (void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)sse_srv->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("connect");
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n%s%s%s\r\n",
                 path, last != NULL ? "Last-Event-ID: " : "", last != NULL ? last : "",
                 last != NULL ? "\r\n" : "");
    if (write(s->fd, req, (size_t)n) != n)
        return -1;
    return 0;
}

static void sse_close(struct sse *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->raw);
    free(s->body);
    s->raw = s->body = NULL;
}

/* Reads what the socket holds, waiting up to ms. Returns bytes read, 0 on
 * timeout, -1 at end of stream or error. */
static int sse_fill(struct sse *s, int ms)
{
    struct pollfd p = {s->fd, POLLIN, 0};
    ssize_t n;

    if (poll(&p, 1, ms) <= 0)
        return 0;
    grow(&s->raw, &s->rcap, s->rlen + 65536);
    n = read(s->fd, s->raw + s->rlen, 65536);
    if (n <= 0) {
        s->eof = 1;
        return -1;
    }
    s->rlen += (size_t)n;
    return (int)n;
}

static void raw_consume(struct sse *s, size_t n)
{
    memmove(s->raw, s->raw + n, s->rlen - n);
    s->rlen -= n;
}

/* Reads the status line and headers (up to ms). Returns the status or -1. */
static int sse_headers(struct sse *s, int ms)
{
    long long until = th_now_ms() + ms;

    while (th_now_ms() < until) {
        char *end;
        if (s->rlen > 0) {
            grow(&s->raw, &s->rcap, s->rlen + 1);
            s->raw[s->rlen] = '\0';
            end = strstr(s->raw, "\r\n\r\n");
            if (end != NULL) {
                s->status = (int)strtol(s->raw + 9, NULL, 10);
                raw_consume(s, (size_t)(end + 4 - s->raw));
                return s->status;
            }
        }
        if (sse_fill(s, 50) < 0)
            return -1;
    }
    return -1;
}

/* Moves complete chunks from raw to body. */
static void dechunk(struct sse *s)
{
    for (;;) {
        char *crlf;
        unsigned long size;
        grow(&s->raw, &s->rcap, s->rlen + 1);
        s->raw[s->rlen] = '\0';
        crlf = strstr(s->raw, "\r\n");
        if (crlf == NULL)
            return;
        size = strtoul(s->raw, NULL, 16);
        if (size == 0) {
            s->eof = 1;
            return;
        }
        if (s->rlen < (size_t)(crlf + 2 - s->raw) + size + 2)
            return;
        grow(&s->body, &s->bcap, s->blen + size + 1);
        memcpy(s->body + s->blen, crlf + 2, size);
        s->blen += size;
        raw_consume(s, (size_t)(crlf + 2 - s->raw) + size + 2);
    }
}

/* The next event (comments and retry lines skipped), waiting up to ms.
 * Returns 1 (ev filled; free ev->data), 0 on timeout, -1 at the end. */
static int sse_next(struct sse *s, struct sse_ev *ev, int ms)
{
    long long until = th_now_ms() + ms;

    memset(ev, 0, sizeof(*ev));
    for (;;) {
        char *end;
        dechunk(s);
        grow(&s->body, &s->bcap, s->blen + 1);
        s->body[s->blen] = '\0';
        end = strstr(s->body, "\n\n");
        if (end != NULL) {
            size_t blk = (size_t)(end + 2 - s->body);
            char *line = s->body;
            *end = '\0';
            while (line != NULL && *line != '\0') {
                char *nl = strchr(line, '\n');
                if (nl != NULL)
                    *nl = '\0';
                if (strncmp(line, "id: ", 4) == 0)
                    snprintf(ev->id, sizeof(ev->id), "%s", line + 4);
                else if (strncmp(line, "event: ", 7) == 0)
                    snprintf(ev->event, sizeof(ev->event), "%s", line + 7);
                else if (strncmp(line, "data: ", 6) == 0)
                    ev->data = strdup(line + 6);
                line = nl != NULL ? nl + 1 : NULL;
            }
            memmove(s->body, s->body + blk, s->blen - blk);
            s->blen -= blk;
            if (ev->event[0] != '\0')
                return 1;
            free(ev->data);
            memset(ev, 0, sizeof(*ev));
            continue;
        }
        if (s->eof)
            return -1;
        if (th_now_ms() >= until)
            return 0;
        if (sse_fill(s, 50) < 0 && s->rlen == 0)
            return -1;
    }
}

/* ---- helpers ---- */

static const char *start_run(const char *workflow, const char *input, char *id, size_t len)
{
    char body[8192];
    cJSON *j = NULL;

    snprintf(body, sizeof(body), "{\"workflow\":\"%s\",\"input\":%s}", workflow, input);
    id[0] = '\0';
    if (CHECK_EQ_INT(th_http_json(&srv, "POST", "/projects/p/executions", body, &j), 202) &&
        th_json_str(j, "executionId") != NULL)
        snprintf(id, len, "%s", th_json_str(j, "executionId"));
    cJSON_Delete(j);
    return id;
}

/* Run event ids "g.s.v.c": 1 when b comes after a. */
static int run_id_after(const char *a, const char *b)
{
    long long x[4] = {0}, y[4] = {0};

    if (a[0] == '\0')
        return 1;
    if (sscanf(a, "%lld.%lld.%lld.%lld", &x[0], &x[1], &x[2], &x[3]) != 4 ||
        sscanf(b, "%lld.%lld.%lld.%lld", &y[0], &y[1], &y[2], &y[3]) != 4)
        return 0;
    for (int i = 0; i < 3; i++) {
        if (y[i] != x[i])
            return y[i] > x[i];
    }
    return 0;
}

/* What a run stream delivered. */
struct run_log {
    int steps[1024]; /* times each seq arrived */
    int order_ok;    /* steps came in seq order */
    int next_seq;
    int ids_ok; /* ids grew */
    char last_id[160];
    char status[32]; /* last run status */
    int run_events;
    int completed;
};

/* Reads run events into lg until the run's status is final or ms pass
 * (or stop_after steps arrived, when > 0). Returns 0, or -1 on timeout or
 * the stream's end. */
static int follow_run(struct sse *s, struct run_log *lg, int ms, int stop_after)
{
    long long until = th_now_ms() + ms;
    int got = 0;

    while (th_now_ms() < until) {
        struct sse_ev ev;
        cJSON *j;
        int rc = sse_next(s, &ev, 200);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        if (!run_id_after(lg->last_id, ev.id))
            lg->ids_ok = 0;
        snprintf(lg->last_id, sizeof(lg->last_id), "%s", ev.id);
        j = ev.data != NULL ? cJSON_Parse(ev.data) : NULL;
        if (strcmp(ev.event, "step") == 0) {
            long long seq = th_json_num(j, "seq");
            if (seq >= 0 && seq < 1024) {
                lg->steps[seq]++;
                if (seq != lg->next_seq)
                    lg->order_ok = 0;
                lg->next_seq = (int)seq + 1;
            }
            got++;
        } else if (strcmp(ev.event, "run") == 0) {
            const char *st = th_json_str(j, "status");
            lg->run_events++;
            snprintf(lg->status, sizeof(lg->status), "%s", st != NULL ? st : "?");
            if (st != NULL && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
                               strcmp(st, "cancelled") == 0)) {
                lg->completed = 1;
                cJSON_Delete(j);
                free(ev.data);
                return 0;
            }
        }
        cJSON_Delete(j);
        free(ev.data);
        if (stop_after > 0 && got >= stop_after)
            return 0;
    }
    return -1;
}

static void run_log_init(struct run_log *lg)
{
    memset(lg, 0, sizeof(*lg));
    lg->order_ok = lg->ids_ok = 1;
}

static long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    long v = -1;
    FILE *f;

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

/* ---- the tests ---- */

static char done_run[64]; /* a completed run of 5 steps, for later tests */

static void test_order(void)
{
    char in[512], id[64], path[160];
    struct sse s;
    struct run_log lg;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":5,\"step_ms\":30}", dir);
    start_run("steps", in, id, sizeof(id));
    snprintf(path, sizeof(path), "/executions/%s/events", id);
    if (!CHECK(sse_open(&s, path, NULL, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    run_log_init(&lg);
    CHECK(follow_run(&s, &lg, 20000, 0) == 0);
    CHECK_STR(lg.status, "completed");
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(lg.steps[i], 1);
    CHECK_EQ_INT(lg.next_seq, 5);
    CHECK(lg.order_ok);
    CHECK(lg.ids_ok);
    sse_close(&s);
    snprintf(done_run, sizeof(done_run), "%s", id);

    /* Opened after the end: the whole history, then the final status. */
    if (!CHECK(sse_open(&s, path, NULL, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    run_log_init(&lg);
    CHECK(follow_run(&s, &lg, 5000, 0) == 0);
    CHECK_EQ_INT(lg.next_seq, 5);
    CHECK_EQ_INT(lg.run_events, 1);
    CHECK(lg.order_ok);
    sse_close(&s);
}

static void test_resume(void)
{
    char in[512], id[64], path[160], last[160];
    struct sse s;
    struct run_log lg;
    struct sse_ev ev;
    int rc;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":8,\"step_ms\":80}", dir);
    start_run("steps", in, id, sizeof(id));
    snprintf(path, sizeof(path), "/executions/%s/events", id);
    run_log_init(&lg);
    if (!CHECK(sse_open(&s, path, NULL, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    CHECK(follow_run(&s, &lg, 20000, 3) == 0); /* three steps, then away */
    sse_close(&s);
    th_sleep_ms(200); /* steps commit while nobody listens */
    snprintf(last, sizeof(last), "%s", lg.last_id);
    if (!CHECK(sse_open(&s, path, last, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    CHECK(follow_run(&s, &lg, 20000, 0) == 0);
    sse_close(&s);
    CHECK_STR(lg.status, "completed");
    for (int i = 0; i < 8; i++) {
        if (!CHECK_EQ_INT(lg.steps[i], 1))
            fprintf(stderr, "  step %d arrived %d times\n", i, lg.steps[i]);
    }
    CHECK(lg.order_ok);
    CHECK(lg.ids_ok);
    /* "running" once before the break, "completed" once after: the
     * resumed stream did not repeat "running". */
    CHECK_EQ_INT(lg.run_events, 2);

    /* Resumed from the last id: nothing more (keep-alives only). */
    if (!CHECK(sse_open(&s, path, lg.last_id, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    rc = sse_next(&s, &ev, 700);
    CHECK_EQ_INT(rc, 0);
    if (rc == 1) {
        fprintf(stderr, "  unexpected event %s %s\n", ev.event, ev.data ? ev.data : "");
        free(ev.data);
    }
    sse_close(&s);
}

static void test_project(void)
{
    char in[512], ids[3][64], ready[160] = "", last[160] = "";
    int done[3] = {0, 0, 0}, seen[3] = {0, 0, 0}, ndone = 0;
    long long until;
    struct sse s;
    struct sse_ev ev;

    if (!CHECK(sse_open(&s, "/projects/p/events", NULL, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    if (CHECK_EQ_INT(sse_next(&s, &ev, 5000), 1)) {
        CHECK_STR(ev.event, "ready");
        snprintf(ready, sizeof(ready), "%s", ev.id);
        free(ev.data);
    }
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":2}", dir);
    for (int i = 0; i < 3; i++)
        start_run("steps", in, ids[i], sizeof(ids[i]));
    until = th_now_ms() + 20000;
    while (ndone < 3 && th_now_ms() < until) {
        cJSON *j;
        if (sse_next(&s, &ev, 200) != 1)
            continue;
        snprintf(last, sizeof(last), "%s", ev.id);
        j = cJSON_Parse(ev.data != NULL ? ev.data : "");
        for (int i = 0; i < 3; i++) {
            const char *x = th_json_str(j, "executionId");
            const char *st = th_json_str(j, "status");
            if (x != NULL && strcmp(x, ids[i]) == 0 && st != NULL && strcmp(st, "completed") == 0 &&
                !done[i]) {
                done[i] = 1;
                ndone++;
            }
        }
        cJSON_Delete(j);
        free(ev.data);
    }
    sse_close(&s);
    CHECK_EQ_INT(ndone, 3);

    /* From the ready id: each run's latest state once. */
    if (!CHECK(sse_open(&s, "/projects/p/events", ready, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    while (sse_next(&s, &ev, 700) == 1) {
        cJSON *j = cJSON_Parse(ev.data != NULL ? ev.data : "");
        for (int i = 0; i < 3; i++) {
            const char *x = th_json_str(j, "executionId");
            if (x != NULL && strcmp(x, ids[i]) == 0) {
                seen[i]++;
                CHECK_STR(th_json_str(j, "status"), "completed");
            }
        }
        cJSON_Delete(j);
        free(ev.data);
    }
    sse_close(&s);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(seen[i], 1);

    /* From the last id: nothing more. */
    if (!CHECK(sse_open(&s, "/projects/p/events", last, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    CHECK_EQ_INT(sse_next(&s, &ev, 700), 0);
    sse_close(&s);
}

/* Reads events until a final run status; appends "<event>:<seq or
 * status>" for each to out (space-separated). Returns 0, or -1 on timeout. */
static int collect(struct sse *s, char *out, size_t len, int ms)
{
    long long until = th_now_ms() + ms;

    out[0] = '\0';
    while (th_now_ms() < until) {
        struct sse_ev ev;
        cJSON *j;
        char item[96];
        const char *st;
        int fin = 0;
        if (sse_next(s, &ev, 200) != 1)
            continue;
        j = cJSON_Parse(ev.data != NULL ? ev.data : "");
        st = th_json_str(j, "status");
        if (strcmp(ev.event, "step") == 0)
            snprintf(item, sizeof(item), "step:%lld:%s", th_json_num(j, "seq"), st ? st : "?");
        else
            snprintf(item, sizeof(item), "%s:%s", ev.event, st ? st : "-");
        if (strcmp(ev.event, "run") == 0 && st != NULL &&
            (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0))
            fin = 1;
        snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", item);
        cJSON_Delete(j);
        free(ev.data);
        if (fin)
            return 0;
    }
    return -1;
}

static void test_retry(void)
{
    char in[512], id[64], path[200], got[1024], last[160] = "";
    struct sse s;
    struct sse_ev ev;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"key\":\"ev-retry\",\"failures\":3}", dir);
    start_run("retrying", in, id, sizeof(id));
    snprintf(path, sizeof(path), "/executions/%s/events", id);
    if (!CHECK(sse_open(&s, path, NULL, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    CHECK(collect(&s, got, sizeof(got), 20000) == 0);
    fprintf(stderr, "  before the retry: %s\n", got);
    CHECK(strstr(got, "step:0:failed") != NULL);
    CHECK(strstr(got, "run:failed") != NULL);
    sse_close(&s);
    /* the id of the final "failed" event, to resume from later */
    if (CHECK(sse_open(&s, path, NULL, 0) == 0)) {
        CHECK_EQ_INT(sse_headers(&s, 5000), 200);
        while (sse_next(&s, &ev, 500) == 1) {
            snprintf(last, sizeof(last), "%s", ev.id);
            free(ev.data);
        }
        sse_close(&s);
    }
    if (!CHECK(sse_open(&s, path, last, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    snprintf(path, sizeof(path), "/executions/%s/retry", id);
    CHECK_EQ_INT(th_http_json(&srv, "POST", path, NULL, NULL), 202);
    CHECK(collect(&s, got, sizeof(got), 20000) == 0);
    fprintf(stderr, "  after the retry: %s\n", got);
    CHECK(strncmp(got, "retry:", 6) == 0);
    CHECK(strstr(got, "step:0:completed") != NULL);
    CHECK(strstr(got, "step:0:failed") == NULL);
    CHECK(strstr(got, "run:completed") != NULL);
    sse_close(&s);
    /* resumed from before the retry, after it: the same */
    snprintf(path, sizeof(path), "/executions/%s/events", id);
    if (!CHECK(sse_open(&s, path, last, 0) == 0))
        return;
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    CHECK(collect(&s, got, sizeof(got), 10000) == 0);
    CHECK_STR(got, "retry:- step:0:completed run:completed");
    sse_close(&s);
}

static void test_errors(void)
{
    static const char *const bad_last[] = {"Last-Event-ID: x.1", NULL};
    struct th_reply r;
    char path[160];

    CHECK_EQ_INT(th_http(&srv, "GET", "/executions/not-a-uuid/events", NULL, 0, &r), 400);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http(&srv, "GET", "/executions/00000000-0000-4000-8000-000000000000/events",
                         NULL, 0, &r),
                 404);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http(&srv, "GET", "/projects/bad.id/events", NULL, 0, &r), 400);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http(&srv, "GET", "/projects/nope/events", NULL, 0, &r), 404);
    th_reply_free(&r);
    snprintf(path, sizeof(path), "/executions/%s/events", done_run);
    CHECK_EQ_INT(th_http_ex(&srv, "GET", path, NULL, 0, bad_last, 5000, &r), 400);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&srv, "GET", "/projects/p/events", NULL, 0, bad_last, 5000, &r), 400);
    th_reply_free(&r);
    /* HEAD: the headers of a stream, and the request ends */
    CHECK_EQ_INT(th_http_ex(&srv, "HEAD", path, NULL, 0, NULL, 5000, &r), 200);
    CHECK(r.headers != NULL && strstr(r.headers, "text/event-stream") != NULL);
    th_reply_free(&r);
}

static void test_slow_reader(pid_t core)
{
    char *in = malloc(8192), id[64], path[160], pay[3001];
    long rss0, rss1;
    struct sse s;
    struct run_log lg;

    memset(pay, 'x', 3000);
    pay[3000] = '\0';
    snprintf(in, 8192, "{\"dir\":\"%s\",\"n\":200,\"payload\":\"%s\"}", dir, pay);
    rss0 = proc_kb(core, "VmRSS");
    start_run("steps", in, id, sizeof(id));
    free(in);
    snprintf(path, sizeof(path), "/executions/%s/events", id);
    if (!CHECK(sse_open(&s, path, NULL, 2048) == 0))
        return;
    /* Not a byte read for 3 s while some 600 KB of events are due. */
    th_sleep_ms(3000);
    rss1 = proc_kb(core, "VmRSS");
    fprintf(stderr, "  client not reading: core VmRSS %ld kB before, %ld kB after\n", rss0, rss1);
    CHECK(rss0 > 0 && rss1 - rss0 < SLOW_RSS_BOUND_KB);
    CHECK_EQ_INT(sse_headers(&s, 5000), 200);
    run_log_init(&lg);
    CHECK(follow_run(&s, &lg, 30000, 0) == 0);
    CHECK_STR(lg.status, "completed");
    CHECK_EQ_INT(lg.next_seq, 200);
    CHECK(lg.order_ok);
    CHECK(lg.ids_ok);
    for (int i = 0; i < 200; i++) {
        if (lg.steps[i] != 1) {
            CHECK_EQ_INT(lg.steps[i], 1);
            break;
        }
    }
    sse_close(&s);
}

static void test_idle(pid_t core)
{
    static struct sse ss[N_IDLE];
    char path[160];
    long rss0, rss1;
    long long streams0 = th_metric(&srv, "wf_event_streams"), streams1;
    int opened = 0, ok = 0;
    struct th_reply r;

    snprintf(path, sizeof(path), "/executions/%s/events", done_run);
    rss0 = proc_kb(core, "VmRSS");
    for (int i = 0; i < N_IDLE; i++) {
        if (sse_open(&ss[i], path, NULL, 0) < 0)
            break;
        opened++;
    }
    for (int i = 0; i < opened; i++) {
        struct run_log lg;
        run_log_init(&lg);
        if (sse_headers(&ss[i], 10000) == 200 && follow_run(&ss[i], &lg, 10000, 0) == 0)
            ok++;
    }
    CHECK_EQ_INT(opened, N_IDLE);
    CHECK_EQ_INT(ok, N_IDLE);
    th_sleep_ms(500);
    rss1 = proc_kb(core, "VmRSS");
    fprintf(stderr, "  %d idle streams: core VmRSS %ld kB before, %ld kB after (bound +%d kB)\n",
            ok, rss0, rss1, IDLE_RSS_BOUND_KB);
    CHECK(rss0 > 0 && rss1 - rss0 < IDLE_RSS_BOUND_KB);
    CHECK_EQ_INT(th_http(&srv, "GET", "/health", NULL, 0, &r), 200);
    th_reply_free(&r);
    /* the earlier tests' closed streams may still count: a suspended
     * stream notices its client's end at its next write (keep-alive) */
    streams1 = th_metric(&srv, "wf_event_streams");
    CHECK(streams0 >= 0 && streams1 >= N_IDLE && streams1 <= N_IDLE + streams0);
    for (int i = 0; i < opened; i++)
        sse_close(&ss[i]);
}

static void test_wfctl(void)
{
    const char *bin = getenv("WFCTL_BIN");
    char in[512], id[64], cmd[1024], line[8192];
    int steps[4] = {0, 0, 0, 0}, lines = 0, bad = 0, completed = 0, st;
    FILE *p;

    if (bin == NULL) {
        fprintf(stderr, "  WFCTL_BIN unset: wfctl events not tested\n");
        return;
    }
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":4,\"step_ms\":50}", dir);
    start_run("steps", in, id, sizeof(id));
    snprintf(cmd, sizeof(cmd), "timeout 30 '%s' --url http://127.0.0.1:%d events %s --output json",
             bin, srv.port, id);
    p = popen(cmd, "r");
    if (!CHECK(p != NULL))
        return;
    while (fgets(line, sizeof(line), p) != NULL) {
        cJSON *j = cJSON_Parse(line);
        long long seq = th_json_num(j, "seq");
        const char *status = th_json_str(j, "status");
        lines++;
        if (j == NULL)
            bad++;
        else if (seq >= 0 && seq < 4)
            steps[seq]++;
        else if (status != NULL && strcmp(status, "completed") == 0)
            completed++;
        cJSON_Delete(j);
    }
    st = pclose(p);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(completed, 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(steps[i], 1);
    fprintf(stderr, "  wfctl events printed %d lines\n", lines);
}

static void test_other_host(const struct th_db *db)
{
    static struct th_server b;
    char in[512], id[64], path[160], rw[300];
    const char *ov[4];
    struct sse s;
    struct run_log lg;

    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    ov[0] = rw;
    ov[1] = "WF_HOST_ID=otherhost";
    ov[2] = "LOG_LEVEL=info";
    ov[3] = NULL;
    if (!CHECK(th_server_start(&b, db, ov) == 0))
        goto out;
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":4,\"step_ms\":50}", dir);
    start_run("steps", in, id, sizeof(id)); /* on the first server, whose worker runs p */
    snprintf(path, sizeof(path), "/executions/%s/events", id);
    sse_srv = &b;
    if (CHECK(sse_open(&s, path, NULL, 0) == 0)) {
        CHECK_EQ_INT(sse_headers(&s, 5000), 200);
        run_log_init(&lg);
        CHECK(follow_run(&s, &lg, 20000, 0) == 0);
        CHECK_STR(lg.status, "completed");
        CHECK_EQ_INT(lg.next_seq, 4);
        for (int i = 0; i < 4; i++)
            CHECK_EQ_INT(lg.steps[i], 1);
        CHECK(lg.order_ok);
        sse_close(&s);
    }
out:
    sse_srv = &srv;
    th_server_cleanup(&b);
}

/* Skips events until the stream ends (-1) or none comes for 5 s (0). */
static int read_to_end(struct sse *s)
{
    struct sse_ev ev;
    int rc;

    for (int i = 0; i < 1000; i++) {
        rc = sse_next(s, &ev, 5000);
        if (rc != 1)
            return rc;
        free(ev.data);
    }
    return 0;
}

/* Last: SIGTERM with a stream open (suspended, waiting) and one of a
 * finished run: the server ends both and exits 0. */
static void test_shutdown(void)
{
    struct sse a, b;
    struct sse_ev ev;
    char path[160];

    snprintf(path, sizeof(path), "/executions/%s/events", done_run);
    if (!CHECK(sse_open(&a, "/projects/p/events", NULL, 0) == 0))
        return;
    if (!CHECK(sse_open(&b, path, NULL, 0) == 0)) {
        sse_close(&a);
        return;
    }
    CHECK_EQ_INT(sse_headers(&a, 5000), 200);
    CHECK_EQ_INT(sse_headers(&b, 5000), 200);
    CHECK_EQ_INT(sse_next(&a, &ev, 5000), 1);
    free(ev.data);
    CHECK_EQ_INT(th_server_stop(&srv, 20000), 0);
    /* both streams end: no hang */
    CHECK_EQ_INT(read_to_end(&a), -1);
    CHECK_EQ_INT(read_to_end(&b), -1);
    sse_close(&a);
    sse_close(&b);
}

int main(void)
{
    struct th_db db;
    char rw[300];
    const char *overrides[4];
    struct rlimit rl;
    pid_t core;
    int rc;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
        rl.rlim_cur = 4096;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    snprintf(dir, sizeof(dir), "/tmp/wf-test-events-%d", (int)getpid());
    if (mkdir(dir, 0777) < 0 || chmod(dir, 0777) < 0) {
        perror(dir);
        return 1;
    }
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    overrides[0] = rw;
    overrides[1] = "WF_MAX_CONNECTIONS_PER_IP=2000";
    overrides[2] = "LOG_LEVEL=info"; /* 1,000 streams' debug lines are noise */
    overrides[3] = NULL;
    rc = th_setup("test_events", &db, &srv, overrides, &pg);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;
    CHECK_EQ_INT(th_http_json(&srv, "POST", "/projects", "{\"id\":\"p\"}", NULL), 201);
    {
        static const char *const code[] = {"workflows/steps", "workflows/retrying",
                                           "activities/record", "activities/flaky"};
        for (size_t i = 0; i < sizeof(code) / sizeof(code[0]); i++) {
            char path[128];
            snprintf(path, sizeof(path), "/projects/p/%s", code[i]);
            CHECK(th_put_plugin(&srv, path, "engine_recorder", NULL) / 100 == 2);
        }
    }
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p", NULL), 200);
    core = th_proc_child(srv.pid, "wf-core");
    if (!CHECK(core > 0))
        goto out;

    test_order();
    test_resume();
    test_project();
    test_retry();
    test_errors();
    test_slow_reader(core);
    test_wfctl();
    test_idle(core);
    test_other_host(&db);
    test_shutdown();
out:
    th_down(&db, &srv, pg);
    {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return th_finish();
}
