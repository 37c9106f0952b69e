/*
 * cmd_outbox.c - `eddy outbox`: look at the outbox and its dead letters,
 * and send dead entries back.
 *
 *   eddy outbox stats        one JSON line per shard:
 *                            {"shard":N,"entries":n,"stuck":n,"lag_ms":ms,"dead":n}
 *                            (stuck: older than EDDY_OUTBOX_GRACE, what the
 *                            sweeps are for; lag_ms: the oldest entry's age),
 *                            then the totals {"entries":..,"stuck":..,"dead":..}
 *   eddy outbox list         one JSON line per stuck or dead entry:
 *                            {"state":"stuck"|"dead","shard":N,"sk":..,"entity":..,
 *                             "seq":..,"idx":..,"type":..,"age_ms":..,
 *                             "error":..,"attempts":..} (error, attempts: dead only)
 *   eddy outbox retry [SK..] move dead entries (all, or those sort keys) back to
 *                            the outbox, one transaction each; a sweep
 *                            publishes them. Prints {"retried":n}
 *   eddy outbox drop SK..|all delete dead entries for good. Prints {"dropped":n}
 *
 * It reads every shard's partition with consistent Queries, so it costs one
 * call per page of 1 MB per shard: an operator's tool, not a probe to run
 * every second. Exit 0, 2 on bad usage, 3 when a call failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "cli/commands.h"
#include "cli/runtime.h"
#include "cli/sync.h"
#include "core/record.h"

static const char *get_s(const cJSON *item, const char *name)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, name), "S");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t get_n(const cJSON *item, const char *name)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, name), "N");
    return cJSON_IsString(v) ? strtoll(v->valuestring, NULL, 10) : 0;
}

static int64_t commit_ms(const cJSON *item)
{
    int64_t tms = get_n(item, "_tms");
    return tms > 0 ? tms : get_n(item, "_ts") * 1000;
}

struct outbox_cmd {
    struct eddy_runtime rt;
    const struct eddy_config *cfg;
    const char *table;
    uint32_t shards;
    int64_t now_ms, grace_ms;
    struct eddy_error err;
};

/* The rows of shard's outbox (dead: its dead letters). */
static eddy_err shard_rows(struct outbox_cmd *c, uint32_t shard, bool dead, cJSON **items)
{
    char *pk = dead ? eddy_record_outbox_dead_pk(shard) : eddy_record_outbox_pk(shard);
    eddy_err rc = eddy_sync_query_partition(&c->rt, c->table, pk, items, &c->err);
    free(pk);
    return rc;
}

static cJSON *entry_line(const char *state, uint32_t shard, const cJSON *it, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNumberToObject(o, "shard", shard);
    cJSON_AddStringToObject(o, "sk", get_s(it, "_sk") ? get_s(it, "_sk") : "");
    cJSON_AddStringToObject(o, "entity", get_s(it, "_id") ? get_s(it, "_id") : "");
    cJSON_AddNumberToObject(o, "seq", (double)get_n(it, "_seq"));
    cJSON_AddNumberToObject(o, "idx", (double)get_n(it, "_idx"));
    cJSON_AddStringToObject(o, "type", get_s(it, "DetailType") ? get_s(it, "DetailType") : "");
    cJSON_AddNumberToObject(o, "age_ms", (double)(now_ms - commit_ms(it)));
    if (strcmp(state, "dead") == 0) {
        cJSON_AddStringToObject(o, "error", get_s(it, "error") ? get_s(it, "error") : "");
        cJSON_AddNumberToObject(o, "attempts", (double)get_n(it, "attempts"));
    }
    return o;
}

static eddy_err run_stats(struct outbox_cmd *c, bool list)
{
    int64_t total = 0, stuck_total = 0, dead_total = 0;
    for (uint32_t shard = 0; shard < c->shards; shard++) {
        cJSON *rows = NULL, *dead = NULL;
        eddy_err rc = shard_rows(c, shard, false, &rows);
        if (rc == EDDY_OK)
            rc = shard_rows(c, shard, true, &dead);
        if (rc != EDDY_OK) {
            cJSON_Delete(rows);
            return rc;
        }
        int64_t oldest = 0, stuck = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, rows)
        {
            int64_t ms = commit_ms(it);
            oldest = oldest == 0 || ms < oldest ? ms : oldest;
            if (ms <= c->now_ms - c->grace_ms) {
                stuck++;
                if (list)
                    eddy_cli_print_json(entry_line("stuck", shard, it, c->now_ms));
            }
        }
        cJSON_ArrayForEach(it, dead)
        {
            if (list)
                eddy_cli_print_json(entry_line("dead", shard, it, c->now_ms));
        }
        int64_t n = cJSON_GetArraySize(rows), nd = cJSON_GetArraySize(dead);
        if (!list) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "shard", shard);
            cJSON_AddNumberToObject(o, "entries", (double)n);
            cJSON_AddNumberToObject(o, "stuck", (double)stuck);
            cJSON_AddNumberToObject(o, "lag_ms", oldest ? (double)(c->now_ms - oldest) : 0);
            cJSON_AddNumberToObject(o, "dead", (double)nd);
            eddy_cli_print_json(o);
        }
        total += n;
        stuck_total += stuck;
        dead_total += nd;
        cJSON_Delete(rows);
        cJSON_Delete(dead);
    }
    if (!list) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "entries", (double)total);
        cJSON_AddNumberToObject(o, "stuck", (double)stuck_total);
        cJSON_AddNumberToObject(o, "dead", (double)dead_total);
        eddy_cli_print_json(o);
    }
    return EDDY_OK;
}

static bool chosen(const struct eddy_config *cfg, const char *sk)
{
    if (cfg->nargs <= 1 || (cfg->nargs == 2 && strcmp(cfg->args[1], "all") == 0))
        return true;
    for (int i = 1; i < cfg->nargs; i++)
        if (sk && strcmp(cfg->args[i], sk) == 0)
            return true;
    return false;
}

/* The dead item as the outbox row it was: its own key, its commit second. */
static cJSON *revived(const cJSON *dead, uint32_t shard)
{
    cJSON *item = cJSON_Duplicate(dead, true);
    char *pk = eddy_record_outbox_pk(shard);
    char ts[32];
    snprintf(ts, sizeof ts, "%" PRId64, commit_ms(dead) / 1000);
    cJSON_DeleteItemFromObjectCaseSensitive(item, "_pk");
    cJSON_DeleteItemFromObjectCaseSensitive(item, "error");
    cJSON_DeleteItemFromObjectCaseSensitive(item, "attempts");
    cJSON_DeleteItemFromObjectCaseSensitive(item, "_ts");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(item, "_pk"), "S", pk);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(item, "_ts"), "N", ts);
    free(pk);
    return item;
}

/* Retry (back to the outbox) or drop one dead entry, in one transaction. */
static eddy_err move_one(struct outbox_cmd *c, const cJSON *dead, uint32_t shard, bool retry)
{
    cJSON *key = cJSON_CreateObject();
    cJSON_AddItemToObject(key, "_pk",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(dead, "_pk"), true));
    cJSON_AddItemToObject(key, "_sk",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(dead, "_sk"), true));
    cJSON *item = retry ? revived(dead, shard) : NULL;
    struct eddy_ddb_txn_item items[2] = {
        {.kind = EDDY_DDB_DELETE, .table = c->table, .item = key},
        {.kind = EDDY_DDB_PUT, .table = c->table, .item = item},
    };
    eddy_err rc = eddy_sync_transact_write(&c->rt, items, retry ? 2 : 1, &c->err);
    cJSON_Delete(key);
    cJSON_Delete(item);
    return rc;
}

static eddy_err run_move(struct outbox_cmd *c, bool retry)
{
    int64_t n = 0;
    for (uint32_t shard = 0; shard < c->shards; shard++) {
        cJSON *dead = NULL;
        eddy_err rc = shard_rows(c, shard, true, &dead);
        const cJSON *it;
        cJSON_ArrayForEach(it, dead)
        {
            if (rc != EDDY_OK || !chosen(c->cfg, get_s(it, "_sk")))
                continue;
            rc = move_one(c, it, shard, retry);
            n += rc == EDDY_OK;
        }
        cJSON_Delete(dead);
        if (rc != EDDY_OK)
            return rc;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, retry ? "retried" : "dropped", (double)n);
    eddy_cli_print_json(o);
    return EDDY_OK;
}

static int usage_error(const char *msg)
{
    fprintf(stderr,
            "eddy outbox: %s\n"
            "usage: eddy outbox stats | list | retry [SK...] | drop SK...|all\n",
            msg);
    return 2;
}

int eddy_cmd_outbox(struct eddy_cli_context *ctx)
{
    const struct eddy_config *cfg = ctx->cfg;
    if (cfg->nargs < 1)
        return usage_error("a subcommand is needed");
    const char *sub = cfg->args[0];
    bool stats = strcmp(sub, "stats") == 0, list = strcmp(sub, "list") == 0;
    bool retry = strcmp(sub, "retry") == 0, drop = strcmp(sub, "drop") == 0;
    if (!stats && !list && !retry && !drop)
        return usage_error("unknown subcommand");
    if ((stats || list) && cfg->nargs > 1)
        return usage_error("stats and list take no arguments");
    if (drop && cfg->nargs < 2)
        return usage_error("drop needs the sort keys of the entries, or all");
    struct outbox_cmd *c = eddy_calloc(1, sizeof *c);
    c->cfg = cfg;
    c->table = cfg->table_str;
    c->shards = (uint32_t)cfg->outbox_shards;
    c->now_ms = eddy_clock_unix_ms(eddy_clock_system());
    c->grace_ms = cfg->outbox_grace * 1000;
    if (eddy_runtime_init(&c->rt, ctx, &c->err) != EDDY_OK) {
        fprintf(stderr, "eddy outbox: %s\n", eddy_error_text(&c->err));
        int code = c->err.code == EDDY_ECONFIG ? 2 : 3;
        free(c);
        return code;
    }
    eddy_err rc = stats || list ? run_stats(c, list) : run_move(c, retry);
    int code = 0;
    if (rc != EDDY_OK) {
        fprintf(stderr, "eddy outbox %s: %s\n", sub, eddy_error_text(&c->err));
        code = 3;
    }
    if (eddy_runtime_cleanup(&c->rt) != 0)
        code = 3;
    free(c);
    return code;
}
