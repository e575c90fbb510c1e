/*
 * dbq.h: core's asynchronous PostgreSQL layer (DESIGN.md §2.1): pipelined
 * statements with group commit, multi-row coalescing, LISTEN, and a health
 * signal, all on the event loop's thread without ever blocking it.
 *
 * Connections (dbq_conn.c): one per class (durable, fast, insert) plus one for
 * LISTEN once dbq_listen was called. Each is connected with
 * PQconnectStartParams and driven by socket events (connect_timeout_ms is
 * our own deadline), then put in non-blocking pipeline mode, and
 * reconnected after any loss with a backoff of 100 ms doubling to 5 s. A
 * statement text used twice in a session runs as a named prepared
 * statement from then on (parse and plan once per connection).
 *
 * Group commit: everything submitted for a class during one loop turn goes
 * out at the end of the turn as ONE batch, BEGIN, the statements in
 * submission order, COMMIT, one sync; while a batch is in flight, new
 * statements wait and form the next batch, sent as soon as the previous one
 * is answered. A caller hears about its statement only after that COMMIT
 * succeeded (or when its fate is otherwise final): never earlier.
 *
 * Outcomes, exactly one callback per accepted statement:
 *   - DBQ_OK: committed (a read: answered);
 *   - DBQ_FAILED: the statement itself failed and was rolled back; the other
 *     statements of its batch are sent again (nothing of it was committed),
 *     so one bad statement fails alone;
 *   - DBQ_UNKNOWN: the connection was lost after the batch was sent and
 *     before its COMMIT was seen; only statements not marked
 *     DBQ_RETRY_SAFE get this (retry-safe ones are sent again);
 *   - DBQ_UNAVAILABLE: never committed: the class's connection stayed down
 *     for wait_ms (DBQ_PERSIST ones wait as long as it takes), the class's
 *     queue held queue_max statements, or the layer was freed.
 *
 * Threads: every function here must be called on the loop thread, and every
 * callback (done, notify, health) is called on it, never from inside the
 * function that submitted or registered it. A callback may submit new
 * statements; it must not call dbq_free, nor run the loop (loop_turn).
 */
#ifndef WF_DBQ_H
#define WF_DBQ_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

struct loop;
struct dbq;
struct dbq_rows;

/* Classes are independent streams: statements of one class commit in
 * submission order; statements of different classes in no given order. */
enum dbq_class {
    DBQ_DURABLE, /* synchronous_commit = on: checkpoints, leases, what a user set */
    DBQ_FAST,    /* synchronous_commit = off: heartbeats, derived status */
    DBQ_INSERT   /* synchronous_commit = on, on a connection of its own: inserts of
                    new rows that need no order with the durable stream (run
                    triggers), so that a second backend shares the work */
};
#define DBQ_NCLASSES 3

/* The statement carries its own key (ON CONFLICT DO NOTHING, a read): it
 * may be sent again after a lost connection. Submit reads with it. */
#define DBQ_RETRY_SAFE 0x1u
/* With DBQ_RETRY_SAFE: stays queued across an outage until it lands (no
 * wait_ms deadline; queue_max still applies). */
#define DBQ_PERSIST 0x2u

enum dbq_outcome {
    DBQ_OK,         /* committed (a read: answered) */
    DBQ_FAILED,     /* the statement failed and was rolled back (sqlstate, message) */
    DBQ_UNKNOWN,    /* connection lost after sending and before its commit was seen */
    DBQ_UNAVAILABLE /* never sent or not committed: database down past wait_ms, queue full,
                       shutting down */
};

struct dbq_result {
    enum dbq_outcome outcome;
    const PGresult *res;  /* DBQ_OK: the statement's result (a template's: the whole
                             multi-row statement's); DBQ_FAILED: the error; else NULL.
                             Valid only during the callback */
    const char *sqlstate; /* DBQ_FAILED: the SQLSTATE ("" if none); else "" */
    const char *message;  /* "" for DBQ_OK; else why, one line */
};

/*
 * A statement's completion: called once per accepted statement, on the loop
 * thread, after its fate is final (see the outcomes above). r and what it
 * points to are valid only during the call.
 */
typedef void (*dbq_done_fn)(void *arg, const struct dbq_result *r);

/*
 * A notification on a channel registered with dbq_listen, on the loop
 * thread. payload NULL: the LISTEN connection was (re)established and the
 * channel is listened to again; notifications may have been missed before,
 * so the callee should re-read whatever state they announce.
 */
typedef void (*dbq_notify_fn)(void *arg, const char *channel, const char *payload);

/* A change of dbq_healthy(), on the loop thread. */
typedef void (*dbq_health_fn)(void *arg, int healthy);

/* Settings; 0 (or NULL) means the default in brackets. */
struct dbq_config {
    const char *url;          /* the database URL or conninfo string (copied) */
    const char *app_name;     /* application_name prefix ["wf-server"]: the
                                 connections are "<app>:durable", ":fast", ":listen" */
    int connect_timeout_ms;   /* connect + session setup [5000] */
    int statement_timeout_ms; /* SET statement_timeout [30000]; a request with no
                                 answer for this + DB_ANSWER_MARGIN_MS counts as a
                                 lost connection (a frozen server) */
    int health_ms;            /* unhealthy when a request waits longer [2000];
                                 idle connections are probed every health_ms / 2 */
    int queue_max;            /* statements queued per class [100000] */
    int wait_ms;              /* how long a statement waits for a connection [5000] */
};

/* Batch-size histogram: bucket i counts committed batches that served at
 * most 2^i statements (rows counted one by one); the last is everything
 * larger (2^(DBQ_HIST_BUCKETS-2) = 1024 < n). */
#define DBQ_HIST_BUCKETS 12

struct dbq_stats {
    uint64_t batches;        /* batches sent (BEGIN ... COMMIT) */
    uint64_t commits;        /* batches whose COMMIT succeeded */
    uint64_t statements;     /* statements sent in batches; a multi-row statement counts once */
    uint64_t rows_coalesced; /* template rows committed as part of a multi-row statement */
    uint64_t ok, failed, unknown, unavailable; /* callbacks by outcome */
    uint64_t requeued;    /* statements sent again (aborted batch, lost connection) */
    uint64_t disconnects; /* ready connections lost */
    uint64_t reconnects;  /* connections established again after a loss */
    uint64_t probes;      /* empty syncs sent to idle connections */
    uint64_t queue_depth; /* statements waiting now, all classes */
    uint64_t in_flight;   /* statements in batches in flight now */
    uint64_t batch_hist[DBQ_HIST_BUCKETS];
};

/*
 * Creates the layer on loop l (not yet connecting: see dbq_start) and
 * registers its end-of-turn hook. Returns it, or NULL (ENOMEM, or the loop's
 * hook table is full; errno set). Free with dbq_free.
 */
struct dbq *dbq_new(struct loop *l, const struct dbq_config *cfg);

/* Starts connecting every connection in use (asynchronously; a host name is
 * resolved synchronously by libpq, so use addresses where that matters).
 * Returns 0. */
int dbq_start(struct dbq *q);

/*
 * Frees the layer: first every statement still pending gets its callback,
 * DBQ_UNAVAILABLE when queued, DBQ_UNKNOWN (or DBQ_OK when its commit was
 * already seen) when in flight, then the connections are closed. Use it at
 * shutdown, after dbq_idle() turned 1 if nothing should be lost. Its
 * end-of-turn hook and timers are removed, so the loop may go on.
 */
void dbq_free(struct dbq *q);

/*
 * Submits one statement of class cls: sql with nparams parameters as for
 * PQexecParams (values NULL = SQL NULL; lengths/formats may be NULL for all
 * text). sql must outlive the statement (use literals); the parameters are
 * copied. flags: DBQ_RETRY_SAFE, DBQ_PERSIST (only with DBQ_RETRY_SAFE).
 * Returns 0 and done(arg, ...) will be called exactly once, later, on the
 * loop thread; or -1 with errno ENOMEM, EINVAL (bad class, flags or
 * parameters) or ESHUTDOWN (inside dbq_free), and done is never called.
 */
int dbq_exec(struct dbq *q, enum dbq_class cls, unsigned flags, const char *sql, int nparams,
             const char *const *params, const int *lengths, const int *formats, dbq_done_fn done,
             void *arg) __attribute__((warn_unused_result));

/*
 * A multi-row template: sql takes one array parameter per column, e.g.
 * "INSERT INTO t (k, v) SELECT * FROM unnest($1::text[], $2::bigint[])".
 * The rows submitted with dbq_row that go out in one batch become ONE
 * statement, placed where the first of them was submitted, whose arrays
 * hold every row's values; each row's callback gets that statement's
 * outcome. If it fails, its rows are sent again one by one, so only a bad
 * row fails. Returns the template (owned by q, freed by dbq_free), or NULL
 * (ENOMEM, EINVAL: ncols outside 1..DBQ_ROWS_MAX_COLS). sql must outlive q.
 */
#define DBQ_ROWS_MAX_COLS 100
struct dbq_rows *dbq_rows_new(struct dbq *q, enum dbq_class cls, unsigned flags, const char *sql,
                              int ncols);

/* Submits one row: ncols text values (copied; NULL = SQL NULL). Returns and
 * calls back as dbq_exec. */
int dbq_row(struct dbq_rows *s, const char *const *values, dbq_done_fn done, void *arg)
    __attribute__((warn_unused_result));

/*
 * Listens on channel (copied) on the LISTEN connection, starting it if
 * needed: fn gets every notification, and payload NULL each time the
 * channel is listened to anew (after the first LISTEN and after every
 * reconnect). Returns 0, or -1 (ENOMEM, ESHUTDOWN).
 */
int dbq_listen(struct dbq *q, const char *channel, dbq_notify_fn fn, void *arg)
    __attribute__((warn_unused_result));

/*
 * 1 when every connection in use is ready and none has had a request (a
 * batch or a probe) unanswered for longer than health_ms; else 0 (and
 * before dbq_start).
 */
int dbq_healthy(const struct dbq *q);

/* Calls fn(arg, healthy) at each change of dbq_healthy() (one callback). */
void dbq_on_health(struct dbq *q, dbq_health_fn fn, void *arg);

/* 1 when nothing is queued, in flight or awaiting its callback. */
int dbq_idle(const struct dbq *q);

void dbq_stats(const struct dbq *q, struct dbq_stats *out);

/*
 * The PostgreSQL array literal of n text values (NULL = SQL NULL): every
 * element double-quoted with '"' and '\' backslash-escaped, so any text
 * (commas, braces, blanks, "NULL", any UTF-8) reads back as itself.
 * Returns it malloc'ed and NUL-terminated (caller frees) with its length in
 * *len (may be NULL), or NULL on ENOMEM.
 */
char *dbq_array_literal(const char *const *values, size_t n, size_t *len);

#endif
