/*
 * test_config.c: configuration parsing: defaults, range checks, refusal of
 * malformed values with a message naming the variable.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testhelp.h"

static const char *const vars[] = {"DATABASE_URL",        "PORT",           "WF_HEARTBEAT_MS",
                                   "WF_DRAIN_TIMEOUT_MS", "LOG_LEVEL",      "LOG_FORMAT",
                                   "WF_HOST_ID",          "WF_LISTEN_ADDR", "WF_WORKER_PROGRAM",
                                   "WF_MAX_BODY_BYTES",   "WF_API_TOKEN",   "WF_AUTOSTART",
                                   "WORKER_SERVICE_PORT"};

static void reset_env(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db", 1);
}

/* Loads with one variable set; returns config_load's result. */
static int load_with(const char *name, const char *value, struct wf_config *cfg, char *err)
{
    reset_env();
    if (name != NULL)
        setenv(name, value, 1);
    return config_load(cfg, err, 256);
}

int main(void)
{
    struct wf_config cfg;
    char err[256];
    long v = 7;

    /* config_parse_long */
    CHECK_INT(config_parse_long("42", 0, 100, &v), 0);
    CHECK_INT(v, 42);
    CHECK_INT(config_parse_long("-1", 0, 100, &v), -1);
    CHECK_INT(config_parse_long("101", 0, 100, &v), -1);
    CHECK_INT(config_parse_long("12abc", 0, 100, &v), -1);
    CHECK_INT(config_parse_long("", 0, 100, &v), -1);
    CHECK_INT(config_parse_long(" 5", 0, 100, &v) == 0 && v == 5, 1); /* strtol skips space */
    CHECK_INT(config_parse_long("99999999999999999999", 0, 100, &v), -1);
    CHECK_INT(v, 5);

    /* defaults */
    CHECK_INT(load_with(NULL, NULL, &cfg, err), 0);
    CHECK_INT(cfg.port, 3011);
    CHECK_INT(cfg.heartbeat_ms, 30000);
    CHECK_INT(cfg.drain_timeout_ms, 10000);
    CHECK_INT(cfg.max_body_bytes, 1048576);
    CHECK_INT(cfg.log_level, LOG_LVL_INFO);
    CHECK_STR(cfg.listen_addr, "0.0.0.0");
    CHECK(cfg.api_token == NULL);
    CHECK(cfg.host_id[0] != '\0');

    /* valid values */
    CHECK_INT(load_with("PORT", "0", &cfg, err), 0);
    CHECK_INT(cfg.port, 0);
    CHECK_INT(load_with("WF_HEARTBEAT_MS", "200", &cfg, err), 0);
    CHECK_INT(cfg.heartbeat_ms, 200);
    CHECK_INT(load_with("LOG_LEVEL", "debug", &cfg, err), 0);
    CHECK_INT(cfg.log_level, LOG_LVL_DEBUG);
    CHECK_INT(load_with("LOG_FORMAT", "json", &cfg, err), 0);
    CHECK_INT(cfg.log_json, 1);
    CHECK_INT(load_with("WF_HOST_ID", "web-1", &cfg, err), 0);
    CHECK_STR(cfg.host_id, "web-1");

    /* refused values, each naming its variable */
    CHECK_INT(load_with("PORT", "abc", &cfg, err), -1);
    CHECK(strstr(err, "PORT") != NULL);
    CHECK_INT(load_with("PORT", "70000", &cfg, err), -1);
    CHECK_INT(load_with("WF_HEARTBEAT_MS", "0", &cfg, err), -1);
    CHECK(strstr(err, "WF_HEARTBEAT_MS") != NULL);
    CHECK_INT(load_with("WF_DRAIN_TIMEOUT_MS", "-5", &cfg, err), -1);
    CHECK_INT(load_with("LOG_LEVEL", "loud", &cfg, err), -1);
    CHECK(strstr(err, "LOG_LEVEL") != NULL);
    CHECK_INT(load_with("LOG_FORMAT", "xml", &cfg, err), -1);
    CHECK_INT(load_with("WF_LISTEN_ADDR", "not-an-ip", &cfg, err), -1);
    CHECK_INT(load_with("WF_HOST_ID", "a:b", &cfg, err), -1);
    CHECK_INT(load_with("WF_WORKER_PROGRAM", "relative/path", &cfg, err), -1);
    CHECK_INT(load_with("WF_MAX_BODY_BYTES", "10", &cfg, err), -1);
    CHECK_INT(load_with("WF_AUTOSTART", "yes", &cfg, err), -1);

    /* WORKER_SERVICE_PORT, the seed's name for PORT: alone, or agreeing */
    CHECK_INT(load_with("WORKER_SERVICE_PORT", "4022", &cfg, err), 0);
    CHECK_INT(cfg.port, 4022);
    CHECK_INT(load_with("WORKER_SERVICE_PORT", "", &cfg, err), 0);
    CHECK_INT(cfg.port, 3011);
    reset_env();
    setenv("PORT", "4022", 1);
    setenv("WORKER_SERVICE_PORT", "04022", 1);
    CHECK_INT(config_load(&cfg, err, sizeof(err)), 0);
    CHECK_INT(cfg.port, 4022);
    /* ... and refused when the two differ, or when it is malformed */
    setenv("WORKER_SERVICE_PORT", "4023", 1);
    CHECK_INT(config_load(&cfg, err, sizeof(err)), -1);
    CHECK(strstr(err, "PORT (4022) and WORKER_SERVICE_PORT (4023) differ") != NULL);
    CHECK_INT(load_with("WORKER_SERVICE_PORT", "70000", &cfg, err), -1);
    CHECK(strstr(err, "WORKER_SERVICE_PORT") != NULL);

    reset_env();
    unsetenv("DATABASE_URL");
    CHECK_INT(config_load(&cfg, err, sizeof(err)), -1);
    CHECK(strstr(err, "DATABASE_URL") != NULL);

    TEST_REPORT("test_config");
}
