/*
 * consumer.c - pollers, lanes, failure policies, heartbeat and drain (see
 * consumer.h).
 *
 * Storage. Message slots and lanes come from free lists that grow to the
 * high-water mark (max_inflight slots at most) and are reused; what a message
 * still allocates is its receive block (sqs.h) and its decoded envelope.
 * Everything created for one message hangs off its slot and is freed in one
 * place, finish().
 */
#include "worker/consumer.h"

#include <stdlib.h>
#include <string.h>

#include "aws/retry.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "worker/health.h"
#include "base/lru.h"
#include "base/metrics.h"

enum action { ACT_DELETE, ACT_BACKOFF, ACT_RELEASE };
enum state { ST_NEW, ST_STARTING, ST_RUNNING, ST_DRAINING, ST_CLOSING, ST_CLOSED };

struct lane;

struct cmsg {
    struct cmsg *next;        /* lane queue, or the free list */
    struct eddy_list hb_link; /* in hand, least recently extended first */
    struct eddy_consumer *c;
    struct eddy_sqs_message m;
    struct eddy_envelope env;
    uint64_t received_us;
    uint64_t extended_ms;
    struct eddy_sqs_attr attrs[3];
    char *reason; /* the eddy-error text while a DLQ send is in flight */
    char *cut;    /* a shortened body for the DLQ, see dlq_body */
    char cut_len[24];
};

struct lane {
    struct lane *next; /* free list, the blocked list, or the parked list */
    struct eddy_consumer *c;
    struct cmsg *head, *tail;
    size_t n;
    bool busy, blocked, parked, in_map;
    struct cmsg **inbatch;
    struct eddy_proc_event *events;
    struct eddy_proc_batch batch;
    char key[EDDY_ENVELOPE_ID_MAX + 1];
};

struct poller {
    struct eddy_consumer *c;
    struct eddy_aws_call *call;
    int asked;
    bool idle;
    unsigned failures;
    uv_timer_t timer;
};

struct eddy_consumer {
    uv_loop_t *loop;
    struct eddy_sqs *sqs;
    struct eddy_consumer_config cfg; /* strings below are owned copies */
    char *queue_url, *dlq_url;
    bool dlq_fifo;
    struct eddy_acker acker;
    struct poller *pollers;
    int npollers;
    uv_timer_t hb_timer;
    uv_timer_t start_timer;
    uv_timer_t probe_timer;
    struct eddy_breaker breaker;
    bool probing;        /* a probe call is out */
    struct lane *parked; /* lanes with work, waiting for the breaker to close */
    struct eddy_aws_call *attrs_call;
    struct eddy_map lanes; /* key -> struct lane */
    struct eddy_map busy;  /* FIFO: entity -> lane with a batch in flight */
    struct lane *free_lanes, *blocked;
    struct cmsg *free_msgs;
    struct eddy_list hb; /* the messages in hand (cmsg.hb_link) */
    size_t inflight, reserved, sends;
    int visibility_s;
    int max_receives; /* the queue's redrive policy: maxReceiveCount, 0 without one */
    bool fifo;
    struct eddy_rng rng;
    enum state state;
    int open_handles;
    void (*drain_cb)(void *ud);
    void *drain_ud;
};

static void wake_pollers(struct eddy_consumer *c);
static bool another_polls(const struct eddy_consumer *c, const struct poller *p);
static void check_drained(struct eddy_consumer *c);
static void lane_kick(struct lane *l);
static void poison(struct cmsg *msg, const char *reason);
static void store_failed(struct eddy_consumer *c, const char *why);
static void store_ok(struct eddy_consumer *c);

int eddy_consumer_backoff_s(uint32_t receive_count)
{
    uint32_t n = receive_count == 0 ? 1 : receive_count;
    if (n >= 10)
        return EDDY_CONSUMER_BACKOFF_MAX_S;
    int s = 1 << n;
    return s > EDDY_CONSUMER_BACKOFF_MAX_S ? EDDY_CONSUMER_BACKOFF_MAX_S : s;
}

bool eddy_poison_policy_parse(const char *s, enum eddy_poison_policy *out)
{
    static const char *const names[] = {"dlq", "redrive", "drop"};
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum eddy_poison_policy)i;
            return true;
        }
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static uint64_t now_ms(const struct eddy_consumer *c)
{
    return eddy_clock_mono_ms(c->cfg.clock);
}

static void progress(struct eddy_consumer *c)
{
    if (c->cfg.health == NULL)
        return;
    struct eddy_error err;
    if (eddy_health_touch(c->cfg.health, now_ms(c), &err) != EDDY_OK)
        eddy_log(EDDY_LOG_WARN, NULL, "health file: %s", eddy_error_text(&err));
}

static void log_msg(enum eddy_log_level level, const struct cmsg *msg, const char *error,
                    const char *what)
{
    if (!eddy_log_enabled(level))
        return;
    struct eddy_log_fields f = {.entity = msg->env.entity_id,
                                .event_id = msg->env.event_id,
                                .message_id = msg->m.message_id,
                                .error = error,
                                .seq = EDDY_LOG_NOSEQ};
    eddy_log(level, &f, "%s", what);
}

/* ---- message slots ---- */

static struct cmsg *msg_get(struct eddy_consumer *c)
{
    struct cmsg *msg = c->free_msgs;
    if (msg)
        c->free_msgs = msg->next;
    else
        msg = eddy_malloc(sizeof *msg);
    memset(msg, 0, sizeof *msg);
    eddy_list_init(&msg->hb_link);
    msg->c = c;
    return msg;
}

static void hb_unlink(struct cmsg *msg)
{
    eddy_list_remove(&msg->hb_link);
}

static void hb_append(struct eddy_consumer *c, struct cmsg *msg)
{
    eddy_list_insert_tail(&c->hb, &msg->hb_link);
}

static int jittered_backoff(struct eddy_consumer *c, uint32_t receive_count)
{
    int s = eddy_consumer_backoff_s(receive_count);
    return s / 2 + (int)eddy_rng_below(&c->rng, (uint64_t)(s - s / 2) + 1);
}

/* The one place a message leaves the consumer's hands. */
static void finish(struct cmsg *msg, enum action act)
{
    struct eddy_consumer *c = msg->c;
    switch (act) {
    /* An entry the acker refuses is logged there; the message then comes back
     * when its visibility timeout ends, which is what SQS does anyway. */
    case ACT_DELETE:
        (void)!eddy_acker_delete(&c->acker, msg->m.receipt_handle);
        eddy_metrics_observe(c->cfg.metrics, EDDY_LATENCY_processing_latency,
                             (int64_t)(uv_hrtime() / 1000 - msg->received_us));
        progress(c);
        break;
    case ACT_BACKOFF:
        (void)!eddy_acker_visibility(&c->acker, msg->m.receipt_handle,
                                     jittered_backoff(c, msg->m.receive_count), EDDY_ACK_BACKOFF);
        break;
    case ACT_RELEASE:
        (void)!eddy_acker_visibility(&c->acker, msg->m.receipt_handle, 0, EDDY_ACK_RELEASE);
        break;
    }
    hb_unlink(msg);
    free(msg->reason);
    free(msg->cut);
    msg->reason = msg->cut = NULL;
    eddy_envelope_cleanup(&msg->env);
    eddy_sqs_message_cleanup(&msg->m);
    msg->next = c->free_msgs;
    c->free_msgs = msg;
    c->inflight--;
    if (c->state == ST_RUNNING)
        wake_pollers(c);
    else
        check_drained(c);
}

/* ---- the DLQ ---- */

static void dlq_cb(eddy_err err, struct eddy_sqs_send_result *res,
                   const struct eddy_aws_reply *reply, void *ud)
{
    struct cmsg *msg = ud;
    struct eddy_consumer *c = msg->c;
    c->sends--;
    eddy_sqs_send_result_cleanup(res);
    if (err == EDDY_OK) {
        log_msg(EDDY_LOG_INFO, msg, msg->reason, "message sent to the DLQ");
        finish(msg, ACT_DELETE);
        return;
    }
    struct eddy_log_fields f = {.event_id = msg->env.event_id,
                                .message_id = msg->m.message_id,
                                .request_id = reply->request_id,
                                .error = eddy_error_text(reply->error),
                                .seq = EDDY_LOG_NOSEQ};
    eddy_log(EDDY_LOG_WARN, &f, "sending to the DLQ failed; left to the queue's redrive");
    finish(msg, ACT_BACKOFF);
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
    if (msg->m.body_len + attrs_size(msg->attrs, *nattrs) <= EDDY_SQS_MAX_MESSAGE_BYTES)
        return msg->m.body;
    snprintf(msg->cut_len, sizeof msg->cut_len, "%zu", msg->m.body_len);
    msg->attrs[*nattrs] = (struct eddy_sqs_attr){"eddy-truncated", "Number", msg->cut_len};
    *nattrs += 1;
    size_t attrs = attrs_size(msg->attrs, *nattrs);
    size_t keep = attrs < EDDY_SQS_MAX_MESSAGE_BYTES ? EDDY_SQS_MAX_MESSAGE_BYTES - attrs : 0;
    if (keep > msg->m.body_len)
        keep = msg->m.body_len;
    while (keep > 0 && keep < msg->m.body_len && ((unsigned char)msg->m.body[keep] & 0xC0) == 0x80)
        keep--;
    msg->cut = eddy_strndup(msg->m.body, keep);
    return msg->cut;
}

static void dlq_send(struct cmsg *msg, const char *reason)
{
    struct eddy_consumer *c = msg->c;
    /* The reason may be a caller's temporary: keep a copy beside the message
     * for the time of the send. */
    msg->reason = eddy_strdup(reason[0] ? reason : "unknown");
    msg->attrs[0] = (struct eddy_sqs_attr){"eddy-error", "String", msg->reason};
    msg->attrs[1] = (struct eddy_sqs_attr){"eddy-message-id", "String", msg->m.message_id};
    size_t nattrs = 2;
    const char *b = dlq_body(msg, &nattrs);
    struct eddy_sqs_send_params p = {
        .queue_url = c->dlq_url, .body = b, .attrs = msg->attrs, .nattrs = nattrs, .delay_s = -1};
    if (c->dlq_fifo) {
        p.group_id = msg->m.group_id ? msg->m.group_id : "eddy-poison";
        p.dedup_id = msg->m.message_id;
    }
    struct eddy_error err;
    c->sends++;
    if (eddy_sqs_send(c->sqs, &p, dlq_cb, msg, NULL, &err) != EDDY_OK) {
        c->sends--;
        log_msg(EDDY_LOG_ERROR, msg, eddy_error_text(&err),
                "cannot send to the DLQ; left to the queue's redrive");
        finish(msg, ACT_BACKOFF);
    }
}

/* The poison policy for one message; reason says why. */
static void poison(struct cmsg *msg, const char *reason)
{
    struct eddy_consumer *c = msg->c;
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_poison);
    if (c->cfg.on_poison == EDDY_POISON_DLQ && c->dlq_url) {
        dlq_send(msg, reason);
    } else if (c->cfg.on_poison == EDDY_POISON_DROP) {
        log_msg(EDDY_LOG_WARN, msg, reason, "poison message dropped");
        finish(msg, ACT_DELETE);
    } else {
        log_msg(EDDY_LOG_WARN, msg, reason, "poison message left to the queue's redrive");
        finish(msg, ACT_BACKOFF);
    }
}

/* ---- lanes ---- */

static struct lane *lane_get(struct eddy_consumer *c, const char *key)
{
    struct eddy_str k = eddy_str_c(key);
    struct lane *l = eddy_map_get(&c->lanes, k);
    if (l)
        return l;
    l = c->free_lanes;
    if (l) {
        c->free_lanes = l->next;
    } else {
        l = eddy_calloc(1, sizeof *l);
        l->inbatch = eddy_calloc((size_t)c->cfg.coalesce_max, sizeof *l->inbatch);
        l->events = eddy_calloc((size_t)c->cfg.coalesce_max, sizeof *l->events);
    }
    l->c = c;
    l->next = NULL;
    l->head = l->tail = NULL;
    l->n = 0;
    l->busy = l->blocked = l->parked = false;
    snprintf(l->key, sizeof l->key, "%s", key);
    eddy_map_put(&c->lanes, eddy_str_c(l->key), l);
    l->in_map = true;
    return l;
}

static void lane_free(void *v)
{
    struct lane *l = v;
    free(l->inbatch);
    free(l->events);
    free(l);
}

/* An idle, empty lane goes back to the free list. */
static void lane_tidy(struct lane *l)
{
    struct eddy_consumer *c = l->c;
    if (l->busy || l->head || l->blocked || l->parked || !l->in_map)
        return;
    eddy_map_remove(&c->lanes, eddy_str_c(l->key));
    l->in_map = false;
    l->next = c->free_lanes;
    c->free_lanes = l;
}

static void lane_push(struct lane *l, struct cmsg *msg)
{
    msg->next = NULL;
    if (l->tail)
        l->tail->next = msg;
    else
        l->head = msg;
    l->tail = msg;
    l->n++;
}

/* Put msg back at the head of the lane (a batch held while the store is down). */
static void lane_push_front(struct lane *l, struct cmsg *msg)
{
    msg->next = l->head;
    l->head = msg;
    if (l->tail == NULL)
        l->tail = msg;
    l->n++;
}

static struct cmsg *lane_pop(struct lane *l)
{
    struct cmsg *msg = l->head;
    if (msg) {
        l->head = msg->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->n--;
        msg->next = NULL;
    }
    return msg;
}

/* Release every message waiting in the lane (drain, or a FIFO group after a failure). */
static void lane_release(struct lane *l)
{
    struct cmsg *msg;
    while ((msg = lane_pop(l)) != NULL)
        finish(msg, ACT_RELEASE);
}

/* A rejected event the processor did not write: to the DLQ, or dropped. */
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
    log_msg(EDDY_LOG_INFO, msg, ev->reason, "rejected event dropped");
    finish(msg, ACT_DELETE);
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
        log_msg(EDDY_LOG_WARN, msg, why, "not committed on its last receive; sent to the DLQ");
        dlq_send(msg, why);
        return;
    }
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_retries);
    log_msg(EDDY_LOG_WARN, msg, reason, "not committed; retried after a backoff");
    finish(msg, ACT_BACKOFF);
}

/* One event's outcome; false when it failed (a FIFO group must stop). berr
 * is the batch's error, whose detail stands in for an event without a
 * reason of its own. */
static bool settle(struct cmsg *msg, const struct eddy_proc_event *ev, eddy_err err,
                   const struct eddy_error *berr)
{
    struct eddy_consumer *c = msg->c;
    enum eddy_event_result r = err == EDDY_OK ? ev->result : EDDY_EV_ERROR;
    const char *why = ev->reason[0]                         ? ev->reason
                      : err && berr && berr->detail[0] != 0 ? berr->detail
                      : err                                 ? eddy_err_name(err)
                                                            : "";
    if (err == EDDY_ECANCELED) {
        finish(msg, ACT_RELEASE);
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
        finish(msg, ACT_DELETE);
        return true;
    case EDDY_EV_DUPLICATE:
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_duplicates);
        log_msg(EDDY_LOG_DEBUG, msg, NULL, "duplicate: applied before");
        finish(msg, ACT_DELETE);
        return true;
    case EDDY_EV_REJECTED: /* recorded with the refusal */
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_rejected);
        finish(msg, ACT_DELETE);
        return true;
    case EDDY_EV_REJECTED_UNWRITTEN:
        reject_unwritten(msg, ev);
        return true;
    case EDDY_EV_FAILED:
        poison(msg, ev->reason[0] ? ev->reason : "the machine failed");
        return false;
    default:
        if (err == EDDY_EINVAL) { /* refused for what the message holds (its entity id) */
            poison(msg, why);
            return false;
        }
        not_committed(msg, why);
        return false;
    }
}

static void kick_blocked(struct eddy_consumer *c)
{
    struct lane *l = c->blocked;
    c->blocked = NULL;
    while (l) {
        struct lane *next = l->next;
        l->next = NULL;
        l->blocked = false;
        lane_kick(l);
        lane_tidy(l);
        l = next;
    }
}

/* Whether an event's result stands, whatever became of the rest of its batch. */
static bool result_stands(const struct eddy_proc_event *ev)
{
    return ev->result == EDDY_EV_APPLIED || ev->result == EDDY_EV_REJECTED ||
           ev->result == EDDY_EV_DUPLICATE || ev->result == EDDY_EV_FAILED;
}

/*
 * The batch failed because the store is down: the events whose result
 * stands are settled, and the others go back to the head of the lane, in
 * their order, to wait for the breaker. false when an event failed (a FIFO
 * group must stop).
 */
static bool hold(struct lane *l, size_t n)
{
    struct eddy_consumer *c = l->c;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (!result_stands(&l->events[i]))
            continue;
        struct cmsg *msg = l->inbatch[i];
        l->inbatch[i] = NULL;
        if (!settle(msg, &l->events[i], EDDY_OK, NULL))
            ok = false;
    }
    for (size_t i = n; i > 0; i--) {
        struct cmsg *msg = l->inbatch[i - 1];
        if (msg == NULL)
            continue;
        l->inbatch[i - 1] = NULL;
        lane_push_front(l, msg);
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_held);
    }
    return ok;
}

static void batch_done(struct eddy_proc_batch *batch, eddy_err err, void *ud)
{
    struct lane *l = ud;
    struct eddy_consumer *c = l->c;
    bool ok = true;
    if (c->fifo)
        eddy_map_remove(&c->busy, eddy_str_c(batch->entity_id));
    size_t n = batch->nevents;
    if (c->state == ST_RUNNING && eddy_breaker_store_down(err)) {
        store_failed(c, eddy_error_text(&batch->error));
        ok = hold(l, n);
    } else {
        if (err == EDDY_OK)
            store_ok(c);
        for (size_t i = 0; i < n; i++) {
            struct cmsg *msg = l->inbatch[i];
            l->inbatch[i] = NULL;
            if (!settle(msg, &l->events[i], err, &batch->error))
                ok = false;
        }
    }
    l->busy = false;
    if (c->fifo && !ok)
        lane_release(l);
    lane_kick(l);
    lane_tidy(l);
    if (c->fifo)
        kick_blocked(c);
}

/* How many head messages go into the next batch (one entity, in order). */
static size_t gather(struct lane *l)
{
    const char *entity = l->head->env.entity_id;
    size_t n = 0;
    for (struct cmsg *m = l->head; m && n < (size_t)l->c->cfg.coalesce_max; m = m->next) {
        if (strcmp(m->env.entity_id, entity) != 0)
            break;
        n++;
    }
    return n;
}

static void lane_kick(struct lane *l)
{
    struct eddy_consumer *c = l->c;
    if (l->busy || l->head == NULL || l->blocked || l->parked)
        return;
    if (c->state != ST_RUNNING) {
        lane_release(l);
        return;
    }
    if (!eddy_breaker_closed(&c->breaker)) {
        l->parked = true;
        l->next = c->parked;
        c->parked = l;
        return;
    }
    if (c->fifo && eddy_map_get(&c->busy, eddy_str_c(l->head->env.entity_id))) {
        l->blocked = true;
        l->next = c->blocked;
        c->blocked = l;
        return;
    }
    size_t n = gather(l);
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

/* ---- receiving ---- */

/* Whether type is among the machine's types (always, when it lists none). */
static bool known_type(const char *const *types, const char *type)
{
    if (types == NULL)
        return true;
    for (; *types; types++)
        if (strcmp(*types, type) == 0)
            return true;
    return false;
}

static void on_message(struct eddy_consumer *c, struct eddy_sqs_message *m)
{
    struct cmsg *msg = msg_get(c);
    msg->m = *m;
    memset(m, 0, sizeof *m);
    msg->received_us = uv_hrtime() / 1000;
    msg->extended_ms = now_ms(c);
    hb_append(c, msg);
    c->inflight++;
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_received);
    if (c->state != ST_RUNNING) {
        finish(msg, ACT_RELEASE);
        return;
    }
    struct eddy_error err;
    eddy_error_clear(&err);
    if (eddy_envelope_decode(&msg->env, c->cfg.spec, msg->m.body, msg->m.body_len,
                             msg->m.message_id, &err) != EDDY_OK) {
        /* Order does not matter for poison, even on a FIFO queue: it is never
         * processed, only moved aside. */
        poison(msg, eddy_error_text(&err));
        return;
    }
    if (!known_type(c->cfg.event_types, msg->env.event_type)) {
        char reason[1100];
        snprintf(reason, sizeof reason, "unknown event type %s", msg->env.event_type);
        poison(msg, reason);
        return;
    }
    if (eddy_log_enabled(EDDY_LOG_DEBUG)) {
        struct eddy_log_fields f = {.entity = msg->env.entity_id,
                                    .event_id = msg->env.event_id,
                                    .message_id = msg->m.message_id,
                                    .seq = EDDY_LOG_NOSEQ};
        eddy_log(EDDY_LOG_DEBUG, &f, "received %s: %.*s", msg->env.event_type,
                 (int)(msg->m.body_len > 4096 ? 4096 : msg->m.body_len), msg->m.body);
    }
    const char *key = c->fifo && msg->m.group_id ? msg->m.group_id : msg->env.entity_id;
    struct lane *l = lane_get(c, key);
    lane_push(l, msg);
    lane_kick(l);
}

static void poll_once(struct poller *p);

static void poll_timer_cb(uv_timer_t *t)
{
    poll_once(eddy_container_of(t, struct poller, timer));
}

static void poll_failed(struct poller *p, const struct eddy_error *e, const char *request_id)
{
    p->failures++;
    uint32_t ms = 200 + eddy_backoff_full_jitter(&p->c->rng, p->failures - 1, 500, 20000);
    struct eddy_log_fields f = {
        .request_id = request_id, .error = eddy_error_text(e), .seq = EDDY_LOG_NOSEQ};
    eddy_log(EDDY_LOG_WARN, &f, "ReceiveMessage failed; polling again in %u ms", ms);
    uv_timer_start(&p->timer, poll_timer_cb, ms, 0);
}

static void receive_cb(eddy_err err, struct eddy_sqs_receive_result *res,
                       const struct eddy_aws_reply *reply, void *ud)
{
    struct poller *p = ud;
    struct eddy_consumer *c = p->c;
    p->call = NULL;
    c->reserved -= (size_t)p->asked;
    p->asked = 0;
    size_t got = err == EDDY_OK ? res->n : 0;
    if (err == EDDY_OK) {
        p->failures = 0;
        progress(c);
        for (size_t i = 0; i < res->n; i++)
            on_message(c, &res->msgs[i]);
    }
    eddy_sqs_receive_result_cleanup(res);
    if (c->state != ST_RUNNING) {
        check_drained(c);
        return;
    }
    if (err != EDDY_OK) {
        poll_failed(p, reply->error, reply->request_id);
    } else if (got == 0 && another_polls(c, p)) {
        p->idle = true; /* the queue is empty: one long poll waits for it */
    } else {
        if (got > 0)
            wake_pollers(c); /* messages again: the parked pollers go on */
        poll_once(p);
    }
}

/* A poller other than p has a receive out. */
static bool another_polls(const struct eddy_consumer *c, const struct poller *p)
{
    for (int i = 0; i < c->npollers; i++)
        if (&c->pollers[i] != p && c->pollers[i].call != NULL)
            return true;
    return false;
}

static void poll_once(struct poller *p)
{
    struct eddy_consumer *c = p->c;
    if (c->state != ST_RUNNING || p->call != NULL || uv_is_active((uv_handle_t *)&p->timer))
        return;
    if (!eddy_breaker_closed(&c->breaker)) { /* the store is down: take no more */
        p->idle = true;
        return;
    }
    size_t used = c->inflight + c->reserved;
    size_t room = used >= (size_t)c->cfg.max_inflight ? 0 : (size_t)c->cfg.max_inflight - used;
    /* Poll only for a full batch: under load, asking for the one or two
     * slots just freed would cost a call per message or two. */
    size_t batch =
        c->cfg.max_inflight < EDDY_SQS_MAX_BATCH ? (size_t)c->cfg.max_inflight : EDDY_SQS_MAX_BATCH;
    if (room < batch) {
        p->idle = true;
        return;
    }
    p->idle = false;
    p->asked = room > EDDY_SQS_MAX_BATCH ? EDDY_SQS_MAX_BATCH : (int)room;
    c->reserved += (size_t)p->asked;
    struct eddy_sqs_receive_params rp = {.queue_url = c->queue_url,
                                         .wait_s = c->cfg.wait_s,
                                         .max = p->asked,
                                         .visibility_s =
                                             c->cfg.visibility_s > 0 ? c->cfg.visibility_s : -1};
    struct eddy_error err;
    if (eddy_sqs_receive(c->sqs, &rp, receive_cb, p, &p->call, &err) != EDDY_OK) {
        c->reserved -= (size_t)p->asked;
        p->asked = 0;
        p->call = NULL;
        poll_failed(p, &err, NULL);
    }
}

static void wake_pollers(struct eddy_consumer *c)
{
    for (int i = 0; i < c->npollers; i++)
        if (c->pollers[i].idle)
            poll_once(&c->pollers[i]);
}

/* ---- the store's circuit breaker ---- */

static void schedule_probe(struct eddy_consumer *c);

/* The breaker closed: the parked lanes go on, the pollers ask again. */
static void resume(struct eddy_consumer *c)
{
    uv_timer_stop(&c->probe_timer);
    struct lane *l = c->parked;
    c->parked = NULL;
    while (l) {
        struct lane *next = l->next;
        l->next = NULL;
        l->parked = false;
        lane_kick(l);
        lane_tidy(l);
        l = next;
    }
    wake_pollers(c);
}

static void store_failed(struct eddy_consumer *c, const char *why)
{
    bool was_closed = eddy_breaker_closed(&c->breaker);
    eddy_breaker_failure(&c->breaker, why);
    if (was_closed && !eddy_breaker_closed(&c->breaker)) {
        eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_breaker_opened);
        schedule_probe(c);
    }
}

static void store_ok(struct eddy_consumer *c)
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
    progress(c); /* waiting for the store is what a healthy worker does now */
    if (c->state != ST_RUNNING) {
        check_drained(c);
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

/* ---- heartbeat ---- */

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
        (void)!eddy_acker_visibility(&c->acker, msg->m.receipt_handle, c->visibility_s,
                                     EDDY_ACK_HEARTBEAT); /* refused: logged by the acker */
        msg->extended_ms = now;
        hb_unlink(msg);
        hb_append(c, msg);
    }
}

/* ---- start ---- */

static void start_polling(struct eddy_consumer *c)
{
    c->state = ST_RUNNING;
    eddy_log(EDDY_LOG_INFO, NULL,
             "consuming %s (%s, visibility %d s, %d pollers, %d in flight at most)", c->queue_url,
             c->fifo ? "FIFO" : "standard", c->visibility_s, c->npollers, c->cfg.max_inflight);
    uint64_t every = (uint64_t)c->visibility_s * 250;
    if (every < 100)
        every = 100;
    if (every > 5000)
        every = 5000;
    uv_timer_start(&c->hb_timer, hb_tick, every, every);
    for (int i = 0; i < c->npollers; i++)
        poll_once(&c->pollers[i]);
}

static void request_attrs(struct eddy_consumer *c);

static void start_timer_cb(uv_timer_t *t)
{
    request_attrs(eddy_container_of(t, struct eddy_consumer, start_timer));
}

static void attrs_failed(struct eddy_consumer *c, eddy_err code, const struct eddy_error *e)
{
    if (code == EDDY_EAWS || code == EDDY_EAUTH || code == EDDY_ECREDENTIALS) {
        eddy_log(EDDY_LOG_ERROR, NULL, "GetQueueAttributes of %s: %s", c->queue_url,
                 eddy_error_text(e));
        if (c->cfg.on_fatal)
            c->cfg.on_fatal(e, c->cfg.on_fatal_ud);
        return;
    }
    eddy_log(EDDY_LOG_WARN, NULL, "GetQueueAttributes of %s: %s; trying again", c->queue_url,
             eddy_error_text(e));
    uv_timer_start(&c->start_timer, start_timer_cb, 1000, 0);
}

static void attrs_cb(eddy_err err, struct eddy_sqs_queue_attrs *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct eddy_consumer *c = ud;
    c->attrs_call = NULL;
    if (err == EDDY_OK) {
        c->fifo = c->fifo || res->fifo;
        c->max_receives = res->max_receive_count;
        c->visibility_s = c->cfg.visibility_s > 0 ? c->cfg.visibility_s : res->visibility_timeout_s;
        if (c->visibility_s <= 0)
            c->visibility_s = 30;
    }
    eddy_sqs_queue_attrs_cleanup(res);
    if (c->state != ST_STARTING) {
        check_drained(c);
        return;
    }
    if (err != EDDY_OK)
        attrs_failed(c, err, reply->error);
    else
        start_polling(c);
}

static void request_attrs(struct eddy_consumer *c)
{
    struct eddy_error err;
    eddy_err rc =
        eddy_sqs_get_queue_attributes(c->sqs, c->queue_url, attrs_cb, c, &c->attrs_call, &err);
    if (rc != EDDY_OK) {
        c->attrs_call = NULL;
        attrs_failed(c, rc, &err);
    }
}

void eddy_consumer_start(struct eddy_consumer *c)
{
    if (c->state != ST_NEW)
        return;
    c->state = ST_STARTING;
    request_attrs(c);
}

/* ---- new, drain, free ---- */

static eddy_err check_config(const struct eddy_consumer_config *cfg, struct eddy_error *err)
{
    if (cfg->queue_url == NULL || cfg->queue_url[0] == '\0')
        return eddy_error_set(err, EDDY_ECONFIG, "EDDY_QUEUE_URL is required");
    if (cfg->max_inflight < 1 || cfg->coalesce_max < 1 || cfg->pollers < 0 || cfg->wait_s < 0 ||
        cfg->wait_s > EDDY_SQS_MAX_WAIT_S)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "EDDY_MAX_INFLIGHT, EDDY_COALESCE_MAX, EDDY_POLLERS or "
                              "EDDY_WAIT_SECONDS out of range");
    if (cfg->spec == NULL || cfg->submit == NULL || cfg->metrics == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "consumer: spec, submit and metrics are required");
    if (cfg->rejected_to_dlq && cfg->dlq_url == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "EDDY_ON_REJECT=dlq needs EDDY_DLQ_URL");
    if (cfg->on_poison == EDDY_POISON_DLQ && cfg->dlq_url == NULL)
        return eddy_error_set(err, EDDY_ECONFIG, "EDDY_ON_POISON=dlq needs EDDY_DLQ_URL");
    return EDDY_OK;
}

struct eddy_consumer *eddy_consumer_new(uv_loop_t *loop, struct eddy_sqs *sqs,
                                        const struct eddy_consumer_config *cfg,
                                        struct eddy_error *err)
{
    if (check_config(cfg, err) != EDDY_OK)
        return NULL;
    struct eddy_consumer *c = eddy_calloc(1, sizeof *c);
    c->loop = loop;
    c->sqs = sqs;
    c->cfg = *cfg;
    if (c->cfg.clock == NULL)
        c->cfg.clock = eddy_clock_system();
    c->queue_url = eddy_strdup(cfg->queue_url);
    c->dlq_url = cfg->dlq_url ? eddy_strdup(cfg->dlq_url) : NULL;
    c->dlq_fifo = c->dlq_url && ends_with(c->dlq_url, ".fifo");
    c->fifo = ends_with(c->queue_url, ".fifo");
    c->visibility_s = cfg->visibility_s;
    eddy_rng_seed(&c->rng, cfg->seed);
    eddy_map_init(&c->lanes, cfg->seed ^ 0x9e3779b97f4a7c15u);
    eddy_map_init(&c->busy, cfg->seed ^ 0x2545f4914f6cdd1du);
    eddy_list_init(&c->hb);
    int np = cfg->pollers;
    /* FIFO: one poller by default. SQS keeps a group's later messages back
     * while earlier ones are in flight, but polls racing each other would
     * still let the replies of one group arrive out of order here. */
    if (np == 0 && c->fifo)
        np = 1;
    if (np == 0)
        np = cfg->max_inflight / 10 < 1   ? 1
             : cfg->max_inflight / 10 > 8 ? 8
                                          : cfg->max_inflight / 10;
    c->npollers = np;
    c->pollers = eddy_calloc((size_t)np, sizeof *c->pollers);
    for (int i = 0; i < np; i++) {
        c->pollers[i].c = c;
        uv_timer_init(loop, &c->pollers[i].timer);
    }
    uv_timer_init(loop, &c->hb_timer);
    uv_timer_init(loop, &c->start_timer);
    uv_timer_init(loop, &c->probe_timer);
    struct eddy_breaker_config bc = {.name = "DynamoDB",
                                     .probe_min_ms = cfg->probe_min_ms,
                                     .probe_max_ms = cfg->probe_max_ms,
                                     .clock = c->cfg.clock,
                                     .seed = cfg->seed + 2};
    eddy_breaker_init(&c->breaker, &bc);
    struct eddy_acker_config ac = {.queue_url = c->queue_url,
                                   .flush_ms = cfg->ack_flush_ms,
                                   .metrics = cfg->metrics,
                                   .seed = cfg->seed + 1};
    eddy_acker_init(&c->acker, loop, sqs, &ac);
    return c;
}

static void handle_closed(uv_handle_t *h)
{
    struct eddy_consumer *c = h->data;
    if (--c->open_handles == 0 && c->state == ST_CLOSING)
        eddy_acker_close(&c->acker, c->drain_cb, c->drain_ud);
}

static void close_handle(struct eddy_consumer *c, uv_handle_t *h)
{
    h->data = c;
    c->open_handles++;
    uv_close(h, handle_closed);
}

static void check_drained(struct eddy_consumer *c)
{
    if (c->state != ST_DRAINING || c->inflight > 0 || c->reserved > 0 || c->sends > 0 ||
        c->attrs_call != NULL || c->probing)
        return;
    for (int i = 0; i < c->npollers; i++)
        if (c->pollers[i].call)
            return;
    c->state = ST_CLOSING;
    close_handle(c, (uv_handle_t *)&c->hb_timer);
    close_handle(c, (uv_handle_t *)&c->start_timer);
    close_handle(c, (uv_handle_t *)&c->probe_timer);
    for (int i = 0; i < c->npollers; i++)
        close_handle(c, (uv_handle_t *)&c->pollers[i].timer);
}

static void release_lanes(struct eddy_consumer *c)
{
    struct eddy_map_iter it;
    struct eddy_str key;
    void *v;
    eddy_map_iter_init(&c->lanes, &it);
    while (eddy_map_next(&it, &key, &v))
        lane_release(v);
}

/* Drain: parked lanes are released with the others. */
static void unpark(struct eddy_consumer *c)
{
    while (c->parked) {
        struct lane *l = c->parked;
        c->parked = l->next;
        l->next = NULL;
        l->parked = false;
    }
}

void eddy_consumer_drain(struct eddy_consumer *c, void (*cb)(void *ud), void *ud)
{
    c->drain_cb = cb;
    c->drain_ud = ud;
    if (c->state >= ST_DRAINING)
        return;
    c->state = ST_DRAINING;
    eddy_log(EDDY_LOG_INFO, NULL, "draining: %zu message(s) in hand", c->inflight);
    uv_timer_stop(&c->start_timer);
    uv_timer_stop(&c->probe_timer);
    unpark(c);
    for (int i = 0; i < c->npollers; i++) {
        uv_timer_stop(&c->pollers[i].timer);
        if (c->pollers[i].call)
            eddy_aws_call_cancel(c->pollers[i].call);
    }
    if (c->attrs_call)
        eddy_aws_call_cancel(c->attrs_call);
    /* Blocked FIFO lanes are in the map too: releasing them all is enough. */
    release_lanes(c);
    eddy_acker_flush(&c->acker);
    check_drained(c);
}

void eddy_consumer_free(struct eddy_consumer *c)
{
    if (c == NULL)
        return;
    if (c->state == ST_NEW) {
        /* never started: close the handles without a drain */
        c->state = ST_DRAINING;
        check_drained(c);
        uv_run(c->loop, UV_RUN_DEFAULT);
    }
    eddy_map_cleanup(&c->lanes, lane_free);
    eddy_map_cleanup(&c->busy, NULL);
    while (c->free_lanes) {
        struct lane *l = c->free_lanes;
        c->free_lanes = l->next;
        lane_free(l);
    }
    while (c->free_msgs) {
        struct cmsg *m = c->free_msgs;
        c->free_msgs = m->next;
        free(m);
    }
    free(c->pollers);
    free(c->queue_url);
    free(c->dlq_url);
    free(c);
}

size_t eddy_consumer_inflight(const struct eddy_consumer *c)
{
    return c->inflight;
}

bool eddy_consumer_fifo(const struct eddy_consumer *c)
{
    return c->fifo;
}

int eddy_consumer_visibility(const struct eddy_consumer *c)
{
    return c->visibility_s;
}

const struct eddy_breaker *eddy_consumer_breaker(const struct eddy_consumer *c)
{
    return &c->breaker;
}

struct eddy_acker *eddy_consumer_acker(struct eddy_consumer *c)
{
    return &c->acker;
}
