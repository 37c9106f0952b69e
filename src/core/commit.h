/*
 * commit.h - the commit protocol's transaction items, written one way for
 * the processor and for `eddy replay --repair`.
 *
 * A commit is one TransactWriteItems of puts: the entity's state item,
 * conditioned on the _seq it was read at (attribute_not_exists(_pk) OR
 * _seq = :prev, so a state that moved on cancels the transaction), and
 * every other item (state version, inbound, repair and outbound records,
 * dedupe markers, outbox entries) conditioned on not existing yet. A failed
 * state condition returns the state item as it is now (ALL_OLD), so the
 * writer can process again without reading it.
 *
 * The expression names are built once (eddy_commit_init) and borrowed by
 * every item filled from them; the :prev values by the state put filled
 * from them. This module renders no items: core/record.h does.
 */
#ifndef EDDY_CORE_COMMIT_H
#define EDDY_CORE_COMMIT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "svc/dynamodb.h"

struct eddy_commit {
    const char *table; /* borrowed */
    cJSON *names_new, *names_state;
};

void eddy_commit_init(struct eddy_commit *c, const char *table);
void eddy_commit_cleanup(struct eddy_commit *c);

/* The state put's ExpressionAttributeValues for a state read at seq. */
cJSON *eddy_commit_prev_new(int64_t seq);

/* The same values without an allocation: the tree's nodes and text live in
 * the struct (the processor keeps one per entity). Valid until the next set
 * or until the struct goes; never cJSON_Delete it. */
struct eddy_commit_prev {
    cJSON values, prev, n;
    char text[24];
};
const cJSON *eddy_commit_prev_set(struct eddy_commit_prev *p, int64_t seq);

/* A put of the state item read at the seq of prev (eddy_commit_prev_new);
 * the item (tree or text) is the caller's to set. */
void eddy_commit_state_put(const struct eddy_commit *c, const cJSON *prev,
                           struct eddy_ddb_txn_item *it);
/* A put of any other item, which must not exist yet. */
void eddy_commit_new_put(const struct eddy_commit *c, struct eddy_ddb_txn_item *it);

/* What the DynamoDB client writes around an item's text in the request
 * (eddy_ddb_txn_item_overhead): for the state put at its longest :prev, and
 * for any other put. */
size_t eddy_commit_state_overhead(const struct eddy_commit *c);
size_t eddy_commit_new_overhead(const struct eddy_commit *c);

#endif
