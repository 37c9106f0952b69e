/*
 * Unit tests for core/processor: what goes into TransactWriteItems, how
 * cancellations are classified, grouping, splitting and limits. DynamoDB is
 * the fake transport replaying canned replies; the machine is the counter
 * of counter_machine.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "core/processor.h"
#include "core/record.h"
#include "rig.h"
#include "svc/dynamodb.h"

extern const struct eddy_machine eddy_test_counter;

struct prig {
    struct rig rig;
    struct eddy_ddb ddb;
    struct eddy_processor *p;
    uint32_t outbox_calls;
    long expect, expect_sent; /* outbox rows of the commits in flight, announced in all */
    int called;
};

/* The commit's outbox rows, announced when it goes (+n) and is back (-n). */
static void on_outbox_expect(long n, void *ud)
{
    struct prig *r = ud;
    r->expect += n;
    r->expect_sent += n > 0 ? n : 0;
    assert_true(r->expect >= 0);
}

/* The committed outbox row, handed over as written (publish on commit). */
static void on_outbox(struct eddy_record_text *row, void *ud)
{
    struct prig *r = ud;
    cJSON *item = cJSON_ParseWithLength(row->json, row->len);
    assert_non_null(item);
    struct eddy_record_outbox o;
    struct eddy_error err;
    assert_int_equal(eddy_record_parse_outbox(item, &o, &err), EDDY_OK);
    assert_non_null(strstr(o.pk, "#outbox/"));
    assert_non_null(row->outbox); /* the same fields, for the publisher */
    assert_string_equal(row->outbox->sk, o.sk);
    assert_string_equal(row->outbox->detail, o.detail);
    cJSON_Delete(item);
    r->outbox_calls++;
}

/* A processor of groups up to group_max items (0: 100), commits_max
 * transactions out (0: 4), leaving while another is out at group_fill items
 * (0: 3/4 of a group) or half of feed_max events (0: no such limit). */
static void prig_init_full(struct prig *r, size_t group_max, size_t commits_max,
                           enum eddy_reject_policy on_reject, size_t group_fill, size_t feed_max)
{
    memset(r, 0, sizeof *r);
    rig_open(&r->rig,
             &(struct rig_opts){
                 .max_attempts = 1, .seed = 1, .service = "dynamodb", .clock = RIG_CLOCK_FAKE});
    struct eddy_error err = {0};
    assert_int_equal(eddy_ddb_init(&r->ddb, &r->rig.aws, &r->rig.ep, &err), EDDY_OK);
    struct eddy_processor_config pc = {.table = "T",
                                       .machine = &eddy_test_counter,
                                       .dedupe_ttl_s = 100,
                                       .occ_retries = 3,
                                       .outbox_shards = 4,
                                       .cache_entities = 100,
                                       .group_max_items = group_max,
                                       .commits_max = commits_max,
                                       .group_fill = group_fill,
                                       .feed_max = feed_max,
                                       .on_reject = on_reject,
                                       .on_outbox = on_outbox,
                                       .on_outbox_ud = r,
                                       .on_outbox_expect = on_outbox_expect,
                                       .backoff_base_ms = 1,
                                       .backoff_max_ms = 2};
    r->p = eddy_processor_new(&r->rig.loop, &r->ddb, &pc, &r->rig.fake_clock.clock, 7, &err);
    assert_non_null(r->p);
}

static void prig_init_policy(struct prig *r, size_t group_max, size_t commits_max,
                             enum eddy_reject_policy on_reject)
{
    prig_init_full(r, group_max, commits_max, on_reject, 0, 0);
}

static void prig_init_commits(struct prig *r, size_t group_max, size_t commits_max)
{
    prig_init_policy(r, group_max, commits_max, EDDY_REJECT_RECORD);
}

static void prig_init(struct prig *r, size_t group_max)
{
    prig_init_commits(r, group_max, 0);
}

static void closed(void *ud)
{
    *(int *)ud = 1;
}

static void prig_close(struct prig *r)
{
    int done = 0;
    eddy_processor_close(r->p, closed, &done);
    uv_run(&r->rig.loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 1);
    eddy_ddb_cleanup(&r->ddb);
    rig_close(&r->rig);
}

/* A batch with its storage. */
struct tb {
    struct eddy_proc_batch b;
    struct eddy_proc_event ev[100];
    char ids[100][16];
    cJSON *data[100];
    eddy_err err;
    int calls;
    struct prig *r;
};

static void batch_cb(struct eddy_proc_batch *b, eddy_err err, void *ud)
{
    struct tb *t = ud;
    (void)b;
    t->err = err;
    t->calls++;
    t->r->called++;
}

static void tb_init(struct tb *t, struct prig *r, const char *entity, size_t n, const char *type)
{
    memset(t, 0, sizeof *t);
    t->r = r;
    t->b.entity_id = entity;
    t->b.events = t->ev;
    t->b.nevents = n;
    t->b.cb = batch_cb;
    t->b.ud = t;
    for (size_t i = 0; i < n; i++) {
        snprintf(t->ids[i], sizeof t->ids[i], "%s-%zu", entity, i);
        t->ev[i].type = type;
        t->ev[i].event_id = t->ids[i];
    }
}

static void tb_cleanup(struct tb *t)
{
    for (size_t i = 0; i < 100; i++)
        cJSON_Delete(t->data[i]);
}

static void push_empty_load(struct prig *r)
{
    eddy_fake_push_json(r->rig.fake, 200, "{\"Responses\":{\"T\":[]},\"UnprocessedKeys\":{}}");
}

/* n transactions (or other calls) that succeed with an empty reply */
static void push_ok(struct prig *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        eddy_fake_push_json(r->rig.fake, 200, "{}");
}

/* The first event of each of t[0..n) was committed at seq. */
static void assert_committed(const struct tb *t, size_t n, int seq)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].err, EDDY_OK);
        assert_int_equal(t[i].ev[0].seq, seq);
    }
}

static void push_load(struct prig *r, const char *pk, int seq, const char *count_av)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"Responses\":{\"T\":[{\"_pk\":{\"S\":\"%s\"},\"_sk\":{\"S\":\"STATE\"},"
             "\"_seq\":{\"N\":\"%d\"},\"id\":{\"S\":\"%s\"},\"count\":%s}]},"
             "\"UnprocessedKeys\":{}}",
             pk, seq, strchr(pk, '/') + 1, count_av);
    eddy_fake_push_json(r->rig.fake, 200, body);
}

/* A TransactionCanceledException with codes[i] for item i ("None" when NULL)
 * and, where items[i] is not NULL, that item as it is now (ALL_OLD). */
static void push_cancel_items(struct prig *r, size_t n, const char *const *codes,
                              const char *const *items)
{
    char body[16384];
    assert_true(n <= 100);
    size_t len = (size_t)sprintf(body, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                                       "TransactionCanceledException\",\"message\":\"x\","
                                       "\"CancellationReasons\":[");
    for (size_t i = 0; i < n; i++) {
        const char *item = items ? items[i] : NULL;
        assert_true(len + 64 + (item ? strlen(item) : 0) < sizeof body);
        len += (size_t)sprintf(body + len, "%s{\"Code\":\"%s\"", i ? "," : "",
                               codes[i] ? codes[i] : "None");
        if (item)
            len += (size_t)sprintf(body + len, ",\"Item\":%s", item);
        len += (size_t)sprintf(body + len, "}");
    }
    sprintf(body + len, "]}");
    eddy_fake_push_json(r->rig.fake, 400, body);
}

static void push_cancel(struct prig *r, size_t n, const char *const *codes)
{
    push_cancel_items(r, n, codes, NULL);
}

/* The cancellation of a one-event step (inbound, dedupe, outbound, outbox,
 * then the state) whose state condition failed, returning state_item. */
static void push_state_conflict(struct prig *r, const char *state_item)
{
    const char *codes[5] = {NULL, NULL, NULL, NULL, "ConditionalCheckFailed"};
    const char *items[5] = {NULL, NULL, NULL, NULL, state_item};
    push_cancel_items(r, 5, codes, items);
}

static cJSON *req_body(struct prig *r, size_t i)
{
    const struct eddy_fake_request *q = eddy_fake_request_at(r->rig.fake, i);
    assert_non_null(q);
    cJSON *j = cJSON_Parse(q->body);
    assert_non_null(j);
    return j;
}

static const char *req_op(struct prig *r, size_t i)
{
    const char *t = eddy_fake_request_header(eddy_fake_request_at(r->rig.fake, i), "X-Amz-Target");
    assert_non_null(t);
    return strchr(t, '.') + 1;
}

static const cJSON *txn_items(const cJSON *body)
{
    return cJSON_GetObjectItemCaseSensitive(body, "TransactItems");
}

static const char *put_attr(const cJSON *ti, const char *name, const char *type)
{
    const cJSON *put = cJSON_GetObjectItemCaseSensitive(ti, "Put");
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(put, "Item");
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(item, name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(av, type);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *put_cond(const cJSON *ti)
{
    const cJSON *put = cJSON_GetObjectItemCaseSensitive(ti, "Put");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(put, "ConditionExpression");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* The item of txn body whose _sk starts with prefix (nth match). */
static const cJSON *find_sk(const cJSON *body, const char *prefix, int nth)
{
    const cJSON *ti;
    cJSON_ArrayForEach(ti, txn_items(body))
    {
        const char *sk = put_attr(ti, "_sk", "S");
        if (sk && strncmp(sk, prefix, strlen(prefix)) == 0 && nth-- == 0)
            return ti;
    }
    return NULL;
}

static int count_sk(const cJSON *body, const char *prefix)
{
    int n = 0;
    while (find_sk(body, prefix, n))
        n++;
    return n;
}

static void run(struct prig *r)
{
    uv_run(&r->rig.loop, UV_RUN_DEFAULT);
}

/* The setup most tests share: a processor of default groups and one batch
 * of n events of type for entity e1. */
static void one_entity(struct prig *r, struct tb *t, size_t n, const char *type)
{
    prig_init(r, 0);
    tb_init(t, r, "e1", n, type);
}

/* A processor of default groups and one Increment for each of a, b and c. */
static void three_entities(struct prig *r, struct tb *a, struct tb *b, struct tb *c)
{
    prig_init(r, 0);
    tb_init(a, r, "a", 1, "Increment");
    tb_init(b, r, "b", 1, "Increment");
    tb_init(c, r, "c", 1, "Increment");
}

/* Submit a, b and c in one loop turn (one group) and run until answered. */
static void submit_run_three(struct prig *r, struct tb *a, struct tb *b, struct tb *c)
{
    struct tb *all[3] = {a, b, c};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(eddy_processor_submit(r->p, &all[i]->b), EDDY_OK);
    run(r);
}

/* Submit t and run the loop until everything is answered. */
static void submit_run(struct prig *r, struct tb *t)
{
    assert_int_equal(eddy_processor_submit(r->p, &t->b), EDDY_OK);
    run(r);
}

static void test_commit_shape(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    assert_int_equal(eddy_processor_submit(r.p, &t.b), EDDY_OK);
    assert_int_equal(t.calls, 0); /* never inside submit */
    run(&r);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[0].seq, 1);
    assert_int_equal(t.ev[0].idx, 0);
    assert_int_equal(eddy_fake_count(r.rig.fake), 2);
    assert_string_equal(req_op(&r, 0), "BatchGetItem");
    cJSON *load = req_body(&r, 0);
    cJSON *tk = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(load, "RequestItems"), "T");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "ConsistentRead")));
    cJSON_Delete(load);
    assert_string_equal(req_op(&r, 1), "TransactWriteItems");
    cJSON *body = req_body(&r, 1);
    assert_int_equal(cJSON_GetArraySize(txn_items(body)), 5);
    const cJSON *st = find_sk(body, "STATE", 0);
    assert_non_null(st);
    assert_string_equal(put_cond(st), "attribute_not_exists(#pk) OR #seq = :prev");
    assert_string_equal(put_attr(st, "_seq", "N"), "1");
    assert_string_equal(put_attr(st, "count", "N"), "1");
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(st, "Put"), "ExpressionAttributeValues");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(vals, ":prev"), "N")
            ->valuestring,
        "0");
    const cJSON *in = find_sk(body, "INBOUND/1/0/Increment", 0);
    assert_non_null(in);
    assert_string_equal(put_cond(in), "attribute_not_exists(#pk)");
    assert_string_equal(put_attr(in, "_eid", "S"), "e1-0");
    const cJSON *dd = find_sk(body, "EVENT/e1-0", 0);
    assert_non_null(dd);
    assert_string_equal(put_cond(dd), "attribute_not_exists(#pk)");
    assert_string_equal(put_attr(dd, "_ttl", "N"), "1700000100");
    assert_non_null(find_sk(body, "OUTBOUND/1/0/Counted", 0));
    const cJSON *ob = find_sk(body, "counter/e1/", 0);
    assert_non_null(ob);
    assert_string_equal(put_attr(ob, "_id", "S"), "e1");
    assert_non_null(strstr(put_attr(ob, "_pk", "S"), "#outbox/"));
    cJSON_Delete(body);
    assert_int_equal(r.outbox_calls, 1);
    assert_int_equal(r.expect_sent, 1);
    assert_int_equal(r.expect, 0);
    /* the next batch of the entity comes from the cache */
    struct tb t2;
    tb_init(&t2, &r, "e1", 1, "Increment");
    snprintf(t2.ids[0], sizeof t2.ids[0], "again");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    assert_int_equal(eddy_processor_submit(r.p, &t2.b), EDDY_OK);
    run(&r);
    assert_int_equal(t2.ev[0].seq, 2);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    struct eddy_processor_stats s;
    eddy_processor_stats(r.p, &s);
    assert_int_equal(s.cache_hits, 1);
    assert_int_equal(s.transactions, 2);
    prig_close(&r);
}

static void test_coalesced_ten(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 10, "Increment");
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(r.rig.fake), 2);
    cJSON *body = req_body(&r, 1);
    assert_int_equal(count_sk(body, "INBOUND/1/"), 10);
    assert_int_equal(count_sk(body, "STATE"), 1);
    for (int i = 0; i < 10; i++) {
        char sk[64];
        snprintf(sk, sizeof sk, "INBOUND/1/%d/Increment", i);
        assert_non_null(find_sk(body, sk, 0));
        assert_int_equal(t.ev[i].result, EDDY_EV_APPLIED);
        assert_int_equal(t.ev[i].seq, 1);
        assert_int_equal(t.ev[i].idx, i);
    }
    assert_string_equal(put_attr(find_sk(body, "STATE", 0), "count", "N"), "10");
    cJSON_Delete(body);
    prig_close(&r);
}

static const char *prev_of(struct prig *r, size_t i)
{
    static char out[32];
    cJSON *body = req_body(r, i);
    const cJSON *put = cJSON_GetObjectItemCaseSensitive(find_sk(body, "STATE", 0), "Put");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(put, "ExpressionAttributeValues"), ":prev");
    snprintf(out, sizeof out, "%s", cJSON_GetObjectItemCaseSensitive(v, "N")->valuestring);
    cJSON_Delete(body);
    return out;
}

static void test_conflict_reloads(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_load(&r, "counter/e1", 5, "{\"N\":\"5\"}");
    const char *codes[5] = {NULL, NULL, NULL, NULL, "ConditionalCheckFailed"}; /* state is last */
    push_cancel(&r, 5, codes);
    push_load(&r, "counter/e1", 6, "{\"N\":\"6\"}");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    assert_string_equal(req_op(&r, 2), "BatchGetItem");
    assert_string_equal(prev_of(&r, 1), "5");
    assert_string_equal(prev_of(&r, 3), "6");
    assert_int_equal(t.ev[0].seq, 7);
    cJSON *body = req_body(&r, 3);
    assert_string_equal(put_attr(find_sk(body, "STATE", 0), "count", "N"), "7");
    cJSON_Delete(body);
    struct eddy_processor_stats s;
    eddy_processor_stats(r.p, &s);
    assert_int_equal(s.conflicts, 1);
    assert_int_equal(t.b.conflicts, 1); /* the batch tells the worker (contention) */
    assert_int_equal(r.expect_sent, 2); /* the commit canceled, then the one that went */
    assert_int_equal(r.expect, 0);
    prig_close(&r);
}

static void test_conflict_gives_up(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    const char *codes[5] = {NULL, NULL, NULL, NULL, "ConditionalCheckFailed"};
    for (int i = 0; i < 4; i++) { /* occ_retries 3: four attempts */
        push_load(&r, "counter/e1", i, "{\"N\":\"0\"}");
        push_cancel(&r, 5, codes);
    }
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_ECONFLICT);
    assert_int_equal(t.ev[0].result, EDDY_EV_ERROR);
    assert_non_null(strstr(t.b.error.detail, "EDDY_OCC_RETRIES"));
    assert_int_equal(t.b.conflicts, 4);
    assert_int_equal(eddy_fake_count(r.rig.fake), 8);
    prig_close(&r);
}

/* Giving up after conflicts that each returned the state (ALL_OLD): the
 * last one returned is cached, and the entity's next batch commits on it
 * without a read. */
static void test_conflict_gives_up_keeps_returned_state(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_load(&r, "counter/e1", 5, "{\"N\":\"5\"}");
    for (int i = 0; i < 4; i++) { /* occ_retries 3: four attempts */
        char item[256];
        snprintf(item, sizeof item,
                 "{\"_pk\":{\"S\":\"counter/e1\"},\"_sk\":{\"S\":\"STATE\"},"
                 "\"_seq\":{\"N\":\"%d\"},\"id\":{\"S\":\"e1\"},\"count\":{\"N\":\"40\"}}",
                 8 + i);
        push_state_conflict(&r, item);
    }
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_ECONFLICT);
    struct tb t2;
    tb_init(&t2, &r, "e1", 1, "Increment");
    snprintf(t2.ids[0], sizeof t2.ids[0], "second");
    push_ok(&r, 1);
    submit_run(&r, &t2);
    assert_int_equal(t2.ev[0].result, EDDY_EV_APPLIED);
    assert_int_equal(t2.ev[0].seq, 12);  /* after the 11 the last cancellation returned */
    assert_int_equal(t2.b.conflicts, 0); /* counted afresh for each batch */
    assert_int_equal(eddy_fake_count(r.rig.fake), 6); /* a load, 4 canceled, 1 commit */
    assert_string_equal(req_op(&r, 5), "TransactWriteItems");
    prig_close(&r);
}

/* A conflict that returns the state item as it is now (ALL_OLD): after its
 * backoff the entity is processed again on it, without reading it again. */
static void test_conflict_takes_returned_state(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_load(&r, "counter/e1", 5, "{\"N\":\"5\"}");
    push_state_conflict(&r, "{\"_pk\":{\"S\":\"counter/e1\"},\"_sk\":{\"S\":\"STATE\"},"
                            "\"_seq\":{\"N\":\"8\"},\"id\":{\"S\":\"e1\"},"
                            "\"count\":{\"N\":\"40\"}}");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3); /* no BatchGetItem after the conflict */
    assert_string_equal(req_op(&r, 2), "TransactWriteItems");
    cJSON *body = req_body(&r, 1);
    const cJSON *put = cJSON_GetObjectItemCaseSensitive(find_sk(body, "STATE", 0), "Put");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(put, "ReturnValuesOnConditionCheckFailure");
    assert_true(cJSON_IsString(rv) && strcmp(rv->valuestring, "ALL_OLD") == 0);
    cJSON_Delete(body);
    assert_string_equal(prev_of(&r, 2), "8");
    assert_int_equal(t.ev[0].seq, 9);
    body = req_body(&r, 2);
    assert_string_equal(put_attr(find_sk(body, "STATE", 0), "count", "N"), "41");
    cJSON_Delete(body);
    struct eddy_processor_stats s;
    eddy_processor_stats(r.p, &s);
    assert_int_equal(s.conflicts, 1);
    assert_int_equal(s.retries, 1); /* a backoff, but no read */
    assert_int_equal(s.loads, 1);
    prig_close(&r);
}

/* A returned state item that does not load fails its batch as a load does. */
static void test_conflict_returned_state_unreadable(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_empty_load(&r);
    push_state_conflict(&r, "{\"_pk\":{\"S\":\"counter/e1\"},\"_sk\":{\"S\":\"STATE\"},"
                            "\"_seq\":{\"S\":\"x\"}}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_EPARSE);
    assert_int_equal(t.ev[0].result, EDDY_EV_ERROR);
    assert_non_null(strstr(t.b.error.detail, "state item of counter/e1"));
    assert_int_equal(eddy_fake_count(r.rig.fake), 2);
    prig_close(&r);
}

static void test_duplicate_marker(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 3, "Increment");
    push_empty_load(&r);
    /* items: per event inbound, dedupe, outbound, outbox; then the state */
    const char *codes[13] = {NULL};
    codes[5] = "ConditionalCheckFailed"; /* the dedupe marker of event 1 */
    push_cancel(&r, 13, codes);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3); /* no reload: the state did not move */
    cJSON *first = req_body(&r, 1);
    assert_string_equal(put_attr(cJSON_GetArrayItem(txn_items(first), 5), "_sk", "S"),
                        "EVENT/e1-1");
    cJSON_Delete(first);
    assert_int_equal(t.ev[1].result, EDDY_EV_DUPLICATE);
    assert_int_equal(t.ev[0].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[2].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[0].idx, 0);
    assert_int_equal(t.ev[2].idx, 1);
    assert_int_equal(t.ev[2].seq, 1);
    cJSON *body = req_body(&r, 2);
    assert_int_equal(count_sk(body, "INBOUND/1/"), 2);
    assert_non_null(find_sk(body, "EVENT/e1-2", 0));
    assert_null(find_sk(body, "EVENT/e1-1", 0));
    assert_string_equal(put_attr(find_sk(body, "STATE", 0), "count", "N"), "2");
    cJSON_Delete(body);
    prig_close(&r);
}

/* A copy of an event id in one batch: a duplicate only once the first copy is
 * written; a poison first copy leaves the valid one to be applied. */
static void test_repeat_after_poison(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 4, "Increment");
    t.ev[1].event_id = "X-1"; /* a reserved field name: fails when its record is built */
    t.data[1] = cJSON_Parse("{\"_pk\":\"oops\"}");
    t.ev[1].data = t.data[1];
    t.ev[2].event_id = "X-1"; /* the valid copy */
    t.ev[3].event_id = "Y-1"; /* a machine failure, then a valid copy */
    t.ev[3].type = "Fail";
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[1].result, EDDY_EV_FAILED);
    assert_non_null(strstr(t.ev[1].reason, "_pk"));
    assert_int_equal(t.ev[2].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[2].idx, 1);
    assert_int_equal(t.ev[3].result, EDDY_EV_FAILED);
    cJSON *body = req_body(&r, 1);
    assert_non_null(find_sk(body, "EVENT/X-1", 0));
    assert_string_equal(put_attr(find_sk(body, "STATE", 0), "count", "N"), "2");
    cJSON_Delete(body);
    tb_cleanup(&t);

    /* Y-1 failed in the machine; its valid copy is applied on its own */
    tb_init(&t, &r, "e2", 2, "Fail");
    t.ev[0].event_id = t.ev[1].event_id = "Y-1";
    t.ev[1].type = "Increment";
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.ev[0].result, EDDY_EV_FAILED);
    assert_int_equal(t.ev[1].result, EDDY_EV_APPLIED);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    prig_close(&r);
}

/* Two valid copies: the second waits for the first's commit, then is a
 * duplicate; copies of an event found applied before are duplicates too. */
static void test_repeat_waits_for_first(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 3, "Increment");
    t.ev[1].event_id = t.ev[0].event_id;
    push_empty_load(&r);
    push_ok(&r, 2);
    submit_run(&r, &t);
    assert_int_equal(t.ev[0].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[1].result, EDDY_EV_DUPLICATE);
    assert_int_equal(t.ev[2].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[2].seq, 2); /* the step ended before the copy */
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    cJSON *body = req_body(&r, 1);
    assert_int_equal(count_sk(body, "EVENT/"), 1);
    cJSON_Delete(body);

    /* the first copy's dedupe marker exists: both copies are duplicates */
    tb_init(&t, &r, "e2", 2, "Increment");
    t.ev[1].event_id = t.ev[0].event_id;
    push_empty_load(&r);
    const char *codes[5] = {NULL, "ConditionalCheckFailed", NULL, NULL, NULL};
    push_cancel(&r, 5, codes);
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].result, EDDY_EV_DUPLICATE);
    assert_int_equal(t.ev[1].result, EDDY_EV_DUPLICATE);
    assert_int_equal(eddy_fake_count(r.rig.fake), 5);
    prig_close(&r);
}

static int count_pk(const cJSON *body, const char *pk)
{
    int n = 0;
    const cJSON *ti;
    cJSON_ArrayForEach(ti, txn_items(body))
    {
        const char *v = put_attr(ti, "_pk", "S");
        n += v && strcmp(v, pk) == 0;
    }
    return n;
}

static void test_group_three(void **state)
{
    (void)state;
    struct prig r;
    struct tb a, b, c;
    three_entities(&r, &a, &b, &c);
    push_empty_load(&r);
    const char *codes[15] = {NULL};
    codes[9] = "ConditionalCheckFailed"; /* b's state: items 5..9 */
    push_cancel(&r, 15, codes);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    push_load(&r, "counter/b", 3, "{\"N\":\"3\"}");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run_three(&r, &a, &b, &c);
    assert_int_equal(r.called, 3);
    assert_int_equal(eddy_fake_count(r.rig.fake), 5);
    cJSON *load = req_body(&r, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(
                             cJSON_GetObjectItemCaseSensitive(load, "RequestItems"), "T"),
                         "Keys")),
                     3);
    cJSON_Delete(load);
    cJSON *g = req_body(&r, 1);
    /* inbound, dedupe, outbound history and state of each; the outbox elsewhere */
    assert_int_equal(count_pk(g, "counter/a"), 4);
    assert_int_equal(count_pk(g, "counter/b"), 4);
    assert_int_equal(count_pk(g, "counter/c"), 4);
    assert_int_equal(cJSON_GetArraySize(txn_items(g)), 15);
    assert_string_equal(put_attr(cJSON_GetArrayItem(txn_items(g), 9), "_pk", "S"), "counter/b");
    cJSON_Delete(g);
    /* a and c are committed again at once, without b */
    assert_string_equal(req_op(&r, 2), "TransactWriteItems");
    cJSON *again = req_body(&r, 2);
    assert_int_equal(count_pk(again, "counter/a"), 4);
    assert_int_equal(count_pk(again, "counter/c"), 4);
    assert_int_equal(count_pk(again, "counter/b"), 0);
    cJSON_Delete(again);
    assert_string_equal(req_op(&r, 3), "BatchGetItem");
    assert_int_equal(a.ev[0].seq, 1);
    assert_int_equal(c.ev[0].seq, 1);
    assert_int_equal(b.ev[0].seq, 4);
    prig_close(&r);
}

/* Watches the transport every millisecond until all six are answered. libuv runs due
 * timers in the order of their timeouts, so however late the loop runs, a tick falls
 * between the first transaction's start and its held reply: the test does not depend on
 * how fast the machine is. */
struct commits_probe {
    uv_timer_t timer;
    struct prig *r;
    size_t max_inflight;
    bool saw_first_alone; /* a tick saw the load and the first transaction, nothing more */
};

static void probe_cb(uv_timer_t *t)
{
    struct commits_probe *pr = (struct commits_probe *)t;
    size_t requests = eddy_fake_count(pr->r->rig.fake);
    size_t inflight = eddy_fake_inflight(pr->r->rig.fake);
    if (inflight > pr->max_inflight)
        pr->max_inflight = inflight;
    if (requests == 2 && inflight == 1)
        pr->saw_first_alone = true;
    if (pr->r->called == 6)
        uv_close((uv_handle_t *)t, NULL);
}

static void test_commits_max_holds_groups_back(void **state)
{
    (void)state;
    struct prig r;
    prig_init_commits(&r, 10, 1); /* two entities (5 items each) per transaction, one out */
    struct tb t[6];
    const char *ids[6] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < 6; i++)
        tb_init(&t[i], &r, ids[i], 1, "Increment");
    push_empty_load(&r);
    struct eddy_fake_reply held = {.status = 200, .body = "{}", .delay_ms = 50};
    eddy_fake_push(r.rig.fake, &held);
    push_ok(&r, 2);
    for (int i = 0; i < 6; i++)
        assert_int_equal(eddy_processor_submit(r.p, &t[i].b), EDDY_OK);
    struct commits_probe pr = {.r = &r};
    uv_timer_init(&r.rig.loop, &pr.timer);
    uv_timer_start(&pr.timer, probe_cb, 1, 1);
    run(&r);
    /* while the first group was out, the other two waited */
    assert_true(pr.saw_first_alone);
    assert_int_equal(pr.max_inflight, 1);
    assert_int_equal(r.called, 6);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    for (size_t i = 1; i < 4; i++) {
        cJSON *body = req_body(&r, i);
        assert_int_equal(cJSON_GetArraySize(txn_items(body)), 10);
        cJSON_Delete(body);
    }
    assert_committed(t, 6, 1);
    prig_close(&r);
}

static void test_split_over_100_items(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 0);
    struct tb t;
    tb_init(&t, &r, "e1", 60, "Increment"); /* 4 items each: 24 per transaction */
    push_empty_load(&r);
    push_ok(&r, 3);
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    for (int i = 1; i < 4; i++) {
        cJSON *body = req_body(&r, (size_t)i);
        assert_true(cJSON_GetArraySize(txn_items(body)) <= 100);
        cJSON_Delete(body);
    }
    assert_int_equal(t.ev[0].seq, 1);
    assert_int_equal(t.ev[23].seq, 1);
    assert_int_equal(t.ev[24].seq, 2);
    assert_int_equal(t.ev[24].idx, 0);
    assert_int_equal(t.ev[59].seq, 3);
    assert_int_equal(t.ev[59].idx, 11);
    prig_close(&r);
}

/* Data {"blob": n bytes of \x01}: n bytes to DynamoDB, 6n of JSON text ("\u0001"). */
static cJSON *escaped_blob(size_t n)
{
    char *blob = eddy_malloc(n + 1);
    memset(blob, 1, n);
    blob[n] = '\0';
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "blob", blob);
    free(blob);
    return data;
}

/* Every request sent was a transaction under the client's 4 MB of text. */
static void assert_bodies_fit(struct prig *r)
{
    for (size_t i = 1; i < eddy_fake_count(r->rig.fake); i++)
        assert_true(eddy_fake_request_at(r->rig.fake, i)->body_len <= EDDY_DDB_MAX_TRANSACT_BYTES);
}

/* Three events whose records are 300 KB each to DynamoDB but 1.8 MB each as
 * text: the step holds two, the third goes in the next one. */
static void test_split_over_4mb_of_text(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 3, "Increment");
    for (int i = 0; i < 3; i++)
        t.ev[i].data = t.data[i] = escaped_blob(300 * 1000);
    push_empty_load(&r);
    push_ok(&r, 2);
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    assert_bodies_fit(&r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(t.ev[i].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[1].seq, 1);
    assert_int_equal(t.ev[2].seq, 2);
    tb_cleanup(&t);
    prig_close(&r);
}

/* Entities whose steps fit alone but not together as text go in separate
 * transactions. */
static void test_group_split_by_text(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 0);
    struct tb t[3];
    const char *ids[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        tb_init(&t[i], &r, ids[i], 1, "Increment");
        t[i].ev[0].data = t[i].data[0] = escaped_blob(250 * 1000);
    }
    push_empty_load(&r);
    push_ok(&r, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(eddy_processor_submit(r.p, &t[i].b), EDDY_OK);
    run(&r);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    assert_bodies_fit(&r);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i].err, EDDY_OK);
        assert_int_equal(t[i].ev[0].result, EDDY_EV_APPLIED);
        tb_cleanup(&t[i]);
    }
    prig_close(&r);
}

/* One Increment of each of n entities (ids[i]) in one group, committed, so
 * that their states are in the cache: later batches need no load. t[i] is
 * then set up for the next Increment of ids[i] (a new event id). */
static void warm_up(struct prig *r, struct tb *t, const char *const *ids, size_t n)
{
    push_empty_load(r);
    eddy_fake_push_json(r->rig.fake, 200, "{}");
    for (size_t i = 0; i < n; i++) {
        tb_init(&t[i], r, ids[i], 1, "Increment");
        assert_int_equal(eddy_processor_submit(r->p, &t[i].b), EDDY_OK);
    }
    run(r);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].err, EDDY_OK);
        tb_init(&t[i], r, ids[i], 1, "Increment");
        snprintf(t[i].ids[0], sizeof t[i].ids[0], "%s-next", ids[i]);
    }
    assert_int_equal(eddy_fake_count(r->rig.fake), 2);
    r->called = 0;
}

/* Submit t and run the loop until it waits: a transaction sent finds no
 * reply queued and waits for one (keeping no handle active). */
static void submit_until_waiting(struct prig *r, struct tb *t)
{
    assert_int_equal(eddy_processor_submit(r->p, &t->b), EDDY_OK);
    run(r);
}

/* The items of request i, a TransactWriteItems. */
static int txn_size(struct prig *r, size_t i)
{
    assert_string_equal(req_op(r, i), "TransactWriteItems");
    cJSON *body = req_body(r, i);
    int n = cJSON_GetArraySize(txn_items(body));
    cJSON_Delete(body);
    return n;
}

/*
 * Group commit without a timer: while a's transaction is out, b and then c
 * become ready in two later loop turns. Neither leaves on its own: a small
 * group waits for the transaction out, and both go together when it is back:
 * two transactions for the three, not three.
 */
static void test_small_group_waits_for_the_one_out(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 0);
    struct tb t[3];
    const char *ids[3] = {"a", "b", "c"};
    warm_up(&r, t, ids, 3);
    submit_until_waiting(&r, &t[0]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    assert_int_equal(eddy_fake_inflight(r.rig.fake), 1);
    submit_until_waiting(&r, &t[1]);
    submit_until_waiting(&r, &t[2]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3); /* b and c wait */
    assert_int_equal(r.called, 0);
    push_ok(&r, 2);
    run(&r);
    assert_int_equal(r.called, 3);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    assert_int_equal(txn_size(&r, 2), 5);
    cJSON *body = req_body(&r, 3);
    assert_int_equal(count_pk(body, "counter/b"), 4);
    assert_int_equal(count_pk(body, "counter/c"), 4);
    assert_int_equal(cJSON_GetArraySize(txn_items(body)), 10);
    cJSON_Delete(body);
    assert_committed(t, 3, 2);
    prig_close(&r);
}

/*
 * A group full enough leaves while another is out, so that commits overlap
 * under load: groups of 20 items leave at 15 (3/4). With a's transaction out,
 * b and c (10 items) wait; d makes 15 and all three go at once.
 */
static void test_full_enough_group_goes(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 20);
    struct tb t[4];
    const char *ids[4] = {"a", "b", "c", "d"};
    warm_up(&r, t, ids, 4);
    submit_until_waiting(&r, &t[0]);
    assert_int_equal(eddy_processor_submit(r.p, &t[1].b), EDDY_OK);
    submit_until_waiting(&r, &t[2]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    submit_until_waiting(&r, &t[3]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    assert_int_equal(eddy_fake_inflight(r.rig.fake), 2);
    assert_int_equal(txn_size(&r, 3), 15);
    push_ok(&r, 2);
    run(&r);
    assert_int_equal(r.called, 4);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    prig_close(&r);
}

/* 3/4 of the 4 MB of text is full enough too: with a's transaction out, b
 * (1.6 MB: 270 KB escaped six times) waits, and c's as much again takes
 * them over 3 MB: they go at once, a handful of items. */
static void test_group_of_3mb_goes(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 0);
    struct tb t[3];
    const char *ids[3] = {"a", "b", "c"};
    warm_up(&r, t, ids, 3);
    for (int i = 1; i < 3; i++)
        t[i].ev[0].data = t[i].data[0] = escaped_blob(270 * 1000);
    submit_until_waiting(&r, &t[0]);
    submit_until_waiting(&r, &t[1]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    submit_until_waiting(&r, &t[2]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    assert_int_equal(txn_size(&r, 3), 10);
    push_ok(&r, 2);
    run(&r);
    assert_int_equal(r.called, 3);
    for (int i = 0; i < 3; i++)
        tb_cleanup(&t[i]);
    prig_close(&r);
}

/*
 * The caller may hold no more than feed_max events: a group with half of
 * them leaves while another is out, however few its items (here 4 events in
 * hand at most: b and c go at once beside a).
 */
static void test_group_of_half_the_feed_goes(void **state)
{
    (void)state;
    struct prig r;
    prig_init_full(&r, 0, 0, EDDY_REJECT_RECORD, 0, 4);
    struct tb t[3];
    const char *ids[3] = {"a", "b", "c"};
    warm_up(&r, t, ids, 3);
    submit_until_waiting(&r, &t[0]);
    assert_int_equal(eddy_processor_submit(r.p, &t[1].b), EDDY_OK);
    submit_until_waiting(&r, &t[2]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    assert_int_equal(txn_size(&r, 3), 10);
    push_ok(&r, 2);
    run(&r);
    assert_int_equal(r.called, 3);
    prig_close(&r);
}

/* Closing while a group waits for the transaction out: it is built, so it
 * goes as the transactions in flight do, and the processor closes after. */
static void test_close_sends_the_waiting_group(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 0);
    struct tb t[2];
    const char *ids[2] = {"a", "b"};
    warm_up(&r, t, ids, 2);
    submit_until_waiting(&r, &t[0]);
    submit_until_waiting(&r, &t[1]);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3);
    int done = 0;
    eddy_processor_close(r.p, closed, &done);
    run(&r);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    assert_int_equal(done, 0);
    push_ok(&r, 2);
    run(&r);
    assert_int_equal(done, 1);
    assert_committed(t, 2, 2);
    eddy_ddb_cleanup(&r.ddb);
    rig_close(&r.rig);
}

static void test_limits(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 4, "Emit");
    /* 0: an inbound event over 400 KB */
    char *big = eddy_malloc(410 * 1024);
    memset(big, 'y', 410 * 1024 - 1);
    big[410 * 1024 - 1] = '\0';
    t.ev[0].type = "Increment";
    t.data[0] = cJSON_CreateObject();
    cJSON_AddStringToObject(t.data[0], "blob", big);
    free(big);
    /* 1: 60 outbound events: 122 items */
    t.data[1] = cJSON_Parse("{\"n\":60,\"size\":1}");
    /* 2: one outbound event over the 256 KB PutEvents entry */
    t.data[2] = cJSON_Parse("{\"n\":1,\"size\":300000}");
    /* 3: fine */
    t.data[3] = cJSON_Parse("{\"n\":1,\"size\":10}");
    for (int i = 0; i < 4; i++)
        t.ev[i].data = t.data[i];
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].result, EDDY_EV_FAILED);
    assert_non_null(strstr(t.ev[0].reason, "400 KB item size limit"));
    assert_int_equal(t.ev[1].result, EDDY_EV_FAILED);
    assert_non_null(strstr(t.ev[1].reason, "100-item"));
    assert_int_equal(t.ev[2].result, EDDY_EV_FAILED);
    assert_non_null(strstr(t.ev[2].reason, "256 KB"));
    assert_int_equal(t.ev[3].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[3].idx, 0);
    cJSON *body = req_body(&r, 1);
    assert_int_equal(cJSON_GetArraySize(txn_items(body)), 5);
    cJSON_Delete(body);
    tb_cleanup(&t);
    prig_close(&r);
}

static void test_state_over_limit(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 2, "Grow");
    t.data[0] = cJSON_Parse("{\"size\":500000}");
    t.ev[1].type = "Increment"; /* keeps the pad: the state stays too big until Grow fails */
    t.ev[0].data = t.data[0];
    t.ev[1].data = t.data[1];
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.ev[0].result, EDDY_EV_FAILED);
    assert_non_null(strstr(t.ev[0].reason, "state item"));
    assert_non_null(strstr(t.ev[0].reason, "400 KB"));
    assert_int_equal(t.ev[1].result, EDDY_EV_APPLIED);
    cJSON *body = req_body(&r, 1);
    assert_null(put_attr(find_sk(body, "STATE", 0), "pad", "S"));
    assert_string_equal(put_attr(find_sk(body, "STATE", 0), "count", "N"), "1");
    cJSON_Delete(body);
    tb_cleanup(&t);
    prig_close(&r);
}

/*
 * A state written by a-h/stream's default store: Go field names, and types
 * JSON does not have (B, SS). The machine reads its own names; the commit
 * writes them back in its spelling and keeps the types it did not change.
 */
static void test_foreign_state(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    eddy_fake_push_json(r.rig.fake, 200,
                        "{\"Responses\":{\"T\":[{\"_pk\":{\"S\":\"counter/e1\"},"
                        "\"_sk\":{\"S\":\"STATE\"},\"_seq\":{\"N\":\"4\"},"
                        "\"ID\":{\"S\":\"e1\"},\"Count\":{\"N\":\"9\"}}]},"
                        "\"UnprocessedKeys\":{}}");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].result, EDDY_EV_APPLIED);
    cJSON *body = req_body(&r, 1);
    const cJSON *st = find_sk(body, "STATE", 0);
    assert_string_equal(put_attr(st, "count", "N"), "10");
    assert_string_equal(put_attr(st, "id", "S"), "e1");
    assert_null(put_attr(st, "Count", "N"));
    cJSON_Delete(body);
    prig_close(&r);
}

static void test_foreign_types_kept(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    /* the counter keeps "pad" as a string: stored as B, it stays B */
    eddy_fake_push_json(r.rig.fake, 200,
                        "{\"Responses\":{\"T\":[{\"_pk\":{\"S\":\"counter/e1\"},"
                        "\"_sk\":{\"S\":\"STATE\"},\"_seq\":{\"N\":\"4\"},"
                        "\"id\":{\"S\":\"e1\"},\"count\":{\"N\":\"9\"},"
                        "\"pad\":{\"B\":\"AAEC\"}}]},\"UnprocessedKeys\":{}}");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    /* the cached state keeps them too: a second commit from the cache */
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.ev[0].result, EDDY_EV_APPLIED);
    struct tb t2;
    tb_init(&t2, &r, "e1", 1, "Increment");
    snprintf(t2.ids[0], sizeof t2.ids[0], "second");
    assert_int_equal(eddy_processor_submit(r.p, &t2.b), EDDY_OK);
    run(&r);
    assert_int_equal(t2.ev[0].result, EDDY_EV_APPLIED);
    for (size_t i = 1; i <= 2; i++) {
        cJSON *body = req_body(&r, i);
        const cJSON *st = find_sk(body, "STATE", 0);
        assert_string_equal(put_attr(st, "pad", "B"), "AAEC");
        assert_null(put_attr(st, "pad", "S"));
        cJSON_Delete(body);
    }
    prig_close(&r);
}

static void test_rejected_and_failed(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 3, "Refuse");
    t.ev[1].type = "Fail";
    t.ev[2].type = "NoSuchType";
    push_load(&r, "counter/e1", 4, "{\"N\":\"9\"}");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.ev[0].result, EDDY_EV_REJECTED);
    assert_string_equal(t.ev[0].reason, "refused on purpose");
    assert_int_equal(t.ev[0].seq, 5);
    assert_int_equal(t.ev[1].result, EDDY_EV_FAILED);
    assert_string_equal(t.ev[1].reason, "failed on purpose");
    assert_int_equal(t.ev[2].result, EDDY_EV_REJECTED);
    assert_string_equal(t.ev[2].reason, "unknown event type NoSuchType");
    cJSON *body = req_body(&r, 1);
    /* refusals go under REJECTED/, which a-h/stream's history queries skip */
    const cJSON *in = find_sk(body, "REJECTED/5/0/Refuse", 0);
    assert_non_null(in);
    assert_string_equal(put_attr(in, "_rejected", "S"), "refused on purpose");
    assert_non_null(find_sk(body, "REJECTED/5/1/NoSuchType", 0));
    assert_int_equal(count_sk(body, "REJECTED/"), 2);
    assert_int_equal(count_sk(body, "INBOUND/"), 0);
    assert_int_equal(count_sk(body, "EVENT/"), 2);
    assert_int_equal(count_sk(body, "OUTBOUND/"), 0);
    const cJSON *st = find_sk(body, "STATE", 0);
    assert_string_equal(put_attr(st, "_seq", "N"), "5");
    assert_string_equal(put_attr(st, "count", "N"), "9");
    cJSON_Delete(body);
    prig_close(&r);
}

static void test_only_failed_writes_nothing(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Fail");
    push_empty_load(&r);
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].result, EDDY_EV_FAILED);
    assert_int_equal(eddy_fake_count(r.rig.fake), 1);
    prig_close(&r);
}

/* Under the dlq and drop policies a refusal is not written, and says so. */
static void test_rejected_unwritten(void **state)
{
    (void)state;
    struct prig r;
    prig_init_policy(&r, 0, 0, EDDY_REJECT_DROP);
    struct tb t;
    tb_init(&t, &r, "e1", 2, "Refuse");
    t.ev[1].type = "Increment";
    push_load(&r, "counter/e1", 4, "{\"N\":\"9\"}");
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].result, EDDY_EV_REJECTED_UNWRITTEN);
    assert_string_equal(t.ev[0].reason, "refused on purpose");
    assert_int_equal(t.ev[0].seq, 0);
    assert_int_equal(t.ev[0].idx, -1);
    assert_int_equal(t.ev[1].result, EDDY_EV_APPLIED);
    cJSON *body = req_body(&r, 1);
    assert_int_equal(count_sk(body, "INBOUND/"), 1);
    assert_null(find_sk(body, "INBOUND/5/0/Refuse", 0));
    cJSON_Delete(body);
    prig_close(&r);
}

static void test_malformed_state(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_load(&r, "counter/e1", 2, "{\"S\":\"abc\"}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_EPARSE);
    assert_non_null(strstr(t.b.error.detail, "counter/e1"));
    assert_non_null(strstr(t.b.error.detail, "count"));
    assert_int_equal(t.ev[0].result, EDDY_EV_ERROR);
    assert_int_equal(eddy_fake_count(r.rig.fake), 1);
    prig_close(&r);
}

/* A stored _seq that cannot advance is the state's fault: the batch fails
 * with which item and why, and no event is blamed (none is FAILED). */
static void test_negative_seq_is_the_state(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 2, "Increment");
    push_load(&r, "counter/e1", -3, "{\"N\":\"1\"}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_EPARSE);
    assert_non_null(strstr(t.b.error.detail, "state item of counter/e1"));
    assert_non_null(strstr(t.b.error.detail, "_seq -3 is negative"));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(t.ev[i].result, EDDY_EV_ERROR);
        assert_non_null(strstr(t.ev[i].reason, "_seq -3 is negative"));
    }
    assert_int_equal(eddy_fake_count(r.rig.fake), 1); /* nothing written */
    prig_close(&r);
}

static void test_bad_ids(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 0);
    struct tb t;
    tb_init(&t, &r, "bad\nid", 1, "Increment");
    assert_int_equal(eddy_processor_submit(r.p, &t.b), EDDY_EINVAL);
    assert_non_null(strstr(t.b.error.detail, "control character"));
    char *long_id = eddy_malloc(1026);
    memset(long_id, 'a', 1025);
    long_id[1025] = '\0';
    tb_init(&t, &r, long_id, 1, "Increment");
    t.b.entity_id = long_id;
    assert_int_equal(eddy_processor_submit(r.p, &t.b), EDDY_EINVAL);
    assert_non_null(strstr(t.b.error.detail, "1024"));
    /* the outbox sort key counter/<id>/<seq:020>/<idx:04> leaves 990 bytes */
    long_id[991] = '\0';
    tb_init(&t, &r, long_id, 1, "Increment");
    assert_int_equal(eddy_processor_submit(r.p, &t.b), EDDY_EINVAL);
    assert_non_null(strstr(t.b.error.detail, "the limit is 990 bytes"));
    /* EVENT/<id> leaves 1,018 bytes to an event id: that event fails alone */
    long_id[991] = 'a';
    long_id[1019] = '\0';
    tb_init(&t, &r, "e-long", 2, "Increment");
    t.ev[0].event_id = long_id;
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.ev[0].result, EDDY_EV_FAILED);
    assert_non_null(strstr(t.ev[0].reason, "EVENT/<id>"));
    assert_int_equal(t.ev[1].result, EDDY_EV_APPLIED);
    r.called = 0;
    free(long_id);
    /* a bad event id fails that event only */
    tb_init(&t, &r, "a/b/c", 2, "Increment");
    t.ev[0].event_id = "x\x01y";
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.ev[0].result, EDDY_EV_FAILED);
    assert_non_null(strstr(t.ev[0].reason, "event id"));
    assert_int_equal(t.ev[1].result, EDDY_EV_APPLIED);
    assert_int_equal(t.ev[1].idx, 0);
    assert_int_equal(r.called, 1);
    prig_close(&r);
}

/*
 * A batch split into two steps whose first step committed and whose second
 * gives up on conflicts: the batch fails, and the events of the first step
 * still say they were applied (the worker deletes their messages).
 */
static void test_split_batch_keeps_committed_results(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 48, "Increment"); /* 24 per transaction: 97 items */
    const char *codes[97] = {NULL};
    codes[96] = "ConditionalCheckFailed"; /* the state item, last */
    push_empty_load(&r);
    push_ok(&r, 1);
    push_cancel(&r, 97, codes);
    for (int i = 0; i < 3; i++) { /* occ_retries 3: four attempts */
        push_load(&r, "counter/e1", 5 + i, "{\"N\":\"0\"}");
        push_cancel(&r, 97, codes);
    }
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_ECONFLICT);
    assert_int_equal(eddy_fake_count(r.rig.fake), 9);
    for (size_t i = 0; i < 24; i++) {
        assert_int_equal(t.ev[i].result, EDDY_EV_APPLIED);
        assert_int_equal(t.ev[i].seq, 1);
    }
    for (size_t i = 24; i < 48; i++)
        assert_int_equal(t.ev[i].result, EDDY_EV_ERROR);
    prig_close(&r);
}

static void test_throttled_then_ok(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_empty_load(&r);
    const char *codes[5] = {"TransactionConflict", NULL, NULL, NULL, NULL};
    push_cancel(&r, 5, codes);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(t.ev[0].seq, 1);
    assert_int_equal(eddy_fake_count(r.rig.fake), 3); /* no reload */
    struct eddy_processor_stats s;
    eddy_processor_stats(r.p, &s);
    assert_int_equal(s.retries, 1);
    prig_close(&r);
}

/* A TransactionConflict on one entity's item holds back that entity alone;
 * a throttled table holds back the whole group. */
static void test_transaction_conflict_alone(void **state)
{
    (void)state;
    struct prig r;
    struct tb a, b, c;
    three_entities(&r, &a, &b, &c);
    push_empty_load(&r);
    const char *codes[15] = {NULL};
    codes[6] = "TransactionConflict"; /* one of b's items: 5..9 */
    push_cancel(&r, 15, codes);
    push_ok(&r, 3);
    submit_run_three(&r, &a, &b, &c);
    assert_int_equal(r.called, 3);
    /* b waits a backoff (a and c do not) and is not read again; whether its
     * wait ends before a and c go again (one call or two) is the jitter's */
    for (size_t i = 1; i < eddy_fake_count(r.rig.fake); i++)
        assert_string_equal(req_op(&r, i), "TransactWriteItems");
    assert_int_equal(a.ev[0].seq, 1);
    assert_int_equal(c.ev[0].seq, 1);
    assert_int_equal(b.ev[0].seq, 1);
    struct eddy_processor_stats s;
    eddy_processor_stats(r.p, &s);
    assert_int_equal(s.retries, 1);
    prig_close(&r);
}

/* Four cancellations of e1's one-event step, codes[k] on its first item. */
static void give_up_on(struct prig *r, struct tb *t, const char *const codes[4])
{
    one_entity(r, t, 1, "Increment");
    push_empty_load(r);
    for (int k = 0; k < 4; k++) /* occ_retries 3: four attempts */
        push_cancel(r, 5, (const char *const[5]){codes[k]});
    submit_run(r, t);
    assert_int_equal(t->ev[0].result, EDDY_EV_ERROR);
    assert_int_equal(eddy_fake_count(r->rig.fake), 5);
}

/*
 * A TransactionConflict at every attempt is contention on the entity, not a
 * throttled table: past occ_retries the batch fails with EDDY_ECONFLICT, as
 * a conflict does, since the worker takes EDDY_ETHROTTLED for the store
 * being down. Once the table throttled, it is EDDY_ETHROTTLED.
 */
static void test_transaction_conflict_gives_up(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    const char *const contended[4] = {"TransactionConflict", "TransactionConflict",
                                      "TransactionConflict", "TransactionConflict"};
    give_up_on(&r, &t, contended);
    assert_int_equal(t.err, EDDY_ECONFLICT);
    assert_non_null(strstr(t.b.error.detail, "TransactionConflict"));
    prig_close(&r);
    const char *const throttled[4] = {"TransactionConflict", "ThrottlingError",
                                      "TransactionConflict", "TransactionConflict"};
    give_up_on(&r, &t, throttled);
    assert_int_equal(t.err, EDDY_ETHROTTLED);
    prig_close(&r);
}

/* A BatchGetItem reply that leaves e1's state key unprocessed. */
static void push_unprocessed(struct prig *r)
{
    eddy_fake_push_json(r->rig.fake, 200,
                        "{\"Responses\":{\"T\":[]},\"UnprocessedKeys\":{\"T\":{\"Keys\":[{"
                        "\"_pk\":{\"S\":\"counter/e1\"},\"_sk\":{\"S\":\"STATE\"}}],"
                        "\"ConsistentRead\":true}}}");
}

static uint64_t retries(const struct prig *r)
{
    struct eddy_processor_stats s;
    eddy_processor_stats(r->p, &s);
    return s.retries;
}

/*
 * A key BatchGetItem leaves unprocessed (the table throttled the read) is
 * asked again after a backoff, as a throttled commit is, not at once; past
 * occ_retries the batch fails with EDDY_ETHROTTLED.
 */
static void test_unprocessed_keys_back_off(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    push_unprocessed(&r);
    push_unprocessed(&r);
    push_empty_load(&r);
    push_ok(&r, 1);
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_OK);
    assert_int_equal(eddy_fake_count(r.rig.fake), 4);
    assert_int_equal(retries(&r), 2); /* each read again waited its backoff */
    prig_close(&r);

    one_entity(&r, &t, 1, "Increment");
    for (int i = 0; i < 6; i++)
        push_unprocessed(&r);
    submit_run(&r, &t);
    assert_int_equal(t.err, EDDY_ETHROTTLED);
    assert_int_equal(t.ev[0].result, EDDY_EV_ERROR);
    assert_non_null(strstr(t.b.error.detail, "UnprocessedKeys"));
    assert_int_equal(eddy_fake_count(r.rig.fake), 4); /* occ_retries 3: four reads */
    assert_int_equal(retries(&r), 3);
    prig_close(&r);
}

/* close(p, cb, ud): cb runs once, from the loop, never inside close; a
 * second close does nothing; a batch not started is canceled first. */
static void test_close_once_from_the_loop(void **state)
{
    (void)state;
    struct prig r;
    struct tb t;
    one_entity(&r, &t, 1, "Increment");
    assert_int_equal(eddy_processor_submit(r.p, &t.b), EDDY_OK);
    int done = 0, again = 0;
    eddy_processor_close(r.p, closed, &done);
    eddy_processor_close(r.p, closed, &again);
    assert_int_equal(done, 0);
    assert_int_equal(t.calls, 0);
    run(&r);
    assert_int_equal(done, 1);
    assert_int_equal(again, 0);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.err, EDDY_ECANCELED);
    assert_int_equal(eddy_fake_count(r.rig.fake), 0);
    eddy_ddb_cleanup(&r.ddb);
    rig_close(&r.rig);
}

/*
 * Entities, groups and their arrays are reused from one batch to the next:
 * a short batch, then one with a longer entity id and more items than any
 * before (the key and the arrays grow), then the first entity again from the
 * cache. Nothing of an earlier batch may show in a later one's items.
 */
static void test_reused_between_batches(void **state)
{
    (void)state;
    struct prig r;
    prig_init(&r, 0);
    static const char *long_id = "a-much-longer-entity-id-than-the-first-one-0123456789";
    struct tb *t = eddy_calloc(3, sizeof *t);
    tb_init(&t[0], &r, "a", 1, "Increment");
    tb_init(&t[1], &r, "b", 20, "Increment"); /* event ids b-0 .. b-19 */
    t[1].b.entity_id = long_id;
    tb_init(&t[2], &r, "a", 2, "Tick");
    snprintf(t[2].ids[0], sizeof t[2].ids[0], "a-t0");
    snprintf(t[2].ids[1], sizeof t[2].ids[1], "a-t1");
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t[0]);
    push_empty_load(&r);
    eddy_fake_push_json(r.rig.fake, 200, "{}");
    submit_run(&r, &t[1]);
    eddy_fake_push_json(r.rig.fake, 200, "{}"); /* a: from the cache, no load */
    submit_run(&r, &t[2]);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(t[k].calls, 1);
        assert_int_equal(t[k].err, EDDY_OK);
        for (size_t i = 0; i < t[k].b.nevents; i++)
            assert_int_equal(t[k].ev[i].result, EDDY_EV_APPLIED);
    }
    assert_int_equal(t[1].ev[19].seq, 1);
    assert_int_equal(t[1].ev[19].idx, 19);
    assert_int_equal(t[2].ev[1].seq, 2);
    assert_int_equal(eddy_fake_count(r.rig.fake), 5);
    /* the long entity's step: 20 x (inbound, dedupe, outbound, outbox) + state */
    cJSON *body = req_body(&r, 3);
    assert_int_equal(cJSON_GetArraySize(txn_items(body)), 81);
    char pk[128];
    snprintf(pk, sizeof pk, "counter/%s", long_id);
    assert_string_equal(put_attr(find_sk(body, "STATE", 0), "_pk", "S"), pk);
    cJSON_Delete(body);
    /* a again: its own key, state and :prev, none of the long batch's items */
    body = req_body(&r, 4);
    assert_int_equal(cJSON_GetArraySize(txn_items(body)), 5);
    const cJSON *st = find_sk(body, "STATE", 0);
    assert_string_equal(put_attr(st, "_pk", "S"), "counter/a");
    assert_string_equal(put_attr(st, "_seq", "N"), "2");
    assert_string_equal(put_attr(st, "count", "N"), "3");
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(st, "Put"), "ExpressionAttributeValues");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(vals, ":prev"), "N")
            ->valuestring,
        "1");
    assert_int_equal(count_sk(body, "OUTBOUND/"), 0);
    assert_int_equal(count_sk(body, "INBOUND/2/1/Tick"), 1);
    cJSON_Delete(body);
    for (int k = 0; k < 3; k++)
        tb_cleanup(&t[k]);
    free(t);
    prig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_shape),
        cmocka_unit_test(test_coalesced_ten),
        cmocka_unit_test(test_conflict_reloads),
        cmocka_unit_test(test_conflict_gives_up),
        cmocka_unit_test(test_conflict_gives_up_keeps_returned_state),
        cmocka_unit_test(test_conflict_takes_returned_state),
        cmocka_unit_test(test_conflict_returned_state_unreadable),
        cmocka_unit_test(test_duplicate_marker),
        cmocka_unit_test(test_repeat_after_poison),
        cmocka_unit_test(test_repeat_waits_for_first),
        cmocka_unit_test(test_group_three),
        cmocka_unit_test(test_commits_max_holds_groups_back),
        cmocka_unit_test(test_small_group_waits_for_the_one_out),
        cmocka_unit_test(test_full_enough_group_goes),
        cmocka_unit_test(test_group_of_3mb_goes),
        cmocka_unit_test(test_group_of_half_the_feed_goes),
        cmocka_unit_test(test_close_sends_the_waiting_group),
        cmocka_unit_test(test_split_over_100_items),
        cmocka_unit_test(test_split_over_4mb_of_text),
        cmocka_unit_test(test_split_batch_keeps_committed_results),
        cmocka_unit_test(test_group_split_by_text),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_state_over_limit),
        cmocka_unit_test(test_rejected_and_failed),
        cmocka_unit_test(test_foreign_state),
        cmocka_unit_test(test_foreign_types_kept),
        cmocka_unit_test(test_rejected_unwritten),
        cmocka_unit_test(test_only_failed_writes_nothing),
        cmocka_unit_test(test_malformed_state),
        cmocka_unit_test(test_negative_seq_is_the_state),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_throttled_then_ok),
        cmocka_unit_test(test_transaction_conflict_alone),
        cmocka_unit_test(test_transaction_conflict_gives_up),
        cmocka_unit_test(test_unprocessed_keys_back_off),
        cmocka_unit_test(test_close_once_from_the_loop),
        cmocka_unit_test(test_reused_between_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
