/* Unit tests for aws/awscall: request shape and signing, error parsing and
 * classes, standard-mode retries and the quota, cancellation, credentials
 * that have to be fetched first. Against the fake transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aws/awscall.h"
#include "rig.h"
#include "base/alloc.h"

/* What a callback saw. */
struct seen {
    int calls;
    eddy_err err;
    long status;
    unsigned attempts;
    char request_id[96];
    char code[128];
    char message[256];
    char detail[EDDY_ERROR_DETAIL_MAX];
    char *json; /* printed reply body */
};

static void on_done(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct seen *s = ud;
    s->calls++;
    s->err = err;
    assert_non_null(reply);
    s->status = reply->status;
    s->attempts = reply->attempts;
    snprintf(s->request_id, sizeof s->request_id, "%s", reply->request_id);
    snprintf(s->code, sizeof s->code, "%s", reply->error_code ? reply->error_code : "");
    snprintf(s->message, sizeof s->message, "%s", reply->error_message);
    snprintf(s->detail, sizeof s->detail, "%s", eddy_error_text(reply->error));
    s->json = reply->json ? cJSON_PrintUnformatted(reply->json) : NULL;
}

static void seen_cleanup(struct seen *s)
{
    free(s->json);
    s->json = NULL;
}

/* Start op on c with body text, run the loop to the end. */
static void call_run(struct rig *r, struct eddy_aws_client *c, const char *op, const char *body,
                     bool idempotent, struct seen *s)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_puts(&b, body);
    struct eddy_aws_call_opts opts = {.idempotent = idempotent};
    struct eddy_error err = {0};
    assert_int_equal(eddy_aws_call(c, op, &b, &opts, on_done, s, NULL, &err), EDDY_OK);
    assert_null(b.ptr);            /* taken over */
    assert_int_equal(s->calls, 0); /* never from inside the start */
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(s->calls, 1);
}

static void client_init(struct rig *r, struct eddy_aws_client *c, enum eddy_aws_service svc)
{
    struct eddy_error err = {0};
    assert_int_equal(eddy_aws_client_init(c, &r->aws, svc, &r->ep, &err), EDDY_OK);
}

static bool is_hex64(const char *p)
{
    for (int i = 0; i < 64; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return p[64] == '\0' || p[64] == ',' || p[64] == ' ';
}

static void test_request_shape(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    eddy_fake_push_status(r.fake, 200,
                          "Content-Type: application/x-amz-json-1.0\r\n"
                          "x-amzn-RequestId: REQ123\r\n",
                          "{\"Item\":{\"_pk\":{\"S\":\"a\"}}}");
    struct seen s = {0};
    call_run(&r, &c, "GetItem", "{\"TableName\":\"t\"}", true, &s);
    assert_int_equal(s.err, EDDY_OK);
    assert_int_equal(s.status, 200);
    assert_int_equal(s.attempts, 1);
    assert_string_equal(s.request_id, "REQ123");
    assert_string_equal(s.json, "{\"Item\":{\"_pk\":{\"S\":\"a\"}}}");
    assert_string_equal(s.code, "");

    const struct eddy_fake_request *q = eddy_fake_last(r.fake);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->url, "http://127.0.0.1:4566/");
    assert_string_equal(q->body, "{\"TableName\":\"t\"}");
    assert_string_equal(eddy_fake_request_header(q, "host"), "127.0.0.1:4566");
    assert_string_equal(eddy_fake_request_header(q, "X-Amz-Target"), "DynamoDB_20120810.GetItem");
    assert_string_equal(eddy_fake_request_header(q, "Content-Type"), "application/x-amz-json-1.0");
    assert_string_equal(eddy_fake_request_header(q, "X-Amz-Date"), "20231114T221320Z");
    assert_null(eddy_fake_request_header(q, "X-Amz-Security-Token"));
    assert_null(eddy_fake_request_header(q, "Expect")); /* an empty Expect would be sent */
    const char *auth = eddy_fake_request_header(q, "Authorization");
    assert_non_null(auth);
    const char *want = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/dynamodb/"
                       "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
                       "Signature=";
    assert_int_equal(strncmp(auth, want, strlen(want)), 0);
    assert_true(is_hex64(auth + strlen(want)));
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_session_token_and_eventbridge(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, "SESSIONTOKEN", 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_EVENTBRIDGE);
    eddy_fake_push_json(r.fake, 200, "{\"FailedEntryCount\":0,\"Entries\":[]}");
    struct seen s = {0};
    call_run(&r, &c, "PutEvents", "", false, &s);
    assert_int_equal(s.err, EDDY_OK);
    const struct eddy_fake_request *q = eddy_fake_last(r.fake);
    assert_string_equal(q->body, "{}"); /* an empty body is sent as {} */
    assert_string_equal(eddy_fake_request_header(q, "X-Amz-Target"), "AWSEvents.PutEvents");
    assert_string_equal(eddy_fake_request_header(q, "Content-Type"), "application/x-amz-json-1.1");
    assert_string_equal(eddy_fake_request_header(q, "X-Amz-Security-Token"), "SESSIONTOKEN");
    const char *auth = eddy_fake_request_header(q, "Authorization");
    assert_non_null(strstr(auth, "/us-east-1/events/aws4_request"));
    assert_non_null(strstr(auth, "x-amz-security-token"));
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static const char *throttle_body =
    "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ThrottlingException\","
    "\"message\":\"Rate exceeded\"}";

static void test_throttle_then_success(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    eddy_fake_push_json(r.fake, 400, throttle_body);
    eddy_fake_push_json(r.fake, 200, "{}");
    struct seen s = {0};
    call_run(&r, &c, "GetItem", "{}", true, &s);
    assert_int_equal(s.err, EDDY_OK);
    assert_int_equal(s.attempts, 2);
    assert_int_equal(eddy_fake_count(r.fake), 2);
    /* each attempt signed afresh, at its own time */
    const char *d0 = eddy_fake_request_header(eddy_fake_request_at(r.fake, 0), "X-Amz-Date");
    const char *d1 = eddy_fake_request_header(eddy_fake_request_at(r.fake, 1), "X-Amz-Date");
    assert_string_not_equal(d0, d1);
    const char *a0 = eddy_fake_request_header(eddy_fake_request_at(r.fake, 0), "Authorization");
    const char *a1 = eddy_fake_request_header(eddy_fake_request_at(r.fake, 1), "Authorization");
    assert_string_not_equal(a0, a1);
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_throttle_until_max_attempts(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 4);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    for (int i = 0; i < 5; i++)
        eddy_fake_push_json(r.fake, 400, throttle_body);
    struct seen s = {0};
    call_run(&r, &c, "GetItem", "{}", true, &s);
    assert_int_equal(s.err, EDDY_ETHROTTLED);
    assert_int_equal(s.attempts, 4);
    assert_int_equal(eddy_fake_count(r.fake), 4);
    assert_string_equal(s.code, "ThrottlingException");
    assert_string_equal(s.message, "Rate exceeded");
    assert_non_null(strstr(s.detail, "ThrottlingException"));
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_5xx_retried(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    eddy_fake_push_json(r.fake, 500, "{\"__type\":\"com.amazon.coral.service#InternalFailure\"}");
    eddy_fake_push_status(r.fake, 503, "Content-Type: text/html\r\n",
                          "<html><body>Service Unavailable</body></html>");
    eddy_fake_push_json(r.fake, 200, "{\"Count\":0}");
    struct seen s = {0};
    call_run(&r, &c, "Query", "{}", true, &s);
    assert_int_equal(s.err, EDDY_OK);
    assert_int_equal(s.attempts, 3);
    seen_cleanup(&s);

    /* a non-JSON 502 page until the attempts are spent: transient */
    for (int i = 0; i < 3; i++)
        eddy_fake_push_status(r.fake, 502, "Content-Type: text/html\r\n", "<h1>Bad Gateway</h1>");
    struct seen s2 = {0};
    call_run(&r, &c, "Query", "{}", true, &s2);
    assert_int_equal(s2.err, EDDY_ETRANSIENT);
    assert_int_equal(s2.attempts, 3);
    assert_int_equal(s2.status, 502);
    seen_cleanup(&s2);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_timeout_and_net_retried(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_SQS);
    eddy_fake_push_error(r.fake, EDDY_ETIMEOUT);
    eddy_fake_push_error(r.fake, EDDY_ENET);
    eddy_fake_push_json(r.fake, 200, "{}");
    struct seen s = {0};
    call_run(&r, &c, "ReceiveMessage", "{}", true, &s);
    assert_int_equal(s.err, EDDY_OK);
    assert_int_equal(s.attempts, 3);
    seen_cleanup(&s);

    /* a call that is not idempotent is not repeated after a timeout */
    eddy_fake_push_error(r.fake, EDDY_ETIMEOUT);
    struct seen s2 = {0};
    call_run(&r, &c, "SendMessage", "{}", false, &s2);
    assert_int_equal(s2.err, EDDY_ETIMEOUT);
    assert_int_equal(s2.attempts, 1);
    assert_int_equal(s2.status, 0);
    assert_int_equal(eddy_fake_count(r.fake), 4);
    seen_cleanup(&s2);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_malformed_replies(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    static const char *const bad[] = {"{\"Item\":{\"_pk\":{\"S\":\"a\"", "not json at all", "[1,2]",
                                      "\"str\""};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(bad); i++) {
        eddy_fake_push_json(r.fake, 200, bad[i]);
        struct seen s = {0};
        call_run(&r, &c, "GetItem", "{}", true, &s);
        assert_int_equal(s.err, EDDY_EPARSE);
        assert_int_equal(s.attempts, 1); /* not retried */
        assert_null(s.json);
        assert_non_null(strstr(s.detail, "not a JSON object"));
        seen_cleanup(&s);
    }
    /* a non-JSON 4xx page: an AWS error with the status in the detail */
    eddy_fake_push_status(r.fake, 404, "Content-Type: text/html\r\n", "<html>nope</html>");
    struct seen s = {0};
    call_run(&r, &c, "GetItem", "{}", true, &s);
    assert_int_equal(s.err, EDDY_EAWS);
    assert_string_equal(s.code, "HTTPError");
    assert_non_null(strstr(s.detail, "HTTP 404"));
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_condition_and_txn_not_retried(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    eddy_fake_push_json(r.fake, 400,
                        "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                        "ConditionalCheckFailedException\",\"message\":\"The conditional request "
                        "failed\"}");
    struct seen s = {0};
    call_run(&r, &c, "PutItem", "{}", true, &s);
    assert_int_equal(s.err, EDDY_ECONDITION);
    assert_int_equal(s.attempts, 1);
    assert_string_equal(s.code, "ConditionalCheckFailedException");
    assert_string_equal(s.message, "The conditional request failed");
    seen_cleanup(&s);

    eddy_fake_push_json(r.fake, 400,
                        "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                        "TransactionCanceledException\",\"Message\":\"Transaction cancelled\","
                        "\"CancellationReasons\":[{\"Code\":\"None\"}]}");
    struct seen s2 = {0};
    call_run(&r, &c, "TransactWriteItems", "{}", true, &s2);
    assert_int_equal(s2.err, EDDY_ETXN_CANCELED);
    assert_string_equal(s2.message, "Transaction cancelled");
    assert_non_null(strstr(s2.json, "CancellationReasons")); /* the caller reads them */
    assert_int_equal(eddy_fake_count(r.fake), 2);
    seen_cleanup(&s2);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_error_code_forms(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
         "ConditionalCheckFailedException"},
        {"ConditionalCheckFailedException", "ConditionalCheckFailedException"},
        {"aws.sqs#QueueDoesNotExist", "QueueDoesNotExist"},
        {"ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/",
         "ValidationException"},
        {"com.amazon.coral#Throttling:http://x/", "Throttling"},
        {"", ""},
    };
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(cases); i++) {
        struct eddy_str got = eddy_aws_error_code(eddy_str_c(cases[i].in));
        assert_true(eddy_str_eqc(got, cases[i].want));
    }
}

static void test_query_error_and_auth(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_SQS);
    eddy_fake_push_status(r.fake, 400,
                          "Content-Type: application/x-amz-json-1.0\r\n"
                          "x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender\r\n"
                          "x-amzn-RequestId: q-1\r\n",
                          "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
                          "\"message\":\"The specified queue does not exist.\"}");
    struct seen s = {0};
    call_run(&r, &c, "ReceiveMessage", "{}", true, &s);
    assert_int_equal(s.err, EDDY_EAWS);
    assert_string_equal(s.code, "AWS.SimpleQueueService.NonExistentQueue");
    assert_string_equal(s.message, "The specified queue does not exist.");
    assert_string_equal(s.request_id, "q-1");
    assert_int_equal(s.attempts, 1);
    seen_cleanup(&s);

    eddy_fake_push_status(r.fake, 400,
                          "x-amz-request-id: q-2\r\n"
                          "x-amzn-query-error: RequestThrottled;Sender\r\n",
                          "{\"__type\":\"com.amazonaws.sqs#RequestThrottled\"}");
    eddy_fake_push_json(r.fake, 200, "{}");
    struct seen s2 = {0};
    call_run(&r, &c, "ReceiveMessage", "{}", true, &s2);
    assert_int_equal(s2.err, EDDY_OK);
    assert_int_equal(s2.attempts, 2);
    seen_cleanup(&s2);

    eddy_fake_push_json(r.fake, 400,
                        "{\"__type\":\"UnrecognizedClientException\","
                        "\"message\":\"The security token is invalid\"}");
    struct seen s3 = {0};
    call_run(&r, &c, "ReceiveMessage", "{}", true, &s3);
    assert_int_equal(s3.err, EDDY_EAUTH);
    assert_int_equal(s3.attempts, 1);
    seen_cleanup(&s3);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

/* A signature error quotes the canonical request it expected, session
 * token included: the token never reaches the message or the detail. */
static void test_signature_error_hides_the_token(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, "SESSIONTOKEN", 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    eddy_fake_push_json(
        r.fake, 400,
        "{\"__type\":\"com.amazon.coral.service#InvalidSignatureException\","
        "\"message\":\"Signature mismatch.\\n\\nThe Canonical String for this request "
        "should have been\\n'POST\\n/\\n\\nhost:127.0.0.1"
        "\\nX-Amz-Security-Token:SESSIONTOKEN\\n\\nhost;x-amz-security-token\\n"
        "'\\n\\nquery: a=1&x-amz-security-token=SESSIONTOKEN&b=2\"}");
    struct seen s = {0};
    call_run(&r, &c, "GetItem", "{}", true, &s);
    assert_int_equal(s.err, EDDY_EAUTH);
    assert_null(strstr(s.message, "SESSIONTOKEN"));
    assert_null(strstr(s.detail, "SESSIONTOKEN"));
    assert_non_null(strstr(s.message, "X-Amz-Security-Token:[redacted]\n"));
    assert_non_null(strstr(s.message, "x-amz-security-token=[redacted]&b=2"));
    assert_non_null(strstr(s.message, "host;x-amz-security-token\n")); /* a name alone stays */
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_quota_exhausted(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 5);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    c.quota.available = EDDY_RETRY_COST * 2; /* room for two retries */
    for (int i = 0; i < 5; i++)
        eddy_fake_push_json(r.fake, 400, throttle_body);
    struct seen s = {0};
    call_run(&r, &c, "GetItem", "{}", true, &s);
    assert_int_equal(s.err, EDDY_ETHROTTLED);
    assert_int_equal(s.attempts, 3);
    assert_int_equal(eddy_fake_count(r.fake), 3);
    assert_non_null(strstr(s.detail, "quota"));
    assert_int_equal(c.quota.available, 0);
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_cancel_in_flight_and_in_backoff(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_SQS);
    /* in flight: the fake holds the request (no reply queued) */
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    struct eddy_aws_call *h = NULL;
    struct seen s = {0};
    assert_int_equal(eddy_aws_call(&c, "ReceiveMessage", &b, NULL, on_done, &s, &h, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(s.calls, 0);
    assert_int_equal(c.inflight, 1);
    eddy_aws_call_cancel(h);
    eddy_aws_call_cancel(h); /* twice is harmless */
    assert_int_equal(s.calls, 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, EDDY_ECANCELED);
    assert_int_equal(c.inflight, 0);
    seen_cleanup(&s);

    /* in backoff: a long delay, canceled through cancel_all */
    r.aws.backoff_base_ms = 60000;
    r.aws.backoff_max_ms = 60000;
    eddy_fake_push_json(r.fake, 503, "{}");
    struct seen s2 = {0};
    eddy_buf_init(&b, 0);
    assert_int_equal(eddy_aws_call(&c, "ReceiveMessage", &b, NULL, on_done, &s2, NULL, NULL),
                     EDDY_OK);
    while (eddy_fake_inflight(r.fake) > 0)
        uv_run(&r.loop, UV_RUN_NOWAIT); /* never waits for the backoff */
    assert_int_equal(s2.calls, 0);
    eddy_aws_client_cancel_all(&c);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.err, EDDY_ECANCELED);
    assert_int_equal(eddy_fake_count(r.fake), 2);
    seen_cleanup(&s2);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

static void test_start_failure_never_calls_back(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_SQS);
    struct eddy_fake_reply fr = {.err = EDDY_ENET, .fail_send = true};
    eddy_fake_push(r.fake, &fr);
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_puts(&b, "{}");
    struct seen s = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_aws_call(&c, "ReceiveMessage", &b, NULL, on_done, &s, NULL, &err),
                     EDDY_ENET);
    assert_null(b.ptr);
    assert_non_null(strstr(err.detail, "ReceiveMessage"));
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(s.calls, 0);
    assert_int_equal(c.inflight, 0);
    assert_int_equal(eddy_aws_call(&c, "X", NULL, NULL, on_done, &s, NULL, &err), EDDY_EINVAL);
    eddy_aws_client_cleanup(&c);
    rig_close(&r);
}

/* Credentials not yet resolved: the call waits for eddy_creds_get. */
static void test_waits_for_credentials(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretfromenv", 1);
    unsetenv("AWS_SESSION_TOKEN");
    struct eddy_creds *chain = eddy_creds_new(&r.loop, eddy_fake_transport(r.fake), &r.clock);
    assert_non_null(chain);
    assert_null(eddy_creds_current(chain));
    r.aws.creds = chain;
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    eddy_fake_push_json(r.fake, 200, "{}");
    struct seen s = {0};
    call_run(&r, &c, "GetItem", "{}", true, &s);
    assert_int_equal(s.err, EDDY_OK);
    const char *auth = eddy_fake_request_header(eddy_fake_last(r.fake), "Authorization");
    assert_non_null(strstr(auth, "Credential=AKIDFROMENV/"));
    seen_cleanup(&s);
    eddy_aws_client_cleanup(&c);
    eddy_creds_close(chain, NULL, NULL);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    rig_close(&r);
}

static void test_cancel_while_waiting_creds(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secretfromenv", 1);
    struct eddy_creds *chain = eddy_creds_new(&r.loop, eddy_fake_transport(r.fake), &r.clock);
    r.aws.creds = chain;
    struct eddy_aws_client c;
    client_init(&r, &c, EDDY_AWS_DYNAMODB);
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    struct eddy_aws_call *h = NULL;
    struct seen s = {0};
    assert_int_equal(eddy_aws_call(&c, "GetItem", &b, NULL, on_done, &s, &h, NULL), EDDY_OK);
    eddy_aws_call_cancel(h); /* before the credentials arrive */
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, EDDY_ECANCELED);
    assert_int_equal(eddy_fake_count(r.fake), 0);
    eddy_aws_client_cleanup(&c);
    eddy_creds_close(chain, NULL, NULL);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    rig_close(&r);
}

int main(void)
{
    unsetenv("AWS_PROFILE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/eddy-test", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/eddy-test", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_shape),
        cmocka_unit_test(test_session_token_and_eventbridge),
        cmocka_unit_test(test_throttle_then_success),
        cmocka_unit_test(test_throttle_until_max_attempts),
        cmocka_unit_test(test_5xx_retried),
        cmocka_unit_test(test_timeout_and_net_retried),
        cmocka_unit_test(test_malformed_replies),
        cmocka_unit_test(test_condition_and_txn_not_retried),
        cmocka_unit_test(test_error_code_forms),
        cmocka_unit_test(test_query_error_and_auth),
        cmocka_unit_test(test_signature_error_hides_the_token),
        cmocka_unit_test(test_quota_exhausted),
        cmocka_unit_test(test_cancel_in_flight_and_in_backoff),
        cmocka_unit_test(test_start_failure_never_calls_back),
        cmocka_unit_test(test_waits_for_credentials),
        cmocka_unit_test(test_cancel_while_waiting_creds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
