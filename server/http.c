/*
 * http.c: libmicrohttpd set-up, the access handler, the route table and
 * deferred replies.
 *
 * MHD runs a thread pool on the listening socket inherited from the manager,
 * with suspend/resume so that calls waiting on the loop (the manager, the
 * run path) or on the control-plane pool (database I/O) hold no thread.
 * The edge is built so that a client without the token cannot exhaust
 * core. Everything that can be decided from the request line and headers
 * is decided at the request's first callback, before a byte of its body is
 * read (and so before libmicrohttpd sends "100 Continue"): a malformed
 * framing (two Content-Length headers, Content-Length with
 * Transfer-Encoding, a coding other than chunked) is 400, an unknown route
 * 404/405, a missing token 401, a declared body over the route's cap
 * (WF_MAX_BODY_BYTES, or WF_MAX_ARTIFACT_BYTES for uploads) 413, and a body
 * that does not fit the global budget 503 "server busy". The budget
 * (WF_MAX_INFLIGHT_BODY_BYTES) bounds the bytes of every body buffered at
 * once: a request reserves its buffer's size before it allocates it (its
 * Content-Length, or each growth of a chunked body) and gives it back when
 * it completes. A chunked body that outgrows its cap or the budget is
 * discarded as it arrives and answered once it ends (libmicrohttpd cannot
 * queue a reply in the middle of a body).
 *
 * Connections: at most WF_MAX_CONNECTIONS_PER_IP from one address, and a
 * global limit kept well below the open-file limit (core's own descriptors
 * and the workers' sockets need the rest); 30 s idle timeout. A reaper
 * thread tracks every connection (libmicrohttpd's connection
 * notifications) and shuts down the socket of one that has taken longer
 * than WF_REQUEST_TIMEOUT_MS to send its request (a client trickling a byte
 * a second resets the idle timeout for ever), and, when the connections
 * come close to the global limit, the ones that have waited longest without
 * a complete request, so a flood of idle connections cannot keep /health
 * out. A request being answered (complete, perhaps suspended) is never cut.
 * The reaper only calls shutdown(), never close(): libmicrohttpd sees the
 * end of the stream and closes the connection itself; the table is edited
 * under a mutex and an entry leaves it (CLOSED notification) before
 * libmicrohttpd closes the descriptor, so the reaper never touches a
 * descriptor number that was reused.
 *
 * libmicrohttpd's own error lines ("Connection was closed by remote side
 * …") and the reaper's are rate-limited: one line per message kind per
 * HTTP_LOG_INTERVAL_MS, then the count of the ones suppressed.
 *
 * A route reads the query string's arguments from a copy made on the MHD
 * thread before it runs (http_query_arg): a pool or loop route runs on
 * another thread while its connection is suspended, and libmicrohttpd's
 * connection calls belong to the thread that serves it.
 *
 * A deferred request's reply crosses threads through the request itself:
 * the finisher writes reply_status/reply_body, then sets ready with release
 * order and resumes the connection; the MHD thread reads ready with acquire
 * order in the resumed callback before it touches the reply. The reply is
 * JSON, or a response the route made itself (http_finish_response: the
 * event streams' callback responses, events.c).
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "api_code.h"
#include "api_executions.h"
#include "api_health.h"
#include "api_openapi.h"
#include "api_projects.h"
#include "api_runs.h"
#include "api_schedules.h"
#include "api_ui.h"
#include "api_workers.h"
#include "config.h"
#include "ctlpool.h"
#include "events.h"
#include "log.h"

#define HTTP_CONN_TIMEOUT_S 30
#define HTTP_CONN_LIMIT_MAX 10000  /* never more connections than this */
#define HTTP_FD_RESERVE_MIN 256    /* descriptors kept for core's own use, at least */
#define HTTP_REAP_MS 200           /* the reaper looks at the table this often */
#define HTTP_EVICT_HIGH_PCT 90     /* past this share of the limit, evict idle connections */
#define HTTP_EVICT_LOW_PCT 75      /* down to this share */
#define HTTP_EVICT_MIN_AGE_MS 500  /* a connection younger than this is never evicted */
#define HTTP_LOG_INTERVAL_MS 10000 /* one line per message kind this often */
#define HTTP_LOG_KINDS 32          /* distinct message kinds rate-limited apart */
/* libmicrohttpd's memory pool per connection (its default is 32 KiB): the
 * request line and headers, and the I/O buffers, about half each. A
 * connection touches a few scattered pages of it and keeps them for its
 * life, which for an event stream (events.c) is long: 16 KiB keeps 1,000
 * idle streams under 20 MiB and still holds any request header we accept. */
#define HTTP_CONN_MEMORY (16 * 1024)

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
    {"GET", "/health/live", 1, 0, api_health_live, NULL},
    {"GET", "/health/ready", 1, 0, api_health_ready, NULL},
    {"GET", "/metrics", 1, 0, api_metrics, NULL},
    {"GET", "/openapi.yaml", 1, 0, api_openapi, NULL},
    {"GET", "/ui", 1, 0, api_ui_index, NULL},
    {"GET", "/ui/*", 1, 0, api_ui_file, NULL},
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
    {"POST", "/projects/*/executions", 0, 0, api_runs_trigger, NULL},
    {"POST", "/executions/*/cancel", 0, 0, api_runs_cancel, NULL},
    {"POST", "/executions/*/signals/*", 0, 0, api_runs_signal, NULL},
    {"POST", "/executions/*/retry", 0, 0, api_runs_retry, NULL},
    {"GET", "/projects/*/executions", 0, 0, NULL, api_executions_list},
    {"GET", "/executions/*", 0, 0, NULL, api_executions_get},
    {"POST", "/projects/*/schedules", 0, 0, NULL, api_schedules_create},
    {"GET", "/projects/*/schedules", 0, 0, NULL, api_schedules_list},
    {"GET", "/schedules/*", 0, 0, NULL, api_schedules_get},
    {"POST", "/schedules/*/pause", 0, 0, NULL, api_schedules_pause},
    {"POST", "/schedules/*/resume", 0, 0, NULL, api_schedules_resume},
    {"DELETE", "/schedules/*", 0, 0, NULL, api_schedules_delete},
    {"GET", "/executions/*/events", 0, 0, api_events_execution, NULL},
    {"GET", "/projects/*/events", 0, 0, api_events_project, NULL},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

int http_route_at(size_t i, struct http_route_info *out)
{
    if (i >= NROUTES)
        return -1;
    out->method = routes[i].method;
    out->pattern = routes[i].pattern;
    out->public_route = routes[i].public_route;
    return 0;
}

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

void http_finish_response(struct http_req *r, unsigned status, struct MHD_Response *resp)
{
    r->reply_status = status;
    r->reply_resp = resp;
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

/* ---- rate-limited warnings (any thread) ---- */

/* A message kind: libmicrohttpd's format string (one per call site), or one
 * of our own constant strings. */
struct log_kind {
    const char *key;
    int64_t last_ms;     /* when a line of this kind was last written */
    unsigned suppressed; /* lines dropped since */
    char text[256];      /* the last one dropped, for the summary */
};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct log_kind log_kinds[HTTP_LOG_KINDS];

/*
 * Writes "http: <msg>" as a warning unless a line of the same kind went out
 * less than HTTP_LOG_INTERVAL_MS ago; then it is counted, and the next line
 * of that kind (or http_log_flush) says how many were dropped. Kinds past
 * the table's size share its last slot.
 */
static void log_limited(const char *key, const char *msg)
{
    int64_t now = ju_mono_ms();
    struct log_kind *k = NULL;
    unsigned dropped = 0;

    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < HTTP_LOG_KINDS && k == NULL; i++) {
        if (log_kinds[i].key == key || log_kinds[i].key == NULL || i == HTTP_LOG_KINDS - 1)
            k = &log_kinds[i];
    }
    if (k->key != key) {
        k->key = key;
        k->last_ms = 0;
        k->suppressed = 0;
    }
    if (k->last_ms != 0 && now - k->last_ms < HTTP_LOG_INTERVAL_MS) {
        k->suppressed++;
        snprintf(k->text, sizeof(k->text), "%s", msg);
        pthread_mutex_unlock(&log_mu);
        return;
    }
    dropped = k->suppressed;
    k->suppressed = 0;
    k->last_ms = now;
    pthread_mutex_unlock(&log_mu);
    if (dropped > 0)
        log_warning("http: %s (and %u more like it in the last %d s)", msg, dropped,
                    HTTP_LOG_INTERVAL_MS / 1000);
    else
        log_warning("http: %s", msg);
}

/* Reaper thread: reports the kinds whose dropped lines no later line told. */
static void log_flush(int64_t now)
{
    for (int i = 0; i < HTTP_LOG_KINDS; i++) {
        char text[256];
        unsigned n;

        pthread_mutex_lock(&log_mu);
        n = log_kinds[i].suppressed;
        if (n == 0 || now - log_kinds[i].last_ms < HTTP_LOG_INTERVAL_MS) {
            pthread_mutex_unlock(&log_mu);
            continue;
        }
        memcpy(text, log_kinds[i].text, sizeof(text));
        log_kinds[i].suppressed = 0;
        log_kinds[i].last_ms = now;
        pthread_mutex_unlock(&log_mu);
        log_warning("http: %u more like \"%s\" in the last %d s", n, text,
                    HTTP_LOG_INTERVAL_MS / 1000);
    }
}

/* ---- the body budget (any thread) ---- */

/* Bytes reserved by every request's body buffer, and the most ever. */
static size_t budget_cap;
static size_t budget_used; /* __atomic */
static size_t budget_peak; /* __atomic */

/* Reserves n bytes. Returns 0, or -1 (nothing reserved) when the budget
 * cannot hold them. */
static int budget_take(size_t n)
{
    size_t cur = __atomic_load_n(&budget_used, __ATOMIC_RELAXED);
    size_t peak;

    do {
        if (n > budget_cap || cur > budget_cap - n)
            return -1;
    } while (!__atomic_compare_exchange_n(&budget_used, &cur, cur + n, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    peak = __atomic_load_n(&budget_peak, __ATOMIC_RELAXED);
    while (cur + n > peak && !__atomic_compare_exchange_n(&budget_peak, &peak, cur + n, 1,
                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return 0;
}

static void budget_give(size_t n)
{
    if (n > 0)
        __atomic_sub_fetch(&budget_used, n, __ATOMIC_ACQ_REL);
}

void http_body_budget(size_t *used, size_t *peak, size_t *cap)
{
    *used = __atomic_load_n(&budget_used, __ATOMIC_RELAXED);
    *peak = __atomic_load_n(&budget_peak, __ATOMIC_RELAXED);
    *cap = budget_cap;
}

/* ---- the connection table and its reaper ---- */

/* One accepted connection, from libmicrohttpd's STARTED notification to its
 * CLOSED one (its socket_context). Fields under conns.mu. */
struct http_conn {
    struct http_conn *prev, *next; /* in conns.list, oldest `since` first */
    int fd;
    int64_t since_ms; /* accepted, or the previous request completed */
    int busy;         /* the request is complete and being answered */
    int cut;          /* the reaper shut its socket down */
};

/* The table: one HTTP server per core process. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct http_conn list; /* sentinel of a circular list */
    int count;
    int limit;      /* the global connection limit */
    int timeout_ms; /* WF_REQUEST_TIMEOUT_MS */
    int stop;
    int running;
    pthread_t thread;
} conns = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void conn_unlink(struct http_conn *hc)
{
    hc->prev->next = hc->next;
    hc->next->prev = hc->prev;
}

/* Appends hc at the list's tail (the newest `since`). Under conns.mu. */
static void conn_append(struct http_conn *hc)
{
    hc->next = &conns.list;
    hc->prev = conns.list.prev;
    conns.list.prev->next = hc;
    conns.list.prev = hc;
}

/* MHD thread: the connection's table entry, or NULL when it has none. */
static struct http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

/* MHD thread: marks the connection's request complete (busy) or, after
 * it completed, waiting for the next one from now on. */
static void conn_set_busy(struct MHD_Connection *conn, int busy)
{
    struct http_conn *hc = conn_of(conn);

    if (hc == NULL)
        return;
    pthread_mutex_lock(&conns.mu);
    hc->busy = busy;
    if (!busy) {
        hc->since_ms = ju_mono_ms();
        conn_unlink(hc);
        conn_append(hc);
    }
    pthread_mutex_unlock(&conns.mu);
}

/*
 * MHD thread: libmicrohttpd's connection notifications. A connection that
 * cannot get an entry (out of memory) is served untracked: no deadline.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_conn *hc = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL)
            return;
        hc = calloc(1, sizeof(*hc));
        if (hc == NULL)
            return;
        hc->fd = ci->connect_fd;
        hc->since_ms = ju_mono_ms();
        pthread_mutex_lock(&conns.mu);
        conn_append(hc);
        conns.count++;
        /* Close to the limit: evict now, not at the next pass, so that
         * room is made while the flood arrives. */
        if (conns.count > (int)((long)conns.limit * HTTP_EVICT_HIGH_PCT / 100))
            pthread_cond_signal(&conns.cv);
        pthread_mutex_unlock(&conns.mu);
        *socket_context = hc;
        return;
    }
    if (hc == NULL)
        return;
    /* Before libmicrohttpd closes the descriptor: the reaper cannot reach
     * it once this returns. */
    pthread_mutex_lock(&conns.mu);
    conn_unlink(hc);
    conns.count--;
    pthread_mutex_unlock(&conns.mu);
    free(hc);
    *socket_context = NULL;
}

int http_open_connections(void)
{
    int n;

    pthread_mutex_lock(&conns.mu);
    n = conns.count;
    pthread_mutex_unlock(&conns.mu);
    return n;
}

/* Shuts hc's socket down (libmicrohttpd then closes it). Under conns.mu. */
static void conn_cut(struct http_conn *hc)
{
    hc->cut = 1;
    (void)shutdown(hc->fd, SHUT_RDWR);
}

/*
 * One pass of the reaper: cuts the connections past the request deadline,
 * then, when the table holds more than HTTP_EVICT_HIGH_PCT of the limit,
 * the oldest ones without a complete request (and at least
 * HTTP_EVICT_MIN_AGE_MS old) until HTTP_EVICT_LOW_PCT is left. Under
 * conns.mu. Reports the counts in *late and *evicted.
 */
static void reap(int64_t now, int *late, int *evicted)
{
    int open = conns.count;
    int high = (int)((long)conns.limit * HTTP_EVICT_HIGH_PCT / 100);
    int low = (int)((long)conns.limit * HTTP_EVICT_LOW_PCT / 100);

    *late = *evicted = 0;
    for (struct http_conn *hc = conns.list.next; hc != &conns.list; hc = hc->next) {
        if (hc->cut) {
            open--;
            continue;
        }
        if (hc->busy)
            continue;
        if (now - hc->since_ms >= conns.timeout_ms) {
            conn_cut(hc);
            open--;
            (*late)++;
        }
    }
    if (open <= high)
        return;
    /* Oldest first: a flood's connections are older than the request that
     * has just arrived, and a keep-alive connection that just answered went
     * to the tail. */
    for (struct http_conn *hc = conns.list.next; hc != &conns.list && open > low; hc = hc->next) {
        if (hc->cut || hc->busy || now - hc->since_ms < HTTP_EVICT_MIN_AGE_MS)
            continue;
        conn_cut(hc);
        open--;
        (*evicted)++;
    }
}

/* The reaper thread: a pass every HTTP_REAP_MS until http_stop. */
static void *reaper_main(void *arg)
{
    char msg[160];

    pthread_mutex_lock(&conns.mu);
    while (!conns.stop) {
        struct timespec ts;
        int late, evicted;
        int64_t now = ju_mono_ms();

        reap(now, &late, &evicted);
        pthread_mutex_unlock(&conns.mu);
        if (late > 0) {
            snprintf(msg, sizeof(msg),
                     "closed %d connections that took longer than %d ms to send a request", late,
                     conns.timeout_ms);
            log_limited("reaper: late", msg);
        }
        if (evicted > 0) {
            snprintf(msg, sizeof(msg),
                     "near the connection limit (%d): closed %d connections without a request",
                     conns.limit, evicted);
            log_limited("reaper: evicted", msg);
        }
        log_flush(now);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += HTTP_REAP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&conns.mu);
        if (!conns.stop)
            (void)pthread_cond_timedwait(&conns.cv, &conns.mu, &ts);
    }
    pthread_mutex_unlock(&conns.mu);
    return NULL;
}

/* Stops and joins the reaper, if it runs. */
static void reaper_stop(void)
{
    if (!conns.running)
        return;
    pthread_mutex_lock(&conns.mu);
    conns.stop = 1;
    pthread_cond_signal(&conns.cv);
    pthread_mutex_unlock(&conns.mu);
    pthread_join(conns.thread, NULL);
    conns.running = 0;
}

void http_raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warning("could not raise the open file limit to %llu: %s",
                        (unsigned long long)rl.rlim_max, strerror(errno));
    }
}

/*
 * The global connection limit: the open-file limit less a reserve for
 * core's own descriptors (a quarter, HTTP_FD_RESERVE_MIN at least: the
 * database connections, one socket per worker, libmicrohttpd's threads,
 * memfds in transit), at most HTTP_CONN_LIMIT_MAX, and at most
 * WF_MAX_CONNECTIONS when that is set. At least 16.
 */
static int connection_limit(const struct wf_config *cfg, unsigned long long *nofile)
{
    struct rlimit rl;
    unsigned long long n = 1024, reserve, limit;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        n = rl.rlim_cur;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        n = 1ULL << 20;
    *nofile = n;
    reserve = n / 4 > HTTP_FD_RESERVE_MIN ? n / 4 : HTTP_FD_RESERVE_MIN;
    limit = n > reserve ? n - reserve : 0;
    if (limit > HTTP_CONN_LIMIT_MAX)
        limit = HTTP_CONN_LIMIT_MAX;
    if (cfg->max_connections > 0 && (unsigned long long)cfg->max_connections < limit)
        limit = (unsigned long long)cfg->max_connections;
    return limit < 16 ? 16 : (int)limit;
}

/* ---- routing ---- */

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

/* ---- the request's first callback: everything decided before the body ---- */

/* Counts the Content-Length and Transfer-Encoding header lines. */
struct framing {
    int content_length;
    int transfer_encoding;
    int chunked; /* the (only) Transfer-Encoding is exactly "chunked" */
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct framing *f = cls;

    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        f->content_length++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encoding++;
        f->chunked = value != NULL && strcasecmp(value, "chunked") == 0;
    }
    return MHD_YES;
}

/*
 * The reason to refuse the request's framing, or NULL. libmicrohttpd 0.9.75
 * uses the first of two Content-Length headers and lets Transfer-Encoding
 * win over Content-Length silently; a proxy in front may read either
 * differently (request smuggling), so both are refused, and so is any
 * coding but chunked (libmicrohttpd would read such a body until the
 * connection closes).
 */
static const char *bad_framing(struct MHD_Connection *conn)
{
    struct framing f = {0, 0, 0};

    (void)MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    if (f.content_length > 1)
        return "more than one Content-Length header";
    if (f.content_length > 0 && f.transfer_encoding > 0)
        return "Content-Length together with Transfer-Encoding";
    if (f.transfer_encoding > 1 || (f.transfer_encoding == 1 && !f.chunked))
        return "unsupported Transfer-Encoding (only chunked is accepted)";
    return NULL;
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

/* Queues a refusal at the first callback: libmicrohttpd then reads none of
 * the body (no "100 Continue") and closes the connection after the reply. */
static enum MHD_Result refuse_now(struct MHD_Connection *conn, struct http_req *r, unsigned status,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result refuse_now(struct MHD_Connection *conn, struct http_req *r, unsigned status,
                                  const char *fmt, ...)
{
    va_list ap;
    cJSON *o;

    r->responded = 1;
    va_start(ap, fmt);
    o = error_body(fmt, ap);
    va_end(ap);
    return http_send_json(conn, status, o);
}

/*
 * The request's first callback (headers read, no body byte yet): builds
 * its state and answers at once what needs no body, in this order: bad
 * framing 400, unknown route 404/405, missing token 401, declared body
 * over the route's cap 413, declared body over the budget 503. A request
 * that passes has its Content-Length (plus the terminating NUL) reserved.
 */
static enum MHD_Result first_call(struct core *c, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **req_cls)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    struct http_req *r = calloc(1, sizeof(*r));
    const struct route *rt;
    const char *why;
    int found;
    long v = 0;

    if (r == NULL)
        return MHD_NO;
    *req_cls = r;
    r->conn = conn;
    r->core = c;
    why = bad_framing(conn);
    if (why != NULL)
        return refuse_now(conn, r, MHD_HTTP_BAD_REQUEST, "%s", why);
    rt = route_find(url, method, r->args, &found, NULL, 0);
    r->route = rt;
    if (rt == NULL) {
        char allow[64] = "";
        (void)route_find(url, method, r->args, &found, allow, sizeof(allow));
        r->responded = 1;
        if (found)
            return send_not_allowed(conn, allow);
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
    }
    if (c->cfg->api_token != NULL && !rt->public_route && !authorized(c, conn))
        return refuse_now(conn, r, MHD_HTTP_UNAUTHORIZED, "missing or invalid API token");
    r->max_body = rt->artifact ? c->cfg->max_artifact_bytes : c->cfg->max_body_bytes;
    if (cl != NULL && config_parse_long(cl, 0, r->max_body, &v) < 0) {
        r->too_large = 1;
        return refuse_now(conn, r, MHD_HTTP_CONTENT_TOO_LARGE,
                          "request body too large (limit %ld bytes)", r->max_body);
    }
    if (v > 0) {
        if (budget_take((size_t)v + 1) < 0)
            return refuse_now(conn, r, MHD_HTTP_SERVICE_UNAVAILABLE, "server busy; try again");
        r->reserved = (size_t)v + 1;
    }
    return MHD_YES;
}

/* Drops r's body and gives its reservation back. */
static void body_release(struct http_req *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    budget_give(r->reserved);
    r->reserved = 0;
}

/*
 * Appends n bytes of body to r. The buffer is sized once for a declared
 * Content-Length (reserved at the first call); a chunked body doubles it,
 * reserving each growth first. Returns 0; 1 when the body is refused
 * (r->refusal set, the body dropped: the rest is discarded and the refusal
 * sent when the body ends); -1 out of memory.
 */
static int body_append(struct http_req *r, const char *data, size_t n)
{
    size_t max = (size_t)r->max_body;

    if (r->len + n > max) {
        body_release(r);
        r->too_large = 1;
        r->refusal = MHD_HTTP_CONTENT_TOO_LARGE;
        return 1;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->reserved > r->cap ? r->reserved : (r->cap ? r->cap : 1024);
        char *b;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        if (cap > r->reserved) {
            if (budget_take(cap - r->reserved) < 0) {
                body_release(r);
                r->refusal = MHD_HTTP_SERVICE_UNAVAILABLE;
                return 1;
            }
            r->reserved = cap;
        }
        /* Grow by doubling up to the cap: amortized O(n) copies. */
        b = realloc(r->body, cap);
        if (b == NULL)
            return -1;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

/* Sizes, then fills, the copy of the query arguments (copy_query). */
struct query_copy {
    char *buf; /* NULL: only count */
    size_t len;
    int n;
    int nul; /* a key or value holds a NUL byte ("%00") */
};

static enum MHD_Result copy_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t klen, const char *value, size_t vlen)
{
    struct query_copy *q = cls;

    if (value == NULL)
        vlen = 0;
    if (memchr(key, '\0', klen) != NULL || (vlen > 0 && memchr(value, '\0', vlen) != NULL)) {
        q->nul = 1;
        return MHD_NO;
    }
    if (q->buf != NULL) {
        memcpy(q->buf + q->len, key, klen);
        q->buf[q->len + klen] = '\0';
        if (vlen > 0)
            memcpy(q->buf + q->len + klen + 1, value, vlen);
        q->buf[q->len + klen + 1 + vlen] = '\0';
    }
    q->len += klen + 1 + vlen + 1;
    q->n++;
    return MHD_YES;
}

/*
 * MHD thread, before the route runs: copies the query arguments into
 * r->query (http_query_arg), so that a route finishing on another thread
 * never reads the suspended connection. Their size is bounded by
 * libmicrohttpd's per-connection memory, which holds the request line.
 * Returns 0; 1 when an argument holds a NUL byte (it would read as a
 * shorter value); -1 out of memory. Nothing is kept unless 0.
 */
static int copy_query(struct MHD_Connection *conn, struct http_req *r)
{
    struct query_copy q = {NULL, 0, 0, 0};

    (void)MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, copy_query_arg, &q);
    if (q.nul)
        return 1;
    if (q.n == 0)
        return 0;
    q.buf = malloc(q.len);
    if (q.buf == NULL)
        return -1;
    q.len = 0;
    q.n = 0;
    (void)MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, copy_query_arg, &q);
    r->query = q.buf;
    r->nquery = q.n;
    return 0;
}

const char *http_query_arg(const struct http_req *r, const char *key)
{
    const char *p = r->query;

    for (int i = 0; i < r->nquery; i++) {
        const char *value = p + strlen(p) + 1;

        if (strcmp(p, key) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

static enum MHD_Result dispatch(struct core *c, struct MHD_Connection *conn, const char *url,
                                const char *method, struct http_req *r)
{
    const struct route *rt = r->route; /* found at the request's first callback */
    const char *args[HTTP_MAX_ARGS];

    switch (copy_query(conn, r)) {
    case 0:
        break;
    case 1:
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST, "query argument contains a NUL byte");
    default:
        return http_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    }
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
    if (r->reply_resp != NULL) {
        struct MHD_Response *resp = r->reply_resp;
        enum MHD_Result ret;

        r->reply_resp = NULL;
        cJSON_Delete(body);
        ret = MHD_queue_response(conn, r->reply_status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
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

    if (r == NULL)
        return first_call(c, conn, url, method, req_cls);
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
        if (r->refusal != 0)
            return MHD_YES; /* discarded */
        return body_append(r, upload_data, n) < 0 ? MHD_NO : MHD_YES;
    }
    if (r->refusal != 0) {
        r->responded = 1;
        if (r->refusal == MHD_HTTP_CONTENT_TOO_LARGE)
            return http_send_error(conn, r->refusal, "request body too large (limit %ld bytes)",
                                   r->max_body);
        return http_send_error(conn, r->refusal, "server busy; try again");
    }
    /* The whole request is in: from now on it is being answered, and the
     * reaper leaves it alone. */
    conn_set_busy(conn, 1);
    log_debug("%s %s", method, url);
    {
        enum MHD_Result ret = dispatch(c, conn, url, method, r);
        if (!r->suspended)
            r->responded = 1;
        return ret;
    }
}

/* MHD thread, once per request the access handler saw (also when the
 * client went away): frees the request and gives its reservation back; the
 * connection then waits for its next request, with a fresh deadline. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_req *r = *req_cls;
    struct core *c = cls;

    __atomic_add_fetch(&c->stats.http_requests, 1, __ATOMIC_RELAXED);
    conn_set_busy(conn, 0);
    if (r == NULL)
        return;
    body_release(r);
    free(r->query);
    cJSON_Delete(r->reply_body);
    if (r->reply_resp != NULL)
        MHD_destroy_response(r->reply_resp);
    if (r->work != NULL) {
        if (r->work_free != NULL)
            r->work_free(r->work);
        else
            free(r->work);
    }
    free(r);
    *req_cls = NULL;
}

/* MHD thread: libmicrohttpd's error lines, rate-limited per format (one
 * call site, one kind), so a flood of abandoned connections logs a few
 * lines rather than one each. */
static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_limited(fmt, msg);
}

/* 1 when the listening address is in 127.0.0.0/8. */
static int loopback_only(const char *addr)
{
    struct in_addr a;

    return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int http_start(struct core *c, int listen_fd)
{
    const struct wf_config *cfg = c->cfg;
    unsigned long long nofile;
    int limit = connection_limit(cfg, &nofile);

    if (api_health_init(c) < 0) {
        api_health_free(c);
        return -1;
    }
    budget_cap = (size_t)cfg->max_inflight_body_bytes;
    conns.list.next = conns.list.prev = &conns.list;
    conns.limit = limit;
    conns.timeout_ms = cfg->request_timeout_ms;
    conns.stop = 0;
    if (cfg->api_token == NULL && !loopback_only(cfg->listen_addr))
        log_warning("WF_API_TOKEN is not set and the API listens on %s: anyone who can reach "
                    "this address can start and stop workers and deploy code that runs here; "
                    "set WF_API_TOKEN, or WF_LISTEN_ADDR=127.0.0.1",
                    cfg->listen_addr);
    log_info("http: at most %d connections (open file limit %llu), %d per address; "
             "request deadline %d ms; request bodies buffered at once at most %ld bytes",
             limit, nofile, cfg->max_connections_per_ip, cfg->request_timeout_ms,
             cfg->max_inflight_body_bytes);
    /* The reaper runs before the first connection can arrive, and stops
     * after the last one is gone (http_stop). */
    if (pthread_create(&conns.thread, NULL, reaper_main, NULL) != 0) {
        log_error("could not start the HTTP reaper thread");
        api_health_free(c);
        return -1;
    }
    conns.running = 1;
    c->httpd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, c,
        MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONN_MEMORY, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, c, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        c, MHD_OPTION_END);
    if (c->httpd == NULL) {
        log_error("could not start the HTTP server");
        reaper_stop();
        api_health_free(c);
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
    reaper_stop();
    api_health_free(c);
}
