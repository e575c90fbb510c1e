/*
 * harness_http.c: the harness's HTTP side (harness.h has the contracts):
 * requests to a test server over libcurl, one at a time or in parallel,
 * JSON replies, /metrics, and the project and worker helpers built on them.
 *
 * Invariants, as in harness.c: every request goes to 127.0.0.1 with proxies
 * disabled and a timeout; every buffer grown from a reply is capped
 * (TH_MAX_READ); helpers print why they fail and return -1 (or NULL).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <curl/curl.h>

/* ---- HTTP ---------------------------------------------------------------- */

struct growbuf {
    char *p;
    size_t len;
    size_t cap;
};

static size_t growbuf_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct growbuf *b = userp;
    size_t n = size * nmemb;

    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        char *np;

        while (ncap < b->len + n + 1)
            ncap *= 2;
        if (ncap > TH_MAX_READ)
            return 0;
        np = realloc(b->p, ncap);
        if (np == NULL)
            return 0;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* 1 when headers (NULL-terminated, may be NULL) hold a header named name
 * (with its colon, e.g. "Authorization:"). */
static int has_header(const char *const *headers, const char *name)
{
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        if (strncasecmp(headers[i], name, strlen(name)) == 0)
            return 1;
    }
    return 0;
}

long th_http_ex(const struct th_server *s, const char *method, const char *path, const char *body,
                size_t body_len, const char *const *headers, long timeout_ms, struct th_reply *r)
{
    struct growbuf bbuf = {NULL, 0, 0};
    struct growbuf hbuf = {NULL, 0, 0};
    struct curl_slist *hl = NULL;
    char url[1200];
    CURL *c;
    CURLcode rc;
    int i;

    memset(r, 0, sizeof(*r));
    if (s->port <= 0) {
        fprintf(stderr, "http: no port\n");
        return -1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    c = curl_easy_init();
    if (c == NULL)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, growbuf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, growbuf_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hbuf);
    if (body != NULL || strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        /* unless the caller says otherwise (a server reads the first one) */
        if (!has_header(headers, "Content-Type:"))
            hl = curl_slist_append(hl, "Content-Type: application/json");
    }
    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    /* The server's token, unless the caller sends its own. */
    if (s->token[0] != '\0' && !has_header(headers, "Authorization:")) {
        char auth[sizeof(s->token) + 32];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
        hl = curl_slist_append(hl, auth);
    }
    if (hl != NULL)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    r->body = bbuf.p ? bbuf.p : strdup("");
    r->body_len = bbuf.len;
    r->headers = hbuf.p ? hbuf.p : strdup("");
    if (rc != CURLE_OK) {
        fprintf(stderr, "http %s %s: %s\n", method, path, curl_easy_strerror(rc));
        r->status = 0;
        return -1;
    }
    if (r->body != NULL && r->body_len > 0)
        r->json = cJSON_ParseWithLength(r->body, r->body_len);
    return r->status;
}

long th_http(const struct th_server *s, const char *method, const char *path, const char *body,
             size_t body_len, struct th_reply *r)
{
    return th_http_ex(s, method, path, body, body_len, NULL, 60000, r);
}

/* sets up one easy handle of th_http_parallel; returns it or NULL */
static CURL *parallel_handle(const struct th_server *s, const char *method, const char *path,
                             const char *body, struct curl_slist *hl, struct growbuf *b)
{
    char url[1200];
    CURL *c = curl_easy_init();

    if (c == NULL)
        return NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, growbuf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_PRIVATE, b);
    if (body != NULL || strcmp(method, "POST") == 0) {
        /* COPYPOSTFIELDS: the caller's strings need not outlive the setup */
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
        curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body ? body : "");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    return c;
}

int th_http_parallel(const struct th_server *s, const char *method, const char *const *paths,
                     const char *const *bodies, int n, long *status, cJSON **json)
{
    struct curl_slist *hl = NULL;
    struct growbuf *bufs;
    CURL **hs;
    CURLM *multi;
    long long deadline = th_now_ms() + 60000;
    int running = 0;
    int rc = 0;
    int i;

    for (i = 0; i < n; i++) {
        status[i] = 0;
        json[i] = NULL;
    }
    if (s->port <= 0 || n <= 0)
        return -1;
    bufs = calloc((size_t)n, sizeof(*bufs));
    hs = calloc((size_t)n, sizeof(*hs));
    multi = curl_multi_init();
    hl = curl_slist_append(hl, "Content-Type: application/json");
    if (bufs == NULL || hs == NULL || multi == NULL || hl == NULL) {
        rc = -1;
        goto done;
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n);
    for (i = 0; i < n; i++) {
        hs[i] = parallel_handle(s, method, paths[i], bodies ? bodies[i] : NULL, hl, &bufs[i]);
        if (hs[i] == NULL || curl_multi_add_handle(multi, hs[i]) != CURLM_OK) {
            rc = -1;
            goto done;
        }
    }
    for (i = 0; i < 100000; i++) {
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            rc = -1;
            break;
        }
        if (running == 0 || th_now_ms() >= deadline)
            break;
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    for (;;) {
        int left;
        CURLMsg *msg = curl_multi_info_read(multi, &left);

        if (msg == NULL)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        for (i = 0; i < n; i++) {
            if (hs[i] != msg->easy_handle)
                continue;
            if (msg->data.result == CURLE_OK) {
                curl_easy_getinfo(hs[i], CURLINFO_RESPONSE_CODE, &status[i]);
                if (bufs[i].len > 0)
                    json[i] = cJSON_ParseWithLength(bufs[i].p, bufs[i].len);
            } else {
                fprintf(stderr, "http %s %s: %s\n", method, paths[i],
                        curl_easy_strerror(msg->data.result));
            }
        }
    }
    if (running != 0) {
        fprintf(stderr, "http: %d parallel requests unfinished after 60 s\n", running);
        rc = -1;
    }
done:
    for (i = 0; hs != NULL && i < n; i++) {
        if (hs[i] != NULL) {
            if (multi != NULL)
                curl_multi_remove_handle(multi, hs[i]);
            curl_easy_cleanup(hs[i]);
        }
        if (bufs != NULL)
            free(bufs[i].p);
    }
    if (multi != NULL)
        curl_multi_cleanup(multi);
    curl_slist_free_all(hl);
    free(hs);
    free(bufs);
    return rc;
}

void th_reply_free(struct th_reply *r)
{
    free(r->body);
    free(r->headers);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof(*r));
}

long long th_metric(const struct th_server *s, const char *name)
{
    struct th_reply r;
    long long v = -1;
    char needle[128];

    if (th_http(s, "GET", "/metrics", NULL, 0, &r) == 200 && r.body != NULL) {
        const char *p;
        snprintf(needle, sizeof(needle), "\n%s ", name);
        p = strstr(r.body, needle);
        if (p != NULL)
            v = strtoll(p + strlen(needle), NULL, 10);
    }
    th_reply_free(&r);
    return v;
}

long th_http_json(const struct th_server *s, const char *method, const char *path, const char *body,
                  cJSON **json)
{
    struct th_reply r;
    long st;

    st = th_http(s, method, path, body, body ? strlen(body) : 0, &r);
    if (json != NULL) {
        *json = r.json;
        r.json = NULL;
    }
    th_reply_free(&r);
    return st;
}

/*
 * POSTs {"<key>":"<value>"} (built with cJSON, so value is escaped) to path.
 * Returns as th_http_json; *json (if json is not NULL) is NULL when the body
 * could not be built.
 */
static long post_one_string(const struct th_server *s, const char *path, const char *key,
                            const char *value, cJSON **json)
{
    cJSON *o = cJSON_CreateObject();
    char *body;
    long st;

    if (json != NULL)
        *json = NULL;
    if (o == NULL)
        return -1;
    if (cJSON_AddStringToObject(o, key, value) == NULL) {
        cJSON_Delete(o);
        return -1;
    }
    body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (body == NULL)
        return -1;
    st = th_http_json(s, "POST", path, body, json);
    cJSON_free(body);
    return st;
}

long th_post_project(const struct th_server *s, const char *path, const char *project_id,
                     cJSON **json)
{
    return post_one_string(s, path, "projectId", project_id, json);
}

const char *th_json_str(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

long long th_json_num(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsNumber(it) ? (long long)it->valuedouble : -1;
}

int th_json_bool(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (cJSON_IsTrue(it))
        return 1;
    if (cJSON_IsFalse(it))
        return 0;
    return -1;
}

/* ---- projects, workers and heartbeats ----------------------------------- */

const char th_seed_query_1[] =
    "SELECT worker_id, project_id, status, started_at, last_heartbeat,\n"
    "       EXTRACT(EPOCH FROM (NOW() - last_heartbeat)) as seconds_since_heartbeat\n"
    "FROM workflow_workers WHERE status = 'running';";

long th_create_project(const struct th_server *s, const char *id, cJSON **json)
{
    return post_one_string(s, "/projects", "id", id, json);
}

int th_create_and_start(const struct th_server *s, const char *const *ids, int n, pid_t *pids)
{
    int ok = 1;
    int i;

    for (i = 0; i < n; i++) {
        cJSON *j = NULL;
        int good = 1;

        good &= CHECK_EQ_INT(th_create_project(s, ids[i], NULL), 201);
        good &= CHECK_EQ_INT(th_post_project(s, "/workers/start", ids[i], &j), 200);
        if (pids != NULL)
            pids[i] = (pid_t)th_json_num(j, "pid");
        cJSON_Delete(j);
        if (!good)
            fprintf(stderr, "  in: create and start project %s\n", ids[i]);
        ok &= good;
    }
    return ok ? 0 : -1;
}

pid_t th_status_pid(const struct th_server *s, const char *project, cJSON **json)
{
    char path[128];
    cJSON *j = NULL;
    pid_t pid = -1;

    snprintf(path, sizeof(path), "/workers/status/%s", project);
    if (th_http_json(s, "GET", path, NULL, &j) == 200)
        pid = (pid_t)th_json_num(j, "pid");
    if (json != NULL)
        *json = j;
    else
        cJSON_Delete(j);
    return pid;
}

long long th_heartbeat_ms(PGconn *conn, const char *worker_id)
{
    long long v = -1;

    if (th_sql_ll(conn,
                  "SELECT (EXTRACT(EPOCH FROM last_heartbeat) * 1000)"
                  "::bigint FROM workflow_workers WHERE worker_id = $1",
                  worker_id, &v) != 0)
        return -1;
    return v;
}

struct heartbeat_wait {
    PGconn *conn;
    const char *worker_id;
    long long after_ms;
};

static int heartbeat_after(void *arg)
{
    const struct heartbeat_wait *w = arg;

    return th_heartbeat_ms(w->conn, w->worker_id) > w->after_ms;
}

int th_wait_heartbeat_after(PGconn *conn, const char *worker_id, long long after_ms, int timeout_ms,
                            int interval_ms)
{
    struct heartbeat_wait w;

    w.conn = conn;
    w.worker_id = worker_id;
    w.after_ms = after_ms;
    return th_wait_until(heartbeat_after, &w, timeout_ms, interval_ms);
}

int th_db_now_ms(PGconn *conn, long long *out)
{
    return th_sql_ll(conn,
                     "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)"
                     "::bigint",
                     NULL, out);
}
