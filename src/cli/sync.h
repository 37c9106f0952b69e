/*
 * sync.h - DynamoDB calls run to completion, for the one-shot commands
 * (eddy get, history, replay, outbox): each starts its call and runs the
 * runtime's loop until the callback came.
 *
 * Each returns the call's error; err then holds its detail (the reply's,
 * or why the call could not start). Never from inside the loop: the
 * long-running commands are asynchronous.
 */
#ifndef EDDY_CLI_SYNC_H
#define EDDY_CLI_SYNC_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/err.h"
#include "svc/dynamodb.h"

struct eddy_runtime;

/* GetItem, consistent: *item is the item or NULL when there is none (the
 * caller frees it). */
EDDY_MUST_USE eddy_err eddy_sync_get_item(struct eddy_runtime *rt, const char *table,
                                          const cJSON *key, cJSON **item, struct eddy_error *err);
/* Every item of partition pk, all pages, consistent reads: *items is an
 * array the caller frees (set only on success). */
EDDY_MUST_USE eddy_err eddy_sync_query_partition(struct eddy_runtime *rt, const char *table,
                                                 const char *pk, cJSON **items,
                                                 struct eddy_error *err);
/* TransactWriteItems of items[0..n-1]. */
EDDY_MUST_USE eddy_err eddy_sync_transact_write(struct eddy_runtime *rt,
                                                const struct eddy_ddb_txn_item *items, size_t n,
                                                struct eddy_error *err);

#endif
