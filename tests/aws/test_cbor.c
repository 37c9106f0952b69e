/* Unit tests for aws/cbor: the writer against the encodings of RFC 8949
 * appendix A, the decoder over the same vectors (definite and indefinite
 * items, tags, floats, simple values), every refusal, and a round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/cbor.h"

/* hex text -> bytes into out; returns the length */
static size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        char b[3] = {hex[0], hex[1], 0};
        out[n++] = (unsigned char)strtoul(b, NULL, 16);
    }
    return n;
}

static void assert_bytes(const struct eddy_cbor_w *w, const char *hex)
{
    unsigned char want[256];
    size_t n = unhex(hex, want);
    assert_int_equal(w->rc, EDDY_OK);
    assert_int_equal(w->buf.len, n);
    assert_memory_equal(w->buf.ptr, want, n);
}

static void test_writer_vectors(void **state)
{
    (void)state;
    struct {
        int64_t v;
        const char *hex;
    } ints[] = {{0, "00"},
                {23, "17"},
                {24, "1818"},
                {1000, "1903e8"},
                {1000000, "1a000f4240"},
                {-1, "20"},
                {-1000, "3903e7"},
                {1000000000000, "1b000000e8d4a51000"}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        struct eddy_cbor_w w;
        eddy_cbor_w_init(&w, 0);
        eddy_cbor_int(&w, ints[i].v);
        assert_bytes(&w, ints[i].hex);
        eddy_cbor_w_cleanup(&w);
    }
    struct eddy_cbor_w w;
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_map(&w, 2); /* {"a": 1, "b": [2, 3]} */
    eddy_cbor_ctext(&w, "a");
    eddy_cbor_int(&w, 1);
    eddy_cbor_ctext(&w, "b");
    eddy_cbor_array(&w, 2);
    eddy_cbor_int(&w, 2);
    eddy_cbor_int(&w, 3);
    assert_bytes(&w, "a26161016162820203");
    eddy_cbor_w_cleanup(&w);

    eddy_cbor_w_init(&w, 0);
    eddy_cbor_ctext(&w, "");
    eddy_cbor_ctext(&w, "IETF");
    eddy_cbor_bool(&w, false);
    eddy_cbor_bool(&w, true);
    eddy_cbor_time(&w, 1363896240);
    assert_bytes(&w, "606449455446f4f5c11a514b67b0");
    eddy_cbor_w_cleanup(&w);

    /* a text of 24 bytes takes a one-byte length */
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_ctext(&w, "abcdefghijklmnopqrstuvwx");
    assert_int_equal(w.buf.len, 26);
    assert_int_equal((unsigned char)w.buf.ptr[0], 0x78);
    assert_int_equal((unsigned char)w.buf.ptr[1], 24);
    eddy_cbor_w_cleanup(&w);

    /* past the cap the error sticks */
    eddy_cbor_w_init(&w, 8);
    eddy_cbor_ctext(&w, "0123456789");
    eddy_cbor_int(&w, 1);
    assert_int_equal(w.rc, EDDY_ELIMIT);
    eddy_cbor_w_cleanup(&w);
}

/* Decode hex; print the tree unformatted into a string for comparison. */
static char *decode(const char *hex, eddy_err want_rc, struct eddy_error *err)
{
    unsigned char b[512];
    size_t n = unhex(hex, b);
    /* exactly n bytes on the heap, so a read past the end is seen by ASan */
    unsigned char *p = malloc(n ? n : 1);
    memcpy(p, b, n);
    cJSON *j = NULL;
    eddy_err rc = eddy_cbor_parse(p, n, &j, err);
    free(p);
    assert_int_equal(rc, want_rc);
    if (rc) {
        assert_null(j);
        return NULL;
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void assert_decodes(const char *hex, const char *json)
{
    struct eddy_error err = {0};
    char *s = decode(hex, EDDY_OK, &err);
    assert_string_equal(s, json);
    free(s);
}

static void test_decoder_vectors(void **state)
{
    (void)state;
    assert_decodes("00", "0");
    assert_decodes("1a000f4240", "1000000");
    assert_decodes("3903e7", "-1000");
    assert_decodes("1b000000e8d4a51000", "1000000000000");
    assert_decodes("f93c00", "1");
    assert_decodes("fb3ff199999999999a", "1.1");
    assert_decodes("fa47c35000", "100000");
    assert_decodes("f4", "false");
    assert_decodes("f5", "true");
    assert_decodes("f6", "null");
    assert_decodes("f7", "null");
    assert_decodes("c11a514b67b0", "1363896240"); /* tag 1: epoch seconds */
    assert_decodes("6449455446", "\"IETF\"");
    assert_decodes("4401020304", "\"AQIDBA==\""); /* bytes: base64 */
    assert_decodes("8301820203820405", "[1,[2,3],[4,5]]");
    assert_decodes("a26161016162820203", "{\"a\":1,\"b\":[2,3]}");
    assert_decodes("80", "[]");
    assert_decodes("a0", "{}");
    /* indefinite lengths */
    assert_decodes("7f657374726561646d696e67ff", "\"streaming\"");
    assert_decodes("5f42010243030405ff", "\"AQIDBAU=\"");
    assert_decodes("9fff", "[]");
    assert_decodes("9f018202039f0405ffff", "[1,[2,3],[4,5]]");
    assert_decodes("bf61610161629f0203ffff", "{\"a\":1,\"b\":[2,3]}");
    assert_decodes("bf6346756ef563416d7421ff", "{\"Fun\":true,\"Amt\":-2}");
    assert_decodes("826161bf61626163ff", "[\"a\",{\"b\":\"c\"}]");
}

static void assert_refused(const char *hex, const char *why)
{
    struct eddy_error err = {0};
    assert_null(decode(hex, EDDY_EPARSE, &err));
    assert_non_null(strstr(err.detail, why));
}

static void test_decoder_refuses(void **state)
{
    (void)state;
    assert_refused("", "empty");
    assert_refused("1a00", "truncated");
    assert_refused("8301", "truncated");
    assert_refused("0000", "trailing bytes");
    assert_refused("a10102", "not a text string");
    assert_refused("a1820102", "not a text string");
    assert_refused("ff", "break outside");
    assert_refused("81ff", "break outside");
    assert_refused("bf6161ff", "key without a value");
    assert_refused("7f01ff", "inside an indefinite string");
    assert_refused("7f4101ff", "wrong type");
    assert_refused("7f7f6161ffff", "inside another");
    assert_refused("1c", "malformed");
    assert_refused("9f", "truncated");
    assert_refused("c1", "truncated");
    assert_refused("7a7fffffff", "truncated"); /* a length far past the input */
    assert_refused("9bffffffffffffffff", "truncated");
    assert_refused("bbffffffffffffffff", "longer than any input");
    char deep[2 * (EDDY_CBOR_MAX_DEPTH + 1) + 3];
    for (int i = 0; i <= EDDY_CBOR_MAX_DEPTH; i++)
        memcpy(deep + 2 * i, "81", 2);
    memcpy(deep + 2 * (EDDY_CBOR_MAX_DEPTH + 1), "00", 3);
    assert_refused(deep, "deeper than 64");
    /* 64 levels are fine */
    assert_decodes(deep + 2, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]"
                             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
}

static void test_round_trip(void **state)
{
    (void)state;
    struct eddy_cbor_w w;
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_map(&w, 3);
    eddy_cbor_ktext(&w, "Detail", "{\"x\":\"caf\xc3\xa9\"}");
    eddy_cbor_ctext(&w, "N");
    eddy_cbor_int(&w, -9007199254740991);
    eddy_cbor_ctext(&w, "Big");
    eddy_cbor_array(&w, 300);
    for (int i = 0; i < 300; i++)
        eddy_cbor_int(&w, i * 1000);
    assert_int_equal(w.rc, EDDY_OK);
    cJSON *j = NULL;
    assert_int_equal(eddy_cbor_parse(w.buf.ptr, w.buf.len, &j, NULL), EDDY_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "Detail")->valuestring,
                        "{\"x\":\"caf\xc3\xa9\"}");
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "N")->valuedouble == -9007199254740991.0);
    const cJSON *big = cJSON_GetObjectItemCaseSensitive(j, "Big");
    assert_int_equal(cJSON_GetArraySize(big), 300);
    assert_int_equal(cJSON_GetArrayItem(big, 299)->valueint, 299000);
    cJSON_Delete(j);
    eddy_cbor_w_cleanup(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_vectors),
        cmocka_unit_test(test_decoder_vectors),
        cmocka_unit_test(test_decoder_refuses),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
