/* Unit tests for base/clock: time formatting against the C library's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "eddy/rng.h"

static void check(int64_t unix_s)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char want[32], got[32];
    strftime(want, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
    eddy_time_rfc3339(unix_s, got);
    assert_string_equal(got, want);
    strftime(want, 17, "%Y%m%dT%H%M%SZ", &tm);
    eddy_time_amz(unix_s, got);
    assert_string_equal(got, want);
}

/* Leap days, century rules, the ends of four-digit years, before 1970, and
 * random times over years 1970..9999: the same text as gmtime_r +
 * strftime (which the years outside that span are left to). */
static void test_formats_match_libc(void **state)
{
    (void)state;
    static const int64_t fixed[] = {
        0,
        -1,
        -86400,
        -86401,
        951782400,             /* 2000-02-29 */
        4107542400,            /* 2100-03-01 */
        4102444799,            /* 2099-12-31T23:59:59 */
        1709164800,            /* 2024-02-29 */
        INT64_C(253402300799), /* 9999-12-31T23:59:59 */
        INT64_C(-62167219200), /* 0000-01-01T00:00:00 */
        INT64_C(-62162035200), /* 0000-03-01 (year 0 is a leap year) */
        INT64_C(-2208988800),  /* 1900-01-01 */
        INT64_C(-2203891200),  /* 1900-03-01 (1900 is not) */
    };
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(fixed); i++)
        check(fixed[i]);
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 7);
    for (int i = 0; i < 20000; i++)
        check((int64_t)eddy_rng_below(&rng, UINT64_C(253402300800)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_match_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
