/*
 * events.c: see events.h. Server-Sent Events of runs and projects, read
 * from the database after each wf_events notification.
 *
 * A stream (struct ev_client) goes through three states:
 *   EVS_OPENING    its request is suspended while the first query runs;
 *                  the answer decides 404 (no such run or project), 503
 *                  (database unavailable) or the 200 stream;
 *   EVS_STREAMING  its callback response is queued; events are appended
 *                  to its buffer on the loop and read out by
 *                  libmicrohttpd's thread;
 *   EVS_DONE       the response was freed (client gone, stream ended) or
 *                  the request was answered with an error; the tick
 *                  unlinks it once no query of it is in flight.
 *
 * Sharing: the buffer, the connection pointer and the suspended/end flags
 * are shared with libmicrohttpd's thread and guarded by the stream's
 * mutex; everything else is the loop's. A stream is reference-counted:
 * one reference for the loop's list, one for the callback response (given
 * back in its free callback). The loop resumes a connection only while the
 * response exists (conn not NULL) and the callback suspended it, both read
 * under the mutex, so a resume never reaches a connection that is gone
 * and always follows its suspend.
 *
 * Event ids (docs/api.md "Live events"):
 *   run stream      "<g>.<s>.<v>.<c>": g the run's retries (generation),
 *                   s the next step seq the client lacks, v the number of
 *                   run events sent, c the last status sent (0..6).
 *                   Monotone: (g, s, v) only grows, lexicographically. A
 *                   resume sends the steps from s on and the run's status
 *                   if it is not c. A generation change (a retry rewrote
 *                   the history) sends a "retry" event and the history
 *                   again from step 0.
 *   project stream  "<us>.<uuid>": the run's updated_at in microseconds
 *                   since the epoch and its id: keyset order, read only up
 *                   to the horizon of open transactions (migration 8,
 *                   wf_project_events), so a late commit is not skipped.
 * Steps are history, sent once each in seq order; a run's status is state:
 * a stream sends the status it finds when it differs from the last one
 * sent, so statuses a run passed through between two reads are folded
 * (the final one always arrives). A step still 'waiting' (a signal wait)
 * is not history yet: it is sent once it completes or times out.
 *
 * Errors: a query that fails is retried at the next tick; nothing is
 * logged per stream but the closing of an overflowing one (debug).
 */
#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_executions.h"
#include "dbq.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"

#define EV_TICK_MS 100        /* retries, sweeps and keep-alives this often */
#define EV_KEEPALIVE_MS 15000 /* a comment line after this long without a write */
#define EV_BUF_FIRST 1024     /* a buffer's first allocation */
/* libmicrohttpd allocates (and zeroes) a buffer of this size with each
 * callback response, for the stream's whole life: small, or 1,000 idle
 * streams cost 16 MB of it. */
#define EV_BLOCK 1024
#define EV_RUN_STEPS 64 /* steps read per query (SQL_RUN's LIMIT) */
#define EV_RUN_STEPS_SQL "64"
#define EV_PROJECT_ROWS 128 /* runs read per project query */
/* Reads in flight for all streams at once: bounds the database's work and
 * core's memory when many streams want to read at the same moment (a
 * notification for a project many watch, a thousand clients connecting). */
#define EV_QUERIES_MAX 32
#define EV_NIL_UUID "00000000-0000-0000-0000-000000000000"

/* What a run event or step event carries of an output: up to this many
 * bytes; a larger one is left out ("outputTruncated": true) and read with
 * GET /executions/{id}. */
#define EV_OUTPUT_MAX "4096"

/* to_char(<timestamptz> ISO_MS): as in every reply */
#define ISO_MS " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"

/* The run and its steps from seq $2 on, in one statement (one snapshot):
 * the run's row first (ord 0), then at most EV_RUN_STEPS steps by seq.
 * Columns: ord, seq, status, retries, project_id, event JSON. */
static const char SQL_RUN[] =
    "SELECT 0 AS ord, NULL::int AS seq, e.status, e.retries, e.project_id,"
    " jsonb_build_object('executionId', e.id, 'projectId', e.project_id,"
    "  'workflow', e.workflow, 'status', e.status, 'retries', e.retries,"
    "  'attempt', e.attempt, 'updatedAt', to_char(e.updated_at" ISO_MS "),"
    "  'completedAt', to_char(e.completed_at" ISO_MS "),"
    "  'output', CASE WHEN octet_length(e.output::text) <= " EV_OUTPUT_MAX " THEN e.output END,"
    "  'outputTruncated', coalesce(octet_length(e.output::text) > " EV_OUTPUT_MAX ", false),"
    "  'error', CASE WHEN octet_length(e.error::text) <= " EV_OUTPUT_MAX " THEN e.error END,"
    "  'errorTruncated', coalesce(octet_length(e.error::text) > " EV_OUTPUT_MAX ", false))::text"
    " FROM executions e WHERE e.id = $1::uuid"
    " UNION ALL"
    " SELECT 1, s.seq, s.status, NULL, NULL,"
    " jsonb_build_object('executionId', s.execution_id, 'seq', s.seq, 'name', s.name,"
    "  'kind', s.kind, 'status', s.status, 'attempts', s.attempts,"
    "  'startedAt', to_char(s.started_at" ISO_MS "),"
    "  'completedAt', to_char(s.completed_at" ISO_MS "),"
    "  'output', CASE WHEN octet_length(s.output::text) <= " EV_OUTPUT_MAX " THEN s.output END,"
    "  'outputTruncated', coalesce(octet_length(s.output::text) > " EV_OUTPUT_MAX ", false),"
    "  'error', left(s.error, " EV_OUTPUT_MAX "))::text"
    " FROM (SELECT * FROM steps WHERE execution_id = $1::uuid AND seq >= $2::int"
    "  ORDER BY seq LIMIT " EV_RUN_STEPS_SQL ") s"
    " ORDER BY 1, 2";

/* Whether the project exists (a row with ord 0), then wf_project_events'
 * rows in their order. Columns: ord, n, key_us, id, event JSON. */
static const char SQL_PROJECT[] =
    "SELECT 0 AS ord, 0::bigint AS n, NULL::bigint, NULL::uuid, NULL::text"
    " FROM projects WHERE id = $1"
    " UNION ALL"
    " SELECT 1, k.n, k.key_us, k.id, k.ev"
    " FROM wf_project_events($1, $2::bigint, $3::uuid, $4::int) WITH ORDINALITY"
    "  AS k(key_us, id, ev, n)"
    " ORDER BY 1, 2";

/* A run's statuses, in the order of their codes in event ids. */
static const char *const run_statuses[] = {"pending",   "running", "sleeping", "waiting",
                                           "completed", "failed",  "cancelled"};
#define NSTATUSES ((int)(sizeof(run_statuses) / sizeof(run_statuses[0])))

enum ev_kind {
    EVK_RUN,    /* GET /executions/{id}/events */
    EVK_PROJECT /* GET /projects/{id}/events */
};

enum ev_state {
    EVS_OPENING,   /* request suspended, first query in flight */
    EVS_STREAMING, /* callback response queued */
    EVS_DONE       /* answered or gone: unlinked once no query is in flight */
};

enum ev_end {
    EVE_NONE,  /* the stream goes on */
    EVE_CLEAN, /* end the stream after the buffer (shutdown) */
    EVE_ABORT  /* close the connection now (overflow, vanished run) */
};

struct ev_client {
    /* Shared with libmicrohttpd's thread, under mu. */
    pthread_mutex_t mu;
    int refs;                    /* the loop's list, the callback response */
    struct MHD_Connection *conn; /* while the response exists; else NULL */
    int suspended;               /* the callback suspended the connection */
    int want_drain;              /* the loop waits for the buffer to empty */
    enum ev_end end;
    char *buf; /* bytes off..len are to be sent; cap allocated */
    size_t off, len, cap;

    /* Loop only. */
    struct events *ev;
    struct ev_client *prev, *next;
    struct http_req *req; /* EVS_OPENING: the request to finish */
    enum ev_kind kind;
    enum ev_state state;
    char key[HTTP_ARG_MAX + 1];     /* the run's id or the project's */
    char project[HTTP_ARG_MAX + 1]; /* a run's project, once read ("" before) */
    int inflight;                   /* a query of it is in flight */
    int dirty;                      /* read again once it is answered (or at the tick) */
    int64_t last_write_ms;
    /* run cursor */
    long long gen; /* -1: none yet (adopt the run's) */
    long long seq, ver;
    int status; /* -1: none sent */
    /* project cursor */
    int started; /* after_us/after_id hold a position */
    long long after_us;
    char after_id[40];
};

struct events {
    struct core *core;
    struct loop *loop;
    struct dbq *q;
    struct ev_client list; /* sentinel */
    struct loop_timer tick;
    int stopping;
    int queries; /* reads in flight, at most EV_QUERIES_MAX */
    int backlog; /* a stream waits for a free read slot */
    long open;   /* __atomic: streams linked */
};

/* ---- the shared part (any thread, under the stream's mutex) ---- */

static void client_unref(struct ev_client *cl)
{
    int left;

    pthread_mutex_lock(&cl->mu);
    left = --cl->refs;
    pthread_mutex_unlock(&cl->mu);
    if (left > 0)
        return;
    free(cl->buf);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

/* Under mu: resumes the connection if the callback suspended it. */
static void wake_locked(struct ev_client *cl)
{
    if (cl->suspended && cl->conn != NULL) {
        cl->suspended = 0;
        MHD_resume_connection(cl->conn);
    }
}

static void drained_task(void *arg);

/*
 * libmicrohttpd's thread: the response's content. Copies what the buffer
 * holds; at its end, ends the stream if asked, else suspends the
 * connection until the loop appends (returns 0, which libmicrohttpd takes
 * as "try again" once resumed).
 */
static ssize_t read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
    struct ev_client *cl = cls;
    ssize_t ret;
    size_t n;

    (void)pos;
    pthread_mutex_lock(&cl->mu);
    n = cl->len - cl->off;
    if (cl->end == EVE_ABORT) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (n > 0) {
        if (n > max)
            n = max;
        memcpy(out, cl->buf + cl->off, n);
        cl->off += n;
        if (cl->off == cl->len) {
            /* drained: an idle stream holds no buffer */
            cl->off = cl->len = 0;
            free(cl->buf);
            cl->buf = NULL;
            cl->cap = 0;
            if (cl->want_drain) {
                /* the loop held back a read for room: it has it now */
                cl->want_drain = 0;
                cl->refs++;
                if (core_post(cl->ev->core, drained_task, cl) < 0)
                    cl->refs--;
            }
        }
        ret = (ssize_t)n;
    } else if (cl->end == EVE_CLEAN) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        cl->suspended = 1;
        MHD_suspend_connection(cl->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&cl->mu);
    return ret;
}

/* libmicrohttpd's thread: the response is gone (client left, stream
 * ended, or it was never queued): drops the buffer and its reference. */
static void read_free_cb(void *cls)
{
    struct ev_client *cl = cls;

    pthread_mutex_lock(&cl->mu);
    cl->conn = NULL;
    cl->suspended = 0;
    free(cl->buf);
    cl->buf = NULL;
    cl->off = cl->len = cl->cap = 0;
    pthread_mutex_unlock(&cl->mu);
    client_unref(cl);
}

/* ---- appending (loop) ---- */

/*
 * Appends n bytes to the stream's buffer and wakes its connection. Returns
 * 0; -1 when the stream no longer takes bytes (gone, ending) or would pass
 * EVENTS_BUF_MAX, in which case it is closed (EVE_ABORT: the client
 * reconnects with its Last-Event-ID) and its buffer freed.
 */
static int client_append(struct ev_client *cl, const char *data, size_t n)
{
    int rc = 0;

    pthread_mutex_lock(&cl->mu);
    if (cl->conn == NULL || cl->end != EVE_NONE) {
        rc = -1;
    } else if (cl->len - cl->off + n > EVENTS_BUF_MAX) {
        log_debug("events: closing a stream of %s whose client does not keep up", cl->key);
        cl->end = EVE_ABORT;
        free(cl->buf);
        cl->buf = NULL;
        cl->off = cl->len = cl->cap = 0;
        rc = -1;
    } else {
        if (cl->off > 0) {
            memmove(cl->buf, cl->buf + cl->off, cl->len - cl->off);
            cl->len -= cl->off;
            cl->off = 0;
        }
        if (cl->len + n > cl->cap) {
            size_t cap = cl->cap > 0 ? cl->cap : EV_BUF_FIRST;
            char *b;
            while (cap < cl->len + n)
                cap *= 2;
            if (cap > EVENTS_BUF_MAX)
                cap = EVENTS_BUF_MAX;
            b = realloc(cl->buf, cap);
            if (b == NULL) {
                cl->end = EVE_ABORT;
                rc = -1;
            } else {
                cl->buf = b;
                cl->cap = cap;
            }
        }
        if (rc == 0) {
            memcpy(cl->buf + cl->len, data, n);
            cl->len += n;
        }
    }
    wake_locked(cl);
    pthread_mutex_unlock(&cl->mu);
    if (rc == 0)
        cl->last_write_ms = loop_now(cl->ev->loop);
    return rc;
}

/* 1 when the buffer is more than half full: no more is read for the
 * stream until the callback empties it (it then posts drained_task). */
static int client_full(struct ev_client *cl)
{
    int full;

    pthread_mutex_lock(&cl->mu);
    full = cl->len - cl->off > EVENTS_BUF_MAX / 2;
    if (full)
        cl->want_drain = 1;
    pthread_mutex_unlock(&cl->mu);
    return full;
}

/* 1 when the stream still takes events. */
static int client_live(struct ev_client *cl)
{
    int live;

    pthread_mutex_lock(&cl->mu);
    live = cl->conn != NULL && cl->end == EVE_NONE;
    pthread_mutex_unlock(&cl->mu);
    return live;
}

/*
 * Appends one event: "id: <id>\nevent: <name>\ndata: <json>\n\n". The JSON
 * comes from PostgreSQL's jsonb output, which has no line break outside
 * strings (inside them they are escaped); any CR or LF is made a blank all
 * the same, since it would end the data line. Returns as client_append.
 */
static int append_event(struct ev_client *cl, const char *id, const char *name, const char *json)
{
    size_t jl = strlen(json);
    size_t cap = jl + strlen(id) + strlen(name) + 32;
    char *frame = malloc(cap);
    int n, rc;

    if (frame == NULL)
        return -1;
    n = snprintf(frame, cap, "id: %s\nevent: %s\ndata: ", id, name);
    memcpy(frame + n, json, jl);
    for (size_t i = 0; i < jl; i++) {
        if (frame[n + i] == '\n' || frame[n + i] == '\r')
            frame[n + i] = ' ';
    }
    memcpy(frame + n + jl, "\n\n", 2);
    rc = client_append(cl, frame, (size_t)n + jl + 2);
    free(frame);
    return rc;
}

/* ---- ids ---- */

/* Parses a non-negative decimal of at most 18 digits at *p, up to a '.' or
 * the end; advances *p past it. Returns 0 or -1. */
static int parse_num(const char **p, long long *out)
{
    const char *s = *p;
    long long v = 0;
    int digits = 0;

    while (*s >= '0' && *s <= '9' && digits < 18) {
        v = v * 10 + (*s - '0');
        s++;
        digits++;
    }
    if (digits == 0 || (*s != '.' && *s != '\0'))
        return -1;
    *out = v;
    *p = s;
    return 0;
}

/* A run stream's Last-Event-ID, "<g>.<s>.<v>.<c>", into cl. Returns 0 or -1. */
static int parse_run_id(const char *id, struct ev_client *cl)
{
    long long g, s, v, c;

    if (parse_num(&id, &g) < 0 || *id++ != '.' || parse_num(&id, &s) < 0 || *id++ != '.' ||
        parse_num(&id, &v) < 0 || *id++ != '.' || parse_num(&id, &c) < 0 || *id != '\0')
        return -1;
    if (c >= NSTATUSES || s > 2147483647LL)
        return -1;
    cl->gen = g;
    cl->seq = s;
    cl->ver = v;
    cl->status = v > 0 ? (int)c : -1;
    return 0;
}

/* A project stream's Last-Event-ID, "<us>.<uuid>", into cl. Returns 0 or -1. */
static int parse_project_id(const char *id, struct ev_client *cl)
{
    long long us;

    if (parse_num(&id, &us) < 0 || *id++ != '.' || !api_exec_valid_uuid(id))
        return -1;
    cl->after_us = us;
    snprintf(cl->after_id, sizeof(cl->after_id), "%s", id);
    cl->started = 1;
    return 0;
}

static void run_event_id(const struct ev_client *cl, char *buf, size_t len)
{
    snprintf(buf, len, "%lld.%lld.%lld.%d", cl->gen, cl->seq, cl->ver,
             cl->status >= 0 ? cl->status : 0);
}

static int status_code(const char *s)
{
    for (int i = 0; i < NSTATUSES; i++) {
        if (strcmp(s, run_statuses[i]) == 0)
            return i;
    }
    return -1;
}

/* ---- queries (loop) ---- */

static void on_answer(void *arg, const struct dbq_result *r);

/*
 * Reads what the stream lacks. Unless a read of it is in flight, its
 * buffer is more than half full (drained_task reads again), EV_QUERIES_MAX
 * reads of all streams are in flight (the next answer reads again: see
 * kick) or the module stops; then it only marks the stream dirty. Returns
 * 0, or -1 when the read could not be submitted (out of memory, the
 * database layer going away): the stream is dirty and the tick tries
 * again.
 */
static int client_query(struct ev_client *cl)
{
    struct events *ev = cl->ev;
    char seq[24], us[24], lim[16];
    const char *p[4];
    int rc;

    if (cl->state == EVS_DONE)
        return 0;
    if (cl->inflight || ev->stopping) {
        cl->dirty = 1;
        return 0;
    }
    if (ev->queries >= EV_QUERIES_MAX) {
        cl->dirty = 1;
        ev->backlog = 1;
        return 0;
    }
    if (cl->state == EVS_STREAMING && client_full(cl)) {
        cl->dirty = 1; /* read again when the client has read this */
        return 0;
    }
    cl->dirty = 0;
    if (cl->kind == EVK_RUN) {
        snprintf(seq, sizeof(seq), "%lld", cl->seq);
        p[0] = cl->key;
        p[1] = seq;
        rc = dbq_exec(ev->q, DBQ_FAST, DBQ_RETRY_SAFE, SQL_RUN, 2, p, NULL, NULL, on_answer, cl);
    } else {
        snprintf(us, sizeof(us), "%lld", cl->after_us);
        snprintf(lim, sizeof(lim), "%d", EV_PROJECT_ROWS);
        p[0] = cl->key;
        p[1] = cl->started ? us : NULL;
        p[2] = cl->started ? cl->after_id : NULL;
        p[3] = lim;
        rc =
            dbq_exec(ev->q, DBQ_FAST, DBQ_RETRY_SAFE, SQL_PROJECT, 4, p, NULL, NULL, on_answer, cl);
    }
    if (rc < 0) {
        cl->dirty = 1; /* out of memory or shutting down: the tick tries again */
        return -1;
    }
    cl->inflight = 1;
    ev->queries++;
    return 0;
}

/* Reads for the dirty streams that waited for a free query slot, while
 * slots are free. */
static void kick(struct events *ev)
{
    ev->backlog = 0;
    for (struct ev_client *cl = ev->list.next; cl != &ev->list && !ev->backlog; cl = cl->next) {
        if (cl->dirty && !cl->inflight && cl->state != EVS_DONE)
            (void)client_query(cl);
    }
}

/*
 * The run stream's new events from a SQL_RUN answer with rows. Returns 1
 * when the read stopped short (more steps, or a retry restarted the
 * history) and the stream should be read again at once.
 */
static int run_events(struct ev_client *cl, const PGresult *res)
{
    int n = PQntuples(res), nsteps = 0, waiting = 0, code;
    long long gen = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    char id[96], json[160];

    snprintf(cl->project, sizeof(cl->project), "%s", PQgetvalue(res, 0, 4));
    if (cl->gen < 0) {
        cl->gen = gen;
    } else if (gen != cl->gen) {
        /* A retry rewrote the history from its failed step on: say so and
         * send it again from the start. */
        cl->gen = gen;
        cl->seq = 0;
        cl->ver++;
        run_event_id(cl, id, sizeof(id));
        snprintf(json, sizeof(json), "{\"executionId\":\"%s\",\"retries\":%lld}", cl->key, gen);
        (void)append_event(cl, id, "retry", json);
        return 1;
    }
    for (int i = 1; i < n && !waiting; i++) {
        long long seq = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        nsteps++;
        if (seq < cl->seq)
            continue;
        if (strcmp(PQgetvalue(res, i, 2), "waiting") == 0) {
            waiting = 1; /* not history yet */
            break;
        }
        if (client_full(cl))
            return 1; /* the rest when the client has read this */
        cl->seq = seq + 1;
        run_event_id(cl, id, sizeof(id));
        if (append_event(cl, id, "step", PQgetvalue(res, i, 5)) < 0)
            return 0;
    }
    if (!waiting && nsteps == EV_RUN_STEPS)
        return 1; /* the status after the last step, not before */
    code = status_code(PQgetvalue(res, 0, 2));
    if (code >= 0 && code != cl->status) {
        cl->status = code;
        cl->ver++;
        run_event_id(cl, id, sizeof(id));
        (void)append_event(cl, id, "run", PQgetvalue(res, 0, 5));
    }
    return 0;
}

/* The project stream's new events from a SQL_PROJECT answer (row 0 is the
 * project's). Returns 1 when it should be read again at once. */
static int project_events(struct ev_client *cl, const PGresult *res)
{
    int n = PQntuples(res), rows = 0;
    char id[96], json[200];

    for (int i = 1; i < n; i++) {
        if (PQgetisnull(res, i, 2)) {
            /* rows past the horizon: an open transaction may still commit
             * an older one; the tick reads again */
            cl->dirty = 1;
            continue;
        }
        if (PQgetisnull(res, i, 3)) {
            cl->after_us = strtoll(PQgetvalue(res, i, 2), NULL, 10);
            /* the starting point of a stream without Last-Event-ID */
            snprintf(cl->after_id, sizeof(cl->after_id), "%s", EV_NIL_UUID);
            cl->started = 1;
            snprintf(id, sizeof(id), "%lld.%s", cl->after_us, cl->after_id);
            snprintf(json, sizeof(json), "{\"projectId\":\"%s\"}", cl->key);
            (void)append_event(cl, id, "ready", json);
            continue;
        }
        if (client_full(cl))
            return 1; /* the rest when the client has read this */
        cl->after_us = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        snprintf(cl->after_id, sizeof(cl->after_id), "%s", PQgetvalue(res, i, 3));
        snprintf(id, sizeof(id), "%lld.%s", cl->after_us, cl->after_id);
        rows++;
        if (append_event(cl, id, "run", PQgetvalue(res, i, 4)) < 0)
            return 0;
    }
    return rows == EV_PROJECT_ROWS;
}

/*
 * EVS_OPENING, first answer with the run or project found: creates the
 * callback response and hands it to the request. Returns 0, or -1 (the
 * request was answered 503 and the stream is done).
 */
static int client_open(struct ev_client *cl)
{
    struct http_req *r = cl->req;
    struct MHD_Response *resp;

    cl->req = NULL;
    pthread_mutex_lock(&cl->mu);
    cl->refs++; /* the response's */
    cl->conn = r->conn;
    pthread_mutex_unlock(&cl->mu);
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EV_BLOCK, read_cb, cl, read_free_cb);
    if (resp == NULL) {
        pthread_mutex_lock(&cl->mu);
        cl->conn = NULL;
        pthread_mutex_unlock(&cl->mu);
        client_unref(cl);
        cl->state = EVS_DONE;
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return -1;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    cl->state = EVS_STREAMING;
    /* A reconnect hint for EventSource clients: one second. */
    (void)client_append(cl, "retry: 1000\n\n", 13);
    http_finish_response(r, MHD_HTTP_OK, resp);
    return 0;
}

static void answer(struct ev_client *cl, const struct dbq_result *r);

/* Loop: a query's answer; then the reads that waited for its slot. */
static void on_answer(void *arg, const struct dbq_result *r)
{
    struct ev_client *cl = arg;
    struct events *ev = cl->ev;

    cl->inflight = 0;
    ev->queries--;
    answer(cl, r);
    if (ev->backlog && !ev->stopping)
        kick(ev);
}

/*
 * A read's outcome for cl: a stream still opening gets its reply (503,
 * 404, or the stream with its first events); an open one gets the events
 * the rows hold past its cursor, and reads again at once when the rows
 * stopped short or a notification came meanwhile. A failed read is tried
 * again at the tick; a run or project gone ends the stream.
 */
static void answer(struct ev_client *cl, const struct dbq_result *r)
{
    int found, again;

    if (cl->state == EVS_DONE)
        return;
    /* Stopping: no stream opens any more (libmicrohttpd must find no
     * connection suspended when it stops). */
    if (r->outcome != DBQ_OK || (cl->state == EVS_OPENING && cl->ev->stopping)) {
        if (cl->state == EVS_OPENING) {
            cl->state = EVS_DONE;
            http_finish_error(cl->req, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
            cl->req = NULL;
        } else {
            cl->dirty = 1; /* the tick tries again */
        }
        return;
    }
    found = PQntuples(r->res) > 0 && strcmp(PQgetvalue(r->res, 0, 0), "0") == 0;
    if (!found) {
        if (cl->state == EVS_OPENING) {
            cl->state = EVS_DONE;
            http_finish_error(cl->req, MHD_HTTP_NOT_FOUND, "%s \"%s\" not found",
                              cl->kind == EVK_RUN ? "execution" : "project", cl->key);
            cl->req = NULL;
        } else {
            /* deleted: nothing more will come */
            pthread_mutex_lock(&cl->mu);
            cl->end = EVE_CLEAN;
            wake_locked(cl);
            pthread_mutex_unlock(&cl->mu);
            cl->state = EVS_DONE;
        }
        return;
    }
    if (cl->state == EVS_OPENING && client_open(cl) < 0)
        return;
    if (!client_live(cl)) {
        cl->state = EVS_DONE;
        return;
    }
    again = cl->kind == EVK_RUN ? run_events(cl, r->res) : project_events(cl, r->res);
    if (again || cl->dirty) {
        cl->dirty = 0;
        (void)client_query(cl);
    }
}

/* Loop task posted by read_cb: the buffer emptied while a read waited
 * for room. */
static void drained_task(void *arg)
{
    struct ev_client *cl = arg;

    if (cl->state != EVS_DONE && cl->dirty)
        (void)client_query(cl);
    client_unref(cl);
}

/* ---- subscriptions (loop) ---- */

static void client_link(struct events *ev, struct ev_client *cl)
{
    cl->next = ev->list.next;
    cl->prev = &ev->list;
    ev->list.next->prev = cl;
    ev->list.next = cl;
    __atomic_add_fetch(&ev->open, 1, __ATOMIC_RELAXED);
}

static void client_unlink(struct events *ev, struct ev_client *cl)
{
    cl->prev->next = cl->next;
    cl->next->prev = cl->prev;
    __atomic_sub_fetch(&ev->open, 1, __ATOMIC_RELAXED);
    client_unref(cl);
}

/* Loop task posted by a route: links the stream and sends its first query. */
static void subscribe_task(void *arg)
{
    struct ev_client *cl = arg;
    struct events *ev = cl->ev;

    if (ev->stopping) {
        http_finish_error(cl->req, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        client_unref(cl);
        return;
    }
    client_link(ev, cl);
    cl->last_write_ms = loop_now(ev->loop);
    if (client_query(cl) < 0) {
        cl->state = EVS_DONE;
        http_finish_error(cl->req, MHD_HTTP_SERVICE_UNAVAILABLE, "server busy; try again");
        cl->req = NULL;
    }
}

/* Loop: a wf_events notification (payload: a project id), or NULL when
 * the channel is listened to anew (notifications may have been lost:
 * every stream reads again). */
static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct events *ev = arg;

    (void)channel;
    for (struct ev_client *cl = ev->list.next; cl != &ev->list; cl = cl->next) {
        if (cl->state == EVS_DONE)
            continue;
        if (payload != NULL) {
            const char *p = cl->kind == EVK_RUN ? cl->project : cl->key;
            /* a run stream still opening does not know its project yet:
             * its query in flight reads again */
            if (p[0] == '\0' ? !cl->inflight : strcmp(p, payload) != 0)
                continue;
        }
        (void)client_query(cl);
    }
}

/* Loop, every EV_TICK_MS: unlinks finished streams, reads again the ones
 * marked dirty, and writes a keep-alive comment to the quiet ones (which
 * is also how a vanished client is noticed). */
static void on_tick(void *arg)
{
    struct events *ev = arg;
    int64_t now = loop_now(ev->loop);
    struct ev_client *next;

    loop_timer_set(ev->loop, &ev->tick, now + EV_TICK_MS, on_tick, ev);
    for (struct ev_client *cl = ev->list.next; cl != &ev->list; cl = next) {
        next = cl->next;
        if (cl->state == EVS_STREAMING && !client_live(cl))
            cl->state = EVS_DONE;
        if (cl->state == EVS_DONE) {
            if (!cl->inflight)
                client_unlink(ev, cl);
            continue;
        }
        if (cl->dirty)
            (void)client_query(cl);
        if (cl->state == EVS_STREAMING && now - cl->last_write_ms >= EV_KEEPALIVE_MS)
            (void)client_append(cl, ": keepalive\n\n", 13);
    }
}

/* ---- routes (libmicrohttpd's threads) ---- */

/* Allocates a stream for r with one reference (the loop's list). */
static struct ev_client *client_new(struct core *c, struct http_req *r, enum ev_kind kind,
                                    const char *key)
{
    struct ev_client *cl = calloc(1, sizeof(*cl));

    if (cl == NULL)
        return NULL;
    pthread_mutex_init(&cl->mu, NULL);
    cl->refs = 1;
    cl->ev = c->events;
    cl->req = r;
    cl->kind = kind;
    cl->state = EVS_OPENING;
    snprintf(cl->key, sizeof(cl->key), "%s", key);
    cl->gen = -1;
    cl->status = -1;
    return cl;
}

/* The id to resume from: the Last-Event-ID header, else the lastEventId
 * query argument (for clients that cannot set headers), else NULL. */
static const char *last_event_id(struct MHD_Connection *conn, struct http_req *r)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");

    if (h != NULL && h[0] != '\0')
        return h;
    h = http_query_arg(r, "lastEventId");
    return h != NULL && h[0] != '\0' ? h : NULL;
}

/* Validates, then defers r to the loop's subscribe_task. */
static enum MHD_Result subscribe(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 enum ev_kind kind, const char *key)
{
    const char *last = last_event_id(conn, r);
    struct ev_client *cl;

    if (c->events == NULL)
        return http_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "events are not available");
    cl = client_new(c, r, kind, key);
    if (cl == NULL)
        return http_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    if (last != NULL &&
        (kind == EVK_RUN ? parse_run_id(last, cl) : parse_project_id(last, cl)) < 0) {
        client_unref(cl);
        return http_send_error(
            conn, MHD_HTTP_BAD_REQUEST,
            "invalid Last-Event-ID: pass the id of an event of this stream as it is");
    }
    http_defer(r);
    if (core_post(c, subscribe_task, cl) < 0) {
        client_unref(cl);
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
    }
    return MHD_YES;
}

enum MHD_Result api_events_execution(struct core *c, struct MHD_Connection *conn,
                                     struct http_req *r, const char *const *args)
{
    if (!api_exec_valid_uuid(args[0]))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid execution id: must be a UUID");
    return subscribe(c, conn, r, EVK_RUN, args[0]);
}

enum MHD_Result api_events_project(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                   const char *const *args)
{
    if (!ju_valid_id(args[0]))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid project id: must match ^[A-Za-z0-9_-]{1,64}$");
    return subscribe(c, conn, r, EVK_PROJECT, args[0]);
}

/* ---- life cycle (loop) ---- */

struct events *events_new(struct core *c)
{
    struct events *ev = calloc(1, sizeof(*ev));
    struct loop *l = c->loop;
    struct dbq *q = c->dbq;

    if (ev == NULL)
        return NULL;
    ev->core = c;
    ev->loop = l;
    ev->q = q;
    ev->list.next = ev->list.prev = &ev->list;
    if (dbq_listen(q, "wf_events", on_notify, ev) < 0) {
        free(ev);
        return NULL;
    }
    loop_timer_set(l, &ev->tick, loop_now(l) + EV_TICK_MS, on_tick, ev);
    return ev;
}

void events_stop(struct events *ev)
{
    if (ev == NULL || ev->stopping)
        return;
    ev->stopping = 1;
    loop_timer_cancel(ev->loop, &ev->tick);
    for (struct ev_client *cl = ev->list.next; cl != &ev->list; cl = cl->next) {
        if (cl->state == EVS_OPENING && !cl->inflight) {
            /* waiting for a query slot: answered now (one in flight is
             * answered by its callback) */
            cl->state = EVS_DONE;
            http_finish_error(cl->req, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
            cl->req = NULL;
            continue;
        }
        pthread_mutex_lock(&cl->mu);
        if (cl->end == EVE_NONE)
            cl->end = EVE_CLEAN;
        wake_locked(cl);
        pthread_mutex_unlock(&cl->mu);
    }
}

void events_free(struct events *ev)
{
    if (ev == NULL)
        return;
    events_stop(ev);
    while (ev->list.next != &ev->list)
        client_unlink(ev, ev->list.next);
    free(ev);
}

long events_open_streams(const struct events *ev)
{
    return ev != NULL ? __atomic_load_n(&ev->open, __ATOMIC_RELAXED) : 0;
}
