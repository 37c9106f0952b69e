/*
 * test_breaker.c - the store's circuit breaker as a state machine, driven by
 * a fake clock: which errors open it, the probe schedule and its growth,
 * what closes it, what resets the growth, and the log line of every change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/log.h"
#include "worker/breaker.h"

struct fixture {
    struct eddy_clock_fake clock;
    struct eddy_breaker b;
    FILE *log;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    eddy_clock_fake_init(&f->clock, 1700000000000);
    struct eddy_breaker_config cfg = {.name = "DynamoDB",
                                      .probe_min_ms = 100,
                                      .probe_max_ms = 1000,
                                      .clock = &f->clock.clock,
                                      .seed = 42};
    eddy_breaker_init(&f->b, &cfg);
    f->log = tmpfile();
    eddy_log_configure(EDDY_LOG_DEBUG, EDDY_LOG_JSON, f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    eddy_log_configure(EDDY_LOG_ERROR, EDDY_LOG_TEXT, stderr);
    fclose(f->log);
    free(f);
    return 0;
}

/* The log written so far (static buffer), and the log started afresh. */
static const char *take_log(struct fixture *f)
{
    static char buf[8192];
    fflush(f->log);
    rewind(f->log);
    size_t n = fread(buf, 1, sizeof buf - 1, f->log);
    buf[n] = '\0';
    fclose(f->log);
    f->log = tmpfile();
    eddy_log_configure(EDDY_LOG_DEBUG, EDDY_LOG_JSON, f->log);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Advance to the next probe, which must be due only then, and start it. */
static uint64_t wait_and_probe(struct fixture *f)
{
    uint64_t wait = eddy_breaker_wait_ms(&f->b);
    assert_true(wait > 0);
    eddy_clock_fake_advance(&f->clock, wait - 1);
    assert_false(eddy_breaker_probe_start(&f->b)); /* not yet */
    eddy_clock_fake_advance(&f->clock, 1);
    assert_true(eddy_breaker_probe_start(&f->b));
    assert_int_equal(f->b.state, EDDY_BREAKER_PROBING);
    assert_false(eddy_breaker_probe_start(&f->b)); /* one probe at a time */
    return wait;
}

static void test_store_down_errors(void **state)
{
    (void)state;
    assert_true(eddy_breaker_store_down(EDDY_ENET));
    assert_true(eddy_breaker_store_down(EDDY_ETIMEOUT));
    assert_true(eddy_breaker_store_down(EDDY_ETRANSIENT));
    assert_true(eddy_breaker_store_down(EDDY_ETHROTTLED));
    /* the request's or the message's fault, or a race: the store is up */
    assert_false(eddy_breaker_store_down(EDDY_OK));
    assert_false(eddy_breaker_store_down(EDDY_EAWS));
    assert_false(eddy_breaker_store_down(EDDY_EAUTH));
    assert_false(eddy_breaker_store_down(EDDY_ECONFLICT));
    assert_false(eddy_breaker_store_down(EDDY_EPARSE));
    assert_false(eddy_breaker_store_down(EDDY_ELIMIT));
    assert_false(eddy_breaker_store_down(EDDY_ECANCELED));
}

static void test_opens_probes_closes(void **state)
{
    struct fixture *f = *state;
    assert_true(eddy_breaker_closed(&f->b));
    assert_false(eddy_breaker_probe_start(&f->b)); /* nothing to probe */
    eddy_breaker_success(&f->b);
    assert_true(eddy_breaker_closed(&f->b));
    assert_string_equal(take_log(f), ""); /* no change, no line */

    eddy_breaker_failure(&f->b, "connection refused");
    assert_int_equal(f->b.state, EDDY_BREAKER_OPEN);
    assert_int_equal(f->b.opens, 1);
    const char *log = take_log(f);
    assert_int_equal(count_lines(log), 2); /* the trace, the warning */
    assert_non_null(strstr(log, "circuit breaker DynamoDB: closed -> open"));
    assert_non_null(strstr(log, "\"level\":\"warn\""));
    assert_non_null(strstr(log, "circuit breaker open"));
    assert_non_null(strstr(log, "\"error\":\"connection refused\""));

    /* more failures of calls sent before it opened change nothing */
    eddy_breaker_failure(&f->b, "connection refused");
    assert_int_equal(f->b.opens, 1);
    assert_string_equal(take_log(f), "");

    uint64_t first = wait_and_probe(f);
    assert_true(first >= 50 && first <= 100); /* min 100, jittered to half..all */
    eddy_breaker_failure(&f->b, "late");      /* while probing: the probe decides */
    assert_int_equal(f->b.state, EDDY_BREAKER_PROBING);
    eddy_breaker_probe_done(&f->b, true, NULL);
    assert_true(eddy_breaker_closed(&f->b));
    log = take_log(f);
    assert_non_null(strstr(log, "circuit breaker DynamoDB: open -> probing"));
    assert_non_null(strstr(log, "circuit breaker DynamoDB: probing -> closed"));
    assert_non_null(strstr(log, "\"level\":\"info\""));
    assert_non_null(strstr(log, "circuit breaker closed after"));
    assert_non_null(strstr(log, "(1 probes)"));
    assert_int_equal(count_lines(log), 3);
    assert_int_equal(f->b.probes, 1);
    assert_int_equal(f->b.probe_failures, 0);
}

/* Failed probes double the delay up to the cap, jittered within half..all. */
static void test_delay_grows_to_cap(void **state)
{
    struct fixture *f = *state;
    eddy_breaker_failure(&f->b, "HTTP 500");
    uint64_t cap[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof cap / sizeof cap[0]; i++) {
        uint64_t wait = wait_and_probe(f);
        assert_true(wait >= cap[i] / 2 && wait <= cap[i]);
        eddy_breaker_probe_done(&f->b, false, "HTTP 500");
        assert_int_equal(f->b.state, EDDY_BREAKER_OPEN);
    }
    assert_int_equal(f->b.probe_failures, 7);
    assert_int_equal(f->b.opens, 1);
    const char *log = take_log(f);
    assert_non_null(strstr(log, "DynamoDB probe 7 failed"));
    assert_int_equal(count_lines(log), 2 + 7 * 3); /* a probe: two moves and its failure */
}

/* A batch that succeeds while open (sent before the outage, answered after
 * it) closes the breaker; the probe still out then changes nothing. */
static void test_success_closes_while_open(void **state)
{
    struct fixture *f = *state;
    eddy_breaker_failure(&f->b, "timeout");
    eddy_breaker_success(&f->b);
    assert_true(eddy_breaker_closed(&f->b));
    eddy_breaker_failure(&f->b, "timeout");
    wait_and_probe(f);
    eddy_breaker_success(&f->b);
    assert_true(eddy_breaker_closed(&f->b));
    eddy_breaker_probe_done(&f->b, false, "late probe");
    assert_true(eddy_breaker_closed(&f->b));
    assert_int_equal(f->b.opens, 2);
    assert_int_equal(eddy_breaker_wait_ms(&f->b), 0);
}

/* A store that answers probes but fails the work: each reopening waits
 * longer. Only work that succeeds brings the delay back to the start. */
static void test_unproven_close_keeps_growth(void **state)
{
    struct fixture *f = *state;
    eddy_breaker_failure(&f->b, "throttled");
    for (int i = 0; i < 4; i++) {
        wait_and_probe(f);
        eddy_breaker_probe_done(&f->b, true, NULL); /* the probe answers ... */
        assert_true(eddy_breaker_closed(&f->b));
        eddy_breaker_failure(&f->b, "throttled"); /* ... the work does not */
        assert_int_equal(f->b.state, EDDY_BREAKER_OPEN);
    }
    assert_int_equal(f->b.level, 4);
    uint64_t wait = eddy_breaker_wait_ms(&f->b);
    assert_true(wait >= 500 && wait <= 1000);
    wait_and_probe(f);
    eddy_breaker_probe_done(&f->b, true, NULL);
    eddy_breaker_success(&f->b); /* work committed */
    assert_int_equal(f->b.level, 0);
    eddy_breaker_failure(&f->b, "throttled");
    wait = eddy_breaker_wait_ms(&f->b);
    assert_true(wait >= 50 && wait <= 100);
}

static void test_defaults(void **state)
{
    (void)state;
    struct eddy_breaker b;
    struct eddy_breaker_config cfg = {.probe_min_ms = 0, .probe_max_ms = 0};
    eddy_breaker_init(&b, &cfg);
    assert_int_equal(b.cfg.probe_min_ms, EDDY_BREAKER_PROBE_MIN_MS);
    assert_int_equal(b.cfg.probe_max_ms, EDDY_BREAKER_PROBE_MAX_MS);
    assert_string_equal(eddy_breaker_state_name(EDDY_BREAKER_PROBING), "probing");
    struct eddy_breaker_config low = {.probe_min_ms = 500, .probe_max_ms = 100};
    eddy_breaker_init(&b, &low);
    assert_int_equal(b.cfg.probe_max_ms, 500); /* a cap below the start is the start */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_down_errors),
        cmocka_unit_test_setup_teardown(test_opens_probes_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_grows_to_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_closes_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unproven_close_keeps_growth, setup, teardown),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
