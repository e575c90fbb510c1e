/*
 * no_name.c: a test plugin whose descriptor has neither a name nor a
 * version (both NULL); the loader must still load it and log it without
 * passing NULL to a "%s".
 */
#include <wf/plugin.h>

static enum wf_status noop(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)a;
    (void)input;
    *output = cJSON_CreateNull();
    return *output != NULL ? WF_OK : WF_ENOMEM;
}

static const struct wf_activity_def activities[] = {{"noop", noop, WF_RETRY_NONE, 0}};

WF_PLUGIN_DEFINE(NULL, NULL, NULL, 0, activities, 1)
