/*
 * replay_corpus.c: runs a fuzz target under ctest without a fuzzing engine:
 * every seed of the corpus (WF_FUZZ_CORPUS: a directory under
 * tests/fuzz/corpus/, or one seed file), then WF_FUZZ_MUTATIONS (4,000)
 * deterministic mutations of each (bit flips, byte stores of 0x00/0xff/
 * random, truncations, insertions of JSON punctuation; half of the edits in
 * the first WF_FUZZ_HEAD_BYTES, where a format's header is), then every file
 * named on the command line. With WF_FUZZ_MSG_HEADER (the message decoder),
 * the mutations also aim at the record header: its length and flags
 * overwritten with extreme values.
 * Fixed seed, so a failure repeats. Exit 0 when every input was handled (a
 * crash, an abort or a sanitizer report ends the process otherwise), 1 when
 * the corpus cannot be read. WF_FUZZ_NAME names the target in messages.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef WF_FUZZ_MUTATIONS
#define WF_FUZZ_MUTATIONS 4000 /* per seed */
#endif
#ifndef WF_FUZZ_HEAD_BYTES
#define WF_FUZZ_HEAD_BYTES 8 /* half the edits land here, where the format's rules are */
#endif
#define MUTATIONS WF_FUZZ_MUTATIONS
#define SLACK 64 /* room for insertions */

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

    *len = 0;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

#ifdef WF_FUZZ_MSG_HEADER
static void set_len(unsigned char *buf, size_t n, uint32_t v)
{
    if (n >= 8)
        memcpy(buf + 4, &v, sizeof(v));
}
#define HEADER_EDITS 2 /* the two header cases below */
#else
#define HEADER_EDITS 0
#endif

/* Runs MUTATIONS mutants of seed[0..len-1]; returns how many. */
static long mutate(const unsigned char *seed, size_t len)
{
    unsigned char *buf = malloc(len + SLACK);
    long runs = 0;

    if (buf == NULL)
        return 0;
    for (int i = 0; i < MUTATIONS; i++) {
        size_t n = len;
        int edits = 1 + (int)(rng() % 4);

        memcpy(buf, seed, len);
        for (int e = 0; e < edits; e++) {
            /* Half in the first WF_FUZZ_HEAD_BYTES, where the rules are. */
            size_t at = n == 0           ? 0
                        : rng() % 2 == 0 ? (size_t)(rng() % WF_FUZZ_HEAD_BYTES)
                                         : (size_t)(rng() % n);
            if (at >= n && rng() % 7 != 0)
                continue;
            switch (rng() % (5 + HEADER_EDITS)) {
            case 0:
                if (at < n)
                    buf[at] ^= (unsigned char)(1u << (rng() % 8));
                break;
            case 1:
                if (at < n)
                    buf[at] = rng() % 2 ? 0xff : 0x00;
                break;
            case 2:
                if (at < n)
                    buf[at] = (unsigned char)rng();
                break;
            case 3:
                n = n == 0 ? 0 : (size_t)(rng() % n);
                break;
            case 4: {
                /* Insert up to 8 bytes (quotes, braces, backslashes most). */
                static const char pick[] = "\"\\{}[]:,u0 \x00\xff";
                size_t k = 1 + (size_t)(rng() % 8);
                if (n + k > len + SLACK || at > n)
                    break;
                memmove(buf + at + k, buf + at, n - at);
                for (size_t j = 0; j < k; j++)
                    buf[at + j] = (unsigned char)pick[rng() % (sizeof(pick) - 1)];
                n += k;
                break;
            }
#ifdef WF_FUZZ_MSG_HEADER
            case 5: {
                static const uint32_t lens[] = {
                    0, 1, 7, 8, 65535, 65536, 65537, 16777216, 16777217, 0x7fffffff, 0xffffffff};
                set_len(buf, n, rng() % 2 ? lens[rng() % 11] : (uint32_t)(n - 8 + rng() % 3 - 1));
                break;
            }
            case 6:
                if (n >= 4)
                    buf[3] = (unsigned char)(rng() % 8);
                break;
#endif
            default:
                break;
            }
        }
#ifdef WF_FUZZ_MSG_HEADER
        /* Half the time, keep the length field honest so the JSON parser,
         * not the header check, sees the mutation. */
        if (rng() % 2 == 0 && n >= 8)
            set_len(buf, n, (uint32_t)(n - 8));
#endif
        LLVMFuzzerTestOneInput(buf, n);
        runs++;
    }
    free(buf);
    return runs;
}

/* Runs one seed and its mutants; returns the runs, or -1 if unreadable. */
static long run_seed(const char *path)
{
    size_t len;
    unsigned char *seed = read_all(path, &len);
    long runs;

    if (seed == NULL) {
        fprintf(stderr, "%s: could not read seed %s\n", WF_FUZZ_NAME, path);
        return -1;
    }
    LLVMFuzzerTestOneInput(seed, len);
    runs = 1 + mutate(seed, len);
    free(seed);
    return runs;
}

int main(int argc, char **argv)
{
    DIR *d = opendir(WF_FUZZ_CORPUS);
    struct dirent *e;
    long runs = 0, seeds = 0, r;

    /* The corpus is a directory of seeds, or one seed file. */
    if (d == NULL) {
        r = run_seed(WF_FUZZ_CORPUS);
        if (r < 0)
            return 1;
        runs += r;
        seeds++;
    }
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[4096];

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", WF_FUZZ_CORPUS, e->d_name);
        r = run_seed(path);
        if (r < 0) {
            closedir(d);
            return 1;
        }
        runs += r;
        seeds++;
    }
    if (d != NULL)
        closedir(d);
    if (seeds == 0) {
        fprintf(stderr, "%s: no seeds in %s\n", WF_FUZZ_NAME, WF_FUZZ_CORPUS);
        return 1;
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
    printf("%s: %ld seeds, %ld passed, 0 failed\n", WF_FUZZ_NAME, seeds, runs);
    return 0;
}
