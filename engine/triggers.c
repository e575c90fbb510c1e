/*
 * triggers.c: new runs (engine_trigger). A run for a project whose worker
 * runs here is inserted already claimed, pinned to the code that worker
 * loaded, and handed over once its INSERT committed; otherwise it is
 * inserted pending and announced with NOTIFY wf_runs, for whichever host
 * runs the project. Triggers go through dbq's insert class: new rows only,
 * committed beside the durable stream (engine_int.h, DESIGN §5).
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

static const char SQL_TRIGGER_ONE[] =
    "INSERT INTO executions (id, project_id, workflow, code_sha256, input, idempotency_key,"
    " status, lease_owner, lease_expires_at, started_at, attempt, deadline_at)"
    " SELECT $1::uuid, w.project_id, w.kebab_name, coalesce($4, w.artifact_sha256), $5::jsonb, $6,"
    "  CASE WHEN $7::text IS NULL THEN 'pending' ELSE 'running' END, $7,"
    "  CASE WHEN $7::text IS NULL THEN NULL"
    "   ELSE now() + make_interval(secs => $8::int / 1000.0) END,"
    "  CASE WHEN $7::text IS NULL THEN NULL ELSE clock_timestamp() END,"
    "  CASE WHEN $7::text IS NULL THEN 0 ELSE 1 END,"
    "  now() + make_interval(secs => $9::bigint / 1000.0)"
    " FROM workflows w WHERE w.project_id = $2 AND w.kebab_name = $3 AND w.is_active"
    " ON CONFLICT (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
    " RETURNING id, status";

static const char SQL_TRIGGER_WHY[] =
    "SELECT (SELECT id::text || ' ' || status FROM executions"
    "         WHERE project_id = $1 AND idempotency_key = $3),"
    " EXISTS (SELECT 1 FROM projects WHERE id = $1),"
    " EXISTS (SELECT 1 FROM workflows WHERE project_id = $1 AND kebab_name = $2 AND is_active)";

static const char SQL_NOTIFY[] = "SELECT pg_notify('wf_runs', $1)";

static char what_notify[] = "announce a pending run";

struct trig {
    struct engine *e;
    char id[RUN_ID_LEN + 1];
    char project[WF_ID_MAX + 1];
    char workflow[128];
    char sha[65];
    char *input;
    char *key;
    uint64_t conn;      /* the worker it goes to, 0: none */
    int64_t t0_wall_ms; /* when it was asked for */
    engine_trigger_fn done;
    void *arg;
};

static void trig_free(struct trig *t)
{
    free(t->input);
    free(t->key);
    free(t);
}

static void trig_answer(struct trig *t, int status, const char *run_status, const char *message)
{
    struct engine_trigger_result res = {status, t->id, run_status, message};

    t->done(t->arg, &res);
    trig_free(t);
}

/* Gives back the worker slot a trigger reserved. */
static void unreserve(struct engine *e, struct trig *t)
{
    struct ework *w = t->conn != 0 ? eng_work_by_conn(e, t->project, t->conn) : NULL;

    if (w != NULL && w->held > 0)
        w->held--;
    t->conn = 0;
}

/* The run is committed as held by this host: hand it to its worker (whose
 * slot the trigger reserved). */
static void hand_new_run(struct engine *e, struct trig *t)
{
    struct ework *w = eng_work_by_conn(e, t->project, t->conn);
    struct erun *r;
    cJSON *item;

    if (w == NULL || e->env.find(e->env.arg, w->conn) == NULL) {
        /* The worker went while the row was written (its slots went with
         * it): give the run back. */
        eng_release_run(e, t->id);
        return;
    }
    r = eng_run_add(e, t->id, t->project, w->conn);
    if (r == NULL) {
        log_error("could not hold run %s: out of memory", t->id);
        w->held--;
        return;
    }
    r->trigger_wall_ms = t->t0_wall_ms;
    snprintf(r->sha, sizeof(r->sha), "%s", t->sha);
    {
        struct ever *v = eng_ever_add(w, t->sha, V_CURRENT);
        if (v != NULL) {
            v->runs++;
            w->vdirty = 1;
        }
    }
    item = eng_item_new("run", t->id);
    cJSON_AddStringToObject(item, "workflow", t->workflow);
    cJSON_AddStringToObject(item, "sha256", t->sha);
    cJSON_AddItemToObject(item, "input", cJSON_CreateRaw(t->input));
    cJSON_AddItemToObject(item, "steps", cJSON_CreateArray());
    eng_to_worker(e, w, item);
}

static void on_trigger_row(void *arg, const struct dbq_result *res)
{
    struct trig *t = arg;
    struct engine *e = t->e;

    if (res->outcome != DBQ_OK) {
        unreserve(e, t);
        trig_answer(t, res->outcome == DBQ_FAILED ? 500 : 503, NULL,
                    res->outcome == DBQ_FAILED ? res->message : "database unavailable");
        return;
    }
    e->st.triggered++;
    hand_new_run(e, t);
    trig_answer(t, 202, "running", NULL);
}

static void on_trigger_why(void *arg, const struct dbq_result *res)
{
    struct trig *t = arg;
    const char *existing;
    char msg[300];

    if (res->outcome != DBQ_OK || PQntuples(res->res) != 1) {
        trig_answer(t, res->outcome == DBQ_FAILED ? 500 : 503, NULL,
                    res->outcome == DBQ_OK       ? "unexpected answer"
                    : res->outcome == DBQ_FAILED ? res->message
                                                 : "database unavailable");
        return;
    }
    existing = PQgetisnull(res->res, 0, 0) ? NULL : PQgetvalue(res->res, 0, 0);
    if (existing != NULL && strlen(existing) > RUN_ID_LEN + 1) {
        /* "<id> <status>": the key names an earlier run. */
        snprintf(t->id, sizeof(t->id), "%.*s", RUN_ID_LEN, existing);
        snprintf(msg, sizeof(msg), "%s", existing + RUN_ID_LEN + 1);
        trig_answer(t, 200, msg, NULL);
        return;
    }
    if (strcmp(PQgetvalue(res->res, 0, 1), "t") != 0)
        snprintf(msg, sizeof(msg), "project \"%s\" not found", t->project);
    else
        snprintf(msg, sizeof(msg), "workflow \"%s\" not found in project %s", t->workflow,
                 t->project);
    trig_answer(t, 404, NULL, msg);
}

static void on_trigger_one(void *arg, const struct dbq_result *res)
{
    struct trig *t = arg;
    struct engine *e = t->e;
    const char *params[3] = {t->project, t->workflow, t->key};
    char status[16];

    if (res->outcome != DBQ_OK) {
        unreserve(e, t);
        trig_answer(t, res->outcome == DBQ_FAILED ? 500 : 503, NULL,
                    res->outcome == DBQ_FAILED ? res->message : "database unavailable");
        return;
    }
    if (PQntuples(res->res) == 1) {
        e->st.triggered++;
        snprintf(status, sizeof(status), "%s", PQgetvalue(res->res, 0, 1));
        if (t->conn != 0) {
            hand_new_run(e, t);
        } else {
            /* Pending: a host running the project claims it. */
            const char *p[1] = {t->project};
            struct ework *w = eng_work_for(e, t->project);
            if (w != NULL) {
                w->more = 1;
                eng_claim(e, w);
            } else if (dbq_exec(e->q, DBQ_FAST, DBQ_RETRY_SAFE, SQL_NOTIFY, 1, p, NULL, NULL,
                                eng_log_failure, what_notify) < 0) {
                log_error("could not announce run %s: out of memory", t->id);
            }
        }
        trig_answer(t, 202, status, NULL);
        return;
    }
    unreserve(e, t);
    /* Nothing inserted: an existing key, or no such project or workflow. */
    if (dbq_exec(e->q, DBQ_FAST, DBQ_RETRY_SAFE, SQL_TRIGGER_WHY, 3, params, NULL, NULL,
                 on_trigger_why, t) < 0)
        trig_answer(t, 503, NULL, "out of memory");
}

int engine_trigger(struct engine *e, const char *project, const char *workflow, const char *input,
                   const char *idempotency_key, int64_t timeout_ms, engine_trigger_fn done,
                   void *arg)
{
    struct trig *t = calloc(1, sizeof(*t));
    struct ework *w;
    const char *sha = NULL;
    char lease[16], tmo[24];

    if (t == NULL)
        return -1;
    snprintf(tmo, sizeof(tmo), "%" PRId64, timeout_ms);
    t->e = e;
    t->done = done;
    t->arg = arg;
    t->t0_wall_ms = ju_wall_ms();
    snprintf(t->project, sizeof(t->project), "%s", project);
    snprintf(t->workflow, sizeof(t->workflow), "%s", workflow);
    t->input = strdup(input != NULL ? input : "null");
    t->key = idempotency_key != NULL ? strdup(idempotency_key) : NULL;
    if (t->input == NULL || (idempotency_key != NULL && t->key == NULL) ||
        eng_new_uuid(t->id) < 0) {
        trig_free(t);
        return -1;
    }
    snprintf(lease, sizeof(lease), "%d", e->cfg->lease_ms);
    /* A local worker with room that loaded the workflow takes the run at
     * once, pinned to the code it runs. */
    w = eng_work_for(e, project);
    if (w != NULL && w->held + w->reserved < e->cfg->max_runs)
        sha = ju_str(w->code, workflow);
    if (sha != NULL) {
        t->conn = w->conn;
        snprintf(t->sha, sizeof(t->sha), "%s", sha);
        w->held++;
    } else if (w != NULL) {
        w->more = 1; /* full, or does not know the workflow: the claim decides */
    }
    if (sha != NULL && t->key == NULL) {
        const char *vals[8] = {t->id,    project,         workflow, t->sha,
                               t->input, e->cfg->host_id, lease,    timeout_ms > 0 ? tmo : NULL};
        if (dbq_row(e->t_trigger, vals, on_trigger_row, t) == 0)
            return 0;
    } else {
        const char *params[9] = {t->id,
                                 project,
                                 workflow,
                                 sha != NULL ? t->sha : NULL,
                                 t->input,
                                 t->key,
                                 sha != NULL ? e->cfg->host_id : NULL,
                                 lease,
                                 timeout_ms > 0 ? tmo : NULL};
        if (dbq_exec(e->q, DBQ_INSERT, 0, SQL_TRIGGER_ONE, 9, params, NULL, NULL, on_trigger_one,
                     t) == 0)
            return 0;
    }
    unreserve(e, t);
    trig_free(t);
    return -1;
}
