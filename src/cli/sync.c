/*
 * sync.c - DynamoDB calls run to completion on the runtime's loop (see
 * sync.h).
 */
#include "cli/sync.h"

#include <stdbool.h>

#include "cli/runtime.h"

/* One call in flight: what its callback left. */
struct sync {
    bool done;
    eddy_err err;
    struct eddy_error detail;
    cJSON *item;     /* GetItem */
    cJSON *items;    /* Query: every page's items */
    cJSON *last_key; /* Query: where the next page starts, NULL after the last */
};

static void sync_done(struct sync *s, eddy_err err, const struct eddy_aws_reply *reply)
{
    s->err = err;
    if (err != EDDY_OK && reply && reply->error)
        s->detail = *reply->error;
    s->done = true;
}

static void got_item(eddy_err err, struct eddy_ddb_item_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct sync *s = ud;
    s->item = res->item;
    res->item = NULL;
    sync_done(s, err, reply);
}

static void got_page(eddy_err err, struct eddy_ddb_query_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct sync *s = ud;
    cJSON *item;
    while (res->items && (item = cJSON_DetachItemViaPointer(res->items, res->items->child)))
        cJSON_AddItemToArray(s->items, item);
    s->last_key = res->last_key;
    res->last_key = NULL;
    eddy_ddb_query_result_cleanup(res);
    sync_done(s, err, reply);
}

static void got_txn(eddy_err err, struct eddy_ddb_txn_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    eddy_ddb_txn_result_cleanup(res);
    sync_done(ud, err, reply);
}

/* Run the loop until the call started (started: what its start returned)
 * is done; the call's detail into err when it failed. */
static eddy_err sync_wait(struct eddy_runtime *rt, struct sync *s, eddy_err started,
                          struct eddy_error *err)
{
    if (started != EDDY_OK)
        return started;
    while (!s->done)
        uv_run(&rt->loop, UV_RUN_ONCE);
    if (s->err != EDDY_OK && err)
        *err = s->detail;
    return s->err;
}

eddy_err eddy_sync_get_item(struct eddy_runtime *rt, const char *table, const cJSON *key,
                            cJSON **item, struct eddy_error *err)
{
    struct sync s = {0};
    eddy_err rc = sync_wait(
        rt, &s, eddy_ddb_get_item(&rt->ddb, table, key, true, got_item, &s, NULL, err), err);
    if (rc != EDDY_OK) {
        cJSON_Delete(s.item);
        s.item = NULL;
    }
    *item = s.item;
    return rc;
}

eddy_err eddy_sync_query_partition(struct eddy_runtime *rt, const char *table, const char *pk,
                                   cJSON **items, struct eddy_error *err)
{
    cJSON *names = cJSON_CreateObject();
    cJSON_AddStringToObject(names, "#pk", "_pk");
    cJSON *values = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(values, ":pk"), "S", pk);
    struct sync s = {0};
    s.items = cJSON_CreateArray();
    eddy_err rc;
    do {
        cJSON *start = s.last_key;
        s.last_key = NULL;
        s.done = false;
        struct eddy_ddb_query_params q = {.table = table,
                                          .key_condition = "#pk = :pk",
                                          .names = names,
                                          .values = values,
                                          .consistent = true,
                                          .start_key = start};
        rc = sync_wait(rt, &s, eddy_ddb_query(&rt->ddb, &q, got_page, &s, NULL, err), err);
        cJSON_Delete(start);
    } while (rc == EDDY_OK && s.last_key);
    cJSON_Delete(s.last_key);
    cJSON_Delete(names);
    cJSON_Delete(values);
    if (rc != EDDY_OK) {
        cJSON_Delete(s.items);
        return rc;
    }
    *items = s.items;
    return EDDY_OK;
}

eddy_err eddy_sync_transact_write(struct eddy_runtime *rt, const struct eddy_ddb_txn_item *items,
                                  size_t n, struct eddy_error *err)
{
    struct sync s = {0};
    return sync_wait(
        rt, &s, eddy_ddb_transact_write(&rt->ddb, items, n, NULL, got_txn, &s, NULL, err), err);
}
