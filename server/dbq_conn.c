/*
 * dbq_conn.c: see dbq_conn.h.
 *
 * Invariants:
 *   - At most one request is in flight: the session setup, an owner's
 *     request or a probe. Every result libpq returns before the request's
 *     sync belongs to one of its statements, in order, or to the Parse sent
 *     just before a statement (stmt->parse); a result anywhere else is a
 *     protocol confusion, handled as a lost connection.
 *   - The prepared-statement cache describes this session only: it is
 *     emptied at every connect, and a slot is PARSING only while its Parse
 *     is in the request in flight.
 *   - Callbacks are called last, with the connection consistent: a done
 *     callback finds it idle, a lost callback finds it DOWN.
 *
 * Errors: a failure to connect or a loss is logged once per outage
 * (warning), the recovery at info, repeats at debug.
 */
#include "dbq_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "db.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"

#define DBQC_BACKOFF_MIN_MS 100
#define DBQC_BACKOFF_MAX_MS 5000
#define DBQC_PREP_MAX 256   /* prepared statements per session */
#define DBQC_PREP_SLOTS 512 /* their open-addressing table (a power of two) */

/* A connection's life; conn_step() moves it along. */
enum dbqc_state {
    DBQC_IDLE,       /* not started */
    DBQC_DOWN,       /* no connection; the next attempt at retry_at */
    DBQC_CONNECTING, /* PQconnectPoll driven by socket events, until deadline */
    DBQC_SETUP,      /* connected; the session statements are in flight */
    DBQC_READY       /* running the owner's requests; probed when idle */
};

enum dbqc_req_kind {
    DBQC_REQ_NONE,  /* nothing in flight */
    DBQC_REQ_SETUP, /* the session setup (c->setup) */
    DBQC_REQ_OWNER, /* an owner's request (c->req) */
    DBQC_REQ_PROBE  /* an empty sync: is the server answering? */
};

enum dbqc_prep_state {
    DBQC_PS_SEEN,    /* used once, unnamed */
    DBQC_PS_PARSING, /* its Parse is in the request in flight */
    DBQC_PS_READY,   /* prepared in this session */
    DBQC_PS_NEVER    /* its Parse or a use failed: unnamed from now on */
};

struct dbqc_prep {
    char *sql; /* NULL: a free slot */
    uint32_t hash;
    enum dbqc_prep_state state;
};

struct dbqc {
    struct loop *loop;
    char *url;
    char app[48];
    char role[24];
    int connect_timeout_ms, statement_timeout_ms, health_ms;
    const struct dbqc_ops *ops;
    void *arg;
    enum dbqc_state state;
    PGconn *pg;
    struct loop_watch watch;
    struct loop_timer timer;
    int64_t retry_at;    /* DOWN: when to try again */
    int64_t deadline;    /* CONNECTING: when to give up */
    int backoff_ms;      /* the delay after the next failure */
    int failing;         /* this outage was logged */
    int txn_open;        /* the last sync left the session in a transaction block */
    int want_write;      /* libpq holds unsent data: EPOLLOUT wanted */
    int64_t progress_at; /* the request in flight was sent or last answered */
    int64_t idle_since;  /* the last request ended */
    enum dbqc_req_kind kind;
    struct dbqc_req *req; /* the request in flight (setup or owner's) */
    struct dbqc_req setup;
    char timeout_sql[48];
    char read_error[256];   /* why the last read failed, or "" */
    struct dbqc_prep *prep; /* DBQC_PREP_SLOTS slots, or NULL */
    int nprep;
    uint64_t probes;
};

static void conn_step(struct dbqc *c, uint32_t events);
static void conn_arm(struct dbqc *c);
static void on_io(void *arg, uint32_t events);

static int64_t now_ms(void)
{
    return ju_mono_ms();
}

/* Copies a libpq message into buf as one line (each run of blanks, tabs
 * and newlines becomes one blank, none at the end); returns buf. */
static const char *one_line(char *buf, size_t size, const char *msg)
{
    size_t n = 0;

    if (msg == NULL || msg[0] == '\0')
        msg = "unknown error";
    for (; *msg != '\0' && n + 1 < size; msg++) {
        int blank = *msg == ' ' || *msg == '\n' || *msg == '\t' || *msg == '\r';

        if (!blank)
            buf[n++] = *msg;
        else if (n > 0 && buf[n - 1] != ' ')
            buf[n++] = ' ';
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

/* ---- requests ----------------------------------------------------------- */

struct dbqc_stmt *dbqc_req_add(struct dbqc_req *r, const char *sql)
{
    struct dbqc_stmt *s;

    if (r->n == r->cap) {
        int cap = r->cap > 0 ? r->cap * 2 : 16;

        s = realloc(r->s, (size_t)cap * sizeof(*s));
        if (s == NULL)
            return NULL;
        r->s = s;
        r->cap = cap;
    }
    s = &r->s[r->n++];
    memset(s, 0, sizeof(*s));
    s->sql = sql;
    s->prep = -1;
    return s;
}

void dbqc_req_reset(struct dbqc_req *r)
{
    for (int i = 0; i < r->n; i++) {
        PQclear(r->s[i].res);
        r->s[i].res = NULL;
    }
    r->n = 0;
    r->sent = 0;
    r->failed_at = -1;
    r->cur = 0;
    r->parsed = 0;
}

void dbqc_req_free(struct dbqc_req *r)
{
    dbqc_req_reset(r);
    free(r->s);
    r->s = NULL;
    r->cap = 0;
}

/* ---- the prepared-statement cache ---------------------------------------- */

static uint32_t hash_sql(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Empties the cache: a new session has no prepared statements. */
static void prep_reset(struct dbqc *c)
{
    for (int i = 0; c->prep != NULL && i < DBQC_PREP_SLOTS; i++) {
        free(c->prep[i].sql);
        c->prep[i].sql = NULL;
    }
    c->nprep = 0;
}

/*
 * Decides how s runs: unnamed at its first use in the session; from the
 * second on, as prepared statement "dbq<slot>", with a Parse before it
 * when it is not prepared yet. Sets s->prep and s->parse. A full cache or
 * ENOMEM only means unnamed.
 */
static void prep_choose(struct dbqc *c, struct dbqc_stmt *s)
{
    uint32_t h = hash_sql(s->sql);
    unsigned i = h & (DBQC_PREP_SLOTS - 1);
    struct dbqc_prep *p;

    if (c->prep == NULL) {
        c->prep = calloc(DBQC_PREP_SLOTS, sizeof(*c->prep));
        if (c->prep == NULL)
            return;
    }
    while (c->prep[i].sql != NULL && (c->prep[i].hash != h || strcmp(c->prep[i].sql, s->sql) != 0))
        i = (i + 1) & (DBQC_PREP_SLOTS - 1);
    p = &c->prep[i];
    if (p->sql == NULL) {
        if (c->nprep >= DBQC_PREP_MAX)
            return;
        p->sql = strdup(s->sql);
        if (p->sql == NULL)
            return;
        p->hash = h;
        p->state = DBQC_PS_SEEN;
        c->nprep++;
        return; /* first use: unnamed */
    }
    switch (p->state) {
    case DBQC_PS_SEEN:
        p->state = DBQC_PS_PARSING;
        s->parse = 1;
        s->prep = (int)i;
        break;
    case DBQC_PS_PARSING:
    case DBQC_PS_READY:
        s->prep = (int)i;
        break;
    case DBQC_PS_NEVER:
        break;
    }
}

/* ---- sending ------------------------------------------------------------ */

/* Watches the current socket of c for events, afresh: during a connect
 * libpq may close its socket and open another with the same number, which
 * epoll would have forgotten. Returns 0 or -1. */
static int conn_watch(struct dbqc *c, uint32_t events)
{
    int fd = PQsocket(c->pg);

    loop_del(c->loop, &c->watch);
    if (fd < 0)
        return -1;
    return loop_add(c->loop, &c->watch, fd, events, on_io, c);
}

/*
 * The connection failed or was lost (any state but IDLE and DOWN): closes
 * it, schedules the next attempt, and tells the owner, handing back its
 * request in flight.
 */
static void conn_drop(struct dbqc *c, const char *why)
{
    struct dbqc_req *r = c->kind == DBQC_REQ_OWNER ? c->req : NULL;
    int was_ready = c->state == DBQC_READY;
    int64_t now = now_ms();
    char line[512];

    one_line(line, sizeof(line), why); /* before PQfinish: why may be libpq's */
    if (!c->failing) {
        if (was_ready)
            log_warning("lost the %s connection to the database: %s", c->role, line);
        else
            log_warning("could not connect to the database (%s connection): %s", c->role, line);
        c->failing = 1;
    } else {
        log_debug("%s connection to the database failed again: %s", c->role, line);
    }
    loop_del(c->loop, &c->watch);
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = DBQC_DOWN;
    c->want_write = 0;
    c->txn_open = 0;
    c->kind = DBQC_REQ_NONE;
    c->req = NULL;
    dbqc_req_reset(&c->setup);
    c->retry_at = now + c->backoff_ms;
    c->backoff_ms =
        c->backoff_ms * 2 > DBQC_BACKOFF_MAX_MS ? DBQC_BACKOFF_MAX_MS : c->backoff_ms * 2;
    conn_arm(c);
    c->ops->lost(c->arg, c, r, was_ready);
}

/* Flushes what libpq holds and watches for EPOLLOUT only while some is
 * left. Returns 0, or -1 after dropping the connection. */
static int conn_flush(struct dbqc *c)
{
    int r = PQflush(c->pg);

    if (r < 0) {
        conn_drop(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->want_write = r == 1;
    if (loop_mod(c->loop, &c->watch, EPOLLIN | (c->want_write ? EPOLLOUT : 0)) < 0) {
        conn_drop(c, "could not watch the database socket");
        return -1;
    }
    return 0;
}

/* Hands r's statements and a sync to libpq as request kind, and flushes.
 * Returns 0, or -1 after dropping the connection. */
static int conn_send(struct dbqc *c, struct dbqc_req *r, enum dbqc_req_kind kind)
{
    char name[16];

    r->sent = 0;
    r->failed_at = -1;
    r->cur = 0;
    r->parsed = 0;
    c->kind = kind;
    c->req = r;
    for (int i = 0; i < r->n; i++) {
        struct dbqc_stmt *s = &r->s[i];
        int ok;

        s->status = DBQC_PENDING;
        s->prep = -1;
        s->parse = 0;
        if (s->cacheable)
            prep_choose(c, s);
        snprintf(name, sizeof(name), "dbq%d", s->prep);
        if (s->parse && !PQsendPrepare(c->pg, name, s->sql, 0, NULL)) {
            conn_drop(c, PQerrorMessage(c->pg));
            return -1;
        }
        if (s->prep >= 0)
            ok = PQsendQueryPrepared(c->pg, name, s->nparams, s->values, s->lengths, s->formats, 0);
        else
            ok = PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->values, s->lengths,
                                   s->formats, 0);
        if (!ok) {
            conn_drop(c, PQerrorMessage(c->pg));
            return -1;
        }
        r->sent++;
    }
    if (!PQpipelineSync(c->pg)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->progress_at = now_ms();
    return conn_flush(c);
}

int dbqc_send(struct dbqc *c, struct dbqc_req *r)
{
    if (!dbqc_idle(c) || r->n == 0) {
        errno = EBUSY;
        return -1;
    }
    if (conn_send(c, r, DBQC_REQ_OWNER) < 0)
        return -1;
    conn_arm(c);
    return 0;
}

/* An empty sync on an idle connection: its answer says the server lives. */
static void conn_probe(struct dbqc *c)
{
    c->kind = DBQC_REQ_PROBE;
    c->req = NULL;
    c->probes++;
    if (!PQpipelineSync(c->pg)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    c->progress_at = now_ms();
    conn_flush(c);
}

/* ---- connecting --------------------------------------------------------- */

static void on_notice(void *arg, const char *message)
{
    struct dbqc *c = arg;
    char line[512];

    log_debug("database notice (%s connection): %s", c->role,
              one_line(line, sizeof(line), message));
}

/* Starts connecting: CONNECTING, or DOWN again at once. */
static void conn_connect(struct dbqc *c)
{
    struct db_conninfo ci;

    c->state = DBQC_CONNECTING;
    c->deadline = now_ms() + c->connect_timeout_ms;
    /* connect_timeout is ours (the deadline): libpq ignores it here */
    db_conninfo_build(&ci, c->url, c->app, c->role, 0);
    c->pg = PQconnectStartParams(ci.keywords, ci.values, 1);
    if (c->pg == NULL) {
        conn_drop(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    /* libpq's rule: before the first PQconnectPoll, wait until writable */
    if (conn_watch(c, EPOLLOUT) < 0)
        conn_drop(c, "could not watch the database socket");
}

/* Connected: pipeline mode, then the session statements as one request. */
static void conn_established(struct dbqc *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    c->state = DBQC_SETUP;
    prep_reset(c);
    if (conn_watch(c, EPOLLIN) < 0) {
        conn_drop(c, "could not watch the database socket");
        return;
    }
    dbqc_req_reset(&c->setup);
    snprintf(c->timeout_sql, sizeof(c->timeout_sql), "SET statement_timeout = %d",
             c->statement_timeout_ms);
    if (dbqc_req_add(&c->setup, c->timeout_sql) == NULL) {
        conn_drop(c, "out of memory");
        return;
    }
    if (c->ops->setup(c->arg, c, &c->setup) < 0) {
        conn_drop(c, "could not build the session setup");
        return;
    }
    conn_send(c, &c->setup, DBQC_REQ_SETUP);
}

/* CONNECTING: one step of PQconnectPoll after a socket event. */
static void conn_connect_poll(struct dbqc *c)
{
    uint32_t ev;

    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_OK:
        conn_established(c);
        return;
    case PGRES_POLLING_READING:
        ev = EPOLLIN;
        break;
    case PGRES_POLLING_WRITING:
    case PGRES_POLLING_ACTIVE:
        ev = EPOLLOUT;
        break;
    case PGRES_POLLING_FAILED:
    default:
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    if (conn_watch(c, ev) < 0)
        conn_drop(c, "could not watch the database socket");
}

/* ---- results ------------------------------------------------------------ */

/* 1 for an error that ends the connection rather than the statement. */
static int connection_error(const PGconn *pg, const char *sqlstate)
{
    return sqlstate == NULL || strncmp(sqlstate, "08", 2) == 0 ||
           strncmp(sqlstate, "57P", 3) == 0 || PQstatus(pg) == CONNECTION_BAD;
}

/* A prepared statement that failed for a reason of its own: its plan went
 * stale under DDL (0A000) or it is gone (26000). */
static int prepared_error(const char *sqlstate)
{
    return sqlstate != NULL && (strcmp(sqlstate, "0A000") == 0 || strcmp(sqlstate, "26000") == 0);
}

/* The sync of the request in flight arrived. Returns 0, or -1 when the
 * connection was dropped meanwhile. */
static int conn_synced(struct dbqc *c)
{
    enum dbqc_req_kind kind = c->kind;
    struct dbqc_req *r = c->req;
    char why[512], line[400];

    if (kind == DBQC_REQ_NONE || (r != NULL && r->cur != r->n)) {
        conn_drop(c, "protocol confusion: a sync result out of place");
        return -1;
    }
    c->kind = DBQC_REQ_NONE;
    c->req = NULL;
    c->idle_since = now_ms();
    c->txn_open = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
    switch (kind) {
    case DBQC_REQ_SETUP:
        if (r->failed_at >= 0) {
            const PGresult *res = r->s[r->failed_at].res;

            snprintf(why, sizeof(why), "could not set up the session: %s",
                     one_line(line, sizeof(line),
                              res != NULL ? PQresultErrorMessage(res) : "unexpected result"));
            conn_drop(c, why);
            return -1;
        }
        c->state = DBQC_READY;
        c->backoff_ms = DBQC_BACKOFF_MIN_MS;
        if (c->failing) {
            log_info("the %s connection to the database is ready again", c->role);
            c->failing = 0;
        }
        conn_arm(c);
        c->ops->ready(c->arg, c, r);
        dbqc_req_reset(&c->setup);
        break;
    case DBQC_REQ_OWNER:
        conn_arm(c);
        c->ops->done(c->arg, c, r);
        break;
    case DBQC_REQ_PROBE:
    case DBQC_REQ_NONE:
        break;
    }
    return c->state == DBQC_READY ? 0 : -1;
}

/* Takes one result (not a sync) of request r. Returns 0, or -1 when the
 * connection was dropped. */
static int conn_result(struct dbqc *c, struct dbqc_req *r, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    struct dbqc_stmt *s = &r->s[r->cur];
    char msg[512];

    if (st == PGRES_FATAL_ERROR && connection_error(c->pg, sqlstate)) {
        /* libpq's first word on a broken read says it best */
        one_line(msg, sizeof(msg),
                 c->read_error[0] != '\0' ? c->read_error : PQresultErrorMessage(res));
        PQclear(res);
        conn_drop(c, msg);
        return -1;
    }
    if (s->parse && !r->parsed) {
        /* the answer to the Parse before s */
        r->parsed = 1;
        if (st == PGRES_COMMAND_OK) {
            c->prep[s->prep].state = DBQC_PS_READY;
        } else if (st == PGRES_PIPELINE_ABORTED) {
            c->prep[s->prep].state = DBQC_PS_SEEN; /* never reached the server */
        } else if (st == PGRES_FATAL_ERROR) {
            c->prep[s->prep].state = DBQC_PS_NEVER;
            s->status = DBQC_RETRY;
            s->res = res;
            if (r->failed_at < 0)
                r->failed_at = r->cur;
            return 0;
        } else {
            goto confused;
        }
        PQclear(res);
        return 0;
    }
    r->cur++;
    r->parsed = 0;
    switch (st) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        s->status = DBQC_OK;
        s->res = res;
        return 0;
    case PGRES_PIPELINE_ABORTED:
        if (s->status == DBQC_PENDING)
            s->status = DBQC_ABORTED;
        PQclear(res);
        return 0;
    case PGRES_FATAL_ERROR:
        if (s->prep >= 0 && prepared_error(sqlstate)) {
            c->prep[s->prep].state = DBQC_PS_NEVER;
            s->status = DBQC_RETRY;
        } else {
            s->status = DBQC_FAILED;
        }
        s->res = res;
        if (r->failed_at < 0)
            r->failed_at = r->cur - 1;
        return 0;
    default:
        break;
    }
confused:
    snprintf(msg, sizeof(msg), "unexpected result status %s", PQresStatus(st));
    PQclear(res);
    conn_drop(c, msg);
    return -1;
}

/* One result of whatever is in flight. Returns 0, or -1 when the
 * connection was dropped. */
static int conn_take(struct dbqc *c, PGresult *res)
{
    char msg[96];

    if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        return conn_synced(c);
    }
    if (c->req == NULL || c->req->cur >= c->req->n) {
        snprintf(msg, sizeof(msg), "protocol confusion: an unexpected %s result",
                 PQresStatus(PQresultStatus(res)));
        PQclear(res);
        conn_drop(c, msg);
        return -1;
    }
    c->progress_at = now_ms();
    return conn_result(c, c->req, res);
}

/* Hands the notifications libpq has read to the owner. */
static void conn_notifies(struct dbqc *c)
{
    PGnotify *n;

    while ((n = PQnotifies(c->pg)) != NULL) {
        if (c->ops->notify != NULL)
            c->ops->notify(c->arg, c, n);
        PQfreemem(n);
    }
}

/*
 * SETUP or READY, the socket is readable: reads, then takes every result
 * that is complete. Results are separated by NULLs; two NULLs in a row
 * while libpq is not busy mean nothing more is there. Even when the read
 * failed (EOF), what arrived before it is taken: a COMMIT's result just
 * before the end still counts.
 */
static void conn_read(struct dbqc *c)
{
    int ok = PQconsumeInput(c->pg);
    int nulls = 0;

    c->read_error[0] = '\0';
    if (!ok)
        one_line(c->read_error, sizeof(c->read_error), PQerrorMessage(c->pg));
    conn_notifies(c);
    if (ok && c->want_write && conn_flush(c) < 0)
        return;
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);

        if (res == NULL) {
            if (++nulls >= 2)
                break;
            continue;
        }
        nulls = 0;
        if (conn_take(c, res) < 0)
            return;
    }
    conn_notifies(c);
    if (!ok || PQstatus(c->pg) == CONNECTION_BAD)
        conn_drop(c, ok ? PQerrorMessage(c->pg) : c->read_error);
}

/* ---- the state machine -------------------------------------------------- */

/* How long the request in flight may go unanswered before the connection
 * counts as lost. */
static int64_t answer_limit(const struct dbqc *c)
{
    if (c->kind == DBQC_REQ_SETUP)
        return c->connect_timeout_ms;
    return (int64_t)c->statement_timeout_ms + DB_ANSWER_MARGIN_MS;
}

/*
 * The one step function: called on socket events (events != 0) and when
 * the timer fires (events == 0), on the loop thread. Does what the state
 * calls for, then re-arms the timer.
 */
static void conn_step(struct dbqc *c, uint32_t events)
{
    int64_t now = now_ms();
    char why[80];

    switch (c->state) {
    case DBQC_IDLE:
        break;
    case DBQC_DOWN:
        if (now >= c->retry_at)
            conn_connect(c);
        break;
    case DBQC_CONNECTING:
        if (now >= c->deadline) {
            snprintf(why, sizeof(why), "no connection within %d ms", c->connect_timeout_ms);
            conn_drop(c, why);
        } else if (events != 0) {
            conn_connect_poll(c);
        }
        break;
    case DBQC_SETUP:
    case DBQC_READY:
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
            conn_read(c);
        if (c->state != DBQC_SETUP && c->state != DBQC_READY)
            break; /* dropped while reading */
        if ((events & EPOLLOUT) != 0 && c->want_write && conn_flush(c) < 0)
            break;
        if (c->kind != DBQC_REQ_NONE) {
            if (now - c->progress_at >= answer_limit(c)) {
                snprintf(why, sizeof(why), "database did not answer within %lld ms",
                         (long long)answer_limit(c));
                conn_drop(c, why);
            }
        } else if (c->state == DBQC_READY && now - c->idle_since >= c->health_ms / 2) {
            conn_probe(c);
        }
        break;
    }
    if (c->state != DBQC_IDLE)
        conn_arm(c);
}

/* The loop's callbacks (loop thread). */
static void on_io(void *arg, uint32_t events)
{
    conn_step(arg, events);
}

static void on_timer(void *arg)
{
    conn_step(arg, 0);
}

/* Arms the timer for the next thing due: a retry, a connect deadline, an
 * answer deadline (and the moment the wait turns the health off), or the
 * next probe. */
static void conn_arm(struct dbqc *c)
{
    int64_t at = INT64_MAX, now = now_ms();

    switch (c->state) {
    case DBQC_IDLE:
        break;
    case DBQC_DOWN:
        at = c->retry_at;
        break;
    case DBQC_CONNECTING:
        at = c->deadline;
        break;
    case DBQC_SETUP:
    case DBQC_READY:
        if (c->kind != DBQC_REQ_NONE) {
            int64_t edge = c->progress_at + c->health_ms + 1;

            at = c->progress_at + answer_limit(c);
            if (edge > now && edge < at)
                at = edge;
        } else if (c->state == DBQC_READY) {
            at = c->idle_since + c->health_ms / 2;
        }
        break;
    }
    if (at == INT64_MAX)
        loop_timer_cancel(c->loop, &c->timer);
    else
        loop_timer_set(c->loop, &c->timer, at, on_timer, c);
}

/* ---- the rest of the API ------------------------------------------------ */

struct dbqc *dbqc_new(struct loop *l, const struct dbqc_config *cfg, const struct dbqc_ops *ops,
                      void *arg)
{
    struct dbqc *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->url = strdup(cfg->url);
    if (c->url == NULL) {
        free(c);
        return NULL;
    }
    c->loop = l;
    snprintf(c->app, sizeof(c->app), "%s", cfg->app_name);
    snprintf(c->role, sizeof(c->role), "%s", cfg->role);
    c->connect_timeout_ms = cfg->connect_timeout_ms;
    c->statement_timeout_ms = cfg->statement_timeout_ms;
    c->health_ms = cfg->health_ms;
    c->ops = ops;
    c->arg = arg;
    c->state = DBQC_IDLE;
    c->backoff_ms = DBQC_BACKOFF_MIN_MS;
    c->setup.failed_at = -1;
    return c;
}

void dbqc_free(struct dbqc *c)
{
    if (c == NULL)
        return;
    loop_del(c->loop, &c->watch);
    loop_timer_cancel(c->loop, &c->timer);
    if (c->pg != NULL)
        PQfinish(c->pg);
    dbqc_req_free(&c->setup);
    prep_reset(c);
    free(c->prep);
    free(c->url);
    free(c);
}

void dbqc_start(struct dbqc *c)
{
    if (c->state != DBQC_IDLE)
        return;
    c->state = DBQC_DOWN;
    c->retry_at = now_ms();
    conn_step(c, 0);
}

int dbqc_idle(const struct dbqc *c)
{
    return c->state == DBQC_READY && c->kind == DBQC_REQ_NONE;
}

struct dbqc_req *dbqc_in_flight(const struct dbqc *c)
{
    return c->kind == DBQC_REQ_OWNER ? c->req : NULL;
}

int dbqc_healthy(const struct dbqc *c)
{
    return c->state == DBQC_READY &&
           (c->kind == DBQC_REQ_NONE || now_ms() - c->progress_at <= c->health_ms);
}

int dbqc_ready(const struct dbqc *c)
{
    return c->state == DBQC_READY;
}

uint64_t dbqc_probes(const struct dbqc *c)
{
    return c->probes;
}

int dbqc_txn_open(const struct dbqc *c)
{
    return c->txn_open;
}

void dbqc_drop(struct dbqc *c, const char *why)
{
    if (c->state != DBQC_IDLE && c->state != DBQC_DOWN)
        conn_drop(c, why);
}
