/*
 * api_ui.h: GET /ui and GET /ui/{file}, the dashboard (ui/ in the source
 * tree: plain HTML, CSS and JavaScript modules) served from bytes built
 * into the binary.
 *
 * The files are listed once, in WF_UI_FILES of the top CMakeLists.txt:
 * each is turned into a C array by cmake/EmbedFile.cmake at build time, and
 * CMake writes the table api_ui_files[] of them (generated/ui_files.c), so
 * a server serves the dashboard of the code it runs and reads no file for
 * it. The directory is flat: a file's name is one path segment.
 *
 * Both routes are public (like /openapi.yaml): the page itself holds no
 * data; it asks for the API token and sends it with each call. Every reply
 * carries a strict Content-Security-Policy (default-src 'self', no inline
 * script or style), X-Content-Type-Options: nosniff, no framing, and
 * Cache-Control: no-cache with a strong ETag (a hash of the bytes), so a
 * browser revalidates each load and gets 304 until the server is upgraded.
 */
#ifndef WF_API_UI_H
#define WF_API_UI_H

#include <stddef.h>

#include "http.h"

/* One built-in file of the dashboard (generated table, see above). */
struct api_ui_file {
    const char *name;           /* "index.html": one path segment */
    const unsigned char *bytes; /* len bytes, then a NUL not counted */
    const size_t *len;
};

extern const struct api_ui_file api_ui_files[];
extern const size_t api_ui_nfiles;

/* The Content-Type for a file name, by its extension; NULL for an
 * extension the dashboard does not use (the build's unit test fails then). */
const char *api_ui_content_type(const char *name);

/* Inline route (http.c), public: index.html. */
enum MHD_Result api_ui_index(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                             const char *const *args);

/* Inline route (http.c), public: the file args[0], or 404 "not found". */
enum MHD_Result api_ui_file(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                            const char *const *args);

#endif
