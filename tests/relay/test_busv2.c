/* Unit tests for relay/busv2: the relay's entries go to the Custom Event
 * Bus with the entity as EventGroupId and the stable event id as
 * DeduplicationId (hashed when long), TraceHeader and EventBusName left out;
 * DEDUPLICATED is accepted, an ErrorCode is not; the size counts the ids.
 * Against the fake transport. */
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
#include "relay/busv2.h"
#include "svc/eventbridge2.h"

#define BUS "arn:aws:events:us-east-1:123456789012:event-busv2/orders/abcdefghijklmnopqrstuvwxy"

struct got {
    int calls;
    eddy_err err;
    struct eddy_eb_put_result res;
};

static void on_put(eddy_err err, struct eddy_eb_put_result *res, const struct eddy_aws_reply *reply,
                   void *ud)
{
    (void)reply;
    struct got *g = ud;
    g->calls++;
    g->err = err;
    g->res = *res; /* the callback owns it, as the relay's does */
}

static void test_put(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 1);
    struct eddy_eb2 eb2;
    assert_int_equal(eddy_eb2_init(&eb2, &r.aws, BUS, &r.ep, NULL), EDDY_OK);
    char long_id[200];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    struct eddy_record_outbox rows[3] = {
        {.ns = "machine", .id = "slot-1", .seq = 2, .idx = 0},
        {.ns = "machine", .id = "slot-1", .seq = 2, .idx = 1},
        {.ns = "machine", .id = long_id, .seq = 7, .idx = 3},
    };
    const struct eddy_record_outbox *rowp[3] = {&rows[0], &rows[1], &rows[2]};
    struct eddy_eb_entry en[3];
    for (int i = 0; i < 3; i++)
        en[i] = (struct eddy_eb_entry){"eddy.machine", "GameResult", "{\"n\":1}", BUS, NULL, 0,
                                       "Root=1-x",     1700000000,   NULL,        0};
    const struct eb2_result results[] = {
        {.event_id = "e1", .success_code = "PUBLISHED"},
        {.event_id = "e0", .success_code = "DEDUPLICATED"},
        {.error_code = "InternalFailure", .error_message = "again"},
    };
    eb2_push_results(r.fake, 1, results, 3);
    struct got g = {0};
    assert_int_equal(eddy_relay_bus_v2.put(&eb2, en, rowp, 3, on_put, &g, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.res.n, 3);
    assert_true(eddy_relay_bus_v2.accepted(&g.res.entries[0]));
    assert_true(eddy_relay_bus_v2.accepted(&g.res.entries[1])); /* DEDUPLICATED */
    assert_false(eddy_relay_bus_v2.accepted(&g.res.entries[2]));
    assert_string_equal(g.res.entries[2].error_code, "InternalFailure");
    assert_false(eddy_relay_bus_v2.refused_for_good("InternalFailure"));
    assert_true(eddy_relay_bus_v2.refused_for_good("InvalidInputException"));
    eddy_eb_put_result_cleanup(&g.res);

    const struct eddy_fake_request *q = eddy_fake_last(r.fake);
    assert_non_null(strstr(q->url, "/service/AWSEventsV2/operation/PutEvents"));
    cJSON *b = NULL;
    assert_int_equal(eddy_cbor_parse(q->body, q->body_len, &b, NULL), EDDY_OK);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b, "Entries");
    const cJSON *m0 =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "SystemMetadata");
    assert_string_equal(jget(m0, "EventGroupId"), "machine/slot-1");
    assert_string_equal(jget(m0, "DeduplicationId"), "machine/slot-1/2/0");
    const cJSON *m1 =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 1), "SystemMetadata");
    assert_string_equal(jget(m1, "DeduplicationId"), "machine/slot-1/2/1");
    const cJSON *e2 = cJSON_GetArrayItem(arr, 2);
    const cJSON *m2 = cJSON_GetObjectItemCaseSensitive(e2, "SystemMetadata");
    assert_int_equal(strlen(jget(m2, "EventGroupId")), EDDY_EB2_ID_MAX);
    assert_int_equal(strlen(jget(m2, "DeduplicationId")), EDDY_EB2_ID_MAX);
    assert_null(cJSON_GetObjectItemCaseSensitive(e2, "TraceHeader"));
    assert_null(cJSON_GetObjectItemCaseSensitive(e2, "EventBusName"));
    assert_string_equal(jget(e2, "Detail"), "{\"n\":1}");
    cJSON_Delete(b);

    /* the size the relay batches by counts the two ids */
    size_t classic = eddy_eb_entry_size(&en[0]);
    assert_int_equal(eddy_relay_bus_v2.entry_size(&en[0], &rows[0]),
                     classic + strlen("machine/slot-1") + strlen("machine/slot-1/2/0"));
    assert_true(eddy_relay_bus_v2.entity_shares_call);
    assert_int_equal(eddy_relay_bus_v2.max_entries, 100);
    assert_int_equal(eddy_relay_bus_v2.max_bytes, 1048576);

    /* a call refused before it is sent never calls back */
    static struct eddy_eb_entry many[101];
    static const struct eddy_record_outbox *manyrows[101];
    for (int i = 0; i < 101; i++) {
        many[i] = en[0];
        manyrows[i] = &rows[0];
    }
    struct eddy_error err = {0};
    assert_int_equal(eddy_relay_bus_v2.put(&eb2, many, manyrows, 101, on_put, &g, &err),
                     EDDY_ELIMIT);
    assert_int_equal(g.calls, 1);
    eddy_eb2_cleanup(&eb2);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
