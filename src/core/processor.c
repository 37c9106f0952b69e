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
 * loop turn is loaded and committed together. A "step" is what one entity
 * commits in one transaction: the events that still need writing, processed
 * in order on fresh copies of the state, with items built and limits checked
 * before the call (a transaction's bytes are the request text the DynamoDB
 * client will send and refuse over 4 MB, always more than DynamoDB's own
 * item sizes, so both limits hold). Several entities' steps form one
 * TransactWriteItems; a
 * table of item references maps CancellationReasons back to entity and
 * event. The pump is the only place that starts calls; callbacks only move
 * entities between lists and ask for a pump.
 *
 * This file does not decode messages, keep lanes or delete messages: that
 * is the worker's. The state cache is an LRU keyed by _pk holding the
 * machine's state and its _seq; an entity in flight takes its state out of
 * the cache and puts the new one back after its commit.
 */
#include "core/processor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/retry.h"
#include "base/alloc.h"
#include "base/log.h"
#include "core/apply.h"
#include "core/attr.h"
#include "core/machine.h"
#include "core/record.h"
#include "svc/dynamodb.h"
#include "base/lru.h"

#define COND_NEW "attribute_not_exists(#pk)"
#define COND_STATE "attribute_not_exists(#pk) OR #seq = :prev"
#define DEFAULT_BACKOFF_BASE_MS 10u
#define DEFAULT_BACKOFF_MAX_MS 2000u
#define DEFAULT_COMMITS_MAX 4u

enum role { ROLE_STATE, ROLE_VERSION, ROLE_INBOUND, ROLE_DEDUPE, ROLE_OUTBOUND, ROLE_OUTBOX };

/* What a step decided for one event, applied when the commit succeeds. */
struct step_event {
    size_t ev; /* index in the batch */
    bool rejected;
};

struct entity {
    struct eddy_processor *p;
    struct eddy_proc_batch *b;
    struct entity *next; /* in one of the processor's lists */
    char *pk;
    void *state; /* NULL until loaded */
    int64_t seq;
    cJSON *keep;        /* the stored attributes whose types a commit keeps (B, sets), or NULL */
    size_t state_bytes; /* text of the last state item built, an estimate for the next */
    unsigned conflicts, throttles;
    uint64_t due; /* uv_now when a backoff ends */
    /* the step being built or committed */
    struct eddy_record_text *items; /* rendered, sent as they are */
    enum role *roles;
    size_t *role_ev;
    size_t nitems, cap, bytes; /* bytes: of the request text, see item_bytes */
    struct step_event *sev;
    size_t nsev;
    void *new_state;
    cJSON *prev; /* ExpressionAttributeValues of the state put */
    bool outbox; /* the step writes outbox entries */
    /* what a cancelled transaction said about this entity's items */
    bool fail_state, fail_throttle;
    const char *fail_code;
};

struct list {
    struct entity *head, *tail;
};

struct item_ref {
    struct entity *e;
    size_t item; /* index in e->items */
};

struct group {
    struct eddy_processor *p;
    struct entity **ents;
    size_t nents;
    struct item_ref *refs;
    size_t nrefs;
    size_t bytes;
};

struct load {
    struct eddy_processor *p;
    struct entity *ents[EDDY_DDB_MAX_BATCH_GET];
    size_t n;
};

struct eddy_processor {
    uv_loop_t *loop;
    struct eddy_ddb *ddb;
    struct eddy_processor_config cfg;
    const struct eddy_clock *clock;
    struct eddy_rng rng;
    uv_idle_t idle;
    uv_timer_t timer;
    struct list queue, ready, waiting;
    size_t pending;  /* batches submitted and not called back */
    size_t inflight; /* loads and transactions in flight */
    size_t commits;  /* transactions in flight */
    struct eddy_lru cache;
    cJSON *names_new, *names_state;
    cJSON *model;    /* the machine's spelling of its state's fields (core/names.h) */
    bool model_made; /* model asked for (it may be NULL) */
    /* request text around an item's JSON (state put, other puts) and around
     * the items, upper bounds from the DynamoDB client (item_bytes) */
    size_t over_state, over_new, envelope;
    struct eddy_emit emit;
    struct eddy_processor_stats stats;
    bool closing, handles_closing;
    int closed_handles;
    void (*close_cb)(void *ud);
    void *close_ud;
};

static void pump_soon(struct eddy_processor *p);
static void on_timer(uv_timer_t *h);

/* ---- lists ---- */

static void list_push(struct list *l, struct entity *e)
{
    e->next = NULL;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
}

static void list_push_front(struct list *l, struct entity *e)
{
    e->next = l->head;
    l->head = e;
    if (l->tail == NULL)
        l->tail = e;
}

static struct entity *list_pop(struct list *l)
{
    struct entity *e = l->head;
    if (e) {
        l->head = e->next;
        if (l->head == NULL)
            l->tail = NULL;
        e->next = NULL;
    }
    return e;
}

/* ---- the cache ---- */

struct cached {
    const struct eddy_machine *m;
    void *state;
    int64_t seq;
    cJSON *keep;
};

static void cached_free(void *v)
{
    struct cached *c = v;
    c->m->state_free(c->state);
    cJSON_Delete(c->keep);
    free(c);
}

static bool cache_take(struct eddy_processor *p, struct entity *e)
{
    struct cached *c = eddy_lru_take(&p->cache, eddy_str_c(e->pk));
    if (c == NULL)
        return false;
    e->state = c->state;
    e->seq = c->seq;
    e->keep = c->keep;
    free(c);
    p->stats.cache_hits++;
    return true;
}

static void cache_put(struct eddy_processor *p, struct entity *e)
{
    if (e->state == NULL || p->cfg.cache_entities == 0)
        return;
    struct cached *c = eddy_malloc(sizeof *c);
    c->m = p->cfg.machine;
    c->state = e->state;
    c->seq = e->seq;
    c->keep = e->keep;
    e->state = NULL;
    e->keep = NULL;
    eddy_lru_put(&p->cache, eddy_str_c(e->pk), c);
}

/* ---- steps ---- */

static void step_clear(struct entity *e)
{
    for (size_t i = 0; i < e->nitems; i++)
        eddy_record_text_cleanup(&e->items[i]);
    e->nitems = 0;
    e->bytes = 0;
    e->nsev = 0;
    e->outbox = false;
    if (e->new_state && e->new_state != e->state)
        e->p->cfg.machine->state_free(e->new_state);
    e->new_state = NULL;
    cJSON_Delete(e->prev);
    e->prev = NULL;
}

static void drop_state(struct entity *e)
{
    step_clear(e);
    if (e->state)
        e->p->cfg.machine->state_free(e->state);
    e->state = NULL;
    cJSON_Delete(e->keep);
    e->keep = NULL;
}

/* What an item adds to the TransactWriteItems request text. */
static size_t item_bytes(const struct eddy_processor *p, size_t json_len, enum role role)
{
    return json_len + (role == ROLE_STATE ? p->over_state : p->over_new);
}

static void step_add(struct entity *e, struct eddy_record_text *item, enum role role, size_t ev)
{
    if (e->nitems == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->items = eddy_realloc(e->items, e->cap * sizeof *e->items);
        e->roles = eddy_realloc(e->roles, e->cap * sizeof *e->roles);
        e->role_ev = eddy_realloc(e->role_ev, e->cap * sizeof *e->role_ev);
    }
    e->items[e->nitems] = *item;
    e->roles[e->nitems] = role;
    e->role_ev[e->nitems] = ev;
    e->nitems++;
    e->bytes += item_bytes(e->p, item->len, role);
}

/* Drop the items added since mark (an event that did not fit). */
static void step_truncate(struct entity *e, size_t mark, size_t bytes)
{
    while (e->nitems > mark)
        eddy_record_text_cleanup(&e->items[--e->nitems]);
    e->bytes = bytes;
}

/* Copy a reason, cut to the event's field (reasons are for people and logs). */
static void set_reason(struct eddy_proc_event *ev, const char *reason)
{
    size_t n = reason ? strnlen(reason, sizeof ev->reason - 1) : 0;
    if (n)
        memmove(ev->reason, reason, n);
    ev->reason[n] = '\0';
}

static void event_final(struct eddy_proc_event *ev, enum eddy_event_result r, const char *reason)
{
    ev->result = r;
    ev->seq = 0;
    ev->idx = -1;
    set_reason(ev, reason);
}

static size_t room_items(const struct eddy_processor *p)
{
    size_t max = p->cfg.group_max_items;
    return max == 0 || max > EDDY_RECORD_TXN_ITEMS_MAX ? EDDY_RECORD_TXN_ITEMS_MAX : max;
}

static size_t state_items(const struct eddy_processor *p)
{
    return p->cfg.state_history ? 2 : 1;
}

/* Build and size one item; false (and the event failed) when a builder refused. */
static bool add_built(struct entity *e, eddy_err rc, struct eddy_record_text *item, enum role role,
                      size_t ev, const struct eddy_error *err)
{
    struct eddy_proc_event *pe = &e->b->events[ev];
    if (rc != EDDY_OK) {
        event_final(pe, EDDY_EV_FAILED, err->detail);
        return false;
    }
    step_add(e, item, role, ev);
    return true;
}

/* Inbound record and dedupe marker of event i at the step's seq and idx. */
static bool add_inbound(struct entity *e, const struct eddy_record_entity *re, size_t i, size_t idx,
                        const char *rejected)
{
    struct eddy_processor *p = e->p;
    struct eddy_proc_event *ev = &e->b->events[i];
    struct eddy_error err;
    struct eddy_record_text item = {0};
    eddy_err rc = eddy_record_render_inbound(re, idx, ev->type, ev->event_id, ev->data, rejected,
                                             &item, &err);
    if (!add_built(e, rc, &item, ROLE_INBOUND, i, &err))
        return false;
    rc = eddy_record_render_dedupe(re, ev->event_id, re->now_s + p->cfg.dedupe_ttl_s, &item, &err);
    return add_built(e, rc, &item, ROLE_DEDUPE, i, &err);
}

/* History record and outbox entry of every event process() emitted. */
static bool add_outbound(struct entity *e, const struct eddy_record_entity *re, size_t i,
                         size_t *out_idx)
{
    struct eddy_processor *p = e->p;
    struct eddy_proc_event *ev = &e->b->events[i];
    struct eddy_record_publish pub = {p->cfg.event_source, NULL, ev->trace_header,
                                      p->cfg.event_bus};
    for (size_t j = 0; j < p->emit.n; j++) {
        const struct eddy_emitted *em = &p->emit.v[j];
        struct eddy_error err;
        struct eddy_record_text history = {0}, outbox = {0};
        eddy_err rc = eddy_record_render_emitted(re, p->cfg.outbox_shards, *out_idx, em->type,
                                                 em->data, &pub, &history, &outbox, &err);
        if (!add_built(e, rc, &history, ROLE_OUTBOUND, i, &err))
            return false;
        add_built(e, rc, &outbox, ROLE_OUTBOX, i, &err);
        (*out_idx)++;
        e->outbox = true;
    }
    return true;
}

/* Run event i on a copy of work; returns the outcome, *next the new state when OK. */
static enum eddy_outcome run_event(struct entity *e, size_t i, const void *work, void **next)
{
    struct eddy_processor *p = e->p;
    struct eddy_proc_event *pe = &e->b->events[i];
    struct eddy_error err;
    struct eddy_applied a;
    *next = NULL;
    if (eddy_apply(p->cfg.machine, work, pe->type, pe->event_id, pe->data, &p->emit, &a, &err) !=
        EDDY_OK) {
        event_final(pe, EDDY_EV_FAILED, err.detail);
        return EDDY_PROCESS_FAILED;
    }
    if (a.outcome == EDDY_PROCESS_FAILED) {
        event_final(pe, EDDY_EV_FAILED, a.reason);
        return EDDY_PROCESS_FAILED;
    }
    set_reason(pe, a.reason);
    *next = a.state;
    return a.outcome;
}

/* Whether a transaction of items and bytes (items' text, see item_bytes)
 * fits: DynamoDB's limits (record.h) and the configured group size. */
static eddy_err txn_check(const struct eddy_processor *p, size_t items, size_t bytes,
                          struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_txn(items, bytes + p->envelope, err);
    if (rc == EDDY_OK && items > room_items(p))
        rc = eddy_error_set(err, EDDY_ELIMIT,
                            "transaction has %zu items, over the group size of %zu items", items,
                            room_items(p));
    return rc;
}

/* Whether the step, with its state items (estimated at state_bytes of text
 * each), fits; err says why not. */
static bool step_fits(const struct entity *e, size_t state_bytes, struct eddy_error *err)
{
    const struct eddy_processor *p = e->p;
    size_t bytes = e->bytes + item_bytes(p, state_bytes, ROLE_STATE);
    if (state_items(p) == 2)
        bytes += item_bytes(p, state_bytes, ROLE_VERSION);
    return txn_check(p, e->nitems + state_items(p), bytes, err) == EDDY_OK;
}

static void fail_over_limit(struct entity *e, size_t i, const struct eddy_error *limit)
{
    char why[512]; /* cut to the reason field by event_final */
    snprintf(why, sizeof why, "event %.64s of %.64s alone (with the state): %.200s",
             e->b->events[i].event_id, e->pk, limit->detail);
    event_final(&e->b->events[i], EDDY_EV_FAILED, why);
}

/*
 * Process event i into the step. Returns false when the step is full and i
 * must wait for the next one.
 */
static bool step_event(struct entity *e, const struct eddy_record_entity *re, size_t i, void **work,
                       size_t *out_idx, size_t state_bytes)
{
    struct eddy_processor *p = e->p;
    void *next = NULL;
    enum eddy_outcome out = run_event(e, i, *work, &next);
    if (out == EDDY_PROCESS_FAILED)
        return true;
    bool rejected = out == EDDY_PROCESS_REJECTED;
    if (rejected && p->cfg.on_reject != EDDY_REJECT_RECORD) {
        char reason[sizeof e->b->events[i].reason];
        memcpy(reason, e->b->events[i].reason, sizeof reason);
        event_final(&e->b->events[i], EDDY_EV_REJECTED_UNWRITTEN, reason);
        return true;
    }
    size_t mark = e->nitems, bytes = e->bytes, oidx = *out_idx;
    bool ok = add_inbound(e, re, i, e->nsev, rejected ? e->b->events[i].reason : NULL) &&
              (rejected || add_outbound(e, re, i, out_idx));
    struct eddy_error limit;
    if (ok && !step_fits(e, state_bytes, &limit)) {
        step_truncate(e, mark, bytes);
        *out_idx = oidx;
        if (next)
            p->cfg.machine->state_free(next);
        if (e->nsev > 0)
            return false;
        fail_over_limit(e, i, &limit);
        return true;
    }
    if (!ok) {
        step_truncate(e, mark, bytes);
        *out_idx = oidx;
        if (next)
            p->cfg.machine->state_free(next);
        return true;
    }
    e->sev[e->nsev].ev = i;
    e->sev[e->nsev].rejected = rejected;
    e->nsev++;
    if (next) {
        if (*work != e->state)
            p->cfg.machine->state_free(*work);
        *work = next;
    }
    return true;
}

enum build { BUILT, REBUILD, BROKEN };

enum repeat { REPEAT_NONE, REPEAT_WAIT, REPEAT_DUPLICATE };

/*
 * Whether event i repeats the id of an earlier event of its batch. An
 * in-batch copy is a duplicate only once the earlier one is known to be
 * written (applied, recorded as rejected, or found applied before); while
 * the earlier one is still pending it waits for the next step, and when the
 * earlier one failed or was not written, i stands on its own: a poison copy
 * must not take a valid one down with it.
 */
static enum repeat repeat_of(const struct eddy_proc_batch *b, size_t i)
{
    const char *id = b->events[i].event_id;
    for (size_t j = 0; j < i; j++) {
        const struct eddy_proc_event *o = &b->events[j];
        if (strcmp(o->event_id, id) != 0)
            continue;
        switch (o->result) {
        case EDDY_EV_PENDING:
            return REPEAT_WAIT;
        case EDDY_EV_APPLIED:
        case EDDY_EV_DUPLICATE:
            return REPEAT_DUPLICATE;
        case EDDY_EV_REJECTED:
            return REPEAT_DUPLICATE; /* recorded with _rejected */
        case EDDY_EV_REJECTED_UNWRITTEN:
        case EDDY_EV_FAILED:
        case EDDY_EV_ERROR:
            break;
        }
    }
    return REPEAT_NONE;
}

/*
 * The state item(s) of the step from work. When the state cannot be stored
 * (over 400 KB, a number DynamoDB cannot hold), the step shrinks one event
 * at a time until the event that made it so stands alone, and that event
 * fails.
 */
static enum build add_state(struct entity *e, const struct eddy_record_entity *re, void *work,
                            size_t *max_events)
{
    struct eddy_processor *p = e->p;
    struct eddy_error err;
    cJSON *json = p->cfg.machine->state_save(work);
    if (json == NULL)
        eddy_error_set(&err, EDDY_EMACHINE, "%s: state_save failed", e->pk);
    eddy_err rc = json ? EDDY_OK : EDDY_EMACHINE;
    for (int v = 0; rc == EDDY_OK && v < (int)state_items(p); v++) {
        struct eddy_record_text item = {0};
        rc = eddy_record_render_state_kept(re, json, e->keep, v == 1, &item, &err);
        if (rc == EDDY_OK) {
            e->state_bytes = item.len;
            step_add(e, &item, v == 1 ? ROLE_VERSION : ROLE_STATE, 0);
        }
    }
    cJSON_Delete(json);
    if (rc == EDDY_OK)
        return BUILT;
    if (e->nsev > 1) {
        *max_events = e->nsev - 1;
        return REBUILD;
    }
    if (!e->sev[0].rejected) {
        event_final(&e->b->events[e->sev[0].ev], EDDY_EV_FAILED, err.detail);
        *max_events = SIZE_MAX;
        return REBUILD;
    }
    e->b->error = err; /* the stored state itself cannot be written back */
    return BROKEN;
}

/*
 * Build e's step from its pending events, at most *max_events of them.
 * REBUILD after an event was failed or *max_events lowered; BROKEN when the
 * loaded state itself cannot be written (e->b->error says why).
 */
static enum build build_step(struct entity *e, size_t *max_events)
{
    struct eddy_processor *p = e->p;
    step_clear(e);
    e->sev = eddy_realloc(e->sev, e->b->nevents * sizeof *e->sev);
    int64_t now_ms = eddy_clock_unix_ms(p->clock);
    struct eddy_record_entity re = {p->cfg.ns, e->b->entity_id, e->seq + 1, now_ms / 1000, now_ms};
    void *work = e->state;
    size_t out_idx = 0;
    for (size_t i = 0; i < e->b->nevents && e->nsev < *max_events; i++) {
        if (e->b->events[i].result != EDDY_EV_PENDING)
            continue;
        enum repeat r = repeat_of(e->b, i);
        if (r == REPEAT_WAIT)
            break; /* the earlier copy is in this step: decide after its commit */
        if (r == REPEAT_DUPLICATE) {
            event_final(&e->b->events[i], EDDY_EV_DUPLICATE, "event id repeated in the batch");
            continue;
        }
        if (!step_event(e, &re, i, &work, &out_idx, e->state_bytes))
            break;
    }
    e->new_state = work;
    if (e->nsev == 0)
        return BUILT;
    enum build rc = add_state(e, &re, work, max_events);
    if (rc != BUILT)
        return rc;
    struct eddy_error limit;
    if (txn_check(p, e->nitems, e->bytes, &limit) != EDDY_OK) {
        if (e->nsev > 1) {
            *max_events = e->nsev - 1;
            return REBUILD;
        }
        fail_over_limit(e, e->sev[0].ev, &limit);
        *max_events = SIZE_MAX;
        return REBUILD;
    }
    char prev[24];
    snprintf(prev, sizeof prev, "%" PRId64, e->seq);
    e->prev = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(e->prev, ":prev"), "N", prev);
    return BUILT;
}

static enum build prepare(struct entity *e)
{
    size_t max = SIZE_MAX;
    enum build rc;
    while ((rc = build_step(e, &max)) == REBUILD)
        ;
    return rc;
}

/* ---- finishing ---- */

static void maybe_closed(struct eddy_processor *p);

/* Call the batch back; events still pending get EDDY_EV_ERROR. */
static void finish(struct entity *e, eddy_err err)
{
    struct eddy_processor *p = e->p;
    struct eddy_proc_batch *b = e->b;
    if (err != EDDY_OK && b->error.code == EDDY_OK)
        eddy_error_set(&b->error, err, "%s: %s", e->pk, eddy_err_msg(err));
    for (size_t i = 0; i < b->nevents; i++) {
        if (b->events[i].result == EDDY_EV_PENDING)
            event_final(&b->events[i], EDDY_EV_ERROR, eddy_error_text(&b->error));
    }
    if (err == EDDY_OK) {
        step_clear(e);
        cache_put(p, e);
    }
    drop_state(e);
    free(e->items);
    free(e->roles);
    free(e->role_ev);
    free(e->sev);
    free(e->pk);
    free(e);
    b->priv = NULL;
    p->pending--;
    b->cb(b, err, b->ud);
    maybe_closed(p);
}

static bool has_pending(const struct entity *e)
{
    for (size_t i = 0; i < e->b->nevents; i++) {
        if (e->b->events[i].result == EDDY_EV_PENDING)
            return true;
    }
    return false;
}

/* The step is durable: record results, advance the state. */
static void committed(struct entity *e)
{
    struct eddy_processor *p = e->p;
    for (size_t k = 0; k < e->nsev; k++) {
        struct eddy_proc_event *ev = &e->b->events[e->sev[k].ev];
        ev->result = e->sev[k].rejected ? EDDY_EV_REJECTED : EDDY_EV_APPLIED;
        ev->seq = e->seq + 1;
        ev->idx = (int)k;
        if (!e->sev[k].rejected)
            ev->reason[0] = '\0';
    }
    if (e->new_state != e->state) {
        p->cfg.machine->state_free(e->state);
        e->state = e->new_state;
    }
    e->new_state = NULL;
    e->seq++;
    e->conflicts = e->throttles = 0;
}

/* Wait a full-jitter backoff, then go through the queue again. */
static void backoff(struct entity *e, unsigned attempt)
{
    struct eddy_processor *p = e->p;
    uint32_t base = p->cfg.backoff_base_ms ? p->cfg.backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    uint32_t cap = p->cfg.backoff_max_ms ? p->cfg.backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    uint32_t ms = eddy_backoff_full_jitter(&p->rng, attempt, base, cap);
    step_clear(e);
    e->due = uv_now(p->loop) + ms;
    list_push(&p->waiting, e);
    p->stats.retries++;
    pump_soon(p);
}

static void conflict(struct entity *e)
{
    struct eddy_processor *p = e->p;
    p->stats.conflicts++;
    drop_state(e);
    if (e->conflicts++ >= (unsigned)p->cfg.occ_retries) {
        eddy_error_set(&e->b->error, EDDY_ECONFLICT,
                       "%s: still in conflict after %u attempts (EDDY_OCC_RETRIES=%d)", e->pk,
                       e->conflicts, p->cfg.occ_retries);
        finish(e, EDDY_ECONFLICT);
        return;
    }
    backoff(e, e->conflicts - 1);
}

static void throttled(struct entity *e, const char *code)
{
    struct eddy_processor *p = e->p;
    if (e->throttles++ >= (unsigned)p->cfg.occ_retries) {
        eddy_error_set(&e->b->error, EDDY_ETHROTTLED, "%s: %s after %u attempts", e->pk, code,
                       e->throttles);
        finish(e, EDDY_ETHROTTLED);
        return;
    }
    backoff(e, e->throttles - 1);
}

/* ---- transactions ---- */

static void group_free(struct group *g)
{
    free(g->ents);
    free(g->refs);
    free(g);
}

static void group_add(struct group *g, struct entity *e)
{
    g->ents = eddy_realloc(g->ents, (g->nents + 1) * sizeof *g->ents);
    g->ents[g->nents++] = e;
    g->refs = eddy_realloc(g->refs, (g->nrefs + e->nitems) * sizeof *g->refs);
    for (size_t k = 0; k < e->nitems; k++)
        g->refs[g->nrefs++] = (struct item_ref){e, k};
    g->bytes += e->bytes;
}

static void txn_done(eddy_err err, struct eddy_ddb_txn_result *res,
                     const struct eddy_aws_reply *reply, void *ud);

static void group_start(struct eddy_processor *p, struct group *g)
{
    struct eddy_ddb_txn_item *items = eddy_calloc(g->nrefs, sizeof *items);
    for (size_t i = 0; i < g->nrefs; i++) {
        struct entity *e = g->refs[i].e;
        size_t k = g->refs[i].item;
        bool st = e->roles[k] == ROLE_STATE;
        items[i].kind = EDDY_DDB_PUT;
        items[i].table = p->cfg.table;
        items[i].item_json = e->items[k].json;
        items[i].expr.condition = st ? COND_STATE : COND_NEW;
        items[i].expr.names = st ? p->names_state : p->names_new;
        items[i].expr.values = st ? e->prev : NULL;
    }
    /* a token makes a repeat after a timeout idempotent instead of a conflict */
    char token[40];
    snprintf(token, sizeof token, "%016" PRIx64 "%016" PRIx64, eddy_rng_next(&p->rng),
             eddy_rng_next(&p->rng));
    struct eddy_error err;
    eddy_err rc = eddy_ddb_transact_write(p->ddb, items, g->nrefs, token, txn_done, g, NULL, &err);
    free(items);
    if (rc == EDDY_OK) {
        p->inflight++;
        p->commits++;
        return;
    }
    for (size_t j = 0; j < g->nents; j++) {
        g->ents[j]->b->error = err;
        finish(g->ents[j], rc);
    }
    group_free(g);
}

/* Hand the step's outbox rows, in (seq, idx) order, to the publisher. */
static void hand_outbox(struct eddy_processor *p, const struct entity *e)
{
    if (!e->outbox || p->cfg.on_outbox == NULL)
        return;
    for (size_t k = 0; k < e->nitems; k++)
        if (e->roles[k] == ROLE_OUTBOX)
            p->cfg.on_outbox(e->items[k].json, e->items[k].len, p->cfg.on_outbox_ud);
}

static void txn_ok(struct group *g)
{
    struct eddy_processor *p = g->p;
    p->stats.transactions++;
    for (size_t j = 0; j < g->nents; j++) {
        struct entity *e = g->ents[j];
        hand_outbox(p, e);
        committed(e);
        step_clear(e);
    }
    for (size_t j = 0; j < g->nents; j++) {
        struct entity *e = g->ents[j];
        if (has_pending(e))
            list_push(&p->ready, e); /* the rest of a split batch */
        else
            finish(e, EDDY_OK);
    }
}

/* Read CancellationReasons item by item into the entities' fail_* fields. */
static bool classify(struct group *g, const struct eddy_ddb_txn_result *res)
{
    bool throttle = false;
    for (size_t i = 0; i < g->nrefs; i++) {
        const char *code = res->reasons[i].code;
        if (code == NULL || code[0] == '\0' || strcmp(code, "None") == 0)
            continue;
        struct entity *e = g->refs[i].e;
        size_t k = g->refs[i].item;
        if (strcmp(code, "ConditionalCheckFailed") == 0 && e->roles[k] == ROLE_DEDUPE) {
            struct eddy_proc_event *ev = &e->b->events[e->role_ev[k]];
            if (ev->result == EDDY_EV_PENDING) {
                event_final(ev, EDDY_EV_DUPLICATE, "event id applied before (dedupe marker)");
                g->p->stats.duplicates++;
            }
        } else if (strcmp(code, "ConditionalCheckFailed") == 0) {
            e->fail_state = true; /* the state moved on, or records of its next seq exist */
        } else if (eddy_aws_code_throttles(code)) {
            e->fail_throttle = throttle = true;
        } else if (e->fail_code == NULL) {
            e->fail_code = code;
            eddy_error_set(&e->b->error, EDDY_EAWS, "%s: transaction item %zu refused: %s: %s",
                           e->pk, i, code, res->reasons[i].message);
        }
    }
    return throttle;
}

static void txn_canceled(struct group *g, const struct eddy_ddb_txn_result *res)
{
    struct eddy_processor *p = g->p;
    for (size_t j = 0; j < g->nents; j++) {
        g->ents[j]->fail_state = g->ents[j]->fail_throttle = false;
        g->ents[j]->fail_code = NULL;
    }
    bool throttle = classify(g, res);
    for (size_t j = 0; j < g->nents; j++) {
        struct entity *e = g->ents[j];
        if (e->fail_state) {
            conflict(e);
        } else if (e->fail_code) {
            finish(e, EDDY_EAWS);
        } else if (throttle) {
            throttled(e, "TransactionConflict or throttling");
        } else {
            /* not at fault (or only duplicates dropped): commit again at once */
            step_clear(e);
            list_push(&p->ready, e);
        }
    }
}

static void txn_done(eddy_err err, struct eddy_ddb_txn_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct group *g = ud;
    struct eddy_processor *p = g->p;
    p->inflight--;
    p->commits--;
    if (err == EDDY_OK) {
        txn_ok(g);
    } else if (err == EDDY_ETXN_CANCELED && res->n == g->nrefs) {
        txn_canceled(g, res);
    } else {
        for (size_t j = 0; j < g->nents; j++) {
            struct entity *e = g->ents[j];
            if (err == EDDY_ETXN_CANCELED) { /* no reasons to read: try again later */
                throttled(e, "TransactionCanceled without reasons");
                continue;
            }
            eddy_error_set(&e->b->error, err, "%s: TransactWriteItems: %s", e->pk,
                           reply && reply->error ? eddy_error_text(reply->error)
                                                 : eddy_err_msg(err));
            finish(e, err);
        }
    }
    eddy_ddb_txn_result_cleanup(res);
    group_free(g);
    pump_soon(p);
    maybe_closed(p);
}

/* ---- loading ---- */

/*
 * A stored state, as a-h/stream's decoder reads it: names matched to the
 * machine's own spelling without regard to case (core/names.h). Binary and
 * set attributes are remembered so the commit writes them back in their
 * stored types.
 */
static bool load_state(struct entity *e, const cJSON *item)
{
    struct eddy_processor *p = e->p;
    const struct eddy_machine *m = p->cfg.machine;
    cJSON *json = NULL;
    int64_t seq = 0;
    struct eddy_error err;
    if (eddy_record_parse_state(item, &json, &seq, &err) != EDDY_OK) {
        eddy_error_set(&e->b->error, EDDY_EPARSE, "state item of %s: %s", e->pk, err.detail);
        return false;
    }
    if (!p->model_made) {
        p->model = eddy_machine_state_model(m, e->b->entity_id);
        p->model_made = true;
    }
    void *state = NULL;
    eddy_err rc = eddy_machine_state_load(m, json, p->model, &state, &err);
    cJSON_Delete(json);
    if (rc != EDDY_OK) {
        eddy_error_set(&e->b->error, EDDY_EPARSE, "state item of %s does not load: %s", e->pk,
                       err.detail);
        return false;
    }
    e->state = state;
    e->seq = seq;
    e->keep = eddy_attr_item_keepers(item);
    return true;
}

static struct entity *load_match(struct load *l, const cJSON *item)
{
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(item, "_pk");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(pk, "S");
    if (!cJSON_IsString(s))
        return NULL;
    for (size_t j = 0; j < l->n; j++) {
        if (l->ents[j] && strcmp(l->ents[j]->pk, s->valuestring) == 0) {
            struct entity *e = l->ents[j];
            l->ents[j] = NULL;
            return e;
        }
    }
    return NULL;
}

static void load_found(struct load *l, const struct eddy_ddb_batch_get_result *res)
{
    struct eddy_processor *p = l->p;
    const cJSON *item;
    cJSON_ArrayForEach(item, res->items)
    {
        struct entity *e = load_match(l, item);
        if (e == NULL)
            continue;
        if (load_state(e, item))
            list_push(&p->ready, e);
        else
            finish(e, EDDY_EPARSE);
    }
    cJSON_ArrayForEach(item, res->unprocessed)
    {
        struct entity *e = load_match(l, item);
        if (e)
            list_push(&p->queue, e); /* asked again on the next turn */
    }
}

static void load_done(eddy_err err, struct eddy_ddb_batch_get_result *res,
                      const struct eddy_aws_reply *reply, void *ud)
{
    struct load *l = ud;
    struct eddy_processor *p = l->p;
    p->inflight--;
    if (err == EDDY_OK)
        load_found(l, res);
    for (size_t j = 0; j < l->n; j++) {
        struct entity *e = l->ents[j];
        if (e == NULL)
            continue;
        if (err != EDDY_OK) {
            eddy_error_set(&e->b->error, err, "%s: BatchGetItem: %s", e->pk,
                           reply && reply->error ? eddy_error_text(reply->error)
                                                 : eddy_err_msg(err));
            finish(e, err);
            continue;
        }
        /* no state item: the machine's initial state at _seq 0 */
        e->state = p->cfg.machine->state_new(e->b->entity_id);
        e->seq = 0;
        if (e->state == NULL) {
            eddy_error_set(&e->b->error, EDDY_EMACHINE, "%s: state_new failed", e->pk);
            finish(e, EDDY_EMACHINE);
        } else {
            list_push(&p->ready, e);
        }
    }
    eddy_ddb_batch_get_result_cleanup(res);
    free(l);
    pump_soon(p);
    maybe_closed(p);
}

static void load_start(struct eddy_processor *p, struct load *l)
{
    cJSON *keys[EDDY_DDB_MAX_BATCH_GET];
    for (size_t j = 0; j < l->n; j++) {
        keys[j] = cJSON_CreateObject();
        cJSON_AddStringToObject(cJSON_AddObjectToObject(keys[j], "_pk"), "S", l->ents[j]->pk);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(keys[j], "_sk"), "S", EDDY_RECORD_STATE_SK);
    }
    struct eddy_error err;
    eddy_err rc = eddy_ddb_batch_get(p->ddb, p->cfg.table, (const cJSON *const *)keys, l->n, true,
                                     load_done, l, NULL, &err);
    for (size_t j = 0; j < l->n; j++)
        cJSON_Delete(keys[j]);
    p->stats.loads += l->n;
    if (rc == EDDY_OK) {
        p->inflight++;
        return;
    }
    for (size_t j = 0; j < l->n; j++) {
        l->ents[j]->b->error = err;
        finish(l->ents[j], rc);
    }
    free(l);
}

/* ---- the pump ---- */

static void cancel_list(struct list *l)
{
    struct entity *e;
    while ((e = list_pop(l)) != NULL) {
        eddy_error_set(&e->b->error, EDDY_ECANCELED, "%s: the processor is closing", e->pk);
        finish(e, EDDY_ECANCELED);
    }
}

/* Waiting entities whose backoff ended go back to the queue; arm the timer. */
static void wake_waiting(struct eddy_processor *p)
{
    uint64_t now = uv_now(p->loop), next = UINT64_MAX;
    struct list keep = {NULL, NULL};
    struct entity *e;
    while ((e = list_pop(&p->waiting)) != NULL) {
        if (e->due <= now) {
            list_push(&p->queue, e);
        } else {
            next = e->due < next ? e->due : next;
            list_push(&keep, e);
        }
    }
    p->waiting = keep;
    if (next != UINT64_MAX)
        uv_timer_start(&p->timer, on_timer, next - now, 0);
}

/* Queued entities: cache hits to ready, the others into *cold for loading. */
static void sort_queue(struct eddy_processor *p, struct list *cold)
{
    struct entity *e;
    while ((e = list_pop(&p->queue)) != NULL) {
        if (e->state || cache_take(p, e))
            list_push(&p->ready, e);
        else
            list_push(cold, e);
    }
}

/* One BatchGetItem per 100 cold entities. */
static void load_cold(struct eddy_processor *p, struct list *cold)
{
    struct load *l = NULL;
    struct entity *e;
    while ((e = list_pop(cold)) != NULL) {
        if (l == NULL) {
            l = eddy_calloc(1, sizeof *l);
            l->p = p;
        }
        l->ents[l->n++] = e;
        if (l->n == EDDY_DDB_MAX_BATCH_GET) {
            load_start(p, l);
            l = NULL;
        }
    }
    if (l)
        load_start(p, l);
}

/* Ready entities into groups, as many groups as there is room for in flight;
 * the rest wait for a transaction to finish (its callback pumps again). */
static void commit_ready(struct eddy_processor *p)
{
    size_t max = p->cfg.commits_max ? p->cfg.commits_max : DEFAULT_COMMITS_MAX;
    struct group *g = NULL;
    struct entity *e;
    while ((g != NULL || p->commits < max) && (e = list_pop(&p->ready)) != NULL) {
        if (prepare(e) == BROKEN) {
            finish(e, e->b->error.code);
            continue;
        }
        if (e->nsev == 0) { /* nothing to write: every event failed or was a duplicate */
            finish(e, EDDY_OK);
            continue;
        }
        if (g && txn_check(p, g->nrefs + e->nitems, g->bytes + e->bytes, NULL) != EDDY_OK) {
            group_start(p, g);
            g = NULL;
            if (p->commits >= max) { /* built again when its turn comes */
                step_clear(e);
                list_push_front(&p->ready, e);
                break;
            }
        }
        if (g == NULL) {
            g = eddy_calloc(1, sizeof *g);
            g->p = p;
        }
        group_add(g, e);
    }
    if (g)
        group_start(p, g);
}

static void pump(struct eddy_processor *p)
{
    if (p->closing) {
        cancel_list(&p->waiting);
        cancel_list(&p->queue);
        cancel_list(&p->ready);
        maybe_closed(p);
        return;
    }
    struct list cold = {NULL, NULL};
    wake_waiting(p);
    sort_queue(p, &cold);
    commit_ready(p); /* entities in hand first: their commits need no load */
    load_cold(p, &cold);
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

static void pump_soon(struct eddy_processor *p)
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
    cJSON *prev = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(prev, ":prev"), "N", "-9223372036854775808");
    struct eddy_ddb_txn_item it = {
        EDDY_DDB_PUT,
        p->cfg.table,
        NULL,
        {.condition = COND_STATE, .names = p->names_state, .values = prev},
        NULL};
    p->over_state = eddy_ddb_txn_item_overhead(&it);
    it.expr = (struct eddy_ddb_expr){.condition = COND_NEW, .names = p->names_new};
    p->over_new = eddy_ddb_txn_item_overhead(&it);
    char token[33];
    memset(token, 'f', 32);
    token[32] = '\0';
    p->envelope = eddy_ddb_txn_envelope_len(token);
    cJSON_Delete(prev);
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
    uv_idle_init(loop, &p->idle);
    uv_timer_init(loop, &p->timer);
    eddy_lru_init(&p->cache, cfg->cache_entities, seed, cached_free);
    p->names_new = cJSON_CreateObject();
    cJSON_AddStringToObject(p->names_new, "#pk", "_pk");
    p->names_state = cJSON_Duplicate(p->names_new, true);
    cJSON_AddStringToObject(p->names_state, "#seq", "_seq");
    txn_shape(p);
    eddy_emit_init(&p->emit);
    return p;
}

/* Check one event's id and type; a bad one fails alone, the batch goes on.
 * Repeated ids are decided while building steps (repeat_of). */
static void check_event(struct eddy_proc_batch *b, size_t i)
{
    struct eddy_proc_event *ev = &b->events[i];
    struct eddy_error err;
    event_final(ev, EDDY_EV_PENDING, NULL);
    if (eddy_record_check_type("event type", ev->type, &err) != EDDY_OK ||
        eddy_record_check_event_id(ev->event_id, &err) != EDDY_OK)
        event_final(ev, EDDY_EV_FAILED, err.detail);
}

eddy_err eddy_processor_submit(struct eddy_processor *p, struct eddy_proc_batch *b)
{
    if (b == NULL)
        return EDDY_EINVAL;
    eddy_error_clear(&b->error);
    if (p == NULL || b->cb == NULL || b->events == NULL || b->nevents == 0)
        return eddy_error_set(&b->error, EDDY_EINVAL, "processor: a batch needs events and a cb");
    if (p->closing)
        return eddy_error_set(&b->error, EDDY_ECANCELED, "processor: closing");
    eddy_err rc = eddy_record_check_entity_id(p->cfg.ns, b->entity_id, &b->error);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->nevents; i++)
        check_event(b, i);
    struct entity *e = eddy_calloc(1, sizeof *e);
    e->p = p;
    e->b = b;
    e->pk = eddy_record_pk(p->cfg.ns, b->entity_id);
    b->priv = e;
    b->attempts = 0;
    b->next = NULL;
    list_push(&p->queue, e);
    p->pending++;
    pump_soon(p);
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

static void on_handle_closed(uv_handle_t *h)
{
    struct eddy_processor *p = h->data;
    if (++p->closed_handles < 2)
        return;
    eddy_lru_cleanup(&p->cache);
    cJSON_Delete(p->names_new);
    cJSON_Delete(p->names_state);
    cJSON_Delete(p->model);
    eddy_emit_cleanup(&p->emit);
    void (*cb)(void *) = p->close_cb;
    void *ud = p->close_ud;
    free(p);
    if (cb)
        cb(ud);
}

static void maybe_closed(struct eddy_processor *p)
{
    if (!p->closing || p->handles_closing || p->pending > 0 || p->inflight > 0)
        return;
    p->handles_closing = true;
    p->idle.data = p;
    p->timer.data = p;
    uv_close((uv_handle_t *)&p->idle, on_handle_closed);
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
}

void eddy_processor_close(struct eddy_processor *p, void (*cb)(void *ud), void *ud)
{
    p->closing = true;
    p->close_cb = cb;
    p->close_ud = ud;
    uv_timer_stop(&p->timer);
    if (p->pending > 0)
        pump_soon(p); /* cancels what has not started, from the loop */
    maybe_closed(p);
}
