/*
 * processor.h - turns events into committed state: load, process, commit
 * under optimistic concurrency, classify, retry.
 *
 * The unit of work is a batch: the pending events of one entity, in order
 * (the worker's lane guarantees at most one batch per entity in flight, so a
 * process never conflicts with itself). The processor groups the batches of
 * several entities into one TransactWriteItems, up to 100 items and 4 MB,
 * each entity with its own `_seq` condition (a group not 3/4 full waits
 * while another is out, see group_fill); cold entities are loaded
 * together with one BatchGetItem (consistent reads), and the keys it leaves
 * unprocessed are read again after a backoff, as throttling is below.
 * When a transaction is cancelled, CancellationReasons are read item by
 * item:
 *   - an entity's state item failed its condition: a conflict. That entity's
 *     cache entry is dropped and it is reloaded and processed again after a
 *     full-jitter backoff (up to occ_retries); the other entities of the
 *     group are committed again at once. The batch counts its conflicts
 *     (the worker takes fewer messages while it loses such races).
 *   - a dedupe marker failed: that event was applied before. It is reported
 *     EDDY_EV_DUPLICATE and the rest of its batch is processed again.
 *   - throttling: the whole group is retried with backoff; a
 *     TransactionConflict: its entity alone. Past occ_retries the batch
 *     fails with EDDY_ETHROTTLED, or with EDDY_ECONFLICT when only
 *     TransactionConflicts held it back (contention on one entity, not a
 *     store that is down).
 *   - anything else: the batch fails with the error (the worker's failure
 *     policy decides).
 *
 * Per event a batch commits an inbound record and a dedupe marker; per
 * outbound event a history record and an outbox entry; and one state put
 * (plus STATE/<seq> with state history on). All events of a batch share one
 * `_seq` step with idx 0..k-1: coalescing.
 *
 * Results, event by event: an event the machine rejects is committed with
 * _rejected under EDDY_REJECT_RECORD and is EDDY_EV_REJECTED (state
 * unchanged, _seq advances); under DLQ/DROP it is EDDY_EV_REJECTED_UNWRITTEN
 * and nothing is written (seq 0, idx -1). on_reject is read here alone: the
 * worker acts on the two outcomes. An event
 * whose id repeats an earlier one of the same batch waits for that one's
 * outcome: EDDY_EV_DUPLICATE once it is written (applied or recorded), and
 * processed on its own when the earlier one failed or was not written.
 * A bad event type or id, a machine failure, or an event that alone breaks a
 * limit (an item over 400 KB, an outbox entry over 256 KB, more than
 * group_max_items items or 4 MB with the state) is EDDY_EV_FAILED with a
 * reason naming the limit, and the rest of the batch goes on; a batch too big
 * for one transaction is split into several steps, in order. Batch errors
 * (a state item that does not load, conflicts past occ_retries, AWS errors)
 * come with their detail in batch->error; the events of the steps committed
 * before the error keep their results (APPLIED, REJECTED, DUPLICATE).
 *
 * Strings in the config (table, ns, event_source, event_bus) are borrowed
 * and must outlive the processor. The rng of process() is seeded per event
 * with eddy_rng_seed_bytes(event_id).
 *
 * Async contract: submit that returns an error never calls the callback;
 * otherwise it runs exactly once, later, from the loop, after the effect is
 * durable (or known not to be).
 */
#ifndef EDDY_CORE_PROCESSOR_H
#define EDDY_CORE_PROCESSOR_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/clock.h"
#include "base/closer.h"
#include "base/err.h"

struct eddy_machine;
struct eddy_ddb;
struct eddy_record_text;

enum eddy_event_result {
    EDDY_EV_PENDING = 0,
    EDDY_EV_APPLIED,            /* committed; state advanced */
    EDDY_EV_REJECTED,           /* committed with _rejected (policy record) */
    EDDY_EV_DUPLICATE,          /* applied earlier (dedupe marker exists); nothing written now */
    EDDY_EV_FAILED,             /* the machine failed, or the event is over a limit: not written */
    EDDY_EV_ERROR,              /* not committed for a transient reason; safe to retry later */
    EDDY_EV_REJECTED_UNWRITTEN, /* rejected; nothing written (policy dlq or drop) */
};

struct eddy_proc_event {
    /* input, borrowed until the callback */
    const char *type;
    const char *event_id;
    const cJSON *data;
    const char *trace_header; /* AWSTraceHeader of the inbound message, or NULL */
    /* output */
    enum eddy_event_result result;
    int64_t seq; /* the _seq this event was committed at (0 when not written) */
    int idx;     /* its index within that step (-1 when not written) */
    char reason[EDDY_ERROR_DETAIL_MAX]; /* rejection reason or failure detail, whole */
};

struct eddy_proc_batch;
typedef void (*eddy_proc_cb)(struct eddy_proc_batch *batch, eddy_err err, void *ud);

struct eddy_proc_batch {
    /* input */
    const char *entity_id;
    struct eddy_proc_event *events;
    size_t nevents;
    eddy_proc_cb cb;
    void *ud;
    /* output: the detail of a batch error (err != EDDY_OK in the callback, or
     * the refusal of submit), e.g. the entity and field of a state item that
     * does not load */
    struct eddy_error error;
    /* output: how many times the step lost to another process's commit of
     * the entity (OCC conflicts, retried or not) */
    unsigned conflicts;
    /* private to the processor */
    void *priv;
};

enum eddy_reject_policy { EDDY_REJECT_RECORD, EDDY_REJECT_DLQ, EDDY_REJECT_DROP };

struct eddy_processor_config {
    const char *table;
    const char *ns; /* entity namespace */
    const struct eddy_machine *machine;
    int64_t dedupe_ttl_s; /* _ttl = now + this */
    bool state_history;   /* also write STATE/<seq> */
    int occ_retries;      /* conflicts retried at most */
    uint32_t outbox_shards;
    const char *event_source; /* Source of outbox entries */
    const char *event_bus;    /* EventBusName of outbox entries (may be NULL) */
    size_t cache_entities;    /* LRU size; 0 disables */
    enum eddy_reject_policy on_reject;
    size_t group_max_items; /* items per TransactWriteItems, <= 100 */
    /* TransactWriteItems calls in flight at once (0: 4). While they are all
     * out, ready entities wait and join the next group: under load each call
     * carries more events (group commit). */
    size_t commits_max;
    /* A group of fewer items than this (0: 3/4 of the group size) does not
     * leave while another transaction is out: it waits for one to come
     * back (no timer: the return pumps again), and the entities that become
     * ready meanwhile join it. With none out a group leaves at once. */
    size_t group_fill;
    /* The most events the caller has submitted and not called back at once
     * (the worker's messages in hand; 0: unknown). A group holding half of
     * them leaves whatever its size: the rest could not fill it. */
    size_t feed_max;
    /* called after a commit for each outbox row it wrote, in (seq, idx)
     * order per entity, with the row as written: its DynamoDB JSON and its
     * fields (row->outbox), valid during the call: publish on commit. The
     * hook may take row->json and row->outbox over (leaving NULL): the
     * row is cleaned up after the call */
    void (*on_outbox)(struct eddy_record_text *row, void *ud);
    void *on_outbox_ud;
    /* called with +n when a TransactWriteItems that writes n outbox rows
     * goes out and with -n when it is back (before on_outbox): the
     * publisher may wait for them; ud is on_outbox_ud. NULL: none */
    void (*on_outbox_expect)(long n, void *ud);
    /* backoff after a conflict or throttling: full jitter over
     * min(base * 2^n, max) ms; 0: 10 ms and 2000 ms */
    uint32_t backoff_base_ms;
    uint32_t backoff_max_ms;
};

struct eddy_processor;

struct eddy_processor *eddy_processor_new(uv_loop_t *loop, struct eddy_ddb *ddb,
                                          const struct eddy_processor_config *cfg,
                                          const struct eddy_clock *clock, uint64_t seed,
                                          struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_processor_submit(struct eddy_processor *p,
                                             struct eddy_proc_batch *batch);
/* Batches submitted and not yet called back. */
size_t eddy_processor_pending(const struct eddy_processor *p);
/* Fail queued batches that have not started with EDDY_ECANCELED, let the
 * transactions in flight finish, then call cb (from the loop, never inside
 * this call) and free p. Closing twice does nothing the second time. */
void eddy_processor_close(struct eddy_processor *p, eddy_close_cb cb, void *ud);

/* transactions: TransactWriteItems calls that committed; conflicts: state
 * conditions that failed; duplicates: events found applied by their dedupe
 * marker; retries: backoffs (conflict or throttling); loads: entities read
 * with BatchGetItem; cache_hits: entities taken from the cache. */
struct eddy_processor_stats {
    uint64_t transactions, conflicts, duplicates, retries, loads, cache_hits;
};
void eddy_processor_stats(const struct eddy_processor *p, struct eddy_processor_stats *out);

#endif
