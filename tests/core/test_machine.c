/*
 * Unit tests for core/machine: checking tables, finding machines by name,
 * loading the slot machine from its shared object (path given as argv[1] by
 * meson), and the emit collector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/machine.h"
#include "slotmachine/slotmachine.h"

static const char *so_path;

static void test_check(void **state)
{
    (void)state;
    struct eddy_error err;
    assert_int_equal(eddy_machine_check(&eddy_slotmachine, &err), EDDY_OK);
    struct eddy_machine t = eddy_slotmachine;
    t.abi_version = 2;
    assert_int_equal(eddy_machine_check(&t, &err), EDDY_ECONFIG);
    assert_string_equal(err.detail, "machine ABI version 2, this eddy supports version 1");
    t = eddy_slotmachine;
    t.process = NULL;
    assert_int_equal(eddy_machine_check(&t, &err), EDDY_ECONFIG);
    assert_string_equal(err.detail, "machine \"machine\" has no process function");
    t = eddy_slotmachine;
    t.name = "";
    assert_int_equal(eddy_machine_check(&t, &err), EDDY_ECONFIG);
    t.name = "a/b";
    assert_int_equal(eddy_machine_check(&t, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "'/'"));
    assert_int_equal(eddy_machine_check(NULL, &err), EDDY_ECONFIG);
}

static void test_find_and_select(void **state)
{
    (void)state;
    struct eddy_machine mine = eddy_slotmachine;
    mine.name = "counter";
    const struct eddy_named_machine table[] = {{NULL, &mine}, {"slotmachine", &eddy_slotmachine}};
    assert_ptr_equal(eddy_machine_find(table, 2, "counter"), &mine);
    assert_ptr_equal(eddy_machine_find(table, 2, "slotmachine"), &eddy_slotmachine);
    assert_ptr_equal(eddy_machine_find(table, 2, "machine"), &eddy_slotmachine);
    assert_null(eddy_machine_find(table, 1, "machine"));
    assert_null(eddy_machine_find(table, 2, "nope"));

    struct eddy_machine_ref ref;
    struct eddy_error err;
    assert_int_equal(eddy_machine_select("counter", table, 2, &ref, &err), EDDY_OK);
    assert_ptr_equal(ref.machine, &mine);
    assert_null(ref.dl);
    assert_int_equal(eddy_machine_select("slotmachine", table, 2, &ref, &err), EDDY_OK);
    assert_ptr_equal(ref.machine, &eddy_slotmachine);
    eddy_machine_release(&ref);
    assert_int_equal(eddy_machine_select("nope", NULL, 0, &ref, &err), EDDY_ECONFIG);
    assert_string_equal(err.detail, "no machine named \"nope\"");
    assert_int_equal(eddy_machine_select("", NULL, 0, &ref, &err), EDDY_ECONFIG);
    assert_int_equal(eddy_machine_select("./missing.so", NULL, 0, &ref, &err), EDDY_ECONFIG);
    assert_non_null(strstr(err.detail, "cannot load machine ./missing.so"));
    assert_null(ref.machine);
}

static void test_load_shared_object(void **state)
{
    (void)state;
    struct eddy_machine_ref ref;
    struct eddy_error err;
    eddy_error_clear(&err);
    if (eddy_machine_select(so_path, NULL, 0, &ref, &err) != EDDY_OK)
        fail_msg("loading %s: %s", so_path, eddy_error_text(&err));
    const struct eddy_machine *m = ref.machine;
    assert_non_null(ref.dl);
    /* Its own copy of the code, not the table linked into this program. */
    assert_ptr_not_equal(m, &eddy_slotmachine);
    assert_string_equal(m->name, "machine");

    void *st = m->state_new("so-1");
    cJSON *data = cJSON_Parse("{\"userId\":\"u1\"}");
    struct eddy_event coin = {"InsertCoin", "c1", data}, pull = {"PullHandle", "p1", data};
    struct eddy_rng rng;
    struct eddy_emit emit;
    char reason[EDDY_MACHINE_REASON_MAX] = "";
    eddy_emit_init(&emit);
    eddy_rng_seed_bytes(&rng, "c1", 2);
    assert_int_equal(m->process(st, &coin, &emit, &rng, reason, sizeof reason), EDDY_PROCESS_OK);
    eddy_rng_seed_bytes(&rng, "p1", 2);
    assert_int_equal(m->process(st, &pull, &emit, &rng, reason, sizeof reason), EDDY_PROCESS_OK);
    /* The emits came back through this program's eddy_emit. */
    assert_true(emit.n == 1 || emit.n == 2);
    assert_string_equal(emit.v[0].type, "GameResult");
    cJSON *saved = m->state_save(st);
    assert_int_equal(cJSON_GetObjectItem(saved, "games")->valuedouble, 1);
    cJSON_Delete(saved);
    /* The built-in machine decides the same for the same event ids. */
    void *st2 = eddy_slotmachine.state_new("so-1");
    struct eddy_emit emit2;
    eddy_emit_init(&emit2);
    eddy_rng_seed_bytes(&rng, "c1", 2);
    eddy_slotmachine.process(st2, &coin, &emit2, &rng, reason, sizeof reason);
    eddy_rng_seed_bytes(&rng, "p1", 2);
    eddy_slotmachine.process(st2, &pull, &emit2, &rng, reason, sizeof reason);
    assert_int_equal(emit.n, emit2.n);
    eddy_emit_cleanup(&emit);
    eddy_emit_cleanup(&emit2);
    eddy_slotmachine.state_free(st2);
    m->state_free(st);
    cJSON_Delete(data);
    eddy_machine_release(&ref);
    assert_null(ref.dl);
}

static void test_emit(void **state)
{
    (void)state;
    struct eddy_emit e;
    eddy_emit_init(&e);
    assert_int_equal(eddy_emit(&e, "A", cJSON_CreateObject()), 0);
    assert_int_equal(eddy_emit(&e, "B", NULL), 0); /* NULL is {} */
    assert_int_equal(eddy_emit(&e, "", cJSON_CreateObject()), -1);
    assert_int_equal(eddy_emit(&e, "C", cJSON_CreateArray()), -1); /* freed, not leaked */
    assert_int_equal(eddy_emit(&e, NULL, NULL), -1);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.v[1].type, "B");
    assert_true(cJSON_IsObject(e.v[1].data));
    eddy_emit_reset(&e);
    assert_int_equal(e.n, 0);
    for (int i = 0; i < EDDY_EMIT_MAX; i++)
        assert_int_equal(eddy_emit(&e, "X", NULL), 0);
    assert_int_equal(eddy_emit(&e, "X", NULL), -1);
    /* the slots' type buffers are reused: shorter, much longer, shorter again */
    static const char *const types[] = {"Short", "AMuchLongerTypeThanTheSlotHeldBeforeThisOne",
                                        "Mid"};
    for (size_t k = 0; k < EDDY_ARRAY_SIZE(types); k++) {
        eddy_emit_reset(&e);
        assert_int_equal(eddy_emit(&e, types[k], NULL), 0);
        assert_int_equal(eddy_emit(&e, types[EDDY_ARRAY_SIZE(types) - 1 - k], NULL), 0);
        assert_int_equal(e.n, 2);
        assert_string_equal(e.v[0].type, types[k]);
        assert_string_equal(e.v[1].type, types[EDDY_ARRAY_SIZE(types) - 1 - k]);
    }
    eddy_emit_cleanup(&e);
    assert_null(e.v);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s path/to/slotmachine.so\n", argv[0]);
        return 1;
    }
    so_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_find_and_select),
        cmocka_unit_test(test_load_shared_object),
        cmocka_unit_test(test_emit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
