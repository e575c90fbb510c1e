/*
 * test_wfctl.c: the wfctl command-line client against the real server.
 *
 * Runs the wfctl binary (WFCTL_BIN) as a subprocess with --url pointing at a
 * server started by the harness on 127.0.0.1, and checks exit statuses,
 * output and the server's state (over its REST API): --help and usage
 * errors (100), create-project and projects, deploy of a compiled example
 * (WF_EXAMPLE_SO), of a C source written here (compiled by wfctl), of
 * declarative definitions in JSON and YAML (a malformed YAML file refused
 * locally with its line and column), of files
 * that are not plugins (1, nothing uploaded), to an unknown project (1),
 * list, start, status, restart (a new pid), run (the execution API may not
 * exist yet: either answer is accepted), --json, stop, get and ls on runs
 * written with SQL (filters, --limit, --all, errors), schedule add, ls,
 * get, pause, resume and rm with their errors, project, undeploy, health,
 * metrics, openapi and --output, a closed port (2),
 * and --token against a server that requires one. Each wfctl run is bounded
 * to 60 s and killed after that.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define RUN_TIMEOUT_MS 60000

static struct th_server srv;
static char tmpdir[256];
static char url[64];
static const char *wfctl_bin;

/* The last wfctl run: its output (malloc'ed, NUL-terminated) and status. */
static char *out_text;
static char *err_text;

/* A plugin with one workflow and one activity, deployed from source. */
static const char hello_src[] =
    "#include <wf/plugin.h>\n"
    "static enum wf_status greet(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)\n"
    "{\n"
    "    (void)a;\n"
    "    (void)in;\n"
    "    *out = cJSON_CreateString(\"hello\");\n"
    "    return *out != NULL ? WF_OK : WF_ENOMEM;\n"
    "}\n"
    "static enum wf_status hello(struct wf_ctx *ctx, const cJSON *in, cJSON **out)\n"
    "{\n"
    "    return ctx->api->activity(ctx, \"greet\", in, out);\n"
    "}\n"
    "static const struct wf_workflow_def wfs[] = {{\"hello-world\", hello}};\n"
    "static const struct wf_activity_def acts[] = {{\"greet\", greet, WF_RETRY_DEFAULT, 1000}};\n"
    "WF_PLUGIN_DEFINE(\"hello\", \"0.1.0\", wfs, 1, acts, 1)\n";

/* Declarative definitions: one that calls hello.c's activity, one with two
 * errors. */
static const char greet_flow[] =
    "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"t\",\"name\":\"greet-flow\","
    "\"version\":\"1.0.0\"},\"do\":[{\"g\":{\"call\":\"greet\"}}]}\n";
static const char broken_flow[] =
    "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"t\",\"name\":\"broken-flow\","
    "\"version\":\"1.0.0\"},\"do\":[{\"a\":{\"wait\":\"later\"}},{\"b\":{\"call\":"
    "\"nope\"}}]}\n";

/* greet_flow in YAML (converted to JSON by wfctl: not greet_flow's bytes,
 * which end in a newline), and a YAML file that does not parse. */
static const char greet_flow_yaml[] = "# greet-flow, in YAML\n"
                                      "document:\n"
                                      "  dsl: 1.0.0\n"
                                      "  namespace: t\n"
                                      "  name: greet-flow\n"
                                      "  version: 1.0.0\n"
                                      "do:\n"
                                      "  - g: {call: greet}\n";
static const char broken_yaml[] = "document:\n"
                                  "  dsl: 1.0.0\n"
                                  "  name: [broken\n";

/* A shared object without wf_plugin_entry: loads, but is no plugin. */
static const char noentry_src[] = "int not_a_plugin(void);\n"
                                  "int not_a_plugin(void)\n"
                                  "{\n"
                                  "    return 42;\n"
                                  "}\n";

/* Does not compile. */
static const char broken_src[] = "#include <wf/plugin.h>\nthis is not C;\n";

/* Writes text to tmpdir/name and stores the path in path. Returns 0/-1. */
static int write_file(const char *name, const char *text, char *path, size_t len)
{
    FILE *f;

    snprintf(path, len, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "could not create %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/*
 * Runs wfctl with args (NULL-terminated, without argv[0]), stdout and stderr
 * captured into out_text and err_text. Returns its exit status, or -1 when
 * it could not run, died of a signal or was killed after RUN_TIMEOUT_MS.
 */
static int wfctl(const char *const *args)
{
    char out_path[320], err_path[320];
    const char *argv[32];
    long long deadline = th_now_ms() + RUN_TIMEOUT_MS;
    int n = 0, status = 0, fd_out, fd_err;
    pid_t pid, w = 0;

    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    argv[n++] = wfctl_bin;
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    snprintf(out_path, sizeof(out_path), "%s/stdout", tmpdir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", tmpdir);
    fd_out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fd_err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_out < 0 || fd_err < 0) {
        fprintf(stderr, "could not create the output files: %s\n", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(fd_out, STDOUT_FILENO);
        dup2(fd_err, STDERR_FILENO);
        execv(wfctl_bin, (char *const *)(void *)argv);
        _exit(127);
    }
    close(fd_out);
    close(fd_err);
    if (pid < 0) {
        fprintf(stderr, "could not fork: %s\n", strerror(errno));
        return -1;
    }
    while (th_now_ms() < deadline) {
        w = waitpid(pid, &status, WNOHANG);
        if (w != 0)
            break;
        th_sleep_ms(20);
    }
    if (w == 0) {
        fprintf(stderr, "wfctl %s: still running after %d ms, killed\n", args[0], RUN_TIMEOUT_MS);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    out_text = th_read_file(out_path, NULL);
    err_text = th_read_file(err_path, NULL);
    if (w < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* Runs wfctl and checks its exit status; prints its output when wrong. */
static int expect(int want, const char *const *args)
{
    int got = wfctl(args);

    if (got != want) {
        fprintf(stderr, "wfctl %s ... exited %d, expected %d\n--- stdout:\n%s--- stderr:\n%s---\n",
                args[0], got, want, out_text ? out_text : "", err_text ? err_text : "");
        return CHECK_EQ_INT(got, want);
    }
    return CHECK(1);
}

/* 1 when the last run's stdout (or stderr) contains needle; prints if not. */
static int out_has(const char *needle)
{
    int ok = out_text != NULL && strstr(out_text, needle) != NULL;

    if (!ok)
        fprintf(stderr, "stdout lacks \"%s\":\n%s\n", needle, out_text ? out_text : "");
    return ok;
}

/* out_has without the complaint, for checks that something is absent. */
static int out_has_quiet(const char *needle)
{
    return out_text != NULL && strstr(out_text, needle) != NULL;
}

static int err_has(const char *needle)
{
    int ok = err_text != NULL && strstr(err_text, needle) != NULL;

    if (!ok)
        fprintf(stderr, "stderr lacks \"%s\":\n%s\n", needle, err_text ? err_text : "");
    return ok;
}

/* The number of entries of GET /projects/tproj/<kind>, or -1. */
static int code_count(const char *kind)
{
    char path[128];
    cJSON *j = NULL;
    long long n;

    snprintf(path, sizeof(path), "/projects/tproj/%s", kind);
    if (th_http_json(&srv, "GET", path, NULL, &j) != 200) {
        cJSON_Delete(j);
        return -1;
    }
    n = th_json_num(j, "count");
    cJSON_Delete(j);
    return (int)n;
}

/* The pid in GET /workers/status/tproj, or -1. */
static long long worker_pid(void)
{
    cJSON *j = NULL;
    long long pid = -1;

    if (th_http_json(&srv, "GET", "/workers/status/tproj", NULL, &j) == 200)
        pid = th_json_num(j, "pid");
    cJSON_Delete(j);
    return pid;
}

static void test_usage(void)
{
    CHECK(expect(0, (const char *const[]){"--help", NULL}) && out_has("usage: wfctl") &&
          out_has("deploy") && out_has("restart"));
    CHECK(expect(0, (const char *const[]){"deploy", "--help", NULL}) && out_has("--project") &&
          out_has("FILE.yaml"));
    CHECK(expect(0, (const char *const[]){"status", "--help", NULL}) &&
          out_has("usage: wfctl status"));
    CHECK(expect(100, (const char *const[]){NULL}));
    CHECK(expect(100, (const char *const[]){"frobnicate", NULL}) && err_has("unknown command"));
    CHECK(expect(100, (const char *const[]){"--url", url, "start", NULL}) &&
          err_has("missing arguments"));
    CHECK(expect(100, (const char *const[]){"--url", url, "stop", "a", "b", NULL}));
    CHECK(expect(100, (const char *const[]){"--url", url, "deploy", "x.so", NULL}) &&
          err_has("--project is required"));
    CHECK(expect(100, (const char *const[]){"--url", url, "deploy", "--project", NULL}));
    CHECK(expect(100, (const char *const[]){"--url", url, "list", "--bogus", NULL}));
    CHECK(expect(100, (const char *const[]){"--url", "ftp://x", "projects", NULL}));
    CHECK(expect(100, (const char *const[]){"--url", url, "run", "tproj", "wf", "{bad", NULL}));
}

static void test_projects(void)
{
    CHECK(expect(0, (const char *const[]){"--url", url, "create-project", "tproj", "Test project",
                                          NULL}) &&
          out_has("created project tproj"));
    CHECK(expect(1, (const char *const[]){"--url", url, "create-project", "tproj", NULL}) &&
          err_has("already exists"));
    CHECK(expect(1, (const char *const[]){"--url", url, "create-project", "bad id!", NULL}));
    /* global options after the command work too */
    CHECK(expect(0, (const char *const[]){"projects", "--url", url, NULL}) && out_has("tproj") &&
          out_has("Test project"));
}

static void test_deploy(const char *example_so)
{
    char hello[320], noentry[320], broken[320], text[320];

    CHECK(expect(0, (const char *const[]){"--url", url, "deploy", "--project", "tproj", example_so,
                                          NULL}) &&
          out_has("fetch-and-transform") && out_has("v1") && out_has("wfctl restart tproj"));
    CHECK_EQ_INT(code_count("workflows"), 1);
    /* the same bytes again: the server keeps the version */
    CHECK(expect(0, (const char *const[]){"--url", url, "deploy", "--project=tproj", example_so,
                                          NULL}) &&
          out_has("v1"));

    if (!CHECK(write_file("hello.c", hello_src, hello, sizeof(hello)) == 0))
        return;
    CHECK(expect(0, (const char *const[]){"--url", url, "deploy", "--project", "tproj", hello,
                                          NULL}) &&
          out_has("hello-world") && out_has("greet") && out_has("plugin hello 0.1.0"));
    CHECK_EQ_INT(code_count("workflows"), 2);
    CHECK_EQ_INT(code_count("activities"), 1);

    /* a declarative definition calling greet; a broken one lists its errors */
    {
        char flow[320], bflow[320];
        if (CHECK(write_file("greet-flow.json", greet_flow, flow, sizeof(flow)) == 0))
            CHECK(expect(0, (const char *const[]){"--url", url, "deploy", "--project", "tproj",
                                                  flow, NULL}) &&
                  out_has("deployed workflow greet-flow") && out_has("plugin definition 1.0.0"));
        CHECK_EQ_INT(code_count("workflows"), 3);
        if (CHECK(write_file("broken-flow.json", broken_flow, bflow, sizeof(bflow)) == 0))
            CHECK(expect(1, (const char *const[]){"--url", url, "deploy", "--project", "tproj",
                                                  bflow, NULL}) &&
                  err_has("invalid workflow definition: 2 errors") &&
                  err_has("  /do/0/a/wait: invalid duration") &&
                  err_has("  /do/1/b/call: unknown activity \"nope\""));
        CHECK_EQ_INT(code_count("workflows"), 3);
    }

    /* the same definition from YAML: new bytes (canonical JSON), v2; again:
     * the same bytes, still v2. A malformed one names file, line, column. */
    {
        char yflow[320], ybroken[320], msg[400];
        if (CHECK(write_file("greet-flow.yml", greet_flow_yaml, yflow, sizeof(yflow)) == 0)) {
            CHECK(expect(0, (const char *const[]){"--url", url, "deploy", "--project", "tproj",
                                                  yflow, NULL}) &&
                  out_has("deployed workflow greet-flow") && out_has("v2") &&
                  out_has("(updated)") && out_has("plugin definition 1.0.0"));
            CHECK(expect(0, (const char *const[]){"--url", url, "deploy", "--project", "tproj",
                                                  yflow, NULL}) &&
                  out_has("v2"));
        }
        if (CHECK(write_file("broken.yaml", broken_yaml, ybroken, sizeof(ybroken)) == 0)) {
            snprintf(msg, sizeof(msg),
                     "could not deploy %s: YAML line 4, column 1: did not find expected ',' or ']'",
                     ybroken);
            CHECK(expect(1, (const char *const[]){"--url", url, "deploy", "--project", "tproj",
                                                  yflow, ybroken, NULL}) &&
                  err_has(msg));
        }
        CHECK_EQ_INT(code_count("workflows"), 3);
    }

    /* files that are no plugin: refused locally, nothing uploaded */
    if (write_file("notes.so", "just some text\n", text, sizeof(text)) == 0)
        CHECK(expect(1, (const char *const[]){"--url", url, "deploy", "--project", "tproj", text,
                                              NULL}) &&
              err_has("could not load plugin"));
    if (write_file("noentry.c", noentry_src, noentry, sizeof(noentry)) == 0)
        CHECK(expect(1, (const char *const[]){"--url", url, "deploy", "--project", "tproj", noentry,
                                              NULL}) &&
              err_has("incompatible plugin") && err_has("missing magic block"));
    if (write_file("broken.c", broken_src, broken, sizeof(broken)) == 0)
        CHECK(expect(1, (const char *const[]){"--url", url, "deploy", "--project", "tproj", broken,
                                              NULL}) &&
              err_has("could not compile"));
    /* a good file and a bad one: all-or-nothing, the good one is not sent */
    CHECK(expect(1, (const char *const[]){"--url", url, "deploy", "--project", "tproj", hello,
                                          "/nonexistent/x.so", NULL}) &&
          err_has("could not open"));
    CHECK_EQ_INT(code_count("workflows"), 3);
    CHECK_EQ_INT(code_count("activities"), 1);

    CHECK(expect(1, (const char *const[]){"--url", url, "deploy", "--project", "nope", example_so,
                                          NULL}) &&
          err_has("not found"));

    CHECK(expect(0, (const char *const[]){"--url", url, "list", "--project", "tproj", NULL}) &&
          out_has("fetch-and-transform") && out_has("hello-world") && out_has("greet"));
}

static void test_workers(void)
{
    long long pid1, pid2;
    cJSON *j;

    CHECK(expect(0, (const char *const[]){"--url", url, "list", NULL}) &&
          out_has("no workers running"));
    CHECK(expect(0, (const char *const[]){"--url", url, "start", "tproj", NULL}) &&
          out_has("Worker started for project tproj"));
    CHECK(expect(0, (const char *const[]){"--url", url, "status", "tproj", NULL}) &&
          out_has("running") && out_has("pid:") && out_has("last heartbeat:") &&
          out_has("fetch-and-transform") && out_has("hello-world") && out_has("greet"));
    CHECK(expect(0, (const char *const[]){"--url", url, "list", NULL}) && out_has("tproj") &&
          out_has("running"));
    pid1 = worker_pid();
    CHECK(expect(0, (const char *const[]){"--url", url, "restart", "tproj", NULL}) &&
          out_has("Worker restarted for project tproj"));
    pid2 = worker_pid();
    CHECK(pid1 > 0 && pid2 > 0 && pid1 != pid2);

    /* --json prints the server's reply as it is */
    if (CHECK(expect(0, (const char *const[]){"--json", "--url", url, "status", "tproj", NULL}))) {
        j = cJSON_Parse(out_text);
        CHECK(j != NULL && th_json_str(j, "projectId") != NULL &&
              strcmp(th_json_str(j, "projectId"), "tproj") == 0);
        cJSON_Delete(j);
    }

    /* a run starts, and names its id */
    CHECK(
        expect(0, (const char *const[]){"--url", url, "run", "tproj", "hello-world", "{}", NULL}) &&
        out_has("started run ") && out_has(" of hello-world (status running)"));
    /* --wait: until it ends, with its output; an ended run cannot be
     * cancelled, retried or signalled (409, said) */
    if (CHECK(expect(0, (const char *const[]){"--url", url, "run", "tproj", "hello-world", "{}",
                                              "--wait", "--timeout", "30", NULL}) &&
              out_has(" completed: \"hello\""))) {
        char id[64] = "";
        if (sscanf(out_text, "started run %63s", id) == 1 && id[0] != '\0') {
            CHECK(expect(1, (const char *const[]){"--url", url, "cancel", id, NULL}) &&
                  err_has("already completed"));
            CHECK(expect(1, (const char *const[]){"--url", url, "retry", id, NULL}) &&
                  err_has("only a failed run can be retried"));
            CHECK(expect(1, (const char *const[]){"--url", url, "signal", id, "go", "{\"a\":1}",
                                                  NULL}) &&
                  err_has("already completed"));
            CHECK(
                expect(100, (const char *const[]){"--url", url, "signal", id, "go", "{bad", NULL}));
            CHECK(expect(0, (const char *const[]){"--url", url, "get", id, NULL}) &&
                  out_has("\"completed\""));
        } else {
            CHECK(0 && "no run id in wfctl run's output");
        }
    }

    CHECK(expect(0, (const char *const[]){"--url", url, "stop", "tproj", NULL}) &&
          out_has("Worker stopped for project tproj"));
    CHECK(expect(0, (const char *const[]){"--url", url, "status", "tproj", NULL}) &&
          out_has("stopped"));
    CHECK(expect(1, (const char *const[]){"--url", url, "status", "nope", NULL}) &&
          err_has("not found"));
}

/* get and ls against runs written with SQL into project truns (its own,
 * so runs started by `wfctl run` elsewhere do not count). */
static void test_runs(const struct th_db *db)
{
    static const char a[] = "0a000000-0000-4000-8000-000000000001";
    static const char b[] = "0b000000-0000-4000-8000-000000000002";
    static const char c[] = "0c000000-0000-4000-8000-000000000003";
    static const char *const rows[] = {
        "INSERT INTO projects (id, name) VALUES ('truns', 'Runs')",
        "INSERT INTO executions (id, project_id, workflow, status, input, output, created_at,"
        " completed_at) VALUES"
        " ('0a000000-0000-4000-8000-000000000001', 'truns', 'order-flow', 'completed',"
        "  '{\"qty\": 3}', '{\"total\": 42}', '2026-01-01 00:00:01+00', '2026-01-01 00:00:02+00'),"
        " ('0b000000-0000-4000-8000-000000000002', 'truns', 'order-flow', 'failed', NULL, NULL,"
        "  '2026-01-01 00:00:02+00', NULL),"
        " ('0c000000-0000-4000-8000-000000000003', 'truns', 'refund-flow', 'running', NULL, NULL,"
        "  '2026-01-01 00:00:03+00', NULL)",
        "INSERT INTO steps (execution_id, seq, project_id, name, kind, status, output) VALUES"
        " ('0a000000-0000-4000-8000-000000000001', 0, 'truns', 'charge', 'activity', 'completed',"
        "  '{\"charged\": true}')",
        /* c is a child run of a */
        "UPDATE executions SET parent_id = '0a000000-0000-4000-8000-000000000001',"
        " parent_seq = 1, parent_index = 0 WHERE id = '0c000000-0000-4000-8000-000000000003'",
    };
    PGconn *pg = th_db_connect(db);
    int ok = pg != NULL;
    cJSON *j;

    for (size_t i = 0; ok && i < sizeof(rows) / sizeof(rows[0]); i++)
        ok = th_sql_exec(pg, rows[i]) == 0;
    PQfinish(pg);
    if (!CHECK(ok))
        return;

    CHECK(expect(0, (const char *const[]){"--url", url, "get", a, NULL}) && out_has(a) &&
          out_has("\"executionId\"") && out_has("\"total\"") && out_has("\"charge\"") &&
          out_has("completed"));
    CHECK(expect(1, (const char *const[]){"--url", url, "get",
                                          "ffffffff-0000-4000-8000-000000000000", NULL}) &&
          err_has("not found") && err_has("HTTP 404"));
    CHECK(expect(1, (const char *const[]){"--url", url, "get", "nope", NULL}) &&
          err_has("invalid execution id"));
    CHECK(expect(100, (const char *const[]){"--url", url, "get", NULL}));
    if (CHECK(expect(0, (const char *const[]){"--json", "--url", url, "get", b, NULL}))) {
        j = cJSON_Parse(out_text);
        CHECK(j != NULL && th_json_bool(j, "success") == 1);
        cJSON_Delete(j);
    }

    /* newest first: c, b, a */
    CHECK(expect(0, (const char *const[]){"--url", url, "ls", "truns", NULL}) &&
          out_has("WORKFLOW") && out_has("COMPLETED") && out_has("refund-flow") &&
          out_has("2026-01-01T00:00:02.000Z") && out_text != NULL &&
          strstr(out_text, c) < strstr(out_text, b) && strstr(out_text, b) < strstr(out_text, a) &&
          strstr(out_text, "more runs") == NULL);
    CHECK(
        expect(0, (const char *const[]){"--url", url, "ls", "truns", "--status", "failed", NULL}) &&
        out_has(b) && strstr(out_text, a) == NULL && strstr(out_text, c) == NULL);
    CHECK(expect(0, (const char *const[]){"--url", url, "ls", "--workflow=order-flow", "truns",
                                          NULL}) &&
          out_has(a) && out_has(b) && strstr(out_text, c) == NULL);
    CHECK(expect(0,
                 (const char *const[]){"--url", url, "ls", "truns", "--status", "waiting", NULL}) &&
          out_has("no runs match"));
    CHECK(expect(0, (const char *const[]){"--url", url, "ls", "truns", "--parent", a, NULL}) &&
          out_has(c) && strstr(out_text, b) == NULL);
    CHECK(expect(0, (const char *const[]){"--url", url, "ls", "truns", "--parent", "none", NULL}) &&
          out_has(a) && out_has(b) && strstr(out_text, c) == NULL);
    CHECK(expect(1, (const char *const[]){"--url", url, "ls", "truns", "--parent", "x", NULL}) &&
          err_has("invalid parent"));
    CHECK(expect(0, (const char *const[]){"--url", url, "ls", "truns", "--limit", "1", NULL}) &&
          out_has(c) && strstr(out_text, b) == NULL && out_has("more runs follow"));
    /* --all follows the cursor, one run per request */
    CHECK(expect(0, (const char *const[]){"--url", url, "ls", "truns", "--limit", "1", "--all",
                                          NULL}) &&
          out_has(a) && out_has(b) && out_has(c) && strstr(out_text, "more runs") == NULL);
    CHECK(
        expect(1, (const char *const[]){"--url", url, "ls", "truns", "--status", "bogus", NULL}) &&
        err_has("invalid status"));
    CHECK(expect(1, (const char *const[]){"--url", url, "ls", "truns", "--limit", "0", NULL}) &&
          err_has("invalid limit"));
    CHECK(expect(1, (const char *const[]){"--url", url, "ls", "nope", NULL}) &&
          err_has("project \"nope\" not found"));
    CHECK(expect(100, (const char *const[]){"--url", url, "ls", NULL}));
    CHECK(expect(100, (const char *const[]){"--url", url, "ls", "truns", "--status", NULL}));
    CHECK(expect(100, (const char *const[]){"--url", url, "ls", "truns", "--bogus", NULL}));
    if (CHECK(expect(0, (const char *const[]){"--json", "--url", url, "ls", "truns", NULL}))) {
        j = cJSON_Parse(out_text);
        CHECK(j != NULL && th_json_num(j, "count") == 3);
        cJSON_Delete(j);
    }
}

/* A closed port on 127.0.0.1: wfctl says it could not reach the server. */
/* schedule add|ls|get|pause|resume|rm, their usage errors and the
 * server's refusals. */
static void test_schedules(void)
{
    char id[64] = "";
    const char *p;

    CHECK(expect(0, (const char *const[]){"schedule", "--help", NULL}) &&
          out_has("wfctl schedule add") && out_has("--missed"));
    CHECK(expect(100, (const char *const[]){"--url", url, "schedule", NULL}) &&
          err_has("missing subcommand"));
    CHECK(expect(100, (const char *const[]){"--url", url, "schedule", "frob", NULL}) &&
          err_has("unknown subcommand"));
    CHECK(expect(100, (const char *const[]){"--url", url, "schedule", "add", "tproj", NULL}) &&
          err_has("missing arguments"));
    CHECK(expect(100, (const char *const[]){"--url", url, "schedule", "add", "tproj", "hello-world",
                                            "*/5", "*", "*", "*", "*", NULL}) &&
          err_has("quote the cron expression"));
    CHECK(expect(100, (const char *const[]){"--url", url, "schedule", "add", "tproj", "hello-world",
                                            "@daily", "--input", "{bad", NULL}) &&
          err_has("--input"));
    CHECK(expect(100, (const char *const[]){"--url", url, "schedule", "rm", NULL}));
    CHECK(expect(1, (const char *const[]){"--url", url, "schedule", "add", "tproj", "hello-world",
                                          "0 24 * * *", NULL}) &&
          err_has("24 is out of range 0-23"));
    CHECK(expect(1, (const char *const[]){"--url", url, "schedule", "add", "tproj", "hello-world",
                                          "@daily", "--timezone", "Mars/Base", NULL}) &&
          err_has("unknown time zone"));
    CHECK(expect(0, (const char *const[]){"--url", url, "schedule", "ls", "tproj", NULL}) &&
          out_has("no schedules"));
    if (!CHECK(expect(0, (const char *const[]){"--url", url, "schedule", "add", "tproj",
                                               "hello-world", "30 2 * * *", "--timezone",
                                               "America/New_York", "--input", "{\"who\":\"cron\"}",
                                               "--missed", "skip", NULL}) &&
               out_has("schedule ") && out_has("\"30 2 * * *\" (America/New_York)") &&
               out_has("missed ticks: skip") && out_has("  next: ")))
        return;
    p = strstr(out_text, "schedule ");
    if (p != NULL)
        sscanf(p, "schedule %36[0-9a-f-]", id);
    CHECK(strlen(id) == 36);
    CHECK(expect(0, (const char *const[]){"--url", url, "schedule", "ls", "tproj", NULL}) &&
          out_has(id) && out_has("hello-world") && out_has("active"));
    CHECK(expect(0, (const char *const[]){"--url", url, "schedule", "get", id, NULL}) &&
          out_has("\"who\":\t\"cron\"") && out_has("\"nextFireTimes\""));
    CHECK(expect(0, (const char *const[]){"--url", url, "schedule", "pause", id, NULL}) &&
          out_has("paused") && out_has("no next fire time"));
    CHECK(
        expect(0, (const char *const[]){"--url", url, "--json", "schedule", "resume", id, NULL}) &&
        out_has("\"paused\":false"));
    CHECK(expect(0, (const char *const[]){"--url", url, "schedule", "rm", id, NULL}) &&
          out_has("deleted schedule"));
    CHECK(expect(1, (const char *const[]){"--url", url, "schedule", "get", id, NULL}) &&
          err_has("not found"));
    CHECK(expect(1, (const char *const[]){"--url", url, "schedule", "pause", "nope", NULL}) &&
          err_has("invalid schedule id"));
}

/* project, undeploy, health, metrics, openapi and --output. */
static void test_admin(void)
{
    CHECK(expect(0, (const char *const[]){"--url", url, "project", "tproj", NULL}) &&
          out_has("project tproj") && out_has("Test project"));
    CHECK(expect(1, (const char *const[]){"--url", url, "project", "nope", NULL}) &&
          err_has("not found"));
    CHECK(expect(0, (const char *const[]){"--url", url, "--output", "json", "project", "tproj",
                                          NULL}) &&
          out_has("\"desiredState\""));
    CHECK(expect(100, (const char *const[]){"--url", url, "--output", "yaml", "projects", NULL}) &&
          err_has("invalid --output"));
    CHECK(expect(0, (const char *const[]){"--url", url, "--output", "table", "projects", NULL}) &&
          out_has("tproj"));
    CHECK(expect(0, (const char *const[]){"--url", url, "undeploy", "tproj", "workflow",
                                          "greet-flow", NULL}) &&
          out_has("deactivated workflow greet-flow"));
    CHECK(expect(1, (const char *const[]){"--url", url, "undeploy", "tproj", "workflow", "nope",
                                          NULL}) &&
          err_has("not found"));
    CHECK(expect(100,
                 (const char *const[]){"--url", url, "undeploy", "tproj", "plugin", "x", NULL}) &&
          err_has("workflow or activity"));
    CHECK(expect(0, (const char *const[]){"--url", url, "health", NULL}) && out_has("health: ok"));
    CHECK(expect(0, (const char *const[]){"--url", url, "health", "--ready", NULL}) &&
          out_has("health/ready: ready") && out_has("database"));
    CHECK(expect(0, (const char *const[]){"--url", url, "health", "--live", NULL}) &&
          out_has("live"));
    CHECK(expect(0, (const char *const[]){"--url", url, "metrics", "wf_http_requests", NULL}) &&
          out_has("# TYPE wf_http_requests_total counter") && !out_has_quiet("wf_workers{"));
    CHECK(expect(0, (const char *const[]){"--url", url, "openapi", NULL}) &&
          out_has("openapi: 3.1") && out_has("/schedules/{scheduleId}"));
}

static void test_unreachable(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    char closed[64];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
               getsockname(fd, (struct sockaddr *)&sa, &len) == 0)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    /* bound but not listening: connections are refused */
    snprintf(closed, sizeof(closed), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    CHECK(expect(2, (const char *const[]){"--url", closed, "projects", NULL}) &&
          err_has("could not reach the server"));
    CHECK(expect(2, (const char *const[]){"--url", closed, "start", "tproj", NULL}));
    close(fd);
}

/* A server with WF_API_TOKEN: wfctl without the token is refused (401),
 * with --token it is let in. Replaces srv (the first server is stopped). */
static void test_token(const struct th_db *db)
{
    static const char *const env[] = {"WF_API_TOKEN=wfctl-test-token", NULL};

    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
    th_server_cleanup(&srv);
    memset(&srv, 0, sizeof(srv));
    if (!CHECK(th_server_start(&srv, db, env) == 0))
        return;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    CHECK(expect(1, (const char *const[]){"--url", url, "--token", "wrong", "projects", NULL}) &&
          err_has("HTTP 401"));
    CHECK(expect(0, (const char *const[]){"--url", url, "--token", "wfctl-test-token", "projects",
                                          NULL}) &&
          out_has("tproj"));
}

int main(void)
{
    const char *example_so = getenv("WF_EXAMPLE_SO");
    struct th_db db;
    char path[320];

    memset(&db, 0, sizeof(db));
    if (th_init("test_wfctl", 1) != 0)
        return TH_SKIP;
    wfctl_bin = getenv("WFCTL_BIN");
    if (!CHECK(wfctl_bin != NULL && example_so != NULL))
        return th_finish();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/wfctl-test-XXXXXX");
    if (!CHECK(mkdtemp(tmpdir) != NULL))
        return th_finish();
    if (th_up(&db, &srv, NULL, NULL) != 0)
        goto out;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);

    test_usage();
    test_projects();
    test_deploy(example_so);
    test_workers();
    test_runs(&db);
    test_schedules();
    test_admin();
    test_unreachable();
    test_token(&db);
out:
    th_down(&db, &srv, NULL);
    free(out_text);
    free(err_text);
    {
        static const char *const names[] = {
            "stdout",   "stderr",          "hello.c",          "notes.so",       "noentry.c",
            "broken.c", "greet-flow.json", "broken-flow.json", "greet-flow.yml", "broken.yaml"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
            unlink(path);
        }
        rmdir(tmpdir);
    }
    return th_finish();
}
