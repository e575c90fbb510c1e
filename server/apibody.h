/*
 * apibody.h: the JSON request bodies of the REST API, parsed and validated
 * in one place, without libmicrohttpd or the database, so every parser can
 * be fuzzed on its own (tests/fuzz/fuzz_bodies.c) and every route answers a
 * bad body the same way: a 400 with the reason returned here.
 *
 * Each parser takes the raw body (not NUL-terminated; len may be 0) and
 * either fills its outputs and returns 0, or returns -1 with *why set to a
 * static one-line reason and the outputs untouched. Nothing is allocated
 * that outlives the call.
 */
#ifndef WF_APIBODY_H
#define WF_APIBODY_H

#include <stddef.h>

#include "jsonutil.h"

#define APIBODY_NAME_MAX 200 /* a project's display name, in bytes */

/* POST /workers/start|stop|restart: {"projectId":"<id>"}. */
int apibody_project_id(const char *body, size_t len, char id[WF_ID_MAX + 1], const char **why)
    __attribute__((warn_unused_result));

/*
 * POST /projects: {"id"?: id or null, "name"?: string or null}; an empty
 * body is an empty object. id[0] and name[0] are '\0' when absent (the
 * caller then generates an id, and names the project after its id).
 */
int apibody_project_create(const char *body, size_t len, char id[WF_ID_MAX + 1],
                           char name[APIBODY_NAME_MAX + 1], const char **why)
    __attribute__((warn_unused_result));

/*
 * POST /projects/{id}/executions: {"workflow": name, "input"?: any JSON,
 * "idempotencyKey"?: string of 1..255 bytes or null, "timeoutMs"?: integer
 * 1..APIBODY_TIMEOUT_MAX or null}; *timeout_ms is 0 without one. workflow gets the name
 * (not checked beyond its length: the caller checks kebab-case), *input the
 * input printed compactly ("null" when absent; malloc'ed, the caller frees:
 * the one allocation that outlives a call here), key[0] is '\0' without a
 * key.
 */
#define APIBODY_KEY_MAX 255
#define APIBODY_TIMEOUT_MAX (366LL * 24 * 3600 * 1000) /* a year */

/* Any JSON value (a signal's payload); an empty body is null. *text gets it
 * printed compactly (malloc'ed; the caller frees). */
int apibody_json_value(const char *body, size_t len, char **text, const char **why)
    __attribute__((warn_unused_result));
int apibody_trigger(const char *body, size_t len, char workflow[65], char **input,
                    char key[APIBODY_KEY_MAX + 1], long long *timeout_ms, const char **why)
    __attribute__((warn_unused_result));

/*
 * POST /projects/{id}/schedules: {"workflow": name, "cron": string of
 * 1..256 bytes, "input"?: any JSON, "timezone"?: string of 1..64 bytes or
 * null, "missed"?: "fire-once" (the default) or "skip", "paused"?:
 * boolean}. The expression and the zone are only checked for their
 * length here (the caller parses them, for messages naming the field).
 * *input is malloc'ed as in apibody_trigger; tz[0] is '\0' without a zone.
 */
struct apibody_schedule {
    char workflow[65];
    char cron[257];
    char tz[65];
    int skip;   /* missed: "skip" */
    int paused; /* created paused */
};
int apibody_schedule(const char *body, size_t len, struct apibody_schedule *out, char **input,
                     const char **why) __attribute__((warn_unused_result));

#endif
