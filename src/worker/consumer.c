/*
 * consumer.c - the consumer's lifecycle (new, start, close) and its
 * message slots (see consumer.h; the flow of a message is told in
 * consumer_int.h).
 *
 * Storage. Message slots and lanes come from free lists that grow to the
 * high-water mark (max_inflight slots at most) and are reused; what a message
 * still allocates is its receive block (sqs.h) and its decoded envelope.
 * Everything created for one message hangs off its slot and is freed in one
 * place, consumer_finish().
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/metrics.h"
#include "base/state.h"
#include "worker/consumer_int.h"
#include "worker/health.h"

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

void consumer_progress(struct eddy_consumer *c)
{
    if (c->cfg.health == NULL)
        return;
    struct eddy_error err;
    if (eddy_health_touch(c->cfg.health, now_ms(c), &err) != EDDY_OK)
        eddy_log(EDDY_LOG_WARN, NULL, "health file: %s", eddy_error_text(&err));
}

void consumer_log_msg(enum eddy_log_level level, const struct cmsg *msg, const char *error,
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

struct cmsg *consumer_msg_get(struct eddy_consumer *c)
{
    struct eddy_list *q = eddy_list_take(&c->free_msgs);
    struct cmsg *msg = q ? eddy_list_data(q, struct cmsg, link) : eddy_malloc(sizeof *msg);
    memset(msg, 0, sizeof *msg);
    eddy_list_init(&msg->link);
    eddy_list_init(&msg->hb_link);
    msg->c = c;
    return msg;
}
static int jittered_backoff(struct eddy_consumer *c, uint32_t receive_count)
{
    int s = eddy_consumer_backoff_s(receive_count);
    return s / 2 + (int)eddy_rng_below(&c->rng, (uint64_t)(s - s / 2) + 1);
}

/* The one place a message leaves the consumer's hands. */
void consumer_finish(struct cmsg *msg, enum action act)
{
    struct eddy_consumer *c = msg->c;
    switch (act) {
    /* An entry the acker refuses is logged there; the message then comes back
     * when its visibility timeout ends, which is what SQS does anyway. */
    case ACT_DELETE:
        (void)!eddy_acker_delete(c->acker, msg->m.receipt_handle);
        eddy_metrics_observe(c->cfg.metrics, EDDY_LATENCY_processing_latency,
                             (int64_t)(uv_hrtime() / 1000 - msg->received_us));
        consumer_progress(c);
        break;
    case ACT_BACKOFF:
        (void)!eddy_acker_visibility(c->acker, msg->m.receipt_handle,
                                     jittered_backoff(c, msg->m.receive_count), EDDY_ACK_BACKOFF);
        break;
    case ACT_RELEASE:
        (void)!eddy_acker_visibility(c->acker, msg->m.receipt_handle, 0, EDDY_ACK_RELEASE);
        break;
    }
    consumer_hb_unlink(msg);
    if (msg->dlq) {
        free(msg->dlq->cut);
        free(msg->dlq);
        msg->dlq = NULL;
    }
    eddy_envelope_cleanup(&msg->env);
    eddy_sqs_message_cleanup(&msg->m);
    eddy_list_insert_head(&c->free_msgs, &msg->link);
    c->inflight--;
    if (c->state == ST_RUNNING)
        consumer_wake_pollers(c);
    else
        consumer_check_drained(c);
}

/* ---- start ---- */

/* The consumer's life: started, polling, draining (on close, from any
 * state but closing), closing its handles once the drain is done. */
static const struct eddy_state consumer_state_v[] = {
    [ST_NEW] = {"new", EDDY_STATE_TO(ST_STARTING) | EDDY_STATE_TO(ST_DRAINING)},
    [ST_STARTING] = {"starting", EDDY_STATE_TO(ST_RUNNING) | EDDY_STATE_TO(ST_DRAINING)},
    [ST_RUNNING] = {"running", EDDY_STATE_TO(ST_DRAINING)},
    [ST_DRAINING] = {"draining", EDDY_STATE_TO(ST_CLOSING)},
    [ST_CLOSING] = {"closing", 0},
};
static const struct eddy_states consumer_states = EDDY_STATES("consumer", consumer_state_v);

/* The one place the consumer's state changes: checked and traced (base/state.h). */
static void consumer_set_state(struct eddy_consumer *c, enum state to)
{
    eddy_state_move(&consumer_states, c->state, to, "%s", c->queue_url);
    c->state = to;
}

static void start_polling(struct eddy_consumer *c)
{
    consumer_set_state(c, ST_RUNNING);
    eddy_log(EDDY_LOG_INFO, NULL,
             "consuming %s (%s, visibility %d s, %d pollers, %d in flight at most)", c->queue_url,
             c->fifo ? "FIFO" : "standard", c->visibility_s, c->npollers, c->cfg.max_inflight);
    consumer_hb_start(c);
    for (int i = 0; i < c->npollers; i++)
        consumer_poll_once(&c->pollers[i]);
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
        consumer_check_drained(c);
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
    consumer_set_state(c, ST_STARTING);
    request_attrs(c);
}

/* ---- new, close ---- */

static void consumer_free(struct eddy_closer *closer);

/* The acker's count of deletes to come: the messages in hand. */
static size_t in_hand(void *ud)
{
    return ((struct eddy_consumer *)ud)->inflight;
}

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
    c->window = (size_t)cfg->max_inflight;
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
    eddy_list_init(&c->parked);
    eddy_list_init(&c->blocked);
    eddy_list_init(&c->free_lanes);
    eddy_list_init(&c->free_msgs);
    eddy_closer_init(&c->closer, NULL, consumer_free);
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
    uv_timer_init(loop, &c->drain_timer);
    struct eddy_breaker_config bc = {.name = "DynamoDB",
                                     .probe_min_ms = cfg->probe_min_ms,
                                     .probe_max_ms = cfg->probe_max_ms,
                                     .clock = c->cfg.clock,
                                     .seed = cfg->seed + 2};
    eddy_breaker_init(&c->breaker, &bc);
    struct eddy_acker_config ac = {.queue_url = c->queue_url,
                                   .flush_ms = cfg->ack_flush_ms,
                                   .metrics = cfg->metrics,
                                   .expected = in_hand,
                                   .expected_ud = c,
                                   .seed = cfg->seed + 1};
    c->acker = eddy_acker_new(loop, sqs, &ac);
    return c;
}

static void acker_closed(void *ud)
{
    struct eddy_consumer *c = ud;
    eddy_closer_release(&c->closer);
}

void consumer_check_drained(struct eddy_consumer *c)
{
    if (c->state != ST_DRAINING || c->inflight > 0 || c->reserved > 0 || c->sends > 0 ||
        c->attrs_call != NULL || c->probing)
        return;
    for (int i = 0; i < c->npollers; i++)
        if (c->pollers[i].call)
            return;
    consumer_set_state(c, ST_CLOSING);
    eddy_closer_close(&c->closer, (uv_handle_t *)&c->hb_timer);
    eddy_closer_close(&c->closer, (uv_handle_t *)&c->start_timer);
    eddy_closer_close(&c->closer, (uv_handle_t *)&c->probe_timer);
    eddy_closer_close(&c->closer, (uv_handle_t *)&c->drain_timer);
    for (int i = 0; i < c->npollers; i++)
        eddy_closer_close(&c->closer, (uv_handle_t *)&c->pollers[i].timer);
    /* Nothing is queued from now on: the acker flushes and closes. */
    eddy_closer_hold(&c->closer);
    eddy_acker_close(c->acker, acker_closed, c);
}

static void release_lanes(struct eddy_consumer *c)
{
    struct eddy_map_iter it;
    struct eddy_str key;
    void *v;
    eddy_map_iter_init(&c->lanes, &it);
    while (eddy_map_next(&it, &key, &v))
        consumer_lane_release(v);
}

/* Close: parked lanes are released with the others. */
static void unpark(struct eddy_consumer *c)
{
    struct lane *l;
    while ((l = consumer_lane_take(&c->parked)) != NULL)
        l->parked = false;
}

static void cancel_polls(struct eddy_consumer *c)
{
    for (int i = 0; i < c->npollers; i++)
        if (c->pollers[i].call)
            eddy_aws_call_cancel(c->pollers[i].call);
}

static void drain_timer_cb(uv_timer_t *t)
{
    struct eddy_consumer *c = eddy_container_of(t, struct eddy_consumer, drain_timer);
    eddy_log(EDDY_LOG_INFO, NULL, "long polls still out after %u ms of drain: canceled",
             c->cfg.drain_poll_ms);
    cancel_polls(c);
}

void eddy_consumer_close(struct eddy_consumer *c, eddy_close_cb cb, void *ud)
{
    if (!eddy_closer_begin(&c->closer, cb, ud))
        return;
    if (c->state == ST_NEW) { /* never started: only the handles to close */
        consumer_set_state(c, ST_DRAINING);
        consumer_check_drained(c);
        return;
    }
    consumer_set_state(c, ST_DRAINING);
    eddy_log(EDDY_LOG_INFO, NULL, "draining: %zu message(s) in hand", c->inflight);
    uv_timer_stop(&c->start_timer);
    uv_timer_stop(&c->probe_timer);
    unpark(c);
    /* A poll left out returns (its messages released, see on_message) or
     * is canceled when drain_poll_ms has passed. */
    bool polling = false;
    for (int i = 0; i < c->npollers; i++) {
        uv_timer_stop(&c->pollers[i].timer);
        polling |= c->pollers[i].call != NULL;
    }
    if (c->cfg.drain_poll_ms == 0)
        cancel_polls(c);
    else if (polling)
        uv_timer_start(&c->drain_timer, drain_timer_cb, c->cfg.drain_poll_ms, 0);
    if (c->attrs_call)
        eddy_aws_call_cancel(c->attrs_call);
    /* Blocked FIFO lanes are in the map too: releasing them all is enough. */
    release_lanes(c);
    eddy_acker_flush(c->acker);
    consumer_check_drained(c);
}

static void consumer_free(struct eddy_closer *closer)
{
    struct eddy_consumer *c = eddy_container_of(closer, struct eddy_consumer, closer);
    eddy_map_cleanup(&c->lanes, consumer_lane_free);
    eddy_map_cleanup(&c->busy, NULL);
    struct lane *l;
    while ((l = consumer_lane_take(&c->free_lanes)) != NULL)
        consumer_lane_free(l);
    struct eddy_list *q, *n;
    eddy_list_foreach_safe(q, n, &c->free_msgs)
    {
        free(eddy_list_data(q, struct cmsg, link));
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
    return c->acker;
}
