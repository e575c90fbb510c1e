/*
 * http.c: libmicrohttpd set-up, the access handler, the route table and
 * deferred replies.
 *
 * MHD runs a thread pool on the listening socket inherited from the manager,
 * with suspend/resume so that calls waiting on the loop (the manager, the
 * run path) or on the control-plane pool (database I/O) hold no thread.
 * Bodies are capped per route (WF_MAX_BODY_BYTES, or WF_MAX_ARTIFACT_BYTES
 * for uploads): a Content-Length over it, or a body growing past it, is
 * answered 413 at once. Connections time out after 30 s idle and are
 * limited in number.
 *
 * A deferred request's reply crosses threads through the request itself:
 * the finisher writes reply_status/reply_body, then sets ready with release
 * order and resumes the connection; the MHD thread reads ready with acquire
 * order in the resumed callback before it touches the reply.
 */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_code.h"
#include "api_projects.h"
#include "api_workers.h"
#include "config.h"
#include "ctlpool.h"
#include "log.h"

#define HTTP_CONN_TIMEOUT_S 30
#define HTTP_CONN_LIMIT 4096

typedef enum MHD_Result (*route_fn)(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                    const char *const *args);
/* A pool route: runs on a control-plane thread and finishes r. */
typedef void (*pool_route_fn)(struct core *c, struct http_req *r, const char *const *args,
                              struct db_conn *db);

/* A route: the method and a path pattern whose "*" segments are captured
 * (at most HTTP_MAX_ARGS, each a single non-empty segment). Exactly one of
 * fn (inline or loop route) and pool_fn is set. */
struct route {
    const char *method;
    const char *pattern;
    int public_route; /* no token needed */
    int artifact;     /* body is an uploaded artifact: WF_MAX_ARTIFACT_BYTES */
    route_fn fn;
    pool_route_fn pool_fn;
};

static const struct route routes[] = {
    {"GET", "/health", 1, 0, api_health, NULL},
    {"GET", "/metrics", 1, 0, api_metrics, NULL},
    {"GET", "/workers", 0, 0, api_workers_list, NULL},
    {"POST", "/workers/start", 0, 0, api_workers_start, NULL},
    {"POST", "/workers/stop", 0, 0, api_workers_stop, NULL},
    {"POST", "/workers/restart", 0, 0, api_workers_restart, NULL},
    {"GET", "/workers/status/*", 0, 0, api_workers_status, NULL},
    {"GET", "/projects", 0, 0, NULL, api_projects_list},
    {"POST", "/projects", 0, 0, NULL, api_projects_create},
    {"GET", "/projects/*", 0, 0, NULL, api_projects_get},
    {"GET", "/projects/*/workflows", 0, 0, NULL, api_code_list_workflows},
    {"GET", "/projects/*/activities", 0, 0, NULL, api_code_list_activities},
    {"PUT", "/projects/*/workflows/*", 0, 1, api_code_put_workflow, NULL},
    {"PUT", "/projects/*/activities/*", 0, 1, api_code_put_activity, NULL},
    {"DELETE", "/projects/*/workflows/*", 0, 0, NULL, api_code_delete_workflow},
    {"DELETE", "/projects/*/activities/*", 0, 0, NULL, api_code_delete_activity},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Queues body (taken) with an optional extra header (name NULL: none). */
static enum MHD_Result send_json_with(struct MHD_Connection *conn, unsigned status, cJSON *body,
                                      const char *name, const char *value)
{
    char *text = cJSON_PrintUnformatted(body);
    struct MHD_Response *resp;
    enum MHD_Result ret;

    cJSON_Delete(body);
    if (text == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (name != NULL)
        MHD_add_response_header(resp, name, value);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result http_send_json(struct MHD_Connection *conn, unsigned status, cJSON *body)
{
    return send_json_with(conn, status, body, NULL, NULL);
}

static cJSON *error_body(const char *fmt, va_list ap)
{
    char msg[512];
    cJSON *o = cJSON_CreateObject();

    vsnprintf(msg, sizeof(msg), fmt, ap);
    cJSON_AddBoolToObject(o, "success", 0);
    cJSON_AddStringToObject(o, "error", msg);
    return o;
}

enum MHD_Result http_send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
    va_list ap;
    cJSON *o;

    va_start(ap, fmt);
    o = error_body(fmt, ap);
    va_end(ap);
    return http_send_json(conn, status, o);
}

/* ---- deferred replies ---- */

void http_defer(struct http_req *r)
{
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
}

void http_finish(struct http_req *r, unsigned status, cJSON *body)
{
    r->reply_status = status;
    r->reply_body = body;
    __atomic_store_n(&r->ready, 1, __ATOMIC_RELEASE);
    MHD_resume_connection(r->conn);
}

void http_finish_error(struct http_req *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    cJSON *o;

    va_start(ap, fmt);
    o = error_body(fmt, ap);
    va_end(ap);
    http_finish(r, status, o);
}

void http_finish_db_error(struct http_req *r, struct db_conn *db, const char *what)
{
    log_error("could not %s: %s", what, db_error(db));
    if (db_unavailable(db))
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
    else
        http_finish_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
}

void http_set_work(struct http_req *r, void *work, void (*free_fn)(void *work))
{
    r->work = work;
    r->work_free = free_fn;
}

enum MHD_Result http_defer_to_loop(struct core *c, struct http_req *r, void (*fn)(void *r))
{
    http_defer(r);
    if (core_post(c, fn, r) < 0)
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
    return MHD_YES;
}

/* A pool job: the route's function, or 503 when the pool is stopping. */
static void run_pool_route(void *arg, struct db_conn *db)
{
    struct http_req *r = arg;
    const struct route *rt = r->route;
    const char *args[HTTP_MAX_ARGS];

    if (db == NULL) {
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        return;
    }
    for (int i = 0; i < HTTP_MAX_ARGS; i++)
        args[i] = r->args[i];
    rt->pool_fn(r->core, r, args, db);
}

/* ---- routing ---- */

static enum MHD_Result send_too_large(struct MHD_Connection *conn, struct http_req *r)
{
    r->responded = 1;
    return http_send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                           "request body too large (limit %ld bytes)", r->max_body);
}

/* Constant-time comparison of the bearer token. */
static int authorized(const struct core *c, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *tok = c->cfg->api_token;
    size_t n, m;
    unsigned diff = 0;

    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    n = strlen(h);
    m = strlen(tok);
    diff = (unsigned)(n != m);
    for (size_t i = 0; i < n && i < m; i++)
        diff |= (unsigned)(h[i] ^ tok[i]);
    return diff == 0;
}

/* Matches url against pattern, capturing "*" segments into args. */
static int route_match(const char *pattern, const char *url, char args[][HTTP_ARG_MAX + 1])
{
    int nargs = 0;

    for (;;) {
        if (*pattern == '*') {
            size_t n = strcspn(url, "/");
            if (n == 0 || n > HTTP_ARG_MAX || nargs == HTTP_MAX_ARGS)
                return 0;
            memcpy(args[nargs], url, n);
            args[nargs][n] = '\0';
            nargs++;
            pattern++;
            url += n;
            continue;
        }
        if (*pattern != *url)
            return 0;
        if (*pattern == '\0')
            return 1;
        pattern++;
        url++;
    }
}

/* Finds the route for url and method; sets *path_found if some route has
 * this path under another method (and lists those methods in allow). */
static const struct route *route_find(const char *url, const char *method,
                                      char args[][HTTP_ARG_MAX + 1], int *path_found, char *allow,
                                      size_t allowlen)
{
    *path_found = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        const struct route *rt = &routes[i];
        if (!route_match(rt->pattern, url, args))
            continue;
        *path_found = 1;
        /* HEAD is GET without the body (libmicrohttpd drops the body). */
        if (strcmp(method, rt->method) == 0 ||
            (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 && strcmp(rt->method, "GET") == 0))
            return rt;
        if (allow != NULL) {
            size_t n = strlen(allow);
            snprintf(allow + n, allowlen - n, "%s%s", n > 0 ? ", " : "", rt->method);
        }
    }
    return NULL;
}

static enum MHD_Result send_not_allowed(struct MHD_Connection *conn, const char *allow)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddBoolToObject(o, "success", 0);
    cJSON_AddStringToObject(o, "error", "method not allowed");
    return send_json_with(conn, MHD_HTTP_METHOD_NOT_ALLOWED, o, MHD_HTTP_HEADER_ALLOW, allow);
}

static enum MHD_Result dispatch(struct core *c, struct MHD_Connection *conn, const char *url,
                                const char *method, struct http_req *r)
{
    const struct route *rt = r->route; /* found at the request's first callback */
    const char *args[HTTP_MAX_ARGS];

    if (rt == NULL) {
        char allow[64] = "";
        int path_found;
        (void)route_find(url, method, r->args, &path_found, allow, sizeof(allow));
        if (path_found)
            return send_not_allowed(conn, allow);
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
    }
    if (c->cfg->api_token != NULL && !rt->public_route && !authorized(c, conn))
        return http_send_error(conn, MHD_HTTP_UNAUTHORIZED, "missing or invalid API token");
    if (rt->pool_fn != NULL) {
        http_defer(r);
        if (ctlpool_submit(c->pool, run_pool_route, r) < 0) {
            log_warning("control-plane queue full or stopping: %s %s answered 503", method, url);
            http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server busy; try again");
        }
        return MHD_YES;
    }
    for (int i = 0; i < HTTP_MAX_ARGS; i++)
        args[i] = r->args[i];
    return rt->fn(c, conn, r, args);
}

/* The resumed callback of a deferred request: queue its reply. */
static enum MHD_Result send_deferred(struct MHD_Connection *conn, struct http_req *r)
{
    cJSON *body = r->reply_body;

    r->reply_body = NULL;
    r->responded = 1;
    if (body == NULL)
        body = cJSON_CreateObject();
    return http_send_json(conn, r->reply_status, body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct core *c = cls;
    struct http_req *r = *req_cls;
    size_t max;

    if (r == NULL) {
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const struct route *rt;
        int found;
        long v;

        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *req_cls = r;
        r->conn = conn;
        r->core = c;
        rt = route_find(url, method, r->args, &found, NULL, 0);
        r->route = rt;
        r->max_body =
            rt != NULL && rt->artifact ? c->cfg->max_artifact_bytes : c->cfg->max_body_bytes;
        if (cl != NULL && (config_parse_long(cl, 0, r->max_body, &v) < 0)) {
            r->too_large = 1;
            return send_too_large(conn, r);
        }
        return MHD_YES;
    }
    max = (size_t)r->max_body;
    if (r->responded) {
        *upload_data_size = 0; /* a reply is queued: discard the rest */
        return MHD_YES;
    }
    if (r->suspended) {
        if (!__atomic_load_n(&r->ready, __ATOMIC_ACQUIRE))
            return MHD_YES; /* not for us yet */
        return send_deferred(conn, r);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->len + n > max) {
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            r->too_large = 1;
            return send_too_large(conn, r);
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            char *b;
            while (cap < r->len + n + 1)
                cap *= 2;
            if (cap > max + 1)
                cap = max + 1;
            /* Grow by doubling up to the cap: amortized O(n) copies. */
            b = realloc(r->body, cap);
            if (b == NULL)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    log_debug("%s %s", method, url);
    {
        enum MHD_Result ret = dispatch(c, conn, url, method, r);
        if (!r->suspended)
            r->responded = 1;
        return ret;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_req *r = *req_cls;
    struct core *c = cls;

    __atomic_add_fetch(&c->stats.http_requests, 1, __ATOMIC_RELAXED);
    if (r == NULL)
        return;
    free(r->body);
    cJSON_Delete(r->reply_body);
    if (r->work != NULL) {
        if (r->work_free != NULL)
            r->work_free(r->work);
        else
            free(r->work);
    }
    free(r);
    *req_cls = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warning("http: %s", msg);
}

/* The two /health replies never change: built once, queued by reference. */
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

int http_start(struct core *c, int listen_fd)
{
    c->health[0] = health_response(0);
    c->health[1] = health_response(1);
    if (c->health[0] == NULL || c->health[1] == NULL) {
        log_error("could not build the health replies: out of memory");
        return -1;
    }
    c->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                                0, NULL, NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER,
                                on_mhd_error, c, MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->cfg->http_threads,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_LIMIT,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, c, MHD_OPTION_END);
    if (c->httpd == NULL) {
        log_error("could not start the HTTP server");
        return -1;
    }
    return 0;
}

void http_quiesce(struct core *c)
{
    /* MHD hands the listening socket back instead of closing it; core_main
     * closes it. */
    if (c->httpd != NULL)
        (void)MHD_quiesce_daemon(c->httpd);
}

void http_stop(struct core *c)
{
    if (c->httpd != NULL) {
        http_quiesce(c);
        MHD_stop_daemon(c->httpd);
        c->httpd = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (c->health[i] != NULL)
            MHD_destroy_response(c->health[i]);
        c->health[i] = NULL;
    }
}
