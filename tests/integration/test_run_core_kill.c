/*
 * test_run_core_kill.c: runs survive core killed with -9 under load
 * (DESIGN §2: "if core crashes, the manager restarts it; workers keep their
 * loaded code, abandon uncommitted work, and get the new core's socket").
 *
 * 300 runs of `steps` (10 record steps of 100 ms: at least 3 s of activity
 * time on the worker's 100 threads) are in flight when wf-core, the child of
 * the manager that owns the database connections and the worker sockets,
 * is killed with SIGKILL, three times, each a random 50-500 ms after the
 * new core serves /health again. Then:
 *   - the manager restarted core each time, and the worker was not
 *     restarted (the same pid all along);
 *   - every run completed with the right output, every step is committed
 *     once, no invocation came after its step's commit (durability.h);
 *   - every run ended within 20 s of the last restart (the work takes
 *     3 s), with WF_LEASE_MS at 60 s: a run the new core does not pick up
 *     at once would wait for its lease to expire.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durability.h"
#include "harness.h"

#define NRUNS 300
#define NSTEPS 10
#define STEP_MS 100
#define NKILLS 3

static struct th_server srv;
static PGconn *pg;
static char dir[256];

struct core_wait {
    pid_t old_core;
    pid_t new_core;
};

/* 1 when a wf-core other than old_core runs and /health answers 200. */
static int core_back(void *arg)
{
    struct core_wait *w = arg;
    struct th_reply r;
    pid_t core = th_proc_child(srv.pid, "wf-core");
    long st;

    if (core <= 0 || core == w->old_core)
        return 0;
    st = th_http_ex(&srv, "GET", "/health", NULL, 0, NULL, 2000, &r);
    th_reply_free(&r);
    if (st != 200)
        return 0;
    w->new_core = core;
    return 1;
}

int main(void)
{
    static struct dur_id ids[NRUNS];
    struct dur_report rep;
    struct th_db db;
    char rw[300], in[512], trace[256];
    const char *overrides[5];
    size_t tlen = 0;
    int rc, in_flight = 0;
    pid_t worker;
    long long t0, t_back = 0;

    if (dur_make_dir(dir, sizeof(dir), "test-run-core-kill") < 0)
        return 1;
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    overrides[0] = rw;
    overrides[1] = "WF_MAX_CONNECTIONS_PER_IP=256"; /* 100 triggers at once */
    overrides[2] = "WF_LISTEN_ADDR=127.0.0.1";
    overrides[3] = "WF_LEASE_MS=60000"; /* a run left to its lease would wait a minute */
    overrides[4] = NULL;
    rc = th_setup("test_run_core_kill", &db, &srv, overrides, &pg);
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
    worker = th_status_pid(&srv, "p", NULL);
    dur_seed();

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":%d}", dir, NSTEPS, STEP_MS);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "steps", in, NRUNS, ids), NRUNS);
    t0 = th_now_ms();
    for (int k = 0; k < NKILLS; k++) {
        struct core_wait w = {0, 0};
        long long left, t_kill;
        int delay = dur_rand(50, 500);

        th_sleep_ms(delay);
        w.old_core = th_proc_child(srv.pid, "wf-core");
        if (!CHECK(w.old_core > 0))
            break;
        left = dur_unended(pg, ids, NRUNS);
        in_flight += left > 0;
        t_kill = th_now_ms();
        CHECK(kill(w.old_core, SIGKILL) == 0);
        if (!CHECK(th_wait_until(core_back, &w, 20000, 20) == 0))
            break;
        t_back = th_now_ms();
        tlen +=
            (size_t)snprintf(trace + tlen, sizeof(trace) - tlen,
                             " [%d ms, %lld left, back in %lld ms]", delay, left, t_back - t_kill);
    }
    CHECK_EQ_INT(in_flight, NKILLS);
    CHECK(dur_wait_ended(pg, ids, NRUNS, 30000) == 0);
    printf("core killed %d times in %lld ms:%s; all ended %lld ms after the last restart\n", NKILLS,
           th_now_ms() - t0, trace, th_now_ms() - t_back);
    CHECK(th_now_ms() - t_back < 20000);
    /* The worker lived through it all. */
    CHECK_EQ_INT(th_status_pid(&srv, "p", NULL), worker);
    CHECK(th_pid_alive(worker));
    if (CHECK(dur_check(pg, dir, ids, NRUNS, NSTEPS, "core kill", &rep) == 0))
        dur_expect_clean(&rep, "core kill");
out:
    th_down(&db, &srv, pg);
    dur_remove_dir(dir);
    return th_finish();
}
