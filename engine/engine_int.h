/*
 * engine_int.h: the engine's private header, shared by its files and by
 * nothing else (engine.h is the module's interface). engine.c holds the
 * tables, worker messages, steps, ends, timers and the life cycle;
 * triggers.c the triggers; claims.c the claims and the handing over of
 * claimed runs; calls.c cancel, signal and retry. The state below belongs to
 * the loop thread, like everything of the engine.
 */
#ifndef WF_ENGINE_INT_H
#define WF_ENGINE_INT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "dbq.h"
#include "engine.h"
#include "jsonutil.h"
#include "loop.h"

#define RUN_ID_LEN 36
#define NBUCKETS 65536u /* run table */
#define NPBUCKETS 1024u /* workers by project */

enum erun_state {
    E_HELD,
    E_COMMITTING,
    E_ENDING
};

struct erun {
    char id[RUN_ID_LEN + 1];
    char project[WF_ID_MAX + 1];
    char sha[65];  /* the code it is pinned to */
    uint64_t conn; /* the worker connection holding it */
    uint64_t gen;
    enum erun_state state;
    int seq;                 /* E_COMMITTING: the step's seq */
    int cancel;              /* a cancel came while its step was being written */
    int64_t trigger_wall_ms; /* started here by a trigger: when (0: claimed) */
    int first_done;          /* its first step was seen */
    struct erun *next;
};

/* A code version a worker holds, and the runs it holds on it. */
enum ever_state {
    V_CURRENT,
    V_PENDING,
    V_READY
};
struct ever {
    char sha[65];
    enum ever_state state;
    int runs;
};

/* A run item waiting for its code version to reach the worker. */
struct pend {
    char sha[65];
    char id[RUN_ID_LEN + 1];
    cJSON *item;
    struct pend *next;
};

struct ework {
    uint64_t conn;
    char project[WF_ID_MAX + 1];
    cJSON *code; /* {"<workflow>":"<sha256>"} of what it loaded */
    int held;    /* runs handed to it */
    int claiming;
    int retired;  /* a newer worker of the project is ready: it takes the new runs */
    int reserved; /* slots a claim in flight may fill */
    int more;     /* the last claim was full, or runs were released: claim again */
    int first_claim_done;
    cJSON *out;        /* items to send at the end of the turn */
    struct ever *vers; /* code versions it holds (current ones included) */
    int nvers, capvers;
    int vdirty; /* vers changed: publish at the end of the turn */
    struct pend *pend;
    struct loop_timer wake; /* the earliest sleeping run it parked is due */
    struct engine *e;
    struct ework *next;
};

struct engine {
    const struct wf_config *cfg;
    struct loop *loop;
    struct dbq *q;
    struct engine_env env;
    struct dbq_rows *t_trigger, *t_step, *t_end;
    struct erun *runs[NBUCKETS];
    struct ework *works[NPBUCKETS];
    uint64_t next_gen;
    struct loop_timer poll, lease;
    int hooked;
    int detached;
    unsigned polls;
    int counting;     /* the active-runs count is in flight */
    int settling;     /* wf_settle_joins is in flight */
    int settle_again; /* and must run once more after */
    struct engine_stats st;
};

/* engine.c */
struct ever *eng_ever_add(struct ework *w, const char *sha, enum ever_state state);
struct ever *eng_ever_find(struct ework *w, const char *sha);
void eng_fail_held(struct engine *e, struct erun *r, const char *message);
cJSON *eng_item_new(const char *k, const char *run);
void eng_log_failure(void *arg, const struct dbq_result *res);
int eng_new_uuid(char out[RUN_ID_LEN + 1]);
void eng_release_run(struct engine *e, const char *id);
struct erun *eng_run_add(struct engine *e, const char *id, const char *project, uint64_t conn);
struct erun *eng_run_find(struct engine *e, const char *id);
void eng_submit_end(struct engine *e, struct erun *r, const char *status, const char *output,
                    const char *error, const char *wake_ms);
void eng_to_worker(struct engine *e, struct ework *w, cJSON *item);
void eng_version_ready(struct engine *e, struct ework *w, const char *sha, const char *err);
struct ework *eng_work_by_conn(struct engine *e, const char *project, uint64_t conn);
struct ework *eng_work_for(struct engine *e, const char *project);

/* claims.c: claims due runs of w's project, as many as its free slots */
void eng_claim(struct engine *e, struct ework *w);

#endif
