/*
 * backoff.h: the restart arithmetic of supervision, kept pure (no clocks, no
 * processes) so it can be unit-tested: exit-status classification, restart
 * backoff with a floor, and the crash-loop breaker.
 *
 * Policy (DESIGN §2, STYLE §13): never respawn sooner than BO_FLOOR_MS after
 * the last spawn; back off 1 s doubling to 60 s; reset the backoff after a
 * process stayed ready for BO_HEALTHY_MS; after BO_BREAKER_CRASHES crashes
 * within BO_BREAKER_WINDOW_MS the breaker trips.
 */
#ifndef WF_BACKOFF_H
#define WF_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define BO_FLOOR_MS 1000
#define BO_INITIAL_MS 1000
#define BO_MAX_MS 60000
#define BO_HEALTHY_MS 60000
#define BO_BREAKER_CRASHES 5
#define BO_BREAKER_WINDOW_MS (5 * 60 * 1000)
#define BO_OUTAGE_MAX_MS 10000 /* retries while the database is down */

enum bo_exit {
    BO_EXIT_CLEAN,    /* exit status 0 */
    BO_EXIT_EXPECTED, /* exit status 1: a reported, deterministic failure */
    BO_EXIT_CRASH     /* any other status, or killed by a signal */
};

struct bo_state {
    int64_t crashes[BO_BREAKER_CRASHES]; /* ring of recent crash times */
    int ncrashes;                        /* valid entries, <= BO_BREAKER_CRASHES */
    int next;                            /* ring write index */
    int64_t backoff_ms;                  /* delay the next crash will get; 0 = initial */
};

/* Classifies a waitpid() status and writes "exited with status 3" or
 * "killed by signal 9 (Killed)" into desc. */
enum bo_exit bo_classify(int wstatus, char *desc, size_t len);

/* Forgets every crash and resets the backoff (a start or restart call). */
void bo_reset(struct bo_state *s);

/*
 * Records a crash at now_ms of a process that was ready since ready_ms (0 if
 * it never was) and decides what happens next. Returns 1 if the breaker
 * trips (the caller marks the project failed), else 0 with *restart_at_ms
 * set to max(now + backoff, last_spawn_ms + BO_FLOOR_MS).
 */
int bo_on_crash(struct bo_state *s, int64_t now_ms, int64_t last_spawn_ms, int64_t ready_ms,
                int64_t *restart_at_ms);

/*
 * A process that could not get its code because the database was
 * unavailable (an outage, not the code's fault): no crash is recorded, so
 * the breaker never trips on it, but retries back off the same way (up to
 * BO_OUTAGE_MAX_MS). Sets *restart_at_ms.
 */
void bo_on_outage(struct bo_state *s, int64_t now_ms, int64_t last_spawn_ms,
                  int64_t *restart_at_ms);

#endif
