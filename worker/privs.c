/*
 * privs.c: switching a worker to its unprivileged user (see privs.h).
 *
 * Order matters: supplementary groups and the gid first (they need root),
 * the uid last; then a check that root cannot be regained, because a
 * half-done switch must never run plugin code.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "config.h"

/* Reads a non-root id from the environment variable name. */
static int env_id(const char *name, long *out, char *err, size_t errlen)
{
    const char *s = getenv(name);

    if (s == NULL || config_parse_long(s, 1, 0x7fffffffL, out) < 0) {
        snprintf(err, errlen, "refusing to run plugin code as root: %s is %s", name,
                 s == NULL ? "not set" : "not a non-root id");
        return -1;
    }
    return 0;
}

int privs_drop(char *err, size_t errlen)
{
    long uid, gid;
    uid_t r, e, s;

    if (geteuid() == 0 || getuid() == 0) {
        if (env_id("WF_WORKER_UID", &uid, err, errlen) < 0 ||
            env_id("WF_WORKER_GID", &gid, err, errlen) < 0)
            return -1;
        if (setgroups(0, NULL) < 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0 ||
            setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0) {
            snprintf(err, errlen, "could not switch to uid %ld gid %ld: %s", uid, gid,
                     strerror(errno));
            return -1;
        }
        if (getresuid(&r, &e, &s) < 0 || r != (uid_t)uid || e != (uid_t)uid || s != (uid_t)uid ||
            setuid(0) == 0) {
            snprintf(err, errlen, "could not drop root for good (uid %ld)", uid);
            return -1;
        }
    }
    (void)unsetenv("WF_WORKER_UID");
    (void)unsetenv("WF_WORKER_GID");
    if (prctl(PR_SET_DUMPABLE, 0) < 0) {
        snprintf(err, errlen, "could not make the process undumpable: %s", strerror(errno));
        return -1;
    }
    return 0;
}
