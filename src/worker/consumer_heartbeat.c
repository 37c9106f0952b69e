/*
 * consumer_heartbeat.c - a message in hand for half its visibility timeout
 * since it was received or last extended is extended by the timeout, in
 * batches through the acker (see consumer.h). The messages in hand are kept
 * in one ring, least recently extended first, so a tick looks only at those
 * due.
 */
#include "worker/consumer_int.h"

void consumer_hb_unlink(struct cmsg *msg)
{
    eddy_list_remove(&msg->hb_link);
}

void consumer_hb_append(struct eddy_consumer *c, struct cmsg *msg)
{
    eddy_list_insert_tail(&c->hb, &msg->hb_link);
}

static void hb_tick(uv_timer_t *t)
{
    struct eddy_consumer *c = eddy_container_of(t, struct eddy_consumer, hb_timer);
    uint64_t now = now_ms(c);
    uint64_t half = (uint64_t)c->visibility_s * 500;
    /* The list is ordered by the last extension: stop at the first one that
     * is recent enough. Each extended message moves to the tail. */
    size_t n = c->inflight;
    for (size_t i = 0; i < n && !eddy_list_empty(&c->hb); i++) {
        struct cmsg *msg = eddy_list_data(eddy_list_head(&c->hb), struct cmsg, hb_link);
        if (now - msg->extended_ms < half)
            break;
        (void)!eddy_acker_visibility(c->acker, msg->m.receipt_handle, c->visibility_s,
                                     EDDY_ACK_HEARTBEAT); /* refused: logged by the acker */
        msg->extended_ms = now;
        consumer_hb_unlink(msg);
        consumer_hb_append(c, msg);
    }
}

void consumer_hb_start(struct eddy_consumer *c)
{
    uint64_t every = (uint64_t)c->visibility_s * 250;
    if (every < 100)
        every = 100;
    if (every > 5000)
        every = 5000;
    uv_timer_start(&c->hb_timer, hb_tick, every, every);
}
