/*
 * apibody.c: see apibody.h. One cJSON tree per call, deleted on every path.
 *
 * The raw text is checked before cJSON sees it, because cJSON cannot be
 * trusted with two things: it decodes the escape \u0000 into a NUL that
 * silently cuts its C string ("p1\u0000x" reads as "p1"), and it copies
 * bytes that are not UTF-8 into its strings unchanged. So a body must be
 * valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF, no NUL byte) and no string in it may hold the escape \u0000.
 */
#include "apibody.h"

#include <stdio.h>
#include <string.h>

#include <cJSON.h>

/* Length of the UTF-8 sequence starting at p (at most n bytes available),
 * or 0 when it is not a valid, shortest-form, non-surrogate scalar value
 * other than NUL. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char b = p[0];

    if (b == 0)
        return 0;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
        unsigned char lo = b == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        unsigned char hi = b == 0xED ? 0x9F : 0xBF; /* no surrogates */
        if (n < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        unsigned char lo = b == 0xF0 ? 0x90 : 0x80; /* no overlong forms */
        unsigned char hi = b == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
        if (n < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* 1 when the four bytes at p are "0000" (the escape \u0000). */
static int nul_escape(const char *p)
{
    return p[0] == '0' && p[1] == '0' && p[2] == '0' && p[3] == '0';
}

/*
 * Checks the raw text before it is parsed: valid UTF-8 without NUL bytes,
 * and no \u0000 escape inside a string (outside strings an escape is a
 * syntax error that the parser reports). Returns 0, or -1 with *why.
 */
static int check_text(const char *body, size_t len, const char **why)
{
    const unsigned char *u = (const unsigned char *)body;
    int in_string = 0;
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);

        if (n == 0) {
            *why = u[i] == 0 ? "request body must not contain NUL bytes"
                             : "request body is not valid UTF-8";
            return -1;
        }
        if (n == 1 && body[i] == '"') {
            in_string = !in_string;
        } else if (n == 1 && in_string && body[i] == '\\' && i + 1 < len) {
            /* An escape: the next byte is taken with it, so an escaped
             * quote never ends the string. */
            if (body[i + 1] == 'u' && i + 6 <= len && nul_escape(body + i + 2)) {
                *why = "JSON strings must not contain NUL characters (\\u0000)";
                return -1;
            }
            if ((unsigned char)body[i + 1] < 0x80 && body[i + 1] != 0)
                i++; /* a non-ASCII byte after '\\' is checked as UTF-8 next */
        }
        i += n;
    }
    return 0;
}

/* Parses body as a JSON object (an empty body: an empty object when
 * allow_empty). Returns the tree (caller deletes) or NULL with *why. */
static cJSON *parse_object(const char *body, size_t len, int allow_empty, const char **why)
{
    cJSON *o;

    if (len == 0 && allow_empty)
        return cJSON_CreateObject();
    if (check_text(body, len, why) < 0)
        return NULL;
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

int apibody_trigger(const char *body, size_t len, char workflow[65], char **input,
                    char key[APIBODY_KEY_MAX + 1], long long *timeout_ms, const char **why)
{
    cJSON *o = parse_object(body, len, 0, why);
    const cJSON *wf, *in, *k, *tm;
    char *text;
    int rc = -1;

    if (o == NULL)
        return -1;
    wf = cJSON_GetObjectItemCaseSensitive(o, "workflow");
    in = cJSON_GetObjectItemCaseSensitive(o, "input");
    k = cJSON_GetObjectItemCaseSensitive(o, "idempotencyKey");
    tm = cJSON_GetObjectItemCaseSensitive(o, "timeoutMs");
    if (wf == NULL || cJSON_IsNull(wf)) {
        *why = "workflow is required";
    } else if (!cJSON_IsString(wf) || wf->valuestring[0] == '\0' || strlen(wf->valuestring) > 64) {
        *why = "invalid workflow: must be a workflow name (kebab-case, at most 64 bytes)";
    } else if (k != NULL && !cJSON_IsNull(k) &&
               (!cJSON_IsString(k) || k->valuestring[0] == '\0' ||
                strlen(k->valuestring) > APIBODY_KEY_MAX)) {
        *why = "invalid idempotencyKey: must be a string of 1 to 255 bytes";
    } else if (tm != NULL && !cJSON_IsNull(tm) &&
               (!cJSON_IsNumber(tm) || tm->valuedouble < 1 ||
                tm->valuedouble > (double)APIBODY_TIMEOUT_MAX ||
                tm->valuedouble != (double)(long long)tm->valuedouble)) {
        *why = "invalid timeoutMs: must be an integer number of milliseconds from 1 to a year";
    } else {
        text = in != NULL ? cJSON_PrintUnformatted(in) : strdup("null");
        if (text == NULL) {
            *why = "out of memory";
        } else {
            snprintf(workflow, 65, "%s", wf->valuestring);
            snprintf(key, APIBODY_KEY_MAX + 1, "%s", cJSON_IsString(k) ? k->valuestring : "");
            *timeout_ms = cJSON_IsNumber(tm) ? (long long)tm->valuedouble : 0;
            *input = text;
            rc = 0;
        }
    }
    cJSON_Delete(o);
    return rc;
}

/* 1 when v is absent, null, or a string of 1..max bytes. */
static int opt_string(const cJSON *v, size_t max)
{
    return v == NULL || cJSON_IsNull(v) ||
           (cJSON_IsString(v) && v->valuestring[0] != '\0' && strlen(v->valuestring) <= max);
}

int apibody_schedule(const char *body, size_t len, struct apibody_schedule *out, char **input,
                     const char **why)
{
    cJSON *o = parse_object(body, len, 0, why);
    const cJSON *wf, *cr, *in, *tz, *mi, *pa;
    char *text;
    int rc = -1;

    if (o == NULL)
        return -1;
    wf = cJSON_GetObjectItemCaseSensitive(o, "workflow");
    cr = cJSON_GetObjectItemCaseSensitive(o, "cron");
    in = cJSON_GetObjectItemCaseSensitive(o, "input");
    tz = cJSON_GetObjectItemCaseSensitive(o, "timezone");
    mi = cJSON_GetObjectItemCaseSensitive(o, "missed");
    pa = cJSON_GetObjectItemCaseSensitive(o, "paused");
    if (wf == NULL || cJSON_IsNull(wf)) {
        *why = "workflow is required";
    } else if (!cJSON_IsString(wf) || wf->valuestring[0] == '\0' || strlen(wf->valuestring) > 64) {
        *why = "invalid workflow: must be a workflow name (kebab-case, at most 64 bytes)";
    } else if (cr == NULL || cJSON_IsNull(cr)) {
        *why = "cron is required";
    } else if (!cJSON_IsString(cr) || !opt_string(cr, sizeof(out->cron) - 1)) {
        *why = "invalid cron: must be a string of 1 to 256 bytes";
    } else if (!opt_string(tz, sizeof(out->tz) - 1)) {
        *why = "invalid timezone: must be an IANA zone name such as \"Europe/Berlin\"";
    } else if (mi != NULL && !cJSON_IsNull(mi) &&
               (!cJSON_IsString(mi) || (strcmp(mi->valuestring, "fire-once") != 0 &&
                                        strcmp(mi->valuestring, "skip") != 0))) {
        *why = "invalid missed: must be \"fire-once\" or \"skip\"";
    } else if (pa != NULL && !cJSON_IsNull(pa) && !cJSON_IsBool(pa)) {
        *why = "invalid paused: must be true or false";
    } else {
        text = in != NULL ? cJSON_PrintUnformatted(in) : strdup("null");
        if (text == NULL) {
            *why = "out of memory";
        } else {
            snprintf(out->workflow, sizeof(out->workflow), "%s", wf->valuestring);
            snprintf(out->cron, sizeof(out->cron), "%s", cr->valuestring);
            snprintf(out->tz, sizeof(out->tz), "%s", cJSON_IsString(tz) ? tz->valuestring : "");
            out->skip = cJSON_IsString(mi) && strcmp(mi->valuestring, "skip") == 0;
            out->paused = cJSON_IsTrue(pa);
            *input = text;
            rc = 0;
        }
    }
    cJSON_Delete(o);
    return rc;
}

int apibody_json_value(const char *body, size_t len, char **text, const char **why)
{
    cJSON *v;

    if (len == 0) {
        *text = strdup("null");
        if (*text == NULL) {
            *why = "out of memory";
            return -1;
        }
        return 0;
    }
    if (check_text(body, len, why) < 0)
        return -1;
    v = cJSON_ParseWithLength(body, len);
    if (v == NULL) {
        *why = "malformed JSON body";
        return -1;
    }
    *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (*text == NULL) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}
