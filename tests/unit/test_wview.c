/*
 * test_wview.c: core's worker view, fed the manager's slot snapshots
 * without a database (the database layer is created but never started, so
 * row writes wait in its queue):
 *   - a snapshot creates, updates and ("stopped") removes a project's
 *     entry, and status, list and counts read it back;
 *   - a snapshot without a pid is logged as such, never with a value read
 *     from an uninitialised variable (a defect found in review: the debug
 *     line printed whatever the stack held);
 *   - heartbeats count only for the entry's current pid;
 *   - a malformed snapshot is ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbq.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"
#include "testhelp.h"
#include "wview.h"

/* Runs fn with stderr captured into buf (NUL-terminated). */
static void capture(void (*fn)(void *), void *arg, char *buf, size_t len)
{
    char path[] = "/tmp/wf-test-wview-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    ssize_t n;

    dup2(fd, STDERR_FILENO);
    fn(arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

struct state_call {
    struct wview *v;
    const char *json;
};

static void apply(void *arg)
{
    struct state_call *s = arg;
    cJSON *ev = cJSON_Parse(s->json);

    wview_on_state(s->v, ev, NULL);
    cJSON_Delete(ev);
}

int main(void)
{
    struct dbq_config qc = {"postgresql://127.0.0.1:1/none", "test", 1000, 1000, 1000, 0, 1000};
    struct wf_config cfg;
    struct loop *l = loop_new();
    struct dbq *q = dbq_new(l, &qc);
    struct wview *v;
    struct wview_counts c;
    struct state_call sc;
    char out[8192];
    cJSON *o, *arr;
    char *loaded;

    memset(&cfg, 0, sizeof(cfg));
    cfg.heartbeat_ms = 1000;
    snprintf(cfg.host_id, sizeof(cfg.host_id), "testhost");
    v = wview_new(&cfg, l, q);
    CHECK(v != NULL);
    sc.v = v;

    /* A snapshot without a pid: the debug line says so. */
    log_init("test", LOG_LVL_DEBUG, 0);
    sc.json = "{\"ev\":\"state\",\"project\":\"p1\",\"worker_id\":\"testhost:p1\","
              "\"status\":\"starting\",\"restarts\":0,\"started_at\":1}";
    capture(apply, &sc, out, sizeof(out));
    CHECK(strstr(out, "worker testhost:p1 is starting (no pid)") != NULL);
    log_init("test", LOG_LVL_ERROR, 0);
    CHECK(wview_has(v, "p1"));

    /* Running with a pid and an error; status reads it back. */
    sc.json = "{\"ev\":\"state\",\"project\":\"p1\",\"worker_id\":\"testhost:p1\","
              "\"status\":\"running\",\"pid\":321,\"restarts\":2,\"started_at\":1000,"
              "\"error\":\"restart failed: x\"}";
    apply(&sc);
    o = cJSON_CreateObject();
    CHECK(wview_status_json(v, "p1", o) == 1);
    CHECK_STR(cJSON_GetObjectItem(o, "status")->valuestring, "running");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "isRunning")));
    CHECK_INT(cJSON_GetObjectItem(o, "pid")->valuedouble, 321);
    CHECK_INT(cJSON_GetObjectItem(o, "restarts")->valuedouble, 2);
    CHECK_STR(cJSON_GetObjectItem(o, "error")->valuestring, "restart failed: x");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "loaded")));
    cJSON_Delete(o);
    CHECK(wview_status_json(v, "nope", NULL) == 0);

    /* Loaded code is kept per current pid. */
    wview_set_loaded(v, "p1", 999, "{\"plugins\":[]}"); /* another pid: ignored */
    CHECK(wview_loaded(v, "p1") == NULL);
    wview_set_loaded(v, "p1", 321, "{\"plugins\":[]}");
    loaded = wview_loaded(v, "p1");
    CHECK_STR(loaded, "{\"plugins\":[]}");
    free(loaded);

    /* List and counts. */
    arr = cJSON_CreateArray();
    CHECK_INT(wview_list_json(v, arr), 1);
    cJSON_Delete(arr);
    wview_heartbeat(v, "p1", 999); /* not its pid */
    wview_heartbeat(v, "p1", 321);
    wview_counts(v, &c);
    CHECK_INT(c.by_status[1], 1);
    CHECK_INT(c.restarts, 2);
    CHECK_INT(c.starts, 1);
    CHECK_STR(wview_status_name(1), "running");

    /* Malformed: ignored. Stopped: removed. */
    sc.json = "{\"ev\":\"state\",\"project\":\"bad id!\",\"status\":\"running\"}";
    apply(&sc);
    CHECK(!wview_has(v, "bad id!"));
    sc.json = "{\"ev\":\"state\",\"project\":\"p1\",\"worker_id\":\"testhost:p1\","
              "\"status\":\"stopped\",\"pid\":321}";
    apply(&sc);
    CHECK(!wview_has(v, "p1"));

    wview_free(v);
    dbq_free(q);
    loop_free(l);
    TEST_REPORT("unit_wview");
}
