/*
 * rogue_worker.c: a worker program that misbehaves towards core on purpose,
 * chosen by the prefix of the project id it is started for (argv[2]); for
 * any other project it execs the real wf-worker (WF_REAL_WORKER), so one
 * server can run both.
 *
 *   deaf-      reports ready and heartbeats, but never reads its core
 *              socket: core's ping goes unanswered
 *   flood-     reports ready, then sends heartbeats as fast as it can
 *   garbage-   sends a record that is not a message (no header)
 *   trunc-     sends a record larger than any core reads (truncated)
 *   liar-      claims, in its hello, code core never gave it
 *   badhello-  greets core with another process's pid
 *
 * Each reports ready to the manager (fd 3) so its start call succeeds, then
 * does its one thing and waits for the manager to close the control socket
 * or kill it; it never outlives a test.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "msg.h"

#define CTL_FD 3
#define WORK_FD 4

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int send_json(int fd, const char *text)
{
    cJSON *o = cJSON_Parse(text);
    int r = o != NULL ? msg_send(fd, o, -1) : -1;

    cJSON_Delete(o);
    return r;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* 1 once the manager closed the control socket. */
static int manager_gone(int timeout_ms)
{
    struct pollfd p = {CTL_FD, POLLIN, 0};
    char buf[256];

    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    return recv(CTL_FD, buf, sizeof(buf), MSG_DONTWAIT) == 0 || (p.revents & POLLHUP) != 0;
}

static void hello(const char *project, int pid, int loaded, const char *code)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "{\"t\":\"hello\",\"pid\":%d,\"project\":\"%s\",\"loaded\":%s%s%s}", pid, project,
             loaded ? "true" : "false", code != NULL ? ",\"code\":" : "", code != NULL ? code : "");
    (void)send_json(WORK_FD, text);
}

int main(int argc, char **argv)
{
    struct rlimit none = {0, 0};
    const char *project;

    if (argc < 3)
        return 100;
    project = argv[2];
    if (!starts_with(project, "deaf-") && !starts_with(project, "flood-") &&
        !starts_with(project, "garbage-") && !starts_with(project, "trunc-") &&
        !starts_with(project, "liar-") && !starts_with(project, "badhello-")) {
        execv(WF_REAL_WORKER, argv);
        return 111;
    }
    (void)setrlimit(RLIMIT_CORE, &none);
    /* Ready first, so the start call succeeds before core notices. */
    if (send_json(CTL_FD, "{\"t\":\"ready\"}") < 0)
        return 111;
    sleep_ms(50);
    if (starts_with(project, "liar-"))
        hello(project, (int)getpid(), 1,
              "{\"workflows\":[\"made-up\"],\"activities\":[],\"plugins\":[{\"name\":\"made-up\","
              "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}");
    else if (starts_with(project, "badhello-"))
        hello(project, 1, 0, NULL);
    else
        hello(project, (int)getpid(), 0, NULL);

    if (starts_with(project, "deaf-")) {
        while (!manager_gone(100))
            (void)send_json(WORK_FD, "{\"t\":\"hb\"}");
    } else if (starts_with(project, "flood-")) {
        /* Bounded: 10 s at most, or until core resets us. */
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec > 10 || send_json(WORK_FD, "{\"t\":\"hb\"}") < 0)
                break;
        }
    } else if (starts_with(project, "garbage-")) {
        static const char junk[] = "this is not a message";
        sleep_ms(100);
        (void)send(WORK_FD, junk, sizeof(junk) - 1, MSG_NOSIGNAL);
    } else if (starts_with(project, "trunc-")) {
        /* A well-formed header announcing inline text longer than any
         * record core reads: the kernel truncates it. */
        size_t n = 100 * 1024;
        unsigned char *rec = malloc(MSG_HDR_LEN + n);
        uint32_t len = (uint32_t)n;
        if (rec == NULL)
            return 111;
        memset(rec, ' ', MSG_HDR_LEN + n);
        rec[0] = 'W';
        rec[1] = 'F';
        rec[2] = MSG_VERSION;
        rec[3] = 0;
        memcpy(rec + 4, &len, sizeof(len));
        rec[MSG_HDR_LEN] = '{';
        rec[MSG_HDR_LEN + n - 1] = '}';
        sleep_ms(100);
        (void)send(WORK_FD, rec, MSG_HDR_LEN + n, MSG_NOSIGNAL);
        free(rec);
    }
    while (!manager_gone(1000))
        ;
    return 0;
}
