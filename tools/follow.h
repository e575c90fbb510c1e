/*
 * follow.h: `wfctl events RUN`, which follows a run live through its event
 * stream (GET /executions/{id}/events, docs/api.md "Live events") and
 * exits when the run ends.
 *
 * A dropped stream is opened again with the last event id received
 * (Last-Event-ID), so a server restart or a network blip loses no event;
 * the server's own resume rules make sure none is printed twice. Output:
 * one readable line per event, or with --output json (or the global
 * --json) each event's JSON on one line, as the server sent it.
 */
#ifndef WF_TOOLS_FOLLOW_H
#define WF_TOOLS_FOLLOW_H

#include <stdio.h>

#include "client.h"

/* Prints the usage of `wfctl events` to f. */
void ctl_events_usage(FILE *f);

/*
 * Runs `wfctl events` with its own arguments (argv[0] is "events").
 * Returns CTL_EXIT_OK when the run completed, CTL_EXIT_REFUSED when it
 * failed or was cancelled, or the server refused the stream (printed),
 * CTL_EXIT_UNREACHABLE when the server could not be reached
 * CTL_FOLLOW_RETRIES times in a row, CTL_EXIT_USAGE on a bad command line.
 */
int ctl_events_main(const struct ctl_client *c, int argc, char **argv);

#endif /* WF_TOOLS_FOLLOW_H */
