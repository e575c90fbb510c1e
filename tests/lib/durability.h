/*
 * durability.h: what the durability tests (test_run_crash, test_run_reload,
 * test_run_core_kill, test_run_db_restart, test_run_two_hosts) share, on top
 * of the harness (library wf_test_durability).
 *
 * They all run many runs of the engine's test plugin (tests/plugins/
 * engine_recorder.h) while something breaks, and then ask one question of
 * the database and of the plugin's invocation log: did every run complete
 * with the right output, is every step committed exactly once, and did any
 * committed step run again? `record` stamps each invocation with the wall
 * clock (CLOCK_REALTIME, microseconds) just before it appends its line, and
 * steps.completed_at is the committing statement's clock_timestamp(), the
 * same clock on the same machine; so an invocation stamped later than its
 * step's completed_at started after the commit: a committed step ran again.
 * No slack is allowed: both clocks are truncated to the microsecond, so
 * "stamp > completed_at" can only hold when the invocation really began
 * after the commit. Invocations before the commit beyond the first are the
 * duplicates at-least-once allows; they are counted and printed.
 *
 * Run ids are kept in arrays of struct dur_id. Helpers print why they fail
 * and return -1; only dur_expect_clean counts failed checks (it stands for
 * the CHECKs every durability test would otherwise write itself).
 */
#ifndef WF_TEST_DURABILITY_H
#define WF_TEST_DURABILITY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "harness.h"

struct dur_id {
    char s[40]; /* a run id, or "" when its trigger failed */
};

/* The workflow and activity names of engine-recorder, as deployed. */
extern const char *const dur_workflows[];
extern const int dur_nworkflows;
extern const char *const dur_activities[];
extern const int dur_nactivities;

/* ---- set-up ---- */

/*
 * Makes /tmp/wf-<test>-<pid>, mode 0777 (workers may run as another user),
 * for record's log; the server must get it in WF_SANDBOX_RW_PATHS. Returns
 * 0, or -1 (printed).
 */
int dur_make_dir(char *dir, size_t len, const char *test);
void dur_remove_dir(const char *dir);

/*
 * PUTs test plugin `plugin` (engine_recorder or engine_recorder_v2) under
 * every workflow and activity name into project, which must exist. Returns
 * the number of uploads that did not answer 2xx (0: all deployed; each
 * failure printed).
 */
int dur_deploy(const struct th_server *s, const char *project, const char *plugin);

/* ---- runs ---- */

/*
 * Triggers n runs of workflow with input (JSON text) in project, at most
 * 100 requests at once. ids[i] gets each run's id ("" when its trigger did
 * not answer 202). Returns how many answered 202.
 */
int dur_trigger(const struct th_server *s, const char *project, const char *workflow,
                const char *input, int n, struct dur_id *ids);

/*
 * Sends signal name to runs ids[from..to-1], each with its own run id (a
 * JSON string) as payload, at most 100 requests at once. Returns how many
 * answered 202 (each other answer printed).
 */
int dur_signal(const struct th_server *s, const struct dur_id *ids, int from, int to,
               const char *name);

/*
 * Starts one run of workflow with input (JSON text) in project: its id into
 * id (len bytes; "" when the trigger did not answer 202). Returns the HTTP
 * status (printed when not 202).
 */
long dur_start_run(const struct th_server *s, const char *project, const char *workflow,
                   const char *input, char *id, size_t len);

/*
 * Waits (polling GET /executions/id every 20 ms, at most timeout_ms) until
 * run id ended; returns its "execution" (the whole reply through *reply,
 * which the caller frees), as it was at the end or at the timeout (then
 * printed), or NULL when the GET failed.
 */
const cJSON *dur_wait_run(const struct th_server *s, const char *id, int timeout_ms, cJSON **reply);

/* The runs of ids not ended yet (not completed, failed or cancelled), or
 * -1 when the query failed. */
long long dur_unended(PGconn *pg, const struct dur_id *ids, int n);

/* The runs of ids whose status is status, or -1. */
long long dur_count_status(PGconn *pg, const struct dur_id *ids, int n, const char *status);

/*
 * Waits until every run of ids ended (polling every 50 ms, at most
 * timeout_ms). Returns 0, or -1 after printing how many did not, by status.
 */
int dur_wait_ended(PGconn *pg, const struct dur_id *ids, int n, int timeout_ms);

/* ---- the check ---- */

struct dur_report {
    int runs;                /* runs checked */
    int completed;           /* of them, completed */
    int right_output;        /* of them, output sum == steps == the n asked */
    int version[3];          /* outputs by "version" (1, 2; 0: none) */
    long steps_expected;     /* runs * n */
    long steps_once;         /* (run, step) with exactly one committed record row */
    long steps_missing;      /* (run, step) with none */
    long steps_doubled;      /* (run, step) with more than one */
    long invocations;        /* record lines of these runs */
    long dup_before;         /* lines beyond the first of a (run, step), before its commit */
    long after_commit;       /* lines later than their step's completed_at */
    long uncommitted;        /* lines of a (run, step) without a committed row */
    long long worst_late_us; /* the largest "stamp - completed_at" among after_commit */
};

/*
 * Reads the runs of ids (status, output), their committed `record` steps
 * (steps.output->>'step', completed_at) and dir/invocations.log, and fills
 * rep for runs of n record steps each. Prints one summary line starting
 * with label, and up to 10 invocations that came after their commit.
 * Returns 0, or -1 when something could not be read (printed).
 */
int dur_check(PGconn *pg, const char *dir, const struct dur_id *ids, int nids, int n,
              const char *label, struct dur_report *rep);

/*
 * The CHECKs of a clean report (counted like CHECK): every run completed
 * with the right output, every step committed exactly once, no invocation
 * after its step's commit, none without a committed row.
 */
void dur_expect_clean(const struct dur_report *rep, const char *label);

/* 1 when the "error" of execution ex (as dur_wait_run returns it) holds
 * both needles (b may be NULL); else 0, the error printed. */
int dur_error_has(const cJSON *ex, const char *a, const char *b);

/* ---- the database going away ---- */

/*
 * What core sees of a database restart, without restarting the cluster
 * (other tests share it): through admin, a superuser connection to another
 * database of the cluster, dur_db_allow turns new connections to database
 * name off or on (ALTER DATABASE … ALLOW_CONNECTIONS), and dur_db_cut
 * terminates the backends on it but admin's (core_only: only core's, by
 * their application_name wf-core…). Return 0, or -1 (printed).
 */
int dur_db_allow(PGconn *admin, const char *name, int allow);
int dur_db_cut(PGconn *admin, const char *name, int core_only);

/* ---- workers ---- */

/*
 * kill -9 the project's worker (its pid from GET /workers/status) and waits
 * until it is gone. Returns the pid killed, or -1 (printed).
 */
pid_t dur_kill_worker(const struct th_server *s, const char *project);

/*
 * Waits until the project's worker runs again with a pid other than old,
 * and returns that pid, or -1 after timeout_ms (printed). It asks for it
 * with POST /workers/start, which the manager serves at its restart floor
 * (1 s after the last spawn): left alone, the manager backs off 1, 2, 4,
 * 8 s after successive crashes and trips the crash-loop breaker at the
 * fifth within 5 minutes, and a start call is what resets the breaker.
 */
pid_t dur_worker_back(const struct th_server *s, const char *project, pid_t old, int timeout_ms);

/* ---- randomness ---- */

/* Seeds the generator from WF_TEST_SEED, or from the clock and pid, and
 * prints the seed (so that a failing sequence can be replayed). */
uint64_t dur_seed(void);
/* A number in [lo, hi] from the generator. */
int dur_rand(int lo, int hi);

#endif
