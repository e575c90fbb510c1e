/*
 * cron.h: cron expressions and IANA time zones, the pure computation that
 * schedules (issue #11) stand on: parse a 5-field expression, load a zone's
 * TZif file, convert between UTC instants and local wall time, and find the
 * next fire instant of an expression in a zone. No I/O but the one read of a
 * zone file in cron_tz_load*, no clocks, no global state and no use of the
 * process's TZ (no setenv/tzset/localtime: core is multi-threaded), so every
 * function may be called from any thread; a loaded struct cron_tz is
 * read-only and may be shared between threads.
 *
 * Instants are Unix seconds (UTC, no leap seconds) as int64_t, supported
 * from 0001-01-01 to 9999-12-31; "wall time" is local calendar time.
 *
 * Syntax (cron_parse): minute hour day-of-month month day-of-week,
 * separated by blanks. Each field is a comma-separated list of `*`, `n`,
 * `a-b`, a step over all values (`*` then `/n`: every n from the field's
 * minimum), `a-b/n` and `a/n` (from a up to the field's maximum, every n).
 * Months take JAN-DEC, days of week SUN-SAT, both case-insensitive. Day of
 * week is 0-7, 0 and 7 both Sunday; there `*` and `a/n` span 0-6, and a
 * range ending in 0 or SUN ends on Sunday (`FRI-SUN`, as cronie reads it).
 * Shortcuts: @yearly (@annually), @monthly, @weekly, @daily (@midnight),
 * @hourly. Day rule (Vixie cron): if both day-of-month and day-of-week are
 * restricted (neither starts with `*`), a day matches when either matches;
 * otherwise both must match. Not accepted: seconds or a year field (6-7
 * fields), `?`, `L`, `W`, `#`, `~`, @reboot, a step of 0 or past the
 * field's maximum, a reversed range.
 *
 * DST (cron_next), after cronie's cron.c (its "wildcard" and "fixed-time"
 * jobs, told apart by the flags MIN_STAR and HR_STAR of entry.c):
 *   - A fixed-time expression (neither its minute nor its hour field starts
 *     with `*`: `30 2 * * *`, `0 1 * * *`, @daily) fires once per matching
 *     wall time. A wall time skipped by a spring-forward gap fires at the
 *     first instant after the gap (the transition itself: 02:30 on a US
 *     spring-forward day fires at 03:00 EDT), as cronie runs the fixed-time
 *     jobs of the skipped minutes when it wakes after the jump; several
 *     skipped matches fire once. A wall time that occurs twice in a
 *     fall-back fires at its first occurrence only, as cronie does not run
 *     fixed-time jobs again while the clock repeats an hour. So a daily job
 *     runs every day exactly once.
 *   - A wildcard expression (its minute or hour field starts with `*`, a
 *     `*` with a step included: every 15 minutes, `0 * * * *`, @hourly)
 *     follows real instants: it fires at every instant whose wall time
 *     matches, so in a repeated hour `0 * * * *` fires at both 01:00s, and
 *     the wall times of a gap do not fire (01:00 EST is followed by 03:00
 *     EDT, one hour later), as cronie runs wildcard jobs for the current
 *     minute only. A consequence shared with cronie: every 15 minutes of
 *     hour 2 (`*` then `/15 2 * * *`) does not fire on a day whose 02:xx is
 *     skipped, and fires 8 times on a day whose 02:xx repeats.
 *   Unlike cronie, which takes a jump of over 3 hours for a clock change and
 *   runs only the jobs of the minute it lands on, the gap rule holds for
 *   gaps of any length: a zone that skips a whole day fires that day's
 *   fixed-time jobs once, at the end of the gap.
 *
 * Errors: functions return 0 (or a count) on success and -1 on failure; the
 * ones taking err/errlen write a short factual message there (truncated to
 * errlen, always NUL-terminated when errlen > 0) and leave their outputs
 * untouched.
 */
#ifndef WF_CRON_H
#define WF_CRON_H

#include <stddef.h>
#include <stdint.h>

#define CRON_EXPR_MAX 256            /* bytes of an expression */
#define CRON_TZ_NAME_MAX 64          /* bytes of a zone name */
#define CRON_TZ_ABBR_MAX 15          /* bytes of an abbreviation ("CEST") */
#define CRON_TZ_FILE_MAX (64 * 1024) /* bytes of a TZif file (real ones: < 4 KiB) */
#define CRON_TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define CRON_TZ_DIR_ENV "WF_ZONEINFO_DIR"      /* overrides the default directory */
#define CRON_HORIZON_SECS (3660LL * 24 * 3600) /* cron_next looks ~10 years ahead */
#define CRON_TIME_MIN (-62135596800LL)         /* 0001-01-01T00:00:00Z */
#define CRON_TIME_MAX 253402300799LL           /* 9999-12-31T23:59:59Z */

/* Flags of struct cron: which fields start with `*` (cronie's *_STAR). */
#define CRON_MIN_STAR 0x1u  /* minute field starts with `*` */
#define CRON_HOUR_STAR 0x2u /* hour field starts with `*` */
#define CRON_DOM_STAR 0x4u  /* day-of-month field starts with `*` */
#define CRON_DOW_STAR 0x8u  /* day-of-week field starts with `*` */

/* A parsed expression: one bit per allowed value. Plain data: copy it,
 * compare it, store it by value. */
struct cron {
    uint64_t minute; /* bits 0-59 */
    uint32_t hour;   /* bits 0-23 */
    uint32_t dom;    /* bits 1-31 */
    uint16_t month;  /* bits 1-12 */
    uint8_t dow;     /* bits 0-6, 0 = Sunday (a 7 is stored as 0) */
    uint8_t flags;   /* CRON_*_STAR */
};

/* A loaded time zone (opaque, immutable once loaded). */
struct cron_tz;

/* Local time of an instant in a zone. */
struct cron_local {
    int year;                        /* 1..9999 */
    int month;                       /* 1..12 */
    int mday;                        /* 1..31 */
    int hour;                        /* 0..23 */
    int min;                         /* 0..59 */
    int sec;                         /* 0..59 */
    int wday;                        /* 0..6, 0 = Sunday */
    int32_t utoff;                   /* seconds east of UTC */
    int isdst;                       /* 1 during daylight saving time */
    char abbr[CRON_TZ_ABBR_MAX + 1]; /* "CEST", "+1030", "LMT"; may be "" */
};

/*
 * Parses expr (NUL-terminated, at most CRON_EXPR_MAX bytes) into *out.
 * Returns 0, or -1 with *out untouched and err holding e.g.
 * "cron field 2 (hour): 24 is out of range 0-23".
 */
int cron_parse(const char *expr, struct cron *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 1 if the wall time l->month, mday, hour, min, wday matches c, else 0
 * (seconds and the other fields are ignored). */
int cron_matches(const struct cron *c, const struct cron_local *l);

/*
 * Loads the zone called name: "UTC" and "Etc/UTC" are built in (no file);
 * any other name must be made of components of [A-Za-z0-9_+-] separated by
 * single '/', at most CRON_TZ_NAME_MAX bytes, and is read from
 * <dir>/<name>, dir being the environment's WF_ZONEINFO_DIR if set and not
 * empty, else /usr/share/zoneinfo (cron_tz_load), or the dir given
 * (cron_tz_load_dir; NULL means the same default). The file is untrusted
 * input: checked as cron_tz_parse does.
 * Returns 0 with *out a malloc'ed zone the caller frees with cron_tz_free,
 * or -1 with *out untouched and a message in err ("unknown time zone
 * \"Mars/Base\"", "invalid time zone name \"../etc\"", ...).
 */
int cron_tz_load(const char *name, struct cron_tz **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int cron_tz_load_dir(const char *name, const char *dir, struct cron_tz **out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/*
 * Builds the zone called name (only recorded, not checked) from the TZif
 * bytes buf[0..len-1] (RFC 8536, versions 1 to 4; the 64-bit block of
 * version 2 and later; the footer's POSIX TZ string for instants after the
 * last transition). Rejects: a file over CRON_TZ_FILE_MAX, a bad magic or
 * version, counts that do not fit the data, no time types, a transition
 * out of order or naming a missing type, an offset outside -25:59:59 to
 * +25:59:59, leap-second records (a right/ zone, whose times are not Unix
 * times), a footer that is missing or does not parse.
 * Returns 0 with *out malloc'ed (free with cron_tz_free), or -1 with *out
 * untouched and a message in err.
 */
int cron_tz_parse(const char *name, const unsigned char *buf, size_t len, struct cron_tz **out,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

/* Frees tz; NULL is a no-op. */
void cron_tz_free(struct cron_tz *tz);

/* The name tz was loaded under; owned by tz. */
const char *cron_tz_name(const struct cron_tz *tz);

/*
 * The local time of instant t in tz (NULL tz: UTC). Returns 0, or -1 with
 * *out untouched if t is outside CRON_TIME_MIN..CRON_TIME_MAX or its local
 * date outside years 1..9999.
 */
int cron_tz_to_local(const struct cron_tz *tz, int64_t t, struct cron_local *out)
    __attribute__((warn_unused_result));

/*
 * The instants whose local time in tz (NULL tz: UTC) is the wall time
 * wall->year..wall->sec (the other fields are ignored), ascending, in
 * out[0..n-1]: n is 0 for a wall time skipped by a gap, 2 for one repeated
 * by a fall-back, else 1 (more than two, only possible in a file built to
 * do so, reports the first two). Returns n, or -1 for an invalid date or
 * time (month 13, 31 April, 24:00, a year outside 1..9999).
 */
int cron_tz_from_local(const struct cron_tz *tz, const struct cron_local *wall, int64_t out[2])
    __attribute__((warn_unused_result));

/*
 * The first instant strictly after `after` at which c fires in tz (NULL tz:
 * UTC), by the DST rules at the top of this file: a whole minute in local
 * time, but for the end of a gap (which is wherever the zone put it).
 * Returns -1 if there is none within CRON_HORIZON_SECS of after (`0 0 30
 * 2 *` never fires; the horizon is long enough for Feb 29 across 2100,
 * which is not a leap year), or after is outside the supported range.
 * Cost: a few steps per matching-or-skipped month, day and hour of the
 * searched span, never one per minute.
 */
int64_t cron_next(const struct cron *c, const struct cron_tz *tz, int64_t after)
    __attribute__((warn_unused_result));

#endif
