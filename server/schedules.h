/*
 * schedules.h: cron schedules (issue #11, docs/schedules.md): the firing
 * thread that starts a run at each tick of every schedule, and the
 * computations the API shares with it.
 *
 * A schedule row (migration 8) holds next_fire_at, the next tick to fire.
 * One thread per server, with its own blocking connection ("wf-core:
 * schedules"), runs a pass whenever the earliest tick is due (and at least
 * every SCHEDULE_POLL_MS, since other servers add schedules): in one
 * transaction it takes the due rows FOR UPDATE SKIP LOCKED, inserts each
 * one's run pending with the idempotency key "schedule:<id>:<tick>",
 * announces it with NOTIFY wf_runs (whichever host runs the project claims
 * it), and moves next_fire_at past the tick. So each tick fires once across
 * every server sharing the database: a row is taken by one pass at a time,
 * the move commits with the run, and the unique key refuses a second run
 * for a tick whatever happens.
 *
 * Missed ticks (the servers were down, or the schedule's pass failed): a
 * tick is on time when it is fired at most grace_ms after it (WF_SCHEDULE_
 * GRACE_MS). When a pass finds ticks that are late by more, the policy of
 * the schedule decides: fire-once fires one run for the most recent missed
 * tick and skips the others; skip fires none of them. Either way the
 * schedule then goes on from the first tick after now. Ticks that passed
 * while a schedule was paused are not missed: resuming starts from now.
 *
 * Times are Unix seconds; the database's clock (now()) decides what is due,
 * so servers with skewed clocks agree.
 */
#ifndef WF_SCHEDULES_H
#define WF_SCHEDULES_H

#include <stddef.h>
#include <stdint.h>

#include "cron.h"

#define SCHEDULE_POLL_MS 1000              /* longest wait between passes */
#define SCHEDULE_BATCH 64                  /* due schedules taken per transaction */
#define SCHEDULE_NEXT_SHOWN 5              /* next fire times in the API's replies */
#define SCHEDULE_SCAN_SECS (400LL * 86400) /* missed ticks are looked for this far back */

enum sched_missed {
    SCHED_FIRE_ONCE = 0,
    SCHED_SKIP = 1
};

/* What a pass does with a due schedule (sched_decide). */
struct sched_decision {
    int fire;        /* 1: start a run for tick */
    int64_t tick;    /* the tick fired (or the last one skipped) */
    int64_t skipped; /* ticks not fired */
    int64_t next;    /* next_fire_at afterwards; -1: the expression never fires again */
};

/*
 * The pure rule of the firing pass. due is the schedule's next_fire_at (<=
 * now), now the database's clock. The latest tick at or before now is fired
 * when it is on time (now - tick <= grace_s) or the policy is fire-once;
 * the ticks before it are skipped. Ticks more than SCHEDULE_SCAN_SECS before
 * now are counted as one.
 */
void sched_decide(const struct cron *c, const struct cron_tz *tz, int64_t due, int64_t now,
                  int64_t grace_s, enum sched_missed policy, struct sched_decision *out);

/* Parses "fire-once" or "skip". Returns 0, or -1. */
int sched_missed_parse(const char *s, enum sched_missed *out);
const char *sched_missed_name(enum sched_missed m);

/*
 * Checks a cron expression and a zone name (NULL or "": UTC) and gives the
 * first tick after `after` (-1 when it never fires). Returns 0, or -1 with
 * a message in err ("cron field 2 (hour): 24 is out of range 0-23",
 * "unknown time zone \"Mars/Base\"").
 */
int sched_first_tick(const char *expr, const char *tzname, int64_t after, int64_t *tick, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* The next n ticks strictly after `after`, in out[0..]; returns how many
 * there are (fewer when the expression stops firing), or -1 with err. */
int sched_next_ticks(const char *expr, const char *tzname, int64_t after, int64_t *out, int n,
                     char *err, size_t errlen);

/* "2026-12-02T14:00:00Z" for tick t. */
void sched_format_utc(int64_t t, char *buf, size_t len);

/* ---- the firing thread ---- */

struct schedules;
struct db_options;

struct schedules_stats {
    uint64_t passes; /* transactions that committed */
    uint64_t fired;  /* runs started */
    uint64_t skipped;
    uint64_t errors; /* passes that failed (rolled back; retried) */
};

/* Starts the thread. url must outlive it. Returns NULL (logged) on failure. */
struct schedules *schedules_new(const char *url, const struct db_options *opt, int grace_ms);
/* Any thread: runs a pass soon (a schedule was added or resumed). */
void schedules_wake(struct schedules *s);
/* Any thread. */
void schedules_get_stats(struct schedules *s, struct schedules_stats *out);
/* Stops the thread (a pass in progress finishes or times out) and frees;
 * NULL is a no-op. */
void schedules_free(struct schedules *s);

#endif
