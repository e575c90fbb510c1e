/*
 * fuzz_tzif.c: fuzz target for cron_tz_parse (engine/cron.c), the reader
 * of TZif zone files. The files come from the system's zoneinfo directory,
 * named by API input, and are read as untrusted: counts, offsets, indexes
 * and the footer's TZ string all come from the bytes. Any read past the
 * input is a bug (AddressSanitizer reports it), as is a loop that does not
 * end; so is an accepted zone whose conversions break their contract: an
 * offset of 26 hours or more, a wall time that maps to an instant whose
 * wall time differs, or a next fire time that is not after its start or
 * is not a matching wall time (but for a fixed-time expression at the end
 * of a gap).
 *
 * Built like fuzz_msg.c: as a libFuzzer binary with clang and -DWF_FUZZ=ON
 * (fuzz_tzif), and always into test_fuzz_tzif, which replays real zones
 * of tests/fuzz/corpus/tzif (tzdata, public domain) and mutations of them
 * (half of the edits in the 44-byte header) under ctest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t instants[] = {
    -2208988800, /* 1900 */
    0,
    1000000000,
    1774746000 /* 2026-03-29 01:00Z */,
    2208988800, /* 2040: footer */
    CRON_TIME_MIN,
    CRON_TIME_MAX,
};

static void check_instant(const struct cron_tz *tz, int64_t t)
{
    struct cron_local l;
    int64_t back[2];
    int n;

    if (cron_tz_to_local(tz, t, &l) != 0)
        return; /* at the ends of the range */
    if (l.utoff <= -26 * 3600 || l.utoff >= 26 * 3600 || l.isdst < 0 || l.isdst > 1 ||
        memchr(l.abbr, '\0', sizeof(l.abbr)) == NULL)
        abort();
    /* Its wall time maps back to instants (t among them unless there are
     * more than two), each with that wall time. */
    n = cron_tz_from_local(tz, &l, back);
    if (n < 1 || n > 2)
        abort();
    for (int i = 0; i < n; i++) {
        struct cron_local m;

        if (cron_tz_to_local(tz, back[i], &m) != 0 || m.year != l.year || m.month != l.month ||
            m.mday != l.mday || m.hour != l.hour || m.min != l.min || m.sec != l.sec)
            abort();
    }
}

static void check_next(const struct cron_tz *tz, const char *expr, int64_t after)
{
    struct cron c;
    char err[128];
    int fixed;

    if (cron_parse(expr, &c, err, sizeof(err)) != 0)
        abort();
    fixed = !(c.flags & (CRON_MIN_STAR | CRON_HOUR_STAR));
    for (int i = 0; i < 3; i++) {
        int64_t t = cron_next(&c, tz, after);
        struct cron_local l, before;

        if (t == -1)
            return;
        if (t <= after || cron_tz_to_local(tz, t, &l) != 0)
            abort();
        if (!cron_matches(&c, &l) &&
            (!fixed || cron_tz_to_local(tz, t - 1, &before) != 0 || before.utoff >= l.utoff))
            abort();
        after = t;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so ASan sees any overread. */
    unsigned char *copy = malloc(size > 0 ? size : 1);
    struct cron_tz *tz = NULL;
    char err[256];

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    err[0] = '\0';
    if (cron_tz_parse("Fuzz/Zone", copy, size, &tz, err, sizeof(err)) != 0) {
        if (tz != NULL || err[0] == '\0')
            abort();
        free(copy);
        return 0;
    }
    for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++)
        check_instant(tz, instants[i]);
    check_next(tz, "30 2 * * *", 1774652400);   /* 2026-03-28 */
    check_next(tz, "*/30 * * * *", 1792882800); /* 2026-10-24 */
    check_next(tz, "0 0 29 2 *", 2208988800);   /* 2040 */
    cron_tz_free(tz);
    free(copy);
    return 0;
}
