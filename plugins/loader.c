/*
 * loader.c: see loader.h.
 *
 * Order of checks for each file (STYLE §16): the ELF structure (elfcheck.c:
 * a truncated file would otherwise SIGBUS inside dlopen); dlopen; dlsym the one entry
 * point; call it; check magic, then ABI version, then size; only then read
 * the tables. The version comes before the size because a plugin built for
 * another ABI may lay out its descriptor differently: "ABI version mismatch
 * (plugin 1, server 2)" tells its author what to do (rebuild), a size
 * mismatch would not. Every version but WF_ABI_VERSION is refused, older
 * and newer alike: ABI 1 plugins read their contexts without the leading
 * size field of ABI 2, so running one would misread every context field.
 * Names must be non-empty and unique across all of a project's plugins (a
 * duplicate is an error, not a silent override).
 */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dslmod.h"
#include "elfcheck.h"
#include "jsonutil.h"
#include "log.h"

/* A loaded plugin; or a declarative definition (dl NULL, def set), whose
 * descriptor is built here with one workflow; or the built-in activities
 * that definitions call (dl and def NULL, plugin = &builtin_plugin). */
struct plg_handle {
    void *dl;
    const struct wf_plugin *plugin;
    char *path;
    struct dsl_def *def;
    const struct dsl_module *mod;    /* def's module */
    struct wf_plugin *made;          /* the descriptor built for def */
    struct wf_workflow_def *made_wf; /* its one workflow */
};

/* The built-in activities, their functions from the module (set when it
 * is loaded: plugins load on one thread, before any run). */
static struct wf_activity_def builtin_activities[] = {
    {DSL_HTTP_ACTIVITY, NULL, {3, 1000, 2.0, 10000}, 30000},
};

static const struct wf_plugin builtin_plugin = {
    WF_PLUGIN_MAGIC,
    sizeof(struct wf_plugin),
    WF_ABI_VERSION,
    "builtin",
    "1",
    NULL,
    0,
    builtin_activities,
    sizeof(builtin_activities) / sizeof(builtin_activities[0]),
};

/* Never called: a definition's runs go to dsl_run (worker/runs.c). */
static enum wf_status definition_fn(struct wf_ctx *ctx, const cJSON *input, cJSON **output)
{
    (void)ctx;
    (void)input;
    *output = NULL;
    return WF_EINVAL;
}

struct plg_registry {
    struct plg_handle *handles;
    size_t nhandles;
    const struct wf_workflow_def **workflows; /* sorted by name */
    size_t nworkflows;
    const struct wf_activity_def **activities; /* sorted by name */
    size_t nactivities;
};

/* A descriptor's optional string, or fallback when the plugin left it NULL
 * (never pass NULL to "%s"). */
static const char *plugin_text(const char *s, const char *fallback)
{
    return s != NULL ? s : fallback;
}

static int cmp_workflow(const void *a, const void *b)
{
    return strcmp((*(const struct wf_workflow_def *const *)a)->name,
                  (*(const struct wf_workflow_def *const *)b)->name);
}

static int cmp_activity(const void *a, const void *b)
{
    return strcmp((*(const struct wf_activity_def *const *)a)->name,
                  (*(const struct wf_activity_def *const *)b)->name);
}

char *plg_read_fd(int fd, size_t max, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    size_t cap, n = 0;
    char *buf, *grown;

    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "could not read it: %s", strerror(errno));
        return NULL;
    }
    /* room for the size it has (or max), the NUL, and one byte to see past max */
    cap = (st.st_size > 0 && (size_t)st.st_size <= max ? (size_t)st.st_size : max) + 2;
    buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (;;) {
        ssize_t r;
        if (n + 1 == cap) { /* full: the file grew, or is over max */
            if (n > max)
                break;
            cap = cap * 2 < max + 2 ? cap * 2 : max + 2;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory");
                free(buf);
                return NULL;
            }
            buf = grown;
        }
        r = pread(fd, buf + n, cap - 1 - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "could not read it: %s", strerror(errno));
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        snprintf(err, errlen, "it is over %zu bytes", max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

char *plg_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf;

    if (fd < 0) {
        snprintf(err, errlen, "could not open it");
        return NULL;
    }
    buf = plg_read_fd(fd, max, len, err, errlen);
    close(fd);
    return buf;
}

/* Loads a declarative definition deployed as src->label. */
static int open_definition(const struct plg_source *src, struct plg_handle *h, char *err,
                           size_t errlen)
{
    char why[768];
    size_t len = 0;
    const struct dsl_module *m = dslmod_get(why, sizeof(why));
    char *text = m != NULL ? plg_read_file(src->path, DSL_MAX_BYTES, &len, why, sizeof(why)) : NULL;
    const cJSON *doc;

    if (text == NULL) {
        snprintf(err, errlen, "could not load definition \"%s\": %s", src->label, why);
        return -1;
    }
    /* Named by its document: the label is not the workflow's name for an
     * older code version ("version <sha>"); deploy checked they agree. */
    h->def = m->load(text, len, NULL, why, sizeof(why));
    h->mod = m;
    builtin_activities[0].fn = m->http_activity;
    free(text);
    h->made = calloc(1, sizeof(*h->made));
    h->made_wf = calloc(1, sizeof(*h->made_wf));
    h->path = strdup(src->path);
    if (h->def == NULL || h->made == NULL || h->made_wf == NULL || h->path == NULL) {
        snprintf(err, errlen, "could not load definition \"%s\": %s", src->label,
                 h->def == NULL ? why : "out of memory");
        if (h->def != NULL)
            m->free(h->def);
        free(h->made);
        free(h->made_wf);
        free(h->path);
        memset(h, 0, sizeof(*h));
        return -1;
    }
    doc = cJSON_GetObjectItemCaseSensitive(m->root(h->def), "document");
    h->made_wf->name = m->name(h->def);
    h->made_wf->fn = definition_fn;
    h->made->magic = WF_PLUGIN_MAGIC;
    h->made->size = sizeof(struct wf_plugin);
    h->made->abi_version = WF_ABI_VERSION;
    h->made->name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "namespace"));
    h->made->version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "version"));
    h->made->workflows = h->made_wf;
    h->made->n_workflows = 1;
    h->plugin = h->made;
    return 0;
}

/* 1 when the file at path starts like a definition (its first bytes). */
static int is_definition_file(const char *path)
{
    char head[64];
    size_t n = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        return 0;
    n = fread(head, 1, sizeof(head), f);
    fclose(f);
    return dslmod_is_definition(head, n);
}

/* Opens and checks one plugin. Returns 0 with *h filled, or -1 with err set
 * and nothing left open. */
static int open_one(const struct plg_source *src, struct plg_handle *h, char *err, size_t errlen)
{
    wf_plugin_entry_fn entry;
    const struct wf_plugin *p;
    void *dl;
    const char *e;
    char why[256];

    if (is_definition_file(src->path))
        return open_definition(src, h, err, errlen);
    if (!elf_check_file(src->path, why, sizeof(why))) {
        snprintf(err, errlen, "could not load plugin \"%s\": %s", src->label, why);
        return -1;
    }
    dlerror();
    dl = dlopen(src->path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        e = dlerror();
        snprintf(err, errlen, "could not load plugin \"%s\": %s", src->label,
                 e != NULL ? e : "unknown error");
        return -1;
    }
    *(void **)&entry = dlsym(dl, WF_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        snprintf(err, errlen, "incompatible plugin \"%s\": missing magic block (no %s symbol)",
                 src->label, WF_PLUGIN_ENTRY_SYMBOL);
        dlclose(dl);
        return -1;
    }
    p = entry();
    if (p == NULL || p->magic != WF_PLUGIN_MAGIC) {
        snprintf(err, errlen, "incompatible plugin \"%s\": missing magic block", src->label);
        dlclose(dl);
        return -1;
    }
    if (p->abi_version != WF_ABI_VERSION) {
        snprintf(err, errlen,
                 "incompatible plugin \"%s\": ABI version mismatch (plugin %u, "
                 "server %u)",
                 src->label, p->abi_version, WF_ABI_VERSION);
        dlclose(dl);
        return -1;
    }
    if (p->size != sizeof(struct wf_plugin)) {
        snprintf(err, errlen, "incompatible plugin \"%s\": descriptor size %u, expected %zu",
                 src->label, p->size, sizeof(struct wf_plugin));
        dlclose(dl);
        return -1;
    }
    if ((p->n_workflows > 0 && p->workflows == NULL) ||
        (p->n_activities > 0 && p->activities == NULL) || p->n_workflows > 100000 ||
        p->n_activities > 100000) {
        snprintf(err, errlen, "incompatible plugin \"%s\": malformed descriptor tables",
                 src->label);
        dlclose(dl);
        return -1;
    }
    h->dl = dl;
    h->plugin = p;
    h->path = strdup(src->path);
    if (h->path == NULL) {
        snprintf(err, errlen, "could not load plugin \"%s\": out of memory", src->label);
        dlclose(dl);
        return -1;
    }
    return 0;
}

/* Fills the sorted tables and rejects bad or duplicate names. */
static int build_tables(struct plg_registry *reg, char *err, size_t errlen)
{
    size_t nw = 0, na = 0;

    for (size_t i = 0; i < reg->nhandles; i++) {
        nw += reg->handles[i].plugin->n_workflows;
        na += reg->handles[i].plugin->n_activities;
    }
    reg->workflows = calloc(nw + 1, sizeof(*reg->workflows));
    reg->activities = calloc(na + 1, sizeof(*reg->activities));
    if (reg->workflows == NULL || reg->activities == NULL) {
        snprintf(err, errlen, "could not load plugins: out of memory");
        return -1;
    }
    for (size_t i = 0; i < reg->nhandles; i++) {
        const struct wf_plugin *p = reg->handles[i].plugin;
        for (size_t j = 0; j < p->n_workflows; j++) {
            const struct wf_workflow_def *w = &p->workflows[j];
            if (w->name == NULL || w->name[0] == '\0' || w->fn == NULL) {
                snprintf(err, errlen,
                         "incompatible plugin \"%s\": workflow %zu has no name or "
                         "function",
                         plugin_text(p->name, "?"), j);
                return -1;
            }
            reg->workflows[reg->nworkflows++] = w;
        }
        for (size_t j = 0; j < p->n_activities; j++) {
            const struct wf_activity_def *a = &p->activities[j];
            if (a->name == NULL || a->name[0] == '\0' || a->fn == NULL) {
                snprintf(err, errlen,
                         "incompatible plugin \"%s\": activity %zu has no name or "
                         "function",
                         plugin_text(p->name, "?"), j);
                return -1;
            }
            reg->activities[reg->nactivities++] = a;
        }
    }
    qsort(reg->workflows, reg->nworkflows, sizeof(*reg->workflows), cmp_workflow);
    qsort(reg->activities, reg->nactivities, sizeof(*reg->activities), cmp_activity);
    for (size_t i = 1; i < reg->nworkflows; i++) {
        if (strcmp(reg->workflows[i - 1]->name, reg->workflows[i]->name) == 0) {
            snprintf(err, errlen, "duplicate workflow \"%s\" in the project's plugins",
                     reg->workflows[i]->name);
            return -1;
        }
    }
    for (size_t i = 1; i < reg->nactivities; i++) {
        if (strcmp(reg->activities[i - 1]->name, reg->activities[i]->name) == 0) {
            snprintf(err, errlen, "duplicate activity \"%s\" in the project's plugins",
                     reg->activities[i]->name);
            return -1;
        }
    }
    return 0;
}

struct plg_registry *plg_load(const struct plg_source *sources, size_t n, char *err, size_t errlen)
{
    struct plg_registry *reg = calloc(1, sizeof(*reg));
    int defs = 0;

    /* one more for the built-in activities */
    if (reg == NULL || (reg->handles = calloc(n + 1, sizeof(*reg->handles))) == NULL) {
        snprintf(err, errlen, "could not load plugins: out of memory");
        free(reg);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < reg->nhandles; j++) {
            if (strcmp(reg->handles[j].path, sources[i].path) == 0)
                seen = 1;
        }
        if (seen)
            continue;
        if (open_one(&sources[i], &reg->handles[reg->nhandles], err, errlen) < 0) {
            plg_unload(reg);
            return NULL;
        }
        if (reg->handles[reg->nhandles].def != NULL) {
            log_info("loaded definition \"%s\" %s from %s", sources[i].label,
                     plugin_text(reg->handles[reg->nhandles].plugin->version, ""), sources[i].path);
            defs++;
        } else {
            log_info("loaded plugin \"%s\" %s from %s",
                     plugin_text(reg->handles[reg->nhandles].plugin->name, "?"),
                     plugin_text(reg->handles[reg->nhandles].plugin->version, ""), sources[i].path);
        }
        reg->nhandles++;
    }
    if (defs > 0) {
        reg->handles[reg->nhandles].plugin = &builtin_plugin;
        reg->handles[reg->nhandles].path = strdup("(built in)");
        if (reg->handles[reg->nhandles].path == NULL) {
            snprintf(err, errlen, "could not load plugins: out of memory");
            plg_unload(reg);
            return NULL;
        }
        reg->nhandles++;
    }
    if (build_tables(reg, err, errlen) < 0) {
        plg_unload(reg);
        return NULL;
    }
    return reg;
}

void plg_unload(struct plg_registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->nhandles; i++) {
        if (reg->handles[i].dl != NULL)
            dlclose(reg->handles[i].dl);
        if (reg->handles[i].def != NULL)
            reg->handles[i].mod->free(reg->handles[i].def);
        free(reg->handles[i].made);
        free(reg->handles[i].made_wf);
        free(reg->handles[i].path);
    }
    free(reg->handles);
    free(reg->workflows);
    free(reg->activities);
    free(reg);
}

/* Binary searches of the sorted tables, with the comparators qsort used. */
const struct wf_workflow_def *plg_workflow(const struct plg_registry *reg, const char *name)
{
    const struct wf_workflow_def key = {name, NULL};
    const struct wf_workflow_def *kp = &key;
    const struct wf_workflow_def **hit =
        bsearch(&kp, reg->workflows, reg->nworkflows, sizeof(*reg->workflows), cmp_workflow);

    return hit != NULL ? *hit : NULL;
}

const struct wf_activity_def *plg_activity(const struct plg_registry *reg, const char *name)
{
    const struct wf_activity_def key = {name, NULL, WF_RETRY_NONE, 0};
    const struct wf_activity_def *kp = &key;
    const struct wf_activity_def **hit =
        bsearch(&kp, reg->activities, reg->nactivities, sizeof(*reg->activities), cmp_activity);

    return hit != NULL ? *hit : NULL;
}

struct dsl_def *plg_definition(const struct plg_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->nhandles; i++)
        if (reg->handles[i].def != NULL &&
            strcmp(reg->handles[i].mod->name(reg->handles[i].def), name) == 0)
            return reg->handles[i].def;
    return NULL;
}

void plg_describe(const struct plg_registry *reg, cJSON *obj)
{
    cJSON *wf = cJSON_AddArrayToObject(obj, "workflows");
    cJSON *act = cJSON_AddArrayToObject(obj, "activities");
    cJSON *pl = cJSON_AddArrayToObject(obj, "plugins");

    for (size_t i = 0; i < reg->nworkflows; i++)
        ju_append(wf, cJSON_CreateString(reg->workflows[i]->name));
    for (size_t i = 0; i < reg->nactivities; i++)
        ju_append(act, cJSON_CreateString(reg->activities[i]->name));
    for (size_t i = 0; i < reg->nhandles; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", plugin_text(reg->handles[i].plugin->name, ""));
        cJSON_AddStringToObject(p, "version", plugin_text(reg->handles[i].plugin->version, ""));
        ju_append(pl, p);
    }
}
