/*
 * test_autostart.c: the desired state of projects, and WF_AUTOSTART.
 *
 * A successful start records desired_state = running, a stop records
 * stopped; a server shutdown (SIGTERM) leaves them as they are. A server
 * started with WF_AUTOSTART=1 starts every project whose desired state is
 * running, and only those; without it, none.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* 1 once project p1's status says running. */
static int p1_running(void *arg)
{
    const struct th_server *s = arg;
    cJSON *j = NULL;
    int ok = 0;

    if (th_status_pid(s, "p1", &j) > 0)
        ok = th_json_str(j, "status") != NULL && strcmp(th_json_str(j, "status"), "running") == 0;
    cJSON_Delete(j);
    return ok;
}

static char *desired(PGconn *conn, const char *id)
{
    return th_sql_value(conn, "SELECT desired_state FROM projects WHERE id = $1", id);
}

/* Stops the running server and starts a new one on the same database. */
static int restart_server(struct th_db *db, struct th_server *srv, const char *const *overrides)
{
    if (!CHECK_EQ_INT(th_server_stop(srv, 15000), 0))
        return -1;
    th_server_cleanup(srv);
    memset(srv, 0, sizeof(*srv));
    return CHECK(th_server_start(srv, db, overrides) == 0) ? 0 : -1;
}

int main(void)
{
    static const char *const projects[] = {"p1", "p2", "p3"};
    static const char *const autostart[] = {"WF_AUTOSTART=1", NULL};
    struct th_server srv;
    struct th_db db;
    PGconn *conn = NULL;
    cJSON *j = NULL;
    char *v;
    int rc;

    rc = th_setup("test_autostart", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    /* p1 and p2 started, p2 stopped again, p3 never started. */
    th_create_and_start(&srv, projects, 2, NULL);
    CHECK_EQ_INT(th_create_project(&srv, "p3", NULL), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", "p2", NULL), 200);
    v = desired(conn, "p1");
    CHECK_STR(v, "running");
    free(v);
    v = desired(conn, "p2");
    CHECK_STR(v, "stopped");
    free(v);
    v = desired(conn, "p3");
    CHECK_STR(v, "stopped");
    free(v);

    /* Without WF_AUTOSTART nothing starts by itself. */
    if (restart_server(&db, &srv, NULL) < 0)
        goto out;
    v = desired(conn, "p1");
    CHECK_STR(v, "running"); /* a shutdown is not a stop call */
    free(v);
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/workers", NULL, &j), 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 0);
    cJSON_Delete(j);

    /* With it, p1 comes back, and only p1. */
    if (restart_server(&db, &srv, autostart) < 0)
        goto out;
    CHECK(th_wait_until(p1_running, &srv, 15000, 50) == 0);
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/workers", NULL, &j), 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 1);
    {
        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "workers"), 0);
        CHECK_STR(cJSON_IsString(first) ? first->valuestring : NULL, "p1");
    }
    cJSON_Delete(j);
    CHECK(th_server_log_contains(&srv, "autostart: 1 projects"));

out:
    return th_teardown(&db, &srv, conn);
}
