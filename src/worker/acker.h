/*
 * acker.h - batched acknowledgements of SQS messages: deletes, and visibility
 * changes (release, backoff, heartbeat).
 *
 * The consumer hands the acker a receipt handle and forgets the message: the
 * handle is copied into a pooled entry (no allocation per message once the
 * pool is warm). Entries of one kind are sent together, up to 10 per
 * DeleteMessageBatch or ChangeMessageVisibilityBatch call: a batch leaves as
 * soon as 10 are queued, a partial batch flush_ms after its first entry was
 * queued; but a partial batch of deletes that the deletes expected soon
 * (the owner's count: the consumer's messages in hand) would fill waits for
 * them, until it is full, until they are no longer expected, or linger_ms
 * after its first entry. Visibility changes wait linger_ms too unless a
 * release (visibility 0) is among them: a backoff or a heartbeat is not
 * urgent. So deletes from several receives share a call: a
 * delete that waits keeps a message in flight a little longer, while a call
 * that leaves half empty is paid in full. The cost of an acknowledgement is
 * a tenth of a call under load, and flush_ms of delay when idle. The flush
 * timer runs only while a partial batch waits.
 *
 * Failures. A call that fails as a whole (after the AWS layer's own retries)
 * and entries that fail for a reason that may pass (5xx, throttling, an entry
 * SQS did not answer for) are queued again after a full-jitter backoff, up to
 * max_attempts. An entry whose receipt handle SQS refuses
 * (ReceiptHandleIsInvalid, InvalidParameterValue, MessageNotInflight: the
 * message expired, was received again elsewhere, or is already gone) is
 * logged and dropped: retrying cannot help, and the worst that follows is
 * one more delivery, which dedupe absorbs. A heartbeat that failed is not
 * retried once a release, a backoff or a delete of its receipt handle was
 * queued: it would hide the message again for a whole visibility timeout.
 * Nothing here loops forever.
 *
 * The acker is not the place that decides what is safe to delete: the
 * consumer queues a delete only after the message's effect is durable.
 */
#ifndef EDDY_WORKER_ACKER_H
#define EDDY_WORKER_ACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/closer.h"
#include "base/err.h"
#include "eddy/rng.h"
#include "svc/sqs.h"

struct eddy_metrics;

/* Longest receipt handle the acker holds (SQS documents 1,024 characters). */
#define EDDY_ACK_HANDLE_MAX 1024
#define EDDY_ACK_FLUSH_MS 20
#define EDDY_ACK_LINGER_MS 250
#define EDDY_ACK_MAX_ATTEMPTS 6
#define EDDY_ACK_MAX_CALLS 32 /* batch calls in flight at once */

enum eddy_ack_kind { EDDY_ACK_DELETE, EDDY_ACK_VISIBILITY, EDDY_ACK_KINDS };

struct eddy_acker_config {
    const char *queue_url; /* copied */
    uint32_t flush_ms;     /* a partial batch's wait; 0: EDDY_ACK_FLUSH_MS */
    uint32_t linger_ms;    /* a held partial batch's longest wait; 0: EDDY_ACK_LINGER_MS */
    /* How many more deletes may come soon (the consumer: its messages in
     * hand); NULL: none are counted on. */
    size_t (*expected)(void *ud);
    void *expected_ud;
    unsigned max_attempts;        /* 0: EDDY_ACK_MAX_ATTEMPTS */
    uint32_t retry_base_ms;       /* 0: 100 */
    uint32_t retry_cap_ms;        /* 0: 5000 */
    struct eddy_metrics *metrics; /* may be NULL: counts deleted, released, heartbeats */
    uint64_t seed;                /* backoff jitter */
};

struct eddy_acker;

/* Totals, for tests and logs. */
struct eddy_acker_stats {
    uint64_t sent[EDDY_ACK_KINDS];    /* entries confirmed by SQS */
    uint64_t dropped[EDDY_ACK_KINDS]; /* entries given up on */
};

/* Why a visibility change is made: only for the metrics. */
enum eddy_ack_reason { EDDY_ACK_RELEASE, EDDY_ACK_BACKOFF, EDDY_ACK_HEARTBEAT };

/* The acker is idle until something is queued: it has no start. */
struct eddy_acker *eddy_acker_new(uv_loop_t *loop, struct eddy_sqs *sqs,
                                  const struct eddy_acker_config *cfg);
/* Queue a DeleteMessageBatch entry. EDDY_ELIMIT when the handle is too long
 * (logged); EDDY_ECANCELED after close. */
EDDY_MUST_USE eddy_err eddy_acker_delete(struct eddy_acker *a, const char *receipt_handle);
/* Queue a ChangeMessageVisibilityBatch entry (0..43200 s). */
EDDY_MUST_USE eddy_err eddy_acker_visibility(struct eddy_acker *a, const char *receipt_handle,
                                             int visibility_s, enum eddy_ack_reason why);
/* Send what is queued now, without waiting for the flush timer. */
void eddy_acker_flush(struct eddy_acker *a);
/* Entries queued, waiting for a retry or in flight. */
size_t eddy_acker_outstanding(const struct eddy_acker *a);
void eddy_acker_stats(const struct eddy_acker *a, struct eddy_acker_stats *out);
/*
 * Flush everything (retries keep their backoff), wait for the calls in
 * flight, close the timers, then call cb (may be NULL) from the loop; a is
 * freed after cb. Nothing may be queued after close.
 */
void eddy_acker_close(struct eddy_acker *a, eddy_close_cb cb, void *ud);

#endif
