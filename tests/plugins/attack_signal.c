/*
 * attack_signal.c: a hostile plugin that signals the manager, core, other
 * projects' workers and every process it may (kill(-1)), through kill,
 * tgkill, rt_sigqueueinfo and pidfd_send_signal. The signal is SIGWINCH,
 * ignored by default, so a success is reported and harms nothing. See
 * attack.h.
 */
#include <signal.h>
#include <sys/syscall.h>

#include "attack.h"

static void signal_one(long pid, const char *who)
{
    char what[160];
    siginfo_t si;
    long fd;

    snprintf(what, sizeof(what), "kill the %s (pid %ld)", who, pid);
    attack_expect_fail("signal", kill((pid_t)pid, SIGWINCH), what);
    /* Probing is not harm, only a hint: reported, never a success. */
    if (kill((pid_t)pid, 0) == 0)
        attack_say("signal", "info", "signal 0 reaches the %s (pid %ld)", who, pid);
    snprintf(what, sizeof(what), "tgkill the %s (pid %ld)", who, pid);
    attack_expect_fail("signal", syscall(SYS_tgkill, pid, pid, SIGWINCH), what);
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGWINCH;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    snprintf(what, sizeof(what), "rt_sigqueueinfo the %s (pid %ld)", who, pid);
    attack_expect_fail("signal", syscall(SYS_rt_sigqueueinfo, pid, SIGWINCH, &si), what);
    fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        snprintf(what, sizeof(what), "pidfd_send_signal the %s (pid %ld)", who, pid);
        attack_expect_fail("signal", syscall(SYS_pidfd_send_signal, fd, SIGWINCH, NULL, 0), what);
        close((int)fd);
    }
}

__attribute__((constructor)) static void attack(void)
{
    long pids[16];
    const char *names[16];
    int n = attack_targets("signal", pids, names, 16);

    for (int i = 0; i < n; i++)
        signal_one(pids[i], names[i]);
    /* Every process we may signal (ourselves included: not a success). */
    attack_expect_fail("signal", kill(-1, SIGWINCH), "kill(-1), every process of the uid");
}

ATTACK_PLUGIN("attack-signal")
