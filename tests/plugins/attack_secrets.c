/*
 * attack_secrets.c: a hostile plugin that goes for the server's secrets:
 * the environment (DATABASE_URL, WF_API_TOKEN) and memory of the manager,
 * core and other projects' workers, through /proc/<pid>/environ,
 * /proc/<pid>/mem and process_vm_readv. See attack.h.
 */
#include <sys/uio.h>

#include "attack.h"

/* Reads /proc/pid/environ: SUCCEEDED if it shows a secret's value. */
static void environ_of(long pid, const char *who)
{
    char path[64], buf[65536];
    char what[128];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
    snprintf(what, sizeof(what), "read the environment of the %s (pid %ld)", who, pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        attack_expect_fail("secrets", -1, what);
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        attack_expect_fail("secrets", -1, what);
        return;
    }
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) {
        const char *v = NULL;
        if (strncmp(buf + i, "DATABASE_URL=", 13) == 0)
            v = buf + i + 13;
        else if (strncmp(buf + i, "WF_API_TOKEN=", 13) == 0)
            v = buf + i + 13;
        else if (strncmp(buf + i, "PGPASSWORD=", 11) == 0)
            v = buf + i + 11;
        if (v != NULL && *v != '\0') {
            attack_say("secrets", "SUCCEEDED", "%s: %.13s...", what, buf + i);
            return;
        }
    }
    attack_say("secrets", "contained", "%s: %zd bytes, no secret in them", what, n);
}

/* Opens /proc/pid/mem and reads a page of the stack. */
static void mem_of(long pid, const char *who)
{
    char path[64], what[128];
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/mem", pid);
    snprintf(what, sizeof(what), "open the memory of the %s (pid %ld)", who, pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    attack_expect_fail("secrets", fd, what);
    if (fd >= 0)
        close(fd);
}

/* process_vm_readv from an address that is mapped in every process (the
 * vDSO page is not; the program's first page is close enough: any answer
 * but EPERM/ESRCH/ENOSYS means permission was granted). */
static void vm_read_of(long pid, const char *who)
{
    char buf[64], what[128];
    struct iovec local = {buf, sizeof(buf)};
    struct iovec remote = {(void *)0x400000, sizeof(buf)};
    ssize_t n = process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0);

    snprintf(what, sizeof(what), "process_vm_readv the %s (pid %ld)", who, pid);
    if (n < 0 && errno == EFAULT)
        attack_say("secrets", "SUCCEEDED", "%s: permitted (the address was unmapped)", what);
    else
        attack_expect_fail("secrets", n, what);
}

__attribute__((constructor)) static void attack(void)
{
    long pids[16];
    const char *names[16];
    int n = attack_targets("secrets", pids, names, 16);

    for (int i = 0; i < n; i++) {
        environ_of(pids[i], names[i]);
        mem_of(pids[i], names[i]);
        vm_read_of(pids[i], names[i]);
    }
}

ATTACK_PLUGIN("attack-secrets")
