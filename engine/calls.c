/*
 * calls.c: cancel, signal and retry of a run (engine_cancel, engine_signal,
 * engine_retry), each one PL/pgSQL call under the run's row lock
 * (migration 5), answered to the caller once committed; a run held here is
 * told at once.
 */
#include "engine_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "wconn.h"

static const char SQL_SIGNAL[] = "SELECT wf_signal($1::uuid, $2, $3::jsonb)";
static const char SQL_CANCEL[] = "SELECT wf_cancel($1::uuid)";
static const char SQL_RETRY[] = "SELECT wf_retry($1::uuid)";

struct call {
    struct engine *e;
    char id[RUN_ID_LEN + 1];
    char name[129];
    engine_call_fn done;
    void *arg;
};

static void call_answer(struct call *k, int status, const char *run_status, const char *message)
{
    struct engine_call_result res = {status, run_status, message};

    k->done(k->arg, &res);
    free(k);
}

/* Common answers of the wf_* functions: 'unknown' and database trouble.
 * Returns the function's text, or NULL after answering. */
static const char *call_text(struct call *k, const struct dbq_result *res)
{
    char msg[128];

    if (res->outcome != DBQ_OK || PQntuples(res->res) != 1) {
        call_answer(k, res->outcome == DBQ_FAILED ? 500 : 503, NULL,
                    res->outcome == DBQ_OK       ? "unexpected answer"
                    : res->outcome == DBQ_FAILED ? res->message
                                                 : "database unavailable");
        return NULL;
    }
    if (strcmp(PQgetvalue(res->res, 0, 0), "unknown") == 0) {
        snprintf(msg, sizeof(msg), "execution \"%s\" not found", k->id);
        call_answer(k, 404, NULL, msg);
        return NULL;
    }
    return PQgetvalue(res->res, 0, 0);
}

/* call_text for a call on a run that must not have ended: 'ended:<status>'
 * is a 409 too. Returns the text, or NULL after answering. */
static const char *live_text(struct call *k, const struct dbq_result *res)
{
    const char *v = call_text(k, res);
    char msg[160];

    if (v == NULL || strncmp(v, "ended:", 6) != 0)
        return v;
    snprintf(msg, sizeof(msg), "execution %s already %s", k->id, v + 6);
    call_answer(k, 409, v + 6, msg);
    return NULL;
}

/* Claims at once for the local worker of project, if any. */
static void nudge(struct engine *e, const char *project)
{
    struct ework *w = eng_work_for(e, project);

    if (w != NULL) {
        w->more = 1;
        eng_claim(e, w);
    }
}

static void on_cancelled(void *arg, const struct dbq_result *res)
{
    struct call *k = arg;
    struct engine *e = k->e;
    const char *v = live_text(k, res);

    if (v == NULL)
        return;
    if (strcmp(v, "cancelled") == 0) {
        call_answer(k, 200, "cancelled", NULL);
        return;
    }
    /* requested:<host>: its holder ends it, at once when that is us. */
    if (strcmp(v + 10, e->cfg->host_id) == 0) {
        struct erun *r = eng_run_find(e, k->id);
        if (r != NULL && r->state == E_HELD) {
            struct ework *w = eng_work_by_conn(e, r->project, r->conn);
            if (w != NULL)
                eng_to_worker(e, w, eng_item_new("drop", r->id));
            eng_submit_end(e, r, "cancelled", NULL, "{\"message\": \"cancelled\"}", NULL);
        } else if (r != NULL) {
            r->cancel = 1; /* at the end of its step's commit */
        }
    }
    call_answer(k, 202, "cancelling", NULL);
}

static void on_signalled(void *arg, const struct dbq_result *res)
{
    struct call *k = arg;
    struct engine *e = k->e;
    const char *v = live_text(k, res);

    if (v == NULL)
        return;
    if (strncmp(v, "delivered:", 10) == 0)
        nudge(e, v + 10);
    call_answer(k, 202, NULL, NULL);
}

static void on_retried(void *arg, const struct dbq_result *res)
{
    struct call *k = arg;
    struct engine *e = k->e;
    const char *v = call_text(k, res);
    char msg[160];

    if (v == NULL)
        return;
    if (strncmp(v, "not-failed:", 11) == 0) {
        snprintf(msg, sizeof(msg), "execution %s is %s: only a failed run can be retried", k->id,
                 v + 11);
        call_answer(k, 409, v + 11, msg);
        return;
    }
    nudge(e, v + 8); /* retried:<project> */
    call_answer(k, 202, "pending", NULL);
}

static int call_start(struct engine *e, const char *run, const char *name, const char *sql,
                      int nparams, const char *const *params, dbq_done_fn fn, engine_call_fn done,
                      void *arg)
{
    struct call *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return -1;
    k->e = e;
    k->done = done;
    k->arg = arg;
    snprintf(k->id, sizeof(k->id), "%s", run);
    snprintf(k->name, sizeof(k->name), "%s", name != NULL ? name : "");
    if (dbq_exec(e->q, DBQ_DURABLE, 0, sql, nparams, params, NULL, NULL, fn, k) < 0) {
        free(k);
        return -1;
    }
    return 0;
}

int engine_cancel(struct engine *e, const char *run, engine_call_fn done, void *arg)
{
    const char *params[1] = {run};

    return call_start(e, run, NULL, SQL_CANCEL, 1, params, on_cancelled, done, arg);
}

int engine_signal(struct engine *e, const char *run, const char *name, const char *payload,
                  engine_call_fn done, void *arg)
{
    const char *params[3] = {run, name, payload};

    return call_start(e, run, name, SQL_SIGNAL, 3, params, on_signalled, done, arg);
}

int engine_retry(struct engine *e, const char *run, engine_call_fn done, void *arg)
{
    const char *params[1] = {run};

    return call_start(e, run, NULL, SQL_RETRY, 1, params, on_retried, done, arg);
}
