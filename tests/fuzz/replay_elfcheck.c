/*
 * replay_elfcheck.c: runs the elfcheck fuzz target under ctest without a
 * fuzzing engine: the test plugin good.so, then 20,000 deterministic
 * mutations of it (bit flips, byte stores of 0x00/0xff/random, truncations
 * at random lengths, header fields overwritten with extreme values), then
 * every file named on the command line. Fixed seed, so a failure repeats.
 * Exit 0 when every input was handled (a crash or a sanitizer report ends
 * the process otherwise).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    size_t len = 0;
    unsigned char *seed = read_all(WF_FUZZ_SEED, &len);
    unsigned char *buf;
    long runs = 0;

    if (seed == NULL) {
        fprintf(stderr, "replay_elfcheck: could not read seed %s\n", WF_FUZZ_SEED);
        return 1;
    }
    buf = malloc(len);
    if (buf == NULL)
        return 1;
    LLVMFuzzerTestOneInput(seed, len);
    for (int i = 0; i < 20000; i++) {
        size_t n = len;
        int edits = 1 + (int)(rng() % 8);

        memcpy(buf, seed, len);
        for (int e = 0; e < edits; e++) {
            /* Mostly in the headers, where the offsets are. */
            size_t at = rng() % 4 == 0 ? (size_t)(rng() % len) : (size_t)(rng() % 512);
            switch (rng() % 5) {
            case 0:
                buf[at] ^= (unsigned char)(1u << (rng() % 8));
                break;
            case 1:
                buf[at] = 0xff;
                break;
            case 2:
                buf[at] = 0x00;
                break;
            case 3:
                buf[at] = (unsigned char)rng();
                break;
            default:
                n = (size_t)(rng() % len);
                break;
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
        runs++;
    }
    for (int i = 1; i < argc; i++) {
        size_t flen = 0;
        unsigned char *f = read_all(argv[i], &flen);
        if (f != NULL) {
            LLVMFuzzerTestOneInput(f, flen);
            runs++;
            free(f);
        }
    }
    free(buf);
    free(seed);
    printf("replay_elfcheck: %ld passed, 0 failed\n", runs + 1);
    return 0;
}
