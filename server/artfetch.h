/*
 * artfetch.h: the artifact thread: turns artifacts stored in PostgreSQL
 * into sealed, verified memfds (artifacts.c), off core's loop.
 *
 * Fetching a plugin means reading up to WF_MAX_ARTIFACT_BYTES from the
 * database and hashing it: tens of milliseconds for a large one, which the
 * loop (heartbeats, the run path, /health's view of the database) must
 * never wait for (DESIGN §2.1). One thread with its own blocking connection
 * does it, in the order the loop asked; results come back to the loop
 * thread through loop_post.
 */
#ifndef WF_ARTFETCH_H
#define WF_ARTFETCH_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct artfetch;
struct db_options;

/*
 * Called on the loop thread with one sealed memfd per requested sha, in
 * order (the callee takes ownership of every descriptor), or with fds NULL
 * and err set when any could not be made (err says which and why; nothing
 * is open then), including when the thread is stopping.
 */
typedef void (*artfetch_done_fn)(void *arg, const int *fds, const char *err);

/* Starts the thread with its connection (options opt). url must outlive it.
 * Returns NULL (logged) on failure. */
struct artfetch *artfetch_new(const char *url, const struct db_options *opt, struct loop *l);

/* Stops the thread: waiting requests get done(…, NULL, "shutting down") on
 * the loop thread at its next turn. */
void artfetch_free(struct artfetch *af);

/* Loop thread: makes the memfds of shas[0..n). Returns 0, or -1 on ENOMEM
 * (done not called). */
int artfetch_fetch(struct artfetch *af, const char *const *shas, size_t n, artfetch_done_fn done,
                   void *arg) __attribute__((warn_unused_result));

/* What the thread has made since it started: artifacts turned into memfds
 * and their bytes. */
struct artfetch_stats {
    uint64_t fetched;
    uint64_t bytes;
};

/* Loop thread. */
void artfetch_get_stats(const struct artfetch *af, struct artfetch_stats *out);

#endif
