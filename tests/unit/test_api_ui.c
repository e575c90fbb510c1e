/*
 * test_api_ui.c: the dashboard's built-in files (server/api_ui.h) hang
 * together. The table generated from WF_UI_FILES must hold index.html,
 * give every file a Content-Type and a one-segment name, and hold every
 * file that another one loads: each "/ui/<name>" that index.html or the
 * style sheet names and each "./<name>" a JavaScript module imports. So a
 * file added to ui/ but forgotten in CMakeLists.txt fails here, not in a
 * browser.
 */
#include <stdio.h>
#include <string.h>

#include "api_ui.h"
#include "testhelp.h"

static const struct api_ui_file *find(const char *name, size_t n)
{
    for (size_t i = 0; i < api_ui_nfiles; i++) {
        if (strlen(api_ui_files[i].name) == n && strncmp(api_ui_files[i].name, name, n) == 0)
            return &api_ui_files[i];
    }
    return NULL;
}

/* Checks that every reference "<prefix><name>" followed by end in f is a
 * file of the table; returns how many references it found. */
static int check_refs(const struct api_ui_file *f, const char *prefix, char end)
{
    const char *text = (const char *)f->bytes;
    size_t plen = strlen(prefix);
    int n = 0;

    for (const char *p = strstr(text, prefix); p != NULL; p = strstr(p + 1, prefix)) {
        const char *name = p + plen;
        size_t len = strcspn(name, "\"'?#/ \n");

        if (name[len] != end)
            continue;
        n++;
        if (find(name, len) == NULL) {
            test_failed++;
            fprintf(stderr, "%s names %.*s, which is not in WF_UI_FILES\n", f->name, (int)len,
                    name);
        }
    }
    return n;
}

int main(void)
{
    const struct api_ui_file *index = find("index.html", 10);
    int imports = 0;

    CHECK(api_ui_nfiles > 0);
    CHECK(index != NULL);
    for (size_t i = 0; i < api_ui_nfiles; i++) {
        const struct api_ui_file *f = &api_ui_files[i];

        CHECK(api_ui_content_type(f->name) != NULL);
        CHECK(strchr(f->name, '/') == NULL && f->name[0] != '\0' && f->name[0] != '.');
        CHECK(*f->len > 0);
        CHECK(f->bytes[*f->len] == '\0');
        if (strstr(f->name, ".js") != NULL)
            imports += check_refs(f, "from './", '\'');
    }
    if (index != NULL)
        CHECK(check_refs(index, "\"/ui/", '"') >= 3); /* the icon, the style sheet, app.js */
    CHECK(imports >= 5);

    CHECK_STR(api_ui_content_type("a.html"), "text/html; charset=utf-8");
    CHECK_STR(api_ui_content_type("a.js"), "text/javascript; charset=utf-8");
    CHECK_STR(api_ui_content_type("a.css"), "text/css; charset=utf-8");
    CHECK_STR(api_ui_content_type("a.svg"), "image/svg+xml");
    CHECK(api_ui_content_type("a.exe") == NULL);
    CHECK(api_ui_content_type("noext") == NULL);
    TEST_REPORT("test_api_ui");
}
