/*
 * artifacts.c: see artifacts.h.
 *
 * Safety: project ids are validated (no '/'), the base directory must be a
 * real directory owned by us with no group/other access, files are created
 * with O_EXCL under a temporary name and renamed into place, so a worker
 * never sees a half-written file, and every file is hashed before its path
 * is handed out.
 */
#include "artifacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "sha256.h"

int art_valid_sha(const char *sha)
{
    size_t n = 0;

    if (sha == NULL)
        return 0;
    for (; sha[n] != '\0'; n++) {
        if (!((sha[n] >= '0' && sha[n] <= '9') || (sha[n] >= 'a' && sha[n] <= 'f')))
            return 0;
    }
    return n == 64;
}

/* mkdir -m 0700 if missing, then check owner, type and mode. */
static int private_dir(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "could not create directory \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (lstat(path, &st) < 0) {
        snprintf(err, errlen, "could not stat \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        snprintf(err, errlen, "\"%s\" is not a directory owned by this user", path);
        return -1;
    }
    if ((st.st_mode & 077) != 0 && chmod(path, 0700) < 0) {
        snprintf(err, errlen, "could not make \"%s\" private: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int art_init(const char *dir, char *err, size_t errlen)
{
    return private_dir(dir, err, errlen);
}

/* Hashes a file; returns 0, or -1 if it cannot be read. */
static int hash_file(const char *path, char hex[SHA256_HEX_LEN])
{
    unsigned char buf[65536];
    struct sha256 s;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return -1;
    sha256_init(&s);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        sha256_update(&s, buf, (size_t)n);
    close(fd);
    if (n < 0)
        return -1;
    sha256_hex(&s, hex);
    return 0;
}

/* Writes bytes to tmp, then renames it to path. */
static int write_file(const char *tmp, const char *path, const char *bytes, size_t len, char *err,
                      size_t errlen)
{
    size_t off = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        snprintf(err, errlen, "could not create \"%s\": %s", tmp, strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t n = write(fd, bytes + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "could not write \"%s\": %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        snprintf(err, errlen, "could not install \"%s\": %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int art_materialize(struct db_conn *db, const char *dir, const char *project, const char *sha,
                    char *path, size_t pathlen, char *err, size_t errlen)
{
    char pdir[4096], tmp[4200], hex[SHA256_HEX_LEN];
    const char *params[1] = {sha};
    PGresult *r;
    int rc;

    if (!ju_valid_id(project) || !art_valid_sha(sha)) {
        snprintf(err, errlen, "invalid project or artifact id");
        return -1;
    }
    snprintf(pdir, sizeof(pdir), "%s/%s", dir, project);
    if ((size_t)snprintf(path, pathlen, "%s/%s.so", pdir, sha) >= pathlen) {
        snprintf(err, errlen, "artifact path too long");
        return -1;
    }
    if (hash_file(path, hex) == 0) {
        if (strcmp(hex, sha) == 0)
            return 0; /* already there and intact */
        log_warning("artifact file %s does not match its hash; rewriting it", path);
        unlink(path);
    }
    if (private_dir(pdir, err, errlen) < 0)
        return -1;
    r = db_exec_ex(db, "SELECT bytes FROM artifacts WHERE sha256 = $1", 1, params, NULL, NULL, 1);
    if (r == NULL) {
        snprintf(err, errlen, "could not read artifact %.12s: %s", sha, db_error(db));
        return -1;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "artifact %.12s is missing from the database", sha);
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%d", pdir, sha, (int)getpid());
    rc = write_file(tmp, path, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), err, errlen);
    PQclear(r);
    if (rc < 0)
        return -1;
    if (hash_file(path, hex) < 0 || strcmp(hex, sha) != 0) {
        snprintf(err, errlen, "artifact %.12s failed verification after writing", sha);
        unlink(path);
        return -1;
    }
    log_debug("wrote artifact %s", path);
    return 0;
}

void art_gc(const char *dir, const char *project, const char *const *keep, size_t n)
{
    char pdir[4096], path[4400];
    struct dirent *de;
    int left = 0;
    DIR *d;

    if (!ju_valid_id(project))
        return;
    snprintf(pdir, sizeof(pdir), "%s/%s", dir, project);
    d = opendir(pdir);
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        int kept = 0;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (len == 67 && strncmp(de->d_name, keep[i], 64) == 0)
                kept = 1;
        }
        /* Stale temporaries of a crashed core go too. */
        if (kept || !((len == 67 && strcmp(de->d_name + 64, ".so") == 0) ||
                      strncmp(de->d_name, ".tmp-", 5) == 0)) {
            left++;
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", pdir, de->d_name);
        if (unlink(path) == 0)
            log_debug("removed unused artifact %s", path);
        else
            left++;
    }
    closedir(d);
    if (left == 0)
        rmdir(pdir);
}

void art_gc_all(const char *dir)
{
    struct dirent *de;
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (ju_valid_id(de->d_name))
            art_gc(dir, de->d_name, NULL, 0);
    }
    closedir(d);
    rmdir(dir);
}
