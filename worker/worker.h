/*
 * worker.h: the worker role, a sandbox for one project's code.
 *
 * A worker is exec'd by the manager (`wf-server worker <project> <worker_id>
 * <heartbeat_ms>`) with its control socket to the manager on fd 3 and its
 * work socket to core on fd 4, and a minimal environment: it holds no
 * database connection and no credentials.
 */
#ifndef WF_WORKER_H
#define WF_WORKER_H

/* Runs the worker role; returns the process exit status (0 stopped after a
 * drain, 1 could not load the project's code, 2 protocol error on a socket,
 * 100 usage). */
int worker_main(int argc, char **argv);

/* Runs the describe mode (`… describe <label> <manager pid>`, describe.c):
 * loads the plugin on fd 3 and writes its description to fd 4. Returns 0
 * (described), 1 (could not be loaded) or 100 (usage). */
int describe_main(int argc, char **argv);

#endif
