/*
 * core.c: start-up and shutdown of the core role.
 *
 * Order (each step needs the previous): block the signals the dispatcher
 * reads through its signalfd (before any thread exists, so every thread
 * inherits the mask); connect to PostgreSQL, retrying while it is not up
 * yet; apply migrations; greet the manager (which then hands over every live
 * worker); run the dispatcher, which starts the HTTP threads once the
 * manager's state is in. Shutdown reverses it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "artifacts.h"
#include "core.h"
#include "exitcodes.h"
#include "log.h"
#include "migrate.h"
#include "msg.h"

#define CONNECT_RETRY_MS 1000

static const char *view_key(const void *item)
{
    return ((const struct core_view *)item)->project;
}

/* Returns 1 if SIGTERM/SIGINT is pending or the manager is gone. */
static int should_stop(int ctl_fd)
{
    sigset_t pending;
    struct pollfd pfd = {.fd = ctl_fd, .events = POLLIN};

    sigpending(&pending);
    if (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))
        return 1;
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)) != 0)
        return 1;
    return 0;
}

/* Connects the dispatcher's connection, retrying every second and logging
 * the first failure and every tenth after it. Returns 0, or -1 if told to
 * stop meanwhile. */
static int connect_with_retry(struct core *c)
{
    for (int attempt = 0;; attempt++) {
        if (db_connect(c->dconn) == 0) {
            if (attempt > 0)
                log_info("connected to the database after %d attempts", attempt + 1);
            return 0;
        }
        if (attempt % 10 == 0)
            log_error("could not connect to the database: %s; retrying", db_error(c->dconn));
        if (should_stop(c->ctl_fd))
            return -1;
        usleep(CONNECT_RETRY_MS * 1000);
    }
}

static int say_hello(struct core *c)
{
    cJSON *o = cJSON_CreateObject();
    int r;

    cJSON_AddStringToObject(o, "op", "hello");
    r = msg_send(c->ctl_fd, o, -1);
    cJSON_Delete(o);
    return r;
}

static void free_views(struct core *c)
{
    for (size_t i = 0; i < c->views.n; i++) {
        struct core_view *v = c->views.items[i];
        free(v->error);
        free(v->loaded);
        free(v);
    }
    idmap_free(&c->views);
}

/*
 * The artifact directory of this instance: <WF_RUNTIME_DIR>/<port>. The port
 * tells instances on one host apart (so one's clean-up never removes
 * another's files) and stays the same across restarts, so files are reused.
 */
static int instance_dir(struct core *c, int listen_fd, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    if (getsockname(listen_fd, (struct sockaddr *)&sa, &len) < 0) {
        snprintf(err, errlen, "could not read the listening port: %s", strerror(errno));
        return -1;
    }
    if (art_init(c->cfg->runtime_dir, err, errlen) < 0)
        return -1;
    if ((size_t)snprintf(c->rundir, sizeof(c->rundir), "%s/%u", c->cfg->runtime_dir,
                         (unsigned)ntohs(sa.sin_port)) >= sizeof(c->rundir)) {
        snprintf(err, errlen, "runtime directory path too long");
        return -1;
    }
    return art_init(c->rundir, err, errlen);
}

int core_main(const struct wf_config *cfg, int ctl_fd, int listen_fd)
{
    static struct core core;
    struct core *c = &core;
    sigset_t mask;
    char err[256];
    int rc = WF_EXIT_OK;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);

    c->cfg = cfg;
    c->ctl_fd = ctl_fd;
    c->views.key_of = view_key;
    c->next_call_id = 1;
    pthread_mutex_init(&c->ctl_mu, NULL);
    pthread_mutex_init(&c->calls_mu, NULL);
    pthread_rwlock_init(&c->view_lock, NULL);

    if (db_check_url(cfg->database_url, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return WF_EXIT_USAGE;
    }
    if (instance_dir(c, listen_fd, err, sizeof(err)) < 0) {
        log_error("%s (WF_RUNTIME_DIR)", err);
        return WF_EXIT_USAGE;
    }
    c->dconn = db_conn_new(cfg->database_url);
    c->pool = db_pool_new(cfg->database_url, cfg->db_pool_size);
    if (c->dconn == NULL || c->pool == NULL) {
        log_error("could not allocate database connections: out of memory");
        return WF_EXIT_FAILURE;
    }
    if (connect_with_retry(c) < 0) {
        log_info("stopping before the database was reachable");
        goto out;
    }
    if (migrate_apply(c->dconn) < 0) {
        rc = WF_EXIT_DATABASE;
        goto out;
    }
    /* From here on the dispatcher's connection writes only derived status
     * (worker rows, heartbeats, desired states), which the manager's hello
     * rebuilds after any loss: its commits need not wait for the WAL flush,
     * which would otherwise sit twice on every start call's path. */
    if (db_conn_set_session(c->dconn, "SET synchronous_commit = off") < 0) {
        log_error("could not configure the dispatcher's connection: %s", db_error(c->dconn));
        rc = WF_EXIT_DATABASE;
        goto out;
    }
    __atomic_store_n(&c->db_ok, 1, __ATOMIC_RELAXED); /* before /health can be asked */
    if (say_hello(c) < 0) {
        log_error("could not greet the manager: %s", strerror(errno));
        rc = WF_EXIT_FAILURE;
        goto out;
    }
    /* The dispatcher starts HTTP once the manager's hello has filled the
     * worker view, so no request sees an empty view after a core restart. */
    rc = dispatcher_run(c, listen_fd);
    http_stop(c);
out:
    free_views(c);
    db_pool_free(c->pool);
    db_conn_free(c->dconn);
    close(listen_fd);
    close(ctl_fd);
    return rc;
}
