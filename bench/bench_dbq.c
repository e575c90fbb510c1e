/*
 * bench_dbq.c: how many durable single-row INSERTs per second core's
 * asynchronous PostgreSQL layer (server/dbq.c) commits, against the
 * baseline of one autocommit statement per row.
 *
 *   bench_dbq groupcommit URL SECONDS [PRODUCERS=4] [WINDOW=256]
 *       The loop and dbq run in the main thread; PRODUCERS threads post
 *       single-row durable INSERTs into the loop with loop_post, as HTTP
 *       threads will, each keeping up to WINDOW rows unacknowledged (a
 *       semaphore per producer, released by the done callback). Two phases
 *       of SECONDS each: plain statements (dbq_exec) and rows of a multi-row
 *       template (dbq_row).
 *   bench_dbq pqexec URL SECONDS [PRODUCERS=4]
 *       The baseline: PRODUCERS threads, each with its own connection, one
 *       autocommit PQexecParams INSERT per row.
 *
 * Both make the table bench_dbq (p int, n bigint, v text, PRIMARY KEY (p,
 * n)) afresh, check that synchronous_commit is on for the writing sessions
 * (the durable class sets it; the baseline sets it too) and print one JSON
 * object per phase: rows, rows_per_s, commits, rows_per_commit, batches,
 * and the ack latency (from the producer's post to its callback; for the
 * baseline, around PQexecParams) in ms. Rows counted are those acknowledged
 * within SECONDS; the rest are drained and not counted. Exit 0, 1 when a
 * row failed, 2 on bad usage or set-up.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "dbq.h"
#include "log.h"
#include "loop.h"
#include "stats.h"

#define MAX_PRODUCERS 64
#define MAX_WINDOW 100000
#define MAX_SECONDS 600
#define MAX_SAMPLES 20000000L

static const char insert_sql[] = "INSERT INTO bench_dbq (p, n, v) VALUES ($1::int, $2::bigint, $3)";
static const char rows_sql[] =
    "INSERT INTO bench_dbq (p, n, v) SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[])";
static const char payload[] = "a step result of about 40 bytes.";

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The ack latencies of the phase, written on the loop thread only. */
struct samples {
    double *v;
    long n, cap;
};

static void sample(struct samples *s, double ms)
{
    if (s->n < s->cap)
        s->v[s->n++] = ms;
}

static void report(const char *label, int seconds, int producers, int window, long rows,
                   long errors, unsigned long long commits, unsigned long long batches,
                   struct samples *s, const char *sync_commit)
{
    double sum = 0;

    qsort(s->v, (size_t)s->n, sizeof(double), stats_cmp_double);
    for (long i = 0; i < s->n; i++)
        sum += s->v[i];
    printf("{\"label\":\"%s\",\"seconds\":%d,\"producers\":%d,\"window\":%d,\"rows\":%ld,"
           "\"errors\":%ld,\"rows_per_s\":%.0f,\"commits\":%llu,\"rows_per_commit\":%.1f,"
           "\"batches\":%llu,\"synchronous_commit\":\"%s\",\"mean_ms\":%.3f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
           label, seconds, producers, window, rows, errors, (double)rows / seconds, commits,
           commits > 0 ? (double)rows / (double)commits : 0.0, batches, sync_commit,
           s->n > 0 ? sum / (double)s->n : 0.0, stats_pct(s->v, s->n, 50),
           stats_pct(s->v, s->n, 99), s->n > 0 ? s->v[s->n - 1] : 0.0);
    fflush(stdout);
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Runs sql on a plain connection; 0 or -1 (printed). */
static int admin_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r;
    int rc = -1;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_dbq: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL); /* "table ... does not exist, skipping" */
    r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        rc = 0;
    else
        fprintf(stderr, "bench_dbq: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

static int make_table(const char *url)
{
    return admin_exec(url, "DROP TABLE IF EXISTS bench_dbq") < 0 ||
                   admin_exec(url, "CREATE TABLE bench_dbq (p int, n bigint, v text, "
                                   "PRIMARY KEY (p, n))") < 0
               ? -1
               : 0;
}

/* ---- groupcommit --------------------------------------------------------- */

struct bench;

struct producer {
    struct bench *b;
    int id;
    long seq; /* its thread only */
    sem_t window;
    pthread_t th;
};

/* One row in flight: posted by a producer, submitted on the loop thread. */
struct req {
    struct producer *p;
    long n;
    double t0;
    char pbuf[16], nbuf[24];
};

struct bench {
    struct loop *l;
    struct dbq *q;
    struct dbq_rows *tpl; /* NULL: plain statements */
    struct producer prod[MAX_PRODUCERS];
    int nprod;
    int stop;      /* __atomic: producers, finish */
    int running;   /* __atomic: producers not yet finished */
    long posted;   /* __atomic: rows posted into the loop */
    long answered; /* loop thread: rows whose callback ran (or that failed to submit) */
    long acked;    /* loop thread: DBQ_OK while measuring */
    long errors;   /* loop thread */
    int measuring; /* loop thread: count acks */
    struct samples lat;
};

static void on_row_done(void *arg, const struct dbq_result *r)
{
    struct req *rq = arg;
    struct bench *b = rq->p->b;

    if (r->outcome != DBQ_OK) {
        if (b->errors++ == 0)
            fprintf(stderr, "bench_dbq: a row failed: %s\n", r->message);
    } else if (b->measuring) {
        b->acked++;
        sample(&b->lat, (now_s() - rq->t0) * 1000.0);
    }
    b->answered++;
    sem_post(&rq->p->window);
    free(rq);
}

/* Loop thread: a producer's row arrives through the mailbox. */
static void submit(void *arg)
{
    struct req *rq = arg;
    struct bench *b = rq->p->b;
    const char *v[3] = {rq->pbuf, rq->nbuf, payload};
    int rc;

    if (b->tpl != NULL)
        rc = dbq_row(b->tpl, v, on_row_done, rq);
    else
        rc = dbq_exec(b->q, DBQ_DURABLE, 0, insert_sql, 3, v, NULL, NULL, on_row_done, rq);
    if (rc < 0) {
        b->errors++;
        b->answered++;
        sem_post(&rq->p->window);
        free(rq);
    }
}

/* A producer thread: posts rows as fast as its window allows. */
static void *produce(void *arg)
{
    struct producer *p = arg;
    struct bench *b = p->b;

    while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
        struct req *rq;

        if (sem_wait(&p->window) < 0)
            continue;
        rq = malloc(sizeof(*rq));
        if (rq == NULL) {
            sem_post(&p->window);
            continue;
        }
        rq->p = p;
        rq->n = p->seq++;
        snprintf(rq->pbuf, sizeof(rq->pbuf), "%d", p->id);
        snprintf(rq->nbuf, sizeof(rq->nbuf), "%ld", rq->n);
        rq->t0 = now_s();
        __atomic_add_fetch(&b->posted, 1, __ATOMIC_RELAXED);
        if (loop_post(b->l, submit, rq) < 0) {
            __atomic_sub_fetch(&b->posted, 1, __ATOMIC_RELAXED);
            free(rq);
            sem_post(&p->window);
        }
    }
    __atomic_sub_fetch(&b->running, 1, __ATOMIC_RELEASE);
    return NULL;
}

struct sc_check {
    char value[16];
    int done;
};

static void on_show(void *arg, const struct dbq_result *r)
{
    struct sc_check *c = arg;

    if (r->outcome == DBQ_OK && PQntuples(r->res) == 1)
        snprintf(c->value, sizeof(c->value), "%s", PQgetvalue(r->res, 0, 0));
    else
        snprintf(c->value, sizeof(c->value), "error");
    c->done = 1;
}

/* One phase: template NULL for plain statements. Returns 0, or -1. */
static int run_phase(const char *url, int seconds, int nprod, int window, int use_template)
{
    struct bench b;
    struct dbq_config cfg = {.url = url, .app_name = "bench"};
    struct dbq_stats st0, st1;
    struct sc_check sc = {"", 0};
    double t0, stop_at;
    int rc = 0;

    memset(&b, 0, sizeof(b));
    if (make_table(url) < 0)
        return -1;
    b.lat.cap = (long)seconds * 200000L < MAX_SAMPLES ? (long)seconds * 200000L : MAX_SAMPLES;
    b.lat.v = malloc((size_t)b.lat.cap * sizeof(double));
    b.l = loop_new();
    b.q = b.l != NULL ? dbq_new(b.l, &cfg) : NULL;
    if (b.lat.v == NULL || b.q == NULL || dbq_start(b.q) < 0) {
        fprintf(stderr, "bench_dbq: could not set up the loop: %s\n", strerror(errno));
        return -1;
    }
    if (use_template) {
        b.tpl = dbq_rows_new(b.q, DBQ_DURABLE, 0, rows_sql, 3);
        if (b.tpl == NULL)
            return -1;
    }
    /* the durable class must really wait for the WAL flush */
    if (dbq_exec(b.q, DBQ_DURABLE, DBQ_RETRY_SAFE, "SHOW synchronous_commit", 0, NULL, NULL, NULL,
                 on_show, &sc) < 0)
        return -1;
    t0 = now_s();
    while (!sc.done && now_s() - t0 < 15)
        (void)loop_turn(b.l, 50);
    if (strcmp(sc.value, "on") != 0) {
        fprintf(stderr, "bench_dbq: synchronous_commit is \"%s\" on the durable connection\n",
                sc.value);
        return -1;
    }
    b.nprod = nprod;
    for (int i = 0; i < nprod; i++) {
        b.prod[i].b = &b;
        b.prod[i].id = i;
        sem_init(&b.prod[i].window, 0, (unsigned)window);
    }
    dbq_stats(b.q, &st0);
    b.measuring = 1;
    b.running = nprod;
    for (int i = 0; i < nprod; i++)
        pthread_create(&b.prod[i].th, NULL, produce, &b.prod[i]);
    stop_at = now_s() + seconds;
    while (now_s() < stop_at)
        (void)loop_turn(b.l, 10);
    b.measuring = 0;
    dbq_stats(b.q, &st1);
    __atomic_store_n(&b.stop, 1, __ATOMIC_RELEASE);
    /* a producer waiting for its window wakes as the loop drains; then
     * everything posted is answered */
    t0 = now_s();
    while (__atomic_load_n(&b.running, __ATOMIC_ACQUIRE) > 0 && now_s() - t0 < 60)
        (void)loop_turn(b.l, 10);
    for (int i = 0; i < nprod; i++)
        pthread_join(b.prod[i].th, NULL);
    while (b.answered < __atomic_load_n(&b.posted, __ATOMIC_ACQUIRE) && now_s() - t0 < 60)
        (void)loop_turn(b.l, 10);
    report(use_template ? "dbq-rows" : "dbq-exec", seconds, nprod, window, b.acked, b.errors,
           (unsigned long long)(st1.commits - st0.commits),
           (unsigned long long)(st1.batches - st0.batches), &b.lat, sc.value);
    if (b.errors > 0)
        rc = 1;
    for (int i = 0; i < nprod; i++)
        sem_destroy(&b.prod[i].window);
    dbq_free(b.q);
    loop_free(b.l);
    free(b.lat.v);
    return rc;
}

/* ---- pqexec -------------------------------------------------------------- */

struct worker {
    const char *url;
    int id;
    double until;
    long rows, errors;
    struct samples lat;
    pthread_t th;
    char sync_commit[16];
};

static void *pq_worker(void *arg)
{
    struct worker *w = arg;
    PGconn *c = PQconnectdb(w->url);
    PGresult *r;
    char pbuf[16], nbuf[24];

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_dbq: %s", PQerrorMessage(c));
        w->errors++;
        PQfinish(c);
        return NULL;
    }
    PQclear(PQexec(c, "SET synchronous_commit = on"));
    r = PQexec(c, "SHOW synchronous_commit");
    snprintf(w->sync_commit, sizeof(w->sync_commit), "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "error");
    PQclear(r);
    snprintf(pbuf, sizeof(pbuf), "%d", w->id);
    for (long n = 0; now_s() < w->until; n++) {
        const char *v[3] = {pbuf, nbuf, payload};
        double t = now_s();

        snprintf(nbuf, sizeof(nbuf), "%ld", n);
        r = PQexecParams(c, insert_sql, 3, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            w->rows++;
            sample(&w->lat, (now_s() - t) * 1000.0);
        } else if (w->errors++ == 0) {
            fprintf(stderr, "bench_dbq: %s", PQerrorMessage(c));
        }
        PQclear(r);
    }
    PQfinish(c);
    return NULL;
}

static int run_pqexec(const char *url, int seconds, int nprod)
{
    static struct worker w[MAX_PRODUCERS];
    struct samples all = {0};
    long rows = 0, errors = 0;
    double until = now_s() + seconds;

    if (make_table(url) < 0)
        return 2;
    for (int i = 0; i < nprod; i++) {
        w[i].url = url;
        w[i].id = i;
        w[i].until = until;
        w[i].lat.cap = (long)seconds * 50000L;
        w[i].lat.v = malloc((size_t)w[i].lat.cap * sizeof(double));
        if (w[i].lat.v == NULL)
            return 2;
        pthread_create(&w[i].th, NULL, pq_worker, &w[i]);
    }
    for (int i = 0; i < nprod; i++) {
        pthread_join(w[i].th, NULL);
        rows += w[i].rows;
        errors += w[i].errors;
        all.cap += w[i].lat.n;
    }
    all.v = malloc((size_t)(all.cap > 0 ? all.cap : 1) * sizeof(double));
    if (all.v == NULL)
        return 2;
    for (int i = 0; i < nprod; i++) {
        for (long k = 0; k < w[i].lat.n; k++)
            sample(&all, w[i].lat.v[k]);
        free(w[i].lat.v);
    }
    report("pqexec", seconds, nprod, 1, rows, errors, (unsigned long long)rows,
           (unsigned long long)rows, &all, w[0].sync_commit);
    free(all.v);
    for (int i = 0; i < nprod; i++) {
        if (strcmp(w[i].sync_commit, "on") != 0) {
            fprintf(stderr, "bench_dbq: synchronous_commit is \"%s\"\n", w[i].sync_commit);
            return 2;
        }
    }
    return errors > 0 ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_dbq groupcommit URL SECONDS [PRODUCERS=4] [WINDOW=256]\n"
                    "       bench_dbq pqexec URL SECONDS [PRODUCERS=4]\n");
    exit(2);
}

/* argv[i] as an int in [lo, hi], or def when absent; exits on a bad one. */
static int int_arg(int argc, char **argv, int i, int def, int lo, int hi)
{
    char *end;
    long v;

    if (i >= argc)
        return def;
    errno = 0;
    v = strtol(argv[i], &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        usage();
    return (int)v;
}

int main(int argc, char **argv)
{
    int seconds, nprod, window, rc;

    if (argc < 4)
        usage();
    log_init("bench", LOG_LVL_WARNING, 0);
    seconds = int_arg(argc, argv, 3, 10, 1, MAX_SECONDS);
    nprod = int_arg(argc, argv, 4, 4, 1, MAX_PRODUCERS);
    if (strcmp(argv[1], "groupcommit") == 0 && argc <= 6) {
        window = int_arg(argc, argv, 5, 256, 1, MAX_WINDOW);
        rc = run_phase(argv[2], seconds, nprod, window, 0);
        if (rc >= 0) {
            int rc2 = run_phase(argv[2], seconds, nprod, window, 1);

            rc = rc2 < 0 ? rc2 : (rc > rc2 ? rc : rc2);
        }
        return rc < 0 ? 2 : rc;
    }
    if (strcmp(argv[1], "pqexec") == 0 && argc <= 5)
        return run_pqexec(argv[2], seconds, nprod);
    usage();
    return 2;
}
