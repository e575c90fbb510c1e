/*
 * loader.h: loading a project's plugins into a worker, and the registry of
 * the workflows and activities they provide.
 *
 * Runs only in a worker (the sandbox for the project's code). Each plugin is
 * dlopen'ed with RTLD_NOW | RTLD_LOCAL (unresolved symbols fail the load, and
 * plugins cannot see each other's symbols); its wf_plugin_entry is called and
 * the descriptor's magic, ABI version and size are checked before anything
 * else in it is used (PostgreSQL's dfmgr, Redis's moduleLoad). Loading is all
 * or nothing: on any failure every plugin loaded so far is dlclose'd.
 */
#ifndef WF_LOADER_H
#define WF_LOADER_H

#include <stddef.h>

#include <wf/plugin.h>

struct plg_registry;

/* What to load: a label for messages (the workflow or activity it was
 * deployed as) and the path of a verified file. */
struct plg_source {
    const char *label;
    const char *path;
};

/*
 * Loads every source (sources with the same path are loaded once) and builds
 * the registry. Returns a new registry (free with plg_unload), or NULL with
 * one factual sentence in err, e.g. `incompatible plugin "x": ABI version
 * mismatch (plugin 1, server 2)`; nothing stays loaded then.
 */
struct plg_registry *plg_load(const struct plg_source *sources, size_t n, char *err, size_t errlen);

/* dlcloses every plugin and frees the registry; NULL is a no-op. */
void plg_unload(struct plg_registry *reg);

const struct wf_workflow_def *plg_workflow(const struct plg_registry *reg, const char *name);

/* The declarative definition deployed as workflow name, or NULL when name
 * is a compiled workflow (or none). A file whose first byte is '{' is
 * loaded as a definition (dsl/def.h); loading any adds the built-in
 * activities definitions call (wf.http). */
struct dsl_def;
struct dsl_def *plg_definition(const struct plg_registry *reg, const char *name);
const struct wf_activity_def *plg_activity(const struct plg_registry *reg, const char *name);

/* Reads path, or the whole of the open file fd (from offset 0, whatever
 * the descriptor's position), at most max bytes, into a malloc'ed
 * NUL-terminated buffer with its length in *len; NULL with the reason in
 * err ("could not open it", "it is over N bytes", …). */
char *plg_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);
char *plg_read_fd(int fd, size_t max, size_t *len, char *err, size_t errlen);

/* Adds {"workflows":[names],"activities":[names],"plugins":[{name,version}]}
 * to obj, sorted by name. */
void plg_describe(const struct plg_registry *reg, cJSON *obj);

#endif
