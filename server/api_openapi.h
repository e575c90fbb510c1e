/*
 * api_openapi.h: GET /openapi.yaml, the REST API's OpenAPI 3.1 description
 * (docs/openapi.yaml) served from bytes built into the binary.
 *
 * The bytes come from a C source that cmake/EmbedFile.cmake generates from
 * docs/openapi.yaml at build time, so the server reads no file to serve
 * them and always serves the description of the code it was built from.
 */
#ifndef WF_API_OPENAPI_H
#define WF_API_OPENAPI_H

#include <stddef.h>

#include "http.h"

/* docs/openapi.yaml as it was at build time: api_openapi_yaml_len bytes,
 * followed by a NUL that is not counted (generated, see above). */
extern const unsigned char api_openapi_yaml[];
extern const size_t api_openapi_yaml_len;

/* Inline route (http.c), public: 200 with the bytes as application/yaml. */
enum MHD_Result api_openapi(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                            const char *const *args);

#endif
