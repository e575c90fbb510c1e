/*
 * engine.h: core's run engine (DESIGN §5): triggers, claims, checkpoints,
 * durable sleeps and leases, on core's loop and its asynchronous database
 * layer. Called by server/ (routes, worker events), never reaching into it.
 *
 * A run is always in one of three places: in the database only (pending,
 * sleeping, or released by a worker that went away), held by this host (its
 * lease_owner is this host id) and handed to one local worker connection,
 * or held by another host. This module keeps the runs this host holds:
 *
 *   - trigger: one INSERT, group-committed; a run for a project whose worker
 *     runs here is inserted already claimed (running, leased to this host)
 *     and handed to the worker as soon as its row is committed; otherwise
 *     it is inserted pending and any host running that project claims it;
 *   - claim: FOR UPDATE SKIP LOCKED, a batch at a time, when a worker becomes
 *     ready, when a run was released, when a sleeping run is due, and on a
 *     periodic poll; the claimed runs' committed steps are read and sent
 *     with them, so the worker replays them;
 *   - checkpoints: a step's row is written by a statement that checks the
 *     lease (only the holder can write), and the worker hears of it (ack)
 *     only after its commit; `completed_at` is the committing statement's
 *     clock_timestamp();
 *   - a worker that goes away has its runs released at once (lease cleared),
 *     so its successor claims them at its first claim;
 *   - leases: one UPDATE per third of WF_LEASE_MS renews all of this host's
 *     running runs; a run whose lease expired can be claimed by any host.
 *
 * Everything a worker says is checked against what this module gave it: a
 * step for a run it does not hold, or two steps at once, resets the worker.
 * Loop thread only.
 */
#ifndef WF_ENGINE_H
#define WF_ENGINE_H

#include <stdint.h>

#include <cJSON.h>

#include "config.h"

struct loop;
struct dbq;
struct wconn;
struct engine;

/* What the engine needs of server/ (all on the loop thread). */
struct engine_env {
    /* JSON text of the code the worker on w loaded (loadcode_summary), or
     * NULL: holds "workflowCode":{"<workflow>":"<sha256>"}. */
    const char *(*code_of)(void *arg, const struct wconn *w);
    /* The connection with id, or NULL when it is gone. */
    struct wconn *(*find)(void *arg, uint64_t id);
    /* Sends w the code version sha (loadcode_provide): 1 sent now, 0 later
     * (then engine_version_ready), -1 not (w may have been reset). */
    int (*provide)(void *arg, struct wconn *w, const char *sha);
    /* The worker's code versions for its status: JSON text
     * [{"sha256","current","runs"}]. */
    void (*versions)(void *arg, const struct wconn *w, const char *json);
    void *arg;
};

struct engine *engine_new(const struct wf_config *cfg, struct loop *l, struct dbq *q,
                          const struct engine_env *env);
/* Shutdown, before the database layer is freed: timers stop, nothing is
 * sent to workers any more, and worker events only forget (the runs stay
 * leased to this host: its next core claims them at once, other hosts when
 * the lease expires). The database layer's last answers may still come. */
void engine_detach(struct engine *e);
/* Forgets everything; after engine_detach and the database layer's end. */
void engine_free(struct engine *e);

/* Worker events. ready: w has loaded its code and may take runs. gone: w's
 * socket is about to close. message: a {"t":"ev"} message from w; returns
 * 0, or -1 after w was reset (a protocol error). */
void engine_worker_ready(struct engine *e, struct wconn *w);
void engine_worker_gone(struct engine *e, struct wconn *w);
int engine_worker_message(struct engine *e, struct wconn *w, const cJSON *msg);

/* A code version asked for through env.provide reached worker wid (err
 * NULL), or could not (its runs fail with err). */
void engine_version_ready(struct engine *e, uint64_t wid, const char *sha, const char *err);

/* The outcome of a trigger: status 202 (created), 200 (the idempotency key
 * named an existing run), 404 (no such project or workflow: message says
 * which), 503 or 500; execution_id and run_status set for 200 and 202. */
struct engine_trigger_result {
    int status;
    const char *execution_id;
    const char *run_status;
    const char *message;
};
typedef void (*engine_trigger_fn)(void *arg, const struct engine_trigger_result *res);

/*
 * Starts a run of workflow in project with input (JSON text), an optional
 * idempotency key (NULL: none) and an optional timeout (ms > 0: the run
 * fails once it has not ended that long after its start; 0: none). done is called exactly once, on
 * the loop thread, after the run's row is committed (or why not). Returns 0, or -1 (out of memory;
 * done not called).
 */
int engine_trigger(struct engine *e, const char *project, const char *workflow, const char *input,
                   const char *idempotency_key, int64_t timeout_ms, engine_trigger_fn done,
                   void *arg) __attribute__((warn_unused_result));

/* The outcome of a cancel, signal or retry: status 200/202, 404 (no such
 * run), 409 (it ended, or is not failed: run_status says what it is), 503
 * or 500; message for errors. */
struct engine_call_result {
    int status;
    const char *run_status;
    const char *message;
};
typedef void (*engine_call_fn)(void *arg, const struct engine_call_result *res);

/*
 * Cancel: a run nobody holds ends cancelled at once (200, "cancelled"); a
 * held one is marked, and its holder ends it at its next step (at once when
 * this host holds it; 202, "cancelling"). Signal: stored for the run, which
 * consumes it at its wait for that name, now or later (202); a waiting run
 * is woken. Retry: a failed run forgets its steps from the last failed one
 * on and is pending again (202, "pending"). Each calls done once, on the
 * loop thread, after its commit. Return 0, or -1 (out of memory; done not
 * called). run must be a valid id (engine_valid_run_id); payload is JSON text.
 */
int engine_cancel(struct engine *e, const char *run, engine_call_fn done, void *arg)
    __attribute__((warn_unused_result));
int engine_signal(struct engine *e, const char *run, const char *name, const char *payload,
                  engine_call_fn done, void *arg) __attribute__((warn_unused_result));
int engine_retry(struct engine *e, const char *run, engine_call_fn done, void *arg)
    __attribute__((warn_unused_result));

/* 1 if id is a run id as this server writes them (a lower-case UUID). */
int engine_valid_run_id(const char *id);

/* A latency histogram: bucket i counts observations <= ENGINE_HIST_LE[i]
 * seconds, the last one everything larger (+Inf). */
#define ENGINE_HIST_N 14
extern const double ENGINE_HIST_LE[ENGINE_HIST_N - 1];
struct engine_hist {
    uint64_t bucket[ENGINE_HIST_N]; /* not cumulative */
    uint64_t count;
    double sum; /* seconds */
};

/* Counters for /metrics (since core started), copied out on the loop
 * thread. */
struct engine_stats {
    uint64_t triggered; /* runs inserted by this core */
    uint64_t claimed;   /* runs claimed from the database */
    uint64_t steps;     /* activity steps committed */
    uint64_t retries;   /* activity attempts beyond the first, in committed steps */
    uint64_t completed, failed, cancelled; /* runs this core ended, by outcome */
    uint64_t parked;                       /* runs parked sleeping or waiting */
    uint64_t released;                     /* runs given back (their worker went) */
    uint64_t held;                         /* runs held by this host's workers now */
    uint64_t child_waits;                  /* waits for child runs sent to the database */
    uint64_t join_checks;                  /* joins checked after children ended */
    uint64_t orphans;                      /* child runs cancelled: nobody waited for them */
    uint64_t active[4]; /* runs pending, running, sleeping, waiting in the database (all hosts;
                           read every few seconds) */
    struct engine_hist run_seconds;   /* created → ended, runs this core ended */
    struct engine_hist step_seconds;  /* first attempt started → committed */
    struct engine_hist first_seconds; /* trigger → first activity started, runs started here */
};
void engine_stats(const struct engine *e, struct engine_stats *out);

#endif
