/* Unit tests for base/err: the table and detail text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(eddy_err_name(EDDY_ELIMIT), "EDDY_ELIMIT");
    assert_string_equal(eddy_err_msg(EDDY_OK), "success");
    assert_string_equal(eddy_err_msg(EDDY_EPOISON), "undecodable message");
    assert_string_equal(eddy_err_name((eddy_err)999), "EDDY_EUNKNOWN");
}

static void test_detail(void **state)
{
    (void)state;
    struct eddy_error e;
    eddy_error_clear(&e);
    assert_string_equal(eddy_error_text(&e), "success");
    assert_int_equal(eddy_error_set(&e, EDDY_ELIMIT, "item is %d bytes", 500000), EDDY_ELIMIT);
    assert_int_equal(e.code, EDDY_ELIMIT);
    assert_string_equal(eddy_error_text(&e), "item is 500000 bytes");
    assert_int_equal(eddy_error_set(NULL, EDDY_EIO, "ignored"), EDDY_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
