/*
 * test_mgrlink.c: core's end of the manager's control channel, with the
 * test playing the manager over a socketpair: a request reaches the
 * manager with a "req" number and its reply reaches the request's callback
 * once; a reply nobody waits for is dropped; a request past its deadline
 * is answered NULL; events (hello, state, attach with its descriptor) reach
 * their callbacks; when the manager goes away, core hears "gone" and every
 * waiting request is answered NULL.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "loop.h"
#include "mgrlink.h"
#include "msg.h"
#include "testhelp.h"

static int hellos, states, attaches, gone, attach_fd = -1;
static int answers, nulls;
static char last_code[32];

static void ev_hello(void *arg, const cJSON *ev)
{
    hellos++;
}

static void ev_state(void *arg, const cJSON *ev)
{
    states++;
}

static void ev_attach(void *arg, const cJSON *ev, int fd)
{
    attaches++;
    attach_fd = fd;
}

static void ev_gone(void *arg)
{
    gone++;
}

static void done(void *arg, const cJSON *reply)
{
    if (reply == NULL) {
        nulls++;
        return;
    }
    answers++;
    snprintf(last_code, sizeof(last_code), "%s",
             ju_str(reply, "code") ? ju_str(reply, "code") : "");
}

static void turns(struct loop *l, int n)
{
    for (int i = 0; i < n; i++)
        CHECK(loop_turn(l, 10) == 0);
}

static void send_text(int fd, const char *text, int pass_fd)
{
    cJSON *o = cJSON_Parse(text);

    CHECK(o != NULL && msg_send(fd, o, pass_fd) == 0);
    cJSON_Delete(o);
}

int main(void)
{
    struct mgrlink_events ev = {ev_hello, ev_state, ev_attach, ev_gone, NULL};
    struct loop *l = loop_new();
    struct mgrlink *ml;
    cJSON *got = NULL;
    int sv[2], pipefd[2];
    int64_t req;
    char text[128];

    log_init("test", LOG_LVL_ERROR, 0);
    CHECK(l != NULL && msg_socketpair(sv) == 0 && pipe(pipefd) == 0);
    ml = mgrlink_new(l, sv[1], &ev);
    CHECK(ml != NULL);

    /* hello, then a request and its reply */
    CHECK(mgrlink_hello(ml) == 0);
    CHECK(msg_recv(sv[0], &got, NULL) == 1);
    CHECK_STR(ju_str(got, "op"), "hello");
    cJSON_Delete(got);
    CHECK(mgrlink_project_op(ml, "start", "p1", 5000, done, NULL) == 0);
    CHECK(msg_recv(sv[0], &got, NULL) == 1);
    CHECK_STR(ju_str(got, "op"), "start");
    CHECK_STR(ju_str(got, "project"), "p1");
    CHECK(ju_int(got, "req", &req) == 0 && req > 0);
    cJSON_Delete(got);
    send_text(sv[0], "{\"ev\":\"reply\",\"req\":999,\"ok\":true,\"code\":\"stray\"}", -1);
    snprintf(text, sizeof(text), "{\"ev\":\"reply\",\"req\":%lld,\"ok\":true,\"code\":\"started\"}",
             (long long)req);
    send_text(sv[0], text, -1);
    send_text(sv[0], text, -1); /* a second reply: nobody waits any more */
    turns(l, 3);
    CHECK_INT(answers, 1);
    CHECK_STR(last_code, "started");

    /* events */
    send_text(sv[0], "{\"ev\":\"hello\",\"first\":true,\"workers\":[]}", -1);
    send_text(sv[0], "{\"ev\":\"state\",\"project\":\"p1\"}", -1);
    send_text(sv[0], "{\"ev\":\"attach\",\"project\":\"p1\",\"pid\":5}", pipefd[0]);
    turns(l, 3);
    CHECK_INT(hellos, 1);
    CHECK_INT(states, 1);
    CHECK_INT(attaches, 1);
    CHECK(attach_fd >= 0);
    if (attach_fd >= 0)
        close(attach_fd);

    /* a deadline */
    CHECK(mgrlink_project_op(ml, "stop", "p1", 50, done, NULL) == 0);
    for (int i = 0; i < 50 && nulls == 0; i++)
        turns(l, 1);
    CHECK_INT(nulls, 1);

    /* the manager goes: gone, and waiting requests answered NULL */
    CHECK(mgrlink_project_op(ml, "stop", "p1", 60000, done, NULL) == 0);
    close(sv[0]);
    turns(l, 3);
    CHECK_INT(gone, 1);
    CHECK_INT(nulls, 2);
    CHECK(mgrlink_project_op(ml, "stop", "p1", 1000, done, NULL) < 0);
    mgrlink_free(ml);
    close(pipefd[0]);
    close(pipefd[1]);
    loop_free(l);
    TEST_REPORT("unit_mgrlink");
}
