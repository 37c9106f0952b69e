/* Unit tests for core/attr: exact JSON <-> attribute values, and item sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awscall.h"
#include "core/attr.h"

static cJSON *parse_ok(const char *text)
{
    cJSON *j = NULL;
    struct eddy_error err;
    eddy_error_clear(&err);
    eddy_err rc = eddy_json_parse(text, strlen(text), &j, &err);
    if (rc != EDDY_OK)
        fail_msg("parse of %s failed: %s", text, eddy_error_text(&err));
    return j;
}

static void assert_printed(const cJSON *j, const char *want)
{
    char *s = cJSON_PrintUnformatted(j);
    assert_string_equal(s, want);
    free(s);
}

/* {"v": <num>} -> item -> printed AV, and back to the printed JSON. */
static void roundtrip(const char *num, const char *want_n, bool want_raw)
{
    char text[256];
    snprintf(text, sizeof text, "{\"v\":%s}", num);
    cJSON *j = parse_ok(text);
    assert_int_equal(cJSON_IsRaw(cJSON_GetObjectItem(j, "v")), want_raw);
    cJSON *item = NULL, *back = NULL;
    struct eddy_error err;
    assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_OK);
    char want_av[256];
    snprintf(want_av, sizeof want_av, "{\"v\":{\"N\":\"%s\"}}", want_n);
    assert_printed(item, want_av);
    assert_int_equal(eddy_attr_item_to_json(item, &back, &err), EDDY_OK);
    assert_true(cJSON_Compare(j, back, true));
    char *a = cJSON_PrintUnformatted(j), *b = cJSON_PrintUnformatted(back);
    assert_string_equal(a, b);
    free(a);
    free(b);
    cJSON_Delete(j);
    cJSON_Delete(item);
    cJSON_Delete(back);
}

/* Empty map keys are refused at every depth (stores mangle them, and the
 * record would not read back). */
static void test_empty_names_refused(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"{\"\":1}", "an attribute name may not be empty"},
        {"{\"a\":{\"\":1}}", "a: a member has an empty name"},
        {"{\"a\":[1,{\"b\":{\"\":true}}]}", "a[1].b: a member has an empty name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i][0]), *item = NULL;
        struct eddy_error err = {0};
        assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_EINVAL);
        assert_null(item);
        assert_string_equal(err.detail, cases[i][1]);
        cJSON_Delete(j);
    }
}

/* A long path is cut in an error, so the reason after it survives. */
static void test_long_path_keeps_reason(void **state)
{
    (void)state;
    char name[1001];
    memset(name, 'n', 1000);
    name[1000] = '\0';
    cJSON *j = cJSON_CreateObject();
    cJSON *inner = cJSON_AddObjectToObject(cJSON_AddObjectToObject(j, name), name);
    cJSON_AddStringToObject(inner, "x", "a\xff");
    cJSON *item = NULL;
    struct eddy_error err = {0};
    assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_EINVAL);
    assert_non_null(strstr(err.detail, ": string is not valid UTF-8"));
    cJSON_Delete(j);
}

static void test_numbers_roundtrip(void **state)
{
    (void)state;
    roundtrip("9007199254740992", "9007199254740992", false);  /* 2^53 */
    roundtrip("9007199254740993", "9007199254740993", true);   /* 2^53 + 1 */
    roundtrip("-9007199254740993", "-9007199254740993", true); /* -(2^53 + 1) */
    roundtrip("12345678901234567890123", "12345678901234567890123", true);
    roundtrip("0.1", "0.1", false);
    roundtrip("0.18", "0.18", false);
    roundtrip("1e-130", "1e-130", false);
    roundtrip("42", "42", false);
    roundtrip("1.5e3", "1500", false);
    roundtrip("3.141592653589793238462643383279", "3.141592653589793238462643383279", true);
    roundtrip("9.9999999999999999999999999999999999999E+125",
              "9.9999999999999999999999999999999999999E+125", true);
}

static void test_negative_zero(void **state)
{
    (void)state;
    cJSON *j = parse_ok("-0");
    assert_true(cJSON_IsNumber(j));
    assert_true(signbit(j->valuedouble));
    cJSON *av = NULL, *back = NULL;
    struct eddy_error err;
    assert_int_equal(eddy_attr_from_json(j, "", &av, &err), EDDY_OK);
    assert_printed(av, "{\"N\":\"-0\"}");
    assert_int_equal(eddy_attr_to_json(av, "", &back, &err), EDDY_OK);
    assert_true(cJSON_IsNumber(back));
    assert_true(back->valuedouble == 0.0 && signbit(back->valuedouble));
    cJSON_Delete(j);
    cJSON_Delete(av);
    cJSON_Delete(back);
}

/* Numbers longer than cJSON's own 63-character reader are still exact. */
static void test_long_number_text(void **state)
{
    (void)state;
    const char *tiny = "0.00000000000000000000000000000000000000000000000000000000000000000001";
    char text[200];
    snprintf(text, sizeof text, "[%s, 7]", tiny);
    cJSON *j = parse_ok(text);
    const cJSON *first = cJSON_GetArrayItem(j, 0);
    assert_true(cJSON_IsNumber(first));
    assert_true(first->valuedouble == 1e-68);
    assert_true(cJSON_GetArrayItem(j, 1)->valuedouble == 7);
    cJSON_Delete(j);

    const char *big = "123456789012345678901234567890123456780000000000000000000000000000000000";
    snprintf(text, sizeof text, "{\"b\":%s}", big);
    j = parse_ok(text);
    const cJSON *b = cJSON_GetObjectItem(j, "b");
    assert_true(cJSON_IsRaw(b));
    assert_string_equal(b->valuestring, big);
    cJSON *item = NULL;
    struct eddy_error err;
    assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_OK);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(item, "b"), "N")->valuestring, big);
    cJSON_Delete(item);
    cJSON_Delete(j);
}

static void expect_refused(const char *text, const char *want)
{
    cJSON *j = parse_ok(text);
    cJSON *item = NULL;
    struct eddy_error err;
    eddy_error_clear(&err);
    assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_EINVAL);
    assert_null(item);
    if (strstr(err.detail, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err.detail, want);
    cJSON_Delete(j);
}

static void test_numbers_refused(void **state)
{
    (void)state;
    expect_refused("{\"balance\":1e999}", "balance: number 1e999 out of DynamoDB range");
    expect_refused("{\"x\":1e-131}", "x: number 1e-131 out of DynamoDB range");
    expect_refused("{\"x\":1E+126}", "out of DynamoDB range");
    expect_refused("{\"x\":-1E+126}", "out of DynamoDB range");
    expect_refused("{\"x\":123456789012345678901234567890123456789}",
                   "has 39 significant digits, DynamoDB keeps 38");
    expect_refused("{\"a\":{\"b\":[1,{\"c\":1e999}]}}", "a.b[1].c: number 1e999");
    /* Not a number, but never silently dropped either: duplicate members. */
    expect_refused("{\"a\":{\"x\":1,\"y\":2,\"x\":3}}", "a: member \"x\" appears twice");
    expect_refused("{\"k\":1,\"k\":1}", "value: member \"k\" appears twice");
    /* eight members are compared pair by pair, nine sorted: first and last
     * alike, and names alike in their first byte only */
    expect_refused("{\"h\":1,\"a\":1,\"ab\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"h\":2}",
                   "value: member \"h\" appears twice");
    expect_refused("{\"i\":1,\"a\":1,\"ab\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"i\":2}",
                   "value: member \"i\" appears twice");
    /* the path outgrows its room on the stack (256 bytes) and shrinks back */
    char text[1024], want[256], a[101], b[181];
    memset(a, 'a', 100);
    a[100] = '\0';
    memset(b, 'b', 180);
    b[180] = '\0';
    snprintf(text, sizeof text, "{\"%s\":{\"%s\":{\"c\":1e999}}}", a, b);
    snprintf(want, sizeof want, "%s.%.99s: number 1e999", a, b);
    expect_refused(text, want);
    snprintf(text, sizeof text, "{\"%s\":{\"%s\":{\"c\":1}},\"y\":[{\"z\":1e999}]}", a, b);
    cJSON *j = parse_ok(text), *none = NULL;
    struct eddy_error shrunk;
    assert_int_equal(eddy_attr_item_from_json(j, &none, &shrunk), EDDY_EINVAL);
    assert_true(strncmp(shrunk.detail, "y[0].z: number 1e999", 20) == 0);
    cJSON_Delete(j);
    /* A double built by a machine: NaN and infinity have no decimal. */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "nan", NAN);
    cJSON *item = NULL;
    struct eddy_error err;
    assert_int_equal(eddy_attr_item_from_json(o, &item, &err), EDDY_EINVAL);
    assert_non_null(strstr(err.detail, "nan: NaN or infinity"));
    cJSON_Delete(o);
    /* A double beyond DynamoDB's range. */
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "huge", 1e200);
    assert_int_equal(eddy_attr_item_from_json(o, &item, &err), EDDY_EINVAL);
    assert_non_null(strstr(err.detail, "huge: number 1e+200 out of DynamoDB range"));
    cJSON_Delete(o);
}

static void test_nested_and_types(void **state)
{
    (void)state;
    cJSON *j = parse_ok("{\"a\":{\"b\":[1,\"x\",true,null,{\"c\":[]}]},\"f\":false,\"e\":{}}");
    cJSON *item = NULL, *back = NULL;
    struct eddy_error err;
    assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_OK);
    assert_printed(item, "{\"a\":{\"M\":{\"b\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"},{\"BOOL\":true},"
                         "{\"NULL\":true},{\"M\":{\"c\":{\"L\":[]}}}]}}},\"f\":{\"BOOL\":false},"
                         "\"e\":{\"M\":{}}}");
    assert_int_equal(eddy_attr_item_to_json(item, &back, &err), EDDY_OK);
    assert_true(cJSON_Compare(j, back, true));
    cJSON_Delete(j);
    cJSON_Delete(item);
    cJSON_Delete(back);
}

static void test_unicode(void **state)
{
    (void)state;
    cJSON *j = parse_ok("{\"s\":\"h\\u00e9llo \\ud83d\\ude00 \xe6\x97\xa5\xe6\x9c\xac\","
                        "\"\xc3\xa9t\xc3\xa9\":\"\"}");
    cJSON *item = NULL, *back = NULL;
    struct eddy_error err;
    assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_OK);
    const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(item, "s"), "S");
    assert_string_equal(s->valuestring, "h\xc3\xa9llo \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac");
    assert_non_null(cJSON_GetObjectItem(item, "\xc3\xa9t\xc3\xa9"));
    assert_int_equal(eddy_attr_item_to_json(item, &back, &err), EDDY_OK);
    assert_true(cJSON_Compare(j, back, true));
    cJSON_Delete(j);
    cJSON_Delete(item);
    cJSON_Delete(back);
    /* Bytes that are not UTF-8 are refused, naming the field. */
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "bad", "\xff\xfe");
    assert_int_equal(eddy_attr_item_from_json(j, &item, &err), EDDY_EINVAL);
    assert_string_equal(err.detail, "bad: string is not valid UTF-8");
    cJSON_Delete(j);
}

static void test_parse_strict(void **state)
{
    (void)state;
    const char *bad[] = {"[01]",
                         "[1.]",
                         "[-]",
                         "[+1]",
                         "[.5]",
                         "[1e]",
                         "{} x",
                         "[\"a\x01\"]",
                         "[\"a\\u0000b\"]",
                         "[1,]",
                         "",
                         "{\"a\" 1}",
                         "[1e5e5]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = NULL;
        struct eddy_error err;
        eddy_error_clear(&err);
        if (eddy_json_parse(bad[i], strlen(bad[i]), &j, &err) != EDDY_EPARSE)
            fail_msg("accepted %s", bad[i]);
        assert_null(j);
        assert_true(err.detail[0] != '\0');
    }
    /* White space is space, tab, CR and LF only: other controls, NUL too,
     * are refused between tokens, at their offset. */
    static const char ctl[] = {'\0', '\x01', '\x0b', '\x0c', '\x1f'};
    for (size_t i = 0; i < sizeof ctl; i++) {
        char text[] = "{\"a\":_1}";
        text[5] = ctl[i];
        cJSON *j = NULL;
        struct eddy_error err;
        eddy_error_clear(&err);
        if (eddy_json_parse(text, sizeof text - 1, &j, &err) != EDDY_EPARSE)
            fail_msg("accepted control byte 0x%02x between tokens", ctl[i]);
        assert_null(j);
        assert_non_null(strstr(err.detail, "offset 5"));
    }
    /* Numbers inside strings are not numbers; literals are untouched. */
    cJSON *j = parse_ok("\t{\"k1e5\":\"-12e99\",\r\n\"t\":true,\"n\":[null,-1.25e-3]} \n");
    assert_string_equal(cJSON_GetObjectItem(j, "k1e5")->valuestring, "-12e99");
    assert_true(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "n"), 1)->valuedouble == -1.25e-3);
    cJSON_Delete(j);
}

static cJSON *from_av_text(const char *av_text, eddy_err want, struct eddy_error *err)
{
    cJSON *av = cJSON_Parse(av_text);
    cJSON *out = NULL;
    assert_non_null(av);
    assert_int_equal(eddy_attr_to_json(av, "f", &out, err), want);
    cJSON_Delete(av);
    return out;
}

static void test_from_other_writers(void **state)
{
    (void)state;
    struct eddy_error err;
    cJSON *j = from_av_text("{\"SS\":[\"a\",\"b\"]}", EDDY_OK, &err);
    assert_printed(j, "[\"a\",\"b\"]");
    cJSON_Delete(j);
    j = from_av_text("{\"NS\":[\"1\",\"12345678901234567890123\",\"2.50\"]}", EDDY_OK, &err);
    assert_printed(j, "[1,12345678901234567890123,2.5]");
    cJSON_Delete(j);
    j = from_av_text("{\"B\":\"aGVsbG8=\"}", EDDY_OK, &err);
    assert_printed(j, "\"aGVsbG8=\"");
    cJSON_Delete(j);
    j = from_av_text("{\"BS\":[\"AA==\"]}", EDDY_OK, &err);
    assert_printed(j, "[\"AA==\"]");
    cJSON_Delete(j);
    /* N text other writers may use. */
    j = from_av_text("{\"N\":\"+5\"}", EDDY_OK, &err);
    assert_true(j->valuedouble == 5);
    cJSON_Delete(j);
    j = from_av_text("{\"N\":\".5\"}", EDDY_OK, &err);
    assert_true(j->valuedouble == 0.5);
    cJSON_Delete(j);
    j = from_av_text("{\"N\":\"1E+2\"}", EDDY_OK, &err);
    assert_true(j->valuedouble == 100);
    cJSON_Delete(j);
    j = from_av_text("{\"N\":\"0012345678901234567890123\"}", EDDY_OK, &err);
    assert_true(cJSON_IsRaw(j));
    assert_string_equal(j->valuestring, "1.2345678901234567890123E+22");
    cJSON_Delete(j);
    assert_null(from_av_text("{\"N\":\"12abc\"}", EDDY_EPARSE, &err));
    assert_string_equal(err.detail, "f: N value \"12abc\" is not a number");
    assert_null(from_av_text("{\"X\":\"1\"}", EDDY_EPARSE, &err));
    assert_string_equal(err.detail, "f: unsupported attribute value type X");
    assert_null(from_av_text("{\"M\":{\"a\":{\"S\":\"1\",\"N\":\"1\"}}}", EDDY_EPARSE, &err));
    assert_string_equal(err.detail, "f.a: not an attribute value");
}

static void test_depth_limit(void **state)
{
    (void)state;
    char text[200];
    /* 32 nested lists in an attribute are fine, 33 are not. */
    for (int depth = 32; depth <= 33; depth++) {
        strcpy(text, "{\"v\":");
        for (int i = 0; i < depth; i++)
            strcat(text, "[");
        strcat(text, "1");
        for (int i = 0; i < depth; i++)
            strcat(text, "]");
        strcat(text, "}");
        cJSON *j = parse_ok(text);
        cJSON *item = NULL;
        struct eddy_error err;
        eddy_err rc = eddy_attr_item_from_json(j, &item, &err);
        assert_int_equal(rc, depth == 32 ? EDDY_OK : EDDY_EINVAL);
        if (rc)
            assert_non_null(strstr(err.detail, "nested deeper than DynamoDB's 32 levels"));
        cJSON_Delete(item);
        cJSON_Delete(j);
    }
}

static size_t size_of(const char *item_text)
{
    cJSON *item = cJSON_Parse(item_text);
    assert_non_null(item);
    size_t n = eddy_attr_item_size(item);
    cJSON_Delete(item);
    return n;
}

static void test_item_size(void **state)
{
    (void)state;
    assert_int_equal(size_of("{\"a\":{\"S\":\"hello\"}}"), 1 + 5);
    assert_int_equal(size_of("{\"n\":{\"N\":\"123\"}}"), 1 + 2 + 1);
    assert_int_equal(size_of("{\"n\":{\"N\":\"-0.00120\"}}"), 1 + 1 + 1);
    assert_int_equal(size_of("{\"b\":{\"BOOL\":true},\"z\":{\"NULL\":true}}"), 2 + 2);
    assert_int_equal(size_of("{\"m\":{\"M\":{\"x\":{\"BOOL\":true}}}}"), 1 + 3 + 1 + 1 + 1);
    assert_int_equal(size_of("{\"l\":{\"L\":[{\"NULL\":true},{\"S\":\"ab\"}]}}"),
                     1 + 3 + (1 + 1) + (1 + 2));
    assert_int_equal(size_of("{\"s\":{\"SS\":[\"ab\",\"c\"]}}"), 1 + 3);
    assert_int_equal(size_of("{\"bin\":{\"B\":\"aGVsbG8=\"}}"), 3 + 6);
    /* UTF-8 bytes count, not characters. */
    assert_int_equal(size_of("{\"\xc3\xa9\":{\"S\":\"\xe6\x97\xa5\"}}"), 2 + 3);
}

/* The text writer against the tree form (parsed from the same text) and
 * against eddy_attr_item_size, which counts a tree on its own. */
static void check_written(const char *json)
{
    cJSON *j = parse_ok(json);
    struct eddy_error e1, e2;
    eddy_error_clear(&e1);
    eddy_error_clear(&e2);
    cJSON *tree = NULL;
    eddy_err want = eddy_attr_item_from_json(j, &tree, &e1);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    size_t size = 0;
    eddy_err got = eddy_attr_write_members(&w, j, &size, &e2);
    eddy_jw_close(&w, '}');
    assert_int_equal(got, want);
    if (want == EDDY_OK) {
        cJSON *text = cJSON_Parse(eddy_buf_cstr(&w.buf));
        assert_non_null(text);
        assert_true(cJSON_Compare(text, tree, true));
        assert_int_equal(size, eddy_attr_item_size(tree));
        cJSON_Delete(text);
    } else {
        assert_string_equal(e2.detail, e1.detail);
    }
    eddy_jw_cleanup(&w);
    cJSON_Delete(tree);
    cJSON_Delete(j);
}

static void test_write_members(void **state)
{
    (void)state;
    check_written("{}");
    check_written("{\"a\":1,\"b\":\"x\\\"y\\n\",\"c\":true,\"d\":false,\"e\":null}");
    check_written("{\"n\":[1,2.5,-0.125,1e20,[],{}],\"m\":{\"k\":{\"l\":[\"s\",{\"z\":0}]}}}");
    check_written("{\"big\":123456789012345678901234567890123456,\"tiny\":1e-130}");
    check_written("{\"unicode\":\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"\\u00fc\":1}");
    check_written("{\"bad\":1e200}");
    check_written("{\"deep\":{\"x\":123456789012345678901234567890123456789}}");
    check_written("{\"dup\":{\"a\":1,\"a\":2}}");
    check_written("{\"\":1}");
    char deep[128] = "{\"l\":"; /* 34 nested lists: past DynamoDB's 32 levels */
    for (int k = 0; k < 34; k++)
        strcat(deep, "[");
    strcat(deep, "1");
    for (int k = 0; k < 34; k++)
        strcat(deep, "]");
    strcat(deep, "}");
    check_written(deep);
}

/* JSON object new_text written against the stored attributes keep_text. */
static eddy_err write_kept(const char *new_text, const char *keep_text, char **out,
                           struct eddy_error *err)
{
    cJSON *j = parse_ok(new_text), *keep = cJSON_Parse(keep_text);
    assert_non_null(keep);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    size_t size = 0;
    eddy_err rc = eddy_attr_write_members_kept(&w, j, keep, &size, err);
    eddy_jw_close(&w, '}');
    *out = rc == EDDY_OK ? eddy_buf_take(&w.buf, NULL) : NULL;
    eddy_jw_cleanup(&w);
    if (rc == EDDY_OK) { /* the size counted is the item's */
        cJSON *item = cJSON_Parse(*out);
        if (size != eddy_attr_item_size(item))
            fail_msg("%s: size %zu, item size %zu", *out, size, eddy_attr_item_size(item));
        cJSON_Delete(item);
    }
    cJSON_Delete(j);
    cJSON_Delete(keep);
    return rc;
}

static void expect_kept(const char *new_text, const char *keep_text, const char *want)
{
    char *out = NULL;
    struct eddy_error err;
    eddy_err rc = write_kept(new_text, keep_text, &out, &err);
    if (rc != EDDY_OK)
        fail_msg("%s: %s", new_text, err.detail);
    assert_string_equal(out, want);
    free(out);
}

static void expect_kept_refused(const char *new_text, const char *keep_text, const char *want)
{
    char *out = NULL;
    struct eddy_error err;
    assert_int_equal(write_kept(new_text, keep_text, &out, &err), EDDY_EINVAL);
    assert_string_equal(err.detail, want);
}

/* B, SS, NS and BS read as JSON strings and arrays keep their stored types. */
static void test_kept_types(void **state)
{
    (void)state;
    /* unchanged: written as stored, at any depth, names matched without case */
    expect_kept("{\"photo\":\"AAEC\",\"tags\":[\"b\",\"a\"],\"n\":[7,1.5]}",
                "{\"Photo\":{\"B\":\"AAEC\"},\"tags\":{\"SS\":[\"b\",\"a\"]},"
                "\"n\":{\"NS\":[\"7\",\"1.50\"]}}",
                "{\"photo\":{\"B\":\"AAEC\"},\"tags\":{\"SS\":[\"b\",\"a\"]},"
                "\"n\":{\"NS\":[\"7\",\"1.50\"]}}");
    expect_kept("{\"m\":{\"k\":[\"AA==\"],\"x\":1},\"l\":[{\"s\":[\"z\"]},2]}",
                "{\"m\":{\"M\":{\"k\":{\"BS\":[\"AA==\"]},\"x\":{\"N\":\"1\"}}},"
                "\"l\":{\"L\":[{\"M\":{\"s\":{\"SS\":[\"z\"]}}},{\"N\":\"2\"}]}}",
                "{\"m\":{\"M\":{\"k\":{\"BS\":[\"AA==\"]},\"x\":{\"N\":\"1\"}}},"
                "\"l\":{\"L\":[{\"M\":{\"s\":{\"SS\":[\"z\"]}}},{\"N\":\"2\"}]}}");
    /* changed, and the new value fits the stored type */
    expect_kept("{\"photo\":\"AAECAw==\",\"tags\":[\"a\",\"c\"],\"n\":[3]}",
                "{\"photo\":{\"B\":\"AAEC\"},\"tags\":{\"SS\":[\"a\"]},\"n\":{\"NS\":[\"7\"]}}",
                "{\"photo\":{\"B\":\"AAECAw==\"},\"tags\":{\"SS\":[\"a\",\"c\"]},"
                "\"n\":{\"NS\":[\"3\"]}}");
    /* members the stored item does not have, or plain types, convert as usual */
    expect_kept("{\"new\":[\"a\"],\"s\":\"AAEC\"}", "{\"s\":{\"S\":\"AAEC\"}}",
                "{\"new\":{\"L\":[{\"S\":\"a\"}]},\"s\":{\"S\":\"AAEC\"}}");
    /* changed into something the type cannot hold: refused, naming the field */
    expect_kept_refused(
        "{\"tags\":[]}", "{\"tags\":{\"SS\":[\"a\"]}}",
        "tags: stored as a string set (SS), and the new value is empty, and DynamoDB "
        "has no empty sets; eddy keeps a stored attribute's type rather than change it");
    expect_kept_refused(
        "{\"tags\":[\"a\",\"a\"]}", "{\"tags\":{\"SS\":[\"a\"]}}",
        "tags: stored as a string set (SS), and the new value holds a member twice; "
        "eddy keeps a stored attribute's type rather than change it");
    expect_kept_refused(
        "{\"n\":[1,1.0]}", "{\"n\":{\"NS\":[\"1\"]}}",
        "n: stored as a number set (NS), and the new value holds a member twice; eddy "
        "keeps a stored attribute's type rather than change it");
    expect_kept_refused(
        "{\"m\":{\"p\":\"not base64!\"}}", "{\"m\":{\"M\":{\"p\":{\"B\":\"AA==\"}}}}",
        "m.p: stored as binary (B), and the new value is not base64 text; eddy keeps "
        "a stored attribute's type rather than change it");
    expect_kept_refused(
        "{\"b\":[\"AA=A\"]}", "{\"b\":{\"BS\":[\"AA==\"]}}",
        "b: stored as a binary set (BS), and the new value holds a member that is not "
        "base64 text; eddy keeps a stored attribute's type rather than change it");
}

/* A stored number set the machine changed by as little as one ulp is
 * written as the new value: "left alone" means the same decimal values. */
static void test_kept_set_changed_by_an_ulp(void **state)
{
    (void)state;
    expect_kept("{\"ids\":[10000000000000002]}", "{\"ids\":{\"NS\":[\"10000000000000000\"]}}",
                "{\"ids\":{\"NS\":[\"10000000000000002\"]}}");
    expect_kept("{\"p\":[0.30000000000000004]}", "{\"p\":{\"NS\":[\"0.3\"]}}",
                "{\"p\":{\"NS\":[\"0.30000000000000004\"]}}");
    expect_kept("{\"l\":[{\"p\":[1.0000000000000002]}]}",
                "{\"l\":{\"L\":[{\"M\":{\"p\":{\"NS\":[\"1\"]}}}]}}",
                "{\"l\":{\"L\":[{\"M\":{\"p\":{\"NS\":[\"1.0000000000000002\"]}}}]}}");
    /* the same values in other digits are still left alone */
    expect_kept("{\"p\":[0.3,12345678901234567890]}",
                "{\"p\":{\"NS\":[\"0.30\",\"1.234567890123456789E19\"]}}",
                "{\"p\":{\"NS\":[\"0.30\",\"1.234567890123456789E19\"]}}");
}

/* A stored list's elements keep their types by value, then by position:
 * an element the machine moved keeps its own type, not the type of the
 * element that was stored where it now is. */
static void test_kept_list_elements(void **state)
{
    (void)state;
    /* prepended: the new string is a string, the stored binary stays binary */
    expect_kept("{\"l\":[\"test\",\"AAEC\"]}", "{\"l\":{\"L\":[{\"B\":\"AAEC\"}]}}",
                "{\"l\":{\"L\":[{\"S\":\"test\"},{\"B\":\"AAEC\"}]}}");
    /* swapped: each keeps its own */
    expect_kept("{\"l\":[\"AAEC\",[\"x\"]]}", "{\"l\":{\"L\":[{\"SS\":[\"x\"]},{\"B\":\"AAEC\"}]}}",
                "{\"l\":{\"L\":[{\"B\":\"AAEC\"},{\"SS\":[\"x\"]}]}}");
    /* changed in place, nothing moved: the stored type where it fits, as a
     * map member keeps it; a map changed inside keeps its members' types */
    expect_kept("{\"l\":[\"AAECAw==\",{\"p\":\"AAEC\",\"n\":2}]}",
                "{\"l\":{\"L\":[{\"B\":\"AAEC\"},"
                "{\"M\":{\"p\":{\"B\":\"AAEC\"},\"n\":{\"N\":\"1\"}}}]}}",
                "{\"l\":{\"L\":[{\"B\":\"AAECAw==\"},"
                "{\"M\":{\"p\":{\"B\":\"AAEC\"},\"n\":{\"N\":\"2\"}}}]}}");
    /* removed from the front: the rest keep theirs */
    expect_kept("{\"l\":[\"AAEC\"]}", "{\"l\":{\"L\":[{\"S\":\"x\"},{\"B\":\"AAEC\"}]}}",
                "{\"l\":{\"L\":[{\"B\":\"AAEC\"}]}}");
}

/* A stored number set whose new value holds NaN or infinity (a machine can
 * make them; JSON text cannot): refused before the members are compared. */
static void test_kept_set_not_finite(void **state)
{
    (void)state;
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *keep = cJSON_Parse("{\"p\":{\"NS\":[\"1\"]}}");
        cJSON *j = cJSON_CreateObject();
        cJSON *set = cJSON_AddArrayToObject(j, "p");
        cJSON_AddItemToArray(set, cJSON_CreateNumber(2));
        cJSON_AddItemToArray(set, cJSON_CreateNumber(3));
        cJSON_AddItemToArray(set, cJSON_CreateNumber(bad[i]));
        struct eddy_jw w;
        eddy_jw_init(&w, 0);
        size_t size = 0;
        struct eddy_error err;
        assert_int_equal(eddy_attr_write_members_kept(&w, j, keep, &size, &err), EDDY_EINVAL);
        assert_string_equal(err.detail, "p: NaN or infinity cannot be stored");
        eddy_jw_cleanup(&w);
        cJSON_Delete(j);
        cJSON_Delete(keep);
    }
}

static void test_item_keepers(void **state)
{
    (void)state;
    cJSON *item = cJSON_Parse("{\"a\":{\"S\":\"x\"},\"b\":{\"L\":[{\"N\":\"1\"}]},"
                              "\"c\":{\"M\":{\"d\":{\"L\":[{\"B\":\"AA==\"}]}}}}");
    cJSON *keep = eddy_attr_item_keepers(item);
    assert_printed(keep, "{\"c\":{\"M\":{\"d\":{\"L\":[{\"B\":\"AA==\"}]}}}}");
    cJSON_Delete(keep);
    cJSON_DeleteItemFromObject(item, "c");
    assert_null(eddy_attr_item_keepers(item));
    cJSON_Delete(item);
}

/* Integral doubles have a path of their own: the same N text as
 * eddy_json_format_double and the size DynamoDB counts for it. */
static void test_integer_numbers(void **state)
{
    (void)state;
    const double values[] = {0,      -0.0,  1,     -1,   10,    100,    1200,      -1200,
                             7,      12345, 1e15,  1e18, -1e18, 0x1p53, -0x1p53,   0x1p62,
                             0x1p63, 1e20,  -1e20, 5e20, 0.5,   -2.5,   123456789, 1700000000};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddNumberToObject(obj, "n", values[i]);
        struct eddy_jw w;
        eddy_jw_init(&w, 0);
        eddy_jw_open(&w, '{');
        size_t size = 0;
        struct eddy_error err;
        assert_int_equal(eddy_attr_write_members(&w, obj, &size, &err), EDDY_OK);
        eddy_jw_close(&w, '}');
        cJSON *item = cJSON_Parse(w.buf.ptr);
        assert_non_null(item);
        char want[32];
        assert_true(eddy_json_format_double(values[i], want));
        const char *got = cJSON_GetObjectItem(cJSON_GetObjectItem(item, "n"), "N")->valuestring;
        if (strcmp(got, want) != 0)
            fail_msg("%.17g: N %s, want %s", values[i], got, want);
        if (size != eddy_attr_item_size(item))
            fail_msg("%.17g: size %zu, want %zu", values[i], size, eddy_attr_item_size(item));
        cJSON_Delete(item);
        cJSON_Delete(obj);
        eddy_jw_cleanup(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_names_refused),
        cmocka_unit_test(test_long_path_keeps_reason),
        cmocka_unit_test(test_numbers_roundtrip),
        cmocka_unit_test(test_negative_zero),
        cmocka_unit_test(test_long_number_text),
        cmocka_unit_test(test_numbers_refused),
        cmocka_unit_test(test_nested_and_types),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_from_other_writers),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_item_size),
        cmocka_unit_test(test_write_members),
        cmocka_unit_test(test_kept_types),
        cmocka_unit_test(test_item_keepers),
        cmocka_unit_test(test_integer_numbers),
        cmocka_unit_test(test_kept_set_changed_by_an_ulp),
        cmocka_unit_test(test_kept_set_not_finite),
        cmocka_unit_test(test_kept_list_elements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
