/*
 * test_db_outage.c: the database goes away and comes back.
 *
 * With a worker running, the test database refuses connections and every
 * server backend on it is terminated. The server must not crash or hang:
 * /health answers 503 "unreachable", calls that need the database answer 503
 * "database unavailable", each within a few seconds, and the worker keeps
 * running. A worker killed during the outage is restarted but cannot get its
 * code; that is not its code's fault, so the project retries with backoff,
 * more times than the crash-loop breaker allows crashes, and is never marked
 * failed. A project stopped during the outage has its row marked stopped
 * once the database is back (the write waits the outage out). Once
 * connections are allowed again the server recovers by itself: /health 200,
 * the worker runs again, new projects can be created, heartbeats reach the
 * row again.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct th_server srv;
static PGconn *admin;
static PGconn *conn;
static struct th_db db;

static int set_allow(int allow)
{
    char sql[200];

    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", db.name,
             allow ? "true" : "false");
    return th_sql_exec(admin, sql);
}

static int kill_backends(void)
{
    return th_sql_exec(admin, "SELECT pg_terminate_backend(pid) FROM "
                              "pg_stat_activity WHERE datname = current_setting("
                              "'wf.test_db') AND pid <> pg_backend_pid()");
}

static int health_is(void *arg)
{
    struct th_reply r;
    long st = th_http_ex(&srv, "GET", "/health", NULL, 0, NULL, 5000, &r);

    th_reply_free(&r);
    return st == *(long *)arg;
}

/* At least *arg attempts to get the code failed (counted in the log). */
static int transient_attempts(void *arg)
{
    char *log = th_read_file(srv.log_path, NULL);
    int n = 0;

    for (const char *p = log; p != NULL && (p = strstr(p, "could not get its code:")) != NULL; p++)
        n++;
    free(log);
    return n >= *(int *)arg;
}

/* 1 when p1's status error says it waits for its code (and it is not
 * failed). */
static int waiting_for_code(void *arg)
{
    cJSON *j = NULL;
    int ok;

    (void)arg;
    ok = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j) == 200 &&
         th_json_str(j, "error") != NULL &&
         strstr(th_json_str(j, "error"), "waiting for its code") != NULL;
    cJSON_Delete(j);
    return ok;
}

static int p3_row_stopped(void *arg)
{
    char *v = th_sql_value(arg, "SELECT status FROM workflow_workers WHERE worker_id = $1",
                           "testhost:p3");
    int ok = v != NULL && strcmp(v, "stopped") == 0;

    free(v);
    return ok;
}

static int p1_running(void *arg)
{
    cJSON *j = NULL;
    int ok = 0;

    (void)arg;
    if (th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j) == 200)
        ok = th_json_str(j, "status") != NULL && strcmp(th_json_str(j, "status"), "running") == 0;
    cJSON_Delete(j);
    return ok;
}

int main(void)
{
    static const char *const p1[] = {"p1", "p3"};
    struct th_reply r;
    char sql[200];
    long want;
    long long t0;
    long long db_now = 0;
    pid_t pid;
    cJSON *j = NULL;
    long st;
    int rc;

    /* conn only once the outage is over: a connection now would be cut off */
    rc = th_setup("test_db_outage", &db, &srv, NULL, NULL);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;
    admin = PQconnectdb(getenv("WF_TEST_DATABASE_URL"));
    if (!CHECK(admin != NULL && PQstatus(admin) == CONNECTION_OK))
        goto out;
    snprintf(sql, sizeof(sql), "SET wf.test_db = '%s'", db.name);
    CHECK(th_sql_exec(admin, sql) == 0);

    pid_t pids[2];
    int attempts = 6; /* more than BO_BREAKER_CRASHES */

    th_create_and_start(&srv, p1, 2, pids);
    pid = pids[0];

    /* the outage */
    CHECK(set_allow(0) == 0);
    CHECK(kill_backends() == 0);
    t0 = th_now_ms();
    want = 503;
    CHECK(th_wait_until(health_is, &want, 15000, 100) == 0);
    st = th_http_ex(&srv, "GET", "/health", NULL, 0, NULL, 5000, &r);
    CHECK_EQ_INT(st, 503);
    CHECK_STR(th_json_str(r.json, "status"), "error");
    CHECK_STR(th_json_str(r.json, "database"), "unreachable");
    th_reply_free(&r);
    printf("/health 503 after %lld ms\n", th_now_ms() - t0);

    /* calls that need the database fail fast with 503, never hang */
    t0 = th_now_ms();
    st = th_http_ex(&srv, "POST", "/projects", "{\"id\":\"p2\"}", 11, NULL, 20000, &r);
    CHECK_EQ_INT(st, 503);
    CHECK_STR(th_json_str(r.json, "error"), "database unavailable");
    th_reply_free(&r);
    st = th_http_ex(&srv, "GET", "/projects", NULL, 0, NULL, 20000, &r);
    CHECK_EQ_INT(st, 503);
    th_reply_free(&r);
    CHECK(th_now_ms() - t0 < 15000);
    /* the process tree survives */
    CHECK(th_pid_alive(srv.pid));
    CHECK(th_proc_child(srv.pid, "wf-core") > 0);
    CHECK(th_pid_alive(pid));

    /* A worker that crashes now is restarted, but core cannot read its code:
     * that is core's failure, not the code's, so the project must not be
     * marked failed; it keeps retrying with backoff. */
    CHECK(kill(pid, SIGKILL) == 0);
    /* p3 stopped meanwhile: its worker goes at once, its row once the
     * database is back. */
    st = th_post_project(&srv, "/workers/stop", "p3", NULL);
    printf("stop during the outage: %ld\n", st);
    CHECK(st == 200);
    CHECK(th_wait_pid_gone(pids[1], 10000, 20) == 0);
    t0 = th_now_ms();
    CHECK(th_wait_until(transient_attempts, &attempts, 90000, 200) == 0);
    printf("%d attempts to get the code failed in %lld ms\n", attempts, th_now_ms() - t0);
    CHECK(!th_server_log_contains(&srv, "crash loop"));
    /* The log line comes when the worker reports the failure; the status
     * says "waiting for its code" once its exit is handled, just after. */
    CHECK(th_wait_until(waiting_for_code, NULL, 5000, 20) == 0);
    st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK(th_json_str(j, "status") != NULL && strcmp(th_json_str(j, "status"), "failed") != 0);
    cJSON_Delete(j);
    j = NULL;

    /* recovery */
    CHECK(set_allow(1) == 0);
    t0 = th_now_ms();
    want = 200;
    CHECK(th_wait_until(health_is, &want, 20000, 100) == 0);
    printf("/health 200 again after %lld ms\n", th_now_ms() - t0);
    conn = th_db_connect(&db);
    CHECK(conn != NULL);
    CHECK(th_wait_until(p3_row_stopped, conn, 20000, 100) == 0);
    st = th_create_project(&srv, "p2", NULL);
    CHECK_EQ_INT(st, 201);
    /* p1 came back by itself, as a new process */
    CHECK(th_wait_until(p1_running, NULL, 20000, 100) == 0);
    st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "status"), "running");
    CHECK(th_json_num(j, "pid") > 0 && th_json_num(j, "pid") != pid);
    cJSON_Delete(j);
    j = NULL;
    CHECK(th_db_now_ms(conn, &db_now) == 0);
    CHECK(th_wait_heartbeat_after(conn, "testhost:p1", db_now, 10000, 50) == 0);
    st = th_post_project(&srv, "/workers/start", "p2", NULL);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    if (admin != NULL) {
        if (db.created)
            set_allow(1);
        PQfinish(admin);
    }
    return th_teardown(&db, &srv, conn);
}
