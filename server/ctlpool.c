/*
 * ctlpool.c: see ctlpool.h.
 *
 * One mutex guards the FIFO and the stopping flag; threads wait on one
 * condition variable. A job is taken off the queue before it runs, so
 * ctlpool_stop only has to drain what is still queued and join.
 */
#include "ctlpool.h"

#include <pthread.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"

struct job {
    ctlpool_fn fn;
    void *arg;
    struct job *next;
};

struct worker_thread {
    struct ctlpool *pool;
    pthread_t tid;
    struct db_conn *db;
    int started;
};

struct ctlpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int queued;
    int queue_max;
    int stopping;
    int stopped;
    int nthreads;
    struct worker_thread *threads;
};

static void *thread_main(void *arg)
{
    struct worker_thread *t = arg;
    struct ctlpool *p = t->pool;

    for (;;) {
        struct job *j;

        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->head == NULL) { /* stopping, nothing left */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        j = p->head;
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg, t->db);
        free(j);
    }
}

struct ctlpool *ctlpool_new(const char *url, const struct db_options *opt, int nthreads,
                            int queue_max)
{
    struct ctlpool *p = calloc(1, sizeof(*p));

    if (p == NULL)
        goto oom;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->queue_max = queue_max;
    p->threads = calloc((size_t)nthreads, sizeof(*p->threads));
    if (p->threads == NULL)
        goto oom;
    p->nthreads = nthreads;
    for (int i = 0; i < nthreads; i++) {
        struct worker_thread *t = &p->threads[i];
        t->pool = p;
        t->db = db_conn_new_ex(url, opt);
        if (t->db == NULL)
            goto oom;
        if (pthread_create(&t->tid, NULL, thread_main, t) != 0) {
            log_error("could not start a control-plane thread");
            ctlpool_free(p);
            return NULL;
        }
        t->started = 1;
    }
    return p;
oom:
    log_error("could not create the control-plane pool: out of memory");
    ctlpool_free(p);
    return NULL;
}

int ctlpool_submit(struct ctlpool *p, ctlpool_fn fn, void *arg)
{
    struct job *j = malloc(sizeof(*j));
    int rc = -1;

    if (j == NULL)
        return -1;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (!p->stopping && p->queued < p->queue_max) {
        if (p->tail != NULL)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
        pthread_cond_signal(&p->cv);
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc < 0)
        free(j);
    return rc;
}

void ctlpool_stop(struct ctlpool *p)
{
    struct job *left;

    pthread_mutex_lock(&p->mu);
    if (p->stopped) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->stopping = 1;
    left = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* Queued jobs are told they will not run, so their requests resume. */
    while (left != NULL) {
        struct job *j = left;
        left = j->next;
        j->fn(j->arg, NULL);
        free(j);
    }
    for (int i = 0; i < p->nthreads; i++) {
        if (p->threads[i].started)
            pthread_join(p->threads[i].tid, NULL);
        p->threads[i].started = 0;
    }
    p->stopped = 1;
}

void ctlpool_free(struct ctlpool *p)
{
    if (p == NULL)
        return;
    ctlpool_stop(p);
    for (int i = 0; i < p->nthreads; i++)
        db_conn_free(p->threads[i].db);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int ctlpool_queued(struct ctlpool *p)
{
    int n;

    pthread_mutex_lock(&p->mu);
    n = p->queued;
    pthread_mutex_unlock(&p->mu);
    return n;
}
