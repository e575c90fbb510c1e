/*
 * worker_main.c: entry point of wf-worker, the small program the manager
 * execs for each project's worker (`wf-worker worker <projectId> <workerId>
 * <heartbeat_ms>`). It links only libc, libdl and libcjson: a worker holds no
 * database client library and pays no start-up cost for one.
 */
#include "worker.h"

int main(int argc, char **argv)
{
    return worker_main(argc, argv);
}
