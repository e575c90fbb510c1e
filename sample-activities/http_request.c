/*
 * http_request.c: the httpRequest activity, over libcurl.
 *
 * Input:
 *   url              string, required; http:// or https:// only
 *   method           GET (default), POST, PUT, PATCH, DELETE or HEAD (any case)
 *   headers          object of string values, sent as given (names must be
 *                    HTTP tokens, values must not hold CR or LF)
 *   body             a string, sent as is (Content-Type text/plain;
 *                    charset=utf-8 unless set), or any other JSON value,
 *                    serialized (Content-Type application/json unless set);
 *                    null or absent: no body; not allowed with HEAD
 *   timeoutMs        integer 1..300000, default 30000: the whole exchange,
 *                    also cut to the activity's deadline
 *   followRedirects  boolean, default false; at most 5 redirects, http(s) only
 * Output:
 *   status      the HTTP status code (of the last response when following
 *               redirects)
 *   statusText  the reason phrase of the status line, or the standard phrase
 *               for the code when the server sent none (HTTP/2)
 *   data        the body parsed as JSON when the Content-Type says JSON, or
 *               when there is none (or it is text) and the body is a JSON
 *               object or array; otherwise the body as a string ("" when
 *               empty). Text is made valid UTF-8 (bad bytes become U+FFFD).
 *   headers     object of response headers, names lower-cased; repeated
 *               headers are joined with ", "
 *
 * Failures: HTTP 4xx and 5xx responses are NOT failures; they are returned
 * with their status for the workflow to judge. Connection errors (refused,
 * DNS, TLS, reset) and timeouts are WF_ERROR, retried by the host's default
 * policy, with curl's message. A body over 10 MiB, a malformed URL and any
 * other bad input are WF_EINVAL (retrying would not help). A cancelled run
 * stops the transfer (WF_ECANCELLED); the activity's deadline (deadline_ms)
 * caps timeoutMs, and running into it is WF_ETIMEDOUT, not a plain timeout.
 *
 * Every request uses its own easy handle (activities run on several threads
 * at once). libcurl itself is loaded, and curl_global_init run, once, on the
 * first request (curl_lazy.c), so workers that never call httpRequest do not
 * pay for loading it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curl_lazy.h"
#include "sample_activities.h"

#define MAX_BODY (10L * 1024 * 1024)
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_TIMEOUT_MS 300000
#define MAX_REDIRECTS 5L
#define MAX_HEADER_NAME 256
#define USER_AGENT "wf-server-sample-activities/1"
#define WHAT "send request" /* for "could not send request: ..." */

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

/* ---- the request ---- */

struct request {
    const char *url;
    char *shown_url; /* scheme://host[:port]/path, for messages (owned) */
    const char *method;
    const cJSON *headers;     /* borrowed */
    const char *body;         /* NULL: none */
    char *body_owned;         /* serialized JSON body (cJSON_free) */
    const char *default_type; /* Content-Type when the caller set none */
    long timeout_ms;
    int clipped; /* timeout_ms was cut to the activity's deadline */
    int follow;
};

struct response {
    struct wf_activity_ctx *a;
    char *body;
    size_t len, cap;
    cJSON *headers; /* of the latest response */
    char reason[128];
    int too_big, oom, cancelled;
};

static void free_request(struct request *r)
{
    free(r->shown_url);
    cJSON_free(r->body_owned);
}

/* Builds r->shown_url from the parsed URL: no user info or query, which may
 * hold secrets that do not belong in logs and step records. Returns 0, -1
 * when out of memory. */
static int make_shown_url(CURLU *u, struct request *r)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    size_t len;
    int rc = -1;

    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    len = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + (path ? strlen(path) : 0) +
          sizeof("://:");
    r->shown_url = malloc(len);
    if (r->shown_url != NULL) {
        snprintf(r->shown_url, len, "%s://%s%s%s%s", scheme, host, port ? ":" : "",
                 port ? port : "", path ? path : "");
        rc = 0;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    return rc;
}

/* Checks the URL: it parses, and its scheme is http or https. Returns
 * WF_OK, or a failure after calling fail. */
static enum wf_status check_url(struct wf_activity_ctx *a, struct request *r)
{
    CURLU *u = curl_url();
    CURLUcode uc;
    char *scheme = NULL;
    enum wf_status st = WF_OK;

    if (u == NULL) {
        return sa_fail_nomem(a, WHAT);
    }
    uc = curl_url_set(u, CURLUPART_URL, r->url, 0);
    if (uc != CURLUE_OK) {
        a->api->fail(a, "could not send request: \"url\" is not a valid http(s) URL: %s",
                     curl_url_strerror(uc));
        st = WF_EINVAL;
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        a->api->fail(a, "could not send request: \"url\" must start with http:// or https://");
        st = WF_EINVAL;
    } else if (make_shown_url(u, r) != 0) {
        st = sa_fail_nomem(a, WHAT);
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return st;
}

/* 1 if s is a non-empty HTTP token (RFC 9110 tchar) of sane length. */
static int is_token(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= MAX_HEADER_NAME &&
           strspn(s, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

/* Parses and checks the input into r (which borrows from in). Returns WF_OK,
 * or a failure after calling fail; free_request(r) in both cases. */
static enum wf_status parse_request(struct wf_activity_ctx *a, const cJSON *in, struct request *r)
{
    const cJSON *url, *method, *headers, *body, *timeout, *follow, *h;
    int64_t t = DEFAULT_TIMEOUT_MS;
    size_t i;

    if (!cJSON_IsObject(in)) {
        a->api->fail(a, "could not send request: input must be a JSON object, got %s",
                     sa_json_type(in));
        return WF_EINVAL;
    }
    url = cJSON_GetObjectItemCaseSensitive(in, "url");
    if (url == NULL) {
        a->api->fail(a, "could not send request: \"url\" is required");
        return WF_EINVAL;
    }
    if (!cJSON_IsString(url)) {
        a->api->fail(a, "could not send request: \"url\" must be a string, got %s",
                     sa_json_type(url));
        return WF_EINVAL;
    }
    r->url = url->valuestring;

    r->method = methods[0];
    method = cJSON_GetObjectItemCaseSensitive(in, "method");
    if (method != NULL && !cJSON_IsNull(method)) {
        r->method = NULL;
        for (i = 0; cJSON_IsString(method) && i < sizeof(methods) / sizeof(methods[0]); i++) {
            if (strcasecmp(method->valuestring, methods[i]) == 0) {
                r->method = methods[i];
            }
        }
        if (r->method == NULL) {
            a->api->fail(a, "could not send request: \"method\" must be one of GET, POST, PUT, "
                            "PATCH, DELETE, HEAD");
            return WF_EINVAL;
        }
    }

    headers = cJSON_GetObjectItemCaseSensitive(in, "headers");
    if (headers != NULL && !cJSON_IsNull(headers)) {
        if (!cJSON_IsObject(headers)) {
            a->api->fail(a, "could not send request: \"headers\" must be an object, got %s",
                         sa_json_type(headers));
            return WF_EINVAL;
        }
        cJSON_ArrayForEach(h, headers)
        {
            if (!is_token(h->string)) {
                a->api->fail(a, "could not send request: bad header name \"%.64s\"", h->string);
                return WF_EINVAL;
            }
            if (!cJSON_IsString(h)) {
                a->api->fail(a, "could not send request: header \"%s\" must be a string, got %s",
                             h->string, sa_json_type(h));
                return WF_EINVAL;
            }
            if (strpbrk(h->valuestring, "\r\n") != NULL) {
                a->api->fail(a, "could not send request: header \"%s\" holds a line break",
                             h->string);
                return WF_EINVAL;
            }
            if (strcasecmp(h->string, "Content-Type") == 0) {
                r->default_type = ""; /* set by the caller: add none */
            }
        }
        r->headers = headers;
    }

    body = cJSON_GetObjectItemCaseSensitive(in, "body");
    if (body != NULL && !cJSON_IsNull(body)) {
        if (strcmp(r->method, "HEAD") == 0) {
            a->api->fail(a, "could not send request: a HEAD request cannot have a body");
            return WF_EINVAL;
        }
        if (cJSON_IsString(body)) {
            r->body = body->valuestring;
            if (r->default_type == NULL) {
                r->default_type = "text/plain; charset=utf-8";
            }
        } else {
            r->body_owned = cJSON_PrintUnformatted(body);
            if (r->body_owned == NULL) {
                return sa_fail_nomem(a, WHAT);
            }
            r->body = r->body_owned;
            if (r->default_type == NULL) {
                r->default_type = "application/json";
            }
        }
    }

    timeout = cJSON_GetObjectItemCaseSensitive(in, "timeoutMs");
    if (timeout != NULL && !cJSON_IsNull(timeout) &&
        sa_json_int(timeout, 1, MAX_TIMEOUT_MS, &t) != 0) {
        a->api->fail(a, "could not send request: \"timeoutMs\" must be an integer from 1 to %d",
                     MAX_TIMEOUT_MS);
        return WF_EINVAL;
    }
    r->timeout_ms = (long)t;

    follow = cJSON_GetObjectItemCaseSensitive(in, "followRedirects");
    if (follow != NULL && !cJSON_IsNull(follow)) {
        if (!cJSON_IsBool(follow)) {
            a->api->fail(a, "could not send request: \"followRedirects\" must be a boolean, got %s",
                         sa_json_type(follow));
            return WF_EINVAL;
        }
        r->follow = cJSON_IsTrue(follow);
    }
    return check_url(a, r);
}

/* Builds the header list: the caller's headers, then the Content-Type
 * default, and "Expect:" to turn off curl's 100-continue round trip unless
 * the caller asked for it. Returns 0 and *list (caller frees with
 * curl_slist_free_all; may be NULL), or -1 when out of memory. */
static int build_headers(const struct request *r, struct curl_slist **list)
{
    struct curl_slist *l = NULL, *next;
    const cJSON *h;
    int has_expect = 0;
    char *line;
    size_t len;

    cJSON_ArrayForEach(h, r->headers)
    {
        len = strlen(h->string) + strlen(h->valuestring) + 3;
        line = malloc(len);
        if (line == NULL) {
            goto nomem;
        }
        /* "Name;" is curl's way to send a header with an empty value. */
        if (h->valuestring[0] == '\0') {
            snprintf(line, len, "%s;", h->string);
        } else {
            snprintf(line, len, "%s: %s", h->string, h->valuestring);
        }
        next = curl_slist_append(l, line);
        free(line);
        if (next == NULL) {
            goto nomem;
        }
        l = next;
        if (strcasecmp(h->string, "Expect") == 0) {
            has_expect = 1;
        }
    }
    if (r->default_type != NULL && r->default_type[0] != '\0') {
        char ct[64];

        snprintf(ct, sizeof(ct), "Content-Type: %s", r->default_type);
        next = curl_slist_append(l, ct);
        if (next == NULL) {
            goto nomem;
        }
        l = next;
    }
    if (!has_expect) {
        next = curl_slist_append(l, "Expect:");
        if (next == NULL) {
            goto nomem;
        }
        l = next;
    }
    *list = l;
    return 0;

nomem:
    curl_slist_free_all(l);
    return -1;
}

/* ---- curl callbacks ---- */

/* CURLOPT_WRITEFUNCTION: appends to the body, up to MAX_BODY. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct response *resp = userdata;
    size_t n = size * nmemb;

    if (n > (size_t)MAX_BODY - resp->len) {
        resp->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (resp->len + n + 1 > resp->cap) {
        size_t cap = resp->cap > 0 ? resp->cap : 16384;
        char *p;

        while (cap < resp->len + n + 1) {
            cap *= 2;
        }
        if (cap > (size_t)MAX_BODY + 1) {
            cap = (size_t)MAX_BODY + 1;
        }
        p = realloc(resp->body, cap);
        if (p == NULL) {
            resp->oom = 1;
            return 0;
        }
        resp->body = p;
        resp->cap = cap;
    }
    memcpy(resp->body + resp->len, ptr, n);
    resp->len += n;
    return n;
}

/* Trims ASCII white space (and CR LF) from both ends of [*p, *p + *n). */
static void trim_span(const char **p, size_t *n)
{
    while (*n > 0 && strchr(" \t\r\n", (*p)[0]) != NULL) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && strchr(" \t\r\n", (*p)[*n - 1]) != NULL) {
        (*n)--;
    }
}

/* Starts a new response: a status line resets the headers (interim 1xx
 * responses and followed redirects each send their own) and records the
 * reason phrase. Returns 0, -1 when out of memory. */
static int on_status_line(struct response *resp, const char *buf, size_t n)
{
    const char *sp = memchr(buf, ' ', n), *p;
    char *reason;
    size_t rn;

    cJSON_Delete(resp->headers);
    resp->headers = cJSON_CreateObject();
    resp->reason[0] = '\0';
    if (resp->headers == NULL) {
        return -1;
    }
    if (sp == NULL) {
        return 0;
    }
    /* "HTTP/1.1 404 Not Found": skip the code to reach the phrase. */
    p = sp + 1;
    while (p < buf + n && *p >= '0' && *p <= '9') {
        p++;
    }
    rn = (size_t)(buf + n - p);
    trim_span(&p, &rn);
    if (rn >= sizeof(resp->reason)) {
        rn = sizeof(resp->reason) - 1;
    }
    reason = sa_utf8_sanitize(p, rn);
    if (reason == NULL) {
        return -1;
    }
    snprintf(resp->reason, sizeof(resp->reason), "%s", reason);
    free(reason);
    return 0;
}

/* Adds one "Name: value" line to the headers, the name lower-cased, a
 * repeated name's values joined with ", ". Returns 0, -1 when out of
 * memory. */
static int on_header_line(struct response *resp, const char *buf, size_t n)
{
    const char *colon = memchr(buf, ':', n), *v;
    size_t nn, vn, i;
    char *name = NULL, *value = NULL, *joined = NULL;
    cJSON *old;
    int rc = -1;

    if (colon == NULL || colon == buf) {
        return 0; /* the blank line that ends the headers, or junk */
    }
    nn = (size_t)(colon - buf);
    v = colon + 1;
    vn = n - nn - 1;
    trim_span(&v, &vn);
    name = sa_utf8_sanitize(buf, nn);
    value = sa_utf8_sanitize(v, vn);
    if (name == NULL || value == NULL) {
        goto out;
    }
    for (i = 0; name[i] != '\0'; i++) {
        if (name[i] >= 'A' && name[i] <= 'Z') {
            name[i] = (char)(name[i] - 'A' + 'a');
        }
    }
    old = cJSON_GetObjectItemCaseSensitive(resp->headers, name);
    if (old != NULL) {
        size_t len = strlen(old->valuestring) + strlen(value) + 3;

        joined = malloc(len);
        if (joined == NULL) {
            goto out;
        }
        snprintf(joined, len, "%s, %s", old->valuestring, value);
        rc = cJSON_SetValuestring(old, joined) != NULL ? 0 : -1;
    } else {
        rc = cJSON_AddStringToObject(resp->headers, name, value) != NULL ? 0 : -1;
    }
out:
    free(name);
    free(value);
    free(joined);
    return rc;
}

/* CURLOPT_HEADERFUNCTION: called once per header line, status line
 * included. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct response *resp = userdata;
    size_t n = size * nitems;
    int rc;

    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        rc = on_status_line(resp, buf, n);
    } else {
        rc = resp->headers != NULL ? on_header_line(resp, buf, n) : 0;
    }
    if (rc != 0) {
        resp->oom = 1;
        return 0;
    }
    return n;
}

/* CURLOPT_XFERINFOFUNCTION: stops the transfer once the run is cancelled. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct response *resp = clientp;

    if (resp->a->api->cancelled(resp->a)) {
        resp->cancelled = 1;
        return 1;
    }
    return 0;
}

/* ---- the result ---- */

static const char *standard_reason(long code)
{
    static const struct {
        long code;
        const char *text;
    } phrases[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {402, "Payment Required"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {418, "I'm a teapot"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {425, "Too Early"},
        {426, "Upgrade Required"},
        {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {511, "Network Authentication Required"},
    };
    size_t i;

    for (i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++) {
        if (phrases[i].code == code) {
            return phrases[i].text;
        }
    }
    return "";
}

/* 1 if the Content-Type names JSON: application/json or any +json type. */
static int is_json_type(const char *ct)
{
    size_t n = strcspn(ct, ";");

    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
        n--;
    }
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* The response body as the "data" value (see the file header). Returns a
 * new item (caller owns), NULL when out of memory. */
static cJSON *decode_body(const struct response *resp)
{
    const cJSON *ct_item = cJSON_GetObjectItemCaseSensitive(resp->headers, "content-type");
    const char *ct = cJSON_IsString(ct_item) ? ct_item->valuestring : "";
    char *text = sa_utf8_sanitize(resp->body != NULL ? resp->body : "", resp->len);
    const char *p, *end = NULL;
    cJSON *data = NULL;
    int try_json;

    if (text == NULL) {
        return NULL;
    }
    for (p = text; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'; p++) {
    }
    try_json = is_json_type(ct) ||
               ((ct[0] == '\0' || strncasecmp(ct, "text/", 5) == 0) && (*p == '{' || *p == '['));
    if (try_json && *p != '\0') {
        data = cJSON_ParseWithOpts(text, &end, 1);
    }
    if (data == NULL) {
        data = cJSON_CreateString(text);
    }
    free(text);
    return data;
}

/* Builds the activity's output. Takes nothing from resp. Returns a new
 * object (caller owns), NULL when out of memory. */
static cJSON *make_result(struct response *resp, long code)
{
    cJSON *res = cJSON_CreateObject(), *data;
    const char *reason = resp->reason[0] != '\0' ? resp->reason : standard_reason(code);

    if (res == NULL) {
        return NULL;
    }
    if (resp->headers == NULL) {
        resp->headers = cJSON_CreateObject();
    }
    data = decode_body(resp);
    if (resp->headers == NULL || data == NULL ||
        cJSON_AddNumberToObject(res, "status", (double)code) == NULL ||
        cJSON_AddStringToObject(res, "statusText", reason) == NULL ||
        !cJSON_AddItemToObject(res, "data", data)) {
        cJSON_Delete(data);
        cJSON_Delete(res);
        return NULL;
    }
    if (!cJSON_AddItemToObject(res, "headers", resp->headers)) {
        cJSON_Delete(res);
        return NULL;
    }
    resp->headers = NULL; /* now in res */
    return res;
}

/* ---- the activity ---- */

/* Sets the options of one transfer. Returns 0, -1 if libcurl refused one. */
static int set_options(CURL *h, const struct request *r, struct response *resp,
                       struct curl_slist *headers, char *errbuf)
{
    int bad = 0;

#define SET(opt, val) bad |= curl_easy_setopt(h, opt, val) != CURLE_OK
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    SET(CURLOPT_FOLLOWLOCATION, r->follow ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    SET(CURLOPT_USERAGENT, USER_AGENT);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, resp);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, resp);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, resp);
    SET(CURLOPT_NOPROGRESS, 0L);

    if (strcmp(r->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "GET") == 0 && r->body == NULL) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        /* POST, PUT, PATCH and DELETE (and GET with a body) send their body
         * as POST data under their own method name. PUT, PATCH and POST
         * without a body still send "Content-Length: 0", which some servers
         * require; DELETE without one sends no body at all. */
        if (r->body != NULL || strcmp(r->method, "DELETE") != 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(r->body ? strlen(r->body) : 0));
            SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
        }
        if (strcmp(r->method, "POST") != 0) {
            SET(CURLOPT_CUSTOMREQUEST, r->method);
        }
    }
#undef SET
    return bad ? -1 : 0;
}

/* Turns a failed transfer into the activity's failure: calls fail and
 * returns the status (see the file header). */
static enum wf_status transfer_failed(struct wf_activity_ctx *a, const struct request *r,
                                      const struct response *resp, CURLcode rc, const char *errbuf)
{
    const char *detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);

    if (resp->oom) {
        return sa_fail_nomem(a, WHAT);
    }
    if (resp->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        a->api->fail(a, "could not read response of %s %s: body exceeds %ld bytes", r->method,
                     r->shown_url, MAX_BODY);
        return WF_EINVAL;
    }
    if (resp->cancelled) {
        /* cancelled() also turns 1 when the deadline passes. */
        int late = a->deadline_ms > 0 && sa_now_ms() >= a->deadline_ms;

        a->api->fail(a, "could not finish %s %s: the %s", r->method, r->shown_url,
                     late ? "activity's deadline passed" : "run was cancelled");
        return late ? WF_ETIMEDOUT : WF_ECANCELLED;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && r->clipped) {
        a->api->fail(a, "could not finish %s %s: the activity's deadline passed after %ld ms",
                     r->method, r->shown_url, r->timeout_ms);
        return WF_ETIMEDOUT;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        a->api->fail(a, "could not finish %s %s: timed out after %ld ms (%s)", r->method,
                     r->shown_url, r->timeout_ms, detail);
        return WF_ERROR;
    }
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
        a->api->fail(a, "could not send %s request to %s: %s", r->method, r->shown_url, detail);
        return WF_EINVAL;
    }
    a->api->fail(a, "could not send %s request to %s: %s", r->method, r->shown_url, detail);
    return WF_ERROR;
}

enum wf_status sa_http_request(struct wf_activity_ctx *a, const cJSON *in, cJSON **out)
{
    struct request req = {0};
    struct response resp = {0};
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE];
    enum wf_status st;
    CURL *h = NULL;
    CURLcode rc;
    long code = 0;
    cJSON *res;

    resp.a = a;
    errbuf[0] = '\0';
    /* libcurl is loaded on first use (curl_lazy.h), before anything calls it. */
    if (sa_curl_load(errbuf, sizeof(errbuf)) < 0) {
        a->api->fail(a, "could not load libcurl: %s", errbuf);
        return WF_ERROR;
    }
    errbuf[0] = '\0';
    st = parse_request(a, in, &req);
    if (st != WF_OK) {
        goto out;
    }
    /* The request may not outlive the activity's deadline. */
    if (a->deadline_ms > 0) {
        int64_t left = a->deadline_ms - sa_now_ms();

        if (left <= 0) {
            a->api->fail(a, "could not send %s request to %s: the activity's deadline passed",
                         req.method, req.shown_url);
            st = WF_ETIMEDOUT;
            goto out;
        }
        if (left < req.timeout_ms) {
            req.timeout_ms = (long)left;
            req.clipped = 1;
        }
    }
    h = curl_easy_init();
    if (h == NULL || build_headers(&req, &headers) != 0) {
        st = sa_fail_nomem(a, WHAT);
        goto out;
    }
    if (set_options(h, &req, &resp, headers, errbuf) != 0) {
        a->api->fail(a, "could not send %s request to %s: libcurl refused an option", req.method,
                     req.shown_url);
        st = WF_ERROR;
        goto out;
    }

    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        st = transfer_failed(a, &req, &resp, rc, errbuf);
        goto out;
    }
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    res = make_result(&resp, code);
    if (res == NULL) {
        st = sa_fail_nomem(a, WHAT);
        goto out;
    }
    a->api->log(a, WF_LOG_DEBUG, "%s %s: %ld (%zu bytes)", req.method, req.shown_url, code,
                resp.len);
    *out = res;
    st = WF_OK;

out:
    curl_slist_free_all(headers);
    if (h != NULL) {
        curl_easy_cleanup(h);
    }
    cJSON_Delete(resp.headers);
    free(resp.body);
    free_request(&req);
    return st;
}
