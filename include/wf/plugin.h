/*
 * wf/plugin.h: the plugin ABI of wf-server, the only public header.
 *
 * A plugin is a shared object that exports one symbol, wf_plugin_entry,
 * returning a pointer to a static struct wf_plugin: a magic number, the size
 * of the struct and WF_ABI_VERSION first (the host checks these before it
 * touches anything else), then tables of workflows and activities.
 *
 *     #include <wf/plugin.h>
 *
 *     static enum wf_status greet(struct wf_activity_ctx *a, const cJSON *in,
 *                                 cJSON **out) { ... }
 *     static const struct wf_activity_def acts[] = {
 *         {"greet", greet, WF_RETRY_DEFAULT, 30000},
 *     };
 *     WF_PLUGIN_DEFINE("greeter", "1.0.0", NULL, 0, acts, 1);
 *
 * Plugins link against no host symbol: every service of the host comes
 * through the function tables in the contexts below. JSON crosses the ABI as
 * cJSON trees from the system libcjson, which host and plugins share.
 *
 * Ownership, for every call: a `const cJSON *` argument is borrowed (valid
 * only during the call; never freed or kept by the callee); a `cJSON **out`
 * receives a new tree that the receiver owns and frees with cJSON_Delete.
 *
 * Workflows must be deterministic: the host replays a run by calling the
 * workflow function from the top, answering each host call whose result is
 * already recorded without running anything. So a workflow does every side
 * effect (I/O, time, randomness) through the host API, and returns
 * WF_SUSPEND at once whenever a host call returns it.
 *
 * Versioning: WF_ABI_VERSION changes whenever a struct below changes
 * incompatibly; the host refuses a plugin built for another version
 * ("incompatible plugin \"x\": ABI version mismatch (plugin 1, server 2)"):
 * rebuild it against the server's wf/plugin.h. ABI 2 gave the two contexts
 * a leading size, like the api tables, so that every struct the host hands
 * a plugin (struct wf_ctx, struct wf_host_api, struct wf_activity_ctx,
 * struct wf_activity_api) starts with `uint32_t size`, the sizeof of that
 * struct as the host was built, and can grow by appending fields without a
 * new ABI version.
 *
 * The rule for growth: every field declared in the ABI version a plugin was
 * built for is always there (a host of that version never hands out less).
 * A field appended later is read only if the host's struct holds it, that is
 * if offsetof(field) + sizeof(field) <= ptr->size; WF_HAS_FIELD says so:
 *
 *     if (WF_HAS_FIELD(a, struct wf_activity_ctx, some_later_field))
 *         use(a->some_later_field);
 *
 * A host, for its part, fills in size on every struct it builds, and reads
 * struct wf_plugin only after checking its magic, version and size.
 */
#ifndef WF_PLUGIN_H
#define WF_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WF_PLUGIN_MAGIC 0x57465031u /* "WFP1" */
#define WF_ABI_VERSION 2u

/* 1 if the struct at ptr, as the host built it, holds member field of type:
 * its size covers the field's last byte. ptr must not be NULL. */
#define WF_HAS_FIELD(ptr, type, field)                                                             \
    ((size_t)(ptr)->size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Results of workflows, activities and host calls. */
enum wf_status {
    WF_OK = 0,          /* done; any *out is set */
    WF_SUSPEND = 1,     /* the run is parked (sleep, signal wait, retry
                           backoff): the workflow must return WF_SUSPEND now */
    WF_ERROR = -1,      /* failed; retryable for activities */
    WF_EINVAL = -2,     /* bad input: never retried */
    WF_ETIMEDOUT = -3,  /* a timeout elapsed (signal wait, activity) */
    WF_ECANCELLED = -4, /* the run was cancelled: return it at once */
    WF_ENOTFOUND = -5,  /* no such activity or workflow */
    WF_ENOMEM = -6      /* out of memory */
};

enum wf_log_level {
    WF_LOG_ERROR = 0,
    WF_LOG_WARNING = 1,
    WF_LOG_INFO = 2,
    WF_LOG_DEBUG = 3
};

/* ---- workflows ---- */

struct wf_ctx;

/* How a children call joins the runs it started. */
enum wf_join {
    WF_JOIN_ALL = 0, /* wait for every child; fails as soon as one fails */
    WF_JOIN_ANY = 1  /* wait for the first child to complete; the others are cancelled */
};

/* The host services a workflow may use (ctx->api). */
struct wf_host_api {
    uint32_t size; /* sizeof(struct wf_host_api) of the host */

    /* Runs activity `name` with `input` (borrowed), or returns its recorded
     * result. WF_OK: *output is the activity's result (caller owns). Other
     * statuses: *output is NULL, and ctx->api->error(ctx) describes the
     * failure after its retries were exhausted. WF_SUSPEND: the run waits
     * (a retry backoff); return WF_SUSPEND. */
    enum wf_status (*activity)(struct wf_ctx *ctx, const char *name, const cJSON *input,
                               cJSON **output);

    /* Durable timer: WF_OK once `ms` have passed since the run first got
     * here, else WF_SUSPEND (the run is parked until then). */
    enum wf_status (*sleep)(struct wf_ctx *ctx, int64_t ms);

    /* Waits for signal `name` (timeout_ms < 0: forever). WF_OK: *payload is
     * the signal's payload (caller owns; JSON null if none). WF_ETIMEDOUT:
     * the timeout elapsed first. WF_SUSPEND: not yet; return WF_SUSPEND. */
    enum wf_status (*wait_signal)(struct wf_ctx *ctx, const char *name, int64_t timeout_ms,
                                  cJSON **payload);

    /* The run's current time in Unix milliseconds, recorded on first use so
     * a replay sees the same value. */
    int64_t (*now)(struct wf_ctx *ctx);

    /* Writes one line to the worker's log, prefixed with the run's id. */
    void (*log)(struct wf_ctx *ctx, enum wf_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* The message of the last failed host call, or "" (valid until the next
     * host call). */
    const char *(*error)(struct wf_ctx *ctx);

    /* Appended to ABI 2: check WF_HAS_FIELD(ctx->api, struct wf_host_api,
     * children) before use.
     *
     * Starts child runs and waits for them: specs (borrowed) is a JSON
     * array of {"workflow": name, "input": value}, one child run each, of
     * a workflow of this project (the run's own workflow runs on the run's
     * code version, another on its current one). Each child is a run of
     * its own, with its own steps, retries and crash recovery, listed with
     * its parent's id; at most `limit` run at once (0: no bound). join
     * says when the wait ends (enum wf_join). The whole call is one step:
     * a replay returns the recorded results without starting anything.
     * WF_OK: *results (caller owns) is an array of {"executionId",
     * "index", "status", "output", "error"}: every child in order for
     * WF_JOIN_ALL, the first to complete for WF_JOIN_ANY. WF_ERROR: a
     * child failed or was cancelled (WF_JOIN_ALL), or none completed
     * (WF_JOIN_ANY); error() names it and *results holds them all, as far
     * as they got. WF_EINVAL: malformed specs. WF_SUSPEND: not yet; return
     * WF_SUSPEND. */
    enum wf_status (*children)(struct wf_ctx *ctx, const cJSON *specs, enum wf_join join, int limit,
                               cJSON **results);
};

struct wf_ctx {
    uint32_t size; /* sizeof(struct wf_ctx) of the host (ABI 2) */
    const struct wf_host_api *api;
    const char *project_id;
    const char *execution_id;
    const char *workflow;
    void *host; /* private to the host */
};

/* A workflow: input borrowed; on WF_OK *output may be set (host owns it
 * then); on failure it may be left NULL. */
typedef enum wf_status (*wf_workflow_fn)(struct wf_ctx *ctx, const cJSON *input, cJSON **output);

/* ---- activities ---- */

struct wf_activity_ctx;

struct wf_activity_api {
    uint32_t size; /* sizeof(struct wf_activity_api) of the host */

    /* Writes one line to the worker's log, prefixed with the activity. */
    void (*log)(struct wf_activity_ctx *a, enum wf_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* Records why the activity failed; return WF_ERROR (retried) or
     * WF_EINVAL (not retried) after it. The last call wins. */
    void (*fail)(struct wf_activity_ctx *a, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* 1 once the run is cancelled or the deadline passed: stop soon. */
    int (*cancelled)(struct wf_activity_ctx *a);
};

struct wf_activity_ctx {
    uint32_t size; /* sizeof(struct wf_activity_ctx) of the host (ABI 2) */
    const struct wf_activity_api *api;
    const char *activity;     /* its registered name */
    const char *execution_id; /* "" outside a run (tests) */
    int attempt;              /* 1 for the first try */
    int64_t deadline_ms;      /* Unix ms by which to finish; 0: none */
    void *host;               /* private to the host */
};

/* An activity: input borrowed; on WF_OK *output must be set (caller owns).
 * On failure, leave *output NULL and call a->api->fail first. */
typedef enum wf_status (*wf_activity_fn)(struct wf_activity_ctx *a, const cJSON *input,
                                         cJSON **output);

struct wf_retry_policy {
    int max_attempts;            /* total tries, >= 1 */
    int64_t initial_interval_ms; /* delay before the 2nd try */
    double backoff_coefficient;  /* delay multiplier, >= 1 */
    int64_t max_interval_ms;     /* cap on the delay */
};

/* 3 attempts, 1 s, doubling, capped at 60 s (DESIGN §5). */
#define WF_RETRY_DEFAULT                                                                           \
    {                                                                                              \
        3, 1000, 2.0, 60000                                                                        \
    }
#define WF_RETRY_NONE                                                                              \
    {                                                                                              \
        1, 0, 1.0, 0                                                                               \
    }

struct wf_workflow_def {
    const char *name; /* kebab-case, unique in the project */
    wf_workflow_fn fn;
};

struct wf_activity_def {
    const char *name; /* unique in the project */
    wf_activity_fn fn;
    struct wf_retry_policy retry;
    int64_t timeout_ms; /* per attempt; 0: none */
};

/* ---- the plugin descriptor ---- */

struct wf_plugin {
    uint32_t magic;       /* WF_PLUGIN_MAGIC */
    uint32_t size;        /* sizeof(struct wf_plugin) */
    uint32_t abi_version; /* WF_ABI_VERSION */
    const char *name;
    const char *version;
    const struct wf_workflow_def *workflows;
    size_t n_workflows;
    const struct wf_activity_def *activities;
    size_t n_activities;
};

typedef const struct wf_plugin *(*wf_plugin_entry_fn)(void);

#define WF_PLUGIN_ENTRY_SYMBOL "wf_plugin_entry"

/* Defines wf_plugin_entry returning a static descriptor. */
#define WF_PLUGIN_DEFINE(name_, version_, workflows_, n_workflows_, activities_, n_activities_)    \
    const struct wf_plugin *wf_plugin_entry(void);                                                 \
    const struct wf_plugin *wf_plugin_entry(void)                                                  \
    {                                                                                              \
        static const struct wf_plugin plugin = {                                                   \
            WF_PLUGIN_MAGIC, (uint32_t)sizeof(struct wf_plugin),                                   \
            WF_ABI_VERSION,  name_,                                                                \
            version_,        workflows_,                                                           \
            n_workflows_,    activities_,                                                          \
            n_activities_};                                                                        \
        return &plugin;                                                                            \
    }

#ifdef __cplusplus
}
#endif

#endif
