/*
 * test_probes.c: the orchestrators' probes and the service manager's
 * readiness protocol (docs/api.md "Health", docs/operations.md "Running
 * it as a service").
 *
 * The server runs with WF_API_TOKEN set, PORT unset and its seed alias
 * WORKER_SERVICE_PORT=0, and NOTIFY_SOCKET naming a datagram socket this
 * test owns, as systemd would give a Type=notify unit. Checked:
 *   - READY=1 arrives, and a /health/ready sent the moment it arrived
 *     answers 200 with every check "ok": the notification never runs ahead
 *     of the probe;
 *   - /health/live and /health/ready answer without a token (a token-only
 *     route still refuses), HEAD too, and /health keeps its seed shape;
 *   - the database frozen (its backends SIGSTOPped) and then stopped (no
 *     connections allowed, backends terminated): /health/ready is 503 with
 *     "database":"unreachable" and the other checks "ok", /health/live
 *     stays 200 and quick; each time /health/ready is 200 again once the
 *     database is back;
 *   - SIGTERM: STOPPING=1 arrives, after READY=1, and the server exits 0;
 *   - every notification came from the manager's pid (the unit's main
 *     process: NotifyAccess=main believes no other).
 * The frozen part needs permission to signal the cluster's backends (root,
 * or the cluster's user) and is skipped, saying so, otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define MAX_NOTES 64

static struct th_server srv;
static struct th_db db;
static PGconn *admin;

/* The datagrams received on the notify socket, in order. */
static struct {
    int fd;
    int n;
    char text[MAX_NOTES][256];
    pid_t pid[MAX_NOTES]; /* the sender, from SCM_CREDENTIALS */
} notes = {-1};

/* A request with no Authorization header at all (an empty "Authorization:"
 * makes libcurl drop it, and the harness then adds no token). */
static const char *const no_token[] = {"Authorization:", NULL};

/* Binds the notify socket at path with SO_PASSCRED. Returns 0 or -1. */
static int notify_socket(const char *path)
{
    struct sockaddr_un sa;
    int one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "notify socket %s: path too long\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path));
    notes.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (notes.fd < 0 || setsockopt(notes.fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
        bind(notes.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "notify socket %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads every datagram waiting on the notify socket into notes. */
static void drain_notes(void)
{
    while (notes.n < MAX_NOTES) {
        char buf[256];
        union {
            char buf[CMSG_SPACE(sizeof(struct ucred))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {buf, sizeof(buf) - 1};
        struct msghdr mh;
        struct cmsghdr *cm;
        ssize_t n;

        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        n = recvmsg(notes.fd, &mh, 0);
        if (n < 0)
            return;
        buf[n] = '\0';
        snprintf(notes.text[notes.n], sizeof(notes.text[0]), "%s", buf);
        notes.pid[notes.n] = -1;
        for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
                struct ucred uc;
                memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
                notes.pid[notes.n] = uc.pid;
            }
        }
        printf("notification from pid %d: %s\n", (int)notes.pid[notes.n], buf);
        notes.n++;
    }
}

/* The index of the first notification holding the line `line`, or -1. */
static int note_index(const char *line)
{
    size_t len = strlen(line);

    for (int i = 0; i < notes.n; i++) {
        for (const char *p = notes.text[i]; p != NULL; p = strchr(p, '\n')) {
            if (*p == '\n')
                p++;
            if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
                return i;
        }
    }
    return -1;
}

static int note_arrived(void *arg)
{
    drain_notes();
    return note_index(arg) >= 0;
}

/* GET path without a token; returns the status, the reply in *r. */
static long get_public(const char *path, struct th_reply *r)
{
    return th_http_ex(&srv, "GET", path, NULL, 0, no_token, 3000, r);
}

/* The /health/ready reply that ended the last wait_ready. */
static struct th_reply last_ready;

static int ready_is(void *arg)
{
    th_reply_free(&last_ready);
    return get_public("/health/ready", &last_ready) == *(long *)arg;
}

/* Waits up to timeout_ms for /health/ready to answer status; the reply
 * that did is in last_ready. Returns 0, or -1 on timeout. */
static int wait_ready(long status, int timeout_ms)
{
    return th_wait_until(ready_is, &status, timeout_ms, 50);
}

/* Checks a /health/ready reply: its status, and each check's value. */
static void check_ready_reply(const struct th_reply *r, const char *status, const char *database)
{
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(r->json, "checks");

    if (!CHECK(r->json != NULL && cJSON_IsObject(checks)))
        return;
    CHECK_STR(th_json_str(r->json, "status"), status);
    CHECK_STR(th_json_str(checks, "database"), database);
    CHECK_STR(th_json_str(checks, "core"), "ok");
    CHECK_STR(th_json_str(checks, "manager"), "ok");
    CHECK_STR(th_json_str(checks, "migrations"), "ok");
    CHECK(r->headers != NULL && strstr(r->headers, "application/json") != NULL);
}

/* /health/ready turns 503 naming the database, /health/live stays 200 and
 * quick; what: "frozen" or "stopped", for the log. */
static void check_not_ready(const char *what)
{
    struct th_reply r;
    long long t0 = th_now_ms();

    if (!CHECK(wait_ready(503, 10000) == 0))
        return;
    printf("/health/ready 503 %lld ms after the database was %s\n", th_now_ms() - t0, what);
    /* The reply itself: a frozen database's connections may be replaced
     * soon after (the postmaster still answers), so ask no second time. */
    check_ready_reply(&last_ready, "not ready", "unreachable");
    t0 = th_now_ms();
    CHECK_EQ_INT(get_public("/health/live", &r), 200);
    CHECK_STR(th_json_str(r.json, "status"), "live");
    th_reply_free(&r);
    CHECK(th_now_ms() - t0 < 1000);
}

/* Waits for /health/ready to be 200 again with every check "ok". */
static void check_ready_again(const char *what)
{
    long long t0 = th_now_ms();

    if (!CHECK(wait_ready(200, 20000) == 0))
        return;
    printf("/health/ready 200 %lld ms after the database was %s\n", th_now_ms() - t0, what);
    check_ready_reply(&last_ready, "ready", "ok");
}

static int allow_connections(int allow)
{
    char sql[200];

    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", db.name,
             allow ? "true" : "false");
    return th_sql_exec(admin, sql);
}

/* The probes before, during and after the two outages. */
static void probes(void)
{
    struct th_reply r;
    char sql[256];
    int n;

    /* /health/live, HEAD too; /health in its seed shape */
    CHECK_EQ_INT(get_public("/health/live", &r), 200);
    CHECK_STR(r.body, "{\"status\":\"live\"}");
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&srv, "HEAD", "/health/ready", NULL, 0, no_token, 3000, &r), 200);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&srv, "HEAD", "/health/live", NULL, 0, no_token, 3000, &r), 200);
    th_reply_free(&r);
    CHECK_EQ_INT(get_public("/health", &r), 200);
    CHECK_STR(th_json_str(r.json, "status"), "ok");
    CHECK_STR(th_json_str(r.json, "service"), "wf-server");
    CHECK_STR(th_json_str(r.json, "database"), "ok");
    CHECK(cJSON_GetArraySize(r.json) == 4);
    th_reply_free(&r);
    /* the token is on: a route that needs it refuses, the probes did not */
    CHECK_EQ_INT(get_public("/workers", &r), 401);
    th_reply_free(&r);
    CHECK_EQ_INT(th_http_ex(&srv, "POST", "/health/ready", "{}", 2, no_token, 3000, &r), 405);
    th_reply_free(&r);

    /* Frozen: the backends answer nothing, the kernel still acknowledges. */
    n = th_signal_backends(admin, db.name, SIGSTOP);
    if (n < 0) {
        printf("test_probes: not permitted to signal the cluster's backends; "
               "frozen-database part skipped\n");
    } else {
        CHECK(n >= 2);
        check_not_ready("frozen");
        CHECK(th_signal_backends(admin, db.name, SIGCONT) >= 0);
        check_ready_again("thawed");
    }

    /* Stopped: no new connection, every backend of core terminated. */
    if (!CHECK(allow_connections(0) == 0))
        return;
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
             " AND pid <> pg_backend_pid()",
             db.name);
    CHECK(th_sql_exec(admin, sql) == 0);
    check_not_ready("stopped");
    CHECK(allow_connections(1) == 0);
    check_ready_again("back");
}

int main(void)
{
    char dir[] = "/tmp/wf-probes.XXXXXX";
    char path[128], env_sock[160];
    const char *overrides[5];
    char ready_line[] = "READY=1";
    struct th_reply r;
    int ready_at, stopping_at;

    if (th_init("test_probes", 1) != 0)
        return TH_SKIP;
    memset(&db, 0, sizeof(db));
    memset(&srv, 0, sizeof(srv));
    if (!CHECK(mkdtemp(dir) != NULL))
        return th_finish();
    /* The harness runs the server as this test's user, who owns dir. */
    snprintf(path, sizeof(path), "%s/notify", dir);
    snprintf(env_sock, sizeof(env_sock), "NOTIFY_SOCKET=%s", path);
    if (!CHECK(notify_socket(path) == 0))
        goto out;
    overrides[0] = "PORT"; /* unset: the seed's name alone picks the port */
    overrides[1] = "WORKER_SERVICE_PORT=0";
    overrides[2] = env_sock;
    overrides[3] = "WF_API_TOKEN=probe-token";
    overrides[4] = NULL;
    if (th_up(&db, &srv, overrides, NULL) != 0)
        goto out;
    admin = PQconnectdb(getenv("WF_TEST_DATABASE_URL"));
    if (!CHECK(admin != NULL && PQstatus(admin) == CONNECTION_OK))
        goto out;

    /* READY=1, and the probe agrees the moment it arrives. */
    if (CHECK(th_wait_until(note_arrived, ready_line, 20000, 10) == 0)) {
        CHECK_EQ_INT(get_public("/health/ready", &r), 200);
        check_ready_reply(&r, "ready", "ok");
        th_reply_free(&r);
        CHECK(strstr(notes.text[note_index("READY=1")], "\nSTATUS=ready: serving on port ") !=
              NULL);
    }
    probes();

    /* SIGTERM: STOPPING=1, after READY=1; exit 0. */
    CHECK_EQ_INT(th_server_stop(&srv, 20000), 0);
    drain_notes();
    ready_at = note_index("READY=1");
    stopping_at = note_index("STOPPING=1");
    CHECK(stopping_at >= 0);
    CHECK(ready_at >= 0 && ready_at < stopping_at);
    for (int i = 0; i < notes.n; i++) {
        if (!CHECK_EQ_INT(notes.pid[i], srv.pgid))
            printf("  notification %d (\"%s\") came from pid %d, not the manager %d\n", i,
                   notes.text[i], (int)notes.pid[i], (int)srv.pgid);
    }
out:
    if (admin != NULL) {
        if (db.created) {
            (void)th_signal_backends(admin, db.name, SIGCONT);
            (void)allow_connections(1);
        }
        PQfinish(admin);
    }
    if (notes.fd >= 0)
        close(notes.fd);
    th_reply_free(&last_ready);
    (void)unlink(path);
    (void)rmdir(dir);
    return th_teardown(&db, &srv, NULL);
}
