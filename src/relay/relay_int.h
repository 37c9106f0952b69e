/*
 * relay_int.h - inside the relay (relay.h): its state and the functions its
 * files share. Not for use outside src/relay.
 *
 * The flow of an entry, one file a step:
 *   - relay_publish.c: the way in (eddy_relay_publish, for committed
 *     entries) and the PutEvents calls: the pump moves ready lane heads into
 *     the open call, sent when full, or at the end of the loop turn (an idle
 *     handle) when nothing more can join it soon (see on_flush), so the
 *     entries of several commits share calls;
 *   - relay_lanes.c: the entries held, each an outbox row (the fields the
 *     commit path rendered, or a swept row's cJSON item) in its entity's
 *     lane, a list in (seq, idx) order. A lane's head
 *     is its first entry not yet published; published entries stay in the
 *     lane until their delete is done, so a sweep never takes a row this
 *     process is still handling. Lanes whose head can be sent now wait in
 *     the ready list (FIFO: fair across entities); lanes whose head waits for
 *     a backoff wait in the backoff list, looked at when the retry timer
 *     fires;
 *   - relay_delete.c: published entries go to the delete queue, sent 25 keys
 *     a call, or after a linger;
 *   - relay_dead.c: a dead entry is moved with one TransactWriteItems
 *     (delete the row, put the dead row);
 *   - relay_sweep.c: the sweeps, one per shard at a time, on the shard's
 *     timer (see relay.h), which take the leftovers of other processes;
 *   - relay.c: construction, the leases, stopping and the stats.
 */
#ifndef EDDY_RELAY_RELAY_INT_H
#define EDDY_RELAY_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/closer.h"
#include "base/list.h"
#include "base/lru.h"
#include "eddy/rng.h"
#include "relay/lease.h"
#include "relay/relay.h"

enum entry_state {
    E_WAIT, /* to send (or sent again after its backoff) */
    E_SENT, /* in a call (open or in flight) */
    E_DONE, /* published; its delete is queued or in flight */
    E_DEAD, /* to move to the dead-letter partition (or moving) */
};

struct lane;

struct entry {
    struct lane *lane;
    struct eddy_list link; /* in the lane, in (seq, idx) order */
    cJSON *item;           /* a swept row, owned (NULL for a committed one) */
    /* a committed entry: its fields and its row's text (owned; the text is
     * parsed only to move the entry to the dead letters) */
    struct eddy_record_outbox_fields *fields;
    char *text;
    size_t text_len;
    struct eddy_record_outbox o;
    uint32_t shard;
    int64_t commit_ms;
    enum entry_state st;
    unsigned refusals, failures;
    bool moving; /* the dead move is in flight */
    bool alone;  /* a call it was in was refused before it was sent: in one of its own now */
    uint64_t ready_at;
    struct eddy_eb_entry eb;
    size_t size;
    char *source;           /* "eddy.<namespace>" when built here */
    char *error;            /* the last refusal, for the dead row; NULL: none */
    struct eddy_list dlink; /* in the delete queue */
    uint64_t del_at;        /* loop ms it was queued for its delete */
    unsigned del_failures;  /* its delete's failed calls and unprocessed replies */
};

struct lane {
    char *key;                /* the entity's _pk (in the lane's allocation) */
    struct eddy_list entries; /* struct entry, in (seq, idx) order */
    struct entry *head;       /* the next to send, NULL when all are published */
    size_t n;
    struct eddy_list link; /* in the ready or backoff list, when listed */
    bool pinned;           /* being emptied: neither listed nor freed */
};

static inline struct entry *lane_first(const struct lane *l)
{
    struct eddy_list *q = eddy_list_head(&l->entries);
    return q ? eddy_list_data(q, struct entry, link) : NULL;
}

static inline struct entry *lane_last(const struct lane *l)
{
    return eddy_list_empty(&l->entries) ? NULL
                                        : eddy_list_data(l->entries.prev, struct entry, link);
}

/* The entry after e in its lane, NULL at the end. */
static inline struct entry *entry_next(const struct entry *e)
{
    return e->link.next == &e->lane->entries ? NULL
                                             : eddy_list_data(e->link.next, struct entry, link);
}

static inline struct entry *entry_prev(const struct entry *e)
{
    return e->link.prev == &e->lane->entries ? NULL
                                             : eddy_list_data(e->link.prev, struct entry, link);
}

static inline bool lane_listed(const struct lane *l)
{
    return eddy_list_linked(&l->link);
}

struct put_call; /* one PutEvents call (relay_publish.c) */

struct relay_shard {
    struct eddy_relay *r;
    uint32_t index;
    char *pk;
    bool surrender; /* lease to give back when the sweep is done */
    /* Between the lease's ACQUIRED and LOST: the shard stays ours while a
     * renewal on its way back lets the lease run out locally for a moment. */
    bool leased;
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
    bool full;        /* a row was left for held_max: the sweep ends there */
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
    /* Entities whose committed entries were left to the sweeps (held_max
     * reached): entity _pk -> struct relay_left. Their later entries are
     * left there too, until a sweep takes the last one left: in order. */
    struct eddy_map left;
    /* Rows deleted while a sweep's Query was out: sort key -> loop time of
     * the delete + 1. Such a Query may still return them (it read before the
     * delete); a sweep skips a row deleted after its Query was sent. */
    struct eddy_map gone;
    struct eddy_list ready, backoff; /* struct lane, FIFO */
    size_t held;
    struct put_call *open;
    struct eddy_list out; /* struct put_call: the PutEvents calls in flight */
    /* Outbox entries of the commits in flight (eddy_relay_expect), and the
     * shares (1/1024ths, moving averages) of the committed entries that
     * could join a call at once, their entity having nothing out, and of
     * those whose entity had nothing held: the entries the open call may
     * still get from commits, and of entities it does not know yet. */
    size_t expect;
    uint32_t joins, fresh;
    /* The share (1/1024ths, a moving average) of the entries of the commits
     * that came back that were committed, not canceled by a conflict; and,
     * for the last commit back, its entries and those that came. */
    uint32_t commits_ok;
    size_t back_expected, back_came;
    /* Loop ms the last commit came back, and the time between commits
     * coming back (a moving average): when the next one is due. */
    uint64_t back_at, back_gap;
    unsigned puts, moves, deletes, sweeps; /* calls in flight */
    struct eddy_list del;                  /* struct entry: published, to delete */
    size_t del_queued;
    unsigned del_attempt; /* replies in a row that left keys to send again: the backoff */
    uv_idle_t flush;
    uv_timer_t retry_timer, del_timer, stop_timer, linger_timer;
    bool started;
    bool stopping;       /* eddy_relay_close was called: finishing what it holds */
    bool lease_stopping; /* then the leases are given back */
    bool closing;        /* then its handles close */
    struct eddy_closer closer;
    struct eddy_relay_stats st;
};

/* relay_publish.c */
/* Send ready heads across lanes while calls are to spare. */
void relay_pump(struct eddy_relay *r);

/* relay_lanes.c */
/* The first lane of the ready or backoff list, taken out; NULL when empty. */
struct lane *relay_list_pop(struct eddy_list *ls);
void relay_lane_list(struct eddy_relay *r, struct lane *l);
/* e was published, or goes: the head moves past it if it was the head. */
void relay_lane_head_past(struct lane *l, struct entry *e);
void relay_lane_release(struct eddy_relay *r, struct lane *l);
void relay_lane_free(void *v);
void relay_lane_drop_rest(struct eddy_relay *r, struct lane *l);
bool relay_lane_has(const struct lane *l, const struct entry *e);
void relay_entry_remove(struct eddy_relay *r, struct entry *e);
int64_t relay_item_n(const cJSON *item, const char *name);
struct entry *relay_entry_new(struct eddy_relay *r, cJSON *item);
/* An entry from a committed row's fields (copied). */
struct entry *relay_entry_committed(struct eddy_relay *r, struct eddy_record_text *row);
/* The one place an entry's state changes: checked and traced (base/state.h). */
void relay_entry_set_state(struct entry *e, enum entry_state to);
/* Set e's error (the last refusal, what its dead row will say). */
__attribute__((format(printf, 2, 3))) void relay_entry_error(struct entry *e, const char *fmt, ...);
bool relay_hold(struct eddy_relay *r, struct entry *e);
/* Whether a committed entry is left to the sweeps: held_max is reached, or
 * its entity has entries left there already (remembered until a sweep
 * takes the last one, see relay_left_taken). */
bool relay_leave(struct eddy_relay *r, const struct eddy_record_outbox_fields *f);
/* A sweep took e (held now). */
void relay_left_taken(struct eddy_relay *r, const struct entry *e);
void relay_on_retry_timer(uv_timer_t *t);

/* relay_delete.c */
cJSON *relay_entry_key(const struct entry *e);
void relay_delete_queue(struct eddy_relay *r, struct entry *e);
void relay_delete_send(struct eddy_relay *r, bool all);
void relay_note_gone(struct eddy_relay *r, const struct entry *e);
void relay_prune_gone(struct eddy_relay *r);

/* relay_dead.c */
void relay_move_start(struct eddy_relay *r, struct entry *e);

/* relay_sweep.c */
bool relay_shard_holds(const struct relay_shard *s);
void relay_sweep_schedule(struct relay_shard *s, uint64_t ms);

/* relay.c */
void relay_check_stopped(struct eddy_relay *r);

#endif
