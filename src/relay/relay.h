/*
 * relay.h - the outbox relay: publishes the outbox entries the processor
 * committed to EventBridge, at least once, in (seq, idx) order per entity
 * within a process.
 *
 * Two ways in, one publisher:
 *   - Publish on commit. The committing process hands each committed outbox
 *     entry to its relay at once (eddy_relay_on_outbox fits the processor's
 *     on_outbox hook: the entry as it was rendered, its fields and its
 *     DynamoDB JSON). Nothing is read back from DynamoDB, and nothing is
 *     parsed, on this path.
 *   - Sweeps for leftovers. The relay leases a fair share of the shards
 *     (lease.h) and sweeps them: a sweep Queries "#outbox/<shard>" and takes
 *     only the rows older than grace_ms that it does not hold already (what
 *     a dead or failing process left). A sweep reads at most page_size rows
 *     of one entity and then continues past that entity, so one entity's
 *     backlog never holds back another entity of its shard; a sweep that
 *     stops at round_max rows, the next one goes on from there. A shard whose
 *     sweep found nothing to publish is swept less and less often, the
 *     interval doubling up to sweep_max_ms (from sweep_max_ms / 4 after the
 *     lease is taken, from poll_ms after a sweep that published); young rows
 *     of other processes bring the next sweep to when they become old
 *     enough, but not before the interval. Only a lease lost or given back
 *     ends a shard's sweeps; one that runs out locally while its renewal is
 *     on its way back pauses them (looked at again every poll_ms).
 *
 * The publisher holds at most held_max entries. A committed entry that
 * finds it full is left in the outbox for a sweep, and so are its entity's
 * later entries until a sweep has taken the last one left (or, on a shard
 * of another process, until that process's sweeps surely have): they leave
 * in order. A sweep that finds it full ends there, and the next one starts
 * over, for the same reason.
 *
 * The publisher keeps the entries it holds in lanes, one per entity, in
 * (seq, idx) order, and fills PutEvents calls across entities (the bus
 * kind's limits: classic bus 10 entries and 256 KB). An entity has one
 * entry out at a time unless its bus kind lets an entity's entries share a
 * call, so its later entries leave only after the earlier ones were
 * accepted. Entries added in one loop turn share the calls of that turn; a
 * call that is not full waits, linger_ms at most from its first entry,
 * while the entries on their way would fill it (to the bus's limit, or on
 * a bus with one entry of an entity a call, to the entities held and those
 * the commits are likely to bring): the next entries of the entities of the
 * calls in flight (the calls of a few busy entities stay in step, each
 * carrying all of them), and those of the commits in flight
 * (eddy_relay_expect) likely to find their entity with nothing out, when
 * the next commit is due back within the linger; otherwise it goes at
 * once. Published entries are deleted with
 * BatchWriteItem (25 keys a call, a partial batch once its oldest key has
 * waited 250 ms, unprocessed keys sent again after a backoff; a key is
 * given up, logged, only after 20 failures of its own: its row stays, and a
 * sweep publishes it again).
 * commit_to_publish_latency runs
 * from the hand-over (the commit's success) for committed entries, from
 * the row's _tms for swept ones. A call that fails as a whole (network, throttling, 5xx) is sent
 * again after a full-jitter backoff, forever; one the bus client refuses
 * before sending it (EDDY_ELIMIT, EDDY_EINVAL) is not: its entries go
 * again each in a call of its own, and the one refused alone is dead. An
 * entry over the bus's limits on its size or fields (entry_check) is dead
 * before it joins a call. An entry the bus refuses is
 * sent again after a backoff; refused for good (a validation error) or
 * attempts times, it is dead: moved in one TransactWriteItems from the
 * outbox to "#outbox-dead/<shard>" with the error and its attempts, counted
 * (publish_dead) and logged, and its entity's later entries go on.
 *
 * The published event: Source (the entry's, else the configured source,
 * else "eddy.<namespace>"), DetailType (the outbound type), Detail (the
 * entry's JSON text as the processor built it, metadata included),
 * EventBusName (the entry's, else the configured bus), Resources and
 * TraceHeader when the entry has them, Time = the commit second. Its size is
 * eddy_eb_entry_size, the rule the commit path checked.
 *
 * Delivery is at least once: a crash between PutEvents and the delete, or a
 * sweep overlapping a slow publisher of another process, sends an entry
 * again; consumers drop duplicates by Detail's event id.
 *
 * Lifecycle (new / start / close): eddy_relay_close stops the sweeps,
 * publishes what it holds (an entry that fails is left in the outbox for a
 * sweep), deletes what was published, gives the leases back, closes its
 * handles, then calls cb from the loop (never inside the call) and frees
 * the relay after cb. A relay never started is closed the same way.
 */
#ifndef EDDY_RELAY_RELAY_H
#define EDDY_RELAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/clock.h"
#include "base/closer.h"
#include "base/err.h"
#include "core/record.h"
#include "svc/eventbridge.h"

struct eddy_ddb;
struct eddy_metrics;

/*
 * A kind of bus: how its PutEvents is called and what it allows. The
 * classic bus (eddy_relay_bus_classic) sends through eddy_eb_put_events.
 */
struct eddy_relay_bus {
    const char *name;        /* for logs */
    size_t max_entries;      /* entries per call */
    size_t max_bytes;        /* entry_size summed over a call */
    bool entity_shares_call; /* several entries of one entity may go in one call, in order */
    /* Send n entries; rows[k] is entries[k]'s outbox row (entity, seq, idx,
     * the stable event id), for what a bus needs beyond the classic entry.
     * The async contract of awscall.h; results one per entry, in order. */
    eddy_err (*put)(void *client, const struct eddy_eb_entry *entries,
                    const struct eddy_record_outbox *const *rows, size_t n, eddy_eb_put_cb cb,
                    void *ud, struct eddy_error *err);
    /* An entry's size against max_bytes; NULL: eddy_eb_entry_size. */
    size_t (*entry_size)(const struct eddy_eb_entry *entry, const struct eddy_record_outbox *row);
    /* Whether an entry passes the bus's limits on an entry's fields, which
     * put checks before each call: else an error naming the limit (the
     * entry is dead before it joins a call). NULL: put checks none. */
    eddy_err (*entry_check)(const struct eddy_eb_entry *entry, const struct eddy_record_outbox *row,
                            struct eddy_error *err);
    /* The entry was accepted (published). */
    bool (*accepted)(const struct eddy_eb_entry_result *res);
    /* The entry's error code means it will never be accepted. */
    bool (*refused_for_good)(const char *code);
};
/* The classic bus; client is a struct eddy_eb *. */
extern const struct eddy_relay_bus eddy_relay_bus_classic;

struct eddy_relay_config {
    const char *table;
    uint32_t shards;          /* EDDY_OUTBOX_SHARDS, 1..1024 */
    const char *event_bus;    /* EventBusName for entries that carry none; NULL: default bus */
    const char *event_source; /* Source for entries that carry none; NULL: "eddy.<namespace>" */
    uint32_t poll_ms;         /* shortest interval between sweeps of a shard; 0: 1000 */
    uint32_t sweep_max_ms;    /* EDDY_SWEEP_MAX: longest; 0: 30000 */
    uint32_t grace_ms;        /* EDDY_OUTBOX_GRACE: sweeps take rows older than this (0: all) */
    uint32_t attempts;        /* EDDY_PUBLISH_ATTEMPTS: refusals before dead; 0: 10 */
    /* Lease period (EDDY_LEASE_MS). 0: no leases, this relay sweeps every
     * shard; only for a relay known to be alone (tests, benchmarks). */
    uint32_t lease_ms;
    const char *owner;      /* lease owner id; NULL: "<hostname>-<pid>-<random>" */
    uint32_t page_size;     /* Query Limit, and rows of one entity a sweep reads; 0: 100 */
    uint32_t round_max;     /* rows a sweep reads at most; 0: 1000 */
    uint32_t held_max;      /* entries held in memory at most (more wait for a sweep); 0: 10000 */
    uint32_t inflight_max;  /* PutEvents calls in flight; 0: 8 */
    uint32_t linger_ms;     /* a call not full waits for entries on their way at most; 0: 50 */
    uint32_t retry_base_ms; /* backoff of failed entries; 0: 100 */
    uint32_t retry_cap_ms;  /* 0: 5000 */
    uint64_t seed;          /* backoff jitter; 0: from the clock */
    /* NULL: the classic bus through the eb given to eddy_relay_new. */
    const struct eddy_relay_bus *bus;
    void *bus_client;
    /* Called for every entry EventBridge accepted, before its delete, with
     * the time it was accepted; for benchmarks and tests. NULL: none. */
    void (*on_publish)(const struct eddy_record_outbox *entry, int64_t unix_ms, void *ud);
    void *on_publish_ud;
};

struct eddy_relay_stats {
    uint64_t sweeps;         /* sweeps run */
    uint64_t queries;        /* Query calls */
    uint64_t put_calls;      /* PutEvents calls */
    uint64_t published;      /* entries EventBridge accepted */
    uint64_t committed;      /* entries handed over by the commit path */
    uint64_t swept;          /* entries taken by sweeps */
    uint64_t failed_entries; /* entries it refused (ErrorCode) or calls that failed, per entry */
    uint64_t retries;        /* entries sent again */
    uint64_t dead;           /* entries moved to the dead-letter partition */
    uint64_t deleted;        /* outbox entries deleted */
    uint64_t delete_calls;   /* BatchWriteItem calls */
    uint64_t delete_retries; /* keys sent again (unprocessed or failed call) */
    uint64_t overflow;       /* committed entries left to the sweeps (held_max reached, or
                              * their entity's earlier ones were) */
    uint32_t shards_held;    /* now */
    uint32_t held;           /* entries held now */
    int64_t lag_ms;          /* oldest row age seen by the latest sweeps, over shards */
};

struct eddy_relay;

/* cfg's strings are copied; metrics may be NULL; clock NULL: the system
 * clock. Nothing runs until eddy_relay_start. */
struct eddy_relay *eddy_relay_new(uv_loop_t *loop, struct eddy_ddb *ddb, struct eddy_eb *eb,
                                  const struct eddy_relay_config *cfg,
                                  const struct eddy_clock *clock, struct eddy_metrics *metrics,
                                  struct eddy_error *err);
/* Start the leases (or take every shard without them) and the sweeps. */
EDDY_MUST_USE eddy_err eddy_relay_start(struct eddy_relay *r);
/* Publish a committed outbox entry, as the commit path rendered it: its
 * fields (row->outbox) and its text (row->json) are taken over (left NULL
 * in row; the caller cleans row up as ever), nothing is parsed or copied:
 * the text is kept for a move to the dead letters, and its escaped Detail
 * is what PutEvents sends. Entries without fields are left to the sweeps;
 * an entry not taken (the relay is full or closing) is left in row. */
void eddy_relay_publish(struct eddy_relay *r, struct eddy_record_text *row);
/* The processor's on_outbox hook: ud is the relay. */
void eddy_relay_on_outbox(struct eddy_record_text *row, void *ud);
/* A hint from the commit path: n (> 0) entries are in a commit in flight,
 * or (< 0) such a commit is back (its entries come with eddy_relay_publish,
 * or never when it failed). A call that is not full waits a little for
 * them (see above). */
void eddy_relay_expect(struct eddy_relay *r, long n);
/* The processor's on_outbox_expect hook: ud is the relay. */
void eddy_relay_on_outbox_expect(long n, void *ud);
/* Sweep shard now if it is ours (tests; a shard's timer does it otherwise). */
void eddy_relay_sweep(struct eddy_relay *r, uint32_t shard);
/* Run a lease tick now (tests; the lease's timer does it otherwise): false
 * without leases, or while one is in flight (eddy_lease_tick). */
bool eddy_relay_lease_tick(struct eddy_relay *r);
/* See the lifecycle above; cb may be NULL. Calling it twice is harmless
 * (the second call does nothing); r is freed after cb. NULL is fine. */
void eddy_relay_close(struct eddy_relay *r, eddy_close_cb cb, void *ud);

void eddy_relay_stats(const struct eddy_relay *r, struct eddy_relay_stats *out);
/* True while shard is this relay's (leased, or every shard without leases). */
bool eddy_relay_holds(const struct eddy_relay *r, uint32_t shard);
/* Age of the oldest row the latest sweep of shard saw, 0 when empty. */
int64_t eddy_relay_shard_lag_ms(const struct eddy_relay *r, uint32_t shard);
const char *eddy_relay_owner(const struct eddy_relay *r);

#endif
