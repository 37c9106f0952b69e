/*
 * breaker.h - the store's circuit breaker: whether the worker may hand work
 * to DynamoDB now, and when to probe it while it is down.
 *
 * A pure state machine: it reads the time from an injected clock and draws
 * jitter from its own seeded generator; it starts no call and arms no timer
 * (the consumer does both, asking eddy_breaker_wait_ms when to probe).
 *
 *   CLOSED ──store down──▶ OPEN ──delay passed──▶ PROBING ──probe ok──▶ CLOSED
 *                           ▲                        │
 *                           └──────probe failed──────┘
 *
 * CLOSED: work flows. A call that fails because the store is down
 * (eddy_breaker_store_down: connection refused or reset, a timeout, a 5xx,
 * throttling past the retries) opens it. OPEN: nothing new goes to the
 * store; after the probe delay, PROBING: exactly one probe call is out. A
 * probe that answers closes the breaker; one that fails opens it again with
 * the next delay. Any store call that succeeds also closes it (a call begun
 * before the breaker opened may come back after the store recovered).
 *
 * The delay grows: probe_min_ms * 2^level, capped at probe_max_ms, jittered
 * to between half and all of it, so workers that opened together do not probe
 * together. A failed probe raises the level, and so does a failure after a
 * probe closed the breaker but before any other call succeeded (a store that
 * answers probes but still fails the work); only a call that succeeds with
 * the breaker closed brings the level back to 0.
 *
 * One function, set_state in breaker.c, changes the state: it checks each
 * move against the diagram and traces it at debug level (base/state.h),
 * and logs opening at warn (with the reason), closing at info (with how
 * long the store was down and how many probes it took), a failed probe at
 * debug.
 */
#ifndef EDDY_WORKER_BREAKER_H
#define EDDY_WORKER_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/clock.h"
#include "base/err.h"
#include "eddy/rng.h"

#define EDDY_BREAKER_PROBE_MIN_MS 250u
#define EDDY_BREAKER_PROBE_MAX_MS 2000u

enum eddy_breaker_state { EDDY_BREAKER_CLOSED, EDDY_BREAKER_OPEN, EDDY_BREAKER_PROBING };

struct eddy_breaker_config {
    const char *name;               /* the dependency, for logs ("DynamoDB"); borrowed */
    uint32_t probe_min_ms;          /* first delay; 0: EDDY_BREAKER_PROBE_MIN_MS */
    uint32_t probe_max_ms;          /* largest delay; 0: EDDY_BREAKER_PROBE_MAX_MS */
    const struct eddy_clock *clock; /* NULL: the system clock */
    uint64_t seed;                  /* jitter */
};

struct eddy_breaker {
    struct eddy_breaker_config cfg;
    enum eddy_breaker_state state;
    unsigned level;       /* exponent of the next delay */
    bool unproven;        /* closed by a probe; no other call has succeeded since */
    uint64_t opened_ms;   /* when the current outage began */
    uint64_t probe_at_ms; /* OPEN: when the next probe is due */
    uint32_t outage_probes;
    struct eddy_rng rng;
    /* totals since init */
    uint64_t opens, probes, probe_failures;
};

void eddy_breaker_init(struct eddy_breaker *b, const struct eddy_breaker_config *cfg);

/* Whether an error means the store is down rather than the request being
 * wrong: EDDY_ENET, EDDY_ETIMEOUT, EDDY_ETRANSIENT, EDDY_ETHROTTLED. */
bool eddy_breaker_store_down(eddy_err err);

static inline bool eddy_breaker_closed(const struct eddy_breaker *b)
{
    return b->state == EDDY_BREAKER_CLOSED;
}

/* A store call failed because the store is down (why: the detail, for the
 * log). CLOSED: opens. OPEN or PROBING: nothing changes (a call sent before
 * the breaker opened; the probe decides). */
void eddy_breaker_failure(struct eddy_breaker *b, const char *why);
/* A store call succeeded: closes. */
void eddy_breaker_success(struct eddy_breaker *b);

/* OPEN: milliseconds until the next probe is due (0: due now). Otherwise 0. */
uint64_t eddy_breaker_wait_ms(const struct eddy_breaker *b);
/* OPEN and due: go PROBING and return true; the caller starts one probe and
 * reports it with eddy_breaker_probe_done. Otherwise false. */
bool eddy_breaker_probe_start(struct eddy_breaker *b);
/* The probe's outcome (why: its error when it failed). PROBING only. */
void eddy_breaker_probe_done(struct eddy_breaker *b, bool ok, const char *why);

/* "closed", "open", "probing". */
const char *eddy_breaker_state_name(enum eddy_breaker_state s);

#endif
