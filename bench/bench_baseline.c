/*
 * bench_baseline.c: what the machine itself allows, timed in the same run as
 * the figures it is the baseline of (bench/run).
 *
 *   bench_baseline fork N            fork + waitpid (child _exit(0)s at once)
 *   bench_baseline forkexec N [PROG [ARG...]]
 *                                    fork + exec PROG (default /bin/true) +
 *                                    waitpid; PROG must exit 0
 *   bench_baseline forkexec-any N PROG [ARG...]
 *                                    the same, any exit status will do (a
 *                                    program run only for its exec and
 *                                    dynamic linking, e.g. with bad usage)
 *   bench_baseline spawn-dlopen N SO fork + exec of bench_dlopen (beside this
 *                                    program), which dlopens SO as a worker
 *                                    does and exits: the floor of a worker
 *                                    start (DESIGN.md §2)
 *   bench_baseline pgconnect N URL   PQconnectdb + PQfinish (fails on a bad
 *                                    connection)
 *   bench_baseline plugin-names SO   prints the plugin's activity names, one
 *                                    a line (exit 1 if it is not a plugin)
 *
 * Each timing command prints one JSON object with the percentiles in ms.
 * N is at most 100000 and every loop also stops after 120 s.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <wf/plugin.h>

#include "stats.h"

#define MAX_N 100000
#define MAX_SECONDS 120.0

extern char **environ;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *label, double *v, long n, long errors)
{
    double sum = 0;

    qsort(v, (size_t)n, sizeof(double), stats_cmp_double);
    for (long i = 0; i < n; i++)
        sum += v[i];
    printf("{\"label\":\"%s\",\"n\":%ld,\"errors\":%ld,\"mean_ms\":%.4f,\"min_ms\":%.4f,"
           "\"p50_ms\":%.4f,\"p95_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}\n",
           label, n, errors, n > 0 ? sum / (double)n : 0.0, n > 0 ? v[0] : 0.0, stats_pct(v, n, 50),
           stats_pct(v, n, 95), stats_pct(v, n, 99), n > 0 ? v[n - 1] : 0.0);
}

/* Runs argv in a child (or just _exit(0) when argv is NULL); returns 0 if it
 * exited 0 (or, with any_status, if it exited at all but for a failed exec). */
static int spawn_wait(char *const *argv, int any_status)
{
    int st;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (argv != NULL) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, STDOUT_FILENO);
            execve(argv[0], argv, environ);
        }
        _exit(argv != NULL ? 127 : 0);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st) == 0 || (any_status && WEXITSTATUS(st) != 127) ? 0 : -1;
}

static int plugin_names(const char *so)
{
    wf_plugin_entry_fn entry;
    const struct wf_plugin *p;
    void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);

    if (dl == NULL) {
        fprintf(stderr, "bench_baseline: %s\n", dlerror());
        return 1;
    }
    *(void **)&entry = dlsym(dl, WF_PLUGIN_ENTRY_SYMBOL);
    p = entry != NULL ? entry() : NULL;
    if (p == NULL || p->magic != WF_PLUGIN_MAGIC || p->abi_version != WF_ABI_VERSION) {
        fprintf(stderr, "bench_baseline: %s is not a wf plugin of this ABI\n", so);
        return 1;
    }
    for (size_t i = 0; i < p->n_activities; i++)
        printf("%s\n", p->activities[i].name);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_baseline fork N | forkexec[-any] N [PROG [ARG...]] |\n"
                    "                      spawn-dlopen N SO |\n"
                    "                      pgconnect N URL | plugin-names SO\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static char bin_true[] = "/bin/true";
    char self[4096];
    char *args[4];
    char **argvp = args;
    const char *cmd;
    double *v;
    double t0;
    long n, i, errors = 0, done = 0;
    char *end;
    ssize_t sl;

    if (argc == 3 && strcmp(argv[1], "plugin-names") == 0)
        return plugin_names(argv[2]);
    if (argc < 3)
        usage();
    cmd = argv[1];
    errno = 0;
    n = strtol(argv[2], &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > MAX_N)
        usage();
    v = calloc((size_t)n, sizeof(double));
    if (v == NULL)
        return 2;

    if (strcmp(cmd, "fork") == 0 && argc == 3) {
        args[0] = NULL;
    } else if (strcmp(cmd, "forkexec") == 0 || strcmp(cmd, "forkexec-any") == 0) {
        args[0] = argc == 4 ? argv[3] : bin_true;
        args[1] = NULL;
        if (argc > 4)
            argvp = argv + 3;
    } else if (strcmp(cmd, "spawn-dlopen") == 0 && argc == 4) {
        char *slash;

        sl = readlink("/proc/self/exe", self, sizeof(self) - 32);
        if (sl <= 0)
            return 2;
        self[sl] = '\0';
        slash = strrchr(self, '/');
        if (slash == NULL)
            return 2;
        snprintf(slash + 1, 32, "bench_dlopen");
        args[0] = self;
        args[1] = argv[3];
        args[2] = NULL;
    } else if (strcmp(cmd, "pgconnect") == 0 && argc == 4) {
        args[0] = NULL;
    } else {
        usage();
    }

    t0 = now_s();
    for (i = 0; i < n && now_s() - t0 < MAX_SECONDS; i++) {
        double t = now_s();
        int ok;

        if (strcmp(cmd, "pgconnect") == 0) {
            PGconn *c = PQconnectdb(argv[3]);
            ok = c != NULL && PQstatus(c) == CONNECTION_OK;
            if (!ok && errors == 0)
                fprintf(stderr, "bench_baseline: %s", c ? PQerrorMessage(c) : "out of memory\n");
            PQfinish(c);
        } else if (strcmp(cmd, "fork") == 0) {
            ok = spawn_wait(NULL, 0) == 0;
        } else {
            ok = spawn_wait(argvp, strcmp(cmd, "forkexec-any") == 0) == 0;
        }
        v[done++] = (now_s() - t) * 1000.0;
        if (!ok)
            errors++;
    }
    report(cmd, v, done, errors);
    free(v);
    return errors == 0 && done == n ? 0 : 1;
}
