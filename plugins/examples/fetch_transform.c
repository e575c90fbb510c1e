/*
 * fetch_transform.c: example workflow `fetch-and-transform`, an HTTP
 * fetch-and-transform pipeline.
 *
 *     input   {"url": "http://…", "fields": ["title", "author"], "operation": "uppercase"}
 *     output  {"url", "status", "operation", "result"}
 *
 * Steps, each one a durable activity call of the sample-activities plugin:
 *   1. httpRequest   {url, method: "GET"} → {status, statusText, data, headers}
 *                    (data: the body, decoded when it is JSON)
 *   2. transformData {data, operation: "pick", fields} → {result}, only when
 *                    the input names fields: keeps just those members
 *      transformData {data, operation} → {result}: "uppercase" by default
 *                    (every string value, at any depth); also lowercase,
 *                    trim, reverse, length, json_parse, json_stringify
 *   3. logMessage    {level: "info", message, data} → records what happened
 * and the workflow returns the result. An HTTP status of 400 or more fails
 * the run (the activity succeeded: the server answered; the workflow
 * decides that such an answer is a failure).
 *
 * How a workflow is written (include/wf/plugin.h):
 *   - Deterministic. The host replays a run by calling this function from the
 *     top; each ctx->api call already recorded returns its recorded result
 *     without running anything. So every side effect (the HTTP request, the
 *     clock) goes through ctx->api, and the code decides only on its input
 *     and on what the calls returned.
 *   - Any host call may return WF_SUSPEND (here: an activity waiting for its
 *     retry backoff); the workflow then returns WF_SUSPEND at once.
 *   - Ownership: an input tree we build is ours; the host only borrows it
 *     during the call, so we delete it afterwards. An output the host gives
 *     us is ours too and must be deleted. The tree we return in *output
 *     belongs to the host.
 *
 * Deploy it (the sample activities must be deployed to the same project):
 *     wfctl deploy --project p1 plugins/examples/fetch_transform.c
 *     wfctl restart p1
 *     wfctl run p1 fetch-and-transform \
 *         '{"url":"http://127.0.0.1:8080/item.json","fields":["title"]}'
 */
#include <string.h>

#include <wf/plugin.h>

/*
 * Runs activity `name` with the input tree `in`, which it takes over and
 * deletes whatever happens (so callers can build the input inline). Returns
 * the activity's status; on WF_OK *out is the result (caller frees).
 */
static enum wf_status call_activity(struct wf_ctx *ctx, const char *name, cJSON *in, cJSON **out)
{
    enum wf_status st;

    *out = NULL;
    if (in == NULL)
        return WF_ENOMEM; /* building the input ran out of memory */
    st = ctx->api->activity(ctx, name, in, out);
    cJSON_Delete(in);
    return st;
}

/* Logs why the activity `name` failed (the message of the last host call).
 * Returns st, so that a failing call reads `return failed(...)`. */
static enum wf_status failed(struct wf_ctx *ctx, const char *name, enum wf_status st)
{
    if (st != WF_SUSPEND)
        ctx->api->log(ctx, WF_LOG_ERROR, "%s failed: %s", name, ctx->api->error(ctx));
    return st;
}

/* The string member key of obj, or def when absent or not a string. */
static const char *str_or(const cJSON *obj, const char *key, const char *def)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(it) ? it->valuestring : def;
}

/*
 * transformData {data, operation, fields?} → {result}. data and fields are
 * borrowed (copied into the activity's input). On WF_OK *result is the
 * transformed value, detached from the activity's output (caller frees).
 */
static enum wf_status transform(struct wf_ctx *ctx, const cJSON *data, const char *operation,
                                const cJSON *fields, cJSON **result)
{
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    enum wf_status st;

    *result = NULL;
    /* copies: req must own what it holds, the caller keeps its trees */
    cJSON_AddItemToObject(req, "data", cJSON_Duplicate(data, 1));
    cJSON_AddStringToObject(req, "operation", operation);
    if (fields != NULL)
        cJSON_AddItemToObject(req, "fields", cJSON_Duplicate(fields, 1));
    st = call_activity(ctx, "transformData", req, &reply);
    if (st != WF_OK)
        return failed(ctx, "transformData", st);
    /* take "result" out of the reply, so that it outlives the reply */
    *result = cJSON_DetachItemFromObjectCaseSensitive(reply, "result");
    cJSON_Delete(reply);
    return *result != NULL ? WF_OK : WF_ERROR;
}

static enum wf_status fetch_and_transform(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    const char *url = str_or(input, "url", NULL);
    const char *operation = str_or(input, "operation", "uppercase");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(input, "fields");
    const cJSON *data, *status;
    cJSON *req, *reply = NULL, *picked = NULL, *result = NULL, *logged = NULL, *note, *out;
    enum wf_status st;

    /* Bad input is not worth retrying: WF_EINVAL fails the run at once. */
    if (url == NULL || (fields != NULL && !cJSON_IsArray(fields))) {
        ctx->api->log(ctx, WF_LOG_ERROR,
                      "input needs a string \"url\" (and \"fields\", if any, an array)");
        return WF_EINVAL;
    }

    /* 1. Fetch. Connection errors and timeouts make the activity fail, and
     * the host retries it by its policy; an HTTP error status is an answer,
     * which the workflow judges itself. */
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "url", url);
    cJSON_AddStringToObject(req, "method", "GET");
    st = call_activity(ctx, "httpRequest", req, &reply);
    if (st != WF_OK)
        return failed(ctx, "httpRequest", st);
    status = cJSON_GetObjectItemCaseSensitive(reply, "status");
    if (!cJSON_IsNumber(status) || status->valueint >= 400) {
        ctx->api->log(ctx, WF_LOG_ERROR, "GET %s answered HTTP %d", url,
                      cJSON_IsNumber(status) ? status->valueint : 0);
        cJSON_Delete(reply);
        return WF_ERROR;
    }
    data = cJSON_GetObjectItemCaseSensitive(reply, "data"); /* JSON decoded */

    /* 2. Transform: first keep only the named fields ("pick"), then apply
     * the operation (uppercase: every string value, at any depth). */
    if (fields != NULL) {
        st = transform(ctx, data, "pick", fields, &picked);
        if (st != WF_OK) {
            cJSON_Delete(reply);
            return st;
        }
        data = picked;
    }
    st = transform(ctx, data, operation, NULL, &result);
    cJSON_Delete(picked);
    if (st != WF_OK) {
        cJSON_Delete(reply);
        return st;
    }

    /* 3. Log it, with a little context, through the logMessage activity. */
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "level", "info");
    cJSON_AddStringToObject(req, "message", "fetched and transformed");
    note = cJSON_AddObjectToObject(req, "data");
    cJSON_AddStringToObject(note, "url", url);
    cJSON_AddNumberToObject(note, "status", status->valuedouble);
    cJSON_AddStringToObject(note, "operation", operation);
    st = call_activity(ctx, "logMessage", req, &logged);
    cJSON_Delete(logged); /* its result is of no further use */
    if (st != WF_OK) {
        cJSON_Delete(reply);
        cJSON_Delete(result);
        return failed(ctx, "logMessage", st);
    }

    /* The run's output: the host takes ownership of `out`. */
    out = cJSON_CreateObject();
    if (out == NULL) {
        cJSON_Delete(reply);
        cJSON_Delete(result);
        return WF_ENOMEM;
    }
    cJSON_AddStringToObject(out, "url", url);
    cJSON_AddNumberToObject(out, "status", status->valuedouble);
    cJSON_AddStringToObject(out, "operation", operation);
    cJSON_AddItemToObject(out, "result", result); /* out owns result now */
    cJSON_Delete(reply);
    *output = out;
    return WF_OK;
}

static const struct wf_workflow_def workflows[] = {
    {"fetch-and-transform", fetch_and_transform},
};

/* Workflows only: the activities come from the sample-activities plugin. */
WF_PLUGIN_DEFINE("example-fetch-transform", "1.0.0", workflows, 1, NULL, 0)
