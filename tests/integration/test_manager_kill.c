/*
 * test_manager_kill.c: SIGKILL to the manager leaves no orphan behind.
 *
 * With three workers running, the manager is killed with -9; core and every
 * worker must be gone within 10 s (PR_SET_PDEATHSIG). A second server on the
 * same database then reconciles the rows the dead instance left behind: none
 * of this host's rows may still say `running`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N_WORKERS 3

static pid_t watched[N_WORKERS + 1];

static int all_gone(void *arg)
{
    int i;

    (void)arg;
    for (i = 0; i < N_WORKERS + 1; i++)
        if (th_pid_alive(watched[i]))
            return 0;
    return 1;
}

int main(void)
{
    static const char *const projects[N_WORKERS] = {"p1", "p2", "p3"};
    struct th_server srv;
    struct th_server srv2;
    struct th_db db;
    PGconn *conn = NULL;
    long long n;
    long long t0;
    int rc;
    int i;

    memset(&srv2, 0, sizeof(srv2));
    rc = th_setup("test_manager_kill", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    th_create_and_start(&srv, projects, N_WORKERS, NULL);
    if (!CHECK_EQ_INT(th_proc_children(srv.pid, "wf-worker", watched, N_WORKERS), N_WORKERS))
        goto out;
    watched[N_WORKERS] = th_proc_child(srv.pid, "wf-core");
    if (!CHECK(watched[N_WORKERS] > 0))
        goto out;

    t0 = th_now_ms();
    CHECK(kill(srv.pid, SIGKILL) == 0);
    CHECK(th_server_wait(&srv, 5000) == 0);
    if (CHECK(th_wait_until(all_gone, NULL, 10000, 20) == 0))
        printf("core and workers gone %lld ms after the manager\n", th_now_ms() - t0);
    for (i = 0; i < N_WORKERS + 1; i++)
        if (th_pid_alive(watched[i]))
            fprintf(stderr, "pid %ld still alive\n", (long)watched[i]);

    /* a new instance on the same host reconciles the stale rows */
    if (!CHECK(th_server_start(&srv2, &db, NULL) == 0))
        goto out;
    n = -1;
    CHECK(th_sql_ll(conn,
                    "SELECT count(*) FROM workflow_workers WHERE "
                    "host = 'testhost' AND status = 'running'",
                    NULL, &n) == 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(th_http_json(&srv2, "GET", "/workers", NULL, NULL), 200);
    CHECK_EQ_INT(th_post_project(&srv2, "/workers/start", "p1", NULL), 200);
    CHECK_EQ_INT(th_server_stop(&srv2, 15000), 0);
out:
    /* srv2 before th_teardown, which drops the database srv2 may still use */
    th_server_cleanup(&srv2);
    return th_teardown(&db, &srv, conn);
}
