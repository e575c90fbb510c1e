/*
 * exitcodes.h: the documented exit statuses of wf-server (docs/operations.md),
 * so that a supervisor or a test can classify a failure (s6: 100 usage,
 * 111 system call).
 */
#ifndef WF_EXITCODES_H
#define WF_EXITCODES_H

#define WF_EXIT_OK 0           /* clean shutdown */
#define WF_EXIT_FAILURE 1      /* unexpected runtime failure; worker: load error */
#define WF_EXIT_PROTOCOL 2     /* worker: protocol error on a socket (restarted as a crash) */
#define WF_EXIT_USAGE 100      /* bad command line or invalid configuration */
#define WF_EXIT_SYSCALL 111    /* a system call failed before the main loop */
#define WF_EXIT_DATABASE 112   /* the database is unusable (migration failed) */
#define WF_EXIT_HOST_TAKEN 113 /* another server with this WF_HOST_ID holds this database */

#endif
