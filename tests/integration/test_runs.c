/*
 * test_runs.c: durable execution end to end (DESIGN §5), against the real
 * server, database and worker processes, with the suite's good plugin
 * (workflow hello-flow: one activity, echo):
 *   - a trigger answers 202 with the run's id only once its row is
 *     committed; the run completes with its output, its one step recorded
 *     (completed_at set by the committing statement), pinned to the code
 *     the worker runs (code_sha256);
 *   - body errors: malformed JSON, no workflow, a bad name, a bad key → 400;
 *     an unknown project or workflow → 404 naming it;
 *   - an idempotency key answers 200 with the same run the second time;
 *   - a run triggered while no worker runs stays pending, and the worker
 *     started later claims and completes it;
 *   - 200 triggers at once all complete, with a worker that holds at most
 *     16 runs at a time (the rest wait in the database, none fails);
 *   - a run whose worker is killed with -9 while it holds the run is
 *     released and finished by the restarted worker;
 *   - /metrics counts runs, steps and their latencies.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;
static PGconn *pg;

/* POSTs a trigger; returns the status and the run id in id (if any). */
static long trigger(const char *project, const char *body, char id[64])
{
    char path[160];
    cJSON *j = NULL;
    long st;

    snprintf(path, sizeof(path), "/projects/%s/executions", project);
    st = th_http_json(&srv, "POST", path, body, &j);
    if (id != NULL) {
        const char *s = th_json_str(j, "executionId");
        snprintf(id, 64, "%s", s != NULL ? s : "");
    }
    cJSON_Delete(j);
    return st;
}

static const char *wait_id;

static int run_done(void *arg)
{
    char *v = th_sql_value(arg, "SELECT status FROM executions WHERE id = $1::uuid", wait_id);
    int done = v != NULL && (strcmp(v, "completed") == 0 || strcmp(v, "failed") == 0);

    free(v);
    return done;
}

/* The run's status once it ended (or after 20 s); caller frees. */
static char *wait_run(const char *id)
{
    wait_id = id;
    (void)th_wait_until(run_done, pg, 20000, 20);
    return th_sql_value(pg, "SELECT status FROM executions WHERE id = $1::uuid", id);
}

static int all_done(void *arg)
{
    long long n = -1;

    (void)th_sql_ll(arg, "SELECT count(*) FROM executions WHERE status NOT IN ('completed')", NULL,
                    &n);
    return n == 0;
}

int main(void)
{
    struct th_db db;
    char id[64], id2[64];
    char *v;
    int rc;

    /* 200 concurrent clients from one address; a worker that holds at
     * most 16 runs at once, so that most runs wait for a slot. */
    static const char *const overrides[] = {"WF_MAX_CONNECTIONS_PER_IP=256",
                                            "MAX_CONCURRENT_WORKFLOW_EXECUTIONS=16", NULL};

    rc = th_setup("test_runs", &db, &srv, overrides, &pg);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    CHECK_EQ_INT(th_http_json(&srv, "POST", "/projects", "{\"id\":\"p1\"}", NULL), 201);
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/workflows/hello-flow", "good", NULL), 201);
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/activities/echo", "good", NULL), 201);

    /* Triggered before any worker runs: pending, claimed at the start. */
    CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"hello-flow\",\"input\":{\"early\":true}}", id),
                 202);
    v = th_sql_value(pg, "SELECT status FROM executions WHERE id = $1::uuid", id);
    CHECK_STR(v, "pending");
    free(v);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p1", NULL), 200);
    v = wait_run(id);
    CHECK_STR(v, "completed");
    free(v);
    v = th_sql_value(pg, "SELECT output::text FROM executions WHERE id = $1::uuid", id);
    CHECK_STR(v, "{\"early\": true}");
    free(v);

    /* With the worker running: 202 at once, completed, one step. */
    CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"hello-flow\",\"input\":{\"n\":1}}", id), 202);
    v = wait_run(id);
    CHECK_STR(v, "completed");
    free(v);
    v = th_sql_value(pg,
                     "SELECT kind || ':' || name || ':' || status || ':' || output::text || ':' ||"
                     " (completed_at IS NOT NULL) FROM steps WHERE execution_id = $1::uuid",
                     id);
    CHECK_STR(v, "activity:echo:completed:{\"n\": 1}:true");
    free(v);
    v = th_sql_value(pg,
                     "SELECT (e.code_sha256 = w.artifact_sha256)::text FROM executions e"
                     " JOIN workflows w ON w.project_id = e.project_id"
                     " AND w.kebab_name = e.workflow WHERE e.id = $1::uuid",
                     id);
    CHECK_STR(v, "true");
    free(v);
    v = th_sql_value(pg, "SELECT lease_owner IS NULL FROM executions WHERE id = $1::uuid", id);
    CHECK_STR(v, "t");
    free(v);

    /* Errors. */
    CHECK_EQ_INT(trigger("p1", "{", NULL), 400);
    CHECK_EQ_INT(trigger("p1", "{\"input\":1}", NULL), 400);
    CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"Bad Name\"}", NULL), 400);
    CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"hello-flow\",\"idempotencyKey\":5}", NULL), 400);
    CHECK_EQ_INT(trigger("bad.id", "{\"workflow\":\"hello-flow\"}", NULL), 400);
    CHECK_EQ_INT(trigger("nope", "{\"workflow\":\"hello-flow\"}", NULL), 404);
    CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"no-such-flow\"}", NULL), 404);

    /* Idempotency: the same key, the same run. */
    CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"hello-flow\",\"idempotencyKey\":\"k1\"}", id), 202);
    CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"hello-flow\",\"idempotencyKey\":\"k1\"}", id2),
                 200);
    CHECK_STR(id2, id);
    v = wait_run(id);
    CHECK_STR(v, "completed");
    free(v);

    /* 200 at once. */
    {
        const char *paths[200];
        const char *bodies[200];
        long status[200];
        cJSON *json[200];
        int ok = 0;

        for (int i = 0; i < 200; i++) {
            paths[i] = "/projects/p1/executions";
            bodies[i] = "{\"workflow\":\"hello-flow\",\"input\":[1,2,3]}";
        }
        CHECK(th_http_parallel(&srv, "POST", paths, bodies, 200, status, json) == 0);
        for (int i = 0; i < 200; i++) {
            ok += status[i] == 202;
            cJSON_Delete(json[i]);
        }
        CHECK_EQ_INT(ok, 200);
        CHECK(th_wait_until(all_done, pg, 30000, 50) == 0);
    }

    /* A worker killed while it holds runs: they finish on its successor. */
    {
        long long pid = th_status_pid(&srv, "p1", NULL);
        CHECK_EQ_INT(trigger("p1", "{\"workflow\":\"hello-flow\",\"input\":\"k9\"}", id), 202);
        CHECK(pid > 0 && kill((pid_t)pid, SIGKILL) == 0);
        v = wait_run(id);
        CHECK_STR(v, "completed");
        free(v);
        CHECK(th_wait_until(all_done, pg, 30000, 50) == 0);
    }

    /* /metrics counts them (published every 100 ms). */
    usleep(300 * 1000);
    CHECK(th_metric(&srv, "wf_steps_total") >= 200);
    CHECK(th_metric(&srv, "wf_runs_triggered_total") >= 200);
    CHECK(th_metric(&srv, "wf_run_duration_seconds_count") >= 200);
    CHECK(th_metric(&srv, "wf_trigger_to_first_activity_seconds_count") > 0);
    CHECK(th_metric(&srv, "wf_step_duration_seconds_count") >= 200);
    CHECK(th_metric(&srv, "wf_runs_held") == 0);
    {
        struct th_reply r;
        CHECK_EQ_INT(th_http(&srv, "GET", "/metrics", NULL, 0, &r), 200);
        CHECK(r.body != NULL &&
              strstr(r.body, "wf_runs_ended_total{status=\"completed\"} ") != NULL);
        CHECK(r.body != NULL && strstr(r.body, "wf_runs{status=\"pending\"} ") != NULL);
        th_reply_free(&r);
    }

out:
    th_down(&db, &srv, pg);
    return th_finish();
}
