/*
 * crash_worker.c: a stand-in worker program that crashes at once.
 *
 * The crash tests run the server with WF_WORKER_PROGRAM pointing here, so
 * every worker the manager starts dies by SIGABRT before it can report
 * ready; that drives the restart backoff and the crash-loop breaker. Core
 * dumps are disabled first so a test run leaves no core files behind.
 */
#include <stdlib.h>
#include <sys/resource.h>

int main(void)
{
    struct rlimit none = {0, 0};

    (void)setrlimit(RLIMIT_CORE, &none);
    abort();
}
