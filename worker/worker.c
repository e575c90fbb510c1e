/*
 * worker.c: the worker role's event loop.
 *
 * Protocol (framed JSON, common/msg.h):
 *   to core, on every new work socket:  {"t":"hello","pid","project","loaded",
 *                                        "sandbox":{…} (sandbox.h),
 *                                        "code":{"workflows","activities"} once loaded}
 *   from core (at spawn, or after hello): {"t":"artifact","sha256"} + a sealed memfd, per
 *                                        plugin, then {"t":"load","workflows":[…],
 *                                        "activities":[…],"artifacts":[{"label","sha256"}],
 *                                        "provides":[{"kind","name"}],"summary"}
 *                                       or {"t":"load","error":"…"}
 *   to manager once loaded:             {"t":"ready"} or {"t":"load_error","error",
 *                                        "transient"} (transient: core's failure)
 *   to core once loaded:                {"t":"ready"}: runs may come
 *   both ways, once loaded:             {"t":"ev","e":[…]}: runs, steps, acks (runs.h)
 *   to core every heartbeat interval:   {"t":"hb"}
 *   from core:                          {"t":"ping","n"}, answered {"t":"pong","n"}
 *   from manager:                       {"t":"core"} + a new work socket (core restarted)
 *   to manager on SIGTERM:              {"t":"draining"}, then exit 0
 *
 * Invariants: the loaded code survives a core restart (the worker only swaps
 * its work socket); the manager's death (control socket EOF or SIGTERM from
 * PR_SET_PDEATHSIG) ends the worker after a drain. Both sockets are
 * non-blocking channels (common/chan.h): nothing the worker sends can block
 * it, and a heartbeat is skipped while core has not read the previous
 * messages, so a stalled core never grows the worker's queue. A malformed
 * message from core or the manager is a protocol error: the worker exits
 * with WF_EXIT_PROTOCOL and is restarted like a crashed one. The sandbox
 * (sandbox.c) is applied before the loop exists, so before any load message
 * can be read: no plugin code ever runs outside it. A worker that cannot
 * apply it reports a load error and exits 1 without loading anything.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "chan.h"
#include "config.h"
#include "dslmod.h"
#include "exitcodes.h"
#include "jsonutil.h"
#include "loader.h"
#include "log.h"
#include "msg.h"
#include "privs.h"
#include "runs.h"
#include "sandbox.h"
#include "worker.h"

#define CTL_FD 3
#define WORK_FD 4
#define WORKER_MAX_ARTIFACTS 256 /* memfds held before a load; more is a protocol error */
#define WORKER_TURN_THREADS 2    /* workflow turns are short: CPU-bound, no I/O */
#define WORKER_STOP_WAIT_MS 2000 /* plugin code still running at stop gets this long */

struct worker {
    const char *project;
    const char *worker_id;
    int heartbeat_ms;
    struct chan *ctl;  /* to the manager (fd 3) */
    struct chan *work; /* to core; NULL while core is away */
    int work_fd;       /* work's socket, -1 while core is away */
    int epfd;
    int sigfd;
    int timerfd;
    int loaded;
    cJSON *code;              /* core's summary of what we loaded, shown to the next core */
    cJSON *sandbox;           /* what sandbox_apply did, sent in every hello */
    struct plg_registry *reg; /* the project's plugins, once loaded */
    struct runs *runs;        /* the run table, once loaded */
    int draining;             /* SIGTERM came: finish what runs, then stop */
    struct artifact {
        char sha[65];
        int fd; /* the sealed memfd core sent, until the load */
    } arts[WORKER_MAX_ARTIFACTS];
    size_t narts;
    int stop;
};

static struct worker *wlog_worker;

#define wlog_error(fmt, ...) log_error("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)
#define wlog_warning(fmt, ...) log_warning("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)
#define wlog_info(fmt, ...) log_info("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)
#define wlog_debug(fmt, ...) log_debug("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)

/* Watches ch's socket for EPOLLOUT too while it has a queue. */
static void watch_out(struct worker *w, struct chan *ch)
{
    struct epoll_event ev = {.events = EPOLLIN | (chan_wants_write(ch) ? EPOLLOUT : 0),
                             .data.fd = chan_fd(ch)};

    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, chan_fd(ch), &ev) < 0)
        wlog_warning("could not watch a socket: %s", strerror(errno));
}

/* Sends o on ch (NULL: the peer is away) and watches for room if needed. */
static int send_on(struct worker *w, struct chan *ch, const cJSON *o)
{
    if (ch == NULL) {
        errno = ENOTCONN;
        return -1;
    }
    if (chan_send(ch, o, -1) < 0)
        return -1;
    watch_out(w, ch);
    return 0;
}

static int send_simple(struct worker *w, struct chan *ch, const char *type, const char *key,
                       const char *value)
{
    cJSON *o = cJSON_CreateObject();
    int r;

    cJSON_AddStringToObject(o, "t", type);
    if (key != NULL)
        cJSON_AddStringToObject(o, key, value);
    r = send_on(w, ch, o);
    cJSON_Delete(o);
    return r;
}

static void send_hello(struct worker *w)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "t", "hello");
    cJSON_AddNumberToObject(o, "pid", getpid());
    cJSON_AddStringToObject(o, "project", w->project);
    cJSON_AddBoolToObject(o, "loaded", w->loaded);
    if (w->sandbox != NULL)
        ju_set(o, "sandbox", cJSON_Duplicate(w->sandbox, 1));
    if (w->code != NULL)
        ju_set(o, "code", cJSON_Duplicate(w->code, 1));
    if (send_on(w, w->work, o) < 0)
        wlog_warning("could not greet core: %s", strerror(errno));
    cJSON_Delete(o);
}

/* Replaces the work socket (fd -1: core is away). */
static void set_work_fd(struct worker *w, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

    if (w->work != NULL) {
        chan_free(w->work); /* closes the socket: also removes it from epoll */
        w->work = NULL;
        w->work_fd = -1;
        /* The next core hands the runs out again from their history. */
        if (w->runs != NULL)
            runs_core_lost(w->runs);
    }
    if (fd < 0)
        return;
    w->work = chan_new(fd, NULL);
    if (w->work == NULL) {
        wlog_error("could not set up the core socket: %s", strerror(errno));
        close(fd);
        return;
    }
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        wlog_error("could not watch core socket: %s", strerror(errno));
        chan_free(w->work);
        w->work = NULL;
        return;
    }
    w->work_fd = fd;
    send_hello(w);
}

/* Checks that every name deployed with code ({"kind","name"} entries) is
 * provided by the loaded plugins. Returns 0, or -1 with err set. */
static int check_provided(const struct plg_registry *reg, const cJSON *provides, char *err,
                          size_t errlen)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, provides)
    {
        const char *kind = ju_str(it, "kind");
        const char *name = ju_str(it, "name");
        int workflow = kind != NULL && strcmp(kind, "workflow") == 0;

        if (name == NULL)
            continue;
        if (workflow ? plg_workflow(reg, name) == NULL : plg_activity(reg, name) == NULL) {
            snprintf(err, errlen, "%s \"%s\" is not provided by its plugin",
                     workflow ? "workflow" : "activity", name);
            return -1;
        }
    }
    return 0;
}

/* Closes every memfd core sent (after the load: the mappings stay). */
static void drop_artifacts(struct worker *w)
{
    for (size_t i = 0; i < w->narts; i++)
        close(w->arts[i].fd);
    w->narts = 0;
}

/* {"t":"artifact","sha256"} with its sealed memfd, ahead of the load.
 * Returns 0, or -1 on a protocol error (fd closed either way when not
 * kept). */
static int keep_artifact(struct worker *w, const cJSON *msg, int fd)
{
    const char *sha = ju_str(msg, "sha256");

    if (fd < 0 || sha == NULL || strlen(sha) != 64 || w->narts == WORKER_MAX_ARTIFACTS) {
        if (fd >= 0)
            close(fd);
        wlog_error("protocol error: a malformed or unexpected artifact message from core");
        return -1;
    }
    snprintf(w->arts[w->narts].sha, sizeof(w->arts[w->narts].sha), "%s", sha);
    w->arts[w->narts].fd = fd;
    w->narts++;
    return 0;
}

static int artifact_fd(const struct worker *w, const char *sha)
{
    for (size_t i = 0; sha != NULL && i < w->narts; i++) {
        if (strcmp(w->arts[i].sha, sha) == 0)
            return w->arts[i].fd;
    }
    return -1;
}

/* Tells the manager the project's code will not run here, and stops the
 * worker with status 1. transient: core's failure, worth a retry. */
static void report_load_error(struct worker *w, const char *error, int transient)
{
    cJSON *o = cJSON_CreateObject();

    wlog_error("%s", error);
    cJSON_AddStringToObject(o, "t", "load_error");
    cJSON_AddStringToObject(o, "error", error);
    cJSON_AddBoolToObject(o, "transient", transient);
    if (send_on(w, w->ctl, o) < 0)
        wlog_error("could not report load error: %s", strerror(errno));
    cJSON_Delete(o);
    w->stop = WF_EXIT_FAILURE;
}

static int send_to_core(void *arg, const cJSON *msg)
{
    struct worker *w = arg;

    return send_on(w, w->work, msg);
}

/* Reads a positive setting from the environment (the manager passes it). */
static int env_int(const char *name, int def, int max)
{
    const char *s = getenv(name);
    long v;

    if (s == NULL || config_parse_long(s, 1, max, &v) < 0)
        return def;
    return (int)v;
}

/* The run table and its descriptors, once the code is loaded. Returns 0,
 * or -1 with err set. */
static int start_runs(struct worker *w, char *err, size_t errlen)
{
    struct runs_config rc = {
        .max_runs = env_int("MAX_CONCURRENT_WORKFLOW_EXECUTIONS", WF_DEFAULT_MAX_RUNS, 1000000),
        .max_activities =
            env_int("MAX_CONCURRENT_ACTIVITY_EXECUTIONS", WF_DEFAULT_MAX_ACTIVITIES, 10000),
        .turn_threads = WORKER_TURN_THREADS};
    struct epoll_event ev = {.events = EPOLLIN};

    w->runs = runs_new(&rc, w->reg, cJSON_GetObjectItemCaseSensitive(w->code, "workflowCode"),
                       w->project, send_to_core, w);
    if (w->runs == NULL) {
        snprintf(err, errlen, "could not set up the run table: %s", strerror(errno));
        return -1;
    }
    ev.data.fd = runs_mailbox_fd(w->runs);
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
        goto fail;
    ev.data.fd = runs_timer_fd(w->runs);
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "could not watch the run table: %s", strerror(errno));
    (void)runs_free(w->runs, 0);
    w->runs = NULL;
    return -1;
}

/*
 * Loads the plugins core sent us (sealed memfds, dlopen'ed through
 * /proc/self/fd/N) and reports the outcome to the manager: {"t":"ready"} once everything is loaded
 * and checked, else
 * {"t":"load_error","error"} and the worker exits 1.
 */
static void load_code(struct worker *w, cJSON *msg)
{
    const char *error = ju_str(msg, "error");
    cJSON *wf = cJSON_GetObjectItemCaseSensitive(msg, "workflows");
    cJSON *act = cJSON_GetObjectItemCaseSensitive(msg, "activities");
    cJSON *arts = cJSON_GetObjectItemCaseSensitive(msg, "artifacts");
    cJSON *summary = cJSON_GetObjectItemCaseSensitive(msg, "summary");
    struct plg_source *sources = NULL;
    char(*paths)[32] = NULL;
    char err[1024];
    size_t n = 0;
    const cJSON *a;

    if (w->loaded) {
        wlog_debug("ignoring a second load message");
        return;
    }
    if (error == NULL && (!cJSON_IsArray(wf) || !cJSON_IsArray(act) || !cJSON_IsArray(arts)))
        error = "malformed load message from core";
    if (error == NULL) {
        size_t cap = (size_t)cJSON_GetArraySize(arts) + 1;
        sources = calloc(cap, sizeof(*sources));
        paths = calloc(cap, sizeof(*paths));
        if (sources == NULL || paths == NULL)
            error = "could not load the project's code: out of memory";
        cJSON_ArrayForEach(a, arts)
        {
            int fd = artifact_fd(w, ju_str(a, "sha256"));
            if (error != NULL)
                break;
            if (ju_str(a, "label") == NULL || fd < 0) {
                snprintf(err, sizeof(err), "core did not send the code of plugin \"%s\"",
                         ju_str(a, "label") != NULL ? ju_str(a, "label") : "?");
                error = err;
                break;
            }
            snprintf(paths[n], sizeof(paths[n]), "/proc/self/fd/%d", fd);
            sources[n].label = ju_str(a, "label");
            sources[n].path = paths[n];
            n++;
        }
    }
    if (error == NULL) {
        w->reg = plg_load(sources, n, err, sizeof(err));
        if (w->reg == NULL ||
            check_provided(w->reg, cJSON_GetObjectItemCaseSensitive(msg, "provides"), err,
                           sizeof(err)) < 0)
            error = err;
    }
    free(sources);
    free(paths);
    drop_artifacts(w); /* what is loaded stays mapped */
    if (error != NULL) {
        /* Core could not provide the code (database down): worth a retry. */
        report_load_error(w, error, ju_bool(msg, "transient"));
        return;
    }
    w->code = cJSON_IsObject(summary) ? cJSON_Duplicate(summary, 1) : cJSON_CreateObject();
    if (start_runs(w, err, sizeof(err)) < 0) {
        report_load_error(w, err, 0);
        return;
    }
    w->loaded = 1;
    if (send_simple(w, w->ctl, "ready", NULL, NULL) < 0) {
        wlog_error("could not report ready: %s", strerror(errno));
        w->stop = WF_EXIT_FAILURE;
        return;
    }
    if (send_simple(w, w->work, "ready", NULL, NULL) < 0)
        wlog_debug("could not tell core we are ready: %s", strerror(errno));
    wlog_info("ready: %d workflows, %d activities, %zu plugins", cJSON_GetArraySize(wf),
              cJSON_GetArraySize(act), n);
}

/*
 * {"t":"version","sha256"}: an older artifact, for runs pinned to it, sent
 * with its memfd just before. Loaded beside the current code (RTLD_LOCAL);
 * a version that cannot be loaded is remembered with its error, which fails
 * the runs that need it. {"t":"unversion","sha256"}: no run needs it any
 * more. Returns 0, or -1 on a protocol error.
 */
static int take_version(struct worker *w, const cJSON *msg, int load)
{
    const char *sha = ju_str(msg, "sha256");
    struct plg_registry *reg = NULL;
    char err[1024] = "";
    char label[32];

    if (!w->loaded || w->runs == NULL || sha == NULL || strlen(sha) != 64) {
        wlog_error("protocol error: a malformed or unexpected version message from core");
        return -1;
    }
    if (!load) {
        wlog_debug("core no longer needs code version %.12s", sha);
        runs_drop_version(w->runs, sha);
        return 0;
    }
    snprintf(label, sizeof(label), "version %.12s", sha);
    {
        char path[32];
        int fd = artifact_fd(w, sha);
        struct plg_source src = {label, path};
        if (fd < 0) {
            snprintf(err, sizeof(err), "core did not send code version %.12s", sha);
        } else {
            snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
            reg = plg_load(&src, 1, err, sizeof(err));
        }
    }
    drop_artifacts(w);
    if (reg == NULL)
        wlog_error("could not load code version %.12s: %s", sha, err);
    else
        wlog_info("loaded code version %.12s for the runs pinned to it", sha);
    if (runs_add_version(w->runs, sha, reg, reg == NULL ? err : NULL) < 0) {
        plg_unload(reg);
        wlog_error("could not keep code version %.12s: out of memory", sha);
    }
    return 0;
}

/* Core checks we are alive and reading: answer at once. */
static void pong(struct worker *w, const cJSON *ping)
{
    cJSON *o = cJSON_CreateObject();
    int64_t n = 0;

    (void)ju_int(ping, "n", &n);
    cJSON_AddStringToObject(o, "t", "pong");
    cJSON_AddNumberToObject(o, "n", (double)n);
    if (send_on(w, w->work, o) < 0)
        wlog_warning("could not answer core's ping: %s", strerror(errno));
    cJSON_Delete(o);
}

/* Messages from core: at most a budget per readiness event. */
static void process_work(struct worker *w)
{
    for (int i = 0; i < 64 && w->work != NULL && w->stop < 0; i++) {
        cJSON *msg = NULL;
        int fd = -1;
        int r = chan_recv(w->work, &msg, &fd);
        const char *t;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            wlog_error("protocol error on the core socket: %s", strerror(errno));
            w->stop = WF_EXIT_PROTOCOL;
            return;
        }
        if (r <= 0) {
            /* Core is gone; keep the code loaded and wait for the next one. */
            wlog_info("lost core connection; waiting for a new core");
            set_work_fd(w, -1);
            return;
        }
        t = ju_str(msg, "t");
        if (t != NULL && strcmp(t, "artifact") == 0) {
            int rc = keep_artifact(w, msg, fd);
            fd = -1;
            if (rc < 0) {
                cJSON_Delete(msg);
                w->stop = WF_EXIT_PROTOCOL;
                return;
            }
        } else if (t != NULL && strcmp(t, "load") == 0) {
            load_code(w, msg);
        } else if (t != NULL && (strcmp(t, "version") == 0 || strcmp(t, "unversion") == 0)) {
            if (take_version(w, msg, strcmp(t, "version") == 0) < 0) {
                cJSON_Delete(msg);
                w->stop = WF_EXIT_PROTOCOL;
                return;
            }
        } else if (t != NULL && strcmp(t, "ev") == 0) {
            char err[300];
            if (w->runs == NULL || runs_on_message(w->runs, msg, err, sizeof(err)) < 0) {
                wlog_error("protocol error: %s",
                           w->runs == NULL ? "runs sent before the code was loaded" : err);
                cJSON_Delete(msg);
                w->stop = WF_EXIT_PROTOCOL;
                return;
            }
        } else if (t != NULL && strcmp(t, "ping") == 0)
            pong(w, msg);
        else
            wlog_debug("ignoring message %s from core", t != NULL ? t : "(untyped)");
        if (fd >= 0)
            close(fd);
        cJSON_Delete(msg);
    }
}

static void process_ctl(struct worker *w)
{
    for (int i = 0; i < 64 && w->stop < 0; i++) {
        cJSON *msg = NULL;
        int fd = -1;
        int r = chan_recv(w->ctl, &msg, &fd);
        const char *t;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            wlog_error("protocol error on the manager socket: %s", strerror(errno));
            w->stop = WF_EXIT_PROTOCOL;
            return;
        }
        if (r <= 0) {
            wlog_info("manager is gone; stopping");
            w->stop = WF_EXIT_OK;
            return;
        }
        t = ju_str(msg, "t");
        if (t != NULL && strcmp(t, "core") == 0 && fd >= 0) {
            wlog_debug("got a new core socket");
            set_work_fd(w, fd);
            fd = -1;
        }
        if (fd >= 0)
            close(fd);
        cJSON_Delete(msg);
    }
}

/* A socket has room again: send what waits. */
static void flush(struct worker *w, struct chan *ch)
{
    if (ch == NULL)
        return;
    if (chan_flush(ch, ju_mono_ms()) < 0) {
        if (ch == w->work) {
            wlog_info("lost core connection; waiting for a new core");
            set_work_fd(w, -1);
        }
        return; /* the manager's socket: its end of file comes next */
    }
    watch_out(w, ch);
}

static void heartbeat(struct worker *w)
{
    uint64_t ticks;

    if (read(w->timerfd, &ticks, sizeof(ticks)) < 0)
        return;
    /* Core has not read what we sent: a heartbeat would only queue up. */
    if (w->work == NULL || !w->loaded || chan_wants_write(w->work))
        return;
    if (send_simple(w, w->work, "hb", NULL, NULL) < 0)
        wlog_warning("could not send heartbeat: %s", strerror(errno));
}

static int setup(struct worker *w)
{
    struct epoll_event ev = {.events = EPOLLIN};
    struct itimerspec its;
    sigset_t mask;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    w->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (w->sigfd < 0 || w->epfd < 0 || w->timerfd < 0)
        return -1;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = w->heartbeat_ms / 1000;
    its.it_value.tv_nsec = (long)(w->heartbeat_ms % 1000) * 1000000;
    its.it_interval = its.it_value;
    if (timerfd_settime(w->timerfd, 0, &its, NULL) < 0)
        return -1;
    ev.data.fd = w->sigfd;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sigfd, &ev) < 0)
        return -1;
    ev.data.fd = w->timerfd;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &ev) < 0)
        return -1;
    w->ctl = chan_new(CTL_FD, NULL);
    if (w->ctl == NULL)
        return -1;
    ev.data.fd = CTL_FD;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, CTL_FD, &ev) < 0)
        return -1;
    return 0;
}

/* Puts the sandbox up (sandbox.h); returns 0, or -1 with err set. */
static int sandbox_self(struct worker *w, char *err, size_t errlen)
{
    struct sandbox_config cfg;
    char why[768];

    w->sandbox = cJSON_CreateObject();
    if (sandbox_config_from_env(&cfg, why, sizeof(why)) < 0 ||
        sandbox_apply(&cfg, w->sandbox, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "could not sandbox the worker: %s", why);
        return -1;
    }
    return 0;
}

int worker_main(int argc, char **argv)
{
    static struct worker wk;
    struct worker *w = &wk;
    enum log_level level = LOG_LVL_INFO;
    char sandbox_err[1024];
    int sandboxed;
    const char *s;
    long hb;
    long parent = 0;
    long max_msg = 0;
    char err[256];

    s = getenv("LOG_LEVEL");
    if (s != NULL)
        (void)log_parse_level(s, &level);
    s = getenv("LOG_FORMAT");
    log_init("worker", level, s == NULL || strcmp(s, "text") != 0);
    s = getenv("WF_MAX_MESSAGE_BYTES");
    if (s != NULL && config_parse_long(s, 1, INT32_MAX, &max_msg) == 0)
        msg_set_max_bytes((size_t)max_msg);
    if ((argc != 5 && argc != 6) || !ju_valid_id(argv[2]) ||
        config_parse_long(argv[4], 10, 3600000, &hb) < 0 ||
        (argc == 6 && config_parse_long(argv[5], 1, INT32_MAX, &parent) < 0)) {
        log_error("usage: wf-worker worker <projectId> <workerId> <heartbeat_ms> [<manager pid>]");
        return WF_EXIT_USAGE;
    }
    /* The server's identity first (before the death signal: a credential
     * change resets it). */
    /* The declarative module's file may lie where only the server's user
     * can read (a build tree): opened before the privileges and the
     * sandbox go; loaded only if the project has a definition. */
    dslmod_open_early();
    if (privs_drop(err, sizeof(err)) < 0) {
        log_error("%s", err);
        return WF_EXIT_SYSCALL;
    }
    /* Die with the manager (the set-up step posix_spawn cannot do for us);
     * if it is already gone, we were reparented: stop at once. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || (argc == 6 && getppid() != (pid_t)parent))
        return WF_EXIT_OK;
    prctl(PR_SET_NAME, "wf-worker");
    w->project = argv[2];
    w->worker_id = argv[3];
    w->heartbeat_ms = (int)hb;
    w->work_fd = -1;
    w->stop = -1;
    wlog_worker = w;
    /* First, so that nothing below, and no load message, is handled outside
     * the sandbox; a failure is reported once the control channel exists. */
    sandboxed = sandbox_self(w, sandbox_err, sizeof(sandbox_err)) == 0;
    if (setup(w) < 0) {
        wlog_error("could not set up the worker loop: %s", strerror(errno));
        return WF_EXIT_SYSCALL;
    }
    if (!sandboxed)
        report_load_error(w, sandbox_err, 0);
    else
        set_work_fd(w, WORK_FD);

    while (w->stop < 0) {
        struct epoll_event evs[8];
        int n = epoll_wait(w->epfd, evs, 8, -1);

        if (n < 0 && errno != EINTR) {
            wlog_error("could not wait for events: %s", strerror(errno));
            return WF_EXIT_SYSCALL;
        }
        for (int i = 0; i < n && w->stop < 0; i++) {
            int fd = evs[i].data.fd;
            if (fd == w->sigfd) {
                struct signalfd_siginfo si;
                while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    if (w->draining)
                        continue;
                    wlog_info("received signal %d; draining", (int)si.ssi_signo);
                    (void)send_simple(w, w->ctl, "draining", NULL, NULL);
                    w->draining = 1;
                    if (w->runs != NULL)
                        runs_drain(w->runs);
                }
            } else if (fd == w->timerfd) {
                heartbeat(w);
            } else if (fd == CTL_FD) {
                if (evs[i].events & EPOLLOUT)
                    flush(w, w->ctl);
                process_ctl(w);
            } else if (fd == w->work_fd) {
                if (evs[i].events & EPOLLOUT)
                    flush(w, w->work);
                if (fd == w->work_fd)
                    process_work(w);
            } else if (w->runs != NULL && fd == runs_mailbox_fd(w->runs)) {
                runs_on_mailbox(w->runs);
            } else if (w->runs != NULL && fd == runs_timer_fd(w->runs)) {
                runs_on_timer(w->runs);
            }
        }
        if (w->runs != NULL)
            runs_flush(w->runs);
        /* Draining: done once no plugin code runs (the manager kills us at
         * WF_DRAIN_TIMEOUT_MS otherwise). */
        if (w->draining && w->stop < 0 && (w->runs == NULL || runs_busy(w->runs) == 0))
            w->stop = WF_EXIT_OK;
    }
    /* Runs still held are parked at their last committed step: core hands
     * them to the next worker. Plugin code gets a moment to return. */
    if (runs_free(w->runs, WORKER_STOP_WAIT_MS) < 0)
        w->reg = NULL; /* its code still runs on a thread: leave it mapped */
    w->runs = NULL;
    drop_artifacts(w);
    cJSON_Delete(w->code);
    cJSON_Delete(w->sandbox);
    plg_unload(w->reg);
    /* What is still queued for core or the manager goes out if it can. */
    if (w->work != NULL && chan_flush(w->work, ju_mono_ms()) < 0)
        wlog_debug("could not flush the core socket: %s", strerror(errno));
    if (chan_flush(w->ctl, ju_mono_ms()) < 0)
        wlog_debug("could not flush the manager socket: %s", strerror(errno));
    chan_free(w->work);
    chan_free(w->ctl);
    wlog_info("stopped");
    return w->stop;
}
