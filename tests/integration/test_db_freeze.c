/*
 * test_db_freeze.c: a database that stops answering never hangs the server.
 *
 * A database that accepts connections and never answers (a listening socket
 * in this test that reads nothing): the server starts, core logs that it
 * could not connect and keeps retrying, each attempt bounded by
 * WF_DB_CONNECT_TIMEOUT_MS, and SIGTERM still stops it promptly.
 *
 * A running server whose database freezes (its backends SIGSTOPped, so the
 * kernel still acknowledges every byte: only an answer deadline can tell):
 * /health turns 503 within about a second; the worker status, served from
 * memory, still answers at once; a control-plane call that needs the
 * database answers 503 within its statement deadline instead of hanging;
 * once the backends run again (or core has replaced them), /health is 200
 * and writes work. Needs permission to signal the cluster's processes
 * (root, or the cluster's own user); skipped otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;

static int health_is(void *arg)
{
    struct th_reply r;
    long st = th_http_ex(&srv, "GET", "/health", NULL, 0, NULL, 2000, &r);

    th_reply_free(&r);
    return st == *(long *)arg;
}

static int log_says_unreachable(void *arg)
{
    return th_server_log_contains(&srv, "could not connect to the database");
}

/* Part A: the start never hangs on a database that never answers. */
static void never_answers(void)
{
    char url[128];
    const char *overrides[3];
    long long t0;
    int port = 0;
    int hole = th_loopback_listener(&port, 0);

    if (!CHECK(hole >= 0))
        return;
    snprintf(url, sizeof(url), "DATABASE_URL=postgresql://postgres@127.0.0.1:%d/wf", port);
    overrides[0] = url;
    overrides[1] = "WF_DB_CONNECT_TIMEOUT_MS=1000";
    overrides[2] = NULL;
    memset(&srv, 0, sizeof(srv));
    if (CHECK(th_server_spawn(&srv, NULL, overrides) == 0)) {
        CHECK(th_wait_until(log_says_unreachable, NULL, 15000, 100) == 0);
        CHECK(th_server_log_contains(&srv, "timeout"));
        t0 = th_now_ms();
        CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
        CHECK(th_now_ms() - t0 < 8000);
    }
    th_server_cleanup(&srv);
    close(hole);
}

int main(void)
{
    /* One control-plane connection, made before the freeze: the call below
     * must meet a frozen backend (a fresh connection would get a new,
     * healthy one from the running postmaster). */
    const char *overrides[3] = {"WF_DB_STATEMENT_TIMEOUT_MS=2000", "WF_DB_POOL_SIZE=1", NULL};
    struct th_db db;
    struct th_reply r;
    PGconn *admin = NULL;
    long want;
    long long t0, took;
    int n, rc;

    if (th_init("test_db_freeze", 1) != 0)
        return TH_SKIP;
    never_answers();

    memset(&db, 0, sizeof(db));
    rc = th_up(&db, &srv, overrides, NULL);
    if (rc != 0)
        goto out;
    admin = PQconnectdb(getenv("WF_TEST_DATABASE_URL"));
    if (!CHECK(admin != NULL && PQstatus(admin) == CONNECTION_OK))
        goto out;
    CHECK_EQ_INT(th_create_project(&srv, "p1", NULL), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p1", NULL), 200);

    /* The freeze. */
    n = th_signal_backends(admin, db.name, SIGSTOP);
    if (n < 0) {
        printf("test_db_freeze: not permitted to signal the cluster's backends; "
               "frozen-database part skipped\n");
        CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
        goto out;
    }
    CHECK(n >= 2);
    t0 = th_now_ms();
    want = 503;
    CHECK(th_wait_until(health_is, &want, 5000, 50) == 0);
    took = th_now_ms() - t0;
    printf("/health 503 %lld ms after the freeze\n", took);
    CHECK(took < 1500); /* within about a second (0.6 s + a probe interval) */
    /* memory still answers at once */
    t0 = th_now_ms();
    CHECK_EQ_INT(th_http_ex(&srv, "GET", "/workers/status/p1", NULL, 0, NULL, 2000, &r), 200);
    th_reply_free(&r);
    CHECK(th_now_ms() - t0 < 1000);
    /* a call that needs the database answers within its deadline */
    t0 = th_now_ms();
    CHECK_EQ_INT(th_http_ex(&srv, "GET", "/projects", NULL, 0, NULL, 20000, &r), 503);
    th_reply_free(&r);
    took = th_now_ms() - t0;
    printf("GET /projects answered 503 after %lld ms\n", took);
    CHECK(took < 12000);

    /* The thaw. */
    CHECK(th_signal_backends(admin, db.name, SIGCONT) >= 0);
    want = 200;
    CHECK(th_wait_until(health_is, &want, 15000, 50) == 0);
    CHECK_EQ_INT(th_create_project(&srv, "p2", NULL), 201);
    CHECK_EQ_INT(th_http_ex(&srv, "GET", "/projects", NULL, 0, NULL, 5000, &r), 200);
    th_reply_free(&r);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    if (admin != NULL) {
        if (db.created)
            (void)th_signal_backends(admin, db.name, SIGCONT);
        PQfinish(admin);
    }
    return th_teardown(&db, &srv, NULL);
}
