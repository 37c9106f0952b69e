/*
 * relay_lanes.c - the entries the relay holds and their lanes: one lane per
 * entity, its entries in (seq, idx) order, the ready and backoff lists of
 * lanes whose head can go (see relay_int.h). An entry is made from an
 * outbox row, committed or swept.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/state.h"
#include "relay/relay_int.h"

/* An entry waits, goes out in a call, and is published or found dead;
 * a failed call puts it back to wait. Done and dead are final. */
static const struct eddy_state entry_state_v[] = {
    [E_WAIT] = {"wait", EDDY_STATE_TO(E_SENT) | EDDY_STATE_TO(E_DEAD)},
    [E_SENT] = {"sent", EDDY_STATE_TO(E_DONE) | EDDY_STATE_TO(E_WAIT) | EDDY_STATE_TO(E_DEAD)},
    [E_DONE] = {"done", 0},
    [E_DEAD] = {"dead", 0},
};
static const struct eddy_states entry_states = EDDY_STATES("relay entry", entry_state_v);

void relay_entry_set_state(struct entry *e, enum entry_state to)
{
    eddy_state_move(&entry_states, e->st, to, "%s", e->o.sk);
    e->st = to;
}

static void entry_free(struct entry *e)
{
    free(e->source);
    if (e->fields == NULL) /* else they point into the fields */
        free((void *)e->eb.resources);
    free(e->fields);
    free(e->text);
    free(e->error);
    cJSON_Delete(e->item);
    free(e);
}

/* The last refusal, as the dead row will say it (ERROR_MAX bytes at most):
 * most entries are never refused, so it is made only then. */
#define ERROR_MAX 512
void relay_entry_error(struct entry *e, const char *fmt, ...)
{
    char text[ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(e->error);
    e->error = eddy_strdup(text);
}

void relay_lane_free(void *v)
{
    struct lane *l = v;
    struct eddy_list *q, *n;
    eddy_list_foreach_safe(q, n, &l->entries)
    {
        entry_free(eddy_list_data(q, struct entry, link));
    }
    free(l); /* its key too */
}

struct lane *relay_list_pop(struct eddy_list *ls)
{
    struct eddy_list *q = eddy_list_take(ls);
    return q ? eddy_list_data(q, struct lane, link) : NULL;
}

/* The lane's head can be sent or moved: list it (ready, or backoff). */
void relay_lane_list(struct eddy_relay *r, struct lane *l)
{
    struct entry *e = l->head;
    if (lane_listed(l) || l->pinned || e == NULL || e->moving ||
        (e->st != E_WAIT && e->st != E_DEAD))
        return;
    uint64_t now = uv_now(r->loop);
    if (e->ready_at > now) {
        eddy_list_insert_tail(&r->backoff, &l->link);
        if (!uv_is_active((uv_handle_t *)&r->retry_timer) ||
            uv_timer_get_due_in(&r->retry_timer) > e->ready_at - now)
            uv_timer_start(&r->retry_timer, relay_on_retry_timer, e->ready_at - now, 0);
        return;
    }
    eddy_list_insert_tail(&r->ready, &l->link);
}

/* The first entry not published yet from e on (NULL: none). */
static struct entry *unpublished_from(struct entry *e)
{
    while (e && e->st == E_DONE)
        e = entry_next(e);
    return e;
}

/* The head: the first entry not published yet (one in flight holds the
 * lane: an entity's later entries wait for it). Kept as entries change,
 * without a walk from the first: the entries before the head are all
 * published. */
static void lane_rehead(struct lane *l)
{
    l->head = unpublished_from(lane_first(l));
}

void relay_lane_head_past(struct lane *l, struct entry *e)
{
    if (l->head == e)
        l->head = unpublished_from(entry_next(e));
}

void relay_lane_release(struct eddy_relay *r, struct lane *l)
{
    if (!eddy_list_empty(&l->entries) || lane_listed(l) || l->pinned)
        return;
    eddy_map_remove(&r->lanes, eddy_str_c(l->key));
    free(l); /* its key too */
}

/* Take e out of its lane and free it; frees the lane when it is empty. */
void relay_entry_remove(struct eddy_relay *r, struct entry *e)
{
    struct lane *l = e->lane;
    relay_lane_head_past(l, e);
    eddy_list_remove(&e->link);
    l->n--;
    r->held--;
    entry_free(e);
    relay_lane_list(r, l);
    relay_lane_release(r, l);
}

/* Stopping: the lane's entries not sent yet are left in the outbox, for a
 * sweep, all of them (not a later one without an earlier one). */
void relay_lane_drop_rest(struct eddy_relay *r, struct lane *l)
{
    bool pinned = l->pinned;
    l->pinned = true;
    struct entry *e = lane_last(l);
    while (e && (e->st == E_WAIT || (e->st == E_DEAD && !e->moving))) {
        struct entry *prev = entry_prev(e);
        relay_entry_remove(r, e);
        e = prev;
    }
    l->pinned = pinned;
    relay_lane_release(r, l);
}

static int entry_cmp(const struct entry *a, const struct entry *b)
{
    if (a->o.seq != b->o.seq)
        return a->o.seq < b->o.seq ? -1 : 1;
    return (a->o.idx > b->o.idx) - (a->o.idx < b->o.idx);
}

/* The entity's lane; its key (the entity's _pk, eddy_record_pk) is made on
 * the stack, and copied only for a new lane. */
static struct lane *lane_get(struct eddy_relay *r, const struct entry *e, bool create)
{
    struct eddy_sstr key;
    eddy_sstr_init(&key);
    eddy_sstr_put(&key, e->o.ns, strlen(e->o.ns));
    eddy_sstr_put(&key, "/", 1);
    eddy_sstr_put(&key, e->o.id, strlen(e->o.id));
    struct lane *l = eddy_map_get(&r->lanes, (struct eddy_str){key.s, key.len});
    if (l == NULL && create) {
        l = eddy_calloc(1, sizeof *l + key.len + 1); /* the key follows */
        l->key = memcpy(l + 1, key.s, key.len + 1);
        eddy_list_init(&l->entries);
        eddy_list_init(&l->link);
        eddy_map_put(&r->lanes, eddy_str_c(l->key), l);
    }
    eddy_sstr_cleanup(&key);
    return l;
}

/* The lane already holds an entry at e's (seq, idx). Walked from the
 * nearer end: a sweep asks about the oldest rows, a commit about the
 * newest. */
bool relay_lane_has(const struct lane *l, const struct entry *e)
{
    const struct entry *first = l ? lane_first(l) : NULL, *last = l ? lane_last(l) : NULL;
    if (first == NULL)
        return false;
    if (e->o.seq - first->o.seq < last->o.seq - e->o.seq) {
        for (const struct entry *x = first; x; x = entry_next(x)) {
            int c = entry_cmp(x, e);
            if (c >= 0)
                return c == 0;
        }
        return false;
    }
    for (const struct entry *x = last; x; x = entry_prev(x)) {
        int c = entry_cmp(x, e);
        if (c <= 0)
            return c == 0;
    }
    return false;
}

/* Insert e in (seq, idx) order (from the tail: entries come in order). An
 * entry older than what was already published goes next. */
static void lane_insert(struct eddy_relay *r, struct lane *l, struct entry *e)
{
    struct entry *x = lane_last(l);
    while (x && entry_cmp(x, e) > 0 && x->st != E_DONE && x->st != E_SENT && !x->moving)
        x = entry_prev(x);
    e->lane = l;
    if (x) /* after x */
        eddy_list_insert_tail(x->link.next, &e->link);
    else
        eddy_list_insert_head(&l->entries, &e->link);
    l->n++;
    r->held++;
    if (l->head == NULL) /* the others are all published */
        l->head = e;
    else if (entry_next(e) != NULL) /* an older entry, swept: it may go first */
        lane_rehead(l);
    relay_lane_list(r, l);
}

/* ---- entries ---- */

int64_t relay_item_n(const cJSON *item, const char *name)
{
    const cJSON *n =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, name), "N");
    return cJSON_IsString(n) ? strtoll(n->valuestring, NULL, 10) : 0;
}

static void entry_resources(struct entry *e)
{
    size_t n = (size_t)cJSON_GetArraySize(e->o.resources);
    if (n == 0)
        return;
    const char **res = eddy_calloc(n, sizeof *res);
    size_t k = 0;
    const cJSON *av;
    cJSON_ArrayForEach(av, e->o.resources)
    {
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(av, "S");
        if (cJSON_IsString(str))
            res[k++] = str->valuestring;
    }
    e->eb.resources = res;
    e->eb.nresources = k;
}

static struct entry *entry_alloc(void)
{
    struct entry *e = eddy_calloc(1, sizeof *e);
    eddy_list_init(&e->link);
    eddy_list_init(&e->dlink);
    return e;
}

/* What both kinds of entry compute from e->o (and resources set): the
 * shard, the PutEvents entry, its size. */
static struct entry *entry_finish(struct eddy_relay *r, struct entry *e, int64_t ts, int64_t tms)
{
    const char *shard = strchr(e->o.pk, '/');
    e->shard = shard ? (uint32_t)strtoul(shard + 1, NULL, 10) : 0;
    if (e->o.source == NULL && r->source == NULL) {
        char source[EDDY_RECORD_SOURCE_MAX];
        eddy_record_default_source(e->o.ns, source);
        e->source = eddy_strdup(source);
    }
    e->commit_ms = tms > 0 ? tms : ts * 1000;
    e->eb.source = e->o.source ? e->o.source : e->source ? e->source : r->source;
    e->eb.detail_type = e->o.detail_type;
    e->eb.detail = e->o.detail;
    e->eb.event_bus_name = e->o.event_bus ? e->o.event_bus : r->ebus;
    e->eb.trace_header = e->o.trace_header;
    e->eb.time_s = ts;
    e->size = r->bus->entry_size ? r->bus->entry_size(&e->eb, &e->o) : eddy_eb_entry_size(&e->eb);
    struct eddy_error why;
    if (e->size > r->bus->max_bytes) { /* the commit path refuses these; older rows */
        relay_entry_set_state(e, E_DEAD);
        relay_entry_error(
            e, "EntryTooLarge: the entry is %zu bytes, over the %zu byte PutEvents limit", e->size,
            r->bus->max_bytes);
    } else if (r->bus->entry_check && r->bus->entry_check(&e->eb, &e->o, &why) != EDDY_OK) {
        /* as above; or rows committed for another bus: put would refuse
         * every call it joins */
        relay_entry_set_state(e, E_DEAD);
        relay_entry_error(e, "InvalidEntry: %s", why.detail);
    }
    return e;
}

/* An entry from an outbox row (taken over); NULL (row freed, logged) when
 * the row cannot be read. */
struct entry *relay_entry_new(struct eddy_relay *r, cJSON *item)
{
    struct entry *e = entry_alloc();
    struct eddy_error err = {0};
    e->item = item;
    if (eddy_record_parse_outbox(item, &e->o, &err) != EDDY_OK) {
        EDDY_ERROR("relay: left an unreadable outbox row: %s", eddy_error_text(&err));
        entry_free(e);
        return NULL;
    }
    entry_resources(e);
    return entry_finish(r, e, relay_item_n(item, "_ts"), relay_item_n(item, "_tms"));
}

/* Taken over from the row: its fields and its text (see relay.h). */
struct entry *relay_entry_committed(struct eddy_relay *r, struct eddy_record_text *row)
{
    struct entry *e = entry_alloc();
    const struct eddy_record_outbox_fields *f = e->fields = row->outbox;
    e->text = row->json;
    e->text_len = row->len;
    row->outbox = NULL;
    row->json = NULL;
    e->o = (struct eddy_record_outbox){
        .pk = f->pk,
        .sk = f->sk,
        .ns = f->ns,
        .id = f->id,
        .seq = f->seq,
        .idx = f->idx,
        .type = f->type,
        .event_id = f->sk,
        .detail_type = f->type,
        .detail = f->detail,
        .source = f->source,
        .trace_header = f->trace_header,
        .event_bus = f->event_bus,
    };
    e->eb.resources = f->resources;
    e->eb.nresources = f->nresources;
    if (f->detail_json_len >= 2 && f->detail_at + f->detail_json_len <= e->text_len) {
        e->eb.detail_json = e->text + f->detail_at; /* escaped once, for the row */
        e->eb.detail_json_len = f->detail_json_len;
    }
    return entry_finish(r, e, f->ts, f->tms);
}

/* Hold e (taken over) unless the lane has it already. */
bool relay_hold(struct eddy_relay *r, struct entry *e)
{
    struct lane *l = lane_get(r, e, true);
    if (relay_lane_has(l, e)) {
        entry_free(e);
        relay_lane_release(r, l);
        return false;
    }
    lane_insert(r, l, e);
    return true;
}

/* ---- entities left to the sweeps ---- */

/* The last entry of an entity left to the sweeps. */
struct relay_left {
    int64_t seq, idx;
    int64_t at_ms; /* unix ms it was committed */
    uint32_t shard;
};

static bool left_before(const struct relay_left *lf, int64_t seq, int64_t idx)
{
    return lf->seq < seq || (lf->seq == seq && lf->idx <= idx);
}

/* A mark stays until a sweep takes its entry. On a shard held by another
 * process nothing here sees that: the mark goes once that process's sweeps
 * have surely taken it (after the grace and a longest interval between
 * sweeps, or the takeover of a dead holder's lease), twice over. */
static bool left_stale(const struct eddy_relay *r, const struct relay_left *lf, int64_t now)
{
    uint64_t wait = 2 * ((uint64_t)r->cfg.grace_ms + r->cfg.sweep_max_ms + r->cfg.lease_ms);
    return !eddy_relay_holds(r, lf->shard) && now - lf->at_ms > (int64_t)wait;
}

bool relay_leave(struct eddy_relay *r, const struct eddy_record_outbox_fields *f)
{
    if (r->held < r->cfg.held_max && eddy_map_count(&r->left) == 0)
        return false; /* every commit's entries come here: the usual case costs nothing */
    struct eddy_sstr key;
    eddy_sstr_init(&key);
    eddy_sstr_put(&key, f->ns, strlen(f->ns));
    eddy_sstr_put(&key, "/", 1);
    eddy_sstr_put(&key, f->id, strlen(f->id));
    struct eddy_str k = {key.s, key.len};
    int64_t now = eddy_clock_unix_ms(r->clock);
    struct relay_left *lf = eddy_map_get(&r->left, k);
    if (lf && left_stale(r, lf, now)) {
        free(eddy_map_remove(&r->left, k));
        lf = NULL;
    }
    bool leave = lf != NULL || r->held >= r->cfg.held_max;
    if (leave && lf == NULL) {
        lf = eddy_calloc(1, sizeof *lf);
        eddy_map_put(&r->left, k, lf);
    }
    if (leave) {
        const char *shard = strchr(f->pk, '/');
        *lf = (struct relay_left){f->seq, f->idx, now,
                                  shard ? (uint32_t)strtoul(shard + 1, NULL, 10) : 0};
    }
    eddy_sstr_cleanup(&key);
    return leave;
}

void relay_left_taken(struct eddy_relay *r, const struct entry *e)
{
    struct eddy_str k = eddy_str_c(e->lane->key);
    struct relay_left *lf = eddy_map_get(&r->left, k);
    if (lf && left_before(lf, e->o.seq, e->o.idx))
        free(eddy_map_remove(&r->left, k));
}

/* Entries whose backoff ran out are ready again. */
void relay_on_retry_timer(uv_timer_t *t)
{
    struct eddy_relay *r = eddy_container_of(t, struct eddy_relay, retry_timer);
    uint64_t now = uv_now(r->loop), next = 0;
    struct eddy_list *q, *n;
    eddy_list_foreach_safe(q, n, &r->backoff)
    {
        struct lane *l = eddy_list_data(q, struct lane, link);
        uint64_t at = l->head ? l->head->ready_at : 0;
        if (at > now) {
            next = next == 0 || at < next ? at : next;
            continue;
        }
        eddy_list_remove(&l->link);
        relay_lane_list(r, l); /* to the ready list */
    }
    if (next)
        uv_timer_start(&r->retry_timer, relay_on_retry_timer, next - now, 0);
    relay_pump(r);
}
