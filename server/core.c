/*
 * core.c: start-up, the glue between core's modules, and shutdown.
 *
 * Start-up order (each step needs the previous): block the signals the loop
 * reads through its signalfd (before any thread exists, so every thread
 * inherits the mask); connect a blocking connection, retrying while the
 * database is not up yet (each attempt bounded by WF_DB_CONNECT_TIMEOUT_MS,
 * so a database that accepts and never answers cannot hang the start), and
 * apply migrations with it; create the loop and the modules; wait (bounded)
 * for the database layer's connections, so the first /health tells the
 * truth; greet the manager, whose hello fills the worker view and starts
 * HTTP. Then the loop runs until SIGTERM or the manager is gone. Once HTTP
 * serves and every readiness check holds (/health/ready), core tells the
 * manager, which tells the service manager (READY=1).
 *
 * Shutdown reverses it so that every suspended HTTP request is answered
 * before libmicrohttpd stops: no new work is posted, waiting manager calls
 * and control-plane jobs are answered 503, rows are marked stopped (waited
 * for, bounded), then the modules are freed (the database layer answers
 * whatever it still holds), then HTTP stops.
 */
#include "core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "artfetch.h"
#include "engine.h"
#include "ctlpool.h"
#include "db.h"
#include "dbq.h"
#include "events.h"
#include "exitcodes.h"
#include "hostlock.h"
#include "http.h"
#include "loadcode.h"
#include "log.h"
#include "mgrlink.h"
#include "migrate.h"
#include "msg.h"
#include "wconn.h"
#include "wview.h"

#define CONNECT_RETRY_MS 1000
#define TICK_MS 100                /* metrics and health are published this often */
#define SHUTDOWN_ROWS_WAIT_MS 5000 /* at most this long for the rows marked stopped */
#define MIGRATE_TIMEOUT_MS 600000  /* a migration may build an index on a big table */
#define POOL_QUEUE_MAX 1024        /* control-plane requests waiting; more: 503 */
#define HOSTLOCK_TRIES 6           /* a crashed core's session may take a moment to end */
#define HOSTLOCK_RETRY_MS 500
/* A database request unanswered this long makes /health 503; idle
 * connections are probed every half of it, so a frozen database shows
 * within about 0.9 s. */
#define HEALTH_MS 600

/* ---- any thread ---- */

int core_post(struct core *c, loop_fn fn, void *arg)
{
    int rc = -1;

    pthread_mutex_lock(&c->post_mu);
    if (!c->stopping)
        rc = loop_post(c->loop, fn, arg);
    pthread_mutex_unlock(&c->post_mu);
    return rc;
}

int core_stopping(struct core *c)
{
    return __atomic_load_n(&c->stopping, __ATOMIC_ACQUIRE);
}

void core_metrics(struct core *c, struct core_metrics *out)
{
    pthread_mutex_lock(&c->metrics_mu);
    *out = c->metrics;
    pthread_mutex_unlock(&c->metrics_mu);
}

void core_readiness(struct core *c, struct core_readiness *out)
{
    out->database = __atomic_load_n(&c->db_ok, __ATOMIC_RELAXED) != 0;
    out->core = !core_stopping(c);
    out->manager = __atomic_load_n(&c->mgr_ok, __ATOMIC_RELAXED) != 0;
    out->migrations = __atomic_load_n(&c->migrated, __ATOMIC_RELAXED) != 0;
}

int core_is_ready(const struct core_readiness *rd)
{
    return rd->database && rd->core && rd->manager && rd->migrations;
}

/* ---- loop thread: readiness ---- */

/*
 * Tells the manager, once per core, that the service is ready: HTTP serves
 * and every check of /health/ready holds, so a probe sent after the
 * manager's READY=1 (sdnotify.h) is answered 200. Called when HTTP starts,
 * when the database comes back, and at every tick until it is done.
 */
static void report_ready(struct core *c)
{
    struct core_readiness rd;

    if (c->ready_reported || c->httpd == NULL || c->ml == NULL)
        return;
    core_readiness(c, &rd);
    if (!core_is_ready(&rd))
        return;
    log_info("service ready: the database is reachable, migrations are applied, HTTP serves");
    if (mgrlink_ready(c->ml) < 0) {
        log_warning("could not tell the manager the service is ready; trying again");
        return;
    }
    c->ready_reported = 1;
}

/* ---- loop thread: publishing ---- */

/* Copies the loop-owned counters where HTTP threads can read them. */
static void publish(struct core *c)
{
    struct dbq_stats ds;
    struct wconns_counts wcc;
    struct core_metrics m;

    memset(&m, 0, sizeof(m));
    dbq_stats(c->dbq, &ds);
    wconns_counts(c->wc, &wcc);
    m.db_up = dbq_healthy(c->dbq);
    m.db_batches = ds.batches;
    m.db_statements = ds.statements;
    m.db_rows_coalesced = ds.rows_coalesced;
    m.db_reconnects = ds.reconnects;
    m.db_queue_depth = ds.queue_depth;
    for (int i = 0; i < CORE_HIST_BUCKETS && i < DBQ_HIST_BUCKETS; i++)
        m.db_batch_hist[i] = ds.batch_hist[i];
    m.worker_resets = wcc.resets;
    m.worker_msgs_in = wcc.msgs_in;
    m.worker_heartbeats_dropped = wcc.heartbeats_dropped;
    m.http_pool_queued = (uint64_t)ctlpool_queued(c->pool);
    if (c->af != NULL) {
        struct artfetch_stats as;
        artfetch_get_stats(c->af, &as);
        m.artifacts_fetched = as.fetched;
        m.artifact_bytes_fetched = as.bytes;
    }
    if (c->engine != NULL)
        engine_stats(c->engine, &m.engine);
    schedules_get_stats(c->sched, &m.sched);
    pthread_mutex_lock(&c->metrics_mu);
    c->metrics = m;
    pthread_mutex_unlock(&c->metrics_mu);
}

static void on_tick(void *arg)
{
    struct core *c = arg;

    loop_timer_set(c->loop, &c->tick, loop_now(c->loop) + TICK_MS, on_tick, c);
    __atomic_store_n(&c->db_ok, dbq_healthy(c->dbq), __ATOMIC_RELAXED);
    publish(c);
    report_ready(c);
}

static void on_db_health(void *arg, int healthy)
{
    struct core *c = arg;

    /* /health reflects it at once, not at the next tick. */
    __atomic_store_n(&c->db_ok, healthy, __ATOMIC_RELAXED);
    if (healthy) {
        log_info("database is reachable again");
        report_ready(c);
    } else {
        log_warning("database is unreachable or not answering");
    }
}

static void on_signal(void *arg, uint32_t events)
{
    struct core *c = arg;
    struct signalfd_siginfo si;

    while (read(c->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        log_info("received signal %d; stopping", (int)si.ssi_signo);
        loop_stop(c->loop);
    }
}

/* ---- loop thread: manager events ---- */

static void on_autostart_rows(void *arg, const struct dbq_result *res)
{
    struct core *c = arg;
    int n = 0;

    if (res->outcome != DBQ_OK) {
        log_error("could not list projects to autostart: %s", res->message);
        return;
    }
    for (int i = 0; i < PQntuples(res->res); i++) {
        /* req 0: the manager answers nobody; the slot's state events tell. */
        if (mgrlink_project_op(c->ml, "start", PQgetvalue(res->res, i, 0), 0, NULL, NULL) < 0)
            log_error("could not autostart project %s", PQgetvalue(res->res, i, 0));
        else
            n++;
    }
    log_info("autostart: %d projects", n);
}

/*
 * The manager's hello is applied and the surviving workers' code read back
 * from their rows: claims of surviving workers can be checked, and HTTP
 * starts now, so no request sees a view without what they loaded.
 */
static void on_views_ready(void *arg)
{
    struct core *c = arg;

    loadcode_view_ready(c->lc);
    if (core_stopping(c))
        return; /* the read was answered by the database layer going away */
    if (c->httpd == NULL) {
        if (http_start(c, c->listen_fd) < 0) {
            c->rc = WF_EXIT_SYSCALL;
            loop_stop(c->loop);
            return;
        }
        log_info("core ready (pid %d)", (int)getpid());
    }
    report_ready(c);
    if (c->first_core && c->cfg->autostart &&
        dbq_exec(c->dbq, DBQ_FAST, DBQ_RETRY_SAFE,
                 "SELECT id FROM projects WHERE desired_state = 'running' ORDER BY id", 0, NULL,
                 NULL, NULL, on_autostart_rows, c) < 0)
        log_error("could not list projects to autostart: out of memory");
}

static void on_mgr_hello(void *arg, const cJSON *ev)
{
    struct core *c = arg;

    c->first_core = ju_bool(ev, "first");
    __atomic_store_n(&c->mgr_ok, 1, __ATOMIC_RELAXED);
    wview_on_hello(c->view, ev, on_views_ready, c);
}

struct retire {
    pid_t keep;
};

static void retire_other(void *arg, struct wconn *w)
{
    const struct retire *rt = arg;

    if (wconn_pid(w) != rt->keep)
        wconn_set_draining(w);
}

static void on_mgr_state(void *arg, const cJSON *ev)
{
    struct core *c = arg;
    const char *loaded = NULL;
    const char *status = ju_str(ev, "status");
    int64_t pid;

    if (ju_int(ev, "pid", &pid) == 0) {
        struct wconn *w = wconns_find_pid(c->wc, (pid_t)pid);
        if (w != NULL)
            loaded = loadcode_summary(c->lc, w);
        if (w != NULL && status != NULL && strcmp(status, "draining") == 0)
            wconn_set_draining(w); /* stopping: no new runs */
        /* The project's worker is pid now (a restart: the old one drains):
         * no other worker of it takes new runs, even before this one's
         * ready reaches core. */
        if (status != NULL && strcmp(status, "running") == 0 &&
            ju_valid_id(ju_str(ev, "project"))) {
            struct retire rt = {(pid_t)pid};
            wconns_each(c->wc, ju_str(ev, "project"), retire_other, &rt);
        }
    }
    wview_on_state(c->view, ev, loaded);
}

static void on_mgr_attach(void *arg, const cJSON *ev, int fd)
{
    struct core *c = arg;
    struct wconn *w;
    int64_t pid;

    if (fd < 0 || !ju_valid_id(ju_str(ev, "project")) || ju_int(ev, "pid", &pid) < 0) {
        log_warning("ignoring malformed attach from the manager");
        if (fd >= 0)
            close(fd);
        return;
    }
    if (wconns_find_pid(c->wc, (pid_t)pid) != NULL) {
        /* The manager never sends two; keep the first. */
        log_warning("ignoring a second socket for worker %d", (int)pid);
        close(fd);
        return;
    }
    w = wconns_attach(c->wc, fd, ju_str(ev, "project"), (pid_t)pid, ju_bool(ev, "draining"));
    /* A freshly spawned worker gets its code at once, while its program is
     * still being exec'd and linked, rather than after its hello. */
    if (w != NULL && ju_bool(ev, "fresh"))
        loadcode_send(c->lc, w);
}

static void on_mgr_gone(void *arg)
{
    struct core *c = arg;

    __atomic_store_n(&c->mgr_ok, 0, __ATOMIC_RELAXED);
    loop_stop(c->loop);
}

/* ---- loop thread: worker events ---- */

static void on_worker_hello(void *arg, struct wconn *w, const cJSON *msg)
{
    struct core *c = arg;
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(msg, "sandbox");

    /* The sandbox report is believed only from a worker that has loaded
     * no code yet: once plugin code runs in it, it could say anything (a
     * later hello, to a restarted core, keeps what its row recorded). */
    if (!ju_bool(msg, "loaded") && cJSON_IsObject(sb)) {
        char *text = cJSON_PrintUnformatted(sb);
        if (text != NULL && strlen(text) <= 4096)
            wview_set_sandbox(c->view, wconn_project(w), wconn_pid(w), text);
        free(text);
    }
    {
        uint64_t id = wconn_id(w);
        loadcode_on_hello(c->lc, w, msg);
        /* A worker that kept its code across a core restart takes runs
         * again (loadcode resets it, gone event and all, if its claim is
         * false). */
        if (ju_bool(msg, "loaded") && (w = wconns_find(c->wc, id)) != NULL)
            engine_worker_ready(c->engine, w);
    }
}

static void on_worker_gone(void *arg, struct wconn *w)
{
    struct core *c = arg;

    engine_worker_gone(c->engine, w); /* its runs go back at once */
    loadcode_gone(c->lc, w);
}

/* {"t":"ready"} (the code is loaded: runs may come) and {"t":"ev"} (runs). */
static int on_worker_message(void *arg, struct wconn *w, const cJSON *msg)
{
    struct core *c = arg;
    const char *t = ju_str(msg, "t");

    if (strcmp(t, "ready") == 0) {
        engine_worker_ready(c->engine, w);
        return 0;
    }
    if (strcmp(t, "ev") == 0)
        return engine_worker_message(c->engine, w, msg);
    return 1;
}

static const char *engine_code_of(void *arg, const struct wconn *w)
{
    struct core *c = arg;

    return loadcode_summary(c->lc, w);
}

static struct wconn *engine_find(void *arg, uint64_t id)
{
    struct core *c = arg;

    return wconns_find(c->wc, id);
}

static void on_version_provided(void *arg, uint64_t wid, const char *sha, const char *err)
{
    struct core *c = arg;

    if (c->engine != NULL)
        engine_version_ready(c->engine, wid, sha, err);
}

static int engine_provide(void *arg, struct wconn *w, const char *sha)
{
    struct core *c = arg;

    return loadcode_provide(c->lc, w, sha, on_version_provided, c);
}

static void engine_versions(void *arg, const struct wconn *w, const char *json)
{
    struct core *c = arg;

    wview_set_versions(c->view, wconn_project(w), wconn_pid(w), json);
}

/* ---- start-up ---- */

/* Returns 1 if SIGTERM/SIGINT is pending or the manager is gone. */
static int should_stop(int ctl_fd)
{
    sigset_t pending;
    struct pollfd pfd = {.fd = ctl_fd, .events = POLLIN};

    sigpending(&pending);
    if (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))
        return 1;
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)) != 0)
        return 1;
    return 0;
}

/*
 * Connects db, retrying every second and logging the first failure and
 * every tenth after it. Returns 0, or -1 if told to stop meanwhile.
 */
static int connect_with_retry(struct db_conn *db, int ctl_fd)
{
    for (int attempt = 0;; attempt++) {
        if (db_connect(db) == 0) {
            if (attempt > 0)
                log_info("connected to the database after %d attempts", attempt + 1);
            return 0;
        }
        if (attempt % 10 == 0)
            log_error("could not connect to the database: %s; retrying", db_error(db));
        if (should_stop(ctl_fd))
            return -1;
        usleep(CONNECT_RETRY_MS * 1000);
    }
}

/* Connects, migrates and disconnects. Returns WF_EXIT_OK, WF_EXIT_DATABASE,
 * or -1 when told to stop before the database was reachable. */
static int migrate(struct core *c, int ctl_fd)
{
    struct db_options opt = {"wf-core", "migrate", c->cfg->db_connect_timeout_ms,
                             MIGRATE_TIMEOUT_MS};
    struct db_conn *db = db_conn_new_ex(c->cfg->database_url, &opt);
    int rc = WF_EXIT_OK;

    if (db == NULL) {
        log_error("could not allocate a database connection: out of memory");
        return WF_EXIT_FAILURE;
    }
    if (connect_with_retry(db, ctl_fd) < 0) {
        log_info("stopping before the database was reachable");
        rc = -1;
    } else {
        if (!db_used_password(db))
            log_warning("the database accepted core's connection without a password (trust or "
                        "peer authentication): any local process that can reach it, project "
                        "code in a worker included, can connect the same way; require a password "
                        "or a certificate in pg_hba.conf");
        if (migrate_apply(db) < 0)
            rc = WF_EXIT_DATABASE;
    }
    db_conn_free(db);
    return rc;
}

/*
 * Takes the host lock (hostlock.h) before anything of this host's rows is
 * touched, retrying briefly: the session of a core that just crashed may
 * not have ended yet. Returns WF_EXIT_OK with c->hl held, WF_EXIT_HOST_TAKEN
 * when another server holds it, WF_EXIT_DATABASE or WF_EXIT_FAILURE.
 */
static int take_host_lock(struct core *c)
{
    char err[512];
    int rc = -1;

    c->hl = hostlock_new(c->cfg->database_url, c->cfg->host_id, c->cfg->db_connect_timeout_ms);
    if (c->hl == NULL) {
        log_error("could not allocate the host lock: out of memory");
        return WF_EXIT_FAILURE;
    }
    for (int i = 0; i < HOSTLOCK_TRIES; i++) {
        if (i > 0)
            usleep(HOSTLOCK_RETRY_MS * 1000);
        rc = hostlock_take(c->hl, err, sizeof(err));
        if (rc == 0)
            return WF_EXIT_OK;
    }
    if (rc < 0) {
        log_error("%s", err);
        return WF_EXIT_DATABASE;
    }
    log_error("another wf-server with WF_HOST_ID \"%s\" is running on this database (%s); "
              "refusing to start: each server needs its own WF_HOST_ID",
              c->cfg->host_id, err);
    return WF_EXIT_HOST_TAKEN;
}

/* Loop thread: the host lock went to another server. Its rows are now that
 * server's: stop without marking them stopped. */
static void on_host_lost_task(void *arg)
{
    struct core *c = arg;

    __atomic_store_n(&c->host_lost, 1, __ATOMIC_RELEASE);
    c->rc = WF_EXIT_HOST_TAKEN;
    loop_stop(c->loop);
}

/* Hostlock thread: posts the loss to the loop. */
static void on_host_lost(void *arg)
{
    struct core *c = arg;

    if (core_post(c, on_host_lost_task, c) < 0)
        __atomic_store_n(&c->host_lost, 1, __ATOMIC_RELEASE); /* stopping anyway */
}

static int setup_signals(struct core *c)
{
    sigset_t mask;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    c->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (c->sigfd < 0)
        return -1;
    return loop_add(c->loop, &c->sig_watch, c->sigfd, EPOLLIN, on_signal, c);
}

/* Creates the loop and every module. Returns 0, or -1 (logged). */
static int build(struct core *c, int ctl_fd)
{
    const struct wf_config *cfg = c->cfg;
    struct db_options http_opt = {"wf-core", "http", cfg->db_connect_timeout_ms,
                                  cfg->db_statement_timeout_ms};
    struct db_options art_opt = {"wf-core", "artifacts", cfg->db_connect_timeout_ms,
                                 cfg->db_statement_timeout_ms};
    struct db_options sched_opt = {"wf-core", "schedules", cfg->db_connect_timeout_ms,
                                   cfg->db_statement_timeout_ms};
    struct dbq_config qc = {.url = cfg->database_url,
                            .app_name = "wf-core",
                            .connect_timeout_ms = cfg->db_connect_timeout_ms,
                            .statement_timeout_ms = cfg->db_statement_timeout_ms,
                            .health_ms = HEALTH_MS,
                            .wait_ms = 5000};
    struct mgrlink_events mev = {on_mgr_hello, on_mgr_state, on_mgr_attach, on_mgr_gone, c};
    struct wconns_events wev = {on_worker_hello, on_worker_gone, on_worker_message, c};
    struct engine_env eenv = {engine_code_of, engine_find, engine_provide, engine_versions, c};

    c->loop = loop_new();
    if (c->loop == NULL || setup_signals(c) < 0) {
        log_error("could not set up core's loop: %s", strerror(errno));
        close(ctl_fd);
        return -1;
    }
    c->ml = mgrlink_new(c->loop, ctl_fd, &mev);
    c->dbq = dbq_new(c->loop, &qc);
    if (c->ml == NULL || c->dbq == NULL) {
        log_error("could not set up core: out of memory");
        return -1;
    }
    dbq_on_health(c->dbq, on_db_health, c);
    (void)dbq_start(c->dbq);
    c->pool = ctlpool_new(cfg->database_url, &http_opt, cfg->db_pool_size, POOL_QUEUE_MAX);
    c->af = artfetch_new(cfg->database_url, &art_opt, c->loop);
    c->view = wview_new(cfg, c->loop, c->dbq);
    c->wc = c->view != NULL ? wconns_new(cfg, c->loop, c->view, c->ml, &wev) : NULL;
    c->lc = c->wc != NULL && c->af != NULL ? loadcode_new(c->loop, c->dbq, c->view, c->wc, c->af)
                                           : NULL;
    c->engine = c->lc != NULL ? engine_new(cfg, c->loop, c->dbq, &eenv) : NULL;
    c->sched = schedules_new(cfg->database_url, &sched_opt, cfg->schedule_grace_ms);
    c->events = events_new(c);
    if (c->pool == NULL || c->af == NULL || c->view == NULL || c->wc == NULL || c->lc == NULL ||
        c->engine == NULL || c->sched == NULL || c->events == NULL) {
        log_error("could not set up core's modules");
        return -1;
    }
    loop_timer_set(c->loop, &c->tick, loop_now(c->loop) + TICK_MS, on_tick, c);
    return 0;
}

/* Runs loop turns until the database layer is healthy or timeout_ms. */
static void wait_healthy(struct core *c, int timeout_ms)
{
    int64_t until = ju_mono_ms() + timeout_ms;

    while (!dbq_healthy(c->dbq) && ju_mono_ms() < until)
        (void)loop_turn(c->loop, 50);
    __atomic_store_n(&c->db_ok, dbq_healthy(c->dbq), __ATOMIC_RELAXED);
}

/* ---- shutdown ---- */

static void rows_done(void *arg)
{
    *(int *)arg = 1;
}

static void shutdown_core(struct core *c)
{
    int rows_marked = 0;
    int64_t until;

    if (c->loop == NULL)
        return;
    loop_timer_cancel(c->loop, &c->tick); /* it reads modules freed below */
    /* 1. No HTTP thread posts to the loop from now on. */
    pthread_mutex_lock(&c->post_mu);
    __atomic_store_n(&c->stopping, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->post_mu);
    http_quiesce(c);
    /* Event streams end now (none stays suspended); those still opening
     * are answered 503 by their query's callback, at the latest in
     * dbq_free below. */
    events_stop(c->events);
    /* 2. Tasks already posted run (and see core stopping); waiting manager
     * calls and control-plane jobs are answered. */
    (void)loop_turn(c->loop, 0);
    if (c->ml != NULL)
        mgrlink_cancel_all(c->ml);
    if (c->pool != NULL)
        ctlpool_stop(c->pool);
    /* No schedule fires from now on (the pool's routes that wake it are
     * done). */
    schedules_free(c->sched);
    c->sched = NULL;
    /* 3. This host's live rows become stopped, waited for (bounded),
     * unless another server took the host id over. */
    if (c->view != NULL && c->dbq != NULL && !__atomic_load_n(&c->host_lost, __ATOMIC_ACQUIRE)) {
        wview_mark_stopped(c->view, rows_done, &rows_marked);
        until = ju_mono_ms() + SHUTDOWN_ROWS_WAIT_MS;
        while (!rows_marked && ju_mono_ms() < until)
            (void)loop_turn(c->loop, 50);
        if (!rows_marked)
            log_warning("could not mark the workers' rows stopped within %d ms",
                        SHUTDOWN_ROWS_WAIT_MS);
    }
    /* 4. The database layer answers what it still holds (its callbacks may
     * still use the worker channels, the view and the artifact thread, so
     * they go after it); nothing may submit to it afterwards: the view's
     * timers stop first. */
    if (c->view != NULL)
        wview_stop(c->view);
    if (c->engine != NULL)
        engine_detach(c->engine);
    dbq_free(c->dbq);
    c->dbq = NULL;
    /* 5. Worker sockets close (their clean-ups go to the artifact thread);
     * the code loader lets go of them; the artifact thread finishes and
     * hands its last answers to the loop, which drops them. */
    wconns_free(c->wc);
    c->wc = NULL;
    if (c->lc != NULL)
        loadcode_detach(c->lc);
    artfetch_free(c->af);
    c->af = NULL;
    (void)loop_turn(c->loop, 0);
    /* Every deferred request is finished once the manager link is gone
     * (it answers what still waits). */
    mgrlink_free(c->ml);
    c->ml = NULL;
    /* 6. Only now may libmicrohttpd stop: no connection is suspended. */
    http_stop(c);
    events_free(c->events);
    c->events = NULL;
    loadcode_free(c->lc);
    engine_free(c->engine);
    c->engine = NULL;
    wview_free(c->view);
    ctlpool_free(c->pool);
    if (c->sigfd >= 0)
        close(c->sigfd);
    loop_free(c->loop);
}

int core_main(const struct wf_config *cfg, int ctl_fd, int listen_fd)
{
    static struct core core;
    struct core *c = &core;
    sigset_t mask;
    char err[256];
    int rc;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    /* Before any descriptor of ours exists: HTTP's connection limit is
     * computed from it. */
    http_raise_fd_limit();

    c->cfg = cfg;
    c->listen_fd = listen_fd;
    c->sigfd = -1;
    c->rc = WF_EXIT_OK;
    pthread_mutex_init(&c->post_mu, NULL);
    pthread_mutex_init(&c->metrics_mu, NULL);
    msg_set_max_bytes((size_t)cfg->max_message_bytes);

    if (db_check_url(cfg->database_url, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return WF_EXIT_USAGE;
    }
    rc = migrate(c, ctl_fd);
    if (rc == WF_EXIT_OK)
        __atomic_store_n(&c->migrated, 1, __ATOMIC_RELAXED);
    /* Before the manager's hello: a second server with this host id must
     * not mark the first one's rows crashed. */
    if (rc == WF_EXIT_OK)
        rc = take_host_lock(c);
    if (rc != WF_EXIT_OK) {
        hostlock_free(c->hl);
        close(listen_fd);
        close(ctl_fd);
        return rc < 0 ? WF_EXIT_OK : rc;
    }
    if (build(c, ctl_fd) < 0) {
        c->rc = WF_EXIT_FAILURE;
        goto out;
    }
    if (hostlock_watch(c->hl, on_host_lost, c) < 0) {
        log_error("could not start the host lock thread");
        c->rc = WF_EXIT_FAILURE;
        goto out;
    }
    wait_healthy(c, cfg->db_connect_timeout_ms);
    if (mgrlink_hello(c->ml) < 0) {
        log_error("could not greet the manager: %s", strerror(errno));
        c->rc = WF_EXIT_FAILURE;
        goto out;
    }
    if (loop_run(c->loop) < 0) {
        log_error("could not wait for events: %s", strerror(errno));
        c->rc = WF_EXIT_SYSCALL;
    }
out:
    shutdown_core(c);
    /* Last: the rows are marked stopped before another server may start. */
    hostlock_free(c->hl);
    c->hl = NULL;
    close(listen_fd);
    return c->rc;
}
