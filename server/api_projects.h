/*
 * api_projects.h: project routes: create, list, get. A project is the unit a
 * worker runs for; its id matches ^[A-Za-z0-9_-]{1,64}$ (usually a UUID).
 */
#ifndef WF_API_PROJECTS_H
#define WF_API_PROJECTS_H

#include "http.h"

enum MHD_Result api_projects_create(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                    const char *const *args);
enum MHD_Result api_projects_list(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                  const char *const *args);
enum MHD_Result api_projects_get(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args);

#endif
