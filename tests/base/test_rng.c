/* Unit tests for the deterministic generator and FNV-1a. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "eddy/rng.h"

static void test_fnv_vectors(void **state)
{
    (void)state;
    /* Published FNV-1a test vectors. */
    assert_int_equal(eddy_fnv1a32("", 0), 0x811c9dc5u);
    assert_int_equal(eddy_fnv1a32("a", 1), 0xe40c292cu);
    assert_int_equal(eddy_fnv1a32("foobar", 6), 0xbf9cf968u);
    assert_true(eddy_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(eddy_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
}

static void test_splitmix_xoshiro_reference(void **state)
{
    (void)state;
    /* xoshiro256** seeded by SplitMix64(0): first SplitMix64 output is
     * 0xe220a8397b1dcdaf, the reference value of Vigna's splitmix64.c. */
    struct eddy_rng r;
    eddy_rng_seed(&r, 0);
    assert_true(r.s[0] == 0xe220a8397b1dcdafull);
    assert_true(r.s[1] == 0x6e789e6aa1b965f4ull);
}

static void test_same_seed_same_stream(void **state)
{
    (void)state;
    struct eddy_rng a, b;
    eddy_rng_seed_bytes(&a, "evt-1", 5);
    eddy_rng_seed_bytes(&b, "evt-1", 5);
    for (int i = 0; i < 100; i++)
        assert_true(eddy_rng_next(&a) == eddy_rng_next(&b));
    eddy_rng_seed_bytes(&b, "evt-2", 5);
    assert_true(eddy_rng_next(&a) != eddy_rng_next(&b));
}

static void test_float_range(void **state)
{
    (void)state;
    struct eddy_rng r;
    eddy_rng_seed(&r, 42);
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        double x = eddy_rng_float64(&r);
        assert_true(x >= 0.0 && x < 1.0);
        sum += x;
    }
    assert_true(sum > 4800 && sum < 5200);
    for (int i = 0; i < 1000; i++)
        assert_true(eddy_rng_below(&r, 7) < 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv_vectors),
        cmocka_unit_test(test_splitmix_xoshiro_reference),
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_float_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
