/*
 * test_core_crash.c: kill -9 of core; the manager restarts it and the
 * workers are untouched.
 *
 * With three workers running, core is killed. Within 15 s /health answers
 * 200 again on the same port (the manager keeps the listening socket), a new
 * wf-core runs, the three worker pids are unchanged, their rows say running
 * and their heartbeats advance past the restart; start and stop still work.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N_WORKERS 3

static struct th_server srv;
static PGconn *conn;
static const char *const projects[N_WORKERS] = {"p1", "p2", "p3"};

struct core_wait {
    pid_t old_core;
    pid_t new_core;
};

/* 1 when a wf-core other than old_core runs and /health answers 200 */
static int core_back(void *arg)
{
    struct core_wait *w = arg;
    struct th_reply r;
    pid_t core = th_proc_child(srv.pid, "wf-core");
    long st;

    if (core <= 0 || core == w->old_core)
        return 0;
    st = th_http_ex(&srv, "GET", "/health", NULL, 0, NULL, 2000, &r);
    th_reply_free(&r);
    if (st != 200)
        return 0;
    w->new_core = core;
    return 1;
}

/* 1 when p1's status lists exactly order-flow and sendEmail as loaded */
static int loaded_is_p1_code(void)
{
    cJSON *j = NULL;
    const cJSON *loaded;
    const cJSON *wf;
    const cJSON *act;
    int ok;

    if (th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j) != 200) {
        cJSON_Delete(j);
        return 0;
    }
    loaded = cJSON_GetObjectItemCaseSensitive(j, "loaded");
    wf = cJSON_GetObjectItemCaseSensitive(loaded, "workflows");
    act = cJSON_GetObjectItemCaseSensitive(loaded, "activities");
    ok = cJSON_GetArraySize(wf) == 1 && cJSON_GetArraySize(act) == 1 &&
         cJSON_IsString(cJSON_GetArrayItem(wf, 0)) &&
         strcmp(cJSON_GetArrayItem(wf, 0)->valuestring, "order-flow") == 0 &&
         cJSON_IsString(cJSON_GetArrayItem(act, 0)) &&
         strcmp(cJSON_GetArrayItem(act, 0)->valuestring, "sendEmail") == 0;
    if (!ok) {
        char *txt = cJSON_PrintUnformatted(loaded);

        fprintf(stderr, "p1 loaded: %s\n", txt ? txt : "(absent)");
        cJSON_free(txt);
    }
    cJSON_Delete(j);
    return ok;
}

/* 1 when every row is running with a heartbeat after *(long long *)arg */
static int heartbeats_after(void *arg)
{
    char after[32];
    const char *params[1];
    long long n = -1;
    PGresult *res;

    snprintf(after, sizeof(after), "%lld", *(long long *)arg);
    params[0] = after;
    res = th_sql(conn,
                 "SELECT count(*) FROM workflow_workers WHERE status = "
                 "'running' AND EXTRACT(EPOCH FROM last_heartbeat) * 1000 > "
                 "$1::bigint",
                 1, params);
    if (res == NULL)
        return 0;
    if (PQntuples(res) == 1)
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n == N_WORKERS;
}

int main(void)
{
    struct th_db db;
    struct core_wait w;
    pid_t before[N_WORKERS];
    cJSON *j = NULL;
    long long db_now = 0;
    long long t0;
    int port;
    long st;
    int rc;
    int i;

    rc = th_setup("test_core_crash", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    /* p1's code goes in between creating and starting it, so not th_create_and_start */
    for (i = 0; i < N_WORKERS; i++) {
        CHECK_EQ_INT(th_create_project(&srv, projects[i], NULL), 201);
        if (i == 0) {
            CHECK(th_sql_exec(conn, "INSERT INTO workflows (project_id, "
                                    "kebab_name, is_active) VALUES ('p1','order-flow',true)") == 0);
            CHECK(th_sql_exec(conn,
                              "INSERT INTO components (project_id, name, "
                              "kind, is_active) VALUES ('p1','sendEmail','activity',true)") == 0);
        }
        if (!CHECK_EQ_INT(th_post_project(&srv, "/workers/start", projects[i], NULL), 200))
            goto stop;
        before[i] = th_status_pid(&srv, projects[i], NULL);
        CHECK(before[i] > 0);
    }
    CHECK_EQ_INT(th_create_project(&srv, "p4", NULL), 201);

    CHECK(loaded_is_p1_code());
    memset(&w, 0, sizeof(w));
    w.old_core = th_proc_child(srv.pid, "wf-core");
    if (!CHECK(w.old_core > 0))
        goto stop;
    port = srv.port;
    t0 = th_now_ms();
    CHECK(kill(w.old_core, SIGKILL) == 0);
    if (!CHECK(th_wait_until(core_back, &w, 15000, 50) == 0))
        goto stop;
    printf("core %ld replaced by %ld, /health 200 after %lld ms\n", (long)w.old_core,
           (long)w.new_core, th_now_ms() - t0);
    CHECK(w.new_core != w.old_core);
    CHECK(!th_pid_alive(w.old_core));
    CHECK_EQ_INT(srv.port, port);
    CHECK(th_pid_alive(srv.pid));

    /* the same workers, still running */
    for (i = 0; i < N_WORKERS; i++) {
        pid_t now = th_status_pid(&srv, projects[i], &j);

        CHECK_EQ_INT(now, before[i]);
        CHECK_STR(th_json_str(j, "status"), "running");
        CHECK(th_pid_alive(before[i]));
        cJSON_Delete(j);
        j = NULL;
    }
    /* the new core knows what the untouched worker has loaded */
    CHECK(loaded_is_p1_code());
    {
        pid_t kids[8];
        int n = th_proc_children(srv.pid, "wf-worker", kids, 8);
        int k;

        /* the manager's wf-worker children are exactly the pids from before */
        CHECK_EQ_INT(n, N_WORKERS);
        for (i = 0; i < N_WORKERS; i++) {
            int found = 0;

            for (k = 0; k < n && k < 8; k++)
                found |= kids[k] == before[i];
            CHECK(found);
        }
    }

    /* heartbeats reach the database again through the new core */
    CHECK(th_db_now_ms(conn, &db_now) == 0);
    CHECK(th_wait_until(heartbeats_after, &db_now, 5000, 50) == 0);

    /* and process control still works */
    st = th_post_project(&srv, "/workers/start", "p4", &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "message"), "Worker started for project p4");
    cJSON_Delete(j);
    j = NULL;
    st = th_post_project(&srv, "/workers/start", "p1", &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "message"), "Worker already running for project p1");
    cJSON_Delete(j);
    j = NULL;
    st = th_post_project(&srv, "/workers/stop", "p1", &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "message"), "Worker stopped for project p1");
    cJSON_Delete(j);
    j = NULL;
    CHECK(!th_pid_alive(before[0]));
    st = th_http_json(&srv, "GET", "/workers", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 3);
    cJSON_Delete(j);
    j = NULL;

stop:
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    cJSON_Delete(j);
    return th_teardown(&db, &srv, conn);
}
