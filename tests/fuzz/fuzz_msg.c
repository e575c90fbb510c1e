/*
 * fuzz_msg.c: fuzz target for msg_decode, the check every record a worker
 * sends goes through in core (a worker hosts untrusted plugin code, so its
 * records are untrusted input). The input is one record as recvmsg would
 * deliver it, with no descriptors. Any read past the input is a bug
 * (AddressSanitizer reports it); so is an accepted message that is not an
 * object, a refusal with another errno than EBADMSG or EMSGSIZE, or an
 * accepted message that cannot be encoded and decoded again (core forwards
 * what it received).
 *
 * Built two ways, as fuzz_elfcheck.c is: with clang and -DWF_FUZZ=ON as a
 * libFuzzer binary (fuzz_msg), and always as part of test_fuzz_msg, whose
 * main() replays the seed corpus and mutations of it under ctest.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Encodes got and decodes it again; aborts if that fails but for lack of
 * memory or a re-encoded text over the cap. */
static void round_trip(const cJSON *got)
{
    struct msg_rec rec;
    cJSON *again = NULL;
    int fd;

    if (msg_encode(got, 0, &rec) < 0) {
        if (errno != ENOMEM && errno != EMSGSIZE)
            abort();
        return;
    }
    fd = rec.memfd;
    rec.memfd = -1; /* msg_decode consumes it */
    if (msg_decode((const char *)rec.buf, rec.len, &fd, fd >= 0 ? 1 : 0, 0, &again, NULL) < 0) {
        if (errno != EBADMSG) /* EBADMSG here can only be a parse out of memory */
            abort();
    } else if (!cJSON_IsObject(again)) {
        abort();
    }
    cJSON_Delete(again);
    msg_rec_free(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so ASan sees any overread. */
    char *copy = malloc(size > 0 ? size : 1);
    cJSON *got = NULL;
    int fd = -2;

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    if (msg_decode(copy, size, NULL, 0, 0, &got, &fd) == 0) {
        if (!cJSON_IsObject(got) || fd != -1)
            abort();
        round_trip(got);
        cJSON_Delete(got);
    } else if ((errno != EBADMSG && errno != EMSGSIZE) || got != NULL || fd != -2) {
        abort();
    }
    free(copy);
    return 0;
}
