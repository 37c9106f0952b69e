/*
 * test_sigv4.c - SigV4 against the AWS test suite, and unit tests.
 *
 * With `--case NAME` this runs one case of the AWS SigV4 test suite (the
 * aws-c-auth v4 vectors in tests/aws/vectors, see its NOTICE.md): it parses
 * the case's request.txt (request line, headers with folded values and
 * repeated names, body) and context.json,
 * signs, and checks the canonical request, the string to sign, the signature
 * and the Authorization value separately, each with its own message.
 * tests/aws/meson.build registers one test per case in suite 'sigv4'.
 *
 * Without arguments it runs the unit tests (suite 'unit'): the key cache,
 * HMAC against OpenSSL's HMAC(), the date arithmetic, path and query
 * canonicalisation beyond the suite, and the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aws/sigv4.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "eddy/rng.h"

/* ---- reading a case ---------------------------------------------------- */

#define MAX_HEADERS 32

struct vcase {
    const char *name;
    char dir[1024];
    char *request_txt; /* owns the bytes the request points into */
    char *context_json;
    char *expect_creq;
    char *expect_sts;
    char *expect_sig;
    char *expect_signed_request;
    /* parsed */
    struct eddy_sigv4_request req;
    struct eddy_sigv4_header headers[MAX_HEADERS];
    char *folded[MAX_HEADERS]; /* folded header values, owned */
    char access_key[64];
    char secret[128];
    char *token;
    char region[32];
    char service[32];
    int64_t unix_s;
    bool normalize;
    bool sign_body;
    bool omit_token;
    char amz_date[17];
    char body_hash[65];
};

static struct vcase vc;

static char *slurp(const char *dir, const char *file)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        print_error("cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 4096;
    size_t len = 0;
    char *p = eddy_malloc(cap);
    size_t n;
    while ((n = fread(p + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0)
            p = eddy_realloc(p, cap *= 2);
    }
    fclose(f);
    p[len] = '\0';
    return p;
}

/* Split "METHOD TARGET HTTP/1.1": the target may hold spaces. */
static int parse_request_line(char *line)
{
    char *sp1 = strchr(line, ' ');
    char *sp2 = strrchr(line, ' ');
    if (sp1 == NULL || sp2 == sp1) {
        print_error("bad request line: %s\n", line);
        return -1;
    }
    vc.req.method = (struct eddy_str){line, (size_t)(sp1 - line)};
    char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    char *q = memchr(target, '?', tlen);
    if (q) {
        vc.req.path = (struct eddy_str){target, (size_t)(q - target)};
        vc.req.query = (struct eddy_str){q + 1, (size_t)(target + tlen - (q + 1))};
    } else {
        vc.req.path = (struct eddy_str){target, tlen};
        vc.req.query = (struct eddy_str){"", 0};
    }
    return 0;
}

/* A continuation line (leading blanks) extends the previous header's value
 * with a line break, as a folded header arrives on the wire. */
static int fold_header(const char *line)
{
    size_t k = vc.req.nheaders;
    if (k == 0)
        return -1;
    struct eddy_str *v = &vc.headers[k - 1].value;
    size_t add = strlen(line);
    char *p = eddy_malloc(v->len + 1 + add + 1);
    memcpy(p, v->ptr, v->len);
    p[v->len] = '\n';
    memcpy(p + v->len + 1, line, add + 1);
    free(vc.folded[k - 1]);
    vc.folded[k - 1] = p;
    *v = (struct eddy_str){p, v->len + 1 + add};
    return 0;
}

static int add_header(const char *name, const char *value)
{
    if (vc.req.nheaders == MAX_HEADERS)
        return -1;
    vc.headers[vc.req.nheaders++] = (struct eddy_sigv4_header){eddy_str_c(name), eddy_str_c(value)};
    return 0;
}

static int parse_request(char *txt)
{
    char *body = strstr(txt, "\n\n");
    if (body) {
        *body = '\0';
        body += 2;
    }
    vc.req.payload = body ? body : "";
    vc.req.payload_len = body ? strlen(body) : 0;
    char *save = NULL;
    char *line = strtok_r(txt, "\n", &save);
    if (line == NULL || parse_request_line(line))
        return -1;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        if (line[0] == ' ' || line[0] == '\t') {
            if (fold_header(line))
                return -1;
            continue;
        }
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            print_error("bad header line: %s\n", line);
            return -1;
        }
        *colon = '\0';
        if (add_header(line, colon + 1))
            return -1;
    }
    return 0;
}

static int copy_json_string(const cJSON *obj, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) {
        print_error("context.json: %s missing or too long\n", key);
        return -1;
    }
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static int parse_timestamp(const char *s, int64_t *out)
{
    struct tm tm = {0};
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int parse_context(const char *json)
{
    cJSON *root = cJSON_Parse(json);
    int rc = -1;
    char ts[32];
    const cJSON *creds = cJSON_GetObjectItemCaseSensitive(root, "credentials");
    if (copy_json_string(creds, "access_key_id", vc.access_key, sizeof vc.access_key) ||
        copy_json_string(creds, "secret_access_key", vc.secret, sizeof vc.secret) ||
        copy_json_string(root, "region", vc.region, sizeof vc.region) ||
        copy_json_string(root, "service", vc.service, sizeof vc.service) ||
        copy_json_string(root, "timestamp", ts, sizeof ts) || parse_timestamp(ts, &vc.unix_s))
        goto done;
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(creds, "token");
    vc.token = cJSON_IsString(token) ? eddy_strdup(token->valuestring) : NULL;
    vc.normalize = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "normalize"));
    vc.sign_body = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "sign_body"));
    vc.omit_token = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "omit_session_token"));
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

/* The headers the SDKs add before signing: X-Amz-Date, the session token
 * (unless the case adds it after signing), the body hash when asked. */
static int add_signing_headers(void)
{
    eddy_time_amz(vc.unix_s, vc.amz_date);
    eddy_sha256_hex(vc.req.payload, vc.req.payload_len, vc.body_hash);
    if (add_header("X-Amz-Date", vc.amz_date))
        return -1;
    if (vc.token && !vc.omit_token && add_header("X-Amz-Security-Token", vc.token))
        return -1;
    if (vc.sign_body && add_header("X-Amz-Content-Sha256", vc.body_hash))
        return -1;
    return 0;
}

static int case_setup(void **state)
{
    (void)state;
    const char *root = getenv("EDDY_SOURCE_ROOT");
    if (root == NULL) {
        print_error("EDDY_SOURCE_ROOT is not set (meson test sets it)\n");
        return -1;
    }
    snprintf(vc.dir, sizeof vc.dir, "%s/tests/aws/vectors/%s", root, vc.name);
    vc.request_txt = slurp(vc.dir, "request.txt");
    vc.context_json = slurp(vc.dir, "context.json");
    vc.expect_creq = slurp(vc.dir, "header-canonical-request.txt");
    vc.expect_sts = slurp(vc.dir, "header-string-to-sign.txt");
    vc.expect_sig = slurp(vc.dir, "header-signature.txt");
    vc.expect_signed_request = slurp(vc.dir, "header-signed-request.txt");
    if (!vc.request_txt || !vc.context_json || !vc.expect_creq || !vc.expect_sts ||
        !vc.expect_sig || !vc.expect_signed_request)
        return -1;
    vc.req.headers = vc.headers;
    if (parse_context(vc.context_json) || parse_request(vc.request_txt) || add_signing_headers())
        return -1;
    return 0;
}

static int case_teardown(void **state)
{
    (void)state;
    free(vc.request_txt);
    free(vc.context_json);
    free(vc.expect_creq);
    free(vc.expect_sts);
    free(vc.expect_sig);
    free(vc.expect_signed_request);
    free(vc.token);
    for (size_t i = 0; i < MAX_HEADERS; i++)
        free(vc.folded[i]);
    return 0;
}

/* ---- checking a case --------------------------------------------------- */

static struct eddy_sigv4_result got;
static eddy_err got_rc;
static struct eddy_error got_err;

/* Where two texts first differ, as line and column, with both texts. */
static void report_diff(const char *what, const char *want, const char *have)
{
    size_t i = 0;
    size_t line = 1;
    size_t col = 1;
    while (want[i] && want[i] == have[i]) {
        if (want[i] == '\n') {
            line++;
            col = 0;
        }
        col++;
        i++;
    }
    print_error("%s: %s differs at line %zu, column %zu (byte %zu)\n"
                "--- expected\n%s\n--- got\n%s\n--- end\n",
                vc.name, what, line, col, i, want, have);
}

static void expect_text(const char *what, const char *want, const char *have)
{
    if (strcmp(want, have) != 0) {
        report_diff(what, want, have);
        fail_msg("%s: %s mismatch", vc.name, what);
    }
}

static eddy_err sign_case(bool keep, struct eddy_sigv4_key_cache *cache,
                          struct eddy_sigv4_result *out, struct eddy_error *err)
{
    struct eddy_sigv4_params params = {
        .region = vc.region,
        .service = vc.service,
        .unix_s = vc.unix_s,
        .normalize_path = vc.normalize,
    };
    struct eddy_sigv4_credentials creds = {vc.access_key, vc.secret, vc.token};
    return eddy_sigv4_sign(&params, &creds, &vc.req, cache, keep, out, err);
}

static void assert_signed(eddy_err rc, const struct eddy_error *err)
{
    if (rc != EDDY_OK)
        fail_msg("%s: signing failed: %s: %s", vc.name, eddy_err_name(rc), err->detail);
}

static int sign_setup(void **state)
{
    if (case_setup(state))
        return -1;
    eddy_sigv4_result_init(&got);
    got_rc = sign_case(true, NULL, &got, &got_err);
    return 0;
}

static int sign_teardown(void **state)
{
    eddy_sigv4_result_cleanup(&got);
    return case_teardown(state);
}

static void test_canonical_request(void **state)
{
    (void)state;
    assert_signed(got_rc, &got_err);
    expect_text("canonical request", vc.expect_creq, eddy_buf_cstr(&got.canonical_request));
}

static void test_string_to_sign(void **state)
{
    (void)state;
    assert_signed(got_rc, &got_err);
    expect_text("string to sign", vc.expect_sts, eddy_buf_cstr(&got.string_to_sign));
}

static void test_signature(void **state)
{
    (void)state;
    assert_signed(got_rc, &got_err);
    expect_text("signature", vc.expect_sig, got.signature);
}

static void test_authorization(void **state)
{
    (void)state;
    assert_signed(got_rc, &got_err);
    const char *line = strstr(vc.expect_signed_request, "\nAuthorization:");
    assert_non_null(line);
    line += strlen("\nAuthorization:");
    size_t n = strcspn(line, "\n");
    char *want = eddy_strndup(line, n);
    expect_text("Authorization", want, eddy_buf_cstr(&got.authorization));
    free(want);
    expect_text("X-Amz-Date", vc.amz_date, got.amz_date);
}

/* The production path keeps nothing and uses the key cache: it must give
 * the same signature, cold and warm, into a reused result. */
static void test_fast_path_agrees(void **state)
{
    (void)state;
    struct eddy_sigv4_key_cache cache = {0};
    struct eddy_sigv4_result r;
    eddy_sigv4_result_init(&r);
    for (int round = 0; round < 2; round++) {
        struct eddy_error err = {0};
        assert_signed(sign_case(false, &cache, &r, &err), &err);
        expect_text(round ? "signature (warm cache)" : "signature (cold cache)", vc.expect_sig,
                    r.signature);
        assert_int_equal(r.canonical_request.len, 0);
        assert_int_equal(r.string_to_sign.len, 0);
        assert_string_equal(eddy_buf_cstr(&r.authorization), eddy_buf_cstr(&got.authorization));
    }
    eddy_sigv4_key_cache_cleanup(&cache);
    eddy_sigv4_result_cleanup(&r);
}

static int run_case(const char *name)
{
    vc.name = name;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_request), cmocka_unit_test(test_string_to_sign),
        cmocka_unit_test(test_signature),         cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_fast_path_agrees),
    };
    return _cmocka_run_group_tests(name, tests, EDDY_ARRAY_SIZE(tests), sign_setup, sign_teardown);
}

/* ---- unit tests -------------------------------------------------------- */

#define T_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T_TIME INT64_C(1440938160) /* 2015-08-30T12:36:00Z */

/* A small request to vary one thing at a time. */
struct simple {
    struct eddy_sigv4_header h[EDDY_SIGV4_MAX_HEADERS + 2];
    struct eddy_sigv4_request req;
    struct eddy_sigv4_params params;
    struct eddy_sigv4_credentials creds;
    struct eddy_sigv4_result out;
    struct eddy_error err;
};

static void simple_init(struct simple *s)
{
    memset(s, 0, sizeof *s);
    s->h[0] = (struct eddy_sigv4_header){EDDY_STR_LIT("Host"), EDDY_STR_LIT("example.com")};
    s->h[1] =
        (struct eddy_sigv4_header){EDDY_STR_LIT("X-Amz-Date"), EDDY_STR_LIT("20150830T123600Z")};
    s->req.method = EDDY_STR_LIT("GET");
    s->req.path = EDDY_STR_LIT("/");
    s->req.headers = s->h;
    s->req.nheaders = 2;
    s->params = (struct eddy_sigv4_params){"us-east-1", "service", T_TIME, true, false};
    s->creds = (struct eddy_sigv4_credentials){"AKIDEXAMPLE", T_SECRET, NULL};
    eddy_sigv4_result_init(&s->out);
}

static eddy_err simple_sign(struct simple *s, struct eddy_sigv4_key_cache *cache)
{
    return eddy_sigv4_sign(&s->params, &s->creds, &s->req, cache, true, &s->out, &s->err);
}

/* Line n (0-based) of the canonical request. */
static char *creq_line(const struct simple *s, int n)
{
    const char *p = eddy_buf_cstr(&s->out.canonical_request);
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    assert_non_null(p);
    return eddy_strndup(p, strcspn(p, "\n"));
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    eddy_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    eddy_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* The signature recomputed with OpenSSL's own HMAC() from the string to
 * sign: an independent check of the hand-written HMAC, incl. keys longer
 * than the 64-byte block (which HMAC hashes first). */
static void expect_openssl_signature(const struct simple *s)
{
    unsigned char k[32];
    unsigned int klen = 32;
    size_t slen = strlen(s->creds.secret_access_key);
    char *ksecret = eddy_malloc(4 + slen);
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, s->creds.secret_access_key, slen);
    assert_non_null(HMAC(EVP_sha256(), ksecret, (int)(4 + slen), (const unsigned char *)"20150830",
                         8, k, &klen));
    const char *parts[] = {s->params.region, s->params.service, "aws4_request"};
    for (size_t i = 0; i < 3; i++)
        assert_non_null(
            HMAC(EVP_sha256(), k, 32, (const unsigned char *)parts[i], strlen(parts[i]), k, &klen));
    unsigned char sig[32];
    assert_non_null(HMAC(EVP_sha256(), k, 32,
                         (const unsigned char *)eddy_buf_cstr(&s->out.string_to_sign),
                         s->out.string_to_sign.len, sig, &klen));
    char hex[65];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sig[i]);
    assert_string_equal(s->out.signature, hex);
    free(ksecret);
}

static void test_hmac_matches_openssl(void **state)
{
    (void)state;
    struct simple s;
    simple_init(&s);
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    expect_openssl_signature(&s);
    char long_secret[101];
    memset(long_secret, 'k', 100);
    long_secret[100] = '\0';
    s.creds.secret_access_key = long_secret;
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    expect_openssl_signature(&s);
    eddy_sigv4_result_cleanup(&s.out);
}

/* Sign with cache, then without; both signatures must agree. */
static void expect_cache_agrees(struct simple *s, struct eddy_sigv4_key_cache *cache)
{
    assert_int_equal(simple_sign(s, cache), EDDY_OK);
    char with_cache[65];
    memcpy(with_cache, s->out.signature, 65);
    assert_int_equal(simple_sign(s, NULL), EDDY_OK);
    assert_string_equal(with_cache, s->out.signature);
}

static void test_key_cache(void **state)
{
    (void)state;
    struct simple s;
    simple_init(&s);
    struct eddy_sigv4_key_cache cache = {0};
    expect_cache_agrees(&s, &cache);
    assert_string_equal(cache.date, "20150830");
    assert_string_equal(cache.region, "us-east-1");
    assert_string_equal(cache.service, "service");
    char first[65];
    memcpy(first, s.out.signature, 65);

    /* Same inputs: the cached key is used as is (spoil it to see). */
    cache.key[0] ^= 1;
    assert_int_equal(simple_sign(&s, &cache), EDDY_OK);
    assert_string_not_equal(s.out.signature, first);

    /* Each input of the key replaces it. */
    s.params.unix_s += 86400;
    expect_cache_agrees(&s, &cache);
    assert_string_equal(cache.date, "20150831");
    s.creds.secret_access_key = "another-secret";
    expect_cache_agrees(&s, &cache);
    s.params.region = "eu-west-1";
    expect_cache_agrees(&s, &cache);
    s.params.service = "dynamodb";
    expect_cache_agrees(&s, &cache);
    /* A region too long for the cache is signed without it. */
    s.params.region = "a-region-name-longer-than-the-cache-field";
    expect_cache_agrees(&s, &cache);

    eddy_sigv4_key_cache_cleanup(&cache);
    static const struct eddy_sigv4_key_cache zero;
    assert_memory_equal(&cache, &zero, sizeof cache);
    eddy_sigv4_result_cleanup(&s.out);
}

static void test_amz_date_matches_gmtime(void **state)
{
    (void)state;
    struct simple s;
    simple_init(&s);
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 42);
    const int64_t fixed[] = {0, 951782400 /* 2000-02-29 */, 4107542400 /* 2100-03-01 */,
                             INT64_C(253402300799) /* 9999-12-31T23:59:59 */, T_TIME};
    for (size_t i = 0; i < 2000 + EDDY_ARRAY_SIZE(fixed); i++) {
        int64_t t = i < EDDY_ARRAY_SIZE(fixed)
                        ? fixed[i]
                        : (int64_t)eddy_rng_below(&rng, UINT64_C(253402300800));
        s.params.unix_s = t;
        assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
        char want[17];
        eddy_time_amz(t, want);
        assert_string_equal(s.out.amz_date, want);
    }
    eddy_sigv4_result_cleanup(&s.out);
}

static void test_path_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        bool normalize;
        bool single;
        const char *want;
    } cases[] = {
        {"/a%20b", true, false, "/a%2520b"}, /* every service but S3: encoded again */
        {"/a%20b", true, true, "/a%20b"},    /* S3: as sent */
        {"", true, false, "/"},
        {"/a/b/..", true, false, "/a"},
        {"/a/./b/", true, false, "/a/b/"},
        {"/../..", true, false, "/"},
        {"a/b", true, false, "/a/b"},
        {"//a//b//", false, false, "//a//b//"},
        {"/\xc3\xbc", true, false, "/%C3%BC"},
        {"/a:b@c", false, false, "/a%3Ab%40c"},
    };
    struct simple s;
    simple_init(&s);
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(cases); i++) {
        s.req.path = eddy_str_c(cases[i].path);
        s.params.normalize_path = cases[i].normalize;
        s.params.single_encode_path = cases[i].single;
        assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
        char *line = creq_line(&s, 1);
        if (strcmp(line, cases[i].want) != 0)
            fail_msg("path \"%s\": canonical \"%s\", want \"%s\"", cases[i].path, line,
                     cases[i].want);
        free(line);
    }
    eddy_sigv4_result_cleanup(&s.out);
}

static void test_query_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *query;
        const char *want;
    } cases[] = {
        {"b=2&a=1", "a=1&b=2"},
        {"a=2&a=1", "a=1&a=2"},
        {"a=1&&b", "a=1&b="},
        {"k=%E1%88%B4", "k=%E1%88%B4"},
        {"k=\xe1\x88\xb4", "k=%E1%88%B4"},
        {"a=b+c", "a=b%2Bc"},
        {"a=%zz&b=%4", "a=%25zz&b=%254"},
        {"a=x=y", "a=x%3Dy"},
        {"a=1&B=1&A=1", "A=1&B=1&a=1"},
        {"a%20b=1", "a%20b=1"},
    };
    struct simple s;
    simple_init(&s);
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(cases); i++) {
        s.req.query = eddy_str_c(cases[i].query);
        assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
        char *line = creq_line(&s, 2);
        if (strcmp(line, cases[i].want) != 0)
            fail_msg("query \"%s\": canonical \"%s\", want \"%s\"", cases[i].query, line,
                     cases[i].want);
        free(line);
    }
    eddy_sigv4_result_cleanup(&s.out);
}

static void test_headers(void **state)
{
    (void)state;
    struct simple s;
    simple_init(&s);
    s.h[2] = (struct eddy_sigv4_header){EDDY_STR_LIT("User-Agent"), EDDY_STR_LIT("eddy/1")};
    s.h[3] = (struct eddy_sigv4_header){EDDY_STR_LIT("X-Amzn-Trace-Id"), EDDY_STR_LIT("Root=1")};
    s.h[4] = (struct eddy_sigv4_header){EDDY_STR_LIT("X-Custom"), EDDY_STR_LIT(" a\t\t b  ")};
    s.h[5] = (struct eddy_sigv4_header){EDDY_STR_LIT("x-custom"), EDDY_STR_LIT("")};
    s.h[6] = (struct eddy_sigv4_header){EDDY_STR_LIT("Content-Type"), EDDY_STR_LIT("x/y")};
    s.h[7] = (struct eddy_sigv4_header){EDDY_STR_LIT("X-Amz-Security-Token"), EDDY_STR_LIT("tok")};
    /* Not signed, as the SDKs do: proxies and tracing may change them. */
    static const char *const unsigned_names[] = {"Authorization", "Connection", "Expect",
                                                 "Transfer-Encoding", "Upgrade"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(unsigned_names); i++)
        s.h[8 + i] = (struct eddy_sigv4_header){eddy_str_c(unsigned_names[i]), EDDY_STR_LIT("x")};
    s.req.nheaders = 8 + EDDY_ARRAY_SIZE(unsigned_names);
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    const char *want = "GET\n/\n\n"
                       "content-type:x/y\n"
                       "host:example.com\n"
                       "x-amz-date:20150830T123600Z\n"
                       "x-amz-security-token:tok\n"
                       "x-custom:a b,\n"
                       "\n"
                       "content-type;host;x-amz-date;x-amz-security-token;x-custom\n"
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_string_equal(eddy_buf_cstr(&s.out.canonical_request), want);
    assert_non_null(strstr(eddy_buf_cstr(&s.out.authorization),
                           ", SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
                           "x-custom, Signature="));
    eddy_sigv4_result_cleanup(&s.out);
}

static void test_payload_hash(void **state)
{
    (void)state;
    struct simple s;
    simple_init(&s);
    s.req.method = EDDY_STR_LIT("POST");
    s.req.payload = "{}";
    s.req.payload_len = 2;
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    char want[65];
    eddy_sha256_hex("{}", 2, want);
    assert_string_equal(s.out.payload_hash, want);
    char *last = creq_line(&s, 7);
    assert_string_equal(last, want);
    free(last);
    /* A hash given by the caller is used as is. */
    const char *given = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    s.req.payload_hash = given;
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    assert_string_equal(s.out.payload_hash, given);
    last = creq_line(&s, 7);
    assert_string_equal(last, given);
    free(last);
    /* The result's own context hashes alike between signatures, and a
     * signature after it is the same as before. */
    char sig_before[65];
    memcpy(sig_before, s.out.signature, sizeof sig_before);
    char hex[65];
    eddy_sigv4_payload_hash(&s.out, "abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    eddy_sigv4_payload_hash(&s.out, "{}", 2, hex);
    assert_string_equal(hex, want);
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    assert_string_equal(s.out.signature, sig_before);
    eddy_sigv4_result_cleanup(&s.out);
}

/* Sign expecting code, with a detail containing about; the result is left
 * empty and the secret never appears in the detail. */
static void expect_error(struct simple *s, eddy_err code, const char *about)
{
    eddy_err rc = simple_sign(s, NULL);
    if (rc != code)
        fail_msg("got %s (%s), want %s", eddy_err_name(rc), s->err.detail, eddy_err_name(code));
    if (strstr(s->err.detail, about) == NULL)
        fail_msg("detail \"%s\" does not mention \"%s\"", s->err.detail, about);
    assert_null(strstr(s->err.detail, T_SECRET));
    assert_int_equal(s->out.authorization.len, 0);
    assert_string_equal(s->out.signature, "");
}

static void test_errors(void **state)
{
    (void)state;
    struct simple s;
    simple_init(&s);
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    char good[65];
    memcpy(good, s.out.signature, 65);

    s.h[0].name = EDDY_STR_LIT("Hostx");
    expect_error(&s, EDDY_EINVAL, "host");
    s.h[0].name = EDDY_STR_LIT("");
    expect_error(&s, EDDY_EINVAL, "no name");
    s.h[0].name = EDDY_STR_LIT("Host");

    s.req.nheaders = EDDY_SIGV4_MAX_HEADERS + 1;
    for (size_t i = 2; i < s.req.nheaders; i++)
        s.h[i] = (struct eddy_sigv4_header){EDDY_STR_LIT("X-A"), EDDY_STR_LIT("1")};
    expect_error(&s, EDDY_ELIMIT, "headers");
    s.req.nheaders = 2;

    s.params.region = "";
    expect_error(&s, EDDY_EINVAL, "region");
    s.params.region = "us-east-1";
    s.params.unix_s = -1;
    expect_error(&s, EDDY_EINVAL, "time");
    s.params.unix_s = T_TIME;
    s.req.payload_len = 3;
    expect_error(&s, EDDY_EINVAL, "payload");
    s.req.payload_len = 0;
    s.req.payload_hash = "abc";
    expect_error(&s, EDDY_EINVAL, "payload hash");
    s.req.payload_hash = NULL;
    s.creds.access_key_id = NULL;
    expect_error(&s, EDDY_EINVAL, "access key id");
    s.creds.access_key_id = "AKIDEXAMPLE";
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s.creds.secret_access_key = big;
    expect_error(&s, EDDY_EINVAL, "secret access key");
    assert_null(strstr(s.err.detail, "xxxxxxxx"));
    s.creds.secret_access_key = T_SECRET;

    /* The result is usable again after an error. */
    assert_int_equal(simple_sign(&s, NULL), EDDY_OK);
    assert_string_equal(s.out.signature, good);
    eddy_sigv4_result_cleanup(&s.out);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--case") == 0)
        return run_case(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--case NAME]\n", argv[0]);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_hmac_matches_openssl),
        cmocka_unit_test(test_key_cache),      cmocka_unit_test(test_amz_date_matches_gmtime),
        cmocka_unit_test(test_path_canonical), cmocka_unit_test(test_query_canonical),
        cmocka_unit_test(test_headers),        cmocka_unit_test(test_payload_hash),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
