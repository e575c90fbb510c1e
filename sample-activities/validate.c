/*
 * validate.c: the validateData activity.
 *
 * Input {data: object, rules: object}; rules maps a top-level field of data
 * to a rule object with any of:
 *   required   boolean: the field must be present (a JSON null is present)
 *   type       "string" | "number" | "integer" | "boolean" | "object" |
 *              "array" | "null" ("integer": a number with no fraction)
 *   pattern    POSIX extended regular expression a string value must match
 *              (regcomp/regexec: unanchored, like RegExp.test; write ^...$
 *              to match the whole value)
 *   minLength, maxLength  bounds on a string's length in code points, or on
 *              an array's number of elements
 *   min, max   inclusive bounds on a number
 * Output {valid: boolean, errors: [{field, rule, message}]}, errors in the
 * order of the rules. An absent field that is not required is not checked
 * further; a value of the wrong type gets the "type" error only; pattern,
 * lengths and bounds are skipped for values they do not apply to (combine
 * them with "type").
 *
 * Data failing the rules is a successful activity (valid: false). A rule that
 * cannot be applied (unknown key or type, bad regular expression, a bound of
 * the wrong type) is bad input: WF_EINVAL with a message naming the field and
 * the rule, checked for every rule before any data is looked at.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample_activities.h"

#define TYPES "string, number, integer, boolean, object, array, null"
#define LENGTH_MAX 1000000000 /* bound for minLength/maxLength */

enum value_type {
    T_ANY,     /* no "type" rule */
    T_STRING,  /* a JSON string */
    T_NUMBER,  /* any JSON number */
    T_INTEGER, /* a number with no fractional part */
    T_BOOLEAN, /* true or false */
    T_OBJECT,  /* a JSON object */
    T_ARRAY,   /* a JSON array */
    T_NULL     /* JSON null */
};

static const char *const type_names[] = {"any",     "string", "number", "integer",
                                         "boolean", "object", "array",  "null"};

/* One parsed rule; pattern and field point into the input (borrowed). */
struct rule {
    const char *field;
    int required;
    enum value_type type;
    const char *pattern;
    regex_t re;
    int has_re;
    int64_t min_len, max_len; /* -1: none */
    int has_min, has_max;
    double min, max;
};

/* Frees n rules and the array. */
static void free_rules(struct rule *rules, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (rules[i].has_re) {
            regfree(&rules[i].re);
        }
    }
    free(rules);
}

/* Parses the rule for r->field from spec into r. Returns 0, or -1 after
 * calling fail (r may then hold a compiled regex: free_rules frees it). */
static int parse_rule(struct wf_activity_ctx *a, const cJSON *spec, struct rule *r)
{
    const cJSON *k;
    size_t t;

    r->min_len = r->max_len = -1;
    if (!cJSON_IsObject(spec)) {
        a->api->fail(a, "could not validate data: the rule for \"%s\" must be an object, got %s",
                     r->field, sa_json_type(spec));
        return -1;
    }
    cJSON_ArrayForEach(k, spec)
    {
        const char *key = k->string;

        if (strcmp(key, "required") == 0) {
            if (!cJSON_IsBool(k)) {
                goto bad_type;
            }
            r->required = cJSON_IsTrue(k);
        } else if (strcmp(key, "type") == 0) {
            if (!cJSON_IsString(k)) {
                goto bad_type;
            }
            for (t = T_STRING; t <= T_NULL; t++) {
                if (strcmp(k->valuestring, type_names[t]) == 0) {
                    r->type = (enum value_type)t;
                    break;
                }
            }
            if (r->type == T_ANY) {
                a->api->fail(a,
                             "could not validate data: unknown type \"%.64s\" in the rule for "
                             "\"%s\" (valid: " TYPES ")",
                             k->valuestring, r->field);
                return -1;
            }
        } else if (strcmp(key, "pattern") == 0) {
            int rc;

            if (!cJSON_IsString(k)) {
                goto bad_type;
            }
            if (r->has_re) {
                regfree(&r->re);
                r->has_re = 0;
            }
            rc = regcomp(&r->re, k->valuestring, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char msg[256];

                regerror(rc, &r->re, msg, sizeof(msg));
                a->api->fail(a,
                             "could not validate data: bad pattern \"%.128s\" in the rule for "
                             "\"%s\": %s",
                             k->valuestring, r->field, msg);
                return -1;
            }
            r->has_re = 1;
            r->pattern = k->valuestring;
        } else if (strcmp(key, "minLength") == 0 || strcmp(key, "maxLength") == 0) {
            int64_t v;

            if (sa_json_int(k, 0, LENGTH_MAX, &v) != 0) {
                a->api->fail(a,
                             "could not validate data: \"%s\" in the rule for \"%s\" must be a "
                             "non-negative integer",
                             key, r->field);
                return -1;
            }
            *(key[1] == 'i' ? &r->min_len : &r->max_len) = v;
        } else if (strcmp(key, "min") == 0 || strcmp(key, "max") == 0) {
            if (!cJSON_IsNumber(k)) {
                goto bad_type;
            }
            if (key[1] == 'i') {
                r->has_min = 1;
                r->min = k->valuedouble;
            } else {
                r->has_max = 1;
                r->max = k->valuedouble;
            }
        } else {
            a->api->fail(a,
                         "could not validate data: unknown rule \"%.64s\" for \"%s\" (valid: "
                         "required, type, pattern, minLength, maxLength, min, max)",
                         key, r->field);
            return -1;
        }
        continue;
bad_type:
        a->api->fail(a, "could not validate data: \"%s\" in the rule for \"%s\" must be %s, got %s",
                     key, r->field,
                     strcmp(key, "required") == 0                         ? "a boolean"
                     : strcmp(key, "min") == 0 || strcmp(key, "max") == 0 ? "a number"
                                                                          : "a string",
                     sa_json_type(k));
        return -1;
    }
    if (r->min_len >= 0 && r->max_len >= 0 && r->min_len > r->max_len) {
        a->api->fail(a,
                     "could not validate data: minLength exceeds maxLength in the rule for \"%s\"",
                     r->field);
        return -1;
    }
    if (r->has_min && r->has_max && r->min > r->max) {
        a->api->fail(a, "could not validate data: min exceeds max in the rule for \"%s\"",
                     r->field);
        return -1;
    }
    return 0;
}

static int type_matches(const cJSON *v, enum value_type t)
{
    switch (t) {
    case T_ANY:
        return 1;
    case T_STRING:
        return cJSON_IsString(v);
    case T_NUMBER:
        return cJSON_IsNumber(v);
    case T_INTEGER: {
        int64_t ignored;

        /* Integral and within the range doubles hold exactly. */
        return sa_json_int(v, -9007199254740992LL, 9007199254740992LL, &ignored) == 0;
    }
    case T_BOOLEAN:
        return cJSON_IsBool(v);
    case T_OBJECT:
        return cJSON_IsObject(v);
    case T_ARRAY:
        return cJSON_IsArray(v);
    case T_NULL:
        return cJSON_IsNull(v);
    }
    return 0;
}

/* Appends {field, rule, message} to errors. Returns 0, -1 when out of
 * memory. */
static int add_error(cJSON *errors, const char *field, const char *rule, const char *message)
{
    cJSON *e = cJSON_CreateObject();

    if (e == NULL || cJSON_AddStringToObject(e, "field", field) == NULL ||
        cJSON_AddStringToObject(e, "rule", rule) == NULL ||
        cJSON_AddStringToObject(e, "message", message) == NULL ||
        !cJSON_AddItemToArray(errors, e)) {
        cJSON_Delete(e);
        return -1;
    }
    return 0;
}

/* Checks one field against its rule, appending to errors. Returns 0, -1
 * when out of memory. */
static int check_field(const cJSON *data, const struct rule *r, cJSON *errors)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, r->field);
    char msg[512];
    int64_t len = -1;

    if (v == NULL) {
        if (!r->required) {
            return 0;
        }
        snprintf(msg, sizeof(msg), "field \"%s\" is required", r->field);
        return add_error(errors, r->field, "required", msg);
    }
    if (!type_matches(v, r->type)) {
        snprintf(msg, sizeof(msg), "field \"%s\" must be of type %s, got %s", r->field,
                 type_names[r->type], sa_json_type(v));
        return add_error(errors, r->field, "type", msg);
    }
    if (cJSON_IsString(v)) {
        len = (int64_t)sa_utf8_length(v->valuestring);
        if (r->has_re && regexec(&r->re, v->valuestring, 0, NULL, 0) != 0) {
            snprintf(msg, sizeof(msg), "field \"%s\" does not match pattern %s", r->field,
                     r->pattern);
            if (add_error(errors, r->field, "pattern", msg) != 0) {
                return -1;
            }
        }
    } else if (cJSON_IsArray(v)) {
        len = cJSON_GetArraySize(v);
    }
    if (len >= 0 && r->min_len >= 0 && len < r->min_len) {
        snprintf(msg, sizeof(msg), "field \"%s\" must have a length of at least %lld, got %lld",
                 r->field, (long long)r->min_len, (long long)len);
        if (add_error(errors, r->field, "minLength", msg) != 0) {
            return -1;
        }
    }
    if (len >= 0 && r->max_len >= 0 && len > r->max_len) {
        snprintf(msg, sizeof(msg), "field \"%s\" must have a length of at most %lld, got %lld",
                 r->field, (long long)r->max_len, (long long)len);
        if (add_error(errors, r->field, "maxLength", msg) != 0) {
            return -1;
        }
    }
    if (cJSON_IsNumber(v) && r->has_min && v->valuedouble < r->min) {
        snprintf(msg, sizeof(msg), "field \"%s\" must be at least %.17g, got %.17g", r->field,
                 r->min, v->valuedouble);
        if (add_error(errors, r->field, "min", msg) != 0) {
            return -1;
        }
    }
    if (cJSON_IsNumber(v) && r->has_max && v->valuedouble > r->max) {
        snprintf(msg, sizeof(msg), "field \"%s\" must be at most %.17g, got %.17g", r->field,
                 r->max, v->valuedouble);
        if (add_error(errors, r->field, "max", msg) != 0) {
            return -1;
        }
    }
    return 0;
}

enum wf_status sa_validate_data(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    const cJSON *data, *rules, *spec;
    struct rule *parsed;
    size_t n, i = 0;
    cJSON *res, *errors;

    if (!cJSON_IsObject(in)) {
        a->api->fail(a, "could not validate data: input must be a JSON object, got %s",
                     sa_json_type(in));
        return WF_EINVAL;
    }
    data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (!cJSON_IsObject(data)) {
        a->api->fail(a, "could not validate data: \"data\" must be an object, got %s",
                     sa_json_type(data));
        return WF_EINVAL;
    }
    rules = cJSON_GetObjectItemCaseSensitive(in, "rules");
    if (!cJSON_IsObject(rules)) {
        a->api->fail(a, "could not validate data: \"rules\" must be an object, got %s",
                     sa_json_type(rules));
        return WF_EINVAL;
    }

    n = (size_t)cJSON_GetArraySize(rules);
    parsed = calloc(n > 0 ? n : 1, sizeof(*parsed));
    if (parsed == NULL) {
        return sa_fail_nomem(a, "validate data");
    }
    cJSON_ArrayForEach(spec, rules)
    {
        parsed[i].field = spec->string;
        if (parse_rule(a, spec, &parsed[i]) != 0) {
            free_rules(parsed, i + 1);
            return WF_EINVAL;
        }
        i++;
    }

    res = cJSON_CreateObject();
    errors = cJSON_CreateArray();
    if (res == NULL || errors == NULL) {
        goto nomem;
    }
    for (i = 0; i < n; i++) {
        if (check_field(data, &parsed[i], errors) != 0) {
            goto nomem;
        }
    }
    if (cJSON_AddBoolToObject(res, "valid", cJSON_GetArraySize(errors) == 0) == NULL ||
        !cJSON_AddItemToObject(res, "errors", errors)) {
        goto nomem;
    }
    free_rules(parsed, n);
    *out = res;
    return WF_OK;

nomem:
    /* errors is not yet in res on every path that gets here. */
    if (cJSON_GetObjectItemCaseSensitive(res, "errors") != errors) {
        cJSON_Delete(errors);
    }
    cJSON_Delete(res);
    free_rules(parsed, n);
    return sa_fail_nomem(a, "validate data");
}
