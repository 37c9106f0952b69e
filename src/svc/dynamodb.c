/*
 * dynamodb.c - DynamoDB over the JSON protocol (see dynamodb.h). Every
 * request is written straight into its body buffer (eddy_jw), the caller's
 * trees printed into it, no request tree built; results are copies of
 * subtrees of the parsed reply.
 */
#include "svc/dynamodb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "svc/svccall.h"

enum op_kind { OP_ITEM, OP_BATCH_GET, OP_QUERY, OP_TXN, OP_BATCH_WRITE };

struct op {
    enum op_kind kind;
    union {
        eddy_ddb_item_cb item;
        eddy_ddb_batch_get_cb batch_get;
        eddy_ddb_query_cb query;
        eddy_ddb_txn_cb txn;
        eddy_ddb_batch_write_cb batch_write;
    } cb;
    void *ud;
    size_t n;        /* transaction items */
    char table[256]; /* BatchGetItem, BatchWriteItem: the table to read results for */
};

eddy_err eddy_ddb_init(struct eddy_ddb *d, struct eddy_aws *aws, const struct eddy_endpoint *ep,
                       struct eddy_error *err)
{
    return eddy_aws_client_init(&d->client, aws, EDDY_AWS_DYNAMODB, ep, err);
}

void eddy_ddb_cleanup(struct eddy_ddb *d)
{
    eddy_aws_client_cleanup(&d->client);
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud);

static struct op *op_new(enum op_kind kind, void *ud, const char *table)
{
    struct op *o = eddy_calloc(1, sizeof *o);
    o->kind = kind;
    o->ud = ud;
    if (table)
        snprintf(o->table, sizeof o->table, "%s", table);
    return o;
}

/* v copied out of a reply (whose tree lives in the call's arena, for the
 * callback only), or NULL. */
static cJSON *copy(const cJSON *v)
{
    return v ? cJSON_Duplicate(v, true) : NULL;
}

/* A tree (item, key, names, values) into the body, under key when there
 * is one; nothing when v is NULL. */
static void jw_tree(struct eddy_jw *w, const char *key, const cJSON *v)
{
    if (v == NULL)
        return;
    if (key)
        eddy_jw_key(w, key);
    eddy_jw_tree(w, v);
}

static void jw_expr(struct eddy_jw *w, const struct eddy_ddb_expr *e)
{
    if (e == NULL)
        return;
    if (e->condition)
        EDDY_JW_KSTR(w, "ConditionExpression", e->condition);
    if (e->update)
        EDDY_JW_KSTR(w, "UpdateExpression", e->update);
    jw_tree(w, "ExpressionAttributeNames", e->names);
    jw_tree(w, "ExpressionAttributeValues", e->values);
    if (e->return_old_on_fail)
        EDDY_JW_KSTR(w, "ReturnValuesOnConditionCheckFailure", "ALL_OLD");
}

/* The batch calls' one table and their number of keys or requests. */
static eddy_err batch_check(const char *call, const char *table, size_t n, size_t max,
                            const char *what, struct eddy_error *err)
{
    if (table == NULL || n == 0)
        return eddy_error_set(err, EDDY_EINVAL, "DynamoDB %s: a table and %s required", call, what);
    if (n > max)
        return eddy_error_set(err, EDDY_ELIMIT, "DynamoDB %s takes at most %zu %s (got %zu)", call,
                              max, what, n);
    if (strlen(table) >= sizeof((struct op *)0)->table)
        return eddy_error_set(err, EDDY_EINVAL, "DynamoDB %s: table name too long", call);
    return EDDY_OK;
}

/* {"RequestItems":{"<table>": and then brace: the batch calls' one table. */
static void open_table(struct eddy_jw *w, const char *table, char brace)
{
    eddy_jw_open(w, '{');
    EDDY_JW_KEY(w, "RequestItems");
    eddy_jw_open(w, '{');
    eddy_jw_key(w, table);
    eddy_jw_open(w, brace);
}

static void close_table(struct eddy_jw *w, char brace)
{
    eddy_jw_close(w, brace);
    eddy_jw_close(w, '}');
    eddy_jw_close(w, '}');
}

/* Start the call with the body in w (taken over); frees o when the start fails. */
static eddy_err start_opts(struct eddy_ddb *d, const char *opname, struct eddy_jw *w, struct op *o,
                           const struct eddy_aws_call_opts *opts, struct eddy_aws_call **handle,
                           struct eddy_error *err)
{
    eddy_err rc = eddy_svc_call(&d->client, opname, w, opts, on_reply, o, handle, err);
    if (rc)
        free(o);
    return rc;
}

static eddy_err start(struct eddy_ddb *d, const char *opname, struct eddy_jw *w, struct op *o,
                      bool idempotent, struct eddy_aws_call **handle, struct eddy_error *err)
{
    struct eddy_aws_call_opts opts = {.idempotent = idempotent};
    return start_opts(d, opname, w, o, &opts, handle, err);
}

/*
 * A read whose reply DynamoDB may fill to its 16 MB limit (BatchGetItem,
 * Query). That limit counts DynamoDB's item sizes, and the JSON wire form
 * of the same items is larger (type tags, quoting, escapes: twice as large
 * for a state of list entries), so the transport's 16 MiB cap would refuse
 * a reply DynamoDB sends whole, every time. The cap is four times the limit.
 */
#define DDB_READ_REPLY_MAX ((size_t)64 << 20)

static eddy_err start_read(struct eddy_ddb *d, const char *opname, struct eddy_jw *w, struct op *o,
                           struct eddy_aws_call **handle, struct eddy_error *err)
{
    struct eddy_aws_call_opts opts = {.idempotent = true, .max_response = DDB_READ_REPLY_MAX};
    return start_opts(d, opname, w, o, &opts, handle, err);
}

/* ---- single items ---- */

void eddy_ddb_item_result_cleanup(struct eddy_ddb_item_result *r)
{
    cJSON_Delete(r->item);
    r->item = NULL;
}

static eddy_err item_call(struct eddy_ddb *d, const char *opname, const char *table,
                          const char *what, const cJSON *item, const struct eddy_ddb_expr *expr,
                          const char *return_values, bool consistent, eddy_ddb_item_cb cb, void *ud,
                          struct eddy_aws_call **handle, struct eddy_error *err)
{
    if (d == NULL || table == NULL || !cJSON_IsObject(item) || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "DynamoDB %s: table, %s object and cb required",
                              opname, what);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "TableName", table);
    jw_tree(&w, what, item);
    jw_expr(&w, expr);
    if (return_values)
        EDDY_JW_KSTR(&w, "ReturnValues", return_values);
    if (consistent) {
        EDDY_JW_KEY(&w, "ConsistentRead");
        eddy_jw_bool(&w, true);
    }
    eddy_jw_close(&w, '}');
    struct op *o = op_new(OP_ITEM, ud, NULL);
    o->cb.item = cb;
    /* Get and conditional writes repeat safely; an unconditional put or
     * delete also ends in the same state */
    return start(d, opname, &w, o, true, handle, err);
}

eddy_err eddy_ddb_get_item(struct eddy_ddb *d, const char *table, const cJSON *key, bool consistent,
                           eddy_ddb_item_cb cb, void *ud, struct eddy_aws_call **handle,
                           struct eddy_error *err)
{
    return item_call(d, "GetItem", table, "Key", key, NULL, NULL, consistent, cb, ud, handle, err);
}

eddy_err eddy_ddb_put_item(struct eddy_ddb *d, const char *table, const cJSON *item,
                           const struct eddy_ddb_expr *expr, const char *return_values,
                           eddy_ddb_item_cb cb, void *ud, struct eddy_aws_call **handle,
                           struct eddy_error *err)
{
    return item_call(d, "PutItem", table, "Item", item, expr, return_values, false, cb, ud, handle,
                     err);
}

eddy_err eddy_ddb_update_item(struct eddy_ddb *d, const char *table, const cJSON *key,
                              const struct eddy_ddb_expr *expr, const char *return_values,
                              eddy_ddb_item_cb cb, void *ud, struct eddy_aws_call **handle,
                              struct eddy_error *err)
{
    if (expr == NULL || expr->update == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "DynamoDB UpdateItem: an update expression is "
                              "required");
    return item_call(d, "UpdateItem", table, "Key", key, expr, return_values, false, cb, ud, handle,
                     err);
}

eddy_err eddy_ddb_delete_item(struct eddy_ddb *d, const char *table, const cJSON *key,
                              const struct eddy_ddb_expr *expr, const char *return_values,
                              eddy_ddb_item_cb cb, void *ud, struct eddy_aws_call **handle,
                              struct eddy_error *err)
{
    return item_call(d, "DeleteItem", table, "Key", key, expr, return_values, false, cb, ud, handle,
                     err);
}

eddy_err eddy_ddb_probe(struct eddy_ddb *d, const char *table, uint32_t timeout_ms,
                        eddy_ddb_item_cb cb, void *ud, struct eddy_aws_call **handle,
                        struct eddy_error *err)
{
    if (d == NULL || table == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "DynamoDB probe: table and cb required");
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "TableName", table);
    EDDY_JW_KEY(&w, "Key");
    eddy_jw_open(&w, '{');
    static const char *const names[] = {"_pk", "_sk"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(names); i++) {
        eddy_jw_key(&w, names[i]);
        eddy_jw_open(&w, '{');
        EDDY_JW_KSTR(&w, "S", EDDY_DDB_PROBE_KEY);
        eddy_jw_close(&w, '}');
    }
    eddy_jw_close(&w, '}');
    eddy_jw_close(&w, '}');
    struct op *o = op_new(OP_ITEM, ud, NULL);
    o->cb.item = cb;
    struct eddy_aws_call_opts opts = {
        .timeout_ms = timeout_ms, .idempotent = true, .max_attempts = 1};
    return start_opts(d, "GetItem", &w, o, &opts, handle, err);
}

/* ---- BatchGetItem ---- */

void eddy_ddb_batch_get_result_cleanup(struct eddy_ddb_batch_get_result *r)
{
    cJSON_Delete(r->items);
    cJSON_Delete(r->unprocessed);
    r->items = r->unprocessed = NULL;
}

eddy_err eddy_ddb_batch_get(struct eddy_ddb *d, const char *table, const cJSON *const *keys,
                            size_t n, bool consistent, eddy_ddb_batch_get_cb cb, void *ud,
                            struct eddy_aws_call **handle, struct eddy_error *err)
{
    if (d == NULL || keys == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "DynamoDB BatchGetItem: keys and cb required");
    eddy_err rc = batch_check("BatchGetItem", table, n, EDDY_DDB_MAX_BATCH_GET, "keys", err);
    if (rc != EDDY_OK)
        return rc;
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    open_table(&w, table, '{');
    EDDY_JW_KEY(&w, "Keys");
    eddy_jw_open(&w, '[');
    for (size_t i = 0; i < n; i++)
        jw_tree(&w, NULL, keys[i]);
    eddy_jw_close(&w, ']');
    if (consistent) {
        EDDY_JW_KEY(&w, "ConsistentRead");
        eddy_jw_bool(&w, true);
    }
    close_table(&w, '}');
    struct op *o = op_new(OP_BATCH_GET, ud, table);
    o->cb.batch_get = cb;
    return start_read(d, "BatchGetItem", &w, o, handle, err);
}

/* ---- Query ---- */

void eddy_ddb_query_result_cleanup(struct eddy_ddb_query_result *r)
{
    cJSON_Delete(r->items);
    cJSON_Delete(r->last_key);
    r->items = r->last_key = NULL;
}

eddy_err eddy_ddb_query(struct eddy_ddb *d, const struct eddy_ddb_query_params *p,
                        eddy_ddb_query_cb cb, void *ud, struct eddy_aws_call **handle,
                        struct eddy_error *err)
{
    if (d == NULL || p == NULL || p->table == NULL || p->key_condition == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "DynamoDB Query: table, key condition and cb "
                              "required");
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KSTR(&w, "TableName", p->table);
    if (p->index)
        EDDY_JW_KSTR(&w, "IndexName", p->index);
    EDDY_JW_KSTR(&w, "KeyConditionExpression", p->key_condition);
    if (p->filter)
        EDDY_JW_KSTR(&w, "FilterExpression", p->filter);
    if (p->projection)
        EDDY_JW_KSTR(&w, "ProjectionExpression", p->projection);
    jw_tree(&w, "ExpressionAttributeNames", p->names);
    jw_tree(&w, "ExpressionAttributeValues", p->values);
    if (p->consistent) {
        EDDY_JW_KEY(&w, "ConsistentRead");
        eddy_jw_bool(&w, true);
    }
    if (p->backward) {
        EDDY_JW_KEY(&w, "ScanIndexForward");
        eddy_jw_bool(&w, false);
    }
    if (p->limit > 0)
        EDDY_JW_KINT(&w, "Limit", p->limit);
    jw_tree(&w, "ExclusiveStartKey", p->start_key);
    eddy_jw_close(&w, '}');
    struct op *o = op_new(OP_QUERY, ud, NULL);
    o->cb.query = cb;
    return start_read(d, "Query", &w, o, handle, err);
}

/* ---- TransactWriteItems ---- */

void eddy_ddb_txn_result_cleanup(struct eddy_ddb_txn_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->reasons[i].code);
        free(r->reasons[i].message);
        cJSON_Delete(r->reasons[i].item);
    }
    free(r->reasons);
    r->reasons = NULL;
    r->n = 0;
}

/* The kinds' keys, as written (quoted, with the colon). */
#define TXN_KEY(lit)                                                                               \
    {                                                                                              \
        "\"" lit "\":", sizeof("\"" lit "\":") - 1                                                 \
    }
static const struct eddy_str txn_keys[] = {TXN_KEY("Put"), TXN_KEY("Update"), TXN_KEY("Delete"),
                                           TXN_KEY("ConditionCheck")};

/* The table name of the items before, as written: items of one table (as
 * a rule, all of a call's) copy it rather than escape it again. */
struct txn_table {
    const char *table;
    size_t len; /* 0: none kept */
    char text[256];
};

/* The bytes of a transaction item around its text, as a rule: the kind, the
 * table, a condition (the request is reserved with this much per item). */
#define TXN_ITEM_ROOM 160

static eddy_err txn_item(struct eddy_jw *w, const struct eddy_ddb_txn_item *it, size_t i,
                         struct txn_table *tt, struct eddy_error *err)
{
    if ((unsigned)it->kind > EDDY_DDB_CHECK || it->table == NULL ||
        (it->item_json == NULL && !cJSON_IsObject(it->item)))
        return eddy_error_set(err, EDDY_EINVAL,
                              "DynamoDB TransactWriteItems: item %zu needs a kind, a table and "
                              "an item or key",
                              i);
    if (it->kind == EDDY_DDB_UPDATE && it->expr.update == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "DynamoDB TransactWriteItems: item %zu (Update) has no update "
                              "expression",
                              i);
    if (it->kind == EDDY_DDB_CHECK && it->expr.condition == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "DynamoDB TransactWriteItems: item %zu (ConditionCheck) has no "
                              "condition",
                              i);
    const char *name = it->kind == EDDY_DDB_PUT ? "Item" : "Key";
    eddy_jw_open(w, '{');
    eddy_jw_key_raw(w, txn_keys[it->kind].ptr, txn_keys[it->kind].len);
    eddy_jw_open(w, '{');
    EDDY_JW_KEY(w, "TableName");
    if (tt && tt->len && tt->table == it->table) {
        eddy_jw_raw(w, tt->text, tt->len);
    } else {
        size_t at = w->buf.len;
        eddy_jw_cstr(w, it->table);
        size_t len = w->buf.len - at;
        if (tt && w->rc == EDDY_OK && len <= sizeof tt->text) {
            memcpy(tt->text, w->buf.ptr + at, len);
            tt->table = it->table;
            tt->len = len;
        }
    }
    if (it->item_json) {
        if (it->kind == EDDY_DDB_PUT)
            EDDY_JW_KEY(w, "Item");
        else
            EDDY_JW_KEY(w, "Key");
        eddy_jw_raw(w, it->item_json,
                    it->item_json_len ? it->item_json_len : strlen(it->item_json));
    } else {
        jw_tree(w, name, it->item);
    }
    jw_expr(w, &it->expr);
    eddy_jw_close(w, '}');
    eddy_jw_close(w, '}');
    return EDDY_OK;
}

size_t eddy_ddb_txn_item_overhead(const struct eddy_ddb_txn_item *it)
{
    struct eddy_ddb_txn_item shape = *it;
    shape.item = NULL;
    shape.item_json = "{}";
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    size_t n =
        txn_item(&w, &shape, 0, NULL, NULL) == EDDY_OK && w.rc == EDDY_OK ? w.buf.len - 1 : 0;
    eddy_jw_cleanup(&w);
    return n; /* - 2 for "{}", + 1 for the comma */
}

size_t eddy_ddb_txn_envelope_len(const char *client_token)
{
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    eddy_jw_open(&w, '{');
    EDDY_JW_KEY(&w, "TransactItems");
    eddy_jw_open(&w, '[');
    eddy_jw_close(&w, ']');
    if (client_token)
        EDDY_JW_KSTR(&w, "ClientRequestToken", client_token);
    eddy_jw_close(&w, '}');
    size_t n = w.buf.len;
    eddy_jw_cleanup(&w);
    return n;
}

/* The body is written straight into one buffer: items given as text (the
 * commit path's records) are copied once, not parsed or printed. */
eddy_err eddy_ddb_transact_write(struct eddy_ddb *d, const struct eddy_ddb_txn_item *items,
                                 size_t n, const char *client_token, eddy_ddb_txn_cb cb, void *ud,
                                 struct eddy_aws_call **handle, struct eddy_error *err)
{
    if (d == NULL || items == NULL || n == 0 || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "DynamoDB TransactWriteItems: items and cb "
                              "required");
    if (n > EDDY_DDB_MAX_TRANSACT_ITEMS)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "DynamoDB TransactWriteItems takes at most %d items (got %zu)",
                              EDDY_DDB_MAX_TRANSACT_ITEMS, n);
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    /* room for the items' texts whose lengths are known, and a little per
     * item: the body (up to 4 MB) is not grown by doubling */
    size_t room = 64;
    for (size_t i = 0; i < n; i++)
        room += items[i].item_json_len + TXN_ITEM_ROOM;
    w.rc = eddy_buf_reserve(
        &w.buf, room < EDDY_DDB_MAX_TRANSACT_BYTES ? room : EDDY_DDB_MAX_TRANSACT_BYTES);
    struct txn_table tt = {0};
    eddy_jw_open(&w, '{');
    EDDY_JW_KEY(&w, "TransactItems");
    eddy_jw_open(&w, '[');
    for (size_t i = 0; i < n; i++) {
        eddy_err rc = txn_item(&w, &items[i], i, &tt, err);
        if (rc) {
            eddy_jw_cleanup(&w);
            return rc;
        }
    }
    eddy_jw_close(&w, ']');
    if (client_token)
        EDDY_JW_KSTR(&w, "ClientRequestToken", client_token);
    eddy_jw_close(&w, '}');
    if (w.rc != EDDY_OK || w.buf.len > EDDY_DDB_MAX_TRANSACT_BYTES) {
        size_t len = w.buf.len;
        eddy_jw_cleanup(&w);
        return eddy_error_set(err, EDDY_ELIMIT,
                              "DynamoDB TransactWriteItems request is %zu bytes, over the %u byte "
                              "limit",
                              len, EDDY_DDB_MAX_TRANSACT_BYTES);
    }
    struct op *o = op_new(OP_TXN, ud, NULL);
    o->cb.txn = cb;
    o->n = n;
    /* without a token a repeat after a timeout would meet its own writes; the
     * conditions then fail and the caller reloads, which is safe but slower */
    struct eddy_aws_call_opts opts = {.idempotent = client_token != NULL};
    eddy_err rc =
        eddy_aws_call(&d->client, "TransactWriteItems", &w.buf, &opts, on_reply, o, handle, err);
    if (rc)
        free(o);
    return rc;
}

static void txn_parse(const cJSON *json, size_t n, struct eddy_ddb_txn_result *r)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(json, "CancellationReasons");
    if (!cJSON_IsArray(arr))
        return; /* n stays 0: nothing is known item by item */
    r->reasons = eddy_calloc(n, sizeof *r->reasons);
    r->n = n;
    const cJSON *e = arr->child;
    for (size_t i = 0; i < n; i++, e = e ? e->next : NULL) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "Code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "Message");
        r->reasons[i].code = eddy_strdup(cJSON_IsString(code) ? code->valuestring
                                         : e                  ? "None"
                                                              : "Unknown");
        r->reasons[i].message = eddy_strdup(cJSON_IsString(msg) ? msg->valuestring : "");
        if (cJSON_IsObject(e))
            r->reasons[i].item = copy(cJSON_GetObjectItemCaseSensitive(e, "Item"));
    }
}

/* ---- BatchWriteItem ---- */

void eddy_ddb_batch_write_result_cleanup(struct eddy_ddb_batch_write_result *r)
{
    cJSON_Delete(r->unprocessed);
    r->unprocessed = NULL;
    r->nunprocessed = 0;
}

eddy_err eddy_ddb_batch_write(struct eddy_ddb *d, const char *table,
                              const struct eddy_ddb_write_req *reqs, size_t n,
                              eddy_ddb_batch_write_cb cb, void *ud, struct eddy_aws_call **handle,
                              struct eddy_error *err)
{
    if (d == NULL || reqs == NULL || cb == NULL)
        return eddy_error_set(err, EDDY_EINVAL,
                              "DynamoDB BatchWriteItem: requests and cb required");
    eddy_err rc =
        batch_check("BatchWriteItem", table, n, EDDY_DDB_MAX_BATCH_WRITE, "requests", err);
    if (rc != EDDY_OK)
        return rc;
    struct eddy_jw w;
    eddy_jw_init(&w, 0);
    open_table(&w, table, '[');
    for (size_t i = 0; i < n; i++) {
        bool put = reqs[i].put_item != NULL;
        int kinds = put + (reqs[i].delete_key != NULL) + (reqs[i].delete_key_json != NULL);
        if (kinds != 1) {
            eddy_jw_cleanup(&w);
            return eddy_error_set(err, EDDY_EINVAL,
                                  "DynamoDB BatchWriteItem: request %zu needs exactly one of a "
                                  "put item and a delete key",
                                  i);
        }
        eddy_jw_open(&w, '{');
        eddy_jw_key(&w, put ? "PutRequest" : "DeleteRequest");
        eddy_jw_open(&w, '{');
        if (reqs[i].delete_key_json) {
            EDDY_JW_KEY(&w, "Key");
            eddy_jw_raw(&w, reqs[i].delete_key_json, reqs[i].delete_key_len);
        } else {
            jw_tree(&w, put ? "Item" : "Key", put ? reqs[i].put_item : reqs[i].delete_key);
        }
        eddy_jw_close(&w, '}');
        eddy_jw_close(&w, '}');
    }
    close_table(&w, ']');
    struct op *o = op_new(OP_BATCH_WRITE, ud, table);
    o->cb.batch_write = cb;
    return start(d, "BatchWriteItem", &w, o, true, handle, err);
}

/* ---- replies ---- */

/* json[a][b] (or json[a]) copied out of the reply, or NULL. */
static cJSON *copy2(const cJSON *json, const char *a, const char *b)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(json, a);
    return copy(b ? cJSON_GetObjectItemCaseSensitive(p, b) : p);
}

static cJSON *nonempty_or_null(cJSON *arr)
{
    if (arr && (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

static void deliver_reads(struct op *o, eddy_err err, const cJSON *json,
                          const struct eddy_aws_reply *r)
{
    if (o->kind == OP_BATCH_GET) {
        struct eddy_ddb_batch_get_result res = {0};
        if (json && err == EDDY_OK) {
            res.items = copy2(json, "Responses", o->table);
            if (!cJSON_IsArray(res.items)) {
                cJSON_Delete(res.items);
                res.items = cJSON_CreateArray();
            }
            const cJSON *uk = cJSON_GetObjectItemCaseSensitive(json, "UnprocessedKeys");
            res.unprocessed = nonempty_or_null(copy2(uk, o->table, "Keys"));
        }
        o->cb.batch_get(err, &res, r, o->ud);
        return;
    }
    struct eddy_ddb_query_result res = {0};
    if (json && err == EDDY_OK) {
        res.items = copy2(json, "Items", NULL);
        if (!cJSON_IsArray(res.items)) {
            cJSON_Delete(res.items);
            res.items = cJSON_CreateArray();
        }
        res.last_key = copy2(json, "LastEvaluatedKey", NULL);
    }
    o->cb.query(err, &res, r, o->ud);
}

static void on_reply(eddy_err err, const struct eddy_aws_reply *reply, void *ud)
{
    struct op *o = ud;
    const cJSON *json = reply->json; /* in the call's arena: results are copies */
    switch (o->kind) {
    case OP_ITEM: {
        struct eddy_ddb_item_result res = {0};
        if (json && err == EDDY_OK)
            res.item = copy2(
                json, cJSON_GetObjectItemCaseSensitive(json, "Item") ? "Item" : "Attributes", NULL);
        else if (json && err == EDDY_ECONDITION)
            res.item = copy2(json, "Item", NULL);
        o->cb.item(err, &res, reply, o->ud);
        break;
    }
    case OP_BATCH_GET:
    case OP_QUERY:
        deliver_reads(o, err, json, reply);
        break;
    case OP_TXN: {
        struct eddy_ddb_txn_result res = {0};
        if (json && err == EDDY_ETXN_CANCELED)
            txn_parse(json, o->n, &res);
        o->cb.txn(err, &res, reply, o->ud);
        break;
    }
    case OP_BATCH_WRITE: {
        struct eddy_ddb_batch_write_result res = {0};
        if (json && err == EDDY_OK) {
            const cJSON *ui = cJSON_GetObjectItemCaseSensitive(json, "UnprocessedItems");
            res.unprocessed = nonempty_or_null(copy2(ui, o->table, NULL));
            res.nunprocessed = res.unprocessed ? (size_t)cJSON_GetArraySize(res.unprocessed) : 0;
        }
        o->cb.batch_write(err, &res, reply, o->ud);
        break;
    }
    }
    free(o);
}
