/*
 * proc_load.c - cold entities loaded together, one BatchGetItem (consistent
 * reads) per 100 keys; a missing state item is the machine's initial state
 * at _seq 0. Unprocessed keys are the table throttling the reads: they are
 * asked again after a backoff, as a throttled commit is, and past
 * occ_retries their batches fail with EDDY_ETHROTTLED.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/attr.h"
#include "core/proc_int.h"

/*
 * A stored state, as a-h/stream's decoder reads it: names matched to the
 * machine's own spelling without regard to case (core/names.h). Binary and
 * set attributes are remembered so the commit writes them back in their
 * stored types.
 */
bool proc_load_state(struct entity *e, const cJSON *item)
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
        if (proc_load_state(e, item))
            eddy_list_insert_tail(&p->ready, &e->link);
        else
            proc_finish(e, EDDY_EPARSE);
    }
    cJSON_ArrayForEach(item, res->unprocessed)
    {
        struct entity *e = load_match(l, item);
        if (e)
            proc_throttled(e, "BatchGetItem UnprocessedKeys", false);
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
            proc_finish(e, err);
            continue;
        }
        /* no state item: the machine's initial state at _seq 0 */
        e->state = p->cfg.machine->state_new(e->b->entity_id);
        e->seq = 0;
        if (e->state == NULL) {
            eddy_error_set(&e->b->error, EDDY_EMACHINE, "%s: state_new failed", e->pk);
            proc_finish(e, EDDY_EMACHINE);
        } else {
            eddy_list_insert_tail(&p->ready, &e->link);
        }
    }
    eddy_ddb_batch_get_result_cleanup(res);
    free(l);
    proc_pump_soon(p);
    proc_maybe_closed(p);
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
        proc_finish(l->ents[j], rc);
    }
    free(l);
}

/* One BatchGetItem per 100 cold entities. */
void proc_load_cold(struct eddy_processor *p, struct eddy_list *cold)
{
    struct load *l = NULL;
    struct entity *e;
    while ((e = entity_pop(cold)) != NULL) {
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
