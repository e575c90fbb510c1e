/*
 * api_ui.c: see api_ui.h. Answered on the libmicrohttpd thread from static
 * memory, as /openapi.yaml is: the response points at the built-in bytes
 * (MHD_RESPMEM_PERSISTENT: never copied, never freed). The ETag is a
 * 64-bit FNV-1a hash of the bytes, computed per request (the files are a
 * few kilobytes each, so that costs microseconds and keeps no state).
 */
#include "api_ui.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* What every reply of the dashboard says about itself. The page loads
 * nothing but its own files and talks to this server only; no inline
 * script or style, no plugin, no <base>, no framing. */
#define UI_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "                 \
    "frame-ancestors 'none'"

const char *api_ui_content_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
    };
    const char *dot = strrchr(name, '.');

    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

/* The built-in file called name, or NULL. */
static const struct api_ui_file *find_file(const char *name)
{
    for (size_t i = 0; i < api_ui_nfiles; i++) {
        if (strcmp(api_ui_files[i].name, name) == 0)
            return &api_ui_files[i];
    }
    return NULL;
}

/* Writes f's ETag ("\"<16 hex digits>\"") into out (at least 19 bytes). */
static void file_etag(const struct api_ui_file *f, char *out, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < *f->len; i++) {
        h ^= f->bytes[i];
        h *= 0x100000001b3ULL;
    }
    snprintf(out, len, "\"%016llx\"", (unsigned long long)h);
}

/* 1 when the request's If-None-Match names etag (or is "*"). */
static int not_modified(struct MHD_Connection *conn, const char *etag)
{
    const char *inm =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);

    return inm != NULL && (strstr(inm, etag) != NULL || strcmp(inm, "*") == 0);
}

/* Queues f: 200 with its bytes, or 304 without when the client has them. */
static enum MHD_Result send_file(struct MHD_Connection *conn, const struct api_ui_file *f)
{
    const char *type = api_ui_content_type(f->name);
    struct MHD_Response *resp;
    enum MHD_Result ret;
    unsigned status = MHD_HTTP_OK;
    char etag[24];

    file_etag(f, etag, sizeof(etag));
    if (not_modified(conn, etag)) {
        status = MHD_HTTP_NOT_MODIFIED;
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else {
        /* libmicrohttpd only reads the buffer (PERSISTENT: no copy, no
         * free); its prototype takes a non-const pointer. */
        resp = MHD_create_response_from_buffer(*f->len, (void *)(uintptr_t)f->bytes,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return MHD_NO;
    if (status == MHD_HTTP_OK)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                type != NULL ? type : "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy", UI_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result api_ui_index(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                             const char *const *args)
{
    const struct api_ui_file *f = find_file("index.html");

    if (f == NULL)
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
    return send_file(conn, f);
}

enum MHD_Result api_ui_file(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                            const char *const *args)
{
    const struct api_ui_file *f = find_file(args[0]);

    if (f == NULL)
        return http_send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
    return send_file(conn, f);
}
