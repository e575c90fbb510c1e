/*
 * test_engine_plugins.c: the run engine's test plugins (tests/plugins/
 * engine_recorder.h, versions 1 and 2) against a small host that replays,
 * so that the engine's tests can rely on them: each workflow's output, the
 * lines its activities leave in the test's directory, the retries and
 * failures, and the rules of plugin.h (a WF_SUSPEND from a host call is
 * returned at once; a replay asks for the same steps; nothing leaks, which
 * the sanitizer build checks).
 *
 * The host here is not the engine: it keeps the run's steps in memory,
 * runs a new activity inline (retrying WF_ERROR at once up to the policy's
 * attempts), parks a sleep once and then finds it due, parks a signal wait
 * once and then delivers the test's payload or the timeout, and answers
 * now() from a counter. In "replay each" mode every new activity step also
 * suspends, so the workflow is replayed from the top after each of them, as
 * an engine that re-enters by replay would do. A replay that asks for
 * another step than the one recorded fails the run, as DESIGN §5 says.
 * Appends from concurrent processes are checked with fork, and so are the
 * activities' files from a child sandboxed as a worker is.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "sandbox.h"
#include "testhelp.h"

#define MAX_STEPS 64

/* ---- the test host ---- */

enum step_kind {
    STEP_ACTIVITY, /* activity(): result or error */
    STEP_SLEEP,    /* sleep(): recorded once due */
    STEP_SIGNAL,   /* wait_signal(): payload, or NULL for the timeout */
    STEP_NOW       /* now(): value */
};

struct step {
    enum step_kind kind;
    char name[64];
    enum wf_status status;
    cJSON *result;
    int attempts;
    int64_t value;
    char error[256];
};

struct run {
    const struct plg_registry *reg;
    struct wf_ctx ctx;
    struct step steps[MAX_STEPS];
    int nsteps;
    int seq;                    /* host calls so far in this execution */
    int executions;             /* times the workflow function was called */
    int replay_each;            /* suspend after every new activity step */
    int nondeterministic;       /* a replay asked for another step */
    int waiting;                /* the last execution parked in wait_signal */
    int signal_ready;           /* deliver the signal on the next execution */
    const char *signal_payload; /* JSON text, or NULL: the timeout fires */
    int64_t clock;
    char error[512];
    char last_log[512];
};

/* One activity call's state (wf_activity_ctx.host). */
struct call {
    char error[256];
    int fails;
};

static int cancel_all; /* host_cancelled answers this */

__attribute__((format(printf, 3, 4))) static void act_log(struct wf_activity_ctx *a,
                                                          enum wf_log_level level, const char *fmt,
                                                          ...)
{
    (void)a;
    (void)level;
    (void)fmt;
}

__attribute__((format(printf, 2, 3))) static void act_fail(struct wf_activity_ctx *a,
                                                           const char *fmt, ...)
{
    struct call *c = a->host;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    c->fails++;
}

static int act_cancelled(struct wf_activity_ctx *a)
{
    (void)a;
    return cancel_all;
}

static const struct wf_activity_api act_api = {sizeof(struct wf_activity_api), act_log, act_fail,
                                               act_cancelled};

/* Runs activity def once, as a worker's thread would. */
static enum wf_status run_activity(const struct wf_activity_def *def, const char *run_id,
                                   int attempt, const cJSON *in, cJSON **out, struct call *c)
{
    struct wf_activity_ctx a = {sizeof(a), &act_api, def->name, run_id, attempt, 0, c};
    enum wf_status st;

    memset(c, 0, sizeof(*c));
    *out = NULL;
    st = def->fn(&a, in, out);
    /* The contract: WF_OK sets *out; a failure leaves it NULL after fail(). */
    CHECK(st == WF_OK ? *out != NULL : (*out == NULL && c->fails > 0));
    return st;
}

/* The recorded step for this call, or NULL for a new one; sets the run's
 * non-determinism error when the recorded step differs. */
static struct step *replayed(struct run *r, enum step_kind kind, const char *name, int *bad)
{
    static const char *const kinds[] = {"activity", "sleep", "signal", "now"};
    int seq = r->seq++;
    struct step *s;

    *bad = 0;
    if (seq >= r->nsteps)
        return NULL;
    s = &r->steps[seq];
    if (s->kind != kind || strcmp(s->name, name) != 0) {
        snprintf(r->error, sizeof(r->error),
                 "non-determinism at step %d: recorded %s \"%s\", code asked for %s \"%s\"", seq,
                 kinds[s->kind], s->name, kinds[kind], name);
        r->nondeterministic = 1;
        *bad = 1;
    }
    return s;
}

/* A new step at the end of the log (NULL when full: a failed check). */
static struct step *record(struct run *r, enum step_kind kind, const char *name)
{
    struct step *s;

    CHECK(r->nsteps < MAX_STEPS);
    if (r->nsteps >= MAX_STEPS)
        return NULL;
    s = &r->steps[r->nsteps++];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    snprintf(s->name, sizeof(s->name), "%s", name);
    return s;
}

static enum wf_status host_activity(struct wf_ctx *ctx, const char *name, const cJSON *input,
                                    cJSON **output)
{
    struct run *r = ctx->host;
    const struct wf_activity_def *def;
    struct step *s;
    struct call c;
    cJSON *res = NULL;
    enum wf_status st = WF_ERROR;
    int bad;

    *output = NULL;
    s = replayed(r, STEP_ACTIVITY, name, &bad);
    if (bad)
        return WF_ERROR;
    if (s != NULL) {
        if (s->status != WF_OK) {
            snprintf(r->error, sizeof(r->error), "%s", s->error);
            return s->status;
        }
        *output = cJSON_Duplicate(s->result, 1);
        return WF_OK;
    }
    def = plg_activity(r->reg, name);
    if (def == NULL) {
        snprintf(r->error, sizeof(r->error), "no activity \"%s\"", name);
        return WF_ENOTFOUND;
    }
    s = record(r, STEP_ACTIVITY, name);
    if (s == NULL)
        return WF_ERROR;
    for (int attempt = 1; attempt <= def->retry.max_attempts; attempt++) {
        st = run_activity(def, ctx->execution_id, attempt, input, &res, &c);
        s->attempts = attempt;
        if (st == WF_OK || st == WF_EINVAL || st == WF_ECANCELLED || st == WF_ENOMEM)
            break;
    }
    s->status = st;
    if (st != WF_OK) {
        snprintf(s->error, sizeof(s->error), "%s", c.error);
        snprintf(r->error, sizeof(r->error), "%s", c.error);
        return st;
    }
    s->result = res;
    if (r->replay_each)
        return WF_SUSPEND;
    *output = cJSON_Duplicate(res, 1);
    return WF_OK;
}

static enum wf_status host_sleep(struct wf_ctx *ctx, int64_t ms)
{
    struct run *r = ctx->host;
    int bad;
    struct step *s = replayed(r, STEP_SLEEP, "sleep", &bad);

    (void)ms;
    if (bad)
        return WF_ERROR;
    if (s != NULL)
        return WF_OK;
    if (record(r, STEP_SLEEP, "sleep") == NULL)
        return WF_ERROR;
    return WF_SUSPEND; /* due at the next execution */
}

static enum wf_status host_wait_signal(struct wf_ctx *ctx, const char *name, int64_t timeout_ms,
                                       cJSON **payload)
{
    struct run *r = ctx->host;
    int bad;
    struct step *s = replayed(r, STEP_SIGNAL, name, &bad);

    (void)timeout_ms;
    *payload = NULL;
    if (bad)
        return WF_ERROR;
    if (s == NULL) {
        if (!r->signal_ready) {
            r->seq--; /* not recorded: the same call comes again */
            r->waiting = 1;
            return WF_SUSPEND;
        }
        s = record(r, STEP_SIGNAL, name);
        if (s == NULL)
            return WF_ERROR;
        s->result = r->signal_payload != NULL ? cJSON_Parse(r->signal_payload) : NULL;
    }
    if (s->result == NULL)
        return WF_ETIMEDOUT;
    *payload = cJSON_Duplicate(s->result, 1);
    return WF_OK;
}

static int64_t host_now(struct wf_ctx *ctx)
{
    struct run *r = ctx->host;
    int bad;
    struct step *s = replayed(r, STEP_NOW, "now", &bad);

    if (s != NULL)
        return s->value;
    s = record(r, STEP_NOW, "now");
    r->clock += 1000;
    if (s != NULL)
        s->value = r->clock;
    return r->clock;
}

__attribute__((format(printf, 3, 4))) static void host_log(struct wf_ctx *ctx,
                                                           enum wf_log_level level, const char *fmt,
                                                           ...)
{
    struct run *r = ctx->host;
    va_list ap;

    (void)level;
    va_start(ap, fmt);
    vsnprintf(r->last_log, sizeof(r->last_log), fmt, ap);
    va_end(ap);
}

static const char *host_error(struct wf_ctx *ctx)
{
    return ((struct run *)ctx->host)->error;
}

static const struct wf_host_api host_api = {sizeof(struct wf_host_api),
                                            host_activity,
                                            host_sleep,
                                            host_wait_signal,
                                            host_now,
                                            host_log,
                                            host_error};

static void run_init(struct run *r, const struct plg_registry *reg, const char *id, int replay_each)
{
    memset(r, 0, sizeof(*r));
    r->reg = reg;
    r->replay_each = replay_each;
    r->clock = 1700000000000LL;
    r->ctx.size = sizeof(r->ctx);
    r->ctx.api = &host_api;
    r->ctx.project_id = "p1";
    r->ctx.execution_id = id;
    r->ctx.host = r;
}

static void run_free(struct run *r)
{
    for (int i = 0; i < r->nsteps; i++)
        cJSON_Delete(r->steps[i].result);
}

/* Runs workflow name on input (JSON text) until it stops suspending; a
 * parked signal wait is then delivered. Returns its status; *out its output
 * (caller frees; NULL unless WF_OK). */
static enum wf_status run_workflow(struct run *r, const char *name, const char *input, cJSON **out)
{
    const struct wf_workflow_def *wf = plg_workflow(r->reg, name);
    cJSON *in = cJSON_Parse(input);
    enum wf_status st = WF_ENOTFOUND;

    *out = NULL;
    CHECK(wf != NULL && in != NULL);
    if (wf == NULL || in == NULL) {
        cJSON_Delete(in);
        return st;
    }
    for (int i = 0; i < 1000; i++) {
        cJSON *o = NULL;
        r->seq = 0;
        r->waiting = 0;
        r->executions++;
        st = wf->fn(&r->ctx, in, &o);
        if (st != WF_SUSPEND && r->nondeterministic && st == WF_OK) {
            /* an engine fails the run whatever the code returns then */
            cJSON_Delete(o);
            o = NULL;
            st = WF_ERROR;
        }
        if (st != WF_OK) {
            CHECK(o == NULL); /* nothing leaks on a suspended or failed run */
            cJSON_Delete(o);
        }
        if (st != WF_SUSPEND) {
            *out = o;
            break;
        }
        if (r->waiting)
            r->signal_ready = 1;
    }
    cJSON_Delete(in);
    return st;
}

/* ---- helpers ---- */

static char dir[] = "/tmp/wf-test-engine-plugins-XXXXXX";

static const char *plugin_path(const char *name)
{
    static char p[2][512];
    static int next;
    char *s = p[next++ % 2];

    snprintf(s, 512, "%s/%s.so", WF_TEST_PLUGIN_DIR, name);
    return s;
}

/* The contents of dir/file (caller frees), or NULL. */
static char *slurp(const char *file)
{
    char path[512];
    FILE *f;
    char *buf;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    buf = calloc(1, 1 << 20);
    n = buf != NULL ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    return buf;
}

static void remove_file(const char *file)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    unlink(path);
}

/* The number of lines of text. */
static int count_lines(const char *text)
{
    int n = 0;

    for (; text != NULL && *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

/* Wall-clock microseconds (CLOCK_REALTIME), the clock record stamps its
 * lines with. */
static long long wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Checks that the first `steps` lines of log are record's lines for run,
 * steps 0..steps-1 in order, attempt 1, this pid, stamped within [t0, t1]
 * in non-decreasing order, ending in " v2" exactly under version 2.
 * Returns 1 if they are (each mismatch is printed), else 0.
 */
static int check_record_lines(const char *log, const char *run, int steps, int version,
                              long long t0, long long t1)
{
    const char *line = log;
    long long prev = t0;

    for (int i = 0; i < steps; i++) {
        char id[64], tail[8] = "";
        int step = -1, attempt = -1, used = 0;
        long pid = -1;
        long long us = -1;
        const char *nl = line != NULL ? strchr(line, '\n') : NULL;
        char buf[256];

        if (nl == NULL || (size_t)(nl - line) >= sizeof(buf)) {
            fprintf(stderr, "record line %d missing or too long\n", i);
            return 0;
        }
        memcpy(buf, line, (size_t)(nl - line));
        buf[nl - line] = '\0';
        if (sscanf(buf, "%63s %d %d %ld %lld%n", id, &step, &attempt, &pid, &us, &used) != 5 ||
            sscanf(buf + used, "%7s", tail) > 1 || strcmp(id, run) != 0 || step != i ||
            attempt != 1 || pid != (long)getpid() || us < prev || us > t1 ||
            strcmp(tail, version == 2 ? "v2" : "") != 0) {
            fprintf(stderr, "record line %d is \"%s\" (run %s, window %lld..%lld)\n", i, buf, run,
                    prev, t1);
            return 0;
        }
        prev = us;
        line = nl + 1;
    }
    return 1;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

/* A JSON input text made from fmt (valid until the next call). */
__attribute__((format(printf, 1, 2))) static const char *jsonf(const char *fmt, ...)
{
    static char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

/* ---- the tests ---- */

/* steps, in both modes, and version 2's marks. */
static void test_steps(const struct plg_registry *reg, int version)
{
    struct run r;
    cJSON *out;
    char *log;

    for (int each = 0; each <= 1; each++) {
        long long t0, t1;
        remove_file("invocations.log");
        run_init(&r, reg, "run-steps", each);
        t0 = wall_us();
        CHECK_INT(run_workflow(&r, "steps",
                               jsonf("{\"dir\":\"%s\",\"n\":5,\"payload\":{\"a\":1}}", dir), &out),
                  WF_OK);
        t1 = wall_us();
        CHECK_INT(num(out, "sum"), 5);
        CHECK_INT(num(out, "steps"), 5);
        CHECK_INT(num(out, "version"), version);
        CHECK_INT(r.nsteps, 5);
        CHECK_INT(r.executions, each ? 6 : 1);
        {
            cJSON *a1 = cJSON_Parse("{\"a\":1}");
            CHECK(cJSON_Compare(cJSON_GetObjectItem(r.steps[4].result, "echo"), a1, 1));
            cJSON_Delete(a1);
        }
        log = slurp("invocations.log");
        CHECK_INT(count_lines(log), 5);
        /* "<run> <step> <attempt> <pid> <us>[ v2]": stamped while it ran */
        CHECK(check_record_lines(log, "run-steps", 5, version, t0, t1));
        free(log);
        cJSON_Delete(out);
        run_free(&r);
    }

    /* step_ms: each record step takes that long after its line; out of
     * range, the input is refused. */
    {
        long long t0, t1;
        remove_file("invocations.log");
        run_init(&r, reg, "run-slow", 0);
        t0 = wall_us();
        CHECK_INT(
            run_workflow(&r, "steps", jsonf("{\"dir\":\"%s\",\"n\":3,\"step_ms\":30}", dir), &out),
            WF_OK);
        t1 = wall_us();
        CHECK(t1 - t0 >= 90000);
        log = slurp("invocations.log");
        CHECK(check_record_lines(log, "run-slow", 3, version, t0, t1));
        free(log);
        cJSON_Delete(out);
        run_free(&r);
        run_init(&r, reg, "run-slow-bad", 0);
        CHECK_INT(run_workflow(&r, "steps", jsonf("{\"dir\":\"%s\",\"step_ms\":10001}", dir), &out),
                  WF_EINVAL);
        run_free(&r);
    }

    /* Default n is 20; without dir the input is refused. */
    remove_file("invocations.log");
    run_init(&r, reg, "run-20", 0);
    CHECK_INT(run_workflow(&r, "steps", jsonf("{\"dir\":\"%s\"}", dir), &out), WF_OK);
    CHECK_INT(num(out, "steps"), 20);
    log = slurp("invocations.log");
    CHECK_INT(count_lines(log), 20);
    free(log);
    cJSON_Delete(out);
    run_free(&r);
    run_init(&r, reg, "run-bad", 0);
    CHECK_INT(run_workflow(&r, "steps", "{\"n\":3}", &out), WF_EINVAL);
    CHECK(strstr(r.last_log, "bad input") != NULL);
    run_free(&r);
}

/* sleepy and waiter: half the steps, a park, the other half. */
static void test_sleep_and_signal(const struct plg_registry *reg)
{
    struct run r;
    cJSON *out;
    char *log;

    remove_file("invocations.log");
    run_init(&r, reg, "run-sleepy", 0);
    CHECK_INT(
        run_workflow(&r, "sleepy", jsonf("{\"dir\":\"%s\",\"n\":5,\"sleep_ms\":10}", dir), &out),
        WF_OK);
    CHECK_INT(num(out, "steps"), 5);
    CHECK_INT(num(out, "sum"), 5);
    CHECK_INT(r.executions, 2);
    CHECK_INT(r.nsteps, 6);
    CHECK_INT(r.steps[2].kind, STEP_SLEEP);
    log = slurp("invocations.log");
    CHECK_INT(count_lines(log), 5); /* the replay ran no recorded step again */
    free(log);
    cJSON_Delete(out);
    run_free(&r);

    for (int each = 0; each <= 1; each++) {
        cJSON *want = cJSON_Parse("{\"approved\":true}");
        remove_file("invocations.log");
        run_init(&r, reg, "run-waiter", each);
        r.signal_payload = "{\"approved\":true}";
        CHECK_INT(run_workflow(&r, "waiter",
                               jsonf("{\"dir\":\"%s\",\"n\":4,\"signal\":\"ok\"}", dir), &out),
                  WF_OK);
        CHECK(cJSON_Compare(cJSON_GetObjectItem(out, "payload"), want, 1));
        CHECK(cJSON_GetObjectItem(out, "timedOut") == NULL);
        CHECK_INT(num(out, "sum"), 4);
        CHECK_STR(r.steps[2].name, "ok");
        log = slurp("invocations.log");
        CHECK_INT(count_lines(log), 4);
        free(log);
        cJSON_Delete(want);
        cJSON_Delete(out);
        run_free(&r);
    }

    run_init(&r, reg, "run-timeout", 0);
    CHECK_INT(
        run_workflow(&r, "waiter", jsonf("{\"dir\":\"%s\",\"n\":2,\"timeout_ms\":5}", dir), &out),
        WF_OK);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(out, "timedOut")));
    CHECK(cJSON_GetObjectItem(out, "payload") == NULL);
    CHECK_STR(r.steps[1].name, "go");
    cJSON_Delete(out);
    run_free(&r);
}

/* retrying, failing, one-activity's failures: what the engine's retry
 * tests count. */
static void test_failures(const struct plg_registry *reg)
{
    struct run r;
    cJSON *out;
    char *text;

    remove_file("flaky-k1");
    run_init(&r, reg, "run-retry", 0);
    CHECK_INT(run_workflow(&r, "retrying",
                           jsonf("{\"dir\":\"%s\",\"key\":\"k1\",\"failures\":2}", dir), &out),
              WF_OK);
    CHECK_INT(num(out, "calls"), 3);
    CHECK_INT(r.steps[0].attempts, 3);
    text = slurp("flaky-k1");
    CHECK(text != NULL && strlen(text) == 3 * 24 && count_lines(text) == 3);
    free(text);
    cJSON_Delete(out);
    run_free(&r);

    /* Three failures exhaust the 3 attempts; the next call succeeds (a
     * retried run resumes there). */
    remove_file("flaky-k2");
    run_init(&r, reg, "run-dlq", 0);
    CHECK_INT(run_workflow(&r, "retrying",
                           jsonf("{\"dir\":\"%s\",\"key\":\"k2\",\"failures\":3}", dir), &out),
              WF_ERROR);
    CHECK_STR(r.error, "flaky failure 3");
    CHECK(strstr(r.last_log, "flaky failure 3") != NULL);
    run_free(&r);
    run_init(&r, reg, "run-dlq", 0);
    CHECK_INT(run_workflow(&r, "retrying",
                           jsonf("{\"dir\":\"%s\",\"key\":\"k2\",\"failures\":3}", dir), &out),
              WF_OK);
    CHECK_INT(num(out, "calls"), 4);
    CHECK_INT(r.steps[0].attempts, 1);
    cJSON_Delete(out);
    run_free(&r);
    run_init(&r, reg, "run-badkey", 0);
    CHECK_INT(run_workflow(&r, "retrying", jsonf("{\"dir\":\"%s\",\"key\":\"../x\"}", dir), &out),
              WF_EINVAL);
    run_free(&r);

    run_init(&r, reg, "run-fail", 0);
    CHECK_INT(run_workflow(&r, "failing", "{\"reason\":\"disk on fire\"}", &out), WF_ERROR);
    CHECK_STR(r.error, "boom: disk on fire");
    CHECK(strstr(r.last_log, "boom: disk on fire") != NULL);
    CHECK_INT(r.steps[0].attempts, 3); /* WF_ERROR is retried */
    run_free(&r);

    run_init(&r, reg, "run-invalid", 0);
    CHECK_INT(run_workflow(&r, "one-activity", "{\"activity\":\"invalid\"}", &out), WF_EINVAL);
    CHECK_STR(r.error, "bad input");
    CHECK_INT(r.steps[0].attempts, 1);
    CHECK(plg_activity(reg, "invalid")->retry.max_attempts > 1); /* so no retry shows */
    run_free(&r);

    run_init(&r, reg, "run-nope", 0);
    CHECK_INT(run_workflow(&r, "one-activity", "{\"activity\":\"nope\"}", &out), WF_ENOTFOUND);
    run_free(&r);
}

/* nondeterministic asks for another step when replayed in this process. */
static void test_nondeterministic(const struct plg_registry *reg)
{
    struct run r;
    cJSON *out;
    char *log;

    remove_file("invocations.log");
    run_init(&r, reg, "run-nondet", 0);
    CHECK_INT(run_workflow(&r, "nondeterministic", jsonf("{\"dir\":\"%s\"}", dir), &out), WF_ERROR);
    CHECK(r.nondeterministic);
    CHECK_STR(r.error, "non-determinism at step 0: recorded activity \"record\", code asked for "
                       "activity \"fail_always\"");
    CHECK_INT(r.executions, 2);
    log = slurp("invocations.log");
    CHECK_INT(count_lines(log), 1);
    free(log);
    run_free(&r);

    /* Another run is asked record first again: kept per run. */
    run_init(&r, reg, "run-nondet-2", 0);
    CHECK_INT(run_workflow(&r, "nondeterministic", jsonf("{\"dir\":\"%s\"}", dir), &out), WF_ERROR);
    CHECK_STR(r.steps[0].name, "record");
    run_free(&r);
}

/* clock, big-io, one-step, five-steps, slow. */
static void test_others(const struct plg_registry *reg, int version)
{
    struct run r;
    cJSON *out;
    char *log;

    for (int each = 0; each <= 1; each++) {
        run_init(&r, reg, "run-clock", each);
        CHECK_INT(run_workflow(&r, "clock", jsonf("{\"dir\":\"%s\"}", dir), &out), WF_OK);
        CHECK_INT(num(out, "before"), 1700000001000LL);
        CHECK_INT(num(out, "after"), 1700000002000LL);
        CHECK_INT(num(out, "version"), version);
        CHECK_INT(r.nsteps, 3);
        cJSON_Delete(out);
        run_free(&r);
    }

    run_init(&r, reg, "run-big", 0);
    CHECK_INT(run_workflow(&r, "big-io", "{\"bytes\":100000,\"data\":\"abc\"}", &out), WF_OK);
    CHECK_INT(num(out, "bytes"), 100000);
    CHECK_INT(num(out, "length"), 100000);
    CHECK_INT(num(out, "inputLength"), 3);
    CHECK_INT(num(out, "version"), version);
    cJSON_Delete(out);
    run_free(&r);
    run_init(&r, reg, "run-big-bad", 0);
    CHECK_INT(run_workflow(&r, "big-io", "{\"bytes\":-1}", &out), WF_EINVAL);
    run_free(&r);

    remove_file("invocations.log");
    run_init(&r, reg, "run-one", 0);
    CHECK_INT(run_workflow(&r, "one-step", jsonf("{\"dir\":\"%s\"}", dir), &out), WF_OK);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(out, "ok")));
    CHECK_INT(cJSON_GetArraySize(out), 1);
    CHECK_INT(r.nsteps, 1);
    CHECK_STR(r.steps[0].name, "noop");
    cJSON_Delete(out);
    run_free(&r);
    run_init(&r, reg, "run-five", 1);
    CHECK_INT(run_workflow(&r, "five-steps", "{}", &out), WF_OK);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(out, "ok")));
    CHECK_INT(r.nsteps, 5);
    CHECK_INT(r.executions, 6);
    cJSON_Delete(out);
    run_free(&r);
    log = slurp("invocations.log");
    CHECK(log == NULL); /* noop touches no file */
    free(log);

    run_init(&r, reg, "run-slow", 0);
    CHECK_INT(
        run_workflow(&r, "one-activity", "{\"activity\":\"slow\",\"input\":{\"ms\":30}}", &out),
        WF_OK);
    CHECK_INT(num(cJSON_GetObjectItem(out, "result"), "sleptMs"), 30);
    CHECK_INT(num(out, "version"), version);
    cJSON_Delete(out);
    run_free(&r);
    cancel_all = 1;
    run_init(&r, reg, "run-cancel", 0);
    CHECK_INT(
        run_workflow(&r, "one-activity", "{\"activity\":\"slow\",\"input\":{\"ms\":60000}}", &out),
        WF_ECANCELLED);
    CHECK(strncmp(r.error, "cancelled after ", 16) == 0);
    run_free(&r);
    cancel_all = 0;
}

/* Concurrent processes: record's lines never interleave, and flaky numbers
 * its calls exactly. */
static void test_concurrent_appends(const struct plg_registry *reg)
{
    enum {
        PROCS = 4,
        CALLS = 50
    };
    const struct wf_activity_def *rec = plg_activity(reg, "record");
    const struct wf_activity_def *flaky = plg_activity(reg, "flaky");
    unsigned char *seen =
        mmap(NULL, PROCS * CALLS + 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pids[PROCS];
    char *log, *line;
    int st, good = 0, dup = 0;

    CHECK(rec != NULL && flaky != NULL && seen != MAP_FAILED);
    if (rec == NULL || flaky == NULL || seen == MAP_FAILED)
        return;
    remove_file("invocations.log");
    remove_file("flaky-par");
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            char text[1024];
            int bad = 0;
            for (int i = 0; i < CALLS; i++) {
                struct call c;
                cJSON *in, *out = NULL;
                snprintf(text, sizeof(text), "{\"dir\":\"%s\",\"run\":\"run-%d\",\"step\":%d}", dir,
                         p, i);
                in = cJSON_Parse(text);
                bad |= run_activity(rec, "", 1, in, &out, &c) != WF_OK;
                cJSON_Delete(in);
                cJSON_Delete(out);
                snprintf(text, sizeof(text), "{\"dir\":\"%s\",\"key\":\"par\"}", dir);
                in = cJSON_Parse(text);
                out = NULL;
                bad |= run_activity(flaky, "", 1, in, &out, &c) != WF_OK;
                if (out != NULL) {
                    int n = (int)num(out, "calls");
                    if (n >= 1 && n <= PROCS * CALLS)
                        __atomic_fetch_add(&seen[n], 1, __ATOMIC_SEQ_CST);
                    else
                        bad = 1;
                }
                cJSON_Delete(in);
                cJSON_Delete(out);
            }
            _exit(bad);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        CHECK(pids[p] > 0 && waitpid(pids[p], &st, 0) == pids[p]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int n = 1; n <= PROCS * CALLS; n++)
        dup += seen[n] != 1;
    CHECK_INT(dup, 0); /* every call number 1..200 handed out exactly once */
    munmap(seen, PROCS * CALLS + 1);

    log = slurp("invocations.log");
    CHECK(log != NULL);
    for (line = log; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        int p, step, attempt;
        long pid;
        long long us;
        char tail[8] = "";
        if (nl == NULL)
            break;
        *nl = '\0';
        if (sscanf(line, "run-%d %d %d %ld %lld%7s", &p, &step, &attempt, &pid, &us, tail) == 5 &&
            p >= 0 && p < PROCS && step >= 0 && step < CALLS && attempt == 1 && pid > 0 && us > 0)
            good++;
        line = nl + 1;
    }
    CHECK_INT(good, PROCS * CALLS);
    free(log);
}

/* In a child sandboxed as a worker is (sandbox.c), with the test's
 * directory as WF_SANDBOX_RW_PATHS: record and flaky create and append
 * their files there, and cannot outside it (when the kernel has Landlock). */
static void test_sandboxed(const struct plg_registry *reg)
{
    char scratch[256], rw[256], outside[256];
    char *text;
    pid_t pid;
    int st;

    snprintf(scratch, sizeof(scratch), "%s/scratch", dir);
    snprintf(rw, sizeof(rw), "%s/rw", dir);
    snprintf(outside, sizeof(outside), "%s/outside", dir);
    CHECK(mkdir(scratch, 0700) == 0 && mkdir(rw, 0700) == 0 && mkdir(outside, 0700) == 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct sandbox_config cfg;
        cJSON *report = cJSON_CreateObject();
        char err[512], in_text[600];
        int landlock, bad = 0;
        struct call c;
        cJSON *in, *out = NULL;

        memset(&cfg, 0, sizeof(cfg));
        cfg.scratch_dir = scratch;
        cfg.rw_paths = rw;
        if (sandbox_apply(&cfg, report, err, sizeof(err)) < 0) {
            fprintf(stderr, "sandbox_apply: %s\n", err);
            _exit(10);
        }
        landlock = cJSON_IsTrue(cJSON_GetObjectItem(report, "landlock"));
        cJSON_Delete(report);
        snprintf(in_text, sizeof(in_text), "{\"dir\":\"%s\",\"run\":\"r\",\"step\":0}", rw);
        in = cJSON_Parse(in_text);
        bad |= run_activity(plg_activity(reg, "record"), "r", 1, in, &out, &c) != WF_OK ? 1 : 0;
        cJSON_Delete(in);
        cJSON_Delete(out);
        snprintf(in_text, sizeof(in_text), "{\"dir\":\"%s\",\"key\":\"s\"}", rw);
        in = cJSON_Parse(in_text);
        bad |= run_activity(plg_activity(reg, "flaky"), "r", 1, in, &out, &c) != WF_OK ? 2 : 0;
        cJSON_Delete(in);
        cJSON_Delete(out);
        snprintf(in_text, sizeof(in_text), "{\"dir\":\"%s\",\"run\":\"r\",\"step\":0}", outside);
        in = cJSON_Parse(in_text);
        if (run_activity(plg_activity(reg, "record"), "r", 1, in, &out, &c) == WF_OK && landlock)
            bad |= 4;
        cJSON_Delete(in);
        cJSON_Delete(out);
        _exit(bad);
    }
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    CHECK_INT(WEXITSTATUS(st), 0);
    snprintf(scratch, sizeof(scratch), "rw/invocations.log");
    text = slurp(scratch);
    CHECK(text != NULL && strncmp(text, "r 0 1 ", 6) == 0 && count_lines(text) == 1);
    free(text);
    text = slurp("rw/flaky-s");
    CHECK(text != NULL && strlen(text) == 24);
    free(text);
}

/* Loads one plugin alone (both versions declare the same names). */
static struct plg_registry *load(const char *name)
{
    struct plg_source src = {name, plugin_path(name)};
    char err[512] = "";
    struct plg_registry *reg = plg_load(&src, 1, err, sizeof(err));

    if (reg == NULL)
        fprintf(stderr, "could not load %s: %s\n", name, err);
    CHECK(reg != NULL);
    return reg;
}

int main(void)
{
    static const char *const versions[] = {"engine_recorder", "engine_recorder_v2"};
    char cmd[600];

    log_init("test", LOG_LVL_WARNING, 0);
    CHECK(mkdtemp(dir) != NULL);
    for (int v = 0; v < 2; v++) {
        struct plg_registry *reg = load(versions[v]);
        if (reg == NULL)
            continue;
        test_steps(reg, v + 1);
        test_sleep_and_signal(reg);
        test_failures(reg);
        test_nondeterministic(reg);
        test_others(reg, v + 1);
        if (v == 0) {
            test_concurrent_appends(reg);
            test_sandboxed(reg);
        }
        plg_unload(reg);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    TEST_REPORT("test_engine_plugins");
}
