/*
 * runs.h: the worker's run table and executors (DESIGN §5): it runs the
 * workflow runs core hands it, by replay, and their activities.
 *
 * A run arrives with its committed history (its steps, by seq). A *turn*
 * calls the workflow function from the top on the turn pool: each host call
 * takes the next seq; one that is recorded returns its recorded result
 * without running anything (a different kind or name there fails the run
 * with a non-determinism error naming both); the first one that is not
 * recorded ends the turn (the workflow gets WF_SUSPEND and must return it).
 * An activity then runs on the activity pool, with its retry policy
 * (backoff between attempts on a timer, never a sleeping thread) and its
 * per-attempt timeout; its final result goes to core as a step, and only
 * once core acknowledges the step's commit does the next turn run, which
 * replays it. `now` values are recorded with the next step (or the run's
 * end), so a replay sees the same clock. So no thread is held while a
 * workflow waits for a committed result (re-entry by replay), and a
 * committed step never runs again.
 *
 * Messages, carried in {"t":"ev","e":[items]} both ways (one message per
 * loop turn, however many items):
 *   core → worker  {"k":"run","run","workflow","sha256","input","branch"?,"steps":[{"seq",
 *                    "kind","name","status","output","error"}]}   (branch: a child run's
 *                    part of a declarative definition)
 *                  {"k":"ack","run","seq"}      the step at seq is committed
 *                  {"k":"drop","run"}           forget the run (not ours any more)
 *                  {"k":"unversion","sha256"}   no run here needs that code version
 *   worker → core  {"k":"step","run","seq","kind":"activity","name","status":"completed"|
 *                    "failed","output","error","attempts","nows":[{"seq","value"}]}
 *                  {"k":"end","run","status":"completed"|"failed","output","error",
 *                    "nows":[…]}
 *                  {"k":"wait","run","seq","kind":"sleep","ms"} |
 *                    {…,"kind":"signal","name","timeoutMs"} |
 *                    {…,"kind":"children","mode":"all"|"any","limit","children":[{"workflow",
 *                    "input","branch"?}]}, with "nows": the run leaves the worker, parked
 *                    by core until it is due (children: until their join completes)
 *                  {"k":"release","run","error","transient"?} the worker cannot take the
 *                    run: transient (full, stopping: another worker takes it), or not
 *                    (no such workflow here: core fails the run)
 *
 * Loop thread only, except what the pools run. Plugin code never runs on
 * the loop thread.
 */
#ifndef WF_WORKER_RUNS_H
#define WF_WORKER_RUNS_H

#include <cJSON.h>

struct plg_registry;
struct runs;

struct runs_config {
    int max_runs;       /* MAX_CONCURRENT_WORKFLOW_EXECUTIONS: runs held at once */
    int max_activities; /* MAX_CONCURRENT_ACTIVITY_EXECUTIONS: activity threads */
    int turn_threads;   /* threads running workflow turns */
};

/* Sends one message to core (msg borrowed). Returns 0, or -1 (core away). */
typedef int (*runs_send_fn)(void *arg, const cJSON *msg);

/* Returns the table, or NULL (ENOMEM, or the wakeup descriptors could not
 * be made). reg (the current code) must outlive it; code is the load
 * summary's {"<workflow>":"<sha256>"} of it (copied; may be NULL). */
struct runs *runs_new(const struct runs_config *cfg, const struct plg_registry *reg,
                      const cJSON *code, const char *project, runs_send_fn send, void *arg);

/*
 * Code versions: an older artifact sha loaded beside the current code for
 * runs pinned to it (reg taken; NULL with err when it could not be loaded:
 * its runs then fail with err). A run whose sha is neither the current
 * code of its workflow nor a version here is failed. Dropping a version
 * unloads it once no run here uses it. Returns 0 or -1 (ENOMEM).
 */
int runs_add_version(struct runs *rs, const char *sha, struct plg_registry *reg, const char *err);
void runs_drop_version(struct runs *rs, const char *sha);

/* Descriptors to watch for EPOLLIN: the pools' completions and the timer
 * (retries, activity deadlines). */
int runs_mailbox_fd(const struct runs *rs);
int runs_timer_fd(const struct runs *rs);
void runs_on_mailbox(struct runs *rs);
void runs_on_timer(struct runs *rs);

/* One {"t":"ev"} message from core. Returns 0, or -1 with err set on a
 * protocol error (malformed item, unknown run). */
int runs_on_message(struct runs *rs, const cJSON *msg, char *err, size_t errlen);

/* Core went away: every run is forgotten (a new core hands them out again
 * from their committed history); results still being computed are dropped. */
void runs_core_lost(struct runs *rs);

/* Sends what the turn produced, as one message. Call at the end of each
 * loop iteration. */
void runs_flush(struct runs *rs);

/* Runs held. */
int runs_count(const struct runs *rs);

/* Drain (stop or restart): no turn or attempt starts any more; what runs
 * finishes and its step goes to core; runs core hands over meanwhile are
 * given back. The rest stay at their last checkpoint, and core hands them
 * to the next worker when this one is gone. */
void runs_drain(struct runs *rs);

/* Turns and attempts not yet answered (plugin code running or queued). */
int runs_busy(const struct runs *rs);

/* Stops the pools (waiting up to wait_ms for plugin code to return) and
 * frees everything. Returns 0, or -1 when plugin code still runs: then
 * nothing it may use was freed, and the code must stay loaded. */
int runs_free(struct runs *rs, int wait_ms);

#endif
