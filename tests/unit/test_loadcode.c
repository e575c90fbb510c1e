/*
 * test_loadcode.c: the load message a worker gets, built from its
 * project's code rows (loadcode_build): every name listed, each artifact
 * once under the first name that uses it, names declared without code
 * listed but not provided, the summary that status and the row show, and
 * the transient error message. The allocation-failure side (never a partial
 * message) is in test_torture.c.
 */
#include <stdlib.h>
#include <string.h>

#include "loadcode.h"
#include "testhelp.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int array_has(const cJSON *arr, const char *s)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
            return 1;
    }
    return 0;
}

int main(void)
{
    const struct loadcode_row rows[] = {
        {"workflow", "order-flow", SHA_A},
        {"activity", "charge", SHA_A},
        {"activity", "notify", SHA_B},
        {"activity", "planned", NULL},
    };
    char *summary = NULL;
    cJSON *m = loadcode_build(rows, 4, &summary);
    cJSON *arts, *prov, *sum, *parsed;

    CHECK(m != NULL && summary != NULL);
    if (m == NULL || summary == NULL)
        TEST_REPORT("unit_loadcode");
    CHECK_STR(cJSON_GetObjectItem(m, "t")->valuestring, "load");
    CHECK(array_has(cJSON_GetObjectItem(m, "workflows"), "order-flow"));
    CHECK(array_has(cJSON_GetObjectItem(m, "activities"), "charge"));
    CHECK(array_has(cJSON_GetObjectItem(m, "activities"), "planned"));
    arts = cJSON_GetObjectItem(m, "artifacts");
    CHECK_INT(cJSON_GetArraySize(arts), 2);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(arts, 0), "label")->valuestring, "order-flow");
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(arts, 0), "sha256")->valuestring, SHA_A);
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(arts, 0), "path") == NULL); /* memfds, no files */
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(arts, 1), "sha256")->valuestring, SHA_B);
    prov = cJSON_GetObjectItem(m, "provides");
    CHECK_INT(cJSON_GetArraySize(prov), 3); /* not "planned": it has no code */
    sum = cJSON_GetObjectItem(m, "summary");
    parsed = cJSON_Parse(summary);
    CHECK(parsed != NULL && cJSON_Compare(parsed, sum, 1));
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(sum, "plugins")), 2);
    CHECK(cJSON_GetObjectItem(sum, "artifacts") == NULL);
    cJSON_Delete(parsed);
    cJSON_Delete(m);
    free(summary);

    /* No rows: an empty but complete message. */
    m = loadcode_build(NULL, 0, &summary);
    CHECK(m != NULL && summary != NULL);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "artifacts")), 0);
    cJSON_Delete(m);
    free(summary);

    m = loadcode_error_message("could not read the project's code: database down");
    CHECK(m != NULL);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(m, "transient")));
    CHECK_STR(cJSON_GetObjectItem(m, "error")->valuestring,
              "could not read the project's code: database down");
    cJSON_Delete(m);
    TEST_REPORT("unit_loadcode");
}
