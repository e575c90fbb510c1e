/*
 * no_entry.c: a shared object without wf_plugin_entry.
 */
int wf_something_else(void);

int wf_something_else(void)
{
    return 42;
}
