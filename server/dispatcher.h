/*
 * dispatcher.h: the dispatcher's state, shared by its three files (internal
 * to core): dispatcher.c (the loop, worker connections, manager calls),
 * workers.c (the worker view and the workflow_workers rows) and loadcode.c
 * (what a worker is told to load, and the artifact files behind it).
 * Everything here runs on core's main thread only.
 */
#ifndef WF_DISPATCHER_H
#define WF_DISPATCHER_H

#include <sys/types.h>

#include <cJSON.h>
#include <libpq-fe.h>

#include "core.h"

/* One worker's work socket, as seen by core. */
struct wconn {
    int fd;
    pid_t pid;
    char project[WF_ID_MAX + 1];
    int draining;
    int beat;         /* sent a heartbeat since the last flush */
    char *loaded;     /* JSON text of the code lists sent to it, or NULL */
    char (*shas)[65]; /* artifacts it was given (kept by art_gc) */
    int load_sent;    /* its load message went out */
    size_t nshas;
    struct wconn *next;
};

struct dispatcher {
    struct core *c;
    int epfd;
    int sigfd;
    int timerfd;
    struct wconn *wconns;
    struct wconn *zombies; /* replaced connections, freed after the batch */
    int64_t next_flush;
    int64_t next_ping;
    int64_t next_reap;
    int listen_fd;
    int stop;
    int rc;
};

/* dispatcher.c */
struct wconn *disp_find_wconn(struct dispatcher *d, pid_t pid);
/* Closes and frees w; gc: then remove the project's unused artifact files. */
void disp_drop_wconn(struct dispatcher *d, struct wconn *w, int gc);

/* workers.c */
void disp_view_set_str(char **dst, const char *src);
/* A slot snapshot from the manager: view and row. */
void disp_on_state(struct dispatcher *d, const cJSON *ev);
/* The manager's hello: rebuild the view, reconcile rows, start HTTP. */
void disp_on_hello(struct dispatcher *d, const cJSON *ev);
/* Records the desired state after a successful start/stop/restart call. */
void disp_store_desired(struct core *c, const struct core_call *call);
void disp_on_heartbeat(struct dispatcher *d, struct wconn *w);
/* One statement for every worker that beat since the last flush. */
void disp_flush_heartbeats(struct dispatcher *d);
/* Rows of other hosts silent for 3 of their heartbeat intervals become
 * crashed (their host vanished without cleaning up). */
void disp_reap_stale_rows(struct dispatcher *d);
/* At shutdown: this host's live rows become stopped. */
void disp_mark_stopped(struct dispatcher *d);

/* loadcode.c */
void disp_gc_project(struct dispatcher *d, const char *project);
/* Sends a worker its project's code (or why it cannot have it), once. */
void disp_send_load(struct dispatcher *d, struct wconn *w);
/* A worker's hello on a new socket. */
void disp_on_worker_hello(struct dispatcher *d, struct wconn *w, const cJSON *msg);

#endif
