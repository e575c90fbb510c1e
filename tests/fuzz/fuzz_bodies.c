/*
 * fuzz_bodies.c: fuzz target for the JSON request bodies of every route
 * that takes one (server/apibody.c: POST /workers/start|stop|restart,
 * POST /projects). Request bodies are the API's untrusted input. The input
 * is one body, fed to every parser. Any read past the input is a bug
 * (AddressSanitizer reports it); so is an accepted body whose outputs break
 * the contract (an id that does not match ^[A-Za-z0-9_-]{1,64}$, a name
 * over its cap, a body holding a NUL byte), or a refusal without a
 * reason. The corpus holds the refusals of issue 12 too: a \u0000 escape,
 * a NUL byte, overlong, surrogate and stray UTF-8.
 *
 * Built like fuzz_msg.c: as a libFuzzer binary with clang and -DWF_FUZZ=ON,
 * and always into test_fuzz_bodies, which replays tests/fuzz/corpus/bodies
 * and mutations of it under ctest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "apibody.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so ASan sees any overread. */
    char *copy = malloc(size > 0 ? size : 1);
    char id[WF_ID_MAX + 1], name[APIBODY_NAME_MAX + 1];
    const char *why;

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);

    why = NULL;
    if (apibody_project_id(copy, size, id, &why) == 0) {
        if (!ju_valid_id(id) || memchr(copy, 0, size) != NULL)
            abort();
    } else if (why == NULL || why[0] == '\0') {
        abort();
    }

    why = NULL;
    if (apibody_project_create(copy, size, id, name, &why) == 0) {
        if ((id[0] != '\0' && !ju_valid_id(id)) || strlen(name) > APIBODY_NAME_MAX ||
            memchr(copy, 0, size) != NULL)
            abort();
    } else if (why == NULL || why[0] == '\0') {
        abort();
    }

    /* POST /projects/:id/executions: a name, the input re-printed as JSON
     * that parses again, a bounded key and timeout. */
    {
        char wf[65], key[APIBODY_KEY_MAX + 1], *input = NULL;
        long long tmo = -1;
        why = NULL;
        if (apibody_trigger(copy, size, wf, &input, key, &tmo, &why) == 0) {
            cJSON *again = cJSON_Parse(input);
            if (wf[0] == '\0' || strlen(wf) > 64 || strlen(key) > APIBODY_KEY_MAX || tmo < 0 ||
                tmo > APIBODY_TIMEOUT_MAX || again == NULL || memchr(copy, 0, size) != NULL)
                abort();
            cJSON_Delete(again);
            free(input);
        } else if (why == NULL || why[0] == '\0') {
            abort();
        }
    }

    /* POST /projects/:id/schedules: bounded strings, the input re-printed. */
    {
        struct apibody_schedule sc;
        char *input = NULL;
        why = NULL;
        if (apibody_schedule(copy, size, &sc, &input, &why) == 0) {
            cJSON *again = cJSON_Parse(input);
            if (sc.workflow[0] == '\0' || sc.cron[0] == '\0' || strlen(sc.cron) > 256 ||
                strlen(sc.tz) > 64 || again == NULL)
                abort();
            cJSON_Delete(again);
            free(input);
        } else if (why == NULL || why[0] == '\0') {
            abort();
        }
    }

    /* A signal's payload: any JSON, re-printed. */
    {
        char *text = NULL;
        why = NULL;
        if (apibody_json_value(copy, size, &text, &why) == 0) {
            cJSON *again = cJSON_Parse(text);
            if (again == NULL)
                abort();
            cJSON_Delete(again);
            free(text);
        } else if (why == NULL || why[0] == '\0') {
            abort();
        }
    }
    free(copy);
    return 0;
}
