/*
 * test_dbq.c: core's asynchronous PostgreSQL layer (server/dbq.c) against a
 * real PostgreSQL, driven by a loop of its own (no server binary). Two
 * groups, one ctest each:
 *
 *   test_dbq pipeline   group commit (200 statements, 50 submitters: one
 *                       batch, one commit, callbacks in order, each row
 *                       visible elsewhere when its callback runs); the
 *                       same through a multi-row template, with values that
 *                       need escaping read back; a failure mid-batch fails
 *                       alone (plain statements and template rows); a full
 *                       queue; statement_timeout; prepared statements (a
 *                       stale plan is retried, a bad Parse fails as the
 *                       statement); LISTEN/NOTIFY across a terminated listen
 *                       backend; dbq_free with pending work
 *   test_dbq outage     the durable backend terminated mid-batch; the
 *                       database refusing connections (wait_ms, DBQ_PERSIST);
 *                       a server that accepts TCP and never answers; frozen
 *                       (SIGSTOPped) backends and the health signal
 *
 * Every scenario gets a loop and a dbq of its own (a loop cannot drop the
 * dbq's end-of-turn hook). Exits 77 (skipped) without WF_TEST_DATABASE_URL.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dbq.h"
#include "harness.h"
#include "log.h"
#include "loop.h"

static struct th_db db;
static PGconn *admin; /* a plain connection to db, for checks from outside */

/* One submitted statement's record. */
struct rec {
    int id;
    int calls;
    enum dbq_outcome outcome;
    char sqlstate[6];
    char message[128];
    long long at;          /* when the callback ran */
    int visible;           /* its row was visible from admin inside the callback */
    const char *check_sql; /* a count(*) query with $1 = key, or NULL */
    char key[32];
};

static int order[1024];
static int norder;

static void on_done(void *arg, const struct dbq_result *r)
{
    struct rec *x = arg;

    x->calls++;
    x->outcome = r->outcome;
    snprintf(x->sqlstate, sizeof(x->sqlstate), "%s", r->sqlstate);
    snprintf(x->message, sizeof(x->message), "%s", r->message);
    x->at = th_now_ms();
    if (norder < (int)(sizeof(order) / sizeof(order[0])))
        order[norder++] = x->id;
    if (x->check_sql != NULL && r->outcome == DBQ_OK) {
        const char *p[1] = {x->key};
        PGresult *res = th_sql(admin, x->check_sql, 1, p);

        x->visible = res != NULL && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
        PQclear(res);
    }
}

/* ---- set-up -------------------------------------------------------------- */

struct env {
    struct loop *l;
    struct dbq *q;
};

/* A loop and a started dbq on db (cfg's url and app_name filled in when
 * NULL). Returns 0 or -1 (counted). */
static int env_open(struct env *e, struct dbq_config *cfg)
{
    memset(e, 0, sizeof(*e));
    if (cfg->url == NULL)
        cfg->url = db.url;
    if (cfg->app_name == NULL)
        cfg->app_name = "wf-test";
    e->l = loop_new();
    if (!CHECK(e->l != NULL))
        return -1;
    e->q = dbq_new(e->l, cfg);
    if (!CHECK(e->q != NULL))
        return -1;
    return CHECK(dbq_start(e->q) == 0) ? 0 : -1;
}

static void env_close(struct env *e)
{
    dbq_free(e->q);
    loop_free(e->l);
    memset(e, 0, sizeof(*e));
}

typedef int (*cond_fn)(void *arg);

/* Runs loop turns until cond(arg) holds or timeout_ms passed; 0 or -1. */
static int run_until(struct env *e, cond_fn cond, void *arg, int timeout_ms)
{
    long long until = th_now_ms() + timeout_ms;

    while (!cond(arg)) {
        if (th_now_ms() >= until)
            return -1;
        if (loop_turn(e->l, 10) < 0)
            return -1;
    }
    return 0;
}

/* Runs loop turns for ms milliseconds. */
static void run_for(struct env *e, int ms)
{
    long long until = th_now_ms() + ms;

    while (th_now_ms() < until)
        (void)loop_turn(e->l, 10);
}

static int healthy(void *arg)
{
    return dbq_healthy(arg);
}

static int unhealthy(void *arg)
{
    return !dbq_healthy(arg);
}

struct recs {
    struct rec *r;
    int n;
};

/* all n records have had their callback */
static int all_done(void *arg)
{
    const struct recs *rs = arg;

    for (int i = 0; i < rs->n; i++) {
        if (rs->r[i].calls == 0)
            return 0;
    }
    return 1;
}

static long long count_sql(const char *sql, const char *p1)
{
    long long n = -1;

    if (th_sql_ll(admin, sql, p1, &n) != 0)
        return -1;
    return n;
}

/* The pids of dbq's backends whose application_name is "wf-test:<role>";
 * fills up to max, returns how many. */
static int backend_pids(const char *role, pid_t *out, int max)
{
    char app[64];
    const char *p[2] = {db.name, app};
    PGresult *r;
    int n = 0;

    snprintf(app, sizeof(app), "wf-test:%s", role);
    r = th_sql(admin,
               "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2", 2,
               p);
    for (int i = 0; r != NULL && i < PQntuples(r) && n < max; i++)
        out[n++] = (pid_t)strtol(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    return n;
}

/* pg_terminate_backend for dbq's backend of role (only while it runs
 * pg_sleep when sleeping); returns how many. */
static int terminate_if(const char *role, int sleeping)
{
    char app[64];
    const char *p[2] = {db.name, app};
    PGresult *r;
    int n = 0;

    snprintf(app, sizeof(app), "wf-test:%s", role);
    r = th_sql(admin,
               sleeping ? "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = $1 AND application_name = $2"
                          " AND state = 'active' AND query LIKE '%pg_sleep%'"
                        : "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = $1 AND application_name = $2",
               2, p);
    if (r != NULL)
        n = PQntuples(r);
    PQclear(r);
    return n;
}

static int terminate(const char *role)
{
    return terminate_if(role, 0);
}

/* Runs sql on the cluster's admin database (ALTER DATABASE cannot change
 * the database it runs in); 0 or -1. */
static int cluster_exec(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("WF_TEST_DATABASE_URL"));
    int rc = -1;

    if (PQstatus(c) == CONNECTION_OK)
        rc = th_sql_exec(c, sql);
    else
        fprintf(stderr, "could not connect to the admin database: %s", PQerrorMessage(c));
    PQfinish(c);
    return rc;
}

/* terminate() for a backend that is running pg_sleep right now */
static int terminate_sleeping(const char *role)
{
    return terminate_if(role, 1);
}

/* ---- pipeline group ------------------------------------------------------ */

/* stores the number of columns of an answered read, -2 if it failed */
static void on_ncols(void *arg, const struct dbq_result *r)
{
    int *n = arg;

    *n = r->outcome == DBQ_OK ? PQnfields(r->res) : -2;
    if (r->outcome != DBQ_OK)
        printf("read failed: %s (%s)\n", r->message, r->sqlstate);
}

static int ncols_known(void *arg)
{
    return *(const int *)arg != -1;
}

/* 200 statements from 50 submitters in one turn: one batch, one commit,
 * callbacks in submission order, each row visible when its callback runs. */
static void test_group_commit(void)
{
    static struct rec r[200];
    struct recs rs = {r, 200};
    struct dbq_config cfg = {.health_ms = 2000};
    struct dbq_stats before, after;
    struct env e;
    int in_order = 1, visible = 0, ok = 0;

    printf("-- group commit\n");
    if (!CHECK(th_sql_exec(admin, "CREATE TABLE gc (k int PRIMARY KEY, who int)") == 0))
        return;
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    memset(r, 0, sizeof(r));
    norder = 0;
    dbq_stats(e.q, &before);
    /* 50 submitters, 4 statements each, interleaved as their events would be */
    for (int i = 0; i < 200; i++) {
        char who[16];
        const char *p[2] = {r[i].key, who};

        r[i].id = i;
        r[i].check_sql = "SELECT count(*) FROM gc WHERE k = $1::int";
        snprintf(r[i].key, sizeof(r[i].key), "%d", i);
        snprintf(who, sizeof(who), "%d", i % 50);
        CHECK(dbq_exec(e.q, DBQ_DURABLE, 0, "INSERT INTO gc VALUES ($1::int, $2::int)", 2, p, NULL,
                       NULL, on_done, &r[i]) == 0);
    }
    CHECK_EQ_INT(norder, 0); /* never called from inside dbq_exec */
    CHECK(run_until(&e, all_done, &rs, 10000) == 0);
    dbq_stats(e.q, &after);
    for (int i = 0; i < 200; i++) {
        ok += r[i].outcome == DBQ_OK && r[i].calls == 1;
        visible += r[i].visible;
        if (i < norder && order[i] != i)
            in_order = 0;
    }
    CHECK_EQ_INT(ok, 200);
    CHECK_EQ_INT(visible, 200);
    CHECK_EQ_INT(norder, 200);
    CHECK(in_order);
    CHECK_EQ_INT(after.batches - before.batches, 1);
    CHECK_EQ_INT(after.commits - before.commits, 1);
    CHECK_EQ_INT(after.statements - before.statements, 200);
    CHECK_EQ_INT(count_sql("SELECT count(*) FROM gc", NULL), 200);
    CHECK(dbq_idle(e.q));
out:
    env_close(&e);
}

/* counts DBQ_OK callbacks in the int at arg */
static void count_ok(void *arg, const struct dbq_result *r)
{
    *(int *)arg += r->outcome == DBQ_OK;
}

static int reached_20000(void *arg)
{
    return *(const int *)arg >= 20000;
}

/* The same through a template: 100 rows from 20 submitters are one
 * statement; values that need escaping read back exactly. */
static void test_rows(void)
{
    static struct rec r[100];
    struct recs rs = {r, 100};
    static const char *const odd[] = {"plain",
                                      "say \"hi\"",
                                      "back\\slash",
                                      "\\\"",
                                      "{1,2}",
                                      "a,b",
                                      " padded ",
                                      "NULL",
                                      "",
                                      "two\nlines",
                                      "h\xc3\xa9llo \xe2\x82\xac",
                                      "\xf0\x9f\x98\x80"};
    const int nodd = (int)(sizeof(odd) / sizeof(odd[0]));
    struct dbq_config cfg = {0};
    struct dbq_stats before, after;
    struct dbq_rows *tpl;
    struct env e;
    int ok = 0, in_order = 1, same = 0;
    PGresult *res;

    printf("-- multi-row template\n");
    if (!CHECK(th_sql_exec(admin, "CREATE TABLE rw (k int PRIMARY KEY, v text)") == 0))
        return;
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    tpl = dbq_rows_new(e.q, DBQ_DURABLE, 0,
                       "INSERT INTO rw (k, v) SELECT * FROM unnest($1::int[], $2::text[])", 2);
    if (!CHECK(tpl != NULL))
        goto out;
    memset(r, 0, sizeof(r));
    norder = 0;
    dbq_stats(e.q, &before);
    for (int i = 0; i < 100; i++) {
        /* every 13th value NULL, the others cycling through the odd ones */
        const char *v[2] = {r[i].key, i % 13 == 12 ? NULL : odd[i % nodd]};

        r[i].id = i;
        r[i].check_sql = "SELECT count(*) FROM rw WHERE k = $1::int";
        snprintf(r[i].key, sizeof(r[i].key), "%d", i);
        CHECK(dbq_row(tpl, v, on_done, &r[i]) == 0);
    }
    CHECK(run_until(&e, all_done, &rs, 10000) == 0);
    dbq_stats(e.q, &after);
    for (int i = 0; i < 100; i++) {
        ok += r[i].outcome == DBQ_OK && r[i].calls == 1 && r[i].visible;
        if (i < norder && order[i] != i)
            in_order = 0;
    }
    CHECK_EQ_INT(ok, 100);
    CHECK(in_order);
    CHECK_EQ_INT(after.batches - before.batches, 1);
    CHECK_EQ_INT(after.statements - before.statements, 1);
    CHECK_EQ_INT(after.rows_coalesced - before.rows_coalesced, 100);
    res = th_sql(admin, "SELECT k, v FROM rw ORDER BY k", 0, NULL);
    if (CHECK(res != NULL) && CHECK_EQ_INT(PQntuples(res), 100)) {
        for (int i = 0; i < 100; i++) {
            int isnull = PQgetisnull(res, i, 1);

            if (i % 13 == 12)
                same += isnull;
            else
                same += !isnull && strcmp(PQgetvalue(res, i, 1), odd[i % nodd]) == 0;
        }
    }
    PQclear(res);
    CHECK_EQ_INT(same, 100);

    /* 20000 rows in one turn: still one statement, one commit */
    {
        static int big_done;
        struct dbq_rows *big =
            dbq_rows_new(e.q, DBQ_FAST, 0, "INSERT INTO rw (k) SELECT * FROM unnest($1::int[])", 1);
        long long t0 = th_now_ms();

        big_done = 0;
        if (!CHECK(big != NULL))
            goto out;
        int refused = 0;

        dbq_stats(e.q, &before);
        for (int i = 0; i < 20000; i++) {
            char k[16];
            const char *v[1] = {k};

            snprintf(k, sizeof(k), "%d", 1000 + i);
            refused += dbq_row(big, v, count_ok, &big_done) != 0;
        }
        CHECK_EQ_INT(refused, 0);
        CHECK(run_until(&e, reached_20000, &big_done, 20000) == 0);
        dbq_stats(e.q, &after);
        CHECK_EQ_INT(after.statements - before.statements, 1);
        CHECK_EQ_INT(after.commits - before.commits, 1);
        CHECK_EQ_INT(count_sql("SELECT count(*) FROM rw WHERE k >= 1000", NULL), 20000);
        printf("20000 template rows committed in %lld ms\n", th_now_ms() - t0);
    }
out:
    env_close(&e);
}

/* A unique violation at statement 5 of 10 fails alone (23505); the other
 * nine commit once. Then the same with template rows, and a row that is
 * not even an integer. */
static void test_failure(void)
{
    static struct rec r[10], t[12];
    struct recs rs = {r, 10}, ts = {t, 12};
    struct dbq_config cfg = {0};
    struct dbq_stats before, after;
    struct dbq_rows *tpl;
    struct env e;
    int ok = 0;

    printf("-- a failure mid-batch\n");
    if (!CHECK(th_sql_exec(admin, "CREATE TABLE uq (k int PRIMARY KEY)") == 0) ||
        !CHECK(th_sql_exec(admin, "INSERT INTO uq VALUES (1004), (2004)") == 0))
        return;
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    memset(r, 0, sizeof(r));
    dbq_stats(e.q, &before);
    for (int i = 0; i < 10; i++) {
        const char *p[1] = {r[i].key};

        r[i].id = i;
        snprintf(r[i].key, sizeof(r[i].key), "%d", 1000 + i);
        CHECK(dbq_exec(e.q, DBQ_DURABLE, 0, "INSERT INTO uq VALUES ($1::int)", 1, p, NULL, NULL,
                       on_done, &r[i]) == 0);
    }
    CHECK(run_until(&e, all_done, &rs, 10000) == 0);
    dbq_stats(e.q, &after);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(r[i].calls, 1);
        if (i != 4)
            ok += r[i].outcome == DBQ_OK;
    }
    CHECK_EQ_INT(ok, 9);
    CHECK_EQ_INT(r[4].outcome, DBQ_FAILED);
    CHECK_STR(r[4].sqlstate, "23505");
    printf("failed statement: %s\n", r[4].message);
    CHECK_EQ_INT(after.commits - before.commits, 1);
    CHECK_EQ_INT(after.requeued - before.requeued, 9);
    CHECK_EQ_INT(count_sql("SELECT count(*) FROM uq WHERE k BETWEEN 1000 AND 1009", NULL), 10);

    /* template rows 2000..2009 (2004 exists), plus two rows that are not
     * integers: each bad row fails alone, the rest commit once */
    tpl = dbq_rows_new(e.q, DBQ_DURABLE, 0, "INSERT INTO uq SELECT * FROM unnest($1::int[])", 1);
    if (!CHECK(tpl != NULL))
        goto out;
    memset(t, 0, sizeof(t));
    dbq_stats(e.q, &before);
    for (int i = 0; i < 12; i++) {
        const char *v[1] = {t[i].key};

        t[i].id = i;
        if (i < 10)
            snprintf(t[i].key, sizeof(t[i].key), "%d", 2000 + i);
        else
            snprintf(t[i].key, sizeof(t[i].key), "x%d", i);
        CHECK(dbq_row(tpl, v, on_done, &t[i]) == 0);
    }
    CHECK(run_until(&e, all_done, &ts, 10000) == 0);
    dbq_stats(e.q, &after);
    ok = 0;
    for (int i = 0; i < 12; i++) {
        CHECK_EQ_INT(t[i].calls, 1);
        if (i != 4 && i < 10)
            ok += t[i].outcome == DBQ_OK;
    }
    CHECK_EQ_INT(ok, 9);
    CHECK_EQ_INT(t[4].outcome, DBQ_FAILED);
    CHECK_STR(t[4].sqlstate, "23505");
    CHECK_EQ_INT(t[10].outcome, DBQ_FAILED);
    CHECK_STR(t[10].sqlstate, "22P02");
    CHECK_EQ_INT(t[11].outcome, DBQ_FAILED);
    CHECK_EQ_INT(count_sql("SELECT count(*) FROM uq WHERE k BETWEEN 2000 AND 2009", NULL), 10);
    printf("template failure: %llu commits, %llu requeued\n",
           (unsigned long long)(after.commits - before.commits),
           (unsigned long long)(after.requeued - before.requeued));
out:
    env_close(&e);
}

/* queue_max 5: of 8 statements submitted at once, 3 get DBQ_UNAVAILABLE
 * at the turn's end (not inside dbq_exec), 5 commit. */
static void test_queue_full(void)
{
    static struct rec r[8];
    struct recs rs = {r, 8};
    struct dbq_config cfg = {.queue_max = 5};
    struct env e;
    int ok = 0, unavailable = 0;

    printf("-- queue full\n");
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 8; i++) {
        r[i].id = i;
        CHECK(dbq_exec(e.q, DBQ_FAST, DBQ_RETRY_SAFE, "SELECT 1", 0, NULL, NULL, NULL, on_done,
                       &r[i]) == 0);
        CHECK_EQ_INT(r[i].calls, 0);
    }
    CHECK(run_until(&e, all_done, &rs, 10000) == 0);
    for (int i = 0; i < 8; i++) {
        ok += r[i].outcome == DBQ_OK && i < 5;
        unavailable += r[i].outcome == DBQ_UNAVAILABLE && i >= 5;
    }
    CHECK_EQ_INT(ok, 5);
    CHECK_EQ_INT(unavailable, 3);
out:
    env_close(&e);
}

/* statement_timeout 200: SELECT pg_sleep(1) fails with 57014; the insert
 * beside it in the same batch commits. */
static void test_statement_timeout(void)
{
    static struct rec r[2];
    struct recs rs = {r, 2};
    struct dbq_config cfg = {.statement_timeout_ms = 200};
    const char *p[1] = {"1"};
    struct env e;
    long long t0;

    printf("-- statement timeout\n");
    if (!CHECK(th_sql_exec(admin, "CREATE TABLE st (k int PRIMARY KEY)") == 0))
        return;
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    memset(r, 0, sizeof(r));
    t0 = th_now_ms();
    CHECK(dbq_exec(e.q, DBQ_DURABLE, DBQ_RETRY_SAFE, "SELECT pg_sleep(1)", 0, NULL, NULL, NULL,
                   on_done, &r[0]) == 0);
    CHECK(dbq_exec(e.q, DBQ_DURABLE, 0, "INSERT INTO st VALUES ($1::int)", 1, p, NULL, NULL,
                   on_done, &r[1]) == 0);
    CHECK(run_until(&e, all_done, &rs, 10000) == 0);
    CHECK_EQ_INT(r[0].outcome, DBQ_FAILED);
    CHECK_STR(r[0].sqlstate, "57014");
    CHECK(r[0].at - t0 < 900);
    CHECK_EQ_INT(r[1].outcome, DBQ_OK);
    CHECK_EQ_INT(count_sql("SELECT count(*) FROM st", NULL), 1);
out:
    env_close(&e);
}

/* Statements run as prepared statements from their second use on: a plan
 * gone stale under DDL (0A000) is sent again, not reported; a statement
 * whose Parse fails still fails alone, as itself. */
static void test_prepared(void)
{
    static struct rec r[12];
    struct recs rs = {r, 0};
    struct dbq_config cfg = {0};
    struct env e;
    int ncols = -1;

    printf("-- prepared statements\n");
    if (!CHECK(th_sql_exec(admin, "CREATE TABLE pt (a int)") == 0) ||
        !CHECK(th_sql_exec(admin, "INSERT INTO pt VALUES (1)") == 0))
        return;
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    memset(r, 0, sizeof(r));
    /* three rounds of SELECT * (the second and third run prepared), each
     * with a bad statement and a good one beside it */
    for (int round = 0; round < 3; round++) {
        int i = round * 3;

        for (int k = 0; k < 3; k++)
            r[i + k].id = i + k;
        CHECK(dbq_exec(e.q, DBQ_FAST, DBQ_RETRY_SAFE, "SELECT * FROM pt", 0, NULL, NULL, NULL,
                       on_done, &r[i]) == 0);
        CHECK(dbq_exec(e.q, DBQ_FAST, 0, "SELEC 1", 0, NULL, NULL, NULL, on_done, &r[i + 1]) == 0);
        CHECK(dbq_exec(e.q, DBQ_FAST, DBQ_RETRY_SAFE, "SELECT 2", 0, NULL, NULL, NULL, on_done,
                       &r[i + 2]) == 0);
        rs.n = i + 3;
        CHECK(run_until(&e, all_done, &rs, 10000) == 0);
        CHECK_EQ_INT(r[i].outcome, DBQ_OK);
        CHECK_EQ_INT(r[i + 1].outcome, DBQ_FAILED);
        CHECK_STR(r[i + 1].sqlstate, "42601");
        CHECK_EQ_INT(r[i + 2].outcome, DBQ_OK);
    }
    /* the table changes shape: the prepared SELECT * cannot run as it was */
    CHECK(th_sql_exec(admin, "ALTER TABLE pt ADD COLUMN b text") == 0);
    r[9].id = 9;
    r[9].check_sql = NULL;
    CHECK(dbq_exec(e.q, DBQ_FAST, DBQ_RETRY_SAFE, "SELECT * FROM pt", 0, NULL, NULL, NULL, on_ncols,
                   &ncols) == 0);
    CHECK(run_until(&e, ncols_known, &ncols, 10000) == 0);
    CHECK_EQ_INT(ncols, 2);
    for (int i = 0; i < 9; i++)
        CHECK_EQ_INT(r[i].calls, 1);
out:
    env_close(&e);
}

struct heard {
    int resyncs; /* payload NULL */
    int notes;   /* payloads */
    char last[64];
};

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct heard *h = arg;

    if (payload == NULL) {
        h->resyncs++;
        return;
    }
    h->notes++;
    snprintf(h->last, sizeof(h->last), "%s", payload);
}

static int resynced_twice(void *arg)
{
    const struct heard *h = arg;

    return h->resyncs >= 2;
}

static int resynced(void *arg)
{
    const struct heard *h = arg;

    return h->resyncs >= 1;
}

static int heard_two(void *arg)
{
    const struct heard *h = arg;

    return h->notes >= 2;
}

static int heard_three(void *arg)
{
    const struct heard *h = arg;

    return h->notes >= 3;
}

/* NOTIFY reaches the callback, on a plain channel and on one that needs
 * quoting; after the listen backend is terminated, payload NULL comes again
 * and later notifications still arrive. */
static void test_listen(void)
{
    struct heard a, b;
    struct dbq_config cfg = {.health_ms = 1000};
    struct env e;
    struct dbq_stats st;

    printf("-- LISTEN/NOTIFY\n");
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    if (env_open(&e, &cfg) != 0)
        goto out;
    CHECK(dbq_listen(e.q, "wf_test_chan", on_notify, &a) == 0);
    CHECK(run_until(&e, resynced, &a, 10000) == 0);
    CHECK(run_until(&e, healthy, e.q, 10000) == 0);
    /* a channel added while connected, whose name needs quoting */
    CHECK(dbq_listen(e.q, "Odd \"chan\"", on_notify, &b) == 0);
    CHECK(run_until(&e, resynced, &b, 10000) == 0);
    CHECK(th_sql_exec(admin, "SELECT pg_notify('wf_test_chan', 'hello')") == 0);
    CHECK(th_sql_exec(admin, "SELECT pg_notify('Odd \"chan\"', 'odd')") == 0);
    CHECK(th_sql_exec(admin, "SELECT pg_notify('wf_test_chan', 'again')") == 0);
    CHECK(run_until(&e, heard_two, &a, 5000) == 0);
    CHECK_STR(a.last, "again");
    CHECK_EQ_INT(b.notes, 1);
    CHECK_STR(b.last, "odd");
    /* the listen backend dies: the resync comes, notifications go on */
    CHECK_EQ_INT(terminate("listen"), 1);
    CHECK(run_until(&e, resynced_twice, &a, 10000) == 0);
    CHECK(run_until(&e, resynced_twice, &b, 10000) == 0);
    CHECK(th_sql_exec(admin, "SELECT pg_notify('wf_test_chan', 'after')") == 0);
    CHECK(run_until(&e, heard_three, &a, 5000) == 0);
    CHECK_STR(a.last, "after");
    dbq_stats(e.q, &st);
    CHECK(st.reconnects >= 1);
out:
    env_close(&e);
}

/* dbq_free with statements pending: each gets DBQ_UNAVAILABLE, once. */
static void test_free_pending(void)
{
    static struct rec r[3];
    struct dbq_config cfg = {.url = "postgresql://postgres@127.0.0.1:1/none"};
    struct env e;

    printf("-- dbq_free with pending statements\n");
    if (env_open(&e, &cfg) != 0)
        goto out;
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 3; i++)
        CHECK(dbq_exec(e.q, i == 1 ? DBQ_FAST : DBQ_DURABLE, 0, "SELECT 1", 0, NULL, NULL, NULL,
                       on_done, &r[i]) == 0);
    CHECK(dbq_exec(e.q, DBQ_DURABLE, DBQ_PERSIST, "SELECT 1", 0, NULL, NULL, NULL, on_done,
                   &r[0]) == -1 &&
          errno == EINVAL);
    run_for(&e, 50);
    CHECK(!dbq_idle(e.q));
out:
    env_close(&e);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(r[i].calls, 1);
        CHECK_EQ_INT(r[i].outcome, DBQ_UNAVAILABLE);
    }
}

/* ---- outage group -------------------------------------------------------- */

static int batch_sent(void *arg)
{
    struct dbq_stats st;

    dbq_stats(arg, &st);
    return st.batches >= 1 && st.in_flight > 0;
}

/* The durable backend is terminated while a batch (with a pg_sleep in the
 * middle) is in flight: every caller hears exactly once; retry-safe
 * statements end DBQ_OK with their rows there once, the others get
 * DBQ_UNKNOWN. */
static void test_kill_mid_batch(void)
{
    static struct rec r[21];
    struct recs rs = {r, 21};
    struct dbq_config cfg = {.health_ms = 2000};
    struct env e;
    struct dbq_stats st;
    int okn = 0, unknown = 0, once = 0;

    printf("-- backend terminated mid-batch\n");
    if (!CHECK(th_sql_exec(admin, "CREATE TABLE kb (k text PRIMARY KEY)") == 0))
        return;
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 21; i++) {
        const char *p[1] = {r[i].key};
        int safe = i % 2 == 0;

        r[i].id = i;
        if (i == 10) {
            CHECK(dbq_exec(e.q, DBQ_DURABLE, DBQ_RETRY_SAFE, "SELECT pg_sleep(1)", 0, NULL, NULL,
                           NULL, on_done, &r[i]) == 0);
            continue;
        }
        snprintf(r[i].key, sizeof(r[i].key), "%s-%d", safe ? "rs" : "nr", i);
        if (safe)
            CHECK(dbq_exec(e.q, DBQ_DURABLE, DBQ_RETRY_SAFE,
                           "INSERT INTO kb VALUES ($1) ON CONFLICT DO NOTHING", 1, p, NULL, NULL,
                           on_done, &r[i]) == 0);
        else
            CHECK(dbq_exec(e.q, DBQ_DURABLE, 0, "INSERT INTO kb VALUES ($1)", 1, p, NULL, NULL,
                           on_done, &r[i]) == 0);
    }
    CHECK(run_until(&e, batch_sent, e.q, 5000) == 0);
    run_for(&e, 100); /* the server is in pg_sleep now */
    dbq_stats(e.q, &st);
    CHECK(st.in_flight == 21);
    /* only while it sleeps: the kill must land mid-batch, however slow this
     * machine is today */
    CHECK_EQ_INT(terminate_sleeping("durable"), 1);
    CHECK(run_until(&e, all_done, &rs, 15000) == 0);
    run_for(&e, 200); /* nobody hears twice */
    for (int i = 0; i < 21; i++) {
        int safe = i % 2 == 0 || i == 10;

        once += r[i].calls == 1;
        if (safe)
            okn += r[i].outcome == DBQ_OK;
        else
            unknown += r[i].outcome == DBQ_UNKNOWN;
        if (i != 10 && safe)
            CHECK_EQ_INT(count_sql("SELECT count(*) FROM kb WHERE k = $1", r[i].key), 1);
    }
    CHECK_EQ_INT(once, 21);
    CHECK_EQ_INT(okn, 11);
    CHECK_EQ_INT(unknown, 10);
    /* the batch never committed: the unknown ones are in fact absent */
    CHECK_EQ_INT(count_sql("SELECT count(*) FROM kb WHERE k LIKE 'nr-%'", NULL), 0);
    dbq_stats(e.q, &st);
    CHECK(st.reconnects >= 1);
    printf("mid-batch kill: unknown message \"%s\"\n", r[1].message);
out:
    env_close(&e);
}

struct span {
    const struct rec *r;
    int from, to;
};

static int span_done(void *arg)
{
    const struct span *s = arg;

    for (int i = s->from; i < s->to; i++) {
        if (s->r[i].calls == 0)
            return 0;
    }
    return 1;
}

static int lost_two(void *arg)
{
    struct dbq_stats st;

    dbq_stats(arg, &st);
    return st.disconnects >= 2;
}

/* The database refuses connections (ALLOW_CONNECTIONS false) and dbq's
 * backends are terminated: plain statements get DBQ_UNAVAILABLE after
 * wait_ms; DBQ_PERSIST ones land once connections are allowed again. */
static void test_restart(void)
{
    static struct rec r[10];
    struct span plain = {r, 0, 5}, persist = {r, 5, 10};
    struct dbq_config cfg = {.health_ms = 1000, .wait_ms = 1000};
    char sql[200];
    struct env e;
    long long t0;

    printf("-- database refusing connections\n");
    if (!CHECK(th_sql_exec(admin, "CREATE TABLE rs (k text PRIMARY KEY)") == 0))
        return;
    if (env_open(&e, &cfg) != 0 || !CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false", db.name);
    if (!CHECK(cluster_exec(sql) == 0))
        goto out;
    CHECK_EQ_INT(terminate("durable"), 1);
    CHECK_EQ_INT(terminate("fast"), 1);
    /* both losses seen: a statement sent on a connection whose end has not
     * been read yet would rightly be DBQ_UNKNOWN, not what this tests */
    CHECK(run_until(&e, lost_two, e.q, 5000) == 0);
    CHECK(!dbq_healthy(e.q));
    memset(r, 0, sizeof(r));
    t0 = th_now_ms();
    for (int i = 0; i < 10; i++) {
        const char *p[1] = {r[i].key};

        r[i].id = i;
        snprintf(r[i].key, sizeof(r[i].key), "%s-%d", i < 5 ? "plain" : "persist", i);
        if (i < 5)
            CHECK(dbq_exec(e.q, i % 2 ? DBQ_FAST : DBQ_DURABLE, 0, "INSERT INTO rs VALUES ($1)", 1,
                           p, NULL, NULL, on_done, &r[i]) == 0);
        else
            CHECK(dbq_exec(e.q, DBQ_DURABLE, DBQ_RETRY_SAFE | DBQ_PERSIST,
                           "INSERT INTO rs VALUES ($1) ON CONFLICT DO NOTHING", 1, p, NULL, NULL,
                           on_done, &r[i]) == 0);
    }
    CHECK(run_until(&e, span_done, &plain, 5000) == 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(r[i].outcome, DBQ_UNAVAILABLE);
        CHECK(r[i].at - t0 >= 950 && r[i].at - t0 < 2000);
    }
    printf("refused: unavailable after %lld ms: %s\n", r[0].at - t0, r[0].message);
    run_for(&e, 1000);
    for (int i = 5; i < 10; i++)
        CHECK_EQ_INT(r[i].calls, 0);
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", db.name);
    CHECK(cluster_exec(sql) == 0);
    CHECK(run_until(&e, span_done, &persist, 15000) == 0);
    for (int i = 5; i < 10; i++) {
        CHECK_EQ_INT(r[i].calls, 1);
        CHECK_EQ_INT(r[i].outcome, DBQ_OK);
        CHECK_EQ_INT(count_sql("SELECT count(*) FROM rs WHERE k = $1", r[i].key), 1);
    }
    CHECK_EQ_INT(count_sql("SELECT count(*) FROM rs WHERE k LIKE 'plain-%'", NULL), 0);
    CHECK(run_until(&e, healthy, e.q, 10000) == 0);
out:
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", db.name);
    (void)cluster_exec(sql);
    env_close(&e);
}

/* A TCP listener that never answers; connections are accepted (and held,
 * never read) by the loop, so the test can count dbq's attempts. */
struct silent {
    int fd;
    int accepted[64];
    int naccepted;
    struct loop_watch w;
};

static void on_silent(void *arg, uint32_t events)
{
    struct silent *s = arg;
    int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    if (s->naccepted < 64)
        s->accepted[s->naccepted++] = fd;
    else
        close(fd);
}

struct ticker {
    struct loop *l;
    struct loop_timer t;
    int ticks;
};

static void on_tick(void *arg)
{
    struct ticker *k = arg;

    k->ticks++;
    loop_timer_set(k->l, &k->t, loop_now(k->l) + 20, on_tick, k);
}

/* connect_timeout_ms is our own deadline: every attempt on a silent server
 * is given up after it (and retried), statements get DBQ_UNAVAILABLE after
 * wait_ms, health stays 0, and the loop never stalls. */
static void test_silent_server(void)
{
    static struct rec r[3];
    struct span all = {r, 0, 3};
    struct silent s;
    int port = 0;
    char url[128];
    struct dbq_config cfg = {.connect_timeout_ms = 300, .wait_ms = 800};
    struct ticker k;
    struct env e;
    long long t0;

    printf("-- a server that never answers\n");
    memset(&s, 0, sizeof(s));
    memset(&e, 0, sizeof(e));
    s.fd = th_loopback_listener(&port, 1);
    if (!CHECK(s.fd >= 0))
        goto out;
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/none", port);
    cfg.url = url;
    if (env_open(&e, &cfg) != 0 || !CHECK(loop_add(e.l, &s.w, s.fd, EPOLLIN, on_silent, &s) == 0))
        goto out;
    memset(&k, 0, sizeof(k));
    k.l = e.l;
    loop_timer_set(e.l, &k.t, loop_now(e.l) + 20, on_tick, &k);
    memset(r, 0, sizeof(r));
    t0 = th_now_ms();
    for (int i = 0; i < 3; i++)
        CHECK(dbq_exec(e.q, i == 2 ? DBQ_FAST : DBQ_DURABLE, DBQ_RETRY_SAFE, "SELECT 1", 0, NULL,
                       NULL, NULL, on_done, &r[i]) == 0);
    CHECK(run_until(&e, span_done, &all, 3000) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(r[i].outcome, DBQ_UNAVAILABLE);
        CHECK(r[i].at - t0 >= 750 && r[i].at - t0 < 1500);
    }
    run_for(&e, 2000 - (int)(th_now_ms() - t0));
    CHECK(!dbq_healthy(e.q));
    printf("silent server: %d connections in 2 s, %d ticks of 20 ms\n", s.naccepted, k.ticks);
    CHECK(s.naccepted >= 6); /* two classes, each at 0, ~400, ~900, ~1600 ms */
    CHECK(k.ticks >= 50);
    loop_timer_cancel(e.l, &k.t);
    loop_del(e.l, &s.w);
out:
    env_close(&e);
    for (int i = 0; i < s.naccepted; i++)
        close(s.accepted[i]);
    if (s.fd >= 0)
        close(s.fd);
}

static int health_changes[8];
static int nhealth_changes;

static void on_health(void *arg, int h)
{
    if (nhealth_changes < 8)
        health_changes[nhealth_changes++] = h;
}

/* SIGSTOP dbq's backends: unhealthy within health_ms + one probe interval
 * (1500 ms here, plus scheduling slack); SIGCONT: healthy again. */
static void test_frozen(void)
{
    struct dbq_config cfg = {.health_ms = 1000, .statement_timeout_ms = 20000};
    pid_t pids[4];
    int n = 0, stopped = 0;
    struct env e;
    long long t0, took;

    printf("-- frozen backends\n");
    nhealth_changes = 0;
    if (env_open(&e, &cfg) != 0)
        goto out;
    dbq_on_health(e.q, on_health, NULL);
    if (!CHECK(run_until(&e, healthy, e.q, 10000) == 0))
        goto out;
    run_for(&e, 100);
    n += backend_pids("durable", pids + n, 1);
    n += backend_pids("fast", pids + n, 1);
    if (!CHECK_EQ_INT(n, 2))
        goto out;
    for (int i = 0; i < n; i++) {
        if (kill(pids[i], SIGSTOP) < 0) {
            printf("frozen backends: skipped: cannot stop pid %d: %s\n", (int)pids[i],
                   strerror(errno));
            goto out;
        }
        stopped++;
    }
    t0 = th_now_ms();
    CHECK(run_until(&e, unhealthy, e.q, 3000) == 0);
    took = th_now_ms() - t0;
    printf("frozen backends: unhealthy after %lld ms\n", took);
    CHECK(took <= 1800);
    for (int i = 0; i < stopped; i++)
        kill(pids[i], SIGCONT);
    stopped = 0;
    t0 = th_now_ms();
    CHECK(run_until(&e, healthy, e.q, 3000) == 0);
    printf("frozen backends: healthy again %lld ms after SIGCONT\n", th_now_ms() - t0);
    CHECK(nhealth_changes >= 3);
    if (nhealth_changes >= 3) {
        CHECK_EQ_INT(health_changes[0], 1);
        CHECK_EQ_INT(health_changes[1], 0);
        CHECK_EQ_INT(health_changes[2], 1);
    }
out:
    for (int i = 0; i < stopped; i++)
        kill(pids[i], SIGCONT);
    env_close(&e);
}

int main(int argc, char **argv)
{
    const char *group = argc > 1 ? argv[1] : "pipeline";

    memset(&db, 0, sizeof(db));
    if (th_init(strcmp(group, "outage") == 0 ? "test_dbq_outage" : "test_dbq", 1) != 0)
        return TH_SKIP;
    log_init("test", getenv("WF_TEST_DBQ_DEBUG") != NULL ? LOG_LVL_DEBUG : LOG_LVL_WARNING, 0);
    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    admin = th_db_connect(&db);
    if (!CHECK(admin != NULL))
        goto out;
    if (strcmp(group, "outage") == 0) {
        test_kill_mid_batch();
        test_restart();
        test_silent_server();
        test_frozen();
    } else {
        test_group_commit();
        test_rows();
        test_failure();
        test_queue_full();
        test_statement_timeout();
        test_prepared();
        test_listen();
        test_free_pending();
    }
out:
    PQfinish(admin);
    th_db_drop(&db);
    return th_finish();
}
