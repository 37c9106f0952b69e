/* Unit tests for svc/sqs: request bodies, typed results, per-entry batch
 * failures, limits checked before the call. Against the fake transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_transport.h"
#include "rig.h"
#include "svc/sqs.h"

#define QURL "http://127.0.0.1:4566/123456789012/jobs"

struct got {
    int calls;
    eddy_err err;
    struct eddy_sqs_receive_result recv;
    struct eddy_sqs_batch_result batch;
    struct eddy_sqs_send_result send;
    struct eddy_sqs_queue_attrs attrs;
};

static void on_recv(eddy_err err, struct eddy_sqs_receive_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct got *g = ud;
    assert_non_null(reply);
    g->calls++;
    g->err = err;
    g->recv = *res; /* keep it past the callback */
}

static void on_batch(eddy_err err, struct eddy_sqs_batch_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct got *g = ud;
    assert_non_null(reply);
    g->calls++;
    g->err = err;
    g->batch = *res;
}

static void on_send(eddy_err err, struct eddy_sqs_send_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct got *g = ud;
    assert_non_null(reply);
    g->calls++;
    g->err = err;
    g->send = *res;
}

static void on_attrs(eddy_err err, struct eddy_sqs_queue_attrs *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct got *g = ud;
    assert_non_null(reply);
    g->calls++;
    g->err = err;
    g->attrs = *res;
}

static void sqs_init(struct rig *r, struct eddy_sqs *s)
{
    assert_int_equal(eddy_sqs_init(s, &r->aws, &r->ep, NULL), EDDY_OK);
}

static const char *recv_reply =
    "{\"Messages\":[{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"rh-1\",\"MD5OfBody\":\"abc\","
    "\"Body\":\"{\\\"detail\\\":{\\\"id\\\":\\\"e1\\\"}}\",\"Attributes\":{"
    "\"ApproximateReceiveCount\":\"3\",\"SentTimestamp\":\"1700000000123\","
    "\"MessageGroupId\":\"g1\",\"AWSTraceHeader\":\"Root=1-abc\"},"
    "\"MessageAttributes\":{\"eddy-error\":{\"DataType\":\"String\",\"StringValue\":\"bad\"},"
    "\"n\":{\"DataType\":\"Number\",\"StringValue\":\"5\"}}},"
    "{\"MessageId\":\"m-2\",\"ReceiptHandle\":\"rh-2\",\"Body\":\"plain\"}]}";

static void test_receive(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_sqs s;
    sqs_init(&r, &s);
    eddy_fake_push_json(r.fake, 200, recv_reply);
    struct eddy_sqs_receive_params p = {QURL, 20, 10, 30};
    struct got g = {0};
    assert_int_equal(eddy_sqs_receive(&s, &p, on_recv, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.recv.n, 2);
    struct eddy_sqs_message *m = &g.recv.msgs[0];
    assert_string_equal(m->message_id, "m-1");
    assert_string_equal(m->receipt_handle, "rh-1");
    assert_string_equal(m->body, "{\"detail\":{\"id\":\"e1\"}}");
    assert_int_equal(m->body_len, strlen(m->body));
    assert_string_equal(m->md5_of_body, "abc");
    assert_int_equal(m->receive_count, 3);
    assert_int_equal(m->sent_ms, 1700000000123);
    assert_string_equal(m->group_id, "g1");
    assert_string_equal(m->trace_header, "Root=1-abc");
    assert_null(m->dedup_id);
    assert_int_equal(m->nattrs, 2);
    assert_string_equal(m->attrs[0].name, "eddy-error");
    assert_string_equal(m->attrs[0].type, "String");
    assert_string_equal(m->attrs[0].value, "bad");
    assert_string_equal(m->attrs[1].value, "5");
    m = &g.recv.msgs[1];
    assert_string_equal(m->body, "plain");
    assert_int_equal(m->receive_count, 0);
    assert_null(m->group_id);
    assert_int_equal(m->nattrs, 0);
    /* a message taken out of the result lives on its own */
    struct eddy_sqs_message kept = g.recv.msgs[0];
    memset(&g.recv.msgs[0], 0, sizeof kept);
    eddy_sqs_receive_result_cleanup(&g.recv);
    assert_string_equal(kept.receipt_handle, "rh-1");
    eddy_sqs_message_cleanup(&kept);

    const struct eddy_fake_request *q = eddy_fake_last(r.fake);
    assert_string_equal(eddy_fake_request_header(q, "X-Amz-Target"), "AmazonSQS.ReceiveMessage");
    assert_int_equal(q->timeout_ms, 20000 + EDDY_SQS_POLL_MARGIN_MS);
    cJSON *b = sent_json(&r, 0);
    assert_string_equal(jget(b, "QueueUrl"), QURL);
    assert_int_equal((int)jnumber(b, "MaxNumberOfMessages"), 10);
    assert_int_equal((int)jnumber(b, "WaitTimeSeconds"), 20);
    assert_int_equal((int)jnumber(b, "VisibilityTimeout"), 30);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(b, "MessageSystemAttributeNames");
    assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "All");
    names = cJSON_GetObjectItemCaseSensitive(b, "MessageAttributeNames");
    assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "All");
    cJSON_Delete(b);
    eddy_sqs_cleanup(&s);
    rig_close(&r);
}

static void test_receive_empty_limits_and_bad_reply(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_sqs s;
    sqs_init(&r, &s);
    struct got g = {0};
    struct eddy_error err = {0};
    struct eddy_sqs_receive_params p = {QURL, 0, 11, -1};
    assert_int_equal(eddy_sqs_receive(&s, &p, on_recv, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "10"));
    p.max = 10;
    p.wait_s = 21;
    assert_int_equal(eddy_sqs_receive(&s, &p, on_recv, &g, NULL, &err), EDDY_ELIMIT);
    p.wait_s = 0;

    eddy_fake_push_json(r.fake, 200, "{}");
    assert_int_equal(eddy_sqs_receive(&s, &p, on_recv, &g, NULL, &err), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.recv.n, 0);
    cJSON *b = sent_json(&r, 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(b, "VisibilityTimeout"));
    cJSON_Delete(b);

    eddy_fake_push_json(r.fake, 200, "{\"Messages\":[{\"MessageId\":\"m\"}]}");
    assert_int_equal(eddy_sqs_receive(&s, &p, on_recv, &g, NULL, &err), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 2);
    assert_int_equal(g.err, EDDY_EPARSE);
    assert_int_equal(g.recv.n, 0);
    eddy_sqs_receive_result_cleanup(&g.recv);
    eddy_sqs_cleanup(&s);
    rig_close(&r);
}

/* The reply read from its text: escapes (a surrogate pair, \u0000 ending
 * a string as it ends a C string), the first of two members of one name,
 * fields of another type counting as absent, numbers sent as numbers. */
static void test_receive_parse_text(void **state)
{
    (void)state;
    static const char text[] =
        " {\"Other\":[1,{\"a\":null}],\"Messages\":[{\"Messag\\u0065Id\":\"m\\\"1\","
        "\"ReceiptHandle\":\"r\\/h\",\"Body\":\"\\ud83d\\ude00 caf\\u00e9 \\u20ac\\n\\t\\b\\f\","
        "\"Body\":\"second\",\"MD5OfBody\":5,"
        "\"Attributes\":{\"ApproximateReceiveCount\":7,\"SentTimestamp\":\" -12x\","
        "\"ApproximateFirstReceiveTimestamp\":\"99999999999999999999\","
        "\"MessageGroupId\":\"g\\u0000tail\",\"MessageGroupId\":\"g2\",\"AWSTraceHeader\":null},"
        "\"Attributes\":{\"MessageDeduplicationId\":\"ignored\"},"
        "\"MessageAttributes\":{\"a\\u0062\":{\"DataType\":\"Binary\",\"StringValue\":1,"
        "\"BinaryValue\":\"AAE=\"},\"skip\":\"not an object\",\"c\":{\"StringValue\":\"v\"}}},"
        "{\"MessageId\":\"m2\",\"ReceiptHandle\\u0000x\":\"r2\",\"Body\":\"\",\"Attributes\":[],"
        "\"MessageAttributes\":null}],\"Messages\":7}\r\n";
    struct eddy_sqs_receive_result res;
    struct eddy_error err = {0};
    assert_int_equal(eddy_sqs_receive_parse(text, sizeof text - 1, &res, &err), EDDY_OK);
    assert_int_equal(res.n, 2);
    struct eddy_sqs_message *m = &res.msgs[0];
    assert_string_equal(m->message_id, "m\"1");
    assert_string_equal(m->receipt_handle, "r/h");
    assert_string_equal(m->body, "\xf0\x9f\x98\x80 caf\xc3\xa9 \xe2\x82\xac\n\t\b\f");
    assert_int_equal(m->body_len, strlen(m->body));
    assert_null(m->md5_of_body);
    assert_int_equal(m->receive_count, 7);
    assert_int_equal(m->sent_ms, -12);
    assert_int_equal(m->first_receive_ms, INT64_MAX);
    assert_string_equal(m->group_id, "g");
    assert_null(m->dedup_id);
    assert_null(m->trace_header);
    assert_int_equal(m->nattrs, 2);
    assert_string_equal(m->attrs[0].name, "ab");
    assert_string_equal(m->attrs[0].type, "Binary");
    assert_string_equal(m->attrs[0].value, "AAE=");
    assert_string_equal(m->attrs[1].name, "c");
    assert_null(m->attrs[1].type);
    assert_string_equal(m->attrs[1].value, "v");
    m = &res.msgs[1];
    assert_string_equal(m->body, "");
    assert_int_equal(m->body_len, 0);
    assert_int_equal(m->nattrs, 0);
    assert_null(m->attrs);
    eddy_sqs_receive_result_cleanup(&res);

    /* more messages than one batch: the result grows */
    char many[4096] = "{\"Messages\":[";
    for (int i = 0; i < 25; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%s{\"MessageId\":\"%d\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}", i ? "," : "",
                 i);
    strcat(many, "]}");
    assert_int_equal(eddy_sqs_receive_parse(many, strlen(many), &res, &err), EDDY_OK);
    assert_int_equal(res.n, 25);
    assert_string_equal(res.msgs[24].message_id, "24");
    eddy_sqs_receive_result_cleanup(&res);

    static const char *const empty[] = {"", "{}", "{\"Messages\":null}", "{\"Messages\":[]}",
                                        " { \"Messages\" : [ ] } "};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        assert_int_equal(eddy_sqs_receive_parse(empty[i], strlen(empty[i]), &res, &err), EDDY_OK);
        assert_int_equal(res.n, 0);
    }
}

/* What is not a reply is refused, whole: nothing is left to clean up. */
static void test_receive_parse_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[]",
        "{\"Messages\":{}}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\"}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":1}]}",
        "{\"Messages\":[7]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"},7]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]} x",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"\\ud800\"}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"\\udc00x\"}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"a\x01\"}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"\\x\"}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\",\"n\":01}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\",}]}",
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}],}",
        "{,\"Messages\":[]}",
        "{\"Messages\" []}",
        "{\"a\":tru}",
        "{\"a\":[1 2]}",
        "{\"a\":-}",
        "{\"a\":1.}",
        "{\"a\":1e}",
        "{\"a\":\"open}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct eddy_sqs_receive_result res;
        struct eddy_error err = {0};
        if (eddy_sqs_receive_parse(bad[i], strlen(bad[i]), &res, &err) != EDDY_EPARSE)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err.detail[0] != '\0');
        assert_int_equal(res.n, 0);
        assert_null(res.msgs);
    }
}

/* A batch reply read from its text: Failed wins over Successful in either
 * order, the first failure of an entry counts, ids are the index digits
 * whole, entries may come as an object's members, and an entry named
 * nowhere fails as NoResult. */
static void test_batch_parse_text(void **state)
{
    (void)state;
    static const char text[] =
        "{\"Failed\":[{\"Id\":\"1\",\"Code\":\"C1\",\"Message\":\"m\\u00e9\",\"SenderFault\":true},"
        "{\"Id\":\"1\",\"Code\":\"again\"},{\"Id\":\"2\",\"SenderFault\":\"true\"},{\"Id\":\"01\"},"
        "{\"Id\":\"10\",\"Code\":\"out\"},{\"Id\":\"3x\",\"Code\":\"bad\"},{\"Id\":3,\"Code\":"
        "\"n\"}],"
        "\"Successful\":[{\"Id\":\"1\"},{\"Id\":\"4\"},7,{\"Id\":\"5\",\"Id\":\"6\"}],"
        "\"Successful\":[{\"Id\":\"6\"}],\"Failed\":[{\"Id\":\"6\",\"Code\":\"late\"}]}";
    struct eddy_sqs_batch_result r;
    struct eddy_error err = {0};
    assert_int_equal(eddy_sqs_batch_parse(text, sizeof text - 1, 7, &r, &err), EDDY_OK);
    assert_int_equal(r.n, 7);
    assert_false(r.entries[0].ok); /* "01" names 1, as strtoul reads it */
    assert_string_equal(r.entries[0].code, "NoResult");
    assert_false(r.entries[1].ok);
    assert_string_equal(r.entries[1].code, "C1");
    assert_string_equal(r.entries[1].message, "m\xc3\xa9");
    assert_true(r.entries[1].sender_fault);
    assert_false(r.entries[2].ok); /* failed without a code; "true" is not true */
    assert_string_equal(r.entries[2].code, "Unknown");
    assert_string_equal(r.entries[2].message, "");
    assert_false(r.entries[2].sender_fault);
    assert_string_equal(r.entries[3].code, "NoResult");
    assert_true(r.entries[4].ok);
    assert_null(r.entries[4].code);
    assert_true(r.entries[5].ok);
    assert_string_equal(r.entries[6].code, "NoResult");
    assert_int_equal(r.nfailed, 5);
    eddy_sqs_batch_result_cleanup(&r);

    static const char members[] = "{\"Successful\":{\"a\":{\"Id\":\"0\"},\"b\":{\"Id\":\"1\"}}}";
    assert_int_equal(eddy_sqs_batch_parse(members, sizeof members - 1, 2, &r, &err), EDDY_OK);
    assert_true(r.entries[0].ok && r.entries[1].ok);
    assert_int_equal(r.nfailed, 0);
    eddy_sqs_batch_result_cleanup(&r);

    assert_int_equal(eddy_sqs_batch_parse("", 0, 1, &r, &err), EDDY_OK);
    assert_string_equal(r.entries[0].code, "NoResult");
    eddy_sqs_batch_result_cleanup(&r);

    static const char *const bad[] = {"[]", "{\"Successful\":[{\"Id\":\"0\"}]", "{\"a\":1,}",
                                      "{\"Successful\":[{\"Id\":\"0\"}]} 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(eddy_sqs_batch_parse(bad[i], strlen(bad[i]), 1, &r, &err), EDDY_EPARSE);
        assert_null(r.entries);
        assert_int_equal(r.n, 0);
    }
}

static void test_delete_batch_partial(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_sqs s;
    sqs_init(&r, &s);
    eddy_fake_push_json(r.fake, 200,
                        "{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[{\"Id\":\"1\","
                        "\"Code\":\"ReceiptHandleIsInvalid\",\"Message\":\"bad handle\","
                        "\"SenderFault\":true}]}");
    struct eddy_sqs_batch_entry e[3] = {{"rh-a", 0}, {"rh-b", 0}, {"rh-c", 0}};
    struct got g = {0};
    assert_int_equal(eddy_sqs_delete_batch(&s, QURL, e, 3, on_batch, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.batch.n, 3);
    assert_int_equal(g.batch.nfailed, 2);
    assert_true(g.batch.entries[0].ok);
    assert_false(g.batch.entries[1].ok);
    assert_true(g.batch.entries[1].sender_fault);
    assert_string_equal(g.batch.entries[1].code, "ReceiptHandleIsInvalid");
    assert_string_equal(g.batch.entries[1].message, "bad handle");
    assert_string_equal(g.batch.entries[2].code, "NoResult");
    eddy_sqs_batch_result_cleanup(&g.batch);
    const struct eddy_fake_request *q = eddy_fake_last(r.fake);
    assert_string_equal(eddy_fake_request_header(q, "X-Amz-Target"),
                        "AmazonSQS.DeleteMessageBatch");
    cJSON *b = sent_json(&r, 0);
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(b, "Entries");
    assert_int_equal(cJSON_GetArraySize(entries), 3);
    assert_string_equal(jget(cJSON_GetArrayItem(entries, 2), "Id"), "2");
    assert_string_equal(jget(cJSON_GetArrayItem(entries, 2), "ReceiptHandle"), "rh-c");
    cJSON_Delete(b);

    struct eddy_sqs_batch_entry many[11];
    for (int i = 0; i < 11; i++)
        many[i] = (struct eddy_sqs_batch_entry){"rh", 0};
    struct eddy_error err = {0};
    assert_int_equal(eddy_sqs_delete_batch(&s, QURL, many, 11, on_batch, &g, NULL, &err),
                     EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "1..10"));
    assert_int_equal(g.calls, 1);
    eddy_sqs_cleanup(&s);
    rig_close(&r);
}

static void test_change_visibility(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_sqs s;
    sqs_init(&r, &s);
    eddy_fake_push_json(r.fake, 200, "{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"1\"}]}");
    struct eddy_sqs_batch_entry e[2] = {{"rh-a", 0}, {"rh-b", 120}};
    struct got g = {0};
    assert_int_equal(eddy_sqs_change_visibility_batch(&s, QURL, e, 2, on_batch, &g, NULL, NULL),
                     EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.batch.nfailed, 0);
    eddy_sqs_batch_result_cleanup(&g.batch);
    assert_string_equal(eddy_fake_request_header(eddy_fake_last(r.fake), "X-Amz-Target"),
                        "AmazonSQS.ChangeMessageVisibilityBatch");
    cJSON *b = sent_json(&r, 0);
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(b, "Entries");
    assert_int_equal((int)jnumber(cJSON_GetArrayItem(entries, 1), "VisibilityTimeout"), 120);
    cJSON_Delete(b);
    eddy_sqs_cleanup(&s);
    rig_close(&r);
}

static void test_send(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_sqs s;
    sqs_init(&r, &s);
    eddy_fake_push_json(r.fake, 200, "{\"MessageId\":\"new-1\",\"SequenceNumber\":\"77\"}");
    struct eddy_sqs_attr a = {"eddy-error", "String", "no entity id"};
    struct eddy_sqs_send_params p = {QURL, "body \"quoted\"\n", &a, 1, "grp", "dd-1", 5};
    struct got g = {0};
    assert_int_equal(eddy_sqs_send(&s, &p, on_send, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_string_equal(g.send.message_id, "new-1");
    assert_string_equal(g.send.sequence_number, "77");
    eddy_sqs_send_result_cleanup(&g.send);
    cJSON *b = sent_json(&r, 0);
    assert_string_equal(jget(b, "MessageBody"), "body \"quoted\"\n");
    assert_string_equal(jget(b, "MessageGroupId"), "grp");
    assert_string_equal(jget(b, "MessageDeduplicationId"), "dd-1");
    assert_int_equal((int)jnumber(b, "DelaySeconds"), 5);
    const cJSON *ma = cJSON_GetObjectItemCaseSensitive(b, "MessageAttributes");
    const cJSON *ea = cJSON_GetObjectItemCaseSensitive(ma, "eddy-error");
    assert_string_equal(jget(ea, "DataType"), "String");
    assert_string_equal(jget(ea, "StringValue"), "no entity id");
    cJSON_Delete(b);

    /* over 256 KiB: refused before the call */
    char *big = malloc(EDDY_SQS_MAX_MESSAGE_BYTES + 2);
    memset(big, 'x', EDDY_SQS_MAX_MESSAGE_BYTES + 1);
    big[EDDY_SQS_MAX_MESSAGE_BYTES + 1] = '\0';
    struct eddy_sqs_send_params pb = {QURL, big, NULL, 0, NULL, NULL, -1};
    struct eddy_error err = {0};
    assert_int_equal(eddy_sqs_send(&s, &pb, on_send, &g, NULL, &err), EDDY_ELIMIT);
    assert_non_null(strstr(err.detail, "256 KiB"));
    free(big);
    assert_int_equal(eddy_fake_count(r.fake), 1);
    eddy_sqs_cleanup(&s);
    rig_close(&r);
}

static void test_queue_attributes(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 3);
    struct eddy_sqs s;
    sqs_init(&r, &s);
    eddy_fake_push_json(
        r.fake, 200,
        "{\"Attributes\":{\"VisibilityTimeout\":\"45\",\"FifoQueue\":\"true\","
        "\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"arn:aws:sqs:us-east-1:"
        "123456789012:dlq\\\",\\\"maxReceiveCount\\\":5}\"}}");
    struct got g = {0};
    assert_int_equal(eddy_sqs_get_queue_attributes(&s, QURL, on_attrs, &g, NULL, NULL), EDDY_OK);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(g.err, EDDY_OK);
    assert_int_equal(g.attrs.visibility_timeout_s, 45);
    assert_true(g.attrs.fifo);
    assert_string_equal(g.attrs.dlq_arn, "arn:aws:sqs:us-east-1:123456789012:dlq");
    assert_int_equal(g.attrs.max_receive_count, 5);
    eddy_sqs_queue_attrs_cleanup(&g.attrs);
    eddy_sqs_cleanup(&s);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receive),
        cmocka_unit_test(test_receive_empty_limits_and_bad_reply),
        cmocka_unit_test(test_receive_parse_text),
        cmocka_unit_test(test_receive_parse_refusals),
        cmocka_unit_test(test_batch_parse_text),
        cmocka_unit_test(test_delete_batch_partial),
        cmocka_unit_test(test_change_visibility),
        cmocka_unit_test(test_send),
        cmocka_unit_test(test_queue_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
