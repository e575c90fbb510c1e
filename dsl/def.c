/*
 * def.c: see def.h. One walk over the document checks it and collects its
 * runtime expressions (every string of the form "${ … }" under `input`,
 * `output` and `do`), each with its JSON Pointer. The expressions compile
 * into one program (jqx.h); when that fails, each is compiled alone, so the
 * error names the one at fault. The loaded definition keeps the document
 * and a table from each expression's cJSON node to its function in the
 * program, sorted by address, for dsl_eval.
 */
#include "def.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 512

struct dsl_expr {
    const cJSON *node;
    char *path;
    size_t index;
};

struct dsl_def {
    cJSON *root;
    char name[65];
    struct dsl_expr *exprs; /* sorted by node once loaded */
    size_t nexprs, cap;
    char **vars; /* names bound by for (each, at) and catch (as) */
    size_t nvars;
    struct jqx *jq;
    pthread_mutex_t mu; /* jq */
};

/* The walk's state. */
struct walk {
    struct dsl_def *d;
    cJSON *errors, *calls;
    int nerrors;
    int oom;
};

__attribute__((format(printf, 3, 4))) static void err_at(struct walk *w, const char *path,
                                                         const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    cJSON *e;

    w->nerrors++;
    if (w->errors == NULL || cJSON_GetArraySize(w->errors) >= DSL_MAX_ERRORS)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e = cJSON_CreateObject();
    if (e == NULL || cJSON_AddStringToObject(e, "path", path[0] != '\0' ? path : "/") == NULL ||
        cJSON_AddStringToObject(e, "message", msg) == NULL || !cJSON_AddItemToArray(w->errors, e)) {
        cJSON_Delete(e);
        w->oom = 1;
    }
}

/* path + "/" + key (JSON Pointer escaping of ~ and /), cut at PATH_MAX_LEN. */
static void sub(char *out, const char *path, const char *key)
{
    size_t n = (size_t)snprintf(out, PATH_MAX_LEN, "%s/", path);

    for (const char *k = key; *k != '\0' && n + 3 < PATH_MAX_LEN; k++) {
        if (*k == '~' || *k == '/') {
            out[n++] = '~';
            out[n++] = *k == '~' ? '0' : '1';
        } else {
            out[n++] = *k;
        }
    }
    out[n < PATH_MAX_LEN ? n : PATH_MAX_LEN - 1] = '\0';
}

static void sub_i(char *out, const char *path, int i)
{
    char k[16];

    snprintf(k, sizeof(k), "%d", i);
    sub(out, path, k);
}

/* A variable name a task binds (for's each and at, catch's as). */
static void add_var(struct walk *w, const cJSON *v, const char *path)
{
    struct dsl_def *d = w->d;
    char **nv;

    if (!cJSON_IsString(v) || !jqx_valid_var(v->valuestring)) {
        err_at(w, path,
               "must be a variable name (^[A-Za-z_][A-Za-z0-9_]*$, not ENV, not "
               "starting with __)");
        return;
    }
    for (size_t i = 0; i < d->nvars; i++)
        if (strcmp(d->vars[i], v->valuestring) == 0)
            return;
    nv = realloc(d->vars, (d->nvars + 1) * sizeof(*nv));
    if (nv == NULL || (nv[d->nvars] = strdup(v->valuestring)) == NULL) {
        if (nv != NULL)
            d->vars = nv;
        w->oom = 1;
        return;
    }
    d->vars = nv;
    d->nvars++;
}

/* Registers every runtime expression in v (recursively). */
static void collect(struct walk *w, const cJSON *v, const char *path)
{
    char p[PATH_MAX_LEN];
    const cJSON *c;
    const char *body;
    size_t len;
    int i = 0;

    if (cJSON_IsString(v) && jqx_is_expr(v->valuestring, &body, &len)) {
        struct dsl_def *d = w->d;
        if (d->nexprs == d->cap) {
            size_t cap = d->cap == 0 ? 16 : d->cap * 2;
            struct dsl_expr *e = realloc(d->exprs, cap * sizeof(*e));
            if (e == NULL) {
                w->oom = 1;
                return;
            }
            d->exprs = e;
            d->cap = cap;
        }
        d->exprs[d->nexprs].node = v;
        d->exprs[d->nexprs].index = d->nexprs;
        d->exprs[d->nexprs].path = strdup(path[0] != '\0' ? path : "/");
        if (d->exprs[d->nexprs].path == NULL) {
            w->oom = 1;
            return;
        }
        d->nexprs++;
        return;
    }
    cJSON_ArrayForEach(c, v)
    {
        if (cJSON_IsArray(v))
            sub_i(p, path, i++);
        else
            sub(p, path, c->string);
        collect(w, c, p);
    }
}

/* ---- durations ---- */

static long long iso_duration_ms(const char *s)
{
    double total = 0, v;
    int in_time = 0, any = 0;
    char *end;

    if (*s++ != 'P')
        return -1;
    while (*s != '\0') {
        if (*s == 'T') {
            if (in_time)
                return -1;
            in_time = 1;
            s++;
            continue;
        }
        if (!(*s >= '0' && *s <= '9'))
            return -1;
        v = strtod(s, &end);
        if (end == s || v < 0)
            return -1;
        s = end;
        switch (*s) {
        case 'W':
            if (in_time)
                return -1;
            total += v * 7 * 86400e3;
            break;
        case 'D':
            if (in_time)
                return -1;
            total += v * 86400e3;
            break;
        case 'H':
            if (!in_time)
                return -1;
            total += v * 3600e3;
            break;
        case 'M':
            if (!in_time)
                return -1; /* months are not a fixed length */
            total += v * 60e3;
            break;
        case 'S':
            if (!in_time)
                return -1;
            total += v * 1e3;
            break;
        default:
            return -1;
        }
        s++;
        any = 1;
    }
    if (!any || total > 366.0 * 86400e3 * 10)
        return -1;
    return (long long)total;
}

long long dsl_duration_ms(const cJSON *v)
{
    static const struct {
        const char *key;
        double ms;
    } units[] = {{"days", 86400e3},
                 {"hours", 3600e3},
                 {"minutes", 60e3},
                 {"seconds", 1e3},
                 {"milliseconds", 1}};
    double total = 0;
    const cJSON *c;

    if (cJSON_IsString(v))
        return iso_duration_ms(v->valuestring);
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) == 0)
        return -1;
    cJSON_ArrayForEach(c, v)
    {
        size_t i;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcmp(c->string, units[i].key) == 0)
                break;
        if (i == sizeof(units) / sizeof(units[0]) || !cJSON_IsNumber(c) || c->valuedouble < 0)
            return -1;
        total += c->valuedouble * units[i].ms;
    }
    return total > 366.0 * 86400e3 * 10 ? -1 : (long long)total;
}

static void check_duration(struct walk *w, const cJSON *v, const char *path)
{
    if (dsl_duration_ms(v) < 0)
        err_at(w, path,
               "invalid duration: an ISO 8601 duration such as \"PT2S\" or \"P1DT12H\", or an "
               "object of days, hours, minutes, seconds and milliseconds");
}

/* ---- tasks ---- */

static void check_list(struct walk *w, const cJSON *list, const char *path, int depth);

/* 1 when key is one of the NULL-terminated names. */
static int one_of(const char *key, const char *const *names)
{
    for (; *names != NULL; names++)
        if (strcmp(key, *names) == 0)
            return 1;
    return 0;
}

/* Unknown members of obj are errors. */
static void only(struct walk *w, const cJSON *obj, const char *path, const char *const *names)
{
    char p[PATH_MAX_LEN];
    const cJSON *c;

    cJSON_ArrayForEach(c, obj)
    {
        if (!one_of(c->string, names)) {
            sub(p, path, c->string);
            err_at(w, p, "unknown property \"%s\"", c->string);
        }
    }
}

/* A required member of obj of the given cJSON type mask (cJSON_String …). */
static const cJSON *need(struct walk *w, const cJSON *obj, const char *key, int type,
                         const char *path, const char *what)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[PATH_MAX_LEN];

    sub(p, path, key);
    if (v == NULL) {
        err_at(w, path, "missing \"%s\" (%s)", key, what);
        return NULL;
    }
    if ((v->type & 0xFF) != type) {
        err_at(w, p, "\"%s\" must be %s", key, what);
        return NULL;
    }
    return v;
}

static int valid_activity(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64 ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

static void check_call(struct walk *w, const cJSON *task, const cJSON *call, const char *path)
{
    char p[PATH_MAX_LEN], pw[PATH_MAX_LEN];
    const cJSON *with = cJSON_GetObjectItemCaseSensitive(task, "with");

    sub(pw, path, "with");
    if (with != NULL && !cJSON_IsObject(with))
        err_at(w, pw, "\"with\" must be an object");
    if (strcmp(call->valuestring, DSL_HTTP) == 0) {
        static const char *const http_keys[] = {"method", "endpoint", "headers", "body",
                                                "query",  "output",   NULL};
        const cJSON *m, *ep, *out;
        if (!cJSON_IsObject(with)) {
            if (with == NULL)
                err_at(w, path, "missing \"with\" (an http call needs method and endpoint)");
            return;
        }
        only(w, with, pw, http_keys);
        m = need(w, with, "method", cJSON_String, pw, "a string such as \"get\" or \"post\"");
        if (m != NULL &&
            !one_of(m->valuestring,
                    (const char *const[]){"get", "post", "put", "patch", "delete", "head", "GET",
                                          "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL})) {
            sub(p, pw, "method");
            err_at(w, p, "unsupported method \"%s\" (get, post, put, patch, delete, head)",
                   m->valuestring);
        }
        ep = cJSON_GetObjectItemCaseSensitive(with, "endpoint");
        sub(p, pw, "endpoint");
        if (ep == NULL)
            err_at(w, pw, "missing \"endpoint\" (a URL, or {\"uri\": URL})");
        else if (!cJSON_IsString(ep) &&
                 !(cJSON_IsObject(ep) &&
                   cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ep, "uri"))))
            err_at(w, p, "\"endpoint\" must be a URL, or {\"uri\": URL}");
        out = cJSON_GetObjectItemCaseSensitive(with, "output");
        if (out != NULL && !(cJSON_IsString(out) &&
                             one_of(out->valuestring,
                                    (const char *const[]){"content", "response", "raw", NULL}))) {
            sub(p, pw, "output");
            err_at(w, p, "\"output\" must be \"content\", \"response\" or \"raw\"");
        }
        return;
    }
    if (one_of(call->valuestring, (const char *const[]){"grpc", "openapi", "asyncapi", NULL})) {
        sub(p, path, "call");
        err_at(w, p, "call type \"%s\" is not supported (http, or an activity of the project)",
               call->valuestring);
        return;
    }
    sub(p, path, "call");
    if (!valid_activity(call->valuestring)) {
        err_at(w, p,
               "\"%s\" is neither http nor an activity name (^[A-Za-z_][A-Za-z0-9_.-]{0,63}$)",
               call->valuestring);
        return;
    }
    if (w->calls != NULL) {
        cJSON *c = cJSON_CreateObject();
        if (c == NULL || cJSON_AddStringToObject(c, "name", call->valuestring) == NULL ||
            cJSON_AddStringToObject(c, "path", p) == NULL || !cJSON_AddItemToArray(w->calls, c)) {
            cJSON_Delete(c);
            w->oom = 1;
        }
    }
}

/* `then`: continue, exit, end, or the name of a task of the same list. */
static void check_then(struct walk *w, const cJSON *then, const cJSON *list, const char *path)
{
    const cJSON *t;

    if (!cJSON_IsString(then)) {
        err_at(w, path, "\"then\" must be continue, exit, end or a task name");
        return;
    }
    if (one_of(then->valuestring, (const char *const[]){"continue", "exit", "end", NULL}))
        return;
    cJSON_ArrayForEach(t, list)
    {
        if (cJSON_IsObject(t) && t->child != NULL &&
            strcmp(t->child->string, then->valuestring) == 0)
            return;
    }
    err_at(w, path, "\"then\" points to \"%s\": no task of that name in this list",
           then->valuestring);
}

static void check_task(struct walk *w, const char *name, const cJSON *task, const cJSON *list,
                       const char *path, int depth)
{
    static const char *const common[] = {"if",   "input",   "output",   "export",
                                         "then", "timeout", "metadata", NULL};
    static const char *const types[] = {"call", "set",    "wait",  "switch", "fork",   "for",
                                        "do",   "listen", "raise", "try",    "inject", NULL};
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const char *type = NULL;
    const cJSON *c, *v;
    int unknown = 0;

    if (!cJSON_IsObject(task)) {
        err_at(w, path, "task \"%s\" must be an object", name);
        return;
    }
    cJSON_ArrayForEach(c, task)
    {
        if (one_of(c->string, types)) {
            /* a for task's body is its "do" */
            if (strcmp(c->string, "do") == 0 && cJSON_GetObjectItemCaseSensitive(task, "for"))
                continue;
            if (type != NULL) {
                err_at(w, path, "task \"%s\" has two types (\"%s\" and \"%s\")", name, type,
                       c->string);
                return;
            }
            type = c->string;
        } else if (!one_of(c->string, common) && strcmp(c->string, "with") != 0 &&
                   strcmp(c->string, "catch") != 0) {
            sub(p, path, c->string);
            unknown++;
            if (one_of(c->string, (const char *const[]){"emit", "run", NULL}))
                err_at(w, p, "task type \"%s\" is not supported", c->string);
            else
                err_at(w, p, "unknown task type or property \"%s\"", c->string);
        }
    }
    if (type == NULL && unknown > 0)
        return;
    if (type == NULL) {
        err_at(w, path,
               "task \"%s\" has no type (call, set, wait, switch, fork, for, do, listen, "
               "raise, try or inject)",
               name);
        return;
    }
    /* Its expressions, but in the task lists it holds (their own tasks
     * collect theirs) and in inject (static data). */
    cJSON_ArrayForEach(c, task)
    {
        if (one_of(c->string, (const char *const[]){"inject", "do", "try", "fork", NULL}))
            continue;
        if (strcmp(c->string, "catch") == 0) {
            for (int k = 0; k < 2; k++) {
                const char *key = k == 0 ? "when" : "exceptWhen";
                if (cJSON_GetObjectItemCaseSensitive(c, key) != NULL) {
                    sub(q, path, k == 0 ? "catch/when" : "catch/exceptWhen");
                    collect(w, cJSON_GetObjectItemCaseSensitive(c, key), q);
                }
            }
            continue;
        }
        sub(p, path, c->string);
        collect(w, c, p);
    }
    v = cJSON_GetObjectItemCaseSensitive(task, type);
    sub(p, path, type);
    if ((c = cJSON_GetObjectItemCaseSensitive(task, "then")) != NULL) {
        sub(q, path, "then");
        check_then(w, c, list, q);
    }
    if ((c = cJSON_GetObjectItemCaseSensitive(task, "with")) != NULL && strcmp(type, "call") != 0) {
        sub(q, path, "with");
        err_at(w, q, "\"with\" belongs to call tasks only");
    }
    if ((c = cJSON_GetObjectItemCaseSensitive(task, "catch")) != NULL && strcmp(type, "try") != 0) {
        sub(q, path, "catch");
        err_at(w, q, "\"catch\" belongs to try tasks only");
    }
    if ((c = cJSON_GetObjectItemCaseSensitive(task, "timeout")) != NULL) {
        sub(q, path, "timeout");
        if (strcmp(type, "listen") != 0)
            err_at(w, q, "\"timeout\" is supported on listen tasks only");
        else if (!cJSON_IsObject(c) || cJSON_GetObjectItemCaseSensitive(c, "after") == NULL)
            err_at(w, q, "\"timeout\" must be {\"after\": duration}");
        else {
            sub(q, path, "timeout/after");
            check_duration(w, cJSON_GetObjectItemCaseSensitive(c, "after"), q);
        }
    }
    if (strcmp(type, "call") == 0) {
        if (!cJSON_IsString(v))
            err_at(w, p, "\"call\" must be http or an activity name");
        else
            check_call(w, task, v, path);
    } else if (strcmp(type, "set") == 0) {
        if (!cJSON_IsObject(v) && !cJSON_IsString(v))
            err_at(w, p, "\"set\" must be an object (or an expression)");
    } else if (strcmp(type, "wait") == 0) {
        check_duration(w, v, p);
    } else if (strcmp(type, "switch") == 0) {
        int i = 0;
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
            err_at(w, p, "\"switch\" must be a non-empty array of cases");
            return;
        }
        cJSON_ArrayForEach(c, v)
        {
            const cJSON *cs, *then;
            sub_i(q, p, i++);
            if (!cJSON_IsObject(c) || cJSON_GetArraySize(c) != 1 || !cJSON_IsObject(c->child)) {
                err_at(w, q, "a switch case must be {\"<case name>\": {\"when\"?, \"then\"}}");
                continue;
            }
            char cq[PATH_MAX_LEN];
            cs = c->child;
            sub(cq, q, cs->string);
            only(w, cs, cq, (const char *const[]){"when", "then", NULL});
            then = need(w, cs, "then", cJSON_String, cq, "continue, exit, end or a task name");
            if (then != NULL) {
                char t[PATH_MAX_LEN];
                sub(t, cq, "then");
                check_then(w, then, list, t);
            }
        }
    } else if (strcmp(type, "do") == 0) {
        check_list(w, v, p, depth + 1);
    } else if (strcmp(type, "for") == 0) {
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(task, "do");
        if (!cJSON_IsObject(v)) {
            err_at(w, p, "\"for\" must be {\"each\"?, \"in\", \"at\"?}");
            return;
        }
        only(w, v, p, (const char *const[]){"each", "in", "at", "concurrency", NULL});
        (void)need(w, v, "in", cJSON_String, p, "an expression giving an array");
        if ((c = cJSON_GetObjectItemCaseSensitive(v, "each")) != NULL) {
            sub(q, p, "each");
            add_var(w, c, q);
        }
        if ((c = cJSON_GetObjectItemCaseSensitive(v, "at")) != NULL) {
            sub(q, p, "at");
            add_var(w, c, q);
        }
        if ((c = cJSON_GetObjectItemCaseSensitive(v, "concurrency")) != NULL &&
            (!cJSON_IsNumber(c) || c->valuedouble < 1 || c->valuedouble > 1000)) {
            sub(q, p, "concurrency");
            err_at(w, q, "\"concurrency\" must be an integer from 1 to 1000");
        }
        sub(q, path, "do");
        if (body == NULL)
            err_at(w, path, "missing \"do\" (the tasks run for each item)");
        else
            check_list(w, body, q, depth + 1);
    } else if (strcmp(type, "fork") == 0) {
        const cJSON *br;
        if (!cJSON_IsObject(v)) {
            err_at(w, p, "\"fork\" must be {\"branches\", \"compete\"?}");
            return;
        }
        only(w, v, p, (const char *const[]){"branches", "compete", NULL});
        br = need(w, v, "branches", cJSON_Array, p, "an array of tasks");
        if (br != NULL) {
            sub(q, p, "branches");
            check_list(w, br, q, depth + 1);
        }
        if ((c = cJSON_GetObjectItemCaseSensitive(v, "compete")) != NULL && !cJSON_IsBool(c)) {
            sub(q, p, "compete");
            err_at(w, q, "\"compete\" must be true or false");
        }
    } else if (strcmp(type, "listen") == 0) {
        const cJSON *to, *one, *with;
        if (!cJSON_IsObject(v) || (to = need(w, v, "to", cJSON_Object, p, "{\"one\": …}")) == NULL)
            return;
        sub(q, p, "to");
        one = cJSON_GetObjectItemCaseSensitive(to, "one");
        if (one == NULL) {
            err_at(w, q, "only \"one\" is supported: {\"one\": {\"with\": {\"type\": signal}}}");
            return;
        }
        sub(q, p, "to/one");
        with = cJSON_IsObject(one) ? cJSON_GetObjectItemCaseSensitive(one, "with") : NULL;
        if (!cJSON_IsObject(with) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(with, "type"))) {
            err_at(w, q, "must be {\"with\": {\"type\": \"<signal name>\"}}");
            return;
        }
    } else if (strcmp(type, "raise") == 0) {
        const cJSON *e;
        if (!cJSON_IsObject(v) || (e = need(w, v, "error", cJSON_Object, p, "an error")) == NULL)
            return;
        sub(q, p, "error");
        only(w, e, q, (const char *const[]){"type", "status", "title", "detail", "instance", NULL});
        (void)need(w, e, "type", cJSON_String, q, "a string (a URI)");
        (void)need(w, e, "status", cJSON_Number, q, "an HTTP-like status code");
    } else if (strcmp(type, "try") == 0) {
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(task, "catch");
        check_list(w, v, p, depth + 1);
        sub(q, path, "catch");
        if (cat == NULL) {
            err_at(w, path, "missing \"catch\" (a try task needs one)");
            return;
        }
        if (!cJSON_IsObject(cat)) {
            err_at(w, q, "\"catch\" must be an object");
            return;
        }
        only(w, cat, q,
             (const char *const[]){"errors", "as", "when", "exceptWhen", "retry", "do", NULL});
        if ((c = cJSON_GetObjectItemCaseSensitive(cat, "as")) != NULL) {
            char a[PATH_MAX_LEN];
            sub(a, q, "as");
            add_var(w, c, a);
        }
        if ((c = cJSON_GetObjectItemCaseSensitive(cat, "retry")) != NULL) {
            char r[PATH_MAX_LEN];
            const cJSON *lim;
            sub(r, q, "retry");
            if (!cJSON_IsObject(c)) {
                err_at(w, r, "\"retry\" must be an object");
            } else {
                only(w, c, r, (const char *const[]){"delay", "backoff", "limit", NULL});
                if (cJSON_GetObjectItemCaseSensitive(c, "delay") != NULL) {
                    char dp[PATH_MAX_LEN];
                    sub(dp, r, "delay");
                    check_duration(w, cJSON_GetObjectItemCaseSensitive(c, "delay"), dp);
                }
                lim = cJSON_GetObjectItemCaseSensitive(c, "limit");
                lim = cJSON_GetObjectItemCaseSensitive(lim, "attempt");
                lim = cJSON_GetObjectItemCaseSensitive(lim, "count");
                if (!cJSON_IsNumber(lim) || lim->valuedouble < 1 || lim->valuedouble > 100)
                    err_at(w, r, "\"retry\" needs limit.attempt.count, 1 to 100");
            }
        }
        if ((c = cJSON_GetObjectItemCaseSensitive(cat, "do")) != NULL) {
            sub(q, path, "catch/do");
            check_list(w, c, q, depth + 1);
        }
    }
    /* inject: any value */
}

static void check_list(struct walk *w, const cJSON *list, const char *path, int depth)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const cJSON *t, *u;
    int i = 0;

    if (depth > DSL_MAX_DEPTH) {
        err_at(w, path, "tasks nested deeper than %d levels", DSL_MAX_DEPTH);
        return;
    }
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
        err_at(w, path, "must be a non-empty array of tasks ({\"<name>\": {…}})");
        return;
    }
    cJSON_ArrayForEach(t, list)
    {
        sub_i(p, path, i++);
        if (!cJSON_IsObject(t) || cJSON_GetArraySize(t) != 1) {
            err_at(w, p, "a task must be an object with one member: {\"<name>\": {…}}");
            continue;
        }
        for (u = list->child; u != t; u = u->next)
            if (cJSON_IsObject(u) && u->child != NULL &&
                strcmp(u->child->string, t->child->string) == 0)
                err_at(w, p, "two tasks named \"%s\" in one list", t->child->string);
        sub(q, p, t->child->string);
        check_task(w, t->child->string, t->child, list, q, depth);
    }
}

/* ---- the document ---- */

static void check_document(struct walk *w, const cJSON *root, const char *name)
{
    static const char *const top[] = {"document", "input",   "do",       "output", "use",
                                      "evaluate", "timeout", "schedule", NULL};
    const cJSON *doc, *v, *c;

    only(w, root, "", top);
    if ((c = cJSON_GetObjectItemCaseSensitive(root, "schedule")) != NULL)
        err_at(w, "/schedule",
               "\"schedule\" is not read from definitions: create a schedule with POST "
               "/projects/{id}/schedules");
    if ((c = cJSON_GetObjectItemCaseSensitive(root, "use")) != NULL)
        err_at(w, "/use", "\"use\" (functions, secrets, …) is not supported");
    if ((c = cJSON_GetObjectItemCaseSensitive(root, "timeout")) != NULL)
        err_at(w, "/timeout", "a workflow timeout is given per run (timeoutMs), not here");
    if ((c = cJSON_GetObjectItemCaseSensitive(root, "evaluate")) != NULL) {
        const cJSON *lang = cJSON_GetObjectItemCaseSensitive(c, "language");
        if (lang != NULL && !(cJSON_IsString(lang) && strcmp(lang->valuestring, "jq") == 0))
            err_at(w, "/evaluate/language", "only jq expressions are supported");
    }
    doc = need(w, root, "document", cJSON_Object, "",
               "{\"dsl\", \"namespace\", \"name\", "
               "\"version\"}");
    if (doc != NULL) {
        v = need(w, doc, "dsl", cJSON_String, "/document", "the DSL version, \"1.0.0\"");
        if (v != NULL && strncmp(v->valuestring, "1.", 2) != 0)
            err_at(w, "/document/dsl", "DSL version \"%s\" is not supported (1.x)", v->valuestring);
        (void)need(w, doc, "namespace", cJSON_String, "/document", "a string");
        (void)need(w, doc, "version", cJSON_String, "/document", "a string");
        v = need(w, doc, "name", cJSON_String, "/document", "the workflow's name");
        if (v != NULL && name != NULL && strcmp(v->valuestring, name) != 0)
            err_at(w, "/document/name", "the definition is named \"%s\" but is deployed as \"%s\"",
                   v->valuestring, name);
    }
    for (int k = 0; k < 2; k++) {
        const char *key = k == 0 ? "input" : "output", *want = k == 0 ? "from" : "as";
        char p[64];
        if ((c = cJSON_GetObjectItemCaseSensitive(root, key)) == NULL)
            continue;
        snprintf(p, sizeof(p), "/%s", key);
        if (!cJSON_IsObject(c))
            err_at(w, p, "\"%s\" must be an object", key);
        else
            only(w, c, p, (const char *const[]){want, "schema", NULL});
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "do") == NULL)
        err_at(w, "", "missing \"do\" (the workflow's tasks)");
    else
        check_list(w, cJSON_GetObjectItemCaseSensitive(root, "do"), "/do", 0);
}

/* ---- loading ---- */

static int cmp_node(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct dsl_expr *)a)->node;
    uintptr_t y = (uintptr_t)((const struct dsl_expr *)b)->node;

    return x < y ? -1 : x > y;
}

/* Compiles the collected expressions; on failure, one by one for the
 * errors. Returns 0 or -1. */
static int compile(struct walk *w, int keep)
{
    struct dsl_def *d = w->d;
    char **src = calloc(d->nexprs + 1, sizeof(*src));
    char err[JQX_ERR_MAX];
    int rc = 0;

    if (src == NULL) {
        w->oom = 1;
        return -1;
    }
    for (size_t i = 0; i < d->nexprs && !w->oom; i++) {
        const char *body;
        size_t len;
        (void)jqx_is_expr(d->exprs[i].node->valuestring, &body, &len);
        src[i] = strndup(body, len);
        if (src[i] == NULL)
            w->oom = 1;
    }
    if (!w->oom) {
        d->jq = jqx_new((const char *const *)src, d->nexprs, (const char *const *)d->vars, d->nvars,
                        err, sizeof(err));
        if (d->jq == NULL) {
            rc = -1;
            for (size_t i = 0; i < d->nexprs && cJSON_GetArraySize(w->errors) < DSL_MAX_ERRORS &&
                               i < 2 * DSL_MAX_ERRORS;
                 i++)
                if (jqx_check(src[i], (const char *const *)d->vars, d->nvars, err, sizeof(err)) < 0)
                    err_at(w, d->exprs[i].path, "expression does not compile: %s", err);
            if (w->nerrors == 0)
                err_at(w, "", "the expressions do not compile together: %s", err);
        } else if (!keep) {
            jqx_free(d->jq);
            d->jq = NULL;
        }
    }
    for (size_t i = 0; i < d->nexprs; i++)
        free(src[i]);
    free(src);
    return w->oom ? -1 : rc;
}

struct dsl_def *dsl_check(const char *text, size_t len, const char *name, int do_compile, int load,
                          cJSON *errors, cJSON *calls, int *nerrors)
{
    struct dsl_def *d = calloc(1, sizeof(*d));
    struct walk w = {d, errors, calls, 0, 0};
    const cJSON *c;

    *nerrors = 0;
    if (d == NULL)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    if (len > DSL_MAX_BYTES) {
        err_at(&w, "", "a definition is at most %d bytes", DSL_MAX_BYTES);
    } else if ((d->root = cJSON_ParseWithLength(text, len)) == NULL) {
        err_at(&w, "", "not valid JSON");
    } else if (!cJSON_IsObject(d->root)) {
        err_at(&w, "", "a definition must be a JSON object");
    } else {
        const char *dn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(d->root, "document"), "name"));
        snprintf(d->name, sizeof(d->name), "%s", name != NULL ? name : dn != NULL ? dn : "");
        check_document(&w, d->root, name);
        if ((c = cJSON_GetObjectItemCaseSensitive(d->root, "input")) != NULL)
            collect(&w, c, "/input");
        if ((c = cJSON_GetObjectItemCaseSensitive(d->root, "output")) != NULL)
            collect(&w, c, "/output");
        if (do_compile && w.nerrors == 0 && !w.oom)
            (void)compile(&w, load);
    }
    if (w.oom)
        err_at(&w, "", "out of memory");
    *nerrors = w.nerrors;
    if (w.nerrors > 0 || !load) {
        dsl_free(d);
        return NULL;
    }
    if (d->nexprs > 0)
        qsort(d->exprs, d->nexprs, sizeof(d->exprs[0]), cmp_node);
    return d;
}

struct dsl_def *dsl_load(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    cJSON *errors = cJSON_CreateArray();
    struct dsl_def *d;
    int n = 0;

    if (errors == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d = dsl_check(text, len, name, 1, 1, errors, NULL, &n);
    if (d == NULL) {
        const cJSON *e = cJSON_GetArrayItem(errors, 0);
        if (e != NULL)
            snprintf(err, errlen, "invalid definition: %s: %s%s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(e, "path")),
                     cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")),
                     n > 1 ? " (and more)" : "");
        else
            snprintf(err, errlen, "invalid definition: out of memory");
    }
    cJSON_Delete(errors);
    return d;
}

void dsl_free(struct dsl_def *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nexprs; i++)
        free(d->exprs[i].path);
    free(d->exprs);
    for (size_t i = 0; i < d->nvars; i++)
        free(d->vars[i]);
    free(d->vars);
    jqx_free(d->jq);
    cJSON_Delete(d->root);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const cJSON *dsl_root(const struct dsl_def *d)
{
    return d->root;
}

cJSON *dsl_root_mut(struct dsl_def *d)
{
    return d->root;
}

const char *dsl_name(const struct dsl_def *d)
{
    return d->name;
}

/* The index of expression node v, or -1. */
static long find_expr(const struct dsl_def *d, const cJSON *v)
{
    size_t lo = 0, hi = d->nexprs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((uintptr_t)d->exprs[mid].node < (uintptr_t)v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->nexprs && d->exprs[lo].node == v ? (long)d->exprs[lo].index : -1;
}

int dsl_eval(struct dsl_def *d, const cJSON *value, const cJSON *data, const cJSON *vars,
             cJSON **out, char *err, size_t errlen)
{
    const cJSON *c;
    long i;
    int rc;

    *out = NULL;
    if (cJSON_IsString(value) && (i = find_expr(d, value)) >= 0) {
        pthread_mutex_lock(&d->mu);
        rc = jqx_eval(d->jq, (size_t)i, data, vars, out, err, errlen);
        pthread_mutex_unlock(&d->mu);
        return rc;
    }
    if (!cJSON_IsArray(value) && !cJSON_IsObject(value)) {
        *out = cJSON_Duplicate(value, 1);
        goto check;
    }
    *out = cJSON_IsArray(value) ? cJSON_CreateArray() : cJSON_CreateObject();
    if (*out == NULL)
        goto check;
    cJSON_ArrayForEach(c, value)
    {
        cJSON *v;
        if (dsl_eval(d, c, data, vars, &v, err, errlen) < 0) {
            cJSON_Delete(*out);
            *out = NULL;
            return -1;
        }
        if (cJSON_IsArray(value))
            cJSON_AddItemToArray(*out, v);
        else
            cJSON_AddItemToObject(*out, c->string, v);
    }
check:
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
