/*
 * artfetch.h: the artifact thread: turns artifacts stored in PostgreSQL
 * into verified files a worker can load (artifacts.c), off core's loop.
 *
 * Fetching a plugin means reading up to WF_MAX_ARTIFACT_BYTES from the
 * database, writing it and hashing it: tens of milliseconds for a large one,
 * which the loop (heartbeats, the run path, /health's view of the database)
 * must never wait for (DESIGN §2.1). One thread with its own blocking
 * connection does every artifact file operation, in the order the loop
 * asked for them, so a clean-up never races a fetch: artifacts.c's
 * bookkeeping is confined to this thread. Results come back to the loop
 * thread through loop_post.
 */
#ifndef WF_ARTFETCH_H
#define WF_ARTFETCH_H

#include <stddef.h>

struct loop;
struct artfetch;
struct db_options;

/*
 * Called on the loop thread with the path of each requested sha, in order
 * (valid during the call), or with paths NULL and err set when any could
 * not be prepared (err says which and why), or when the thread is stopping.
 */
typedef void (*artfetch_done_fn)(void *arg, const char *const *paths, const char *err);

/* Starts the thread with its connection (options opt). url and rundir must
 * outlive it. Returns NULL (logged) on failure. */
struct artfetch *artfetch_new(const char *url, const struct db_options *opt, const char *rundir,
                              struct loop *l);

/* Stops the thread: waiting requests get done(…, NULL, "shutting down") on
 * the loop thread at its next turn; clean-ups still queued run first. */
void artfetch_free(struct artfetch *af);

/* Loop thread: prepares the files of shas[0..n) for project. Returns 0, or
 * -1 on ENOMEM (done not called). */
int artfetch_materialize(struct artfetch *af, const char *project, const char *const *shas,
                         size_t n, artfetch_done_fn done, void *arg)
    __attribute__((warn_unused_result));

/* Loop thread: removes the project's files whose sha is not in keep. */
void artfetch_gc(struct artfetch *af, const char *project, const char *const *keep, size_t n);

/* Loop thread: removes every file of this instance (a new instance: no
 * worker uses what an earlier one left), then re-creates the directory. */
void artfetch_gc_all(struct artfetch *af);

#endif
