/* Unit tests for worker/lru: the hash map and the LRU cache on top of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/lru.h"

/* Values are heap ints; freed ones are recorded so tests can see what went. */
static int freed[64];
static size_t nfreed;

static void free_int(void *p)
{
    if (nfreed < EDDY_ARRAY_SIZE(freed))
        freed[nfreed++] = *(int *)p;
    free(p);
}

static int *new_int(int v)
{
    int *p = eddy_malloc(sizeof *p);
    *p = v;
    return p;
}

static int get_int(struct eddy_lru *l, const char *key)
{
    int *p = eddy_lru_get(l, eddy_str_c(key));
    return p != NULL ? *p : -1;
}

static void test_map_put_get_remove(void **state)
{
    (void)state;
    struct eddy_map m;
    eddy_map_init(&m, 7);
    int a = 1, b = 2, c = 3;
    assert_null(eddy_map_get(&m, eddy_str_c("a")));
    assert_null(eddy_map_put(&m, eddy_str_c("a"), &a));
    assert_null(eddy_map_put(&m, eddy_str_c("b"), &b));
    assert_ptr_equal(eddy_map_get(&m, eddy_str_c("a")), &a);
    assert_ptr_equal(eddy_map_put(&m, eddy_str_c("a"), &c), &a);
    assert_ptr_equal(eddy_map_get(&m, eddy_str_c("a")), &c);
    assert_int_equal(eddy_map_count(&m), 2);
    /* Keys are bytes with a length, not C strings: "a\0x" differs from "a". */
    assert_null(eddy_map_get(&m, (struct eddy_str){"a\0x", 3}));
    assert_null(eddy_map_put(&m, (struct eddy_str){"", 0}, &b));
    assert_ptr_equal(eddy_map_get(&m, (struct eddy_str){"", 0}), &b);
    assert_ptr_equal(eddy_map_remove(&m, eddy_str_c("a")), &c);
    assert_null(eddy_map_remove(&m, eddy_str_c("a")));
    assert_null(eddy_map_get(&m, eddy_str_c("a")));
    assert_int_equal(eddy_map_count(&m), 2);
    eddy_map_cleanup(&m, NULL);
    assert_int_equal(eddy_map_count(&m), 0);
}

/* Many keys force several resizes; all must still be found, then removed. */
static void test_map_grows(void **state)
{
    (void)state;
    struct eddy_map m;
    eddy_map_init(&m, 0);
    enum { N = 5000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "entity-%d", i);
        assert_null(eddy_map_put(&m, eddy_str_c(key), new_int(i)));
    }
    assert_int_equal(eddy_map_count(&m), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "entity-%d", i);
        int *p = eddy_map_get(&m, eddy_str_c(key));
        assert_non_null(p);
        assert_int_equal(*p, i);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof key, "entity-%d", i);
        free(eddy_map_remove(&m, eddy_str_c(key)));
    }
    assert_int_equal(eddy_map_count(&m), N / 2);
    snprintf(key, sizeof key, "entity-%d", 1);
    assert_non_null(eddy_map_get(&m, eddy_str_c(key)));
    snprintf(key, sizeof key, "entity-%d", 2);
    assert_null(eddy_map_get(&m, eddy_str_c(key)));
    eddy_map_cleanup(&m, free);
}

/* Iteration sees every entry once and allows removing the current one. */
static void test_map_iterate_and_remove(void **state)
{
    (void)state;
    struct eddy_map m;
    eddy_map_init(&m, 3);
    enum { N = 100 };
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        eddy_map_put(&m, eddy_str_c(key), new_int(i));
    }
    bool seen[N] = {false};
    struct eddy_map_iter it;
    struct eddy_str k;
    void *v;
    size_t visits = 0;
    eddy_map_iter_init(&m, &it);
    while (eddy_map_next(&it, &k, &v)) {
        int i = *(int *)v;
        snprintf(key, sizeof key, "k%d", i);
        assert_true(eddy_str_eqc(k, key));
        assert_false(seen[i]);
        seen[i] = true;
        visits++;
        if (i % 3 == 0)
            free(eddy_map_remove(&m, k));
    }
    assert_int_equal(visits, N);
    assert_int_equal(eddy_map_count(&m), N - 34);
    eddy_map_cleanup(&m, free);

    eddy_map_init(&m, 3); /* an empty map iterates to nothing */
    eddy_map_iter_init(&m, &it);
    assert_false(eddy_map_next(&it, &k, &v));
}

static void test_lru_evicts_least_recent(void **state)
{
    (void)state;
    nfreed = 0;
    struct eddy_lru l;
    eddy_lru_init(&l, 3, 1, free_int);
    eddy_lru_put(&l, eddy_str_c("a"), new_int(1));
    eddy_lru_put(&l, eddy_str_c("b"), new_int(2));
    eddy_lru_put(&l, eddy_str_c("c"), new_int(3));
    assert_int_equal(nfreed, 0);
    eddy_lru_put(&l, eddy_str_c("d"), new_int(4)); /* evicts a */
    assert_int_equal(nfreed, 1);
    assert_int_equal(freed[0], 1);
    assert_int_equal(get_int(&l, "a"), -1);
    assert_int_equal(eddy_lru_count(&l), 3);
    /* A get makes b the most recent, so c goes next. */
    assert_int_equal(get_int(&l, "b"), 2);
    eddy_lru_put(&l, eddy_str_c("e"), new_int(5));
    assert_int_equal(nfreed, 2);
    assert_int_equal(freed[1], 3);
    assert_int_equal(get_int(&l, "b"), 2);
    assert_int_equal(get_int(&l, "d"), 4);
    assert_int_equal(get_int(&l, "e"), 5);
    assert_int_equal(l.evictions, 2);
    eddy_lru_cleanup(&l);
    assert_int_equal(nfreed, 5);
}

static void test_lru_update_moves_to_front(void **state)
{
    (void)state;
    nfreed = 0;
    struct eddy_lru l;
    eddy_lru_init(&l, 2, 1, free_int);
    eddy_lru_put(&l, eddy_str_c("x"), new_int(1));
    eddy_lru_put(&l, eddy_str_c("y"), new_int(2));
    eddy_lru_put(&l, eddy_str_c("x"), new_int(10)); /* replaces (frees 1), x in front */
    assert_int_equal(nfreed, 1);
    assert_int_equal(freed[0], 1);
    assert_int_equal(eddy_lru_count(&l), 2);
    eddy_lru_put(&l, eddy_str_c("z"), new_int(3)); /* evicts y, not x */
    assert_int_equal(nfreed, 2);
    assert_int_equal(freed[1], 2);
    assert_int_equal(get_int(&l, "x"), 10);
    assert_int_equal(get_int(&l, "y"), -1);
    /* Putting the very value already stored keeps it alive. */
    int *x = eddy_lru_get(&l, eddy_str_c("x"));
    eddy_lru_put(&l, eddy_str_c("x"), x);
    assert_int_equal(nfreed, 2);
    assert_int_equal(get_int(&l, "x"), 10);
    eddy_lru_cleanup(&l);
}

static void test_lru_capacity_zero(void **state)
{
    (void)state;
    nfreed = 0;
    struct eddy_lru l;
    eddy_lru_init(&l, 0, 1, free_int);
    eddy_lru_put(&l, eddy_str_c("a"), new_int(7));
    assert_int_equal(nfreed, 1);
    assert_int_equal(freed[0], 7);
    assert_int_equal(eddy_lru_count(&l), 0);
    assert_null(eddy_lru_get(&l, eddy_str_c("a")));
    assert_false(eddy_lru_remove(&l, eddy_str_c("a")));
    eddy_lru_cleanup(&l);
}

static void test_lru_remove_and_take(void **state)
{
    (void)state;
    nfreed = 0;
    struct eddy_lru l;
    eddy_lru_init(&l, 4, 1, free_int);
    eddy_lru_put(&l, eddy_str_c("a"), new_int(1));
    eddy_lru_put(&l, eddy_str_c("b"), new_int(2));
    eddy_lru_put(&l, eddy_str_c("c"), new_int(3));
    assert_true(eddy_lru_remove(&l, eddy_str_c("b"))); /* from the middle */
    assert_int_equal(nfreed, 1);
    assert_int_equal(freed[0], 2);
    assert_false(eddy_lru_remove(&l, eddy_str_c("b")));
    int *a = eddy_lru_take(&l, eddy_str_c("a")); /* the tail; the caller owns it now */
    assert_non_null(a);
    assert_int_equal(*a, 1);
    assert_int_equal(nfreed, 1);
    free(a);
    assert_null(eddy_lru_take(&l, eddy_str_c("a")));
    assert_int_equal(eddy_lru_count(&l), 1);
    /* The list is still sound: fill past capacity and evict in order. */
    eddy_lru_put(&l, eddy_str_c("d"), new_int(4));
    eddy_lru_put(&l, eddy_str_c("e"), new_int(5));
    eddy_lru_put(&l, eddy_str_c("f"), new_int(6));
    eddy_lru_put(&l, eddy_str_c("g"), new_int(7)); /* evicts c */
    assert_int_equal(nfreed, 2);
    assert_int_equal(freed[1], 3);
    assert_true(eddy_lru_remove(&l, eddy_str_c("g"))); /* the head */
    eddy_lru_put(&l, eddy_str_c("h"), new_int(8));
    eddy_lru_put(&l, eddy_str_c("i"), new_int(9)); /* evicts d */
    assert_int_equal(freed[nfreed - 1], 4);
    eddy_lru_cleanup(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_put_get_remove),
        cmocka_unit_test(test_map_grows),
        cmocka_unit_test(test_map_iterate_and_remove),
        cmocka_unit_test(test_lru_evicts_least_recent),
        cmocka_unit_test(test_lru_update_moves_to_front),
        cmocka_unit_test(test_lru_capacity_zero),
        cmocka_unit_test(test_lru_remove_and_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
