/*
 * wfctl.c: the command-line client of the wf-server REST API (docs/api.md).
 *
 *     wfctl [--url URL] [--token TOKEN] [--json | --output json|table] COMMAND [ARGS]
 *
 * One command per run; each is a function here (deploy lives in deploy.c),
 * and every request goes through client.c, which talks only to the given
 * URL. Output: results on stdout, readable by default or the server's raw
 * JSON with --json; every error on stderr, once, as "wfctl: <message>".
 *
 * Exit status (enum ctl_exit): 0 done; 1 the server refused (its "error" is
 * printed) or a local check failed; 2 could not reach the server; 100 a
 * usage error. Global options may appear anywhere on the command line;
 * `wfctl COMMAND --help` describes a command.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "client.h"
#include "admin.h"
#include "deploy.h"
#include "schedule.h"
#include "follow.h"

#define CTL_DEFAULT_URL "http://127.0.0.1:3011"

typedef int (*command_fn)(const struct ctl_client *c, int argc, char **argv);

/* A command: its name, what it takes, one line about it, and its function. */
struct command {
    const char *name;
    const char *args;
    const char *summary;
    command_fn fn;
};

static int cmd_deploy(const struct ctl_client *c, int argc, char **argv);
static int cmd_projects(const struct ctl_client *c, int argc, char **argv);
static int cmd_create_project(const struct ctl_client *c, int argc, char **argv);
static int cmd_list(const struct ctl_client *c, int argc, char **argv);
static int cmd_control(const struct ctl_client *c, int argc, char **argv);
static int cmd_status(const struct ctl_client *c, int argc, char **argv);
static int cmd_run(const struct ctl_client *c, int argc, char **argv);
static int cmd_get(const struct ctl_client *c, int argc, char **argv);
static int cmd_ls(const struct ctl_client *c, int argc, char **argv);
static int cmd_run_call(const struct ctl_client *c, int argc, char **argv);
static int cmd_schedule(const struct ctl_client *c, int argc, char **argv);
static int cmd_events(const struct ctl_client *c, int argc, char **argv);

static const struct command commands[] = {
    {"deploy", "--project P FILE.so|FILE.c|FILE.json ...",
     "check plugins or definitions, upload them", cmd_deploy},
    {"projects", "", "list the projects", cmd_projects},
    {"create-project", "ID [NAME]", "create a project", cmd_create_project},
    {"list", "[--project P]", "running workers, or a project's code", cmd_list},
    {"start", "P", "start project P's worker", cmd_control},
    {"stop", "P", "stop P's worker (drains its runs)", cmd_control},
    {"restart", "P", "reload P's code without downtime", cmd_control},
    {"status", "P", "show project P's worker and its code", cmd_status},
    {"run", "P WORKFLOW ['JSON'] [--wait [--timeout S]]",
     "start a run of WORKFLOW with JSON input; --wait: until it ends, print its output", cmd_run},
    {"get", "RUN", "show a run: input, output, error and its steps", cmd_get},
    {"ls", "P [--status S] [--workflow W] [--parent RUN] [--limit N] [--all]",
     "list P's runs, newest first", cmd_ls},
    {"signal", "RUN NAME ['JSON']", "send signal NAME with a JSON payload to a run", cmd_run_call},
    {"cancel", "RUN", "cancel a run (at its next step when a worker holds it)", cmd_run_call},
    {"retry", "RUN", "resume a failed run from its failed step", cmd_run_call},
    {"schedule", "add|ls|get|pause|resume|rm ...",
     "cron schedules: start a workflow's run at each tick", cmd_schedule},
    {"project", "P", "show project P", ctl_cmd_project},
    {"undeploy", "P workflow|activity NAME", "deactivate deployed code (runs keep theirs)",
     ctl_cmd_undeploy},
    {"health", "[--live|--ready]", "the server's health, or its probes", ctl_cmd_health},
    {"metrics", "[PREFIX]", "the server's metrics (Prometheus text), or those starting with PREFIX",
     ctl_cmd_metrics},
    {"openapi", "", "print the server's OpenAPI description", ctl_cmd_openapi},
    {"events", "RUN", "follow a run live until it ends (--output json: one event a line)",
     cmd_events},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fputs("usage: wfctl [--url URL] [--token TOKEN] [--json | --output json|table] COMMAND "
          "[ARGS]\n"
          "\n"
          "The command-line client of a wf-server (its REST API).\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
        if (strlen(left) > 26) /* too wide: the summary goes below */
            fprintf(f, "  %s\n  %-26s %s\n", left, "", commands[i].summary);
        else
            fprintf(f, "  %-26s %s\n", left, commands[i].summary);
    }
    fputs("\n"
          "options (anywhere on the line):\n"
          "  --url URL      the server (default $WF_URL, else " CTL_DEFAULT_URL ")\n"
          "  --token TOKEN  API token, sent as \"Authorization: Bearer\" (default\n"
          "                 $WF_API_TOKEN)\n"
          "  --json         print the server's JSON replies as they are\n"
          "  --output json|table\n"
          "                 json: as --json; table (or text): readable (the default)\n"
          "  -h, --help     this help; `wfctl COMMAND --help` for a command\n"
          "\n"
          "exit status: 0 ok, 1 the server refused (its error is printed) or a\n"
          "local check failed, 2 could not reach the server, 100 usage error\n",
          f);
}

/* Prints a command's usage line and summary to f. */
static void command_usage(FILE *f, const struct command *cmd)
{
    if (cmd->fn == cmd_deploy) {
        ctl_deploy_usage(f);
        return;
    }
    if (cmd->fn == cmd_schedule) {
        ctl_schedule_usage(f);
        return;
    }
    if (cmd->fn == cmd_events) {
        ctl_events_usage(f);
        return;
    }
    fprintf(f, "usage: wfctl %s %s\n\n%c%s.\n", cmd->name, cmd->args,
            toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
    if (cmd->fn == cmd_run)
        fputs("\nJSON defaults to {}. Prints the new run's id and status.\n", f);
    if (cmd->fn == cmd_list)
        fputs("\noptions:\n  --project P   list P's workflows and activities instead\n", f);
    if (cmd->fn == cmd_get)
        fputs("\nRUN is the run's id (a UUID). Prints the run as JSON.\n", f);
    if (cmd->fn == cmd_ls)
        fputs("\noptions:\n"
              "  --status S     only runs in status S (pending, running, sleeping,\n"
              "                 waiting, completed, failed, cancelled)\n"
              "  --workflow W   only runs of workflow W\n"
              "  --parent RUN   only the child runs of RUN (a fork's branches, …);\n"
              "                 --parent none: only the runs no run started\n"
              "  --limit N      at most N runs (1 to 1000; the server's default is 50);\n"
              "                 with --all, the runs fetched per request (default 1000)\n"
              "  --all          every run, following the pages to the end\n",
              f);
    fputs("\nGlobal options (--url, --token, --json): see wfctl --help.\n", f);
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/*
 * The common argument check: prints the usage for --help (returns 0 with
 * *done set), refuses unknown options, and checks the number of positional
 * arguments is within [min, max]. Positionals are compacted to argv[1..]
 * and their count stored in *npos. Returns CTL_EXIT_OK or CTL_EXIT_USAGE.
 */
int ctl_check_args(int argc, char **argv, int min, int max, int *npos, int *done)
{
    const struct command *cmd = find_command(argv[0]);
    int n = 0;

    *done = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            command_usage(stdout, cmd);
            *done = 1;
            return CTL_EXIT_OK;
        }
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            ctl_error("%s: unknown option %s (see wfctl %s --help)", argv[0], argv[i], argv[0]);
            return CTL_EXIT_USAGE;
        }
        argv[++n] = argv[i];
    }
    *npos = n;
    if (n < min || n > max) {
        ctl_error("%s: %s (usage: wfctl %s %s)", argv[0],
                  n < min ? "missing arguments" : "too many arguments", cmd->name, cmd->args);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* The number member key of obj as a long long, or def. */
static long long num_or(const cJSON *obj, const char *key, long long def)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsNumber(it) ? (long long)it->valuedouble : def;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.mmm]Z" into Unix ms; returns 0 or -1. */
static int parse_iso(const char *s, long long *ms)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, frac = 0, nfrac = 0;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
        return -1;
    s += 19;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, nfrac++)
            if (nfrac < 3)
                frac = frac * 10 + (*s - '0');
    while (nfrac > 0 && nfrac < 3) {
        frac *= 10;
        nfrac++;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ms = (long long)timegm(&tm) * 1000 + frac;
    return 0;
}

/* Formats a duration in ms as "3d 04h", "2h 05m", "5m 03s" or "4.2s". */
static void format_duration(long long ms, char *buf, size_t len)
{
    long long s;

    if (ms < 0)
        ms = 0;
    s = ms / 1000;
    if (s >= 86400)
        snprintf(buf, len, "%lldd %02lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%lldh %02lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, len, "%lldm %02llds", s / 60, s % 60);
    else
        snprintf(buf, len, "%lld.%llds", s, ms % 1000 / 100);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "how long ago" of an ISO timestamp member, "-" when absent. */
static void since(const cJSON *obj, const char *key, char *buf, size_t len)
{
    long long t;

    if (parse_iso(ctl_str(obj, key), &t) != 0)
        snprintf(buf, len, "-");
    else
        format_duration(now_ms() - t, buf, len);
}

static int cmd_deploy(const struct ctl_client *c, int argc, char **argv)
{
    return ctl_deploy_main(c, argc, argv);
}

static int cmd_schedule(const struct ctl_client *c, int argc, char **argv)
{
    return ctl_schedule_main(c, argc, argv);
}

static int cmd_events(const struct ctl_client *c, int argc, char **argv)
{
    return ctl_events_main(c, argc, argv);
}

static int cmd_projects(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    const cJSON *p, *arr;
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 0, 0, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    rc = ctl_call(c, "GET", "/projects", NULL, &r);
    if (rc != CTL_EXIT_OK || c->json) {
        ctl_reply_free(&r);
        return rc;
    }
    arr = cJSON_GetObjectItemCaseSensitive(r.json, "projects");
    if (cJSON_GetArraySize(arr) == 0) {
        printf("no projects\n");
    } else {
        printf("%-38s %-30s %s\n", "ID", "NAME", "STATE");
        cJSON_ArrayForEach(p, arr)
        {
            const char *name = ctl_str(p, "name"), *state = ctl_str(p, "desiredState");
            printf("%-38s %-30s %s\n", ctl_str(p, "id") ? ctl_str(p, "id") : "?",
                   name != NULL ? name : "", state != NULL ? state : "");
        }
    }
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

static int cmd_create_project(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    const cJSON *p;
    cJSON *body;
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 1, 2, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    body = cJSON_CreateObject();
    if (body == NULL || cJSON_AddStringToObject(body, "id", argv[1]) == NULL ||
        (n == 2 && cJSON_AddStringToObject(body, "name", argv[2]) == NULL)) {
        cJSON_Delete(body);
        ctl_error("could not build the request: out of memory");
        return CTL_EXIT_REFUSED;
    }
    rc = ctl_call(c, "POST", "/projects", body, &r);
    cJSON_Delete(body);
    if (rc != CTL_EXIT_OK)
        return rc;
    p = cJSON_GetObjectItemCaseSensitive(r.json, "project");
    if (!c->json)
        printf("created project %s (%s)\n", ctl_str(p, "id") ? ctl_str(p, "id") : argv[1],
               ctl_str(p, "name") ? ctl_str(p, "name") : "");
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

/* Prints one project's workflows or activities (key) as table rows. */
static void print_code_rows(const cJSON *reply, const char *key, const char *kind)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(reply, key))
    {
        const char *sha = ctl_str(it, "sha256");
        printf("%-9s %-32s %7lld  %-12.12s  %-6s %lld\n", kind,
               ctl_str(it, "name") ? ctl_str(it, "name") : "?", num_or(it, "version", 0),
               sha != NULL ? sha : "-",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "active")) ? "yes" : "no",
               num_or(it, "size", 0));
    }
}

/* `wfctl list --project P`: the project's workflows and activities. */
static int list_project(const struct ctl_client *c, const char *project)
{
    struct ctl_reply wf, act;
    char path[256];
    int rc;

    if (ctl_path(path, sizeof(path), "/projects/%s/workflows", project) != 0)
        return CTL_EXIT_USAGE;
    rc = ctl_call(c, "GET", path, NULL, &wf);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (ctl_path(path, sizeof(path), "/projects/%s/activities", project) != 0) {
        ctl_reply_free(&wf);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_call(c, "GET", path, NULL, &act);
    if (rc != CTL_EXIT_OK) {
        ctl_reply_free(&wf);
        return rc;
    }
    if (!c->json) {
        if (num_or(wf.json, "count", 0) + num_or(act.json, "count", 0) == 0) {
            printf("project %s has no workflows or activities\n", project);
        } else {
            printf("%-9s %-32s %7s  %-12s  %-6s %s\n", "KIND", "NAME", "VERSION", "SHA256",
                   "ACTIVE", "SIZE");
            print_code_rows(wf.json, "workflows", "workflow");
            print_code_rows(act.json, "activities", "activity");
        }
    }
    ctl_reply_free(&wf);
    ctl_reply_free(&act);
    return CTL_EXIT_OK;
}

static int cmd_list(const struct ctl_client *c, int argc, char **argv)
{
    const char *project = NULL;
    struct ctl_reply r, st;
    const cJSON *id;
    char path[256], up[32], hb[32];
    int rc, n, done, i, kept = 1;

    /* take --project out, then the common checks on what is left */
    for (i = 1; i < argc; i++) {
        int m = ctl_opt_value(argc, argv, &i, "--project", &project);
        if (m < 0)
            return CTL_EXIT_USAGE;
        if (m == 0)
            argv[kept++] = argv[i];
    }
    rc = ctl_check_args(kept, argv, 0, 0, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    if (project != NULL)
        return list_project(c, project);
    rc = ctl_call(c, "GET", "/workers", NULL, &r);
    if (rc != CTL_EXIT_OK || c->json) {
        ctl_reply_free(&r);
        return rc;
    }
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "workers")) == 0) {
        printf("no workers running\n");
        ctl_reply_free(&r);
        return CTL_EXIT_OK;
    }
    printf("%-38s %-9s %-8s %-9s %-10s %s\n", "PROJECT", "STATUS", "PID", "UPTIME", "HEARTBEAT",
           "RESTARTS");
    cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(r.json, "workers"))
    {
        if (!cJSON_IsString(id))
            continue;
        if (ctl_path(path, sizeof(path), "/workers/status/%s", id->valuestring) != 0)
            continue;
        rc = ctl_request_json(c, "GET", path, NULL, &st);
        if (rc != CTL_EXIT_OK)
            break;
        since(st.json, "startedAt", up, sizeof(up));
        since(st.json, "lastHeartbeat", hb, sizeof(hb));
        printf("%-38s %-9s %-8lld %-9s %-10s %lld\n", id->valuestring,
               ctl_str(st.json, "status") ? ctl_str(st.json, "status") : "?",
               num_or(st.json, "pid", 0), up, hb, num_or(st.json, "restarts", 0));
        ctl_reply_free(&st);
    }
    ctl_reply_free(&r);
    return rc;
}

/* start, stop, restart: POST /workers/<cmd> {"projectId"} and its message. */
static int cmd_control(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    cJSON *body;
    char path[64];
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 1, 1, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    body = cJSON_CreateObject();
    if (body == NULL || cJSON_AddStringToObject(body, "projectId", argv[1]) == NULL) {
        cJSON_Delete(body);
        ctl_error("could not build the request: out of memory");
        return CTL_EXIT_REFUSED;
    }
    snprintf(path, sizeof(path), "/workers/%s", argv[0]);
    rc = ctl_call(c, "POST", path, body, &r);
    cJSON_Delete(body);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!c->json) {
        const char *msg = ctl_str(r.json, "message");
        long long pid = num_or(r.json, "pid", 0);
        if (pid > 0)
            printf("%s (pid %lld)\n", msg != NULL ? msg : "done", pid);
        else
            printf("%s\n", msg != NULL ? msg : "done");
    }
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

/* Prints "  label: a, b, c" for a JSON array of strings. */
static void print_names(const char *label, const cJSON *arr)
{
    const cJSON *it;
    int first = 1;

    printf("%-15s ", label);
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it))
            continue;
        printf("%s%s", first ? "" : ", ", it->valuestring);
        first = 0;
    }
    printf("%s\n", first ? "-" : "");
}

static int cmd_status(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    const cJSON *loaded;
    char path[256], up[32], hb[32];
    const char *s;
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 1, 1, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    if (ctl_path(path, sizeof(path), "/workers/status/%s", argv[1]) != 0)
        return CTL_EXIT_USAGE;
    rc = ctl_call(c, "GET", path, NULL, &r);
    if (rc != CTL_EXIT_OK || c->json) {
        ctl_reply_free(&r);
        return rc;
    }
    s = ctl_str(r.json, "status");
    printf("%-15s %s\n", "project:", argv[1]);
    printf("%-15s %s\n", "status:", s != NULL ? s : "?");
    if (num_or(r.json, "pid", 0) > 0)
        printf("%-15s %lld\n", "pid:", num_or(r.json, "pid", 0));
    else
        printf("%-15s -\n", "pid:");
    if (ctl_str(r.json, "workerId") != NULL)
        printf("%-15s %s\n", "worker:", ctl_str(r.json, "workerId"));
    since(r.json, "startedAt", up, sizeof(up));
    since(r.json, "lastHeartbeat", hb, sizeof(hb));
    printf("%-15s %s", "uptime:", up);
    if (ctl_str(r.json, "startedAt") != NULL)
        printf(" (since %s)", ctl_str(r.json, "startedAt"));
    printf("\n%-15s %s%s\n", "last heartbeat:", hb, strcmp(hb, "-") != 0 ? " ago" : "");
    printf("%-15s %lld\n", "restarts:", num_or(r.json, "restarts", 0));
    printf("%-15s %s\n", "error:", ctl_str(r.json, "error") ? ctl_str(r.json, "error") : "-");
    loaded = cJSON_GetObjectItemCaseSensitive(r.json, "loaded");
    print_names("workflows:", cJSON_GetObjectItemCaseSensitive(loaded, "workflows"));
    print_names("activities:", cJSON_GetObjectItemCaseSensitive(loaded, "activities"));
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

/* 1 when a 404/405 reply means the route itself is unknown to the server
 * (its generic "not found"), not that the project or workflow is. */
static int route_missing(const struct ctl_reply *r)
{
    const char *err = ctl_str(r->json, "error");

    if (r->status == 405)
        return 1;
    return r->status == 404 && (err == NULL || strcmp(err, "not found") == 0);
}

/*
 * Polls GET /executions/ID until the run ends or timeout_s pass, then
 * prints its output (or error). Exit status: 0 completed, 1 failed or
 * cancelled or still going at the timeout.
 */
static int wait_run(const struct ctl_client *c, const char *id, long timeout_s)
{
    char path[256];
    struct timespec t0, now;
    long delay_ms = 10;

    if (ctl_path(path, sizeof(path), "/executions/%s", id) != 0)
        return CTL_EXIT_USAGE;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct ctl_reply r;
        const cJSON *ex;
        const char *st;
        int rc = ctl_request_json(c, "GET", path, NULL, &r);

        if (rc != CTL_EXIT_OK)
            return rc;
        rc = ctl_reply_check(&r);
        ex = cJSON_GetObjectItemCaseSensitive(r.json, "execution");
        st = ctl_str(ex, "status");
        if (rc != CTL_EXIT_OK || st == NULL) {
            ctl_reply_free(&r);
            return rc != CTL_EXIT_OK ? rc : CTL_EXIT_REFUSED;
        }
        if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
            strcmp(st, "cancelled") == 0) {
            int ok = strcmp(st, "completed") == 0;
            char *text = cJSON_PrintUnformatted(
                cJSON_GetObjectItemCaseSensitive(ex, ok ? "output" : "error"));
            if (c->json)
                printf("%s\n", r.body);
            else
                printf("run %s %s: %s\n", id, st, text != NULL ? text : "null");
            free(text);
            ctl_reply_free(&r);
            return ok ? CTL_EXIT_OK : CTL_EXIT_REFUSED;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= timeout_s) {
            ctl_error("run %s is still %s after %ld s", id, st, timeout_s);
            ctl_reply_free(&r); /* st points into it */
            return CTL_EXIT_REFUSED;
        }
        ctl_reply_free(&r);
        usleep((useconds_t)delay_ms * 1000);
        if (delay_ms < 500)
            delay_ms *= 2;
    }
}

static int cmd_run(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    const cJSON *ex;
    cJSON *body, *input;
    char path[256], id[64] = "";
    const char *timeout = NULL;
    long timeout_s = 300;
    int rc, n, done, kept = 1, wait = 0;

    for (int i = 1; i < argc; i++) {
        int m = ctl_opt_value(argc, argv, &i, "--timeout", &timeout);
        if (m < 0)
            return CTL_EXIT_USAGE;
        if (m == 0 && strcmp(argv[i], "--wait") == 0)
            wait = 1;
        else if (m == 0)
            argv[kept++] = argv[i];
    }
    argc = kept;
    if (timeout != NULL) {
        char *end;
        timeout_s = strtol(timeout, &end, 10);
        if (*end != '\0' || timeout_s < 1 || timeout_s > 86400) {
            ctl_error("run: --timeout must be a number of seconds from 1 to 86400");
            return CTL_EXIT_USAGE;
        }
    }
    rc = ctl_check_args(argc, argv, 2, 3, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    input = cJSON_Parse(n == 3 ? argv[3] : "{}");
    if (input == NULL) {
        ctl_error("run: the input is not valid JSON: %.40s", argv[3]);
        return CTL_EXIT_USAGE;
    }
    body = cJSON_CreateObject();
    if (body == NULL || cJSON_AddStringToObject(body, "workflow", argv[2]) == NULL) {
        cJSON_Delete(body);
        cJSON_Delete(input);
        ctl_error("could not build the request: out of memory");
        return CTL_EXIT_REFUSED;
    }
    cJSON_AddItemToObject(body, "input", input); /* body owns input now */
    if (ctl_path(path, sizeof(path), "/projects/%s/executions", argv[1]) != 0) {
        cJSON_Delete(body);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_request_json(c, "POST", path, body, &r);
    cJSON_Delete(body);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (route_missing(&r)) {
        ctl_error("executions are not supported by this server yet");
        ctl_reply_free(&r);
        return CTL_EXIT_REFUSED;
    }
    if (!wait)
        ctl_print_raw(c, &r);
    rc = ctl_reply_check(&r);
    ex = r.json;
    if (rc == CTL_EXIT_OK && ctl_str(ex, "executionId") != NULL)
        snprintf(id, sizeof(id), "%s", ctl_str(ex, "executionId"));
    if (rc == CTL_EXIT_OK && !c->json) {
        if (id[0] != '\0')
            printf("%s run %s of %s (status %s)\n", r.status == 200 ? "existing" : "started", id,
                   argv[2], ctl_str(ex, "status") ? ctl_str(ex, "status") : "pending");
        else
            printf("%s\n", r.body);
    }
    ctl_reply_free(&r);
    if (rc == CTL_EXIT_OK && wait && id[0] != '\0')
        rc = wait_run(c, id, timeout_s);
    return rc;
}

/* `wfctl signal RUN NAME [JSON]`, `cancel RUN`, `retry RUN`. */
static int cmd_run_call(const struct ctl_client *c, int argc, char **argv)
{
    int is_signal = strcmp(argv[0], "signal") == 0;
    struct ctl_reply r;
    char path[512];
    cJSON *payload = NULL;
    int rc, n, done;

    rc = ctl_check_args(argc, argv, is_signal ? 2 : 1, is_signal ? 3 : 1, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    if (is_signal) {
        payload = cJSON_Parse(n == 3 ? argv[3] : "null");
        if (payload == NULL) {
            ctl_error("signal: the payload is not valid JSON: %.40s", argv[3]);
            return CTL_EXIT_USAGE;
        }
        rc = ctl_path(path, sizeof(path), "/executions/%s/signals/%s", argv[1], argv[2]);
    } else {
        rc = ctl_path(path, sizeof(path), "/executions/%s/%s", argv[1], argv[0]);
    }
    if (rc != 0) {
        cJSON_Delete(payload);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_request_json(c, "POST", path, payload, &r);
    cJSON_Delete(payload);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_print_raw(c, &r);
    rc = ctl_reply_check(&r);
    if (rc == CTL_EXIT_OK && !c->json) {
        if (is_signal)
            printf("signal %s sent to run %s\n", argv[2], argv[1]);
        else
            printf("run %s: %s\n", argv[1],
                   ctl_str(r.json, "status") != NULL ? ctl_str(r.json, "status") : "ok");
    }
    ctl_reply_free(&r);
    return rc;
}

/* `wfctl get RUN`: GET /executions/RUN, the run printed as indented JSON. */
static int cmd_get(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    char path[256], *text;
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 1, 1, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    if (ctl_path(path, sizeof(path), "/executions/%s", argv[1]) != 0)
        return CTL_EXIT_USAGE;
    rc = ctl_request_json(c, "GET", path, NULL, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (route_missing(&r)) {
        ctl_error("executions are not supported by this server yet");
        ctl_reply_free(&r);
        return CTL_EXIT_REFUSED;
    }
    ctl_print_raw(c, &r);
    rc = ctl_reply_check(&r);
    if (rc == CTL_EXIT_OK && !c->json) {
        text = cJSON_Print(cJSON_GetObjectItemCaseSensitive(r.json, "execution"));
        if (text == NULL) {
            ctl_error("could not print the run: the reply has no execution, or out of memory");
            rc = CTL_EXIT_REFUSED;
        } else {
            printf("%s\n", text);
            free(text);
        }
    }
    ctl_reply_free(&r);
    return rc;
}

/* Appends "?key=value" (or "&key=value" after the first) to the path in
 * buf, value percent-encoded. Returns 0, or -1 when it does not fit
 * (printed). */
static int query_put(char *buf, size_t size, const char *key, const char *value)
{
    char escaped[512];
    size_t at = strlen(buf);
    int n;

    if (ctl_path(escaped, sizeof(escaped), "%s", value) != 0)
        return -1;
    n = snprintf(buf + at, size - at, "%c%s=%s", strchr(buf, '?') != NULL ? '&' : '?', key,
                 escaped);
    if (n < 0 || (size_t)n >= size - at) {
        buf[at] = '\0';
        ctl_error("could not build the request path: an argument is too long");
        return -1;
    }
    return 0;
}

/* Prints the runs of one list reply as table rows (the header first when
 * *header is 0, which it then sets). */
static void print_run_rows(const cJSON *reply, int *header)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(reply, "executions"))
    {
        const char *id = ctl_str(it, "executionId"), *wf = ctl_str(it, "workflow");
        const char *st = ctl_str(it, "status"), *created = ctl_str(it, "createdAt");
        const char *done = ctl_str(it, "completedAt");

        if (!*header) {
            printf("%-36s  %-24s %-10s %-24s  %s\n", "ID", "WORKFLOW", "STATUS", "CREATED",
                   "COMPLETED");
            *header = 1;
        }
        printf("%-36s  %-24s %-10s %-24s  %s\n", id != NULL ? id : "?", wf != NULL ? wf : "?",
               st != NULL ? st : "?", created != NULL ? created : "-", done != NULL ? done : "-");
    }
}

/*
 * `wfctl ls P`: GET /projects/P/executions as a table, one page, or every
 * page with --all (following nextCursor; a cursor that comes back twice
 * ends the walk rather than looping). With --json, each page's reply is
 * printed as it is, one per line.
 */
static int cmd_ls(const struct ctl_client *c, int argc, char **argv)
{
    const char *status = NULL, *workflow = NULL, *limit = NULL, *parent = NULL;
    char base[512], path[1024], cursor[256] = "";
    struct ctl_reply r;
    int rc, n, done, kept = 1, all = 0, header = 0;
    long long total = 0;

    /* take the options out, then the common checks on what is left */
    for (int i = 1; i < argc; i++) {
        int m = ctl_opt_value(argc, argv, &i, "--status", &status);
        if (m == 0)
            m = ctl_opt_value(argc, argv, &i, "--workflow", &workflow);
        if (m == 0)
            m = ctl_opt_value(argc, argv, &i, "--limit", &limit);
        if (m == 0)
            m = ctl_opt_value(argc, argv, &i, "--parent", &parent);
        if (m < 0)
            return CTL_EXIT_USAGE;
        if (m == 0 && strcmp(argv[i], "--all") == 0)
            all = 1;
        else if (m == 0)
            argv[kept++] = argv[i];
    }
    rc = ctl_check_args(kept, argv, 1, 1, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    if (limit == NULL && all)
        limit = "1000"; /* fewest requests */
    if (ctl_path(base, sizeof(base), "/projects/%s/executions", argv[1]) != 0 ||
        (status != NULL && query_put(base, sizeof(base), "status", status) != 0) ||
        (workflow != NULL && query_put(base, sizeof(base), "workflow", workflow) != 0) ||
        (parent != NULL && query_put(base, sizeof(base), "parent", parent) != 0) ||
        (limit != NULL && query_put(base, sizeof(base), "limit", limit) != 0))
        return CTL_EXIT_USAGE;
    for (;;) {
        const cJSON *next;

        snprintf(path, sizeof(path), "%s", base);
        if (cursor[0] != '\0' && query_put(path, sizeof(path), "cursor", cursor) != 0)
            return CTL_EXIT_REFUSED;
        rc = ctl_request_json(c, "GET", path, NULL, &r);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (route_missing(&r)) {
            ctl_error("executions are not supported by this server yet");
            ctl_reply_free(&r);
            return CTL_EXIT_REFUSED;
        }
        ctl_print_raw(c, &r);
        rc = ctl_reply_check(&r);
        if (rc != CTL_EXIT_OK) {
            ctl_reply_free(&r);
            return rc;
        }
        if (!c->json)
            print_run_rows(r.json, &header);
        total += num_or(r.json, "count", 0);
        next = cJSON_GetObjectItemCaseSensitive(r.json, "nextCursor");
        if (!cJSON_IsString(next) || next->valuestring[0] == '\0' ||
            strcmp(next->valuestring, cursor) == 0 || strlen(next->valuestring) >= sizeof(cursor)) {
            ctl_reply_free(&r);
            break;
        }
        if (!all) {
            if (!c->json)
                printf("more runs follow: add --all to list them all\n");
            ctl_reply_free(&r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", next->valuestring);
        ctl_reply_free(&r);
    }
    if (!c->json && total == 0)
        printf("no runs%s\n", status != NULL || workflow != NULL ? " match" : "");
    return CTL_EXIT_OK;
}

/*
 * Takes the global options out of argv wherever they are (the remaining
 * arguments keep their order) and fills c. Returns the new argc, or -1 on
 * a usage error (printed).
 */
static int take_global_options(int argc, char **argv, struct ctl_client *c)
{
    int kept = 1;

    for (int i = 1; i < argc; i++) {
        const char *output = NULL;
        int m = ctl_opt_value(argc, argv, &i, "--url", &c->url);
        if (m == 0)
            m = ctl_opt_value(argc, argv, &i, "--token", &c->token);
        if (m == 0 && (m = ctl_opt_value(argc, argv, &i, "--output", &output)) > 0) {
            if (strcmp(output, "json") != 0 && strcmp(output, "table") != 0 &&
                strcmp(output, "text") != 0) {
                ctl_error("invalid --output \"%s\": json or table (text)", output);
                return -1;
            }
            c->json = strcmp(output, "json") == 0;
        }
        if (m < 0)
            return -1;
        if (m > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0)
            c->json = 1;
        else
            argv[kept++] = argv[i];
    }
    argv[kept] = NULL;
    return kept;
}

/* Strips trailing slashes from the URL into a malloc'ed copy (or NULL). */
static char *normalise_url(const char *url)
{
    size_t n = strlen(url);
    char *s;

    while (n > 0 && url[n - 1] == '/')
        n--;
    s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, url, n);
        s[n] = '\0';
    }
    return s;
}

int main(int argc, char **argv)
{
    struct ctl_client c = {getenv("WF_URL"), getenv("WF_API_TOKEN"), 0};
    const struct command *cmd;
    char *url;
    int rc;

    argc = take_global_options(argc, argv, &c);
    if (argc < 0)
        return CTL_EXIT_USAGE;
    if (argc < 2) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        cmd = argc > 2 ? find_command(argv[2]) : NULL;
        if (cmd != NULL)
            command_usage(stdout, cmd);
        else
            usage(stdout);
        return CTL_EXIT_OK;
    }
    cmd = find_command(argv[1]);
    if (cmd == NULL) {
        ctl_error("unknown command \"%s\" (see wfctl --help)", argv[1]);
        return CTL_EXIT_USAGE;
    }
    if (c.url == NULL || c.url[0] == '\0')
        c.url = CTL_DEFAULT_URL;
    url = normalise_url(c.url);
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        ctl_error("invalid --url \"%s\": must start with http:// or https://", c.url);
        free(url);
        return CTL_EXIT_USAGE;
    }
    c.url = url;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ctl_error("could not initialise libcurl");
        free(url);
        return CTL_EXIT_UNREACHABLE;
    }
    rc = cmd->fn(&c, argc - 1, argv + 1);
    curl_global_cleanup();
    free(url);
    fflush(stdout);
    return rc;
}
