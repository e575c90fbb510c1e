/*
 * api_executions.h: the read side of executions: one run with its steps
 * (GET /executions/:id), and a project's runs newest first, filtered by
 * status and workflow and paged with a keyset cursor
 * (GET /projects/:id/executions). The run engine writes the rows; this
 * module only reads them. Shapes are in docs/api.md.
 *
 * The cursor is opaque to clients: the base64url text (no padding) of
 * "<created_at in epoch microseconds>:<execution uuid>" of the last row of
 * a page. The next page holds the rows strictly after it in the list's
 * order (created_at DESC, id DESC), so a run created while a client pages
 * never shifts a page, and rows sharing a created_at are split by id.
 */
#ifndef WF_API_EXECUTIONS_H
#define WF_API_EXECUTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define API_EXEC_UUID_LEN 36    /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
#define API_EXEC_CURSOR_MAX 128 /* an encoded cursor and its NUL fit in this */
#define API_EXEC_LIMIT_DEFAULT 50
#define API_EXEC_LIMIT_MAX 1000

/* Pool routes (http.c): run on a control-plane thread and finish r. */
void api_executions_get(struct core *c, struct http_req *r, const char *const *args,
                        struct db_conn *db);
void api_executions_list(struct core *c, struct http_req *r, const char *const *args,
                         struct db_conn *db);

/* 1 if s is a UUID in its canonical text form (8-4-4-4-12 hex digits,
 * either case), else 0. */
int api_exec_valid_uuid(const char *s);

/*
 * Encodes the cursor of the row (created_us, id) into out (len bytes,
 * API_EXEC_CURSOR_MAX is enough). id must be a valid UUID. Returns 0, or
 * -1 when id is invalid or out is too small (out is then "").
 */
int api_exec_cursor_encode(int64_t created_us, const char *id, char *out, size_t len)
    __attribute__((warn_unused_result));

/*
 * Decodes a cursor made by api_exec_cursor_encode: strict base64url
 * without padding, a decimal time within years 1..9999 and a UUID (copied
 * lower-case into id). Returns 0, or -1 for anything else, leaving the
 * outputs untouched.
 */
int api_exec_cursor_decode(const char *s, int64_t *created_us, char id[API_EXEC_UUID_LEN + 1])
    __attribute__((warn_unused_result));

#endif
