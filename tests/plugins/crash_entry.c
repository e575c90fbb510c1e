/*
 * crash_entry.c: an entry point that dereferences NULL: the worker that
 * loads it dies, and nothing else may.
 */
#include <stddef.h>

#include <wf/plugin.h>

const struct wf_plugin *wf_plugin_entry(void);

const struct wf_plugin *wf_plugin_entry(void)
{
    volatile const struct wf_plugin *volatile p = NULL;
    return (const struct wf_plugin *)(size_t)p->magic;
}
