/*
 * sample_activities.h: private declarations shared by the files of the
 * sample-activities plugin (sample_activities.so). Not part of the plugin
 * ABI: every symbol here is hidden, so the plugin's only exported symbol is
 * wf_plugin_entry and nothing in it can clash with, or be interposed by, a
 * symbol of the host or of another plugin.
 *
 * Error-reporting rule of the plugin: an activity that fails calls
 * a->api->fail(a, "could not <verb> <object>: <detail>") once, leaves *out
 * NULL and returns WF_EINVAL for bad input (never retried), WF_ERROR for a
 * transient failure (retried by the host), WF_ECANCELLED / WF_ETIMEDOUT when
 * the run was cancelled or its deadline passed, and WF_ENOMEM when memory
 * ran out.
 */
#ifndef SA_SAMPLE_ACTIVITIES_H
#define SA_SAMPLE_ACTIVITIES_H

#include <stddef.h>
#include <stdint.h>

#include <wf/plugin.h>

#define SA_HIDDEN __attribute__((visibility("hidden")))

/* ---- activities living in their own files (see each file's header) ---- */

/* httpRequest (http_request.c). */
SA_HIDDEN enum wf_status sa_http_request(struct wf_activity_ctx *a, const cJSON *in, cJSON **out);

/* transformData (transform.c). */
SA_HIDDEN enum wf_status sa_transform_data(struct wf_activity_ctx *a, const cJSON *in, cJSON **out);

/* validateData (validate.c). */
SA_HIDDEN enum wf_status sa_validate_data(struct wf_activity_ctx *a, const cJSON *in, cJSON **out);

/* ---- helpers (util.c) ---- */

/* Wall-clock time in Unix milliseconds. */
SA_HIDDEN int64_t sa_now_ms(void);

/* A monotonic clock in milliseconds, for measuring waits. */
SA_HIDDEN int64_t sa_monotonic_ms(void);

/* The JSON type of item as a word for messages: "string", "number",
 * "boolean", "null", "array", "object" ("nothing" for NULL). */
SA_HIDDEN const char *sa_json_type(const cJSON *item);

/* Stores item's value in *out and returns 0 if item is a number with an
 * integral value in [min, max]; returns -1 (and leaves *out alone)
 * otherwise. */
SA_HIDDEN int sa_json_int(const cJSON *item, int64_t min, int64_t max, int64_t *out);

/* Records "could not <what>: out of memory" and returns WF_ENOMEM. */
SA_HIDDEN enum wf_status sa_fail_nomem(struct wf_activity_ctx *a, const char *what);

/* The length of the valid UTF-8 sequence at p (1 to 4), or 0 if the bytes
 * at p (avail of them, avail >= 1) do not start one. NUL is not valid. */
SA_HIDDEN size_t sa_utf8_seq_len(const unsigned char *p, size_t avail);

/* The number of code points of the NUL-terminated string s (invalid bytes
 * count one each). */
SA_HIDDEN size_t sa_utf8_length(const char *s);

/* A copy of the n bytes at p as valid UTF-8: every byte that does not start
 * a valid sequence (NUL included, which PostgreSQL's jsonb refuses) becomes
 * U+FFFD. Returns a malloc'ed NUL-terminated string (caller frees with
 * free), or NULL when out of memory. */
SA_HIDDEN char *sa_utf8_sanitize(const char *p, size_t n);

#endif
