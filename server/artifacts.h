/*
 * artifacts.h: turning artifacts stored in PostgreSQL into files a worker can
 * dlopen (DESIGN §4).
 *
 * Layout, under an instance directory (core passes <WF_RUNTIME_DIR>/<port>):
 * .objects/<sha256>.so holds each content once, written to a temporary name
 * and renamed, then verified by hashing; <projectId>/<sha256>.so is a hard
 * link to it, the path a worker is given. Directories are 0700 and files
 * 0600, owned by the server's user. An object is re-hashed only when its
 * file changed since it was verified. Links no live worker of the project
 * uses are removed by art_gc, and an object with no link left goes with
 * them. Only core calls these (it alone reads the database); workers only
 * receive paths.
 */
#ifndef WF_ARTIFACTS_H
#define WF_ARTIFACTS_H

#include <stddef.h>

#include "db.h"

/* Creates the runtime directory if needed and checks it is ours and 0700
 * (not a symlink). Returns 0, or -1 with err set. */
int art_init(const char *dir, char *err, size_t errlen) __attribute__((warn_unused_result));

/* 1 if sha is 64 lower-case hex digits. */
int art_valid_sha(const char *sha);

/*
 * Makes sure the project's file for sha exists and verifies, fetching the
 * bytes through db when it does not. Writes the file's path into path.
 * Returns 0, or -1 with err set (nothing left behind but the verified files
 * of earlier calls).
 */
int art_materialize(struct db_conn *db, const char *dir, const char *project, const char *sha,
                    char *path, size_t pathlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Removes the project's .so files whose hash is not in keep[0..n); removes
 * the project directory if it ends up empty. */
void art_gc(const char *dir, const char *project, const char *const *keep, size_t n);

/* Removes every project's files and directory, then dir itself if empty
 * (at shutdown, when no worker is left). */
void art_gc_all(const char *dir);

#endif
