/*
 * hostlock.c: see hostlock.h. The connection is used by one thread at a
 * time: core's main thread before hostlock_watch, the hostlock thread after.
 *
 * The check is one statement that both tells and repairs: if this session
 * holds an advisory lock (it holds no other), the lock is ours; if not (the
 * connection was lost and db.c opened a new session), it tries to take it
 * again. Only a false answer means another session has it.
 */
#include "hostlock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"

#define HOSTLOCK_CHECK_MS 2000
#define HOSTLOCK_STATEMENT_TIMEOUT_MS 2000

struct hostlock {
    struct db_conn *db;
    char host_id[128];
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop; /* under mu */
    hostlock_lost_fn lost;
    void *arg;
};

static const char check_sql[] =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND granted)"
    " THEN true ELSE pg_try_advisory_lock(hashtext('wf-server host ' || $1)) END";

/* The session holding the lock, as pg_locks and pg_stat_activity show it
 * (a bigint key is classid = its high 32 bits, objid = its low ones). */
static const char holder_sql[] =
    "WITH k AS (SELECT hashtext('wf-server host ' || $1)::bigint AS key)"
    " SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'),"
    " to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = ((k.key >> 32) & 4294967295)"
    " AND l.objid::bigint = (k.key & 4294967295) LIMIT 1";

struct hostlock *hostlock_new(const char *url, const char *host_id, int connect_timeout_ms)
{
    struct db_options opt = {"wf-core", "hostlock", connect_timeout_ms,
                             HOSTLOCK_STATEMENT_TIMEOUT_MS};
    struct hostlock *hl = calloc(1, sizeof(*hl));

    if (hl == NULL)
        return NULL;
    hl->db = db_conn_new_ex(url, &opt);
    if (hl->db == NULL) {
        free(hl);
        return NULL;
    }
    snprintf(hl->host_id, sizeof(hl->host_id), "%s", host_id);
    pthread_mutex_init(&hl->mu, NULL);
    pthread_cond_init(&hl->cv, NULL);
    return hl;
}

/* Runs the check: 0 held, 1 held by another session, -1 not answered. */
static int check(struct hostlock *hl)
{
    const char *params[1] = {hl->host_id};
    PGresult *res = db_exec(hl->db, check_sql, 1, params);
    int rc;

    if (res == NULL)
        return -1;
    rc = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 0 : 1;
    PQclear(res);
    return rc;
}

int hostlock_take(struct hostlock *hl, char *err, size_t errlen)
{
    const char *params[1] = {hl->host_id};
    PGresult *res;
    int rc = check(hl);

    if (rc < 0) {
        snprintf(err, errlen, "could not take the host lock: %s", db_error(hl->db));
        return -1;
    }
    if (rc == 0)
        return 0;
    res = db_exec(hl->db, holder_sql, 1, params);
    if (res != NULL && PQntuples(res) == 1)
        snprintf(err, errlen,
                 "its session: backend pid %s, application_name \"%s\", client %s, since %s",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                 PQgetvalue(res, 0, 3));
    else
        snprintf(err, errlen, "its session could not be identified");
    PQclear(res);
    return 1;
}

static void *watch_main(void *arg)
{
    struct hostlock *hl = arg;
    int down = 0;

    pthread_mutex_lock(&hl->mu);
    while (!hl->stop) {
        struct timespec ts;
        int rc;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += HOSTLOCK_CHECK_MS / 1000;
        ts.tv_nsec += (HOSTLOCK_CHECK_MS % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&hl->cv, &hl->mu, &ts);
        if (hl->stop)
            break;
        pthread_mutex_unlock(&hl->mu);
        rc = check(hl);
        if (rc < 0 && !down)
            log_warning("could not check the host lock: %s; retrying", db_error(hl->db));
        if (rc == 0 && down)
            log_info("host lock held again");
        down = rc < 0;
        if (rc == 1) {
            log_error("the host lock for WF_HOST_ID \"%s\" was taken by another server while "
                      "the database connection was lost; stopping",
                      hl->host_id);
            hl->lost(hl->arg);
            return NULL;
        }
        pthread_mutex_lock(&hl->mu);
    }
    pthread_mutex_unlock(&hl->mu);
    return NULL;
}

int hostlock_watch(struct hostlock *hl, hostlock_lost_fn lost, void *arg)
{
    hl->lost = lost;
    hl->arg = arg;
    if (pthread_create(&hl->thread, NULL, watch_main, hl) != 0)
        return -1;
    hl->running = 1;
    return 0;
}

void hostlock_free(struct hostlock *hl)
{
    if (hl == NULL)
        return;
    if (hl->running) {
        pthread_mutex_lock(&hl->mu);
        hl->stop = 1;
        pthread_cond_signal(&hl->cv);
        pthread_mutex_unlock(&hl->mu);
        pthread_join(hl->thread, NULL);
    }
    db_conn_free(hl->db); /* closes the session: the lock goes with it */
    pthread_mutex_destroy(&hl->mu);
    pthread_cond_destroy(&hl->cv);
    free(hl);
}
