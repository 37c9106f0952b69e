/*
 * counter_machine.c - a tiny machine for the processor's tests: a counter.
 *
 * State {"id", "count"} (plus "pad", a string, once Grow ran). Events:
 *   Increment {}             count += COUNTER_STEP; emits Counted {"count"}
 *   Tick {}                  count += COUNTER_STEP, emits nothing (fewer items)
 *   Refuse {}                rejected "refused on purpose"
 *   Fail {}                  failed "failed on purpose"
 *   Emit {"n", "size"}       emits n Blob events of a size-byte "pad" each
 *   Grow {"size"}            sets the state's "pad" to size bytes
 *   Draw {}                  count += 1 when rng draws below 0.5; emits Drew {"x"}
 * anything else is rejected "unknown event type X".
 *
 * The final count proves that no update was lost (n increments -> n). Built
 * into the unit test, and as counter.so (COUNTER_STEP 1) and counter_v2.so
 * (COUNTER_STEP 2, a "new version" whose rules differ) for the integration
 * tests of replay and repair.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy/machine.h"

#ifndef COUNTER_STEP
#define COUNTER_STEP 1
#endif

struct counter {
    char *id;
    double count;
    char *pad;
};

static char *dup_s(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void *counter_new(const char *id)
{
    struct counter *c = calloc(1, sizeof *c);
    if (c)
        c->id = dup_s(id ? id : "");
    return c;
}

static void counter_free(void *state)
{
    struct counter *c = state;
    if (c) {
        free(c->id);
        free(c->pad);
        free(c);
    }
}

static int counter_load(const cJSON *json, void **state, char *err, size_t errlen)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "id");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(json, "count");
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(json, "pad");
    if (!cJSON_IsString(id)) {
        snprintf(err, errlen, "id: expected a string");
        return -1;
    }
    if (!cJSON_IsNumber(count) || count->valuedouble != floor(count->valuedouble)) {
        snprintf(err, errlen, "count: expected an integer");
        return -1;
    }
    struct counter *c = counter_new(id->valuestring);
    c->count = count->valuedouble;
    if (cJSON_IsString(pad))
        c->pad = dup_s(pad->valuestring);
    *state = c;
    return 0;
}

static cJSON *counter_save(const void *state)
{
    const struct counter *c = state;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddNumberToObject(o, "count", c->count);
    if (c->pad)
        cJSON_AddStringToObject(o, "pad", c->pad);
    return o;
}

static char *make_pad(const cJSON *data)
{
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(data, "size");
    size_t n = cJSON_IsNumber(size) && size->valuedouble > 0 ? (size_t)size->valuedouble : 0;
    char *pad = malloc(n + 1);
    memset(pad, 'x', n);
    pad[n] = '\0';
    return pad;
}

static enum eddy_outcome emit_blobs(const struct eddy_event *ev, struct eddy_emit *emit)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(ev->data, "n");
    int count = cJSON_IsNumber(n) ? n->valueint : 1;
    for (int i = 0; i < count; i++) {
        char *pad = make_pad(ev->data);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "pad", pad);
        free(pad);
        if (eddy_emit(emit, "Blob", o) != 0)
            return EDDY_PROCESS_FAILED;
    }
    return EDDY_PROCESS_OK;
}

static enum eddy_outcome counter_process(void *state, const struct eddy_event *ev,
                                         struct eddy_emit *emit, struct eddy_rng *rng, char *reason,
                                         size_t reasonlen)
{
    struct counter *c = state;
    if (strcmp(ev->type, "Increment") == 0) {
        c->count += COUNTER_STEP;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "count", c->count);
        return eddy_emit(emit, "Counted", o) == 0 ? EDDY_PROCESS_OK : EDDY_PROCESS_FAILED;
    }
    if (strcmp(ev->type, "Tick") == 0) {
        c->count += COUNTER_STEP;
        return EDDY_PROCESS_OK;
    }
    if (strcmp(ev->type, "Draw") == 0) {
        double x = eddy_rng_float64(rng);
        if (x < 0.5)
            c->count += 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "x", x);
        return eddy_emit(emit, "Drew", o) == 0 ? EDDY_PROCESS_OK : EDDY_PROCESS_FAILED;
    }
    if (strcmp(ev->type, "Refuse") == 0) {
        snprintf(reason, reasonlen, "refused on purpose");
        return EDDY_PROCESS_REJECTED;
    }
    if (strcmp(ev->type, "Fail") == 0) {
        snprintf(reason, reasonlen, "failed on purpose");
        return EDDY_PROCESS_FAILED;
    }
    if (strcmp(ev->type, "Emit") == 0)
        return emit_blobs(ev, emit);
    if (strcmp(ev->type, "Grow") == 0) {
        free(c->pad);
        c->pad = make_pad(ev->data);
        return EDDY_PROCESS_OK;
    }
    snprintf(reason, reasonlen, "unknown event type %s", ev->type);
    return EDDY_PROCESS_REJECTED;
}

const struct eddy_machine eddy_test_counter = {
    .abi_version = EDDY_MACHINE_ABI,
    .name = "counter",
    .state_new = counter_new,
    .state_load = counter_load,
    .state_save = counter_save,
    .state_free = counter_free,
    .state_copy = NULL,
    .process = counter_process,
};

#ifdef COUNTER_SHARED
EDDY_MACHINE_EXPORT(eddy_test_counter)
#endif
