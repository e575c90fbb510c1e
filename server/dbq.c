/*
 * dbq.c: see dbq.h. The connections are dbq_conn.c's; this file keeps the
 * queues, builds the batches, settles every statement's outcome, and keeps
 * the LISTEN channels and the health signal.
 *
 * Where a submitted statement (an "item") is, at any time: in its class's
 * queue; in the rejected list (its queue was full; answered at the turn's
 * end); in its class's batch in flight; or in the finished list, its
 * outcome set and its callback about to run. It is freed right after its
 * callback.
 *
 * Invariants:
 *   - A queue is in submission order: new items join its tail, and
 *     requeued ones, always older than everything queued, go back to its
 *     head in their own order. So a batch taken from the head is in
 *     submission order, and so are its callbacks (and queued_at never
 *     decreases along a queue).
 *   - Each class has two batches: the one in flight (if any) and the one
 *     just answered, whose results its items' callbacks still read. The
 *     next batch is built in the slot that is not being finished.
 *   - Callbacks run only from run_finished(). A finished item may point at
 *     a PGresult of its batch; a batch's results are cleared only after
 *     run_finished() has run its items.
 *
 * Errors: connection trouble is logged by dbq_conn.c; the failure of a
 * statement is its submitter's to log.
 */
#include "dbq.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbq_conn.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"

#define DBQ_BATCH_MAX_STMTS 1000
#define DBQ_BATCH_MAX_BYTES ((size_t)8 << 20)

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
    uint64_t gen;          /* the batch under construction that has a statement for it */
    int entry;             /* that statement */
    struct dbq_item *last; /* its last row so far */
};

struct dbq_listener {
    char *channel;
    char *listen_sql; /* LISTEN "<channel>" */
    dbq_notify_fn fn;
    void *arg;
    int active; /* listened to on the current connection (or given up) */
};

/* A batch: BEGIN, statements, COMMIT on a class's connection. */
struct dbq_batch {
    struct dbqc_req req;   /* statement i serves the items from s[i].tag on (enext) */
    struct dbq_list items; /* all of them, in submission order */
    int commit;            /* index of the COMMIT in req */
    char **bufs;           /* the template statements' literals, until sent */
    int nbufs, capbufs;
};

/* A class: its queue and its connection. */
struct dbq_lane {
    struct dbq *q;
    enum dbq_class cls;
    struct dbqc *conn;
    struct dbq_list queue;
    struct dbq_batch batch[2];
    int active;         /* the slot the next batch is built in */
    int64_t down_since; /* when its connection last stopped being ready */
    int ever_ready;
};

struct dbq {
    struct loop *loop;
    char *url;
    char app[48];
    int connect_timeout_ms, statement_timeout_ms, health_ms, queue_max, wait_ms;
    struct dbq_lane lanes[DBQ_NCLASSES];
    struct dbqc *lconn;       /* the LISTEN connection */
    struct dbqc_req lreq;     /* its LISTEN request */
    struct dbq_list rejected; /* queue full: DBQ_UNAVAILABLE at the turn's end */
    struct dbq_list finished; /* outcome set, callback pending */
    struct loop_timer expire_timer;
    int expire_dirty; /* the wait_ms deadlines need a look */
    struct dbq_rows *rows;
    struct dbq_listener *listeners;
    int nlisteners, caplisteners;
    int lever_ready;
    dbq_health_fn health_fn;
    void *health_arg;
    int healthy; /* as last reported */
    int started, closing, in_finish;
    uint64_t gen; /* batches built so far */
    struct dbq_stats st;
};

static int64_t now_ms(void)
{
    return ju_mono_ms();
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
    struct dbq_lane *ln = &q->lanes[it->cls];

    it->queued_at = now_ms();
    if (ln->queue.n >= (size_t)q->queue_max) {
        list_push(&q->rejected, it);
        return;
    }
    list_push(&ln->queue, it);
    if (!dbqc_ready(ln->conn))
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

/*
 * The parameters of a template's statement: one array literal per column
 * over its rows (first, linked by enext), all in one block that starts
 * with the ncols pointers. Returns the block (caller frees), or NULL.
 */
static char *rows_params(const struct dbq_item *first, int ncols)
{
    size_t size = (size_t)ncols * sizeof(char *);
    const struct dbq_item *it;
    const char **ptrs;
    char *block, *p;

    for (int col = 0; col < ncols; col++) {
        size += 3;
        for (it = first; it != NULL; it = it->enext)
            size += lit_size(it->values[col]) + 1;
    }
    block = malloc(size);
    if (block == NULL)
        return NULL;
    ptrs = (const char **)(void *)block;
    p = block + (size_t)ncols * sizeof(char *);
    for (int col = 0; col < ncols; col++) {
        ptrs[col] = p;
        *p++ = '{';
        for (it = first; it != NULL; it = it->enext) {
            if (it != first)
                *p++ = ',';
            p = lit_put(p, it->values[col]);
        }
        *p++ = '}';
        *p++ = '\0';
    }
    return block;
}

/* ---- batches ------------------------------------------------------------ */

static struct dbq_batch *batch_of(struct dbqc_req *r)
{
    return (struct dbq_batch *)(void *)((char *)r - offsetof(struct dbq_batch, req));
}

/* Frees the template literals of a batch that has been sent. */
static void batch_free_bufs(struct dbq_batch *b)
{
    for (int i = 0; i < b->nbufs; i++)
        free(b->bufs[i]);
    b->nbufs = 0;
}

/* Keeps a literal block until the batch is sent; 0 or -1 (ENOMEM). */
static int batch_keep(struct dbq_batch *b, char *block)
{
    if (b->nbufs == b->capbufs) {
        int cap = b->capbufs > 0 ? b->capbufs * 2 : 8;
        char **v = realloc(b->bufs, (size_t)cap * sizeof(*v));

        if (v == NULL)
            return -1;
        b->bufs = v;
        b->capbufs = cap;
    }
    b->bufs[b->nbufs++] = block;
    return 0;
}

/*
 * Fills b from the head of the lane's queue: [ROLLBACK of an aborted
 * block,] BEGIN, up to DBQ_BATCH_MAX_STMTS statements or
 * DBQ_BATCH_MAX_BYTES of parameters, COMMIT. Rows of one template become
 * one statement where the first of them stands. Returns 0, or -1 (ENOMEM:
 * the items are back in the queue, b is empty).
 */
static int batch_build(struct dbq_lane *ln, struct dbq_batch *b)
{
    struct dbq *q = ln->q;
    struct dbqc_req *r = &b->req;
    uint64_t gen = ++q->gen;
    size_t bytes = 0;
    int nstmts = 0;
    struct dbq_item *it;
    struct dbqc_stmt *s;

    if (dbqc_txn_open(ln->conn) && dbqc_req_add(r, "ROLLBACK") == NULL)
        goto nomem;
    s = dbqc_req_add(r, "BEGIN");
    if (s == NULL)
        goto nomem;
    s->cacheable = 1;
    while ((it = ln->queue.head) != NULL && nstmts < DBQ_BATCH_MAX_STMTS &&
           bytes < DBQ_BATCH_MAX_BYTES) {
        int coalesce = it->rows != NULL && (it->flags & (ITEM_ALONE | ITEM_SOLO)) == 0;

        if ((it->flags & ITEM_SOLO) != 0 && b->items.n > 0)
            break;
        it->enext = NULL;
        if (coalesce && it->rows->gen == gen) {
            it->rows->last->enext = it;
            it->rows->last = it;
            it->entry = it->rows->entry;
        } else {
            s = dbqc_req_add(r, it->sql);
            if (s == NULL)
                break;
            s->tag = it;
            s->cacheable = 1;
            it->entry = r->n - 1;
            nstmts++;
            if (coalesce) {
                it->rows->gen = gen;
                it->rows->entry = r->n - 1;
                it->rows->last = it;
            }
        }
        list_pop(&ln->queue);
        list_push(&b->items, it);
        bytes += it->bytes;
        if ((it->flags & ITEM_SOLO) != 0)
            break;
    }
    if (b->items.n == 0)
        goto nomem;
    s = dbqc_req_add(r, "COMMIT");
    if (s == NULL)
        goto nomem;
    s->cacheable = 1;
    b->commit = r->n - 1;
    /* the parameters, now that every template statement has all its rows */
    for (int i = 0; i < r->n; i++) {
        it = r->s[i].tag;
        if (it == NULL)
            continue;
        if (it->rows == NULL) {
            r->s[i].nparams = it->nparams;
            r->s[i].values = it->values;
            r->s[i].lengths = it->lengths;
            r->s[i].formats = it->formats;
        } else {
            char *block = rows_params(it, it->rows->ncols);

            if (block == NULL || batch_keep(b, block) < 0) {
                free(block);
                goto nomem;
            }
            r->s[i].nparams = it->rows->ncols;
            r->s[i].values = (const char *const *)(void *)block;
        }
    }
    q->st.batches++;
    q->st.statements += (uint64_t)nstmts;
    return 0;
nomem:
    /* nothing was sent: the items go back where they were */
    list_prepend(&ln->queue, &b->items);
    batch_free_bufs(b);
    dbqc_req_reset(r);
    return -1;
}

/* Sends the lane's queue as a batch if its connection is idle. */
static void lane_send(struct dbq_lane *ln)
{
    struct dbq_batch *b = &ln->batch[ln->active];

    if (ln->queue.head == NULL || !dbqc_idle(ln->conn))
        return;
    if (batch_build(ln, b) < 0)
        return;
    /* on failure the lost callback has settled b already */
    (void)dbqc_send(ln->conn, &b->req);
    batch_free_bufs(b);
}

/* 1 when b's COMMIT succeeded. */
static int batch_committed(const struct dbq_batch *b)
{
    const struct dbqc_stmt *s = &b->req.s[b->commit];

    return b->req.failed_at < 0 && s->status == DBQC_OK &&
           strcmp(PQcmdStatus(s->res), "COMMIT") == 0;
}

/* The items of b go back to the head of the queue, in their order. */
static void batch_requeue(struct dbq_lane *ln, struct dbq_batch *b, unsigned add_flags)
{
    for (struct dbq_item *it = b->items.head; it != NULL; it = it->next)
        it->flags |= add_flags;
    ln->q->st.requeued += b->items.n;
    list_prepend(&ln->queue, &b->items);
}

/*
 * b's sync arrived. If its COMMIT succeeded, every item is DBQ_OK.
 * Otherwise nothing of it was committed: the statement that failed gets
 * DBQ_FAILED and the others go back to the head of the queue; a failed
 * multi-row statement is split into its rows; a failed COMMIT sends each
 * item in a batch of its own; a prepared statement's own trouble
 * (DBQC_RETRY) sends them all again. Returns 0, or -1 when the session is
 * not what it should be (BEGIN or ROLLBACK failed): drop it.
 */
static int batch_settle(struct dbq_lane *ln, struct dbq_batch *b)
{
    struct dbq *q = ln->q;
    struct dbqc_req *r = &b->req;
    const struct dbqc_stmt *fs;
    struct dbq_list again = {0};
    struct dbq_item *it;
    size_t n = b->items.n;
    int fi;

    if (batch_committed(b)) {
        int k = 0;

        q->st.commits++;
        while (k < DBQ_HIST_BUCKETS - 1 && ((size_t)1 << k) < n)
            k++;
        q->st.batch_hist[k]++;
        for (int i = 0; i < r->n; i++) {
            const struct dbq_item *first = r->s[i].tag, *row;

            for (row = first; first != NULL && first->enext != NULL && row != NULL;
                 row = row->enext)
                q->st.rows_coalesced++;
        }
        while ((it = list_pop(&b->items)) != NULL)
            finish(q, it, DBQ_OK, r->s[it->entry].res, NULL);
        return 0;
    }
    fi = r->failed_at >= 0 ? r->failed_at : b->commit; /* no failure: COMMIT said ROLLBACK */
    fs = &r->s[fi];
    if (fs->status == DBQC_RETRY) {
        batch_requeue(ln, b, 0);
        return 0;
    }
    if (fi != b->commit && fs->tag == NULL) {
        batch_requeue(ln, b, 0);
        return -1;
    }
    while ((it = list_pop(&b->items)) != NULL) {
        if (fi == b->commit && n == 1) {
            finish(q, it, DBQ_FAILED, fs->res, "the transaction was rolled back");
            continue;
        }
        if (fi == b->commit) {
            it->flags |= ITEM_SOLO;
        } else if (it->entry == fi) {
            const struct dbq_item *first = fs->tag;

            if (first->enext == NULL) { /* a statement of its own: it failed */
                finish(q, it, DBQ_FAILED, fs->res, "the statement failed");
                continue;
            }
            it->flags |= ITEM_ALONE; /* a row of a multi-row statement: split it */
        }
        list_push(&again, it);
    }
    q->st.requeued += again.n;
    list_prepend(&ln->queue, &again);
    return 0;
}

/* ---- the class connections' callbacks (loop thread) --------------------- */

static int lane_setup(void *arg, struct dbqc *c, struct dbqc_req *setup)
{
    struct dbq_lane *ln = arg;

    /* explicitly on for durable: a cluster may default to off */
    return dbqc_req_add(setup, ln->cls != DBQ_FAST ? "SET synchronous_commit = on"
                                                   : "SET synchronous_commit = off") != NULL
               ? 0
               : -1;
}

static void lane_ready(void *arg, struct dbqc *c, const struct dbqc_req *setup)
{
    struct dbq_lane *ln = arg;

    if (ln->ever_ready)
        ln->q->st.reconnects++;
    ln->ever_ready = 1;
    lane_send(ln);
}

static void lane_done(void *arg, struct dbqc *c, struct dbqc_req *r)
{
    struct dbq_lane *ln = arg;
    struct dbq_batch *b = batch_of(r);
    int sane;

    ln->active ^= 1; /* b is settled below; the next batch goes in the other slot */
    sane = batch_settle(ln, b) == 0;
    if (!sane)
        dbqc_drop(c, "could not start a transaction");
    else
        lane_send(ln); /* before the callbacks: the next batch is on its way */
    run_finished(ln->q);
    dbqc_req_reset(r);
}

/*
 * The lane's connection failed. Its batch in flight, if any: committed if
 * its COMMIT was seen; sent again if nothing of it can have committed (the
 * COMMIT never reached libpq, or something before it had failed) or if
 * retry-safe; DBQ_UNKNOWN otherwise.
 */
static void lane_lost(void *arg, struct dbqc *c, struct dbqc_req *r, int was_ready)
{
    struct dbq_lane *ln = arg;
    struct dbq *q = ln->q;

    if (was_ready) {
        ln->down_since = now_ms();
        q->expire_dirty = 1;
        q->st.disconnects++;
    }
    if (r != NULL) {
        struct dbq_batch *b = batch_of(r);
        int committed = r->sent > b->commit && batch_committed(b);
        int aborted = r->sent <= b->commit || r->failed_at >= 0;
        struct dbq_list again = {0};
        struct dbq_item *it;

        while ((it = list_pop(&b->items)) != NULL) {
            if (committed)
                finish(q, it, DBQ_OK, r->s[it->entry].res, NULL);
            else if (aborted || (it->flags & DBQ_RETRY_SAFE) != 0)
                list_push(&again, it);
            else
                finish(q, it, DBQ_UNKNOWN, NULL,
                       "connection to the database lost before the commit was seen");
        }
        q->st.requeued += again.n;
        list_prepend(&ln->queue, &again);
        run_finished(q); /* committed items point at r's results */
        dbqc_req_reset(r);
    }
}

static const struct dbqc_ops lane_ops = {
    .setup = lane_setup,
    .ready = lane_ready,
    .done = lane_done,
    .lost = lane_lost,
    .notify = NULL,
};

/* ---- the LISTEN connection's callbacks (loop thread) -------------------- */

/* Sends LISTEN for every channel not listened to yet, if the connection
 * is idle. */
static void listen_send(struct dbq *q)
{
    if (q->lconn == NULL || !dbqc_idle(q->lconn))
        return;
    for (int i = 0; i < q->nlisteners; i++) {
        struct dbqc_stmt *s;

        if (q->listeners[i].active)
            continue;
        s = dbqc_req_add(&q->lreq, q->listeners[i].listen_sql);
        if (s == NULL)
            break;
        s->tag = (void *)(intptr_t)i;
    }
    if (q->lreq.n > 0)
        (void)dbqc_send(q->lconn, &q->lreq); /* on failure: lost reset it */
}

static int listen_setup(void *arg, struct dbqc *c, struct dbqc_req *setup)
{
    return 0;
}

static void listen_ready(void *arg, struct dbqc *c, const struct dbqc_req *setup)
{
    struct dbq *q = arg;

    if (q->lever_ready)
        q->st.reconnects++;
    q->lever_ready = 1;
    listen_send(q);
}

/* The LISTENs are answered: each channel listened to hears payload NULL;
 * a LISTEN that failed is given up (logged), the skipped ones go again. */
static void listen_done(void *arg, struct dbqc *c, struct dbqc_req *r)
{
    struct dbq *q = arg;

    for (int i = 0; i < r->n; i++) {
        int k = (int)(intptr_t)r->s[i].tag;
        struct dbq_listener *l = &q->listeners[k];

        if (r->s[i].status == DBQC_FAILED) {
            log_warning("could not listen on channel \"%s\": %s", l->channel,
                        PQresultErrorField(r->s[i].res, PG_DIAG_MESSAGE_PRIMARY));
            l->active = 1;
        } else if (r->s[i].status == DBQC_OK) {
            l->active = 1;
            /* the callee may add listeners (the array may move): no l after */
            l->fn(l->arg, l->channel, NULL);
        }
    }
    dbqc_req_reset(r);
    listen_send(q);
}

static void listen_lost(void *arg, struct dbqc *c, struct dbqc_req *r, int was_ready)
{
    struct dbq *q = arg;

    if (was_ready)
        q->st.disconnects++;
    if (r != NULL)
        dbqc_req_reset(r);
    for (int i = 0; i < q->nlisteners; i++)
        q->listeners[i].active = 0;
}

static void listen_notify(void *arg, struct dbqc *c, const PGnotify *n)
{
    struct dbq *q = arg;

    for (int i = 0; i < q->nlisteners; i++) {
        struct dbq_listener *l = &q->listeners[i];

        if (strcmp(l->channel, n->relname) == 0)
            l->fn(l->arg, l->channel, n->extra); /* may add listeners: no l after */
    }
}

static const struct dbqc_ops listen_ops = {
    .setup = listen_setup,
    .ready = listen_ready,
    .done = listen_done,
    .lost = listen_lost,
    .notify = listen_notify,
};

/* ---- the turn's end: rejections, deadlines, batches, health ------------- */

static void on_expire_timer(void *arg)
{
    struct dbq *q = arg;

    q->expire_dirty = 1; /* the end-of-turn hook, right after the timers, does the work */
}

/*
 * Gives DBQ_UNAVAILABLE to every queued statement that has waited wait_ms
 * while its class's connection was not ready (DBQ_PERSIST ones wait on),
 * and arms the timer for the next such deadline.
 */
static void expire(struct dbq *q)
{
    int64_t now = now_ms(), next = INT64_MAX;

    q->expire_dirty = 0;
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        struct dbq_lane *ln = &q->lanes[k];
        struct dbq_item **pp = &ln->queue.head, *prev = NULL, *it;

        if (dbqc_ready(ln->conn))
            continue;
        while ((it = *pp) != NULL) {
            int64_t from = it->queued_at > ln->down_since ? it->queued_at : ln->down_since;

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
            if (ln->queue.tail == it)
                ln->queue.tail = prev;
            ln->queue.n--;
            finish(q, it, DBQ_UNAVAILABLE, NULL, "the database was unavailable for too long");
        }
    }
    if (next == INT64_MAX)
        loop_timer_cancel(q->loop, &q->expire_timer);
    else
        loop_timer_set(q->loop, &q->expire_timer, next, on_expire_timer, q);
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
    for (int k = 0; k < DBQ_NCLASSES; k++)
        lane_send(&q->lanes[k]);
    listen_send(q);
    health_update(q);
}

/* ---- the API ------------------------------------------------------------ */

/* The connection of a lane or of LISTEN, on q's settings. */
static struct dbqc *conn_new(struct dbq *q, const char *role, const struct dbqc_ops *ops, void *arg)
{
    struct dbqc_config cc = {.url = q->url,
                             .app_name = q->app,
                             .role = role,
                             .connect_timeout_ms = q->connect_timeout_ms,
                             .statement_timeout_ms = q->statement_timeout_ms,
                             .health_ms = q->health_ms};

    return dbqc_new(q->loop, &cc, ops, arg);
}

struct dbq *dbq_new(struct loop *l, const struct dbq_config *cfg)
{
    static const char *const roles[DBQ_NCLASSES] = {"durable", "fast", "insert"};
    struct dbq *q = calloc(1, sizeof(*q));
    int64_t now = now_ms();

    if (q == NULL)
        goto nomem;
    q->loop = l;
    q->url = strdup(cfg->url != NULL ? cfg->url : "");
    if (q->url == NULL)
        goto nomem;
    snprintf(q->app, sizeof(q->app), "%s", cfg->app_name != NULL ? cfg->app_name : DBQ_DEFAULT_APP);
    q->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DBQ_DEFAULT_CONNECT_TIMEOUT_MS;
    q->statement_timeout_ms = cfg->statement_timeout_ms > 0 ? cfg->statement_timeout_ms
                                                            : DBQ_DEFAULT_STATEMENT_TIMEOUT_MS;
    q->health_ms = cfg->health_ms > 0 ? cfg->health_ms : DBQ_DEFAULT_HEALTH_MS;
    q->queue_max = cfg->queue_max > 0 ? cfg->queue_max : DBQ_DEFAULT_QUEUE_MAX;
    q->wait_ms = cfg->wait_ms > 0 ? cfg->wait_ms : DBQ_DEFAULT_WAIT_MS;
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        struct dbq_lane *ln = &q->lanes[k];

        ln->q = q;
        ln->cls = (enum dbq_class)k;
        ln->down_since = now;
        ln->conn = conn_new(q, roles[k], &lane_ops, ln);
        if (ln->conn == NULL)
            goto nomem;
    }
    q->lconn = conn_new(q, "listen", &listen_ops, q);
    if (q->lconn == NULL)
        goto nomem;
    if (loop_on_turn_end(l, on_turn_end, q) < 0) {
        dbq_free(q);
        errno = EMFILE;
        return NULL;
    }
    return q;
nomem:
    dbq_free(q);
    errno = ENOMEM;
    return NULL;
}

int dbq_start(struct dbq *q)
{
    q->started = 1;
    for (int k = 0; k < DBQ_NCLASSES; k++)
        dbqc_start(q->lanes[k].conn);
    if (q->nlisteners > 0)
        dbqc_start(q->lconn);
    return 0;
}

void dbq_free(struct dbq *q)
{
    struct dbq_item *it;

    if (q == NULL)
        return;
    q->closing = 1;
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        struct dbq_lane *ln = &q->lanes[k];
        struct dbqc_req *r = ln->conn != NULL ? dbqc_in_flight(ln->conn) : NULL;

        if (r != NULL) {
            struct dbq_batch *b = batch_of(r);
            int committed = r->sent > b->commit && batch_committed(b);
            int aborted = r->sent <= b->commit || r->failed_at >= 0;

            while ((it = list_pop(&b->items)) != NULL) {
                if (committed)
                    finish(q, it, DBQ_OK, r->s[it->entry].res, NULL);
                else if (aborted)
                    finish(q, it, DBQ_UNAVAILABLE, NULL, "shutting down");
                else
                    finish(q, it, DBQ_UNKNOWN, NULL, "shutting down before the commit was seen");
            }
        }
        while ((it = list_pop(&ln->queue)) != NULL)
            finish(q, it, DBQ_UNAVAILABLE, NULL, "shutting down");
    }
    while ((it = list_pop(&q->rejected)) != NULL)
        finish(q, it, DBQ_UNAVAILABLE, NULL, "shutting down");
    run_finished(q);
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        struct dbq_lane *ln = &q->lanes[k];

        dbqc_free(ln->conn);
        for (int i = 0; i < 2; i++) {
            dbqc_req_free(&ln->batch[i].req);
            batch_free_bufs(&ln->batch[i]);
            free(ln->batch[i].bufs);
        }
    }
    dbqc_free(q->lconn);
    dbqc_req_free(&q->lreq);
    if (q->loop != NULL) {
        loop_timer_cancel(q->loop, &q->expire_timer);
        loop_off_turn_end(q->loop, on_turn_end, q);
    }
    while (q->rows != NULL) {
        struct dbq_rows *s = q->rows;

        q->rows = s->next;
        free(s);
    }
    for (int i = 0; i < q->nlisteners; i++) {
        free(q->listeners[i].channel);
        free(q->listeners[i].listen_sql);
    }
    free(q->listeners);
    free(q->url);
    free(q);
}

/* Checks the class and flags of a statement or template; 0 or -1 (EINVAL). */
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

/* "LISTEN " and channel as a quoted identifier ('"' doubled); malloc'ed or
 * NULL. The server truncates identifiers at 63 bytes, as for any name. */
static char *listen_sql(const char *channel)
{
    size_t n = strlen("LISTEN \"\"") + 1;
    char *sql, *p;

    for (const char *c = channel; *c != '\0'; c++)
        n += *c == '"' ? 2 : 1;
    sql = malloc(n);
    if (sql == NULL)
        return NULL;
    p = sql + snprintf(sql, n, "LISTEN \"");
    for (const char *c = channel; *c != '\0'; c++) {
        if (*c == '"')
            *p++ = '"';
        *p++ = *c;
    }
    *p++ = '"';
    *p = '\0';
    return sql;
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
    l->listen_sql = listen_sql(channel);
    if (l->channel == NULL || l->listen_sql == NULL) {
        free(l->channel);
        free(l->listen_sql);
        errno = ENOMEM;
        return -1;
    }
    l->fn = fn;
    l->arg = arg;
    l->active = 0;
    q->nlisteners++;
    /* ready: the LISTEN goes at the turn's end; otherwise once it is */
    if (q->started)
        dbqc_start(q->lconn);
    return 0;
}

int dbq_healthy(const struct dbq *q)
{
    if (!q->started)
        return 0;
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        if (!dbqc_healthy(q->lanes[k].conn))
            return 0;
    }
    return q->nlisteners == 0 || dbqc_healthy(q->lconn);
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
        if (q->lanes[k].queue.n > 0 || dbqc_in_flight(q->lanes[k].conn) != NULL)
            return 0;
    }
    return 1;
}

void dbq_stats(const struct dbq *q, struct dbq_stats *out)
{
    *out = q->st;
    out->queue_depth = q->rejected.n;
    out->in_flight = 0;
    out->probes = dbqc_probes(q->lconn);
    for (int k = 0; k < DBQ_NCLASSES; k++) {
        struct dbqc_req *r = dbqc_in_flight(q->lanes[k].conn);

        out->queue_depth += q->lanes[k].queue.n;
        if (r != NULL)
            out->in_flight += batch_of(r)->items.n;
        out->probes += dbqc_probes(q->lanes[k].conn);
    }
}
