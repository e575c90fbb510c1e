/*
 * attack_tamper.c: a hostile plugin that tries to change code: its own
 * (the sealed memfd it was loaded from: write, mmap shared writable,
 * truncate, unseal), another project's (through /proc/<worker>/fd and
 * map_files), any plugin file under the runtime directory, and the worker
 * program itself. See attack.h.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "attack.h"

/* Our own code's memfd(s): /proc/self/fd/N links named /memfd:wf-plugin-…. */
static void own_code(void)
{
    int found = 0;

    for (int fd = 0; fd < 1024; fd++) {
        char path[64], link[256], what[320];
        ssize_t n;
        int wfd;
        void *p;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strncmp(link, "/memfd:wf-plugin", 16) != 0)
            continue;
        found++;
        snprintf(what, sizeof(what), "write to our own code (%s)", link);
        attack_expect_fail("tamper", pwrite(fd, "\xcc", 1, 0), what);
        wfd = open(path, O_RDWR | O_CLOEXEC);
        if (wfd >= 0) {
            snprintf(what, sizeof(what), "write to our own code reopened read-write (%s)", link);
            attack_expect_fail("tamper", pwrite(wfd, "\xcc", 1, 0), what);
            close(wfd);
        } else {
            snprintf(what, sizeof(what), "reopen our own code read-write (%s)", link);
            attack_expect_fail("tamper", -1, what);
        }
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        snprintf(what, sizeof(what), "map our own code writable and shared (%s)", link);
        attack_expect_fail("tamper", p == MAP_FAILED ? -1 : 0, what);
        if (p != MAP_FAILED)
            munmap(p, 4096);
        snprintf(what, sizeof(what), "truncate our own code (%s)", link);
        attack_expect_fail("tamper", ftruncate(fd, 1), what);
        snprintf(what, sizeof(what), "add a seal to our own code (%s)", link);
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0)
            attack_say("tamper", "blocked", "%s (%s)", what, attack_errno(errno));
        else
            attack_say("tamper", "info", "%s: F_SEAL_SEAL not set", what);
    }
    attack_say("tamper", "info", "found %d memfd(s) of our own code", found);
}

/* Another worker's open descriptors and mapped files. */
static void other_code(long pid, const char *who)
{
    char path[96], what[160];
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    snprintf(what, sizeof(what), "list the descriptors of the %s (pid %ld)", who, pid);
    d = opendir(path);
    attack_expect_fail("tamper", d == NULL ? -1 : 0, what);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char fdp[400];
            int fd;
            if (de->d_name[0] == '.')
                continue;
            snprintf(fdp, sizeof(fdp), "%s/%s", path, de->d_name);
            fd = open(fdp, O_RDWR | O_CLOEXEC);
            if (fd >= 0) {
                attack_say("tamper", "SUCCEEDED", "opened %s read-write", fdp);
                close(fd);
            }
        }
        closedir(d);
    }
    snprintf(path, sizeof(path), "/proc/%ld/map_files", pid);
    snprintf(what, sizeof(what), "list the mapped files of the %s (pid %ld)", who, pid);
    d = opendir(path);
    attack_expect_fail("tamper", d == NULL ? -1 : 0, what);
    if (d != NULL)
        closedir(d);
}

/* The runtime directory (the scratch directory's grandparent) and the
 * worker program. */
static void files(void)
{
    const char *scratch = getenv("WF_SCRATCH_DIR");
    char dir[4096], what[4200];
    char *slash;
    int fd;

    if (scratch != NULL) {
        snprintf(dir, sizeof(dir), "%s", scratch);
        slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        snprintf(what, sizeof(what), "list the instance directory %s", dir);
        {
            DIR *d = opendir(dir);
            attack_expect_fail("tamper", d == NULL ? -1 : 0, what);
            if (d != NULL)
                closedir(d);
        }
        snprintf(what, sizeof(what), "create a file in the instance directory %s", dir);
        strncat(dir, "/planted.so", sizeof(dir) - strlen(dir) - 1);
        fd = open(dir, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        attack_expect_fail("tamper", fd, what);
        if (fd >= 0) {
            close(fd);
            unlink(dir);
        }
    }
    fd = open("/proc/self/exe", O_RDWR | O_CLOEXEC);
    attack_expect_fail("tamper", fd, "open the worker program read-write");
    if (fd >= 0)
        close(fd);
}

__attribute__((constructor)) static void attack(void)
{
    long pids[16];
    const char *names[16];
    int n = attack_targets("tamper", pids, names, 16);

    own_code();
    for (int i = 0; i < n; i++)
        other_code(pids[i], names[i]);
    files();
}

ATTACK_PLUGIN("attack-tamper")
