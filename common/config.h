/*
 * config.h: the service's configuration, read once from the environment by
 * the manager before anything starts, and inherited by core through fork.
 *
 * Every value is validated at load: an invalid one is refused with a message
 * naming the variable, and the process exits with WF_EXIT_USAGE. Workers get
 * none of this: they are exec'd with their few settings on the command line.
 */
#ifndef WF_CONFIG_H
#define WF_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "log.h"

/* Defaults of MAX_CONCURRENT_WORKFLOW_EXECUTIONS and _ACTIVITY_EXECUTIONS
 * (docs/operations.md); a sleeping or waiting run holds no slot. */
#define WF_DEFAULT_MAX_RUNS 1000
#define WF_DEFAULT_MAX_ACTIVITIES 100

struct wf_config {
    const char *database_url; /* core only; a private copy after config_take_secrets */
    int port;                 /* 0: any free port */
    char listen_addr[64];
    int heartbeat_ms;
    int drain_timeout_ms;
    int start_timeout_ms;
    char host_id[128];
    int http_threads;
    int db_pool_size;
    long max_body_bytes;
    const char
        *api_token; /* NULL when unset, never empty; a private copy after config_take_secrets */
    int autostart;
    char worker_program[PATH_MAX]; /* empty: this binary */
    char runtime_dir[PATH_MAX];    /* workers' scratch directories, per instance and project */
    char worker_user[64];          /* WF_WORKER_USER: who workers run as when the server is root */
    long worker_max_as_mb;         /* WF_WORKER_MAX_AS_MB: workers' RLIMIT_AS; 0 none */
    long worker_max_files;         /* WF_WORKER_MAX_FILES: workers' RLIMIT_NOFILE */
    long worker_max_procs;       /* WF_WORKER_MAX_PROCS: RLIMIT_NPROC of the workers' uid; 0 none */
    char sandbox_rw_paths[2048]; /* WF_SANDBOX_RW_PATHS: colon-separated absolute paths */
    char sandbox_ro_paths[2048]; /* WF_SANDBOX_RO_PATHS: colon-separated absolute paths */
    char sandbox_disable[64];    /* WF_SANDBOX_DISABLE: "landlock", "seccomp" or both (diagnosis) */
    long max_artifact_bytes;
    long max_inflight_body_bytes; /* request bodies buffered at once, all requests together */
    int max_connections_per_ip;   /* 0: no limit */
    int max_connections;          /* 0: computed from the open-file limit */
    int request_timeout_ms;       /* receiving one request (headers and body) takes at most this */
    long max_message_bytes;       /* largest message between roles (WF_MAX_MESSAGE_BYTES) */
    int worker_stall_ms;          /* a worker not reading its queue this long is reset */
    int worker_msg_rate;          /* messages per second a worker may send before it is reset */
    int max_runs;                 /* MAX_CONCURRENT_WORKFLOW_EXECUTIONS: runs a worker holds */
    int max_activities;           /* MAX_CONCURRENT_ACTIVITY_EXECUTIONS: activities at once */
    int lease_ms;                 /* WF_LEASE_MS: how long a host's claim on a run lasts */
    int schedule_grace_ms; /* WF_SCHEDULE_GRACE_MS: a tick fired later than this was missed */
    int db_statement_timeout_ms;
    int db_connect_timeout_ms;
    enum log_level log_level;
    int log_json;
};

/*
 * Fills *cfg from the environment. Returns 0, or -1 with a one-line reason
 * in err (e.g. "PORT must be an integer in 0..65535, not \"abc\"").
 */
int config_load(struct wf_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Moves the secrets (DATABASE_URL, WF_API_TOKEN) out of the environment:
 * cfg gets private copies, the bytes of the values in the process's
 * original environment block (what /proc/<pid>/environ shows) are
 * overwritten, and the variables are unset. Called once, right after
 * config_load, before any thread or child exists. Returns 0, or -1 when
 * out of memory.
 */
int config_take_secrets(struct wf_config *cfg) __attribute__((warn_unused_result));

/*
 * Reads the integer environment variable name into *out: def when unset or
 * empty, else it must lie in [min, max]. Returns 0, or -1 with a one-line
 * reason in err naming the variable.
 */
int config_env_long(const char *name, long def, long min, long max, long *out, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/*
 * Parses s as a base-10 integer in [min, max] with nothing after it.
 * Returns 0 and sets *out, or -1 leaving *out untouched.
 */
int config_parse_long(const char *s, long min, long max, long *out)
    __attribute__((warn_unused_result));

#endif
