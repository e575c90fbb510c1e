/*
 * test_many.c: 50 projects created, started, listed, checked through the seed
 * SQL (running, fresh heartbeats), then stopped.
 *
 * The first seed query of DESIGN §1 (th_seed_query_1) runs verbatim; the
 * database is fresh, so every row it returns belongs to this test. Waits
 * are bounded polls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N_PROJECTS 50

static struct th_server srv;
static PGconn *conn;

static void project_id(int i, char *buf, size_t len)
{
    snprintf(buf, len, "proj-%02d", i);
}

/* 1 when the seed query returns N_PROJECTS rows, all heartbeating < 5 s ago */
static int all_fresh(void *arg)
{
    PGresult *res = th_sql(conn, th_seed_query_1, 0, NULL);
    int ok;
    int i;

    (void)arg;
    if (res == NULL)
        return 0;
    ok = PQntuples(res) == N_PROJECTS;
    for (i = 0; ok && i < PQntuples(res); i++) {
        ok = !PQgetisnull(res, i, 5) && strtod(PQgetvalue(res, i, 5), NULL) < 5.0 &&
             strcmp(PQgetvalue(res, i, 2), "running") == 0;
    }
    PQclear(res);
    return ok;
}

int main(void)
{
    struct th_db db;
    char id[32];
    cJSON *j = NULL;
    const cJSON *arr;
    pid_t kids[N_PROJECTS + 8];
    long long n;
    long st;
    int started = 0;
    int rc;
    int i;

    rc = th_setup("test_many", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    for (i = 0; i < N_PROJECTS; i++) {
        project_id(i, id, sizeof(id));
        st = th_create_project(&srv, id, NULL);
        if (!CHECK_EQ_INT(st, 201))
            goto out;
    }
    for (i = 0; i < N_PROJECTS; i++) {
        char want[64];

        project_id(i, id, sizeof(id));
        snprintf(want, sizeof(want), "Worker started for project %s", id);
        st = th_post_project(&srv, "/workers/start", id, &j);
        started += CHECK_EQ_INT(st, 200);
        CHECK_STR(th_json_str(j, "message"), want);
        cJSON_Delete(j);
        j = NULL;
    }
    CHECK_EQ_INT(started, N_PROJECTS);

    st = th_http_json(&srv, "GET", "/workers", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_json_num(j, "count"), N_PROJECTS);
    arr = cJSON_GetObjectItemCaseSensitive(j, "workers");
    CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == N_PROJECTS);
    if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == N_PROJECTS) {
        int sorted = 1;

        for (i = 0; i < N_PROJECTS; i++) {
            const cJSON *it = cJSON_GetArrayItem(arr, i);

            project_id(i, id, sizeof(id));
            if (!cJSON_IsString(it) || strcmp(it->valuestring, id) != 0)
                sorted = 0;
        }
        CHECK(sorted);
    }
    cJSON_Delete(j);
    j = NULL;

    CHECK_EQ_INT(th_proc_children(srv.pid, "wf-worker", kids, N_PROJECTS + 8), N_PROJECTS);
    CHECK(th_wait_until(all_fresh, NULL, 10000, 100) == 0);

    for (i = 0; i < N_PROJECTS; i++) {
        char want[64];

        project_id(i, id, sizeof(id));
        snprintf(want, sizeof(want), "Worker stopped for project %s", id);
        st = th_post_project(&srv, "/workers/stop", id, &j);
        CHECK_EQ_INT(st, 200);
        CHECK_STR(th_json_str(j, "message"), want);
        cJSON_Delete(j);
        j = NULL;
    }
    st = th_http_json(&srv, "GET", "/workers", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 0);
    cJSON_Delete(j);
    j = NULL;
    CHECK_EQ_INT(th_proc_children(srv.pid, "wf-worker", kids, N_PROJECTS + 8), 0);

    n = -1;
    CHECK(th_sql_ll(conn,
                    "SELECT count(*) FROM workflow_workers "
                    "WHERE status = 'stopped'",
                    NULL, &n) == 0);
    CHECK_EQ_INT(n, N_PROJECTS);
    n = -1;
    CHECK(th_sql_ll(conn,
                    "SELECT count(*) FROM workflow_workers "
                    "WHERE status <> 'stopped'",
                    NULL, &n) == 0);
    CHECK_EQ_INT(n, 0);

    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    cJSON_Delete(j);
    return th_teardown(&db, &srv, conn);
}
