/*
 * schedule.c: `wfctl schedule`, the schedules of docs/schedules.md from the
 * command line: add, ls, get, pause, resume, rm. Each subcommand is one
 * request through client.c; output is a table or the schedule's JSON, or
 * the server's raw reply with --json. Arguments are checked here only as
 * far as the command line goes: the server validates the expression and
 * the zone and says what is wrong.
 */
#include "schedule.h"

#include <stdlib.h>
#include <string.h>

void ctl_schedule_usage(FILE *f)
{
    fputs("usage: wfctl schedule add P WORKFLOW 'CRON' [--input JSON] [--timezone TZ]\n"
          "                            [--missed fire-once|skip] [--paused]\n"
          "       wfctl schedule ls P\n"
          "       wfctl schedule get|pause|resume|rm ID\n"
          "\n"
          "Cron schedules: each tick of CRON (5 fields: minute hour day-of-month\n"
          "month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly) in\n"
          "the zone TZ (an IANA name; default UTC) starts one run of WORKFLOW with\n"
          "the JSON input, once across every server sharing the database.\n"
          "\n"
          "  add     create a schedule; prints its id and next fire times\n"
          "  ls      P's schedules: state, next fire time, last run\n"
          "  get     one schedule as JSON\n"
          "  pause   no tick fires until it is resumed\n"
          "  resume  fire again from the next tick after now\n"
          "  rm      delete it (the runs it started are kept)\n"
          "\n"
          "options of add:\n"
          "  --input JSON    every run's input (default null)\n"
          "  --timezone TZ   the zone CRON is read in, e.g. Europe/Berlin\n"
          "  --missed M      ticks missed while no server ran: fire-once (default)\n"
          "                  starts one run for the latest, skip starts none\n"
          "  --paused        create it paused\n"
          "\n"
          "Global options (--url, --token, --json): see wfctl --help.\n",
          f);
}

/* Prints a schedule's id, state and next fire times. */
static void print_schedule(const cJSON *s)
{
    const cJSON *t, *times = cJSON_GetObjectItemCaseSensitive(s, "nextFireTimes");
    const char *last = ctl_str(s, "lastExecutionId"), *err = ctl_str(s, "lastError");

    printf("schedule %s: %s \"%s\" (%s), workflow %s, missed ticks: %s\n",
           ctl_str(s, "id") ? ctl_str(s, "id") : "?",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "paused")) ? "paused" : "cron",
           ctl_str(s, "cron") ? ctl_str(s, "cron") : "?",
           ctl_str(s, "timezone") ? ctl_str(s, "timezone") : "UTC",
           ctl_str(s, "workflow") ? ctl_str(s, "workflow") : "?",
           ctl_str(s, "missed") ? ctl_str(s, "missed") : "?");
    if (cJSON_GetArraySize(times) == 0)
        printf("  no next fire time\n");
    cJSON_ArrayForEach(t, times)
    {
        if (cJSON_IsString(t))
            printf("  next: %s\n", t->valuestring);
    }
    if (last != NULL)
        printf("  last run: %s\n", last);
    if (err != NULL)
        printf("  last error: %s\n", err);
}

static int sched_add(const struct ctl_client *c, int argc, char **argv)
{
    const char *pos[3], *input = NULL, *tz = NULL, *missed = NULL;
    int npos = 0, paused = 0, rc;
    char path[256];
    struct ctl_reply r;
    cJSON *body, *in = NULL;

    for (int i = 1; i < argc; i++) {
        int got = 0;
        if ((got = ctl_opt_value(argc, argv, &i, "--input", &input)) != 0 ||
            (got = ctl_opt_value(argc, argv, &i, "--timezone", &tz)) != 0 ||
            (got = ctl_opt_value(argc, argv, &i, "--missed", &missed)) != 0) {
            if (got < 0)
                return CTL_EXIT_USAGE;
            continue;
        }
        if (strcmp(argv[i], "--paused") == 0) {
            paused = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            ctl_error("schedule add: unknown option %s (see wfctl schedule --help)", argv[i]);
            return CTL_EXIT_USAGE;
        } else if (npos == 3) {
            ctl_error("schedule add: too many arguments (quote the cron expression)");
            return CTL_EXIT_USAGE;
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (npos < 3) {
        ctl_error("schedule add: missing arguments (usage: wfctl schedule add P WORKFLOW 'CRON')");
        return CTL_EXIT_USAGE;
    }
    if (input != NULL && (in = cJSON_Parse(input)) == NULL) {
        ctl_error("schedule add: --input is not valid JSON");
        return CTL_EXIT_USAGE;
    }
    if (ctl_path(path, sizeof(path), "/projects/%s/schedules", pos[0]) < 0) {
        cJSON_Delete(in);
        return CTL_EXIT_REFUSED;
    }
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "workflow", pos[1]);
    cJSON_AddStringToObject(body, "cron", pos[2]);
    if (in != NULL)
        cJSON_AddItemToObject(body, "input", in);
    if (tz != NULL)
        cJSON_AddStringToObject(body, "timezone", tz);
    if (missed != NULL)
        cJSON_AddStringToObject(body, "missed", missed);
    if (paused)
        cJSON_AddTrueToObject(body, "paused");
    rc = ctl_call(c, "POST", path, body, &r);
    cJSON_Delete(body);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!c->json)
        print_schedule(cJSON_GetObjectItemCaseSensitive(r.json, "schedule"));
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

static int sched_ls(const struct ctl_client *c, const char *project)
{
    char path[256];
    struct ctl_reply r;
    const cJSON *s, *arr;
    int rc;

    if (ctl_path(path, sizeof(path), "/projects/%s/schedules", project) < 0)
        return CTL_EXIT_REFUSED;
    rc = ctl_call(c, "GET", path, NULL, &r);
    if (rc != CTL_EXIT_OK || c->json) {
        ctl_reply_free(&r);
        return rc;
    }
    arr = cJSON_GetObjectItemCaseSensitive(r.json, "schedules");
    if (cJSON_GetArraySize(arr) == 0) {
        printf("no schedules\n");
    } else {
        printf("%-36s  %-20s  %-18s  %-16s  %-7s  %-20s  %s\n", "ID", "WORKFLOW", "CRON",
               "TIMEZONE", "STATE", "NEXT", "LAST RUN");
        cJSON_ArrayForEach(s, arr)
        {
            const char *next = ctl_str(s, "nextFireAt"), *last = ctl_str(s, "lastExecutionId");
            printf("%-36s  %-20s  %-18s  %-16s  %-7s  %-20s  %s\n",
                   ctl_str(s, "id") ? ctl_str(s, "id") : "?",
                   ctl_str(s, "workflow") ? ctl_str(s, "workflow") : "?",
                   ctl_str(s, "cron") ? ctl_str(s, "cron") : "?",
                   ctl_str(s, "timezone") ? ctl_str(s, "timezone") : "?",
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "paused")) ? "paused"
                                                                               : "active",
                   next != NULL ? next : "-",
                   ctl_str(s, "lastError") != NULL ? ctl_str(s, "lastError")
                   : last != NULL                  ? last
                                                   : "-");
        }
    }
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

/* get, pause, resume, rm: one request on /schedules/ID[/verb]. */
static int sched_one(const struct ctl_client *c, const char *sub, const char *id)
{
    const char *method = strcmp(sub, "get") == 0  ? "GET"
                         : strcmp(sub, "rm") == 0 ? "DELETE"
                                                  : "POST";
    char path[256], *text;
    struct ctl_reply r;
    int rc;
    const char *fmt = strcmp(sub, "pause") == 0    ? "/schedules/%s/pause"
                      : strcmp(sub, "resume") == 0 ? "/schedules/%s/resume"
                                                   : "/schedules/%s";

    if (ctl_path(path, sizeof(path), fmt, id) < 0)
        return CTL_EXIT_REFUSED;
    rc = ctl_call(c, method, path, NULL, &r);
    if (rc != CTL_EXIT_OK || c->json) {
        ctl_reply_free(&r);
        return rc;
    }
    if (strcmp(sub, "rm") == 0) {
        printf("deleted schedule %s\n", id);
    } else if (strcmp(sub, "get") == 0) {
        text = cJSON_Print(cJSON_GetObjectItemCaseSensitive(r.json, "schedule"));
        printf("%s\n", text != NULL ? text : "{}");
        free(text);
    } else {
        print_schedule(cJSON_GetObjectItemCaseSensitive(r.json, "schedule"));
    }
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

int ctl_schedule_main(const struct ctl_client *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ctl_schedule_usage(stdout);
            return CTL_EXIT_OK;
        }
    if (sub == NULL) {
        ctl_error("schedule: missing subcommand (add, ls, get, pause, resume or rm)");
        return CTL_EXIT_USAGE;
    }
    if (strcmp(sub, "add") == 0)
        return sched_add(c, argc - 1, argv + 1);
    if (strcmp(sub, "ls") == 0 || strcmp(sub, "get") == 0 || strcmp(sub, "pause") == 0 ||
        strcmp(sub, "resume") == 0 || strcmp(sub, "rm") == 0) {
        if (argc != 3 || argv[2][0] == '-') {
            ctl_error("schedule %s: takes exactly one argument, %s", sub,
                      strcmp(sub, "ls") == 0 ? "the project" : "the schedule's id");
            return CTL_EXIT_USAGE;
        }
        return strcmp(sub, "ls") == 0 ? sched_ls(c, argv[2]) : sched_one(c, sub, argv[2]);
    }
    ctl_error("schedule: unknown subcommand \"%s\" (add, ls, get, pause, resume or rm)", sub);
    return CTL_EXIT_USAGE;
}
