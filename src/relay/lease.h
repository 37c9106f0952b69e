/*
 * lease.h - which outbox shards this process relays: leases on "#lease"
 * items, a fair share per live process.
 *
 * Every process that relays keeps, in the "#lease" partition of the table:
 *   - a membership item  _sk "member/<owner>"  owner, expires (N, unix ms),
 *     _ttl (unix s: DynamoDB deletes the items of processes long gone)
 *   - one lease item per shard it holds  _sk "outbox/<shard>"  owner, expires
 * (the lease item is record.h's eddy_record_build_lease).
 *
 * A tick runs every third of the lease period: it reads the whole "#lease"
 * partition (one consistent Query), counts the live members (expires in
 * the future), and computes the fair share ceil(shards / live members).
 * It renews the membership and the leases it holds in one
 * TransactWriteItems (two calls a tick however many shards it holds, so an
 * idle process costs little), acquires free or expired ones up to its
 * share, and asks its user to give back the ones over its share (new
 * members appeared). A renewal cancelled by a failed condition loses that
 * shard; the others of the call are renewed on the next tick, still valid.
 * Every lease write is conditional:
 *   acquire and renew: attribute_not_exists(_pk) OR expires < :now OR owner = :me
 *   give back and release: owner = :me (a delete)
 * so two processes never both believe they hold a shard while its lease is
 * valid. A dead process stops renewing; its membership and leases expire
 * after one lease period and the survivors take the shards on their next
 * tick: within about 4/3 of a lease period.
 *
 * Locally a lease counts as held until one lease period after its last
 * successful write was sent, less a tenth of the period for clock skew
 * between processes (eddy_lease_held reads the injected monotonic clock, so
 * a renewal that keeps failing loses the shard on time). Lease calls never
 * block the user: they run beside its work, and the user only asks
 * eddy_lease_held before each step.
 *
 * Events reach the user through one callback:
 *   EDDY_LEASE_ACQUIRED  the shard is ours: start relaying it;
 *   EDDY_LEASE_LOST      it is no longer ours (taken over, or expired): stop
 *                        starting work on it;
 *   EDDY_LEASE_SURRENDER we hold more than our share: finish the work in
 *                        hand on it, then call eddy_lease_give_back.
 * The callback runs from the loop, never inside a call into this module.
 *
 * Lifecycle (new / start / close): eddy_lease_close waits for the calls in
 * flight, deletes the membership and every lease still held (conditional on
 * owner), closes its handles, calls cb from the loop and frees the module
 * after cb.
 */
#ifndef EDDY_RELAY_LEASE_H
#define EDDY_RELAY_LEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/clock.h"
#include "base/closer.h"
#include "base/err.h"

struct eddy_ddb;

/* Limit of shards a lease module (and the relay) handles. */
#define EDDY_LEASE_SHARDS_MAX 1024u

enum eddy_lease_event { EDDY_LEASE_ACQUIRED, EDDY_LEASE_LOST, EDDY_LEASE_SURRENDER };

typedef void (*eddy_lease_cb)(uint32_t shard, enum eddy_lease_event ev, void *ud);

struct eddy_lease_config {
    const char *table;
    uint32_t shards;   /* 1..EDDY_LEASE_SHARDS_MAX */
    uint32_t lease_ms; /* lease period, >= 30 ms */
    const char *owner; /* this process's id, unique among live processes */
    /* 0: ticks run every lease_ms / 3 on a timer; else this period (tests
     * that drive ticks with eddy_lease_tick use a very long one) */
    uint32_t tick_ms;
};

struct eddy_lease;

/* cfg's strings are copied. Nothing runs until eddy_lease_start. */
struct eddy_lease *eddy_lease_new(uv_loop_t *loop, struct eddy_ddb *ddb,
                                  const struct eddy_lease_config *cfg,
                                  const struct eddy_clock *clock, eddy_lease_cb cb, void *ud,
                                  struct eddy_error *err);
/* Run the first tick now and the next ones on the timer. Once. */
void eddy_lease_start(struct eddy_lease *l);
/* Run a tick now unless one is in flight (false then, or when stopping). */
bool eddy_lease_tick(struct eddy_lease *l);

/* True while shard is ours and its lease has not run out locally. */
bool eddy_lease_held(const struct eddy_lease *l, uint32_t shard);
/* Shards held now. */
uint32_t eddy_lease_count(const struct eddy_lease *l);
/* Live members seen by the latest tick (this one included), and the share. */
uint32_t eddy_lease_members(const struct eddy_lease *l);
uint32_t eddy_lease_fair_share(const struct eddy_lease *l);

/* After EDDY_LEASE_SURRENDER, when the shard is idle: delete its lease
 * (conditional on owner). The shard is no longer held from this call on. */
void eddy_lease_give_back(struct eddy_lease *l, uint32_t shard);

/* Release everything (see above), then cb(ud) from the loop (never inside
 * this call), then free l. Twice: the second call does nothing. */
void eddy_lease_close(struct eddy_lease *l, eddy_close_cb cb, void *ud);

#endif
