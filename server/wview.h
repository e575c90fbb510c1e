/*
 * wview.h: core's record of the workers of this host: the in-memory view
 * that status, list and metrics read, and the workflow_workers rows that
 * operators read with SQL. Both follow the manager's slot snapshots.
 *
 * Threads: the loop thread writes (every function marked "loop"); HTTP
 * threads read through the functions marked "any thread", under the view's
 * read lock. Rows are written through the database layer's fast class
 * (derived status: the manager's hello rebuilds it after any loss), each
 * statement retry-safe; heartbeats are one statement per interval for all
 * workers that beat.
 */
#ifndef WF_WVIEW_H
#define WF_WVIEW_H

#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "config.h"

struct loop;
struct dbq;
struct wview;

/* Counters for /metrics (any thread). */
struct wview_counts {
    int by_status[5]; /* starting, running, draining, crashed, failed */
    long long restarts;
    double max_heartbeat_age_s;
    uint64_t starts;  /* "starting" events since core started */
    uint64_t crashes; /* "crashed" or "failed" events */
};

struct wview *wview_new(const struct wf_config *cfg, struct loop *l, struct dbq *q);
/* loop: stops the heartbeat flush and the stale-row check (before the
 * database layer goes away at shutdown). */
void wview_stop(struct wview *v);
void wview_free(struct wview *v);

/* loop: a slot snapshot from the manager; loaded (JSON text or NULL) is
 * what core sent that worker, if it knows. */
void wview_on_state(struct wview *v, const cJSON *ev, const char *loaded);

/*
 * loop: the manager's hello: rebuilds the view from its slots, marks this
 * host's other live rows crashed, and reads the code the surviving workers
 * loaded (from their rows); ready(arg) is called once that read is back
 * (or failed), after which wview_loaded answers for those workers.
 */
void wview_on_hello(struct wview *v, const cJSON *ev, void (*ready)(void *arg), void *arg);

/* loop: a heartbeat from the worker pid of project (counted once per
 * flush). */
void wview_heartbeat(struct wview *v, const char *project, pid_t pid);

/* loop: the code core sent (or confirmed for) the worker pid of project. */
void wview_set_loaded(struct wview *v, const char *project, pid_t pid, const char *loaded);

/* loop: the sandbox report (JSON text) the worker pid of project sent in
 * its first hello, before any of its code was loaded; shown in its status
 * and stored in its row. */
void wview_set_sandbox(struct wview *v, const char *project, pid_t pid, const char *report);

/* loop: the code versions worker pid of project holds and the runs on each
 * (JSON text from the engine), shown in its status as "versions". */
void wview_set_versions(struct wview *v, const char *project, pid_t pid, const char *json);

/* loop: the recorded code of project's current worker as JSON text (a
 * malloc'ed copy, caller frees), or NULL when none is known. */
char *wview_loaded(struct wview *v, const char *project);

/* loop: this host's live rows become stopped (at shutdown); done(arg) once
 * written or failed. */
void wview_mark_stopped(struct wview *v, void (*done)(void *arg), void *arg);

/* any thread: 1 if the project has a worker slot on this host. */
int wview_has(struct wview *v, const char *project);

/* any thread: fills o with the project's worker status fields (status,
 * isRunning, workerId, pid, host, startedAt, lastHeartbeat, restarts,
 * error, loaded) and returns 1, or returns 0 if the project has no slot. */
int wview_status_json(struct wview *v, const char *project, cJSON *o);

/* any thread: appends to arr the projects whose worker is starting,
 * running or crashed (the seed's list); returns how many. */
int wview_list_json(struct wview *v, cJSON *arr);

/* any thread */
void wview_counts(struct wview *v, struct wview_counts *out);

/* The name of status index k of wview_counts.by_status. */
const char *wview_status_name(int k);

#endif
