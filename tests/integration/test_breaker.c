/*
 * test_breaker.c: a worker program that crashes at once trips the
 * crash-loop breaker.
 *
 * The server runs with WF_WORKER_PROGRAM=$WF_CRASH_WORKER_BIN. The start call
 * answers 500 with success:false; the manager keeps restarting with backoff
 * (1, 2, 4, 8 s) and after the 5th crash marks the project failed: status
 * reply and row say `failed` with an error, GET /workers no longer lists it,
 * and no worker process is started again until the next start call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct th_server srv;
static PGconn *conn;

static int is_failed(void *arg)
{
    cJSON *j = NULL;
    long st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    int ok = st == 200 && th_json_str(j, "status") != NULL &&
             strcmp(th_json_str(j, "status"), "failed") == 0;

    (void)arg;
    cJSON_Delete(j);
    return ok;
}

/* the manager's children other than core */
static int worker_children(void)
{
    pid_t kids[16];
    pid_t core = th_proc_child(srv.pid, "wf-core");
    int n = th_proc_children(srv.pid, NULL, kids, 16);

    return core > 0 ? n - 1 : n;
}

int main(void)
{
    char prog[1100];
    const char *env[2];
    const char *bin = getenv("WF_CRASH_WORKER_BIN");
    struct th_db db;
    cJSON *j = NULL;
    char *v;
    long long t0;
    long st;
    int i;

    memset(&db, 0, sizeof(db));
    if (th_init("test_breaker", 1) != 0)
        return TH_SKIP;
    if (bin == NULL) {
        printf("test_breaker: WF_CRASH_WORKER_BIN is not set; skipped\n");
        return TH_SKIP;
    }
    snprintf(prog, sizeof(prog), "WF_WORKER_PROGRAM=%s", bin);
    env[0] = prog;
    env[1] = NULL;
    if (th_up(&db, &srv, env, &conn) != 0)
        goto out;

    CHECK_EQ_INT(th_create_project(&srv, "p1", NULL), 201);
    t0 = th_now_ms();
    st = th_post_project(&srv, "/workers/start", "p1", &j);
    CHECK_EQ_INT(st, 500);
    CHECK(th_json_bool(j, "success") == 0);
    CHECK(th_json_str(j, "error") != NULL && th_json_str(j, "error")[0] != '\0');
    printf("start replied %ld after %lld ms: %s\n", st, th_now_ms() - t0,
           th_json_str(j, "error") ? th_json_str(j, "error") : "(no error)");
    cJSON_Delete(j);
    j = NULL;

    /* 1 + 2 + 4 + 8 s of backoff, then failed */
    if (!CHECK(th_wait_until(is_failed, NULL, 30000, 100) == 0))
        goto stop;
    printf("failed after %lld ms\n", th_now_ms() - t0);

    st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "status"), "failed");
    CHECK(th_json_bool(j, "isRunning") == 0);
    CHECK(th_json_str(j, "error") != NULL && th_json_str(j, "error")[0] != '\0');
    CHECK(th_json_num(j, "restarts") >= 4);
    printf("status error: %s, restarts %lld\n",
           th_json_str(j, "error") ? th_json_str(j, "error") : "(none)",
           th_json_num(j, "restarts"));
    cJSON_Delete(j);
    j = NULL;

    v = th_sql_value(conn,
                     "SELECT status FROM workflow_workers "
                     "WHERE worker_id = $1",
                     "testhost:p1");
    CHECK_STR(v, "failed");
    free(v);
    v = th_sql_value(conn,
                     "SELECT error FROM workflow_workers "
                     "WHERE worker_id = $1",
                     "testhost:p1");
    CHECK(v != NULL && v[0] != '\0');
    free(v);

    st = th_http_json(&srv, "GET", "/workers", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "workers")) == 0);
    cJSON_Delete(j);
    j = NULL;

    /* it stays down: no worker process over more than the last backoff */
    for (i = 0; i < 40; i++) {
        if (worker_children() != 0 || !is_failed(NULL))
            break;
        th_sleep_ms(100);
    }
    CHECK_EQ_INT(i, 40);

stop:
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    cJSON_Delete(j);
    return th_teardown(&db, &srv, conn);
}
