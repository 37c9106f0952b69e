/*
 * commit.c - the commit protocol's items and conditions (see commit.h).
 */
#include "core/commit.h"

#include <inttypes.h>
#include <stdio.h>

#define COND_NEW "attribute_not_exists(#pk)"
#define COND_STATE "attribute_not_exists(#pk) OR #seq = :prev"

void eddy_commit_init(struct eddy_commit *c, const char *table)
{
    c->table = table;
    c->names_new = cJSON_CreateObject();
    cJSON_AddStringToObject(c->names_new, "#pk", "_pk");
    c->names_state = cJSON_Duplicate(c->names_new, true);
    cJSON_AddStringToObject(c->names_state, "#seq", "_seq");
}

void eddy_commit_cleanup(struct eddy_commit *c)
{
    cJSON_Delete(c->names_new);
    cJSON_Delete(c->names_state);
    c->names_new = c->names_state = NULL;
}

static cJSON *prev_text(const char *seq)
{
    cJSON *prev = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(prev, ":prev"), "N", seq);
    return prev;
}

cJSON *eddy_commit_prev_new(int64_t seq)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, seq);
    return prev_text(text);
}

const cJSON *eddy_commit_prev_set(struct eddy_commit_prev *p, int64_t seq)
{
    snprintf(p->text, sizeof p->text, "%" PRId64, seq);
    /* {":prev": {"N": "<seq>"}}: constant names and a borrowed value, so
     * nothing in it is ever the allocator's */
    p->n = (cJSON){.type = cJSON_String | cJSON_IsReference | cJSON_StringIsConst,
                   .valuestring = p->text,
                   .string = (char *)"N"};
    p->prev = (cJSON){
        .type = cJSON_Object | cJSON_StringIsConst, .child = &p->n, .string = (char *)":prev"};
    p->n.prev = &p->n;
    p->prev.prev = &p->prev;
    p->values = (cJSON){.type = cJSON_Object, .child = &p->prev};
    return &p->values;
}

void eddy_commit_state_put(const struct eddy_commit *c, const cJSON *prev,
                           struct eddy_ddb_txn_item *it)
{
    it->kind = EDDY_DDB_PUT;
    it->table = c->table;
    it->expr = (struct eddy_ddb_expr){.condition = COND_STATE,
                                      .names = c->names_state,
                                      .values = prev,
                                      .return_old_on_fail = true};
}

void eddy_commit_new_put(const struct eddy_commit *c, struct eddy_ddb_txn_item *it)
{
    it->kind = EDDY_DDB_PUT;
    it->table = c->table;
    it->expr = (struct eddy_ddb_expr){.condition = COND_NEW, .names = c->names_new};
}

size_t eddy_commit_state_overhead(const struct eddy_commit *c)
{
    cJSON *prev = prev_text("-9223372036854775808");
    struct eddy_ddb_txn_item it = {0};
    eddy_commit_state_put(c, prev, &it);
    size_t n = eddy_ddb_txn_item_overhead(&it);
    cJSON_Delete(prev);
    return n;
}

size_t eddy_commit_new_overhead(const struct eddy_commit *c)
{
    struct eddy_ddb_txn_item it = {0};
    eddy_commit_new_put(c, &it);
    return eddy_ddb_txn_item_overhead(&it);
}
