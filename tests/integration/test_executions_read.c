/*
 * test_executions_read.c: the read side of the executions API (docs/api.md,
 * "Executions") against the real server and a fresh database, with the
 * rows written straight into the tables (the run engine is not needed).
 *
 * Covers GET /executions/:id field by field (key order, steps in seq
 * order, every nullable column as null), a 1 MB input and a 5 MB step
 * output coming back intact, 400/404/405; GET /projects/:id/executions:
 * the light list objects, filters by status and workflow, the default and
 * explicit limits, paging through 1,000 runs (groups sharing one
 * created_at to the microsecond, some before 1970) with no duplicate and no
 * gap, in exactly the order PostgreSQL gives, a run created while paging
 * not shifting the pages, every bad argument → 400, an unknown project →
 * 404; HEAD on both; and 401 without the token when WF_API_TOKEN is set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PAGED_RUNS 1000

static struct th_server srv;
static PGconn *conn;

static const char e1[] = "0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b"; /* full, three steps */
static const char e2[] = "1c8e5d7f-6a2b-4f3c-8d4e-9b8a7f6e5d4c"; /* every nullable NULL */
static const char e3[] = "2d9f6e8a-7b3c-4a4d-9e5f-0c9b8a7f6e5d"; /* failed, steps 4 and 7 */
static const char ebig[] = "3e0a7f9b-8c4d-4b5e-8f6a-1d0c9b8a7f6e";

/* Sends method path and checks the reply is an error with status want and
 * exactly the error text want_error (NULL: any non-empty text). */
static void expect_error(const char *method, const char *path, long want, const char *want_error)
{
    cJSON *j = NULL;
    long st = th_http_json(&srv, method, path, NULL, &j);
    int ok = 1;

    ok &= CHECK_EQ_INT(st, want);
    ok &= CHECK(j != NULL && th_json_bool(j, "success") == 0);
    if (want_error != NULL)
        ok &= CHECK_STR(th_json_str(j, "error"), want_error);
    else
        ok &= CHECK(th_json_str(j, "error") != NULL && th_json_str(j, "error")[0] != '\0');
    if (!ok)
        fprintf(stderr, "  in: %s %s\n", method, path);
    cJSON_Delete(j);
}

/* Runs a statement with text parameters; 0 or -1 (printed). */
static int sql(const char *text, int n, const char *const *params)
{
    PGresult *res = th_sql(conn, text, n, params);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* 1 when obj's keys are exactly keys[0..n-1], in that order. */
static int keys_are(const cJSON *obj, const char *const *keys, int n)
{
    const cJSON *it;
    int i = 0;

    cJSON_ArrayForEach(it, obj)
    {
        if (i >= n || it->string == NULL || strcmp(it->string, keys[i]) != 0) {
            fprintf(stderr, "  key %d is \"%s\", expected \"%s\"\n", i,
                    it->string ? it->string : "?", i < n ? keys[i] : "(none)");
            return 0;
        }
        i++;
    }
    if (i != n)
        fprintf(stderr, "  %d keys, expected %d\n", i, n);
    return i == n;
}

/* 1 when obj[key] is JSON null. */
static int is_null(const cJSON *obj, const char *key)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* 1 when obj[key] is structurally equal to the JSON text want. */
static int json_is(const cJSON *obj, const char *key, const char *want)
{
    cJSON *w = cJSON_Parse(want);
    int ok = w != NULL && cJSON_Compare(cJSON_GetObjectItemCaseSensitive(obj, key), w, 1);

    cJSON_Delete(w);
    return ok;
}

static const char *const exec_keys[] = {
    "executionId", "projectId", "workflow",  "parentId",    "codeSha256",     "status",
    "input",       "output",    "error",     "attempt",     "idempotencyKey", "cancelRequested",
    "runAt",       "createdAt", "startedAt", "completedAt", "updatedAt",      "steps"};
static const char *const list_keys[] = {
    "executionId", "projectId", "workflow",  "parentId",       "codeSha256",
    "status",      "error",     "attempt",   "idempotencyKey", "cancelRequested",
    "runAt",       "createdAt", "startedAt", "completedAt",    "updatedAt"};
static const char *const step_keys[] = {"seq",   "kind",     "name",      "status",     "output",
                                        "error", "attempts", "startedAt", "completedAt"};

#define NKEYS(a) ((int)(sizeof(a) / sizeof(a[0])))

/* The rows of the GET checks: three executions of project pr, steps of e1
 * inserted out of order. Returns 0 or -1. */
static int insert_fixtures(void)
{
    const char *p1[1] = {e1};

    if (sql("INSERT INTO projects (id, name) VALUES ('pr', 'Reads'), ('pl', 'Paging'),"
            " ('pe', 'Empty')",
            0, NULL) < 0)
        return -1;
    if (sql("INSERT INTO executions (id, project_id, workflow, code_sha256, input, status, output,"
            " error, run_at, attempt, idempotency_key, cancel_requested, created_at, updated_at,"
            " started_at, completed_at) VALUES ($1, 'pr', 'order-flow', repeat('ab', 32),"
            " '{\"a\": 1, \"list\": [1, 2.5, \"x\"], \"s\": \"caf\u00e9 \\\"q\\\" \\\\ \\n\"}',"
            " 'completed', '{\"ok\": true, \"n\": null}', NULL,"
            " '2026-01-02 03:04:05.678+00', 2, 'key-1', false,"
            " '2026-01-02 03:04:05.123456+00', '2026-01-02 03:04:09.999+00',"
            " '2026-01-02 03:04:06.5+00', '2026-01-02 03:04:09+00')",
            1, p1) < 0)
        return -1;
    if (sql("INSERT INTO steps (execution_id, seq, project_id, name, kind, status, output, error,"
            " attempts, started_at, completed_at) VALUES"
            " ($1, 2, 'pr', 'clock', 'now', 'completed', '1767323049000', NULL, 1,"
            "  '2026-01-02 03:04:08+00', '2026-01-02 03:04:08.001+00'),"
            " ($1, 0, 'pr', 'charge', 'activity', 'completed', '{\"x\": 1}', NULL, 3,"
            "  '2026-01-02 03:04:06.5+00', '2026-01-02 03:04:07.25+00'),"
            " ($1, 1, 'pr', 'nap', 'sleep', 'failed', NULL, 'boom: \"bad\" \\ line\nnext', 0,"
            "  NULL, NULL)",
            1, p1) < 0)
        return -1;
    p1[0] = e2;
    if (sql("INSERT INTO executions (id, project_id, workflow, created_at) VALUES"
            " ($1, 'pr', 'bare-flow', '2026-01-03 00:00:00+00')",
            1, p1) < 0)
        return -1;
    p1[0] = e3;
    if (sql("INSERT INTO executions (id, project_id, workflow, status, error, cancel_requested,"
            " created_at) VALUES ($1, 'pr', 'order-flow', 'failed',"
            " '{\"message\": \"card declined\", \"type\": \"ActivityError\", \"retryable\": "
            "false}',"
            " true, '2026-01-04 00:00:00+00')",
            1, p1) < 0)
        return -1;
    /* steps that do not start at 0: the error still comes with the first */
    if (sql("INSERT INTO steps (execution_id, seq, project_id, name, kind, status, error)"
            " VALUES ($1, 7, 'pr', 'later', 'activity', 'failed', 'card declined'),"
            " ($1, 4, 'pr', 'earlier', 'signal', 'completed', NULL)",
            1, p1) < 0)
        return -1;
    return 0;
}

/* GET /executions/:id, shape and values field by field. */
static void test_get_shape(void)
{
    char path[128];
    cJSON *j = NULL, *ex, *steps, *s;
    long st;

    snprintf(path, sizeof(path), "/executions/%s", e1);
    st = th_http_json(&srv, "GET", path, NULL, &j);
    CHECK_EQ_INT(st, 200);
    CHECK(th_json_bool(j, "success") == 1);
    ex = cJSON_GetObjectItemCaseSensitive(j, "execution");
    if (!CHECK(cJSON_IsObject(ex))) {
        cJSON_Delete(j);
        return;
    }
    CHECK(keys_are(j, (const char *const[]){"success", "execution"}, 2));
    CHECK(keys_are(ex, exec_keys, NKEYS(exec_keys)));
    CHECK_STR(th_json_str(ex, "executionId"), e1);
    CHECK_STR(th_json_str(ex, "projectId"), "pr");
    CHECK_STR(th_json_str(ex, "workflow"), "order-flow");
    CHECK_STR(th_json_str(ex, "codeSha256"),
              "abababababababababababababababababababababababababababababababab");
    CHECK_STR(th_json_str(ex, "status"), "completed");
    CHECK(json_is(ex, "input",
                  "{\"a\":1,\"list\":[1,2.5,\"x\"],\"s\":\"caf\u00e9 \\\"q\\\" \\\\ \\n\"}"));
    CHECK(json_is(ex, "output", "{\"ok\":true,\"n\":null}"));
    CHECK(is_null(ex, "error"));
    CHECK_EQ_INT(th_json_num(ex, "attempt"), 2);
    CHECK_STR(th_json_str(ex, "idempotencyKey"), "key-1");
    CHECK(th_json_bool(ex, "cancelRequested") == 0);
    CHECK_STR(th_json_str(ex, "runAt"), "2026-01-02T03:04:05.678Z");
    CHECK_STR(th_json_str(ex, "createdAt"), "2026-01-02T03:04:05.123Z");
    CHECK_STR(th_json_str(ex, "startedAt"), "2026-01-02T03:04:06.500Z");
    CHECK_STR(th_json_str(ex, "completedAt"), "2026-01-02T03:04:09.000Z");
    CHECK_STR(th_json_str(ex, "updatedAt"), "2026-01-02T03:04:09.999Z");

    steps = cJSON_GetObjectItemCaseSensitive(ex, "steps");
    if (CHECK(cJSON_IsArray(steps)) && CHECK_EQ_INT(cJSON_GetArraySize(steps), 3)) {
        for (int i = 0; i < 3; i++) {
            s = cJSON_GetArrayItem(steps, i);
            CHECK(keys_are(s, step_keys, NKEYS(step_keys)));
            CHECK_EQ_INT(th_json_num(s, "seq"), i);
        }
        s = cJSON_GetArrayItem(steps, 0);
        CHECK_STR(th_json_str(s, "kind"), "activity");
        CHECK_STR(th_json_str(s, "name"), "charge");
        CHECK_STR(th_json_str(s, "status"), "completed");
        CHECK(json_is(s, "output", "{\"x\":1}"));
        CHECK(is_null(s, "error"));
        CHECK_EQ_INT(th_json_num(s, "attempts"), 3);
        CHECK_STR(th_json_str(s, "startedAt"), "2026-01-02T03:04:06.500Z");
        CHECK_STR(th_json_str(s, "completedAt"), "2026-01-02T03:04:07.250Z");
        s = cJSON_GetArrayItem(steps, 1);
        CHECK_STR(th_json_str(s, "kind"), "sleep");
        CHECK_STR(th_json_str(s, "name"), "nap");
        CHECK_STR(th_json_str(s, "status"), "failed");
        CHECK(is_null(s, "output"));
        CHECK_STR(th_json_str(s, "error"), "boom: \"bad\" \\ line\nnext"); /* text, as a string */
        CHECK_EQ_INT(th_json_num(s, "attempts"), 0);
        CHECK(is_null(s, "startedAt"));
        CHECK(is_null(s, "completedAt"));
        s = cJSON_GetArrayItem(steps, 2);
        CHECK_STR(th_json_str(s, "kind"), "now");
        CHECK(json_is(s, "output", "1767323049000"));
        CHECK_STR(th_json_str(s, "completedAt"), "2026-01-02T03:04:08.001Z");
    }
    cJSON_Delete(j);

    /* every nullable column NULL, no steps */
    snprintf(path, sizeof(path), "/executions/%s", e2);
    j = NULL;
    CHECK_EQ_INT(th_http_json(&srv, "GET", path, NULL, &j), 200);
    ex = cJSON_GetObjectItemCaseSensitive(j, "execution");
    CHECK(keys_are(ex, exec_keys, NKEYS(exec_keys)));
    CHECK_STR(th_json_str(ex, "status"), "pending");
    CHECK(is_null(ex, "codeSha256"));
    CHECK(is_null(ex, "input"));
    CHECK(is_null(ex, "output"));
    CHECK(is_null(ex, "error"));
    CHECK(is_null(ex, "idempotencyKey"));
    CHECK(is_null(ex, "startedAt"));
    CHECK(is_null(ex, "completedAt"));
    CHECK_EQ_INT(th_json_num(ex, "attempt"), 0);
    CHECK(th_json_bool(ex, "cancelRequested") == 0);
    CHECK(th_json_str(ex, "runAt") != NULL && th_json_str(ex, "updatedAt") != NULL);
    CHECK_STR(th_json_str(ex, "createdAt"), "2026-01-03T00:00:00.000Z");
    steps = cJSON_GetObjectItemCaseSensitive(ex, "steps");
    CHECK(cJSON_IsArray(steps) && cJSON_GetArraySize(steps) == 0);
    cJSON_Delete(j);

    /* the error of an execution is jsonb: an object, as stored */
    snprintf(path, sizeof(path), "/executions/%s", e3);
    j = NULL;
    CHECK_EQ_INT(th_http_json(&srv, "GET", path, NULL, &j), 200);
    ex = cJSON_GetObjectItemCaseSensitive(j, "execution");
    CHECK_STR(th_json_str(ex, "status"), "failed");
    CHECK(
        json_is(ex, "error",
                "{\"message\":\"card declined\",\"type\":\"ActivityError\",\"retryable\":false}"));
    CHECK(th_json_bool(ex, "cancelRequested") == 1);
    steps = cJSON_GetObjectItemCaseSensitive(ex, "steps");
    CHECK_EQ_INT(cJSON_GetArraySize(steps), 2);
    CHECK_EQ_INT(th_json_num(cJSON_GetArrayItem(steps, 0), "seq"), 4);
    CHECK_STR(th_json_str(cJSON_GetArrayItem(steps, 0), "kind"), "signal");
    CHECK_EQ_INT(th_json_num(cJSON_GetArrayItem(steps, 1), "seq"), 7);
    CHECK_STR(th_json_str(cJSON_GetArrayItem(steps, 1), "error"), "card declined");
    cJSON_Delete(j);

    /* an upper-case id names the same run */
    {
        char upper[64];

        snprintf(upper, sizeof(upper), "%s", e1);
        for (char *p = upper; *p != '\0'; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 'a' + 'A');
        snprintf(path, sizeof(path), "/executions/%s", upper);
        j = NULL;
        CHECK_EQ_INT(th_http_json(&srv, "GET", path, NULL, &j), 200);
        CHECK_STR(th_json_str(cJSON_GetObjectItemCaseSensitive(j, "execution"), "executionId"), e1);
        cJSON_Delete(j);
    }
}

/* A 1 MB input and a 5 MB step output (escapes, non-ASCII text, numbers,
 * nesting) come back equal to what was stored. */
static void test_big_documents(void)
{
    cJSON *input = cJSON_CreateObject(), *output = cJSON_CreateArray();
    char *in_text = NULL, *out_text = NULL, path[128], key[32];
    const char *params[3];
    struct th_reply r;
    const cJSON *ex, *step;
    size_t n;

    if (!CHECK(input != NULL && output != NULL))
        goto out;
    for (int i = 0; i < 10000; i++) { /* ~1.1 MB */
        cJSON *o;

        snprintf(key, sizeof(key), "key-%05d", i);
        o = cJSON_AddObjectToObject(input, key);
        cJSON_AddNumberToObject(o, "i", i);
        cJSON_AddStringToObject(o, "text",
                                "a \"quoted\" \\ value\twith caf\u00e9 and \u2713 and "
                                "\U0001F600, then some padding to grow it......");
    }
    for (int i = 0; i < 60000; i++) { /* ~5.5 MB */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", i * 7);
        cJSON_AddStringToObject(o, "line",
                                "line \"one\"\nline \\two\\ \u00fcml\u00e4ut \u2603 "
                                "\U0001F680 padding padding padding padding");
        cJSON_AddItemToArray(output, o);
    }
    in_text = cJSON_PrintUnformatted(input);
    out_text = cJSON_PrintUnformatted(output);
    if (!CHECK(in_text != NULL && out_text != NULL))
        goto out;
    CHECK(strlen(in_text) >= 1000000);
    CHECK(strlen(out_text) >= 5000000);
    params[0] = ebig;
    params[1] = in_text;
    if (!CHECK(sql("INSERT INTO executions (id, project_id, workflow, input, status)"
                   " VALUES ($1, 'pr', 'big-flow', $2::jsonb, 'running')",
                   2, params) == 0))
        goto out;
    params[1] = out_text;
    if (!CHECK(sql("INSERT INTO steps (execution_id, seq, project_id, name, kind, status, output,"
                   " attempts) VALUES ($1, 0, 'pr', 'huge', 'activity', 'completed', $2::jsonb, 1),"
                   " ($1, 1, 'pr', 'after', 'activity', 'running', NULL, 1)",
                   2, params) == 0))
        goto out;
    snprintf(path, sizeof(path), "/executions/%s", ebig);
    if (!CHECK_EQ_INT(th_http(&srv, "GET", path, NULL, 0, &r), 200)) {
        th_reply_free(&r);
        goto out;
    }
    n = r.body_len;
    CHECK(n > 6000000);
    ex = cJSON_GetObjectItemCaseSensitive(r.json, "execution");
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(ex, "input"), input, 1));
    step = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ex, "steps"), 0);
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(step, "output"), output, 1));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ex, "steps")), 2);
    step = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ex, "steps"), 1);
    CHECK_STR(th_json_str(step, "name"), "after");
    th_reply_free(&r);
    /* HEAD: the same status, no body */
    CHECK_EQ_INT(th_http(&srv, "HEAD", path, NULL, 0, &r), 200);
    CHECK(r.body_len == 0);
    th_reply_free(&r);
out:
    free(in_text);
    free(out_text);
    cJSON_Delete(input);
    cJSON_Delete(output);
}

static void test_get_errors(void)
{
    char path[128];

    expect_error("GET", "/executions/not-a-uuid", 400, "invalid execution id: must be a UUID");
    expect_error("GET", "/executions/0b7d4c6e5f1a4e2b9c3d8a7f6e5d4c3b", 400,
                 "invalid execution id: must be a UUID");
    expect_error("GET", "/executions/0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3bb", 400,
                 "invalid execution id: must be a UUID");
    expect_error("GET", "/executions/%7B0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b%7D", 400,
                 "invalid execution id: must be a UUID");
    expect_error("GET", "/executions/ffffffff-ffff-4fff-8fff-ffffffffffff", 404,
                 "execution \"ffffffff-ffff-4fff-8fff-ffffffffffff\" not found");
    expect_error("GET", "/executions/", 404, "not found");
    snprintf(path, sizeof(path), "/executions/%s", e1);
    expect_error("DELETE", path, 405, "method not allowed");
}

/* ---- the list ---- */

/* The ids of GET /projects/<project>/executions?<query> walked page by
 * page (limit per page) following nextCursor. */
struct walk {
    char **ids;
    int n;
    int pages;
};

static void walk_free(struct walk *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->ids[i]);
    free(w->ids);
    memset(w, 0, sizeof(*w));
}

/*
 * Walks the list with query (may be ""), checking each page: 200, success,
 * count equal to the array's size and at most limit, the light shape, the
 * filters, nextCursor a string on every page but the last (null). Returns
 * 0, or -1 after a failed check (w holds what was read).
 */
static int walk_list(const char *project, const char *query, int limit, const char *status,
                     const char *workflow, struct walk *w)
{
    char path[512], cursor[256] = "";
    int cap = 0;

    memset(w, 0, sizeof(*w));
    for (int guard = 0; guard < 2000; guard++) {
        cJSON *j = NULL;
        const cJSON *arr, *it, *next;
        long st;
        int count;

        snprintf(path, sizeof(path), "/projects/%s/executions?limit=%d%s%s%s%s", project, limit,
                 query[0] != '\0' ? "&" : "", query, cursor[0] != '\0' ? "&cursor=" : "", cursor);
        st = th_http_json(&srv, "GET", path, NULL, &j);
        arr = cJSON_GetObjectItemCaseSensitive(j, "executions");
        count = (int)th_json_num(j, "count");
        if (!CHECK_EQ_INT(st, 200) || !CHECK(th_json_bool(j, "success") == 1) ||
            !CHECK(cJSON_IsArray(arr)) || !CHECK_EQ_INT(cJSON_GetArraySize(arr), count) ||
            !CHECK(count <= limit) ||
            !CHECK(keys_are(
                j, (const char *const[]){"success", "executions", "count", "nextCursor"}, 4))) {
            fprintf(stderr, "  in: GET %s\n", path);
            cJSON_Delete(j);
            return -1;
        }
        w->pages++;
        cJSON_ArrayForEach(it, arr)
        {
            const char *id = th_json_str(it, "executionId");
            if (!CHECK(keys_are(it, list_keys, NKEYS(list_keys))) || !CHECK(id != NULL) ||
                !CHECK(status == NULL || strcmp(th_json_str(it, "status"), status) == 0) ||
                !CHECK(workflow == NULL || strcmp(th_json_str(it, "workflow"), workflow) == 0)) {
                cJSON_Delete(j);
                return -1;
            }
            if (w->n == cap) {
                char **p;
                cap = cap ? cap * 2 : 256;
                p = realloc(w->ids, (size_t)cap * sizeof(*p));
                if (!CHECK(p != NULL)) {
                    cJSON_Delete(j);
                    return -1;
                }
                w->ids = p;
            }
            w->ids[w->n++] = strdup(id);
        }
        next = cJSON_GetObjectItemCaseSensitive(j, "nextCursor");
        if (cJSON_IsNull(next)) {
            cJSON_Delete(j);
            return 0;
        }
        if (!CHECK(cJSON_IsString(next) && strlen(next->valuestring) < sizeof(cursor)) ||
            !CHECK_EQ_INT(count, limit)) {
            cJSON_Delete(j);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", next->valuestring);
        cJSON_Delete(j);
    }
    CHECK(0 && "the list never ended");
    return -1;
}

/* 1 when w holds exactly the ids sql (with parameters) returns, in order:
 * no duplicate, no gap, the same order. */
static int walk_matches(const struct walk *w, const char *text, int n, const char *const *params)
{
    PGresult *res = th_sql(conn, text, n, params);
    int ok;

    if (res == NULL)
        return 0;
    ok = PQntuples(res) == w->n;
    if (!ok)
        fprintf(stderr, "  the walk read %d runs, the database has %d\n", w->n, PQntuples(res));
    for (int i = 0; ok && i < w->n; i++) {
        ok = strcmp(PQgetvalue(res, i, 0), w->ids[i]) == 0;
        if (!ok)
            fprintf(stderr, "  run %d: %s, expected %s\n", i, w->ids[i], PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return ok;
}

/* 1000 runs of project pl: created_at in groups of 4 equal to the
 * microsecond, one microsecond apart, 6 of them before 1970; workflows
 * and statuses cycling. 5 more in project pr: they must not show. */
static int insert_paged(void)
{
    return sql("INSERT INTO executions (project_id, workflow, status, created_at, input)"
               " SELECT 'pl', (ARRAY['wf-a', 'wf-b', 'wf-c'])[1 + i % 3],"
               "  (ARRAY['pending', 'running', 'sleeping', 'waiting', 'completed', 'failed',"
               "   'cancelled'])[1 + i % 7],"
               "  CASE WHEN i < 3 THEN timestamptz '1969-12-31 23:59:59.999999+00'"
               "   WHEN i < 6 THEN timestamptz '1950-06-15 12:00:00.000001+00'"
               "   ELSE timestamptz '2026-03-01 00:00:00+00' + (i / 4) * interval '1 microsecond'"
               "  END, '{\"big\": \"not in the list\"}'"
               " FROM generate_series(0, 999) AS i",
               0, NULL);
}

static void test_list_paging(void)
{
    static const char order[] =
        "SELECT id::text FROM executions WHERE project_id = 'pl' ORDER BY created_at DESC, id DESC";
    struct walk w;
    long long distinct = 0;

    if (!CHECK(insert_paged() == 0))
        return;
    CHECK(th_sql_ll(conn,
                    "SELECT count(DISTINCT created_at) FROM executions WHERE project_id = 'pl'",
                    NULL, &distinct) == 0 &&
          distinct < PAGED_RUNS / 2);
    /* 37 does not divide 1000: the last page is partial */
    if (CHECK(walk_list("pl", "", 37, NULL, NULL, &w) == 0)) {
        CHECK_EQ_INT(w.n, PAGED_RUNS);
        CHECK_EQ_INT(w.pages, (PAGED_RUNS + 36) / 37);
        CHECK(walk_matches(&w, order, 0, NULL));
    }
    walk_free(&w);
    /* pages of one run: every tie is split by the cursor */
    if (CHECK(walk_list("pl", "", 1, NULL, NULL, &w) == 0)) {
        CHECK_EQ_INT(w.pages, PAGED_RUNS);
        CHECK(walk_matches(&w, order, 0, NULL));
    }
    walk_free(&w);
    /* exactly the limit left: no next page announced */
    if (CHECK(walk_list("pl", "", 1000, NULL, NULL, &w) == 0)) {
        CHECK_EQ_INT(w.pages, 1);
        CHECK(walk_matches(&w, order, 0, NULL));
    }
    walk_free(&w);
    if (CHECK(walk_list("pl", "", 999, NULL, NULL, &w) == 0)) {
        CHECK_EQ_INT(w.pages, 2);
        CHECK(walk_matches(&w, order, 0, NULL));
    }
    walk_free(&w);
}

static void test_list_filters(void)
{
    static const char *const statuses[] = {"pending",   "running", "sleeping", "waiting",
                                           "completed", "failed",  "cancelled"};
    char query[128];
    struct walk w;

    for (int i = 0; i < 7; i++) {
        const char *p[1] = {statuses[i]};

        snprintf(query, sizeof(query), "status=%s", statuses[i]);
        if (CHECK(walk_list("pl", query, 20, statuses[i], NULL, &w) == 0))
            CHECK(walk_matches(&w,
                               "SELECT id::text FROM executions WHERE project_id = 'pl'"
                               " AND status = $1 ORDER BY created_at DESC, id DESC",
                               1, p));
        walk_free(&w);
    }
    {
        const char *p[1] = {"wf-b"};
        if (CHECK(walk_list("pl", "workflow=wf-b", 100, NULL, "wf-b", &w) == 0)) {
            CHECK(w.n > 300);
            CHECK(walk_matches(&w,
                               "SELECT id::text FROM executions WHERE project_id = 'pl'"
                               " AND workflow = $1 ORDER BY created_at DESC, id DESC",
                               1, p));
        }
        walk_free(&w);
    }
    {
        const char *p[2] = {"completed", "wf-a"};
        /* an unknown argument is ignored */
        if (CHECK(walk_list("pl", "workflow=wf-a&status=completed&color=blue", 7, "completed",
                            "wf-a", &w) == 0)) {
            CHECK(w.n > 20);
            CHECK(walk_matches(&w,
                               "SELECT id::text FROM executions WHERE project_id = 'pl'"
                               " AND status = $1 AND workflow = $2"
                               " ORDER BY created_at DESC, id DESC",
                               2, p));
        }
        walk_free(&w);
    }
    /* no run of that workflow, and a project without runs: empty lists */
    if (CHECK(walk_list("pl", "workflow=nothing-here", 10, NULL, NULL, &w) == 0))
        CHECK_EQ_INT(w.n, 0);
    walk_free(&w);
    if (CHECK(walk_list("pe", "", 10, NULL, NULL, &w) == 0))
        CHECK_EQ_INT(w.n, 0);
    walk_free(&w);
    /* project pr's runs, newest first, and none of pl's */
    if (CHECK(walk_list("pr", "", 2, NULL, NULL, &w) == 0)) {
        CHECK_EQ_INT(w.n, 3);
        CHECK(walk_matches(&w,
                           "SELECT id::text FROM executions WHERE project_id = 'pr'"
                           " ORDER BY created_at DESC, id DESC",
                           0, NULL));
    }
    walk_free(&w);
}

/* The default limit, the list object against GET's, and a run created
 * while a client pages: the next page starts where the last one ended. */
static void test_list_details(void)
{
    cJSON *j = NULL, *g = NULL, *k = NULL;
    const cJSON *it, *ex;
    char path[512];
    const char *next;

    CHECK_EQ_INT(th_http_json(&srv, "GET", "/projects/pl/executions", NULL, &j), 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 50);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "executions")), 50);
    next = th_json_str(j, "nextCursor");
    CHECK(next != NULL);
    if (next != NULL) {
        char *want;

        /* a newer run arrives; page 2 still follows page 1 exactly */
        CHECK(sql("INSERT INTO executions (project_id, workflow, created_at)"
                  " VALUES ('pl', 'wf-a', '2099-01-01 00:00:00+00')",
                  0, NULL) == 0);
        snprintf(path, sizeof(path), "/projects/pl/executions?cursor=%s&limit=3", next);
        CHECK_EQ_INT(th_http_json(&srv, "GET", path, NULL, &k), 200);
        CHECK_EQ_INT(th_json_num(k, "count"), 3);
        it = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(k, "executions"), 0);
        want = th_sql_value(conn,
                            "SELECT id::text FROM executions WHERE project_id = 'pl'"
                            " AND created_at < '2099-01-01 00:00:00+00'"
                            " ORDER BY created_at DESC, id DESC OFFSET 50 LIMIT 1",
                            NULL);
        CHECK_STR(th_json_str(it, "executionId"), want);
        free(want);
        CHECK(sql("DELETE FROM executions WHERE created_at = '2099-01-01 00:00:00+00'", 0, NULL) ==
              0);
    }
    cJSON_Delete(j);
    cJSON_Delete(k);

    /* the list object is GET's without input, output and steps */
    j = NULL;
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/projects/pr/executions?workflow=order-flow", NULL, &j),
                 200);
    snprintf(path, sizeof(path), "/executions/%s", e1);
    CHECK_EQ_INT(th_http_json(&srv, "GET", path, NULL, &g), 200);
    ex = cJSON_GetObjectItemCaseSensitive(g, "execution");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "executions"))
    {
        const char *id = th_json_str(it, "executionId");
        const cJSON *f;

        if (id == NULL || strcmp(id, e1) != 0)
            continue;
        cJSON_ArrayForEach(f, it)
        {
            CHECK(cJSON_Compare(f, cJSON_GetObjectItemCaseSensitive(ex, f->string), 1));
        }
        CHECK(cJSON_GetObjectItemCaseSensitive(it, "input") == NULL);
        CHECK(cJSON_GetObjectItemCaseSensitive(it, "output") == NULL);
        CHECK(cJSON_GetObjectItemCaseSensitive(it, "steps") == NULL);
    }
    CHECK_EQ_INT(th_json_num(j, "count"), 2);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "nextCursor")));
    cJSON_Delete(j);
    cJSON_Delete(g);

    /* HEAD on the list */
    {
        struct th_reply r;
        CHECK_EQ_INT(th_http(&srv, "HEAD", "/projects/pl/executions?limit=5", NULL, 0, &r), 200);
        CHECK(r.body_len == 0);
        th_reply_free(&r);
    }
}

static void test_list_errors(void)
{
    static const char bad_status[] = "invalid status: must be one of pending, running, sleeping, "
                                     "waiting, completed, failed, cancelled";
    static const char bad_workflow[] =
        "invalid workflow name: must be kebab-case (^[a-z0-9]+(-[a-z0-9]+)*$, at most 64 bytes)";
    static const char bad_limit[] = "invalid limit: must be an integer from 1 to 1000";
    static const char bad_cursor[] =
        "invalid cursor: pass the nextCursor of a previous reply as it is";
    /* base64url of "12:not-a-uuid" and of "x:0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b" */
    static const char *const bad_cursors[] = {
        "garbage!",
        "null",
        "MTI6bm90LWEtdXVpZA",
        "eDowYjdkNGM2ZS01ZjFhLTRlMmItOWMzZC04YTdmNmU1ZDRjM2I",
        "MTI6bm90LWEtdXVpZA==",
        "",
    };
    char path[256];

    expect_error("GET", "/projects/pl/executions?status=bogus", 400, bad_status);
    expect_error("GET", "/projects/pl/executions?status=", 400, bad_status);
    expect_error("GET", "/projects/pl/executions?status=COMPLETED", 400, bad_status);
    expect_error("GET", "/projects/pl/executions?status=completed%00x", 400,
                 "query argument contains a NUL byte");
    expect_error("GET", "/projects/pl/executions?workflow=Bad_Name", 400, bad_workflow);
    expect_error("GET", "/projects/pl/executions?workflow=-a", 400, bad_workflow);
    expect_error("GET", "/projects/pl/executions?workflow=", 400, bad_workflow);
    expect_error("GET", "/projects/pl/executions?parent=x", 400,
                 "invalid parent: must be an execution id (a UUID), or none");
    expect_error("GET", "/projects/pl/executions?parent=", 400,
                 "invalid parent: must be an execution id (a UUID), or none");
    expect_error("GET", "/projects/pl/executions?limit=0", 400, bad_limit);
    expect_error("GET", "/projects/pl/executions?limit=1001", 400, bad_limit);
    expect_error("GET", "/projects/pl/executions?limit=-5", 400, bad_limit);
    expect_error("GET", "/projects/pl/executions?limit=ten", 400, bad_limit);
    expect_error("GET", "/projects/pl/executions?limit=5x", 400, bad_limit);
    expect_error("GET", "/projects/pl/executions?limit=", 400, bad_limit);
    expect_error("GET", "/projects/pl/executions?limit=99999999999999999999", 400, bad_limit);
    for (size_t i = 0; i < sizeof(bad_cursors) / sizeof(bad_cursors[0]); i++) {
        snprintf(path, sizeof(path), "/projects/pl/executions?cursor=%s", bad_cursors[i]);
        expect_error("GET", path, 400, bad_cursor);
    }
    expect_error("GET", "/projects/nope/executions", 404, "project \"nope\" not found");
    expect_error("GET", "/projects/nope/executions?status=failed&limit=5", 404,
                 "project \"nope\" not found");
    expect_error("GET", "/projects/bad.id/executions", 400,
                 "invalid project id: must match ^[A-Za-z0-9_-]{1,64}$");
}

/* With WF_API_TOKEN: both calls need the token. Stops srv first (one
 * server per host identity). */
static void test_token(const struct th_db *db)
{
    static const char *const env[] = {"WF_API_TOKEN=reads-token", NULL};
    static const char *const good[] = {"Authorization: Bearer reads-token", NULL};
    struct th_server s2;
    struct th_reply r;
    char path[128];

    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
    if (!CHECK(th_server_start(&s2, db, env) == 0)) {
        th_server_cleanup(&s2);
        return;
    }
    s2.token[0] = '\0'; /* this test chooses the header of each call */
    snprintf(path, sizeof(path), "/executions/%s", e1);
    CHECK_EQ_INT(th_http_ex(&s2, "GET", path, NULL, 0, NULL, 10000, &r), 401);
    CHECK_STR(th_json_str(r.json, "error"), "missing or invalid API token");
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&s2, "GET", "/projects/pr/executions", NULL, 0, NULL, 10000, &r), 401);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&s2, "HEAD", "/projects/pr/executions", NULL, 0, NULL, 10000, &r), 401);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&s2, "GET", path, NULL, 0, good, 10000, &r), 200);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&s2, "GET", "/projects/pr/executions", NULL, 0, good, 10000, &r), 200);
    CHECK_EQ_INT(th_json_num(r.json, "count"), 4);
    th_reply_free(&r);
    CHECK_EQ_INT(th_server_stop(&s2, 15000), 0);
    th_server_cleanup(&s2);
}

/* A count from SQL; -1 on error (printed). */
static long long sql_count(const char *text, int n, const char *const *params)
{
    PGresult *res = th_sql(conn, text, n, params);
    long long v = -1;

    if (res != NULL && PQntuples(res) == 1)
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* Deleting runs or a project with SQL (an operator's retention job) takes
 * their steps along: the cascade the foreign keys gave before migration 7,
 * now kept by statement triggers. */
static void test_sql_cascade(void)
{
    const char *p1[1] = {"6b3d0c2e-1f7a-4e8b-9c9d-4a3f2e1d0c9b"};
    char path[128];
    cJSON *j = NULL;

    CHECK(sql("INSERT INTO executions (id, project_id, workflow) VALUES ($1, 'pr', 'w')", 1, p1) ==
          0);
    CHECK(sql("INSERT INTO steps (execution_id, seq, project_id, name, kind, status) VALUES"
              " ($1, 0, 'pr', 'a', 'activity', 'completed'), ($1, 1, 'pr', 'b', 'sleep',"
              " 'completed')",
              1, p1) == 0);
    CHECK(sql_count("SELECT count(*) FROM steps WHERE execution_id = $1", 1, p1) == 2);
    CHECK(sql("DELETE FROM executions WHERE id = $1", 1, p1) == 0);
    CHECK(sql_count("SELECT count(*) FROM steps WHERE execution_id = $1", 1, p1) == 0);
    snprintf(path, sizeof path, "/executions/%s", p1[0]);
    CHECK_EQ_INT(th_http_json(&srv, "GET", path, NULL, &j), 404);
    cJSON_Delete(j);

    /* a whole project: its runs, and their steps, go with it */
    p1[0] = "pc";
    CHECK(sql("INSERT INTO projects (id, name) VALUES ('pc', 'Doomed')", 0, NULL) == 0);
    CHECK(sql("INSERT INTO executions (id, project_id, workflow) VALUES"
              " ('4f1b8a0c-9d5e-4c6f-9a7b-2e1d0c9b8a7f', 'pc', 'w'),"
              " ('5a2c9b1d-0e6f-4d7a-8b8c-3f2e1d0c9b8a', 'pc', 'w')",
              0, NULL) == 0);
    CHECK(sql("INSERT INTO steps (execution_id, seq, project_id, name, kind, status)"
              " VALUES ('4f1b8a0c-9d5e-4c6f-9a7b-2e1d0c9b8a7f', 0, 'pc', 'a', 'activity',"
              " 'completed')",
              0, NULL) == 0);
    CHECK(sql("DELETE FROM projects WHERE id = $1", 1, p1) == 0);
    CHECK(sql_count("SELECT count(*) FROM executions WHERE project_id = $1", 1, p1) == 0);
    CHECK(sql_count("SELECT count(*) FROM steps WHERE project_id = $1", 1, p1) == 0);
    /* the others' are untouched */
    p1[0] = e1;
    CHECK(sql_count("SELECT count(*) FROM steps WHERE execution_id = $1", 1, p1) == 3);
}

int main(void)
{
    struct th_db db;
    int rc;

    rc = th_setup("test_executions_read", &db, &srv, NULL, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;
    if (!CHECK(insert_fixtures() == 0))
        goto out;
    test_get_shape();
    test_get_errors();
    test_list_errors();
    test_list_paging();
    test_list_filters();
    test_list_details();
    test_big_documents();
    test_sql_cascade(); /* after the reads: it deletes fixtures */
    test_token(&db);
out:
    return th_teardown(&db, &srv, conn);
}
