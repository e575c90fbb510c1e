/*
 * mgrlink.c: see mgrlink.h.
 *
 * Waiting requests are a list of small records, each with a loop timer for
 * its deadline; a request leaves the list before its done is called, so a
 * done that sends another request (or frees its caller) is safe. The
 * manager is trusted, so its messages are read without a rate limit, but
 * still with a per-turn budget and never blocking.
 */
#include "mgrlink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "chan.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"

#define ML_READ_BUDGET 256

struct ml_wait {
    struct mgrlink *ml;
    uint64_t id;
    mgrlink_done_fn done;
    void *arg;
    struct loop_timer timer;
    struct ml_wait *next;
};

struct mgrlink {
    struct loop *loop;
    struct chan *ch;
    struct loop_watch watch;
    struct mgrlink_events ev;
    struct ml_wait *waits;
    uint64_t next_id;
    int gone;
};

/* Takes w off the list (it may already be off). */
static void unlist(struct mgrlink *ml, struct ml_wait *w)
{
    for (struct ml_wait **pp = &ml->waits; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

/* Answers w with reply (NULL: none came) and frees it. */
static void answer(struct mgrlink *ml, struct ml_wait *w, const cJSON *reply)
{
    unlist(ml, w);
    loop_timer_cancel(ml->loop, &w->timer);
    w->done(w->arg, reply);
    free(w);
}

static void on_deadline(void *arg)
{
    struct ml_wait *w = arg;

    answer(w->ml, w, NULL);
}

void mgrlink_cancel_all(struct mgrlink *ml)
{
    while (ml->waits != NULL)
        answer(ml, ml->waits, NULL);
}

static void update_interest(struct mgrlink *ml)
{
    uint32_t want = EPOLLIN | (chan_wants_write(ml->ch) ? EPOLLOUT : 0);

    if (!ml->gone && loop_mod(ml->loop, &ml->watch, want) < 0)
        log_error("could not watch the manager's socket: %s", strerror(errno));
}

/* The manager is gone (or unusable): stop watching, tell core. */
static void lost(struct mgrlink *ml, const char *why)
{
    if (ml->gone)
        return;
    ml->gone = 1;
    log_info("the manager is gone (%s); stopping", why);
    loop_del(ml->loop, &ml->watch);
    mgrlink_cancel_all(ml);
    if (ml->ev.gone != NULL)
        ml->ev.gone(ml->ev.arg);
}

/* Sends msg with pass_fd; 0, or -1 with the link declared lost. */
static int send_msg(struct mgrlink *ml, const cJSON *msg, int pass_fd)
{
    if (ml->gone) {
        errno = EPIPE;
        return -1;
    }
    if (chan_send(ml->ch, msg, pass_fd) < 0) {
        int e = errno;
        log_error("could not send a message to the manager: %s", strerror(e));
        /* A manager that lets its queue overflow is as good as gone. */
        if (e != EMSGSIZE && e != ENOMEM)
            lost(ml, strerror(e));
        errno = e;
        return -1;
    }
    update_interest(ml);
    return 0;
}

int mgrlink_request(struct mgrlink *ml, cJSON *req, int pass_fd, int timeout_ms,
                    mgrlink_done_fn done, void *arg)
{
    struct ml_wait *w = NULL;
    int rc;

    if (req == NULL)
        return -1;
    if (done != NULL) {
        w = calloc(1, sizeof(*w));
        if (w == NULL) {
            cJSON_Delete(req);
            return -1;
        }
        w->ml = ml;
        w->id = ++ml->next_id;
        w->done = done;
        w->arg = arg;
    }
    cJSON_AddNumberToObject(req, "req", w != NULL ? (double)w->id : 0);
    rc = send_msg(ml, req, pass_fd);
    cJSON_Delete(req);
    if (rc < 0) {
        free(w);
        return -1;
    }
    if (w != NULL) {
        w->next = ml->waits;
        ml->waits = w;
        loop_timer_set(ml->loop, &w->timer, loop_now(ml->loop) + timeout_ms, on_deadline, w);
    }
    return 0;
}

int mgrlink_project_op(struct mgrlink *ml, const char *op, const char *project, int timeout_ms,
                       mgrlink_done_fn done, void *arg)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "op", op) == NULL ||
        cJSON_AddStringToObject(o, "project", project) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    return mgrlink_request(ml, o, -1, timeout_ms, done, arg);
}

/* Sends {"op":op}. Returns 0 or -1. */
static int send_op(struct mgrlink *ml, const char *op)
{
    cJSON *o = cJSON_CreateObject();
    int rc;

    if (o == NULL || cJSON_AddStringToObject(o, "op", op) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    rc = send_msg(ml, o, -1);
    cJSON_Delete(o);
    return rc;
}

int mgrlink_hello(struct mgrlink *ml)
{
    return send_op(ml, "hello");
}

int mgrlink_ready(struct mgrlink *ml)
{
    return send_op(ml, "ready");
}

void mgrlink_kill(struct mgrlink *ml, const char *project, pid_t pid, const char *reason)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "op", "kill") == NULL ||
        cJSON_AddStringToObject(o, "project", project) == NULL ||
        cJSON_AddNumberToObject(o, "pid", (double)pid) == NULL ||
        cJSON_AddStringToObject(o, "reason", reason) == NULL || send_msg(ml, o, -1) < 0)
        log_error("could not ask the manager to kill worker %d of project %s", (int)pid, project);
    cJSON_Delete(o);
}

static void dispatch(struct mgrlink *ml, cJSON *msg, int fd)
{
    const char *ev = ju_str(msg, "ev");
    int64_t req;

    if (ev == NULL) {
        log_warning("ignoring untyped message from the manager");
    } else if (strcmp(ev, "reply") == 0 && ju_int(msg, "req", &req) == 0) {
        for (struct ml_wait *w = ml->waits; w != NULL; w = w->next) {
            if (w->id == (uint64_t)req) {
                answer(ml, w, msg);
                break;
            }
        }
        /* no waiter: an autostart, or a call that timed out */
    } else if (strcmp(ev, "state") == 0) {
        ml->ev.state(ml->ev.arg, msg);
    } else if (strcmp(ev, "attach") == 0) {
        ml->ev.attach(ml->ev.arg, msg, fd);
        fd = -1;
    } else if (strcmp(ev, "hello") == 0) {
        ml->ev.hello(ml->ev.arg, msg);
    } else {
        log_warning("ignoring message \"%.32s\" from the manager", ev);
    }
    if (fd >= 0)
        close(fd);
}

static void on_io(void *arg, uint32_t events)
{
    struct mgrlink *ml = arg;

    if (events & EPOLLOUT) {
        if (chan_flush(ml->ch, loop_now(ml->loop)) < 0) {
            lost(ml, strerror(errno));
            return;
        }
        update_interest(ml);
    }
    for (int i = 0; i < ML_READ_BUDGET && !ml->gone; i++) {
        cJSON *msg = NULL;
        int fd = -1;
        int r = chan_recv(ml->ch, &msg, &fd);

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            log_warning("ignoring a malformed message from the manager");
            continue;
        }
        if (r <= 0) {
            lost(ml, r == 0 ? "end of file" : strerror(errno));
            return;
        }
        dispatch(ml, msg, fd);
        cJSON_Delete(msg);
    }
}

struct mgrlink *mgrlink_new(struct loop *l, int fd, const struct mgrlink_events *ev)
{
    struct mgrlink *ml = calloc(1, sizeof(*ml));

    if (ml == NULL) {
        log_error("could not set up the manager link: out of memory");
        return NULL;
    }
    ml->loop = l;
    ml->ev = *ev;
    ml->ch = chan_new(fd, NULL);
    if (ml->ch == NULL || loop_add(l, &ml->watch, fd, EPOLLIN, on_io, ml) < 0) {
        log_error("could not set up the manager link: %s", strerror(errno));
        if (ml->ch != NULL)
            chan_free(ml->ch); /* closes fd */
        else
            close(fd);
        free(ml);
        return NULL;
    }
    return ml;
}

void mgrlink_free(struct mgrlink *ml)
{
    if (ml == NULL)
        return;
    mgrlink_cancel_all(ml);
    loop_del(ml->loop, &ml->watch);
    chan_free(ml->ch);
    free(ml);
}
