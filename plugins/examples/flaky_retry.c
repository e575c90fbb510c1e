/*
 * flaky_retry.c: example workflow `retry-demo`, calling a flaky HTTP
 * endpoint in several phases with durable pauses between them.
 *
 *     input   {"url": "http://…/flaky", "phases": 3, "pauseMs": 2000,
 *              "maxAttempts": 4, "timeoutMs": 5000}    (all but url optional)
 *     output  {"startedAt": <ms>, "phases": [{"phase", "status", "attempts"}]}
 *
 * Two layers of retrying, both durable:
 *   - Transport failures (connection refused, reset, no answer within
 *     timeoutMs) make the httpRequest activity fail, and the host retries it
 *     by the activity's own retry policy (declared by the sample-activities
 *     plugin: WF_RETRY_DEFAULT, 3 attempts, 1 s, doubling). The workflow does nothing for these:
 * its activity call simply returns WF_SUSPEND while a retry waits for its backoff (the workflow
 * returns it, the run is parked), and WF_OK once an attempt succeeds. Only when every attempt
 * failed does the call return an error, which fails the run with the activity's message.
 *   - An endpoint that answers 5xx or 429 did answer: httpRequest succeeds
 *     and reports the status. The workflow retries those itself, up to
 *     maxAttempts, sleeping 500 ms, 1 s, 2 s, … between tries with
 *     ctx->api->sleep, a durable timer: the run is parked in the database,
 *     not a thread, and a worker restart in the middle loses nothing.
 * Between phases the workflow sleeps pauseMs the same way.
 *
 * Determinism: loops are fine, as long as every decision depends only on the
 * input and on what host calls returned; a replay then takes the same path
 * and each call finds its recorded result. The start time comes from
 * ctx->api->now, never from time().
 *
 *     wfctl deploy --project p1 plugins/examples/flaky_retry.c && wfctl restart p1
 *     wfctl run p1 retry-demo '{"url":"http://127.0.0.1:8080/flaky","phases":3}'
 */
#include <stdint.h>
#include <stdio.h>

#include <wf/plugin.h>

#define DEMO_MAX_PHASES 10
#define DEMO_MAX_ATTEMPTS 10
#define DEMO_FIRST_BACKOFF_MS 500

/* The integer member key of obj clamped to [lo, hi], or def when absent. */
static int int_in(const cJSON *obj, const char *key, int def, int lo, int hi)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    double v = cJSON_IsNumber(it) ? it->valuedouble : def;

    return v < lo ? lo : v > hi ? hi : (int)v;
}

/*
 * One GET of url through the httpRequest activity. Returns the activity's
 * status; on WF_OK *http_status is the answer's status code.
 */
static enum wf_status get_once(struct wf_ctx *ctx, const char *url, int timeout_ms, int phase,
                               int *http_status)
{
    cJSON *in = cJSON_CreateObject(), *headers, *reply = NULL;
    const cJSON *status;
    char phase_text[16];
    enum wf_status st;

    if (in == NULL)
        return WF_ENOMEM;
    cJSON_AddStringToObject(in, "url", url);
    cJSON_AddStringToObject(in, "method", "GET");
    /* a hanging endpoint is a failed attempt too, retried by the policy */
    cJSON_AddNumberToObject(in, "timeoutMs", timeout_ms);
    /* tell the endpoint which phase this is (handy in its logs) */
    headers = cJSON_AddObjectToObject(in, "headers");
    snprintf(phase_text, sizeof(phase_text), "%d", phase);
    cJSON_AddStringToObject(headers, "X-Demo-Phase", phase_text);
    st = ctx->api->activity(ctx, "httpRequest", in, &reply);
    cJSON_Delete(in); /* the host only borrowed it */
    if (st == WF_SUSPEND)
        return WF_SUSPEND; /* a retry of the activity is waiting: park the run */
    if (st != WF_OK) {
        ctx->api->log(ctx, WF_LOG_ERROR, "httpRequest gave up on %s: %s", url,
                      ctx->api->error(ctx));
        return st;
    }
    status = cJSON_GetObjectItemCaseSensitive(reply, "status");
    *http_status = cJSON_IsNumber(status) ? status->valueint : 0;
    cJSON_Delete(reply); /* ours: only its status mattered */
    return WF_OK;
}

/*
 * One phase: GETs until the endpoint answers below 500 (and not 429), with
 * durable backoff sleeps between tries. Returns WF_OK with *http_status and
 * *attempts set, WF_SUSPEND, or a failure.
 */
static enum wf_status run_phase(struct wf_ctx *ctx, const char *url, int timeout_ms, int phase,
                                int max_attempts, int *http_status, int *attempts)
{
    int64_t backoff = DEMO_FIRST_BACKOFF_MS;
    enum wf_status st;

    for (int attempt = 1; attempt <= max_attempts; attempt++) {
        st = get_once(ctx, url, timeout_ms, phase, http_status);
        if (st != WF_OK)
            return st;
        *attempts = attempt;
        if (*http_status < 500 && *http_status != 429)
            break;
        ctx->api->log(ctx, WF_LOG_WARNING, "phase %d attempt %d: HTTP %d", phase, attempt,
                      *http_status);
        if (attempt == max_attempts)
            break;
        st = ctx->api->sleep(ctx, backoff);
        if (st != WF_OK)
            return st; /* WF_SUSPEND: parked until the backoff is over */
        backoff *= 2;
    }
    if (*http_status >= 400 || *http_status == 0) {
        ctx->api->log(ctx, WF_LOG_ERROR, "phase %d: %s answered HTTP %d after %d attempt(s)", phase,
                      url, *http_status, *attempts);
        return WF_ERROR;
    }
    return WF_OK;
}

static enum wf_status retry_demo(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(input, "url");
    int phases = int_in(input, "phases", 3, 1, DEMO_MAX_PHASES);
    int pause_ms = int_in(input, "pauseMs", 1000, 0, 3600 * 1000);
    int max_attempts = int_in(input, "maxAttempts", 4, 1, DEMO_MAX_ATTEMPTS);
    int timeout_ms = int_in(input, "timeoutMs", 5000, 1, 300000);
    cJSON *out, *list, *item;
    enum wf_status st = WF_OK;

    if (!cJSON_IsString(url)) {
        ctx->api->log(ctx, WF_LOG_ERROR, "input needs a string \"url\"");
        return WF_EINVAL;
    }
    out = cJSON_CreateObject();
    list = cJSON_CreateArray();
    if (out == NULL || list == NULL) {
        cJSON_Delete(out);
        cJSON_Delete(list);
        return WF_ENOMEM;
    }
    cJSON_AddItemToObject(out, "phases", list); /* out owns list */
    /* the host's clock, recorded: a replay sees the same start time */
    cJSON_AddNumberToObject(out, "startedAt", (double)ctx->api->now(ctx));

    for (int phase = 1; phase <= phases; phase++) {
        int http_status = 0, attempts = 0;

        if (phase > 1 && pause_ms > 0) {
            st = ctx->api->sleep(ctx, pause_ms);
            if (st != WF_OK)
                break; /* WF_SUSPEND included: out is freed below */
        }
        st = run_phase(ctx, url->valuestring, timeout_ms, phase, max_attempts, &http_status,
                       &attempts);
        if (st != WF_OK)
            break;
        item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "phase", phase);
        cJSON_AddNumberToObject(item, "status", http_status);
        cJSON_AddNumberToObject(item, "attempts", attempts);
        cJSON_AddItemToArray(list, item);
        ctx->api->log(ctx, WF_LOG_INFO, "phase %d done: HTTP %d after %d attempt(s)", phase,
                      http_status, attempts);
    }
    if (st != WF_OK) {
        /* suspended or failed: the partial output is ours to free; a
         * replay rebuilds it from the recorded steps */
        cJSON_Delete(out);
        return st;
    }
    *output = out; /* the host owns it now */
    return WF_OK;
}

static const struct wf_workflow_def workflows[] = {
    {"retry-demo", retry_demo},
};

/* Workflows only: the activities come from the sample-activities plugin. */
WF_PLUGIN_DEFINE("example-retry-demo", "1.0.0", workflows, 1, NULL, 0)
