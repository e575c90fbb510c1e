/*
 * test_concurrent.c: process control under concurrent calls.
 *
 * Many clients at once (one connection each, curl multi): ten starts of one
 * project start exactly one worker and all name its pid; twenty starts of different projects all
 * succeed; ten restarts of one project leave exactly one live worker whose
 * pid the status reply and the row agree on; stops and starts mixed on one
 * project end in a consistent state. "Consistent" always means: the manager's
 * wf-worker children, the status reply and the workflow_workers row tell the
 * same story.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N_SAME 10
#define N_MANY 20
#define N_MIX 10
/* the request arrays hold N_MANY entries and serve every round */
_Static_assert(N_MANY >= N_SAME && N_MANY >= N_MIX, "N_MANY is the largest round");

static struct th_server srv;
static PGconn *conn;

/* builds n copies of path and {"projectId":"<ids[i]>"} bodies */
static void fill_requests(int n, const char *const *ids, const char **paths, const char *path,
                          char (*bodies)[96], const char **bodyp)
{
    int i;

    for (i = 0; i < n; i++) {
        paths[i] = path;
        snprintf(bodies[i], sizeof(bodies[i]), "{\"projectId\":\"%s\"}", ids[i]);
        bodyp[i] = bodies[i];
    }
}

static void free_json(cJSON **json, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        cJSON_Delete(json[i]);
        json[i] = NULL;
    }
}

/* the number of live wf-worker children whose argv names project */
static int workers_of(const char *project, pid_t *one)
{
    pid_t kids[64];
    int n = th_proc_children(srv.pid, "wf-worker", kids, 64);
    int found = 0;
    int i;

    for (i = 0; i < n && i < 64; i++) {
        char path[64];
        size_t len = 0;
        char *cmd;

        snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)kids[i]);
        cmd = th_read_file(path, &len);
        if (cmd != NULL) {
            const char *a1 = cmd + strlen(cmd) + 1;
            const char *a2 = (size_t)(a1 - cmd) < len ? a1 + strlen(a1) + 1 : NULL;

            if (a2 != NULL && (size_t)(a2 - cmd) < len && strcmp(a2, project) == 0) {
                found++;
                if (one != NULL)
                    *one = kids[i];
            }
        }
        free(cmd);
    }
    return found;
}

/*
 * Checks that status reply, row and process table agree for project.
 * Returns 1 when they do; when quiet, checks nothing and only reports.
 */
static int consistent(const char *project, int quiet)
{
    char path[96];
    char worker_id[96];
    cJSON *j = NULL;
    const char *status;
    char *row_status;
    char *row_pid;
    pid_t proc_pid = 0;
    int nproc;
    int ok;

    snprintf(path, sizeof(path), "/workers/status/%s", project);
    snprintf(worker_id, sizeof(worker_id), "testhost:%s", project);
    if (th_http_json(&srv, "GET", path, NULL, &j) != 200) {
        cJSON_Delete(j);
        return quiet ? 0 : CHECK(0);
    }
    status = th_json_str(j, "status");
    row_status = th_sql_value(conn,
                              "SELECT status FROM workflow_workers "
                              "WHERE worker_id = $1",
                              worker_id);
    row_pid = th_sql_value(conn,
                           "SELECT pid::text FROM workflow_workers "
                           "WHERE worker_id = $1",
                           worker_id);
    nproc = workers_of(project, &proc_pid);
    if (status != NULL && strcmp(status, "running") == 0) {
        ok = nproc == 1 && th_json_num(j, "pid") == proc_pid && row_status != NULL &&
             strcmp(row_status, "running") == 0 && row_pid != NULL &&
             strtol(row_pid, NULL, 10) == (long)proc_pid;
    } else if (status != NULL && strcmp(status, "stopped") == 0) {
        ok = nproc == 0 && (row_status == NULL || strcmp(row_status, "stopped") == 0);
    } else {
        ok = 0;
    }
    if (!ok && !quiet)
        fprintf(stderr,
                "%s: status %s pid %lld, row %s pid %s, %d processes "
                "(pid %ld)\n",
                project, status ? status : "?", th_json_num(j, "pid"),
                row_status ? row_status : "(none)", row_pid ? row_pid : "(none)", nproc,
                (long)proc_pid);
    cJSON_Delete(j);
    free(row_status);
    free(row_pid);
    return quiet ? ok : CHECK(ok);
}

static int settled(void *arg)
{
    return consistent(arg, 1);
}

/*
 * Checks each of n replies to contended calls on one project: 200, or 409
 * while another call holds the project; prints what (e.g. "restart"), the
 * index and the error of any other reply.
 */
static void check_200_or_409(const char *what, const long *status, cJSON *const *json, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        CHECK(status[i] == 200 || status[i] == 409);
        if (status[i] != 200 && status[i] != 409)
            fprintf(stderr, "%s %d: %ld %s\n", what, i, status[i],
                    th_json_str(json[i], "error") ? th_json_str(json[i], "error") : "");
    }
}

/*
 * Checks each of the n replies to a parallel start or stop (verb "started"
 * or "stopped") of ids: 200 and "Worker <verb> for project <id>".
 */
static void check_all_done(const char *verb, const char *const *ids, const long *status,
                           cJSON *const *json, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        char want[64];

        snprintf(want, sizeof(want), "Worker %s for project %s", verb, ids[i]);
        CHECK_EQ_INT(status[i], 200);
        CHECK_STR(th_json_str(json[i], "message"), want);
    }
}

static char p1[] = "p1";

int main(void)
{
    static char bodies[N_MANY][96];
    static char idbuf[N_MANY][16];
    const char *ids[N_MANY];
    const char *same[N_MANY]; /* "p1" each */
    const char *paths[N_MANY];
    const char *bodyp[N_MANY];
    long status[N_MANY];
    cJSON *json[N_MANY];
    struct th_db db;
    int started;
    int already;
    pid_t pid = 0;
    int rc;
    int i;

    memset(json, 0, sizeof(json));
    for (i = 0; i < N_MANY; i++)
        same[i] = "p1";
    rc = th_setup("test_concurrent", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    CHECK_EQ_INT(th_create_project(&srv, "p1", NULL), 201);
    for (i = 0; i < N_MANY; i++) {
        snprintf(idbuf[i], sizeof(idbuf[i]), "q%02d", i);
        ids[i] = idbuf[i];
        CHECK_EQ_INT(th_create_project(&srv, ids[i], NULL), 201);
    }

    /* ten starts of p1 at once: one worker, the same pid in every reply */
    fill_requests(N_SAME, same, paths, "/workers/start", bodies, bodyp);
    CHECK(th_http_parallel(&srv, "POST", paths, bodyp, N_SAME, status, json) == 0);
    started = already = 0;
    for (i = 0; i < N_SAME; i++) {
        const char *msg = th_json_str(json[i], "message");

        CHECK_EQ_INT(status[i], 200);
        if (msg != NULL && strcmp(msg, "Worker started for project p1") == 0)
            started++;
        else if (msg != NULL && strcmp(msg, "Worker already running for project p1") == 0)
            already++;
        if (i == 0)
            pid = (pid_t)th_json_num(json[i], "pid");
        else
            CHECK_EQ_INT(th_json_num(json[i], "pid"), pid);
    }
    free_json(json, N_SAME);
    /*
     * Calls that arrive while the start is in progress join it (docs/api.md
     * does not say which message they get); every one is a success naming
     * the same single worker.
     */
    CHECK(started >= 1);
    CHECK_EQ_INT(started + already, N_SAME);
    CHECK_EQ_INT(workers_of("p1", NULL), 1);
    consistent("p1", 0);

    /* twenty projects started at once */
    fill_requests(N_MANY, ids, paths, "/workers/start", bodies, bodyp);
    CHECK(th_http_parallel(&srv, "POST", paths, bodyp, N_MANY, status, json) == 0);
    check_all_done("started", ids, status, json, N_MANY);
    free_json(json, N_MANY);
    {
        cJSON *j = NULL;

        CHECK_EQ_INT(th_http_json(&srv, "GET", "/workers", NULL, &j), 200);
        CHECK_EQ_INT(th_json_num(j, "count"), N_MANY + 1);
        cJSON_Delete(j);
    }
    for (i = 0; i < N_MANY; i++)
        consistent(ids[i], 0);

    /* ... and stopped at once */
    fill_requests(N_MANY, ids, paths, "/workers/stop", bodies, bodyp);
    CHECK(th_http_parallel(&srv, "POST", paths, bodyp, N_MANY, status, json) == 0);
    check_all_done("stopped", ids, status, json, N_MANY);
    free_json(json, N_MANY);
    for (i = 0; i < N_MANY; i++)
        consistent(ids[i], 0);

    /* ten restarts of p1 at once: exactly one worker survives */
    fill_requests(N_SAME, same, paths, "/workers/restart", bodies, bodyp);
    CHECK(th_http_parallel(&srv, "POST", paths, bodyp, N_SAME, status, json) == 0);
    check_200_or_409("restart", status, json, N_SAME);
    free_json(json, N_SAME);
    CHECK(th_wait_pid_gone(pid, 10000, 20) == 0);
    CHECK(th_wait_until(settled, p1, 10000, 50) == 0);
    consistent("p1", 0);
    CHECK_EQ_INT(workers_of("p1", NULL), 1);

    /* starts and stops of p1 interleaved */
    {
        const char *mixpaths[N_MIX];

        fill_requests(N_MIX, same, paths, "/workers/start", bodies, bodyp);
        for (i = 0; i < N_MIX; i++)
            mixpaths[i] = (i % 2) ? "/workers/stop" : "/workers/start";
        CHECK(th_http_parallel(&srv, "POST", mixpaths, bodyp, N_MIX, status, json) == 0);
    }
    check_200_or_409("mixed", status, json, N_MIX);
    free_json(json, N_MIX);
    CHECK(th_wait_until(settled, p1, 10000, 50) == 0);
    consistent("p1", 0);

    /* the server is still fully usable */
    CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", "p1", NULL), 200);
    consistent("p1", 0);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p1", NULL), 200);
    consistent("p1", 0);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    free_json(json, N_MANY);
    return th_teardown(&db, &srv, conn);
}
