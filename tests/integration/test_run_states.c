/*
 * test_run_states.c: every state path of a run (docs/api.md, DESIGN §5),
 * against the real server, database and a sandboxed worker running the
 * engine's test plugin (tests/plugins/engine_recorder.h):
 *   - completed, with its steps recorded once each (the activities log
 *     every invocation to a file the sandbox lets them write);
 *   - failed after its retries, with the activity's own fail() message; a
 *     non-retryable failure tried once; retried from the dead-letter list,
 *     resuming at the failed step;
 *   - a durable sleep; a signal sent before the wait and after it; a signal
 *     wait that times out;
 *   - cancelled while running, sleeping and waiting; timed out (timeoutMs);
 *   - non-determinism fails the run naming both steps;
 *   - a 1 MB input and a 5 MB activity output;
 *   - a restart drains the old worker: its running activity finishes once;
 *   - 400/404/409 for bad ids, unknown runs and runs already ended.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;
static PGconn *pg;
static char dir[256];

static const char *const workflows[] = {"steps",    "sleepy",  "waiter",
                                        "retrying", "failing", "nondeterministic",
                                        "clock",    "big-io",  "one-activity"};
static const char *const activities[] = {"record", "flaky", "fail_always", "invalid",
                                         "slow",   "big",   "noop"};

/* POSTs body to path; returns the status, the reply in *json (may be NULL). */
static long post(const char *path, const char *body, cJSON **json)
{
    return th_http_json(&srv, "POST", path, body, json);
}

/* Triggers workflow with input (JSON text); returns the run id (static). */
static const char *start(const char *workflow, const char *input)
{
    static char id[64];
    size_t len = strlen(input) + 200;
    char *body = malloc(len);
    cJSON *j = NULL;

    snprintf(body, len, "{\"workflow\":\"%s\",\"input\":%s}", workflow, input);
    id[0] = '\0';
    if (CHECK_EQ_INT(post("/projects/p/executions", body, &j), 202) &&
        th_json_str(j, "executionId") != NULL)
        snprintf(id, sizeof(id), "%s", th_json_str(j, "executionId"));
    cJSON_Delete(j);
    free(body);
    return id;
}

static char want_status[32];
static const char *want_id;

static int has_status(void *arg)
{
    char *v = th_sql_value(arg, "SELECT status FROM executions WHERE id = $1::uuid", want_id);
    int ok = v != NULL && strcmp(v, want_status) == 0;

    free(v);
    return ok;
}

/* Waits up to ms for the run to reach status; returns 1 if it did. */
static int reaches(const char *id, const char *status, int ms)
{
    want_id = id;
    snprintf(want_status, sizeof(want_status), "%s", status);
    return th_wait_until(has_status, pg, ms, 20) == 0;
}

/* A column of the run (SQL expression over executions e); caller frees. */
static char *run_col(const char *id, const char *expr)
{
    char sql[512];

    snprintf(sql, sizeof(sql), "SELECT %s FROM executions e WHERE e.id = $1::uuid", expr);
    return th_sql_value(pg, sql, id);
}

/* Lines of invocations.log naming run id. */
static int invocations(const char *id)
{
    char path[300], line[256];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/invocations.log", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strncmp(line, id, strlen(id)) == 0;
    fclose(f);
    return n;
}

static void check_col(const char *id, const char *expr, const char *want)
{
    char *v = run_col(id, expr);

    if (!CHECK(v != NULL && strcmp(v, want) == 0))
        fprintf(stderr, "  %s of %s: got %s, want %s\n", expr, id, v != NULL ? v : "(null)", want);
    free(v);
}

static void test_completed(void)
{
    char in[512], id[64];

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":5}", dir);
    snprintf(id, sizeof(id), "%s", start("steps", in));
    CHECK(reaches(id, "completed", 20000));
    check_col(id, "e.output->>'sum'", "5");
    check_col(id, "e.output->>'version'", "1");
    check_col(id, "(SELECT count(*) FROM steps s WHERE s.execution_id = e.id)::text", "5");
    check_col(id, "(e.completed_at >= e.started_at)::text", "true");
    CHECK_EQ_INT(invocations(id), 5);
}

static void test_failed_and_retry(void)
{
    char in[512], id[64], path[128];
    cJSON *j = NULL;

    /* Three attempts, then the run fails with the activity's message. */
    snprintf(id, sizeof(id), "%s", start("failing", "{\"reason\":\"disk on fire\"}"));
    CHECK(reaches(id, "failed", 20000));
    check_col(id, "e.error->>'message'", "boom: disk on fire");
    check_col(id, "(SELECT attempts || ':' || status FROM steps s WHERE s.execution_id = e.id)",
              "3:failed");

    /* WF_EINVAL is not retried. */
    snprintf(id, sizeof(id), "%s", start("one-activity", "{\"activity\":\"invalid\"}"));
    CHECK(reaches(id, "failed", 20000));
    check_col(id, "(SELECT attempts::text FROM steps s WHERE s.execution_id = e.id)", "1");

    /* flaky fails 3 times: the run fails; a retry resumes at that step,
     * whose 4th call succeeds. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"key\":\"r1\",\"failures\":3}", dir);
    snprintf(id, sizeof(id), "%s", start("retrying", in));
    CHECK(reaches(id, "failed", 20000));
    check_col(id, "e.error->>'message'", "flaky failure 3");
    snprintf(path, sizeof(path), "/executions/%s/retry", id);
    CHECK_EQ_INT(post(path, NULL, &j), 202);
    CHECK_STR(th_json_str(j, "status"), "pending");
    cJSON_Delete(j);
    CHECK(reaches(id, "completed", 20000));
    check_col(id, "e.output->>'calls'", "4");
    check_col(id, "(e.error IS NULL)::text", "true");
    /* Only a failed run can be retried. */
    CHECK_EQ_INT(post(path, NULL, NULL), 409);
}

static void test_sleep_and_signals(void)
{
    char in[512], id[64], path[160];
    cJSON *j = NULL;

    /* A durable sleep of 300 ms between two steps. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":2,\"sleep_ms\":300}", dir);
    snprintf(id, sizeof(id), "%s", start("sleepy", in));
    CHECK(reaches(id, "completed", 20000));
    check_col(id, "(e.completed_at - e.started_at >= interval '300 ms')::text", "true");
    check_col(id,
              "(SELECT string_agg(kind, ',' ORDER BY seq) FROM steps s"
              " WHERE s.execution_id = e.id)",
              "activity,sleep,activity");
    CHECK_EQ_INT(invocations(id), 2);

    /* A signal after the wait began. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":2,\"signal\":\"go\"}", dir);
    snprintf(id, sizeof(id), "%s", start("waiter", in));
    CHECK(reaches(id, "waiting", 20000));
    snprintf(path, sizeof(path), "/executions/%s/signals/go", id);
    CHECK_EQ_INT(post(path, "{\"approved\":true}", &j), 202);
    CHECK_STR(th_json_str(j, "signal"), "go");
    cJSON_Delete(j);
    CHECK(reaches(id, "completed", 20000));
    check_col(id, "e.output->'payload'->>'approved'", "true");
    CHECK_EQ_INT(invocations(id), 2);
    /* The run ended: 409. */
    CHECK_EQ_INT(post(path, "1", NULL), 409);

    /* A signal before the run reaches its wait (sent at once). */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":6,\"signal\":\"early\"}", dir);
    snprintf(id, sizeof(id), "%s", start("waiter", in));
    snprintf(path, sizeof(path), "/executions/%s/signals/early", id);
    CHECK_EQ_INT(post(path, "\"first\"", NULL), 202);
    CHECK(reaches(id, "completed", 20000));
    check_col(id, "e.output->>'payload'", "first");

    /* A wait that times out. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":2,\"signal\":\"never\",\"timeout_ms\":300}",
             dir);
    snprintf(id, sizeof(id), "%s", start("waiter", in));
    CHECK(reaches(id, "completed", 20000));
    check_col(id, "e.output->>'timedOut'", "true");
    check_col(id, "(SELECT status FROM steps s WHERE s.execution_id = e.id AND kind = 'signal')",
              "timedout");
}

static void test_cancel(void)
{
    char in[512], id[64], path[160];
    cJSON *j = NULL;

    /* While running (an activity sleeping 30 s). */
    snprintf(id, sizeof(id), "%s",
             start("one-activity", "{\"activity\":\"slow\",\"input\":{\"ms\":30000}}"));
    CHECK(reaches(id, "running", 20000));
    usleep(300 * 1000);
    snprintf(path, sizeof(path), "/executions/%s/cancel", id);
    CHECK(post(path, NULL, &j) / 100 == 2);
    cJSON_Delete(j);
    CHECK(reaches(id, "cancelled", 5000));

    /* While sleeping. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":2,\"sleep_ms\":600000}", dir);
    snprintf(id, sizeof(id), "%s", start("sleepy", in));
    CHECK(reaches(id, "sleeping", 20000));
    snprintf(path, sizeof(path), "/executions/%s/cancel", id);
    CHECK_EQ_INT(post(path, NULL, &j), 200);
    CHECK_STR(th_json_str(j, "status"), "cancelled");
    cJSON_Delete(j);
    check_col(id, "e.status", "cancelled");

    /* While waiting. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":2,\"signal\":\"never\"}", dir);
    snprintf(id, sizeof(id), "%s", start("waiter", in));
    CHECK(reaches(id, "waiting", 20000));
    snprintf(path, sizeof(path), "/executions/%s/cancel", id);
    CHECK_EQ_INT(post(path, NULL, NULL), 200);
    check_col(id, "e.status", "cancelled");
    CHECK_EQ_INT(post(path, NULL, NULL), 409);
}

static void test_nondeterminism(void)
{
    char in[512], id[64];
    char *v;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\"}", dir);
    snprintf(id, sizeof(id), "%s", start("nondeterministic", in));
    CHECK(reaches(id, "failed", 20000));
    v = run_col(id, "e.error->>'message'");
    CHECK(v != NULL && strstr(v, "non-determinism at step 0: recorded activity \"record\", "
                                 "code asked for activity \"fail_always\"") != NULL);
    free(v);
}

static void test_big(void)
{
    size_t n = 1000 * 1000;
    char *in = malloc(n + 100), *p;
    char id[64];

    p = in + snprintf(in, n + 100, "{\"bytes\":5000000,\"data\":\"");
    memset(p, 'y', n);
    memcpy(p + n, "\"}", 3);
    snprintf(id, sizeof(id), "%s", start("big-io", in));
    free(in);
    CHECK(reaches(id, "completed", 30000));
    check_col(id, "e.output->>'length'", "5000000");
    check_col(id, "e.output->>'inputLength'", "1000000");
    check_col(id, "(SELECT length(output->>'data')::text FROM steps s WHERE s.execution_id = e.id)",
              "5000000");
}

/* timeoutMs: a run still going past it fails, whatever it is doing (here
 * an activity of 30 s); a bad value is refused. */
static void test_run_timeout(void)
{
    char id[64];
    char *v;
    cJSON *j = NULL;

    CHECK_EQ_INT(post("/projects/p/executions",
                      "{\"workflow\":\"one-activity\",\"timeoutMs\":400,"
                      "\"input\":{\"activity\":\"slow\",\"input\":{\"ms\":30000}}}",
                      &j),
                 202);
    snprintf(id, sizeof(id), "%s",
             th_json_str(j, "executionId") ? th_json_str(j, "executionId") : "");
    cJSON_Delete(j);
    CHECK(reaches(id, "failed", 5000));
    v = run_col(id, "e.error->>'message'");
    CHECK_STR(v, "run timed out after 400 ms");
    free(v);
    CHECK_EQ_INT(post("/projects/p/executions", "{\"workflow\":\"steps\",\"timeoutMs\":0}", NULL),
                 400);
    CHECK_EQ_INT(post("/projects/p/executions", "{\"workflow\":\"steps\",\"timeoutMs\":1.5}", NULL),
                 400);
}

/* A restart drains the old worker: the activity it runs finishes and is
 * recorded once; the new worker goes on from there. */
static void test_drain(void)
{
    char id[64];
    long long t0, t1;

    snprintf(id, sizeof(id), "%s",
             start("one-activity", "{\"activity\":\"slow\",\"input\":{\"ms\":1500}}"));
    CHECK(reaches(id, "running", 20000));
    usleep(200 * 1000);
    CHECK(th_db_now_ms(pg, &t0) == 0);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);
    CHECK(reaches(id, "completed", 20000));
    CHECK(th_db_now_ms(pg, &t1) == 0);
    check_col(id, "e.output->'result'->>'sleptMs'", "1500");
    check_col(id, "(SELECT attempts::text FROM steps s WHERE s.execution_id = e.id)", "1");
    /* Not cut and run again (that would take another 1.5 s). */
    CHECK(t1 - t0 < 2500);
}

static void test_errors(void)
{
    CHECK_EQ_INT(post("/executions/not-a-uuid/cancel", NULL, NULL), 400);
    CHECK_EQ_INT(post("/executions/00000000-0000-4000-8000-000000000000/cancel", NULL, NULL), 404);
    CHECK_EQ_INT(post("/executions/00000000-0000-4000-8000-000000000000/retry", NULL, NULL), 404);
    CHECK_EQ_INT(post("/executions/00000000-0000-4000-8000-000000000000/signals/go", "{}", NULL),
                 404);
    CHECK_EQ_INT(
        post("/executions/00000000-0000-4000-8000-000000000000/signals/bad%20name", "{}", NULL),
        400);
    CHECK_EQ_INT(post("/executions/00000000-0000-4000-8000-000000000000/signals/go", "{", NULL),
                 400);
}

int main(void)
{
    struct th_db db;
    char rw[300];
    const char *overrides[3];
    int rc;

    snprintf(dir, sizeof(dir), "/tmp/wf-test-run-states-%d", (int)getpid());
    if (mkdir(dir, 0777) < 0 || chmod(dir, 0777) < 0) {
        perror(dir);
        return 1;
    }
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    overrides[0] = rw;
    overrides[1] = "WF_MAX_BODY_BYTES=4194304";
    overrides[2] = NULL;
    rc = th_setup("test_run_states", &db, &srv, overrides, &pg);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;
    CHECK_EQ_INT(post("/projects", "{\"id\":\"p\"}", NULL), 201);
    for (size_t i = 0; i < sizeof(workflows) / sizeof(workflows[0]); i++) {
        char path[160];
        snprintf(path, sizeof(path), "/projects/p/workflows/%s", workflows[i]);
        CHECK(th_put_plugin(&srv, path, "engine_recorder", NULL) / 100 == 2);
    }
    for (size_t i = 0; i < sizeof(activities) / sizeof(activities[0]); i++) {
        char path[160];
        snprintf(path, sizeof(path), "/projects/p/activities/%s", activities[i]);
        CHECK(th_put_plugin(&srv, path, "engine_recorder", NULL) / 100 == 2);
    }
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p", NULL), 200);

    test_completed();
    test_failed_and_retry();
    test_sleep_and_signals();
    test_cancel();
    test_nondeterminism();
    test_big();
    test_run_timeout();
    test_drain();
    test_errors();
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
