/*
 * api_projects.c: see api_projects.h. Pool routes: each runs on a
 * control-plane thread with that thread's blocking connection, and finishes
 * its request exactly once.
 */
#include "api_projects.h"

#include <string.h>

#include "apibody.h"
#include "log.h"

/* Columns every project query selects, in the order project_json reads. */
#define PROJECT_COLUMNS                                                                            \
    "id, name, desired_state,"                                                                     \
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static cJSON *project_json(const PGresult *res, int row)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", PQgetvalue(res, row, 0));
    cJSON_AddStringToObject(o, "name", PQgetvalue(res, row, 1));
    cJSON_AddStringToObject(o, "desiredState", PQgetvalue(res, row, 2));
    cJSON_AddStringToObject(o, "createdAt", PQgetvalue(res, row, 3));
    return o;
}

void api_projects_create(struct core *c, struct http_req *r, const char *const *args,
                         struct db_conn *db)
{
    char id[WF_ID_MAX + 1], name[APIBODY_NAME_MAX + 1];
    const char *why = NULL;
    const char *params[2];
    PGresult *res;
    cJSON *o;

    if (apibody_project_create(r->body, r->len, id, name, &why) < 0) {
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    params[0] = id[0] != '\0' ? id : NULL;
    params[1] = name[0] != '\0' ? name : NULL;
    res = db_exec(db,
                  "WITH p AS (SELECT coalesce($1, gen_random_uuid()::text) AS id)"
                  " INSERT INTO projects (id, name)"
                  " SELECT p.id, coalesce($2, p.id) FROM p RETURNING " PROJECT_COLUMNS,
                  2, params);
    if (res == NULL) {
        if (strcmp(db_sqlstate(db), "23505") == 0)
            http_finish_error(r, MHD_HTTP_CONFLICT, "project \"%s\" already exists", id);
        else
            http_finish_db_error(r, db, "create the project");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    ju_set(o, "project", project_json(res, 0));
    log_info("created project %s", PQgetvalue(res, 0, 0));
    PQclear(res);
    http_finish(r, MHD_HTTP_CREATED, o);
}

void api_projects_list(struct core *c, struct http_req *r, const char *const *args,
                       struct db_conn *db)
{
    PGresult *res = db_exec(db, "SELECT " PROJECT_COLUMNS " FROM projects ORDER BY id", 0, NULL);
    cJSON *o, *arr;

    if (res == NULL) {
        http_finish_db_error(r, db, "list projects");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "projects");
    for (int i = 0; i < PQntuples(res); i++)
        ju_append(arr, project_json(res, i));
    cJSON_AddNumberToObject(o, "count", PQntuples(res));
    PQclear(res);
    http_finish(r, MHD_HTTP_OK, o);
}

void api_projects_get(struct core *c, struct http_req *r, const char *const *args,
                      struct db_conn *db)
{
    const char *arg = args[0];
    const char *params[1] = {arg};
    PGresult *res;
    cJSON *o;

    if (!ju_valid_id(arg)) {
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "invalid id: must match ^[A-Za-z0-9_-]{1,64}$");
        return;
    }
    res = db_exec(db, "SELECT " PROJECT_COLUMNS " FROM projects WHERE id = $1", 1, params);
    if (res == NULL) {
        http_finish_db_error(r, db, "look up the project");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        http_finish_error(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", arg);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    ju_set(o, "project", project_json(res, 0));
    PQclear(res);
    http_finish(r, MHD_HTTP_OK, o);
}
