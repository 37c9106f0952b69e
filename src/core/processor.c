/*
 * processor.c - load, process, commit under optimistic concurrency, classify
 * and retry (see processor.h for the contract).
 *
 * A submitted batch gets a private struct entity that walks through lists:
 *
 *   queue ──(cache hit)──────────────▶ ready ──(step built, grouped)──▶ committing
 *     │                                  ▲                                 │
 *     └─(BatchGetItem, ≤100 keys)─▶ loading                                │
 *   waiting (backoff timer) ◀── conflict / throttling ─────────────────────┘
 *
 * The pump runs from a uv_idle handle, so every submission made during one
 * loop turn is loaded and committed together. The pump is the only place
 * that starts calls; callbacks only move entities between lists and ask for
 * a pump. This file holds the public API, the pump and the end of a batch;
 * the steps are built in proc_step.c, grouped and committed in
 * proc_commit.c, loaded in proc_load.c and cached in proc_cache.c
 * (proc_int.h shows what they share).
 *
 * The processor does not decode messages, keep lanes or delete messages:
 * that is the worker's.
 */
#include "core/processor.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/proc_int.h"

static void on_timer(uv_timer_t *h);

/* ---- finishing ---- */

/* Call the batch back; events still pending get EDDY_EV_ERROR. */
void proc_finish(struct entity *e, eddy_err err)
{
    struct eddy_processor *p = e->p;
    struct eddy_proc_batch *b = e->b;
    if (err != EDDY_OK && b->error.code == EDDY_OK)
        eddy_error_set(&b->error, err, "%s: %s", e->pk, eddy_err_msg(err));
    for (size_t i = 0; i < b->nevents; i++) {
        if (b->events[i].result == EDDY_EV_PENDING)
            proc_event_final(&b->events[i], EDDY_EV_ERROR, eddy_error_text(&b->error));
    }
    if (err == EDDY_OK) {
        proc_step_clear(e);
        proc_cache_put(p, e);
    }
    proc_drop_state(e);
    cJSON_Delete(e->fresh);
    e->fresh = NULL;
    e->b = NULL;
    eddy_list_insert_head(&p->free_ents, &e->link); /* see entity_get */
    b->priv = NULL;
    p->pending--;
    b->cb(b, err, b->ud);
    proc_maybe_closed(p);
}

/* ---- entities and groups, reused ---- */

/* An entity for batch b, from the free list when there is one: zeroed but
 * for what it allocated before (arrays, key, spare cache record). */
static struct entity *entity_get(struct eddy_processor *p, struct eddy_proc_batch *b)
{
    struct entity *e = entity_pop(&p->free_ents);
    if (e == NULL)
        e = eddy_calloc(1, sizeof *e);
    struct entity keep = *e;
    *e = (struct entity){.p = p,
                         .b = b,
                         .pk = keep.pk,
                         .pk_cap = keep.pk_cap,
                         .spare = keep.spare,
                         .items = keep.items,
                         .roles = keep.roles,
                         .role_ev = keep.role_ev,
                         .cap = keep.cap,
                         .sev = keep.sev,
                         .sev_cap = keep.sev_cap};
    eddy_list_init(&e->link);
    /* <ns>/<id>, as eddy_record_pk prints it */
    size_t ns = strlen(p->cfg.ns), id = strlen(b->entity_id);
    if (ns + 1 + id + 1 > e->pk_cap) {
        e->pk_cap = ns + 1 + id + 1;
        free(e->pk);
        e->pk = eddy_malloc(e->pk_cap);
    }
    memcpy(e->pk, p->cfg.ns, ns);
    e->pk[ns] = '/';
    memcpy(e->pk + ns + 1, b->entity_id, id + 1);
    return e;
}

static void entity_free(struct entity *e)
{
    proc_cache_spare_free(e);
    free(e->items);
    free(e->roles);
    free(e->role_ev);
    free(e->sev);
    free(e->pk);
    free(e);
}

struct group *proc_group_get(struct eddy_processor *p)
{
    struct eddy_list *q = eddy_list_take(&p->free_groups);
    struct group *g = q ? eddy_list_data(q, struct group, link) : eddy_calloc(1, sizeof *g);
    g->p = p;
    g->nents = g->nrefs = g->bytes = 0;
    eddy_list_init(&g->link);
    return g;
}

void proc_group_put(struct group *g)
{
    eddy_list_insert_head(&g->p->free_groups, &g->link);
}

static void free_lists(struct eddy_processor *p)
{
    struct entity *e;
    while ((e = entity_pop(&p->free_ents)) != NULL)
        entity_free(e);
    struct eddy_list *q;
    while ((q = eddy_list_take(&p->free_groups)) != NULL) {
        struct group *g = eddy_list_data(q, struct group, link);
        free(g->ents);
        free(g->refs);
        free(g->items);
        free(g);
    }
}

/* ---- the pump ---- */

static void cancel_list(struct eddy_list *l)
{
    struct entity *e;
    while ((e = entity_pop(l)) != NULL) {
        eddy_error_set(&e->b->error, EDDY_ECANCELED, "%s: the processor is closing", e->pk);
        proc_finish(e, EDDY_ECANCELED);
    }
}

/* Waiting entities whose backoff ended go back to the queue; arm the timer. */
static void wake_waiting(struct eddy_processor *p)
{
    uint64_t now = uv_now(p->loop), next = UINT64_MAX;
    struct eddy_list *q, *n;
    eddy_list_foreach_safe(q, n, &p->waiting)
    {
        struct entity *e = eddy_list_data(q, struct entity, link);
        if (e->due <= now) {
            eddy_list_remove(&e->link);
            eddy_list_insert_tail(&p->queue, &e->link);
        } else {
            next = e->due < next ? e->due : next;
        }
    }
    if (next != UINT64_MAX)
        uv_timer_start(&p->timer, on_timer, next - now, 0);
}

/* Queued entities: cache hits to ready, the others into *cold for loading. */
static void sort_queue(struct eddy_processor *p, struct eddy_list *cold)
{
    struct entity *e;
    while ((e = entity_pop(&p->queue)) != NULL) {
        if (e->state || proc_cache_take(p, e))
            eddy_list_insert_tail(&p->ready, &e->link);
        else
            eddy_list_insert_tail(cold, &e->link);
    }
}

static void pump(struct eddy_processor *p)
{
    if (eddy_closer_closing(&p->closer)) {
        cancel_list(&p->waiting);
        cancel_list(&p->queue);
        cancel_list(&p->ready);
        proc_commit_flush(p); /* built: it goes, as the transactions in flight do */
        proc_maybe_closed(p);
        return;
    }
    struct eddy_list cold;
    eddy_list_init(&cold);
    wake_waiting(p);
    sort_queue(p, &cold);
    proc_commit_ready(p); /* entities in hand first: their commits need no load */
    proc_load_cold(p, &cold);
}

static void on_idle(uv_idle_t *h)
{
    struct eddy_processor *p = eddy_container_of(h, struct eddy_processor, idle);
    uv_idle_stop(h);
    pump(p);
}

static void on_timer(uv_timer_t *h)
{
    struct eddy_processor *p = eddy_container_of(h, struct eddy_processor, timer);
    pump(p);
}

void proc_pump_soon(struct eddy_processor *p)
{
    if (!p->handles_closing)
        uv_idle_start(&p->idle, on_idle);
}

/* ---- the public API ---- */

static eddy_err check_config(const struct eddy_processor_config *cfg, struct eddy_error *err)
{
    if (cfg == NULL || cfg->table == NULL || cfg->machine == NULL)
        return eddy_error_set(err, EDDY_EINVAL, "processor: a table and a machine are required");
    if (cfg->outbox_shards == 0)
        return eddy_error_set(err, EDDY_EINVAL, "processor: outbox_shards must be at least 1");
    if (cfg->occ_retries < 0)
        return eddy_error_set(err, EDDY_EINVAL, "processor: occ_retries must not be negative");
    if (cfg->group_max_items > EDDY_RECORD_TXN_ITEMS_MAX)
        return eddy_error_set(err, EDDY_ELIMIT,
                              "processor: group_max_items %zu is over DynamoDB's %d-item "
                              "TransactWriteItems limit",
                              cfg->group_max_items, EDDY_RECORD_TXN_ITEMS_MAX);
    const char *ns = cfg->ns ? cfg->ns : cfg->machine->name;
    return eddy_record_check_namespace(ns, err);
}

/* The request text around the items group_start sends, as upper bounds: the
 * state put's :prev at its longest, a client token as long as group_start's. */
static void txn_shape(struct eddy_processor *p)
{
    p->over_state = eddy_commit_state_overhead(&p->commit);
    p->over_new = eddy_commit_new_overhead(&p->commit);
    char token[33];
    memset(token, 'f', 32);
    token[32] = '\0';
    p->envelope = eddy_ddb_txn_envelope_len(token);
}

/* Before the close callback: the states go while the machine is surely loaded. */
static void processor_last(struct eddy_closer *c)
{
    struct eddy_processor *p = eddy_container_of(c, struct eddy_processor, closer);
    eddy_lru_cleanup(&p->cache);
    eddy_commit_cleanup(&p->commit);
    cJSON_Delete(p->model);
    eddy_emit_cleanup(&p->emit);
    free_lists(p);
    eddy_json_arena_cleanup(&p->save_arena);
    eddy_record_spare_cleanup(&p->spare);
}

static void processor_free(struct eddy_closer *c)
{
    free(eddy_container_of(c, struct eddy_processor, closer));
}

struct eddy_processor *eddy_processor_new(uv_loop_t *loop, struct eddy_ddb *ddb,
                                          const struct eddy_processor_config *cfg,
                                          const struct eddy_clock *clock, uint64_t seed,
                                          struct eddy_error *err)
{
    if (loop == NULL || ddb == NULL) {
        eddy_error_set(err, EDDY_EINVAL, "processor: a loop and a DynamoDB client are required");
        return NULL;
    }
    if (check_config(cfg, err) != EDDY_OK)
        return NULL;
    struct eddy_processor *p = eddy_calloc(1, sizeof *p);
    p->loop = loop;
    p->ddb = ddb;
    p->cfg = *cfg;
    if (p->cfg.ns == NULL)
        p->cfg.ns = cfg->machine->name;
    if (p->cfg.dedupe_ttl_s <= 0)
        p->cfg.dedupe_ttl_s = EDDY_RECORD_DEDUPE_TTL_S;
    p->clock = clock ? clock : eddy_clock_system();
    eddy_rng_seed(&p->rng, seed);
    eddy_list_init(&p->queue);
    eddy_list_init(&p->ready);
    eddy_list_init(&p->waiting);
    eddy_list_init(&p->free_ents);
    eddy_list_init(&p->free_groups);
    eddy_closer_init(&p->closer, processor_last, processor_free);
    uv_idle_init(loop, &p->idle);
    uv_timer_init(loop, &p->timer);
    proc_cache_init(p, cfg->cache_entities, seed);
    eddy_commit_init(&p->commit, p->cfg.table);
    txn_shape(p);
    size_t room = proc_room_items(p);
    p->fill = cfg->group_fill == 0 ? room * 3 / 4 : cfg->group_fill > room ? room : cfg->group_fill;
    eddy_emit_init(&p->emit);
    eddy_json_arena_init(&p->save_arena, 0);
    return p;
}

/* Check one event's id and type; a bad one fails alone, the batch goes on.
 * Repeated ids are decided while building steps (repeat_of). */
static void check_event(struct eddy_proc_batch *b, size_t i)
{
    struct eddy_proc_event *ev = &b->events[i];
    struct eddy_error err;
    proc_event_final(ev, EDDY_EV_PENDING, NULL);
    if (eddy_record_check_type("event type", ev->type, &err) != EDDY_OK ||
        eddy_record_check_event_id(ev->event_id, &err) != EDDY_OK)
        proc_event_final(ev, EDDY_EV_FAILED, err.detail);
}

eddy_err eddy_processor_submit(struct eddy_processor *p, struct eddy_proc_batch *b)
{
    if (b == NULL)
        return EDDY_EINVAL;
    eddy_error_clear(&b->error);
    b->conflicts = 0;
    if (p == NULL || b->cb == NULL || b->events == NULL || b->nevents == 0)
        return eddy_error_set(&b->error, EDDY_EINVAL, "processor: a batch needs events and a cb");
    if (eddy_closer_closing(&p->closer))
        return eddy_error_set(&b->error, EDDY_ECANCELED, "processor: closing");
    eddy_err rc = eddy_record_check_entity_id(p->cfg.ns, b->entity_id, &b->error);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->nevents; i++)
        check_event(b, i);
    struct entity *e = entity_get(p, b);
    b->priv = e;
    eddy_list_insert_tail(&p->queue, &e->link);
    p->pending++;
    proc_pump_soon(p);
    return EDDY_OK;
}

size_t eddy_processor_pending(const struct eddy_processor *p)
{
    return p->pending;
}

void eddy_processor_stats(const struct eddy_processor *p, struct eddy_processor_stats *out)
{
    *out = p->stats;
}

void proc_maybe_closed(struct eddy_processor *p)
{
    if (!eddy_closer_closing(&p->closer) || p->handles_closing || p->pending > 0 || p->inflight > 0)
        return;
    p->handles_closing = true;
    eddy_closer_close(&p->closer, (uv_handle_t *)&p->idle);
    eddy_closer_close(&p->closer, (uv_handle_t *)&p->timer);
}

void eddy_processor_close(struct eddy_processor *p, eddy_close_cb cb, void *ud)
{
    if (!eddy_closer_begin(&p->closer, cb, ud))
        return;
    uv_timer_stop(&p->timer);
    if (p->pending > 0)
        proc_pump_soon(p); /* cancels what has not started, from the loop */
    proc_maybe_closed(p);
}
