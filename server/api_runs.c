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
                       t->key[0] != '\0' ? t->key : NULL, on_triggered, r) < 0)
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
    if (apibody_trigger(r->body, r->len, t->workflow, &t->input, t->key, &why) < 0) {
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
