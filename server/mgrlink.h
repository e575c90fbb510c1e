/*
 * mgrlink.h: core's end of its control channel to the manager.
 *
 * Protocol (framed JSON, common/msg.h):
 *   core → manager  {"op":"hello"} once ready;
 *                   {"op":"ready"} once the service is ready (/health/ready
 *                   answers 200), for the service manager's READY=1;
 *                   {"op":"start|stop|restart","req":N,"project"} (req 0: no reply wanted);
 *                   {"op":"describe","req":N} + a sealed memfd holding an uploaded plugin;
 *                   {"op":"kill","project","pid","reason"}: core reset that worker
 *   manager → core  {"ev":"hello","first":bool,"workers":[slot…]};
 *                   {"ev":"attach","project","pid","draining","fresh"} + a work socket;
 *                   {"ev":"state", slot fields}; {"ev":"reply","req":N,"ok",…}
 *
 * Requests wait for their reply with a deadline; each gets exactly one
 * answer: the manager's reply, or NULL on timeout, on shutdown, or when the
 * manager is gone. Events go to the callbacks given at creation. Loop thread
 * only; the channel never blocks (a manager that stops reading is noticed
 * through the queue limit and ends core, as its loss would).
 */
#ifndef WF_MGRLINK_H
#define WF_MGRLINK_H

#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

struct loop;
struct mgrlink;

/* Manager events, called on the loop thread. attach takes ownership of fd. */
struct mgrlink_events {
    void (*hello)(void *arg, const cJSON *ev);
    void (*state)(void *arg, const cJSON *ev);
    void (*attach)(void *arg, const cJSON *ev, int fd);
    void (*gone)(void *arg); /* the manager is gone: core stops */
    void *arg;
};

/* The answer to a request: reply is the manager's (borrowed for the call),
 * or NULL when none came (timed out, core stopping, manager gone). */
typedef void (*mgrlink_done_fn)(void *arg, const cJSON *reply);

/* Takes ownership of fd (the control socket). Returns NULL (logged) on
 * failure. */
struct mgrlink *mgrlink_new(struct loop *l, int fd, const struct mgrlink_events *ev);
/* Answers every waiting request with NULL, then frees. */
void mgrlink_free(struct mgrlink *ml);

/* Sends {"op":"hello"}. Returns 0 or -1. */
int mgrlink_hello(struct mgrlink *ml) __attribute__((warn_unused_result));

/* Sends {"op":"ready"}. Returns 0 or -1. */
int mgrlink_ready(struct mgrlink *ml) __attribute__((warn_unused_result));

/*
 * Sends req (taken: {"op":…,…}; "req":N is added) plus pass_fd when >= 0
 * (the caller keeps its descriptor), and calls done once with the reply or
 * NULL after timeout_ms. done NULL: no reply wanted ("req":0). Returns 0;
 * -1 when the request could not be sent (done is then not called).
 */
int mgrlink_request(struct mgrlink *ml, cJSON *req, int pass_fd, int timeout_ms,
                    mgrlink_done_fn done, void *arg) __attribute__((warn_unused_result));

/* mgrlink_request of {"op":op,"project":project}. */
int mgrlink_project_op(struct mgrlink *ml, const char *op, const char *project, int timeout_ms,
                       mgrlink_done_fn done, void *arg) __attribute__((warn_unused_result));

/* Asks the manager to kill a worker that core gave up on; reason goes to
 * the worker's row. Best effort (logged on failure). */
void mgrlink_kill(struct mgrlink *ml, const char *project, pid_t pid, const char *reason);

/* Answers every waiting request with NULL (core is stopping). */
void mgrlink_cancel_all(struct mgrlink *ml);

#endif
