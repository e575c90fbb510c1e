/*
 * replay.c: the host API of a workflow turn (runs_int.h), on turn pool
 * threads. A turn calls the workflow from the top; each host call takes
 * the next seq, and one recorded in the run's history returns its recorded
 * result without running anything (a different kind or name there stops
 * the turn with a non-determinism error naming both). The first call past
 * the history is the turn's command (an activity, a sleep, a signal wait,
 * child runs): it is recorded in the turn, the call answers WF_SUSPEND,
 * and every later call of the turn answers WF_SUSPEND too. The loop thread
 * then acts on the command (runs.c, on_turn_done). Clock reads past the
 * history are recorded in the turn, to be committed with its command.
 * Logs are written only past the history, so a replay does not repeat them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dslmod.h"
#include "jsonutil.h"
#include "log.h"
#include "runs_int.h"

const char *const runs_kind_names[NKINDS] = {"activity", "sleep", "signal", "now", "children"};

static struct turn *turn_of(struct wf_ctx *ctx)
{
    return ctx->host;
}

/*
 * The recorded step at the turn's next seq, checked against what the code
 * asks for; NULL when it is past the history (new work) or the turn must
 * stop (non-determinism: recorded in t). *seq gets the call's seq.
 */
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
                 runs_kind_names[s->kind], s->name != NULL ? s->name : "", runs_kind_names[kind],
                 name != NULL ? name : "");
        t->cmd = C_NONDET;
        t->stopped = 1;
        *stop = 1;
        return NULL;
    }
    return s;
}

static enum wf_status host_activity(struct wf_ctx *ctx, const char *name, const cJSON *input,
                                    cJSON **output)
{
    struct turn *t = turn_of(ctx);
    const struct wstep *s;
    int seq, stop;

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

static enum wf_status host_sleep(struct wf_ctx *ctx, int64_t ms)
{
    struct turn *t = turn_of(ctx);
    const struct wstep *s;
    int seq, stop;

    t->err[0] = '\0';
    s = next_recorded(t, K_SLEEP, NULL, &seq, &stop);
    if (stop)
        return WF_SUSPEND;
    if (s != NULL)
        return WF_OK;
    t->cmd = C_SLEEP;
    t->cmd_seq = seq;
    t->cmd_ms = ms < 0 ? 0 : ms;
    t->stopped = 1;
    return WF_SUSPEND;
}

static enum wf_status host_wait_signal(struct wf_ctx *ctx, const char *name, int64_t timeout_ms,
                                       cJSON **payload)
{
    struct turn *t = turn_of(ctx);
    const struct wstep *s;
    int seq, stop;

    if (payload != NULL)
        *payload = NULL;
    t->err[0] = '\0';
    if (name == NULL) {
        snprintf(t->err, sizeof(t->err), "signal name is NULL");
        return WF_EINVAL;
    }
    s = next_recorded(t, K_SIGNAL, name, &seq, &stop);
    if (stop)
        return WF_SUSPEND;
    if (s != NULL) {
        if (!s->ok) {
            snprintf(t->err, sizeof(t->err), "signal \"%s\" did not arrive in time", name);
            return WF_ETIMEDOUT;
        }
        if (payload != NULL) {
            *payload = s->output != NULL ? cJSON_Duplicate(s->output, 1) : cJSON_CreateNull();
            if (*payload == NULL)
                return WF_ENOMEM;
        }
        return WF_OK;
    }
    t->cmd = C_SIGNAL;
    t->cmd_seq = seq;
    t->cmd_name = strdup(name);
    t->cmd_ms = timeout_ms;
    t->stopped = 1;
    return WF_SUSPEND;
}

static enum wf_status host_children(struct wf_ctx *ctx, const cJSON *specs, enum wf_join join,
                                    int limit, cJSON **results)
{
    struct turn *t = turn_of(ctx);
    const struct wstep *s;
    const cJSON *k;
    char name[32];
    int seq, stop, n = 0;

    if (results != NULL)
        *results = NULL;
    t->err[0] = '\0';
    if (!cJSON_IsArray(specs) || (join != WF_JOIN_ALL && join != WF_JOIN_ANY) || limit < 0 ||
        limit > CHILDREN_MAX) {
        snprintf(t->err, sizeof(t->err), "children: specs must be an array, join all or any");
        return WF_EINVAL;
    }
    cJSON_ArrayForEach(k, specs)
    {
        const char *wf = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(k, "workflow"));
        if (wf == NULL || wf[0] == '\0' || strlen(wf) > 128) {
            snprintf(t->err, sizeof(t->err), "children: spec %d has no workflow name", n);
            return WF_EINVAL;
        }
        if (++n > CHILDREN_MAX) {
            snprintf(t->err, sizeof(t->err), "children: more than %d child runs", CHILDREN_MAX);
            return WF_EINVAL;
        }
    }
    snprintf(name, sizeof(name), "%s:%d", join == WF_JOIN_ANY ? "any" : "all", n);
    s = next_recorded(t, K_CHILDREN, name, &seq, &stop);
    if (stop)
        return WF_SUSPEND;
    if (s != NULL) {
        if (results != NULL) {
            *results = s->output != NULL ? cJSON_Duplicate(s->output, 1) : cJSON_CreateArray();
            if (*results == NULL)
                return WF_ENOMEM;
        }
        if (!s->ok) {
            snprintf(t->err, sizeof(t->err), "%s", s->error != NULL ? s->error : "a child failed");
            return WF_ERROR;
        }
        return WF_OK;
    }
    t->cmd = C_CHILDREN;
    t->cmd_seq = seq;
    t->cmd_input = cJSON_Duplicate(specs, 1);
    t->cmd_ms = limit;
    t->cmd_join = join;
    t->stopped = 1;
    if (t->cmd_input == NULL) {
        snprintf(t->err, sizeof(t->err), "out of memory");
        t->cmd = C_NONE;
        return WF_ENOMEM;
    }
    return WF_SUSPEND;
}

static int64_t host_now(struct wf_ctx *ctx)
{
    struct turn *t = turn_of(ctx);
    const struct wstep *s;
    int seq, stop;
    int64_t v;

    s = next_recorded(t, K_NOW, NULL, &seq, &stop);
    if (stop)
        return ju_wall_ms();
    if (s != NULL && cJSON_IsNumber(s->output))
        return (int64_t)s->output->valuedouble;
    v = ju_wall_ms();
    if (t->nnows == t->capnows) {
        int cap = t->capnows != 0 ? t->capnows * 2 : 4;
        struct now_rec *n = realloc(t->nows, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return v; /* not recorded: a replay may differ, but nothing is lost */
        t->nows = n;
        t->capnows = cap;
    }
    t->nows[t->nnows++] = (struct now_rec){seq, v};
    return v;
}

__attribute__((format(printf, 3, 4))) static void host_log(struct wf_ctx *ctx,
                                                           enum wf_log_level level, const char *fmt,
                                                           ...)
{
    struct turn *t = turn_of(ctx);
    char line[2048];
    va_list ap;

    /* A replay does not repeat what an earlier turn logged. */
    if (t->seq < t->nrec || fmt == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    switch (level) {
    case WF_LOG_ERROR:
        log_error("project=%s run=%s %s", ctx->project_id, ctx->execution_id, line);
        break;
    case WF_LOG_WARNING:
        log_warning("project=%s run=%s %s", ctx->project_id, ctx->execution_id, line);
        break;
    case WF_LOG_DEBUG:
        log_debug("project=%s run=%s %s", ctx->project_id, ctx->execution_id, line);
        break;
    default:
        log_info("project=%s run=%s %s", ctx->project_id, ctx->execution_id, line);
    }
}

static const char *host_error(struct wf_ctx *ctx)
{
    return turn_of(ctx)->err;
}

const struct wf_host_api runs_host_api = {
    sizeof(struct wf_host_api),
    host_activity,
    host_sleep,
    host_wait_signal,
    host_now,
    host_log,
    host_error,
    host_children,
};

void runs_turn_main(void *arg)
{
    struct turn *t = arg;
    cJSON *output = NULL;

    if (t->job.run->dsl != NULL) /* loaded, so the module is */
        t->st = dslmod_get(t->err, sizeof(t->err))
                    ->run(t->job.run->dsl, &t->ctx, t->job.run->input, t->job.run->branch, &output,
                          t->err, sizeof(t->err));
    else
        t->st = t->job.run->wf->fn(&t->ctx, t->job.run->input, &output);
    if (t->st == WF_OK && t->cmd == C_NONE) {
        t->output_text = output != NULL ? cJSON_PrintUnformatted(output) : strdup("null");
        if (t->output_text == NULL)
            t->st = WF_ENOMEM;
    } else if (t->st == WF_ERROR && t->job.run->dsl != NULL && cJSON_IsObject(output)) {
        t->raised = output; /* the error it raised (dsl_run) */
        output = NULL;
    }
    cJSON_Delete(output);
    runs_post(&t->job);
}

void runs_turn_free(struct turn *t)
{
    free(t->cmd_name);
    cJSON_Delete(t->cmd_input);
    free(t->nows);
    free(t->output_text);
    cJSON_Delete(t->raised);
    free(t);
}
