/*
 * artifacts.h: turning an artifact stored in PostgreSQL into code a worker
 * can load, and that nobody can change (DESIGN §4).
 *
 * An artifact's bytes are fetched, checked against the SHA-256 they are
 * stored under, and written into a memfd that is then sealed against
 * writing, shrinking, growing and further sealing. Core hands the memfd to
 * each worker that loads the artifact (SCM_RIGHTS); the worker dlopen()s
 * /proc/self/fd/N. No plugin file exists on disk, so no process, a
 * hostile plugin of another project included, can rewrite the code a worker
 * will load: the bytes were verified when the memfd was made, and the seals
 * guarantee they stay what was verified. Core keeps one memfd per artifact,
 * shared by every worker that loads it (loadcode.c). Only the artifact
 * thread calls art_fetch_memfd (it blocks on the database).
 */
#ifndef WF_ARTIFACTS_H
#define WF_ARTIFACTS_H

#include <stddef.h>

#include "db.h"

/* 1 if sha is 64 lower-case hex digits. */
int art_valid_sha(const char *sha);

/*
 * Fetches the bytes of artifact sha through db, checks their SHA-256 and
 * returns a sealed memfd holding them (named "wf-plugin-<first 12 hex>",
 * close-on-exec; caller closes). Returns the descriptor, or -1 with err set
 * ("artifact 3ada5b75f65d is missing from the database", "… does not match
 * its hash", or the database's or the system's error); nothing is left open
 * then.
 */
int art_fetch_memfd(struct db_conn *db, const char *sha, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
