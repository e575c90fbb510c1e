/*
 * runs.c: see runs.h. The host API a turn calls is replay.c; the types the
 * two share are in runs_int.h.
 *
 * Ownership. A struct wrun is counted: the table holds one reference, each
 * job on a pool (a turn, an activity attempt) one, each timer entry one; it
 * is freed when the last goes. A run leaves the table when it ends, is
 * dropped or core goes away; a job still running for it then finishes
 * harmlessly and its result is discarded (each job carries the run's token
 * at submission; any change of plan bumps the token). While a turn runs,
 * the loop thread does not touch the run's input or history, which the turn
 * reads; everything else of a run belongs to the loop thread.
 *
 * Jobs come back through the mailbox: a mutex-guarded list and an eventfd.
 * Outgoing items are gathered in one array per loop iteration and sent as
 * one message by runs_flush (or earlier, past RUNS_BATCH_ITEMS or
 * RUNS_BATCH_BYTES of output).
 */
#include "runs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dslmod.h"
#include "jsonutil.h"
#include "loader.h"
#include "log.h"
#include "pool.h"

#define RUNS_BATCH_ITEMS 512
#define RUNS_BATCH_BYTES (4 * 1024 * 1024)
/* An activity attempt. */
struct act {
    struct job job;
    struct wf_activity_ctx actx;
    const struct wf_activity_def *def;
    char execution_id[RUN_ID_LEN + 1];
    char *name;
    cJSON *input;
    int64_t started_ms; /* wall */
    int cancel;         /* __atomic: the run is gone or the deadline passed */
    enum wf_status st;
    cJSON *output;
    char *output_text;
    char fail[ERR_MAX];
};

/* A timer: retry the run's activity, or its attempt's deadline. */
struct tentry {
    int64_t at; /* monotonic ms */
    struct wrun *run;
    uint64_t token;
    int deadline; /* 1: attempt deadline; 0: retry */
};

struct runs {
    struct runs_config cfg;
    const struct plg_registry *reg;
    cJSON *code; /* {"<workflow>":"<sha256>"} of reg */
    struct version *versions;
    const char *project;
    runs_send_fn send;
    void *send_arg;
    struct pool *turns, *acts;
    struct wrun **buckets;
    size_t nbuckets;
    int count;
    /* mailbox */
    pthread_mutex_t mu;
    struct job *done;
    int efd;
    /* timers: a binary heap on at */
    struct tentry *heap;
    size_t nheap, capheap;
    int tfd;
    int64_t armed_at; /* what tfd is set to, 0: disarmed */
    /* outgoing */
    cJSON *out;
    size_t out_bytes;
    int jobs;     /* turns and attempts on the pools, answered or not yet */
    int draining; /* no new turn or attempt starts */
};

/* ---- the table ---- */

static size_t hash_id(const char *id)
{
    size_t h = 1469598103934665603ULL;

    for (; *id != '\0'; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

static struct wrun *find(const struct runs *rs, const char *id)
{
    for (struct wrun *r = rs->buckets[hash_id(id) & (rs->nbuckets - 1)]; r != NULL; r = r->hnext) {
        if (strcmp(r->id, id) == 0)
            return r;
    }
    return NULL;
}

static void step_clear(struct wstep *s)
{
    free(s->name);
    cJSON_Delete(s->output);
    free(s->error);
    memset(s, 0, sizeof(*s));
}

static void clear_activity(struct wrun *r)
{
    free(r->act_name);
    r->act_name = NULL;
    cJSON_Delete(r->act_input);
    r->act_input = NULL;
    r->act_def = NULL;
    r->attempt = 0;
    r->act_started_ms = 0;
}

static void version_free(struct version *v)
{
    plg_unload(v->reg);
    free(v->error);
    free(v);
}

/* Unloads v if it was dropped and no run uses it. */
static void version_check(struct runs *rs, struct version *v)
{
    if (!v->dropped || v->runs > 0)
        return;
    for (struct version **pp = &rs->versions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == v) {
            *pp = v->next;
            log_info("project=%s unloaded code version %.12s", rs->project, v->sha);
            version_free(v);
            return;
        }
    }
}

static void run_unref(struct wrun *r)
{
    if (--r->refs > 0)
        return;
    if (r->ver != NULL) {
        r->ver->runs--;
        version_check(r->rs, r->ver);
    }
    for (int i = 0; i < r->nsteps; i++)
        step_clear(&r->steps[i]);
    free(r->steps);
    step_clear(&r->pending);
    clear_activity(r);
    cJSON_Delete(r->input);
    cJSON_Delete(r->branch);
    free(r->workflow);
    free(r);
}

static void timer_cancel(struct runs *rs, struct wrun *r);

/* Takes r out of the table (its jobs keep it until they end). */
static void run_remove(struct runs *rs, struct wrun *r)
{
    struct wrun **pp = &rs->buckets[hash_id(r->id) & (rs->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == r) {
            *pp = r->hnext;
            break;
        }
    }
    if (r->act_job != NULL)
        __atomic_store_n(&r->act_job->cancel, 1, __ATOMIC_RELAXED);
    timer_cancel(rs, r);
    r->state = R_GONE;
    r->token++;
    rs->count--;
    run_unref(r);
}

/* ---- outgoing ---- */

static void flush_out(struct runs *rs)
{
    cJSON *msg;

    if (cJSON_GetArraySize(rs->out) == 0)
        return;
    msg = cJSON_CreateObject();
    if (msg != NULL && cJSON_AddStringToObject(msg, "t", "ev") != NULL) {
        cJSON_AddItemToObject(msg, "e", rs->out);
        rs->out = NULL;
        if (rs->send(rs->send_arg, msg) < 0)
            log_warning("project=%s could not send run events to core: %s", rs->project,
                        strerror(errno));
    }
    cJSON_Delete(msg);
    cJSON_Delete(rs->out);
    rs->out = cJSON_CreateArray();
    rs->out_bytes = 0;
}

void runs_flush(struct runs *rs)
{
    flush_out(rs);
}

/* Queues item (taken) for core; bytes: the size of its payload. */
static void emit(struct runs *rs, cJSON *item, size_t bytes)
{
    if (item == NULL)
        return;
    if (rs->out == NULL)
        rs->out = cJSON_CreateArray();
    if (rs->out == NULL || !cJSON_AddItemToArray(rs->out, item)) {
        cJSON_Delete(item);
        log_error("project=%s could not queue a run event: out of memory", rs->project);
        return;
    }
    rs->out_bytes += bytes + 128;
    if (cJSON_GetArraySize(rs->out) >= RUNS_BATCH_ITEMS || rs->out_bytes >= RUNS_BATCH_BYTES)
        flush_out(rs);
}

static cJSON *item_new(const char *k, const struct wrun *r)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "k", k) == NULL ||
        cJSON_AddStringToObject(o, "run", r->id) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Adds "nows":[{"seq","value"}] for the turn's recorded clock reads. */
static void add_nows(cJSON *o, const struct turn *t)
{
    cJSON *arr;

    if (o == NULL || t->nnows == 0)
        return;
    arr = cJSON_AddArrayToObject(o, "nows");
    for (int i = 0; arr != NULL && i < t->nnows; i++) {
        cJSON *n = cJSON_CreateObject();
        cJSON_AddNumberToObject(n, "seq", t->nows[i].seq);
        cJSON_AddNumberToObject(n, "value", (double)t->nows[i].value);
        cJSON_AddItemToArray(arr, n);
    }
}

/* {"message": msg} */
static cJSON *error_json(const char *msg)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddStringToObject(e, "message", msg);
    return e;
}

/* Gives a run back to core: transient (this worker is full or stopping:
 * another takes it), or not (it cannot run here: core fails it). */
static void release(struct runs *rs, struct wrun *r, const char *why, int transient)
{
    cJSON *o = item_new("release", r);

    cJSON_AddStringToObject(o, "error", why);
    if (transient)
        cJSON_AddBoolToObject(o, "transient", 1);
    emit(rs, o, strlen(why));
}

/* ---- mailbox ---- */

/* Only the job that finds the list empty wakes the loop: runs_on_mailbox
 * reads the eventfd before it takes the list, so a job added to a list
 * not yet taken is seen by the wake its first job sent. A burst of
 * finished activities then costs one write and one wake-up, not one each
 * (bench/run --only-runs: futex and wake-ups were 40 % of the worker's
 * CPU). */
void runs_post(struct job *j)
{
    struct runs *rs = j->rs;
    uint64_t one = 1;
    int first;

    pthread_mutex_lock(&rs->mu);
    first = rs->done == NULL;
    j->next = rs->done;
    rs->done = j;
    pthread_mutex_unlock(&rs->mu);
    if (first && write(rs->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("project=%s could not wake the worker loop: %s", rs->project, strerror(errno));
}

/* ---- timers ---- */

/* Puts e at heap index i, telling its run where it is. */
static void heap_set(struct runs *rs, size_t i, struct tentry e)
{
    rs->heap[i] = e;
    e.run->tslot = i + 1;
}

static void sift_up(struct runs *rs, size_t i)
{
    struct tentry e = rs->heap[i];

    while (i > 0 && rs->heap[(i - 1) / 2].at > e.at) {
        heap_set(rs, i, rs->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(rs, i, e);
}

static void sift_down(struct runs *rs, size_t i)
{
    struct tentry e = rs->heap[i];

    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= rs->nheap)
            break;
        if (l + 1 < rs->nheap && rs->heap[l + 1].at < rs->heap[l].at)
            m = l + 1;
        if (rs->heap[m].at >= e.at)
            break;
        heap_set(rs, i, rs->heap[m]);
        i = m;
    }
    heap_set(rs, i, e);
}

static void arm(struct runs *rs)
{
    struct itimerspec its;
    int64_t at = rs->nheap > 0 ? rs->heap[0].at : 0;

    if (at == rs->armed_at)
        return;
    memset(&its, 0, sizeof(its));
    if (at > 0) {
        int64_t d = at - ju_mono_ms();
        if (d < 1)
            d = 1;
        its.it_value.tv_sec = d / 1000;
        its.it_value.tv_nsec = (long)(d % 1000) * 1000000L;
    }
    if (timerfd_settime(rs->tfd, 0, &its, NULL) < 0)
        log_error("project=%s could not arm the run timer: %s", rs->project, strerror(errno));
    rs->armed_at = at;
}

/* Takes the entry at heap index i out (its run reference goes to the
 * caller) and returns it. */
static struct tentry heap_take(struct runs *rs, size_t i)
{
    struct tentry e = rs->heap[i];

    e.run->tslot = 0;
    rs->nheap--;
    if (i < rs->nheap) {
        heap_set(rs, i, rs->heap[rs->nheap]);
        sift_down(rs, i);
        sift_up(rs, i);
    }
    return e;
}

/* Cancels r's timer, if it has one. A run has at most one: the deadline of
 * its running attempt, or the wait before its next attempt. */
static void timer_cancel(struct runs *rs, struct wrun *r)
{
    if (r->tslot == 0)
        return;
    (void)heap_take(rs, r->tslot - 1);
    run_unref(r); /* not the last reference: the caller holds one */
    arm(rs);
}

static int timer_add(struct runs *rs, struct wrun *r, int64_t at, int deadline)
{
    timer_cancel(rs, r);
    if (rs->nheap == rs->capheap) {
        size_t cap = rs->capheap != 0 ? rs->capheap * 2 : 64;
        struct tentry *h = realloc(rs->heap, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        rs->heap = h;
        rs->capheap = cap;
    }
    rs->heap[rs->nheap] = (struct tentry){at, r, r->token, deadline};
    r->refs++;
    sift_up(rs, rs->nheap++);
    arm(rs);
    return 0;
}

static struct tentry timer_pop(struct runs *rs)
{
    return heap_take(rs, 0);
}

/* ---- the activity API (activity pool threads) ---- */

__attribute__((format(printf, 3, 4))) static void act_log(struct wf_activity_ctx *a,
                                                          enum wf_log_level level, const char *fmt,
                                                          ...)
{
    char line[2048];
    va_list ap;

    if (fmt == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (level == WF_LOG_ERROR)
        log_error("run=%s activity=%s %s", a->execution_id, a->activity, line);
    else if (level == WF_LOG_WARNING)
        log_warning("run=%s activity=%s %s", a->execution_id, a->activity, line);
    else if (level == WF_LOG_DEBUG)
        log_debug("run=%s activity=%s %s", a->execution_id, a->activity, line);
    else
        log_info("run=%s activity=%s %s", a->execution_id, a->activity, line);
}

__attribute__((format(printf, 2, 3))) static void act_fail(struct wf_activity_ctx *a,
                                                           const char *fmt, ...)
{
    struct act *j = a->host;
    va_list ap;

    if (fmt == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(j->fail, sizeof(j->fail), fmt, ap);
    va_end(ap);
}

static int act_cancelled(struct wf_activity_ctx *a)
{
    struct act *j = a->host;

    return __atomic_load_n(&j->cancel, __ATOMIC_RELAXED) ||
           (a->deadline_ms > 0 && ju_wall_ms() >= a->deadline_ms);
}

static const struct wf_activity_api act_api = {sizeof(struct wf_activity_api), act_log, act_fail,
                                               act_cancelled};

static void act_main(void *arg)
{
    struct act *j = arg;

    j->st = j->def->fn(&j->actx, j->input, &j->output);
    if (j->st == WF_OK) {
        j->output_text = j->output != NULL ? cJSON_PrintUnformatted(j->output) : strdup("null");
        if (j->output_text == NULL)
            j->st = WF_ENOMEM;
    }
    runs_post(&j->job);
}

/* ---- the loop thread: scheduling ---- */

static void job_init(struct job *j, enum job_type type, struct runs *rs, struct wrun *r)
{
    j->type = type;
    j->rs = rs;
    j->run = r;
    j->token = r->token;
    r->refs++;
    rs->jobs++;
}

static void act_free(struct act *j)
{
    free(j->name);
    cJSON_Delete(j->input);
    cJSON_Delete(j->output);
    free(j->output_text);
    free(j);
}

static void fail_run(struct runs *rs, struct wrun *r, const char *msg, const struct turn *t);

static void start_turn(struct runs *rs, struct wrun *r)
{
    struct turn *t;

    r->state = R_READY;
    if (rs->draining)
        return; /* parked at its last checkpoint: the next worker replays it */
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        fail_run(rs, r, "could not run the workflow: out of memory", NULL);
        return;
    }
    r->token++;
    job_init(&t->job, J_TURN, rs, r);
    t->ctx.size = (uint32_t)sizeof(t->ctx);
    t->ctx.api = &runs_host_api;
    t->ctx.project_id = rs->project;
    t->ctx.execution_id = r->id;
    t->ctx.workflow = r->workflow;
    t->ctx.host = t;
    t->nrec = r->nsteps;
    r->state = R_TURN;
    if (pool_submit(rs->turns, runs_turn_main, t) < 0) {
        rs->jobs--;
        run_unref(r);
        runs_turn_free(t);
        fail_run(rs, r, "could not run the workflow: no thread", NULL);
    }
}

static void start_attempt(struct runs *rs, struct wrun *r)
{
    struct act *j;

    if (rs->draining) {
        r->state = R_RETRY; /* not started: the next worker runs it */
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j != NULL) {
        j->name = strdup(r->act_name);
        j->input = cJSON_Duplicate(r->act_input, 1);
    }
    if (j == NULL || j->name == NULL || j->input == NULL) {
        if (j != NULL)
            act_free(j);
        fail_run(rs, r, "could not run the activity: out of memory", NULL);
        return;
    }
    r->token++;
    r->attempt++;
    if (r->attempt == 1)
        r->act_started_ms = ju_wall_ms();
    job_init(&j->job, J_ACT, rs, r);
    j->def = r->act_def;
    snprintf(j->execution_id, sizeof(j->execution_id), "%s", r->id);
    j->started_ms = ju_wall_ms();
    j->actx.size = (uint32_t)sizeof(j->actx);
    j->actx.api = &act_api;
    j->actx.activity = j->name;
    j->actx.execution_id = j->execution_id;
    j->actx.attempt = r->attempt;
    j->actx.deadline_ms = r->act_def->timeout_ms > 0 ? j->started_ms + r->act_def->timeout_ms : 0;
    j->actx.host = j;
    r->state = R_ACTIVITY;
    r->act_job = j;
    if (r->act_def->timeout_ms > 0 &&
        timer_add(rs, r, ju_mono_ms() + r->act_def->timeout_ms, 1) < 0)
        log_warning("project=%s run=%s no timer for the activity's deadline: out of memory",
                    rs->project, r->id);
    if (pool_submit(rs->acts, act_main, j) < 0) {
        rs->jobs--;
        r->act_job = NULL;
        run_unref(r);
        act_free(j);
        fail_run(rs, r, "could not run the activity: no thread", NULL);
    }
}

/* Ends r as failed with msg (and the turn's clock reads, if any). */
static void fail_run(struct runs *rs, struct wrun *r, const char *msg, const struct turn *t)
{
    cJSON *o = item_new("end", r), *e = error_json(msg), *f;
    const cJSON *raised = t != NULL ? t->raised : NULL;

    /* A definition's raised error keeps its fields (type, status, title,
     * detail, instance) beside the message: a parent's join hands them on
     * to its own try/catch. */
    cJSON_ArrayForEach(f, raised)
    {
        if (e != NULL && f->string != NULL && strcmp(f->string, "message") != 0)
            cJSON_AddItemToObject(e, f->string, cJSON_Duplicate(f, 1));
    }
    cJSON_AddStringToObject(o, "status", "failed");
    cJSON_AddItemToObject(o, "error", e);
    if (t != NULL)
        add_nows(o, t);
    emit(rs, o, strlen(msg));
    log_info("project=%s run=%s failed: %s", rs->project, r->id, msg);
    run_remove(rs, r);
}

/* The step (activity) r computed goes to core for its commit. */
static void send_step(struct runs *rs, struct wrun *r, int ok, cJSON *output, char *output_text,
                      const char *error)
{
    cJSON *o = item_new("step", r);
    size_t bytes = output_text != NULL ? strlen(output_text) : 0;

    step_clear(&r->pending);
    r->pending.kind = K_ACTIVITY;
    r->pending.name = r->act_name;
    r->act_name = NULL;
    r->pending.ok = ok;
    r->pending.output = output;
    r->pending.error = error != NULL ? strdup(error) : NULL;
    r->pending_seq = r->act_seq;
    cJSON_AddNumberToObject(o, "seq", r->act_seq);
    cJSON_AddStringToObject(o, "kind", "activity");
    cJSON_AddStringToObject(o, "name", r->pending.name);
    cJSON_AddStringToObject(o, "status", ok ? "completed" : "failed");
    if (ok)
        cJSON_AddItemToObject(o, "output", cJSON_CreateRaw(output_text));
    else
        cJSON_AddStringToObject(o, "error", error != NULL ? error : "failed");
    cJSON_AddNumberToObject(o, "attempts", r->attempt);
    if (r->act_started_ms > 0)
        cJSON_AddNumberToObject(o, "startedAt", (double)r->act_started_ms);
    emit(rs, o, bytes);
    free(output_text);
    clear_activity(r);
    r->state = R_COMMIT;
    r->token++;
}

static int64_t backoff_ms(const struct wf_retry_policy *p, int attempt)
{
    double d = (double)p->initial_interval_ms *
               pow(p->backoff_coefficient >= 1.0 ? p->backoff_coefficient : 1.0, attempt - 1);

    if (p->max_interval_ms > 0 && d > (double)p->max_interval_ms)
        d = (double)p->max_interval_ms;
    return d < 0 ? 0 : (int64_t)d;
}

static const char *status_name(enum wf_status st)
{
    switch (st) {
    case WF_OK:
        return "ok";
    case WF_SUSPEND:
        return "WF_SUSPEND";
    case WF_ERROR:
        return "WF_ERROR";
    case WF_EINVAL:
        return "WF_EINVAL";
    case WF_ETIMEDOUT:
        return "WF_ETIMEDOUT";
    case WF_ECANCELLED:
        return "WF_ECANCELLED";
    case WF_ENOTFOUND:
        return "WF_ENOTFOUND";
    case WF_ENOMEM:
        return "WF_ENOMEM";
    }
    return "an unknown status";
}

/* An attempt ended with st (fail: its message); retries or reports. */
static void attempt_failed(struct runs *rs, struct wrun *r, enum wf_status st, const char *fail)
{
    const struct wf_retry_policy *p = &r->act_def->retry;
    char msg[ERR_MAX + 64];

    if (fail != NULL && fail[0] != '\0')
        snprintf(msg, sizeof(msg), "%s", fail);
    else if (st == WF_ETIMEDOUT)
        snprintf(msg, sizeof(msg), "activity \"%s\" timed out after %" PRId64 " ms", r->act_name,
                 r->act_def->timeout_ms);
    else
        snprintf(msg, sizeof(msg), "activity \"%s\" returned %s", r->act_name, status_name(st));
    if (st != WF_EINVAL && st != WF_ECANCELLED && r->attempt < p->max_attempts) {
        int64_t delay = backoff_ms(p, r->attempt);
        log_info("project=%s run=%s activity %s attempt %d failed (%s); retrying in %" PRId64 " ms",
                 rs->project, r->id, r->act_name, r->attempt, msg, delay);
        r->state = R_RETRY;
        r->token++;
        if (timer_add(rs, r, ju_mono_ms() + delay, 0) < 0)
            start_attempt(rs, r); /* no memory for a timer: retry now */
        return;
    }
    send_step(rs, r, 0, NULL, NULL, msg);
}

static void on_act_done(struct runs *rs, struct act *j)
{
    struct wrun *r = j->job.run;

    if (r->act_job == j)
        r->act_job = NULL;
    if (r->state != R_ACTIVITY || j->job.token != r->token) {
        act_free(j); /* abandoned: the run is gone, or the attempt timed out */
        return;
    }
    timer_cancel(rs, r); /* its deadline */
    if (j->st == WF_OK) {
        cJSON *output = j->output != NULL ? j->output : cJSON_CreateNull();
        char *text = j->output_text;
        j->output = NULL;
        j->output_text = NULL;
        send_step(rs, r, 1, output, text, NULL);
    } else {
        attempt_failed(rs, r, j->st, j->fail);
    }
    act_free(j);
}

/* Appends the turn's clock reads to r's history, as a core commit will. */
static int record_nows(struct wrun *r, const struct turn *t)
{
    for (int i = 0; i < t->nnows; i++) {
        struct wstep *s;
        if (t->nows[i].seq != r->nsteps)
            return -1;
        if (r->nsteps == r->cap) {
            int cap = r->cap != 0 ? r->cap * 2 : 8;
            struct wstep *n = realloc(r->steps, (size_t)cap * sizeof(*n));
            if (n == NULL)
                return -1;
            r->steps = n;
            r->cap = cap;
        }
        s = &r->steps[r->nsteps++];
        memset(s, 0, sizeof(*s));
        s->kind = K_NOW;
        s->ok = 1;
        s->output = cJSON_CreateNumber((double)t->nows[i].value);
    }
    return 0;
}

static void on_turn_done(struct runs *rs, struct turn *t)
{
    struct wrun *r = t->job.run;
    cJSON *o;

    if (r->state != R_TURN || t->job.token != r->token) {
        runs_turn_free(t);
        return;
    }
    if (t->cmd == C_NONDET) {
        fail_run(rs, r, t->nondet, NULL);
    } else if (t->st == WF_OK && t->cmd == C_NONE) {
        o = item_new("end", r);
        cJSON_AddStringToObject(o, "status", "completed");
        cJSON_AddItemToObject(o, "output", cJSON_CreateRaw(t->output_text));
        add_nows(o, t);
        emit(rs, o, strlen(t->output_text));
        run_remove(rs, r);
    } else if (t->st != WF_SUSPEND) {
        char msg[ERR_MAX + 64];
        if (t->err[0] != '\0')
            snprintf(msg, sizeof(msg), "%s", t->err);
        else
            snprintf(msg, sizeof(msg), "workflow \"%s\" returned %s", r->workflow,
                     status_name(t->st));
        fail_run(rs, r, msg, t);
    } else if (t->cmd == C_NONE) {
        fail_run(rs, r, "workflow returned WF_SUSPEND without a host call asking for it", t);
    } else if (record_nows(r, t) < 0) {
        fail_run(rs, r, "could not record the clock: out of memory", t);
    } else if (t->cmd == C_ACTIVITY) {
        /* A run on an older version calls that version's activity if it
         * has one, else the current one of that name. */
        const struct wf_activity_def *def =
            r->ver != NULL ? plg_activity(r->ver->reg, t->cmd_name) : NULL;
        if (def == NULL)
            def = plg_activity(rs->reg, t->cmd_name);
        if (t->nnows > 0) {
            /* The clock reads go to core ahead of the step, in order. */
            o = item_new("nows", r);
            add_nows(o, t);
            emit(rs, o, 0);
        }
        if (def == NULL) {
            /* A step that fails at once, recorded like any failure: the
             * workflow sees it and decides. */
            char msg[512];
            snprintf(msg, sizeof(msg), "activity \"%s\" is not loaded in this worker", t->cmd_name);
            r->act_seq = t->cmd_seq;
            r->act_name = t->cmd_name;
            t->cmd_name = NULL;
            r->attempt = 0;
            send_step(rs, r, 0, NULL, NULL, msg);
        } else {
            r->act_seq = t->cmd_seq;
            r->act_name = t->cmd_name;
            r->act_input = t->cmd_input;
            r->act_def = def;
            r->attempt = 0;
            t->cmd_name = NULL;
            t->cmd_input = NULL;
            start_attempt(rs, r);
        }
    } else if (t->cmd == C_CHILDREN) {
        /* Child runs: core starts them and parks the run until they end. */
        char *text = cJSON_PrintUnformatted(t->cmd_input);
        if (text == NULL) {
            fail_run(rs, r, "could not start the child runs: out of memory", t);
        } else {
            o = item_new("wait", r);
            cJSON_AddNumberToObject(o, "seq", t->cmd_seq);
            cJSON_AddStringToObject(o, "kind", "children");
            cJSON_AddStringToObject(o, "mode", t->cmd_join == WF_JOIN_ANY ? "any" : "all");
            cJSON_AddNumberToObject(o, "limit", (double)t->cmd_ms);
            cJSON_AddItemToObject(o, "children", cJSON_CreateRaw(text));
            add_nows(o, t);
            emit(rs, o, strlen(text));
            free(text);
            run_remove(rs, r);
        }
    } else {
        /* A durable sleep or signal wait: the run is parked by core, and
         * handed back when it is due. */
        o = item_new("wait", r);
        cJSON_AddNumberToObject(o, "seq", t->cmd_seq);
        cJSON_AddStringToObject(o, "kind", t->cmd == C_SLEEP ? "sleep" : "signal");
        if (t->cmd == C_SIGNAL)
            cJSON_AddStringToObject(o, "name", t->cmd_name);
        cJSON_AddNumberToObject(o, t->cmd == C_SLEEP ? "ms" : "timeoutMs", (double)t->cmd_ms);
        add_nows(o, t);
        emit(rs, o, 0);
        run_remove(rs, r);
    }
    runs_turn_free(t);
}

void runs_on_mailbox(struct runs *rs)
{
    struct job *list, *rev = NULL;
    uint64_t n;

    if (read(rs->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_debug("project=%s mailbox read: %s", rs->project, strerror(errno));
    pthread_mutex_lock(&rs->mu);
    list = rs->done;
    rs->done = NULL;
    pthread_mutex_unlock(&rs->mu);
    while (list != NULL) { /* oldest first */
        struct job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev != NULL) {
        struct job *j = rev;
        struct wrun *r = j->run;
        rev = rev->next;
        rs->jobs--;
        if (j->type == J_TURN)
            on_turn_done(rs, (struct turn *)j);
        else
            on_act_done(rs, (struct act *)j);
        run_unref(r);
    }
}

void runs_on_timer(struct runs *rs)
{
    uint64_t n;
    int64_t now = ju_mono_ms();

    if (read(rs->tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_debug("project=%s timer read: %s", rs->project, strerror(errno));
    rs->armed_at = 0;
    while (rs->nheap > 0 && rs->heap[0].at <= now) {
        struct tentry e = timer_pop(rs);
        struct wrun *r = e.run;
        if (e.token == r->token) {
            if (e.deadline && r->state == R_ACTIVITY) {
                if (r->act_job != NULL)
                    __atomic_store_n(&r->act_job->cancel, 1, __ATOMIC_RELAXED);
                r->act_job = NULL; /* its thread ends when the code returns */
                attempt_failed(rs, r, WF_ETIMEDOUT, NULL);
            } else if (!e.deadline && r->state == R_RETRY) {
                start_attempt(rs, r);
            }
        }
        run_unref(r);
    }
    arm(rs);
}

/* ---- messages from core ---- */

static enum step_kind parse_kind(const char *s, int *ok)
{
    *ok = 1;
    for (int i = 0; s != NULL && i < NKINDS; i++) {
        if (strcmp(s, runs_kind_names[i]) == 0)
            return (enum step_kind)i;
    }
    *ok = 0;
    return K_ACTIVITY;
}

/* {"k":"run"}: takes the run and its history (detached from item). */
static int take_run(struct runs *rs, cJSON *item, char *err, size_t errlen)
{
    const char *id = ju_str(item, "run");
    const char *workflow = ju_str(item, "workflow");
    const char *sha = ju_str(item, "sha256");
    cJSON *steps = cJSON_GetObjectItemCaseSensitive(item, "steps");
    struct wrun *r;
    cJSON *s;
    int n = 0;

    if (!ju_valid_run_id(id) || workflow == NULL || sha == NULL || strlen(sha) != 64 ||
        (steps != NULL && !cJSON_IsArray(steps))) {
        snprintf(err, errlen, "malformed run from core");
        return -1;
    }
    if (find(rs, id) != NULL) {
        snprintf(err, errlen, "core handed run %s twice", id);
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto nomem;
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->sha, sizeof(r->sha), "%s", sha);
    r->workflow = strdup(workflow);
    r->refs = 1;
    r->input = cJSON_DetachItemFromObjectCaseSensitive(item, "input");
    r->branch = cJSON_DetachItemFromObjectCaseSensitive(item, "branch");
    if (cJSON_IsNull(r->branch)) {
        cJSON_Delete(r->branch);
        r->branch = NULL;
    }
    if (r->workflow == NULL)
        goto nomem_run;
    if (r->input == NULL)
        r->input = cJSON_CreateNull();
    cJSON_ArrayForEach(s, steps)
    {
        n++;
    }
    if (n > 0) {
        r->steps = calloc((size_t)n, sizeof(*r->steps));
        if (r->steps == NULL)
            goto nomem_run;
        r->cap = n;
    }
    cJSON_ArrayForEach(s, steps)
    {
        struct wstep *w = &r->steps[r->nsteps];
        int64_t seq;
        int ok;
        const char *status = ju_str(s, "status");
        const char *name = ju_str(s, "name");
        const char *error = ju_str(s, "error");

        w->kind = parse_kind(ju_str(s, "kind"), &ok);
        if (!ok || ju_int(s, "seq", &seq) < 0 || seq != r->nsteps || status == NULL) {
            snprintf(err, errlen, "malformed history of run %s from core", id);
            run_unref(r);
            return -1;
        }
        w->name = name != NULL ? strdup(name) : NULL;
        w->error = error != NULL ? strdup(error) : NULL;
        w->ok = strcmp(status, "completed") == 0;
        w->output = cJSON_DetachItemFromObjectCaseSensitive(s, "output");
        if (cJSON_IsNull(w->output)) {
            cJSON_Delete(w->output);
            w->output = NULL;
        }
        r->nsteps++;
    }
    r->hnext = rs->buckets[hash_id(r->id) & (rs->nbuckets - 1)];
    rs->buckets[hash_id(r->id) & (rs->nbuckets - 1)] = r;
    rs->count++;
    r->rs = rs;
    {
        const char *cur = ju_str(rs->code, workflow);
        char why[1300];
        why[0] = '\0';
        if (cur == NULL || strcmp(cur, sha) != 0) {
            struct version *v = rs->versions;
            while (v != NULL && strcmp(v->sha, sha) != 0)
                v = v->next;
            if (v == NULL)
                snprintf(why, sizeof(why),
                         "code version %.12s of workflow \"%.200s\" is not loaded", sha, workflow);
            else if (v->reg == NULL)
                snprintf(why, sizeof(why), "code version %.12s could not be loaded: %s", sha,
                         v->error != NULL ? v->error : "?");
            else {
                r->ver = v;
                v->runs++;
                r->wf = plg_workflow(v->reg, workflow);
                r->dsl = plg_definition(v->reg, workflow);
            }
        } else {
            r->wf = plg_workflow(rs->reg, workflow);
            r->dsl = plg_definition(rs->reg, workflow);
        }
        if (why[0] == '\0' && r->wf == NULL)
            snprintf(why, sizeof(why), "workflow \"%.200s\" is not in code version %.12s", workflow,
                     sha);
        if (why[0] != '\0') {
            release(rs, r, why, 0);
            run_remove(rs, r);
            return 0;
        }
    }
    if (rs->draining) {
        release(rs, r, "the worker is stopping", 1);
        run_remove(rs, r);
        return 0;
    }
    if (rs->count > rs->cfg.max_runs) {
        release(rs, r, "the worker holds MAX_CONCURRENT_WORKFLOW_EXECUTIONS runs", 1);
        run_remove(rs, r);
        return 0;
    }
    start_turn(rs, r);
    return 0;
nomem_run:
    run_unref(r);
nomem:
    /* Not the run's fault: core gets it back and hands it out again. */
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "k", "release");
        cJSON_AddStringToObject(o, "run", id);
        cJSON_AddStringToObject(o, "error", "out of memory");
        cJSON_AddBoolToObject(o, "transient", 1);
        emit(rs, o, 0);
    }
    return 0;
}

static int take_ack(struct runs *rs, const cJSON *item, char *err, size_t errlen)
{
    const char *id = ju_str(item, "run");
    struct wrun *r = id != NULL ? find(rs, id) : NULL;
    int64_t seq;

    if (r == NULL || ju_int(item, "seq", &seq) < 0 || r->state != R_COMMIT ||
        seq != r->pending_seq || seq != r->nsteps) {
        snprintf(err, errlen, "core acknowledged a step the worker did not send");
        return -1;
    }
    if (r->nsteps == r->cap) {
        int cap = r->cap != 0 ? r->cap * 2 : 8;
        struct wstep *n = realloc(r->steps, (size_t)cap * sizeof(*n));
        if (n == NULL) {
            fail_run(rs, r, "could not keep the run's history: out of memory", NULL);
            return 0;
        }
        r->steps = n;
        r->cap = cap;
    }
    r->steps[r->nsteps++] = r->pending;
    memset(&r->pending, 0, sizeof(r->pending));
    start_turn(rs, r);
    return 0;
}

int runs_on_message(struct runs *rs, const cJSON *msg, char *err, size_t errlen)
{
    cJSON *items = cJSON_GetObjectItemCaseSensitive(msg, "e");
    cJSON *it;

    if (!cJSON_IsArray(items)) {
        snprintf(err, errlen, "malformed event message from core");
        return -1;
    }
    cJSON_ArrayForEach(it, items)
    {
        const char *k = ju_str(it, "k");
        int rc;

        if (k == NULL) {
            snprintf(err, errlen, "event without a kind from core");
            return -1;
        }
        if (strcmp(k, "run") == 0) {
            rc = take_run(rs, it, err, errlen);
        } else if (strcmp(k, "ack") == 0) {
            rc = take_ack(rs, it, err, errlen);
        } else if (strcmp(k, "unversion") == 0) {
            const char *sha = ju_str(it, "sha256");
            if (sha == NULL || strlen(sha) != 64) {
                snprintf(err, errlen, "malformed unversion from core");
                return -1;
            }
            runs_drop_version(rs, sha);
            rc = 0;
        } else if (strcmp(k, "drop") == 0) {
            const char *id = ju_str(it, "run");
            struct wrun *r = id != NULL ? find(rs, id) : NULL;
            if (r != NULL)
                run_remove(rs, r);
            rc = 0;
        } else {
            snprintf(err, errlen, "unknown event \"%.32s\" from core", k);
            rc = -1;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

void runs_core_lost(struct runs *rs)
{
    for (size_t b = 0; b < rs->nbuckets; b++) {
        while (rs->buckets[b] != NULL)
            run_remove(rs, rs->buckets[b]);
    }
    cJSON_Delete(rs->out);
    rs->out = cJSON_CreateArray();
    rs->out_bytes = 0;
}

/* ---- life cycle ---- */

struct runs *runs_new(const struct runs_config *cfg, const struct plg_registry *reg,
                      const cJSON *code, const char *project, runs_send_fn send, void *arg)
{
    struct runs *rs = calloc(1, sizeof(*rs));
    size_t nb = 64;

    if (rs == NULL)
        return NULL;
    rs->cfg = *cfg;
    rs->reg = reg;
    rs->code = cJSON_IsObject(code) ? cJSON_Duplicate(code, 1) : cJSON_CreateObject();
    rs->project = project;
    rs->send = send;
    rs->send_arg = arg;
    while (nb < (size_t)cfg->max_runs * 2 && nb < ((size_t)1 << 22))
        nb *= 2;
    rs->nbuckets = nb;
    rs->buckets = calloc(nb, sizeof(*rs->buckets));
    pthread_mutex_init(&rs->mu, NULL);
    rs->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rs->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    rs->turns = pool_new("wf-turn", cfg->turn_threads);
    rs->acts = pool_new("wf-activity", cfg->max_activities);
    rs->out = cJSON_CreateArray();
    if (rs->buckets == NULL || rs->efd < 0 || rs->tfd < 0 || rs->turns == NULL ||
        rs->acts == NULL || rs->out == NULL || rs->code == NULL) {
        (void)runs_free(rs, 0);
        return NULL;
    }
    return rs;
}

int runs_mailbox_fd(const struct runs *rs)
{
    return rs->efd;
}

int runs_timer_fd(const struct runs *rs)
{
    return rs->tfd;
}

int runs_count(const struct runs *rs)
{
    return rs->count;
}

int runs_add_version(struct runs *rs, const char *sha, struct plg_registry *reg, const char *err)
{
    struct version *v;

    for (v = rs->versions; v != NULL; v = v->next) {
        if (strcmp(v->sha, sha) == 0) {
            /* Sent again (core had dropped it): keep the one loaded. */
            v->dropped = 0;
            plg_unload(reg);
            return 0;
        }
    }
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return -1;
    snprintf(v->sha, sizeof(v->sha), "%s", sha);
    v->reg = reg;
    v->error = err != NULL ? strdup(err) : NULL;
    v->next = rs->versions;
    rs->versions = v;
    return 0;
}

void runs_drop_version(struct runs *rs, const char *sha)
{
    for (struct version *v = rs->versions; v != NULL; v = v->next) {
        if (strcmp(v->sha, sha) == 0) {
            v->dropped = 1;
            version_check(rs, v);
            return;
        }
    }
}

void runs_drain(struct runs *rs)
{
    rs->draining = 1;
}

int runs_busy(const struct runs *rs)
{
    return rs->jobs;
}

/* A queued job dropped by pool_stop. */
static void drop_job(void *arg)
{
    struct job *j = arg;
    struct wrun *r = j->run;

    if (j->type == J_TURN) {
        runs_turn_free((struct turn *)j);
    } else {
        if (r->act_job == (struct act *)j)
            r->act_job = NULL;
        act_free((struct act *)j);
    }
    run_unref(r);
}

int runs_free(struct runs *rs, int wait_ms)
{
    int stuck = 0;

    if (rs == NULL)
        return 0;
    if (rs->buckets != NULL)
        runs_core_lost(rs);
    /* Jobs that were queued are dropped; running plugin code gets until
     * wait_ms to return. */
    if (rs->turns != NULL && pool_stop(rs->turns, drop_job, wait_ms) < 0)
        stuck = 1;
    if (rs->acts != NULL && pool_stop(rs->acts, drop_job, wait_ms) < 0)
        stuck = 1;
    if (stuck) {
        /* Plugin code still runs and may touch what we would free. */
        log_warning("project=%s plugin code did not return within %d ms at stop", rs->project,
                    wait_ms);
        return -1;
    }
    runs_on_mailbox(rs); /* finished jobs free their runs */
    while (rs->nheap > 0) {
        struct tentry e = timer_pop(rs);
        run_unref(e.run);
    }
    free(rs->heap);
    if (rs->efd >= 0)
        close(rs->efd);
    if (rs->tfd >= 0)
        close(rs->tfd);
    pthread_mutex_destroy(&rs->mu);
    while (rs->versions != NULL) {
        struct version *v = rs->versions;
        rs->versions = v->next;
        version_free(v);
    }
    cJSON_Delete(rs->code);
    cJSON_Delete(rs->out);
    free(rs->buckets);
    free(rs);
    return 0;
}
