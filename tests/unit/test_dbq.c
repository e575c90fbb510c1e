/*
 * test_dbq.c: the array literals of dbq's multi-row statements, without a
 * database: every element double-quoted, '"' and '\' escaped, NULL
 * unquoted, everything else (commas, braces, blanks, the word NULL, UTF-8)
 * kept as is. test_dbq under tests/integration reads them back through
 * PostgreSQL.
 */
#include <stdlib.h>

#include "dbq.h"
#include "testhelp.h"

/* Checks the literal of n values against want (and its length). */
static void check_literal(const char *const *values, size_t n, const char *want)
{
    size_t len = 0;
    char *got = dbq_array_literal(values, n, &len);

    CHECK_STR(got, want);
    CHECK_INT(len, strlen(want));
    free(got);
}

int main(void)
{
    const char *plain[] = {"a", "bc"};
    const char *nulls[] = {NULL, "NULL", ""};
    const char *quotes[] = {"say \"hi\"", "back\\slash", "\\\"", "\""};
    const char *syntax[] = {"{1,2}", "a,b", " padded ", "x y"};
    const char *utf8[] = {"h\xc3\xa9llo", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    const char *lines[] = {"two\nlines", "tab\there"};

    check_literal(plain, 0, "{}");
    check_literal(plain, 2, "{\"a\",\"bc\"}");
    check_literal(nulls, 3, "{NULL,\"NULL\",\"\"}");
    check_literal(quotes, 4, "{\"say \\\"hi\\\"\",\"back\\\\slash\",\"\\\\\\\"\",\"\\\"\"}");
    check_literal(syntax, 4, "{\"{1,2}\",\"a,b\",\" padded \",\"x y\"}");
    check_literal(utf8, 3, "{\"h\xc3\xa9llo\",\"\xe2\x82\xac\",\"\xf0\x9f\x98\x80\"}");
    check_literal(lines, 2, "{\"two\nlines\",\"tab\there\"}");
    /* the length may be left out */
    {
        char *got = dbq_array_literal(plain, 1, NULL);

        CHECK_STR(got, "{\"a\"}");
        free(got);
    }
    TEST_REPORT("unit_dbq");
}
