/*
 * transform.c: the transformData activity.
 *
 * Input {data: any (required, may be null), operation: string, fields?:
 * [string], pretty?: boolean}; output {result: <the transformed data>}.
 * The input is never modified: results are built on copies.
 *
 *   uppercase, lowercase, trim
 *       A string is transformed; in an object or array every string value is
 *       transformed, at any depth (keys are left alone, other values are
 *       kept). Case mapping and trimming are ASCII-only: other characters
 *       are kept as they are. Other top-level types are bad input.
 *   reverse
 *       A string reversed by code point, or an array in reverse order.
 *   length
 *       The number of code points of a string, elements of an array, or
 *       members of an object.
 *   json_parse
 *       A string parsed as JSON (bad JSON is bad input).
 *   json_stringify
 *       Any value as compact JSON text (indented with "pretty": true).
 *   pick, omit
 *       With "fields": an object keeping only (pick, in the order of fields)
 *       or dropping (omit) the named members; an array of objects has each
 *       element transformed.
 *
 * An unknown operation, or data of the wrong type for it, fails with
 * WF_EINVAL and a message naming what was expected (see
 * sample_activities.h for the error rule).
 */
#include <stdlib.h>
#include <string.h>

#include "sample_activities.h"

#define OPERATIONS                                                                                 \
    "uppercase, lowercase, trim, reverse, length, json_parse, json_stringify, pick, omit"

enum transform_op {
    OP_UPPERCASE,      /* ASCII upper case of strings */
    OP_LOWERCASE,      /* ASCII lower case of strings */
    OP_TRIM,           /* strip ASCII white space at both ends of strings */
    OP_REVERSE,        /* reverse a string or an array */
    OP_LENGTH,         /* length of a string, array or object */
    OP_JSON_PARSE,     /* parse a string as JSON */
    OP_JSON_STRINGIFY, /* serialize any value */
    OP_PICK,           /* keep the named members */
    OP_OMIT            /* drop the named members */
};

static const struct {
    const char *name;
    enum transform_op op;
} operations[] = {
    {"uppercase", OP_UPPERCASE},
    {"lowercase", OP_LOWERCASE},
    {"trim", OP_TRIM},
    {"reverse", OP_REVERSE},
    {"length", OP_LENGTH},
    {"json_parse", OP_JSON_PARSE},
    {"json_stringify", OP_JSON_STRINGIFY},
    {"pick", OP_PICK},
    {"omit", OP_OMIT},
};

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Applies a string operation to s in place (none makes a string longer). */
static void map_string(char *s, enum transform_op op)
{
    char *p;

    switch (op) {
    case OP_UPPERCASE:
        for (p = s; *p != '\0'; p++) {
            if (*p >= 'a' && *p <= 'z') {
                *p = (char)(*p - 'a' + 'A');
            }
        }
        break;
    case OP_LOWERCASE:
        for (p = s; *p != '\0'; p++) {
            if (*p >= 'A' && *p <= 'Z') {
                *p = (char)(*p - 'A' + 'a');
            }
        }
        break;
    case OP_TRIM: {
        size_t start = 0, end = strlen(s);

        while (start < end && is_space(s[start])) {
            start++;
        }
        while (end > start && is_space(s[end - 1])) {
            end--;
        }
        memmove(s, s + start, end - start);
        s[end - start] = '\0';
        break;
    }
    default:
        break;
    }
}

/* Applies a string operation to every string in the tree, in place. The
 * depth is bounded by cJSON's parser nesting limit. */
static void map_strings(cJSON *item, enum transform_op op)
{
    cJSON *child;

    if (cJSON_IsString(item)) {
        map_string(item->valuestring, op);
        return;
    }
    cJSON_ArrayForEach(child, item)
    {
        map_strings(child, op);
    }
}

/* The string s reversed by code point (an invalid byte counts as one).
 * Returns a cJSON string (caller owns), NULL when out of memory. */
static cJSON *reverse_string(const char *s)
{
    size_t n = strlen(s), i = 0;
    char *buf = malloc(n + 1);
    cJSON *res;

    if (buf == NULL) {
        return NULL;
    }
    while (i < n) {
        size_t len = sa_utf8_seq_len((const unsigned char *)s + i, n - i);

        if (len == 0) {
            len = 1;
        }
        memcpy(buf + n - i - len, s + i, len);
        i += len;
    }
    buf[n] = '\0';
    res = cJSON_CreateString(buf);
    free(buf);
    return res;
}

/* 1 if name is one of the strings of the array fields. */
static int in_fields(const cJSON *fields, const char *name)
{
    const cJSON *f;

    cJSON_ArrayForEach(f, fields)
    {
        if (strcmp(f->valuestring, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* pick or omit on one object. Returns a new object (caller owns), NULL when
 * out of memory. */
static cJSON *pick_omit(const cJSON *obj, const cJSON *fields, enum transform_op op)
{
    cJSON *res = cJSON_CreateObject();
    const cJSON *f, *member;

    if (res == NULL) {
        return NULL;
    }
    if (op == OP_PICK) {
        cJSON_ArrayForEach(f, fields)
        {
            cJSON *copy;

            member = cJSON_GetObjectItemCaseSensitive(obj, f->valuestring);
            if (member == NULL || cJSON_GetObjectItemCaseSensitive(res, f->valuestring) != NULL) {
                continue;
            }
            copy = cJSON_Duplicate(member, 1);
            if (copy == NULL || !cJSON_AddItemToObject(res, f->valuestring, copy)) {
                cJSON_Delete(copy);
                cJSON_Delete(res);
                return NULL;
            }
        }
        return res;
    }
    cJSON_ArrayForEach(member, obj)
    {
        cJSON *copy;

        if (in_fields(fields, member->string)) {
            continue;
        }
        copy = cJSON_Duplicate(member, 1);
        if (copy == NULL || !cJSON_AddItemToObject(res, member->string, copy)) {
            cJSON_Delete(copy);
            cJSON_Delete(res);
            return NULL;
        }
    }
    return res;
}

/* pick/omit: checks fields, then transforms data (an object or an array of
 * objects). On success *result is set (caller owns). */
static enum wf_status run_pick_omit(struct wf_activity_ctx *a, const char *opname,
                                    enum transform_op op, const cJSON *data, const cJSON *fields,
                                    cJSON **result)
{
    const cJSON *f, *elem;
    cJSON *res;
    int i = 0;

    if (!cJSON_IsArray(fields)) {
        a->api->fail(a, "could not transform data: %s needs \"fields\", an array of strings",
                     opname);
        return WF_EINVAL;
    }
    cJSON_ArrayForEach(f, fields)
    {
        if (!cJSON_IsString(f)) {
            a->api->fail(a, "could not transform data: \"fields\"[%d] must be a string, got %s", i,
                         sa_json_type(f));
            return WF_EINVAL;
        }
        i++;
    }
    if (cJSON_IsObject(data)) {
        res = pick_omit(data, fields, op);
        if (res == NULL) {
            return sa_fail_nomem(a, "transform data");
        }
        *result = res;
        return WF_OK;
    }
    if (!cJSON_IsArray(data)) {
        a->api->fail(a,
                     "could not transform data: %s needs an object or an array of objects, "
                     "got %s",
                     opname, sa_json_type(data));
        return WF_EINVAL;
    }
    i = 0;
    cJSON_ArrayForEach(elem, data)
    {
        if (!cJSON_IsObject(elem)) {
            a->api->fail(a, "could not transform data: %s needs objects, but \"data\"[%d] is %s",
                         opname, i, sa_json_type(elem));
            return WF_EINVAL;
        }
        i++;
    }
    res = cJSON_CreateArray();
    if (res == NULL) {
        return sa_fail_nomem(a, "transform data");
    }
    cJSON_ArrayForEach(elem, data)
    {
        cJSON *one = pick_omit(elem, fields, op);

        if (one == NULL || !cJSON_AddItemToArray(res, one)) {
            cJSON_Delete(one);
            cJSON_Delete(res);
            return sa_fail_nomem(a, "transform data");
        }
    }
    *result = res;
    return WF_OK;
}

/* Runs operation op on data. On WF_OK *result is set (caller owns); on
 * failure fail() was called and *result is untouched. */
static enum wf_status run_op(struct wf_activity_ctx *a, const cJSON *in, const char *opname,
                             enum transform_op op, const cJSON *data, cJSON **result)
{
    cJSON *res = NULL;

    switch (op) {
    case OP_UPPERCASE:
    case OP_LOWERCASE:
    case OP_TRIM:
        if (!cJSON_IsString(data) && !cJSON_IsArray(data) && !cJSON_IsObject(data)) {
            a->api->fail(a,
                         "could not transform data: %s needs a string, an array or an object, "
                         "got %s",
                         opname, sa_json_type(data));
            return WF_EINVAL;
        }
        res = cJSON_Duplicate(data, 1);
        if (res != NULL) {
            map_strings(res, op);
        }
        break;
    case OP_REVERSE:
        if (cJSON_IsString(data)) {
            res = reverse_string(data->valuestring);
        } else if (cJSON_IsArray(data)) {
            const cJSON *elem;

            res = cJSON_CreateArray();
            /* Prepending each copy reverses the order. */
            cJSON_ArrayForEach(elem, data)
            {
                cJSON *copy;

                if (res == NULL) {
                    break;
                }
                copy = cJSON_Duplicate(elem, 1);
                if (copy == NULL || !cJSON_InsertItemInArray(res, 0, copy)) {
                    cJSON_Delete(copy);
                    cJSON_Delete(res);
                    res = NULL;
                }
            }
        } else {
            a->api->fail(a, "could not transform data: reverse needs a string or an array, got %s",
                         sa_json_type(data));
            return WF_EINVAL;
        }
        break;
    case OP_LENGTH:
        if (cJSON_IsString(data)) {
            res = cJSON_CreateNumber((double)sa_utf8_length(data->valuestring));
        } else if (cJSON_IsArray(data) || cJSON_IsObject(data)) {
            res = cJSON_CreateNumber(cJSON_GetArraySize(data));
        } else {
            a->api->fail(a,
                         "could not transform data: length needs a string, an array or an "
                         "object, got %s",
                         sa_json_type(data));
            return WF_EINVAL;
        }
        break;
    case OP_JSON_PARSE: {
        const char *end = NULL;

        if (!cJSON_IsString(data)) {
            a->api->fail(a, "could not transform data: json_parse needs a string, got %s",
                         sa_json_type(data));
            return WF_EINVAL;
        }
        res = cJSON_ParseWithOpts(data->valuestring, &end, 1);
        if (res == NULL) {
            long off = end != NULL ? (long)(end - data->valuestring) : 0;

            a->api->fail(a,
                         "could not transform data: \"data\" is not valid JSON (error at "
                         "offset %ld)",
                         off);
            return WF_EINVAL;
        }
        break;
    }
    case OP_JSON_STRINGIFY: {
        const cJSON *pretty = cJSON_GetObjectItemCaseSensitive(in, "pretty");
        char *text;

        if (pretty != NULL && !cJSON_IsBool(pretty)) {
            a->api->fail(a, "could not transform data: \"pretty\" must be a boolean, got %s",
                         sa_json_type(pretty));
            return WF_EINVAL;
        }
        text = cJSON_IsTrue(pretty) ? cJSON_Print(data) : cJSON_PrintUnformatted(data);
        if (text != NULL) {
            res = cJSON_CreateString(text);
            cJSON_free(text);
        }
        break;
    }
    case OP_PICK:
    case OP_OMIT:
        return run_pick_omit(a, opname, op, data, cJSON_GetObjectItemCaseSensitive(in, "fields"),
                             result);
    }
    if (res == NULL) {
        return sa_fail_nomem(a, "transform data");
    }
    *result = res;
    return WF_OK;
}

enum wf_status sa_transform_data(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const cJSON *data, *operation;
    cJSON *result = NULL, *res;
    enum wf_status st;
    size_t i;

    if (!cJSON_IsObject(in)) {
        a->api->fail(a, "could not transform data: input must be a JSON object, got %s",
                     sa_json_type(in));
        return WF_EINVAL;
    }
    operation = cJSON_GetObjectItemCaseSensitive(in, "operation");
    if (operation == NULL) {
        a->api->fail(a,
                     "could not transform data: \"operation\" is required (one of " OPERATIONS ")");
        return WF_EINVAL;
    }
    if (!cJSON_IsString(operation)) {
        a->api->fail(a, "could not transform data: \"operation\" must be a string, got %s",
                     sa_json_type(operation));
        return WF_EINVAL;
    }
    data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (data == NULL) {
        a->api->fail(a, "could not transform data: \"data\" is required");
        return WF_EINVAL;
    }
    for (i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
        if (strcmp(operation->valuestring, operations[i].name) == 0) {
            break;
        }
    }
    if (i == sizeof(operations) / sizeof(operations[0])) {
        a->api->fail(
            a, "could not transform data: unknown operation \"%.64s\" (valid: " OPERATIONS ")",
            operation->valuestring);
        return WF_EINVAL;
    }

    st = run_op(a, in, operations[i].name, operations[i].op, data, &result);
    if (st != WF_OK) {
        return st;
    }
    res = cJSON_CreateObject();
    if (res == NULL || !cJSON_AddItemToObject(res, "result", result)) {
        cJSON_Delete(result);
        cJSON_Delete(res);
        return sa_fail_nomem(a, "transform data");
    }
    *out = res;
    return WF_OK;
}
