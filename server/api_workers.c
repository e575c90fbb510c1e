/*
 * api_workers.c: see api_workers.h.
 *
 * Start/stop/restart check the project exists (from the worker view when it
 * has a worker, else one read), then ask the manager and suspend the
 * connection until it answers; the reply is built in worker_call_done. The
 * dispatcher records the desired state of a call that succeeded.
 * Status and list read core's in-memory view of the manager's slots, so
 * they cost no database round trip for a project with a worker.
 */
#include "api_workers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CALL_MARGIN_MS 5000

enum MHD_Result api_health(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                           const char *const *args)
{
    int ok = __atomic_load_n(&c->db_ok, __ATOMIC_RELAXED) != 0;

    return MHD_queue_response(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, c->health[ok]);
}

/* Appends to buf[*pos..cap), never past it (the text is capped, not grown:
 * its size is bounded by the number of statuses, not of workers). */
static void metric(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void metric(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*pos >= cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos += (size_t)n < cap - *pos ? (size_t)n : cap - *pos - 1;
}

enum MHD_Result api_metrics(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                            const char *const *args)
{
    static const char *const statuses[] = {"starting", "running", "draining", "crashed", "failed"};
    int counts[5] = {0, 0, 0, 0, 0};
    long long restarts = 0;
    double max_age = 0;
    int64_t now = ju_wall_ms();
    size_t cap = 8192, pos = 0;
    char *buf = malloc(cap);
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (buf == NULL)
        return MHD_NO;
    pthread_rwlock_rdlock(&c->view_lock);
    for (size_t i = 0; i < c->views.n; i++) {
        const struct core_view *v = c->views.items[i];
        for (size_t k = 0; k < 5; k++) {
            if (strcmp(v->status, statuses[k]) == 0)
                counts[k]++;
        }
        restarts += v->restarts;
        if (strcmp(v->status, "running") == 0 && v->last_heartbeat > 0 &&
            (double)(now - v->last_heartbeat) / 1000.0 > max_age)
            max_age = (double)(now - v->last_heartbeat) / 1000.0;
    }
    pthread_rwlock_unlock(&c->view_lock);

    metric(buf, cap, &pos,
           "# HELP wf_build_info The running wf-server.\n# TYPE wf_build_info gauge\n"
           "wf_build_info{version=\"%s\"} 1\n",
           WF_VERSION);
    metric(buf, cap, &pos,
           "# HELP wf_database_up Whether core's last database ping succeeded.\n"
           "# TYPE wf_database_up gauge\nwf_database_up %d\n",
           __atomic_load_n(&c->db_ok, __ATOMIC_RELAXED) != 0);
    metric(buf, cap, &pos,
           "# HELP wf_workers Projects with a worker on this server, by status.\n"
           "# TYPE wf_workers gauge\n");
    for (size_t k = 0; k < 5; k++)
        metric(buf, cap, &pos, "wf_workers{status=\"%s\"} %d\n", statuses[k], counts[k]);
    metric(buf, cap, &pos,
           "# HELP wf_worker_restarts Crash restarts of the current workers.\n"
           "# TYPE wf_worker_restarts gauge\nwf_worker_restarts %lld\n",
           restarts);
    metric(buf, cap, &pos,
           "# HELP wf_worker_heartbeat_age_max_seconds Age of the stalest running worker's "
           "last heartbeat.\n# TYPE wf_worker_heartbeat_age_max_seconds gauge\n"
           "wf_worker_heartbeat_age_max_seconds %.3f\n",
           max_age);
    metric(buf, cap, &pos,
           "# HELP wf_worker_starts_total Worker processes started since core started.\n"
           "# TYPE wf_worker_starts_total counter\nwf_worker_starts_total %llu\n",
           (unsigned long long)__atomic_load_n(&c->stats.worker_starts, __ATOMIC_RELAXED));
    metric(buf, cap, &pos,
           "# HELP wf_worker_crashes_total Worker crashes seen since core started.\n"
           "# TYPE wf_worker_crashes_total counter\nwf_worker_crashes_total %llu\n",
           (unsigned long long)__atomic_load_n(&c->stats.worker_crashes, __ATOMIC_RELAXED));
    metric(buf, cap, &pos,
           "# HELP wf_http_requests_total HTTP requests completed since core started.\n"
           "# TYPE wf_http_requests_total counter\nwf_http_requests_total %llu\n",
           (unsigned long long)__atomic_load_n(&c->stats.http_requests, __ATOMIC_RELAXED));

    resp = MHD_create_response_from_buffer_with_free_callback(pos, buf, free);
    if (resp == NULL) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result api_workers_list(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "workers");
    int n = 0;

    pthread_rwlock_rdlock(&c->view_lock);
    for (size_t i = 0; i < c->views.n; i++) {
        const struct core_view *v = c->views.items[i];
        if (strcmp(v->status, "running") == 0 || strcmp(v->status, "starting") == 0 ||
            strcmp(v->status, "crashed") == 0) {
            ju_append(arr, cJSON_CreateString(v->project));
            n++;
        }
    }
    pthread_rwlock_unlock(&c->view_lock);
    cJSON_AddNumberToObject(o, "count", n);
    return http_send_json(conn, MHD_HTTP_OK, o);
}

/* Writes the success message of a manager reply code. */
static void success_message(const char *code, const char *project, char *buf, size_t len)
{
    if (strcmp(code, "started") == 0)
        snprintf(buf, len, "Worker started for project %s", project);
    else if (strcmp(code, "started_fresh") == 0)
        snprintf(buf, len, "Worker started for project %s (was not running)", project);
    else if (strcmp(code, "already_running") == 0)
        snprintf(buf, len, "Worker already running for project %s", project);
    else if (strcmp(code, "restarted") == 0)
        snprintf(buf, len, "Worker restarted for project %s", project);
    else if (strcmp(code, "stopped") == 0)
        snprintf(buf, len, "Worker stopped for project %s", project);
    else if (strcmp(code, "not_running") == 0)
        snprintf(buf, len, "Worker not running for project %s", project);
    else
        snprintf(buf, len, "Done for project %s", project);
}

static unsigned error_status(const char *code)
{
    if (strcmp(code, "conflict") == 0)
        return MHD_HTTP_CONFLICT;
    if (strcmp(code, "shutdown") == 0)
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    if (strcmp(code, "bad_request") == 0)
        return MHD_HTTP_BAD_REQUEST;
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static enum MHD_Result worker_call_done(struct core *c, struct MHD_Connection *conn,
                                        struct http_req *r)
{
    const cJSON *rep = r->call.reply;
    const char *code;
    char msg[160];
    cJSON *o;
    int64_t pid;

    if (rep == NULL) {
        if (r->call.fail_status == MHD_HTTP_SERVICE_UNAVAILABLE)
            return http_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        log_error("%s of project %s: no answer from the manager in time", r->call.op,
                  r->call.project);
        return http_send_error(conn, MHD_HTTP_GATEWAY_TIMEOUT,
                               "timed out waiting for the worker of project \"%s\"",
                               r->call.project);
    }
    code = ju_str(rep, "code") != NULL ? ju_str(rep, "code") : "failed";
    if (!ju_bool(rep, "ok")) {
        const char *err = ju_str(rep, "error");
        return http_send_error(conn, error_status(code), "%s",
                               err != NULL ? err : "the manager refused the request");
    }
    o = cJSON_CreateObject();
    success_message(code, r->call.project, msg, sizeof(msg));
    cJSON_AddBoolToObject(o, "success", 1);
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "projectId", r->call.project);
    if (ju_str(rep, "worker_id") != NULL)
        cJSON_AddStringToObject(o, "workerId", ju_str(rep, "worker_id"));
    if (ju_int(rep, "pid", &pid) == 0 && strcmp(code, "stopped") != 0)
        cJSON_AddNumberToObject(o, "pid", (double)pid);
    return http_send_json(conn, MHD_HTTP_OK, o);
}

/* 1 if the project exists: known to the worker view, else found in the
 * database; 0 if not; -1 after queueing a database error into *ret. */
static int project_exists(struct core *c, struct MHD_Connection *conn, const char *id,
                          enum MHD_Result *ret)
{
    const char *params[1] = {id};
    PGresult *res;
    int found;

    pthread_rwlock_rdlock(&c->view_lock);
    found = idmap_get(&c->views, id) != NULL;
    pthread_rwlock_unlock(&c->view_lock);
    if (found)
        return 1;
    res = http_query(c, conn, "look up the project", "SELECT 1 FROM projects WHERE id = $1", 1,
                     params, ret);
    if (res == NULL)
        return -1;
    found = PQntuples(res) == 1;
    PQclear(res);
    return found;
}

/* Validates {"projectId": …} and hands the call to the manager. The
 * dispatcher records the project's desired state once the call succeeded. */
static enum MHD_Result worker_call(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                   const char *op, int timeout_ms)
{
    enum MHD_Result ret = MHD_NO;
    cJSON *body = http_body_object(conn, r, 0, &ret);
    char id[WF_ID_MAX + 1];
    const cJSON *idv;
    int found;

    if (body == NULL)
        return ret;
    idv = cJSON_GetObjectItemCaseSensitive(body, "projectId");
    if (idv == NULL || cJSON_IsNull(idv)) {
        cJSON_Delete(body);
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST, "projectId is required");
    }
    if (!cJSON_IsString(idv) || !ju_valid_id(idv->valuestring)) {
        cJSON_Delete(body);
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid projectId: must match ^[A-Za-z0-9_-]{1,64}$");
    }
    snprintf(id, sizeof(id), "%s", idv->valuestring);
    cJSON_Delete(body);

    found = project_exists(c, conn, id, &ret);
    if (found < 0)
        return ret;
    if (!found)
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", id);

    r->resume = worker_call_done;
    if (core_call_manager(c, &r->call, conn, op, id, timeout_ms) < 0) {
        r->call.conn = NULL;
        return http_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "could not reach the process manager");
    }
    return MHD_YES;
}

enum MHD_Result api_workers_start(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                  const char *const *args)
{
    return worker_call(c, conn, r, "start", c->cfg->start_timeout_ms + CALL_MARGIN_MS);
}

enum MHD_Result api_workers_stop(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args)
{
    return worker_call(c, conn, r, "stop", c->cfg->drain_timeout_ms + CALL_MARGIN_MS);
}

enum MHD_Result api_workers_restart(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                    const char *const *args)
{
    return worker_call(c, conn, r, "restart", c->cfg->start_timeout_ms + CALL_MARGIN_MS);
}

static void add_time(cJSON *o, const char *key, int64_t wall_ms)
{
    char buf[JU_ISO_LEN];

    if (wall_ms <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    ju_format_iso(wall_ms, buf, sizeof(buf));
    cJSON_AddStringToObject(o, key, buf);
}

enum MHD_Result api_workers_status(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                   const char *const *args)
{
    const char *arg = args[0];
    enum MHD_Result ret = MHD_NO;
    const struct core_view *v;
    const char *params[1] = {arg};
    PGresult *res;
    cJSON *o;
    int found;

    if (!ju_valid_id(arg))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid projectId: must match ^[A-Za-z0-9_-]{1,64}$");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "projectId", arg);
    pthread_rwlock_rdlock(&c->view_lock);
    v = idmap_get(&c->views, arg);
    if (v != NULL) {
        cJSON *loaded = v->loaded != NULL ? cJSON_Parse(v->loaded) : NULL;
        cJSON_AddStringToObject(o, "status", v->status);
        cJSON_AddBoolToObject(o, "isRunning", strcmp(v->status, "running") == 0);
        cJSON_AddStringToObject(o, "workerId", v->worker_id);
        if (v->pid > 0 && strcmp(v->status, "crashed") != 0 && strcmp(v->status, "failed") != 0)
            cJSON_AddNumberToObject(o, "pid", v->pid);
        else
            cJSON_AddNullToObject(o, "pid");
        cJSON_AddStringToObject(o, "host", c->cfg->host_id);
        add_time(o, "startedAt", v->started_at);
        add_time(o, "lastHeartbeat", v->last_heartbeat);
        cJSON_AddNumberToObject(o, "restarts", v->restarts);
        if (v->error != NULL)
            cJSON_AddStringToObject(o, "error", v->error);
        else
            cJSON_AddNullToObject(o, "error");
        if (loaded != NULL)
            ju_set(o, "loaded", loaded);
        else
            cJSON_AddNullToObject(o, "loaded");
        pthread_rwlock_unlock(&c->view_lock);
        return http_send_json(conn, MHD_HTTP_OK, o);
    }
    pthread_rwlock_unlock(&c->view_lock);

    /* No worker here: the project must exist to say "stopped". */
    res = http_query(c, conn, "look up the project", "SELECT 1 FROM projects WHERE id = $1", 1,
                     params, &ret);
    if (res == NULL) {
        cJSON_Delete(o);
        return ret;
    }
    found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        cJSON_Delete(o);
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", arg);
    }
    cJSON_AddStringToObject(o, "status", "stopped");
    cJSON_AddBoolToObject(o, "isRunning", 0);
    cJSON_AddNullToObject(o, "workerId");
    cJSON_AddNullToObject(o, "pid");
    cJSON_AddStringToObject(o, "host", c->cfg->host_id);
    cJSON_AddNullToObject(o, "startedAt");
    cJSON_AddNullToObject(o, "lastHeartbeat");
    cJSON_AddNumberToObject(o, "restarts", 0);
    cJSON_AddNullToObject(o, "error");
    cJSON_AddNullToObject(o, "loaded");
    return http_send_json(conn, MHD_HTTP_OK, o);
}
