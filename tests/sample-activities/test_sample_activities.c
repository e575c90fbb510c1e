/*
 * test_sample_activities.c: loads sample_activities.so the way a worker does
 * (dlopen, wf_plugin_entry, magic and ABI checks), then runs every activity
 * through a test host: the happy path and bad input for each, asserting the
 * status and that the failure message says what is wrong. httpRequest runs
 * against the local server of test_server.c on 127.0.0.1 only (proxy
 * variables are cleared so that nothing leaves the machine).
 *
 * Every call also checks the activity contract: on WF_OK *out is set and
 * fail was not called; on failure *out stays NULL and fail was called; the
 * borrowed input is never modified.
 *
 * Test JSON is written with single quotes for readability; callf turns
 * them into double quotes before parsing (so no test string holds one).
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wf/plugin.h>

#include "test_server.h"
#include "testhelp.h"

static const struct wf_plugin *plugin;
static char fail_msg[2048];
static int fail_calls;
static char log_line[4096];
static int log_level = -1;
static int64_t cancel_at;     /* monotonic ms at which cancelled() turns 1; 0: never */
static int64_t test_deadline; /* deadline_ms of the next calls; 0: none */
static int port, closed_port;

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the test host ---- */

__attribute__((format(printf, 3, 4))) static void host_log(struct wf_activity_ctx *a,
                                                           enum wf_log_level level, const char *fmt,
                                                           ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(log_line, sizeof(log_line), fmt, ap);
    va_end(ap);
    log_level = (int)level;
}

__attribute__((format(printf, 2, 3))) static void host_fail(struct wf_activity_ctx *a,
                                                            const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
    va_end(ap);
    fail_calls++;
}

static int host_cancelled(struct wf_activity_ctx *a)
{
    return (cancel_at > 0 && mono_ms() >= cancel_at) ||
           (a->deadline_ms > 0 && wall_ms() >= a->deadline_ms);
}

static const struct wf_activity_api host_api = {sizeof(struct wf_activity_api), host_log, host_fail,
                                                host_cancelled};

static const struct wf_activity_def *find(const char *name)
{
    size_t i;

    for (i = 0; i < plugin->n_activities; i++) {
        if (strcmp(plugin->activities[i].name, name) == 0) {
            return &plugin->activities[i];
        }
    }
    return NULL;
}

/* Runs activity name on the JSON text made from fmt (single quotes become
 * double quotes; "" means no input at all: NULL). *out receives the result
 * (caller frees). Checks the contract of the file header. */
__attribute__((format(printf, 3, 4))) static enum wf_status callf(const char *name, cJSON **out,
                                                                  const char *fmt, ...)
{
    const struct wf_activity_def *def = find(name);
    struct wf_activity_ctx a = {sizeof(a), &host_api, name, "", 1, test_deadline, NULL};
    cJSON *in = NULL, *copy = NULL;
    char text[8192], *p;
    enum wf_status st;
    va_list ap;

    *out = NULL;
    if (def == NULL) {
        fprintf(stderr, "no activity %s\n", name);
        exit(1);
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (p = text; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    if (text[0] != '\0') {
        in = cJSON_Parse(text);
        if (in == NULL) {
            fprintf(stderr, "bad test JSON: %s\n", text);
            exit(1);
        }
        copy = cJSON_Duplicate(in, 1);
    }
    fail_msg[0] = '\0';
    fail_calls = 0;
    st = def->fn(&a, in, out);
    if (st == WF_OK) {
        CHECK(*out != NULL);
        CHECK_INT(fail_calls, 0);
    } else {
        CHECK(*out == NULL);
        CHECK(fail_calls > 0 && fail_msg[0] != '\0');
    }
    CHECK(in == NULL || cJSON_Compare(in, copy, 1));
    cJSON_Delete(copy);
    cJSON_Delete(in);
    return st;
}

/* Expects activity name to fail on input with status want and a message
 * containing each of the (up to two) strings. */
static void expect_fail(const char *name, const char *input, enum wf_status want, const char *has1,
                        const char *has2)
{
    cJSON *out;
    enum wf_status st = callf(name, &out, "%s", input);

    CHECK_INT(st, want);
    if (strstr(fail_msg, has1) == NULL || (has2 != NULL && strstr(fail_msg, has2) == NULL)) {
        test_failed++;
        fprintf(stderr, "%s(%s): message \"%s\" lacks \"%s\"%s%s\n", name, input, fail_msg, has1,
                has2 ? " or " : "", has2 ? has2 : "");
    } else {
        test_passed++;
    }
    if (strncmp(fail_msg, "could not ", 10) != 0) {
        test_failed++;
        fprintf(stderr, "%s: message \"%s\" does not start with \"could not \"\n", name, fail_msg);
    }
    cJSON_Delete(out);
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(v) ? v->valuedouble : -1e300;
}

/* 1 if item equals the JSON text json (single quotes allowed). */
static int json_eq(const cJSON *item, const char *json)
{
    char text[4096], *p;
    cJSON *want;
    int eq;

    snprintf(text, sizeof(text), "%s", json);
    for (p = text; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    want = cJSON_Parse(text);
    eq = want != NULL && cJSON_Compare(item, want, 1);
    if (!eq) {
        char *got = cJSON_PrintUnformatted(item);

        fprintf(stderr, "got %s, expected %s\n", got ? got : "(null)", text);
        cJSON_free(got);
    }
    cJSON_Delete(want);
    return eq;
}

/* ---- the descriptor ---- */

static void test_descriptor(void)
{
    static const char *const names[] = {"sampleActivity", "buildPackage", "httpRequest",
                                        "transformData",  "waitFor",      "logMessage",
                                        "validateData"};
    size_t i;

    CHECK_INT(plugin->magic, WF_PLUGIN_MAGIC);
    CHECK_INT(plugin->abi_version, WF_ABI_VERSION);
    CHECK_INT(plugin->size, sizeof(struct wf_plugin));
    CHECK_STR(plugin->name, "sample-activities");
    CHECK_INT(plugin->n_workflows, 0);
    CHECK_INT(plugin->n_activities, 7);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct wf_activity_def *d = find(names[i]);

        CHECK(d != NULL);
        if (d == NULL) {
            fprintf(stderr, "activity %s is missing\n", names[i]);
            continue;
        }
        CHECK(d->fn != NULL);
        CHECK(d->retry.max_attempts >= 1);
        CHECK(d->timeout_ms > 0);
    }
    if (find("httpRequest") != NULL && find("buildPackage") != NULL && find("waitFor") != NULL) {
        CHECK_INT(find("httpRequest")->retry.max_attempts, 3);
        CHECK_INT(find("buildPackage")->retry.max_attempts, 1);
        CHECK(find("waitFor")->timeout_ms > 3600000);
    }
}

/* ---- sampleActivity, buildPackage ---- */

static void test_sample_activity(void)
{
    cJSON *out;
    int64_t now = wall_ms();

    CHECK_INT(callf("sampleActivity", &out, "{'message':'hi','n':1}"), WF_OK);
    CHECK_STR(str_at(out, "message"), "Processed: hi");
    CHECK(num_at(out, "timestamp") >= (double)now - 1000 &&
          num_at(out, "timestamp") <= (double)now + 5000);
    CHECK(json_eq(cJSON_GetObjectItem(out, "input"), "{'message':'hi','n':1}"));
    cJSON_Delete(out);

    CHECK_INT(callf("sampleActivity", &out, "%s", ""), WF_OK);
    CHECK_STR(str_at(out, "message"), "Processed: (no message)");
    CHECK(json_eq(cJSON_GetObjectItem(out, "input"), "{}"));
    cJSON_Delete(out);

    expect_fail("sampleActivity", "[1]", WF_EINVAL, "input must be a JSON object", "array");
    expect_fail("sampleActivity", "{'message':5}", WF_EINVAL, "\"message\" must be a string",
                "number");
}

static void test_build_package(void)
{
    cJSON *out;

    CHECK_INT(callf("buildPackage", &out,
                    "{'packageName':'my-pkg','version':'2.1.0','files':['a.js','b.js']}"),
              WF_OK);
    CHECK(json_eq(cJSON_GetObjectItem(out, "packageName"), "'my-pkg'"));
    CHECK_STR(str_at(out, "version"), "2.1.0");
    CHECK(num_at(out, "files") == 2);
    CHECK_STR(str_at(out, "artifact"), "my-pkg-2.1.0.tgz");
    CHECK(num_at(out, "builtAt") > 1.6e12);
    CHECK(log_level == WF_LOG_INFO && strstr(log_line, "my-pkg@2.1.0") != NULL);
    cJSON_Delete(out);

    CHECK_INT(callf("buildPackage", &out, "{'packageName':'@scope/pkg'}"), WF_OK);
    CHECK_STR(str_at(out, "version"), "1.0.0");
    CHECK(num_at(out, "files") == 0);
    CHECK_STR(str_at(out, "artifact"), "scope-pkg-1.0.0.tgz");
    cJSON_Delete(out);

    CHECK_INT(callf("buildPackage", &out, "{'packageName':'x','version':'1.2.3-beta.1+b.5'}"),
              WF_OK);
    CHECK_STR(str_at(out, "artifact"), "x-1.2.3-beta.1+b.5.tgz");
    cJSON_Delete(out);

    expect_fail("buildPackage", "{}", WF_EINVAL, "\"packageName\" is required", NULL);
    expect_fail("buildPackage", "{'packageName':7}", WF_EINVAL, "\"packageName\" must be a string",
                NULL);
    expect_fail("buildPackage", "{'packageName':'My Pkg'}", WF_EINVAL, "\"packageName\" must match",
                NULL);
    expect_fail("buildPackage", "{'packageName':''}", WF_EINVAL, "\"packageName\" must match",
                NULL);
    expect_fail("buildPackage", "{'packageName':'p','version':'latest'}", WF_EINVAL,
                "\"version\" must be a semantic version", NULL);
    expect_fail("buildPackage", "{'packageName':'p','version':'1.2'}", WF_EINVAL,
                "\"version\" must be a semantic version", NULL);
    expect_fail("buildPackage", "{'packageName':'p','files':'a.js'}", WF_EINVAL,
                "\"files\" must be an array", NULL);
    expect_fail("buildPackage", "{'packageName':'p','files':['a',1]}", WF_EINVAL,
                "\"files\"[1] must be a string", NULL);
    expect_fail("buildPackage", "3", WF_EINVAL, "input must be a JSON object", NULL);
}

/* ---- transformData ---- */

/* Runs transformData on input and compares {result} with want. */
static void transform_ok(const char *input, const char *want)
{
    cJSON *out;
    enum wf_status st = callf("transformData", &out, "%s", input);

    CHECK_INT(st, WF_OK);
    if (st == WF_OK) {
        CHECK(json_eq(cJSON_GetObjectItem(out, "result"), want));
        CHECK_INT(cJSON_GetArraySize(out), 1);
    } else {
        fprintf(stderr, "transformData(%s): %s\n", input, fail_msg);
    }
    cJSON_Delete(out);
}

static void test_transform(void)
{
    transform_ok("{'data':'Hello','operation':'uppercase'}", "'HELLO'");
    transform_ok("{'data':{'a':'X','b':['Y',1,{'c':'Z'}],'n':true},'operation':'lowercase'}",
                 "{'a':'x','b':['y',1,{'c':'z'}],'n':true}");
    transform_ok("{'data':'  hi there \\n','operation':'trim'}", "'hi there'");
    transform_ok("{'data':['  a ',' b'],'operation':'trim'}", "['a','b']");
    transform_ok("{'data':'h\xc3\xa9llo','operation':'reverse'}", "'oll\xc3\xa9h'");
    transform_ok("{'data':[1,'two',[3]],'operation':'reverse'}", "[[3],'two',1]");
    transform_ok("{'data':'h\xc3\xa9llo','operation':'length'}", "5");
    transform_ok("{'data':[1,2],'operation':'length'}", "2");
    transform_ok("{'data':{'a':1},'operation':'length'}", "1");
    transform_ok("{'data':'{\\'a\\':[1,true]}','operation':'json_parse'}", "{'a':[1,true]}");
    transform_ok("{'data':{'a':[1,2]},'operation':'json_stringify'}", "'{\\'a\\':[1,2]}'");
    transform_ok("{'data':null,'operation':'json_stringify'}", "'null'");
    transform_ok("{'data':{'a':1,'b':2,'c':3},'operation':'pick','fields':['c','a','zz']}",
                 "{'c':3,'a':1}");
    transform_ok("{'data':[{'a':1,'b':2},{'a':3}],'operation':'omit','fields':['a']}",
                 "[{'b':2},{}]");

    expect_fail("transformData", "{'data':'x','operation':'explode'}", WF_EINVAL,
                "unknown operation \"explode\"", "uppercase, lowercase, trim");
    expect_fail("transformData", "{'data':'x'}", WF_EINVAL, "\"operation\" is required", NULL);
    expect_fail("transformData", "{'operation':'trim'}", WF_EINVAL, "\"data\" is required", NULL);
    expect_fail("transformData", "{'data':5,'operation':'uppercase'}", WF_EINVAL,
                "uppercase needs a string, an array or an object", "number");
    expect_fail("transformData", "{'data':true,'operation':'reverse'}", WF_EINVAL,
                "reverse needs a string or an array", NULL);
    expect_fail("transformData", "{'data':'{bad','operation':'json_parse'}", WF_EINVAL,
                "not valid JSON", NULL);
    expect_fail("transformData", "{'data':{'a':1},'operation':'json_parse'}", WF_EINVAL,
                "json_parse needs a string", NULL);
    expect_fail("transformData", "{'data':{'a':1},'operation':'pick'}", WF_EINVAL,
                "pick needs \"fields\"", NULL);
    expect_fail("transformData", "{'data':{'a':1},'operation':'omit','fields':[1]}", WF_EINVAL,
                "\"fields\"[0] must be a string", NULL);
    expect_fail("transformData", "{'data':[{'a':1},2],'operation':'pick','fields':['a']}",
                WF_EINVAL, "\"data\"[1] is number", NULL);
    expect_fail("transformData", "{'data':'x','operation':'json_stringify','pretty':1}", WF_EINVAL,
                "\"pretty\" must be a boolean", NULL);
}

/* ---- waitFor, logMessage ---- */

static void test_wait_for(void)
{
    cJSON *out;
    int64_t t0 = mono_ms(), took;

    CHECK_INT(callf("waitFor", &out, "{'milliseconds':120,'reason':'test'}"), WF_OK);
    took = mono_ms() - t0;
    CHECK(took >= 120 && took < 2000);
    CHECK(num_at(out, "waited") >= 120 && num_at(out, "waited") < 2000);
    CHECK_STR(str_at(out, "reason"), "test");
    cJSON_Delete(out);

    CHECK_INT(callf("waitFor", &out, "{'milliseconds':0}"), WF_OK);
    CHECK(num_at(out, "waited") == 0);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(out, "reason")));
    cJSON_Delete(out);

    expect_fail("waitFor", "{}", WF_EINVAL, "\"milliseconds\" is required", NULL);
    expect_fail("waitFor", "{'milliseconds':-1}", WF_EINVAL, "integer from 0 to 3600000", NULL);
    expect_fail("waitFor", "{'milliseconds':1.5}", WF_EINVAL, "integer from 0 to 3600000", NULL);
    expect_fail("waitFor", "{'milliseconds':3600001}", WF_EINVAL, "integer from 0 to 3600000",
                NULL);
    expect_fail("waitFor", "{'milliseconds':'10'}", WF_EINVAL, "integer from 0 to 3600000", NULL);
    expect_fail("waitFor", "{'milliseconds':10,'reason':5}", WF_EINVAL,
                "\"reason\" must be a string", NULL);

    /* Cancelled mid-wait: stops within a slice. */
    cancel_at = mono_ms() + 100;
    t0 = mono_ms();
    expect_fail("waitFor", "{'milliseconds':5000}", WF_ECANCELLED, "run was cancelled", NULL);
    CHECK(mono_ms() - t0 < 1000);
    cancel_at = 0;

    /* A wait that cannot end before the deadline does not start. */
    test_deadline = wall_ms() + 100;
    t0 = mono_ms();
    expect_fail("waitFor", "{'milliseconds':5000}", WF_ETIMEDOUT, "deadline", NULL);
    CHECK(mono_ms() - t0 < 500);
    test_deadline = 0;
}

static void test_log_message(void)
{
    cJSON *out;

    log_level = -1;
    CHECK_INT(
        callf("logMessage", &out, "{'level':'warning','message':'disk low','data':{'free':5}}"),
        WF_OK);
    CHECK_INT(log_level, WF_LOG_WARNING);
    CHECK(strstr(log_line, "disk low") != NULL && strstr(log_line, "{\"free\":5}") != NULL);
    CHECK(json_eq(cJSON_GetObjectItem(out, "logged"), "true"));
    CHECK_STR(str_at(out, "level"), "warn");
    CHECK_STR(str_at(out, "message"), "disk low");
    CHECK(num_at(out, "timestamp") > 1.6e12);
    cJSON_Delete(out);

    CHECK_INT(callf("logMessage", &out, "{'message':'plain'}"), WF_OK);
    CHECK_INT(log_level, WF_LOG_INFO);
    CHECK_STR(log_line, "plain");
    CHECK_STR(str_at(out, "level"), "info");
    cJSON_Delete(out);

    CHECK_INT(callf("logMessage", &out, "{'message':'m','level':'debug'}"), WF_OK);
    CHECK_INT(log_level, WF_LOG_DEBUG);
    cJSON_Delete(out);
    CHECK_INT(callf("logMessage", &out, "{'message':'m','level':'error'}"), WF_OK);
    CHECK_INT(log_level, WF_LOG_ERROR);
    cJSON_Delete(out);

    expect_fail("logMessage", "{'level':'info'}", WF_EINVAL, "\"message\" is required", NULL);
    expect_fail("logMessage", "{'message':3}", WF_EINVAL, "\"message\" must be a string", NULL);
    expect_fail("logMessage", "{'message':'m','level':'loud'}", WF_EINVAL,
                "\"level\" must be one of debug, info, warn, warning, error", NULL);
    expect_fail("logMessage", "'text'", WF_EINVAL, "input must be a JSON object", "string");
}

/* ---- validateData ---- */

static void test_validate(void)
{
    cJSON *out, *errors;
    const char *want_rules[] = {"minLength", "type", "pattern", "required", "maxLength", "max"};
    int i;

    CHECK_INT(callf("validateData", &out,
                    "{'data':{'a':'abc','n':5,'z':null},'rules':{"
                    "'a':{'required':true,'type':'string','pattern':'^a[a-c]+$',"
                    "'minLength':3,'maxLength':3},"
                    "'n':{'type':'integer','min':1,'max':10},"
                    "'z':{'required':true,'type':'null'},'opt':{'type':'string'}}}"),
              WF_OK);
    CHECK(json_eq(out, "{'valid':true,'errors':[]}"));
    cJSON_Delete(out);

    CHECK_INT(callf("validateData", &out,
                    "{'data':{'name':'Al','age':17.5,'email':'x@y','tags':[1],'score':11},"
                    "'rules':{'name':{'required':true,'type':'string','minLength':3},"
                    "'age':{'type':'integer','min':18},"
                    "'email':{'pattern':'^[^@]+@[^@]+[.][a-z]+$'},"
                    "'zip':{'required':true},"
                    "'tags':{'type':'array','maxLength':0},"
                    "'score':{'type':'number','max':10}}}"),
              WF_OK);
    CHECK(json_eq(cJSON_GetObjectItem(out, "valid"), "false"));
    errors = cJSON_GetObjectItem(out, "errors");
    CHECK_INT(cJSON_GetArraySize(errors), 6);
    for (i = 0; i < 6 && i < cJSON_GetArraySize(errors); i++) {
        CHECK_STR(str_at(cJSON_GetArrayItem(errors, i), "rule"), want_rules[i]);
        CHECK(str_at(cJSON_GetArrayItem(errors, i), "field") != NULL);
        CHECK(str_at(cJSON_GetArrayItem(errors, i), "message") != NULL);
    }
    CHECK_STR(str_at(cJSON_GetArrayItem(errors, 1), "message"),
              "field \"age\" must be of type integer, got number");
    CHECK_STR(str_at(cJSON_GetArrayItem(errors, 3), "message"), "field \"zip\" is required");
    cJSON_Delete(out);

    expect_fail("validateData", "{'rules':{}}", WF_EINVAL, "\"data\" must be an object", "nothing");
    expect_fail("validateData", "{'data':[],'rules':{}}", WF_EINVAL, "\"data\" must be an object",
                "array");
    expect_fail("validateData", "{'data':{},'rules':[]}", WF_EINVAL, "\"rules\" must be an object",
                NULL);
    expect_fail("validateData", "{'data':{},'rules':{'a':{'pattern':'(['}}}", WF_EINVAL,
                "bad pattern", "\"a\"");
    expect_fail("validateData", "{'data':{},'rules':{'a':{'type':'date'}}}", WF_EINVAL,
                "unknown type \"date\"", "string, number, integer");
    expect_fail("validateData", "{'data':{},'rules':{'a':{'requird':true}}}", WF_EINVAL,
                "unknown rule \"requird\"", NULL);
    expect_fail("validateData", "{'data':{},'rules':{'a':{'required':'yes'}}}", WF_EINVAL,
                "\"required\" in the rule for \"a\" must be a boolean", NULL);
    expect_fail("validateData", "{'data':{},'rules':{'a':{'minLength':-1}}}", WF_EINVAL,
                "\"minLength\" in the rule for \"a\" must be a non-negative integer", NULL);
    expect_fail("validateData", "{'data':{},'rules':{'a':{'min':5,'max':1}}}", WF_EINVAL,
                "min exceeds max", NULL);
    expect_fail("validateData", "{'data':{},'rules':{'a':true}}", WF_EINVAL,
                "the rule for \"a\" must be an object", NULL);
}

/* ---- httpRequest ---- */

/* GETs path on the test server; returns the status and sets *out. */
static enum wf_status get(const char *path, cJSON **out)
{
    return callf("httpRequest", out, "{'url':'http://127.0.0.1:%d%s'}", port, path);
}

static void test_http_ok(void)
{
    cJSON *out, *data, *headers;

    CHECK_INT(get("/json", &out), WF_OK);
    CHECK(num_at(out, "status") == 200);
    CHECK_STR(str_at(out, "statusText"), "OK");
    CHECK(json_eq(cJSON_GetObjectItem(out, "data"), "{'hello':'world','n':42}"));
    headers = cJSON_GetObjectItem(out, "headers");
    CHECK_STR(str_at(headers, "content-type"), "application/json");
    CHECK_STR(str_at(headers, "content-length"), "24");
    cJSON_Delete(out);

    CHECK_INT(get("/text", &out), WF_OK);
    CHECK(json_eq(cJSON_GetObjectItem(out, "data"), "'hello, text'"));
    cJSON_Delete(out);

    CHECK_INT(get("/number", &out), WF_OK);
    CHECK(json_eq(cJSON_GetObjectItem(out, "data"), "'123'"));
    cJSON_Delete(out);

    /* 4xx and 5xx are results, not failures. */
    CHECK_INT(get("/missing", &out), WF_OK);
    CHECK(num_at(out, "status") == 404);
    CHECK_STR(str_at(out, "statusText"), "Not Found");
    CHECK(json_eq(cJSON_GetObjectItem(out, "data"), "'no such page'"));
    cJSON_Delete(out);

    CHECK_INT(get("/error", &out), WF_OK);
    CHECK(num_at(out, "status") == 500);
    CHECK_STR(str_at(out, "statusText"), "Internal Server Error");
    CHECK(json_eq(cJSON_GetObjectItem(out, "data"), "{'error':'boom'}"));
    cJSON_Delete(out);

    CHECK_INT(get("/dup", &out), WF_OK);
    CHECK_STR(str_at(cJSON_GetObjectItem(out, "headers"), "x-multi"), "a, b");
    cJSON_Delete(out);

    CHECK_INT(get("/binary", &out), WF_OK);
    CHECK_STR(str_at(out, "data"), "ok\xEF\xBF\xBD\xEF\xBF\xBD"
                                   "end");
    cJSON_Delete(out);

    CHECK_INT(get("/redirect", &out), WF_OK);
    CHECK(num_at(out, "status") == 302);
    CHECK_STR(str_at(cJSON_GetObjectItem(out, "headers"), "location"), "/json");
    cJSON_Delete(out);

    CHECK_INT(callf("httpRequest", &out,
                    "{'url':'http://127.0.0.1:%d/redirect','followRedirects':true}", port),
              WF_OK);
    CHECK(num_at(out, "status") == 200);
    CHECK(json_eq(cJSON_GetObjectItem(out, "data"), "{'hello':'world','n':42}"));
    cJSON_Delete(out);

    CHECK_INT(
        callf("httpRequest", &out, "{'url':'http://127.0.0.1:%d/json','method':'HEAD'}", port),
        WF_OK);
    CHECK(num_at(out, "status") == 200);
    CHECK(json_eq(cJSON_GetObjectItem(out, "data"), "''"));
    cJSON_Delete(out);

    /* POST with a JSON body: serialized, typed, headers passed. */
    CHECK_INT(callf("httpRequest", &out,
                    "{'url':'http://127.0.0.1:%d/echo','method':'POST',"
                    "'headers':{'X-Test':'yes'},'body':{'a':1}}",
                    port),
              WF_OK);
    data = cJSON_GetObjectItem(out, "data");
    CHECK_STR(str_at(data, "method"), "POST");
    CHECK_STR(str_at(data, "body"), "{\"a\":1}");
    headers = cJSON_GetObjectItem(data, "headers");
    CHECK_STR(str_at(headers, "X-Test"), "yes");
    CHECK_STR(str_at(headers, "Content-Type"), "application/json");
    CHECK_STR(str_at(headers, "User-Agent"), "wf-server-sample-activities/1");
    cJSON_Delete(out);

    /* A body over 1 KiB: no "Expect: 100-continue" round trip. */
    {
        char pad[2001];

        memset(pad, 'x', 2000);
        pad[2000] = '\0';
        CHECK_INT(callf("httpRequest", &out,
                        "{'url':'http://127.0.0.1:%d/echo','method':'POST','body':'%s'}", port,
                        pad),
                  WF_OK);
        data = cJSON_GetObjectItem(out, "data");
        CHECK(str_at(data, "body") != NULL && strlen(str_at(data, "body")) == 2000);
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "headers"), "Expect") == NULL);
        cJSON_Delete(out);
    }

    CHECK_INT(callf("httpRequest", &out,
                    "{'url':'http://127.0.0.1:%d/echo','method':'put','body':'plain'}", port),
              WF_OK);
    data = cJSON_GetObjectItem(out, "data");
    CHECK_STR(str_at(data, "method"), "PUT");
    CHECK_STR(str_at(data, "body"), "plain");
    CHECK_STR(str_at(cJSON_GetObjectItem(data, "headers"), "Content-Type"),
              "text/plain; charset=utf-8");
    cJSON_Delete(out);

    CHECK_INT(callf("httpRequest", &out,
                    "{'url':'http://127.0.0.1:%d/echo','method':'PATCH','body':{'b':2},"
                    "'headers':{'content-type':'application/merge-patch+json'}}",
                    port),
              WF_OK);
    data = cJSON_GetObjectItem(out, "data");
    CHECK_STR(str_at(data, "method"), "PATCH");
    CHECK_STR(str_at(data, "body"), "{\"b\":2}");
    CHECK_STR(str_at(cJSON_GetObjectItem(data, "headers"), "content-type"),
              "application/merge-patch+json");
    CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(data, "headers"), "Content-Type") ==
          NULL);
    cJSON_Delete(out);

    CHECK_INT(
        callf("httpRequest", &out, "{'url':'http://127.0.0.1:%d/echo','method':'delete'}", port),
        WF_OK);
    CHECK_STR(str_at(cJSON_GetObjectItem(out, "data"), "method"), "DELETE");
    cJSON_Delete(out);
}

static void test_http_fail(void)
{
    char in[512], closed[64];
    int64_t t0;

    /* Bad input: never retried. */
    expect_fail("httpRequest", "{}", WF_EINVAL, "\"url\" is required", NULL);
    expect_fail("httpRequest", "{'url':5}", WF_EINVAL, "\"url\" must be a string", NULL);
    expect_fail("httpRequest", "{'url':'ftp://127.0.0.1/x'}", WF_EINVAL,
                "\"url\" must start with http:// or https://", NULL);
    expect_fail("httpRequest", "{'url':'127.0.0.1/x'}", WF_EINVAL, "\"url\"", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/a b'}", WF_EINVAL,
                "\"url\" is not a valid", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','method':'FETCH'}", WF_EINVAL,
                "\"method\" must be one of GET, POST", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','headers':{'X':1}}", WF_EINVAL,
                "header \"X\" must be a string", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','headers':{'Bad Name':'x'}}", WF_EINVAL,
                "bad header name \"Bad Name\"", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','headers':{'X':'a\\r\\nY: b'}}",
                WF_EINVAL, "holds a line break", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','headers':[]}", WF_EINVAL,
                "\"headers\" must be an object", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','timeoutMs':0}", WF_EINVAL,
                "\"timeoutMs\" must be an integer from 1 to 300000", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','timeoutMs':300001}", WF_EINVAL,
                "\"timeoutMs\"", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','method':'HEAD','body':'x'}", WF_EINVAL,
                "HEAD request cannot have a body", NULL);
    expect_fail("httpRequest", "{'url':'http://127.0.0.1/','followRedirects':'yes'}", WF_EINVAL,
                "\"followRedirects\" must be a boolean", NULL);

    /* Response bodies are capped, with or without a Content-Length. */
    snprintf(in, sizeof(in), "{'url':'http://127.0.0.1:%d/big'}", port);
    expect_fail("httpRequest", in, WF_EINVAL, "body exceeds 10485760 bytes", NULL);
    snprintf(in, sizeof(in), "{'url':'http://127.0.0.1:%d/bigchunked'}", port);
    expect_fail("httpRequest", in, WF_EINVAL, "body exceeds 10485760 bytes", NULL);

    /* A timeout is transient: WF_ERROR. */
    snprintf(in, sizeof(in), "{'url':'http://127.0.0.1:%d/slow','timeoutMs':300}", port);
    t0 = mono_ms();
    expect_fail("httpRequest", in, WF_ERROR, "timed out after 300 ms", "/slow");
    CHECK(mono_ms() - t0 < 2500);

    /* Cancellation stops the transfer. */
    snprintf(in, sizeof(in), "{'url':'http://127.0.0.1:%d/slow'}", port);
    cancel_at = mono_ms() + 200;
    t0 = mono_ms();
    expect_fail("httpRequest", in, WF_ECANCELLED, "cancelled", NULL);
    CHECK(mono_ms() - t0 < 2500);
    cancel_at = 0;

    /* The deadline cuts the request's timeout. */
    test_deadline = wall_ms() + 300;
    t0 = mono_ms();
    expect_fail("httpRequest", in, WF_ETIMEDOUT, "deadline passed", NULL);
    CHECK(mono_ms() - t0 < 2500);

    /* A passed deadline: nothing is sent. */
    test_deadline = wall_ms() - 1;
    expect_fail("httpRequest", in, WF_ETIMEDOUT, "deadline passed", NULL);
    test_deadline = 0;

    /* Connection refused is transient: WF_ERROR with curl's message, and
     * the message shows neither user info nor query. */
    snprintf(closed, sizeof(closed), "http://127.0.0.1:%d/x", closed_port);
    snprintf(in, sizeof(in), "{'url':'http://user:secret@127.0.0.1:%d/x?token=abc'}", closed_port);
    expect_fail("httpRequest", in, WF_ERROR, "could not send GET request to", closed);
    CHECK(strstr(fail_msg, "secret") == NULL && strstr(fail_msg, "token") == NULL);
    CHECK(strstr(fail_msg, "onnect") != NULL); /* curl's "Couldn't connect" */
}

int main(void)
{
    static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    void *so;
    wf_plugin_entry_fn entry;
    size_t i;

    signal(SIGPIPE, SIG_IGN);
    /* Every request of this test goes to 127.0.0.1 directly. */
    for (i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
        unsetenv(proxies[i]);
    }
    setenv("no_proxy", "*", 1);

    so = dlopen(WF_SAMPLE_ACTIVITIES_SO, RTLD_NOW | RTLD_LOCAL);
    if (so == NULL) {
        fprintf(stderr, "could not load %s: %s\n", WF_SAMPLE_ACTIVITIES_SO, dlerror());
        return 1;
    }
    *(void **)&entry = dlsym(so, WF_PLUGIN_ENTRY_SYMBOL);
    CHECK(entry != NULL);
    if (entry == NULL) {
        dlclose(so);
        TEST_REPORT("test_sample_activities");
    }
    /* Only the entry point is exported. */
    CHECK(dlsym(so, "sa_http_request") == NULL);
    CHECK(dlsym(so, "sa_now_ms") == NULL);
    plugin = entry();
    CHECK(plugin != NULL);
    if (plugin == NULL || plugin->magic != WF_PLUGIN_MAGIC ||
        plugin->abi_version != WF_ABI_VERSION) {
        fprintf(stderr, "incompatible plugin\n");
        dlclose(so);
        test_failed++;
        TEST_REPORT("test_sample_activities");
    }

    test_descriptor();
    if (plugin->n_activities == 7) {
        test_sample_activity();
        test_build_package();
        test_transform();
        test_wait_for();
        test_log_message();
        test_validate();

        port = ts_start();
        closed_port = ts_closed_port();
        CHECK(port > 0 && closed_port > 0);
        if (port > 0 && closed_port > 0) {
            test_http_ok();
            test_http_fail();
        }
        ts_stop();
    }
    dlclose(so);
    TEST_REPORT("test_sample_activities");
}
