/* Unit tests for svc/dynamodb: request bodies, typed results, cancellation
 * reasons item by item, unprocessed items and keys, pagination, limits.
 * Against the fake transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_transport.h"
#include "rig.h"
#include "svc/dynamodb.h"

struct got {
    int calls;
    eddy_err err;
    char code[96];
    struct eddy_ddb_item_result item;
    struct eddy_ddb_txn_result txn;
    struct eddy_ddb_batch_write_result bw;
    struct eddy_ddb_batch_get_result bg;
    struct eddy_ddb_query_result q;
};

#define SAVE(field)                                                                                \
    struct got *g = ud;                                                                            \
    g->calls++;                                                                                    \
    g->err = err;                                                                                  \
    snprintf(g->code, sizeof g->code, "%s", reply->error_code ? reply->error_code : "");           \
    g->field = *res

static void on_item(eddy_err err, struct eddy_ddb_item_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    SAVE(item);
}
static void on_txn(eddy_err err, struct eddy_ddb_txn_result *res,
                   const struct eddy_aws_reply *reply, void *ud)
{
    SAVE(txn);
}
static void on_bw(eddy_err err, struct eddy_ddb_batch_write_result *res,
                  const struct eddy_aws_reply *reply, void *ud)
{
    SAVE(bw);
}
static void on_bg(eddy_err err, struct eddy_ddb_batch_get_result *res,
                  const struct eddy_aws_reply *reply, void *ud)
{
    SAVE(bg);
}
static void on_query(eddy_err err, struct eddy_ddb_query_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    SAVE(q);
}

static void ddb_init(struct rig *r, struct eddy_ddb *d)
{
    assert_int_equal(eddy_ddb_init(d, &r->aws, &r->ep, NULL), EDDY_OK);
}

static cJSON *key(const char *pk, const char *sk)
{
    char text[256];
    snprintf(text, sizeof text, "{\"_pk\":{\"S\":\"%s\"},\"_sk\":{\"S\":\"%s\"}}", pk, sk);
    cJSON *k = cJSON_Parse(text);
    assert_non_null(k);
    return k;
}

static void test_get_item(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    cJSON *k = key("slot/1", "STATE");
    eddy_fake_push_json(r.fake, 200,
                        "{\"Item\":{\"_pk\":{\"S\":\"slot/1\"},\"_seq\":{\"N\":\"4\"}}}");
    eddy_fake_push_json(r.fake, 200, "{}");
    struct got g = {0};
    assert_int_equal(eddy_ddb_get_item(&d, "tbl", k, true, on_item, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_non_null(g.item.item);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(g.item.item, "_seq");
    assert_string_equal(jget(seq, "N"), "4");
    eddy_ddb_item_result_cleanup(&g.item);
    cJSON *b = sent_json(&r, 0);
    assert_string_equal(jget(b, "TableName"), "tbl");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "ConsistentRead")));
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(b, "Key"), k, true));
    cJSON_Delete(b);
    assert_string_equal(eddy_fake_request_header(eddy_fake_last(r.fake), "X-Amz-Target"),
                        "DynamoDB_20120810.GetItem");

    /* no such item */
    assert_int_equal(eddy_ddb_get_item(&d, "tbl", k, false, on_item, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 2);
    assert_int_equal(g.err, EDDY_OK);
    assert_null(g.item.item);
    cJSON_Delete(k);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

static void test_put_condition_failed(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    cJSON *item = key("slot/1", "STATE");
    cJSON *vals = cJSON_Parse("{\":prev\":{\"N\":\"3\"}}");
    eddy_fake_push_json(r.fake, 400,
                        "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                        "ConditionalCheckFailedException\",\"message\":\"The conditional request "
                        "failed\",\"Item\":{\"_seq\":{\"N\":\"9\"}}}");
    struct eddy_ddb_expr ex = {.condition = "attribute_not_exists(_pk) OR #s = :prev",
                               .values = vals,
                               .return_old_on_fail = true};
    cJSON *names = cJSON_Parse("{\"#s\":\"_seq\"}");
    ex.names = names;
    struct got g = {0};
    assert_int_equal(eddy_ddb_put_item(&d, "tbl", item, &ex, NULL, on_item, &g, NULL, NULL),
                     EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_ECONDITION);
    assert_int_equal(eddy_fake_count(r.fake), 1); /* not retried */
    assert_string_equal(g.code, "ConditionalCheckFailedException");
    assert_non_null(g.item.item); /* the item as it was */
    eddy_ddb_item_result_cleanup(&g.item);
    cJSON *b = sent_json(&r, 0);
    assert_string_equal(jget(b, "ConditionExpression"), "attribute_not_exists(_pk) OR #s = :prev");
    assert_string_equal(jget(b, "ReturnValuesOnConditionCheckFailure"), "ALL_OLD");
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(b, "ExpressionAttributeValues"),
                              vals, true));
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(b, "Item"), item, true));
    cJSON_Delete(b);

    /* UpdateItem needs an update expression; DeleteItem goes out with its key */
    struct eddy_error err = {0};
    assert_int_equal(eddy_ddb_update_item(&d, "tbl", item, NULL, NULL, on_item, &g, NULL, &err),
                     EDDY_EINVAL);
    eddy_fake_push_json(r.fake, 200, "{\"Attributes\":{\"_seq\":{\"N\":\"9\"}}}");
    assert_int_equal(
        eddy_ddb_delete_item(&d, "tbl", item, NULL, "ALL_OLD", on_item, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_non_null(g.item.item);
    eddy_ddb_item_result_cleanup(&g.item);
    b = sent_json(&r, 1);
    assert_string_equal(jget(b, "ReturnValues"), "ALL_OLD");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(b, "Key"));
    cJSON_Delete(b);
    cJSON_Delete(item);
    cJSON_Delete(vals);
    cJSON_Delete(names);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

static void test_transact_canceled(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    cJSON *s = key("slot/1", "STATE"), *in = key("slot/1", "INBOUND/1/0/InsertCoin"),
          *dd = key("slot/1", "EVENT/e1"), *old = key("#outbox/0", "x");
    cJSON *vals = cJSON_Parse("{\":prev\":{\"N\":\"0\"}}");
    char *in_text = cJSON_PrintUnformatted(in); /* an item given as text is sent as is */
    struct eddy_ddb_txn_item items[4] = {
        {EDDY_DDB_PUT,
         "tbl",
         s,
         {.condition = "attribute_not_exists(_pk) OR _seq = :prev",
          .values = vals,
          .return_old_on_fail = true},
         NULL,
         0},
        {EDDY_DDB_PUT, "tbl", NULL, {.condition = "attribute_not_exists(_pk)"}, in_text, 0},
        {EDDY_DDB_CHECK, "tbl", dd, {.condition = "attribute_not_exists(_pk)"}, NULL, 0},
        {EDDY_DDB_DELETE, "tbl", old, {0}, NULL, 0},
    };
    eddy_fake_push_json(
        r.fake, 400,
        "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
        "TransactionCanceledException\",\"Message\":\"Transaction cancelled, "
        "please refer cancellation reasons for specific reasons "
        "[ConditionalCheckFailed, None, TransactionConflict, None]\","
        "\"CancellationReasons\":[{\"Code\":\"ConditionalCheckFailed\","
        "\"Message\":\"The conditional request failed\",\"Item\":{\"_seq\":"
        "{\"N\":\"2\"}}},{\"Code\":\"None\"},{\"Code\":\"TransactionConflict\","
        "\"Message\":\"Transaction is ongoing for the item\"},{\"Code\":\"None\"}]}");
    struct got g = {0};
    assert_int_equal(eddy_ddb_transact_write(&d, items, 4, "tok-1", on_txn, &g, NULL, NULL),
                     EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_ETXN_CANCELED);
    assert_int_equal(eddy_fake_count(r.fake), 1);
    assert_int_equal(g.txn.n, 4);
    assert_string_equal(g.txn.reasons[0].code, "ConditionalCheckFailed");
    assert_string_equal(g.txn.reasons[0].message, "The conditional request failed");
    assert_non_null(g.txn.reasons[0].item);
    assert_string_equal(g.txn.reasons[1].code, "None");
    assert_null(g.txn.reasons[1].item);
    assert_string_equal(g.txn.reasons[2].code, "TransactionConflict");
    assert_string_equal(g.txn.reasons[3].code, "None");
    eddy_ddb_txn_result_cleanup(&g.txn);

    /* the length helpers account for the body exactly (less the first comma) */
    size_t want = eddy_ddb_txn_envelope_len("tok-1") - 1;
    for (int i = 0; i < 4; i++) {
        char *text = items[i].item_json ? NULL : cJSON_PrintUnformatted(items[i].item);
        want += eddy_ddb_txn_item_overhead(&items[i]) + strlen(text ? text : items[i].item_json);
        free(text);
    }
    assert_int_equal(eddy_fake_request_at(r.fake, 0)->body_len, want);

    cJSON *b = sent_json(&r, 0);
    assert_string_equal(jget(b, "ClientRequestToken"), "tok-1");
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(b, "TransactItems");
    assert_int_equal(cJSON_GetArraySize(ti), 4);
    const cJSON *put = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ti, 0), "Put");
    assert_string_equal(jget(put, "TableName"), "tbl");
    assert_string_equal(jget(put, "ReturnValuesOnConditionCheckFailure"), "ALL_OLD");
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(put, "Item"), s, true));
    const cJSON *put_text = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ti, 1), "Put");
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(put_text, "Item"), in, true));
    const cJSON *chk =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ti, 2), "ConditionCheck");
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(chk, "Key"), dd, true));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ti, 3), "Delete"));
    cJSON_Delete(b);

    /* success: no reasons */
    eddy_fake_push_json(r.fake, 200, "{}");
    assert_int_equal(eddy_ddb_transact_write(&d, items, 2, NULL, on_txn, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.txn.n, 0);

    /* over 100 items: refused before the call */
    struct eddy_ddb_txn_item many[101];
    for (int i = 0; i < 101; i++)
        many[i] = items[1];
    struct eddy_error err = {0};
    assert_int_equal(eddy_ddb_transact_write(&d, many, 101, NULL, on_txn, &g, NULL, &err),
                     EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "100"));
    assert_int_equal(g.calls, 2);
    cJSON_Delete(s);
    cJSON_Delete(in);
    free(in_text);
    cJSON_Delete(dd);
    cJSON_Delete(old);
    cJSON_Delete(vals);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

static void test_batch_write_unprocessed(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    cJSON *k1 = key("#outbox/1", "a"), *k2 = key("#outbox/1", "b");
    struct eddy_ddb_write_req reqs[2] = {{.delete_key = k1}, {.put_item = k2}};
    eddy_fake_push_json(r.fake, 200,
                        "{\"UnprocessedItems\":{\"tbl\":[{\"DeleteRequest\":{\"Key\":{\"_pk\":"
                        "{\"S\":\"#outbox/1\"},\"_sk\":{\"S\":\"a\"}}}}]}}");
    struct got g = {0};
    assert_int_equal(eddy_ddb_batch_write(&d, "tbl", reqs, 2, on_bw, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.bw.nunprocessed, 1);
    const cJSON *dr =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(g.bw.unprocessed, 0), "DeleteRequest");
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(dr, "Key"), k1, true));
    eddy_ddb_batch_write_result_cleanup(&g.bw);
    cJSON *b = sent_json(&r, 0);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(b, "RequestItems"), "tbl");
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 1), "PutRequest"));
    cJSON_Delete(b);

    eddy_fake_push_json(r.fake, 200, "{\"UnprocessedItems\":{}}");
    assert_int_equal(eddy_ddb_batch_write(&d, "tbl", reqs, 2, on_bw, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.bw.nunprocessed, 0);
    assert_null(g.bw.unprocessed);

    struct eddy_ddb_write_req many[26];
    for (int i = 0; i < 26; i++)
        many[i] = reqs[0];
    struct eddy_error err = {0};
    assert_int_equal(eddy_ddb_batch_write(&d, "tbl", many, 26, on_bw, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "BatchWriteItem takes at most 25 requests (got 26)"));
    cJSON_Delete(k1);
    cJSON_Delete(k2);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

/* A delete key given as its JSON text goes into the body as it is, and
 * a request naming two kinds of write is refused. */
static void test_batch_write_key_text(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    static const char text[] = "{\"_pk\":{\"S\":\"#outbox/2\"},\"_sk\":{\"S\":\"q\\\"x\"}}";
    cJSON *k1 = key("#outbox/1", "a");
    struct eddy_ddb_write_req reqs[2] = {
        {.delete_key_json = text, .delete_key_len = sizeof text - 1},
        {.delete_key = k1},
    };
    eddy_fake_push_json(r.fake, 200, "{\"UnprocessedItems\":{}}");
    struct got g = {0};
    assert_int_equal(eddy_ddb_batch_write(&d, "tbl", reqs, 2, on_bw, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    cJSON *b = sent_json(&r, 0);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(b, "RequestItems"), "tbl");
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    const cJSON *k0 = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "DeleteRequest"), "Key");
    assert_string_equal(jget(cJSON_GetObjectItemCaseSensitive(k0, "_sk"), "S"), "q\"x");
    assert_string_equal(jget(cJSON_GetObjectItemCaseSensitive(k0, "_pk"), "S"), "#outbox/2");
    const cJSON *k1sent = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 1), "DeleteRequest"), "Key");
    assert_true(cJSON_Compare(k1sent, k1, true));
    cJSON_Delete(b);

    struct eddy_ddb_write_req both = {
        .delete_key = k1, .delete_key_json = text, .delete_key_len = sizeof text - 1};
    struct eddy_error err = {0};
    assert_int_equal(eddy_ddb_batch_write(&d, "tbl", &both, 1, on_bw, &g, NULL, &err), EDDY_EINVAL);
    assert_non_null(strstr(err.detail, "exactly one"));
    cJSON_Delete(k1);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

/* An item given as text with its length: that many bytes go, as they are
 * (the text need not end there). */
static void test_transact_item_text_len(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    static const char text[] = "{\"_pk\":{\"S\":\"a\"},\"_sk\":{\"S\":\"b\"}}and more";
    static const char *const tables[] = {"t\"1", "t\"1", "tbl", "t\"1"};
    struct eddy_ddb_txn_item items[4];
    for (int i = 0; i < 4; i++)
        items[i] = (struct eddy_ddb_txn_item){.kind = i == 2 ? EDDY_DDB_DELETE : EDDY_DDB_PUT,
                                              .table = tables[i],
                                              .item_json = text,
                                              .item_json_len = 33};
    eddy_fake_push_json(r.fake, 200, "{}");
    struct got g = {0};
    assert_int_equal(eddy_ddb_transact_write(&d, items, 4, "tok", on_txn, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    eddy_ddb_txn_result_cleanup(&g.txn);
    cJSON *b = sent_json(&r, 0);
    assert_non_null(b);
    const cJSON *put = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "TransactItems"), 0), "Put");
    cJSON *want = cJSON_Parse("{\"_pk\":{\"S\":\"a\"},\"_sk\":{\"S\":\"b\"}}");
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(put, "Item"), want, true));
    /* each item names its table, the same one written once and copied */
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b, "TransactItems");
    for (int i = 0; i < 4; i++) {
        const cJSON *it =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i), i == 2 ? "Delete" : "Put");
        assert_string_equal(jget(it, "TableName"), tables[i]);
        assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(it, i == 2 ? "Key" : "Item"),
                                  want, true));
    }
    cJSON_Delete(want);
    cJSON_Delete(b);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

static void test_batch_get(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    cJSON *k1 = key("a/1", "STATE"), *k2 = key("a/2", "STATE");
    const cJSON *keys[2] = {k1, k2};
    eddy_fake_push_json(r.fake, 200,
                        "{\"Responses\":{\"tbl\":[{\"_pk\":{\"S\":\"a/1\"}}]},\"UnprocessedKeys\":"
                        "{\"tbl\":{\"Keys\":[{\"_pk\":{\"S\":\"a/2\"},\"_sk\":{\"S\":\"STATE\"}}],"
                        "\"ConsistentRead\":true}}}");
    struct got g = {0};
    assert_int_equal(eddy_ddb_batch_get(&d, "tbl", keys, 2, true, on_bg, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(cJSON_GetArraySize(g.bg.items), 1);
    assert_int_equal(cJSON_GetArraySize(g.bg.unprocessed), 1);
    assert_true(cJSON_Compare(cJSON_GetArrayItem(g.bg.unprocessed, 0), k2, true));
    eddy_ddb_batch_get_result_cleanup(&g.bg);
    cJSON *b = sent_json(&r, 0);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(b, "RequestItems"), "tbl");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "ConsistentRead")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "Keys")), 2);
    cJSON_Delete(b);
    /* DynamoDB fills a reply to 16 MB of its own item sizes, which is more
     * as JSON: the reply may be four times that */
    assert_int_equal(eddy_fake_request_at(r.fake, 0)->max_response, (size_t)64 << 20);
    const cJSON *many[101];
    for (int i = 0; i < 101; i++)
        many[i] = k1;
    struct eddy_error err = {0};
    assert_int_equal(eddy_ddb_batch_get(&d, "tbl", many, 101, true, on_bg, &g, NULL, &err),
                     EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "BatchGetItem takes at most 100 keys (got 101)"));
    cJSON_Delete(k1);
    cJSON_Delete(k2);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

static void test_query_pages(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_ddb d;
    ddb_init(&r, &d);
    cJSON *vals = cJSON_Parse("{\":pk\":{\"S\":\"#outbox/3\"}}");
    eddy_fake_push_json(
        r.fake, 200,
        "{\"Items\":[{\"_sk\":{\"S\":\"1\"}},{\"_sk\":{\"S\":\"2\"}}],\"Count\":2,"
        "\"LastEvaluatedKey\":{\"_pk\":{\"S\":\"#outbox/3\"},\"_sk\":{\"S\":\"2\"}}}");
    eddy_fake_push_json(r.fake, 200, "{\"Items\":[{\"_sk\":{\"S\":\"3\"}}],\"Count\":1}");
    struct eddy_ddb_query_params p = {.table = "tbl",
                                      .key_condition = "_pk = :pk",
                                      .values = vals,
                                      .consistent = true,
                                      .limit = 2};
    struct got g = {0};
    assert_int_equal(eddy_ddb_query(&d, &p, on_query, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(cJSON_GetArraySize(g.q.items), 2);
    assert_non_null(g.q.last_key);
    struct eddy_ddb_query_result page1 = g.q;
    p.start_key = page1.last_key;
    p.backward = true;
    assert_int_equal(eddy_ddb_query(&d, &p, on_query, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(cJSON_GetArraySize(g.q.items), 1);
    assert_null(g.q.last_key);
    cJSON *b = sent_json(&r, 1);
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(b, "ExclusiveStartKey"),
                              page1.last_key, true));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(b, "ScanIndexForward")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "ConsistentRead")));
    assert_string_equal(jget(b, "KeyConditionExpression"), "_pk = :pk");
    assert_int_equal((int)jnumber(b, "Limit"), 2);
    assert_int_equal(eddy_fake_request_at(r.fake, 1)->max_response, (size_t)64 << 20);
    cJSON_Delete(b);
    eddy_ddb_query_result_cleanup(&page1);
    eddy_ddb_query_result_cleanup(&g.q);
    cJSON_Delete(vals);
    eddy_ddb_cleanup(&d);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_item),
        cmocka_unit_test(test_put_condition_failed),
        cmocka_unit_test(test_transact_canceled),
        cmocka_unit_test(test_batch_write_unprocessed),
        cmocka_unit_test(test_batch_write_key_text),
        cmocka_unit_test(test_transact_item_text_len),
        cmocka_unit_test(test_batch_get),
        cmocka_unit_test(test_query_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
