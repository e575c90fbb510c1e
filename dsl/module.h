/*
 * module.h: the declarative-workflow module's entry point. dsl/ builds as
 * a loadable module (wf-dsl.so) so that a worker pays for libjq and
 * libcurl (and libcurl's thirty dependencies) only when its project has a
 * definition: the worker role links neither, and exec'ing a worker stays
 * as cheap as before (plugins/dslmod.c opens the module).
 *
 * wf_dsl_module returns a table of the module's functions (def.h,
 * interp.h); its size field lets the table grow compatibly.
 */
#ifndef WF_DSL_MODULE_H
#define WF_DSL_MODULE_H

#include <stddef.h>

#include <wf/plugin.h>

struct dsl_def;

struct dsl_module {
    size_t size; /* sizeof(struct dsl_module) of the module */
    struct dsl_def *(*load)(const char *text, size_t len, const char *name, char *err,
                            size_t errlen);
    void (*free)(struct dsl_def *d);
    struct dsl_def *(*check)(const char *text, size_t len, const char *name, int compile, int load,
                             cJSON *errors, cJSON *calls, int *nerrors);
    const cJSON *(*root)(const struct dsl_def *d);
    const char *(*name)(const struct dsl_def *d);
    enum wf_status (*run)(struct dsl_def *d, struct wf_ctx *ctx, const cJSON *input,
                          const cJSON *branch, cJSON **output, char *err, size_t errlen);
    wf_activity_fn http_activity; /* wf.http */
};

#define DSL_MODULE_SYMBOL "wf_dsl_module"

const struct dsl_module *wf_dsl_module(void);

#endif
