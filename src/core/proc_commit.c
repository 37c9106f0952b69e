/*
 * proc_commit.c - group commit: the steps of several entities form one
 * TransactWriteItems (up to the group size and 4 MB), as many in flight as
 * commits_max allows; a table of item references maps CancellationReasons
 * back to entity and event. What a commit, a cancellation, a conflict or
 * throttling does to each entity of the group is decided here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/retry.h"
#include "base/alloc.h"
#include "core/proc_int.h"

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
    e->conflicts = e->throttles = e->contended = 0;
}

/* Wait a full-jitter backoff, then go through the queue again. */
static void backoff(struct entity *e, unsigned attempt)
{
    struct eddy_processor *p = e->p;
    uint32_t base = p->cfg.backoff_base_ms ? p->cfg.backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    uint32_t cap = p->cfg.backoff_max_ms ? p->cfg.backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    uint32_t ms = eddy_backoff_full_jitter(&p->rng, attempt, base, cap);
    proc_step_clear(e);
    e->due = uv_now(p->loop) + ms;
    eddy_list_insert_tail(&p->waiting, &e->link);
    p->stats.retries++;
    proc_pump_soon(p);
}

/*
 * Another process committed this entity since its state was read. It waits
 * a backoff and is processed again on the state item the cancellation
 * returned (ALL_OLD on the state put), without reading it; only when none
 * came back (a record's condition failed) is it read again. When it gives
 * up (EDDY_OCC_RETRIES), that state still goes to the cache, as a commit's
 * would: the entity's next batch then needs no read either.
 */
static void conflict(struct entity *e)
{
    struct eddy_processor *p = e->p;
    cJSON *fresh = e->fresh;
    e->fresh = NULL;
    p->stats.conflicts++;
    e->b->conflicts++;
    proc_drop_state(e);
    if (e->conflicts++ >= (unsigned)p->cfg.occ_retries) {
        if (fresh && proc_load_state(e, fresh))
            proc_cache_put(p, e);
        cJSON_Delete(fresh);
        eddy_error_set(&e->b->error, EDDY_ECONFLICT,
                       "%s: still in conflict after %u attempts (EDDY_OCC_RETRIES=%d)", e->pk,
                       e->conflicts, p->cfg.occ_retries);
        proc_finish(e, EDDY_ECONFLICT);
        return;
    }
    if (fresh) {
        bool loaded = proc_load_state(e, fresh);
        cJSON_Delete(fresh);
        if (!loaded) {
            proc_finish(e, EDDY_EPARSE);
            return;
        }
    }
    backoff(e, e->conflicts - 1);
}

/*
 * The table throttled, or (contended) another transaction held one of the
 * entity's items: wait a backoff and go again (a cold entity is read again,
 * see proc_load.c). Past occ_retries the
 * batch fails with EDDY_ETHROTTLED once the table throttled, which the
 * worker takes for the store being down; when every wait was for contention
 * on this entity alone it fails with EDDY_ECONFLICT, as a conflict does, so
 * that one hot entity does not stop the whole process.
 */
void proc_throttled(struct entity *e, const char *code, bool contended)
{
    struct eddy_processor *p = e->p;
    e->contended += contended;
    if (e->throttles++ >= (unsigned)p->cfg.occ_retries) {
        eddy_err err = e->contended == e->throttles ? EDDY_ECONFLICT : EDDY_ETHROTTLED;
        eddy_error_set(&e->b->error, err, "%s: %s after %u attempts (EDDY_OCC_RETRIES=%d)", e->pk,
                       code, e->throttles, p->cfg.occ_retries);
        proc_finish(e, err);
        return;
    }
    backoff(e, e->throttles - 1);
}

static void group_add(struct group *g, struct entity *e)
{
    if (g->nents == g->ents_cap) {
        g->ents_cap = g->ents_cap ? g->ents_cap * 2 : 16;
        g->ents = eddy_realloc(g->ents, g->ents_cap * sizeof *g->ents);
    }
    g->ents[g->nents++] = e;
    if (g->nrefs + e->nitems > g->refs_cap) {
        while (g->nrefs + e->nitems > g->refs_cap)
            g->refs_cap = g->refs_cap ? g->refs_cap * 2 : 32;
        g->refs = eddy_realloc(g->refs, g->refs_cap * sizeof *g->refs);
    }
    for (size_t k = 0; k < e->nitems; k++)
        g->refs[g->nrefs++] = (struct item_ref){e, k};
    g->bytes += e->bytes;
}

static void txn_done(eddy_err err, struct eddy_ddb_txn_result *res,
                     const struct eddy_aws_reply *reply, void *ud);

/* Tell the publisher of the group's outbox rows: sign +1 sent, -1 back. */
static void expect_outbox(struct group *g, long sign)
{
    long n = 0;
    for (size_t i = 0; i < g->nrefs && g->p->cfg.on_outbox_expect; i++)
        n += g->refs[i].e->roles[g->refs[i].item] == ROLE_OUTBOX;
    if (n)
        g->p->cfg.on_outbox_expect(sign * n, g->p->cfg.on_outbox_ud);
}

static void group_start(struct eddy_processor *p, struct group *g)
{
    if (g->nrefs > g->items_cap) {
        g->items_cap = g->refs_cap;
        free(g->items);
        g->items = eddy_malloc(g->items_cap * sizeof *g->items);
    }
    struct eddy_ddb_txn_item *items = g->items;
    memset(items, 0, g->nrefs * sizeof *items);
    for (size_t i = 0; i < g->nrefs; i++) {
        struct entity *e = g->refs[i].e;
        size_t k = g->refs[i].item;
        if (e->roles[k] == ROLE_STATE)
            eddy_commit_state_put(&p->commit, e->prev, &items[i]);
        else
            eddy_commit_new_put(&p->commit, &items[i]);
        items[i].item_json = e->items[k].json;
        items[i].item_json_len = e->items[k].len;
    }
    /* a token makes a repeat after a timeout idempotent instead of a conflict */
    char token[40];
    snprintf(token, sizeof token, "%016" PRIx64 "%016" PRIx64, eddy_rng_next(&p->rng),
             eddy_rng_next(&p->rng));
    struct eddy_error err;
    eddy_err rc = eddy_ddb_transact_write(p->ddb, items, g->nrefs, token, txn_done, g, NULL, &err);
    if (rc == EDDY_OK) {
        p->inflight++;
        p->commits++;
        expect_outbox(g, +1);
        return;
    }
    for (size_t j = 0; j < g->nents; j++) {
        g->ents[j]->b->error = err;
        proc_finish(g->ents[j], rc);
    }
    proc_group_put(g);
}

/* Hand the step's outbox rows, in (seq, idx) order, to the publisher. */
static void hand_outbox(struct eddy_processor *p, const struct entity *e)
{
    if (!e->outbox || p->cfg.on_outbox == NULL)
        return;
    for (size_t k = 0; k < e->nitems; k++)
        if (e->roles[k] == ROLE_OUTBOX)
            p->cfg.on_outbox(&e->items[k], p->cfg.on_outbox_ud);
}

static void txn_ok(struct group *g)
{
    struct eddy_processor *p = g->p;
    p->stats.transactions++;
    for (size_t j = 0; j < g->nents; j++) {
        struct entity *e = g->ents[j];
        hand_outbox(p, e);
        committed(e);
        proc_step_clear(e);
    }
    for (size_t j = 0; j < g->nents; j++) {
        struct entity *e = g->ents[j];
        if (has_pending(e))
            eddy_list_insert_tail(&p->ready, &e->link); /* the rest of a split batch */
        else
            proc_finish(e, EDDY_OK);
    }
}

/*
 * Read CancellationReasons item by item into the entities' fail_* fields and
 * take the state items they returned. True when the table throttled (every
 * entity of the group waits); a TransactionConflict concerns its entity
 * alone.
 */
static bool classify(struct group *g, struct eddy_ddb_txn_result *res)
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
                proc_event_final(ev, EDDY_EV_DUPLICATE, "event id applied before (dedupe marker)");
                g->p->stats.duplicates++;
            }
        } else if (strcmp(code, "ConditionalCheckFailed") == 0) {
            e->fail_state = true; /* the state moved on, or records of its next seq exist */
            if (e->roles[k] == ROLE_STATE && e->fresh == NULL) {
                e->fresh = res->reasons[i].item;
                res->reasons[i].item = NULL;
            }
        } else if (strcmp(code, "TransactionConflict") == 0) {
            e->fail_contended = true; /* another transaction on this entity's items */
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

static void txn_canceled(struct group *g, struct eddy_ddb_txn_result *res)
{
    struct eddy_processor *p = g->p;
    for (size_t j = 0; j < g->nents; j++) {
        g->ents[j]->fail_state = g->ents[j]->fail_throttle = g->ents[j]->fail_contended = false;
        g->ents[j]->fail_code = NULL;
    }
    bool throttle = classify(g, res);
    for (size_t j = 0; j < g->nents; j++) {
        struct entity *e = g->ents[j];
        if (e->fail_state) {
            conflict(e);
        } else if (e->fail_code) {
            proc_finish(e, EDDY_EAWS);
        } else if (throttle || e->fail_throttle) {
            proc_throttled(e, "throttling", false);
        } else if (e->fail_contended) {
            proc_throttled(e, "TransactionConflict", true);
        } else {
            /* not at fault (or only duplicates dropped): commit again at once */
            proc_step_clear(e);
            eddy_list_insert_tail(&p->ready, &e->link);
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
    expect_outbox(g, -1);
    if (err == EDDY_OK) {
        txn_ok(g);
    } else if (err == EDDY_ETXN_CANCELED && res->n == g->nrefs) {
        txn_canceled(g, res);
    } else {
        for (size_t j = 0; j < g->nents; j++) {
            struct entity *e = g->ents[j];
            if (err == EDDY_ETXN_CANCELED) { /* no reasons to read: try again later */
                proc_throttled(e, "TransactionCanceled without reasons", false);
                continue;
            }
            eddy_error_set(&e->b->error, err, "%s: TransactWriteItems: %s", e->pk,
                           reply && reply->error ? eddy_error_text(reply->error)
                                                 : eddy_err_msg(err));
            proc_finish(e, err);
        }
    }
    eddy_ddb_txn_result_cleanup(res);
    proc_group_put(g);
    proc_pump_soon(p);
    proc_maybe_closed(p);
}

/*
 * Whether a group that could take more should leave now: when no other
 * transaction is out, when it is full enough (group_fill items, 3/4 of its
 * bytes, or half of the events the caller may have in hand), or when the
 * processor closes. Otherwise it waits for a transaction to come back and
 * the entities that became ready meanwhile join it: under load the calls
 * go fuller, and the wait is bounded by the transactions already out.
 */
static bool group_goes(const struct eddy_processor *p, const struct group *g)
{
    if (p->commits == 0 || eddy_closer_closing(&p->closer) || g->nrefs >= p->fill ||
        g->bytes + p->envelope >= EDDY_RECORD_TXN_BYTES_MAX / 4 * 3)
        return true;
    size_t events = 0;
    for (size_t j = 0; j < g->nents; j++)
        events += g->ents[j]->nsev;
    return p->cfg.feed_max > 0 && events * 2 >= p->cfg.feed_max;
}

/* Start the group being formed, if any (the processor closes). */
void proc_commit_flush(struct eddy_processor *p)
{
    struct group *g = p->forming;
    p->forming = NULL;
    if (g)
        group_start(p, g);
}

/* Ready entities into groups, as many groups as there is room for in flight;
 * the rest wait for a transaction to finish (its callback pumps again). The
 * last group, not full, may wait too (group_goes): it is kept as it is built
 * in p->forming and takes the next ready entities first. */
void proc_commit_ready(struct eddy_processor *p)
{
    size_t max = p->cfg.commits_max ? p->cfg.commits_max : DEFAULT_COMMITS_MAX;
    struct group *g = p->forming;
    struct entity *e;
    p->forming = NULL;
    while ((g != NULL || p->commits < max) && (e = entity_pop(&p->ready)) != NULL) {
        if (proc_prepare(e) == BROKEN) {
            proc_finish(e, e->b->error.code);
            continue;
        }
        if (e->nsev == 0) { /* nothing to write: every event failed or was a duplicate */
            proc_finish(e, EDDY_OK);
            continue;
        }
        if (g && proc_txn_check(p, g->nrefs + e->nitems, g->bytes + e->bytes, NULL) != EDDY_OK) {
            group_start(p, g);
            g = NULL;
            if (p->commits >= max) { /* built again when its turn comes */
                proc_step_clear(e);
                eddy_list_insert_head(&p->ready, &e->link);
                break;
            }
        }
        if (g == NULL)
            g = proc_group_get(p);
        group_add(g, e);
    }
    if (g == NULL)
        return;
    if (group_goes(p, g))
        group_start(p, g);
    else
        p->forming = g;
}
