/*
 * consumer_poller.c - receiving: the long polls (ReceiveMessage), asked only
 * for a full batch while the messages in hand leave room, and each message
 * decoded and handed to its lane, or to the poison policy (see consumer.h).
 */
#include <stdio.h>
#include <string.h>

#include "aws/retry.h"
#include "base/metrics.h"
#include "worker/consumer_int.h"

/* Contention (consumer.h): the window's steps (down per race lost, for at
 * most WINDOW_DOWN_MAX races a batch), and the pauses' first and longest
 * delay. */
#define WINDOW_DOWN 4
#define WINDOW_DOWN_MAX 8
#define WINDOW_UP 1
#define YIELD_BASE_MS 100
#define YIELD_MAX_MS 2000

static bool another_polls(const struct eddy_consumer *c, const struct poller *p);

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
    struct cmsg *msg = consumer_msg_get(c);
    msg->m = *m;
    memset(m, 0, sizeof *m);
    msg->received_us = uv_hrtime() / 1000;
    msg->extended_ms = now_ms(c);
    consumer_hb_append(c, msg);
    c->inflight++;
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_received);
    if (c->state != ST_RUNNING) {
        consumer_finish(msg, ACT_RELEASE);
        return;
    }
    struct eddy_error err;
    eddy_error_clear(&err);
    if (eddy_envelope_decode(&msg->env, c->cfg.spec, msg->m.body, msg->m.body_len,
                             msg->m.message_id, &err) != EDDY_OK) {
        /* Order does not matter for poison, even on a FIFO queue: it is never
         * processed, only moved aside. */
        consumer_poison(msg, eddy_error_text(&err));
        return;
    }
    if (!known_type(c->cfg.event_types, msg->env.event_type)) {
        char reason[1100];
        snprintf(reason, sizeof reason, "unknown event type %s", msg->env.event_type);
        consumer_poison(msg, reason);
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
    struct lane *l = consumer_lane_get(c, key);
    consumer_lane_push(l, msg);
    consumer_lane_kick(l);
}

static void poll_timer_cb(uv_timer_t *t)
{
    consumer_poll_once(eddy_container_of(t, struct poller, timer));
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
        consumer_progress(c);
        for (size_t i = 0; i < res->n; i++)
            on_message(c, &res->msgs[i]);
    }
    eddy_sqs_receive_result_cleanup(res);
    if (c->state != ST_RUNNING) {
        consumer_check_drained(c);
        return;
    }
    if (err != EDDY_OK) {
        poll_failed(p, reply->error, reply->request_id);
    } else if (got == 0 && another_polls(c, p)) {
        p->idle = true; /* the queue is empty: one long poll waits for it */
    } else {
        if (got > 0)
            consumer_wake_pollers(c); /* messages again: the parked pollers go on */
        consumer_poll_once(p);
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

void consumer_poll_once(struct poller *p)
{
    struct eddy_consumer *c = p->c;
    if (c->state != ST_RUNNING || p->call != NULL || uv_is_active((uv_handle_t *)&p->timer))
        return;
    if (!eddy_breaker_closed(&c->breaker)) { /* the store is down: take no more */
        p->idle = true;
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (now < c->yield_until_ms) { /* losing to other processes: let them take the queue */
        p->idle = false;
        uv_timer_start(&p->timer, poll_timer_cb, c->yield_until_ms - now, 0);
        return;
    }
    size_t used = c->inflight + c->reserved;
    size_t room = used >= c->window ? 0 : c->window - used;
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

/* The least window: one full receive. */
static size_t window_min(const struct eddy_consumer *c)
{
    size_t max = (size_t)c->cfg.max_inflight;
    return max < EDDY_SQS_MAX_BATCH ? max : EDDY_SQS_MAX_BATCH;
}

void consumer_contention(struct eddy_consumer *c, unsigned conflicts, bool committed)
{
    size_t min = window_min(c), max = (size_t)c->cfg.max_inflight;
    if (conflicts == 0) {
        if (committed) {
            c->yields = 0;
            c->window = c->window + WINDOW_UP < max ? c->window + WINDOW_UP : max;
        }
        return;
    }
    if (c->window > min) { /* a batch that lost several races says more */
        size_t down = WINDOW_DOWN * (conflicts < WINDOW_DOWN_MAX ? conflicts : WINDOW_DOWN_MAX);
        c->window = c->window > min + down ? c->window - down : min;
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (now < c->yield_until_ms)
        return; /* one pause at a time */
    c->yield_until_ms =
        now + eddy_backoff_equal_jitter(&c->rng, c->yields++, YIELD_BASE_MS, YIELD_MAX_MS);
    eddy_metrics_inc(c->cfg.metrics, EDDY_METRIC_contention_pauses);
}

size_t eddy_consumer_window(const struct eddy_consumer *c)
{
    return c->window;
}

bool eddy_consumer_yielding(const struct eddy_consumer *c)
{
    return uv_now(c->loop) < c->yield_until_ms;
}

void consumer_wake_pollers(struct eddy_consumer *c)
{
    for (int i = 0; i < c->npollers; i++)
        if (c->pollers[i].idle)
            consumer_poll_once(&c->pollers[i]);
}
