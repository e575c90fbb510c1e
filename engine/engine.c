/*
 * engine.c: see engine.h.
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
#include "engine.h"

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

#define RUN_ID_LEN 36
#define CLAIM_BATCH 256 /* runs claimed per statement */
#define POLL_MS 1000    /* every project with a ready worker is polled this often */
#define ACTIVE_EVERY 5  /* polls between two counts of the runs not ended */
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
    int counting; /* the active-runs count is in flight */
    struct engine_stats st;
};

const double ENGINE_HIST_LE[ENGINE_HIST_N - 1] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,   1,     2.5,  5,     10};

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

static struct erun *run_find(struct engine *e, const char *id)
{
    for (struct erun *r = e->runs[hash_str(id) % NBUCKETS]; r != NULL; r = r->next) {
        if (strcmp(r->id, id) == 0)
            return r;
    }
    return NULL;
}

static struct erun *run_add(struct engine *e, const char *id, const char *project, uint64_t conn)
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

static struct ework *work_by_conn(struct engine *e, const char *project, uint64_t conn)
{
    for (struct ework *w = e->works[hash_str(project) % NPBUCKETS]; w != NULL; w = w->next) {
        if (w->conn == conn)
            return w;
    }
    return NULL;
}

/* The worker of project that takes new runs here (ready, not draining). */
static struct ework *work_for(struct engine *e, const char *project)
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

static struct ever *ever_find(struct ework *w, const char *sha)
{
    for (int i = 0; i < w->nvers; i++) {
        if (strcmp(w->vers[i].sha, sha) == 0)
            return &w->vers[i];
    }
    return NULL;
}

static struct ever *ever_add(struct ework *w, const char *sha, enum ever_state state)
{
    struct ever *v = ever_find(w, sha);

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

static void fail_held(struct engine *e, struct erun *r, const char *message);
static void to_worker(struct engine *e, struct ework *w, cJSON *item);

/* Version sha reached w (err NULL) or cannot: its waiting runs go on, or
 * fail with err. */
static void version_ready(struct engine *e, struct ework *w, const char *sha, const char *err)
{
    struct ever *v = ever_find(w, sha);
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
        r = run_find(e, p->id);
        if (err == NULL && r != NULL) {
            to_worker(e, w, p->item);
        } else {
            cJSON_Delete(p->item);
            if (r != NULL) {
                char msg[600];
                snprintf(msg, sizeof(msg), "code version %.12s: %s", sha, err);
                fail_held(e, r, msg);
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

static void to_worker(struct engine *e, struct ework *w, cJSON *item)
{
    if (item == NULL)
        return;
    if (w->out == NULL)
        w->out = cJSON_CreateArray();
    if (w->out == NULL || !cJSON_AddItemToArray(w->out, item))
        cJSON_Delete(item);
}

static cJSON *item_new(const char *k, const char *run)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "k", k);
    cJSON_AddStringToObject(o, "run", run);
    return o;
}

/* ---- ids ---- */

static int new_uuid(char out[RUN_ID_LEN + 1])
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
    char status[12]; /* submit_end: the status written */
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
    struct erun *r = run_find(x->e, x->id);

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
    " RETURNING e.id, e.workflow, e.code_sha256, e.input::text, e.cancel_requested";

static const char SQL_HISTORY[] =
    "SELECT execution_id, seq, kind, name, status, output::text, error FROM steps"
    " WHERE execution_id = ANY($1::uuid[]) AND status <> 'waiting'"
    " ORDER BY execution_id, seq";

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
static const char SQL_SIGNAL[] = "SELECT wf_signal($1::uuid, $2, $3::jsonb)";
static const char SQL_CANCEL[] = "SELECT wf_cancel($1::uuid)";
static const char SQL_RETRY[] = "SELECT wf_retry($1::uuid)";
static const char SQL_NOTIFY[] = "SELECT pg_notify('wf_runs', $1)";

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
static char what_notify[] = "announce a pending run";

static void log_failure(void *arg, const struct dbq_result *res)
{
    if (res->outcome != DBQ_OK)
        log_error("could not %s: %s", (const char *)arg, res->message);
}

/* Gives run id back to the database (lease cleared) for any worker to
 * claim; a failure is logged. */
static void release_run(struct engine *e, const char *id)
{
    char arr[64];
    const char *params[2] = {arr, e->cfg->host_id};

    snprintf(arr, sizeof(arr), "{%s}", id);
    if (dbq_exec(e->q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST, SQL_RELEASE, 2, params, NULL,
                 NULL, log_failure, what_release) < 0)
        log_error("could not release run %s: out of memory", id);
}

/* ---- ending runs ---- */

static void on_end_done(void *arg, const struct dbq_result *res);

/* Writes the end of run r: status completed/failed (output, error JSON
 * text or NULL), or sleeping (wake_ms: wall ms it is due). */
static void submit_end(struct engine *e, struct erun *r, const char *status, const char *output,
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
static void claim(struct engine *e, struct ework *w);

static void drop_run(struct engine *e, struct erun *r)
{
    struct ework *w = work_by_conn(e, r->project, r->conn);
    struct ever *v = w != NULL ? ever_find(w, r->sha) : NULL;

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
        to_worker(e, w, m);
    }
    run_del(e, r);
    /* A slot is free: runs that found none wait in the database. */
    if (w != NULL && w->more)
        claim(e, w);
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
static void fail_held(struct engine *e, struct erun *r, const char *message)
{
    cJSON *err = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(err, "message", message);
    text = cJSON_PrintUnformatted(err);
    cJSON_Delete(err);
    submit_end(e, r, "failed", NULL, text != NULL ? text : "{}", NULL);
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
        w = work_by_conn(e, r->project, r->conn);
        if (w != NULL)
            to_worker(e, w, item_new("drop", r->id));
        submit_end(e, r, "cancelled", NULL, "{\"message\": \"cancelled\"}", NULL);
        return;
    }
    if (res->outcome != DBQ_OK) {
        char msg[600];
        snprintf(msg, sizeof(msg), "could not record step %d: %s", x->seq, res->message);
        log_error("run %s: %s", r->id, msg);
        free(x);
        w = work_by_conn(e, r->project, r->conn);
        if (w != NULL)
            to_worker(e, w, item_new("drop", r->id));
        fail_held(e, r, msg);
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
    w = work_by_conn(e, r->project, r->conn);
    if (!landed) {
        /* Another host holds the run now, or the step was already written
         * (a retry after a lost answer): this worker's view is stale. Give
         * the run back (only if it is still ours) and claim it again from
         * the rows, or it would sit under our renewed lease. */
        log_warning("run %s: step %d was not recorded (lease lost or step already written); "
                    "giving it back",
                    r->id, r->seq);
        if (w != NULL)
            to_worker(e, w, item_new("drop", r->id));
        rehand(e, r);
        return;
    }
    e->st.steps++;
    r->state = E_HELD;
    if (w != NULL) {
        cJSON *ack = item_new("ack", r->id);
        cJSON_AddNumberToObject(ack, "seq", r->seq);
        to_worker(e, w, ack);
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
    if (dbq_row(e->t_step, vals, tracked ? on_step_done : log_failure,
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
        fail_held(e, r, "could not record the step: out of memory");
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
    submit_end(e, r, status, output, error, NULL);
    free(output);
    free(error);
    return 0;
}

static void claim(struct engine *e, struct ework *w);

static void on_wake(void *arg)
{
    struct ework *w = arg;

    w->more = 1;
    claim(w->e, w);
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

    release_run(e, r->id);
    w = work_for(e, r->project); /* the project's current worker, after r is gone */
    drop_run(e, r);
    if (w != NULL) {
        w->more = 1;
        claim(e, w);
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
            release_run(e, x->id);
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
            wake_at(e, work_by_conn(e, r->project, r->conn), loop_now(e->loop) + r->seq + 1);
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
        fail_held(e, r, "could not wait for the signal: out of memory");
    }
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
    if (strcmp(kind, "sleep") != 0 || ju_int(item, "ms", &ms) < 0) {
        *why = "malformed wait";
        return -1;
    }
    if (ms < 0)
        ms = 0;
    snprintf(wake, sizeof(wake), "%" PRId64, ju_wall_ms() + ms);
    if (submit_step(e, r, (int)seq, "sleep", "sleep", "completed", NULL, NULL, 1, 0, 0) < 0) {
        fail_held(e, r, "could not record the sleep: out of memory");
        return 0;
    }
    submit_end(e, r, "sleeping", NULL, NULL, wake);
    wake_at(e, work_by_conn(e, r->project, r->conn), loop_now(e->loop) + ms);
    return 0;
}

int engine_worker_message(struct engine *e, struct wconn *c, const cJSON *msg)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(msg, "e");
    struct ework *w = work_by_conn(e, wconn_project(c), wconn_id(c));
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
        struct erun *r = ju_valid_run_id(id) ? run_find(e, id) : NULL;
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
                fail_held(e, r, err != NULL ? err : "the worker could not run it");
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

/* ---- triggers ---- */

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
    struct ework *w = t->conn != 0 ? work_by_conn(e, t->project, t->conn) : NULL;

    if (w != NULL && w->held > 0)
        w->held--;
    t->conn = 0;
}

/* The run is committed as held by this host: hand it to its worker (whose
 * slot the trigger reserved). */
static void hand_new_run(struct engine *e, struct trig *t)
{
    struct ework *w = work_by_conn(e, t->project, t->conn);
    struct erun *r;
    cJSON *item;

    if (w == NULL || e->env.find(e->env.arg, w->conn) == NULL) {
        /* The worker went while the row was written (its slots went with
         * it): give the run back. */
        release_run(e, t->id);
        return;
    }
    r = run_add(e, t->id, t->project, w->conn);
    if (r == NULL) {
        log_error("could not hold run %s: out of memory", t->id);
        w->held--;
        return;
    }
    r->trigger_wall_ms = t->t0_wall_ms;
    snprintf(r->sha, sizeof(r->sha), "%s", t->sha);
    {
        struct ever *v = ever_add(w, t->sha, V_CURRENT);
        if (v != NULL) {
            v->runs++;
            w->vdirty = 1;
        }
    }
    item = item_new("run", t->id);
    cJSON_AddStringToObject(item, "workflow", t->workflow);
    cJSON_AddStringToObject(item, "sha256", t->sha);
    cJSON_AddItemToObject(item, "input", cJSON_CreateRaw(t->input));
    cJSON_AddItemToObject(item, "steps", cJSON_CreateArray());
    to_worker(e, w, item);
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
            struct ework *w = work_for(e, t->project);
            if (w != NULL) {
                w->more = 1;
                claim(e, w);
            } else if (dbq_exec(e->q, DBQ_FAST, DBQ_RETRY_SAFE, SQL_NOTIFY, 1, p, NULL, NULL,
                                log_failure, what_notify) < 0) {
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
    if (t->input == NULL || (idempotency_key != NULL && t->key == NULL) || new_uuid(t->id) < 0) {
        trig_free(t);
        return -1;
    }
    snprintf(lease, sizeof(lease), "%d", e->cfg->lease_ms);
    /* A local worker with room that loaded the workflow takes the run at
     * once, pinned to the code it runs. */
    w = work_for(e, project);
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

/* ---- claims ---- */

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
            fail_held(e, r, "the run has no code version and the worker lacks its workflow");
            return;
        }
        snprintf(r->sha, sizeof(r->sha), "%s", cur);
        cJSON_DeleteItemFromObjectCaseSensitive(item, "sha256");
        cJSON_AddStringToObject(item, "sha256", cur);
    }
    if (cur != NULL && strcmp(cur, r->sha) == 0) {
        v = ever_add(w, r->sha, V_CURRENT);
    } else {
        v = ever_find(w, r->sha);
        if (v == NULL)
            v = ever_add(w, r->sha, V_PENDING);
        else if (v->state == V_CURRENT)
            v = NULL; /* another workflow's current code: it is loaded */
    }
    if (v != NULL)
        v->runs++;
    w->vdirty = 1;
    if (v == NULL || v->state != V_PENDING) {
        to_worker(e, w, item);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        cJSON_Delete(item);
        fail_held(e, r, "could not wait for the run's code version: out of memory");
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
    w = work_by_conn(e, project, conn);
    if (w == NULL)
        return; /* reset meanwhile: its runs were released */
    if (rc != 0)
        version_ready(e, w, p->sha, rc > 0 ? NULL : "could not send the code version");
}

/* The claim j answered: its worker may claim again, and the slots it
 * reserved are free (what it claimed is counted as held from here). */
static void claim_settle(struct engine *e, struct claimjob *j)
{
    struct ework *w = work_by_conn(e, j->project, j->conn);

    if (w == NULL)
        return;
    w->claiming = 0;
    w->reserved -= j->limit;
    if (w->reserved < 0)
        w->reserved = 0;
}

static void claim_finish(struct engine *e, struct claimjob *j, int ok)
{
    struct ework *w = work_by_conn(e, j->project, j->conn);

    claim_settle(e, j);
    for (int i = 0; i < j->n; i++) {
        struct erun *r;
        if (w == NULL || !ok) {
            /* Nobody to hand it to: give it back at once. */
            release_run(e, j->ids[i]);
            continue;
        }
        if (run_find(e, j->ids[i]) != NULL)
            continue; /* already held (claimed by our own first claim) */
        r = run_add(e, j->ids[i], j->project, w->conn);
        if (r == NULL)
            continue;
        w->held++;
        snprintf(r->sha, sizeof(r->sha), "%s", ju_str(j->items[i], "sha256"));
        deliver(e, w, r, j->items[i]);
        j->items[i] = NULL;
        /* Providing a version may have reset the worker. */
        w = work_by_conn(e, j->project, j->conn);
    }
    if (w != NULL && ok && j->n >= j->limit)
        w->more = 1;
    if (w != NULL && w->more)
        claim(e, w);
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
                run_find(e, PQgetvalue(res->res, i, 0)) == NULL;
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
                run_find(e, PQgetvalue(res->res, i, 0)) != NULL)
                continue;
            snprintf(rows[k].id, sizeof(rows[k].id), "%s", PQgetvalue(res->res, i, 0));
            rows[k++].row = i;
        }
        qsort(rows, (size_t)j->n, sizeof(*rows), cmp_ids);
        size_t used = 0;
        for (int i = 0; i < j->n; i++) {
            int row = rows[i].row;
            cJSON *item = item_new("run", rows[i].id);
            snprintf(j->ids[i], sizeof(j->ids[i]), "%s", rows[i].id);
            cJSON_AddStringToObject(item, "workflow", PQgetvalue(res->res, row, 1));
            cJSON_AddStringToObject(
                item, "sha256", PQgetisnull(res->res, row, 2) ? "" : PQgetvalue(res->res, row, 2));
            cJSON_AddItemToObject(item, "input",
                                  PQgetisnull(res->res, row, 3)
                                      ? cJSON_CreateNull()
                                      : cJSON_CreateRaw(PQgetvalue(res->res, row, 3)));
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
static void claim(struct engine *e, struct ework *w)
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

/* ---- workers ---- */

void engine_worker_ready(struct engine *e, struct wconn *c)
{
    const char *text = e->env.code_of(e->env.arg, c);
    cJSON *sum = text != NULL ? cJSON_Parse(text) : NULL;
    struct ework *w;
    uint32_t b = hash_str(wconn_project(c)) % NPBUCKETS;

    if (work_by_conn(e, wconn_project(c), wconn_id(c)) != NULL) {
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
                (void)ever_add(w, it->valuestring, V_CURRENT);
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
        claim(e, w);
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
                     NULL, log_failure, what_release_worker) < 0)
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
        struct ework *w = work_for(e, project);
        if (w != NULL) {
            w->more = 1;
            claim(e, w);
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
                claim(e, w);
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

static void on_poll(void *arg)
{
    struct engine *e = arg;
    const char *params[1] = {e->cfg->host_id};

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
        struct erun *r = run_find(e, PQgetvalue(res->res, i, 0));
        struct ework *w;
        if (r == NULL)
            continue;
        w = work_by_conn(e, r->project, r->conn);
        if (w != NULL)
            to_worker(e, w, item_new("drop", r->id));
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
        struct ework *w = work_for(e, payload);
        if (w != NULL) {
            w->more = 1;
            claim(e, w);
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

/* ---- cancel, signal, retry ---- */

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

/* 'ended:<status>': the run is over, 409 (k answered). Returns 1 then. */
static int answered_ended(struct call *k, const char *v)
{
    char msg[160];

    if (strncmp(v, "ended:", 6) != 0)
        return 0;
    snprintf(msg, sizeof(msg), "execution %s already %s", k->id, v + 6);
    call_answer(k, 409, v + 6, msg);
    return 1;
}

/* Claims at once for the local worker of project, if any. */
static void nudge(struct engine *e, const char *project)
{
    struct ework *w = work_for(e, project);

    if (w != NULL) {
        w->more = 1;
        claim(e, w);
    }
}

static void on_cancelled(void *arg, const struct dbq_result *res)
{
    struct call *k = arg;
    struct engine *e = k->e;
    const char *v = call_text(k, res);

    if (v == NULL)
        return;
    if (answered_ended(k, v))
        return;
    if (strcmp(v, "cancelled") == 0) {
        call_answer(k, 200, "cancelled", NULL);
        return;
    }
    /* requested:<host>: its holder ends it, at once when that is us. */
    if (strcmp(v + 10, e->cfg->host_id) == 0) {
        struct erun *r = run_find(e, k->id);
        if (r != NULL && r->state == E_HELD) {
            struct ework *w = work_by_conn(e, r->project, r->conn);
            if (w != NULL)
                to_worker(e, w, item_new("drop", r->id));
            submit_end(e, r, "cancelled", NULL, "{\"message\": \"cancelled\"}", NULL);
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
    const char *v = call_text(k, res);

    if (v == NULL)
        return;
    if (answered_ended(k, v))
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
                version_ready(e, w, sha, err);
                return;
            }
        }
    }
}
