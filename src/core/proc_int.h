/*
 * proc_int.h - inside the processor (see processor.h for the contract): the
 * state every part shares, and the functions one part calls in another. Not
 * for use outside the processor's files:
 *
 *   processor.c    the public API, finishing a batch, the pump
 *   proc_cache.c   the LRU of loaded states
 *   proc_step.c    building one entity's step: events run, items rendered,
 *                  limits checked
 *   proc_commit.c  group commit: steps into TransactWriteItems, and what a
 *                  commit, a cancellation or a conflict does to each entity
 *   proc_load.c    cold entities loaded with BatchGetItem
 */
#ifndef EDDY_CORE_PROC_INT_H
#define EDDY_CORE_PROC_INT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/closer.h"
#include "base/json.h"
#include "base/list.h"
#include "base/lru.h"
#include "eddy/rng.h"
#include "core/commit.h"
#include "core/machine.h"
#include "core/processor.h"
#include "core/record.h"
#include "svc/dynamodb.h"

#define DEFAULT_BACKOFF_BASE_MS 10u
#define DEFAULT_BACKOFF_MAX_MS 2000u
#define DEFAULT_COMMITS_MAX 4u

enum role { ROLE_STATE, ROLE_VERSION, ROLE_INBOUND, ROLE_DEDUPE, ROLE_OUTBOUND, ROLE_OUTBOX };

/* What a step decided for one event, applied when the commit succeeds. */
struct step_event {
    size_t ev; /* index in the batch */
    bool rejected;
};

struct cached;

/*
 * One submitted batch in the processor's hands. Entities are reused through
 * the processor's free list (free_ents) with what they allocated: the item
 * arrays, the key and a spare cache record, so a steady stream of batches
 * allocates none of it.
 */
struct entity {
    struct eddy_processor *p;
    struct eddy_proc_batch *b;
    struct eddy_list
        link; /* in one of the processor's lists (queue, ready, waiting, free), or none */
    char *pk;
    size_t pk_cap;
    struct cached *spare; /* a cache record to put the state back in, or NULL */
    void *state;          /* NULL until loaded */
    int64_t seq;
    cJSON *keep;        /* the stored attributes whose types a commit keeps (B, sets), or NULL */
    size_t state_bytes; /* text of the last state item built, an estimate for the next */
    unsigned conflicts, throttles;
    unsigned contended; /* of the throttles, those for a TransactionConflict alone */
    uint64_t due;       /* uv_now when a backoff ends */
    /* the step being built or committed */
    struct eddy_record_text *items; /* rendered, sent as they are */
    enum role *roles;
    size_t *role_ev;
    size_t nitems, cap, bytes; /* bytes: of the request text, see item_bytes */
    struct step_event *sev;
    size_t nsev, sev_cap;
    void *new_state;
    const cJSON *prev; /* ExpressionAttributeValues of the state put (in prev_values), or NULL */
    struct eddy_commit_prev prev_values;
    bool outbox; /* the step writes outbox entries */
    /* what a cancelled transaction said about this entity's items */
    bool fail_state, fail_throttle, fail_contended;
    const char *fail_code;
    cJSON *fresh; /* the state item as it is now, returned with a failed condition (ALL_OLD) */
};

struct item_ref {
    struct entity *e;
    size_t item; /* index in e->items */
};

/* One TransactWriteItems; reused through the processor's free_groups with its arrays. */
struct group {
    struct eddy_processor *p;
    struct eddy_list link; /* in free_groups while unused */
    struct entity **ents;
    size_t nents, ents_cap;
    struct item_ref *refs;
    size_t nrefs, refs_cap;
    struct eddy_ddb_txn_item *items; /* the call's items, refs_cap of them once allocated */
    size_t items_cap;
    size_t bytes;
};

struct load {
    struct eddy_processor *p;
    struct entity *ents[EDDY_DDB_MAX_BATCH_GET];
    size_t n;
};

struct eddy_processor {
    uv_loop_t *loop;
    struct eddy_ddb *ddb;
    struct eddy_processor_config cfg;
    const struct eddy_clock *clock;
    struct eddy_rng rng;
    uv_idle_t idle;
    uv_timer_t timer;
    struct eddy_list queue, ready, waiting;
    struct eddy_list free_ents, free_groups; /* entity.link, group.link */
    size_t pending;                          /* batches submitted and not called back */
    size_t inflight;                         /* loads and transactions in flight */
    size_t commits;                          /* transactions in flight */
    struct group *forming; /* built, not full enough to leave while another is out */
    size_t fill;           /* items that make a group full enough (group_fill) */
    struct eddy_lru cache;
    struct eddy_commit commit; /* the protocol's conditions and their names */
    cJSON *model;              /* the machine's spelling of its state's fields (core/names.h) */
    bool model_made;           /* model asked for (it may be NULL) */
    /* request text around an item's JSON (state put, other puts) and around
     * the items, upper bounds from the DynamoDB client (item_bytes) */
    size_t over_state, over_new, envelope;
    struct eddy_emit emit;
    struct eddy_json_arena save_arena; /* the state_save tree of the step being built */
    struct eddy_record_spare spare;    /* blocks of released records, to render into */
    struct eddy_processor_stats stats;
    struct eddy_closer closer;
    bool handles_closing; /* the work has ended and the handles close */
};

enum build { BUILT, REBUILD, BROKEN };

/* Take the first entity of l out of it, or NULL when l is empty. */
static inline struct entity *entity_pop(struct eddy_list *l)
{
    struct eddy_list *q = eddy_list_take(l);
    return q ? eddy_list_data(q, struct entity, link) : NULL;
}

/* processor.c */
void proc_finish(struct entity *e, eddy_err err);
void proc_maybe_closed(struct eddy_processor *p);
void proc_pump_soon(struct eddy_processor *p);

/* processor.c: groups from the free list (free_groups) and back */
struct group *proc_group_get(struct eddy_processor *p);
void proc_group_put(struct group *g);

/* proc_cache.c */
void proc_cache_init(struct eddy_processor *p, size_t entities, uint64_t seed);
bool proc_cache_take(struct eddy_processor *p, struct entity *e);
void proc_cache_put(struct eddy_processor *p, struct entity *e);
void proc_cache_spare_free(struct entity *e);

/* proc_step.c */
void proc_step_clear(struct entity *e);
void proc_drop_state(struct entity *e);
void proc_event_final(struct eddy_proc_event *ev, enum eddy_event_result r, const char *reason);
size_t proc_room_items(const struct eddy_processor *p);
EDDY_MUST_USE eddy_err proc_txn_check(const struct eddy_processor *p, size_t items, size_t bytes,
                                      struct eddy_error *err);
enum build proc_prepare(struct entity *e);

/* proc_commit.c */
void proc_throttled(struct entity *e, const char *code, bool contended);
void proc_commit_ready(struct eddy_processor *p);
void proc_commit_flush(struct eddy_processor *p);

/* proc_load.c */
bool proc_load_state(struct entity *e, const cJSON *item);
void proc_load_cold(struct eddy_processor *p, struct eddy_list *cold);

#endif
