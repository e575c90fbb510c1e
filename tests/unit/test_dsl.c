/*
 * test_dsl.c: declarative workflows without a server: every validation
 * error with its path (dsl/def.c), the expressions (dsl/jqx.c: variables,
 * the shadowed builtins), and every task type run by the interpreter
 * (dsl/interp.c) against a small replaying host written here: activities
 * answer from a script ("double" doubles .n, "fail" fails, "echo"
 * returns its input), sleeps and signals are recorded as steps, and each
 * run is replayed turn by turn exactly as a worker does (the workflow is
 * called again from the start after each new step), so what is checked is
 * the result of the whole replayed run, and that a replay asks for the
 * same steps in the same order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "def.h"
#include "interp.h"
#include "testhelp.h"

/* ---- a replaying host ---- */

#define MAX_STEPS 64

struct step {
    char kind[16];
    char name[64];
    cJSON *result; /* NULL: failed */
    char error[400];
};

struct host {
    struct step steps[MAX_STEPS];
    int nsteps; /* recorded */
    int pos;    /* next step of this turn */
    char err[400];
    const char *signal_name; /* the signal that has arrived, with payload */
    cJSON *signal_payload;
    int fail_count; /* "flaky": fails this many times, then answers */
    int flaky_calls;
};

static struct host H;

static struct host *host_of(struct wf_ctx *ctx)
{
    (void)ctx;
    return &H;
}

/* The recorded step at pos, or NULL with a new one to record (kind, name)
 * when the turn got past the record. A replay asking for another step
 * than the recorded one fails the check. */
static struct step *next_step(struct host *h, const char *kind, const char *name, int *fresh)
{
    struct step *s = &h->steps[h->pos];

    if (h->pos < h->nsteps) {
        if (strcmp(s->kind, kind) != 0 || strcmp(s->name, name) != 0) {
            fprintf(stderr, "non-determinism at step %d: %s %s, recorded %s %s\n", h->pos, kind,
                    name, s->kind, s->name);
            CHECK(0);
        }
        h->pos++;
        *fresh = 0;
        return s;
    }
    *fresh = 1;
    return NULL;
}

static enum wf_status h_activity(struct wf_ctx *ctx, const char *name, const cJSON *input,
                                 cJSON **output)
{
    struct host *h = host_of(ctx);
    int fresh;
    struct step *s = next_step(h, "activity", name, &fresh);

    *output = NULL;
    if (!fresh) {
        if (s->result == NULL) {
            snprintf(h->err, sizeof(h->err), "%s", s->error);
            return WF_ERROR;
        }
        *output = cJSON_Duplicate(s->result, 1);
        return WF_OK;
    }
    /* Run it now; the turn stops (as a worker's would). */
    s = &h->steps[h->nsteps++];
    snprintf(s->kind, sizeof(s->kind), "activity");
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (strcmp(name, "double") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", 2 * cJSON_GetNumberValue(cJSON_GetObjectItem(input, "n")));
        s->result = o;
    } else if (strcmp(name, "echo") == 0 || strcmp(name, DSL_HTTP_ACTIVITY) == 0) {
        s->result = input != NULL ? cJSON_Duplicate(input, 1) : cJSON_CreateNull();
    } else if (strcmp(name, "flaky") == 0 && h->flaky_calls++ >= h->fail_count) {
        s->result = cJSON_CreateString("ok at last");
    } else {
        snprintf(s->error, sizeof(s->error), "%s failed on purpose", name);
    }
    return WF_SUSPEND;
}

static enum wf_status h_sleep(struct wf_ctx *ctx, int64_t ms)
{
    struct host *h = host_of(ctx);
    int fresh;
    struct step *s = next_step(h, "sleep", "sleep", &fresh);

    (void)s;
    if (!fresh)
        return WF_OK;
    s = &h->steps[h->nsteps++];
    snprintf(s->kind, sizeof(s->kind), "sleep");
    snprintf(s->name, sizeof(s->name), "sleep");
    s->result = cJSON_CreateNumber((double)ms);
    return WF_SUSPEND;
}

static enum wf_status h_wait_signal(struct wf_ctx *ctx, const char *name, int64_t timeout_ms,
                                    cJSON **payload)
{
    struct host *h = host_of(ctx);
    int fresh;
    struct step *s = next_step(h, "signal", name, &fresh);

    *payload = NULL;
    if (!fresh) {
        if (s->result == NULL) {
            snprintf(h->err, sizeof(h->err), "timed out");
            return WF_ETIMEDOUT;
        }
        *payload = cJSON_Duplicate(s->result, 1);
        return WF_OK;
    }
    s = &h->steps[h->nsteps++];
    snprintf(s->kind, sizeof(s->kind), "signal");
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (h->signal_name != NULL && strcmp(h->signal_name, name) == 0)
        s->result = cJSON_Duplicate(h->signal_payload, 1);
    else if (timeout_ms < 0)
        s->result = cJSON_CreateNull();
    /* else: timed out (result NULL) */
    return WF_SUSPEND;
}

static int64_t h_now(struct wf_ctx *ctx)
{
    (void)ctx;
    return 1700000000000LL;
}

static void h_log(struct wf_ctx *ctx, enum wf_log_level level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    (void)fmt;
}

static const char *h_error(struct wf_ctx *ctx)
{
    return host_of(ctx)->err;
}

static enum wf_status h_children(struct wf_ctx *ctx, const cJSON *specs, enum wf_join join,
                                 int limit, cJSON **results);

static const struct wf_host_api API = {sizeof(struct wf_host_api),
                                       h_activity,
                                       h_sleep,
                                       h_wait_signal,
                                       h_now,
                                       h_log,
                                       h_error,
                                       h_children};

static struct dsl_def *CUR; /* the definition run() runs: children run it too */
static int CHILD_RUNS;      /* child runs started since host_reset */
static int CHILD_LIMIT;     /* the last children call's limit */

static enum wf_status run_turns(struct dsl_def *d, struct wf_ctx *ctx, const cJSON *in,
                                const cJSON *branch, cJSON **out, char *err, size_t errlen);

/* Each child runs to its end at once, on a host of its own (the steps of
 * a child run are its own), and the call is recorded as one step whose
 * result is theirs, as core's join would write it. */
static enum wf_status h_children(struct wf_ctx *ctx, const cJSON *specs, enum wf_join join,
                                 int limit, cJSON **results)
{
    struct host *h = host_of(ctx), saved;
    char name[32], first_err[320] = "";
    int fresh, i = 0, completed = 0;
    struct step *s;
    const cJSON *k;
    cJSON *all, *winner = NULL;

    *results = NULL;
    snprintf(name, sizeof(name), "%s:%d", join == WF_JOIN_ANY ? "any" : "all",
             cJSON_GetArraySize(specs));
    s = next_step(h, "children", name, &fresh);
    if (!fresh) {
        *results = cJSON_Duplicate(s->result, 1);
        if (s->error[0] != '\0') {
            snprintf(h->err, sizeof(h->err), "%s", s->error);
            return WF_ERROR;
        }
        return WF_OK;
    }
    CHILD_LIMIT = limit;
    all = cJSON_CreateArray();
    saved = H;
    cJSON_ArrayForEach(k, specs)
    {
        cJSON *out = NULL, *r = cJSON_CreateObject();
        char err[256];
        enum wf_status st;
        memset(&H, 0, sizeof(H));
        H.signal_name = saved.signal_name;
        H.signal_payload = saved.signal_payload;
        CHILD_RUNS++;
        st = run_turns(CUR, ctx, cJSON_GetObjectItemCaseSensitive(k, "input"),
                       cJSON_GetObjectItemCaseSensitive(k, "branch"), &out, err, sizeof(err));
        for (int j = 0; j < H.nsteps; j++)
            cJSON_Delete(H.steps[j].result);
        cJSON_AddNumberToObject(r, "index", i);
        cJSON_AddStringToObject(r, "executionId", "00000000-0000-0000-0000-00000000000c");
        cJSON_AddStringToObject(r, "status", st == WF_OK ? "completed" : "failed");
        if (st != WF_OK) {
            /* the run's error as the worker writes it: the message, and
             * the raised error's fields (dsl_run's *out on failure) */
            cJSON *e = cJSON_IsObject(out) ? out : cJSON_CreateObject();
            if (e != out)
                cJSON_Delete(out);
            out = NULL;
            cJSON_AddStringToObject(e, "message", err);
            cJSON_AddItemToObject(r, "error", e);
            if (first_err[0] == '\0')
                snprintf(first_err, sizeof(first_err), "child run (%d) failed: %s", i, err);
        } else if (winner == NULL) {
            winner = r;
        }
        cJSON_AddItemToObject(r, "output", out != NULL ? out : cJSON_CreateNull());
        completed += st == WF_OK;
        cJSON_AddItemToArray(all, r);
        i++;
    }
    H = saved;
    s = &H.steps[H.nsteps++];
    snprintf(s->kind, sizeof(s->kind), "children");
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (join == WF_JOIN_ANY && winner != NULL) {
        s->result = cJSON_CreateArray();
        cJSON_AddItemToArray(s->result, cJSON_Duplicate(winner, 1));
        cJSON_Delete(all);
    } else {
        s->result = all;
        if (join == WF_JOIN_ALL ? first_err[0] != '\0' : completed == 0)
            snprintf(s->error, sizeof(s->error), "%s", first_err);
    }
    return WF_SUSPEND;
}

static void host_reset(void)
{
    for (int i = 0; i < H.nsteps; i++)
        cJSON_Delete(H.steps[i].result);
    memset(&H, 0, sizeof(H));
    CHILD_RUNS = 0;
    CHILD_LIMIT = -1;
}

/* Runs d (or its branch) on in to the end, replaying after every step. */
static enum wf_status run_turns(struct dsl_def *d, struct wf_ctx *ctx, const cJSON *in,
                                const cJSON *branch, cJSON **out, char *err, size_t errlen)
{
    enum wf_status st = WF_SUSPEND;

    for (int turn = 0; turn < 100 && st == WF_SUSPEND; turn++) {
        H.pos = 0;
        st = dsl_run(d, ctx, in, branch, out, err, errlen);
        if (st == WF_SUSPEND)
            CHECK_INT(H.pos, H.nsteps - 1); /* it replayed all and asked for one more */
    }
    return st;
}

/* Runs def_text on input to the end, replaying after every step. Returns
 * the final status; *out the output, err the failure. */
static enum wf_status run(const char *def_text, const char *input, cJSON **out, char *err,
                          size_t errlen)
{
    char lerr[512];
    struct dsl_def *d = dsl_load(def_text, strlen(def_text), "t", lerr, sizeof(lerr));
    struct wf_ctx ctx = {
        sizeof(struct wf_ctx), &API, "p", "00000000-0000-0000-0000-000000000001", "t", NULL};
    cJSON *in = cJSON_Parse(input);
    enum wf_status st = WF_SUSPEND;

    *out = NULL;
    err[0] = '\0';
    if (d == NULL) {
        fprintf(stderr, "load failed: %s\n", lerr);
        CHECK(0);
        cJSON_Delete(in);
        return WF_EINVAL;
    }
    CUR = d;
    st = run_turns(d, &ctx, in, NULL, out, err, errlen);
    cJSON_Delete(in);
    dsl_free(d);
    return st;
}

/* A definition with the given do list (JSON text). */
static char *def(const char *extra, const char *dolist)
{
    static char buf[8192];

    snprintf(buf, sizeof(buf),
             "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"test\",\"name\":\"t\","
             "\"version\":\"1.0.0\"}%s,\"do\":%s}",
             extra, dolist);
    return buf;
}

/* Runs and compares the output with want (JSON text). */
static void expect_output(const char *extra, const char *dolist, const char *input,
                          const char *want)
{
    char err[512];
    cJSON *out = NULL, *w = cJSON_Parse(want);
    enum wf_status st;

    host_reset();
    st = run(def(extra, dolist), input, &out, err, sizeof(err));
    CHECK_INT(st, WF_OK);
    CHECK(cJSON_Compare(out, w, 1));
    if (st != WF_OK || !cJSON_Compare(out, w, 1)) {
        char *t = cJSON_PrintUnformatted(out);
        fprintf(stderr, "  do %s\n  got %s (%s), want %s\n", dolist, t ? t : "(none)", err, want);
        free(t);
    }
    cJSON_Delete(out);
    cJSON_Delete(w);
}

static void expect_failure(const char *dolist, const char *input, const char *needle)
{
    char err[512];
    cJSON *out = NULL;
    enum wf_status st;

    host_reset();
    st = run(def("", dolist), input, &out, err, sizeof(err));
    CHECK_INT(st, WF_ERROR);
    CHECK(strstr(err, needle) != NULL);
    if (st != WF_ERROR || strstr(err, needle) == NULL)
        fprintf(stderr, "  do %s\n  failed with \"%s\", want \"%s\"\n", dolist, err, needle);
    cJSON_Delete(out);
}

static void test_tasks(void)
{
    /* set with expressions, the data flowing on */
    expect_output("",
                  "[{\"a\":{\"set\":{\"x\":\"${ .n + 1 }\",\"k\":\"lit\"}}},"
                  "{\"b\":{\"set\":{\"y\":\"${ .x * 2 }\"}}}]",
                  "{\"n\":1}", "{\"y\":4}");
    /* call an activity with `with`; output.as; export.as and $context */
    expect_output("",
                  "[{\"c\":{\"call\":\"double\",\"with\":{\"n\":\"${ .n }\"},"
                  "\"output\":{\"as\":\"${ .n }\"},\"export\":{\"as\":\"${ {doubled: .} }\"}}},"
                  "{\"d\":{\"set\":{\"ctx\":\"${ $context.doubled }\",\"in\":\"${ $input }\"}}}]",
                  "{\"n\":21}", "{\"ctx\":42,\"in\":42}");
    /* a call without with gets the data */
    expect_output("", "[{\"c\":{\"call\":\"echo\"}}]", "{\"q\":[1]}", "{\"q\":[1]}");
    /* http: the built-in activity gets the evaluated with (echoed here) */
    expect_output("",
                  "[{\"h\":{\"call\":\"http\",\"with\":{\"method\":\"get\","
                  "\"endpoint\":\"${ \\\"http://127.0.0.1/\\\" + .p }\"}}}]",
                  "{\"p\":\"x\"}", "{\"method\":\"get\",\"endpoint\":\"http://127.0.0.1/x\"}");
    /* workflow input.from and output.as */
    expect_output(",\"input\":{\"from\":\"${ .order }\"},\"output\":{\"as\":\"${ .total }\"}",
                  "[{\"s\":{\"set\":{\"total\":\"${ .qty * .price }\"}}}]",
                  "{\"order\":{\"qty\":3,\"price\":5}}", "15");
    /* if: a task skipped */
    expect_output("", "[{\"s\":{\"if\":\"${ .n > 5 }\",\"set\":{\"big\":true}}}]", "{\"n\":1}",
                  "{\"n\":1}");
    /* switch: then to a task, past others; end */
    expect_output("",
                  "[{\"sw\":{\"switch\":[{\"small\":{\"when\":\"${ .n < 10 }\",\"then\":\"low\"}},"
                  "{\"other\":{\"then\":\"high\"}}]}},"
                  "{\"high\":{\"set\":{\"r\":\"high\"},\"then\":\"end\"}},"
                  "{\"low\":{\"set\":{\"r\":\"low\"}}}]",
                  "{\"n\":3}", "{\"r\":\"low\"}");
    expect_output("",
                  "[{\"sw\":{\"switch\":[{\"small\":{\"when\":\"${ .n < 10 }\",\"then\":\"low\"}},"
                  "{\"other\":{\"then\":\"high\"}}]}},"
                  "{\"high\":{\"set\":{\"r\":\"high\"},\"then\":\"end\"}},"
                  "{\"low\":{\"set\":{\"r\":\"low\"}}}]",
                  "{\"n\":30}", "{\"r\":\"high\"}");
    /* a then loop: count to 3 */
    expect_output(
        "",
        "[{\"inc\":{\"set\":{\"i\":\"${ .i + 1 }\"}}},"
        "{\"again\":{\"switch\":[{\"more\":{\"when\":\"${ .i < 3 }\",\"then\":\"inc\"}}]}}]",
        "{\"i\":0}", "{\"i\":3}");
    /* do: nested; exit leaves the nested list only */
    expect_output("",
                  "[{\"outer\":{\"do\":[{\"a\":{\"set\":{\"v\":1},\"then\":\"exit\"}},"
                  "{\"b\":{\"set\":{\"v\":2}}}]}},{\"c\":{\"set\":{\"v\":\"${ .v + 10 }\"}}}]",
                  "{}", "{\"v\":11}");
    /* wait: a durable sleep step, the data unchanged */
    expect_output("", "[{\"w\":{\"wait\":\"PT0.5S\"}},{\"w2\":{\"wait\":{\"seconds\":1}}}]",
                  "{\"k\":1}", "{\"k\":1}");
    /* for: over an array, $item and $index, the data threading through */
    expect_output("",
                  "[{\"loop\":{\"for\":{\"in\":\"${ .xs }\"},\"do\":[{\"add\":{\"call\":\"double\","
                  "\"with\":{\"n\":\"${ $item }\"},\"output\":{\"as\":\"${ $input + {sum: "
                  "($input.sum + .n), last: $index} }\"}}}]}}]",
                  "{\"xs\":[1,2,3],\"sum\":0}", "{\"xs\":[1,2,3],\"sum\":12,\"last\":2}");
    /* for with named each/at */
    expect_output(
        "",
        "[{\"loop\":{\"for\":{\"each\":\"order\",\"at\":\"i\",\"in\":\"${ .os }\"},"
        "\"do\":[{\"s\":{\"set\":\"${ . + {(\\\"o\\\" + ($i|tostring)): $order} }\"}}]}}]",
        "{\"os\":[\"a\",\"b\"]}", "{\"os\":[\"a\",\"b\"],\"o0\":\"a\",\"o1\":\"b\"}");
    /* fork: all branches' outputs, in order; compete: the first */
    expect_output(
        "",
        "[{\"f\":{\"fork\":{\"branches\":[{\"x\":{\"call\":\"double\",\"with\":{\"n\":1}}},"
        "{\"y\":{\"call\":\"double\",\"with\":{\"n\":5}}}]}}}]",
        "{}", "[{\"n\":2},{\"n\":10}]");
    expect_output("",
                  "[{\"f\":{\"fork\":{\"compete\":true,\"branches\":[{\"x\":{\"set\":{\"w\":1}}},"
                  "{\"y\":{\"set\":{\"w\":2}}}]}}}]",
                  "{}", "{\"w\":1}");
    CHECK_INT(CHILD_RUNS, 2); /* each branch a child run */
    /* a fork branch sees the run's $context and the variables bound around
     * it, a nested fork in a branch is its own child runs, and a branch
     * that goes to another task or exits ends there */
    host_reset();
    expect_output("",
                  "[{\"c\":{\"set\":{\"k\":3},\"export\":{\"as\":\"${ {k: .k} }\"}}},"
                  "{\"l\":{\"for\":{\"in\":\"${ [7] }\",\"each\":\"v\"},\"do\":[{\"f\":{\"fork\":{"
                  "\"branches\":[{\"x\":{\"set\":\"${ $context.k + $v }\",\"then\":\"exit\"}},"
                  "{\"y\":{\"fork\":{\"branches\":[{\"z\":{\"call\":\"double\",\"with\":{\"n\":"
                  "\"${ $v }\"}}}]}}}]}}}]}}]",
                  "{}", "[10,[{\"n\":14}]]");
    CHECK_INT(CHILD_RUNS, 3);
    /* for with a concurrency: each iteration a child run on the task's
     * input, the outputs in order, the bound given to the host */
    host_reset();
    expect_output("",
                  "[{\"loop\":{\"for\":{\"in\":\"${ .xs }\",\"concurrency\":2},\"do\":["
                  "{\"d\":{\"call\":\"double\",\"with\":{\"n\":\"${ $item + $index + .k }\"}}}]}}]",
                  "{\"xs\":[1,2,3],\"k\":100}", "[{\"n\":202},{\"n\":206},{\"n\":210}]");
    CHECK_INT(CHILD_RUNS, 3);
    CHECK_INT(CHILD_LIMIT, 2);
    /* over nothing: no child, an empty output */
    host_reset();
    expect_output("",
                  "[{\"loop\":{\"for\":{\"in\":\"${ [] }\",\"concurrency\":2},\"do\":["
                  "{\"d\":{\"call\":\"double\"}}]}}]",
                  "{}", "[]");
    CHECK_INT(CHILD_RUNS, 0);
    /* a failed branch fails the fork with the branch's own error (its
     * title, detail and place); caught like any error, by its status too */
    expect_failure("[{\"f\":{\"fork\":{\"branches\":[{\"x\":{\"set\":{}}},"
                   "{\"y\":{\"call\":\"nope\"}}]}}}]",
                   "{}",
                   "activity \"nope\" failed: nope failed on purpose (at "
                   "/do/0/f/fork/branches/1/y)");
    expect_output("",
                  "[{\"t\":{\"try\":[{\"f\":{\"fork\":{\"branches\":[{\"y\":{\"raise\":{"
                  "\"error\":{\"type\":\"https://example.com/teapot\",\"status\":418,"
                  "\"title\":\"short and stout\"}}}}]}}}],\"catch\":{\"errors\":{\"with\":{"
                  "\"status\":418}},\"as\":\"e\",\"do\":[{\"h\":{\"set\":{\"caught\":"
                  "\"${ $e.title }\",\"child\":\"${ $e.childExecutionId }\"}}}]}}}]",
                  "{}",
                  "{\"caught\":\"short and stout\",\"child\":"
                  "\"00000000-0000-0000-0000-00000000000c\"}");
    expect_output("",
                  "[{\"t\":{\"try\":[{\"f\":{\"fork\":{\"branches\":[{\"y\":{\"call\":"
                  "\"nope\"}}]}}}],\"catch\":{\"as\":\"e\",\"do\":[{\"h\":{\"set\":{\"caught\":"
                  "\"${ $e.status }\"}}}]}}}]",
                  "{}", "{\"caught\":500}");
    /* compete: the first branch to complete wins, failed ones lose */
    expect_output("",
                  "[{\"f\":{\"fork\":{\"compete\":true,\"branches\":[{\"x\":{\"call\":"
                  "\"nope\"}},{\"y\":{\"set\":{\"w\":2}}}]}}}]",
                  "{}", "{\"w\":2}");
    expect_failure(
        "[{\"f\":{\"fork\":{\"compete\":true,\"branches\":[{\"x\":{\"call\":"
        "\"nope\"}}]}}}]",
        "{}", "activity \"nope\" failed: nope failed on purpose (at /do/0/f/fork/branches/0/x)");
    /* inject: static data */
    expect_output("", "[{\"i\":{\"inject\":{\"a\":\"${ not evaluated }\"}}}]", "{}",
                  "{\"a\":\"${ not evaluated }\"}");
    /* listen: the signal's payload */
    host_reset();
    {
        char err[256];
        cJSON *out = NULL;
        H.signal_name = "approval";
        H.signal_payload = cJSON_Parse("{\"ok\":true}");
        CHECK_INT(run(def("", "[{\"l\":{\"listen\":{\"to\":{\"one\":{\"with\":{\"type\":"
                              "\"approval\"}}}},\"timeout\":{\"after\":\"PT1H\"}}}]"),
                      "{}", &out, err, sizeof(err)),
                  WF_OK);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(out, "ok")));
        cJSON_Delete(out);
        cJSON_Delete(H.signal_payload);
        H.signal_payload = NULL;
    }
    /* listen timing out: a timeout error, caught by try */
    expect_output("",
                  "[{\"t\":{\"try\":[{\"l\":{\"listen\":{\"to\":{\"one\":{\"with\":{\"type\":"
                  "\"never\"}}}},\"timeout\":{\"after\":\"PT1S\"}}}],"
                  "\"catch\":{\"errors\":{\"with\":{\"status\":408}},\"do\":[{\"r\":{\"set\":"
                  "{\"timedOut\":true,\"why\":\"${ $error.title }\"}}}]}}}]",
                  "{}", "{\"timedOut\":true,\"why\":\"timed out\"}");
    /* raise, caught by type, with `as` */
    expect_output("",
                  "[{\"t\":{\"try\":[{\"r\":{\"raise\":{\"error\":{\"type\":\"https://x/bad\","
                  "\"status\":400,\"detail\":\"${ \\\"bad \\\" + .k }\"}}}}],"
                  "\"catch\":{\"as\":\"e\",\"errors\":{\"with\":{\"type\":\"https://x/bad\"}},"
                  "\"do\":[{\"h\":{\"set\":{\"handled\":\"${ $e.detail }\"}}}]}}}]",
                  "{\"k\":\"input\"}", "{\"handled\":\"bad input\"}");
    /* try with retry: flaky fails twice, the third attempt passes */
    host_reset();
    H.fail_count = 2;
    {
        char err[256];
        cJSON *out = NULL;
        CHECK_INT(
            run(def("", "[{\"t\":{\"try\":[{\"c\":{\"call\":\"flaky\"}}],\"catch\":{"
                        "\"retry\":{\"delay\":\"PT1S\",\"limit\":{\"attempt\":{\"count\":5}}}}}}]"),
                "{}", &out, err, sizeof(err)),
            WF_OK);
        CHECK(out != NULL && cJSON_IsString(out) && strcmp(out->valuestring, "ok at last") == 0);
        /* three calls, two delays between them */
        CHECK_INT(H.nsteps, 5);
        cJSON_Delete(out);
    }
    /* uncaught failures: the run's error names the task */
    expect_failure("[{\"c\":{\"call\":\"fail\"}}]", "{}",
                   "activity \"fail\" failed: fail failed on purpose (at /do/0/c)");
    expect_failure("[{\"r\":{\"raise\":{\"error\":{\"type\":\"https://x/t\",\"status\":409,"
                   "\"title\":\"Conflict\",\"detail\":\"taken\"}}}}]",
                   "{}", "Conflict: taken (at /do/0/r)");
    expect_failure(
        "[{\"s\":{\"set\":{\"x\":\"${ .a + 1 }\"}}}]", "{\"a\":\"str\"}",
        "expression failed: string (\"str\") and number (1) cannot be added (at /do/0/s)");
    expect_failure("[{\"s\":{\"set\":{\"x\":\"${ now }\"}}}]", "{}", "now is not available");
    expect_failure("[{\"s\":{\"set\":{\"x\":\"${ input }\"}}}]", "{}", "input is not available");
    expect_failure("[{\"f\":{\"for\":{\"in\":\"${ .n }\"},\"do\":[{\"s\":{\"set\":{}}}]}}]",
                   "{\"n\":1}", "did not give an array");
    /* try that does not match: the error goes on */
    expect_failure("[{\"t\":{\"try\":[{\"c\":{\"call\":\"fail\"}}],\"catch\":{\"errors\":{"
                   "\"with\":{\"status\":404}}}}}]",
                   "{}", "fail failed on purpose");
    /* $ENV and env are empty; $workflow.id is the run's */
    expect_output(
        "",
        "[{\"s\":{\"set\":{\"e\":\"${ $ENV }\",\"v\":\"${ env }\",\"id\":\"${ $workflow.id }\"}}}]",
        "{}", "{\"e\":{},\"v\":{},\"id\":\"00000000-0000-0000-0000-000000000001\"}");
}

/* Checks text (a whole definition) and expects an error at path whose
 * message holds needle. */
static void expect_invalid(const char *text, const char *path, const char *needle)
{
    cJSON *errors = cJSON_CreateArray(), *e;
    int n = 0, found = 0;

    (void)dsl_check(text, strlen(text), "t", 1, 0, errors, NULL, &n);
    cJSON_ArrayForEach(e, errors)
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(e, "path"));
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(e, "message"));
        if (p != NULL && m != NULL && strcmp(p, path) == 0 && strstr(m, needle) != NULL)
            found = 1;
    }
    CHECK(n > 0 && found);
    if (!(n > 0 && found)) {
        char *t = cJSON_PrintUnformatted(errors);
        fprintf(stderr, "  %s\n  errors %s; want %s: %s\n", text, t ? t : "", path, needle);
        free(t);
    }
    cJSON_Delete(errors);
}

static void test_validation(void)
{
    cJSON *errors = cJSON_CreateArray(), *calls = cJSON_CreateArray();
    int n = -1;
    const char *ok = def("", "[{\"a\":{\"call\":\"validateOrder\",\"with\":{\"id\":\"${ .id }\"}}},"
                             "{\"b\":{\"call\":\"http\",\"with\":{\"method\":\"post\","
                             "\"endpoint\":{\"uri\":\"http://127.0.0.1:1/x\"}}}}]");

    CHECK(dsl_check(ok, strlen(ok), "t", 1, 0, errors, calls, &n) == NULL);
    CHECK_INT(n, 0);
    CHECK_INT(cJSON_GetArraySize(calls), 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(calls, 0), "name")),
              "validateOrder");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(calls, 0), "path")),
              "/do/0/a/call");
    cJSON_Delete(errors);
    cJSON_Delete(calls);

    expect_invalid("not json", "/", "not valid JSON");
    expect_invalid("[]", "/", "must be a JSON object");
    expect_invalid("{\"do\":[{\"a\":{\"set\":{}}}]}", "/", "missing \"document\"");
    expect_invalid("{\"document\":{\"dsl\":\"0.8\",\"namespace\":\"n\",\"name\":\"t\","
                   "\"version\":\"1\"},\"do\":[{\"a\":{\"set\":{}}}]}",
                   "/document/dsl", "not supported");
    expect_invalid("{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"n\",\"name\":\"other\","
                   "\"version\":\"1\"},\"do\":[{\"a\":{\"set\":{}}}]}",
                   "/document/name", "deployed as \"t\"");
    expect_invalid(def("", "[]"), "/do", "non-empty array");
    expect_invalid(def("", "[{\"a\":{\"frob\":1}}]"), "/do/0/a/frob", "unknown task type");
    expect_invalid(def("", "[{\"a\":{\"emit\":{}}}]"), "/do/0/a/emit", "not supported");
    expect_invalid(def("", "[{\"a\":{}}]"), "/do/0/a", "has no type");
    expect_invalid(def("", "[{\"a\":{\"set\":{},\"wait\":\"PT1S\"}}]"), "/do/0/a", "two types");
    expect_invalid(def("", "[{\"a\":{\"wait\":\"PT1X\"}}]"), "/do/0/a/wait", "invalid duration");
    expect_invalid(def("", "[{\"a\":{\"wait\":\"P1M\"}}]"), "/do/0/a/wait", "invalid duration");
    expect_invalid(def("", "[{\"a\":{\"wait\":{\"secs\":1}}}]"), "/do/0/a/wait",
                   "invalid duration");
    expect_invalid(def("", "[{\"a\":{\"set\":{},\"then\":\"nowhere\"}}]"), "/do/0/a/then",
                   "points to \"nowhere\"");
    expect_invalid(
        def("", "[{\"a\":{\"switch\":[{\"c\":{\"when\":\"${ true }\",\"then\":\"gone\"}}]}}]"),
        "/do/0/a/switch/0/c/then", "points to \"gone\"");
    expect_invalid(def("", "[{\"a\":{\"set\":{\"x\":\"${ .a | }\"}}}]"), "/do/0/a/set/x",
                   "does not compile");
    expect_invalid(def("", "[{\"a\":{\"call\":\"grpc\"}}]"), "/do/0/a/call", "not supported");
    expect_invalid(def("", "[{\"a\":{\"call\":\"http\",\"with\":{\"method\":\"get\"}}}]"),
                   "/do/0/a/with", "missing \"endpoint\"");
    expect_invalid(def("", "[{\"a\":{\"call\":\"http\",\"with\":{\"method\":\"fetch\","
                           "\"endpoint\":\"http://x\"}}}]"),
                   "/do/0/a/with/method", "unsupported method");
    expect_invalid(def("", "[{\"a\":{\"call\":\"bad name!\"}}]"), "/do/0/a/call",
                   "neither http nor an activity");
    expect_invalid(def("", "[{\"a\":{\"for\":{\"each\":\"x\"},\"do\":[{\"b\":{\"set\":{}}}]}}]"),
                   "/do/0/a/for", "missing \"in\"");
    expect_invalid(def("", "[{\"a\":{\"for\":{\"in\":\"${ . }\",\"each\":\"__x\"},"
                           "\"do\":[{\"b\":{\"set\":{}}}]}}]"),
                   "/do/0/a/for/each", "variable name");
    expect_invalid(def("", "[{\"a\":{\"listen\":{\"to\":{\"any\":[]}}}}]"), "/do/0/a/listen/to",
                   "only \"one\"");
    expect_invalid(def("", "[{\"a\":{\"raise\":{\"error\":{\"type\":\"x\"}}}}]"),
                   "/do/0/a/raise/error", "missing \"status\"");
    expect_invalid(def("", "[{\"a\":{\"try\":[{\"b\":{\"set\":{}}}]}}]"), "/do/0/a",
                   "missing \"catch\"");
    expect_invalid(def("", "[{\"a\":{\"try\":[{\"b\":{\"set\":{}}}],\"catch\":{\"retry\":{}}}}]"),
                   "/do/0/a/catch/retry", "limit.attempt.count");
    expect_invalid(def("", "[{\"a\":{\"set\":{}}},{\"a\":{\"set\":{}}}]"), "/do/1",
                   "two tasks named \"a\"");
    expect_invalid(def("", "[{\"a\":{\"set\":{},\"timeout\":{\"after\":\"PT1S\"}}}]"),
                   "/do/0/a/timeout", "listen tasks only");
    expect_invalid(def(",\"schedule\":{\"cron\":\"* * * * *\"}", "[{\"a\":{\"set\":{}}}]"),
                   "/schedule", "POST /projects/{id}/schedules");
    expect_invalid(def(",\"extra\":1", "[{\"a\":{\"set\":{}}}]"), "/extra", "unknown property");
    /* every error is listed, not only the first */
    {
        const char *text = def("", "[{\"a\":{\"wait\":\"x\"}},{\"b\":{\"frob\":1}},"
                                   "{\"c\":{\"set\":{},\"then\":\"z\"}}]");
        errors = cJSON_CreateArray();
        (void)dsl_check(text, strlen(text), "t", 1, 0, errors, NULL, &n);
        CHECK_INT(n, 3);
        CHECK_INT(cJSON_GetArraySize(errors), 3);
        cJSON_Delete(errors);
    }
    {
        cJSON *d = cJSON_CreateString("P1DT1.5S");
        CHECK_INT(dsl_duration_ms(d), 86401500);
        cJSON_Delete(d);
    }
}

int main(void)
{
    test_validation();
    test_tasks();
    host_reset();
    TEST_REPORT("unit_dsl");
}
