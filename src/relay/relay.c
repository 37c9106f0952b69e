/*
 * relay.c - the outbox relay (see relay.h for what a round does).
 *
 * Per shard: one round at a time. A round owns the items its queries
 * returned (a cJSON array) and an index of them, sorted by entity and
 * (seq, idx); every entity is a group with a cursor at its next entry to
 * publish. The pump puts the ready heads of the groups (a head is in flight,
 * or waits for its backoff, or is ready) into the relay's open PutEvents
 * call, which the shards pumped in the same loop turn share and which is
 * sent when full or at the end of the turn; so an entity never has two
 * entries out at once, an entity that waits never holds the others back, and
 * a few busy entities spread over the shards still fill calls of ten. Published keys go to a delete
 * queue, sent 25 at a time. The round ends when nothing is ready, nothing is in flight and the
 * delete queue is empty.
 *
 * It is not: the commit path (the processor writes the outbox entries and
 * refuses entries over 256 KB), nor the lease protocol (lease.c).
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
#include "eddy/rng.h"
#include "relay/lease.h"
#include "svc/dynamodb.h"
#include "svc/eventbridge.h"
#include "base/metrics.h"

#define DELETE_ATTEMPTS 8

enum entry_state { E_PENDING, E_INFLIGHT, E_DONE, E_LEFT };

struct entry {
    struct eddy_record_outbox o; /* strings borrowed from the round's items */
    const cJSON *item;
    int64_t ts_s;      /* _ts: commit second, the event's Time */
    int64_t commit_ms; /* _tms when recorded, else _ts * 1000 */
    enum entry_state st;
    unsigned failures;
    uint64_t ready_at; /* uv_now() ms: when it may be sent again */
    struct eddy_eb_entry eb;
    size_t size;  /* as EventBridge counts it */
    char *source; /* "eddy.<namespace>" when built here */
};

/* One entity's entries: entries[first, end), next = the head. A head that
 * is left (E_LEFT) holds its entity's later entries back for this round. */
struct group {
    size_t first, end, next;
};

/* One PutEvents call: the heads of entities of one or more shards. */
struct put_call {
    size_t n, bytes;
    struct {
        struct relay_shard *s;
        size_t idx; /* in s->entries */
    } at[EDDY_EB_MAX_ENTRIES];
    struct eddy_eb_entry ents[EDDY_EB_MAX_ENTRIES];
    struct relay_shard *shards[EDDY_EB_MAX_ENTRIES]; /* the distinct ones */
    size_t nshards;
};

struct relay_shard {
    struct eddy_relay *r;
    uint32_t index;
    char *pk;
    bool surrender; /* lease to give back when idle */
    bool busy, again, more;
    bool indexed; /* the round's queries are in and indexed: it may send */
    cJSON *items;
    struct entry *entries;
    size_t n;
    struct group *groups;
    size_t ngroups, cursor;
    unsigned puts, deletes; /* calls in flight */
    unsigned queued;        /* entries in the relay's open call, not sent yet */
    cJSON *del_queue;       /* keys to delete */
    unsigned del_attempt;
    uv_timer_t retry_timer, del_timer;
    int64_t lag_ms;
    char *left_sk; /* the last entry logged as left, not to log it every round */
};

struct eddy_relay {
    uv_loop_t *loop;
    struct eddy_ddb *ddb;
    struct eddy_eb *eb;
    const struct eddy_clock *clock;
    struct eddy_metrics *metrics;
    struct eddy_relay_config cfg;
    char *table, *bus, *source, *owner;
    struct eddy_rng rng;
    struct relay_shard *shards;
    struct eddy_lease *lease; /* NULL without leases */
    uv_timer_t poll;
    /* The PutEvents call being filled: the shards pumped in one loop turn
     * share it, so entities of different shards go in one call of up to 10
     * instead of one small call per shard. Sent when full, or from the idle
     * handle at the end of the turn. */
    struct put_call *open;
    uv_idle_t flush;
    bool started, stopping, lease_stopping, closing;
    unsigned open_handles;
    struct eddy_relay_stats st;
    void (*stop_cb)(void *ud);
    void *stop_ud;
};

static void round_start(struct relay_shard *s);
static void round_lag(struct relay_shard *s);
static void pump(struct relay_shard *s);
static void check_stopped(struct eddy_relay *r);

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
    c->page_size = c->page_size ? c->page_size : 100;
    c->round_max = c->round_max ? c->round_max : 1000;
    c->inflight_max = c->inflight_max ? c->inflight_max : 4;
    c->retry_base_ms = c->retry_base_ms ? c->retry_base_ms : 100;
    c->retry_cap_ms = c->retry_cap_ms ? c->retry_cap_ms : 5000;
    c->retry_max = c->retry_max ? c->retry_max : 6;
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
    if (!loop || !ddb || !eb || !cfg || !cfg->table || !cfg->table[0]) {
        eddy_error_set(err, EDDY_EINVAL, "relay: loop, DynamoDB, EventBridge and table needed");
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
    r->eb = eb;
    r->clock = clock ? clock : eddy_clock_system();
    r->metrics = metrics;
    r->cfg = *cfg;
    apply_defaults(&r->cfg);
    eddy_rng_seed(&r->rng, cfg->seed ? cfg->seed
                                     : eddy_clock_mono_ms(r->clock) ^ ((uint64_t)getpid() << 32) ^
                                           (uint64_t)eddy_clock_unix_ms(r->clock));
    r->table = eddy_strdup(cfg->table);
    r->bus = dup_or_null(cfg->event_bus);
    r->source = dup_or_null(cfg->event_source);
    r->owner = cfg->owner ? eddy_strdup(cfg->owner) : default_owner(&r->rng);
    r->cfg.table = r->table;
    r->cfg.event_bus = r->bus;
    r->cfg.event_source = r->source;
    r->cfg.owner = r->owner;
    r->shards = eddy_calloc(cfg->shards, sizeof *r->shards);
    for (uint32_t i = 0; i < cfg->shards; i++) {
        r->shards[i].r = r;
        r->shards[i].index = i;
        r->shards[i].pk = eddy_record_outbox_pk(i);
        r->shards[i].del_queue = cJSON_CreateArray();
    }
    return r;
}

void eddy_relay_free(struct eddy_relay *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        free(r->shards[i].pk);
        free(r->shards[i].left_sk);
        cJSON_Delete(r->shards[i].del_queue);
    }
    free(r->shards);
    free(r->table);
    free(r->bus);
    free(r->source);
    free(r->owner);
    free(r);
}

const char *eddy_relay_owner(const struct eddy_relay *r)
{
    return r->owner;
}

/* ---- ownership ---- */

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

static void on_lease(uint32_t shard, enum eddy_lease_event ev, void *ud)
{
    struct eddy_relay *r = ud;
    struct relay_shard *s = &r->shards[shard];
    switch (ev) {
    case EDDY_LEASE_ACQUIRED:
        s->surrender = false;
        if (!shard_holds(s))
            break;
        if (!s->busy)
            round_start(s);
        else
            s->again = true;
        break;
    case EDDY_LEASE_SURRENDER:
        s->surrender = true;
        if (!s->busy)
            eddy_lease_give_back(r->lease, shard);
        break;
    case EDDY_LEASE_LOST:
        break; /* the round in hand sends nothing more (shard_holds) */
    }
}

void eddy_relay_wake(struct eddy_relay *r, uint32_t shard)
{
    if (r == NULL || shard >= r->cfg.shards)
        return;
    struct relay_shard *s = &r->shards[shard];
    if (!shard_holds(s))
        return;
    r->st.wakes++;
    if (s->busy)
        s->again = true;
    else
        round_start(s);
}

void eddy_relay_on_outbox(uint32_t shard, void *ud)
{
    eddy_relay_wake(ud, shard);
}

/* ---- reading a round ---- */

static int64_t item_n(const cJSON *item, const char *name)
{
    const cJSON *n =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, name), "N");
    return cJSON_IsString(n) ? strtoll(n->valuestring, NULL, 10) : 0;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int c = strcmp(a->o.ns, b->o.ns);
    if (c == 0)
        c = strcmp(a->o.id, b->o.id);
    if (c == 0)
        c = (a->o.seq > b->o.seq) - (a->o.seq < b->o.seq);
    if (c == 0)
        c = (a->o.idx > b->o.idx) - (a->o.idx < b->o.idx);
    return c;
}

/* Resources as the PutEvents entry wants them: an array of strings. */
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

static void entry_build(struct eddy_relay *r, struct entry *e)
{
    if (e->o.source == NULL && r->source == NULL) {
        struct eddy_buf b;
        eddy_buf_init(&b, 0);
        eddy_buf_appendf(&b, "eddy.%s", e->o.ns);
        e->source = eddy_buf_take(&b, NULL);
    }
    e->ts_s = item_n(e->item, "_ts");
    int64_t tms = item_n(e->item, "_tms");
    e->commit_ms = tms > 0 ? tms : e->ts_s * 1000;
    e->eb.source = e->o.source ? e->o.source : e->source ? e->source : r->source;
    e->eb.detail_type = e->o.detail_type;
    e->eb.detail = e->o.detail;
    e->eb.event_bus_name = e->o.event_bus ? e->o.event_bus : r->bus;
    e->eb.trace_header = e->o.trace_header;
    e->eb.time_s = e->ts_s;
    entry_resources(e);
    e->size = eddy_eb_entry_size(&e->eb);
}

/* Parse the items into entries; the unreadable ones are logged and left. */
static void round_index(struct relay_shard *s)
{
    struct eddy_relay *r = s->r;
    size_t total = (size_t)cJSON_GetArraySize(s->items);
    s->entries = eddy_calloc(total ? total : 1, sizeof *s->entries);
    s->n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, s->items)
    {
        struct entry *e = &s->entries[s->n];
        struct eddy_error err = {0};
        if (eddy_record_parse_outbox(it, &e->o, &err) != EDDY_OK) {
            r->st.skipped++;
            EDDY_WARN("relay: shard %" PRIu32 ": left an unreadable outbox entry: %s", s->index,
                      eddy_error_text(&err));
            continue;
        }
        e->item = it;
        s->n++;
    }
    qsort(s->entries, s->n, sizeof *s->entries, entry_cmp);
    for (size_t i = 0; i < s->n; i++)
        entry_build(r, &s->entries[i]);
}

static void log_left(struct relay_shard *s, const struct entry *e, const char *why)
{
    s->r->st.skipped++;
    if (s->left_sk && strcmp(s->left_sk, e->o.sk) == 0)
        return; /* logged by an earlier round */
    free(s->left_sk);
    s->left_sk = eddy_strdup(e->o.sk);
    struct eddy_log_fields f = {.entity = e->o.id, .event_id = e->o.event_id, .seq = e->o.seq};
    eddy_log(EDDY_LOG_ERROR, &f, "relay: outbox entry %s left in the outbox: %s", e->o.sk, why);
}

static bool same_entity(const struct entry *a, const struct entry *b)
{
    return strcmp(a->o.ns, b->o.ns) == 0 && strcmp(a->o.id, b->o.id) == 0;
}

/* Group by entity; an entry over the limit is left, and so its entity's
 * later entries wait behind it. */
static void round_group(struct relay_shard *s)
{
    s->groups = eddy_calloc(s->n ? s->n : 1, sizeof *s->groups);
    s->ngroups = 0;
    s->cursor = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = &s->entries[i];
        if (i == 0 || !same_entity(e, e - 1))
            s->groups[s->ngroups++] = (struct group){i, i, i};
        s->groups[s->ngroups - 1].end = i + 1;
        if (e->size > EDDY_EB_MAX_BYTES) {
            e->st = E_LEFT;
            log_left(s, e, "its PutEvents entry is over the 256 KB limit");
        }
    }
}

/* The round's entries are in: index them and start sending. */
static void round_ready(struct relay_shard *s)
{
    s->indexed = true;
    round_index(s);
    round_group(s);
    round_lag(s);
    pump(s);
}

static void round_lag(struct relay_shard *s)
{
    struct eddy_relay *r = s->r;
    int64_t oldest = 0;
    for (size_t i = 0; i < s->n; i++)
        if (oldest == 0 || s->entries[i].commit_ms < oldest)
            oldest = s->entries[i].commit_ms;
    int64_t now = eddy_clock_unix_ms(r->clock);
    s->lag_ms = oldest > 0 && now > oldest ? now - oldest : 0;
    if (r->metrics && s->n)
        eddy_metrics_observe(r->metrics, EDDY_LATENCY_outbox_lag, s->lag_ms * 1000);
}

static void round_free(struct relay_shard *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->entries[i].source);
        free((void *)s->entries[i].eb.resources);
    }
    free(s->entries);
    free(s->groups);
    cJSON_Delete(s->items);
    s->entries = NULL;
    s->groups = NULL;
    s->items = NULL;
    s->n = s->ngroups = 0;
    s->indexed = false;
}

/* ---- the query ---- */

static void query_page(struct relay_shard *s, const cJSON *start_key);

static void on_query(eddy_err rc, struct eddy_ddb_query_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct relay_shard *s = ud;
    if (rc != EDDY_OK) {
        EDDY_WARN("relay: shard %" PRIu32 ": reading the outbox: %s", s->index,
                  eddy_error_text(reply->error));
        eddy_ddb_query_result_cleanup(res);
        round_ready(s); /* the pages that came in are relayed */
        return;
    }
    cJSON *it;
    while ((it = cJSON_DetachItemViaPointer(res->items, res->items->child)) != NULL)
        cJSON_AddItemToArray(s->items, it);
    size_t have = (size_t)cJSON_GetArraySize(s->items);
    if (res->last_key && have < s->r->cfg.round_max && !s->r->stopping) {
        query_page(s, res->last_key);
    } else {
        s->more = res->last_key != NULL;
        round_ready(s);
    }
    eddy_ddb_query_result_cleanup(res);
}

static void query_page(struct relay_shard *s, const cJSON *start_key)
{
    struct eddy_relay *r = s->r;
    cJSON *names = cJSON_CreateObject();
    cJSON_AddStringToObject(names, "#pk", "_pk");
    cJSON *values = cJSON_CreateObject();
    cJSON_AddItemToObject(values, ":pk", cJSON_CreateObject());
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(values, ":pk"), "S", s->pk);
    size_t have = (size_t)cJSON_GetArraySize(s->items);
    size_t want = r->cfg.round_max - have;
    struct eddy_ddb_query_params p = {
        .table = r->table,
        .key_condition = "#pk = :pk",
        .names = names,
        .values = values,
        .consistent = true,
        .limit = (int)(want < r->cfg.page_size ? want : r->cfg.page_size),
        .start_key = start_key,
    };
    struct eddy_error err = {0};
    eddy_err rc = eddy_ddb_query(r->ddb, &p, on_query, s, NULL, &err);
    cJSON_Delete(names);
    cJSON_Delete(values);
    r->st.queries++;
    if (rc != EDDY_OK) {
        EDDY_WARN("relay: shard %" PRIu32 ": cannot query the outbox: %s", s->index,
                  eddy_error_text(&err));
        round_ready(s);
    }
}

static void round_start(struct relay_shard *s)
{
    s->busy = true;
    s->again = false;
    s->more = false;
    s->items = cJSON_CreateArray();
    s->r->st.rounds++;
    query_page(s, NULL);
}

static void round_end(struct relay_shard *s)
{
    struct eddy_relay *r = s->r;
    round_free(s);
    s->busy = false;
    s->del_attempt = 0;
    if (r->stopping) {
        check_stopped(r);
        return;
    }
    if (s->surrender) {
        eddy_lease_give_back(r->lease, s->index);
        return;
    }
    if ((s->again || s->more) && shard_holds(s))
        round_start(s);
}

/* ---- deletes ---- */

struct delete_call {
    struct relay_shard *s;
    cJSON *keys; /* array, owned */
};

static void delete_send(struct relay_shard *s);

static void on_del_timer(uv_timer_t *t)
{
    struct relay_shard *s = eddy_container_of(t, struct relay_shard, del_timer);
    delete_send(s);
    pump(s);
}

/* Keys to send again: back to the queue, after a backoff. */
static void delete_requeue(struct relay_shard *s, cJSON *keys)
{
    struct eddy_relay *r = s->r;
    size_t n = (size_t)cJSON_GetArraySize(keys);
    if (++s->del_attempt > DELETE_ATTEMPTS) {
        EDDY_ERROR("relay: shard %" PRIu32 ": %zu published entries could not be deleted; "
                   "they will be published again",
                   s->index, n);
        cJSON_Delete(keys);
        return;
    }
    r->st.delete_retries += n;
    cJSON *k;
    while ((k = cJSON_DetachItemViaPointer(keys, keys->child)) != NULL)
        cJSON_AddItemToArray(s->del_queue, k);
    cJSON_Delete(keys);
    uint32_t ms = eddy_backoff_full_jitter(&r->rng, s->del_attempt - 1, 50, 2000);
    uv_timer_start(&s->del_timer, on_del_timer, ms ? ms : 1, 0);
}

static void on_delete(eddy_err rc, struct eddy_ddb_batch_write_result *res,
                      const struct eddy_aws_reply *reply, void *ud)
{
    struct delete_call *dc = ud;
    struct relay_shard *s = dc->s;
    s->deletes--;
    if (rc != EDDY_OK) {
        EDDY_WARN("relay: shard %" PRIu32 ": deleting published entries: %s", s->index,
                  eddy_error_text(reply->error));
        delete_requeue(s, dc->keys);
    } else {
        size_t sent = (size_t)cJSON_GetArraySize(dc->keys);
        cJSON *again = cJSON_CreateArray();
        const cJSON *u;
        cJSON_ArrayForEach(u, res->unprocessed)
        {
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(u, "DeleteRequest"), "Key");
            if (key)
                cJSON_AddItemToArray(again, cJSON_Duplicate(key, true));
        }
        size_t left = (size_t)cJSON_GetArraySize(again);
        s->r->st.deleted += sent - left;
        cJSON_Delete(dc->keys);
        if (left)
            delete_requeue(s, again);
        else
            cJSON_Delete(again);
    }
    eddy_ddb_batch_write_result_cleanup(res);
    free(dc);
    pump(s);
}

/* Send 25 queued keys (none while a backoff runs). */
static void delete_send_one(struct relay_shard *s)
{
    struct eddy_relay *r = s->r;
    struct delete_call *dc = eddy_calloc(1, sizeof *dc);
    dc->s = s;
    dc->keys = cJSON_CreateArray();
    struct eddy_ddb_write_req reqs[EDDY_DDB_MAX_BATCH_WRITE];
    size_t n = 0;
    cJSON *k;
    while (n < EDDY_DDB_MAX_BATCH_WRITE &&
           (k = cJSON_DetachItemViaPointer(s->del_queue, s->del_queue->child)) != NULL) {
        cJSON_AddItemToArray(dc->keys, k);
        reqs[n++] = (struct eddy_ddb_write_req){.delete_key = k};
    }
    struct eddy_error err = {0};
    if (eddy_ddb_batch_write(r->ddb, r->table, reqs, n, on_delete, dc, NULL, &err) != EDDY_OK) {
        EDDY_WARN("relay: shard %" PRIu32 ": cannot delete published entries: %s", s->index,
                  eddy_error_text(&err));
        delete_requeue(s, dc->keys);
        free(dc);
        return;
    }
    s->deletes++;
}

/* Send every queued key, 25 a call. */
static void delete_send(struct relay_shard *s)
{
    while (s->del_queue->child != NULL && !uv_is_active((uv_handle_t *)&s->del_timer))
        delete_send_one(s);
}

static void delete_queue_entry(struct relay_shard *s, const struct entry *e)
{
    cJSON *key = cJSON_CreateObject();
    cJSON_AddItemToObject(key, "_pk",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e->item, "_pk"), true));
    cJSON_AddItemToObject(key, "_sk",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e->item, "_sk"), true));
    cJSON_AddItemToArray(s->del_queue, key);
    if (cJSON_GetArraySize(s->del_queue) >= EDDY_DDB_MAX_BATCH_WRITE)
        delete_send(s);
}

/* ---- publishing ---- */

static void entry_published(struct relay_shard *s, struct group *g, struct entry *e, int64_t now_ms)
{
    struct eddy_relay *r = s->r;
    e->st = E_DONE;
    g->next++;
    r->st.published++;
    if (r->metrics) {
        eddy_metrics_inc(r->metrics, EDDY_METRIC_published);
        eddy_metrics_observe(r->metrics, EDDY_LATENCY_commit_to_publish_latency,
                             (now_ms - e->commit_ms) * 1000);
    }
    if (r->cfg.on_publish)
        r->cfg.on_publish(&e->o, now_ms, r->cfg.on_publish_ud);
    delete_queue_entry(s, e);
}

static void entry_failed(struct relay_shard *s, struct group *g, struct entry *e, const char *code,
                         const char *msg)
{
    struct eddy_relay *r = s->r;
    r->st.failed_entries++;
    if (r->metrics)
        eddy_metrics_inc(r->metrics, EDDY_METRIC_publish_failures);
    e->failures++;
    struct eddy_log_fields f = {.entity = e->o.id, .event_id = e->o.event_id, .seq = e->o.seq};
    eddy_log(EDDY_LOG_WARN, &f, "relay: PutEvents refused %s (failure %u): %s %s", e->o.sk,
             e->failures, code, msg ? msg : "");
    (void)g;
    if (e->failures >= r->cfg.retry_max) {
        e->st = E_LEFT; /* the next round tries again, its entity still in order */
        return;
    }
    e->st = E_PENDING;
    e->ready_at =
        uv_now(r->loop) + eddy_backoff_full_jitter(&r->rng, e->failures - 1, r->cfg.retry_base_ms,
                                                   r->cfg.retry_cap_ms);
}

/* The group an entry belongs to: the one whose range holds it. */
static struct group *group_of(struct relay_shard *s, size_t i)
{
    size_t lo = 0, hi = s->ngroups;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s->groups[mid].first <= i)
            lo = mid;
        else
            hi = mid;
    }
    return &s->groups[lo];
}

static void on_put(eddy_err rc, struct eddy_eb_put_result *res, const struct eddy_aws_reply *reply,
                   void *ud)
{
    struct put_call *pc = ud;
    int64_t now = eddy_clock_unix_ms(pc->at[0].s->r->clock);
    for (size_t k = 0; k < pc->n; k++) {
        struct relay_shard *s = pc->at[k].s;
        struct entry *e = &s->entries[pc->at[k].idx];
        struct group *g = group_of(s, pc->at[k].idx);
        const struct eddy_eb_entry_result *er =
            rc == EDDY_OK && k < res->n ? &res->entries[k] : NULL;
        if (rc != EDDY_OK)
            entry_failed(s, g, e, eddy_err_name(rc), eddy_error_text(reply->error));
        else if (er == NULL)
            entry_failed(s, g, e, "MissingResult", "PutEvents answered fewer entries");
        else if (er->error_code && er->error_code[0])
            entry_failed(s, g, e, er->error_code, er->error_message);
        else
            entry_published(s, g, e, now);
    }
    eddy_eb_put_result_cleanup(res);
    for (size_t k = 0; k < pc->nshards; k++)
        pc->shards[k]->puts--;
    struct relay_shard *shards[EDDY_EB_MAX_ENTRIES];
    size_t nshards = pc->nshards;
    memcpy(shards, pc->shards, nshards * sizeof *shards);
    free(pc);
    for (size_t k = 0; k < nshards; k++)
        pump(shards[k]);
}

static void on_retry_timer(uv_timer_t *t);

/* Send the open call. Its shards count it in flight from now on. */
static void put_send(struct eddy_relay *r)
{
    struct put_call *pc = r->open;
    r->open = NULL;
    uv_idle_stop(&r->flush);
    if (pc == NULL)
        return;
    for (size_t k = 0; k < pc->n; k++)
        pc->at[k].s->queued--;
    for (size_t k = 0; k < pc->nshards; k++)
        pc->shards[k]->puts++;
    struct eddy_error err = {0};
    r->st.put_calls++;
    if (eddy_eb_put_events(r->eb, pc->ents, pc->n, on_put, pc, NULL, &err) == EDDY_OK)
        return;
    for (size_t k = 0; k < pc->n; k++) {
        struct relay_shard *s = pc->at[k].s;
        entry_failed(s, group_of(s, pc->at[k].idx), &s->entries[pc->at[k].idx],
                     eddy_err_name(err.code), eddy_error_text(&err));
    }
    for (size_t k = 0; k < pc->nshards; k++) { /* each shard retries from the loop */
        struct relay_shard *s = pc->shards[k];
        s->puts--;
        if (!uv_is_active((uv_handle_t *)&s->retry_timer))
            uv_timer_start(&s->retry_timer, on_retry_timer, 1, 0);
    }
    free(pc);
}

static void on_flush(uv_idle_t *h)
{
    put_send(eddy_container_of(h, struct eddy_relay, flush));
}

static void put_add(struct eddy_relay *r, struct relay_shard *s, size_t idx)
{
    struct entry *e = &s->entries[idx];
    if (r->open == NULL) {
        r->open = eddy_calloc(1, sizeof *r->open);
        uv_idle_start(&r->flush, on_flush);
    }
    struct put_call *pc = r->open;
    size_t k = 0;
    while (k < pc->nshards && pc->shards[k] != s)
        k++;
    if (k == pc->nshards)
        pc->shards[pc->nshards++] = s;
    pc->at[pc->n].s = s;
    pc->at[pc->n].idx = idx;
    pc->ents[pc->n++] = e->eb;
    pc->bytes += e->size;
    s->queued++;
    e->st = E_INFLIGHT;
    if (e->failures)
        s->r->st.retries++;
    if (e->failures && s->r->metrics)
        eddy_metrics_inc(s->r->metrics, EDDY_METRIC_retries);
}

/* Put this shard's ready heads into the open call, from the cursor on,
 * sending it whenever it is full, while the shard has calls to spare. */
static void put_fill(struct relay_shard *s, uint64_t now)
{
    struct eddy_relay *r = s->r;
    for (size_t k = 0; k < s->ngroups; k++) {
        struct group *g = &s->groups[(s->cursor + k) % s->ngroups];
        if (g->next >= g->end)
            continue;
        struct entry *e = &s->entries[g->next];
        if (e->st != E_PENDING || e->ready_at > now)
            continue;
        struct put_call *pc = r->open;
        if (pc && (pc->n == EDDY_EB_MAX_ENTRIES || pc->bytes + e->size > EDDY_EB_MAX_BYTES)) {
            put_send(r);
            if (s->puts >= r->cfg.inflight_max) {
                s->cursor = (s->cursor + k) % s->ngroups;
                return;
            }
        }
        put_add(r, s, g->next);
    }
}

/* The earliest backoff among the heads, 0 when none waits. */
static uint64_t next_ready(const struct relay_shard *s)
{
    uint64_t t = 0;
    for (size_t k = 0; k < s->ngroups; k++) {
        const struct group *g = &s->groups[k];
        if (g->next >= g->end)
            continue;
        const struct entry *e = &s->entries[g->next];
        if (e->st == E_PENDING && (t == 0 || e->ready_at < t))
            t = e->ready_at;
    }
    return t;
}

static void on_retry_timer(uv_timer_t *t)
{
    pump(eddy_container_of(t, struct relay_shard, retry_timer));
}

/* Send what is ready; arm the backoff; end the round when all is done. */
static void pump(struct relay_shard *s)
{
    if (!s->busy || !s->indexed)
        return; /* the round's queries are still out */
    uv_update_time(s->r->loop);
    uint64_t now = uv_now(s->r->loop); /* backoffs run on the loop's timers */
    bool sending = shard_holds(s);
    if (sending && s->puts < s->r->cfg.inflight_max)
        put_fill(s, now);
    if (s->puts > 0 || s->queued > 0)
        return;
    uint64_t ready = sending ? next_ready(s) : 0;
    if (ready) {
        if (!uv_is_active((uv_handle_t *)&s->retry_timer))
            uv_timer_start(&s->retry_timer, on_retry_timer, ready > now ? ready - now : 1, 0);
        return;
    }
    delete_send(s);
    if (s->deletes == 0 && s->del_queue->child == NULL)
        round_end(s);
}

/* ---- the process of the relay ---- */

static void on_poll(uv_timer_t *t)
{
    struct eddy_relay *r = eddy_container_of(t, struct eddy_relay, poll);
    if (r->stopping) {
        check_stopped(r);
        return;
    }
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        struct relay_shard *s = &r->shards[i];
        if (!s->busy && shard_holds(s))
            round_start(s);
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
    uv_timer_init(r->loop, &r->poll);
    uv_idle_init(r->loop, &r->flush);
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        uv_timer_init(r->loop, &r->shards[i].retry_timer);
        uv_timer_init(r->loop, &r->shards[i].del_timer);
    }
    r->open_handles = 2 + 2 * r->cfg.shards;
    uv_timer_start(&r->poll, on_poll, r->lease ? r->cfg.poll_ms : 0, r->cfg.poll_ms);
    if (r->lease)
        eddy_lease_start(r->lease);
    EDDY_INFO("relay: started as %s (%" PRIu32 " shards, poll %" PRIu32 " ms, lease %" PRIu32
              " ms)",
              r->owner, r->cfg.shards, r->cfg.poll_ms, r->cfg.lease_ms);
    return EDDY_OK;
}

/* ---- stopping ---- */

static void on_handle_closed(uv_handle_t *h)
{
    struct eddy_relay *r = h->data;
    if (--r->open_handles > 0)
        return;
    EDDY_INFO("relay: stopped (%" PRIu64 " published)", r->st.published);
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
    close_handle(r, (uv_handle_t *)&r->poll);
    close_handle(r, (uv_handle_t *)&r->flush);
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        close_handle(r, (uv_handle_t *)&r->shards[i].retry_timer);
        close_handle(r, (uv_handle_t *)&r->shards[i].del_timer);
    }
}

static void on_lease_stopped(void *ud)
{
    struct eddy_relay *r = ud;
    r->lease = NULL;
    close_all(r);
}

static void check_stopped(struct eddy_relay *r)
{
    if (!r->stopping || r->lease_stopping || r->closing)
        return;
    for (uint32_t i = 0; i < r->cfg.shards; i++)
        if (r->shards[i].busy)
            return;
    if (r->lease) {
        r->lease_stopping = true;
        eddy_lease_stop(r->lease, on_lease_stopped, r);
    } else {
        close_all(r);
    }
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
        uv_timer_init(r->loop, &r->poll);
        r->open_handles = 1;
        r->closing = true;
        close_handle(r, (uv_handle_t *)&r->poll);
        return;
    }
    for (uint32_t i = 0; i < r->cfg.shards; i++) {
        struct relay_shard *s = &r->shards[i];
        uv_timer_stop(&s->retry_timer); /* entries waiting for a retry stay */
        if (s->busy && s->puts == 0)
            uv_timer_start(&s->retry_timer, on_retry_timer, 0, 0);
    }
    /* Continue from the loop, never inside this call. */
    uv_timer_start(&r->poll, on_poll, 0, 0);
}

/* ---- stats ---- */

void eddy_relay_stats(const struct eddy_relay *r, struct eddy_relay_stats *out)
{
    *out = r->st;
    out->shards_held = 0;
    out->lag_ms = 0;
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
