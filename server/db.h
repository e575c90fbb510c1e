/*
 * db.h: PostgreSQL connections for core, the only process that talks to the
 * database: single blocking connections that reconnect on demand, for the
 * threads that may wait (migrations at start, the control-plane pool of
 * ctlpool.h, the artifact thread). The event loop uses dbq.h instead.
 *
 * A connection is used by one thread at a time. A lost connection is reset before the
 * next statement, never in the middle of one, so a statement is never sent
 * twice.
 *
 * Nothing here waits without a deadline: connecting is bounded by
 * connect_timeout (libpq's, in whole seconds), and every statement by its
 * statement_timeout plus DB_ANSWER_MARGIN_MS on our side. When that client
 * deadline passes (a frozen server, a dead link that TCP has not noticed)
 * the connection is dropped and the statement fails with "database did not
 * answer within N ms" and db_unavailable() set.
 */
#ifndef WF_DB_H
#define WF_DB_H

#include <stddef.h>

#include <libpq-fe.h>

struct db_conn;

/* How long past statement_timeout a client waits before it decides that the
 * server will not answer at all (db.c and dbq.c). */
#define DB_ANSWER_MARGIN_MS 2000

/* TCP settings every connection of this process uses, so that a peer that
 * vanished is noticed by the kernel too, not only by our deadlines. */
#define DB_KEEPALIVES_IDLE_S "10"
#define DB_KEEPALIVES_INTERVAL_S "5"
#define DB_KEEPALIVES_COUNT "3"
#define DB_TCP_USER_TIMEOUT_MS "10000"

/*
 * The keyword/value arrays for PQconnectdbParams or PQconnectStartParams
 * with expand_dbname = 1. Filled by db_conninfo_build; borrows url.
 */
#define DB_CONNINFO_MAX 10
struct db_conninfo {
    const char *keywords[DB_CONNINFO_MAX + 1];
    const char *values[DB_CONNINFO_MAX + 1];
    char connect_timeout[16];
    char application_name[64];
};

/*
 * Fills ci for one connection: TCP keepalives and tcp_user_timeout, and
 * connect_timeout when connect_timeout_ms > 0 (rounded up to whole seconds,
 * at least 2: libpq's unit and minimum), all before the URL, so settings in
 * the URL override them; then application_name "<app>:<role>" after it, so
 * ours wins (app NULL: "wf-server"; the name is cut at 63 bytes, the
 * server's limit). ci->keywords/values stay valid while ci and url do.
 */
void db_conninfo_build(struct db_conninfo *ci, const char *url, const char *app, const char *role,
                       int connect_timeout_ms);

/* Options of a blocking connection; a zeroed struct means the defaults. */
struct db_options {
    const char *app_name;     /* application_name prefix; NULL: "wf-server" */
    const char *role;         /* its suffix; NULL: "http" */
    int connect_timeout_ms;   /* 0: 5000 */
    int statement_timeout_ms; /* 0: 30000; SET at every connect, checked */
};

/* Validates a connection string without connecting. Returns 0, or -1 with a
 * reason in err. */
int db_check_url(const char *url, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Allocates a connection (not yet connected) with the default options; NULL
 * on ENOMEM. url must outlive it. */
struct db_conn *db_conn_new(const char *url);

/* The same with options (opt NULL: defaults). The option strings are
 * copied; url must outlive the connection. */
struct db_conn *db_conn_new_ex(const char *url, const struct db_options *opt);
void db_conn_free(struct db_conn *c);

/* Connects (or reconnects) now: libpq's connect with connect_timeout, then
 * SET statement_timeout, checked. Returns 0,
 * or -1 with db_error() set (and no connection kept). */
int db_connect(struct db_conn *c) __attribute__((warn_unused_result));

/*
 * Runs one statement with text parameters (params may contain NULLs),
 * connecting first if needed, and waits for its answer no longer than
 * statement_timeout + DB_ANSWER_MARGIN_MS. Returns the result if it
 * succeeded (caller PQclears it), else NULL with db_error() and
 * db_sqlstate() describing why and db_unavailable() telling if the
 * connection, rather than the statement, failed (then the connection is
 * dropped and the next call reconnects).
 */
PGresult *db_exec(struct db_conn *c, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));

/* db_exec with binary-capable parameters (lengths/formats as PQexecParams;
 * NULL for all-text) and results in binary when result_binary is set. */
PGresult *db_exec_ex(struct db_conn *c, const char *sql, int nparams, const char *const *params,
                     const int *lengths, const int *formats, int result_binary)
    __attribute__((warn_unused_result));

/* Like db_exec for statements whose rows do not matter: 0 or -1. */
int db_command(struct db_conn *c, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));

/* 1 when the connection is up and the server asked for a password to
 * open it (libpq's PQconnectionUsedPassword), else 0. */
int db_used_password(const struct db_conn *c);

const char *db_error(const struct db_conn *c);
const char *db_sqlstate(const struct db_conn *c); /* "" when none */
int db_unavailable(const struct db_conn *c);

#endif
