/*
 * test_ctlpool.c: the control-plane pool without a database (its jobs here
 * never touch their connection): every job runs exactly once, on a pool
 * thread, with a connection; a full queue refuses at once; stopping calls
 * every queued job with db NULL (so its request can be answered) and waits
 * for the running ones.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctlpool.h"
#include "db.h"
#include "log.h"
#include "testhelp.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ran, ran_without_db;
static volatile int release; /* __atomic */

static void job(void *arg, struct db_conn *db)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    if (db != NULL)
        ran++;
    else
        ran_without_db++;
    pthread_mutex_unlock(&mu);
}

/* Holds its thread until released. */
static void slow_job(void *arg, struct db_conn *db)
{
    while (!__atomic_load_n(&release, __ATOMIC_ACQUIRE))
        usleep(1000);
    job(arg, db);
}

static int count(int *which)
{
    int n;

    pthread_mutex_lock(&mu);
    n = *which;
    pthread_mutex_unlock(&mu);
    return n;
}

int main(void)
{
    struct db_options opt = {"test", "http", 1000, 1000};
    struct ctlpool *p;
    int refused = 0;

    log_init("test", LOG_LVL_ERROR, 0);
    p = ctlpool_new("postgresql://127.0.0.1:1/none", &opt, 2, 10);
    CHECK(p != NULL);
    for (int i = 0; i < 100; i++) {
        while (ctlpool_submit(p, job, NULL) < 0)
            usleep(100);
    }
    for (int i = 0; i < 2000 && count(&ran) < 100; i++)
        usleep(1000);
    CHECK_INT(count(&ran), 100);

    /* Both threads held: the queue takes 10, then refuses. */
    CHECK(ctlpool_submit(p, slow_job, NULL) == 0);
    CHECK(ctlpool_submit(p, slow_job, NULL) == 0);
    for (int i = 0; i < 5000 && ctlpool_queued(p) > 0; i++)
        usleep(1000); /* both taken by the threads */
    for (int i = 0; i < 20; i++)
        refused += ctlpool_submit(p, job, NULL) < 0;
    CHECK_INT(refused, 10);
    CHECK_INT(ctlpool_queued(p), 10);

    /* Stop: the 10 queued jobs hear db NULL; the held ones finish. */
    __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
    ctlpool_stop(p);
    CHECK_INT(count(&ran) + count(&ran_without_db), 100 + 2 + 10);
    CHECK(ctlpool_submit(p, job, NULL) < 0);
    ctlpool_free(p);
    TEST_REPORT("unit_ctlpool");
}
