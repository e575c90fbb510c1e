/*
 * test_artifacts.c: artifacts.c (what the artifact thread runs) against a
 * real PostgreSQL, no server:
 *   - an artifact becomes a memfd holding exactly its bytes, sealed against
 *     writing, shrinking, growing and further sealing: nobody can change it
 *     after it was verified (a write, also through a fresh open of
 *     /proc/self/fd/N, a truncate and an mmap for writing all fail);
 *   - bytes that do not match the hash they are stored under are refused;
 *   - a sha missing from the database, or an invalid one, is an error that
 *     leaves no descriptor open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifacts.h"
#include "db.h"
#include "harness.h"
#include "log.h"
#include "memfd.h"
#include "migrate.h"
#include "sha256.h"

/* Stores bytes as an artifact under sha; returns 0 or -1. */
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

static int open_fds(void)
{
    char path[64];
    int n = 0;

    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n += access(path, F_OK) == 0;
    }
    return n;
}

int main(void)
{
    static const char one[] = "the bytes of plugin one";
    static const char bad[] = "bytes stored under the wrong hash";
    char sha1[SHA256_HEX_LEN], wrong[SHA256_HEX_LEN], err[600], buf[128];
    struct db_conn *db = NULL;
    struct th_db tdb;
    PGconn *pg = NULL;
    struct stat st;
    ssize_t n;
    int fd, before;

    if (th_init("test_artifacts", 1) != 0)
        return TH_SKIP;
    log_init("test", LOG_LVL_ERROR, 0);
    if (!CHECK(th_db_create(&tdb) == 0))
        goto out;
    pg = th_db_connect(&tdb);
    db = db_conn_new(tdb.url);
    if (!CHECK(pg != NULL && db != NULL && db_connect(db) == 0 && migrate_apply(db) >= 0))
        goto out;
    CHECK(sha256_hex_of(one, strlen(one), sha1) == 0);
    CHECK(store(pg, sha1, one) == 0);
    /* a valid-looking sha whose bytes are something else */
    CHECK(sha256_hex_of("something else", 14, wrong) == 0);
    CHECK(store(pg, wrong, bad) == 0);

    /* The bytes, sealed. */
    fd = art_fetch_memfd(db, sha1, err, sizeof(err));
    if (CHECK(fd >= 0)) {
        CHECK(memfd_is_sealed(fd));
        CHECK((fcntl(fd, F_GET_SEALS) & F_SEAL_SEAL) != 0);
        CHECK(fstat(fd, &st) == 0 && (size_t)st.st_size == strlen(one));
        n = pread(fd, buf, sizeof(buf), 0);
        CHECK(n == (ssize_t)strlen(one) && memcmp(buf, one, (size_t)n) == 0);
        CHECK(pwrite(fd, "x", 1, 0) < 0 && errno == EPERM);
        CHECK(ftruncate(fd, 1) < 0 && errno == EPERM);
        CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
        CHECK(fcntl(fd, F_ADD_SEALS, 0) < 0 || (fcntl(fd, F_GET_SEALS) & F_SEAL_SEAL) != 0);
        CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        {
            /* The worker's way in: through /proc/self/fd, read only. */
            char path[64];
            int again;
            snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
            again = open(path, O_RDONLY | O_CLOEXEC);
            CHECK(again >= 0);
            if (again >= 0)
                close(again);
            /* opening it for writing is allowed; writing is not */
            again = open(path, O_WRONLY | O_CLOEXEC);
            CHECK(again < 0 || (write(again, "x", 1) < 0 && errno == EPERM));
            if (again >= 0)
                close(again);
        }
        close(fd);
    }

    /* Refusals leave nothing open. */
    before = open_fds();
    CHECK(art_fetch_memfd(db, wrong, err, sizeof(err)) < 0);
    CHECK(strstr(err, "does not match its hash") != NULL);
    CHECK(art_fetch_memfd(db, "0000000000000000000000000000000000000000000000000000000000000000",
                          err, sizeof(err)) < 0);
    CHECK(strstr(err, "missing from the database") != NULL);
    CHECK(art_fetch_memfd(db, "ABC", err, sizeof(err)) < 0);
    CHECK(!art_valid_sha("ABC") && art_valid_sha(sha1));
    CHECK_EQ_INT(open_fds(), before);
out:
    db_conn_free(db);
    if (pg != NULL)
        PQfinish(pg);
    th_db_drop(&tdb);
    return th_finish();
}
