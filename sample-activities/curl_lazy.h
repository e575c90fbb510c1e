/*
 * curl_lazy.h: libcurl, loaded on the first httpRequest rather than with the
 * plugin.
 *
 * Why: libcurl drags in some twenty libraries (OpenSSL, GnuTLS, Kerberos,
 * LDAP, …); loading and relocating them costs ~20 ms and ~1.3 MiB of private
 * memory per process on our benchmark machine (bench/README.md). Most
 * project workers never make an HTTP call, so the plugin does not link
 * libcurl: this header routes every curl_* call used by http_request.c
 * through a table filled by sa_curl_load() with dlopen("libcurl.so.4").
 * Include it instead of <curl/curl.h>, and only from http_request.c.
 */
#ifndef SA_CURL_LAZY_H
#define SA_CURL_LAZY_H

#include <stddef.h>

/* Plain prototypes: the type-checking macros would clash with ours. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

struct sa_curl_api {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode rc);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    CURLU *(*url)(void);
    void (*url_cleanup)(CURLU *u);
    CURLUcode (*url_get)(CURLU *u, CURLUPart what, char **part, unsigned int flags);
    CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part, unsigned int flags);
    const char *(*url_strerror)(CURLUcode rc);
};

extern struct sa_curl_api sa_curl;

/*
 * Loads libcurl and runs curl_global_init, once per process (thread-safe).
 * Returns 0, or -1 with the reason in err (the same reason on every later
 * call). Every curl_* call below is valid only after it returned 0.
 */
int sa_curl_load(char *err, size_t errlen);

/* curl.h defines these two as function-like macros of themselves. */
#undef curl_easy_setopt
#undef curl_easy_getinfo

#define curl_global_init (*sa_curl.global_init)
#define curl_global_cleanup (*sa_curl.global_cleanup)
#define curl_easy_init (*sa_curl.easy_init)
#define curl_easy_setopt (*sa_curl.easy_setopt)
#define curl_easy_perform (*sa_curl.easy_perform)
#define curl_easy_getinfo (*sa_curl.easy_getinfo)
#define curl_easy_cleanup (*sa_curl.easy_cleanup)
#define curl_easy_strerror (*sa_curl.easy_strerror)
#define curl_free (*sa_curl.free)
#define curl_slist_append (*sa_curl.slist_append)
#define curl_slist_free_all (*sa_curl.slist_free_all)
#define curl_url (*sa_curl.url)
#define curl_url_cleanup (*sa_curl.url_cleanup)
#define curl_url_get (*sa_curl.url_get)
#define curl_url_set (*sa_curl.url_set)
#define curl_url_strerror (*sa_curl.url_strerror)

#endif
