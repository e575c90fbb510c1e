/*
 * api_executions.c: see api_executions.h. Pool routes: each runs on a
 * control-plane thread with that thread's blocking connection, and finishes
 * its request exactly once.
 *
 * One statement per request, so one round trip. GET joins the steps to the
 * execution, one row per step in seq order, and carries the execution's
 * large columns (input, output, error) in the first row only; the list
 * reads one row more than it returns, to know whether a next page exists,
 * and looks the project up (for a 404) only when it found no row at all.
 *
 * jsonb columns go out as PostgreSQL prints them, inserted raw into the
 * reply (cJSON_CreateRaw): jsonb's text is valid JSON, and a document of
 * several megabytes is copied rather than parsed again. A step's error is
 * text and goes out as a JSON string. Timestamps are ISO-8601 UTC with
 * milliseconds, as in every reply; a NULL column is JSON null. A reply
 * that could not be built whole (out of memory) is a 503, never a reply
 * with fields missing.
 */
#include "api_executions.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_code.h"
#include "config.h"
#include "log.h"

/* to_char(<timestamptz> ISO_MS): ISO-8601 UTC with milliseconds; NULL
 * stays NULL. */
#define ISO_MS " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"

/* The columns both queries select first, in the order of enum exec_col. */
#define EXEC_COLUMNS                                                                               \
    "e.id, e.project_id, e.workflow, e.code_sha256, e.status, e.attempt, e.idempotency_key,"       \
    " e.cancel_requested, to_char(e.run_at" ISO_MS "), to_char(e.created_at" ISO_MS "),"           \
    " to_char(e.started_at" ISO_MS "), to_char(e.completed_at" ISO_MS "),"                         \
    " to_char(e.updated_at" ISO_MS "), e.parent_id"

enum exec_col {
    EC_ID,        /* uuid */
    EC_PROJECT,   /* text */
    EC_WORKFLOW,  /* text */
    EC_SHA,       /* text or NULL */
    EC_STATUS,    /* text */
    EC_ATTEMPT,   /* integer */
    EC_IDEM,      /* text or NULL */
    EC_CANCEL,    /* boolean */
    EC_RUN_AT,    /* ISO-8601 text */
    EC_CREATED,   /* ISO-8601 text */
    EC_STARTED,   /* ISO-8601 text or NULL */
    EC_COMPLETED, /* ISO-8601 text or NULL */
    EC_UPDATED,   /* ISO-8601 text */
    EC_PARENT,    /* uuid or NULL: the run that started it (host API children) */
    EC_ERROR,     /* jsonb or NULL (GET: in the first row only) */
    EC_NCOLS      /* the columns exec_json reads */
};

/* GET's columns after the execution's. */
enum get_col {
    GC_INPUT = EC_NCOLS, /* jsonb or NULL, in the first row only */
    GC_OUTPUT,           /* jsonb or NULL, in the first row only */
    GC_SEQ,              /* integer; NULL: the execution has no step */
    GC_KIND,             /* text */
    GC_NAME,             /* text */
    GC_STATUS,           /* text */
    GC_STEP_OUTPUT,      /* jsonb or NULL */
    GC_STEP_ERROR,       /* text or NULL */
    GC_ATTEMPTS,         /* integer */
    GC_STARTED,          /* ISO text or NULL */
    GC_COMPLETED         /* ISO text or NULL */
};

/* The list's column after the execution's. */
enum list_col {
    LC_CREATED_US = EC_NCOLS /* created_at in epoch microseconds, for the cursor */
};

/*
 * The execution's large columns go in the row of its first step only (f:
 * the lowest seq, NULL for a run without steps, whose one row has a NULL
 * seq too). The test is computed before the rows are sorted, so a sort
 * never carries a copy of them per step.
 */
static const char get_sql[] =
    "SELECT " EXEC_COLUMNS ","
    " CASE WHEN s.seq IS NOT DISTINCT FROM f.seq THEN e.error END,"
    " CASE WHEN s.seq IS NOT DISTINCT FROM f.seq THEN e.input END,"
    " CASE WHEN s.seq IS NOT DISTINCT FROM f.seq THEN e.output END,"
    " s.seq, s.kind, s.name, s.status, s.output, s.error, s.attempts,"
    " to_char(s.started_at" ISO_MS "), to_char(s.completed_at" ISO_MS ")"
    " FROM executions e"
    " CROSS JOIN (SELECT min(seq) AS seq FROM steps WHERE execution_id = $1) f"
    " LEFT JOIN steps s ON s.execution_id = e.id"
    " WHERE e.id = $1"
    " ORDER BY s.seq";

/*
 * Newest first, strictly after the cursor ($4, $5) when there is one: a
 * backward scan of executions_project_list_idx (project_id, created_at,
 * id). The microseconds are exact on every PostgreSQL version, in and
 * out: they travel as whole seconds and the fraction, two integers each
 * small enough to stay exact where PostgreSQL computes in double
 * precision (extract before 14, interval times a number), so a cursor
 * names its row exactly.
 */
static const char list_sql[] =
    "SELECT " EXEC_COLUMNS ", e.error,"
    " extract(epoch FROM date_trunc('second', e.created_at))::bigint * 1000000"
    "  + extract(microseconds FROM e.created_at)::bigint % 1000000"
    " FROM executions e"
    " WHERE e.project_id = $1"
    "  AND ($2::text IS NULL OR e.status = $2)"
    "  AND ($3::text IS NULL OR e.workflow = $3)"
    "  AND ($7::text IS NULL OR CASE WHEN $7 = 'none' THEN e.parent_id IS NULL"
    "   ELSE e.parent_id = $7::uuid END)"
    "  AND ($4::bigint IS NULL OR (e.created_at, e.id) <"
    "   (timestamptz 'epoch' + ($4 / 1000000) * interval '1 second'"
    "    + ($4 % 1000000) * interval '1 microsecond', $5::uuid))"
    " ORDER BY e.created_at DESC, e.id DESC"
    " LIMIT $6::integer";

static const char *const statuses[] = {"pending",   "running", "sleeping", "waiting",
                                       "completed", "failed",  "cancelled"};

#define NSTATUSES (sizeof(statuses) / sizeof(statuses[0]))

/* ---- ids and cursors ---- */

int api_exec_valid_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        char ch = s[i];

        if (shape[i] == '-' ? ch != '-'
                            : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                                (ch >= 'A' && ch <= 'F')))
            return 0; /* also stops at the NUL of a short string */
    }
    return s[sizeof(shape) - 1] == '\0';
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The value of a base64url digit, or -1. */
static int b64url_value(char ch)
{
    const char *p = ch != '\0' ? strchr(b64url, ch) : NULL;

    return p != NULL ? (int)(p - b64url) : -1;
}

/* Encodes n bytes as base64url without padding into out (len bytes).
 * Returns 0, or -1 when out is too small. */
static int b64url_encode(const unsigned char *in, size_t n, char *out, size_t len)
{
    size_t at = 0;

    if ((n * 4 + 2) / 3 + 1 > len)
        return -1;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[at++] = b64url[(v >> 18) & 63];
        out[at++] = b64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[at++] = b64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[at++] = b64url[v & 63];
    }
    out[at] = '\0';
    return 0;
}

/*
 * Decodes strict base64url without padding (no other character, no stray
 * bits in the last digit) into out (len bytes, NUL-terminated). Returns the
 * byte count, or -1.
 */
static long b64url_decode(const char *s, unsigned char *out, size_t len)
{
    size_t n = strlen(s), at = 0;
    unsigned v = 0;
    int bits = 0;

    if (n % 4 == 1 || n / 4 * 3 + 3 > len)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int d = b64url_value(s[i]);

        if (d < 0)
            return -1;
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[at++] = (unsigned char)(v >> bits);
            v &= (1u << bits) - 1;
        }
    }
    if (v != 0) /* bits past the last byte must be zero */
        return -1;
    out[at] = '\0';
    return (long)at;
}

/* Years 1 to 9999 in epoch microseconds: the only times a cursor names. */
#define CURSOR_US_MIN (-62135596800000000LL)
#define CURSOR_US_MAX 253402300799999999LL

int api_exec_cursor_encode(int64_t created_us, const char *id, char *out, size_t len)
{
    char text[64];
    int n;

    if (len > 0)
        out[0] = '\0';
    if (!api_exec_valid_uuid(id) || created_us < CURSOR_US_MIN || created_us > CURSOR_US_MAX)
        return -1;
    n = snprintf(text, sizeof(text), "%lld:%s", (long long)created_us, id);
    if (n < 0 || (size_t)n >= sizeof(text))
        return -1;
    for (int i = n - API_EXEC_UUID_LEN; i < n; i++)
        if (text[i] >= 'A' && text[i] <= 'F')
            text[i] = (char)(text[i] - 'A' + 'a');
    if (b64url_encode((const unsigned char *)text, (size_t)n, out, len) < 0) {
        if (len > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

int api_exec_cursor_decode(const char *s, int64_t *created_us, char id[API_EXEC_UUID_LEN + 1])
{
    unsigned char text[API_EXEC_CURSOR_MAX];
    const char *t = (const char *)text, *colon;
    char *end;
    long long us;
    long n;

    if (strlen(s) >= API_EXEC_CURSOR_MAX)
        return -1;
    n = b64url_decode(s, text, sizeof(text));
    if (n <= 0 || memchr(text, '\0', (size_t)n) != NULL)
        return -1;
    colon = strchr(t, ':');
    /* "-?[0-9]+:<uuid>": strtoll alone would also take spaces and a '+' */
    if (colon == NULL || colon == t || !(t[0] == '-' || (t[0] >= '0' && t[0] <= '9')) ||
        !api_exec_valid_uuid(colon + 1))
        return -1;
    errno = 0;
    us = strtoll(t, &end, 10);
    if (errno != 0 || end != colon || us < CURSOR_US_MIN || us > CURSOR_US_MAX)
        return -1;
    *created_us = us;
    for (int i = 0; i <= API_EXEC_UUID_LEN; i++) {
        char ch = colon[1 + i];
        id[i] = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
    }
    return 0;
}

/* ---- rows to JSON ---- */

/* obj[key] = the column as a string, or null when NULL. Returns 0 or -1. */
static int add_text(cJSON *obj, const char *key, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return cJSON_AddNullToObject(obj, key) != NULL ? 0 : -1;
    return cJSON_AddStringToObject(obj, key, PQgetvalue(res, row, col)) != NULL ? 0 : -1;
}

/* obj[key] = the jsonb column as it is, or null when NULL. */
static int add_jsonb(cJSON *obj, const char *key, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return cJSON_AddNullToObject(obj, key) != NULL ? 0 : -1;
    return cJSON_AddRawToObject(obj, key, PQgetvalue(res, row, col)) != NULL ? 0 : -1;
}

/* obj[key] = the integer column as a number. */
static int add_int(cJSON *obj, const char *key, const PGresult *res, int row, int col)
{
    double v = (double)strtoll(PQgetvalue(res, row, col), NULL, 10);

    return cJSON_AddNumberToObject(obj, key, v) != NULL ? 0 : -1;
}

/*
 * The execution of row as a JSON object, fields in the documented order;
 * with_io (GET) adds input and output from GET's columns. Returns a new
 * object (caller owns it), or NULL out of memory.
 */
static cJSON *exec_json(const PGresult *res, int row, int with_io)
{
    cJSON *o = cJSON_CreateObject();
    int bad = o == NULL;

    bad |= add_text(o, "executionId", res, row, EC_ID);
    bad |= add_text(o, "projectId", res, row, EC_PROJECT);
    bad |= add_text(o, "workflow", res, row, EC_WORKFLOW);
    bad |= add_text(o, "parentId", res, row, EC_PARENT);
    bad |= add_text(o, "codeSha256", res, row, EC_SHA);
    bad |= add_text(o, "status", res, row, EC_STATUS);
    if (with_io) {
        bad |= add_jsonb(o, "input", res, row, GC_INPUT);
        bad |= add_jsonb(o, "output", res, row, GC_OUTPUT);
    }
    bad |= add_jsonb(o, "error", res, row, EC_ERROR);
    bad |= add_int(o, "attempt", res, row, EC_ATTEMPT);
    bad |= add_text(o, "idempotencyKey", res, row, EC_IDEM);
    bad |= cJSON_AddBoolToObject(o, "cancelRequested",
                                 strcmp(PQgetvalue(res, row, EC_CANCEL), "t") == 0) == NULL;
    bad |= add_text(o, "runAt", res, row, EC_RUN_AT);
    bad |= add_text(o, "createdAt", res, row, EC_CREATED);
    bad |= add_text(o, "startedAt", res, row, EC_STARTED);
    bad |= add_text(o, "completedAt", res, row, EC_COMPLETED);
    bad |= add_text(o, "updatedAt", res, row, EC_UPDATED);
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The step of a GET row as a JSON object (caller owns it), or NULL out of
 * memory. */
static cJSON *step_json(const PGresult *res, int row)
{
    cJSON *o = cJSON_CreateObject();
    int bad = o == NULL;

    bad |= add_int(o, "seq", res, row, GC_SEQ);
    bad |= add_text(o, "kind", res, row, GC_KIND);
    bad |= add_text(o, "name", res, row, GC_NAME);
    bad |= add_text(o, "status", res, row, GC_STATUS);
    bad |= add_jsonb(o, "output", res, row, GC_STEP_OUTPUT);
    bad |= add_text(o, "error", res, row, GC_STEP_ERROR);
    bad |= add_int(o, "attempts", res, row, GC_ATTEMPTS);
    bad |= add_text(o, "startedAt", res, row, GC_STARTED);
    bad |= add_text(o, "completedAt", res, row, GC_COMPLETED);
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- GET /executions/:id ---- */

void api_executions_get(struct core *c, struct http_req *r, const char *const *args,
                        struct db_conn *db)
{
    const char *id = args[0];
    const char *params[1] = {id};
    PGresult *res;
    cJSON *o, *ex, *steps;
    int bad = 0;

    if (!api_exec_valid_uuid(id)) {
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "invalid execution id: must be a UUID");
        return;
    }
    res = db_exec(db, get_sql, 1, params);
    if (res == NULL) {
        http_finish_db_error(r, db, "read the execution");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        http_finish_error(r, MHD_HTTP_NOT_FOUND, "execution \"%s\" not found", id);
        return;
    }
    o = cJSON_CreateObject();
    ex = exec_json(res, 0, 1);
    bad = cJSON_AddBoolToObject(o, "success", 1) == NULL;
    bad |= ju_set(o, "execution", ex) < 0; /* o owns ex now, or ex is gone */
    steps = bad ? NULL : cJSON_AddArrayToObject(ex, "steps");
    bad |= steps == NULL;
    for (int i = 0; i < PQntuples(res) && !bad; i++) {
        if (PQgetisnull(res, i, GC_SEQ)) /* the LEFT JOIN's row of a run without steps */
            continue;
        bad = ju_append(steps, step_json(res, i)) < 0;
    }
    PQclear(res);
    if (bad) {
        cJSON_Delete(o);
        log_error("could not build the reply for execution %s: out of memory", id);
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return;
    }
    http_finish(r, MHD_HTTP_OK, o);
}

/* ---- GET /projects/:id/executions ---- */

/* The list's query arguments, validated. */
struct list_args {
    const char *status;   /* NULL: any */
    const char *workflow; /* NULL: any */
    const char *parent;   /* NULL: any; "none": top-level runs; else the child runs of this run */
    long limit;
    int has_cursor;
    int64_t cursor_us;
    char cursor_id[API_EXEC_UUID_LEN + 1];
};

/* Reads and checks the query arguments of r into a (unknown ones are
 * ignored). Returns NULL, or why they are invalid (a static string). */
static const char *parse_list_args(const struct http_req *r, struct list_args *a)
{
    const char *s;

    memset(a, 0, sizeof(*a));
    a->limit = API_EXEC_LIMIT_DEFAULT;
    a->status = http_query_arg(r, "status");
    if (a->status != NULL) {
        size_t i = 0;
        while (i < NSTATUSES && strcmp(a->status, statuses[i]) != 0)
            i++;
        if (i == NSTATUSES)
            return "invalid status: must be one of pending, running, sleeping, waiting, "
                   "completed, failed, cancelled";
    }
    a->workflow = http_query_arg(r, "workflow");
    if (a->workflow != NULL && !api_valid_workflow_name(a->workflow))
        return "invalid workflow name: must be kebab-case (^[a-z0-9]+(-[a-z0-9]+)*$, at most 64 "
               "bytes)";
    a->parent = http_query_arg(r, "parent");
    if (a->parent != NULL && strcmp(a->parent, "none") != 0 && !api_exec_valid_uuid(a->parent))
        return "invalid parent: must be an execution id (a UUID), or none";
    s = http_query_arg(r, "limit");
    if (s != NULL && config_parse_long(s, 1, API_EXEC_LIMIT_MAX, &a->limit) < 0)
        return "invalid limit: must be an integer from 1 to 1000";
    s = http_query_arg(r, "cursor");
    if (s != NULL) {
        if (api_exec_cursor_decode(s, &a->cursor_us, a->cursor_id) < 0)
            return "invalid cursor: pass the nextCursor of a previous reply as it is";
        a->has_cursor = 1;
    }
    return NULL;
}

/* 1 when project exists, 0 when not, -1 when the lookup failed (r is then
 * finished). */
static int project_exists(struct http_req *r, struct db_conn *db, const char *project)
{
    const char *params[1] = {project};
    PGresult *res = db_exec(db, "SELECT 1 FROM projects WHERE id = $1", 1, params);
    int n;

    if (res == NULL) {
        http_finish_db_error(r, db, "look up the project");
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    return n > 0;
}

/*
 * The list reply for the first n rows of res; more says a row followed
 * them, and the cursor of row n-1 is then nextCursor. Returns a new object
 * (caller owns it), or NULL out of memory.
 */
static cJSON *list_json(const PGresult *res, int n, int more)
{
    cJSON *o = cJSON_CreateObject();
    char cursor[API_EXEC_CURSOR_MAX] = "";
    int bad = cJSON_AddBoolToObject(o, "success", 1) == NULL;
    cJSON *arr = cJSON_AddArrayToObject(o, "executions");

    bad |= arr == NULL;
    for (int i = 0; i < n && !bad; i++)
        bad = ju_append(arr, exec_json(res, i, 0)) < 0;
    bad |= cJSON_AddNumberToObject(o, "count", n) == NULL;
    if (more) {
        int64_t us = strtoll(PQgetvalue(res, n - 1, LC_CREATED_US), NULL, 10);

        if (api_exec_cursor_encode(us, PQgetvalue(res, n - 1, EC_ID), cursor, sizeof(cursor)) < 0) {
            /* a created_at outside years 1..9999, written by hand */
            log_warning("execution %s: created_at has no cursor; the list stops there",
                        PQgetvalue(res, n - 1, EC_ID));
            more = 0;
        }
    }
    bad |= (more ? cJSON_AddStringToObject(o, "nextCursor", cursor)
                 : cJSON_AddNullToObject(o, "nextCursor")) == NULL;
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void api_executions_list(struct core *c, struct http_req *r, const char *const *args,
                         struct db_conn *db)
{
    const char *project = args[0];
    struct list_args a;
    char us[24], limit[24];
    const char *params[7];
    const char *why;
    PGresult *res;
    cJSON *o;
    int n, more;

    if (!ju_valid_id(project)) {
        http_finish_error(r, MHD_HTTP_BAD_REQUEST,
                          "invalid project id: must match ^[A-Za-z0-9_-]{1,64}$");
        return;
    }
    why = parse_list_args(r, &a);
    if (why != NULL) {
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    snprintf(us, sizeof(us), "%lld", (long long)a.cursor_us);
    snprintf(limit, sizeof(limit), "%ld", a.limit + 1); /* one more: is there a next page? */
    params[0] = project;
    params[1] = a.status;
    params[2] = a.workflow;
    params[3] = a.has_cursor ? us : NULL;
    params[4] = a.has_cursor ? a.cursor_id : NULL;
    params[5] = limit;
    params[6] = a.parent;
    res = db_exec(db, list_sql, 7, params);
    if (res == NULL) {
        http_finish_db_error(r, db, "list the executions");
        return;
    }
    n = PQntuples(res);
    if (n == 0) {
        int found = project_exists(r, db, project);
        if (found <= 0) {
            PQclear(res);
            if (found == 0)
                http_finish_error(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", project);
            return;
        }
    }
    more = n > a.limit;
    o = list_json(res, more ? (int)a.limit : n, more);
    PQclear(res);
    if (o == NULL) {
        log_error("could not build the execution list of project %s: out of memory", project);
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return;
    }
    http_finish(r, MHD_HTTP_OK, o);
}
