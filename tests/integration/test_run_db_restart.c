/*
 * test_run_db_restart.c: runs survive the database going away under load
 * and coming back (DESIGN §2.1: statements retried after a lost connection
 * carry their own key; a step is acknowledged only after its commit).
 *
 * 300 runs of `steps` (30 record steps of 100 ms: at least 9 s of activity
 * time on the worker's 100 threads) are in flight when the database
 * "restarts": as test_db_outage does, the test database refuses new
 * connections and every backend on it is terminated (what core sees of a
 * restart: every connection cut mid-batch, reconnects refused, then
 * accepted again), for 1.5 s, twice, a random 100-600 ms after the
 * triggers and after the first outage. The throwaway cluster is shared by
 * tests running in parallel, so the test does not restart the cluster
 * itself. Then core's connections are cut 20 times more, 50-250 ms apart,
 * without refusing new ones: each cut may land between a batch's COMMIT and
 * its answer, the window where a step is committed but not acknowledged.
 * Then:
 *   - /health said 503 during each outage and 200 after it;
 *   - every run completed with the right output, every step is committed
 *     once, no invocation came after its step's commit (durability.h): a
 *     step whose commit was cut off is sent again, finds its row, and must
 *     not run again;
 *   - every run ended within 20 s of the last cut (the work left takes
 *     under 9 s), with WF_LEASE_MS at 60 s: no run waits for its own
 *     host's lease to expire.
 * The cuts rarely land in that window, so it is also made on purpose: while
 * the first step of a run (3 steps of 1.5 s) runs, the test writes its row
 * as the step's commit would have (as if core had lost the answer and sent
 * the step again): the step is then not recorded when the worker's result
 * comes, and the run must still end promptly (within 10 s, where its
 * lease would keep it a minute), with that step run only once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durability.h"
#include "harness.h"

#define NRUNS 300
#define NSTEPS 30
#define STEP_MS 100
#define NOUTAGES 2
#define OUTAGE_MS 1500
#define NCUTS 20

static struct th_server srv;
static PGconn *admin;
static PGconn *pg;
static struct th_db db;
static char dir[256];

static int health_is(void *arg)
{
    struct th_reply r;
    long st = th_http_ex(&srv, "GET", "/health", NULL, 0, NULL, 5000, &r);

    th_reply_free(&r);
    return st == *(long *)arg;
}

/* 1 when dir's invocation log holds a line starting with *arg. */
static int logged(void *arg)
{
    char path[300], *log;
    int found;

    snprintf(path, sizeof(path), "%s/invocations.log", dir);
    log = th_read_file(path, NULL);
    found = log != NULL && strstr(log, arg) != NULL;
    free(log);
    return found;
}

/* A step committed whose answer core never got (see the header). */
static void lost_answer(void)
{
    static struct dur_id id[1];
    struct dur_report rep;
    char in[512], line[64];
    const char *params[1];
    PGresult *r;
    long long t0;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":3,\"step_ms\":1500}", dir);
    if (!CHECK_EQ_INT(dur_trigger(&srv, "p", "steps", in, 1, id), 1))
        return;
    snprintf(line, sizeof(line), "%s 0 ", id[0].s);
    CHECK(th_wait_until(logged, line, 10000, 10) == 0);
    params[0] = id[0].s;
    r = th_sql(pg,
               "INSERT INTO steps (execution_id, seq, project_id, name, kind, status, output,"
               " attempts, started_at, completed_at) VALUES ($1::uuid, 0, 'p', 'record',"
               " 'activity', 'completed', '{\"step\": 0, \"echo\": null}', 1, clock_timestamp(),"
               " clock_timestamp())",
               1, params);
    CHECK(r != NULL);
    PQclear(r);
    t0 = th_now_ms();
    CHECK(dur_wait_ended(pg, id, 1, 20000) == 0);
    printf("lost answer: the run ended %lld ms after its first step was written for it\n",
           th_now_ms() - t0);
    CHECK(th_now_ms() - t0 < 10000);
    if (CHECK(dur_check(pg, dir, id, 1, 3, "lost answer", &rep) == 0))
        dur_expect_clean(&rep, "lost answer");
}

int main(void)
{
    static struct dur_id ids[NRUNS];
    struct dur_report rep;
    char rw[300], in[512], trace[256];
    const char *overrides[5];
    size_t tlen = 0;
    long long t_back = 0;
    int rc, in_flight = 0;

    if (dur_make_dir(dir, sizeof(dir), "test-run-db-restart") < 0)
        return 1;
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    overrides[0] = rw;
    overrides[1] = "WF_MAX_CONNECTIONS_PER_IP=256"; /* 100 triggers at once */
    overrides[2] = "WF_LISTEN_ADDR=127.0.0.1";
    overrides[3] = "WF_LEASE_MS=60000"; /* a run left to its lease would wait a minute */
    overrides[4] = NULL;
    rc = th_setup("test_run_db_restart", &db, &srv, overrides, &pg);
    if (rc == TH_SKIP) {
        dur_remove_dir(dir);
        return TH_SKIP;
    }
    if (rc != 0)
        goto out;
    admin = PQconnectdb(getenv("WF_TEST_DATABASE_URL"));
    if (!CHECK(admin != NULL && PQstatus(admin) == CONNECTION_OK))
        goto out;
    CHECK_EQ_INT(th_create_project(&srv, "p", NULL), 201);
    CHECK_EQ_INT(dur_deploy(&srv, "p", "engine_recorder"), 0);
    if (!CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p", NULL), 200))
        goto out;
    dur_seed();

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":%d}", dir, NSTEPS, STEP_MS);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "steps", in, NRUNS, ids), NRUNS);
    for (int k = 0; k < NOUTAGES; k++) {
        int delay = dur_rand(100, 600);
        long want;
        long long left;

        th_sleep_ms(delay);
        /* Our own connection is cut too: ask before. */
        left = dur_unended(pg, ids, NRUNS);
        in_flight += left > 0;
        CHECK(dur_db_allow(admin, db.name, 0) == 0);
        CHECK(dur_db_cut(admin, db.name, 0) == 0);
        want = 503;
        CHECK(th_wait_until(health_is, &want, 10000, 50) == 0);
        th_sleep_ms(OUTAGE_MS);
        CHECK(dur_db_allow(admin, db.name, 1) == 0);
        want = 200;
        CHECK(th_wait_until(health_is, &want, 20000, 50) == 0);
        t_back = th_now_ms();
        PQfinish(pg);
        pg = th_db_connect(&db);
        if (!CHECK(pg != NULL))
            goto out;
        tlen += (size_t)snprintf(trace + tlen, sizeof(trace) - tlen, " [%d ms, %lld left]", delay,
                                 left);
    }
    for (int k = 0; k < NCUTS; k++) {
        th_sleep_ms(dur_rand(50, 250));
        in_flight += dur_unended(pg, ids, NRUNS) > 0;
        CHECK(dur_db_cut(admin, db.name, 1) == 0);
    }
    t_back = th_now_ms();
    /* At most 2 * 0.6 s + 20 * 0.25 s of the 9 s of work have passed. */
    CHECK_EQ_INT(in_flight, NOUTAGES + NCUTS);
    CHECK(dur_wait_ended(pg, ids, NRUNS, 30000) == 0);
    printf("database restarted %d times:%s, then %d connection cuts; all ended %lld ms after "
           "the last\n",
           NOUTAGES, trace, NCUTS, th_now_ms() - t_back);
    CHECK(th_now_ms() - t_back < 20000);
    if (CHECK(dur_check(pg, dir, ids, NRUNS, NSTEPS, "db restart", &rep) == 0))
        dur_expect_clean(&rep, "db restart");
    lost_answer();
out:
    if (admin != NULL) {
        if (db.created)
            dur_db_allow(admin, db.name, 1);
        PQfinish(admin);
    }
    th_down(&db, &srv, pg);
    dur_remove_dir(dir);
    return th_finish();
}
