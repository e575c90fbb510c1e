/*
 * core.h: the core role: the HTTP API (libmicrohttpd thread pool), core's
 * event loop (this process's main thread) and every PostgreSQL connection
 * of this host.
 *
 * struct core only ties the modules together; each keeps its own state
 * behind its functions (DESIGN §8):
 *   loop      the event loop (loop.h)
 *   dbq       asynchronous PostgreSQL with group commit (dbq.h), loop only
 *   pool      the control-plane pool: blocking connections on threads
 *   af        the artifact thread
 *   ml        the control channel to the manager (mgrlink.h), loop only
 *   view      the worker view and rows (wview.h): loop writes, HTTP reads
 *   wc        the worker channels (wconn.h), loop only
 *   lc        the code loader (loadcode.h), loop only
 *   events    the live event streams (events.h): loop, and its routes
 * Threads: the loop thread owns everything marked "loop only"; HTTP threads
 * reach it only through core_post, never by touching its modules.
 */
#ifndef WF_CORE_H
#define WF_CORE_H

#include "engine.h"
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "jsonutil.h"
#include "loop.h"
#include "schedules.h"

struct MHD_Daemon;
struct MHD_Response;
struct dbq;
struct ctlpool;
struct artfetch;
struct mgrlink;
struct wview;
struct wconns;
struct loadcode;
struct hostlock;
struct events;

#define CORE_HIST_BUCKETS 12

/* Database-layer figures for /metrics, published by the loop (any thread
 * reads them through core_metrics). */
struct core_metrics {
    int db_up;
    uint64_t db_batches;
    uint64_t db_statements;
    uint64_t db_rows_coalesced;
    uint64_t db_reconnects;
    uint64_t db_queue_depth;
    uint64_t db_batch_hist[CORE_HIST_BUCKETS]; /* batches serving <=1, <=2, …, <=1024, more */
    uint64_t worker_resets;
    uint64_t worker_msgs_in;
    uint64_t worker_heartbeats_dropped;
    uint64_t http_pool_queued;
    uint64_t artifacts_fetched;
    uint64_t artifact_bytes_fetched;
    struct engine_stats engine;
    struct schedules_stats sched;
};

struct core {
    const struct wf_config *cfg;
    int listen_fd;

    struct loop *loop;
    struct dbq *dbq;
    struct ctlpool *pool;
    struct artfetch *af;
    struct mgrlink *ml;
    struct wview *view;
    struct wconns *wc;
    struct loadcode *lc;
    struct engine *engine;
    struct schedules *sched; /* the firing thread (schedules.h) */
    struct events *events;   /* live event streams (events.h); set before HTTP starts */

    struct MHD_Daemon *httpd;
    struct MHD_Response *health[2]; /* /health replies: [0] database down, [1] ok */
    struct MHD_Response *live;      /* /health/live's reply */
    int db_ok;                      /* __atomic: the database layer is healthy */
    int mgr_ok;                     /* __atomic: the manager's hello came, its link is up */
    int migrated;                   /* __atomic: this core applied the migrations */
    int ready_reported;             /* loop: the manager was told the service is ready */
    struct {
        uint64_t http_requests; /* requests completed */
    } stats;                    /* __atomic access */

    pthread_mutex_t post_mu; /* HTTP threads post to the loop under it */
    int stopping;            /* under post_mu (and __atomic for readers) */

    pthread_mutex_t metrics_mu;
    struct core_metrics metrics; /* under metrics_mu */

    struct loop_watch sig_watch;
    int sigfd;
    struct loop_timer tick;
    int first_core;      /* the manager's hello said this is its first core */
    struct hostlock *hl; /* this host id's lock on the database (hostlock.h) */
    int host_lost;       /* __atomic: another server took the host id: leave its rows alone */
    int rc;              /* exit status */
};

/* Runs the core role on the manager's control socket and the inherited
 * listening socket; returns the exit status. */
int core_main(const struct wf_config *cfg, int ctl_fd, int listen_fd);

/* Any thread: asks the loop to call fn(arg). Returns 0, or -1 when core is
 * stopping or out of memory (fn is then not called). */
int core_post(struct core *c, loop_fn fn, void *arg) __attribute__((warn_unused_result));

/* Any thread: 1 once core has begun to stop. */
int core_stopping(struct core *c);

/* Any thread: a copy of the latest published metrics. */
void core_metrics(struct core *c, struct core_metrics *out);

/* The checks of GET /health/ready, each 1 when it holds. */
struct core_readiness {
    int database;   /* the database layer is healthy (what /health reports) */
    int core;       /* core is not stopping */
    int manager;    /* the manager link is up */
    int migrations; /* this core applied the migrations at its start */
};

/* Any thread: the readiness checks as they stand now. */
void core_readiness(struct core *c, struct core_readiness *out);

/* 1 when every check of rd holds. */
int core_is_ready(const struct core_readiness *rd);

#endif
