/*
 * lease.c - shard leases and the fair share (see lease.h).
 *
 * One tick at a time: the membership put and the partition query go out
 * together; when the query is in, the renewals, acquisitions and
 * surrenders are decided at once and sent together. A shard has at most one
 * write in flight, so a give-back never races its own renewal.
 */
#include "relay/lease.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/state.h"
#include "core/record.h"
#include "eddy/rng.h"
#include "svc/dynamodb.h"

enum shard_state { S_FREE, S_HELD, S_SURRENDERING, S_RELEASING };

/* A shard's moves: taken, surrendered (the relay lets it go once its batch
 * is in), given back (a delete in flight), or lost (taken by another). */
static const struct eddy_state shard_state_v[] = {
    [S_FREE] = {"free", EDDY_STATE_TO(S_HELD)},
    [S_HELD] = {"held",
                EDDY_STATE_TO(S_SURRENDERING) | EDDY_STATE_TO(S_RELEASING) | EDDY_STATE_TO(S_FREE)},
    [S_SURRENDERING] = {"surrendering", EDDY_STATE_TO(S_RELEASING) | EDDY_STATE_TO(S_FREE)},
    [S_RELEASING] = {"releasing", EDDY_STATE_TO(S_FREE)},
};
static const struct eddy_states shard_states = EDDY_STATES("lease shard", shard_state_v);

struct lease_shard {
    enum shard_state st;
    uint64_t valid_until; /* mono ms; meaningful while held */
    bool writing;         /* a write for this shard is in flight */
    bool give_back;       /* give back once that write is in */
    /* what the latest query saw */
    bool seen;
    bool seen_mine;
    int64_t seen_expires;
};

enum op_kind { OP_MEMBER, OP_UNMEMBER, OP_QUERY, OP_ACQUIRE, OP_RENEW, OP_DELETE };

struct lease_op {
    struct eddy_lease *l;
    enum op_kind kind;
    uint32_t shard;
    uint64_t sent_mono;
    cJSON *doc;    /* item or key */
    cJSON *values; /* expression values */
    cJSON *names;
};

struct eddy_lease {
    uv_loop_t *loop;
    struct eddy_ddb *ddb;
    const struct eddy_clock *clock;
    char *table, *owner, *member_sk;
    uint32_t shards, lease_ms, tick_ms;
    eddy_lease_cb cb;
    void *ud;
    struct lease_shard *s;
    uv_timer_t timer;
    bool started, stopping, ticking, releasing, ticked;
    unsigned inflight;  /* DynamoDB calls in flight */
    unsigned tick_left; /* calls of the current tick still out */
    cJSON *seen_items;  /* the partition as the current tick reads it */
    uint32_t *renew;    /* the shards the current tick renews */
    size_t nrenew;
    bool ticked_once;
    uint32_t members, fair;
    struct eddy_closer closer;
};

static void tick_query(struct eddy_lease *l, const cJSON *start_key);
static void maybe_finish(struct eddy_lease *l);

static void lease_free(struct eddy_closer *c);

struct eddy_lease *eddy_lease_new(uv_loop_t *loop, struct eddy_ddb *ddb,
                                  const struct eddy_lease_config *cfg,
                                  const struct eddy_clock *clock, eddy_lease_cb cb, void *ud,
                                  struct eddy_error *err)
{
    if (!loop || !ddb || !cfg || !cfg->table || !cb) {
        eddy_error_set(err, EDDY_EINVAL, "lease: loop, ddb, table and callback are required");
        return NULL;
    }
    if (cfg->shards == 0 || cfg->shards > EDDY_LEASE_SHARDS_MAX || cfg->lease_ms < 30) {
        eddy_error_set(err, EDDY_EINVAL, "lease: shards must be 1..%u and the lease >= 30 ms",
                       EDDY_LEASE_SHARDS_MAX);
        return NULL;
    }
    if (eddy_record_check_id("lease owner", cfg->owner, err) != EDDY_OK)
        return NULL;
    struct eddy_lease *l = eddy_calloc(1, sizeof *l);
    l->loop = loop;
    l->ddb = ddb;
    l->clock = clock ? clock : eddy_clock_system();
    l->table = eddy_strdup(cfg->table);
    l->owner = eddy_strdup(cfg->owner);
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_putf(&b, "member/%s", cfg->owner);
    l->member_sk = eddy_buf_take(&b, NULL);
    l->shards = cfg->shards;
    l->lease_ms = cfg->lease_ms;
    l->tick_ms = cfg->tick_ms ? cfg->tick_ms : cfg->lease_ms / 3;
    l->cb = cb;
    l->ud = ud;
    l->s = eddy_calloc(cfg->shards, sizeof *l->s);
    l->renew = eddy_calloc(cfg->shards, sizeof *l->renew);
    l->members = 1;
    l->fair = cfg->shards;
    eddy_closer_init(&l->closer, NULL, lease_free);
    return l;
}

static void lease_free(struct eddy_closer *c)
{
    struct eddy_lease *l = eddy_container_of(c, struct eddy_lease, closer);
    cJSON_Delete(l->seen_items);
    free(l->renew);
    free(l->s);
    free(l->table);
    free(l->owner);
    free(l->member_sk);
    free(l);
}

/* The one place a shard's state changes: checked and traced (base/state.h). */
static void shard_set_state(struct eddy_lease *l, uint32_t shard, enum shard_state to)
{
    eddy_state_move(&shard_states, l->s[shard].st, to, "%" PRIu32, shard);
    l->s[shard].st = to;
}

/* ---- queries about the state ---- */

static bool holds(const struct lease_shard *s)
{
    return s->st == S_HELD || s->st == S_SURRENDERING;
}

bool eddy_lease_held(const struct eddy_lease *l, uint32_t shard)
{
    if (shard >= l->shards || !holds(&l->s[shard]))
        return false;
    return eddy_clock_mono_ms(l->clock) < l->s[shard].valid_until;
}

uint32_t eddy_lease_count(const struct eddy_lease *l)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < l->shards; i++)
        n += eddy_lease_held(l, i);
    return n;
}

uint32_t eddy_lease_members(const struct eddy_lease *l)
{
    return l->members;
}

uint32_t eddy_lease_fair_share(const struct eddy_lease *l)
{
    return l->fair;
}

/* ---- DynamoDB calls ---- */

static cJSON *av_s(const char *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "S", s);
    return o;
}

static cJSON *av_n(int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, v);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "N", text);
    return o;
}

static struct lease_op *op_new(struct eddy_lease *l, enum op_kind kind, uint32_t shard)
{
    struct lease_op *op = eddy_calloc(1, sizeof *op);
    op->l = l;
    op->kind = kind;
    op->shard = shard;
    op->sent_mono = eddy_clock_mono_ms(l->clock);
    return op;
}

static void op_free(struct lease_op *op)
{
    cJSON_Delete(op->doc);
    cJSON_Delete(op->values);
    cJSON_Delete(op->names);
    free(op);
}

/* #o = owner, #e = expires: both are DynamoDB reserved words or close to. */
static cJSON *cond_names(void)
{
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "#o", "owner");
    cJSON_AddStringToObject(n, "#e", "expires");
    return n;
}

static void on_item(eddy_err rc, struct eddy_ddb_item_result *res,
                    const struct eddy_aws_reply *reply, void *ud);

static bool is_shard_write(enum op_kind kind)
{
    return kind == OP_ACQUIRE || kind == OP_RENEW || kind == OP_DELETE;
}

/* Start op (its doc set); false (op freed) when the start failed, which the
 * next tick repairs like a failed call. */
static bool op_send(struct lease_op *op, const char *condition, bool is_delete)
{
    struct eddy_lease *l = op->l;
    struct eddy_ddb_expr expr = {.condition = condition, .names = op->names, .values = op->values};
    struct eddy_error err = {0};
    eddy_err rc;
    if (is_delete)
        rc = eddy_ddb_delete_item(l->ddb, l->table, op->doc, condition ? &expr : NULL, NULL,
                                  on_item, op, NULL, &err);
    else
        rc = eddy_ddb_put_item(l->ddb, l->table, op->doc, condition ? &expr : NULL, NULL, on_item,
                               op, NULL, &err);
    if (rc != EDDY_OK) {
        EDDY_WARN("lease: cannot start a DynamoDB call: %s", eddy_error_text(&err));
        op_free(op);
        return false;
    }
    l->inflight++;
    if (is_shard_write(op->kind))
        l->s[op->shard].writing = true;
    return true;
}

/* The lease item of shard as a tree, for PutItem and TransactWriteItems. */
static eddy_err lease_doc(const struct eddy_lease *l, uint32_t shard, int64_t expires_ms,
                          cJSON **doc, struct eddy_error *err)
{
    struct eddy_record_text t = {0};
    eddy_err rc = eddy_record_render_lease(shard, l->owner, expires_ms, &t, err);
    *doc = rc == EDDY_OK ? cJSON_ParseWithLength(t.json, t.len) : NULL;
    eddy_record_text_cleanup(&t);
    if (rc == EDDY_OK && *doc == NULL)
        abort(); /* the text was just written: only memory can fail here */
    return rc;
}

/* Acquire or renew: the same conditional put of the lease item. */
static void send_lease_put(struct eddy_lease *l, uint32_t shard, enum op_kind kind)
{
    struct lease_op *op = op_new(l, kind, shard);
    int64_t now = eddy_clock_unix_ms(l->clock);
    struct eddy_error err = {0};
    if (lease_doc(l, shard, now + l->lease_ms, &op->doc, &err) != EDDY_OK) {
        EDDY_ERROR("lease: %s", eddy_error_text(&err));
        op_free(op);
        return;
    }
    op->names = cond_names();
    op->values = cJSON_CreateObject();
    cJSON_AddItemToObject(op->values, ":now", av_n(now));
    cJSON_AddItemToObject(op->values, ":me", av_s(l->owner));
    if (op_send(op, "attribute_not_exists(#o) OR #e < :now OR #o = :me", false))
        l->tick_left++;
}

static void send_delete(struct eddy_lease *l, enum op_kind kind, uint32_t shard, const char *sk)
{
    struct lease_op *op = op_new(l, kind, shard);
    op->doc = cJSON_CreateObject();
    cJSON_AddItemToObject(op->doc, "_pk", av_s(EDDY_RECORD_LEASE_PK));
    cJSON_AddItemToObject(op->doc, "_sk", av_s(sk));
    op->names = cJSON_CreateObject();
    cJSON_AddStringToObject(op->names, "#o", "owner");
    op->values = cJSON_CreateObject();
    cJSON_AddItemToObject(op->values, ":me", av_s(l->owner));
    op_send(op, "#o = :me", true);
}

static void send_release(struct eddy_lease *l, uint32_t shard)
{
    char *sk = eddy_record_lease_sk(shard);
    if (l->s[shard].st != S_RELEASING) /* or given back while a write was out */
        shard_set_state(l, shard, S_RELEASING);
    l->s[shard].give_back = false;
    send_delete(l, OP_DELETE, shard, sk);
    free(sk);
}

/* Members of processes that are gone expire: DynamoDB deletes them after
 * _ttl (unix s), an hour past their last heartbeat. */
static int64_t member_ttl(const struct eddy_lease *l)
{
    return (eddy_clock_unix_ms(l->clock) + (int64_t)l->lease_ms) / 1000 + 3600;
}

static cJSON *member_doc(const struct eddy_lease *l)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "_pk", av_s(EDDY_RECORD_LEASE_PK));
    cJSON_AddItemToObject(doc, "_sk", av_s(l->member_sk));
    cJSON_AddItemToObject(doc, "owner", av_s(l->owner));
    cJSON_AddItemToObject(doc, "expires",
                          av_n(eddy_clock_unix_ms(l->clock) + (int64_t)l->lease_ms));
    cJSON_AddItemToObject(doc, "_ttl", av_n(member_ttl(l)));
    return doc;
}

static void send_member(struct eddy_lease *l)
{
    struct lease_op *op = op_new(l, OP_MEMBER, 0);
    op->doc = cJSON_CreateObject();
    cJSON_AddItemToObject(op->doc, "_pk", av_s(EDDY_RECORD_LEASE_PK));
    cJSON_AddItemToObject(op->doc, "_sk", av_s(l->member_sk));
    cJSON_AddItemToObject(op->doc, "owner", av_s(l->owner));
    cJSON_AddItemToObject(op->doc, "expires",
                          av_n(eddy_clock_unix_ms(l->clock) + (int64_t)l->lease_ms));
    cJSON_AddItemToObject(op->doc, "_ttl", av_n(member_ttl(l)));
    op_send(op, NULL, false);
}

static void emit(struct eddy_lease *l, uint32_t shard, enum eddy_lease_event ev)
{
    static const char *const names[] = {"acquired", "lost", "surrendering"};
    EDDY_INFO("lease: %s shard %" PRIu32 " (owner %s, %" PRIu32 " members, share %" PRIu32 ")",
              names[ev], shard, l->owner, l->members, l->fair);
    l->cb(shard, ev, l->ud);
}

static void lose(struct eddy_lease *l, uint32_t shard)
{
    if (!holds(&l->s[shard]))
        return;
    shard_set_state(l, shard, S_FREE);
    l->s[shard].give_back = false;
    emit(l, shard, EDDY_LEASE_LOST);
}

/* A lease write came back. */
static void on_lease_write(struct lease_op *op, eddy_err rc, const struct eddy_aws_reply *reply)
{
    struct eddy_lease *l = op->l;
    struct lease_shard *s = &l->s[op->shard];
    s->writing = false;
    if (op->kind == OP_DELETE) {
        if (rc != EDDY_OK && rc != EDDY_ECONDITION)
            EDDY_WARN("lease: releasing shard %" PRIu32 ": %s", op->shard,
                      eddy_error_text(reply->error));
        if (s->st == S_RELEASING)
            shard_set_state(l, op->shard, S_FREE);
        return;
    }
    l->tick_left--;
    if (rc == EDDY_OK) {
        s->valid_until = op->sent_mono + l->lease_ms - l->lease_ms / 10;
        if (op->kind == OP_ACQUIRE && s->st == S_FREE && !l->stopping) {
            shard_set_state(l, op->shard, S_HELD);
            emit(l, op->shard, EDDY_LEASE_ACQUIRED);
        } else if (op->kind == OP_ACQUIRE && s->st == S_FREE) {
            shard_set_state(l, op->shard, S_HELD); /* stopping: released below with the others */
        }
    } else if (rc == EDDY_ECONDITION) {
        if (op->kind == OP_RENEW)
            lose(l, op->shard); /* someone took it after it ran out */
    } else {
        EDDY_WARN("lease: %s shard %" PRIu32 ": %s",
                  op->kind == OP_RENEW ? "renewing" : "acquiring", op->shard,
                  eddy_error_text(reply->error));
    }
    if (s->give_back && s->st == S_RELEASING && !l->stopping)
        send_release(l, op->shard);
}

static void on_item(eddy_err rc, struct eddy_ddb_item_result *res,
                    const struct eddy_aws_reply *reply, void *ud)
{
    struct lease_op *op = ud;
    struct eddy_lease *l = op->l;
    eddy_ddb_item_result_cleanup(res);
    l->inflight--;
    if (op->kind == OP_MEMBER || op->kind == OP_UNMEMBER) {
        if (rc != EDDY_OK && rc != EDDY_ECONDITION)
            EDDY_WARN("lease: membership %s: %s", op->kind == OP_MEMBER ? "heartbeat" : "release",
                      eddy_error_text(reply->error));
    } else {
        on_lease_write(op, rc, reply);
    }
    op_free(op);
    maybe_finish(l);
}

/* ---- renewals: the membership and the leases held, in one call ---- */

struct renew_txn {
    struct eddy_lease *l;
    uint64_t sent_mono;
    uint32_t *shards;
    size_t n;
    cJSON **docs; /* the member, then one per shard */
    cJSON *names, *values;
};

static void renew_txn_free(struct renew_txn *t)
{
    for (size_t i = 0; i <= t->n; i++)
        cJSON_Delete(t->docs[i]);
    free(t->docs);
    free(t->shards);
    cJSON_Delete(t->names);
    cJSON_Delete(t->values);
    free(t);
}

/* A cancelled transaction: the shards whose condition failed were taken;
 * the others were not written and are renewed on the next tick, well
 * before they run out. */
static void on_renewals(eddy_err rc, struct eddy_ddb_txn_result *res,
                        const struct eddy_aws_reply *reply, void *ud)
{
    struct renew_txn *t = ud;
    struct eddy_lease *l = t->l;
    l->inflight--;
    l->tick_left--;
    if (rc != EDDY_OK && rc != EDDY_ETXN_CANCELED)
        EDDY_WARN("lease: renewing %zu leases: %s", t->n, eddy_error_text(reply->error));
    for (size_t i = 0; i < t->n; i++) {
        struct lease_shard *s = &l->s[t->shards[i]];
        s->writing = false;
        if (rc == EDDY_OK) {
            s->valid_until = t->sent_mono + l->lease_ms - l->lease_ms / 10;
        } else if (rc == EDDY_ETXN_CANCELED && i + 1 < res->n && res->reasons[i + 1].code &&
                   strcmp(res->reasons[i + 1].code, "ConditionalCheckFailed") == 0) {
            lose(l, t->shards[i]); /* someone took it after it ran out */
        }
        if (s->give_back && s->st == S_RELEASING && !l->stopping)
            send_release(l, t->shards[i]);
    }
    eddy_ddb_txn_result_cleanup(res);
    renew_txn_free(t);
    maybe_finish(l);
}

/* One TransactWriteItems: the membership heartbeat and the renewal of
 * every lease in l->renew, each renewal under the acquire condition. One
 * call a tick, however many shards are held (up to 99; more go in further
 * calls). */
static void send_renewals(struct eddy_lease *l)
{
    size_t done = 0;
    do {
        size_t n = l->nrenew - done > 99 ? 99 : l->nrenew - done;
        struct renew_txn *t = eddy_calloc(1, sizeof *t);
        t->l = l;
        t->sent_mono = eddy_clock_mono_ms(l->clock);
        t->n = n;
        t->shards = eddy_calloc(n ? n : 1, sizeof *t->shards);
        t->docs = eddy_calloc(n + 1, sizeof *t->docs);
        t->names = cond_names();
        t->values = cJSON_CreateObject();
        int64_t now = eddy_clock_unix_ms(l->clock);
        cJSON_AddItemToObject(t->values, ":now", av_n(now));
        cJSON_AddItemToObject(t->values, ":me", av_s(l->owner));
        struct eddy_ddb_txn_item items[100];
        t->docs[0] = member_doc(l);
        items[0] =
            (struct eddy_ddb_txn_item){.kind = EDDY_DDB_PUT, .table = l->table, .item = t->docs[0]};
        for (size_t i = 0; i < n; i++) {
            uint32_t shard = l->renew[done + i];
            struct eddy_error err = {0};
            t->shards[i] = shard;
            if (lease_doc(l, shard, now + l->lease_ms, &t->docs[i + 1], &err) != EDDY_OK)
                abort(); /* the owner was checked at creation */
            items[i + 1] = (struct eddy_ddb_txn_item){
                .kind = EDDY_DDB_PUT,
                .table = l->table,
                .item = t->docs[i + 1],
                .expr = {.condition = "attribute_not_exists(#o) OR #e < :now OR #o = :me",
                         .names = t->names,
                         .values = t->values}};
        }
        struct eddy_error err = {0};
        if (eddy_ddb_transact_write(l->ddb, items, n + 1, NULL, on_renewals, t, NULL, &err) !=
            EDDY_OK) {
            EDDY_WARN("lease: cannot renew: %s", eddy_error_text(&err));
            renew_txn_free(t);
            return;
        }
        for (size_t i = 0; i < n; i++)
            l->s[t->shards[i]].writing = true;
        l->inflight++;
        l->tick_left++;
        done += n;
    } while (done < l->nrenew);
}

/* ---- the tick ---- */

/* What the partition says about shard leases and live members. */
static void read_partition(struct eddy_lease *l, int64_t now)
{
    uint32_t others = 0;
    for (uint32_t i = 0; i < l->shards; i++)
        l->s[i].seen = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, l->seen_items)
    {
        const char *owner = NULL;
        int64_t expires = 0;
        struct eddy_error err;
        const cJSON *sk =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "_sk"), "S");
        if (!cJSON_IsString(sk) || eddy_record_parse_lease(it, &owner, &expires, &err) != EDDY_OK)
            continue;
        const char *key = sk->valuestring;
        if (strncmp(key, "member/", 7) == 0) {
            others += expires > now && strcmp(owner, l->owner) != 0;
            continue;
        }
        char *end = NULL;
        if (strncmp(key, "outbox/", 7) != 0 || key[7] < '0' || key[7] > '9')
            continue;
        unsigned long n = strtoul(key + 7, &end, 10);
        if (*end != '\0' || n >= l->shards)
            continue;
        l->s[n].seen = true;
        l->s[n].seen_mine = strcmp(owner, l->owner) == 0;
        l->s[n].seen_expires = expires;
    }
    l->members = others + 1;
    l->fair = (l->shards + l->members - 1) / l->members;
}

/* Drop what ran out or was taken; renew the rest. Returns shards kept. */
static uint32_t renew_held(struct eddy_lease *l, int64_t now)
{
    uint64_t mono = eddy_clock_mono_ms(l->clock);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < l->shards; i++) {
        struct lease_shard *s = &l->s[i];
        if (!holds(s))
            continue;
        bool taken = s->seen && !s->seen_mine && s->seen_expires > now;
        if (mono >= s->valid_until || taken) {
            lose(l, i);
            continue;
        }
        if (s->st == S_HELD)
            kept++;
        if (!s->writing)
            l->renew[l->nrenew++] = i;
    }
    return kept;
}

/* Take free or expired shards up to the share, starting at a place of our
 * own so that processes starting together do not all race for shard 0. */
static void acquire_free(struct eddy_lease *l, uint32_t held, int64_t now)
{
    uint32_t start = eddy_fnv1a32(l->owner, strlen(l->owner)) % l->shards;
    for (uint32_t k = 0; k < l->shards && held < l->fair; k++) {
        uint32_t i = (start + k) % l->shards;
        struct lease_shard *s = &l->s[i];
        if (s->st != S_FREE || s->writing)
            continue;
        if (s->seen && !s->seen_mine && s->seen_expires >= now)
            continue;
        send_lease_put(l, i, OP_ACQUIRE);
        held++;
    }
}

static void surrender_extra(struct eddy_lease *l, uint32_t held)
{
    for (uint32_t i = l->shards; i-- > 0 && held > l->fair;) {
        if (l->s[i].st == S_HELD) {
            shard_set_state(l, i, S_SURRENDERING);
            held--;
            emit(l, i, EDDY_LEASE_SURRENDER);
        }
    }
}

static void tick_decide(struct eddy_lease *l)
{
    int64_t now = eddy_clock_unix_ms(l->clock);
    read_partition(l, now);
    l->nrenew = 0;
    uint32_t held = renew_held(l, now);
    send_renewals(l);
    if (held > l->fair)
        surrender_extra(l, held);
    else
        acquire_free(l, held, now);
}

static void on_query(eddy_err rc, struct eddy_ddb_query_result *res,
                     const struct eddy_aws_reply *reply, void *ud)
{
    struct lease_op *op = ud;
    struct eddy_lease *l = op->l;
    l->inflight--;
    l->tick_left--;
    op_free(op);
    if (rc != EDDY_OK) {
        EDDY_WARN("lease: reading the lease partition: %s", eddy_error_text(reply->error));
    } else {
        cJSON *it;
        while ((it = cJSON_DetachItemViaPointer(res->items, res->items->child)) != NULL)
            cJSON_AddItemToArray(l->seen_items, it);
        if (res->last_key && !l->stopping) {
            tick_query(l, res->last_key);
        } else if (!l->stopping) {
            tick_decide(l);
        }
    }
    eddy_ddb_query_result_cleanup(res);
    maybe_finish(l);
}

static void tick_query(struct eddy_lease *l, const cJSON *start_key)
{
    struct lease_op *op = op_new(l, OP_QUERY, 0);
    op->names = cJSON_CreateObject();
    cJSON_AddStringToObject(op->names, "#pk", "_pk");
    op->values = cJSON_CreateObject();
    cJSON_AddItemToObject(op->values, ":pk", av_s(EDDY_RECORD_LEASE_PK));
    struct eddy_ddb_query_params p = {.table = l->table,
                                      .key_condition = "#pk = :pk",
                                      .names = op->names,
                                      .values = op->values,
                                      .consistent = true,
                                      .start_key = start_key};
    struct eddy_error err = {0};
    if (eddy_ddb_query(l->ddb, &p, on_query, op, NULL, &err) != EDDY_OK) {
        EDDY_WARN("lease: cannot query the lease partition: %s", eddy_error_text(&err));
        op_free(op);
        return;
    }
    l->inflight++;
    l->tick_left++;
}

bool eddy_lease_tick(struct eddy_lease *l)
{
    if (l->ticking || l->stopping)
        return false;
    l->ticking = true;
    l->ticked = true;
    cJSON_Delete(l->seen_items);
    l->seen_items = cJSON_CreateArray();
    if (!l->ticked_once) /* be counted at once; later heartbeats go with the renewals */
        send_member(l);
    l->ticked_once = true;
    tick_query(l, NULL);
    maybe_finish(l);
    return true;
}

static void on_timer(uv_timer_t *t)
{
    eddy_lease_tick(eddy_container_of(t, struct eddy_lease, timer));
}

void eddy_lease_start(struct eddy_lease *l)
{
    assert(!l->started);
    l->started = true;
    uv_timer_init(l->loop, &l->timer);
    uv_timer_start(&l->timer, on_timer, l->tick_ms, l->tick_ms);
    eddy_lease_tick(l);
}

void eddy_lease_give_back(struct eddy_lease *l, uint32_t shard)
{
    if (shard >= l->shards || !holds(&l->s[shard]) || l->stopping)
        return;
    if (l->s[shard].writing) {
        shard_set_state(l, shard, S_RELEASING); /* no longer ours to use */
        l->s[shard].give_back = true;
        return;
    }
    send_release(l, shard);
}

/* ---- stopping ---- */

static void release_all(struct eddy_lease *l)
{
    l->releasing = true;
    for (uint32_t i = 0; i < l->shards; i++) {
        struct lease_shard *s = &l->s[i];
        if (holds(s) || (s->st == S_RELEASING && s->give_back))
            send_release(l, i);
    }
    if (l->ticked)
        send_delete(l, OP_UNMEMBER, 0, l->member_sk);
}

/* Tick bookkeeping, and the steps of stopping once the calls are in. */
static void maybe_finish(struct eddy_lease *l)
{
    if (l->ticking && l->tick_left == 0)
        l->ticking = false;
    if (!l->stopping || l->inflight > 0)
        return;
    if (!l->releasing) {
        release_all(l);
        if (l->inflight > 0)
            return;
    }
    if (!uv_is_closing((uv_handle_t *)&l->timer))
        eddy_closer_close(&l->closer, (uv_handle_t *)&l->timer);
}

static void on_unstarted_timer(uv_timer_t *t)
{
    maybe_finish(eddy_container_of(t, struct eddy_lease, timer));
}

void eddy_lease_close(struct eddy_lease *l, eddy_close_cb cb, void *ud)
{
    if (l == NULL || !eddy_closer_begin(&l->closer, cb, ud))
        return;
    l->stopping = true;
    if (!l->started) {
        l->started = true;
        uv_timer_init(l->loop, &l->timer);
    }
    uv_timer_stop(&l->timer);
    /* Continue from the loop, never inside this call. */
    uv_timer_start(&l->timer, on_unstarted_timer, 0, 0);
}
