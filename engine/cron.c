/*
 * cron.c: see cron.h. Four parts, in order: the proleptic Gregorian
 * calendar (days since 1970-01-01 <-> year, month, day); cron expressions
 * (parse, match, the next matching wall time); time zones (TZif files, the
 * POSIX TZ string of their footer, spans of constant offset, conversions);
 * and cron_next, which walks those spans.
 *
 * Invariants:
 *   - A loaded zone is checked once, at load: its transitions ascend
 *     strictly and lie within +-2^60 s, every transition names an existing
 *     time type, every offset is under 26 hours either way, every
 *     abbreviation is NUL-terminated. So nothing below re-checks the data,
 *     and no sum of an instant and an offset can overflow.
 *   - A span [from, until) of constant offset always holds the instant it
 *     was asked for, and until > from, so walking spans always advances;
 *     TZ_BEGIN and TZ_END stand for "no transition" on either side.
 *   - "Wall time" below is local time as seconds since 1970-01-01 00:00 of
 *     the local calendar, so instant = wall - utoff within one span.
 * Nothing here allocates but cron_tz_parse (one zone, freed by
 * cron_tz_free) and cron_tz_load_dir (the file buffer, freed before it
 * returns); nothing keeps state between calls.
 */
#include "cron.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_SECS 86400
#define TZ_BEGIN (-(1LL << 62))    /* no transition before */
#define TZ_END (1LL << 62)         /* no transition after */
#define TZ_TRANS_LIMIT (1LL << 60) /* transitions lie within +-this */
#define TZ_UTOFF_MAX 93599         /* RFC 8536: offsets within -25:59:59..+25:59:59 */
#define TZ_TYPES_MAX 256           /* a transition's type index is one byte */
#define TZ_FOOTER_MAX 255          /* bytes of a footer's TZ string */
#define TZ_RULE_HOURS_MAX 167      /* RFC 8536 3.3.1: rule times within +-167 h */

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date of day z since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    return (int)((days % 7 + 11) % 7);
}

/* ---------------------------------------------------------------- parsing */

static const char *const month_names[12] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[7] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct field {
    const char *name;         /* as in messages */
    int min, max;             /* values accepted */
    int star_max;             /* top of `*` and of `a/n` */
    const char *const *names; /* three-letter names of min, min + 1, ... */
    int nnames;
};

static const struct field fields[5] = {
    {"minute", 0, 59, 59, NULL, 0},         {"hour", 0, 23, 23, NULL, 0},
    {"day-of-month", 1, 31, 31, NULL, 0},   {"month", 1, 12, 12, month_names, 12},
    {"day-of-week", 0, 7, 6, day_names, 7},
};

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static char to_upper(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* Reads a number (digits; the value saturates at 100000, so any text too
 * big reads as out of range) or, if f has names, a three-letter name at
 * *p, moving *p past it. Returns 0, or -1 if there is neither. */
static int parse_value(const struct field *f, const char **p, const char *end, int *v)
{
    const char *s = *p;

    if (s < end && is_digit(*s)) {
        long n = 0;

        while (s < end && is_digit(*s)) {
            if (n < 100000)
                n = n * 10 + (*s - '0');
            s++;
        }
        *v = (int)n;
        *p = s;
        return 0;
    }
    if (f->names != NULL && end - s >= 3 && is_alpha(s[0]) && is_alpha(s[1]) && is_alpha(s[2]) &&
        (end - s == 3 || !is_alpha(s[3]))) {
        for (int i = 0; i < f->nnames; i++) {
            const char *n = f->names[i];

            if (to_upper(s[0]) == n[0] && to_upper(s[1]) == n[1] && to_upper(s[2]) == n[2]) {
                *v = f->min + i;
                *p = s + 3;
                return 0;
            }
        }
    }
    return -1;
}

/* Error helper: "cron field 2 (hour): " + the rest. */
#define FIELD_ERR(fmt, ...)                                                                        \
    seterr(err, errlen, "cron field %d (%s): " fmt, idx + 1, f->name, __VA_ARGS__)

/* Parses one list item item[0..len-1] of field idx into *bits. Returns 0, or
 * -1 with a message in err. */
static int parse_item(int idx, const char *item, size_t len, uint64_t *bits, char *err,
                      size_t errlen)
{
    const struct field *f = &fields[idx];
    const char *p = item, *end = item + len, *vstart;
    int lo, hi, step = 1;
    int shown = len > 40 ? 40 : (int)len; /* of the token, in messages */

    if (len == 0) {
        FIELD_ERR("%s", "empty list item");
        return -1;
    }
    if (*p == '*') {
        lo = f->min;
        hi = f->star_max;
        p++;
    } else {
        vstart = p;
        if (parse_value(f, &p, end, &lo) < 0)
            goto bad_token;
        if (lo < f->min || lo > f->max) {
            FIELD_ERR("%.*s is out of range %d-%d", (int)(p - vstart), vstart, f->min, f->max);
            return -1;
        }
        hi = lo;
        if (p < end && *p == '-') {
            const char *hstart = ++p;

            if (parse_value(f, &p, end, &hi) < 0)
                goto bad_token;
            if (hi < f->min || hi > f->max) {
                FIELD_ERR("%.*s is out of range %d-%d", (int)(p - hstart), hstart, f->min, f->max);
                return -1;
            }
            /* FRI-SUN, 5-0: a week range may end on Sunday (cronie). */
            if (idx == 4 && hi == 0 && lo > 0)
                hi = 7;
            if (lo > hi) {
                FIELD_ERR("range %.*s is reversed", (int)(p - vstart), vstart);
                return -1;
            }
        } else if (p < end && *p == '/') {
            hi = lo > f->star_max ? lo : f->star_max; /* a/n: a up to the top */
        }
    }
    if (p < end && *p == '/') {
        const char *sstart = ++p;

        if (p == end || !is_digit(*p))
            goto bad_token;
        (void)parse_value(&fields[0], &p, end, &step); /* digits: cannot fail */
        if (step < 1 || step > f->max) {
            FIELD_ERR("step %.*s is out of range 1-%d", (int)(p - sstart), sstart, f->max);
            return -1;
        }
    }
    if (p != end)
        goto bad_token;
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return 0;

bad_token:
    FIELD_ERR("invalid token \"%.*s\"%s", shown, item, (size_t)shown < len ? "..." : "");
    return -1;
}

/* Parses field idx, text s[0..len-1] (no blanks), into *bits. */
static int parse_field(int idx, const char *s, size_t len, uint64_t *bits, char *err, size_t errlen)
{
    size_t i = 0;

    *bits = 0;
    for (;;) {
        size_t j = i;

        while (j < len && s[j] != ',')
            j++;
        if (parse_item(idx, s + i, j - i, bits, err, errlen) < 0)
            return -1;
        if (j == len)
            return 0;
        i = j + 1;
    }
}

struct shortcut {
    const char *name;
    const char *expr;
};

static const struct shortcut shortcuts[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int parse_fields(const char *s, size_t len, struct cron *out, char *err, size_t errlen)
{
    const char *start[5];
    size_t flen[5];
    int n = 0;
    uint64_t bits[5];
    struct cron c;

    for (size_t i = 0; i < len;) {
        if (is_blank(s[i])) {
            i++;
            continue;
        }
        if (n == 5) {
            int total = n;

            /* count them all for the message */
            for (size_t k = i; k < len; k++) {
                if (!is_blank(s[k]) && (k == i || is_blank(s[k - 1])))
                    total++;
            }
            seterr(err, errlen,
                   "cron expression has %d fields, expected 5 (minute hour day-of-month month "
                   "day-of-week)",
                   total);
            return -1;
        }
        start[n] = s + i;
        while (i < len && !is_blank(s[i]))
            i++;
        flen[n] = (size_t)(s + i - start[n]);
        n++;
    }
    if (n == 0) {
        seterr(err, errlen, "cron expression is empty");
        return -1;
    }
    if (n < 5) {
        seterr(err, errlen,
               "cron expression has %d field%s, expected 5 (minute hour day-of-month month "
               "day-of-week)",
               n, n == 1 ? "" : "s");
        return -1;
    }
    for (int i = 0; i < 5; i++) {
        if (parse_field(i, start[i], flen[i], &bits[i], err, errlen) < 0)
            return -1;
    }
    memset(&c, 0, sizeof(c));
    c.minute = bits[0];
    c.hour = (uint32_t)bits[1];
    c.dom = (uint32_t)bits[2];
    c.month = (uint16_t)bits[3];
    if (bits[4] & (1u << 7))
        bits[4] = (bits[4] | 1u) & ~(1u << 7); /* 7 is Sunday */
    c.dow = (uint8_t)bits[4];
    c.flags = (uint8_t)((start[0][0] == '*' ? CRON_MIN_STAR : 0) |
                        (start[1][0] == '*' ? CRON_HOUR_STAR : 0) |
                        (start[2][0] == '*' ? CRON_DOM_STAR : 0) |
                        (start[4][0] == '*' ? CRON_DOW_STAR : 0));
    *out = c;
    return 0;
}

int cron_parse(const char *expr, struct cron *out, char *err, size_t errlen)
{
    size_t len, b, e;

    if (expr == NULL) {
        seterr(err, errlen, "cron expression is empty");
        return -1;
    }
    len = strnlen(expr, CRON_EXPR_MAX + 1);
    if (len > CRON_EXPR_MAX) {
        seterr(err, errlen, "cron expression is longer than %d bytes", CRON_EXPR_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)expr[i];

        if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
            seterr(err, errlen, "cron expression has a control or non-ASCII byte at offset %zu", i);
            return -1;
        }
    }
    for (b = 0; b < len && is_blank(expr[b]); b++)
        ;
    for (e = len; e > b && is_blank(expr[e - 1]); e--)
        ;
    if (b < e && expr[b] == '@') {
        size_t w = b;

        while (w < e && !is_blank(expr[w]))
            w++;
        for (size_t i = 0; i < sizeof(shortcuts) / sizeof(shortcuts[0]); i++) {
            if (strlen(shortcuts[i].name) == w - b &&
                strncasecmp(shortcuts[i].name, expr + b, w - b) == 0) {
                if (w < e) {
                    size_t r = w;

                    while (is_blank(expr[r]))
                        r++;
                    seterr(err, errlen, "cron expression has text after %s: \"%.*s\"",
                           shortcuts[i].name, (int)(e - r > 40 ? 40 : e - r), expr + r);
                    return -1;
                }
                return parse_fields(shortcuts[i].expr, strlen(shortcuts[i].expr), out, err, errlen);
            }
        }
        seterr(err, errlen, "unknown cron shortcut \"%.*s\"", (int)(w - b > 40 ? 40 : w - b),
               expr + b);
        return -1;
    }
    return parse_fields(expr + b, e - b, out, err, errlen);
}

/* ---------------------------------------------------------------- matching */

static int day_matches(const struct cron *c, int d, int wday)
{
    int dom_ok = (c->dom >> d) & 1u, dow_ok = (c->dow >> wday) & 1u;

    /* Vixie cron: both restricted means either will do. */
    if (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR))
        return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

int cron_matches(const struct cron *c, const struct cron_local *l)
{
    if (l->month < 1 || l->month > 12 || l->mday < 1 || l->mday > 31 || l->hour < 0 ||
        l->hour > 23 || l->min < 0 || l->min > 59 || l->wday < 0 || l->wday > 6)
        return 0;
    return ((c->month >> l->month) & 1u) && day_matches(c, l->mday, l->wday) &&
           ((c->hour >> l->hour) & 1u) && ((c->minute >> l->min) & 1u);
}

/* The lowest set bit of bits at or above v (v <= 63), or -1. */
static int next_bit(uint64_t bits, int v)
{
    bits >>= v;
    if (bits == 0)
        return -1;
    return v + __builtin_ctzll(bits);
}

/*
 * The first wall time w in [a, b] that is a whole minute and matches c, in
 * *w. Returns 1 if there is one, else 0. Skips a non-matching month, day or
 * hour in one step, and finds the minute within an hour from the bitmask.
 */
static int next_match(const struct cron *c, int64_t a, int64_t b, int64_t *w)
{
    int64_t t = floor_div(a + 59, 60) * 60;

    while (t <= b) {
        int64_t day = floor_div(t, DAY_SECS), y;
        int sod = (int)(t - day * DAY_SECS), m, d, h, mi;

        civil_from_days(day, &y, &m, &d);
        if (!((c->month >> m) & 1u)) {
            t = (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1)) * DAY_SECS;
            continue;
        }
        if (!day_matches(c, d, weekday(day))) {
            t = (day + 1) * DAY_SECS;
            continue;
        }
        h = next_bit(c->hour, sod / 3600);
        if (h < 0) {
            t = (day + 1) * DAY_SECS;
            continue;
        }
        mi = h == sod / 3600 ? next_bit(c->minute, sod % 3600 / 60) : next_bit(c->minute, 0);
        if (mi < 0) {
            t = day * DAY_SECS + (int64_t)(h + 1) * 3600;
            continue;
        }
        t = day * DAY_SECS + (int64_t)h * 3600 + mi * 60;
        if (t > b)
            return 0;
        *w = t;
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- zones */

struct tz_type {
    int32_t utoff; /* seconds east of UTC */
    uint8_t isdst;
    char abbr[CRON_TZ_ABBR_MAX + 1];
};

/* One date of a POSIX TZ rule, with the local time of the change. */
struct tz_date {
    char kind;    /* 'J': Julian day 1-365, no Feb 29; 'D': day 0-365; 'M': month.week.day */
    int n;        /* J and D: the day */
    int m, w, d;  /* M: month 1-12, week 1-5 (5 = last), weekday 0-6 */
    int32_t time; /* seconds after local midnight, -167 h..167 h */
};

/* The footer: std only, or std and dst with the dates that switch. */
struct tz_posix {
    struct tz_type std, dst;
    int has_dst;
    struct tz_date start, end; /* to dst (local std time), back to std (local dst time) */
};

struct cron_tz {
    char name[CRON_TZ_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans; /* ascending */
    uint8_t *idx;   /* types[idx[i]] holds from trans[i] */
    size_t ntypes;  /* >= 1; types[0] holds before trans[0] */
    struct tz_type *types;
    int has_footer; /* footer holds from the last transition on */
    struct tz_posix footer;
};

/* A span of constant offset: [from, until), with the offset before from. */
struct tz_span {
    int64_t from, until;
    const struct tz_type *type;
    int32_t prev_off;
};

static const struct tz_type utc_type = {0, 0, "UTC"};

void cron_tz_free(struct cron_tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->trans);
    free(tz->idx);
    free(tz->types);
    free(tz);
}

const char *cron_tz_name(const struct cron_tz *tz)
{
    return tz != NULL ? tz->name : "UTC";
}

/* Day (since 1970-01-01) on which rule date r falls in year y. */
static int64_t rule_day(const struct tz_date *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1), first, day;

    switch (r->kind) {
    case 'J':
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60 ? 1 : 0);
    case 'D':
        return jan1 + r->n;
    default:
        first = days_from_civil(y, r->m, 1);
        day = first + (r->d - weekday(first) + 7) % 7 + (int64_t)(r->w - 1) * 7;
        while (day >= first + days_in_month(y, r->m))
            day -= 7;
        return day;
    }
}

struct tz_event {
    int64_t at;
    int to_dst;
};

/* The span of the footer's rule holding t. */
static void footer_span(const struct tz_posix *f, int64_t t, struct tz_span *sp)
{
    struct tz_event ev[10];
    int64_t y, day = floor_div(t, DAY_SECS);
    int n = 0, m, d, last = -1, state;

    if (!f->has_dst) {
        sp->from = TZ_BEGIN;
        sp->until = TZ_END;
        sp->type = &f->std;
        sp->prev_off = f->std.utoff;
        return;
    }
    /* Rule times reach a week either side of their date: the events of
     * y-2..y+2 surely include one before t and one after it. */
    civil_from_days(day, &y, &m, &d);
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        struct tz_event s = {rule_day(&f->start, yy) * DAY_SECS + f->start.time - f->std.utoff, 1};
        struct tz_event e = {rule_day(&f->end, yy) * DAY_SECS + f->end.time - f->dst.utoff, 0};

        ev[n++] = s;
        ev[n++] = e;
    }
    /* Insertion sort; at equal times the end goes first, so DST all year
     * (",0/0,J365/25": one year's end is the next one's start) stays DST. */
    for (int i = 1; i < n; i++) {
        struct tz_event k = ev[i];
        int j = i - 1;

        while (j >= 0 && (ev[j].at > k.at || (ev[j].at == k.at && ev[j].to_dst > k.to_dst))) {
            ev[j + 1] = ev[j];
            j--;
        }
        ev[j + 1] = k;
    }
    for (int i = 0; i < n && ev[i].at <= t; i++)
        last = i;
    state = last >= 0 ? ev[last].to_dst : 0;
    sp->type = state ? &f->dst : &f->std;
    sp->from = last >= 0 ? ev[last].at : TZ_BEGIN;
    sp->until = last + 1 < n ? ev[last + 1].at : TZ_END;
    sp->prev_off = sp->type->utoff;
    for (int i = last; i >= 0; i--) {
        if (ev[i].at < sp->from) {
            sp->prev_off = ev[i].to_dst ? f->dst.utoff : f->std.utoff;
            break;
        }
    }
}

/* The span of tz (NULL: UTC) holding t. */
static void tz_span(const struct cron_tz *tz, int64_t t, struct tz_span *sp)
{
    size_t n, lo, hi;

    if (tz == NULL) {
        sp->from = TZ_BEGIN;
        sp->until = TZ_END;
        sp->type = &utc_type;
        sp->prev_off = 0;
        return;
    }
    n = tz->ntrans;
    if (n == 0 || t >= tz->trans[n - 1]) {
        const struct tz_type *before = n >= 2 ? &tz->types[tz->idx[n - 2]] : &tz->types[0];

        if (tz->has_footer) {
            footer_span(&tz->footer, t, sp);
            if (n > 0 && sp->from < tz->trans[n - 1]) {
                sp->from = tz->trans[n - 1];
                sp->prev_off = before->utoff;
            }
            return;
        }
        sp->from = n > 0 ? tz->trans[n - 1] : TZ_BEGIN;
        sp->until = TZ_END;
        sp->type = n > 0 ? &tz->types[tz->idx[n - 1]] : &tz->types[0];
        sp->prev_off = before->utoff;
        return;
    }
    if (t < tz->trans[0]) {
        sp->from = TZ_BEGIN;
        sp->until = tz->trans[0];
        sp->type = &tz->types[0];
        sp->prev_off = tz->types[0].utoff;
        return;
    }
    /* trans[lo] <= t < trans[hi] */
    lo = 0;
    hi = n - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    sp->from = tz->trans[lo];
    sp->until = tz->trans[hi];
    sp->type = &tz->types[tz->idx[lo]];
    sp->prev_off = lo > 0 ? tz->types[tz->idx[lo - 1]].utoff : tz->types[0].utoff;
}

int cron_tz_to_local(const struct cron_tz *tz, int64_t t, struct cron_local *out)
{
    struct tz_span sp;
    struct cron_local l;
    int64_t wall, day, y;
    int sod;

    if (t < CRON_TIME_MIN || t > CRON_TIME_MAX)
        return -1;
    tz_span(tz, t, &sp);
    wall = t + sp.type->utoff;
    day = floor_div(wall, DAY_SECS);
    sod = (int)(wall - day * DAY_SECS);
    civil_from_days(day, &y, &l.month, &l.mday);
    if (y < 1 || y > 9999)
        return -1; /* at the very ends of the range */
    l.year = (int)y;
    l.hour = sod / 3600;
    l.min = sod % 3600 / 60;
    l.sec = sod % 60;
    l.wday = weekday(day);
    l.utoff = sp.type->utoff;
    l.isdst = sp.type->isdst;
    memcpy(l.abbr, sp.type->abbr, sizeof(l.abbr));
    *out = l;
    return 0;
}

int cron_tz_from_local(const struct cron_tz *tz, const struct cron_local *wall, int64_t out[2])
{
    struct tz_span sp;
    int64_t w;
    int n = 0;

    if (wall->year < 1 || wall->year > 9999 || wall->month < 1 || wall->month > 12 ||
        wall->mday < 1 || wall->mday > days_in_month(wall->year, wall->month) || wall->hour < 0 ||
        wall->hour > 23 || wall->min < 0 || wall->min > 59 || wall->sec < 0 || wall->sec > 59)
        return -1;
    w = days_from_civil(wall->year, wall->month, wall->mday) * DAY_SECS + wall->hour * 3600 +
        wall->min * 60 + wall->sec;
    /* Every instant with this wall time lies within a day either side. */
    tz_span(tz, w - TZ_UTOFF_MAX - 1, &sp);
    for (;;) {
        int64_t u = w - sp.type->utoff;

        if (u >= sp.from && u < sp.until && n < 2)
            out[n++] = u;
        if (sp.until >= TZ_END || sp.until > w + TZ_UTOFF_MAX + 1)
            break;
        tz_span(tz, sp.until, &sp);
    }
    return n;
}

/* -------------------------------------------------- zones: TZ strings */

/* A POSIX TZ string abbreviation: [A-Za-z]{3,} or <[A-Za-z0-9+-]{3,}>. */
static int posix_abbr(const char **p, const char *end, char out[CRON_TZ_ABBR_MAX + 1])
{
    const char *s = *p, *b;
    size_t n;

    if (s < end && *s == '<') {
        b = ++s;
        while (s < end && (is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-'))
            s++;
        n = (size_t)(s - b);
        if (s == end || *s != '>')
            return -1;
        s++;
    } else {
        b = s;
        while (s < end && is_alpha(*s))
            s++;
        n = (size_t)(s - b);
    }
    if (n < 3 || n > CRON_TZ_ABBR_MAX)
        return -1;
    memcpy(out, b, n);
    out[n] = '\0';
    *p = s;
    return 0;
}

/* [+-]h[h[h]][:mm[:ss]] with hours <= max_h, into seconds (sign applied). */
static int posix_time(const char **p, const char *end, int max_h, int32_t *secs)
{
    const char *s = *p;
    int sign = 1, part[3] = {0, 0, 0};

    if (s < end && (*s == '+' || *s == '-')) {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    for (int i = 0; i < 3; i++) {
        int digits = 0, maxd = i == 0 ? 3 : 2;

        if (i > 0) {
            if (s == end || *s != ':')
                break;
            s++;
        }
        while (s < end && is_digit(*s) && digits < maxd) {
            part[i] = part[i] * 10 + (*s - '0');
            s++;
            digits++;
        }
        if (digits == 0 || (i > 0 && part[i] > 59))
            return -1;
    }
    if (part[0] > max_h)
        return -1;
    *secs = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return 0;
}

static int posix_num(const char **p, const char *end, int lo, int hi, int *v)
{
    const char *s = *p;
    int n = 0, digits = 0;

    while (s < end && is_digit(*s) && digits < 4) {
        n = n * 10 + (*s - '0');
        s++;
        digits++;
    }
    if (digits == 0 || n < lo || n > hi)
        return -1;
    *v = n;
    *p = s;
    return 0;
}

/* ,date[/time]: Jn, n or Mm.w.d; the time defaults to 02:00. */
static int posix_date(const char **p, const char *end, struct tz_date *r)
{
    const char *s = *p;

    if (s == end || *s != ',')
        return -1;
    s++;
    memset(r, 0, sizeof(*r));
    if (s < end && *s == 'J') {
        s++;
        r->kind = 'J';
        if (posix_num(&s, end, 1, 365, &r->n) < 0)
            return -1;
    } else if (s < end && *s == 'M') {
        s++;
        r->kind = 'M';
        if (posix_num(&s, end, 1, 12, &r->m) < 0 || s == end || *s++ != '.' ||
            posix_num(&s, end, 1, 5, &r->w) < 0 || s == end || *s++ != '.' ||
            posix_num(&s, end, 0, 6, &r->d) < 0)
            return -1;
    } else {
        r->kind = 'D';
        if (posix_num(&s, end, 0, 365, &r->n) < 0)
            return -1;
    }
    r->time = 2 * 3600;
    if (s < end && *s == '/') {
        s++;
        if (posix_time(&s, end, TZ_RULE_HOURS_MAX, &r->time) < 0)
            return -1;
    }
    *p = s;
    return 0;
}

/*
 * Parses a POSIX TZ string (as a TZif footer holds it, RFC 8536 3.3):
 * std offset [dst [offset] [,start[/time],end[/time]]]. A dst without a
 * rule takes the US rule of tzcode (",M3.2.0,M11.1.0"). Returns 0 or -1.
 */
static int posix_parse(const char *s, size_t len, struct tz_posix *out)
{
    const char *p = s, *end = s + len;
    struct tz_posix f;
    int32_t off;

    memset(&f, 0, sizeof(f));
    if (posix_abbr(&p, end, f.std.abbr) < 0 || posix_time(&p, end, 24, &off) < 0)
        return -1;
    f.std.utoff = -off; /* POSIX offsets count west */
    if (p < end) {
        f.has_dst = 1;
        f.dst.isdst = 1;
        if (posix_abbr(&p, end, f.dst.abbr) < 0)
            return -1;
        f.dst.utoff = f.std.utoff + 3600;
        if (p < end && *p != ',') {
            if (posix_time(&p, end, 24, &off) < 0)
                return -1;
            f.dst.utoff = -off;
        }
        if (p == end) {
            static const char us[] = ",M3.2.0,M11.1.0";
            const char *q = us;

            if (posix_date(&q, us + sizeof(us) - 1, &f.start) < 0 ||
                posix_date(&q, us + sizeof(us) - 1, &f.end) < 0)
                return -1;
        } else if (posix_date(&p, end, &f.start) < 0 || posix_date(&p, end, &f.end) < 0) {
            return -1;
        }
    }
    if (p != end)
        return -1;
    *out = f;
    return 0;
}

/* -------------------------------------------------- zones: TZif files */

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The bytes of a data block with these counts and time size (4 or 8). */
static uint64_t block_size(const struct tzif_counts *c, unsigned tsize)
{
    return (uint64_t)c->time * tsize + c->time + (uint64_t)c->type * 6 + c->chars +
           (uint64_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* Reads the 44-byte header at p (avail bytes left): magic, version and
 * counts. NULL or a reason. */
static const char *tzif_header(const unsigned char *p, size_t avail, struct tzif_counts *c,
                               int *version)
{
    if (avail < 44)
        return "truncated header";
    if (memcmp(p, "TZif", 4) != 0)
        return "bad magic (not a TZif file)";
    if (p[4] == 0)
        *version = 1;
    else if (p[4] >= '2' && p[4] <= '4')
        *version = p[4] - '0';
    else
        return "unsupported version";
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    return NULL;
}

/* Checks the counts of the data block that will be used (tsize-byte
 * times), avail bytes being left for it. NULL or a reason. */
static const char *tzif_counts_ok(const struct tzif_counts *c, unsigned tsize, size_t avail)
{
    if (c->type == 0)
        return "no time types";
    if (c->type > TZ_TYPES_MAX)
        return "too many time types";
    if ((c->isut != 0 && c->isut != c->type) || (c->isstd != 0 && c->isstd != c->type))
        return "indicator counts do not match the time types";
    if (c->leap != 0)
        return "leap-second records (a right/ zone; its times are not Unix times)";
    if (block_size(c, tsize) > avail)
        return "truncated data";
    return NULL;
}

/* Fills tz's transitions and types from the data block at p. NULL or a
 * reason. */
static const char *tzif_block(const unsigned char *p, const struct tzif_counts *c, unsigned tsize,
                              struct cron_tz *tz)
{
    const unsigned char *idx = p + (size_t)c->time * tsize;
    const unsigned char *types = idx + c->time;
    const unsigned char *chars = types + (size_t)c->type * 6;

    if (c->time > 0) {
        tz->trans = malloc(sizeof(*tz->trans) * c->time);
        tz->idx = malloc(c->time);
        if (tz->trans == NULL || tz->idx == NULL)
            return "out of memory";
    }
    tz->types = calloc(c->type, sizeof(*tz->types));
    if (tz->types == NULL)
        return "out of memory";
    for (uint32_t i = 0; i < c->time; i++) {
        int64_t t = tsize == 8 ? be64(p + (size_t)i * 8) : (int32_t)be32(p + (size_t)i * 4);

        if (t < -TZ_TRANS_LIMIT || t > TZ_TRANS_LIMIT)
            return "transition time out of range";
        if (i > 0 && t <= tz->trans[i - 1])
            return "transition times out of order";
        if (idx[i] >= c->type)
            return "transition names a missing time type";
        tz->trans[i] = t;
        tz->idx[i] = idx[i];
    }
    tz->ntrans = c->time;
    for (uint32_t i = 0; i < c->type; i++) {
        const unsigned char *tt = types + (size_t)i * 6;
        int32_t utoff = (int32_t)be32(tt);
        const unsigned char *nul;
        size_t n;

        if (utoff < -TZ_UTOFF_MAX || utoff > TZ_UTOFF_MAX)
            return "offset out of range";
        if (tt[4] > 1)
            return "bad isdst flag";
        if (tt[5] >= c->chars)
            return "abbreviation index out of range";
        nul = memchr(chars + tt[5], '\0', c->chars - tt[5]);
        if (nul == NULL)
            return "abbreviation not NUL-terminated";
        n = (size_t)(nul - (chars + tt[5]));
        if (n > CRON_TZ_ABBR_MAX)
            n = CRON_TZ_ABBR_MAX;
        tz->types[i].utoff = utoff;
        tz->types[i].isdst = tt[4];
        memcpy(tz->types[i].abbr, chars + tt[5], n);
        tz->types[i].abbr[n] = '\0';
    }
    tz->ntypes = c->type;
    return NULL;
}

/* The printable ASCII prefix of s[0..len-1], up to 60 bytes, for messages. */
static int printable_len(const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && n < 60 && s[n] >= 0x20 && s[n] < 0x7f)
        n++;
    return (int)n;
}

int cron_tz_parse(const char *name, const unsigned char *buf, size_t len, struct cron_tz **out,
                  char *err, size_t errlen)
{
    struct cron_tz *tz;
    struct tzif_counts c;
    const char *why;
    int version, v2;
    size_t at;

    if (name == NULL)
        name = "";
    if (len > CRON_TZ_FILE_MAX) {
        seterr(err, errlen, "invalid time zone file for \"%s\": larger than %d bytes", name,
               CRON_TZ_FILE_MAX);
        return -1;
    }
    tz = calloc(1, sizeof(*tz));
    if (tz == NULL) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    why = tzif_header(buf, len, &c, &version);
    if (why != NULL)
        goto bad;
    at = 44;
    if (version == 1) {
        why = tzif_counts_ok(&c, 4, len - at);
        if (why == NULL)
            why = tzif_block(buf + at, &c, 4, tz);
        if (why != NULL)
            goto bad;
        *out = tz;
        return 0;
    }
    /* Version 2 and later: skip the 32-bit block (whose counts need not
     * match: a "slim" file leaves it nearly empty), use the 64-bit one. */
    if (block_size(&c, 4) > len - at) {
        why = "truncated data";
        goto bad;
    }
    at += (size_t)block_size(&c, 4);
    why = tzif_header(buf + at, len - at, &c, &v2);
    if (why == NULL && v2 < 2)
        why = "second header has version 1";
    if (why != NULL)
        goto bad;
    at += 44;
    why = tzif_counts_ok(&c, 8, len - at);
    if (why == NULL)
        why = tzif_block(buf + at, &c, 8, tz);
    if (why != NULL)
        goto bad;
    at += (size_t)block_size(&c, 8);
    /* The footer: "\n" TZ-string "\n"; an empty string means no rule. */
    {
        const unsigned char *nl;
        size_t flen;

        if (at >= len || buf[at] != '\n') {
            why = "missing footer";
            goto bad;
        }
        at++;
        nl = memchr(buf + at, '\n', len - at);
        if (nl == NULL) {
            why = "unterminated footer";
            goto bad;
        }
        flen = (size_t)(nl - (buf + at));
        if (flen > TZ_FOOTER_MAX) {
            why = "footer too long";
            goto bad;
        }
        if (flen > 0) {
            if (posix_parse((const char *)buf + at, flen, &tz->footer) < 0) {
                seterr(err, errlen, "invalid time zone file for \"%s\": bad footer \"%.*s\"", name,
                       printable_len((const char *)buf + at, flen), (const char *)buf + at);
                cron_tz_free(tz);
                return -1;
            }
            tz->has_footer = 1;
        }
    }
    *out = tz;
    return 0;

bad:
    seterr(err, errlen, "invalid time zone file for \"%s\": %s", name, why);
    cron_tz_free(tz);
    return -1;
}

/* 1 if name is a safe zone name: components of [A-Za-z0-9_+-] joined by
 * single '/', no leading or trailing '/', at most CRON_TZ_NAME_MAX bytes
 * (no '.', so no "..", and nothing a path could be tricked with). */
static int valid_name(const char *name)
{
    size_t n = strnlen(name, CRON_TZ_NAME_MAX + 1), comp = 0;

    if (n == 0 || n > CRON_TZ_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];

        if (ch == '/') {
            if (comp == 0)
                return 0;
            comp = 0;
        } else if (is_alpha(ch) || is_digit(ch) || ch == '_' || ch == '+' || ch == '-') {
            comp++;
        } else {
            return 0;
        }
    }
    return comp > 0;
}

int cron_tz_load_dir(const char *name, const char *dir, struct cron_tz **out, char *err,
                     size_t errlen)
{
    char path[4096], ebuf[128];
    unsigned char *buf;
    size_t len = 0;
    struct stat st;
    int fd, rc;

    if (name == NULL || !valid_name(name)) {
        if (name != NULL && printable_len(name, strlen(name)) == (int)strlen(name))
            seterr(err, errlen, "invalid time zone name \"%s\"", name);
        else
            seterr(err, errlen, "invalid time zone name");
        return -1;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        struct cron_tz *tz = calloc(1, sizeof(*tz));

        if (tz == NULL) {
            seterr(err, errlen, "out of memory");
            return -1;
        }
        tz->types = calloc(1, sizeof(*tz->types));
        if (tz->types == NULL) {
            free(tz);
            seterr(err, errlen, "out of memory");
            return -1;
        }
        tz->types[0] = utc_type;
        tz->ntypes = 1;
        snprintf(tz->name, sizeof(tz->name), "%s", name);
        *out = tz;
        return 0;
    }
    if (dir == NULL || dir[0] == '\0')
        dir = CRON_TZ_DEFAULT_DIR;
    rc = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (rc < 0 || (size_t)rc >= sizeof(path)) {
        seterr(err, errlen, "time zone directory path too long");
        return -1;
    }
    /* O_NONBLOCK: a FIFO planted under the name must not hang the open. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            seterr(err, errlen, "unknown time zone \"%s\"", name);
        else
            seterr(err, errlen, "could not open time zone file %s: %s", path,
                   strerror_r(errno, ebuf, sizeof(ebuf)));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        seterr(err, errlen, "could not stat time zone file %s: %s", path,
               strerror_r(errno, ebuf, sizeof(ebuf)));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) /* "Europe" */
            seterr(err, errlen, "unknown time zone \"%s\"", name);
        else
            seterr(err, errlen, "time zone file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    /* One byte over the cap, to tell a file at the cap from a bigger one. */
    buf = malloc(CRON_TZ_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        seterr(err, errlen, "out of memory");
        return -1;
    }
    while (len < CRON_TZ_FILE_MAX + 1) {
        ssize_t r = read(fd, buf + len, CRON_TZ_FILE_MAX + 1 - len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            seterr(err, errlen, "could not read time zone file %s: %s", path,
                   strerror_r(errno, ebuf, sizeof(ebuf)));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    rc = cron_tz_parse(name, buf, len, out, err, errlen);
    free(buf);
    return rc;
}

int cron_tz_load(const char *name, struct cron_tz **out, char *err, size_t errlen)
{
    /* getenv only: nothing in this process sets the environment once
     * threads run, so reading it here is safe. */
    return cron_tz_load_dir(name, getenv(CRON_TZ_DIR_ENV), out, err, errlen);
}

/* ---------------------------------------------------------------- next */

int64_t cron_next(const struct cron *c, const struct cron_tz *tz, int64_t after)
{
    /* A fixed-time expression fires once per wall time (first occurrence,
     * or the end of the gap that skips it); a wildcard one at every
     * matching instant (cron.h, after cronie's MIN_STAR | HR_STAR). */
    int fixed = !(c->flags & (CRON_MIN_STAR | CRON_HOUR_STAR));
    struct tz_span sp;
    int64_t lim, hwm, w;

    if (after < CRON_TIME_MIN || after > CRON_TIME_MAX)
        return -1;
    lim = after + CRON_HORIZON_SECS;
    if (lim > CRON_TIME_MAX)
        lim = CRON_TIME_MAX;
    tz_span(tz, after, &sp);
    /* hwm: wall times below it already occurred (fixed-time only). */
    hwm = sp.from == TZ_BEGIN ? TZ_BEGIN : sp.from + sp.prev_off;
    for (;;) {
        int64_t s = sp.from, e = sp.until, o = sp.type->utoff, lo, hi;

        lo = s + o;
        if (fixed) {
            /* A gap before this span: its matching wall times fire at s. */
            if (s > after && s <= lim && s + o > hwm && next_match(c, hwm, s + o - 1, &w))
                return s;
            if (hwm > lo)
                lo = hwm; /* repeated by a fall-back: fired the first time */
        }
        if (lo < after + o + 1)
            lo = after + o + 1;
        hi = e + o - 1 < lim + o ? e + o - 1 : lim + o;
        if (lo <= hi && next_match(c, lo, hi, &w))
            return w - o;
        if (e + o > hwm)
            hwm = e + o;
        if (e >= TZ_END || e > lim)
            return -1;
        tz_span(tz, e, &sp);
    }
}
