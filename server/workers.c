/*
 * workers.c: core's record of the workers: the in-memory view that status,
 * list and metrics read (under view_lock), and the workflow_workers rows
 * that operators read with SQL. Both follow the manager's slot snapshots;
 * rows are written through the dispatcher's asynchronously committing
 * connection (derived status, rebuilt from the manager's hello after any
 * loss). Dispatcher thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifacts.h"
#include "dispatcher.h"
#include "exitcodes.h"
#include "log.h"
#include "msg.h"

static const char *const UPSERT_WORKER_SQL =
    "INSERT INTO workflow_workers AS w (worker_id, project_id, host, pid, status, started_at,"
    " last_heartbeat, stopped_at, error, loaded, restarts, heartbeat_ms, updated_at)"
    " VALUES ($1, $2, $3, $4::int, $5::text, to_timestamp($6::float8 / 1000),"
    "  CASE WHEN $5::text = 'running' THEN now() END,"
    "  CASE WHEN $5::text IN ('stopped', 'crashed', 'failed') THEN now() END,"
    "  $7, $8::jsonb, $9::int, $10::int, now())"
    " ON CONFLICT (worker_id) DO UPDATE SET project_id = EXCLUDED.project_id,"
    "  host = EXCLUDED.host, pid = EXCLUDED.pid, status = EXCLUDED.status,"
    "  started_at = EXCLUDED.started_at,"
    "  last_heartbeat = coalesce(EXCLUDED.last_heartbeat, w.last_heartbeat),"
    "  stopped_at = EXCLUDED.stopped_at, error = EXCLUDED.error,"
    "  loaded = coalesce(EXCLUDED.loaded, w.loaded), restarts = EXCLUDED.restarts,"
    "  heartbeat_ms = EXCLUDED.heartbeat_ms,"
    "  updated_at = now()";

/*
 * Builds a PostgreSQL text-array literal ({"a","b"}) from n strings.
 * Returns malloc'ed text (caller frees), or NULL on ENOMEM.
 */
static char *text_array(const char *const *items, size_t n)
{
    size_t cap = 3;
    char *out, *p;

    for (size_t i = 0; i < n; i++)
        cap += 3 + 2 * strlen(items[i]);
    out = malloc(cap);
    if (out == NULL)
        return NULL;
    p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        *p++ = '"';
        for (const char *s = items[i]; *s; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

void disp_view_set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src != NULL ? strdup(src) : NULL;
}

/* Applies a slot snapshot from the manager to the in-memory view. */
static void view_apply(struct core *c, const cJSON *ev, const char *loaded)
{
    const char *project = ju_str(ev, "project");
    const char *status = ju_str(ev, "status");
    struct core_view *v;
    int64_t n;

    pthread_rwlock_wrlock(&c->view_lock);
    v = idmap_get(&c->views, project);
    if (strcmp(status, "stopped") == 0) {
        v = idmap_del(&c->views, project);
        if (v != NULL) {
            free(v->error);
            free(v->loaded);
            free(v);
        }
        pthread_rwlock_unlock(&c->view_lock);
        return;
    }
    if (v == NULL) {
        v = calloc(1, sizeof(*v));
        if (v == NULL) {
            pthread_rwlock_unlock(&c->view_lock);
            log_error("could not record worker state: out of memory");
            return;
        }
        snprintf(v->project, sizeof(v->project), "%s", project);
        if (idmap_put(&c->views, v) < 0) {
            free(v);
            pthread_rwlock_unlock(&c->view_lock);
            log_error("could not record worker state: out of memory");
            return;
        }
    }
    snprintf(v->worker_id, sizeof(v->worker_id), "%s",
             ju_str(ev, "worker_id") != NULL ? ju_str(ev, "worker_id") : "");
    snprintf(v->status, sizeof(v->status), "%s", status);
    if (ju_int(ev, "pid", &n) == 0) {
        if (v->pid != (pid_t)n)
            v->last_heartbeat = 0;
        v->pid = (pid_t)n;
    }
    if (ju_int(ev, "restarts", &n) == 0)
        v->restarts = (int)n;
    if (ju_int(ev, "started_at", &n) == 0)
        v->started_at = n;
    if (strcmp(status, "running") == 0 && v->last_heartbeat == 0)
        v->last_heartbeat = ju_wall_ms();
    disp_view_set_str(&v->error, ju_str(ev, "error"));
    if (loaded != NULL)
        disp_view_set_str(&v->loaded, loaded);
    pthread_rwlock_unlock(&c->view_lock);
}

/* Writes a slot snapshot to workflow_workers. */
static void store_state(struct dispatcher *d, const cJSON *ev, const char *loaded)
{
    char pid[24], started[24], restarts[24];
    const char *params[10];
    char hb[24];
    int64_t n;

    snprintf(pid, sizeof(pid), "%lld", ju_int(ev, "pid", &n) == 0 ? (long long)n : 0LL);
    snprintf(started, sizeof(started), "%lld",
             ju_int(ev, "started_at", &n) == 0 ? (long long)n : 0LL);
    snprintf(restarts, sizeof(restarts), "%lld",
             ju_int(ev, "restarts", &n) == 0 ? (long long)n : 0LL);
    params[0] = ju_str(ev, "worker_id");
    params[1] = ju_str(ev, "project");
    params[2] = d->c->cfg->host_id;
    params[3] = pid;
    params[4] = ju_str(ev, "status");
    params[5] = started;
    params[6] = ju_str(ev, "error");
    params[7] = loaded;
    params[8] = restarts;
    snprintf(hb, sizeof(hb), "%d", d->c->cfg->heartbeat_ms);
    params[9] = hb;
    if (db_command(d->c->dconn, UPSERT_WORKER_SQL, 10, params) < 0)
        log_error("could not record worker %s as %s: %s", params[0], params[4],
                  db_error(d->c->dconn));
}

static int valid_snapshot(const cJSON *ev)
{
    return ju_valid_id(ju_str(ev, "project")) && ju_str(ev, "status") != NULL &&
           ju_str(ev, "worker_id") != NULL;
}

void disp_on_state(struct dispatcher *d, const cJSON *ev)
{
    struct wconn *w;
    const char *loaded = NULL;
    int64_t pid;

    if (!valid_snapshot(ev)) {
        log_warning("ignoring malformed state event from the manager");
        return;
    }
    if (ju_int(ev, "pid", &pid) == 0) {
        w = disp_find_wconn(d, (pid_t)pid);
        if (w != NULL)
            loaded = w->loaded;
    }
    log_debug("worker %s is %s (pid %lld)", ju_str(ev, "worker_id"), ju_str(ev, "status"),
              (long long)pid);
    if (strcmp(ju_str(ev, "status"), "starting") == 0)
        __atomic_add_fetch(&d->c->stats.worker_starts, 1, __ATOMIC_RELAXED);
    else if (strcmp(ju_str(ev, "status"), "crashed") == 0 ||
             strcmp(ju_str(ev, "status"), "failed") == 0)
        __atomic_add_fetch(&d->c->stats.worker_crashes, 1, __ATOMIC_RELAXED);
    view_apply(d->c, ev, loaded);
    store_state(d, ev, loaded);
}

/* Autostart: every project whose desired state is running. */
static void autostart(struct dispatcher *d)
{
    PGresult *r =
        db_exec(d->c->dconn, "SELECT id FROM projects WHERE desired_state = 'running' ORDER BY id",
                0, NULL);

    if (r == NULL) {
        log_error("could not list projects to autostart: %s", db_error(d->c->dconn));
        return;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "op", "start");
        cJSON_AddNumberToObject(o, "req", 0);
        cJSON_AddStringToObject(o, "project", PQgetvalue(r, i, 0));
        pthread_mutex_lock(&d->c->ctl_mu);
        if (msg_send(d->c->ctl_fd, o, -1) < 0)
            log_error("could not autostart project %s: %s", PQgetvalue(r, i, 0), strerror(errno));
        pthread_mutex_unlock(&d->c->ctl_mu);
        cJSON_Delete(o);
    }
    log_info("autostart: %d projects", PQntuples(r));
    PQclear(r);
}

/*
 * The manager's greeting: its current slots. Rows this host left in a live
 * state that the manager does not know are from an earlier instance (or
 * changed while no core was up): they are marked crashed.
 */
void disp_on_hello(struct dispatcher *d, const cJSON *ev)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(ev, "workers");
    const cJSON *it;
    const char **ids;
    const char *params[2];
    PGresult *rows = NULL;
    char *lit;
    size_t n = 0;
    int count = cJSON_GetArraySize(arr);

    ids = calloc((size_t)count + 1, sizeof(*ids));
    if (ids == NULL)
        return;
    cJSON_ArrayForEach(it, arr)
    {
        if (valid_snapshot(it))
            ids[n++] = ju_str(it, "worker_id");
    }
    /* What the surviving workers loaded is in their rows: the view shows it
     * from the first request on, before each worker greets this core. */
    lit = text_array(ids, n);
    params[0] = lit;
    if (lit != NULL && n > 0)
        rows = db_exec(d->c->dconn,
                       "SELECT worker_id, loaded::text FROM workflow_workers"
                       " WHERE worker_id = ANY($1::text[]) AND loaded IS NOT NULL",
                       1, params);
    cJSON_ArrayForEach(it, arr)
    {
        const char *loaded = NULL;
        if (!valid_snapshot(it))
            continue;
        for (int i = 0; rows != NULL && i < PQntuples(rows); i++) {
            if (strcmp(PQgetvalue(rows, i, 0), ju_str(it, "worker_id")) == 0)
                loaded = PQgetvalue(rows, i, 1);
        }
        view_apply(d->c, it, loaded);
        store_state(d, it, NULL);
    }
    PQclear(rows);
    params[0] = d->c->cfg->host_id;
    params[1] = lit;
    if (lit == NULL ||
        db_command(d->c->dconn,
                   "UPDATE workflow_workers SET status = 'crashed', stopped_at = now(),"
                   " updated_at = now(), error = coalesce(error, 'the server instance running"
                   " this worker ended without stopping it')"
                   " WHERE host = $1 AND status IN ('starting', 'running', 'draining')"
                   " AND NOT (worker_id = ANY($2::text[]))",
                   2, params) < 0)
        log_error("could not reconcile worker rows: %s", db_error(d->c->dconn));
    free(lit);
    free(ids);
    log_info("manager reports %zu workers%s", n, ju_bool(ev, "first") ? " (first core)" : "");
    if (ju_bool(ev, "first")) {
        /* A new instance: no worker uses files an earlier one on this port
         * left behind (it may have been killed before it could clean up). */
        char err[256];
        art_gc_all(d->c->rundir);
        if (art_init(d->c->rundir, err, sizeof(err)) < 0)
            log_error("%s", err);
    }
    if (d->c->httpd == NULL) {
        if (http_start(d->c, d->listen_fd) < 0) {
            d->rc = WF_EXIT_SYSCALL;
            d->stop = 1;
            return;
        }
        log_info("core ready (pid %d)", (int)getpid());
    }
    if (ju_bool(ev, "first") && d->c->cfg->autostart)
        autostart(d);
}

/* Records the desired state of a project whose start, restart or stop
 * succeeded (read by WF_AUTOSTART). */
void disp_store_desired(struct core *c, const struct core_call *call)
{
    const char *params[2] = {call->project, strcmp(call->op, "stop") == 0 ? "stopped" : "running"};

    if (db_command(c->dconn,
                   "UPDATE projects SET desired_state = $2, updated_at = now()"
                   " WHERE id = $1 AND desired_state <> $2",
                   2, params) < 0)
        log_error("could not record the desired state of project %s: %s", call->project,
                  db_error(c->dconn));
}

void disp_on_heartbeat(struct dispatcher *d, struct wconn *w)
{
    struct core_view *v;

    w->beat = 1;
    pthread_rwlock_wrlock(&d->c->view_lock);
    v = idmap_get(&d->c->views, w->project);
    if (v != NULL && v->pid == w->pid)
        v->last_heartbeat = ju_wall_ms();
    pthread_rwlock_unlock(&d->c->view_lock);
}

/* One UPDATE for every current worker that beat since the last flush. */
void disp_flush_heartbeats(struct dispatcher *d)
{
    const char **ids;
    const char *params[1];
    size_t n = 0, cap = 0;
    char *lit;

    for (struct wconn *w = d->wconns; w != NULL; w = w->next)
        cap++;
    if (cap == 0)
        return;
    ids = calloc(cap, sizeof(*ids));
    if (ids == NULL)
        return;
    pthread_rwlock_rdlock(&d->c->view_lock);
    for (struct wconn *w = d->wconns; w != NULL; w = w->next) {
        struct core_view *v;
        if (!w->beat)
            continue;
        w->beat = 0;
        v = idmap_get(&d->c->views, w->project);
        if (v != NULL && v->pid == w->pid && strcmp(v->status, "running") == 0)
            ids[n++] = v->worker_id;
    }
    if (n > 0) {
        lit = text_array(ids, n);
        params[0] = lit;
        if (lit == NULL || db_command(d->c->dconn,
                                      "UPDATE workflow_workers SET last_heartbeat = now()"
                                      " WHERE worker_id = ANY($1::text[])",
                                      1, params) < 0)
            log_error("could not record heartbeats: %s", db_error(d->c->dconn));
        free(lit);
    }
    pthread_rwlock_unlock(&d->c->view_lock);
    free(ids);
}

void disp_reap_stale_rows(struct dispatcher *d)
{
    const char *params[1] = {d->c->cfg->host_id};
    PGresult *r;

    r = db_exec(d->c->dconn,
                "UPDATE workflow_workers SET status = 'crashed', stopped_at = now(),"
                " updated_at = now(), error = 'no heartbeat from host ' || host || ' since '"
                " || to_char(coalesce(last_heartbeat, updated_at) AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                " WHERE status IN ('starting', 'running', 'draining') AND host <> $1"
                " AND heartbeat_ms IS NOT NULL AND coalesce(last_heartbeat, updated_at)"
                "  < now() - make_interval(secs => 3 * heartbeat_ms / 1000.0)"
                " RETURNING worker_id, host",
                1, params);
    if (r == NULL) {
        log_error("could not check other hosts' worker rows: %s", db_error(d->c->dconn));
        return;
    }
    for (int i = 0; i < PQntuples(r); i++)
        log_warning("worker %s of host %s stopped heartbeating; marked crashed",
                    PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
}

void disp_mark_stopped(struct dispatcher *d)
{
    const char *params[1] = {d->c->cfg->host_id};

    if (db_command(d->c->dconn,
                   "UPDATE workflow_workers SET status = 'stopped', stopped_at = now(),"
                   " updated_at = now() WHERE host = $1"
                   " AND status IN ('starting', 'running', 'draining')",
                   1, params) < 0)
        log_error("could not mark workers stopped: %s", db_error(d->c->dconn));
}
