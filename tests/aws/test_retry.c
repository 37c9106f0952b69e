/*
 * test_retry.c - unit tests for aws/retry: classification, attempts, the
 * quota, backoff bounds and AWS_MAX_ATTEMPTS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/retry.h"
#include "base/alloc.h"

static void test_classify_codes(void **state)
{
    (void)state;
    static const char *const throttles[] = {"Throttling",
                                            "ThrottlingException",
                                            "ThrottledException",
                                            "RequestThrottledException",
                                            "TooManyRequestsException",
                                            "ProvisionedThroughputExceededException",
                                            "TransactionInProgressException",
                                            "RequestLimitExceeded",
                                            "BandwidthLimitExceeded",
                                            "LimitExceededException",
                                            "RequestThrottled",
                                            "SlowDown",
                                            "PriorRequestNotComplete",
                                            "EC2ThrottledException"};
    static const char *const transients[] = {"RequestTimeout",
                                             "RequestTimeoutException",
                                             "InternalError",
                                             "InternalServerError",
                                             "ServiceUnavailable",
                                             "IDPCommunicationError",
                                             "TransactionConflictException"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(throttles); i++) {
        struct eddy_aws_class k = eddy_aws_classify(EDDY_OK, 400, throttles[i]);
        if (k.retry != EDDY_RETRY_THROTTLE || k.err != EDDY_ETHROTTLED)
            fail_msg("%s is not classed as throttling", throttles[i]);
    }
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(transients); i++) {
        struct eddy_aws_class k = eddy_aws_classify(EDDY_OK, 400, transients[i]);
        if (k.retry != EDDY_RETRY_TRANSIENT || k.err != EDDY_ETRANSIENT)
            fail_msg("%s is not classed as transient", transients[i]);
    }
}

/* The one classifier: the error a call ends with and its retry class. */
static void test_classify_table(void **state)
{
    (void)state;
    static const struct {
        eddy_err transport;
        long status;
        const char *code;
        eddy_err err;
        enum eddy_retry_class want;
    } rows[] = {
        {EDDY_OK, 200, NULL, EDDY_OK, EDDY_RETRY_NO},
        {EDDY_OK, 400, "ConditionalCheckFailedException", EDDY_ECONDITION, EDDY_RETRY_NO},
        {EDDY_OK, 400, "TransactionCanceledException", EDDY_ETXN_CANCELED, EDDY_RETRY_NO},
        {EDDY_OK, 400, "ValidationException", EDDY_EAWS, EDDY_RETRY_NO},
        {EDDY_OK, 403, "UnrecognizedClientException", EDDY_EAUTH, EDDY_RETRY_NO},
        {EDDY_OK, 403, "InvalidSignatureException", EDDY_EAUTH, EDDY_RETRY_NO},
        {EDDY_OK, 403, "SignatureDoesNotMatch", EDDY_EAUTH, EDDY_RETRY_NO},
        {EDDY_OK, 400, "AccessDeniedException", EDDY_EAUTH, EDDY_RETRY_NO},
        {EDDY_OK, 400, "ExpiredTokenException", EDDY_EAUTH, EDDY_RETRY_NO},
        {EDDY_OK, 400, "com.amazonaws.dynamodb.v20120810#ThrottlingException", EDDY_ETHROTTLED,
         EDDY_RETRY_THROTTLE},
        {EDDY_OK, 400, "KMS.ThrottlingException", EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
        {EDDY_OK, 400, "AWS.SimpleQueueService.RequestThrottled", EDDY_ETHROTTLED,
         EDDY_RETRY_THROTTLE},
        {EDDY_OK, 400, "RequestThrottled;Sender", EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
        {EDDY_OK, 400, "ThrottlingExceptionX", EDDY_EAWS, EDDY_RETRY_NO},
        {EDDY_OK, 400, "Throttl", EDDY_EAWS, EDDY_RETRY_NO},
        {EDDY_OK, 500, "ThrottlingException", EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE}, /* code wins */
        {EDDY_OK, 500, "InternalServerError", EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        /* a 5xx is retried whatever code it carries, as in the SDKs' standard mode */
        {EDDY_OK, 504, "ExpiredToken", EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        {EDDY_OK, 500, "ValidationException", EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        {EDDY_OK, 500, NULL, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        {EDDY_OK, 502, "", EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        {EDDY_OK, 503, NULL, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        {EDDY_OK, 504, NULL, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        {EDDY_OK, 501, NULL, EDDY_ETRANSIENT, EDDY_RETRY_TRANSIENT},
        {EDDY_OK, 429, NULL, EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
        {EDDY_OK, 429, "Whatever", EDDY_ETHROTTLED, EDDY_RETRY_THROTTLE},
        {EDDY_OK, 401, NULL, EDDY_EAUTH, EDDY_RETRY_NO},
        {EDDY_OK, 404, NULL, EDDY_EAWS, EDDY_RETRY_NO},
        {EDDY_ENET, 0, NULL, EDDY_ENET, EDDY_RETRY_TRANSIENT},
        {EDDY_ETIMEOUT, 0, NULL, EDDY_ETIMEOUT, EDDY_RETRY_TIMEOUT},
        {EDDY_ECANCELED, 0, NULL, EDDY_ECANCELED, EDDY_RETRY_NO},
        {EDDY_ELIMIT, 0, NULL, EDDY_ELIMIT, EDDY_RETRY_NO},
    };
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(rows); i++) {
        struct eddy_aws_class got =
            eddy_aws_classify(rows[i].transport, rows[i].status, rows[i].code);
        if (got.retry != rows[i].want || got.err != rows[i].err)
            fail_msg("row %zu (%s, %ld, %s): got %s/%s, want %s/%s", i,
                     eddy_err_name(rows[i].transport), rows[i].status,
                     rows[i].code ? rows[i].code : "NULL", eddy_err_name(got.err),
                     eddy_retry_class_name(got.retry), eddy_err_name(rows[i].err),
                     eddy_retry_class_name(rows[i].want));
    }
    /* CancellationReasons codes */
    assert_true(eddy_aws_code_throttles("ThrottlingError"));
    assert_true(eddy_aws_code_throttles("TransactionConflict"));
    assert_true(eddy_aws_code_throttles("ProvisionedThroughputExceeded"));
    assert_false(eddy_aws_code_throttles("ConditionalCheckFailed"));
    assert_false(eddy_aws_code_throttles("ValidationError"));
}

static void test_max_attempts(void **state)
{
    (void)state;
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 1);
    struct eddy_retry_quota q;
    eddy_retry_quota_init(&q);
    struct eddy_retry_call c;
    eddy_retry_call_init(&c);
    uint32_t delay;
    assert_true(eddy_retry_decide(&q, &c, EDDY_RETRY_THROTTLE, 3, &rng, &delay));
    assert_true(eddy_retry_decide(&q, &c, EDDY_RETRY_TRANSIENT, 3, &rng, &delay));
    assert_false(eddy_retry_decide(&q, &c, EDDY_RETRY_TRANSIENT, 3, &rng, &delay));
    assert_int_equal(c.stop, EDDY_RETRY_STOP_MAX_ATTEMPTS);
    assert_int_equal(c.failed, 3);
    assert_int_equal(q.available, 500 - 2 * EDDY_RETRY_COST);

    /* 0 means the default of 3; 1 means no retry at all. */
    eddy_retry_call_init(&c);
    assert_true(eddy_retry_decide(&q, &c, EDDY_RETRY_TRANSIENT, 0, &rng, &delay));
    assert_true(eddy_retry_decide(&q, &c, EDDY_RETRY_TRANSIENT, 0, &rng, &delay));
    assert_false(eddy_retry_decide(&q, &c, EDDY_RETRY_TRANSIENT, 0, &rng, &delay));
    eddy_retry_call_init(&c);
    assert_false(eddy_retry_decide(&q, &c, EDDY_RETRY_TRANSIENT, 1, &rng, &delay));
    assert_int_equal(c.stop, EDDY_RETRY_STOP_MAX_ATTEMPTS);

    /* Not retryable: no tokens taken. */
    uint32_t before = q.available;
    eddy_retry_call_init(&c);
    assert_false(eddy_retry_decide(&q, &c, EDDY_RETRY_NO, 3, &rng, &delay));
    assert_int_equal(c.stop, EDDY_RETRY_STOP_NOT_RETRYABLE);
    assert_int_equal(q.available, before);
    assert_string_equal(eddy_retry_stop_name(c.stop), "not retryable");
}

static void test_quota_exhaustion(void **state)
{
    (void)state;
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 2);
    struct eddy_retry_quota q;
    eddy_retry_quota_init(&q);
    struct eddy_retry_call c;
    uint32_t delay;
    int retries = 0;
    for (;;) {
        eddy_retry_call_init(&c);
        if (!eddy_retry_decide(&q, &c, EDDY_RETRY_TRANSIENT, 3, &rng, &delay))
            break;
        retries++;
    }
    assert_int_equal(retries, EDDY_RETRY_QUOTA_INITIAL / EDDY_RETRY_COST);
    assert_int_equal(c.stop, EDDY_RETRY_STOP_QUOTA);
    assert_int_equal(q.available, 0);

    /* With 5 tokens: a transient retry fits, a timeout retry (10) does not. */
    q.available = EDDY_RETRY_COST;
    eddy_retry_call_init(&c);
    assert_false(eddy_retry_decide(&q, &c, EDDY_RETRY_TIMEOUT, 3, &rng, &delay));
    assert_int_equal(c.stop, EDDY_RETRY_STOP_QUOTA);
    assert_int_equal(q.available, EDDY_RETRY_COST);
    eddy_retry_call_init(&c);
    assert_true(eddy_retry_decide(&q, &c, EDDY_RETRY_THROTTLE, 3, &rng, &delay));
    assert_int_equal(q.available, 0);
}

static void test_quota_refund(void **state)
{
    (void)state;
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 3);
    struct eddy_retry_quota q;
    eddy_retry_quota_init(&q);
    struct eddy_retry_call c;
    uint32_t delay;

    /* A timeout retry takes 10; success after it gives the 10 back. */
    eddy_retry_call_init(&c);
    assert_true(eddy_retry_decide(&q, &c, EDDY_RETRY_TIMEOUT, 3, &rng, &delay));
    assert_int_equal(q.available, 490);
    eddy_retry_on_success(&q, &c);
    assert_int_equal(q.available, 500);

    /* Success at once gives 1, up to the capacity. */
    q.available = 100;
    eddy_retry_call_init(&c);
    eddy_retry_on_success(&q, &c);
    assert_int_equal(q.available, 101);
    q.available = 500;
    eddy_retry_on_success(&q, &c);
    assert_int_equal(q.available, 500);
    q.available = 497;
    eddy_retry_call_init(&c);
    assert_true(eddy_retry_decide(&q, &c, EDDY_RETRY_TIMEOUT, 3, &rng, &delay));
    q.available = 495;
    eddy_retry_on_success(&q, &c);
    assert_int_equal(q.available, 500);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 4);
    for (unsigned attempt = 0; attempt < 70; attempt++) {
        uint64_t ceiling = attempt < 40 ? (uint64_t)1000 << attempt : UINT64_MAX;
        if (ceiling > 20000)
            ceiling = 20000;
        uint32_t lo = UINT32_MAX;
        uint32_t hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t d = eddy_backoff_full_jitter(&rng, attempt, 1000, 20000);
            if (d >= ceiling)
                fail_msg("attempt %u: delay %u >= %llu", attempt, d, (unsigned long long)ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* Full jitter spreads over the whole range, not just near the top. */
        assert_true(lo < ceiling / 20);
        assert_true(hi > ceiling - ceiling / 20);
    }
    assert_true(eddy_backoff_full_jitter(&rng, UINT32_MAX, 1000, 20000) < 20000);
    assert_int_equal(eddy_backoff_full_jitter(&rng, 3, 0, 20000), 0);
    assert_true(eddy_backoff_full_jitter(&rng, 0, 5000, 100) < 100); /* cap below base */
    assert_true(eddy_backoff_full_jitter(&rng, 31, UINT32_MAX, UINT32_MAX) < UINT32_MAX);
}

/* Equal jitter: between half the ceiling and all of it, spread over both. */
static void test_backoff_equal_jitter(void **state)
{
    (void)state;
    struct eddy_rng rng;
    eddy_rng_seed(&rng, 6);
    for (unsigned attempt = 0; attempt < 40; attempt++) {
        uint32_t ceiling = attempt < 5 ? 100u << attempt : 2000;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t d = eddy_backoff_equal_jitter(&rng, attempt, 100, 2000);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        assert_true(lo >= ceiling / 2 && lo < ceiling / 2 + ceiling / 20);
        assert_true(hi <= ceiling && hi > ceiling - ceiling / 20);
    }
    assert_int_equal(eddy_backoff_equal_jitter(&rng, 3, 0, 20000), 0);
    assert_true(eddy_backoff_equal_jitter(&rng, 31, UINT32_MAX, UINT32_MAX) >= UINT32_MAX / 2);
}

static void test_decide_delays(void **state)
{
    (void)state;
    struct eddy_rng a;
    struct eddy_rng b;
    eddy_rng_seed(&a, 5);
    eddy_rng_seed(&b, 5);
    struct eddy_retry_quota qa;
    struct eddy_retry_quota qb;
    eddy_retry_quota_init(&qa);
    eddy_retry_quota_init(&qb);
    struct eddy_retry_call ca;
    struct eddy_retry_call cb;
    eddy_retry_call_init(&ca);
    eddy_retry_call_init(&cb);
    for (unsigned n = 1; n < 10; n++) {
        uint32_t da;
        uint32_t db;
        assert_true(eddy_retry_decide(&qa, &ca, EDDY_RETRY_THROTTLE, 10, &a, &da));
        assert_true(eddy_retry_decide(&qb, &cb, EDDY_RETRY_THROTTLE, 10, &b, &db));
        assert_int_equal(da, db); /* the same seed gives the same waits */
        uint64_t ceiling = (uint64_t)EDDY_RETRY_BASE_MS << (n - 1);
        if (ceiling > EDDY_RETRY_CAP_MS)
            ceiling = EDDY_RETRY_CAP_MS;
        if (da >= ceiling)
            fail_msg("retry %u waits %u ms, ceiling %llu", n, da, (unsigned long long)ceiling);
    }
}

static void test_max_attempts_parse(void **state)
{
    (void)state;
    unsigned v = 0;
    struct eddy_error err;
    assert_int_equal(eddy_retry_parse_max_attempts(NULL, &v, &err), EDDY_OK);
    assert_int_equal(v, 3);
    assert_int_equal(eddy_retry_parse_max_attempts("", &v, &err), EDDY_OK);
    assert_int_equal(v, 3);
    assert_int_equal(eddy_retry_parse_max_attempts("1", &v, &err), EDDY_OK);
    assert_int_equal(v, 1);
    assert_int_equal(eddy_retry_parse_max_attempts("10", &v, &err), EDDY_OK);
    assert_int_equal(v, 10);
    static const char *const bad[] = {
        "0", "-1", "+3", " 3", "3x", "abc", "101", "3.5", "99999999999999999999999"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(bad); i++) {
        v = 77;
        eddy_error_clear(&err);
        if (eddy_retry_parse_max_attempts(bad[i], &v, &err) != EDDY_ECONFIG)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(err.code, EDDY_ECONFIG);
        assert_non_null(strstr(err.detail, "AWS_MAX_ATTEMPTS"));
        assert_non_null(strstr(err.detail, bad[i]));
        assert_int_equal(v, 77);
    }

    assert_int_equal(setenv("AWS_MAX_ATTEMPTS", "7", 1), 0);
    assert_int_equal(eddy_retry_max_attempts_env(&v, &err), EDDY_OK);
    assert_int_equal(v, 7);
    assert_int_equal(setenv("AWS_MAX_ATTEMPTS", "seven", 1), 0);
    assert_int_equal(eddy_retry_max_attempts_env(&v, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "AWS_MAX_ATTEMPTS"));
    assert_int_equal(unsetenv("AWS_MAX_ATTEMPTS"), 0);
    assert_int_equal(eddy_retry_max_attempts_env(&v, &err), EDDY_OK);
    assert_int_equal(v, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_codes),       cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_max_attempts),         cmocka_unit_test(test_quota_exhaustion),
        cmocka_unit_test(test_quota_refund),         cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_equal_jitter), cmocka_unit_test(test_decide_delays),
        cmocka_unit_test(test_max_attempts_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
