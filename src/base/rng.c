/*
 * rng.c - SplitMix64-seeded xoshiro256** and FNV-1a (see include/eddy/rng.h).
 */
#include "eddy/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void eddy_rng_seed(struct eddy_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

void eddy_rng_seed_bytes(struct eddy_rng *r, const void *p, size_t n)
{
    eddy_rng_seed(r, eddy_fnv1a64(p, n));
}

uint64_t eddy_rng_next(struct eddy_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double eddy_rng_float64(struct eddy_rng *r)
{
    return (double)(eddy_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t eddy_rng_below(struct eddy_rng *r, uint64_t n)
{
    /* Rejection sampling keeps the result unbiased. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = eddy_rng_next(r);
    while (x >= limit);
    return x % n;
}

uint32_t eddy_fnv1a32(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

uint64_t eddy_fnv1a64(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}
