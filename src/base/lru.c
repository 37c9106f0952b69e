/*
 * lru.c - the chained hash map and the LRU cache on top of it (see lru.h).
 *
 * Map entries carry their key inline and their full hash, so a resize never
 * rehashes a key and a lookup compares bytes only when the hashes agree. The
 * LRU stores one node per key as the map's value; the node holds a pointer to
 * the key bytes of its map entry, so evicting the tail needs no second copy.
 */
#include "base/lru.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/list.h"

struct eddy_map_entry {
    struct eddy_map_entry *next;
    uint64_t hash;
    void *value;
    size_t klen;
    char key[]; /* klen bytes and a NUL */
};

struct eddy_lru_node {
    struct eddy_list link; /* in l->order */
    struct eddy_str key;   /* borrowed from the map entry */
    void *value;
};

#define MAP_MIN_SLOTS 16

/* FNV-1a from a seeded basis, then a SplitMix64 finaliser to spread the bits. */
static uint64_t hash_key(uint64_t seed, struct eddy_str key)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < key.len; i++) {
        h ^= (unsigned char)key.ptr[i];
        h *= 0x100000001b3ull;
    }
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

void eddy_map_init(struct eddy_map *m, uint64_t seed)
{
    m->slots = NULL;
    m->nslots = 0;
    m->count = 0;
    m->seed = seed;
}

void eddy_map_cleanup(struct eddy_map *m, void (*free_value)(void *value))
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct eddy_map_entry *e = m->slots[i];
        while (e != NULL) {
            struct eddy_map_entry *next = e->next;
            if (free_value != NULL)
                free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(m->slots);
    eddy_map_init(m, m->seed);
}

/* The link that points at key's entry, or at the NULL ending its chain. */
static struct eddy_map_entry **find_link(const struct eddy_map *m, struct eddy_str key,
                                         uint64_t hash)
{
    struct eddy_map_entry **link = &m->slots[hash & (m->nslots - 1)];
    while (*link != NULL) {
        struct eddy_map_entry *e = *link;
        if (e->hash == hash && e->klen == key.len &&
            (key.len == 0 || memcmp(e->key, key.ptr, key.len) == 0))
            break;
        link = &e->next;
    }
    return link;
}

static void grow(struct eddy_map *m)
{
    size_t nslots = m->nslots == 0 ? MAP_MIN_SLOTS : m->nslots * 2;
    struct eddy_map_entry **slots = eddy_calloc(nslots, sizeof *slots);
    for (size_t i = 0; i < m->nslots; i++) {
        struct eddy_map_entry *e = m->slots[i];
        while (e != NULL) {
            struct eddy_map_entry *next = e->next;
            size_t at = e->hash & (nslots - 1);
            e->next = slots[at];
            slots[at] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
}

void *eddy_map_get(const struct eddy_map *m, struct eddy_str key)
{
    if (m->count == 0)
        return NULL;
    struct eddy_map_entry *e = *find_link(m, key, hash_key(m->seed, key));
    return e != NULL ? e->value : NULL;
}

/* Insert or replace; returns the entry holding key and the value it replaced. */
static struct eddy_map_entry *map_put_entry(struct eddy_map *m, struct eddy_str key, void *value,
                                            void **old)
{
    uint64_t hash = hash_key(m->seed, key);
    *old = NULL;
    if (m->nslots != 0) {
        struct eddy_map_entry *e = *find_link(m, key, hash);
        if (e != NULL) {
            *old = e->value;
            e->value = value;
            return e;
        }
    }
    if (m->count >= m->nslots)
        grow(m);
    struct eddy_map_entry *e = eddy_malloc(sizeof *e + key.len + 1);
    e->hash = hash;
    e->value = value;
    e->klen = key.len;
    if (key.len != 0)
        memcpy(e->key, key.ptr, key.len);
    e->key[key.len] = '\0';
    size_t at = hash & (m->nslots - 1);
    e->next = m->slots[at];
    m->slots[at] = e;
    m->count++;
    return e;
}

void *eddy_map_put(struct eddy_map *m, struct eddy_str key, void *value)
{
    void *old;
    map_put_entry(m, key, value, &old);
    return old;
}

void *eddy_map_remove(struct eddy_map *m, struct eddy_str key)
{
    if (m->count == 0)
        return NULL;
    struct eddy_map_entry **link = find_link(m, key, hash_key(m->seed, key));
    struct eddy_map_entry *e = *link;
    if (e == NULL)
        return NULL;
    void *value = e->value;
    *link = e->next;
    free(e);
    m->count--;
    return value;
}

void eddy_map_iter_init(const struct eddy_map *m, struct eddy_map_iter *it)
{
    it->map = m;
    it->slot = 0;
    it->next = m->nslots != 0 ? m->slots[0] : NULL;
}

bool eddy_map_next(struct eddy_map_iter *it, struct eddy_str *key, void **value)
{
    const struct eddy_map *m = it->map;
    while (it->next == NULL) {
        if (it->slot + 1 >= m->nslots)
            return false;
        it->next = m->slots[++it->slot];
    }
    struct eddy_map_entry *e = it->next;
    it->next = e->next; /* read before the caller may remove e */
    if (key != NULL)
        *key = (struct eddy_str){e->key, e->klen};
    if (value != NULL)
        *value = e->value;
    return true;
}

void eddy_lru_init(struct eddy_lru *l, size_t capacity, uint64_t seed,
                   void (*free_value)(void *value))
{
    eddy_map_init(&l->map, seed);
    eddy_list_init(&l->order);
    l->capacity = capacity;
    l->free_value = free_value;
    l->evictions = 0;
}

static void free_value(const struct eddy_lru *l, void *value)
{
    if (l->free_value != NULL)
        l->free_value(value);
}

void eddy_lru_cleanup(struct eddy_lru *l)
{
    struct eddy_list *q, *next;
    eddy_list_foreach_safe(q, next, &l->order)
    {
        struct eddy_lru_node *n = eddy_list_data(q, struct eddy_lru_node, link);
        free_value(l, n->value);
        free(n);
    }
    eddy_list_init(&l->order);
    eddy_map_cleanup(&l->map, NULL);
}

static void move_front(struct eddy_lru *l, struct eddy_lru_node *n)
{
    eddy_list_remove(&n->link);
    eddy_list_insert_head(&l->order, &n->link);
}

void *eddy_lru_get(struct eddy_lru *l, struct eddy_str key)
{
    struct eddy_lru_node *n = eddy_map_get(&l->map, key);
    if (n == NULL)
        return NULL;
    move_front(l, n);
    return n->value;
}

void eddy_lru_put(struct eddy_lru *l, struct eddy_str key, void *value)
{
    if (l->capacity == 0) {
        free_value(l, value);
        return;
    }
    struct eddy_lru_node *n = eddy_map_get(&l->map, key);
    if (n != NULL) {
        if (n->value != value)
            free_value(l, n->value);
        n->value = value;
        move_front(l, n);
        return;
    }
    n = eddy_calloc(1, sizeof *n);
    eddy_list_init(&n->link);
    n->value = value;
    void *old;
    struct eddy_map_entry *e = map_put_entry(&l->map, key, n, &old);
    n->key = (struct eddy_str){e->key, e->klen};
    eddy_list_insert_head(&l->order, &n->link);
    while (l->map.count > l->capacity) {
        struct eddy_lru_node *victim = eddy_list_data(l->order.prev, struct eddy_lru_node, link);
        eddy_lru_remove(l, victim->key);
        l->evictions++;
    }
}

void *eddy_lru_take(struct eddy_lru *l, struct eddy_str key)
{
    struct eddy_lru_node *n = eddy_map_get(&l->map, key);
    if (n == NULL)
        return NULL;
    eddy_list_remove(&n->link);
    void *value = n->value;
    eddy_map_remove(&l->map, n->key); /* frees the key bytes n->key points at */
    free(n);
    return value;
}

bool eddy_lru_remove(struct eddy_lru *l, struct eddy_str key)
{
    void *value = eddy_lru_take(l, key);
    if (value == NULL)
        return false;
    free_value(l, value);
    return true;
}
