/*
 * consumer_heartbeat.c - a message in hand for half its visibility timeout
 * since it was received or last extended is extended by the timeout, in
 * batches through the acker (see consumer.h). The messages in hand are kept
 * in one ring, least recently extended first, so a tick looks only at those
 * due.
 *
 * The timer runs only while messages are in hand, and fires when the first
 * of them is due (a message settled before then costs one early tick, which
 * finds nothing due and sets the timer for the next). A tick also extends
 * the messages due within the next eighth of the timeout (at least 100 ms,
 * at most 5 s), so that the extensions of messages received close together
 * leave in one batch instead of a tick and a call each.
 */
#include "worker/consumer_int.h"

static uint64_t half_ms(const struct eddy_consumer *c)
{
    return (uint64_t)c->visibility_s * 500;
}

/* How much earlier than due a tick extends a message. */
static uint64_t slack_ms(const struct eddy_consumer *c)
{
    uint64_t s = (uint64_t)c->visibility_s * 125;
    return s < 100 ? 100 : s > 5000 ? 5000 : s;
}

static struct cmsg *hb_first(struct eddy_consumer *c)
{
    struct eddy_list *q = eddy_list_head(&c->hb);
    return q ? eddy_list_data(q, struct cmsg, hb_link) : NULL;
}

static void hb_tick(uv_timer_t *t);

/* Set the timer for the first message in hand, or stop it. */
static void hb_arm(struct eddy_consumer *c)
{
    struct cmsg *first = hb_first(c);
    if (first == NULL || c->visibility_s <= 0 || c->state == ST_CLOSING) {
        uv_timer_stop(&c->hb_timer);
        return;
    }
    uint64_t due = first->extended_ms + half_ms(c), now = now_ms(c);
    uv_timer_start(&c->hb_timer, hb_tick, due > now ? due - now : 0, 0);
}

void consumer_hb_unlink(struct cmsg *msg)
{
    eddy_list_remove(&msg->hb_link);
    if (eddy_list_empty(&msg->c->hb))
        uv_timer_stop(&msg->c->hb_timer);
}

void consumer_hb_append(struct eddy_consumer *c, struct cmsg *msg)
{
    bool was_empty = eddy_list_empty(&c->hb);
    eddy_list_insert_tail(&c->hb, &msg->hb_link);
    if (was_empty)
        hb_arm(c);
}

static void hb_tick(uv_timer_t *t)
{
    struct eddy_consumer *c = eddy_container_of(t, struct eddy_consumer, hb_timer);
    uint64_t now = now_ms(c);
    uint64_t due_age = half_ms(c) - slack_ms(c);
    /* The list is ordered by the last extension: stop at the first one that
     * is recent enough. Each extended message moves to the tail. */
    size_t n = c->inflight;
    struct cmsg *msg;
    for (size_t i = 0; i < n && (msg = hb_first(c)) != NULL; i++) {
        if (now - msg->extended_ms < due_age)
            break;
        (void)!eddy_acker_visibility(c->acker, msg->m.receipt_handle, c->visibility_s,
                                     EDDY_ACK_HEARTBEAT); /* refused: logged by the acker */
        msg->extended_ms = now;
        eddy_list_remove(&msg->hb_link);
        eddy_list_insert_tail(&c->hb, &msg->hb_link);
    }
    hb_arm(c);
}

bool eddy_consumer_heartbeat_armed(const struct eddy_consumer *c)
{
    return uv_is_active((const uv_handle_t *)&c->hb_timer);
}

void consumer_hb_start(struct eddy_consumer *c)
{
    hb_arm(c);
}
