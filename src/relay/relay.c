/*
 * relay.c - the outbox relay (see relay.h for what it guarantees): its
 * construction, the leases that give it shards to sweep, stopping and the
 * stats. How an entry flows through the other files: relay_int.h.
 *
 * It is not: the commit path (the processor renders the outbox rows and
 * refuses entries that could never be published), nor the lease protocol
 * (lease.c).
 */
#include "relay/relay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "relay/relay_int.h"

/* ---- construction ---- */

static char *default_owner(struct eddy_rng *rng)
{
    char host[256] = "eddy";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "eddy");
    host[sizeof host - 1] = '\0';
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_putf(&b, "%.200s-%ld-%08" PRIx32, host, (long)getpid(), (uint32_t)eddy_rng_next(rng));
    return eddy_buf_take(&b, NULL);
}

static void apply_defaults(struct eddy_relay_config *c)
{
    c->poll_ms = c->poll_ms ? c->poll_ms : 1000;
    c->sweep_max_ms = c->sweep_max_ms ? c->sweep_max_ms : 30000;
    if (c->sweep_max_ms < c->poll_ms)
        c->sweep_max_ms = c->poll_ms;
    c->attempts = c->attempts ? c->attempts : 10;
    c->page_size = c->page_size ? c->page_size : 100;
    c->round_max = c->round_max ? c->round_max : 1000;
    c->held_max = c->held_max ? c->held_max : 10000;
    c->inflight_max = c->inflight_max ? c->inflight_max : 8;
    c->linger_ms = c->linger_ms ? c->linger_ms : 50;
    c->retry_base_ms = c->retry_base_ms ? c->retry_base_ms : 100;
    c->retry_cap_ms = c->retry_cap_ms ? c->retry_cap_ms : 5000;
}

static char *dup_or_null(const char *s)
{
    return s ? eddy_strdup(s) : NULL;
}

static void relay_closed(struct eddy_closer *c)
{
    struct eddy_relay *r = eddy_container_of(c, struct eddy_relay, closer);
    EDDY_INFO("relay: stopped (%" PRIu64 " published, %" PRIu64 " dead)", r->st.published,
              r->st.dead);
}

static void relay_free(struct eddy_closer *c)
{
    struct eddy_relay *r = eddy_container_of(c, struct eddy_relay, closer);
    eddy_map_cleanup(&r->lanes, relay_lane_free);
    eddy_map_cleanup(&r->left, free);
    eddy_map_cleanup(&r->gone, NULL);
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        free(r->shards[i].pk);
        free(r->shards[i].after);
        free(r->shards[i].ent_key);
    }
    free(r->shards);
    free(r->table);
    free(r->ebus);
    free(r->source);
    free(r->owner);
    free(r);
}

struct eddy_relay *eddy_relay_new(uv_loop_t *loop, struct eddy_ddb *ddb, struct eddy_eb *eb,
                                  const struct eddy_relay_config *cfg,
                                  const struct eddy_clock *clock, struct eddy_metrics *metrics,
                                  struct eddy_error *err)
{
    if (!loop || !ddb || !cfg || !cfg->table || !cfg->table[0] ||
        (cfg->bus ? cfg->bus_client == NULL : eb == NULL)) {
        eddy_error_set(err, EDDY_EINVAL, "relay: loop, DynamoDB, a bus client and table needed");
        return NULL;
    }
    if (cfg->shards == 0 || cfg->shards > EDDY_LEASE_SHARDS_MAX) {
        eddy_error_set(err, EDDY_ECONFIG, "relay: outbox shards must be 1..%u (got %" PRIu32 ")",
                       EDDY_LEASE_SHARDS_MAX, cfg->shards);
        return NULL;
    }
    struct eddy_relay *r = eddy_calloc(1, sizeof *r);
    r->loop = loop;
    r->ddb = ddb;
    r->bus = cfg->bus ? cfg->bus : &eddy_relay_bus_classic;
    r->bus_client = cfg->bus ? cfg->bus_client : (void *)eb;
    r->clock = clock ? clock : eddy_clock_system();
    r->metrics = metrics;
    r->cfg = *cfg;
    apply_defaults(&r->cfg);
    eddy_rng_seed(&r->rng, cfg->seed ? cfg->seed
                                     : eddy_clock_mono_ms(r->clock) ^ ((uint64_t)getpid() << 32) ^
                                           (uint64_t)eddy_clock_unix_ms(r->clock));
    r->table = eddy_strdup(cfg->table);
    r->ebus = dup_or_null(cfg->event_bus);
    r->source = dup_or_null(cfg->event_source);
    r->owner = cfg->owner ? eddy_strdup(cfg->owner) : default_owner(&r->rng);
    r->cfg.table = r->table;
    r->cfg.event_bus = r->ebus;
    r->cfg.event_source = r->source;
    r->cfg.owner = r->owner;
    eddy_map_init(&r->lanes, eddy_rng_next(&r->rng));
    eddy_map_init(&r->left, eddy_rng_next(&r->rng));
    eddy_list_init(&r->ready);
    eddy_list_init(&r->backoff);
    eddy_list_init(&r->del);
    eddy_list_init(&r->out);
    r->joins = r->fresh = r->commits_ok = 1024;
    eddy_map_init(&r->gone, eddy_rng_next(&r->rng));
    r->shards = eddy_calloc(cfg->shards, sizeof *r->shards);
    for (uint32_t i = 0; i < cfg->shards; i++) {
        r->shards[i].r = r;
        r->shards[i].index = i;
        r->shards[i].pk = eddy_record_outbox_pk(i);
        r->shards[i].interval_ms = r->cfg.poll_ms;
    }
    eddy_closer_init(&r->closer, relay_closed, relay_free);
    return r;
}

const char *eddy_relay_owner(const struct eddy_relay *r)
{
    return r->owner;
}

/* ---- leases ---- */

static void on_lease(uint32_t shard, enum eddy_lease_event ev, void *ud)
{
    struct eddy_relay *r = ud;
    struct relay_shard *s = &r->shards[shard];
    switch (ev) {
    case EDDY_LEASE_ACQUIRED:
        s->surrender = false;
        s->leased = true;
        /* swept at once (a dead process's leftovers), then, while empty,
         * from a quarter of the longest interval on */
        s->interval_ms =
            r->cfg.sweep_max_ms / 4 > r->cfg.poll_ms ? r->cfg.sweep_max_ms / 4 : r->cfg.poll_ms;
        if (relay_shard_holds(s) && !s->sweeping)
            relay_sweep_schedule(s, 0);
        break;
    case EDDY_LEASE_SURRENDER:
        s->surrender = true;
        uv_timer_stop(&s->timer);
        if (!s->sweeping)
            eddy_lease_give_back(r->lease, shard);
        break;
    case EDDY_LEASE_LOST:
        s->leased = false;
        uv_timer_stop(&s->timer);
        break;
    }
}

eddy_err eddy_relay_start(struct eddy_relay *r)
{
    if (r->started || r->stopping)
        return EDDY_EINVAL;
    if (r->cfg.lease_ms) {
        struct eddy_lease_config lc = {.table = r->table,
                                       .shards = r->cfg.shards,
                                       .lease_ms = r->cfg.lease_ms,
                                       .owner = r->owner};
        struct eddy_error err = {0};
        r->lease = eddy_lease_new(r->loop, r->ddb, &lc, r->clock, on_lease, r, &err);
        if (r->lease == NULL) {
            EDDY_ERROR("relay: %s", eddy_error_text(&err));
            return err.code ? err.code : EDDY_EINVAL;
        }
    }
    r->started = true;
    uv_idle_init(r->loop, &r->flush);
    uv_timer_init(r->loop, &r->retry_timer);
    uv_timer_init(r->loop, &r->del_timer);
    uv_timer_init(r->loop, &r->stop_timer);
    uv_timer_init(r->loop, &r->linger_timer);
    for (uint32_t i = 0; i < r->cfg.shards; i++)
        uv_timer_init(r->loop, &r->shards[i].timer);
    if (r->lease)
        eddy_lease_start(r->lease);
    else
        for (uint32_t i = 0; i < r->cfg.shards; i++)
            relay_sweep_schedule(&r->shards[i], 0);
    EDDY_INFO("relay: started as %s (%" PRIu32 " shards, %s bus, grace %" PRIu32
              " ms, sweeps every %" PRIu32 "..%" PRIu32 " ms, lease %" PRIu32 " ms)",
              r->owner, r->cfg.shards, r->bus->name, r->cfg.grace_ms, r->cfg.poll_ms,
              r->cfg.sweep_max_ms, r->cfg.lease_ms);
    return EDDY_OK;
}

bool eddy_relay_lease_tick(struct eddy_relay *r)
{
    return r->lease && eddy_lease_tick(r->lease);
}

/* ---- stopping ---- */

static void close_all(struct eddy_relay *r)
{
    r->closing = true;
    eddy_closer_close(&r->closer, (uv_handle_t *)&r->flush);
    eddy_closer_close(&r->closer, (uv_handle_t *)&r->retry_timer);
    eddy_closer_close(&r->closer, (uv_handle_t *)&r->del_timer);
    eddy_closer_close(&r->closer, (uv_handle_t *)&r->stop_timer);
    eddy_closer_close(&r->closer, (uv_handle_t *)&r->linger_timer);
    for (uint32_t i = 0; i < r->cfg.shards; i++)
        eddy_closer_close(&r->closer, (uv_handle_t *)&r->shards[i].timer);
}

static void on_lease_stopped(void *ud)
{
    struct eddy_relay *r = ud;
    r->lease = NULL;
    close_all(r);
}

/* Entries waiting for a backoff are left in the outbox for a sweep. */
static void drop_backoff(struct eddy_relay *r)
{
    struct lane *l;
    while ((l = relay_list_pop(&r->backoff)) != NULL)
        relay_lane_drop_rest(r, l);
}

void relay_check_stopped(struct eddy_relay *r)
{
    if (!r->stopping || r->lease_stopping || r->closing)
        return;
    drop_backoff(r);
    if (!eddy_list_empty(&r->ready) || r->open || r->puts || r->moves || r->sweeps)
        return;
    if (r->del_queued && !uv_is_active((uv_handle_t *)&r->del_timer))
        relay_delete_send(r, true);
    if (r->del_queued || r->deletes)
        return;
    uv_timer_stop(&r->retry_timer);
    if (r->lease) {
        r->lease_stopping = true;
        eddy_lease_close(r->lease, on_lease_stopped, r);
    } else {
        close_all(r);
    }
}

static void on_stop_timer(uv_timer_t *t)
{
    struct eddy_relay *r = eddy_container_of(t, struct eddy_relay, stop_timer);
    relay_pump(r);
    relay_check_stopped(r);
}

void eddy_relay_close(struct eddy_relay *r, eddy_close_cb cb, void *ud)
{
    if (r == NULL || !eddy_closer_begin(&r->closer, cb, ud))
        return;
    r->stopping = true;
    if (!r->started) { /* no handles yet: one, so that cb comes from the loop */
        r->started = true;
        uv_timer_init(r->loop, &r->stop_timer);
        r->closing = true;
        eddy_closer_close(&r->closer, (uv_handle_t *)&r->stop_timer);
        return;
    }
    for (uint32_t i = 0; i < r->cfg.shards; i++)
        uv_timer_stop(&r->shards[i].timer);
    /* Continue from the loop, never inside this call. */
    uv_timer_start(&r->stop_timer, on_stop_timer, 0, 0);
}

/* ---- stats ---- */

void eddy_relay_stats(const struct eddy_relay *r, struct eddy_relay_stats *out)
{
    *out = r->st;
    out->shards_held = 0;
    out->lag_ms = 0;
    out->held = (uint32_t)r->held;
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        out->shards_held += eddy_relay_holds(r, i);
        if (r->shards[i].lag_ms > out->lag_ms)
            out->lag_ms = r->shards[i].lag_ms;
    }
}

int64_t eddy_relay_shard_lag_ms(const struct eddy_relay *r, uint32_t shard)
{
    return shard < r->cfg.shards ? r->shards[shard].lag_ms : 0;
}
