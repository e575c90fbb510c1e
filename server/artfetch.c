/*
 * artfetch.c: see artfetch.h.
 *
 * The FIFO of jobs is guarded by a mutex and a condition variable. A job
 * carries copies of its shas and gets its descriptors filled by the thread,
 * then travels back to the loop in a loop_post, where done is called and
 * the job freed. Invariant: every job reaches its done exactly once, on the
 * loop thread, and every descriptor it made is either handed to done or
 * closed.
 */
#include "artfetch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifacts.h"
#include "db.h"
#include "log.h"
#include "loop.h"

struct job {
    char (*shas)[65]; /* inputs */
    size_t n;
    int *fds;      /* output, n descriptors (-1 until made) */
    char err[800]; /* output, "" when fine */
    artfetch_done_fn done;
    void *arg;
    struct artfetch *af;
    struct job *next;
};

struct artfetch {
    struct loop *loop;
    struct db_conn *db;
    pthread_t tid;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int stopping;
    struct artfetch_stats stats; /* loop thread only */
};

static void close_fds(struct job *j)
{
    for (size_t i = 0; j->fds != NULL && i < j->n; i++) {
        if (j->fds[i] >= 0)
            close(j->fds[i]);
        j->fds[i] = -1;
    }
}

static void job_free(struct job *j)
{
    close_fds(j);
    free(j->fds);
    free(j->shas);
    free(j);
}

/* Loop thread: the end of a job. The descriptors go to done. */
static void deliver(void *arg)
{
    struct job *j = arg;

    if (j->err[0] != '\0') {
        close_fds(j);
        j->done(j->arg, NULL, j->err);
    } else {
        for (size_t i = 0; i < j->n; i++) {
            struct stat st;
            j->af->stats.fetched++;
            if (fstat(j->fds[i], &st) == 0)
                j->af->stats.bytes += (uint64_t)st.st_size;
        }
        j->done(j->arg, j->fds, NULL);
        for (size_t i = 0; i < j->n; i++)
            j->fds[i] = -1; /* done took them */
    }
    job_free(j);
}

static void run_job(struct artfetch *af, struct job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        char err[600];
        j->fds[i] = art_fetch_memfd(af->db, j->shas[i], err, sizeof(err));
        if (j->fds[i] < 0) {
            snprintf(j->err, sizeof(j->err), "%s", err);
            close_fds(j);
            return;
        }
    }
}

/* Hands a finished (or abandoned) job back to the loop. */
static void post_back(struct artfetch *af, struct job *j)
{
    if (loop_post(af->loop, deliver, j) < 0) {
        /* Cannot happen short of ENOMEM; the requester then never hears,
         * which it survives (its worker times out and restarts). */
        log_error("could not hand prepared artifacts back to the loop: out of memory");
        job_free(j);
    }
}

static void *thread_main(void *arg)
{
    struct artfetch *af = arg;

    for (;;) {
        struct job *j;

        pthread_mutex_lock(&af->mu);
        while (af->head == NULL && !af->stopping)
            pthread_cond_wait(&af->cv, &af->mu);
        j = af->head;
        if (j == NULL) {
            pthread_mutex_unlock(&af->mu);
            return NULL;
        }
        af->head = j->next;
        if (af->head == NULL)
            af->tail = NULL;
        pthread_mutex_unlock(&af->mu);
        if (af->stopping)
            snprintf(j->err, sizeof(j->err), "shutting down");
        else
            run_job(af, j);
        post_back(af, j);
    }
}

static int push(struct artfetch *af, struct job *j)
{
    pthread_mutex_lock(&af->mu);
    if (af->stopping) {
        pthread_mutex_unlock(&af->mu);
        return -1;
    }
    j->next = NULL;
    if (af->tail != NULL)
        af->tail->next = j;
    else
        af->head = j;
    af->tail = j;
    pthread_cond_signal(&af->cv);
    pthread_mutex_unlock(&af->mu);
    return 0;
}

int artfetch_fetch(struct artfetch *af, const char *const *shas, size_t n, artfetch_done_fn done,
                   void *arg)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return -1;
    j->shas = calloc(n + 1, sizeof(*j->shas));
    j->fds = calloc(n + 1, sizeof(*j->fds));
    if (j->shas == NULL || j->fds == NULL) {
        free(j->shas);
        free(j->fds);
        free(j);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(j->shas[i], sizeof(j->shas[i]), "%s", shas[i]);
        j->fds[i] = -1;
    }
    j->n = n;
    j->done = done;
    j->arg = arg;
    j->af = af;
    if (push(af, j) < 0) {
        /* Stopping: answer on the loop like any other job. */
        snprintf(j->err, sizeof(j->err), "shutting down");
        post_back(af, j);
    }
    return 0;
}

struct artfetch *artfetch_new(const char *url, const struct db_options *opt, struct loop *l)
{
    struct artfetch *af = calloc(1, sizeof(*af));

    if (af == NULL) {
        log_error("could not start the artifact thread: out of memory");
        return NULL;
    }
    af->loop = l;
    pthread_mutex_init(&af->mu, NULL);
    pthread_cond_init(&af->cv, NULL);
    af->db = db_conn_new_ex(url, opt);
    if (af->db == NULL || pthread_create(&af->tid, NULL, thread_main, af) != 0) {
        log_error("could not start the artifact thread");
        artfetch_free(af);
        return NULL;
    }
    af->started = 1;
    return af;
}

void artfetch_free(struct artfetch *af)
{
    if (af == NULL)
        return;
    pthread_mutex_lock(&af->mu);
    af->stopping = 1;
    pthread_cond_broadcast(&af->cv);
    pthread_mutex_unlock(&af->mu);
    if (af->started)
        pthread_join(af->tid, NULL);
    db_conn_free(af->db);
    pthread_mutex_destroy(&af->mu);
    pthread_cond_destroy(&af->cv);
    free(af);
}

void artfetch_get_stats(const struct artfetch *af, struct artfetch_stats *out)
{
    *out = af->stats;
}
