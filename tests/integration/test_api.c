/*
 * test_api.c: every REST endpoint's success and error replies (docs/api.md)
 * against the real server and a fresh database.
 *
 * Covers /health, POST/GET /projects (generated UUID, duplicate, invalid
 * ids), the seed worker calls with their exact messages and idempotent
 * replies, 404/400/405/413 errors, the loaded code lists, both seed SQL
 * queries of DESIGN §1 run verbatim, and restart replacing the worker pid.
 * Each failed check prints file:line; the server log tail is printed at the
 * end when anything failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "harness.h"

static struct th_server srv;
static PGconn *conn;

/*
 * Sends method path body and checks the reply is an error with status want,
 * "success":false and, when want_error is not NULL, exactly that error text.
 */
static void expect_error(const char *method, const char *path, const char *body, long want,
                         const char *want_error)
{
    cJSON *j = NULL;
    long st = th_http_json(&srv, method, path, body, &j);
    int ok = 1;

    ok &= CHECK_EQ_INT(st, want);
    ok &= CHECK(j != NULL && th_json_bool(j, "success") == 0);
    if (want_error != NULL)
        ok &= CHECK_STR(th_json_str(j, "error"), want_error);
    else
        ok &= CHECK(th_json_str(j, "error") != NULL && th_json_str(j, "error")[0] != '\0');
    if (!ok)
        fprintf(stderr, "  in: %s %s body=%.80s\n", method, path, body ? body : "(none)");
    cJSON_Delete(j);
}

/* checks a worker-call reply: 200, success, message and projectId */
static void expect_ok(const char *path, const char *project, const char *message, cJSON **out)
{
    cJSON *j = NULL;
    long st = th_post_project(&srv, path, project, &j);
    int ok = 1;

    ok &= CHECK_EQ_INT(st, 200);
    ok &= CHECK(th_json_bool(j, "success") == 1);
    ok &= CHECK_STR(th_json_str(j, "message"), message);
    ok &= CHECK_STR(th_json_str(j, "projectId"), project);
    if (!ok)
        fprintf(stderr, "  in: POST %s %s\n", path, project);
    if (out != NULL)
        *out = j;
    else
        cJSON_Delete(j);
}

static int is_uuid(const char *s)
{
    static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    size_t i;

    if (s == NULL || strlen(s) != sizeof(pattern) - 1)
        return 0;
    for (i = 0; i < sizeof(pattern) - 1; i++) {
        if (pattern[i] == '-') {
            if (s[i] != '-')
                return 0;
        } else if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0') {
            return 0;
        }
    }
    return 1;
}

/* 1 when the JSON array arr holds exactly the strings of want (in order) */
static int str_array_is(const cJSON *arr, const char *const *want, int n)
{
    int i;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n)
        return 0;
    for (i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(arr, i);

        if (!cJSON_IsString(it) || strcmp(it->valuestring, want[i]) != 0)
            return 0;
    }
    return 1;
}

static char *row_value(const char *column, const char *worker_id)
{
    char sql[200];

    snprintf(sql, sizeof(sql), "SELECT %s::text FROM workflow_workers WHERE worker_id = $1",
             column);
    return th_sql_value(conn, sql, worker_id);
}

static void test_health(void)
{
    struct th_reply r;
    long st = th_http(&srv, "GET", "/health", NULL, 0, &r);

    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(r.json, "status"), "ok");
    CHECK_STR(th_json_str(r.json, "service"), "wf-server");
    CHECK(th_json_str(r.json, "version") != NULL);
    CHECK_STR(th_json_str(r.json, "database"), "ok");
    CHECK(r.headers != NULL && strcasestr(r.headers, "application/json") != NULL);
    th_reply_free(&r);
}

static void test_projects(void)
{
    cJSON *j = NULL;
    const cJSON *p;
    const cJSON *arr;
    char id64[65];
    char id65[66];
    char body[200];
    long st;

    st = th_http_json(&srv, "POST", "/projects", "{\"id\":\"p1\",\"name\":\"Project one\"}", &j);
    CHECK_EQ_INT(st, 201);
    CHECK(th_json_bool(j, "success") == 1);
    p = cJSON_GetObjectItemCaseSensitive(j, "project");
    CHECK_STR(th_json_str(p, "id"), "p1");
    CHECK_STR(th_json_str(p, "name"), "Project one");
    CHECK_STR(th_json_str(p, "desiredState"), "stopped");
    CHECK(th_json_str(p, "createdAt") != NULL);
    cJSON_Delete(j);

    expect_error("POST", "/projects", "{\"id\":\"p1\"}", 409, "project \"p1\" already exists");

    /* without id: a generated UUID, and the name defaults to the id */
    st = th_http_json(&srv, "POST", "/projects", "{}", &j);
    CHECK_EQ_INT(st, 201);
    p = cJSON_GetObjectItemCaseSensitive(j, "project");
    CHECK(is_uuid(th_json_str(p, "id")));
    CHECK_STR(th_json_str(p, "name"), th_json_str(p, "id"));
    cJSON_Delete(j);

    /* 64 characters is the longest valid id, 65 is one too many */
    memset(id64, 'a', 64);
    id64[64] = '\0';
    memset(id65, 'b', 65);
    id65[65] = '\0';
    snprintf(body, sizeof(body), "{\"id\":\"%s\"}", id64);
    st = th_http_json(&srv, "POST", "/projects", body, &j);
    CHECK_EQ_INT(st, 201);
    cJSON_Delete(j);
    snprintf(body, sizeof(body), "{\"id\":\"%s\"}", id65);
    expect_error("POST", "/projects", body, 400, NULL);
    expect_error("POST", "/projects", "{\"id\":\"a b\"}", 400, NULL);
    expect_error("POST", "/projects", "{\"id\":\"../x\"}", 400, NULL);
    expect_error("POST", "/projects", "{\"id\":\"\"}", 400, NULL);
    expect_error("POST", "/projects", "{\"id\":\"p2\",\"name\":5}", 400, NULL);
    expect_error("POST", "/projects", "{\"id\":", 400, "malformed JSON body");
    expect_error("POST", "/projects", "[1,2]", 400, "request body must be a JSON object");

    /* p1, the uuid and the 64-char id, ordered by id */
    st = th_http_json(&srv, "GET", "/projects", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 3);
    arr = cJSON_GetObjectItemCaseSensitive(j, "projects");
    CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 3);
    if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 3) {
        const char *a = th_json_str(cJSON_GetArrayItem(arr, 0), "id");
        const char *b = th_json_str(cJSON_GetArrayItem(arr, 1), "id");
        const char *c = th_json_str(cJSON_GetArrayItem(arr, 2), "id");

        CHECK(a && b && c && strcmp(a, b) < 0 && strcmp(b, c) < 0);
    }
    cJSON_Delete(j);

    st = th_http_json(&srv, "GET", "/projects/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK(th_json_bool(j, "success") == 1);
    CHECK_STR(th_json_str(cJSON_GetObjectItemCaseSensitive(j, "project"), "id"), "p1");
    cJSON_Delete(j);
    expect_error("GET", "/projects/nope", NULL, 404, NULL);

    /* code of p1: one active and one inactive of each kind */
    CHECK(th_sql_exec(conn, "INSERT INTO workflows (project_id, kebab_name, is_active) VALUES "
                            "('p1','order-flow',true), ('p1','old-flow',false)") == 0);
    CHECK(th_sql_exec(conn, "INSERT INTO components (project_id, name, kind, is_active) VALUES "
                            "('p1','sendEmail','activity',true), "
                            "('p1','oldActivity','activity',false)") == 0);
}

/* the two queries of DESIGN §1, verbatim (the first is th_seed_query_1) */
static const char seed_query_2[] =
    "SELECT id, kebab_name FROM workflows WHERE project_id = 'p1' AND is_active = true;";

static void test_seed_queries(void)
{
    PGresult *res;

    res = th_sql(conn, th_seed_query_1, 0, NULL);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_EQ_INT(PQntuples(res), 1);
        CHECK_EQ_INT(PQnfields(res), 6);
        if (PQntuples(res) == 1) {
            CHECK_STR(PQgetvalue(res, 0, 0), "testhost:p1");
            CHECK_STR(PQgetvalue(res, 0, 1), "p1");
            CHECK_STR(PQgetvalue(res, 0, 2), "running");
            CHECK(!PQgetisnull(res, 0, 3));
        }
        PQclear(res);
    }
    res = th_sql(conn, seed_query_2, 0, NULL);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_EQ_INT(PQntuples(res), 1);
        if (PQntuples(res) == 1)
            CHECK_STR(PQgetvalue(res, 0, 1), "order-flow");
        PQclear(res);
    }
}

static void test_workers(void)
{
    static const char *const wf_want[] = {"order-flow"};
    static const char *const act_want[] = {"sendEmail"};
    static const char *const list_p1[] = {"p1"};
    cJSON *j = NULL;
    const cJSON *loaded;
    pid_t kids[8];
    pid_t pid;
    pid_t pid2;
    char *v;
    long st;
    int n;
    int i;

    /* a project with no worker */
    st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "projectId"), "p1");
    CHECK_STR(th_json_str(j, "status"), "stopped");
    CHECK(th_json_bool(j, "isRunning") == 0);
    cJSON_Delete(j);

    expect_ok("/workers/start", "p1", "Worker started for project p1", &j);
    CHECK_STR(th_json_str(j, "workerId"), "testhost:p1");
    pid = (pid_t)th_json_num(j, "pid");
    CHECK(pid > 0);
    cJSON_Delete(j);

    /* the pid is a wf-worker child of the manager, next to one wf-core */
    n = th_proc_children(srv.pid, "wf-worker", kids, 8);
    CHECK_EQ_INT(n, 1);
    CHECK(n >= 1 && kids[0] == pid);
    CHECK(th_proc_child(srv.pid, "wf-core") > 0);

    /* a 200 means the row already says running */
    v = row_value("status", "testhost:p1");
    CHECK_STR(v, "running");
    free(v);
    v = row_value("pid", "testhost:p1");
    CHECK(v != NULL && strtol(v, NULL, 10) == (long)pid);
    free(v);
    v = row_value("host", "testhost:p1");
    CHECK_STR(v, "testhost");
    free(v);
    v = row_value("project_id", "testhost:p1");
    CHECK_STR(v, "p1");
    free(v);

    expect_ok("/workers/start", "p1", "Worker already running for project p1", &j);
    CHECK_EQ_INT(th_json_num(j, "pid"), pid);
    cJSON_Delete(j);

    st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "projectId"), "p1");
    CHECK_STR(th_json_str(j, "status"), "running");
    CHECK(th_json_bool(j, "isRunning") == 1);
    CHECK_STR(th_json_str(j, "workerId"), "testhost:p1");
    CHECK_EQ_INT(th_json_num(j, "pid"), pid);
    CHECK_STR(th_json_str(j, "host"), "testhost");
    CHECK(th_json_str(j, "startedAt") != NULL);
    CHECK_EQ_INT(th_json_num(j, "restarts"), 0);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "error")));
    loaded = cJSON_GetObjectItemCaseSensitive(j, "loaded");
    CHECK(str_array_is(cJSON_GetObjectItemCaseSensitive(loaded, "workflows"), wf_want, 1));
    CHECK(str_array_is(cJSON_GetObjectItemCaseSensitive(loaded, "activities"), act_want, 1));
    cJSON_Delete(j);

    v = row_value("loaded", "testhost:p1");
    CHECK(v != NULL && strstr(v, "order-flow") != NULL && strstr(v, "sendEmail") != NULL &&
          strstr(v, "old-flow") == NULL && strstr(v, "oldActivity") == NULL);
    free(v);

    st = th_http_json(&srv, "GET", "/workers", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK(str_array_is(cJSON_GetObjectItemCaseSensitive(j, "workers"), list_p1, 1));
    CHECK_EQ_INT(th_json_num(j, "count"), 1);
    cJSON_Delete(j);

    test_seed_queries();

    /* restart: a new process, the old one drained away, still running */
    expect_ok("/workers/restart", "p1", "Worker restarted for project p1", &j);
    pid2 = (pid_t)th_json_num(j, "pid");
    cJSON_Delete(j);
    CHECK(pid2 > 0 && pid2 != pid);
    CHECK(th_wait_pid_gone(pid, 10000, 20) == 0);
    CHECK(th_pid_alive(pid2));
    st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "status"), "running");
    CHECK(th_json_bool(j, "isRunning") == 1);
    CHECK_EQ_INT(th_json_num(j, "pid"), pid2);
    cJSON_Delete(j);
    v = row_value("status", "testhost:p1");
    CHECK_STR(v, "running");
    free(v);
    v = row_value("pid", "testhost:p1");
    CHECK(v != NULL && strtol(v, NULL, 10) == (long)pid2);
    free(v);

    /* stop answers once the process is gone and the row says stopped */
    expect_ok("/workers/stop", "p1", "Worker stopped for project p1", NULL);
    CHECK(!th_pid_alive(pid2));
    v = row_value("status", "testhost:p1");
    CHECK_STR(v, "stopped");
    free(v);
    v = row_value("stopped_at", "testhost:p1");
    CHECK(v != NULL);
    free(v);
    expect_ok("/workers/stop", "p1", "Worker not running for project p1", NULL);

    st = th_http_json(&srv, "GET", "/workers/status/p1", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(j, "status"), "stopped");
    CHECK(th_json_bool(j, "isRunning") == 0);
    cJSON_Delete(j);
    st = th_http_json(&srv, "GET", "/workers", NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK(str_array_is(cJSON_GetObjectItemCaseSensitive(j, "workers"), NULL, 0));
    CHECK_EQ_INT(th_json_num(j, "count"), 0);
    cJSON_Delete(j);
    CHECK_EQ_INT(th_proc_children(srv.pid, "wf-worker", kids, 8), 0);

    /* restart of a stopped project starts it */
    expect_ok("/workers/restart", "p1", "Worker started for project p1 (was not running)", &j);
    pid = (pid_t)th_json_num(j, "pid");
    cJSON_Delete(j);
    CHECK(th_pid_alive(pid));
    expect_ok("/workers/stop", "p1", "Worker stopped for project p1", NULL);
    CHECK(!th_pid_alive(pid));

    /* unknown project */
    expect_error("POST", "/workers/start", "{\"projectId\":\"nope\"}", 404,
                 "project \"nope\" not found");
    expect_error("POST", "/workers/stop", "{\"projectId\":\"nope\"}", 404,
                 "project \"nope\" not found");
    expect_error("POST", "/workers/restart", "{\"projectId\":\"nope\"}", 404,
                 "project \"nope\" not found");
    expect_error("GET", "/workers/status/nope", NULL, 404, "project \"nope\" not found");

    /* bad bodies and ids, on each of the three POST routes */
    for (i = 0; i < 3; i++) {
        static const char *const routes[] = {"/workers/start", "/workers/stop", "/workers/restart"};
        static const char invalid[] = "invalid projectId: must match ^[A-Za-z0-9_-]{1,64}$";
        char body[200];
        char id65[66];

        memset(id65, 'c', 65);
        id65[65] = '\0';
        expect_error("POST", routes[i], "{\"projectId\":", 400, "malformed JSON body");
        expect_error("POST", routes[i], "not json", 400, "malformed JSON body");
        expect_error("POST", routes[i], NULL, 400, NULL);
        expect_error("POST", routes[i], "[\"p1\"]", 400, "request body must be a JSON object");
        expect_error("POST", routes[i], "\"p1\"", 400, "request body must be a JSON object");
        expect_error("POST", routes[i], "{}", 400, "projectId is required");
        expect_error("POST", routes[i], "{\"project\":\"p1\"}", 400, "projectId is required");
        expect_error("POST", routes[i], "{\"projectId\":\"a b\"}", 400, invalid);
        expect_error("POST", routes[i], "{\"projectId\":\"../x\"}", 400, invalid);
        expect_error("POST", routes[i], "{\"projectId\":\"\"}", 400, invalid);
        snprintf(body, sizeof(body), "{\"projectId\":\"%s\"}", id65);
        expect_error("POST", routes[i], body, 400, invalid);
        expect_error("POST", routes[i], "{\"projectId\":5}", 400, NULL);
    }
    {
        char path[120];
        char id65[66];

        memset(id65, 'd', 65);
        id65[65] = '\0';
        snprintf(path, sizeof(path), "/workers/status/%s", id65);
        expect_error("GET", path, NULL, 400, "invalid projectId: must match ^[A-Za-z0-9_-]{1,64}$");
        expect_error("GET", "/workers/status/bad.id", NULL, 400,
                     "invalid projectId: must match ^[A-Za-z0-9_-]{1,64}$");
    }
}

/* 405 with an Allow header naming allowed */
static void expect_405(const char *method, const char *path, const char *allowed)
{
    struct th_reply r;
    long st = th_http(&srv, method, path, NULL, 0, &r);
    int ok = 1;

    ok &= CHECK_EQ_INT(st, 405);
    ok &= CHECK(th_json_bool(r.json, "success") == 0);
    ok &= CHECK_STR(th_json_str(r.json, "error"), "method not allowed");
    ok &= CHECK(r.headers != NULL && strcasestr(r.headers, "\nAllow:") != NULL);
    ok &= CHECK(r.headers != NULL && strstr(r.headers, allowed) != NULL);
    if (!ok)
        fprintf(stderr, "  in: %s %s\n", method, path);
    th_reply_free(&r);
}

static void test_protocol_errors(void)
{
    static const char too_large[] = "request body too large (limit 1048576 bytes)";
    static const char *const no_expect[] = {"Expect:", NULL};
    size_t big = 2u * 1024u * 1024u;
    struct th_reply r;
    char *body;
    long st;

    expect_405("GET", "/workers/start", "POST");
    expect_405("GET", "/workers/stop", "POST");
    expect_405("PUT", "/workers/restart", "POST");
    expect_405("DELETE", "/health", "GET");
    expect_405("POST", "/workers", "GET");
    expect_405("POST", "/workers/status/p1", "GET");
    expect_405("DELETE", "/projects", "GET");

    expect_error("GET", "/nope", NULL, 404, "not found");
    expect_error("POST", "/nope", "{}", 404, "not found");
    expect_error("GET", "/workers/nope/x", NULL, 404, "not found");
    expect_error("GET", "/healthz", NULL, 404, "not found");

    /* 2 MiB of valid JSON: over the 1 MiB cap */
    body = malloc(big + 1);
    CHECK(body != NULL);
    if (body == NULL)
        return;
    memset(body, ' ', big);
    memcpy(body, "{\"projectId\":\"p1\",\"pad\":\"", 26);
    memset(body + 26, 'x', big - 30);
    memcpy(body + big - 4, "\"}  ", 4);
    body[big] = '\0';

    st = th_http(&srv, "POST", "/workers/start", body, big, &r);
    CHECK_EQ_INT(st, 413);
    CHECK(th_json_bool(r.json, "success") == 0);
    CHECK_STR(th_json_str(r.json, "error"), too_large);
    th_reply_free(&r);
    st = th_http(&srv, "POST", "/projects", body, big, &r);
    CHECK_EQ_INT(st, 413);
    CHECK_STR(th_json_str(r.json, "error"), too_large);
    th_reply_free(&r);

    /*
     * Without "Expect: 100-continue" the client sends the whole body before
     * reading; the reply must still be 413 and the server must not hang.
     */
    st = th_http_ex(&srv, "POST", "/workers/start", body, big, no_expect, 20000, &r);
    if (st != 413)
        fprintf(stderr, "note: 2 MiB body without Expect got %ld\n", st);
    CHECK_EQ_INT(st, 413);
    th_reply_free(&r);
    free(body);

    /* the server still answers after all that */
    st = th_http_json(&srv, "GET", "/health", NULL, NULL);
    CHECK_EQ_INT(st, 200);
    st = th_http_json(&srv, "GET", "/workers", NULL, NULL);
    CHECK_EQ_INT(st, 200);
}

/* with WF_API_TOKEN set, every call but /health and /metrics needs the
 * bearer token */
static void test_token(const struct th_db *db)
{
    static const char *const env[] = {"WF_API_TOKEN=s3cret-token", NULL};
    static const char *const good[] = {"Authorization: Bearer s3cret-token", NULL};
    static const char *const bad[] = {"Authorization: Bearer wrong", NULL};
    static const char body[] = "{\"projectId\":\"p1\"}";
    struct th_server s2;
    struct th_reply r;
    long st;

    if (!CHECK(th_server_start(&s2, db, env) == 0)) {
        th_server_cleanup(&s2);
        return;
    }
    s2.token[0] = '\0'; /* this test chooses the header of each call */
    st = th_http_ex(&s2, "GET", "/health", NULL, 0, NULL, 10000, &r);
    CHECK_EQ_INT(st, 200);
    th_reply_free(&r);
    st = th_http_ex(&s2, "GET", "/metrics", NULL, 0, NULL, 10000, &r);
    CHECK_EQ_INT(st, 200);
    th_reply_free(&r);
    st = th_http_ex(&s2, "GET", "/workers", NULL, 0, NULL, 10000, &r);
    CHECK_EQ_INT(st, 401);
    CHECK(th_json_bool(r.json, "success") == 0);
    CHECK(th_json_str(r.json, "error") != NULL);
    th_reply_free(&r);
    st = th_http_ex(&s2, "GET", "/workers", NULL, 0, bad, 10000, &r);
    CHECK_EQ_INT(st, 401);
    th_reply_free(&r);
    st = th_http_ex(&s2, "POST", "/workers/start", body, sizeof(body) - 1, NULL, 10000, &r);
    CHECK_EQ_INT(st, 401);
    th_reply_free(&r);
    st = th_http_ex(&s2, "GET", "/projects", NULL, 0, bad, 10000, &r);
    CHECK_EQ_INT(st, 401);
    th_reply_free(&r);
    st = th_http_ex(&s2, "GET", "/workers", NULL, 0, good, 10000, &r);
    CHECK_EQ_INT(st, 200);
    th_reply_free(&r);
    st = th_http_ex(&s2, "POST", "/workers/start", body, sizeof(body) - 1, good, 30000, &r);
    CHECK_EQ_INT(st, 200);
    CHECK_STR(th_json_str(r.json, "message"), "Worker started for project p1");
    th_reply_free(&r);
    CHECK_EQ_INT(th_server_stop(&s2, 15000), 0);
    th_server_cleanup(&s2);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* Keep-alive: several GETs on one connection are answered on it (a reply
 * queued too early makes libmicrohttpd close the connection after it). */
static void test_keepalive(void)
{
    static const char *const paths[] = {"/health", "/workers", "/workers/status/p1", "/health"};
    CURL *h = curl_easy_init();
    char url[128];
    long connects = -1, code = 0;

    if (!CHECK(h != NULL))
        return;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, paths[i]);
        curl_easy_setopt(h, CURLOPT_URL, url);
        CHECK(curl_easy_perform(h) == CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        CHECK(code == 200 || code == 404);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
        CHECK_EQ_INT(connects, i == 0 ? 1 : 0);
    }
    curl_easy_cleanup(h);
}

/* GET /metrics: Prometheus text, no token needed, the running workers. */
static void test_metrics(void)
{
    struct th_reply r;

    CHECK_EQ_INT(th_http(&srv, "GET", "/metrics", NULL, 0, &r), 200);
    CHECK(r.headers != NULL && strstr(r.headers, "text/plain; version=0.0.4") != NULL);
    CHECK(r.body != NULL && strstr(r.body, "\nwf_database_up 1\n") != NULL);
    CHECK(r.body != NULL && strstr(r.body, "# TYPE wf_workers gauge\n") != NULL);
    CHECK(r.body != NULL && strstr(r.body, "wf_workers{status=\"failed\"} 0\n") != NULL);
    CHECK(r.body != NULL && strstr(r.body, "wf_worker_starts_total ") != NULL);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_json(&srv, "POST", "/metrics", "{}", NULL), 405);
    CHECK_EQ_INT(th_http(&srv, "HEAD", "/health", NULL, 0, &r), 200);
    CHECK(r.body_len == 0);
    th_reply_free(&r);
}

int main(void)
{
    struct th_db db;
    int rc;

    rc = th_setup("test_api", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;
    test_keepalive();
    test_metrics();

    {
        char comm[32];

        CHECK(th_proc_comm(srv.pid, comm, sizeof(comm)) == 0);
        CHECK_STR(comm, "wf-server");
    }
    test_health();
    test_projects();
    test_workers();
    test_protocol_errors();

    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
    test_token(&db);
out:
    return th_teardown(&db, &srv, conn);
}
