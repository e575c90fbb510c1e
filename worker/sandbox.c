/*
 * sandbox.c: the layers a worker puts between a project's plugin code and
 * everything else on the host (DESIGN §2, "the worker sandbox"). Applied
 * once, by the worker itself, before any plugin is loaded; never undone.
 *
 * Order, and why:
 *   1. Own process group (setpgid(0, 0), a no-op when the manager already
 *      made the worker a group leader): the seccomp filter lets the worker
 *      signal its own group, which must then hold only the worker and what
 *      it forked, never the manager, core or other projects' workers. If it
 *      cannot lead its group, signals go only to its own pid. (A signal to
 *      the manager's group no longer reaches workers; they stop with the
 *      manager through PR_SET_PDEATHSIG and their control socket's EOF.)
 *   2. Resource limits: RLIMIT_CORE 0 always (a core file would hold the
 *      project's data and land outside the sandbox); RLIMIT_AS, RLIMIT_NOFILE
 *      and RLIMIT_NPROC as configured, soft and hard, so plugins cannot raise
 *      them again (clamped to the current hard limit: a limit only tightens).
 *      RLIMIT_NPROC counts every process of the uid and root ignores it.
 *   3. PR_SET_NO_NEW_PRIVS: exec can no longer grant privileges (setuid
 *      binaries, file capabilities); it is what lets an unprivileged process
 *      use Landlock and seccomp at all.
 *   4. Landlock (ABI 1 and up; skipped when the kernel answers ENOSYS or
 *      EOPNOTSUPP). Every filesystem right the kernel's ABI knows is handled
 *      (rights of later ABIs are masked out, as the kernel's sandboxer
 *      sample does); network rights are not handled, since activities make
 *      outbound HTTP calls. From ABI 6, the domain is also scoped: no signal
 *      to, and no abstract unix socket of, a process outside it (the
 *      manager, core, other workers). Allowed beneath:
 *        /usr /lib /lib64 /bin  read, list, execute: the C library, ld.so,
 *                          libcurl and the libraries plugins dlopen, locale
 *                          and iconv data, zoneinfo, CA certificates
 *                          (Debian's /etc/ssl/certs links into /usr/share),
 *                          and /bin/sh for plugins that use system()/popen;
 *                          /lib, /lib64 and /bin are links to /usr on
 *                          merged-/usr systems and real directories elsewhere
 *        /etc: only these, read: ld.so.cache (dlopen by soname),
 *                          localtime, nsswitch.conf, hosts, resolv.conf,
 *                          host.conf, gai.conf, services, protocols (name
 *                          resolution), passwd and group (getpwuid), the CA
 *                          stores and OpenSSL/GnuTLS configuration (ssl/certs,
 *                          ssl/cert.pem, ssl/openssl.cnf, pki/tls/...,
 *                          pki/ca-trust/extracted, crypto-policies/back-ends,
 *                          gnutls). Not all of /etc: it holds files a worker
 *                          has no business reading (shadow, ssl/private, a
 *                          service's own credentials), readable whenever the
 *                          worker runs as root. Rules name files, so a file
 *                          replaced by rename (a resolver rewriting
 *                          resolv.conf) is unreadable until the worker restarts
 *        /dev/null         read, write, truncate (shells open it O_TRUNC)
 *        /dev/zero /dev/urandom /dev/random   read
 *        /proc/self        read, list: /proc/<worker pid>, for glibc
 *                          (pthread_getattr_np reads maps) and the sanitizer
 *                          runtimes; not /proc as a whole, where other
 *                          processes' environ and mem are (readable to root
 *                          even when not dumpable). The rule is on the
 *                          /proc/<pid> inode, which procfs makes anew when its
 *                          dentry is dropped, so its descriptor is kept open.
 *                          A forked child's own /proc/<pid> is not covered
 *        /sys/devices/system/cpu  read, list: the CPU count (sysconf)
 *        the worker's own executable  read (symbolizers read it)
 *        WF_SANDBOX_RO_PATHS  read, list (what an operator grants)
 *        WF_SCRATCH_DIR, WF_SANDBOX_RW_PATHS  every right but creating
 *                          device nodes (root could mknod a disk there)
 *      Nothing else: no /tmp, no /dev/shm (shared by every project: a plugin
 *      that needs shared memory uses memfd_create or an anonymous mapping).
 *   5. seccomp: a BPF filter built here (no libseccomp), for x86_64 and
 *      aarch64 (little-endian); on other architectures the layer is reported
 *      missing. A syscall of another ABI (i386 through int 0x80, x32) gets
 *      ENOSYS. Installed with prctl(PR_SET_SECCOMP) when the process has one
 *      thread, with seccomp(2) and TSYNC when it has more. Rules:
 *
 *   syscall                               result   why
 *   ptrace, process_vm_readv/writev,      EPERM    read or change another
 *     pidfd_getfd, kcmp, process_madvise,          process (same uid: another
 *     get_robust_list, migrate_pages               project's worker)
 *   mount, umount2, pivot_root, chroot,   EPERM    change what the filesystem
 *     fsopen, fsconfig, fsmount, fspick,           looks like (Landlock's view
 *     move_mount, open_tree, mount_setattr         included)
 *   unshare, setns                        EPERM    new or other namespaces
 *   clone with a CLONE_NEW* flag          EPERM    the same through clone
 *   clone3                                ENOSYS   its flags sit in memory a
 *                                                  filter cannot read; glibc
 *                                                  then falls back to clone
 *   init_module, finit_module,            EPERM    kernel code
 *     delete_module, kexec_load,
 *     kexec_file_load
 *   bpf, perf_event_open, userfaultfd,    EPERM    large kernel attack surface
 *     io_uring_setup/enter/register                for no plugin's need
 *   add_key, keyctl, request_key          EPERM    kernel keyrings are shared
 *                                                  by the uid's processes
 *   open_by_handle_at, name_to_handle_at  EPERM    open files by handle,
 *                                                  around path checks
 *   fanotify_init, quotactl, quotactl_fd, EPERM    host administration
 *     swapon, swapoff, reboot, acct,
 *     settimeofday, clock_settime,
 *     adjtimex, clock_adjtime, syslog,
 *     vhangup, sethostname, setdomainname,
 *     lookup_dcookie, iopl, ioperm,
 *     uselib, _sysctl
 *   personality other than 0 and the     EPERM    ADDR_NO_RANDOMIZE and such
 *     query 0xffffffff                             would weaken exec'd children
 *   kill(pid, sig)                        EPERM    unless pid is 0, the
 *                                                  worker's pid or -pid (its
 *                                                  group), for any sig, 0
 *                                                  included (probing other
 *                                                  pids is refused too)
 *   tgkill(tgid, …), tkill(tid, …)        EPERM    unless tgid (tid) is the
 *                                                  worker's pid: its threads
 *   rt_sigqueueinfo, rt_tgsigqueueinfo,   EPERM    signals with a payload;
 *     pidfd_send_signal                            glibc does not need them
 *   prlimit64(pid, …)                     EPERM    unless pid is 0 or the
 *                                                  worker's: limits of other
 *                                                  processes of the uid
 *   setpriority(which, …)                 EPERM    unless which is
 *                                                  PRIO_PROCESS (PRIO_USER
 *                                                  would renice the service)
 *   everything else                       allowed
 *
 *   The filter compares only the low 32 bits of pid, flag and resource
 *   arguments, which is what the kernel reads of them. "The worker's pid" is
 *   the pid at install time: a process the worker forks may signal the
 *   worker's group (pid 0 included) and the worker, but not itself by pid
 *   (raise() fails there; abort() still ends it).
 *
 * A plugin cannot signal a child it forked by pid, only the whole group
 * (kill(0, …), which includes the worker). Where Landlock scopes signals
 * (ABI 6), the kernel already confines signals to the worker's own
 * processes, and the kill rules could be relaxed to allow that.
 *
 * Known gaps, left to a per-worker uid (WF_WORKER_USER): calls that act on
 * another pid of the same uid where a filter cannot tell the worker's own
 * thread ids from other pids (sched_setaffinity, sched_setscheduler,
 * setpriority(PRIO_PROCESS, pid), ioprio_set, move_pages); metadata changes
 * by path (chmod, chown, utimes, setxattr), which Landlock up to ABI 7 does
 * not cover, on files the uid owns. Without Landlock, /proc/<pid>/mem of a
 * same-uid dumpable process is only guarded by Yama. A worker running as
 * root keeps its capabilities; the layers above still hold, but root is
 * not what this sandbox is for.
 *
 * Plugins as memfds: dlopen("/proc/self/fd/N") of a sealed memfd works
 * after landlock_restrict_self with no rule for /proc or the memfd. The
 * walk into /proc/self/fd is not checked (Landlock checks the opened file,
 * not the directories looked up); the magic link resolves to the memfd's
 * own dentry, which has no parent on the kernel-internal shmem mount, and
 * Landlock allows a disconnected root on an MNT_INTERNAL mount (the case
 * the kernel names for nsfs through /proc/<pid>/ns); mmap with PROT_EXEC
 * needs no Landlock right. The same holds for pipes and sockets reopened
 * through /proc/self/fd. tests/unit/test_sandbox.c checks it. Paths in
 * WF_SANDBOX_RO_PATHS and WF_SANDBOX_RW_PATHS must exist when the worker
 * starts, since a rule names an existing inode.
 *
 * Under valgrind (3.19 has no wrapper for the Landlock calls and none for
 * seccomp(2)), Landlock is reported missing and the filter goes in through
 * prctl, which valgrind passes on. In AddressSanitizer builds, RLIMIT_AS is
 * not set and LeakSanitizer is turned off once the filter is in (see
 * __lsan_is_turned_off below); the filter and the paths are the same.
 *
 * WF_SANDBOX_DISABLE skips Landlock, seccomp or both (reported false, with
 * a warning): for diagnosis, and for the tests that show what holds
 * beneath them (tests/integration/test_hostile.c).
 *
 * Errors: a missing layer is logged once and reported false; failing to
 * apply a layer the kernel has returns -1 with the reason.
 */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "jsonutil.h"
#include "log.h"

#if defined(__SANITIZE_ADDRESS__)
#define SB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SB_ASAN 1
#endif
#endif

#ifdef SB_ASAN
#include <sanitizer/lsan_interface.h>

static volatile int lsan_off;

/*
 * LeakSanitizer's exit-time check stops the world with ptrace, which the
 * seccomp filter refuses: under the filter it can only fail ("fatal error",
 * exit status 1). This hook (a name LSan looks up; it reads it when the
 * check runs) turns the check off once the filter is installed, in sanitizer
 * builds only. The filter stays the same in every build; leaks of sandboxed
 * processes are left to valgrind (test_valgrind_worker runs the worker
 * under the same filter).
 */
int __lsan_is_turned_off(void)
{
    return lsan_off;
}
#endif

/* valgrind has no wrapper for the Landlock calls (3.19 at least): it answers
 * ENOSYS without asking the kernel and prints a warning into its log. Under
 * it the probe is skipped; on a CPU the check is a no-op answering 0. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SB_UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef SB_UNDER_VALGRIND
#define SB_UNDER_VALGRIND() 0
#endif

/* ---- Landlock: the UAPI, spelled out (older headers lack ABI 3+) ---- */

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_ABI1 ((1ULL << 13) - 1)             /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER (1ULL << 13)                  /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14)               /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)              /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

/* Rights a rule on a non-directory may hold. */
#define LL_FILE_RIGHTS                                                                             \
    (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
#define LL_READ (LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_READ_EXEC (LL_READ | LL_FS_EXECUTE)
#define LL_DEV_NULL (LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* What a worker and the libraries its plugins use read on the host (see
 * the header); paths missing on this host are skipped. */
static const struct {
    const char *path;
    uint64_t access;
} system_paths[] = {
    {"/usr", LL_READ_EXEC},
    {"/lib", LL_READ_EXEC},
    {"/lib64", LL_READ_EXEC},
    {"/bin", LL_READ_EXEC},
    {"/etc/ld.so.cache", LL_READ},
    {"/etc/localtime", LL_READ},
    {"/etc/nsswitch.conf", LL_READ},
    {"/etc/hosts", LL_READ},
    {"/etc/resolv.conf", LL_READ},
    {"/etc/host.conf", LL_READ},
    {"/etc/gai.conf", LL_READ},
    {"/etc/services", LL_READ},
    {"/etc/protocols", LL_READ},
    {"/etc/passwd", LL_READ},
    {"/etc/group", LL_READ},
    {"/etc/ssl/certs", LL_READ},
    {"/etc/ssl/cert.pem", LL_READ},
    {"/etc/ssl/openssl.cnf", LL_READ},
    {"/etc/pki/tls/certs", LL_READ},
    {"/etc/pki/tls/cert.pem", LL_READ},
    {"/etc/pki/tls/openssl.cnf", LL_READ},
    {"/etc/pki/ca-trust/extracted", LL_READ},
    {"/etc/crypto-policies/back-ends", LL_READ},
    {"/etc/gnutls", LL_READ},
    {"/dev/null", LL_DEV_NULL},
    {"/dev/zero", LL_READ},
    {"/dev/urandom", LL_READ},
    {"/dev/random", LL_READ},
    {"/sys/devices/system/cpu", LL_READ},
};

/* /proc/<pid> of the worker, kept open so its rule keeps matching. */
static int proc_self_fd = -1;

/* What one sandbox_apply call collects. */
struct sb_run {
    cJSON *report;   /* borrowed, may be NULL */
    cJSON *warnings; /* owned until added to report */
    char *err;
    size_t errlen;
};

/* Logs a missing layer (or an unmet part of one) and keeps it for the report. */
static void sb_warn(struct sb_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_warn(struct sb_run *r, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_warning("sandbox: %s", line);
    if (r->warnings != NULL)
        cJSON_AddItemToArray(r->warnings, cJSON_CreateString(line));
}

static void sb_report_bool(struct sb_run *r, const char *key, int value)
{
    if (r->report != NULL)
        cJSON_AddBoolToObject(r->report, key, value);
}

/* ---- configuration ---- */

static const char *env_nonempty(const char *name)
{
    const char *s = getenv(name);

    return s != NULL && *s != '\0' ? s : NULL;
}

/* Checks that every entry of a colon-separated list is an absolute path. */
static int check_path_list(const char *name, const char *list, char *err, size_t errlen)
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ':');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len > 0 && (p[0] != '/' || len >= PATH_MAX)) {
            snprintf(err, errlen, "%s must hold absolute paths separated by ':', not \"%.*s\"",
                     name, (int)(len > 128 ? 128 : len), p);
            return -1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

int sandbox_config_from_env(struct sandbox_config *cfg, char *err, size_t errlen)
{
    const char *disable;
    long mb;

    memset(cfg, 0, sizeof(*cfg));
    cfg->scratch_dir = env_nonempty("WF_SCRATCH_DIR");
    cfg->rw_paths = env_nonempty("WF_SANDBOX_RW_PATHS");
    cfg->ro_paths = env_nonempty("WF_SANDBOX_RO_PATHS");
    if (cfg->scratch_dir != NULL && (cfg->scratch_dir[0] != '/' || strchr(cfg->scratch_dir, ':'))) {
        snprintf(err, errlen, "WF_SCRATCH_DIR must be an absolute path, not \"%.128s\"",
                 cfg->scratch_dir);
        return -1;
    }
    if (check_path_list("WF_SANDBOX_RW_PATHS", cfg->rw_paths, err, errlen) < 0 ||
        check_path_list("WF_SANDBOX_RO_PATHS", cfg->ro_paths, err, errlen) < 0)
        return -1;
    /* Unset: the limit is left as it is (0). */
    if (config_env_long("WF_WORKER_MAX_AS_MB", 0, 16, 4194304, &mb, err, errlen) < 0 ||
        config_env_long("WF_WORKER_MAX_FILES", 0, 16, 1048576, &cfg->max_files, err, errlen) < 0 ||
        config_env_long("WF_WORKER_MAX_PROCS", 0, 1, 4194304, &cfg->max_procs, err, errlen) < 0)
        return -1;
    cfg->max_as_bytes = mb * 1024 * 1024;
    disable = env_nonempty("WF_SANDBOX_DISABLE");
    if (disable != NULL) {
        cfg->no_landlock = strstr(disable, "landlock") != NULL;
        cfg->no_seccomp = strstr(disable, "seccomp") != NULL;
    }
    return 0;
}

/* ---- 1. process group ---- */

/* Returns 1 if the process leads its own group afterwards, else 0. */
static int own_process_group(struct sb_run *r)
{
    if (getpgid(0) != getpid() && setpgid(0, 0) < 0)
        sb_warn(r,
                "could not lead a process group of its own (%s); signals to the group "
                "are refused",
                strerror(errno));
    sb_report_bool(r, "processGroup", getpgid(0) == getpid());
    return getpgid(0) == getpid();
}

/* ---- 2. resource limits ---- */

/* Sets res to value, soft and hard (no higher than the hard limit now). */
static int set_limit(struct sb_run *r, int res, const char *name, long value)
{
    struct rlimit rl, cur;
    rlim_t v = (rlim_t)value;

    if (getrlimit(res, &rl) < 0) {
        snprintf(r->err, r->errlen, "could not read %s: %s", name, strerror(errno));
        return -1;
    }
    if (rl.rlim_max != RLIM_INFINITY && v > rl.rlim_max) {
        log_info("sandbox: %s %ld is above the hard limit; using %llu", name, value,
                 (unsigned long long)rl.rlim_max);
        v = rl.rlim_max;
    }
    rl.rlim_cur = v;
    rl.rlim_max = v;
    /* Valgrind keeps descriptors of its own above the hard limit and
     * refuses to lower it: there, the soft limit alone. */
    if (SB_UNDER_VALGRIND() && res == RLIMIT_NOFILE && getrlimit(res, &cur) == 0)
        rl.rlim_max = cur.rlim_max;
    if (setrlimit(res, &rl) < 0) {
        snprintf(r->err, r->errlen, "could not set %s to %llu: %s", name, (unsigned long long)v,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int apply_rlimits(struct sb_run *r, const struct sandbox_config *cfg)
{
    struct rlimit no_core = {0, 0};

    if (setrlimit(RLIMIT_CORE, &no_core) < 0) {
        snprintf(r->err, r->errlen, "could not set RLIMIT_CORE to 0: %s", strerror(errno));
        return -1;
    }
    if (cfg->max_as_bytes > 0) {
#ifdef SB_ASAN
        /* AddressSanitizer's shadow memory is terabytes of address space. */
        sb_warn(r, "RLIMIT_AS is not set in an AddressSanitizer build");
#else
        if (set_limit(r, RLIMIT_AS, "RLIMIT_AS", cfg->max_as_bytes) < 0)
            return -1;
#endif
    }
    if (cfg->max_files > 0 && set_limit(r, RLIMIT_NOFILE, "RLIMIT_NOFILE", cfg->max_files) < 0)
        return -1;
    if (cfg->max_procs > 0 && set_limit(r, RLIMIT_NPROC, "RLIMIT_NPROC", cfg->max_procs) < 0)
        return -1;
    sb_report_bool(r, "rlimits", 1);
    return 0;
}

/* ---- 4. Landlock ---- */

/* The number of threads of this process, or -1 if unknown. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

/*
 * Allows access (masked to what the ruleset handles, and to file rights
 * for a non-directory) beneath path. Returns 0 (added), 1 (path missing or
 * not ours to open: skipped, with a warning when configured), or -1 with
 * r->err set. With keep, the descriptor stays open in *keep.
 */
static int ll_allow(struct sb_run *r, int ruleset, const char *path, uint64_t access,
                    uint64_t handled, int configured, int *keep)
{
    struct ll_path_beneath_attr pb;
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC);

    if (fd < 0) {
        if (configured)
            sb_warn(r, "could not open \"%s\" (%s); no access to it is granted", path,
                    strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(r->err, r->errlen, "could not stat \"%s\": %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    pb.allowed_access = access & handled;
    if (!S_ISDIR(st.st_mode))
        pb.allowed_access &= LL_FILE_RIGHTS;
    pb.parent_fd = fd;
    if (pb.allowed_access != 0 &&
        syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
        snprintf(r->err, r->errlen, "could not add a Landlock rule for \"%s\": %s", path,
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (keep != NULL)
        *keep = fd;
    else
        close(fd);
    return 0;
}

/* Adds a rule for each entry of a colon-separated list. */
static int ll_allow_list(struct sb_run *r, int ruleset, const char *list, uint64_t access,
                         uint64_t handled)
{
    char path[PATH_MAX];
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ':');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len > 0 && len < sizeof(path)) {
            memcpy(path, p, len);
            path[len] = '\0';
            if (ll_allow(r, ruleset, path, access, handled, 1, NULL) < 0)
                return -1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

static int ll_populate(struct sb_run *r, int ruleset, const struct sandbox_config *cfg,
                       uint64_t handled)
{
    /* Read-write: every handled right but creating device nodes. */
    uint64_t rw = handled & ~(LL_FS_MAKE_CHAR | LL_FS_MAKE_BLOCK);
    int pinned = -1;
    int absent = 0;

    for (size_t i = 0; i < sizeof(system_paths) / sizeof(system_paths[0]); i++) {
        int rc =
            ll_allow(r, ruleset, system_paths[i].path, system_paths[i].access, handled, 0, NULL);
        if (rc < 0)
            return -1;
        absent += rc;
    }
    log_debug("sandbox: %d of the system paths are absent on this host", absent);
    if (ll_allow(r, ruleset, "/proc/self", LL_READ, handled, 0, &pinned) < 0)
        return -1;
    if (ll_allow(r, ruleset, "/proc/self/exe", LL_FS_READ_FILE, handled, 0, NULL) < 0 ||
        ll_allow_list(r, ruleset, cfg->ro_paths, LL_READ, handled) < 0 ||
        (cfg->scratch_dir != NULL &&
         ll_allow(r, ruleset, cfg->scratch_dir, rw, handled, 1, NULL) < 0) ||
        ll_allow_list(r, ruleset, cfg->rw_paths, rw, handled) < 0) {
        if (pinned >= 0)
            close(pinned);
        return -1;
    }
    if (pinned >= 0 && proc_self_fd < 0)
        proc_self_fd = pinned;
    else if (pinned >= 0)
        close(pinned);
    return 0;
}

static int apply_landlock(struct sb_run *r, const struct sandbox_config *cfg, int threads)
{
    struct ll_ruleset_attr attr;
    int abi;
    int ruleset;

    if (SB_UNDER_VALGRIND()) {
        sb_warn(r, "Landlock is not available under valgrind; file access is not restricted");
        if (r->report != NULL)
            cJSON_AddNumberToObject(r->report, "landlockAbi", 0);
        sb_report_bool(r, "landlock", 0);
        return 0;
    }
    abi = (int)syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (r->report != NULL)
        cJSON_AddNumberToObject(r->report, "landlockAbi", abi > 0 ? abi : 0);
    if (abi <= 0) {
        if (errno == EOPNOTSUPP)
            sb_warn(r, "Landlock is disabled on this kernel (EOPNOTSUPP); file access is "
                       "not restricted");
        else
            sb_warn(r,
                    "Landlock not available on this kernel (%s); file access is not "
                    "restricted",
                    errno == ENOSYS ? "ENOSYS" : strerror(errno));
        sb_report_bool(r, "landlock", 0);
        return 0;
    }
    if (threads > 1) {
        snprintf(r->err, r->errlen,
                 "the process has %d threads and Landlock would restrict only one", threads);
        return -1;
    }
    memset(&attr, 0, sizeof(attr));
    attr.handled_access_fs = LL_FS_ABI1;
    if (abi >= 2)
        attr.handled_access_fs |= LL_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= LL_FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= LL_FS_IOCTL_DEV;
    if (abi >= 6)
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
    ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0) {
        snprintf(r->err, r->errlen, "could not create a Landlock ruleset (ABI %d): %s", abi,
                 strerror(errno));
        return -1;
    }
    if (ll_populate(r, ruleset, cfg, attr.handled_access_fs) < 0) {
        close(ruleset);
        return -1;
    }
    if (syscall(__NR_landlock_restrict_self, ruleset, 0) < 0) {
        snprintf(r->err, r->errlen, "could not enforce the Landlock ruleset: %s", strerror(errno));
        close(ruleset);
        return -1;
    }
    close(ruleset);
    sb_report_bool(r, "landlock", 1);
    return 0;
}

/* ---- 5. seccomp ---- */

#if defined(__x86_64__) && !defined(__ILP32__)
#define SB_AUDIT_ARCH AUDIT_ARCH_X86_64
#define SB_ARCH_NAME "x86_64"
#elif defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#define SB_ARCH_NAME "aarch64"
#endif

#ifdef SB_AUDIT_ARCH

/* Numbers newer than some headers; the same on both architectures. */
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#define __NR_move_mount 429
#define __NR_fsopen 430
#define __NR_fsconfig 431
#define __NR_fsmount 432
#define __NR_fspick 433
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_process_madvise
#define __NR_process_madvise 440
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_quotactl_fd
#define __NR_quotactl_fd 443
#endif

/* x86-only calls; elsewhere a repeat of ptrace's number, which is harmless. */
#ifdef __NR_iopl
#define SB_NR_IOPL __NR_iopl
#define SB_NR_IOPERM __NR_ioperm
#define SB_NR_USELIB __NR_uselib
#define SB_NR_SYSCTL __NR__sysctl
#else
#define SB_NR_IOPL __NR_ptrace
#define SB_NR_IOPERM __NR_ptrace
#define SB_NR_USELIB __NR_ptrace
#define SB_NR_SYSCTL __NR_ptrace
#endif

/* Denied with EPERM whatever their arguments (the header's table). */
static const int denied[] = {
    /* another process's memory, descriptors or state */
    __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev, __NR_pidfd_getfd, __NR_kcmp,
    __NR_process_madvise, __NR_get_robust_list, __NR_migrate_pages,
    /* mounts and namespaces */
    __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_fsopen, __NR_fsconfig,
    __NR_fsmount, __NR_fspick, __NR_move_mount, __NR_open_tree, __NR_mount_setattr, __NR_unshare,
    __NR_setns,
    /* kernel code, and kernel attack surface */
    __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_kexec_load, __NR_kexec_file_load,
    __NR_bpf, __NR_perf_event_open, __NR_userfaultfd, __NR_io_uring_setup, __NR_io_uring_enter,
    __NR_io_uring_register,
    /* keyrings, file handles */
    __NR_add_key, __NR_keyctl, __NR_request_key, __NR_open_by_handle_at, __NR_name_to_handle_at,
    /* host administration */
    __NR_fanotify_init, __NR_quotactl, __NR_quotactl_fd, __NR_swapon, __NR_swapoff, __NR_reboot,
    __NR_acct, __NR_settimeofday, __NR_clock_settime, __NR_adjtimex, __NR_clock_adjtime,
    __NR_syslog, __NR_vhangup, __NR_sethostname, __NR_setdomainname, __NR_lookup_dcookie,
    /* signals with a payload */
    __NR_rt_sigqueueinfo, __NR_rt_tgsigqueueinfo, __NR_pidfd_send_signal,
    /* x86 only */
    SB_NR_IOPL, SB_NR_IOPERM, SB_NR_USELIB, SB_NR_SYSCTL};

#define SB_CLONE_NEW_FLAGS                                                                         \
    (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |  \
     CLONE_NEWNET)
#define SB_X32_SYSCALL_BIT 0x40000000U
#define SB_ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i)))
#define SB_RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define SB_EPERM SB_RET(SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define SB_ENOSYS SB_RET(SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))
#define SB_ALLOW SB_RET(SECCOMP_RET_ALLOW)
#define SB_PROG_MAX 256

struct sb_prog {
    struct sock_filter insn[SB_PROG_MAX];
    size_t n;
};

static void emit(struct sb_prog *p, struct sock_filter f)
{
    if (p->n < SB_PROG_MAX)
        p->insn[p->n] = f;
    p->n++; /* past SB_PROG_MAX: build_filter refuses the program */
}

/*
 * For syscall nr: allowed if the low 32 bits of argument arg equal one of
 * vals[0..k), else EPERM. The block is skipped when A (the syscall number)
 * is not nr, and always returns, so A needs no reload after it.
 */
static void emit_allow_if(struct sb_prog *p, int nr, int arg, const uint32_t *vals, size_t k)
{
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0,
                                         (uint8_t)(k + 3)));
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SB_ARG_LO(arg)));
    for (size_t j = 0; j < k; j++)
        emit(p,
             (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, vals[j], (uint8_t)(k - j), 0));
    emit(p, (struct sock_filter)SB_EPERM);
    emit(p, (struct sock_filter)SB_ALLOW);
}

/* Builds the filter of the header's table for a worker whose pid is self;
 * leader: it leads its own process group. Returns 0, or -1 if too long. */
static int build_filter(struct sb_prog *p, pid_t self, int leader)
{
    uint32_t signal_ok[3] = {(uint32_t)self, 0, (uint32_t)-self};
    uint32_t prlimit_ok[2] = {0, (uint32_t)self};
    uint32_t personality_ok[2] = {0, 0xffffffffU};
    uint32_t prio_ok[1] = {PRIO_PROCESS};

    p->n = 0;
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                         offsetof(struct seccomp_data, arch)));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SB_AUDIT_ARCH, 1, 0));
    emit(p, (struct sock_filter)SB_ENOSYS);
    emit(p,
         (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#ifdef __x86_64__
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, SB_X32_SYSCALL_BIT, 0, 1));
    emit(p, (struct sock_filter)SB_ENOSYS);
#endif
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)denied[i], 0, 1));
        emit(p, (struct sock_filter)SB_EPERM);
    }
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1));
    emit(p, (struct sock_filter)SB_ENOSYS);
    /* clone: flags are argument 0 on both architectures. */
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4));
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SB_ARG_LO(0)));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, SB_CLONE_NEW_FLAGS, 0, 1));
    emit(p, (struct sock_filter)SB_EPERM);
    emit(p, (struct sock_filter)SB_ALLOW);
    emit_allow_if(p, __NR_kill, 0, signal_ok, leader ? 3 : 1);
    emit_allow_if(p, __NR_tgkill, 0, signal_ok, 1);
    emit_allow_if(p, __NR_tkill, 0, signal_ok, 1);
    emit_allow_if(p, __NR_prlimit64, 0, prlimit_ok, 2);
    emit_allow_if(p, __NR_personality, 0, personality_ok, 2);
    emit_allow_if(p, __NR_setpriority, 0, prio_ok, 1);
    emit(p, (struct sock_filter)SB_ALLOW);
    return p->n <= SB_PROG_MAX ? 0 : -1;
}

/* 1 if the kernel filters system calls; asked only after an install failed,
 * to tell a kernel without filters from a filter it refused. */
static int seccomp_filters_supported(void)
{
    uint32_t action = SECCOMP_RET_ERRNO;

    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
        return 0;
    return syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

/*
 * Installs the filter on every thread. One thread (the usual case):
 * prctl(PR_SET_SECCOMP), the same as seccomp(2) without flags, and the call
 * valgrind knows; several: seccomp(2) with TSYNC. A kernel without seccomp,
 * or without its filter mode, answers EINVAL (prctl) or ENOSYS (seccomp).
 */
static int apply_seccomp(struct sb_run *r, int leader, int threads)
{
    static struct sb_prog p;
    struct sock_fprog prog;
    long rc;

    if (build_filter(&p, getpid(), leader) < 0) {
        snprintf(r->err, r->errlen, "the seccomp filter is longer than %d instructions",
                 SB_PROG_MAX);
        return -1;
    }
    prog.len = (unsigned short)p.n;
    prog.filter = p.insn;
    if (threads == 1)
        rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    else
        rc = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
        int e = errno;

        if (!seccomp_filters_supported()) {
            sb_warn(r, "seccomp not available on this kernel (%s); system calls are not filtered",
                    e == EINVAL ? "EINVAL" : "ENOSYS");
            sb_report_bool(r, "seccomp", 0);
            return 0;
        }
        errno = e;
    }
    if (rc != 0) {
        if (rc > 0)
            snprintf(r->err, r->errlen, "could not install the seccomp filter on thread %ld", rc);
        else
            snprintf(r->err, r->errlen, "could not install the seccomp filter: %s",
                     strerror(errno));
        return -1;
    }
#ifdef SB_ASAN
    lsan_off = 1;
#endif
    sb_report_bool(r, "seccomp", 1);
    if (r->report != NULL)
        cJSON_AddStringToObject(r->report, "seccompArch", SB_ARCH_NAME);
    return 0;
}

#else /* no filter for this architecture */

static int apply_seccomp(struct sb_run *r, int leader, int threads)
{
    (void)leader;
    (void)threads;
    sb_warn(r, "no seccomp filter for this architecture; system calls are not filtered");
    sb_report_bool(r, "seccomp", 0);
    return 0;
}

#endif

/* ---- all layers ---- */

int sandbox_apply(const struct sandbox_config *cfg, cJSON *report, char *err, size_t errlen)
{
    struct sb_run r = {report, report != NULL ? cJSON_CreateArray() : NULL, err, errlen};
    int threads = thread_count();
    int leader;
    int rc = -1;

    leader = own_process_group(&r);
    if (apply_rlimits(&r, cfg) < 0)
        goto out;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "could not set PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        goto out;
    }
    sb_report_bool(&r, "noNewPrivs", 1);
    if (cfg->no_landlock) {
        sb_warn(&r, "Landlock disabled by WF_SANDBOX_DISABLE; file access is not restricted");
        sb_report_bool(&r, "landlock", 0);
    } else if (apply_landlock(&r, cfg, threads) < 0) {
        goto out;
    }
    if (cfg->no_seccomp) {
        sb_warn(&r, "seccomp disabled by WF_SANDBOX_DISABLE; system calls are not filtered");
        sb_report_bool(&r, "seccomp", 0);
    } else if (apply_seccomp(&r, leader, threads) < 0) {
        goto out;
    }
    rc = 0;
out:
    if (r.warnings != NULL && cJSON_GetArraySize(r.warnings) > 0)
        ju_set(report, "warnings", r.warnings);
    else
        cJSON_Delete(r.warnings);
    return rc;
}
