/*
 * durability.c: see durability.h.
 *
 * The check joins three sources by (run, step): the runs' rows, their
 * committed record steps and the invocation log. Runs are indexed by their
 * position in a sorted copy of the ids, so (run, step) is a slot of a flat
 * array of nruns * n; lines of runs not asked about (another round's) are
 * skipped.
 */
#include "durability.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const dur_workflows[] = {"steps",    "sleepy",           "waiter",       "retrying",
                                     "failing",  "nondeterministic", "clock",        "big-io",
                                     "one-step", "five-steps",       "one-activity", "fan"};
const int dur_nworkflows = (int)(sizeof(dur_workflows) / sizeof(dur_workflows[0]));
const char *const dur_activities[] = {"record", "flaky", "fail_always", "invalid",
                                      "slow",   "big",   "noop"};
const int dur_nactivities = (int)(sizeof(dur_activities) / sizeof(dur_activities[0]));

#define TRIGGER_BATCH 100
#define MAX_LATE_SHOWN 10

/* ---- set-up ---- */

int dur_make_dir(char *dir, size_t len, const char *test)
{
    snprintf(dir, len, "/tmp/wf-%s-%d", test, (int)getpid());
    if (mkdir(dir, 0777) < 0 || chmod(dir, 0777) < 0) {
        fprintf(stderr, "could not make %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

void dur_remove_dir(const char *dir)
{
    const char *keep = getenv("WF_TEST_KEEP_LOGS");
    char cmd[400];

    if (dir[0] == '\0')
        return;
    /* Kept like the server log (harness.h). */
    if (keep != NULL && (th_failures() > 0 || strcmp(keep, "all") == 0)) {
        fprintf(stderr, "kept the invocation log: %s/invocations.log\n", dir);
        return;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int dur_deploy(const struct th_server *s, const char *project, const char *plugin)
{
    int bad = 0;

    for (int kind = 0; kind < 2; kind++) {
        int n = kind == 0 ? dur_nworkflows : dur_nactivities;
        for (int i = 0; i < n; i++) {
            char path[200];
            long st;
            snprintf(path, sizeof(path), "/projects/%s/%s/%s", project,
                     kind == 0 ? "workflows" : "activities",
                     kind == 0 ? dur_workflows[i] : dur_activities[i]);
            st = th_put_plugin(s, path, plugin, NULL);
            if (st / 100 != 2) {
                fprintf(stderr, "PUT %s (%s): %ld\n", path, plugin, st);
                bad++;
            }
        }
    }
    return bad;
}

/* ---- runs ---- */

int dur_trigger(const struct th_server *s, const char *project, const char *workflow,
                const char *input, int n, struct dur_id *ids)
{
    const char *paths[TRIGGER_BATCH], *bodies[TRIGGER_BATCH];
    long status[TRIGGER_BATCH];
    cJSON *json[TRIGGER_BATCH];
    char path[160];
    size_t blen = strlen(input) + strlen(workflow) + 64;
    char *body = malloc(blen);
    int ok = 0;

    if (body == NULL)
        return 0;
    snprintf(path, sizeof(path), "/projects/%s/executions", project);
    snprintf(body, blen, "{\"workflow\":\"%s\",\"input\":%s}", workflow, input);
    for (int done = 0; done < n; done += TRIGGER_BATCH) {
        int k = n - done < TRIGGER_BATCH ? n - done : TRIGGER_BATCH;
        for (int i = 0; i < k; i++) {
            paths[i] = path;
            bodies[i] = body;
        }
        if (th_http_parallel(s, "POST", paths, bodies, k, status, json) < 0)
            fprintf(stderr, "triggers %d..%d did not all finish\n", done, done + k - 1);
        for (int i = 0; i < k; i++) {
            const char *id = th_json_str(json[i], "executionId");
            struct dur_id *d = &ids[done + i];
            d->s[0] = '\0';
            if (status[i] == 202 && id != NULL) {
                snprintf(d->s, sizeof(d->s), "%s", id);
                ok++;
            } else {
                fprintf(stderr, "trigger of %s: %ld\n", workflow, status[i]);
            }
            cJSON_Delete(json[i]);
        }
    }
    free(body);
    return ok;
}

int dur_signal(const struct th_server *s, const struct dur_id *ids, int from, int to,
               const char *name)
{
    const char *paths[TRIGGER_BATCH], *bodies[TRIGGER_BATCH];
    static char pbuf[TRIGGER_BATCH][256], bbuf[TRIGGER_BATCH][48];
    long status[TRIGGER_BATCH];
    cJSON *json[TRIGGER_BATCH];
    int ok = 0;

    for (int i0 = from; i0 < to; i0 += TRIGGER_BATCH) {
        int k = to - i0 < TRIGGER_BATCH ? to - i0 : TRIGGER_BATCH;
        for (int i = 0; i < k; i++) {
            snprintf(pbuf[i], sizeof(pbuf[i]), "/executions/%s/signals/%s", ids[i0 + i].s, name);
            snprintf(bbuf[i], sizeof(bbuf[i]), "\"%s\"", ids[i0 + i].s);
            paths[i] = pbuf[i];
            bodies[i] = bbuf[i];
        }
        (void)th_http_parallel(s, "POST", paths, bodies, k, status, json);
        for (int i = 0; i < k; i++) {
            ok += status[i] == 202;
            if (status[i] != 202)
                fprintf(stderr, "signal %s to %s: %ld\n", name, ids[i0 + i].s, status[i]);
            cJSON_Delete(json[i]);
        }
    }
    return ok;
}

/* "{id,id,…}" of the ids that are set (caller frees), or NULL. */
static char *id_array(const struct dur_id *ids, int n)
{
    size_t cap = (size_t)n * 38 + 3, len = 0;
    char *a = malloc(cap);

    if (a == NULL)
        return NULL;
    a[len++] = '{';
    for (int i = 0; i < n; i++) {
        if (ids[i].s[0] == '\0')
            continue;
        len += (size_t)snprintf(a + len, cap - len, "%s%s", len > 1 ? "," : "", ids[i].s);
    }
    snprintf(a + len, cap - len, "}");
    return a;
}

/* Runs sql with the ids array as $1; the result or NULL (caller PQclears). */
static PGresult *ids_query(PGconn *pg, const char *sql, const struct dur_id *ids, int n,
                           const char *p2)
{
    char *arr = id_array(ids, n);
    const char *params[2] = {arr, p2};
    PGresult *r;

    if (arr == NULL)
        return NULL;
    r = th_sql(pg, sql, p2 != NULL ? 2 : 1, params);
    free(arr);
    return r;
}

static long long ids_count(PGconn *pg, const char *sql, const struct dur_id *ids, int n,
                           const char *p2)
{
    PGresult *r = ids_query(pg, sql, ids, n, p2);
    long long v = -1;

    if (r != NULL && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

int dur_error_has(const cJSON *ex, const char *a, const char *b)
{
    char *e = cJSON_PrintUnformatted(cJSON_GetObjectItem(ex, "error"));
    int ok = e != NULL && strstr(e, a) != NULL && (b == NULL || strstr(e, b) != NULL);

    if (!ok)
        fprintf(stderr, "error %s lacks \"%s\"%s%s\n", e != NULL ? e : "(none)", a,
                b != NULL ? " or " : "", b != NULL ? b : "");
    free(e);
    return ok;
}

int dur_db_allow(PGconn *admin, const char *name, int allow)
{
    char sql[200];

    snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS %s", name,
             allow ? "true" : "false");
    return th_sql_exec(admin, sql);
}

int dur_db_cut(PGconn *admin, const char *name, int core_only)
{
    const char *params[1] = {name};
    PGresult *r = th_sql(admin,
                         core_only ? "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                     " WHERE datname = $1 AND application_name LIKE 'wf-core%'"
                                   : "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                     " WHERE datname = $1 AND pid <> pg_backend_pid()",
                         1, params);

    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}

long dur_start_run(const struct th_server *s, const char *project, const char *workflow,
                   const char *input, char *id, size_t len)
{
    char path[160];
    size_t blen = strlen(workflow) + strlen(input) + 64;
    char *body = malloc(blen);
    cJSON *j = NULL;
    long st;

    id[0] = '\0';
    if (body == NULL)
        return -1;
    snprintf(body, blen, "{\"workflow\":\"%s\",\"input\":%s}", workflow, input);
    snprintf(path, sizeof(path), "/projects/%s/executions", project);
    st = th_http_json(s, "POST", path, body, &j);
    if (st == 202 && th_json_str(j, "executionId") != NULL)
        snprintf(id, len, "%s", th_json_str(j, "executionId"));
    else
        fprintf(stderr, "start %s: %ld\n", workflow, st);
    cJSON_Delete(j);
    free(body);
    return st;
}

const cJSON *dur_wait_run(const struct th_server *s, const char *id, int timeout_ms, cJSON **reply)
{
    char path[128];
    long long t0 = th_now_ms();

    snprintf(path, sizeof(path), "/executions/%s", id);
    for (;;) {
        const cJSON *ex;
        const char *st;
        *reply = NULL;
        if (th_http_json(s, "GET", path, NULL, reply) != 200)
            return NULL;
        ex = cJSON_GetObjectItem(*reply, "execution");
        st = th_json_str(ex, "status");
        if (st != NULL && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
                           strcmp(st, "cancelled") == 0))
            return ex;
        if (th_now_ms() - t0 > timeout_ms) {
            fprintf(stderr, "run %s still %s after %d ms\n", id, st != NULL ? st : "?", timeout_ms);
            return ex;
        }
        cJSON_Delete(*reply);
        th_sleep_ms(20);
    }
}

long long dur_unended(PGconn *pg, const struct dur_id *ids, int n)
{
    return ids_count(pg,
                     "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[])"
                     " AND status NOT IN ('completed', 'failed', 'cancelled')",
                     ids, n, NULL);
}

long long dur_count_status(PGconn *pg, const struct dur_id *ids, int n, const char *status)
{
    return ids_count(pg,
                     "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[]) AND status = $2",
                     ids, n, status);
}

int dur_wait_ended(PGconn *pg, const struct dur_id *ids, int n, int timeout_ms)
{
    long long deadline = th_now_ms() + timeout_ms;
    PGresult *r;

    for (;;) {
        long long left = dur_unended(pg, ids, n);
        if (left == 0)
            return 0;
        if (th_now_ms() >= deadline)
            break;
        th_sleep_ms(50);
    }
    r = ids_query(pg,
                  "SELECT status, count(*), count(lease_owner), min(run_at)::text"
                  " FROM executions WHERE id = ANY($1::uuid[]) GROUP BY status ORDER BY 1",
                  ids, n, NULL);
    fprintf(stderr, "runs not ended after %d ms:", timeout_ms);
    for (int i = 0; r != NULL && i < PQntuples(r); i++)
        fprintf(stderr, " %s %s (%s leased, first due %s)", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    fprintf(stderr, "\n");
    PQclear(r);
    return -1;
}

/* ---- the check ---- */

struct slot {
    int rows;          /* committed record rows */
    long long done_us; /* completed_at of the (first) row */
    int before, after; /* invocations before / after done_us */
};

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const struct dur_id *)a)->s, ((const struct dur_id *)b)->s);
}

/* The index of id in sorted (n of them), or -1. */
static int run_index(const struct dur_id *sorted, int n, const char *id)
{
    struct dur_id key;
    const struct dur_id *hit;

    if (strlen(id) >= sizeof(key.s))
        return -1;
    snprintf(key.s, sizeof(key.s), "%s", id);
    hit = bsearch(&key, sorted, (size_t)n, sizeof(*sorted), cmp_id);
    return hit != NULL ? (int)(hit - sorted) : -1;
}

/* completed_at in epoch microseconds, exact on PostgreSQL 13 too (where
 * EXTRACT answers a float8): whole seconds plus the microsecond field. */
#define SQL_DONE_US                                                                                \
    "extract(epoch from date_trunc('second', s.completed_at))::bigint * 1000000"                   \
    " + extract(microseconds from s.completed_at)::bigint % 1000000"

int dur_check(PGconn *pg, const char *dir, const struct dur_id *ids, int nids, int n,
              const char *label, struct dur_report *rep)
{
    struct dur_id *sorted = calloc((size_t)(nids > 0 ? nids : 1), sizeof(*sorted));
    struct slot *slots = NULL;
    PGresult *r = NULL;
    char path[400], *log = NULL;
    int nruns = 0, shown = 0, rc = -1;

    memset(rep, 0, sizeof(*rep));
    if (sorted == NULL)
        return -1;
    for (int i = 0; i < nids; i++) {
        if (ids[i].s[0] != '\0')
            sorted[nruns++] = ids[i];
    }
    qsort(sorted, (size_t)nruns, sizeof(*sorted), cmp_id);
    slots = calloc((size_t)nruns * (size_t)(n > 0 ? n : 1) + 1, sizeof(*slots));
    if (slots == NULL)
        goto out;
    rep->runs = nruns;
    rep->steps_expected = (long)nruns * n;

    /* The runs. */
    r = ids_query(pg,
                  "SELECT status, output->>'sum', output->>'steps', output->>'version'"
                  " FROM executions WHERE id = ANY($1::uuid[])",
                  sorted, nruns, NULL);
    if (r == NULL)
        goto out;
    for (int i = 0; i < PQntuples(r); i++) {
        long sum = PQgetisnull(r, i, 1) ? -1 : strtol(PQgetvalue(r, i, 1), NULL, 10);
        long steps = PQgetisnull(r, i, 2) ? -1 : strtol(PQgetvalue(r, i, 2), NULL, 10);
        long v = PQgetisnull(r, i, 3) ? 0 : strtol(PQgetvalue(r, i, 3), NULL, 10);
        rep->completed += strcmp(PQgetvalue(r, i, 0), "completed") == 0;
        rep->right_output += sum == n && steps == n;
        if (v >= 0 && v <= 2)
            rep->version[v]++;
    }
    PQclear(r);

    /* Their committed record steps. */
    r = ids_query(pg,
                  "SELECT s.execution_id::text, (s.output->>'step')::int, " SQL_DONE_US
                  " FROM steps s WHERE s.execution_id = ANY($1::uuid[])"
                  " AND s.kind = 'activity' AND s.name = 'record' AND s.status = 'completed'",
                  sorted, nruns, NULL);
    if (r == NULL)
        goto out;
    for (int i = 0; i < PQntuples(r); i++) {
        int run = run_index(sorted, nruns, PQgetvalue(r, i, 0));
        int step = PQgetisnull(r, i, 1) ? -1 : (int)strtol(PQgetvalue(r, i, 1), NULL, 10);
        struct slot *sl;
        if (run < 0 || step < 0 || step >= n)
            continue;
        sl = &slots[(size_t)run * (size_t)n + (size_t)step];
        if (sl->rows++ == 0)
            sl->done_us = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    }
    PQclear(r);
    r = NULL;

    /* The invocations. */
    snprintf(path, sizeof(path), "%s/invocations.log", dir);
    log = th_read_file(path, NULL);
    for (char *line = log; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        char id[64];
        int step = -1, attempt = -1, run;
        long pid = -1;
        long long us = -1;
        struct slot *sl;

        if (nl != NULL)
            *nl = '\0';
        if (sscanf(line, "%63s %d %d %ld %lld", id, &step, &attempt, &pid, &us) == 5 &&
            (run = run_index(sorted, nruns, id)) >= 0) {
            rep->invocations++;
            if (step < 0 || step >= n) {
                rep->uncommitted++;
            } else {
                sl = &slots[(size_t)run * (size_t)n + (size_t)step];
                if (sl->rows == 0) {
                    rep->uncommitted++;
                } else if (us > sl->done_us) {
                    sl->after++;
                    rep->after_commit++;
                    if (us - sl->done_us > rep->worst_late_us)
                        rep->worst_late_us = us - sl->done_us;
                    if (shown++ < MAX_LATE_SHOWN)
                        fprintf(stderr,
                                "%s: run %s step %d ran again %lld us after its commit"
                                " (attempt %d, pid %ld)\n",
                                label, id, step, us - sl->done_us, attempt, pid);
                } else {
                    sl->before++;
                }
            }
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    for (long i = 0; i < rep->steps_expected; i++) {
        const struct slot *sl = &slots[i];
        if (sl->rows == 0)
            rep->steps_missing++;
        else if (sl->rows == 1)
            rep->steps_once++;
        else
            rep->steps_doubled++;
        if (sl->before > 1)
            rep->dup_before += sl->before - 1;
    }
    printf("%s: %d runs, %d completed, %d with the right output (version 1: %d, 2: %d); "
           "%ld/%ld steps committed once (%ld missing, %ld twice); %ld invocations, "
           "%ld duplicates before the commit, %ld after it (worst %lld us late), "
           "%ld without a committed step\n",
           label, rep->runs, rep->completed, rep->right_output, rep->version[1], rep->version[2],
           rep->steps_once, rep->steps_expected, rep->steps_missing, rep->steps_doubled,
           rep->invocations, rep->dup_before, rep->after_commit, rep->worst_late_us,
           rep->uncommitted);
    fflush(stdout);
    rc = 0;
out:
    PQclear(r);
    free(log);
    free(slots);
    free(sorted);
    return rc;
}

void dur_expect_clean(const struct dur_report *rep, const char *label)
{
    int before = th_failures();

    CHECK(rep->runs > 0);
    CHECK_EQ_INT(rep->completed, rep->runs);
    CHECK_EQ_INT(rep->right_output, rep->runs);
    CHECK_EQ_INT(rep->steps_once, rep->steps_expected);
    CHECK_EQ_INT(rep->steps_missing, 0);
    CHECK_EQ_INT(rep->steps_doubled, 0);
    CHECK_EQ_INT(rep->after_commit, 0); /* no committed step ran again */
    CHECK_EQ_INT(rep->uncommitted, 0);
    /* Every committed step was invoked (and logged) before its commit. */
    CHECK(rep->invocations - rep->after_commit - rep->uncommitted >= rep->steps_once);
    if (th_failures() != before)
        fprintf(stderr, "  (the checks above are of %s)\n", label);
}

/* ---- workers ---- */

pid_t dur_kill_worker(const struct th_server *s, const char *project)
{
    pid_t pid = th_status_pid(s, project, NULL);

    if (pid <= 0) {
        fprintf(stderr, "no worker of project %s to kill\n", project);
        return -1;
    }
    if (kill(pid, SIGKILL) < 0) {
        fprintf(stderr, "kill %d: %s\n", (int)pid, strerror(errno));
        return -1;
    }
    if (th_wait_pid_gone(pid, 5000, 5) < 0) {
        fprintf(stderr, "worker %d survived kill -9\n", (int)pid);
        return -1;
    }
    return pid;
}

pid_t dur_worker_back(const struct th_server *s, const char *project, pid_t old, int timeout_ms)
{
    long long deadline = th_now_ms() + timeout_ms;

    while (th_now_ms() < deadline) {
        cJSON *j = NULL;
        pid_t pid = th_status_pid(s, project, &j);
        const char *st = th_json_str(j, "status");
        int up = pid > 0 && pid != old && st != NULL && strcmp(st, "running") == 0;

        cJSON_Delete(j);
        if (up)
            return pid;
        (void)th_post_project(s, "/workers/start", project, NULL);
        th_sleep_ms(10);
    }
    fprintf(stderr, "the worker of project %s did not come back within %d ms\n", project,
            timeout_ms);
    return -1;
}

/* ---- randomness ---- */

static uint64_t rng_state = 88172645463325252ull;

uint64_t dur_seed(void)
{
    const char *s = getenv("WF_TEST_SEED");
    uint64_t seed;

    if (s != NULL && *s != '\0') {
        seed = strtoull(s, NULL, 10);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    rng_state = seed != 0 ? seed : 1;
    printf("seed %llu (WF_TEST_SEED=%llu replays it)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    fflush(stdout);
    return seed;
}

int dur_rand(int lo, int hi)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return lo + (int)((rng_state * 2685821657736338717ull >> 33) % (uint64_t)(hi - lo + 1));
}
