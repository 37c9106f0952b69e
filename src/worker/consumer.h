/*
 * consumer.h - the SQS consumer: long polls, in-flight accounting, decoding,
 * entity lanes with coalescing, FIFO groups, failure policies, heartbeat and
 * drain.
 *
 * Messages come in through several long polls (ReceiveMessage, up to 10 at a
 * time), which run only while the messages in hand stay under max_inflight.
 * Each body is decoded (envelope.h); one that does not decode is poison.
 * A decoded message joins the lane of its entity (on a FIFO queue: of its
 * MessageGroupId). A lane runs one processor batch at a time, built from up
 * to coalesce_max of its pending messages in receive order, so a process
 * never races itself on an entity and an entity's events keep their order.
 * On a FIFO queue a group lane also waits while another lane has a batch of
 * the same entity in flight, and a batch holds one entity: the processor's
 * one-batch-per-entity rule holds across groups.
 *
 * After a batch the per-event results decide (nothing is deleted before the
 * processor reports it durable):
 *   APPLIED, DUPLICATE, REJECTED (policy record or drop) -> delete;
 *   REJECTED with policy dlq -> SendMessage to the DLQ, then delete;
 *   FAILED (the machine failed, a limit) -> the poison policy;
 *   ERROR, or the batch failed -> made visible again after a backoff that
 *   grows with ApproximateReceiveCount: min(2^count, 900) s, jittered to
 *   between half and all of that; but on the last receive the queue's
 *   redrive policy allows (maxReceiveCount, read at start), with a DLQ URL,
 *   the message is sent to the DLQ with the reason, as poison is, since the
 *   redrive would move it there without one. (A batch that failed because
 *   the store is down is neither: see the circuit breaker below.)
 * An event the processor settled before its batch failed (APPLIED, DUPLICATE,
 * REJECTED, FAILED: a batch split into several transactions can fail after
 * an earlier one committed) goes by its own result, whatever the batch's
 * error; a rejection not written is decided again on another receive.
 * On a FIFO queue, after a transient or machine failure the rest of that
 * group in hand is released (visibility 0), not processed out of order.
 *
 * Poison policies: dlq sends the original body to the DLQ with String
 * message attributes eddy-error (the reason) and eddy-message-id, then
 * deletes; redrive leaves the message with a growing visibility delay so the
 * queue's redrive policy moves it after maxReceiveCount receives; drop
 * deletes and logs. A DLQ send that fails falls back to the redrive delay.
 *
 * Unknown event types: a body whose event type is missing or unusable is
 * poison (the envelope cannot be decoded). A type the machine does not handle
 * is the machine's call: it rejects (recorded, like any refusal, and replay
 * sees the same) or fails (then it is poison, as above).
 *
 * Heartbeat: a message in hand for half its visibility timeout since it was
 * received or last extended is extended by the timeout (batched, acker.h;
 * those due within the next eighth of the timeout go along, so that
 * extensions leave together). Its timer runs only while messages are in
 * hand.
 *
 * The store's circuit breaker (breaker.h). A batch that fails because the
 * store is down (connection refused, a timeout, a 5xx, throttling past the
 * retries) is not a failure of its messages: they stay in hand, back at the
 * head of their lane in order (the heartbeat keeps extending their
 * visibility, in batches), the breaker opens, no lane starts a batch and no
 * poller asks for more. The consumer then probes the store (cfg.probe, one
 * call at a time, after a delay that grows to probe_max_ms) and, when a
 * probe answers or any batch commits, resumes the lanes and the polls. So an
 * outage of the store costs no receive count, and no valid message reaches
 * the DLQ because of it (a batch that finds the store down while the
 * consumer drains releases its messages instead, visibility 0). Each
 * probe's answer counts as progress for the health file: a worker waiting
 * for its store is alive, and replacing it would only hand its messages
 * back to the queue.
 *
 * Contention. Processes that share a queue race for the same entities, and
 * OCC makes all but one of them lose each race: the loser's transaction is
 * canceled (with the other entities of its group, which commit again) and
 * its step runs again. A process whose cache holds the last state of an
 * entity wins its races; the others, whose cached state is stale, lose
 * theirs. Each batch therefore reports its conflicts, and the consumer takes
 * fewer messages in hand while it loses: a batch with conflicts lowers the
 * window (the messages it takes in hand at most) by 4 a race (8 at most),
 * down to one receive (10), a committed batch without raises it by 1, up to
 * max_inflight. At
 * its least window and still losing, it pauses its receives (the others
 * take the queue) for 100 ms, doubling with each pause in a row up to 2 s,
 * jittered to between half and all of that; a committed batch without a
 * conflict ends the run. The processes sort themselves so that each hot
 * entity is mostly one process's: one that is alone, or whose entities no
 * other touches, never conflicts and keeps max_inflight. Messages in hand go
 * on; only receiving slows.
 *
 * Close (the drain): eddy_consumer_close stops the pollers, releases the
 * messages not started, waits for the batches in flight and the DLQ sends,
 * flushes the acknowledgements, closes its handles, then calls back and
 * frees the consumer. A long poll still out is left to return for up to
 * drain_poll_ms, and the messages it brings are released at once: SQS
 * cannot take a receive back, and one canceled by the client still takes
 * the next messages on SQS's side, hidden for their visibility timeout.
 *
 * The processor is reached through a submit function (the worker passes
 * eddy_processor_submit), so the consumer can be tested with a fake.
 */
#ifndef EDDY_WORKER_CONSUMER_H
#define EDDY_WORKER_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/closer.h"
#include "base/clock.h"
#include "base/err.h"
#include "core/processor.h"
#include "svc/sqs.h"
#include "worker/acker.h"
#include "worker/breaker.h"
#include "worker/envelope.h"

struct eddy_metrics;
struct eddy_health;

enum eddy_poison_policy { EDDY_POISON_DLQ, EDDY_POISON_REDRIVE, EDDY_POISON_DROP };

/* Largest visibility delay a transient failure or redrive sets, in seconds. */
#define EDDY_CONSUMER_BACKOFF_MAX_S 900

typedef eddy_err (*eddy_consumer_submit_fn)(void *ud, struct eddy_proc_batch *batch);

/* A probe's answer: err EDDY_OK when the store answered, else why (detail
 * may be NULL), valid during the call. */
typedef void (*eddy_consumer_probe_done_fn)(eddy_err err, const char *detail, void *done_ud);
/* Start one probe of the store; done runs exactly once, later, from the
 * loop. An error returned here counts as a failed probe, and done is not
 * called. */
typedef eddy_err (*eddy_consumer_probe_fn)(void *ud, eddy_consumer_probe_done_fn done,
                                           void *done_ud);

struct eddy_consumer_config {
    const char *queue_url; /* copied */
    const char *dlq_url;   /* copied; NULL: none (policy dlq then needs one) */
    int max_inflight;      /* >= 1 */
    int pollers;           /* 0: clamp(max_inflight / 10, 1, 8); 1 on a FIFO queue */
    int wait_s;            /* long-poll wait, 0..20 */
    /* On close, how long the long polls still out may run before they are
     * canceled (see Close above); 0: canceled at once. */
    uint32_t drain_poll_ms;
    int visibility_s; /* 0: the queue's (GetQueueAttributes at start) */
    int coalesce_max; /* events per batch, >= 1 */
    /* A rejected event the processor did not write (EDDY_EV_REJECTED_UNWRITTEN):
     * true sends its message to the DLQ, false deletes it. */
    bool rejected_to_dlq;
    enum eddy_poison_policy on_poison;
    const struct eddy_envelope_spec *spec; /* borrowed, outlives the consumer */
    /* The machine's inbound types, NULL-terminated; another type is poison.
     * NULL: every type goes to the machine. Borrowed. */
    const char *const *event_types;
    eddy_consumer_submit_fn submit;
    void *submit_ud;
    /* The circuit breaker's probe; NULL: when the delay has passed the held
     * batches go again and are the probe. */
    eddy_consumer_probe_fn probe;
    void *probe_ud;
    uint32_t probe_min_ms;          /* first probe delay; 0: EDDY_BREAKER_PROBE_MIN_MS */
    uint32_t probe_max_ms;          /* largest probe delay; 0: EDDY_BREAKER_PROBE_MAX_MS */
    struct eddy_metrics *metrics;   /* borrowed, required */
    struct eddy_health *health;     /* borrowed, may be NULL */
    const struct eddy_clock *clock; /* NULL: the system clock */
    uint64_t seed;                  /* jitter and lane hashing */
    uint32_t ack_flush_ms;          /* 0: EDDY_ACK_FLUSH_MS */
    /* A failure the consumer cannot get past (the queue does not exist, access
     * is denied): the worker should stop. May be NULL. */
    void (*on_fatal)(const struct eddy_error *err, void *ud);
    void *on_fatal_ud;
};

struct eddy_consumer;

/* EDDY_ECONFIG when the configuration is incomplete (names the setting). */
struct eddy_consumer *eddy_consumer_new(uv_loop_t *loop, struct eddy_sqs *sqs,
                                        const struct eddy_consumer_config *cfg,
                                        struct eddy_error *err);
/* Read the queue's attributes (visibility timeout, FIFO), then start polling. */
void eddy_consumer_start(struct eddy_consumer *c);
/* Stop, release what has not started, finish what has, flush; then cb (may
 * be NULL), from the loop; c is freed after cb. Also before start. */
void eddy_consumer_close(struct eddy_consumer *c, eddy_close_cb cb, void *ud);

/* Messages in hand (received, not yet handed to the acker). */
size_t eddy_consumer_inflight(const struct eddy_consumer *c);
/* Messages it takes in hand at most now (max_inflight, less under
 * contention), and whether its receives are paused (see Contention). */
size_t eddy_consumer_window(const struct eddy_consumer *c);
bool eddy_consumer_yielding(const struct eddy_consumer *c);
/* Whether the queue is treated as FIFO (known after start). */
bool eddy_consumer_fifo(const struct eddy_consumer *c);
/* The visibility timeout in use (known after start). */
int eddy_consumer_visibility(const struct eddy_consumer *c);
/* The store's circuit breaker (its state and totals). */
const struct eddy_breaker *eddy_consumer_breaker(const struct eddy_consumer *c);
/* Whether the heartbeat's timer is set (for tests: only while messages are
 * in hand). */
bool eddy_consumer_heartbeat_armed(const struct eddy_consumer *c);
/* The acker, for tests. */
struct eddy_acker *eddy_consumer_acker(struct eddy_consumer *c);
/* The visibility delay for the receive_count-th receive, before jitter. */
int eddy_consumer_backoff_s(uint32_t receive_count);
/* Parse "dlq", "redrive", "drop". */
bool eddy_poison_policy_parse(const char *s, enum eddy_poison_policy *out);

#endif
