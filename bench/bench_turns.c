/*
 * bench_turns.c: what it costs to re-enter real workflow code when a step's
 * result arrives (issue 10, DESIGN §5), two ways, in one process, on the
 * engine's test plugin (tests/plugins/engine_recorder.h):
 *
 *   replay     the worker's algorithm (worker/runs.c), step for step: a
 *              turn runs the workflow function from the top; a host call
 *              whose step is in the run's history returns a copy of the
 *              recorded result (kind and name checked against it), the
 *              first new one records its request and returns WF_SUSPEND;
 *              the step's result is then "committed" (appended to the
 *              history) and the next turn replays from the top. n steps:
 *              n + 1 turns, n(n + 1)/2 + n host calls.
 *   coroutine  one coroutine per run on an mmap'd stack with a PROT_NONE
 *              guard page below it (makecontext/swapcontext); the workflow
 *              is called once; a new host call records its request and
 *              swaps back to the scheduler; when the result arrives the
 *              scheduler swaps the run back in and the host call returns
 *              the result itself. Stacks are recycled through a free list.
 *              n steps: n + 1 switches in, n host calls.
 *
 *   bench_turns PLUGIN [RUNS=10000] [ROUNDS=3] [WINDOW=1000] [STACK_KIB=64]
 *
 * PLUGIN is engine_recorder.so. Workflows: one-step and five-steps (noop
 * activities, input {}), steps {n: 5, 10, 20, 100} (record activities, each
 * with a 3-member input the code builds). Of each, RUNS runs (RUNS / 10
 * for n = 100, whose replay makes 5,150 host calls a run) are driven with
 * WINDOW of them in flight at once, round robin: each visit to a run makes
 * one resumption (a turn, or a switch in), so the next visit to the same
 * run comes after WINDOW - 1 others and finds it cold-ish, as in the
 * worker, which holds up to MAX_CONCURRENT_WORKFLOW_EXECUTIONS (1,000)
 * runs. A run's slot is taken by the next run once it ends. No activity
 * runs: the scheduler completes each step at once with the result the
 * activity would have made (record: {"step": step, "echo": null}; noop:
 * {}), so what is measured is the cost of re-entering the code, not of the
 * step. Both modes do the same around it (the request's name and input
 * copied, the fake result built), and both leave out what the worker does
 * the same way in either design: the hop to a turn thread and back through
 * the mailbox, the activity job, the messages to core.
 *
 * First the switch in isolation: a swapcontext round trip, a start, the
 * rt_sigprocmask system call glibc's swapcontext makes each time (a
 * coroutine run makes 2n + 3 of them; each workflow's line estimates its
 * CPU time without them), a fresh stack's mmap. Then each workflow runs
 * once on a painted 1 MiB stack to find its stack high-water mark, with
 * "failing", whose activity fails, so that the plugin logs through the
 * host (the worker's host_log and log_generic buffers, 8 KiB, on the run's
 * stack); the bench refuses to go on when STACK_KIB does not hold the mark
 * with a page to spare. Then, per workflow, a warm-up (WINDOW runs of each
 * mode) and ROUNDS rounds, alternating which mode goes first, each timed
 * with CLOCK_PROCESS_CPUTIME_ID (the process is single-threaded); the
 * figure is the median round. Last, WINDOW runs of each mode are parked
 * halfway (waiting for step n/2) to measure what a parked run holds: heap
 * in use (mallinfo2) and, for coroutines, the resident pages of its stack
 * (mincore; the free stacks are given back with MADV_DONTNEED first, so
 * these are the pages this run touched).
 *
 * Every output line is one JSON object with a "label": "params", "switch",
 * "stack", then one per workflow (both modes, the ratio). The outputs of
 * every run in every round are compared between the modes (and those of
 * the first round checked: {"ok": true}, or steps' "sum" = n). Exit 0; 1 when
 * a run failed, the outputs differ or the stack is too small; 2 on bad
 * usage or set-up.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <wf/plugin.h>

#include "stats.h"

#define MAX_RUNS 1000000
#define MAX_ROUNDS 15
#define MAX_WINDOW 100000
#define RUN_ID_LEN 36
#define ERR_MAX 1024 /* runs.c's ERR_MAX */
#define HWM_STACK (1024 * 1024)
#define PAINT 0xa5
#define SWITCH_N 200000
#define BENCH_PROJECT "bench"
#define BENCH_DIR "/nonexistent/bench-turns" /* never opened: no activity runs */

/* A workflow and its input, as the bench drives it. */
struct spec {
    const char *label;
    const char *workflow;
    int n;       /* steps {n}; -1: no input */
    int steps;   /* host calls the code makes */
    int run_div; /* runs of it: RUNS / run_div */
    const struct wf_workflow_def *wf;
    cJSON *input;
};

static struct spec specs[] = {
    {"one-step", "one-step", -1, 1, 1, NULL, NULL},
    {"five-steps", "five-steps", -1, 5, 1, NULL, NULL},
    {"steps-5", "steps", 5, 5, 1, NULL, NULL},
    {"steps-10", "steps", 10, 10, 1, NULL, NULL},
    {"steps-20", "steps", 20, 20, 1, NULL, NULL},
    {"steps-100", "steps", 100, 100, 10, NULL, NULL},
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

static long host_calls;       /* host calls made, both modes */
static double sigprocmask_ns; /* one rt_sigprocmask, measured by bench_switch */
static int devnull = -1;
static size_t page;

static double cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bytes malloc has handed out and not had back. */
static double heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();

    return (double)(mi.uordblks + mi.hblkhd);
}

/* The process's resident set in bytes (/proc/self/statm), 0 if unknown. */
static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (double)res * (double)page;
}

/* The id of run idx: a UUID's 36 characters, as the worker's are. */
static void run_id(int idx, char *buf, size_t len)
{
    snprintf(buf, len, "00000000-0000-4000-8000-%012d", idx);
}

/*
 * What the worker does with a workflow's log line: host_log formats it into
 * a 2 KiB buffer, log_generic (common/log.c) into 2 KiB and 4 KiB more, all
 * on the calling stack, and writes it (here to /dev/null). Kept for the
 * stack high-water mark: a coroutine's stack must hold this.
 */
__attribute__((format(printf, 2, 3))) static void log_like(const char *level, const char *fmt, ...)
{
    char msg[2048], line[4096], ts[32];
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ts, sizeof(ts), "%lld", (long long)wall_ms());
    n = snprintf(line, sizeof(line), "%s [%d] wf-worker %s: %s\n", ts, (int)getpid(), level, msg);
    if (n > 0 && (size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    if (n > 0 && write(devnull, line, (size_t)n) < 0)
        return; /* nothing to do about it */
}

__attribute__((format(printf, 3, 0))) static void host_log_like(const struct wf_ctx *ctx,
                                                                enum wf_log_level level,
                                                                const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[2048];

    vsnprintf(line, sizeof(line), fmt, ap);
    log_like(names[(unsigned)level < 4 ? level : WF_LOG_INFO], "project=%s run=%s %s",
             ctx->project_id, ctx->execution_id, line);
}

/*
 * The result activity name would have made for input, as the plugin's
 * activity makes it (a new tree, caller owns), with *ok = 1; for the
 * failing activity, NULL with *ok = 0 and the message in err.
 */
static cJSON *fake_result(const char *name, const cJSON *input, int *ok, char *err, size_t errlen)
{
    cJSON *o;

    *ok = 1;
    if (strcmp(name, "noop") == 0)
        return cJSON_CreateObject();
    if (strcmp(name, "record") == 0) {
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(input, "step");
        const cJSON *payload = cJSON_GetObjectItemCaseSensitive(input, "payload");
        o = cJSON_CreateObject();
        if (o != NULL) {
            cJSON_AddNumberToObject(o, "step", cJSON_IsNumber(step) ? step->valuedouble : -1);
            cJSON_AddItemToObject(
                o, "echo", payload != NULL ? cJSON_Duplicate(payload, 1) : cJSON_CreateNull());
        }
        return o;
    }
    *ok = 0;
    if (strcmp(name, "fail_always") == 0) {
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(input, "reason");
        snprintf(err, errlen, "boom: %s", cJSON_IsString(reason) ? reason->valuestring : "?");
    } else {
        snprintf(err, errlen, "activity \"%s\" is not faked by bench_turns", name);
    }
    return NULL;
}

/* ---------------------------------------------------------------- replay */

/*
 * The worker's structures (worker/runs.c), with the fields a turn touches;
 * what only the activity machinery and the table use is left out.
 */
enum step_kind {
    K_ACTIVITY, /* the only kind these workflows ask for */
    K_SLEEP,    /* sleep (not driven here) */
    K_SIGNAL,   /* wait_signal (not driven here) */
    K_NOW       /* now (not driven here) */
};
static const char *const kind_names[] = {"activity", "sleep", "signal", "now"};

struct wstep {
    enum step_kind kind;
    char *name;
    int ok;
    cJSON *output;
    char *error;
};

struct rrun {
    char id[RUN_ID_LEN + 1];
    char *workflow;
    const struct wf_workflow_def *wf;
    cJSON *input;
    struct wstep *steps;
    int nsteps, cap;
    uint64_t token;
    int act_seq; /* the activity asked for, until its result comes */
    char *act_name;
    cJSON *act_input;
    struct wstep pending; /* the step with core, until its ack */
    int pending_seq;
    char *output_text; /* once it ended */
};

enum turn_cmd {
    C_NONE,     /* no new host call (yet) */
    C_ACTIVITY, /* an activity was asked for */
    C_NONDET    /* a host call did not match the history */
};

/* runs.c's struct job: a turn is one (it is posted to the mailbox). */
struct job {
    int type;
    void *rs;
    struct rrun *run;
    uint64_t token;
    struct job *next;
};

struct now_rec {
    int seq;
    int64_t value;
};

struct turn {
    struct job job;
    struct wf_ctx ctx;
    int nrec;
    int seq;
    int stopped;
    enum turn_cmd cmd;
    int cmd_seq;
    char *cmd_name;
    cJSON *cmd_input;
    int64_t cmd_ms;
    struct now_rec *nows;
    int nnows, capnows;
    char err[ERR_MAX];
    char nondet[ERR_MAX];
    enum wf_status st;
    char *output_text;
};

static void step_clear(struct wstep *s)
{
    free(s->name);
    cJSON_Delete(s->output);
    free(s->error);
    memset(s, 0, sizeof(*s));
}

/* runs.c's next_recorded, as is. */
static const struct wstep *next_recorded(struct turn *t, enum step_kind kind, const char *name,
                                         int *seq, int *stop)
{
    const struct wstep *s;

    *stop = 0;
    *seq = t->seq++;
    if (t->stopped) {
        *stop = 1;
        return NULL;
    }
    if (*seq >= t->nrec)
        return NULL;
    s = &t->job.run->steps[*seq];
    if (s->kind != kind || (name != NULL && strcmp(s->name != NULL ? s->name : "", name) != 0)) {
        snprintf(t->nondet, sizeof(t->nondet),
                 "non-determinism at step %d: recorded %s \"%s\", code asked for %s \"%s\"", *seq,
                 kind_names[s->kind], s->name != NULL ? s->name : "", kind_names[kind],
                 name != NULL ? name : "");
        t->cmd = C_NONDET;
        t->stopped = 1;
        *stop = 1;
        return NULL;
    }
    return s;
}

/* runs.c's host_activity, as is. */
static enum wf_status r_activity(struct wf_ctx *ctx, const char *name, const cJSON *input,
                                 cJSON **output)
{
    struct turn *t = ctx->host;
    const struct wstep *s;
    int seq, stop;

    host_calls++;
    if (output != NULL)
        *output = NULL;
    t->err[0] = '\0';
    if (name == NULL) {
        snprintf(t->err, sizeof(t->err), "activity name is NULL");
        return WF_EINVAL;
    }
    s = next_recorded(t, K_ACTIVITY, name, &seq, &stop);
    if (stop)
        return WF_SUSPEND;
    if (s != NULL) {
        if (!s->ok) {
            snprintf(t->err, sizeof(t->err), "%s", s->error != NULL ? s->error : "failed");
            return WF_ERROR;
        }
        if (output != NULL) {
            *output = s->output != NULL ? cJSON_Duplicate(s->output, 1) : cJSON_CreateNull();
            if (*output == NULL)
                return WF_ENOMEM;
        }
        return WF_OK;
    }
    t->cmd = C_ACTIVITY;
    t->cmd_seq = seq;
    t->cmd_name = strdup(name);
    t->cmd_input = input != NULL ? cJSON_Duplicate(input, 1) : cJSON_CreateNull();
    t->stopped = 1;
    return WF_SUSPEND;
}

/* The workflows driven here make no durable sleep, signal wait or clock
 * read: those calls fail, in both modes. */
static enum wf_status r_sleep(struct wf_ctx *ctx, int64_t ms)
{
    struct turn *t = ctx->host;

    (void)ms;
    snprintf(t->err, sizeof(t->err), "sleep is not driven by bench_turns");
    return WF_EINVAL;
}

static enum wf_status r_wait_signal(struct wf_ctx *ctx, const char *name, int64_t timeout_ms,
                                    cJSON **payload)
{
    struct turn *t = ctx->host;

    (void)name;
    (void)timeout_ms;
    if (payload != NULL)
        *payload = NULL;
    snprintf(t->err, sizeof(t->err), "wait_signal is not driven by bench_turns");
    return WF_EINVAL;
}

static int64_t r_now(struct wf_ctx *ctx)
{
    (void)ctx;
    return wall_ms();
}

__attribute__((format(printf, 3, 4))) static void r_log(struct wf_ctx *ctx, enum wf_log_level level,
                                                        const char *fmt, ...)
{
    struct turn *t = ctx->host;
    va_list ap;

    /* A replay does not repeat what an earlier turn logged. */
    if (t->seq < t->nrec || fmt == NULL)
        return;
    va_start(ap, fmt);
    host_log_like(ctx, level, fmt, ap);
    va_end(ap);
}

static const char *r_error(struct wf_ctx *ctx)
{
    return ((struct turn *)ctx->host)->err;
}

static const struct wf_host_api replay_api = {
    sizeof(struct wf_host_api), r_activity, r_sleep, r_wait_signal, r_now, r_log, r_error,
};

static void turn_free(struct turn *t)
{
    free(t->cmd_name);
    cJSON_Delete(t->cmd_input);
    free(t->nows);
    free(t->output_text);
    free(t);
}

/*
 * One turn of r: start_turn, turn_main and on_turn_done of runs.c in one
 * go (the worker runs turn_main on a turn thread between them). Returns 0
 * when the run asked for an activity (r->act_*), 1 when it ended with an
 * output (r->output_text), -1 when it failed (said on stderr).
 */
static int replay_turn(struct rrun *r)
{
    struct turn *t = calloc(1, sizeof(*t));
    cJSON *output = NULL;
    int rc;

    if (t == NULL) {
        fprintf(stderr, "bench_turns: run %s: out of memory\n", r->id);
        return -1;
    }
    r->token++;
    t->job.run = r;
    t->job.token = r->token;
    t->ctx.size = (uint32_t)sizeof(t->ctx);
    t->ctx.api = &replay_api;
    t->ctx.project_id = BENCH_PROJECT;
    t->ctx.execution_id = r->id;
    t->ctx.workflow = r->workflow;
    t->ctx.host = t;
    t->nrec = r->nsteps;

    /* turn_main */
    t->st = r->wf->fn(&t->ctx, r->input, &output);
    if (t->st == WF_OK && t->cmd == C_NONE) {
        t->output_text = output != NULL ? cJSON_PrintUnformatted(output) : strdup("null");
        if (t->output_text == NULL)
            t->st = WF_ENOMEM;
    }
    cJSON_Delete(output);

    /* on_turn_done */
    if (t->cmd == C_NONDET) {
        fprintf(stderr, "bench_turns: run %s: %s\n", r->id, t->nondet);
        rc = -1;
    } else if (t->st == WF_OK && t->cmd == C_NONE) {
        r->output_text = t->output_text;
        t->output_text = NULL;
        rc = 1;
    } else if (t->st != WF_SUSPEND || t->cmd != C_ACTIVITY) {
        fprintf(stderr, "bench_turns: run %s: workflow returned %d (%s)\n", r->id, (int)t->st,
                t->err);
        rc = -1;
    } else {
        r->act_seq = t->cmd_seq;
        r->act_name = t->cmd_name;
        r->act_input = t->cmd_input;
        t->cmd_name = NULL;
        t->cmd_input = NULL;
        rc = 0;
    }
    turn_free(t);
    return rc;
}

/* take_run: a new run, then its first turn; *rc as replay_turn's. */
static void *replay_start(const struct spec *sp, int idx, int *rc)
{
    struct rrun *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        *rc = -1;
        return NULL;
    }
    run_id(idx, r->id, sizeof(r->id));
    r->workflow = strdup(sp->workflow);
    r->input = cJSON_Duplicate(sp->input, 1);
    r->wf = sp->wf;
    *rc = r->workflow != NULL && r->input != NULL ? replay_turn(r) : -1;
    return r;
}

/*
 * The step's result arrives (on_act_done → send_step: the name moves into
 * the pending step, the input is freed), core acknowledges it (take_ack:
 * the step joins the history) and the next turn replays the run.
 */
static int replay_resume(void *run)
{
    struct rrun *r = run;
    char err[ERR_MAX];
    int ok;
    cJSON *out = fake_result(r->act_name, r->act_input, &ok, err, sizeof(err));

    step_clear(&r->pending);
    r->pending.kind = K_ACTIVITY;
    r->pending.name = r->act_name;
    r->act_name = NULL;
    r->pending.ok = ok;
    r->pending.output = ok ? (out != NULL ? out : cJSON_CreateNull()) : NULL;
    r->pending.error = ok ? NULL : strdup(err);
    r->pending_seq = r->act_seq;
    cJSON_Delete(r->act_input);
    r->act_input = NULL;

    if (r->nsteps == r->cap) {
        int cap = r->cap != 0 ? r->cap * 2 : 8;
        struct wstep *n = realloc(r->steps, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return -1;
        r->steps = n;
        r->cap = cap;
    }
    r->steps[r->nsteps++] = r->pending;
    memset(&r->pending, 0, sizeof(r->pending));
    return replay_turn(r);
}

static char *replay_output(void *run)
{
    struct rrun *r = run;
    char *s = r->output_text;

    r->output_text = NULL;
    return s;
}

static void replay_free(void *run)
{
    struct rrun *r = run;

    if (r == NULL)
        return;
    for (int i = 0; i < r->nsteps; i++)
        step_clear(&r->steps[i]);
    free(r->steps);
    step_clear(&r->pending);
    free(r->act_name);
    cJSON_Delete(r->act_input);
    cJSON_Delete(r->input);
    free(r->workflow);
    free(r->output_text);
    free(r);
}

/* ---------------------------------------------------------------- coroutines */

/* A stack: the mapping, its lowest page PROT_NONE (the guard). */
struct stack {
    char *map;
    size_t len; /* usable bytes, above the guard */
    int pooled; /* goes back to the free list when its run ends */
    struct stack *next;
};

static struct stack *stack_free_list;
static size_t stack_len; /* STACK_KIB */
static int stacks_mapped;

/* A new stack of len usable bytes over a guard page; NULL on failure. */
static struct stack *stack_map(size_t len)
{
    struct stack *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->map = mmap(NULL, len + page, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (s->map == MAP_FAILED || mprotect(s->map, page, PROT_NONE) < 0) {
        if (s->map != MAP_FAILED)
            munmap(s->map, len + page);
        free(s);
        return NULL;
    }
    s->len = len;
    return s;
}

static void stack_unmap(struct stack *s)
{
    munmap(s->map, s->len + page);
    free(s);
}

/* A stack off the free list, or a new one. */
static struct stack *stack_get(void)
{
    struct stack *s = stack_free_list;

    if (s != NULL) {
        stack_free_list = s->next;
        return s;
    }
    s = stack_map(stack_len);
    if (s != NULL) {
        s->pooled = 1;
        stacks_mapped++;
    }
    return s;
}

/* Resident bytes of s's usable part (mincore), 0 if unknown. */
static size_t stack_resident(const struct stack *s)
{
    size_t pages = s->len / page, n = 0;
    unsigned char *vec = malloc(pages);

    if (vec == NULL)
        return 0;
    if (mincore(s->map + page, s->len, vec) == 0) {
        for (size_t i = 0; i < pages; i++)
            n += vec[i] & 1;
    }
    free(vec);
    return n * page;
}

struct crun {
    char id[RUN_ID_LEN + 1];
    char *workflow;
    const struct wf_workflow_def *wf;
    cJSON *input;
    struct wf_ctx ctx;
    ucontext_t uc;
    struct stack *stk;
    int seq;          /* host calls made */
    char *req_name;   /* the activity asked for, until its result comes */
    cJSON *req_input; /* (copied, as runs.c's host_activity copies it) */
    cJSON *result;    /* its result, handed to the host call */
    int result_ok;
    enum wf_status st;
    int finished;
    char *output_text;
    char err[ERR_MAX];
};

static ucontext_t sched_uc;      /* the scheduler, while a coroutine runs */
static struct crun *co_entering; /* the run co_entry starts */

static enum wf_status c_activity(struct wf_ctx *ctx, const char *name, const cJSON *input,
                                 cJSON **output)
{
    struct crun *r = ctx->host;

    host_calls++;
    if (output != NULL)
        *output = NULL;
    r->err[0] = '\0';
    if (name == NULL) {
        snprintf(r->err, sizeof(r->err), "activity name is NULL");
        return WF_EINVAL;
    }
    r->seq++;
    r->req_name = strdup(name);
    r->req_input = input != NULL ? cJSON_Duplicate(input, 1) : cJSON_CreateNull();
    if (r->req_name == NULL || r->req_input == NULL) {
        free(r->req_name);
        cJSON_Delete(r->req_input);
        r->req_name = NULL;
        r->req_input = NULL;
        snprintf(r->err, sizeof(r->err), "out of memory");
        return WF_ENOMEM;
    }
    /* Parked: the scheduler swaps us back in with the committed result. */
    swapcontext(&r->uc, &sched_uc);
    if (!r->result_ok)
        return WF_ERROR; /* r->err says why */
    if (output != NULL)
        *output = r->result;
    else
        cJSON_Delete(r->result);
    r->result = NULL;
    return WF_OK;
}

static enum wf_status c_sleep(struct wf_ctx *ctx, int64_t ms)
{
    struct crun *r = ctx->host;

    (void)ms;
    snprintf(r->err, sizeof(r->err), "sleep is not driven by bench_turns");
    return WF_EINVAL;
}

static enum wf_status c_wait_signal(struct wf_ctx *ctx, const char *name, int64_t timeout_ms,
                                    cJSON **payload)
{
    struct crun *r = ctx->host;

    (void)name;
    (void)timeout_ms;
    if (payload != NULL)
        *payload = NULL;
    snprintf(r->err, sizeof(r->err), "wait_signal is not driven by bench_turns");
    return WF_EINVAL;
}

__attribute__((format(printf, 3, 4))) static void c_log(struct wf_ctx *ctx, enum wf_log_level level,
                                                        const char *fmt, ...)
{
    va_list ap;

    if (fmt == NULL)
        return;
    va_start(ap, fmt);
    host_log_like(ctx, level, fmt, ap);
    va_end(ap);
}

static const char *c_error(struct wf_ctx *ctx)
{
    return ((struct crun *)ctx->host)->err;
}

static const struct wf_host_api coroutine_api = {
    sizeof(struct wf_host_api), c_activity, c_sleep, c_wait_signal, r_now, c_log, c_error,
};

/* The coroutine's body: the workflow, called once; returns through
 * uc_link to the scheduler. */
static void co_entry(void)
{
    struct crun *r = co_entering;
    cJSON *output = NULL;

    r->st = r->wf->fn(&r->ctx, r->input, &output);
    if (r->st == WF_OK) {
        r->output_text = output != NULL ? cJSON_PrintUnformatted(output) : strdup("null");
        if (r->output_text == NULL)
            r->st = WF_ENOMEM;
    }
    cJSON_Delete(output);
    r->finished = 1;
}

/* Runs r until its next host call parks it or it ends: 0 parked, 1 ended
 * with an output, -1 ended otherwise. A run that ended gives its stack
 * back to the free list. */
static int co_switch_in(struct crun *r)
{
    if (swapcontext(&sched_uc, &r->uc) < 0)
        return -1;
    if (!r->finished)
        return 0;
    if (r->stk->pooled) {
        r->stk->next = stack_free_list;
        stack_free_list = r->stk;
        r->stk = NULL;
    }
    return r->st == WF_OK ? 1 : -1;
}

/* A new run on stk (NULL: one from the free list), switched in at once;
 * *rc as co_switch_in's. */
static struct crun *co_start_on(const struct spec *sp, int idx, struct stack *stk, int *rc)
{
    struct crun *r = calloc(1, sizeof(*r));

    *rc = -1;
    if (r == NULL)
        return NULL;
    run_id(idx, r->id, sizeof(r->id));
    r->workflow = strdup(sp->workflow);
    r->input = cJSON_Duplicate(sp->input, 1);
    r->wf = sp->wf;
    r->ctx.size = (uint32_t)sizeof(r->ctx);
    r->ctx.api = &coroutine_api;
    r->ctx.project_id = BENCH_PROJECT;
    r->ctx.execution_id = r->id;
    r->ctx.workflow = r->workflow;
    r->ctx.host = r;
    r->stk = stk != NULL ? stk : stack_get();
    if (r->workflow == NULL || r->input == NULL || r->stk == NULL || getcontext(&r->uc) < 0)
        return r;
    r->uc.uc_stack.ss_sp = r->stk->map + page;
    r->uc.uc_stack.ss_size = r->stk->len;
    r->uc.uc_link = &sched_uc;
    makecontext(&r->uc, co_entry, 0);
    co_entering = r;
    *rc = co_switch_in(r);
    return r;
}

static void *co_start(const struct spec *sp, int idx, int *rc)
{
    return co_start_on(sp, idx, NULL, rc);
}

/* The step's result arrives: handed to the parked host call, which
 * returns it when the run is switched back in. */
static int co_resume(void *run)
{
    struct crun *r = run;
    int ok;
    cJSON *out = fake_result(r->req_name, r->req_input, &ok, r->err, sizeof(r->err));

    r->result = ok ? (out != NULL ? out : cJSON_CreateNull()) : NULL;
    r->result_ok = ok;
    free(r->req_name);
    cJSON_Delete(r->req_input);
    r->req_name = NULL;
    r->req_input = NULL;
    return co_switch_in(r);
}

static char *co_output(void *run)
{
    struct crun *r = run;
    char *s = r->output_text;

    r->output_text = NULL;
    return s;
}

/* Frees an ended run (a parked one's stack would still hold live frames). */
static void co_free(void *run)
{
    struct crun *r = run;

    if (r == NULL)
        return;
    if (r->stk != NULL && r->stk->pooled) {
        r->stk->next = stack_free_list;
        stack_free_list = r->stk;
    }
    free(r->req_name);
    cJSON_Delete(r->req_input);
    cJSON_Delete(r->result);
    cJSON_Delete(r->input);
    free(r->workflow);
    free(r->output_text);
    free(r);
}

static size_t co_stack_rss(void *run)
{
    struct crun *r = run;

    return r->stk != NULL ? stack_resident(r->stk) : 0;
}

/* ---------------------------------------------------------------- driving */

struct mode {
    const char *name;
    void *(*start)(const struct spec *sp, int idx, int *rc);
    int (*resume)(void *run);
    char *(*output)(void *run);
    void (*free_run)(void *run);
    size_t (*stack_rss)(void *run); /* NULL: no stack of its own */
};

static const struct mode replay_mode = {"replay",      replay_start, replay_resume,
                                        replay_output, replay_free,  NULL};
static const struct mode coroutine_mode = {"coroutine", co_start, co_resume,
                                           co_output,   co_free,  co_stack_rss};

/*
 * Drives nruns runs of sp through m, window at a time, round robin: each
 * visit to a slot makes one resumption (the first is the run's start), and
 * an ended run's slot takes the next run at its next visit. outputs[i]
 * gets run i's output (malloc'ed; the caller frees it) or stays NULL.
 * Returns the number of runs that failed.
 */
static long drive(const struct mode *m, const struct spec *sp, int nruns, int window,
                  char **outputs)
{
    void **slot = calloc((size_t)window, sizeof(*slot));
    int *idx = calloc((size_t)window, sizeof(*idx));
    int next = 0, ended = 0;
    long failed = 0;

    if (slot == NULL || idx == NULL) {
        free(slot);
        free(idx);
        return nruns;
    }
    while (ended < nruns) {
        for (int i = 0; i < window; i++) {
            int rc;
            if (slot[i] == NULL) {
                if (next >= nruns)
                    continue;
                idx[i] = next++;
                slot[i] = m->start(sp, idx[i], &rc);
            } else {
                rc = m->resume(slot[i]);
            }
            if (rc == 0)
                continue;
            if (rc == 1)
                outputs[idx[i]] = m->output(slot[i]);
            else
                failed++;
            m->free_run(slot[i]);
            slot[i] = NULL;
            ended++;
        }
    }
    free(slot);
    free(idx);
    return failed;
}

/* Counts the runs whose output differs from expected (or is missing), and
 * frees got's strings. */
static long compare_outputs(char **expected, char **got, int n)
{
    long bad = 0;

    for (int i = 0; i < n; i++) {
        if (got[i] == NULL || expected[i] == NULL || strcmp(got[i], expected[i]) != 0) {
            if (bad == 0)
                fprintf(stderr, "bench_turns: run %d: output %s, expected %s\n", i,
                        got[i] != NULL ? got[i] : "(none)",
                        expected[i] != NULL ? expected[i] : "(none)");
            bad++;
        }
        free(got[i]);
        got[i] = NULL;
    }
    return bad;
}

/* 1 if text is the output sp's workflow must give: {"ok": true} for the
 * noop workflows, "sum" = n for steps (every result reached the call that
 * asked for it). */
static int output_right(const struct spec *sp, const char *text)
{
    cJSON *o = text != NULL ? cJSON_Parse(text) : NULL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, sp->n >= 0 ? "sum" : "ok");
    int right =
        sp->n >= 0 ? cJSON_IsNumber(it) && it->valuedouble == (double)sp->n : cJSON_IsTrue(it);

    cJSON_Delete(o);
    return right;
}

/* What a parked run holds. */
struct parked {
    double heap;      /* heap bytes per run */
    double rss;       /* process RSS growth per run */
    double stack_rss; /* resident stack bytes per run */
};

/* Parks window runs of sp in m, each waiting for step steps / 2, measures
 * what they hold, then drives them to their end. Returns the runs that
 * failed. */
static long measure_parked(const struct mode *m, const struct spec *sp, int window,
                           struct parked *p)
{
    void **runs = calloc((size_t)window, sizeof(*runs));
    int *rcs = calloc((size_t)window, sizeof(*rcs));
    int k = sp->steps / 2;
    double heap0, rss0, stack = 0;
    long failed = 0;

    memset(p, 0, sizeof(*p));
    if (runs == NULL || rcs == NULL) {
        free(runs);
        free(rcs);
        return window;
    }
    /* The free stacks' pages go back, so that what is resident below is
     * what the parked runs touched. */
    for (struct stack *s = stack_free_list; s != NULL; s = s->next)
        madvise(s->map + page, s->len, MADV_DONTNEED);
    malloc_trim(0);
    heap0 = heap_in_use();
    rss0 = rss_bytes();
    for (int i = 0; i < window; i++) {
        runs[i] = m->start(sp, i, &rcs[i]);
        for (int j = 0; j < k && rcs[i] == 0; j++)
            rcs[i] = m->resume(runs[i]);
    }
    p->heap = (heap_in_use() - heap0) / window;
    p->rss = (rss_bytes() - rss0) / window;
    for (int i = 0; i < window; i++)
        if (m->stack_rss != NULL && rcs[i] == 0)
            stack += (double)m->stack_rss(runs[i]);
    p->stack_rss = stack / window;
    for (int i = 0; i < window; i++) {
        while (rcs[i] == 0)
            rcs[i] = m->resume(runs[i]);
        if (rcs[i] != 1)
            failed++;
        free(m->output(runs[i]));
        m->free_run(runs[i]);
    }
    free(runs);
    free(rcs);
    return failed;
}

/* ---------------------------------------------------------------- the stack */

/* Bytes of s used at the deepest, from the paint left below that. */
static size_t stack_high_water(const struct stack *s)
{
    const unsigned char *lo = (const unsigned char *)s->map + page;
    size_t i = 0;

    while (i < s->len && lo[i] == PAINT)
        i++;
    return s->len - i;
}

/*
 * Runs sp once on a painted stack of HWM_STACK bytes; *hwm gets the bytes
 * it used. expect_ok: whether the run must end with WF_OK. Returns 0, or
 * -1 when the run did not end as expected.
 */
static int measure_high_water(const struct spec *sp, int expect_ok, size_t *hwm)
{
    struct stack *s = stack_map(HWM_STACK);
    struct crun *r;
    int rc;

    *hwm = 0;
    if (s == NULL)
        return -1;
    memset(s->map + page, PAINT, s->len);
    r = co_start_on(sp, 0, s, &rc);
    while (rc == 0)
        rc = co_resume(r);
    *hwm = stack_high_water(s);
    co_free(r);
    stack_unmap(s);
    return (rc == 1) == (expect_ok != 0) ? 0 : -1;
}

/* ---------------------------------------------------------------- the switch */

static ucontext_t ping_uc;

static void ping_entry(void)
{
    for (;;)
        swapcontext(&ping_uc, &sched_uc);
}

static void empty_entry(void)
{
}

/* Prints the "switch" line: a swapcontext round trip, a coroutine's start
 * on a recycled stack, the sigprocmask each swapcontext makes (kept in
 * sigprocmask_ns), and a fresh stack's mmap. Returns 0, or -1 on failure. */
static int bench_switch(long n)
{
    struct stack *s = stack_map(stack_len), *t = stack_map(stack_len);
    ucontext_t uc;
    sigset_t cur;
    double c0, rtt, start, mask, map;

    if (s == NULL || t == NULL || getcontext(&ping_uc) < 0 ||
        sigprocmask(SIG_SETMASK, NULL, &cur) != 0)
        return -1;
    ping_uc.uc_stack.ss_sp = s->map + page;
    ping_uc.uc_stack.ss_size = s->len;
    ping_uc.uc_link = &sched_uc;
    makecontext(&ping_uc, ping_entry, 0);
    swapcontext(&sched_uc, &ping_uc); /* first entry, not counted */
    c0 = cpu_us();
    for (long i = 0; i < n; i++)
        swapcontext(&sched_uc, &ping_uc);
    rtt = (cpu_us() - c0) * 1e3 / (double)n;

    c0 = cpu_us();
    for (long i = 0; i < n; i++) {
        getcontext(&uc);
        uc.uc_stack.ss_sp = t->map + page;
        uc.uc_stack.ss_size = t->len;
        uc.uc_link = &sched_uc;
        makecontext(&uc, empty_entry, 0);
        swapcontext(&sched_uc, &uc);
    }
    start = (cpu_us() - c0) * 1e3 / (double)n;

    c0 = cpu_us();
    for (long i = 0; i < n; i++)
        sigprocmask(SIG_SETMASK, &cur, NULL);
    mask = (cpu_us() - c0) * 1e3 / (double)n;
    sigprocmask_ns = mask;

    c0 = cpu_us();
    for (long i = 0; i < n / 10; i++) {
        struct stack *f = stack_map(stack_len);
        if (f == NULL)
            return -1;
        f->map[page + f->len - 1] = 1; /* the first frame's page */
        stack_unmap(f);
    }
    map = (cpu_us() - c0) * 1e3 / (double)(n / 10);

    /* ping_entry stays parked on s forever: s is not unmapped. */
    stack_unmap(t);
    printf("{\"label\":\"switch\",\"n\":%ld,\"swap_round_trip_ns\":%.1f,\"swap_ns\":%.1f,"
           "\"start_ns\":%.1f,\"sigprocmask_ns\":%.1f,\"stack_map_ns\":%.1f,"
           "\"note\":\"glibc swapcontext saves and restores the signal mask with "
           "rt_sigprocmask: one system call per switch\"}\n",
           n, rtt, rtt / 2, start, mask, map);
    return 0;
}

/* ---------------------------------------------------------------- main */

static const struct wf_plugin *load_plugin(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    wf_plugin_entry_fn entry;
    const struct wf_plugin *p;

    if (dl == NULL) {
        fprintf(stderr, "bench_turns: could not load \"%s\": %s\n", path, dlerror());
        return NULL;
    }
    *(void **)&entry = dlsym(dl, WF_PLUGIN_ENTRY_SYMBOL);
    p = entry != NULL ? entry() : NULL;
    if (p == NULL || p->magic != WF_PLUGIN_MAGIC || p->abi_version != WF_ABI_VERSION ||
        p->size < sizeof(*p)) {
        fprintf(stderr, "bench_turns: incompatible plugin \"%s\"\n", path);
        dlclose(dl);
        return NULL;
    }
    return p;
}

static const struct wf_workflow_def *find_workflow(const struct wf_plugin *p, const char *name)
{
    for (size_t i = 0; i < p->n_workflows; i++)
        if (strcmp(p->workflows[i].name, name) == 0)
            return &p->workflows[i];
    return NULL;
}

/* The figures of one mode on one workflow. */
struct figures {
    double cpu[MAX_ROUNDS];  /* µs per run, per round */
    double wall[MAX_ROUNDS]; /* µs per run, per round */
    double calls;            /* host calls per run */
    struct parked parked;
};

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];

    memcpy(s, v, (size_t)n * sizeof(*s));
    qsort(s, (size_t)n, sizeof(*s), stats_cmp_double);
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void print_mode(const char *name, const struct figures *f, int rounds, int steps,
                       double resumptions, int coroutine, size_t hwm)
{
    double cpu = median(f->cpu, rounds);

    printf("\"%s\":{\"cpu_us_per_run\":%.3f,\"cpu_us_per_step\":%.3f,\"wall_us_per_run\":%.3f,"
           "\"rounds_cpu_us_per_run\":[",
           name, cpu, steps > 0 ? cpu / steps : cpu, median(f->wall, rounds));
    for (int i = 0; i < rounds; i++)
        printf("%s%.3f", i > 0 ? "," : "", f->cpu[i]);
    printf("],\"resumptions_per_run\":%.0f,\"host_calls_per_run\":%.1f,\"parked_at_step\":%d,"
           "\"heap_bytes_per_parked_run\":%.0f,\"rss_bytes_per_parked_run\":%.0f",
           resumptions, f->calls, steps / 2, f->parked.heap, f->parked.rss);
    if (coroutine) /* getcontext, then a swapcontext in and out per step, setcontext at the end */
        printf(",\"stack_kib\":%zu,\"stack_rss_bytes_per_parked_run\":%.0f,"
               "\"stack_high_water_bytes\":%zu,\"stacks_mapped\":%d,"
               "\"sigprocmask_calls_per_run\":%d,\"cpu_us_per_run_without_sigprocmask_est\":%.3f",
               stack_len / 1024, f->parked.stack_rss, hwm, stacks_mapped, 2 * steps + 3,
               cpu - (2 * steps + 3) * sigprocmask_ns / 1e3);
    printf("}");
}

/* One timed pass of m over sp; fills round r of f and checks the outputs
 * against expected (set from this pass when *expected is NULL). Returns
 * failures plus differing outputs. */
static long timed_pass(const struct mode *m, const struct spec *sp, int nruns, int window,
                       char ***expected, struct figures *f, int r)
{
    char **outs = calloc((size_t)nruns, sizeof(*outs));
    double c0, w0;
    long bad;

    if (outs == NULL)
        return nruns;
    host_calls = 0;
    w0 = wall_us();
    c0 = cpu_us();
    bad = drive(m, sp, nruns, window, outs);
    f->cpu[r] = (cpu_us() - c0) / nruns;
    f->wall[r] = (wall_us() - w0) / nruns;
    f->calls = (double)host_calls / nruns;
    if (*expected == NULL) { /* the first pass: checked, then the reference */
        for (int i = 0; i < nruns; i++) {
            if (outs[i] != NULL && !output_right(sp, outs[i])) {
                fprintf(stderr, "bench_turns: %s run %d: wrong output %s\n", sp->label, i, outs[i]);
                bad++;
            }
        }
        *expected = outs;
        return bad;
    }
    bad += compare_outputs(*expected, outs, nruns);
    free(outs);
    return bad;
}

static long bench_spec(struct spec *sp, int runs, int rounds, int window, size_t hwm)
{
    int nruns = runs / sp->run_div > 0 ? runs / sp->run_div : 1;
    int win = window < nruns ? window : nruns;
    struct figures rf, cf;
    char **expected = NULL, **warm = calloc((size_t)win, sizeof(*warm));
    char *input = cJSON_PrintUnformatted(sp->input);
    double rcpu, ccpu;
    long bad = 0;

    memset(&rf, 0, sizeof(rf));
    memset(&cf, 0, sizeof(cf));
    if (warm == NULL || input == NULL)
        return 1;
    /* Warm-up: malloc's caches, the stacks of the free list. */
    bad += drive(&replay_mode, sp, win, win, warm);
    for (int i = 0; i < win; i++)
        free(warm[i]);
    memset(warm, 0, (size_t)win * sizeof(*warm));
    bad += drive(&coroutine_mode, sp, win, win, warm);
    for (int i = 0; i < win; i++)
        free(warm[i]);
    free(warm);

    for (int r = 0; r < rounds; r++) {
        if (r % 2 == 0) {
            bad += timed_pass(&replay_mode, sp, nruns, win, &expected, &rf, r);
            bad += timed_pass(&coroutine_mode, sp, nruns, win, &expected, &cf, r);
        } else {
            bad += timed_pass(&coroutine_mode, sp, nruns, win, &expected, &cf, r);
            bad += timed_pass(&replay_mode, sp, nruns, win, &expected, &rf, r);
        }
    }
    bad += measure_parked(&replay_mode, sp, win, &rf.parked);
    bad += measure_parked(&coroutine_mode, sp, win, &cf.parked);

    rcpu = median(rf.cpu, rounds);
    ccpu = median(cf.cpu, rounds);
    printf("{\"label\":\"%s\",\"workflow\":\"%s\",\"input\":%s,\"steps\":%d,\"runs\":%d,"
           "\"window\":%d,\"rounds\":%d,",
           sp->label, sp->workflow, input, sp->steps, nruns, win, rounds);
    print_mode("replay", &rf, rounds, sp->steps, sp->steps + 1, 0, 0);
    printf(",");
    print_mode("coroutine", &cf, rounds, sp->steps, sp->steps + 1, 1, hwm);
    printf(",\"replay_over_coroutine\":%.3f,\"replay_minus_coroutine_us_per_run\":%.3f,"
           "\"output\":%s,\"outputs_equal\":%s,\"failures\":%ld}\n",
           ccpu > 0 ? rcpu / ccpu : 0.0, rcpu - ccpu,
           expected != NULL && expected[0] != NULL ? expected[0] : "null",
           bad == 0 ? "true" : "false", bad);
    fflush(stdout);
    if (expected != NULL) {
        for (int i = 0; i < nruns; i++)
            free(expected[i]);
        free(expected);
    }
    cJSON_free(input);
    return bad;
}

/* Parses argv[i] (absent: dflt) into [lo, hi]; exits 2 when it is not. */
static long arg_long(int argc, char **argv, int i, long dflt, long lo, long hi)
{
    char *end;
    long v;

    if (i >= argc)
        return dflt;
    errno = 0;
    v = strtol(argv[i], &end, 10);
    if (errno != 0 || *end != '\0' || end == argv[i] || v < lo || v > hi) {
        fprintf(stderr, "bench_turns: bad argument \"%s\" (%ld to %ld)\n", argv[i], lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const struct wf_plugin *p;
    struct spec failing = {"failing", "failing", -1, 1, 1, NULL, NULL};
    size_t hwm[NSPECS], hwm_fail, hwm_max = 0;
    long runs, rounds, window, stack_kib, bad = 0;
    char plugin_path[4096];

    if (argc < 2 || argc > 6) {
        fprintf(stderr,
                "usage: bench_turns PLUGIN [RUNS=10000] [ROUNDS=3] [WINDOW=1000] [STACK_KIB=64]\n");
        return 2;
    }
    runs = arg_long(argc, argv, 2, 10000, 1, MAX_RUNS);
    rounds = arg_long(argc, argv, 3, 3, 1, MAX_ROUNDS);
    window = arg_long(argc, argv, 4, 1000, 1, MAX_WINDOW);
    stack_kib = arg_long(argc, argv, 5, 64, 8, 8192);
    page = (size_t)sysconf(_SC_PAGESIZE);
    stack_len = (size_t)stack_kib * 1024;
    if (stack_len % page != 0) {
        fprintf(stderr, "bench_turns: STACK_KIB must be a multiple of the page size\n");
        return 2;
    }
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0 || realpath(argv[1], plugin_path) == NULL) {
        fprintf(stderr, "bench_turns: %s: %s\n", devnull < 0 ? "/dev/null" : argv[1],
                strerror(errno));
        return 2;
    }
    p = load_plugin(plugin_path);
    if (p == NULL)
        return 2;
    failing.wf = find_workflow(p, "failing");
    failing.input = cJSON_CreateObject();
    cJSON_AddStringToObject(failing.input, "reason", "logged");
    for (size_t i = 0; i < NSPECS; i++) {
        struct spec *sp = &specs[i];
        sp->wf = find_workflow(p, sp->workflow);
        sp->input = cJSON_CreateObject();
        if (sp->n >= 0) {
            cJSON_AddStringToObject(sp->input, "dir", BENCH_DIR);
            cJSON_AddNumberToObject(sp->input, "n", sp->n);
        }
        if (sp->wf == NULL || sp->input == NULL) {
            fprintf(stderr, "bench_turns: %s has no workflow \"%s\"\n", plugin_path, sp->workflow);
            return 2;
        }
    }
    if (failing.wf == NULL || failing.input == NULL) {
        fprintf(stderr, "bench_turns: %s has no workflow \"failing\"\n", plugin_path);
        return 2;
    }

    printf("{\"label\":\"params\",\"plugin\":\"%s\",\"runs\":%ld,\"rounds\":%ld,\"window\":%ld,"
           "\"stack_kib\":%ld,\"guard_bytes\":%zu,\"clock\":\"CLOCK_PROCESS_CPUTIME_ID\"}\n",
           plugin_path, runs, rounds, window, stack_kib, page);

    if (bench_switch(SWITCH_N) < 0) {
        fprintf(stderr, "bench_turns: the switch benchmark failed\n");
        return 2;
    }
    fflush(stdout);
    /* What the plugin needs of a stack, before any run on STACK_KIB. */
    for (size_t i = 0; i < NSPECS; i++) {
        if (measure_high_water(&specs[i], 1, &hwm[i]) < 0) {
            fprintf(stderr, "bench_turns: %s did not end on a coroutine\n", specs[i].label);
            return 1;
        }
        hwm_max = hwm[i] > hwm_max ? hwm[i] : hwm_max;
    }
    if (measure_high_water(&failing, 0, &hwm_fail) < 0) {
        fprintf(stderr, "bench_turns: failing did not fail on a coroutine\n");
        return 1;
    }
    hwm_max = hwm_fail > hwm_max ? hwm_fail : hwm_max;
    printf("{\"label\":\"stack\",\"stack_kib\":%ld,\"guard_bytes\":%zu,\"high_water_bytes\":{",
           stack_kib, page);
    for (size_t i = 0; i < NSPECS; i++)
        printf("\"%s\":%zu,", specs[i].label, hwm[i]);
    printf("\"failing-logged\":%zu},\"max_bytes\":%zu,\"fits\":%s}\n", hwm_fail, hwm_max,
           hwm_max + page <= stack_len ? "true" : "false");
    fflush(stdout);
    if (hwm_max + page > stack_len) {
        fprintf(stderr, "bench_turns: %ld KiB stacks do not hold the %zu bytes the plugin uses\n",
                stack_kib, hwm_max);
        return 1;
    }

    for (size_t i = 0; i < NSPECS; i++)
        bad += bench_spec(&specs[i], (int)runs, (int)rounds, (int)window, hwm[i]);

    for (size_t i = 0; i < NSPECS; i++)
        cJSON_Delete(specs[i].input);
    cJSON_Delete(failing.input);
    while (stack_free_list != NULL) {
        struct stack *s = stack_free_list;
        stack_free_list = s->next;
        stack_unmap(s);
    }
    if (bad > 0)
        fprintf(stderr, "bench_turns: %ld runs failed or differed between the modes\n", bad);
    return bad > 0 ? 1 : 0;
}
