/*
 * api_code.c: see api_code.h.
 *
 * An upload is checked before it is stored: the name, the project, and the
 * bytes (a 64-bit ELF shared object for this machine whose segments lie in
 * the file: elfcheck.c). The artifact insert and the row upsert are one
 * statement, so a failed upload leaves nothing behind. Re-uploading the same
 * bytes is a no-op that keeps the version; new bytes bump it.
 */
#include "api_code.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfcheck.h"
#include "log.h"
#include "sha256.h"

int api_valid_workflow_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 64 || name[0] == '-' || name[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (ch == '-' && name[i + 1] == '-')
            return 0;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
    }
    return 1;
}

int api_valid_activity_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 64 ||
        !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
          name[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return 0;
    }
    return 1;
}

/* One upsert per kind: the table, its name column and the JSON key. */
struct code_kind {
    const char *label; /* "workflow" or "activity" */
    const char *upsert_sql;
    const char *list_sql;
    const char *delete_sql;
};

static const struct code_kind workflow_kind = {
    "workflow",
    "WITH a AS (INSERT INTO artifacts (sha256, bytes, size) VALUES ($3, $4, $5)"
    "  ON CONFLICT (sha256) DO NOTHING)"
    " INSERT INTO workflows AS t (project_id, kebab_name, artifact_sha256) VALUES ($1, $2, $3)"
    " ON CONFLICT (project_id, kebab_name) DO UPDATE SET artifact_sha256 = "
    "EXCLUDED.artifact_sha256,"
    "  is_active = true, updated_at = now(), version = t.version +"
    "  CASE WHEN t.artifact_sha256 IS DISTINCT FROM EXCLUDED.artifact_sha256 THEN 1 ELSE 0 END"
    " RETURNING id, version, (xmax = 0)",
    "SELECT id, kebab_name, version, artifact_sha256, is_active,"
    " (SELECT size FROM artifacts WHERE sha256 = artifact_sha256)"
    " FROM workflows WHERE project_id = $1 ORDER BY kebab_name",
    "UPDATE workflows SET is_active = false, updated_at = now()"
    " WHERE project_id = $1 AND kebab_name = $2 RETURNING id",
};

static const struct code_kind activity_kind = {
    "activity",
    "WITH a AS (INSERT INTO artifacts (sha256, bytes, size) VALUES ($3, $4, $5)"
    "  ON CONFLICT (sha256) DO NOTHING)"
    " INSERT INTO components AS t (project_id, name, kind, artifact_sha256)"
    " VALUES ($1, $2, 'activity', $3)"
    " ON CONFLICT (project_id, name) DO UPDATE SET artifact_sha256 = EXCLUDED.artifact_sha256,"
    "  is_active = true, updated_at = now(), version = t.version +"
    "  CASE WHEN t.artifact_sha256 IS DISTINCT FROM EXCLUDED.artifact_sha256 THEN 1 ELSE 0 END"
    " RETURNING id, version, (xmax = 0)",
    "SELECT id, name, version, artifact_sha256, is_active,"
    " (SELECT size FROM artifacts WHERE sha256 = artifact_sha256)"
    " FROM components WHERE project_id = $1 AND kind = 'activity' ORDER BY name",
    "UPDATE components SET is_active = false, updated_at = now()"
    " WHERE project_id = $1 AND name = $2 AND kind = 'activity' RETURNING id",
};

/* Validates the project id and the name for kind; queues a 400 if bad. */
static int check_names(struct MHD_Connection *conn, const struct code_kind *k, const char *project,
                       const char *name, enum MHD_Result *ret)
{
    if (!ju_valid_id(project)) {
        *ret = http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid project id: must match ^[A-Za-z0-9_-]{1,64}$");
        return 0;
    }
    if (name == NULL)
        return 1;
    if (k == &workflow_kind && !api_valid_workflow_name(name)) {
        *ret = http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid workflow name: must be kebab-case "
                               "(^[a-z0-9]+(-[a-z0-9]+)*$, at most 64 bytes)");
        return 0;
    }
    if (k == &activity_kind && !api_valid_activity_name(name)) {
        *ret = http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "invalid activity name: must match ^[A-Za-z_][A-Za-z0-9_.-]{0,63}$");
        return 0;
    }
    return 1;
}

static enum MHD_Result put_code(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const struct code_kind *k, const char *project, const char *name)
{
    enum MHD_Result ret = MHD_NO;
    char sha[SHA256_HEX_LEN], size[24], why[256];
    const char *params[5];
    int lengths[5] = {0, 0, 0, 0, 0};
    int formats[5] = {0, 0, 0, 1, 0};
    struct db_conn *db;
    PGresult *res;
    cJSON *o, *item;
    int inserted;

    if (!check_names(conn, k, project, name, &ret))
        return ret;
    if (r->len == 0)
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "request body must be the plugin's .so file");
    if (!elf_check_so((const unsigned char *)r->body, r->len, why, sizeof(why)))
        return http_send_error(conn, MHD_HTTP_UNPROCESSABLE_CONTENT, "not a loadable plugin: %s",
                               why);
    if (sha256_hex_of(r->body, r->len, sha) < 0)
        return http_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                               "could not hash the plugin: libcrypto failed");
    snprintf(size, sizeof(size), "%zu", r->len);
    params[0] = project;
    params[1] = name;
    params[2] = sha;
    params[3] = r->body;
    lengths[3] = (int)r->len;
    params[4] = size;

    db = http_db_get(c, conn, &ret);
    if (db == NULL)
        return ret;
    res = db_exec_ex(db, k->upsert_sql, 5, params, lengths, formats, 0);
    if (res == NULL) {
        if (strcmp(db_sqlstate(db), "23503") == 0)
            ret = http_send_error(conn, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", project);
        else
            ret = http_send_db_error(conn, db, "store the plugin");
        db_pool_put(c->pool, db);
        return ret;
    }
    db_pool_put(c->pool, db);
    inserted = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    item = cJSON_AddObjectToObject(o, k->label);
    cJSON_AddStringToObject(item, "id", PQgetvalue(res, 0, 0));
    cJSON_AddStringToObject(item, "name", name);
    cJSON_AddNumberToObject(item, "version", (double)strtol(PQgetvalue(res, 0, 1), NULL, 10));
    cJSON_AddStringToObject(item, "sha256", sha);
    cJSON_AddNumberToObject(item, "size", (double)r->len);
    cJSON_AddStringToObject(o, "message", "deployed; restart the project's worker to load it");
    log_info("deployed %s %s of project %s (%.12s, %zu bytes)", k->label, name, project, sha,
             r->len);
    PQclear(res);
    return http_send_json(conn, inserted ? MHD_HTTP_CREATED : MHD_HTTP_OK, o);
}

enum MHD_Result api_code_put_workflow(struct core *c, struct MHD_Connection *conn,
                                      struct http_req *r, const char *const *args)
{
    return put_code(c, conn, r, &workflow_kind, args[0], args[1]);
}

enum MHD_Result api_code_put_activity(struct core *c, struct MHD_Connection *conn,
                                      struct http_req *r, const char *const *args)
{
    return put_code(c, conn, r, &activity_kind, args[0], args[1]);
}

/* Runs a project-scoped statement; queues 404 when the project does not
 * exist and the statement found nothing. Returns the result or NULL. */
static PGresult *project_query(struct core *c, struct MHD_Connection *conn, const char *sql,
                               const char *project, const char *name, enum MHD_Result *ret)
{
    const char *params[2] = {project, name};
    struct db_conn *db = http_db_get(c, conn, ret);
    PGresult *res, *exists;

    if (db == NULL)
        return NULL;
    res = db_exec(db, sql, name != NULL ? 2 : 1, params);
    if (res == NULL) {
        *ret = http_send_db_error(conn, db, "read the project's code");
        db_pool_put(c->pool, db);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        exists = db_exec(db, "SELECT 1 FROM projects WHERE id = $1", 1, params);
        if (exists == NULL || PQntuples(exists) == 0) {
            *ret = exists == NULL ? http_send_db_error(conn, db, "look up the project")
                                  : http_send_error(conn, MHD_HTTP_NOT_FOUND,
                                                    "project \"%s\" not found", project);
            PQclear(exists);
            PQclear(res);
            db_pool_put(c->pool, db);
            return NULL;
        }
        PQclear(exists);
    }
    db_pool_put(c->pool, db);
    return res;
}

static enum MHD_Result list_code(struct core *c, struct MHD_Connection *conn,
                                 const struct code_kind *k, const char *project, const char *key)
{
    enum MHD_Result ret = MHD_NO;
    PGresult *res;
    cJSON *o, *arr;

    if (!check_names(conn, k, project, NULL, &ret))
        return ret;
    res = project_query(c, conn, k->list_sql, project, NULL, &ret);
    if (res == NULL)
        return ret;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "projectId", project);
    arr = cJSON_AddArrayToObject(o, key);
    for (int i = 0; i < PQntuples(res); i++) {
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "id", PQgetvalue(res, i, 0));
        cJSON_AddStringToObject(it, "name", PQgetvalue(res, i, 1));
        cJSON_AddNumberToObject(it, "version", (double)strtol(PQgetvalue(res, i, 2), NULL, 10));
        if (PQgetisnull(res, i, 3))
            cJSON_AddNullToObject(it, "sha256");
        else
            cJSON_AddStringToObject(it, "sha256", PQgetvalue(res, i, 3));
        cJSON_AddBoolToObject(it, "active", strcmp(PQgetvalue(res, i, 4), "t") == 0);
        if (PQgetisnull(res, i, 5))
            cJSON_AddNullToObject(it, "size");
        else
            cJSON_AddNumberToObject(it, "size", (double)strtoll(PQgetvalue(res, i, 5), NULL, 10));
        ju_append(arr, it);
    }
    cJSON_AddNumberToObject(o, "count", PQntuples(res));
    PQclear(res);
    return http_send_json(conn, MHD_HTTP_OK, o);
}

enum MHD_Result api_code_list_workflows(struct core *c, struct MHD_Connection *conn,
                                        struct http_req *r, const char *const *args)
{
    return list_code(c, conn, &workflow_kind, args[0], "workflows");
}

enum MHD_Result api_code_list_activities(struct core *c, struct MHD_Connection *conn,
                                         struct http_req *r, const char *const *args)
{
    return list_code(c, conn, &activity_kind, args[0], "activities");
}

static enum MHD_Result delete_code(struct core *c, struct MHD_Connection *conn,
                                   const struct code_kind *k, const char *project, const char *name)
{
    enum MHD_Result ret = MHD_NO;
    PGresult *res;
    cJSON *o;
    int found;

    if (!check_names(conn, k, project, name, &ret))
        return ret;
    res = project_query(c, conn, k->delete_sql, project, name, &ret);
    if (res == NULL)
        return ret;
    found = PQntuples(res) > 0;
    PQclear(res);
    if (!found)
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "%s \"%s\" not found in project \"%s\"",
                               k->label, name, project);
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    cJSON_AddStringToObject(o, "message", "deactivated; restart the project's worker to unload it");
    return http_send_json(conn, MHD_HTTP_OK, o);
}

enum MHD_Result api_code_delete_workflow(struct core *c, struct MHD_Connection *conn,
                                         struct http_req *r, const char *const *args)
{
    return delete_code(c, conn, &workflow_kind, args[0], args[1]);
}

enum MHD_Result api_code_delete_activity(struct core *c, struct MHD_Connection *conn,
                                         struct http_req *r, const char *const *args)
{
    return delete_code(c, conn, &activity_kind, args[0], args[1]);
}
