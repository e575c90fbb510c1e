/*
 * hang_entry.c: a test plugin whose entry point never returns (it sleeps
 * forever). Whoever loads it must bound the time: the deploy-time check
 * kills its describer after 5 s and refuses the upload.
 */
#include <unistd.h>

#include <wf/plugin.h>

const struct wf_plugin *wf_plugin_entry(void);

const struct wf_plugin *wf_plugin_entry(void)
{
    for (;;)
        pause();
}
