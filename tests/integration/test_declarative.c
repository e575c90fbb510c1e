/*
 * test_declarative.c: declarative workflows (docs/declarative.md) on the
 * real server, worker and PostgreSQL.
 *
 *   1. Deploy-time checks: a definition with several errors is a 400
 *      listing each with its JSON path; one calling an activity the project
 *      does not have is a 400 naming it; one deployed under another name
 *      than its document.name too; a definition is not a plugin for an
 *      activity name (422). YAML: a malformed text is a 400 naming its
 *      line and column, so are an alias and a duplicate key, and a YAML
 *      definition's own errors are listed with their paths as JSON's are.
 *   2. The three examples of examples/ (read from the source tree) deploy
 *      from their YAML twins (http-pipeline and approval with Content-Type
 *      application/yaml, fan-out told by its `document:` line) and run to
 *      completion against a local HTTP server (test_server.c of
 *      the sample activities' tests, 127.0.0.1 only): http-pipeline (http
 *      calls and a switch), fan-out (for and fork, as child runs), approval (a listen
 *      answered by a signal; another refused by its switch and raise). A
 *      call answered 404 fails the run with the status in its error. The
 *      JSON twins, as cJSON prints them, have the YAML's SHA-256: PUT as
 *      JSON, they change nothing.
 *   3. Durability: 40 runs of a definition that calls engine_recorder's
 *      `record` 8 times in a for loop (dur-steps below, which answers like
 *      the plugin's `steps` workflow), the worker killed with SIGKILL while
 *      they run: every run completes with the right output, every step is
 *      committed once, and no record call came after its step's commit
 *      (tests/lib/durability.h).
 *   4. Versions: runs of `pinned` v1 wait for a signal; v2 is deployed and
 *      the worker restarted; signalled, the old runs finish on v1 and a new
 *      run on v2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durability.h"
#include "harness.h"
#include "test_server.h"

#define NRUNS 40
#define NSTEPS 8

static struct th_server srv;
static struct th_db db;
static PGconn *pg;
static char dir[256];
static int http_port;

static const char DUR_STEPS[] =
    "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"test\",\"name\":\"dur-steps\","
    "\"version\":\"1\"},"
    "\"do\":["
    "{\"init\":{\"set\":{\"dir\":\"${ .dir }\",\"ms\":\"${ .step_ms // 0 }\",\"n\":\"${ .n }\","
    "\"sum\":0,\"steps\":0}}},"
    "{\"loop\":{\"for\":{\"in\":\"${ [range(.n)] }\"},\"do\":["
    "{\"rec\":{\"call\":\"record\",\"with\":{\"dir\":\"${ .dir }\",\"run\":\"${ $workflow.id }\","
    "\"step\":\"${ $item }\",\"ms\":\"${ .ms }\"},"
    "\"output\":{\"as\":\"${ $input + {sum: ($input.sum + (if .step == $item then 1 else 0 end)),"
    " steps: ($input.steps + 1)} }\"}}}]}},"
    "{\"done\":{\"set\":{\"sum\":\"${ .sum }\",\"steps\":\"${ .steps }\",\"version\":1}}}]}";

/* pinned vN: waits for "go", answers its version. */
static void pinned_def(char *buf, size_t len, int version)
{
    snprintf(buf, len,
             "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"test\",\"name\":\"pinned\","
             "\"version\":\"%d\"},\"do\":["
             "{\"w\":{\"listen\":{\"to\":{\"one\":{\"with\":{\"type\":\"go\"}}}}}},"
             "{\"v\":{\"set\":{\"version\":%d}}}]}",
             version, version);
}

/* PUT a definition (text) as workflow name with the Content-Type ctype;
 * returns the status, *json the reply (may be NULL). */
static long put_def_as(const char *name, const char *text, const char *ctype, cJSON **json)
{
    char path[160], ct[96];
    struct th_reply r;
    const char *hdr[] = {ct, NULL};
    long st;

    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    snprintf(path, sizeof(path), "/projects/p/workflows/%s", name);
    st = th_http_ex(&srv, "PUT", path, text, strlen(text), hdr, 30000, &r);
    if (json != NULL) {
        *json = r.json;
        r.json = NULL;
    }
    if (st / 100 != 2 && json == NULL)
        fprintf(stderr, "PUT %s: %ld %s\n", path, st, r.body != NULL ? r.body : "");
    th_reply_free(&r);
    return st;
}

/* put_def_as in JSON. */
static long put_def(const char *name, const char *text, cJSON **json)
{
    return put_def_as(name, text, "application/json", json);
}

/* 1 when errors (the array of a 400) holds an entry at path whose message
 * holds needle. */
static int has_error(const cJSON *reply, const char *path, const char *needle)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, cJSON_GetObjectItem(reply, "errors"))
    {
        const char *p = th_json_str(e, "path"), *m = th_json_str(e, "message");
        if (p != NULL && m != NULL && strcmp(p, path) == 0 && strstr(m, needle) != NULL)
            return 1;
    }
    {
        char *t = cJSON_PrintUnformatted(reply);
        fprintf(stderr, "no error at %s with \"%s\" in %s\n", path, needle, t != NULL ? t : "");
        free(t);
    }
    return 0;
}

/* A YAML definition refused: a 400 whose error names line and column. */
static int yaml_refused(const char *text, const char *ctype, const char *message)
{
    cJSON *j = NULL;
    char want[320];
    int ok;

    snprintf(want, sizeof(want), "invalid workflow definition: %s", message);
    ok = CHECK_EQ_INT(put_def_as("bad", text, ctype, &j), 400) &&
         CHECK_STR(th_json_str(j, "error"), want) && CHECK(has_error(j, "/", message));
    cJSON_Delete(j);
    return ok;
}

static void yaml_checks(void)
{
    cJSON *j = NULL;

    yaml_refused("document:\n  dsl: 1.0.0\n  name: bad: x\n", "application/yaml",
                 "YAML line 3, column 12: mapping values are not allowed in this context");
    /* without a YAML type, told by its first line; charset ignored */
    yaml_refused("# a comment\ndocument: {dsl: 1.0.0\n", "application/octet-stream",
                 "YAML line 3, column 1: did not find expected ',' or '}'");
    yaml_refused("document: &d {dsl: 1.0.0}\nother: *d\n", "text/yaml; charset=utf-8",
                 "YAML line 1, column 11: anchors (&d) and aliases are not supported");
    yaml_refused("document: {}\ndo: []\ndocument: {}\n", "application/x-yaml",
                 "YAML line 3, column 1: duplicate mapping key \"document\"");
    yaml_refused("- document\n", "application/yaml",
                 "a definition must be a mapping (document, do, ...)");
    /* converted, then checked as JSON: the describer's errors, with paths */
    CHECK_EQ_INT(put_def_as("bad",
                            "document: {dsl: 1.0.0, namespace: t, name: bad, version: '1'}\n"
                            "do:\n  - a:\n      wait: soon\n",
                            "application/yaml", &j),
                 400);
    CHECK(has_error(j, "/do/0/a/wait", "invalid duration"));
    cJSON_Delete(j);
}

static void deploy_checks(void)
{
    cJSON *j = NULL;
    char path[160];
    const char *bad =
        "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"t\",\"name\":\"bad\",\"version\":\"1\"},"
        "\"do\":[{\"a\":{\"wait\":\"soon\"}},{\"b\":{\"frob\":{}}},"
        "{\"c\":{\"set\":{\"x\":\"${ .a | }\"},\"then\":\"nowhere\"}}]}";
    const char *unknown =
        "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"t\",\"name\":\"calls\",\"version\":\"1\"}"
        ","
        "\"do\":[{\"a\":{\"call\":\"record\"}},{\"b\":{\"call\":\"noSuchActivity\"}}]}";

    CHECK_EQ_INT(put_def("bad", bad, &j), 400);
    CHECK(th_json_str(j, "error") != NULL && strstr(th_json_str(j, "error"), "3 errors") != NULL);
    CHECK(has_error(j, "/do/0/a/wait", "invalid duration"));
    CHECK(has_error(j, "/do/1/b/frob", "unknown task type"));
    CHECK(has_error(j, "/do/2/c/then", "points to \"nowhere\""));
    cJSON_Delete(j);
    j = NULL;
    /* the expression error, once the others are fixed */
    CHECK_EQ_INT(put_def("bad",
                         "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"t\",\"name\":\"bad\","
                         "\"version\":\"1\"},\"do\":[{\"c\":{\"set\":{\"x\":\"${ .a | }\"}}}]}",
                         &j),
                 400);
    CHECK(has_error(j, "/do/0/c/set/x", "does not compile"));
    cJSON_Delete(j);
    j = NULL;
    CHECK_EQ_INT(put_def("calls", unknown, &j), 400);
    CHECK(has_error(j, "/do/1/b/call", "unknown activity \"noSuchActivity\""));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 1);
    cJSON_Delete(j);
    j = NULL;
    CHECK_EQ_INT(put_def("other-name", DUR_STEPS, &j), 400);
    CHECK(has_error(j, "/document/name", "deployed as \"other-name\""));
    cJSON_Delete(j);
    j = NULL;
    CHECK_EQ_INT(put_def("bad", "{not json", &j), 400);
    CHECK(has_error(j, "/", "not valid JSON"));
    cJSON_Delete(j);
    j = NULL;
    yaml_checks();
    /* a definition is no activity */
    {
        struct th_reply r;
        snprintf(path, sizeof(path), "/projects/p/activities/x");
        CHECK_EQ_INT(th_http(&srv, "PUT", path, DUR_STEPS, strlen(DUR_STEPS), &r), 422);
        th_reply_free(&r);
    }
    /* nothing of the refused ones was stored */
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/projects/p/workflows", NULL, &j), 200);
    {
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(j, "workflows"))
        {
            const char *n = th_json_str(w, "name");
            CHECK(n == NULL || (strcmp(n, "bad") != 0 && strcmp(n, "calls") != 0));
        }
    }
    cJSON_Delete(j);
}

/* Reads examples/<name>.<ext> of the source tree. */
/* Starts workflow in project p; its id into id. */
static void trigger(const char *workflow, const char *input, char *id, size_t len)
{
    CHECK_EQ_INT(dur_start_run(&srv, "p", workflow, input, id, len), 202);
}

static char *example(const char *name, const char *ext)
{
    char path[512];
    const char *src = getenv("WF_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/examples/%s.%s", src != NULL ? src : ".", name, ext);
    return th_read_file(path, NULL);
}

static const char *const example_names[] = {"http-pipeline", "fan-out", "approval"};
static char example_sha[3][65]; /* as deployed from YAML */

/* Deploys the examples from their YAML twins. */
static void deploy_yaml_examples(void)
{
    /* fan-out without a YAML type: its `document:` line tells */
    static const char *const types[] = {"application/yaml", "application/octet-stream",
                                        "application/yaml"};

    for (size_t i = 0; i < 3; i++) {
        char *text = example(example_names[i], "yaml");
        cJSON *j = NULL;
        const char *sha;
        if (!CHECK(text != NULL))
            return;
        CHECK_EQ_INT(put_def_as(example_names[i], text, types[i], &j), 201);
        sha = th_json_str(cJSON_GetObjectItem(j, "workflow"), "sha256");
        CHECK(sha != NULL && strlen(sha) == 64);
        snprintf(example_sha[i], sizeof(example_sha[i]), "%s", sha != NULL ? sha : "");
        cJSON_Delete(j);
        free(text);
    }
}

/* The JSON twins, printed by cJSON, are the bytes the YAML became: PUT as
 * JSON they keep the SHA-256 and the version (200, nothing new). */
static void json_twins(void)
{
    for (size_t i = 0; i < 3; i++) {
        char *text = example(example_names[i], "json");
        cJSON *parsed = text != NULL ? cJSON_Parse(text) : NULL, *j = NULL;
        char *canon = cJSON_PrintUnformatted(parsed);
        const cJSON *w;
        if (CHECK(canon != NULL)) {
            CHECK_EQ_INT(put_def(example_names[i], canon, &j), 200);
            w = cJSON_GetObjectItem(j, "workflow");
            CHECK_STR(th_json_str(w, "sha256"), example_sha[i]);
            CHECK_EQ_INT(th_json_num(w, "version"), 1);
            CHECK_EQ_INT(th_json_num(w, "size"), (long long)strlen(canon));
        }
        cJSON_Delete(j);
        free(canon);
        cJSON_Delete(parsed);
        free(text);
    }
}

static void examples(void)
{
    char id[64], id2[64], input[512], path[160];
    const cJSON *ex, *out;
    cJSON *j = NULL;

    deploy_yaml_examples();
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);

    /* http-pipeline: /json says n 42: large; the summary is posted back */
    snprintf(input, sizeof(input), "{\"base\":\"http://127.0.0.1:%d\"}", http_port);
    trigger("http-pipeline", input, id, sizeof(id));
    ex = dur_wait_run(&srv, id, 15000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    out = cJSON_GetObjectItem(ex, "output");
    CHECK_STR(th_json_str(out, "size"), "large");
    CHECK_EQ_INT(th_json_num(out, "n"), 42);
    CHECK_STR(th_json_str(out, "greeting"), "world");
    /* two calls, each a step of the built-in activity */
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ex, "steps")), 2);
    CHECK_STR(th_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "steps"), 0), "name"),
              "wf.http");
    cJSON_Delete(j);

    /* fan-out: three GETs in the for (child runs, three at once), then
     * fork's two branches (child runs too): two join steps */
    snprintf(input, sizeof(input),
             "{\"base\":\"http://127.0.0.1:%d\",\"paths\":[\"/json\",\"/text\",\"/number\"]}",
             http_port);
    trigger("fan-out", input, id, sizeof(id));
    ex = dur_wait_run(&srv, id, 15000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    out = cJSON_GetObjectItem(ex, "output");
    CHECK_EQ_INT(th_json_num(out, "fetched"), 3);
    CHECK_EQ_INT(th_json_num(out, "answer"), 42);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ex, "steps")), 2);
    CHECK_STR(th_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "steps"), 0), "name"),
              "all:3");
    CHECK_STR(th_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "steps"), 1), "name"),
              "all:2");
    cJSON_Delete(j);

    /* approval: approved by a signal; another refused at once */
    trigger("approval", "{\"amount\":250}", id, sizeof(id));
    trigger("approval", "{\"amount\":99999}", id2, sizeof(id2));
    ex = dur_wait_run(&srv, id2, 15000, &j);
    CHECK_STR(th_json_str(ex, "status"), "failed");
    CHECK(dur_error_has(ex, "refused: amount 99999 is over the limit", NULL));
    cJSON_Delete(j);
    snprintf(path, sizeof(path), "/executions/%s/signals/approval", id);
    CHECK_EQ_INT(th_http_json(&srv, "POST", path, "{\"approved\":true,\"by\":\"ann\"}", NULL), 202);
    ex = dur_wait_run(&srv, id, 15000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    out = cJSON_GetObjectItem(ex, "output");
    CHECK_EQ_INT(th_json_bool(out, "approved"), 1);
    CHECK_STR(th_json_str(out, "by"), "ann");
    CHECK_EQ_INT(th_json_num(out, "amount"), 250);
    cJSON_Delete(j);

    /* a call answered 404 fails the run, after no retry (a 4xx) */
    snprintf(input, sizeof(input), "{\"base\":\"http://127.0.0.1:%d/missing\"}", http_port);
    trigger("http-pipeline", input, id, sizeof(id));
    ex = dur_wait_run(&srv, id, 15000, &j);
    CHECK_STR(th_json_str(ex, "status"), "failed");
    CHECK(dur_error_has(ex, "answered 404", "/do/0/fetch"));
    cJSON_Delete(j);
    json_twins();
}

static void durability(void)
{
    static struct dur_id ids[NRUNS];
    struct dur_report rep;
    char in[512];
    pid_t old;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":30}", dir, NSTEPS);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "dur-steps", in, NRUNS, ids), NRUNS);
    th_sleep_ms(dur_rand(150, 400));
    old = dur_kill_worker(&srv, "p");
    CHECK(old > 0);
    CHECK(dur_worker_back(&srv, "p", old, 15000) > 0);
    CHECK(dur_wait_ended(pg, ids, NRUNS, 60000) == 0);
    if (CHECK(dur_check(pg, dir, ids, NRUNS, NSTEPS, "declarative, worker killed", &rep) == 0))
        dur_expect_clean(&rep, "declarative, worker killed");
}

static void versions(void)
{
    char def[1024], ids[3][64], fresh[64], path[256];
    const cJSON *ex;
    cJSON *j = NULL;

    pinned_def(def, sizeof(def), 1);
    CHECK_EQ_INT(put_def("pinned", def, NULL), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);
    for (int i = 0; i < 3; i++)
        trigger("pinned", "{}", ids[i], sizeof(ids[i]));
    th_sleep_ms(300); /* they reach their listen */
    pinned_def(def, sizeof(def), 2);
    CHECK_EQ_INT(put_def("pinned", def, NULL), 200);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);
    trigger("pinned", "{}", fresh, sizeof(fresh));
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/executions/%s/signals/go", ids[i]);
        CHECK_EQ_INT(th_http_json(&srv, "POST", path, "{}", NULL), 202);
    }
    snprintf(path, sizeof(path), "/executions/%s/signals/go", fresh);
    CHECK_EQ_INT(th_http_json(&srv, "POST", path, "{}", NULL), 202);
    for (int i = 0; i < 3; i++) {
        ex = dur_wait_run(&srv, ids[i], 15000, &j);
        CHECK_STR(th_json_str(ex, "status"), "completed");
        CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(ex, "output"), "version"), 1);
        cJSON_Delete(j);
    }
    ex = dur_wait_run(&srv, fresh, 15000, &j);
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(ex, "output"), "version"), 2);
    cJSON_Delete(j);
}

int main(void)
{
    char rw[300];
    const char *ov[4];

    memset(&srv, 0, sizeof(srv));
    memset(&db, 0, sizeof(db));
    if (th_init("test_declarative", 1) < 0)
        return TH_SKIP;
    if (dur_make_dir(dir, sizeof(dir), "test-declarative") < 0)
        return 1;
    http_port = ts_start();
    if (!CHECK(http_port > 0))
        goto out;
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    ov[0] = rw;
    ov[1] = "WF_LISTEN_ADDR=127.0.0.1";
    ov[2] = NULL;
    if (th_up(&db, &srv, ov, &pg) != 0)
        goto out;
    dur_seed();
    CHECK_EQ_INT(th_create_project(&srv, "p", NULL), 201);
    CHECK_EQ_INT(dur_deploy(&srv, "p", "engine_recorder"), 0);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p", NULL), 200);
    deploy_checks();
    CHECK_EQ_INT(put_def("dur-steps", DUR_STEPS, NULL), 201);
    examples();
    durability();
    versions();
out:
    th_down(&db, &srv, pg);
    ts_stop();
    dur_remove_dir(dir);
    return th_finish();
}
