/*
 * admin.c: see admin.h. Each command is one request through client.c;
 * output is readable by default, or the server's reply as it is with
 * --json (--output json). Probes and metrics need no token; the server
 * answers them either way.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_cmd_project(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    const cJSON *p;
    char path[256];
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 1, 1, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    if (ctl_path(path, sizeof(path), "/projects/%s", argv[1]) < 0)
        return CTL_EXIT_REFUSED;
    rc = ctl_call(c, "GET", path, NULL, &r);
    if (rc != CTL_EXIT_OK || c->json) {
        ctl_reply_free(&r);
        return rc;
    }
    p = cJSON_GetObjectItemCaseSensitive(r.json, "project");
    printf("project %s\n  name           %s\n  desired state  %s\n  created        %s\n",
           ctl_str(p, "id") ? ctl_str(p, "id") : "?", ctl_str(p, "name") ? ctl_str(p, "name") : "",
           ctl_str(p, "desiredState") ? ctl_str(p, "desiredState") : "?",
           ctl_str(p, "createdAt") ? ctl_str(p, "createdAt") : "?");
    ctl_reply_free(&r);
    return CTL_EXIT_OK;
}

int ctl_cmd_undeploy(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    char path[512];
    int rc, n, done, workflow;

    rc = ctl_check_args(argc, argv, 3, 3, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    workflow = strcmp(argv[2], "workflow") == 0;
    if (!workflow && strcmp(argv[2], "activity") != 0) {
        ctl_error("undeploy: the kind is workflow or activity, not \"%s\"", argv[2]);
        return CTL_EXIT_USAGE;
    }
    if (ctl_path(path, sizeof(path),
                 workflow ? "/projects/%s/workflows/%s" : "/projects/%s/activities/%s", argv[1],
                 argv[3]) < 0)
        return CTL_EXIT_REFUSED;
    rc = ctl_call(c, "DELETE", path, NULL, &r);
    if (rc == CTL_EXIT_OK && !c->json)
        printf("deactivated %s %s of project %s; restart its worker to unload it (wfctl restart "
               "%s)\n",
               argv[2], argv[3], argv[1], argv[1]);
    ctl_reply_free(&r);
    return rc;
}

int ctl_cmd_health(const struct ctl_client *c, int argc, char **argv)
{
    const char *path = "/health";
    struct ctl_reply r;
    int rc, n = 0, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--live") == 0) {
            path = "/health/live";
        } else if (strcmp(argv[i], "--ready") == 0) {
            path = "/health/ready";
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: wfctl health [--live|--ready]\n\n"
                   "The server's health (/health), liveness (--live) or readiness (--ready:\n"
                   "database, core, manager, migrations). Exits 0 when it is good, 1 when\n"
                   "not (503), 2 when the server cannot be reached.\n");
            return CTL_EXIT_OK;
        } else {
            n++;
        }
    }
    if (n > 0) {
        ctl_error("health: takes only --live or --ready (see wfctl health --help)");
        return CTL_EXIT_USAGE;
    }
    rc = ctl_request_json(c, "GET", path, NULL, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (c->json) {
        ctl_print_raw(c, &r);
    } else {
        const cJSON *checks = cJSON_GetObjectItemCaseSensitive(r.json, "checks"), *k;
        const char *status = ctl_str(r.json, "status");
        printf("%s: %s", path + 1, status != NULL ? status : r.body);
        if (ctl_str(r.json, "database") != NULL)
            printf(" (database %s)", ctl_str(r.json, "database"));
        printf("\n");
        cJSON_ArrayForEach(k, checks)
        {
            printf("  %-12s %s\n", k->string, cJSON_IsString(k) ? k->valuestring : "?");
        }
    }
    rc = r.status >= 200 && r.status < 300 ? CTL_EXIT_OK : CTL_EXIT_REFUSED;
    ctl_reply_free(&r);
    return rc;
}

/* Prints the reply's body, or its lines starting with prefix (and their
 * HELP/TYPE lines). */
static void print_lines(const char *body, const char *prefix)
{
    const char *line = body;

    while (line != NULL && *line != '\0') {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        const char *name = line;

        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)
            name = line + 7;
        if (prefix == NULL || strncmp(name, prefix, strlen(prefix)) == 0)
            printf("%.*s\n", (int)len, line);
        line = nl != NULL ? nl + 1 : NULL;
    }
}

int ctl_cmd_metrics(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 0, 1, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    rc = ctl_request(c, "GET", "/metrics", NULL, 0, NULL, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = ctl_reply_check(&r);
    if (rc == CTL_EXIT_OK)
        print_lines(r.body, n == 1 ? argv[1] : NULL);
    ctl_reply_free(&r);
    return rc;
}

int ctl_cmd_openapi(const struct ctl_client *c, int argc, char **argv)
{
    struct ctl_reply r;
    int rc, n, done;

    rc = ctl_check_args(argc, argv, 0, 0, &n, &done);
    if (rc != CTL_EXIT_OK || done)
        return rc;
    rc = ctl_request(c, "GET", "/openapi.yaml", NULL, 0, NULL, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = ctl_reply_check(&r);
    if (rc == CTL_EXIT_OK)
        fwrite(r.body, 1, r.len, stdout);
    ctl_reply_free(&r);
    return rc;
}
