/*
 * test_config.c: invalid configuration is refused at once with exit code
 * 100 and a message naming the variable (docs/operations.md), PORT and its
 * alias WORKER_SERVICE_PORT set to different ports included.
 *
 * For every case but "DATABASE_URL unset" the server gets a valid
 * DATABASE_URL: a fresh test database when WF_TEST_DATABASE_URL is set,
 * otherwise a URL that points nowhere (configuration is checked before any
 * connection is made, so no database is needed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

struct bad_config {
    const char *setting; /* "NAME=value", or "NAME" to unset it */
    const char *name;    /* what the message must mention */
    const char *also;    /* a second setting, or NULL */
};

static const struct bad_config cases[] = {
    {"PORT=abc", "PORT"},
    {"PORT=70000", "PORT"},
    {"PORT=-1", "PORT"},
    {"PORT=3011x", "PORT"},
    {"WF_HEARTBEAT_MS=0", "WF_HEARTBEAT_MS"},
    {"WF_HEARTBEAT_MS=9", "WF_HEARTBEAT_MS"},
    {"WF_HEARTBEAT_MS=3600001", "WF_HEARTBEAT_MS"},
    {"WF_HEARTBEAT_MS=99999999999999999999999", "WF_HEARTBEAT_MS"},
    {"WF_DRAIN_TIMEOUT_MS=-5", "WF_DRAIN_TIMEOUT_MS"},
    {"WF_DRAIN_TIMEOUT_MS=600001", "WF_DRAIN_TIMEOUT_MS"},
    {"WF_START_TIMEOUT_MS=50", "WF_START_TIMEOUT_MS"},
    {"WF_HTTP_THREADS=0", "WF_HTTP_THREADS"},
    {"WF_DB_POOL_SIZE=65", "WF_DB_POOL_SIZE"},
    {"WF_MAX_BODY_BYTES=10", "WF_MAX_BODY_BYTES"},
    {"WF_LISTEN_ADDR=not-an-address", "WF_LISTEN_ADDR"},
    {"LOG_LEVEL=loud", "LOG_LEVEL"},
    {"LOG_FORMAT=xml", "LOG_FORMAT"},
    {"DATABASE_URL", "DATABASE_URL"},
    {"WORKER_SERVICE_PORT=port", "WORKER_SERVICE_PORT"},
    {"PORT=4022", "PORT (4022) and WORKER_SERVICE_PORT (4023) differ", "WORKER_SERVICE_PORT=4023"},
};

int main(void)
{
    struct th_db db;
    struct th_db nowhere;
    const struct th_db *use;
    size_t i;

    memset(&db, 0, sizeof(db));
    memset(&nowhere, 0, sizeof(nowhere));
    if (th_init("test_config", 0) != 0)
        return TH_SKIP;
    if (getenv("WF_TEST_DATABASE_URL") != NULL && getenv("WF_TEST_DATABASE_URL")[0] != '\0') {
        if (!CHECK(th_db_create(&db) == 0))
            goto out;
        use = &db;
    } else {
        snprintf(nowhere.url, sizeof(nowhere.url), "postgresql://wf_nobody@127.0.0.1:1/wf_nowhere");
        use = &nowhere;
    }

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[3];
        struct th_server s;
        int ok = 1;
        int code;

        env[0] = cases[i].setting;
        env[1] = cases[i].also;
        env[2] = NULL;
        if (!CHECK(th_server_spawn(&s, use, env) == 0))
            continue;
        ok &= CHECK(th_server_wait(&s, 5000) == 0);
        code = th_exit_code(&s);
        ok &= CHECK_EQ_INT(code, 100);
        ok &= CHECK(th_server_log_contains(&s, cases[i].name));
        if (!ok) {
            fprintf(stderr, "  case %s: exit %d\n", cases[i].setting, code);
            th_server_log_tail(&s, 10);
        }
        s.log_path[0] = '\0'; /* shown above when it mattered */
        th_server_cleanup(&s);
    }
out:
    return th_teardown(&db, NULL, NULL);
}
