/*
 * worker.c: the worker role's event loop.
 *
 * Protocol (framed JSON, common/msg.h):
 *   to core, on every new work socket:  {"t":"hello","pid","project","loaded",
 *                                        "code":{"workflows","activities"} once loaded}
 *   from core (at spawn, or after hello): {"t":"load","workflows":[…],"activities":[…],
 *                                        "artifacts":[{"label","path","sha256"}],
 *                                        "provides":[{"kind","name"}],"summary"}
 *                                       or {"t":"load","error":"…"}
 *   to manager once loaded:             {"t":"ready"} or {"t":"load_error","error",
 *                                        "transient"} (transient: core's failure)
 *   to core every heartbeat interval:   {"t":"hb"}
 *   from manager:                       {"t":"core"} + a new work socket (core restarted)
 *   to manager on SIGTERM:              {"t":"draining"}, then exit 0
 *
 * Invariants: the loaded code survives a core restart (the worker only swaps
 * its work socket); the manager's death (control socket EOF or SIGTERM from
 * PR_SET_PDEATHSIG) ends the worker after a drain.
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

#include "config.h"
#include "exitcodes.h"
#include "jsonutil.h"
#include "loader.h"
#include "log.h"
#include "msg.h"
#include "worker.h"

#define CTL_FD 3
#define WORK_FD 4

struct worker {
    const char *project;
    const char *worker_id;
    int heartbeat_ms;
    int ctl_fd;
    int work_fd; /* -1 while core is away */
    int epfd;
    int sigfd;
    int timerfd;
    int loaded;
    cJSON *code;              /* core's summary of what we loaded, shown to the next core */
    struct plg_registry *reg; /* the project's plugins, once loaded */
    int stop;
};

static struct worker *wlog_worker;

#define wlog_error(fmt, ...) log_error("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)
#define wlog_warning(fmt, ...) log_warning("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)
#define wlog_info(fmt, ...) log_info("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)
#define wlog_debug(fmt, ...) log_debug("project=%s " fmt, wlog_worker->project, ##__VA_ARGS__)

static int send_simple(int fd, const char *type, const char *key, const char *value)
{
    cJSON *o = cJSON_CreateObject();
    int r;

    cJSON_AddStringToObject(o, "t", type);
    if (key != NULL)
        cJSON_AddStringToObject(o, key, value);
    r = msg_send(fd, o, -1);
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
    if (w->code != NULL)
        ju_set(o, "code", cJSON_Duplicate(w->code, 1));
    if (msg_send(w->work_fd, o, -1) < 0)
        wlog_warning("could not greet core: %s", strerror(errno));
    cJSON_Delete(o);
}

static void set_work_fd(struct worker *w, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

    if (w->work_fd >= 0)
        close(w->work_fd);
    w->work_fd = fd;
    if (fd < 0)
        return;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        wlog_error("could not watch core socket: %s", strerror(errno));
        close(fd);
        w->work_fd = -1;
        return;
    }
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

/*
 * Loads the plugins core wrote for us and reports the outcome to the
 * manager: {"t":"ready"} once everything is loaded and checked, else
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
        sources = calloc((size_t)cJSON_GetArraySize(arts) + 1, sizeof(*sources));
        cJSON_ArrayForEach(a, arts)
        {
            if (sources == NULL || ju_str(a, "label") == NULL || ju_str(a, "path") == NULL)
                continue;
            sources[n].label = ju_str(a, "label");
            sources[n].path = ju_str(a, "path");
            n++;
        }
        w->reg = plg_load(sources, n, err, sizeof(err));
        free(sources);
        if (w->reg == NULL ||
            check_provided(w->reg, cJSON_GetObjectItemCaseSensitive(msg, "provides"), err,
                           sizeof(err)) < 0)
            error = err;
    }
    if (error != NULL) {
        wlog_error("%s", error);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "t", "load_error");
        cJSON_AddStringToObject(o, "error", error);
        /* Core could not provide the code (database down): worth a retry. */
        cJSON_AddBoolToObject(o, "transient", ju_bool(msg, "transient"));
        if (msg_send(w->ctl_fd, o, -1) < 0)
            wlog_error("could not report load error: %s", strerror(errno));
        cJSON_Delete(o);
        w->stop = WF_EXIT_FAILURE;
        return;
    }
    w->code = cJSON_IsObject(summary) ? cJSON_Duplicate(summary, 1) : cJSON_CreateObject();
    w->loaded = 1;
    if (send_simple(w->ctl_fd, "ready", NULL, NULL) < 0) {
        wlog_error("could not report ready: %s", strerror(errno));
        w->stop = WF_EXIT_FAILURE;
        return;
    }
    wlog_info("ready: %d workflows, %d activities, %zu plugins", cJSON_GetArraySize(wf),
              cJSON_GetArraySize(act), n);
}

static void process_work(struct worker *w)
{
    while (w->work_fd >= 0) {
        cJSON *msg = NULL;
        int r = msg_recv(w->work_fd, &msg, NULL);
        const char *t;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            wlog_warning("ignoring malformed message from core: %s", strerror(errno));
            continue;
        }
        if (r <= 0) {
            /* Core is gone; keep the code loaded and wait for the next one. */
            wlog_info("lost core connection; waiting for a new core");
            set_work_fd(w, -1);
            return;
        }
        t = ju_str(msg, "t");
        if (t != NULL && strcmp(t, "load") == 0)
            load_code(w, msg);
        else
            wlog_debug("ignoring message %s from core", t != NULL ? t : "(untyped)");
        cJSON_Delete(msg);
    }
}

static void process_ctl(struct worker *w)
{
    for (;;) {
        cJSON *msg = NULL;
        int fd = -1;
        int r = msg_recv(w->ctl_fd, &msg, &fd);
        const char *t;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            wlog_warning("ignoring malformed message from the manager: %s", strerror(errno));
            continue;
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

static void heartbeat(struct worker *w)
{
    uint64_t ticks;

    if (read(w->timerfd, &ticks, sizeof(ticks)) < 0)
        return;
    if (w->work_fd >= 0 && w->loaded && send_simple(w->work_fd, "hb", NULL, NULL) < 0)
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
    ev.data.fd = w->ctl_fd;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->ctl_fd, &ev) < 0)
        return -1;
    return 0;
}

int worker_main(int argc, char **argv)
{
    static struct worker wk;
    struct worker *w = &wk;
    enum log_level level = LOG_LVL_INFO;
    const char *s;
    long hb;
    long parent = 0;

    s = getenv("LOG_LEVEL");
    if (s != NULL)
        (void)log_parse_level(s, &level);
    s = getenv("LOG_FORMAT");
    log_init("worker", level, s == NULL || strcmp(s, "text") != 0);
    if ((argc != 5 && argc != 6) || !ju_valid_id(argv[2]) ||
        config_parse_long(argv[4], 10, 3600000, &hb) < 0 ||
        (argc == 6 && config_parse_long(argv[5], 1, INT32_MAX, &parent) < 0)) {
        log_error("usage: wf-worker worker <projectId> <workerId> <heartbeat_ms> [<manager pid>]");
        return WF_EXIT_USAGE;
    }
    /* Die with the manager (the set-up step posix_spawn cannot do for us);
     * if it is already gone, we were reparented: stop at once. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || (argc == 6 && getppid() != (pid_t)parent))
        return WF_EXIT_OK;
    prctl(PR_SET_NAME, "wf-worker");
    w->project = argv[2];
    w->worker_id = argv[3];
    w->heartbeat_ms = (int)hb;
    w->ctl_fd = CTL_FD;
    w->work_fd = -1;
    w->stop = -1;
    wlog_worker = w;
    if (setup(w) < 0) {
        wlog_error("could not set up the worker loop: %s", strerror(errno));
        return WF_EXIT_SYSCALL;
    }
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
                    wlog_info("received signal %d; draining", (int)si.ssi_signo);
                    (void)send_simple(w->ctl_fd, "draining", NULL, NULL);
                    w->stop = WF_EXIT_OK;
                }
            } else if (fd == w->timerfd) {
                heartbeat(w);
            } else if (fd == w->ctl_fd) {
                process_ctl(w);
            } else if (fd == w->work_fd) {
                process_work(w);
            }
        }
    }
    /* Drain: nothing runs yet in a worker, so there is nothing to finish. */
    cJSON_Delete(w->code);
    plg_unload(w->reg);
    if (w->work_fd >= 0)
        close(w->work_fd);
    wlog_info("stopped");
    return w->stop;
}
