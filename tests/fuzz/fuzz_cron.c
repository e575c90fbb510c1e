/*
 * fuzz_cron.c: fuzz target for cron_parse (engine/cron.c), which will read
 * the "cron" of POST /projects/{id}/schedules: untrusted API input. The
 * input is one expression (NUL-terminated here; the bytes may hold NULs).
 * Any read past it is a bug (AddressSanitizer reports it); so is an
 * accepted expression with an empty or out-of-range field mask, a refusal
 * without a message, or a next fire time that is not after its start, or
 * (in UTC and in a DST zone built from Berlin's TZ string) falls on a wall
 * time the expression does not match, unless it is the end of a
 * spring-forward gap (where a skipped fixed-time match fires).
 *
 * Built like fuzz_msg.c: as a libFuzzer binary with clang and -DWF_FUZZ=ON
 * (fuzz_cron), and always into test_fuzz_cron, which replays
 * tests/fuzz/corpus/cron and mutations of it under ctest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A TZif file with no transitions and Berlin's footer: DST by rule. */
static struct cron_tz *berlin(void)
{
    static struct cron_tz *tz;
    static const unsigned char head[] = {'T', 'Z', 'i', 'f', '2'};
    static const char footer[] = "\nCET-1CEST,M3.5.0,M10.5.0/3\n";
    unsigned char buf[256];
    size_t len = 0;
    char err[256];

    if (tz != NULL)
        return tz;
    /* Twice a header (no transitions, one type, 4 bytes of names) and its
     * data block (the type: +1h, not DST, name at 0; "CET\0"). */
    for (int pass = 0; pass < 2; pass++) {
        static const unsigned char counts[24] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4};
        static const unsigned char block[10] = {0, 0, 0x0e, 0x10, 0, 0, 'C', 'E', 'T', 0};

        memcpy(buf + len, head, sizeof(head));
        memset(buf + len + sizeof(head), 0, 15);
        len += 20;
        memcpy(buf + len, counts, sizeof(counts));
        len += sizeof(counts);
        memcpy(buf + len, block, sizeof(block));
        len += sizeof(block);
    }
    memcpy(buf + len, footer, sizeof(footer) - 1);
    len += sizeof(footer) - 1;
    if (cron_tz_parse("Fuzz/Berlin", buf, len, &tz, err, sizeof(err)) != 0)
        abort();
    return tz;
}

/* Checks successive fires of c in tz from after. */
static void walk(const struct cron *c, const struct cron_tz *tz, int64_t after, int steps)
{
    int fixed = !(c->flags & (CRON_MIN_STAR | CRON_HOUR_STAR));

    for (int i = 0; i < steps; i++) {
        int64_t t = cron_next(c, tz, after);
        struct cron_local l, before;

        if (t == -1)
            return;
        if (t <= after || t > after + CRON_HORIZON_SECS)
            abort();
        if (cron_tz_to_local(tz, t, &l) != 0 || l.sec != 0)
            abort();
        if (!cron_matches(c, &l)) {
            /* Only a fixed-time expression, only at a spring-forward. */
            if (!fixed || cron_tz_to_local(tz, t - 1, &before) != 0 || before.utoff >= l.utoff)
                abort();
        }
        after = t;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *expr = malloc(size + 1);
    char err[128];
    struct cron c;

    if (expr == NULL)
        return 0;
    if (size > 0)
        memcpy(expr, data, size);
    expr[size] = '\0';
    err[0] = '\0';
    if (cron_parse(expr, &c, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            abort();
        free(expr);
        return 0;
    }
    if (c.minute == 0 || c.minute >> 60 != 0 || c.hour == 0 || c.hour >> 24 != 0 ||
        (c.dom & ~0xfffffffeu) != 0 || c.dom == 0 || (c.month & ~0x1ffeu) != 0 || c.month == 0 ||
        c.dow == 0 || c.dow >> 7 != 0)
        abort();
    walk(&c, NULL, 1767225600, 3);     /* 2026-01-01 UTC */
    walk(&c, berlin(), 1774738800, 4); /* 2026-03-28 23:00 UTC, before spring forward */
    walk(&c, berlin(), 1792882800, 4); /* 2026-10-24 23:00 UTC, before fall back */
    free(expr);
    return 0;
}
