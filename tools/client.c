/*
 * client.c: see client.h.
 *
 * Each request uses a fresh easy handle: wfctl sends a handful of requests
 * per run, so connection reuse is not worth the state. Replies are read into
 * a growable buffer capped at CTL_REPLY_MAX (a reply larger than that is a
 * broken server, not data to keep). Time limits: CTL_CONNECT_TIMEOUT_S to
 * connect and CTL_TIMEOUT_S overall, long enough for a restart that waits
 * for a new worker to be ready and the old one to drain.
 */
#include "client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define CTL_REPLY_MAX (64u * 1024u * 1024u)
#define CTL_CONNECT_TIMEOUT_S 10L
#define CTL_TIMEOUT_S 300L

/* The reply body as it arrives. */
struct reply_buf {
    char *data;
    size_t len;
    size_t cap;
    int too_big; /* 1 once CTL_REPLY_MAX was passed */
};

void ctl_error(const char *fmt, ...)
{
    va_list ap;

    fputs("wfctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* libcurl write callback: appends to the reply_buf; returning less than
 * asked aborts the transfer (out of memory or over the cap). */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct reply_buf *b = userdata;
    size_t n = size * nmemb;

    if (n > CTL_REPLY_MAX - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/*
 * Sets up the handle for one request. Returns 0, or -1 when a setting was
 * refused (printed). *hdrs receives the header list the caller frees after
 * the transfer.
 */
static int setup_handle(CURL *h, const struct ctl_client *c, const char *method, const char *url,
                        const void *body, size_t len, const char *content_type, struct reply_buf *b,
                        struct curl_slist **hdrs)
{
    char line[1024];
    struct curl_slist *l = NULL, *n;
    CURLcode rc = CURLE_OK;

    *hdrs = NULL;
    l = curl_slist_append(l, "Accept: application/json");
    if (l != NULL && body != NULL) {
        snprintf(line, sizeof(line), "Content-Type: %s", content_type);
        n = curl_slist_append(l, line);
        l = n != NULL ? n : l;
    }
    if (l != NULL && c->token != NULL && c->token[0] != '\0') {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", c->token);
        n = curl_slist_append(l, line);
        l = n != NULL ? n : l;
    }
    if (l == NULL) {
        ctl_error("could not build the request: out of memory");
        return -1;
    }
    *hdrs = l;
    /* Only this URL: no redirects, no proxy from http_proxy and friends. */
    rc |= curl_easy_setopt(h, CURLOPT_URL, url);
    rc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(h, CURLOPT_PROXY, "");
    rc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CTL_CONNECT_TIMEOUT_S);
    rc |= curl_easy_setopt(h, CURLOPT_TIMEOUT, CTL_TIMEOUT_S);
    rc |= curl_easy_setopt(h, CURLOPT_USERAGENT, "wfctl/" WF_VERSION);
    rc |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    rc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    rc |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (rc != CURLE_OK) {
        ctl_error("could not set up the request: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

int ctl_request(const struct ctl_client *c, const char *method, const char *path, const void *body,
                size_t len, const char *content_type, struct ctl_reply *r)
{
    struct reply_buf b = {NULL, 0, 0, 0};
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url;
    size_t ulen = strlen(c->url) + strlen(path) + 1;
    CURL *h;
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    url = malloc(ulen);
    h = curl_easy_init();
    if (url == NULL || h == NULL) {
        ctl_error("could not start a request: out of memory");
        free(url);
        if (h != NULL)
            curl_easy_cleanup(h);
        return CTL_EXIT_UNREACHABLE;
    }
    snprintf(url, ulen, "%s%s", c->url, path);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (setup_handle(h, c, method, url, body, len, content_type, &b, &hdrs) != 0) {
        rc = CURLE_FAILED_INIT;
    } else {
        rc = curl_easy_perform(h);
        if (rc != CURLE_OK) {
            const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
            ctl_error("could not reach the server at %s: %s", c->url,
                      b.too_big ? "reply too large" : why);
        }
    }
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(url);
    if (rc != CURLE_OK) {
        free(b.data);
        return CTL_EXIT_UNREACHABLE;
    }
    if (b.data == NULL) {
        b.data = calloc(1, 1);
        if (b.data == NULL) {
            ctl_error("could not read the reply: out of memory");
            return CTL_EXIT_UNREACHABLE;
        }
    }
    r->body = b.data;
    r->len = b.len;
    r->json = cJSON_ParseWithLength(b.data, b.len);
    return CTL_EXIT_OK;
}

int ctl_request_json(const struct ctl_client *c, const char *method, const char *path,
                     const cJSON *body, struct ctl_reply *r)
{
    char *text = NULL;
    int rc;

    if (body != NULL) {
        text = cJSON_PrintUnformatted(body);
        if (text == NULL) {
            memset(r, 0, sizeof(*r));
            ctl_error("could not encode the request: out of memory");
            return CTL_EXIT_REFUSED;
        }
    }
    rc = ctl_request(c, method, path, text, text != NULL ? strlen(text) : 0, "application/json", r);
    free(text);
    return rc;
}

void ctl_reply_free(struct ctl_reply *r)
{
    cJSON_Delete(r->json);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int ctl_reply_check(const struct ctl_reply *r)
{
    const char *err;

    if (r->status >= 200 && r->status < 300)
        return CTL_EXIT_OK;
    err = ctl_str(r->json, "error");
    if (err != NULL)
        ctl_error("%s (HTTP %ld)", err, r->status);
    else
        ctl_error("the server answered HTTP %ld", r->status);
    return CTL_EXIT_REFUSED;
}

void ctl_print_raw(const struct ctl_client *c, const struct ctl_reply *r)
{
    if (!c->json || r->body == NULL)
        return;
    fwrite(r->body, 1, r->len, stdout);
    if (r->len == 0 || r->body[r->len - 1] != '\n')
        fputc('\n', stdout);
}

/* Appends s to buf at *at, percent-encoding all but RFC 3986's unreserved
 * characters when escape is set. Returns 0, or -1 when it does not fit. */
static int path_put(char *buf, size_t size, size_t *at, const char *s, int escape)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = !escape || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';

        if (*at + (plain ? 1 : 3) >= size)
            return -1;
        if (plain) {
            buf[(*at)++] = (char)ch;
        } else {
            buf[(*at)++] = '%';
            buf[(*at)++] = hex[ch >> 4];
            buf[(*at)++] = hex[ch & 15];
        }
    }
    buf[*at] = '\0';
    return 0;
}

int ctl_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    size_t at = 0;
    char lit[2] = {0, 0};
    int rc = 0;

    if (size == 0)
        return -1;
    buf[0] = '\0';
    va_start(ap, fmt);
    for (const char *p = fmt; *p != '\0' && rc == 0; p++) {
        if (p[0] == '%' && p[1] == 's') {
            rc = path_put(buf, size, &at, va_arg(ap, const char *), 1);
            p++;
        } else {
            lit[0] = *p;
            rc = path_put(buf, size, &at, lit, 0);
        }
    }
    va_end(ap);
    if (rc != 0)
        ctl_error("could not build the request path: an argument is too long");
    return rc;
}

const char *ctl_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int ctl_opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        ctl_error("option %s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int ctl_call(const struct ctl_client *c, const char *method, const char *path, const cJSON *body,
             struct ctl_reply *r)
{
    int rc = ctl_request_json(c, method, path, body, r);

    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_print_raw(c, r);
    rc = ctl_reply_check(r);
    if (rc != CTL_EXIT_OK)
        ctl_reply_free(r);
    return rc;
}
