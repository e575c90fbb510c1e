/*
 * http.c: the built-in activity behind `call: http` (wf.http), run on the
 * worker's activity pool like any activity, so its result is checkpointed
 * and a failure retried (3 attempts, 1 s then 2 s: interp.h's table in
 * plugins/loader.c).
 *
 * Input (the call's `with`, evaluated): {"method", "endpoint": URL or
 * {"uri"}, "headers"?: {name: value}, "query"?: {name: value}, "body"?:
 * any JSON (a string is sent as it is, anything else as JSON), "output"?:
 * "content" (default: the body, parsed when it is JSON), "response"
 * ({"statusCode", "headers", "content"}) or "raw" (the body as a string)}.
 *
 * Only http and https, redirects followed at most 5 times (http and https
 * only), 30 s or the activity's deadline, response bodies up to 8 MiB.
 * A status of 400-499 fails without retry (the request is wrong); 5xx and
 * transport errors fail and are retried.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include <wf/plugin.h>

#define HTTP_MAX_BODY (8 * 1024 * 1024)
#define HTTP_TIMEOUT_MS 30000L

enum wf_status dsl_http_activity(struct wf_activity_ctx *a, const cJSON *input, cJSON **output);

static long long wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct buf {
    char *p;
    size_t len;
    int over;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t add = size * n;
    char *p;

    if (b->len + add > HTTP_MAX_BODY) {
        b->over = 1;
        return 0;
    }
    p = realloc(b->p, b->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* Response headers as {"name": "value"} (names lower-cased). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    cJSON *h = arg;
    size_t len = size * n, k;
    char name[128], *value;

    for (k = 0; k < len && data[k] != ':' && k < sizeof(name) - 1; k++)
        name[k] = (char)(data[k] >= 'A' && data[k] <= 'Z' ? data[k] + 32 : data[k]);
    if (k == len || data[k] != ':' || k == 0)
        return len;
    name[k] = '\0';
    value = strndup(data + k + 1, len - k - 1);
    if (value != NULL) {
        char *s = value, *e = value + strlen(value);
        while (*s == ' ' || *s == '\t')
            s++;
        while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
            *--e = '\0';
        cJSON_DeleteItemFromObjectCaseSensitive(h, name);
        cJSON_AddStringToObject(h, name, s);
        free(value);
    }
    return len;
}

/* endpoint, with the query's members appended (escaped). */
static char *build_url(CURL *c, const cJSON *input)
{
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(input, "endpoint");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(input, "query"), *q;
    const char *base = cJSON_IsString(ep)
                           ? ep->valuestring
                           : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ep, "uri"));
    size_t cap, len;
    char *url;
    int first;

    if (base == NULL)
        return NULL;
    cap = strlen(base) + 2;
    url = malloc(cap);
    if (url == NULL)
        return NULL;
    len = (size_t)snprintf(url, cap, "%s", base);
    first = strchr(base, '?') == NULL;
    cJSON_ArrayForEach(q, query)
    {
        char *text = cJSON_IsString(q) ? strdup(q->valuestring) : cJSON_PrintUnformatted(q);
        char *k = curl_easy_escape(c, q->string, 0),
             *v = text != NULL ? curl_easy_escape(c, text, 0) : NULL;
        char *grown;
        if (k != NULL && v != NULL) {
            cap = len + strlen(k) + strlen(v) + 3;
            grown = realloc(url, cap);
            if (grown != NULL) {
                url = grown;
                len += (size_t)snprintf(url + len, cap - len, "%c%s=%s", first ? '?' : '&', k, v);
                first = 0;
            }
        }
        curl_free(k);
        curl_free(v);
        free(text);
    }
    return url;
}

enum wf_status dsl_http_activity(struct wf_activity_ctx *a, const cJSON *input, cJSON **output)
{
    const char *method = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(input, "method"));
    const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(input, "output"));
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(input, "body");
    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(input, "headers"), *h;
    struct curl_slist *hl = NULL;
    struct buf resp = {NULL, 0, 0};
    cJSON *rh = cJSON_CreateObject(), *content;
    char upper[16], *url, *payload = NULL, line[1024];
    long status = 0, timeout = HTTP_TIMEOUT_MS;
    enum wf_status st = WF_OK;
    CURLcode rc;
    CURL *c;

    *output = NULL;
    if (method == NULL || rh == NULL || (c = curl_easy_init()) == NULL) {
        a->api->fail(a, "http call: %s", method == NULL ? "no method" : "out of memory");
        cJSON_Delete(rh);
        return method == NULL ? WF_EINVAL : WF_ENOMEM;
    }
    {
        size_t i;
        for (i = 0; i < sizeof(upper) - 1 && method[i] != '\0'; i++)
            upper[i] = (char)(method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32 : method[i]);
        upper[i] = '\0';
    }
    url = build_url(c, input);
    if (url == NULL) {
        a->api->fail(a, "http call: no endpoint");
        curl_easy_cleanup(c);
        cJSON_Delete(rh);
        return WF_EINVAL;
    }
    if (a->deadline_ms > 0) {
        long left = (long)(a->deadline_ms - wall_ms());
        timeout = left < 1 ? 1 : left < timeout ? left : timeout;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, upper);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rh);
    if (strcmp(upper, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    cJSON_ArrayForEach(h, headers)
    {
        char *v = cJSON_IsString(h) ? strdup(h->valuestring) : cJSON_PrintUnformatted(h);
        if (v != NULL && strpbrk(h->string, "\r\n:") == NULL && strpbrk(v, "\r\n") == NULL) {
            snprintf(line, sizeof(line), "%s: %s", h->string, v);
            hl = curl_slist_append(hl, line);
        }
        free(v);
    }
    if (body != NULL && !cJSON_IsNull(body)) {
        payload = cJSON_IsString(body) ? strdup(body->valuestring) : cJSON_PrintUnformatted(body);
        if (!cJSON_IsString(body) &&
            cJSON_GetObjectItemCaseSensitive(headers, "Content-Type") == NULL &&
            cJSON_GetObjectItemCaseSensitive(headers, "content-type") == NULL)
            hl = curl_slist_append(hl, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload != NULL ? payload : "");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        a->api->fail(a, "could not %s %s: %s", upper, url,
                     resp.over ? "response body over 8 MiB" : curl_easy_strerror(rc));
        st = resp.over ? WF_EINVAL : WF_ERROR;
    } else if (status >= 400) {
        a->api->fail(a, "%s %s answered %ld", upper, url, status);
        st = status < 500 ? WF_EINVAL : WF_ERROR;
    } else {
        content = resp.p != NULL ? cJSON_Parse(resp.p) : NULL;
        if (content == NULL)
            content = cJSON_CreateString(resp.p != NULL ? resp.p : "");
        if (mode != NULL && strcmp(mode, "raw") == 0) {
            cJSON_Delete(content);
            content = cJSON_CreateString(resp.p != NULL ? resp.p : "");
        }
        if (mode != NULL && strcmp(mode, "response") == 0) {
            *output = cJSON_CreateObject();
            cJSON_AddNumberToObject(*output, "statusCode", (double)status);
            cJSON_AddItemToObject(*output, "headers", rh);
            rh = NULL;
            cJSON_AddItemToObject(*output, "content", content);
        } else {
            *output = content;
        }
        if (*output == NULL)
            st = WF_ENOMEM;
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    cJSON_Delete(rh);
    free(payload);
    free(resp.p);
    free(url);
    return st;
}
