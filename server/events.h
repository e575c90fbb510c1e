/*
 * events.h: live run events as Server-Sent Events (DESIGN §5.1, docs/api.md
 * "Live events"): GET /executions/{id}/events and GET /projects/{id}/events.
 *
 * Every event is derived from committed database state, never from what
 * this core happens to see go by, so a stream can be resumed with
 * Last-Event-ID on any server sharing the database, and a run held by
 * another host streams as well as one held here. Statement triggers
 * (migration 8) NOTIFY wf_events with the project of every run or step
 * row written, inside the writing transaction; on a notification the
 * module reads what changed past each stream's cursor (one query in flight
 * per stream; notifications that arrive meanwhile fold into one more
 * query) and appends the events to the stream's buffer.
 *
 * Memory and threads: a stream holds no thread. Its response is a
 * libmicrohttpd callback response reading from a per-stream buffer of at
 * most EVENTS_BUF_MAX bytes; when the buffer is empty the callback
 * suspends the connection and the loop resumes it when it appends. Reads
 * are paced by the client: once its buffer is more than half full nothing
 * more is read from the database for it until the callback has emptied
 * it, so a client that stops reading costs core at most that; the rest
 * waits in the kernel's socket buffer (bounded by net.ipv4.tcp_wmem),
 * and while the kernel takes bytes the stream stays open (measured:
 * test_events). An event that
 * would still overflow the buffer closes the stream; the client reconnects
 * with its Last-Event-ID and misses nothing, because events are read again
 * from the database (outputs and errors over 4 KiB are left out of events,
 * so one event always fits). An idle stream costs its small state and
 * libmicrohttpd's connection, no buffer.
 *
 * Threads: events_new, events_stop and events_free on the loop thread; the
 * routes on libmicrohttpd's threads (they validate and post to the loop).
 */
#ifndef WF_EVENTS_H
#define WF_EVENTS_H

#include <microhttpd.h>

#include "http.h"

/* A stream's buffer never holds more; past it the stream is closed. */
#define EVENTS_BUF_MAX (64 * 1024)

struct events;

/*
 * Creates the module on c's loop and database layer (both set): listens on
 * wf_events and starts its tick. Returns it, or NULL (out of memory).
 * Free with events_free.
 */
struct events *events_new(struct core *c);

/*
 * Loop thread, at shutdown, before the database layer is freed: refuses
 * new streams, ends every open one (its connection is resumed, so none
 * stays suspended) and stops the tick. Streams still opening are answered
 * 503 when their query's callback comes (dbq_free calls it).
 */
void events_stop(struct events *ev);

/* Loop thread, after libmicrohttpd stopped: frees what is left. NULL is a no-op. */
void events_free(struct events *ev);

/* Any thread: the number of open streams (for /metrics). */
long events_open_streams(const struct events *ev);

/* GET /executions/{id}/events: the run's steps and states (inline route). */
enum MHD_Result api_events_execution(struct core *c, struct MHD_Connection *conn,
                                     struct http_req *r, const char *const *args);

/* GET /projects/{id}/events: the state changes of the project's runs. */
enum MHD_Result api_events_project(struct core *c, struct MHD_Connection *conn, struct http_req *r,
                                   const char *const *args);

#endif
