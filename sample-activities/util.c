/*
 * util.c: small helpers shared by the sample activities: clocks, JSON type
 * names and integer checks for input validation, and UTF-8 handling.
 *
 * UTF-8 matters because activity results end up in PostgreSQL jsonb, which
 * refuses invalid UTF-8 and NUL characters: text that comes from outside
 * (HTTP bodies and headers) goes through sa_utf8_sanitize before it becomes
 * a JSON string. None of these functions fails but sa_utf8_sanitize (NULL
 * when out of memory).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sample_activities.h"

/* The replacement character U+FFFD in UTF-8. */
static const char replacement[] = "\xEF\xBF\xBD";
#define REPLACEMENT_LEN 3

int64_t sa_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sa_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *sa_json_type(const cJSON *item)
{
    if (item == NULL) {
        return "nothing";
    }
    if (cJSON_IsString(item)) {
        return "string";
    }
    if (cJSON_IsNumber(item)) {
        return "number";
    }
    if (cJSON_IsBool(item)) {
        return "boolean";
    }
    if (cJSON_IsNull(item)) {
        return "null";
    }
    if (cJSON_IsArray(item)) {
        return "array";
    }
    if (cJSON_IsObject(item)) {
        return "object";
    }
    return "invalid JSON";
}

int sa_json_int(const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
    double d;

    if (!cJSON_IsNumber(item)) {
        return -1;
    }
    d = item->valuedouble;
    /* The range check comes first: it also rejects NaN, and it keeps the
     * conversion below defined. */
    if (!(d >= (double)min && d <= (double)max)) {
        return -1;
    }
    if ((double)(int64_t)d != d) {
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

enum wf_status sa_fail_nomem(struct wf_activity_ctx *a, const char *what)
{
    a->api->fail(a, "could not %s: out of memory", what);
    return WF_ENOMEM;
}

static int is_cont(unsigned char c)
{
    return c >= 0x80 && c <= 0xBF;
}

size_t sa_utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];

    if (c >= 0x01 && c <= 0x7F) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        return avail >= 2 && is_cont(p[1]) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        /* Refuse overlong forms (E0 80..9F) and surrogates (ED A0..BF). */
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : 0xBF;

        if (avail < 3 || p[1] < lo || p[1] > hi || !is_cont(p[2])) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        /* Refuse overlong forms (F0 80..8F) and code points past U+10FFFF. */
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;

        if (avail < 4 || p[1] < lo || p[1] > hi || !is_cont(p[2]) || !is_cont(p[3])) {
            return 0;
        }
        return 4;
    }
    return 0;
}

size_t sa_utf8_length(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (!is_cont((unsigned char)*s)) {
            n++;
        }
    }
    return n;
}

char *sa_utf8_sanitize(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t need = 0, i = 0, o = 0;
    char *out;

    /* First pass: the size of the result. */
    while (i < n) {
        size_t len = sa_utf8_seq_len(u + i, n - i);

        if (len == 0) {
            need += REPLACEMENT_LEN;
            i++;
        } else {
            need += len;
            i += len;
        }
    }
    out = malloc(need + 1);
    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < n;) {
        size_t len = sa_utf8_seq_len(u + i, n - i);

        if (len == 0) {
            memcpy(out + o, replacement, REPLACEMENT_LEN);
            o += REPLACEMENT_LEN;
            i++;
        } else {
            memcpy(out + o, p + i, len);
            o += len;
            i += len;
        }
    }
    out[o] = '\0';
    return out;
}
