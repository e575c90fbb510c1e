/*
 * test_artifacts.c: artifacts.c (what the artifact thread runs) against a
 * real PostgreSQL, no server:
 *   - materialize writes the verified object once and hard-links it into
 *     each project's directory (0700 directories, 0600 files), and a second
 *     call reuses it without fetching;
 *   - an object replaced behind core's back is re-verified and rewritten;
 *   - a sha missing from the database, or an invalid project id or sha, is
 *     an error that leaves nothing behind;
 *   - gc keeps the listed files and removes the rest, and an object no
 *     project links any more goes with its last link; gc_all removes the
 *     instance directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifacts.h"
#include "db.h"
#include "harness.h"
#include "log.h"
#include "migrate.h"
#include "sha256.h"

static int exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static int mode_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

/* Stores bytes as an artifact; returns 0 or -1. */
static int store(PGconn *pg, const char *sha, const char *bytes)
{
    const char *params[2] = {sha, bytes};
    PGresult *r = th_sql(pg,
                         "INSERT INTO artifacts (sha256, bytes, size)"
                         " VALUES ($1, convert_to($2, 'UTF8'), length($2))",
                         2, params);

    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}

int main(void)
{
    static const char one[] = "the bytes of plugin one";
    static const char two[] = "the bytes of plugin two";
    char sha1[SHA256_HEX_LEN], sha2[SHA256_HEX_LEN];
    char dir[] = "/tmp/wf-test-artifacts-XXXXXX";
    char inst[300], path[4200], path_b[4200], obj[4400], err[600];
    struct db_conn *db = NULL;
    struct th_db tdb;
    PGconn *pg = NULL;
    const char *keep[1];
    struct stat a, b;
    size_t len;
    char *text;

    if (th_init("test_artifacts", 1) != 0)
        return TH_SKIP;
    log_init("test", LOG_LVL_ERROR, 0);
    if (!CHECK(th_db_create(&tdb) == 0) || !CHECK(mkdtemp(dir) != NULL))
        goto out;
    pg = th_db_connect(&tdb);
    db = db_conn_new(tdb.url);
    if (!CHECK(pg != NULL && db != NULL && db_connect(db) == 0 && migrate_apply(db) >= 0))
        goto out;
    CHECK(sha256_hex_of(one, strlen(one), sha1) == 0);
    CHECK(sha256_hex_of(two, strlen(two), sha2) == 0);
    CHECK(store(pg, sha1, one) == 0);
    CHECK(store(pg, sha2, two) == 0);
    snprintf(inst, sizeof(inst), "%s/3011", dir);
    CHECK(art_init(inst, err, sizeof(err)) == 0);
    CHECK_EQ_INT(mode_of(inst), 0700);

    /* Written once, linked per project, private. */
    CHECK(art_materialize(db, inst, "p1", sha1, path, sizeof(path), err, sizeof(err)) == 0);
    text = th_read_file(path, &len);
    CHECK(text != NULL && len == strlen(one) && memcmp(text, one, len) == 0);
    free(text);
    CHECK_EQ_INT(mode_of(path), 0600);
    CHECK(art_materialize(db, inst, "p2", sha1, path_b, sizeof(path_b), err, sizeof(err)) == 0);
    CHECK(stat(path, &a) == 0 && stat(path_b, &b) == 0 && a.st_ino == b.st_ino);
    snprintf(obj, sizeof(obj), "%s/.objects/%s.so", inst, sha1);
    CHECK(exists(obj));

    /* Reused without the database: drop the row, materialize again. */
    {
        const char *params[1] = {sha1};
        PGresult *r = th_sql(pg, "UPDATE artifacts SET bytes = 'x' WHERE sha256 = $1", 1, params);
        PQclear(r);
    }
    CHECK(art_materialize(db, inst, "p1", sha1, path, sizeof(path), err, sizeof(err)) == 0);

    /* Replaced behind core's back (a new file): found, rewritten from the
     * database (which now holds 'x': verification fails, an error). */
    CHECK(unlink(obj) == 0);
    {
        FILE *f = fopen(obj, "w");
        CHECK(f != NULL);
        if (f != NULL) {
            fputs("tampered", f);
            fclose(f);
        }
    }
    CHECK(art_materialize(db, inst, "p3", sha1, path, sizeof(path), err, sizeof(err)) < 0);
    CHECK(strstr(err, "failed verification") != NULL);
    {
        /* with the right bytes back, the rewrite succeeds */
        const char *params[2] = {sha1, one};
        PGresult *r = th_sql(pg,
                             "UPDATE artifacts SET bytes = convert_to($2, 'UTF8')"
                             " WHERE sha256 = $1",
                             2, params);
        PQclear(r);
    }
    CHECK(art_materialize(db, inst, "p3", sha1, path, sizeof(path), err, sizeof(err)) == 0);
    text = th_read_file(path, &len);
    CHECK(text != NULL && len == strlen(one) && memcmp(text, one, len) == 0);
    free(text);

    /* Errors leave nothing behind. */
    CHECK(art_materialize(db, inst, "p1",
                          "0000000000000000000000000000000000000000000000000000000000000000", path,
                          sizeof(path), err, sizeof(err)) < 0);
    CHECK(strstr(err, "missing from the database") != NULL);
    CHECK(art_materialize(db, inst, "../p1", sha1, path, sizeof(path), err, sizeof(err)) < 0);
    CHECK(art_materialize(db, inst, "p1", "abc", path, sizeof(path), err, sizeof(err)) < 0);
    CHECK(!art_valid_sha("ABC") && art_valid_sha(sha1));

    /* gc: p1 keeps sha2 only; sha1's object stays while p2 and p3 link it. */
    CHECK(art_materialize(db, inst, "p1", sha2, path_b, sizeof(path_b), err, sizeof(err)) == 0);
    keep[0] = sha2;
    art_gc(inst, "p1", keep, 1);
    snprintf(path, sizeof(path), "%s/p1/%s.so", inst, sha1);
    CHECK(!exists(path));
    CHECK(exists(path_b));
    CHECK(exists(obj));
    art_gc(inst, "p2", NULL, 0);
    art_gc(inst, "p3", NULL, 0);
    CHECK(!exists(obj)); /* its last link went */
    snprintf(path, sizeof(path), "%s/p2", inst);
    CHECK(!exists(path)); /* an emptied project directory goes too */
    art_gc_all(inst);
    CHECK(!exists(inst));
out:
    db_conn_free(db);
    if (pg != NULL)
        PQfinish(pg);
    th_db_drop(&tdb);
    rmdir(dir);
    return th_finish();
}
