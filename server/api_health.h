/*
 * api_health.h: the health routes, answered inline on the libmicrohttpd
 * thread from memory (no database access, no loop round trip), public even
 * with WF_API_TOKEN set (orchestrators call them without a token):
 *
 *   GET /health        the seed's reply (shape frozen, docs/api.md): 200, or
 *                      503 while the database is unreachable
 *   GET /health/live   200 {"status":"live"} whenever core answers at all
 *   GET /health/ready  200 when every check holds (the database reachable,
 *                      core not stopping, the manager link up, migrations
 *                      applied), otherwise 503 naming each check's state
 *
 * The checks are flags core's loop publishes (core_readiness, core.h); the
 * database one is the signal /health reads, so the two always agree.
 */
#ifndef WF_API_HEALTH_H
#define WF_API_HEALTH_H

#include "http.h"

/* Builds the replies that never change (/health's two, /health/live's).
 * Returns 0, or -1 (logged) when out of memory; api_health_free undoes a
 * partial build. */
int api_health_init(struct core *c) __attribute__((warn_unused_result));
/* Frees what api_health_init built; safe twice. */
void api_health_free(struct core *c);

enum MHD_Result api_health(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                           const char *const *args);
enum MHD_Result api_health_live(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const char *const *args);
enum MHD_Result api_health_ready(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args);

#endif
