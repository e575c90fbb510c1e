/*
 * db.h: PostgreSQL connections for core, the only process that talks to the
 * database: single connections that reconnect on demand, and a small pool
 * shared by the HTTP threads.
 *
 * A connection is used by one thread at a time (the dispatcher owns one;
 * HTTP threads borrow from the pool). A lost connection is reset before the
 * next statement, never in the middle of one, so a statement is never sent
 * twice.
 */
#ifndef WF_DB_H
#define WF_DB_H

#include <libpq-fe.h>

struct db_conn;
struct db_pool;

/* Validates a connection string without connecting. Returns 0, or -1 with a
 * reason in err. */
int db_check_url(const char *url, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Allocates a connection (not yet connected); NULL on ENOMEM. url must
 * outlive it. */
struct db_conn *db_conn_new(const char *url);
void db_conn_free(struct db_conn *c);

/* Statements run after every (re)connect, e.g. "SET synchronous_commit =
 * off" (sql must outlive c), and now if connected. Returns 0 or -1. */
int db_conn_set_session(struct db_conn *c, const char *sql) __attribute__((warn_unused_result));

/* Connects (or reconnects) now. Returns 0, or -1 with db_error() set. */
int db_connect(struct db_conn *c) __attribute__((warn_unused_result));

/*
 * Runs one statement with text parameters (params may contain NULLs),
 * connecting first if needed. Returns the result if it succeeded (caller
 * PQclears it), else NULL with db_error() and db_sqlstate() describing why
 * and db_unavailable() telling if the connection, rather than the statement,
 * failed.
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

const char *db_error(const struct db_conn *c);
const char *db_sqlstate(const struct db_conn *c); /* "" when none */
int db_unavailable(const struct db_conn *c);

/* A pool of size lazily connected connections. */
struct db_pool *db_pool_new(const char *url, int size);
void db_pool_free(struct db_pool *p);
/* Borrows a connection, waiting up to timeout_ms; NULL if none came free. */
struct db_conn *db_pool_get(struct db_pool *p, int timeout_ms);
void db_pool_put(struct db_pool *p, struct db_conn *c);

#endif
