/*
 * pool.h: a lazy thread pool for the worker: plugin code (workflow turns,
 * activities) runs here, never on the worker's socket loop.
 *
 * Threads are started only when a job waits and no thread is idle, up to
 * max_threads, and an idle thread exits after POOL_IDLE_MS: an idle worker
 * holds no pool thread. This matters beyond memory: RLIMIT_NPROC counts every
 * thread of the workers' shared uid (worker/sandbox.c), so threads are only
 * held while there is work. Jobs run in submission order.
 *
 * A job's completion reaches the worker's loop through the caller's own
 * mailbox (the job's function posts it); the pool only runs functions.
 * Threads are created after the sandbox is up, so they inherit it.
 */
#ifndef WF_WORKER_POOL_H
#define WF_WORKER_POOL_H

#define POOL_IDLE_MS 10000

struct pool;

typedef void (*pool_fn)(void *arg);

/* A pool of at most max_threads threads named name (15 bytes at most).
 * Returns NULL on ENOMEM. */
struct pool *pool_new(const char *name, int max_threads);

/* Queues fn(arg). Returns 0, or -1 (ENOMEM, or no thread could be started
 * and none runs: EAGAIN) with fn not queued. */
int pool_submit(struct pool *p, pool_fn fn, void *arg) __attribute__((warn_unused_result));

/* Jobs running or queued. */
int pool_busy(struct pool *p);

/* Threads alive now (for tests and status). */
int pool_threads(struct pool *p);

/*
 * Stops the pool: queued jobs are dropped (their args handed to drop_fn if
 * not NULL, on the calling thread), then waits up to wait_ms for running
 * jobs to return. Returns 0 when every thread exited, -1 when some job is
 * still running (stuck plugin code): the pool is then leaked on purpose,
 * since freeing what a running thread uses would be worse; the process is
 * about to exit.
 */
int pool_stop(struct pool *p, void (*drop_fn)(void *arg), int wait_ms);

#endif
