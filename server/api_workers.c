/*
 * api_workers.c: see api_workers.h.
 *
 * Start/stop/restart are loop routes: the MHD thread validates the body and
 * defers the request to core's loop, which records the project's desired
 * state durably (what the user asked for, read by WF_AUTOSTART; the commit
 * overlaps the worker's spawn), checks the project exists (from the worker
 * view when it has a worker, else one read through the database layer) and
 * asks the manager. The answer goes out once all of it is done: the desired
 * state committed, and the worker's row writes submitted before the
 * manager's reply committed too (a statement on the fast class after them
 * serves as the barrier), so the row says what the answer says. If the
 * database cannot take the desired state within its wait, the call is
 * answered all the same and the write stays queued until it lands. If the database cannot take the
 * write within its wait, the call is answered all the same (the worker did start or stop) and the
 * write stays queued until it lands.
 *
 * Status, list and metrics read memory on the MHD thread; a status
 * for a project without a worker needs one read, deferred to the loop.
 */
#include "api_workers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apibody.h"
#include "ctlpool.h"
#include "dbq.h"
#include "events.h"
#include "log.h"
#include "mgrlink.h"
#include "wview.h"

#define CALL_MARGIN_MS 5000

/* ---- metrics ---- */

/* Appends to buf[*pos..cap), never past it (the text is capped, not grown:
 * its size is bounded by the number of series, not of workers). */
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

/* One counter or gauge with its HELP and TYPE lines. */
static void series(char *buf, size_t cap, size_t *pos, const char *name, const char *type,
                   const char *help, unsigned long long value)
{
    metric(buf, cap, pos, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
           value);
}

/* A histogram of seconds (engine.h) in Prometheus form. */
static void hist(char *buf, size_t cap, size_t *pos, const char *name, const char *help,
                 const struct engine_hist *h)
{
    unsigned long long cum = 0;

    metric(buf, cap, pos, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < ENGINE_HIST_N; i++) {
        cum += h->bucket[i];
        if (i < ENGINE_HIST_N - 1)
            metric(buf, cap, pos, "%s_bucket{le=\"%g\"} %llu\n", name, ENGINE_HIST_LE[i], cum);
        else
            metric(buf, cap, pos, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    }
    metric(buf, cap, pos, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
           (unsigned long long)h->count);
}

/* The run engine's series. */
static void engine_metrics(char *buf, size_t cap, size_t *pos, const struct engine_stats *st)
{
    static const char *const active[4] = {"pending", "running", "sleeping", "waiting"};

    metric(buf, cap, pos,
           "# HELP wf_runs Runs not ended, by status, on every host (counted every 5 s).\n"
           "# TYPE wf_runs gauge\n");
    for (int k = 0; k < 4; k++)
        metric(buf, cap, pos, "wf_runs{status=\"%s\"} %llu\n", active[k],
               (unsigned long long)st->active[k]);
    metric(buf, cap, pos,
           "# HELP wf_runs_ended_total Runs this core ended, by outcome.\n"
           "# TYPE wf_runs_ended_total counter\n"
           "wf_runs_ended_total{status=\"completed\"} %llu\n"
           "wf_runs_ended_total{status=\"failed\"} %llu\n"
           "wf_runs_ended_total{status=\"cancelled\"} %llu\n",
           (unsigned long long)st->completed, (unsigned long long)st->failed,
           (unsigned long long)st->cancelled);
    series(buf, cap, pos, "wf_runs_triggered_total", "counter", "Runs started by this core.",
           st->triggered);
    series(buf, cap, pos, "wf_runs_claimed_total", "counter",
           "Runs claimed from the database (pending, released, due, or of a vanished host).",
           st->claimed);
    series(buf, cap, pos, "wf_runs_parked_total", "counter",
           "Runs parked in the database, sleeping or waiting for a signal.", st->parked);
    series(buf, cap, pos, "wf_runs_released_total", "counter",
           "Runs given back at once because their worker went away.", st->released);
    series(buf, cap, pos, "wf_runs_held", "gauge", "Runs held by this host's workers now.",
           st->held);
    series(buf, cap, pos, "wf_child_waits_total", "counter",
           "Waits for child runs (fork, bounded for, the children call) sent to the database.",
           st->child_waits);
    series(buf, cap, pos, "wf_child_join_checks_total", "counter",
           "Joins checked after child runs ended (once per batch of a join's children's ends).",
           st->join_checks);
    series(buf, cap, pos, "wf_child_orphans_cancelled_total", "counter",
           "Child runs cancelled because nobody waited for them any more.", st->orphans);
    series(buf, cap, pos, "wf_steps_total", "counter", "Activity steps committed.", st->steps);
    series(buf, cap, pos, "wf_activity_retries_total", "counter",
           "Activity attempts beyond the first, in committed steps.", st->retries);
    hist(buf, cap, pos, "wf_run_duration_seconds", "From a run's creation to its end.",
         &st->run_seconds);
    hist(buf, cap, pos, "wf_step_duration_seconds", "From a step's first attempt to its commit.",
         &st->step_seconds);
    hist(buf, cap, pos, "wf_trigger_to_first_activity_seconds",
         "From a trigger to its first activity's start, runs started on this host.",
         &st->first_seconds);
}

enum MHD_Result api_metrics(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                            const char *const *args)
{
    struct wview_counts wv;
    struct core_metrics m;
    size_t cap = 32768, pos = 0;
    char *buf = malloc(cap);
    struct MHD_Response *resp;
    enum MHD_Result ret;
    unsigned long long cum = 0;

    if (buf == NULL)
        return MHD_NO;
    wview_counts(c->view, &wv);
    core_metrics(c, &m);
    metric(buf, cap, &pos,
           "# HELP wf_build_info The running wf-server.\n# TYPE wf_build_info gauge\n"
           "wf_build_info{version=\"%s\"} 1\n",
           WF_VERSION);
    series(buf, cap, &pos, "wf_database_up", "gauge",
           "Whether core's database connections are ready and answering.",
           (unsigned long long)(__atomic_load_n(&c->db_ok, __ATOMIC_RELAXED) != 0));
    metric(buf, cap, &pos,
           "# HELP wf_workers Projects with a worker on this server, by status.\n"
           "# TYPE wf_workers gauge\n");
    for (int k = 0; k < 5; k++)
        metric(buf, cap, &pos, "wf_workers{status=\"%s\"} %d\n", wview_status_name(k),
               wv.by_status[k]);
    series(buf, cap, &pos, "wf_worker_restarts", "gauge", "Crash restarts of the current workers.",
           (unsigned long long)wv.restarts);
    metric(buf, cap, &pos,
           "# HELP wf_worker_heartbeat_age_max_seconds Age of the stalest running worker's "
           "last heartbeat.\n# TYPE wf_worker_heartbeat_age_max_seconds gauge\n"
           "wf_worker_heartbeat_age_max_seconds %.3f\n",
           wv.max_heartbeat_age_s);
    series(buf, cap, &pos, "wf_worker_starts_total", "counter",
           "Worker processes started since core started.", (unsigned long long)wv.starts);
    series(buf, cap, &pos, "wf_worker_crashes_total", "counter",
           "Worker crashes seen since core started.", (unsigned long long)wv.crashes);
    series(buf, cap, &pos, "wf_worker_resets_total", "counter",
           "Workers core reset for a protocol error, a stalled socket or flooding.",
           (unsigned long long)m.worker_resets);
    series(buf, cap, &pos, "wf_worker_messages_total", "counter", "Messages received from workers.",
           (unsigned long long)m.worker_msgs_in);
    series(buf, cap, &pos, "wf_artifact_fetches_total", "counter",
           "Plugins fetched from the database into sealed memfds (one per start of a "
           "project whose code no running worker holds).",
           (unsigned long long)m.artifacts_fetched);
    series(buf, cap, &pos, "wf_artifact_fetched_bytes_total", "counter", "Bytes of those plugins.",
           (unsigned long long)m.artifact_bytes_fetched);
    series(buf, cap, &pos, "wf_schedule_runs_fired_total", "counter",
           "Runs this server started for schedules' ticks.", (unsigned long long)m.sched.fired);
    series(buf, cap, &pos, "wf_schedule_ticks_skipped_total", "counter",
           "Schedules' ticks this server found missed and did not fire.",
           (unsigned long long)m.sched.skipped);
    series(buf, cap, &pos, "wf_schedule_pass_errors_total", "counter",
           "Schedule firing passes that failed and were retried.",
           (unsigned long long)m.sched.errors);
    series(buf, cap, &pos, "wf_http_requests_total", "counter",
           "HTTP requests completed since core started.",
           (unsigned long long)__atomic_load_n(&c->stats.http_requests, __ATOMIC_RELAXED));
    series(buf, cap, &pos, "wf_http_pool_queued", "gauge",
           "Control-plane requests waiting for a database thread.",
           (unsigned long long)m.http_pool_queued);
    {
        size_t used, peak, budget;
        http_body_budget(&used, &peak, &budget);
        series(buf, cap, &pos, "wf_http_connections", "gauge", "Open HTTP connections.",
               (unsigned long long)http_open_connections());
        series(buf, cap, &pos, "wf_event_streams", "gauge",
               "Open live event streams (GET .../events).",
               (unsigned long long)events_open_streams(c->events));
        series(buf, cap, &pos, "wf_http_body_bytes_buffered", "gauge",
               "Request-body bytes reserved by requests in progress.", (unsigned long long)used);
        series(buf, cap, &pos, "wf_http_body_bytes_buffered_max", "gauge",
               "The most request-body bytes reserved at once since core started.",
               (unsigned long long)peak);
        series(buf, cap, &pos, "wf_http_body_bytes_budget", "gauge",
               "WF_MAX_INFLIGHT_BODY_BYTES: past it a request is answered 503.",
               (unsigned long long)budget);
    }
    series(buf, cap, &pos, "wf_db_statements_total", "counter",
           "Statements sent by core's database layer (a multi-row statement counts once).",
           (unsigned long long)m.db_statements);
    series(buf, cap, &pos, "wf_db_rows_coalesced_total", "counter",
           "Rows committed as part of multi-row statements.",
           (unsigned long long)m.db_rows_coalesced);
    series(buf, cap, &pos, "wf_db_reconnects_total", "counter",
           "Database connections re-established after a loss.",
           (unsigned long long)m.db_reconnects);
    series(buf, cap, &pos, "wf_db_queue_depth", "gauge", "Statements waiting for a batch.",
           (unsigned long long)m.db_queue_depth);
    metric(buf, cap, &pos,
           "# HELP wf_db_commit_batch_size Statements served by each committed batch.\n"
           "# TYPE wf_db_commit_batch_size histogram\n");
    for (int i = 0; i < CORE_HIST_BUCKETS; i++) {
        cum += m.db_batch_hist[i];
        if (i < CORE_HIST_BUCKETS - 1)
            metric(buf, cap, &pos, "wf_db_commit_batch_size_bucket{le=\"%d\"} %llu\n", 1 << i, cum);
        else
            metric(buf, cap, &pos, "wf_db_commit_batch_size_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    metric(buf, cap, &pos, "wf_db_commit_batch_size_count %llu\n", cum);
    engine_metrics(buf, cap, &pos, &m.engine);
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

/* ---- list and status ---- */

enum MHD_Result api_workers_list(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "workers");
    int n = wview_list_json(c->view, arr);

    cJSON_AddNumberToObject(o, "count", n);
    return http_send_json(conn, MHD_HTTP_OK, o);
}

/*
 * A worker call or a status read between its steps (the request's work).
 * A call finishes once every step it started is done (pending reaches 0),
 * whatever the outcome, because each step's callback holds the request:
 *   - the main chain: the project's existence (when it has no worker
 *     here), the manager's reply, then a barrier on the fast class;
 *   - the desired-state write (start, stop, restart), submitted at once so
 *     that its commit overlaps the worker's spawn.
 */
struct wcall {
    char op[16]; /* start, stop, restart; "status" for a status read */
    char project[WF_ID_MAX + 1];
    int timeout_ms;
    int pending;          /* steps still running */
    cJSON *reply;         /* the manager's reply, once in */
    unsigned fail_status; /* with fail_msg: the call's answer is this error */
    char fail_msg[512];
    cJSON *status_body; /* a status read's answer */
};

static void wcall_free(void *arg)
{
    struct wcall *w = arg;

    cJSON_Delete(w->reply);
    cJSON_Delete(w->status_body);
    free(w);
}

/* Records the call's answer as an error (the first one recorded wins). */
static void wcall_fail(struct http_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wcall_fail(struct http_req *r, unsigned status, const char *fmt, ...)
{
    struct wcall *w = r->work;
    va_list ap;

    if (w->fail_status != 0)
        return;
    w->fail_status = status;
    va_start(ap, fmt);
    vsnprintf(w->fail_msg, sizeof(w->fail_msg), fmt, ap);
    va_end(ap);
}

/* The "stopped" status of a project with no worker here. */
static cJSON *stopped_status(struct core *c, const char *project)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "projectId", project);
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
    cJSON_AddNullToObject(o, "sandbox");
    return o;
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

/* Every step is done: the answer goes out. */
static void finish(struct http_req *r)
{
    struct wcall *w = r->work;
    const cJSON *rep = w->reply;
    const char *code;
    cJSON *o;
    char msg[160];
    int64_t pid;

    if (w->fail_status != 0) {
        http_finish_error(r, w->fail_status, "%s", w->fail_msg);
        return;
    }
    if (w->status_body != NULL) {
        o = w->status_body;
        w->status_body = NULL;
        http_finish(r, MHD_HTTP_OK, o);
        return;
    }
    code = ju_str(rep, "code") != NULL ? ju_str(rep, "code") : "failed";
    if (!ju_bool(rep, "ok")) {
        const char *err = ju_str(rep, "error");
        http_finish_error(r, error_status(code), "%s",
                          err != NULL ? err : "the manager refused the request");
        return;
    }
    o = cJSON_CreateObject();
    success_message(code, w->project, msg, sizeof(msg));
    cJSON_AddBoolToObject(o, "success", 1);
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "projectId", w->project);
    if (ju_str(rep, "worker_id") != NULL)
        cJSON_AddStringToObject(o, "workerId", ju_str(rep, "worker_id"));
    if (ju_int(rep, "pid", &pid) == 0 && strcmp(code, "stopped") != 0)
        cJSON_AddNumberToObject(o, "pid", (double)pid);
    http_finish(r, MHD_HTTP_OK, o);
}

/* One step is done: the last one sends the answer. */
static void step_done(struct http_req *r)
{
    struct wcall *w = r->work;

    if (--w->pending == 0)
        finish(r);
}

/* Records why a database read failed as the call's answer. */
static void fail_db(struct http_req *r, const struct dbq_result *res, const char *what)
{
    log_error("could not %s: %s", what, res->message);
    if (res->outcome == DBQ_FAILED)
        wcall_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
    else
        wcall_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
}

/* ---- the desired state ---- */

static const char *const DESIRED_SQL = "UPDATE projects SET desired_state = $2, updated_at = now()"
                                       " WHERE id = $1 AND desired_state <> $2";

/* A desired-state write that outlived its call: log how it ended. arg is
 * the project id (malloc'ed). */
static void on_late_desired(void *arg, const struct dbq_result *res)
{
    if (res->outcome == DBQ_OK)
        log_info("recorded the desired state of project %s after a delay", (char *)arg);
    else
        log_error("could not record the desired state of project %s: %s", (char *)arg,
                  res->message);
    free(arg);
}

/* Loop: the desired state is committed (or could not be yet). */
static void on_desired(void *arg, const struct dbq_result *res)
{
    struct http_req *r = arg;
    struct wcall *w = r->work;

    if (res->outcome != DBQ_OK) {
        const char *params[2] = {w->project, strcmp(w->op, "stop") == 0 ? "stopped" : "running"};
        char *project = strdup(w->project);
        log_warning("could not record the desired state of project %s yet (%s); retrying "
                    "until it lands",
                    w->project, res->message);
        /* It sets an absolute value: safe to resend until it lands. */
        if (project == NULL ||
            dbq_exec(r->core->dbq, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, DESIRED_SQL, 2,
                     params, NULL, NULL, on_late_desired, project) < 0) {
            log_error("could not record the desired state of project %s: out of memory",
                      w->project);
            free(project);
        }
    }
    step_done(r);
}

/* Loop: records what the user asked for, durably; the answer waits for it
 * (it is what WF_AUTOSTART reads). */
static void write_desired(struct http_req *r)
{
    struct wcall *w = r->work;
    const char *params[2] = {w->project, strcmp(w->op, "stop") == 0 ? "stopped" : "running"};

    w->pending++;
    if (dbq_exec(r->core->dbq, DBQ_DURABLE, DBQ_RETRY_SAFE, DESIRED_SQL, 2, params, NULL, NULL,
                 on_desired, r) < 0) {
        log_error("could not record the desired state of project %s: out of memory", w->project);
        w->pending--;
    }
}

/* ---- the main chain ---- */

/* Loop: every worker-row write submitted before it is committed (the fast
 * class's batches commit in order): whoever reads the row after the answer
 * sees the state the answer reports. */
static void on_rows_barrier(void *arg, const struct dbq_result *res)
{
    struct http_req *r = arg;

    if (res->outcome != DBQ_OK)
        log_warning("could not confirm the worker rows of project %s are written: %s",
                    ((struct wcall *)r->work)->project, res->message);
    step_done(r);
}

/* Loop: the manager answered (reply NULL: it did not in time). */
static void on_manager_reply(void *arg, const cJSON *reply)
{
    struct http_req *r = arg;
    struct wcall *w = r->work;

    if (reply == NULL) {
        if (core_stopping(r->core)) {
            wcall_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        } else {
            log_error("%s of project %s: no answer from the manager in time", w->op, w->project);
            wcall_fail(r, MHD_HTTP_GATEWAY_TIMEOUT,
                       "timed out waiting for the worker of project \"%s\"", w->project);
        }
        step_done(r);
        return;
    }
    w->reply = cJSON_Duplicate(reply, 1);
    if (w->reply == NULL)
        wcall_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    else if (dbq_exec(r->core->dbq, DBQ_FAST, DBQ_RETRY_SAFE, "SELECT 1", 0, NULL, NULL, NULL,
                      on_rows_barrier, r) == 0)
        w->pending++;
    step_done(r);
}

static void send_manager_call(struct http_req *r)
{
    struct wcall *w = r->work;

    if (mgrlink_project_op(r->core->ml, w->op, w->project, w->timeout_ms, on_manager_reply, r) <
        0) {
        wcall_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "could not reach the process manager");
        step_done(r);
    }
}

/* Loop: the project's existence is known. */
static void on_project_read(void *arg, const struct dbq_result *res)
{
    struct http_req *r = arg;
    struct wcall *w = r->work;

    if (res->outcome != DBQ_OK) {
        fail_db(r, res, "look up the project");
    } else if (PQntuples(res->res) == 0) {
        wcall_fail(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", w->project);
    } else if (strcmp(w->op, "status") == 0) {
        /* It may have got a worker meanwhile. */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "projectId", w->project);
        if (wview_status_json(r->core->view, w->project, o)) {
            w->status_body = o;
        } else {
            cJSON_Delete(o);
            w->status_body = stopped_status(r->core, w->project);
        }
    } else {
        send_manager_call(r);
        return;
    }
    step_done(r);
}

/* Loop: the first step of a worker call or a status read. */
static void call_on_loop(void *arg)
{
    struct http_req *r = arg;
    struct wcall *w = r->work;
    const char *params[1] = {w->project};

    w->pending = 1; /* the main chain */
    if (core_stopping(r->core)) {
        wcall_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        step_done(r);
        return;
    }
    if (strcmp(w->op, "status") != 0)
        write_desired(r);
    if (strcmp(w->op, "status") != 0 && wview_has(r->core->view, w->project)) {
        send_manager_call(r);
        return;
    }
    if (dbq_exec(r->core->dbq, DBQ_FAST, DBQ_RETRY_SAFE, "SELECT 1 FROM projects WHERE id = $1", 1,
                 params, NULL, NULL, on_project_read, r) < 0) {
        wcall_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        step_done(r);
    }
}

/* MHD thread: validates {"projectId": …} and defers the call to the loop. */
static enum MHD_Result worker_call(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                   const char *op, int timeout_ms)
{
    char id[WF_ID_MAX + 1];
    const char *why = NULL;
    struct wcall *w;

    if (apibody_project_id(r->body, r->len, id, &why) < 0)
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", why);
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return MHD_NO;
    snprintf(w->op, sizeof(w->op), "%s", op);
    snprintf(w->project, sizeof(w->project), "%s", id);
    w->timeout_ms = timeout_ms;
    http_set_work(r, w, wcall_free);
    return http_defer_to_loop(c, r, call_on_loop);
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

enum MHD_Result api_workers_status(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                   const char *const *args)
{
    const char *arg = args[0];
    struct wcall *w;
    cJSON *o;

    if (!ju_valid_id(arg))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid projectId: must match ^[A-Za-z0-9_-]{1,64}$");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "projectId", arg);
    if (wview_status_json(c->view, arg, o))
        return http_send_json(conn, MHD_HTTP_OK, o);
    cJSON_Delete(o);
    /* No worker here: the project must exist to say "stopped". */
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return MHD_NO;
    snprintf(w->op, sizeof(w->op), "status");
    snprintf(w->project, sizeof(w->project), "%s", arg);
    http_set_work(r, w, wcall_free);
    return http_defer_to_loop(c, r, call_on_loop);
}
