/*
 * wconn.c: see wconn.h.
 *
 * Each connection is watched for EPOLLIN always and EPOLLOUT only while its
 * channel has queued records. A readiness event reads at most
 * WC_READ_BUDGET messages; level-triggered epoll reports the rest next
 * turn, after every other ready socket had its share. A sweep timer checks
 * every worker's liveness: its queue must make progress, and a worker whose
 * code is loaded must answer a ping ({"t":"ping","n"} → {"t":"pong","n"})
 * within WF_WORKER_STALL_MS, so a worker that stops reading, or whose loop
 * is wedged, is reset even when core has nothing else to send it. A reset
 * frees the connection at once: callers must not touch w after wconn_send
 * failed or wconn_reset returned.
 */
#include "wconn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "chan.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"
#include "mgrlink.h"
#include "wview.h"

#define WC_READ_BUDGET 64 /* messages per worker per turn */
#define WC_SWEEP_MS 250   /* how often queues are checked for a stall */
#define WC_REASON_MAX 256

struct wconn {
    struct wconns *wc;
    struct loop_watch watch;
    struct chan *ch;
    uint64_t id;
    pid_t pid;
    char project[WF_ID_MAX + 1];
    int draining;
    int said_hello;
    int64_t last_beat; /* monotonic ms of the last heartbeat counted; 0: none yet */
    uint64_t ping_seq; /* the outstanding ping's number (0: none) */
    int64_t ping_at;   /* when it was sent (or, with none, the last one) */
    double tokens;     /* rate limit bucket */
    int64_t tokens_at; /* monotonic ms of the last refill */
    void *user;
    struct wconn *next;
};

struct wconns {
    const struct wf_config *cfg;
    struct loop *loop;
    struct wview *view;
    struct mgrlink *ml;
    struct wconns_events ev;
    struct wconn *head;
    uint64_t next_id;
    uint64_t next_ping;
    struct loop_timer sweep;
    struct chan_limits limits;
    uint64_t resets;   /* __atomic */
    uint64_t msgs_in;  /* __atomic */
    uint64_t hb_drops; /* __atomic */
};

static void on_io(void *arg, uint32_t events);

static void unlink_conn(struct wconns *wc, struct wconn *w)
{
    for (struct wconn **pp = &wc->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

/* Tells the owner, unregisters, closes and frees. */
static void drop(struct wconn *w)
{
    struct wconns *wc = w->wc;

    if (wc->ev.gone != NULL)
        wc->ev.gone(wc->ev.arg, w);
    unlink_conn(wc, w);
    loop_del(wc->loop, &w->watch);
    chan_free(w->ch);
    free(w);
}

void wconn_reset(struct wconn *w, const char *fmt, ...)
{
    char reason[WC_REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    log_warning("resetting worker %d of project %s: %s", (int)w->pid, w->project, reason);
    __atomic_add_fetch(&w->wc->resets, 1, __ATOMIC_RELAXED);
    mgrlink_kill(w->wc->ml, w->project, w->pid, reason);
    drop(w);
}

/* Watches EPOLLOUT exactly while the channel has queued records. */
static void update_interest(struct wconn *w)
{
    uint32_t want = EPOLLIN | (chan_wants_write(w->ch) ? EPOLLOUT : 0);

    if (loop_mod(w->wc->loop, &w->watch, want) < 0)
        log_error("could not watch worker %d: %s", (int)w->pid, strerror(errno));
}

int wconn_send(struct wconn *w, const cJSON *msg)
{
    return wconn_send_fd(w, msg, -1);
}

int wconn_send_fd(struct wconn *w, const cJSON *msg, int pass_fd)
{
    if (chan_send(w->ch, msg, pass_fd) < 0) {
        int e = errno;
        if (e == ENOBUFS)
            wconn_reset(w, "its output queue passed %zu bytes (it stopped reading)",
                        w->wc->limits.max_out_bytes);
        else if (e == EMSGSIZE)
            wconn_reset(w, "a message for it was over %ld bytes", w->wc->cfg->max_message_bytes);
        else
            wconn_reset(w, "could not write to its socket: %s", strerror(e));
        return -1;
    }
    update_interest(w);
    return 0;
}

/* Token bucket: 1 if the worker may send one more message now. */
static int take_token(struct wconn *w, int64_t now)
{
    double rate = (double)w->wc->cfg->worker_msg_rate;

    w->tokens += (double)(now - w->tokens_at) * rate / 1000.0;
    if (w->tokens > rate)
        w->tokens = rate; /* burst: one second's worth */
    w->tokens_at = now;
    if (w->tokens < 1.0)
        return 0;
    w->tokens -= 1.0;
    return 1;
}

static void on_heartbeat(struct wconn *w, int64_t now)
{
    if (w->last_beat != 0 && now - w->last_beat < w->wc->cfg->heartbeat_ms / 2) {
        __atomic_add_fetch(&w->wc->hb_drops, 1, __ATOMIC_RELAXED);
        return;
    }
    w->last_beat = now;
    wview_heartbeat(w->wc->view, w->project, w->pid);
}

/* Handles one message. Returns 0, or -1 if w was reset (freed). */
static int handle(struct wconn *w, const cJSON *msg, int64_t now)
{
    const char *t = ju_str(msg, "t");
    int64_t pid;

    if (t == NULL) {
        wconn_reset(w, "malformed message: no type");
        return -1;
    }
    if (strcmp(t, "hb") == 0 && w->said_hello) {
        on_heartbeat(w, now);
        return 0;
    }
    if (strcmp(t, "pong") == 0 && w->said_hello) {
        int64_t n;
        if (ju_int(msg, "n", &n) == 0 && w->ping_seq != 0 && (uint64_t)n == w->ping_seq)
            w->ping_seq = 0;
        return 0;
    }
    if (strcmp(t, "hello") == 0 && !w->said_hello) {
        const char *project = ju_str(msg, "project");
        if (ju_int(msg, "pid", &pid) < 0 || pid != (int64_t)w->pid || project == NULL ||
            strcmp(project, w->project) != 0) {
            wconn_reset(w, "malformed hello: pid or project does not match its socket");
            return -1;
        }
        w->said_hello = 1;
        if (w->wc->ev.hello != NULL) {
            struct wconns *wc = w->wc; /* w may be freed by the callback */
            uint64_t id = w->id;
            wc->ev.hello(wc->ev.arg, w, msg);
            if (wconns_find(wc, id) == NULL)
                return -1; /* the owner reset it */
        }
        return 0;
    }
    if (w->said_hello && w->wc->ev.message != NULL) {
        int rc = w->wc->ev.message(w->wc->ev.arg, w, msg);
        if (rc <= 0)
            return rc;
    }
    wconn_reset(w, "unexpected message \"%.32s\"%s", t, w->said_hello ? "" : " before its hello");
    return -1;
}

static void on_io(void *arg, uint32_t events)
{
    struct wconn *w = arg;
    int64_t now = loop_now(w->wc->loop);

    if (events & EPOLLOUT) {
        if (chan_flush(w->ch, now) < 0) {
            log_debug("worker %d (project %s) disconnected while we wrote", (int)w->pid,
                      w->project);
            drop(w);
            return;
        }
        update_interest(w);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    for (int i = 0; i < WC_READ_BUDGET; i++) {
        cJSON *msg = NULL;
        int fd = -1;
        int r = chan_recv(w->ch, &msg, &fd);
        int rc;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            wconn_reset(w, "%s",
                        errno == EBADMSG ? "malformed or truncated message"
                                         : "message over the size limit");
            return;
        }
        if (r <= 0) {
            /* The process is gone (the manager reports how). */
            log_debug("worker %d (project %s) disconnected", (int)w->pid, w->project);
            drop(w);
            return;
        }
        if (fd >= 0) {
            close(fd);
            cJSON_Delete(msg);
            wconn_reset(w, "sent a descriptor, which workers never do");
            return;
        }
        __atomic_add_fetch(&w->wc->msgs_in, 1, __ATOMIC_RELAXED);
        if (!take_token(w, now)) {
            cJSON_Delete(msg);
            wconn_reset(w, "sent more than %d messages per second", w->wc->cfg->worker_msg_rate);
            return;
        }
        rc = handle(w, msg, now);
        cJSON_Delete(msg);
        if (rc < 0)
            return;
    }
}

/* Liveness of one worker: a ping unanswered for the stall deadline, or a
 * queue that made no progress that long, resets it; a worker that has sent
 * a heartbeat (its code is loaded, so its loop is free) gets a ping every
 * half deadline. Returns 0, or -1 if w was reset. */
static int check_alive(struct wconn *w, int64_t now)
{
    int stall_ms = w->wc->cfg->worker_stall_ms;
    int64_t stalled = chan_stalled_ms(w->ch, now);
    cJSON *ping;

    if (stalled > stall_ms) {
        wconn_reset(w, "it stopped reading its core socket for %lld ms", (long long)stalled);
        return -1;
    }
    if (w->ping_seq != 0 && now - w->ping_at > stall_ms) {
        wconn_reset(w, "it did not answer core's ping within %d ms", stall_ms);
        return -1;
    }
    if (w->ping_seq != 0 || w->last_beat == 0 || now - w->ping_at < stall_ms / 2)
        return 0;
    ping = cJSON_CreateObject();
    if (ping == NULL || cJSON_AddStringToObject(ping, "t", "ping") == NULL ||
        cJSON_AddNumberToObject(ping, "n", (double)(w->wc->next_ping + 1)) == NULL) {
        cJSON_Delete(ping);
        return 0; /* out of memory: try at the next sweep */
    }
    w->ping_seq = ++w->wc->next_ping;
    w->ping_at = now;
    if (wconn_send(w, ping) < 0) {
        cJSON_Delete(ping);
        return -1;
    }
    cJSON_Delete(ping);
    return 0;
}

static void sweep(void *arg)
{
    struct wconns *wc = arg;
    int64_t now = loop_now(wc->loop);
    struct wconn *w = wc->head;

    loop_timer_set(wc->loop, &wc->sweep, now + WC_SWEEP_MS, sweep, wc);
    while (w != NULL) {
        struct wconn *next = w->next;
        (void)check_alive(w, now);
        w = next;
    }
}

struct wconn *wconns_attach(struct wconns *wc, int fd, const char *project, pid_t pid, int draining)
{
    struct wconn *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        log_error("could not accept worker %d: out of memory", (int)pid);
        close(fd);
        return NULL;
    }
    w->ch = chan_new(fd, &wc->limits);
    if (w->ch == NULL) {
        log_error("could not accept worker %d: %s", (int)pid, strerror(errno));
        close(fd);
        free(w);
        return NULL;
    }
    if (loop_add(wc->loop, &w->watch, fd, EPOLLIN, on_io, w) < 0) {
        log_error("could not watch worker socket: %s", strerror(errno));
        chan_free(w->ch);
        free(w);
        return NULL;
    }
    w->wc = wc;
    w->id = ++wc->next_id;
    w->pid = pid;
    w->draining = draining;
    snprintf(w->project, sizeof(w->project), "%s", project);
    w->tokens = (double)wc->cfg->worker_msg_rate;
    w->tokens_at = loop_now(wc->loop);
    w->next = wc->head;
    wc->head = w;
    return w;
}

struct wconn *wconns_find(struct wconns *wc, uint64_t id)
{
    for (struct wconn *w = wc->head; w != NULL; w = w->next) {
        if (w->id == id)
            return w;
    }
    return NULL;
}

struct wconn *wconns_find_pid(struct wconns *wc, pid_t pid)
{
    for (struct wconn *w = wc->head; w != NULL; w = w->next) {
        if (w->pid == pid)
            return w;
    }
    return NULL;
}

void wconns_each(struct wconns *wc, const char *project, void (*fn)(void *arg, struct wconn *w),
                 void *arg)
{
    for (struct wconn *w = wc->head; w != NULL; w = w->next) {
        if (project == NULL || strcmp(w->project, project) == 0)
            fn(arg, w);
    }
}

uint64_t wconn_id(const struct wconn *w)
{
    return w->id;
}

pid_t wconn_pid(const struct wconn *w)
{
    return w->pid;
}

const char *wconn_project(const struct wconn *w)
{
    return w->project;
}

int wconn_draining(const struct wconn *w)
{
    return w->draining;
}

void wconn_set_draining(struct wconn *w)
{
    w->draining = 1;
}

void *wconn_user(const struct wconn *w)
{
    return w->user;
}

void wconn_set_user(struct wconn *w, void *user)
{
    w->user = user;
}

void wconns_counts(struct wconns *wc, struct wconns_counts *out)
{
    out->resets = __atomic_load_n(&wc->resets, __ATOMIC_RELAXED);
    out->msgs_in = __atomic_load_n(&wc->msgs_in, __ATOMIC_RELAXED);
    out->heartbeats_dropped = __atomic_load_n(&wc->hb_drops, __ATOMIC_RELAXED);
}

struct wconns *wconns_new(const struct wf_config *cfg, struct loop *l, struct wview *view,
                          struct mgrlink *ml, const struct wconns_events *ev)
{
    struct wconns *wc = calloc(1, sizeof(*wc));

    if (wc == NULL)
        return NULL;
    wc->cfg = cfg;
    wc->loop = l;
    wc->view = view;
    wc->ml = ml;
    wc->ev = *ev;
    wc->limits.max_msg_bytes = (size_t)cfg->max_message_bytes;
    wc->limits.max_out_bytes = 2 * (size_t)cfg->max_message_bytes + (1u << 20);
    loop_timer_set(l, &wc->sweep, loop_now(l) + WC_SWEEP_MS, sweep, wc);
    return wc;
}

void wconns_free(struct wconns *wc)
{
    if (wc == NULL)
        return;
    loop_timer_cancel(wc->loop, &wc->sweep);
    while (wc->head != NULL)
        drop(wc->head);
    free(wc);
}
