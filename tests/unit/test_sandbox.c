/*
 * test_sandbox.c: the worker sandbox (worker/sandbox.c) against the attacks
 * it is there for, and the things a plugin must still be able to do.
 *
 * Each scenario runs in a child forked for it, which applies the sandbox
 * (scratch directory, an extra read-write path and a read-only path, all in
 * a temporary directory) and then tries one thing, reporting its errno
 * (0: it worked) and an optional text through a pipe. This process, the
 * child's parent, plays the victim: the manager, core or another worker.
 * The Landlock checks are skipped, with the reason printed, when the kernel
 * has no Landlock; the seccomp checks when this architecture has no filter.
 * The sample-activities plugin's httpRequest runs in the sandbox too,
 * against a one-shot HTTP server in this process on 127.0.0.1. Last, the
 * worker program itself: its hello carries the sandbox report, and a worker
 * that cannot sandbox itself reports a load error and exits 1.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonutil.h"
#include "loader.h"
#include "log.h"
#include "memfd.h"
#include "msg.h"
#include "sandbox.h"
#include "testhelp.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#define MAX_FILES 200

static char base[] = "/tmp/wf-test-sandbox-XXXXXX";
static char scratch[256], rw[256], ro[256], outside[256], ro_plugin[512];
static int plugin_memfd = -1;
static int sample_memfd = -1; /* sample_activities.so */
static int http_listener = -1;
static int http_port;
static int have_landlock;
static int have_seccomp;
static int parent_sentinel = 0x5eed;

/* ---- the child side ---- */

/* The child's answer: errno (0: it worked) and a text. */
struct answer {
    int err;
    char text[4096];
};

static struct sandbox_config config(void)
{
    struct sandbox_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.scratch_dir = scratch;
    cfg.rw_paths = rw;
    cfg.ro_paths = ro;
    cfg.max_files = MAX_FILES;
    return cfg;
}

/* errno of a call that returned r (-1 on failure), 0 if it worked. */
static int err_of(long r)
{
    return r < 0 ? errno : 0;
}

/*
 * Forks a child that applies the sandbox and runs fn, while this process
 * runs parent_side (NULL: nothing); fills a. Returns 0, or -1 if the child
 * did not answer (it crashed, or could not sandbox itself: a->text then
 * says why).
 */
static int in_sandbox_with(int (*fn)(struct answer *), void (*parent_side)(void), struct answer *a)
{
    int p[2];
    pid_t pid;
    int st;
    ssize_t n;
    size_t got = 0;

    memset(a, 0, sizeof(*a));
    if (pipe(p) < 0)
        return -1;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        struct sandbox_config cfg = config();
        struct answer mine;
        cJSON *report = cJSON_CreateObject();
        char err[512];

        close(p[0]);
        memset(&mine, 0, sizeof(mine));
        if (sandbox_apply(&cfg, report, err, sizeof(err)) < 0) {
            mine.err = -1;
            snprintf(mine.text, sizeof(mine.text), "sandbox_apply: %s", err);
        } else {
            char *text = cJSON_PrintUnformatted(report);
            snprintf(mine.text, sizeof(mine.text), "%s", text != NULL ? text : "");
            free(text);
            mine.err = fn(&mine);
        }
        cJSON_Delete(report);
        if (write(p[1], &mine, sizeof(mine)) != (ssize_t)sizeof(mine))
            _exit(3);
        _exit(0);
    }
    close(p[1]);
    if (parent_side != NULL)
        parent_side();
    while (got < sizeof(*a) && (n = read(p[0], (char *)a + got, sizeof(*a) - got)) > 0)
        got += (size_t)n;
    close(p[0]);
    waitpid(pid, &st, 0);
    if (got != sizeof(*a) || a->err == -1) {
        fprintf(stderr, "child did not answer (status %d): %s\n", st, a->text);
        return -1;
    }
    return 0;
}

static int in_sandbox(int (*fn)(struct answer *), struct answer *a)
{
    return in_sandbox_with(fn, NULL, a);
}

/* Runs fn sandboxed; returns its errno, or -2 when the child failed. */
static int try_(int (*fn)(struct answer *))
{
    struct answer a;

    return in_sandbox(fn, &a) == 0 ? a.err : -2;
}

/* ---- attacks on the parent ---- */

static int do_ptrace_parent(struct answer *a)
{
    (void)a;
    return err_of(ptrace(PTRACE_ATTACH, getppid(), NULL, NULL));
}

static int do_vm_readv_parent(struct answer *a)
{
    int mine = 0;
    struct iovec local = {&mine, sizeof(mine)};
    struct iovec remote = {(void *)&parent_sentinel, sizeof(parent_sentinel)};

    (void)a;
    return err_of(process_vm_readv(getppid(), &local, 1, &remote, 1, 0));
}

static int do_kill_parent_term(struct answer *a)
{
    (void)a;
    return err_of(kill(getppid(), SIGTERM));
}

static int do_kill_parent_kill(struct answer *a)
{
    (void)a;
    return err_of(kill(getppid(), SIGKILL));
}

static int do_kill_parent_probe(struct answer *a)
{
    (void)a;
    return err_of(kill(getppid(), 0));
}

static int do_kill_everyone(struct answer *a)
{
    (void)a;
    return err_of(kill(-1, 0));
}

static int do_tgkill_parent(struct answer *a)
{
    (void)a;
    return err_of(syscall(SYS_tgkill, getppid(), getppid(), SIGTERM));
}

static int do_tkill_parent(struct answer *a)
{
    (void)a;
    return err_of(syscall(SYS_tkill, getppid(), SIGTERM));
}

static int do_sigqueue_parent(struct answer *a)
{
    union sigval v = {.sival_int = 1};

    (void)a;
    return err_of(sigqueue(getppid(), SIGTERM, v));
}

static int do_prlimit_parent(struct answer *a)
{
    struct rlimit rl;

    (void)a;
    return err_of(prlimit(getppid(), RLIMIT_NOFILE, NULL, &rl));
}

/* Harmless if it worked: the parent's group keeps its priority. */
static int do_setpriority_group(struct answer *a)
{
    int prio;

    (void)a;
    errno = 0;
    prio = getpriority(PRIO_PGRP, (id_t)getpgid(getppid()));
    if (prio == -1 && errno != 0)
        return 1000;
    return err_of(setpriority(PRIO_PGRP, (id_t)getpgid(getppid()), prio));
}

/* ---- namespaces, mounts, modules, other calls ---- */

static int do_unshare_user(struct answer *a)
{
    (void)a;
    return err_of(unshare(CLONE_NEWUSER));
}

static int do_clone_newns(struct answer *a)
{
    long r = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);

    (void)a;
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    return err_of(r);
}

static int do_clone3(struct answer *a)
{
    uint64_t args[11] = {0};
    long r;

    (void)a;
    args[4] = SIGCHLD; /* exit_signal */
    r = syscall(435 /* clone3 */, args, sizeof(args));
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    return err_of(r);
}

static int do_mount(struct answer *a)
{
    (void)a;
    return err_of(mount("none", scratch, "tmpfs", 0, NULL));
}

static int do_init_module(struct answer *a)
{
    (void)a;
    return err_of(syscall(SYS_init_module, NULL, 0, ""));
}

static int do_personality(struct answer *a)
{
    (void)a;
    if (personality(0xffffffff) < 0)
        return 1000;
    return err_of(personality(ADDR_NO_RANDOMIZE));
}

/* ---- what keeps working ---- */

/* kill of the own group, the own pid and pid 0, sig 0 and a real one. */
static int do_own_signals(struct answer *a)
{
    sigset_t s;

    (void)a;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    if (kill(0, 0) < 0 || kill(getpid(), 0) < 0 || kill(-getpid(), 0) < 0)
        return errno;
    if (kill(getpid(), SIGUSR1) < 0 || kill(0, SIGUSR1) < 0)
        return errno;
    if (raise(SIGUSR1) != 0)
        return errno;
    return getpgid(0) == getpid() ? 0 : 1000;
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static void *sleeper(void *arg)
{
    (void)arg;
    while (!got_usr1)
        usleep(1000);
    return NULL;
}

static int do_threads(struct answer *a)
{
    pthread_t t;

    (void)a;
    signal(SIGUSR1, on_usr1);
    if (pthread_create(&t, NULL, sleeper, NULL) != 0)
        return 1000;
    if (pthread_kill(t, SIGUSR1) != 0)
        return 1001;
    pthread_join(t, NULL);
    return got_usr1 ? 0 : 1002;
}

static int do_big_malloc(struct answer *a)
{
    size_t len = (size_t)512 << 20;
    char *p = malloc(len);

    (void)a;
    if (p == NULL)
        return ENOMEM;
    p[0] = 1;
    p[len / 2] = 2;
    p[len - 1] = 3;
    free(p);
    return 0;
}

/* A forked child (a plugin may fork) can still signal its group. */
static int do_fork(struct answer *a)
{
    pid_t pid;
    int st;

    (void)a;
    pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0)
        _exit(kill(0, 0) == 0 && kill(getppid(), 0) == 0 ? 0 : 1);
    if (waitpid(pid, &st, 0) != pid)
        return errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1000;
}

static int do_limits(struct answer *a)
{
    struct rlimit core, files;

    if (getrlimit(RLIMIT_CORE, &core) < 0 || getrlimit(RLIMIT_NOFILE, &files) < 0)
        return errno;
    snprintf(a->text, sizeof(a->text), "%llu %llu %llu %llu", (unsigned long long)core.rlim_cur,
             (unsigned long long)core.rlim_max, (unsigned long long)files.rlim_cur,
             (unsigned long long)files.rlim_max);
    /* raising the hard limit again is refused */
    files.rlim_max = files.rlim_cur = MAX_FILES * 2;
    return geteuid() == 0 ? 0 : (setrlimit(RLIMIT_NOFILE, &files) == 0 ? 1000 : 0);
}

/* ---- files (Landlock) ---- */

static int open_err(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);

    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static char path_arg[512];
static int flags_arg;

static int do_open(struct answer *a)
{
    (void)a;
    return open_err(path_arg, flags_arg);
}

/* Opens path with flags in a sandboxed child; its errno, 0 if it opened. */
static int try_open(const char *dir, const char *name, int flags)
{
    if (name != NULL)
        snprintf(path_arg, sizeof(path_arg), "%s/%s", dir, name);
    else
        snprintf(path_arg, sizeof(path_arg), "%s", dir);
    flags_arg = flags;
    return try_(do_open);
}

/* The plugin as a sealed memfd, through /proc/self/fd, with dlopen and the
 * worker's loader. */
static int do_memfd_plugin(struct answer *a)
{
    struct plg_source src = {"good", NULL};
    struct plg_registry *reg;
    char path[64];
    char err[512];
    void *h;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", plugin_memfd);
    if (open_err(path, O_RDONLY) != 0)
        return open_err(path, O_RDONLY);
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(a->text, sizeof(a->text), "dlopen: %s", dlerror());
        return 1000;
    }
    if (dlsym(h, "wf_plugin_entry") == NULL)
        return 1001;
    dlclose(h);
    src.path = path;
    reg = plg_load(&src, 1, err, sizeof(err));
    if (reg == NULL) {
        snprintf(a->text, sizeof(a->text), "plg_load: %s", err);
        return 1002;
    }
    if (plg_workflow(reg, "hello-flow") == NULL)
        return 1003;
    plg_unload(reg);
    return 0;
}

/* The plugin as a file in a read-only path, as workers load it today. */
static int do_file_plugin(struct answer *a)
{
    struct plg_source src = {"good", ro_plugin};
    struct plg_registry *reg;
    char err[512];

    reg = plg_load(&src, 1, err, sizeof(err));
    if (reg == NULL) {
        snprintf(a->text, sizeof(a->text), "plg_load: %s", err);
        return 1000;
    }
    plg_unload(reg);
    return 0;
}

/* What glibc, the loader and the sanitizers read. */
static int do_runtime_reads(struct answer *a)
{
    char buf[256];
    FILE *f = fopen("/proc/self/maps", "r");
    pthread_attr_t attr;
    void *stack;
    size_t size;
    long cpus;

    if (f == NULL)
        return errno;
    if (fgets(buf, sizeof(buf), f) == NULL) {
        fclose(f);
        return 1000;
    }
    fclose(f);
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 1001;
    if (pthread_attr_getstack(&attr, &stack, &size) != 0 || size == 0)
        return 1002;
    pthread_attr_destroy(&attr);
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(a->text, sizeof(a->text), "%ld", cpus);
    if (open_err("/proc/self/exe", O_RDONLY) != 0)
        return open_err("/proc/self/exe", O_RDONLY);
    if (open_err("/dev/null", O_WRONLY | O_TRUNC) != 0)
        return open_err("/dev/null", O_WRONLY | O_TRUNC);
    if (open_err("/dev/urandom", O_RDONLY) != 0)
        return open_err("/dev/urandom", O_RDONLY);
    /* the time zone (a link into /usr/share/zoneinfo), when the host has one */
    if (access("/etc/localtime", F_OK) == 0 && open_err("/etc/localtime", O_RDONLY) != 0)
        return open_err("/etc/localtime", O_RDONLY);
    if (dlopen("libcjson.so.1", RTLD_NOW | RTLD_LOCAL) == NULL) {
        snprintf(a->text, sizeof(a->text), "dlopen by soname: %s", dlerror());
        return 1003;
    }
    {
        /* name resolution through nsswitch.conf and /etc/hosts (libcurl
         * answers "localhost" by itself, so httpRequest does not tell) */
        struct addrinfo hints, *res = NULL;
        int rc;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        rc = getaddrinfo("localhost", "80", &hints, &res);
        if (rc != 0) {
            snprintf(a->text, sizeof(a->text), "getaddrinfo: %s", gai_strerror(rc));
            return 1005;
        }
        freeaddrinfo(res);
    }
    return cpus > 0 ? 0 : 1004;
}

/* ---- outbound HTTP (httpRequest of the sample activities) ---- */

static void http_log(struct wf_activity_ctx *a, enum wf_log_level level, const char *fmt, ...)
{
    (void)a;
    (void)level;
    (void)fmt;
}

static char http_fail_msg[1024];

__attribute__((format(printf, 2, 3))) static void http_fail(struct wf_activity_ctx *a,
                                                            const char *fmt, ...)
{
    va_list ap;

    (void)a;
    va_start(ap, fmt);
    vsnprintf(http_fail_msg, sizeof(http_fail_msg), fmt, ap);
    va_end(ap);
}

static int http_cancelled(struct wf_activity_ctx *a)
{
    (void)a;
    return 0;
}

/* Loads the plugin from its memfd and GETs http://localhost:<port>/. */
static int do_http_request(struct answer *a)
{
    static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    struct wf_activity_api api = {sizeof(api), http_log, http_fail, http_cancelled};
    struct wf_activity_ctx ctx = {sizeof(ctx), &api, "httpRequest", "", 1, 0, NULL};
    const struct wf_activity_def *def;
    struct plg_source src = {"httpRequest", NULL};
    struct plg_registry *reg;
    cJSON *in, *out = NULL;
    char path[64], url[128], err[512];
    enum wf_status st;
    char *text;

    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
        unsetenv(proxies[i]);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", sample_memfd);
    src.path = path;
    reg = plg_load(&src, 1, err, sizeof(err));
    if (reg == NULL) {
        snprintf(a->text, sizeof(a->text), "plg_load: %s", err);
        return 1000;
    }
    def = plg_activity(reg, "httpRequest");
    if (def == NULL)
        return 1001;
    in = cJSON_CreateObject();
    snprintf(url, sizeof(url), "http://localhost:%d/sandbox", http_port);
    cJSON_AddStringToObject(in, "url", url);
    cJSON_AddNumberToObject(in, "timeoutMs", 10000);
    st = def->fn(&ctx, in, &out);
    cJSON_Delete(in);
    if (st != WF_OK) {
        snprintf(a->text, sizeof(a->text), "httpRequest: %d %s", (int)st, http_fail_msg);
        return 1002;
    }
    text = cJSON_PrintUnformatted(out);
    snprintf(a->text, sizeof(a->text), "%s", text != NULL ? text : "");
    free(text);
    cJSON_Delete(out);
    plg_unload(reg);
    return 0;
}

/* Answers one request on http_listener (waits up to 15 s for it). */
static void serve_once(void)
{
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}";
    struct pollfd pfd = {http_listener, POLLIN, 0};
    char req[4096];
    size_t got = 0;
    int fd;

    if (poll(&pfd, 1, 15000) != 1)
        return;
    fd = accept(http_listener, NULL, NULL);
    if (fd < 0)
        return;
    while (got < sizeof(req) - 1) {
        ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    if (write(fd, reply, sizeof(reply) - 1) < 0)
        fprintf(stderr, "could not answer the request: %s\n", strerror(errno));
    close(fd);
}

#ifdef TEST_ASAN
/* An AddressSanitizer report from inside the sandbox; the child dies. */
static int do_asan_report(struct answer *a)
{
    char *p = malloc(8);
    volatile size_t past_end = 8; /* hidden from the compiler's bounds checks */

    (void)a;
    p[past_end] = 1;
    free(p);
    return 0;
}
#endif

/* ---- set-up ---- */

static int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok;

    if (fd < 0)
        return -1;
    ok = write(fd, data, len) == (ssize_t)len;
    close(fd);
    return ok ? 0 : -1;
}

/* A sealed memfd with the bytes of the file at path, or -1. */
static int memfd_of(const char *path, char **bytes_out, size_t *len_out)
{
    char *bytes = malloc(16 << 20);
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    int fd;

    if (f != NULL && bytes != NULL)
        len = fread(bytes, 1, 16 << 20, f);
    if (f != NULL)
        fclose(f);
    fd = len > 0 ? memfd_sealed("plugin", bytes, len) : -1;
    if (fd >= 0 && bytes_out != NULL) {
        *bytes_out = bytes;
        *len_out = len;
    } else {
        free(bytes);
    }
    return fd;
}

static int listen_local(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    http_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (http_listener < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(http_listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(http_listener, 4) < 0 ||
        getsockname(http_listener, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    http_port = ntohs(sa.sin_port);
    return 0;
}

static int set_up(void)
{
    char plugin[512];
    char *bytes = NULL;
    size_t len = 0;

    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(scratch, sizeof(scratch), "%s/scratch", base);
    snprintf(rw, sizeof(rw), "%s/rw", base);
    snprintf(ro, sizeof(ro), "%s/ro", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    snprintf(ro_plugin, sizeof(ro_plugin), "%s/good.so", ro);
    if (mkdir(scratch, 0700) < 0 || mkdir(rw, 0700) < 0 || mkdir(ro, 0700) < 0 ||
        mkdir(outside, 0700) < 0)
        return -1;
    snprintf(plugin, sizeof(plugin), "%s/good.so", WF_TEST_PLUGIN_DIR);
    plugin_memfd = memfd_of(plugin, &bytes, &len);
    if (plugin_memfd < 0 || write_file(ro_plugin, bytes, len) < 0) {
        free(bytes);
        return -1;
    }
    free(bytes);
    sample_memfd = memfd_of(WF_SAMPLE_ACTIVITIES_SO, NULL, NULL);
    if (sample_memfd < 0 || listen_local() < 0)
        return -1;
    {
        char p[512];
        snprintf(p, sizeof(p), "%s/file.txt", ro);
        if (write_file(p, "ro", 2) < 0)
            return -1;
        snprintf(p, sizeof(p), "%s/secret.txt", outside);
        if (write_file(p, "secret", 6) < 0)
            return -1;
    }
    return 0;
}

static void clean_up(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
}

/* ---- the checks ---- */

static void test_config_from_env(void)
{
    struct sandbox_config cfg;
    char err[256];

    unsetenv("WF_SCRATCH_DIR");
    unsetenv("WF_SANDBOX_RW_PATHS");
    unsetenv("WF_SANDBOX_RO_PATHS");
    unsetenv("WF_WORKER_MAX_AS_MB");
    unsetenv("WF_WORKER_MAX_FILES");
    unsetenv("WF_WORKER_MAX_PROCS");
    CHECK_INT(sandbox_config_from_env(&cfg, err, sizeof(err)), 0);
    CHECK(cfg.scratch_dir == NULL && cfg.rw_paths == NULL && cfg.ro_paths == NULL);
    CHECK(cfg.max_as_bytes == 0 && cfg.max_files == 0 && cfg.max_procs == 0);

    setenv("WF_SCRATCH_DIR", "/var/lib/wf/scratch/p1", 1);
    setenv("WF_SANDBOX_RW_PATHS", "/data/a:/data/b", 1);
    setenv("WF_SANDBOX_RO_PATHS", "/srv/ro", 1);
    setenv("WF_WORKER_MAX_AS_MB", "1024", 1);
    setenv("WF_WORKER_MAX_FILES", "256", 1);
    setenv("WF_WORKER_MAX_PROCS", "64", 1);
    CHECK_INT(sandbox_config_from_env(&cfg, err, sizeof(err)), 0);
    CHECK_STR(cfg.scratch_dir, "/var/lib/wf/scratch/p1");
    CHECK_STR(cfg.rw_paths, "/data/a:/data/b");
    CHECK_STR(cfg.ro_paths, "/srv/ro");
    CHECK_INT(cfg.max_as_bytes, 1024L << 20);
    CHECK_INT(cfg.max_files, 256);
    CHECK_INT(cfg.max_procs, 64);

    setenv("WF_SANDBOX_RW_PATHS", "/data/a:relative", 1);
    CHECK_INT(sandbox_config_from_env(&cfg, err, sizeof(err)), -1);
    CHECK(strstr(err, "WF_SANDBOX_RW_PATHS") != NULL && strstr(err, "relative") != NULL);
    setenv("WF_SANDBOX_RW_PATHS", "/data/a", 1);
    setenv("WF_SCRATCH_DIR", "scratch", 1);
    CHECK_INT(sandbox_config_from_env(&cfg, err, sizeof(err)), -1);
    CHECK(strstr(err, "WF_SCRATCH_DIR") != NULL);
    setenv("WF_SCRATCH_DIR", "/s", 1);
    setenv("WF_WORKER_MAX_FILES", "lots", 1);
    CHECK_INT(sandbox_config_from_env(&cfg, err, sizeof(err)), -1);
    CHECK(strstr(err, "WF_WORKER_MAX_FILES must be an integer") != NULL);
    setenv("WF_WORKER_MAX_FILES", "4", 1);
    CHECK_INT(sandbox_config_from_env(&cfg, err, sizeof(err)), -1);
    unsetenv("WF_SCRATCH_DIR");
    unsetenv("WF_SANDBOX_RW_PATHS");
    unsetenv("WF_SANDBOX_RO_PATHS");
    unsetenv("WF_WORKER_MAX_AS_MB");
    unsetenv("WF_WORKER_MAX_FILES");
    unsetenv("WF_WORKER_MAX_PROCS");
}

static int nothing(struct answer *a)
{
    (void)a;
    return 0;
}

/* The report says which layers are up; sets have_landlock, have_seccomp. */
static void test_report(void)
{
    struct answer a;
    cJSON *r;

    CHECK_INT(in_sandbox(nothing, &a), 0);
    r = cJSON_Parse(a.text);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    printf("test_sandbox: report %s\n", a.text);
    CHECK(ju_bool(r, "noNewPrivs"));
    CHECK(ju_bool(r, "rlimits"));
    CHECK(ju_bool(r, "processGroup"));
    have_landlock = ju_bool(r, "landlock");
    have_seccomp = ju_bool(r, "seccomp");
#if defined(__x86_64__)
    CHECK(have_seccomp);
    CHECK_STR(ju_str(r, "seccompArch"), "x86_64");
#elif defined(__aarch64__)
    CHECK(have_seccomp);
    CHECK_STR(ju_str(r, "seccompArch"), "aarch64");
#endif
    if (have_landlock) {
        int64_t abi = 0;
        CHECK(ju_int(r, "landlockAbi", &abi) == 0 && abi >= 1);
        CHECK(cJSON_GetObjectItem(r, "warnings") == NULL);
    } else {
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "warnings")) >= 1);
    }
    cJSON_Delete(r);
}

static void test_seccomp(void)
{
    struct answer a;

    if (!have_seccomp) {
        printf("test_sandbox: no seccomp filter on this machine; its checks skipped\n");
        return;
    }
    CHECK_INT(try_(do_ptrace_parent), EPERM);
    CHECK_INT(try_(do_vm_readv_parent), EPERM);
    CHECK_INT(try_(do_kill_parent_term), EPERM);
    CHECK_INT(try_(do_kill_parent_kill), EPERM);
    CHECK_INT(try_(do_kill_parent_probe), EPERM);
    CHECK_INT(try_(do_kill_everyone), EPERM);
    CHECK_INT(try_(do_tgkill_parent), EPERM);
    CHECK_INT(try_(do_tkill_parent), EPERM);
    CHECK_INT(try_(do_sigqueue_parent), EPERM);
    CHECK_INT(try_(do_prlimit_parent), EPERM);
    CHECK_INT(try_(do_setpriority_group), EPERM);
    CHECK_INT(try_(do_unshare_user), EPERM);
    CHECK_INT(try_(do_clone_newns), EPERM);
    CHECK_INT(try_(do_clone3), ENOSYS);
    CHECK_INT(try_(do_mount), EPERM);
    CHECK_INT(try_(do_init_module), EPERM);
    CHECK_INT(try_(do_personality), EPERM);
    /* the parent survived all of it */
    CHECK_INT(parent_sentinel, 0x5eed);
    CHECK_INT(in_sandbox(do_own_signals, &a), 0);
    CHECK_INT(a.err, 0);
}

static void test_still_works(void)
{
    struct answer a;
    char want[64];

    CHECK_INT(try_(do_threads), 0);
    CHECK_INT(try_(do_big_malloc), 0);
    CHECK_INT(try_(do_fork), 0);
    CHECK_INT(in_sandbox(do_limits, &a), 0);
    CHECK_INT(a.err, 0);
    snprintf(want, sizeof(want), "0 0 %d %d", MAX_FILES, MAX_FILES);
    CHECK_STR(a.text, want);
    CHECK_INT(in_sandbox(do_runtime_reads, &a), 0);
    if (a.err != 0)
        fprintf(stderr, "runtime reads: %d %s\n", a.err, a.text);
    CHECK_INT(a.err, 0);
    CHECK_INT(in_sandbox(do_memfd_plugin, &a), 0);
    if (a.err != 0)
        fprintf(stderr, "memfd plugin: %d %s\n", a.err, a.text);
    CHECK_INT(a.err, 0);
    /* outbound HTTP through libcurl, loaded on first use, with name
     * resolution through /etc/hosts */
    CHECK_INT(in_sandbox_with(do_http_request, serve_once, &a), 0);
    if (a.err != 0)
        fprintf(stderr, "httpRequest: %d %s\n", a.err, a.text);
    CHECK_INT(a.err, 0);
    CHECK(strstr(a.text, "\"status\":200") != NULL && strstr(a.text, "\"ok\":true") != NULL);
}

static void test_landlock(void)
{
    struct answer a;

    if (!have_landlock) {
        printf("test_sandbox: Landlock not applied (see the report above); its checks skipped\n");
        return;
    }
    /* writing outside the allowed paths */
    CHECK_INT(try_open(outside, "new.txt", O_WRONLY | O_CREAT), EACCES);
    CHECK_INT(try_open("/tmp", "wf-test-sandbox-escape", O_WRONLY | O_CREAT), EACCES);
    CHECK_INT(try_open("/dev/shm", "wf-test-sandbox", O_RDWR | O_CREAT), EACCES);
    /* reading outside: a file of another project, /etc beyond the list */
    CHECK_INT(try_open(outside, "secret.txt", O_RDONLY), EACCES);
    CHECK_INT(try_open("/etc/shadow", NULL, O_RDONLY),
              access("/etc/shadow", F_OK) == 0 ? EACCES : ENOENT);
    CHECK_INT(try_open("/proc/1/environ", NULL, O_RDONLY), EACCES);
    /* what a worker may read */
    CHECK_INT(try_open("/etc/passwd", NULL, O_RDONLY), 0);
    CHECK_INT(try_open("/etc/hosts", NULL, O_RDONLY), 0);
    CHECK_INT(try_open("/usr/lib", NULL, O_RDONLY | O_DIRECTORY), 0);
    /* scratch and the RW path: create, write, read */
    CHECK_INT(try_open(scratch, "a.txt", O_WRONLY | O_CREAT), 0);
    CHECK_INT(try_open(scratch, "a.txt", O_RDONLY), 0);
    CHECK_INT(try_open(rw, "b.txt", O_WRONLY | O_CREAT), 0);
    /* the RO path: read only */
    CHECK_INT(try_open(ro, "file.txt", O_RDONLY), 0);
    CHECK_INT(try_open(ro, "file.txt", O_WRONLY), EACCES);
    CHECK_INT(try_open(ro, "new.txt", O_WRONLY | O_CREAT), EACCES);
    /* plugins as files under the RO path, as workers load them today */
    CHECK_INT(in_sandbox(do_file_plugin, &a), 0);
    if (a.err != 0)
        fprintf(stderr, "file plugin: %d %s\n", a.err, a.text);
    CHECK_INT(a.err, 0);
}

/* ---- the worker program ---- */

/* Receives one message from fd within ms; NULL on timeout or error. */
static cJSON *recv_within(int fd, int ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    cJSON *msg = NULL;

    if (poll(&pfd, 1, ms) != 1 || msg_recv(fd, &msg, NULL) != 1)
        return NULL;
    return msg;
}

/* Starts wf-worker for project p1 with its sockets on fds 3 and 4 and the
 * given extra environment entry (or NULL); *ctl, *work: our ends. */
static pid_t start_worker(const char *extra_env, int *ctl, int *work)
{
    static char prog[] = "wf-worker", role[] = "worker", project[] = "p1", id[] = "test:p1",
                hb[] = "1000", level[] = "LOG_LEVEL=error";
    char parent[24];
    char *argv[] = {prog, role, project, id, hb, parent, NULL};
    /* As root, the worker needs a user to switch to (worker/privs.c). */
    static char uid[] = "WF_WORKER_UID=65534", gid[] = "WF_WORKER_GID=65534";
    char *envp[] = {level, uid, gid, (char *)(uintptr_t)extra_env, NULL};
    int c[2], w[2];
    pid_t pid;

    snprintf(parent, sizeof(parent), "%d", (int)getpid());
    if (msg_socketpair(c) < 0)
        return -1;
    if (msg_socketpair(w) < 0) {
        close(c[0]);
        close(c[1]);
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (dup2(c[1], 3) < 0 || dup2(w[1], 4) < 0 || null < 0 || dup2(null, 2) < 0)
            _exit(111);
        close_range(5, ~0U, 0);
        execve(WF_WORKER_BIN, argv, envp);
        _exit(127);
    }
    close(c[1]);
    close(w[1]);
    *ctl = c[0];
    *work = w[0];
    return pid;
}

static void test_worker_program(void)
{
    int ctl = -1, work = -1, st = 0;
    cJSON *msg, *sb;
    pid_t pid;

    /* A sandboxed worker says so in its hello, then stops with the manager. */
    pid = start_worker("WF_WORKER_MAX_FILES=64", &ctl, &work);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    msg = recv_within(work, 10000);
    CHECK(msg != NULL);
    CHECK_STR(ju_str(msg, "t"), "hello");
    sb = cJSON_GetObjectItem(msg, "sandbox");
    CHECK(cJSON_IsObject(sb));
    CHECK(ju_bool(sb, "noNewPrivs") && ju_bool(sb, "rlimits") && ju_bool(sb, "processGroup"));
    CHECK_INT(ju_bool(sb, "seccomp"), have_seccomp);
    CHECK_INT(ju_bool(sb, "landlock"), have_landlock);
    cJSON_Delete(msg);
    close(ctl);
    close(work);
    CHECK_INT(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* One that cannot: a load error for the manager, exit 1, no hello. */
    pid = start_worker("WF_SANDBOX_RW_PATHS=relative/path", &ctl, &work);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    msg = recv_within(ctl, 10000);
    CHECK(msg != NULL);
    CHECK_STR(ju_str(msg, "t"), "load_error");
    CHECK(ju_str(msg, "error") != NULL &&
          strstr(ju_str(msg, "error"), "could not sandbox the worker: WF_SANDBOX_RW_PATHS") ==
              ju_str(msg, "error"));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(msg, "transient")));
    cJSON_Delete(msg);
    CHECK_INT(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    msg = recv_within(work, 0);
    CHECK(msg == NULL);
    cJSON_Delete(msg);
    close(ctl);
    close(work);
}

#ifdef TEST_ASAN
/* AddressSanitizer can still report, symbolized, inside the sandbox. */
static void test_asan_report(void)
{
    char out[1 << 16];
    size_t got = 0;
    ssize_t n;
    int p[2];
    pid_t pid;

    CHECK_INT(pipe(p), 0);
    pid = fork();
    if (pid == 0) {
        struct answer a;
        struct sandbox_config cfg = config();
        char err[256];

        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        if (sandbox_apply(&cfg, NULL, err, sizeof(err)) < 0)
            _exit(2);
        do_asan_report(&a);
        _exit(0);
    }
    close(p[1]);
    while (got < sizeof(out) - 1 && (n = read(p[0], out + got, sizeof(out) - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(p[0]);
    waitpid(pid, NULL, 0);
    CHECK(strstr(out, "heap-buffer-overflow") != NULL);
    CHECK(strstr(out, "test_sandbox.c") != NULL);
}
#endif

int main(void)
{
    log_init("test", LOG_LVL_ERROR, 0);
    if (set_up() < 0) {
        fprintf(stderr, "test_sandbox: could not set up %s: %s\n", base, strerror(errno));
        clean_up();
        CHECK(0);
        TEST_REPORT("test_sandbox");
    }
    test_config_from_env();
    test_report();
    test_seccomp();
    test_still_works();
    test_landlock();
    test_worker_program();
#ifdef TEST_ASAN
    test_asan_report();
#endif
    close(plugin_memfd);
    close(sample_memfd);
    close(http_listener);
    clean_up();
    TEST_REPORT("test_sandbox");
}
