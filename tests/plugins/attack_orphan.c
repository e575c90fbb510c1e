/*
 * attack_orphan.c: a hostile plugin that leaves processes behind, holding
 * the worker's sockets: a child that stays in the worker's process group,
 * and a grandchild that calls setsid() (a group and session of its own)
 * and is orphaned at once. Both sleep forever. The test checks both are
 * gone once the worker is. See attack.h.
 */
#include <signal.h>
#include <sys/wait.h>

#include "attack.h"

__attribute__((constructor)) static void attack(void)
{
    int pfd[2];
    pid_t child, mid;
    long orphan = 0;

    child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    if (child < 0) {
        attack_expect_fail("orphan", -1, "fork a child");
        return;
    }
    attack_say("orphan", "info", "child pid=%d", (int)child);

    if (pipe(pfd) < 0)
        return;
    mid = fork();
    if (mid == 0) {
        pid_t g;
        close(pfd[0]);
        (void)setsid();
        g = fork();
        if (g == 0) {
            close(pfd[1]);
            (void)setsid();
            for (;;)
                pause();
        }
        if (g > 0) {
            long v = (long)g;
            ssize_t w = write(pfd[1], &v, sizeof(v));
            (void)w;
        }
        _exit(0); /* orphans the grandchild */
    }
    close(pfd[1]);
    if (mid < 0 || read(pfd[0], &orphan, sizeof(orphan)) != (ssize_t)sizeof(orphan)) {
        attack_expect_fail("orphan", -1, "fork a grandchild");
    } else {
        attack_say("orphan", "info", "orphan pid=%ld", orphan);
    }
    close(pfd[0]);
    if (mid > 0)
        (void)waitpid(mid, NULL, 0);
}

ATTACK_PLUGIN("attack-orphan")
