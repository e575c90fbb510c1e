/*
 * jqx.h: runtime expressions of declarative workflows (`${ .order.items }`,
 * jq syntax) evaluated with libjq, Debian's libjq1 1.6.
 *
 * One compiled program per workflow definition: libjq 1.6 compiles its
 * builtins again for every jq_compile (about 35 ms here), so each of the
 * definition's expressions becomes a function of a single program, compiled
 * once when the definition is loaded, and an evaluation names the function
 * to run. Evaluating takes microseconds.
 *
 * Determinism: a run is replayed from its recorded steps, so an expression
 * must give the same value every time. The builtins that do not (now,
 * input, inputs, $ENV, env, input_filename, halt, halt_error, debug and
 * stderr's side effects) are shadowed: they fail with a message, or are
 * inert. There is no module search path: `import` and `include` cannot
 * appear inside an expression.
 *
 * Thread safety: libjq 1.6 keeps no global mutable state beyond a
 * per-thread dtoa context, but a jq_state is not safe to share. A struct
 * jqx is used by one thread at a time (the worker's run loop, or the
 * describer's only thread): callers keep it so.
 *
 * Values cross by a direct walk of the trees (cJSON to jv and back): JSON
 * text both ways cost more than the evaluation. Each expression binds
 * only the variables it mentions (a binding costs about 0.7 µs in jq 1.6).
 */
#ifndef WF_DSL_JQX_H
#define WF_DSL_JQX_H

#include <stddef.h>

#include <cJSON.h>

struct jqx;

#define JQX_ERR_MAX 512

/*
 * Compiles the n expressions (jq source without the `${ }`) into one
 * program, in which $input, $context, $workflow, $task, $runtime, $error,
 * $item and $index are bound, and each of the nvars names of vars (valid
 * ones: jqx_valid_var). Returns it, or NULL with the compiler's first
 * message in err (which expression failed is not told: check them one by
 * one with jqx_check to find out).
 */
struct jqx *jqx_new(const char *const *exprs, size_t n, const char *const *vars, size_t nvars,
                    char *err, size_t errlen);
void jqx_free(struct jqx *x);

/* Compiles expr alone (about 35 ms): 0, or -1 with the message in err. */
int jqx_check(const char *expr, const char *const *vars, size_t nvars, char *err, size_t errlen);

/* 1 when s may name a variable: ^[A-Za-z_][A-Za-z0-9_]{0,63}$, not
 * starting with "__", not ENV. */
int jqx_valid_var(const char *s);

/*
 * Evaluates expression i on data (`.`), with vars: an object whose members
 * give the bound variables their values (absent: null; vars NULL: all
 * null). *out gets the first value it produces (null when it produces
 * none). Returns 0, or -1 with the jq error in err.
 */
int jqx_eval(struct jqx *x, size_t i, const cJSON *data, const cJSON *vars, cJSON **out, char *err,
             size_t errlen);

/* 1 when expr mentions variable $name (not as the prefix of a longer
 * name): the variables an evaluation must be given. */
int jqx_mentions(const char *expr, const char *name);

/* 1 when s is a runtime expression: "${" … "}" around the whole string
 * (leading and trailing blanks allowed). *body and *len then give the jq
 * source between the braces. */
int jqx_is_expr(const char *s, const char **body, size_t *len);

#endif
