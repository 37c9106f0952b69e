/* Unit tests for the example slot machine, on its own: rules, emits, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/machine.h"
#include "slotmachine/slotmachine.h"

static const struct eddy_machine *const m = &eddy_slotmachine;

struct run {
    enum eddy_outcome outcome;
    char reason[EDDY_MACHINE_REASON_MAX];
    struct eddy_emit emit;
};

/* Run one event as eddy does: rng seeded from the event id. */
static void run(void *st, const char *type, const char *id, const char *data_text, struct run *r)
{
    cJSON *data = cJSON_Parse(data_text ? data_text : "{}");
    assert_non_null(data);
    struct eddy_event ev = {type, id, data};
    struct eddy_rng rng;
    eddy_rng_seed_bytes(&rng, id, strlen(id));
    r->reason[0] = '\0';
    eddy_emit_init(&r->emit);
    r->outcome = m->process(st, &ev, &r->emit, &rng, r->reason, sizeof r->reason);
    cJSON_Delete(data);
}

static bool expect_win(const char *id)
{
    struct eddy_rng rng;
    eddy_rng_seed_bytes(&rng, id, strlen(id));
    return eddy_rng_float64(&rng) < 0.18;
}

/* The first event id "pull-<n>" whose draw wins (or loses). */
static void find_id(bool win, char *id, size_t len)
{
    for (int i = 0;; i++) {
        snprintf(id, len, "pull-%d", i);
        if (expect_win(id) == win)
            return;
    }
}

static char *saved(const void *st)
{
    cJSON *j = m->state_save(st);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void test_new_state(void **state)
{
    (void)state;
    void *st = m->state_new("m1");
    char *s = saved(st);
    assert_string_equal(s, "{\"id\":\"m1\",\"balance\":0,\"payout\":4,\"winChance\":0.18,"
                           "\"games\":0,\"wins\":0,\"losses\":0,\"isCoinInSlot\":false}");
    free(s);
    m->state_free(st);
    assert_string_equal(m->name, "machine");
    assert_int_equal(m->abi_version, EDDY_MACHINE_ABI);
}

static void test_insert_coin(void **state)
{
    (void)state;
    void *st = m->state_new("m1");
    struct run r;
    run(st, "InsertCoin", "e1", NULL, &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_OK);
    assert_int_equal(r.emit.n, 0);
    assert_true(((struct eddy_slotmachine_state *)st)->is_coin_in_slot);
    run(st, "InsertCoin", "e2", NULL, &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_REJECTED);
    assert_string_equal(r.reason, "cannot insert coin");
    assert_int_equal(r.emit.n, 0);
    m->state_free(st);
}

static void test_pull_without_coin(void **state)
{
    (void)state;
    void *st = m->state_new("m1");
    struct run r;
    run(st, "PullHandle", "e1", "{\"userId\":\"u1\"}", &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_REJECTED);
    assert_string_equal(r.reason, "cannot pull handle");
    assert_int_equal(r.emit.n, 0);
    assert_int_equal(((struct eddy_slotmachine_state *)st)->games, 0);
    m->state_free(st);
}

static void assert_emitted(const struct eddy_emit *e, size_t i, const char *type, const char *data)
{
    assert_true(i < e->n);
    assert_string_equal(e->v[i].type, type);
    char *s = cJSON_PrintUnformatted(e->v[i].data);
    assert_string_equal(s, data);
    free(s);
}

static void test_pull_win(void **state)
{
    (void)state;
    char id[32];
    find_id(true, id, sizeof id);
    void *st = m->state_new("m1");
    struct run r;
    run(st, "InsertCoin", "coin", NULL, &r);
    run(st, "PullHandle", id, "{\"userId\":\"u1\"}", &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_OK);
    char *s = saved(st);
    assert_string_equal(s, "{\"id\":\"m1\",\"balance\":-3,\"payout\":4,\"winChance\":0.18,"
                           "\"games\":1,\"wins\":1,\"losses\":0,\"isCoinInSlot\":false}");
    free(s);
    assert_int_equal(r.emit.n, 2);
    assert_emitted(&r.emit, 0, "GameResult", "{\"machineId\":\"m1\",\"win\":true}");
    assert_emitted(&r.emit, 1, "Payout", "{\"userId\":\"u1\",\"amount\":4}");
    eddy_emit_cleanup(&r.emit);
    m->state_free(st);
}

/* a-h/stream's default store records PullHandle as {"UserID": ...}. */
static void test_pull_go_field_name(void **state)
{
    (void)state;
    char id[32];
    find_id(true, id, sizeof id);
    void *st = m->state_new("m1");
    struct run r;
    run(st, "InsertCoin", "coin", NULL, &r);
    run(st, "PullHandle", id, "{\"UserID\":\"u2\"}", &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_OK);
    assert_emitted(&r.emit, 1, "Payout", "{\"userId\":\"u2\",\"amount\":4}");
    eddy_emit_cleanup(&r.emit);
    m->state_free(st);
}

static void test_pull_loss(void **state)
{
    (void)state;
    char id[32];
    find_id(false, id, sizeof id);
    void *st = m->state_new("m1");
    struct run r;
    run(st, "InsertCoin", "coin", NULL, &r);
    run(st, "PullHandle", id, "{\"userId\":\"u1\"}", &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_OK);
    char *s = saved(st);
    assert_string_equal(s, "{\"id\":\"m1\",\"balance\":1,\"payout\":4,\"winChance\":0.18,"
                           "\"games\":1,\"wins\":0,\"losses\":1,\"isCoinInSlot\":false}");
    free(s);
    assert_int_equal(r.emit.n, 1);
    assert_emitted(&r.emit, 0, "GameResult", "{\"machineId\":\"m1\",\"win\":false}");
    eddy_emit_cleanup(&r.emit);
    m->state_free(st);
}

static void test_bad_input(void **state)
{
    (void)state;
    void *st = m->state_new("m1");
    struct run r;
    run(st, "Kick", "e1", NULL, &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_REJECTED);
    assert_string_equal(r.reason, "unknown event type Kick");
    run(st, "InsertCoin", "e2", NULL, &r);
    run(st, "PullHandle", "e3", "{}", &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_REJECTED);
    assert_string_equal(r.reason, "PullHandle: userId must be a string");
    run(st, "PullHandle", "e4", "{\"userId\":7}", &r);
    assert_int_equal(r.outcome, EDDY_PROCESS_REJECTED);
    assert_string_equal(r.reason, "PullHandle: userId must be a string");
    /* The coin is still there: a refusal changes nothing. */
    assert_true(((struct eddy_slotmachine_state *)st)->is_coin_in_slot);
    m->state_free(st);
}

/* Same event ids -> same outcomes, states and emits; 10k pulls win about 18%. */
static void test_determinism_and_rate(void **state)
{
    (void)state;
    void *a = m->state_new("m1"), *b = m->state_new("m1");
    int wins = 0, expected_wins = 0;
    const int pulls = 10000;
    for (int i = 0; i < pulls; i++) {
        char coin[32], pull[32];
        snprintf(coin, sizeof coin, "coin-%d", i);
        snprintf(pull, sizeof pull, "pull-%d", i);
        struct run ra, rb;
        run(a, "InsertCoin", coin, NULL, &ra);
        run(b, "InsertCoin", coin, NULL, &rb);
        run(a, "PullHandle", pull, "{\"userId\":\"u\"}", &ra);
        run(b, "PullHandle", pull, "{\"userId\":\"u\"}", &rb);
        assert_int_equal(ra.outcome, EDDY_PROCESS_OK);
        assert_int_equal(ra.emit.n, rb.emit.n);
        wins += ra.emit.n == 2;
        expected_wins += expect_win(pull);
        eddy_emit_cleanup(&ra.emit);
        eddy_emit_cleanup(&rb.emit);
    }
    char *sa = saved(a), *sb = saved(b);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    const struct eddy_slotmachine_state *s = a;
    assert_int_equal(wins, expected_wins);
    assert_int_equal(s->wins, wins);
    assert_int_equal(s->games, pulls);
    assert_int_equal(s->losses, pulls - wins);
    assert_int_equal(s->balance, s->losses - 3 * s->wins);
    /* sigma = sqrt(0.18 * 0.82 / 10000) ~ 0.0038; allow 4 sigma. */
    double rate = (double)wins / pulls;
    printf("win rate over %d seeded pulls: %.4f\n", pulls, rate);
    assert_true(rate > 0.18 - 0.0155 && rate < 0.18 + 0.0155);
    m->state_free(a);
    m->state_free(b);
}

static void expect_load_error(const char *text, const char *want)
{
    cJSON *j = cJSON_Parse(text);
    void *st = (void *)1;
    char err[EDDY_MACHINE_ERR_MAX] = "";
    assert_int_equal(m->state_load(j, &st, err, sizeof err), -1);
    assert_null(st);
    assert_string_equal(err, want);
    cJSON_Delete(j);
}

static void test_load(void **state)
{
    (void)state;
    const char *good = "{\"id\":\"m9\",\"balance\":-7,\"payout\":5,\"winChance\":0.5,"
                       "\"games\":3,\"wins\":2,\"losses\":1,\"isCoinInSlot\":true}";
    cJSON *j = cJSON_Parse(good);
    void *st = NULL;
    char err[EDDY_MACHINE_ERR_MAX] = "";
    assert_int_equal(m->state_load(j, &st, err, sizeof err), 0);
    char *s = saved(st);
    assert_string_equal(s, good);
    free(s);
    m->state_free(st);
    cJSON_Delete(j);
    expect_load_error("{\"id\":\"m\",\"balance\":\"x\"}", "balance: expected an integer of at "
                                                          "most 2^53");
    expect_load_error("{\"id\":\"m\",\"balance\":0,\"payout\":4}", "games: missing");
    expect_load_error("{\"id\":1}", "id: expected a string");
    expect_load_error("{\"id\":\"m\",\"balance\":0,\"payout\":4,\"games\":0,\"wins\":0,"
                      "\"losses\":0,\"winChance\":2}",
                      "winChance: expected a number from 0 to 1");
    expect_load_error("{\"id\":\"m\",\"balance\":0,\"payout\":4,\"games\":0,\"wins\":0,"
                      "\"losses\":0,\"winChance\":0.1,\"isCoinInSlot\":1}",
                      "isCoinInSlot: expected true or false");
    expect_load_error("[]", "state: expected a JSON object");
}

static void test_copy(void **state)
{
    (void)state;
    void *st = m->state_new("m1");
    struct run r;
    run(st, "InsertCoin", "c", NULL, &r);
    /* The machine's own copy, and the generic save + load copy. */
    struct eddy_machine generic = eddy_slotmachine;
    generic.state_copy = NULL;
    struct eddy_error err;
    void *c1 = eddy_machine_state_copy(m, st, &err);
    void *c2 = eddy_machine_state_copy(&generic, st, &err);
    char *s0 = saved(st), *s1 = saved(c1), *s2 = saved(c2);
    assert_string_equal(s0, s1);
    assert_string_equal(s0, s2);
    /* A copy is independent of the original. */
    run(c1, "PullHandle", "p", "{\"userId\":\"u\"}", &r);
    eddy_emit_cleanup(&r.emit);
    char *s3 = saved(st);
    assert_string_equal(s0, s3);
    free(s0);
    free(s1);
    free(s2);
    free(s3);
    m->state_free(st);
    m->state_free(c1);
    m->state_free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_state),
        cmocka_unit_test(test_insert_coin),
        cmocka_unit_test(test_pull_without_coin),
        cmocka_unit_test(test_pull_win),
        cmocka_unit_test(test_pull_go_field_name),
        cmocka_unit_test(test_pull_loss),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_determinism_and_rate),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
