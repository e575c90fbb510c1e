/*
 * apibody.c: see apibody.h. One cJSON tree per call, deleted on every path.
 */
#include "apibody.h"

#include <stdio.h>
#include <string.h>

#include <cJSON.h>

/* Parses body as a JSON object (an empty body: an empty object when
 * allow_empty). Returns the tree (caller deletes) or NULL with *why. */
static cJSON *parse_object(const char *body, size_t len, int allow_empty, const char **why)
{
    cJSON *o;

    if (len == 0 && allow_empty)
        return cJSON_CreateObject();
    o = len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
    if (o == NULL) {
        *why = "malformed JSON body";
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        *why = "request body must be a JSON object";
        return NULL;
    }
    return o;
}

int apibody_project_id(const char *body, size_t len, char id[WF_ID_MAX + 1], const char **why)
{
    cJSON *o = parse_object(body, len, 0, why);
    const cJSON *v;
    int rc = -1;

    if (o == NULL)
        return -1;
    v = cJSON_GetObjectItemCaseSensitive(o, "projectId");
    if (v == NULL || cJSON_IsNull(v)) {
        *why = "projectId is required";
    } else if (!cJSON_IsString(v) || !ju_valid_id(v->valuestring)) {
        *why = "invalid projectId: must match ^[A-Za-z0-9_-]{1,64}$";
    } else {
        snprintf(id, WF_ID_MAX + 1, "%s", v->valuestring);
        rc = 0;
    }
    cJSON_Delete(o);
    return rc;
}

int apibody_project_create(const char *body, size_t len, char id[WF_ID_MAX + 1],
                           char name[APIBODY_NAME_MAX + 1], const char **why)
{
    cJSON *o = parse_object(body, len, 1, why);
    const cJSON *idv, *namev;
    int rc = -1;

    if (o == NULL)
        return -1;
    idv = cJSON_GetObjectItemCaseSensitive(o, "id");
    namev = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (idv != NULL && !cJSON_IsNull(idv) &&
        (!cJSON_IsString(idv) || !ju_valid_id(idv->valuestring))) {
        *why = "invalid id: must match ^[A-Za-z0-9_-]{1,64}$";
    } else if (namev != NULL && !cJSON_IsNull(namev) &&
               (!cJSON_IsString(namev) || strlen(namev->valuestring) > APIBODY_NAME_MAX)) {
        *why = "invalid name: must be a string of at most 200 bytes";
    } else {
        snprintf(id, WF_ID_MAX + 1, "%s", cJSON_IsString(idv) ? idv->valuestring : "");
        snprintf(name, APIBODY_NAME_MAX + 1, "%s", cJSON_IsString(namev) ? namev->valuestring : "");
        rc = 0;
    }
    cJSON_Delete(o);
    return rc;
}
