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

/* Verified objects, one per content; a project's file is a hard link to one.
 * Not a valid project id (ids have no '.'), so it cannot collide. */
#define ART_OBJECTS ".objects"

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
    struct sha256 *s;
    ssize_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return -1;
    s = sha256_new();
    if (s == NULL) {
        close(fd);
        return -1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (sha256_update(s, buf, (size_t)n) < 0) {
            n = -1;
            break;
        }
    }
    close(fd);
    if (n < 0) {
        sha256_free(s);
        return -1;
    }
    return sha256_final_hex(s, hex);
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

/*
 * Objects verified in this process: later uses compare only the file's
 * identity and size/mtime (nothing but core writes under our 0700
 * directory), so a start does not re-hash the plugin. Dispatcher thread only.
 */
struct verified {
    char sha[SHA256_HEX_LEN];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

static const char *verified_key(const void *item)
{
    return ((const struct verified *)item)->sha;
}

static struct idmap verified_map = {NULL, 0, 0, verified_key};

static int same_file(const struct verified *v, const struct stat *st)
{
    return v->dev == st->st_dev && v->ino == st->st_ino && v->size == st->st_size &&
           v->mtime.tv_sec == st->st_mtim.tv_sec && v->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void forget_verified(const char *sha)
{
    free(idmap_del(&verified_map, sha));
}

/* 1 if obj exists and holds sha's bytes (hashing it only the first time),
 * with its stat in *st; else 0 (a mismatching file is removed). */
static int object_ready(const char *obj, const char *sha, struct stat *st)
{
    struct verified *v = idmap_get(&verified_map, sha);
    char hex[SHA256_HEX_LEN];

    if (stat(obj, st) < 0) {
        forget_verified(sha);
        return 0;
    }
    if (v != NULL && same_file(v, st))
        return 1;
    forget_verified(sha);
    if (hash_file(obj, hex) < 0 || strcmp(hex, sha) != 0) {
        log_warning("artifact file %s does not match its hash; rewriting it", obj);
        unlink(obj);
        return 0;
    }
    v = calloc(1, sizeof(*v));
    if (v != NULL) {
        snprintf(v->sha, sizeof(v->sha), "%s", sha);
        v->dev = st->st_dev;
        v->ino = st->st_ino;
        v->size = st->st_size;
        v->mtime = st->st_mtim;
        if (idmap_put(&verified_map, v) < 0)
            free(v);
    }
    return 1;
}

/* Writes sha's bytes from the database to obj (through a temporary name in
 * odir) and verifies them, leaving obj's stat in *st. Returns 0, or -1 with
 * err set. */
static int fetch_object(struct db_conn *db, const char *odir, const char *obj, const char *sha,
                        struct stat *st, char *err, size_t errlen)
{
    const char *params[1] = {sha};
    char tmp[4200];
    PGresult *r;
    int rc;

    if (private_dir(odir, err, errlen) < 0)
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
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%d", odir, sha, (int)getpid());
    rc = write_file(tmp, obj, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), err, errlen);
    PQclear(r);
    if (rc < 0)
        return -1;
    if (!object_ready(obj, sha, st)) {
        snprintf(err, errlen, "artifact %.12s failed verification after writing", sha);
        return -1;
    }
    log_debug("wrote artifact %s", obj);
    return 0;
}

int art_materialize(struct db_conn *db, const char *dir, const char *project, const char *sha,
                    char *path, size_t pathlen, char *err, size_t errlen)
{
    char odir[4096], obj[4200], pdir[4096];
    struct stat ost, pst;

    if (!ju_valid_id(project) || !art_valid_sha(sha)) {
        snprintf(err, errlen, "invalid project or artifact id");
        return -1;
    }
    snprintf(odir, sizeof(odir), "%s/" ART_OBJECTS, dir);
    snprintf(obj, sizeof(obj), "%s/%s.so", odir, sha);
    snprintf(pdir, sizeof(pdir), "%s/%s", dir, project);
    if ((size_t)snprintf(path, pathlen, "%s/%s.so", pdir, sha) >= pathlen) {
        snprintf(err, errlen, "artifact path too long");
        return -1;
    }
    if (!object_ready(obj, sha, &ost) && fetch_object(db, odir, obj, sha, &ost, err, errlen) < 0)
        return -1;
    /* The project's name for it is a hard link to the verified object. */
    if (stat(path, &pst) == 0 && pst.st_ino == ost.st_ino && pst.st_dev == ost.st_dev)
        return 0;
    if (stat(pdir, &pst) < 0 && private_dir(pdir, err, errlen) < 0)
        return -1;
    if ((unlink(path) < 0 && errno != ENOENT) || link(obj, path) < 0) {
        snprintf(err, errlen, "could not link \"%s\": %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Removes an object no project links to any more. */
static void drop_object_if_unused(const char *dir, const char *name)
{
    char obj[4400];
    struct stat st;

    snprintf(obj, sizeof(obj), "%s/" ART_OBJECTS "/%s", dir, name);
    if (stat(obj, &st) == 0 && st.st_nlink == 1 && unlink(obj) == 0) {
        char sha[SHA256_HEX_LEN];
        snprintf(sha, sizeof(sha), "%.64s", name);
        forget_verified(sha);
        log_debug("removed unused artifact %s", obj);
    }
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
        if (unlink(path) == 0) {
            if (len == 67)
                drop_object_if_unused(dir, de->d_name);
        } else {
            left++;
        }
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
    /* Objects left are unreferenced now, like stale temporaries. */
    {
        char odir[4096], path[4400];
        snprintf(odir, sizeof(odir), "%s/" ART_OBJECTS, dir);
        d = opendir(odir);
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || de->d_name[1] == '.'))
                continue;
            snprintf(path, sizeof(path), "%s/%s", odir, de->d_name);
            unlink(path);
        }
        if (d != NULL)
            closedir(d);
        rmdir(odir);
    }
    while (verified_map.n > 0)
        free(idmap_del(&verified_map, verified_key(verified_map.items[0])));
    idmap_free(&verified_map);
    rmdir(dir);
}
