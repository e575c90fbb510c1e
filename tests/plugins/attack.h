/*
 * attack.h: what the hostile test plugins (attack_*.c) share. Each plugin
 * attempts its attacks from a constructor, so they run as soon as the
 * plugin is dlopen'ed (by the deploy-time describer and by the worker),
 * before the loader sees an entry point, and then defines a harmless
 * plugin so loading goes on.
 *
 * Every outcome is one line on stderr, which the server's log collects:
 *   wf-attack <role> <attack>: blocked <what> (<errno name>)
 *   wf-attack <role> <attack>: contained <what>
 *   wf-attack <role> <attack>: SUCCEEDED <what>
 *   wf-attack <role> <attack>: info <what>
 * <role> is "worker" or "describer" (only workers get WF_SCRATCH_DIR).
 * tests/integration/test_hostile.c reads them; a SUCCEEDED line fails it.
 * Nothing here may harm the machine when an attack does succeed: signals
 * are SIGWINCH (ignored by default), tracees are detached at once, memory
 * and process counts are bounded.
 */
#ifndef WF_TEST_ATTACK_H
#define WF_TEST_ATTACK_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wf/plugin.h>

static inline const char *attack_role(void)
{
    return getenv("WF_SCRATCH_DIR") != NULL ? "worker" : "describer";
}

/* One report line, written with one write(2) so lines do not interleave. */
__attribute__((format(printf, 3, 4))) static inline void attack_say(const char *attack,
                                                                    const char *kind,
                                                                    const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "wf-attack %s %s: %s ", attack_role(), attack, kind);
    ssize_t w;

    if (n < 0 || (size_t)n >= sizeof(line) - 2)
        return;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (int)strlen(line);
    line[n++] = '\n';
    w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

/* errno's symbolic name for the common cases (the test prints it). */
static inline const char *attack_errno(int e)
{
    switch (e) {
    case EPERM:
        return "EPERM";
    case EACCES:
        return "EACCES";
    case ENOENT:
        return "ENOENT";
    case ESRCH:
        return "ESRCH";
    case ENOSYS:
        return "ENOSYS";
    case EMFILE:
        return "EMFILE";
    case ENFILE:
        return "ENFILE";
    case ENOMEM:
        return "ENOMEM";
    case EAGAIN:
        return "EAGAIN";
    case EROFS:
        return "EROFS";
    case EBUSY:
        return "EBUSY";
    case ETXTBSY:
        return "ETXTBSY";
    case EINVAL:
        return "EINVAL";
    case EXDEV:
        return "EXDEV";
    case ENOTDIR:
        return "ENOTDIR";
    case ELOOP:
        return "ELOOP";
    default:
        return "other";
    }
}

/* Reports the outcome of a call that must fail: rc < 0 → blocked, else
 * SUCCEEDED. Returns rc. */
static inline long attack_expect_fail(const char *attack, long rc, const char *what)
{
    if (rc < 0)
        attack_say(attack, "blocked", "%s (%s)", what, attack_errno(errno));
    else
        attack_say(attack, "SUCCEEDED", "%s", what);
    return rc;
}

/* Reads "pid (comm) state ppid" of pid; returns 0 with ppid and comm, -1
 * when /proc does not show it. */
static inline int attack_stat(long pid, long *ppid, char *comm, size_t len)
{
    char path[64], buf[512], *l, *r;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    l = strchr(buf, '(');
    r = strrchr(buf, ')');
    if (l == NULL || r == NULL || r < l || sscanf(r + 1, " %*c %ld", ppid) != 1)
        return -1;
    *r = '\0';
    snprintf(comm, len, "%s", l + 1);
    return 0;
}

/*
 * The processes worth attacking: the manager (our parent), core (its child
 * "wf-core") and other projects' workers (its children "wf-worker" other
 * than us). Taken from the file "targets" in the scratch directory when
 * the test left one there (a worker); else found through /proc when the
 * sandbox lets us list it; else guessed near the manager's pid, as an
 * attacker would. Fills up to max pids; returns how many (the manager
 * always first).
 */
static inline int attack_targets(const char *attack, long *pids, const char **names, int max)
{
    long ppid = (long)getppid(), self = (long)getpid();
    struct dirent *de;
    int n = 0;
    DIR *d;

    const char *scratch = getenv("WF_SCRATCH_DIR");
    char path[4200];
    FILE *f;

    pids[n] = ppid;
    names[n++] = "manager";
    /* The worst case: the attacker knows every pid (the test leaves them in
     * our scratch directory, "<pid> core|victim" per line). */
    if (scratch != NULL) {
        snprintf(path, sizeof(path), "%s/targets", scratch);
        f = fopen(path, "r");
        if (f != NULL) {
            static const char *const kinds[] = {"core", "victim"};
            char line[128], kind[32];
            long pid;
            while (n < max && fgets(line, sizeof(line), f) != NULL) {
                if (sscanf(line, "%ld %31s", &pid, kind) != 2)
                    continue;
                for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                    if (strcmp(kind, kinds[k]) == 0) {
                        pids[n] = pid;
                        names[n++] = k == 0 ? "core" : "another worker";
                    }
                }
            }
            fclose(f);
            return n;
        }
    }
    d = opendir("/proc");
    if (d == NULL) {
        attack_say(attack, "info", "cannot list /proc (%s); guessing pids near the manager's",
                   attack_errno(errno));
        /* Core is forked right after the manager starts. */
        for (long p = ppid + 1; p < ppid + 4 && n < max; p++) {
            pids[n] = p;
            names[n++] = "core?";
        }
        return n;
    }
    while ((de = readdir(d)) != NULL && n < max) {
        char comm[64];
        long pid = strtol(de->d_name, NULL, 10), pp;

        if (pid <= 0 || pid == self || attack_stat(pid, &pp, comm, sizeof(comm)) < 0 || pp != ppid)
            continue;
        if (strcmp(comm, "wf-core") == 0) {
            pids[n] = pid;
            names[n++] = "core";
        } else if (strcmp(comm, "wf-worker") == 0) {
            pids[n] = pid;
            names[n++] = "another worker";
        }
    }
    closedir(d);
    return n;
}

static enum wf_status attack_noop(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    (void)a;
    (void)input;
    *output = cJSON_CreateNull();
    return *output != NULL ? WF_OK : WF_ENOMEM;
}

static const struct wf_activity_def attack_activities[] = {{"noop", attack_noop, WF_RETRY_NONE, 0}};

/* The harmless plugin every attack defines once its constructor has run. */
#define ATTACK_PLUGIN(name_) WF_PLUGIN_DEFINE(name_, "1.0.0", NULL, 0, attack_activities, 1)

#endif
