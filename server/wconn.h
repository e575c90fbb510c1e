/*
 * wconn.h: core's end of each worker's work socket: a non-blocking channel
 * (common/chan.h) per worker, registered in core's loop.
 *
 * Core trusts nothing a worker says. Each worker gets a bounded output
 * queue (a worker that stops reading past WF_WORKER_STALL_MS, does not
 * answer a ping within it, or lets its queue overflow, is reset); a per-turn read budget (one
 * chatty worker cannot starve the others); a message rate limit (WF_WORKER_MSG_RATE per second);
 * and heartbeats counted at most once per half interval. A malformed or unexpected message, or a
 * truncated record, is a protocol error that resets that worker only: its socket is closed and the
 * manager is asked to kill it, with the reason, which reaches its row.
 *
 * Protocol: worker → core {"t":"hello","pid","project","loaded","code"?}
 * once per socket, then {"t":"hb"} every heartbeat interval once loaded;
 * core → worker {"t":"ping","n"} every half WF_WORKER_STALL_MS, answered
 * {"t":"pong","n"} (and the load message of loadcode.h).
 *
 * Loop thread only. A struct wconn lives from attach until the worker's
 * socket closes or it is reset; holders across asynchronous steps keep its
 * id (wconn_id) and look it up again (wconns_find).
 */
#ifndef WF_WCONN_H
#define WF_WCONN_H

#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "config.h"

struct loop;
struct mgrlink;
struct wview;
struct wconns;
struct wconn;

/* Called on the loop thread. hello: the worker's first message on this
 * socket (validated: pid and project match). gone: the socket is about to
 * be freed (worker exited, or reset); w is still valid during the call. */
struct wconns_events {
    void (*hello)(void *arg, struct wconn *w, const cJSON *msg);
    void (*gone)(void *arg, struct wconn *w);
    /* Any other message after the hello ({"t":"ready"}, {"t":"ev"}): returns
     * 0, 1 when the type is unknown (w is then reset here), or -1 when the
     * callee reset w. */
    int (*message)(void *arg, struct wconn *w, const cJSON *msg);
    void *arg;
};

struct wconns *wconns_new(const struct wf_config *cfg, struct loop *l, struct wview *view,
                          struct mgrlink *ml, const struct wconns_events *ev);
/* Closes every socket (each with its gone event) and frees. */
void wconns_free(struct wconns *wc);

/* A new work socket for worker pid of project (takes fd). Returns the
 * connection, or NULL (logged; fd closed). */
struct wconn *wconns_attach(struct wconns *wc, int fd, const char *project, pid_t pid,
                            int draining);

struct wconn *wconns_find(struct wconns *wc, uint64_t id);
struct wconn *wconns_find_pid(struct wconns *wc, pid_t pid);

/* Calls fn for every connection of project (or every one when project is
 * NULL). fn must not free or reset connections. */
void wconns_each(struct wconns *wc, const char *project, void (*fn)(void *arg, struct wconn *w),
                 void *arg);

/* Queues msg for the worker. Returns 0, or -1 after resetting the worker
 * (its queue overflowed or it is gone): w is freed then. */
int wconn_send(struct wconn *w, const cJSON *msg);
/* wconn_send with a descriptor (the caller keeps its own; the channel
 * holds a duplicate while the message waits). */
int wconn_send_fd(struct wconn *w, const cJSON *msg, int pass_fd);

/* Protocol error or give-up: logs, closes the socket, asks the manager to
 * kill the worker with the reason, frees w. */
void wconn_reset(struct wconn *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint64_t wconn_id(const struct wconn *w);
pid_t wconn_pid(const struct wconn *w);
const char *wconn_project(const struct wconn *w);
int wconn_draining(const struct wconn *w);
/* The manager replaced or is stopping this worker: it takes no new runs. */
void wconn_set_draining(struct wconn *w);

/* A pointer the code loader keeps per connection (freed by its owner in
 * the gone event). */
void *wconn_user(const struct wconn *w);
void wconn_set_user(struct wconn *w, void *user);

/* Counters for /metrics (any thread: atomics). */
struct wconns_counts {
    uint64_t resets;
    uint64_t msgs_in;
    uint64_t heartbeats_dropped; /* beyond one per half interval */
};
void wconns_counts(struct wconns *wc, struct wconns_counts *out);

#endif
