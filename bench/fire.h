/*
 * fire.h: the trigger load of bench_http (`bench_http fire`): N POSTs of
 * one body to 127.0.0.1, from C keep-alive connections driven by one epoll
 * loop, each with one request in flight; optionally paced (open loop at R
 * requests a second). A hand-written HTTP/1.1 client rather than libcurl:
 * it shares the 2 cores with the server it measures, and libcurl's multi
 * interface costs several times more CPU per request.
 *
 * Per request it records the wall-clock time the request was written
 * (CLOCK_REALTIME, the clock PostgreSQL's timestamps use on this machine),
 * the reply time and status, and the "executionId" of the reply, so the
 * harness can join the client's view with the rows (trigger → first step).
 */
#ifndef WF_BENCH_FIRE_H
#define WF_BENCH_FIRE_H

#define FIRE_MAX_COUNT 1000000
#define FIRE_MAX_CONNS 1024

struct fire_opts {
    int port;
    const char *path;
    const char *body;
    long count;
    int conns;
    double rate;        /* requests/s, open loop; 0: as fast as the connections allow */
    double max_seconds; /* the whole load is bounded by this */
    long timeout_ms;    /* one request */
    const char *label;
    const char *ids_path; /* NULL, or: one "<executionId>\t<sent µs>\t<reply µs>" line per 2xx */
};

/* Runs the load and prints one JSON summary on stdout. Returns the exit
 * status: 0 when every request got a 2xx, 1 otherwise, 2 on a set-up error. */
int fire_main(const struct fire_opts *o);

#endif
