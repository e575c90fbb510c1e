/*
 * dslmod.h: the declarative-workflow module (dsl/, built as wf-dsl.so),
 * opened on demand by workers and describers, and what core and the
 * loader need to know of definitions without it.
 *
 * A worker or describer calls dslmod_open_early once before its sandbox is
 * applied: it opens the module's file (WF_DSL_MODULE, else wf-dsl.so beside
 * the running executable, else ../lib/wf/wf-dsl.so from it) and keeps the
 * descriptor, so that the module can be loaded later through
 * /proc/self/fd whatever the sandbox allows. dslmod_get loads it (dlopen,
 * the entry point, the table's size) the first time a definition needs it;
 * a worker whose project has no definition never maps libjq or libcurl.
 */
#ifndef WF_DSLMOD_H
#define WF_DSLMOD_H

#include <stddef.h>

#include "module.h"

#define DSL_MAX_BYTES (1024 * 1024) /* a definition's text */
#define DSL_HTTP_ACTIVITY "wf.http" /* the built-in activity of `call: http` */

/* 1 when bytes look like a definition rather than a plugin: their first
 * non-blank byte is '{' (a plugin starts with the ELF magic). */
int dslmod_is_definition(const char *bytes, size_t len);

/* Opens the module's file, before the sandbox; a missing file is not an
 * error until a definition needs the module. */
void dslmod_open_early(void);

/* The module, loaded on first use (not thread-safe: the first call comes
 * from the loader, before any run). NULL with the reason in err. */
const struct dsl_module *dslmod_get(char *err, size_t errlen);

#endif
