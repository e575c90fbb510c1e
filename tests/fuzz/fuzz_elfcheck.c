/*
 * fuzz_elfcheck.c: fuzz target for elf_check_so, the check every uploaded
 * plugin's bytes (untrusted network input) go through before they are
 * stored, and every plugin file before a worker dlopens it. It parses
 * offsets and counts out of the input, so any read it makes past the input
 * is a bug: AddressSanitizer (in the sanitizer build) reports it.
 *
 * Built two ways: with clang and -DWF_FUZZ=ON as a libFuzzer binary
 * (fuzz_elfcheck), and always as part of test_fuzz_elfcheck, whose main()
 * replays deterministic mutations of a real plugin under ctest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elfcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    /* A private copy of exactly size bytes, so ASan sees any overread. */
    unsigned char *copy = malloc(size > 0 ? size : 1);

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    why[0] = '\0';
    if (!elf_check_so(copy, size, why, sizeof(why)) && why[0] == '\0')
        abort(); /* a refusal must say why */
    free(copy);
    return 0;
}
