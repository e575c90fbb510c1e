/*
 * interp.h: the interpreter of declarative workflows (docs/declarative.md).
 *
 * dsl_run is a workflow function like a plugin's: the worker calls it for a
 * run of a definition, and it does everything through the host API of
 * plugin.h, so a declarative run is durable exactly as a compiled one is:
 * each `call` is an activity step (its result checkpointed), each `wait` a
 * durable sleep, each `listen` a signal wait; the run is re-entered by
 * replay, which re-evaluates the tasks without effects (set, switch,
 * raise, …) from the recorded results, identically, since expressions
 * cannot read the clock or the environment (jqx.h). A crash resumes at
 * the task that had not finished; a finished call never runs again.
 *
 * `fork` branches, and `for` iterations given a concurrency, are child
 * runs (the host API's children call): each runs its part of the same
 * definition, named by its branch (a JSON Pointer, and the variables and
 * $context the parent had), with steps of its own, all at once (up to the
 * bound); the parent's one step is their join.
 */
#ifndef WF_DSL_INTERP_H
#define WF_DSL_INTERP_H

#include <stddef.h>

#include <wf/plugin.h>

#include "def.h"

/*
 * Runs definition d on input, as a workflow function: WF_OK with *output
 * (caller owns), WF_SUSPEND or WF_ECANCELLED as the host asked, or a
 * failure status with the run's error message in err; on WF_ERROR from an
 * uncaught error, *output is that Serverless Workflow error object
 * ({"type", "status", "title", "detail", "instance"}; caller owns). branch (NULL: the
 * whole definition) is a child run's part: {"at": JSON Pointer of a task,
 * or of a task list with "list": true, "context", "vars",
 * "workflowInput"}, as the parent's fork or for wrote it.
 */
enum wf_status dsl_run(struct dsl_def *d, struct wf_ctx *ctx, const cJSON *input,
                       const cJSON *branch, cJSON **output, char *err, size_t errlen);

#endif
