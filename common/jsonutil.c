/*
 * jsonutil.c: see jsonutil.h.
 */
#include "jsonutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ju_valid_run_id(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

int ju_valid_id(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= WF_ID_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

const char *ju_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int ju_int(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    double d;

    if (!cJSON_IsNumber(it))
        return -1;
    d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < -9007199254740992.0 || d > 9007199254740992.0)
        return -1;
    *out = (int64_t)d;
    return 0;
}

int ju_bool(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

int ju_append(cJSON *array, cJSON *item)
{
    if (array != NULL && item != NULL && cJSON_AddItemToArray(array, item))
        return 0;
    cJSON_Delete(item);
    return -1;
}

int ju_set(cJSON *obj, const char *key, cJSON *item)
{
    if (obj != NULL && item != NULL && cJSON_AddItemToObject(obj, key, item))
        return 0;
    cJSON_Delete(item);
    return -1;
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ju_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t ju_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

void ju_format_iso(int64_t wall_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

/* Index of key if present (*found = 1), else where it would be inserted. */
static size_t idmap_find(const struct idmap *m, const char *key, int *found)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->key_of(m->items[mid]), key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

void *idmap_get(const struct idmap *m, const char *key)
{
    int found;
    size_t i = idmap_find(m, key, &found);

    return found ? m->items[i] : NULL;
}

int idmap_put(struct idmap *m, void *item)
{
    int found;
    size_t i = idmap_find(m, m->key_of(item), &found);

    if (found)
        return -1;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        void **items = realloc(m->items, cap * sizeof(*items));
        if (items == NULL)
            return -1;
        m->items = items;
        m->cap = cap;
    }
    memmove(m->items + i + 1, m->items + i, (m->n - i) * sizeof(*m->items));
    m->items[i] = item;
    m->n++;
    return 0;
}

void *idmap_del(struct idmap *m, const char *key)
{
    int found;
    size_t i = idmap_find(m, key, &found);
    void *item;

    if (!found)
        return NULL;
    item = m->items[i];
    memmove(m->items + i, m->items + i + 1, (m->n - i - 1) * sizeof(*m->items));
    m->n--;
    return item;
}

void idmap_free(struct idmap *m)
{
    free(m->items);
    m->items = NULL;
    m->n = m->cap = 0;
}
