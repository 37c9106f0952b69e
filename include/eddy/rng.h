/*
 * rng.h - the deterministic random generator machines use.
 *
 * A machine must give the same result when its events are replayed, so it
 * never calls rand() or reads the clock. eddy hands process() a generator
 * seeded from the event id:
 *
 *   seed  = FNV-1a 64-bit hash of the event id bytes
 *   state = four successive outputs of SplitMix64 started at seed
 *   next  = xoshiro256** (Blackman and Vigna, 2018) over that state
 *   float = (next >> 11) * 2^-53, uniform in [0, 1)
 *
 * The algorithm is part of eddy's compatibility promise: changing it would
 * change the outcome of replay for every stored event.
 */
#ifndef EDDY_RNG_H
#define EDDY_RNG_H

#include <stddef.h>
#include <stdint.h>

struct eddy_rng {
    uint64_t s[4];
};

void eddy_rng_seed(struct eddy_rng *r, uint64_t seed);
void eddy_rng_seed_bytes(struct eddy_rng *r, const void *p, size_t n);
uint64_t eddy_rng_next(struct eddy_rng *r);
/* Uniform in [0, 1). */
double eddy_rng_float64(struct eddy_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t eddy_rng_below(struct eddy_rng *r, uint64_t n);

/* FNV-1a hashes, also used for outbox sharding. */
uint32_t eddy_fnv1a32(const void *p, size_t n);
uint64_t eddy_fnv1a64(const void *p, size_t n);

#endif
