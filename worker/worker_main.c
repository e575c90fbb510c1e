/*
 * worker_main.c: entry point of wf-worker, the small program the manager
 * execs for each project's worker (`wf-worker worker <projectId> <workerId>
 * <heartbeat_ms> <manager pid>`) and for each deploy-time check of an
 * uploaded plugin (`wf-worker describe <label> <manager pid>`). It links only libc, libdl and
 * libcjson: a worker holds no database client library and pays no start-up cost for one.
 */
#include <string.h>

#include "worker.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "describe") == 0)
        return describe_main(argc, argv);
    return worker_main(argc, argv);
}
