/* Unit tests for aws/endpoint: region and endpoint from the environment,
 * URL checks with the variable named, Host and signing path; and
 * AWS_MAX_ATTEMPTS as eddy_aws_init reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/awscall.h"
#include "aws/endpoint.h"

static void clear_env(void)
{
    static const char *const vars[] = {"AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_SQS",
                                       "AWS_ENDPOINT_URL_DYNAMODB",
                                       "AWS_ENDPOINT_URL_EVENTBRIDGE",
                                       "AWS_ENDPOINT_URL_EVENTBRIDGEV2",
                                       "AWS_MAX_ATTEMPTS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static void test_region(void **state)
{
    (void)state;
    char region[EDDY_REGION_MAX];
    struct eddy_error err = {0};
    assert_int_equal(eddy_region_from_env(region, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "AWS_REGION"));
    assert_non_null(strstr(err.detail, "AWS_DEFAULT_REGION"));
    setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
    assert_int_equal(eddy_region_from_env(region, &err), EDDY_OK);
    assert_string_equal(region, "eu-west-1");
    setenv("AWS_REGION", "us-east-2", 1);
    assert_int_equal(eddy_region_from_env(region, &err), EDDY_OK);
    assert_string_equal(region, "us-east-2");
    setenv("AWS_REGION", "us east/1", 1);
    assert_int_equal(eddy_region_from_env(region, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "AWS_REGION"));
}

static void check_ep(enum eddy_aws_service svc, const char *url, const char *host, const char *path,
                     bool tls)
{
    struct eddy_endpoint ep;
    struct eddy_error err = {0};
    assert_int_equal(eddy_endpoint_resolve(svc, "eu-west-1", &ep, &err), EDDY_OK);
    assert_string_equal(ep.url, url);
    assert_string_equal(ep.host, host);
    assert_string_equal(ep.path, path);
    assert_int_equal(ep.tls, tls);
    eddy_endpoint_cleanup(&ep);
}

static void test_resolve(void **state)
{
    (void)state;
    check_ep(EDDY_AWS_SQS, "https://sqs.eu-west-1.amazonaws.com/", "sqs.eu-west-1.amazonaws.com",
             "/", true);
    check_ep(EDDY_AWS_EVENTBRIDGE, "https://events.eu-west-1.amazonaws.com/",
             "events.eu-west-1.amazonaws.com", "/", true);
    /* each partition's own domain */
    static const char *const partitions[][2] = {
        {"cn-north-1", "https://sqs.cn-north-1.amazonaws.com.cn/"},
        {"cn-northwest-1", "https://sqs.cn-northwest-1.amazonaws.com.cn/"},
        {"us-gov-west-1", "https://sqs.us-gov-west-1.amazonaws.com/"},
        {"us-iso-east-1", "https://sqs.us-iso-east-1.c2s.ic.gov/"},
        {"us-isob-east-1", "https://sqs.us-isob-east-1.sc2s.sgov.gov/"},
    };
    for (size_t i = 0; i < sizeof partitions / sizeof partitions[0]; i++) {
        struct eddy_endpoint ep;
        struct eddy_error err = {0};
        assert_int_equal(eddy_endpoint_resolve(EDDY_AWS_SQS, partitions[i][0], &ep, &err), EDDY_OK);
        assert_string_equal(ep.url, partitions[i][1]);
        eddy_endpoint_cleanup(&ep);
    }
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000", 1);
    check_ep(EDDY_AWS_DYNAMODB, "http://127.0.0.1:5000/", "127.0.0.1:5000", "/", false);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:80/prefix", 1);
    check_ep(EDDY_AWS_DYNAMODB, "http://localhost/prefix/", "localhost", "/prefix/", false);
    check_ep(EDDY_AWS_SQS, "http://127.0.0.1:5000/", "127.0.0.1:5000", "/", false);
    setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "https://[::1]:8443/", 1);
    check_ep(EDDY_AWS_EVENTBRIDGE, "https://[::1]:8443/", "[::1]:8443", "/", true);
    setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "https://events.example.com:443", 1);
    check_ep(EDDY_AWS_EVENTBRIDGE, "https://events.example.com/", "events.example.com", "/", true);
    assert_string_equal(eddy_aws_service_info(EDDY_AWS_EVENTBRIDGE)->signing_name, "events");
}

/* The Custom Event Bus API: the model's prefix, signing name and protocol,
 * the SDKs' variable name, and the account's own host. */
static void test_resolve_eventbridge2(void **state)
{
    (void)state;
    const struct eddy_aws_service_info *info = eddy_aws_service_info(EDDY_AWS_EVENTBRIDGE2);
    assert_string_equal(info->prefix, "eventsv2");
    assert_string_equal(info->signing_name, "events");
    assert_string_equal(info->target_prefix, "AWSEventsV2");
    assert_string_equal(info->content_type, "application/cbor");
    assert_int_equal(info->protocol, EDDY_AWS_RPCV2_CBOR);
    assert_int_equal(eddy_aws_service_info(EDDY_AWS_EVENTBRIDGE)->protocol, EDDY_AWS_JSON);
    check_ep(EDDY_AWS_EVENTBRIDGE2, "https://eventsv2.eu-west-1.amazonaws.com/",
             "eventsv2.eu-west-1.amazonaws.com", "/", true);
    struct eddy_endpoint ep;
    struct eddy_error err = {0};
    assert_int_equal(eddy_endpoint_resolve_account(EDDY_AWS_EVENTBRIDGE2, "eu-west-1",
                                                   "123456789012", &ep, &err),
                     EDDY_OK);
    assert_string_equal(ep.url, "https://123456789012.eventsv2.eu-west-1.amazonaws.com/");
    eddy_endpoint_cleanup(&ep);
    assert_int_equal(
        eddy_endpoint_resolve_account(EDDY_AWS_EVENTBRIDGE2, "eu-west-1", "12345", &ep, &err),
        EDDY_EINVAL);
    setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:1", 1); /* not this service's */
    setenv("AWS_ENDPOINT_URL_EVENTBRIDGEV2", "http://127.0.0.1:2", 1);
    check_ep(EDDY_AWS_EVENTBRIDGE2, "http://127.0.0.1:2/", "127.0.0.1:2", "/", false);
}

static void test_bad_urls(void **state)
{
    (void)state;
    static const char *const bad[] = {"ftp://x",        "http://",        "http://h:0",
                                      "http://h:99999", "http://h:12a",   "http://h/?a=b",
                                      "http://u@h",     "localhost:4566", "http://h#x",
                                      "http://[::1",    "http://h h"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("AWS_ENDPOINT_URL_SQS", bad[i], 1);
        struct eddy_endpoint ep;
        struct eddy_error err = {0};
        assert_int_equal(eddy_endpoint_resolve(EDDY_AWS_SQS, "us-east-1", &ep, &err), EDDY_ECONFIG);
        assert_non_null(strstr(err.detail, "AWS_ENDPOINT_URL_SQS"));
    }
}

static void test_max_attempts(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct eddy_creds *creds = eddy_creds_new_static(&loop, "AKID", "SECRET", NULL);
    struct eddy_aws_config cfg = {.loop = &loop, .creds = creds};
    static const struct eddy_transport_ops ops = {0};
    cfg.transport.ops = &ops;
    struct eddy_aws aws;
    struct eddy_error err = {0};
    setenv("AWS_REGION", "us-east-1", 1);
    assert_int_equal(eddy_aws_init(&aws, &cfg, &err), EDDY_OK);
    assert_int_equal(aws.max_attempts, 3);
    assert_string_equal(aws.region, "us-east-1");
    setenv("AWS_MAX_ATTEMPTS", "7", 1);
    assert_int_equal(eddy_aws_init(&aws, &cfg, &err), EDDY_OK);
    assert_int_equal(aws.max_attempts, 7);
    setenv("AWS_MAX_ATTEMPTS", "zero", 1);
    assert_int_equal(eddy_aws_init(&aws, &cfg, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "AWS_MAX_ATTEMPTS"));
    unsetenv("AWS_REGION");
    unsetenv("AWS_MAX_ATTEMPTS");
    assert_int_equal(eddy_aws_init(&aws, &cfg, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "AWS_DEFAULT_REGION"));
    eddy_creds_close(creds, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_region, setup),
        cmocka_unit_test_setup(test_resolve, setup),
        cmocka_unit_test_setup(test_resolve_eventbridge2, setup),
        cmocka_unit_test_setup(test_bad_urls, setup),
        cmocka_unit_test_setup(test_max_attempts, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
