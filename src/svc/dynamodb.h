/*
 * dynamodb.h - the DynamoDB calls eddy makes, with typed results.
 *
 * Items, keys and expression values are cJSON objects in DynamoDB's
 * attribute-value JSON ({"_pk":{"S":"..."}}); this module carries them and
 * never converts them. They are borrowed by the starts (printed into the
 * body, not copied). Results hand over copies of the parts of
 * the reply they name (the reply's own tree lives in an arena of the call,
 * freed as a whole after the callback).
 *
 * Limits are checked before the call (EDDY_ELIMIT naming the limit):
 * TransactWriteItems 100 items and 4 MB, BatchWriteItem 25 requests,
 * BatchGetItem 100 keys.
 *
 * Every callback gets a result it owns, to release with the matching
 * _cleanup (after errors too; a zeroed result is fine to clean). The starts
 * follow the async contract of awscall.h.
 */
#ifndef EDDY_SVC_DYNAMODB_H
#define EDDY_SVC_DYNAMODB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/awscall.h"

#define EDDY_DDB_MAX_TRANSACT_ITEMS 100
#define EDDY_DDB_MAX_TRANSACT_BYTES (4u << 20)
#define EDDY_DDB_MAX_BATCH_WRITE 25
#define EDDY_DDB_MAX_BATCH_GET 100

struct eddy_ddb {
    struct eddy_aws_client client;
};

EDDY_MUST_USE eddy_err eddy_ddb_init(struct eddy_ddb *d, struct eddy_aws *aws,
                                     const struct eddy_endpoint *ep, struct eddy_error *err);
void eddy_ddb_cleanup(struct eddy_ddb *d);

/* Expressions shared by the writes (all optional, borrowed). */
struct eddy_ddb_expr {
    const char *condition;   /* ConditionExpression */
    const char *update;      /* UpdateExpression (UpdateItem, transaction Update) */
    const cJSON *names;      /* ExpressionAttributeNames */
    const cJSON *values;     /* ExpressionAttributeValues */
    bool return_old_on_fail; /* ReturnValuesOnConditionCheckFailure ALL_OLD */
};

/* ---- single items: GetItem, PutItem, UpdateItem, DeleteItem ---- */

/* item: GetItem's Item (NULL when there is none); a write's Attributes
 * (with return_values); after EDDY_ECONDITION with return_old_on_fail, the
 * item as it was. */
struct eddy_ddb_item_result {
    cJSON *item;
};
void eddy_ddb_item_result_cleanup(struct eddy_ddb_item_result *r);

typedef void (*eddy_ddb_item_cb)(eddy_err err, struct eddy_ddb_item_result *res,
                                 const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_ddb_get_item(struct eddy_ddb *d, const char *table, const cJSON *key,
                                         bool consistent, eddy_ddb_item_cb cb, void *ud,
                                         struct eddy_aws_call **handle, struct eddy_error *err);
/* return_values: "ALL_OLD", "ALL_NEW", ... or NULL. */
EDDY_MUST_USE eddy_err eddy_ddb_put_item(struct eddy_ddb *d, const char *table, const cJSON *item,
                                         const struct eddy_ddb_expr *expr,
                                         const char *return_values, eddy_ddb_item_cb cb, void *ud,
                                         struct eddy_aws_call **handle, struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_ddb_update_item(struct eddy_ddb *d, const char *table, const cJSON *key,
                                            const struct eddy_ddb_expr *expr,
                                            const char *return_values, eddy_ddb_item_cb cb,
                                            void *ud, struct eddy_aws_call **handle,
                                            struct eddy_error *err);
EDDY_MUST_USE eddy_err eddy_ddb_delete_item(struct eddy_ddb *d, const char *table, const cJSON *key,
                                            const struct eddy_ddb_expr *expr,
                                            const char *return_values, eddy_ddb_item_cb cb,
                                            void *ud, struct eddy_aws_call **handle,
                                            struct eddy_error *err);

/*
 * Whether the table answers now: one GetItem of a key no record uses
 * (_pk = _sk = EDDY_DDB_PROBE_KEY), a single attempt with no retries, each
 * attempt bounded by timeout_ms (0: the transport's default). The callback's
 * err says how the store is (EDDY_OK: it answered). The worker's circuit
 * breaker probes with it.
 */
#define EDDY_DDB_PROBE_KEY "#probe"
EDDY_MUST_USE eddy_err eddy_ddb_probe(struct eddy_ddb *d, const char *table, uint32_t timeout_ms,
                                      eddy_ddb_item_cb cb, void *ud, struct eddy_aws_call **handle,
                                      struct eddy_error *err);

/* ---- BatchGetItem (one table) ---- */

struct eddy_ddb_batch_get_result {
    cJSON *items;       /* array of items found, in no particular order */
    cJSON *unprocessed; /* array of keys to ask again, or NULL */
};
void eddy_ddb_batch_get_result_cleanup(struct eddy_ddb_batch_get_result *r);

typedef void (*eddy_ddb_batch_get_cb)(eddy_err err, struct eddy_ddb_batch_get_result *res,
                                      const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_ddb_batch_get(struct eddy_ddb *d, const char *table,
                                          const cJSON *const *keys, size_t n, bool consistent,
                                          eddy_ddb_batch_get_cb cb, void *ud,
                                          struct eddy_aws_call **handle, struct eddy_error *err);

/* ---- Query ---- */

struct eddy_ddb_query_params {
    const char *table;
    const char *index;         /* IndexName or NULL */
    const char *key_condition; /* KeyConditionExpression */
    const char *filter;        /* FilterExpression or NULL */
    const char *projection;    /* ProjectionExpression or NULL */
    const cJSON *names;
    const cJSON *values;
    bool consistent;
    bool backward;          /* ScanIndexForward false */
    int limit;              /* 0: none */
    const cJSON *start_key; /* ExclusiveStartKey, e.g. the last page's last_key */
};

struct eddy_ddb_query_result {
    cJSON *items;    /* array */
    cJSON *last_key; /* LastEvaluatedKey: more pages follow; NULL at the end */
};
void eddy_ddb_query_result_cleanup(struct eddy_ddb_query_result *r);

typedef void (*eddy_ddb_query_cb)(eddy_err err, struct eddy_ddb_query_result *res,
                                  const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_ddb_query(struct eddy_ddb *d, const struct eddy_ddb_query_params *p,
                                      eddy_ddb_query_cb cb, void *ud, struct eddy_aws_call **handle,
                                      struct eddy_error *err);

/* ---- TransactWriteItems ---- */

enum eddy_ddb_txn_kind { EDDY_DDB_PUT, EDDY_DDB_UPDATE, EDDY_DDB_DELETE, EDDY_DDB_CHECK };

struct eddy_ddb_txn_item {
    enum eddy_ddb_txn_kind kind;
    const char *table;
    const cJSON *item; /* PUT: the item; the others: the key */
    struct eddy_ddb_expr expr;
    /* instead of item: the item or key as DynamoDB JSON text, sent as is */
    const char *item_json;
    size_t item_json_len; /* its length; 0: strlen(item_json) */
};

/* One per transaction item, in order: code "None" for items that did not
 * fail, else "ConditionalCheckFailed", "TransactionConflict",
 * "ThrottlingError", "ValidationError", ...; item with return_old_on_fail. */
struct eddy_ddb_cancel_reason {
    char *code;
    char *message;
    cJSON *item;
};

/* Filled after EDDY_ETXN_CANCELED (n = the number of items sent). */
struct eddy_ddb_txn_result {
    struct eddy_ddb_cancel_reason *reasons;
    size_t n;
};
void eddy_ddb_txn_result_cleanup(struct eddy_ddb_txn_result *r);

typedef void (*eddy_ddb_txn_cb)(eddy_err err, struct eddy_ddb_txn_result *res,
                                const struct eddy_aws_reply *reply, void *ud);

/* client_token: ClientRequestToken (makes the call idempotent), or NULL. */
EDDY_MUST_USE eddy_err eddy_ddb_transact_write(struct eddy_ddb *d,
                                               const struct eddy_ddb_txn_item *items, size_t n,
                                               const char *client_token, eddy_ddb_txn_cb cb,
                                               void *ud, struct eddy_aws_call **handle,
                                               struct eddy_error *err);

/*
 * The request eddy_ddb_transact_write sends is refused over
 * EDDY_DDB_MAX_TRANSACT_BYTES of JSON text. A caller that groups items can
 * stay under it without rendering the body twice: the body is at most
 * envelope_len(client_token) + the sum over its items of
 * txn_item_overhead(item) + strlen(item->item_json) (one byte over, the
 * first item's comma). The overhead is what txn_item writes around the
 * item's text, a comma included; it->item and it->item_json are not read.
 * 0 when it is not a valid item.
 */
size_t eddy_ddb_txn_item_overhead(const struct eddy_ddb_txn_item *it);
size_t eddy_ddb_txn_envelope_len(const char *client_token);

/* ---- BatchWriteItem (one table) ---- */

/* Exactly one of put_item, delete_key and delete_key_json. */
struct eddy_ddb_write_req {
    const cJSON *put_item;
    const cJSON *delete_key;
    /* The key as the JSON text of an object in DynamoDB's form, written as
     * it is (delete_key_len bytes): for a caller that has it written
     * already, without a tree per key. */
    const char *delete_key_json;
    size_t delete_key_len;
};

struct eddy_ddb_batch_write_result {
    /* UnprocessedItems for the table: an array of {"PutRequest":{"Item":..}}
     * / {"DeleteRequest":{"Key":..}}, or NULL when all were written */
    cJSON *unprocessed;
    size_t nunprocessed;
};
void eddy_ddb_batch_write_result_cleanup(struct eddy_ddb_batch_write_result *r);

typedef void (*eddy_ddb_batch_write_cb)(eddy_err err, struct eddy_ddb_batch_write_result *res,
                                        const struct eddy_aws_reply *reply, void *ud);

EDDY_MUST_USE eddy_err eddy_ddb_batch_write(struct eddy_ddb *d, const char *table,
                                            const struct eddy_ddb_write_req *reqs, size_t n,
                                            eddy_ddb_batch_write_cb cb, void *ud,
                                            struct eddy_aws_call **handle, struct eddy_error *err);

#endif
