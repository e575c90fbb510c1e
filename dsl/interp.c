/*
 * interp.c: see interp.h. Each task list runs with a current value, the
 * data that flows from task to task: a task's input is the data (through
 * its input.from), its output (through output.as) becomes the data, and
 * export.as rewrites $context. Every cJSON value here has one owner: the
 * data is owned by the list running it, a task's input and raw output by
 * run_task, the context and the current error by the run.
 *
 * Errors are Serverless Workflow errors, {"type", "status", "title",
 * "detail", "instance"}; a try task's catch filters them by type and
 * status; an uncaught one fails the run with "<title>: <detail> (at
 * <instance>)".
 */
#include "interp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_TYPE "https://serverlessworkflow.io/spec/1.0.0/errors/"
#define PATH_LEN 512
#define MSG_LEN 1024

enum flow {
    F_NEXT,
    F_EXIT,
    F_END,
    F_GOTO,
    F_FAIL,
    F_STOP
};

struct irun {
    struct dsl_def *d;
    struct wf_ctx *ctx;
    cJSON *context;        /* $context */
    cJSON *workflow;       /* $workflow */
    cJSON *error;          /* the failure being raised (F_FAIL) */
    cJSON *extra;          /* variables bound by for and catch: {"<name>": value} */
    enum wf_status st;     /* F_STOP: what the host said */
    const char *goto_name; /* F_GOTO: the task to go to */
};

/* Sets the run's failure (replacing any). */
static enum flow fail(struct irun *ir, const char *kind, int status, const char *title,
                      const char *detail, const char *path)
{
    char type[128];

    cJSON_Delete(ir->error);
    ir->error = cJSON_CreateObject();
    snprintf(type, sizeof(type), "%s%s", ERR_TYPE, kind);
    cJSON_AddStringToObject(ir->error, "type", type);
    cJSON_AddNumberToObject(ir->error, "status", status);
    cJSON_AddStringToObject(ir->error, "title", title);
    cJSON_AddStringToObject(ir->error, "detail", detail);
    cJSON_AddStringToObject(ir->error, "instance", path);
    return F_FAIL;
}

/* A JSON Pointer for messages into out (PATH_LEN bytes; cut if longer). */
__attribute__((format(printf, 2, 3))) static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, PATH_LEN, fmt, ap);
    va_end(ap);
}

/* 1 when some expression string in value mentions variable $name. */
static int mentions(const cJSON *value, const char *name)
{
    const cJSON *c;

    if (cJSON_IsString(value))
        return jqx_mentions(value->valuestring, name);
    cJSON_ArrayForEach(c, value)
    {
        if (mentions(c, name))
            return 1;
    }
    return 0;
}

/* The variables the expressions of value use, evaluated in task `name` at
 * path on input: only those it mentions are built (the rest are null), by
 * reference where the run owns them. A new object (NULL: out of memory). */
static cJSON *vars_for(struct irun *ir, const cJSON *value, const char *name, const char *path,
                       const cJSON *input)
{
    cJSON *v = cJSON_CreateObject(), *task, *c;

    if (v == NULL)
        return NULL;
    if (mentions(value, "input"))
        cJSON_AddItemToObject(v, "input",
                              input != NULL ? cJSON_Duplicate(input, 1) : cJSON_CreateNull());
    if (mentions(value, "context"))
        cJSON_AddItemReferenceToObject(v, "context", ir->context);
    if (mentions(value, "workflow"))
        cJSON_AddItemReferenceToObject(v, "workflow", ir->workflow);
    if (mentions(value, "task")) {
        task = cJSON_AddObjectToObject(v, "task");
        cJSON_AddStringToObject(task, "name", name);
        cJSON_AddStringToObject(task, "reference", path);
    }
    if (mentions(value, "runtime"))
        cJSON_AddItemToObject(v, "runtime", cJSON_CreateString("wf-server"));
    cJSON_ArrayForEach(c, ir->extra)
    {
        if (mentions(value, c->string))
            cJSON_AddItemReferenceToObject(v, c->string, c);
    }
    return v;
}

/* dsl_eval of value with the variables of the task; F_NEXT with *out, or
 * F_FAIL (an expression error at path). */
static enum flow eval(struct irun *ir, const cJSON *value, const cJSON *data, const char *name,
                      const char *path, const cJSON *task_input, cJSON **out)
{
    char err[JQX_ERR_MAX];
    cJSON *vars = vars_for(ir, value, name, path, task_input);

    if (vars == NULL)
        return fail(ir, "runtime", 500, "out of memory", "could not build the variables", path);
    if (dsl_eval(ir->d, value, data, vars, out, err, sizeof(err)) < 0) {
        cJSON_Delete(vars);
        return fail(ir, "expression", 400, "expression failed", err, path);
    }
    cJSON_Delete(vars);
    return F_NEXT;
}

/* jq's truth: everything but false and null. */
static int truthy(const cJSON *v)
{
    return v != NULL && !cJSON_IsFalse(v) && !cJSON_IsNull(v);
}

/* A host call's status as a flow: F_NEXT for WF_OK. */
static enum flow host_flow(struct irun *ir, enum wf_status st, const char *what, const char *path)
{
    const char *msg;

    if (st == WF_OK)
        return F_NEXT;
    if (st == WF_SUSPEND || st == WF_ECANCELLED) {
        ir->st = st;
        return F_STOP;
    }
    msg = ir->ctx->api->error(ir->ctx);
    if (st == WF_ETIMEDOUT)
        return fail(ir, "timeout", 408, "timed out", msg[0] != '\0' ? msg : what, path);
    return fail(ir, "runtime", st == WF_EINVAL ? 400 : 500, what, msg[0] != '\0' ? msg : what,
                path);
}

static enum flow run_list(struct irun *ir, const cJSON *list, const char *path, cJSON **data,
                          int depth);
static enum flow run_task(struct irun *ir, const char *name, const cJSON *task, const char *path,
                          cJSON **data, int depth);

/* call: an activity of the project, or http (the built-in activity). */
static enum flow do_call(struct irun *ir, const cJSON *task, const char *name, const char *path,
                         const cJSON *in, cJSON **out)
{
    const char *target = cJSON_GetObjectItemCaseSensitive(task, "call")->valuestring;
    const cJSON *with = cJSON_GetObjectItemCaseSensitive(task, "with");
    cJSON *args = NULL;
    char what[160];
    enum flow f;

    if (with != NULL) {
        f = eval(ir, with, in, name, path, in, &args);
        if (f != F_NEXT)
            return f;
    }
    if (strcmp(target, DSL_HTTP) == 0) {
        snprintf(what, sizeof(what), "http call failed");
        f = host_flow(ir, ir->ctx->api->activity(ir->ctx, DSL_HTTP_ACTIVITY, args, out), what,
                      path);
    } else {
        snprintf(what, sizeof(what), "activity \"%s\" failed", target);
        f = host_flow(ir, ir->ctx->api->activity(ir->ctx, target, args != NULL ? args : in, out),
                      what, path);
    }
    cJSON_Delete(args);
    return f;
}

/* switch: the first case whose when holds (or that has none) decides. */
static enum flow do_switch(struct irun *ir, const cJSON *cases, const char *name, const char *path,
                           const cJSON *in)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, cases)
    {
        const cJSON *cs = c->child, *when = cJSON_GetObjectItemCaseSensitive(cs, "when");
        const char *then = cJSON_GetObjectItemCaseSensitive(cs, "then")->valuestring;
        int hit = when == NULL;

        if (when != NULL) {
            cJSON *v = NULL;
            enum flow f = eval(ir, when, in, name, path, in, &v);
            if (f != F_NEXT)
                return f;
            hit = truthy(v);
            cJSON_Delete(v);
        }
        if (!hit)
            continue;
        if (strcmp(then, "continue") == 0)
            return F_NEXT;
        if (strcmp(then, "exit") == 0)
            return F_EXIT;
        if (strcmp(then, "end") == 0)
            return F_END;
        ir->goto_name = then;
        return F_GOTO;
    }
    return F_NEXT;
}

/* Runs list on a copy of in; *out gets the data it ends with. */
static enum flow sub_list(struct irun *ir, const cJSON *list, const char *path, const cJSON *in,
                          cJSON **out, int depth)
{
    enum flow f;

    *out = cJSON_Duplicate(in, 1);
    if (*out == NULL)
        return fail(ir, "runtime", 500, "out of memory", "could not copy the data", path);
    f = run_list(ir, list, path, out, depth + 1);
    if (f != F_NEXT) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return f;
}

/* Appends "/" and token, escaped as a JSON Pointer (~0, ~1), to buf. */
static int ptr_add(char *buf, size_t len, const char *token)
{
    size_t n = strlen(buf);

    if (n + 1 >= len)
        return -1;
    buf[n++] = '/';
    for (; *token != '\0'; token++) {
        const char *esc = *token == '~' ? "~0" : *token == '/' ? "~1" : NULL;
        size_t k = esc != NULL ? 2 : 1;
        if (n + k >= len)
            return -1;
        if (esc != NULL)
            memcpy(buf + n, esc, 2);
        else
            buf[n] = *token;
        n += k;
    }
    buf[n] = '\0';
    return 0;
}

/* The JSON Pointer of node within at (its path so far in buf): 1 when
 * found (buf holds it), else 0 (buf as it was). */
static int pointer_of(const cJSON *at, const cJSON *node, char *buf, size_t len)
{
    const cJSON *c;
    size_t mark = strlen(buf);
    int i = 0;

    if (at == node)
        return 1;
    cJSON_ArrayForEach(c, at)
    {
        char idx[16];
        snprintf(idx, sizeof(idx), "%d", i++);
        if (ptr_add(buf, len, cJSON_IsArray(at) ? idx : c->string) == 0 &&
            pointer_of(c, node, buf, len))
            return 1;
        buf[mark] = '\0';
    }
    return 0;
}

/* The node at JSON Pointer ptr in root (NULL: none); *last the last
 * token, unescaped, into last (len bytes). */
static const cJSON *pointer_get(const cJSON *root, const char *ptr, char *last, size_t len)
{
    const cJSON *n = root;

    last[0] = '\0';
    while (n != NULL && *ptr == '/') {
        size_t k = 0;
        for (ptr++; *ptr != '\0' && *ptr != '/'; ptr++) {
            char ch = *ptr;
            if (ch == '~' && (ptr[1] == '0' || ptr[1] == '1'))
                ch = *++ptr == '0' ? '~' : '/';
            if (k + 1 < len)
                last[k++] = ch;
        }
        last[k] = '\0';
        if (cJSON_IsArray(n)) {
            char *end;
            long i = strtol(last, &end, 10);
            n = *end == '\0' && last[0] != '\0' && i >= 0 ? cJSON_GetArrayItem(n, (int)i) : NULL;
        } else {
            n = cJSON_GetObjectItemCaseSensitive(n, last);
        }
    }
    return *ptr == '\0' ? n : NULL;
}

/* A child run's spec: this workflow on in, running node (a task, or with
 * list a task list) of the definition with the run's variables as they
 * are now (extra: more bound on top; taken). NULL: out of memory. */
static cJSON *branch_spec(struct irun *ir, const cJSON *node, int list, const cJSON *in,
                          cJSON *extra)
{
    cJSON *spec = cJSON_CreateObject(), *b, *vars = cJSON_Duplicate(ir->extra, 1), *c;
    char ptr[PATH_LEN] = "";

    if (spec == NULL || vars == NULL || !pointer_of(dsl_root(ir->d), node, ptr, sizeof(ptr))) {
        cJSON_Delete(spec);
        cJSON_Delete(vars);
        cJSON_Delete(extra);
        return NULL;
    }
    while (extra != NULL && (c = extra->child) != NULL) {
        cJSON_DetachItemViaPointer(extra, c);
        cJSON_DeleteItemFromObjectCaseSensitive(vars, c->string);
        cJSON_AddItemToObject(vars, c->string, c);
    }
    cJSON_Delete(extra);
    cJSON_AddStringToObject(spec, "workflow", ir->ctx->workflow);
    cJSON_AddItemToObject(spec, "input", in != NULL ? cJSON_Duplicate(in, 1) : cJSON_CreateNull());
    b = cJSON_AddObjectToObject(spec, "branch");
    if (b == NULL) {
        cJSON_Delete(spec);
        cJSON_Delete(vars);
        return NULL;
    }
    cJSON_AddStringToObject(b, "at", ptr);
    cJSON_AddBoolToObject(b, "list", list);
    cJSON_AddItemToObject(b, "context", cJSON_Duplicate(ir->context, 1));
    cJSON_AddItemToObject(b, "vars", vars);
    cJSON_AddItemToObject(
        b, "workflowInput",
        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ir->workflow, "input"), 1));
    return spec;
}

/* Runs specs (taken) as child runs joined by join, at most limit at once;
 * F_NEXT with *results (their {"status", "output", …} in order; the
 * first's alone for WF_JOIN_ANY). A child that failed fails the task. */
static enum flow spawn(struct irun *ir, cJSON *specs, enum wf_join join, int limit,
                       const char *path, cJSON **results)
{
    const struct wf_host_api *api = ir->ctx->api;
    enum wf_status st;

    *results = NULL;
    if (specs == NULL)
        return fail(ir, "runtime", 500, "out of memory", "could not build the branches", path);
    if (!WF_HAS_FIELD(api, struct wf_host_api, children)) {
        cJSON_Delete(specs);
        return fail(ir, "runtime", 501, "no child runs",
                    "this host cannot run branches concurrently", path);
    }
    st = api->children(ir->ctx, specs, join, limit, results);
    cJSON_Delete(specs);
    if (st == WF_ERROR) {
        /* A branch that raised a Serverless Workflow error raises it here
         * too (its type and status, for a catch to filter on); any other
         * failure is a runtime error naming the child. */
        const cJSON *r;
        cJSON_ArrayForEach(r, *results)
        {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
            if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "type"))) {
                cJSON *copy = cJSON_Duplicate(e, 1);
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "executionId");
                cJSON_DeleteItemFromObjectCaseSensitive(copy, "message");
                cJSON_DeleteItemFromObjectCaseSensitive(copy, "childExecutionId");
                if (cJSON_IsString(id))
                    cJSON_AddStringToObject(copy, "childExecutionId", id->valuestring);
                cJSON_Delete(*results);
                *results = NULL;
                if (copy == NULL)
                    return fail(ir, "runtime", 500, "out of memory", "a branch failed", path);
                cJSON_Delete(ir->error);
                ir->error = copy;
                return F_FAIL;
            }
        }
    }
    if (st != WF_OK) {
        cJSON_Delete(*results);
        *results = NULL;
        return host_flow(ir, st, join == WF_JOIN_ANY ? "no branch completed" : "a branch failed",
                         path);
    }
    return F_NEXT;
}

/* The outputs of results, in order (a new array; NULL: out of memory). */
static cJSON *outputs_of(const cJSON *results)
{
    cJSON *all = cJSON_CreateArray();
    const cJSON *r;

    cJSON_ArrayForEach(r, results)
    {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(r, "output");
        cJSON_AddItemToArray(all, o != NULL ? cJSON_Duplicate(o, 1) : cJSON_CreateNull());
    }
    return all;
}

/* Binds extra variable name to v (owned) for the duration of a body;
 * returns the previous binding (NULL: none) to restore with unbind. */
static cJSON *bind(struct irun *ir, const char *name, cJSON *v)
{
    cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(ir->extra, name);

    cJSON_AddItemToObject(ir->extra, name, v);
    return old;
}

static void unbind(struct irun *ir, const char *name, cJSON *old)
{
    cJSON_DeleteItemFromObjectCaseSensitive(ir->extra, name);
    if (old != NULL)
        cJSON_AddItemToObject(ir->extra, name, old);
}

/* for: the body runs for each item, the data flowing through. */
static enum flow do_for(struct irun *ir, const cJSON *task, const char *name, const char *path,
                        const cJSON *in, cJSON **out, int depth)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(task, "for");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(task, "do");
    const char *each = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "each"));
    const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "at"));
    const cJSON *conc;
    cJSON *items = NULL, *data;
    char bp[PATH_LEN];
    enum flow f;
    int i = 0;

    each = each != NULL ? each : "item";
    at = at != NULL ? at : "index";
    f = eval(ir, cJSON_GetObjectItemCaseSensitive(spec, "in"), in, name, path, in, &items);
    if (f != F_NEXT)
        return f;
    if (!cJSON_IsArray(items)) {
        cJSON_Delete(items);
        return fail(ir, "validation", 400, "for needs an array", "\"in\" did not give an array",
                    path);
    }
    conc = cJSON_GetObjectItemCaseSensitive(spec, "concurrency");
    if (conc != NULL) {
        /* Each iteration a child run on the task's input, at most
         * `concurrency` at once; the output is theirs in order. */
        cJSON *specs = cJSON_CreateArray(), *results = NULL;
        for (const cJSON *it = items->child; specs != NULL && it != NULL; it = it->next, i++) {
            cJSON *x = cJSON_CreateObject(), *one;
            cJSON_AddItemToObject(x, each, cJSON_Duplicate(it, 1));
            cJSON_AddNumberToObject(x, at, i);
            one = branch_spec(ir, body, 1, in, x);
            if (one == NULL || !cJSON_AddItemToArray(specs, one)) {
                cJSON_Delete(one);
                cJSON_Delete(specs);
                specs = NULL;
            }
        }
        cJSON_Delete(items);
        f = spawn(ir, specs, WF_JOIN_ALL, (int)conc->valuedouble, path, &results);
        if (f == F_NEXT) {
            *out = outputs_of(results);
            cJSON_Delete(results);
        }
        return f;
    }
    pathf(bp, "%s/do", path);
    data = cJSON_Duplicate(in, 1);
    for (const cJSON *it = items->child; it != NULL && f == F_NEXT; it = it->next, i++) {
        cJSON *old_item = bind(ir, each, cJSON_Duplicate(it, 1));
        cJSON *old_at = bind(ir, at, cJSON_CreateNumber(i));

        f = run_list(ir, body, bp, &data, depth + 1);
        unbind(ir, at, old_at);
        unbind(ir, each, old_item);
    }
    cJSON_Delete(items);
    if (f == F_EXIT)
        f = F_NEXT;
    if (f != F_NEXT) {
        cJSON_Delete(data);
        return f;
    }
    *out = data;
    return F_NEXT;
}

/* fork: each branch a child run on the task's input, all at once; all
 * their outputs in order, or with compete the first to complete's (the
 * others are cancelled). */
static enum flow do_fork(struct irun *ir, const cJSON *spec, const char *path, const cJSON *in,
                         cJSON **out)
{
    const cJSON *branches = cJSON_GetObjectItemCaseSensitive(spec, "branches"), *b;
    int compete = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "compete"));
    cJSON *specs = cJSON_CreateArray(), *results = NULL;
    enum flow f;

    cJSON_ArrayForEach(b, branches)
    {
        cJSON *one = specs != NULL ? branch_spec(ir, b->child, 0, in, NULL) : NULL;
        if (one == NULL || !cJSON_AddItemToArray(specs, one)) {
            cJSON_Delete(one);
            cJSON_Delete(specs);
            specs = NULL;
        }
    }
    f = spawn(ir, specs, compete ? WF_JOIN_ANY : WF_JOIN_ALL, 0, path, &results);
    if (f != F_NEXT)
        return f;
    if (compete) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(results, 0), "output");
        *out = o != NULL ? cJSON_Duplicate(o, 1) : cJSON_CreateNull();
    } else {
        *out = outputs_of(results);
    }
    cJSON_Delete(results);
    return F_NEXT;
}

/* listen: one signal, named by the event type, with the task's timeout. */
static enum flow do_listen(struct irun *ir, const cJSON *task, const char *path, cJSON **out)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(task, "listen");
    const cJSON *with = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "to"), "one"),
        "with");
    const char *type = cJSON_GetObjectItemCaseSensitive(with, "type")->valuestring;
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(task, "timeout");
    long long ms = to != NULL ? dsl_duration_ms(cJSON_GetObjectItemCaseSensitive(to, "after")) : -1;
    char what[160];

    snprintf(what, sizeof(what), "no \"%s\" signal within %lld ms", type, ms);
    return host_flow(ir, ir->ctx->api->wait_signal(ir->ctx, type, ms, out), what, path);
}

/* 1 when the catch's errors.with matches the current error. */
static int catch_matches(struct irun *ir, const cJSON *cat)
{
    const cJSON *with =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cat, "errors"), "with");
    const cJSON *c;

    cJSON_ArrayForEach(c, with)
    {
        const cJSON *mine = cJSON_GetObjectItemCaseSensitive(ir->error, c->string);
        if (mine == NULL || !cJSON_Compare(mine, c, 1))
            return 0;
    }
    return 1;
}

/* try: the block, retried by catch.retry while its errors match; then
 * catch.do (or nothing) in place of the failure. */
static enum flow do_try(struct irun *ir, const cJSON *task, const char *name, const char *path,
                        const cJSON *in, cJSON **out, int depth)
{
    const cJSON *block = cJSON_GetObjectItemCaseSensitive(task, "try");
    const cJSON *cat = cJSON_GetObjectItemCaseSensitive(task, "catch");
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive(cat, "retry");
    const char *as = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cat, "as"));
    int attempts = 1;
    long long delay = 0;
    char bp[PATH_LEN];
    enum flow f;

    if (retry != NULL) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(retry, "limit"),
                                             "attempt"),
            "count");
        attempts = (int)n->valuedouble;
        if (cJSON_GetObjectItemCaseSensitive(retry, "delay") != NULL)
            delay = dsl_duration_ms(cJSON_GetObjectItemCaseSensitive(retry, "delay"));
    }
    as = as != NULL ? as : "error";
    pathf(bp, "%s/try", path);
    for (int attempt = 1;; attempt++) {
        const cJSON *when = cJSON_GetObjectItemCaseSensitive(cat, "when");
        const cJSON *except = cJSON_GetObjectItemCaseSensitive(cat, "exceptWhen");
        cJSON *old, *v = NULL;
        int caught;

        f = sub_list(ir, block, bp, in, out, depth);
        if (f == F_EXIT)
            f = F_NEXT;
        if (f != F_FAIL)
            return f;
        caught = catch_matches(ir, cat);
        old = bind(ir, as, cJSON_Duplicate(ir->error, 1));
        if (caught && when != NULL) {
            f = eval(ir, when, in, name, path, in, &v);
            caught = f == F_NEXT && truthy(v);
            cJSON_Delete(v);
            v = NULL;
        }
        if (caught && except != NULL) {
            f = eval(ir, except, in, name, path, in, &v);
            caught = f == F_NEXT && !truthy(v);
            cJSON_Delete(v);
        }
        if (!caught) {
            unbind(ir, as, old);
            return F_FAIL;
        }
        if (attempt < attempts) {
            unbind(ir, as, old);
            f = host_flow(ir, ir->ctx->api->sleep(ir->ctx, delay), "retry delay", path);
            if (f != F_NEXT)
                return f;
            continue;
        }
        /* caught for good */
        cJSON_Delete(ir->error);
        ir->error = NULL;
        if (cJSON_GetObjectItemCaseSensitive(cat, "do") != NULL) {
            char cp[PATH_LEN];
            pathf(cp, "%s/catch/do", path);
            f = sub_list(ir, cJSON_GetObjectItemCaseSensitive(cat, "do"), cp, in, out, depth);
            if (f == F_EXIT)
                f = F_NEXT;
        } else {
            *out = cJSON_Duplicate(in, 1);
            f = F_NEXT;
        }
        unbind(ir, as, old);
        return f;
    }
}

/* One task on the data; *data replaced by its output on F_NEXT/F_GOTO/…
 * (but F_FAIL and F_STOP, which leave it). */
static enum flow run_task(struct irun *ir, const char *name, const cJSON *task, const char *path,
                          cJSON **data, int depth)
{
    const cJSON *v, *then;
    cJSON *in = NULL, *out = NULL, *x = NULL;
    enum flow f = F_NEXT, after = F_NEXT;

    if ((v = cJSON_GetObjectItemCaseSensitive(task, "if")) != NULL) {
        f = eval(ir, v, *data, name, path, *data, &x);
        if (f != F_NEXT)
            return f;
        if (!truthy(x)) {
            cJSON_Delete(x);
            return F_NEXT; /* skipped: the data goes on unchanged */
        }
        cJSON_Delete(x);
    }
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(task, "input"), "from");
    if (v != NULL)
        f = eval(ir, v, *data, name, path, *data, &in);
    else
        in = cJSON_Duplicate(*data, 1);
    if (f != F_NEXT)
        return f;

    if ((v = cJSON_GetObjectItemCaseSensitive(task, "for")) != NULL)
        f = do_for(ir, task, name, path, in, &out, depth);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "call")) != NULL)
        f = do_call(ir, task, name, path, in, &out);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "set")) != NULL)
        f = eval(ir, v, in, name, path, in, &out);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "inject")) != NULL)
        out = cJSON_Duplicate(v, 1);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "wait")) != NULL)
        f = host_flow(ir, ir->ctx->api->sleep(ir->ctx, dsl_duration_ms(v)), "wait", path);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "switch")) != NULL)
        after = f = do_switch(ir, v, name, path, in);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "try")) != NULL)
        f = do_try(ir, task, name, path, in, &out, depth);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "do")) != NULL)
        f = sub_list(ir, v, path, in, &out, depth);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "fork")) != NULL)
        f = do_fork(ir, v, path, in, &out);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "listen")) != NULL)
        f = do_listen(ir, task, path, &out);
    else if ((v = cJSON_GetObjectItemCaseSensitive(task, "raise")) != NULL) {
        cJSON *e = NULL;
        f = eval(ir, cJSON_GetObjectItemCaseSensitive(v, "error"), in, name, path, in, &e);
        if (f == F_NEXT) {
            if (cJSON_GetObjectItemCaseSensitive(e, "instance") == NULL)
                cJSON_AddStringToObject(e, "instance", path);
            cJSON_Delete(ir->error);
            ir->error = e;
            f = F_FAIL;
        }
    }
    if (f == F_FAIL || f == F_STOP || f == F_END || (f != F_NEXT && after == F_NEXT)) {
        cJSON_Delete(in);
        cJSON_Delete(out);
        return f;
    }
    if (out == NULL) /* wait, switch: the input goes on */
        out = cJSON_Duplicate(in, 1);
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(task, "output"), "as");
    if (v != NULL) {
        f = eval(ir, v, out, name, path, in, &x);
        cJSON_Delete(out);
        out = x;
        if (f != F_NEXT) {
            cJSON_Delete(in);
            return f;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(task, "export"), "as");
    if (v != NULL) {
        f = eval(ir, v, out, name, path, in, &x);
        if (f != F_NEXT) {
            cJSON_Delete(in);
            cJSON_Delete(out);
            return f;
        }
        cJSON_Delete(ir->context);
        ir->context = x;
    }
    cJSON_Delete(in);
    cJSON_Delete(*data);
    *data = out;
    if (after != F_NEXT)
        return after; /* a switch's case decided */
    then = cJSON_GetObjectItemCaseSensitive(task, "then");
    if (then == NULL || strcmp(then->valuestring, "continue") == 0)
        return F_NEXT;
    if (strcmp(then->valuestring, "exit") == 0)
        return F_EXIT;
    if (strcmp(then->valuestring, "end") == 0)
        return F_END;
    ir->goto_name = then->valuestring;
    return F_GOTO;
}

static enum flow run_list(struct irun *ir, const cJSON *list, const char *path, cJSON **data,
                          int depth)
{
    const cJSON *t = list->child;
    char p[PATH_LEN];
    int i = 0, steps = 0;

    while (t != NULL) {
        enum flow f;

        if (++steps > 100000)
            return fail(ir, "runtime", 500, "too many tasks",
                        "more than 100000 tasks ran in one list (a then loop?)", path);
        pathf(p, "%s/%d/%s", path, i, t->child->string);
        f = run_task(ir, t->child->string, t->child, p, data, depth);
        if (f == F_NEXT) {
            t = t->next;
            i++;
            continue;
        }
        if (f != F_GOTO)
            return f == F_EXIT ? F_NEXT : f;
        for (t = list->child, i = 0; t != NULL; t = t->next, i++)
            if (strcmp(t->child->string, ir->goto_name) == 0)
                break;
    }
    return F_NEXT;
}

/* The run's failure as one line. */
static void failure_text(const cJSON *e, char *err, size_t errlen)
{
    const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "title"));
    const char *detail = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "detail"));
    const char *where = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "instance"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));

    if (title == NULL && detail == NULL) {
        char *text = cJSON_PrintUnformatted(e);
        snprintf(err, errlen, "raised %s", text != NULL ? text : "an error");
        free(text);
        return;
    }
    snprintf(err, errlen, "%s%s%s%s%s%s",
             title != NULL  ? title
             : type != NULL ? type
                            : "error",
             detail != NULL ? ": " : "", detail != NULL ? detail : "", where != NULL ? " (at " : "",
             where != NULL ? where : "", where != NULL ? ")" : "");
}

/* A child run's part of the definition (dsl_run with a branch): the task
 * or task list at branch.at, with the variables and $context its parent
 * had, on input; *data its output. */
static enum flow run_branch(struct irun *ir, const cJSON *branch, const cJSON *input, cJSON **data)
{
    const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(branch, "at"));
    const cJSON *v;
    const cJSON *node;
    char name[PATH_LEN];
    enum flow f;

    node = at != NULL ? pointer_get(dsl_root(ir->d), at, name, sizeof(name)) : NULL;
    if (node == NULL)
        return fail(ir, "runtime", 500, "no such branch", at != NULL ? at : "(none)", "/");
    if ((v = cJSON_GetObjectItemCaseSensitive(branch, "context")) != NULL) {
        cJSON_Delete(ir->context);
        ir->context = cJSON_Duplicate(v, 1);
    }
    if (cJSON_IsObject(v = cJSON_GetObjectItemCaseSensitive(branch, "vars"))) {
        cJSON_Delete(ir->extra);
        ir->extra = cJSON_Duplicate(v, 1);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(branch, "workflowInput")) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(ir->workflow, "input", cJSON_Duplicate(v, 1));
    if (ir->context == NULL || ir->extra == NULL)
        return fail(ir, "runtime", 500, "out of memory", "could not restore the variables", at);
    *data = input != NULL ? cJSON_Duplicate(input, 1) : cJSON_CreateNull();
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(branch, "list")))
        f = run_list(ir, node, at, data, 1);
    else
        f = run_task(ir, name, node, at, data, 1);
    /* a branch ends where it ends */
    return f == F_EXIT || f == F_END || f == F_GOTO ? F_NEXT : f;
}

enum wf_status dsl_run(struct dsl_def *d, struct wf_ctx *ctx, const cJSON *input,
                       const cJSON *branch, cJSON **output, char *err, size_t errlen)
{
    const cJSON *root = dsl_root(d), *v;
    struct irun ir = {
        d,     ctx, cJSON_CreateObject(), cJSON_CreateObject(), NULL, cJSON_CreateObject(),
        WF_OK, NULL};
    cJSON *data = NULL, *x;
    enum flow f = F_NEXT;
    enum wf_status st = WF_OK;

    *output = NULL;
    if (ir.context == NULL || ir.workflow == NULL || ir.extra == NULL) {
        snprintf(err, errlen, "out of memory");
        st = WF_ENOMEM;
        goto out;
    }
    cJSON_AddStringToObject(ir.workflow, "id", ctx->execution_id);
    cJSON_AddItemToObject(ir.workflow, "input",
                          input != NULL ? cJSON_Duplicate(input, 1) : cJSON_CreateNull());
    /* by reference: the loaded definition outlives the run's turn */
    cJSON_AddItemReferenceToObject(ir.workflow, "definition",
                                   cJSON_GetObjectItemCaseSensitive(dsl_root_mut(d), "document"));
    if (branch != NULL) {
        f = run_branch(&ir, branch, input, &data);
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "input"), "from");
    if (v != NULL)
        f = eval(&ir, v, input, "input", "/input", input, &data);
    else
        data = input != NULL ? cJSON_Duplicate(input, 1) : cJSON_CreateNull();
    if (f == F_NEXT)
        f = run_list(&ir, cJSON_GetObjectItemCaseSensitive(root, "do"), "/do", &data, 0);
    if (f == F_NEXT || f == F_END) {
        f = F_NEXT;
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "output"),
                                             "as");
        if (v != NULL) {
            f = eval(&ir, v, data, "output", "/output", data, &x);
            if (f == F_NEXT) {
                cJSON_Delete(data);
                data = x;
            }
        }
    }
done:
    if (f == F_STOP) {
        st = ir.st;
    } else if (f == F_FAIL) {
        failure_text(ir.error, err, errlen);
        st = WF_ERROR;
        *output = ir.error; /* the error raised, for the host to keep */
        ir.error = NULL;
    } else {
        *output = data;
        data = NULL;
    }
out:
    cJSON_Delete(data);
    cJSON_Delete(ir.context);
    cJSON_Delete(ir.workflow);
    cJSON_Delete(ir.error);
    cJSON_Delete(ir.extra);
    return st;
}
