/*
 * api_schedules.h: schedule routes (docs/api.md, docs/schedules.md):
 * create and list a project's schedules, get, pause, resume and delete one.
 * A schedule's id is a UUID; replies carry its next fire times, computed
 * here from its expression and zone (schedules.h), and what its last tick
 * did (the run it started, or why it could not).
 */
#ifndef WF_API_SCHEDULES_H
#define WF_API_SCHEDULES_H

#include "http.h"

/* Pool routes (http.c): run on a control-plane thread and finish r. */
void api_schedules_create(struct core *c, struct http_req *r, const char *const *args,
                          struct db_conn *db);
void api_schedules_list(struct core *c, struct http_req *r, const char *const *args,
                        struct db_conn *db);
void api_schedules_get(struct core *c, struct http_req *r, const char *const *args,
                       struct db_conn *db);
void api_schedules_pause(struct core *c, struct http_req *r, const char *const *args,
                         struct db_conn *db);
void api_schedules_resume(struct core *c, struct http_req *r, const char *const *args,
                          struct db_conn *db);
void api_schedules_delete(struct core *c, struct http_req *r, const char *const *args,
                          struct db_conn *db);

#endif
