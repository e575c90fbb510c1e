/*
 * test_run_reload.c: hot reloads under load (DESIGN §5, "Restart = hot
 * reload": no run is lost, no committed step runs twice), with the engine's
 * test plugin (tests/plugins/engine_recorder.h).
 *
 *   - 1,000 runs of `steps` (5 record steps of 100 ms each, so that they
 *     take seconds on the worker's 100 activity threads) and five POST
 *     /workers/restart calls spread over them, each while runs are in
 *     flight: every run completes with the right output, every step is
 *     committed once, and no invocation came after its step's commit
 *     (durability.h);
 *   - the same with quick steps (1,000 runs of 20 steps that take no time)
 *     and 20 restarts 50-150 ms apart: the old worker then still sends
 *     steps while its successor's first claim reads the runs' history, and
 *     goes before that claim is handed out;
 *   - the same with `waiter` runs (10 steps, a wait for signal "go", 10
 *     steps), a slice of them signalled before each restart, so that
 *     signal waits are answered while workers come and go;
 *   - WF_LEASE_MS is 60 s, and each part must end within 20 s of its last
 *     restart: a run left to its lease would show;
 *   - new code: runs of version 1 in flight (`sleepy`, parked in a 4 s
 *     sleep), version 2 deployed under the same names, a restart: new runs
 *     run version 2; the version-1 runs complete, with no committed step run
 *     again, and the test prints which version finished them.
 *
 * `test_run_reload pinning` (registered as test_run_pinning) checks the
 * rest of DESIGN §5's "Code versions": a run always resumes on the code it
 * started on, so the version-1 runs above must finish on version 1 (their
 * output says "version": 1 and no record line of theirs ends in " v2").
 * The worker gets the older version loaded beside the new one for them
 * (code versions, engine.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durability.h"
#include "harness.h"

#define NRUNS 1000
#define NV1 50 /* version-1 runs in flight at the code change */
#define NV2 50 /* runs started after it */

static struct th_server srv;
static PGconn *pg;
static char dir[256];

/* POST /workers/restart; returns the new pid, or -1. */
static pid_t restart(pid_t old)
{
    cJSON *j = NULL;
    long st = th_post_project(&srv, "/workers/restart", "p", &j);
    pid_t pid = (pid_t)th_json_num(j, "pid");

    if (!CHECK_EQ_INT(st, 200))
        fprintf(stderr, "restart: %s\n", th_json_str(j, "error") ? th_json_str(j, "error") : "?");
    cJSON_Delete(j);
    CHECK(pid > 0 && pid != old);
    return st == 200 ? pid : -1;
}

/*
 * NRUNS runs of workflow (`steps`, or `waiter`: then a slice of the runs
 * gets its signal before each restart), nsteps of step_ms each, and
 * nrestarts restarts gap_lo..gap_hi ms apart (while runs remain); then the
 * check. all_in_flight: the runs are long enough that every restart must
 * find them in flight. Every run must end within 20 s of the last restart
 * (WF_LEASE_MS is 60 s: no run may be left to its lease).
 */
static void reload_under_load(const char *label, const char *workflow, int nsteps, int step_ms,
                              int nrestarts, int gap_lo, int gap_hi, int all_in_flight)
{
    static struct dur_id ids[NRUNS];
    struct dur_report rep;
    char in[512], trace[1024];
    size_t tlen = 0;
    int in_flight = 0, done = 0, signals = strcmp(workflow, "waiter") == 0;
    int signalled = 0, sig_ok = 0;
    pid_t pid = th_status_pid(&srv, "p", NULL);
    long long t0 = th_now_ms(), t1;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":%d,\"step_ms\":%d}", dir, nsteps, step_ms);
    CHECK_EQ_INT(dur_trigger(&srv, "p", workflow, in, NRUNS, ids), NRUNS);
    for (; done < nrestarts; done++) {
        long long left;
        if (signals) {
            int to = signalled + (NRUNS + nrestarts - 1) / nrestarts;
            to = to > NRUNS ? NRUNS : to;
            sig_ok += dur_signal(&srv, ids, signalled, to, "go");
            signalled = to;
        }
        th_sleep_ms(dur_rand(gap_lo, gap_hi));
        pid = restart(pid);
        left = dur_unended(pg, ids, NRUNS);
        in_flight += left > 0;
        if (tlen < sizeof(trace) - 32)
            tlen += (size_t)snprintf(trace + tlen, sizeof(trace) - tlen, " %lld", left);
        if (pid < 0 || left <= 0)
            break;
    }
    if (signals) {
        sig_ok += dur_signal(&srv, ids, signalled, NRUNS, "go");
        CHECK_EQ_INT(sig_ok, NRUNS);
    }
    if (all_in_flight)
        CHECK_EQ_INT(in_flight, nrestarts);
    t1 = th_now_ms();
    CHECK(dur_wait_ended(pg, ids, NRUNS, 20000) == 0);
    printf("%s: %d restarts in %lld ms, runs left after each:%s; all ended %lld ms later\n", label,
           done, t1 - t0, trace, th_now_ms() - t1);
    if (CHECK(dur_check(pg, dir, ids, NRUNS, nsteps, label, &rep) == 0))
        dur_expect_clean(&rep, label);
}

/* Record lines of the runs ids that end in " v2". */
static int v2_lines(const struct dur_id *ids, int n)
{
    char path[300];
    char *log, *line;
    int count = 0;

    snprintf(path, sizeof(path), "%s/invocations.log", dir);
    log = th_read_file(path, NULL);
    for (line = log; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (strlen(line) > 3 && strcmp(line + strlen(line) - 3, " v2") == 0) {
            for (int i = 0; i < n; i++) {
                if (strncmp(line, ids[i].s, strlen(ids[i].s)) == 0) {
                    count++;
                    break;
                }
            }
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(log);
    return count;
}

static void new_code(int pinning)
{
    static struct dur_id v1[NV1], v2[NV2];
    struct dur_report rep;
    char in[512];
    long long sleeping = -1;
    long long t0;
    pid_t pid = th_status_pid(&srv, "p", NULL);

    /* Version-1 runs: two steps, a sleep of 4 s (long enough to deploy
     * and restart under a sanitizer build too), two steps. */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":4,\"step_ms\":50,\"sleep_ms\":4000}", dir);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "sleepy", in, NV1, v1), NV1);
    t0 = th_now_ms();
    while (th_now_ms() - t0 < 10000) {
        sleeping = dur_count_status(pg, v1, NV1, "sleeping");
        if (sleeping == NV1)
            break;
        th_sleep_ms(20);
    }
    CHECK_EQ_INT(sleeping, NV1);
    /* Version 2 under the same names, and a restart. */
    CHECK_EQ_INT(dur_deploy(&srv, "p", "engine_recorder_v2"), 0);
    CHECK(restart(pid) > 0);
    CHECK_EQ_INT(dur_unended(pg, v1, NV1), NV1); /* still in flight */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"n\":3}", dir);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "steps", in, NV2, v2), NV2);
    CHECK(dur_wait_ended(pg, v1, NV1, 30000) == 0);
    CHECK(dur_wait_ended(pg, v2, NV2, 30000) == 0);

    /* The runs started after the change ran version 2. */
    if (CHECK(dur_check(pg, dir, v2, NV2, 3, "new runs", &rep) == 0)) {
        dur_expect_clean(&rep, "new runs");
        CHECK_EQ_INT(rep.version[2], NV2);
    }
    CHECK_EQ_INT(v2_lines(v2, NV2), 3 * NV2);
    /* The runs in flight at the change completed, nothing committed twice. */
    if (CHECK(dur_check(pg, dir, v1, NV1, 4, "version-1 runs", &rep) == 0)) {
        dur_expect_clean(&rep, "version-1 runs");
        printf("version-1 runs in flight at the code change finished on version 1: %d, "
               "on version 2: %d; %d of their steps ran version 2\n",
               rep.version[1], rep.version[2], v2_lines(v1, NV1));
        if (pinning) {
            /* DESIGN §5: a run always resumes on the code it started on. */
            CHECK_EQ_INT(rep.version[1], NV1);
            CHECK_EQ_INT(v2_lines(v1, NV1), 0);
        }
    }
}

int main(int argc, char **argv)
{
    int pinning = argc > 1 && strcmp(argv[1], "pinning") == 0;
    struct th_db db;
    char rw[300];
    const char *overrides[5];
    int rc;

    if (dur_make_dir(dir, sizeof(dir), pinning ? "test-run-pinning" : "test-run-reload") < 0)
        return 1;
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    overrides[0] = rw;
    overrides[1] = "WF_MAX_CONNECTIONS_PER_IP=256"; /* 100 triggers at once */
    overrides[2] = "WF_LISTEN_ADDR=127.0.0.1";
    overrides[3] = "WF_LEASE_MS=60000"; /* a run left to its lease would wait a minute */
    overrides[4] = NULL;
    rc = th_setup(pinning ? "test_run_pinning" : "test_run_reload", &db, &srv, overrides, &pg);
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
    if (!pinning) {
        /* 5,000 steps of 100 ms on 100 threads take at least 5 s: the five
         * restarts are over well before. */
        reload_under_load("reload", "steps", 5, 100, 5, 200, 400, 1);
        reload_under_load("quick reloads", "steps", 20, 0, 20, 50, 150, 0);
        reload_under_load("quick reloads, signals", "waiter", 20, 0, 20, 50, 150, 0);
    }
    new_code(pinning);
out:
    th_down(&db, &srv, pg);
    dur_remove_dir(dir);
    return th_finish();
}
