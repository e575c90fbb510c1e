/*
 * admin.h: the commands of wfctl that complete the REST API beyond runs,
 * code and schedules: project (GET /projects/{id}), undeploy (DELETE
 * .../workflows|activities/{name}), health (/health, /health/live,
 * /health/ready), metrics (/metrics) and openapi (/openapi.yaml).
 */
#ifndef WF_TOOLS_ADMIN_H
#define WF_TOOLS_ADMIN_H

#include "client.h"

int ctl_cmd_project(const struct ctl_client *c, int argc, char **argv);
int ctl_cmd_undeploy(const struct ctl_client *c, int argc, char **argv);
int ctl_cmd_health(const struct ctl_client *c, int argc, char **argv);
int ctl_cmd_metrics(const struct ctl_client *c, int argc, char **argv);
int ctl_cmd_openapi(const struct ctl_client *c, int argc, char **argv);

/*
 * wfctl.c's common argument check: prints the command's usage for --help
 * (returns CTL_EXIT_OK with *done set), refuses unknown options, and
 * checks the count of positional arguments is in [min, max]; positionals
 * are compacted to argv[1..*npos]. Returns CTL_EXIT_OK or CTL_EXIT_USAGE.
 */
int ctl_check_args(int argc, char **argv, int min, int max, int *npos, int *done);

#endif /* WF_TOOLS_ADMIN_H */
