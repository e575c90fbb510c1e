/*
 * test_schedules.c: cron schedules (issue #11, docs/schedules.md) on two
 * servers sharing one database, against a real PostgreSQL.
 *
 *   1. The API's refusals: bad JSON, missing or invalid fields, a cron
 *      expression out of range (the message names the field), an unknown
 *      zone, an expression that never fires, unknown projects, workflows
 *      and schedules, malformed ids: each a 400 or 404 with its message.
 *   2. The life of a schedule: created in a zone, its next five fire times
 *      five minutes apart, listed, read, paused (no next fire time),
 *      resumed, deleted.
 *   3. Once per tick across servers: K schedules on both servers are made
 *      due R times (next_fire_at set by SQL to distinct past seconds, as
 *      their ticks); both servers' passes race for them. Each tick starts
 *      exactly one run (idempotency key schedule:<id>:<tick>), no pass
 *      finds a tick fired before, the servers' counters add up to K * R,
 *      and every run completes on the project's worker with the schedule's
 *      input.
 *   4. Missed ticks after a restart: with both servers stopped, two
 *      schedules (policy fire-once and skip) of an hourly expression whose
 *      minute is half an hour away from now are set back three hours, so
 *      four ticks passed while no server ran, the latest ~30 minutes ago
 *      (past WF_SCHEDULE_GRACE_MS). After the restart, fire-once started
 *      one run for the latest tick and skipped 3; skip started none and
 *      skipped 4; both go on from the next tick after now.
 *   5. A schedule whose workflow is no longer deployed records why and
 *      starts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durability.h"
#include "harness.h"

#define K 6 /* schedules racing */
#define R 5 /* ticks each */

static struct th_server a, b;
static struct th_db db;
static PGconn *pg;
static char dir[256];

static int start_host(struct th_server *s, const char *host)
{
    char hostid[64], rt[320], rw[300];
    const char *ov[6];

    snprintf(hostid, sizeof(hostid), "WF_HOST_ID=%s", host);
    snprintf(rt, sizeof(rt), "WF_RUNTIME_DIR=%s/runtime-%s", dir, host);
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    ov[0] = hostid;
    ov[1] = rt;
    ov[2] = rw;
    ov[3] = "WF_LISTEN_ADDR=127.0.0.1";
    ov[4] = NULL;
    return CHECK(th_server_start(s, &db, ov) == 0) ? 0 : -1;
}

/* POST a schedule body to project p on s; returns the status, *id the new
 * schedule's id (when 201). */
static long create(const struct th_server *s, const char *project, const char *body, char *id,
                   size_t idlen, cJSON **out)
{
    char path[128];
    cJSON *j = NULL;
    long st;

    snprintf(path, sizeof(path), "/projects/%s/schedules", project);
    st = th_http_json(s, "POST", path, body, &j);
    if (id != NULL) {
        const cJSON *sc = cJSON_GetObjectItem(j, "schedule");
        snprintf(id, idlen, "%s", st == 201 && th_json_str(sc, "id") ? th_json_str(sc, "id") : "");
    }
    if (out != NULL)
        *out = j;
    else
        cJSON_Delete(j);
    return st;
}

/* Expects status and an error message containing needle. */
static void expect_error(const struct th_server *s, const char *method, const char *path,
                         const char *body, long status, const char *needle)
{
    cJSON *j = NULL;
    long st = th_http_json(s, method, path, body, &j);
    const char *msg = th_json_str(j, "error");

    if (!CHECK_EQ_INT(st, status) || !CHECK(msg != NULL && strstr(msg, needle) != NULL))
        fprintf(stderr, "  %s %s %s: %ld %s (wanted \"%s\")\n", method, path,
                body != NULL ? body : "", st, msg != NULL ? msg : "(no error)", needle);
    cJSON_Delete(j);
}

static void refusals(void)
{
    const char *P = "/projects/p/schedules";

    expect_error(&a, "POST", P, "{", 400, "malformed JSON");
    expect_error(&a, "POST", P, "[]", 400, "object");
    expect_error(&a, "POST", P, "{\"cron\":\"* * * * *\"}", 400, "workflow is required");
    expect_error(&a, "POST", P, "{\"workflow\":\"one-step\"}", 400, "cron is required");
    expect_error(&a, "POST", P, "{\"workflow\":\"One_Step\",\"cron\":\"* * * * *\"}", 400,
                 "kebab-case");
    expect_error(&a, "POST", P, "{\"workflow\":\"one-step\",\"cron\":\"61 * * * *\"}", 400,
                 "cron field 1 (minute)");
    expect_error(&a, "POST", P, "{\"workflow\":\"one-step\",\"cron\":\"0 24 * * *\"}", 400,
                 "24 is out of range 0-23");
    expect_error(&a, "POST", P, "{\"workflow\":\"one-step\",\"cron\":\"0 0 * * * *\"}", 400,
                 "cron");
    expect_error(&a, "POST", P,
                 "{\"workflow\":\"one-step\",\"cron\":\"* * * * *\",\"timezone\":\"Mars/Base\"}",
                 400, "unknown time zone \"Mars/Base\"");
    expect_error(
        &a, "POST", P,
        "{\"workflow\":\"one-step\",\"cron\":\"* * * * *\",\"timezone\":\"../etc/passwd\"}", 400,
        "time zone");
    expect_error(&a, "POST", P,
                 "{\"workflow\":\"one-step\",\"cron\":\"* * * * *\",\"missed\":\"sometimes\"}", 400,
                 "invalid missed");
    expect_error(&a, "POST", P, "{\"workflow\":\"one-step\",\"cron\":\"0 0 30 2 *\"}", 400,
                 "never fires");
    expect_error(&a, "POST", "/projects/nope/schedules",
                 "{\"workflow\":\"one-step\",\"cron\":\"* * * * *\"}", 404,
                 "project \"nope\" not found");
    expect_error(&a, "POST", P, "{\"workflow\":\"no-such-flow\",\"cron\":\"* * * * *\"}", 404,
                 "workflow \"no-such-flow\" not found");
    expect_error(&a, "POST", "/projects/bad%20id/schedules", "{}", 400, "invalid id");
    expect_error(&a, "GET", "/projects/nope/schedules", NULL, 404, "project \"nope\" not found");
    expect_error(&a, "GET", "/schedules/not-a-uuid", NULL, 400, "invalid schedule id");
    expect_error(&a, "GET", "/schedules/00000000-0000-0000-0000-000000000000", NULL, 404,
                 "not found");
    expect_error(&a, "POST", "/schedules/00000000-0000-0000-0000-000000000000/pause", NULL, 404,
                 "not found");
    expect_error(&a, "POST", "/schedules/00000000-0000-0000-0000-000000000000/resume", NULL, 404,
                 "not found");
    expect_error(&a, "DELETE", "/schedules/00000000-0000-0000-0000-000000000000", NULL, 404,
                 "not found");
    expect_error(&a, "PUT", "/schedules/00000000-0000-0000-0000-000000000000", NULL, 405,
                 "method not allowed");
}

/* Seconds of "YYYY-MM-DDTHH:MM:SSZ" (UTC), or -1. */
static long long utc_secs(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

static void life(void)
{
    char id[64], path[128];
    cJSON *j = NULL;
    const cJSON *sc, *times;

    if (!CHECK_EQ_INT(create(&a, "p",
                             "{\"workflow\":\"one-step\",\"cron\":\"*/5 * * * *\","
                             "\"timezone\":\"America/New_York\",\"input\":{\"x\":1},"
                             "\"missed\":\"skip\"}",
                             id, sizeof(id), &j),
                      201))
        goto out;
    sc = cJSON_GetObjectItem(j, "schedule");
    CHECK_STR(th_json_str(sc, "timezone"), "America/New_York");
    CHECK_STR(th_json_str(sc, "missed"), "skip");
    CHECK_EQ_INT(th_json_bool(sc, "paused"), 0);
    times = cJSON_GetObjectItem(sc, "nextFireTimes");
    if (CHECK_EQ_INT(cJSON_GetArraySize(times), 5)) {
        CHECK_STR(cJSON_GetArrayItem(times, 0)->valuestring, th_json_str(sc, "nextFireAt"));
        for (int i = 1; i < 5; i++)
            CHECK_EQ_INT(utc_secs(cJSON_GetArrayItem(times, i)->valuestring) -
                             utc_secs(cJSON_GetArrayItem(times, i - 1)->valuestring),
                         300);
        CHECK_EQ_INT(utc_secs(th_json_str(sc, "nextFireAt")) % 300, 0);
    }
    cJSON_Delete(j);
    j = NULL;

    CHECK_EQ_INT(th_http_json(&a, "GET", "/projects/p/schedules", NULL, &j), 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 1);
    cJSON_Delete(j);
    j = NULL;
    snprintf(path, sizeof(path), "/schedules/%s", id);
    CHECK_EQ_INT(th_http_json(&b, "GET", path, NULL, &j), 200); /* the other server */
    CHECK_STR(th_json_str(cJSON_GetObjectItem(j, "schedule"), "cron"), "*/5 * * * *");
    cJSON_Delete(j);
    j = NULL;

    snprintf(path, sizeof(path), "/schedules/%s/pause", id);
    CHECK_EQ_INT(th_http_json(&a, "POST", path, NULL, &j), 200);
    sc = cJSON_GetObjectItem(j, "schedule");
    CHECK_EQ_INT(th_json_bool(sc, "paused"), 1);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(sc, "nextFireAt")));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(sc, "nextFireTimes")), 0);
    cJSON_Delete(j);
    j = NULL;
    CHECK_EQ_INT(th_http_json(&a, "POST", path, NULL, NULL), 200); /* again: no change */

    snprintf(path, sizeof(path), "/schedules/%s/resume", id);
    CHECK_EQ_INT(th_http_json(&a, "POST", path, NULL, &j), 200);
    sc = cJSON_GetObjectItem(j, "schedule");
    CHECK_EQ_INT(th_json_bool(sc, "paused"), 0);
    CHECK(th_json_str(sc, "nextFireAt") != NULL);
    cJSON_Delete(j);
    j = NULL;

    snprintf(path, sizeof(path), "/schedules/%s", id);
    CHECK_EQ_INT(th_http_json(&a, "DELETE", path, NULL, NULL), 200);
    CHECK_EQ_INT(th_http_json(&a, "GET", path, NULL, NULL), 404);
    CHECK_EQ_INT(th_http_json(&a, "DELETE", path, NULL, NULL), 404);

    /* Created paused: no next fire time. */
    CHECK_EQ_INT(create(&a, "p", "{\"workflow\":\"one-step\",\"cron\":\"@daily\",\"paused\":true}",
                        id, sizeof(id), &j),
                 201);
    sc = cJSON_GetObjectItem(j, "schedule");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(sc, "nextFireAt")));
    snprintf(path, sizeof(path), "/schedules/%s", id);
    CHECK_EQ_INT(th_http_json(&a, "DELETE", path, NULL, NULL), 200);
out:
    cJSON_Delete(j);
}

/* 1 when no schedule of the project is due any more. */
static int none_due(void *arg)
{
    long long n = -1;

    (void)arg;
    return th_sql_ll(pg,
                     "SELECT count(*) FROM schedules WHERE project_id = $1"
                     " AND NOT paused AND next_fire_at <= now()",
                     "p", &n) == 0 &&
           n == 0;
}

static long long count(const char *sql)
{
    long long n = -1;

    (void)th_sql_ll(pg, sql, "p", &n);
    return n;
}

static void once_per_tick(void)
{
    char ids[K][64];
    long long base = 0, fired_a, fired_b;
    char sql[512];

    /* Far-off ticks, so that only the test's make them due. */
    for (int i = 0; i < K; i++)
        CHECK_EQ_INT(create(i % 2 ? &a : &b, "p",
                            "{\"workflow\":\"one-step\",\"cron\":\"0 0 1 1 *\","
                            "\"input\":{\"from\":\"schedule\"}}",
                            ids[i], sizeof(ids[i]), NULL),
                     201);
    CHECK(th_sql_ll(pg, "SELECT floor(extract(epoch FROM now()))::bigint", NULL, &base) == 0);
    for (int r = 0; r < R; r++) {
        /* Distinct seconds in the grace window, one per round: the ticks. */
        snprintf(sql, sizeof(sql),
                 "UPDATE schedules SET next_fire_at = to_timestamp(%lld) WHERE project_id = 'p'",
                 base - 30 + r);
        CHECK(th_sql_exec(pg, sql) == 0);
        if (!CHECK(th_wait_until(none_due, NULL, 10000, 10) == 0))
            return;
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE project_id = $1"
             " AND idempotency_key LIKE 'schedule:%%'");
    CHECK_EQ_INT(count(sql), K * R);
    CHECK_EQ_INT(count("SELECT count(DISTINCT idempotency_key) FROM executions"
                       " WHERE project_id = $1 AND idempotency_key LIKE 'schedule:%'"),
                 K * R);
    CHECK_EQ_INT(count("SELECT sum(fired) FROM schedules WHERE project_id = $1"), K * R);
    CHECK_EQ_INT(count("SELECT sum(skipped) FROM schedules WHERE project_id = $1"), 0);
    CHECK_EQ_INT(count("SELECT count(*) FROM schedules WHERE project_id = $1"
                       " AND last_execution_id IS NOT NULL AND last_error IS NULL"),
                 K);
    /* Each key names its schedule and one of the ticks. */
    for (int r = 0; r < R; r++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM executions WHERE project_id = $1"
                 " AND idempotency_key LIKE 'schedule:%%:%lld'",
                 base - 30 + r);
        CHECK_EQ_INT(count(sql), K);
    }
    CHECK(!th_server_log_contains(&a, "was fired before"));
    CHECK(!th_server_log_contains(&b, "was fired before"));
    /* The counters are published once per core tick. */
    for (long long t0 = th_now_ms();; th_sleep_ms(50)) {
        fired_a = th_metric(&a, "wf_schedule_runs_fired_total");
        fired_b = th_metric(&b, "wf_schedule_runs_fired_total");
        if (fired_a + fired_b >= K * R || th_now_ms() - t0 > 5000)
            break;
    }
    printf("once per tick: %d ticks of %d schedules: server A started %lld runs, B %lld\n", R, K,
           fired_a, fired_b);
    CHECK_EQ_INT(fired_a + fired_b, K * R);
    /* The runs ran, with the schedule's input. */
    {
        long long t0 = th_now_ms(), left = -1;
        while (th_now_ms() - t0 < 20000 &&
               (left = count("SELECT count(*) FROM executions WHERE project_id = $1"
                             " AND idempotency_key LIKE 'schedule:%' AND status <> 'completed'")) !=
                   0)
            th_sleep_ms(50);
        CHECK_EQ_INT(left, 0);
    }
    CHECK_EQ_INT(count("SELECT count(*) FROM executions WHERE project_id = $1"
                       " AND idempotency_key LIKE 'schedule:%'"
                       " AND input = '{\"from\":\"schedule\"}'::jsonb"),
                 K * R);
    CHECK(th_sql_exec(pg, "DELETE FROM schedules") == 0);
}

/* Both servers stopped, both schedules set back, one server started: what
 * the missed ticks became. */
static void missed_after_restart(void)
{
    char once[64], skip[64], body[256], sql[512];
    long long now = 0, latest, m;
    cJSON *j = NULL;
    const cJSON *sc;

    CHECK(th_sql_ll(pg, "SELECT floor(extract(epoch FROM now()))::bigint", NULL, &now) == 0);
    m = ((now / 60) % 60 + 30) % 60; /* a minute half an hour away */
    latest = now / 3600 * 3600 + m * 60;
    if (latest > now)
        latest -= 3600;
    snprintf(body, sizeof(body), "{\"workflow\":\"one-step\",\"cron\":\"%lld * * * *\"}", m);
    CHECK_EQ_INT(create(&a, "p", body, once, sizeof(once), NULL), 201);
    snprintf(body, sizeof(body),
             "{\"workflow\":\"one-step\",\"cron\":\"%lld * * * *\",\"missed\":\"skip\"}", m);
    CHECK_EQ_INT(create(&a, "p", body, skip, sizeof(skip), NULL), 201);

    CHECK_EQ_INT(th_server_stop(&a, 10000), 0);
    CHECK_EQ_INT(th_server_stop(&b, 10000), 0);
    th_server_cleanup(&a);
    th_server_cleanup(&b);
    /* Four ticks passed while no server ran: latest - 3 h … latest. */
    snprintf(sql, sizeof(sql),
             "UPDATE schedules SET next_fire_at = to_timestamp(%lld) WHERE project_id = 'p'",
             latest - 3 * 3600);
    CHECK(th_sql_exec(pg, sql) == 0);
    if (start_host(&a, "hostA") < 0)
        return;
    if (!CHECK(th_wait_until(none_due, NULL, 10000, 20) == 0))
        return;

    snprintf(sql, sizeof(sql), "/schedules/%s", once);
    CHECK_EQ_INT(th_http_json(&a, "GET", sql, NULL, &j), 200);
    sc = cJSON_GetObjectItem(j, "schedule");
    CHECK_EQ_INT(th_json_num(sc, "fired"), 1);
    CHECK_EQ_INT(th_json_num(sc, "skipped"), 3);
    CHECK(th_json_str(sc, "lastExecutionId") != NULL);
    CHECK_EQ_INT(utc_secs(th_json_str(sc, "nextFireAt")), latest + 3600);
    cJSON_Delete(j);
    j = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE project_id = $1"
             " AND idempotency_key = 'schedule:%s:%lld'",
             once, latest);
    CHECK_EQ_INT(count(sql), 1);

    snprintf(sql, sizeof(sql), "/schedules/%s", skip);
    CHECK_EQ_INT(th_http_json(&a, "GET", sql, NULL, &j), 200);
    sc = cJSON_GetObjectItem(j, "schedule");
    CHECK_EQ_INT(th_json_num(sc, "fired"), 0);
    CHECK_EQ_INT(th_json_num(sc, "skipped"), 4);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(sc, "lastExecutionId")));
    CHECK_EQ_INT(utc_secs(th_json_str(sc, "nextFireAt")), latest + 3600);
    cJSON_Delete(j);
    j = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE project_id = $1"
             " AND idempotency_key LIKE 'schedule:%s:%%'",
             skip);
    CHECK_EQ_INT(count(sql), 0);
    {
        long long t0 = th_now_ms(), v;
        while ((v = th_metric(&a, "wf_schedule_ticks_skipped_total")) < 7 &&
               th_now_ms() - t0 < 5000)
            th_sleep_ms(50);
        CHECK_EQ_INT(v, 7);
    }
    CHECK(th_sql_exec(pg, "DELETE FROM schedules") == 0);
}

static void undeployed(void)
{
    char id[64], path[128];
    cJSON *j = NULL;
    const char *err;

    CHECK_EQ_INT(
        create(&a, "p", "{\"workflow\":\"one-step\",\"cron\":\"0 0 1 1 *\"}", id, sizeof(id), NULL),
        201);
    CHECK_EQ_INT(th_http_json(&a, "DELETE", "/projects/p/workflows/one-step", NULL, NULL), 200);
    CHECK(th_sql_exec(pg, "UPDATE schedules SET next_fire_at = now() - interval '1 second'") == 0);
    CHECK(th_wait_until(none_due, NULL, 10000, 20) == 0);
    snprintf(path, sizeof(path), "/schedules/%s", id);
    CHECK_EQ_INT(th_http_json(&a, "GET", path, NULL, &j), 200);
    err = th_json_str(cJSON_GetObjectItem(j, "schedule"), "lastError");
    CHECK(err != NULL && strstr(err, "workflow \"one-step\" is not deployed") != NULL);
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(j, "schedule"), "fired"), 0);
    cJSON_Delete(j);
}

int main(void)
{
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&db, 0, sizeof(db));
    if (th_init("test_schedules", 1) < 0)
        return TH_SKIP;
    if (dur_make_dir(dir, sizeof(dir), "test-schedules") < 0)
        return 1;
    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    if (start_host(&a, "hostA") < 0 || start_host(&b, "hostB") < 0)
        goto out;
    pg = th_db_connect(&db);
    if (!CHECK(pg != NULL))
        goto out;
    CHECK_EQ_INT(th_create_project(&a, "p", NULL), 201);
    CHECK_EQ_INT(dur_deploy(&a, "p", "engine_recorder"), 0);
    CHECK_EQ_INT(th_post_project(&a, "/workers/start", "p", NULL), 200);
    refusals();
    life();
    once_per_tick();
    missed_after_restart();
    undeployed();
out:
    th_down(NULL, &b, NULL);
    th_down(&db, &a, pg);
    dur_remove_dir(dir);
    return th_finish();
}
