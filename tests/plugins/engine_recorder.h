/*
 * engine_recorder.h: the body of the run engine's test plugins, compiled
 * twice: engine_recorder.c (ER_VERSION 1) and engine_recorder_v2.c
 * (ER_VERSION 2). Both are the plugin "engine-recorder" with the same names;
 * version 2 differs only where a test must tell which code ran (a
 * run started on version 1 must finish on version 1):
 *   - every workflow output but one-step's and five-steps' carries
 *     "version": ER_VERSION;
 *   - the line `record` writes ends in " v2" under version 2.
 *
 * Workers are sandboxed and hold no database, so the activities report what
 * happened through files in a directory the test names in the input (`dir`)
 * and lets workers write (WF_SANDBOX_RW_PATHS). Every line is appended with
 * O_APPEND and a single write(2), so lines of concurrent workers and threads
 * never interleave.
 *
 * Activities (input → output; every failure calls a->api->fail first):
 *   record {dir, run, step, payload?, ms?} → {"step": step, "echo": payload|null}
 *       appends "<run> <step> <attempt> <pid> <us>\n" (version 2:
 *       "… <us> v2\n") to <dir>/invocations.log, where <us> is the wall
 *       clock (CLOCK_REALTIME) in microseconds since the epoch, read just
 *       before the line is written: PostgreSQL's clock_timestamp() reads
 *       the same clock, so a line later than its step's steps.completed_at
 *       is an invocation that started after the step was committed. With
 *       ms (0 to 10000, default 0) it then sleeps that long before it
 *       returns, so that a test can keep runs in flight for a known time.
 *       Retries: WF_RETRY_DEFAULT.
 *   flaky {dir, key, failures} → {"calls": n}
 *       appends one fixed-length line per call to <dir>/flaky-<key>; the
 *       call's number n is its line's end offset over the line length, so
 *       it is exact under concurrency. Calls 1..failures fail with
 *       "flaky failure <n>" (WF_ERROR). Retries: 3 attempts, 100 ms, ×2,
 *       capped at 1 s. key: [A-Za-z0-9_.-], 1 to 64 bytes, no leading '.'.
 *   fail_always {reason?} → fails with "boom: <reason>" (WF_ERROR).
 *       Retries: 3 attempts, 10 ms, ×2 (so that retrying shows).
 *   invalid {} → fails with "bad input" (WF_EINVAL). Retries: 3 attempts,
 *       10 ms, ×2, which WF_EINVAL must not use.
 *   slow {ms} → {"sleptMs": ms}
 *       sleeps ms in 10 ms slices; once a->api->cancelled(a) is 1 it fails
 *       with "cancelled after <t> ms" and returns WF_ECANCELLED. No retries,
 *       timeout 60 s.
 *   big {bytes} → {"data": "xxx…"} (bytes 'x's, at most 512 MiB).
 *   noop {} → {} (touches no file).
 *
 * Workflows (every input member but dir has a default; run = the run's id):
 *   steps {dir, n=20, payload?, step_ms=0} → {"sum": n, "steps": n, "version": V}
 *       n record steps, step = 0..n-1, each with ms = step_ms; sum counts
 *       the results whose "step" is the one asked for, so a result handed
 *       to the wrong call shows.
 *   sleepy {dir, n=20, sleep_ms=100, step_ms=0} → as steps
 *       record steps 0..n/2-1, sleep(sleep_ms), steps n/2..n-1.
 *   waiter {dir, n=20, signal="go", timeout_ms=-1, step_ms=0} → as steps, plus
 *       "payload": the signal's payload, or "timedOut": true
 *       record steps 0..n/2-1, wait_signal(signal, timeout_ms), the rest.
 *   retrying {dir, key, failures=0} → {"calls": n, "version": V}
 *       one flaky step.
 *   failing {reason?} → no output; returns fail_always's status (WF_ERROR)
 *       after logging ctx->api->error(ctx).
 *   nondeterministic {dir, sleep_ms=10} → {"asked": name, "version": V}
 *       DELIBERATELY WRONG: asks for record (step 0) the first time this
 *       process runs the run, fail_always {reason: "nondeterministic"} every
 *       later time, then sleeps. The sleep parks the run, so waking it
 *       replays the function in the same worker, which then asks for another
 *       activity than the one recorded at that step: the engine must fail the
 *       run with its non-determinism error. (A replay in another process
 *       asks for record again and is deterministic.)
 *   clock {dir} → {"before": t0, "after": t1, "version": V}
 *       now(), record step 0, now().
 *   big-io {bytes=0, data?} → {"bytes": bytes, "length": n,
 *       "inputLength": strlen(data) (only with data), "version": V}
 *       one big {bytes} step; n is the length of the data it returned.
 *   one-step {dir?} → {"ok": true}: one noop (the benchmark's workflow).
 *   five-steps {} → {"ok": true}: five noops (the benchmark's other one).
 *   mixed {n=1} → {"n", "kind"}: set, noop, switch, set, noop: the compiled
 *       twin of bench/decl-mixed.json (the interpreter's benchmark).
 *   one-activity {activity, input={}} → {"result": its output,
 *       "version": V}: runs that activity once (slow, invalid, big, …
 *       from a test); on failure, its status after logging the error.
 *   fan {dir, k=3, n=5, limit=0, step_ms=0} → {"children": k, "sum": Σ their
 *       sums, "version": V}: k child runs of steps {dir, n, step_ms} (the host API's
 *       children call), joined all, at most limit at once (0: no bound).
 * Workflow names are kebab-case, as the API requires of them.
 *
 * Rules of plugin.h followed: side effects only through ctx->api (the
 * workflows touch no file; nondeterministic breaks the rule on purpose), a
 * WF_SUSPEND from a host call is returned at once, every tree built here is
 * deleted, every result received is deleted or handed on as *output.
 */
#ifndef WF_TEST_ENGINE_RECORDER_H
#define WF_TEST_ENGINE_RECORDER_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <wf/plugin.h>

#if !defined(ER_VERSION)
#error "define ER_VERSION (1 or 2) before including engine_recorder.h"
#elif ER_VERSION == 1
#define ER_PLUGIN_VERSION "1.0.0"
#define ER_LINE_TAG ""
#elif ER_VERSION == 2
#define ER_PLUGIN_VERSION "2.0.0"
#define ER_LINE_TAG " v2"
#else
#error "ER_VERSION must be 1 or 2"
#endif

#define ER_FLAKY_LINE 24 /* "%11d %11ld\n": attempt, pid */
#define ER_BIG_MAX ((long long)512 * 1024 * 1024)
#define ER_SLICE_MS 10
#define ER_N_MAX 100000

/* ---- input helpers ---- */

/* in's string member key, or NULL. */
static const char *er_str(const cJSON *in, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(in, key);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* in's integer member key into *out (dflt when absent or null). Returns 0,
 * or -1 when it is there but not an integer within [lo, hi]. */
static int er_int(const cJSON *in, const char *key, long long dflt, long long lo, long long hi,
                  long long *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(in, key);
    double v;

    if (it == NULL || cJSON_IsNull(it)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(it))
        return -1;
    v = it->valuedouble;
    if (!(v >= (double)lo && v <= (double)hi) || (double)(long long)v != v)
        return -1; /* NaN fails the first test */
    *out = (long long)v;
    return 0;
}

/* 1 if key can name a file in the test's directory. */
static int er_valid_key(const char *key)
{
    size_t n = strlen(key);

    if (n == 0 || n > 64 || key[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return 0;
    }
    return 1;
}

/* Adds item (taken over; NULL: it could not be made) to o as key. Returns
 * 1, or 0 with item deleted: cJSON_AddItemToObject keeps it on failure. */
static int er_add(cJSON *o, const char *key, cJSON *item)
{
    if (item == NULL)
        return 0;
    if (!cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        return 0;
    }
    return 1;
}

/* ---- activities ---- */

/* Appends line (len bytes) to dir/file with one write(2), so that no other
 * writer's line lands inside it. *end (if not NULL) receives the offset just
 * past our line. Returns 0, or -1 after a->api->fail. */
static int er_append(struct wf_activity_ctx *a, const char *dir, const char *file, const char *line,
                     size_t len, off_t *end)
{
    char path[4096];
    ssize_t n;
    int fd, e;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path)) {
        a->api->fail(a, "bad input: path too long");
        return -1;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        a->api->fail(a, "could not open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    n = write(fd, line, len);
    e = errno;
    if (n != (ssize_t)len) {
        a->api->fail(a, "could not append to \"%s\": %s", path,
                     n < 0 ? strerror(e) : "short write");
        close(fd);
        return -1;
    }
    /* O_APPEND moved our offset to the end of what we wrote: that end is
     * ours even when other processes appended since. */
    if (end != NULL)
        *end = lseek(fd, 0, SEEK_CUR);
    close(fd);
    return 0;
}

static enum wf_status er_record(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const char *dir = er_str(in, "dir"), *run = er_str(in, "run");
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(in, "payload");
    struct timespec now;
    char line[512];
    long long step, ms;
    cJSON *o;
    int n;

    if (dir == NULL || run == NULL || run[0] == '\0' || run[strcspn(run, " \n")] != '\0' ||
        er_int(in, "step", -1, 0, ER_N_MAX, &step) != 0 || step < 0 ||
        er_int(in, "ms", 0, 0, 10000, &ms) != 0) {
        a->api->fail(a, "bad input: record needs {dir, run, step, ms?}");
        return WF_EINVAL;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    n = snprintf(line, sizeof(line), "%s %lld %d %ld %lld" ER_LINE_TAG "\n", run, step, a->attempt,
                 (long)getpid(), (long long)now.tv_sec * 1000000 + (long long)(now.tv_nsec / 1000));
    if (n < 0 || (size_t)n >= sizeof(line)) {
        a->api->fail(a, "bad input: run id too long");
        return WF_EINVAL;
    }
    if (er_append(a, dir, "invocations.log", line, (size_t)n, NULL) != 0)
        return WF_ERROR;
    if (ms > 0) {
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddNumberToObject(o, "step", (double)step) == NULL ||
        !er_add(o, "echo", payload != NULL ? cJSON_Duplicate(payload, 1) : cJSON_CreateNull())) {
        cJSON_Delete(o);
        a->api->fail(a, "out of memory");
        return WF_ENOMEM;
    }
    *out = o;
    return WF_OK;
}

static enum wf_status er_flaky(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const char *dir = er_str(in, "dir"), *key = er_str(in, "key");
    char file[80], line[ER_FLAKY_LINE + 1];
    long long failures, calls;
    off_t end = -1;
    cJSON *o;

    if (dir == NULL || key == NULL || !er_valid_key(key) ||
        er_int(in, "failures", 0, 0, ER_N_MAX, &failures) != 0) {
        a->api->fail(a, "bad input: flaky needs {dir, key, failures}");
        return WF_EINVAL;
    }
    snprintf(file, sizeof(file), "flaky-%s", key);
    if (snprintf(line, sizeof(line), "%11d %11ld\n", a->attempt, (long)getpid()) != ER_FLAKY_LINE) {
        a->api->fail(a, "attempt or pid out of range");
        return WF_ERROR;
    }
    if (er_append(a, dir, file, line, ER_FLAKY_LINE, &end) != 0)
        return WF_ERROR;
    if (end <= 0 || end % ER_FLAKY_LINE != 0) {
        a->api->fail(a, "%s/%s is not a file of flaky's lines", dir, file);
        return WF_ERROR;
    }
    calls = (long long)(end / ER_FLAKY_LINE);
    if (calls <= failures) {
        a->api->fail(a, "flaky failure %d", (int)calls);
        return WF_ERROR;
    }
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddNumberToObject(o, "calls", (double)calls) == NULL) {
        cJSON_Delete(o);
        a->api->fail(a, "out of memory");
        return WF_ENOMEM;
    }
    *out = o;
    return WF_OK;
}

static enum wf_status er_fail_always(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const char *reason = er_str(in, "reason");

    (void)out;
    a->api->fail(a, "boom: %s", reason != NULL ? reason : "no reason");
    return WF_ERROR;
}

static enum wf_status er_invalid(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    (void)in;
    (void)out;
    a->api->fail(a, "bad input");
    return WF_EINVAL;
}

/* Milliseconds of CLOCK_MONOTONIC. */
static long long er_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum wf_status er_slow(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    long long ms, t0 = er_mono_ms(), left;
    cJSON *o;

    if (er_int(in, "ms", 0, 0, 3600000, &ms) != 0) {
        a->api->fail(a, "bad input: slow needs {ms}, 0 to 3600000");
        return WF_EINVAL;
    }
    for (;;) {
        struct timespec ts;
        if (a->api->cancelled(a)) {
            a->api->fail(a, "cancelled after %lld ms", er_mono_ms() - t0);
            return WF_ECANCELLED;
        }
        left = ms - (er_mono_ms() - t0);
        if (left <= 0)
            break;
        if (left > ER_SLICE_MS)
            left = ER_SLICE_MS;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL);
    }
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddNumberToObject(o, "sleptMs", (double)ms) == NULL) {
        cJSON_Delete(o);
        a->api->fail(a, "out of memory");
        return WF_ENOMEM;
    }
    *out = o;
    return WF_OK;
}

static enum wf_status er_big(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    long long bytes;
    char *data;
    cJSON *o;

    if (er_int(in, "bytes", -1, 0, ER_BIG_MAX, &bytes) != 0 || bytes < 0) {
        a->api->fail(a, "bad input: big needs {bytes}, 0 to %lld", ER_BIG_MAX);
        return WF_EINVAL;
    }
    data = malloc((size_t)bytes + 1);
    if (data == NULL) {
        a->api->fail(a, "out of memory for %lld bytes", bytes);
        return WF_ENOMEM;
    }
    memset(data, 'x', (size_t)bytes);
    data[bytes] = '\0';
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "data", data) == NULL) {
        cJSON_Delete(o);
        free(data);
        a->api->fail(a, "out of memory for %lld bytes", bytes);
        return WF_ENOMEM;
    }
    free(data);
    *out = o;
    return WF_OK;
}

static enum wf_status er_noop(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    (void)in;
    *out = cJSON_CreateObject();
    if (*out == NULL) {
        a->api->fail(a, "out of memory");
        return WF_ENOMEM;
    }
    return WF_OK;
}

/* ---- workflows ---- */

/*
 * Runs activity name with in, which it takes over and deletes (NULL: building
 * it ran out of memory). WF_OK: *out (if out is not NULL) is the result,
 * which the caller frees; else it is deleted here. Any other status but
 * WF_SUSPEND is logged with the host's error.
 */
static enum wf_status er_call(struct wf_ctx *ctx, const char *name, cJSON *in, cJSON **out)
{
    cJSON *result = NULL;
    enum wf_status st;

    if (out != NULL)
        *out = NULL;
    if (in == NULL)
        return WF_ENOMEM;
    st = ctx->api->activity(ctx, name, in, &result);
    cJSON_Delete(in);
    if (st != WF_OK) {
        cJSON_Delete(result); /* NULL by contract; a lenient host costs nothing */
        if (st != WF_SUSPEND)
            ctx->api->log(ctx, WF_LOG_ERROR, "activity %s failed: %s", name, ctx->api->error(ctx));
        return st;
    }
    if (out != NULL)
        *out = result;
    else
        cJSON_Delete(result);
    return WF_OK;
}

/* Logs that the workflow's input is unusable; returns WF_EINVAL. */
static enum wf_status er_bad_input(struct wf_ctx *ctx, const char *what)
{
    ctx->api->log(ctx, WF_LOG_ERROR, "bad input: %s", what);
    return WF_EINVAL;
}

/* Runs record steps first..last-1 with payload (may be NULL) and ms (0:
 * none), adding to *sum each result that names the step asked for. */
static enum wf_status er_record_steps(struct wf_ctx *ctx, const char *dir, long long first,
                                      long long last, const cJSON *payload, long long ms,
                                      long long *sum)
{
    for (long long i = first; i < last; i++) {
        cJSON *in = cJSON_CreateObject(), *res = NULL;
        const cJSON *step;
        enum wf_status st;

        if (in != NULL &&
            (cJSON_AddStringToObject(in, "dir", dir) == NULL ||
             cJSON_AddStringToObject(in, "run", ctx->execution_id) == NULL ||
             cJSON_AddNumberToObject(in, "step", (double)i) == NULL ||
             (ms > 0 && cJSON_AddNumberToObject(in, "ms", (double)ms) == NULL) ||
             (payload != NULL && !er_add(in, "payload", cJSON_Duplicate(payload, 1))))) {
            cJSON_Delete(in);
            in = NULL;
        }
        st = er_call(ctx, "record", in, &res);
        if (st != WF_OK)
            return st;
        step = cJSON_GetObjectItemCaseSensitive(res, "step");
        if (cJSON_IsNumber(step) && step->valuedouble == (double)i)
            (*sum)++;
        cJSON_Delete(res);
    }
    return WF_OK;
}

/* A new {"sum", "steps", "version"} (NULL: no memory). */
static cJSON *er_steps_result(long long steps, long long sum)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddNumberToObject(o, "sum", (double)sum) == NULL ||
        cJSON_AddNumberToObject(o, "steps", (double)steps) == NULL ||
        cJSON_AddNumberToObject(o, "version", ER_VERSION) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Sets *output to o, or answers WF_ENOMEM when o is NULL. */
static enum wf_status er_done(cJSON *o, cJSON **output)
{
    if (o == NULL)
        return WF_ENOMEM;
    *output = o;
    return WF_OK;
}

static enum wf_status wf_steps(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *dir = er_str(input, "dir");
    long long n, ms, sum = 0;
    enum wf_status st;

    if (dir == NULL || er_int(input, "n", 20, 0, ER_N_MAX, &n) != 0 ||
        er_int(input, "step_ms", 0, 0, 10000, &ms) != 0)
        return er_bad_input(ctx, "steps needs {dir, n?, payload?, step_ms?}");
    st = er_record_steps(ctx, dir, 0, n, cJSON_GetObjectItemCaseSensitive(input, "payload"), ms,
                         &sum);
    if (st != WF_OK)
        return st;
    return er_done(er_steps_result(n, sum), output);
}

static enum wf_status wf_sleepy(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *dir = er_str(input, "dir");
    long long n, ms, step_ms, sum = 0;
    enum wf_status st;

    if (dir == NULL || er_int(input, "n", 20, 0, ER_N_MAX, &n) != 0 ||
        er_int(input, "sleep_ms", 100, 0, INT64_MAX / 2, &ms) != 0 ||
        er_int(input, "step_ms", 0, 0, 10000, &step_ms) != 0)
        return er_bad_input(ctx, "sleepy needs {dir, n?, sleep_ms?, step_ms?}");
    st = er_record_steps(ctx, dir, 0, n / 2, NULL, step_ms, &sum);
    if (st != WF_OK)
        return st;
    st = ctx->api->sleep(ctx, ms);
    if (st != WF_OK) {
        if (st != WF_SUSPEND)
            ctx->api->log(ctx, WF_LOG_ERROR, "sleep failed: %s", ctx->api->error(ctx));
        return st;
    }
    st = er_record_steps(ctx, dir, n / 2, n, NULL, step_ms, &sum);
    if (st != WF_OK)
        return st;
    return er_done(er_steps_result(n, sum), output);
}

static enum wf_status wf_waiter(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *dir = er_str(input, "dir"), *sig = er_str(input, "signal");
    long long n, timeout, step_ms, sum = 0;
    cJSON *payload = NULL, *o;
    enum wf_status st, waited;

    if (dir == NULL || er_int(input, "n", 20, 0, ER_N_MAX, &n) != 0 ||
        er_int(input, "timeout_ms", -1, -1, INT64_MAX / 2, &timeout) != 0 ||
        er_int(input, "step_ms", 0, 0, 10000, &step_ms) != 0)
        return er_bad_input(ctx, "waiter needs {dir, n?, signal?, timeout_ms?, step_ms?}");
    if (sig == NULL)
        sig = "go";
    st = er_record_steps(ctx, dir, 0, n / 2, NULL, step_ms, &sum);
    if (st != WF_OK)
        return st;
    waited = ctx->api->wait_signal(ctx, sig, timeout, &payload);
    if (waited == WF_SUSPEND)
        return WF_SUSPEND;
    if (waited != WF_OK && waited != WF_ETIMEDOUT) {
        ctx->api->log(ctx, WF_LOG_ERROR, "waiting for %s failed: %s", sig, ctx->api->error(ctx));
        cJSON_Delete(payload);
        return waited;
    }
    st = er_record_steps(ctx, dir, n / 2, n, NULL, step_ms, &sum);
    if (st != WF_OK) {
        cJSON_Delete(payload);
        return st;
    }
    o = er_steps_result(n, sum);
    if (o == NULL) {
        cJSON_Delete(payload);
        return WF_ENOMEM;
    }
    if (waited == WF_OK) {
        if (!er_add(o, "payload", payload != NULL ? payload : cJSON_CreateNull())) {
            cJSON_Delete(o);
            return WF_ENOMEM;
        }
    } else {
        cJSON_Delete(payload);
        if (cJSON_AddBoolToObject(o, "timedOut", 1) == NULL) {
            cJSON_Delete(o);
            return WF_ENOMEM;
        }
    }
    *output = o;
    return WF_OK;
}

static enum wf_status wf_retrying(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *dir = er_str(input, "dir"), *key = er_str(input, "key");
    long long failures;
    const cJSON *calls;
    cJSON *in, *res = NULL, *o;
    enum wf_status st;

    if (dir == NULL || key == NULL || er_int(input, "failures", 0, 0, ER_N_MAX, &failures) != 0)
        return er_bad_input(ctx, "retrying needs {dir, key, failures?}");
    in = cJSON_CreateObject();
    if (in != NULL && (cJSON_AddStringToObject(in, "dir", dir) == NULL ||
                       cJSON_AddStringToObject(in, "key", key) == NULL ||
                       cJSON_AddNumberToObject(in, "failures", (double)failures) == NULL)) {
        cJSON_Delete(in);
        in = NULL;
    }
    st = er_call(ctx, "flaky", in, &res);
    if (st != WF_OK)
        return st;
    calls = cJSON_GetObjectItemCaseSensitive(res, "calls");
    o = cJSON_CreateObject();
    if (o == NULL ||
        cJSON_AddNumberToObject(o, "calls", cJSON_IsNumber(calls) ? calls->valuedouble : -1) ==
            NULL ||
        cJSON_AddNumberToObject(o, "version", ER_VERSION) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    cJSON_Delete(res);
    return er_done(o, output);
}

static enum wf_status wf_failing(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *reason = er_str(input, "reason");
    cJSON *in = cJSON_CreateObject();
    enum wf_status st;

    (void)output;
    if (in != NULL && reason != NULL && cJSON_AddStringToObject(in, "reason", reason) == NULL) {
        cJSON_Delete(in);
        in = NULL;
    }
    st = er_call(ctx, "fail_always", in, NULL); /* logs ctx->api->error(ctx) */
    if (st == WF_OK) {
        ctx->api->log(ctx, WF_LOG_ERROR, "fail_always succeeded, which it never does");
        return WF_ERROR;
    }
    return st;
}

/*
 * DELIBERATELY WRONG, for the engine's non-determinism check: which activity
 * this workflow asks for depends on process state, not on its input and the
 * host's answers. The first time this process runs a run it asks for
 * record; any later time (a replay in the same worker) it asks for
 * fail_always. Kept per run id, not as one counter, so that concurrent runs
 * of it do not change each other's answers. Never write a workflow like this.
 */
#define ER_SEEN_MAX 256
static pthread_mutex_t er_seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char er_seen[ER_SEEN_MAX][64];
static int er_nseen;

/* 1 the first time this process sees run id (or when it cannot tell: the id
 * is too long), 0 afterwards (and once the table is full). */
static int er_first_time(const char *id)
{
    int first = 1;

    if (strlen(id) >= sizeof(er_seen[0]))
        return 1;
    pthread_mutex_lock(&er_seen_lock);
    for (int i = 0; i < er_nseen; i++) {
        if (strcmp(er_seen[i], id) == 0) {
            first = 0;
            break;
        }
    }
    if (first && er_nseen < ER_SEEN_MAX)
        snprintf(er_seen[er_nseen++], sizeof(er_seen[0]), "%s", id);
    else if (first)
        first = 0;
    pthread_mutex_unlock(&er_seen_lock);
    return first;
}

static enum wf_status wf_nondeterministic(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *dir = er_str(input, "dir");
    const char *name;
    long long ms;
    cJSON *in, *o;
    enum wf_status st;

    if (dir == NULL || er_int(input, "sleep_ms", 10, 0, INT64_MAX / 2, &ms) != 0)
        return er_bad_input(ctx, "nondeterministic needs {dir, sleep_ms?}");
    in = cJSON_CreateObject();
    if (er_first_time(ctx->execution_id)) {
        name = "record";
        if (in != NULL && (cJSON_AddStringToObject(in, "dir", dir) == NULL ||
                           cJSON_AddStringToObject(in, "run", ctx->execution_id) == NULL ||
                           cJSON_AddNumberToObject(in, "step", 0) == NULL)) {
            cJSON_Delete(in);
            in = NULL;
        }
    } else {
        name = "fail_always";
        if (in != NULL && cJSON_AddStringToObject(in, "reason", "nondeterministic") == NULL) {
            cJSON_Delete(in);
            in = NULL;
        }
    }
    st = er_call(ctx, name, in, NULL);
    if (st != WF_OK)
        return st;
    /* Park the run, so that waking it replays this function. */
    st = ctx->api->sleep(ctx, ms);
    if (st != WF_OK)
        return st;
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "asked", name) == NULL ||
        cJSON_AddNumberToObject(o, "version", ER_VERSION) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    return er_done(o, output);
}

static enum wf_status wf_clock(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *dir = er_str(input, "dir");
    long long sum = 0;
    int64_t t0, t1;
    enum wf_status st;
    cJSON *o;

    if (dir == NULL)
        return er_bad_input(ctx, "clock needs {dir}");
    t0 = ctx->api->now(ctx);
    st = er_record_steps(ctx, dir, 0, 1, NULL, 0, &sum);
    if (st != WF_OK)
        return st;
    t1 = ctx->api->now(ctx);
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddNumberToObject(o, "before", (double)t0) == NULL ||
        cJSON_AddNumberToObject(o, "after", (double)t1) == NULL ||
        cJSON_AddNumberToObject(o, "version", ER_VERSION) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    return er_done(o, output);
}

static enum wf_status wf_big_io(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *data = er_str(input, "data");
    const cJSON *got;
    long long bytes;
    cJSON *in, *res = NULL, *o;
    enum wf_status st;
    size_t len;

    if (er_int(input, "bytes", 0, 0, ER_BIG_MAX, &bytes) != 0)
        return er_bad_input(ctx, "big-io needs {bytes?, data?}");
    in = cJSON_CreateObject();
    if (in != NULL && cJSON_AddNumberToObject(in, "bytes", (double)bytes) == NULL) {
        cJSON_Delete(in);
        in = NULL;
    }
    st = er_call(ctx, "big", in, &res);
    if (st != WF_OK)
        return st;
    got = cJSON_GetObjectItemCaseSensitive(res, "data");
    len = cJSON_IsString(got) ? strlen(got->valuestring) : 0;
    cJSON_Delete(res);
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddNumberToObject(o, "bytes", (double)bytes) == NULL ||
        cJSON_AddNumberToObject(o, "length", (double)len) == NULL ||
        (data != NULL && cJSON_AddNumberToObject(o, "inputLength", (double)strlen(data)) == NULL) ||
        cJSON_AddNumberToObject(o, "version", ER_VERSION) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    return er_done(o, output);
}

/* Runs noop count times; {"ok": true}. */
static enum wf_status er_noops(struct wf_ctx *ctx, int count, cJSON **output)
{
    cJSON *o;

    for (int i = 0; i < count; i++) {
        enum wf_status st = er_call(ctx, "noop", cJSON_CreateObject(), NULL);
        if (st != WF_OK)
            return st;
    }
    o = cJSON_CreateObject();
    if (o != NULL && cJSON_AddBoolToObject(o, "ok", 1) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    return er_done(o, output);
}

static enum wf_status wf_one_step(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    (void)input;
    return er_noops(ctx, 1, output);
}

static enum wf_status wf_five_steps(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    (void)input;
    return er_noops(ctx, 5, output);
}

/* mixed: the compiled twin of bench/decl-mixed.json (set, call, switch,
 * set, call), for the interpreter's benchmark. */
static enum wf_status wf_mixed(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(input, "n");
    double n = cJSON_IsNumber(nv) ? nv->valuedouble : 1;
    cJSON *data = cJSON_CreateObject(), *o;
    enum wf_status st;

    /* set */
    if (data == NULL || cJSON_AddNumberToObject(data, "n", n) == NULL ||
        cJSON_AddStringToObject(data, "tag", "x") == NULL) {
        cJSON_Delete(data);
        return WF_ENOMEM;
    }
    /* call noop with {n} */
    o = cJSON_CreateObject();
    if (o != NULL)
        cJSON_AddNumberToObject(o, "n", n);
    st = er_call(ctx, "noop", o, NULL);
    if (st != WF_OK) {
        cJSON_Delete(data);
        return st;
    }
    /* switch, then set */
    cJSON_DeleteItemFromObjectCaseSensitive(data, "tag");
    cJSON_AddStringToObject(data, "kind", n > 0 ? "positive" : "other");
    /* call noop with the data */
    st = er_call(ctx, "noop", cJSON_Duplicate(data, 1), NULL);
    if (st != WF_OK) {
        cJSON_Delete(data);
        return st;
    }
    return er_done(data, output);
}

static enum wf_status wf_one_activity(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *name = er_str(input, "activity");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(input, "input");
    cJSON *res = NULL, *o;
    enum wf_status st;

    if (name == NULL)
        return er_bad_input(ctx, "one-activity needs {activity, input?}");
    st = er_call(ctx, name, args != NULL ? cJSON_Duplicate(args, 1) : cJSON_CreateObject(), &res);
    if (st != WF_OK)
        return st;
    o = cJSON_CreateObject();
    if (o == NULL) {
        cJSON_Delete(res);
        return WF_ENOMEM;
    }
    if (!er_add(o, "result", res)) {
        cJSON_Delete(o);
        return WF_ENOMEM;
    }
    if (cJSON_AddNumberToObject(o, "version", ER_VERSION) == NULL) {
        cJSON_Delete(o);
        return WF_ENOMEM;
    }
    *output = o;
    return WF_OK;
}

static enum wf_status wf_fan(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *dir = er_str(input, "dir");
    long long k, n, limit, ms, sum = 0;
    cJSON *specs, *res = NULL, *o;
    const cJSON *r;
    enum wf_status st;

    if (dir == NULL || er_int(input, "k", 3, 0, 1000, &k) != 0 ||
        er_int(input, "n", 5, 0, ER_N_MAX, &n) != 0 ||
        er_int(input, "limit", 0, 0, 1000, &limit) != 0 ||
        er_int(input, "step_ms", 0, 0, 10000, &ms) != 0)
        return er_bad_input(ctx, "fan needs {dir, k?, n?, limit?, step_ms?}");
    if (!WF_HAS_FIELD(ctx->api, struct wf_host_api, children))
        return er_bad_input(ctx, "fan needs a host with child runs");
    specs = cJSON_CreateArray();
    for (long long i = 0; specs != NULL && i < k; i++) {
        cJSON *one = cJSON_CreateObject(), *in;
        cJSON_AddItemToArray(specs, one);
        cJSON_AddStringToObject(one, "workflow", "steps");
        in = cJSON_AddObjectToObject(one, "input");
        cJSON_AddStringToObject(in, "dir", dir);
        cJSON_AddNumberToObject(in, "n", (double)n);
        cJSON_AddNumberToObject(in, "step_ms", (double)ms);
    }
    if (specs == NULL)
        return WF_ENOMEM;
    st = ctx->api->children(ctx, specs, WF_JOIN_ALL, (int)limit, &res);
    cJSON_Delete(specs);
    if (st != WF_OK) {
        if (st != WF_SUSPEND)
            ctx->api->log(ctx, WF_LOG_ERROR, "children failed: %s", ctx->api->error(ctx));
        cJSON_Delete(res);
        return st;
    }
    cJSON_ArrayForEach(r, res)
    {
        sum += (long long)cJSON_GetNumberValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "output"), "sum"));
    }
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddNumberToObject(o, "children", cJSON_GetArraySize(res)) == NULL ||
        cJSON_AddNumberToObject(o, "sum", (double)sum) == NULL ||
        cJSON_AddNumberToObject(o, "version", ER_VERSION) == NULL) {
        cJSON_Delete(res);
        cJSON_Delete(o);
        return WF_ENOMEM;
    }
    cJSON_Delete(res);
    return er_done(o, output);
}

/* ---- the descriptor ---- */

static const struct wf_workflow_def er_workflows[] = {
    {"steps", wf_steps},
    {"sleepy", wf_sleepy},
    {"waiter", wf_waiter},
    {"retrying", wf_retrying},
    {"failing", wf_failing},
    {"nondeterministic", wf_nondeterministic},
    {"clock", wf_clock},
    {"big-io", wf_big_io},
    {"one-step", wf_one_step},
    {"five-steps", wf_five_steps},
    {"one-activity", wf_one_activity},
    {"mixed", wf_mixed},
    {"fan", wf_fan},
};

static const struct wf_activity_def er_activities[] = {
    {"record", er_record, WF_RETRY_DEFAULT, 30000},
    {"flaky", er_flaky, {3, 100, 2.0, 1000}, 10000},
    {"fail_always", er_fail_always, {3, 10, 2.0, 100}, 10000},
    {"invalid", er_invalid, {3, 10, 2.0, 100}, 10000},
    {"slow", er_slow, WF_RETRY_NONE, 60000},
    {"big", er_big, WF_RETRY_NONE, 30000},
    {"noop", er_noop, WF_RETRY_DEFAULT, 10000},
};

WF_PLUGIN_DEFINE("engine-recorder", ER_PLUGIN_VERSION, er_workflows,
                 sizeof(er_workflows) / sizeof(er_workflows[0]), er_activities,
                 sizeof(er_activities) / sizeof(er_activities[0]))

#endif
