/*
 * sandbox.h: the sandbox a worker (or a describer) applies to itself before
 * any plugin is loaded: its own process group, resource limits,
 * PR_SET_NO_NEW_PRIVS, Landlock where the kernel has it, and a seccomp
 * filter. The rules, and why each one is there, are in sandbox.c's header.
 *
 * Every layer the kernel lacks is skipped with one warning and reported as
 * false; a layer the kernel has but that could not be applied is an error,
 * after which the process must not load plugins (it reports the error and
 * exits). Nothing here can be undone: once applied, the restrictions hold
 * for the process and every thread and child it makes.
 */
#ifndef WF_SANDBOX_H
#define WF_SANDBOX_H

#include <stddef.h>

#include <cJSON.h>

/*
 * What the manager asks for, from the worker's environment. Strings point
 * into the environment (they live as long as the process; nothing to free).
 * Paths are absolute; a path that does not exist when the sandbox is applied
 * is skipped with a warning (Landlock rules name existing files).
 */
struct sandbox_config {
    const char *scratch_dir; /* WF_SCRATCH_DIR: the worker's private read-write directory */
    const char *rw_paths;    /* WF_SANDBOX_RW_PATHS: colon-separated extra read-write paths */
    const char *ro_paths;    /* WF_SANDBOX_RO_PATHS: colon-separated extra read-only paths */
    long max_as_bytes;       /* WF_WORKER_MAX_AS_MB (as bytes): RLIMIT_AS; 0 leaves it */
    long max_files;          /* WF_WORKER_MAX_FILES: RLIMIT_NOFILE; 0 leaves it */
    long max_procs;          /* WF_WORKER_MAX_PROCS: RLIMIT_NPROC; 0 leaves it */
    int no_landlock;         /* WF_SANDBOX_DISABLE names landlock (diagnosis only) */
    int no_seccomp;          /* WF_SANDBOX_DISABLE names seccomp (diagnosis only) */
};

/*
 * Fills cfg from the environment; unset or empty variables leave their field
 * NULL or 0:
 *   WF_SCRATCH_DIR       absolute path of the worker's read-write directory
 *   WF_SANDBOX_RW_PATHS  colon-separated absolute paths, read-write
 *   WF_SANDBOX_RO_PATHS  colon-separated absolute paths, read-only
 *   WF_WORKER_MAX_AS_MB  address-space limit in MiB (16 .. 4194304)
 *   WF_WORKER_MAX_FILES  open-file limit (16 .. 1048576)
 *   WF_WORKER_MAX_PROCS  process limit of the worker's user (1 .. 4194304;
 *                        RLIMIT_NPROC counts every process of the uid, and
 *                        root ignores it)
 *   WF_SANDBOX_DISABLE   "landlock", "seccomp" or both, comma-separated: those
 *                        layers are skipped (reported false, with a warning);
 *                        for diagnosis, and for tests of the layers beneath
 * Returns 0, or -1 with one sentence in err (cfg then partly filled).
 */
int sandbox_config_from_env(struct sandbox_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Applies every layer it can, in this order: own process group; RLIMIT_CORE
 * 0 and the configured limits; PR_SET_NO_NEW_PRIVS; Landlock; seccomp. Call
 * it while the process has one thread (Landlock restricts only the calling
 * thread). Adds what it did to report (borrowed; may be NULL):
 *   {"processGroup":true,"rlimits":true,"noNewPrivs":true,"landlock":true,
 *    "landlockAbi":7,"seccomp":true,"seccompArch":"x86_64",
 *    "warnings":["…"]}   (warnings only when a layer is missing)
 * and logs one warning per missing layer, saying why. Returns 0, or -1 with
 * one sentence in err when a layer the kernel has could not be applied (the
 * layers before it stay applied).
 */
int sandbox_apply(const struct sandbox_config *cfg, cJSON *report, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
