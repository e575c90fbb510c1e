/*
 * deploy.h: `wfctl deploy`, from a plugin file (or C source) to the server.
 *
 * Every file is prepared and checked locally before anything is uploaded,
 * so a bad file in the list leaves the server untouched: a .c file is
 * compiled with the system compiler, each .so is dlopen'ed here and its
 * descriptor checked as the worker will check it (magic, ABI version), and
 * only then are its bytes sent once per workflow and activity it declares.
 */
#ifndef WF_TOOLS_DEPLOY_H
#define WF_TOOLS_DEPLOY_H

#include <stdio.h>

#include "client.h"

/* Prints the usage of `wfctl deploy` to f. */
void ctl_deploy_usage(FILE *f);

/*
 * Runs `wfctl deploy` with its own arguments (argv[0] is "deploy").
 * Returns a ctl_exit status; every failure is printed.
 */
int ctl_deploy_main(const struct ctl_client *c, int argc, char **argv);

#endif /* WF_TOOLS_DEPLOY_H */
