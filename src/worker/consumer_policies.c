/*
 * consumer_policies.c - what becomes of a message after its batch (see
 * consumer.h): deleted, sent to the DLQ, the poison policy, the reject
 * policy, visible again after a backoff; and, for a batch that failed
 * because the store is down, held in its lane while the circuit breaker
 * probes the store (released when the consumer drains).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/metrics.h"
#include "worker/consumer_int.h"

/* ---- the DLQ ---- */

static void dlq_cb(eddy_err err, struct eddy_sqs_send_result *res,
                   const struct eddy_aws_reply *reply, void *ud)
{
    struct cmsg *msg = ud;
    struct eddy_consumer *c = msg->c;
    c->sends--;
    eddy_sqs_send_result_cleanup(res);
    if (err == EDDY_OK) {
        consumer_log_msg(EDDY_LOG_INFO, msg, msg->dlq->reason, "message sent to the DLQ");
        consumer_finish(msg, ACT_DELETE);
        return;
    }
    struct eddy_log_fields f = {.event_id = msg->env.event_id,
                                .message_id = msg->m.message_id,
                                .request_id = reply->request_id,
                                .error = eddy_error_text(reply->error),
                                .seq = EDDY_LOG_NOSEQ};
    eddy_log(EDDY_LOG_WARN, &f, "sending to the DLQ failed; left to the queue's redrive");
    consumer_finish(msg, ACT_BACKOFF);
}

/* What SQS counts of message attributes: name, type and value. */
static size_t attrs_size(const struct eddy_sqs_attr *a, size_t n)
{
    size_t size = 0;
    for (size_t i = 0; i < n; i++)
        size += strlen(a[i].name) + strlen(a[i].type) + strlen(a[i].value);
    return size;
}

/*
 * The body to send to the DLQ. SQS counts the body and the attributes
 * together against its 256 KiB limit, so a body that fitted on its way in
 * can be too big to forward with eddy-error and eddy-message-id beside it.
 * Such a body goes cut at a UTF-8 boundary so that body and attributes fit,
 * with an attribute eddy-truncated holding its original length. Any other
 * body goes unchanged.
 */
static const char *dlq_body(struct cmsg *msg, size_t *nattrs)
{
    struct dlq_out *d = msg->dlq;
    if (msg->m.body_len + attrs_size(d->attrs, *nattrs) <= EDDY_SQS_MAX_MESSAGE_BYTES)
        return msg->m.body;
    snprintf(d->cut_len, sizeof d->cut_len, "%zu", msg->m.body_len);
    d->attrs[*nattrs] = (struct eddy_sqs_attr){"eddy-truncated", "Number", d->cut_len};
    *nattrs += 1;
    size_t attrs = attrs_size(d->attrs, *nattrs);
    size_t keep = attrs < EDDY_SQS_MAX_MESSAGE_BYTES ? EDDY_SQS_MAX_MESSAGE_BYTES - attrs : 0;
    if (keep > msg->m.body_len)
        keep = msg->m.body_len;
    while (keep > 0 && keep < msg->m.body_len && ((unsigned char)msg->m.body[keep] & 0xC0) == 0x80)
        keep--;
    d->cut = eddy_strndup(msg->m.body, keep);
    return d->cut;
}

static void dlq_send(struct cmsg *msg, const char *reason)
{
    struct eddy_consumer *c = msg->c;
    /* The reason may be a caller's temporary: keep a copy beside the message
     * for the time of the send. */
    const char *why = reason[0] ? reason : "unknown";
    size_t n = strlen(why);
    struct dlq_out *d = eddy_malloc(sizeof *d + n + 1);
    memset(d, 0, sizeof *d);
    memcpy(d->reason, why, n + 1);
    msg->dlq = d;
    d->attrs[0] = (struct eddy_sqs_attr){"eddy-error", "String", d->reason};
    d->attrs[1] = (struct eddy_sqs_attr){"eddy-message-id", "String", msg->m.message_id};
    size_t nattrs = 2;
    const char *b = dlq_body(msg, &nattrs);
    struct eddy_sqs_send_params p = {
        .queue_url = c->dlq_url, .body = b, .attrs = d->attrs, .nattrs = nattrs, .delay_s = -1};
    if (c->dlq_fifo) {
        p.group_id = msg->m.group_id ? msg->m.group_id : "eddy-poison";
        p.dedup_id = msg->m.message_id;
    }
    struct eddy_error err;
    c->sends++;
    if (eddy_sqs_send(c->sqs, &p, dlq_cb, msg, NULL, &err) != EDDY_OK) {
        c->sends--;
        consumer_log_msg(EDDY_LOG_ERROR, msg, eddy_error_text(&err),
                         "cannot send to the DLQ; left to the queue's redrive");
        consumer_finish(msg, ACT_BACKOFF);
    }
}

/* The poison policy for one message; reason says why. */
void consumer_poison(struct cmsg *msg, const char *reason)
{
    struct eddy_consumer *c = msg->c;
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_poison);
    if (c->cfg.on_poison == EDDY_POISON_DLQ && c->dlq_url) {
        dlq_send(msg, reason);
    } else if (c->cfg.on_poison == EDDY_POISON_DROP) {
        consumer_log_msg(EDDY_LOG_WARN, msg, reason, "poison message dropped");
        consumer_finish(msg, ACT_DELETE);
    } else {
        consumer_log_msg(EDDY_LOG_WARN, msg, reason, "poison message left to the queue's redrive");
        consumer_finish(msg, ACT_BACKOFF);
    }
}

static void reject_unwritten(struct cmsg *msg, const struct eddy_proc_event *ev)
{
    struct eddy_consumer *c = msg->c;
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_rejected);
    if (c->cfg.rejected_to_dlq && c->dlq_url) {
        char reason[sizeof ev->reason + 16];
        snprintf(reason, sizeof reason, "rejected: %s", ev->reason);
        dlq_send(msg, reason);
        return;
    }
    consumer_log_msg(EDDY_LOG_INFO, msg, ev->reason, "rejected event dropped");
    consumer_finish(msg, ACT_DELETE);
}

/*
 * A message not committed for a reason that may pass: visible again after a
 * backoff. On its last receive before the queue's redrive policy would move
 * it, it goes to the DLQ now instead, with the reason, since the redrive
 * would carry none.
 */
static void not_committed(struct cmsg *msg, const char *reason)
{
    struct eddy_consumer *c = msg->c;
    if (c->dlq_url && c->max_receives > 0 && msg->m.receive_count >= (uint32_t)c->max_receives) {
        char why[EDDY_ERROR_DETAIL_MAX + 100];
        snprintf(why, sizeof why, "not committed after %u receives (maxReceiveCount %d): %s",
                 msg->m.receive_count, c->max_receives, reason[0] ? reason : "unknown");
        consumer_log_msg(EDDY_LOG_WARN, msg, why,
                         "not committed on its last receive; sent to the DLQ");
        dlq_send(msg, why);
        return;
    }
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_retries);
    consumer_log_msg(EDDY_LOG_WARN, msg, reason, "not committed; retried after a backoff");
    consumer_finish(msg, ACT_BACKOFF);
}

/*
 * Whether an event's result stands whatever its batch's error: a batch split
 * into several transactions can fail in a later one after an earlier one
 * committed the event (applied, or recorded as rejected), and an event found
 * applied before or failed for what it holds is settled too. A rejection
 * not written does not stand: nothing records it, and when its step did not
 * commit it was decided on a state that was never stored; on its next
 * receive it is decided again.
 */
static bool result_stands(const struct eddy_proc_event *ev)
{
    return ev->result == EDDY_EV_APPLIED || ev->result == EDDY_EV_REJECTED ||
           ev->result == EDDY_EV_DUPLICATE || ev->result == EDDY_EV_FAILED;
}

/* One event's outcome; false when it failed (a FIFO group must stop). berr
 * is the batch's error, whose detail stands in for an event without a
 * reason of its own. */
bool consumer_settle(struct cmsg *msg, const struct eddy_proc_event *ev, eddy_err err,
                     const struct eddy_error *berr)
{
    struct eddy_consumer *c = msg->c;
    if (result_stands(ev))
        err = EDDY_OK; /* a committed message is deleted, even from a canceled batch */
    enum eddy_event_result r = err == EDDY_OK ? ev->result : EDDY_EV_ERROR;
    const char *why = ev->reason[0]                         ? ev->reason
                      : err && berr && berr->detail[0] != 0 ? berr->detail
                      : err                                 ? eddy_err_name(err)
                                                            : "";
    if (err == EDDY_ECANCELED) {
        consumer_finish(msg, ACT_RELEASE);
        return false;
    }
    switch (r) {
    case EDDY_EV_APPLIED:
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_processed);
        if (eddy_log_enabled(EDDY_LOG_DEBUG)) {
            struct eddy_log_fields f = {.entity = msg->env.entity_id,
                                        .event_id = msg->env.event_id,
                                        .message_id = msg->m.message_id,
                                        .seq = ev->seq};
            eddy_log(EDDY_LOG_DEBUG, &f, "applied %s", msg->env.event_type);
        }
        consumer_finish(msg, ACT_DELETE);
        return true;
    case EDDY_EV_DUPLICATE:
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_duplicates);
        consumer_log_msg(EDDY_LOG_DEBUG, msg, NULL, "duplicate: applied before");
        consumer_finish(msg, ACT_DELETE);
        return true;
    case EDDY_EV_REJECTED: /* recorded with the refusal */
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_rejected);
        consumer_finish(msg, ACT_DELETE);
        return true;
    case EDDY_EV_REJECTED_UNWRITTEN:
        reject_unwritten(msg, ev);
        return true;
    case EDDY_EV_FAILED:
        consumer_poison(msg, ev->reason[0] ? ev->reason : "the machine failed");
        return false;
    default:
        if (err == EDDY_EINVAL) { /* refused for what the message holds (its entity id) */
            consumer_poison(msg, why);
            return false;
        }
        not_committed(msg, why);
        return false;
    }
}

/* ---- the store's circuit breaker ---- */

static void schedule_probe(struct eddy_consumer *c);

/* Settle the events of the lane's batch whose result stands; false when
 * one failed (a FIFO group must stop). */
static bool settle_standing(struct lane *l, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (!result_stands(&l->events[i]))
            continue;
        struct cmsg *msg = l->inbatch[i];
        l->inbatch[i] = NULL;
        if (!consumer_settle(msg, &l->events[i], EDDY_OK, NULL))
            ok = false;
    }
    return ok;
}

/*
 * The batch failed because the store is down: the events whose result
 * stands are settled, and the others go back to the head of the lane, in
 * their order, to wait for the breaker. false when an event failed (a FIFO
 * group must stop).
 */
bool consumer_hold(struct lane *l, size_t n)
{
    struct eddy_consumer *c = l->c;
    bool ok = settle_standing(l, n);
    for (size_t i = n; i > 0; i--) {
        struct cmsg *msg = l->inbatch[i - 1];
        if (msg == NULL)
            continue;
        l->inbatch[i - 1] = NULL;
        consumer_lane_push_front(l, msg);
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_held);
    }
    return ok;
}

/*
 * The batch failed because the store is down while the consumer drains: no
 * breaker waits for the store now, so the events whose result stands are
 * settled and the others released, visible again at once. Backed off, they
 * would use up receives (and on the last one go to the DLQ) for an outage.
 */
bool consumer_hand_back(struct lane *l, size_t n, const char *why)
{
    bool ok = settle_standing(l, n);
    for (size_t i = 0; i < n; i++) {
        struct cmsg *msg = l->inbatch[i];
        if (msg == NULL)
            continue;
        l->inbatch[i] = NULL;
        consumer_log_msg(EDDY_LOG_WARN, msg, why,
                         "not committed, the store is down while draining; released");
        consumer_finish(msg, ACT_RELEASE);
        ok = false;
    }
    return ok;
}

/* The breaker closed: the parked lanes go on, the pollers ask again. */
static void resume(struct eddy_consumer *c)
{
    uv_timer_stop(&c->probe_timer);
    consumer_lanes_kick(&c->parked);
    consumer_wake_pollers(c);
}

void consumer_store_failed(struct eddy_consumer *c, const char *why)
{
    bool was_closed = eddy_breaker_closed(&c->breaker);
    eddy_breaker_failure(&c->breaker, why);
    if (was_closed && !eddy_breaker_closed(&c->breaker)) {
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_breaker_opened);
        schedule_probe(c);
    }
}

void consumer_store_ok(struct eddy_consumer *c)
{
    bool was_closed = eddy_breaker_closed(&c->breaker);
    eddy_breaker_success(&c->breaker);
    if (!was_closed)
        resume(c);
}

static void probe_done(eddy_err err, const char *detail, void *ud)
{
    struct eddy_consumer *c = ud;
    c->probing = false;
    consumer_progress(c); /* waiting for the store is what a healthy worker does now */
    if (c->state != ST_RUNNING) {
        consumer_check_drained(c);
        return;
    }
    bool down = eddy_breaker_store_down(err);
    bool was_closed = eddy_breaker_closed(&c->breaker);
    eddy_breaker_probe_done(&c->breaker, !down, detail && detail[0] ? detail : eddy_err_msg(err));
    if (eddy_breaker_closed(&c->breaker)) {
        if (!was_closed)
            resume(c);
    } else {
        schedule_probe(c);
    }
}

static void probe_tick(uv_timer_t *t)
{
    struct eddy_consumer *c = eddy_container_of(t, struct eddy_consumer, probe_timer);
    if (c->state != ST_RUNNING || c->probing)
        return;
    if (!eddy_breaker_probe_start(&c->breaker)) {
        schedule_probe(c);
        return;
    }
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_breaker_probes);
    if (c->cfg.probe == NULL) { /* the held batches are the probe */
        c->probing = true;
        probe_done(EDDY_OK, NULL, c);
        return;
    }
    c->probing = true;
    eddy_err rc = c->cfg.probe(c->cfg.probe_ud, probe_done, c);
    if (rc != EDDY_OK)
        probe_done(rc, "the probe could not start", c);
}

static void schedule_probe(struct eddy_consumer *c)
{
    if (c->state != ST_RUNNING || c->probing || c->breaker.state != EDDY_BREAKER_OPEN)
        return;
    uv_timer_start(&c->probe_timer, probe_tick, eddy_breaker_wait_ms(&c->breaker), 0);
}
