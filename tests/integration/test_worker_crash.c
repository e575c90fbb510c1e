/*
 * test_worker_crash.c: kill -9 of a worker; the manager restarts it.
 *
 * Within 10 s the project is running again with a new pid and restarts >= 1;
 * the workflow_workers row carries the new pid and a heartbeat newer than the
 * kill; a bystander project's worker is untouched. A second kill restarts it
 * again (restarts >= 2). Heartbeat times are compared on the database clock.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct th_server srv;
static PGconn *conn;

struct restart_wait {
    pid_t old_pid;
    pid_t new_pid;
    long long restarts;
    char seen_status[32];
};

/* 1 once p1's status is no longer "running" under old_pid; saves it */
static int left_running(void *arg)
{
    struct restart_wait *w = arg;
    cJSON *j = NULL;
    long st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    const char *status = th_json_str(j, "status");
    int left = 0;

    if (st == 200 && status != NULL &&
        (strcmp(status, "running") != 0 || th_json_num(j, "pid") != w->old_pid)) {
        snprintf(w->seen_status, sizeof(w->seen_status), "%s", status);
        left = 1;
    }
    cJSON_Delete(j);
    return left;
}

/* 1 when p1 is running again under a pid other than old_pid */
static int restarted(void *arg)
{
    struct restart_wait *w = arg;
    cJSON *j = NULL;
    long st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    int ok = 0;

    if (st == 200 && th_json_str(j, "status") != NULL &&
        strcmp(th_json_str(j, "status"), "running") == 0 && th_json_num(j, "pid") > 0 &&
        th_json_num(j, "pid") != w->old_pid) {
        w->new_pid = (pid_t)th_json_num(j, "pid");
        w->restarts = th_json_num(j, "restarts");
        ok = 1;
    }
    cJSON_Delete(j);
    return ok;
}

struct row_wait {
    pid_t pid;
    long long after_ms;
};

/* 1 when the p1 row is running with pid and a heartbeat after after_ms */
static int row_fresh(void *arg)
{
    struct row_wait *w = arg;
    char pidbuf[32];
    const char *params[2];
    PGresult *res;
    int ok;

    snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)w->pid);
    params[0] = "testhost:p1";
    params[1] = pidbuf;
    res = th_sql(conn,
                 "SELECT (EXTRACT(EPOCH FROM last_heartbeat) * 1000)::bigint"
                 " FROM workflow_workers WHERE worker_id = $1 AND pid = $2::int"
                 " AND status = 'running'",
                 2, params);
    if (res == NULL)
        return 0;
    ok = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
         strtoll(PQgetvalue(res, 0, 0), NULL, 10) > w->after_ms;
    PQclear(res);
    return ok;
}

/* kills p1's worker with SIGKILL and checks the restart; round is 1, 2, … */
static void kill_and_check(int round)
{
    struct restart_wait w;
    struct row_wait rw;
    long long db_now = 0;
    long long t0;

    memset(&w, 0, sizeof(w));
    w.old_pid = th_status_pid(&srv, "p1", NULL);
    if (!CHECK(w.old_pid > 0))
        return;
    CHECK(th_db_now_ms(conn, &db_now) == 0);
    t0 = th_now_ms();
    CHECK(kill(w.old_pid, SIGKILL) == 0);
    /*
     * Until the backoff (>= 1 s) has passed the project is "crashed": not
     * running, but still listed by GET /workers (waiting to restart).
     */
    if (CHECK(th_wait_until(left_running, &w, 3000, 10) == 0)) {
        cJSON *j = NULL;
        const cJSON *arr;
        int listed = 0;
        int k;

        CHECK_STR(w.seen_status, "crashed");
        CHECK_EQ_INT(th_http_json(&srv, "GET", "/workers", NULL, &j), 200);
        arr = cJSON_GetObjectItemCaseSensitive(j, "workers");
        for (k = 0; k < cJSON_GetArraySize(arr); k++) {
            const cJSON *it = cJSON_GetArrayItem(arr, k);

            listed |= cJSON_IsString(it) && strcmp(it->valuestring, "p1") == 0;
        }
        CHECK(listed);
        cJSON_Delete(j);
    }
    if (!CHECK(th_wait_until(restarted, &w, 10000, 50) == 0)) {
        fprintf(stderr, "round %d: p1 not running again within 10 s\n", round);
        return;
    }
    printf("round %d: restarted after %lld ms, restarts=%lld\n", round, th_now_ms() - t0,
           w.restarts);
    CHECK(w.restarts >= round);
    CHECK(!th_pid_alive(w.old_pid));
    CHECK(th_pid_alive(w.new_pid));
    {
        pid_t kids[8];
        int n = th_proc_children(srv.pid, "wf-worker", kids, 8);
        int i;
        int found = 0;

        for (i = 0; i < n && i < 8; i++)
            found |= kids[i] == w.new_pid;
        CHECK(found);
    }
    rw.pid = w.new_pid;
    rw.after_ms = db_now;
    CHECK(th_wait_until(row_fresh, &rw, 5000, 50) == 0);
}

int main(void)
{
    static const char *const projects[] = {"p1", "p2"};
    struct th_db db;
    pid_t bystander;
    cJSON *j = NULL;
    long st;
    int rc;

    rc = th_setup("test_worker_crash", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    if (th_create_and_start(&srv, projects, 2, NULL) != 0)
        goto out;
    bystander = th_status_pid(&srv, "p2", NULL);
    CHECK(bystander > 0);

    kill_and_check(1);
    kill_and_check(2);

    /* the other project's worker never noticed */
    CHECK_EQ_INT(th_status_pid(&srv, "p2", NULL), bystander);
    CHECK(th_pid_alive(bystander));

    st = th_http_json(&srv, "GET", "/workers", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 2);
    cJSON_Delete(j);

    st = th_post_project(&srv, "/workers/stop", "p1", &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "message"), "Worker stopped for project p1");
    cJSON_Delete(j);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    return th_teardown(&db, &srv, conn);
}
