/*
 * engine.c: see engine.h. The engine's other files (engine_int.h says
 * which) share its state through engine_int.h; this one holds the tables,
 * worker messages, steps, ends, timers and the life cycle.
 *
 * State (loop thread only): the runs this host holds, by id (struct erun),
 * and the workers that may take runs, by project (struct ework). A run is
 * bound to the connection id of the worker it was handed to; every callback
 * of a statement carries the run's id and the generation it had when the
 * statement was submitted, and looks the run up again: a run released,
 * ended or handed elsewhere meanwhile makes the answer stale, and it is
 * dropped. Items for each worker are gathered during a loop turn and sent as
 * one {"t":"ev"} message at its end.
 *
 * Statements: triggers, steps and ends are multi-row templates (group
 * commit coalesces a turn's rows into one statement); claims, reads,
 * releases and lease renewals are single statements. Every write that
 * changes a held run checks lease_owner = this host in the statement, so a
 * host that lost its lease (another host claimed the run after it expired)
 * cannot write to it.
 */
#include "engine_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dbq.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"
#include "wconn.h"

const double ENGINE_HIST_LE[ENGINE_HIST_N - 1] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,   1,     2.5,  5,     10};

#define POLL_MS 1000       /* every project with a ready worker is polled this often */
#define ACTIVE_EVERY 5     /* polls between two counts of the runs not ended */
#define CHILDREN_MAX 10000 /* child runs one call may start */
#define SETTLE_BATCH 1000  /* joins settled per statement */
#define SETTLE_BATCH_S "1000"

static void hist_add(struct engine_hist *h, double seconds)
{
    int i = 0;

    if (seconds < 0)
        seconds = 0;
    while (i < ENGINE_HIST_N - 1 && seconds > ENGINE_HIST_LE[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += seconds;
}

/* ---- tables ---- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct erun *eng_run_find(struct engine *e, const char *id)
{
    for (struct erun *r = e->runs[hash_str(id) % NBUCKETS]; r != NULL; r = r->next) {
        if (strcmp(r->id, id) == 0)
            return r;
    }
    return NULL;
}

struct erun *eng_run_add(struct engine *e, const char *id, const char *project, uint64_t conn)
{
    struct erun *r = calloc(1, sizeof(*r));
    uint32_t b = hash_str(id) % NBUCKETS;

    if (r == NULL)
        return NULL;
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->project, sizeof(r->project), "%s", project);
    r->conn = conn;
    r->gen = ++e->next_gen;
    r->state = E_HELD;
    r->next = e->runs[b];
    e->runs[b] = r;
    e->st.held++;
    return r;
}

static void run_del(struct engine *e, struct erun *r)
{
    for (struct erun **pp = &e->runs[hash_str(r->id) % NBUCKETS]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    e->st.held--;
    free(r);
}

struct ework *eng_work_by_conn(struct engine *e, const char *project, uint64_t conn)
{
    for (struct ework *w = e->works[hash_str(project) % NPBUCKETS]; w != NULL; w = w->next) {
        if (w->conn == conn)
            return w;
    }
    return NULL;
}

/* The worker of project that takes new runs here (ready, not draining). */
struct ework *eng_work_for(struct engine *e, const char *project)
{
    for (struct ework *w = e->works[hash_str(project) % NPBUCKETS]; w != NULL; w = w->next) {
        struct wconn *c;
        if (strcmp(w->project, project) != 0)
            continue;
        c = e->env.find(e->env.arg, w->conn);
        if (c != NULL && !w->retired && !wconn_draining(c))
            return w;
    }
    return NULL;
}

/* ---- code versions a worker holds ---- */

struct ever *eng_ever_find(struct ework *w, const char *sha)
{
    for (int i = 0; i < w->nvers; i++) {
        if (strcmp(w->vers[i].sha, sha) == 0)
            return &w->vers[i];
    }
    return NULL;
}

struct ever *eng_ever_add(struct ework *w, const char *sha, enum ever_state state)
{
    struct ever *v = eng_ever_find(w, sha);

    if (v != NULL)
        return v;
    if (w->nvers == w->capvers) {
        int cap = w->capvers != 0 ? w->capvers * 2 : 4;
        struct ever *n = realloc(w->vers, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        w->vers = n;
        w->capvers = cap;
    }
    v = &w->vers[w->nvers++];
    snprintf(v->sha, sizeof(v->sha), "%s", sha);
    v->state = state;
    v->runs = 0;
    w->vdirty = 1;
    return v;
}

static void work_free(struct engine *e, struct ework *w)
{
    loop_timer_cancel(e->loop, &w->wake);
    while (w->pend != NULL) {
        struct pend *p = w->pend;
        w->pend = p->next;
        cJSON_Delete(p->item);
        free(p);
    }
    free(w->vers);
    cJSON_Delete(w->code);
    cJSON_Delete(w->out);
    free(w);
}

/* Version sha reached w (err NULL) or cannot: its waiting runs go on, or
 * fail with err. */
void eng_version_ready(struct engine *e, struct ework *w, const char *sha, const char *err)
{
    struct ever *v = eng_ever_find(w, sha);
    struct pend **pp = &w->pend;

    if (v != NULL && err == NULL)
        v->state = V_READY;
    while (*pp != NULL) {
        struct pend *p = *pp;
        struct erun *r;
        if (strcmp(p->sha, sha) != 0) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        r = eng_run_find(e, p->id);
        if (err == NULL && r != NULL) {
            eng_to_worker(e, w, p->item);
        } else {
            cJSON_Delete(p->item);
            if (r != NULL) {
                char msg[600];
                snprintf(msg, sizeof(msg), "code version %.12s: %s", sha, err);
                eng_fail_held(e, r, msg);
            }
        }
        free(p);
    }
    if (v != NULL && err != NULL)
        *v = w->vers[--w->nvers];
    w->vdirty = 1;
}

/* ---- sending to workers ---- */

/* The worker's code versions and the runs it holds on each, for its
 * status: [{"sha256","current","runs"}]. */
static void publish_versions(struct engine *e, struct ework *w)
{
    struct wconn *c = e->env.find(e->env.arg, w->conn);
    cJSON *arr = cJSON_CreateArray();
    char *text;

    w->vdirty = 0;
    for (int i = 0; arr != NULL && i < w->nvers; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sha256", w->vers[i].sha);
        cJSON_AddBoolToObject(o, "current", w->vers[i].state == V_CURRENT);
        cJSON_AddNumberToObject(o, "runs", w->vers[i].runs);
        cJSON_AddItemToArray(arr, o);
    }
    text = arr != NULL ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (c != NULL && text != NULL && e->env.versions != NULL)
        e->env.versions(e->env.arg, c, text);
    free(text);
}

static void flush_works(void *arg)
{
    struct engine *e = arg;

    if (e->detached)
        return;
    for (unsigned b = 0; b < NPBUCKETS; b++) {
again:
        for (struct ework *w = e->works[b]; w != NULL; w = w->next) {
            struct wconn *c;
            cJSON *msg;
            if (w->vdirty)
                publish_versions(e, w);
            if (w->out == NULL)
                continue;
            msg = cJSON_CreateObject();
            cJSON_AddStringToObject(msg, "t", "ev");
            cJSON_AddItemToObject(msg, "e", w->out);
            w->out = NULL;
            c = e->env.find(e->env.arg, w->conn);
            /* A failed send resets the worker, whose gone event frees w
             * and changes this bucket: start it over (what was sent has
             * out NULL). */
            if (c != NULL && wconn_send(c, msg) < 0) {
                cJSON_Delete(msg);
                goto again;
            }
            cJSON_Delete(msg);
        }
    }
}

void eng_to_worker(struct engine *e, struct ework *w, cJSON *item)
{
    if (item == NULL)
        return;
    if (w->out == NULL)
        w->out = cJSON_CreateArray();
    if (w->out == NULL || !cJSON_AddItemToArray(w->out, item))
        cJSON_Delete(item);
}

cJSON *eng_item_new(const char *k, const char *run)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "k", k);
    cJSON_AddStringToObject(o, "run", run);
    return o;
}

/* ---- ids ---- */

int eng_new_uuid(char out[RUN_ID_LEN + 1])
{
    unsigned char b[16];

    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, RUN_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return 0;
}

/* A callback's reference to a run: its id and generation. */
struct ref {
    struct engine *e;
    char id[RUN_ID_LEN + 1];
    uint64_t gen;
    int seq;
    char status[12]; /* eng_submit_end: the status written */
};

static struct ref *ref_new(struct engine *e, const struct erun *r, int seq)
{
    struct ref *x = malloc(sizeof(*x));

    if (x == NULL)
        return NULL;
    x->e = e;
    snprintf(x->id, sizeof(x->id), "%s", r->id);
    x->gen = r->gen;
    x->seq = seq;
    x->status[0] = '\0';
    return x;
}

/* The run x refers to, if it is still the same. */
static struct erun *ref_run(const struct ref *x)
{
    struct erun *r = eng_run_find(x->e, x->id);

    return r != NULL && r->gen == x->gen ? r : NULL;
}

/* ---- statements ---- */

static const char SQL_TRIGGER[] =
    "INSERT INTO executions (id, project_id, workflow, code_sha256, input, status, lease_owner,"
    " lease_expires_at, started_at, attempt, deadline_at)"
    " SELECT u.id, u.project, u.workflow, u.sha, u.input, 'running', u.owner,"
    "  now() + make_interval(secs => u.lease_ms / 1000.0), clock_timestamp(), 1,"
    "  now() + make_interval(secs => u.timeout_ms / 1000.0)"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[],"
    "  $7::int[], $8::bigint[]) AS u(id, project, workflow, sha, input, owner, lease_ms, "
    "timeout_ms)";

/* Only the lease holder writes a step; an existing step is never
 * overwritten. RETURNING says which rows landed. */
static const char SQL_STEP[] =
    "INSERT INTO steps (execution_id, seq, project_id, name, kind, status, output, error,"
    " attempts, started_at, completed_at)"
    " SELECT u.id, u.seq, e.project_id, u.name, u.kind, u.status, u.output, u.error, u.attempts,"
    "  to_timestamp(u.started_ms / 1000.0), clock_timestamp()"
    " FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::jsonb[],"
    "  $7::text[], $8::int[], $9::text[], $10::float8[])"
    "  AS u(id, seq, name, kind, status, output, error, attempts, owner, started_ms)"
    /* LATERAL: one primary-key lookup per row (a join would scan every
     * leased run's index entries, dead ones included) */
    " CROSS JOIN LATERAL (SELECT x.project_id FROM executions x WHERE x.id = u.id"
    /* IS TRUE: not an index condition, so the probe is by the key, never
     * a walk of this host's entries in the lease index */
    "  AND (x.lease_owner = u.owner AND x.status = 'running' AND NOT x.cancel_requested) IS TRUE"
    /* FOR SHARE: a claim by another host (its lease expired) waits for
     * this commit, and then reads the step */
    "  FOR SHARE) e"
    " ON CONFLICT DO NOTHING RETURNING execution_id, seq,"
    "  extract(epoch FROM clock_timestamp() - started_at), attempts";

/* wf_end (migration 7): one primary-key UPDATE per row, RETURNING the
 * rows that ended (id, seconds since the run was created). */
static const char SQL_END[] =
    "SELECT id, secs FROM wf_end($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[], $5::text[],"
    " $6::float8[])";

/* A run whose cancel was asked for ends cancelled instead. */
static const char SQL_RELEASE[] =
    "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL,"
    " status = CASE WHEN cancel_requested THEN 'cancelled' ELSE status END,"
    " completed_at = CASE WHEN cancel_requested THEN clock_timestamp() ELSE completed_at END,"
    " error = CASE WHEN cancel_requested THEN '{\"message\": \"cancelled\"}' ELSE error END,"
    " updated_at = clock_timestamp()"
    " WHERE id = ANY($1::uuid[]) AND (lease_owner = $2 AND status = 'running') IS TRUE";

/* $5: this host's id on the first claim after core started (its runs from
 * before are its own, whatever their lease says), else NULL. */

static const char SQL_RENEW[] =
    "UPDATE executions SET lease_expires_at = now() + make_interval(secs => $2::int / 1000.0)"
    " WHERE lease_owner = $1 AND status = 'running'";

/* Runs of this host whose cancel was asked for elsewhere: they end now. */
static const char SQL_CANCEL_SWEEP[] =
    "UPDATE executions SET status = 'cancelled', completed_at = clock_timestamp(),"
    " error = '{\"message\": \"cancelled\"}', lease_owner = NULL, lease_expires_at = NULL,"
    " updated_at = clock_timestamp()"
    " WHERE lease_owner = $1 AND status = 'running' AND cancel_requested RETURNING id";

static const char SQL_SIGNAL_WAIT[] =
    "SELECT wf_signal_wait($1::uuid, $2::int, $3, $4::bigint, $5)";

static const char SQL_CHILDREN_WAIT[] =
    "SELECT wf_children_wait($1::uuid, $2::int, $3, $4::jsonb, $5, $6::int)";

/* Joins whose children ended (migration 10), SETTLE_BATCH at a time. */
static const char SQL_SETTLE[] = "SELECT wf_settle_joins(" SETTLE_BATCH_S ")";

/* Children nobody waits for any more (their parent ended or is gone, or
 * its join completed without them: a first-to-finish join, or a failed
 * child) are cancelled; one that a host holds ends there at its next step,
 * like any cancel. A join step that is missing is not "completed": it was
 * deleted by a retry of the parent, whose replay asks for the same
 * children again. SKIP LOCKED: a child busy now is cancelled at the next
 * sweep. */
static const char SQL_ORPHAN_SWEEP[] =
    "UPDATE executions e SET cancel_requested = true,"
    " status = CASE WHEN e.lease_owner IS NULL THEN 'cancelled' ELSE e.status END,"
    " error = CASE WHEN e.lease_owner IS NULL"
    "  THEN '{\"message\": \"cancelled: its parent no longer waits for it\"}'::jsonb"
    "  ELSE e.error END,"
    " completed_at = CASE WHEN e.lease_owner IS NULL THEN clock_timestamp() END,"
    " updated_at = clock_timestamp()"
    " WHERE e.id IN (SELECT c.id FROM executions c"
    "  WHERE c.parent_id IS NOT NULL AND c.status IN ('pending', 'running', 'sleeping', 'waiting')"
    "  AND NOT c.cancel_requested"
    "  AND (NOT EXISTS (SELECT 1 FROM executions p WHERE p.id = c.parent_id"
    "    AND p.status IN ('pending', 'running', 'sleeping', 'waiting'))"
    "   OR EXISTS (SELECT 1 FROM steps s WHERE s.execution_id = c.parent_id"
    "    AND s.seq = c.parent_seq AND s.status <> 'waiting'))"
    "  FOR UPDATE SKIP LOCKED) RETURNING e.id";

/* Runs past their deadline fail, unless another live host holds them (it
 * times them out itself). */
static const char SQL_TIMEOUT_SWEEP[] =
    "UPDATE executions SET status = 'failed', completed_at = clock_timestamp(),"
    " error = jsonb_build_object('message', 'run timed out after ' ||"
    "  round(extract(epoch FROM deadline_at - created_at) * 1000)::bigint || ' ms'),"
    " lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()"
    " WHERE deadline_at < now() AND status IN ('pending', 'running', 'sleeping', 'waiting')"
    " AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at < now())"
    " RETURNING id";

/* Runs not ended, by status, all hosts (the claim index covers them). */
static const char SQL_ACTIVE[] =
    "SELECT status, count(*) FROM executions"
    " WHERE status IN ('pending', 'running', 'sleeping', 'waiting') GROUP BY status";

/* For statements whose success needs no follow-up: failures are logged,
 * saying what failed (arg, one of these). */
static char what_clock[] = "record a clock read";
static char what_release[] = "release a run";
static char what_release_worker[] = "release a worker's runs";

void eng_log_failure(void *arg, const struct dbq_result *res)
{
    if (res->outcome != DBQ_OK)
        log_error("could not %s: %s", (const char *)arg, res->message);
}

/* Gives run id back to the database (lease cleared) for any worker to
 * claim; a failure is logged. */
void eng_release_run(struct engine *e, const char *id)
{
    char arr[64];
    const char *params[2] = {arr, e->cfg->host_id};

    snprintf(arr, sizeof(arr), "{%s}", id);
    if (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, SQL_RELEASE, 2, params, NULL,
                 NULL, eng_log_failure, what_release) < 0)
        log_error("could not release run %s: out of memory", id);
}

/* ---- ending runs ---- */

static void on_end_done(void *arg, const struct dbq_result *res);

/* Writes the end of run r: status completed/failed (output, error JSON
 * text or NULL), or sleeping (wake_ms: wall ms it is due). */
void eng_submit_end(struct engine *e, struct erun *r, const char *status, const char *output,
                    const char *error, const char *wake_ms)
{
    const char *vals[6] = {r->id, status, output, error, e->cfg->host_id, wake_ms};
    struct ref *x = ref_new(e, r, 0);

    r->state = E_ENDING;
    if (x != NULL)
        snprintf(x->status, sizeof(x->status), "%s", status);
    if (x == NULL || dbq_row(e->t_end, vals, on_end_done, x) < 0) {
        /* The run stays running under our lease: the next claim after a
         * release, or another host after the lease, picks it up. */
        free(x);
        log_error("could not end run %s: out of memory", r->id);
    }
}

/* Forgets r (its worker's slot is free again). */

static void drop_run(struct engine *e, struct erun *r)
{
    struct ework *w = eng_work_by_conn(e, r->project, r->conn);
    struct ever *v = w != NULL ? eng_ever_find(w, r->sha) : NULL;

    if (w != NULL && w->held > 0)
        w->held--;
    if (v != NULL && v->runs > 0)
        v->runs--;
    if (v != NULL)
        w->vdirty = 1;
    if (v != NULL && v->state == V_READY && v->runs == 0) {
        /* Its last run here ended: the worker unloads it (an item of the
         * turn's message: sending here could reset the worker under us). */
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "k", "unversion");
        cJSON_AddStringToObject(m, "sha256", v->sha);
        *v = w->vers[--w->nvers];
        eng_to_worker(e, w, m);
    }
    run_del(e, r);
    /* A slot is free: runs that found none wait in the database. */
    if (w != NULL && w->more)
        eng_claim(e, w);
}

static void on_end_done(void *arg, const struct dbq_result *res)
{
    struct ref *x = arg;
    struct engine *e = x->e;
    struct erun *r = ref_run(x);

    if (r == NULL) {
        free(x);
        return;
    }
    if (res->outcome != DBQ_OK) {
        log_error("could not record the end of run %s: %s", r->id, res->message);
    } else {
        if (strcmp(x->status, "completed") == 0)
            e->st.completed++;
        else if (strcmp(x->status, "failed") == 0)
            e->st.failed++;
        else if (strcmp(x->status, "cancelled") == 0)
            e->st.cancelled++;
        else
            e->st.parked++;
        for (int i = 0; x->status[0] != 's' && i < PQntuples(res->res); i++) {
            if (strcmp(PQgetvalue(res->res, i, 0), r->id) == 0) {
                hist_add(&e->st.run_seconds, strtod(PQgetvalue(res->res, i, 1), NULL));
                break;
            }
        }
    }
    free(x);
    drop_run(e, r);
}

/* Ends r as failed with message (a worker reset, a bad output). */
void eng_fail_held(struct engine *e, struct erun *r, const char *message)
{
    cJSON *err = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(err, "message", message);
    text = cJSON_PrintUnformatted(err);
    cJSON_Delete(err);
    eng_submit_end(e, r, "failed", NULL, text != NULL ? text : "{}", NULL);
    free(text);
}

/* ---- steps ---- */

static void rehand(struct engine *e, struct erun *r);

static void on_step_done(void *arg, const struct dbq_result *res)
{
    struct ref *x = arg;
    struct engine *e = x->e;
    struct erun *r = ref_run(x);
    struct ework *w;
    int landed = 0;

    if (r == NULL || r->state != E_COMMITTING || r->seq != x->seq) {
        free(x);
        return;
    }
    if (r->cancel) {
        /* Asked to stop while its step was written: it ends here. */
        free(x);
        w = eng_work_by_conn(e, r->project, r->conn);
        if (w != NULL)
            eng_to_worker(e, w, eng_item_new("drop", r->id));
        eng_submit_end(e, r, "cancelled", NULL, "{\"message\": \"cancelled\"}", NULL);
        return;
    }
    if (res->outcome != DBQ_OK) {
        char msg[600];
        snprintf(msg, sizeof(msg), "could not record step %d: %s", x->seq, res->message);
        log_error("run %s: %s", r->id, msg);
        free(x);
        w = eng_work_by_conn(e, r->project, r->conn);
        if (w != NULL)
            eng_to_worker(e, w, eng_item_new("drop", r->id));
        eng_fail_held(e, r, msg);
        return;
    }
    for (int i = 0; i < PQntuples(res->res); i++) {
        if (strcmp(PQgetvalue(res->res, i, 0), r->id) == 0 &&
            strtol(PQgetvalue(res->res, i, 1), NULL, 10) == x->seq) {
            long attempts = strtol(PQgetvalue(res->res, i, 3), NULL, 10);
            landed = 1;
            if (!PQgetisnull(res->res, i, 2))
                hist_add(&e->st.step_seconds, strtod(PQgetvalue(res->res, i, 2), NULL));
            if (attempts > 1)
                e->st.retries += (uint64_t)(attempts - 1);
            break;
        }
    }
    free(x);
    w = eng_work_by_conn(e, r->project, r->conn);
    if (!landed) {
        /* Another host holds the run now, or the step was already written
         * (a retry after a lost answer): this worker's view is stale. Give
         * the run back (only if it is still ours) and claim it again from
         * the rows, or it would sit under our renewed lease. */
        log_warning("run %s: step %d was not recorded (lease lost or step already written); "
                    "giving it back",
                    r->id, r->seq);
        if (w != NULL)
            eng_to_worker(e, w, eng_item_new("drop", r->id));
        rehand(e, r);
        return;
    }
    e->st.steps++;
    r->state = E_HELD;
    if (w != NULL) {
        cJSON *ack = eng_item_new("ack", r->id);
        cJSON_AddNumberToObject(ack, "seq", r->seq);
        eng_to_worker(e, w, ack);
    }
}

/* Submits one step row; seq < 0 for clock reads, whose answers matter only
 * when they fail (the step after them, in the same statement, says). */
static int submit_step(struct engine *e, struct erun *r, int seq, const char *kind,
                       const char *name, const char *status, const char *output, const char *error,
                       int attempts, double started_ms, int tracked)
{
    char seqs[16], att[16], started[32];
    const char *vals[10] = {r->id,
                            seqs,
                            name,
                            kind,
                            status,
                            output,
                            error,
                            att,
                            e->cfg->host_id,
                            started_ms > 0 ? started : NULL};
    struct ref *x = NULL;

    snprintf(seqs, sizeof(seqs), "%d", seq);
    snprintf(att, sizeof(att), "%d", attempts);
    snprintf(started, sizeof(started), "%.0f", started_ms);
    if (tracked) {
        x = ref_new(e, r, seq);
        if (x == NULL)
            return -1;
    }
    if (dbq_row(e->t_step, vals, tracked ? on_step_done : eng_log_failure,
                tracked ? (void *)x : (void *)what_clock) < 0) {
        free(x);
        return -1;
    }
    return 0;
}

/* ---- worker messages ---- */

/* The JSON text of item's member key (NULL when absent or null). */
static char *member_text(const cJSON *item, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);

    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    return cJSON_PrintUnformatted(v);
}

/* Returns 0, or -1 with why set: a protocol error. */
static int on_nows(struct engine *e, struct erun *r, const cJSON *item, const char **why)
{
    const cJSON *n;

    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(item, "nows"))
    {
        int64_t seq, v;
        char val[32];
        if (ju_int(n, "seq", &seq) < 0 || ju_int(n, "value", &v) < 0 || seq < 0 || seq > 1000000) {
            *why = "malformed clock read";
            return -1;
        }
        snprintf(val, sizeof(val), "%" PRId64, v);
        if (submit_step(e, r, (int)seq, "now", "now", "completed", val, NULL, 1, 0, 0) < 0)
            log_error("run %s: could not record a clock read: out of memory", r->id);
    }
    return 0;
}

static int on_step(struct engine *e, struct erun *r, const cJSON *item, const char **why)
{
    const char *name = ju_str(item, "name");
    const char *status = ju_str(item, "status");
    const char *error = ju_str(item, "error");
    int64_t seq, attempts = 1, started = 0;
    char *output;
    int ok;

    if (ju_int(item, "seq", &seq) < 0 || seq < 0 || seq > 1000000 || name == NULL ||
        status == NULL || (strcmp(status, "completed") != 0 && strcmp(status, "failed") != 0)) {
        *why = "malformed step";
        return -1;
    }
    (void)ju_int(item, "attempts", &attempts);
    (void)ju_int(item, "startedAt", &started);
    if (!r->first_done && r->trigger_wall_ms > 0 && started > 0)
        hist_add(&e->st.first_seconds, (double)(started - r->trigger_wall_ms) / 1000.0);
    r->first_done = 1;
    if (on_nows(e, r, item, why) < 0)
        return -1;
    ok = strcmp(status, "completed") == 0;
    output = ok ? member_text(item, "output") : NULL;
    r->state = E_COMMITTING;
    r->seq = (int)seq;
    if (submit_step(e, r, (int)seq, "activity", name, status,
                    ok ? (output ? output : "null") : NULL,
                    ok ? NULL : (error != NULL ? error : "failed"), (int)attempts, (double)started,
                    1) < 0) {
        r->state = E_HELD;
        free(output);
        *why = NULL;
        eng_fail_held(e, r, "could not record the step: out of memory");
        return 0;
    }
    free(output);
    return 0;
}

static int on_end(struct engine *e, struct erun *r, const cJSON *item, const char **why)
{
    const char *status = ju_str(item, "status");
    char *output, *error;

    if (status == NULL || (strcmp(status, "completed") != 0 && strcmp(status, "failed") != 0)) {
        *why = "malformed end";
        return -1;
    }
    if (on_nows(e, r, item, why) < 0)
        return -1;
    output = member_text(item, "output");
    error = member_text(item, "error");
    eng_submit_end(e, r, status, output, error, NULL);
    free(output);
    free(error);
    return 0;
}

static void on_wake(void *arg)
{
    struct ework *w = arg;

    w->more = 1;
    eng_claim(w->e, w);
}

/* Claims for w at monotonic at_ms (a sleep it parked is due; later ones
 * are found by the poll or by this timer set again). */
static void wake_at(struct engine *e, struct ework *w, int64_t at_ms)
{
    if (w == NULL)
        return;
    if (!loop_timer_armed(&w->wake) || at_ms < w->wake.at)
        loop_timer_set(e->loop, &w->wake, at_ms, on_wake, w);
}

/* Gives r back to the database and claims again at once: its history
 * changed outside the worker (a signal arrived, a wait timed out). */
static void rehand(struct engine *e, struct erun *r)
{
    struct ework *w;

    eng_release_run(e, r->id);
    w = eng_work_for(e, r->project); /* the project's current worker, after r is gone */
    drop_run(e, r);
    if (w != NULL) {
        w->more = 1;
        eng_claim(e, w);
    }
}

static void on_signal_wait(void *arg, const struct dbq_result *res)
{
    struct ref *x = arg;
    struct engine *e = x->e;
    struct erun *r = ref_run(x);
    const char *v;

    if (r == NULL) {
        /* Its worker went meanwhile: a run that goes on ('continue') is
         * still leased here, and nobody holds it: give it back. */
        if (res->outcome == DBQ_OK && PQntuples(res->res) == 1 &&
            strcmp(PQgetvalue(res->res, 0, 0), "continue") == 0)
            eng_release_run(e, x->id);
        free(x);
        return;
    }
    free(x);
    if (res->outcome != DBQ_OK || PQntuples(res->res) != 1) {
        log_error("run %s: could not wait for its signal: %s", r->id,
                  res->outcome == DBQ_OK ? "no answer" : res->message);
        rehand(e, r);
        return;
    }
    v = PQgetvalue(res->res, 0, 0);
    if (strcmp(v, "continue") == 0) {
        rehand(e, r); /* the signal was there, or the wait timed out */
    } else {
        /* parked (woken by the signal, or at its deadline), or lost */
        if (strcmp(v, "parked") == 0 && r->seq >= 0)
            wake_at(e, eng_work_by_conn(e, r->project, r->conn), loop_now(e->loop) + r->seq + 1);
        drop_run(e, r);
    }
}

/* A wait for a signal (wf_signal_wait: consumes one that came, times the
 * wait out, or parks the run as waiting). r->seq is borrowed for the
 * timeout (ms, -1: none) until the answer. */
static int wait_signal(struct engine *e, struct erun *r, const cJSON *item, int seq,
                       const char **why)
{
    const char *name = ju_str(item, "name");
    int64_t timeout = -1;
    char seqs[16], tms[24];
    const char *params[5] = {r->id, seqs, name, tms, e->cfg->host_id};
    struct ref *x;

    (void)ju_int(item, "timeoutMs", &timeout);
    if (name == NULL || strlen(name) > 128) {
        *why = "malformed signal wait";
        return -1;
    }
    if (timeout < 0)
        timeout = -1;
    snprintf(seqs, sizeof(seqs), "%d", seq);
    snprintf(tms, sizeof(tms), "%" PRId64, timeout);
    x = ref_new(e, r, seq);
    r->state = E_ENDING;
    r->seq = timeout > INT32_MAX - 1 ? INT32_MAX - 1 : (int)timeout;
    if (x == NULL || dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, SQL_SIGNAL_WAIT, 5,
                              params, NULL, NULL, on_signal_wait, x) < 0) {
        free(x);
        eng_fail_held(e, r, "could not wait for the signal: out of memory");
    }
    return 0;
}

/* Child runs started and waited for (wf_children_wait: writes the join
 * step and the children, or finds them; the run goes on at once when the
 * join is already complete, else it is parked until wf_settle_joins
 * completes it). Same answers as a signal wait, with no timeout. */
static int wait_children(struct engine *e, struct erun *r, const cJSON *item, int seq,
                         const char **why)
{
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(item, "children"), *k;
    const char *mode = ju_str(item, "mode");
    int64_t limit = 0;
    char seqs[16], lim[24];
    char *specs;
    const char *params[6] = {r->id, seqs, e->cfg->host_id, NULL, mode, lim};
    struct ref *x;
    int n = 0;

    (void)ju_int(item, "limit", &limit);
    if (!cJSON_IsArray(kids) || mode == NULL ||
        (strcmp(mode, "all") != 0 && strcmp(mode, "any") != 0) || limit < 0 ||
        limit > CHILDREN_MAX) {
        *why = "malformed children wait";
        return -1;
    }
    cJSON_ArrayForEach(k, kids)
    {
        const char *wf = ju_str(k, "workflow");
        if (!cJSON_IsObject(k) || wf == NULL || strlen(wf) > WF_ID_MAX || ++n > CHILDREN_MAX) {
            *why = "malformed children wait";
            return -1;
        }
    }
    snprintf(seqs, sizeof(seqs), "%d", seq);
    snprintf(lim, sizeof(lim), "%" PRId64, limit);
    specs = cJSON_PrintUnformatted(kids);
    params[3] = specs;
    x = ref_new(e, r, seq);
    r->state = E_ENDING;
    r->seq = -1; /* no timeout: woken by the join */
    e->st.child_waits++;
    if (specs == NULL || x == NULL ||
        dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, SQL_CHILDREN_WAIT, 6, params,
                 NULL, NULL, on_signal_wait, x) < 0) {
        free(x);
        eng_fail_held(e, r, "could not start the child runs: out of memory");
    }
    free(specs);
    return 0;
}

/* A durable sleep: its step is written completed, due at its wake time, and
 * the run parked until then (status sleeping, run_at, no lease). */
static int on_wait(struct engine *e, struct erun *r, const cJSON *item, const char **why)
{
    const char *kind = ju_str(item, "kind");
    int64_t seq, ms;
    char wake[32];

    if (kind == NULL || ju_int(item, "seq", &seq) < 0 || seq < 0 || seq > 1000000) {
        *why = "malformed wait";
        return -1;
    }
    if (on_nows(e, r, item, why) < 0)
        return -1;
    if (strcmp(kind, "signal") == 0)
        return wait_signal(e, r, item, (int)seq, why);
    if (strcmp(kind, "children") == 0)
        return wait_children(e, r, item, (int)seq, why);
    if (strcmp(kind, "sleep") != 0 || ju_int(item, "ms", &ms) < 0) {
        *why = "malformed wait";
        return -1;
    }
    if (ms < 0)
        ms = 0;
    snprintf(wake, sizeof(wake), "%" PRId64, ju_wall_ms() + ms);
    if (submit_step(e, r, (int)seq, "sleep", "sleep", "completed", NULL, NULL, 1, 0, 0) < 0) {
        eng_fail_held(e, r, "could not record the sleep: out of memory");
        return 0;
    }
    eng_submit_end(e, r, "sleeping", NULL, NULL, wake);
    wake_at(e, eng_work_by_conn(e, r->project, r->conn), loop_now(e->loop) + ms);
    return 0;
}

int engine_worker_message(struct engine *e, struct wconn *c, const cJSON *msg)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(msg, "e");
    struct ework *w = eng_work_by_conn(e, wconn_project(c), wconn_id(c));
    const cJSON *it;

    if (w == NULL || !cJSON_IsArray(items)) {
        wconn_reset(c, "%s",
                    w == NULL ? "sent run events before it was ready" : "malformed event message");
        return -1;
    }
    cJSON_ArrayForEach(it, items)
    {
        const char *k = ju_str(it, "k");
        const char *id = ju_str(it, "run");
        struct erun *r = ju_valid_run_id(id) ? eng_run_find(e, id) : NULL;
        const char *why = NULL;
        int rc = 0;

        if (k == NULL || r == NULL || r->conn != w->conn) {
            wconn_reset(c, "sent an event for a run it does not hold");
            return -1;
        }
        if (strcmp(k, "nows") == 0 && r->state == E_HELD)
            rc = on_nows(e, r, it, &why);
        else if (strcmp(k, "step") == 0 && r->state == E_HELD)
            rc = on_step(e, r, it, &why);
        else if (strcmp(k, "end") == 0 && r->state == E_HELD)
            rc = on_end(e, r, it, &why);
        else if (strcmp(k, "wait") == 0 && r->state == E_HELD)
            rc = on_wait(e, r, it, &why);
        else if (strcmp(k, "release") == 0 && r->state == E_HELD) {
            const char *err = ju_str(it, "error");
            if (ju_bool(it, "transient"))
                rehand(e, r); /* full or stopping: another worker takes it */
            else
                eng_fail_held(e, r, err != NULL ? err : "the worker could not run it");
        } else {
            rc = -1;
            why = "an event out of order";
        }
        if (rc < 0) {
            wconn_reset(c, "protocol error: %s for run %s", why != NULL ? why : "bad event", id);
            return -1;
        }
    }
    return 0;
}

/* ---- workers ---- */

void engine_worker_ready(struct engine *e, struct wconn *c)
{
    const char *text = e->env.code_of(e->env.arg, c);
    cJSON *sum = text != NULL ? cJSON_Parse(text) : NULL;
    struct ework *w;
    uint32_t b = hash_str(wconn_project(c)) % NPBUCKETS;

    if (eng_work_by_conn(e, wconn_project(c), wconn_id(c)) != NULL) {
        cJSON_Delete(sum);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        cJSON_Delete(sum);
        log_error("could not register worker %d: out of memory", (int)wconn_pid(c));
        return;
    }
    w->conn = wconn_id(c);
    w->e = e;
    snprintf(w->project, sizeof(w->project), "%s", wconn_project(c));
    w->code = cJSON_DetachItemFromObjectCaseSensitive(sum, "workflowCode");
    if (w->code == NULL)
        w->code = cJSON_CreateObject();
    cJSON_Delete(sum);
    {
        const cJSON *it;
        cJSON_ArrayForEach(it, w->code)
        {
            if (cJSON_IsString(it))
                (void)eng_ever_add(w, it->valuestring, V_CURRENT);
        }
    }
    /* The newest ready worker of a project takes its new runs (a restart:
     * the old one drains what it holds and goes). Only a project's first
     * worker since core started takes this host's leased runs of it (the
     * previous core's): a successor must not take what its predecessor
     * still holds. */
    for (struct ework *o = e->works[b]; o != NULL; o = o->next) {
        if (strcmp(o->project, w->project) == 0) {
            o->retired = 1;
            w->first_claim_done = 1;
        }
    }
    w->next = e->works[b];
    e->works[b] = w;
    if (!wconn_draining(c))
        eng_claim(e, w);
}

void engine_worker_gone(struct engine *e, struct wconn *c)
{
    uint64_t conn = wconn_id(c);
    const char *project = wconn_project(c);
    size_t cap = 0, len = 0;
    char *arr = NULL;
    struct ework **pp;

    if (e->detached)
        return; /* shutdown: the runs stay leased to this host */
    /* Its runs go back to the database at once, for its successor. */
    for (unsigned b = 0; b < NBUCKETS; b++) {
        struct erun **rp = &e->runs[b];
        while (*rp != NULL) {
            struct erun *r = *rp;
            if (r->conn != conn) {
                rp = &r->next;
                continue;
            }
            if (r->state != E_ENDING) {
                if (len + RUN_ID_LEN + 3 > cap) {
                    size_t ncap = cap != 0 ? cap * 2 : 4096;
                    char *n = realloc(arr, ncap);
                    if (n == NULL)
                        break;
                    arr = n;
                    cap = ncap;
                }
                len += (size_t)snprintf(arr + len, cap - len, "%c%s", len == 0 ? '{' : ',', r->id);
                e->st.released++;
            }
            *rp = r->next;
            e->st.held--;
            free(r);
        }
    }
    if (arr != NULL && len > 0) {
        const char *params[2] = {arr, e->cfg->host_id};
        snprintf(arr + len, cap - len, "}");
        if (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, SQL_RELEASE, 2, params, NULL,
                     NULL, eng_log_failure, what_release_worker) < 0)
            log_error("could not release the runs of worker %d: out of memory", (int)wconn_pid(c));
    }
    free(arr);
    for (pp = &e->works[hash_str(project) % NPBUCKETS]; *pp != NULL; pp = &(*pp)->next) {
        struct ework *w = *pp;
        if (w->conn == conn) {
            *pp = w->next;
            work_free(e, w);
            break;
        }
    }
    /* A successor already here claims what was released. */
    {
        struct ework *w = eng_work_for(e, project);
        if (w != NULL) {
            w->more = 1;
            eng_claim(e, w);
        }
    }
}

/* ---- timers ---- */

/* Claims for every worker that takes runs. */
static void on_poll_now(struct engine *e)
{
    for (unsigned b = 0; b < NPBUCKETS; b++) {
        for (struct ework *w = e->works[b]; w != NULL; w = w->next) {
            struct wconn *c = e->env.find(e->env.arg, w->conn);
            if (c != NULL && !w->retired && !wconn_draining(c))
                eng_claim(e, w);
        }
    }
}

static void on_active(void *arg, const struct dbq_result *res)
{
    static const char *const names[4] = {"pending", "running", "sleeping", "waiting"};
    struct engine *e = arg;
    uint64_t n[4] = {0, 0, 0, 0};

    e->counting = 0;
    if (res->outcome != DBQ_OK)
        return;
    for (int i = 0; i < PQntuples(res->res); i++) {
        for (int k = 0; k < 4; k++) {
            if (strcmp(PQgetvalue(res->res, i, 0), names[k]) == 0)
                n[k] = strtoull(PQgetvalue(res->res, i, 1), NULL, 10);
        }
    }
    memcpy(e->st.active, n, sizeof(n));
}

static void on_cancel_sweep(void *arg, const struct dbq_result *res);
static void settle(struct engine *e);

static void on_settled(void *arg, const struct dbq_result *res)
{
    struct engine *e = arg;

    e->settling = 0;
    if (res->outcome != DBQ_OK) {
        log_warning("could not settle the joins of child runs: %s", res->message);
        return;
    }
    if (PQntuples(res->res) == 1) {
        long n = strtol(PQgetvalue(res->res, 0, 0), NULL, 10);
        e->st.join_checks += n > 0 ? (uint64_t)n : 0;
        if (n >= SETTLE_BATCH)
            e->settle_again = 1;
    }
    if (e->settle_again && !e->detached)
        settle(e);
}

/* Completes the joins whose children ended (one statement in flight; a
 * request meanwhile runs it again after). */
static void settle(struct engine *e)
{
    if (e->settling) {
        e->settle_again = 1;
        return;
    }
    e->settle_again = 0;
    if (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE, SQL_SETTLE, 0, NULL, NULL, NULL, on_settled,
                 e) < 0) {
        log_error("could not settle the joins of child runs: out of memory");
        return;
    }
    e->settling = 1;
}

/* The sweep's answer: children held by this host's workers end now (the
 * cancel sweep, as after a cancel asked for elsewhere), not at the next
 * lease renewal; other hosts' end at theirs. */
static void on_orphans(void *arg, const struct dbq_result *res)
{
    struct engine *e = arg;
    const char *params[1] = {e->cfg->host_id};
    int here = 0;

    if (res->outcome != DBQ_OK) {
        log_warning("could not cancel child runs nobody waits for: %s", res->message);
        return;
    }
    e->st.orphans += (uint64_t)PQntuples(res->res);
    for (int i = 0; i < PQntuples(res->res) && !here; i++)
        here = eng_run_find(e, PQgetvalue(res->res, i, 0)) != NULL;
    if (here && !e->detached &&
        dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE, SQL_CANCEL_SWEEP, 1, params, NULL, NULL,
                 on_cancel_sweep, e) < 0)
        log_error("could not end cancelled child runs: out of memory");
}

static void on_joins(void *arg, const char *channel, const char *payload)
{
    struct engine *e = arg;

    (void)channel;
    (void)payload; /* NULL: the LISTEN connection is back: settle anyway */
    if (!e->detached)
        settle(e);
}

static void on_poll(void *arg)
{
    struct engine *e = arg;
    const char *params[1] = {e->cfg->host_id};

    /* Joins a notification did not announce; children nobody waits for. */
    settle(e);
    if (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE, SQL_ORPHAN_SWEEP, 0, NULL, NULL, NULL,
                 on_orphans, e) < 0)
        log_error("could not cancel orphaned child runs: out of memory");

    /* Timed-out runs end; this host's workers let go of theirs. */
    if (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE, SQL_TIMEOUT_SWEEP, 1, params, NULL, NULL,
                 on_cancel_sweep, e) < 0)
        log_error("could not time runs out: out of memory");
    if (++e->polls % ACTIVE_EVERY == 0 && !e->counting &&
        dbq_exec(e->q, DBQ_FAST, DBQ_RETRY_SAFE, SQL_ACTIVE, 0, NULL, NULL, NULL, on_active, e) ==
            0)
        e->counting = 1;
    on_poll_now(e);
    loop_timer_set(e->loop, &e->poll, loop_now(e->loop) + POLL_MS, on_poll, e);
}

static void on_renew_done(void *arg, const struct dbq_result *res)
{
    (void)arg;
    if (res->outcome != DBQ_OK)
        log_warning("could not renew this host's leases: %s", res->message);
}

/* Runs cancelled from another host: their workers let go of them. */
static void on_cancel_sweep(void *arg, const struct dbq_result *res)
{
    struct engine *e = arg;

    if (res->outcome != DBQ_OK) {
        log_warning("could not end cancelled runs: %s", res->message);
        return;
    }
    for (int i = 0; i < PQntuples(res->res); i++) {
        struct erun *r = eng_run_find(e, PQgetvalue(res->res, i, 0));
        struct ework *w;
        if (r == NULL)
            continue;
        w = eng_work_by_conn(e, r->project, r->conn);
        if (w != NULL)
            eng_to_worker(e, w, eng_item_new("drop", r->id));
        drop_run(e, r);
    }
}

static void on_lease(void *arg)
{
    struct engine *e = arg;
    char lease[16];
    const char *params[2] = {e->cfg->host_id, lease};

    snprintf(lease, sizeof(lease), "%d", e->cfg->lease_ms);
    if (e->st.held > 0 && (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE, SQL_RENEW, 2, params, NULL,
                                    NULL, on_renew_done, e) < 0 ||
                           dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE, SQL_CANCEL_SWEEP, 1, params,
                                    NULL, NULL, on_cancel_sweep, e) < 0))
        log_error("could not renew leases: out of memory");
    loop_timer_set(e->loop, &e->lease, loop_now(e->loop) + e->cfg->lease_ms / 3, on_lease, e);
}

/* A run of project is due somewhere (a trigger without a local worker, a
 * signal, a retry, on any host); payload NULL: the LISTEN connection is
 * back, and anything may have been missed. */
static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct engine *e = arg;

    (void)channel;
    if (e->detached)
        return;
    if (payload == NULL) {
        on_poll_now(e);
        return;
    }
    {
        struct ework *w = eng_work_for(e, payload);
        if (w != NULL) {
            w->more = 1;
            eng_claim(e, w);
        }
    }
}

/* ---- life cycle ---- */

struct engine *engine_new(const struct wf_config *cfg, struct loop *l, struct dbq *q,
                          const struct engine_env *env)
{
    struct engine *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->cfg = cfg;
    e->loop = l;
    e->q = q;
    e->env = *env;
    /* Triggers insert new rows only (no lock on an existing one, no foreign
     * key): on their own connection they commit beside the steps and ends
     * of the durable stream, a second backend doing their share. A run is
     * handed over, and so stepped or ended, only after its trigger
     * committed: the two streams need no order between them. */
    e->t_trigger = dbq_rows_new(q, DBQ_INSERT, 0, SQL_TRIGGER, 8);
    e->t_step = dbq_rows_new(q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, SQL_STEP, 10);
    e->t_end = dbq_rows_new(q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, SQL_END, 6);
    if (e->t_trigger == NULL || e->t_step == NULL || e->t_end == NULL ||
        loop_on_turn_end(l, flush_works, e) < 0) {
        free(e);
        return NULL;
    }
    e->hooked = 1;
    if (dbq_listen(q, "wf_runs", on_notify, e) < 0)
        log_warning("could not listen for runs announced by other hosts: out of memory");
    if (dbq_listen(q, "wf_joins", on_joins, e) < 0)
        log_warning("could not listen for child runs that ended: out of memory");
    loop_timer_set(l, &e->poll, loop_now(l) + POLL_MS, on_poll, e);
    loop_timer_set(l, &e->lease, loop_now(l) + cfg->lease_ms / 3, on_lease, e);
    return e;
}

void engine_detach(struct engine *e)
{
    e->detached = 1;
    loop_timer_cancel(e->loop, &e->poll);
    loop_timer_cancel(e->loop, &e->lease);
    for (unsigned b = 0; b < NPBUCKETS; b++) {
        for (struct ework *w = e->works[b]; w != NULL; w = w->next)
            loop_timer_cancel(e->loop, &w->wake);
    }
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    if (e->hooked)
        loop_off_turn_end(e->loop, flush_works, e);
    loop_timer_cancel(e->loop, &e->poll);
    loop_timer_cancel(e->loop, &e->lease);
    for (unsigned b = 0; b < NBUCKETS; b++) {
        while (e->runs[b] != NULL) {
            struct erun *r = e->runs[b];
            e->runs[b] = r->next;
            free(r);
        }
    }
    for (unsigned b = 0; b < NPBUCKETS; b++) {
        while (e->works[b] != NULL) {
            struct ework *w = e->works[b];
            e->works[b] = w->next;
            work_free(e, w);
        }
    }
    free(e);
}

void engine_stats(const struct engine *e, struct engine_stats *out)
{
    *out = e->st;
}

int engine_valid_run_id(const char *id)
{
    return ju_valid_run_id(id);
}

void engine_version_ready(struct engine *e, uint64_t wid, const char *sha, const char *err)
{
    if (e->detached)
        return;
    for (unsigned b = 0; b < NPBUCKETS; b++) {
        for (struct ework *w = e->works[b]; w != NULL; w = w->next) {
            if (w->conn == wid) {
                eng_version_ready(e, w, sha, err);
                return;
            }
        }
    }
}
