/*
 * bad_magic.c: exports the entry point, but its descriptor has no magic.
 */
#include <wf/plugin.h>

const struct wf_plugin *wf_plugin_entry(void);

const struct wf_plugin *wf_plugin_entry(void)
{
    static const struct wf_plugin p = {
        0xdeadbeefu, sizeof(struct wf_plugin), WF_ABI_VERSION, "bad-magic", "0", NULL, 0, NULL, 0};
    return &p;
}
