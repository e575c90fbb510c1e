/*
 * jqx.c: see jqx.h. The program compiled for n expressions is:
 *
 *   <prelude: the shadowed builtins>
 *   . as $__a | {} as $ENV | $__a.v.input as $input | … |
 *   def __e0: (<expr 0>); def __e1: (<expr 1>); …
 *   $__a.d | if $__a.k == 0 then __e0 elif … else null end
 *
 * (each variable of vars bound the same way) evaluated on {"k": i, "d":
 * data, "v": vars}. The variables are bound
 * before the functions, so every expression sees them (jq scopes
 * lexically). Errors of libjq's compiler go to a callback that keeps the
 * first, never to stderr.
 */
#include "jqx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jq.h>
#include <jv.h>

struct jqx {
    jq_state *jq;
    size_t n;
};

static const char PRELUDE[] =
    "def now: error(\"now is not available in workflow expressions (a replay must see the same "
    "value): use $workflow.startedAt\");"
    "def input: error(\"input is not available in workflow expressions\");"
    "def inputs: error(\"inputs is not available in workflow expressions\");"
    "def env: {};"
    "def input_filename: null;"
    "def input_line_number: 0;"
    "def debug: .;"
    "def stderr: .;"
    "def halt: error(\"halt is not available in workflow expressions\");"
    "def halt_error: error(\"halt_error is not available in workflow expressions\");"
    "def halt_error(f): error(\"halt_error is not available in workflow expressions\");"
    "def get_search_list: [];"
    ". as $__a | {} as $ENV | ";

/* Bound in every program, beside the caller's names. */
static const char *const FIXED_VARS[] = {"input",   "context", "workflow", "task",
                                         "runtime", "error",   "item",     "index"};

struct errbuf {
    char *buf;
    size_t len;
    int set;
};

/* libjq's message callback: keeps the first message. */
static void on_error(void *data, jv msg)
{
    struct errbuf *e = data;

    if (!e->set && e->len > 0) {
        jv text =
            jv_get_kind(msg) == JV_KIND_STRING ? jv_copy(msg) : jv_dump_string(jv_copy(msg), 0);
        const char *t = jv_string_value(text), *cut;
        size_t n;

        /* "jq: error: syntax error, … (Unix shell quoting issues?) at
         * <top-level>, line 1:\n<the whole program>": keep the reason */
        if (strncmp(t, "jq: error: ", 11) == 0)
            t += 11;
        n = strlen(t);
        if ((cut = strstr(t, " (Unix shell quoting issues?)")) != NULL ||
            (cut = strstr(t, " at <top-level>")) != NULL || (cut = strchr(t, '\n')) != NULL)
            n = (size_t)(cut - t);
        snprintf(e->buf, e->len, "%.*s", (int)n, t);
        jv_free(text);
        e->set = 1;
    }
    jv_free(msg);
}

/* A growing string; -1 when out of memory. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static int sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 1024 : b->cap;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int sb_str(struct sbuf *b, const char *s)
{
    return sb_add(b, s, strlen(s));
}

int jqx_valid_var(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') || strlen(s) > 64 ||
        strncmp(s, "__", 2) == 0 || strcmp(s, "ENV") == 0)
        return 0;
    for (s++; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* "$__a.v.<name> as $<name> | " */
static int bind_var(struct sbuf *b, const char *name)
{
    return sb_str(b, "$__a.v.") || sb_str(b, name) || sb_str(b, " as $") || sb_str(b, name) ||
           sb_str(b, " | ");
}

/* The program text for exprs; NULL when out of memory. */
static char *program(const char *const *exprs, size_t n, const char *const *vars, size_t nvars)
{
    struct sbuf b = {NULL, 0, 0};
    char num[96];
    int bad = sb_str(&b, PRELUDE);

    for (size_t i = 0; i < sizeof(FIXED_VARS) / sizeof(FIXED_VARS[0]) && !bad; i++)
        bad = bind_var(&b, FIXED_VARS[i]);
    for (size_t i = 0; i < nvars && !bad; i++) {
        int fixed = 0;
        for (size_t k = 0; k < sizeof(FIXED_VARS) / sizeof(FIXED_VARS[0]); k++)
            fixed |= strcmp(vars[i], FIXED_VARS[k]) == 0;
        if (!fixed && jqx_valid_var(vars[i]))
            bad = bind_var(&b, vars[i]);
    }

    for (size_t i = 0; i < n && !bad; i++) {
        snprintf(num, sizeof(num), "def __e%zu: (", i);
        bad = sb_str(&b, num) || sb_str(&b, exprs[i]) || sb_str(&b, "\n); ");
    }
    bad = bad || sb_str(&b, "$__a.d | ");
    for (size_t i = 0; i < n && !bad; i++) {
        snprintf(num, sizeof(num), "%s $__a.k == %zu then __e%zu ", i == 0 ? "if" : "elif", i, i);
        bad = sb_str(&b, num);
    }
    bad = bad || sb_str(&b, n > 0 ? "else null end" : "null");
    if (bad) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

struct jqx *jqx_new(const char *const *exprs, size_t n, const char *const *vars, size_t nvars,
                    char *err, size_t errlen)
{
    struct errbuf e = {err, errlen, 0};
    struct jqx *x = calloc(1, sizeof(*x));
    char *prog = program(exprs, n, vars, nvars);

    if (x == NULL || prog == NULL || (x->jq = jq_init()) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(prog);
        jqx_free(x);
        return NULL;
    }
    x->n = n;
    jq_set_error_cb(x->jq, on_error, &e);
    if (!jq_compile(x->jq, prog)) {
        if (!e.set)
            snprintf(err, errlen, "expression does not compile");
        free(prog);
        jqx_free(x);
        return NULL;
    }
    free(prog);
    jq_set_error_cb(x->jq, NULL, NULL);
    return x;
}

void jqx_free(struct jqx *x)
{
    if (x == NULL)
        return;
    if (x->jq != NULL)
        jq_teardown(&x->jq);
    free(x);
}

int jqx_check(const char *expr, const char *const *vars, size_t nvars, char *err, size_t errlen)
{
    struct jqx *x = jqx_new(&expr, 1, vars, nvars, err, errlen);

    if (x == NULL)
        return -1;
    jqx_free(x);
    return 0;
}

/* jv of a cJSON value (through its text); jv_invalid when out of memory. */
static jv to_jv(const cJSON *v)
{
    char *text;
    jv r;

    if (v == NULL)
        return jv_null();
    text = cJSON_PrintUnformatted(v);
    if (text == NULL)
        return jv_invalid_with_msg(jv_string("out of memory"));
    r = jv_parse(text);
    free(text);
    return r;
}

int jqx_eval(struct jqx *x, size_t i, const cJSON *data, const cJSON *vars, cJSON **out, char *err,
             size_t errlen)
{
    jv in, r, text;

    *out = NULL;
    if (i >= x->n) {
        snprintf(err, errlen, "no expression %zu", i);
        return -1;
    }
    in = jv_object();
    in = jv_object_set(in, jv_string("k"), jv_number((double)i));
    in = jv_object_set(in, jv_string("d"), to_jv(data));
    in = jv_object_set(in, jv_string("v"), to_jv(vars));
    if (!jv_is_valid(in)) {
        jv_free(in);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    jq_start(x->jq, in, 0);
    r = jq_next(x->jq);
    if (!jv_is_valid(r)) {
        jv msg = jv_invalid_get_msg(r);
        if (jv_get_kind(msg) == JV_KIND_NULL) { /* no value at all */
            jv_free(msg);
            *out = cJSON_CreateNull();
            return *out != NULL ? 0 : -1;
        }
        text = jv_get_kind(msg) == JV_KIND_STRING ? jv_copy(msg) : jv_dump_string(jv_copy(msg), 0);
        snprintf(err, errlen, "%s", jv_string_value(text));
        jv_free(text);
        jv_free(msg);
        return -1;
    }
    text = jv_dump_string(r, 0);
    *out = cJSON_Parse(jv_string_value(text));
    jv_free(text);
    if (*out == NULL) {
        snprintf(err, errlen, "expression result is not JSON");
        return -1;
    }
    return 0;
}

int jqx_is_expr(const char *s, const char **body, size_t *len)
{
    size_t n;

    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        n--;
    if (n < 3 || s[0] != '$' || s[1] != '{' || s[n - 1] != '}')
        return 0;
    *body = s + 2;
    *len = n - 3;
    return 1;
}
