/*
 * harness.h: the integration and crash test harness (library wf_test_harness).
 *
 * A test program drives the real wf-server binary against a real PostgreSQL:
 * it creates its own fresh database on the cluster named by
 * WF_TEST_DATABASE_URL, starts the server (path in WF_SERVER_BIN) on port 0
 * with its output in a log file, talks to it over HTTP on 127.0.0.1 only,
 * inspects the process tree through /proc and the tables through libpq,
 * and cleans everything up again, on failure paths too.
 *
 * Checks never abort the program: CHECK* macros print file:line and the failing
 * expression, count the failure and evaluate to 1 (passed) or 0 (failed), so
 * a test may stop early with `if (!CHECK(...)) goto out;`. th_finish() prints
 * the summary line and returns the process exit code (0 all passed, 1 any
 * failure or no check at all). Helpers return 0/-1 (or a documented value) and print the reason
 * of a -1 themselves; they never count failures, the caller's CHECK does.
 * The exceptions are the test steps that stand for CHECKs a test would
 * otherwise write itself (th_setup, th_up, th_create_and_start): they count
 * their failed checks like the CHECK macros, and say so in their comments.
 *
 * The usual shape of a test:
 *
 *     rc = th_setup("test_x", &db, &srv, NULL, &conn);
 *     if (rc == TH_SKIP)
 *         return TH_SKIP;
 *     if (rc != 0)
 *         goto out;
 *     ... checks ...
 * out:
 *     return th_teardown(&db, &srv, conn);
 *
 * Every wait is bounded in time (monotonic clock) and in iterations.
 */
#ifndef WF_TEST_HARNESS_H
#define WF_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

/* a cap for every buffer the harness grows from outside input (a file, a
 * reply) */
#define TH_MAX_READ (64u * 1024u * 1024u)

/* ctest's SKIP_RETURN_CODE for the integration tests */
#define TH_SKIP 77

/* ---- assertions ---------------------------------------------------------- */

int th_check(int ok, const char *file, int line, const char *expr);
int th_check_int(long long a, long long b, const char *file, int line, const char *ea,
                 const char *eb);
int th_check_str(const char *a, const char *b, const char *file, int line, const char *ea,
                 const char *eb);

#define CHECK(cond) th_check((cond) != 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(a, b) th_check_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR(a, b) th_check_str((a), (b), __FILE__, __LINE__, #a, #b)

/* the number of checks that failed so far */
int th_failures(void);

/*
 * Starts a test: remembers its name (used in database names and the summary
 * line), ignores SIGPIPE and initialises libcurl. Returns 0, or -1 when
 * WF_TEST_DATABASE_URL or WF_SERVER_BIN is unset (it then prints why; the
 * test should return TH_SKIP). need_db 0 only requires WF_SERVER_BIN.
 */
int th_init(const char *name, int need_db);

/* prints "<name>: N passed, M failed" and returns 0 or 1 for main(): 1 when a
 * check failed or when no check ran at all */
int th_finish(void);

/* ---- time and polling ---------------------------------------------------- */

typedef int (*th_cond_fn)(void *arg);

long long th_now_ms(void);
void th_sleep_ms(int ms);

/*
 * Calls cond(arg) every interval_ms until it returns non-zero or timeout_ms
 * has passed (at most timeout_ms / interval_ms + 2 calls). Returns 0 when
 * the condition held, -1 on timeout.
 */
int th_wait_until(th_cond_fn cond, void *arg, int timeout_ms, int interval_ms);

/* ---- databases ----------------------------------------------------------- */

struct th_db {
    char name[64];  /* wf_t_<test>_<pid> */
    char url[2048]; /* the admin URL with its database replaced by name */
    int created;    /* 1 while the database exists */
};

/*
 * Creates a fresh database wf_t_<test name>_<pid> on the admin cluster and
 * fills db. Returns 0, or -1 (db->created stays 0).
 */
int th_db_create(struct th_db *db);

/* drops the database (WITH (FORCE)) if it was created; returns 0 or -1 */
int th_db_drop(struct th_db *db);

/* opens a connection to db; returns it or NULL. Caller frees with PQfinish */
PGconn *th_db_connect(const struct th_db *db);

/*
 * Runs sql with nparams text parameters ($1 …). Returns the result when it is
 * COMMAND_OK or TUPLES_OK (caller frees with PQclear), otherwise prints the
 * error and returns NULL.
 */
PGresult *th_sql(PGconn *conn, const char *sql, int nparams, const char *const *params);

/* runs a statement; returns 0 or -1 */
int th_sql_exec(PGconn *conn, const char *sql);

/*
 * Runs sql with at most one parameter (p1 may be NULL: no parameter) and
 * returns the first column of the first row as a malloc'ed string (caller
 * frees), or NULL when the query failed, returned no row or an SQL NULL.
 */
char *th_sql_value(PGconn *conn, const char *sql, const char *p1);

/* as th_sql_value, parsed as an integer; returns 0 or -1 (*out untouched) */
int th_sql_ll(PGconn *conn, const char *sql, const char *p1, long long *out);

/*
 * Sends sig to every backend of database dbname that core opened
 * (application_name wf-core…): SIGSTOP freezes the database for core alone,
 * SIGCONT thaws it. Returns how many were signalled, or -1 when not
 * permitted (the cluster runs as another user and we are not root).
 */
int th_signal_backends(PGconn *admin, const char *dbname, int sig);

/* ---- the server ---------------------------------------------------------- */

struct th_server {
    pid_t pid;     /* the manager; 0 once reaped */
    pid_t pgid;    /* its process group (== first pid) */
    int port;      /* 0 until read from the log */
    int exited;    /* 1 once reaped */
    int status;    /* raw wait status once exited */
    char dir[256]; /* temp dir holding the log */
    char log_path[320];
    char token[128]; /* WF_API_TOKEN of the overrides: sent by th_http* unless
                        the caller sends its own Authorization header */
};

/*
 * Spawns WF_SERVER_BIN with the base environment (DATABASE_URL=<db url>,
 * PORT=0, LOG_FORMAT=text, LOG_LEVEL=debug, WF_HEARTBEAT_MS=200,
 * WF_DRAIN_TIMEOUT_MS=3000, WF_HOST_ID=testhost) plus the NULL-terminated
 * overrides ("NAME=value" sets, "NAME" alone unsets); db may be NULL (no
 * DATABASE_URL). Output goes to a log file in a fresh temp dir. Does not
 * wait for anything. Returns 0, or -1 with nothing left behind.
 */
int th_server_spawn(struct th_server *s, const struct th_db *db, const char *const *overrides);

/*
 * th_server_spawn, then waits (20 s each) for "listening on port <N>" in the
 * log and for GET /health to answer 200. Returns 0, or -1 after printing why
 * (the server may still be running: call th_server_cleanup, which prints the
 * log tail when a check failed).
 */
int th_server_start(struct th_server *s, const struct th_db *db, const char *const *overrides);

/*
 * Waits up to timeout_ms for the manager to exit and reaps it. Returns 0 once
 * exited (s->status holds the wait status), -1 on timeout.
 */
int th_server_wait(struct th_server *s, int timeout_ms);

/*
 * SIGTERM to the manager, a bounded wait, then SIGKILL. Returns the exit
 * code when it exited by itself, -1 when it had to be killed or died by a
 * signal (printed).
 */
int th_server_stop(struct th_server *s, int timeout_ms);

/*
 * Leaves nothing behind: checks the log holds no sanitizer report (counted
 * as a failed check), prints the log tail if any check failed, SIGKILLs
 * the manager if still running and every process left in its process group,
 * removes the temp dir. Safe to call twice or on a zeroed struct.
 */
void th_server_cleanup(struct th_server *s);

/* prints the last `lines` lines of the server log to stderr */
void th_server_log_tail(const struct th_server *s, int lines);

/* 1 when the log file contains needle */
int th_server_log_contains(const struct th_server *s, const char *needle);

/* exit code of a reaped server, or -1 (killed by a signal / not exited) */
int th_exit_code(const struct th_server *s);

/* ---- set-up and tear-down ------------------------------------------------ */

/*
 * The set-up shared by the tests that need a database and a running server:
 * th_db_create(db), th_server_start(srv, db, overrides) and, when conn is not
 * NULL, *conn = th_db_connect(db), each as a CHECK (a failure is counted and
 * printed with harness.c's file:line and the failing expression). Stops at
 * the first failed step. Zeroes *srv and sets *conn to NULL first, so
 * th_down() is safe on every path afterwards. For a test that has called
 * th_init() itself (e.g. to check more of its environment first).
 * Returns 0, or -1 after a failed check: whatever was made is left for
 * th_down()/th_teardown() to undo.
 */
int th_up(struct th_db *db, struct th_server *srv, const char *const *overrides, PGconn **conn)
    __attribute__((warn_unused_result));

/*
 * th_init(name, 1), then th_up(db, srv, overrides, conn). Zeroes *db and
 * *srv first. Returns 0; TH_SKIP when th_init refused (nothing was created:
 * return TH_SKIP from main without tearing down); -1 after a failed check
 * (counted), with whatever was made left for th_teardown() to undo.
 */
int th_setup(const char *name, struct th_db *db, struct th_server *srv,
             const char *const *overrides, PGconn **conn) __attribute__((warn_unused_result));

/*
 * Undoes th_up() on any path, in this order: PQfinish(conn) (conn may be
 * NULL), th_server_cleanup(srv) (srv may be NULL; it checks the log for
 * sanitizer reports and prints its tail if a check failed), th_db_drop(db)
 * (db may be NULL). The caller must not use conn afterwards.
 */
void th_down(struct th_db *db, struct th_server *srv, PGconn *conn);

/* th_down(db, srv, conn), then returns th_finish(): 0 or 1 for main() */
int th_teardown(struct th_db *db, struct th_server *srv, PGconn *conn);

/* ---- HTTP ---------------------------------------------------------------- */

struct th_reply {
    long status; /* HTTP status, 0 on a transport error */
    char *body;  /* NUL-terminated */
    size_t body_len;
    char *headers; /* raw response headers, NUL-terminated */
    cJSON *json;   /* the parsed body or NULL */
};

/*
 * Sends method path (body of body_len bytes, may be NULL) to
 * 127.0.0.1:<s->port> and fills r (always; free it with th_reply_free).
 * Returns the HTTP status, or -1 on a transport error (printed).
 */
long th_http(const struct th_server *s, const char *method, const char *path, const char *body,
             size_t body_len, struct th_reply *r);

/*
 * th_http with extra request headers (NULL-terminated "Name: value" list, may
 * be NULL) and a total timeout in milliseconds. A Content-Type or
 * Authorization among them replaces the default one.
 */
long th_http_ex(const struct th_server *s, const char *method, const char *path, const char *body,
                size_t body_len, const char *const *headers, long timeout_ms, struct th_reply *r);

void th_reply_free(struct th_reply *r);

/* The value of an unlabelled series in GET /metrics, or -1. */
long long th_metric(const struct th_server *s, const char *name);

/*
 * Convenience: body is a NUL-terminated string or NULL. Returns the status
 * (-1 on a transport error) and stores the parsed body in *json (NULL if
 * unparsable; caller frees with cJSON_Delete). json may be NULL.
 */
long th_http_json(const struct th_server *s, const char *method, const char *path, const char *body,
                  cJSON **json);

/*
 * Sends n requests at once over n connections (curl multi): method paths[i]
 * with bodies[i] (NUL-terminated, may be NULL). Fills status[i] (0 on a
 * transport error) and json[i] (parsed body or NULL; caller frees each with
 * cJSON_Delete). Bounded by 60 s overall. Returns 0, or -1 if the requests
 * could not be set up or did not all finish (statuses of those stay 0).
 */
int th_http_parallel(const struct th_server *s, const char *method, const char *const *paths,
                     const char *const *bodies, int n, long *status, cJSON **json);

/*
 * POST path with {"projectId":"<id>"}; as th_http_json (*json is NULL when
 * the body could not be built)
 */
long th_post_project(const struct th_server *s, const char *path, const char *project_id,
                     cJSON **json);

/* the string member name of obj, or NULL */
const char *th_json_str(const cJSON *obj, const char *name);

/* the number member name of obj, or -1 when absent or not a number */
long long th_json_num(const cJSON *obj, const char *name);

/* 1 when member name is true, 0 when false, -1 otherwise */
int th_json_bool(const cJSON *obj, const char *name);

/* ---- projects, workers and heartbeats ----------------------------------- */

/* the first seed query of DESIGN §1, verbatim (running workers and ages) */
extern const char th_seed_query_1[];

/* POST /projects with {"id":"<id>"}; as th_post_project */
long th_create_project(const struct th_server *s, const char *id, cJSON **json);

/*
 * For each ids[i] in order: creates the project (CHECK: 201) and starts its
 * worker (CHECK: 200); a failed check is counted, printed with the project
 * id, and the remaining projects are still tried. When pids is not NULL it
 * receives n entries: the "pid" of each start reply, -1 when it has none.
 * Returns 0 when every check passed, -1 otherwise.
 */
int th_create_and_start(const struct th_server *s, const char *const *ids, int n, pid_t *pids);

/*
 * GET /workers/status/<project>. Returns the reply's "pid" (-1 when it has
 * none), or -1 when the call did not answer 200. When json is not NULL it
 * receives the parsed reply (NULL if none; caller frees with cJSON_Delete).
 */
pid_t th_status_pid(const struct th_server *s, const char *project, cJSON **json);

/*
 * The last_heartbeat of workflow_workers row worker_id in epoch
 * milliseconds of the database clock, or -1 (no row, NULL, query failed).
 */
long long th_heartbeat_ms(PGconn *conn, const char *worker_id);

/*
 * Polls th_heartbeat_ms(conn, worker_id) every interval_ms until it is
 * greater than after_ms (0: any heartbeat at all) or timeout_ms passed.
 * Returns 0 when it was, -1 on timeout.
 */
int th_wait_heartbeat_after(PGconn *conn, const char *worker_id, long long after_ms, int timeout_ms,
                            int interval_ms);

/* the database clock (clock_timestamp()) in epoch ms; returns 0 or -1 (*out untouched) */
int th_db_now_ms(PGconn *conn, long long *out);

/* ---- test plugins (tests/plugins, built into $WF_TEST_PLUGIN_DIR) -------- */

/*
 * PUTs test plugin <WF_TEST_PLUGIN_DIR>/<name>.so as the body of path (30 s
 * timeout). Returns the HTTP status, or -1 when the file cannot be read
 * (printed). When json is not NULL it receives the parsed reply (NULL if
 * none; caller frees).
 */
long th_put_plugin(const struct th_server *s, const char *path, const char *name, cJSON **json);

/*
 * Stores test plugin name as activity `as` of project straight into the
 * tables, as code stored before deploy-time checks existed (or written by
 * hand) would be, bypassing the upload checks. Returns 0 or -1 (printed).
 */
int th_store_plugin(PGconn *conn, const char *project, const char *as, const char *name);

/* ---- sockets ------------------------------------------------------------- */

/*
 * A TCP listener on a free 127.0.0.1 port (close-on-exec; non-blocking when
 * nonblock), for tests of a peer that accepts and never answers: the kernel
 * completes every handshake, nobody reads. Returns the fd with its port in
 * *port, or -1 (printed).
 */
int th_loopback_listener(int *port, int nonblock);

/* ---- /proc --------------------------------------------------------------- */

/* 1 when pid exists and is not a zombie, else 0 */
int th_pid_alive(pid_t pid);

/* reads /proc/<pid>/comm into buf; returns 0 or -1 */
int th_proc_comm(pid_t pid, char *buf, size_t len);

/*
 * Fills out (up to max) with the live children of ppid whose comm equals comm
 * (comm NULL: any), sorted ascending. Returns the number found (may exceed
 * max), or -1.
 */
int th_proc_children(pid_t ppid, const char *comm, pid_t *out, int max);

/* the single child of ppid named comm, or 0 when there is not exactly one */
pid_t th_proc_child(pid_t ppid, const char *comm);

/*
 * Waits up to timeout_ms (polling every interval_ms) until pid is no longer
 * alive (gone or a zombie). Returns 0 once it is, -1 on timeout.
 */
int th_wait_pid_gone(pid_t pid, int timeout_ms, int interval_ms);

/*
 * Reads a whole file (e.g. /proc/<pid>/environ) into a malloc'ed buffer,
 * NUL-terminated; stores its length in *len. Returns NULL on failure.
 * Caller frees.
 */
char *th_read_file(const char *path, size_t *len);

#endif /* WF_TEST_HARNESS_H */
