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

/* The puts return nothing; a refused one is remembered until reset, and
 * leaves the text as it was. */
static void test_puts_remember_refusal(void **state)
{
    (void)state;
    struct eddy_buf b;
    eddy_buf_init(&b, 8);
    eddy_buf_puts(&b, "abc");
    eddy_buf_putc(&b, 'd');
    assert_false(eddy_buf_refused(&b));
    eddy_buf_puts(&b, "efghi"); /* 9 > 8 */
    assert_true(eddy_buf_refused(&b));
    assert_string_equal(eddy_buf_cstr(&b), "abcd");
    eddy_buf_putc(&b, 'e'); /* fits: the refusal is still remembered */
    assert_true(eddy_buf_refused(&b));
    assert_string_equal(eddy_buf_cstr(&b), "abcde");
    eddy_buf_reset(&b);
    assert_false(eddy_buf_refused(&b));
    eddy_buf_putf(&b, "%d-%s", 12345, "long"); /* 10 > 8 */
    assert_true(eddy_buf_refused(&b));
    assert_int_equal(b.len, 0);
    eddy_buf_reset(&b);
    static const unsigned char five[5] = {1, 2, 3, 4, 5};
    eddy_buf_put_hex(&b, five, 5); /* 10 > 8 */
    assert_true(eddy_buf_refused(&b));
    eddy_buf_reset(&b);
    assert_int_equal(eddy_buf_append(&b, "123456789", 9), EDDY_ELIMIT);
    assert_true(eddy_buf_refused(&b)); /* an append refused counts too */
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

/* A small text stays in its own bytes, moves to the heap past them with
 * what it had, and truncates back. */
static void test_small_text(void **state)
{
    (void)state;
    struct eddy_sstr t;
    eddy_sstr_init(&t);
    assert_string_equal(t.s, "");
    eddy_sstr_put(&t, "ns/", 3);
    eddy_sstr_put(&t, "id", 2);
    assert_ptr_equal(t.s, t.buf);
    assert_string_equal(t.s, "ns/id");
    char part[100];
    memset(part, 'x', sizeof part);
    for (int i = 0; i < 5; i++)
        eddy_sstr_put(&t, part, sizeof part);
    assert_true(t.s != t.buf); /* 505 bytes: on the heap */
    assert_int_equal(t.len, 505);
    assert_int_equal(strlen(t.s), 505);
    assert_memory_equal(t.s, "ns/idxxx", 8);
    eddy_sstr_truncate(&t, 5);
    assert_string_equal(t.s, "ns/id");
    eddy_sstr_put(&t, ".a", 2);
    assert_string_equal(t.s, "ns/id.a");
    eddy_sstr_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cstr),
        cmocka_unit_test(test_cap_refuses),
        cmocka_unit_test(test_cap_lowered_after_growth),
        cmocka_unit_test(test_long_format),
        cmocka_unit_test(test_take_and_hex),
        cmocka_unit_test(test_puts_remember_refusal),
        cmocka_unit_test(test_small_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
