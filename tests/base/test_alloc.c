/* Unit tests for base/alloc: the allocator tuning takes effect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/alloc.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* After eddy_alloc_tune, small blocks freed past the per-thread cache go
 * into no fast bin (which glibc would merge again and again before every
 * request of 1 KiB or more). */
static void test_no_fast_bins(void **state)
{
    (void)state;
#if defined(__GLIBC__) && defined(M_MXFAST)
    eddy_alloc_tune();
    void *p[200];
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(p); i++)
        p[i] = eddy_malloc(24 + (i % 4) * 16);
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(p); i++)
        free(p[i]);
    struct mallinfo2 m = mallinfo2();
    assert_int_equal(m.smblks, 0);
    assert_int_equal(m.fsmblks, 0);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_fast_bins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
