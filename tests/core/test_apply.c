/*
 * Unit tests for core/apply: the one way the processor and replay run an
 * event (data {} when absent, the rng seeded from the event id, outcomes
 * and reasons normalised).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/apply.h"
#include "eddy/rng.h"

/* A state is one uint64_t: the last draw of the rng. */
static void *st_new(const char *id)
{
    (void)id;
    return calloc(1, sizeof(uint64_t));
}
static int st_load(const cJSON *json, void **state, char *err, size_t errlen)
{
    (void)json, (void)err, (void)errlen;
    *state = calloc(1, sizeof(uint64_t));
    return 0;
}
static cJSON *st_save(const void *state)
{
    (void)state;
    return cJSON_CreateObject();
}
static void *st_copy(const void *state)
{
    uint64_t *c = malloc(sizeof *c);
    *c = *(const uint64_t *)state;
    return c;
}

static enum eddy_outcome process(void *state, const struct eddy_event *ev, struct eddy_emit *emit,
                                 struct eddy_rng *rng, char *reason, size_t reasonlen)
{
    (void)emit;
    if (!cJSON_IsObject(ev->data))
        return EDDY_PROCESS_FAILED;
    *(uint64_t *)state = eddy_rng_next(rng);
    if (strcmp(ev->type, "Quiet") == 0)
        return EDDY_PROCESS_REJECTED; /* no reason */
    if (strcmp(ev->type, "Said") == 0) {
        snprintf(reason, reasonlen, "no, because");
        return EDDY_PROCESS_REJECTED;
    }
    if (strcmp(ev->type, "Odd") == 0)
        return (enum eddy_outcome)42;
    return EDDY_PROCESS_OK;
}

static const struct eddy_machine m = {
    .abi_version = EDDY_MACHINE_ABI,
    .name = "t",
    .state_new = st_new,
    .state_load = st_load,
    .state_save = st_save,
    .state_free = free,
    .state_copy = st_copy,
    .process = process,
};

static void test_apply(void **state)
{
    (void)state;
    struct eddy_emit emit;
    eddy_emit_init(&emit);
    uint64_t *s = st_new("x");
    struct eddy_applied a;
    struct eddy_error err = {0};
    /* no data: the machine sees {}; the rng is seeded from the event id */
    assert_int_equal(eddy_apply(&m, s, "Go", "ev-1", NULL, &emit, &a, &err), EDDY_OK);
    assert_int_equal(a.outcome, EDDY_PROCESS_OK);
    assert_string_equal(a.reason, "");
    struct eddy_rng rng;
    eddy_rng_seed_bytes(&rng, "ev-1", 4);
    assert_true(*(uint64_t *)a.state == eddy_rng_next(&rng));
    assert_int_equal(*s, 0); /* the state given is left alone */
    free(a.state);
    assert_int_equal(eddy_apply(&m, s, "Quiet", "ev-2", NULL, &emit, &a, &err), EDDY_OK);
    assert_int_equal(a.outcome, EDDY_PROCESS_REJECTED);
    assert_string_equal(a.reason, "rejected by the machine");
    assert_null(a.state);
    assert_int_equal(eddy_apply(&m, s, "Said", "ev-3", NULL, &emit, &a, &err), EDDY_OK);
    assert_string_equal(a.reason, "no, because");
    assert_int_equal(eddy_apply(&m, s, "Odd", "ev-4", NULL, &emit, &a, &err), EDDY_OK);
    assert_int_equal(a.outcome, EDDY_PROCESS_FAILED);
    assert_string_equal(a.reason, "the machine failed");
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(eddy_apply(&m, s, "Go", "ev-5", arr, &emit, &a, &err), EDDY_OK);
    assert_int_equal(a.outcome, EDDY_PROCESS_FAILED);
    assert_string_equal(a.reason, "event data is not a JSON object");
    cJSON_Delete(arr);
    free(s);
    eddy_emit_cleanup(&emit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
