/*
 * privs.h: the first thing a worker or describer does after exec, before
 * anything else runs in it: give up the server's identity.
 *
 * When the manager runs as root it passes the unprivileged user its
 * workers run as (WF_WORKER_UID, WF_WORKER_GID, from WF_WORKER_USER); the
 * program switches every uid and gid to it and drops the supplementary
 * groups, and checks it cannot switch back. A program that finds itself
 * root with no such user refuses to run plugin code. In every case it then
 * makes itself undumpable, so other projects' workers (the same uid) cannot
 * read its memory or ptrace it. A credential change resets the parent-death
 * signal: callers set it after this.
 */
#ifndef WF_PRIVS_H
#define WF_PRIVS_H

#include <stddef.h>

/* Returns 0, or -1 with a one-line reason in err. */
int privs_drop(char *err, size_t errlen);

#endif
