/*
 * testhelp.h: a tiny unit-test harness (after Redis's testhelp.h). Each
 * test program calls TEST_REPORT() at the end of main; a failed check prints
 * file:line and the expression, and the program exits 1; so does a program
 * that ran no check at all.
 */
#ifndef WF_TESTHELP_H
#define WF_TESTHELP_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

static int test_failed;
static int test_passed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ == vb_) {                                                                          \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, va_,     \
                    vb_);                                                                          \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (sa_ != NULL && sb_ != NULL && strcmp(sa_, sb_) == 0) {                                 \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,      \
                    sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                                   \
        }                                                                                          \
    } while (0)

/* The number of open descriptors of this process (opendir's own one not
 * counted), or -1: tests compare it before and after to catch fd leaks. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1;
}

/* A test that ran no check at all fails: it proves nothing. */
#define TEST_REPORT(name)                                                                          \
    do {                                                                                           \
        printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);                      \
        if (test_passed + test_failed == 0)                                                        \
            fprintf(stderr, "%s: ran no checks\n", name);                                          \
        return test_failed == 0 && test_passed > 0 ? 0 : 1;                                        \
    } while (0)

#endif
