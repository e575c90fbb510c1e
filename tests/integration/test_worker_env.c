/*
 * test_worker_env.c: a worker holds no database credentials.
 *
 * Its /proc/<pid>/environ has no DATABASE_URL and no entry containing the
 * test database's URL, name, host or password; its readable memory does not
 * contain the (unique) database name either; /proc/<pid>/exe is the server
 * binary and its argv is `<prog> worker <projectId>`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct th_server srv;

/* 1 when some NUL-separated entry of buf (len bytes) contains needle */
static int entries_contain(const char *buf, size_t len, const char *needle)
{
    size_t off = 0;

    if (needle == NULL || needle[0] == '\0')
        return 0;
    while (off < len) {
        const char *e = buf + off;

        if (strstr(e, needle) != NULL) {
            fprintf(stderr, "worker environ entry \"%s\" contains \"%s\"\n", e, needle);
            return 1;
        }
        off += strlen(e) + 1;
    }
    return 0;
}

/*
 * Searches every readable mapping of pid (up to 256 MiB each) for needle
 * through /proc/<pid>/mem, within 10 s and 1 GiB in all. Returns 1 found,
 * 0 not found, -1 when the memory could not be read or the scan hit a bound.
 */
static int memory_contains(pid_t pid, const char *needle)
{
    char path[64];
    char *maps;
    char *line;
    char *buf;
    size_t nlen = strlen(needle);
    size_t chunk = 1u << 20;
    long long total = 0;
    long long deadline = th_now_ms() + 10000;
    int read_any = 0;
    int found = 0;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
    maps = th_read_file(path, NULL);
    if (maps == NULL)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/mem", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    buf = malloc(chunk + nlen);
    if (fd < 0 || buf == NULL) {
        if (fd >= 0)
            close(fd);
        free(buf);
        free(maps);
        return -1;
    }
    line = maps;
    while (!found && line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        unsigned long long lo;
        unsigned long long hi;
        unsigned long long at;
        char perms[8];

        if (nl != NULL)
            *nl = '\0';
        /*
         * Huge mappings are reservations (sanitizer shadow memory), not
         * data the worker was given; skip them, and bound the whole scan.
         */
        if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 && perms[0] == 'r' &&
            hi - lo <= (256ULL << 20) && strstr(line, "[vvar]") == NULL &&
            strstr(line, "[vsyscall]") == NULL) {
            for (at = lo; at < hi && !found && total < (1LL << 30) && th_now_ms() < deadline;
                 at += chunk) {
                size_t want = (size_t)((hi - at) < chunk ? (hi - at) : chunk);
                ssize_t n = pread(fd, buf, want, (off_t)at);

                if (n <= 0)
                    break;
                read_any = 1;
                total += n;
                if (memmem(buf, (size_t)n, needle, nlen) != NULL)
                    found = 1;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    close(fd);
    free(buf);
    free(maps);
    if (!read_any)
        return -1;
    if (!found && (total >= (1LL << 30) || th_now_ms() >= deadline)) {
        fprintf(stderr, "memory scan of pid %ld incomplete\n", (long)pid);
        return -1;
    }
    return found;
}

/* the value of keyword kw in the connection string url, malloc'ed, or NULL */
static char *conninfo_value(const char *url, const char *kw)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    PQconninfoOption *o;
    char *v = NULL;

    if (opts == NULL)
        return NULL;
    for (o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, kw) == 0 && o->val != NULL && o->val[0] != '\0')
            v = strdup(o->val);
    PQconninfoFree(opts);
    return v;
}

int main(void)
{
    static const char *const p1[] = {"p1"};
    struct th_db db;
    char path[64];
    char *environ_buf = NULL;
    char *cmdline = NULL;
    char *host = NULL;
    char *password = NULL;
    size_t len = 0;
    size_t clen = 0;
    struct stat st_exe;
    char worker_bin[4096];
    struct stat st_bin;
    pid_t pid;
    long st;
    int mem;
    int rc;

    /* the test runs no SQL: no connection */
    rc = th_setup("test_worker_env", &db, &srv, NULL, NULL);
    if (rc == TH_SKIP)
        return TH_SKIP;
    if (rc != 0)
        goto out;

    if (th_create_and_start(&srv, p1, 1, &pid) != 0)
        goto out;
    if (!CHECK(pid > 0 && th_pid_alive(pid)))
        goto out;

    snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
    environ_buf = th_read_file(path, &len);
    if (environ_buf == NULL && geteuid() != 0) {
        /* Workers are not dumpable (worker/privs.c): their environ and
         * memory are root's alone to read, which is the point. */
        printf("test_worker_env: the worker's environ is unreadable to this non-root user (it "
               "is not dumpable); run as root to check what it holds\n");
        CHECK(th_pid_alive(pid));
        goto out;
    }
    if (!CHECK(environ_buf != NULL))
        goto out;
    {
        size_t off = 0;
        int has_dburl = 0;

        while (off < len) {
            if (strncmp(environ_buf + off, "DATABASE_URL=", 13) == 0)
                has_dburl = 1;
            off += strlen(environ_buf + off) + 1;
        }
        CHECK(!has_dburl);
    }
    host = conninfo_value(db.url, "host");
    if (host == NULL)
        host = conninfo_value(db.url, "hostaddr");
    password = conninfo_value(db.url, "password");
    CHECK(!entries_contain(environ_buf, len, db.url));
    CHECK(!entries_contain(environ_buf, len, db.name));
    CHECK(!entries_contain(environ_buf, len, host));
    CHECK(!entries_contain(environ_buf, len, password));
    CHECK(!entries_contain(environ_buf, len, "WF_TEST_DATABASE_URL"));
    CHECK(!entries_contain(environ_buf, len, "PGPASSWORD"));

    /* exec'd from wf-worker beside the server binary (a program without any
     * database client library), argv: <prog> worker p1 */
    snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
    CHECK(stat(path, &st_exe) == 0);
    snprintf(worker_bin, sizeof(worker_bin), "%s", getenv("WF_SERVER_BIN"));
    if (strrchr(worker_bin, '/') != NULL)
        snprintf(strrchr(worker_bin, '/') + 1,
                 sizeof(worker_bin) - (size_t)(strrchr(worker_bin, '/') + 1 - worker_bin),
                 "wf-worker");
    CHECK(stat(worker_bin, &st_bin) == 0);
    CHECK(st_exe.st_ino == st_bin.st_ino && st_exe.st_dev == st_bin.st_dev);
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
    cmdline = th_read_file(path, &clen);
    if (CHECK(cmdline != NULL && clen > 0)) {
        const char *argv0 = cmdline;
        const char *base = strrchr(argv0, '/');
        const char *argv1 = argv0 + strlen(argv0) + 1;
        const char *argv2;

        base = base ? base + 1 : argv0;
        CHECK(strcmp(argv0, worker_bin) == 0 || strcmp(base, "wf-worker") == 0);
        if (CHECK((size_t)(argv1 - cmdline) < clen)) {
            CHECK_STR(argv1, "worker");
            argv2 = argv1 + strlen(argv1) + 1;
            if (CHECK((size_t)(argv2 - cmdline) < clen))
                CHECK_STR(argv2, "p1");
        }
    }
    {
        char comm[32];

        CHECK(th_proc_comm(pid, comm, sizeof(comm)) == 0);
        CHECK_STR(comm, "wf-worker");
    }

    /* nor anywhere in its memory (it was exec'd, not just forked) */
    mem = memory_contains(pid, db.name);
    CHECK(mem != -1);
    if (mem == 1)
        fprintf(stderr, "worker memory contains the database name %s\n", db.name);
    CHECK(mem == 0);

    st = th_post_project(&srv, "/workers/stop", "p1", NULL);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_INT(th_server_stop(&srv, 15000), 0);
out:
    free(environ_buf);
    free(cmdline);
    free(host);
    free(password);
    return th_teardown(&db, &srv, NULL);
}
