/*
 * curl_lazy.c: see curl_lazy.h.
 *
 * Invariants: the table is written once, inside pthread_once, before any
 * caller can see a 0 from sa_curl_load; a failed load leaves the table
 * unused and its reason cached. libcurl stays loaded until the plugin is
 * unloaded, when the destructor balances curl_global_init and dlcloses it.
 */
#include "curl_lazy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct sa_curl_api sa_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static void *lib;
static int loaded;
static char load_error[256];

/* Resolves one symbol into *slot; returns 0 or -1 (load_error set). */
static int resolve(void **slot, const char *name)
{
    *slot = dlsym(lib, name);
    if (*slot == NULL) {
        snprintf(load_error, sizeof(load_error), "libcurl has no %s", name);
        return -1;
    }
    return 0;
}

static void load(void)
{
    static const struct {
        size_t offset;
        const char *name;
    } syms[] = {
        {offsetof(struct sa_curl_api, global_init), "curl_global_init"},
        {offsetof(struct sa_curl_api, global_cleanup), "curl_global_cleanup"},
        {offsetof(struct sa_curl_api, easy_init), "curl_easy_init"},
        {offsetof(struct sa_curl_api, easy_setopt), "curl_easy_setopt"},
        {offsetof(struct sa_curl_api, easy_perform), "curl_easy_perform"},
        {offsetof(struct sa_curl_api, easy_getinfo), "curl_easy_getinfo"},
        {offsetof(struct sa_curl_api, easy_cleanup), "curl_easy_cleanup"},
        {offsetof(struct sa_curl_api, easy_strerror), "curl_easy_strerror"},
        {offsetof(struct sa_curl_api, free), "curl_free"},
        {offsetof(struct sa_curl_api, slist_append), "curl_slist_append"},
        {offsetof(struct sa_curl_api, slist_free_all), "curl_slist_free_all"},
        {offsetof(struct sa_curl_api, url), "curl_url"},
        {offsetof(struct sa_curl_api, url_cleanup), "curl_url_cleanup"},
        {offsetof(struct sa_curl_api, url_get), "curl_url_get"},
        {offsetof(struct sa_curl_api, url_set), "curl_url_set"},
        {offsetof(struct sa_curl_api, url_strerror), "curl_url_strerror"},
    };
    struct sa_curl_api api;
    CURLcode rc;

    lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(load_error, sizeof(load_error), "%s", e != NULL ? e : "dlopen failed");
        return;
    }
    memset(&api, 0, sizeof(api));
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        if (resolve((void **)((char *)&api + syms[i].offset), syms[i].name) < 0) {
            dlclose(lib);
            lib = NULL;
            return;
        }
    }
    rc = api.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(load_error, sizeof(load_error), "%s", api.easy_strerror(rc));
        dlclose(lib);
        lib = NULL;
        return;
    }
    sa_curl = api;
    loaded = 1;
}

int sa_curl_load(char *err, size_t errlen)
{
    pthread_once(&load_once, load);
    if (!loaded) {
        snprintf(err, errlen, "%s", load_error);
        return -1;
    }
    return 0;
}

/* Balances curl_global_init when the plugin is unloaded (libcurl counts its
 * initializations, so another user of libcurl in the process is not
 * affected). */
__attribute__((destructor)) static void unload(void)
{
    if (loaded) {
        sa_curl.global_cleanup();
        loaded = 0;
        dlclose(lib);
        lib = NULL;
    }
}
