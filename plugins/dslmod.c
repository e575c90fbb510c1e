/*
 * dslmod.c: see dslmod.h. The module's file is opened read-only before the
 * privileges and the sandbox go; when it is needed, its bytes are read
 * through that descriptor (reads are not checked again), sealed in a
 * memfd and dlopen'ed through /proc/self/fd/<n>, as plugins are (Landlock
 * checks a path opened anew, /proc/self/fd of a file included, but not an
 * anonymous memfd). Its dependencies come from /usr, which the sandbox
 * lets workers read.
 */
#include "dslmod.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "memfd.h"

#define DSLMOD_FILE "wf-dsl.so"
#define DSLMOD_MAX_BYTES (64 * 1024 * 1024)

static int module_fd = -1;
static char module_path[PATH_MAX + 64]; /* where it was found, for messages */
static char open_error[3 * PATH_MAX];
static const struct dsl_module *module;

int dslmod_is_definition(const char *bytes, size_t len)
{
    size_t i = 0;

    while (i < len && (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' || bytes[i] == '\r'))
        i++;
    return i < len && bytes[i] == '{';
}

/* Tries path; 1 when it opened. */
static int try_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    module_fd = fd;
    snprintf(module_path, sizeof(module_path), "%s", path);
    return 1;
}

void dslmod_open_early(void)
{
    const char *env = getenv("WF_DSL_MODULE");
    char exe[PATH_MAX], path[PATH_MAX + 32], *slash;
    ssize_t n;

    if (module_fd >= 0)
        return;
    if (env != NULL && env[0] != '\0') {
        if (!try_open(env))
            snprintf(open_error, sizeof(open_error), "could not open WF_DSL_MODULE %s: %s", env,
                     strerror(errno));
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        snprintf(open_error, sizeof(open_error), "could not find the executable: %s",
                 strerror(errno));
        return;
    }
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(path, sizeof(path), "%s/%s", exe, DSLMOD_FILE);
    if (try_open(path))
        return;
    snprintf(path, sizeof(path), "%s/../lib/wf/%s", exe, DSLMOD_FILE);
    if (try_open(path))
        return;
    snprintf(open_error, sizeof(open_error), "%s not found beside %s or in %s/../lib/wf",
             DSLMOD_FILE, exe, exe);
}

/* The module's bytes in a sealed memfd; -1 with err. */
static int module_memfd(char *err, size_t errlen)
{
    char why[256];
    size_t len = 0;
    char *buf = plg_read_fd(module_fd, DSLMOD_MAX_BYTES, &len, why, sizeof(why));
    int fd;

    if (buf == NULL || len == 0) {
        snprintf(err, errlen, "could not load %s: %s", module_path,
                 buf == NULL ? why : "not a module file");
        free(buf);
        return -1;
    }
    fd = memfd_sealed("wf-dsl", buf, len);
    free(buf);
    if (fd < 0)
        snprintf(err, errlen, "could not load %s: %s", module_path, strerror(errno));
    return fd;
}

const struct dsl_module *dslmod_get(char *err, size_t errlen)
{
    const struct dsl_module *(*entry)(void);
    char fdpath[64];
    void *dl;
    const char *e;
    int mfd;

    if (module != NULL)
        return module;
    if (module_fd < 0) {
        snprintf(err, errlen, "declarative workflows are unavailable: %s",
                 open_error[0] != '\0' ? open_error : "the module was not opened");
        return NULL;
    }
    mfd = module_memfd(err, errlen);
    if (mfd < 0)
        return NULL;
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", mfd);
    dlerror();
    dl = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    close(mfd); /* the mapping keeps it */
    if (dl == NULL) {
        e = dlerror();
        snprintf(err, errlen, "could not load %s: %s", module_path,
                 e != NULL ? e : "unknown error");
        return NULL;
    }
    *(void **)&entry = dlsym(dl, DSL_MODULE_SYMBOL);
    if (entry == NULL || entry() == NULL || entry()->size < sizeof(struct dsl_module)) {
        snprintf(err, errlen, "could not load %s: not the module this worker was built with",
                 module_path);
        dlclose(dl);
        return NULL;
    }
    module = entry(); /* stays loaded for the process's life */
    log_info("loaded the declarative-workflow module from %s", module_path);
    return module;
}
