/*
 * memfd.c: see memfd.h. Writes retry on EINTR and short writes; any failure
 * closes the descriptor, so no half-written file is ever handed out.
 */
#include "memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define NEEDED_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

int memfd_sealed(const char *name, const void *data, size_t len)
{
    const char *p = data;
    size_t off = 0;
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int saved;

    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            goto fail;
        }
        off += (size_t)n;
    }
    if (memfd_seal(fd) < 0)
        goto fail;
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int memfd_seal(int fd)
{
    return fcntl(fd, F_ADD_SEALS, NEEDED_SEALS | F_SEAL_SEAL);
}

int memfd_is_sealed(int fd)
{
    int seals = fcntl(fd, F_GET_SEALS);

    return seals >= 0 && (seals & NEEDED_SEALS) == NEEDED_SEALS;
}
