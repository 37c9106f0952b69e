/*
 * relay_publish.c - the publisher: committed entries come in here, and
 * ready lane heads leave in PutEvents calls across entities (the bus kind's
 * limits), one entry of an entity out at a time unless the bus keeps an
 * entity's order within a call. Entries added in one loop turn share the
 * calls of that turn; a call that is not full waits, a bounded while, as
 * long as entries that could join it are on their way (see on_flush).
 * Accepted entries go to the delete queue; refused ones back to their lane
 * after a backoff, or dead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "relay/relay_int.h"

/* One PutEvents call. */
struct put_call {
    struct eddy_relay *r;
    struct eddy_list link; /* in r->out while in flight */
    uint64_t opened_at;    /* loop ms of its first entry */
    bool refused;          /* the bus client refused it before sending it */
    size_t n, bytes;
    struct entry **at;
    struct eddy_eb_entry *ents;
    const struct eddy_record_outbox **rows;
};

/* ---- the classic bus ---- */

static eddy_err classic_put(void *client, const struct eddy_eb_entry *entries,
                            const struct eddy_record_outbox *const *rows, size_t n,
                            eddy_eb_put_cb cb, void *ud, struct eddy_error *err)
{
    (void)rows;
    return eddy_eb_put_events(client, entries, n, cb, ud, NULL, err);
}

static bool classic_accepted(const struct eddy_eb_entry_result *res)
{
    return res->error_code == NULL || res->error_code[0] == '\0';
}

/* Codes that no retry changes; the others (InternalFailure, throttling)
 * are retried up to the attempts. */
static bool classic_refused_for_good(const char *code)
{
    static const char *const codes[] = {"ValidationException", "InvalidArgument", "MalformedDetail",
                                        "InvalidEventPatternException"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

const struct eddy_relay_bus eddy_relay_bus_classic = {
    .name = "classic",
    .max_entries = EDDY_EB_MAX_ENTRIES,
    .max_bytes = EDDY_EB_MAX_BYTES,
    .entity_shares_call = false,
    .put = classic_put,
    .accepted = classic_accepted,
    .refused_for_good = classic_refused_for_good,
};

static bool put_add(struct eddy_relay *r, struct entry *e);

/* Where the bus keeps an entity's order within a call, an entry whose
 * entity's previous entry waits in the open call joins it, behind it:
 * a commit's entries of an entity leave together, not one a round trip. */
static void join_open_call(struct eddy_relay *r, struct entry *e)
{
    const struct put_call *pc = r->open;
    const struct entry *prev = entry_prev(e);
    if (!r->bus->entity_shares_call || pc == NULL || prev == NULL || prev->st != E_SENT ||
        entry_next(e) != NULL || e->st != E_WAIT)
        return;
    for (size_t k = pc->n; k-- > 0;)
        if (pc->at[k] == prev) {
            put_add(r, e); /* when the call is full, e waits for prev as before */
            return;
        }
}

void eddy_relay_publish(struct eddy_relay *r, struct eddy_record_text *row)
{
    if (r == NULL || r->closing)
        return;
    if (row->outbox == NULL) {
        EDDY_ERROR("relay: a committed row came without its outbox fields; left to the sweeps");
        return;
    }
    if (relay_leave(r, row->outbox)) {
        r->st.overflow++; /* the row stays in the outbox: a sweep takes it */
        return;
    }
    struct entry *e = relay_entry_committed(r, row);
    e->commit_ms = eddy_clock_unix_ms(r->clock); /* the commit is done: from now on */
    r->back_came++;
    if (relay_hold(r, e)) {
        r->st.committed++;
        join_open_call(r, e);
        /* could it join a call at once (its entity has nothing out, or its
         * previous entry waits in the open call)? */
        bool joins = (e->lane->head == e && e->st == E_WAIT) || e->st == E_SENT;
        r->joins = r->joins * 7 / 8 + (joins ? 1024 / 8 : 0);
        r->fresh = r->fresh * 7 / 8 + (e->lane->n == 1 ? 1024 / 8 : 0);
    }
    relay_pump(r);
}

void eddy_relay_on_outbox(struct eddy_record_text *row, void *ud)
{
    eddy_relay_publish(ud, row);
}

static void on_flush(uv_idle_t *h);

void eddy_relay_expect(struct eddy_relay *r, long n)
{
    if (r == NULL || r->closing)
        return;
    size_t k = (size_t)(n < 0 ? -n : n);
    r->expect = n >= 0 ? r->expect + k : r->expect - (k < r->expect ? k : r->expect);
    if (n < 0) {
        uint64_t now = uv_now(r->loop);
        r->back_gap = r->back_at ? (r->back_gap * 3 + (now - r->back_at)) / 4 : 0;
        r->back_at = now;
        /* the entries of the last commit back came right after it (or not at
         * all, when a conflict canceled it): count its share */
        if (r->back_expected) {
            size_t came = r->back_came < r->back_expected ? r->back_came : r->back_expected;
            r->commits_ok = r->commits_ok * 7 / 8 + (uint32_t)(came * 1024 / r->back_expected / 8);
        }
        r->back_expected = k;
        r->back_came = 0;
    }
    if (r->open && r->started) /* a commit is back: the open call may go now */
        uv_idle_start(&r->flush, on_flush);
}

void eddy_relay_on_outbox_expect(long n, void *ud)
{
    eddy_relay_expect(ud, n);
}

/* ---- publishing ---- */

static void entry_published(struct eddy_relay *r, struct entry *e, int64_t now_ms)
{
    struct lane *l = e->lane;
    relay_entry_set_state(e, E_DONE);
    relay_lane_head_past(l, e);
    r->st.published++;
    if (r->metrics) {
        eddy_metrics_inc(r->metrics, EDDY_METRIC_published);
        eddy_metrics_observe(r->metrics, EDDY_LATENCY_commit_to_publish_latency,
                             (now_ms - e->commit_ms) * 1000);
    }
    if (r->cfg.on_publish)
        r->cfg.on_publish(&e->o, now_ms, r->cfg.on_publish_ud);
    relay_delete_queue(r, e);
    relay_lane_list(r, l);
}

/* The code of an entry the bus client refused before sending it: no
 * retry changes that. */
static const char invalid_entry[] = "InvalidEntry";

/* code NULL: the call failed as a whole (sent again, without counting). */
static void entry_failed(struct eddy_relay *r, struct entry *e, const char *code, const char *msg)
{
    r->st.failed_entries++;
    if (r->metrics)
        eddy_metrics_inc(r->metrics, EDDY_METRIC_publish_failures);
    struct eddy_log_fields f = {.entity = e->o.id, .event_id = e->o.event_id, .seq = e->o.seq};
    bool dead = false;
    if (code) {
        e->refusals++;
        relay_entry_error(e, "%s: %s", code, msg ? msg : "");
        dead = strcmp(code, invalid_entry) == 0 || r->bus->refused_for_good(code) ||
               e->refusals >= r->cfg.attempts;
    }
    relay_entry_set_state(e, dead ? E_DEAD : E_WAIT);
    e->failures++;
    eddy_log(EDDY_LOG_WARN, &f, "relay: PutEvents %s %s (failure %u): %s %s",
             code ? "refused" : "failed for", e->o.sk, e->failures, code ? code : "",
             msg ? msg : "");
    if (r->stopping && e->st == E_WAIT) { /* left in the outbox for a sweep */
        relay_lane_drop_rest(r, e->lane);
        return;
    }
    e->ready_at =
        e->st == E_DEAD
            ? 0
            : uv_now(r->loop) + eddy_backoff_full_jitter(&r->rng, e->failures - 1,
                                                         r->cfg.retry_base_ms, r->cfg.retry_cap_ms);
    relay_lane_list(r, e->lane);
}

/* A call that failed as a whole. One the bus client refused before sending
 * it (EDDY_ELIMIT, EDDY_EINVAL: an entry it takes for invalid) is not sent
 * again as it was: an entry alone in it is dead, the entries of a larger
 * one go again each in a call of its own, which finds the invalid one. */
static void call_failed(struct eddy_relay *r, const struct put_call *pc, struct entry *e,
                        const char *msg)
{
    if (pc->refused && pc->n == 1) {
        entry_failed(r, e, invalid_entry, msg);
        return;
    }
    e->alone = e->alone || pc->refused;
    entry_failed(r, e, NULL, msg);
}

static void put_call_free(struct put_call *pc)
{
    free(pc->at);
    free(pc->ents);
    free(pc->rows);
    free(pc);
}

static void on_put(eddy_err rc, struct eddy_eb_put_result *res, const struct eddy_aws_reply *reply,
                   void *ud)
{
    struct put_call *pc = ud;
    struct eddy_relay *r = pc->r;
    r->puts--;
    eddy_list_remove(&pc->link);
    int64_t now = eddy_clock_unix_ms(r->clock);
    for (size_t k = 0; k < pc->n; k++) {
        struct entry *e = pc->at[k];
        const struct eddy_eb_entry_result *er =
            rc == EDDY_OK && k < res->n ? &res->entries[k] : NULL;
        if (rc != EDDY_OK)
            call_failed(r, pc, e, eddy_error_text(reply->error));
        else if (er == NULL)
            entry_failed(r, e, "MissingResult", "PutEvents answered fewer entries");
        else if (!r->bus->accepted(er))
            entry_failed(r, e, er->error_code ? er->error_code : "Refused", er->error_message);
        else
            entry_published(r, e, now);
    }
    eddy_eb_put_result_cleanup(res);
    put_call_free(pc);
    relay_delete_send(r, false);
    relay_pump(r);
    relay_check_stopped(r);
}

/* Send the open call, unless calls are all out (it is sent when one is back). */
static void put_send(struct eddy_relay *r)
{
    struct put_call *pc = r->open;
    uv_idle_stop(&r->flush);
    if (pc == NULL || r->puts >= r->cfg.inflight_max)
        return;
    uv_timer_stop(&r->linger_timer);
    r->open = NULL;
    struct eddy_error err = {0};
    r->st.put_calls++;
    r->puts++;
    eddy_list_insert_tail(&r->out, &pc->link);
    eddy_err rc = r->bus->put(r->bus_client, pc->ents, pc->rows, pc->n, on_put, pc, &err);
    if (rc == EDDY_OK)
        return;
    pc->refused = rc == EDDY_ELIMIT || rc == EDDY_EINVAL;
    struct eddy_eb_put_result none = {0};
    struct eddy_aws_reply reply = {.error = &err};
    on_put(rc, &none, &reply, pc);
}

static void on_linger(uv_timer_t *t)
{
    put_send(eddy_container_of(t, struct eddy_relay, linger_timer));
}

/* Whether the open call should wait for entries that may join it soon and
 * would fill it (to the bus's limit, or where an entity has one entry out at
 * a time, to the entities held and those the commits are likely to bring):
 * - the next entries of the entities of the calls in flight (they can go
 *   when those calls are back): the calls of a few busy entities stay in
 *   step;
 * - the entries of the commits in flight likely to be committed (not
 *   canceled by a conflict, as the last ones were) and to find their entity
 *   with nothing out, when the next commit is due back (as the last ones
 *   came) before the call's linger is over;
 * - one entry for each entity whose entries are all published (only their
 *   deletes are pending), up to the entries the commits in flight carry:
 *   busy entities whose lanes ran dry between two commits. Without them, when
 *   PutEvents answers faster than the commits come, a few busy entities'
 *   calls drift apart and carry two or three entries instead of five.
 * A few entries on their way, or commits slower than the linger, do not
 * hold the call: the latency they would add buys little. */
static bool put_wait(const struct eddy_relay *r, const struct put_call *pc)
{
    size_t room = r->bus->max_entries, coming = 0;
    if (!r->bus->entity_shares_call) {
        size_t entities =
            eddy_map_count(&r->lanes) + (size_t)((uint64_t)r->expect * r->fresh / 1024);
        room = entities < room ? entities : room;
    }
    if (pc->n >= room)
        return false;
    bool due = r->back_at + r->back_gap <= pc->opened_at + r->cfg.linger_ms;
    if (due)
        coming = (size_t)((uint64_t)r->expect * r->joins / 1024 * r->commits_ok / 1024);
    if (due && pc->n + coming < room && r->expect) {
        size_t drained = 0, want = room - pc->n - coming; /* stop counting there */
        struct eddy_map_iter it;
        struct eddy_str key;
        void *v;
        eddy_map_iter_init(&r->lanes, &it);
        while (drained < want && drained < r->expect && eddy_map_next(&it, &key, &v))
            drained += ((const struct lane *)v)->head == NULL;
        coming += (size_t)((uint64_t)drained * r->commits_ok / 1024);
    }
    uint64_t now = uv_now(r->loop);
    struct eddy_list *q;
    eddy_list_foreach(q, &r->out)
    {
        const struct put_call *out = eddy_list_data(q, struct put_call, link);
        for (size_t k = 0; k < out->n && pc->n + coming < room; k++) {
            const struct entry *next = entry_next(out->at[k]);
            coming += next && next->st == E_WAIT && next->ready_at <= now;
        }
    }
    return pc->n + coming >= room;
}

/* The end of a loop turn: send the open call when it is full, or when
 * nothing is on its way to join it (put_wait), or linger_ms after its first
 * entry: full calls under load, and, when a few entities are busy, calls in
 * step, each carrying every entity with an entry to send. */
static void on_flush(uv_idle_t *h)
{
    struct eddy_relay *r = eddy_container_of(h, struct eddy_relay, flush);
    struct put_call *pc = r->open;
    uv_idle_stop(&r->flush);
    if (pc) {
        uint64_t waited = uv_now(r->loop) - pc->opened_at;
        if (pc->n == r->bus->max_entries || r->stopping || waited >= r->cfg.linger_ms ||
            !put_wait(r, pc))
            put_send(r);
        else if (!uv_is_active((uv_handle_t *)&r->linger_timer))
            uv_timer_start(&r->linger_timer, on_linger, r->cfg.linger_ms - waited, 0);
    }
    relay_delete_send(r, false);
}

/* Add e to the open call; false when the call is full (send it first). */
static bool put_add(struct eddy_relay *r, struct entry *e)
{
    struct put_call *pc = r->open;
    if (pc == NULL) {
        pc = r->open = eddy_calloc(1, sizeof *pc);
        pc->r = r;
        pc->opened_at = uv_now(r->loop);
        pc->at = eddy_calloc(r->bus->max_entries, sizeof *pc->at);
        pc->ents = eddy_calloc(r->bus->max_entries, sizeof *pc->ents);
        pc->rows = eddy_calloc(r->bus->max_entries, sizeof *pc->rows);
        uv_idle_start(&r->flush, on_flush);
    }
    if (pc->n == r->bus->max_entries ||
        (pc->n && (pc->bytes + e->size > r->bus->max_bytes || e->alone || pc->at[0]->alone)))
        return false;
    pc->at[pc->n] = e;
    pc->rows[pc->n] = &e->o;
    pc->ents[pc->n++] = e->eb;
    pc->bytes += e->size;
    relay_entry_set_state(e, E_SENT);
    if (e->failures) {
        r->st.retries++;
        if (r->metrics)
            eddy_metrics_inc(r->metrics, EDDY_METRIC_retries);
    }
    return true;
}

/* Send ready heads across lanes while calls are to spare. */
void relay_pump(struct eddy_relay *r)
{
    if (!r->started || r->closing)
        return;
    uint64_t now = uv_now(r->loop);
    struct eddy_list *q;
    while ((q = eddy_list_head(&r->ready)) != NULL) {
        struct lane *l = eddy_list_data(q, struct lane, link);
        struct entry *e = l->head;
        if (e == NULL || e->moving || (e->st != E_WAIT && e->st != E_DEAD)) {
            relay_list_pop(&r->ready);
            relay_lane_release(r, l);
            continue;
        }
        if (e->st == E_DEAD) {
            relay_list_pop(&r->ready);
            relay_move_start(r, e);
            continue;
        }
        if (!put_add(r, e)) {
            if (r->puts >= r->cfg.inflight_max)
                return; /* the open call waits for a call to come back */
            put_send(r);
            continue;
        }
        relay_list_pop(&r->ready);
        /* where the bus keeps an entity's order within a call, its next
         * entries may join this one */
        for (struct entry *n = entry_next(e); r->bus->entity_shares_call && n && n->st == E_WAIT &&
                                              n->ready_at <= now && put_add(r, n);
             n = entry_next(n))
            ;
    }
    if (r->open && r->open->n == r->bus->max_entries)
        put_send(r);
    if (r->open)
        uv_idle_start(&r->flush, on_flush);
}
