/*
 * schedules.c: see schedules.h. The thread owns its connection and its
 * state; other threads reach it only through wake (under mu) and the
 * counters (__atomic). A pass is one transaction: every run it inserts and
 * every next_fire_at it moves commit together or not at all, so a crash or
 * a lost connection at any point leaves each due tick either fired with
 * its schedule moved on, or not fired and still due.
 */
#include "schedules.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"

/* ---- the pure rule ---- */

void sched_decide(const struct cron *c, const struct cron_tz *tz, int64_t due, int64_t now,
                  int64_t grace_s, enum sched_missed policy, struct sched_decision *out)
{
    int64_t latest = due, skipped = 0, n;

    if (now - due > SCHEDULE_SCAN_SECS) {
        /* Down for over a year: count what lies beyond the scan as one. */
        n = cron_next(c, tz, now - SCHEDULE_SCAN_SECS);
        if (n >= 0 && n <= now) {
            latest = n;
            skipped = 1;
        }
    }
    while ((n = cron_next(c, tz, latest)) >= 0 && n <= now) {
        latest = n;
        skipped++;
    }
    out->tick = latest;
    out->fire = policy == SCHED_FIRE_ONCE || now - latest <= grace_s;
    out->skipped = skipped + (out->fire ? 0 : 1);
    out->next = n; /* > now, or -1 */
}

int sched_missed_parse(const char *s, enum sched_missed *out)
{
    if (strcmp(s, "fire-once") == 0)
        *out = SCHED_FIRE_ONCE;
    else if (strcmp(s, "skip") == 0)
        *out = SCHED_SKIP;
    else
        return -1;
    return 0;
}

const char *sched_missed_name(enum sched_missed m)
{
    return m == SCHED_SKIP ? "skip" : "fire-once";
}

/* Parses expr and loads the zone; *tz NULL for UTC. */
static int load(const char *expr, const char *tzname, struct cron *c, struct cron_tz **tz,
                char *err, size_t errlen)
{
    *tz = NULL;
    if (cron_parse(expr, c, err, errlen) < 0)
        return -1;
    if (tzname == NULL || tzname[0] == '\0')
        return 0;
    return cron_tz_load(tzname, tz, err, errlen); /* knows UTC without a file */
}

int sched_next_ticks(const char *expr, const char *tzname, int64_t after, int64_t *out, int n,
                     char *err, size_t errlen)
{
    struct cron c;
    struct cron_tz *tz;
    int k = 0;

    if (load(expr, tzname, &c, &tz, err, errlen) < 0)
        return -1;
    while (k < n && (after = cron_next(&c, tz, after)) >= 0)
        out[k++] = after;
    cron_tz_free(tz);
    return k;
}

int sched_first_tick(const char *expr, const char *tzname, int64_t after, int64_t *tick, char *err,
                     size_t errlen)
{
    int64_t t;
    int n = sched_next_ticks(expr, tzname, after, &t, 1, err, errlen);

    if (n < 0)
        return -1;
    *tick = n == 1 ? t : -1;
    return 0;
}

void sched_format_utc(int64_t t, char *buf, size_t len)
{
    struct cron_local l;

    if (cron_tz_to_local(NULL, t, &l) < 0) {
        snprintf(buf, len, "?");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", l.year, l.month, l.mday, l.hour, l.min,
             l.sec);
}

/* ---- the firing thread ---- */

struct schedules {
    struct db_conn *db;
    int64_t grace_s;
    pthread_t tid;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* CLOCK_MONOTONIC */
    int stop;                  /* under mu */
    int woken;                 /* under mu */
    struct schedules_stats st; /* __atomic */
};

static const char SQL_DUE[] =
    "SELECT id, project_id, workflow, cron, timezone, coalesce(input::text, 'null'), missed,"
    " floor(extract(epoch FROM next_fire_at))::bigint, floor(extract(epoch FROM now()))::bigint"
    " FROM schedules WHERE NOT paused AND next_fire_at <= now()"
    " ORDER BY next_fire_at LIMIT $1::int FOR UPDATE SKIP LOCKED";
enum {
    D_ID,
    D_PROJECT,
    D_WORKFLOW,
    D_CRON,
    D_TZ,
    D_INPUT,
    D_MISSED,
    D_DUE,
    D_NOW
};

/* The run of one tick, pinned to the code deployed now, pending: whichever
 * host runs the project claims it (NOTIFY below). */
static const char SQL_FIRE[] =
    "INSERT INTO executions (project_id, workflow, code_sha256, input, idempotency_key)"
    " SELECT w.project_id, w.kebab_name, w.artifact_sha256, $3::jsonb, $4"
    " FROM workflows w WHERE w.project_id = $1 AND w.kebab_name = $2 AND w.is_active"
    " ON CONFLICT (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
    " RETURNING id";

static const char SQL_FIRED_BEFORE[] =
    "SELECT id FROM executions WHERE project_id = $1 AND idempotency_key = $2";

static const char SQL_NOTIFY[] = "SELECT pg_notify('wf_runs', $1)";

static const char SQL_MOVE[] =
    "UPDATE schedules SET next_fire_at = to_timestamp($2::bigint),"
    " last_tick_at = coalesce(to_timestamp($3::bigint), last_tick_at),"
    " last_fired_at = CASE WHEN $4::uuid IS NULL THEN last_fired_at ELSE now() END,"
    " last_execution_id = coalesce($4::uuid, last_execution_id), last_error = $5,"
    " fired = fired + $6::int, skipped = skipped + $7::bigint, updated_at = now()"
    " WHERE id = $1";

/* A schedule whose expression or zone no longer loads (a zone file gone
 * from the system) is looked at again after this long. */
#define SCHEDULE_RETRY_SECS 60

static void add_stat(uint64_t *counter, uint64_t n)
{
    __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* Fires (or skips) the due schedule in row i of due; adds to *fired and
 * *skipped. Returns 0, or -1 when a statement failed (the pass rolls
 * back). */
static int fire_one(struct schedules *s, PGresult *due, int i, int *fired, int64_t *skipped)
{
    const char *id = PQgetvalue(due, i, D_ID), *project = PQgetvalue(due, i, D_PROJECT);
    const char *workflow = PQgetvalue(due, i, D_WORKFLOW);
    char err[256] = "", key[128], next_s[24], tick_s[24], fired_s[4], skipped_s[24];
    char run_id[40] = "";
    struct sched_decision d = {0, -1, 0, -1};
    enum sched_missed policy = SCHED_FIRE_ONCE;
    struct cron c;
    struct cron_tz *tz;
    int64_t due_at = strtoll(PQgetvalue(due, i, D_DUE), NULL, 10);
    int64_t now = strtoll(PQgetvalue(due, i, D_NOW), NULL, 10);
    const char *mv[7];

    (void)sched_missed_parse(PQgetvalue(due, i, D_MISSED), &policy); /* CHECKed by the table */
    if (load(PQgetvalue(due, i, D_CRON), PQgetvalue(due, i, D_TZ), &c, &tz, err, sizeof(err)) < 0) {
        log_warning("schedule %s: %s; trying again in %d s", id, err, SCHEDULE_RETRY_SECS);
        d.next = now + SCHEDULE_RETRY_SECS;
    } else {
        sched_decide(&c, tz, due_at, now, s->grace_s, policy, &d);
        cron_tz_free(tz);
    }
    if (d.fire) {
        const char *p[4] = {project, workflow, PQgetvalue(due, i, D_INPUT), key};
        PGresult *res;

        snprintf(key, sizeof(key), "schedule:%s:%" PRId64, id, d.tick);
        res = db_exec(s->db, SQL_FIRE, 4, p);
        if (res == NULL)
            return -1;
        if (PQntuples(res) == 1) {
            snprintf(run_id, sizeof(run_id), "%s", PQgetvalue(res, 0, 0));
            PQclear(res);
            if (db_command(s->db, SQL_NOTIFY, 1, &project) < 0)
                return -1;
            (*fired)++;
        } else {
            const char *q[2] = {project, key};

            PQclear(res);
            res = db_exec(s->db, SQL_FIRED_BEFORE, 2, q);
            if (res == NULL)
                return -1;
            if (PQntuples(res) == 1)
                log_info("schedule %s: tick %" PRId64 " was fired before (run %s)", id, d.tick,
                         PQgetvalue(res, 0, 0));
            else
                snprintf(err, sizeof(err), "workflow \"%s\" is not deployed in project \"%s\"",
                         workflow, project);
            PQclear(res);
            if (err[0] != '\0') {
                log_warning("schedule %s: could not fire tick %" PRId64 ": %s", id, d.tick, err);
                d.skipped++;
            }
        }
    }
    snprintf(next_s, sizeof(next_s), "%" PRId64, d.next);
    snprintf(tick_s, sizeof(tick_s), "%" PRId64, d.tick);
    snprintf(fired_s, sizeof(fired_s), "%d", run_id[0] != '\0');
    snprintf(skipped_s, sizeof(skipped_s), "%" PRId64, d.skipped);
    mv[0] = id;
    mv[1] = d.next >= 0 ? next_s : NULL;
    mv[2] = d.tick >= 0 ? tick_s : NULL;
    mv[3] = run_id[0] != '\0' ? run_id : NULL;
    mv[4] = err[0] != '\0' ? err : NULL;
    mv[5] = fired_s;
    mv[6] = skipped_s;
    if (db_command(s->db, SQL_MOVE, 7, mv) < 0)
        return -1;
    if (d.skipped > 0)
        log_info("schedule %s: skipped %" PRId64 " missed tick%s (policy %s)", id, d.skipped,
                 d.skipped == 1 ? "" : "s", sched_missed_name(policy));
    if (run_id[0] != '\0')
        log_debug("schedule %s fired run %s for tick %" PRId64, id, run_id, d.tick);
    *skipped += d.skipped;
    return 0;
}

/* One transaction over the due schedules. Returns how many were due (so
 * a full batch is followed at once by another), or -1. */
static int pass(struct schedules *s)
{
    char batch[16];
    const char *p[1] = {batch};
    PGresult *due;
    int n, fired_total = 0;
    int64_t skipped_total = 0;

    snprintf(batch, sizeof(batch), "%d", SCHEDULE_BATCH);
    if (db_command(s->db, "BEGIN", 0, NULL) < 0)
        return -1;
    due = db_exec(s->db, SQL_DUE, 1, p);
    if (due == NULL)
        goto fail;
    n = PQntuples(due);
    for (int i = 0; i < n; i++) {
        if (fire_one(s, due, i, &fired_total, &skipped_total) < 0) {
            PQclear(due);
            goto fail;
        }
    }
    PQclear(due);
    if (db_command(s->db, "COMMIT", 0, NULL) < 0)
        return -1; /* nothing of it committed: the ticks are still due */
    add_stat(&s->st.passes, 1);
    add_stat(&s->st.fired, (uint64_t)fired_total);
    add_stat(&s->st.skipped, (uint64_t)skipped_total);
    return n;
fail:
    if (!db_unavailable(s->db) && db_command(s->db, "ROLLBACK", 0, NULL) < 0)
        log_debug("rollback failed: %s", db_error(s->db));
    return -1;
}

/* Milliseconds until the earliest tick of any schedule, at most
 * SCHEDULE_POLL_MS (other servers add schedules) and at least 10 (a due row
 * another server holds is not ours to spin on). */
static int64_t until_next(struct schedules *s)
{
    PGresult *res = db_exec(s->db,
                            "SELECT ceil(extract(epoch FROM min(next_fire_at) - clock_timestamp())"
                            " * 1000)::bigint FROM schedules"
                            " WHERE NOT paused AND next_fire_at IS NOT NULL",
                            0, NULL);
    int64_t ms = SCHEDULE_POLL_MS;

    if (res == NULL)
        return ms;
    if (!PQgetisnull(res, 0, 0))
        ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return ms < 10 ? 10 : ms > SCHEDULE_POLL_MS ? SCHEDULE_POLL_MS : ms;
}

static void *thread_main(void *arg)
{
    struct schedules *s = arg;
    int failing = 0;

    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t wait_ms;
        int n;

        pthread_mutex_unlock(&s->mu);
        n = pass(s);
        if (n < 0) {
            add_stat(&s->st.errors, 1);
            if (!failing)
                log_warning("could not fire schedules: %s; retrying", db_error(s->db));
            failing = 1;
            wait_ms = SCHEDULE_POLL_MS;
        } else {
            if (failing)
                log_info("firing schedules again");
            failing = 0;
            wait_ms = n == SCHEDULE_BATCH ? 0 : until_next(s);
        }
        pthread_mutex_lock(&s->mu);
        if (wait_ms > 0 && !s->stop && !s->woken) {
            struct timespec ts;

            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            (void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        s->woken = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

struct schedules *schedules_new(const char *url, const struct db_options *opt, int grace_ms)
{
    struct schedules *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;

    if (s == NULL) {
        log_error("could not start the schedules thread: out of memory");
        return NULL;
    }
    s->grace_s = grace_ms / 1000;
    s->db = db_conn_new_ex(url, opt);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (s->db == NULL || pthread_create(&s->tid, NULL, thread_main, s) != 0) {
        log_error("could not start the schedules thread");
        schedules_free(s);
        return NULL;
    }
    s->started = 1;
    return s;
}

void schedules_wake(struct schedules *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->woken = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void schedules_get_stats(struct schedules *s, struct schedules_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return;
    out->passes = __atomic_load_n(&s->st.passes, __ATOMIC_RELAXED);
    out->fired = __atomic_load_n(&s->st.fired, __ATOMIC_RELAXED);
    out->skipped = __atomic_load_n(&s->st.skipped, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&s->st.errors, __ATOMIC_RELAXED);
}

void schedules_free(struct schedules *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->tid, NULL);
    }
    db_conn_free(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
