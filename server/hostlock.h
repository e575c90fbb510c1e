/*
 * hostlock.h: one server per host identity on a database.
 *
 * Every row a server writes is keyed by its WF_HOST_ID, and at start a
 * server marks its host's live rows crashed: two servers with the same id
 * on one database would each take the other's workers for dead. So core
 * holds a session-level advisory lock keyed on the host id
 * (pg_try_advisory_lock(hashtext('wf-server host ' || id))) on a blocking
 * connection of its own (application_name wf-core:hostlock) for its whole
 * life: taken before the manager's hello is applied, released when core
 * exits and the connection closes, or when the database ends the session.
 *
 * A thread checks the lock every HOSTLOCK_CHECK_MS: while the database is
 * unreachable it keeps trying; once a new session can be had it takes the
 * lock again. Only if another session holds it (another instance took the
 * id meanwhile) is the loss reported, once.
 */
#ifndef WF_HOSTLOCK_H
#define WF_HOSTLOCK_H

#include <stddef.h>

struct hostlock;

/* Called once, on the hostlock thread, when the lock was lost to another
 * session; it may only post to core's loop. */
typedef void (*hostlock_lost_fn)(void *arg);

/* A lock for host_id (copied) on url (must outlive it); not yet taken. NULL
 * when out of memory. */
struct hostlock *hostlock_new(const char *url, const char *host_id, int connect_timeout_ms);

/*
 * Takes the lock now (blocking; before core's loop runs). Returns 0 when it
 * is held; 1 when another session holds it, with err describing that
 * session; -1 when the database could not be asked, with err the reason.
 */
int hostlock_take(struct hostlock *hl, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Starts the thread that keeps the lock (see above). Returns 0 or -1. */
int hostlock_watch(struct hostlock *hl, hostlock_lost_fn lost, void *arg)
    __attribute__((warn_unused_result));

/* Stops the thread (waits at most one statement), closes the connection:
 * the lock is released. NULL is ignored. */
void hostlock_free(struct hostlock *hl);

#endif
