/*
 * test_children.c: child runs (the host API's children call, migration 10)
 * through the declarative fork and for, on the real server, worker and
 * PostgreSQL.
 *
 *   1. Concurrency: a fork of 6 branches that each wait 1 s ends in well
 *      under the 6 s they would take one after another; its 6 children are
 *      listed with ?parent= and carry parentId.
 *   2. A bound: a for over 6 items with concurrency 2, each waiting 1 s:
 *      never more than 2 children at once (from their started_at and
 *      completed_at), so at least 3 s, the outputs in order.
 *      No child at all (a compiled fan of 0, a for over []): the join
 *      completes at once.
 *   3. compete: the first branch to complete wins; the slow one is
 *      cancelled.
 *   4. Cancel: a parent cancelled while its children wait for a signal;
 *      they are cancelled too.
 *   5. A failed branch fails the parent with the branch's own error (and
 *      the child's id); a branch's raised error is caught by its status
 *      in the parent;
 *      retried, the parent runs the failed child again from its own
 *      checkpoint, and the child that had completed does not run again;
 *      retried right after a failure, while core's sweep is cancelling a
 *      sibling that was still running, the parent completes (a cancel not
 *      done yet is taken back, one done is run again from its checkpoint).
 *   6. Versions: a fork whose branches wait for a signal, v2 deployed and
 *      the worker restarted meanwhile: the children finish on v1, the
 *      parent's version, and a new run's children on v2.
 *   7. Durability: 12 declarative parents, each a for of 4 children
 *      (concurrency 2) of 5 record steps, and 6 compiled ones
 *      (engine_recorder's fan: the host API's children call, 4 runs of its
 *      steps workflow, 2 at a time), the worker killed with SIGKILL 3 times
 *      while they run: every parent completes with every child's right
 *      output, every child step is committed once, none ran again after
 *      its commit (tests/lib/durability.h).
 *   8. The database goes away under a fan-out: 8 parents of 4 children
 *      each while the test database refuses connections and every backend
 *      on it is cut, for 1.5 s, then core's connections are cut 10 times
 *      more: every parent completes, every child step is committed once
 *      and none ran again after its commit. (Joins completed while core
 *      could not hear them are settled by its poll.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durability.h"
#include "harness.h"

#define NPARENTS 12
#define NFANS 6
#define NKIDS 4
#define NSTEPS 5

static struct th_server srv;
static struct th_db db;
static PGconn *pg;
static char dir[256];

#define DOC(name)                                                                                  \
    "{\"document\":{\"dsl\":\"1.0.0\",\"namespace\":\"test\",\"name\":\"" name                     \
    "\",\"version\":\"1\"},"

/* 4. two branches that wait for a signal that never comes */
static const char FORK_LISTEN[] = DOC(
    "fork-listen") "\"do\":[{\"f\":{\"fork\":{\"branches\":["
                   "{\"a\":{\"listen\":{\"to\":{\"one\":{\"with\":{\"type\":\"never\"}}}}}},"
                   "{\"b\":{\"listen\":{\"to\":{\"one\":{\"with\":{\"type\":\"never\"}}}}}}]}}}]}";

/* 3. the fast branch wins */
static const char FORK_COMPETE[] =
    DOC("fork-compete") "\"do\":[{\"f\":{\"fork\":{\"compete\":true,\"branches\":["
                        "{\"slow\":{\"do\":[{\"w\":{\"wait\":\"PT30S\"}},{\"s\":{\"set\":{\"w\":"
                        "\"slow\"}}}]}},"
                        "{\"fast\":{\"do\":[{\"w\":{\"wait\":\"PT0.2S\"}},{\"s\":{\"set\":{\"w\":"
                        "\"fast\"}}}]}}"
                        "]}}}]}";

/* 2. six iterations, two at a time */
static const char FOR_BOUND[] =
    DOC("for-bound") "\"do\":[{\"l\":{\"for\":{\"in\":\"${ [range(6)] }\",\"concurrency\":2},"
                     "\"do\":[{\"w\":{\"wait\":\"PT1S\"}},{\"s\":{\"set\":\"${ $index }\"}}]}}]}";

/* 5. a branch that records once, one that fails its 3 attempts (flaky with
 * failures 3) and succeeds on the next call */
static const char FORK_FLAKY[] =
    DOC("fork-flaky") "\"do\":[{\"f\":{\"fork\":{\"branches\":["
                      "{\"ok\":{\"call\":\"record\",\"with\":{\"dir\":\"${ .dir }\",\"run\":"
                      "\"${ $workflow.id }\",\"step\":0,\"ms\":0}}},"
                      "{\"bad\":{\"call\":\"flaky\",\"with\":{\"dir\":\"${ .dir }\",\"key\":\"${ "
                      ".key }\","
                      "\"failures\":3}}}]}}},"
                      "{\"after\":{\"set\":{\"calls\":\"${ .[1].calls }\"}}}]}";

/* 5. the same with a slow sibling, still running when the parent is
 * retried */
static const char FORK_RACE[] =
    DOC("fork-race") "\"do\":[{\"f\":{\"fork\":{\"branches\":["
                     "{\"slow\":{\"call\":\"record\",\"with\":{\"dir\":\"${ .dir }\",\"run\":"
                     "\"${ $workflow.id }\",\"step\":0,\"ms\":2500}}},"
                     "{\"bad\":{\"call\":\"flaky\",\"with\":{\"dir\":\"${ .dir }\",\"key\":\"${ "
                     ".key }\","
                     "\"failures\":3}}}]}}},"
                     "{\"after\":{\"set\":{\"calls\":\"${ .[1].calls }\"}}}]}";

/* 5. a branch raises an error of its own; the parent catches it by status */
static const char FORK_RAISE[] =
    DOC("fork-raise") "\"do\":[{\"t\":{\"try\":[{\"f\":{\"fork\":{\"branches\":["
                      "{\"ok\":{\"set\":{\"fine\":true}}},"
                      "{\"pot\":{\"raise\":{\"error\":{\"type\":\"https://example.com/teapot\","
                      "\"status\":418,\"title\":\"short and stout\"}}}}]}}}],"
                      "\"catch\":{\"errors\":{\"with\":{\"status\":418}},\"as\":\"e\",\"do\":["
                      "{\"h\":{\"set\":{\"caught\":\"${ $e.title }\",\"child\":"
                      "\"${ $e.childExecutionId }\",\"at\":\"${ $e.instance }\"}}}]}}}]}";

/* 6. dur-steps (test_declarative.c) as the body of a bounded for */
static const char FAN_DUR[] = DOC(
    "fan-dur") "\"do\":[{\"fan\":{\"for\":{\"in\":\"${ [range(.k)] }\",\"concurrency\":2},\"do\":["
               "{\"init\":{\"set\":{\"dir\":\"${ .dir }\",\"ms\":\"${ .step_ms // 0 }\",\"n\":"
               "\"${ .n }\",\"sum\":0,\"steps\":0}}},"
               "{\"loop\":{\"for\":{\"in\":\"${ [range(.n)] }\"},\"do\":["
               "{\"rec\":{\"call\":\"record\",\"with\":{\"dir\":\"${ .dir }\",\"run\":"
               "\"${ $workflow.id }\",\"step\":\"${ $item }\",\"ms\":\"${ .ms }\"},"
               "\"output\":{\"as\":\"${ $input + {sum: ($input.sum + (if .step == $item then 1 "
               "else 0 end)), steps: ($input.steps + 1)} }\"}}}]}},"
               "{\"done\":{\"set\":{\"sum\":\"${ .sum }\",\"steps\":\"${ .steps }\",\"version\":"
               "1}}}]}}]}";

/* pinned-fork vN: two branches wait for "go", then say their version. */
static void pinned_fork(char *buf, size_t len, int version)
{
    snprintf(buf, len,
             DOC("pinned-fork") "\"do\":[{\"f\":{\"fork\":{\"branches\":["
                                "{\"a\":{\"do\":[{\"w\":{\"listen\":{\"to\":{\"one\":{\"with\":"
                                "{\"type\":\"go\"}}}}}},{\"v\":{\"set\":{\"version\":%d}}}]}},"
                                "{\"b\":{\"do\":[{\"w\":{\"listen\":{\"to\":{\"one\":{\"with\":"
                                "{\"type\":\"go\"}}}}}},{\"v\":{\"set\":{\"version\":%d}}}]}}"
                                "]}}}]}",
             version, version);
}

/* PUT a definition (text) as workflow name; returns the status. */
static long put_def(const char *name, const char *text)
{
    char path[160];
    struct th_reply r;
    const char *hdr[] = {"Content-Type: application/json", NULL};
    long st;

    snprintf(path, sizeof(path), "/projects/p/workflows/%s", name);
    st = th_http_ex(&srv, "PUT", path, text, strlen(text), hdr, 30000, &r);
    if (st != 201 && st != 200)
        fprintf(stderr, "PUT %s: %ld %.*s\n", name, st, (int)r.body_len,
                r.body != NULL ? r.body : "");
    th_reply_free(&r);
    return st;
}

/* Starts workflow in project p; its id into id. */
static void trigger(const char *workflow, const char *input, char *id, size_t len)
{
    CHECK_EQ_INT(dur_start_run(&srv, "p", workflow, input, id, len), 202);
}

/* The number of children of run id with status st (NULL: any). */
static long long kids(const char *id, const char *st)
{
    char sql[256];
    long long n = -1;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE parent_id = $1::uuid%s%s%s",
             st != NULL ? " AND status = '" : "", st != NULL ? st : "", st != NULL ? "'" : "");
    if (th_sql_ll(pg, sql, id, &n) < 0)
        return -1;
    return n;
}

static const char *cond_id;
static const char *cond_status;
static long long cond_n;

static int kids_reach(void *arg)
{
    (void)arg;
    return kids(cond_id, cond_status) == cond_n;
}

/* Waits (ms) until n children of id have status st. */
static int wait_kids(const char *id, const char *st, long long n, int ms)
{
    cond_id = id;
    cond_status = st;
    cond_n = n;
    if (th_wait_until(kids_reach, NULL, ms, 50) == 0)
        return 1;
    fprintf(stderr, "run %s: %lld children %s, want %lld\n", id, kids(id, st), st, n);
    return 0;
}

static void fork_concurrent(void)
{
    char def[4096], id[64], path[160];
    size_t n;
    long long t0, took;
    const cJSON *ex, *it;
    cJSON *j = NULL, *list = NULL;

    n = (size_t)snprintf(def, sizeof(def),
                         DOC("fork-six") "\"do\":[{\"f\":{\"fork\":{\"branches\":[");
    for (int i = 0; i < 6; i++)
        n += (size_t)snprintf(
            def + n, sizeof(def) - n,
            "%s{\"b%d\":{\"do\":[{\"w\":{\"wait\":\"PT1S\"}},{\"s\":{\"set\":{\"b\":%d}}}]}}",
            i == 0 ? "" : ",", i, i);
    snprintf(def + n, sizeof(def) - n, "]}}}]}");
    CHECK_EQ_INT(put_def("fork-six", def), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);

    t0 = th_now_ms();
    trigger("fork-six", "{}", id, sizeof(id));
    ex = dur_wait_run(&srv, id, 20000, &j);
    took = th_now_ms() - t0;
    CHECK_STR(th_json_str(ex, "status"), "completed");
    it = cJSON_GetObjectItem(ex, "output");
    CHECK_EQ_INT(cJSON_GetArraySize(it), 6);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(th_json_num(cJSON_GetArrayItem(it, i), "b"), i);
    /* one step: the join, named by its mode and size */
    CHECK_STR(th_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "steps"), 0), "kind"),
              "children");
    CHECK_STR(th_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "steps"), 0), "name"),
              "all:6");
    printf("fork of 6 branches of a 1 s wait: %lld ms (one after another: 6000 ms)\n", took);
    CHECK(took < 4500);
    cJSON_Delete(j);

    snprintf(path, sizeof(path), "/projects/p/executions?parent=%s", id);
    CHECK_EQ_INT(th_http_json(&srv, "GET", path, NULL, &list), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(list, "executions")), 6);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "executions"))
    {
        CHECK_STR(th_json_str(it, "parentId"), id);
        CHECK_STR(th_json_str(it, "workflow"), "fork-six");
        CHECK_STR(th_json_str(it, "status"), "completed");
    }
    cJSON_Delete(list);
    CHECK_EQ_INT(th_http_json(&srv, "GET", "/projects/p/executions?parent=nope", NULL, NULL), 400);
    /* parent=none: the top-level runs alone */
    CHECK_EQ_INT(
        th_http_json(&srv, "GET", "/projects/p/executions?parent=none&limit=1000", NULL, &list),
        200);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(list, "executions")) >= 1);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "executions"))
    {
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(it, "parentId")));
    }
    cJSON_Delete(list);
}

static void for_bound(void)
{
    char id[64];
    long long t0, took, most = -1;
    const cJSON *ex, *out;
    cJSON *j = NULL;

    t0 = th_now_ms();
    trigger("for-bound", "{}", id, sizeof(id));
    ex = dur_wait_run(&srv, id, 30000, &j);
    took = th_now_ms() - t0;
    CHECK_STR(th_json_str(ex, "status"), "completed");
    out = cJSON_GetObjectItem(ex, "output");
    CHECK_EQ_INT(cJSON_GetArraySize(out), 6);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT((long long)cJSON_GetNumberValue(cJSON_GetArrayItem(out, i)), i);
    cJSON_Delete(j);
    /* the most children that ran at one instant: each child's start against
     * the others' [started_at, completed_at) */
    CHECK(th_sql_ll(pg,
                    "SELECT max(c) FROM (SELECT (SELECT count(*) FROM executions b"
                    " WHERE b.parent_id = $1::uuid AND b.started_at <= a.started_at"
                    " AND b.completed_at > a.started_at) AS c"
                    " FROM executions a WHERE a.parent_id = $1::uuid) x",
                    id, &most) == 0);
    printf("for of 6 with concurrency 2: %lld ms, at most %lld children at once\n", took, most);
    CHECK_EQ_INT(most, 2);
    CHECK(took >= 2900);
    CHECK_EQ_INT(kids(id, "completed"), 6);
}

/* No child at all: the join completes at once, with no result. */
static void no_children(void)
{
    char id[64], in[300];
    const cJSON *ex;
    cJSON *j = NULL;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"k\":0}", dir);
    trigger("fan", in, id, sizeof(id));
    ex = dur_wait_run(&srv, id, 10000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(ex, "output"), "children"), 0);
    CHECK_STR(th_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "steps"), 0), "name"),
              "all:0");
    cJSON_Delete(j);
    trigger("for-bound-empty", "{}", id, sizeof(id));
    ex = dur_wait_run(&srv, id, 10000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ex, "output")), 0);
    cJSON_Delete(j);
}

static void compete(void)
{
    char id[64];
    long long t0, took;
    const cJSON *ex;
    cJSON *j = NULL;

    t0 = th_now_ms();
    trigger("fork-compete", "{}", id, sizeof(id));
    ex = dur_wait_run(&srv, id, 20000, &j);
    took = th_now_ms() - t0;
    CHECK_STR(th_json_str(ex, "status"), "completed");
    CHECK_STR(th_json_str(cJSON_GetObjectItem(ex, "output"), "w"), "fast");
    CHECK(took < 10000);
    cJSON_Delete(j);
    /* the loser is cancelled, not left sleeping for 30 s */
    CHECK(wait_kids(id, "cancelled", 1, 10000));
    CHECK_EQ_INT(kids(id, "completed"), 1);
}

static void cancel_parent(void)
{
    char id[64], path[160];
    const cJSON *ex;
    cJSON *j = NULL;

    trigger("fork-listen", "{}", id, sizeof(id));
    CHECK(wait_kids(id, "waiting", 2, 10000));
    snprintf(path, sizeof(path), "/executions/%s/cancel", id);
    CHECK(th_http_json(&srv, "POST", path, NULL, NULL) / 100 == 2);
    ex = dur_wait_run(&srv, id, 10000, &j);
    CHECK_STR(th_json_str(ex, "status"), "cancelled");
    cJSON_Delete(j);
    CHECK(wait_kids(id, "cancelled", 2, 10000));
}

static void failed_branch_retried(void)
{
    char id[64], in[512], path[160], *v;
    const cJSON *ex;
    cJSON *j = NULL;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"key\":\"fork-%d\"}", dir, (int)getpid());
    trigger("fork-flaky", in, id, sizeof(id));
    ex = dur_wait_run(&srv, id, 20000, &j);
    CHECK_STR(th_json_str(ex, "status"), "failed");
    CHECK(dur_error_has(ex, "flaky failure", "\"childExecutionId\""));
    cJSON_Delete(j);
    CHECK(wait_kids(id, "completed", 1, 5000));
    CHECK_EQ_INT(kids(id, "failed"), 1);

    snprintf(path, sizeof(path), "/executions/%s/retry", id);
    CHECK(th_http_json(&srv, "POST", path, NULL, NULL) / 100 == 2);
    ex = dur_wait_run(&srv, id, 20000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(ex, "output"), "calls"), 4);
    cJSON_Delete(j);
    /* the failed child ran again (retried once); the other did not */
    v = th_sql_value(pg,
                     "SELECT string_agg(status || '/' || retries, ',' ORDER BY parent_index)"
                     " FROM executions WHERE parent_id = $1::uuid",
                     id);
    CHECK_STR(v, "completed/0,completed/1");
    free(v);
    v = th_sql_value(pg,
                     "SELECT count(*) FROM steps s JOIN executions e ON e.id = s.execution_id"
                     " WHERE e.parent_id = $1::uuid AND e.parent_index = 0",
                     id);
    CHECK_STR(v, "1");
    free(v);
}

/* Signals "go" to every child of run id that waits. */
static void go_children(const char *id)
{
    char path[160];
    PGresult *res;
    const char *p[1] = {id};

    res = th_sql(pg, "SELECT id FROM executions WHERE parent_id = $1::uuid", 1, p);
    for (int r = 0; res != NULL && r < PQntuples(res); r++) {
        snprintf(path, sizeof(path), "/executions/%s/signals/go", PQgetvalue(res, r, 0));
        CHECK_EQ_INT(th_http_json(&srv, "POST", path, "{}", NULL), 202);
    }
    PQclear(res);
}

static void versions(void)
{
    char def[2048], old[64], fresh[64];
    const cJSON *ex;
    cJSON *j = NULL;

    pinned_fork(def, sizeof(def), 1);
    CHECK_EQ_INT(put_def("pinned-fork", def), 201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);
    trigger("pinned-fork", "{}", old, sizeof(old));
    CHECK(wait_kids(old, "waiting", 2, 10000));
    pinned_fork(def, sizeof(def), 2);
    CHECK_EQ_INT(put_def("pinned-fork", def), 200);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/restart", "p", NULL), 200);
    trigger("pinned-fork", "{}", fresh, sizeof(fresh));
    CHECK(wait_kids(fresh, "waiting", 2, 10000));
    go_children(old);
    go_children(fresh);
    ex = dur_wait_run(&srv, old, 15000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(
            th_json_num(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "output"), i), "version"), 1);
    cJSON_Delete(j);
    ex = dur_wait_run(&srv, fresh, 15000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(
            th_json_num(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "output"), i), "version"), 2);
    cJSON_Delete(j);
    /* the children carry their parent's code */
    {
        char *v =
            th_sql_value(pg,
                         "SELECT count(*) FROM executions c JOIN executions p ON p.id ="
                         " c.parent_id WHERE p.id = $1::uuid AND c.code_sha256 = p.code_sha256",
                         old);
        CHECK_STR(v, "2");
        free(v);
    }
}

/* Appends the child runs of parent to ids (from n, at most cap); returns
 * the new count. */
static int add_children(const char *parent, struct dur_id *ids, int n, int cap)
{
    const char *p[1] = {parent};
    PGresult *res = th_sql(
        pg, "SELECT id FROM executions WHERE parent_id = $1::uuid ORDER BY parent_index", 1, p);

    for (int r = 0; res != NULL && r < PQntuples(res) && n < cap; r++)
        snprintf(ids[n++].s, sizeof(ids[0].s), "%s", PQgetvalue(res, r, 0));
    PQclear(res);
    return n;
}

static void db_outage(void)
{
    static struct dur_id parents[8], children[8 * NKIDS];
    struct dur_report rep;
    PGconn *admin = PQconnectdb(getenv("WF_TEST_DATABASE_URL"));
    char in[512];
    int nk = 0;

    if (!CHECK(admin != NULL && PQstatus(admin) == CONNECTION_OK)) {
        PQfinish(admin);
        return;
    }
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"k\":%d,\"n\":%d,\"step_ms\":150}", dir, NKIDS,
             NSTEPS);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "fan-dur", in, 8, parents), 8);
    th_sleep_ms(dur_rand(300, 700));
    printf("outage: %lld of 8 parents not ended\n", dur_unended(pg, parents, 8));
    CHECK(dur_db_allow(admin, db.name, 0) == 0);
    CHECK(dur_db_cut(admin, db.name, 0) == 0);
    th_sleep_ms(1500);
    CHECK(dur_db_allow(admin, db.name, 1) == 0);
    PQfinish(pg);
    pg = th_db_connect(&db);
    for (int k = 0; k < 10; k++) {
        th_sleep_ms(dur_rand(50, 250));
        CHECK(dur_db_cut(admin, db.name, 1) == 0);
    }
    PQfinish(admin);
    if (!CHECK(pg != NULL))
        return;
    CHECK(dur_wait_ended(pg, parents, 8, 60000) == 0);
    CHECK_EQ_INT(dur_count_status(pg, parents, 8, "completed"), 8);
    for (int i = 0; i < 8; i++)
        nk = add_children(parents[i].s, children, nk, 8 * NKIDS);
    CHECK_EQ_INT(nk, 8 * NKIDS);
    if (CHECK(dur_check(pg, dir, children, nk, NSTEPS, "child runs, database outage", &rep) == 0))
        dur_expect_clean(&rep, "child runs, database outage");
}

/* A branch's own error reaches the parent whole: caught there by its
 * status, naming the child run and the task that raised it; the child's
 * stored error carries the same fields. */
static void raised_in_branch(void)
{
    char id[64], *v;
    const cJSON *ex, *out;
    cJSON *j = NULL;

    trigger("fork-raise", "{}", id, sizeof(id));
    ex = dur_wait_run(&srv, id, 20000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    out = cJSON_GetObjectItem(ex, "output");
    CHECK_STR(th_json_str(out, "caught"), "short and stout");
    CHECK_STR(th_json_str(out, "at"), "/do/0/t/try/0/f/fork/branches/1/pot");
    v = th_sql_value(pg,
                     "SELECT error->>'status' || ' ' || (error->>'title') FROM executions"
                     " WHERE parent_id = $1::uuid AND parent_index = 1",
                     id);
    CHECK_STR(v, "418 short and stout");
    free(v);
    if (th_json_str(out, "child") != NULL) {
        v = th_sql_value(pg, "SELECT parent_id::text FROM executions WHERE id = $1::uuid",
                         th_json_str(out, "child"));
        CHECK_STR(v, id);
        free(v);
    } else {
        CHECK(0);
    }
    cJSON_Delete(j);
}

/* Retried while a sibling of the failed child was running: core's sweep
 * asks for its cancel, and this host's cancel sweep ends it at once; a
 * retry landing between the two takes the cancel back, one after it runs
 * the sibling again from its checkpoint. Either way the parent completes. */
static void quick_retry(void)
{
    char id[64], in[512], path[160], *v;
    const cJSON *ex;
    cJSON *j = NULL;

    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"key\":\"race-%d\"}", dir, (int)getpid());
    trigger("fork-race", in, id, sizeof(id));
    ex = dur_wait_run(&srv, id, 20000, &j);
    CHECK_STR(th_json_str(ex, "status"), "failed");
    cJSON_Delete(j);
    /* until core's sweep has asked for the slow sibling's cancel (it runs
     * for 2.5 s; the sweep, every second, sees it first) */
    for (long long t0 = th_now_ms(); th_now_ms() - t0 < 3000; th_sleep_ms(20)) {
        v = th_sql_value(pg,
                         "SELECT status || '/' || cancel_requested FROM executions"
                         " WHERE parent_id = $1::uuid AND parent_index = 0",
                         id);
        if (v == NULL || strcmp(v, "running/false") != 0)
            break;
        free(v);
        v = NULL;
    }
    printf("slow sibling at the retry: %s\n", v != NULL ? v : "?");
    free(v);
    snprintf(path, sizeof(path), "/executions/%s/retry", id);
    CHECK(th_http_json(&srv, "POST", path, NULL, NULL) / 100 == 2);
    ex = dur_wait_run(&srv, id, 20000, &j);
    CHECK_STR(th_json_str(ex, "status"), "completed");
    CHECK_EQ_INT(th_json_num(cJSON_GetObjectItem(ex, "output"), "calls"), 4);
    cJSON_Delete(j);
    CHECK_EQ_INT(kids(id, "completed"), 2);
}

/* The retry's own SQL, step by step, on a project no worker runs (so no
 * engine moves its rows): a join whose first child failed while the
 * second, held by another host, has had its cancel asked for; the parent
 * retried and waiting again: the failed child is pending again, the
 * cancel is taken back, and the join waits. (test_children's other cases
 * cannot time a retry into that window: this host's cancel sweep follows
 * the sweep's answer at once.) */
static void retry_sql(void)
{
    static const char parent[] = "0d000000-0000-4000-8000-00000000000d";
    static const char specs[] = "[{\"workflow\":\"x\"},{\"workflow\":\"x\"}]";
    const char *wait[3] = {parent, specs, NULL};
    char *v;

    CHECK(th_sql_exec(pg, "INSERT INTO projects (id, name) VALUES ('sqlonly', 'no worker')") == 0);
    CHECK(th_sql_exec(pg,
                      "INSERT INTO executions (id, project_id, workflow, code_sha256, status,"
                      " lease_owner, lease_expires_at) VALUES"
                      " ('0d000000-0000-4000-8000-00000000000d', 'sqlonly', 'x',"
                      " repeat('a', 64), 'running', 'test-host', now() + interval '1 hour')") == 0);
    {
        PGresult *r = th_sql(pg,
                             "SELECT wf_children_wait($1::uuid, 0, 'test-host', $2::jsonb,"
                             " 'all', 0)",
                             2, wait);
        CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "continue") != 0);
        PQclear(r);
    }
    /* child 0 fails; child 1 runs on another host, its cancel asked for */
    CHECK(th_sql_exec(pg, "UPDATE executions SET status = 'failed', completed_at = now(),"
                          " error = '{\"message\": \"boom\"}' WHERE parent_id ="
                          " '0d000000-0000-4000-8000-00000000000d' AND parent_index = 0") == 0);
    CHECK(th_sql_exec(pg, "UPDATE executions SET status = 'running', lease_owner = 'other-host',"
                          " lease_expires_at = now() + interval '1 hour', cancel_requested = true"
                          " WHERE parent_id = '0d000000-0000-4000-8000-00000000000d'"
                          " AND parent_index = 1") == 0);
    /* settled here, or already by core (which hears wf_joins) */
    v = th_sql_value(pg, "SELECT wf_join_settle($1::uuid, 0)", parent);
    free(v);
    v = th_sql_value(pg, "SELECT status FROM steps WHERE execution_id = $1::uuid AND seq = 0",
                     parent);
    CHECK_STR(v, "failed");
    free(v);
    /* the parent failed, is retried, and its replay waits again */
    CHECK(th_sql_exec(pg, "UPDATE executions SET status = 'failed', lease_owner = NULL"
                          " WHERE id = '0d000000-0000-4000-8000-00000000000d'") == 0);
    v = th_sql_value(pg, "SELECT wf_retry($1::uuid)", parent);
    CHECK(v != NULL && strncmp(v, "retried:", 8) == 0);
    free(v);
    CHECK(th_sql_exec(pg, "UPDATE executions SET status = 'running', lease_owner = 'test-host'"
                          " WHERE id = '0d000000-0000-4000-8000-00000000000d'") == 0);
    {
        PGresult *r = th_sql(pg,
                             "SELECT wf_children_wait($1::uuid, 0, 'test-host', $2::jsonb,"
                             " 'all', 0)",
                             2, wait);
        CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "parked") == 0);
        PQclear(r);
    }
    v = th_sql_value(pg,
                     "SELECT string_agg(status || '/' || cancel_requested, ',' ORDER BY"
                     " parent_index) FROM executions WHERE parent_id = $1::uuid",
                     parent);
    CHECK_STR(v, "pending/false,running/false");
    free(v);
    CHECK(th_sql_exec(pg, "DELETE FROM projects WHERE id = 'sqlonly'") == 0);
}

static void durability(void)
{
    static struct dur_id parents[NPARENTS + NFANS], children[(NPARENTS + NFANS) * NKIDS];
    struct dur_report rep;
    char in[512];
    pid_t old;
    int nk = 0;

    /* 150 ms a step: a parent takes two rounds of 750 ms children, so every
     * kill below lands while runs are in flight */
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"k\":%d,\"n\":%d,\"step_ms\":150}", dir, NKIDS,
             NSTEPS);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "fan-dur", in, NPARENTS, parents), NPARENTS);
    snprintf(in, sizeof(in), "{\"dir\":\"%s\",\"k\":%d,\"n\":%d,\"limit\":2,\"step_ms\":150}", dir,
             NKIDS, NSTEPS);
    CHECK_EQ_INT(dur_trigger(&srv, "p", "fan", in, NFANS, parents + NPARENTS), NFANS);
    for (int round = 0; round < 3; round++) {
        th_sleep_ms(dur_rand(200, 700));
        printf("kill %d: %lld of %d parents not ended\n", round + 1,
               dur_unended(pg, parents, NPARENTS + NFANS), NPARENTS + NFANS);
        old = dur_kill_worker(&srv, "p");
        CHECK(old > 0);
        CHECK(dur_worker_back(&srv, "p", old, 15000) > 0);
    }
    CHECK(dur_wait_ended(pg, parents, NPARENTS + NFANS, 90000) == 0);
    CHECK_EQ_INT(dur_count_status(pg, parents, NPARENTS + NFANS, "completed"), NPARENTS + NFANS);
    for (int i = NPARENTS; i < NPARENTS + NFANS; i++) {
        char *out = th_sql_value(pg, "SELECT output::text FROM executions WHERE id = $1::uuid",
                                 parents[i].s);
        cJSON *o = out != NULL ? cJSON_Parse(out) : NULL;
        CHECK_EQ_INT(th_json_num(o, "children"), NKIDS);
        CHECK_EQ_INT(th_json_num(o, "sum"), NKIDS * NSTEPS);
        cJSON_Delete(o);
        free(out);
    }
    for (int i = 0; i < NPARENTS + NFANS; i++) {
        char *out = th_sql_value(pg, "SELECT output::text FROM executions WHERE id = $1::uuid",
                                 parents[i].s);
        cJSON *o = out != NULL ? cJSON_Parse(out) : NULL;
        if (i < NPARENTS) {
            CHECK_EQ_INT(cJSON_GetArraySize(o), NKIDS);
            for (int k = 0; k < NKIDS; k++)
                CHECK_EQ_INT(th_json_num(cJSON_GetArrayItem(o, k), "sum"), NSTEPS);
        }
        cJSON_Delete(o);
        free(out);
        nk = add_children(parents[i].s, children, nk, (NPARENTS + NFANS) * NKIDS);
    }
    CHECK_EQ_INT(nk, (NPARENTS + NFANS) * NKIDS);
    if (CHECK(dur_check(pg, dir, children, nk, NSTEPS, "child runs, worker killed 3 times", &rep) ==
              0))
        dur_expect_clean(&rep, "child runs, worker killed 3 times");
}

int main(void)
{
    char rw[300];
    const char *ov[4];

    memset(&srv, 0, sizeof(srv));
    memset(&db, 0, sizeof(db));
    if (th_init("test_children", 1) < 0)
        return TH_SKIP;
    if (dur_make_dir(dir, sizeof(dir), "test-children") < 0)
        return 1;
    snprintf(rw, sizeof(rw), "WF_SANDBOX_RW_PATHS=%s", dir);
    ov[0] = rw;
    ov[1] = "WF_LISTEN_ADDR=127.0.0.1";
    ov[2] = NULL;
    if (th_up(&db, &srv, ov, &pg) != 0)
        goto out;
    dur_seed();
    CHECK_EQ_INT(th_create_project(&srv, "p", NULL), 201);
    CHECK_EQ_INT(dur_deploy(&srv, "p", "engine_recorder"), 0);
    CHECK_EQ_INT(put_def("fork-listen", FORK_LISTEN), 201);
    CHECK_EQ_INT(put_def("fork-compete", FORK_COMPETE), 201);
    CHECK_EQ_INT(put_def("for-bound", FOR_BOUND), 201);
    CHECK_EQ_INT(put_def("fork-flaky", FORK_FLAKY), 201);
    CHECK_EQ_INT(put_def("fan-dur", FAN_DUR), 201);
    CHECK_EQ_INT(put_def("fork-race", FORK_RACE), 201);
    CHECK_EQ_INT(put_def("fork-raise", FORK_RAISE), 201);
    CHECK_EQ_INT(
        put_def(
            "for-bound-empty",
            DOC("for-bound-empty") "\"do\":[{\"l\":{\"for\":{\"in\":\"${ [] }\","
                                   "\"concurrency\":2},\"do\":[{\"s\":{\"set\":{\"x\":1}}}]}}]}"),
        201);
    CHECK_EQ_INT(th_post_project(&srv, "/workers/start", "p", NULL), 200);
    fork_concurrent();
    for_bound();
    no_children();
    compete();
    cancel_parent();
    failed_branch_retried();
    quick_retry();
    retry_sql();
    raised_in_branch();
    versions();
    /* the metrics count them: a wait per join, the joins checked, the
     * compete's loser and the cancelled parent's two children */
    CHECK(th_metric(&srv, "wf_child_waits_total") >= 5);
    CHECK(th_metric(&srv, "wf_child_join_checks_total") >= 5);
    CHECK(th_metric(&srv, "wf_child_orphans_cancelled_total") >= 3);
    durability();
    db_outage();
out:
    th_down(&db, &srv, pg);
    dur_remove_dir(dir);
    return th_finish();
}
