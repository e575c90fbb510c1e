/*
 * claims.c: claiming runs for a worker of this host (FOR UPDATE SKIP LOCKED,
 * at most its free slots, CLAIM_BATCH a statement), reading their history,
 * and handing them over with the code version each is pinned to.
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

#define CLAIM_BATCH 256 /* runs claimed per statement */

/* Runs due (pending, released, sleeping or waiting and due, or whose
 * holder's lease expired); one whose cancel was asked for while its host
 * was gone ends cancelled here instead (the fifth column says so). */
static const char SQL_CLAIM[] =
    "UPDATE executions e SET"
    " status = CASE WHEN e.cancel_requested THEN 'cancelled' ELSE 'running' END,"
    " lease_owner = CASE WHEN e.cancel_requested THEN NULL ELSE $2 END,"
    " lease_expires_at = CASE WHEN e.cancel_requested THEN NULL"
    "  ELSE now() + make_interval(secs => $3::int / 1000.0) END,"
    " completed_at = CASE WHEN e.cancel_requested THEN clock_timestamp() END,"
    " started_at = coalesce(e.started_at, clock_timestamp()), attempt = e.attempt + 1,"
    " updated_at = clock_timestamp()"
    " WHERE e.id IN (SELECT id FROM executions"
    "   WHERE project_id = $1 AND status IN ('pending', 'running', 'sleeping', 'waiting')"
    "   AND run_at <= now()"
    "   AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_owner = $5)"
    "   ORDER BY run_at LIMIT $4 FOR UPDATE SKIP LOCKED)"
    " RETURNING e.id, e.workflow, e.code_sha256, e.input::text, e.cancel_requested,"
    " e.branch::text";

static const char SQL_HISTORY[] =
    "SELECT execution_id, seq, kind, name, status, output::text, error FROM steps"
    " WHERE execution_id = ANY($1::uuid[]) AND status <> 'waiting'"
    " ORDER BY execution_id, seq";

struct claimjob {
    struct engine *e;
    uint64_t conn;
    char project[WF_ID_MAX + 1];
    int limit;
    int n;
    char (*ids)[RUN_ID_LEN + 1];
    cJSON **items; /* the run items, completed with their histories */
};

static void claimjob_free(struct claimjob *j)
{
    for (int i = 0; j->items != NULL && i < j->n; i++)
        cJSON_Delete(j->items[i]);
    free(j->items);
    free(j->ids);
    free(j);
}

/*
 * Hands run item (taken) of r to w, or queues it until w holds the code
 * version r is pinned to: a version not the worker's current code for that
 * workflow is sent to it first (loadcode_provide through env). May reset
 * the worker (then w and its runs are gone when this returns).
 */
static void deliver(struct engine *e, struct ework *w, struct erun *r, cJSON *item)
{
    const char *cur = ju_str(w->code, ju_str(item, "workflow"));
    struct ever *v;
    struct pend *p;
    struct wconn *c;
    uint64_t conn = w->conn;
    char project[WF_ID_MAX + 1];
    int rc;

    if (r->sha[0] == '\0') {
        /* A run without a pinned version (a row written by hand): the
         * worker's current code, if it has the workflow. */
        if (cur == NULL) {
            cJSON_Delete(item);
            eng_fail_held(e, r, "the run has no code version and the worker lacks its workflow");
            return;
        }
        snprintf(r->sha, sizeof(r->sha), "%s", cur);
        cJSON_DeleteItemFromObjectCaseSensitive(item, "sha256");
        cJSON_AddStringToObject(item, "sha256", cur);
    }
    if (cur != NULL && strcmp(cur, r->sha) == 0) {
        v = eng_ever_add(w, r->sha, V_CURRENT);
    } else {
        v = eng_ever_find(w, r->sha);
        if (v == NULL)
            v = eng_ever_add(w, r->sha, V_PENDING);
        else if (v->state == V_CURRENT)
            v = NULL; /* another workflow's current code: it is loaded */
    }
    if (v != NULL)
        v->runs++;
    w->vdirty = 1;
    if (v == NULL || v->state != V_PENDING) {
        eng_to_worker(e, w, item);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        cJSON_Delete(item);
        eng_fail_held(e, r, "could not wait for the run's code version: out of memory");
        return;
    }
    snprintf(p->sha, sizeof(p->sha), "%s", r->sha);
    snprintf(p->id, sizeof(p->id), "%s", r->id);
    p->item = item;
    p->next = w->pend;
    w->pend = p;
    for (struct pend *q = p->next; q != NULL; q = q->next) {
        if (strcmp(q->sha, p->sha) == 0)
            return; /* already asked for */
    }
    c = e->env.find(e->env.arg, w->conn);
    snprintf(project, sizeof(project), "%s", w->project);
    rc = c != NULL ? e->env.provide(e->env.arg, c, r->sha) : -1;
    w = eng_work_by_conn(e, project, conn);
    if (w == NULL)
        return; /* reset meanwhile: its runs were released */
    if (rc != 0)
        eng_version_ready(e, w, p->sha, rc > 0 ? NULL : "could not send the code version");
}

/* The claim j answered: its worker may claim again, and the slots it
 * reserved are free (what it claimed is counted as held from here). */
static void claim_settle(struct engine *e, struct claimjob *j)
{
    struct ework *w = eng_work_by_conn(e, j->project, j->conn);

    if (w == NULL)
        return;
    w->claiming = 0;
    w->reserved -= j->limit;
    if (w->reserved < 0)
        w->reserved = 0;
}

static void claim_finish(struct engine *e, struct claimjob *j, int ok)
{
    struct ework *w = eng_work_by_conn(e, j->project, j->conn);

    claim_settle(e, j);
    for (int i = 0; i < j->n; i++) {
        struct erun *r;
        if (w == NULL || !ok) {
            /* Nobody to hand it to: give it back at once. */
            eng_release_run(e, j->ids[i]);
            continue;
        }
        if (eng_run_find(e, j->ids[i]) != NULL)
            continue; /* already held (claimed by our own first claim) */
        r = eng_run_add(e, j->ids[i], j->project, w->conn);
        if (r == NULL)
            continue;
        w->held++;
        snprintf(r->sha, sizeof(r->sha), "%s", ju_str(j->items[i], "sha256"));
        deliver(e, w, r, j->items[i]);
        j->items[i] = NULL;
        /* Providing a version may have reset the worker. */
        w = eng_work_by_conn(e, j->project, j->conn);
    }
    if (w != NULL && ok && j->n >= j->limit)
        w->more = 1;
    if (w != NULL && w->more)
        eng_claim(e, w);
    claimjob_free(j);
}

static void on_history(void *arg, const struct dbq_result *res)
{
    struct claimjob *j = arg;
    struct engine *e = j->e;
    int i = 0;

    if (res->outcome != DBQ_OK) {
        log_error("could not read the history of claimed runs: %s", res->message);
        claim_finish(e, j, 0);
        return;
    }
    for (int row = 0; row < PQntuples(res->res); row++) {
        const char *id = PQgetvalue(res->res, row, 0);
        cJSON *s, *steps;
        while (i < j->n && strcmp(j->ids[i], id) != 0)
            i++;
        if (i == j->n)
            break; /* ordered like ids: cannot happen */
        steps = cJSON_GetObjectItemCaseSensitive(j->items[i], "steps");
        s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "seq", (double)strtol(PQgetvalue(res->res, row, 1), NULL, 10));
        cJSON_AddStringToObject(s, "kind", PQgetvalue(res->res, row, 2));
        cJSON_AddStringToObject(s, "name", PQgetvalue(res->res, row, 3));
        cJSON_AddStringToObject(s, "status", PQgetvalue(res->res, row, 4));
        if (!PQgetisnull(res->res, row, 5))
            cJSON_AddItemToObject(s, "output", cJSON_CreateRaw(PQgetvalue(res->res, row, 5)));
        if (!PQgetisnull(res->res, row, 6))
            cJSON_AddStringToObject(s, "error", PQgetvalue(res->res, row, 6));
        cJSON_AddItemToArray(steps, s);
    }
    claim_finish(e, j, 1);
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void on_claimed(void *arg, const struct dbq_result *res)
{
    struct claimjob *j = arg;
    struct engine *e = j->e;
    char *arr;
    const char *params[1];
    size_t cap;

    if (res->outcome != DBQ_OK) {
        claim_settle(e, j);
        log_warning("could not claim runs of project %s: %s", j->project, res->message);
        claimjob_free(j);
        return;
    }
    /* Not ended by a cancel, and not held here: a first claim takes this
     * host's runs, and one a local worker holds stays with it (if that
     * worker goes, its release and the claim after it hand the run on). */
    for (int i = 0; i < PQntuples(res->res); i++)
        j->n += strcmp(PQgetvalue(res->res, i, 4), "t") != 0 &&
                eng_run_find(e, PQgetvalue(res->res, i, 0)) == NULL;
    if (j->n == 0) {
        claim_settle(e, j);
        claimjob_free(j);
        return;
    }
    e->st.claimed += (uint64_t)j->n;
    j->ids = calloc((size_t)j->n, sizeof(*j->ids));
    j->items = calloc((size_t)j->n, sizeof(*j->items));
    cap = (size_t)j->n * (RUN_ID_LEN + 1) + 3;
    arr = malloc(cap);
    if (j->ids == NULL || j->items == NULL || arr == NULL) {
        free(arr);
        claim_finish(e, j, 0);
        return;
    }
    /* Sorted by id, the order the history comes in. */
    {
        struct row {
            char id[RUN_ID_LEN + 1];
            int row;
        } *rows = calloc((size_t)j->n, sizeof(*rows));
        if (rows == NULL) {
            free(arr);
            claim_finish(e, j, 0);
            return;
        }
        for (int i = 0, k = 0; i < PQntuples(res->res); i++) {
            if (strcmp(PQgetvalue(res->res, i, 4), "t") == 0 ||
                eng_run_find(e, PQgetvalue(res->res, i, 0)) != NULL)
                continue;
            snprintf(rows[k].id, sizeof(rows[k].id), "%s", PQgetvalue(res->res, i, 0));
            rows[k++].row = i;
        }
        qsort(rows, (size_t)j->n, sizeof(*rows), cmp_ids);
        size_t used = 0;
        for (int i = 0; i < j->n; i++) {
            int row = rows[i].row;
            cJSON *item = eng_item_new("run", rows[i].id);
            snprintf(j->ids[i], sizeof(j->ids[i]), "%s", rows[i].id);
            cJSON_AddStringToObject(item, "workflow", PQgetvalue(res->res, row, 1));
            cJSON_AddStringToObject(
                item, "sha256", PQgetisnull(res->res, row, 2) ? "" : PQgetvalue(res->res, row, 2));
            cJSON_AddItemToObject(item, "input",
                                  PQgetisnull(res->res, row, 3)
                                      ? cJSON_CreateNull()
                                      : cJSON_CreateRaw(PQgetvalue(res->res, row, 3)));
            if (!PQgetisnull(res->res, row, 5)) /* a child run's part of its definition */
                cJSON_AddItemToObject(item, "branch",
                                      cJSON_CreateRaw(PQgetvalue(res->res, row, 5)));
            cJSON_AddItemToObject(item, "steps", cJSON_CreateArray());
            j->items[i] = item;
            used += (size_t)snprintf(arr + used, cap - used, "%c%s%s", i == 0 ? '{' : ',',
                                     rows[i].id, i + 1 < j->n ? "" : "}");
        }
        free(rows);
    }
    params[0] = arr;
    /* Durable: read after every step submitted before it (a worker that
     * went submitted its release after its last steps), never older. */
    if (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE, SQL_HISTORY, 1, params, NULL, NULL, on_history,
                 j) < 0)
        claim_finish(e, j, 0);
    free(arr);
}

/* Claims what waits for w's project, up to its free slots. */
void eng_claim(struct engine *e, struct ework *w)
{
    struct claimjob *j;
    char lease[16], limit[16];
    const char *params[5];
    int room = e->cfg->max_runs - w->held - w->reserved;
    struct wconn *c = e->env.find(e->env.arg, w->conn);

    if (w->claiming || w->retired || room <= 0 || c == NULL || wconn_draining(c))
        return;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return;
    j->e = e;
    j->conn = w->conn;
    snprintf(j->project, sizeof(j->project), "%s", w->project);
    /* The first claim takes this host's runs whatever their lease says,
     * which no later claim does: as many as there is room for. */
    j->limit = room < CLAIM_BATCH || !w->first_claim_done ? room : CLAIM_BATCH;
    snprintf(lease, sizeof(lease), "%d", e->cfg->lease_ms);
    snprintf(limit, sizeof(limit), "%d", j->limit);
    params[0] = w->project;
    params[1] = e->cfg->host_id;
    params[2] = lease;
    params[3] = limit;
    params[4] = w->first_claim_done ? NULL : e->cfg->host_id;
    w->first_claim_done = 1;
    w->more = 0;
    if (dbq_exec(e->q, DBQ_DURABLE, 0, SQL_CLAIM, 5, params, NULL, NULL, on_claimed, j) < 0) {
        free(j);
        return;
    }
    w->claiming = 1;
    w->reserved += j->limit; /* triggers meanwhile do not take these slots */
}
