/*
 * Unit tests for core/names: stored names matched to the machine's spelling
 * as a-h/stream's decoder matches them (exact first, else without regard to
 * case), and the slot machine loading a state a-h/stream's default store
 * wrote with Go field names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/machine.h"
#include "core/names.h"
#include "slotmachine/slotmachine.h"

static void assert_json(const cJSON *j, const char *want)
{
    char *s = cJSON_PrintUnformatted(j);
    assert_string_equal(s, want);
    free(s);
}

static void fold_ok(const char *text, const char *model_text, const char *want)
{
    cJSON *j = cJSON_Parse(text), *model = cJSON_Parse(model_text);
    struct eddy_error err;
    assert_int_equal(eddy_names_fold(j, model, &err), EDDY_OK);
    assert_json(j, want);
    cJSON_Delete(j);
    cJSON_Delete(model);
}

static void test_fold(void **state)
{
    (void)state;
    /* Go field names onto the machine's, order kept, unknown names left alone */
    fold_ok("{\"ID\":\"m1\",\"Balance\":3,\"IsCoinInSlot\":true,\"Extra\":1}",
            "{\"id\":\"\",\"balance\":0,\"isCoinInSlot\":false}",
            "{\"id\":\"m1\",\"balance\":3,\"isCoinInSlot\":true,\"Extra\":1}");
    /* an exact name wins over one that matches only without case */
    fold_ok("{\"Balance\":3,\"balance\":4}", "{\"balance\":0}", "{\"Balance\":3,\"balance\":4}");
    /* nested objects, and every object of an array after the model's first */
    fold_ok("{\"Owner\":{\"UserID\":\"u\"},\"Plays\":[{\"Won\":true},{\"WON\":false}]}",
            "{\"owner\":{\"userId\":\"\"},\"plays\":[{\"won\":false}]}",
            "{\"owner\":{\"userId\":\"u\"},\"plays\":[{\"won\":true},{\"won\":false}]}");
    /* no model: nothing changes */
    fold_ok("{\"A\":1}", "null", "{\"A\":1}");
}

static void test_fold_ambiguous(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("{\"BALANCE\":1,\"Balance\":2}"),
          *model = cJSON_Parse("{\"balance\":0}");
    struct eddy_error err;
    assert_int_equal(eddy_names_fold(j, model, &err), EDDY_EPARSE);
    assert_string_equal(err.detail, "attributes \"BALANCE\" and \"Balance\" both match the "
                                    "machine's field \"balance\" (names are matched without "
                                    "regard to case)");
    cJSON_Delete(j);
    cJSON_Delete(model);
}

static void test_find(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("{\"UserId\":\"a\",\"userId\":\"b\",\"USERNAME\":\"c\"}");
    assert_string_equal(eddy_names_find(j, "userId")->valuestring, "b");
    assert_string_equal(eddy_names_find(j, "USERID")->valuestring, "a");
    assert_string_equal(eddy_names_find(j, "username")->valuestring, "c");
    assert_null(eddy_names_find(j, "user"));
    cJSON_Delete(j);
}

/* The state a-h/stream's example writes with its default store (no codec tag). */
static void test_slotmachine_go_names(void **state)
{
    (void)state;
    const struct eddy_machine *m = &eddy_slotmachine;
    cJSON *model = eddy_machine_state_model(m, "m1");
    assert_non_null(model);
    cJSON *stored = cJSON_Parse("{\"ID\":\"m1\",\"Balance\":-3,\"Payout\":4,\"WinChance\":0.18,"
                                "\"Games\":1,\"Wins\":1,\"Losses\":0,\"IsCoinInSlot\":true}");
    void *st = NULL;
    struct eddy_error err;
    assert_int_equal(eddy_machine_state_load(m, stored, model, &st, &err), EDDY_OK);
    cJSON *saved = m->state_save(st);
    /* written back in the form the machine saves */
    assert_json(saved, "{\"id\":\"m1\",\"balance\":-3,\"payout\":4,\"winChance\":0.18,"
                       "\"games\":1,\"wins\":1,\"losses\":0,\"isCoinInSlot\":true}");
    cJSON_Delete(saved);
    m->state_free(st);
    cJSON_Delete(stored);
    /* what the machine says about a bad field still comes through */
    stored = cJSON_Parse("{\"ID\":\"m1\",\"Balance\":\"x\"}");
    assert_int_equal(eddy_machine_state_load(m, stored, model, &st, &err), EDDY_EPARSE);
    assert_null(st);
    assert_non_null(strstr(err.detail, "balance"));
    cJSON_Delete(stored);
    cJSON_Delete(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_fold_ambiguous),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_slotmachine_go_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
