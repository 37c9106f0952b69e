/* Unit tests for base/buf: growth, the cap, take, hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/buf.h"

static void test_append_and_cstr(void **state)
{
    (void)state;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    assert_string_equal(eddy_buf_cstr(&b), "");
    assert_int_equal(eddy_buf_appends(&b, "hello"), EDDY_OK);
    assert_int_equal(eddy_buf_appendf(&b, " %d", 42), EDDY_OK);
    assert_string_equal(eddy_buf_cstr(&b), "hello 42");
    assert_int_equal(b.len, 8);
    eddy_buf_cleanup(&b);
}

static void test_cap_refuses(void **state)
{
    (void)state;
    struct eddy_buf b;
    eddy_buf_init(&b, 10);
    assert_int_equal(eddy_buf_appends(&b, "0123456789"), EDDY_OK);
    assert_int_equal(eddy_buf_appendc(&b, 'x'), EDDY_ELIMIT);
    assert_int_equal(b.len, 10);
    assert_string_equal(eddy_buf_cstr(&b), "0123456789");
    eddy_buf_cleanup(&b);
}

/* A cap lowered below the room already allocated (a reused buffer given a
 * smaller limit) still holds, in the path that needs no growth too. */
static void test_cap_lowered_after_growth(void **state)
{
    (void)state;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    assert_int_equal(eddy_buf_reserve(&b, 100), EDDY_OK);
    b.max = 4;
    assert_int_equal(eddy_buf_appends(&b, "abcd"), EDDY_OK);
    assert_int_equal(eddy_buf_appendc(&b, 'e'), EDDY_ELIMIT);
    assert_int_equal(eddy_buf_append(&b, "e", 1), EDDY_ELIMIT);
    assert_int_equal(eddy_buf_append(&b, NULL, 0), EDDY_OK);
    assert_string_equal(eddy_buf_cstr(&b), "abcd");
    eddy_buf_reset(&b);
    assert_int_equal(eddy_buf_appends(&b, "abcde"), EDDY_ELIMIT);
    assert_int_equal(b.len, 0);
    eddy_buf_cleanup(&b);
}

static void test_long_format(void **state)
{
    (void)state;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(eddy_buf_appendf(&b, "<%s>", big), EDDY_OK);
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.ptr[0], '<');
    assert_int_equal(b.ptr[1000], '>');
    eddy_buf_cleanup(&b);
}

static void test_take_and_hex(void **state)
{
    (void)state;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    const unsigned char bytes[] = {0x00, 0xab, 0xff};
    assert_int_equal(eddy_buf_append_hex(&b, bytes, 3), EDDY_OK);
    size_t n;
    char *p = eddy_buf_take(&b, &n);
    assert_string_equal(p, "00abff");
    assert_int_equal(n, 6);
    assert_null(b.ptr);
    free(p);
    eddy_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cstr),
        cmocka_unit_test(test_cap_refuses),
        cmocka_unit_test(test_cap_lowered_after_growth),
        cmocka_unit_test(test_long_format),
        cmocka_unit_test(test_take_and_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
