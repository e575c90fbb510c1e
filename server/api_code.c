/*
 * api_code.c: see api_code.h.
 *
 * An upload goes through four steps, each on the thread that may do it:
 * the MHD thread checks the names and the bytes (a 64-bit ELF shared object
 * for this machine whose segments lie in the file: elfcheck.c), hashes them
 * and seals them in a memfd; core's loop asks the manager to describe the
 * plugin in a sandboxed wf-worker; a control-plane thread checks the
 * declared names and stores it; the reply lists what the plugin declares.
 * A workflow may instead be a declarative definition (JSON, dsl/def.h):
 * the same steps, the describer checking the definition and core checking
 * that the activities it calls are deployed. A definition in YAML is
 * converted to JSON in step 1 (common/yamljson.c), and from then on it is
 * that JSON: what is hashed, described and stored (upload.bytes), so the
 * describer and workers, which do not link libyaml, only ever read JSON.
 * The artifact insert and the row upsert are one statement, so a failed
 * upload leaves nothing behind. Re-uploading the same bytes is a no-op that
 * keeps the version; new bytes bump it.
 */
#include "api_code.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ctlpool.h"
#include "dslmod.h"
#include "elfcheck.h"
#include "log.h"
#include "memfd.h"
#include "mgrlink.h"
#include "sha256.h"
#include "yamljson.h"

/* The describer's own limit is 5 s (the manager kills it then); the margin
 * covers a queue of uploads being described before this one. */
#define DESCRIBE_WAIT_MS 20000

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

/* Why project or name (NULL: not checked) is invalid for kind, or NULL. */
static const char *name_problem(const struct code_kind *k, const char *project, const char *name)
{
    if (!ju_valid_id(project))
        return "invalid project id: must match ^[A-Za-z0-9_-]{1,64}$";
    if (name == NULL)
        return NULL;
    if (k == &workflow_kind && !api_valid_workflow_name(name))
        return "invalid workflow name: must be kebab-case (^[a-z0-9]+(-[a-z0-9]+)*$, at most 64 "
               "bytes)";
    if (k == &activity_kind && !api_valid_activity_name(name))
        return "invalid activity name: must match ^[A-Za-z_][A-Za-z0-9_.-]{0,63}$";
    return NULL;
}

/* Validates the project id and the name for kind; queues a 400 if bad. */
static int check_names(struct MHD_Connection *conn, const struct code_kind *k, const char *project,
                       const char *name, enum MHD_Result *ret)
{
    const char *why = name_problem(k, project, name);

    if (why != NULL) {
        *ret = http_send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", why);
        return 0;
    }
    return 1;
}

/* An upload between its steps (the request's work). */
struct upload {
    const struct code_kind *k;
    char project[WF_ID_MAX + 1];
    char name[HTTP_ARG_MAX + 1];
    char sha[SHA256_HEX_LEN];
    const char *bytes; /* what is stored: the request's body, or json */
    size_t len;
    char *json;       /* a YAML definition converted (malloc'ed), or NULL */
    int memfd;        /* the sealed bytes, until described */
    cJSON *described; /* the manager's reply, or NULL when none came */
};

static void upload_free(void *arg)
{
    struct upload *u = arg;

    if (u->memfd >= 0)
        close(u->memfd);
    free(u->json);
    cJSON_Delete(u->described);
    free(u);
}

/* 1 if the JSON array arr holds the string name. */
static int declares(const cJSON *arr, const char *name)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
            return 1;
    }
    return 0;
}

/* Writes the names in arr as "a, b, c" (or "none") into buf. */
static void join_names(const cJSON *arr, char *buf, size_t len)
{
    const cJSON *it;
    size_t pos = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || pos >= len)
            continue;
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", pos > 0 ? ", " : "", it->valuestring);
    }
    if (pos == 0)
        snprintf(buf, len, "none");
}

/* Finishes r with 400 {"success":false,"error":msg,"errors":errors}
 * (errors taken). */
static void finish_invalid(struct http_req *r, const char *msg, cJSON *errors)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddBoolToObject(o, "success", 0);
    cJSON_AddStringToObject(o, "error", msg);
    ju_set(o, "errors", errors != NULL ? errors : cJSON_CreateArray());
    http_finish(r, MHD_HTTP_BAD_REQUEST, o);
}

/*
 * A definition's calls must name activities deployed in the project
 * (components, active): appends an error for each other one to errors.
 * Returns how many, or -1 after a database error (r finished).
 */
static int check_calls(struct http_req *r, struct db_conn *db, const char *project,
                       const cJSON *calls, cJSON *errors)
{
    const cJSON *c;
    int n = 0;

    cJSON_ArrayForEach(c, calls)
    {
        const char *name = ju_str(c, "name");
        const char *p[2] = {project, name};
        PGresult *res;

        if (name == NULL)
            continue;
        res = db_exec(db,
                      "SELECT 1 FROM components WHERE project_id = $1 AND name = $2"
                      " AND kind = 'activity' AND is_active",
                      2, p);
        if (res == NULL) {
            http_finish_db_error(r, db, "check the definition's activities");
            return -1;
        }
        if (PQntuples(res) == 0) {
            cJSON *e = cJSON_CreateObject();
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "unknown activity \"%s\": none of that name is deployed in project \"%s\"",
                     name, project);
            cJSON_AddStringToObject(e, "path", ju_str(c, "path") ? ju_str(c, "path") : "/");
            cJSON_AddStringToObject(e, "message", msg);
            ju_append(errors, e);
            n++;
        }
        PQclear(res);
    }
    return n;
}

/*
 * A definition's description: its errors, and those of the activities it
 * calls. Returns 1 when there are none, 0 after finishing r with 400 and
 * the list, -1 after finishing r with a database error.
 */
static int check_definition(struct http_req *r, struct db_conn *db, const char *project,
                            const cJSON *d)
{
    const cJSON *found = cJSON_GetObjectItemCaseSensitive(d, "errors");
    cJSON *errors = cJSON_IsArray(found) ? cJSON_Duplicate(found, 1) : cJSON_CreateArray();
    int n;
    char msg[96];

    if (errors == NULL) {
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return -1;
    }
    n = check_calls(r, db, project, cJSON_GetObjectItemCaseSensitive(d, "calls"), errors);
    if (n < 0) {
        cJSON_Delete(errors);
        return -1;
    }
    n = cJSON_GetArraySize(errors);
    if (n == 0 && ju_bool(d, "ok")) {
        cJSON_Delete(errors);
        return 1;
    }
    if (n == 0) /* refused without a list: the describer failed */
        snprintf(msg, sizeof(msg), "%s",
                 ju_str(d, "error") != NULL ? ju_str(d, "error") : "invalid workflow definition");
    else
        snprintf(msg, sizeof(msg), "invalid workflow definition: %d error%s", n, n == 1 ? "" : "s");
    finish_invalid(r, msg, errors);
    return 0;
}

/*
 * Control-plane thread, step 3: the plugin was described (or not); check
 * that it declares the name it is uploaded under, then store it. A
 * definition's errors are a 400 listing each with its path, and so are
 * activities it calls that the project does not have.
 */
static void store_upload(void *arg, struct db_conn *db)
{
    struct http_req *r = arg;
    struct upload *u = r->work;
    const struct code_kind *k = u->k;
    const cJSON *d = u->described;
    const cJSON *wfs = cJSON_GetObjectItemCaseSensitive(d, "workflows");
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(d, "activities");
    int workflow = k == &workflow_kind;
    char size[24], wnames[1024], anames[1024];
    const char *params[5];
    int lengths[5] = {0, 0, 0, 0, 0};
    int formats[5] = {0, 0, 0, 1, 0};
    PGresult *res;
    cJSON *o, *item, *decl;
    int inserted;

    if (db == NULL) {
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (d == NULL) {
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "could not check the plugin: the process manager did not answer");
        return;
    }
    if (ju_bool(d, "definition") && check_definition(r, db, u->project, d) != 1)
        return;
    if (!ju_bool(d, "ok")) {
        const char *err = ju_str(d, "error");
        http_finish_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "%s",
                          err != NULL ? err : "the plugin could not be described");
        return;
    }

    if (!declares(workflow ? wfs : acts, u->name)) {
        join_names(wfs, wnames, sizeof(wnames));
        join_names(acts, anames, sizeof(anames));
        http_finish_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT,
                          "%s \"%s\" is not declared by the plugin (it declares workflows: %s; "
                          "activities: %s)",
                          k->label, u->name, wnames, anames);
        return;
    }
    snprintf(size, sizeof(size), "%zu", u->len);
    params[0] = u->project;
    params[1] = u->name;
    params[2] = u->sha;
    params[3] = u->bytes;
    lengths[3] = (int)u->len;
    params[4] = size;
    res = db_exec_ex(db, k->upsert_sql, 5, params, lengths, formats, 0);
    if (res == NULL) {
        if (strcmp(db_sqlstate(db), "23503") == 0)
            http_finish_error(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", u->project);
        else
            http_finish_db_error(r, db, "store the plugin");
        return;
    }
    inserted = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    item = cJSON_AddObjectToObject(o, k->label);
    cJSON_AddStringToObject(item, "id", PQgetvalue(res, 0, 0));
    cJSON_AddStringToObject(item, "name", u->name);
    cJSON_AddNumberToObject(item, "version", (double)strtol(PQgetvalue(res, 0, 1), NULL, 10));
    cJSON_AddStringToObject(item, "sha256", u->sha);
    cJSON_AddNumberToObject(item, "size", (double)u->len);
    decl = cJSON_AddObjectToObject(o, "declares");
    ju_set(decl, "plugin", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(d, "plugin"), 1));
    ju_set(decl, "workflows", cJSON_Duplicate(wfs, 1));
    ju_set(decl, "activities", cJSON_Duplicate(acts, 1));
    cJSON_AddStringToObject(o, "message", "deployed; restart the project's worker to load it");
    log_info("deployed %s %s of project %s (%.12s, %zu bytes%s)", k->label, u->name, u->project,
             u->sha, u->len, u->json != NULL ? ", converted from YAML" : "");
    PQclear(res);
    http_finish(r, inserted ? MHD_HTTP_CREATED : MHD_HTTP_OK, o);
}

/* Loop thread, step 2 done: keep the description, hand over to step 3. */
static void on_described(void *arg, const cJSON *reply)
{
    struct http_req *r = arg;
    struct upload *u = r->work;

    close(u->memfd);
    u->memfd = -1;
    u->described = reply != NULL ? cJSON_Duplicate(reply, 1) : NULL;
    if (reply != NULL && u->described == NULL) {
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return;
    }
    if (ctlpool_submit(r->core->pool, store_upload, r) < 0)
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server busy; try again");
}

/* Loop thread, step 2: ask the manager to describe the bytes. */
static void describe_on_loop(void *arg)
{
    struct http_req *r = arg;
    struct upload *u = r->work;
    cJSON *req = cJSON_CreateObject();

    cJSON_AddStringToObject(req, "op", "describe");
    cJSON_AddStringToObject(req, "label", u->name);
    if (core_stopping(r->core) ||
        mgrlink_request(r->core->ml, req, u->memfd, DESCRIBE_WAIT_MS, on_described, r) < 0)
        http_finish_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "could not reach the process manager");
}

/*
 * 1 when a workflow's body is a YAML definition: its Content-Type says so
 * (application/yaml, application/x-yaml or text/yaml; parameters such as
 * charset ignored), or it is no JSON definition (first non-blank byte `{`)
 * and its first line with content, comments aside, starts with `document:`
 * (no plugin does: an ELF file starts with 0x7f).
 */
static int yaml_definition(struct MHD_Connection *conn, const struct http_req *r)
{
    static const char *const types[] = {"application/yaml", "application/x-yaml", "text/yaml"};
    const char *ct =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = ct != NULL ? strcspn(ct, "; \t") : 0;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && n > 0; i++)
        if (strlen(types[i]) == n && strncasecmp(ct, types[i], n) == 0)
            return 1;
    return !dslmod_is_definition(r->body, r->len) &&
           yj_starts_with_key(r->body, r->len, "document");
}

/* Queues the 400 of a definition refused before the describer: the shape
 * of its refusals, one error at the document's root. */
static enum MHD_Result send_invalid(struct MHD_Connection *conn, const char *msg)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_CreateObject();
    char text[320];

    snprintf(text, sizeof(text), "invalid workflow definition: %s", msg);
    cJSON_AddBoolToObject(o, "success", 0);
    cJSON_AddStringToObject(o, "error", text);
    cJSON_AddStringToObject(e, "path", "/");
    cJSON_AddStringToObject(e, "message", msg);
    ju_append(cJSON_AddArrayToObject(o, "errors"), e);
    return http_send_json(conn, MHD_HTTP_BAD_REQUEST, o);
}

/*
 * MHD thread: converts the YAML definition in r's body into u->json, the
 * canonical JSON text (cJSON_PrintUnformatted) stored from then on, so a
 * YAML definition and the same JSON text have one SHA-256. Returns 1, or 0
 * after queueing the 400 in *ret. Done here because it is bounded: the
 * text is at most DSL_MAX_BYTES and the converter stops at YJ_MAX_NODES
 * values (about 40 ms at worst, less than hashing a large plugin here).
 */
static int convert_yaml(struct MHD_Connection *conn, const struct http_req *r, struct upload *u,
                        enum MHD_Result *ret)
{
    char err[256];
    cJSON *root;

    if (r->len > DSL_MAX_BYTES) {
        *ret = http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "a workflow definition is at most %d bytes", DSL_MAX_BYTES);
        return 0;
    }
    root = yj_parse(r->body, r->len, err, sizeof(err));
    if (root == NULL) {
        *ret = send_invalid(conn, err);
        return 0;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        *ret = send_invalid(conn, "a definition must be a mapping (document, do, ...)");
        return 0;
    }
    u->json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (u->json == NULL) {
        *ret = http_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return 0;
    }
    u->len = strlen(u->json);
    if (u->len > DSL_MAX_BYTES) {
        *ret = http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "a workflow definition is at most %d bytes (this one is %zu as "
                               "JSON)",
                               DSL_MAX_BYTES, u->len);
        return 0;
    }
    u->bytes = u->json;
    return 1;
}

/*
 * MHD thread, step 1. A workflow's body is a YAML definition
 * (yaml_definition), a JSON definition, or a plugin; an activity's is
 * always a plugin.
 */
static enum MHD_Result put_code(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                const struct code_kind *k, const char *project, const char *name)
{
    enum MHD_Result ret = MHD_NO;
    char why[256];
    struct upload *u;
    int workflow = k == &workflow_kind, yaml;

    if (!check_names(conn, k, project, name, &ret))
        return ret;
    if (r->len == 0)
        return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                               "request body must be the plugin's .so file");
    /* A YAML definition is converted below, then checked as JSON is. */
    yaml = workflow && yaml_definition(conn, r);
    if (!yaml && workflow && dslmod_is_definition(r->body, r->len)) {
        /* A declarative definition: checked by the describer. */
        if (r->len > DSL_MAX_BYTES)
            return http_send_error(conn, MHD_HTTP_BAD_REQUEST,
                                   "a workflow definition is at most %d bytes", DSL_MAX_BYTES);
    } else if (!yaml && !elf_check_so((const unsigned char *)r->body, r->len, why, sizeof(why))) {
        return http_send_error(conn, MHD_HTTP_UNPROCESSABLE_CONTENT, "not a loadable plugin: %s",
                               why);
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return MHD_NO;
    u->k = k;
    u->memfd = -1;
    u->bytes = r->body;
    u->len = r->len;
    if (yaml && !convert_yaml(conn, r, u, &ret)) {
        upload_free(u);
        return ret;
    }
    snprintf(u->project, sizeof(u->project), "%s", project);
    snprintf(u->name, sizeof(u->name), "%s", name);
    if (sha256_hex_of(u->bytes, u->len, u->sha) < 0) {
        upload_free(u);
        return http_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                               "could not hash the plugin: libcrypto failed");
    }
    u->memfd = memfd_sealed("wf-upload", u->bytes, u->len);
    if (u->memfd < 0) {
        log_error("could not seal an upload of %zu bytes: %s", u->len, strerror(errno));
        upload_free(u);
        return http_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "could not hold the upload");
    }
    http_set_work(r, u, upload_free);
    return http_defer_to_loop(c, r, describe_on_loop);
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

/* Runs a project-scoped statement; finishes r with 404 when the project
 * does not exist and the statement found nothing, or with the database
 * error. Returns the result, or NULL once r is finished. */
static PGresult *project_query(struct http_req *r, struct db_conn *db, const char *sql,
                               const char *project, const char *name)
{
    const char *params[2] = {project, name};
    PGresult *res, *exists;

    res = db_exec(db, sql, name != NULL ? 2 : 1, params);
    if (res == NULL) {
        http_finish_db_error(r, db, "read the project's code");
        return NULL;
    }
    if (PQntuples(res) == 0) {
        exists = db_exec(db, "SELECT 1 FROM projects WHERE id = $1", 1, params);
        if (exists == NULL || PQntuples(exists) == 0) {
            if (exists == NULL)
                http_finish_db_error(r, db, "look up the project");
            else
                http_finish_error(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", project);
            PQclear(exists);
            PQclear(res);
            return NULL;
        }
        PQclear(exists);
    }
    return res;
}

/* Validates the project id and the name for kind; finishes r with 400 and
 * returns 0 if bad. */
static int check_names_pool(struct http_req *r, const struct code_kind *k, const char *project,
                            const char *name)
{
    const char *why = name_problem(k, project, name);

    if (why != NULL) {
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "%s", why);
        return 0;
    }
    return 1;
}

static void list_code(struct http_req *r, struct db_conn *db, const struct code_kind *k,
                      const char *project, const char *key)
{
    PGresult *res;
    cJSON *o, *arr;

    if (!check_names_pool(r, k, project, NULL))
        return;
    res = project_query(r, db, k->list_sql, project, NULL);
    if (res == NULL)
        return;
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
    http_finish(r, MHD_HTTP_OK, o);
}

void api_code_list_workflows(struct core *c, struct http_req *r, const char *const *args,
                             struct db_conn *db)
{
    list_code(r, db, &workflow_kind, args[0], "workflows");
}

void api_code_list_activities(struct core *c, struct http_req *r, const char *const *args,
                              struct db_conn *db)
{
    list_code(r, db, &activity_kind, args[0], "activities");
}

static void delete_code(struct http_req *r, struct db_conn *db, const struct code_kind *k,
                        const char *project, const char *name)
{
    PGresult *res;
    cJSON *o;
    int found;

    if (!check_names_pool(r, k, project, name))
        return;
    res = project_query(r, db, k->delete_sql, project, name);
    if (res == NULL)
        return;
    found = PQntuples(res) > 0;
    PQclear(res);
    if (!found) {
        http_finish_error(r, MHD_HTTP_NOT_FOUND, "%s \"%s\" not found in project \"%s\"", k->label,
                          name, project);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    cJSON_AddStringToObject(o, "message", "deactivated; restart the project's worker to unload it");
    http_finish(r, MHD_HTTP_OK, o);
}

void api_code_delete_workflow(struct core *c, struct http_req *r, const char *const *args,
                              struct db_conn *db)
{
    delete_code(r, db, &workflow_kind, args[0], args[1]);
}

void api_code_delete_activity(struct core *c, struct http_req *r, const char *const *args,
                              struct db_conn *db)
{
    delete_code(r, db, &activity_kind, args[0], args[1]);
}
