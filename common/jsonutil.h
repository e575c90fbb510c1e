/*
 * jsonutil.h: small helpers shared by every role: id validation, typed
 * getters on cJSON objects, clocks and time formatting, and a sorted map from
 * string ids to objects.
 *
 * Getters never allocate and never take ownership; they return NULL or -1
 * when the member is missing or of the wrong type.
 */
#ifndef WF_JSONUTIL_H
#define WF_JSONUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#define WF_ID_MAX 64

/* 1 if s matches ^[A-Za-z0-9_-]{1,64}$, else 0. */
int ju_valid_id(const char *s);

/* 1 if s is a run id as core writes them: a UUID in lower-case hex,
 * 8-4-4-4-12. */
int ju_valid_run_id(const char *s);

/* The string value of obj[key], or NULL if absent or not a string. */
const char *ju_str(const cJSON *obj, const char *key);

/* Sets *out to obj[key] if it is a number with an integral value in the
 * range of int64_t; returns 0, or -1 leaving *out untouched. */
int ju_int(const cJSON *obj, const char *key, int64_t *out);

/* 1 if obj[key] is true, 0 otherwise. */
int ju_bool(const cJSON *obj, const char *key);

/* Add item to array, or to obj under key, taking ownership either way: when
 * that fails (container NULL, out of memory) item is deleted, so no caller
 * leaks it. Return 0, or -1. */
int ju_append(cJSON *array, cJSON *item);
int ju_set(cJSON *obj, const char *key, cJSON *item);

/* Milliseconds on CLOCK_MONOTONIC (for deadlines) and CLOCK_REALTIME (for
 * timestamps shown to users). */
int64_t ju_mono_ms(void);
int64_t ju_wall_ms(void);

/* Formats wall-clock milliseconds as "2026-11-23T14:26:18.123Z" into a
 * buffer of JU_ISO_LEN bytes. */
#define JU_ISO_LEN 64
void ju_format_iso(int64_t wall_ms, char *buf, size_t len);

/*
 * A map from id strings to caller-owned objects, kept as a sorted array of
 * pointers (ordered iteration for listings, O(log n) lookup; insertion is
 * O(n), fine for the thousands of projects a host runs). The key is read
 * from each object through key_of. The map never frees the objects.
 */
struct idmap {
    void **items;
    size_t n;
    size_t cap;
    const char *(*key_of)(const void *item);
};

void *idmap_get(const struct idmap *m, const char *key);
/* Inserts item (its key must not be present). Returns 0, or -1 on ENOMEM. */
int idmap_put(struct idmap *m, void *item) __attribute__((warn_unused_result));
/* Removes and returns the item with that key, or NULL. */
void *idmap_del(struct idmap *m, const char *key);
/* Frees the array (not the items). */
void idmap_free(struct idmap *m);

#endif
