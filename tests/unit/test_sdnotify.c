/*
 * test_sdnotify.c: the manager's side of the service manager's readiness
 * protocol (manager/sdnotify.h): a datagram reaches a socket named by a
 * path and one named in the abstract namespace ('@'), byte for byte;
 * NOTIFY_SOCKET leaves the environment once read; without it, or with an
 * address that is not one, sending is a quiet no-op.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"
#include "testhelp.h"

/* A non-blocking datagram socket bound to name (a path, or '@' + an
 * abstract name). Returns the fd or -1. */
static int bound(const char *name)
{
    struct sockaddr_un sa;
    socklen_t len;
    size_t n = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, n);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0) {
        perror("bind");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The next datagram on fd into buf (NUL-terminated); its length or -1. */
static long next(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, 0);

    if (n >= 0)
        buf[n] = '\0';
    return (long)n;
}

int main(void)
{
    char dir[] = "/tmp/wf-sdnotify.XXXXXX";
    char path[128], abstract[64], buf[256];
    int fd, fds;

    /* Not under a service manager: nothing to do. */
    unsetenv("NOTIFY_SOCKET");
    CHECK_INT(sdn_init(), 0);
    sdn_send("READY=1"); /* no crash, no effect */

    /* A path. */
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/notify", dir);
    fd = bound(path);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", path, 1);
    CHECK_INT(sdn_init(), 1);
    CHECK(getenv("NOTIFY_SOCKET") == NULL); /* children do not inherit it */
    fds = count_fds();
    sdn_send("READY=1\nSTATUS=ready: serving on port 3011");
    CHECK_INT(count_fds(), fds); /* the sending socket is closed again */
    CHECK_INT(next(fd, buf, sizeof(buf)),
              (long)strlen("READY=1\nSTATUS=ready: serving on port 3011"));
    CHECK_STR(buf, "READY=1\nSTATUS=ready: serving on port 3011");
    sdn_send("STOPPING=1");
    CHECK_INT(next(fd, buf, sizeof(buf)), 10);
    CHECK_STR(buf, "STOPPING=1");
    CHECK_INT(next(fd, buf, sizeof(buf)), -1); /* exactly one datagram each */
    close(fd);
    unlink(path);
    /* The socket is gone: the send fails, is logged once, and is ignored. */
    fds = count_fds();
    sdn_send("STATUS=nobody listens");
    sdn_send("STATUS=nobody listens, again");
    CHECK_INT(count_fds(), fds);
    rmdir(dir);

    /* An abstract name. */
    snprintf(abstract, sizeof(abstract), "@wf-sdnotify-test-%d", (int)getpid());
    fd = bound(abstract);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", abstract, 1);
    CHECK_INT(sdn_init(), 1);
    sdn_send("READY=1");
    CHECK_INT(next(fd, buf, sizeof(buf)), 7);
    CHECK_STR(buf, "READY=1");
    close(fd);

    /* Not an address: ignored (a warning), and unset all the same. */
    setenv("NOTIFY_SOCKET", "relative/notify", 1);
    CHECK_INT(sdn_init(), 0);
    CHECK(getenv("NOTIFY_SOCKET") == NULL);
    setenv("NOTIFY_SOCKET", "@", 1);
    CHECK_INT(sdn_init(), 0);
    memset(buf, 'x', 200);
    buf[0] = '/';
    buf[200] = '\0';
    setenv("NOTIFY_SOCKET", buf, 1); /* longer than sun_path */
    CHECK_INT(sdn_init(), 0);
    sdn_send("READY=1"); /* a no-op again */

    TEST_REPORT("test_sdnotify");
}
