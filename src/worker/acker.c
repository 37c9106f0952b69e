/*
 * acker.c - batched DeleteMessageBatch and ChangeMessageVisibilityBatch with
 * retries of failed entries (see acker.h).
 *
 * Entries and calls come from free lists that grow to the high-water mark and
 * are reused, so a steady stream of acknowledgements allocates nothing.
 */
#include "worker/acker.h"

#include <stdlib.h>
#include <string.h>

#include "aws/retry.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "base/metrics.h"

struct ack_entry {
    struct eddy_list link; /* a pending queue, the retry queue, or the free list */
    enum eddy_ack_kind kind;
    enum eddy_ack_reason why;
    int visibility_s;
    uint64_t queued_ms; /* the loop's time when it joined its pending queue */
    unsigned attempts;
    bool stale;    /* a heartbeat out when its message left: not retried */
    size_t cap;    /* bytes of handle */
    char handle[]; /* sized to the handles it held, not to the 1 KiB limit */
};

/* Handles are rounded up to this when an entry is made for them, so the
 * handles of one queue, a few bytes apart, fit each other's entries. */
#define ACK_HANDLE_ROUND 64

struct ack_call {
    struct eddy_list link; /* in the free list, or in flight (busy_calls) */
    struct eddy_acker *a;
    enum eddy_ack_kind kind;
    size_t n;
    struct ack_entry *e[EDDY_SQS_MAX_BATCH];
    struct eddy_sqs_batch_entry req[EDDY_SQS_MAX_BATCH];
};

/* A queue of entries (ack_entry.link) and its length. */
struct queue {
    struct eddy_list q;
    size_t n;
};

struct eddy_acker {
    uv_loop_t *loop;
    struct eddy_sqs *sqs;
    char *queue_url;
    struct eddy_metrics *metrics;
    uint32_t flush_ms, linger_ms;
    size_t (*expected)(void *ud);
    void *expected_ud;
    uint64_t hold_until_ms; /* a partial batch of deletes waits for more until then; 0: not */
    uint32_t retry_base_ms, retry_cap_ms;
    unsigned max_attempts;
    struct eddy_rng rng;
    uv_timer_t flush_timer;
    uv_timer_t retry_timer;
    struct queue pending[EDDY_ACK_KINDS];
    struct queue retry;            /* waiting for retry_timer */
    struct eddy_list free_entries; /* ack_entry.link */
    struct eddy_list free_calls;   /* ack_call.link */
    struct eddy_list busy_calls;   /* ack_call.link, in flight */
    size_t calls_inflight;
    size_t entries_inflight;
    struct eddy_acker_stats stats;
    bool shut; /* the timers are closing: nothing more is accepted */
    struct eddy_closer closer;
};

static const char *const kind_name[EDDY_ACK_KINDS] = {"DeleteMessageBatch",
                                                      "ChangeMessageVisibilityBatch"};

static void queue_init(struct queue *l)
{
    eddy_list_init(&l->q);
    l->n = 0;
}

static void queue_push(struct queue *l, struct ack_entry *e)
{
    eddy_list_insert_tail(&l->q, &e->link);
    l->n++;
}

static struct ack_entry *queue_pop(struct queue *l)
{
    struct eddy_list *q = eddy_list_take(&l->q);
    if (q == NULL)
        return NULL;
    l->n--;
    return eddy_list_data(q, struct ack_entry, link);
}

static void entry_put(struct eddy_acker *a, struct ack_entry *e)
{
    eddy_list_insert_head(&a->free_entries, &e->link);
}

static void call_put(struct eddy_acker *a, struct ack_call *c)
{
    eddy_list_remove(&c->link); /* from busy_calls */
    eddy_list_insert_head(&a->free_calls, &c->link);
}

static void check_closed(struct eddy_acker *a);
static void send_batches(struct eddy_acker *a, bool partial);
static void send_one(struct eddy_acker *a, enum eddy_ack_kind kind);

static void acker_free(struct eddy_closer *closer);

struct eddy_acker *eddy_acker_new(uv_loop_t *loop, struct eddy_sqs *sqs,
                                  const struct eddy_acker_config *cfg)
{
    struct eddy_acker *a = eddy_calloc(1, sizeof *a);
    a->loop = loop;
    a->sqs = sqs;
    a->queue_url = eddy_strdup(cfg->queue_url);
    a->metrics = cfg->metrics;
    a->flush_ms = cfg->flush_ms ? cfg->flush_ms : EDDY_ACK_FLUSH_MS;
    a->linger_ms = cfg->linger_ms ? cfg->linger_ms : EDDY_ACK_LINGER_MS;
    if (a->linger_ms < a->flush_ms)
        a->linger_ms = a->flush_ms;
    a->expected = cfg->expected;
    a->expected_ud = cfg->expected_ud;
    a->max_attempts = cfg->max_attempts ? cfg->max_attempts : EDDY_ACK_MAX_ATTEMPTS;
    a->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : 100;
    a->retry_cap_ms = cfg->retry_cap_ms ? cfg->retry_cap_ms : 5000;
    eddy_rng_seed(&a->rng, cfg->seed);
    for (int k = 0; k < EDDY_ACK_KINDS; k++)
        queue_init(&a->pending[k]);
    queue_init(&a->retry);
    eddy_list_init(&a->free_entries);
    eddy_list_init(&a->free_calls);
    eddy_list_init(&a->busy_calls);
    uv_timer_init(loop, &a->flush_timer);
    uv_timer_init(loop, &a->retry_timer);
    eddy_closer_init(&a->closer, NULL, acker_free);
    return a;
}

static struct ack_entry *oldest(const struct eddy_acker *a, int k)
{
    return eddy_list_data(eddy_list_head(&a->pending[k].q), struct ack_entry, link);
}

/* Whether the next visibility batch holds a release: a message another
 * consumer should have at once. Backoffs and heartbeats are not in a hurry
 * (a backoff lasts seconds; a heartbeat leaves more than half the timeout
 * before the message would show again). */
static bool release_pending(const struct eddy_acker *a)
{
    size_t n = 0;
    const struct eddy_list *it;
    eddy_list_foreach(it, &a->pending[EDDY_ACK_VISIBILITY].q)
    {
        if (n++ == EDDY_SQS_MAX_BATCH)
            break;
        if (eddy_list_data(it, struct ack_entry, link)->why == EDDY_ACK_RELEASE)
            return true;
    }
    return false;
}

/* When the partial batch of kind k is next looked at: flush_ms after its
 * oldest entry was queued; for deletes held for more, when the hold ends;
 * for visibility changes with no release among them, linger_ms after, so
 * that those of several conflicts and ticks share a call. */
static uint64_t due_ms(const struct eddy_acker *a, int k)
{
    if (k == EDDY_ACK_DELETE && a->hold_until_ms)
        return a->hold_until_ms;
    if (k == EDDY_ACK_VISIBILITY && !release_pending(a))
        return oldest(a, k)->queued_ms + a->linger_ms;
    return oldest(a, k)->queued_ms + a->flush_ms;
}

/* Whether the deletes pending and those the owner expects soon fill a
 * batch: then a partial batch waits for them. */
static bool more_coming(const struct eddy_acker *a)
{
    return a->expected &&
           a->pending[EDDY_ACK_DELETE].n + a->expected(a->expected_ud) >= EDDY_SQS_MAX_BATCH;
}

static void flush_timer_cb(uv_timer_t *t);

/* The flush timer runs only while a partial batch waits, until the first
 * is due; with all batch calls out, the next call to end sends instead. */
static void arm_flush(struct eddy_acker *a)
{
    bool any = false;
    uint64_t due = 0;
    for (int k = 0; k < EDDY_ACK_KINDS; k++) {
        if (a->pending[k].n == 0)
            continue;
        uint64_t d = due_ms(a, k);
        if (!any || d < due)
            due = d;
        any = true;
    }
    if (!any || a->calls_inflight >= EDDY_ACK_MAX_CALLS) {
        uv_timer_stop(&a->flush_timer);
        return;
    }
    uint64_t now = uv_now(a->loop);
    uv_timer_start(&a->flush_timer, flush_timer_cb, due > now ? due - now : 0, 0);
}

/* Send full batches of kind k; with partial, also what is left over. */
static void send_kind(struct eddy_acker *a, int k, bool partial)
{
    while (a->calls_inflight < EDDY_ACK_MAX_CALLS &&
           (a->pending[k].n >= EDDY_SQS_MAX_BATCH || (partial && a->pending[k].n > 0)))
        send_one(a, (enum eddy_ack_kind)k);
}

static void flush_timer_cb(uv_timer_t *t)
{
    struct eddy_acker *a = eddy_container_of(t, struct eddy_acker, flush_timer);
    uint64_t now = uv_now(a->loop);
    for (int k = 0; k < EDDY_ACK_KINDS; k++) {
        if (a->pending[k].n == 0 || due_ms(a, k) > now)
            continue;
        if (k == EDDY_ACK_DELETE && a->hold_until_ms == 0 && more_coming(a)) {
            /* the deletes in hand fill it: wait for them, linger_ms at most */
            a->hold_until_ms = oldest(a, k)->queued_ms + a->linger_ms;
            if (a->hold_until_ms > now)
                continue;
        }
        send_kind(a, k, true);
    }
    arm_flush(a);
}

static bool stale_heartbeat(const struct ack_entry *e, const char *handle)
{
    return e->kind == EDDY_ACK_VISIBILITY && e->why == EDDY_ACK_HEARTBEAT &&
           strcmp(e->handle, handle) == 0;
}

/*
 * The message of handle leaves (a release, a backoff, a delete): a
 * heartbeat of it that failed must not be retried after, which would hide
 * it again for a whole visibility timeout, nor one out now. The one waiting
 * for its retry goes at once; the one out is marked, to go when it fails.
 */
static void heartbeats_end(struct eddy_acker *a, const char *handle)
{
    struct eddy_list *q, *n;
    eddy_list_foreach_safe(q, n, &a->retry.q)
    {
        struct ack_entry *e = eddy_list_data(q, struct ack_entry, link);
        if (stale_heartbeat(e, handle)) {
            eddy_list_remove(&e->link);
            a->retry.n--;
            entry_put(a, e);
        }
    }
    eddy_list_foreach(q, &a->busy_calls)
    {
        struct ack_call *c = eddy_list_data(q, struct ack_call, link);
        if (c->kind != EDDY_ACK_VISIBILITY)
            continue; /* every delete comes here: its calls out hold no heartbeat */
        for (size_t i = 0; i < c->n; i++)
            if (stale_heartbeat(c->e[i], handle))
                c->e[i]->stale = true;
    }
}

static eddy_err enqueue(struct eddy_acker *a, enum eddy_ack_kind kind, const char *handle,
                        int visibility_s, enum eddy_ack_reason why)
{
    if (a->shut)
        return EDDY_ECANCELED;
    size_t len = strlen(handle);
    if (len > EDDY_ACK_HANDLE_MAX) {
        eddy_log(EDDY_LOG_ERROR, NULL, "receipt handle of %zu bytes is over %d; not sent to %s",
                 len, EDDY_ACK_HANDLE_MAX, kind_name[kind]);
        return EDDY_ELIMIT;
    }
    struct eddy_list *q = eddy_list_take(&a->free_entries);
    struct ack_entry *e = q ? eddy_list_data(q, struct ack_entry, link) : NULL;
    if (e == NULL || e->cap < len + 1) { /* a free entry is linked nowhere: it may move */
        size_t cap = (len + ACK_HANDLE_ROUND) / ACK_HANDLE_ROUND * ACK_HANDLE_ROUND;
        e = eddy_realloc(e, sizeof *e + cap);
        e->cap = cap;
    }
    e->kind = kind;
    e->why = why;
    e->visibility_s = visibility_s;
    e->attempts = 0;
    e->stale = false;
    memcpy(e->handle, handle, len + 1);
    e->queued_ms = uv_now(a->loop);
    if (kind == EDDY_ACK_DELETE || why != EDDY_ACK_HEARTBEAT)
        heartbeats_end(a, handle);
    queue_push(&a->pending[kind], e);
    if (a->pending[kind].n >= EDDY_SQS_MAX_BATCH || eddy_closer_closing(&a->closer))
        send_batches(a, eddy_closer_closing(&a->closer));
    else if (kind == EDDY_ACK_DELETE && a->hold_until_ms && !more_coming(a))
        send_batches(a, true); /* held for deletes that are no longer coming */
    else if (a->pending[kind].n == 1 || (kind == EDDY_ACK_VISIBILITY && why == EDDY_ACK_RELEASE))
        arm_flush(a); /* the first waiting, or a release that ends a linger: may be due first */
    return EDDY_OK;
}

eddy_err eddy_acker_delete(struct eddy_acker *a, const char *receipt_handle)
{
    return enqueue(a, EDDY_ACK_DELETE, receipt_handle, 0, EDDY_ACK_RELEASE);
}

eddy_err eddy_acker_visibility(struct eddy_acker *a, const char *receipt_handle, int visibility_s,
                               enum eddy_ack_reason why)
{
    if (visibility_s < 0)
        visibility_s = 0;
    if (visibility_s > 43200)
        visibility_s = 43200;
    return enqueue(a, EDDY_ACK_VISIBILITY, receipt_handle, visibility_s, why);
}

static void retry_timer_cb(uv_timer_t *t)
{
    struct eddy_acker *a = eddy_container_of(t, struct eddy_acker, retry_timer);
    struct ack_entry *e;
    while ((e = queue_pop(&a->retry)) != NULL)
        queue_push(&a->pending[e->kind], e);
    send_batches(a, true);
}

/* An entry that failed: queue it for a retry, or give up on it. */
static void retry_or_drop(struct eddy_acker *a, struct ack_entry *e, const char *code,
                          bool permanent)
{
    e->attempts++;
    if (e->stale) { /* its message has left: see heartbeats_end */
        entry_put(a, e);
        return;
    }
    if (permanent || e->attempts >= a->max_attempts) {
        a->stats.dropped[e->kind]++;
        struct eddy_log_fields f = {.error = code, .seq = EDDY_LOG_NOSEQ};
        eddy_log(permanent ? EDDY_LOG_INFO : EDDY_LOG_WARN, &f,
                 "%s entry given up after %u attempt(s)%s", kind_name[e->kind], e->attempts,
                 permanent ? ": the receipt handle is no longer valid" : "");
        entry_put(a, e);
        return;
    }
    queue_push(&a->retry, e);
    if (!uv_is_active((uv_handle_t *)&a->retry_timer)) {
        uint32_t ms =
            a->retry_base_ms +
            eddy_backoff_full_jitter(&a->rng, e->attempts - 1, a->retry_base_ms, a->retry_cap_ms);
        uv_timer_start(&a->retry_timer, retry_timer_cb, ms, 0);
    }
}

/* SQS's codes for a receipt handle that will never work again. */
static bool permanent_code(const char *code)
{
    static const char *const codes[] = {"ReceiptHandleIsInvalid", "InvalidParameterValue",
                                        "MessageNotInflight", "InvalidReceiptHandle",
                                        "AWS.SimpleQueueService.MessageNotInflight"};
    for (size_t i = 0; code && i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

static void count_sent(struct eddy_acker *a, const struct ack_entry *e)
{
    a->stats.sent[e->kind]++;
    if (a->metrics == NULL)
        return;
    if (e->kind == EDDY_ACK_DELETE)
        eddy_metrics_inc(a->metrics, EDDY_METRIC_deleted);
    else if (e->why == EDDY_ACK_RELEASE)
        eddy_metrics_inc(a->metrics, EDDY_METRIC_released);
    else if (e->why == EDDY_ACK_HEARTBEAT)
        eddy_metrics_inc(a->metrics, EDDY_METRIC_heartbeats);
}

static void call_done(struct eddy_acker *a, struct ack_call *c)
{
    call_put(a, c);
    a->calls_inflight--;
    a->entries_inflight -= c->n;
    send_batches(a, eddy_closer_closing(&a->closer));
    check_closed(a);
}

static void batch_cb(eddy_err err, struct eddy_sqs_batch_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct ack_call *c = ud;
    struct eddy_acker *a = c->a;
    if (err != EDDY_OK) {
        struct eddy_log_fields f = {.request_id = reply->request_id,
                                    .error = eddy_error_text(reply->error),
                                    .seq = EDDY_LOG_NOSEQ};
        eddy_log(EDDY_LOG_WARN, &f, "%s of %zu entries failed", kind_name[c->kind], c->n);
        for (size_t i = 0; i < c->n; i++)
            retry_or_drop(a, c->e[i], eddy_err_name(err), false);
    } else {
        for (size_t i = 0; i < c->n; i++) {
            const struct eddy_sqs_entry_result *r = i < res->n ? &res->entries[i] : NULL;
            if (r && r->ok) {
                count_sent(a, c->e[i]);
                entry_put(a, c->e[i]);
                continue;
            }
            const char *code = r && r->code ? r->code : "NoResult";
            bool permanent = permanent_code(code) || (r && r->sender_fault);
            retry_or_drop(a, c->e[i], code, permanent);
        }
    }
    eddy_sqs_batch_result_cleanup(res);
    call_done(a, c);
}

static void send_one(struct eddy_acker *a, enum eddy_ack_kind kind)
{
    struct eddy_list *q = eddy_list_take(&a->free_calls);
    struct ack_call *c = q ? eddy_list_data(q, struct ack_call, link) : eddy_malloc(sizeof *c);
    c->a = a;
    c->kind = kind;
    c->n = 0;
    eddy_list_insert_tail(&a->busy_calls, &c->link);
    if (kind == EDDY_ACK_DELETE)
        a->hold_until_ms = 0; /* what is left is looked at afresh */
    struct ack_entry *e;
    while (c->n < EDDY_SQS_MAX_BATCH && (e = queue_pop(&a->pending[kind])) != NULL) {
        c->e[c->n] = e;
        c->req[c->n].receipt_handle = e->handle;
        c->req[c->n].visibility_s = e->visibility_s;
        c->n++;
    }
    a->calls_inflight++;
    a->entries_inflight += c->n;
    struct eddy_error err;
    eddy_err rc =
        kind == EDDY_ACK_DELETE
            ? eddy_sqs_delete_batch(a->sqs, a->queue_url, c->req, c->n, batch_cb, c, NULL, &err)
            : eddy_sqs_change_visibility_batch(a->sqs, a->queue_url, c->req, c->n, batch_cb, c,
                                               NULL, &err);
    if (rc != EDDY_OK) {
        struct eddy_log_fields f = {.error = eddy_error_text(&err), .seq = EDDY_LOG_NOSEQ};
        eddy_log(EDDY_LOG_WARN, &f, "%s could not start", kind_name[kind]);
        for (size_t i = 0; i < c->n; i++)
            retry_or_drop(a, c->e[i], eddy_err_name(rc), false);
        call_put(a, c);
        a->calls_inflight--;
        a->entries_inflight -= c->n;
    }
}

/* Send full batches; with partial, also what is left over. */
static void send_batches(struct eddy_acker *a, bool partial)
{
    for (int k = 0; k < EDDY_ACK_KINDS; k++)
        send_kind(a, k, partial);
    arm_flush(a);
}

void eddy_acker_flush(struct eddy_acker *a)
{
    send_batches(a, true);
}

size_t eddy_acker_outstanding(const struct eddy_acker *a)
{
    return a->pending[0].n + a->pending[1].n + a->retry.n + a->entries_inflight;
}

void eddy_acker_stats(const struct eddy_acker *a, struct eddy_acker_stats *out)
{
    *out = a->stats;
}

static void acker_free(struct eddy_closer *closer)
{
    struct eddy_acker *a = eddy_container_of(closer, struct eddy_acker, closer);
    struct eddy_list *q, *n;
    eddy_list_foreach_safe(q, n, &a->free_entries)
    {
        free(eddy_list_data(q, struct ack_entry, link));
    }
    eddy_list_foreach_safe(q, n, &a->free_calls)
    {
        free(eddy_list_data(q, struct ack_call, link));
    }
    free(a->queue_url);
    free(a);
}

static void check_closed(struct eddy_acker *a)
{
    if (!eddy_closer_closing(&a->closer) || a->shut || a->calls_inflight > 0 || a->retry.n > 0 ||
        a->pending[0].n > 0 || a->pending[1].n > 0)
        return;
    a->shut = true; /* enqueue refuses from now on */
    eddy_closer_close(&a->closer, (uv_handle_t *)&a->flush_timer);
    eddy_closer_close(&a->closer, (uv_handle_t *)&a->retry_timer);
}

void eddy_acker_close(struct eddy_acker *a, eddy_close_cb cb, void *ud)
{
    if (!eddy_closer_begin(&a->closer, cb, ud))
        return;
    send_batches(a, true);
    check_closed(a);
}
