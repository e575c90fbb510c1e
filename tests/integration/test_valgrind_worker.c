/*
 * test_valgrind_worker.c: the worker's fork/exec and dlopen path under
 * valgrind (STYLE §19), with the real plugins.
 *
 * The server runs with WF_WORKER_PROGRAM pointing at a wrapper that execs
 * `valgrind --error-exitcode=99 --leak-check=full wf-worker …`. A project
 * with the sample-activities plugin and a test plugin is started, hot
 * restarted and stopped, so two workers load, check and unload the plugins
 * and drain. Each valgrind log must report 0 errors and no definite leak,
 * and no worker may exit 99. Skipped (77) without valgrind, or in a
 * sanitizer build (valgrind cannot run those).
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char dir[] = "/tmp/wf-vg-XXXXXX";

/* Writes the wrapper script; returns 0 or -1. */
static int write_wrapper(char *path, size_t len)
{
    char worker[4096];
    FILE *f;

    snprintf(worker, sizeof(worker), "%s", getenv("WF_SERVER_BIN"));
    if (strrchr(worker, '/') == NULL)
        return -1;
    snprintf(strrchr(worker, '/') + 1, sizeof(worker) - (size_t)(strrchr(worker, '/') + 1 - worker),
             "wf-worker");
    snprintf(path, len, "%s/worker-under-valgrind", dir);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "#!/bin/sh\n"
            "exec /usr/bin/valgrind -q --vgdb=no --error-exitcode=99 --leak-check=full "
            "--errors-for-leak-kinds=definite --log-file=%s/vg.%%p.log %s \"$@\"\n",
            dir, worker);
    fclose(f);
    return chmod(path, 0755);
}

static long deploy(const struct th_server *s, const char *kind, const char *name, const char *file)
{
    char path[256];
    size_t len = 0;
    char *bytes = th_read_file(file, &len);
    struct th_reply r;
    long st;

    if (bytes == NULL)
        return -1;
    snprintf(path, sizeof(path), "/projects/p1/%s/%s", kind, name);
    st = th_http(s, "PUT", path, bytes, len, &r);
    th_reply_free(&r);
    free(bytes);
    return st;
}

int main(void)
{
    char wrapper[4200], env_prog[4300], plugin[4200], sample[4200];
    const char *overrides[3];
    struct th_server srv;
    struct th_db db;
    PGconn *conn = NULL;
    glob_t g;
    pid_t pid1, pid2;

#ifdef WF_SANITIZED
    printf("test_valgrind_worker: sanitizer build, skipped\n");
    return TH_SKIP;
#endif
    if (access("/usr/bin/valgrind", X_OK) != 0) {
        printf("test_valgrind_worker: no /usr/bin/valgrind, skipped\n");
        return TH_SKIP;
    }
    if (th_init("test_valgrind_worker", 1) != 0)
        return TH_SKIP;
    memset(&db, 0, sizeof(db));
    memset(&srv, 0, sizeof(srv));
    if (!CHECK(mkdtemp(dir) != NULL) || !CHECK(write_wrapper(wrapper, sizeof(wrapper)) == 0))
        return th_finish();
    snprintf(env_prog, sizeof(env_prog), "WF_WORKER_PROGRAM=%s", wrapper);
    overrides[0] = env_prog;
    overrides[1] = "WF_START_TIMEOUT_MS=60000";
    overrides[2] = NULL;
    if (th_up(&db, &srv, overrides, &conn) != 0)
        goto out;

    snprintf(plugin, sizeof(plugin), "%s/good.so", getenv("WF_TEST_PLUGIN_DIR"));
    snprintf(sample, sizeof(sample), "%s", getenv("WF_SAMPLE_ACTIVITIES"));
    CHECK_EQ_INT(th_create_project(&srv, "p1", NULL), 201);
    CHECK_EQ_INT(deploy(&srv, "activities", "echo", plugin), 201);
    CHECK_EQ_INT(deploy(&srv, "workflows", "hello-flow", plugin), 201);
    CHECK_EQ_INT(deploy(&srv, "activities", "httpRequest", sample), 201);
    CHECK_EQ_INT(deploy(&srv, "activities", "validateData", sample), 201);

    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p1", NULL), 200);
    pid1 = th_status_pid(&srv, "p1", NULL);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p1", NULL), 200);
    pid2 = th_status_pid(&srv, "p1", NULL);
    CHECK(pid1 > 0 && pid2 > 0 && pid1 != pid2);
    CHECK(th_wait_pid_gone(pid1, 30000, 50) == 0);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/stop", "p1", NULL), 200);
    CHECK_EQ_INT(th_server_stop(&srv, 60000), 0);
    CHECK(!th_server_log_contains(&srv, "exited with status 99"));

    /* Two workers' logs, each clean (-q: a clean run writes nothing). */
    {
        char pattern[64];
        snprintf(pattern, sizeof(pattern), "%s/vg.*.log", dir);
        if (CHECK(glob(pattern, 0, NULL, &g) == 0)) {
            CHECK(g.gl_pathc >= 2);
            for (size_t i = 0; i < g.gl_pathc; i++) {
                size_t len = 0;
                char *text = th_read_file(g.gl_pathv[i], &len);
                if (!CHECK(text != NULL && len == 0))
                    fprintf(stderr, "---- %s ----\n%s\n", g.gl_pathv[i], text ? text : "");
                free(text);
            }
            globfree(&g);
        }
    }

out : {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}
    return th_teardown(&db, &srv, conn);
}
