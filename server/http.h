/*
 * http.h: the HTTP layer of core (libmicrohttpd): per-request state, body
 * accumulation with a cap, routing, JSON replies, and deferred replies.
 *
 * Three kinds of route:
 *   - inline: answered on the libmicrohttpd thread from memory (/health,
 *     /metrics, /openapi.yaml, the dashboard /ui, the worker view);
 *   - loop: the handler validates the request, suspends the connection with
 *     http_defer and hands the work to core's loop (core_post), which
 *     resumes it with http_finish once the answer is known (committed);
 *   - pool: the body is handed to a control-plane pool thread with a
 *     blocking database connection (ctlpool.h); it finishes the request.
 * A libmicrohttpd thread never waits on the database or on another process.
 *
 * Lifetime: a struct http_req is allocated at a request's first callback,
 * lives on MHD's req_cls, and is freed only in the completion callback
 * (with its body, its deferred reply and its route state). A suspended
 * request is resumed exactly once, by http_finish; until then nothing frees
 * it (libmicrohttpd keeps a suspended connection). Every reply is JSON;
 * every error is {"success":false,"error":"…"}.
 */
#ifndef WF_HTTP_H
#define WF_HTTP_H

#include <stddef.h>

#include <microhttpd.h>

#include <cJSON.h>

#include "core.h"
#include "db.h"

#define HTTP_MAX_ARGS 2
#define HTTP_ARG_MAX 128

struct http_req {
    char *body; /* NUL-terminated, at most max_body */
    size_t len;
    size_t cap;
    size_t reserved; /* bytes of the global body budget held (>= cap), given back at completion */
    unsigned
        refusal; /* a status decided while the body arrived (413, 503); the rest is discarded */
    int too_large;
    int responded;
    long max_body;                              /* this route's body cap */
    char args[HTTP_MAX_ARGS][HTTP_ARG_MAX + 1]; /* the route's "*" segments */
    const void *route; /* http.c's route for this method and path, or NULL */

    /* A deferred reply: set by http_finish on whichever thread finishes. */
    struct core *core;
    struct MHD_Connection *conn;
    int suspended;         /* http_defer was called */
    int ready;             /* __atomic: reply below is set and the connection resumed */
    unsigned reply_status; /* with reply_body (owned) */
    cJSON *reply_body;
    struct MHD_Response *reply_resp; /* or a response of the route's own (owned) */
    /* Route-specific state of a deferred request, freed with the request. */
    void *work;
    void (*work_free)(void *work);
    /* The query string's arguments, decoded by libmicrohttpd and copied on
     * the MHD thread before the route runs (http_query_arg), so a route
     * finishing on another thread never asks the suspended connection:
     * "key\0value\0" nquery times, or NULL. */
    char *query;
    int nquery;
};

/* Queues body (taken, deleted here) as the JSON reply. */
enum MHD_Result http_send_json(struct MHD_Connection *conn, unsigned status, cJSON *body);

/* Queues {"success":false,"error":<formatted>}. */
enum MHD_Result http_send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * MHD thread, inside the route handler: suspends the connection; the
 * request is then finished by http_finish on any thread. The handler
 * returns MHD_YES after it.
 */
void http_defer(struct http_req *r);

/* Any thread, once per deferred request: sets the reply (body taken; NULL
 * for none) and resumes the connection, which then sends it. */
void http_finish(struct http_req *r, unsigned status, cJSON *body);

/* Any thread, once per deferred request, instead of http_finish: the
 * reply is resp (taken: queued with status on the MHD thread, or destroyed
 * with the request if it never is). */
void http_finish_response(struct http_req *r, unsigned status, struct MHD_Response *resp);

/* http_finish with {"success":false,"error":<formatted>}. */
void http_finish_error(struct http_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* http_finish with 503 "database unavailable" or 500 "database error"
 * after a failed statement on db (logged as "could not <what>: …"). */
void http_finish_db_error(struct http_req *r, struct db_conn *db, const char *what);

/*
 * MHD thread, inside a loop route's handler: defers the request and posts
 * fn(r) to core's loop, which must finish it. When core is stopping the
 * request is finished at once with 503. Returns MHD_YES.
 */
enum MHD_Result http_defer_to_loop(struct core *c, struct http_req *r, void (*fn)(void *r));

/* The route-specific state of a deferred request (freed with it by free_fn,
 * which may be NULL for plain free). */
void http_set_work(struct http_req *r, void *work, void (*free_fn)(void *work));

/*
 * Any thread, inside a route: the value of the query argument key
 * ("?key=value", percent-decoded; "" for a bare "?key"), the first one when
 * it is repeated, or NULL when absent. Borrowed from r, valid until the
 * request completes.
 */
const char *http_query_arg(const struct http_req *r, const char *key);

/* One route of the table, as docs/openapi.yaml must describe it. */
struct http_route_info {
    const char *method;  /* "GET", "POST", …; GET routes answer HEAD too */
    const char *pattern; /* the path; each "*" is one captured segment */
    int public_route;    /* answered without the token */
};

/*
 * Any thread: route i of the table (static strings) in *out, and 0; -1
 * (out untouched) once i is past the last route. For the route-set test
 * (tests/unit/test_openapi_routes.c), which holds the table to the spec.
 */
int http_route_at(size_t i, struct http_route_info *out);

/* Raises the open-file limit to its hard limit (core's start, before any
 * connection: the HTTP connection limit is computed from it). */
void http_raise_fd_limit(void);

/* Any thread: the request-body bytes reserved now, the most ever reserved at
 * once, and the budget (WF_MAX_INFLIGHT_BODY_BYTES), for /metrics. */
void http_body_budget(size_t *used, size_t *peak, size_t *cap);

/* Any thread: the HTTP connections open now. */
int http_open_connections(void);

/* Starts libmicrohttpd on listen_fd and the connection reaper; logs the
 * limits, and a warning when no token protects a non-loopback address.
 * Returns 0, or -1 (logged, nothing left running). */
int http_start(struct core *c, int listen_fd) __attribute__((warn_unused_result));
/* Stops accepting connections (the listening socket stays open for the
 * manager); in-flight deferred requests must have been finished first. */
void http_quiesce(struct core *c);
void http_stop(struct core *c);

#endif
