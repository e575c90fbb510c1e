/*
 * backoff.c: see backoff.h. Pure functions of their arguments.
 */
#include "backoff.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

enum bo_exit bo_classify(int wstatus, char *desc, size_t len)
{
    if (WIFEXITED(wstatus)) {
        int code = WEXITSTATUS(wstatus);
        snprintf(desc, len, "exited with status %d", code);
        if (code == 0)
            return BO_EXIT_CLEAN;
        return code == 1 ? BO_EXIT_EXPECTED : BO_EXIT_CRASH;
    }
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        snprintf(desc, len, "killed by signal %d (%s)%s", sig, strsignal(sig),
                 WCOREDUMP(wstatus) ? ", core dumped" : "");
        return BO_EXIT_CRASH;
    }
    snprintf(desc, len, "ended with unknown status %d", wstatus);
    return BO_EXIT_CRASH;
}

void bo_reset(struct bo_state *s)
{
    memset(s, 0, sizeof(*s));
}

int bo_on_crash(struct bo_state *s, int64_t now_ms, int64_t last_spawn_ms, int64_t ready_ms,
                int64_t *restart_at_ms)
{
    int recent = 0;
    int64_t at;

    if (ready_ms > 0 && now_ms - ready_ms >= BO_HEALTHY_MS)
        s->backoff_ms = 0; /* it ran healthily for a while: start over */

    s->crashes[s->next] = now_ms;
    s->next = (s->next + 1) % BO_BREAKER_CRASHES;
    if (s->ncrashes < BO_BREAKER_CRASHES)
        s->ncrashes++;
    for (int i = 0; i < s->ncrashes; i++) {
        if (now_ms - s->crashes[i] < BO_BREAKER_WINDOW_MS)
            recent++;
    }
    if (recent >= BO_BREAKER_CRASHES)
        return 1;

    if (s->backoff_ms <= 0)
        s->backoff_ms = BO_INITIAL_MS;
    at = now_ms + s->backoff_ms;
    if (at < last_spawn_ms + BO_FLOOR_MS)
        at = last_spawn_ms + BO_FLOOR_MS;
    *restart_at_ms = at;
    s->backoff_ms = s->backoff_ms * 2 > BO_MAX_MS ? BO_MAX_MS : s->backoff_ms * 2;
    return 0;
}

void bo_on_outage(struct bo_state *s, int64_t now_ms, int64_t last_spawn_ms, int64_t *restart_at_ms)
{
    int64_t at;

    if (s->backoff_ms <= 0)
        s->backoff_ms = BO_INITIAL_MS;
    if (s->backoff_ms > BO_OUTAGE_MAX_MS)
        s->backoff_ms = BO_OUTAGE_MAX_MS;
    at = now_ms + s->backoff_ms;
    if (at < last_spawn_ms + BO_FLOOR_MS)
        at = last_spawn_ms + BO_FLOOR_MS;
    *restart_at_ms = at;
    s->backoff_ms = s->backoff_ms * 2 > BO_OUTAGE_MAX_MS ? BO_OUTAGE_MAX_MS : s->backoff_ms * 2;
}
