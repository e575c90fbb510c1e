/*
 * attack_ptrace.c: a hostile plugin that tries to ptrace the manager, core
 * and other projects' workers (PTRACE_ATTACH and PTRACE_SEIZE). A tracee
 * it did get is detached at once. See attack.h.
 */
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "attack.h"

static void trace(long pid, const char *who, enum __ptrace_request req, const char *how)
{
    char what[128];
    long rc;

    snprintf(what, sizeof(what), "%s the %s (pid %ld)", how, who, pid);
    rc = ptrace(req, (pid_t)pid, NULL, NULL);
    attack_expect_fail("ptrace", rc, what);
    if (rc == 0) {
        if (req == PTRACE_ATTACH)
            (void)waitpid((pid_t)pid, NULL, __WALL);
        (void)ptrace(PTRACE_DETACH, (pid_t)pid, NULL, NULL);
    }
}

__attribute__((constructor)) static void attack(void)
{
    long pids[16];
    const char *names[16];
    int n = attack_targets("ptrace", pids, names, 16);

    for (int i = 0; i < n; i++) {
        trace(pids[i], names[i], PTRACE_SEIZE, "PTRACE_SEIZE");
        trace(pids[i], names[i], PTRACE_ATTACH, "PTRACE_ATTACH");
    }
}

ATTACK_PLUGIN("attack-ptrace")
