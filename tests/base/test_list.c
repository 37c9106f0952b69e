/* Unit tests for base/list: the intrusive ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/list.h"

struct item {
    int v;
    struct eddy_list link;
};

static int values(struct eddy_list *h, int *out, int max)
{
    int n = 0;
    struct eddy_list *q;
    eddy_list_foreach(q, h)
    {
        if (n < max)
            out[n] = eddy_list_data(q, struct item, link)->v;
        n++;
    }
    return n;
}

static void test_list(void **state)
{
    (void)state;
    struct eddy_list h;
    eddy_list_init(&h);
    assert_true(eddy_list_empty(&h));
    assert_null(eddy_list_head(&h));
    struct item it[4] = {{1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}};
    for (int i = 0; i < 4; i++)
        eddy_list_init(&it[i].link);
    assert_false(eddy_list_linked(&it[0].link));
    eddy_list_insert_tail(&h, &it[1].link);
    eddy_list_insert_tail(&h, &it[2].link);
    eddy_list_insert_head(&h, &it[0].link);
    eddy_list_insert_tail(&h, &it[3].link);
    int v[8];
    assert_int_equal(values(&h, v, 8), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(v[i], i + 1);
    assert_true(eddy_list_linked(&it[2].link));
    eddy_list_remove(&it[2].link);
    assert_false(eddy_list_linked(&it[2].link));
    assert_int_equal(values(&h, v, 8), 3);
    assert_int_equal(v[2], 4);
    /* removing while walking */
    struct eddy_list *q, *n;
    eddy_list_foreach_safe(q, n, &h)
    {
        eddy_list_remove(q);
    }
    assert_true(eddy_list_empty(&h));
}

/* Moving a list aside keeps its order and leaves it empty and usable. */
static void test_list_move(void **state)
{
    (void)state;
    struct eddy_list h, aside;
    eddy_list_init(&h);
    eddy_list_move(&h, &aside); /* an empty list moves as an empty one */
    assert_true(eddy_list_empty(&aside));
    struct item it[3] = {{1, {0}}, {2, {0}}, {3, {0}}};
    for (int i = 0; i < 3; i++)
        eddy_list_insert_tail(&h, &it[i].link);
    eddy_list_move(&h, &aside);
    assert_true(eddy_list_empty(&h));
    int v[8];
    assert_int_equal(values(&aside, v, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(v[i], i + 1);
    assert_ptr_equal(aside.prev, &it[2].link);
    assert_ptr_equal(it[0].link.prev, &aside);
    eddy_list_remove(&it[1].link);
    eddy_list_insert_tail(&h, &it[1].link);
    assert_int_equal(values(&h, v, 8), 1);
    assert_int_equal(values(&aside, v, 8), 2);
    assert_int_equal(v[1], 3);
}

/* Taking the head: in order, each taken element unlinked, then NULL. */
static void test_list_take(void **state)
{
    (void)state;
    struct eddy_list h;
    eddy_list_init(&h);
    assert_null(eddy_list_take(&h));
    struct item it[2] = {{1, {0}}, {2, {0}}};
    for (int i = 0; i < 2; i++)
        eddy_list_insert_tail(&h, &it[i].link);
    assert_ptr_equal(eddy_list_take(&h), &it[0].link);
    assert_false(eddy_list_linked(&it[0].link));
    assert_ptr_equal(eddy_list_take(&h), &it[1].link);
    assert_true(eddy_list_empty(&h));
    assert_null(eddy_list_take(&h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_list_move),
        cmocka_unit_test(test_list_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
