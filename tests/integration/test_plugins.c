/*
 * test_plugins.c: code deployment and hot reload end to end, against the
 * real server and database, with plugins built by the test suite
 * (tests/plugins): upload checks, v1 → start → loaded lists → v2 → restart
 * (new pid, old process gone, row changed) → broken v3 → restart fails and
 * v2 keeps serving; a plugin whose entry point crashes takes down only its
 * own worker; the code reaches workers as sealed memfds (mapped from
 * /memfd:wf-plugin-…), fetched once per start (wf_artifact_fetches_total),
 * and no plugin file exists on disk; stale rows of an earlier instance are
 * reconciled at start, and rows of another host that stopped heartbeating
 * are marked crashed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char runtime_dir[600];

/* PUTs plugin `name` as workflow or activity `as`; returns the status. */
static long deploy(const struct th_server *s, const char *project, const char *kind, const char *as,
                   const char *name, cJSON **json)
{
    char path[256];

    snprintf(path, sizeof(path), "/projects/%s/%s/%s", project, kind, as);
    return th_put_plugin(s, path, name, json);
}

/* 1 if the status reply's loaded.<key> array contains name. */
static int loaded_has(const cJSON *status, const char *key, const char *name)
{
    const cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(status, "loaded"), key);
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
            return 1;
    }
    return 0;
}

/* Plugin files (*.so) anywhere under the runtime directory: there must be
 * none, the code travels in sealed memfds. */
static int count_files(void)
{
    char cmd[900];
    FILE *f;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "find %s -name '*.so' 2>/dev/null | wc -l", runtime_dir);
    f = popen(cmd, "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

/* How many of pid's mappings come from a plugin memfd of core's. */
static int memfd_maps(long long pid)
{
    char path[64];
    char *maps;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%lld/maps", pid);
    maps = th_read_file(path, NULL);
    for (const char *p = maps; p != NULL && (p = strstr(p, "/memfd:wf-plugin-")) != NULL; p++)
        n++;
    free(maps);
    return n;
}

static int gone_reaped(void *arg)
{
    char *v =
        th_sql_value(arg, "SELECT status FROM workflow_workers WHERE worker_id = $1", "gone:x");
    int ok = v != NULL && strcmp(v, "crashed") == 0;

    free(v);
    return ok;
}

static long long fetch_goal;

static int fetched_goal(void *arg)
{
    return th_metric(arg, "wf_artifact_fetches_total") >= fetch_goal;
}

/* The size of test plugin <WF_TEST_PLUGIN_DIR>/<name>.so, or -1. */
static long long plugin_size(const char *name)
{
    const char *dir = getenv("WF_TEST_PLUGIN_DIR");
    char path[600];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s.so", dir != NULL ? dir : ".", name);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int main(void)
{
    struct th_db db = {0};
    struct th_server srv = {0};
    PGconn *pg = NULL;
    cJSON *j = NULL;
    long long pid1, pid2, pid3, fetches, fetched;
    char env_rt[700];
    char *v;
    const char *overrides[3];

    if (th_init("test_plugins", 1) < 0)
        return TH_SKIP;
    snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/wf-test-runtime-%d", (int)getpid());
    snprintf(env_rt, sizeof(env_rt), "WF_RUNTIME_DIR=%s", runtime_dir);
    overrides[0] = env_rt;
    /* In sanitizer builds, let the crashing plugin die by SIGSEGV as it
     * would in production, rather than be reported by AddressSanitizer. */
    overrides[1] = "ASAN_OPTIONS=handle_segv=0";
    overrides[2] = NULL;
    if (th_up(&db, &srv, overrides, &pg) != 0)
        goto out;

    /* A row left 'running' by an earlier instance of this host that died
     * without cleaning up (inserted while no server runs). */
    CHECK(th_server_stop(&srv, 15000) == 0);
    th_server_cleanup(&srv);
    memset(&srv, 0, sizeof(srv));
    CHECK(th_sql_exec(pg, "INSERT INTO workflow_workers (worker_id, project_id, status, host, pid)"
                          " VALUES ('testhost:ghost', 'ghost', 'running', 'testhost', 1)") == 0);
    if (!CHECK(th_server_start(&srv, &db, overrides) == 0))
        goto out;
    v = th_sql_value(pg, "SELECT status FROM workflow_workers WHERE worker_id = $1",
                     "testhost:ghost");
    CHECK_STR(v, "crashed");
    free(v);

    /* Rows of another host: one silent for more than 3 of its heartbeat
     * intervals (its host vanished) becomes crashed; a fresh one stays. */
    CHECK(th_sql_exec(pg, "INSERT INTO workflow_workers (worker_id, project_id, status, host, pid,"
                          " last_heartbeat, heartbeat_ms) VALUES"
                          " ('gone:x', 'x', 'running', 'gone', 7, now() - interval '10 s', 200),"
                          " ('alive:y', 'y', 'running', 'alive', 8, now(), 600000)") == 0);
    CHECK(th_wait_until(gone_reaped, pg, 15000, 100) == 0);
    v = th_sql_value(pg, "SELECT error FROM workflow_workers WHERE worker_id = $1", "gone:x");
    CHECK(v != NULL && strstr(v, "no heartbeat from host gone") != NULL);
    free(v);
    v = th_sql_value(pg, "SELECT status FROM workflow_workers WHERE worker_id = $1", "alive:y");
    CHECK_STR(v, "running");
    free(v);

    CHECK_EQ_INT(th_create_project(&srv, "p1", NULL), 201);
    CHECK_EQ_INT(th_create_project(&srv, "p2", NULL), 201);

    /* Upload checks. */
    CHECK_EQ_INT(th_http_json(&srv, "PUT", "/projects/p1/activities/x", "not an elf", NULL), 422);
    CHECK_EQ_INT(th_http_json(&srv, "PUT", "/projects/p1/activities/x", NULL, NULL), 400);
    CHECK_EQ_INT(deploy(&srv, "nope", "activities", "echo", "good", NULL), 404);
    CHECK_EQ_INT(deploy(&srv, "p1", "workflows", "Not_Kebab", "good", NULL), 400);
    CHECK_EQ_INT(deploy(&srv, "p1", "activities", "9bad", "good", NULL), 400);

    /* v1: one plugin under each of its names; the bytes are stored once. */
    CHECK_EQ_INT(deploy(&srv, "p1", "workflows", "hello-flow", "good", &j), 201);
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(j, "workflow"), "version"), 1);
    cJSON_Delete(j);
    CHECK_EQ_INT(deploy(&srv, "p1", "activities", "echo", "good", NULL), 201);
    CHECK_EQ_INT(deploy(&srv, "p1", "activities", "failAlways", "good", NULL), 201);
    CHECK_EQ_INT(deploy(&srv, "p1", "activities", "echo", "good", &j), 200); /* same bytes */
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(j, "activity"), "version"), 1);
    cJSON_Delete(j);
    v = th_sql_value(pg, "SELECT count(*) FROM artifacts", NULL);
    CHECK_STR(v, "1");
    free(v);
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/projects/p1/activities", NULL, &j), 200);
    CHECK_EQ_INT(th_json_num(j, "count"), 2);
    cJSON_Delete(j);

    fetches = th_metric(&srv, "wf_artifact_fetches_total");
    fetched = th_metric(&srv, "wf_artifact_fetched_bytes_total");
    CHECK(fetches >= 0 && fetched >= 0);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p1", NULL), 200);
    /* One plugin read from the database for the start, all of its bytes
     * (/metrics is published every 100 ms). */
    fetch_goal = fetches + 1;
    CHECK(th_wait_until(fetched_goal, &srv, 5000, 20) == 0);
    CHECK_EQ_INT(th_metric(&srv, "wf_artifact_fetches_total"), fetches + 1);
    CHECK_EQ_INT(th_metric(&srv, "wf_artifact_fetched_bytes_total") - fetched, plugin_size("good"));
    pid1 = th_status_pid(&srv, "p1", &j);
    CHECK(pid1 > 0);
    CHECK(loaded_has(j, "workflows", "hello-flow"));
    CHECK(loaded_has(j, "activities", "failAlways"));
    CHECK(!loaded_has(j, "activities", "shout"));
    cJSON_Delete(j);
    /* The code is mapped from a sealed memfd; no plugin file exists. */
    CHECK(memfd_maps(pid1) > 0);
    CHECK_EQ_INT(count_files(), 0);

    /* v2 under the same names, plus a new activity; restart hot-reloads. */
    CHECK_EQ_INT(deploy(&srv, "p1", "workflows", "hello-flow", "good_v2", &j), 200);
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(j, "workflow"), "version"), 2);
    cJSON_Delete(j);
    CHECK_EQ_INT(deploy(&srv, "p1", "activities", "echo", "good_v2", NULL), 200);
    CHECK_EQ_INT(deploy(&srv, "p1", "activities", "shout", "good_v2", NULL), 201);
    CHECK_EQ_INT(th_http_json(&srv, "DELETE", "/projects/p1/activities/failAlways", NULL, NULL),
                 200);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p1", &j), 200);
    CHECK_STR(th_json_str(j, "message"), "Worker restarted for project p1");
    cJSON_Delete(j);
    pid2 = th_status_pid(&srv, "p1", &j);
    CHECK(pid2 > 0 && pid2 != pid1);
    CHECK(loaded_has(j, "activities", "shout"));
    CHECK(!loaded_has(j, "activities", "failAlways"));
    cJSON_Delete(j);
    CHECK(th_wait_pid_gone((pid_t)pid1, 10000, 20) == 0);
    {
        char pidbuf[32];
        snprintf(pidbuf, sizeof(pidbuf), "%lld", pid2);
        v = th_sql_value(pg,
                         "SELECT status || ':' || pid FROM workflow_workers"
                         " WHERE worker_id = 'testhost:p1'",
                         NULL);
        CHECK(v != NULL && strncmp(v, "running:", 8) == 0 && strcmp(v + 8, pidbuf) == 0);
        free(v);
        v = th_sql_value(pg,
                         "SELECT loaded->'activities' ? 'shout' FROM workflow_workers"
                         " WHERE worker_id = 'testhost:p1'",
                         NULL);
        CHECK_STR(v, "t");
        free(v);
    }
    CHECK(memfd_maps(pid2) > 0);
    CHECK_EQ_INT(count_files(), 0);

    /* Broken v3: refused at upload; stored anyway (behind the API's back),
     * the restart fails with the loader's message and v2 serves on. */
    CHECK_EQ_INT(deploy(&srv, "p1", "activities", "broken", "bad_abi", &j), 422);
    CHECK(th_json_str(j, "error") != NULL &&
          strstr(th_json_str(j, "error"), "ABI version mismatch") != NULL);
    cJSON_Delete(j);
    CHECK(th_store_plugin(pg, "p1", "broken", "bad_abi") == 0);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p1", &j), 500);
    CHECK(th_json_str(j, "error") != NULL &&
          strstr(th_json_str(j, "error"), "ABI version mismatch") != NULL &&
          strstr(th_json_str(j, "error"), "previous worker keeps running") != NULL);
    cJSON_Delete(j);
    pid3 = th_status_pid(&srv, "p1", &j);
    CHECK_EQ_INT(pid3, pid2);
    CHECK_STR(th_json_str(j, "status"), "running");
    CHECK(th_json_str(j, "error") != NULL && strstr(th_json_str(j, "error"), "ABI") != NULL);
    cJSON_Delete(j);
    v = th_sql_value(pg, "SELECT error FROM workflow_workers WHERE worker_id = 'testhost:p1'",
                     NULL);
    CHECK(v != NULL && strstr(v, "ABI version mismatch") != NULL);
    free(v);

    /* A fresh start with broken code: 500 with the message, status failed. */
    CHECK_EQ_INT(deploy(&srv, "p2", "activities", "broken", "dup_activity", NULL), 422);
    CHECK(th_store_plugin(pg, "p2", "broken", "dup_activity") == 0);
    CHECK_EQ_INT(deploy(&srv, "p2", "activities", "echo", "good", NULL), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p2", &j), 500);
    CHECK(th_json_str(j, "error") != NULL &&
          strstr(th_json_str(j, "error"), "duplicate activity \"echo\"") != NULL);
    cJSON_Delete(j);
    th_status_pid(&srv, "p2", &j);
    CHECK_STR(th_json_str(j, "status"), "failed");
    cJSON_Delete(j);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", "p2", NULL), 200);

    /* An entry point that crashes: only that worker dies. */
    CHECK_EQ_INT(th_http_json(&srv, "DELETE", "/projects/p2/activities/broken", NULL, NULL), 200);
    CHECK_EQ_INT(deploy(&srv, "p2", "activities", "crashy", "crash_entry", NULL), 422);
    CHECK(th_store_plugin(pg, "p2", "crashy", "crash_entry") == 0);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p2", &j), 500);
    CHECK(th_json_str(j, "error") != NULL &&
          strstr(th_json_str(j, "error"), "exited before ready") != NULL);
    cJSON_Delete(j);
    CHECK(th_server_log_contains(&srv, "killed by signal 11"));
    CHECK_EQ_INT(th_status_pid(&srv, "p1", NULL), pid2);
    CHECK(th_pid_alive((pid_t)pid2));
    CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", "p2", NULL), 200);

    CHECK(th_server_stop(&srv, 15000) == 0);
    CHECK_EQ_INT(count_files(), 0);

out:
    th_down(&db, &srv, pg);
    {
        char cmd[800];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", runtime_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", runtime_dir);
    }
    return th_finish();
}
