/*
 * Unit tests for base/json's writer and number formatting: the fast paths
 * (strings scanned eight bytes at a time, integers formatted by hand)
 * against plain references written the slow, obvious way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <math.h>

#include "base/json.h"

/* The escaping rule written one byte at a time: '"', '\\' and bytes below
 * 0x20 escaped (\n \r \t by name, others as \u00xx), every other byte kept. */
static char *ref_quote(const char *s, size_t n, size_t *out_len)
{
    char *out = malloc(n * 6 + 3);
    size_t k = 0;
    out[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            out[k++] = '\\';
            out[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20) {
            k += (size_t)sprintf(out + k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k++] = '"';
    out[k] = '\0';
    *out_len = k;
    return out;
}

/* s[0..n) through eddy_jw_str must give exactly the reference text. */
static void check_str(const char *s, size_t n)
{
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_str(&w, s, n);
    assert_int_equal(w.rc, EDDY_OK);
    size_t rn;
    char *ref = ref_quote(s, n, &rn);
    if (w.buf.len != rn || memcmp(w.buf.ptr, ref, rn) != 0)
        fail_msg("string of %zu bytes: got %s, want %s", n, w.buf.ptr, ref);
    assert_int_equal(w.buf.ptr[w.buf.len], '\0');
    free(ref);
    eddy_jw_cleanup(&w);
}

/* Every byte value at every offset of a clean string long enough for three
 * words: a byte the word test misses or marks wrongly shows up here. */
static void test_every_byte_at_every_offset(void **state)
{
    (void)state;
    char s[27];
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < sizeof s; at++) {
            memset(s, 'a', sizeof s);
            s[at] = (char)c;
            check_str(s, sizeof s);
            check_str(s, at + 1); /* the byte last, in a partial word */
        }
    }
}

/* Neighbours of the escaped bytes that must stay as they are: a borrow in
 * the word test must not flag them, and must not hide a real one above. */
static void test_near_misses(void **state)
{
    (void)state;
    static const char *const cases[] = {
        " !#[]^_`", /* 0x20 0x21 0x23 and the neighbours of '\\' */
        "\x7f\x80\xbf\xc0\xff\xfe\xe2\x82\xac",
        "\x20\x1f\x20\x20\x20\x20\x20\x20", /* a control after a space */
        "\x21\x22\x21\x21\x5b\x5c\x5d\x5d", /* '"' and '\\' in one word */
        "\x01\x22\x5c\x00\x1f\x0a\x0d\x09",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_str(cases[i], i == 4 ? 8 : strlen(cases[i]));
    check_str("", 0);
    check_str("\0\0\0\0\0\0\0\0\0", 9);
}

/* Random strings of every length up to 300 over a mix of plain bytes,
 * escapes and UTF-8, by a fixed generator (the same strings every run). */
static void test_random_strings(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {'a',  'Z',  '0',  ' ',  '"',  '\\', '\n', '\r', '\t',
                                             0x01, 0x1f, 0x7f, 0x80, 0xc3, 0xa9, 0xff, '/'};
    uint64_t x = 0x9e3779b97f4a7c15u;
    char s[300];
    for (int round = 0; round < 4; round++) {
        for (size_t n = 0; n <= sizeof s; n++) {
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                /* mostly plain runs, so escapes fall at every offset of a word */
                s[i] = (x >> 60) < 12 ? (char)('a' + (x >> 40) % 26)
                                      : (char)alphabet[(x >> 32) % sizeof alphabet];
            }
            check_str(s, n);
        }
    }
}

/* A long string: one run copied whole, then escapes near the end. */
static void test_long_string(void **state)
{
    (void)state;
    size_t n = 200000;
    char *s = malloc(n);
    memset(s, 'x', n);
    check_str(s, n);
    s[n - 1] = '"';
    s[n - 9] = '\x02';
    s[100001] = '\\';
    check_str(s, n);
    free(s);
}

/* Strings that fill the buffer's room: written in place while they fit,
 * and when an escape would overrun the room, written again piece by piece
 * (which grows the buffer), after text already there. Every prefix length
 * around the first allocation (1 KiB) meets every string at another place. */
static void test_room_edge(void **state)
{
    (void)state;
    static const char *const strs[] = {"ab\"cd\\ef\ngh", "\"\"\"\"\"\"\"\"\"\"\"\"",
                                       "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c",
                                       "plain text with no escape at all, long enough"};
    char prefix[1100];
    memset(prefix, 'p', sizeof prefix);
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
        size_t n = strlen(strs[k]);
        size_t rn;
        char *ref = ref_quote(strs[k], n, &rn);
        for (size_t p = 960; p <= 1040; p++) {
            struct eddy_jw w;
            eddy_jw_init(&w, 0);
            assert_int_equal(eddy_buf_append(&w.buf, prefix, p), EDDY_OK);
            eddy_jw_str(&w, strs[k], n);
            assert_int_equal(w.rc, EDDY_OK);
            assert_int_equal(w.buf.len, p + rn);
            assert_memory_equal(w.buf.ptr, prefix, p);
            if (memcmp(w.buf.ptr + p, ref, rn) != 0)
                fail_msg("after %zu bytes: got %s, want %s", p, w.buf.ptr + p, ref);
            assert_int_equal(w.buf.ptr[w.buf.len], '\0');
            eddy_jw_cleanup(&w);
        }
        free(ref);
    }
}

/* The cap still holds: a string one byte over it is refused, and the
 * refusal sticks. */
static void test_cap(void **state)
{
    (void)state;
    struct eddy_jw w;
    eddy_jw_init(&w, 12);
    eddy_jw_str(&w, "0123456789", 10); /* 12 with its quotes */
    assert_int_equal(w.rc, EDDY_OK);
    assert_string_equal(w.buf.ptr, "\"0123456789\"");
    eddy_jw_cleanup(&w);

    eddy_jw_init(&w, 12);
    eddy_jw_str(&w, "012345678\n", 10); /* 13 escaped */
    assert_int_equal(w.rc, EDDY_ELIMIT);
    eddy_jw_int(&w, 1);
    assert_int_equal(w.rc, EDDY_ELIMIT);
    eddy_jw_cleanup(&w);
}

/* Keys, literal and not, and commas between members. */
static void test_keys(void **state)
{
    (void)state;
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "QueueUrl", "http://q/1");
    EDDY_JW_KINT(&w, "Max", 10);
    eddy_jw_kstr(&w, "a\"b", "x\ty");
    EDDY_JW_KEY(&w, "Entries");
    eddy_jw_open(&w, '[');
    eddy_jw_cstr(&w, "All");
    eddy_jw_int(&w, -7);
    eddy_jw_bool(&w, false);
    eddy_jw_close(&w, ']');
    eddy_jw_key_n(&w, "k\0z", 3);
    eddy_jw_raw(&w, "{}", 2);
    eddy_jw_close(&w, '}');
    assert_int_equal(w.rc, EDDY_OK);
    assert_string_equal(w.buf.ptr, "{\"QueueUrl\":\"http://q/1\",\"Max\":10,\"a\\\"b\":\"x\\ty\","
                                   "\"Entries\":[\"All\",-7,false],\"k\\u0000z\":{}}");
    eddy_jw_cleanup(&w);
}

static void check_int(int64_t v)
{
    char want[32], got[24];
    snprintf(want, sizeof want, "%lld", (long long)v);
    size_t n = eddy_json_format_int(v, got);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
}

/* Integers at their limits and at every power of ten, both signs. */
static void test_format_int(void **state)
{
    (void)state;
    check_int(0);
    check_int(INT64_MAX);
    check_int(INT64_MIN);
    check_int(INT64_MIN + 1);
    /* 10^0 .. 10^18 (10^19 does not fit) */
    for (int64_t p = 1, k = 0; k < 19; k++, p = k < 19 ? p * 10 : p) {
        check_int(p);
        check_int(p - 1);
        check_int(p + 1);
        check_int(-p);
        check_int(-p + 1);
        check_int(-p - 1);
    }
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_int(&w, INT64_MIN);
    assert_string_equal(w.buf.ptr, "-9223372036854775808");
    eddy_jw_cleanup(&w);
}

/* d is written, and as want. */
static void expect_formatted(double d, const char *want)
{
    char got[32];
    assert_true(eddy_json_format_double(d, got));
    if (strcmp(got, want) != 0)
        fail_msg("%a: got %s, want %s", d, got, want);
}

static void check_double(double d)
{
    char want[64];
    snprintf(want, sizeof want, "%.0f", d);
    expect_formatted(d, want);
}

/* Integral doubles: formatted by hand below 2^63, by printf from there to
 * 1e21; either way the text "%.0f" gives, -0 included. */
static void test_format_double_integers(void **state)
{
    (void)state;
    static const double cases[] = {0.0,
                                   -0.0,
                                   1.0,
                                   -1.0,
                                   9007199254740992.0,  /* 2^53 */
                                   9007199254740994.0,  /* 2^53 + 2 */
                                   -9007199254740992.0, /* -2^53 */
                                   9223372036854774784.0,
                                   -9223372036854774784.0, /* the largest below 2^63 */
                                   9223372036854775808.0,
                                   -9223372036854775808.0, /* 2^63 itself: printf */
                                   1e20,
                                   -1e20,
                                   999999999999999868928.0 /* just below 1e21 */};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_double(cases[i]);
    double p = 1;
    for (int k = 0; k < 21; k++, p *= 10) {
        check_double(p);
        check_double(-p);
        check_double(nextafter(p, 0) == floor(nextafter(p, 0)) ? nextafter(p, 0) : p);
    }
    char out[32];
    assert_true(eddy_json_format_double(1e21, out));
    assert_string_equal(out, "1e+21");
    assert_true(eddy_json_format_double(0.5, out));
    assert_string_equal(out, "0.5");
    assert_false(eddy_json_format_double(NAN, out));
    assert_false(eddy_json_format_double(INFINITY, out));
}

/* The rule for a fraction, the slow way: the first of "%.15g", "%.16g" and
 * "%.17g" that reads back as d. Integral values have their own rule. */
static void check_fraction(double d)
{
    char want[64];
    if (d == floor(d))
        return; /* an integer: test_format_double_integers */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(want, sizeof want, "%.*g", prec, d);
        if (strtod(want, NULL) == d)
            break;
    }
    expect_formatted(d, want);
}

/* Fractions: those of 15 significant digits or fewer between 1e-4 and 1e15
 * are written by hand, the others by printf; either way the text is the
 * slow rule's, byte for byte. */
static void test_format_double_fractions(void **state)
{
    (void)state;
    static const double cases[] = {0.5,
                                   -0.5,
                                   0.1,
                                   0.3,
                                   0.1 + 0.2,
                                   1.0 / 3,
                                   2.5e-5,
                                   1e-4,
                                   -1e-4,
                                   0.0001000001,
                                   9.5e-5,
                                   12.5,
                                   -99.99,
                                   0.05,
                                   0.007,
                                   1e15 - 0.5,
                                   123456789012.5,
                                   99999999999999.9,
                                   0.123456789012345,
                                   0.1234567890123456,
                                   4503599627370495.5,
                                   1e-300,
                                   5e-324,
                                   1.7976931348623157e308 / 3};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_fraction(cases[i]);
        check_fraction(-cases[i]);
    }
    /* decimals of 1 to 17 digits with 1 to 20 places, and their neighbours */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        static const double p10[] = {1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10,
                                     1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20};
        uint64_t m = x % 100000000000000000u >> (x % 57);
        double d = (double)m / p10[(x >> 8) % 20];
        if (d == floor(d))
            continue;
        check_fraction(d);
        check_fraction(nextafter(d, 0));
        check_fraction(-nextafter(d, INFINITY));
    }
}

/* A tree written by the writer gives cJSON_PrintUnformatted's text, byte
 * for byte (strings without \b or \f, numbers cJSON prints exactly), and
 * what parses back is the tree. */
static void test_tree(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"#s\":\"state\",\"#v\":\"version\"}",
        "{\":v\":{\"N\":\"3\"},\":s\":{\"S\":\"caf\\u00e9 \\\"q\\\" \\\\ \\n\\r\\t\\u0001 /\"},"
        "\":l\":{\"L\":[{\"BOOL\":true},{\"BOOL\":false},{\"NULL\":true},{\"M\":{}}]}}",
        "[1,-2,0.5,1e+300,12345678901234567,-0.0001,[],{},null,true,\"\"]",
        "{\"a\":{\"b\":{\"c\":[[[\"deep\"]]]}},\"\\u00e9\\\"k\":1}",
        "\"just a string\"",
        "42",
        /* integers where cJSON's "%d" ends (it saturates at INT_MAX and INT_MIN) */
        "[2147483647,-2147483648,2147483648,-2147483649,0,-0,3.0,1e2,1e10,-7,2147483646.5]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        cJSON *t = cJSON_Parse(texts[i]);
        assert_non_null(t);
        struct eddy_jw w;
        eddy_jw_init(&w, 0);
        eddy_jw_tree(&w, t);
        assert_int_equal(w.rc, EDDY_OK);
        char *want = cJSON_PrintUnformatted(t);
        assert_string_equal(w.buf.ptr, want);
        cJSON *back = cJSON_Parse(w.buf.ptr);
        assert_true(cJSON_Compare(t, back, true));
        cJSON_Delete(back);
        free(want);
        eddy_jw_cleanup(&w);
        cJSON_Delete(t);
    }
    /* a Raw item as its text, and \b \f in their \u form: the same value */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "n", cJSON_CreateRaw("123456789012345678901234567890"));
    cJSON_AddStringToObject(o, "s", "\b\f");
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '[');
    eddy_jw_tree(&w, o);
    eddy_jw_tree(&w, o);
    eddy_jw_close(&w, ']');
    assert_string_equal(w.buf.ptr,
                        "[{\"n\":123456789012345678901234567890,\"s\":\"\\u0008\\u000c\"},"
                        "{\"n\":123456789012345678901234567890,\"s\":\"\\u0008\\u000c\"}]");
    eddy_jw_cleanup(&w);
    cJSON_Delete(o);
}

/* Numbers in a tree are written in the shortest text that reads back as
 * the same double, where cJSON's printer takes 15 digits that read back
 * within an ulp; NaN and infinities as null. */
static void test_tree_numbers_exact(void **state)
{
    (void)state;
    static const double values[] = {10000000000000002.0, 1.0000000000000002,  0.30000000000000004,
                                    0.1 + 0.7,           -9007199254740993.0, 1.0 / 3};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cJSON *n = cJSON_CreateNumber(values[i]);
        struct eddy_jw w;
        eddy_jw_init(&w, 0);
        eddy_jw_tree(&w, n);
        char want[32];
        assert_true(eddy_json_format_double(values[i], want));
        assert_string_equal(w.buf.ptr, want);
        assert_true(strtod(w.buf.ptr, NULL) == values[i]);
        eddy_jw_cleanup(&w);
        cJSON_Delete(n);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", 10000000000000002.0);
    cJSON_AddNumberToObject(o, "nan", NAN);
    cJSON_AddNumberToObject(o, "inf", -INFINITY);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_tree(&w, o);
    assert_string_equal(w.buf.ptr, "{\"id\":10000000000000002,\"nan\":null,\"inf\":null}");
    eddy_jw_cleanup(&w);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_at_every_offset),
        cmocka_unit_test(test_near_misses),
        cmocka_unit_test(test_random_strings),
        cmocka_unit_test(test_long_string),
        cmocka_unit_test(test_room_edge),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_format_int),
        cmocka_unit_test(test_format_double_integers),
        cmocka_unit_test(test_format_double_fractions),
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_tree_numbers_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
