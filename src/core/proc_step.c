/*
 * proc_step.c - one entity's step: what it commits in one transaction. The
 * events that still need writing are processed in order on fresh copies of
 * the state, their items rendered and the limits checked before the call (a
 * transaction's bytes are the request text the DynamoDB client will send and
 * refuse over 4 MB, always more than DynamoDB's own item sizes, so both
 * limits hold). An event that alone breaks a limit fails; a batch too big
 * for one transaction is split into several steps, in order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"
#include "core/apply.h"
#include "core/proc_int.h"

void proc_step_clear(struct entity *e)
{
    for (size_t i = 0; i < e->nitems; i++)
        eddy_record_text_release(&e->items[i], &e->p->spare);
    e->nitems = 0;
    e->bytes = 0;
    e->nsev = 0;
    e->outbox = false;
    if (e->new_state && e->new_state != e->state)
        e->p->cfg.machine->state_free(e->new_state);
    e->new_state = NULL;
    e->prev = NULL;
}

void proc_drop_state(struct entity *e)
{
    proc_step_clear(e);
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
        eddy_record_text_release(&e->items[--e->nitems], &e->p->spare);
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

void proc_event_final(struct eddy_proc_event *ev, enum eddy_event_result r, const char *reason)
{
    ev->result = r;
    ev->seq = 0;
    ev->idx = -1;
    set_reason(ev, reason);
}

size_t proc_room_items(const struct eddy_processor *p)
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
        eddy_record_text_release(item, &e->p->spare);
        proc_event_final(pe, EDDY_EV_FAILED, err->detail);
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
    struct eddy_record_text item = eddy_record_spare_text(&p->spare);
    eddy_err rc = eddy_record_render_inbound(re, idx, ev->type, ev->event_id, ev->data, rejected,
                                             &item, &err);
    if (!add_built(e, rc, &item, ROLE_INBOUND, i, &err))
        return false;
    item = eddy_record_spare_text(&p->spare);
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
        struct eddy_record_text history = eddy_record_spare_text(&p->spare);
        struct eddy_record_text outbox = eddy_record_spare_text(&p->spare);
        eddy_err rc = eddy_record_render_emitted(re, p->cfg.outbox_shards, *out_idx, em->type,
                                                 em->data, &pub, &history, &outbox, &err);
        if (!add_built(e, rc, &history, ROLE_OUTBOUND, i, &err)) {
            eddy_record_text_release(&outbox, &p->spare);
            return false;
        }
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
        proc_event_final(pe, EDDY_EV_FAILED, err.detail);
        return EDDY_PROCESS_FAILED;
    }
    if (a.outcome == EDDY_PROCESS_FAILED) {
        proc_event_final(pe, EDDY_EV_FAILED, a.reason);
        return EDDY_PROCESS_FAILED;
    }
    set_reason(pe, a.reason);
    *next = a.state;
    return a.outcome;
}

/* Whether a transaction of items and bytes (items' text, see item_bytes)
 * fits: DynamoDB's limits (record.h) and the configured group size. */
eddy_err proc_txn_check(const struct eddy_processor *p, size_t items, size_t bytes,
                        struct eddy_error *err)
{
    eddy_err rc = eddy_record_check_txn(items, bytes + p->envelope, err);
    if (rc == EDDY_OK && items > proc_room_items(p))
        rc = eddy_error_set(err, EDDY_ELIMIT,
                            "transaction has %zu items, over the group size of %zu items", items,
                            proc_room_items(p));
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
    return proc_txn_check(p, e->nitems + state_items(p), bytes, err) == EDDY_OK;
}

static void fail_over_limit(struct entity *e, size_t i, const struct eddy_error *limit)
{
    char why[512]; /* cut to the reason field by event_final */
    snprintf(why, sizeof why, "event %.64s of %.64s alone (with the state): %.200s",
             e->b->events[i].event_id, e->pk, limit->detail);
    proc_event_final(&e->b->events[i], EDDY_EV_FAILED, why);
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
        proc_event_final(&e->b->events[i], EDDY_EV_REJECTED_UNWRITTEN, reason);
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
    /* The saved tree lives only until its items are rendered: its nodes come
     * from the processor's arena and go with it at once, not one by one. */
    struct eddy_json_arena *outer = eddy_json_arena_enter(&p->save_arena);
    cJSON *json = p->cfg.machine->state_save(work);
    eddy_json_arena_leave(outer);
    if (json == NULL)
        eddy_error_set(&err, EDDY_EMACHINE, "%s: state_save failed", e->pk);
    eddy_err rc = json ? EDDY_OK : EDDY_EMACHINE;
    for (int v = 0; rc == EDDY_OK && v < (int)state_items(p); v++) {
        struct eddy_record_text item = eddy_record_spare_text(&p->spare);
        rc = eddy_record_render_state_kept(re, json, e->keep, v == 1, &item, &err);
        if (rc == EDDY_OK) {
            e->state_bytes = item.len;
            step_add(e, &item, v == 1 ? ROLE_VERSION : ROLE_STATE, 0);
        } else {
            eddy_record_text_release(&item, &p->spare);
        }
    }
    eddy_json_arena_cleanup(&p->save_arena); /* json with it */
    if (rc == EDDY_OK)
        return BUILT;
    if (e->nsev > 1) {
        *max_events = e->nsev - 1;
        return REBUILD;
    }
    if (!e->sev[0].rejected) {
        proc_event_final(&e->b->events[e->sev[0].ev], EDDY_EV_FAILED, err.detail);
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
    proc_step_clear(e);
    if (e->b->nevents > e->sev_cap) {
        e->sev_cap = e->b->nevents;
        e->sev = eddy_realloc(e->sev, e->sev_cap * sizeof *e->sev);
    }
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
            proc_event_final(&e->b->events[i], EDDY_EV_DUPLICATE, "event id repeated in the batch");
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
    if (proc_txn_check(p, e->nitems, e->bytes, &limit) != EDDY_OK) {
        if (e->nsev > 1) {
            *max_events = e->nsev - 1;
            return REBUILD;
        }
        fail_over_limit(e, e->sev[0].ev, &limit);
        *max_events = SIZE_MAX;
        return REBUILD;
    }
    e->prev = eddy_commit_prev_set(&e->prev_values, e->seq);
    return BUILT;
}

enum build proc_prepare(struct entity *e)
{
    size_t max = SIZE_MAX;
    enum build rc;
    while ((rc = build_step(e, &max)) == REBUILD)
        ;
    return rc;
}
