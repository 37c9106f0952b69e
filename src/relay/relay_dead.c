/*
 * relay_dead.c - dead entries: an entry refused for good (or too often) is
 * moved from the outbox to "#outbox-dead/<shard>" in one TransactWriteItems
 * (delete the row, put the dead row with the error and the attempts),
 * counted and logged; its entity's later entries then go on.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "aws/retry.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "relay/relay_int.h"
#include "svc/dynamodb.h"

struct move_call {
    struct eddy_relay *r;
    struct entry *e;
    cJSON *key, *dead;
};

static void dead_done(struct eddy_relay *r, struct entry *e)
{
    r->st.dead++;
    if (r->metrics)
        eddy_metrics_inc(r->metrics, EDDY_METRIC_publish_dead);
    struct eddy_log_fields f = {.entity = e->o.id, .event_id = e->o.event_id, .seq = e->o.seq};
    eddy_log(EDDY_LOG_ERROR, &f,
             "relay: outbox entry %s moved to #outbox-dead/%" PRIu32 " after %u refusals: %s; "
             "its entity's later entries go on",
             e->o.sk, e->shard, e->refusals, e->error ? e->error : "");
    relay_entry_remove(r, e);
}

static void on_move(eddy_err rc, struct eddy_ddb_txn_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct move_call *mc = ud;
    struct eddy_relay *r = mc->r;
    struct entry *e = mc->e;
    r->moves--;
    eddy_ddb_txn_result_cleanup(res);
    cJSON_Delete(mc->key);
    cJSON_Delete(mc->dead);
    free(mc);
    e->moving = false;
    if (rc == EDDY_OK) {
        relay_note_gone(r, e);
        dead_done(r, e);
    } else {
        EDDY_WARN("relay: moving outbox entry %s to the dead letters: %s", e->o.sk,
                  eddy_error_text(reply->error));
        e->failures++;
        e->ready_at =
            uv_now(r->loop) + eddy_backoff_full_jitter(&r->rng, e->failures - 1,
                                                       r->cfg.retry_base_ms, r->cfg.retry_cap_ms);
        if (r->stopping) /* left in the outbox */
            relay_lane_drop_rest(r, e->lane);
        else
            relay_lane_list(r, e->lane);
    }
    relay_pump(r);
    relay_check_stopped(r);
}

static cJSON *dead_item(struct eddy_relay *r, const struct entry *e)
{
    cJSON *dead = e->item ? cJSON_Duplicate(e->item, true)
                          : cJSON_ParseWithLength(e->text, e->text_len); /* as committed */
    if (dead == NULL)
        abort(); /* eddy's own rendering: cJSON fails only when out of memory */
    char *pk = eddy_record_outbox_dead_pk(e->shard);
    char n[32];
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "_pk");
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "error");
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "attempts");
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "_ts");
    cJSON_AddItemToObject(dead, "_pk", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(dead, "_pk"), "S", pk);
    cJSON_AddItemToObject(dead, "error", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(dead, "error"), "S",
                            e->error ? e->error : "");
    snprintf(n, sizeof n, "%u", e->refusals);
    cJSON_AddItemToObject(dead, "attempts", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(dead, "attempts"), "N", n);
    snprintf(n, sizeof n, "%" PRId64, eddy_clock_unix_ms(r->clock) / 1000);
    cJSON_AddItemToObject(dead, "_ts", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(dead, "_ts"), "N", n);
    free(pk);
    return dead;
}

/* Delete the row and put the dead one, in one transaction. */
void relay_move_start(struct eddy_relay *r, struct entry *e)
{
    struct move_call *mc = eddy_calloc(1, sizeof *mc);
    mc->r = r;
    mc->e = e;
    mc->key = relay_entry_key(e);
    mc->dead = dead_item(r, e);
    struct eddy_ddb_txn_item items[2] = {
        {.kind = EDDY_DDB_DELETE, .table = r->table, .item = mc->key},
        {.kind = EDDY_DDB_PUT, .table = r->table, .item = mc->dead},
    };
    struct eddy_error err = {0};
    e->moving = true;
    r->moves++;
    if (eddy_ddb_transact_write(r->ddb, items, 2, NULL, on_move, mc, NULL, &err) == EDDY_OK)
        return;
    struct eddy_ddb_txn_result none = {0};
    struct eddy_aws_reply reply = {.error = &err};
    on_move(err.code ? err.code : EDDY_EINVAL, &none, &reply, mc);
}
