/*
 * good.c: a well-formed test plugin: one workflow and two activities.
 */
#include <wf/plugin.h>

static enum wf_status echo(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)a;
    *output = cJSON_Duplicate(input, 1);
    return *output != NULL ? WF_OK : WF_ENOMEM;
}

static enum wf_status fail_always(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)input;
    (void)output;
    a->api->fail(a, "this activity always fails");
    return WF_ERROR;
}

static enum wf_status hello_flow(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    return ctx->api->activity(ctx, "echo", input, output);
}

static const struct wf_workflow_def workflows[] = {{"hello-flow", hello_flow}};
static const struct wf_activity_def activities[] = {
    {"echo", echo, WF_RETRY_DEFAULT, 1000},
    {"failAlways", fail_always, WF_RETRY_NONE, 0},
};

WF_PLUGIN_DEFINE("good", "1.2.3", workflows, 1, activities, 2)
