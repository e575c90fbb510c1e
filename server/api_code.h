/*
 * api_code.h: deploying a project's code: upload a compiled workflow or
 * activity plugin (the raw .so as the request body), list and deactivate
 * them. Bytes are stored once per SHA-256 in `artifacts`; `workflows` and
 * `components` rows point at them. A worker loads the new code at its next
 * (re)start.
 *
 * An upload is described before it is stored: a short-lived sandboxed
 * wf-worker, started by the manager, loads the bytes and lists the names the
 * plugin declares (5 s limit, no database, no credentials). The name the
 * upload is stored under must be one of them. A workflow may instead be a
 * declarative definition, in JSON or in YAML (converted to JSON first;
 * docs/declarative.md).
 */
#ifndef WF_API_CODE_H
#define WF_API_CODE_H

#include "http.h"

/* Loop routes (http.c): validated on the MHD thread, described through the
 * manager, stored on a control-plane thread. */
enum MHD_Result api_code_put_workflow(struct core *c, struct MHD_Connection *conn,
                                      struct http_req *r, const char *const *args);
enum MHD_Result api_code_put_activity(struct core *c, struct MHD_Connection *conn,
                                      struct http_req *r, const char *const *args);

/* Pool routes (http.c). */
void api_code_list_workflows(struct core *c, struct http_req *r, const char *const *args,
                             struct db_conn *db);
void api_code_list_activities(struct core *c, struct http_req *r, const char *const *args,
                              struct db_conn *db);
void api_code_delete_workflow(struct core *c, struct http_req *r, const char *const *args,
                              struct db_conn *db);
void api_code_delete_activity(struct core *c, struct http_req *r, const char *const *args,
                              struct db_conn *db);

/* 1 if name is a valid workflow name: kebab-case, ^[a-z0-9]+(-[a-z0-9]+)*$,
 * at most 64 bytes. */
int api_valid_workflow_name(const char *name);

/* 1 if name is a valid activity name: ^[A-Za-z_][A-Za-z0-9_.-]{0,63}$. */
int api_valid_activity_name(const char *name);

#endif
