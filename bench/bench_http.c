/*
 * bench_http.c: the HTTP client of the benchmark harness (bench/run).
 *
 *   bench_http run    --port P --method M --path T [--body T] (--prefix X --from A
 *                     --count N | --id X --count N) [--threads K] [--label L]
 *                     [--max-seconds S] [--timeout-ms MS]
 *       Sends N requests to 127.0.0.1:P, one per id (prefix-A … prefix-(A+N-1),
 *       or the same id N times); "%s" in the path and body templates is the
 *       id. K threads (default 1) each reuse one libcurl handle, so one
 *       connection each; each thread takes the next id. Prints one JSON
 *       object: counts, wall time and reply-time percentiles in ms, timed
 *       client-side around curl_easy_perform.
 *
 *   bench_http deploy --port P --prefix X --from A --count N --so FILE
 *                     [--threads K] [--max-seconds S] NAME...
 *       For each id: POST /projects {"id"}, then PUT
 *       /projects/{id}/activities/{NAME} with the raw .so body for each NAME.
 *       A project that already exists (409) is fine. Prints one JSON object.
 *
 *   bench_http fire   --port P --path T --body B --count N [--conns C] [--rate R]
 *                     [--ids FILE] [--label L] [--max-seconds S] [--timeout-ms MS]
 *       N POSTs of body B (a trigger, say) over C keep-alive connections
 *       (default 64), one request in flight on each, as fast as they are
 *       answered or paced at R requests a second (open loop); an epoll
 *       client of its own (fire.c), not libcurl. Prints one JSON object
 *       (reply-time percentiles, the first request's wall-clock time) and,
 *       with --ids, writes "<executionId>\t<sent epoch µs>\t<answered epoch
 *       µs>" per 2xx reply, for the harness to load into PostgreSQL.
 *
 * Every loop is bounded by its count and by --max-seconds (default 300);
 * every request by --timeout-ms (default 60000). Only 127.0.0.1 is ever
 * contacted, with proxies disabled. A reply that is not 2xx counts as an
 * error (the first few are printed on stderr) and the exit status is 1.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "fire.h"
#include "stats.h"

#define MAX_COUNT 100000
#define MAX_NAMES 64
#define MAX_THREADS 64
#define BODY_CAP (1u << 20)

struct opts {
    const char *cmd;
    int port;
    const char *method;
    const char *path;
    const char *body;
    const char *prefix;
    const char *id;
    const char *label;
    const char *so_path;
    long from;
    long count;
    int threads;
    double max_seconds;
    long timeout_ms;
    int conns;
    double rate;
    const char *ids_path;
    const char *names[MAX_NAMES];
    int nnames;
};

struct shared {
    const struct opts *o;
    char *so;
    size_t so_len;
    pthread_mutex_t lock;
    long next;    /* next index to take */
    long done;    /* requests completed (any status) */
    long errors;  /* non-2xx or transport failures */
    long printed; /* error messages printed */
    double *lat;  /* per index, ms; -1 if not sent */
    double t0;    /* start, monotonic seconds */
    double t_end; /* last completion */
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_http run --port P --method M --path T [--body T]\n"
            "                      (--prefix X --from A --count N | --id X --count N)\n"
            "                      [--threads K] [--label L] [--max-seconds S] [--timeout-ms MS]\n"
            "       bench_http deploy --port P --prefix X --from A --count N --so FILE\n"
            "                      [--threads K] [--max-seconds S] NAME...\n"
            "       bench_http fire --port P --path T --body B --count N [--conns C] [--rate R]\n"
            "                      [--ids FILE] [--label L] [--max-seconds S] [--timeout-ms MS]\n");
    exit(2);
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bench_http: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->threads = 1;
    o->max_seconds = 300;
    o->timeout_ms = 60000;
    o->label = "requests";
    o->conns = 64;
    if (argc < 2)
        usage();
    o->cmd = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strncmp(a, "--", 2) != 0) {
            if (o->nnames >= MAX_NAMES)
                usage();
            o->names[o->nnames++] = a;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--port") == 0)
            o->port = (int)parse_long(v, 1, 65535, "port");
        else if (strcmp(a, "--method") == 0)
            o->method = v;
        else if (strcmp(a, "--path") == 0)
            o->path = v;
        else if (strcmp(a, "--body") == 0)
            o->body = v;
        else if (strcmp(a, "--prefix") == 0)
            o->prefix = v;
        else if (strcmp(a, "--id") == 0)
            o->id = v;
        else if (strcmp(a, "--label") == 0)
            o->label = v;
        else if (strcmp(a, "--so") == 0)
            o->so_path = v;
        else if (strcmp(a, "--from") == 0)
            o->from = parse_long(v, 0, 10000000, "from");
        else if (strcmp(a, "--count") == 0)
            o->count = parse_long(v, 1, FIRE_MAX_COUNT, "count");
        else if (strcmp(a, "--conns") == 0)
            o->conns = (int)parse_long(v, 1, FIRE_MAX_CONNS, "conns");
        else if (strcmp(a, "--rate") == 0)
            o->rate = (double)parse_long(v, 0, 10000000, "rate");
        else if (strcmp(a, "--ids") == 0)
            o->ids_path = v;
        else if (strcmp(a, "--threads") == 0)
            o->threads = (int)parse_long(v, 1, MAX_THREADS, "threads");
        else if (strcmp(a, "--max-seconds") == 0)
            o->max_seconds = (double)parse_long(v, 1, 3600, "max-seconds");
        else if (strcmp(a, "--timeout-ms") == 0)
            o->timeout_ms = parse_long(v, 100, 600000, "timeout-ms");
        else
            usage();
    }
    if (o->port == 0 || o->count == 0)
        usage();
    if (strcmp(o->cmd, "fire") == 0) {
        if (o->path == NULL || o->body == NULL || o->nnames != 0)
            usage();
        return;
    }
    if (o->count > MAX_COUNT || (o->prefix == NULL) == (o->id == NULL))
        usage();
    if (strcmp(o->cmd, "run") == 0) {
        if (o->method == NULL || o->path == NULL || o->nnames != 0)
            usage();
    } else if (strcmp(o->cmd, "deploy") == 0) {
        if (o->prefix == NULL || o->so_path == NULL || o->nnames == 0)
            usage();
    } else {
        usage();
    }
}

/* The id of request i into buf. */
static void id_of(const struct opts *o, long i, char *buf, size_t len)
{
    if (o->id != NULL)
        snprintf(buf, len, "%s", o->id);
    else
        snprintf(buf, len, "%s-%ld", o->prefix, o->from + i);
}

/* tmpl with each "%s" replaced by id (a literal "%%" stays "%%"). */
static void expand(const char *tmpl, const char *id, char *out, size_t len)
{
    size_t n = 0;
    size_t idlen = strlen(id);

    for (const char *p = tmpl; *p != '\0' && n + 1 < len; p++) {
        if (p[0] == '%' && p[1] == 's') {
            if (n + idlen + 1 >= len)
                break;
            memcpy(out + n, id, idlen);
            n += idlen;
            p++;
            continue;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

struct sink {
    char buf[4096];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    size_t room = sizeof(s->buf) - 1 - s->len;
    size_t take = n < room ? n : room;

    memcpy(s->buf + s->len, data, take);
    s->len += take;
    s->buf[s->len] = '\0';
    return n;
}

static CURL *new_handle(const struct opts *o, struct sink *sink, char *errbuf)
{
    CURL *h = curl_easy_init();

    if (h == NULL)
        return NULL;
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    return h;
}

/*
 * One request; returns the HTTP status, or 0 on a transport failure (errbuf
 * set). body may be NULL (no body); len is its length.
 */
static long do_request(CURL *h, struct curl_slist *hdrs, int port, const char *method,
                       const char *path, const char *body, size_t len, struct sink *sink,
                       char *errbuf)
{
    char url[1200];
    long status = 0;
    CURLcode rc;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    sink->len = 0;
    sink->buf[0] = '\0';
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body != NULL ? len : 0));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? NULL : method);
    }
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        if (errbuf[0] == '\0')
            snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static void note_error(struct shared *s, const char *what, long status, const char *body,
                       const char *err)
{
    pthread_mutex_lock(&s->lock);
    s->errors++;
    if (s->printed < 5) {
        s->printed++;
        if (status == 0)
            fprintf(stderr, "bench_http: %s: %s\n", what, err);
        else
            fprintf(stderr, "bench_http: %s: HTTP %ld: %.300s\n", what, status, body);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Takes the next index, or -1 when the count or the time is used up. */
static long take(struct shared *s)
{
    long i = -1;

    pthread_mutex_lock(&s->lock);
    if (s->next < s->o->count && now_s() - s->t0 < s->o->max_seconds)
        i = s->next++;
    pthread_mutex_unlock(&s->lock);
    return i;
}

static void finish(struct shared *s)
{
    pthread_mutex_lock(&s->lock);
    s->done++;
    s->t_end = now_s();
    pthread_mutex_unlock(&s->lock);
}

static void *run_thread(void *arg)
{
    struct shared *s = arg;
    const struct opts *o = s->o;
    char errbuf[CURL_ERROR_SIZE];
    struct sink sink;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *h = new_handle(o, &sink, errbuf);
    long i;

    if (h == NULL || hdrs == NULL) {
        fprintf(stderr, "bench_http: could not create a libcurl handle\n");
        curl_slist_free_all(hdrs);
        return NULL;
    }
    while ((i = take(s)) >= 0) {
        char id[256], path[1024], body[1024], what[1200];
        double t;
        long st;

        id_of(o, i, id, sizeof(id));
        expand(o->path, id, path, sizeof(path));
        if (o->body != NULL)
            expand(o->body, id, body, sizeof(body));
        t = now_s();
        st = do_request(h, hdrs, o->port, o->method, path, o->body != NULL ? body : NULL,
                        o->body != NULL ? strlen(body) : 0, &sink, errbuf);
        s->lat[i] = (now_s() - t) * 1000.0;
        if (st < 200 || st > 299) {
            snprintf(what, sizeof(what), "%s %s", o->method, path);
            note_error(s, what, st, sink.buf, errbuf);
        }
        finish(s);
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return NULL;
}

static void *deploy_thread(void *arg)
{
    struct shared *s = arg;
    const struct opts *o = s->o;
    char errbuf[CURL_ERROR_SIZE];
    struct sink sink;
    struct curl_slist *json = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *bin = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    CURL *h = new_handle(o, &sink, errbuf);
    long i;

    if (h == NULL || json == NULL || bin == NULL) {
        fprintf(stderr, "bench_http: could not create a libcurl handle\n");
        curl_slist_free_all(json);
        curl_slist_free_all(bin);
        curl_easy_cleanup(h);
        return NULL;
    }
    while ((i = take(s)) >= 0) {
        char id[256], path[1024], body[512];
        double t = now_s();
        long st;

        id_of(o, i, id, sizeof(id));
        snprintf(body, sizeof(body), "{\"id\":\"%s\"}", id);
        st = do_request(h, json, o->port, "POST", "/projects", body, strlen(body), &sink, errbuf);
        if (st != 201 && st != 409) {
            note_error(s, "POST /projects", st, sink.buf, errbuf);
        } else {
            for (int k = 0; k < o->nnames; k++) {
                snprintf(path, sizeof(path), "/projects/%s/activities/%s", id, o->names[k]);
                st = do_request(h, bin, o->port, "PUT", path, s->so, s->so_len, &sink, errbuf);
                if (st < 200 || st > 299) {
                    note_error(s, "PUT activity", st, sink.buf, errbuf);
                    break;
                }
            }
        }
        s->lat[i] = (now_s() - t) * 1000.0;
        finish(s);
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(json);
    curl_slist_free_all(bin);
    return NULL;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = malloc(BODY_CAP * 32);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, BODY_CAP * 32, f);
    fclose(f);
    *len = n;
    return buf;
}

/* p50 of the requests with index in [from, to): is the reply time growing
 * with the number of workers already running? */
static double p50_range(const double *lat, long from, long to, double *tmp)
{
    long n = 0;

    for (long i = from; i < to; i++)
        if (lat[i] >= 0)
            tmp[n++] = lat[i];
    qsort(tmp, (size_t)n, sizeof(double), stats_cmp_double);
    return stats_pct(tmp, n, 50);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct shared s;
    pthread_t tids[MAX_THREADS];
    double *sorted;
    double sum = 0;
    double q1, q4;
    long n = 0;
    int started = 0;

    parse_args(argc, argv, &o);
    if (strcmp(o.cmd, "fire") == 0) {
        struct fire_opts fo = {o.port, o.path,        o.body,       o.count, o.conns,
                               o.rate, o.max_seconds, o.timeout_ms, o.label, o.ids_path};
        return fire_main(&fo);
    }
    memset(&s, 0, sizeof(s));
    s.o = &o;
    pthread_mutex_init(&s.lock, NULL);
    s.lat = malloc(sizeof(double) * (size_t)o.count);
    sorted = malloc(sizeof(double) * (size_t)o.count);
    if (s.lat == NULL || sorted == NULL) {
        fprintf(stderr, "bench_http: out of memory\n");
        return 2;
    }
    for (long i = 0; i < o.count; i++)
        s.lat[i] = -1;
    if (strcmp(o.cmd, "deploy") == 0) {
        s.so = read_file(o.so_path, &s.so_len);
        if (s.so == NULL || s.so_len == 0) {
            fprintf(stderr, "bench_http: cannot read %s\n", o.so_path);
            return 2;
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bench_http: curl_global_init failed\n");
        return 2;
    }
    s.t0 = now_s();
    s.t_end = s.t0;
    for (int t = 0; t < o.threads; t++) {
        if (pthread_create(&tids[t], NULL,
                           strcmp(o.cmd, "deploy") == 0 ? deploy_thread : run_thread, &s) != 0)
            break;
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    q1 = p50_range(s.lat, 0, (o.count + 3) / 4, sorted);
    q4 = p50_range(s.lat, o.count - (o.count + 3) / 4, o.count, sorted);
    for (long i = 0; i < o.count; i++) {
        if (s.lat[i] < 0)
            continue;
        sorted[n++] = s.lat[i];
        sum += s.lat[i];
    }
    qsort(sorted, (size_t)n, sizeof(double), stats_cmp_double);
    printf("{\"label\":\"%s\",\"n\":%ld,\"ok\":%ld,\"errors\":%ld,\"threads\":%d,"
           "\"total_ms\":%.3f,\"mean_ms\":%.3f,\"min_ms\":%.3f,\"p50_ms\":%.3f,"
           "\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"p50_first_quarter_ms\":%.3f,"
           "\"p50_last_quarter_ms\":%.3f,\"complete\":%s}\n",
           o.label, n, n - s.errors, s.errors, o.threads, (s.t_end - s.t0) * 1000.0,
           n > 0 ? sum / (double)n : 0.0, n > 0 ? sorted[0] : 0.0, stats_pct(sorted, n, 50),
           stats_pct(sorted, n, 95), stats_pct(sorted, n, 99), n > 0 ? sorted[n - 1] : 0.0, q1, q4,
           n == o.count ? "true" : "false");
    curl_global_cleanup();
    free(s.so);
    free(s.lat);
    free(sorted);
    return s.errors == 0 && n == o.count ? 0 : 1;
}
