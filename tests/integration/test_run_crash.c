/*
 * test_run_crash.c: runs survive a worker killed with -9 at random moments,
 * again and again (DESIGN §5: "activities run at least once; a recorded step
 * never runs again").
 *
 * Three rounds of 200 runs each, with the engine's test plugin
 * (tests/plugins/engine_recorder.h): `steps` (20 record steps), `sleepy`
 * (10 steps, a durable sleep of 1 s, 10 steps) and `waiter` (10 steps, a
 * wait for signal "go", 10 steps; the signals are sent a slice at a time
 * between the kills). While a round's runs are in flight the project's
 * worker is killed with SIGKILL a random 10–300 ms after each time it is
 * back, at least 8 times and until every run ended (or the round's time is
 * up); the manager restarts it (asked with a start call so that it comes
 * back at its 1-s floor: see dur_worker_back). Then, for each round:
 *   - every run completed with the right output (sum 20; for waiter, the
 *     payload of its own signal);
 *   - every (run, step) has exactly one committed row;
 *   - no invocation of a step was logged after its completed_at: a committed
 *     step never ran again (durability.h says why no clock slack is needed);
 *   - the duplicates before a commit (at-least-once) are counted and printed.
 * The kill delays come from a seeded generator; the seed is printed and
 * WF_TEST_SEED replays it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durability.h"
#include "harness.h"

#define NRUNS 200
#define NSTEPS 20
#define STEP_MS 20 /* a run takes >= NSTEPS * STEP_MS = 400 ms of activity time */
#define TOPUP 25   /* runs added when all ended before MIN_KILLS kills hit runs */
#define MAXRUNS (NRUNS + 8 * TOPUP)
#define MIN_KILLS 8
#define KILL_BUDGET_MS 25000 /* a round stops killing after this */
#define END_WAIT_MS 30000    /* then every run must end within this */

static struct th_server srv;
static PGconn *pg;
static char dir[256];

/*
 * One round: triggers NRUNS runs of workflow with input, then kills the
 * worker a random 10-300 ms after each time it is back, until every run
 * ended and at least MIN_KILLS kills hit runs still in flight (at most for
 * KILL_BUDGET_MS). Should the runs all end before that, TOPUP more are
 * triggered just before the next kill: a run needs more activity time
 * (NSTEPS * STEP_MS) than a worker lives here, so that kill lands while they
 * run. signals: the runs wait for signal "go", sent a slice at a time before
 * the kills (to top-up runs at once).
 */
static void round_of(const char *label, const char *workflow, const char *input, int signals)
{
    static struct dur_id ids[MAXRUNS];
    struct dur_report rep;
    long long t0 = th_now_ms(), t_end;
    int nruns = NRUNS, kills = 0, in_flight = 0, signalled = 0, sig_ok = 0, topups = 0;
    char trace[768];
    size_t tlen = 0;

    CHECK_EQ_INT(dur_trigger(&srv, "p", workflow, input, NRUNS, ids), NRUNS);
    while (th_now_ms() - t0 < KILL_BUDGET_MS) {
        long long left = dur_unended(pg, ids, nruns);
        int delay;
        pid_t pid;
        if (left == 0 && in_flight >= MIN_KILLS)
            break;
        if (left == 0) {
            if (nruns + TOPUP > MAXRUNS)
                break;
            CHECK_EQ_INT(dur_trigger(&srv, "p", workflow, input, TOPUP, ids + nruns), TOPUP);
            if (signals) {
                sig_ok += dur_signal(&srv, ids, nruns, nruns + TOPUP, "go");
                signalled += TOPUP;
            }
            nruns += TOPUP;
            topups++;
        }
        if (signals && signalled < NRUNS) {
            int to = signalled + (NRUNS + MIN_KILLS - 1) / MIN_KILLS;
            to = to > NRUNS ? NRUNS : to;
            sig_ok += dur_signal(&srv, ids, signalled, to, "go");
            signalled = to;
        }
        delay = dur_rand(10, 300);
        th_sleep_ms(delay);
        pid = dur_kill_worker(&srv, "p");
        if (!CHECK(pid > 0))
            break;
        kills++;
        left = dur_unended(pg, ids, nruns);
        in_flight += left > 0;
        if (tlen < sizeof(trace) - 32)
            tlen += (size_t)snprintf(trace + tlen, sizeof(trace) - tlen, " %d:%lld", delay, left);
        if (!CHECK(dur_worker_back(&srv, "p", pid, 20000) > 0))
            break;
    }
    if (signals && signalled < NRUNS) {
        sig_ok += dur_signal(&srv, ids, signalled, NRUNS, "go");
        signalled = NRUNS;
    }
    if (signals)
        CHECK_EQ_INT(sig_ok, signalled);
    CHECK(in_flight >= MIN_KILLS);
    t_end = th_now_ms();
    CHECK(dur_wait_ended(pg, ids, nruns, END_WAIT_MS) == 0);
    printf("%s: %d kills, %d of them with runs in flight, %d top-ups, in %lld ms; all ended "
           "%lld ms after the last kill\n  delay ms:runs left at each kill:%s\n",
           label, kills, in_flight, topups, t_end - t0, th_now_ms() - t_end, trace);
    if (CHECK(dur_check(pg, dir, ids, nruns, NSTEPS, label, &rep) == 0))
        dur_expect_clean(&rep, label);
    if (signals) {
        /* Each run got its own signal's payload. */
        static char arr[MAXRUNS * 38 + 3];
        size_t len = 0;
        const char *params[1] = {arr};
        PGresult *r;
        arr[len++] = '{';
        for (int i = 0; i < nruns; i++)
            len +=
                (size_t)snprintf(arr + len, sizeof(arr) - len, "%s%s", i > 0 ? "," : "", ids[i].s);
        snprintf(arr + len, sizeof(arr) - len, "}");
        r = th_sql(pg,
                   "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[])"
                   " AND output->>'payload' = id::text",
                   1, params);
        CHECK(r != NULL && PQntuples(r) == 1 &&
              strtol(PQgetvalue(r, 0, 0), NULL, 10) == (long)nruns);
        PQclear(r);
    }
}

int main(void)
{
    struct th_db db;
    char rw[300], in[512];
    const char *overrides[5];
    int rc;

    if (dur_make_dir(dir, sizeof(dir), "test-run-crash") < 0)
        return 1;
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    overrides[0] = rw;
    overrides[1] = "WF_MAX_CONNECTIONS_PER_IP=256"; /* 200 signals at once */
    overrides[2] = "WF_LISTEN_ADDR=127.0.0.1";
    /* Every run's activity at once: a round takes a few worker lives. */
    overrides[3] = "MAX_CONCURRENT_ACTIVITY_EXECUTIONS=200";
    overrides[4] = NULL;
    rc = th_setup("test_run_crash", &db, &srv, overrides, &pg);
    if (rc == TH_SKIP) {
        dur_remove_dir(dir);
        return TH_SKIP;
    }
    if (rc != 0)
        goto out;
    CHECK_EQ_INT(th_create_project(&srv, "p", NULL), 201);
    CHECK_EQ_INT(dur_deploy(&srv, "p", "engine_recorder"), 0);
    if (!CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p", NULL), 200))
        goto out;
    dur_seed();

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":%d}", dir, NSTEPS, STEP_MS);
    round_of("steps", "steps", in, 0);
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":%d,\"sleep_ms\":1000}", dir,
             NSTEPS, STEP_MS);
    round_of("sleepy", "sleepy", in, 0);
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":%d,\"signal\":\"go\"}", dir,
             NSTEPS, STEP_MS);
    round_of("waiter", "waiter", in, 1);
out:
    th_down(&db, &srv, pg);
    dur_remove_dir(dir);
    return th_finish();
}
