/*
 * ctlpool.h: the control-plane pool: a few threads, each owning one blocking
 * PostgreSQL connection, that run the HTTP calls whose work is plain
 * database I/O off the run path (projects, code upload and listing).
 *
 * Why a pool of its own: libmicrohttpd's threads each serve many
 * connections, so one of them waiting on the database would stall /health
 * and every other request it serves; and core's loop thread must never
 * wait at all (DESIGN §2.1). An HTTP handler suspends its connection and
 * submits a job; a pool thread runs it with its connection and resumes the
 * request when the reply is ready.
 *
 * The job queue is bounded (a full queue is a clear 503 for the caller,
 * never an unbounded backlog), and every submitted job runs exactly once:
 * with a connection, or with db NULL when the pool is stopping, so its
 * owner can answer and resume the request either way.
 */
#ifndef WF_CTLPOOL_H
#define WF_CTLPOOL_H

struct ctlpool;
struct db_conn;
struct db_options;

/* A job: runs on a pool thread with that thread's connection (connected on
 * demand; may be down: the db_* calls then fail with db_unavailable), or
 * with db NULL when the pool is stopping and the job will not run. */
typedef void (*ctlpool_fn)(void *arg, struct db_conn *db);

/*
 * Starts nthreads threads with a connection each (options opt: timeouts,
 * application name), and a queue of at most queue_max waiting jobs. url
 * must outlive the pool. Returns the pool, or NULL (logged).
 */
struct ctlpool *ctlpool_new(const char *url, const struct db_options *opt, int nthreads,
                            int queue_max);

/* Any thread: queues a job. Returns 0, or -1 when the queue is full or the
 * pool is stopping (fn is then not called). */
int ctlpool_submit(struct ctlpool *p, ctlpool_fn fn, void *arg) __attribute__((warn_unused_result));

/* Stops accepting jobs, calls every queued job with db NULL, waits for the
 * running ones to finish and joins the threads. */
void ctlpool_stop(struct ctlpool *p);

/* ctlpool_stop if needed, then frees; NULL is a no-op. */
void ctlpool_free(struct ctlpool *p);

/* Jobs waiting (for /metrics; any thread). */
int ctlpool_queued(struct ctlpool *p);

#endif
