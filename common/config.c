/*
 * config.c: reads and validates the environment (docs/operations.md lists
 * every variable). Range-checked strtol only; no atoi.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int config_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Reads an integer variable with a default; -1 with err filled if invalid. */
int config_env_long(const char *name, long def, long min, long max, long *out, char *err,
                    size_t errlen)
{
    const char *s = getenv(name);

    if (s == NULL || *s == '\0') {
        *out = def;
        return 0;
    }
    if (config_parse_long(s, min, max, out) < 0) {
        snprintf(err, errlen, "%s must be an integer in %ld..%ld, not \"%.64s\"", name, min, max,
                 s);
        return -1;
    }
    return 0;
}

/* A colon-separated list of absolute paths (empty elements ignored) from
 * the environment variable name into out; "" when unset. */
static int path_list(const char *name, char *out, size_t len, char *err, size_t errlen)
{
    const char *s = getenv(name);
    const char *p;

    out[0] = '\0';
    if (s == NULL)
        return 0;
    if (strlen(s) >= len) {
        snprintf(err, errlen, "%s must be under %zu bytes", name, len);
        return -1;
    }
    for (p = s; *p != '\0'; p++) {
        if ((p == s || p[-1] == ':') && *p != ':' && *p != '/') {
            snprintf(err, errlen, "%s must list absolute paths separated by ':', not \"%.64s\"",
                     name, s);
            return -1;
        }
    }
    snprintf(out, len, "%s", s);
    return 0;
}

/*
 * PORT, or WORKER_SERVICE_PORT, the seed service's name for it: either may
 * be set, both when they agree. Two values that differ are refused rather
 * than one silently winning: a deployment that sets both means one of them
 * and would be served on the other.
 */
static int load_port(struct wf_config *cfg, char *err, size_t errlen)
{
    const char *p = getenv("PORT");
    const char *alias = getenv("WORKER_SERVICE_PORT");
    long v, w;

    if (config_env_long("PORT", 3011, 0, 65535, &v, err, errlen) < 0 ||
        config_env_long("WORKER_SERVICE_PORT", v, 0, 65535, &w, err, errlen) < 0)
        return -1;
    if (p != NULL && *p != '\0' && alias != NULL && *alias != '\0' && v != w) {
        snprintf(err, errlen,
                 "PORT (%ld) and WORKER_SERVICE_PORT (%ld) differ; set one of them, or both "
                 "to the same port",
                 v, w);
        return -1;
    }
    cfg->port = (int)w;
    return 0;
}

int config_load(struct wf_config *cfg, char *err, size_t errlen)
{
    const char *s;
    long v;
    struct in_addr addr;

    memset(cfg, 0, sizeof(*cfg));

    s = getenv("DATABASE_URL");
    if (s == NULL || *s == '\0') {
        snprintf(err, errlen, "DATABASE_URL is not set");
        return -1;
    }
    cfg->database_url = s;

    if (load_port(cfg, err, errlen) < 0)
        return -1;

    s = getenv("WF_LISTEN_ADDR");
    if (s == NULL || *s == '\0')
        s = "0.0.0.0";
    if (strlen(s) >= sizeof(cfg->listen_addr) || inet_pton(AF_INET, s, &addr) != 1) {
        snprintf(err, errlen, "WF_LISTEN_ADDR must be an IPv4 address, not \"%.64s\"", s);
        return -1;
    }
    snprintf(cfg->listen_addr, sizeof(cfg->listen_addr), "%s", s);

    if (config_env_long("WF_HEARTBEAT_MS", 30000, 10, 3600000, &v, err, errlen) < 0)
        return -1;
    cfg->heartbeat_ms = (int)v;
    if (config_env_long("WF_DRAIN_TIMEOUT_MS", 10000, 0, 600000, &v, err, errlen) < 0)
        return -1;
    cfg->drain_timeout_ms = (int)v;
    if (config_env_long("WF_START_TIMEOUT_MS", 30000, 100, 600000, &v, err, errlen) < 0)
        return -1;
    cfg->start_timeout_ms = (int)v;
    if (config_env_long("WF_HTTP_THREADS", 4, 1, 64, &v, err, errlen) < 0)
        return -1;
    cfg->http_threads = (int)v;
    if (config_env_long("WF_DB_POOL_SIZE", 4, 1, 64, &v, err, errlen) < 0)
        return -1;
    cfg->db_pool_size = (int)v;
    if (config_env_long("WF_MAX_BODY_BYTES", 1048576, 1024, 67108864, &v, err, errlen) < 0)
        return -1;
    cfg->max_body_bytes = v;
    if (config_env_long("WF_AUTOSTART", 0, 0, 1, &v, err, errlen) < 0)
        return -1;
    cfg->autostart = (int)v;

    s = getenv("WF_HOST_ID");
    if (s != NULL && *s != '\0') {
        if (strlen(s) >= 64 || strchr(s, ':') != NULL) {
            snprintf(err, errlen, "WF_HOST_ID must be under 64 bytes without ':'");
            return -1;
        }
        snprintf(cfg->host_id, sizeof(cfg->host_id), "%s", s);
    } else if (gethostname(cfg->host_id, 64) < 0) {
        snprintf(cfg->host_id, sizeof(cfg->host_id), "localhost");
    }
    cfg->host_id[63] = '\0';

    /* Set but empty is a mistake (a template left blank, a missing secret),
     * never a way to turn authentication off. */
    s = getenv("WF_API_TOKEN");
    if (s != NULL && *s == '\0') {
        snprintf(err, errlen,
                 "WF_API_TOKEN is set but empty; unset it to run without authentication");
        return -1;
    }
    cfg->api_token = s;

    s = getenv("WF_WORKER_PROGRAM");
    if (s != NULL && *s != '\0') {
        if (s[0] != '/' || strlen(s) >= sizeof(cfg->worker_program) || access(s, X_OK) < 0) {
            snprintf(err, errlen, "WF_WORKER_PROGRAM must be an absolute path to an executable");
            return -1;
        }
        snprintf(cfg->worker_program, sizeof(cfg->worker_program), "%s", s);
    }

    if (config_env_long("WF_MAX_ARTIFACT_BYTES", 64L << 20, 4096, 1L << 30, &v, err, errlen) < 0)
        return -1;
    cfg->max_artifact_bytes = v;
    /* Bodies buffered at once, all requests together: unset, at least the
     * largest single body, so that every allowed body can be accepted. */
    v = 256L << 20;
    if (cfg->max_artifact_bytes > v)
        v = cfg->max_artifact_bytes;
    if (cfg->max_body_bytes > v)
        v = cfg->max_body_bytes;
    if (config_env_long("WF_MAX_INFLIGHT_BODY_BYTES", v, 1L << 20, 1L << 40, &v, err, errlen) < 0)
        return -1;
    if (v < cfg->max_artifact_bytes || v < cfg->max_body_bytes) {
        snprintf(err, errlen,
                 "WF_MAX_INFLIGHT_BODY_BYTES (%ld) must be at least WF_MAX_BODY_BYTES (%ld) and "
                 "WF_MAX_ARTIFACT_BYTES (%ld)",
                 v, cfg->max_body_bytes, cfg->max_artifact_bytes);
        return -1;
    }
    cfg->max_inflight_body_bytes = v;
    if (config_env_long("WF_MAX_CONNECTIONS_PER_IP", 64, 0, 1000000, &v, err, errlen) < 0)
        return -1;
    cfg->max_connections_per_ip = (int)v;
    if (config_env_long("WF_MAX_CONNECTIONS", 0, 0, 1000000, &v, err, errlen) < 0)
        return -1;
    cfg->max_connections = (int)v;
    if (config_env_long("WF_REQUEST_TIMEOUT_MS", 60000, 100, 3600000, &v, err, errlen) < 0)
        return -1;
    cfg->request_timeout_ms = (int)v;
    if (config_env_long("WF_MAX_MESSAGE_BYTES", 16L << 20, 1L << 20, 1L << 30, &v, err, errlen) < 0)
        return -1;
    cfg->max_message_bytes = v;
    if (config_env_long("WF_WORKER_STALL_MS", 10000, 100, 600000, &v, err, errlen) < 0)
        return -1;
    cfg->worker_stall_ms = (int)v;
    if (config_env_long("WF_WORKER_MSG_RATE", 20000, 10, 10000000, &v, err, errlen) < 0)
        return -1;
    cfg->worker_msg_rate = (int)v;
    if (config_env_long("MAX_CONCURRENT_WORKFLOW_EXECUTIONS", WF_DEFAULT_MAX_RUNS, 1, 1000000, &v,
                        err, errlen) < 0)
        return -1;
    cfg->max_runs = (int)v;
    if (config_env_long("MAX_CONCURRENT_ACTIVITY_EXECUTIONS", WF_DEFAULT_MAX_ACTIVITIES, 1, 10000,
                        &v, err, errlen) < 0)
        return -1;
    cfg->max_activities = (int)v;
    if (config_env_long("WF_LEASE_MS", 15000, 1000, 3600000, &v, err, errlen) < 0)
        return -1;
    cfg->lease_ms = (int)v;
    if (config_env_long("WF_SCHEDULE_GRACE_MS", 60000, 1000, 86400000, &v, err, errlen) < 0)
        return -1;
    cfg->schedule_grace_ms = (int)v;
    if (config_env_long("WF_DB_STATEMENT_TIMEOUT_MS", 10000, 100, 3600000, &v, err, errlen) < 0)
        return -1;
    cfg->db_statement_timeout_ms = (int)v;
    if (config_env_long("WF_DB_CONNECT_TIMEOUT_MS", 5000, 1000, 600000, &v, err, errlen) < 0)
        return -1;
    cfg->db_connect_timeout_ms = (int)v;

    s = getenv("WF_RUNTIME_DIR");
    if (s != NULL && *s != '\0') {
        if (s[0] != '/' || strlen(s) >= sizeof(cfg->runtime_dir) - 128) {
            snprintf(err, errlen, "WF_RUNTIME_DIR must be an absolute path under %zu bytes",
                     sizeof(cfg->runtime_dir) - 128);
            return -1;
        }
        snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "%s", s);
    } else {
        snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "/tmp/wf-server-%u",
                 (unsigned)geteuid());
    }

    s = getenv("WF_WORKER_USER");
    if (s == NULL || *s == '\0')
        s = "wf-worker";
    if (strlen(s) >= sizeof(cfg->worker_user) || strchr(s, ':') != NULL) {
        snprintf(err, errlen, "WF_WORKER_USER must be a user name, not \"%.64s\"", s);
        return -1;
    }
    snprintf(cfg->worker_user, sizeof(cfg->worker_user), "%s", s);

    if (config_env_long("WF_WORKER_MAX_AS_MB", 0, 0, 4194304, &v, err, errlen) < 0)
        return -1;
    if (v > 0 && v < 64) {
        snprintf(err, errlen, "WF_WORKER_MAX_AS_MB must be 0 (no limit) or at least 64");
        return -1;
    }
    cfg->worker_max_as_mb = v;
    if (config_env_long("WF_WORKER_MAX_FILES", 1024, 16, 1048576, &v, err, errlen) < 0)
        return -1;
    cfg->worker_max_files = v;
    if (config_env_long("WF_WORKER_MAX_PROCS", 4096, 0, 4194304, &v, err, errlen) < 0)
        return -1;
    cfg->worker_max_procs = v;
    if (path_list("WF_SANDBOX_RW_PATHS", cfg->sandbox_rw_paths, sizeof(cfg->sandbox_rw_paths), err,
                  errlen) < 0 ||
        path_list("WF_SANDBOX_RO_PATHS", cfg->sandbox_ro_paths, sizeof(cfg->sandbox_ro_paths), err,
                  errlen) < 0)
        return -1;
    s = getenv("WF_SANDBOX_DISABLE");
    if (s != NULL && *s != '\0' && strcmp(s, "landlock") != 0 && strcmp(s, "seccomp") != 0 &&
        strcmp(s, "landlock,seccomp") != 0 && strcmp(s, "seccomp,landlock") != 0) {
        snprintf(err, errlen,
                 "WF_SANDBOX_DISABLE must be landlock, seccomp or landlock,seccomp, not \"%.64s\"",
                 s);
        return -1;
    }
    snprintf(cfg->sandbox_disable, sizeof(cfg->sandbox_disable), "%s", s != NULL ? s : "");

    s = getenv("LOG_LEVEL");
    cfg->log_level = LOG_LVL_INFO;
    if (s != NULL && *s != '\0' && log_parse_level(s, &cfg->log_level) < 0) {
        snprintf(err, errlen, "LOG_LEVEL must be error, warning, info or debug, not \"%.64s\"", s);
        return -1;
    }

    s = getenv("LOG_FORMAT");
    if (s == NULL || *s == '\0')
        cfg->log_json = !isatty(STDERR_FILENO);
    else if (strcmp(s, "json") == 0)
        cfg->log_json = 1;
    else if (strcmp(s, "text") == 0)
        cfg->log_json = 0;
    else {
        snprintf(err, errlen, "LOG_FORMAT must be json or text, not \"%.64s\"", s);
        return -1;
    }
    return 0;
}

/* Copies the value of name, overwrites it in place and unsets it. */
static int take_secret(const char *name, const char **slot)
{
    char *v = getenv(name);
    char *copy;

    if (v == NULL)
        return 0;
    copy = strdup(v);
    if (copy == NULL)
        return -1;
    /* getenv points into the block the kernel shows in /proc/<pid>/environ
     * (nothing called setenv before us), so the secret is gone from there. */
    explicit_bzero(v, strlen(v));
    if (unsetenv(name) < 0) {
        free(copy);
        return -1;
    }
    if (*slot != NULL)
        *slot = copy;
    else
        free(copy); /* unset in cfg (an empty WF_API_TOKEN): wiped all the same */
    return 0;
}

int config_take_secrets(struct wf_config *cfg)
{
    if (take_secret("DATABASE_URL", &cfg->database_url) < 0 ||
        take_secret("WF_API_TOKEN", &cfg->api_token) < 0)
        return -1;
    return 0;
}
