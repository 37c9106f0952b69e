/* Unit tests for svc/eventbridge2: the RPC v2 CBOR request (path, headers,
 * signature scope, body shape), per-entry results (published,
 * deduplicated, failed, missing), every error class, the limits, the
 * system ids, the bus ARN and the endpoint. Against the fake transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "eb2_reply.h"
#include "fake_transport.h"
#include "rig.h"
#include "aws/cbor.h"
#include "svc/eventbridge2.h"

#define BUS "arn:aws:events:us-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwxy"

struct got {
    int calls;
    eddy_err err;
    struct eddy_eb2_put_result res;
    char code[64];
};

static void on_put(eddy_err err, struct eddy_eb2_put_result *res,
                   const struct eddy_aws_reply *reply, void *ud)
{
    struct got *g = ud;
    assert_non_null(reply);
    g->calls++;
    g->err = err;
    g->res = *res;
    snprintf(g->code, sizeof g->code, "%s", reply->error_code ? reply->error_code : "");
}

/* Queue a CBOR reply built by the caller's writer. */
static void push_cbor(struct rig *r, long status, struct eddy_cbor_w *w)
{
    assert_int_equal(w->rc, EDDY_OK);
    struct eddy_fake_reply rep = {.status = status,
                                  .headers = "Content-Type: application/cbor\r\n"
                                             "x-amzn-RequestId: req-1\r\n",
                                  .body = w->buf.ptr,
                                  .body_len = w->buf.len};
    eddy_fake_push(r->fake, &rep);
    eddy_cbor_w_cleanup(w);
}

static void push_error(struct rig *r, long status, const char *type, const char *msg)
{
    struct eddy_cbor_w w;
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_map(&w, 2);
    eddy_cbor_ktext(&w, "__type", type);
    eddy_cbor_ktext(&w, "message", msg);
    push_cbor(r, status, &w);
}

/* The request body of call i, decoded. */
static cJSON *sent_cbor(struct rig *r, size_t i)
{
    const struct eddy_fake_request *q = eddy_fake_request_at(r->fake, i);
    assert_non_null(q);
    cJSON *j = NULL;
    assert_int_equal(eddy_cbor_parse(q->body, q->body_len, &j, NULL), EDDY_OK);
    return j;
}

static void init_client(struct rig *r, struct eddy_eb2 *e, unsigned attempts)
{
    rig_init(r, NULL, attempts);
    assert_int_equal(eddy_eb2_init(e, &r->aws, BUS, &r->ep, NULL), EDDY_OK);
}

static void done(struct rig *r, struct eddy_eb2 *e)
{
    eddy_eb2_cleanup(e);
    rig_close(r);
}

static void test_request(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_eb2 e;
    init_client(&r, &e, 3);
    const char *res[1] = {"arn:aws:dynamodb:us-east-1:1:table/t"};
    struct eddy_eb2_entry en[2] = {
        {"eddy.machine", "GameResult", "{\"win\":true}", res, 1, 1700000000, "machine/slot-1",
         "machine/slot-1/2/0"},
        {"eddy.machine", "Payout", "{\"n\":4}", NULL, 0, 0, NULL, NULL},
    };
    const struct eb2_result results[] = {{.event_id = "e1"}, {.event_id = "e2"}};
    eb2_push_results(r.fake, 0, results, 2);
    struct got g = {0};
    assert_int_equal(eddy_eb2_put_events(&e, en, 2, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    eddy_eb2_put_result_cleanup(&g.res);

    const struct eddy_fake_request *q = eddy_fake_last(r.fake);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->url, "http://127.0.0.1:4566/service/AWSEventsV2/operation/PutEvents");
    assert_string_equal(eddy_fake_request_header(q, "smithy-protocol"), "rpc-v2-cbor");
    assert_string_equal(eddy_fake_request_header(q, "Content-Type"), "application/cbor");
    assert_string_equal(eddy_fake_request_header(q, "Accept"), "application/cbor");
    assert_null(eddy_fake_request_header(q, "X-Amz-Target"));
    const char *auth = eddy_fake_request_header(q, "Authorization");
    assert_non_null(strstr(auth, "/us-east-1/events/aws4_request"));
    assert_non_null(strstr(auth, "SignedHeaders=content-type;host;smithy-protocol;x-amz-date,"));

    cJSON *b = sent_cbor(&r, 0);
    assert_string_equal(jget(b, "EventBusArn"), BUS);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b, "Entries");
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    const cJSON *e0 = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(jget(e0, "Source"), "eddy.machine");
    assert_string_equal(jget(e0, "DetailType"), "GameResult");
    assert_string_equal(jget(e0, "Detail"), "{\"win\":true}");
    assert_int_equal((int64_t)jnumber(e0, "Time"), 1700000000);
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e0, "Resources"), 0)->valuestring,
        res[0]);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(e0, "SystemMetadata");
    assert_string_equal(jget(meta, "EventGroupId"), "machine/slot-1");
    assert_string_equal(jget(meta, "DeduplicationId"), "machine/slot-1/2/0");
    assert_int_equal(cJSON_GetArraySize(e0), 6); /* nothing else: no TraceHeader in this API */
    const cJSON *e1 = cJSON_GetArrayItem(arr, 1);
    assert_int_equal(cJSON_GetArraySize(e1), 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(e1, "SystemMetadata"));
    assert_null(cJSON_GetObjectItemCaseSensitive(e1, "Time"));
    cJSON_Delete(b);
    done(&r, &e);
}

static void test_results(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_eb2 e;
    init_client(&r, &e, 3);
    struct eddy_eb2_entry en[4];
    for (int i = 0; i < 4; i++)
        en[i] = (struct eddy_eb2_entry){"s", "t", "{}", NULL, 0, 0, "g", "d"};
    const struct eb2_result results[] = {
        {.event_id = "e1", .sequence_number = "0001", .success_code = "PUBLISHED"},
        {.event_id = "e0", .success_code = "DEDUPLICATED"},
        {.error_code = "InternalFailure", .error_message = "try again"},
    };
    eb2_push_results(r.fake, 1, results, 3); /* one short */
    struct got g = {0};
    assert_int_equal(eddy_eb2_put_events(&e, en, 4, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.res.n, 4);
    assert_int_equal(g.res.failed_count, 2);
    assert_true(g.res.entries[0].ok);
    assert_false(g.res.entries[0].deduplicated);
    assert_string_equal(g.res.entries[0].event_id, "e1");
    assert_string_equal(g.res.entries[0].sequence_number, "0001");
    assert_true(g.res.entries[1].ok);
    assert_true(g.res.entries[1].deduplicated);
    assert_false(g.res.entries[2].ok);
    assert_string_equal(g.res.entries[2].error_code, "InternalFailure");
    assert_string_equal(g.res.entries[2].error_message, "try again");
    assert_false(g.res.entries[3].ok);
    assert_string_equal(g.res.entries[3].error_code, "NoResult");
    eddy_eb2_put_result_cleanup(&g.res);

    /* no Entries: malformed */
    struct eddy_cbor_w w;
    eddy_cbor_w_init(&w, 0);
    eddy_cbor_map(&w, 1);
    eddy_cbor_ctext(&w, "FailedEntryCount");
    eddy_cbor_int(&w, 0);
    push_cbor(&r, 200, &w);
    assert_int_equal(eddy_eb2_put_events(&e, en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_EPARSE);
    eddy_eb2_put_result_cleanup(&g.res);

    /* a JSON body where CBOR was due: malformed, not retried */
    eddy_fake_push_json(r.fake, 200, "{\"Entries\":[]}");
    assert_int_equal(eddy_eb2_put_events(&e, en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_EPARSE);
    assert_int_equal(eddy_fake_count(r.fake), 3);
    eddy_eb2_put_result_cleanup(&g.res);
    done(&r, &e);
}

/* One error reply (repeated for retries) and the class it ends in. */
static void check_error(long status, const char *type, eddy_err want, const char *want_code,
                        size_t want_attempts)
{
    struct rig r;
    struct eddy_eb2 e;
    init_client(&r, &e, 2);
    for (size_t i = 0; i < want_attempts; i++)
        push_error(&r, status, type, "no");
    struct eddy_eb2_entry en = {"s", "t", "{}", NULL, 0, 0, "g", "d"};
    struct got g = {0};
    assert_int_equal(eddy_eb2_put_events(&e, &en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, want);
    assert_string_equal(g.code, want_code);
    assert_int_equal(eddy_fake_count(r.fake), want_attempts);
    assert_int_equal(g.res.n, 0);
    done(&r, &e);
}

static void test_error_classes(void **state)
{
    (void)state;
    const char *ns = "com.amazonaws.eventbridgev2#";
    char t[128];
#define TYPE(x) (snprintf(t, sizeof t, "%s%s", ns, x), t)
    check_error(429, TYPE("ThrottlingException"), EDDY_ETHROTTLED, "ThrottlingException", 2);
    check_error(500, TYPE("InternalException"), EDDY_ETRANSIENT, "InternalException", 2);
    check_error(403, TYPE("AccessDeniedException"), EDDY_EAUTH, "AccessDeniedException", 1);
    check_error(404, TYPE("ResourceNotFoundException"), EDDY_EAWS, "ResourceNotFoundException", 1);
    check_error(400, TYPE("InvalidInputException"), EDDY_EAWS, "InvalidInputException", 1);
    check_error(409, TYPE("InvalidStateException"), EDDY_EAWS, "InvalidStateException", 1);
    check_error(400, "InvalidInputException", EDDY_EAWS, "InvalidInputException", 1);
#undef TYPE

    /* transport errors: a network error is retried, a timeout is not (the
     * entries may have been taken: the caller sends them again) */
    struct rig r;
    struct eddy_eb2 e;
    init_client(&r, &e, 2);
    struct eddy_eb2_entry en = {"s", "t", "{}", NULL, 0, 0, "g", "d"};
    struct got g = {0};
    eddy_fake_push_error(r.fake, EDDY_ENET);
    eddy_fake_push_error(r.fake, EDDY_ENET);
    assert_int_equal(eddy_eb2_put_events(&e, &en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_ENET);
    assert_int_equal(eddy_fake_count(r.fake), 2);
    eddy_fake_push_error(r.fake, EDDY_ETIMEOUT);
    assert_int_equal(eddy_eb2_put_events(&e, &en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_ETIMEOUT);
    assert_int_equal(eddy_fake_count(r.fake), 3);
    /* an HTML error page: classified by its status */
    eddy_fake_push_status(&*r.fake, 502, "Content-Type: text/html\r\n", "<html>bad gateway</html>");
    eddy_fake_push_status(&*r.fake, 502, "Content-Type: text/html\r\n", "<html>bad gateway</html>");
    assert_int_equal(eddy_eb2_put_events(&e, &en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_ETRANSIENT);
    /* canceled while waiting for the reply */
    struct eddy_aws_call *h = NULL;
    assert_int_equal(eddy_eb2_put_events(&e, &en, 1, on_put, &g, &h, NULL), EDDY_OK);
    eddy_aws_call_cancel(h);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_ECANCELED);
    assert_int_equal(g.calls, 4);
    done(&r, &e);
}

static void test_limits(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_eb2 e;
    init_client(&r, &e, 3);
    static struct eddy_eb2_entry en[101];
    for (int i = 0; i < 101; i++)
        en[i] = (struct eddy_eb2_entry){"s", "t", "{}", NULL, 0, 0, "g", "d"};
    struct got g = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_eb2_put_events(&e, en, 101, on_put, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "100 entries"));
    assert_int_equal(eddy_eb2_put_events(&e, en, 0, on_put, &g, NULL, &err), EDDY_EINVAL);
    size_t third = EDDY_EB2_MAX_BYTES / 3;
    char *big = malloc(third + 1);
    memset(big, 'x', third);
    big[third] = '\0';
    for (int i = 0; i < 4; i++)
        en[i].detail = big;
    assert_int_equal(eddy_eb2_put_events(&e, en, 4, on_put, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "1 MiB"));
    en[3].detail = "{}";
    char id[EDDY_EB2_ID_MAX + 2];
    memset(id, 'g', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    en[0].group_id = id;
    assert_int_equal(eddy_eb2_put_events(&e, en, 1, on_put, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "EventGroupId"));
    en[0].group_id = "g";
    en[0].dedup_id = "";
    assert_int_equal(eddy_eb2_put_events(&e, en, 1, on_put, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "DeduplicationId"));
    en[0].dedup_id = "d";
    en[0].detail_type = big;
    assert_int_equal(eddy_eb2_put_events(&e, en, 1, on_put, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "DetailType"));
    en[0].detail_type = "t";
    /* the fields' limits count characters, not bytes; each entry on its own */
    char type[2 * 129 + 1] = "";
    for (int i = 0; i < 129; i++)
        strcat(type, "\xc3\xa9"); /* U+00E9 */
    struct eddy_eb2_entry one = en[0];
    one.detail_type = type;
    assert_int_equal(eddy_eb2_entry_check(&one, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "DetailType is 129 characters, not 1..128"));
    type[2 * 128] = '\0';
    assert_int_equal(eddy_eb2_entry_check(&one, &err), EDDY_OK);
    static const char *res[101];
    char arn[2050];
    memset(arn, 'a', sizeof arn - 1);
    arn[sizeof arn - 1] = '\0';
    for (int i = 0; i < 101; i++)
        res[i] = "arn:aws:s3:::b";
    one.resources = res;
    one.nresources = 101;
    assert_int_equal(eddy_eb2_entry_check(&one, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "101 Resources, over the limit of 100"));
    one.nresources = 100;
    assert_int_equal(eddy_eb2_entry_check(&one, &err), EDDY_OK);
    res[99] = arn;
    assert_int_equal(eddy_eb2_entry_check(&one, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "a resource is 2049 characters, not 0..2048"));
    /* 100 entries under 1 MiB go in one call */
    for (int i = 0; i < 4; i++)
        en[i].detail = "{}";
    assert_int_equal(eddy_fake_count(r.fake), 0);
    struct eb2_result published[100];
    for (int i = 0; i < 100; i++)
        published[i] = (struct eb2_result){.success_code = "PUBLISHED"};
    eb2_push_results(r.fake, 0, published, 100);
    assert_int_equal(eddy_eb2_put_events(&e, en, 100, on_put, &g, NULL, &err), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.res.failed_count, 0);
    assert_int_equal(g.calls, 1);
    eddy_eb2_put_result_cleanup(&g.res);
    free(big);
    done(&r, &e);
}

static void test_system_id(void **state)
{
    (void)state;
    char out[EDDY_EB2_ID_MAX + 1];
    eddy_eb2_system_id("machine/slot-1", out);
    assert_string_equal(out, "machine/slot-1");
    char id[301];
    memset(id, 'a', 300);
    id[300] = '\0';
    id[EDDY_EB2_ID_MAX] = '\0';
    eddy_eb2_system_id(id, out); /* exactly 128: kept */
    assert_string_equal(out, id);
    id[EDDY_EB2_ID_MAX] = 'a';
    eddy_eb2_system_id(id, out);
    assert_int_equal(strlen(out), EDDY_EB2_ID_MAX);
    assert_int_equal(out[63], '#');
    assert_memory_equal(out, id, 63);
    char again[EDDY_EB2_ID_MAX + 1];
    eddy_eb2_system_id(id, again);
    assert_string_equal(out, again); /* stable */
    id[299] = 'b';
    eddy_eb2_system_id(id, again);
    assert_string_not_equal(out, again); /* the tail counts */
    /* never cut inside a character: 2-byte characters from byte 0 */
    for (int i = 0; i < 300; i += 2)
        memcpy(id + i, "\xc3\xa9", 2);
    eddy_eb2_system_id(id, out);
    assert_int_equal(out[62], '#');
    assert_int_equal(strlen(out), EDDY_EB2_ID_MAX - 1);
    eddy_eb2_system_id("", out);
    assert_int_equal(strlen(out), 65);
    assert_int_equal(out[0], '#');
}

static void test_bus_arn_and_endpoint(void **state)
{
    (void)state;
    assert_true(eddy_eb2_is_bus_arn(BUS));
    assert_true(eddy_eb2_is_bus_arn("arn:aws-us-gov:events:us-gov-west-1:123456789012:event-busv2/"
                                    "a.b_c-d/0123456789abcdefghijklmno"));
    const char *bad[] = {
        "arn:aws:events:us-east-1:123456789012:event-bus/orders",
        "orders",
        "arn:aws:events:us-east-1:12345678901:event-busv2/orders/abcdefghijklmnopqrstuvwxy",
        "arn:aws:events:us-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwx",
        "arn:aws:events:us-east-1:123456789012:event-busv2/orders/ABCDEFGHIJKLMNOPQRSTUVWXY",
        "arn:aws:events:us-east-1:123456789012:event-busv2/.orders/abcdefghijklmnopqrstuvwxy",
        "arn:aws:events:us-east-1:123456789012:event-busv2//abcdefghijklmnopqrstuvwxy",
        "arn:aws:sqs:us-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwxy",
        "arn:aws:events:US-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwxy",
        "arn:awsx:events:us-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwxy",
        "arn:aws:events:us-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwxy/x",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(eddy_eb2_is_bus_arn(bad[i]));

    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_eb2 e;
    struct eddy_error err = {0};
    assert_int_equal(eddy_eb2_init(&e, &r.aws, "my-bus", NULL, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "Custom Event Bus ARN"));
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_EVENTBRIDGEV2");
    assert_int_equal(eddy_eb2_init(&e, &r.aws, BUS, NULL, &err), EDDY_OK);
    assert_string_equal(e.client.ep.url, "https://123456789012.eventsv2.us-east-1.amazonaws.com/");
    eddy_eb2_cleanup(&e);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
    setenv("AWS_ENDPOINT_URL_EVENTBRIDGEV2", "http://127.0.0.1:2/v2", 1);
    assert_int_equal(eddy_eb2_init(&e, &r.aws, BUS, NULL, &err), EDDY_OK);
    assert_string_equal(e.client.ep.url, "http://127.0.0.1:2/v2/");
    eddy_eb2_cleanup(&e);
    unsetenv("AWS_ENDPOINT_URL_EVENTBRIDGEV2");
    assert_int_equal(eddy_eb2_init(&e, &r.aws, BUS, NULL, &err), EDDY_OK);
    assert_string_equal(e.client.ep.url, "http://127.0.0.1:1/");
    /* a path prefix stays in front of the operation's path, and is signed */
    eddy_eb2_cleanup(&e);
    setenv("AWS_ENDPOINT_URL_EVENTBRIDGEV2", "http://127.0.0.1:2/v2", 1);
    assert_int_equal(eddy_eb2_init(&e, &r.aws, BUS, NULL, &err), EDDY_OK);
    eb2_push_results(r.fake, 0, NULL, 0);
    struct eddy_eb2_entry en = {"s", "t", "{}", NULL, 0, 0, NULL, NULL};
    struct got g = {0};
    assert_int_equal(eddy_eb2_put_events(&e, &en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_string_equal(eddy_fake_last(r.fake)->url,
                        "http://127.0.0.1:2/v2/service/AWSEventsV2/operation/PutEvents");
    eddy_eb2_put_result_cleanup(&g.res);
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_EVENTBRIDGEV2");
    done(&r, &e);
}

static void test_parse_bytes(void **state)
{
    (void)state;
    struct eddy_eb2_put_result res;
    struct eddy_error err = {0};
    /* {"Entries":[{"SuccessCode":"DEDUPLICATED"}]} */
    static const unsigned char ok[] = {0xa1, 0x67, 'E',  'n', 't', 'r',  'i', 'e', 's',
                                       0x81, 0xa1, 0x6b, 'S', 'u', 'c',  'c', 'e', 's',
                                       's',  'C',  'o',  'd', 'e', 0x6c, 'D', 'E', 'D',
                                       'U',  'P',  'L',  'I', 'C', 'A',  'T', 'E', 'D'};
    assert_int_equal(eddy_eb2_put_result_parse(ok, sizeof ok, 1, &res, &err), EDDY_OK);
    assert_true(res.entries[0].ok && res.entries[0].deduplicated);
    eddy_eb2_put_result_cleanup(&res);
    assert_int_equal(eddy_eb2_put_result_parse(ok, sizeof ok - 1, 1, &res, &err), EDDY_EPARSE);
    eddy_eb2_put_result_cleanup(&res);
    static const unsigned char arr[] = {0x80};
    assert_int_equal(eddy_eb2_put_result_parse(arr, 1, 1, &res, &err), EDDY_EPARSE);
    eddy_eb2_put_result_cleanup(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),       cmocka_unit_test(test_results),
        cmocka_unit_test(test_error_classes), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_system_id),     cmocka_unit_test(test_bus_arn_and_endpoint),
        cmocka_unit_test(test_parse_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
