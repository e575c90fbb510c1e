/*
 * api_health.c: see api_health.h.
 *
 * Invariants: no route here touches the database, the loop or a lock; each
 * reads a few flags with atomic loads and queues a reply, so a probe costs
 * what /health costs and answers while the loop is busy or the database
 * hangs. /health's two replies and /health/live's are built once at start
 * and queued by reference; /health/ready's varies with its checks and is
 * built per request (a few small allocations: out of memory is answered
 * with MHD_NO, which closes the connection, as any reply that cannot be
 * built).
 *
 * "Ready" means this instance can take traffic now. HTTP itself starts only
 * after migrations are applied and the manager's hello arrived (core.c), so
 * a core that has not got that far does not answer at all: its port is the
 * manager's, and a probe waits in the listen backlog until a core serves or
 * the prober's timeout says "not ready". The migrations and manager checks
 * are still read from their own flags, so the reply never claims what core
 * did not see.
 */
#include "api_health.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The seed's /health reply: {"status","service","version","database"}. */
static struct MHD_Response *health_response(int ok)
{
    cJSON *o = cJSON_CreateObject();
    char *text;
    struct MHD_Response *resp;

    cJSON_AddStringToObject(o, "status", ok ? "ok" : "error");
    cJSON_AddStringToObject(o, "service", "wf-server");
    cJSON_AddStringToObject(o, "version", WF_VERSION);
    cJSON_AddStringToObject(o, "database", ok ? "ok" : "unreachable");
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL)
        return NULL;
    resp = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
    if (resp == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return resp;
}

static struct MHD_Response *live_response(void)
{
    /* Not const only because libmicrohttpd's prototype is not: it never
     * writes a persistent buffer. */
    static char text[] = "{\"status\":\"live\"}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof(text) - 1, text, MHD_RESPMEM_PERSISTENT);

    if (resp != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return resp;
}

int api_health_init(struct core *c)
{
    c->health[0] = health_response(0);
    c->health[1] = health_response(1);
    c->live = live_response();
    if (c->health[0] == NULL || c->health[1] == NULL || c->live == NULL) {
        log_error("could not build the health replies: out of memory");
        return -1;
    }
    return 0;
}

void api_health_free(struct core *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->health[i] != NULL)
            MHD_destroy_response(c->health[i]);
        c->health[i] = NULL;
    }
    if (c->live != NULL)
        MHD_destroy_response(c->live);
    c->live = NULL;
}

enum MHD_Result api_health(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                           const char *const *args)
{
    int ok = __atomic_load_n(&c->db_ok, __ATOMIC_RELAXED) != 0;

    return MHD_queue_response(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, c->health[ok]);
}

enum MHD_Result api_health_live(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const char *const *args)
{
    return MHD_queue_response(conn, MHD_HTTP_OK, c->live);
}

/*
 * 200 {"status":"ready","checks":{…every "ok"}} or 503 {"status":"not
 * ready","checks":{…}}, each check "ok" or what is wrong with it.
 */
enum MHD_Result api_health_ready(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args)
{
    struct core_readiness rd;
    int ready;
    cJSON *o = cJSON_CreateObject();
    cJSON *checks = cJSON_CreateObject();

    if (o == NULL || checks == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(checks);
        return MHD_NO;
    }
    core_readiness(c, &rd);
    ready = core_is_ready(&rd);
    cJSON_AddStringToObject(o, "status", ready ? "ready" : "not ready");
    cJSON_AddItemToObject(o, "checks", checks);
    cJSON_AddStringToObject(checks, "database", rd.database ? "ok" : "unreachable");
    cJSON_AddStringToObject(checks, "core", rd.core ? "ok" : "stopping");
    cJSON_AddStringToObject(checks, "manager", rd.manager ? "ok" : "unreachable");
    cJSON_AddStringToObject(checks, "migrations", rd.migrations ? "ok" : "pending");
    return http_send_json(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
}
