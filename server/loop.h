/*
 * loop.h: core's event loop: one epoll set, one-shot timers, end-of-turn
 * hooks and a mailbox other threads post tasks into (an eventfd).
 *
 * One thread runs the loop (loop_run) and owns everything registered with
 * it: every callback below is called on that thread, and every function but
 * loop_post and loop_stop must be called on it. A turn is: wait for events
 * (no longer than the earliest timer), call the I/O callbacks, run the tasks
 * posted by other threads, run the due timers, then the end-of-turn hooks
 * (the database layer sends the turn's statements there, which is what
 * makes everything submitted in one turn one batch).
 *
 * Watches and timers are structs the caller embeds in its own objects; the
 * loop never allocates or frees them. A watch removed while the turn's
 * events still name it is skipped, so a callback may free any object
 * (its own included) after unregistering it.
 */
#ifndef WF_LOOP_H
#define WF_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;

/* An I/O callback: events are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits. */
typedef void (*loop_io_fn)(void *arg, uint32_t events);
/* A timer, task or hook callback. */
typedef void (*loop_fn)(void *arg);

struct loop_watch {
    int fd;
    uint32_t events;
    loop_io_fn fn;
    void *arg;
    int registered;
};

struct loop_timer {
    int64_t at; /* monotonic ms */
    loop_fn fn;
    void *arg;
    size_t slot; /* index in the loop's heap + 1; 0 when not armed */
};

/* Returns a new loop, or NULL with errno set. */
struct loop *loop_new(void);
/* Frees the loop; tasks still in the mailbox are dropped (their callers
 * must not need them: the loop is freed only after shutdown). */
void loop_free(struct loop *l);

/* Registers fd for events (level-triggered). Returns 0, or -1 with errno. */
int loop_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_io_fn fn,
             void *arg) __attribute__((warn_unused_result));
/* Changes the events of a registered watch (no-op when unchanged). */
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
    __attribute__((warn_unused_result));
/* Unregisters w (safe on an unregistered watch); the fd stays open. */
void loop_del(struct loop *l, struct loop_watch *w);

/* Arms t to call fn(arg) at monotonic time at_ms (re-arms if armed). */
void loop_timer_set(struct loop *l, struct loop_timer *t, int64_t at_ms, loop_fn fn, void *arg);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
int loop_timer_armed(const struct loop_timer *t);

/* Adds a hook run at the end of every turn, in the order added. Returns 0,
 * or -1 when the table (LOOP_MAX_HOOKS) is full. */
#define LOOP_MAX_HOOKS 8
int loop_on_turn_end(struct loop *l, loop_fn fn, void *arg) __attribute__((warn_unused_result));
/* Removes the hook added with the same fn and arg (no-op if absent). */
void loop_off_turn_end(struct loop *l, loop_fn fn, void *arg);

/*
 * Any thread: asks the loop thread to call fn(arg) in its next turn; tasks
 * run in the order posted. Returns 0, or -1 (ENOMEM) when the task could not
 * be queued (nothing will be called).
 */
int loop_post(struct loop *l, loop_fn fn, void *arg) __attribute__((warn_unused_result));

/* Runs turns until loop_stop; returns 0, or -1 if epoll_wait failed. */
int loop_run(struct loop *l);
/* Any thread: the current turn is the last one. */
void loop_stop(struct loop *l);
/* Runs one turn, waiting at most timeout_ms for events (-1: until the next
 * timer). For tests and for the shutdown phase. */
int loop_turn(struct loop *l, int timeout_ms);

/* The monotonic time (ms) read at the start of the current turn. */
int64_t loop_now(const struct loop *l);
/* Counters: turns run, tasks posted. */
uint64_t loop_turns(const struct loop *l);

#endif
