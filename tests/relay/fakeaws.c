/*
 * fakeaws.c - the relay tests' DynamoDB table and EventBridge bus (see
 * fakeaws.h). Answers are pushed to the fake transport in request order,
 * which is the order it hands them out.
 */
#include "fakeaws.h"
#include "record_tree.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "core/record.h"

#define TABLE_PK(it) sget(it, "_pk")
#define TABLE_SK(it) sget(it, "_sk")

static const char *sget(const cJSON *item, const char *name)
{
    const cJSON *s =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, name), "S");
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static int64_t nget(const cJSON *item, const char *name)
{
    const cJSON *n =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, name), "N");
    return cJSON_IsString(n) ? strtoll(n->valuestring, NULL, 10) : 0;
}

void fakeaws_init(struct fakeaws *w)
{
    memset(w, 0, sizeof *w);
    rig_open(&w->rig, &(struct rig_opts){.max_attempts = 2,
                                         .seed = 7,
                                         .backoff_base_ms = 1,
                                         .backoff_max_ms = 2,
                                         .service = "test",
                                         .clock = RIG_CLOCK_FAKE});
    struct eddy_error err = {0};
    assert_int_equal(eddy_ddb_init(&w->ddb, &w->rig.aws, &w->rig.ep, &err), EDDY_OK);
    assert_int_equal(eddy_eb_init(&w->eb, &w->rig.aws, &w->rig.ep, &err), EDDY_OK);
    w->items = cJSON_CreateArray();
    w->sent = cJSON_CreateArray();
    w->published = cJSON_CreateArray();
    w->attempts = cJSON_CreateObject();
}

void fakeaws_close(struct fakeaws *w)
{
    rig_close_transport(&w->rig);
    uv_run(&w->rig.loop, UV_RUN_DEFAULT);
    eddy_eb_cleanup(&w->eb);
    eddy_ddb_cleanup(&w->ddb);
    rig_close(&w->rig);
    cJSON_Delete(w->items);
    cJSON_Delete(w->sent);
    cJSON_Delete(w->published);
    cJSON_Delete(w->attempts);
}

/* ---- the table ---- */

static cJSON *find(const struct fakeaws *w, const char *pk, const char *sk)
{
    cJSON *it;
    cJSON_ArrayForEach(it, w->items)
    {
        if (strcmp(TABLE_PK(it), pk) == 0 && strcmp(TABLE_SK(it), sk) == 0)
            return it;
    }
    return NULL;
}

const cJSON *fakeaws_get(const struct fakeaws *w, const char *pk, const char *sk)
{
    return find(w, pk, sk);
}

static void table_delete(struct fakeaws *w, const char *pk, const char *sk)
{
    cJSON *it = find(w, pk, sk);
    if (it)
        cJSON_Delete(cJSON_DetachItemViaPointer(w->items, it));
}

void fakeaws_put(struct fakeaws *w, const cJSON *item)
{
    table_delete(w, TABLE_PK(item), TABLE_SK(item));
    cJSON_AddItemToArray(w->items, cJSON_Duplicate(item, true));
}

void fakeaws_put_outbox(struct fakeaws *w, uint32_t shards, const char *ns, const char *id,
                        int64_t seq, size_t idx, size_t pad)
{
    struct eddy_record_entity e = {ns, id, seq, 1700000000, 0};
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "n", (double)seq);
    if (pad) {
        char *text = eddy_malloc(pad + 1);
        memset(text, 'x', pad);
        text[pad] = '\0';
        cJSON_AddStringToObject(data, "pad", text);
        free(text);
    }
    cJSON *item = NULL;
    struct eddy_error err = {0};
    assert_int_equal(record_build_outbox(&e, shards, idx, "Happened", data, NULL, &item, &err),
                     EDDY_OK);
    fakeaws_put(w, item);
    cJSON_Delete(item);
    cJSON_Delete(data);
}

size_t fakeaws_count(const struct fakeaws *w, const char *pk)
{
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, w->items) n += strcmp(TABLE_PK(it), pk) == 0;
    return n;
}

/* ---- answers ---- */

static void reply_json(struct fakeaws *w, cJSON *body)
{
    char *text = cJSON_PrintUnformatted(body);
    eddy_fake_push_json(w->rig.fake, 200, text);
    free(text);
    cJSON_Delete(body);
}

static void reply_condition_failed(struct fakeaws *w)
{
    eddy_fake_push_json(w->rig.fake, 400,
                        "{\"__type\":\"com.amazonaws.dynamodb.v20120810#"
                        "ConditionalCheckFailedException\",\"message\":\"The conditional request "
                        "failed\"}");
}

static int sk_cmp(const void *a, const void *b)
{
    return strcmp(TABLE_SK(*(cJSON *const *)a), TABLE_SK(*(cJSON *const *)b));
}

static void answer_query(struct fakeaws *w, const cJSON *req)
{
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(req, "ExpressionAttributeValues");
    const char *pk = sget(values, ":pk");
    assert_non_null(pk);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "ConsistentRead")));
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(req, "Limit");
    const char *after = sget(cJSON_GetObjectItemCaseSensitive(req, "ExclusiveStartKey"), "_sk");
    if (after == NULL)
        after = sget(values, ":after"); /* "#pk = :pk AND #sk > :after" */
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(w->items) + 1;
    cJSON **sel = eddy_calloc(cap, sizeof *sel);
    cJSON *it;
    cJSON_ArrayForEach(it, w->items)
    {
        if (strcmp(TABLE_PK(it), pk) == 0 && (!after || strcmp(TABLE_SK(it), after) > 0))
            sel[n++] = it;
    }
    qsort(sel, n, sizeof *sel, sk_cmp);
    size_t max = cJSON_IsNumber(limit) ? (size_t)limit->valueint : n;
    cJSON *body = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(body, "Items");
    for (size_t i = 0; i < n && i < max; i++)
        cJSON_AddItemToArray(items, cJSON_Duplicate(sel[i], true));
    if (n > max) {
        cJSON *key = cJSON_AddObjectToObject(body, "LastEvaluatedKey");
        cJSON_AddItemToObject(key, "_pk",
                              cJSON_Duplicate(cJSON_GetObjectItem(sel[max - 1], "_pk"), true));
        cJSON_AddItemToObject(key, "_sk",
                              cJSON_Duplicate(cJSON_GetObjectItem(sel[max - 1], "_sk"), true));
    }
    free(sel);
    w->query_calls++;
    reply_json(w, body);
}

/* The two conditions the lease module writes. */
static bool condition_holds(const cJSON *req, const cJSON *old)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(req, "ConditionExpression");
    if (c == NULL)
        return true;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "ExpressionAttributeValues");
    const char *me = sget(v, ":me");
    if (strcmp(c->valuestring, "#o = :me") == 0)
        return old && strcmp(sget(old, "owner"), me) == 0;
    assert_string_equal(c->valuestring, "attribute_not_exists(#o) OR #e < :now OR #o = :me");
    return old == NULL || nget(old, "expires") < nget(v, ":now") ||
           strcmp(sget(old, "owner"), me) == 0;
}

static void answer_item_write(struct fakeaws *w, const cJSON *req, bool is_delete)
{
    if (w->fail_ddb_writes) {
        eddy_fake_push_error(w->rig.fake, EDDY_ENET);
        return;
    }
    const cJSON *doc = cJSON_GetObjectItemCaseSensitive(req, is_delete ? "Key" : "Item");
    cJSON *old = find(w, TABLE_PK(doc), TABLE_SK(doc));
    if (!condition_holds(req, old)) {
        reply_condition_failed(w);
        return;
    }
    if (is_delete)
        table_delete(w, TABLE_PK(doc), TABLE_SK(doc));
    else
        fakeaws_put(w, doc);
    w->write_calls++;
    reply_json(w, cJSON_CreateObject());
}

static void answer_batch_write(struct fakeaws *w, const cJSON *req)
{
    const cJSON *tables = cJSON_GetObjectItemCaseSensitive(req, "RequestItems");
    const cJSON *reqs = tables->child;
    assert_true(cJSON_GetArraySize(reqs) <= 25);
    cJSON *body = cJSON_CreateObject();
    cJSON *un = cJSON_AddObjectToObject(body, "UnprocessedItems");
    cJSON *left = NULL;
    const cJSON *r;
    bool first = w->unprocessed_calls > 0;
    if (first)
        w->unprocessed_calls--;
    cJSON_ArrayForEach(r, reqs)
    {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r, "DeleteRequest"), "Key");
        assert_non_null(key);
        if (w->unprocessed_next > 0 || first) {
            if (!first)
                w->unprocessed_next--;
            first = false;
            if (left == NULL)
                left = cJSON_AddArrayToObject(un, reqs->string);
            cJSON_AddItemToArray(left, cJSON_Duplicate(r, true));
            continue;
        }
        table_delete(w, TABLE_PK(key), TABLE_SK(key));
    }
    w->write_calls++;
    reply_json(w, body);
}

static bool condition_holds(const cJSON *req, const cJSON *old);

/* Deletes and puts (the relay's dead moves, the leases' renewals), with
 * the leases' conditions: all applied, or none and the reasons. */
static void answer_transact(struct fakeaws *w, const cJSON *req)
{
    if (w->fail_ddb_writes) {
        eddy_fake_push_error(w->rig.fake, EDDY_ENET);
        return;
    }
    const cJSON *t;
    bool ok = true;
    cJSON *reasons = cJSON_CreateArray();
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(req, "TransactItems"))
    {
        const cJSON *put = cJSON_GetObjectItemCaseSensitive(t, "Put");
        const cJSON *doc = put ? cJSON_GetObjectItemCaseSensitive(put, "Item") : NULL;
        bool holds = !put || condition_holds(put, find(w, TABLE_PK(doc), TABLE_SK(doc)));
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "Code", holds ? "None" : "ConditionalCheckFailed");
        cJSON_AddItemToArray(reasons, r);
        ok = ok && holds;
    }
    if (!ok) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "__type",
                                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException");
        cJSON_AddStringToObject(body, "message", "Transaction cancelled");
        cJSON_AddItemToObject(body, "CancellationReasons", reasons);
        char *text = cJSON_PrintUnformatted(body);
        eddy_fake_push_json(w->rig.fake, 400, text);
        free(text);
        cJSON_Delete(body);
        return;
    }
    cJSON_Delete(reasons);
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(req, "TransactItems"))
    {
        const cJSON *del = cJSON_GetObjectItemCaseSensitive(t, "Delete");
        const cJSON *put = cJSON_GetObjectItemCaseSensitive(t, "Put");
        if (del) {
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(del, "Key");
            table_delete(w, TABLE_PK(key), TABLE_SK(key));
        } else {
            assert_non_null(put);
            fakeaws_put(w, cJSON_GetObjectItemCaseSensitive(put, "Item"));
        }
    }
    w->write_calls++;
    w->transact_calls++;
    reply_json(w, cJSON_CreateObject());
}

void fakeaws_detail_meta(const char *detail, char *id, size_t idlen, int64_t *seq, int64_t *idx)
{
    cJSON *d = cJSON_Parse(detail);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "eddy");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(m, "entity");
    snprintf(id, idlen, "%s", cJSON_IsString(i) ? i->valuestring : "?");
    *seq = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "seq"));
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(m, "idx");
    *idx = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : -1;
    cJSON_Delete(d);
}

/* Count the attempt of this entry; refuse it when the hook says so. */
static bool put_entry(struct fakeaws *w, const cJSON *en, cJSON *results)
{
    const char *detail = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(en, "Detail"));
    assert_non_null(detail);
    cJSON *count = cJSON_GetObjectItemCaseSensitive(w->attempts, detail);
    if (count == NULL)
        count = cJSON_AddNumberToObject(w->attempts, detail, 0);
    cJSON_SetNumberValue(count, count->valuedouble + 1);
    cJSON_AddItemToArray(w->sent, cJSON_Duplicate(en, true));
    cJSON *res = cJSON_CreateObject();
    bool fail = w->fail_entry && w->fail_entry(en, (unsigned)count->valuedouble, w->fail_ud);
    if (fail) {
        cJSON_AddStringToObject(res, "ErrorCode", w->fail_code ? w->fail_code : "InternalFailure");
        cJSON_AddStringToObject(res, "ErrorMessage", "chosen to fail");
    } else {
        cJSON_AddStringToObject(res, "EventId", "ev");
        cJSON_AddItemToArray(w->published, cJSON_Duplicate(en, true));
    }
    cJSON_AddItemToArray(results, res);
    return fail;
}

static void answer_put_events(struct fakeaws *w, const cJSON *req)
{
    w->put_calls++;
    if (w->fail_put_calls > 0) {
        w->fail_put_calls--;
        eddy_fake_push_json(w->rig.fake, 500, "{\"__type\":\"InternalException\"}");
        return;
    }
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(req, "Entries");
    size_t n = (size_t)cJSON_GetArraySize(entries), bytes = 0, failed = 0;
    if (n > w->max_call_entries)
        w->max_call_entries = n;
    cJSON *body = cJSON_CreateObject();
    cJSON *results = cJSON_CreateArray();
    const cJSON *en;
    cJSON *ids = cJSON_CreateObject();
    cJSON_ArrayForEach(en, entries)
    {
        const char *detail = cJSON_GetStringValue(cJSON_GetObjectItem(en, "Detail"));
        char id[256];
        int64_t seq, idx;
        fakeaws_detail_meta(detail, id, sizeof id, &seq, &idx);
        if (cJSON_GetObjectItemCaseSensitive(ids, id))
            w->same_entity_in_call = true;
        cJSON_AddTrueToObject(ids, id);
        bytes += strlen(detail) + strlen(cJSON_GetStringValue(cJSON_GetObjectItem(en, "Source"))) +
                 strlen(cJSON_GetStringValue(cJSON_GetObjectItem(en, "DetailType")));
        failed += put_entry(w, en, results);
    }
    cJSON_Delete(ids);
    if (bytes > w->max_call_bytes)
        w->max_call_bytes = bytes;
    cJSON_AddNumberToObject(body, "FailedEntryCount", (double)failed);
    cJSON_AddItemToObject(body, "Entries", results);
    reply_json(w, body);
}

static void answer(struct fakeaws *w, const struct eddy_fake_request *r)
{
    const char *target = eddy_fake_request_header(r, "X-Amz-Target");
    assert_non_null(target);
    cJSON *req = cJSON_Parse(r->body);
    assert_non_null(req);
    const char *op = strchr(target, '.') + 1;
    if (strcmp(op, "Query") == 0) {
        answer_query(w, req);
        if (w->on_query)
            w->on_query(w, w->on_query_ud);
    } else if (strcmp(op, "PutItem") == 0) {
        answer_item_write(w, req, false);
    } else if (strcmp(op, "DeleteItem") == 0) {
        answer_item_write(w, req, true);
    } else if (strcmp(op, "BatchWriteItem") == 0) {
        answer_batch_write(w, req);
    } else if (strcmp(op, "TransactWriteItems") == 0) {
        answer_transact(w, req);
    } else if (strcmp(op, "PutEvents") == 0) {
        answer_put_events(w, req);
    } else {
        fail_msg("unexpected call %s", target);
    }
    cJSON_Delete(req);
}

/* Answer every request recorded and not answered, in order, unless held. */
static bool answer_pending(struct fakeaws *w)
{
    bool any = false;
    while (w->answered < eddy_fake_count(w->rig.fake)) {
        const struct eddy_fake_request *r = eddy_fake_request_at(w->rig.fake, w->answered);
        if (r->canceled) {
            w->answered++;
            continue;
        }
        const char *target = eddy_fake_request_header(r, "X-Amz-Target");
        if (w->hold_puts && target && strstr(target, "PutEvents"))
            break;
        if (w->hold_target && target && strstr(target, w->hold_target))
            break;
        w->answered++;
        answer(w, r);
        any = true;
    }
    return any;
}

size_t fakeaws_waiting(const struct fakeaws *w)
{
    return eddy_fake_count(w->rig.fake) - w->answered;
}

void fakeaws_release_puts(struct fakeaws *w)
{
    w->hold_puts = false;
    answer_pending(w);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool fakeaws_run(struct fakeaws *w, bool (*done)(struct fakeaws *w, void *ud), void *ud,
                 int timeout_ms)
{
    int64_t deadline = wall_ms() + timeout_ms;
    while (!done(w, ud)) {
        if (wall_ms() > deadline)
            return false;
        bool any = answer_pending(w);
        uv_run(&w->rig.loop, UV_RUN_NOWAIT);
        if (!any)
            usleep(200);
    }
    return true;
}
