/*
 * attack_scratch.c: a hostile plugin that reaches for another project's
 * scratch directory (the project "victim", a sibling of its own): list it,
 * read the file the test left there, plant one. Also writes its own
 * scratch directory and /tmp, so the test sees what the sandbox allows.
 * See attack.h.
 */
#include <sys/stat.h>

#include "attack.h"

__attribute__((constructor)) static void attack(void)
{
    const char *scratch = getenv("WF_SCRATCH_DIR");
    char victim[4096], path[4200], what[4300];
    char *slash;
    DIR *d;
    int fd;

    if (scratch == NULL) {
        attack_say("scratch", "info", "no scratch directory (a describer)");
        return;
    }
    /* Our own: must work. */
    snprintf(path, sizeof(path), "%s/mine.txt", scratch);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0 && write(fd, "ok", 2) == 2)
        attack_say("scratch", "info", "own scratch directory writable");
    else
        attack_say("scratch", "info", "own scratch directory NOT writable (%s)",
                   attack_errno(errno));
    if (fd >= 0)
        close(fd);

    snprintf(victim, sizeof(victim), "%s", scratch);
    slash = strrchr(victim, '/');
    if (slash == NULL)
        return;
    snprintf(slash + 1, sizeof(victim) - (size_t)(slash + 1 - victim), "victim");

    snprintf(what, sizeof(what), "list the victim's scratch directory %s", victim);
    d = opendir(victim);
    attack_expect_fail("scratch", d == NULL ? -1 : 0, what);
    if (d != NULL)
        closedir(d);

    snprintf(path, sizeof(path), "%s/secret.txt", victim);
    snprintf(what, sizeof(what), "read %s", path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    attack_expect_fail("scratch", fd, what);
    if (fd >= 0)
        close(fd);

    snprintf(path, sizeof(path), "%s/pwned", victim);
    snprintf(what, sizeof(what), "plant %s", path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    attack_expect_fail("scratch", fd, what);
    if (fd >= 0)
        close(fd);

    /* /tmp is shared by every project and every user of the host. */
    snprintf(path, sizeof(path), "/tmp/wf-attack-%d", (int)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        attack_say("scratch", "info", "/tmp writable (no Landlock)");
        close(fd);
        unlink(path);
    } else {
        attack_say("scratch", "info", "/tmp not writable (%s)", attack_errno(errno));
    }
}

ATTACK_PLUGIN("attack-scratch")
