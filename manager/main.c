/*
 * main.c: entry point of wf-server. With no arguments it runs the manager
 * (which forks core and the workers); `wf-server worker …` is the worker
 * role, exec'd by the manager only.
 *
 * Exit codes are documented in docs/operations.md and common/exitcodes.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "config.h"
#include "exitcodes.h"
#include "log.h"
#include "manager.h"
#include "worker.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: wf-server [--help | --version]\n"
                 "\n"
                 "Runs the workflow worker service: the manager, its core (HTTP API on PORT,\n"
                 "default 3011, and every PostgreSQL connection) and one worker process per\n"
                 "started project. Configuration comes from the environment; see\n"
                 "docs/operations.md (DATABASE_URL is required).\n");
}

int main(int argc, char **argv)
{
    static struct wf_config cfg; /* lives as long as the process (core inherits it) */
    char err[256];

    if (argc >= 2 && strcmp(argv[1], "worker") == 0)
        return worker_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "describe") == 0)
        return describe_main(argc, argv);
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return WF_EXIT_OK;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("wf-server %s\n", WF_VERSION);
        return WF_EXIT_OK;
    }
    if (argc != 1) {
        usage(stderr);
        return WF_EXIT_USAGE;
    }
    if (config_load(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "wf-server: invalid configuration: %s\n", err);
        return WF_EXIT_USAGE;
    }
    log_init("manager", cfg.log_level, cfg.log_json);
    /*
     * Secrets out of reach of project code (DESIGN §2): not dumpable, so no
     * process of our uid can read our environment or memory or ptrace us
     * (core inherits it through fork), and the secrets wiped from the
     * environment block besides.
     */
    if (prctl(PR_SET_DUMPABLE, 0) < 0) {
        fprintf(stderr, "wf-server: could not make the process undumpable: %s\n", strerror(errno));
        return WF_EXIT_SYSCALL;
    }
    if (config_take_secrets(&cfg) < 0) {
        fprintf(stderr, "wf-server: out of memory\n");
        return WF_EXIT_SYSCALL;
    }
    return mgr_main(&cfg);
}
