/*
 * clock.h - injected time.
 *
 * Retries, backoff, leases, credential expiry and dedupe TTLs all read the
 * time through a struct eddy_clock, so tests drive them with a fake clock
 * instead of sleeping.
 */
#ifndef EDDY_BASE_CLOCK_H
#define EDDY_BASE_CLOCK_H

#include <stdint.h>

struct eddy_clock {
    void *ud;
    uint64_t (*mono_ms)(void *ud); /* monotonic milliseconds */
    int64_t (*unix_ms)(void *ud);  /* wall clock, ms since 1970 */
};

/* The real clocks (CLOCK_MONOTONIC and CLOCK_REALTIME). */
const struct eddy_clock *eddy_clock_system(void);

static inline uint64_t eddy_clock_mono_ms(const struct eddy_clock *c)
{
    return c->mono_ms(c->ud);
}
static inline int64_t eddy_clock_unix_ms(const struct eddy_clock *c)
{
    return c->unix_ms(c->ud);
}

/* A clock that moves only when told to, for tests. */
struct eddy_clock_fake {
    struct eddy_clock clock;
    uint64_t mono;
    int64_t unix_ms;
};
void eddy_clock_fake_init(struct eddy_clock_fake *f, int64_t unix_ms);
void eddy_clock_fake_advance(struct eddy_clock_fake *f, uint64_t ms);

/* Format unix seconds as RFC 3339 UTC ("2006-01-02T15:04:05Z"); out >= 21 bytes. */
void eddy_time_rfc3339(int64_t unix_s, char out[21]);
/* Format as SigV4 wants: "20150830T123600Z" (out >= 17) and "20150830" (out >= 9). */
void eddy_time_amz(int64_t unix_s, char out[17]);

#endif
