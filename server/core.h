/*
 * core.h: the core role's shared state: the HTTP API (libmicrohttpd thread
 * pool), the dispatcher (this process's main thread) and every PostgreSQL
 * connection of this host.
 *
 * Threads: the dispatcher alone reads the manager and worker sockets and
 * owns the worker connections; HTTP threads send requests to the manager
 * (serialized by ctl_mu) and read the worker view (view_lock). Calls that
 * wait for the manager suspend their HTTP connection and are resumed by the
 * dispatcher, so no HTTP thread blocks on a worker starting or draining.
 */
#ifndef WF_CORE_H
#define WF_CORE_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "config.h"
#include "db.h"
#include "jsonutil.h"

struct MHD_Daemon;
struct MHD_Connection;

/* What core knows of one project's current worker (mirrors the manager). */
struct core_view {
    char project[WF_ID_MAX + 1];
    char worker_id[WF_ID_MAX + 72];
    char status[16];
    pid_t pid;
    int restarts;
    int64_t started_at;     /* wall ms */
    int64_t last_heartbeat; /* wall ms, 0 if none yet */
    char *error;            /* malloc'ed or NULL */
    char *loaded;           /* malloc'ed JSON text or NULL */
};

/* An HTTP request waiting for the manager's reply. */
struct core_call {
    uint64_t id;
    char op[16]; /* start, stop, restart */
    char project[WF_ID_MAX + 1];
    struct MHD_Connection *conn;
    int64_t deadline; /* monotonic ms */
    int done;         /* set by the dispatcher before resuming */
    int fail_status;  /* with reply NULL: 504 (timed out) or 503 (shutting down) */
    cJSON *reply;     /* the manager's reply (owned), NULL on timeout/shutdown */
    struct core_call *next;
};

struct core {
    const struct wf_config *cfg;
    char rundir[PATH_MAX]; /* <WF_RUNTIME_DIR>/<port>: this instance's artifact files */
    int ctl_fd;
    pthread_mutex_t ctl_mu;

    struct db_pool *pool;  /* for HTTP threads; commits are durable */
    struct db_conn *dconn; /* the dispatcher's own: synchronous_commit = off, so
                              only derived status may be written through it */
    struct MHD_Daemon *httpd;
    struct MHD_Response *health[2]; /* /health replies: [0] database down, [1] ok */
    int db_ok;                      /* last dispatcher ping succeeded; __atomic access */
    struct {
        uint64_t worker_starts;  /* "starting" events since this core started */
        uint64_t worker_crashes; /* "crashed" or "failed" events */
        uint64_t http_requests;  /* requests completed */
    } stats;                     /* counters for /metrics; __atomic access */

    pthread_rwlock_t view_lock;
    struct idmap views; /* struct core_view by project */

    pthread_mutex_t calls_mu;
    struct core_call *calls;
    uint64_t next_call_id;
    int stopping; /* under calls_mu: no new calls */
};

/* Runs the core role on the manager's control socket and the inherited
 * listening socket; returns the exit status. */
int core_main(const struct wf_config *cfg, int ctl_fd, int listen_fd);

/* dispatcher.c */
/* Runs the dispatcher loop until SIGTERM or the manager is gone; starts the
 * HTTP server on listen_fd after the manager's hello. Returns the exit
 * status. */
int dispatcher_run(struct core *c, int listen_fd);
/*
 * Sends {"op": op, "project": project, "req": id} to the manager and
 * suspends conn until the reply (or timeout_ms) comes; call must stay valid
 * until the dispatcher resumes the connection (it lives in the request).
 * Returns 0, or -1 if the request could not be sent (nothing suspended).
 */
int core_call_manager(struct core *c, struct core_call *call, struct MHD_Connection *conn,
                      const char *op, const char *project, int timeout_ms)
    __attribute__((warn_unused_result));

/* http.c */
int http_start(struct core *c, int listen_fd) __attribute__((warn_unused_result));
void http_stop(struct core *c);

#endif
