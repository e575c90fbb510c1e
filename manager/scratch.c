/*
 * scratch.c: each project's private scratch directory, the one place on
 * disk its workers may write (besides what an operator grants with
 * WF_SANDBOX_RW_PATHS): <WF_RUNTIME_DIR>/<port>/<projectId>.
 *
 * Invariants:
 *   - WF_RUNTIME_DIR and the instance directory (<port>: instances on one
 *     host are told apart by the port they hold) belong to the manager's
 *     user, mode 0711: workers can reach their own directory by its path,
 *     not list their neighbours, and write nothing there;
 *   - a project's directory is 0700 and owned by the user its workers run
 *     as; Landlock (worker/sandbox.c) confines each worker to its own;
 *   - nothing here follows a symbolic link: directories are opened with
 *     O_NOFOLLOW and removed through descriptors (rm_at), so a worker that
 *     planted links in its directory cannot make the manager, possibly
 *     root, touch anything outside it;
 *   - the instance directory is emptied when the manager starts (what an
 *     earlier instance on the same port left) and removed when it stops.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "manager.h"

#define RM_MAX_DEPTH 64

/*
 * Removes name under dfd, whatever it is: a file or link is unlinked, a
 * directory emptied through its descriptor and removed. Returns 0, or -1
 * (the first failure is logged; the rest goes on).
 */
static int rm_at(int dfd, const char *name, int depth)
{
    struct dirent *de;
    DIR *d;
    int fd, rc = 0;

    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR) {
        log_warning("could not remove \"%s\": %s", name, strerror(errno));
        return -1;
    }
    if (depth >= RM_MAX_DEPTH) {
        log_warning("could not remove \"%s\": nested deeper than %d", name, RM_MAX_DEPTH);
        return -1;
    }
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        log_warning("could not open \"%s\" to remove it: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (rm_at(dirfd(d), de->d_name, depth + 1) < 0)
            rc = -1;
    }
    closedir(d);
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
        if (rc == 0)
            log_warning("could not remove directory \"%s\": %s", name, strerror(errno));
        return -1;
    }
    return rc;
}

/*
 * mkdir path (mode) if missing; then it must be a real directory (not a
 * link) owned by uid, and gets exactly mode. Returns 0, or -1 logged.
 */
static int own_dir(const char *path, mode_t mode, uid_t uid)
{
    struct stat st;
    int fd;

    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        log_error("could not create directory \"%s\": %s", path, strerror(errno));
        return -1;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        log_error("\"%s\" is not a directory: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_uid != uid) {
        log_error("\"%s\" belongs to uid %u, not %u", path, (unsigned)st.st_uid, (unsigned)uid);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0) {
        log_error("could not set the mode of \"%s\": %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int scr_init(struct mgr *m, int port)
{
    char name[16];
    int dfd;

    if (own_dir(m->cfg->runtime_dir, 0711, geteuid()) < 0)
        return -1;
    snprintf(name, sizeof(name), "%d", port);
    if ((size_t)snprintf(m->instance_dir, sizeof(m->instance_dir), "%s/%s", m->cfg->runtime_dir,
                         name) >= sizeof(m->instance_dir)) {
        log_error("WF_RUNTIME_DIR is too long");
        return -1;
    }
    /* What an earlier instance on this port left (it holds the port no more). */
    dfd = open(m->cfg->runtime_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        log_error("could not open \"%s\": %s", m->cfg->runtime_dir, strerror(errno));
        return -1;
    }
    (void)rm_at(dfd, name, 0);
    close(dfd);
    if (own_dir(m->instance_dir, 0711, geteuid()) < 0) {
        m->instance_dir[0] = '\0';
        return -1;
    }
    log_info("scratch directories under %s", m->instance_dir);
    return 0;
}

int scr_project(struct mgr *m, const char *project, char *out, size_t len)
{
    uid_t uid = m->drop_privileges ? m->worker_uid : geteuid();
    struct stat st;
    int fd, rc = -1;

    if (m->instance_dir[0] == '\0' ||
        (size_t)snprintf(out, len, "%s/%s", m->instance_dir, project) >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return -1;
    fd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
        goto out;
    if (st.st_uid != uid) {
        /* Just made (ours): hand it over. Anyone else's: refuse. */
        if (st.st_uid != geteuid()) {
            errno = EPERM;
            goto out;
        }
        if (fchown(fd, uid, m->worker_gid) < 0)
            goto out;
    }
    if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
        goto out;
    rc = 0;
out:
    if (fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return rc;
}

void scr_cleanup(struct mgr *m)
{
    const char *slash;
    int dfd;

    if (m->instance_dir[0] == '\0')
        return;
    slash = strrchr(m->instance_dir, '/');
    dfd = open(m->cfg->runtime_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0 && slash != NULL)
        (void)rm_at(dfd, slash + 1, 0);
    if (dfd >= 0)
        close(dfd);
    m->instance_dir[0] = '\0';
}
