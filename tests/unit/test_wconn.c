/*
 * test_wconn.c: core's worker channels over socketpairs, on a real loop,
 * with the manager's end of core's control socket played by the test:
 *   - a per-turn read budget: 150 waiting messages take three turns;
 *   - a worker over its message rate, one that sends a malformed record and
 *     one that greets with another pid are reset: the manager is asked to
 *     kill each, with the reason, and the owner hears "gone";
 *   - a worker that stops reading: queued output that makes no progress for
 *     WF_WORKER_STALL_MS, or an output queue over its cap, resets it;
 *   - pings: a loaded worker is pinged, answering keeps it, silence resets it.
 * No database: the database layer is created but never started (rows wait
 * in its queue).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "dbq.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"
#include "mgrlink.h"
#include "msg.h"
#include "testhelp.h"
#include "wconn.h"
#include "wview.h"

static struct wf_config cfg;
static struct loop *lp;
static struct dbq *dbq;
static struct mgrlink *ml;
static struct wview *view;
static struct wconns *wc;
static int mgr_end; /* the test's end of core's control socket */
static int gone_count;
static int hello_count;

static void ev_hello(void *arg, struct wconn *w, const cJSON *msg)
{
    hello_count++;
}

static void ev_gone(void *arg, struct wconn *w)
{
    gone_count++;
}

static void mev_noop(void *arg, const cJSON *ev)
{
}

static void mev_attach(void *arg, const cJSON *ev, int fd)
{
    close(fd);
}

static void mev_gone(void *arg)
{
}

static void setup(int rate, int stall_ms)
{
    struct dbq_config qc = {"postgresql://127.0.0.1:1/none", "test", 1000, 1000, 1000, 0, 1000};
    struct mgrlink_events mev = {mev_noop, mev_noop, mev_attach, mev_gone, NULL};
    struct wconns_events wev = {ev_hello, ev_gone, NULL, NULL};
    int sv[2];

    memset(&cfg, 0, sizeof(cfg));
    cfg.heartbeat_ms = 100;
    cfg.worker_stall_ms = stall_ms;
    cfg.worker_msg_rate = rate;
    cfg.max_message_bytes = 1 << 20;
    snprintf(cfg.host_id, sizeof(cfg.host_id), "testhost");
    lp = loop_new();
    CHECK(msg_socketpair(sv) == 0);
    mgr_end = sv[0];
    ml = mgrlink_new(lp, sv[1], &mev);
    dbq = dbq_new(lp, &qc);
    view = wview_new(&cfg, lp, dbq);
    wc = wconns_new(&cfg, lp, view, ml, &wev);
    CHECK(lp != NULL && ml != NULL && dbq != NULL && view != NULL && wc != NULL);
    gone_count = hello_count = 0;
}

static void teardown(void)
{
    wconns_free(wc);
    wview_free(view);
    dbq_free(dbq);
    mgrlink_free(ml);
    loop_free(lp);
    close(mgr_end);
}

/* A worker socket attached as pid of project "p"; returns the test's end. */
static int attach(pid_t pid, struct wconn **out)
{
    int sv[2];

    CHECK(msg_socketpair(sv) == 0);
    *out = wconns_attach(wc, sv[1], "p", pid, 0);
    CHECK(*out != NULL);
    return sv[0];
}

static void send_text(int fd, const char *text)
{
    cJSON *o = cJSON_Parse(text);

    CHECK(o != NULL && msg_send(fd, o, -1) == 0);
    cJSON_Delete(o);
}

static void turns(int n)
{
    for (int i = 0; i < n; i++)
        CHECK(loop_turn(lp, 10) == 0);
}

/* Reads the manager's end until a kill request comes; returns its reason
 * (malloc'ed) or NULL. */
static char *kill_reason(int max_turns)
{
    for (int i = 0; i < max_turns; i++) {
        cJSON *m = NULL;
        int r;

        turns(1);
        r = msg_recv(mgr_end, &m, NULL);
        if (r == 1) {
            const char *op = ju_str(m, "op");
            char *reason = NULL;
            if (op != NULL && strcmp(op, "kill") == 0 && ju_str(m, "reason") != NULL)
                reason = strdup(ju_str(m, "reason"));
            cJSON_Delete(m);
            if (reason != NULL)
                return reason;
        }
    }
    return NULL;
}

static void test_budget(void)
{
    struct wconns_counts c;
    struct wconn *w;
    int fd;

    setup(1000000, 10000);
    fd = attach(4242, &w);
    send_text(fd, "{\"t\":\"hello\",\"pid\":4242,\"project\":\"p\",\"loaded\":false}");
    for (int i = 0; i < 149; i++)
        send_text(fd, "{\"t\":\"hb\"}");
    turns(1);
    wconns_counts(wc, &c);
    CHECK_INT(c.msgs_in, 64);
    CHECK_INT(hello_count, 1);
    turns(1);
    wconns_counts(wc, &c);
    CHECK_INT(c.msgs_in, 128);
    turns(2);
    wconns_counts(wc, &c);
    CHECK_INT(c.msgs_in, 150);
    CHECK_INT(c.resets, 0);
    CHECK(c.heartbeats_dropped > 100); /* one counted per half interval */
    close(fd);
    turns(2);
    CHECK_INT(gone_count, 1);
    teardown();
}

static void expect_reset(const char *first, const char *then, int repeat, int rate,
                         const char *want)
{
    struct wconn *w;
    char *reason;
    int fd;

    setup(rate, 10000);
    fd = attach(4343, &w);
    send_text(fd, first);
    for (int i = 0; i < repeat; i++) {
        if (then != NULL)
            send_text(fd, then);
    }
    reason = kill_reason(50);
    CHECK(reason != NULL && strstr(reason, want) != NULL);
    if (reason == NULL || strstr(reason, want) == NULL)
        fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", reason ? reason : "(none)", want);
    free(reason);
    CHECK_INT(gone_count, 1);
    CHECK(wconns_find_pid(wc, 4343) == NULL);
    close(fd);
    teardown();
}

static void test_resets(void)
{
    static const char hello[] = "{\"t\":\"hello\",\"pid\":4343,\"project\":\"p\",\"loaded\":false}";

    expect_reset(hello, "{\"t\":\"hb\"}", 150, 100, "sent more than 100 messages per second");
    expect_reset("{\"t\":\"hello\",\"pid\":1,\"project\":\"p\",\"loaded\":false}", NULL, 0, 1000,
                 "malformed hello");
    expect_reset(hello, "{\"t\":\"run\"}", 1, 1000, "unexpected message \"run\"");
    expect_reset("{\"t\":\"hb\"}", NULL, 0, 1000, "before its hello");
    {
        /* a record without a header */
        struct wconn *w;
        char *reason;
        int fd;

        setup(1000, 10000);
        fd = attach(4444, &w);
        CHECK(send(fd, "garbage", 7, 0) == 7);
        reason = kill_reason(50);
        CHECK(reason != NULL && strstr(reason, "malformed or truncated") != NULL);
        free(reason);
        close(fd);
        teardown();
    }
}

static void test_not_reading(void)
{
    struct wconn *w;
    cJSON *big = cJSON_CreateObject();
    char *pad = malloc(32 * 1024);
    char *reason;
    int fd, rc = 0, sent = 0;

    memset(pad, 'x', 32 * 1024 - 1);
    pad[32 * 1024 - 1] = '\0';
    cJSON_AddStringToObject(big, "t", "load");
    cJSON_AddStringToObject(big, "pad", pad);
    free(pad);

    /* Stalled: the queue makes no progress for WF_WORKER_STALL_MS. */
    setup(1000, 300);
    fd = attach(4545, &w);
    for (int i = 0; i < 20 && rc == 0; i++) {
        rc = wconn_send(w, big); /* 20 × 32 KiB: over the socket buffer */
        sent += rc == 0;
    }
    CHECK_INT(rc, 0);
    reason = kill_reason(200);
    CHECK(reason != NULL && strstr(reason, "stopped reading its core socket") != NULL);
    free(reason);
    close(fd);
    teardown();

    /* Overflowing: the queue passes its cap (2 × 1 MiB + 1 MiB here). */
    setup(1000, 100000);
    fd = attach(4646, &w);
    rc = 0;
    for (int i = 0; i < 200 && rc == 0; i++)
        rc = wconn_send(w, big);
    CHECK_INT(rc, -1); /* w is gone */
    reason = kill_reason(20);
    CHECK(reason != NULL && strstr(reason, "output queue passed") != NULL);
    free(reason);
    CHECK_INT(gone_count, 1);
    close(fd);
    teardown();
    cJSON_Delete(big);
}

static void test_ping(void)
{
    struct wconn *w;
    int64_t until;
    int pongs = 0;
    char *reason;
    int fd;

    setup(1000, 400);
    fd = attach(4747, &w);
    send_text(fd, "{\"t\":\"hello\",\"pid\":4747,\"project\":\"p\",\"loaded\":false}");
    send_text(fd, "{\"t\":\"hb\"}");
    /* Answer every ping for a second: no reset. */
    until = ju_mono_ms() + 1000;
    while (ju_mono_ms() < until) {
        cJSON *m = NULL;
        turns(1);
        if (msg_recv(fd, &m, NULL) == 1) {
            const char *t = ju_str(m, "t");
            int64_t n;
            if (t != NULL && strcmp(t, "ping") == 0 && ju_int(m, "n", &n) == 0) {
                char text[64];
                snprintf(text, sizeof(text), "{\"t\":\"pong\",\"n\":%lld}", (long long)n);
                send_text(fd, text);
                pongs++;
            }
        }
        cJSON_Delete(m);
    }
    CHECK(pongs >= 3);
    CHECK(wconns_find_pid(wc, 4747) != NULL);
    /* Then silence. */
    reason = kill_reason(200);
    CHECK(reason != NULL && strstr(reason, "did not answer core's ping within 400 ms") != NULL);
    free(reason);
    close(fd);
    teardown();
}

int main(void)
{
    log_init("test", LOG_LVL_ERROR, 0);
    test_budget();
    test_resets();
    test_not_reading();
    test_ping();
    TEST_REPORT("unit_wconn");
}
