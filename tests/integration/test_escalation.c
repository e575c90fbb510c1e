/*
 * test_escalation.c: the manager's deadlines, with a worker program that
 * misbehaves on purpose (stubborn_worker.c).
 *
 * Stop escalates: a worker that ignores SIGTERM is SIGKILLed after
 * WF_DRAIN_TIMEOUT_MS (here 500 ms), the stop call answers once it is gone,
 * the log says so, and the row says stopped. Start times out: a worker that
 * never reports ready is killed after WF_START_TIMEOUT_MS (here 1000 ms) and
 * the start call answers 500 saying why, well before its own HTTP deadline.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int main(void)
{
    char env_prog[4200];
    const char *overrides[4];
    struct th_server srv;
    struct th_db db;
    PGconn *conn = NULL;
    cJSON *j = NULL;
    pid_t pid;
    long long t0, took;
    char *v;
    int rc;

    if (th_init("test_escalation", 1) != 0)
        return TH_SKIP;
    if (getenv("WF_STUBBORN_WORKER_BIN") == NULL)
        return TH_SKIP;
    snprintf(env_prog, sizeof(env_prog), "WF_WORKER_PROGRAM=%s", getenv("WF_STUBBORN_WORKER_BIN"));
    overrides[0] = env_prog;
    overrides[1] = "WF_DRAIN_TIMEOUT_MS=500";
    overrides[2] = "WF_START_TIMEOUT_MS=1000";
    overrides[3] = NULL;
    memset(&db, 0, sizeof(db));
    memset(&srv, 0, sizeof(srv));
    rc = th_up(&db, &srv, overrides, &conn);
    if (rc != 0)
        goto out;

    /* SIGTERM ignored: SIGKILL after the drain timeout. */
    CHECK_EQ_INT(th_create_project(&srv, "ignore-term", NULL), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "ignore-term", NULL), 200);
    pid = th_status_pid(&srv, "ignore-term", NULL);
    CHECK(pid > 0);
    t0 = th_now_ms();
    CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", "ignore-term", &j), 200);
    took = th_now_ms() - t0;
    CHECK_STR(th_json_str(j, "message"), "Worker stopped for project ignore-term");
    cJSON_Delete(j);
    j = NULL;
    CHECK(took >= 400 && took < 5000);
    CHECK(!th_pid_alive(pid));
    CHECK(th_server_log_contains(&srv, "did not stop within 500 ms; sending SIGKILL"));
    v = th_sql_value(conn, "SELECT status FROM workflow_workers WHERE worker_id = $1",
                     "testhost:ignore-term");
    CHECK_STR(v, "stopped");
    free(v);

    /* Never ready: killed at the start timeout, the call answers 500. */
    CHECK_EQ_INT(th_create_project(&srv, "never-ready", NULL), 201);
    t0 = th_now_ms();
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "never-ready", &j), 500);
    took = th_now_ms() - t0;
    CHECK(th_json_str(j, "error") != NULL &&
          strstr(th_json_str(j, "error"), "was not ready within 1000 ms") != NULL);
    cJSON_Delete(j);
    j = NULL;
    CHECK(took >= 900 && took < 5000);
    CHECK(th_server_log_contains(&srv, "was not ready within 1000 ms; killing it"));
    CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", "never-ready", NULL), 200);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);

out:
    return th_teardown(&db, &srv, conn);
}
