/*
 * stubborn_worker.c: a stand-in worker program that misbehaves on purpose,
 * chosen by the project id it is started for (argv[2]):
 *
 *   ignore-term  reports ready, then ignores SIGTERM: a stop must escalate
 *                to SIGKILL after WF_DRAIN_TIMEOUT_MS
 *   never-ready  never reports ready: the manager must kill it after
 *                WF_START_TIMEOUT_MS and answer the start call
 *   anything else: exits 3 at once
 *
 * It speaks just enough of the worker protocol (manager/worker.c): one
 * {"t":"ready"} message on its control socket, fd 3, framed by msg_send so
 * that it follows the record format of common/msg.h. It ends when the
 * manager closes that socket, so it never outlives a test.
 */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"

int main(int argc, char **argv)
{
    struct rlimit none = {0, 0};
    char buf[4096];

    (void)setrlimit(RLIMIT_CORE, &none);
    if (argc < 3)
        return 100;
    if (strcmp(argv[2], "ignore-term") == 0) {
        cJSON *ready = cJSON_CreateObject();
        int r;

        signal(SIGTERM, SIG_IGN);
        cJSON_AddStringToObject(ready, "t", "ready");
        r = msg_send(3, ready, -1);
        cJSON_Delete(ready);
        if (r < 0)
            return 111;
    } else if (strcmp(argv[2], "never-ready") != 0) {
        return 3;
    }
    /* Wait for the manager's end of the control socket to close. */
    while (recv(3, buf, sizeof(buf), 0) > 0)
        ;
    return 0;
}
