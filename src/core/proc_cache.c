/*
 * proc_cache.c - the processor's cache of loaded states: an LRU keyed by _pk
 * holding the machine's state, its _seq and the attributes a commit keeps.
 * An entity in flight takes its state out and puts the new one back after
 * its commit.
 */
#include <stdlib.h>

#include "base/alloc.h"
#include "core/proc_int.h"

struct cached {
    const struct eddy_machine *m;
    void *state;
    int64_t seq;
    cJSON *keep;
};

static void cached_free(void *v)
{
    struct cached *c = v;
    c->m->state_free(c->state);
    cJSON_Delete(c->keep);
    free(c);
}

bool proc_cache_take(struct eddy_processor *p, struct entity *e)
{
    struct cached *c = eddy_lru_take(&p->cache, eddy_str_c(e->pk));
    if (c == NULL)
        return false;
    e->state = c->state;
    e->seq = c->seq;
    e->keep = c->keep;
    proc_cache_spare_free(e);
    e->spare = c; /* the record the state goes back in (proc_cache_put) */
    p->stats.cache_hits++;
    return true;
}

void proc_cache_put(struct eddy_processor *p, struct entity *e)
{
    if (e->state == NULL || p->cfg.cache_entities == 0)
        return;
    struct cached *c = e->spare ? e->spare : eddy_malloc(sizeof *c);
    e->spare = NULL;
    c->m = p->cfg.machine;
    c->state = e->state;
    c->seq = e->seq;
    c->keep = e->keep;
    e->state = NULL;
    e->keep = NULL;
    eddy_lru_put(&p->cache, eddy_str_c(e->pk), c);
}

void proc_cache_spare_free(struct entity *e)
{
    free(e->spare);
    e->spare = NULL;
}

void proc_cache_init(struct eddy_processor *p, size_t entities, uint64_t seed)
{
    eddy_lru_init(&p->cache, entities, seed, cached_free);
}
