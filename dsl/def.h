/*
 * def.h: declarative workflow definitions (docs/declarative.md): a JSON
 * document in the shape of Serverless Workflow 1.0 (`document`, `input`,
 * `do`, `output`), checked and loaded.
 *
 * The same check runs at deploy time (the describer, worker/describe.c: a
 * sandboxed process, so a definition that crashes libjq takes only it down)
 * and when a worker loads the definition (plugins/loader.c). It reports
 * every error it finds, each with the JSON Pointer of the value at fault
 * (`/do/2/check/switch/0/late/then`), up to DSL_MAX_ERRORS: an unknown task
 * type, a missing or mistyped field, a bad duration, a `then` naming no
 * task, an expression that does not compile. Whether the activities a
 * definition calls exist is the caller's to check (core knows the
 * project's code; the definition lists them in calls).
 *
 * A loaded definition is immutable but for its expression program, which
 * is evaluated under a mutex (jqx.h): runs on several threads may share
 * it.
 */
#ifndef WF_DSL_DEF_H
#define WF_DSL_DEF_H

#include <stddef.h>

#include <cJSON.h>

#include "dslmod.h"
#include "jqx.h"

#define DSL_MAX_ERRORS 50
#define DSL_MAX_DEPTH 32 /* nested task lists */
#define DSL_HTTP "http"  /* `call: http`: the built-in HTTP call */

struct dsl_def;

/*
 * Checks text as a definition deployed under name (its document.name must
 * be name). Appends {"path","message"} objects to errors and
 * {"name","path"} of each activity called to calls (either may be NULL).
 * With compile set, the expressions are compiled too. Returns the loaded
 * definition when load is set and there was no error (free with dsl_free),
 * else NULL; *nerrors gets the number of errors found.
 */
struct dsl_def *dsl_check(const char *text, size_t len, const char *name, int compile, int load,
                          cJSON *errors, cJSON *calls, int *nerrors);

/* Loads text for a worker: dsl_check with compile and load (name NULL:
 * whatever its document.name says, which is then its name). NULL with the
 * first error ("<path>: <message>") in err. */
struct dsl_def *dsl_load(const char *text, size_t len, const char *name, char *err, size_t errlen);
void dsl_free(struct dsl_def *d);

const cJSON *dsl_root(const struct dsl_def *d);
/* The same, for cJSON's reference items (which take a non-const item);
 * never to be modified. */
cJSON *dsl_root_mut(struct dsl_def *d);
const char *dsl_name(const struct dsl_def *d);

/*
 * Evaluates value: a copy of it with every runtime expression string in it
 * replaced by its value (data is `.`, vars as jqx_eval). Returns 0 with
 * *out set (caller owns), or -1 with the jq error in err.
 */
int dsl_eval(struct dsl_def *d, const cJSON *value, const cJSON *data, const cJSON *vars,
             cJSON **out, char *err, size_t errlen);

/* ISO 8601 duration ("PT2S", "P1DT12H", "PT0.5S") or {"days", "hours",
 * "minutes", "seconds", "milliseconds"} as milliseconds; -1 when invalid. */
long long dsl_duration_ms(const cJSON *v);

#endif
