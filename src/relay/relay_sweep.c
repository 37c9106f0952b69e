/*
 * relay_sweep.c - the sweeps: one per held shard at a time, on the shard's
 * timer, Querying "#outbox/<shard>" for the rows old enough that no live
 * process publishes them, fairly across the shard's entities (see relay.h
 * for the intervals).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "relay/relay_int.h"
#include "svc/dynamodb.h"

static void sweep_start(struct relay_shard *s);

bool relay_shard_holds(const struct relay_shard *s)
{
    const struct eddy_relay *r = s->r;
    if (r->stopping || s->surrender)
        return false;
    return r->lease == NULL ? r->started : eddy_lease_held(r->lease, s->index);
}

/* The shard is ours to sweep from now on, held at this moment or not. */
static bool shard_kept(const struct relay_shard *s)
{
    const struct eddy_relay *r = s->r;
    if (r->stopping || s->surrender)
        return false;
    return r->lease == NULL ? r->started : s->leased;
}

bool eddy_relay_holds(const struct eddy_relay *r, uint32_t shard)
{
    return shard < r->cfg.shards && relay_shard_holds(&r->shards[shard]);
}

/* Only a lost or given back lease ends a shard's sweeps: one that ran out
 * locally while its renewal is on its way back is looked at again soon
 * (a renewal that succeeds brings no event). */
static void on_sweep_timer(uv_timer_t *t)
{
    struct relay_shard *s = eddy_container_of(t, struct relay_shard, timer);
    if (s->sweeping) /* its end schedules the next */
        return;
    if (relay_shard_holds(s))
        sweep_start(s);
    else if (shard_kept(s))
        relay_sweep_schedule(s, s->r->cfg.poll_ms);
}

void relay_sweep_schedule(struct relay_shard *s, uint64_t ms)
{
    uv_timer_start(&s->timer, on_sweep_timer, ms, 0);
}

void eddy_relay_sweep(struct eddy_relay *r, uint32_t shard)
{
    if (r && shard < r->cfg.shards && r->started && !r->closing)
        relay_sweep_schedule(&r->shards[shard], 0);
}

static void sweep_end(struct relay_shard *s, bool more)
{
    struct eddy_relay *r = s->r;
    s->sweeping = false;
    r->sweeps--;
    int64_t now = eddy_clock_unix_ms(r->clock);
    s->lag_ms = s->oldest_ms > 0 && now > s->oldest_ms ? now - s->oldest_ms : 0;
    if (r->metrics && s->oldest_ms > 0)
        eddy_metrics_observe(r->metrics, EDDY_LATENCY_outbox_lag, s->lag_ms * 1000);
    if (!more) { /* else the next sweep goes on from where this one stopped */
        free(s->after);
        s->after = NULL;
    }
    free(s->ent_key);
    s->ent_key = NULL;
    if (r->stopping) {
        relay_pump(r);
        relay_check_stopped(r);
        return;
    }
    if (s->surrender) {
        eddy_lease_give_back(r->lease, s->index);
        relay_pump(r);
        return;
    }
    uint64_t next;
    if (more || s->taken > 0 || s->full) {
        s->interval_ms = r->cfg.poll_ms;
        next = r->cfg.poll_ms;
    } else if (s->young_ms > 0) {
        /* another process's rows: look again once they are old, but no
         * sooner than the interval, which keeps growing: under load the
         * other processes always have young rows, and they publish them */
        int64_t due = s->young_ms + (int64_t)r->cfg.grace_ms - now + 1;
        next = due > (int64_t)r->cfg.sweep_max_ms ? r->cfg.sweep_max_ms
               : due < (int64_t)s->interval_ms    ? s->interval_ms
                                                  : (uint64_t)due;
        s->interval_ms =
            s->interval_ms * 2 > r->cfg.sweep_max_ms ? r->cfg.sweep_max_ms : s->interval_ms * 2;
    } else {
        next = s->interval_ms;
        s->interval_ms =
            s->interval_ms * 2 > r->cfg.sweep_max_ms ? r->cfg.sweep_max_ms : s->interval_ms * 2;
    }
    if (shard_kept(s))
        relay_sweep_schedule(s, next);
    relay_pump(r);
}

/*
 * Past an entity: its rows are "<ns>/<id>/<seq:020>/<idx:04>", so this key
 * sorts after all of them. (An entity whose id is this one's followed by
 * '/' and a digit sorts among them and is passed over while this one has a
 * backlog.)
 */
static char *past_entity(const char *sk)
{
    const char *p = sk + strlen(sk);
    int slashes = 0;
    while (p > sk && slashes < 2)
        if (*--p == '/')
            slashes++;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_put(&b, sk, (size_t)(p - sk));
    eddy_buf_puts(&b, "/99999999999999999999/9999");
    return eddy_buf_take(&b, NULL);
}

/* The entity part of a row's sort key (without /<seq>/<idx>). */
static size_t entity_len(const char *sk)
{
    const char *p = sk + strlen(sk);
    int slashes = 0;
    while (p > sk && slashes < 2)
        if (*--p == '/')
            slashes++;
    return (size_t)(p - sk);
}

/* This process holds the row of sort key sk: its entity's lane (keyed by
 * the sort key's entity part, "<ns>/<id>") has its (seq, idx). */
static bool held_sk(const struct eddy_relay *r, const char *sk, size_t elen)
{
    const struct lane *l = eddy_map_get(&r->lanes, (struct eddy_str){sk, elen});
    if (l == NULL || sk[elen] != '/')
        return false;
    struct entry probe = {0};
    char *end = NULL;
    probe.o.seq = strtoll(sk + elen + 1, &end, 10);
    if (end == NULL || *end != '/')
        return false;
    probe.o.idx = strtoll(end + 1, NULL, 10);
    return relay_lane_has(l, &probe);
}

/* One row of a sweep page: take it when it is old enough and not held. */
static void sweep_row(struct relay_shard *s, cJSON *item, int64_t now)
{
    struct eddy_relay *r = s->r;
    const cJSON *skv =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, "_sk"), "S");
    if (!cJSON_IsString(skv)) {
        cJSON_Delete(item);
        return;
    }
    const char *sk = skv->valuestring;
    size_t elen = entity_len(sk);
    if (s->ent_key && strlen(s->ent_key) == elen && strncmp(s->ent_key, sk, elen) == 0) {
        s->ent_rows++;
    } else {
        free(s->ent_key);
        s->ent_key = eddy_strndup(sk, elen);
        s->ent_rows = 1;
    }
    void *gone = eddy_map_get(&r->gone, eddy_str_c(sk));
    if (gone && (uint64_t)(uintptr_t)gone - 1 >= s->sent_at) {
        cJSON_Delete(item); /* published and deleted while this page was read */
        return;
    }
    int64_t tms = relay_item_n(item, "_tms");
    int64_t commit_ms = tms > 0 ? tms : relay_item_n(item, "_ts") * 1000;
    if (s->oldest_ms == 0 || commit_ms < s->oldest_ms)
        s->oldest_ms = commit_ms;
    if (held_sk(r, sk, elen)) { /* ours, in hand: neither taken nor waited for */
        cJSON_Delete(item);
        return;
    }
    if (commit_ms > now - (int64_t)r->cfg.grace_ms) {
        if (s->young_ms == 0 || commit_ms < s->young_ms)
            s->young_ms = commit_ms;
        cJSON_Delete(item);
        return;
    }
    if (r->held >= r->cfg.held_max) {
        s->full = true; /* its entity's later rows wait with it (on_sweep_page) */
        cJSON_Delete(item);
        return;
    }
    struct entry *e = relay_entry_new(r, item);
    if (e && relay_hold(r, e)) {
        s->taken++;
        r->st.swept++;
        relay_left_taken(r, e);
    }
}

static void sweep_query(struct relay_shard *s);

static void on_sweep_page(eddy_err rc, struct eddy_ddb_query_result *res,
                          const struct eddy_aws_reply *reply, void *ud)
{
    struct relay_shard *s = ud;
    struct eddy_relay *r = s->r;
    if (rc != EDDY_OK || r->stopping) {
        s->sent_at = 0;
        if (rc != EDDY_OK)
            EDDY_WARN("relay: shard %" PRIu32 ": sweeping the outbox: %s", s->index,
                      eddy_error_text(reply->error));
        eddy_ddb_query_result_cleanup(res);
        sweep_end(s, false);
        return;
    }
    int64_t now = eddy_clock_unix_ms(r->clock);
    char *last = NULL;
    cJSON *it;
    while ((it = cJSON_DetachItemViaPointer(res->items, res->items->child)) != NULL) {
        s->read++;
        const cJSON *skv =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "_sk"), "S");
        if (cJSON_IsString(skv)) {
            free(last);
            last = eddy_strdup(skv->valuestring);
        }
        if (s->full)
            cJSON_Delete(it);
        else
            sweep_row(s, it, now);
    }
    bool more = res->last_key != NULL && last != NULL;
    eddy_ddb_query_result_cleanup(res);
    s->sent_at = 0;
    relay_prune_gone(r);
    /* A row left for held_max ends the round: one of its entity's later
     * rows taken once there is room (on a later page, or in the next round
     * going on from here) would leave before it. The next round starts
     * over. */
    if (!more || r->stopping || !relay_shard_holds(s) || s->full) {
        free(last);
        sweep_end(s, false);
        return;
    }
    free(s->after);
    /* an entity read a page's worth of: go past it (fairness) */
    s->after = s->ent_rows >= r->cfg.page_size ? past_entity(last) : eddy_strdup(last);
    if (s->ent_rows >= r->cfg.page_size)
        s->ent_rows = 0;
    free(last);
    if (s->read >= r->cfg.round_max) {
        sweep_end(s, true);
        return;
    }
    sweep_query(s);
}

static void sweep_query(struct relay_shard *s)
{
    struct eddy_relay *r = s->r;
    cJSON *names = cJSON_CreateObject();
    cJSON_AddStringToObject(names, "#pk", "_pk");
    cJSON *values = cJSON_CreateObject();
    cJSON_AddItemToObject(values, ":pk", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(values, ":pk"), "S", s->pk);
    if (s->after) {
        cJSON_AddStringToObject(names, "#sk", "_sk");
        cJSON_AddItemToObject(values, ":after", cJSON_CreateObject());
        cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(values, ":after"), "S", s->after);
    }
    struct eddy_ddb_query_params p = {
        .table = r->table,
        .key_condition = s->after ? "#pk = :pk AND #sk > :after" : "#pk = :pk",
        .names = names,
        .values = values,
        .consistent = true,
        .limit = (int)r->cfg.page_size,
    };
    struct eddy_error err = {0};
    r->st.queries++;
    s->sent_at = uv_now(r->loop);
    eddy_err rc = eddy_ddb_query(r->ddb, &p, on_sweep_page, s, NULL, &err);
    cJSON_Delete(names);
    cJSON_Delete(values);
    if (rc != EDDY_OK) {
        struct eddy_ddb_query_result none = {0};
        struct eddy_aws_reply reply = {.error = &err};
        on_sweep_page(rc, &none, &reply, s);
    }
}

static void sweep_start(struct relay_shard *s)
{
    struct eddy_relay *r = s->r;
    s->sweeping = true;
    r->sweeps++;
    s->read = s->taken = 0;
    s->young_ms = s->oldest_ms = 0;
    s->ent_rows = 0;
    s->full = false;
    r->st.sweeps++;
    sweep_query(s);
}
