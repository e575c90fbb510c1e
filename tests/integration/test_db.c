/*
 * test_db.c: the blocking connections of db.c against a real PostgreSQL
 * (no server binary):
 *
 *   - a statement_timeout the server rejects fails the connect with a clear
 *     error (the SET used to run unchecked);
 *   - application_name is "<app>:<role>" and wins over the URL's;
 *   - statement_timeout cancels a long statement (57014), and the
 *     connection stays usable;
 *   - a server that accepts TCP and never answers: db_connect gives up
 *     within connect_timeout and a margin;
 *   - a frozen backend (SIGSTOP): db_exec returns -1 within
 *     statement_timeout + DB_ANSWER_MARGIN_MS, marked unavailable, and the
 *     next call reconnects.
 *
 * Exits 77 (skipped) without WF_TEST_DATABASE_URL.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "harness.h"
#include "log.h"

/* The pid of the backend of db whose application_name is app, or -1. */
static long long backend_pid(PGconn *admin, const struct th_db *db, const char *app)
{
    const char *params[2] = {db->name, app};
    PGresult *r = th_sql(admin,
                         "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND "
                         "application_name = $2",
                         2, params);
    long long pid = -1;

    if (r != NULL && PQntuples(r) == 1)
        pid = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return pid;
}

static void test_rejected_statement_timeout(const struct th_db *db)
{
    struct db_options opt = {.role = "test-reject", .statement_timeout_ms = -5};
    struct db_conn *c = db_conn_new_ex(db->url, &opt);

    if (!CHECK(c != NULL))
        return;
    CHECK(db_connect(c) == -1);
    printf("rejected statement_timeout: %s\n", db_error(c));
    CHECK(strstr(db_error(c), "statement_timeout") != NULL);
    /* and a statement does not run on a half-configured connection */
    CHECK(db_command(c, "SELECT 1", 0, NULL) == -1);
    db_conn_free(c);
}

static void test_app_name(const struct th_db *db, PGconn *admin)
{
    char url[2200];
    struct db_options opt = {.app_name = "wf-test", .role = "appname"};
    struct db_conn *c;
    long long pid;

    /* the URL's application_name loses to ours */
    snprintf(url, sizeof(url), "%s%sapplication_name=theirs", db->url,
             strchr(db->url, '?') != NULL ? "&" : "?");
    c = db_conn_new_ex(url, &opt);
    if (!CHECK(c != NULL))
        return;
    CHECK(db_connect(c) == 0);
    pid = backend_pid(admin, db, "wf-test:appname");
    CHECK(pid > 0);
    {
        PGresult *r = db_exec(c, "SHOW statement_timeout", 0, NULL);

        if (CHECK(r != NULL))
            CHECK_STR(PQgetvalue(r, 0, 0), "30s");
        PQclear(r);
    }
    db_conn_free(c);
    /* the default role is "http" */
    c = db_conn_new(db->url);
    if (CHECK(c != NULL)) {
        CHECK(db_command(c, "SELECT 1", 0, NULL) == 0);
        CHECK(backend_pid(admin, db, "wf-server:http") > 0);
        db_conn_free(c);
    }
}

static void test_statement_timeout(const struct th_db *db)
{
    struct db_options opt = {.role = "stmt-timeout", .statement_timeout_ms = 200};
    struct db_conn *c = db_conn_new_ex(db->url, &opt);
    long long t0;
    PGresult *r;

    if (!CHECK(c != NULL))
        return;
    t0 = th_now_ms();
    r = db_exec(c, "SELECT pg_sleep(1)", 0, NULL);
    CHECK(r == NULL);
    PQclear(r);
    CHECK_STR(db_sqlstate(c), "57014");
    CHECK(!db_unavailable(c));
    CHECK(th_now_ms() - t0 < 900);
    r = db_exec(c, "SELECT 41 + 1", 0, NULL);
    if (CHECK(r != NULL))
        CHECK_STR(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    db_conn_free(c);
}

static void test_silent_server(void)
{
    int port = 0;
    int fd = th_loopback_listener(&port, 0);
    char url[128];
    struct db_options opt = {.role = "silent", .connect_timeout_ms = 2000};
    struct db_conn *c;
    long long t0, took;

    if (!CHECK(fd >= 0))
        return;
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/none", port);
    c = db_conn_new_ex(url, &opt);
    if (CHECK(c != NULL)) {
        t0 = th_now_ms();
        CHECK(db_connect(c) == -1);
        took = th_now_ms() - t0;
        printf("silent server: db_connect gave up after %lld ms: %s\n", took, db_error(c));
        CHECK(took >= 1500 && took < 4500);
        CHECK(db_unavailable(c));
        db_conn_free(c);
    }
    close(fd);
}

static void test_frozen_backend(const struct th_db *db, PGconn *admin)
{
    struct db_options opt = {.app_name = "wf-test", .role = "frozen", .statement_timeout_ms = 500};
    struct db_conn *c = db_conn_new_ex(db->url, &opt);
    long long pid, t0, took;
    PGresult *r;

    if (!CHECK(c != NULL))
        return;
    if (!CHECK(db_connect(c) == 0))
        goto out;
    pid = backend_pid(admin, db, "wf-test:frozen");
    if (!CHECK(pid > 0))
        goto out;
    if (kill((pid_t)pid, SIGSTOP) < 0) {
        printf("frozen backend: skipped: cannot stop pid %lld: %s\n", pid, strerror(errno));
        goto out;
    }
    t0 = th_now_ms();
    r = db_exec(c, "SELECT 1", 0, NULL);
    took = th_now_ms() - t0;
    kill((pid_t)pid, SIGCONT);
    CHECK(r == NULL);
    PQclear(r);
    printf("frozen backend: db_exec gave up after %lld ms: %s\n", took, db_error(c));
    CHECK(took >= 500 + DB_ANSWER_MARGIN_MS - 50 && took < 500 + DB_ANSWER_MARGIN_MS + 1000);
    CHECK(db_unavailable(c));
    CHECK(strstr(db_error(c), "did not answer within") != NULL);
    /* the next statement reconnects */
    r = db_exec(c, "SELECT 1", 0, NULL);
    CHECK(r != NULL);
    PQclear(r);
out:
    db_conn_free(c);
}

int main(void)
{
    struct th_db db;
    PGconn *admin = NULL;

    memset(&db, 0, sizeof(db));
    if (th_init("test_db", 1) != 0)
        return TH_SKIP;
    log_init("test", LOG_LVL_WARNING, 0);
    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    admin = th_db_connect(&db);
    if (!CHECK(admin != NULL))
        goto out;
    test_rejected_statement_timeout(&db);
    test_app_name(&db, admin);
    test_statement_timeout(&db);
    test_silent_server();
    test_frozen_backend(&db, admin);
out:
    PQfinish(admin);
    th_db_drop(&db);
    return th_finish();
}
