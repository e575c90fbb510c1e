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

int main(void)
{
    static const char *const env[] = {"WF_HEARTBEAT_MS=200", NULL};
    static const char *const p1[] = {"p1"};
    struct th_server srv;
    struct th_db db;
    PGconn *conn = NULL;
    long long hb1;
    long long last;
    long long t0;
    int distinct = 0;
    int samples = 0;
    int fresh = 0;
    long st;
    int rc;
    int i;

    rc = th_setup("test_heartbeat", &db, &srv, env, &conn);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    if (th_create_and_start(&srv, p1, 1, NULL) != 0)
        goto out;

    /* a first heartbeat within a few intervals */
    CHECK(th_wait_heartbeat_after(conn, "testhost:p1", 0, 3000, 20) == 0);
    hb1 = th_heartbeat_ms(conn, "testhost:p1");
    CHECK(hb1 > 0);

    /* it advances: watch it for ~1.5 s and count the distinct values */
    t0 = th_now_ms();
    CHECK(th_wait_heartbeat_after(conn, "testhost:p1", hb1, 1500, 20) == 0);
    last = hb1;
    for (i = 0; i < 200 && th_now_ms() - t0 < 1500; i++) {
        long long hb = th_heartbeat_ms(conn, "testhost:p1");

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
        PGresult *res = th_sql(conn, th_seed_query_1, 0, NULL);

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
    return th_teardown(&db, &srv, conn);
}
