/*
 * sdnotify.c: see sdnotify.h.
 *
 * The address is parsed once at start (sdn_init) into a sockaddr_un kept
 * for the process's life; each message opens a datagram socket, sends, and
 * closes it, as libsystemd's sd_notify does: a handful of messages per run
 * do not justify a descriptor held open (and inherited by core). A send
 * that fails (the service manager went away, a full queue) is logged once;
 * the service goes on either way.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static struct {
    struct sockaddr_un addr;
    socklen_t len; /* 0: no socket, every call is a no-op */
    int warned;    /* a failed send was logged */
} sdn;

int sdn_init(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    size_t n;

    sdn.len = 0;
    if (s == NULL || *s == '\0')
        return 0;
    n = strlen(s);
    memset(&sdn.addr, 0, sizeof(sdn.addr));
    sdn.addr.sun_family = AF_UNIX;
    if ((s[0] != '/' && s[0] != '@') || n < 2 || n > sizeof(sdn.addr.sun_path) ||
        (s[0] == '/' && n == sizeof(sdn.addr.sun_path))) {
        log_warning("ignoring NOTIFY_SOCKET \"%.64s\": not an absolute path or an abstract "
                    "name ('@…') that fits a unix socket address",
                    s);
        (void)unsetenv("NOTIFY_SOCKET");
        return 0;
    }
    memcpy(sdn.addr.sun_path, s, n);
    /* A path is NUL-terminated (counted in the length, as libsystemd does);
     * an abstract name starts with a NUL byte instead of '@' and is exactly
     * its bytes long. */
    if (s[0] == '@') {
        sdn.addr.sun_path[0] = '\0';
        sdn.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        sdn.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    (void)unsetenv("NOTIFY_SOCKET");
    return 1;
}

void sdn_send(const char *state)
{
    size_t n = strlen(state);
    ssize_t sent;
    int fd, e;

    if (sdn.len == 0)
        return;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        e = errno;
        sent = -1;
    } else {
        sent = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sdn.addr, sdn.len);
        e = errno;
        close(fd);
    }
    if (sent == (ssize_t)n)
        return;
    if (!sdn.warned) {
        sdn.warned = 1;
        log_warning("could not notify the service manager (NOTIFY_SOCKET): %s",
                    sent < 0 ? strerror(e) : "short write");
    }
}
