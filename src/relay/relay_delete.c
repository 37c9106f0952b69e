/*
 * relay_delete.c - deleting published entries' outbox rows: BatchWriteItem,
 * 25 keys a call, a partial batch after a linger, unprocessed keys sent
 * again after a backoff. The rows deleted while a sweep's Query is out are
 * remembered, so the sweep does not take them again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/retry.h"
#include "base/alloc.h"
#include "base/log.h"
#include "relay/relay_int.h"
#include "svc/dynamodb.h"

/* Failures of one key's delete before it is given up (its row stays, and
 * a sweep publishes it again): under throttling the replies leave a few
 * keys each, and the queue backs off, up to DELETE_BACKOFF_CAP_MS, a minute
 * or so for this many. */
#define DELETE_ATTEMPTS 20
#define DELETE_BACKOFF_CAP_MS 5000
#define DELETE_LINGER_MS 250

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
void relay_note_gone(struct eddy_relay *r, const struct entry *e)
{
    if (r->sweeps == 0)
        return;
    eddy_map_put(&r->gone, eddy_str_c(e->o.sk), (void *)(uintptr_t)(uv_now(r->loop) + 1));
}

/* Forget the deletes no Query in flight can have missed. */
void relay_prune_gone(struct eddy_relay *r)
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
    char *keys; /* their keys' JSON text (delete_keys) */
    size_t n;
};

void relay_delete_send(struct eddy_relay *r, bool all);

cJSON *relay_entry_key(const struct entry *e)
{
    cJSON *key = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(key, "_pk"), "S", e->o.pk);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(key, "_sk"), "S", e->o.sk);
    return key;
}

void relay_delete_queue(struct eddy_relay *r, struct entry *e)
{
    eddy_list_insert_tail(&r->del, &e->dlink);
    e->del_at = uv_now(r->loop);
    r->del_queued++;
}

static void on_del_timer(uv_timer_t *t)
{
    struct eddy_relay *r = eddy_container_of(t, struct eddy_relay, del_timer);
    relay_delete_send(r, true);
    relay_check_stopped(r);
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
    size_t again = 0, given_up = 0;
    for (size_t i = 0; i < dc->n; i++) {
        struct entry *e = dc->ents[i];
        if (rc == EDDY_OK && !unprocessed(res->unprocessed, e)) {
            r->st.deleted++;
            relay_note_gone(r, e);
            relay_entry_remove(r, e);
        } else if (++e->del_failures >= DELETE_ATTEMPTS) {
            given_up++;
            relay_entry_remove(r, e); /* its row stays */
        } else {
            relay_delete_queue(r, e);
            again++;
        }
    }
    eddy_ddb_batch_write_result_cleanup(res);
    free(dc->keys);
    free(dc);
    if (given_up)
        EDDY_ERROR("relay: %zu published entries could not be deleted in %d attempts each; a "
                   "sweep will publish them again",
                   given_up, DELETE_ATTEMPTS);
    if (again == 0) {
        r->del_attempt = 0;
    } else {
        r->del_attempt += r->del_attempt < 16;
        r->st.delete_retries += again;
        uint32_t ms =
            eddy_backoff_full_jitter(&r->rng, r->del_attempt - 1, 50, DELETE_BACKOFF_CAP_MS);
        uv_timer_start(&r->del_timer, on_del_timer, ms ? ms : 1, 0);
    }
    relay_pump(r);
    relay_check_stopped(r);
}

/* The keys of a call as JSON text, one after the other in one buffer
 * (no tree per key): the request is written from them at once. */
static void delete_keys(struct delete_call *dc, struct eddy_ddb_write_req *reqs)
{
    struct eddy_jw w;
    size_t at[EDDY_DDB_MAX_BATCH_WRITE + 1];
    eddy_jw_init(&w, 0);
    for (size_t i = 0; i < dc->n; i++) {
        const struct entry *e = dc->ents[i];
        at[i] = w.buf.len;
        w.comma = false;
        eddy_jw_open(&w, '{');
        EDDY_JW_KEY(&w, "_pk");
        eddy_jw_open(&w, '{');
        EDDY_JW_KSTR(&w, "S", e->o.pk);
        eddy_jw_close(&w, '}');
        EDDY_JW_KEY(&w, "_sk");
        eddy_jw_open(&w, '{');
        EDDY_JW_KSTR(&w, "S", e->o.sk);
        eddy_jw_close(&w, '}');
        eddy_jw_close(&w, '}');
    }
    at[dc->n] = w.buf.len;
    dc->keys = eddy_buf_take(&w.buf, NULL);
    for (size_t i = 0; i < dc->n; i++)
        reqs[i] = (struct eddy_ddb_write_req){.delete_key_json = dc->keys + at[i],
                                              .delete_key_len = at[i + 1] - at[i]};
}

static void delete_send_one(struct eddy_relay *r)
{
    struct delete_call *dc = eddy_calloc(1, sizeof *dc);
    dc->r = r;
    struct eddy_ddb_write_req reqs[EDDY_DDB_MAX_BATCH_WRITE];
    struct eddy_list *q;
    while (dc->n < EDDY_DDB_MAX_BATCH_WRITE && (q = eddy_list_take(&r->del)) != NULL) {
        r->del_queued--;
        dc->ents[dc->n++] = eddy_list_data(q, struct entry, dlink);
    }
    delete_keys(dc, reqs);
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

/* Send full batches; all: the partial one too (the linger is over). A
 * partial batch waits until its oldest key has waited DELETE_LINGER_MS:
 * the timer follows the oldest key queued, not the first key queued after
 * an empty queue, so that the keys left after full batches get their own
 * linger (full batches under load, instead of a partial one per linger). */
void relay_delete_send(struct eddy_relay *r, bool all)
{
    if (uv_is_active((uv_handle_t *)&r->del_timer) && r->del_attempt > 0)
        return; /* a backoff runs */
    bool sent = false;
    for (; r->del_queued >= EDDY_DDB_MAX_BATCH_WRITE || (all && r->del_queued > 0); sent = true)
        delete_send_one(r);
    if (r->del_queued == 0) {
        uv_timer_stop(&r->del_timer);
        return;
    }
    if (!sent && uv_is_active((uv_handle_t *)&r->del_timer))
        return; /* it runs for the same oldest key */
    uint64_t now = uv_now(r->loop),
             due = eddy_list_data(eddy_list_head(&r->del), struct entry, dlink)->del_at +
                   DELETE_LINGER_MS;
    uv_timer_start(&r->del_timer, on_del_timer, r->stopping || due <= now ? 1 : due - now, 0);
}
