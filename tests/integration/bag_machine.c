/*
 * bag_machine.c - a machine whose state is whatever JSON object it loaded,
 * for the interop test: it shows what eddy does to attributes another
 * program wrote (binary and set types among them) when a machine keeps
 * them as they are or changes them.
 *
 * Namespace "bag". A fresh state is {"id": <id>, "touches": 0}. Events:
 *   Touch {}                touches += 1
 *   Set {"field", "value"}  state[field] = value
 * Anything else is refused. Built as bag.so.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "eddy/machine.h"

static void *bag_new(const char *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "touches", 0);
    return o;
}

static int bag_load(const cJSON *json, void **state, char *err, size_t errlen)
{
    const cJSON *touches = cJSON_GetObjectItemCaseSensitive(json, "touches");
    if (!cJSON_IsObject(json) || !cJSON_IsNumber(touches)) {
        snprintf(err, errlen, "touches: expected a number");
        return -1;
    }
    *state = cJSON_Duplicate(json, true);
    return 0;
}

static cJSON *bag_save(const void *state)
{
    return cJSON_Duplicate(state, true);
}

static void bag_free(void *state)
{
    cJSON_Delete(state);
}

static enum eddy_outcome bag_process(void *state, const struct eddy_event *ev,
                                     struct eddy_emit *emit, struct eddy_rng *rng, char *reason,
                                     size_t reasonlen)
{
    (void)emit;
    (void)rng;
    cJSON *s = state;
    if (strcmp(ev->type, "Touch") == 0) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "touches");
        cJSON_SetNumberValue(t, t->valuedouble + 1);
        return EDDY_PROCESS_OK;
    }
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(ev->data, "field");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(ev->data, "value");
    if (strcmp(ev->type, "Set") == 0 && cJSON_IsString(field) && value) {
        cJSON_DeleteItemFromObjectCaseSensitive(s, field->valuestring);
        cJSON_AddItemToObject(s, field->valuestring, cJSON_Duplicate(value, true));
        return EDDY_PROCESS_OK;
    }
    snprintf(reason, reasonlen, "unknown event %s", ev->type);
    return EDDY_PROCESS_REJECTED;
}

static const struct eddy_machine bag_machine = {
    .abi_version = EDDY_MACHINE_ABI,
    .name = "bag",
    .state_new = bag_new,
    .state_load = bag_load,
    .state_save = bag_save,
    .state_free = bag_free,
    .process = bag_process,
};

EDDY_MACHINE_EXPORT(bag_machine)
