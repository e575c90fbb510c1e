/*
 * test_shutdown.c: SIGTERM to the manager is a clean shutdown.
 *
 * With three workers running, SIGTERM to the manager: it exits 0 within
 * 15 s, every workflow_workers row of this (fresh) database says `stopped`
 * with stopped_at set, and neither core nor any worker is left alive.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

#define N_WORKERS 3

int main(void)
{
    static const char *const projects[N_WORKERS] = {"p1", "p2", "p3"};
    struct th_server srv;
    struct th_db db;
    PGconn *conn = NULL;
    pid_t pids[N_WORKERS + 1];
    pid_t core = 0;
    long long n;
    long long t0;
    int rc;
    int i;

    rc = th_setup("test_shutdown", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    th_create_and_start(&srv, projects, N_WORKERS, NULL);
    if (!CHECK_EQ_INT(th_proc_children(srv.pid, "wf-worker", pids, N_WORKERS + 1), N_WORKERS))
        goto out;
    core = th_proc_child(srv.pid, "wf-core");
    CHECK(core > 0);

    t0 = th_now_ms();
    CHECK(kill(srv.pid, SIGTERM) == 0);
    if (!CHECK(th_server_wait(&srv, 15000) == 0))
        goto out;
    printf("manager exited after %lld ms\n", th_now_ms() - t0);
    CHECK_EQ_INT(th_exit_code(&srv), 0);

    for (i = 0; i < N_WORKERS; i++)
        CHECK(!th_pid_alive(pids[i]));
    CHECK(!th_pid_alive(core));

    n = -1;
    CHECK(th_sql_ll(conn, "SELECT count(*) FROM workflow_workers", NULL, &n) == 0);
    CHECK_EQ_INT(n, N_WORKERS);
    n = -1;
    CHECK(th_sql_ll(conn,
                    "SELECT count(*) FROM workflow_workers WHERE "
                    "status = 'stopped' AND stopped_at IS NOT NULL",
                    NULL, &n) == 0);
    CHECK_EQ_INT(n, N_WORKERS);
out:
    return th_teardown(&db, &srv, conn);
}
