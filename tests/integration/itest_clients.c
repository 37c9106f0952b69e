/*
 * itest_clients.c - eddy's service clients against the local AWS (moto)
 * over real HTTP, with the real credential chain read from the environment.
 *
 *     itest_clients plain   every SQS, DynamoDB and EventBridge call eddy makes
 *     itest_clients auth    moto verifying SigV4: signed calls pass, a wrong
 *                           secret is refused, temporary credentials work
 *     itest_clients tls     HTTPS with the run's CA; without it, refused
 *
 * Run through tests/integration/with-local-aws, which exports the variant's
 * variables. Every queue, table and bus gets a random suffix: tests share the
 * local AWS. The resources are created with raw calls on the same clients
 * (CreateTable, CreateQueue, ... are calls eddy itself never makes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "itest_support.h"

/* ---- synchronous wrappers: start, run the loop, keep the typed result ---- */

struct recv_out {
    struct itest_wait w;
    struct eddy_sqs_receive_result res;
};

static void on_recv(eddy_err err, struct eddy_sqs_receive_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct recv_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err sqs_receive(struct itest_rig *r, const char *url, int wait_s, int max, int vis_s,
                            struct recv_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_sqs_receive_params p = {url, wait_s, max, vis_s};
    struct eddy_error err = {0};
    if (eddy_sqs_receive(&r->sqs, &p, on_recv, o, NULL, &err) != EDDY_OK)
        fail_msg("ReceiveMessage: %s", eddy_error_text(&err));
    itest_run(r, &o->w, wait_s + 30);
    return o->w.err;
}

struct batch_out {
    struct itest_wait w;
    struct eddy_sqs_batch_result res;
};

static void on_batch(eddy_err err, struct eddy_sqs_batch_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct batch_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err sqs_batch(struct itest_rig *r, bool del, const char *url,
                          const struct eddy_sqs_batch_entry *entries, size_t n, struct batch_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    eddy_err e =
        del ? eddy_sqs_delete_batch(&r->sqs, url, entries, n, on_batch, o, NULL, &err)
            : eddy_sqs_change_visibility_batch(&r->sqs, url, entries, n, on_batch, o, NULL, &err);
    if (e != EDDY_OK)
        fail_msg("batch start: %s", eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

struct send_out {
    struct itest_wait w;
    struct eddy_sqs_send_result res;
};

static void on_send(eddy_err err, struct eddy_sqs_send_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct send_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err sqs_send(struct itest_rig *r, const struct eddy_sqs_send_params *p,
                         struct send_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    if (eddy_sqs_send(&r->sqs, p, on_send, o, NULL, &err) != EDDY_OK)
        fail_msg("SendMessage: %s", eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

struct attrs_out {
    struct itest_wait w;
    struct eddy_sqs_queue_attrs res;
};

static void on_attrs(eddy_err err, struct eddy_sqs_queue_attrs *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct attrs_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err sqs_attrs(struct itest_rig *r, const char *url, struct attrs_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    if (eddy_sqs_get_queue_attributes(&r->sqs, url, on_attrs, o, NULL, &err) != EDDY_OK)
        fail_msg("GetQueueAttributes: %s", eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

struct item_out {
    struct itest_wait w;
    struct eddy_ddb_item_result res;
};

static void on_item(eddy_err err, struct eddy_ddb_item_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct item_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

enum item_op { GET, PUT, UPDATE, DELETE };

/* One single-item call; what is the key (GET, UPDATE, DELETE) or the item (PUT). */
static eddy_err ddb_item(struct itest_rig *r, enum item_op op, const char *table, const cJSON *what,
                         const struct eddy_ddb_expr *expr, const char *ret, struct item_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    eddy_err e = EDDY_EINVAL;
    switch (op) {
    case GET:
        e = eddy_ddb_get_item(&r->ddb, table, what, true, on_item, o, NULL, &err);
        break;
    case PUT:
        e = eddy_ddb_put_item(&r->ddb, table, what, expr, ret, on_item, o, NULL, &err);
        break;
    case UPDATE:
        e = eddy_ddb_update_item(&r->ddb, table, what, expr, ret, on_item, o, NULL, &err);
        break;
    case DELETE:
        e = eddy_ddb_delete_item(&r->ddb, table, what, expr, ret, on_item, o, NULL, &err);
        break;
    }
    if (e != EDDY_OK)
        fail_msg("item call %d: %s", (int)op, eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

struct query_out {
    struct itest_wait w;
    struct eddy_ddb_query_result res;
};

static void on_query(eddy_err err, struct eddy_ddb_query_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct query_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err ddb_query(struct itest_rig *r, const struct eddy_ddb_query_params *p,
                          struct query_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    if (eddy_ddb_query(&r->ddb, p, on_query, o, NULL, &err) != EDDY_OK)
        fail_msg("Query: %s", eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

struct bget_out {
    struct itest_wait w;
    struct eddy_ddb_batch_get_result res;
};

static void on_bget(eddy_err err, struct eddy_ddb_batch_get_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct bget_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

struct bwrite_out {
    struct itest_wait w;
    struct eddy_ddb_batch_write_result res;
};

static void on_bwrite(eddy_err err, struct eddy_ddb_batch_write_result *res,
                      const struct eddy_aws_reply *reply, void *ud)
{
    struct bwrite_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err ddb_batch_write(struct itest_rig *r, const char *table,
                                const struct eddy_ddb_write_req *reqs, size_t n,
                                struct bwrite_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    if (eddy_ddb_batch_write(&r->ddb, table, reqs, n, on_bwrite, o, NULL, &err) != EDDY_OK)
        fail_msg("BatchWriteItem: %s", eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

struct txn_out {
    struct itest_wait w;
    struct eddy_ddb_txn_result res;
};

static void on_txn(eddy_err err, struct eddy_ddb_txn_result *res,
                   const struct eddy_aws_reply *reply, void *ud)
{
    struct txn_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err ddb_txn(struct itest_rig *r, const struct eddy_ddb_txn_item *items, size_t n,
                        struct txn_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    if (eddy_ddb_transact_write(&r->ddb, items, n, NULL, on_txn, o, NULL, &err) != EDDY_OK)
        fail_msg("TransactWriteItems: %s", eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

struct put_out {
    struct itest_wait w;
    struct eddy_eb_put_result res;
};

static void on_put(eddy_err err, struct eddy_eb_put_result *res, const struct eddy_aws_reply *reply,
                   void *ud)
{
    struct put_out *o = ud;
    itest_done(&o->w, err, reply);
    o->res = *res;
    memset(res, 0, sizeof *res);
}

static eddy_err eb_put(struct itest_rig *r, const struct eddy_eb_entry *entries, size_t n,
                       struct put_out *o)
{
    memset(o, 0, sizeof *o);
    struct eddy_error err = {0};
    if (eddy_eb_put_events(&r->eb, entries, n, on_put, o, NULL, &err) != EDDY_OK)
        fail_msg("PutEvents: %s", eddy_error_text(&err));
    itest_run(r, &o->w, 30);
    return o->w.err;
}

/* Fail with everything the call saw. */
static void expect(eddy_err got, eddy_err want, const struct itest_wait *w, const char *what)
{
    if (got != want)
        fail_msg("%s: got %s, want %s (HTTP %ld, %s: %s; %s)", what, eddy_err_name(got),
                 eddy_err_name(want), w->status, w->code, w->message, w->detail);
}

/* {"_pk":{"S":pk},"_sk":{"S":sk}} */
static cJSON *key_of(const char *pk, const char *sk)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddItemToObject(k, "_pk", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItem(k, "_pk"), "S", pk);
    cJSON_AddItemToObject(k, "_sk", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItem(k, "_sk"), "S", sk);
    return k;
}

/* The key plus "n":{"N":n}. */
static cJSON *item_of(const char *pk, const char *sk, int n)
{
    cJSON *it = key_of(pk, sk);
    char num[16];
    snprintf(num, sizeof num, "%d", n);
    cJSON *v = cJSON_AddObjectToObject(it, "n");
    cJSON_AddStringToObject(v, "N", num);
    return it;
}

static int item_n(const cJSON *item)
{
    const char *s = itest_jstr(item, "n", "N", (const char *)NULL);
    assert_non_null(s);
    return atoi(s);
}

/* ---- SQS ---- */

/* Receive until want messages have arrived (into msgs), within 15 s. */
static size_t receive_n(struct itest_rig *r, const char *url, size_t want, int vis_s,
                        struct eddy_sqs_message *msgs)
{
    size_t got = 0;
    double deadline = itest_now() + 15;
    while (got < want && itest_now() < deadline) {
        struct recv_out o;
        expect(sqs_receive(r, url, 1, EDDY_SQS_MAX_BATCH, vis_s, &o), EDDY_OK, &o.w,
               "ReceiveMessage");
        for (size_t i = 0; i < o.res.n; i++) {
            assert_true(got < want);
            msgs[got++] = o.res.msgs[i];
            memset(&o.res.msgs[i], 0, sizeof o.res.msgs[i]);
        }
        eddy_sqs_receive_result_cleanup(&o.res);
    }
    return got;
}

static const struct eddy_sqs_attr *find_attr(const struct eddy_sqs_message *m, const char *name)
{
    for (size_t i = 0; i < m->nattrs; i++)
        if (strcmp(m->attrs[i].name, name) == 0)
            return &m->attrs[i];
    return NULL;
}

static void send_three(struct itest_rig *r, const char *url)
{
    for (int i = 0; i < 3; i++) {
        char body[64], num[16];
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        snprintf(num, sizeof num, "%d", 40 + i);
        struct eddy_sqs_attr attrs[] = {{"eddy-kind", "String", "test"},
                                        {"eddy-num", "Number", num}};
        struct eddy_sqs_send_params p = {url, body, attrs, 2, NULL, NULL, -1};
        struct send_out o;
        expect(sqs_send(r, &p, &o), EDDY_OK, &o.w, "SendMessage");
        assert_non_null(o.res.message_id);
        assert_null(o.res.sequence_number); /* standard queue */
        eddy_sqs_send_result_cleanup(&o.res);
    }
}

/* The three messages of send_three, in any order, received `count` times. */
static void check_three(struct eddy_sqs_message *m, uint32_t count)
{
    bool seen[3] = {false, false, false};
    for (size_t k = 0; k < 3; k++) {
        int i = -1;
        assert_int_equal(sscanf(m[k].body, "{\"i\":%d}", &i), 1);
        assert_true(i >= 0 && i < 3 && !seen[i]);
        seen[i] = true;
        assert_int_equal(m[k].body_len, strlen(m[k].body));
        assert_non_null(m[k].message_id);
        assert_non_null(m[k].receipt_handle);
        assert_non_null(m[k].md5_of_body);
        assert_int_equal(m[k].receive_count, count);
        assert_true(m[k].sent_ms > 1600000000000);
        assert_true(m[k].first_receive_ms >= m[k].sent_ms);
        const struct eddy_sqs_attr *a = find_attr(&m[k], "eddy-kind");
        assert_non_null(a);
        assert_string_equal(a->type, "String");
        assert_string_equal(a->value, "test");
        a = find_attr(&m[k], "eddy-num");
        assert_non_null(a);
        assert_string_equal(a->type, "Number");
        assert_int_equal(atoi(a->value), 40 + i);
    }
}

/* Entries for the three handles plus one bogus handle last. */
static void entries_of(const struct eddy_sqs_message *m, int vis_s, struct eddy_sqs_batch_entry *e)
{
    for (size_t k = 0; k < 3; k++)
        e[k] = (struct eddy_sqs_batch_entry){m[k].receipt_handle, vis_s};
    e[3] = (struct eddy_sqs_batch_entry){"bogus-receipt-handle", vis_s};
}

static void check_batch_bogus_last(struct batch_out *o, const char *code)
{
    assert_int_equal(o->res.n, 4);
    assert_int_equal(o->res.nfailed, 1);
    for (size_t k = 0; k < 3; k++) {
        assert_true(o->res.entries[k].ok);
        assert_null(o->res.entries[k].code);
    }
    assert_false(o->res.entries[3].ok);
    assert_true(o->res.entries[3].sender_fault);
    assert_non_null(o->res.entries[3].code);
    assert_string_equal(o->res.entries[3].code, code);
    eddy_sqs_batch_result_cleanup(&o->res);
}

static void sqs_roundtrip(struct itest_rig *r, const char *url)
{
    struct recv_out o;
    double t0 = itest_now();
    expect(sqs_receive(r, url, 1, 10, -1, &o), EDDY_OK, &o.w, "ReceiveMessage (empty)");
    assert_int_equal(o.res.n, 0);
    assert_true(itest_now() - t0 >= 0.5); /* it long-polled */
    eddy_sqs_receive_result_cleanup(&o.res);

    send_three(r, url);
    struct eddy_sqs_message m[3];
    assert_int_equal(receive_n(r, url, 3, 30, m), 3);
    check_three(m, 1);

    /* visibility 0: they come back at once, received a second time */
    struct eddy_sqs_batch_entry e[4];
    entries_of(m, 0, e);
    struct batch_out b;
    expect(sqs_batch(r, false, url, e, 4, &b), EDDY_OK, &b.w, "ChangeMessageVisibilityBatch");
    check_batch_bogus_last(&b, "ReceiptHandleIsInvalid");
    for (size_t k = 0; k < 3; k++)
        eddy_sqs_message_cleanup(&m[k]);
    assert_int_equal(receive_n(r, url, 3, 30, m), 3);
    check_three(m, 2);

    entries_of(m, 0, e);
    expect(sqs_batch(r, true, url, e, 4, &b), EDDY_OK, &b.w, "DeleteMessageBatch");
    check_batch_bogus_last(&b, "ReceiptHandleIsInvalid");
    for (size_t k = 0; k < 3; k++)
        eddy_sqs_message_cleanup(&m[k]);
    expect(sqs_receive(r, url, 1, 10, 0, &o), EDDY_OK, &o.w, "ReceiveMessage (after delete)");
    assert_int_equal(o.res.n, 0);
    eddy_sqs_receive_result_cleanup(&o.res);
}

static void sqs_attributes(struct itest_rig *r, const char *url, const char *dlq_arn)
{
    struct attrs_out a;
    expect(sqs_attrs(r, url, &a), EDDY_OK, &a.w, "GetQueueAttributes");
    assert_int_equal(a.res.visibility_timeout_s, 30);
    assert_false(a.res.fifo);
    assert_null(a.res.dlq_arn);
    eddy_sqs_queue_attrs_cleanup(&a.res);

    char body[1024];
    snprintf(body, sizeof body,
             "{\"QueueUrl\":\"%s\",\"Attributes\":{\"VisibilityTimeout\":\"45\","
             "\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"%s\\\","
             "\\\"maxReceiveCount\\\":\\\"4\\\"}\"}}",
             url, dlq_arn);
    struct itest_wait w;
    expect(itest_call(r, &r->sqs.client, "SetQueueAttributes", body, NULL, &w), EDDY_OK, &w,
           "SetQueueAttributes");
    expect(sqs_attrs(r, url, &a), EDDY_OK, &a.w, "GetQueueAttributes (redrive)");
    assert_int_equal(a.res.visibility_timeout_s, 45);
    assert_non_null(a.res.dlq_arn);
    assert_string_equal(a.res.dlq_arn, dlq_arn);
    assert_int_equal(a.res.max_receive_count, 4);
    eddy_sqs_queue_attrs_cleanup(&a.res);
}

static void test_sqs(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char name[96], dlq_name[96];
    itest_unique_name("itest-sqs", name, sizeof name);
    itest_unique_name("itest-dlq", dlq_name, sizeof dlq_name);
    char *url, *arn, *dlq_url, *dlq_arn;
    itest_create_queue(&r, name, &url, &arn);
    itest_create_queue(&r, dlq_name, &dlq_url, &dlq_arn);
    sqs_roundtrip(&r, url);
    sqs_attributes(&r, url, dlq_arn);
    itest_delete_queue(&r, url);
    itest_delete_queue(&r, dlq_url);
    free(url);
    free(arn);
    free(dlq_url);
    free(dlq_arn);
    itest_rig_close(&r);
}

/* ---- DynamoDB ---- */

static void ddb_conditional_put(struct itest_rig *r, const char *table)
{
    cJSON *item = item_of("acct/1", "a", 1);
    struct eddy_ddb_expr fresh = {.condition = "attribute_not_exists(#pk)",
                                  .names = itest_json("{\"#pk\":\"_pk\"}")};
    struct item_out o;
    expect(ddb_item(r, PUT, table, item, &fresh, NULL, &o), EDDY_OK, &o.w, "PutItem");
    eddy_ddb_item_result_cleanup(&o.res);
    /* the same again: the condition fails */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(item, "n"), "N", cJSON_CreateString("9"));
    fresh.return_old_on_fail = true;
    expect(ddb_item(r, PUT, table, item, &fresh, NULL, &o), EDDY_ECONDITION, &o.w,
           "PutItem (exists)");
    assert_string_equal(o.w.code, "ConditionalCheckFailedException");
    if (o.res.item) /* the old item, when the server returns it */
        assert_int_equal(item_n(o.res.item), 1);
    eddy_ddb_item_result_cleanup(&o.res);

    cJSON *key = key_of("acct/1", "a");
    expect(ddb_item(r, GET, table, key, NULL, NULL, &o), EDDY_OK, &o.w, "GetItem");
    assert_non_null(o.res.item);
    assert_int_equal(item_n(o.res.item), 1); /* the failed put changed nothing */
    assert_string_equal(itest_jstr(o.res.item, "_pk", "S", (const char *)NULL), "acct/1");
    eddy_ddb_item_result_cleanup(&o.res);
    cJSON_Delete(key);
    cJSON_Delete(item);
    cJSON_Delete((cJSON *)fresh.names);
}

static void ddb_update_delete(struct itest_rig *r, const char *table)
{
    cJSON *key = key_of("acct/1", "a");
    cJSON *vals = itest_json("{\":one\":{\"N\":\"1\"},\":want\":{\"N\":\"1\"}}");
    struct eddy_ddb_expr inc = {
        .update = "SET n = n + :one", .condition = "n = :want", .values = vals};
    struct item_out o;
    expect(ddb_item(r, UPDATE, table, key, &inc, "ALL_NEW", &o), EDDY_OK, &o.w, "UpdateItem");
    assert_non_null(o.res.item);
    assert_int_equal(item_n(o.res.item), 2);
    eddy_ddb_item_result_cleanup(&o.res);
    /* n is 2 now: the same conditional update fails */
    expect(ddb_item(r, UPDATE, table, key, &inc, "ALL_NEW", &o), EDDY_ECONDITION, &o.w,
           "UpdateItem (stale)");
    eddy_ddb_item_result_cleanup(&o.res);

    struct eddy_ddb_expr gone = {.condition = "n = :want", .values = vals};
    expect(ddb_item(r, DELETE, table, key, &gone, NULL, &o), EDDY_ECONDITION, &o.w,
           "DeleteItem (stale)");
    eddy_ddb_item_result_cleanup(&o.res);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(vals, ":want"), "N", cJSON_CreateString("2"));
    expect(ddb_item(r, DELETE, table, key, &gone, "ALL_OLD", &o), EDDY_OK, &o.w, "DeleteItem");
    assert_non_null(o.res.item);
    assert_int_equal(item_n(o.res.item), 2);
    eddy_ddb_item_result_cleanup(&o.res);
    expect(ddb_item(r, GET, table, key, NULL, NULL, &o), EDDY_OK, &o.w, "GetItem (deleted)");
    assert_null(o.res.item);
    eddy_ddb_item_result_cleanup(&o.res);
    cJSON_Delete(vals);
    cJSON_Delete(key);
}

/* Seven items s/0..s/6 under one partition, written in one batch. */
static void ddb_batch_write_seven(struct itest_rig *r, const char *table, bool del)
{
    cJSON *docs[7];
    struct eddy_ddb_write_req reqs[7];
    for (int i = 0; i < 7; i++) {
        char sk[16];
        snprintf(sk, sizeof sk, "s/%d", i);
        docs[i] = del ? key_of("stream/1", sk) : item_of("stream/1", sk, i);
        reqs[i] = del ? (struct eddy_ddb_write_req){.delete_key = docs[i]}
                      : (struct eddy_ddb_write_req){.put_item = docs[i]};
    }
    struct bwrite_out o;
    expect(ddb_batch_write(r, table, reqs, 7, &o), EDDY_OK, &o.w, "BatchWriteItem");
    assert_null(o.res.unprocessed);
    assert_int_equal(o.res.nunprocessed, 0);
    eddy_ddb_batch_write_result_cleanup(&o.res);
    for (int i = 0; i < 7; i++)
        cJSON_Delete(docs[i]);
}

static void ddb_batch_get(struct itest_rig *r, const char *table)
{
    cJSON *keys[4] = {key_of("stream/1", "s/1"), key_of("stream/1", "s/4"),
                      key_of("stream/1", "s/6"), key_of("stream/1", "missing")};
    struct bget_out o = {0};
    struct eddy_error err = {0};
    if (eddy_ddb_batch_get(&r->ddb, table, (const cJSON *const *)keys, 4, true, on_bget, &o, NULL,
                           &err) != EDDY_OK)
        fail_msg("BatchGetItem: %s", eddy_error_text(&err));
    itest_run(r, &o.w, 30);
    expect(o.w.err, EDDY_OK, &o.w, "BatchGetItem");
    assert_int_equal(cJSON_GetArraySize(o.res.items), 3);
    int sum = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o.res.items)
    {
        sum += item_n(it);
    }
    assert_int_equal(sum, 1 + 4 + 6);
    assert_true(o.res.unprocessed == NULL || cJSON_GetArraySize(o.res.unprocessed) == 0);
    eddy_ddb_batch_get_result_cleanup(&o.res);
    for (int i = 0; i < 4; i++)
        cJSON_Delete(keys[i]);
}

/* Page through the partition 3 items at a time; returns the items seen. */
static int ddb_query_pages(struct itest_rig *r, const char *table, int *pages)
{
    cJSON *vals = itest_json("{\":pk\":{\"S\":\"stream/1\"}}");
    struct eddy_ddb_query_params p = {.table = table,
                                      .key_condition = "#pk = :pk",
                                      .names = itest_json("{\"#pk\":\"_pk\"}"),
                                      .values = vals,
                                      .consistent = true,
                                      .limit = 3};
    cJSON *start = NULL;
    int seen = 0;
    *pages = 0;
    do {
        struct query_out o;
        p.start_key = start;
        expect(ddb_query(r, &p, &o), EDDY_OK, &o.w, "Query");
        (*pages)++;
        assert_true(cJSON_GetArraySize(o.res.items) <= 3);
        const cJSON *it;
        cJSON_ArrayForEach(it, o.res.items)
        {
            assert_int_equal(item_n(it), seen); /* in sort key order */
            seen++;
        }
        cJSON_Delete(start);
        start = o.res.last_key;
        o.res.last_key = NULL;
        eddy_ddb_query_result_cleanup(&o.res);
    } while (start != NULL && *pages < 10);
    cJSON_Delete(start);
    cJSON_Delete((cJSON *)p.names);
    cJSON_Delete(vals);
    return seen;
}

static void test_ddb_items(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char table[96];
    itest_unique_name("itest-items", table, sizeof table);
    itest_create_table(&r, table);
    ddb_conditional_put(&r, table);
    ddb_update_delete(&r, table);
    itest_delete_table(&r, table);
    itest_rig_close(&r);
}

static void test_ddb_batch_query(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char table[96];
    itest_unique_name("itest-query", table, sizeof table);
    itest_create_table(&r, table);
    ddb_batch_write_seven(&r, table, false);
    ddb_batch_get(&r, table);
    int pages = 0;
    assert_int_equal(ddb_query_pages(&r, table, &pages), 7);
    assert_true(pages >= 3); /* 3 + 3 + 1: LastEvaluatedKey carried the pages */
    ddb_batch_write_seven(&r, table, true);
    assert_int_equal(ddb_query_pages(&r, table, &pages), 0);
    itest_delete_table(&r, table);
    itest_rig_close(&r);
}

/* put a (n=1), put b, then a transaction: put c, update a where n = 5 (fails),
 * put d. */
static void ddb_txn_cancel(struct itest_rig *r, const char *table)
{
    cJSON *a = key_of("txn/1", "a");
    cJSON *c = item_of("txn/1", "c", 3);
    cJSON *d = item_of("txn/1", "d", 4);
    cJSON *vals = itest_json("{\":five\":{\"N\":\"5\"},\":one\":{\"N\":\"1\"}}");
    char *d_text = cJSON_PrintUnformatted(d); /* an item as text goes as it is */
    struct eddy_ddb_txn_item items[3] = {
        {EDDY_DDB_PUT, table, c, {.condition = "attribute_not_exists(#pk)"}, NULL, 0},
        {EDDY_DDB_UPDATE,
         table,
         a,
         {.condition = "n = :five", .update = "SET n = n + :one"},
         NULL,
         0},
        {EDDY_DDB_PUT, table, NULL, {0}, d_text, 0},
    };
    cJSON *names = itest_json("{\"#pk\":\"_pk\"}");
    items[0].expr.names = names;
    items[1].expr.values = vals;
    struct txn_out o;
    expect(ddb_txn(r, items, 3, &o), EDDY_ETXN_CANCELED, &o.w, "TransactWriteItems (cancel)");
    assert_string_equal(o.w.code, "TransactionCanceledException");
    assert_int_equal(o.res.n, 3);
    assert_string_equal(o.res.reasons[0].code, "None");
    assert_string_equal(o.res.reasons[1].code, "ConditionalCheckFailed");
    assert_string_equal(o.res.reasons[2].code, "None");
    eddy_ddb_txn_result_cleanup(&o.res);

    struct item_out g; /* nothing of the transaction was applied */
    cJSON *ck = key_of("txn/1", "c");
    expect(ddb_item(r, GET, table, ck, NULL, NULL, &g), EDDY_OK, &g.w, "GetItem c");
    assert_null(g.res.item);
    eddy_ddb_item_result_cleanup(&g.res);
    expect(ddb_item(r, GET, table, a, NULL, NULL, &g), EDDY_OK, &g.w, "GetItem a");
    assert_int_equal(item_n(g.res.item), 1);
    eddy_ddb_item_result_cleanup(&g.res);
    cJSON_Delete(ck);
    cJSON_Delete(names);
    cJSON_Delete(vals);
    cJSON_Delete(d);
    free(d_text);
    cJSON_Delete(c);
    cJSON_Delete(a);
}

static void ddb_txn_ok(struct itest_rig *r, const char *table)
{
    cJSON *a = item_of("txn/1", "a", 1);
    cJSON *bkey = key_of("txn/1", "b");
    cJSON *vals = itest_json("{\":seven\":{\"N\":\"7\"}}");
    cJSON *names = itest_json("{\"#pk\":\"_pk\"}");
    struct eddy_ddb_txn_item items[2] = {
        {EDDY_DDB_PUT,
         table,
         a,
         {.condition = "attribute_not_exists(#pk)", .names = names},
         NULL,
         0},
        {EDDY_DDB_UPDATE, table, bkey, {.update = "SET n = :seven", .values = vals}, NULL, 0},
    };
    struct txn_out o;
    expect(ddb_txn(r, items, 2, &o), EDDY_OK, &o.w, "TransactWriteItems");
    assert_int_equal(o.res.n, 0);
    eddy_ddb_txn_result_cleanup(&o.res);
    struct item_out g;
    expect(ddb_item(r, GET, table, bkey, NULL, NULL, &g), EDDY_OK, &g.w, "GetItem b");
    assert_non_null(g.res.item);
    assert_int_equal(item_n(g.res.item), 7);
    eddy_ddb_item_result_cleanup(&g.res);
    cJSON_Delete(names);
    cJSON_Delete(vals);
    cJSON_Delete(bkey);
    cJSON_Delete(a);
}

static void test_ddb_transact(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char table[96];
    itest_unique_name("itest-txn", table, sizeof table);
    itest_create_table(&r, table);
    ddb_txn_ok(&r, table);
    ddb_txn_cancel(&r, table);
    itest_delete_table(&r, table);
    itest_rig_close(&r);
}

/* ---- EventBridge ---- */

/* A bus whose rule sends source "eddy.itest" to the queue. */
static void create_bus_to_queue(struct itest_rig *r, const char *bus, const char *queue_arn)
{
    char body[1024];
    struct itest_wait w;
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}", bus);
    expect(itest_call(r, &r->eb.client, "CreateEventBus", body, NULL, &w), EDDY_OK, &w,
           "CreateEventBus");
    snprintf(body, sizeof body,
             "{\"Name\":\"%s-rule\",\"EventBusName\":\"%s\","
             "\"EventPattern\":\"{\\\"source\\\":[\\\"eddy.itest\\\"]}\"}",
             bus, bus);
    expect(itest_call(r, &r->eb.client, "PutRule", body, NULL, &w), EDDY_OK, &w, "PutRule");
    snprintf(body, sizeof body,
             "{\"Rule\":\"%s-rule\",\"EventBusName\":\"%s\","
             "\"Targets\":[{\"Id\":\"queue\",\"Arn\":\"%s\"}]}",
             bus, bus, queue_arn);
    expect(itest_call(r, &r->eb.client, "PutTargets", body, NULL, &w), EDDY_OK, &w, "PutTargets");
}

static void delete_bus(struct itest_rig *r, const char *bus)
{
    char body[512];
    struct itest_wait w;
    snprintf(body, sizeof body,
             "{\"Rule\":\"%s-rule\",\"EventBusName\":\"%s\",\"Ids\":[\"queue\"]}", bus, bus);
    expect(itest_call(r, &r->eb.client, "RemoveTargets", body, NULL, &w), EDDY_OK, &w,
           "RemoveTargets");
    snprintf(body, sizeof body, "{\"Name\":\"%s-rule\",\"EventBusName\":\"%s\"}", bus, bus);
    expect(itest_call(r, &r->eb.client, "DeleteRule", body, NULL, &w), EDDY_OK, &w, "DeleteRule");
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}", bus);
    expect(itest_call(r, &r->eb.client, "DeleteEventBus", body, NULL, &w), EDDY_OK, &w,
           "DeleteEventBus");
}

static void eb_put_and_route(struct itest_rig *r, const char *bus, const char *url,
                             const char *marker)
{
    char detail[2][128];
    struct eddy_eb_entry entries[3];
    for (int i = 0; i < 2; i++) {
        snprintf(detail[i], sizeof detail[i], "{\"marker\":\"%s\",\"i\":%d}", marker, i);
        entries[i] = (struct eddy_eb_entry){.source = "eddy.itest",
                                            .detail_type = "ItestEvent",
                                            .detail = detail[i],
                                            .event_bus_name = bus};
    }
    /* a per-entry failure: the detail is not JSON */
    entries[2] = (struct eddy_eb_entry){.source = "eddy.itest",
                                        .detail_type = "ItestEvent",
                                        .detail = "{not json",
                                        .event_bus_name = bus};
    struct put_out o;
    expect(eb_put(r, entries, 3, &o), EDDY_OK, &o.w, "PutEvents");
    assert_int_equal(o.res.n, 3);
    assert_int_equal(o.res.failed_count, 1);
    for (int i = 0; i < 2; i++) {
        assert_non_null(o.res.entries[i].event_id);
        assert_null(o.res.entries[i].error_code);
    }
    assert_null(o.res.entries[2].event_id);
    assert_string_equal(o.res.entries[2].error_code, "MalformedDetail");
    eddy_eb_put_result_cleanup(&o.res);

    struct eddy_sqs_message m[2];
    assert_int_equal(receive_n(r, url, 2, 30, m), 2);
    bool seen[2] = {false, false};
    for (int k = 0; k < 2; k++) {
        cJSON *ev = itest_json(m[k].body);
        assert_string_equal(itest_jstr(ev, "detail-type", (const char *)NULL), "ItestEvent");
        assert_string_equal(itest_jstr(ev, "source", (const char *)NULL), "eddy.itest");
        assert_string_equal(itest_jstr(ev, "detail", "marker", (const char *)NULL), marker);
        int i = cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "detail"), "i")->valueint;
        assert_true(i >= 0 && i < 2 && !seen[i]);
        seen[i] = true;
        cJSON_Delete(ev);
        eddy_sqs_message_cleanup(&m[k]);
    }
}

static void test_eventbridge(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char qname[96], bus[96];
    itest_unique_name("itest-ebq", qname, sizeof qname);
    itest_unique_name("itest-bus", bus, sizeof bus);
    char *url, *arn;
    itest_create_queue(&r, qname, &url, &arn);
    create_bus_to_queue(&r, bus, arn);
    eb_put_and_route(&r, bus, url, bus);
    delete_bus(&r, bus);
    itest_delete_queue(&r, url);
    free(url);
    free(arn);
    itest_rig_close(&r);
}

/* ---- a few calls across the three services (auth and tls variants) ---- */

static void sqs_few(struct itest_rig *r)
{
    char name[96];
    itest_unique_name("itest-few", name, sizeof name);
    char *url, *arn;
    itest_create_queue(r, name, &url, &arn);
    struct eddy_sqs_send_params p = {url, "{\"few\":1}", NULL, 0, NULL, NULL, -1};
    struct send_out s;
    expect(sqs_send(r, &p, &s), EDDY_OK, &s.w, "SendMessage");
    eddy_sqs_send_result_cleanup(&s.res);
    struct eddy_sqs_message m;
    assert_int_equal(receive_n(r, url, 1, 30, &m), 1);
    assert_string_equal(m.body, "{\"few\":1}");
    struct eddy_sqs_batch_entry e = {m.receipt_handle, 0};
    struct batch_out b;
    expect(sqs_batch(r, true, url, &e, 1, &b), EDDY_OK, &b.w, "DeleteMessageBatch");
    assert_int_equal(b.res.nfailed, 0);
    eddy_sqs_batch_result_cleanup(&b.res);
    eddy_sqs_message_cleanup(&m);
    struct attrs_out a;
    expect(sqs_attrs(r, url, &a), EDDY_OK, &a.w, "GetQueueAttributes");
    assert_int_equal(a.res.visibility_timeout_s, 30);
    eddy_sqs_queue_attrs_cleanup(&a.res);
    itest_delete_queue(r, url);
    free(url);
    free(arn);
}

static void ddb_few(struct itest_rig *r)
{
    char table[96];
    itest_unique_name("itest-few", table, sizeof table);
    itest_create_table(r, table);
    cJSON *item = item_of("few/1", "a", 5);
    struct item_out o;
    expect(ddb_item(r, PUT, table, item, NULL, NULL, &o), EDDY_OK, &o.w, "PutItem");
    eddy_ddb_item_result_cleanup(&o.res);
    cJSON *key = key_of("few/1", "a");
    expect(ddb_item(r, GET, table, key, NULL, NULL, &o), EDDY_OK, &o.w, "GetItem");
    assert_non_null(o.res.item);
    assert_int_equal(item_n(o.res.item), 5);
    eddy_ddb_item_result_cleanup(&o.res);
    cJSON_Delete(key);
    cJSON_Delete(item);
    itest_delete_table(r, table);
}

static void eb_few(struct itest_rig *r)
{
    struct eddy_eb_entry e = {.source = "eddy.itest", .detail_type = "Few", .detail = "{}"};
    struct put_out o;
    expect(eb_put(r, &e, 1, &o), EDDY_OK, &o.w, "PutEvents");
    assert_int_equal(o.res.failed_count, 0);
    assert_non_null(o.res.entries[0].event_id);
    eddy_eb_put_result_cleanup(&o.res);
}

static void test_few_calls(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    sqs_few(&r);
    ddb_few(&r);
    eb_few(&r);
    itest_rig_close(&r);
}

/* Environment overrides of the running test, undone by env_restore (also
 * from the teardown, so a failed test does not leave them to the next). */
struct env_save {
    const char *name;
    char *old;
};
static struct env_save saved_env[4];
static size_t nsaved_env;

/* Set (value non-NULL) or unset name until env_restore. */
static void env_set(const char *name, const char *value)
{
    assert_true(nsaved_env < sizeof saved_env / sizeof saved_env[0]);
    struct env_save *s = &saved_env[nsaved_env++];
    s->name = name;
    const char *old = getenv(name);
    s->old = old ? strdup(old) : NULL;
    if (value)
        assert_int_equal(setenv(name, value, 1), 0);
    else
        assert_int_equal(unsetenv(name), 0);
}

static void env_restore(void)
{
    while (nsaved_env > 0) {
        struct env_save *s = &saved_env[--nsaved_env];
        if (s->old)
            setenv(s->name, s->old, 1);
        else
            unsetenv(s->name);
        free(s->old);
    }
}

static int env_teardown(void **state)
{
    (void)state;
    env_restore();
    return 0;
}

/* Refused as want: EDDY_EAUTH is a 403 answer; EDDY_ECONFIG (TLS) means no
 * HTTP answer at all. */
static void refused(const struct itest_wait *w, eddy_err want, const char *what)
{
    expect(w->err, want, w, what);
    assert_int_equal(w->attempts, 1);
    if (want == EDDY_EAUTH && w->status != 403)
        fail_msg("%s: HTTP %ld, want 403", what, w->status);
    if (want != EDDY_EAUTH && w->status != 0)
        fail_msg("%s: HTTP %ld, want no response", what, w->status);
}

/* Every service refuses the rig's calls with want. */
static void all_refused(struct itest_rig *r, eddy_err want, const char *url, const char *table)
{
    struct attrs_out a;
    sqs_attrs(r, url, &a);
    refused(&a.w, want, "GetQueueAttributes");
    eddy_sqs_queue_attrs_cleanup(&a.res);
    struct eddy_sqs_send_params p = {url, "{}", NULL, 0, NULL, NULL, -1};
    struct send_out s;
    sqs_send(r, &p, &s);
    refused(&s.w, want, "SendMessage");
    eddy_sqs_send_result_cleanup(&s.res);
    cJSON *key = key_of("few/1", "a");
    struct item_out o;
    ddb_item(r, GET, table, key, NULL, NULL, &o);
    refused(&o.w, want, "GetItem");
    eddy_ddb_item_result_cleanup(&o.res);
    cJSON_Delete(key);
    struct eddy_eb_entry e = {.source = "eddy.itest", .detail_type = "Few", .detail = "{}"};
    struct put_out p2;
    eb_put(r, &e, 1, &p2);
    refused(&p2.w, want, "PutEvents");
    eddy_eb_put_result_cleanup(&p2.res);
}

/* The key id is right, the secret is not: only the signature is wrong. */
static void test_auth_wrong_secret(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char name[96], table[96];
    itest_unique_name("itest-auth", name, sizeof name);
    itest_unique_name("itest-auth", table, sizeof table);
    char *url, *arn;
    itest_create_queue(&r, name, &url, &arn);
    itest_create_table(&r, table);
    itest_rig_close(&r);

    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    assert_non_null(secret);
    char *wrong = strdup(secret);
    size_t n = strlen(wrong);
    wrong[n - 1] = wrong[n - 1] == 'A' ? 'B' : 'A';
    env_set("AWS_SECRET_ACCESS_KEY", wrong);
    itest_rig_open(&r, 1);
    all_refused(&r, EDDY_EAUTH, url, table);
    itest_rig_close(&r);
    env_restore();
    free(wrong);

    itest_rig_open(&r, 0); /* the right secret still works */
    itest_delete_table(&r, table);
    itest_delete_queue(&r, url);
    itest_rig_close(&r);
    free(url);
    free(arn);
}

/* A role with an admin inline policy, assumed through STS: the temporary
 * key, secret and token, each malloc'd into out[0..2]. */
static void assume_role(struct itest_rig *r, char *out[3])
{
    char role[96], *xml = NULL;
    itest_unique_name("itest-role", role, sizeof role);
    const char *trust = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                        "\"Principal\":{\"AWS\":\"*\"},\"Action\":\"sts:AssumeRole\"}]}";
    const char *admin = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                        "\"Action\":\"*\",\"Resource\":\"*\"}]}";
    long st = itest_query(r, "iam", &xml, "Action", "CreateRole", "Version", "2010-05-08",
                          "RoleName", role, "AssumeRolePolicyDocument", trust, (const char *)NULL);
    if (st != 200)
        fail_msg("CreateRole: HTTP %ld %s", st, xml ? xml : "");
    char *role_arn = itest_xml_text(xml, "Arn");
    assert_non_null(role_arn);
    free(xml);
    st = itest_query(r, "iam", &xml, "Action", "PutRolePolicy", "Version", "2010-05-08", "RoleName",
                     role, "PolicyName", "admin", "PolicyDocument", admin, (const char *)NULL);
    if (st != 200)
        fail_msg("PutRolePolicy: HTTP %ld %s", st, xml ? xml : "");
    free(xml);
    st = itest_query(r, "sts", &xml, "Action", "AssumeRole", "Version", "2011-06-15", "RoleArn",
                     role_arn, "RoleSessionName", "itest", (const char *)NULL);
    if (st != 200)
        fail_msg("AssumeRole: HTTP %ld %s", st, xml ? xml : "");
    static const char *const tags[3] = {"AccessKeyId", "SecretAccessKey", "SessionToken"};
    for (int i = 0; i < 3; i++) {
        out[i] = itest_xml_text(xml, tags[i]);
        assert_non_null(out[i]);
    }
    free(xml);
    free(role_arn);
}

/* SQS and EventBridge with temporary credentials (the session token signed
 * in X-Amz-Security-Token). moto keeps assumed roles per process, and
 * DynamoDB is served by a second process, so DynamoDB is not asked here. */
static void test_auth_session_token(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char *tmp[3];
    assume_role(&r, tmp);
    itest_rig_close(&r);

    env_set("AWS_ACCESS_KEY_ID", tmp[0]);
    env_set("AWS_SECRET_ACCESS_KEY", tmp[1]);
    env_set("AWS_SESSION_TOKEN", tmp[2]);
    itest_rig_open(&r, 1);
    char name[96], *url, *arn;
    itest_unique_name("itest-token", name, sizeof name);
    itest_create_queue(&r, name, &url, &arn);
    struct eddy_sqs_send_params p = {url, "{\"token\":1}", NULL, 0, NULL, NULL, -1};
    struct send_out s;
    expect(sqs_send(&r, &p, &s), EDDY_OK, &s.w, "SendMessage (session token)");
    eddy_sqs_send_result_cleanup(&s.res);
    eb_few(&r);
    itest_rig_close(&r);

    /* the same key with a wrong token is refused */
    size_t n = strlen(tmp[2]);
    tmp[2][n - 1] = tmp[2][n - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(setenv("AWS_SESSION_TOKEN", tmp[2], 1), 0);
    itest_rig_open(&r, 1);
    struct attrs_out a;
    expect(sqs_attrs(&r, url, &a), EDDY_EAUTH, &a.w, "GetQueueAttributes (wrong token)");
    eddy_sqs_queue_attrs_cleanup(&a.res);
    itest_rig_close(&r);
    env_restore();

    itest_rig_open(&r, 0);
    itest_delete_queue(&r, url);
    itest_rig_close(&r);
    for (int i = 0; i < 3; i++)
        free(tmp[i]);
    free(url);
    free(arn);
}

/* Without the run's CA the server's certificate cannot be verified: every
 * call fails (never silently insecure). */
static void test_tls_without_ca(void **state)
{
    (void)state;
    struct itest_rig r;
    itest_rig_open(&r, 0);
    char name[96], table[96];
    itest_unique_name("itest-tls", name, sizeof name);
    itest_unique_name("itest-tls", table, sizeof table);
    char *url, *arn;
    itest_create_queue(&r, name, &url, &arn);
    itest_create_table(&r, table);
    itest_rig_close(&r);

    env_set("AWS_CA_BUNDLE", NULL);
    itest_rig_open(&r, 1);
    all_refused(&r, EDDY_ECONFIG, url, table);
    itest_rig_close(&r);
    env_restore();

    itest_rig_open(&r, 0);
    itest_delete_table(&r, table);
    itest_delete_queue(&r, url);
    itest_rig_close(&r);
    free(url);
    free(arn);
}

int main(int argc, char **argv)
{
    const char *variant = argc > 1 ? argv[1] : "plain";
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_sqs),
        cmocka_unit_test(test_ddb_items),
        cmocka_unit_test(test_ddb_batch_query),
        cmocka_unit_test(test_ddb_transact),
        cmocka_unit_test(test_eventbridge),
    };
    const struct CMUnitTest auth[] = {
        cmocka_unit_test(test_few_calls),
        cmocka_unit_test_teardown(test_auth_wrong_secret, env_teardown),
        cmocka_unit_test_teardown(test_auth_session_token, env_teardown),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_few_calls),
        cmocka_unit_test_teardown(test_tls_without_ca, env_teardown),
    };
    if (strcmp(variant, "plain") == 0)
        return cmocka_run_group_tests_name("itest_clients (plain)", plain, NULL, NULL);
    if (strcmp(variant, "auth") == 0)
        return cmocka_run_group_tests_name("itest_clients (auth)", auth, NULL, NULL);
    if (strcmp(variant, "tls") == 0)
        return cmocka_run_group_tests_name("itest_clients (tls)", tls, NULL, NULL);
    fprintf(stderr, "itest_clients: unknown variant %s (plain, auth, tls)\n", variant);
    return 2;
}
