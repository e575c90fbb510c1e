/*
 * unresolved.c: references a symbol nothing defines, so RTLD_NOW fails.
 */
#include <wf/plugin.h>

extern int wf_symbol_that_does_not_exist(void);

static enum wf_status act(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)a;
    (void)input;
    *output = cJSON_CreateNumber(wf_symbol_that_does_not_exist());
    return WF_OK;
}

static const struct wf_activity_def activities[] = {{"act", act, WF_RETRY_DEFAULT, 0}};

WF_PLUGIN_DEFINE("unresolved", "0", NULL, 0, activities, 1)
