/*
 * attack_exhaust.c: a hostile plugin that tries to exhaust the host:
 * descriptors (opens /dev/null until refused, at most 1,000,000), memory
 * (allocates and touches 64 MiB blocks, at most 2 GiB) and processes
 * (forks sleeping children, at most 512). Each is bounded so that a missing
 * limit is reported, not suffered, by the machine running the test. What it
 * took is kept (the descriptors stay open, the children asleep) so the test
 * sees the worker and its neighbours live on beside it; the memory is
 * freed. See attack.h.
 */
#include <signal.h>
#include <sys/resource.h>

#include "attack.h"

#define MEM_BLOCK (64L << 20)
#define MEM_MAX_BLOCKS 32 /* 2 GiB */
#define FD_MAX 1000000
#define PROC_MAX 512

static void descriptors(void)
{
    struct rlimit rl = {0, 0};
    long n = 0;
    int e = 0;

    (void)getrlimit(RLIMIT_NOFILE, &rl);
    while (n < FD_MAX) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            e = errno;
            break;
        }
        n++;
    }
    if (n >= FD_MAX)
        attack_say("exhaust", "SUCCEEDED", "opened %ld descriptors, no limit", n);
    else
        attack_say("exhaust", "contained", "descriptors: %ld opened, then %s (RLIMIT_NOFILE %llu)",
                   n, attack_errno(e), (unsigned long long)rl.rlim_cur);
}

static void memory(void)
{
    static char *blocks[MEM_MAX_BLOCKS];
    struct rlimit rl = {0, 0};
    int n = 0;

    (void)getrlimit(RLIMIT_AS, &rl);
    for (; n < MEM_MAX_BLOCKS; n++) {
        blocks[n] = malloc((size_t)MEM_BLOCK);
        if (blocks[n] == NULL)
            break;
        memset(blocks[n], 0xa5, (size_t)MEM_BLOCK);
    }
    if (n >= MEM_MAX_BLOCKS)
        attack_say("exhaust", "SUCCEEDED", "allocated %ld MiB, no limit",
                   (long)n * (MEM_BLOCK >> 20));
    else
        attack_say("exhaust", "contained", "memory: %ld MiB, then refused (RLIMIT_AS %llu MiB)",
                   (long)n * (MEM_BLOCK >> 20),
                   rl.rlim_cur == RLIM_INFINITY ? 0ULL : (unsigned long long)(rl.rlim_cur >> 20));
    while (n > 0)
        free(blocks[--n]);
}

static void processes(void)
{
    struct rlimit rl = {0, 0};
    int n = 0, e = 0;

    (void)getrlimit(RLIMIT_NPROC, &rl);
    for (; n < PROC_MAX; n++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;)
                pause();
        }
        if (p < 0) {
            e = errno;
            break;
        }
    }
    if (n >= PROC_MAX)
        attack_say("exhaust", "SUCCEEDED", "forked %d processes, no limit", n);
    else
        attack_say("exhaust", "contained", "processes: %d forked, then %s (RLIMIT_NPROC %llu)", n,
                   attack_errno(e), (unsigned long long)rl.rlim_cur);
}

__attribute__((constructor)) static void attack(void)
{
    memory();
    processes();
    descriptors();
}

ATTACK_PLUGIN("attack-exhaust")
