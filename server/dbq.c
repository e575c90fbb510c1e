/*
 * dbq.c: see dbq.h.
 *
 * Where a submitted statement (an "item") is, at any time: in its class's
 * queue; in the rejected list (its queue was full; answered at the turn's
 * end); in the batch in flight on its class's connection; or in the
 * finished list, its outcome set and its callback about to run. It is
 * freed right after its callback.
 *
 * Invariants:
 *   - A class queue is in submission order: new items join its tail, and
 *     requeued ones, always older than everything queued, go back to its
 *     head in their own order. So a batch taken from the head is in
 *     submission order, and so are its callbacks (queued_at, too, never
 *     decreases along a queue).
 *   - At most one request is in flight per connection (the session setup,
 *     a batch, a probe or LISTENs). Its entries name, in order, every
 *     result libpq will return before the request's sync result, so each
 *     result is matched to its entry by position.
 *   - Callbacks run only from run_finished(). A finished item may point
 *     at a PGresult of its request; a request's results are cleared only
 *     after run_finished() has run its items.
 *
 * Errors: a connection that fails or is lost is logged once per outage
 * (warning) and its recovery at info; the failure of a statement is its
 * submitter's to log.
 */
#include "dbq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "db.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"

#define DBQ_BATCH_MAX_STMTS 1000
#define DBQ_BATCH_MAX_BYTES ((size_t)8 << 20)
#define DBQ_BACKOFF_MIN_MS 100
#define DBQ_BACKOFF_MAX_MS 5000
#define DBQ_NCONNS 3
#define DBQ_LISTEN_CONN 2 /* index of the LISTEN connection in conns[] */

#define DBQ_DEFAULT_APP "wf-server"
#define DBQ_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DBQ_DEFAULT_STATEMENT_TIMEOUT_MS 30000
#define DBQ_DEFAULT_HEALTH_MS 2000
#define DBQ_DEFAULT_QUEUE_MAX 100000
#define DBQ_DEFAULT_WAIT_MS 5000

/* Item flags of our own, beside DBQ_RETRY_SAFE and DBQ_PERSIST. */
#define ITEM_ALONE 0x100u /* a row of a multi-row statement that failed: sent on its own */
#define ITEM_SOLO 0x200u  /* its batch failed at COMMIT: goes in a batch of its own */

struct dbq_item {
    struct dbq_item *next;  /* in a queue, a batch (submission order) or the finished list */
    struct dbq_item *enext; /* the next row of the same multi-row statement */
    int64_t queued_at;
    unsigned flags;
    enum dbq_class cls;
    const char *sql;
    struct dbq_rows *rows; /* a row's template, else NULL */
    int nparams;
    const char **values; /* copies, in the same allocation */
    int *lengths;        /* NULL: all text */
    int *formats;
    size_t bytes; /* parameter bytes, for the batch cap */
    int entry;    /* index of its statement in the batch in flight */
    dbq_done_fn done;
    void *arg;
    struct dbq_result result; /* set when finished */
};

struct dbq_list {
    struct dbq_item *head, *tail;
    size_t n;
};

struct dbq_rows {
    struct dbq_rows *next; /* q's list */
    struct dbq *q;
    enum dbq_class cls;
    unsigned flags;
    const char *sql;
    int ncols;
    uint64_t gen; /* the batch under construction that has a statement for it */
    int entry;    /* that statement's entry */
};

struct dbq_listener {
    char *channel;
    dbq_notify_fn fn;
    void *arg;
    int active; /* LISTEN confirmed on the current connection */
};

enum dbq_entry_kind {
    DBQ_E_SESSION, /* a SET of the session setup, or the ROLLBACK of an aborted block */
    DBQ_E_LISTEN,  /* LISTEN for listener aux */
    DBQ_E_BEGIN,   /* a batch's BEGIN */
    DBQ_E_STMT,    /* one item's statement, or the rows of one template */
    DBQ_E_COMMIT   /* a batch's COMMIT */
};

struct dbq_entry {
    enum dbq_entry_kind kind;
    const char *sql;                     /* DBQ_E_SESSION */
    struct dbq_item *items, *items_tail; /* DBQ_E_STMT, linked by enext */
    int nitems;
    int aux;       /* DBQ_E_LISTEN: the listener's index */
    PGresult *res; /* its result, kept until the request is finished */
};

enum dbq_req_kind {
    DBQ_REQ_NONE,  /* nothing in flight */
    DBQ_REQ_SETUP, /* the session statements (and LISTENs) after a connect */
    DBQ_REQ_BATCH, /* BEGIN, statements, COMMIT */
    DBQ_REQ_PROBE, /* an empty sync: is the server answering? */
    DBQ_REQ_LISTEN /* LISTENs for channels added while connected */
};

struct dbq_req {
    enum dbq_req_kind kind;
    struct dbq_entry *e;
    int n, cap;
    int cur;               /* the entry the next result belongs to */
    int failed_at;         /* the first entry that failed, or -1 */
    int commit_sent;       /* COMMIT was handed to libpq: the batch may have committed */
    int commit_seen;       /* COMMIT's result arrived: it did */
    struct dbq_list items; /* a batch's items, in submission order */
};

/* A connection's life; conn_step() moves it along. */
enum dbq_conn_state {
    DBQ_CS_IDLE,       /* not in use (not started, or LISTEN without channels) */
    DBQ_CS_DOWN,       /* no connection; the next attempt at retry_at */
    DBQ_CS_CONNECTING, /* PQconnectPoll driven by socket events, until deadline */
    DBQ_CS_SETUP,      /* connected; the session statements are in flight */
    DBQ_CS_READY       /* serving batches (or LISTENs); probed when idle */
};

struct dbq_conn {
    struct dbq *q;
    int index;        /* its class, or DBQ_LISTEN_CONN */
    const char *name; /* "durable", "fast", "listen" */
    enum dbq_conn_state state;
    PGconn *pg;
    struct loop_watch watch;
    struct loop_timer timer;
    int64_t retry_at;       /* DOWN: when to try again */
    int64_t deadline;       /* CONNECTING: when to give up */
    int backoff_ms;         /* the delay after the next failure */
    int64_t down_since;     /* when it last stopped being READY (for wait_ms) */
    int ever_ready;         /* it was READY once (a later READY is a reconnect) */
    int failing;            /* this outage was logged */
    int want_write;         /* libpq holds unsent data: EPOLLOUT wanted */
    int need_rollback;      /* the last batch left the session in an aborted block */
    int64_t progress_at;    /* the request in flight was sent or last answered */
    int64_t idle_since;     /* the last request ended */
    struct dbq_req reqs[2]; /* the request in flight, and the one being finished */
    int active;             /* index in reqs of the request in flight */
    char timeout_sql[48];
    char read_error[256]; /* why the last read failed, or "" */
};

struct dbq {
    struct loop *loop;
    char *url;
    char app[48];
    int connect_timeout_ms, statement_timeout_ms, health_ms, queue_max, wait_ms;
    struct dbq_conn conns[DBQ_NCONNS];
    struct dbq_list queue[DBQ_NCLASSES];
    struct dbq_list rejected; /* queue full: DBQ_UNAVAILABLE at the turn's end */
    struct dbq_list finished; /* outcome set, callback pending */
    struct loop_timer expire_timer;
    int expire_dirty; /* the wait_ms deadlines need a look */
    struct dbq_rows *rows;
    struct dbq_listener *listeners;
    int nlisteners, caplisteners;
    dbq_health_fn health_fn;
    void *health_arg;
    int healthy; /* as last reported */
    int started, closing, in_finish;
    uint64_t gen; /* batches built so far */
    struct dbq_stats st;
};

static const char *const conn_names[DBQ_NCONNS] = {"durable", "fast", "listen"};

static void conn_step(struct dbq_conn *c, uint32_t events);
static void conn_arm(struct dbq_conn *c);
static void on_conn_io(void *arg, uint32_t events);

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

/* ---- items and lists ---------------------------------------------------- */

static void list_push(struct dbq_list *l, struct dbq_item *it)
{
    it->next = NULL;
    if (l->tail != NULL)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->n++;
}

static struct dbq_item *list_pop(struct dbq_list *l)
{
    struct dbq_item *it = l->head;

    if (it != NULL) {
        l->head = it->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->n--;
        it->next = NULL;
    }
    return it;
}

/* Puts all of src, in its order, in front of dst; src is left empty. */
static void list_prepend(struct dbq_list *dst, struct dbq_list *src)
{
    if (src->head == NULL)
        return;
    src->tail->next = dst->head;
    if (dst->tail == NULL)
        dst->tail = src->tail;
    dst->head = src->head;
    dst->n += src->n;
    memset(src, 0, sizeof(*src));
}

/*
 * Allocates an item holding copies of the parameters, all in one block.
 * Returns it (caller fills in the rest and frees it with free), or NULL
 * with errno ENOMEM, or EINVAL for a binary parameter without its length.
 */
static struct dbq_item *item_new(int nparams, const char *const *params, const int *lengths,
                                 const int *formats)
{
    size_t head = sizeof(struct dbq_item) + (size_t)nparams * sizeof(char *);
    size_t data = 0;
    struct dbq_item *it;
    char *p;

    if (lengths != NULL)
        head += (size_t)nparams * sizeof(int);
    if (formats != NULL)
        head += (size_t)nparams * sizeof(int);
    for (int i = 0; i < nparams; i++) {
        if (params == NULL || params[i] == NULL)
            continue;
        if (formats != NULL && formats[i] == 1) {
            if (lengths == NULL || lengths[i] < 0) {
                errno = EINVAL;
                return NULL;
            }
            data += (size_t)lengths[i];
        } else {
            data += strlen(params[i]) + 1;
        }
    }
    it = calloc(1, head + data);
    if (it == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    p = (char *)(it + 1);
    it->values = (const char **)(void *)p;
    p += (size_t)nparams * sizeof(char *);
    if (lengths != NULL) {
        it->lengths = (int *)(void *)p;
        memcpy(it->lengths, lengths, (size_t)nparams * sizeof(int));
        p += (size_t)nparams * sizeof(int);
    }
    if (formats != NULL) {
        it->formats = (int *)(void *)p;
        memcpy(it->formats, formats, (size_t)nparams * sizeof(int));
        p += (size_t)nparams * sizeof(int);
    }
    for (int i = 0; i < nparams; i++) {
        size_t n;

        if (params == NULL || params[i] == NULL)
            continue;
        n = formats != NULL && formats[i] == 1 ? (size_t)lengths[i] : strlen(params[i]) + 1;
        memcpy(p, params[i], n);
        it->values[i] = p;
        p += n;
    }
    it->nparams = nparams;
    it->bytes = data;
    return it;
}

/* Sets it's outcome and queues its callback for run_finished(). res (may
 * be NULL) must stay valid until then; message is used when res has none. */
static void finish(struct dbq *q, struct dbq_item *it, enum dbq_outcome o, const PGresult *res,
                   const char *message)
{
    it->result.outcome = o;
    it->result.res = res;
    it->result.sqlstate = "";
    it->result.message = message != NULL ? message : "";
    if (o == DBQ_FAILED && res != NULL) {
        const char *ss = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

        if (ss != NULL)
            it->result.sqlstate = ss;
        if (m != NULL)
            it->result.message = m;
    }
    list_push(&q->finished, it);
}

/* Runs the callbacks of the finished items, in the order finished, and
 * frees the items. */
static void run_finished(struct dbq *q)
{
    struct dbq_item *it;

    if (q->in_finish)
        return; /* no callback path leads here; this only guards the order */
    q->in_finish = 1;
    while ((it = list_pop(&q->finished)) != NULL) {
        switch (it->result.outcome) {
        case DBQ_OK:
            q->st.ok++;
            break;
        case DBQ_FAILED:
            q->st.failed++;
            break;
        case DBQ_UNKNOWN:
            q->st.unknown++;
            break;
        case DBQ_UNAVAILABLE:
            q->st.unavailable++;
            break;
        }
        it->done(it->arg, &it->result);
        free(it);
    }
    q->in_finish = 0;
}

/* Queues a new item on its class, or on the rejected list when the class
 * queue is full (answered at the turn's end, never from here). */
static void enqueue(struct dbq *q, struct dbq_item *it)
{
    it->queued_at = now_ms();
    if (q->queue[it->cls].n >= (size_t)q->queue_max) {
        list_push(&q->rejected, it);
        return;
    }
    list_push(&q->queue[it->cls], it);
    if (q->conns[it->cls].state != DBQ_CS_READY)
        q->expire_dirty = 1;
}

/* ---- array literals ----------------------------------------------------- */

/* Bytes of v as an array element: quoted and escaped, NULL unquoted. */
static size_t lit_size(const char *v)
{
    size_t n = 2;

    if (v == NULL)
        return 4;
    for (; *v != '\0'; v++)
        n += *v == '"' || *v == '\\' ? 2 : 1;
    return n;
}

static char *lit_put(char *p, const char *v)
{
    if (v == NULL) {
        memcpy(p, "NULL", 4);
        return p + 4;
    }
    *p++ = '"';
    for (; *v != '\0'; v++) {
        if (*v == '"' || *v == '\\')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '"';
    return p;
}

char *dbq_array_literal(const char *const *values, size_t n, size_t *len)
{
    size_t size = 3; /* braces, NUL */
    char *buf, *p;

    for (size_t i = 0; i < n; i++)
        size += lit_size(values[i]) + 1;
    buf = malloc(size);
    if (buf == NULL)
        return NULL;
    p = buf;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        p = lit_put(p, values[i]);
    }
    *p++ = '}';
    *p = '\0';
    if (len != NULL)
        *len = (size_t)(p - buf);
    return buf;
}

/* The literal of column col over the rows of a template's entry; malloc'ed
 * (caller frees) or NULL. */
static char *rows_literal(const struct dbq_entry *e, int col)
{
    size_t size = 3;
    const struct dbq_item *it;
    char *buf, *p;

    for (it = e->items; it != NULL; it = it->enext)
        size += lit_size(it->values[col]) + 1;
    buf = malloc(size);
    if (buf == NULL)
        return NULL;
    p = buf;
    *p++ = '{';
    for (it = e->items; it != NULL; it = it->enext) {
        if (it != e->items)
            *p++ = ',';
        p = lit_put(p, it->values[col]);
    }
    *p++ = '}';
    *p = '\0';
    return buf;
}

/* ---- requests ----------------------------------------------------------- */

static void req_begin(struct dbq_req *rq, enum dbq_req_kind kind)
{
    rq->kind = kind;
    rq->n = 0;
    rq->cur = 0;
    rq->failed_at = -1;
    rq->commit_sent = 0;
    rq->commit_seen = 0;
    memset(&rq->items, 0, sizeof(rq->items));
}

/* Appends an entry; returns it, or NULL (ENOMEM: rq is unchanged). Earlier
 * entry pointers may move: hold indexes across calls. */
static struct dbq_entry *req_add(struct dbq_req *rq, enum dbq_entry_kind kind)
{
    struct dbq_entry *e;

    if (rq->n == rq->cap) {
        int cap = rq->cap > 0 ? rq->cap * 2 : 16;

        e = realloc(rq->e, (size_t)cap * sizeof(*e));
        if (e == NULL)
            return NULL;
        rq->e = e;
        rq->cap = cap;
    }
    e = &rq->e[rq->n++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->aux = -1;
    return e;
}

/* Clears a finished request's results; it is NONE again. Its items must
 * have left it. */
static void req_clear(struct dbq_req *rq)
{
    for (int i = 0; i < rq->n; i++) {
        PQclear(rq->e[i].res);
        rq->e[i].res = NULL;
    }
    rq->n = 0;
    rq->kind = DBQ_REQ_NONE;
}

/* ---- connections -------------------------------------------------------- */

static void on_notice(void *arg, const char *message)
{
    struct dbq_conn *c = arg;
    char line[512];

    log_debug("database notice (%s connection): %s", c->name,
              one_line(line, sizeof(line), message));
}

/* Watches the current socket of c for events, afresh: during a connect
 * libpq may close its socket and open another with the same number, which
 * epoll would have forgotten. Returns 0 or -1. */
static int conn_watch(struct dbq_conn *c, uint32_t events)
{
    int fd = PQsocket(c->pg);

    loop_del(c->q->loop, &c->watch);
    if (fd < 0)
        return -1;
    return loop_add(c->q->loop, &c->watch, fd, events, on_conn_io, c);
}

/*
 * The connection failed or was lost, in any state but IDLE and DOWN:
 * settles the request in flight, closes the connection and schedules the
 * next attempt. A batch's items are committed if its COMMIT was seen; sent
 * again if nothing of the batch can have committed (COMMIT never handed to
 * libpq, or the batch had already failed) or if they are retry-safe; the
 * others get DBQ_UNKNOWN.
 */
static void conn_drop(struct dbq_conn *c, const char *why)
{
    struct dbq *q = c->q;
    struct dbq_req *rq = &c->reqs[c->active];
    int64_t now = now_ms();
    char line[512];

    one_line(line, sizeof(line), why); /* before PQfinish: why may be libpq's */
    if (rq->kind == DBQ_REQ_BATCH) {
        int committed = rq->commit_seen && rq->failed_at < 0;
        int aborted = !rq->commit_sent || rq->failed_at >= 0;
        struct dbq_list again = {0};
        struct dbq_item *it;

        while ((it = list_pop(&rq->items)) != NULL) {
            if (committed)
                finish(q, it, DBQ_OK, rq->e[it->entry].res, NULL);
            else if (aborted || (it->flags & DBQ_RETRY_SAFE) != 0)
                list_push(&again, it);
            else
                finish(q, it, DBQ_UNKNOWN, NULL,
                       "connection to the database lost before the commit was seen");
        }
        q->st.requeued += again.n;
        list_prepend(&q->queue[c->index], &again);
    }
    if (!c->failing) {
        if (c->state == DBQ_CS_READY)
            log_warning("lost the %s connection to the database: %s", c->name, line);
        else
            log_warning("could not connect to the database (%s connection): %s", c->name, line);
        c->failing = 1;
    } else {
        log_debug("%s connection to the database failed again: %s", c->name, line);
    }
    if (c->state == DBQ_CS_READY) {
        c->down_since = now;
        q->expire_dirty = 1;
        q->st.disconnects++;
    }
    loop_del(q->loop, &c->watch);
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = DBQ_CS_DOWN;
    c->want_write = 0;
    c->need_rollback = 0;
    c->retry_at = now + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > DBQ_BACKOFF_MAX_MS ? DBQ_BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (c->index == DBQ_LISTEN_CONN) {
        for (int i = 0; i < q->nlisteners; i++)
            q->listeners[i].active = 0;
    }
    run_finished(q); /* committed items point at rq's results */
    req_clear(rq);
    conn_arm(c);
}

/* Flushes what libpq holds and watches for EPOLLOUT only while some is
 * left. Returns 0, or -1 after dropping the connection. */
static int conn_flush(struct dbq_conn *c)
{
    int r = PQflush(c->pg);

    if (r < 0) {
        conn_drop(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->want_write = r == 1;
    if (loop_mod(c->q->loop, &c->watch, EPOLLIN | (c->want_write ? EPOLLOUT : 0)) < 0) {
        conn_drop(c, "could not watch the database socket");
        return -1;
    }
    return 0;
}

/* Hands one entry to libpq. Returns 0, or -1 with *why set. */
static int send_entry(struct dbq_conn *c, const struct dbq_entry *e, const char **why)
{
    PGconn *pg = c->pg;
    const struct dbq_item *it = e->items;
    int ok = 0;

    *why = NULL;
    switch (e->kind) {
    case DBQ_E_SESSION:
        ok = PQsendQueryParams(pg, e->sql, 0, NULL, NULL, NULL, NULL, 0);
        break;
    case DBQ_E_BEGIN:
        ok = PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        break;
    case DBQ_E_COMMIT:
        ok = PQsendQueryParams(pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
        break;
    case DBQ_E_LISTEN: {
        const char *ch = c->q->listeners[e->aux].channel;
        char *id = PQescapeIdentifier(pg, ch, strlen(ch));
        size_t size = id != NULL ? strlen(id) + 8 : 0;
        char *sql = id != NULL ? malloc(size) : NULL;

        if (sql != NULL) {
            snprintf(sql, size, "LISTEN %s", id);
            ok = PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);
        } else {
            *why = "out of memory";
        }
        free(sql);
        PQfreemem(id);
        break;
    }
    case DBQ_E_STMT:
        if (it->rows == NULL) {
            ok = PQsendQueryParams(pg, it->sql, it->nparams, NULL, it->values, it->lengths,
                                   it->formats, 0);
        } else {
            /* a template: one array literal per column over the rows */
            char *bufs[DBQ_ROWS_MAX_COLS];
            const char *lits[DBQ_ROWS_MAX_COLS] = {NULL};
            int ncols = it->rows->ncols, made = 0;

            while (made < ncols) {
                bufs[made] = rows_literal(e, made);
                if (bufs[made] == NULL)
                    break;
                lits[made] = bufs[made];
                made++;
            }
            if (made == ncols)
                ok = PQsendQueryParams(pg, it->rows->sql, ncols, NULL, lits, NULL, NULL, 0);
            else
                *why = "out of memory";
            for (int i = 0; i < made; i++)
                free(bufs[i]);
        }
        break;
    }
    if (ok)
        return 0;
    if (*why == NULL)
        *why = PQerrorMessage(pg);
    return -1;
}

/* Hands every entry of the request in flight and a sync to libpq, and
 * flushes. Returns 0, or -1 after dropping the connection. */
static int conn_send_req(struct dbq_conn *c)
{
    struct dbq_req *rq = &c->reqs[c->active];
    const char *why;

    for (int i = 0; i < rq->n; i++) {
        if (send_entry(c, &rq->e[i], &why) < 0) {
            conn_drop(c, why);
            return -1;
        }
        if (rq->e[i].kind == DBQ_E_COMMIT)
            rq->commit_sent = 1;
    }
    if (!PQpipelineSync(c->pg)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->progress_at = now_ms();
    return conn_flush(c);
}

/*
 * Sends the class's queue, from its head, as one batch: [ROLLBACK of an
 * aborted block,] BEGIN, up to DBQ_BATCH_MAX_STMTS statements or
 * DBQ_BATCH_MAX_BYTES of parameters, COMMIT, sync. Rows of one template
 * become one statement where the first of them stands. c is READY with no
 * request in flight.
 */
static void conn_send_batch(struct dbq_conn *c)
{
    struct dbq *q = c->q;
    struct dbq_list *queue = &q->queue[c->index];
    struct dbq_req *rq = &c->reqs[c->active];
    uint64_t gen = ++q->gen;
    size_t bytes = 0;
    int nstmts = 0;
    struct dbq_item *it;
    struct dbq_entry *e;

    req_begin(rq, DBQ_REQ_BATCH);
    if (c->need_rollback) {
        e = req_add(rq, DBQ_E_SESSION);
        if (e == NULL)
            goto nomem;
        e->sql = "ROLLBACK";
    }
    if (req_add(rq, DBQ_E_BEGIN) == NULL)
        goto nomem;
    while ((it = queue->head) != NULL && nstmts < DBQ_BATCH_MAX_STMTS &&
           bytes < DBQ_BATCH_MAX_BYTES) {
        int coalesce = it->rows != NULL && (it->flags & (ITEM_ALONE | ITEM_SOLO)) == 0;

        if ((it->flags & ITEM_SOLO) != 0 && rq->items.n > 0)
            break;
        it->enext = NULL;
        if (coalesce && it->rows->gen == gen) {
            e = &rq->e[it->rows->entry];
            e->items_tail->enext = it;
            e->items_tail = it;
        } else {
            e = req_add(rq, DBQ_E_STMT);
            if (e == NULL)
                break;
            e->items = e->items_tail = it;
            nstmts++;
            if (coalesce) {
                it->rows->gen = gen;
                it->rows->entry = rq->n - 1;
            }
        }
        e->nitems++;
        it->entry = (int)(e - rq->e);
        list_pop(queue);
        list_push(&rq->items, it);
        bytes += it->bytes;
        if ((it->flags & ITEM_SOLO) != 0)
            break;
    }
    if (rq->items.n == 0 || req_add(rq, DBQ_E_COMMIT) == NULL)
        goto nomem;
    q->st.batches++;
    q->st.statements += (uint64_t)nstmts;
    conn_send_req(c);
    return;
nomem:
    /* nothing was sent: the items go back where they were */
    list_prepend(queue, &rq->items);
    req_clear(rq);
}

/* Sends LISTEN for every channel not yet listened to. c is READY with no
 * request in flight. */
static void conn_send_listens(struct dbq_conn *c)
{
    struct dbq *q = c->q;
    struct dbq_req *rq = &c->reqs[c->active];

    req_begin(rq, DBQ_REQ_LISTEN);
    for (int i = 0; i < q->nlisteners; i++) {
        struct dbq_entry *e;

        if (q->listeners[i].active)
            continue;
        e = req_add(rq, DBQ_E_LISTEN);
        if (e == NULL)
            break;
        e->aux = i;
    }
    if (rq->n == 0) {
        rq->kind = DBQ_REQ_NONE;
        return;
    }
    conn_send_req(c);
}

/* Sends whatever c should send next, if it is READY and idle. */
static void conn_send_next(struct dbq_conn *c)
{
    struct dbq *q = c->q;

    if (c->state != DBQ_CS_READY || c->reqs[c->active].kind != DBQ_REQ_NONE)
        return;
    if (c->index == DBQ_LISTEN_CONN) {
        for (int i = 0; i < q->nlisteners; i++) {
            if (!q->listeners[i].active) {
                conn_send_listens(c);
                conn_arm(c);
                break;
            }
        }
    } else if (q->queue[c->index].head != NULL) {
        conn_send_batch(c);
        conn_arm(c);
    }
}

/* An empty sync on an idle connection: its answer says the server lives. */
static void conn_probe(struct dbq_conn *c)
{
    req_begin(&c->reqs[c->active], DBQ_REQ_PROBE);
    c->q->st.probes++;
    if (!PQpipelineSync(c->pg)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    c->progress_at = now_ms();
    conn_flush(c);
}

/* Starts connecting: CONNECTING, or DOWN again at once. */
static void conn_connect(struct dbq_conn *c)
{
    struct dbq *q = c->q;
    struct db_conninfo ci;

    c->state = DBQ_CS_CONNECTING;
    c->deadline = now_ms() + q->connect_timeout_ms;
    /* connect_timeout is ours (the deadline): libpq ignores it here */
    db_conninfo_build(&ci, q->url, q->app, c->name, 0);
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
static void conn_established(struct dbq_conn *c)
{
    struct dbq *q = c->q;
    struct dbq_req *rq = &c->reqs[c->active];
    struct dbq_entry *e;

    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    c->state = DBQ_CS_SETUP;
    if (conn_watch(c, EPOLLIN) < 0) {
        conn_drop(c, "could not watch the database socket");
        return;
    }
    req_begin(rq, DBQ_REQ_SETUP);
    snprintf(c->timeout_sql, sizeof(c->timeout_sql), "SET statement_timeout = %d",
             q->statement_timeout_ms);
    e = req_add(rq, DBQ_E_SESSION);
    if (e == NULL)
        goto nomem;
    e->sql = c->timeout_sql;
    if (c->index != DBQ_LISTEN_CONN) {
        e = req_add(rq, DBQ_E_SESSION);
        if (e == NULL)
            goto nomem;
        /* explicitly on for durable: a cluster may default to off */
        e->sql = c->index == DBQ_DURABLE ? "SET synchronous_commit = on"
                                         : "SET synchronous_commit = off";
    } else {
        for (int i = 0; i < q->nlisteners; i++) {
            e = req_add(rq, DBQ_E_LISTEN);
            if (e == NULL)
                goto nomem;
            e->aux = i;
        }
    }
    conn_send_req(c);
    return;
nomem:
    conn_drop(c, "out of memory");
}

/* CONNECTING: one step of PQconnectPoll after a socket event. */
static void conn_connect_poll(struct dbq_conn *c)
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

/* Confirms the LISTENs of rq: their channels are active, and each
 * listener hears payload NULL (listened to anew). */
static void listens_confirmed(struct dbq *q, const struct dbq_req *rq)
{
    for (int i = 0; i < rq->n; i++) {
        struct dbq_listener *l;

        if (rq->e[i].kind != DBQ_E_LISTEN)
            continue;
        l = &q->listeners[rq->e[i].aux];
        l->active = 1;
        /* the callee may add listeners (the array may move): no l after this */
        l->fn(l->arg, l->channel, NULL);
    }
}

/* The session is set up: READY. */
static void conn_ready(struct dbq_conn *c, const struct dbq_req *setup)
{
    c->state = DBQ_CS_READY;
    if (c->ever_ready)
        c->q->st.reconnects++;
    c->ever_ready = 1;
    c->backoff_ms = DBQ_BACKOFF_MIN_MS;
    if (c->failing) {
        log_info("the %s connection to the database is ready again", c->name);
        c->failing = 0;
    }
    listens_confirmed(c->q, setup);
}

/*
 * A batch's sync arrived: if its COMMIT succeeded, every item is DBQ_OK.
 * Otherwise nothing of it was committed: the statement that failed gets
 * DBQ_FAILED and the others go back to the head of the queue; a failed
 * multi-row statement is split into its rows; a failed COMMIT sends each
 * item in a batch of its own. Returns 0, or -1 after dropping the
 * connection.
 */
static int batch_finish(struct dbq_conn *c, struct dbq_req *rq)
{
    struct dbq *q = c->q;
    struct dbq_list again = {0};
    struct dbq_entry *fe;
    struct dbq_item *it;
    size_t n = rq->items.n;
    int fi;

    if (rq->failed_at < 0 && rq->commit_seen) {
        int b = 0;

        q->st.commits++;
        while (b < DBQ_HIST_BUCKETS - 1 && ((size_t)1 << b) < n)
            b++;
        q->st.batch_hist[b]++;
        for (int i = 0; i < rq->n; i++) {
            if (rq->e[i].kind == DBQ_E_STMT && rq->e[i].nitems > 1)
                q->st.rows_coalesced += (uint64_t)rq->e[i].nitems;
        }
        while ((it = list_pop(&rq->items)) != NULL)
            finish(q, it, DBQ_OK, rq->e[it->entry].res, NULL);
        return 0;
    }
    fi = rq->failed_at >= 0 ? rq->failed_at : rq->n - 1;
    fe = &rq->e[fi];
    if (fe->kind != DBQ_E_STMT && fe->kind != DBQ_E_COMMIT) {
        char line[512];

        /* BEGIN or the ROLLBACK failed: the session is not what we think */
        one_line(line, sizeof(line),
                 fe->res != NULL ? PQresultErrorMessage(fe->res) : "unexpected result");
        q->st.requeued += rq->items.n;
        list_prepend(&q->queue[c->index], &rq->items);
        conn_drop(c, line);
        return -1;
    }
    while ((it = list_pop(&rq->items)) != NULL) {
        if (fe->kind == DBQ_E_COMMIT && n == 1) {
            finish(q, it, DBQ_FAILED, fe->res, "the transaction was rolled back");
        } else if (fe->kind == DBQ_E_COMMIT) {
            it->flags |= ITEM_SOLO;
            list_push(&again, it);
        } else if (it->entry == fi && fe->nitems == 1) {
            finish(q, it, DBQ_FAILED, fe->res, "the statement failed");
        } else {
            if (it->entry == fi)
                it->flags |= ITEM_ALONE;
            list_push(&again, it);
        }
    }
    q->st.requeued += again.n;
    list_prepend(&q->queue[c->index], &again);
    return 0;
}

/*
 * The sync of the request in flight arrived: settles it, sends what comes
 * next, runs the callbacks, then clears the request. Returns 0, or -1
 * when the connection was dropped meanwhile.
 */
static int req_done(struct dbq_conn *c)
{
    struct dbq *q = c->q;
    struct dbq_req *rq = &c->reqs[c->active];
    char why[512];

    /* rq is finished below; the next request is built in the other slot */
    c->active ^= 1;
    c->idle_since = now_ms();
    c->need_rollback = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
    switch (rq->kind) {
    case DBQ_REQ_SETUP:
    case DBQ_REQ_LISTEN:
        if (rq->failed_at >= 0) {
            const PGresult *r = rq->e[rq->failed_at].res;
            char line[400];

            snprintf(why, sizeof(why), "could not set up the session: %s",
                     one_line(line, sizeof(line),
                              r != NULL ? PQresultErrorMessage(r) : "unexpected result"));
            conn_drop(c, why);
            break;
        }
        if (rq->kind == DBQ_REQ_SETUP)
            conn_ready(c, rq);
        else
            listens_confirmed(q, rq);
        break;
    case DBQ_REQ_BATCH:
        batch_finish(c, rq);
        break;
    case DBQ_REQ_PROBE:
    case DBQ_REQ_NONE:
        break;
    }
    conn_send_next(c); /* before the callbacks: the next batch is on its way */
    run_finished(q);
    req_clear(rq);
    return c->state == DBQ_CS_READY || c->state == DBQ_CS_SETUP ? 0 : -1;
}

/* 1 for an error that ends the connection rather than the statement. */
static int connection_error(const PGconn *pg, const char *sqlstate)
{
    return sqlstate == NULL || strncmp(sqlstate, "08", 2) == 0 ||
           strncmp(sqlstate, "57P", 3) == 0 || PQstatus(pg) == CONNECTION_BAD;
}

/* One result of the request in flight (taken over). Returns 0, or -1 when
 * the connection was dropped. */
static int conn_result(struct dbq_conn *c, PGresult *r)
{
    struct dbq_req *rq = &c->reqs[c->active];
    ExecStatusType st = PQresultStatus(r);
    struct dbq_entry *e;
    char msg[512];

    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        if (rq->kind == DBQ_REQ_NONE || rq->cur != rq->n) {
            conn_drop(c, "protocol confusion: a sync result out of place");
            return -1;
        }
        return req_done(c);
    }
    if (rq->kind == DBQ_REQ_NONE || rq->cur >= rq->n) {
        snprintf(msg, sizeof(msg), "protocol confusion: an unexpected %s result", PQresStatus(st));
        PQclear(r);
        conn_drop(c, msg);
        return -1;
    }
    c->progress_at = now_ms();
    e = &rq->e[rq->cur++];
    switch (st) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        if (e->kind == DBQ_E_COMMIT) {
            if (strcmp(PQcmdStatus(r), "COMMIT") == 0)
                rq->commit_seen = 1;
            else if (rq->failed_at < 0)
                rq->failed_at = rq->cur - 1; /* "ROLLBACK": it did not commit */
        }
        e->res = r;
        return 0;
    case PGRES_PIPELINE_ABORTED:
        PQclear(r);
        return 0;
    case PGRES_FATAL_ERROR:
        if (connection_error(c->pg, PQresultErrorField(r, PG_DIAG_SQLSTATE))) {
            /* libpq's first word on a broken read says it best */
            one_line(msg, sizeof(msg),
                     c->read_error[0] != '\0' ? c->read_error : PQresultErrorMessage(r));
            PQclear(r);
            conn_drop(c, msg);
            return -1;
        }
        if (rq->failed_at < 0)
            rq->failed_at = rq->cur - 1;
        e->res = r;
        return 0;
    default:
        snprintf(msg, sizeof(msg), "unexpected result status %s", PQresStatus(st));
        PQclear(r);
        conn_drop(c, msg);
        return -1;
    }
}

/* Hands the notifications libpq has read to the listeners of their channel. */
static void conn_notifies(struct dbq_conn *c)
{
    struct dbq *q = c->q;
    PGnotify *n;

    while ((n = PQnotifies(c->pg)) != NULL) {
        for (int i = 0; c->index == DBQ_LISTEN_CONN && i < q->nlisteners; i++) {
            struct dbq_listener *l = &q->listeners[i];

            if (strcmp(l->channel, n->relname) == 0)
                l->fn(l->arg, l->channel, n->extra); /* may add listeners: no l after */
        }
        PQfreemem(n);
    }
}

/* SETUP or READY, the socket is readable: reads, then takes every result
 * that is complete. Results are separated by NULLs; two NULLs in a row
 * while libpq is not busy mean nothing more is there. */
static void conn_read(struct dbq_conn *c)
{
    int ok = PQconsumeInput(c->pg);
    int nulls = 0;

    /* Even when the read failed (EOF), what arrived before is parsed: a
     * COMMIT's result just before a lost connection still counts. */
    c->read_error[0] = '\0';
    if (!ok)
        one_line(c->read_error, sizeof(c->read_error), PQerrorMessage(c->pg));
    conn_notifies(c);
    if (ok && c->want_write && conn_flush(c) < 0)
        return;
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);

        if (r == NULL) {
            if (++nulls >= 2)
                break;
            continue;
        }
        nulls = 0;
        if (conn_result(c, r) < 0)
            return;
    }
    conn_notifies(c);
    if (!ok || PQstatus(c->pg) == CONNECTION_BAD)
        conn_drop(c, ok ? PQerrorMessage(c->pg) : c->read_error);
}

/* How long the request in flight may go unanswered before the connection
 * counts as lost. */
static int64_t answer_limit(const struct dbq_conn *c)
{
    if (c->reqs[c->active].kind == DBQ_REQ_SETUP)
        return c->q->connect_timeout_ms;
    return (int64_t)c->q->statement_timeout_ms + DB_ANSWER_MARGIN_MS;
}

/*
 * The one step function of a connection: called on socket events (events
 * != 0) and when its timer fires (events == 0), on the loop thread. Does
 * what the state calls for, then re-arms the timer.
 */
static void conn_step(struct dbq_conn *c, uint32_t events)
{
    int64_t now = now_ms();

    switch (c->state) {
    case DBQ_CS_IDLE:
        break;
    case DBQ_CS_DOWN:
        if (now >= c->retry_at)
            conn_connect(c);
        break;
    case DBQ_CS_CONNECTING:
        if (now >= c->deadline) {
            char why[64];

            snprintf(why, sizeof(why), "no connection within %d ms", c->q->connect_timeout_ms);
            conn_drop(c, why);
        } else if (events != 0) {
            conn_connect_poll(c);
        }
        break;
    case DBQ_CS_SETUP:
    case DBQ_CS_READY:
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
            conn_read(c);
        if ((c->state == DBQ_CS_SETUP || c->state == DBQ_CS_READY) && (events & EPOLLOUT) != 0 &&
            c->want_write && conn_flush(c) < 0)
            break;
        if (c->state != DBQ_CS_SETUP && c->state != DBQ_CS_READY)
            break;
        if (c->reqs[c->active].kind != DBQ_REQ_NONE) {
            if (now - c->progress_at >= answer_limit(c)) {
                char why[80];

                snprintf(why, sizeof(why), "database did not answer within %lld ms",
                         (long long)answer_limit(c));
                conn_drop(c, why);
            }
        } else if (c->state == DBQ_CS_READY && now - c->idle_since >= c->q->health_ms / 2) {
            conn_probe(c);
        }
        break;
    }
    conn_arm(c);
}

/* The loop's callbacks of a connection (loop thread). */
static void on_conn_io(void *arg, uint32_t events)
{
    conn_step(arg, events);
}

static void on_conn_timer(void *arg)
{
    conn_step(arg, 0);
}

/* Arms c's timer for the next thing due: a retry, a connect deadline, an
 * answer deadline (and the moment the request turns the health off), or
 * the next probe. */
static void conn_arm(struct dbq_conn *c)
{
    struct dbq *q = c->q;
    int64_t at = INT64_MAX, now = now_ms();

    switch (c->state) {
    case DBQ_CS_IDLE:
        break;
    case DBQ_CS_DOWN:
        at = c->retry_at;
        break;
    case DBQ_CS_CONNECTING:
        at = c->deadline;
        break;
    case DBQ_CS_SETUP:
    case DBQ_CS_READY:
        if (c->reqs[c->active].kind != DBQ_REQ_NONE) {
            int64_t edge = c->progress_at + q->health_ms + 1;

            at = c->progress_at + answer_limit(c);
            if (edge > now && edge < at)
                at = edge;
        } else if (c->state == DBQ_CS_READY) {
            at = c->idle_since + q->health_ms / 2;
        }
        break;
    }
    if (at == INT64_MAX)
        loop_timer_cancel(q->loop, &c->timer);
    else
        loop_timer_set(q->loop, &c->timer, at, on_conn_timer, c);
}

/* Puts an IDLE connection to work: it connects at once. */
static void conn_start(struct dbq_conn *c)
{
    if (c->state != DBQ_CS_IDLE)
        return;
    c->state = DBQ_CS_DOWN;
    c->retry_at = now_ms();
    conn_step(c, 0);
}

/* ---- the turn's end: rejections, deadlines, batches, health ------------- */

static void on_expire_timer(void *arg)
{
    struct dbq *q = arg;

    q->expire_dirty = 1; /* the end-of-turn hook, right after the timers, does the work */
}

/*
 * Gives DBQ_UNAVAILABLE to every queued statement that has waited wait_ms
 * while its class's connection was not READY (DBQ_PERSIST ones wait on),
 * and arms the timer for the next such deadline.
 */
static void expire(struct dbq *q)
{
    int64_t now = now_ms(), next = INT64_MAX;

    q->expire_dirty = 0;
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        const struct dbq_conn *c = &q->conns[k];
        struct dbq_list *qu = &q->queue[k];
        struct dbq_item **pp = &qu->head, *prev = NULL, *it;

        if (c->state == DBQ_CS_READY)
            continue;
        while ((it = *pp) != NULL) {
            int64_t from = it->queued_at > c->down_since ? it->queued_at : c->down_since;

            if ((it->flags & DBQ_PERSIST) != 0) {
                prev = it;
                pp = &it->next;
                continue;
            }
            if (now - from < q->wait_ms) {
                /* queued_at never decreases along the queue: the rest wait too */
                if (from + q->wait_ms < next)
                    next = from + q->wait_ms;
                break;
            }
            *pp = it->next;
            if (qu->tail == it)
                qu->tail = prev;
            qu->n--;
            finish(q, it, DBQ_UNAVAILABLE, NULL, "the database was unavailable for too long");
        }
    }
    if (next == INT64_MAX)
        loop_timer_cancel(q->loop, &q->expire_timer);
    else
        loop_timer_set(q->loop, &q->expire_timer, next, on_expire_timer, q);
}

static int conn_healthy(const struct dbq_conn *c, int64_t now)
{
    return c->state == DBQ_CS_READY &&
           (c->reqs[c->active].kind == DBQ_REQ_NONE || now - c->progress_at <= c->q->health_ms);
}

static void health_update(struct dbq *q)
{
    int h = dbq_healthy(q);

    if (h == q->healthy)
        return;
    q->healthy = h;
    if (h)
        log_info("database healthy");
    else if (q->started)
        log_warning("database unhealthy: a connection is down or not answering");
    if (q->health_fn != NULL)
        q->health_fn(q->health_arg, h);
}

/* The end-of-turn hook: everything submitted this turn goes out here. */
static void on_turn_end(void *arg)
{
    struct dbq *q = arg;
    struct dbq_item *it;

    while ((it = list_pop(&q->rejected)) != NULL)
        finish(q, it, DBQ_UNAVAILABLE, NULL, "the statement queue is full");
    if (q->expire_dirty)
        expire(q);
    run_finished(q);
    for (int i = 0; i < DBQ_NCONNS; i++)
        conn_send_next(&q->conns[i]);
    health_update(q);
}

/* ---- the API ------------------------------------------------------------ */

struct dbq *dbq_new(struct loop *l, const struct dbq_config *cfg)
{
    struct dbq *q = calloc(1, sizeof(*q));
    int64_t now = now_ms();

    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    q->loop = l;
    q->url = strdup(cfg->url != NULL ? cfg->url : "");
    if (q->url == NULL) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    snprintf(q->app, sizeof(q->app), "%s", cfg->app_name != NULL ? cfg->app_name : DBQ_DEFAULT_APP);
    q->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DBQ_DEFAULT_CONNECT_TIMEOUT_MS;
    q->statement_timeout_ms = cfg->statement_timeout_ms > 0 ? cfg->statement_timeout_ms
                                                            : DBQ_DEFAULT_STATEMENT_TIMEOUT_MS;
    q->health_ms = cfg->health_ms > 0 ? cfg->health_ms : DBQ_DEFAULT_HEALTH_MS;
    q->queue_max = cfg->queue_max > 0 ? cfg->queue_max : DBQ_DEFAULT_QUEUE_MAX;
    q->wait_ms = cfg->wait_ms > 0 ? cfg->wait_ms : DBQ_DEFAULT_WAIT_MS;
    for (int i = 0; i < DBQ_NCONNS; i++) {
        struct dbq_conn *c = &q->conns[i];

        c->q = q;
        c->index = i;
        c->name = conn_names[i];
        c->state = DBQ_CS_IDLE;
        c->backoff_ms = DBQ_BACKOFF_MIN_MS;
        c->down_since = now;
    }
    if (loop_on_turn_end(l, on_turn_end, q) < 0) {
        free(q->url);
        free(q);
        errno = EMFILE;
        return NULL;
    }
    return q;
}

int dbq_start(struct dbq *q)
{
    q->started = 1;
    for (int k = 0; k < DBQ_NCLASSES; k++)
        conn_start(&q->conns[k]);
    if (q->nlisteners > 0)
        conn_start(&q->conns[DBQ_LISTEN_CONN]);
    return 0;
}

void dbq_free(struct dbq *q)
{
    struct dbq_item *it;

    if (q == NULL)
        return;
    q->closing = 1;
    for (int i = 0; i < DBQ_NCONNS; i++) {
        struct dbq_req *rq = &q->conns[i].reqs[q->conns[i].active];
        int committed = rq->commit_seen && rq->failed_at < 0;
        int aborted = !rq->commit_sent || rq->failed_at >= 0;

        while (rq->kind == DBQ_REQ_BATCH && (it = list_pop(&rq->items)) != NULL) {
            if (committed)
                finish(q, it, DBQ_OK, rq->e[it->entry].res, NULL);
            else if (aborted)
                finish(q, it, DBQ_UNAVAILABLE, NULL, "shutting down");
            else
                finish(q, it, DBQ_UNKNOWN, NULL, "shutting down before the commit was seen");
        }
    }
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        while ((it = list_pop(&q->queue[k])) != NULL)
            finish(q, it, DBQ_UNAVAILABLE, NULL, "shutting down");
    }
    while ((it = list_pop(&q->rejected)) != NULL)
        finish(q, it, DBQ_UNAVAILABLE, NULL, "shutting down");
    run_finished(q);
    for (int i = 0; i < DBQ_NCONNS; i++) {
        struct dbq_conn *c = &q->conns[i];

        loop_del(q->loop, &c->watch);
        loop_timer_cancel(q->loop, &c->timer);
        if (c->pg != NULL)
            PQfinish(c->pg);
        for (int k = 0; k < 2; k++) {
            req_clear(&c->reqs[k]);
            free(c->reqs[k].e);
        }
    }
    loop_timer_cancel(q->loop, &q->expire_timer);
    while (q->rows != NULL) {
        struct dbq_rows *s = q->rows;

        q->rows = s->next;
        free(s);
    }
    for (int i = 0; i < q->nlisteners; i++)
        free(q->listeners[i].channel);
    free(q->listeners);
    free(q->url);
    free(q);
}

/* Checks the flags of a statement or template; 0 or -1 (EINVAL). */
static int check_flags(enum dbq_class cls, unsigned flags)
{
    if ((unsigned)cls >= DBQ_NCLASSES || (flags & ~(DBQ_RETRY_SAFE | DBQ_PERSIST)) != 0 ||
        ((flags & DBQ_PERSIST) != 0 && (flags & DBQ_RETRY_SAFE) == 0)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int dbq_exec(struct dbq *q, enum dbq_class cls, unsigned flags, const char *sql, int nparams,
             const char *const *params, const int *lengths, const int *formats, dbq_done_fn done,
             void *arg)
{
    struct dbq_item *it;

    if (q->closing) {
        errno = ESHUTDOWN;
        return -1;
    }
    if (check_flags(cls, flags) < 0 || sql == NULL || done == NULL || nparams < 0 ||
        nparams > 65535) {
        errno = EINVAL;
        return -1;
    }
    it = item_new(nparams, params, lengths, formats);
    if (it == NULL)
        return -1;
    it->sql = sql;
    it->flags = flags;
    it->cls = cls;
    it->done = done;
    it->arg = arg;
    enqueue(q, it);
    return 0;
}

struct dbq_rows *dbq_rows_new(struct dbq *q, enum dbq_class cls, unsigned flags, const char *sql,
                              int ncols)
{
    struct dbq_rows *s;

    if (check_flags(cls, flags) < 0 || sql == NULL || ncols < 1 || ncols > DBQ_ROWS_MAX_COLS) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    s->q = q;
    s->cls = cls;
    s->flags = flags;
    s->sql = sql;
    s->ncols = ncols;
    s->next = q->rows;
    q->rows = s;
    return s;
}

int dbq_row(struct dbq_rows *s, const char *const *values, dbq_done_fn done, void *arg)
{
    struct dbq_item *it;

    if (s->q->closing) {
        errno = ESHUTDOWN;
        return -1;
    }
    if (done == NULL || values == NULL) {
        errno = EINVAL;
        return -1;
    }
    it = item_new(s->ncols, values, NULL, NULL);
    if (it == NULL)
        return -1;
    it->sql = s->sql;
    it->rows = s;
    it->flags = s->flags;
    it->cls = s->cls;
    it->done = done;
    it->arg = arg;
    enqueue(s->q, it);
    return 0;
}

int dbq_listen(struct dbq *q, const char *channel, dbq_notify_fn fn, void *arg)
{
    struct dbq_listener *l;

    if (q->closing) {
        errno = ESHUTDOWN;
        return -1;
    }
    if (q->nlisteners == q->caplisteners) {
        int cap = q->caplisteners > 0 ? q->caplisteners * 2 : 8;

        l = realloc(q->listeners, (size_t)cap * sizeof(*l));
        if (l == NULL) {
            errno = ENOMEM;
            return -1;
        }
        q->listeners = l;
        q->caplisteners = cap;
    }
    l = &q->listeners[q->nlisteners];
    l->channel = strdup(channel);
    if (l->channel == NULL) {
        errno = ENOMEM;
        return -1;
    }
    l->fn = fn;
    l->arg = arg;
    l->active = 0;
    q->nlisteners++;
    /* READY: the LISTEN goes at the turn's end; otherwise with the setup */
    if (q->started)
        conn_start(&q->conns[DBQ_LISTEN_CONN]);
    return 0;
}

int dbq_healthy(const struct dbq *q)
{
    int64_t now = now_ms();

    if (!q->started)
        return 0;
    for (int i = 0; i < DBQ_NCONNS; i++) {
        if (i == DBQ_LISTEN_CONN && q->nlisteners == 0)
            continue;
        if (!conn_healthy(&q->conns[i], now))
            return 0;
    }
    return 1;
}

void dbq_on_health(struct dbq *q, dbq_health_fn fn, void *arg)
{
    q->health_fn = fn;
    q->health_arg = arg;
}

int dbq_idle(const struct dbq *q)
{
    if (q->rejected.n > 0 || q->finished.n > 0)
        return 0;
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        const struct dbq_conn *c = &q->conns[k];

        if (q->queue[k].n > 0 || c->reqs[c->active].kind == DBQ_REQ_BATCH)
            return 0;
    }
    return 1;
}

void dbq_stats(const struct dbq *q, struct dbq_stats *out)
{
    *out = q->st;
    out->queue_depth = q->rejected.n;
    out->in_flight = 0;
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        const struct dbq_req *rq = &q->conns[k].reqs[q->conns[k].active];

        out->queue_depth += q->queue[k].n;
        if (rq->kind == DBQ_REQ_BATCH)
            out->in_flight += rq->items.n;
    }
}
