/*
 * relay.h - the outbox relay: publishes the outbox entries the processor
 * committed to EventBridge, at least once, in order per entity.
 *
 * The relay runs in the worker's loop (or alone: `eddy relay`). It holds
 * leases on some outbox shards (lease.h: a fair share per live process) and
 * runs rounds on those shards. A round:
 *   1. Queries the shard partition "#outbox/<shard>" (consistent, ascending,
 *      page by page, up to round_max entries);
 *   2. groups the entries by entity (the _namespace and _id attributes, never
 *      a split key) and orders each entity's entries by _seq, _idx;
 *   3. sends waves of PutEvents: a wave takes the next entry of every entity
 *      that has one ready, so one call never carries two entries of the same
 *      entity; calls carry at most 10 entries and 256 KB;
 *   4. deletes the published entries (BatchWriteItem, 25 keys a call,
 *      unprocessed keys sent again).
 * An entry that fails (ErrorCode in the PutEvents reply, or the whole call
 * failing) is sent again after a full-jitter backoff, alone: the entries
 * that went out are never resent. Later entries of its entity wait for it;
 * other entities go on. After retry_max failures the entity is left for the
 * next round (its entries stay in the outbox, in order).
 *
 * Rounds run when a local commit wakes a shard (eddy_relay_wake, the fast
 * path; eddy_relay_on_outbox fits the processor's on_outbox hook), on the
 * poll interval (commits of other processes, lost wake-ups), and again at
 * once when a round ends with entries left. One round at a time per shard:
 * a wake during a round runs one more round after it.
 *
 * The published event: Source (the entry's, else the configured source,
 * else "eddy.<namespace>"), DetailType (the outbound type), Detail (the
 * entry's JSON text as the processor built it, metadata included),
 * EventBusName (the entry's, else the configured bus), Resources and
 * TraceHeader when the entry has them, Time = the commit second. An entry
 * that cannot be read, or whose PutEvents entry is over 256 KB, is logged
 * and left in the outbox; its entity's later entries wait behind it.
 *
 * Delivery is at least once: a crash between PutEvents and the delete sends
 * the entries again; consumers drop duplicates by Detail's event id.
 *
 * Async contract: eddy_relay_stop lets the PutEvents calls in hand finish
 * and their entries be deleted, starts nothing new, gives the leases back,
 * closes its handles and then calls cb from the loop; then eddy_relay_free.
 */
#ifndef EDDY_RELAY_RELAY_H
#define EDDY_RELAY_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/clock.h"
#include "base/err.h"
#include "core/record.h"

struct eddy_ddb;
struct eddy_eb;
struct eddy_metrics;

struct eddy_relay_config {
    const char *table;
    uint32_t shards;          /* EDDY_OUTBOX_SHARDS, 1..1024 */
    const char *event_bus;    /* EventBusName for entries that carry none; NULL: default bus */
    const char *event_source; /* Source for entries that carry none; NULL: "eddy.<namespace>" */
    uint32_t poll_ms;         /* safety-net poll; 0: 1000 */
    /* Lease period (EDDY_LEASE_MS). 0: no leases, this relay takes every
     * shard; only for a relay known to be alone (tests, benchmarks). */
    uint32_t lease_ms;
    const char *owner;      /* lease owner id; NULL: "<hostname>-<pid>-<random>" */
    uint32_t page_size;     /* Query Limit; 0: 100 */
    uint32_t round_max;     /* entries read per round at most; 0: 1000 */
    uint32_t inflight_max;  /* PutEvents calls in flight per shard; 0: 4 */
    uint32_t retry_base_ms; /* backoff of failed entries; 0: 100 */
    uint32_t retry_cap_ms;  /* 0: 5000 */
    uint32_t retry_max;     /* failures of one entry within a round; 0: 6 */
    uint64_t seed;          /* backoff jitter; 0: from the clock */
    /* Called for every entry EventBridge accepted, before its delete, with
     * the time it was accepted; for benchmarks and tests. NULL: none. */
    void (*on_publish)(const struct eddy_record_outbox *entry, int64_t unix_ms, void *ud);
    void *on_publish_ud;
};

struct eddy_relay_stats {
    uint64_t rounds;         /* rounds run */
    uint64_t queries;        /* Query calls */
    uint64_t put_calls;      /* PutEvents calls */
    uint64_t published;      /* entries EventBridge accepted */
    uint64_t failed_entries; /* entries it refused (ErrorCode) or calls that failed, per entry */
    uint64_t retries;        /* entries sent again */
    uint64_t deleted;        /* outbox entries deleted */
    uint64_t delete_retries; /* keys sent again (unprocessed or failed call) */
    uint64_t skipped;        /* entries left: unreadable or over 256 KB */
    uint64_t wakes;          /* eddy_relay_wake calls for shards held */
    uint32_t shards_held;    /* now */
    int64_t lag_ms;          /* oldest entry age seen by the latest round, over shards */
};

struct eddy_relay;

/* cfg's strings are copied; metrics may be NULL; clock NULL: the system
 * clock. Nothing runs until eddy_relay_start. */
struct eddy_relay *eddy_relay_new(uv_loop_t *loop, struct eddy_ddb *ddb, struct eddy_eb *eb,
                                  const struct eddy_relay_config *cfg,
                                  const struct eddy_clock *clock, struct eddy_metrics *metrics,
                                  struct eddy_error *err);
/* Start the leases (or take every shard without them) and the poll timer. */
eddy_err eddy_relay_start(struct eddy_relay *r);
/* A commit wrote to shard: run a round soon if the shard is ours. */
void eddy_relay_wake(struct eddy_relay *r, uint32_t shard);
/* The processor's on_outbox hook: ud is the relay. */
void eddy_relay_on_outbox(uint32_t shard, void *ud);
/* See the async contract above. Calling it twice is harmless. */
void eddy_relay_stop(struct eddy_relay *r, void (*cb)(void *ud), void *ud);
/* After stop's callback (or on a relay never started). NULL is fine. */
void eddy_relay_free(struct eddy_relay *r);

void eddy_relay_stats(const struct eddy_relay *r, struct eddy_relay_stats *out);
/* True while shard is this relay's (leased, or every shard without leases). */
bool eddy_relay_holds(const struct eddy_relay *r, uint32_t shard);
/* Age of the oldest entry the latest round of shard saw, 0 when empty. */
int64_t eddy_relay_shard_lag_ms(const struct eddy_relay *r, uint32_t shard);
const char *eddy_relay_owner(const struct eddy_relay *r);

#endif
