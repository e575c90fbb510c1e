/*
 * plugin.c: the descriptor of the sample-activities plugin (the seed's
 * activities, DESIGN §4) and its four small activities; httpRequest,
 * transformData and validateData live in their own files.
 *
 * Activities and their shapes (every input is a JSON object; "?" marks an
 * optional field):
 *
 *   sampleActivity  {message?: string, ...}
 *                   -> {message: "Processed: <message>", timestamp: <Unix ms>,
 *                       input: <a copy of the input>}
 *                   A missing message reads "(no message)". A null or absent
 *                   input counts as {}.
 *   buildPackage    {packageName: string /^[a-z0-9@/._-]+$/, version?: semver
 *                    (default "1.0.0"), files?: [string]}
 *                   -> {packageName, version, files: <count>,
 *                       artifact: "<name>-<version>.tgz", builtAt: <Unix ms>}
 *                   Pure computation: nothing is built or written. A scoped
 *                   name follows npm pack's file naming: "@scope/pkg" gives
 *                   "scope-pkg-<version>.tgz".
 *   waitFor         {milliseconds: integer 0..3600000, reason?: string}
 *                   -> {waited: <ms actually waited>, reason: <reason|null>}
 *                   Blocks an activity slot while it waits (in slices of at
 *                   most 50 ms, stopping early when the run is cancelled or
 *                   the deadline passes). It is the seed's activity; a durable
 *                   wait inside a workflow should use the host's sleep(), which
 *                   parks the run without holding a thread.
 *   logMessage      {level?: "debug"|"info"|"warn"|"warning"|"error" (default
 *                    "info"), message: string, data?: any}
 *                   -> {logged: true, level: <debug|info|warn|error>, message,
 *                       timestamp: <Unix ms>}
 *                   Writes one line through the host's log (data appended as
 *                   compact JSON, cut at 2 KiB).
 *
 * Retry policies: only httpRequest may fail transiently and uses the default
 * policy; the others are pure (or, for waitFor, pointless to retry) and use
 * WF_RETRY_NONE. Error reporting follows sample_activities.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sample_activities.h"

#define PACKAGE_NAME_MAX 214 /* npm's limit */
#define VERSION_MAX 64
#define WAIT_MAX_MS 3600000
#define WAIT_SLICE_MS 50
#define LOG_DATA_MAX 2048

/* ---- sampleActivity ---- */

/* sampleActivity: see the file header. */
static enum wf_status sample_activity(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const cJSON *msg = NULL;
    const char *text = "(no message)";
    cJSON *res, *copy;
    char *line;
    size_t len;

    if (in != NULL && !cJSON_IsNull(in)) {
        if (!cJSON_IsObject(in)) {
            a->api->fail(a, "could not process input: input must be a JSON object, got %s",
                         sa_json_type(in));
            return WF_EINVAL;
        }
        msg = cJSON_GetObjectItemCaseSensitive(in, "message");
    }
    if (msg != NULL && !cJSON_IsNull(msg)) {
        if (!cJSON_IsString(msg)) {
            a->api->fail(a, "could not process input: \"message\" must be a string, got %s",
                         sa_json_type(msg));
            return WF_EINVAL;
        }
        text = msg->valuestring;
    }

    len = strlen(text) + sizeof("Processed: ");
    line = malloc(len);
    if (line == NULL) {
        return sa_fail_nomem(a, "process input");
    }
    snprintf(line, len, "Processed: %s", text);

    res = cJSON_CreateObject();
    copy = in != NULL && !cJSON_IsNull(in) ? cJSON_Duplicate(in, 1) : cJSON_CreateObject();
    if (res == NULL || copy == NULL || cJSON_AddStringToObject(res, "message", line) == NULL ||
        cJSON_AddNumberToObject(res, "timestamp", (double)sa_now_ms()) == NULL ||
        !cJSON_AddItemToObject(res, "input", copy)) {
        cJSON_Delete(copy);
        cJSON_Delete(res);
        free(line);
        return sa_fail_nomem(a, "process input");
    }
    free(line);
    *out = res;
    return WF_OK;
}

/* ---- buildPackage ---- */

/* 1 if s matches ^[a-z0-9@/._-]+$ and is at most PACKAGE_NAME_MAX long. */
static int valid_package_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > PACKAGE_NAME_MAX) {
        return 0;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789@/._-") == n;
}

/* Skips one or more digits; NULL if there is none. */
static const char *skip_digits(const char *p)
{
    const char *start = p;

    while (*p >= '0' && *p <= '9') {
        p++;
    }
    return p > start ? p : NULL;
}

/* Skips one or more of [0-9A-Za-z.-]; NULL if there is none. */
static const char *skip_ident(const char *p)
{
    size_t n = strspn(p, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-");

    return n > 0 ? p + n : NULL;
}

/* 1 if s is semver-ish: MAJOR.MINOR.PATCH, then optionally "-prerelease"
 * and "+build" made of [0-9A-Za-z.-]. */
static int valid_version(const char *s)
{
    const char *p = s;
    int i;

    if (strlen(s) > VERSION_MAX) {
        return 0;
    }
    for (i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != '.') {
                return 0;
            }
            p++;
        }
        p = skip_digits(p);
        if (p == NULL) {
            return 0;
        }
    }
    if (*p == '-') {
        p = skip_ident(p + 1);
        if (p == NULL) {
            return 0;
        }
    }
    if (*p == '+') {
        p = skip_ident(p + 1);
        if (p == NULL) {
            return 0;
        }
    }
    return *p == '\0';
}

/* The artifact's file name, npm pack style: "@scope/pkg" -> "scope-pkg".
 * Returns a malloc'ed string (caller frees), NULL when out of memory. */
static char *artifact_name(const char *name, const char *version)
{
    size_t len = strlen(name) + strlen(version) + sizeof("--.tgz");
    char *s = malloc(len), *p;

    if (s == NULL) {
        return NULL;
    }
    snprintf(s, len, "%s-%s.tgz", name[0] == '@' ? name + 1 : name, version);
    for (p = s; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '-';
        }
    }
    return s;
}

/* buildPackage: see the file header. */
static enum wf_status build_package(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const cJSON *name, *version, *files, *f;
    const char *ver = "1.0.0";
    int n_files = 0;
    char *artifact;
    cJSON *res;

    if (!cJSON_IsObject(in)) {
        a->api->fail(a, "could not build package: input must be a JSON object, got %s",
                     sa_json_type(in));
        return WF_EINVAL;
    }
    name = cJSON_GetObjectItemCaseSensitive(in, "packageName");
    if (name == NULL) {
        a->api->fail(a, "could not build package: \"packageName\" is required");
        return WF_EINVAL;
    }
    if (!cJSON_IsString(name)) {
        a->api->fail(a, "could not build package: \"packageName\" must be a string, got %s",
                     sa_json_type(name));
        return WF_EINVAL;
    }
    if (!valid_package_name(name->valuestring)) {
        a->api->fail(a,
                     "could not build package: \"packageName\" must match ^[a-z0-9@/._-]+$ "
                     "and be at most %d characters long",
                     PACKAGE_NAME_MAX);
        return WF_EINVAL;
    }
    version = cJSON_GetObjectItemCaseSensitive(in, "version");
    if (version != NULL && !cJSON_IsNull(version)) {
        if (!cJSON_IsString(version) || !valid_version(version->valuestring)) {
            a->api->fail(a, "could not build package: \"version\" must be a semantic version "
                            "such as \"1.2.3\" or \"1.2.3-beta.1\"");
            return WF_EINVAL;
        }
        ver = version->valuestring;
    }
    files = cJSON_GetObjectItemCaseSensitive(in, "files");
    if (files != NULL && !cJSON_IsNull(files)) {
        if (!cJSON_IsArray(files)) {
            a->api->fail(a, "could not build package: \"files\" must be an array, got %s",
                         sa_json_type(files));
            return WF_EINVAL;
        }
        cJSON_ArrayForEach(f, files)
        {
            if (!cJSON_IsString(f)) {
                a->api->fail(a, "could not build package: \"files\"[%d] must be a string, got %s",
                             n_files, sa_json_type(f));
                return WF_EINVAL;
            }
            n_files++;
        }
    }

    artifact = artifact_name(name->valuestring, ver);
    res = cJSON_CreateObject();
    if (artifact == NULL || res == NULL ||
        cJSON_AddStringToObject(res, "packageName", name->valuestring) == NULL ||
        cJSON_AddStringToObject(res, "version", ver) == NULL ||
        cJSON_AddNumberToObject(res, "files", n_files) == NULL ||
        cJSON_AddStringToObject(res, "artifact", artifact) == NULL ||
        cJSON_AddNumberToObject(res, "builtAt", (double)sa_now_ms()) == NULL) {
        cJSON_Delete(res);
        free(artifact);
        return sa_fail_nomem(a, "build package");
    }
    free(artifact);
    a->api->log(a, WF_LOG_INFO, "built package %s@%s (%d files)", name->valuestring, ver, n_files);
    *out = res;
    return WF_OK;
}

/* ---- waitFor ---- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    /* An interruption only ends this slice early; the caller loops. */
    (void)nanosleep(&ts, NULL);
}

/* waitFor: see the file header. */
static enum wf_status wait_for(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const cJSON *ms_item, *reason;
    int64_t ms, start, waited = 0;
    cJSON *res;

    if (!cJSON_IsObject(in)) {
        a->api->fail(a, "could not wait: input must be a JSON object, got %s", sa_json_type(in));
        return WF_EINVAL;
    }
    ms_item = cJSON_GetObjectItemCaseSensitive(in, "milliseconds");
    if (ms_item == NULL) {
        a->api->fail(a, "could not wait: \"milliseconds\" is required");
        return WF_EINVAL;
    }
    if (sa_json_int(ms_item, 0, WAIT_MAX_MS, &ms) != 0) {
        a->api->fail(a, "could not wait: \"milliseconds\" must be an integer from 0 to %d",
                     WAIT_MAX_MS);
        return WF_EINVAL;
    }
    reason = cJSON_GetObjectItemCaseSensitive(in, "reason");
    if (reason != NULL && !cJSON_IsNull(reason) && !cJSON_IsString(reason)) {
        a->api->fail(a, "could not wait: \"reason\" must be a string, got %s",
                     sa_json_type(reason));
        return WF_EINVAL;
    }
    /* No point starting a wait that cannot end before the deadline. */
    if (a->deadline_ms > 0 && sa_now_ms() + ms > a->deadline_ms) {
        a->api->fail(a, "could not wait %lld ms: the activity's deadline is %lld ms away",
                     (long long)ms, (long long)(a->deadline_ms - sa_now_ms()));
        return WF_ETIMEDOUT;
    }

    start = sa_monotonic_ms();
    while (waited < ms) {
        int64_t slice = ms - waited < WAIT_SLICE_MS ? ms - waited : WAIT_SLICE_MS;

        if (a->api->cancelled(a)) {
            int late = a->deadline_ms > 0 && sa_now_ms() >= a->deadline_ms;

            a->api->fail(a, "could not finish waiting: the %s after %lld of %lld ms",
                         late ? "deadline passed" : "run was cancelled", (long long)waited,
                         (long long)ms);
            return late ? WF_ETIMEDOUT : WF_ECANCELLED;
        }
        sleep_ms(slice);
        waited = sa_monotonic_ms() - start;
    }

    res = cJSON_CreateObject();
    if (res == NULL || cJSON_AddNumberToObject(res, "waited", (double)waited) == NULL ||
        (cJSON_IsString(reason) ? cJSON_AddStringToObject(res, "reason", reason->valuestring)
                                : cJSON_AddNullToObject(res, "reason")) == NULL) {
        cJSON_Delete(res);
        return sa_fail_nomem(a, "wait");
    }
    *out = res;
    return WF_OK;
}

/* ---- logMessage ---- */

static const struct {
    const char *name;      /* accepted spelling */
    const char *canonical; /* as reported in the result */
    enum wf_log_level level;
} log_levels[] = {
    {"debug", "debug", WF_LOG_DEBUG}, {"info", "info", WF_LOG_INFO},
    {"warn", "warn", WF_LOG_WARNING}, {"warning", "warn", WF_LOG_WARNING},
    {"error", "error", WF_LOG_ERROR},
};

/* logMessage: see the file header. */
static enum wf_status log_message(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const cJSON *level, *message, *data;
    size_t i, which = 1; /* info */
    cJSON *res;

    if (!cJSON_IsObject(in)) {
        a->api->fail(a, "could not log message: input must be a JSON object, got %s",
                     sa_json_type(in));
        return WF_EINVAL;
    }
    message = cJSON_GetObjectItemCaseSensitive(in, "message");
    if (message == NULL) {
        a->api->fail(a, "could not log message: \"message\" is required");
        return WF_EINVAL;
    }
    if (!cJSON_IsString(message)) {
        a->api->fail(a, "could not log message: \"message\" must be a string, got %s",
                     sa_json_type(message));
        return WF_EINVAL;
    }
    level = cJSON_GetObjectItemCaseSensitive(in, "level");
    if (level != NULL && !cJSON_IsNull(level)) {
        which = sizeof(log_levels) / sizeof(log_levels[0]);
        if (cJSON_IsString(level)) {
            for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
                if (strcmp(level->valuestring, log_levels[i].name) == 0) {
                    which = i;
                    break;
                }
            }
        }
        if (which == sizeof(log_levels) / sizeof(log_levels[0])) {
            a->api->fail(a, "could not log message: \"level\" must be one of debug, info, warn, "
                            "warning, error");
            return WF_EINVAL;
        }
    }
    data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (data != NULL) {
        char *text = cJSON_PrintUnformatted(data);

        if (text == NULL) {
            return sa_fail_nomem(a, "log message");
        }
        a->api->log(a, log_levels[which].level, "%s data=%.*s%s", message->valuestring,
                    LOG_DATA_MAX, text, strlen(text) > LOG_DATA_MAX ? "..." : "");
        cJSON_free(text);
    } else {
        a->api->log(a, log_levels[which].level, "%s", message->valuestring);
    }

    res = cJSON_CreateObject();
    if (res == NULL || cJSON_AddTrueToObject(res, "logged") == NULL ||
        cJSON_AddStringToObject(res, "level", log_levels[which].canonical) == NULL ||
        cJSON_AddStringToObject(res, "message", message->valuestring) == NULL ||
        cJSON_AddNumberToObject(res, "timestamp", (double)sa_now_ms()) == NULL) {
        cJSON_Delete(res);
        return sa_fail_nomem(a, "log message");
    }
    *out = res;
    return WF_OK;
}

/* ---- the descriptor ---- */

/* Timeouts are per attempt. httpRequest's covers its largest timeoutMs
 * (300 s) with a margin, waitFor's its largest wait (1 h). */
static const struct wf_activity_def activities[] = {
    {"sampleActivity", sample_activity, WF_RETRY_NONE, 10000},
    {"buildPackage", build_package, WF_RETRY_NONE, 10000},
    {"httpRequest", sa_http_request, WF_RETRY_DEFAULT, 310000},
    {"transformData", sa_transform_data, WF_RETRY_NONE, 10000},
    {"waitFor", wait_for, WF_RETRY_NONE, WAIT_MAX_MS + 60000},
    {"logMessage", log_message, WF_RETRY_NONE, 10000},
    {"validateData", sa_validate_data, WF_RETRY_NONE, 10000},
};

WF_PLUGIN_DEFINE("sample-activities", "1.0.0", NULL, 0, activities,
                 sizeof(activities) / sizeof(activities[0]))
