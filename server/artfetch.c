/*
 * artfetch.c: see artfetch.h.
 *
 * A job is one of three kinds; the FIFO is guarded by a mutex and a
 * condition variable. A materialize job carries copies of its inputs and
 * gets its outputs filled by the thread, then travels back to the loop in
 * a loop_post, where done is called and the job freed. Invariant: every
 * materialize job reaches its done exactly once, on the loop thread.
 */
#include "artfetch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts.h"
#include "db.h"
#include "jsonutil.h"
#include "log.h"
#include "loop.h"

enum job_kind {
    JOB_MATERIALIZE, /* write the files of some shas of a project */
    JOB_GC,          /* remove a project's files but some */
    JOB_GC_ALL       /* remove every file of the instance */
};

struct job {
    enum job_kind kind;
    char project[WF_ID_MAX + 1];
    char (*shas)[65]; /* inputs: shas to make, or to keep */
    size_t n;
    char **paths;  /* materialize output, n paths */
    char err[800]; /* materialize output, "" when fine */
    artfetch_done_fn done;
    void *arg;
    struct artfetch *af;
    struct job *next;
};

struct artfetch {
    const char *rundir;
    struct loop *loop;
    struct db_conn *db;
    pthread_t tid;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int stopping;
};

static void job_free(struct job *j)
{
    if (j->paths != NULL) {
        for (size_t i = 0; i < j->n; i++)
            free(j->paths[i]);
    }
    free(j->paths);
    free(j->shas);
    free(j);
}

/* Loop thread: the end of a materialize job. */
static void deliver(void *arg)
{
    struct job *j = arg;

    if (j->err[0] != '\0')
        j->done(j->arg, NULL, j->err);
    else
        j->done(j->arg, (const char *const *)j->paths, NULL);
    job_free(j);
}

static void run_materialize(struct artfetch *af, struct job *j)
{
    char path[4200];

    j->paths = calloc(j->n + 1, sizeof(*j->paths));
    if (j->paths == NULL) {
        snprintf(j->err, sizeof(j->err), "out of memory");
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        char err[600];
        if (art_materialize(af->db, af->rundir, j->project, j->shas[i], path, sizeof(path), err,
                            sizeof(err)) < 0) {
            snprintf(j->err, sizeof(j->err), "%s", err);
            return;
        }
        j->paths[i] = strdup(path);
        if (j->paths[i] == NULL) {
            snprintf(j->err, sizeof(j->err), "out of memory");
            return;
        }
    }
}

static void run_job(struct artfetch *af, struct job *j)
{
    switch (j->kind) {
    case JOB_MATERIALIZE:
        run_materialize(af, j);
        break;
    case JOB_GC: {
        const char **keep = calloc(j->n + 1, sizeof(*keep));
        if (keep == NULL) {
            log_error("could not clean up artifact files: out of memory");
            break;
        }
        for (size_t i = 0; i < j->n; i++)
            keep[i] = j->shas[i];
        art_gc(af->rundir, j->project, keep, j->n);
        free(keep);
        break;
    }
    case JOB_GC_ALL: {
        char err[256];
        art_gc_all(af->rundir);
        if (art_init(af->rundir, err, sizeof(err)) < 0)
            log_error("%s", err);
        break;
    }
    }
}

/* Hands a finished (or abandoned) materialize job back to the loop. */
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
        if (af->stopping && j->kind == JOB_MATERIALIZE) {
            snprintf(j->err, sizeof(j->err), "shutting down");
        } else {
            run_job(af, j);
        }
        if (j->kind == JOB_MATERIALIZE)
            post_back(af, j);
        else
            job_free(j);
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

/* A job with copies of project and shas. NULL on ENOMEM. */
static struct job *job_new(enum job_kind kind, const char *project, const char *const *shas,
                           size_t n)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->kind = kind;
    snprintf(j->project, sizeof(j->project), "%s", project != NULL ? project : "");
    j->shas = calloc(n + 1, sizeof(*j->shas));
    if (j->shas == NULL) {
        free(j);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(j->shas[i], sizeof(j->shas[i]), "%s", shas[i]);
    j->n = n;
    return j;
}

int artfetch_materialize(struct artfetch *af, const char *project, const char *const *shas,
                         size_t n, artfetch_done_fn done, void *arg)
{
    struct job *j = job_new(JOB_MATERIALIZE, project, shas, n);

    if (j == NULL)
        return -1;
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

void artfetch_gc(struct artfetch *af, const char *project, const char *const *keep, size_t n)
{
    struct job *j = job_new(JOB_GC, project, keep, n);

    if (j == NULL || push(af, j) < 0) {
        if (j != NULL)
            job_free(j);
        log_warning("could not queue the clean-up of project %s's artifact files", project);
    }
}

void artfetch_gc_all(struct artfetch *af)
{
    struct job *j = job_new(JOB_GC_ALL, NULL, NULL, 0);

    if (j == NULL || push(af, j) < 0) {
        if (j != NULL)
            job_free(j);
        log_warning("could not queue the clean-up of artifact files");
    }
}

struct artfetch *artfetch_new(const char *url, const struct db_options *opt, const char *rundir,
                              struct loop *l)
{
    struct artfetch *af = calloc(1, sizeof(*af));

    if (af == NULL) {
        log_error("could not start the artifact thread: out of memory");
        return NULL;
    }
    af->rundir = rundir;
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
