/*
 * harness.c: assertions, fresh databases, server processes, SQL over
 * libpq and /proc inspection for the integration and crash tests (see
 * harness.h for the contracts); HTTP over libcurl, and the project and
 * worker helpers built on it, are in harness_http.c.
 *
 * Invariants: every wait is bounded by a deadline on the monotonic clock and
 * by an iteration count; every HTTP request goes to 127.0.0.1 with proxies
 * disabled; every process this file starts is in its own process group and
 * gets SIGTERM if the test process dies (PR_SET_PDEATHSIG), so a killed test
 * leaves as little behind as possible. Helpers print why they fail and return
 * -1 (or NULL); only the CHECK macros count failures, and the test steps
 * that stand for a test's own CHECKs (th_up, th_setup, th_create_and_start)
 * count theirs through the same macros.
 */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

extern char **environ;

static const char *test_name = "test";
static int n_passed;
static int n_failed;

/* ---- assertions ---------------------------------------------------------- */

int th_check(int ok, const char *file, int line, const char *expr)
{
    if (ok) {
        n_passed++;
        return 1;
    }
    n_failed++;
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
    return 0;
}

int th_check_int(long long a, long long b, const char *file, int line, const char *ea,
                 const char *eb)
{
    if (a == b) {
        n_passed++;
        return 1;
    }
    n_failed++;
    fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", file, line, ea, eb, a, b);
    return 0;
}

int th_check_str(const char *a, const char *b, const char *file, int line, const char *ea,
                 const char *eb)
{
    if (a != NULL && b != NULL && strcmp(a, b) == 0) {
        n_passed++;
        return 1;
    }
    n_failed++;
    fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", file, line, ea, eb,
            a ? a : "(null)", b ? b : "(null)");
    return 0;
}

int th_failures(void)
{
    return n_failed;
}

int th_init(const char *name, int need_db)
{
    test_name = name;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (getenv("WF_SERVER_BIN") == NULL || getenv("WF_SERVER_BIN")[0] == '\0') {
        printf("%s: WF_SERVER_BIN is not set (run through ctest); skipped\n", name);
        return -1;
    }
    if (need_db &&
        (getenv("WF_TEST_DATABASE_URL") == NULL || getenv("WF_TEST_DATABASE_URL")[0] == '\0')) {
        printf("%s: WF_TEST_DATABASE_URL is not set (a superuser URL of a "
               "throwaway PostgreSQL cluster); skipped\n",
               name);
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        printf("%s: could not initialise libcurl\n", name);
        return -1;
    }
    return 0;
}

int th_finish(void)
{
    printf("%s: %d passed, %d failed\n", test_name, n_passed, n_failed);
    curl_global_cleanup();
    if (n_passed + n_failed == 0) {
        /* A test that checked nothing proves nothing: it fails. */
        fprintf(stderr, "%s: ran no checks\n", test_name);
        return 1;
    }
    return n_failed == 0 ? 0 : 1;
}

/* ---- time and polling ---------------------------------------------------- */

long long th_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_sleep_ms(int ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int th_wait_until(th_cond_fn cond, void *arg, int timeout_ms, int interval_ms)
{
    long long deadline = th_now_ms() + timeout_ms;
    int max_iter;
    int i;

    if (interval_ms < 1)
        interval_ms = 1;
    max_iter = timeout_ms / interval_ms + 2;
    for (i = 0; i < max_iter; i++) {
        if (cond(arg))
            return 0;
        if (th_now_ms() >= deadline)
            break;
        th_sleep_ms(interval_ms);
    }
    return -1;
}

/* ---- files --------------------------------------------------------------- */

char *th_read_file(const char *path, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0;
    size_t used = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    for (;;) {
        ssize_t n;

        if (cap - used < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nbuf;

            if (ncap > TH_MAX_READ) {
                free(buf);
                close(fd);
                return NULL;
            }
            nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                free(buf);
                close(fd);
                return NULL;
            }
            buf = nbuf;
            cap = ncap;
        }
        n = read(fd, buf + used, cap - used - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    if (len != NULL)
        *len = used;
    return buf;
}

/* ---- databases ----------------------------------------------------------- */

/*
 * Writes into out the admin URL with its database replaced by dbname: for a
 * URI the path is replaced, for a keyword/value string "dbname=…" is
 * appended (a later keyword wins in libpq). Returns 0, or -1 if out is too
 * small.
 */
static int url_with_db(const char *admin, const char *dbname, char *out, size_t outlen)
{
    const char *scheme_end;
    const char *rest;
    size_t authority_len;
    const char *query;
    int n;

    if (strncmp(admin, "postgresql://", 13) != 0 && strncmp(admin, "postgres://", 11) != 0) {
        n = snprintf(out, outlen, "%s dbname=%s", admin, dbname);
        return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
    }
    scheme_end = strstr(admin, "://") + 3;
    rest = scheme_end + strcspn(scheme_end, "/?");
    authority_len = (size_t)(rest - admin);
    query = strchr(rest, '?');
    n = snprintf(out, outlen, "%.*s/%s%s", (int)authority_len, admin, dbname, query ? query : "");
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* drops NOTICEs such as "database … does not exist, skipping" */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *connect_url(const char *url)
{
    PGconn *conn = PQconnectdb(url);

    if (conn == NULL) {
        fprintf(stderr, "could not connect to the database: out of memory\n");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "could not connect to the database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    return conn;
}

int th_db_create(struct th_db *db)
{
    const char *admin = getenv("WF_TEST_DATABASE_URL");
    char sql[160];
    size_t i;
    int n;
    PGconn *conn;

    memset(db, 0, sizeof(*db));
    if (admin == NULL)
        return -1;
    n = snprintf(db->name, sizeof(db->name), "wf_t_%.32s_%ld", test_name, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(db->name))
        return -1;
    for (i = 0; db->name[i] != '\0'; i++) {
        unsigned char c = (unsigned char)db->name[i];

        db->name[i] = isalnum(c) ? (char)tolower(c) : '_';
    }
    if (url_with_db(admin, db->name, db->url, sizeof(db->url)) != 0) {
        fprintf(stderr, "database URL too long\n");
        return -1;
    }
    conn = connect_url(admin);
    if (conn == NULL)
        return -1;
    /* a leftover of an earlier run with the same pid would make CREATE fail */
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    if (th_sql_exec(conn, sql) != 0) {
        PQfinish(conn);
        return -1;
    }
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db->name);
    if (th_sql_exec(conn, sql) != 0) {
        PQfinish(conn);
        return -1;
    }
    PQfinish(conn);
    db->created = 1;
    return 0;
}

int th_db_drop(struct th_db *db)
{
    const char *admin = getenv("WF_TEST_DATABASE_URL");
    char sql[160];
    PGconn *conn;
    int rc;

    if (db == NULL || !db->created || admin == NULL)
        return 0;
    conn = connect_url(admin);
    if (conn == NULL)
        return -1;
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    rc = th_sql_exec(conn, sql);
    PQfinish(conn);
    if (rc == 0)
        db->created = 0;
    return rc;
}

PGconn *th_db_connect(const struct th_db *db)
{
    return connect_url(db->url);
}

PGresult *th_sql(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res;
    ExecStatusType st;

    if (conn == NULL)
        return NULL;
    res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (res == NULL) {
        fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
        return NULL;
    }
    st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "query failed: %s  query: %s\n", PQresultErrorMessage(res), sql);
        PQclear(res);
        return NULL;
    }
    return res;
}

int th_sql_exec(PGconn *conn, const char *sql)
{
    PGresult *res = th_sql(conn, sql, 0, NULL);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

char *th_sql_value(PGconn *conn, const char *sql, const char *p1)
{
    const char *params[1];
    PGresult *res;
    char *val = NULL;

    params[0] = p1;
    res = th_sql(conn, sql, p1 ? 1 : 0, p1 ? params : NULL);
    if (res == NULL)
        return NULL;
    if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
        val = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return val;
}

int th_sql_ll(PGconn *conn, const char *sql, const char *p1, long long *out)
{
    char *val = th_sql_value(conn, sql, p1);
    char *end;
    long long v;

    if (val == NULL)
        return -1;
    errno = 0;
    v = strtoll(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0') {
        fprintf(stderr, "not an integer: \"%s\" from: %s\n", val, sql);
        free(val);
        return -1;
    }
    free(val);
    *out = v;
    return 0;
}

int th_signal_backends(PGconn *admin, const char *dbname, int sig)
{
    const char *params[1] = {dbname};
    PGresult *r = th_sql(admin,
                         "SELECT pid FROM pg_stat_activity WHERE datname = $1"
                         " AND application_name LIKE 'wf-core%'",
                         1, params);
    int n = 0;

    if (r == NULL)
        return 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (kill((pid_t)strtol(PQgetvalue(r, i, 0), NULL, 10), sig) < 0) {
            if (errno == EPERM) {
                PQclear(r);
                return -1;
            }
        } else {
            n++;
        }
    }
    PQclear(r);
    return n;
}

/* ---- environment for the server ------------------------------------------ */

struct envvec {
    char *v[512];
    int n;
};

static size_t env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');

    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* variables of the test's own environment the server must not inherit */
static int env_stripped(const char *entry)
{
    size_t n = env_name_len(entry);

    return strncmp(entry, "WF_", 3) == 0 || strncmp(entry, "LOG_", 4) == 0 ||
           (n == 12 && strncmp(entry, "DATABASE_URL", 12) == 0) ||
           (n == 4 && strncmp(entry, "PORT", 4) == 0) || strncmp(entry, "PG", 2) == 0;
}

static void env_unset(struct envvec *e, const char *name, size_t nlen)
{
    int i;

    for (i = 0; i < e->n; i++) {
        if (env_name_len(e->v[i]) == nlen && strncmp(e->v[i], name, nlen) == 0) {
            free(e->v[i]);
            e->v[i] = e->v[e->n - 1];
            e->n--;
            i--;
        }
    }
}

/* "NAME=value" sets (replacing), "NAME" unsets; returns 0 or -1 */
static int env_apply(struct envvec *e, const char *entry)
{
    size_t nlen = env_name_len(entry);

    env_unset(e, entry, nlen);
    if (entry[nlen] != '=')
        return 0;
    if (e->n >= (int)(sizeof(e->v) / sizeof(e->v[0])) - 1)
        return -1;
    e->v[e->n] = strdup(entry);
    if (e->v[e->n] == NULL)
        return -1;
    e->n++;
    return 0;
}

static void env_free(struct envvec *e)
{
    int i;

    for (i = 0; i < e->n; i++)
        free(e->v[i]);
    e->n = 0;
}

static int env_build(struct envvec *e, const struct th_db *db, const char *const *overrides)
{
    static const char *const base[] = {"PORT=0",
                                       "LOG_FORMAT=text",
                                       "LOG_LEVEL=debug",
                                       "WF_HEARTBEAT_MS=200",
                                       "WF_DRAIN_TIMEOUT_MS=3000",
                                       "WF_HOST_ID=testhost",
                                       NULL};
    char dburl[2100];
    char **p;
    int i;

    e->n = 0;
    for (p = environ; *p != NULL; p++) {
        if (env_stripped(*p))
            continue;
        if (env_apply(e, *p) != 0)
            return -1;
    }
    for (i = 0; base[i] != NULL; i++)
        if (env_apply(e, base[i]) != 0)
            return -1;
    if (db != NULL) {
        snprintf(dburl, sizeof(dburl), "DATABASE_URL=%s", db->url);
        if (env_apply(e, dburl) != 0)
            return -1;
    }
    for (i = 0; overrides != NULL && overrides[i] != NULL; i++)
        if (env_apply(e, overrides[i]) != 0)
            return -1;
    e->v[e->n] = NULL;
    return 0;
}

/* ---- the server ---------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int th_server_spawn(struct th_server *s, const struct th_db *db, const char *const *overrides)
{
    const char *bin = getenv("WF_SERVER_BIN");
    struct envvec env;
    pid_t parent = getpid();
    pid_t pid;
    int logfd;

    memset(s, 0, sizeof(*s));
    if (bin == NULL)
        return -1;
    snprintf(s->dir, sizeof(s->dir), "/tmp/wf-itest-%s-XXXXXX", test_name);
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "could not create temp dir: %s\n", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->log_path, sizeof(s->log_path), "%s/server.log", s->dir);
    logfd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (logfd < 0) {
        fprintf(stderr, "could not open %s: %s\n", s->log_path, strerror(errno));
        th_server_cleanup(s);
        return -1;
    }
    s->token[0] = '\0';
    for (size_t i = 0; overrides != NULL && overrides[i] != NULL; i++) {
        if (strncmp(overrides[i], "WF_API_TOKEN=", 13) == 0)
            snprintf(s->token, sizeof(s->token), "%s", overrides[i] + 13);
    }
    if (env_build(&env, db, overrides) != 0) {
        fprintf(stderr, "could not build the server environment\n");
        env_free(&env);
        close(logfd);
        th_server_cleanup(s);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "could not fork: %s\n", strerror(errno));
        env_free(&env);
        close(logfd);
        th_server_cleanup(s);
        return -1;
    }
    if (pid == 0) {
        char *argv[2];
        sigset_t none;
        int nullfd;

        /* our SIGPIPE ignore would survive exec: give the server defaults */
        signal(SIGPIPE, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        /* if the test dies, the server is asked to shut down */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        nullfd = open("/dev/null", O_RDONLY);
        if (nullfd >= 0 && nullfd != 0) {
            dup2(nullfd, 0);
            close(nullfd);
        }
        dup2(logfd, 1);
        dup2(logfd, 2);
        argv[0] = (char *)(uintptr_t)bin;
        argv[1] = NULL;
        execve(bin, argv, env.v);
        _exit(127);
    }
    setpgid(pid, pid); /* races the child's own call; either one wins */
    env_free(&env);
    close(logfd);
    s->pid = pid;
    s->pgid = pid;
    return 0;
}

int th_server_log_contains(const struct th_server *s, const char *needle)
{
    size_t len;
    char *log = th_read_file(s->log_path, &len);
    int found;

    if (log == NULL)
        return 0;
    found = memmem(log, len, needle, strlen(needle)) != NULL;
    free(log);
    return found;
}

/* the port of the first "listening on port <N>" in the log, or 0 */
static int log_port(const struct th_server *s)
{
    static const char needle[] = "listening on port ";
    size_t len;
    char *log = th_read_file(s->log_path, &len);
    char *at;
    char *end;
    long port = 0;

    if (log == NULL)
        return 0;
    at = memmem(log, len, needle, sizeof(needle) - 1);
    if (at != NULL) {
        errno = 0;
        port = strtol(at + sizeof(needle) - 1, &end, 10);
        if (errno != 0 || end == at + sizeof(needle) - 1 || port < 1 || port > 65535)
            port = 0;
    }
    free(log);
    return (int)port;
}

/* reaps the manager if it exited; returns 1 if it has exited */
static int server_reap(struct th_server *s)
{
    int st;
    pid_t r;

    if (s->exited)
        return 1;
    if (s->pid <= 0)
        return 1;
    r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
        s->exited = 1;
        s->status = st;
        return 1;
    }
    if (r < 0 && errno == ECHILD) {
        s->exited = 1;
        s->status = -1;
        return 1;
    }
    return 0;
}

int th_exit_code(const struct th_server *s)
{
    if (!s->exited || s->status == -1)
        return -1;
    if (WIFEXITED(s->status))
        return WEXITSTATUS(s->status);
    return -1;
}

static void describe_exit(const struct th_server *s)
{
    if (WIFEXITED(s->status))
        fprintf(stderr, "server exited with code %d\n", WEXITSTATUS(s->status));
    else if (WIFSIGNALED(s->status))
        fprintf(stderr, "server killed by signal %d\n", WTERMSIG(s->status));
}

/* 1 when GET /health answers 200 within 2 s */
static int health_ok(struct th_server *s)
{
    struct th_reply r;
    long st;

    st = th_http_ex(s, "GET", "/health", NULL, 0, NULL, 2000, &r);
    th_reply_free(&r);
    return st == 200;
}

/* 1 once the log names the listening port, which it stores in s->port */
static int port_known(struct th_server *s)
{
    s->port = log_port(s);
    return s->port != 0;
}

/*
 * Calls ready(s) every interval_ms while the manager runs, at most max_iter
 * times and for 20 s. Returns 0 once ready(s) returned 1; -1 after printing
 * "server exited before <what>" and how it exited, or, when the time ran
 * out, timeout_msg.
 */
static int server_poll(struct th_server *s, int (*ready)(struct th_server *s), int interval_ms,
                       int max_iter, const char *what, const char *timeout_msg)
{
    long long deadline = th_now_ms() + 20000;
    int i;

    for (i = 0; i < max_iter; i++) {
        if (ready(s))
            return 0;
        if (server_reap(s)) {
            fprintf(stderr, "server exited before %s\n", what);
            describe_exit(s);
            return -1;
        }
        if (th_now_ms() >= deadline)
            break;
        th_sleep_ms(interval_ms);
    }
    fprintf(stderr, "%s\n", timeout_msg);
    return -1;
}

int th_server_start(struct th_server *s, const struct th_db *db, const char *const *overrides)
{
    if (th_server_spawn(s, db, overrides) != 0)
        return -1;
    /* the port first: /health can only be asked once it is known */
    if (server_poll(s, port_known, 20, 2000, "listening",
                    "no \"listening on port\" in the log within 20 s") != 0)
        return -1;
    return server_poll(s, health_ok, 50, 400, "/health answered 200",
                       "GET /health did not answer 200 within 20 s");
}

int th_server_wait(struct th_server *s, int timeout_ms)
{
    long long deadline = th_now_ms() + timeout_ms;
    int i;

    for (i = 0; i < timeout_ms / 10 + 2; i++) {
        if (server_reap(s))
            return 0;
        if (th_now_ms() >= deadline)
            break;
        th_sleep_ms(10);
    }
    return server_reap(s) ? 0 : -1;
}

int th_server_stop(struct th_server *s, int timeout_ms)
{
    if (!server_reap(s)) {
        kill(s->pid, SIGTERM);
        if (th_server_wait(s, timeout_ms) != 0) {
            fprintf(stderr,
                    "server did not exit within %d ms of SIGTERM; "
                    "sending SIGKILL\n",
                    timeout_ms);
            kill(s->pid, SIGKILL);
            th_server_wait(s, 5000);
            return -1;
        }
    }
    if (th_exit_code(s) < 0)
        describe_exit(s);
    return th_exit_code(s);
}

void th_server_log_tail(const struct th_server *s, int lines)
{
    size_t len;
    char *log;
    size_t start;
    int seen = 0;

    if (s->log_path[0] == '\0')
        return;
    log = th_read_file(s->log_path, &len);
    if (log == NULL)
        return;
    start = len;
    while (start > 0) {
        if (log[start - 1] == '\n' && start != len && ++seen >= lines)
            break;
        start--;
    }
    fprintf(stderr, "---- server log (%s), last %d lines ----\n%s", s->log_path, lines,
            log + start);
    if (len > 0 && log[len - 1] != '\n')
        fputc('\n', stderr);
    fprintf(stderr, "---- end of server log ----\n");
    free(log);
}

/* SIGKILLs pid and, first, all its descendants that are still alive */
static void kill_tree(pid_t pid, int depth)
{
    pid_t kids[256];
    int n;
    int i;

    if (depth > 4)
        return;
    n = th_proc_children(pid, NULL, kids, 256);
    for (i = 0; i < n && i < 256; i++)
        kill_tree(kids[i], depth + 1);
    kill(pid, SIGKILL);
}

void th_server_cleanup(struct th_server *s)
{
    if (s == NULL)
        return;
    /* a sanitizer build reports into the log; any report is a failure */
    if (s->log_path[0] != '\0') {
        th_check(!th_server_log_contains(s, "ERROR: AddressSanitizer") &&
                     !th_server_log_contains(s, "ERROR: LeakSanitizer") &&
                     !th_server_log_contains(s, "runtime error:"),
                 __FILE__, __LINE__, "no sanitizer report in the server log");
    }
    if (n_failed > 0 && s->log_path[0] != '\0')
        th_server_log_tail(s, 80);
    if (s->pid > 0 && !server_reap(s)) {
        kill_tree(s->pid, 0);
        th_server_wait(s, 5000);
    }
    /* orphans of a killed manager are still in its process group */
    if (s->pgid > 0)
        kill(-s->pgid, SIGKILL);
    /* WF_TEST_KEEP_LOGS=1 keeps the log of a failed test for a closer look,
     * WF_TEST_KEEP_LOGS=all that of every test. */
    if (s->dir[0] != '\0' && getenv("WF_TEST_KEEP_LOGS") != NULL &&
        (n_failed > 0 || strcmp(getenv("WF_TEST_KEEP_LOGS"), "all") == 0))
        fprintf(stderr, "kept the server log: %s\n", s->log_path);
    else if (s->dir[0] != '\0')
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = '\0';
    s->log_path[0] = '\0';
    s->pid = 0;
    s->pgid = 0;
}

/* ---- set-up and tear-down ------------------------------------------------ */

int th_up(struct th_db *db, struct th_server *srv, const char *const *overrides, PGconn **conn)
{
    /* zeroed first: th_down() must find nothing to undo after an early failure */
    memset(srv, 0, sizeof(*srv));
    if (conn != NULL)
        *conn = NULL;
    if (!CHECK(th_db_create(db) == 0))
        return -1;
    if (!CHECK(th_server_start(srv, db, overrides) == 0))
        return -1;
    if (conn == NULL)
        return 0;
    *conn = th_db_connect(db);
    if (!CHECK(*conn != NULL))
        return -1;
    return 0;
}

int th_setup(const char *name, struct th_db *db, struct th_server *srv,
             const char *const *overrides, PGconn **conn)
{
    memset(db, 0, sizeof(*db));
    memset(srv, 0, sizeof(*srv));
    if (conn != NULL)
        *conn = NULL;
    if (th_init(name, 1) != 0)
        return TH_SKIP;
    return th_up(db, srv, overrides, conn);
}

void th_down(struct th_db *db, struct th_server *srv, PGconn *conn)
{
    if (conn != NULL)
        PQfinish(conn);
    /* the server before the database: DROP … WITH (FORCE) would cut it off */
    th_server_cleanup(srv);
    th_db_drop(db);
}

int th_teardown(struct th_db *db, struct th_server *srv, PGconn *conn)
{
    th_down(db, srv, conn);
    return th_finish();
}

/* ---- sockets ------------------------------------------------------------- */

int th_loopback_listener(int *port, int nonblock)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

    if (fd < 0) {
        fprintf(stderr, "could not create a socket: %s\n", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        fprintf(stderr, "could not listen on 127.0.0.1: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ---- /proc --------------------------------------------------------------- */

/*
 * Parses /proc/<pid>/stat: comm (up to len-1 bytes), state and ppid.
 * Returns 0 or -1 (no such process).
 */
static int read_stat(pid_t pid, char *comm, size_t len, char *state, pid_t *ppid)
{
    char path[64];
    char buf[1024];
    char *open_paren;
    char *close_paren;
    char *end;
    ssize_t n;
    long pp;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    open_paren = strchr(buf, '(');
    close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren ||
        close_paren[1] != ' ' || close_paren[2] == '\0')
        return -1;
    if (comm != NULL && len > 0) {
        size_t cl = (size_t)(close_paren - open_paren - 1);

        if (cl >= len)
            cl = len - 1;
        memcpy(comm, open_paren + 1, cl);
        comm[cl] = '\0';
    }
    if (state != NULL)
        *state = close_paren[2];
    errno = 0;
    pp = strtol(close_paren + 3, &end, 10);
    if (errno != 0 || end == close_paren + 3)
        return -1;
    if (ppid != NULL)
        *ppid = (pid_t)pp;
    return 0;
}

int th_pid_alive(pid_t pid)
{
    char state;

    if (pid <= 0)
        return 0;
    if (read_stat(pid, NULL, 0, &state, NULL) != 0)
        return 0;
    return state != 'Z' && state != 'X' && state != 'x';
}

int th_proc_comm(pid_t pid, char *buf, size_t len)
{
    return read_stat(pid, buf, len, NULL, NULL);
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a;
    pid_t y = *(const pid_t *)b;

    return (x > y) - (x < y);
}

int th_proc_children(pid_t ppid, const char *comm, pid_t *out, int max)
{
    DIR *d;
    struct dirent *de;
    int n = 0;

    d = opendir("/proc");
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char name[64];
        char state;
        pid_t pp;
        char *end;
        long pid;

        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        if (read_stat((pid_t)pid, name, sizeof(name), &state, &pp) != 0)
            continue;
        if (pp != ppid || state == 'Z' || state == 'X')
            continue;
        if (comm != NULL && strcmp(name, comm) != 0)
            continue;
        if (n < max)
            out[n] = (pid_t)pid;
        n++;
    }
    closedir(d);
    if (out != NULL && n > 0 && max > 0)
        qsort(out, (size_t)(n < max ? n : max), sizeof(pid_t), cmp_pid);
    return n;
}

pid_t th_proc_child(pid_t ppid, const char *comm)
{
    pid_t kids[4];

    if (th_proc_children(ppid, comm, kids, 4) != 1)
        return 0;
    return kids[0];
}

static int pid_gone(void *arg)
{
    return !th_pid_alive(*(const pid_t *)arg);
}

int th_wait_pid_gone(pid_t pid, int timeout_ms, int interval_ms)
{
    return th_wait_until(pid_gone, &pid, timeout_ms, interval_ms);
}

/* ---- test plugins -------------------------------------------------------- */

/* Reads <WF_TEST_PLUGIN_DIR>/<name>.so; caller frees. */
static char *plugin_bytes(const char *name, size_t *len)
{
    const char *dir = getenv("WF_TEST_PLUGIN_DIR");
    char path[1024];
    char *bytes;

    snprintf(path, sizeof(path), "%s/%s.so", dir != NULL ? dir : ".", name);
    bytes = th_read_file(path, len);
    if (bytes == NULL)
        fprintf(stderr, "could not read test plugin %s\n", path);
    return bytes;
}

long th_put_plugin(const struct th_server *s, const char *path, const char *name, cJSON **json)
{
    size_t len = 0;
    char *bytes = plugin_bytes(name, &len);
    struct th_reply r;
    long st;

    if (json != NULL)
        *json = NULL;
    if (bytes == NULL)
        return -1;
    st = th_http_ex(s, "PUT", path, bytes, len, NULL, 30000, &r);
    free(bytes);
    if (json != NULL) {
        *json = r.json;
        r.json = NULL;
    }
    th_reply_free(&r);
    return st;
}

int th_store_plugin(PGconn *conn, const char *project, const char *as, const char *name)
{
    size_t len = 0;
    char *bytes = plugin_bytes(name, &len);
    char *hex = bytes != NULL ? malloc(2 * len + 1) : NULL;
    const char *params[3];
    PGresult *r;

    if (hex == NULL) {
        free(bytes);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)bytes[i]);
    free(bytes);
    params[0] = project;
    params[1] = as;
    params[2] = hex;
    r = th_sql(conn,
               "WITH b AS (SELECT decode($3, 'hex') AS bytes),"
               " a AS (INSERT INTO artifacts (sha256, bytes, size)"
               "  SELECT encode(sha256(bytes), 'hex'), bytes, length(bytes) FROM b"
               "  ON CONFLICT (sha256) DO NOTHING)"
               " INSERT INTO components (project_id, name, kind, artifact_sha256)"
               " SELECT $1, $2, 'activity', encode(sha256(bytes), 'hex') FROM b"
               " ON CONFLICT (project_id, name) DO UPDATE SET"
               "  artifact_sha256 = EXCLUDED.artifact_sha256, is_active = true",
               3, params);
    free(hex);
    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}
