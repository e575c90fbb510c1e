/*
 * test_deploy_checks.c: every upload is described by a short-lived
 * sandboxed wf-worker before it is stored (DESIGN §2, issue 9).
 *
 * A plugin uploaded under a name it does not declare is refused (422) with
 * that name and the names it does declare, and nothing is stored; one under
 * a declared name is stored and the reply lists what it declares. A plugin
 * that cannot be loaded (another ABI version, an unresolved symbol), that
 * crashes while being loaded, or that hangs (killed after 5 s) is refused
 * with the reason. No describer is left running, and the server keeps
 * answering /health meanwhile. The run engine's test plugins (both versions
 * of engine-recorder) are accepted and declare exactly the names its tests
 * use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* 1 if the reply's error contains every needle (NULL-terminated). */
static int error_says(const cJSON *j, const char *const *needles)
{
    const char *e = th_json_str(j, "error");

    if (e == NULL)
        return 0;
    for (; *needles != NULL; needles++) {
        if (strstr(e, *needles) == NULL) {
            fprintf(stderr, "error \"%s\" lacks \"%s\"\n", e, *needles);
            return 0;
        }
    }
    return 1;
}

/* 1 if the array member key of decl holds exactly names (NULL-terminated),
 * in that order (plg_describe sorts them by name). */
static int declares_exactly(const cJSON *decl, const char *key, const char *const *names)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(decl, key);
    const cJSON *it;
    int i = 0;

    cJSON_ArrayForEach(it, arr)
    {
        if (names[i] == NULL || !cJSON_IsString(it) || strcmp(it->valuestring, names[i]) != 0) {
            fprintf(stderr, "%s[%d] is %s, expected %s\n", key, i,
                    cJSON_IsString(it) ? it->valuestring : "not a string",
                    names[i] != NULL ? names[i] : "the end");
            return 0;
        }
        i++;
    }
    if (names[i] != NULL) {
        fprintf(stderr, "%s ends before %s\n", key, names[i]);
        return 0;
    }
    return 1;
}

/* Uploads the engine's test plugin `plugin` under workflow `as`; checks the
 * status, the plugin's name and version, and every declared name. */
static void check_engine_plugin(const struct th_server *srv, const char *as, const char *plugin,
                                long want_status, const char *version)
{
    static const char *const workflows[] = {
        "big-io",     "clock",    "failing",          "fan",
        "five-steps", "mixed",    "nondeterministic", "one-activity",
        "one-step",   "retrying", "sleepy",           "steps",
        "waiter",     NULL};
    static const char *const activities[] = {"big",  "fail_always", "flaky", "invalid",
                                             "noop", "record",      "slow",  NULL};
    const cJSON *decl;
    char path[128];
    cJSON *j = NULL;

    snprintf(path, sizeof(path), "/projects/p2/workflows/%s", as);
    CHECK_EQ_INT(th_put_plugin(srv, path, plugin, &j), want_status);
    decl = cJSON_GetObjectItem(j, "declares");
    CHECK_STR(th_json_str(cJSON_GetObjectItem(decl, "plugin"), "name"), "engine-recorder");
    CHECK_STR(th_json_str(cJSON_GetObjectItem(decl, "plugin"), "version"), version);
    CHECK(declares_exactly(decl, "workflows", workflows));
    CHECK(declares_exactly(decl, "activities", activities));
    cJSON_Delete(j);
}

int main(void)
{
    static const char *const made_up[] = {"activity \"madeUp\" is not declared by the plugin",
                                          "echo", "failAlways", "hello-flow", NULL};
    static const char *const bad_wf[] = {"workflow \"other-flow\" is not declared", NULL};
    static const char *const abi[] = {"ABI version mismatch (plugin 1, server 2)", NULL};
    static const char *const unresolved[] = {"wf_symbol_that_does_not_exist", NULL};
    static const char *const crashed[] = {"crashed while being loaded", "signal 11", NULL};
    static const char *const hung[] = {"did not finish loading within 5 s", NULL};
    const char *overrides[2] = {"ASAN_OPTIONS=handle_segv=0", NULL};
    struct th_server srv;
    struct th_db db;
    PGconn *conn = NULL;
    cJSON *j = NULL;
    const cJSON *decl;
    long long t0;
    char *v;
    int rc;

    if (th_init("test_deploy_checks", 1) != 0)
        return TH_SKIP;
    memset(&db, 0, sizeof(db));
    memset(&srv, 0, sizeof(srv));
    rc = th_up(&db, &srv, overrides, &conn);
    if (rc != 0)
        goto out;
    CHECK_EQ_INT(th_create_project(&srv, "p1", NULL), 201);

    /* Under a made-up name: refused, naming it and what the plugin declares. */
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/activities/madeUp", "good", &j), 422);
    CHECK(error_says(j, made_up));
    cJSON_Delete(j);
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/workflows/other-flow", "good", &j), 422);
    CHECK(error_says(j, bad_wf));
    cJSON_Delete(j);
    v = th_sql_value(conn, "SELECT count(*) FROM artifacts", NULL);
    CHECK_STR(v, "0");
    free(v);

    /* Under a declared name: stored, and the reply lists the declarations. */
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/activities/echo", "good", &j), 201);
    decl = cJSON_GetObjectItem(j, "declares");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(decl, "activities")) == 2);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(decl, "workflows")) == 1);
    CHECK_STR(th_json_str(cJSON_GetObjectItem(decl, "plugin"), "name"), "good");
    CHECK_STR(th_json_str(cJSON_GetObjectItem(decl, "plugin"), "version"), "1.2.3");
    cJSON_Delete(j);
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/workflows/hello-flow", "good", &j), 201);
    cJSON_Delete(j);

    /* Plugins that cannot be loaded, with the loader's reason. */
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/activities/x", "bad_abi", &j), 422);
    CHECK(error_says(j, abi));
    cJSON_Delete(j);
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/activities/x", "unresolved", &j), 422);
    CHECK(error_says(j, unresolved));
    cJSON_Delete(j);

    /* One that crashes while being loaded, and one that hangs. */
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/activities/x", "crash_entry", &j), 422);
    CHECK(error_says(j, crashed));
    cJSON_Delete(j);
    t0 = th_now_ms();
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p1/activities/x", "hang_entry", &j), 422);
    CHECK(error_says(j, hung));
    cJSON_Delete(j);
    CHECK(th_now_ms() - t0 >= 4500 && th_now_ms() - t0 < 15000);
    j = NULL;

    /* Only the good plugin was stored; no describer is left. */
    v = th_sql_value(conn, "SELECT count(*) FROM artifacts", NULL);
    CHECK_STR(v, "1");
    free(v);
    CHECK_EQ_INT(th_proc_children(srv.pid, "wf-describer", NULL, 0), 0);

    /* The run engine's test plugins: accepted, declaring what its tests use
     * (a workflow and an activity name each); version 2 replaces version 1
     * under the same name. */
    CHECK_EQ_INT(th_create_project(&srv, "p2", NULL), 201);
    check_engine_plugin(&srv, "steps", "engine_recorder", 201, "1.0.0");
    check_engine_plugin(&srv, "one-step", "engine_recorder", 201, "1.0.0");
    check_engine_plugin(&srv, "steps", "engine_recorder_v2", 200, "2.0.0");
    CHECK_EQ_INT(th_put_plugin(&srv, "/projects/p2/activities/record", "engine_recorder_v2", NULL),
                 201);
    v = th_sql_value(conn, "SELECT count(*) FROM artifacts", NULL);
    CHECK_STR(v, "3");
    free(v);
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/health", NULL, NULL), 200);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    return th_teardown(&db, &srv, conn);
}
