/*
 * http.h: the HTTP layer of core (libmicrohttpd): per-request state, body
 * accumulation with a cap, routing, JSON replies, and the helpers the API
 * modules share.
 *
 * Lifetime: a struct http_req is allocated at a request's first callback,
 * lives on MHD's req_cls, and is freed only in the completion callback
 * (with its body and any manager reply). Every reply is JSON; every error is
 * {"success":false,"error":"…"}.
 */
#ifndef WF_HTTP_H
#define WF_HTTP_H

#include <microhttpd.h>

#include <cJSON.h>

#include "core.h"
#include "db.h"

struct http_req;

/* Builds the final reply of a call resumed by the dispatcher. */
typedef enum MHD_Result (*http_resume_fn)(struct core *c, struct MHD_Connection *conn,
                                          struct http_req *r);

#define HTTP_MAX_ARGS 2
#define HTTP_ARG_MAX 128

struct http_req {
    char *body; /* NUL-terminated, at most cfg->max_body_bytes */
    size_t len;
    size_t cap;
    int too_large;
    int responded;
    struct core_call call;                      /* a pending manager call, if any */
    http_resume_fn resume;                      /* set with call */
    long max_body;                              /* this route's body cap */
    char args[HTTP_MAX_ARGS][HTTP_ARG_MAX + 1]; /* the route's "*" segments */
    const void *route; /* http.c's route for this method and path, or NULL */
};

/* Queues body (taken, deleted here) as the JSON reply. */
enum MHD_Result http_send_json(struct MHD_Connection *conn, unsigned status, cJSON *body);

/* Queues {"success":false,"error":<formatted>}. */
enum MHD_Result http_send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Replies 503 "database unavailable" or 500 "database error" after a failed
 * statement on conn (logging the detail), and returns the queue result. */
enum MHD_Result http_send_db_error(struct MHD_Connection *conn, struct db_conn *db,
                                   const char *what);

/*
 * Parses the request body as a JSON object. Returns the tree (caller
 * deletes), or NULL after queueing the 400 reply into *ret. An empty body
 * yields an empty object when allow_empty is set.
 */
cJSON *http_body_object(struct MHD_Connection *conn, struct http_req *r, int allow_empty,
                        enum MHD_Result *ret);

/* Borrows a pool connection or queues a 503 into *ret and returns NULL. */
struct db_conn *http_db_get(struct core *c, struct MHD_Connection *conn, enum MHD_Result *ret);

/*
 * Runs one statement on a borrowed pool connection and returns it to the
 * pool. Returns the result (caller PQclears), or NULL after queueing the
 * 503/500 reply into *ret (logged as "could not <what>").
 */
PGresult *http_query(struct core *c, struct MHD_Connection *conn, const char *what, const char *sql,
                     int nparams, const char *const *params, enum MHD_Result *ret);

#endif
