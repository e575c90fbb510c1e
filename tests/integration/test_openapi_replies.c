/*
 * test_openapi_replies.c: real replies of the server validated against
 * docs/openapi.yaml, against a fresh database and a sandboxed worker
 * running the engine's test plugin (tests/plugins/engine_recorder.h).
 *
 * A representative set of calls: health and the probes (live, ready),
 * metrics (its Content-Type), /openapi.yaml (its bytes are the file's;
 * HEAD too), the dashboard's files (/ui, /ui/{file}), projects
 * create/list/get, code put/list/delete with a real plugin, workers
 * start/status/list/restart/stop, executions trigger (new and by
 * idempotency key)/get/list (paged and filtered)/signal/cancel (at once and
 * by the holder)/retry with their successes and errors, schedules
 * create/list/get/pause/resume/delete and their refusals, and the
 * common 400/401/404/405/413 errors. The
 * server runs with WF_API_TOKEN set, so that 401s are real and the public
 * routes are shown to need no token.
 *
 * Each reply's status is checked here as it arrives; its body goes to a
 * file in a temporary directory and a line to a manifest (operationId or
 * '#/components/responses/<Name>', status, Content-Type, file). At the end
 * one run of tests/openapi/validate-reply.mjs checks them all (strict ajv
 * against the reply's schema, its media type declared), and every line it
 * reports as FAIL is a failed check, printed with the validator's message.
 *
 * Environment (set by ctest): WF_OPENAPI_SPEC (the spec), WF_OPENAPI_TOOLS
 * (tests/openapi), WF_OPENAPI_NODE_DIR (where ensure-node.sh installs the
 * pinned npm tools); without node, and no way to install it, the test is
 * skipped (77). The temporary directory is removed unless a check failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TOKEN "openapi-test-token"
#define BAD_AUTH "Authorization: Bearer not-the-token"

static struct th_server srv;
static char dir[128];       /* the replies and the manifest */
static FILE *manifest;      /* dir/manifest.tsv */
static int nrecorded;       /* lines written to the manifest */
static const char *spec;    /* WF_OPENAPI_SPEC */
static const char *tools;   /* WF_OPENAPI_TOOLS */
static const char *nodedir; /* WF_OPENAPI_NODE_DIR */

/* The value of the last Content-Type header in raw headers, into out ("-"
 * when there is none). */
static void content_type(const char *headers, char *out, size_t len)
{
    const char *p = headers, *found = NULL;

    snprintf(out, len, "-");
    while (p != NULL && *p != '\0') {
        if (strncasecmp(p, "Content-Type:", 13) == 0)
            found = p + 13;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    if (found != NULL) {
        size_t n;
        while (*found == ' ')
            found++;
        n = strcspn(found, "\r\n");
        snprintf(out, len, "%.*s", (int)n, found);
    }
}

/* Writes r's body to a file and its manifest line for target. */
static void record(const char *target, const struct th_reply *r)
{
    char file[256], type[128];
    FILE *f;

    snprintf(file, sizeof(file), "%s/reply-%03d.body", dir, nrecorded + 1);
    f = fopen(file, "wb");
    if (!CHECK(f != NULL))
        return;
    if (r->body_len > 0)
        CHECK(fwrite(r->body, 1, r->body_len, f) == r->body_len);
    CHECK(fclose(f) == 0);
    content_type(r->headers, type, sizeof(type));
    fprintf(manifest, "%s\t%ld\t%s\t%s\n", target, r->status, type, file);
    nrecorded++;
}

/*
 * Sends method path (body of len bytes, may be NULL; extra headers may be
 * NULL), checks the status is want, records the reply for target, and
 * returns its parsed body (caller frees; NULL if none). Prints the call
 * when the status is not the one wanted.
 */
static cJSON *call_ex(const char *target, const char *method, const char *path, const char *body,
                      size_t len, const char *const *headers, long want)
{
    struct th_reply r;
    cJSON *json;

    th_http_ex(&srv, method, path, body, len, headers, 60000, &r);
    if (!CHECK_EQ_INT(r.status, want))
        fprintf(stderr, "  in: %s %s -> %s\n", method, path, r.body != NULL ? r.body : "");
    record(target, &r);
    json = r.json;
    r.json = NULL;
    th_reply_free(&r);
    return json;
}

/* call_ex with a NUL-terminated body (or none) and no extra header. */
static cJSON *call(const char *target, const char *method, const char *path, const char *body,
                   long want)
{
    return call_ex(target, method, path, body, body != NULL ? strlen(body) : 0, NULL, want);
}

/* call, for a reply whose body is not needed. */
static void call0(const char *target, const char *method, const char *path, const char *body,
                  long want)
{
    cJSON_Delete(call(target, method, path, body, want));
}

/* PUTs test plugin name at path, as call_ex does. */
static void put_plugin(const char *target, const char *path, const char *name, long want)
{
    char file[512];
    size_t len = 0;
    char *bytes;

    snprintf(file, sizeof(file), "%s/%s.so", getenv("WF_TEST_PLUGIN_DIR"), name);
    bytes = th_read_file(file, &len);
    if (!CHECK(bytes != NULL))
        return;
    cJSON_Delete(call_ex(target, "PUT", path, bytes, len, NULL, want));
    free(bytes);
}

/* ---- waiting for a run ---- */

struct run_wait {
    const char *id;
    const char *status;
};

static int run_has_status(void *arg)
{
    const struct run_wait *w = arg;
    char path[128];
    cJSON *j = NULL;
    int ok;

    snprintf(path, sizeof(path), "/executions/%s", w->id);
    ok = th_http_json(&srv, "GET", path, NULL, &j) == 200 &&
         strcmp(th_json_str(cJSON_GetObjectItemCaseSensitive(j, "execution"), "status") != NULL
                    ? th_json_str(cJSON_GetObjectItemCaseSensitive(j, "execution"), "status")
                    : "",
                w->status) == 0;
    cJSON_Delete(j);
    return ok;
}

/* Waits up to 15 s for run id to reach status; returns 1 if it did. */
static int reaches(const char *id, const char *status)
{
    struct run_wait w = {id, status};

    if (th_wait_until(run_has_status, &w, 15000, 25) == 0)
        return 1;
    fprintf(stderr, "run %s did not reach %s\n", id, status);
    return 0;
}

/* Triggers workflow with input (JSON text) and optional key; checks the
 * status is want and copies the run's id into id (64 bytes). */
static void trigger(const char *workflow, const char *input, const char *key, long want, char *id)
{
    char body[512];
    cJSON *j;

    if (key != NULL)
        snprintf(body, sizeof(body), "{\"workflow\":\"%s\",\"input\":%s,\"idempotencyKey\":\"%s\"}",
                 workflow, input, key);
    else
        snprintf(body, sizeof(body), "{\"workflow\":\"%s\",\"input\":%s}", workflow, input);
    j = call("triggerExecution", "POST", "/projects/p/executions", body, want);
    snprintf(id, 64, "%s",
             th_json_str(j, "executionId") != NULL ? th_json_str(j, "executionId") : "");
    CHECK(id[0] != '\0');
    cJSON_Delete(j);
}

/* ---- the calls ---- */

static void test_public(void)
{
    static const char *const bad_auth[] = {BAD_AUTH, NULL};
    struct th_reply r;
    size_t len = 0;
    char *file = th_read_file(spec, &len);

    /* public: a wrong token changes nothing */
    cJSON_Delete(call_ex("getHealth", "GET", "/health", NULL, 0, bad_auth, 200));
    cJSON_Delete(call_ex("getLiveness", "GET", "/health/live", NULL, 0, bad_auth, 200));
    cJSON_Delete(call_ex("getReadiness", "GET", "/health/ready", NULL, 0, bad_auth, 200));
    cJSON_Delete(call_ex("getMetrics", "GET", "/metrics", NULL, 0, bad_auth, 200));
    th_http_ex(&srv, "GET", "/openapi.yaml", NULL, 0, bad_auth, 60000, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(file != NULL && r.body_len == len && memcmp(r.body, file, len) == 0);
    CHECK(strcasestr(r.headers, "\nContent-Type: application/yaml") != NULL);
    record("getOpenApi", &r);
    th_reply_free(&r);
    free(file);
    /* every GET route answers HEAD: the same status and headers, no body */
    th_http_ex(&srv, "HEAD", "/openapi.yaml", NULL, 0, bad_auth, 60000, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.body_len, 0);
    CHECK(strcasestr(r.headers, "\nContent-Type: application/yaml") != NULL);
    th_reply_free(&r);
    /* the dashboard's files: public, typed by extension, under a strict CSP */
    th_http_ex(&srv, "GET", "/ui", NULL, 0, bad_auth, 60000, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcasestr(r.headers, "\nContent-Type: text/html") != NULL);
    CHECK(strcasestr(r.headers, "\nContent-Security-Policy: default-src 'self'") != NULL);
    record("getDashboard", &r);
    th_reply_free(&r);
    th_http_ex(&srv, "GET", "/ui/app.js", NULL, 0, bad_auth, 60000, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcasestr(r.headers, "\nContent-Type: text/javascript") != NULL);
    record("getDashboardFile", &r);
    th_reply_free(&r);
    call0("getDashboardFile", "GET", "/ui/no-such-file.js", NULL, 404);
}

static void test_common_errors(void)
{
    static const char *const bad_auth[] = {BAD_AUTH, NULL};
    size_t big = 1100000;
    struct th_reply r;
    char *body;

    call0("#/components/responses/NotFound", "GET", "/nope", NULL, 404);
    call0("#/components/responses/NotFound", "POST", "/projects/p/nope", "{}", 404);
    th_http(&srv, "DELETE", "/workers", NULL, 0, &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK(strcasestr(r.headers, "\nAllow: GET") != NULL);
    record("#/components/responses/MethodNotAllowed", &r);
    th_reply_free(&r);
    cJSON_Delete(call_ex("listWorkers", "GET", "/workers", NULL, 0, bad_auth, 401));
    cJSON_Delete(call_ex("createProject", "POST", "/projects", "{}", 2, bad_auth, 401));
    cJSON_Delete(call_ex("getExecution", "GET", "/executions/0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b",
                         NULL, 0, bad_auth, 401));
    /* over WF_MAX_BODY_BYTES (1 MiB): refused before the body is read */
    body = malloc(big);
    if (CHECK(body != NULL)) {
        memset(body, ' ', big);
        body[0] = '{';
        body[big - 1] = '}';
        cJSON_Delete(call_ex("createProject", "POST", "/projects", body, big, NULL, 413));
        free(body);
    }
}

static void test_projects(void)
{
    cJSON *j;

    call0("createProject", "POST", "/projects", "{\"id\":\"p\",\"name\":\"OpenAPI\"}", 201);
    call0("createProject", "POST", "/projects", "{\"id\":\"p\"}", 409);
    call0("createProject", "POST", "/projects", "{\"id\":\"a b\"}", 400);
    call0("createProject", "POST", "/projects", "{\"id\":\"q\",\"name\":5}", 400);
    call0("createProject", "POST", "/projects", "{\"id\":", 400);
    /* no body at all: a generated UUID, named after itself */
    j = call("createProject", "POST", "/projects", NULL, 201);
    CHECK(th_json_str(cJSON_GetObjectItemCaseSensitive(j, "project"), "id") != NULL);
    cJSON_Delete(j);
    call0("createProject", "POST", "/projects", "{\"id\":null,\"name\":null}", 201);
    call0("listProjects", "GET", "/projects", NULL, 200);
    call0("getProject", "GET", "/projects/p", NULL, 200);
    call0("getProject", "GET", "/projects/nope", NULL, 404);
    call0("getProject", "GET", "/projects/bad.id", NULL, 400);
}

static void test_code(void)
{
    static const char *const workflows[] = {"waiter", "failing", "one-activity", "fan", "steps"};
    static const char *const activities[] = {"fail_always", "slow"};
    char path[160];

    for (size_t i = 0; i < sizeof(workflows) / sizeof(workflows[0]); i++) {
        snprintf(path, sizeof(path), "/projects/p/workflows/%s", workflows[i]);
        put_plugin("putWorkflow", path, "engine_recorder", 201);
    }
    for (size_t i = 0; i < sizeof(activities) / sizeof(activities[0]); i++) {
        snprintf(path, sizeof(path), "/projects/p/activities/%s", activities[i]);
        put_plugin("putActivity", path, "engine_recorder", 201);
    }
    /* the same bytes again: 200, same version */
    put_plugin("putWorkflow", "/projects/p/workflows/waiter", "engine_recorder", 200);
    /* refusals */
    put_plugin("putWorkflow", "/projects/p/workflows/not-declared", "engine_recorder", 422);
    put_plugin("putActivity", "/projects/p/activities/notDeclared", "engine_recorder", 422);
    put_plugin("putWorkflow", "/projects/nope/workflows/waiter", "engine_recorder", 404);
    call0("putWorkflow", "PUT", "/projects/p/workflows/Bad_Name", "x", 400);
    call0("putActivity", "PUT", "/projects/p/activities/-bad", "x", 400);
    cJSON_Delete(call_ex("putWorkflow", "PUT", "/projects/p/workflows/waiter", "", 0, NULL, 400));
    call0("putWorkflow", "PUT", "/projects/p/workflows/waiter", "not an ELF file", 422);
    /* one more to delete */
    put_plugin("putWorkflow", "/projects/p/workflows/clock", "engine_recorder", 201);
    call0("deleteWorkflow", "DELETE", "/projects/p/workflows/clock", NULL, 200);
    call0("deleteWorkflow", "DELETE", "/projects/p/workflows/never-deployed", NULL, 404);
    call0("deleteActivity", "DELETE", "/projects/p/activities/neverDeployed", NULL, 404);
    call0("deleteActivity", "DELETE", "/projects/p/activities/bad%20name", NULL, 400);
    call0("listWorkflows", "GET", "/projects/p/workflows", NULL, 200);
    call0("listActivities", "GET", "/projects/p/activities", NULL, 200);
    call0("listWorkflows", "GET", "/projects/nope/workflows", NULL, 404);
    call0("listActivities", "GET", "/projects/bad.id/activities", NULL, 400);
}

static void test_workers_before(void)
{
    call0("getWorkerStatus", "GET", "/workers/status/p", NULL, 200); /* stopped: no worker */
    call0("getWorkerStatus", "GET", "/workers/status/nope", NULL, 404);
    call0("getWorkerStatus", "GET", "/workers/status/bad.id", NULL, 400);
    call0("startWorker", "POST", "/workers/start", "{}", 400);
    call0("startWorker", "POST", "/workers/start", "{\"projectId\":\"nope\"}", 404);
    call0("stopWorker", "POST", "/workers/stop", "{\"projectId\":\"p\"}", 200); /* not running */
    call0("startWorker", "POST", "/workers/start", "{\"projectId\":\"p\"}", 200);
    call0("startWorker", "POST", "/workers/start", "{\"projectId\":\"p\"}", 200); /* already */
    call0("getWorkerStatus", "GET", "/workers/status/p", NULL, 200);
    call0("listWorkers", "GET", "/workers", NULL, 200);
}

static void test_executions(void)
{
    char waiting[64], failed[64], slow[64], keyed[64], again[64], cancel_me[64];
    char path[256];
    cJSON *j;

    /* a run that waits for its signal (no timeout: due at no time) */
    trigger("waiter", "{\"dir\":\"/nonexistent\",\"n\":0,\"signal\":\"go\"}", NULL, 202, waiting);
    CHECK(reaches(waiting, "waiting"));
    snprintf(path, sizeof(path), "/executions/%s", waiting);
    j = call("getExecution", "GET", path, NULL, 200);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "execution"), "runAt")));
    cJSON_Delete(j);
    snprintf(path, sizeof(path), "/executions/%s/signals/go", waiting);
    call0("signalExecution", "POST", path, "{\"approved\":true}", 202);
    CHECK(reaches(waiting, "completed"));
    snprintf(path, sizeof(path), "/executions/%s", waiting);
    call0("getExecution", "GET", path, NULL, 200);
    /* the ended run refuses signal, cancel and retry */
    snprintf(path, sizeof(path), "/executions/%s/signals/go", waiting);
    call0("signalExecution", "POST", path, NULL, 409);
    snprintf(path, sizeof(path), "/executions/%s/cancel", waiting);
    call0("cancelExecution", "POST", path, NULL, 409);
    snprintf(path, sizeof(path), "/executions/%s/retry", waiting);
    call0("retryExecution", "POST", path, NULL, 409);

    /* a failed run (the dead-letter list), retried */
    trigger("failing", "{\"reason\":\"openapi\"}", NULL, 202, failed);
    CHECK(reaches(failed, "failed"));
    snprintf(path, sizeof(path), "/executions/%s", failed);
    call0("getExecution", "GET", path, NULL, 200);
    snprintf(path, sizeof(path), "/executions/%s/retry", failed);
    call0("retryExecution", "POST", path, NULL, 202);
    CHECK(reaches(failed, "failed"));

    /* cancelled at once (waiting: no holder), and by its holder (running) */
    trigger("waiter", "{\"dir\":\"/nonexistent\",\"n\":0}", NULL, 202, cancel_me);
    CHECK(reaches(cancel_me, "waiting"));
    snprintf(path, sizeof(path), "/executions/%s/cancel", cancel_me);
    call0("cancelExecution", "POST", path, NULL, 200);
    trigger("one-activity", "{\"activity\":\"slow\",\"input\":{\"ms\":10000}}", NULL, 202, slow);
    snprintf(path, sizeof(path), "/executions/%s/cancel", slow);
    call0("cancelExecution", "POST", path, NULL, 202);
    CHECK(reaches(slow, "cancelled"));
    snprintf(path, sizeof(path), "/executions/%s", slow);
    call0("getExecution", "GET", path, NULL, 200);

    /* child runs: a join step (kind children) and the list of a run's
     * children */
    {
        char fan[64];
        trigger("fan", "{\"dir\":\"/nonexistent\",\"k\":2,\"n\":0}", NULL, 202, fan);
        CHECK(reaches(fan, "completed"));
        snprintf(path, sizeof(path), "/executions/%s", fan);
        call0("getExecution", "GET", path, NULL, 200);
        snprintf(path, sizeof(path), "/projects/p/executions?parent=%s", fan);
        j = call("listExecutions", "GET", path, NULL, 200);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "executions")), 2);
        cJSON_Delete(j);
        call0("listExecutions", "GET", "/projects/p/executions?parent=nope", NULL, 400);
        call0("listExecutions", "GET", "/projects/p/executions?parent=none", NULL, 200);
    }

    /* an idempotency key names the first run */
    trigger("waiter", "{\"dir\":\"/nonexistent\",\"n\":0}", "openapi-key", 202, keyed);
    trigger("waiter", "{\"dir\":\"/nonexistent\",\"n\":0}", "openapi-key", 200, again);
    CHECK_STR(again, keyed);
    call0("triggerExecution", "POST", "/projects/p/executions",
          "{\"workflow\":\"waiter\",\"input\":null,\"timeoutMs\":60000}", 202);

    /* lists: paged, filtered */
    j = call("listExecutions", "GET", "/projects/p/executions?limit=2", NULL, 200);
    if (CHECK(th_json_str(j, "nextCursor") != NULL)) {
        snprintf(path, sizeof(path), "/projects/p/executions?limit=2&cursor=%s",
                 th_json_str(j, "nextCursor"));
        call0("listExecutions", "GET", path, NULL, 200);
    }
    cJSON_Delete(j);
    call0("listExecutions", "GET", "/projects/p/executions?status=failed&workflow=failing", NULL,
          200);
    call0("listExecutions", "GET", "/projects/p/executions", NULL, 200);

    /* errors */
    call0("triggerExecution", "POST", "/projects/p/executions", "{}", 400);
    call0("triggerExecution", "POST", "/projects/p/executions", "{\"workflow\":\"Not_Kebab\"}",
          400);
    call0("triggerExecution", "POST", "/projects/p/executions", "{\"workflow\":\"nope\"}", 404);
    call0("triggerExecution", "POST", "/projects/nope/executions", "{\"workflow\":\"waiter\"}",
          404);
    call0("triggerExecution", "POST", "/projects/bad.id/executions", "{\"workflow\":\"waiter\"}",
          400);
    call0("getExecution", "GET", "/executions/not-a-uuid", NULL, 400);
    call0("getExecution", "GET", "/executions/0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b", NULL, 404);
    call0("cancelExecution", "POST", "/executions/0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b/cancel",
          NULL, 404);
    call0("retryExecution", "POST", "/executions/not-a-uuid/retry", NULL, 400);
    snprintf(path, sizeof(path), "/executions/%s/signals/bad!name", keyed);
    call0("signalExecution", "POST", path, NULL, 400);
    snprintf(path, sizeof(path), "/executions/%s/signals/go", keyed);
    call0("signalExecution", "POST", path, "{\"unterminated\":", 400);
    call0("listExecutions", "GET", "/projects/p/executions?status=sideways", NULL, 400);
    call0("listExecutions", "GET", "/projects/p/executions?limit=0", NULL, 400);
    call0("listExecutions", "GET", "/projects/p/executions?cursor=abc!", NULL, 400);
    call0("listExecutions", "GET", "/projects/p/executions?status=%00", NULL, 400);
    call0("listExecutions", "GET", "/projects/nope/executions", NULL, 404);
}

/* Schedules: create (a zone, paused), list, get, pause, resume, delete,
 * and their refusals. */
static void test_schedules(void)
{
    char id[64] = "", path[256];
    cJSON *j;

    j = call("createSchedule", "POST", "/projects/p/schedules",
             "{\"workflow\":\"waiter\",\"cron\":\"*/15 9-17 * * MON-FRI\","
             "\"timezone\":\"Europe/Berlin\",\"input\":{\"n\":1},\"missed\":\"skip\"}",
             201);
    snprintf(id, sizeof(id), "%s",
             th_json_str(cJSON_GetObjectItemCaseSensitive(j, "schedule"), "id") != NULL
                 ? th_json_str(cJSON_GetObjectItemCaseSensitive(j, "schedule"), "id")
                 : "00000000-0000-0000-0000-000000000000");
    cJSON_Delete(j);
    call0("createSchedule", "POST", "/projects/p/schedules",
          "{\"workflow\":\"waiter\",\"cron\":\"@daily\",\"paused\":true}", 201);
    call0("createSchedule", "POST", "/projects/p/schedules",
          "{\"workflow\":\"waiter\",\"cron\":\"0 25 * * *\"}", 400);
    call0("createSchedule", "POST", "/projects/p/schedules",
          "{\"workflow\":\"nope\",\"cron\":\"@hourly\"}", 404);
    call0("listSchedules", "GET", "/projects/p/schedules", NULL, 200);
    call0("listSchedules", "GET", "/projects/nope/schedules", NULL, 404);
    snprintf(path, sizeof(path), "/schedules/%s", id);
    call0("getSchedule", "GET", path, NULL, 200);
    call0("getSchedule", "GET", "/schedules/bad", NULL, 400);
    snprintf(path, sizeof(path), "/schedules/%s/pause", id);
    call0("pauseSchedule", "POST", path, NULL, 200);
    snprintf(path, sizeof(path), "/schedules/%s/resume", id);
    call0("resumeSchedule", "POST", path, NULL, 200);
    snprintf(path, sizeof(path), "/schedules/%s", id);
    call0("deleteSchedule", "DELETE", path, NULL, 200);
    call0("deleteSchedule", "DELETE", path, NULL, 404);
}

static void test_workers_after(void)
{
    call0("restartWorker", "POST", "/workers/restart", "{\"projectId\":\"p\"}", 200);
    call0("getWorkerStatus", "GET", "/workers/status/p", NULL, 200);
    call0("stopWorker", "POST", "/workers/stop", "{\"projectId\":\"p\"}", 200);
    call0("restartWorker", "POST", "/workers/restart", "{\"projectId\":\"p\"}", 200); /* fresh */
    call0("stopWorker", "POST", "/workers/stop", "{\"projectId\":\"p\"}", 200);
    call0("getWorkerStatus", "GET", "/workers/status/p", NULL, 200);
    call0("listWorkers", "GET", "/workers", NULL, 200);
}

/* Runs the validator over the manifest: each FAIL line is a failed check. */
static void validate_all(void)
{
    char cmd[2048], line[8192], mpath[160];
    int ok = 0, failed = 0, status;
    FILE *p;

    snprintf(mpath, sizeof(mpath), "%s/manifest.tsv", dir);
    snprintf(cmd, sizeof(cmd), "node '%s/validate-reply.mjs' --modules '%s' '%s' --batch '%s' 2>&1",
             tools, nodedir, spec, mpath);
    p = popen(cmd, "r");
    if (!CHECK(p != NULL))
        return;
    while (fgets(line, sizeof(line), p) != NULL) {
        if (strncmp(line, "ok ", 3) == 0) {
            ok++;
            continue;
        }
        fprintf(stderr, "openapi: %s", line);
        if (strncmp(line, "FAIL ", 5) == 0)
            failed++;
    }
    status = pclose(p);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(ok, nrecorded);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("openapi: %d replies validated against %s, %d failed\n", ok + failed, spec, failed);
}

int main(void)
{
    static const char *const overrides[] = {"WF_API_TOKEN=" TOKEN, NULL};
    struct th_db db;
    char cmd[1024];
    int rc;

    spec = getenv("WF_OPENAPI_SPEC");
    tools = getenv("WF_OPENAPI_TOOLS");
    nodedir = getenv("WF_OPENAPI_NODE_DIR");
    if (spec == NULL || tools == NULL || nodedir == NULL || getenv("WF_TEST_PLUGIN_DIR") == NULL) {
        fprintf(stderr, "test_openapi_replies: WF_OPENAPI_SPEC, WF_OPENAPI_TOOLS, "
                        "WF_OPENAPI_NODE_DIR and WF_TEST_PLUGIN_DIR must be set (ctest does)\n");
        return 1;
    }
    /* The validator first: without node there is nothing to check with. */
    snprintf(cmd, sizeof(cmd), "'%s/ensure-node.sh' '%s' >/dev/null", tools, nodedir);
    rc = system(cmd);
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == TH_SKIP) {
        fprintf(stderr, "test_openapi_replies: no node to validate with: skipped\n");
        return TH_SKIP;
    }
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        fprintf(stderr, "test_openapi_replies: %s failed\n", cmd);
        return 1;
    }

    rc = th_setup("test_openapi_replies", &db, &srv, overrides, NULL);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;
    snprintf(dir, sizeof(dir), "/tmp/wf-openapi-replies-XXXXXX");
    if (!CHECK(mkdtemp(dir) != NULL)) {
        dir[0] = '\0';
        goto out;
    }
    snprintf(cmd, sizeof(cmd), "%s/manifest.tsv", dir);
    manifest = fopen(cmd, "w");
    if (!CHECK(manifest != NULL))
        goto out;

    test_public();
    test_common_errors();
    test_projects();
    test_code();
    test_workers_before();
    test_executions();
    test_schedules();
    test_workers_after();
    CHECK(fclose(manifest) == 0);
    manifest = NULL;
    validate_all();
out:
    if (manifest != NULL)
        fclose(manifest);
    th_down(&db, &srv, NULL);
    if (dir[0] != '\0') {
        if (th_failures() > 0) {
            fprintf(stderr, "test_openapi_replies: replies kept in %s\n", dir);
        } else {
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
            if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return th_finish();
}
