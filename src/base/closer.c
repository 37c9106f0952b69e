/*
 * closer.c - the counted close of a component's libuv handles (closer.h).
 */
#include "base/closer.h"

#include <assert.h>

void eddy_closer_init(struct eddy_closer *c, eddy_closer_fn last, eddy_closer_fn free_fn)
{
    assert(free_fn);
    *c = (struct eddy_closer){.last = last, .free = free_fn};
}

bool eddy_closer_begin(struct eddy_closer *c, eddy_close_cb cb, void *ud)
{
    if (c->closing)
        return false;
    c->closing = true;
    c->cb = cb;
    c->ud = ud;
    return true;
}

static void on_closed(uv_handle_t *h)
{
    eddy_closer_release(h->data);
}

void eddy_closer_close(struct eddy_closer *c, uv_handle_t *h)
{
    h->data = c;
    c->pending++;
    uv_close(h, on_closed);
}

void eddy_closer_hold(struct eddy_closer *c)
{
    c->pending++;
}

/* The hooks run in order; cb and ud are read before free takes c away. */
void eddy_closer_release(struct eddy_closer *c)
{
    assert(c->pending > 0);
    if (--c->pending > 0 || !c->closing)
        return;
    if (c->last)
        c->last(c);
    eddy_close_cb cb = c->cb;
    void *ud = c->ud;
    eddy_closer_fn free_fn = c->free;
    if (cb)
        cb(ud);
    free_fn(c);
}
