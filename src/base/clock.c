/*
 * clock.c - the system clock, a fake clock, and time formatting.
 */
#include "base/clock.h"

#include <stdio.h>
#include <time.h>

static uint64_t system_mono_ms(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t system_unix_ms(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct eddy_clock system_clock = {NULL, system_mono_ms, system_unix_ms};

const struct eddy_clock *eddy_clock_system(void)
{
    return &system_clock;
}

static uint64_t fake_mono_ms(void *ud)
{
    return ((struct eddy_clock_fake *)ud)->mono;
}

static int64_t fake_unix_ms(void *ud)
{
    return ((struct eddy_clock_fake *)ud)->unix_ms;
}

void eddy_clock_fake_init(struct eddy_clock_fake *f, int64_t unix_ms)
{
    f->clock.ud = f;
    f->clock.mono_ms = fake_mono_ms;
    f->clock.unix_ms = fake_unix_ms;
    f->mono = 1000000;
    f->unix_ms = unix_ms;
}

void eddy_clock_fake_advance(struct eddy_clock_fake *f, uint64_t ms)
{
    f->mono += ms;
    f->unix_ms += (int64_t)ms;
}

static void utc(int64_t unix_s, struct tm *tm)
{
    time_t t = (time_t)unix_s;
    gmtime_r(&t, tm);
}

void eddy_time_rfc3339(int64_t unix_s, char out[21])
{
    struct tm tm;
    utc(unix_s, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void eddy_time_amz(int64_t unix_s, char out[17])
{
    struct tm tm;
    utc(unix_s, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
