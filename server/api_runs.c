/*
 * api_runs.c: see api_runs.h. The body is checked on the libmicrohttpd
 * thread (apibody.c); the run is started on core's loop by the engine, which
 * answers after the run's row is committed.
 */
#include "api_runs.h"

#include <stdlib.h>
#include <string.h>

#include "api_code.h"
#include "apibody.h"
#include "engine.h"
#include "log.h"

struct trigger_call {
    char project[WF_ID_MAX + 1];
    char workflow[65];
    char key[APIBODY_KEY_MAX + 1];
    long long timeout_ms;
    char *input;
};

static void trigger_call_free(void *arg)
{
    struct trigger_call *t = arg;

    free(t->input);
    free(t);
}

/* Loop: the engine's answer. */
static void on_triggered(void *arg, const struct engine_trigger_result *res)
{
    struct http_req *r = arg;
    cJSON *o;

    if (res->status != 200 && res->status != 202) {
        http_finish_error(r, (unsigned)res->status, "%s",
                          res->message != NULL ? res->message : "could not start the run");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    cJSON_AddStringToObject(o, "executionId", res->execution_id);
    cJSON_AddStringToObject(o, "status", res->run_status != NULL ? res->run_status : "pending");
    http_finish(r, (unsigned)res->status, o);
}

static void trigger_on_loop(void *arg)
{
    struct http_req *r = arg;
    struct trigger_call *t = r->work;

    if (core_stopping(r->core)) {
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (engine_trigger(r->core->engine, t->project, t->workflow, t->input,
                       t->key[0] != '\0' ? t->key : NULL, t->timeout_ms, on_triggered, r) < 0)
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
}

enum MHD_Result api_runs_trigger(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args)
{
    struct trigger_call *t;
    const char *why = NULL;

    if (!ju_valid_id(args[0]))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid project id: must match ^[A-Za-z0-9_-]{1,64}$");
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return MHD_NO;
    if (apibody_trigger(r->body, r->len, t->workflow, &t->input, t->key, &t->timeout_ms, &why) <
        0) {
        free(t);
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", why);
    }
    if (!api_valid_workflow_name(t->workflow)) {
        trigger_call_free(t);
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid workflow name: must be kebab-case "
                               "(^[a-z0-9]+(-[a-z0-9]+)*$, at most 64 bytes)");
    }
    snprintf(t->project, sizeof(t->project), "%s", args[0]);
    http_set_work(r, t, trigger_call_free);
    return http_defer_to_loop(c, r, trigger_on_loop);
}

/* ---- cancel, signal, retry ---- */

struct run_call {
    char op[8];
    char id[40];
    char name[129];
    char *payload;
};

static void run_call_free(void *arg)
{
    struct run_call *k = arg;

    free(k->payload);
    free(k);
}

static void on_run_call(void *arg, const struct engine_call_result *res)
{
    struct http_req *r = arg;
    struct run_call *k = r->work;
    cJSON *o;

    if (res->status >= 300) {
        http_finish_error(r, (unsigned)res->status, "%s",
                          res->message != NULL ? res->message : "could not do it");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    cJSON_AddStringToObject(o, "executionId", k->id);
    if (strcmp(k->op, "signal") == 0)
        cJSON_AddStringToObject(o, "signal", k->name);
    if (res->run_status != NULL)
        cJSON_AddStringToObject(o, "status", res->run_status);
    http_finish(r, (unsigned)res->status, o);
}

static void run_call_on_loop(void *arg)
{
    struct http_req *r = arg;
    struct run_call *k = r->work;
    struct engine *e = r->core->engine;
    int rc;

    if (core_stopping(r->core)) {
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (strcmp(k->op, "cancel") == 0)
        rc = engine_cancel(e, k->id, on_run_call, r);
    else if (strcmp(k->op, "signal") == 0)
        rc = engine_signal(e, k->id, k->name, k->payload, on_run_call, r);
    else
        rc = engine_retry(e, k->id, on_run_call, r);
    if (rc < 0)
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
}

/* 1 if name is a signal name: ^[A-Za-z0-9_.:-]{1,128}$ */
static int valid_signal_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '-'))
            return 0;
    }
    return 1;
}

static enum MHD_Result run_call(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const char *op, const char *id, const char *name)
{
    struct run_call *k;
    const char *why = NULL;
    char lower[40];
    size_t n = strlen(id);

    /* Ids are UUIDs; accept upper-case hex as the same id. */
    for (size_t i = 0; i < n && i + 1 < sizeof(lower); i++)
        lower[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    lower[n < sizeof(lower) ? n : sizeof(lower) - 1] = '\0';
    if (!engine_valid_run_id(lower))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid execution id: must be a UUID");
    if (name != NULL && !valid_signal_name(name))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid signal name: must match ^[A-Za-z0-9_.:-]{1,128}$");
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return MHD_NO;
    snprintf(k->op, sizeof(k->op), "%s", op);
    snprintf(k->id, sizeof(k->id), "%s", lower);
    snprintf(k->name, sizeof(k->name), "%s", name != NULL ? name : "");
    if (name != NULL && apibody_json_value(r->body, r->len, &k->payload, &why) < 0) {
        free(k);
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", why);
    }
    http_set_work(r, k, run_call_free);
    return http_defer_to_loop(c, r, run_call_on_loop);
}

enum MHD_Result api_runs_cancel(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const char *const *args)
{
    return run_call(c, conn, r, "cancel", args[0], NULL);
}

enum MHD_Result api_runs_signal(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const char *const *args)
{
    return run_call(c, conn, r, "signal", args[0], args[1]);
}

enum MHD_Result api_runs_retry(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                               const char *const *args)
{
    return run_call(c, conn, r, "retry", args[0], NULL);
}
