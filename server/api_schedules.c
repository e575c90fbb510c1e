/*
 * api_schedules.c: see api_schedules.h. Pool routes: each runs on a
 * control-plane thread with that thread's blocking connection, and finishes
 * its request exactly once. Times that decide anything come from the
 * database's clock (now()), as the firing pass's do (schedules.h).
 */
#include "api_schedules.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_code.h"
#include "api_executions.h"
#include "apibody.h"
#include "core.h"
#include "log.h"
#include "schedules.h"

#define ISO_MS " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"

/* Columns every schedule query returns, in the order of enum sched_col. */
#define SCHED_COLUMNS                                                                              \
    "id, project_id, workflow, cron, timezone, coalesce(input::text, 'null'), missed, paused,"     \
    " floor(extract(epoch FROM next_fire_at))::bigint, to_char(last_tick_at" ISO_MS "),"           \
    " to_char(last_fired_at" ISO_MS "), last_execution_id, last_error, fired, skipped,"            \
    " to_char(created_at" ISO_MS "), to_char(updated_at" ISO_MS ")"
enum sched_col {
    C_ID,
    C_PROJECT,
    C_WORKFLOW,
    C_CRON,
    C_TZ,
    C_INPUT,
    C_MISSED,
    C_PAUSED,
    C_NEXT,
    C_LAST_TICK,
    C_LAST_FIRED,
    C_LAST_RUN,
    C_LAST_ERROR,
    C_FIRED,
    C_SKIPPED,
    C_CREATED,
    C_UPDATED
};

static void add_text_or_null(cJSON *o, const char *key, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddStringToObject(o, key, PQgetvalue(res, row, col));
}

/* The schedule in row of res, with its next SCHEDULE_NEXT_SHOWN fire times. */
static cJSON *schedule_json(const PGresult *res, int row)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *times, *input;
    char when[32];

    cJSON_AddStringToObject(o, "id", PQgetvalue(res, row, C_ID));
    cJSON_AddStringToObject(o, "projectId", PQgetvalue(res, row, C_PROJECT));
    cJSON_AddStringToObject(o, "workflow", PQgetvalue(res, row, C_WORKFLOW));
    cJSON_AddStringToObject(o, "cron", PQgetvalue(res, row, C_CRON));
    cJSON_AddStringToObject(o, "timezone", PQgetvalue(res, row, C_TZ));
    input = cJSON_Parse(PQgetvalue(res, row, C_INPUT));
    ju_set(o, "input", input != NULL ? input : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "missed", PQgetvalue(res, row, C_MISSED));
    cJSON_AddBoolToObject(o, "paused", PQgetvalue(res, row, C_PAUSED)[0] == 't');
    times = cJSON_CreateArray();
    if (PQgetisnull(res, row, C_NEXT)) {
        cJSON_AddNullToObject(o, "nextFireAt");
    } else {
        int64_t t[SCHEDULE_NEXT_SHOWN];
        char err[128];
        int n;

        t[0] = strtoll(PQgetvalue(res, row, C_NEXT), NULL, 10);
        n = sched_next_ticks(PQgetvalue(res, row, C_CRON), PQgetvalue(res, row, C_TZ), t[0], t + 1,
                             SCHEDULE_NEXT_SHOWN - 1, err, sizeof(err));
        n = n < 0 ? 1 : n + 1;
        sched_format_utc(t[0], when, sizeof(when));
        cJSON_AddStringToObject(o, "nextFireAt", when);
        for (int i = 0; i < n; i++) {
            sched_format_utc(t[i], when, sizeof(when));
            ju_append(times, cJSON_CreateString(when));
        }
    }
    ju_set(o, "nextFireTimes", times);
    add_text_or_null(o, "lastTickAt", res, row, C_LAST_TICK);
    add_text_or_null(o, "lastFiredAt", res, row, C_LAST_FIRED);
    add_text_or_null(o, "lastExecutionId", res, row, C_LAST_RUN);
    add_text_or_null(o, "lastError", res, row, C_LAST_ERROR);
    cJSON_AddNumberToObject(o, "fired", strtod(PQgetvalue(res, row, C_FIRED), NULL));
    cJSON_AddNumberToObject(o, "skipped", strtod(PQgetvalue(res, row, C_SKIPPED), NULL));
    cJSON_AddStringToObject(o, "createdAt", PQgetvalue(res, row, C_CREATED));
    cJSON_AddStringToObject(o, "updatedAt", PQgetvalue(res, row, C_UPDATED));
    return o;
}

/* Finishes r with {"success":true,"schedule":...} of row 0 and clears res. */
static void finish_schedule(struct http_req *r, unsigned status, PGresult *res)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddBoolToObject(o, "success", 1);
    ju_set(o, "schedule", schedule_json(res, 0));
    PQclear(res);
    http_finish(r, status, o);
}

static int check_project(struct http_req *r, const char *project)
{
    if (ju_valid_id(project))
        return 1;
    http_finish_error(r, MHD_HTTP_BAD_REQUEST, "invalid id: must match ^[A-Za-z0-9_-]{1,64}$");
    return 0;
}

static int check_schedule_id(struct http_req *r, const char *id)
{
    if (api_exec_valid_uuid(id))
        return 1;
    http_finish_error(r, MHD_HTTP_BAD_REQUEST, "invalid schedule id: must be a UUID");
    return 0;
}

void api_schedules_create(struct core *c, struct http_req *r, const char *const *args,
                          struct db_conn *db)
{
    const char *project = args[0];
    struct apibody_schedule b;
    char *input = NULL, err[256], next_s[24];
    const char *why = NULL;
    const char *p[8];
    PGresult *res;
    int64_t now, next;

    if (!check_project(r, project))
        return;
    if (apibody_schedule(r->body, r->len, &b, &input, &why) < 0) {
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    if (!api_valid_workflow_name(b.workflow)) {
        free(input);
        http_finish_error(r, MHD_HTTP_BAD_REQUEST,
                          "invalid workflow: must be kebab-case (^[a-z0-9]+(-[a-z0-9]+)*$)");
        return;
    }
    /* The expression and the zone before the database: a 400 names them. */
    if (sched_first_tick(b.cron, b.tz, 0, &next, err, sizeof(err)) < 0) {
        free(input);
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "%s", err);
        return;
    }
    p[0] = project;
    p[1] = b.workflow;
    res = db_exec(db,
                  "SELECT floor(extract(epoch FROM now()))::bigint,"
                  " EXISTS (SELECT 1 FROM projects WHERE id = $1),"
                  " EXISTS (SELECT 1 FROM workflows WHERE project_id = $1 AND kebab_name = $2"
                  "  AND is_active)",
                  2, p);
    if (res == NULL) {
        free(input);
        http_finish_db_error(r, db, "look up the schedule's workflow");
        return;
    }
    now = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (PQgetvalue(res, 0, 1)[0] != 't' || PQgetvalue(res, 0, 2)[0] != 't') {
        int no_project = PQgetvalue(res, 0, 1)[0] != 't';
        PQclear(res);
        free(input);
        if (no_project)
            http_finish_error(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", project);
        else
            http_finish_error(r, MHD_HTTP_NOT_FOUND, "workflow \"%s\" not found in project \"%s\"",
                              b.workflow, project);
        return;
    }
    PQclear(res);
    if (sched_first_tick(b.cron, b.tz, now, &next, err, sizeof(err)) < 0) {
        free(input);
        http_finish_error(r, MHD_HTTP_BAD_REQUEST, "%s", err);
        return;
    }
    if (next < 0) {
        free(input);
        http_finish_error(r, MHD_HTTP_BAD_REQUEST,
                          "cron expression \"%s\" never fires (no matching day in ten years)",
                          b.cron);
        return;
    }
    snprintf(next_s, sizeof(next_s), "%" PRId64, next);
    p[2] = b.cron;
    p[3] = b.tz[0] != '\0' ? b.tz : "UTC";
    p[4] = input;
    p[5] = b.skip ? "skip" : "fire-once";
    p[6] = b.paused ? "true" : "false";
    p[7] = b.paused ? NULL : next_s;
    res = db_exec(db,
                  "INSERT INTO schedules (project_id, workflow, cron, timezone, input, missed,"
                  " paused, next_fire_at)"
                  " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::boolean, to_timestamp($8::bigint))"
                  " RETURNING " SCHED_COLUMNS,
                  8, p);
    free(input);
    if (res == NULL) {
        if (strcmp(db_sqlstate(db), "23503") == 0) /* the project went meanwhile */
            http_finish_error(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", project);
        else
            http_finish_db_error(r, db, "create the schedule");
        return;
    }
    log_info("created schedule %s: %s \"%s\" in %s, workflow %s of project %s",
             PQgetvalue(res, 0, C_ID), b.paused ? "paused," : "cron", b.cron, p[3], b.workflow,
             project);
    schedules_wake(c->sched);
    finish_schedule(r, MHD_HTTP_CREATED, res);
}

void api_schedules_list(struct core *c, struct http_req *r, const char *const *args,
                        struct db_conn *db)
{
    const char *project = args[0];
    const char *p[1] = {project};
    PGresult *res;
    cJSON *o, *arr;

    if (!check_project(r, project))
        return;
    res = db_exec(db, "SELECT 1 FROM projects WHERE id = $1", 1, p);
    if (res == NULL) {
        http_finish_db_error(r, db, "look up the project");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        http_finish_error(r, MHD_HTTP_NOT_FOUND, "project \"%s\" not found", project);
        return;
    }
    PQclear(res);
    res = db_exec(db,
                  "SELECT " SCHED_COLUMNS " FROM schedules WHERE project_id = $1"
                  " ORDER BY created_at, id",
                  1, p);
    if (res == NULL) {
        http_finish_db_error(r, db, "list schedules");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "schedules");
    for (int i = 0; i < PQntuples(res); i++)
        ju_append(arr, schedule_json(res, i));
    cJSON_AddNumberToObject(o, "count", PQntuples(res));
    PQclear(res);
    http_finish(r, MHD_HTTP_OK, o);
}

/* Finishes r with the schedule of res, or 404 when res has no row. */
static void finish_found(struct http_req *r, const char *id, PGresult *res)
{
    if (PQntuples(res) == 0) {
        PQclear(res);
        http_finish_error(r, MHD_HTTP_NOT_FOUND, "schedule \"%s\" not found", id);
        return;
    }
    finish_schedule(r, MHD_HTTP_OK, res);
}

void api_schedules_get(struct core *c, struct http_req *r, const char *const *args,
                       struct db_conn *db)
{
    const char *p[1] = {args[0]};
    PGresult *res;

    if (!check_schedule_id(r, args[0]))
        return;
    res = db_exec(db, "SELECT " SCHED_COLUMNS " FROM schedules WHERE id = $1", 1, p);
    if (res == NULL) {
        http_finish_db_error(r, db, "look up the schedule");
        return;
    }
    finish_found(r, args[0], res);
}

void api_schedules_pause(struct core *c, struct http_req *r, const char *const *args,
                         struct db_conn *db)
{
    const char *p[1] = {args[0]};
    PGresult *res;

    if (!check_schedule_id(r, args[0]))
        return;
    /* Pausing a paused schedule changes nothing and answers the same. */
    res =
        db_exec(db,
                "UPDATE schedules SET updated_at = CASE WHEN paused THEN updated_at ELSE now() END,"
                " paused = true, next_fire_at = NULL WHERE id = $1 RETURNING " SCHED_COLUMNS,
                1, p);
    if (res == NULL) {
        http_finish_db_error(r, db, "pause the schedule");
        return;
    }
    if (PQntuples(res) == 1)
        log_info("paused schedule %s", args[0]);
    finish_found(r, args[0], res);
}

void api_schedules_resume(struct core *c, struct http_req *r, const char *const *args,
                          struct db_conn *db)
{
    const char *p[2] = {args[0], NULL};
    char err[256], next_s[24];
    PGresult *res;
    int64_t now, next;

    if (!check_schedule_id(r, args[0]))
        return;
    res = db_exec(db,
                  "SELECT cron, timezone, paused, floor(extract(epoch FROM now()))::bigint"
                  " FROM schedules WHERE id = $1",
                  1, p);
    if (res == NULL) {
        http_finish_db_error(r, db, "look up the schedule");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        http_finish_error(r, MHD_HTTP_NOT_FOUND, "schedule \"%s\" not found", args[0]);
        return;
    }
    now = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    if (sched_first_tick(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), now, &next, err,
                         sizeof(err)) < 0) {
        PQclear(res);
        http_finish_error(r, MHD_HTTP_CONFLICT, "cannot resume: %s", err);
        return;
    }
    PQclear(res);
    snprintf(next_s, sizeof(next_s), "%" PRId64, next);
    p[1] = next >= 0 ? next_s : NULL;
    /* From now on: ticks that passed while it was paused are not missed.
     * Resuming a running schedule changes nothing. */
    res = db_exec(db,
                  "UPDATE schedules SET next_fire_at = CASE WHEN paused"
                  "  THEN to_timestamp($2::bigint) ELSE next_fire_at END,"
                  " updated_at = CASE WHEN paused THEN now() ELSE updated_at END, paused = false"
                  " WHERE id = $1 RETURNING " SCHED_COLUMNS,
                  2, p);
    if (res == NULL) {
        http_finish_db_error(r, db, "resume the schedule");
        return;
    }
    if (PQntuples(res) == 1) {
        log_info("resumed schedule %s", args[0]);
        schedules_wake(c->sched);
    }
    finish_found(r, args[0], res);
}

void api_schedules_delete(struct core *c, struct http_req *r, const char *const *args,
                          struct db_conn *db)
{
    const char *p[1] = {args[0]};
    PGresult *res;
    cJSON *o;

    if (!check_schedule_id(r, args[0]))
        return;
    res = db_exec(db, "DELETE FROM schedules WHERE id = $1 RETURNING id", 1, p);
    if (res == NULL) {
        http_finish_db_error(r, db, "delete the schedule");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        http_finish_error(r, MHD_HTTP_NOT_FOUND, "schedule \"%s\" not found", args[0]);
        return;
    }
    PQclear(res);
    log_info("deleted schedule %s", args[0]);
    o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    cJSON_AddStringToObject(o, "deleted", args[0]);
    http_finish(r, MHD_HTTP_OK, o);
}
