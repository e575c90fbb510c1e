/*
 * spawn.c: the manager's children: core by fork; workers, and the
 * short-lived describers of uploaded plugins, by posix_spawn of the worker
 * program.
 *
 * Workers are started with posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)
 * then exec), which does not copy the manager's page tables as fork would:
 * about 1 ms less per worker on the benchmark machine (3.4-3.7 ms against
 * 4.4-4.7 ms for fork+exec of wf-worker from a process linking libpq and
 * libmicrohttpd, 100 runs each).
 *
 * The child set-up order matters (DESIGN §2, STYLE §15), and each step is
 * done with async-signal-safe calls only:
 *   1. reset the signal mask and every handler to default (the manager blocks
 *      signals for its signalfd and ignores SIGPIPE; both would be inherited);
 *   2. move the child's own sockets to fds 3 and 4 and close every other
 *      inherited descriptor (listen socket, epoll, signalfd, other workers'
 *      sockets); a worker or describer also leads a process group of its
 *      own (killed as a whole when it stops or dies);
 *   3. PR_SET_PDEATHSIG(SIGTERM), then check the manager is still our parent
 *      (it may have died before the prctl); a worker does this itself right
 *      after exec (posix_spawn cannot), against the pid in its argv;
 *   4. exec the worker program with a minimal environment (no DATABASE_URL,
 *      no credentials), or enter the core role.
 * A child that fails a step writes one line to stderr and _exits 111.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
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

/*
 * posix_spawns the worker program with argv, fd_a and fd_b as fds 3 and 4,
 * /dev/null as stdin, a default signal disposition and an empty mask, its
 * own process group, and the manager's minimal environment plus extra
 * (NULL-terminated, may be NULL). Returns the pid, or -1 with errno.
 */
static pid_t spawn_program(struct mgr *m, char *const *argv, int fd_a, int fd_b, char *const *extra)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    char *envp[sizeof(m->worker_env) / sizeof(m->worker_env[0]) + 4];
    size_t n = 0;
    pid_t pid;
    int rc;

    for (; m->worker_env[n] != NULL; n++)
        envp[n] = m->worker_env[n];
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < sizeof(envp) / sizeof(envp[0]);
         i++)
        envp[n++] = extra[i];
    envp[n] = NULL;

    /* Our descriptors are created after the listener, signalfd and epoll,
     * so never 0..4; the dup2s below rely on it. */
    if (fd_a < 5 || fd_b < 5) {
        errno = EBADF;
        return -1;
    }
    /* Steps 1 and 2 of the header, done by posix_spawn in the child; the
     * program does step 3 itself (PR_SET_PDEATHSIG, then compares its
     * parent with the pid in its argv), as its first action after exec. */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE); /* the only signal the manager ignores */
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    rc = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, fd_a, 3);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, fd_b, 4);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 5);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &dfl);
    /* Its own process group: a stop or a crash kills the whole group, so
     * nothing a plugin forks outlives its worker (DESIGN §2). */
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                 POSIX_SPAWN_SETPGROUP);
    if (rc == 0) {
        fflush(NULL);
        rc = posix_spawn(&pid, m->worker_prog, &fa, &attr, argv, envp);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

pid_t spawn_worker(struct mgr *m, const char *project, const char *worker_id, int ctl_fd,
                   int work_fd)
{
    static char worker_arg[] = "worker";
    char hb[24], parent[24];
    char proj[WF_ID_MAX + 1];
    char wid[160];
    char *argv[7];
    char scratch[PATH_MAX];
    char scratch_env[PATH_MAX + 32], tmpdir_env[PATH_MAX + 32];
    char *extra[3] = {scratch_env, tmpdir_env, NULL};

    /* Its private scratch directory: the one place it may write. */
    if (scr_project(m, project, scratch, sizeof(scratch)) < 0)
        return -1; /* the caller logs errno */
    snprintf(scratch_env, sizeof(scratch_env), "WF_SCRATCH_DIR=%s", scratch);
    snprintf(tmpdir_env, sizeof(tmpdir_env), "TMPDIR=%s", scratch);

    snprintf(hb, sizeof(hb), "%d", m->cfg->heartbeat_ms);
    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    snprintf(proj, sizeof(proj), "%s", project);
    snprintf(wid, sizeof(wid), "%s", worker_id);
    argv[0] = m->worker_prog;
    argv[1] = worker_arg;
    argv[2] = proj;
    argv[3] = wid;
    argv[4] = hb;
    argv[5] = parent;
    argv[6] = NULL;
    return spawn_program(m, argv, ctl_fd, work_fd, extra);
}

pid_t spawn_describer(struct mgr *m, const char *label, int memfd, int out_fd)
{
    static char describe_arg[] = "describe";
    char lab[160], parent[24];
    char *argv[5];

    snprintf(lab, sizeof(lab), "%s", label);
    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    argv[0] = m->worker_prog;
    argv[1] = describe_arg;
    argv[2] = lab;
    argv[3] = parent;
    argv[4] = NULL;
    return spawn_program(m, argv, memfd, out_fd, NULL);
}
