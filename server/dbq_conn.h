/*
 * dbq_conn.h: one non-blocking, pipeline-mode PostgreSQL connection on the
 * event loop, the building block of dbq.c (prefix dbqc_).
 *
 * A connection connects by itself (PQconnectStartParams driven by socket
 * events, with our own deadline; after a failure it retries with a backoff
 * of 100 ms doubling to 5 s), sets statement_timeout and whatever session
 * statements its owner adds, and then runs its owner's requests one at a
 * time: a list of statements followed by one sync, sent with
 * dbqc_send and handed back, every statement's result filled in, through
 * the done callback. It probes itself with an empty sync when idle, so its
 * health means something, and counts a request unanswered for
 * statement_timeout + DB_ANSWER_MARGIN_MS as a lost connection (a frozen
 * server). Statements marked cacheable run as named prepared statements
 * from their second use in a session on; a prepared statement that fails
 * for a reason of its own (its Parse, a stale plan) is reported as
 * DBQC_RETRY, never as the statement's failure.
 *
 * Everything runs on the loop's thread, and so do the callbacks. A
 * callback may call dbqc_send (the connection is consistent when it runs);
 * it must not free the connection.
 */
#ifndef WF_DBQ_CONN_H
#define WF_DBQ_CONN_H

#include <stdint.h>

#include <libpq-fe.h>

struct loop;
struct dbqc;

enum dbqc_status {
    DBQC_PENDING, /* no result yet */
    DBQC_OK,      /* it succeeded; res is its result */
    DBQC_FAILED,  /* it failed; res is the error */
    DBQC_ABORTED, /* skipped: an earlier statement of the request failed */
    DBQC_RETRY    /* failed for a reason of ours (a prepared statement), not its own:
                     nothing of the request was committed, send it again */
};

/* One statement of a request. */
struct dbqc_stmt {
    /* the owner's: */
    const char *sql; /* must stay valid until dbqc_send returns */
    int nparams;
    const char *const *values; /* as PQexecParams; valid until dbqc_send returns */
    const int *lengths;
    const int *formats;
    int cacheable; /* may run as a named prepared statement */
    void *tag;     /* anything */
    /* the connection's: */
    enum dbqc_status status;
    PGresult *res; /* see enum dbqc_status; owned by the request */
    int prep;      /* the prepared statement it uses, or -1 */
    int parse;     /* a Parse for prep is sent just before it */
};

/* A request: statements, then one sync. The owner embeds it, builds it with
 * dbqc_req_add and hands it to dbqc_send; after done or lost it reads the
 * results and calls dbqc_req_reset before building it again. */
struct dbqc_req {
    struct dbqc_stmt *s;
    int n, cap;
    /* the connection's: */
    int sent;      /* statements handed to libpq (all, once dbqc_send succeeded) */
    int failed_at; /* the first statement FAILED or RETRY, or -1 */
    int cur;       /* the statement the next result belongs to */
    int parsed;    /* the Parse before s[cur] was answered */
};

/* Appends a statement (zeroed but for sql; text, no parameters) and returns
 * it, or NULL (ENOMEM; r is unchanged). Pointers returned earlier may move:
 * hold indexes. */
struct dbqc_stmt *dbqc_req_add(struct dbqc_req *r, const char *sql);
/* Clears the results; the request is empty again (its memory is kept). */
void dbqc_req_reset(struct dbqc_req *r);
/* Frees what the request holds (dbqc_req_reset first). */
void dbqc_req_free(struct dbqc_req *r);

/* What the connection tells its owner, on the loop thread. */
struct dbqc_ops {
    /* Connected: add the session statements (after SET statement_timeout)
     * to setup. Return 0, or -1 to give up this attempt (retried). */
    int (*setup)(void *arg, struct dbqc *c, struct dbqc_req *setup);
    /* The session is set up (every setup statement succeeded): READY. */
    void (*ready)(void *arg, struct dbqc *c, const struct dbqc_req *setup);
    /* r's sync arrived: every statement has its status. The connection is
     * idle again (dbqc_send may be called); r is the owner's again. */
    void (*done)(void *arg, struct dbqc *c, struct dbqc_req *r);
    /* The connection failed or was lost; r is the request that was in
     * flight (NULL if none; its statements' statuses say how far it got,
     * r->sent how much of it libpq had), the owner's again. was_ready: it
     * had been READY (an outage starts). */
    void (*lost)(void *arg, struct dbqc *c, struct dbqc_req *r, int was_ready);
    /* A notification (LISTEN); n is valid during the call. May be NULL. */
    void (*notify)(void *arg, struct dbqc *c, const PGnotify *n);
};

struct dbqc_config {
    const char *url;
    const char *app_name;     /* application_name is "<app_name>:<role>" */
    const char *role;         /* e.g. "durable"; also names it in the log */
    int connect_timeout_ms;   /* connect and session setup */
    int statement_timeout_ms; /* SET for the session; + DB_ANSWER_MARGIN_MS: lost */
    int health_ms;            /* unhealthy past this without an answer; probe at half */
};

/* A connection (not connecting yet: dbqc_start). The strings of cfg are
 * copied. Returns it, or NULL (ENOMEM). */
struct dbqc *dbqc_new(struct loop *l, const struct dbqc_config *cfg, const struct dbqc_ops *ops,
                      void *arg);
/* Closes the connection without any callback; a request in flight is the
 * owner's again (check it first with dbqc_in_flight). */
void dbqc_free(struct dbqc *c);

/* Starts connecting (once; later calls do nothing). */
void dbqc_start(struct dbqc *c);

/* 1 when READY with nothing in flight: dbqc_send may be called. */
int dbqc_idle(const struct dbqc *c);
/* The owner's request in flight, or NULL. */
struct dbqc_req *dbqc_in_flight(const struct dbqc *c);
/* 1 when READY and nothing has waited for an answer longer than health_ms. */
int dbqc_healthy(const struct dbqc *c);
/* 1 when READY. */
int dbqc_ready(const struct dbqc *c);
/* Empty syncs sent to probe it so far. */
uint64_t dbqc_probes(const struct dbqc *c);
/* 1 when the last request left the session inside a transaction block (an
 * aborted one: the next request should start with ROLLBACK). */
int dbqc_txn_open(const struct dbqc *c);
/* Drops the connection now (it reconnects with backoff); the lost callback
 * runs before this returns. For a session that is not what the owner
 * expects. */
void dbqc_drop(struct dbqc *c, const char *why);

/*
 * Sends r (at least one statement) and a sync. Returns 0; or -1 when the
 * connection failed meanwhile (then lost(.., r, ..) has already been
 * called and r is the owner's again), or with errno EBUSY when c was not
 * idle or r empty (nothing happened).
 */
int dbqc_send(struct dbqc *c, struct dbqc_req *r);

#endif
