/*
 * test_msg.c: framing over a real SEQPACKET socketpair: boundaries kept,
 * descriptors passed with SCM_RIGHTS, EOF, malformed payloads, size cap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jsonutil.h"
#include "msg.h"
#include "testhelp.h"

int main(void)
{
    int sv[2], pp[2];
    cJSON *a = cJSON_CreateObject();
    cJSON *got = NULL;
    int fd = -2;
    char c = 0;
    char *big;

    CHECK_INT(msg_socketpair(sv), 0);
    CHECK(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);

    /* Nothing waiting. */
    CHECK_INT(msg_recv(sv[1], &got, &fd), -1);
    CHECK_INT(errno, EAGAIN);

    /* Two messages keep their boundaries. */
    cJSON_AddStringToObject(a, "t", "one");
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    cJSON_ReplaceItemInObject(a, "t", cJSON_CreateString("two"));
    CHECK_INT(msg_send(sv[0], a, -1), 0);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 1);
    CHECK_STR(ju_str(got, "t"), "one");
    CHECK_INT(fd, -1);
    cJSON_Delete(got);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 1);
    CHECK_STR(ju_str(got, "t"), "two");
    cJSON_Delete(got);

    /* A descriptor travels with its message and works on the other side. */
    CHECK_INT(pipe(pp), 0);
    CHECK_INT(msg_send(sv[0], a, pp[1]), 0);
    close(pp[1]);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 1);
    cJSON_Delete(got);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK_INT(write(fd, "x", 1), 1);
    close(fd);
    CHECK_INT(read(pp[0], &c, 1), 1);
    CHECK_INT(c, 'x');
    close(pp[0]);

    /* A payload that is not a JSON object is refused. */
    CHECK_INT(send(sv[0], "[1,2]", 5, 0), 5);
    CHECK_INT(msg_recv(sv[1], &got, &fd), -1);
    CHECK_INT(errno, EBADMSG);
    CHECK_INT(send(sv[0], "{nope", 5, 0), 5);
    CHECK_INT(msg_recv(sv[1], &got, &fd), -1);
    CHECK_INT(errno, EBADMSG);

    /* Over the cap: refused before sending. */
    big = malloc(MSG_MAX_BYTES + 10);
    memset(big, 'a', MSG_MAX_BYTES + 9);
    big[MSG_MAX_BYTES + 9] = '\0';
    cJSON_AddStringToObject(a, "big", big);
    free(big);
    CHECK_INT(msg_send(sv[0], a, -1), -1);
    CHECK_INT(errno, EMSGSIZE);
    cJSON_Delete(a);

    /* EOF when the peer closes. */
    close(sv[0]);
    CHECK_INT(msg_recv(sv[1], &got, &fd), 0);
    close(sv[1]);

    TEST_REPORT("test_msg");
}
