/*
 * clock.c - the system clock, a fake clock, and time formatting.
 */
#include "base/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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

/*
 * Time formatting runs for every AWS call (X-Amz-Date) and every event
 * record, so it is arithmetic (the civil-from-days conversion of H.
 * Hinnant's date algorithms) rather than gmtime_r and strftime. Times
 * before 1970 or past 9999 (never eddy's) take the C library's path, which
 * writes such years with other than four digits.
 */
struct civil {
    unsigned y, m, d, hh, mm, ss;
};

#define YEAR_10000_S INT64_C(253402300800)

static bool civil(int64_t unix_s, struct civil *c)
{
    if (unix_s < 0 || unix_s >= YEAR_10000_S)
        return false;
    int64_t days = unix_s / 86400, secs = unix_s % 86400;
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    c->d = doy - (153 * mp + 2) / 5 + 1;
    c->m = mp < 10 ? mp + 3 : mp - 9;
    c->y = (unsigned)(yoe + era * 400 + (c->m <= 2));
    c->hh = (unsigned)secs / 3600;
    c->mm = (unsigned)secs / 60 % 60;
    c->ss = (unsigned)secs % 60;
    return true;
}

static char *digits(char *out, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return out + width;
}

static void utc(int64_t unix_s, struct tm *tm)
{
    time_t t = (time_t)unix_s;
    gmtime_r(&t, tm);
}

/* "YYYY-MM-DDTHH:MM:SSZ" with separators, "YYYYMMDDTHHMMSSZ" without;
 * years civil() does not take go through gmtime_r and strftime. */
static void stamp(int64_t unix_s, bool seps, char *out, size_t size)
{
    struct civil c;
    if (!civil(unix_s, &c)) {
        struct tm tm;
        utc(unix_s, &tm);
        strftime(out, size, seps ? "%Y-%m-%dT%H:%M:%SZ" : "%Y%m%dT%H%M%SZ", &tm);
        return;
    }
    const unsigned v[6] = {c.y, c.m, c.d, c.hh, c.mm, c.ss};
    char *p = out;
    for (int i = 0; i < 6; i++) {
        if (i == 3)
            *p++ = 'T';
        else if (i > 0 && seps)
            *p++ = i < 3 ? '-' : ':';
        p = digits(p, v[i], i == 0 ? 4 : 2);
    }
    memcpy(p, "Z", 2);
}

void eddy_time_rfc3339(int64_t unix_s, char out[21])
{
    stamp(unix_s, true, out, 21);
}

void eddy_time_amz(int64_t unix_s, char out[17])
{
    stamp(unix_s, false, out, 17);
}
