/*
 * test_api_executions.c: the pure parts of server/api_executions.c: UUID
 * validation and the list cursor, which must round-trip every time a row
 * can have (microseconds, negative ones before 1970, the ends of the range)
 * and refuse anything it did not make: other alphabets, padding, stray
 * bits, a missing or malformed half, spaces, a '+', times out of range.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_executions.h"
#include "testhelp.h"

static const char uuid[] = "0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b";

/* Encodes (us, id), decodes it again; 1 when both halves come back. */
static int round_trip(int64_t us, const char *id)
{
    char cur[API_EXEC_CURSOR_MAX], back[API_EXEC_UUID_LEN + 1];
    int64_t us2 = 0;

    if (api_exec_cursor_encode(us, id, cur, sizeof(cur)) != 0)
        return 0;
    if (strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
        strlen(cur))
        return 0; /* URL-safe as it is */
    if (api_exec_cursor_decode(cur, &us2, back) != 0)
        return 0;
    return us2 == us && strcasecmp(back, id) == 0;
}

/* base64url (no padding) of text, for hand-made cursors. */
static void b64(const char *text, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(text), at = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)(unsigned char)text[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)(unsigned char)text[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)text[i + 2];
        out[at++] = a[(v >> 18) & 63];
        out[at++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[at++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[at++] = a[v & 63];
    }
    out[at] = '\0';
}

/* 1 when the cursor made of text is refused and leaves the outputs alone. */
static int refused_text(const char *text)
{
    char cur[256];

    b64(text, cur);
    {
        char id[API_EXEC_UUID_LEN + 1] = "untouched";
        int64_t us = 42;
        return api_exec_cursor_decode(cur, &us, id) == -1 && us == 42 &&
               strcmp(id, "untouched") == 0;
    }
}

static int refused(const char *cur)
{
    char id[API_EXEC_UUID_LEN + 1] = "untouched";
    int64_t us = 42;

    return api_exec_cursor_decode(cur, &us, id) == -1 && us == 42 && strcmp(id, "untouched") == 0;
}

int main(void)
{
    char cur[API_EXEC_CURSOR_MAX], id[API_EXEC_UUID_LEN + 1], text[128];
    int64_t us = 0;

    /* UUIDs: the canonical form, either case, nothing else */
    CHECK(api_exec_valid_uuid(uuid));
    CHECK(api_exec_valid_uuid("0B7D4C6E-5F1A-4E2B-9C3D-8A7F6E5D4C3B"));
    CHECK(api_exec_valid_uuid("00000000-0000-0000-0000-000000000000"));
    CHECK(!api_exec_valid_uuid(""));
    CHECK(!api_exec_valid_uuid("0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3"));
    CHECK(!api_exec_valid_uuid("0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3bb"));
    CHECK(!api_exec_valid_uuid("0b7d4c6e5f1a4e2b9c3d8a7f6e5d4c3b"));
    CHECK(!api_exec_valid_uuid("{0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3b}"));
    CHECK(!api_exec_valid_uuid("0b7d4c6e-5f1a-4e2b-9c3d-8a7f6e5d4c3g"));
    CHECK(!api_exec_valid_uuid("0b7d4c6e_5f1a-4e2b-9c3d-8a7f6e5d4c3b"));
    CHECK(!api_exec_valid_uuid("not-a-uuid"));

    /* round trips across the range, to the microsecond */
    CHECK(round_trip(0, uuid));
    CHECK(round_trip(1, uuid));
    CHECK(round_trip(-1, uuid));
    CHECK(round_trip(1764648361123456LL, uuid)); /* 2025-12-02 04:06:01.123456 */
    CHECK(round_trip(1764648361000000LL, uuid));
    CHECK(round_trip(-1500000, uuid));
    CHECK(round_trip(-62135596800000000LL, uuid)); /* 0001-01-01 */
    CHECK(round_trip(253402300799999999LL, uuid)); /* 9999-12-31 23:59:59.999999 */
    CHECK(round_trip(1764648361123456LL, "ffffffff-ffff-ffff-ffff-ffffffffffff"));
    /* an upper-case id comes back lower-case, as PostgreSQL prints it */
    CHECK_INT(api_exec_cursor_encode(7, "0B7D4C6E-5F1A-4E2B-9C3D-8A7F6E5D4C3B", cur, sizeof(cur)),
              0);
    CHECK_INT(api_exec_cursor_decode(cur, &us, id), 0);
    CHECK_STR(id, uuid);
    CHECK_INT(us, 7);

    /* encode refuses what it cannot name, and leaves "" */
    CHECK_INT(api_exec_cursor_encode(0, "nope", cur, sizeof(cur)), -1);
    CHECK_STR(cur, "");
    CHECK_INT(api_exec_cursor_encode(253402300800000000LL, uuid, cur, sizeof(cur)), -1);
    CHECK_INT(api_exec_cursor_encode(-62135596800000001LL, uuid, cur, sizeof(cur)), -1);
    CHECK_INT(api_exec_cursor_encode(INT64_MAX, uuid, cur, sizeof(cur)), -1);
    CHECK_INT(api_exec_cursor_encode(1, uuid, cur, 10), -1);
    CHECK_STR(cur, "");

    /* the hand-made form decodes: the format is what the header says */
    snprintf(text, sizeof(text), "1764648361123456:%s", uuid);
    b64(text, cur);
    CHECK_INT(api_exec_cursor_decode(cur, &us, id), 0);
    CHECK_INT(us, 1764648361123456LL);
    CHECK_STR(id, uuid);

    /* malformed texts */
    CHECK(refused_text(""));
    CHECK(refused_text(":"));
    CHECK(refused_text("123"));
    CHECK(refused_text(uuid));
    snprintf(text, sizeof(text), ":%s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "-:%s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), " 12:%s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "+12:%s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "12 :%s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "1x2:%s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "12:%s ", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "12:%.35s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "12:%sa", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "12:13:%s", uuid);
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "99999999999999999999:%s", uuid); /* past int64 */
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "253402300800000000:%s", uuid); /* year 10000 */
    CHECK(refused_text(text));
    snprintf(text, sizeof(text), "-62135596800000001:%s", uuid); /* before year 1 */
    CHECK(refused_text(text));

    /* malformed base64url */
    CHECK_INT(api_exec_cursor_encode(1764648361123456LL, uuid, cur, sizeof(cur)), 0);
    {
        char bad[API_EXEC_CURSOR_MAX + 8];
        size_t n = strlen(cur);

        CHECK(refused(""));
        CHECK(refused("null"));
        CHECK(refused("A"));
        snprintf(bad, sizeof(bad), "%s=", cur); /* padding */
        CHECK(refused(bad));
        snprintf(bad, sizeof(bad), "%s", cur); /* standard base64's alphabet */
        bad[3] = '+';
        CHECK(refused(bad));
        bad[3] = '/';
        CHECK(refused(bad));
        bad[3] = '.';
        CHECK(refused(bad));
        snprintf(bad, sizeof(bad), "%.*s", (int)n - 1, cur); /* cut short */
        CHECK(refused(bad));
        snprintf(bad, sizeof(bad), "%sAAAA", cur); /* NUL bytes appended */
        CHECK(refused(bad));
        /* stray bits: 38 bytes are 51 digits, the last one with 2 spare
         * bits, which must be zero */
        snprintf(text, sizeof(text), "1:%s", uuid);
        b64(text, bad);
        n = strlen(bad);
        CHECK_INT(n % 4, 3);
        CHECK(!refused(bad));
        {
            static const char a[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            size_t v = (size_t)(strchr(a, bad[n - 1]) - a);

            CHECK_INT(v & 3, 0);
            bad[n - 1] = a[v | 1];
            CHECK(refused(bad));
        }
        memset(bad, 'A', sizeof(bad) - 1); /* too long */
        bad[sizeof(bad) - 1] = '\0';
        CHECK(refused(bad));
    }
    TEST_REPORT("unit_api_executions");
}
