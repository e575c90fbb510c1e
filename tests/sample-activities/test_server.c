/*
 * test_server.c: the local HTTP server of the httpRequest tests (routes in
 * test_server.h). Bound to 127.0.0.1 only, on a port the kernel picks.
 * Request bodies are collected per connection in a struct upload, freed in
 * the completion callback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "test_server.h"

#define BIG_SIZE (11u * 1024 * 1024)
#define UPLOAD_MAX (1024 * 1024)
#define SLOW_MS 3000

static struct MHD_Daemon *daemon_handle;
static volatile int stopping;
static int closed_fd = -1; /* bound, never listening: see ts_closed_port */

struct upload {
    char *buf;
    size_t len;
};

/* Queues a response with a copy of body; returns MHD's result. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (r == NULL) {
        return MHD_NO;
    }
    if (type != NULL) {
        MHD_add_response_header(r, "Content-Type", type);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    cJSON_AddStringToObject(cls, key, value != NULL ? value : "");
    return MHD_YES;
}

static enum MHD_Result echo(struct MHD_Connection *c, const char *method, struct upload *up)
{
    cJSON *o = cJSON_CreateObject(), *h = cJSON_AddObjectToObject(o, "headers");
    char *body = strndup(up->buf != NULL ? up->buf : "", up->len);
    char *text;
    enum MHD_Result ret = MHD_NO;

    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, h);
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "body", body != NULL ? body : "");
    text = cJSON_PrintUnformatted(o);
    if (text != NULL) {
        ret = reply(c, 200, "application/json", text, strlen(text));
    }
    cJSON_free(text);
    free(body);
    cJSON_Delete(o);
    return ret;
}

static ssize_t big_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    if (pos >= BIG_SIZE) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (max > BIG_SIZE - pos) {
        max = (size_t)(BIG_SIZE - pos);
    }
    memset(buf, 'a', max);
    return (ssize_t)max;
}

static enum MHD_Result big(struct MHD_Connection *c, int chunked)
{
    struct MHD_Response *r = MHD_create_response_from_callback(
        chunked ? MHD_SIZE_UNKNOWN : BIG_SIZE, 65536, big_reader, NULL, NULL);
    enum MHD_Result ret;

    if (r == NULL) {
        return MHD_NO;
    }
    ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result with_headers(struct MHD_Connection *c, unsigned int status, const char *name,
                                    const char *v1, const char *v2)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(2, (void *)(uintptr_t) "ok", MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, name, v1);
    if (v2 != NULL) {
        MHD_add_response_header(r, name, v2);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct upload *up = *con_cls;

    if (up == NULL) {
        up = calloc(1, sizeof(*up));
        if (up == NULL) {
            return MHD_NO;
        }
        *con_cls = up;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        char *p;

        if (up->len + *upload_data_size > UPLOAD_MAX) {
            return MHD_NO;
        }
        p = realloc(up->buf, up->len + *upload_data_size);
        if (p == NULL) {
            return MHD_NO;
        }
        memcpy(p + up->len, upload_data, *upload_data_size);
        up->buf = p;
        up->len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (strcmp(url, "/json") == 0) {
        return reply(c, 200, "application/json", "{\"hello\":\"world\",\"n\":42}", 24);
    }
    if (strcmp(url, "/text") == 0) {
        return reply(c, 200, "text/plain", "hello, text", 11);
    }
    if (strcmp(url, "/number") == 0) {
        return reply(c, 200, "text/plain", "123", 3);
    }
    if (strcmp(url, "/error") == 0) {
        return reply(c, 500, "application/json", "{\"error\":\"boom\"}", 16);
    }
    if (strcmp(url, "/slow") == 0) {
        int i;

        for (i = 0; i < SLOW_MS / 10 && !stopping; i++) {
            struct timespec ts = {0, 10 * 1000000L};

            nanosleep(&ts, NULL);
        }
        return reply(c, 200, "text/plain", "late", 4);
    }
    if (strcmp(url, "/echo") == 0) {
        return echo(c, method, up);
    }
    if (strcmp(url, "/redirect") == 0) {
        return with_headers(c, 302, "Location", "/json", NULL);
    }
    if (strcmp(url, "/dup") == 0) {
        return with_headers(c, 200, "X-Multi", "a", "b");
    }
    if (strcmp(url, "/binary") == 0) {
        return reply(c, 200, "application/octet-stream", "ok\xff\0end", 7);
    }
    if (strcmp(url, "/big") == 0 || strcmp(url, "/bigchunked") == 0) {
        return big(c, strcmp(url, "/bigchunked") == 0);
    }
    return reply(c, 404, "text/plain", "no such page", 12);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *con_cls;

    if (up != NULL) {
        free(up->buf);
        free(up);
        *con_cls = NULL;
    }
}

int ts_start(void)
{
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    stopping = 0;
    daemon_handle = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, handle,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (daemon_handle == NULL) {
        fprintf(stderr, "could not start test server on 127.0.0.1\n");
        return -1;
    }
    info = MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "could not get the test server's port\n");
        ts_stop();
        return -1;
    }
    return info->port;
}

void ts_stop(void)
{
    stopping = 1;
    if (daemon_handle != NULL) {
        MHD_stop_daemon(daemon_handle);
        daemon_handle = NULL;
    }
    if (closed_fd >= 0) {
        close(closed_fd);
        closed_fd = -1;
    }
}

int ts_closed_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd, port = -1;

    if (closed_fd >= 0) {
        close(closed_fd);
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    /* Bound but never listening: connections are refused, and holding the
     * socket until ts_stop keeps anything else from taking the port. */
    closed_fd = fd;
    return port;
}
