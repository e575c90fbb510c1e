/*
 * test_hostlock.c: one server per host identity on a database
 * (server/hostlock.h), and the warning about a database that asks for no
 * password.
 *
 * A first server starts a project. A second one with the same WF_HOST_ID on
 * the same database exits with 113 and says why, and the first one's row
 * stays running. The first server's lock session (wf-core:hostlock) killed
 * by the database is replaced and the lock taken again; killed while the
 * test's own session grabs the lock, the first server stops with 113 and
 * leaves the rows, now the other holder's, alone. The test cluster trusts
 * every local connection, so the password warning is in the log.
 * Advisory locks and sessions are looked up in this test's database only:
 * other tests' servers run on the same cluster, with the same host id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Blocking: the killed session may not have ended yet. */
#define LOCK_SQL "SELECT true FROM (SELECT pg_advisory_lock(hashtext('wf-server host ' || $1))) s"
#define HOLDER_SQL                                                                                 \
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"                     \
    " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'wf-core:hostlock'"     \
    " AND a.datname = current_database()"

static PGconn *conn;

static int lock_holder_back(void *arg)
{
    long long n = 0;
    long long *old = arg;
    char *pid =
        th_sql_value(conn,
                     "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = "
                     "l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
                     "a.application_name = 'wf-core:hostlock' AND a.datname = current_database()",
                     NULL);
    if (pid != NULL) {
        n = strtoll(pid, NULL, 10);
        free(pid);
    }
    return n > 0 && n != *old;
}

static char *row_status(void)
{
    return th_sql_value(conn, "SELECT status FROM workflow_workers WHERE worker_id = $1",
                        "testhost:p1");
}

int main(void)
{
    struct th_db db;
    struct th_server srv, second;
    long long n = 0, old = 0;
    char *st, *pid;
    PGresult *res;
    const char *params[1] = {"testhost"};

    memset(&second, 0, sizeof(second));
    if (th_setup("test_hostlock", &db, &srv, NULL, &conn) != 0)
        goto out;
    CHECK(th_server_log_contains(&srv, "without a password"));
    CHECK(th_sql_ll(conn, HOLDER_SQL, NULL, &n) == 0 && n == 1);
    {
        const char *ids[] = {"p1"};
        if (th_create_and_start(&srv, ids, 1, NULL) != 0)
            goto out;
    }

    /* A second server with the same host id is refused. */
    if (CHECK(th_server_spawn(&second, &db, NULL) == 0)) {
        CHECK(th_server_wait(&second, 20000) == 0);
        CHECK_EQ_INT(th_exit_code(&second), 113);
        CHECK(th_server_log_contains(&second, "another wf-server with WF_HOST_ID \"testhost\""));
        th_server_cleanup(&second);
    }
    st = row_status();
    CHECK_STR(st, "running");
    free(st);
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/health", NULL, NULL), 200);

    /* The lock's session ends: a new one takes it again. */
    pid = th_sql_value(conn,
                       "SELECT pid FROM pg_stat_activity WHERE application_name = "
                       "'wf-core:hostlock' AND datname = current_database()",
                       NULL);
    if (!CHECK(pid != NULL))
        goto out;
    old = strtoll(pid, NULL, 10);
    res = th_sql(conn, "SELECT pg_terminate_backend($1::int)", 1, (const char *const *)&pid);
    PQclear(res);
    free(pid);
    CHECK(th_wait_until(lock_holder_back, &old, 15000, 100) == 0);
    CHECK(th_pid_alive(srv.pid));

    /* It ends while another session takes the lock: the server stops with
     * 113 and leaves the rows to that holder. */
    pid = th_sql_value(conn,
                       "SELECT pid FROM pg_stat_activity WHERE application_name = "
                       "'wf-core:hostlock' AND datname = current_database()",
                       NULL);
    if (!CHECK(pid != NULL))
        goto out;
    res = th_sql(conn, "SELECT pg_terminate_backend($1::int)", 1, (const char *const *)&pid);
    PQclear(res);
    free(pid);
    st = th_sql_value(conn, LOCK_SQL, params[0]);
    CHECK_STR(st, "t");
    free(st);
    if (CHECK(th_server_wait(&srv, 20000) == 0))
        CHECK_EQ_INT(th_exit_code(&srv), 113);
    CHECK(th_server_log_contains(&srv, "was taken by another server"));
    st = row_status();
    CHECK_STR(st, "running");
    free(st);
out:
    th_server_cleanup(&second);
    return th_teardown(&db, &srv, conn);
}
