/*
 * list.h - the intrusive doubly linked list, in the manner of libuv's
 * queue.h: a struct eddy_list is both the head of a list and the link
 * embedded in each element; the list is a ring through the head, so no
 * operation has a special case and none allocates.
 *
 *     struct call { ...; struct eddy_list link; };
 *     struct eddy_list calls;            eddy_list_init(&calls);
 *     eddy_list_insert_tail(&calls, &c->link);
 *     eddy_list_foreach(q, &calls) {
 *         struct call *c = eddy_list_data(q, struct call, link); ...
 *     }
 *     eddy_list_remove(&c->link);        (c->link is then an empty ring)
 *
 * An element removed, or initialised and never inserted, is an empty ring:
 * eddy_list_linked() says whether it is in a list. Removing an element
 * while walking: take the next one first (eddy_list_foreach_safe); walking
 * while callbacks may add to the list: eddy_list_move it aside first.
 */
#ifndef EDDY_BASE_LIST_H
#define EDDY_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/alloc.h"

struct eddy_list {
    struct eddy_list *next;
    struct eddy_list *prev;
};

#define eddy_list_data(ptr, type, field) eddy_container_of(ptr, type, field)

#define eddy_list_foreach(q, h) for ((q) = (h)->next; (q) != (h); (q) = (q)->next)
#define eddy_list_foreach_safe(q, n, h)                                                            \
    for ((q) = (h)->next, (n) = (q)->next; (q) != (h); (q) = (n), (n) = (q)->next)

static inline void eddy_list_init(struct eddy_list *h)
{
    h->next = h->prev = h;
}

static inline bool eddy_list_empty(const struct eddy_list *h)
{
    return h->next == h;
}

/* For an element: whether it is in a list now. */
static inline bool eddy_list_linked(const struct eddy_list *q)
{
    return q->next != q;
}

/* The first element, or NULL when the list is empty. */
static inline struct eddy_list *eddy_list_head(const struct eddy_list *h)
{
    return h->next == h ? NULL : h->next;
}

static inline void eddy_list_insert_tail(struct eddy_list *h, struct eddy_list *q)
{
    q->next = h;
    q->prev = h->prev;
    q->prev->next = q;
    h->prev = q;
}

static inline void eddy_list_insert_head(struct eddy_list *h, struct eddy_list *q)
{
    q->next = h->next;
    q->prev = h;
    q->next->prev = q;
    h->next = q;
}

static inline void eddy_list_remove(struct eddy_list *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
    eddy_list_init(q);
}

/* Take the first element off h: it is removed (an empty ring) and
 * returned; NULL when h is empty. A queue's pop, a free list's get. */
static inline struct eddy_list *eddy_list_take(struct eddy_list *h)
{
    struct eddy_list *q = eddy_list_head(h);
    if (q != NULL)
        eddy_list_remove(q);
    return q;
}

/* Move every element of h, in order, to the head n (its old contents are
 * dropped); h is left empty. To walk a list whose elements' callbacks may
 * add to it: move it aside first. */
static inline void eddy_list_move(struct eddy_list *h, struct eddy_list *n)
{
    if (eddy_list_empty(h)) {
        eddy_list_init(n);
        return;
    }
    n->next = h->next;
    n->prev = h->prev;
    n->next->prev = n;
    n->prev->next = n;
    eddy_list_init(h);
}

#endif
