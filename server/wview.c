/*
 * wview.c: see wview.h.
 *
 * The view is a sorted map of entries by project under one rwlock: the loop
 * thread is its only writer, HTTP threads read it. Row writes go through
 * the database layer (dbq) and never block the loop; each is retry-safe
 * (an upsert by worker_id, or an UPDATE that sets absolute values), so a
 * lost connection resends them, and all but heartbeats wait out an outage
 * in order (DBQ_PERSIST). A failed row write is logged; the next state
 * change or heartbeat writes fresh values.
 */
#include "wview.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbq.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"

#define REAP_INTERVAL_MS 5000 /* how often other hosts' silent rows are checked */

static const char *const STATUSES[5] = {"starting", "running", "draining", "crashed", "failed"};

/* What core knows of one project's current worker (mirrors the manager). */
struct wv_entry {
    char project[WF_ID_MAX + 1];
    char worker_id[WF_ID_MAX + 72];
    char status[16];
    pid_t pid;
    int restarts;
    int64_t started_at;     /* wall ms */
    int64_t last_heartbeat; /* wall ms, 0 if none yet */
    int beat;               /* beat since the last flush */
    char *error;            /* malloc'ed or NULL */
    char *loaded;           /* malloc'ed JSON text or NULL */
    char *sandbox;          /* malloc'ed JSON text or NULL: the worker's sandbox report */
    char *versions;         /* malloc'ed JSON text or NULL: its code versions and runs */
};

struct wview {
    const struct wf_config *cfg;
    struct loop *loop;
    struct dbq *dbq;
    pthread_rwlock_t lock;
    struct idmap entries; /* struct wv_entry by project */
    struct loop_timer flush_timer;
    struct loop_timer reap_timer;
    uint64_t starts;  /* __atomic */
    uint64_t crashes; /* __atomic */
    /* the hello's pending read of the survivors' code */
    void (*ready)(void *arg);
    void *ready_arg;
};

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

static const char *entry_key(const void *item)
{
    return ((const struct wv_entry *)item)->project;
}

static void entry_free(struct wv_entry *e)
{
    if (e == NULL)
        return;
    free(e->error);
    free(e->loaded);
    free(e->sandbox);
    free(e->versions);
    free(e);
}

/* Replaces *dst with a copy of src (NULL allowed). */
static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src != NULL ? strdup(src) : NULL;
}

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

/* What a row write is for, in "could not <what>" messages. */
enum row_what {
    RW_STATE,      /* a slot snapshot */
    RW_RECONCILE,  /* this host's rows unknown to the manager */
    RW_HEARTBEATS, /* one interval's heartbeats */
    RW_SANDBOX     /* a worker's sandbox report */
};

static const char *const ROW_WHAT[] = {"record worker state", "reconcile worker rows",
                                       "record heartbeats", "record a worker's sandbox report"};

/* The callback of a row write nobody waits for: log a failure. arg is the
 * enum row_what. */
static void on_row_written(void *arg, const struct dbq_result *r)
{
    if (r->outcome != DBQ_OK)
        log_error("could not %s: %s", ROW_WHAT[(intptr_t)arg], r->message);
}

/* Heartbeats are written afresh each interval; every other row write
 * states a fact that must land, so it waits out an outage (DBQ_PERSIST):
 * a project stopped while the database was down is not left 'running'. */
static void row_write(struct wview *v, enum row_what what, const char *sql, int n,
                      const char *const *params)
{
    unsigned flags = DBQ_RETRY_SAFE | (what == RW_HEARTBEATS ? 0u : DBQ_PERSIST);

    if (dbq_exec(v->dbq, DBQ_FAST, flags, sql, n, params, NULL, NULL, on_row_written,
                 (void *)(intptr_t)what) < 0)
        log_error("could not %s: out of memory", ROW_WHAT[what]);
}

/* ---- the view ---- */

/* Applies a slot snapshot to the view (write lock held by the caller). */
static void view_apply_locked(struct wview *v, const cJSON *ev, const char *loaded)
{
    const char *project = ju_str(ev, "project");
    const char *status = ju_str(ev, "status");
    struct wv_entry *e = idmap_get(&v->entries, project);
    int64_t n;

    if (strcmp(status, "stopped") == 0) {
        entry_free(idmap_del(&v->entries, project));
        return;
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL || (snprintf(e->project, sizeof(e->project), "%s", project),
                          idmap_put(&v->entries, e) < 0)) {
            free(e);
            log_error("could not record worker state: out of memory");
            return;
        }
    }
    snprintf(e->worker_id, sizeof(e->worker_id), "%s",
             ju_str(ev, "worker_id") != NULL ? ju_str(ev, "worker_id") : "");
    snprintf(e->status, sizeof(e->status), "%s", status);
    if (ju_int(ev, "pid", &n) == 0) {
        if (e->pid != (pid_t)n) {
            e->last_heartbeat = 0;
            e->beat = 0;
        }
        e->pid = (pid_t)n;
    }
    if (ju_int(ev, "restarts", &n) == 0)
        e->restarts = (int)n;
    if (ju_int(ev, "started_at", &n) == 0)
        e->started_at = n;
    if (strcmp(status, "running") == 0 && e->last_heartbeat == 0)
        e->last_heartbeat = ju_wall_ms();
    set_str(&e->error, ju_str(ev, "error"));
    if (loaded != NULL)
        set_str(&e->loaded, loaded);
}

/* Writes a slot snapshot to workflow_workers. */
static void store_state(struct wview *v, const cJSON *ev, const char *loaded)
{
    char pid[24], started[24], restarts[24], hb[24];
    const char *params[10];
    int64_t n;

    snprintf(pid, sizeof(pid), "%lld", ju_int(ev, "pid", &n) == 0 ? (long long)n : 0LL);
    snprintf(started, sizeof(started), "%lld",
             ju_int(ev, "started_at", &n) == 0 ? (long long)n : 0LL);
    snprintf(restarts, sizeof(restarts), "%lld",
             ju_int(ev, "restarts", &n) == 0 ? (long long)n : 0LL);
    snprintf(hb, sizeof(hb), "%d", v->cfg->heartbeat_ms);
    params[0] = ju_str(ev, "worker_id");
    params[1] = ju_str(ev, "project");
    params[2] = v->cfg->host_id;
    params[3] = pid;
    params[4] = ju_str(ev, "status");
    params[5] = started;
    params[6] = ju_str(ev, "error");
    params[7] = loaded;
    params[8] = restarts;
    params[9] = hb;
    row_write(v, RW_STATE, UPSERT_WORKER_SQL, 10, params);
}

static int valid_snapshot(const cJSON *ev)
{
    return ju_valid_id(ju_str(ev, "project")) && ju_str(ev, "status") != NULL &&
           ju_str(ev, "worker_id") != NULL;
}

void wview_on_state(struct wview *v, const cJSON *ev, const char *loaded)
{
    const char *status;
    int64_t pid = 0;

    if (!valid_snapshot(ev)) {
        log_warning("ignoring malformed state event from the manager");
        return;
    }
    status = ju_str(ev, "status");
    if (ju_int(ev, "pid", &pid) == 0)
        log_debug("worker %s is %s (pid %lld)", ju_str(ev, "worker_id"), status, (long long)pid);
    else
        log_debug("worker %s is %s (no pid)", ju_str(ev, "worker_id"), status);
    if (strcmp(status, "starting") == 0)
        __atomic_add_fetch(&v->starts, 1, __ATOMIC_RELAXED);
    else if (strcmp(status, "crashed") == 0 || strcmp(status, "failed") == 0)
        __atomic_add_fetch(&v->crashes, 1, __ATOMIC_RELAXED);
    pthread_rwlock_wrlock(&v->lock);
    view_apply_locked(v, ev, loaded);
    pthread_rwlock_unlock(&v->lock);
    store_state(v, ev, loaded);
}

/* The survivors' code, read back from their rows after a hello. */
static void on_loaded_rows(void *arg, const struct dbq_result *r)
{
    struct wview *v = arg;
    void (*ready)(void *) = v->ready;

    if (r->outcome != DBQ_OK) {
        log_error("could not read the code of the surviving workers: %s", r->message);
    } else {
        pthread_rwlock_wrlock(&v->lock);
        for (int i = 0; i < PQntuples(r->res); i++) {
            const char *wid = PQgetvalue(r->res, i, 0);
            for (size_t k = 0; k < v->entries.n; k++) {
                struct wv_entry *e = v->entries.items[k];
                if (strcmp(e->worker_id, wid) != 0)
                    continue;
                if (!PQgetisnull(r->res, i, 1))
                    set_str(&e->loaded, PQgetvalue(r->res, i, 1));
                if (!PQgetisnull(r->res, i, 2))
                    set_str(&e->sandbox, PQgetvalue(r->res, i, 2));
            }
        }
        pthread_rwlock_unlock(&v->lock);
    }
    v->ready = NULL;
    if (ready != NULL)
        ready(v->ready_arg);
}

void wview_on_hello(struct wview *v, const cJSON *ev, void (*ready)(void *arg), void *arg)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(ev, "workers");
    const cJSON *it;
    const char **ids;
    const char *params[2];
    char *lit;
    size_t n = 0;

    ids = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*ids));
    if (ids == NULL) {
        log_error("could not rebuild the worker view: out of memory");
        ready(arg);
        return;
    }
    pthread_rwlock_wrlock(&v->lock);
    while (v->entries.n > 0)
        entry_free(idmap_del(&v->entries, entry_key(v->entries.items[0])));
    cJSON_ArrayForEach(it, arr)
    {
        if (!valid_snapshot(it))
            continue;
        ids[n++] = ju_str(it, "worker_id");
        view_apply_locked(v, it, NULL);
    }
    pthread_rwlock_unlock(&v->lock);
    cJSON_ArrayForEach(it, arr)
    {
        if (valid_snapshot(it))
            store_state(v, it, NULL);
    }
    lit = text_array(ids, n);
    free(ids);
    if (lit == NULL) {
        log_error("could not reconcile worker rows: out of memory");
        ready(arg);
        return;
    }
    /* Rows this host left live that the manager does not know are from an
     * earlier instance (or changed while no core was up). */
    params[0] = v->cfg->host_id;
    params[1] = lit;
    row_write(v, RW_RECONCILE,
              "UPDATE workflow_workers SET status = 'crashed', stopped_at = now(),"
              " updated_at = now(), error = coalesce(error, 'the server instance running"
              " this worker ended without stopping it')"
              " WHERE host = $1 AND status IN ('starting', 'running', 'draining')"
              " AND NOT (worker_id = ANY($2::text[]))",
              2, params);
    /* What the surviving workers loaded, and their sandbox reports, are in
     * their rows: the view shows them from the first request on, before
     * each worker greets this core. */
    v->ready = ready;
    v->ready_arg = arg;
    params[0] = lit;
    if (dbq_exec(v->dbq, DBQ_FAST, DBQ_RETRY_SAFE,
                 "SELECT worker_id, loaded::text, sandbox::text FROM workflow_workers"
                 " WHERE worker_id = ANY($1::text[])"
                 " AND (loaded IS NOT NULL OR sandbox IS NOT NULL)",
                 1, params, NULL, NULL, on_loaded_rows, v) < 0) {
        v->ready = NULL;
        ready(arg);
    }
    free(lit);
    log_info("manager reports %zu workers%s", n, ju_bool(ev, "first") ? " (first core)" : "");
}

void wview_heartbeat(struct wview *v, const char *project, pid_t pid)
{
    struct wv_entry *e;

    pthread_rwlock_wrlock(&v->lock);
    e = idmap_get(&v->entries, project);
    if (e != NULL && e->pid == pid) {
        e->last_heartbeat = ju_wall_ms();
        e->beat = 1;
    }
    pthread_rwlock_unlock(&v->lock);
}

void wview_set_loaded(struct wview *v, const char *project, pid_t pid, const char *loaded)
{
    struct wv_entry *e;

    pthread_rwlock_wrlock(&v->lock);
    e = idmap_get(&v->entries, project);
    if (e != NULL && e->pid == pid)
        set_str(&e->loaded, loaded);
    pthread_rwlock_unlock(&v->lock);
}

void wview_set_versions(struct wview *v, const char *project, pid_t pid, const char *json)
{
    struct wv_entry *e;

    pthread_rwlock_wrlock(&v->lock);
    e = idmap_get(&v->entries, project);
    if (e != NULL && e->pid == pid)
        set_str(&e->versions, json);
    pthread_rwlock_unlock(&v->lock);
}

void wview_set_sandbox(struct wview *v, const char *project, pid_t pid, const char *report)
{
    struct wv_entry *e;
    const char *params[3];
    char wid[sizeof(e->worker_id)] = "";
    char pidbuf[24];

    pthread_rwlock_wrlock(&v->lock);
    e = idmap_get(&v->entries, project);
    if (e != NULL && e->pid == pid) {
        set_str(&e->sandbox, report);
        snprintf(wid, sizeof(wid), "%s", e->worker_id);
    }
    pthread_rwlock_unlock(&v->lock);
    if (wid[0] == '\0')
        return; /* not this project's current worker */
    snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
    params[0] = wid;
    params[1] = report;
    params[2] = pidbuf;
    row_write(v, RW_SANDBOX,
              "UPDATE workflow_workers SET sandbox = $2::jsonb"
              " WHERE worker_id = $1 AND pid = $3::int",
              3, params);
}

char *wview_loaded(struct wview *v, const char *project)
{
    struct wv_entry *e;
    char *copy = NULL;

    pthread_rwlock_rdlock(&v->lock);
    e = idmap_get(&v->entries, project);
    if (e != NULL && e->loaded != NULL)
        copy = strdup(e->loaded);
    pthread_rwlock_unlock(&v->lock);
    return copy;
}

/* One UPDATE for every current worker that beat since the last flush. */
static void flush_heartbeats(void *arg)
{
    struct wview *v = arg;
    const char **ids;
    const char *params[1];
    size_t n = 0;
    char *lit;

    loop_timer_set(v->loop, &v->flush_timer, loop_now(v->loop) + v->cfg->heartbeat_ms,
                   flush_heartbeats, v);
    pthread_rwlock_wrlock(&v->lock);
    ids = calloc(v->entries.n + 1, sizeof(*ids));
    for (size_t i = 0; ids != NULL && i < v->entries.n; i++) {
        struct wv_entry *e = v->entries.items[i];
        if (e->beat && strcmp(e->status, "running") == 0)
            ids[n++] = e->worker_id;
        e->beat = 0;
    }
    lit = n > 0 ? text_array(ids, n) : NULL;
    pthread_rwlock_unlock(&v->lock);
    free(ids);
    if (n > 0 && lit == NULL)
        log_error("could not record heartbeats: out of memory");
    if (lit == NULL)
        return;
    params[0] = lit;
    row_write(v, RW_HEARTBEATS,
              "UPDATE workflow_workers SET last_heartbeat = now()"
              " WHERE worker_id = ANY($1::text[])",
              1, params);
    free(lit);
}

static void on_reaped(void *arg, const struct dbq_result *r)
{
    if (r->outcome != DBQ_OK) {
        log_error("could not check other hosts' worker rows: %s", r->message);
        return;
    }
    for (int i = 0; i < PQntuples(r->res); i++)
        log_warning("worker %s of host %s stopped heartbeating; marked crashed",
                    PQgetvalue(r->res, i, 0), PQgetvalue(r->res, i, 1));
}

/* Rows of other hosts silent for 3 of their heartbeat intervals become
 * crashed: their host vanished without cleaning up. */
static void reap_stale_rows(void *arg)
{
    struct wview *v = arg;
    const char *params[1] = {v->cfg->host_id};

    loop_timer_set(v->loop, &v->reap_timer, loop_now(v->loop) + REAP_INTERVAL_MS, reap_stale_rows,
                   v);
    if (dbq_exec(v->dbq, DBQ_FAST, DBQ_RETRY_SAFE,
                 "UPDATE workflow_workers SET status = 'crashed', stopped_at = now(),"
                 " updated_at = now(), error = 'no heartbeat from host ' || host || ' since '"
                 " || to_char(coalesce(last_heartbeat, updated_at) AT TIME ZONE 'UTC',"
                 " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                 " WHERE status IN ('starting', 'running', 'draining') AND host <> $1"
                 " AND heartbeat_ms IS NOT NULL AND coalesce(last_heartbeat, updated_at)"
                 "  < now() - make_interval(secs => 3 * heartbeat_ms / 1000.0)"
                 " RETURNING worker_id, host",
                 1, params, NULL, NULL, on_reaped, NULL) < 0)
        log_error("could not check other hosts' worker rows: out of memory");
}

struct stop_wait {
    void (*done)(void *arg);
    void *arg;
};

static void on_marked_stopped(void *arg, const struct dbq_result *r)
{
    struct stop_wait *w = arg;

    if (r->outcome != DBQ_OK)
        log_error("could not mark workers stopped: %s", r->message);
    w->done(w->arg);
    free(w);
}

void wview_mark_stopped(struct wview *v, void (*done)(void *arg), void *arg)
{
    const char *params[1] = {v->cfg->host_id};
    struct stop_wait *w = malloc(sizeof(*w));

    if (w == NULL) {
        log_error("could not mark workers stopped: out of memory");
        done(arg);
        return;
    }
    w->done = done;
    w->arg = arg;
    if (dbq_exec(v->dbq, DBQ_FAST, DBQ_RETRY_SAFE,
                 "UPDATE workflow_workers SET status = 'stopped', stopped_at = now(),"
                 " updated_at = now() WHERE host = $1"
                 " AND status IN ('starting', 'running', 'draining')",
                 1, params, NULL, NULL, on_marked_stopped, w) < 0) {
        free(w);
        log_error("could not mark workers stopped: out of memory");
        done(arg);
    }
}

/* ---- readers (any thread) ---- */

int wview_has(struct wview *v, const char *project)
{
    int found;

    pthread_rwlock_rdlock(&v->lock);
    found = idmap_get(&v->entries, project) != NULL;
    pthread_rwlock_unlock(&v->lock);
    return found;
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

int wview_status_json(struct wview *v, const char *project, cJSON *o)
{
    const struct wv_entry *e;
    cJSON *loaded, *sandbox, *versions;

    pthread_rwlock_rdlock(&v->lock);
    e = idmap_get(&v->entries, project);
    if (e == NULL) {
        pthread_rwlock_unlock(&v->lock);
        return 0;
    }
    loaded = e->loaded != NULL ? cJSON_Parse(e->loaded) : NULL;
    sandbox = e->sandbox != NULL ? cJSON_Parse(e->sandbox) : NULL;
    versions = e->versions != NULL ? cJSON_Parse(e->versions) : NULL;
    cJSON_AddStringToObject(o, "status", e->status);
    cJSON_AddBoolToObject(o, "isRunning", strcmp(e->status, "running") == 0);
    cJSON_AddStringToObject(o, "workerId", e->worker_id);
    if (e->pid > 0 && strcmp(e->status, "crashed") != 0 && strcmp(e->status, "failed") != 0)
        cJSON_AddNumberToObject(o, "pid", e->pid);
    else
        cJSON_AddNullToObject(o, "pid");
    cJSON_AddStringToObject(o, "host", v->cfg->host_id);
    add_time(o, "startedAt", e->started_at);
    add_time(o, "lastHeartbeat", e->last_heartbeat);
    cJSON_AddNumberToObject(o, "restarts", e->restarts);
    if (e->error != NULL)
        cJSON_AddStringToObject(o, "error", e->error);
    else
        cJSON_AddNullToObject(o, "error");
    pthread_rwlock_unlock(&v->lock);
    if (loaded != NULL)
        ju_set(o, "loaded", loaded);
    else
        cJSON_AddNullToObject(o, "loaded");
    if (sandbox != NULL)
        ju_set(o, "sandbox", sandbox);
    else
        cJSON_AddNullToObject(o, "sandbox");
    if (versions != NULL)
        ju_set(o, "versions", versions);
    else
        cJSON_AddArrayToObject(o, "versions");
    return 1;
}

int wview_list_json(struct wview *v, cJSON *arr)
{
    int n = 0;

    pthread_rwlock_rdlock(&v->lock);
    for (size_t i = 0; i < v->entries.n; i++) {
        const struct wv_entry *e = v->entries.items[i];
        if (strcmp(e->status, "running") == 0 || strcmp(e->status, "starting") == 0 ||
            strcmp(e->status, "crashed") == 0) {
            ju_append(arr, cJSON_CreateString(e->project));
            n++;
        }
    }
    pthread_rwlock_unlock(&v->lock);
    return n;
}

void wview_counts(struct wview *v, struct wview_counts *out)
{
    int64_t now = ju_wall_ms();

    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&v->lock);
    for (size_t i = 0; i < v->entries.n; i++) {
        const struct wv_entry *e = v->entries.items[i];
        for (size_t k = 0; k < 5; k++) {
            if (strcmp(e->status, STATUSES[k]) == 0)
                out->by_status[k]++;
        }
        out->restarts += e->restarts;
        if (strcmp(e->status, "running") == 0 && e->last_heartbeat > 0 &&
            (double)(now - e->last_heartbeat) / 1000.0 > out->max_heartbeat_age_s)
            out->max_heartbeat_age_s = (double)(now - e->last_heartbeat) / 1000.0;
    }
    pthread_rwlock_unlock(&v->lock);
    out->starts = __atomic_load_n(&v->starts, __ATOMIC_RELAXED);
    out->crashes = __atomic_load_n(&v->crashes, __ATOMIC_RELAXED);
}

/* ---- life ---- */

struct wview *wview_new(const struct wf_config *cfg, struct loop *l, struct dbq *q)
{
    struct wview *v = calloc(1, sizeof(*v));

    if (v == NULL)
        return NULL;
    v->cfg = cfg;
    v->loop = l;
    v->dbq = q;
    v->entries.key_of = entry_key;
    pthread_rwlock_init(&v->lock, NULL);
    loop_timer_set(l, &v->flush_timer, loop_now(l) + cfg->heartbeat_ms, flush_heartbeats, v);
    loop_timer_set(l, &v->reap_timer, loop_now(l) + REAP_INTERVAL_MS, reap_stale_rows, v);
    return v;
}

void wview_stop(struct wview *v)
{
    loop_timer_cancel(v->loop, &v->flush_timer);
    loop_timer_cancel(v->loop, &v->reap_timer);
}

void wview_free(struct wview *v)
{
    if (v == NULL)
        return;
    wview_stop(v);
    while (v->entries.n > 0)
        entry_free(idmap_del(&v->entries, entry_key(v->entries.items[0])));
    idmap_free(&v->entries);
    pthread_rwlock_destroy(&v->lock);
    free(v);
}

const char *wview_status_name(int k)
{
    return k >= 0 && k < 5 ? STATUSES[k] : "unknown";
}
