/*
 * schedule.h: `wfctl schedule add|ls|get|pause|resume|rm`, the cron
 * schedules of a project (docs/schedules.md) from the command line.
 */
#ifndef WF_TOOLS_SCHEDULE_H
#define WF_TOOLS_SCHEDULE_H

#include <stdio.h>

#include "client.h"

/* Prints the usage of `wfctl schedule` to f. */
void ctl_schedule_usage(FILE *f);

/*
 * Runs `wfctl schedule` with its own arguments (argv[0] is "schedule").
 * Returns a ctl_exit status; every failure is printed.
 */
int ctl_schedule_main(const struct ctl_client *c, int argc, char **argv);

#endif /* WF_TOOLS_SCHEDULE_H */
