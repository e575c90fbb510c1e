/*
 * test_heartbeat.c: with WF_HEARTBEAT_MS=200 a running worker's
 * last_heartbeat keeps advancing, and the seed query's
 * seconds_since_heartbeat stays under 2 s.
 *
 * Heartbeat times are read from the database as epoch milliseconds, so the
 * comparison is on the server clock only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct th_server srv;
static PGconn *conn;

static const char seed_query_1[] =
    "SELECT worker_id, project_id, status, started_at, last_heartbeat,\n"
    "       EXTRACT(EPOCH FROM (NOW() - last_heartbeat)) as seconds_since_heartbeat\n"
    "FROM workflow_workers WHERE status = 'running';";

/* last_heartbeat of testhost:p1 in epoch ms, or -1 */
static long long heartbeat_ms(void)
{
    long long v = -1;

    if (th_sql_ll(conn,
                  "SELECT (EXTRACT(EPOCH FROM last_heartbeat) * 1000)"
                  "::bigint FROM workflow_workers WHERE worker_id = $1",
                  "testhost:p1", &v) != 0)
        return -1;
    return v;
}

static int has_heartbeat(void *arg)
{
    (void)arg;
    return heartbeat_ms() > 0;
}

static int heartbeat_after(void *arg)
{
    return heartbeat_ms() > *(long long *)arg;
}

int main(void)
{
    static const char *const env[] = {"WF_HEARTBEAT_MS=200", NULL};
    struct th_db db;
    long long hb1;
    long long last;
    long long t0;
    int distinct = 0;
    int samples = 0;
    int fresh = 0;
    long st;
    int i;

    memset(&db, 0, sizeof(db));
    if (th_init("test_heartbeat", 1) != 0)
        return TH_SKIP;
    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    if (!CHECK(th_server_start(&srv, &db, env) == 0))
        goto out;
    conn = th_db_connect(&db);
    if (!CHECK(conn != NULL))
        goto out;

    st = th_http_json(&srv, "POST", "/projects", "{\"id\":\"p1\"}", NULL);
    CHECK_EQ_INT(st, 201);
    st = th_post_project(&srv, "/workers/start", "p1", NULL);
    if (!CHECK_EQ_INT(st, 200))
        goto out;

    /* a first heartbeat within a few intervals */
    CHECK(th_wait_until(has_heartbeat, NULL, 3000, 20) == 0);
    hb1 = heartbeat_ms();
    CHECK(hb1 > 0);

    /* it advances: watch it for ~1.5 s and count the distinct values */
    t0 = th_now_ms();
    CHECK(th_wait_until(heartbeat_after, &hb1, 1500, 20) == 0);
    last = hb1;
    for (i = 0; i < 200 && th_now_ms() - t0 < 1500; i++) {
        long long hb = heartbeat_ms();

        if (hb > last) {
            distinct++;
            last = hb;
        }
        th_sleep_ms(25);
    }
    /* about 7 intervals of 200 ms fit in 1.5 s; require at least 3 */
    if (distinct < 3)
        fprintf(stderr, "only %d heartbeat updates in 1.5 s\n", distinct);
    CHECK(distinct >= 3);

    /* the seed query keeps reporting a fresh heartbeat */
    for (i = 0; i < 10; i++) {
        PGresult *res = th_sql(conn, seed_query_1, 0, NULL);

        if (res != NULL && PQntuples(res) == 1 && !PQgetisnull(res, 0, 5)) {
            double age = strtod(PQgetvalue(res, 0, 5), NULL);

            samples++;
            if (age < 2.0)
                fresh++;
            else
                fprintf(stderr, "seconds_since_heartbeat = %s\n", PQgetvalue(res, 0, 5));
        }
        PQclear(res);
        th_sleep_ms(200);
    }
    CHECK_EQ_INT(samples, 10);
    CHECK_EQ_INT(fresh, 10);

    st = th_post_project(&srv, "/workers/stop", "p1", NULL);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    if (conn != NULL)
        PQfinish(conn);
    th_server_cleanup(&srv);
    th_db_drop(&db);
    return th_finish();
}
