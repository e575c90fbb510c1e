/*
 * module.c: see module.h. The table of the module's functions.
 */
#include "module.h"

#include "def.h"
#include "interp.h"

enum wf_status dsl_http_activity(struct wf_activity_ctx *a, const cJSON *input, cJSON **output);

static const struct dsl_module module = {
    sizeof(struct dsl_module), dsl_load, dsl_free, dsl_check, dsl_root, dsl_name, dsl_run,
    dsl_http_activity,
};

__attribute__((visibility("default"))) const struct dsl_module *wf_dsl_module(void)
{
    return &module;
}
