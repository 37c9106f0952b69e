/*
 * slotmachine.c - the example machine (see slotmachine.h for its rules).
 *
 * Written as a user of eddy would write a machine: it includes only the
 * public headers (eddy/machine.h, eddy/rng.h) and cJSON, never eddy's
 * internals, so the same file builds into libeddy and into a loadable
 * slotmachine.so (compiled with EDDY_SLOTMACHINE_SHARED, which exports the
 * entry symbol).
 */
#include "slotmachine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Integers travel as doubles in JSON; beyond 2^53 they would be rounded. */
#define INT_EXACT_MAX 9007199254740992.0

static void sayf(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sayf(char *out, size_t outlen, const char *fmt, ...)
{
    if (out == NULL || outlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void *slot_new(const char *id)
{
    struct eddy_slotmachine_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->id = dup_str(id ? id : "");
    if (s->id == NULL) {
        free(s);
        return NULL;
    }
    s->payout = 4;
    s->win_chance = 0.18;
    return s;
}

static void slot_free(void *state)
{
    struct eddy_slotmachine_state *s = state;
    if (s) {
        free(s->id);
        free(s);
    }
}

static int load_int(const cJSON *json, const char *name, int64_t *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, name);
    if (v == NULL) {
        sayf(err, errlen, "%s: missing", name);
        return -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > INT_EXACT_MAX) {
        sayf(err, errlen, "%s: expected an integer of at most 2^53", name);
        return -1;
    }
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int load_fields(const cJSON *json, struct eddy_slotmachine_state *s, char *err,
                       size_t errlen)
{
    if (load_int(json, "balance", &s->balance, err, errlen) ||
        load_int(json, "payout", &s->payout, err, errlen) ||
        load_int(json, "games", &s->games, err, errlen) ||
        load_int(json, "wins", &s->wins, err, errlen) ||
        load_int(json, "losses", &s->losses, err, errlen))
        return -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "winChance");
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble <= 1.0)) {
        sayf(err, errlen, "winChance: %s", v ? "expected a number from 0 to 1" : "missing");
        return -1;
    }
    s->win_chance = v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(json, "isCoinInSlot");
    if (!cJSON_IsBool(v)) {
        sayf(err, errlen, "isCoinInSlot: %s", v ? "expected true or false" : "missing");
        return -1;
    }
    s->is_coin_in_slot = cJSON_IsTrue(v);
    return 0;
}

static int slot_load(const cJSON *json, void **state, char *err, size_t errlen)
{
    *state = NULL;
    if (!cJSON_IsObject(json)) {
        sayf(err, errlen, "state: expected a JSON object");
        return -1;
    }
    /* a-h/stream writes an empty id as NULL; read it back as "". */
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "id");
    if (!cJSON_IsString(id) && !cJSON_IsNull(id)) {
        sayf(err, errlen, "id: %s", id ? "expected a string" : "missing");
        return -1;
    }
    struct eddy_slotmachine_state *s = slot_new(cJSON_IsString(id) ? id->valuestring : "");
    if (s == NULL) {
        sayf(err, errlen, "state: out of memory");
        return -1;
    }
    if (load_fields(json, s, err, errlen) != 0) {
        slot_free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static cJSON *slot_save(const void *state)
{
    const struct eddy_slotmachine_state *s = state;
    cJSON *o = cJSON_CreateObject();
    /* The order of a-h/stream's struct, for readable diffs. */
    if (o == NULL || !cJSON_AddStringToObject(o, "id", s->id) ||
        !cJSON_AddNumberToObject(o, "balance", (double)s->balance) ||
        !cJSON_AddNumberToObject(o, "payout", (double)s->payout) ||
        !cJSON_AddNumberToObject(o, "winChance", s->win_chance) ||
        !cJSON_AddNumberToObject(o, "games", (double)s->games) ||
        !cJSON_AddNumberToObject(o, "wins", (double)s->wins) ||
        !cJSON_AddNumberToObject(o, "losses", (double)s->losses) ||
        !cJSON_AddBoolToObject(o, "isCoinInSlot", s->is_coin_in_slot)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void *slot_copy(const void *state)
{
    const struct eddy_slotmachine_state *s = state;
    struct eddy_slotmachine_state *c = slot_new(s->id);
    if (c) {
        char *id = c->id;
        *c = *s;
        c->id = id;
    }
    return c;
}

static enum eddy_outcome insert_coin(struct eddy_slotmachine_state *s, char *reason,
                                     size_t reasonlen)
{
    if (s->is_coin_in_slot) {
        sayf(reason, reasonlen, "cannot insert coin");
        return EDDY_PROCESS_REJECTED;
    }
    s->is_coin_in_slot = true;
    return EDDY_PROCESS_OK;
}

static int emit_result(struct eddy_slotmachine_state *s, const char *user_id, bool win,
                       struct eddy_emit *emit)
{
    cJSON *result = cJSON_CreateObject();
    if (result == NULL || !cJSON_AddStringToObject(result, "machineId", s->id) ||
        !cJSON_AddBoolToObject(result, "win", win)) {
        cJSON_Delete(result);
        return -1;
    }
    if (eddy_emit(emit, "GameResult", result) != 0)
        return -1;
    if (!win)
        return 0;
    cJSON *payout = cJSON_CreateObject();
    if (payout == NULL || !cJSON_AddStringToObject(payout, "userId", user_id) ||
        !cJSON_AddNumberToObject(payout, "amount", (double)s->payout)) {
        cJSON_Delete(payout);
        return -1;
    }
    return eddy_emit(emit, "Payout", payout);
}

/*
 * An event field as a-h/stream's decoder finds it: the exact name, else one
 * that matches without regard to case (its default store records Go field
 * names, UserID).
 */
static const cJSON *event_field(const cJSON *data, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, name);
    return v ? v : cJSON_GetObjectItem(data, name);
}

static enum eddy_outcome pull_handle(struct eddy_slotmachine_state *s, const cJSON *data,
                                     struct eddy_emit *emit, struct eddy_rng *rng, char *reason,
                                     size_t reasonlen)
{
    const cJSON *user = event_field(data, "userId");
    if (!cJSON_IsString(user)) {
        sayf(reason, reasonlen, "PullHandle: userId must be a string");
        return EDDY_PROCESS_REJECTED;
    }
    if (!s->is_coin_in_slot) {
        sayf(reason, reasonlen, "cannot pull handle");
        return EDDY_PROCESS_REJECTED;
    }
    s->is_coin_in_slot = false;
    bool win = eddy_rng_float64(rng) < s->win_chance;
    s->games++;
    if (win) {
        s->wins++;
        s->balance -= s->payout - 1;
    } else {
        s->losses++;
        s->balance++;
    }
    if (emit_result(s, user->valuestring, win, emit) != 0) {
        sayf(reason, reasonlen, "PullHandle: could not emit the game result");
        return EDDY_PROCESS_FAILED;
    }
    return EDDY_PROCESS_OK;
}

static enum eddy_outcome slot_process(void *state, const struct eddy_event *ev,
                                      struct eddy_emit *emit, struct eddy_rng *rng, char *reason,
                                      size_t reasonlen)
{
    struct eddy_slotmachine_state *s = state;
    const char *type = ev->type ? ev->type : "";
    if (strcmp(type, "InsertCoin") == 0)
        return insert_coin(s, reason, reasonlen);
    if (strcmp(type, "PullHandle") == 0)
        return pull_handle(s, ev->data, emit, rng, reason, reasonlen);
    sayf(reason, reasonlen, "unknown event type %s", type);
    return EDDY_PROCESS_REJECTED;
}

static const char *const slot_event_types[] = {"InsertCoin", "PullHandle", NULL};

const struct eddy_machine eddy_slotmachine = {
    .abi_version = EDDY_MACHINE_ABI,
    .name = "machine",
    .state_new = slot_new,
    .state_load = slot_load,
    .state_save = slot_save,
    .state_free = slot_free,
    .state_copy = slot_copy,
    .process = slot_process,
    .event_types = slot_event_types,
};

#ifdef EDDY_SLOTMACHINE_SHARED
EDDY_MACHINE_EXPORT(eddy_slotmachine)
#endif
