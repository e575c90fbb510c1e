/*
 * spawn.c: fork (and exec, for workers) of the manager's children.
 *
 * The child set-up order matters (DESIGN §2, STYLE §15), and each step is
 * done with async-signal-safe calls only:
 *   1. reset the signal mask and every handler to default (the manager blocks
 *      signals for its signalfd and ignores SIGPIPE; both would be inherited);
 *   2. move the child's own sockets to fds 3 and 4 and close every other
 *      inherited descriptor (listen socket, epoll, signalfd, other workers'
 *      sockets);
 *   3. PR_SET_PDEATHSIG(SIGTERM), then check the manager is still our parent
 *      (it may have died before the prctl);
 *   4. exec the worker program with a minimal environment (no DATABASE_URL,
 *      no credentials), or enter the core role.
 * A child that fails a step writes one line to stderr and _exits 111.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core.h"
#include "exitcodes.h"
#include "log.h"
#include "manager.h"

/* Writes a constant message to stderr and exits; safe after fork. */
static void child_fail(const char *what)
{
    const char *pre = "wf-server: child set-up failed: ";
    ssize_t r;

    r = write(STDERR_FILENO, pre, strlen(pre));
    r = write(STDERR_FILENO, what, strlen(what));
    r = write(STDERR_FILENO, "\n", 1);
    (void)r;
    _exit(WF_EXIT_SYSCALL);
}

/* Steps 1-3 above; a and b end up as fds 3 and 4 (b may be -1). */
static void child_prepare(int a, int b, pid_t parent)
{
    struct sigaction sa;
    sigset_t all;
    int ta, tb = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL);
    }
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    /* Park both above 4 first so neither dup2 clobbers the other. */
    ta = fcntl(a, F_DUPFD_CLOEXEC, 5);
    if (ta < 0)
        child_fail("could not duplicate socket");
    if (b >= 0) {
        tb = fcntl(b, F_DUPFD_CLOEXEC, 5);
        if (tb < 0)
            child_fail("could not duplicate socket");
    }
    if (dup2(ta, 3) < 0)
        child_fail("could not move socket to fd 3");
    if (tb >= 0) {
        if (dup2(tb, 4) < 0)
            child_fail("could not move socket to fd 4");
    } else {
        close(4);
    }
    if (close_range(5, ~0U, 0) < 0)
        child_fail("could not close inherited descriptors");

    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        child_fail("could not set parent death signal");
    if (getppid() != parent)
        _exit(WF_EXIT_OK); /* the manager is already gone */
}

pid_t spawn_core(struct mgr *m, int ctl_fd)
{
    pid_t parent = getpid();
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid != 0)
        return pid;
    child_prepare(ctl_fd, m->listen_fd, parent);
    prctl(PR_SET_NAME, "wf-core");
    log_set_role("core");
    _exit(core_main(m->cfg, 3, 4));
}

pid_t spawn_worker(struct mgr *m, const char *project, const char *worker_id, int ctl_fd,
                   int work_fd)
{
    static char worker_arg[] = "worker";
    char hb[24];
    char proj[WF_ID_MAX + 1];
    char wid[160];
    char *argv[6];
    pid_t parent = getpid();
    pid_t pid;
    int devnull;

    /* Everything the child needs is prepared before fork. */
    snprintf(hb, sizeof(hb), "%d", m->cfg->heartbeat_ms);
    argv[0] = m->worker_prog;
    snprintf(proj, sizeof(proj), "%s", project);
    snprintf(wid, sizeof(wid), "%s", worker_id);
    argv[1] = worker_arg;
    argv[2] = proj;
    argv[3] = wid;
    argv[4] = hb;
    argv[5] = NULL;
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

    fflush(NULL);
    pid = fork();
    if (pid != 0) {
        if (devnull >= 0)
            close(devnull);
        return pid;
    }
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    child_prepare(ctl_fd, work_fd, parent);
    execve(m->worker_prog, argv, m->worker_env);
    child_fail("could not execute worker program");
    return -1;
}
