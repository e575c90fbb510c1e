/*
 * describe.c: deploy-time checks of uploaded plugins (DESIGN §2: the
 * manager is the only process that starts processes).
 *
 * For each upload core sends the plugin's bytes as a sealed memfd; the
 * manager execs the worker program in describe mode (worker/describe.c)
 * with the memfd as fd 3 and a pipe as fd 4, with the same minimal
 * environment as a worker: no database, no credentials. The describer
 * loads the plugin exactly as a worker would and writes one JSON
 * description to the pipe. Its life is bounded: DSC_TIMEOUT_MS after its
 * start it is killed, its output is capped at DSC_OUT_MAX bytes, at most
 * DSC_RUNNING run at once and DSC_QUEUED wait; more is refused at once.
 *
 * States of a describer (struct mgr_describe):
 *   queued   memfd held, no process yet (pid 0, started 0)
 *   running  process alive, output being read (pid > 0)
 *   done     process reaped and output at EOF: the reply is sent; the
 *            record is freed at the next loop iteration (dsc_timers), as
 *            an epoll batch may still name its watch
 * Every request is answered exactly once, with {"ev":"reply","req",
 * "ok":true,"plugin","workflows","activities"} or {"ok":false,"error"}; for
 * a declarative definition also "definition":true and its "errors" (each
 * with its JSON path) or "calls".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"
#include "manager.h"

#define DSC_TIMEOUT_MS 5000
#define DSC_OUT_MAX (1024 * 1024)
#define DSC_RUNNING 4
#define DSC_QUEUED 32

struct mgr_describe {
    struct mgr_watch watch; /* MW_DESCRIBE on out_fd */
    uint64_t req;
    char label[160];
    int memfd;   /* until started */
    pid_t pid;   /* > 0 while the process lives */
    int started; /* a process was started (or failed to start) */
    int reaped;  /* its exit status is in */
    int wstatus;
    int out_fd; /* read end of the output pipe, -1 at EOF */
    char *out;  /* output so far */
    size_t len;
    int truncated;    /* output passed DSC_OUT_MAX */
    int64_t deadline; /* monotonic ms: killed then */
    int timed_out;
    char fail[256]; /* could not start it */
    int finished;   /* answered; freed by the next dsc_timers */
    struct mgr_describe *next;
};

static void release(struct mgr_describe *d)
{
    if (d->memfd >= 0)
        close(d->memfd);
    if (d->out_fd >= 0)
        close(d->out_fd);
    d->memfd = d->out_fd = -1;
    free(d->out);
    d->out = NULL;
}

/* Sends the reply and marks d finished. */
static void reply(struct mgr *m, struct mgr_describe *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *desc = NULL;
    char err[512], how[160];

    cJSON_AddStringToObject(o, "ev", "reply");
    cJSON_AddNumberToObject(o, "req", (double)d->req);
    if (d->fail[0] != '\0') {
        snprintf(err, sizeof(err), "could not check plugin \"%s\": %s", d->label, d->fail);
    } else if (d->timed_out) {
        snprintf(err, sizeof(err), "plugin \"%s\" did not finish loading within %d s", d->label,
                 DSC_TIMEOUT_MS / 1000);
    } else if (WIFSIGNALED(d->wstatus)) {
        bo_classify(d->wstatus, how, sizeof(how));
        snprintf(err, sizeof(err), "plugin \"%s\" crashed while being loaded: %s", d->label, how);
    } else {
        desc = d->out != NULL && !d->truncated ? cJSON_ParseWithLength(d->out, d->len) : NULL;
        if (desc != NULL && cJSON_IsObject(desc) && ju_bool(desc, "ok") && WIFEXITED(d->wstatus) &&
            WEXITSTATUS(d->wstatus) == 0) {
            err[0] = '\0';
        } else if (desc != NULL && ju_str(desc, "error") != NULL) {
            snprintf(err, sizeof(err), "%s", ju_str(desc, "error"));
        } else {
            bo_classify(d->wstatus, how, sizeof(how));
            snprintf(err, sizeof(err), "plugin \"%s\" could not be described (the describer %s)",
                     d->label, how);
        }
    }
    /* A declarative definition's errors and calls go to core as they are
     * (bounded: the describer's output is). */
    if (desc != NULL && ju_bool(desc, "definition")) {
        cJSON_AddBoolToObject(o, "definition", 1);
        if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(desc, "errors")))
            ju_set(o, "errors",
                   cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(desc, "errors"), 1));
        if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(desc, "calls")))
            ju_set(o, "calls", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(desc, "calls"), 1));
    }
    if (err[0] != '\0') {
        cJSON_AddBoolToObject(o, "ok", 0);
        cJSON_AddStringToObject(o, "error", err);
        log_info("upload \"%s\" refused: %s", d->label, err);
    } else {
        cJSON_AddBoolToObject(o, "ok", 1);
        ju_set(o, "plugin", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(desc, "plugin"), 1));
        ju_set(o, "workflows",
               cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(desc, "workflows"), 1));
        ju_set(o, "activities",
               cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(desc, "activities"), 1));
    }
    cJSON_Delete(desc);
    mgr_core_send(m, o, -1);
    cJSON_Delete(o);
    release(d);
    d->finished = 1;
}

/* Answers d if its process is reaped and its output read to the end. */
static void maybe_finish(struct mgr *m, struct mgr_describe *d)
{
    if (!d->finished &&
        ((d->started && d->pid == 0 && d->reaped && d->out_fd < 0) || d->fail[0] != '\0'))
        reply(m, d);
}

/* Starts d's process. On failure d carries the reason in fail. */
static void start(struct mgr *m, struct mgr_describe *d)
{
    int p[2];

    d->started = 1;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(d->fail, sizeof(d->fail), "could not create a pipe: %s", strerror(errno));
        return;
    }
    d->pid = spawn_describer(m, d->label, d->memfd, p[1]);
    close(p[1]);
    close(d->memfd); /* the describer has its own copy */
    d->memfd = -1;
    if (d->pid < 0) {
        snprintf(d->fail, sizeof(d->fail), "could not start the describer: %s", strerror(errno));
        d->pid = 0;
        close(p[0]);
        return;
    }
    d->out_fd = p[0];
    d->watch.kind = MW_DESCRIBE;
    d->watch.ptr = d;
    if (mgr_watch_fd(m, d->out_fd, &d->watch) < 0)
        log_error("could not watch a describer's output: %s", strerror(errno));
    d->deadline = ju_mono_ms() + DSC_TIMEOUT_MS;
    log_debug("describing upload \"%s\" (pid %d)", d->label, (int)d->pid);
}

static int running(const struct mgr *m)
{
    int n = 0;

    for (const struct mgr_describe *d = m->describes; d != NULL; d = d->next)
        n += d->pid > 0;
    return n;
}

static int queued(const struct mgr *m)
{
    int n = 0;

    for (const struct mgr_describe *d = m->describes; d != NULL; d = d->next)
        n += !d->started;
    return n;
}

void dsc_request(struct mgr *m, uint64_t req, const char *label, int memfd)
{
    struct mgr_describe *d = calloc(1, sizeof(*d));

    if (d == NULL || m->shutting_down || queued(m) >= DSC_QUEUED) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ev", "reply");
        cJSON_AddNumberToObject(o, "req", (double)req);
        cJSON_AddBoolToObject(o, "ok", 0);
        cJSON_AddStringToObject(o, "error",
                                m->shutting_down ? "server is shutting down"
                                                 : "too many uploads are being checked; try again");
        mgr_core_send(m, o, -1);
        cJSON_Delete(o);
        close(memfd);
        free(d);
        return;
    }
    d->req = req;
    d->memfd = memfd;
    d->out_fd = -1;
    snprintf(d->label, sizeof(d->label), "%s", label);
    d->next = m->describes;
    m->describes = d;
    if (running(m) < DSC_RUNNING) {
        start(m, d);
        maybe_finish(m, d);
    }
}

void dsc_readable(struct mgr *m, struct mgr_describe *d)
{
    char buf[8192];

    while (!d->finished && d->out_fd >= 0) {
        ssize_t n = read(d->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close(d->out_fd); /* also removes it from epoll */
            d->out_fd = -1;
            break;
        }
        if (d->len + (size_t)n > DSC_OUT_MAX) {
            d->truncated = 1;
            continue; /* drain, keep nothing more */
        }
        {
            char *p = realloc(d->out, d->len + (size_t)n + 1);
            if (p == NULL) {
                d->truncated = 1;
                continue;
            }
            d->out = p;
            memcpy(d->out + d->len, buf, (size_t)n);
            d->len += (size_t)n;
            d->out[d->len] = '\0';
        }
    }
    maybe_finish(m, d);
}

int dsc_reaped(struct mgr *m, pid_t pid, int wstatus)
{
    for (struct mgr_describe *d = m->describes; d != NULL; d = d->next) {
        if (d->pid != pid || d->finished)
            continue;
        d->pid = 0;
        d->reaped = 1;
        d->wstatus = wstatus;
        (void)kill(-pid, SIGKILL); /* anything it left in its group */
        /* A describer that exited leaves its pipe at EOF (or holds it open
         * through a child it forked: its output is taken as it is). */
        if (d->out_fd >= 0)
            dsc_readable(m, d);
        if (d->out_fd >= 0) {
            close(d->out_fd);
            d->out_fd = -1;
        }
        maybe_finish(m, d);
        return 1;
    }
    return 0;
}

int64_t dsc_timers(struct mgr *m, int64_t now)
{
    int64_t next = INT64_MAX;
    int n;

    /* Free the answered ones: no epoll batch names them any more. */
    for (struct mgr_describe **pp = &m->describes; *pp != NULL;) {
        struct mgr_describe *d = *pp;
        if (d->finished) {
            *pp = d->next;
            free(d);
        } else {
            pp = &d->next;
        }
    }
    n = running(m);
    for (struct mgr_describe *d = m->describes; d != NULL;) {
        struct mgr_describe *nx = d->next;
        if (d->pid > 0 && !d->timed_out && now >= d->deadline) {
            log_warning("plugin describer for \"%s\" (pid %d) ran over %d ms; killing it", d->label,
                        (int)d->pid, DSC_TIMEOUT_MS);
            kill(-d->pid, SIGKILL); /* it leads its own process group */
            d->timed_out = 1;
        } else if (d->pid > 0 && !d->timed_out && d->deadline < next) {
            next = d->deadline;
        } else if (!d->started && n < DSC_RUNNING && !m->shutting_down) {
            start(m, d);
            n++;
            if (d->deadline > 0 && d->deadline < next)
                next = d->deadline;
            maybe_finish(m, d);
        }
        d = nx;
    }
    return next;
}

int dsc_is_describer(const struct mgr *m, pid_t pid)
{
    for (const struct mgr_describe *d = m->describes; d != NULL; d = d->next) {
        if (d->pid == pid)
            return 1;
    }
    return 0;
}

int dsc_live(const struct mgr *m)
{
    return running(m);
}

void dsc_kill_all(struct mgr *m)
{
    for (struct mgr_describe *d = m->describes; d != NULL; d = d->next) {
        if (d->pid > 0)
            kill(-d->pid, SIGKILL);
    }
}

void dsc_free(struct mgr *m)
{
    while (m->describes != NULL) {
        struct mgr_describe *d = m->describes;
        m->describes = d->next;
        release(d);
        free(d);
    }
}
