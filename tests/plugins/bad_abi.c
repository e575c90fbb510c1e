/*
 * bad_abi.c: a plugin built for a future ABI version.
 */
#include <wf/plugin.h>

const struct wf_plugin *wf_plugin_entry(void);

const struct wf_plugin *wf_plugin_entry(void)
{
    static const struct wf_plugin p = {WF_PLUGIN_MAGIC,
                                       sizeof(struct wf_plugin),
                                       WF_ABI_VERSION + 1,
                                       "bad-abi",
                                       "0",
                                       NULL,
                                       0,
                                       NULL,
                                       0};
    return &p;
}
