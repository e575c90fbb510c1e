/*
 * dispatcher.c: core's main thread. It reads the manager's control socket
 * (worker state changes, replies to HTTP calls, new worker sockets) and
 * every worker's work socket (hello, heartbeats), writes workflow_workers,
 * and resumes suspended HTTP calls.
 *
 * Protocol with the manager (framed JSON, common/msg.h):
 *   core → manager  {"op":"hello"} once ready; {"op":"start|stop|restart",
 *                   "req":N,"project":…} for HTTP calls
 *   manager → core  {"ev":"hello","first":bool,"workers":[slot…]},
 *                   {"ev":"attach","project","pid","draining","fresh"} + work
 *                   socket (fresh: just spawned; core sends its code at once),
 *                   {"ev":"state", slot fields}, {"ev":"reply","req":N,…}
 *
 * Invariants: only this thread touches worker connections and the
 * dispatcher's database connection; the view is written only here (under
 * view_lock); every suspended call is resumed exactly once (reply, timeout
 * or shutdown). Heartbeats are written for all workers in one statement per
 * interval. A database failure here is logged and the loop goes on; the
 * next state change or heartbeat writes fresh values.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "artifacts.h"
#include "core.h"
#include "exitcodes.h"
#include "log.h"
#include "msg.h"

#define TICK_MS 100

/* One worker's work socket, as seen by core. */
struct wconn {
    int fd;
    pid_t pid;
    char project[WF_ID_MAX + 1];
    int draining;
    int beat;         /* sent a heartbeat since the last flush */
    char *loaded;     /* JSON text of the code lists sent to it, or NULL */
    char (*shas)[65]; /* artifacts it was given (kept by art_gc) */
    int load_sent;    /* its load message went out */
    size_t nshas;
    struct wconn *next;
};

struct dispatcher {
    struct core *c;
    int epfd;
    int sigfd;
    int timerfd;
    struct wconn *wconns;
    struct wconn *zombies; /* replaced connections, freed after the batch */
    int64_t next_flush;
    int64_t next_ping;
    int listen_fd;
    int stop;
    int rc;
};

static const char *const UPSERT_WORKER_SQL =
    "INSERT INTO workflow_workers AS w (worker_id, project_id, host, pid, status, started_at,"
    " last_heartbeat, stopped_at, error, loaded, restarts, updated_at)"
    " VALUES ($1, $2, $3, $4::int, $5::text, to_timestamp($6::float8 / 1000),"
    "  CASE WHEN $5::text = 'running' THEN now() END,"
    "  CASE WHEN $5::text IN ('stopped', 'crashed', 'failed') THEN now() END,"
    "  $7, $8::jsonb, $9::int, now())"
    " ON CONFLICT (worker_id) DO UPDATE SET project_id = EXCLUDED.project_id,"
    "  host = EXCLUDED.host, pid = EXCLUDED.pid, status = EXCLUDED.status,"
    "  started_at = EXCLUDED.started_at,"
    "  last_heartbeat = coalesce(EXCLUDED.last_heartbeat, w.last_heartbeat),"
    "  stopped_at = EXCLUDED.stopped_at, error = EXCLUDED.error,"
    "  loaded = coalesce(EXCLUDED.loaded, w.loaded), restarts = EXCLUDED.restarts,"
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

static struct wconn *find_wconn_pid(struct dispatcher *d, pid_t pid)
{
    for (struct wconn *w = d->wconns; w != NULL; w = w->next) {
        if (w->pid == pid)
            return w;
    }
    return NULL;
}

/* Removes the project's artifact files no connected worker uses. */
static void gc_project(struct dispatcher *d, const char *project)
{
    const char **keep;
    size_t n = 0, cap = 0;

    for (struct wconn *w = d->wconns; w != NULL; w = w->next) {
        if (strcmp(w->project, project) == 0)
            cap += w->nshas;
    }
    keep = calloc(cap + 1, sizeof(*keep));
    if (keep == NULL)
        return;
    for (struct wconn *w = d->wconns; w != NULL; w = w->next) {
        if (strcmp(w->project, project) != 0)
            continue;
        for (size_t i = 0; i < w->nshas; i++)
            keep[n++] = w->shas[i];
    }
    art_gc(d->c->rundir, project, keep, n);
    free(keep);
}

static void drop_wconn(struct dispatcher *d, struct wconn *w, int gc)
{
    char project[WF_ID_MAX + 1];

    for (struct wconn **pp = &d->wconns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    snprintf(project, sizeof(project), "%s", w->project);
    close(w->fd);
    free(w->loaded);
    free(w->shas);
    free(w);
    if (gc)
        gc_project(d, project);
}

/* ---- the worker view ---- */

static void view_set_str(char **dst, const char *src)
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
    view_set_str(&v->error, ju_str(ev, "error"));
    if (loaded != NULL)
        view_set_str(&v->loaded, loaded);
    pthread_rwlock_unlock(&c->view_lock);
}

/* Writes a slot snapshot to workflow_workers. */
static void store_state(struct dispatcher *d, const cJSON *ev, const char *loaded)
{
    char pid[24], started[24], restarts[24];
    const char *params[9];
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
    if (db_command(d->c->dconn, UPSERT_WORKER_SQL, 9, params) < 0)
        log_error("could not record worker %s as %s: %s", params[0], params[4],
                  db_error(d->c->dconn));
}

static int valid_snapshot(const cJSON *ev)
{
    return ju_valid_id(ju_str(ev, "project")) && ju_str(ev, "status") != NULL &&
           ju_str(ev, "worker_id") != NULL;
}

static void on_state(struct dispatcher *d, const cJSON *ev)
{
    struct wconn *w;
    const char *loaded = NULL;
    int64_t pid;

    if (!valid_snapshot(ev)) {
        log_warning("ignoring malformed state event from the manager");
        return;
    }
    if (ju_int(ev, "pid", &pid) == 0) {
        w = find_wconn_pid(d, (pid_t)pid);
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
static void on_hello(struct dispatcher *d, const cJSON *ev)
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

static void send_load(struct dispatcher *d, struct wconn *w);

static void on_attach(struct dispatcher *d, const cJSON *ev, int fd)
{
    struct epoll_event ee;
    struct wconn *w;
    int64_t pid;

    if (fd < 0 || !ju_valid_id(ju_str(ev, "project")) || ju_int(ev, "pid", &pid) < 0) {
        log_warning("ignoring malformed attach from the manager");
        if (fd >= 0)
            close(fd);
        return;
    }
    w = find_wconn_pid(d, (pid_t)pid);
    if (w != NULL) {
        /* A stale socket for the same process: the manager never sends two,
         * so this is defensive; it is closed now but freed only after this
         * epoll batch, which may still hold its pointer. */
        for (struct wconn **pp = &d->wconns; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        }
        close(w->fd);
        w->fd = -1;
        w->next = d->zombies;
        d->zombies = w;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        close(fd);
        return;
    }
    w->fd = fd;
    w->pid = (pid_t)pid;
    w->draining = ju_bool(ev, "draining");
    snprintf(w->project, sizeof(w->project), "%s", ju_str(ev, "project"));
    memset(&ee, 0, sizeof(ee));
    ee.events = EPOLLIN;
    ee.data.ptr = w;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        log_error("could not watch worker socket: %s", strerror(errno));
        close(fd);
        free(w);
        return;
    }
    w->next = d->wconns;
    d->wconns = w;
    /* A freshly spawned worker gets its code at once, while its program is
     * still being exec'd and linked, rather than after its hello. */
    if (ju_bool(ev, "fresh"))
        send_load(d, w);
}

/* Records the desired state of a project whose start, restart or stop
 * succeeded (read by WF_AUTOSTART). */
static void store_desired(struct core *c, const struct core_call *call)
{
    const char *params[2] = {call->project, strcmp(call->op, "stop") == 0 ? "stopped" : "running"};

    if (db_command(c->dconn,
                   "UPDATE projects SET desired_state = $2, updated_at = now()"
                   " WHERE id = $1 AND desired_state <> $2",
                   2, params) < 0)
        log_error("could not record the desired state of project %s: %s", call->project,
                  db_error(c->dconn));
}

/* Resumes a suspended call with the manager's reply (taken) or NULL. */
static void complete_call(struct core *c, uint64_t id, cJSON *reply)
{
    struct core_call *call = NULL;

    pthread_mutex_lock(&c->calls_mu);
    for (struct core_call **pp = &c->calls; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            call = *pp;
            *pp = call->next;
            break;
        }
    }
    pthread_mutex_unlock(&c->calls_mu);
    if (call == NULL) {
        cJSON_Delete(reply); /* an autostart, or a call that timed out */
        return;
    }
    if (ju_bool(reply, "ok"))
        store_desired(c, call);
    call->reply = reply;
    call->done = 1;
    MHD_resume_connection(call->conn);
}

/* Resumes every call past its deadline (all of them when stopping). */
static void expire_calls(struct core *c, int all)
{
    int64_t now = ju_mono_ms();
    struct core_call *expired = NULL;

    pthread_mutex_lock(&c->calls_mu);
    if (all)
        c->stopping = 1;
    for (struct core_call **pp = &c->calls; *pp != NULL;) {
        struct core_call *call = *pp;
        if (all || now >= call->deadline) {
            *pp = call->next;
            call->next = expired;
            expired = call;
        } else {
            pp = &call->next;
        }
    }
    pthread_mutex_unlock(&c->calls_mu);
    while (expired != NULL) {
        struct core_call *call = expired;
        expired = call->next;
        call->fail_status = all ? 503 : 504;
        call->done = 1;
        MHD_resume_connection(call->conn);
    }
}

int core_call_manager(struct core *c, struct core_call *call, struct MHD_Connection *conn,
                      const char *op, const char *project, int timeout_ms)
{
    cJSON *o = cJSON_CreateObject();
    int r = -1;

    pthread_mutex_lock(&c->calls_mu);
    if (!c->stopping) {
        call->id = c->next_call_id++;
        snprintf(call->op, sizeof(call->op), "%s", op);
        snprintf(call->project, sizeof(call->project), "%s", project);
        call->conn = conn;
        call->deadline = ju_mono_ms() + timeout_ms;
        call->done = 0;
        call->reply = NULL;
        cJSON_AddStringToObject(o, "op", op);
        cJSON_AddNumberToObject(o, "req", (double)call->id);
        cJSON_AddStringToObject(o, "project", project);
        pthread_mutex_lock(&c->ctl_mu);
        r = msg_send(c->ctl_fd, o, -1);
        pthread_mutex_unlock(&c->ctl_mu);
        if (r == 0) {
            /* Suspended before the lock is released: the dispatcher can only
             * find (and resume) the call after this point. */
            call->next = c->calls;
            c->calls = call;
            MHD_suspend_connection(conn);
        } else {
            log_error("could not send %s request to the manager: %s", op, strerror(errno));
        }
    }
    pthread_mutex_unlock(&c->calls_mu);
    cJSON_Delete(o);
    return r;
}

static void process_manager(struct dispatcher *d)
{
    for (;;) {
        cJSON *msg = NULL;
        int fd = -1;
        int r = msg_recv(d->c->ctl_fd, &msg, &fd);
        const char *ev;
        int64_t req;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && errno == EBADMSG) {
            log_warning("ignoring malformed message from the manager");
            continue;
        }
        if (r <= 0) {
            log_info("the manager is gone; stopping");
            d->stop = 1;
            return;
        }
        ev = ju_str(msg, "ev");
        if (ev == NULL) {
            log_warning("ignoring untyped message from the manager");
        } else if (strcmp(ev, "reply") == 0 && ju_int(msg, "req", &req) == 0) {
            complete_call(d->c, (uint64_t)req, msg);
            msg = NULL;
        } else if (strcmp(ev, "state") == 0) {
            on_state(d, msg);
        } else if (strcmp(ev, "attach") == 0) {
            on_attach(d, msg, fd);
            fd = -1;
        } else if (strcmp(ev, "hello") == 0) {
            on_hello(d, msg);
        }
        if (fd >= 0)
            close(fd);
        cJSON_Delete(msg);
    }
}

/*
 * Builds a worker's load message from its project's active code rows (kind,
 * name, sha256), writing each artifact file it needs. The summary kept for
 * status and the row's `loaded` column is {"workflows","activities",
 * "plugins":[{"name","sha256"}]}. On a failure the message carries "error".
 */
static cJSON *build_load(struct dispatcher *d, struct wconn *w, const PGresult *r)
{
    cJSON *load = cJSON_CreateObject();
    cJSON *wf = cJSON_AddArrayToObject(load, "workflows");
    cJSON *act = cJSON_AddArrayToObject(load, "activities");
    cJSON *arts = cJSON_AddArrayToObject(load, "artifacts");
    cJSON *provides = cJSON_AddArrayToObject(load, "provides");
    cJSON *summary = cJSON_CreateObject();
    cJSON *plugins;
    char path[4200], err[600];
    int n = PQntuples(r);

    cJSON_AddStringToObject(load, "t", "load");
    free(w->shas);
    w->nshas = 0;
    w->shas = calloc((size_t)n + 1, sizeof(*w->shas));
    for (int i = 0; i < n && w->shas != NULL; i++) {
        const char *kind = PQgetvalue(r, i, 0);
        const char *name = PQgetvalue(r, i, 1);
        const char *sha = PQgetvalue(r, i, 2);
        int seen = 0;
        cJSON *a;

        cJSON_AddItemToArray(strcmp(kind, "workflow") == 0 ? wf : act, cJSON_CreateString(name));
        if (PQgetisnull(r, i, 2))
            continue; /* declared without code yet */
        a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "kind", kind);
        cJSON_AddStringToObject(a, "name", name);
        cJSON_AddItemToArray(provides, a);
        for (size_t j = 0; j < w->nshas; j++)
            seen |= strcmp(w->shas[j], sha) == 0;
        if (seen)
            continue;
        if (art_materialize(d->c->dconn, d->c->rundir, w->project, sha, path, sizeof(path), err,
                            sizeof(err)) < 0) {
            char msg[800];
            snprintf(msg, sizeof(msg), "could not prepare plugin \"%s\": %s", name, err);
            log_error("project %s: %s", w->project, msg);
            cJSON_AddStringToObject(load, "error", msg);
            break;
        }
        snprintf(w->shas[w->nshas++], 65, "%s", sha);
        a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "label", name);
        cJSON_AddStringToObject(a, "path", path);
        cJSON_AddStringToObject(a, "sha256", sha);
        cJSON_AddItemToArray(arts, a);
    }
    cJSON_AddItemToObject(summary, "workflows", cJSON_Duplicate(wf, 1));
    cJSON_AddItemToObject(summary, "activities", cJSON_Duplicate(act, 1));
    plugins = cJSON_AddArrayToObject(summary, "plugins");
    for (cJSON *a = arts->child; a != NULL; a = a->next) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", ju_str(a, "label"));
        cJSON_AddStringToObject(p, "sha256", ju_str(a, "sha256"));
        cJSON_AddItemToArray(plugins, p);
    }
    free(w->loaded);
    w->loaded = cJSON_PrintUnformatted(summary);
    /* The worker keeps the summary and shows it to the next core. */
    cJSON_AddItemToObject(load, "summary", summary);
    gc_project(d, w->project);
    return load;
}

/* Sends a worker its project's code (or why it cannot have it), once. */
static void send_load(struct dispatcher *d, struct wconn *w)
{
    const char *params[1] = {w->project};
    cJSON *load;
    PGresult *r;

    r = db_exec(d->c->dconn,
                "SELECT 'workflow', kebab_name, artifact_sha256 FROM workflows"
                " WHERE project_id = $1 AND is_active"
                " UNION ALL SELECT 'activity', name, artifact_sha256 FROM components"
                " WHERE project_id = $1 AND is_active AND kind = 'activity'"
                " ORDER BY 1 DESC, 2",
                1, params);
    if (r == NULL) {
        char err[400];
        snprintf(err, sizeof(err), "could not read the project's code: %s", db_error(d->c->dconn));
        log_error("project %s: %s", w->project, err);
        load = cJSON_CreateObject();
        cJSON_AddStringToObject(load, "t", "load");
        cJSON_AddStringToObject(load, "error", err);
    } else {
        load = build_load(d, w, r);
        PQclear(r);
    }
    /* A failure here is core's (database, disk), not the plugin's. */
    if (cJSON_GetObjectItemCaseSensitive(load, "error") != NULL)
        cJSON_AddBoolToObject(load, "transient", 1);
    w->load_sent = 1;
    if (msg_send(w->fd, load, -1) < 0)
        log_error("could not send code to worker %d: %s", (int)w->pid, strerror(errno));
    cJSON_Delete(load);
}

/* A worker's greeting: send it its project's code unless it has it (it
 * survived a core restart) or was sent it already (at its attach). */
static void on_worker_hello(struct dispatcher *d, struct wconn *w, const cJSON *msg)
{
    if (ju_bool(msg, "loaded")) {
        /* It survived a core restart with its code: learn what it has. */
        cJSON *code = cJSON_GetObjectItemCaseSensitive(msg, "code");
        if (cJSON_IsObject(code)) {
            const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(code, "plugins");
            const cJSON *p;
            struct core_view *v;
            free(w->loaded);
            w->loaded = cJSON_PrintUnformatted(code);
            free(w->shas);
            w->nshas = 0;
            w->shas = calloc((size_t)cJSON_GetArraySize(plugins) + 1, sizeof(*w->shas));
            cJSON_ArrayForEach(p, plugins)
            {
                if (w->shas != NULL && art_valid_sha(ju_str(p, "sha256")))
                    snprintf(w->shas[w->nshas++], 65, "%s", ju_str(p, "sha256"));
            }
            pthread_rwlock_wrlock(&d->c->view_lock);
            v = idmap_get(&d->c->views, w->project);
            if (v != NULL && v->pid == w->pid)
                view_set_str(&v->loaded, w->loaded);
            pthread_rwlock_unlock(&d->c->view_lock);
        }
        return;
    }
    if (!w->load_sent)
        send_load(d, w);
}

static void on_heartbeat(struct dispatcher *d, struct wconn *w)
{
    struct core_view *v;

    w->beat = 1;
    pthread_rwlock_wrlock(&d->c->view_lock);
    v = idmap_get(&d->c->views, w->project);
    if (v != NULL && v->pid == w->pid)
        v->last_heartbeat = ju_wall_ms();
    pthread_rwlock_unlock(&d->c->view_lock);
}

static void process_worker(struct dispatcher *d, struct wconn *w)
{
    for (;;) {
        cJSON *msg = NULL;
        int r = msg_recv(w->fd, &msg, NULL);
        const char *t;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && errno == EBADMSG) {
            log_warning("ignoring malformed message from worker %d", (int)w->pid);
            continue;
        }
        if (r <= 0) {
            /* The process is gone (the manager reports how); its runs' leases
             * are freed here once runs exist. */
            log_debug("worker %d (project %s) disconnected", (int)w->pid, w->project);
            drop_wconn(d, w, 1);
            return;
        }
        t = ju_str(msg, "t");
        if (t != NULL && strcmp(t, "hb") == 0)
            on_heartbeat(d, w);
        else if (t != NULL && strcmp(t, "hello") == 0)
            on_worker_hello(d, w, msg);
        else
            log_debug("ignoring message %s from worker %d", t != NULL ? t : "(untyped)",
                      (int)w->pid);
        cJSON_Delete(msg);
    }
}

/* One UPDATE for every current worker that beat since the last flush. */
static void flush_heartbeats(struct dispatcher *d)
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

static void mark_stopped(struct dispatcher *d)
{
    const char *params[1] = {d->c->cfg->host_id};

    if (db_command(d->c->dconn,
                   "UPDATE workflow_workers SET status = 'stopped', stopped_at = now(),"
                   " updated_at = now() WHERE host = $1"
                   " AND status IN ('starting', 'running', 'draining')",
                   1, params) < 0)
        log_error("could not mark workers stopped: %s", db_error(d->c->dconn));
}

static int setup(struct dispatcher *d)
{
    struct epoll_event ee;
    struct itimerspec its;
    sigset_t mask;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->sigfd < 0 || d->epfd < 0 || d->timerfd < 0)
        return -1;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_nsec = TICK_MS * 1000000L;
    its.it_interval = its.it_value;
    if (timerfd_settime(d->timerfd, 0, &its, NULL) < 0)
        return -1;
    memset(&ee, 0, sizeof(ee));
    ee.events = EPOLLIN;
    ee.data.ptr = &d->sigfd;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ee) < 0)
        return -1;
    ee.data.ptr = &d->timerfd;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &ee) < 0)
        return -1;
    ee.data.ptr = &d->c->ctl_fd;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->c->ctl_fd, &ee) < 0)
        return -1;
    return 0;
}

int dispatcher_run(struct core *c, int listen_fd)
{
    struct dispatcher disp;
    struct dispatcher *d = &disp;
    struct epoll_event evs[64];

    memset(d, 0, sizeof(*d));
    d->c = c;
    d->listen_fd = listen_fd;
    d->rc = WF_EXIT_OK;
    d->sigfd = d->epfd = d->timerfd = -1;
    if (setup(d) < 0) {
        log_error("could not set up the dispatcher: %s", strerror(errno));
        return WF_EXIT_SYSCALL;
    }
    d->next_flush = ju_mono_ms() + c->cfg->heartbeat_ms;
    d->next_ping = ju_mono_ms() + 1000;

    while (!d->stop) {
        int n = epoll_wait(d->epfd, evs, 64, -1);

        if (n < 0 && errno != EINTR) {
            log_error("could not wait for events: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !d->stop; i++) {
            void *p = evs[i].data.ptr;
            if (p == &d->sigfd) {
                struct signalfd_siginfo si;
                while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    log_info("received signal %d; stopping", (int)si.ssi_signo);
                    d->stop = 1;
                }
            } else if (p == &d->timerfd) {
                uint64_t ticks;
                int64_t now = ju_mono_ms();
                if (read(d->timerfd, &ticks, sizeof(ticks)) < 0)
                    (void)0;
                expire_calls(c, 0);
                if (now >= d->next_ping) {
                    /* Keeps /health answerable from memory. */
                    int ok = db_command(c->dconn, "SELECT 1", 0, NULL) == 0;
                    if (ok != __atomic_load_n(&c->db_ok, __ATOMIC_RELAXED))
                        log_info("database is %s", ok ? "reachable again" : "unreachable");
                    __atomic_store_n(&c->db_ok, ok, __ATOMIC_RELAXED);
                    d->next_ping = now + 1000;
                }
                if (now >= d->next_flush) {
                    flush_heartbeats(d);
                    d->next_flush = now + c->cfg->heartbeat_ms;
                }
            } else if (p == &c->ctl_fd) {
                process_manager(d);
            } else {
                /* A worker socket. drop_wconn may free it: nothing after. */
                struct wconn *w = p;
                if (w->fd >= 0)
                    process_worker(d, w);
            }
        }
        while (d->zombies != NULL) {
            struct wconn *z = d->zombies;
            d->zombies = z->next;
            free(z->loaded);
            free(z->shas);
            free(z);
        }
    }
    expire_calls(c, 1);
    mark_stopped(d);
    while (d->wconns != NULL)
        drop_wconn(d, d->wconns, 0);
    art_gc_all(c->rundir); /* no worker of ours is left to use them */
    close(d->sigfd);
    close(d->epfd);
    close(d->timerfd);
    return d->rc;
}
