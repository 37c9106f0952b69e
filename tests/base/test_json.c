/* Unit tests for base/json's arena (cJSON trees parsed into it, freed at
 * once), its pull reader and its exact comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <math.h>

#include "base/alloc.h"
#include "base/json.h"

/* A chunk as json.c lays it out: its data follow this header. */
struct chunk {
    struct chunk *next;
    size_t size;
};

static const struct chunk *first_chunk(const struct eddy_json_arena *a)
{
    return (const void *)a->chunks;
}

/* Whether p lies in one of a's chunks. */
static bool in_arena(const struct eddy_json_arena *a, const void *p)
{
    for (const struct chunk *c = (const void *)a->chunks; c; c = c->next) {
        const char *d = (const char *)(c + 1);
        if ((const char *)p >= d && (const char *)p < d + c->size)
            return true;
    }
    return false;
}

/* Every node and string of the tree lies in a. */
static bool tree_in_arena(const struct eddy_json_arena *a, const cJSON *j)
{
    for (; j; j = j->next) {
        if (!in_arena(a, j) || (j->string && !in_arena(a, j->string)) ||
            (j->valuestring && !in_arena(a, j->valuestring)) || !tree_in_arena(a, j->child))
            return false;
    }
    return true;
}

static void test_parse_in_arena(void **state)
{
    (void)state;
    struct eddy_json_arena a;
    eddy_json_arena_init(&a, 0);
    const char *text = "{\"id\":\"m-1\",\"n\":12345678901234567890123,\"l\":[1,2.5,\"x\"],"
                       "\"o\":{\"k\":true,\"z\":null}}";
    cJSON *root = NULL;
    struct eddy_error err = {0};
    assert_int_equal(eddy_json_parse_in(&a, text, strlen(text), &root, &err), EDDY_OK);
    assert_true(tree_in_arena(&a, root));
    /* the exact reader's Raw number came from the arena too */
    assert_true(cJSON_IsRaw(cJSON_GetObjectItemCaseSensitive(root, "n")));
    char *printed = cJSON_PrintUnformatted(root); /* outside the arena: malloc'd */
    assert_false(in_arena(&a, printed));
    assert_string_equal(printed, text);
    free(printed);
    eddy_json_arena_cleanup(&a);
    assert_null(a.chunks);
}

/* A tree bigger than the first chunk spreads over several; a refused text
 * leaves nothing behind (the partial tree went with the arena). */
static void test_chunks_grow_and_refusals(void **state)
{
    (void)state;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_puts(&b, "[");
    for (int i = 0; i < 3000; i++)
        eddy_buf_putf(&b, "%s{\"k%d\":\"v%d\"}", i ? "," : "", i, i);
    eddy_buf_puts(&b, "]");
    struct eddy_json_arena a;
    eddy_json_arena_init(&a, 0);
    cJSON *root = NULL;
    assert_int_equal(eddy_json_parse_in(&a, b.ptr, b.len, &root, NULL), EDDY_OK);
    assert_int_equal(cJSON_GetArraySize(root), 3000);
    assert_true(tree_in_arena(&a, root));
    assert_non_null(first_chunk(&a)->next);
    assert_string_equal(cJSON_GetArrayItem(root, 2999)->child->valuestring, "v2999");
    eddy_json_arena_cleanup(&a);
    struct eddy_error err = {0};
    b.ptr[b.len - 1] = ','; /* no closing bracket */
    root = NULL;
    assert_int_equal(eddy_json_parse_in(&a, b.ptr, b.len, &root, &err), EDDY_EPARSE);
    assert_null(root);
    eddy_json_arena_cleanup(&a);
    eddy_buf_cleanup(&b);
}

/* Outside the arena cJSON allocates and frees as ever; enter and leave nest. */
static void test_enter_leave(void **state)
{
    (void)state;
    struct eddy_json_arena a, b;
    eddy_json_arena_init(&a, 0);
    eddy_json_arena_init(&b, 100000);
    struct eddy_json_arena *prev = eddy_json_arena_enter(&a);
    cJSON *x = cJSON_CreateString("in a");
    struct eddy_json_arena *prev2 = eddy_json_arena_enter(&b);
    assert_ptr_equal(prev2, &a);
    cJSON *y = cJSON_CreateString("in b");
    cJSON_Delete(y); /* nothing: b frees it */
    eddy_json_arena_leave(prev2);
    cJSON *z = cJSON_CreateString("in a again");
    eddy_json_arena_leave(prev);
    cJSON *outside = cJSON_CreateString("malloc'd");
    assert_true(in_arena(&a, x) && in_arena(&a, z) && in_arena(&b, y));
    assert_false(in_arena(&a, outside) || in_arena(&b, outside));
    assert_true(first_chunk(&b)->size >= 100000);
    cJSON_Delete(outside);
    eddy_json_arena_cleanup(&a);
    eddy_json_arena_cleanup(&b);
}

/* Strings kept beside a tree, and a request bigger than any chunk. */
/* The table reader: the first member of each name, the others skipped,
 * every field cleared first; a value that is not an object is skipped. */
static void test_jr_fields(void **state)
{
    (void)state;
    static const char text[] = "[{\"b\":7,\"x\":{\"a\":\"no\"},\"a\":\"q\\\"\",\"a\":\"second\"},"
                               "\"str\",{}]";
    static const struct eddy_str names[2] = {{"a", 1}, {"b", 1}};
    struct eddy_jr r;
    struct eddy_jr_field f[2];
    eddy_jr_init(&r, text, sizeof text - 1);
    assert_true(eddy_jr_array(&r));
    assert_true(eddy_jr_element(&r));
    assert_true(eddy_jr_fields(&r, names, 2, f));
    char *a = eddy_jr_field_strdup(&f[0]);
    assert_string_equal(a, "q\"");
    free(a);
    assert_int_equal(f[1].type, EDDY_JR_NUMBER);
    assert_int_equal((int)eddy_jr_field_double(&f[1]), 7);
    assert_true(eddy_jr_element(&r));
    assert_false(eddy_jr_fields(&r, names, 2, f)); /* a string: skipped */
    assert_int_equal(f[0].type, EDDY_JR_END);
    assert_int_equal(f[1].type, EDDY_JR_END);
    assert_true(eddy_jr_element(&r));
    assert_true(eddy_jr_fields(&r, names, 2, f));
    assert_int_equal(f[0].type, EDDY_JR_END);
    assert_false(eddy_jr_element(&r));
    assert_int_equal(eddy_jr_finish(&r), EDDY_OK);
}

/* The exact reader skips strings eight bytes at a time when it looks for
 * numbers: a control byte, a \u0000, an escaped quote or backslash, or a
 * number right after a string, at every offset of a word, is still seen. */
static void test_strings_at_every_offset(void **state)
{
    (void)state;
    for (size_t at = 0; at < 20; at++) {
        char pad[24];
        memset(pad, 'a', at);
        pad[at] = '\0';
        char text[128];
        cJSON *root = NULL;
        struct eddy_error err = {0};

        snprintf(text, sizeof text, "{\"k\":\"%s\x01tail\"}", pad);
        assert_int_equal(eddy_json_parse(text, strlen(text), &root, &err), EDDY_EPARSE);
        assert_non_null(strstr(err.detail, "control character in a string"));

        snprintf(text, sizeof text, "{\"k\":\"%s\\u0000\"}", pad);
        assert_int_equal(eddy_json_parse(text, strlen(text), &root, &err), EDDY_EPARSE);
        assert_non_null(strstr(err.detail, "\\u0000"));

        snprintf(text, sizeof text, "{\"k\":\"%s\\\"12\\\\\",\"n\":%s1234567890123456789012}", pad,
                 pad[0] ? "" : "-");
        assert_int_equal(eddy_json_parse(text, strlen(text), &root, &err), EDDY_OK);
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "k");
        char want[64];
        snprintf(want, sizeof want, "%s\"12\\", pad);
        assert_string_equal(k->valuestring, want);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "n");
        assert_true(cJSON_IsRaw(n)); /* found as a number token: kept exact */
        assert_string_equal(n->valuestring,
                            pad[0] ? "1234567890123456789012" : "-1234567890123456789012");
        cJSON_Delete(root);
    }
}

static void test_alloc(void **state)
{
    (void)state;
    struct eddy_json_arena a;
    eddy_json_arena_init(&a, 0);
    char *s = eddy_json_arena_strndup(&a, "abcdef", 3);
    assert_string_equal(s, "abc");
    size_t big = 3u << 20;
    char *p = eddy_json_arena_alloc(&a, big);
    memset(p, 1, big);
    assert_true(in_arena(&a, p) && in_arena(&a, p + big - 1) && in_arena(&a, s));
    assert_int_equal((uintptr_t)eddy_json_arena_alloc(&a, 1) % 8, 0);
    eddy_json_arena_cleanup(&a);
    /* a zeroed arena works as an initialised one */
    struct eddy_json_arena z = {0};
    assert_non_null(eddy_json_arena_alloc(&z, 10));
    eddy_json_arena_cleanup(&z);
}

/*
 * A copy sized by eddy_json_copy_size fills an exact arena to its last
 * byte: the same value (keys, strings, Raw numbers), cJSON's links, every
 * part in the arena, nothing of the original.
 */
static void test_copy_into_exact_arena(void **state)
{
    (void)state;
    const char *text = "{\"k\":\"v\",\"n\":[1,2.5,12345678901234567890123,{\"deep\":[[true]]}],"
                       "\"e\":{},\"z\":null,\"\":\"empty name\"}";
    cJSON *src = NULL;
    struct eddy_error err = {0};
    assert_int_equal(eddy_json_parse(text, strlen(text), &src, &err), EDDY_OK);
    cJSON *k = cJSON_GetObjectItemCaseSensitive(src, "k"); /* a copy with its key */
    size_t size = eddy_json_copy_size(src) + eddy_json_copy_size(k);
    struct eddy_json_arena a;
    eddy_json_arena_init_exact(&a, size);
    cJSON *copy = eddy_json_arena_copy(&a, src);
    cJSON *kc = eddy_json_arena_copy(&a, k);
    assert_int_equal(first_chunk(&a)->size, size);
    assert_null(first_chunk(&a)->next);
    assert_ptr_equal(a.cur, a.end); /* filled exactly */
    assert_true(tree_in_arena(&a, copy) && tree_in_arena(&a, kc));
    assert_null(copy->next);
    assert_null(kc->next);
    assert_null(kc->prev);
    assert_string_equal(kc->string, "k");
    char *x = cJSON_PrintUnformatted(src);
    char *y = cJSON_PrintUnformatted(copy);
    assert_string_equal(x, y);
    free(x);
    free(y);
    cJSON *n = cJSON_GetObjectItemCaseSensitive(copy, "n");
    assert_ptr_equal(n->child->prev, cJSON_GetArrayItem(n, 3));
    assert_ptr_equal(copy->child->prev, cJSON_GetObjectItemCaseSensitive(copy, ""));
    assert_true(cJSON_IsRaw(cJSON_GetArrayItem(n, 2)));
    cJSON_Delete(src);
    /* more than asked still works, in a further chunk */
    assert_non_null(eddy_json_arena_strndup(&a, "more", 4));
    assert_non_null(first_chunk(&a)->next);
    eddy_json_arena_cleanup(&a);
    /* an exact chunk is never handed out as a cached one of its class */
    eddy_json_arena_init_exact(&a, 300);
    assert_non_null(eddy_json_arena_alloc(&a, 8));
    assert_int_equal(first_chunk(&a)->size, 300);
    eddy_json_arena_cleanup(&a);
    struct eddy_json_arena b;
    eddy_json_arena_init(&b, 300);
    assert_non_null(eddy_json_arena_alloc(&b, 8));
    assert_int_equal(first_chunk(&b)->size, 512);
    eddy_json_arena_cleanup(&b);
}

static cJSON *parse_exact(const char *text)
{
    cJSON *j = NULL;
    struct eddy_error err = {0};
    if (eddy_json_parse(text, strlen(text), &j, &err) != EDDY_OK)
        fail_msg("bad test JSON %s: %s", text, err.detail);
    return j;
}

static void expect_equal(const char *a_text, const char *b_text, bool want)
{
    cJSON *a = parse_exact(a_text), *b = parse_exact(b_text);
    if (eddy_json_equal(a, b) != want || eddy_json_equal(b, a) != want)
        fail_msg("%s and %s: want %s", a_text, b_text, want ? "equal" : "different");
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Equal means the same value exactly: numbers by decimal value, not within
 * an ulp as cJSON_Compare takes them. */
static void test_equal_exact(void **state)
{
    (void)state;
    expect_equal("[10000000000000002]", "[10000000000000000]", false);
    expect_equal("0.30000000000000004", "0.3", false);
    expect_equal("1.0000000000000002", "1", false);
    expect_equal("[1.5,1e2,-0]", "[1.50,100,0]", true);
    /* a Raw item (a double cannot hold it) against a number, and its digits */
    expect_equal("12345678901234567890", "12345678901234567890.0", true);
    expect_equal("12345678901234567890", "12345678901234567000", false);
    expect_equal("{\"a\":1,\"b\":[true,null,\"x\"]}", "{\"b\":[true,null,\"x\"],\"a\":1}", true);
    expect_equal("{\"a\":1}", "{\"A\":1}", false);
    expect_equal("{\"a\":1}", "{\"a\":1,\"b\":2}", false);
    expect_equal("[1,2]", "[1,2,3]", false);
    expect_equal("[\"1\"]", "[1]", false);
    expect_equal("\"caf\u00e9\"", "\"cafe\\u0301\"", false);
    expect_equal("true", "false", false);
    expect_equal("null", "false", false);
    cJSON *nan = cJSON_CreateNumber(NAN);
    assert_false(eddy_json_equal(nan, nan));
    assert_false(eddy_json_equal(nan, NULL));
    cJSON_Delete(nan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_in_arena), cmocka_unit_test(test_chunks_grow_and_refusals),
        cmocka_unit_test(test_enter_leave),    cmocka_unit_test(test_strings_at_every_offset),
        cmocka_unit_test(test_alloc),          cmocka_unit_test(test_copy_into_exact_arena),
        cmocka_unit_test(test_jr_fields),      cmocka_unit_test(test_equal_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
