/*
 * approval.c: example workflow `approval-flow`, a request that waits for a
 * human decision.
 *
 *     input   {"request": {"title": "new laptop", "amount": 1800, …}}
 *     signal  "approval" with {"approved": true|false, "by": "…", "reason": "…"}
 *     output  {"status": "approved", "by", "result"}
 *           | {"status": "rejected", "by", "reason"}
 *           | {"status": "expired"}            no decision within 24 hours
 *           | {"status": "invalid", "errors"}  the request failed validation:
 *                                              [{field, rule, message}]
 *
 * Steps:
 *   1. validateData {data: request, rules: {title: {required, type: "string",
 *                   minLength: 1}, amount: {type: "number", min: 0}}}
 *                   → {valid, errors}
 *   2. logMessage   "approval requested", with the request
 *   3. wait_signal  "approval", for at most 24 hours. While no signal has
 *      arrived the call returns WF_SUSPEND and the workflow returns it: the
 *      run is parked in the database (status "waiting"), holds no thread and
 *      no memory, survives worker restarts, and is woken by the signal or
 *      the timeout. When it wakes, the host replays this function from the
 *      top: steps 1 and 2 return their recorded results without running
 *      again, and wait_signal returns the payload.
 *   4. approved: sampleActivity {message: title} carries out the approved
 *      request (a stand-in for the real work), then logMessage; rejected or
 *      expired: logMessage.
 *
 * Rules of plugin.h followed here: only ctx->api does side effects (the
 * clock and the 24 hours are the host's, not time()); every WF_SUSPEND is
 * returned at once; input trees we build are ours and deleted after each
 * call, outputs we receive are ours and deleted, *output becomes the host's.
 *
 *     wfctl deploy --project p1 plugins/examples/approval.c && wfctl restart p1
 *     wfctl run p1 approval-flow '{"request":{"title":"new laptop","amount":1800}}'
 *     then send the "approval" signal to the run (the executions API)
 */
#include <stdint.h>

#include <wf/plugin.h>

/* How long a request may wait for its decision. */
#define APPROVAL_TIMEOUT_MS ((int64_t)24 * 60 * 60 * 1000)

/*
 * Runs activity `name` with `in`, which it takes over and deletes (NULL:
 * building it ran out of memory). On WF_OK *out is the result, which the
 * caller frees; out may be NULL to discard it here. Logs a failure.
 */
static enum wf_status call_activity(struct wf_ctx *ctx, const char *name, cJSON *in, cJSON **out)
{
    cJSON *result = NULL;
    enum wf_status st;

    if (out != NULL)
        *out = NULL;
    if (in == NULL)
        return WF_ENOMEM;
    st = ctx->api->activity(ctx, name, in, &result);
    cJSON_Delete(in);
    if (st != WF_OK && st != WF_SUSPEND)
        ctx->api->log(ctx, WF_LOG_ERROR, "%s failed: %s", name, ctx->api->error(ctx));
    if (out != NULL)
        *out = result;
    else
        cJSON_Delete(result);
    return st;
}

/* logMessage {level, message, data}; data (may be NULL) is borrowed and
 * copied into the activity's input. */
static enum wf_status log_message(struct wf_ctx *ctx, const char *level, const char *message,
                                  const cJSON *data)
{
    cJSON *in = cJSON_CreateObject();

    cJSON_AddStringToObject(in, "level", level);
    cJSON_AddStringToObject(in, "message", message);
    if (data != NULL)
        cJSON_AddItemToObject(in, "data", cJSON_Duplicate(data, 1));
    return call_activity(ctx, "logMessage", in, NULL);
}

/* A new {"status": status} object for the run's output (NULL: no memory). */
static cJSON *outcome(const char *status)
{
    cJSON *o = cJSON_CreateObject();

    if (o != NULL && cJSON_AddStringToObject(o, "status", status) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Copies member key of from (if present) into to. */
static void copy_member(cJSON *to, const cJSON *from, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(from, key);

    if (it != NULL)
        cJSON_AddItemToObject(to, key, cJSON_Duplicate(it, 1));
}

/* Step 4 for an approved request: do the work, log, build the output. */
static enum wf_status carry_out(struct wf_ctx *ctx, const cJSON *request, const cJSON *decision,
                                cJSON **output)
{
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(request, "title");
    cJSON *in = cJSON_CreateObject(), *result = NULL, *out;
    enum wf_status st;

    cJSON_AddStringToObject(in, "message",
                            cJSON_IsString(title) ? title->valuestring : "approved request");
    st = call_activity(ctx, "sampleActivity", in, &result);
    if (st != WF_OK)
        return st;
    st = log_message(ctx, "info", "request approved and carried out", decision);
    if (st != WF_OK) {
        cJSON_Delete(result);
        return st;
    }
    out = outcome("approved");
    if (out == NULL) {
        cJSON_Delete(result);
        return WF_ENOMEM;
    }
    copy_member(out, decision, "by");
    cJSON_AddItemToObject(out, "result", result); /* out owns result now */
    *output = out;
    return WF_OK;
}

static enum wf_status approval_flow(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const cJSON *request = cJSON_GetObjectItemCaseSensitive(input, "request");
    const cJSON *valid, *approved;
    cJSON *in, *rules, *rule, *check = NULL, *decision = NULL, *out;
    enum wf_status st;

    /* 1. Validate the request: a title, and an amount that is a number of
     * at least 0 when present. validateData checks the members of an
     * object, so anything else is refused here (not worth retrying). */
    if (!cJSON_IsObject(request)) {
        ctx->api->log(ctx, WF_LOG_ERROR, "input needs an object \"request\"");
        return WF_EINVAL;
    }
    in = cJSON_CreateObject();
    cJSON_AddItemToObject(in, "data", cJSON_Duplicate(request, 1));
    rules = cJSON_AddObjectToObject(in, "rules");
    rule = cJSON_AddObjectToObject(rules, "title");
    cJSON_AddBoolToObject(rule, "required", 1);
    cJSON_AddStringToObject(rule, "type", "string");
    cJSON_AddNumberToObject(rule, "minLength", 1);
    rule = cJSON_AddObjectToObject(rules, "amount");
    cJSON_AddStringToObject(rule, "type", "number");
    cJSON_AddNumberToObject(rule, "min", 0);
    st = call_activity(ctx, "validateData", in, &check);
    if (st != WF_OK)
        return st;
    valid = cJSON_GetObjectItemCaseSensitive(check, "valid");
    if (!cJSON_IsTrue(valid)) {
        out = outcome("invalid");
        if (out == NULL) {
            cJSON_Delete(check);
            return WF_ENOMEM;
        }
        copy_member(out, check, "errors");
        cJSON_Delete(check);
        *output = out;
        return WF_OK;
    }
    cJSON_Delete(check);

    /* 2. Tell whoever watches the logs that a decision is needed. */
    st = log_message(ctx, "info", "approval requested", request);
    if (st != WF_OK)
        return st;

    /* 3. Wait for the decision. WF_SUSPEND: parked until the signal or the
     * timeout; return it now, this function runs again on wake-up. */
    st = ctx->api->wait_signal(ctx, "approval", APPROVAL_TIMEOUT_MS, &decision);
    if (st == WF_SUSPEND)
        return WF_SUSPEND;
    if (st == WF_ETIMEDOUT) {
        st = log_message(ctx, "warn", "approval request expired", request);
        if (st != WF_OK)
            return st;
        out = outcome("expired");
        if (out == NULL)
            return WF_ENOMEM;
        *output = out;
        return WF_OK;
    }
    if (st != WF_OK) {
        ctx->api->log(ctx, WF_LOG_ERROR, "waiting for approval failed: %s", ctx->api->error(ctx));
        return st;
    }

    /* 4. Act on it. Anything but {"approved": true} is a rejection. */
    approved = cJSON_GetObjectItemCaseSensitive(decision, "approved");
    if (cJSON_IsTrue(approved)) {
        st = carry_out(ctx, request, decision, output);
        cJSON_Delete(decision);
        return st;
    }
    st = log_message(ctx, "info", "request rejected", decision);
    if (st != WF_OK) {
        cJSON_Delete(decision);
        return st;
    }
    out = outcome("rejected");
    if (out == NULL) {
        cJSON_Delete(decision);
        return WF_ENOMEM;
    }
    copy_member(out, decision, "by");
    copy_member(out, decision, "reason");
    cJSON_Delete(decision);
    *output = out;
    return WF_OK;
}

static const struct wf_workflow_def workflows[] = {
    {"approval-flow", approval_flow},
};

/* Workflows only: the activities come from the sample-activities plugin. */
WF_PLUGIN_DEFINE("example-approval", "1.0.0", workflows, 1, NULL, 0)
