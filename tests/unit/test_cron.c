/*
 * test_cron.c: engine/cron.c against known answers: every syntax form and
 * every parse error with its exact message; a table of (expression, zone,
 * after, next fire) through leap days, short months, year ends and the
 * 2026 DST changes of New York, Berlin and Lord Howe (30-minute DST), a
 * zone without DST (Tokyo), a zone that skipped a whole day (Apia, 2011),
 * a local mean time offset with seconds (Berlin, 1890), and the POSIX
 * footer (2040); conversions both ways; TZ strings in synthetic TZif
 * files; and truncated or corrupt TZif files, which must fail cleanly.
 *
 * The expected local times were checked against glibc, independently of
 * this code: `TZ=<zone> date -d @<t> '+%F %H:%M %Z'` for the system zones,
 * and `zdump -v <TZ string>` for the TZ strings (but the all-year DST one,
 * which glibc renders with an hour of standard time at each year's end:
 * that one follows RFC 8536 3.3.1). The system zones come from the tzdata
 * package (/usr/share/zoneinfo), which scripts/dev installs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cron.h"
#include "testhelp.h"

/* "YYYY-MM-DDTHH:MM:SSZ" as Unix seconds (timegm: not our calendar code). */
static int64_t iso(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6) {
        fprintf(stderr, "bad test time %s\n", s);
        exit(1);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* t as `date '+%F %H:%M %Z'` would print it in tz. */
static void local_str(const struct cron_tz *tz, int64_t t, char *buf, size_t len)
{
    struct cron_local l;

    if (cron_tz_to_local(tz, t, &l) < 0) {
        snprintf(buf, len, "(out of range)");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d %s", l.year, l.month, l.mday, l.hour, l.min,
             l.abbr);
}

/* ------------------------------------------------------------ next fire */

struct next_case {
    const char *expr, *zone;
    const char *after;  /* UTC; NULL: the previous row's answer */
    const char *expect; /* UTC; NULL: -1 (none within the horizon) */
    const char *local;  /* expect in zone, as date(1) shows it */
};

static const struct next_case next_cases[] = {
    /* Syntax forms, in UTC. 2026-01-01 is a Thursday. */
    {"* * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01 00:01 UTC"},
    {"* * * * *", "UTC", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z", "2026-01-01 00:01 UTC"},
    {"5 * * * *", "UTC", "2026-01-01T00:05:00Z", "2026-01-01T01:05:00Z", "2026-01-01 01:05 UTC"},
    {"15,45 * * * *", "UTC", "2026-01-01T00:20:00Z", "2026-01-01T00:45:00Z",
     "2026-01-01 00:45 UTC"},
    {"*/20 * * * *", "UTC", "2026-01-01T00:41:00Z", "2026-01-01T01:00:00Z", "2026-01-01 01:00 UTC"},
    {"10-20 * * * *", "UTC", "2026-01-01T00:20:00Z", "2026-01-01T01:10:00Z",
     "2026-01-01 01:10 UTC"},
    {"10-40/15 * * * *", "UTC", "2026-01-01T00:26:00Z", "2026-01-01T00:40:00Z",
     "2026-01-01 00:40 UTC"},
    {"50/5 * * * *", "UTC", "2026-01-01T00:56:00Z", "2026-01-01T01:50:00Z", "2026-01-01 01:50 UTC"},
    {"0 */6 * * *", "UTC", "2026-01-01T06:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01 12:00 UTC"},
    {"0 9-17/4 * * *", "UTC", "2026-01-01T13:30:00Z", "2026-01-01T17:00:00Z",
     "2026-01-01 17:00 UTC"},
    {"0 0 1 JAN,JUL *", "UTC", "2026-01-15T00:00:00Z", "2026-07-01T00:00:00Z",
     "2026-07-01 00:00 UTC"},
    {"0 0 1 jun-Aug *", "UTC", "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z",
     "2026-06-01 00:00 UTC"},
    {"0 0 1 */5 *", "UTC", "2026-02-01T00:00:00Z", "2026-06-01T00:00:00Z", "2026-06-01 00:00 UTC"},
    {"0 9 * * MON-FRI", "UTC", "2026-01-02T10:00:00Z", "2026-01-05T09:00:00Z",
     "2026-01-05 09:00 UTC"},
    {"0 9 * * sat,Sun", "UTC", "2026-01-05T00:00:00Z", "2026-01-10T09:00:00Z",
     "2026-01-10 09:00 UTC"},
    {"0 9 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T09:00:00Z", "2026-01-04 09:00 UTC"},
    {"0 9 * * FRI-SUN", "UTC", "2026-01-04T10:00:00Z", "2026-01-09T09:00:00Z",
     "2026-01-09 09:00 UTC"},
    {"0 9 * * 5-7", "UTC", "2026-01-04T08:00:00Z", "2026-01-04T09:00:00Z", "2026-01-04 09:00 UTC"},
    {"0 12 * * */2", "UTC", "2026-01-01T12:00:00Z", "2026-01-03T12:00:00Z", "2026-01-03 12:00 UTC"},
    {"0 12 * * 1/2", "UTC", "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z", "2026-01-02 12:00 UTC"},
    {" \t0  0 * * *\t ", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
     "2026-01-02 00:00 UTC"},
    {"@yearly", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01-01 00:00 UTC"},
    {"@annually", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01-01 00:00 UTC"},
    {"@monthly", "UTC", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z", "2026-02-01 00:00 UTC"},
    {"@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-04 00:00 UTC"},
    {"@daily", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-02 00:00 UTC"},
    {"@MIDNIGHT", "UTC", "2026-01-01T23:59:59Z", "2026-01-02T00:00:00Z", "2026-01-02 00:00 UTC"},
    {"@hourly", "UTC", "2026-01-01T00:59:59Z", "2026-01-01T01:00:00Z", "2026-01-01 01:00 UTC"},

    /* Day of month and day of week: both restricted = either. */
    {"0 0 13 * 5", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
     "2026-01-02 00:00 UTC"}, /* Friday */
    {"0 0 13 * 5", "UTC", "2026-01-10T00:00:00Z", "2026-01-13T00:00:00Z",
     "2026-01-13 00:00 UTC"}, /* the 13th, a Tuesday */
    {"0 0 1-7 * 1", "UTC", "2026-01-08T00:00:00Z", "2026-01-12T00:00:00Z",
     "2026-01-12 00:00 UTC"}, /* any Monday, not only the first */
    {"0 0 14 * 0,2,4,6", "UTC", "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z",
     "2026-01-03 00:00 UTC"},
    /* ... one starting with `*`: both must match. */
    {"0 0 14 * */2", "UTC", "2026-01-01T00:00:00Z", "2026-02-14T00:00:00Z",
     "2026-02-14 00:00 UTC"}, /* the 14th on Sun/Tue/Thu/Sat */
    {"0 0 */10 * 1", "UTC", "2026-01-01T00:00:00Z", "2026-05-11T00:00:00Z",
     "2026-05-11 00:00 UTC"}, /* 1st/11th/21st/31st on a Monday */

    /* Feb 29 in leap years only, across 2100 (not a leap year). */
    {"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "2028-02-29 00:00 UTC"},
    {"0 0 29 2 *", "UTC", NULL, "2032-02-29T00:00:00Z", "2032-02-29 00:00 UTC"},
    {"0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z", "2104-02-29 00:00 UTC"},
    /* The 31st skips short months. */
    {"0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-03-31 00:00 UTC"},
    {"0 0 31 * *", "UTC", NULL, "2026-05-31T00:00:00Z", "2026-05-31 00:00 UTC"},
    {"0 0 31 * *", "UTC", NULL, "2026-07-31T00:00:00Z", "2026-07-31 00:00 UTC"},
    {"0 0 31 * *", "UTC", NULL, "2026-08-31T00:00:00Z", "2026-08-31 00:00 UTC"},
    /* Last minute of the year, year rollover. */
    {"59 23 31 12 *", "UTC", "2026-01-01T00:00:00Z", "2026-12-31T23:59:00Z",
     "2026-12-31 23:59 UTC"},
    {"0 0 1 1 *", "UTC", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "2027-01-01 00:00 UTC"},
    {"* * * * *", "UTC", "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z", "2027-01-01 00:00 UTC"},
    /* Never: -1. */
    {"0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", NULL, NULL},
    {"0 0 31 4,6,9,11 *", "Europe/Berlin", "2026-01-01T00:00:00Z", NULL, NULL},
    {"0 0 30 2 *", "America/New_York", "2026-01-01T00:00:00Z", NULL, NULL},

    /* No DST: Tokyo (+09). */
    {"0 9 * * *", "Asia/Tokyo", "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z",
     "2026-03-09 09:00 JST"},
    {"30 23 * * *", "Asia/Tokyo", "2026-12-31T14:30:00Z", "2027-01-01T14:30:00Z",
     "2027-01-01 23:30 JST"},
    {"0 0 1 1 *", "Asia/Tokyo", "2026-06-01T00:00:00Z", "2026-12-31T15:00:00Z",
     "2027-01-01 00:00 JST"},

    /* New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT. */
    {"30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-07T07:30:00Z",
     "2026-03-07 02:30 EST"},
    {"30 2 * * *", "America/New_York", NULL, "2026-03-08T07:00:00Z",
     "2026-03-08 03:00 EDT"}, /* skipped: at the end of the gap */
    {"30 2 * * *", "America/New_York", NULL, "2026-03-09T06:30:00Z", "2026-03-09 02:30 EDT"},
    {"0,30 2 * * *", "America/New_York", "2026-03-08T00:00:00Z", "2026-03-08T07:00:00Z",
     "2026-03-08 03:00 EDT"}, /* two skipped matches fire once */
    {"0,30 2 * * *", "America/New_York", NULL, "2026-03-09T06:00:00Z", "2026-03-09 02:00 EDT"},
    {"0 1 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-07T06:00:00Z",
     "2026-03-07 01:00 EST"},
    {"0 1 * * *", "America/New_York", NULL, "2026-03-08T06:00:00Z", "2026-03-08 01:00 EST"},
    {"0 1 * * *", "America/New_York", NULL, "2026-03-09T05:00:00Z", "2026-03-09 01:00 EDT"},
    {"0 * * * *", "America/New_York", "2026-03-08T05:30:00Z", "2026-03-08T06:00:00Z",
     "2026-03-08 01:00 EST"},
    {"0 * * * *", "America/New_York", NULL, "2026-03-08T07:00:00Z",
     "2026-03-08 03:00 EDT"}, /* one real hour later */
    {"0 * * * *", "America/New_York", NULL, "2026-03-08T08:00:00Z", "2026-03-08 04:00 EDT"},
    {"*/30 * * * *", "America/New_York", "2026-03-08T06:10:00Z", "2026-03-08T06:30:00Z",
     "2026-03-08 01:30 EST"},
    {"*/30 * * * *", "America/New_York", NULL, "2026-03-08T07:00:00Z", "2026-03-08 03:00 EDT"},
    {"*/30 * * * *", "America/New_York", NULL, "2026-03-08T07:30:00Z", "2026-03-08 03:30 EDT"},
    /* New York, fall back 2026-11-01 02:00 EDT -> 01:00 EST. */
    {"30 2 * * *", "America/New_York", "2026-10-31T00:00:00Z", "2026-10-31T06:30:00Z",
     "2026-10-31 02:30 EDT"},
    {"30 2 * * *", "America/New_York", NULL, "2026-11-01T07:30:00Z", "2026-11-01 02:30 EST"},
    {"30 2 * * *", "America/New_York", NULL, "2026-11-02T07:30:00Z", "2026-11-02 02:30 EST"},
    {"0 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", "2026-10-31T05:00:00Z",
     "2026-10-31 01:00 EDT"},
    {"0 1 * * *", "America/New_York", NULL, "2026-11-01T05:00:00Z",
     "2026-11-01 01:00 EDT"}, /* first 01:00 only */
    {"0 1 * * *", "America/New_York", NULL, "2026-11-02T06:00:00Z", "2026-11-02 01:00 EST"},
    {"30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z", "2026-11-02T06:30:00Z",
     "2026-11-02 01:30 EST"}, /* from the second 01:10: 01:30 already fired */
    {"0 * * * *", "America/New_York", "2026-11-01T04:30:00Z", "2026-11-01T05:00:00Z",
     "2026-11-01 01:00 EDT"},
    {"0 * * * *", "America/New_York", NULL, "2026-11-01T06:00:00Z",
     "2026-11-01 01:00 EST"}, /* both 01:00s */
    {"0 * * * *", "America/New_York", NULL, "2026-11-01T07:00:00Z", "2026-11-01 02:00 EST"},
    {"*/30 * * * *", "America/New_York", "2026-11-01T05:10:00Z", "2026-11-01T05:30:00Z",
     "2026-11-01 01:30 EDT"},
    {"*/30 * * * *", "America/New_York", NULL, "2026-11-01T06:00:00Z", "2026-11-01 01:00 EST"},
    {"*/30 * * * *", "America/New_York", NULL, "2026-11-01T06:30:00Z", "2026-11-01 01:30 EST"},
    {"*/30 * * * *", "America/New_York", NULL, "2026-11-01T07:00:00Z", "2026-11-01 02:00 EST"},

    /* Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST. */
    {"30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-28T01:30:00Z",
     "2026-03-28 02:30 CET"},
    {"30 2 * * *", "Europe/Berlin", NULL, "2026-03-29T01:00:00Z", "2026-03-29 03:00 CEST"},
    {"30 2 * * *", "Europe/Berlin", NULL, "2026-03-30T00:30:00Z", "2026-03-30 02:30 CEST"},
    {"0 1 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", "2026-03-28T00:00:00Z",
     "2026-03-28 01:00 CET"},
    {"0 1 * * *", "Europe/Berlin", NULL, "2026-03-29T00:00:00Z", "2026-03-29 01:00 CET"},
    {"0 1 * * *", "Europe/Berlin", NULL, "2026-03-29T23:00:00Z", "2026-03-30 01:00 CEST"},
    {"0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z", "2026-03-29T00:00:00Z",
     "2026-03-29 01:00 CET"},
    {"0 * * * *", "Europe/Berlin", NULL, "2026-03-29T01:00:00Z", "2026-03-29 03:00 CEST"},
    {"0 * * * *", "Europe/Berlin", NULL, "2026-03-29T02:00:00Z", "2026-03-29 04:00 CEST"},
    {"*/30 * * * *", "Europe/Berlin", "2026-03-29T00:10:00Z", "2026-03-29T00:30:00Z",
     "2026-03-29 01:30 CET"},
    {"*/30 * * * *", "Europe/Berlin", NULL, "2026-03-29T01:00:00Z", "2026-03-29 03:00 CEST"},
    {"*/30 * * * *", "Europe/Berlin", NULL, "2026-03-29T01:30:00Z", "2026-03-29 03:30 CEST"},
    /* Berlin, fall back 2026-10-25 03:00 CEST -> 02:00 CET. */
    {"30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-24T00:30:00Z",
     "2026-10-24 02:30 CEST"},
    {"30 2 * * *", "Europe/Berlin", NULL, "2026-10-25T00:30:00Z",
     "2026-10-25 02:30 CEST"}, /* first 02:30 only */
    {"30 2 * * *", "Europe/Berlin", NULL, "2026-10-26T01:30:00Z", "2026-10-26 02:30 CET"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", "2026-10-26T01:30:00Z",
     "2026-10-26 02:30 CET"}, /* from the second 02:10 */
    {"0 1 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z", "2026-10-23T23:00:00Z",
     "2026-10-24 01:00 CEST"},
    {"0 1 * * *", "Europe/Berlin", NULL, "2026-10-24T23:00:00Z", "2026-10-25 01:00 CEST"},
    {"0 1 * * *", "Europe/Berlin", NULL, "2026-10-26T00:00:00Z", "2026-10-26 01:00 CET"},
    {"0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z",
     "2026-10-25 02:00 CEST"},
    {"0 * * * *", "Europe/Berlin", NULL, "2026-10-25T01:00:00Z", "2026-10-25 02:00 CET"},
    {"0 * * * *", "Europe/Berlin", NULL, "2026-10-25T02:00:00Z", "2026-10-25 03:00 CET"},
    {"*/30 * * * *", "Europe/Berlin", "2026-10-25T00:10:00Z", "2026-10-25T00:30:00Z",
     "2026-10-25 02:30 CEST"},
    {"*/30 * * * *", "Europe/Berlin", NULL, "2026-10-25T01:00:00Z", "2026-10-25 02:00 CET"},
    {"*/30 * * * *", "Europe/Berlin", NULL, "2026-10-25T01:30:00Z", "2026-10-25 02:30 CET"},
    {"*/30 * * * *", "Europe/Berlin", NULL, "2026-10-25T02:00:00Z", "2026-10-25 03:00 CET"},

    /* Lord Howe: +1030, DST +11 (30 minutes). 2026-04-05 02:00 -> 01:30,
     * 2026-10-04 02:00 -> 02:30. */
    {"45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", "2026-04-04T14:45:00Z",
     "2026-04-05 01:45 +11"},
    {"45 1 * * *", "Australia/Lord_Howe", NULL, "2026-04-05T15:15:00Z", "2026-04-06 01:45 +1030"},
    {"45 * * * *", "Australia/Lord_Howe", "2026-04-04T14:00:00Z", "2026-04-04T14:45:00Z",
     "2026-04-05 01:45 +11"},
    {"45 * * * *", "Australia/Lord_Howe", NULL, "2026-04-04T15:15:00Z", "2026-04-05 01:45 +1030"},
    {"45 * * * *", "Australia/Lord_Howe", NULL, "2026-04-04T16:15:00Z", "2026-04-05 02:45 +1030"},
    {"15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", "2026-10-03T15:30:00Z",
     "2026-10-04 02:30 +11"},
    {"15 2 * * *", "Australia/Lord_Howe", NULL, "2026-10-04T15:15:00Z", "2026-10-05 02:15 +11"},
    {"*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:10:00Z", "2026-10-03T15:15:00Z",
     "2026-10-04 01:45 +1030"},
    {"*/15 * * * *", "Australia/Lord_Howe", NULL, "2026-10-03T15:30:00Z", "2026-10-04 02:30 +11"},
    {"*/15 * * * *", "Australia/Lord_Howe", NULL, "2026-10-03T15:45:00Z", "2026-10-04 02:45 +11"},

    /* Apia skipped 2011-12-30 (-10 -> +14): that day's noon fires once, at
     * the end of the gap. */
    {"0 12 * * *", "Pacific/Apia", "2011-12-29T00:00:00Z", "2011-12-29T22:00:00Z",
     "2011-12-29 12:00 -10"},
    {"0 12 * * *", "Pacific/Apia", NULL, "2011-12-30T10:00:00Z", "2011-12-31 00:00 +14"},
    {"0 12 * * *", "Pacific/Apia", NULL, "2011-12-30T22:00:00Z", "2011-12-31 12:00 +14"},

    /* Before 1970 and before standard time: Berlin's LMT is +00:53:28. */
    {"0 12 * * *", "Europe/Berlin", "1890-01-01T00:00:00Z", "1890-01-01T11:06:32Z",
     "1890-01-01 12:00 LMT"},
    {"30 2 * * *", "America/New_York", "1990-04-01T00:00:00Z", "1990-04-01T07:00:00Z",
     "1990-04-01 03:00 EDT"},

    /* 2040: past the file's transitions, so from its POSIX footer. */
    {"30 2 * * *", "America/New_York", "2040-03-10T00:00:00Z", "2040-03-10T07:30:00Z",
     "2040-03-10 02:30 EST"},
    {"30 2 * * *", "America/New_York", NULL, "2040-03-11T07:00:00Z", "2040-03-11 03:00 EDT"},
    {"30 2 * * *", "America/New_York", NULL, "2040-03-12T06:30:00Z", "2040-03-12 02:30 EDT"},
    {"0 1 * * *", "America/New_York", "2040-11-03T00:00:00Z", "2040-11-03T05:00:00Z",
     "2040-11-03 01:00 EDT"},
    {"0 1 * * *", "America/New_York", NULL, "2040-11-04T05:00:00Z", "2040-11-04 01:00 EDT"},
    {"0 1 * * *", "America/New_York", NULL, "2040-11-05T06:00:00Z", "2040-11-05 01:00 EST"},
    {"0 * * * *", "America/New_York", "2040-11-04T04:30:00Z", "2040-11-04T05:00:00Z",
     "2040-11-04 01:00 EDT"},
    {"0 * * * *", "America/New_York", NULL, "2040-11-04T06:00:00Z", "2040-11-04 01:00 EST"},
    {"30 2 * * *", "Europe/Berlin", "2040-03-24T12:00:00Z", "2040-03-25T01:00:00Z",
     "2040-03-25 03:00 CEST"},
    {"30 2 * * *", "Europe/Berlin", "2040-10-28T00:00:00Z", "2040-10-28T00:30:00Z",
     "2040-10-28 02:30 CEST"},
    {"30 2 * * *", "Europe/Berlin", NULL, "2040-10-29T01:30:00Z", "2040-10-29 02:30 CET"},
    {"45 1 * * *", "Australia/Lord_Howe", "2040-03-31T00:00:00Z", "2040-03-31T14:45:00Z",
     "2040-04-01 01:45 +11"},
    {"45 1 * * *", "Australia/Lord_Howe", NULL, "2040-04-01T15:15:00Z", "2040-04-02 01:45 +1030"},
};

static void test_next_table(void)
{
    int64_t prev = 0;

    for (size_t i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++) {
        const struct next_case *k = &next_cases[i];
        struct cron c;
        struct cron_tz *tz = NULL;
        char err[256], got_local[64];
        int64_t after = k->after != NULL ? iso(k->after) : prev;
        int64_t want = k->expect != NULL ? iso(k->expect) : -1, got;

        err[0] = '\0';
        if (cron_parse(k->expr, &c, err, sizeof(err)) != 0 ||
            cron_tz_load_dir(k->zone, NULL, &tz, err, sizeof(err)) != 0) {
            fprintf(stderr, "row %zu (%s, %s): %s\n", i, k->expr, k->zone, err);
            CHECK(0);
            continue;
        }
        got = cron_next(&c, tz, after);
        if (got != want)
            fprintf(stderr, "row %zu: \"%s\" in %s after %lld\n", i, k->expr, k->zone,
                    (long long)after);
        CHECK_INT(got, want);
        if (k->local != NULL) {
            local_str(tz, want, got_local, sizeof(got_local));
            CHECK_STR(got_local, k->local);
        }
        prev = want;
        cron_tz_free(tz);
    }
}

/* A daily job fires once a day, every day, through a year of DST changes;
 * an hourly one once per real hour (23, 24 or 25 a day). */
static void test_daily_every_day(const char *zone)
{
    struct cron c;
    struct cron_tz *tz = NULL;
    char err[256];
    const char *exprs[] = {"30 2 * * *", "0 1 * * *", "59 23 * * *", "0 3 * * *", "0 0 * * *"};
    struct cron_local jan1 = {.year = 2026, .month = 1, .mday = 1};
    int64_t start[2];

    CHECK(cron_tz_load_dir(zone, NULL, &tz, err, sizeof(err)) == 0);
    if (tz == NULL)
        return;
    /* From just before local midnight of 2026-01-01. */
    CHECK_INT(cron_tz_from_local(tz, &jan1, start), 1);
    start[0]--;
    for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
        int64_t t = start[0], prev_day = -1;
        int fires = 0, ok = 1;
        struct cron_local l;

        CHECK(cron_parse(exprs[e], &c, err, sizeof(err)) == 0);
        for (;;) {
            char date[32];
            int64_t day;

            t = cron_next(&c, tz, t);
            if (t < 0 || cron_tz_to_local(tz, t, &l) < 0 || l.year > 2026)
                break;
            /* Consecutive fires on consecutive local dates. */
            snprintf(date, sizeof(date), "%04d-%02d-%02dT00:00:00Z", l.year, l.month, l.mday);
            day = iso(date) / 86400;
            if (prev_day >= 0 && day != prev_day + 1)
                ok = 0;
            prev_day = day;
            fires++;
        }
        if (!ok || fires != 365)
            fprintf(stderr, "%s in %s: %d fires in 2026\n", exprs[e], zone, fires);
        CHECK(ok);
        CHECK_INT(fires, 365);
    }
    {
        int64_t t = start[0], prev = t;
        int fires = 0, ok = 1;
        struct cron_local l;

        CHECK(cron_parse("0 * * * *", &c, err, sizeof(err)) == 0);
        while ((t = cron_next(&c, tz, t)) > 0 && cron_tz_to_local(tz, t, &l) == 0 &&
               l.year == 2026) {
            /* Berlin and New York change by whole hours: one real hour apart */
            if (fires > 0 && t - prev != 3600)
                ok = 0;
            prev = t;
            fires++;
        }
        CHECK(ok);
        CHECK_INT(fires, 8760);
    }
    cron_tz_free(tz);
}

/* ------------------------------------------------------------ parsing */

struct parse_error {
    const char *expr, *msg;
};

static const struct parse_error parse_errors[] = {
    {"", "cron expression is empty"},
    {" \t ", "cron expression is empty"},
    {"* * * *", "cron expression has 4 fields, expected 5 (minute hour day-of-month month "
                "day-of-week)"},
    {"*", "cron expression has 1 field, expected 5 (minute hour day-of-month month day-of-week)"},
    {"0 * * * * *", "cron expression has 6 fields, expected 5 (minute hour day-of-month month "
                    "day-of-week)"},
    {"0 0 12 * * ? 2026", "cron expression has 7 fields, expected 5 (minute hour day-of-month "
                          "month day-of-week)"},
    {"60 * * * *", "cron field 1 (minute): 60 is out of range 0-59"},
    {"0 24 * * *", "cron field 2 (hour): 24 is out of range 0-23"},
    {"0 0 0 * *", "cron field 3 (day-of-month): 0 is out of range 1-31"},
    {"0 0 32 * *", "cron field 3 (day-of-month): 32 is out of range 1-31"},
    {"0 0 * 0 *", "cron field 4 (month): 0 is out of range 1-12"},
    {"0 0 * 13 *", "cron field 4 (month): 13 is out of range 1-12"},
    {"0 0 * * 8", "cron field 5 (day-of-week): 8 is out of range 0-7"},
    {"0 0-24 * * *", "cron field 2 (hour): 24 is out of range 0-23"},
    {"99999999999 * * * *", "cron field 1 (minute): 99999999999 is out of range 0-59"},
    {"*/0 * * * *", "cron field 1 (minute): step 0 is out of range 1-59"},
    {"*/60 * * * *", "cron field 1 (minute): step 60 is out of range 1-59"},
    {"0 0 1-5/0 * *", "cron field 3 (day-of-month): step 0 is out of range 1-31"},
    {"0 0 * */13 *", "cron field 4 (month): step 13 is out of range 1-12"},
    {"30-10 * * * *", "cron field 1 (minute): range 30-10 is reversed"},
    {"0 0 * DEC-JAN *", "cron field 4 (month): range DEC-JAN is reversed"},
    {"0 0 * * FRI-MON", "cron field 5 (day-of-week): range FRI-MON is reversed"},
    {"0 0 ? * *", "cron field 3 (day-of-month): invalid token \"?\""},
    {"0 0 * * ?", "cron field 5 (day-of-week): invalid token \"?\""},
    {"0 0 L * *", "cron field 3 (day-of-month): invalid token \"L\""},
    {"0 0 15W * *", "cron field 3 (day-of-month): invalid token \"15W\""},
    {"0 0 LW * *", "cron field 3 (day-of-month): invalid token \"LW\""},
    {"0 0 * * 5L", "cron field 5 (day-of-week): invalid token \"5L\""},
    {"0 0 * * 1#2", "cron field 5 (day-of-week): invalid token \"1#2\""},
    {"0 0 * * MONDAY", "cron field 5 (day-of-week): invalid token \"MONDAY\""},
    {"0 0 * JANUARY *", "cron field 4 (month): invalid token \"JANUARY\""},
    {"0 0 * * JAN", "cron field 5 (day-of-week): invalid token \"JAN\""},
    {"0 0 * MON *", "cron field 4 (month): invalid token \"MON\""},
    {"0 0 MON * *", "cron field 3 (day-of-month): invalid token \"MON\""},
    {"0 0 * * ~", "cron field 5 (day-of-week): invalid token \"~\""},
    {"1,,2 * * * *", "cron field 1 (minute): empty list item"},
    {"1, * * * *", "cron field 1 (minute): empty list item"},
    {",1 * * * *", "cron field 1 (minute): empty list item"},
    {"*5 * * * *", "cron field 1 (minute): invalid token \"*5\""},
    {"5- * * * *", "cron field 1 (minute): invalid token \"5-\""},
    {"-5 * * * *", "cron field 1 (minute): invalid token \"-5\""},
    {"1-2-3 * * * *", "cron field 1 (minute): invalid token \"1-2-3\""},
    {"*/ * * * *", "cron field 1 (minute): invalid token \"*/\""},
    {"*/2/3 * * * *", "cron field 1 (minute): invalid token \"*/2/3\""},
    {"*/x * * * *", "cron field 1 (minute): invalid token \"*/x\""},
    {"0 0 * * 1x", "cron field 5 (day-of-week): invalid token \"1x\""},
    {"0 0 * * 1,2x", "cron field 5 (day-of-week): invalid token \"2x\""},
    {"0x10 * * * *", "cron field 1 (minute): invalid token \"0x10\""},
    {"1.5 * * * *", "cron field 1 (minute): invalid token \"1.5\""},
    {"0 0 1 1 * junk", "cron expression has 6 fields, expected 5 (minute hour day-of-month "
                       "month day-of-week)"},
    {"@reboot", "unknown cron shortcut \"@reboot\""},
    {"@", "unknown cron shortcut \"@\""},
    {"@every 5m", "unknown cron shortcut \"@every\""},
    {"@daily 0", "cron expression has text after @daily: \"0\""},
    {"0 @daily * * *", "cron field 2 (hour): invalid token \"@daily\""},
    {"0 0 * * *\n", "cron expression has a control or non-ASCII byte at offset 9"},
    {"0 0 * * \xc3\xa9", "cron expression has a control or non-ASCII byte at offset 8"},
    {"0 0 * * 1,23456789012345678901234567890123456789012345",
     "cron field 5 (day-of-week): 23456789012345678901234567890123456789012345 is out of range "
     "0-7"},
    {"0 0 * * 1,X3456789012345678901234567890123456789012345",
     "cron field 5 (day-of-week): invalid token \"X345678901234567890123456789012345678901\"..."},
};

static void test_parse_errors(void)
{
    char err[256];
    char big[CRON_EXPR_MAX + 2];
    struct cron c, untouched;

    memset(&untouched, 0x5a, sizeof(untouched));
    for (size_t i = 0; i < sizeof(parse_errors) / sizeof(parse_errors[0]); i++) {
        c = untouched;
        snprintf(err, sizeof(err), "(none)");
        CHECK_INT(cron_parse(parse_errors[i].expr, &c, err, sizeof(err)), -1);
        CHECK_STR(err, parse_errors[i].msg);
        CHECK(memcmp(&c, &untouched, sizeof(c)) == 0);
    }
    CHECK_INT(cron_parse(NULL, &c, err, sizeof(err)), -1);
    CHECK_STR(err, "cron expression is empty");

    /* Overlong, by one byte; at the cap, blanks are fine. */
    memset(big, ' ', sizeof(big));
    memcpy(big, "0 0 * * *", 9);
    big[CRON_EXPR_MAX + 1] = '\0';
    CHECK_INT(cron_parse(big, &c, err, sizeof(err)), -1);
    CHECK_STR(err, "cron expression is longer than 256 bytes");
    big[CRON_EXPR_MAX] = '\0';
    CHECK_INT(cron_parse(big, &c, err, sizeof(err)), 0);

    /* A short buffer gets a truncated, terminated message; none at all is
     * fine too. */
    CHECK_INT(cron_parse("0 24 * * *", &c, err, 12), -1);
    CHECK_STR(err, "cron field ");
    CHECK_INT(cron_parse("0 24 * * *", &c, NULL, 0), -1);
}

static void test_parse_forms(void)
{
    struct cron c;
    char err[256];

    CHECK_INT(cron_parse("*/15 0-23/6 1,15 1-12/3 MON-FRI", &c, err, sizeof(err)), 0);
    CHECK(c.minute == (1ULL << 0 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
    CHECK_INT(c.hour, 1u << 0 | 1u << 6 | 1u << 12 | 1u << 18);
    CHECK_INT(c.dom, 1u << 1 | 1u << 15);
    CHECK_INT(c.month, 1u << 1 | 1u << 4 | 1u << 7 | 1u << 10);
    CHECK_INT(c.dow, 0x3e);
    CHECK_INT(c.flags, CRON_MIN_STAR);

    CHECK_INT(cron_parse("* * * * *", &c, err, sizeof(err)), 0);
    CHECK(c.minute == (1ULL << 60) - 1);
    CHECK_INT(c.hour, (1u << 24) - 1);
    CHECK_INT(c.dom, 0xfffffffeu);
    CHECK_INT(c.month, 0x1ffe);
    CHECK_INT(c.dow, 0x7f);
    CHECK_INT(c.flags, CRON_MIN_STAR | CRON_HOUR_STAR | CRON_DOM_STAR | CRON_DOW_STAR);

    /* 7 is Sunday; a range may end on Sunday; a/n runs to Saturday. */
    CHECK_INT(cron_parse("0 0 * * 7", &c, err, sizeof(err)), 0);
    CHECK_INT(c.dow, 0x01);
    CHECK_INT(cron_parse("0 0 * * fri-sun", &c, err, sizeof(err)), 0);
    CHECK_INT(c.dow, 0x61);
    CHECK_INT(cron_parse("0 0 * * 5-0", &c, err, sizeof(err)), 0);
    CHECK_INT(c.dow, 0x61);
    CHECK_INT(cron_parse("0 0 * * 0-7", &c, err, sizeof(err)), 0);
    CHECK_INT(c.dow, 0x7f);
    CHECK_INT(cron_parse("0 0 * * 1/2", &c, err, sizeof(err)), 0);
    CHECK_INT(c.dow, 0x2a);
    CHECK_INT(cron_parse("0 0 * * */7", &c, err, sizeof(err)), 0);
    CHECK_INT(c.dow, 0x01);
    CHECK_INT(cron_parse("0 0 * * 7/2", &c, err, sizeof(err)), 0);
    CHECK_INT(c.dow, 0x01);
    /* Steps past the end, lists of ranges, names in any case, leading 0s. */
    CHECK_INT(cron_parse("58/5 05 */31 Jan-mar,DEC/2 *", &c, err, sizeof(err)), 0);
    CHECK(c.minute == (1ULL << 58));
    CHECK_INT(c.hour, 1u << 5);
    CHECK_INT(c.dom, 1u << 1);
    CHECK_INT(c.month, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 12);
    CHECK_INT(c.flags, CRON_DOM_STAR | CRON_DOW_STAR);
    /* Shortcuts are their expressions. */
    {
        static const char *const pairs[][2] = {
            {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
            {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
            {"@hourly", "0 * * * *"}, {" @Daily ", "0 0 * * *"},
        };
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
            struct cron a, b;

            memset(&a, 0, sizeof(a));
            memset(&b, 0, sizeof(b));
            CHECK_INT(cron_parse(pairs[i][0], &a, err, sizeof(err)), 0);
            CHECK_INT(cron_parse(pairs[i][1], &b, err, sizeof(err)), 0);
            CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        }
    }
}

/* ------------------------------------------------------------ conversions */

static void test_conversions(void)
{
    struct cron_tz *ny = NULL, *lh = NULL;
    struct cron_local l, w;
    int64_t out[2];
    char err[256];

    CHECK(cron_tz_load_dir("America/New_York", NULL, &ny, err, sizeof(err)) == 0);
    CHECK(cron_tz_load_dir("Australia/Lord_Howe", NULL, &lh, err, sizeof(err)) == 0);
    if (ny == NULL || lh == NULL)
        goto out;
    CHECK_STR(cron_tz_name(ny), "America/New_York");
    CHECK_STR(cron_tz_name(NULL), "UTC");

    CHECK_INT(cron_tz_to_local(ny, iso("2026-03-08T06:59:59Z"), &l), 0);
    CHECK(l.year == 2026 && l.month == 3 && l.mday == 8 && l.hour == 1 && l.min == 59 &&
          l.sec == 59 && l.wday == 0 && l.utoff == -18000 && l.isdst == 0);
    CHECK_STR(l.abbr, "EST");
    CHECK_INT(cron_tz_to_local(ny, iso("2026-03-08T07:00:00Z"), &l), 0);
    CHECK(l.hour == 3 && l.min == 0 && l.utoff == -14400 && l.isdst == 1);
    CHECK_STR(l.abbr, "EDT");
    CHECK_INT(cron_tz_to_local(NULL, 0, &l), 0);
    CHECK(l.year == 1970 && l.month == 1 && l.mday == 1 && l.wday == 4 && l.utoff == 0);
    CHECK_STR(l.abbr, "UTC");
    CHECK_INT(cron_tz_to_local(NULL, CRON_TIME_MAX, &l), 0);
    CHECK(l.year == 9999 && l.month == 12 && l.mday == 31 && l.hour == 23 && l.sec == 59);
    CHECK_INT(cron_tz_to_local(NULL, CRON_TIME_MIN, &l), 0);
    CHECK(l.year == 1 && l.month == 1 && l.mday == 1 && l.wday == 1);
    CHECK_INT(cron_tz_to_local(NULL, CRON_TIME_MAX + 1, &l), -1);
    CHECK_INT(cron_tz_to_local(ny, CRON_TIME_MIN, &l), -1); /* year 0 locally */

    memset(&w, 0, sizeof(w));
    w.year = 2026;
    w.month = 3;
    w.mday = 8;
    w.hour = 2;
    w.min = 30;
    CHECK_INT(cron_tz_from_local(ny, &w, out), 0); /* skipped */
    w.hour = 1;
    CHECK_INT(cron_tz_from_local(ny, &w, out), 1);
    CHECK_INT(out[0], iso("2026-03-08T06:30:00Z"));
    w.month = 11;
    w.mday = 1;
    CHECK_INT(cron_tz_from_local(ny, &w, out), 2); /* repeated */
    CHECK_INT(out[0], iso("2026-11-01T05:30:00Z"));
    CHECK_INT(out[1], iso("2026-11-01T06:30:00Z"));
    w.month = 7;
    w.hour = 12;
    w.min = 0;
    CHECK_INT(cron_tz_from_local(ny, &w, out), 1);
    CHECK_INT(out[0], iso("2026-07-01T16:00:00Z"));
    w.year = 2040; /* footer */
    CHECK_INT(cron_tz_from_local(ny, &w, out), 1);
    CHECK_INT(out[0], iso("2040-07-01T16:00:00Z"));
    CHECK_INT(cron_tz_from_local(NULL, &w, out), 1);
    CHECK_INT(out[0], iso("2040-07-01T12:00:00Z"));
    /* Lord Howe: half an hour repeated, half an hour skipped. */
    w.year = 2026;
    w.month = 4;
    w.mday = 5;
    w.hour = 1;
    w.min = 45;
    CHECK_INT(cron_tz_from_local(lh, &w, out), 2);
    CHECK_INT(out[1] - out[0], 1800);
    CHECK_INT(out[0], iso("2026-04-04T14:45:00Z"));
    w.month = 10;
    w.mday = 4;
    w.hour = 2;
    w.min = 15;
    CHECK_INT(cron_tz_from_local(lh, &w, out), 0);
    w.min = 30;
    CHECK_INT(cron_tz_from_local(lh, &w, out), 1);
    CHECK_INT(out[0], iso("2026-10-03T15:30:00Z"));
    /* Invalid wall times. */
    w.month = 2;
    w.mday = 29; /* 2026 is not a leap year */
    CHECK_INT(cron_tz_from_local(ny, &w, out), -1);
    w.year = 2028;
    CHECK_INT(cron_tz_from_local(ny, &w, out), 1);
    w.month = 13;
    CHECK_INT(cron_tz_from_local(ny, &w, out), -1);
    w.month = 4;
    w.mday = 31;
    CHECK_INT(cron_tz_from_local(ny, &w, out), -1);
    w.mday = 30;
    w.hour = 24;
    CHECK_INT(cron_tz_from_local(ny, &w, out), -1);
    w.hour = 0;
    w.sec = 60;
    CHECK_INT(cron_tz_from_local(ny, &w, out), -1);
    w.sec = 0;
    w.year = 0;
    CHECK_INT(cron_tz_from_local(ny, &w, out), -1);
    w.year = 10000;
    CHECK_INT(cron_tz_from_local(ny, &w, out), -1);

    /* cron_next at the ends of the range. */
    {
        struct cron c;

        CHECK_INT(cron_parse("0 0 1 1 *", &c, err, sizeof(err)), 0);
        CHECK_INT(cron_next(&c, NULL, CRON_TIME_MAX), -1);
        CHECK_INT(cron_next(&c, NULL, CRON_TIME_MIN - 1), -1);
        CHECK_INT(cron_next(&c, NULL, INT64_MAX), -1);
        CHECK_INT(cron_next(&c, NULL, INT64_MIN), -1);
        CHECK_INT(cron_next(&c, ny, iso("9999-06-01T00:00:00Z")), -1);
        CHECK_INT(cron_next(&c, NULL, CRON_TIME_MIN), iso("0002-01-01T00:00:00Z"));
        CHECK_INT(cron_next(&c, ny, iso("9998-06-01T00:00:00Z")), iso("9999-01-01T05:00:00Z"));
    }
out:
    cron_tz_free(ny);
    cron_tz_free(lh);
}

/* ------------------------------------------------------------ zone files */

static char tmpdir[64];

static void write_file(const char *rel, const void *data, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
}

static void remove_file(const char *rel)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    unlink(path);
}

static unsigned char *read_system_zone(const char *name, size_t *len)
{
    char path[256];
    FILE *f;
    unsigned char *buf = malloc(CRON_TZ_FILE_MAX);

    snprintf(path, sizeof(path), "%s/%s", CRON_TZ_DEFAULT_DIR, name);
    f = fopen(path, "rb");
    *len = 0;
    if (f == NULL || buf == NULL) {
        if (f != NULL)
            fclose(f);
        free(buf);
        return NULL;
    }
    *len = fread(buf, 1, CRON_TZ_FILE_MAX, f);
    fclose(f);
    return buf;
}

/* A TZif file in memory (RFC 8536), version '2', with the same data in
 * both blocks (32-bit times in the first), and footer. */
struct tzif_out {
    unsigned char buf[4096];
    size_t len;
};

static void put(struct tzif_out *o, const void *p, size_t n)
{
    if (n > 0 && o->len + n <= sizeof(o->buf)) {
        memcpy(o->buf + o->len, p, n);
        o->len += n;
    }
}

static void put32(struct tzif_out *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(o, b, 4);
}

static void put64(struct tzif_out *o, int64_t v)
{
    put32(o, (uint32_t)((uint64_t)v >> 32));
    put32(o, (uint32_t)v);
}

struct ttype {
    int32_t utoff;
    int isdst;
    int abbr; /* index into chars */
};

static void tzif_build(struct tzif_out *o, char version, size_t ntrans, const int64_t *trans,
                       const unsigned char *idx, size_t ntypes, const struct ttype *types,
                       const char *chars, size_t nchars, const char *footer)
{
    o->len = 0;
    for (int pass = 0; pass < (version == 0 ? 1 : 2); pass++) {
        unsigned char hdr[20] = {'T', 'Z', 'i', 'f', (unsigned char)version};

        put(o, hdr, sizeof(hdr));
        put32(o, 0); /* isutcnt */
        put32(o, 0); /* isstdcnt */
        put32(o, 0); /* leapcnt */
        put32(o, (uint32_t)ntrans);
        put32(o, (uint32_t)ntypes);
        put32(o, (uint32_t)nchars);
        for (size_t i = 0; i < ntrans; i++) {
            if (pass == 0)
                put32(o, (uint32_t)(int32_t)trans[i]);
            else
                put64(o, trans[i]);
        }
        put(o, idx, ntrans);
        for (size_t i = 0; i < ntypes; i++) {
            unsigned char b[2] = {(unsigned char)types[i].isdst, (unsigned char)types[i].abbr};

            put32(o, (uint32_t)types[i].utoff);
            put(o, b, 2);
        }
        put(o, chars, nchars);
    }
    if (version != 0) {
        put(o, "\n", 1);
        put(o, footer, strlen(footer));
        put(o, "\n", 1);
    }
}

/* A zone made of one type and footer (so the footer holds everywhere). */
static struct cron_tz *footer_zone(const char *footer, char *err, size_t errlen)
{
    struct tzif_out o;
    struct ttype t = {0, 0, 0};
    struct cron_tz *tz = NULL;

    tzif_build(&o, '2', 0, NULL, NULL, 1, &t, "ZZZ", 4, footer);
    if (cron_tz_parse("Test/Footer", o.buf, o.len, &tz, err, errlen) != 0)
        return NULL;
    return tz;
}

static void check_local(const struct cron_tz *tz, const char *utc, const char *want)
{
    char got[64];

    local_str(tz, iso(utc), got, sizeof(got));
    if (strcmp(got, want) != 0)
        fprintf(stderr, "%s in %s: %s, expected %s\n", utc, cron_tz_name(tz), got, want);
    CHECK_STR(got, want);
}

/* The footer's TZ string forms, against zdump -v of the same string. */
static void test_footers(void)
{
    char err[256];
    struct cron_tz *tz;

    tz = footer_zone("<+03>-3", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2026-07-01T00:00:00Z", "2026-07-01 03:00 +03");
    cron_tz_free(tz);

    tz = footer_zone("LMT-0:53:28", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2026-07-01T00:00:00Z", "2026-07-01 00:53 LMT");
    cron_tz_free(tz);

    /* A dst without rules takes the US ones. */
    tz = footer_zone("EST5EDT", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2026-03-08T06:59:59Z", "2026-03-08 01:59 EST");
    check_local(tz, "2026-03-08T07:00:00Z", "2026-03-08 03:00 EDT");
    check_local(tz, "2026-11-01T05:59:59Z", "2026-11-01 01:59 EDT");
    check_local(tz, "2026-11-01T06:00:00Z", "2026-11-01 01:00 EST");
    cron_tz_free(tz);

    /* Negative and over-24 hours in rule times (RFC 8536 3.3.1). */
    tz = footer_zone("XXX3YYY,M3.2.0/-1,M11.1.0/26", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2028-03-12T01:59:59Z", "2028-03-11 22:59 XXX");
    check_local(tz, "2028-03-12T02:00:00Z", "2028-03-12 00:00 YYY");
    check_local(tz, "2028-11-06T03:59:59Z", "2028-11-06 01:59 YYY");
    check_local(tz, "2028-11-06T04:00:00Z", "2028-11-06 01:00 XXX");
    cron_tz_free(tz);

    /* Jn never counts Feb 29; n does. 2028 is a leap year. */
    tz = footer_zone("XXX3YYY,J60/2,J300/2", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2028-03-01T04:59:59Z", "2028-03-01 01:59 XXX");
    check_local(tz, "2028-03-01T05:00:00Z", "2028-03-01 03:00 YYY");
    check_local(tz, "2028-10-27T04:00:00Z", "2028-10-27 01:00 XXX");
    cron_tz_free(tz);
    tz = footer_zone("XXX3YYY,59/2,299/2", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2028-02-29T04:59:59Z", "2028-02-29 01:59 XXX");
    check_local(tz, "2028-02-29T05:00:00Z", "2028-02-29 03:00 YYY");
    check_local(tz, "2028-10-26T04:00:00Z", "2028-10-26 01:00 XXX");
    cron_tz_free(tz);

    /* Dublin: standard time in summer, "DST" (GMT) in winter. */
    tz = footer_zone("IST-1GMT0,M10.5.0,M3.5.0/1", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2028-03-26T00:59:59Z", "2028-03-26 00:59 GMT");
    check_local(tz, "2028-03-26T01:00:00Z", "2028-03-26 02:00 IST");
    check_local(tz, "2028-10-29T00:59:59Z", "2028-10-29 01:59 IST");
    check_local(tz, "2028-10-29T01:00:00Z", "2028-10-29 01:00 GMT");
    cron_tz_free(tz);

    /* DST all year (RFC 8536 3.3.1's example): no change at the year's
     * end, so a daily job runs on Dec 31 and Jan 1 once each. */
    tz = footer_zone("EST5EDT,0/0,J365/25", err, sizeof(err));
    CHECK(tz != NULL);
    if (tz != NULL) {
        struct cron c;

        check_local(tz, "2028-01-01T03:59:59Z", "2027-12-31 23:59 EDT");
        check_local(tz, "2028-01-01T04:00:00Z", "2028-01-01 00:00 EDT");
        check_local(tz, "2028-07-01T04:00:00Z", "2028-07-01 00:00 EDT");
        check_local(tz, "2029-01-01T04:59:59Z", "2029-01-01 00:59 EDT");
        CHECK_INT(cron_parse("30 0 * * *", &c, err, sizeof(err)), 0);
        CHECK_INT(cron_next(&c, tz, iso("2028-12-31T00:00:00Z")), iso("2028-12-31T04:30:00Z"));
        CHECK_INT(cron_next(&c, tz, iso("2028-12-31T04:30:00Z")), iso("2029-01-01T04:30:00Z"));
        cron_tz_free(tz);
    }

    /* Lord Howe's string, and Berlin's. */
    tz = footer_zone("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2026-04-04T14:59:59Z", "2026-04-05 01:59 +11");
    check_local(tz, "2026-04-04T15:00:00Z", "2026-04-05 01:30 +1030");
    check_local(tz, "2026-10-03T15:30:00Z", "2026-10-04 02:30 +11");
    cron_tz_free(tz);
    tz = footer_zone("CET-1CEST,M3.5.0,M10.5.0/3", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2026-03-29T01:00:00Z", "2026-03-29 03:00 CEST");
    check_local(tz, "2026-10-25T01:00:00Z", "2026-10-25 02:00 CET");
    cron_tz_free(tz);

    /* An empty footer: the last type holds on. */
    tz = footer_zone("", err, sizeof(err));
    CHECK(tz != NULL);
    check_local(tz, "2026-07-01T00:00:00Z", "2026-07-01 00:00 ZZZ");
    cron_tz_free(tz);

    /* Bad TZ strings. */
    {
        static const char *const bad[] = {
            "EST",
            "EST5EDT,M3.2.0",
            "EST5EDT,M13.1.0,M11.1.0",
            "EST5EDT,M3.6.0,M11.1.0",
            "EST5EDT,M3.2.7,M11.1.0",
            "EST5EDT,M3.2.0,M11.1",
            "EST5EDT,J0,J365",
            "EST5EDT,J366,J1",
            "EST5EDT,366,0",
            "EST5EDT,M3.2.0/168,M11.1.0",
            "EST5EDT,M3.2.0/2:60,M11.1.0",
            "EST25",
            "EST5:60",
            "<AB>5",
            "AB5",
            "<EST5",
            "EST5,M3.2.0,M11.1.0",
            "EST5EDT4,",
            "EST5 ",
            "EST5EDT,M3.2.0,M11.1.0x",
            "EST5EDT,M3.2.0,M11.1.0/",
            "E1ST5",
            "ABCDEFGHIJKLMNOP5",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char want[256];

            err[0] = '\0';
            tz = footer_zone(bad[i], err, sizeof(err));
            CHECK(tz == NULL);
            cron_tz_free(tz);
            snprintf(want, sizeof(want),
                     "invalid time zone file for \"Test/Footer\": bad footer \"%s\"", bad[i]);
            CHECK_STR(err, want);
        }
    }
}

/* A synthetic table: the transitions, the type before the first, the
 * footer after the last; version 1 (no footer, 32-bit times) too. */
static void test_table_zone(void)
{
    static const int64_t trans[] = {1000000000, 1100000000, 1200000000};
    static const unsigned char idx[] = {1, 2, 1};
    static const struct ttype types[] = {{3600, 0, 0}, {7200, 1, 4}, {-1800, 0, 8}};
    static const char chars[] = "AAA\0BBB\0CCC\0";
    struct tzif_out o;
    struct cron_tz *tz = NULL;
    struct cron_local l;
    char err[256];

    tzif_build(&o, '2', 3, trans, idx, 3, types, chars, sizeof(chars) - 1, "DDD-5");
    CHECK_INT(cron_tz_parse("Test/Table", o.buf, o.len, &tz, err, sizeof(err)), 0);
    if (tz != NULL) {
        CHECK(cron_tz_to_local(tz, 999999999, &l) == 0 && l.utoff == 3600);
        CHECK_STR(l.abbr, "AAA");
        CHECK(cron_tz_to_local(tz, 1000000000, &l) == 0 && l.utoff == 7200 && l.isdst);
        CHECK(cron_tz_to_local(tz, 1100000000, &l) == 0 && l.utoff == -1800);
        CHECK(cron_tz_to_local(tz, 1199999999, &l) == 0 && l.utoff == -1800);
        /* From the last transition on, the footer (zic makes them agree;
         * here they do not, to tell them apart). */
        CHECK(cron_tz_to_local(tz, 1200000000, &l) == 0 && l.utoff == 18000);
        CHECK_STR(l.abbr, "DDD");
        CHECK(cron_tz_to_local(tz, 1300000000, &l) == 0 && l.utoff == 18000);
        CHECK_STR(l.abbr, "DDD");
        cron_tz_free(tz);
    }
    tz = NULL;
    tzif_build(&o, 0, 3, trans, idx, 3, types, chars, sizeof(chars) - 1, "");
    CHECK_INT(cron_tz_parse("Test/V1", o.buf, o.len, &tz, err, sizeof(err)), 0);
    if (tz != NULL) {
        CHECK(cron_tz_to_local(tz, 1300000000, &l) == 0 && l.utoff == 7200);
        CHECK_STR(l.abbr, "BBB");
        cron_tz_free(tz);
    }
    /* Version 3 and 4 are read like 2; 5 is refused. */
    tzif_build(&o, '3', 3, trans, idx, 3, types, chars, sizeof(chars) - 1, "DDD-5");
    CHECK_INT(cron_tz_parse("Test/V3", o.buf, o.len, &tz, err, sizeof(err)), 0);
    cron_tz_free(tz);
    tzif_build(&o, '4', 3, trans, idx, 3, types, chars, sizeof(chars) - 1, "DDD-5");
    CHECK_INT(cron_tz_parse("Test/V4", o.buf, o.len, &tz, err, sizeof(err)), 0);
    cron_tz_free(tz);
}

struct corrupt_case {
    const char *why;     /* expected reason, after "invalid time zone file for \"Bad/x\": " */
    size_t at;           /* byte to overwrite (in the 64-bit part: offset from its header) */
    int second;          /* 1: at counts from the second header */
    unsigned char value; /* written there */
    int width;           /* 1 byte, or 4: value in the low byte of a big-endian count */
};

static void test_corrupt_files(void)
{
    static const int64_t trans[] = {1000000000, 1100000000};
    static const unsigned char idx[] = {1, 0};
    static const struct ttype types[] = {{3600, 0, 0}, {7200, 1, 4}};
    static const char chars[] = "AAA\0BBB\0";
    /* Offsets in the second (64-bit) part: header 44, times 16, idx 2,
     * types 12, chars 8. */
    static const struct corrupt_case cases[] = {
        {"bad magic (not a TZif file)", 0, 0, 'X', 1},
        {"unsupported version", 4, 0, '5', 1},
        {"unsupported version", 4, 1, '1', 1},
        {"second header has version 1", 4, 1, 0, 1},
        {"bad magic (not a TZif file)", 1, 1, 'x', 1},
        {"no time types", 36, 1, 0, 4},
        {"indicator counts do not match the time types", 20, 1, 1, 4},
        {"indicator counts do not match the time types", 24, 1, 3, 4},
        {"leap-second records (a right/ zone; its times are not Unix times)", 28, 1, 1, 4},
        {"truncated data", 32, 1, 200, 4},
        {"truncated data", 40, 1, 255, 4},
        {"truncated data", 32, 0, 200, 4},
        {"transition times out of order", 44 + 8 + 4, 1, 0x30, 1},
        {"transition names a missing time type", 44 + 16, 1, 2, 1},
        {"offset out of range", 44 + 18, 1, 0x7f, 1},
        {"bad isdst flag", 44 + 18 + 4, 1, 2, 1},
        {"abbreviation index out of range", 44 + 18 + 5, 1, 8, 1},
        {"transition time out of range", 44, 1, 0x7f, 1},
        {"missing footer", 44 + 38, 1, 'x', 1},
    };
    struct tzif_out o;
    size_t v1len;
    struct cron_tz *tz = NULL;
    char err[256], want[256];
    int fds = count_fds();

    tzif_build(&o, '2', 2, trans, idx, 2, types, chars, sizeof(chars) - 1, "AAA-1");
    v1len = 44 + 2 * 4 + 2 + 2 * 6 + 8;
    write_file("good", o.buf, o.len);
    CHECK_INT(cron_tz_load_dir("good", tmpdir, &tz, err, sizeof(err)), 0);
    cron_tz_free(tz);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tzif_out b = o;
        size_t at = cases[i].at + (cases[i].second ? v1len : 0);

        if (cases[i].width == 4)
            memset(b.buf + at, 0, 3), at += 3;
        b.buf[at] = cases[i].value;
        write_file("x", b.buf, b.len);
        tz = NULL;
        CHECK_INT(cron_tz_load_dir("x", tmpdir, &tz, err, sizeof(err)), -1);
        CHECK(tz == NULL);
        snprintf(want, sizeof(want), "invalid time zone file for \"x\": %s", cases[i].why);
        if (strcmp(err, want) != 0)
            fprintf(stderr, "corrupt case %zu\n", i);
        CHECK_STR(err, want);
    }
    /* An abbreviation without its NUL. */
    {
        struct tzif_out b = o;

        b.buf[b.len - 8] = 'Z'; /* "\nAAA-1\n" ends the file; chars' last NUL before it */
        write_file("x", b.buf, b.len);
        CHECK_INT(cron_tz_load_dir("x", tmpdir, &tz, err, sizeof(err)), -1);
        CHECK_STR(err, "invalid time zone file for \"x\": abbreviation not NUL-terminated");
    }
    /* Every truncation fails, with a reason. */
    for (size_t n = 0; n < o.len; n++) {
        write_file("x", o.buf, n);
        tz = NULL;
        err[0] = '\0';
        CHECK_INT(cron_tz_load_dir("x", tmpdir, &tz, err, sizeof(err)), -1);
        CHECK(tz == NULL && strncmp(err, "invalid time zone file for \"x\": ", 32) == 0);
    }
    CHECK_STR(err, "invalid time zone file for \"x\": unterminated footer");
    /* So does every truncation of a real zone. */
    {
        size_t len;
        unsigned char *real = read_system_zone("America/New_York", &len);
        int all_failed = 1;

        CHECK(real != NULL && len > 1000);
        for (size_t n = 0; real != NULL && n < len; n++) {
            tz = NULL;
            if (cron_tz_parse("x", real, n, &tz, err, sizeof(err)) == 0) {
                all_failed = 0;
                cron_tz_free(tz);
            }
        }
        CHECK(all_failed);
        if (real != NULL) {
            CHECK_INT(cron_tz_parse("x", real, len, &tz, err, sizeof(err)), 0);
            cron_tz_free(tz);
        }
        free(real);
    }
    /* Too big (by a byte), the cap itself is read. */
    {
        unsigned char *big = calloc(1, CRON_TZ_FILE_MAX + 1);

        CHECK(big != NULL);
        if (big != NULL) {
            memcpy(big, o.buf, o.len);
            write_file("x", big, CRON_TZ_FILE_MAX + 1);
            CHECK_INT(cron_tz_load_dir("x", tmpdir, &tz, err, sizeof(err)), -1);
            CHECK_STR(err, "invalid time zone file for \"x\": larger than 65536 bytes");
            write_file("x", big, CRON_TZ_FILE_MAX);
            CHECK_INT(cron_tz_load_dir("x", tmpdir, &tz, err, sizeof(err)), 0); /* trailing 0s */
            cron_tz_free(tz);
            free(big);
        }
    }
    write_file("x", "", 0);
    CHECK_INT(cron_tz_load_dir("x", tmpdir, &tz, err, sizeof(err)), -1);
    CHECK_STR(err, "invalid time zone file for \"x\": truncated header");
    remove_file("x");
    remove_file("good");

    /* A real right/ zone: leap seconds. */
    CHECK_INT(cron_tz_load_dir("right/Europe/Berlin", NULL, &tz, err, sizeof(err)), -1);
    CHECK_STR(err, "invalid time zone file for \"right/Europe/Berlin\": leap-second records "
                   "(a right/ zone; its times are not Unix times)");
    CHECK_INT(count_fds(), fds);
}

static void test_names_and_dirs(void)
{
    static const char *const bad[] = {
        "../etc/passwd",   "/etc/passwd",  "Europe//Berlin", "Europe/",         "",
        "Europe/Berlin.",  "a b",          "Europe/../x",    "./UTC",           "Europe/Ber\\lin",
        "Europe/Berlin\n", "Europe/Ber*n", "~root",          "Etc/GMT+1/",      "/",
        "x/./y",           "%s%s%n",       "Europe/Berlin;", "Europe/Berl\xc3n"};
    struct cron_tz *tz = NULL, *keep = (struct cron_tz *)&tz;
    char err[256], want[300], path[256];
    char longname[CRON_TZ_NAME_MAX + 2];
    int fds = count_fds();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tz = keep;
        CHECK_INT(cron_tz_load_dir(bad[i], tmpdir, &tz, err, sizeof(err)), -1);
        CHECK(tz == keep);
        if (strchr(bad[i], '\n') != NULL || strchr(bad[i], '\xc3') != NULL)
            snprintf(want, sizeof(want), "invalid time zone name");
        else
            snprintf(want, sizeof(want), "invalid time zone name \"%s\"", bad[i]);
        CHECK_STR(err, want);
    }
    memset(longname, 'a', sizeof(longname));
    longname[CRON_TZ_NAME_MAX + 1] = '\0';
    CHECK_INT(cron_tz_load_dir(longname, tmpdir, &tz, err, sizeof(err)), -1);
    longname[CRON_TZ_NAME_MAX] = '\0';
    CHECK_INT(cron_tz_load_dir(longname, tmpdir, &tz, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "unknown time zone \"%s\"", longname);
    CHECK_STR(err, want);
    CHECK_INT(cron_tz_load_dir(NULL, tmpdir, &tz, err, sizeof(err)), -1);

    /* Names that pass but name nothing, a directory, a FIFO. */
    CHECK_INT(cron_tz_load_dir("Mars/Olympus_Mons", NULL, &tz, err, sizeof(err)), -1);
    CHECK_STR(err, "unknown time zone \"Mars/Olympus_Mons\"");
    CHECK_INT(cron_tz_load_dir("Europe", NULL, &tz, err, sizeof(err)), -1);
    CHECK_STR(err, "unknown time zone \"Europe\"");
    CHECK_INT(cron_tz_load_dir("Europe/Berlin/x", NULL, &tz, err, sizeof(err)), -1);
    CHECK_STR(err, "unknown time zone \"Europe/Berlin/x\"");
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK_INT(cron_tz_load_dir("fifo", tmpdir, &tz, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "time zone file %s is not a regular file", path);
    CHECK_STR(err, want);
    unlink(path);

    /* UTC needs no directory at all. */
    tz = NULL;
    CHECK_INT(cron_tz_load_dir("UTC", "/nonexistent", &tz, err, sizeof(err)), 0);
    CHECK(tz != NULL);
    if (tz != NULL) {
        struct cron_local l;

        CHECK_STR(cron_tz_name(tz), "UTC");
        CHECK(cron_tz_to_local(tz, 86400 * 365, &l) == 0 && l.year == 1971 && l.utoff == 0);
        CHECK_STR(l.abbr, "UTC");
    }
    cron_tz_free(tz);
    tz = NULL;
    CHECK_INT(cron_tz_load_dir("Etc/UTC", "/nonexistent", &tz, err, sizeof(err)), 0);
    CHECK_STR(cron_tz_name(tz), "Etc/UTC");
    cron_tz_free(tz);
    cron_tz_free(NULL);

    /* WF_ZONEINFO_DIR: another directory (here, with Berlin's bytes). */
    {
        size_t len;
        unsigned char *berlin = read_system_zone("Europe/Berlin", &len);
        struct cron_local l;

        snprintf(path, sizeof(path), "%s/Test", tmpdir);
        CHECK(mkdir(path, 0700) == 0);
        if (berlin != NULL)
            write_file("Test/Zone", berlin, len);
        free(berlin);
        setenv(CRON_TZ_DIR_ENV, tmpdir, 1);
        tz = NULL;
        CHECK_INT(cron_tz_load("Test/Zone", &tz, err, sizeof(err)), 0);
        CHECK(tz != NULL && cron_tz_to_local(tz, iso("2026-07-01T00:00:00Z"), &l) == 0 &&
              l.utoff == 7200);
        cron_tz_free(tz);
        CHECK_INT(cron_tz_load("Europe/Berlin", &tz, err, sizeof(err)), -1);
        CHECK_STR(err, "unknown time zone \"Europe/Berlin\"");
        CHECK_INT(cron_tz_load("UTC", &tz, err, sizeof(err)), 0);
        cron_tz_free(tz);
        setenv(CRON_TZ_DIR_ENV, "", 1); /* empty: the default */
        CHECK_INT(cron_tz_load("Europe/Berlin", &tz, err, sizeof(err)), 0);
        cron_tz_free(tz);
        unsetenv(CRON_TZ_DIR_ENV);
        remove_file("Test/Zone");
        rmdir(path);
    }
    CHECK_INT(count_fds(), fds);
}

int main(void)
{
    const char *zones[] = {"Europe/Berlin", "America/New_York"};

    unsetenv(CRON_TZ_DIR_ENV);
    if (access(CRON_TZ_DEFAULT_DIR "/Europe/Berlin", R_OK) != 0) {
        fprintf(stderr, "test_cron: %s/Europe/Berlin: %s (install tzdata)\n", CRON_TZ_DEFAULT_DIR,
                strerror(errno));
        return 1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s", "/tmp/test_cron.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    test_parse_forms();
    test_parse_errors();
    test_next_table();
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
        test_daily_every_day(zones[i]);
    test_conversions();
    test_footers();
    test_table_zone();
    test_corrupt_files();
    test_names_and_dirs();

    rmdir(tmpdir);
    TEST_REPORT("test_cron");
}
