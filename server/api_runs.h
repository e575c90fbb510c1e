/*
 * api_runs.h: the run-path routes of the executions API (docs/api.md):
 * trigger, cancel, signal, retry. They go through core's engine on the loop thread, and
 * answer only once what they changed is committed.
 */
#ifndef WF_API_RUNS_H
#define WF_API_RUNS_H

#include "http.h"

/* Loop route: POST /projects/{id}/executions {"workflow","input","idempotencyKey"}
 * → 202 {"success":true,"executionId","status"} (200 when the key names an
 * earlier run; 404 for an unknown project or workflow). */
enum MHD_Result api_runs_trigger(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args);

/* Loop routes on /executions/{id}: POST …/cancel, POST …/signals/{name}
 * (the body is the payload, any JSON; empty: null), POST …/retry. */
enum MHD_Result api_runs_cancel(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const char *const *args);
enum MHD_Result api_runs_signal(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const char *const *args);
enum MHD_Result api_runs_retry(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                               const char *const *args);

#endif
