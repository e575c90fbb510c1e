/*
 * bench_dlopen.c: the child of `bench_baseline spawn-dlopen`: loads one
 * plugin as a worker does (dlopen RTLD_NOW | RTLD_LOCAL, wf_plugin_entry,
 * magic and ABI checks) and exits 0. Linked like wf-worker (libc, libdl,
 * libcjson and nothing else), so fork + exec of it + the dlopen is the floor
 * of a worker start on this machine (DESIGN.md §2).
 *
 *   bench_dlopen SO
 */
#include <dlfcn.h>
#include <stdio.h>

#include <wf/plugin.h>

int main(int argc, char **argv)
{
    wf_plugin_entry_fn entry;
    const struct wf_plugin *p;
    void *dl;

    if (argc != 2) {
        fprintf(stderr, "usage: bench_dlopen SO\n");
        return 2;
    }
    /* Plugins take cJSON from the host, as from the worker: keep it linked. */
    if (cJSON_Version() == NULL)
        return 1;
    dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "bench_dlopen: %s\n", dlerror());
        return 1;
    }
    *(void **)&entry = dlsym(dl, WF_PLUGIN_ENTRY_SYMBOL);
    p = entry != NULL ? entry() : NULL;
    if (p == NULL || p->magic != WF_PLUGIN_MAGIC || p->abi_version != WF_ABI_VERSION) {
        fprintf(stderr, "bench_dlopen: %s is not a wf plugin of this ABI\n", argv[1]);
        return 1;
    }
    return 0;
}
