/*
 * lru.h - a string-keyed hash map, and a least-recently-used cache built on it.
 *
 * struct eddy_map maps byte-string keys (copied in) to non-NULL pointers it does
 * not own. It is a chained hash table that doubles when its load passes 1, so
 * get, put and remove are O(1) on average. The hash is seeded: keys are entity
 * ids that come from the outside, and a per-process seed makes it harder to
 * send a run of ids that all land in one chain. The worker's entity lanes use
 * the map directly.
 *
 * struct eddy_lru keeps at most `capacity` values, owned through one free
 * function, in a map plus a doubly linked list ordered from most to least
 * recently used: a get or put moves the entry to the front, and a put past the
 * capacity frees the entry at the back. Capacity 0 disables the cache: puts
 * free the value at once and gets find nothing. The worker's state cache keeps
 * an entity's state JSON and its _seq here.
 *
 * Neither is thread-safe; both live on the one loop thread.
 */
#ifndef EDDY_WORKER_LRU_H
#define EDDY_WORKER_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/list.h"

struct eddy_map_entry; /* private to lru.c */

struct eddy_map {
    struct eddy_map_entry **slots;
    size_t nslots; /* a power of two, or 0 before the first put */
    size_t count;
    uint64_t seed;
};

/* seed: any value; 0 is fine in tests, the worker passes a random one. */
void eddy_map_init(struct eddy_map *m, uint64_t seed);
/* Free every entry; free_value (may be NULL) is called on each value. */
void eddy_map_cleanup(struct eddy_map *m, void (*free_value)(void *value));
/* The value stored under key, or NULL when there is none. */
void *eddy_map_get(const struct eddy_map *m, struct eddy_str key);
/*
 * Store value (non-NULL) under key, copying the key. Returns the value it
 * replaced, or NULL when the key was new; the caller disposes of the old one.
 */
void *eddy_map_put(struct eddy_map *m, struct eddy_str key, void *value);
/* Remove key; returns its value (the caller's again), or NULL when absent. */
void *eddy_map_remove(struct eddy_map *m, struct eddy_str key);
static inline size_t eddy_map_count(const struct eddy_map *m)
{
    return m->count;
}

/*
 * Iteration in no particular order:
 *
 *   struct eddy_map_iter it;
 *   eddy_map_iter_init(m, &it);
 *   while (eddy_map_next(&it, &key, &value)) ...
 *
 * Removing the entry just returned is allowed; any other put or remove during
 * the walk is not. key is valid until that entry is removed.
 */
struct eddy_map_iter {
    const struct eddy_map *map;
    size_t slot;
    struct eddy_map_entry *next;
};
void eddy_map_iter_init(const struct eddy_map *m, struct eddy_map_iter *it);
bool eddy_map_next(struct eddy_map_iter *it, struct eddy_str *key, void **value);

struct eddy_lru_node; /* private to lru.c */

struct eddy_lru {
    struct eddy_map map;    /* key -> struct eddy_lru_node */
    struct eddy_list order; /* nodes, most recently used first; the last
                               is evicted first */
    size_t capacity;
    void (*free_value)(void *value);
    uint64_t evictions; /* entries dropped to make room, since init */
};

/* free_value (may be NULL) disposes of values the cache drops or replaces.
 * The cache stays where it was initialised (its list runs through it). */
void eddy_lru_init(struct eddy_lru *l, size_t capacity, uint64_t seed,
                   void (*free_value)(void *value));
void eddy_lru_cleanup(struct eddy_lru *l);
/*
 * The value under key, moved to the front, or NULL. Borrowed: valid until the
 * next put, remove or cleanup of the cache.
 */
void *eddy_lru_get(struct eddy_lru *l, struct eddy_str key);
/*
 * Store value (non-NULL) under key at the front; the cache owns it from now
 * on. A value already under key is freed; past the capacity, the least
 * recently used entry is freed. With capacity 0 the value is freed at once.
 */
void eddy_lru_put(struct eddy_lru *l, struct eddy_str key, void *value);
/* Drop key and free its value (after a conflict, say). True when it was there. */
bool eddy_lru_remove(struct eddy_lru *l, struct eddy_str key);
/* Drop key and hand its value to the caller, or NULL when absent. */
void *eddy_lru_take(struct eddy_lru *l, struct eddy_str key);
static inline size_t eddy_lru_count(const struct eddy_lru *l)
{
    return l->map.count;
}

#endif
