/*
 * relay.c - the outbox relay (see relay.h for what it guarantees).
 *
 * Entries: every entry held is an outbox row (a cJSON item it owns) in its
 * entity's lane, a list in (seq, idx) order. A lane's head is its first
 * entry not yet published; published entries stay in the lane until their
 * delete is done, so a sweep never takes a row this process is still
 * handling. Lanes whose head can be sent now wait in the ready list (FIFO:
 * fair across entities); lanes whose head waits for a backoff wait in the
 * backoff list, looked at when the backoff timer fires.
 *
 * Calls: the pump moves ready heads into the open PutEvents call, sent when
 * full or at the end of the loop turn (an idle handle), so the entries of
 * the commits of one turn share calls. Published entries go to the delete
 * queue, sent 25 keys a call, or after a 20 ms linger. A dead entry is
 * moved with one TransactWriteItems (delete the row, put the dead row).
 *
 * Sweeps: one per shard at a time, on the shard's timer (see relay.h).
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

#include "aws/retry.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/lru.h"
#include "eddy/rng.h"
#include "relay/lease.h"
#include "svc/dynamodb.h"
#include "base/metrics.h"

#define DELETE_ATTEMPTS 10
#define DELETE_LINGER_MS 250

enum entry_state {
    E_WAIT, /* to send (or sent again after its backoff) */
    E_SENT, /* in a call (open or in flight) */
    E_DONE, /* published; its delete is queued or in flight */
    E_DEAD, /* to move to the dead-letter partition (or moving) */
};

struct lane;

struct entry {
    struct lane *lane;
    struct entry *prev, *next; /* in the lane */
    cJSON *item;               /* the outbox row, owned */
    struct eddy_record_outbox o;
    uint32_t shard;
    int64_t commit_ms;
    enum entry_state st;
    unsigned refusals, failures;
    bool moving; /* the dead move is in flight */
    uint64_t ready_at;
    struct eddy_eb_entry eb;
    size_t size;
    char *source;        /* "eddy.<namespace>" when built here */
    char error[512];     /* the last refusal, for the dead row */
    struct entry *dnext; /* in the delete queue */
};

struct lane {
    char *key; /* the entity's _pk */
    struct entry *first, *last;
    struct entry *head; /* the next to send, NULL when all are published */
    size_t n;
    bool listed;             /* in the ready or backoff list */
    struct lane *next_ready; /* in that list */
};

struct lane_list {
    struct lane *head, *tail;
};

/* One PutEvents call. */
struct put_call {
    struct eddy_relay *r;
    size_t n, bytes;
    struct entry **at;
    struct eddy_eb_entry *ents;
    const struct eddy_record_outbox **rows;
};

struct relay_shard {
    struct eddy_relay *r;
    uint32_t index;
    char *pk;
    bool surrender; /* lease to give back when the sweep is done */
    bool sweeping;
    uv_timer_t timer;
    uint32_t interval_ms; /* after an empty sweep: doubles up to sweep_max */
    /* the sweep in hand */
    char *after;      /* read rows after this sort key */
    size_t read;      /* rows read */
    size_t taken;     /* rows taken */
    int64_t young_ms; /* the oldest row too young to take (its commit ms), 0: none */
    int64_t oldest_ms;
    char *ent_key; /* the entity of the last row read, and rows of it read */
    size_t ent_rows;
    int64_t lag_ms;
    uint64_t sent_at; /* loop time the Query in flight was sent, 0: none */
};

struct eddy_relay {
    uv_loop_t *loop;
    struct eddy_ddb *ddb;
    const struct eddy_relay_bus *bus;
    void *bus_client;
    const struct eddy_clock *clock;
    struct eddy_metrics *metrics;
    struct eddy_relay_config cfg;
    char *table, *ebus, *source, *owner;
    struct eddy_rng rng;
    struct relay_shard *shards;
    struct eddy_lease *lease; /* NULL without leases */
    struct eddy_map lanes;    /* entity _pk -> struct lane */
    /* Rows deleted while a sweep's Query was out: sort key -> loop time of
     * the delete + 1. Such a Query may still return them (it read before the
     * delete); a sweep skips a row deleted after its Query was sent. */
    struct eddy_map gone;
    struct lane_list ready, backoff;
    size_t held;
    struct put_call *open;
    unsigned puts, moves, deletes, sweeps; /* calls in flight */
    struct entry *del_head, *del_tail;     /* published, to delete */
    size_t del_queued;
    unsigned del_attempt;
    uv_idle_t flush;
    uv_timer_t retry_timer, del_timer, stop_timer;
    bool started, stopping, lease_stopping, closing;
    unsigned open_handles;
    struct eddy_relay_stats st;
    void (*stop_cb)(void *ud);
    void *stop_ud;
};

static void pump(struct eddy_relay *r);
static void on_flush(uv_idle_t *h);
static void check_stopped(struct eddy_relay *r);
static void sweep_start(struct relay_shard *s);

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

/* ---- construction ---- */

static char *default_owner(struct eddy_rng *rng)
{
    char host[256] = "eddy";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "eddy");
    host[sizeof host - 1] = '\0';
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_appendf(&b, "%.200s-%ld-%08" PRIx32, host, (long)getpid(),
                     (uint32_t)eddy_rng_next(rng));
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
    c->retry_base_ms = c->retry_base_ms ? c->retry_base_ms : 100;
    c->retry_cap_ms = c->retry_cap_ms ? c->retry_cap_ms : 5000;
}

static char *dup_or_null(const char *s)
{
    return s ? eddy_strdup(s) : NULL;
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
    eddy_map_init(&r->gone, eddy_rng_next(&r->rng));
    r->shards = eddy_calloc(cfg->shards, sizeof *r->shards);
    for (uint32_t i = 0; i < cfg->shards; i++) {
        r->shards[i].r = r;
        r->shards[i].index = i;
        r->shards[i].pk = eddy_record_outbox_pk(i);
        r->shards[i].interval_ms = r->cfg.poll_ms;
    }
    return r;
}

static void entry_free(struct entry *e)
{
    free(e->source);
    free((void *)e->eb.resources);
    cJSON_Delete(e->item);
    free(e);
}

static void lane_free(void *v)
{
    struct lane *l = v;
    struct entry *e = l->first;
    while (e) {
        struct entry *next = e->next;
        entry_free(e);
        e = next;
    }
    free(l->key);
    free(l);
}

void eddy_relay_free(struct eddy_relay *r)
{
    if (r == NULL)
        return;
    eddy_map_cleanup(&r->lanes, lane_free);
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

const char *eddy_relay_owner(const struct eddy_relay *r)
{
    return r->owner;
}

/* ---- lanes ---- */

static void list_push(struct lane_list *ls, struct lane *l)
{
    l->next_ready = NULL;
    if (ls->tail)
        ls->tail->next_ready = l;
    else
        ls->head = l;
    ls->tail = l;
    l->listed = true;
}

static struct lane *list_pop(struct lane_list *ls)
{
    struct lane *l = ls->head;
    if (l) {
        ls->head = l->next_ready;
        if (ls->head == NULL)
            ls->tail = NULL;
        l->next_ready = NULL;
        l->listed = false;
    }
    return l;
}

static void on_retry_timer(uv_timer_t *t);

/* The lane's head can be sent or moved: list it (ready, or backoff). */
static void lane_list(struct eddy_relay *r, struct lane *l)
{
    struct entry *e = l->head;
    if (l->listed || e == NULL || e->moving || (e->st != E_WAIT && e->st != E_DEAD))
        return;
    uint64_t now = uv_now(r->loop);
    if (e->ready_at > now) {
        list_push(&r->backoff, l);
        if (!uv_is_active((uv_handle_t *)&r->retry_timer) ||
            uv_timer_get_due_in(&r->retry_timer) > e->ready_at - now)
            uv_timer_start(&r->retry_timer, on_retry_timer, e->ready_at - now, 0);
        return;
    }
    list_push(&r->ready, l);
}

/* The head: the first entry not published yet (one in flight holds the
 * lane: an entity's later entries wait for it). */
static void lane_rehead(struct lane *l)
{
    struct entry *e = l->first;
    while (e && e->st == E_DONE)
        e = e->next;
    l->head = e;
}

static void lane_release(struct eddy_relay *r, struct lane *l)
{
    if (l->first != NULL || l->listed)
        return;
    eddy_map_remove(&r->lanes, eddy_str_c(l->key));
    free(l->key);
    free(l);
}

/* Take e out of its lane and free it; frees the lane when it is empty. */
static void entry_remove(struct eddy_relay *r, struct entry *e)
{
    struct lane *l = e->lane;
    if (e->prev)
        e->prev->next = e->next;
    else
        l->first = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->last = e->prev;
    l->n--;
    r->held--;
    entry_free(e);
    lane_rehead(l);
    lane_list(r, l);
    lane_release(r, l);
}

/* Stopping: the lane's entries not sent yet are left in the outbox, for a
 * sweep, all of them (not a later one without an earlier one). */
static void lane_drop_rest(struct eddy_relay *r, struct lane *l)
{
    bool listed = l->listed;
    l->listed = true; /* neither listed nor freed while it empties */
    struct entry *e = l->last;
    while (e && (e->st == E_WAIT || (e->st == E_DEAD && !e->moving))) {
        struct entry *prev = e->prev;
        entry_remove(r, e);
        e = prev;
    }
    l->listed = listed;
    lane_release(r, l);
}

static int entry_cmp(const struct entry *a, const struct entry *b)
{
    if (a->o.seq != b->o.seq)
        return a->o.seq < b->o.seq ? -1 : 1;
    return (a->o.idx > b->o.idx) - (a->o.idx < b->o.idx);
}

static struct lane *lane_get(struct eddy_relay *r, const struct entry *e, bool create)
{
    char *key = eddy_record_pk(e->o.ns, e->o.id);
    struct lane *l = eddy_map_get(&r->lanes, eddy_str_c(key));
    if (l || !create) {
        free(key);
        return l;
    }
    l = eddy_calloc(1, sizeof *l);
    l->key = key;
    eddy_map_put(&r->lanes, eddy_str_c(key), l);
    return l;
}

/* The lane already holds an entry at e's (seq, idx). */
static bool lane_has(const struct lane *l, const struct entry *e)
{
    for (const struct entry *x = l ? l->last : NULL; x; x = x->prev) {
        int c = entry_cmp(x, e);
        if (c == 0)
            return true;
        if (c < 0)
            return false;
    }
    return false;
}

/* Insert e in (seq, idx) order (from the tail: entries come in order). An
 * entry older than what was already published goes next. */
static void lane_insert(struct eddy_relay *r, struct lane *l, struct entry *e)
{
    struct entry *x = l->last;
    while (x && entry_cmp(x, e) > 0 && x->st != E_DONE && x->st != E_SENT && !x->moving)
        x = x->prev;
    e->lane = l;
    e->prev = x;
    e->next = x ? x->next : l->first;
    if (e->next)
        e->next->prev = e;
    else
        l->last = e;
    if (x)
        x->next = e;
    else
        l->first = e;
    l->n++;
    r->held++;
    lane_rehead(l);
    lane_list(r, l);
}

/* ---- entries ---- */

static int64_t item_n(const cJSON *item, const char *name)
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

/* An entry from an outbox row (taken over); NULL (row freed, logged) when
 * the row cannot be read. */
static struct entry *entry_new(struct eddy_relay *r, cJSON *item)
{
    struct entry *e = eddy_calloc(1, sizeof *e);
    struct eddy_error err = {0};
    e->item = item;
    if (eddy_record_parse_outbox(item, &e->o, &err) != EDDY_OK) {
        EDDY_ERROR("relay: left an unreadable outbox row: %s", eddy_error_text(&err));
        entry_free(e);
        return NULL;
    }
    const char *shard = strchr(e->o.pk, '/');
    e->shard = shard ? (uint32_t)strtoul(shard + 1, NULL, 10) : 0;
    if (e->o.source == NULL && r->source == NULL) {
        char source[EDDY_RECORD_SOURCE_MAX];
        eddy_record_default_source(e->o.ns, source);
        e->source = eddy_strdup(source);
    }
    int64_t ts = item_n(item, "_ts"), tms = item_n(item, "_tms");
    e->commit_ms = tms > 0 ? tms : ts * 1000;
    e->eb.source = e->o.source ? e->o.source : e->source ? e->source : r->source;
    e->eb.detail_type = e->o.detail_type;
    e->eb.detail = e->o.detail;
    e->eb.event_bus_name = e->o.event_bus ? e->o.event_bus : r->ebus;
    e->eb.trace_header = e->o.trace_header;
    e->eb.time_s = ts;
    entry_resources(e);
    e->size = r->bus->entry_size ? r->bus->entry_size(&e->eb, &e->o) : eddy_eb_entry_size(&e->eb);
    if (e->size > r->bus->max_bytes) { /* the commit path refuses these; older rows */
        e->st = E_DEAD;
        snprintf(e->error, sizeof e->error,
                 "EntryTooLarge: the entry is %zu bytes, over the %zu byte PutEvents limit",
                 e->size, r->bus->max_bytes);
    }
    return e;
}

/* Hold e (taken over) unless the lane has it already. */
static bool hold(struct eddy_relay *r, struct entry *e)
{
    struct lane *l = lane_get(r, e, true);
    if (lane_has(l, e)) {
        entry_free(e);
        lane_release(r, l);
        return false;
    }
    lane_insert(r, l, e);
    return true;
}

void eddy_relay_publish(struct eddy_relay *r, const char *item_json, size_t len)
{
    if (r == NULL || r->closing)
        return;
    if (r->held >= r->cfg.held_max) {
        r->st.overflow++; /* the row stays in the outbox: a sweep takes it */
        return;
    }
    cJSON *item = cJSON_ParseWithLength(item_json, len);
    if (item == NULL) {
        EDDY_ERROR("relay: a committed outbox row is not JSON; left to the sweeps");
        return;
    }
    struct entry *e = entry_new(r, item);
    if (e == NULL)
        return;
    e->commit_ms = eddy_clock_unix_ms(r->clock); /* the commit is done: from now on */
    if (hold(r, e))
        r->st.committed++;
    pump(r);
}

void eddy_relay_on_outbox(const char *item_json, size_t len, void *ud)
{
    eddy_relay_publish(ud, item_json, len);
}

/* ---- deletes ---- */

/* The oldest Query in flight (loop ms), 0 when none is. */
static uint64_t oldest_query(const struct eddy_relay *r)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        uint64_t at = r->shards[i].sent_at;
        if (at && (t == 0 || at < t))
            t = at;
    }
    return t;
}

/* e's row is deleted: remember it while a Query sent before may return it. */
static void note_gone(struct eddy_relay *r, const struct entry *e)
{
    if (r->sweeps == 0)
        return;
    eddy_map_put(&r->gone, eddy_str_c(e->o.sk), (void *)(uintptr_t)(uv_now(r->loop) + 1));
}

/* Forget the deletes no Query in flight can have missed. */
static void prune_gone(struct eddy_relay *r)
{
    uint64_t horizon = oldest_query(r);
    if (horizon == 0) {
        eddy_map_cleanup(&r->gone, NULL);
        eddy_map_init(&r->gone, eddy_rng_next(&r->rng));
        return;
    }
    struct eddy_map_iter it;
    struct eddy_str key;
    void *value;
    eddy_map_iter_init(&r->gone, &it);
    while (eddy_map_next(&it, &key, &value))
        if ((uint64_t)(uintptr_t)value - 1 < horizon)
            eddy_map_remove(&r->gone, key);
}

struct delete_call {
    struct eddy_relay *r;
    struct entry *ents[EDDY_DDB_MAX_BATCH_WRITE];
    cJSON *keys[EDDY_DDB_MAX_BATCH_WRITE];
    size_t n;
};

static void delete_send(struct eddy_relay *r, bool all);

static cJSON *entry_key(const struct entry *e)
{
    cJSON *key = cJSON_CreateObject();
    cJSON_AddItemToObject(key, "_pk",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e->item, "_pk"), true));
    cJSON_AddItemToObject(key, "_sk",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e->item, "_sk"), true));
    return key;
}

static void delete_queue(struct eddy_relay *r, struct entry *e)
{
    e->dnext = NULL;
    if (r->del_tail)
        r->del_tail->dnext = e;
    else
        r->del_head = e;
    r->del_tail = e;
    r->del_queued++;
}

static void on_del_timer(uv_timer_t *t)
{
    struct eddy_relay *r = eddy_container_of(t, struct eddy_relay, del_timer);
    delete_send(r, true);
    check_stopped(r);
}

static bool unprocessed(const cJSON *res_unprocessed, const struct entry *e)
{
    const cJSON *u;
    cJSON_ArrayForEach(u, res_unprocessed)
    {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(u, "DeleteRequest"), "Key");
        const cJSON *pk =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(key, "_pk"), "S");
        const cJSON *sk =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(key, "_sk"), "S");
        if (cJSON_IsString(pk) && cJSON_IsString(sk) && strcmp(pk->valuestring, e->o.pk) == 0 &&
            strcmp(sk->valuestring, e->o.sk) == 0)
            return true;
    }
    return false;
}

static void on_delete(eddy_err rc, struct eddy_ddb_batch_write_result *res,
                      const struct eddy_aws_reply *reply, void *ud)
{
    struct delete_call *dc = ud;
    struct eddy_relay *r = dc->r;
    r->deletes--;
    if (rc != EDDY_OK)
        EDDY_WARN("relay: deleting published entries: %s", eddy_error_text(reply->error));
    size_t again = 0;
    for (size_t i = 0; i < dc->n; i++) {
        cJSON_Delete(dc->keys[i]);
        struct entry *e = dc->ents[i];
        if (rc != EDDY_OK || unprocessed(res->unprocessed, e)) {
            delete_queue(r, e);
            again++;
        } else {
            r->st.deleted++;
            note_gone(r, e);
            entry_remove(r, e);
        }
    }
    eddy_ddb_batch_write_result_cleanup(res);
    free(dc);
    if (again == 0) {
        r->del_attempt = 0;
    } else if (++r->del_attempt > DELETE_ATTEMPTS) {
        EDDY_ERROR("relay: %zu published entries could not be deleted; a sweep will publish them "
                   "again",
                   again);
        r->del_attempt = 0;
        while (r->del_head) { /* forget them: the rows stay */
            struct entry *e = r->del_head;
            r->del_head = e->dnext;
            entry_remove(r, e);
        }
        r->del_tail = NULL;
        r->del_queued = 0;
    } else {
        r->st.delete_retries += again;
        uint32_t ms = eddy_backoff_full_jitter(&r->rng, r->del_attempt - 1, 50, 2000);
        uv_timer_start(&r->del_timer, on_del_timer, ms ? ms : 1, 0);
    }
    pump(r);
    check_stopped(r);
}

static void delete_send_one(struct eddy_relay *r)
{
    struct delete_call *dc = eddy_calloc(1, sizeof *dc);
    dc->r = r;
    struct eddy_ddb_write_req reqs[EDDY_DDB_MAX_BATCH_WRITE];
    while (dc->n < EDDY_DDB_MAX_BATCH_WRITE && r->del_head) {
        struct entry *e = r->del_head;
        r->del_head = e->dnext;
        r->del_queued--;
        dc->ents[dc->n] = e;
        dc->keys[dc->n] = entry_key(e);
        reqs[dc->n] = (struct eddy_ddb_write_req){.delete_key = dc->keys[dc->n]};
        dc->n++;
    }
    if (r->del_head == NULL)
        r->del_tail = NULL;
    struct eddy_error err = {0};
    r->st.delete_calls++;
    if (eddy_ddb_batch_write(r->ddb, r->table, reqs, dc->n, on_delete, dc, NULL, &err) == EDDY_OK) {
        r->deletes++;
        return;
    }
    EDDY_WARN("relay: cannot delete published entries: %s", eddy_error_text(&err));
    struct eddy_ddb_batch_write_result none = {0};
    struct eddy_aws_reply reply = {.error = &err};
    r->deletes++;
    on_delete(err.code ? err.code : EDDY_EINVAL, &none, &reply, dc);
}

/* Send full batches; all: the partial one too (the linger is over). */
static void delete_send(struct eddy_relay *r, bool all)
{
    if (uv_is_active((uv_handle_t *)&r->del_timer) && r->del_attempt > 0)
        return; /* a backoff runs */
    while (r->del_queued >= EDDY_DDB_MAX_BATCH_WRITE || (all && r->del_queued > 0))
        delete_send_one(r);
    if (r->del_queued > 0 && !uv_is_active((uv_handle_t *)&r->del_timer))
        uv_timer_start(&r->del_timer, on_del_timer, r->stopping ? 1 : DELETE_LINGER_MS, 0);
}

/* ---- dead entries ---- */

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
             e->o.sk, e->shard, e->refusals, e->error);
    entry_remove(r, e);
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
        note_gone(r, e);
        dead_done(r, e);
    } else {
        EDDY_WARN("relay: moving outbox entry %s to the dead letters: %s", e->o.sk,
                  eddy_error_text(reply->error));
        e->failures++;
        e->ready_at =
            uv_now(r->loop) + eddy_backoff_full_jitter(&r->rng, e->failures - 1,
                                                       r->cfg.retry_base_ms, r->cfg.retry_cap_ms);
        if (r->stopping) /* left in the outbox */
            lane_drop_rest(r, e->lane);
        else
            lane_list(r, e->lane);
    }
    pump(r);
    check_stopped(r);
}

static cJSON *dead_item(struct eddy_relay *r, const struct entry *e)
{
    cJSON *dead = cJSON_Duplicate(e->item, true);
    char *pk = eddy_record_outbox_dead_pk(e->shard);
    char n[32];
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "_pk");
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "error");
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "attempts");
    cJSON_DeleteItemFromObjectCaseSensitive(dead, "_ts");
    cJSON_AddItemToObject(dead, "_pk", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(dead, "_pk"), "S", pk);
    cJSON_AddItemToObject(dead, "error", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(dead, "error"), "S", e->error);
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
static void move_start(struct eddy_relay *r, struct entry *e)
{
    struct move_call *mc = eddy_calloc(1, sizeof *mc);
    mc->r = r;
    mc->e = e;
    mc->key = entry_key(e);
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

/* ---- publishing ---- */

static void entry_published(struct eddy_relay *r, struct entry *e, int64_t now_ms)
{
    struct lane *l = e->lane;
    e->st = E_DONE;
    lane_rehead(l);
    r->st.published++;
    if (r->metrics) {
        eddy_metrics_inc(r->metrics, EDDY_METRIC_published);
        eddy_metrics_observe(r->metrics, EDDY_LATENCY_commit_to_publish_latency,
                             (now_ms - e->commit_ms) * 1000);
    }
    if (r->cfg.on_publish)
        r->cfg.on_publish(&e->o, now_ms, r->cfg.on_publish_ud);
    delete_queue(r, e);
    lane_list(r, l);
}

/* code NULL: the call failed as a whole (sent again, without counting). */
static void entry_failed(struct eddy_relay *r, struct entry *e, const char *code, const char *msg)
{
    r->st.failed_entries++;
    if (r->metrics)
        eddy_metrics_inc(r->metrics, EDDY_METRIC_publish_failures);
    struct eddy_log_fields f = {.entity = e->o.id, .event_id = e->o.event_id, .seq = e->o.seq};
    e->st = E_WAIT;
    if (code) {
        e->refusals++;
        snprintf(e->error, sizeof e->error, "%s: %s", code, msg ? msg : "");
        if (r->bus->refused_for_good(code) || e->refusals >= r->cfg.attempts)
            e->st = E_DEAD;
    }
    e->failures++;
    eddy_log(EDDY_LOG_WARN, &f, "relay: PutEvents %s %s (failure %u): %s %s",
             code ? "refused" : "failed for", e->o.sk, e->failures, code ? code : "",
             msg ? msg : "");
    lane_rehead(e->lane);
    if (r->stopping && e->st == E_WAIT) { /* left in the outbox for a sweep */
        lane_drop_rest(r, e->lane);
        return;
    }
    e->ready_at =
        e->st == E_DEAD
            ? 0
            : uv_now(r->loop) + eddy_backoff_full_jitter(&r->rng, e->failures - 1,
                                                         r->cfg.retry_base_ms, r->cfg.retry_cap_ms);
    lane_list(r, e->lane);
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
    int64_t now = eddy_clock_unix_ms(r->clock);
    for (size_t k = 0; k < pc->n; k++) {
        struct entry *e = pc->at[k];
        const struct eddy_eb_entry_result *er =
            rc == EDDY_OK && k < res->n ? &res->entries[k] : NULL;
        if (rc != EDDY_OK)
            entry_failed(r, e, NULL, eddy_error_text(reply->error));
        else if (er == NULL)
            entry_failed(r, e, "MissingResult", "PutEvents answered fewer entries");
        else if (!r->bus->accepted(er))
            entry_failed(r, e, er->error_code ? er->error_code : "Refused", er->error_message);
        else
            entry_published(r, e, now);
    }
    eddy_eb_put_result_cleanup(res);
    put_call_free(pc);
    delete_send(r, false);
    pump(r);
    check_stopped(r);
}

/* Send the open call, unless calls are all out (it is sent when one is back). */
static void put_send(struct eddy_relay *r)
{
    struct put_call *pc = r->open;
    uv_idle_stop(&r->flush);
    if (pc == NULL || r->puts >= r->cfg.inflight_max)
        return;
    r->open = NULL;
    struct eddy_error err = {0};
    r->st.put_calls++;
    r->puts++;
    if (r->bus->put(r->bus_client, pc->ents, pc->rows, pc->n, on_put, pc, &err) == EDDY_OK)
        return;
    struct eddy_eb_put_result none = {0};
    struct eddy_aws_reply reply = {.error = &err};
    on_put(err.code ? err.code : EDDY_EINVAL, &none, &reply, pc);
}

/* The end of a loop turn: send the open call if no call is out. While one
 * is, a call that is not full waits for it to come back and fills up
 * meanwhile (as Nagle's algorithm does): one round trip at most, and
 * fuller calls under load. */
static void on_flush(uv_idle_t *h)
{
    struct eddy_relay *r = eddy_container_of(h, struct eddy_relay, flush);
    if (r->puts == 0 || (r->open && r->open->n == r->bus->max_entries))
        put_send(r);
    else
        uv_idle_stop(&r->flush);
    delete_send(r, false);
}

/* Add e to the open call; false when the call is full (send it first). */
static bool put_add(struct eddy_relay *r, struct entry *e)
{
    struct put_call *pc = r->open;
    if (pc == NULL) {
        pc = r->open = eddy_calloc(1, sizeof *pc);
        pc->r = r;
        pc->at = eddy_calloc(r->bus->max_entries, sizeof *pc->at);
        pc->ents = eddy_calloc(r->bus->max_entries, sizeof *pc->ents);
        pc->rows = eddy_calloc(r->bus->max_entries, sizeof *pc->rows);
        uv_idle_start(&r->flush, on_flush);
    }
    if (pc->n == r->bus->max_entries || (pc->n && pc->bytes + e->size > r->bus->max_bytes))
        return false;
    pc->at[pc->n] = e;
    pc->rows[pc->n] = &e->o;
    pc->ents[pc->n++] = e->eb;
    pc->bytes += e->size;
    e->st = E_SENT;
    if (e->failures) {
        r->st.retries++;
        if (r->metrics)
            eddy_metrics_inc(r->metrics, EDDY_METRIC_retries);
    }
    return true;
}

/* Send ready heads across lanes while calls are to spare. */
static void pump(struct eddy_relay *r)
{
    if (!r->started || r->closing)
        return;
    uint64_t now = uv_now(r->loop);
    while (r->ready.head) {
        struct lane *l = r->ready.head;
        struct entry *e = l->head;
        if (e == NULL || e->moving || (e->st != E_WAIT && e->st != E_DEAD)) {
            list_pop(&r->ready);
            lane_release(r, l);
            continue;
        }
        if (e->st == E_DEAD) {
            list_pop(&r->ready);
            move_start(r, e);
            continue;
        }
        if (!put_add(r, e)) {
            if (r->puts >= r->cfg.inflight_max)
                return; /* the open call waits for a call to come back */
            put_send(r);
            continue;
        }
        list_pop(&r->ready);
        /* where the bus keeps an entity's order within a call, its next
         * entries may join this one */
        for (struct entry *n = e->next; r->bus->entity_shares_call && n && n->st == E_WAIT &&
                                        n->ready_at <= now && put_add(r, n);
             n = n->next)
            ;
    }
    if (r->open && r->open->n == r->bus->max_entries)
        put_send(r);
    if (r->open)
        uv_idle_start(&r->flush, on_flush);
}

/* Entries whose backoff ran out are ready again. */
static void on_retry_timer(uv_timer_t *t)
{
    struct eddy_relay *r = eddy_container_of(t, struct eddy_relay, retry_timer);
    uint64_t now = uv_now(r->loop), next = 0;
    struct lane_list keep = {0};
    struct lane *l;
    while ((l = list_pop(&r->backoff)) != NULL) {
        uint64_t at = l->head ? l->head->ready_at : 0;
        if (at > now) {
            list_push(&keep, l);
            next = next == 0 || at < next ? at : next;
        } else {
            lane_list(r, l);
        }
    }
    r->backoff = keep;
    if (next)
        uv_timer_start(&r->retry_timer, on_retry_timer, next - now, 0);
    pump(r);
}

/* ---- sweeps ---- */

static bool shard_holds(const struct relay_shard *s)
{
    const struct eddy_relay *r = s->r;
    if (r->stopping || s->surrender)
        return false;
    return r->lease == NULL ? r->started : eddy_lease_held(r->lease, s->index);
}

bool eddy_relay_holds(const struct eddy_relay *r, uint32_t shard)
{
    return shard < r->cfg.shards && shard_holds(&r->shards[shard]);
}

static void on_sweep_timer(uv_timer_t *t)
{
    struct relay_shard *s = eddy_container_of(t, struct relay_shard, timer);
    if (!s->sweeping && shard_holds(s))
        sweep_start(s);
}

static void sweep_schedule(struct relay_shard *s, uint64_t ms)
{
    uv_timer_start(&s->timer, on_sweep_timer, ms, 0);
}

void eddy_relay_sweep(struct eddy_relay *r, uint32_t shard)
{
    if (r && shard < r->cfg.shards && r->started && !r->closing)
        sweep_schedule(&r->shards[shard], 0);
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
        pump(r);
        check_stopped(r);
        return;
    }
    if (s->surrender) {
        eddy_lease_give_back(r->lease, s->index);
        pump(r);
        return;
    }
    uint64_t next;
    if (more || s->taken > 0) {
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
    if (shard_holds(s))
        sweep_schedule(s, next);
    pump(r);
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
    eddy_buf_append(&b, sk, (size_t)(p - sk));
    eddy_buf_appends(&b, "/99999999999999999999/9999");
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
    return lane_has(l, &probe);
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
    int64_t tms = item_n(item, "_tms");
    int64_t commit_ms = tms > 0 ? tms : item_n(item, "_ts") * 1000;
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
        cJSON_Delete(item);
        return;
    }
    struct entry *e = entry_new(r, item);
    if (e && hold(r, e)) {
        s->taken++;
        r->st.swept++;
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
        sweep_row(s, it, now);
    }
    bool more = res->last_key != NULL && last != NULL;
    eddy_ddb_query_result_cleanup(res);
    s->sent_at = 0;
    prune_gone(r);
    if (!more || r->stopping || !shard_holds(s)) {
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
    r->st.sweeps++;
    sweep_query(s);
}

/* ---- leases ---- */

static void on_lease(uint32_t shard, enum eddy_lease_event ev, void *ud)
{
    struct eddy_relay *r = ud;
    struct relay_shard *s = &r->shards[shard];
    switch (ev) {
    case EDDY_LEASE_ACQUIRED:
        s->surrender = false;
        /* swept at once (a dead process's leftovers), then, while empty,
         * from a quarter of the longest interval on */
        s->interval_ms =
            r->cfg.sweep_max_ms / 4 > r->cfg.poll_ms ? r->cfg.sweep_max_ms / 4 : r->cfg.poll_ms;
        if (shard_holds(s) && !s->sweeping)
            sweep_schedule(s, 0);
        break;
    case EDDY_LEASE_SURRENDER:
        s->surrender = true;
        uv_timer_stop(&s->timer);
        if (!s->sweeping)
            eddy_lease_give_back(r->lease, shard);
        break;
    case EDDY_LEASE_LOST:
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
    for (uint32_t i = 0; i < r->cfg.shards; i++)
        uv_timer_init(r->loop, &r->shards[i].timer);
    r->open_handles = 4 + r->cfg.shards;
    if (r->lease)
        eddy_lease_start(r->lease);
    else
        for (uint32_t i = 0; i < r->cfg.shards; i++)
            sweep_schedule(&r->shards[i], 0);
    EDDY_INFO("relay: started as %s (%" PRIu32 " shards, %s bus, grace %" PRIu32
              " ms, sweeps every %" PRIu32 "..%" PRIu32 " ms, lease %" PRIu32 " ms)",
              r->owner, r->cfg.shards, r->bus->name, r->cfg.grace_ms, r->cfg.poll_ms,
              r->cfg.sweep_max_ms, r->cfg.lease_ms);
    return EDDY_OK;
}

/* ---- stopping ---- */

static void on_handle_closed(uv_handle_t *h)
{
    struct eddy_relay *r = h->data;
    if (--r->open_handles > 0)
        return;
    EDDY_INFO("relay: stopped (%" PRIu64 " published, %" PRIu64 " dead)", r->st.published,
              r->st.dead);
    if (r->stop_cb)
        r->stop_cb(r->stop_ud);
}

static void close_handle(struct eddy_relay *r, uv_handle_t *h)
{
    h->data = r;
    uv_close(h, on_handle_closed);
}

static void close_all(struct eddy_relay *r)
{
    r->closing = true;
    close_handle(r, (uv_handle_t *)&r->flush);
    close_handle(r, (uv_handle_t *)&r->retry_timer);
    close_handle(r, (uv_handle_t *)&r->del_timer);
    close_handle(r, (uv_handle_t *)&r->stop_timer);
    for (uint32_t i = 0; i < r->cfg.shards; i++)
        close_handle(r, (uv_handle_t *)&r->shards[i].timer);
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
    while ((l = list_pop(&r->backoff)) != NULL)
        lane_drop_rest(r, l);
}

static void check_stopped(struct eddy_relay *r)
{
    if (!r->stopping || r->lease_stopping || r->closing)
        return;
    drop_backoff(r);
    if (r->ready.head || r->open || r->puts || r->moves || r->sweeps)
        return;
    if (r->del_queued && !uv_is_active((uv_handle_t *)&r->del_timer))
        delete_send(r, true);
    if (r->del_queued || r->deletes)
        return;
    uv_timer_stop(&r->retry_timer);
    if (r->lease) {
        r->lease_stopping = true;
        eddy_lease_stop(r->lease, on_lease_stopped, r);
    } else {
        close_all(r);
    }
}

static void on_stop_timer(uv_timer_t *t)
{
    struct eddy_relay *r = eddy_container_of(t, struct eddy_relay, stop_timer);
    pump(r);
    check_stopped(r);
}

void eddy_relay_stop(struct eddy_relay *r, void (*cb)(void *ud), void *ud)
{
    if (r->stopping)
        return;
    r->stopping = true;
    r->stop_cb = cb;
    r->stop_ud = ud;
    if (!r->started) {
        r->started = true;
        uv_timer_init(r->loop, &r->stop_timer);
        r->open_handles = 1;
        r->closing = true;
        close_handle(r, (uv_handle_t *)&r->stop_timer);
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
