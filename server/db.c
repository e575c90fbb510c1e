/*
 * db.c: see db.h. Every PGresult is cleared on every path; errors are logged
 * by the caller, who knows what the statement was for.
 */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct db_conn {
    const char *url;
    const char *session_sql; /* run after every connect, or NULL */
    PGconn *pg;
    char error[256];
    char sqlstate[6];
    int unavailable;
};

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct db_conn **free_conns;
    int nfree;
    int size;
    struct db_conn **all;
};

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

struct db_conn *db_conn_new(const char *url)
{
    struct db_conn *c = calloc(1, sizeof(*c));

    if (c != NULL)
        c->url = url;
    return c;
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

int db_connect(struct db_conn *c)
{
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->pg = PQconnectdb(c->url);
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        set_error(c, c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory", NULL, 1);
        if (c->pg != NULL) {
            PQfinish(c->pg);
            c->pg = NULL;
        }
        return -1;
    }
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    /* Short statements only: never let one hang a thread for long. */
    PGresult *r =
        PQexec(c->pg, "SET statement_timeout = '30s'; SET application_name = 'wf-server'");
    PQclear(r);
    if (c->session_sql != NULL) {
        r = PQexec(c->pg, c->session_sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            set_error(c, PQerrorMessage(c->pg), NULL, 0);
            PQclear(r);
            PQfinish(c->pg);
            c->pg = NULL;
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

int db_conn_set_session(struct db_conn *c, const char *sql)
{
    c->session_sql = sql;
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK)
        return 0;
    return db_command(c, sql, 0, NULL);
}

PGresult *db_exec(struct db_conn *c, const char *sql, int nparams, const char *const *params)
{
    return db_exec_ex(c, sql, nparams, params, NULL, NULL, 0);
}

PGresult *db_exec_ex(struct db_conn *c, const char *sql, int nparams, const char *const *params,
                     const int *lengths, const int *formats, int result_binary)
{
    PGresult *r;
    ExecStatusType st;

    if ((c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) && db_connect(c) < 0)
        return NULL;
    /* Without parameters the simple protocol runs (migrations are several
     * statements in one string); with them, the extended one. */
    if (nparams == 0 && !result_binary)
        r = PQexec(c->pg, sql);
    else
        r = PQexecParams(c->pg, sql, nparams, NULL, params, lengths, formats, result_binary);
    st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    if (r != NULL && PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL)
        set_error(c, PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY),
                  PQresultErrorField(r, PG_DIAG_SQLSTATE), PQstatus(c->pg) != CONNECTION_OK);
    else
        set_error(c, PQerrorMessage(c->pg), NULL, PQstatus(c->pg) != CONNECTION_OK);
    PQclear(r);
    return NULL;
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

struct db_pool *db_pool_new(const char *url, int size)
{
    struct db_pool *p = calloc(1, sizeof(*p));

    pthread_condattr_t ca;

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->free_conns = calloc((size_t)size, sizeof(*p->free_conns));
    p->all = calloc((size_t)size, sizeof(*p->all));
    if (p->free_conns == NULL || p->all == NULL) {
        db_pool_free(p);
        return NULL;
    }
    for (int i = 0; i < size; i++) {
        p->all[i] = db_conn_new(url);
        if (p->all[i] == NULL) {
            db_pool_free(p);
            return NULL;
        }
        p->size++;
        p->free_conns[p->nfree++] = p->all[i];
    }
    return p;
}

void db_pool_free(struct db_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->size; i++)
        db_conn_free(p->all[i]);
    free(p->all);
    free(p->free_conns);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

struct db_conn *db_pool_get(struct db_pool *p, int timeout_ms)
{
    struct timespec until;
    struct db_conn *c = NULL;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT)
            break;
    }
    if (p->nfree > 0)
        c = p->free_conns[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    return c;
}

void db_pool_put(struct db_pool *p, struct db_conn *c)
{
    pthread_mutex_lock(&p->mu);
    p->free_conns[p->nfree++] = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
