/*
 * test_loader.c: the plugin loader against plugins built by the test suite
 * (tests/plugins): a good one, and each way a plugin can be refused. Every
 * refusal must leave nothing loaded and say why in one sentence. Also the
 * size rule of ABI 2 (WF_HAS_FIELD).
 */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "testhelp.h"

static char path_buf[8][512];

static const char *plugin(const char *name)
{
    static int next;
    char *p = path_buf[next++ % 8];

    snprintf(p, 512, "%s/%s.so", WF_TEST_PLUGIN_DIR, name);
    return p;
}

/* Loads one plugin; returns 1 if refused with a message containing want. */
static int refused(const char *name, const char *want)
{
    struct plg_source src = {name, plugin(name)};
    char err[512] = "";
    struct plg_registry *reg = plg_load(&src, 1, err, sizeof(err));

    if (reg != NULL) {
        plg_unload(reg);
        fprintf(stderr, "plugin %s was accepted\n", name);
        return 0;
    }
    if (strstr(err, want) == NULL) {
        fprintf(stderr, "plugin %s: \"%s\" lacks \"%s\"\n", name, err, want);
        return 0;
    }
    return 1;
}

static void noop_fail(struct wf_activity_ctx *a, const char *fmt, ...)
{
    (void)a;
    (void)fmt;
}

int main(void)
{
    struct plg_source srcs[3];
    struct plg_registry *reg;
    char err[512];
    const struct wf_activity_def *echo;
    cJSON *in, *out = NULL;
    char trunc[] = "/tmp/wf-test-truncated-XXXXXX";
    int fd, st;
    pid_t pid;

    log_init("test", LOG_LVL_WARNING, 0);

    /* A good plugin loads, registers its names, and its code runs. */
    srcs[0].label = "good";
    srcs[0].path = plugin("good");
    reg = plg_load(srcs, 1, err, sizeof(err));
    CHECK(reg != NULL);
    if (reg != NULL) {
        struct wf_activity_api api = {sizeof(api), NULL, noop_fail, NULL};
        struct wf_activity_ctx actx = {sizeof(actx), &api, "echo", "", 1, 0, NULL};
        cJSON *desc = cJSON_CreateObject();
        CHECK(plg_workflow(reg, "hello-flow") != NULL);
        CHECK(plg_workflow(reg, "nope") == NULL);
        echo = plg_activity(reg, "echo");
        CHECK(echo != NULL);
        CHECK(plg_activity(reg, "failAlways") != NULL);
        CHECK_INT(echo->retry.max_attempts, 3);
        CHECK_INT(echo->timeout_ms, 1000);
        in = cJSON_Parse("{\"x\":1}");
        CHECK_INT(echo->fn(&actx, in, &out), WF_OK);
        CHECK(cJSON_Compare(in, out, 1));
        cJSON_Delete(in);
        cJSON_Delete(out);
        plg_describe(reg, desc);
        CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(desc, "activities")), 2);
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(desc, "plugins"), 0),
                                      "version")
                      ->valuestring,
                  "1.2.3");
        cJSON_Delete(desc);
        plg_unload(reg);
    }

    /* The same file twice is loaded once (no duplicate names). */
    srcs[1] = srcs[0];
    srcs[1].label = "good-again";
    reg = plg_load(srcs, 2, err, sizeof(err));
    CHECK(reg != NULL);
    plg_unload(reg);

    /* Each refusal, with its reason. */
    CHECK(refused("bad_magic", "incompatible plugin \"bad_magic\": missing magic block"));
    CHECK(refused("bad_abi", "incompatible plugin \"bad_abi\": ABI version mismatch (plugin 1, "
                             "server 2)"));
    CHECK(refused("no_entry", "missing magic block"));
    CHECK(refused("unresolved", "wf_symbol_that_does_not_exist"));
    CHECK(refused("does_not_exist", "could not load plugin \"does_not_exist\""));

    /* Duplicate activity names across plugins. */
    srcs[0].label = "good";
    srcs[0].path = plugin("good");
    srcs[1].label = "dup";
    srcs[1].path = plugin("dup_activity");
    reg = plg_load(srcs, 2, err, sizeof(err));
    CHECK(reg == NULL);
    CHECK(strstr(err, "duplicate activity \"echo\"") != NULL);

    /* A truncated file. */
    fd = mkstemp(trunc);
    CHECK(fd >= 0);
    {
        char buf[1024];
        int in_fd = open(plugin("good"), O_RDONLY);
        ssize_t n = read(in_fd, buf, sizeof(buf));
        CHECK(n == (ssize_t)sizeof(buf));
        CHECK(write(fd, buf, (size_t)n) == n);
        close(in_fd);
        close(fd);
    }
    srcs[0].label = "truncated";
    srcs[0].path = trunc;
    reg = plg_load(srcs, 1, err, sizeof(err));
    CHECK(reg == NULL);
    CHECK(strstr(err, "could not load plugin \"truncated\"") != NULL);
    unlink(trunc);

    /* A descriptor without name or version loads, and its log line names it
     * "?" rather than passing NULL to "%s" (glibc would print "(null)"). */
    {
        char logpath[] = "/tmp/wf-test-loader-log-XXXXXX";
        int logfd = mkstemp(logpath);
        int saved = dup(STDERR_FILENO);
        char *text;
        size_t len;
        FILE *f;

        CHECK(logfd >= 0 && saved >= 0);
        log_init("test", LOG_LVL_INFO, 0);
        dup2(logfd, STDERR_FILENO);
        srcs[0].label = "no_name";
        srcs[0].path = plugin("no_name");
        reg = plg_load(srcs, 1, err, sizeof(err));
        dup2(saved, STDERR_FILENO);
        close(saved);
        log_init("test", LOG_LVL_WARNING, 0);
        CHECK(reg != NULL);
        CHECK(reg != NULL && plg_activity(reg, "noop") != NULL);
        plg_unload(reg);
        text = calloc(1, 8192);
        f = fdopen(logfd, "r");
        CHECK(text != NULL && f != NULL);
        if (text != NULL && f != NULL) {
            rewind(f);
            len = fread(text, 1, 8191, f);
            text[len] = '\0';
            CHECK(strstr(text, "loaded plugin \"?\"") != NULL);
            CHECK(strstr(text, "(null)") == NULL);
        }
        if (f != NULL)
            fclose(f);
        free(text);
        unlink(logpath);
    }

    /* ABI 2: the contexts start with their size, and WF_HAS_FIELD tells a
     * plugin whether the host's struct reaches a field (here a host built
     * when wf_activity_ctx ended before deadline_ms). */
    {
        struct wf_activity_ctx full = {sizeof(full), NULL, "a", "", 1, 0, NULL};
        struct wf_activity_ctx old = full;
        struct wf_ctx wctx = {sizeof(wctx), NULL, "p", "e", "w", NULL};

        CHECK_INT(WF_ABI_VERSION, 2);
        CHECK_INT(offsetof(struct wf_ctx, size), 0);
        CHECK_INT(offsetof(struct wf_activity_ctx, size), 0);
        CHECK(WF_HAS_FIELD(&full, struct wf_activity_ctx, host));
        CHECK(WF_HAS_FIELD(&wctx, struct wf_ctx, host));
        old.size = (uint32_t)offsetof(struct wf_activity_ctx, deadline_ms);
        CHECK(WF_HAS_FIELD(&old, struct wf_activity_ctx, attempt));
        CHECK(!WF_HAS_FIELD(&old, struct wf_activity_ctx, deadline_ms));
        CHECK(!WF_HAS_FIELD(&old, struct wf_activity_ctx, host));
        old.size = (uint32_t)(offsetof(struct wf_activity_ctx, deadline_ms) + 4);
        CHECK(!WF_HAS_FIELD(&old, struct wf_activity_ctx, deadline_ms));
    }

    /* An entry point that crashes takes down only the process loading it. */
    pid = fork();
    if (pid == 0) {
        struct plg_source s = {"crash_entry", plugin("crash_entry")};
        signal(SIGSEGV, SIG_DFL);
        (void)plg_load(&s, 1, err, sizeof(err));
        _exit(0);
    }
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0));

    TEST_REPORT("test_loader");
}
