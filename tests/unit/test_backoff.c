/*
 * test_backoff.c: restart arithmetic: exit classification, the 1 s floor,
 * doubling to 60 s, reset after a healthy minute, and the breaker (5 crashes
 * in 5 minutes).
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "testhelp.h"

/* A real wait status from a child that exits with code, or dies by sig. */
static int real_status(int code, int sig)
{
    int st = 0;
    pid_t pid = fork();

    if (pid == 0) {
        if (sig != 0) {
            signal(sig, SIG_DFL);
            raise(sig);
        }
        _exit(code);
    }
    waitpid(pid, &st, 0);
    return st;
}

int main(void)
{
    struct bo_state s;
    char desc[128];
    int64_t at = 0;
    int64_t now = 1000000;

    CHECK_INT(bo_classify(real_status(0, 0), desc, sizeof(desc)), BO_EXIT_CLEAN);
    CHECK_STR(desc, "exited with status 0");
    CHECK_INT(bo_classify(real_status(1, 0), desc, sizeof(desc)), BO_EXIT_EXPECTED);
    CHECK_INT(bo_classify(real_status(3, 0), desc, sizeof(desc)), BO_EXIT_CRASH);
    CHECK_STR(desc, "exited with status 3");
    CHECK_INT(bo_classify(real_status(0, SIGKILL), desc, sizeof(desc)), BO_EXIT_CRASH);
    CHECK(strncmp(desc, "killed by signal 9", 18) == 0);

    /* Backoff doubles: 1, 2, 4, 8 s; the 5th crash within 5 min trips. */
    bo_reset(&s);
    CHECK_INT(bo_on_crash(&s, now, now - 100, 0, &at), 0);
    CHECK_INT(at, now + 1000);
    now += 1000;
    CHECK_INT(bo_on_crash(&s, now, now - 10, 0, &at), 0);
    CHECK_INT(at, now + 2000);
    now += 2000;
    CHECK_INT(bo_on_crash(&s, now, now - 10, 0, &at), 0);
    CHECK_INT(at, now + 4000);
    now += 4000;
    CHECK_INT(bo_on_crash(&s, now, now - 10, 0, &at), 0);
    CHECK_INT(at, now + 8000);
    now += 8000;
    CHECK_INT(bo_on_crash(&s, now, now - 10, 0, &at), 1);

    /* Capped at 60 s; crashes spread over more than 5 minutes never trip. */
    bo_reset(&s);
    now = 10000000;
    for (int i = 0; i < 12; i++) {
        CHECK_INT(bo_on_crash(&s, now, now - 10, 0, &at), 0);
        CHECK(at - now <= BO_MAX_MS);
        now += 2 * 60 * 1000; /* 2 minutes apart: never 5 within 5 minutes */
    }
    CHECK_INT(at - (now - 2 * 60 * 1000), BO_MAX_MS);

    /* A minute of health resets the backoff. */
    bo_reset(&s);
    now = 20000000;
    CHECK_INT(bo_on_crash(&s, now, now - 10, 0, &at), 0);
    CHECK_INT(bo_on_crash(&s, now + 1000, now + 990, 0, &at), 0);
    CHECK_INT(at, now + 1000 + 2000);
    CHECK_INT(bo_on_crash(&s, now + 200000, now + 3000, now + 3100, &at), 0);
    CHECK_INT(at, now + 200000 + 1000);

    /* The floor: never sooner than 1 s after the last spawn. */
    bo_reset(&s);
    s.backoff_ms = 10; /* pretend a tiny backoff */
    CHECK_INT(bo_on_crash(&s, now, now - 100, 0, &at), 0);
    CHECK_INT(at, now - 100 + BO_FLOOR_MS);

    TEST_REPORT("test_backoff");
}
