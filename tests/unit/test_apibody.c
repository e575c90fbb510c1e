/*
 * test_apibody.c: the JSON request bodies (server/apibody.c) refuse what
 * cJSON would take wrongly: a \u0000 escape inside a string (cJSON cuts
 * the string there), a NUL byte, and text that is not UTF-8 (overlong
 * forms, surrogates, stray continuation bytes, code points past U+10FFFF);
 * and still accept valid UTF-8, other escapes and an escaped backslash
 * followed by "u0000".
 */
#include <string.h>

#include "apibody.h"
#include "testhelp.h"

/* apibody_project_id on the n bytes of s: 0 or -1, and the reason. */
static int pid(const char *s, size_t n, char *id, const char **why)
{
    *why = NULL;
    return apibody_project_id(s, n, id, why);
}

static int create(const char *s, size_t n, char *name, const char **why)
{
    char id[WF_ID_MAX + 1];

    *why = NULL;
    return apibody_project_create(s, n, id, name, why);
}

#define LIT(s) s, sizeof(s) - 1

int main(void)
{
    char id[WF_ID_MAX + 1] = "", name[APIBODY_NAME_MAX + 1] = "";
    const char *why;

    /* The escape that cut "p1\u0000x" to "p1". */
    CHECK_INT(pid(LIT("{\"projectId\":\"p1\\u0000x\"}"), id, &why), -1);
    CHECK(why != NULL && strstr(why, "NUL") != NULL);
    CHECK_INT(pid(LIT("{\"x\":\"\\u0000\",\"projectId\":\"p1\"}"), id, &why), -1);
    /* An escaped backslash, then the text u0000: no NUL. */
    CHECK_INT(pid(LIT("{\"x\":\"\\\\u0000\",\"projectId\":\"p1\"}"), id, &why), 0);
    CHECK_STR(id, "p1");
    /* An escaped quote does not end the string. */
    CHECK_INT(pid(LIT("{\"x\":\"\\\"\\u0000\",\"projectId\":\"p1\"}"), id, &why), -1);
    /* A NUL byte, inside a string or out. */
    CHECK_INT(pid(LIT("{\"projectId\":\"p1\0x\"}"), id, &why), -1);
    CHECK(why != NULL && strstr(why, "NUL") != NULL);
    CHECK_INT(pid(LIT("{\"projectId\":\"p1\"}\0"), id, &why), -1);

    /* Not UTF-8. */
    CHECK_INT(pid(LIT("{\"projectId\":\"p\xff"
                      "1\"}"),
                  id, &why),
              -1);
    CHECK(why != NULL && strstr(why, "UTF-8") != NULL);
    CHECK_INT(create(LIT("{\"name\":\"\xc0\xaf\"}"), name, &why), -1);         /* overlong */
    CHECK_INT(create(LIT("{\"name\":\"\xe0\x80\xaf\"}"), name, &why), -1);     /* overlong */
    CHECK_INT(create(LIT("{\"name\":\"\xed\xa0\x80\"}"), name, &why), -1);     /* surrogate */
    CHECK_INT(create(LIT("{\"name\":\"\xf4\x90\x80\x80\"}"), name, &why), -1); /* > U+10FFFF */
    CHECK_INT(create(LIT("{\"name\":\"\x80\"}"), name, &why), -1);             /* continuation */
    CHECK_INT(create(LIT("{\"name\":\"\xc3\"}"), name, &why), -1);             /* truncated */
    CHECK_INT(create(LIT("{\"name\":\"a\xc3\"}"), name, &why), -1);            /* at the end */
    CHECK_INT(create(LIT("{\"name\":\"\\\xc3\xa9\"}"), name, &why), -1);       /* bad escape */

    /* Valid UTF-8 of every length, and escapes. */
    CHECK_INT(
        create(LIT("{\"name\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\u00e9\"}"), name, &why),
        0);
    CHECK_STR(name, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9");
    CHECK_INT(create(LIT("{\"name\":\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}"), name, &why), 0);
    CHECK_INT(create(LIT(""), name, &why), 0);
    TEST_REPORT("apibody");
}
