/*
 * bare_mhd.c: the HTTP baseline of the benchmark harness: a bare
 * libmicrohttpd server that answers fixed JSON, set up as server/http.c
 * sets up wf-server's (same daemon flags, thread pool, connection timeout
 * and limit; a listening socket made as manager/manager.c makes it and
 * handed over with MHD_OPTION_LISTEN_SOCKET), so that the difference
 * between the two is what wf-server does per request.
 *
 *   bare_mhd --port P --threads K --health FILE --other FILE
 *
 * GET /health answers the contents of the --health file, every other path
 * the --other file (bench/run passes wf-server's own replies, so the bodies
 * are byte for byte the same), 200 with Content-Type: application/json.
 * Each reply is copied into a malloc'd buffer per request as
 * http_send_json does. Listens on 127.0.0.1 only; with port 0 the kernel
 * picks one. Prints "listening on port N" on stdout, then serves until
 * SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#define CONN_TIMEOUT_S 30 /* as HTTP_CONN_TIMEOUT_S in server/http.c */
#define CONN_LIMIT 4096   /* as HTTP_CONN_LIMIT */

struct body {
    char *text;
    size_t len;
};

static struct body health;
static struct body other;
static int first_call_marker;

static int load(const char *path, struct body *b)
{
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    b->text = malloc(n + 1);
    if (b->text == NULL)
        return -1;
    memcpy(b->text, buf, n);
    b->text[n] = '\0';
    b->len = n;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    const struct body *b;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char *copy;

    (void)cls;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) { /* as wf-server: answer on the second call */
        *req_cls = &first_call_marker;
        return MHD_YES;
    }
    *upload_data_size = 0;
    b = strcmp(url, "/health") == 0 ? &health : &other;
    copy = malloc(b->len + 1);
    if (copy == NULL)
        return MHD_NO;
    memcpy(copy, b->text, b->len + 1);
    resp = MHD_create_response_from_buffer_with_free_callback(b->len, copy, free);
    if (resp == NULL) {
        free(copy);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    *req_cls = NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: bare_mhd --port P --threads K --health FILE --other FILE\n");
    exit(2);
}

static long arg_long(const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    long port = -1;
    long threads = 4;
    const char *health_path = NULL;
    const char *other_path = NULL;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    struct MHD_Daemon *d;
    sigset_t set;
    int one = 1;
    int sig = 0;
    int fd;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = arg_long(argv[i + 1], 0, 65535);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = arg_long(argv[i + 1], 1, 64);
        else if (strcmp(argv[i], "--health") == 0)
            health_path = argv[i + 1];
        else if (strcmp(argv[i], "--other") == 0)
            other_path = argv[i + 1];
        else
            usage();
    }
    if (argc % 2 != 1 || port < 0 || health_path == NULL || other_path == NULL)
        usage();
    if (load(health_path, &health) < 0 || load(other_path, &other) < 0) {
        fprintf(stderr, "bare_mhd: cannot read the reply files\n");
        return 1;
    }

    /* Block the stop signals before MHD starts its threads, so they inherit
     * the mask and sigwait below receives them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        perror("bare_mhd: socket");
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        perror("bare_mhd: bind/listen");
        return 1;
    }
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                             MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bare_mhd: MHD_start_daemon failed\n");
        return 1;
    }
    printf("listening on port %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    while (sigwait(&set, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    close(fd);
    free(health.text);
    free(other.text);
    return 0;
}
