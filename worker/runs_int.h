/*
 * runs_int.h: what the two files of the worker's run table share, and
 * nothing else includes (runs.h is the module's interface): runs.c holds
 * the table, the scheduling on the loop thread, the activities, timers and
 * messages; replay.c the host API a workflow turn calls on a turn pool
 * thread, which answers from the run's history (replay) and records what
 * the turn asks for next. While a turn runs, the loop thread does not touch
 * the run's input, branch or history, which the turn reads.
 */
#ifndef WF_WORKER_RUNS_INT_H
#define WF_WORKER_RUNS_INT_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <wf/plugin.h>

#include "runs.h"

struct act;
struct version;

#define RUN_ID_LEN 36
#define ERR_MAX 1024

enum step_kind {
    K_ACTIVITY,
    K_SLEEP,
    K_SIGNAL,
    K_NOW,
    K_CHILDREN
};
#define NKINDS 5
/* Their names in messages and in the steps table, by enum step_kind. */
extern const char *const runs_kind_names[NKINDS];
#define CHILDREN_MAX 10000 /* child runs one call may start (core's bound too) */

/* One committed step of a run's history. */
struct wstep {
    enum step_kind kind;
    char *name;
    int ok;        /* completed (else failed, or a signal wait that timed out) */
    cJSON *output; /* NULL: JSON null */
    char *error;
};

enum run_state {
    R_READY,    /* a turn is due */
    R_TURN,     /* a turn runs */
    R_ACTIVITY, /* an attempt runs */
    R_RETRY,    /* waiting for the next attempt */
    R_COMMIT,   /* the step is with core, waiting for its ack */
    R_GONE      /* out of the table */
};

/* An older code version loaded for runs pinned to it. */
struct version {
    char sha[65];
    struct plg_registry *reg; /* NULL: it could not be loaded (error says why) */
    char *error;
    int runs;    /* runs here that use it */
    int dropped; /* core no longer needs it: unload at runs == 0 */
    struct version *next;
};

struct wrun {
    char id[RUN_ID_LEN + 1];
    char *workflow;
    char sha[65];
    const struct wf_workflow_def *wf;
    struct dsl_def *dsl; /* a declarative definition's: runs through dsl_run */
    struct version *ver; /* the code version it runs on; NULL: the current code */
    struct runs *rs;
    cJSON *input;
    cJSON *branch; /* a child run of a definition: the part it runs (NULL: all) */
    struct wstep *steps;
    int nsteps, cap;
    enum run_state state;
    uint64_t token; /* bumped at every change of plan: stale jobs see it */
    int refs;
    struct wrun *hnext;
    /* the activity in progress (R_ACTIVITY, R_RETRY) */
    int act_seq;
    char *act_name;
    cJSON *act_input;
    const struct wf_activity_def *act_def;
    int attempt;
    int64_t act_started_ms; /* wall ms of its first attempt */
    struct act *act_job;    /* the attempt running, until it is answered or abandoned */
    size_t tslot;           /* its timer's heap index + 1; 0: none */
    /* the step with core (R_COMMIT) */
    struct wstep pending;
    int pending_seq;
};

enum job_type {
    J_TURN,
    J_ACT
};

struct job {
    enum job_type type;
    struct runs *rs;
    struct wrun *run;
    uint64_t token;
    struct job *next; /* in the mailbox */
};

struct now_rec {
    int seq;
    int64_t value;
};

enum turn_cmd {
    C_NONE,
    C_ACTIVITY,
    C_SLEEP,
    C_SIGNAL,
    C_CHILDREN,
    C_NONDET
};

/* A workflow turn: its context, what the host calls asked, how it ended. */
struct turn {
    struct job job;
    struct wf_ctx ctx;
    int nrec; /* history length when the turn started */
    int seq;  /* the next host call's seq */
    int stopped;
    enum turn_cmd cmd;
    int cmd_seq;
    char *cmd_name;
    cJSON *cmd_input; /* C_ACTIVITY: its input; C_CHILDREN: the specs */
    int64_t cmd_ms;   /* C_SLEEP, C_SIGNAL: ms; C_CHILDREN: the limit */
    enum wf_join cmd_join;
    struct now_rec *nows;
    int nnows, capnows;
    char err[ERR_MAX];    /* ctx->api->error() */
    char nondet[ERR_MAX]; /* C_NONDET: the message */
    enum wf_status st;
    char *output_text; /* WF_OK: the output printed */
    cJSON *raised;     /* a failed definition's Serverless Workflow error, or NULL */
};

/* Posts a finished job to the loop thread's mailbox (any thread). */
void runs_post(struct job *j);

/* replay.c: the host API of a turn (ctx->api), the turn's body on a turn
 * pool thread (arg: the struct turn, posted back when done), and its
 * release on the loop thread. */
extern const struct wf_host_api runs_host_api;
void runs_turn_main(void *arg);
void runs_turn_free(struct turn *t);

#endif
