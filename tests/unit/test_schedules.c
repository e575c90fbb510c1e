/*
 * test_schedules.c: the pure rule of the schedules' firing pass
 * (sched_decide in server/schedules.c) and its helpers, against cases
 * worked out by hand: a tick on time; late within the grace; ticks missed
 * under each policy; a latest tick that is itself on time after missed
 * ones; an expression that fires no more; a downtime longer than the scan
 * (SCHEDULE_SCAN_SECS); a zone (New York's 2026 fall-back, where an hourly
 * schedule fires at both 01:00s); and the next-ticks list and its errors.
 */
#include <stdio.h>
#include <string.h>

#include "schedules.h"
#include "testhelp.h"

#define MIN 60LL
#define HOUR 3600LL
/* 2026-12-02T14:00:00Z */
#define T0 1796220000LL

static void decide(const char *expr, const char *zone, int64_t due, int64_t now, int64_t grace,
                   enum sched_missed policy, struct sched_decision *d)
{
    struct cron c;
    struct cron_tz *tz = NULL;
    char err[128];

    memset(d, 0xff, sizeof(*d));
    if (cron_parse(expr, &c, err, sizeof(err)) < 0 ||
        (zone != NULL && cron_tz_load(zone, &tz, err, sizeof(err)) < 0)) {
        fprintf(stderr, "bad case %s %s: %s\n", expr, zone != NULL ? zone : "", err);
        CHECK(0);
        return;
    }
    sched_decide(&c, tz, due, now, grace, policy, d);
    cron_tz_free(tz);
}

static void test_decide(void)
{
    struct sched_decision d;

    /* On time: the due tick fires, the next is a minute on. */
    decide("* * * * *", NULL, T0, T0, 60, SCHED_SKIP, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.tick, T0);
    CHECK_INT(d.skipped, 0);
    CHECK_INT(d.next, T0 + MIN);
    /* Late within the grace: still fires, under either policy. */
    decide("0 * * * *", NULL, T0, T0 + 59, 60, SCHED_SKIP, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.tick, T0);
    CHECK_INT(d.next, T0 + HOUR);
    /* Late past the grace, a single tick: skip drops it, fire-once fires it. */
    decide("0 * * * *", NULL, T0, T0 + 61, 60, SCHED_SKIP, &d);
    CHECK_INT(d.fire, 0);
    CHECK_INT(d.skipped, 1);
    CHECK_INT(d.next, T0 + HOUR);
    decide("0 * * * *", NULL, T0, T0 + 61, 60, SCHED_FIRE_ONCE, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.tick, T0);
    CHECK_INT(d.skipped, 0);
    /* Five hourly ticks passed (T0 .. T0+4h), the last 30 min ago. */
    decide("0 * * * *", NULL, T0, T0 + 4 * HOUR + 30 * MIN, 60, SCHED_FIRE_ONCE, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.tick, T0 + 4 * HOUR);
    CHECK_INT(d.skipped, 4);
    CHECK_INT(d.next, T0 + 5 * HOUR);
    decide("0 * * * *", NULL, T0, T0 + 4 * HOUR + 30 * MIN, 60, SCHED_SKIP, &d);
    CHECK_INT(d.fire, 0);
    CHECK_INT(d.tick, T0 + 4 * HOUR);
    CHECK_INT(d.skipped, 5);
    CHECK_INT(d.next, T0 + 5 * HOUR);
    /* Missed ticks, but the latest is on time: skip fires that one. */
    decide("0 * * * *", NULL, T0, T0 + 4 * HOUR + 10, 60, SCHED_SKIP, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.tick, T0 + 4 * HOUR);
    CHECK_INT(d.skipped, 4);
    /* A yearly expression ("0 0 2 12 *"): the next tick is a year on
     * (2027 has no Feb 29). */
    decide("0 0 2 12 *", NULL, T0 - 14 * HOUR, T0, 60, SCHED_FIRE_ONCE, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.tick, T0 - 14 * HOUR);
    CHECK_INT(d.next, T0 - 14 * HOUR + 365 * 24 * HOUR);
    /* Down for two years, every minute: the span past the scan counts as
     * one skipped tick, the rest one by one; the latest tick fires. */
    decide("* * * * *", NULL, T0 - 2 * 365 * 24 * HOUR, T0 + 5, 60, SCHED_FIRE_ONCE, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.tick, T0);
    /* one for the span, then the minutes from T0 - scan + 1 min to T0 - 1 min */
    CHECK_INT(d.skipped, 1 + (SCHEDULE_SCAN_SECS / MIN - 1));
    CHECK_INT(d.next, T0 + MIN);
    /* New York, 2026-11-01: 01:00 EDT is 05:00Z, 01:00 EST is 06:00Z; an
     * hourly expression fires at both, so from 05:00Z the 06:00Z tick is
     * next. 1793509200 = 2026-11-01T05:00:00Z. */
    decide("0 * * * *", "America/New_York", 1793509200LL, 1793509200LL, 60, SCHED_SKIP, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.next, 1793509200LL + HOUR);
    /* A fixed-time daily expression does not fire twice that night. */
    decide("0 1 * * *", "America/New_York", 1793509200LL, 1793509200LL, 60, SCHED_SKIP, &d);
    CHECK_INT(d.fire, 1);
    CHECK_INT(d.next, 1793509200LL + 25 * HOUR);
}

static void test_helpers(void)
{
    int64_t t[5];
    char err[128], buf[32];
    enum sched_missed m;

    CHECK_INT(sched_next_ticks("*/15 * * * *", "UTC", T0, t, 5, err, sizeof(err)), 5);
    for (int i = 0; i < 5; i++)
        CHECK_INT(t[i], T0 + (i + 1) * 15 * MIN);
    CHECK_INT(sched_next_ticks("0 0 30 2 *", NULL, T0, t, 5, err, sizeof(err)), 0);
    /* leap days: 2028 … 2044, each within the horizon of the one before */
    CHECK_INT(sched_next_ticks("0 0 29 2 *", "", T0, t, 5, err, sizeof(err)), 5);
    CHECK_INT(t[4], 2340316800LL);
    CHECK_INT(sched_next_ticks("60 * * * *", NULL, T0, t, 5, err, sizeof(err)), -1);
    CHECK(strstr(err, "minute") != NULL);
    CHECK_INT(sched_next_ticks("* * * * *", "Mars/Base", T0, t, 5, err, sizeof(err)), -1);
    CHECK_STR(err, "unknown time zone \"Mars/Base\"");
    CHECK_INT(sched_first_tick("@hourly", "Europe/Berlin", T0 + 1, &t[0], err, sizeof(err)), 0);
    CHECK_INT(t[0], T0 + HOUR);
    CHECK_INT(sched_first_tick("0 0 31 4 *", NULL, T0, &t[0], err, sizeof(err)), 0);
    CHECK_INT(t[0], -1);
    sched_format_utc(T0, buf, sizeof(buf));
    CHECK_STR(buf, "2026-12-02T14:00:00Z");
    CHECK_INT(sched_missed_parse("fire-once", &m), 0);
    CHECK_INT(m, SCHED_FIRE_ONCE);
    CHECK_INT(sched_missed_parse("skip", &m), 0);
    CHECK_INT(m, SCHED_SKIP);
    CHECK_INT(sched_missed_parse("Skip", &m), -1);
    CHECK_STR(sched_missed_name(SCHED_SKIP), "skip");
}

int main(void)
{
    test_decide();
    test_helpers();
    TEST_REPORT("unit_schedules");
}
