/*
 * loop.c: see loop.h.
 *
 * Timers are a binary min-heap of caller-owned structs (each knows its slot,
 * so cancel is O(log n)); epoll_wait sleeps until the earliest one. The
 * mailbox is a mutex-protected FIFO of small nodes plus an eventfd; the
 * eventfd is written only when the FIFO goes from empty to non-empty, so a
 * burst of posts costs one wake-up. Invariant: a watch pointer in the
 * current epoll batch is cleared by loop_del, so no callback sees a freed
 * watch.
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "jsonutil.h"

#define LOOP_MAX_EVENTS 128

struct loop_task {
    loop_fn fn;
    void *arg;
    struct loop_task *next;
};

struct loop {
    int epfd;
    int evfd;
    struct loop_watch evwatch;
    struct epoll_event evs[LOOP_MAX_EVENTS];
    int nevs; /* events of the batch being dispatched */
    int64_t now;
    volatile int stop; /* __atomic access */
    uint64_t turns;

    struct loop_timer **heap;
    size_t nheap, capheap;

    struct {
        loop_fn fn;
        void *arg;
    } hooks[LOOP_MAX_HOOKS];
    int nhooks;

    pthread_mutex_t mu; /* guards the mailbox */
    struct loop_task *head, *tail;
    uint64_t posted;
};

static void on_mailbox(void *arg, uint32_t events);

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof(*l));
    int saved;

    if (l == NULL)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&l->mu, NULL);
    if (l->epfd < 0 || l->evfd < 0 ||
        loop_add(l, &l->evwatch, l->evfd, EPOLLIN, on_mailbox, l) < 0) {
        saved = errno;
        loop_free(l);
        errno = saved;
        return NULL;
    }
    l->now = ju_mono_ms();
    return l;
}

void loop_free(struct loop *l)
{
    if (l == NULL)
        return;
    while (l->head != NULL) {
        struct loop_task *t = l->head;
        l->head = t->next;
        free(t);
    }
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->evfd >= 0)
        close(l->evfd);
    for (size_t i = 0; i < l->nheap; i++)
        l->heap[i]->slot = 0;
    free(l->heap);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int loop_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_io_fn fn,
             void *arg)
{
    struct epoll_event ee;

    memset(&ee, 0, sizeof(ee));
    ee.events = events;
    ee.data.ptr = w;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
        return -1;
    w->fd = fd;
    w->events = events;
    w->fn = fn;
    w->arg = arg;
    w->registered = 1;
    return 0;
}

int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
    struct epoll_event ee;

    if (!w->registered) {
        errno = EINVAL;
        return -1;
    }
    if (w->events == events)
        return 0;
    memset(&ee, 0, sizeof(ee));
    ee.events = events;
    ee.data.ptr = w;
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ee) < 0)
        return -1;
    w->events = events;
    return 0;
}

void loop_del(struct loop *l, struct loop_watch *w)
{
    if (!w->registered)
        return;
    /* The fd may already be closed (then epoll dropped it by itself). */
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->registered = 0;
    for (int i = 0; i < l->nevs; i++) {
        if (l->evs[i].data.ptr == w)
            l->evs[i].data.ptr = NULL;
    }
}

/* ---- timers: a binary min-heap on at ---- */

static void heap_swap(struct loop *l, size_t a, size_t b)
{
    struct loop_timer *t = l->heap[a];

    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->slot = a + 1;
    l->heap[b]->slot = b + 1;
}

static void heap_up(struct loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->at <= l->heap[i]->at)
            break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && l->heap[a]->at < l->heap[m]->at)
            m = a;
        if (b < l->nheap && l->heap[b]->at < l->heap[m]->at)
            m = b;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    size_t i;

    if (t->slot == 0)
        return;
    i = t->slot - 1;
    t->slot = 0;
    l->nheap--;
    if (i == l->nheap)
        return;
    {
        struct loop_timer *moved = l->heap[l->nheap];
        l->heap[i] = moved;
        moved->slot = i + 1;
        heap_up(l, i);
        heap_down(l, moved->slot - 1);
    }
}

void loop_timer_set(struct loop *l, struct loop_timer *t, int64_t at_ms, loop_fn fn, void *arg)
{
    loop_timer_cancel(l, t);
    t->at = at_ms;
    t->fn = fn;
    t->arg = arg;
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? 2 * l->capheap : 64;
        struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL) {
            /* Out of memory: fire at the next turn instead of never. */
            t->at = 0;
            return;
        }
        l->heap = h;
        l->capheap = cap;
    }
    l->heap[l->nheap] = t;
    t->slot = ++l->nheap;
    heap_up(l, l->nheap - 1);
}

int loop_timer_armed(const struct loop_timer *t)
{
    return t->slot != 0;
}

static void run_timers(struct loop *l)
{
    /* Bounded: a timer re-armed for "now" by its own callback runs next turn. */
    size_t budget = l->nheap;

    while (budget-- > 0 && l->nheap > 0 && l->heap[0]->at <= l->now) {
        struct loop_timer *t = l->heap[0];
        loop_timer_cancel(l, t);
        t->fn(t->arg);
    }
}

/* ---- hooks and the mailbox ---- */

int loop_on_turn_end(struct loop *l, loop_fn fn, void *arg)
{
    if (l->nhooks == LOOP_MAX_HOOKS)
        return -1;
    l->hooks[l->nhooks].fn = fn;
    l->hooks[l->nhooks].arg = arg;
    l->nhooks++;
    return 0;
}

void loop_off_turn_end(struct loop *l, loop_fn fn, void *arg)
{
    for (int i = 0; i < l->nhooks; i++) {
        if (l->hooks[i].fn == fn && l->hooks[i].arg == arg) {
            memmove(&l->hooks[i], &l->hooks[i + 1],
                    (size_t)(l->nhooks - i - 1) * sizeof(l->hooks[0]));
            l->nhooks--;
            return;
        }
    }
}

int loop_post(struct loop *l, loop_fn fn, void *arg)
{
    struct loop_task *t = malloc(sizeof(*t));
    int wake;

    if (t == NULL) {
        errno = ENOMEM;
        return -1;
    }
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&l->mu);
    wake = l->head == NULL;
    if (l->tail != NULL)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    l->posted++;
    pthread_mutex_unlock(&l->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(l->evfd, &one, sizeof(one));
        (void)n; /* EAGAIN: the counter is saturated, the loop wakes anyway */
    }
    return 0;
}

static void on_mailbox(void *arg, uint32_t events)
{
    struct loop *l = arg;
    struct loop_task *list;
    uint64_t v;

    if (read(l->evfd, &v, sizeof(v)) < 0)
        (void)0; /* EAGAIN: nothing new since the last read */
    pthread_mutex_lock(&l->mu);
    list = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (list != NULL) {
        struct loop_task *t = list;
        list = t->next;
        t->fn(t->arg);
        free(t);
    }
}

/* ---- turns ---- */

int loop_turn(struct loop *l, int timeout_ms)
{
    int n, wait = timeout_ms;

    l->now = ju_mono_ms();
    if (l->nheap > 0) {
        int64_t d = l->heap[0]->at - l->now;
        int tw = d <= 0 ? 0 : (d > 60000 ? 60000 : (int)d);
        if (wait < 0 || tw < wait)
            wait = tw;
    }
    n = epoll_wait(l->epfd, l->evs, LOOP_MAX_EVENTS, wait);
    if (n < 0 && errno != EINTR)
        return -1;
    l->turns++;
    l->now = ju_mono_ms();
    l->nevs = n > 0 ? n : 0;
    for (int i = 0; i < l->nevs; i++) {
        struct loop_watch *w = l->evs[i].data.ptr;
        if (w != NULL)
            w->fn(w->arg, l->evs[i].events);
    }
    l->nevs = 0;
    run_timers(l);
    for (int i = 0; i < l->nhooks; i++)
        l->hooks[i].fn(l->hooks[i].arg);
    return 0;
}

int loop_run(struct loop *l)
{
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        if (loop_turn(l, -1) < 0)
            return -1;
    }
    return 0;
}

void loop_stop(struct loop *l)
{
    uint64_t one = 1;
    ssize_t n;

    __atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
    n = write(l->evfd, &one, sizeof(one));
    (void)n;
}

int64_t loop_now(const struct loop *l)
{
    return l->now;
}

uint64_t loop_turns(const struct loop *l)
{
    return l->turns;
}
