/*
 * dup_activity.c: provides "echo" again, clashing with good.c.
 */
#include <wf/plugin.h>

static enum wf_status echo2(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)a;
    *output = cJSON_Duplicate(input, 1);
    return WF_OK;
}

static const struct wf_activity_def activities[] = {{"echo", echo2, WF_RETRY_DEFAULT, 0}};

WF_PLUGIN_DEFINE("dup", "0", NULL, 0, activities, 1)
