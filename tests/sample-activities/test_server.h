/*
 * test_server.h: a small HTTP server on 127.0.0.1 (libmicrohttpd, a thread
 * per connection) for the httpRequest tests. It never talks to any other
 * address. Routes:
 *
 *   /json        200 application/json {"hello":"world","n":42}
 *   /text        200 text/plain "hello, text"
 *   /number      200 text/plain "123"
 *   /missing     404 text/plain "no such page" (any unknown path too)
 *   /error       500 application/json {"error":"boom"}
 *   /slow        200 "late", after 3 s (cut short by ts_stop)
 *   /echo        200 application/json {"method", "headers", "body"} of the
 *                request, any method
 *   /redirect    302 to /json
 *   /dup         200, header X-Multi sent twice ("a" then "b")
 *   /binary      200 application/octet-stream "ok\xff\0end"
 *   /big         200, 11 MiB with a Content-Length
 *   /bigchunked  200, 11 MiB chunked (no Content-Length)
 */
#ifndef TEST_SERVER_H
#define TEST_SERVER_H

/* Starts the server on an ephemeral port of 127.0.0.1. Returns the port, or
 * -1 (after printing why). */
int ts_start(void);

/* Stops the server, waits for its threads, and frees the closed port. */
void ts_stop(void);

/* A port of 127.0.0.1 that refuses connections (bound, never listening,
 * until ts_stop), or -1. */
int ts_closed_port(void);

#endif
