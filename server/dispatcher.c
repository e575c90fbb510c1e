/*
 * dispatcher.c: core's main thread. It reads the manager's control socket
 * (worker state changes, replies to HTTP calls, new worker sockets) and
 * every worker's work socket (hello, heartbeats), and resumes suspended HTTP
 * calls; workers.c keeps the view and the rows, loadcode.c the code a
 * worker loads.
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
#include "dispatcher.h"
#include "exitcodes.h"
#include "log.h"
#include "msg.h"

#define TICK_MS 100
#define REAP_INTERVAL_MS 5000 /* how often other hosts' silent rows are checked */

struct wconn *disp_find_wconn(struct dispatcher *d, pid_t pid)
{
    for (struct wconn *w = d->wconns; w != NULL; w = w->next) {
        if (w->pid == pid)
            return w;
    }
    return NULL;
}

void disp_drop_wconn(struct dispatcher *d, struct wconn *w, int gc)
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
        disp_gc_project(d, project);
}

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
    w = disp_find_wconn(d, (pid_t)pid);
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
        disp_send_load(d, w);
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
        disp_store_desired(c, call);
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
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            log_warning("ignoring malformed message from the manager: %s", strerror(errno));
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
            disp_on_state(d, msg);
        } else if (strcmp(ev, "attach") == 0) {
            on_attach(d, msg, fd);
            fd = -1;
        } else if (strcmp(ev, "hello") == 0) {
            disp_on_hello(d, msg);
        }
        if (fd >= 0)
            close(fd);
        cJSON_Delete(msg);
    }
}

static void process_worker(struct dispatcher *d, struct wconn *w)
{
    for (;;) {
        cJSON *msg = NULL;
        int r = msg_recv(w->fd, &msg, NULL);
        const char *t;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            log_warning("ignoring malformed message from worker %d: %s", (int)w->pid,
                        strerror(errno));
            continue;
        }
        if (r <= 0) {
            /* The process is gone (the manager reports how); its runs' leases
             * are freed here once runs exist. */
            log_debug("worker %d (project %s) disconnected", (int)w->pid, w->project);
            disp_drop_wconn(d, w, 1);
            return;
        }
        t = ju_str(msg, "t");
        if (t != NULL && strcmp(t, "hb") == 0)
            disp_on_heartbeat(d, w);
        else if (t != NULL && strcmp(t, "hello") == 0)
            disp_on_worker_hello(d, w, msg);
        else
            log_debug("ignoring message %s from worker %d", t != NULL ? t : "(untyped)",
                      (int)w->pid);
        cJSON_Delete(msg);
    }
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
    d->next_reap = ju_mono_ms() + REAP_INTERVAL_MS;

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
                    disp_flush_heartbeats(d);
                    d->next_flush = now + c->cfg->heartbeat_ms;
                }
                if (now >= d->next_reap) {
                    disp_reap_stale_rows(d);
                    d->next_reap = now + REAP_INTERVAL_MS;
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
    disp_mark_stopped(d);
    while (d->wconns != NULL)
        disp_drop_wconn(d, d->wconns, 0);
    art_gc_all(c->rundir); /* no worker of ours is left to use them */
    close(d->sigfd);
    close(d->epfd);
    close(d->timerfd);
    return d->rc;
}
