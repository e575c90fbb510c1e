/*
 * db.c: see db.h. Every PGresult is cleared on every path; errors are logged
 * by the caller, who knows what the statement was for.
 *
 * A connection is non-blocking once connected: a statement is sent with
 * PQsendQuery/PQsendQueryParams and its answer awaited with poll() on
 * PQsocket until a deadline, so neither a large send nor a silent server can
 * hold the calling thread past statement_timeout + DB_ANSWER_MARGIN_MS.
 */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"

#define DB_DEFAULT_APP "wf-server"
#define DB_DEFAULT_ROLE "http"
#define DB_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DB_DEFAULT_STATEMENT_TIMEOUT_MS 30000

struct db_conn {
    const char *url;
    char app[64];
    char role[32];
    int connect_timeout_ms;
    int statement_timeout_ms;
    PGconn *pg;
    char error[256];
    char sqlstate[6];
    int unavailable;
};

void db_conninfo_build(struct db_conninfo *ci, const char *url, const char *app, const char *role,
                       int connect_timeout_ms)
{
    int n = 0;

    ci->keywords[n] = "keepalives";
    ci->values[n++] = "1";
    ci->keywords[n] = "keepalives_idle";
    ci->values[n++] = DB_KEEPALIVES_IDLE_S;
    ci->keywords[n] = "keepalives_interval";
    ci->values[n++] = DB_KEEPALIVES_INTERVAL_S;
    ci->keywords[n] = "keepalives_count";
    ci->values[n++] = DB_KEEPALIVES_COUNT;
    ci->keywords[n] = "tcp_user_timeout";
    ci->values[n++] = DB_TCP_USER_TIMEOUT_MS;
    if (connect_timeout_ms > 0) {
        int s = (connect_timeout_ms + 999) / 1000;

        snprintf(ci->connect_timeout, sizeof(ci->connect_timeout), "%d", s < 2 ? 2 : s);
        ci->keywords[n] = "connect_timeout";
        ci->values[n++] = ci->connect_timeout;
    }
    /* expand_dbname: the URL's own settings override everything above */
    ci->keywords[n] = "dbname";
    ci->values[n++] = url;
    snprintf(ci->application_name, sizeof(ci->application_name), "%s:%s",
             app != NULL ? app : DB_DEFAULT_APP, role != NULL ? role : DB_DEFAULT_ROLE);
    ci->keywords[n] = "application_name";
    ci->values[n++] = ci->application_name;
    ci->keywords[n] = NULL;
    ci->values[n] = NULL;
}

int db_check_url(const char *url, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);

    if (opts == NULL) {
        snprintf(err, errlen, "invalid DATABASE_URL: %s", msg != NULL ? msg : "out of memory");
        if (msg != NULL) {
            size_t n = strlen(err);
            if (n > 0 && err[n - 1] == '\n')
                err[n - 1] = '\0';
            PQfreemem(msg);
        }
        return -1;
    }
    PQconninfoFree(opts);
    return 0;
}

struct db_conn *db_conn_new_ex(const char *url, const struct db_options *opt)
{
    struct db_conn *c = calloc(1, sizeof(*c));
    const char *app = opt != NULL && opt->app_name != NULL ? opt->app_name : DB_DEFAULT_APP;
    const char *role = opt != NULL && opt->role != NULL ? opt->role : DB_DEFAULT_ROLE;

    if (c == NULL)
        return NULL;
    c->url = url;
    snprintf(c->app, sizeof(c->app), "%s", app);
    snprintf(c->role, sizeof(c->role), "%s", role);
    c->connect_timeout_ms = opt != NULL && opt->connect_timeout_ms != 0
                                ? opt->connect_timeout_ms
                                : DB_DEFAULT_CONNECT_TIMEOUT_MS;
    c->statement_timeout_ms = opt != NULL && opt->statement_timeout_ms != 0
                                  ? opt->statement_timeout_ms
                                  : DB_DEFAULT_STATEMENT_TIMEOUT_MS;
    return c;
}

struct db_conn *db_conn_new(const char *url)
{
    return db_conn_new_ex(url, NULL);
}

void db_conn_free(struct db_conn *c)
{
    if (c == NULL)
        return;
    if (c->pg != NULL)
        PQfinish(c->pg);
    free(c);
}

/* Copies libpq's message without its trailing newline. */
static void set_error(struct db_conn *c, const char *msg, const char *sqlstate, int unavailable)
{
    size_t n;

    snprintf(c->error, sizeof(c->error), "%s", msg != NULL ? msg : "unknown error");
    n = strlen(c->error);
    while (n > 0 && (c->error[n - 1] == '\n' || c->error[n - 1] == ' '))
        c->error[--n] = '\0';
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", sqlstate != NULL ? sqlstate : "");
    c->unavailable = unavailable;
}

/* Server notices ("relation already exists, skipping") go to the debug log,
 * not to stderr as bare lines. */
static void on_notice(void *arg, const char *message)
{
    size_t n = strlen(message);

    if (n > 0 && message[n - 1] == '\n')
        n--;
    log_debug("database notice: %.*s", (int)n, message);
}

static void drop(struct db_conn *c)
{
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
}

/* The client-side deadline of one statement, in ms from its send. */
static int answer_deadline_ms(const struct db_conn *c)
{
    int t = c->statement_timeout_ms > 0 ? c->statement_timeout_ms : DB_DEFAULT_STATEMENT_TIMEOUT_MS;

    return t + DB_ANSWER_MARGIN_MS;
}

/*
 * Waits for the results of the query just sent, flushing what libpq still
 * holds, until they are complete or the deadline (monotonic ms) passes.
 * Returns the last result (an error result wins over a later one; caller
 * PQclears), or NULL with the error set: on the deadline and on a socket
 * failure the connection is dropped (unavailable).
 */
static PGresult *await_result(struct db_conn *c, int64_t deadline, int budget_ms)
{
    PGresult *last = NULL;

    for (;;) {
        struct pollfd pfd;
        int64_t left;
        int flush = PQflush(c->pg);

        if (flush < 0)
            break; /* the connection failed: PQisBusy is 0, the error comes below */
        while (!PQisBusy(c->pg)) {
            PGresult *r = PQgetResult(c->pg);

            if (r == NULL)
                return last;
            if (last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR) {
                PQclear(r); /* keep the first error, as PQexec does */
                continue;
            }
            PQclear(last);
            last = r;
        }
        left = deadline - ju_mono_ms();
        if (left <= 0) {
            char msg[96];

            PQclear(last);
            snprintf(msg, sizeof(msg), "database did not answer within %d ms", budget_ms);
            drop(c);
            set_error(c, msg, NULL, 1);
            return NULL;
        }
        pfd.fd = PQsocket(c->pg);
        pfd.events = (short)(POLLIN | (flush == 1 ? POLLOUT : 0));
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
            char msg[96];

            PQclear(last);
            snprintf(msg, sizeof(msg), "could not poll the database socket: %s", strerror(errno));
            drop(c);
            set_error(c, msg, NULL, 1);
            return NULL;
        }
        if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && !PQconsumeInput(c->pg))
            break;
    }
    /* The connection broke: PQerrorMessage says how; PQfinish frees the rest. */
    PQclear(last);
    set_error(c, PQerrorMessage(c->pg), NULL, 1);
    drop(c);
    return NULL;
}

/*
 * Sends one statement on a connected c and waits for it (see await_result).
 * Returns the result when it succeeded (caller PQclears), else NULL with the
 * error set.
 */
static PGresult *run(struct db_conn *c, const char *sql, int nparams, const char *const *params,
                     const int *lengths, const int *formats, int result_binary)
{
    int budget = answer_deadline_ms(c);
    int64_t deadline = ju_mono_ms() + budget;
    PGresult *r;
    ExecStatusType st;
    int sent;

    /* Without parameters the simple protocol runs (migrations are several
     * statements in one string); with them, the extended one. */
    if (nparams == 0 && !result_binary)
        sent = PQsendQuery(c->pg, sql);
    else
        sent =
            PQsendQueryParams(c->pg, sql, nparams, NULL, params, lengths, formats, result_binary);
    if (!sent) {
        set_error(c, PQerrorMessage(c->pg), NULL, PQstatus(c->pg) != CONNECTION_OK);
        if (c->unavailable)
            drop(c);
        return NULL;
    }
    r = await_result(c, deadline, budget);
    if (r == NULL)
        return NULL;
    st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    if (PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL)
        set_error(c, PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY),
                  PQresultErrorField(r, PG_DIAG_SQLSTATE), PQstatus(c->pg) != CONNECTION_OK);
    else
        set_error(c, PQerrorMessage(c->pg), NULL, PQstatus(c->pg) != CONNECTION_OK);
    PQclear(r);
    if (c->unavailable)
        drop(c);
    return NULL;
}

int db_connect(struct db_conn *c)
{
    struct db_conninfo ci;
    char sql[64];
    PGresult *r;

    drop(c);
    db_conninfo_build(&ci, c->url, c->app, c->role, c->connect_timeout_ms);
    c->pg = PQconnectdbParams(ci.keywords, ci.values, 1);
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        set_error(c, c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory", NULL, 1);
        drop(c);
        return -1;
    }
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        set_error(c, PQerrorMessage(c->pg), NULL, 1);
        drop(c);
        return -1;
    }
    /* Short statements only: never let one hang a thread for long. A
     * connection whose timeout could not be set is not used at all. */
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d", c->statement_timeout_ms);
    r = run(c, sql, 0, NULL, NULL, NULL, 0);
    if (r == NULL) {
        char why[sizeof(c->error)], state[sizeof(c->sqlstate)];

        /* copies first: set_error writes where they come from */
        snprintf(why, sizeof(why), "could not set statement_timeout: %.200s", c->error);
        snprintf(state, sizeof(state), "%s", c->sqlstate);
        set_error(c, why, state, c->unavailable);
        drop(c);
        return -1;
    }
    PQclear(r);
    return 0;
}

PGresult *db_exec(struct db_conn *c, const char *sql, int nparams, const char *const *params)
{
    return db_exec_ex(c, sql, nparams, params, NULL, NULL, 0);
}

/*
 * 1 when an idle connection has something to read: the server closed it
 * (a restart, an operator's pg_terminate_backend) and its farewell (a FATAL
 * error, then EOF) is waiting in the socket. libpq takes an error on an
 * idle connection for a notice and keeps the connection "OK", so it is not
 * asked: anything unexpected on an idle connection retires it (at worst a
 * stray notice costs a reconnect).
 */
static int closed_while_idle(struct db_conn *c)
{
    struct pollfd p = {PQsocket(c->pg), POLLIN, 0};

    return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

PGresult *db_exec_ex(struct db_conn *c, const char *sql, int nparams, const char *const *params,
                     const int *lengths, const int *formats, int result_binary)
{
    /* A connection found dead before anything was sent is replaced: the
     * statement has not run, so trying it on a new one is safe. */
    if ((c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK || closed_while_idle(c)) &&
        db_connect(c) < 0)
        return NULL;
    return run(c, sql, nparams, params, lengths, formats, result_binary);
}

int db_command(struct db_conn *c, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = db_exec(c, sql, nparams, params);

    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}

const char *db_error(const struct db_conn *c)
{
    return c->error;
}

const char *db_sqlstate(const struct db_conn *c)
{
    return c->sqlstate;
}

int db_unavailable(const struct db_conn *c)
{
    return c->unavailable;
}

int db_used_password(const struct db_conn *c)
{
    return c->pg != NULL && PQconnectionUsedPassword(c->pg);
}
