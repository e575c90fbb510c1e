/*
 * test_loop.c: core's event loop: timers fire in deadline order and never
 * early, cancel and re-arm work through the heap, tasks posted from other
 * threads run in order on the loop thread, a watch removed during a batch is
 * not called, and end-of-turn hooks run after every turn.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "jsonutil.h"
#include "loop.h"
#include "testhelp.h"

static int order[64];
static int norder;

static void record(void *arg)
{
    if (norder < 64)
        order[norder++] = (int)(intptr_t)arg;
}

static void test_timers(void)
{
    struct loop *l = loop_new();
    struct loop_timer t[40];
    int64_t start = ju_mono_ms();

    CHECK(l != NULL);
    memset(t, 0, sizeof(t));
    norder = 0;
    /* 40 timers in scrambled order; every third cancelled, two re-armed */
    for (int i = 0; i < 40; i++) {
        int k = (i * 17) % 40;
        loop_timer_set(l, &t[k], start + 5 + k, record, (void *)(intptr_t)k);
    }
    for (int k = 0; k < 40; k += 3)
        loop_timer_cancel(l, &t[k]);
    CHECK(!loop_timer_armed(&t[0]));
    CHECK(loop_timer_armed(&t[1]));
    loop_timer_set(l, &t[1], start + 60, record, (void *)(intptr_t)100);
    loop_timer_set(l, &t[3], start + 1, record, (void *)(intptr_t)103);
    for (int i = 0; i < 200 && norder < 27; i++)
        CHECK(loop_turn(l, 50) == 0);
    CHECK_INT(norder, 27);
    CHECK_INT(order[0], 103);
    CHECK_INT(order[norder - 1], 100);
    for (int i = 1; i < norder - 1; i++)
        CHECK(order[i] > order[i - 1] || i == 1);
    CHECK(ju_mono_ms() - start >= 60);
    loop_free(l);
}

struct poster {
    struct loop *l;
    int base;
};

static int posted_seen[2000];
static int nposted;

static void note_post(void *arg)
{
    if (nposted < 2000)
        posted_seen[nposted++] = (int)(intptr_t)arg;
}

static void *post_many(void *arg)
{
    struct poster *p = arg;

    for (int i = 0; i < 1000; i++) {
        while (loop_post(p->l, note_post, (void *)(intptr_t)(p->base + i)) < 0)
            usleep(100);
    }
    return NULL;
}

static void test_post(void)
{
    struct loop *l = loop_new();
    struct poster a = {l, 0}, b = {l, 100000};
    pthread_t ta, tb;
    int last_a = -1, last_b = -1, in_order = 1;

    nposted = 0;
    pthread_create(&ta, NULL, post_many, &a);
    pthread_create(&tb, NULL, post_many, &b);
    for (int i = 0; i < 5000 && nposted < 2000; i++)
        CHECK(loop_turn(l, 20) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int i = 0; i < 100 && nposted < 2000; i++)
        CHECK(loop_turn(l, 20) == 0);
    CHECK_INT(nposted, 2000);
    for (int i = 0; i < nposted; i++) {
        int v = posted_seen[i];
        if (v >= 100000) {
            in_order &= v > last_b;
            last_b = v;
        } else {
            in_order &= v > last_a;
            last_a = v;
        }
    }
    CHECK(in_order);
    loop_free(l);
}

struct pair {
    struct loop *l;
    struct loop_watch w[2];
    int fds[2][2];
    int calls[2];
    struct side {
        struct pair *p;
        int idx;
    } side[2];
};

/* Whichever watch is called first removes the other (as if freeing it). */
static void on_ready(void *arg, uint32_t events)
{
    struct side *s = arg;
    struct pair *p = s->p;

    p->calls[s->idx]++;
    loop_del(p->l, &p->w[!s->idx]);
    loop_del(p->l, &p->w[s->idx]);
}

static int hook_runs;

static void hook(void *arg)
{
    hook_runs++;
}

static void test_del_during_batch(void)
{
    struct pair p;
    char c = 'x';

    memset(&p, 0, sizeof(p));
    p.l = loop_new();
    CHECK(pipe(p.fds[0]) == 0 && pipe(p.fds[1]) == 0);
    for (int i = 0; i < 2; i++) {
        p.side[i].p = &p;
        p.side[i].idx = i;
        CHECK(loop_add(p.l, &p.w[i], p.fds[i][0], EPOLLIN, on_ready, &p.side[i]) == 0);
    }
    CHECK(write(p.fds[0][1], &c, 1) == 1 && write(p.fds[1][1], &c, 1) == 1);
    hook_runs = 0;
    CHECK(loop_on_turn_end(p.l, hook, NULL) == 0);
    CHECK(loop_turn(p.l, 100) == 0);
    CHECK_INT(p.calls[0] + p.calls[1], 1);
    CHECK_INT(hook_runs, 1);
    CHECK(loop_turn(p.l, 0) == 0);
    CHECK_INT(p.calls[0] + p.calls[1], 1);
    CHECK_INT(hook_runs, 2);
    for (int i = 0; i < 2; i++) {
        close(p.fds[i][0]);
        close(p.fds[i][1]);
    }
    loop_free(p.l);
}

static void stop_it(void *arg)
{
    loop_stop(arg);
}

static void test_run_stop(void)
{
    struct loop *l = loop_new();
    struct loop_timer t;

    memset(&t, 0, sizeof(t));
    loop_timer_set(l, &t, ju_mono_ms() + 10, stop_it, l);
    CHECK(loop_run(l) == 0);
    CHECK(loop_turns(l) >= 1);
    loop_free(l);
}

int main(void)
{
    test_timers();
    test_post();
    test_del_during_batch();
    test_run_stop();
    TEST_REPORT("unit_loop");
}
