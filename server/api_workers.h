/*
 * api_workers.h: the seed-compatible worker routes (start, stop, restart,
 * status, list) and /metrics (/health is in api_health.h). Shapes are in
 * docs/api.md and must not change: fields may be added, never renamed or
 * retyped.
 */
#ifndef WF_API_WORKERS_H
#define WF_API_WORKERS_H

#include "http.h"

/* Prometheus text exposition: workers by status, starts, crashes,
 * heartbeat age, database reachability, requests. No token needed. */
enum MHD_Result api_metrics(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                            const char *const *args);
enum MHD_Result api_workers_list(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args);
enum MHD_Result api_workers_start(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                  const char *const *args);
enum MHD_Result api_workers_stop(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args);
enum MHD_Result api_workers_restart(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                    const char *const *args);
enum MHD_Result api_workers_status(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                   const char *const *args);

#endif
