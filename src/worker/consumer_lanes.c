/*
 * consumer_lanes.c - the entity lanes: a lane per entity (on a FIFO queue,
 * per message group) holds its messages in receive order and runs one
 * processor batch at a time, coalescing up to coalesce_max of them; a FIFO
 * lane waits while another lane has a batch of the same entity in flight
 * (see consumer.h). What becomes of each message after its batch is
 * consumer_policies.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "worker/consumer_int.h"

struct lane *consumer_lane_get(struct eddy_consumer *c, const char *key)
{
    struct eddy_str k = eddy_str_c(key);
    struct lane *l = eddy_map_get(&c->lanes, k);
    if (l)
        return l;
    size_t n = strnlen(key, EDDY_ENVELOPE_ID_MAX); /* the longest id a key can be */
    size_t cap = (n + 64) / 64 * 64;
    l = consumer_lane_take(&c->free_lanes);
    if (l == NULL) {
        l = eddy_calloc(1, sizeof *l + cap);
        l->key_cap = cap;
    } else if (l->key_cap < n + 1) { /* a free lane is linked nowhere: it may move */
        l = eddy_realloc(l, sizeof *l + cap);
        l->key_cap = cap;
    }
    l->c = c;
    eddy_list_init(&l->link);
    eddy_list_init(&l->msgs);
    l->n = 0;
    l->busy = l->blocked = l->parked = false;
    memcpy(l->key, key, n);
    l->key[n] = '\0';
    eddy_map_put(&c->lanes, eddy_str_c(l->key), l);
    l->in_map = true;
    return l;
}

void consumer_lane_free(void *v)
{
    struct lane *l = v;
    free(l->inbatch);
    free(l->events);
    free(l);
}

/* An idle, empty lane goes back to the free list. */
void consumer_lane_tidy(struct lane *l)
{
    struct eddy_consumer *c = l->c;
    if (l->busy || !eddy_list_empty(&l->msgs) || l->blocked || l->parked || !l->in_map)
        return;
    eddy_map_remove(&c->lanes, eddy_str_c(l->key));
    l->in_map = false;
    eddy_list_insert_head(&c->free_lanes, &l->link);
}

void consumer_lane_push(struct lane *l, struct cmsg *msg)
{
    eddy_list_insert_tail(&l->msgs, &msg->link);
    l->n++;
}

/* Put msg back at the head of the lane (a batch held while the store is down). */
void consumer_lane_push_front(struct lane *l, struct cmsg *msg)
{
    eddy_list_insert_head(&l->msgs, &msg->link);
    l->n++;
}

static struct cmsg *lane_first(const struct lane *l)
{
    return eddy_list_data(eddy_list_head(&l->msgs), struct cmsg, link);
}

static struct cmsg *lane_pop(struct lane *l)
{
    struct eddy_list *q = eddy_list_take(&l->msgs);
    if (q == NULL)
        return NULL;
    l->n--;
    return eddy_list_data(q, struct cmsg, link);
}

/* Release every message waiting in the lane (drain, or a FIFO group after a failure). */
void consumer_lane_release(struct lane *l)
{
    struct cmsg *msg;
    while ((msg = lane_pop(l)) != NULL)
        consumer_finish(msg, ACT_RELEASE);
}

struct lane *consumer_lane_take(struct eddy_list *list)
{
    struct eddy_list *q = eddy_list_take(list);
    return q ? eddy_list_data(q, struct lane, link) : NULL;
}

void consumer_lanes_kick(struct eddy_list *list)
{
    /* The lanes on it now: one kicked may join it again, to wait again. */
    struct eddy_list todo;
    eddy_list_move(list, &todo);
    struct lane *l;
    while ((l = consumer_lane_take(&todo)) != NULL) {
        l->blocked = l->parked = false;
        consumer_lane_kick(l);
        consumer_lane_tidy(l);
    }
}

static void batch_done(struct eddy_proc_batch *batch, eddy_err err, void *ud)
{
    struct lane *l = ud;
    struct eddy_consumer *c = l->c;
    bool ok = true;
    if (c->fifo)
        eddy_map_remove(&c->busy, eddy_str_c(batch->entity_id));
    size_t n = batch->nevents;
    consumer_contention(c, batch->conflicts, err == EDDY_OK);
    if (eddy_breaker_store_down(err) && c->state == ST_RUNNING) {
        consumer_store_failed(c, eddy_error_text(&batch->error));
        ok = consumer_hold(l, n);
    } else if (eddy_breaker_store_down(err)) { /* draining */
        ok = consumer_hand_back(l, n, eddy_error_text(&batch->error));
    } else {
        if (err == EDDY_OK)
            consumer_store_ok(c);
        for (size_t i = 0; i < n; i++) {
            struct cmsg *msg = l->inbatch[i];
            l->inbatch[i] = NULL;
            if (!consumer_settle(msg, &l->events[i], err, &batch->error))
                ok = false;
        }
    }
    l->busy = false;
    if (c->fifo && !ok)
        consumer_lane_release(l);
    consumer_lane_kick(l);
    consumer_lane_tidy(l);
    if (c->fifo)
        consumer_lanes_kick(&c->blocked);
}

/* How many head messages go into the next batch (one entity, in order). */
static size_t gather(struct lane *l)
{
    const char *entity = lane_first(l)->env.entity_id;
    size_t n = 0;
    struct eddy_list *q;
    eddy_list_foreach(q, &l->msgs)
    {
        const struct cmsg *m = eddy_list_data(q, struct cmsg, link);
        if (n == (size_t)l->c->cfg.coalesce_max || strcmp(m->env.entity_id, entity) != 0)
            break;
        n++;
    }
    return n;
}

/* Room for a batch of n: the arrays grow to the largest batch the lane has
 * seen, exactly, not to coalesce_max up front nor to a power of two (an
 * event is over half a KiB, and a lane per entity in hand adds up: with
 * 1,000 messages in hand over 100 entities, most lanes have a batch of
 * about ten out, and doubling from 4 made room for 16). */
static void lane_room(struct lane *l, size_t n)
{
    if (n <= l->cap)
        return;
    l->inbatch = eddy_realloc(l->inbatch, n * sizeof *l->inbatch);
    l->events = eddy_realloc(l->events, n * sizeof *l->events);
    l->cap = n;
}

void consumer_lane_kick(struct lane *l)
{
    struct eddy_consumer *c = l->c;
    if (l->busy || eddy_list_empty(&l->msgs) || l->blocked || l->parked)
        return;
    if (c->state != ST_RUNNING) {
        consumer_lane_release(l);
        return;
    }
    if (!eddy_breaker_closed(&c->breaker)) {
        l->parked = true;
        eddy_list_insert_tail(&c->parked, &l->link);
        return;
    }
    if (c->fifo && eddy_map_get(&c->busy, eddy_str_c(lane_first(l)->env.entity_id))) {
        l->blocked = true;
        eddy_list_insert_tail(&c->blocked, &l->link);
        return;
    }
    size_t n = gather(l);
    lane_room(l, n);
    for (size_t i = 0; i < n; i++) {
        struct cmsg *msg = lane_pop(l);
        l->inbatch[i] = msg;
        l->events[i] = (struct eddy_proc_event){.type = msg->env.event_type,
                                                .event_id = msg->env.event_id,
                                                .data = msg->env.data,
                                                .trace_header = msg->m.trace_header};
    }
    struct eddy_proc_batch *b = &l->batch;
    memset(b, 0, sizeof *b);
    b->entity_id = l->inbatch[0]->env.entity_id;
    b->events = l->events;
    b->nevents = n;
    b->cb = batch_done;
    b->ud = l;
    l->busy = true;
    if (c->fifo)
        eddy_map_put(&c->busy, eddy_str_c(b->entity_id), l);
    eddy_err rc = c->cfg.submit(c->cfg.submit_ud, b);
    if (rc != EDDY_OK) /* refused before any call: not the store's state */
        batch_done(b, eddy_breaker_store_down(rc) ? EDDY_EAWS : rc, l);
}
