/*
 * api_projects.h: project routes: create, list, get. A project is the unit a
 * worker runs for; its id matches ^[A-Za-z0-9_-]{1,64}$ (usually a UUID).
 */
#ifndef WF_API_PROJECTS_H
#define WF_API_PROJECTS_H

#include "http.h"

/* Pool routes (http.c): run on a control-plane thread and finish r. */
void api_projects_create(struct core *c, struct http_req *r, const char *const *args,
                         struct db_conn *db);
void api_projects_list(struct core *c, struct http_req *r, const char *const *args,
                       struct db_conn *db);
void api_projects_get(struct core *c, struct http_req *r, const char *const *args,
                      struct db_conn *db);

#endif
