/*
 * api_projects.c: see api_projects.h. Every statement runs on a pool
 * connection returned before the reply is queued.
 */
#include "api_projects.h"

#include <string.h>

#include "log.h"

#define NAME_MAX_LEN 200

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

enum MHD_Result api_projects_create(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                    const char *const *args)
{
    enum MHD_Result ret = MHD_NO;
    cJSON *body = http_body_object(conn, r, 1, &ret);
    const cJSON *idv, *namev;
    const char *params[2];
    struct db_conn *db;
    PGresult *res;
    cJSON *o;

    if (body == NULL)
        return ret;
    idv = cJSON_GetObjectItemCaseSensitive(body, "id");
    namev = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (idv != NULL && !cJSON_IsNull(idv) &&
        (!cJSON_IsString(idv) || !ju_valid_id(idv->valuestring))) {
        cJSON_Delete(body);
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid id: must match ^[A-Za-z0-9_-]{1,64}$");
    }
    if (namev != NULL && !cJSON_IsNull(namev) &&
        (!cJSON_IsString(namev) || strlen(namev->valuestring) > NAME_MAX_LEN)) {
        cJSON_Delete(body);
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid name: must be a string of at most %d bytes", NAME_MAX_LEN);
    }
    params[0] = cJSON_IsString(idv) ? idv->valuestring : NULL;
    params[1] = cJSON_IsString(namev) ? namev->valuestring : NULL;

    db = http_db_get(c, conn, &ret);
    if (db == NULL) {
        cJSON_Delete(body);
        return ret;
    }
    res = db_exec(db,
                  "WITH p AS (SELECT coalesce($1, gen_random_uuid()::text) AS id)"
                  " INSERT INTO projects (id, name)"
                  " SELECT p.id, coalesce($2, p.id) FROM p RETURNING " PROJECT_COLUMNS,
                  2, params);
    if (res == NULL) {
        if (strcmp(db_sqlstate(db), "23505") == 0)
            ret = http_send_error(conn, MHD_HTTP_CONFLICT, "project \"%s\" already exists",
                                  params[0] != NULL ? params[0] : "");
        else
            ret = http_send_db_error(conn, db, "create the project");
        db_pool_put(c->pool, db);
        cJSON_Delete(body);
        return ret;
    }
    db_pool_put(c->pool, db);
    cJSON_Delete(body);
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    ju_set(o, "project", project_json(res, 0));
    log_info("created project %s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return http_send_json(conn, MHD_HTTP_CREATED, o);
}

enum MHD_Result api_projects_list(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                  const char *const *args)
{
    enum MHD_Result ret = MHD_NO;
    PGresult *res =
        http_query(c, conn, "list projects", "SELECT " PROJECT_COLUMNS " FROM projects ORDER BY id",
                   0, NULL, &ret);
    cJSON *o, *arr;

    if (res == NULL)
        return ret;
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "projects");
    for (int i = 0; i < PQntuples(res); i++)
        ju_append(arr, project_json(res, i));
    cJSON_AddNumberToObject(o, "count", PQntuples(res));
    PQclear(res);
    return http_send_json(conn, MHD_HTTP_OK, o);
}

enum MHD_Result api_projects_get(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                 const char *const *args)
{
    const char *arg = args[0];
    enum MHD_Result ret = MHD_NO;
    const char *params[1] = {arg};
    PGresult *res;
    cJSON *o;

    if (!ju_valid_id(arg))
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid id: must match ^[A-Za-z0-9_-]{1,64}$");
    res = http_query(c, conn, "look up the project",
                     "SELECT " PROJECT_COLUMNS " FROM projects WHERE id = $1", 1, params, &ret);
    if (res == NULL)
        return ret;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", arg);
    }
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    ju_set(o, "project", project_json(res, 0));
    PQclear(res);
    return http_send_json(conn, MHD_HTTP_OK, o);
}
