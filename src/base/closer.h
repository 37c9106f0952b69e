/*
 * closer.h - the close of a component that owns libuv handles, counted.
 *
 * A component's memory may go only once every handle it embeds has run its
 * close callback (libuv reclaims nothing itself), and often once something
 * else it waits for has ended too (a request it canceled, whose callback
 * still has to come). struct eddy_closer counts those: each handle closed
 * through it and each hold taken counts one, and when the count falls to
 * zero after eddy_closer_begin it runs, in this order, the component's
 * `last` hook (work owed before the caller hears of it: callbacks still
 * owed, a library's own teardown), the caller's close callback (cb, ud),
 * then the component's `free` hook. So every component closes the same way:
 * x_close(x, cb, ud), with cb called from the loop once x is quiet, and x
 * freed after cb.
 *
 *     struct thing { uv_timer_t timer; uv_idle_t idle; struct eddy_closer closer; ... };
 *
 *     static void thing_last(struct eddy_closer *c) { ... owed callbacks ... }
 *     static void thing_free(struct eddy_closer *c)
 *     {
 *         free(eddy_container_of(c, struct thing, closer));
 *     }
 *     thing_new:   eddy_closer_init(&t->closer, thing_last, thing_free);
 *     thing_close: if (!eddy_closer_begin(&t->closer, cb, ud))
 *                      return;                          (closing already)
 *                  eddy_closer_close(&t->closer, (uv_handle_t *)&t->timer);
 *                  eddy_closer_close(&t->closer, (uv_handle_t *)&t->idle);
 *     elsewhere:   eddy_closer_hold(&t->closer);       (a canceled request)
 *                  ... its callback: eddy_closer_release(&t->closer);
 *
 * A handle whose memory must go in its own close callback (one of many,
 * allocated apart) is closed by the component with uv_close as usual,
 * holding the closer before and releasing it from that callback.
 *
 * eddy_closer_close takes over handle->data (nothing else reads it once the
 * handle is closing). Until eddy_closer_begin the count only counts: a
 * handle may be closed and a hold taken and released at any time, and
 * nothing runs when it falls to zero. After begin, the count must not reach
 * zero inside the close call itself (close at least one handle, or hold):
 * the hooks and cb always run later, from the loop, never inside x_close.
 */
#ifndef EDDY_BASE_CLOSER_H
#define EDDY_BASE_CLOSER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* A component's close callback: runs once, from the loop, when it is closed. */
typedef void (*eddy_close_cb)(void *ud);

struct eddy_closer;
typedef void (*eddy_closer_fn)(struct eddy_closer *c);

struct eddy_closer {
    size_t pending; /* handles closing and holds not released */
    bool closing;   /* eddy_closer_begin was called */
    eddy_close_cb cb;
    void *ud;
    eddy_closer_fn last; /* before cb; may be NULL */
    eddy_closer_fn free; /* after cb: frees the component (and so c) */
};

/* When the component is made: last may be NULL, free may not. */
void eddy_closer_init(struct eddy_closer *c, eddy_closer_fn last, eddy_closer_fn free_fn);
/* The component's close starts: remember cb (may be NULL) and ud. False
 * when it had started already (closing twice does nothing the second time). */
bool eddy_closer_begin(struct eddy_closer *c, eddy_close_cb cb, void *ud);
/* uv_close(h) counted: its close callback is the closer's. */
void eddy_closer_close(struct eddy_closer *c, uv_handle_t *h);
/* Count something else that must end before the component goes. */
void eddy_closer_hold(struct eddy_closer *c);
/* It has ended: the last one after begin runs last, cb and free. */
void eddy_closer_release(struct eddy_closer *c);

static inline bool eddy_closer_closing(const struct eddy_closer *c)
{
    return c->closing;
}

/* Handles still closing plus holds not released. */
static inline size_t eddy_closer_pending(const struct eddy_closer *c)
{
    return c->pending;
}

#endif
