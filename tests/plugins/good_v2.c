/*
 * good_v2.c: version 2 of good.c: the same names plus a new activity, so a
 * hot reload can be observed in the worker's loaded list.
 */
#include <wf/plugin.h>

static enum wf_status echo(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)a;
    *output = cJSON_Duplicate(input, 1);
    return *output != NULL ? WF_OK : WF_ENOMEM;
}

static enum wf_status shout(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)a;
    (void)input;
    *output = cJSON_CreateString("HELLO");
    return *output != NULL ? WF_OK : WF_ENOMEM;
}

static enum wf_status hello_flow(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    return ctx->api->activity(ctx, "shout", input, output);
}

static const struct wf_workflow_def workflows[] = {{"hello-flow", hello_flow}};
static const struct wf_activity_def activities[] = {
    {"echo", echo, WF_RETRY_DEFAULT, 1000},
    {"shout", shout, WF_RETRY_NONE, 0},
};

WF_PLUGIN_DEFINE("good", "2.0.0", workflows, 1, activities, 2)
