/*
 * supervise.c: worker slots and their state machine.
 *
 * A slot is a project this host keeps a worker for. Its current process
 * (cur) is starting or running; during a hot restart a replacement (repl)
 * starts beside it and takes over once ready, and the old process drains.
 * Calls from core (start/stop/restart) wait in the slot's waiter lists until
 * the outcome is known: a start is answered when the worker reports ready or
 * fails, a stop when the process is gone.
 *
 * Every change of a slot is sent to core as a "state" event (core mirrors it
 * in memory and in workflow_workers); processes that are no longer a slot's
 * cur (drained old ones) produce no events.
 *
 * Invariants: a proc is on m->procs from fork until reaped, then on m->dead
 * until the next loop iteration (an epoll batch may still point at it); a
 * slot's cur/repl always point at live procs; waiters are answered exactly
 * once, or dropped when the core that sent them is gone.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "manager.h"
#include "msg.h"

static const char *slot_key(const void *item)
{
    return ((const struct mgr_slot *)item)->project;
}

static const char *slot_status(const struct mgr_slot *s)
{
    switch (s->state) {
    case SLOT_STARTING:
        return "starting";
    case SLOT_RUNNING:
        return "running";
    case SLOT_STOPPING:
        return "draining";
    case SLOT_BACKOFF:
        return s->crash_restart ? "crashed" : "starting";
    case SLOT_FAILED:
        return "failed";
    }
    return "unknown";
}

static cJSON *slot_snapshot(const struct mgr_slot *s, const char *status)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "project", s->project);
    cJSON_AddStringToObject(o, "worker_id", s->worker_id);
    cJSON_AddStringToObject(o, "status", status != NULL ? status : slot_status(s));
    cJSON_AddNumberToObject(o, "pid", s->cur != NULL ? s->cur->pid : s->last_pid);
    cJSON_AddNumberToObject(o, "restarts", s->restarts);
    cJSON_AddNumberToObject(o, "started_at", (double)s->started_wall);
    if (s->error[0] != '\0')
        cJSON_AddStringToObject(o, "error", s->error);
    return o;
}

/* Tells core about a slot change; status NULL means the slot's own. */
static void send_state(struct mgr *m, const struct mgr_slot *s, const char *status)
{
    cJSON *o = slot_snapshot(s, status);

    cJSON_AddStringToObject(o, "ev", "state");
    mgr_core_send(m, o, -1);
    cJSON_Delete(o);
}

static void reply(struct mgr *m, uint64_t req, const char *code, const struct mgr_slot *s,
                  const char *error)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "ev", "reply");
    cJSON_AddNumberToObject(o, "req", (double)req);
    cJSON_AddBoolToObject(o, "ok", error == NULL);
    cJSON_AddStringToObject(o, "code", code);
    if (error != NULL)
        cJSON_AddStringToObject(o, "error", error);
    if (s != NULL) {
        cJSON_AddStringToObject(o, "worker_id", s->worker_id);
        if (s->cur != NULL)
            cJSON_AddNumberToObject(o, "pid", s->cur->pid);
    }
    mgr_core_send(m, o, -1);
    cJSON_Delete(o);
}

static void waiters_add(struct mgr *m, struct mgr_waiters *w, uint64_t id, const char *code)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        struct mgr_waiter *items = realloc(w->items, cap * sizeof(*items));
        if (items == NULL) {
            reply(m, id, "failed", NULL, "out of memory");
            return;
        }
        w->items = items;
        w->cap = cap;
    }
    w->items[w->n].id = id;
    w->items[w->n].code = code;
    w->n++;
}

/* Answers every waiter: with its own success code if error is NULL, else with
 * err_code and error. Empties the list. */
static void waiters_done(struct mgr *m, struct mgr_waiters *w, const struct mgr_slot *s,
                         const char *err_code, const char *error)
{
    for (size_t i = 0; i < w->n; i++)
        reply(m, w->items[i].id, error == NULL ? w->items[i].code : err_code, s, error);
    w->n = 0;
}

static void waiters_free(struct mgr_waiters *w)
{
    free(w->items);
    memset(w, 0, sizeof(*w));
}

static struct mgr_slot *slot_new(struct mgr *m, const char *project)
{
    struct mgr_slot *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    snprintf(s->project, sizeof(s->project), "%s", project);
    snprintf(s->worker_id, sizeof(s->worker_id), "%s:%s", m->cfg->host_id, project);
    s->state = SLOT_BACKOFF;
    m->slots.key_of = slot_key;
    if (idmap_put(&m->slots, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void slot_remove(struct mgr *m, struct mgr_slot *s)
{
    idmap_del(&m->slots, s->project);
    waiters_free(&s->start_waiters);
    waiters_free(&s->restart_waiters);
    waiters_free(&s->stop_waiters);
    free(s);
}

static struct mgr_proc *find_proc(struct mgr *m, pid_t pid)
{
    for (struct mgr_proc *p = m->procs; p != NULL; p = p->next) {
        if (p->pid == pid)
            return p;
    }
    return NULL;
}

/* Hands a worker a fresh socket to the current core (if one is attached);
 * fresh: the process was just spawned and has no code yet. */
static void attach_to_core(struct mgr *m, struct mgr_proc *p, int core_end, int fresh)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "ev", "attach");
    cJSON_AddBoolToObject(o, "fresh", fresh);
    cJSON_AddStringToObject(o, "project", p->project);
    cJSON_AddNumberToObject(o, "pid", p->pid);
    cJSON_AddBoolToObject(o, "draining", p->state == PROC_DRAINING);
    mgr_core_send(m, o, core_end);
    cJSON_Delete(o);
}

/* Forks and execs a worker for slot s. Returns the proc, or NULL (logged). */
static struct mgr_proc *proc_spawn(struct mgr *m, struct mgr_slot *s)
{
    int ctl[2], work[2];
    struct mgr_proc *p;
    pid_t pid;

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_error("could not start worker for project %s: out of memory", s->project);
        return NULL;
    }
    if (msg_socketpair(ctl) < 0) {
        log_error("could not create worker sockets: %s", strerror(errno));
        free(p);
        return NULL;
    }
    if (msg_socketpair(work) < 0) {
        log_error("could not create worker sockets: %s", strerror(errno));
        close(ctl[0]);
        close(ctl[1]);
        free(p);
        return NULL;
    }
    pid = spawn_worker(m, s->project, s->worker_id, ctl[1], work[1]);
    close(ctl[1]);
    close(work[1]);
    if (pid < 0) {
        log_error("could not start a worker for project %s: %s", s->project, strerror(errno));
        close(ctl[0]);
        close(work[0]);
        free(p);
        return NULL;
    }
    p->pid = pid;
    p->ctl = mgr_chan(ctl[0]);
    p->ctl_fd = p->ctl != NULL ? ctl[0] : -1;
    p->state = PROC_STARTING;
    p->watch.kind = MW_WORKER;
    p->watch.ptr = p;
    snprintf(p->project, sizeof(p->project), "%s", s->project);
    p->spawned_mono = ju_mono_ms();
    p->spawned_wall = ju_wall_ms();
    p->deadline = p->spawned_mono + m->cfg->start_timeout_ms;
    p->next = m->procs;
    m->procs = p;
    if (p->ctl_fd >= 0 && mgr_watch_fd(m, p->ctl_fd, &p->watch) < 0)
        log_error("could not watch worker socket: %s", strerror(errno));
    attach_to_core(m, p, work[0], 1);
    close(work[0]); /* core has its own copy now, or there is no core yet */
    log_info("started worker for project %s (pid %d)", s->project, (int)pid);
    return p;
}

/* SIGKILL to the worker's whole process group (it leads one: spawn.c), so
 * whatever it forked and left in the group goes with it. */
static void proc_kill_group(struct mgr_proc *p)
{
    if (kill(-p->pid, SIGKILL) < 0 && errno == ESRCH)
        (void)kill(p->pid, SIGKILL);
}

/* Asks a process to drain and stop; SIGKILL follows at its deadline. */
static void proc_term(struct mgr *m, struct mgr_proc *p)
{
    if (p->state == PROC_DRAINING)
        return;
    p->state = PROC_DRAINING;
    p->deadline = ju_mono_ms() + m->cfg->drain_timeout_ms;
    if (kill(p->pid, SIGTERM) < 0)
        log_warning("could not signal worker %d: %s", (int)p->pid, strerror(errno));
}

/* Spawns the slot's current process. On fork failure the slot waits 60 s
 * (s6) and the waiting start calls fail. */
static void slot_start(struct mgr *m, struct mgr_slot *s, int crash_restart)
{
    struct mgr_proc *p = proc_spawn(m, s);

    if (p == NULL) {
        s->state = SLOT_BACKOFF;
        s->crash_restart = 1;
        s->restart_at = ju_mono_ms() + 60000;
        snprintf(s->error, sizeof(s->error), "could not start worker process");
        send_state(m, s, NULL);
        waiters_done(m, &s->start_waiters, s, "failed", s->error);
        return;
    }
    if (crash_restart)
        s->restarts++;
    s->cur = p;
    s->state = SLOT_STARTING;
    s->crash_restart = 0;
    s->started_wall = p->spawned_wall;
    s->last_spawn = p->spawned_mono;
    s->last_pid = p->pid;
    send_state(m, s, NULL);
}

/* A start call for a slot without a process: spawn at the top of the next
 * loop iteration, but never sooner than BO_FLOOR_MS after the last spawn. */
static void slot_request_start(struct mgr_slot *s)
{
    int64_t now = ju_mono_ms();

    if (s->state == SLOT_FAILED) {
        bo_reset(&s->bo);
        s->error[0] = '\0';
    }
    s->state = SLOT_BACKOFF;
    s->crash_restart = 0;
    s->restart_at = now;
    if (s->last_spawn > 0 && s->last_spawn + BO_FLOOR_MS > now)
        s->restart_at = s->last_spawn + BO_FLOOR_MS;
}

void sv_request(struct mgr *m, const char *op, uint64_t req, const char *project)
{
    struct mgr_slot *s = idmap_get(&m->slots, project);
    char err[256];

    if (m->shutting_down) {
        reply(m, req, "shutdown", NULL, "server is shutting down");
        return;
    }
    if (strcmp(op, "stop") == 0) {
        if (s == NULL) {
            reply(m, req, "not_running", NULL, NULL);
            return;
        }
        switch (s->state) {
        case SLOT_STARTING:
        case SLOT_RUNNING:
            snprintf(err, sizeof(err), "worker for project \"%s\" was stopped before ready",
                     project);
            waiters_done(m, &s->start_waiters, s, "conflict", err);
            waiters_done(m, &s->restart_waiters, s, "conflict", err);
            if (s->repl != NULL) {
                proc_term(m, s->repl);
                s->repl = NULL;
            }
            proc_term(m, s->cur);
            s->state = SLOT_STOPPING;
            waiters_add(m, &s->stop_waiters, req, "stopped");
            send_state(m, s, NULL);
            log_info("stopping worker for project %s (pid %d)", project, (int)s->cur->pid);
            return;
        case SLOT_STOPPING:
            waiters_add(m, &s->stop_waiters, req, "stopped");
            return;
        case SLOT_BACKOFF:
        case SLOT_FAILED:
            snprintf(err, sizeof(err), "worker for project \"%s\" was stopped before ready",
                     project);
            waiters_done(m, &s->start_waiters, s, "conflict", err);
            send_state(m, s, "stopped");
            reply(m, req, "stopped", s, NULL);
            slot_remove(m, s);
            return;
        }
        return;
    }
    if (strcmp(op, "start") != 0 && strcmp(op, "restart") != 0) {
        reply(m, req, "bad_request", NULL, "unknown operation");
        return;
    }
    if (s == NULL) {
        s = slot_new(m, project);
        if (s == NULL) {
            reply(m, req, "failed", NULL, "out of memory");
            return;
        }
    }
    switch (s->state) {
    case SLOT_STARTING:
        waiters_add(m, &s->start_waiters, req, op[0] == 'r' ? "started_fresh" : "started");
        return;
    case SLOT_RUNNING:
        if (op[0] == 's') {
            reply(m, req, "already_running", s, NULL);
            return;
        }
        if (s->repl == NULL) {
            s->repl = proc_spawn(m, s);
            if (s->repl == NULL) {
                reply(m, req, "failed", s, "could not start the new worker process");
                return;
            }
            log_info("restarting worker for project %s: new pid %d, old pid %d", project,
                     (int)s->repl->pid, (int)s->cur->pid);
        }
        waiters_add(m, &s->restart_waiters, req, "restarted");
        return;
    case SLOT_STOPPING:
        snprintf(err, sizeof(err), "worker for project \"%s\" is stopping", project);
        reply(m, req, "conflict", s, err);
        return;
    case SLOT_BACKOFF:
    case SLOT_FAILED:
        waiters_add(m, &s->start_waiters, req, op[0] == 'r' ? "started_fresh" : "started");
        slot_request_start(s);
        return;
    }
}

/* The worker p reported ready. */
static void proc_ready(struct mgr *m, struct mgr_proc *p)
{
    struct mgr_slot *s = idmap_get(&m->slots, p->project);

    if (p->state != PROC_STARTING)
        return;
    p->state = PROC_RUNNING;
    p->ready_mono = ju_mono_ms();
    p->deadline = 0;
    if (s == NULL)
        return;
    if (s->cur == p) {
        s->state = SLOT_RUNNING;
        s->error[0] = '\0';
        send_state(m, s, NULL);
        waiters_done(m, &s->start_waiters, s, NULL, NULL);
        log_info("worker for project %s is ready (pid %d, %lld ms)", p->project, (int)p->pid,
                 (long long)(p->ready_mono - p->spawned_mono));
    } else if (s->repl == p) {
        struct mgr_proc *old = s->cur;
        s->cur = p;
        s->repl = NULL;
        s->started_wall = p->spawned_wall;
        s->last_pid = p->pid;
        s->error[0] = '\0';
        proc_term(m, old);
        send_state(m, s, NULL);
        waiters_done(m, &s->restart_waiters, s, NULL, NULL);
        log_info("worker for project %s restarted: pid %d is ready, pid %d draining", p->project,
                 (int)p->pid, (int)old->pid);
    }
}

/* The worker p could not load its project's code; it exits 1 by itself. */
static void proc_load_error(struct mgr *m, struct mgr_proc *p, const char *error, int transient)
{
    struct mgr_slot *s = idmap_get(&m->slots, p->project);
    char msg[600];

    if (transient && s != NULL && s->cur == p) {
        /* Not the code's fault (core could not read it: the database is
         * down, say): answer the callers now; the exit that follows is
         * retried with backoff, and not counted towards the crash-loop
         * breaker (an outage must not leave projects failed). */
        log_error("worker for project %s (pid %d) could not get its code: %s", p->project,
                  (int)p->pid, error);
        p->load_outage = 1;
        snprintf(p->error, sizeof(p->error), "%s", error);
        snprintf(s->error, sizeof(s->error), "%s", error);
        send_state(m, s, NULL);
        waiters_done(m, &s->start_waiters, s, "failed", s->error);
        return;
    }
    p->load_failed = 1;
    snprintf(p->error, sizeof(p->error), "%s", error);
    p->state = PROC_DRAINING;
    p->deadline = ju_mono_ms() + m->cfg->drain_timeout_ms;
    log_error("worker for project %s (pid %d) could not load its code: %s", p->project, (int)p->pid,
              error);
    if (s == NULL)
        return;
    if (s->cur == p) {
        s->cur = NULL;
        s->state = SLOT_FAILED;
        snprintf(s->error, sizeof(s->error), "%s", error);
        send_state(m, s, NULL);
        waiters_done(m, &s->start_waiters, s, "failed", s->error);
    } else if (s->repl == p) {
        s->repl = NULL;
        snprintf(msg, sizeof(msg), "%s; the previous worker keeps running", error);
        /* Shown in status and the row until the next successful (re)start. */
        snprintf(s->error, sizeof(s->error), "restart failed: %s", error);
        send_state(m, s, NULL);
        waiters_done(m, &s->restart_waiters, s, "failed", msg);
    }
}

/* Closes p's control channel (the worker is exiting or misbehaving). */
static void proc_close_ctl(struct mgr_proc *p)
{
    if (p->ctl != NULL) {
        chan_free(p->ctl); /* closes the socket: also removes it from epoll */
        p->ctl = NULL;
        p->ctl_fd = -1;
    }
}

/* Sends msg (plus pass_fd) on p's control channel; a worker that lets the
 * queue overflow is killed (it has stopped reading). */
static int proc_send(struct mgr *m, struct mgr_proc *p, const cJSON *msg, int pass_fd)
{
    if (p->ctl == NULL)
        return -1;
    if (chan_send(p->ctl, msg, pass_fd) < 0) {
        int e = errno;
        if (e == ENOBUFS) {
            log_warning("worker %d stopped reading its control socket; killing it", (int)p->pid);
            snprintf(p->reset, sizeof(p->reset), "it stopped reading its control socket");
            proc_kill_group(p);
            p->killed = 1;
        }
        errno = e;
        return -1;
    }
    mgr_watch_out(m, &p->watch, chan_wants_write(p->ctl));
    return 0;
}

void sv_worker_writable(struct mgr *m, struct mgr_proc *p)
{
    if (p->ctl == NULL)
        return;
    if (chan_flush(p->ctl, ju_mono_ms()) < 0) {
        proc_close_ctl(p);
        return;
    }
    mgr_watch_out(m, &p->watch, chan_wants_write(p->ctl));
}

void sv_kill(struct mgr *m, const char *project, pid_t pid, const char *reason)
{
    struct mgr_proc *p = find_proc(m, pid);

    if (p == NULL || strcmp(p->project, project) != 0) {
        log_debug("core asked to kill worker %d of project %s, which is gone", (int)pid, project);
        return;
    }
    if (p->killed)
        return;
    log_warning("killing worker %d of project %s at core's request: %s", (int)pid, project, reason);
    snprintf(p->reset, sizeof(p->reset), "%s", reason);
    proc_kill_group(p);
    p->killed = 1;
}

/* A worker's messages: at most a budget per readiness event. A malformed
 * one ends the channel (the worker cannot talk to us any more and is
 * killed: a worker that garbles its control socket is not trusted). */
void sv_worker_message(struct mgr *m, struct mgr_proc *p)
{
    for (int i = 0; i < 64 && p->ctl != NULL; i++) {
        cJSON *msg = NULL;
        int r = chan_recv(p->ctl, &msg, NULL);
        const char *t;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            log_warning("worker %d sent a malformed control message; killing it", (int)p->pid);
            snprintf(p->reset, sizeof(p->reset), "it sent a malformed control message");
            proc_close_ctl(p);
            proc_kill_group(p);
            p->killed = 1;
            return;
        }
        if (r <= 0) {
            /* The worker is exiting; the reaper does the rest. */
            proc_close_ctl(p);
            return;
        }
        t = ju_str(msg, "t");
        if (t == NULL)
            log_warning("ignoring message without type from worker %d", (int)p->pid);
        else if (strcmp(t, "ready") == 0)
            proc_ready(m, p);
        else if (strcmp(t, "load_error") == 0)
            proc_load_error(m, p,
                            ju_str(msg, "error") != NULL ? ju_str(msg, "error") : "load failed",
                            ju_bool(msg, "transient"));
        else if (strcmp(t, "draining") == 0)
            log_debug("worker %d is draining", (int)p->pid);
        cJSON_Delete(msg);
    }
}

/* The current process of s died without being asked to. */
static void slot_crashed(struct mgr *m, struct mgr_slot *s, struct mgr_proc *p, const char *desc)
{
    int64_t now = ju_mono_ms();
    char err[700];
    int was_starting = p->state == PROC_STARTING;

    s->cur = NULL;
    if (s->repl != NULL) {
        /* A replacement is already starting: it becomes the current one. */
        log_error("worker for project %s (pid %d) %s; its replacement (pid %d) takes over",
                  s->project, (int)p->pid, desc, (int)s->repl->pid);
        s->cur = s->repl;
        s->repl = NULL;
        s->state = SLOT_STARTING;
        for (size_t i = 0; i < s->restart_waiters.n; i++)
            waiters_add(m, &s->start_waiters, s->restart_waiters.items[i].id, "restarted");
        s->restart_waiters.n = 0;
        snprintf(s->error, sizeof(s->error), "worker %s", desc);
        send_state(m, s, NULL);
        return;
    }
    if (p->load_outage) {
        bo_on_outage(&s->bo, now, p->spawned_mono, &s->restart_at);
        s->state = SLOT_BACKOFF;
        s->crash_restart = 1;
        snprintf(s->error, sizeof(s->error), "waiting for its code: %.480s", p->error);
        log_warning("worker for project %s could not get its code; trying again in %lld ms",
                    s->project, (long long)(s->restart_at - now));
    } else if (bo_on_crash(&s->bo, now, p->spawned_mono, p->ready_mono, &s->restart_at)) {
        s->state = SLOT_FAILED;
        snprintf(s->error, sizeof(s->error), "crash loop: %d crashes within %d s; last: worker %s",
                 BO_BREAKER_CRASHES, BO_BREAKER_WINDOW_MS / 1000, desc);
        log_error("project %s failed: %s; not restarting until the next start call", s->project,
                  s->error);
    } else {
        s->state = SLOT_BACKOFF;
        s->crash_restart = 1;
        snprintf(s->error, sizeof(s->error), "worker %s", desc);
        log_error("worker for project %s (pid %d) %s; restarting in %lld ms", s->project,
                  (int)p->pid, desc, (long long)(s->restart_at - now));
    }
    /* State first: a caller answered next may look at the status at once. */
    send_state(m, s, NULL);
    if (was_starting) {
        snprintf(err, sizeof(err), "worker for project \"%s\" exited before ready: %s", s->project,
                 desc);
        waiters_done(m, &s->start_waiters, s, "failed", err);
    }
}

int sv_reaped(struct mgr *m, pid_t pid, int wstatus)
{
    struct mgr_proc *p = find_proc(m, pid);
    struct mgr_slot *s;
    char desc[300];
    char err[700];

    if (p == NULL)
        return 0;
    /* Whatever it left in its process group goes with it. */
    if (kill(-pid, SIGKILL) == 0)
        log_info("killed what worker %d of project %s left in its process group", (int)pid,
                 p->project);
    bo_classify(wstatus, desc, sizeof(desc));
    if (p->killed && p->state == PROC_STARTING)
        snprintf(desc, sizeof(desc), "was not ready within %d ms", m->cfg->start_timeout_ms);
    proc_close_ctl(p);
    if (p->reset[0] != '\0')
        snprintf(desc, sizeof(desc), "was killed: %s", p->reset);
    s = idmap_get(&m->slots, p->project);
    if (s != NULL && s->cur == p) {
        if (s->state == SLOT_STOPPING) {
            log_info("worker for project %s (pid %d) stopped: %s", s->project, (int)pid, desc);
            s->cur = NULL;
            send_state(m, s, "stopped");
            waiters_done(m, &s->stop_waiters, s, NULL, NULL);
            slot_remove(m, s);
        } else {
            slot_crashed(m, s, p, desc);
        }
    } else if (s != NULL && s->repl == p) {
        s->repl = NULL;
        snprintf(err, sizeof(err),
                 "new worker for project \"%s\" exited before ready: %s; the previous worker "
                 "keeps running",
                 s->project, desc);
        log_error("%s", err);
        snprintf(s->error, sizeof(s->error), "restart failed: worker %s", desc);
        send_state(m, s, NULL);
        waiters_done(m, &s->restart_waiters, s, "failed", err);
    } else if (p->load_failed) {
        log_debug("worker for project %s (pid %d) %s after its load error", p->project, (int)pid,
                  desc);
    } else {
        log_info("worker for project %s (pid %d) %s", p->project, (int)pid, desc);
    }

    /* Off the live list; freed at the next iteration (see header). */
    for (struct mgr_proc **pp = &m->procs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    p->pid = 0;
    p->next = m->dead;
    m->dead = p;
    return 1;
}

int64_t sv_timers(struct mgr *m, int64_t now)
{
    int64_t next = INT64_MAX;

    while (m->dead != NULL) {
        struct mgr_proc *p = m->dead;
        m->dead = p->next;
        free(p);
    }
    for (struct mgr_proc *p = m->procs; p != NULL; p = p->next) {
        if (p->killed || p->deadline <= 0)
            continue;
        if (now >= p->deadline) {
            if (p->state == PROC_STARTING)
                log_error("worker for project %s (pid %d) was not ready within %d ms; killing it",
                          p->project, (int)p->pid, m->cfg->start_timeout_ms);
            else
                log_warning("worker for project %s (pid %d) did not stop within %d ms; "
                            "sending SIGKILL",
                            p->project, (int)p->pid, m->cfg->drain_timeout_ms);
            proc_kill_group(p);
            p->killed = 1;
        } else if (p->deadline < next) {
            next = p->deadline;
        }
    }
    if (m->shutting_down)
        return next;
    for (size_t i = 0; i < m->slots.n; i++) {
        struct mgr_slot *s = m->slots.items[i];
        if (s->state != SLOT_BACKOFF)
            continue;
        if (now >= s->restart_at) {
            slot_start(m, s, s->crash_restart);
            /* The new process's start deadline counts from now on. */
            if (s->cur != NULL && s->cur->deadline > 0 && s->cur->deadline < next)
                next = s->cur->deadline;
            else if (s->state == SLOT_BACKOFF && s->restart_at < next)
                next = s->restart_at;
        } else if (s->restart_at < next) {
            next = s->restart_at;
        }
    }
    return next;
}

void sv_core_hello(struct mgr *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "workers");

    cJSON_AddStringToObject(o, "ev", "hello");
    cJSON_AddBoolToObject(o, "first", !m->core_started_once);
    for (size_t i = 0; i < m->slots.n; i++)
        ju_append(arr, slot_snapshot(m->slots.items[i], NULL));
    mgr_core_send(m, o, -1);
    cJSON_Delete(o);

    /* Every live worker gets a new socket to this core. */
    for (struct mgr_proc *p = m->procs; p != NULL; p = p->next) {
        int sv[2];
        cJSON *c;

        if (p->ctl == NULL)
            continue;
        if (msg_socketpair(sv) < 0) {
            log_error("could not create worker socket: %s", strerror(errno));
            continue;
        }
        c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "t", "core");
        if (proc_send(m, p, c, sv[1]) < 0)
            log_warning("could not hand worker %d its core socket: %s", (int)p->pid,
                        strerror(errno));
        else
            attach_to_core(m, p, sv[0], 0);
        cJSON_Delete(c);
        close(sv[0]);
        close(sv[1]);
    }
}

void sv_core_lost(struct mgr *m)
{
    /* The requests died with the core that sent them. */
    for (size_t i = 0; i < m->slots.n; i++) {
        struct mgr_slot *s = m->slots.items[i];
        s->start_waiters.n = 0;
        s->restart_waiters.n = 0;
        s->stop_waiters.n = 0;
    }
}

void sv_shutdown(struct mgr *m)
{
    size_t i = 0;

    while (i < m->slots.n) {
        struct mgr_slot *s = m->slots.items[i];
        waiters_done(m, &s->start_waiters, s, "shutdown", "server is shutting down");
        waiters_done(m, &s->restart_waiters, s, "shutdown", "server is shutting down");
        if (s->repl != NULL) {
            proc_term(m, s->repl);
            s->repl = NULL;
        }
        if (s->cur != NULL) {
            proc_term(m, s->cur);
            s->state = SLOT_STOPPING;
            send_state(m, s, NULL);
            i++;
        } else {
            if (s->state != SLOT_FAILED)
                send_state(m, s, "stopped");
            slot_remove(m, s); /* shifts the array: do not advance i */
        }
    }
    for (struct mgr_proc *p = m->procs; p != NULL; p = p->next)
        proc_term(m, p);
}

int sv_is_proc(struct mgr *m, pid_t pid)
{
    return find_proc(m, pid) != NULL;
}

int sv_live_procs(const struct mgr *m)
{
    int n = 0;

    for (const struct mgr_proc *p = m->procs; p != NULL; p = p->next)
        n++;
    return n;
}

void sv_kill_all(struct mgr *m)
{
    for (struct mgr_proc *p = m->procs; p != NULL; p = p->next) {
        proc_kill_group(p);
        p->killed = 1;
    }
}

void sv_free(struct mgr *m)
{
    while (m->slots.n > 0)
        slot_remove(m, m->slots.items[m->slots.n - 1]);
    idmap_free(&m->slots);
    (void)sv_timers(m, 0); /* frees the dead */
    while (m->procs != NULL) {
        struct mgr_proc *p = m->procs;
        m->procs = p->next;
        proc_close_ctl(p);
        free(p);
    }
}
