/* Unit tests for base/closer: the counted close, on a real libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/closer.h"

#define NEXTRA 40

/* A component as the closer's users have them: handles embedded, one
 * allocated apart per "connection", and its memory freed by the closer. */
struct thing {
    uv_timer_t timer;
    uv_idle_t idle;
    uv_check_t check;
    uv_timer_t *extra[NEXTRA];
    size_t nextra;
    struct eddy_closer closer;
    struct log *log;
};

/* What happened, in order, seen from outside the thing. */
struct log {
    uv_loop_t *loop;
    char events[64];
    int cb_calls;
    int last_calls;
    int frees;
    int open_at_cb; /* handles still in the loop when cb ran */
    int open_at_last;
};

static void note(struct log *l, char c)
{
    size_t n = strlen(l->events);
    if (n + 1 < sizeof l->events)
        l->events[n] = c;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

/* Handles the loop still holds: a handle leaves the loop's list just before
 * its close callback runs, so any counted handle not yet closed shows here. */
static int open_handles(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, count_handle, &n);
    return n;
}

static void thing_last(struct eddy_closer *c)
{
    struct thing *t = eddy_container_of(c, struct thing, closer);
    t->log->last_calls++;
    t->log->open_at_last = open_handles(t->log->loop);
    note(t->log, 'L');
}

static void thing_free(struct eddy_closer *c)
{
    struct thing *t = eddy_container_of(c, struct thing, closer);
    t->log->frees++;
    note(t->log, 'F');
    free(t);
}

static void on_thing_closed(void *ud)
{
    struct log *l = ud;
    l->cb_calls++;
    l->open_at_cb = open_handles(l->loop);
    note(l, 'C');
}

static struct thing *thing_new(uv_loop_t *loop, struct log *l)
{
    struct thing *t = eddy_calloc(1, sizeof *t);
    t->log = l;
    uv_timer_init(loop, &t->timer);
    uv_idle_init(loop, &t->idle);
    uv_check_init(loop, &t->check);
    eddy_closer_init(&t->closer, thing_last, thing_free);
    return t;
}

static void extra_closed(uv_handle_t *h)
{
    struct eddy_closer *c = h->data;
    free(h);
    eddy_closer_release(c);
}

/* Handles allocated apart: each freed in its own close callback, which
 * releases the hold taken for it. */
static void thing_add_extra(uv_loop_t *loop, struct thing *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t->extra[t->nextra] = eddy_malloc(sizeof(uv_timer_t));
        uv_timer_init(loop, t->extra[t->nextra++]);
    }
}

static void thing_close(struct thing *t, eddy_close_cb cb, void *ud)
{
    if (!eddy_closer_begin(&t->closer, cb, ud))
        return;
    eddy_closer_close(&t->closer, (uv_handle_t *)&t->timer);
    eddy_closer_close(&t->closer, (uv_handle_t *)&t->idle);
    eddy_closer_close(&t->closer, (uv_handle_t *)&t->check);
    for (size_t i = 0; i < t->nextra; i++) {
        eddy_closer_hold(&t->closer);
        t->extra[i]->data = &t->closer;
        uv_close((uv_handle_t *)t->extra[i], extra_closed);
    }
}

static void never(uv_idle_t *idle)
{
    (void)idle;
    fail();
}

static void run_and_close(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* cb once, after every handle has closed, between last and free. */
static void test_close_counts_handles(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct log l = {.loop = &loop};
    struct thing *t = thing_new(&loop, &l);
    thing_add_extra(&loop, t, NEXTRA);
    uv_idle_start(&t->idle, never); /* closed before the loop runs */
    thing_close(t, on_thing_closed, &l);
    assert_int_equal(l.cb_calls, 0); /* never inside close */
    assert_true(eddy_closer_pending(&t->closer) == 3 + NEXTRA);
    run_and_close(&loop);
    assert_int_equal(l.cb_calls, 1);
    assert_int_equal(l.last_calls, 1);
    assert_int_equal(l.frees, 1);
    assert_int_equal(l.open_at_last, 0);
    assert_int_equal(l.open_at_cb, 0);
    assert_string_equal(l.events, "LCF");
}

/* Closing twice: the second does nothing; cb once, with the first ud. */
static void test_close_twice(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct log l = {.loop = &loop}, other = {.loop = &loop};
    struct thing *t = thing_new(&loop, &l);
    thing_close(t, on_thing_closed, &l);
    assert_true(eddy_closer_closing(&t->closer));
    thing_close(t, on_thing_closed, &other);
    run_and_close(&loop);
    assert_int_equal(l.cb_calls, 1);
    assert_int_equal(other.cb_calls, 0);
    assert_int_equal(l.frees, 1);
}

/* A hold (a canceled request whose callback is still owed) keeps the thing
 * alive after its handles closed, until it is released from the loop. */
struct releaser {
    uv_timer_t timer;
    struct eddy_closer *closer;
    int ticks;
    struct log *log;
};

static void on_release_tick(uv_timer_t *timer)
{
    struct releaser *r = eddy_container_of(timer, struct releaser, timer);
    if (++r->ticks < 3) {
        /* the thing's handles are closed by now, but it waits */
        assert_int_equal(r->log->cb_calls, 0);
        return;
    }
    uv_timer_stop(timer);
    eddy_closer_release(r->closer);
    assert_int_equal(r->log->cb_calls, 1);
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_hold_delays_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct log l = {.loop = &loop};
    struct thing *t = thing_new(&loop, &l);
    struct releaser r = {.closer = &t->closer, .log = &l};
    uv_timer_init(&loop, &r.timer);
    eddy_closer_hold(&t->closer);
    thing_close(t, on_thing_closed, &l);
    uv_timer_start(&r.timer, on_release_tick, 1, 1);
    run_and_close(&loop);
    assert_int_equal(r.ticks, 3);
    assert_int_equal(l.cb_calls, 1);
    assert_int_equal(l.open_at_cb, 1); /* only the releaser's timer */
    assert_string_equal(l.events, "LCF");
}

/* Before begin the count only counts: a handle closed early (one
 * "connection" gone while the thing runs) and a hold taken and released
 * call nothing; the thing is still whole and closes later. */
static void test_before_begin_nothing_runs(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct log l = {.loop = &loop};
    struct thing *t = thing_new(&loop, &l);
    eddy_closer_hold(&t->closer);
    eddy_closer_release(&t->closer);
    uv_timer_t *early = eddy_malloc(sizeof *early);
    uv_timer_init(&loop, early);
    eddy_closer_close(&t->closer, (uv_handle_t *)early);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    free(early);
    assert_int_equal(eddy_closer_pending(&t->closer), 0);
    assert_false(eddy_closer_closing(&t->closer));
    assert_int_equal(l.cb_calls + l.last_calls + l.frees, 0);
    thing_close(t, NULL, NULL); /* no cb: last and free still run */
    run_and_close(&loop);
    assert_int_equal(l.last_calls, 1);
    assert_int_equal(l.frees, 1);
    assert_string_equal(l.events, "LF");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_counts_handles),
        cmocka_unit_test(test_close_twice),
        cmocka_unit_test(test_hold_delays_close),
        cmocka_unit_test(test_before_begin_nothing_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
