/*
 * jqx.c: see jqx.h. The program compiled for n expressions is:
 *
 *   <prelude: the shadowed builtins>
 *   . as $__a | $__a.d |
 *   (if $__a.k < m then (… a binary tree of ifs …) else … end)
 *
 * whose leaf i is ($__a.v.input as $input | … (<expr i>\n)), binding the
 * variables that expression mentions, evaluated on {"k": i, "d": data,
 * "v": vars}. The newline ends a `#` comment in an expression. Errors of
 * libjq's compiler go to a callback that keeps the
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
    ". as $__a | ";

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

int jqx_mentions(const char *expr, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = expr; (p = strchr(p, '$')) != NULL;) {
        p++;
        if (strncmp(p, name, n) == 0) {
            char c = p[n];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_'))
                return 1;
        }
    }
    return 0;
}

#define NFIXED (sizeof(FIXED_VARS) / sizeof(FIXED_VARS[0]))

/* The i-th name of the fixed ones then vars. */
static const char *var_name(size_t i, const char *const *vars)
{
    return i < NFIXED ? FIXED_VARS[i] : vars[i - NFIXED];
}

/* "$__a.v.<name> as $<name> | " for each variable expr mentions: a binding
 * costs about 0.7 µs an evaluation in jq 1.6, so each expression binds
 * only the variables it uses. */
static int bind_vars(struct sbuf *b, const char *expr, const char *const *vars, size_t nvars)
{
    int bad = jqx_mentions(expr, "ENV") ? sb_str(b, "{} as $ENV | ") : 0;

    for (size_t i = 0; i < NFIXED + nvars && !bad; i++) {
        const char *name = var_name(i, vars);
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(name, var_name(j, vars)) == 0;
        if (dup || !jqx_valid_var(name) || !jqx_mentions(expr, name))
            continue;
        bad = sb_str(b, "$__a.v.") || sb_str(b, name) || sb_str(b, " as $") || sb_str(b, name) ||
              sb_str(b, " | ");
    }
    return bad;
}

/* Expressions lo..hi-1 as a binary tree of ifs on $__a.k (an if costs
 * about 0.2 µs in jq 1.6: a chain would cost that per expression before). */
static int tree(struct sbuf *b, const char *const *exprs, size_t lo, size_t hi,
                const char *const *vars, size_t nvars)
{
    char num[64];
    size_t mid;

    if (hi - lo == 1)
        return sb_str(b, "(") || bind_vars(b, exprs[lo], vars, nvars) || sb_str(b, "(") ||
               sb_str(b, exprs[lo]) || sb_str(b, "\n))");
    mid = lo + (hi - lo) / 2;
    snprintf(num, sizeof(num), "(if $__a.k < %zu then ", mid);
    return sb_str(b, num) || tree(b, exprs, lo, mid, vars, nvars) || sb_str(b, " else ") ||
           tree(b, exprs, mid, hi, vars, nvars) || sb_str(b, " end)");
}

/* The program text for exprs; NULL when out of memory. */
static char *program(const char *const *exprs, size_t n, const char *const *vars, size_t nvars)
{
    struct sbuf b = {NULL, 0, 0};
    int bad = sb_str(&b, PRELUDE) || sb_str(&b, "$__a.d | ");

    bad = bad || (n > 0 ? tree(&b, exprs, 0, n, vars, nvars) : sb_str(&b, "null"));
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

/* jv of a cJSON value, built directly (printing and parsing cost more than
 * the evaluation). */
static jv to_jv(const cJSON *v)
{
    const cJSON *c;
    jv r;

    if (v == NULL || cJSON_IsNull(v))
        return jv_null();
    if (cJSON_IsTrue(v))
        return jv_true();
    if (cJSON_IsFalse(v))
        return jv_false();
    if (cJSON_IsNumber(v))
        return jv_number(v->valuedouble);
    if (cJSON_IsString(v))
        return jv_string(v->valuestring);
    if (cJSON_IsRaw(v))
        return jv_parse(v->valuestring);
    r = cJSON_IsArray(v) ? jv_array() : jv_object();
    cJSON_ArrayForEach(c, v)
    {
        r = cJSON_IsArray(v) ? jv_array_append(r, to_jv(c))
                             : jv_object_set(r, jv_string(c->string), to_jv(c));
    }
    return r;
}

/* cJSON of a jv (taken); NULL when out of memory. */
static cJSON *from_jv(jv v)
{
    cJSON *r = NULL;

    switch (jv_get_kind(v)) {
    case JV_KIND_NULL:
        r = cJSON_CreateNull();
        break;
    case JV_KIND_TRUE:
        r = cJSON_CreateTrue();
        break;
    case JV_KIND_FALSE:
        r = cJSON_CreateFalse();
        break;
    case JV_KIND_NUMBER:
        r = cJSON_CreateNumber(jv_number_value(v));
        break;
    case JV_KIND_STRING:
        r = cJSON_CreateString(jv_string_value(v));
        break;
    case JV_KIND_ARRAY:
        r = cJSON_CreateArray();
        for (int i = 0; r != NULL && i < jv_array_length(jv_copy(v)); i++) {
            cJSON *e = from_jv(jv_array_get(jv_copy(v), i));
            if (e == NULL || !cJSON_AddItemToArray(r, e)) {
                cJSON_Delete(e);
                cJSON_Delete(r);
                r = NULL;
            }
        }
        break;
    case JV_KIND_OBJECT:
        r = cJSON_CreateObject();
        jv_object_foreach(v, key, val)
        {
            cJSON *e = r != NULL ? from_jv(jv_copy(val)) : NULL;
            if (r != NULL && (e == NULL || !cJSON_AddItemToObject(r, jv_string_value(key), e))) {
                cJSON_Delete(e);
                cJSON_Delete(r);
                r = NULL;
            }
            jv_free(key);
            jv_free(val);
        }
        break;
    default: /* invalid: not a value */
        break;
    }
    jv_free(v);
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
    *out = from_jv(r);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
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
