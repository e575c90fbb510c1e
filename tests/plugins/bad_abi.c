/*
 * bad_abi.c: a plugin built for ABI 1, the realistic case of an old plugin
 * meeting a newer server: its magic and descriptor are well-formed, only its
 * version differs (ABI 1 contexts had no leading size field), so the loader
 * must refuse it with "ABI version mismatch (plugin 1, server 2)".
 */
#include <wf/plugin.h>

#if WF_ABI_VERSION == 1
#error "bad_abi.c must declare a version the server refuses"
#endif

const struct wf_plugin *wf_plugin_entry(void);

const struct wf_plugin *wf_plugin_entry(void)
{
    static const struct wf_plugin p = {WF_PLUGIN_MAGIC,
                                       sizeof(struct wf_plugin),
                                       1u, /* ABI 1 */
                                       "bad-abi",
                                       "0",
                                       NULL,
                                       0,
                                       NULL,
                                       0};
    return &p;
}
