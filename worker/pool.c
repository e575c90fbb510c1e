/*
 * pool.c: see pool.h.
 *
 * One mutex guards the FIFO of jobs and the counters; idle threads wait on a
 * condition variable with a timeout (POOL_IDLE_MS) and exit when it passes
 * with nothing to do. Threads are detached: pool_stop waits for the count
 * of live threads to reach zero instead of joining.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job {
    pool_fn fn;
    void *arg;
    struct job *next;
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* jobs queued, or stopping */
    pthread_cond_t exit_cv; /* a thread exited */
    struct job *head, *tail;
    char name[16];
    int max_threads;
    int threads; /* alive */
    int idle;    /* alive and waiting for a job */
    int running; /* running a job */
    int queued;
    int stopping;
};

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *thread_main(void *arg)
{
    struct pool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct job *j;

        while (p->head == NULL && !p->stopping) {
            struct timespec ts;
            int rc;

            deadline_in(&ts, POOL_IDLE_MS);
            p->idle++;
            rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            p->idle--;
            if (rc == ETIMEDOUT && p->head == NULL)
                goto out;
        }
        if (p->stopping)
            break;
        j = p->head;
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
out:
    p->threads--;
    pthread_cond_broadcast(&p->exit_cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct pool *pool_new(const char *name, int max_threads)
{
    struct pool *p = calloc(1, sizeof(*p));
    pthread_condattr_t ca;

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&p->exit_cv, NULL);
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->max_threads = max_threads > 0 ? max_threads : 1;
    return p;
}

/* With p->mu held: starts one more thread. Returns 0 or -1. */
static int start_thread(struct pool *p)
{
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&tid, &attr, thread_main, p);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    pthread_setname_np(tid, p->name);
    p->threads++;
    return 0;
}

int pool_submit(struct pool *p, pool_fn fn, void *arg)
{
    struct job *j = malloc(sizeof(*j));

    if (j == NULL)
        return -1;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        errno = ESHUTDOWN;
        return -1;
    }
    /* A thread for it unless an idle one will take it. */
    if (p->idle <= p->queued && p->threads < p->max_threads && start_thread(p) < 0 &&
        p->threads == 0) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        errno = EAGAIN;
        return -1;
    }
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int pool_busy(struct pool *p)
{
    int n;

    pthread_mutex_lock(&p->mu);
    n = p->running + p->queued;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pool_threads(struct pool *p)
{
    int n;

    pthread_mutex_lock(&p->mu);
    n = p->threads;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pool_stop(struct pool *p, void (*drop_fn)(void *arg), int wait_ms)
{
    struct job *j;
    struct timespec ts;
    int left;

    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    j = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    while (j != NULL) {
        struct job *next = j->next;
        if (drop_fn != NULL)
            drop_fn(j->arg);
        free(j);
        j = next;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (p->threads > 0 && pthread_cond_timedwait(&p->exit_cv, &p->mu, &ts) == 0)
        ;
    left = p->threads;
    pthread_mutex_unlock(&p->mu);
    if (left > 0)
        return -1;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->exit_cv);
    free(p);
    return 0;
}
