/*
 * api_openapi.c: see api_openapi.h. Answered on the libmicrohttpd thread
 * from static memory: the response points at the built-in bytes
 * (MHD_RESPMEM_PERSISTENT: never copied, never freed), so serving the
 * description allocates only libmicrohttpd's small response object.
 */
#include "api_openapi.h"

#include <stdint.h>

enum MHD_Result api_openapi(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                            const char *const *args)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    /* libmicrohttpd only reads the buffer (PERSISTENT: no copy, no free);
     * its prototype takes a non-const pointer. */
    resp = MHD_create_response_from_buffer(
        api_openapi_yaml_len, (void *)(uintptr_t)api_openapi_yaml, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/yaml");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}
