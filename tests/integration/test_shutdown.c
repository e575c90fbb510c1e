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
#include <string.h>

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
    char body[64];
    long long n;
    long long t0;
    int i;

    memset(&db, 0, sizeof(db));
    memset(&srv, 0, sizeof(srv));
    if (th_init("test_shutdown", 1) != 0)
        return TH_SKIP;
    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    if (!CHECK(th_server_start(&srv, &db, NULL) == 0))
        goto out;
    conn = th_db_connect(&db);
    if (!CHECK(conn != NULL))
        goto out;

    for (i = 0; i < N_WORKERS; i++) {
        snprintf(body, sizeof(body), "{\"id\":\"%s\"}", projects[i]);
        CHECK_EQ_INT(th_http_json(&srv, "POST", "/projects", body, NULL), 201);
        CHECK_EQ_INT(th_post_project(&srv, "/workers/start", projects[i], NULL), 200);
    }
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
    if (conn != NULL)
        PQfinish(conn);
    th_server_cleanup(&srv);
    th_db_drop(&db);
    return th_finish();
}
