/*
 * core_driver.c - feeds events through the processor against a real
 * DynamoDB endpoint, for the integration tests and the commit benchmark.
 *
 *   core_driver [eddy flags]  < events.jsonl
 *
 * Settings come from the environment and flags exactly as for `eddy`
 * (EDDY_TABLE, EDDY_MACHINE, EDDY_COALESCE_MAX, EDDY_OCC_RETRIES, ...). Each
 * stdin line is {"entity":..,"type":..,"id":..,"data":{..}}. Events of one
 * entity form a lane: at most one batch of up to EDDY_COALESCE_MAX events in
 * flight, in order, as the worker does; all lanes run at once, so the
 * processor groups them. Each event's result is printed as a JSON line
 * {"id","entity","result","seq","idx","reason"}; the last stderr line is
 * {"events","batches","transactions","conflicts","retries","duplicates",
 * "seconds"}. Exit 0 unless a batch failed as a whole.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "cli/runtime.h"
#include "core/attr.h"
#include "core/processor.h"
#include "eddy/eddy.h"
#include "base/lru.h"
#include "slotmachine/slotmachine.h"

struct ev {
    char *entity, *type, *id;
    cJSON *data;
};

struct lane {
    size_t *evs; /* indices into the driver's events */
    size_t n, cap, next;
    bool busy;
};

struct driver {
    struct eddy_runtime rt;
    struct eddy_processor *p;
    struct ev *evs;
    size_t nevs;
    struct eddy_map lanes;
    size_t coalesce;
    size_t batches, failed_batches, lanes_busy;
};

struct dbatch {
    struct eddy_proc_batch b;
    struct driver *d;
    struct lane *lane;
    struct eddy_proc_event ev[];
};

static const char *result_name(enum eddy_event_result r)
{
    static const char *const names[] = {
        [EDDY_EV_PENDING] = "pending",
        [EDDY_EV_APPLIED] = "applied",
        [EDDY_EV_REJECTED] = "rejected",
        [EDDY_EV_DUPLICATE] = "duplicate",
        [EDDY_EV_FAILED] = "failed",
        [EDDY_EV_ERROR] = "error",
        [EDDY_EV_REJECTED_UNWRITTEN] = "rejected, not written",
    };
    return names[r];
}

static void submit_next(struct driver *d, struct lane *l);

static void batch_done(struct eddy_proc_batch *b, eddy_err err, void *ud)
{
    struct dbatch *db = ud;
    struct driver *d = db->d;
    for (size_t i = 0; i < b->nevents; i++) {
        const struct eddy_proc_event *e = &b->events[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", e->event_id);
        cJSON_AddStringToObject(o, "entity", b->entity_id);
        cJSON_AddStringToObject(o, "result", result_name(e->result));
        cJSON_AddNumberToObject(o, "seq", (double)e->seq);
        cJSON_AddNumberToObject(o, "idx", e->idx);
        cJSON_AddStringToObject(o, "reason", e->reason);
        char *t = cJSON_PrintUnformatted(o);
        puts(t);
        free(t);
        cJSON_Delete(o);
    }
    if (err != EDDY_OK) {
        d->failed_batches++;
        fprintf(stderr, "core_driver: batch of %s: %s\n", b->entity_id, eddy_error_text(&b->error));
    }
    db->lane->busy = false;
    d->lanes_busy--;
    submit_next(d, db->lane);
    free(db);
}

static void submit_next(struct driver *d, struct lane *l)
{
    if (l->busy || l->next == l->n)
        return;
    size_t k = l->n - l->next < d->coalesce ? l->n - l->next : d->coalesce;
    struct dbatch *db = eddy_calloc(1, sizeof *db + k * sizeof db->ev[0]);
    db->d = d;
    db->lane = l;
    for (size_t i = 0; i < k; i++) {
        const struct ev *e = &d->evs[l->evs[l->next + i]];
        db->ev[i].type = e->type;
        db->ev[i].event_id = e->id;
        db->ev[i].data = e->data;
    }
    db->b.entity_id = d->evs[l->evs[l->next]].entity;
    db->b.events = db->ev;
    db->b.nevents = k;
    db->b.cb = batch_done;
    db->b.ud = db;
    l->next += k;
    if (eddy_processor_submit(d->p, &db->b) != EDDY_OK) {
        fprintf(stderr, "core_driver: refused: %s\n", eddy_error_text(&db->b.error));
        d->failed_batches++;
        free(db);
        return;
    }
    l->busy = true;
    d->lanes_busy++;
    d->batches++;
}

static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int read_events(struct driver *d)
{
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        cJSON *o = NULL;
        struct eddy_error err;
        if (eddy_json_parse(line, (size_t)len, &o, &err) != EDDY_OK) {
            fprintf(stderr, "core_driver: line %zu: %s\n", n + 1, eddy_error_text(&err));
            free(line);
            return 2;
        }
        d->evs = eddy_realloc(d->evs, (n + 1) * sizeof *d->evs);
        struct ev *e = &d->evs[n++];
        const char *ent = str_member(o, "entity"), *type = str_member(o, "type");
        const char *id = str_member(o, "id");
        e->entity = eddy_strdup(ent ? ent : "");
        e->type = eddy_strdup(type ? type : "");
        e->id = eddy_strdup(id ? id : "");
        e->data = cJSON_DetachItemFromObjectCaseSensitive(o, "data");
        cJSON_Delete(o);
    }
    free(line);
    d->nevs = n;
    return 0;
}

static void build_lanes(struct driver *d)
{
    eddy_map_init(&d->lanes, 1);
    for (size_t i = 0; i < d->nevs; i++) {
        struct eddy_str key = eddy_str_c(d->evs[i].entity);
        struct lane *l = eddy_map_get(&d->lanes, key);
        if (l == NULL) {
            l = eddy_calloc(1, sizeof *l);
            eddy_map_put(&d->lanes, key, l);
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16;
            l->evs = eddy_realloc(l->evs, l->cap * sizeof *l->evs);
        }
        l->evs[l->n++] = i;
    }
}

static void free_lane(void *v)
{
    struct lane *l = v;
    free(l->evs);
    free(l);
}

static void closed(void *ud)
{
    *(bool *)ud = true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct eddy_processor *make_processor(struct driver *d, const struct eddy_config *cfg)
{
    struct eddy_processor_config pc = {
        .table = cfg->table_str,
        .ns = d->rt.ns,
        .machine = d->rt.m,
        .dedupe_ttl_s = cfg->dedupe_ttl,
        .state_history = cfg->state_history != 0,
        .occ_retries = (int)cfg->occ_retries,
        .outbox_shards = (uint32_t)cfg->outbox_shards,
        .event_source = cfg->event_source_str,
        .event_bus = cfg->event_bus_str,
        .cache_entities = (size_t)cfg->cache_entities,
        .on_reject = EDDY_REJECT_RECORD,
        .group_max_items = 100,
    };
    struct eddy_error err = {0};
    struct eddy_processor *p =
        eddy_processor_new(&d->rt.loop, &d->rt.ddb, &pc, NULL, (uint64_t)now_s() * 1000003u, &err);
    if (p == NULL)
        fprintf(stderr, "core_driver: %s\n", eddy_error_text(&err));
    return p;
}

static void run(struct driver *d)
{
    double t0 = now_s();
    struct eddy_map_iter it;
    struct eddy_str key;
    void *v;
    eddy_map_iter_init(&d->lanes, &it);
    while (eddy_map_next(&it, &key, &v))
        submit_next(d, v);
    while (d->lanes_busy > 0)
        uv_run(&d->rt.loop, UV_RUN_ONCE);
    double secs = now_s() - t0;
    struct eddy_processor_stats s;
    eddy_processor_stats(d->p, &s);
    fprintf(stderr,
            "{\"events\":%zu,\"batches\":%zu,\"transactions\":%" PRIu64 ",\"conflicts\":%" PRIu64
            ",\"retries\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"loads\":%" PRIu64
            ",\"seconds\":%.4f}\n",
            d->nevs, d->batches, s.transactions, s.conflicts, s.retries, s.duplicates, s.loads,
            secs);
}

int main(int argc, char **argv)
{
    struct driver d;
    memset(&d, 0, sizeof d);
    struct eddy_config cfg;
    struct eddy_error err = {0};
    if (eddy_config_load(&cfg, argc, argv, 1, &err) != EDDY_OK) {
        fprintf(stderr, "core_driver: %s\n", eddy_error_text(&err));
        return 2;
    }
    static const struct eddy_named_machine machines[] = {{"slotmachine", &eddy_slotmachine}};
    struct eddy_cli_context ctx = {&cfg, machines, 1};
    if (read_events(&d) != 0)
        return 2;
    d.coalesce = (size_t)cfg.coalesce_max;
    build_lanes(&d);
    int code = 3;
    if (eddy_runtime_init(&d.rt, &ctx, &err) != EDDY_OK) {
        fprintf(stderr, "core_driver: %s\n", eddy_error_text(&err));
        goto out;
    }
    d.p = make_processor(&d, &cfg);
    if (d.p) {
        run(&d);
        bool done = false;
        eddy_processor_close(d.p, closed, &done);
        while (!done)
            uv_run(&d.rt.loop, UV_RUN_ONCE);
        code = d.failed_batches ? 1 : 0;
    }
    if (eddy_runtime_cleanup(&d.rt) != 0)
        code = 3;
out:
    eddy_map_cleanup(&d.lanes, free_lane);
    for (size_t i = 0; i < d.nevs; i++) {
        free(d.evs[i].entity);
        free(d.evs[i].type);
        free(d.evs[i].id);
        cJSON_Delete(d.evs[i].data);
    }
    free(d.evs);
    return code;
}
