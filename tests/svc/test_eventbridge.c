/* Unit tests for svc/eventbridge: the PutEvents body, per-entry results,
 * the entry and size limits. Against the fake transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_transport.h"
#include "rig.h"
#include "svc/eventbridge.h"

struct got {
    int calls;
    eddy_err err;
    struct eddy_eb_put_result res;
};

static void on_put(eddy_err err, struct eddy_eb_put_result *res, const struct eddy_aws_reply *reply,
                   void *ud)
{
    struct got *g = ud;
    assert_non_null(reply);
    g->calls++;
    g->err = err;
    g->res = *res;
}

static void test_put_events(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_eb e;
    assert_int_equal(eddy_eb_init(&e, &r.aws, &r.ep, NULL), EDDY_OK);
    const char *res[1] = {"arn:aws:dynamodb:us-east-1:1:table/t"};
    struct eddy_eb_entry en[3] = {
        {"eddy.slot", "GameResult", "{\"win\":true}", "bus", res, 1, "Root=1-x", 1700000000, NULL,
         0},
        {"eddy.slot", "Payout", "{\"n\":4}", NULL, NULL, 0, NULL, 0, NULL, 0},
        {"eddy.slot", "Payout", "{\"n\":5}", NULL, NULL, 0, NULL, 0, NULL, 0},
    };
    eddy_fake_push_json(r.fake, 200,
                        "{\"FailedEntryCount\":1,\"Entries\":[{\"EventId\":\"ev-1\"},"
                        "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"try again\"},"
                        "{\"EventId\":\"ev-3\"}]}");
    struct got g = {0};
    assert_int_equal(eddy_eb_put_events(&e, en, 3, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.res.n, 3);
    assert_int_equal(g.res.failed_count, 1);
    assert_string_equal(g.res.entries[0].event_id, "ev-1");
    assert_null(g.res.entries[0].error_code);
    assert_null(g.res.entries[1].event_id);
    assert_string_equal(g.res.entries[1].error_code, "InternalFailure");
    assert_string_equal(g.res.entries[1].error_message, "try again");
    assert_string_equal(g.res.entries[2].event_id, "ev-3");
    eddy_eb_put_result_cleanup(&g.res);

    const struct eddy_fake_request *q = eddy_fake_last(r.fake);
    assert_string_equal(eddy_fake_request_header(q, "X-Amz-Target"), "AWSEvents.PutEvents");
    assert_string_equal(eddy_fake_request_header(q, "Content-Type"), "application/x-amz-json-1.1");
    cJSON *b = sent_json(&r, 0);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b, "Entries");
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    const cJSON *e0 = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(jget(e0, "Source"), "eddy.slot");
    assert_string_equal(jget(e0, "DetailType"), "GameResult");
    assert_string_equal(jget(e0, "Detail"), "{\"win\":true}");
    assert_string_equal(jget(e0, "EventBusName"), "bus");
    assert_string_equal(jget(e0, "TraceHeader"), "Root=1-x");
    assert_int_equal((int64_t)jnumber(e0, "Time"), 1700000000);
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e0, "Resources"), 0)->valuestring,
        res[0]);
    assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 1), "EventBusName"));
    cJSON_Delete(b);

    /* a short reply: the missing entry counts as failed */
    eddy_fake_push_json(r.fake, 200, "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"}]}");
    assert_int_equal(eddy_eb_put_events(&e, en, 2, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.res.failed_count, 1);
    assert_string_equal(g.res.entries[1].error_code, "NoResult");
    eddy_eb_put_result_cleanup(&g.res);

    /* a reply without Entries is malformed */
    eddy_fake_push_json(r.fake, 200, "{\"FailedEntryCount\":0}");
    assert_int_equal(eddy_eb_put_events(&e, en, 1, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_EPARSE);
    eddy_eb_put_result_cleanup(&g.res);
    eddy_eb_cleanup(&e);
    rig_close(&r);
}

/* An entry whose Detail comes as JSON text already: sent as it is (here
 * unlike detail, to tell them apart), not escaped again; the size rule
 * still counts detail. */
static void test_put_events_detail_json(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_eb e;
    assert_int_equal(eddy_eb_init(&e, &r.aws, &r.ep, NULL), EDDY_OK);
    static const char text[] = "\"{\\\"b\\\":\\\"q\\\\\\\"\\\"}\"";
    struct eddy_eb_entry en[2] = {
        {.source = "s",
         .detail_type = "t",
         .detail = "{\"a\":1}",
         .detail_json = text,
         .detail_json_len = sizeof text - 1},
        {.source = "s", .detail_type = "t", .detail = "{\"c\":\"\\n\"}"},
    };
    assert_int_equal(eddy_eb_entry_size(&en[0]), 1 + 1 + strlen("{\"a\":1}"));
    eddy_fake_push_json(r.fake, 200,
                        "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"},"
                        "{\"EventId\":\"b\"}]}");
    struct got g = {0};
    assert_int_equal(eddy_eb_put_events(&e, en, 2, on_put, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    eddy_eb_put_result_cleanup(&g.res);
    cJSON *b = sent_json(&r, 0);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b, "Entries");
    assert_string_equal(jget(cJSON_GetArrayItem(arr, 0), "Detail"), "{\"b\":\"q\\\"\"}");
    assert_string_equal(jget(cJSON_GetArrayItem(arr, 1), "Detail"), "{\"c\":\"\\n\"}");
    cJSON_Delete(b);
    eddy_eb_cleanup(&e);
    rig_close(&r);
}

/* A PutEvents reply read from its text: entries in request order, the first
 * field of a name, a short reply's missing entries NoResult, the larger
 * failed count trusted, and no Entries refused. */
static void test_put_parse_text(void **state)
{
    (void)state;
    static const char text[] =
        "{\"Entries\":[{\"EventId\":\"e\\u00e9\",\"EventId\":\"second\"},{\"ErrorCode\":"
        "\"Throttled\","
        "\"ErrorMessage\":\"slow\"},\"x\",{\"EventId\":1}],\"Entries\":7,\"FailedEntryCount\":9,"
        "\"FailedEntryCount\":1}";
    struct eddy_eb_put_result r;
    struct eddy_error err = {0};
    assert_int_equal(eddy_eb_put_parse(text, sizeof text - 1, 5, &r, &err), EDDY_OK);
    assert_int_equal(r.n, 5);
    assert_string_equal(r.entries[0].event_id, "e\xc3\xa9");
    assert_null(r.entries[0].error_code);
    assert_null(r.entries[1].event_id);
    assert_string_equal(r.entries[1].error_code, "Throttled");
    assert_string_equal(r.entries[1].error_message, "slow");
    assert_string_equal(r.entries[2].error_code, "NoResult");
    assert_string_equal(r.entries[3].error_code, "NoResult");
    assert_string_equal(r.entries[4].error_code, "NoResult");
    assert_int_equal(r.failed_count, 9);
    eddy_eb_put_result_cleanup(&r);

    static const char one[] = "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"},{}]}";
    assert_int_equal(eddy_eb_put_parse(one, sizeof one - 1, 1, &r, &err), EDDY_OK);
    assert_int_equal(r.failed_count, 0);
    eddy_eb_put_result_cleanup(&r);

    static const char *const bad[] = {
        "", "{}", "{\"Entries\":{}}", "[]", "{\"Entries\":[}", "{\"Entries\":[]} x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(eddy_eb_put_parse(bad[i], strlen(bad[i]), 1, &r, &err), EDDY_EPARSE);
        assert_true(err.detail[0] != '\0');
        assert_null(r.entries);
        assert_int_equal(r.n, 0);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_eb e;
    assert_int_equal(eddy_eb_init(&e, &r.aws, &r.ep, NULL), EDDY_OK);
    struct eddy_eb_entry en[11];
    for (int i = 0; i < 11; i++)
        en[i] = (struct eddy_eb_entry){"s", "t", "{}", NULL, NULL, 0, NULL, 0, NULL, 0};
    struct got g = {0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_eb_put_events(&e, en, 11, on_put, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "10 entries"));
    size_t half = EDDY_EB_MAX_BYTES / 2 + 1;
    char *big = malloc(half + 1);
    memset(big, 'x', half);
    big[half] = '\0';
    en[0].detail = big;
    en[1].detail = big;
    assert_int_equal(eddy_eb_put_events(&e, en, 2, on_put, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "256 KiB"));
    assert_int_equal(eddy_eb_put_events(&e, en, 0, on_put, &g, NULL, &err), EDDY_EINVAL);
    free(big);
    assert_int_equal(g.calls, 0);
    assert_int_equal(eddy_fake_count(r.fake), 0);
    eddy_eb_cleanup(&e);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_events),
        cmocka_unit_test(test_put_events_detail_json),
        cmocka_unit_test(test_put_parse_text),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
