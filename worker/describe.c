/*
 * describe.c: the worker program's describe mode, the deploy-time check of
 * an uploaded plugin (`wf-worker describe <label> <manager pid>`).
 *
 * The manager execs it with the upload's bytes as a sealed memfd on fd 3
 * and a pipe on fd 4, and the same minimal environment as a worker (no
 * database, no credentials). It loads the plugin exactly as a worker would
 * (plugins/loader.c on /proc/self/fd/3: the ELF checks, dlopen, the magic,
 * size and ABI version) and writes one JSON object to fd 4:
 *   {"ok":true,"plugin":{"name","version"},"workflows":[…],"activities":[…]}
 *   {"ok":false,"error":"could not load plugin \"x\": …"}
 * and exits 0 or 1. A declarative definition (the upload starts with '{')
 * is checked instead (dsl/def.h, its expressions compiled):
 *   {"ok":true,"definition":true,"workflows":[label],"calls":[{"name","path"}]}
 *   {"ok":false,"definition":true,"error":"invalid workflow definition: N
 *    errors","errors":[{"path","message"}]}
 * The plugin is loaded inside the worker's sandbox
 * (sandbox.c), applied before it; a describer that cannot apply it answers
 * {"ok":false,"error":"could not sandbox the worker: …"}. A plugin that
 * crashes or hangs while loading takes only this process with it; the
 * manager reports the signal, or kills it after 5 s. No core dump is
 * written (the sandbox sets RLIMIT_CORE 0).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "config.h"
#include "dslmod.h"
#include "exitcodes.h"
#include "jsonutil.h"
#include "loader.h"
#include "log.h"
#include "privs.h"
#include "sandbox.h"
#include "worker.h"

#define PLUGIN_FD_PATH "/proc/self/fd/3"
#define OUT_FD 4

/* Writes all of text to fd; 0 or -1. */
static int write_all(int fd, const char *text, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* The description of a loaded registry: plg_describe's lists, with the
 * single plugin's name and version as "plugin". */
static cJSON *describe(const struct plg_registry *reg)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *plugins;

    cJSON_AddBoolToObject(o, "ok", 1);
    plg_describe(reg, o);
    plugins = cJSON_GetObjectItemCaseSensitive(o, "plugins");
    ju_set(o, "plugin", cJSON_Duplicate(cJSON_GetArrayItem(plugins, 0), 1));
    cJSON_DeleteItemFromObjectCaseSensitive(o, "plugins");
    return o;
}

/* A declarative definition: every error with its path, or what it calls
 * (core checks that those activities are deployed). */
static cJSON *describe_definition(const char *label, int *rc)
{
    cJSON *o = cJSON_CreateObject(), *errors = cJSON_CreateArray(), *calls = cJSON_CreateArray();
    char why[768];
    size_t len = 0;
    const struct dsl_module *m = dslmod_get(why, sizeof(why));
    char *text =
        m != NULL ? plg_read_file(PLUGIN_FD_PATH, DSL_MAX_BYTES, &len, why, sizeof(why)) : NULL;
    int n = 0;

    if (o == NULL || errors == NULL || calls == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(errors);
        cJSON_Delete(calls);
        *rc = WF_EXIT_FAILURE;
        return NULL;
    }
    cJSON_AddBoolToObject(o, "definition", 1);
    if (text == NULL) {
        cJSON_AddBoolToObject(o, "ok", 0);
        cJSON_AddStringToObject(o, "error", why);
        cJSON_Delete(errors);
        cJSON_Delete(calls);
        *rc = WF_EXIT_FAILURE;
        return o;
    }
    (void)m->check(text, len, label, 1, 0, errors, calls, &n);
    if (n > 0) {
        snprintf(why, sizeof(why), "invalid workflow definition: %d error%s", n, n == 1 ? "" : "s");
        cJSON_AddBoolToObject(o, "ok", 0);
        cJSON_AddStringToObject(o, "error", why);
        cJSON_AddItemToObject(o, "errors", errors);
        cJSON_AddItemToObject(o, "calls", calls); /* core adds the unknown ones */
        *rc = WF_EXIT_FAILURE;
    } else {
        cJSON *p = cJSON_AddObjectToObject(o, "plugin");
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(p, "name", "definition");
        cJSON_AddStringToObject(p, "version", "");
        ju_append(cJSON_AddArrayToObject(o, "workflows"), cJSON_CreateString(label));
        cJSON_AddArrayToObject(o, "activities");
        cJSON_AddItemToObject(o, "calls", calls);
        cJSON_Delete(errors);
        *rc = WF_EXIT_OK;
    }
    free(text);
    return o;
}

/* 1 when the upload on fd 3 is a definition. */
static int upload_is_definition(void)
{
    char head[64];
    ssize_t n = pread(3, head, sizeof(head), 0);

    return n > 0 && dslmod_is_definition(head, (size_t)n);
}

int describe_main(int argc, char **argv)
{
    enum log_level level = LOG_LVL_INFO;
    struct sandbox_config sbc;
    struct plg_registry *reg = NULL;
    struct plg_source src;
    char err[1024];
    char why[768];
    const char *s;
    long parent = 0;
    cJSON *out;
    char *text;
    int rc;

    s = getenv("LOG_LEVEL");
    if (s != NULL)
        (void)log_parse_level(s, &level);
    s = getenv("LOG_FORMAT");
    log_init("describer", level, s == NULL || strcmp(s, "text") != 0);
    if (argc != 4 || config_parse_long(argv[3], 1, INT32_MAX, &parent) < 0) {
        log_error("usage: wf-worker describe <label> <manager pid>");
        return WF_EXIT_USAGE;
    }
    /* The module's file may lie where only the server's user can read
     * (a build tree): opened before the privileges and the sandbox go. */
    dslmod_open_early();
    if (privs_drop(err, sizeof(err)) < 0) {
        log_error("%s", err);
        return WF_EXIT_SYSCALL;
    }
    /* Die with the manager; if it is already gone, stop at once. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t)parent)
        return WF_EXIT_OK;
    prctl(PR_SET_NAME, "wf-describer");
    src.label = argv[2];
    src.path = PLUGIN_FD_PATH;
    /* The plugin's code runs from its dlopen on: sandbox first. The memfd
     * on fd 3 stays reachable through /proc/self/fd (see sandbox.c). */
    if (sandbox_config_from_env(&sbc, why, sizeof(why)) < 0 ||
        sandbox_apply(&sbc, NULL, why, sizeof(why)) < 0) {
        snprintf(err, sizeof(err), "could not sandbox the worker: %s", why);
        log_error("%s", err);
    } else if (upload_is_definition()) {
        out = describe_definition(src.label, &rc);
        goto write;
    } else {
        reg = plg_load(&src, 1, err, sizeof(err));
    }
    if (reg == NULL) {
        out = cJSON_CreateObject();
        cJSON_AddBoolToObject(out, "ok", 0);
        cJSON_AddStringToObject(out, "error", err);
        rc = WF_EXIT_FAILURE;
    } else {
        out = describe(reg);
        rc = WF_EXIT_OK;
    }
write:
    text = out != NULL ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    if (text == NULL || write_all(OUT_FD, text, strlen(text)) < 0) {
        log_error("could not write the description: %s",
                  text == NULL ? "out of memory" : strerror(errno));
        rc = WF_EXIT_FAILURE;
    }
    free(text);
    close(OUT_FD);
    plg_unload(reg);
    return rc;
}
