/*
 * test_run_two_hosts.c: two servers share one database and one project
 * (DESIGN §5, "Distributed" and "Leases").
 *
 * Hosts A and B (WF_HOST_ID hostA and hostB, each on its own port with its
 * own WF_RUNTIME_DIR, WF_LEASE_MS 2000) both run a worker of project p.
 *   1. Exactly once: 300 runs are triggered, 150 on each host, before any
 *      worker runs (all pending), then both workers are started at once:
 *      their first claims (FOR UPDATE SKIP LOCKED, at most 200 each, the
 *      MAX_CONCURRENT_WORKFLOW_EXECUTIONS of both) share the runs out. Every run completes with the
 * right output, every step is committed once, no invocation came after its step's commit
 *      (durability.h), and both workers ran steps.
 *   2. A host that vanishes: 300 runs (5 record steps of 100 ms), 150 on
 *      each host; while A holds runs, A's manager is frozen (SIGSTOP), its
 *      workers (process groups of their own) and its process group
 *      (manager, core) are killed with SIGKILL. A's runs must be taken over
 *      by B once their lease expires (renewed every third of it, so within
 *      WF_LEASE_MS of the kill) and B's next poll (every second): within
 *      WF_LEASE_MS + 1.5 s; and end within WF_LEASE_MS + 1.5 s + the
 *      longest rest of a run (5 * 100 ms) + 0.5 s. The times are printed.
 *      All 300 complete, cleanly as above.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durability.h"
#include "harness.h"

#define LEASE_MS 2000
#define POLL_SLACK_MS 1500 /* core polls every 1 s; the rest is slack */
#define NSTEPS2 5
#define STEP_MS2 100

static struct th_server a, b;
static PGconn *pg;
static char dir[256];

/* Spawns a server named host on db; returns 0 or -1 (counted). */
static int start_host(struct th_server *s, const struct th_db *db, const char *host)
{
    char hostid[64], rt[320], rw[300];
    const char *ov[9];

    snprintf(hostid, sizeof(hostid), "WF_HOST_ID=%s", host);
    snprintf(rt, sizeof(rt), "WF_RUNTIME_DIR=%s/runtime-%s", dir, host);
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    ov[0] = hostid;
    ov[1] = rt;
    ov[2] = rw;
    ov[3] = "WF_LEASE_MS=2000";
    ov[4] = "WF_MAX_CONNECTIONS_PER_IP=256"; /* 100 triggers at once */
    ov[5] = "WF_LISTEN_ADDR=127.0.0.1";
    ov[6] = "MAX_CONCURRENT_WORKFLOW_EXECUTIONS=200"; /* neither takes all 300 */
    ov[7] = NULL;
    return CHECK(th_server_start(s, db, ov) == 0) ? 0 : -1;
}

/* Invocations in dir's log by process pid. */
static long invocations_by(pid_t pid)
{
    char path[300], *log, *line;
    long n = 0;

    snprintf(path, sizeof(path), "%s/invocations.log", dir);
    log = th_read_file(path, NULL);
    for (line = log; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        char id[64];
        int step, attempt;
        long p;
        if (nl != NULL)
            *nl = '\0';
        if (sscanf(line, "%63s %d %d %ld", id, &step, &attempt, &p) == 4 && p == (long)pid)
            n++;
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(log);
    return n;
}

static void *start_a(void *arg)
{
    *(long *)arg = th_post_project(&a, "/workers/start", "p", NULL);
    return NULL;
}

static void exactly_once(void)
{
    static struct dur_id ids[300];
    struct dur_report rep;
    char in[512];
    long st_a = 0;
    pthread_t t;
    pid_t pa, pb;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":10,\"step_ms\":5}", dir);
    CHECK_EQ_INT(dur_trigger(&a, "p", "steps", in, 150, ids), 150);
    CHECK_EQ_INT(dur_trigger(&b, "p", "steps", in, 150, ids + 150), 150);
    CHECK_EQ_INT(dur_count_status(pg, ids, 300, "pending"), 300);
    if (!CHECK(pthread_create(&t, NULL, start_a, &st_a) == 0))
        return;
    CHECK_EQ_INT(th_post_project(&b, "/workers/start", "p", NULL), 200);
    pthread_join(t, NULL);
    CHECK_EQ_INT(st_a, 200);
    CHECK(dur_wait_ended(pg, ids, 300, 30000) == 0);
    if (CHECK(dur_check(pg, dir, ids, 300, 10, "two hosts", &rep) == 0))
        dur_expect_clean(&rep, "two hosts");
    pa = th_status_pid(&a, "p", NULL);
    pb = th_status_pid(&b, "p", NULL);
    printf("two hosts: %ld invocations on A's worker, %ld on B's\n", invocations_by(pa),
           invocations_by(pb));
    CHECK(invocations_by(pa) > 0);
    CHECK(invocations_by(pb) > 0);
}

/* Kills host s outright: its manager frozen first, so that it neither
 * restarts nor signals anything, then its workers and its process group. */
static void kill_host(struct th_server *s)
{
    pid_t kids[16];
    int n;

    CHECK(kill(s->pid, SIGSTOP) == 0);
    n = th_proc_children(s->pid, "wf-worker", kids, 16);
    for (int i = 0; i < n && i < 16; i++)
        CHECK(kill(kids[i], SIGKILL) == 0);
    CHECK(kill(-s->pgid, SIGKILL) == 0);
    CHECK(th_server_wait(s, 5000) == 0);
}

static long long count_ids(const struct dur_id *ids, int n, const char *sql_where)
{
    char sql[300];
    char *arr = malloc((size_t)n * 38 + 3);
    size_t len = 0;
    long long v = -1;
    const char *params[1] = {arr};
    PGresult *r;

    if (arr == NULL)
        return -1;
    arr[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(arr + len, (size_t)n * 38 + 3 - len, "%s%s", i > 0 ? "," : "",
                                ids[i].s);
    snprintf(arr + len, (size_t)n * 38 + 3 - len, "}");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[]) AND %s",
             sql_where);
    r = th_sql(pg, sql, 1, params);
    if (r != NULL && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    free(arr);
    return v;
}

static void host_vanishes(void)
{
    static struct dur_id ids[300], held[300];
    struct dur_report rep;
    char in[512];
    long long t_kill, t_takeover = -1, t_end = -1, t0;
    int nheld = 0;
    PGresult *r;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":%d}", dir, NSTEPS2, STEP_MS2);
    CHECK_EQ_INT(dur_trigger(&a, "p", "steps", in, 150, ids), 150);
    CHECK_EQ_INT(dur_trigger(&b, "p", "steps", in, 150, ids + 150), 150);
    th_sleep_ms(dur_rand(100, 300));

    /* The runs A holds now (the rest of each takes at most 500 ms). */
    kill_host(&a);
    t_kill = th_now_ms();
    r = th_sql(pg,
               "SELECT id::text FROM executions WHERE lease_owner = 'hostA' AND status = 'running'",
               0, NULL);
    for (int i = 0; r != NULL && i < PQntuples(r) && nheld < 300; i++)
        snprintf(held[nheld++].s, sizeof(held[0].s), "%s", PQgetvalue(r, i, 0));
    PQclear(r);
    if (!CHECK(nheld > 0))
        return;
    t0 = th_now_ms();
    while (th_now_ms() - t0 < 20000 && (t_takeover < 0 || t_end < 0)) {
        if (t_takeover < 0 && count_ids(held, nheld, "lease_owner = 'hostA'") == 0)
            t_takeover = th_now_ms() - t_kill;
        if (t_end < 0 && dur_unended(pg, held, nheld) == 0)
            t_end = th_now_ms() - t_kill;
        th_sleep_ms(20);
    }
    printf("host A killed holding %d runs: taken over by B after %lld ms, all ended after %lld ms "
           "(WF_LEASE_MS %d)\n",
           nheld, t_takeover, t_end, LEASE_MS);
    CHECK(t_takeover >= 0 && t_takeover <= LEASE_MS + POLL_SLACK_MS);
    CHECK(t_end >= 0 && t_end <= LEASE_MS + POLL_SLACK_MS + NSTEPS2 * STEP_MS2 + 500);
    /* A's runs did finish on B. */
    CHECK_EQ_INT(count_ids(held, nheld, "status = 'completed'"), nheld);
    CHECK(dur_wait_ended(pg, ids, 300, 20000) == 0);
    if (CHECK(dur_check(pg, dir, ids, 300, NSTEPS2, "host vanishes", &rep) == 0))
        dur_expect_clean(&rep, "host vanishes");
}

int main(void)
{
    struct th_db db;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&db, 0, sizeof(db));
    if (th_init("test_run_two_hosts", 1) < 0)
        return TH_SKIP;
    if (dur_make_dir(dir, sizeof(dir), "test-run-two-hosts") < 0)
        return 1;
    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    if (start_host(&a, &db, "hostA") < 0 || start_host(&b, &db, "hostB") < 0)
        goto out;
    pg = th_db_connect(&db);
    if (!CHECK(pg != NULL))
        goto out;
    dur_seed();
    CHECK_EQ_INT(th_create_project(&a, "p", NULL), 201);
    CHECK_EQ_INT(dur_deploy(&a, "p", "engine_recorder"), 0);
    exactly_once();
    host_vanishes();
out:
    th_down(NULL, &a, NULL);
    th_down(&db, &b, pg);
    dur_remove_dir(dir);
    return th_finish();
}
