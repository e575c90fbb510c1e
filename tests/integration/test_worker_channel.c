/*
 * test_worker_channel.c: core trusts nothing a worker says, and no worker
 * can stall it.
 *
 * One server runs a well-behaved project (the real wf-worker) beside
 * workers that misbehave on purpose (rogue_worker.c): one that never reads
 * its socket (core's ping goes unanswered), one that floods heartbeats past
 * WF_WORKER_MSG_RATE, one that sends a record with no header, one whose
 * record is truncated by the kernel, one that claims code it was never
 * given, one that greets core with another pid. Each is reset: killed by
 * the manager at core's request, with the reason in its status and in its
 * workflow_workers row, and restarted like a crashed worker. Meanwhile the
 * good worker keeps its pid and its heartbeats, /health keeps answering 200
 * and core is never restarted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct th_server srv;

struct expect {
    const char *project;
    const char *reason; /* in the status error */
    const char *alt;    /* or this one (NULL: none) */
};

static PGconn *conn;

/* 1 when the project's workflow_workers row holds the reason. */
static int row_has(void *arg)
{
    const struct expect *e = arg;
    char wid[160];
    char *v;
    int ok;

    snprintf(wid, sizeof(wid), "testhost:%s", e->project);
    v = th_sql_value(conn, "SELECT error FROM workflow_workers WHERE worker_id = $1", wid);
    ok = v != NULL &&
         (strstr(v, e->reason) != NULL || (e->alt != NULL && strstr(v, e->alt) != NULL));
    free(v);
    return ok;
}

static int error_has(void *arg)
{
    const struct expect *e = arg;
    char path[160];
    cJSON *j = NULL;
    const char *err;
    int ok = 0;

    snprintf(path, sizeof(path), "/workers/status/%s", e->project);
    if (th_http_json(&srv, "GET", path, NULL, &j) == 200) {
        err = th_json_str(j, "error");
        ok = err != NULL &&
             (strstr(err, e->reason) != NULL || (e->alt != NULL && strstr(err, e->alt) != NULL));
    }
    cJSON_Delete(j);
    return ok;
}

int main(void)
{
    static const struct expect cases[] = {
        {"deaf-1", "did not answer core's ping within 1000 ms", "stopped reading"},
        {"flood-1", "sent more than 2000 messages per second", NULL},
        {"garbage-1", "malformed or truncated message", NULL},
        {"trunc-1", "malformed or truncated message", "over the size limit"},
        {"liar-1", "claims code that core's record does not show", NULL},
        {"badhello-1", "malformed hello", NULL},
    };
    char env_prog[4200];
    const char *overrides[5];
    struct th_db db;
    pid_t good_pid, core_pid;
    long long db_now = 0;
    int rc;

    if (th_init("test_worker_channel", 1) != 0)
        return TH_SKIP;
    if (getenv("WF_ROGUE_WORKER_BIN") == NULL)
        return TH_SKIP;
    snprintf(env_prog, sizeof(env_prog), "WF_WORKER_PROGRAM=%s", getenv("WF_ROGUE_WORKER_BIN"));
    overrides[0] = env_prog;
    overrides[1] = "WF_WORKER_STALL_MS=1000";
    overrides[2] = "WF_WORKER_MSG_RATE=2000";
    overrides[3] = "WF_HEARTBEAT_MS=100";
    overrides[4] = NULL;
    memset(&db, 0, sizeof(db));
    memset(&srv, 0, sizeof(srv));
    rc = th_up(&db, &srv, overrides, &conn);
    if (rc != 0)
        goto out;
    core_pid = th_proc_child(srv.pid, "wf-core");
    CHECK(core_pid > 0);

    /* A well-behaved worker, through the real program. */
    CHECK_EQ_INT(th_create_project(&srv, "good", NULL), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "good", NULL), 200);
    good_pid = th_status_pid(&srv, "good", NULL);
    CHECK(good_pid > 0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct expect ecopy = cases[i];
        const struct expect *e = &ecopy;
        struct th_reply r;

        CHECK_EQ_INT(th_create_project(&srv, e->project, NULL), 201);
        CHECK_EQ_INT(th_post_project(&srv, "/workers/start", e->project, NULL), 200);
        if (!CHECK(th_wait_until(error_has, &ecopy, 10000, 50) == 0))
            fprintf(stderr, "no reset of %s with \"%s\"\n", e->project, e->reason);
        /* the reason reaches the row too (written right after) */
        CHECK(th_wait_until(row_has, &ecopy, 5000, 20) == 0);
        /* nothing else was touched */
        CHECK_EQ_INT(th_http_ex(&srv, "GET", "/health", NULL, 0, NULL, 2000, &r), 200);
        th_reply_free(&r);
        CHECK_EQ_INT(th_status_pid(&srv, "good", NULL), good_pid);
        CHECK_EQ_INT(th_proc_child(srv.pid, "wf-core"), core_pid);
        CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", e->project, NULL), 200);
    }
    CHECK(th_server_log_contains(&srv, "killing worker"));
    /* the good worker still heartbeats */
    CHECK(th_db_now_ms(conn, &db_now) == 0);
    CHECK(th_wait_heartbeat_after(conn, "testhost:good", db_now, 5000, 50) == 0);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    return th_teardown(&db, &srv, conn);
}
