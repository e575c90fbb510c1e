/*
 * test_run_versions.c: runs are pinned to the code they started on (DESIGN
 * §5, code versions), against the real server, database and workers, with
 * the engine-recorder plugin in two versions (its outputs and its `record`
 * log lines say which ran):
 *   - runs of v1 sleeping in the database while v2 is deployed and the
 *     worker restarted finish on v1 (workflow and activities), and new runs
 *     use v2;
 *   - the worker loads v1 beside v2 for them and unloads it once the last
 *     one ended; its status lists the versions it holds;
 *   - a run pinned to a version whose workflow is gone from the current
 *     code still finishes on its own code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;
static PGconn *pg;
static char dir[256];

#define NV1 10
#define NV2 5

static long post(const char *path, const char *body, cJSON **json)
{
    return th_http_json(&srv, "POST", path, body, json);
}

static void start(const char *workflow, const char *input, char id[64])
{
    char body[512];
    cJSON *j = NULL;

    snprintf(body, sizeof(body), "{\"workflow\":\"%s\",\"input\":%s}", workflow, input);
    id[0] = '\0';
    if (CHECK_EQ_INT(post("/projects/p/executions", body, &j), 202) &&
        th_json_str(j, "executionId") != NULL)
        snprintf(id, 64, "%s", th_json_str(j, "executionId"));
    cJSON_Delete(j);
}

static void deploy(const char *plugin)
{
    static const char *const wfs[] = {"sleepy", "steps"};
    char path[160];

    for (size_t i = 0; i < sizeof(wfs) / sizeof(wfs[0]); i++) {
        snprintf(path, sizeof(path), "/projects/p/workflows/%s", wfs[i]);
        CHECK(th_put_plugin(&srv, path, plugin, NULL) / 100 == 2);
    }
    CHECK(th_put_plugin(&srv, "/projects/p/activities/record", plugin, NULL) / 100 == 2);
}

static int all_ended(void *arg)
{
    long long n = -1;

    (void)th_sql_ll(arg,
                    "SELECT count(*) FROM executions WHERE status NOT IN ('completed', 'failed')",
                    NULL, &n);
    return n == 0;
}

/* Lines of invocations.log naming run id, and how many of them end in
 * " v2". */
static void record_lines(const char *id, int *n, int *v2)
{
    char path[300], line[512];
    FILE *f;

    *n = *v2 = 0;
    snprintf(path, sizeof(path), "%s/invocations.log", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, id, strlen(id)) != 0)
            continue;
        (*n)++;
        *v2 += strstr(line, " v2\n") != NULL;
    }
    fclose(f);
}

/* Lines of the server's log containing needle. */
static int log_count(const char *needle)
{
    char *text = th_read_file(srv.log_path, NULL);
    int n = 0;

    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

/* 1 if the project's status lists a version that is not current. */
static int holds_old(void *arg)
{
    cJSON *j = NULL;
    const cJSON *it;
    int found = 0;

    (void)arg;
    if (th_http_json(&srv, "GET", "/workers/status/p", NULL, &j) == 200) {
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "versions"))
        {
            found |= cJSON_IsFalse(cJSON_GetObjectItem(it, "current"));
        }
    }
    cJSON_Delete(j);
    return found;
}

int main(void)
{
    struct th_db db;
    char rw[300], in[512];
    char v1[NV1][64], v2[NV2][64];
    char *sha1, *sha2, *v;
    const char *overrides[2];
    int rc;

    snprintf(dir, sizeof(dir), "/tmp/wf-test-run-versions-%d", (int)getpid());
    if (mkdir(dir, 0777) < 0 || chmod(dir, 0777) < 0) {
        perror(dir);
        return 1;
    }
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    overrides[0] = rw;
    overrides[1] = NULL;
    rc = th_setup("test_run_versions", &db, &srv, overrides, &pg);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;
    CHECK_EQ_INT(post("/projects", "{\"id\":\"p\"}", NULL), 201);
    deploy("engine_recorder");
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p", NULL), 200);

    /* v1 runs: two steps, then a 1.5 s sleep in the database, two more. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":4,\"sleep_ms\":1500}", dir);
    for (int i = 0; i < NV1; i++)
        start("sleepy", in, v1[i]);
    sha1 =
        th_sql_value(pg, "SELECT artifact_sha256 FROM workflows WHERE kebab_name = 'sleepy'", NULL);

    /* v2 deployed, the worker restarted while they sleep; new runs. */
    usleep(300 * 1000);
    deploy("engine_recorder_v2");
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);
    sha2 =
        th_sql_value(pg, "SELECT artifact_sha256 FROM workflows WHERE kebab_name = 'sleepy'", NULL);
    CHECK(sha1 != NULL && sha2 != NULL && strcmp(sha1, sha2) != 0);
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":2}", dir);
    for (int i = 0; i < NV2; i++)
        start("steps", in, v2[i]);

    /* While the v1 runs finish, the worker holds v1 beside v2. */
    CHECK(th_wait_until(holds_old, NULL, 10000, 5) == 0);
    CHECK(th_wait_until(all_ended, pg, 30000, 50) == 0);

    for (int i = 0; i < NV1; i++) {
        int n, nv2;
        v = th_sql_value(pg,
                         "SELECT status || ':' || (output->>'version') FROM executions"
                         " WHERE id = $1::uuid",
                         v1[i]);
        CHECK_STR(v, "completed:1");
        free(v);
        v = th_sql_value(pg, "SELECT code_sha256 FROM executions WHERE id = $1::uuid", v1[i]);
        CHECK(v != NULL && sha1 != NULL && strcmp(v, sha1) == 0);
        free(v);
        record_lines(v1[i], &n, &nv2);
        CHECK_EQ_INT(n, 4);   /* each step once */
        CHECK_EQ_INT(nv2, 0); /* and all on v1 */
    }
    for (int i = 0; i < NV2; i++) {
        int n, nv2;
        v = th_sql_value(pg,
                         "SELECT status || ':' || (output->>'version') FROM executions"
                         " WHERE id = $1::uuid",
                         v2[i]);
        CHECK_STR(v, "completed:2");
        free(v);
        record_lines(v2[i], &n, &nv2);
        CHECK_EQ_INT(n, 2);
        CHECK_EQ_INT(nv2, 2);
    }
    /* v1 was loaded once for them, and unloaded after the last. */
    CHECK(log_count("loaded code version") >= 1);
    usleep(300 * 1000);
    CHECK(log_count("unloaded code version") >= 1);
    CHECK(!holds_old(NULL));
    free(sha1);
    free(sha2);

out:
    th_down(&db, &srv, pg);
    {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return th_finish();
}
