/*
 * Unit tests for cli/config: the configuration table read from the environment
 * and flags. Defaults, flags over variables, every type's accepted spellings
 * and refusals, each refusal naming where the value came from, and the
 * positional arguments that remain. The end-to-end view (exit 2 from the
 * binary) is tests/cli/test_cli.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/config.h"
#include "core/record.h"

extern char **environ;

/* Unset every EDDY_ variable, so each test starts from the defaults. */
static int clear_env(void **state)
{
    (void)state;
    for (;;) {
        char name[128] = {0};
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "EDDY_", 5) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof name)
                    memcpy(name, *e, n);
                break;
            }
        }
        if (name[0] == '\0')
            return 0;
        unsetenv(name);
    }
}

/* Load with argv = {"eddy", args...}, flags from index 1. */
static eddy_err load(struct eddy_config *cfg, struct eddy_error *err, char **args, int n)
{
    static char *argv[16];
    argv[0] = "eddy";
    for (int i = 0; i < n; i++)
        argv[i + 1] = args[i];
    eddy_error_clear(err);
    return eddy_config_load(cfg, n + 1, argv, 1, err);
}

/* The value is refused; the detail starts with where it came from and holds want. */
static void refused(char **args, int n, const char *source, const char *want)
{
    struct eddy_config cfg;
    struct eddy_error err;
    assert_int_equal(load(&cfg, &err, args, n), EDDY_ECONFIG);
    assert_int_equal(strncmp(err.detail, source, strlen(source)), 0);
    if (want != NULL && strstr(err.detail, want) == NULL)
        fail_msg("\"%s\" does not hold \"%s\"", err.detail, want);
}

static void test_defaults(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
    assert_int_equal(load(&cfg, &err, NULL, 0), EDDY_OK);
    assert_null(cfg.queue_url_str);
    assert_null(cfg.table_str);
    assert_string_equal(cfg.entity_ptr_str, "/detail/id");
    assert_int_equal(cfg.max_inflight, 100);
    assert_int_equal(cfg.wait_seconds, 20);
    assert_int_equal(cfg.dedupe_ttl, 14 * 86400);
    assert_int_equal(cfg.relay, 1);
    assert_int_equal(cfg.state_history, 0);
    assert_int_equal(cfg.on_reject, 0); /* record */
    assert_int_equal(cfg.log_level, 1); /* info */
    assert_int_equal(cfg.nargs, 0);
}

static void test_flags_win_over_environment(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
    setenv("EDDY_MAX_INFLIGHT", "50", 1);
    setenv("EDDY_TABLE", "from-env", 1);
    assert_int_equal(load(&cfg, &err, NULL, 0), EDDY_OK);
    assert_int_equal(cfg.max_inflight, 50);
    assert_string_equal(cfg.table_str, "from-env");
    char *args[] = {"--max-inflight=7", "--table", "from-flag"};
    assert_int_equal(load(&cfg, &err, args, 3), EDDY_OK);
    assert_int_equal(cfg.max_inflight, 7);
    assert_string_equal(cfg.table_str, "from-flag");
    /* an empty variable is the default, not an error */
    setenv("EDDY_MAX_INFLIGHT", "", 1);
    assert_int_equal(load(&cfg, &err, NULL, 0), EDDY_OK);
    assert_int_equal(cfg.max_inflight, 100);
}

static void test_integers(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
    char *ok[] = {"--max-inflight=100000", "--pollers=0"};
    assert_int_equal(load(&cfg, &err, ok, 2), EDDY_OK);
    assert_int_equal(cfg.max_inflight, 100000);
    assert_int_equal(cfg.pollers, 0);
    char *low[] = {"--max-inflight=0"};
    refused(low, 1, "--max-inflight: ", "not an integer in 1..100000");
    char *high[] = {"--max-inflight=100001"};
    refused(high, 1, "--max-inflight: ", "1..100000");
    char *plus[] = {"--max-inflight=+5"};
    refused(plus, 1, "--max-inflight: ", NULL);
    char *space[] = {"--max-inflight= 5"};
    refused(space, 1, "--max-inflight: ", NULL);
    char *exp[] = {"--max-inflight=1e3"};
    refused(exp, 1, "--max-inflight: ", NULL);
    char *huge[] = {"--after=99999999999999999999"};
    refused(huge, 1, "--after: ", NULL);
    setenv("EDDY_WAIT_SECONDS", "21", 1);
    refused(NULL, 0, "EDDY_WAIT_SECONDS: ", "0..20");
}

static void test_durations(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
    char *s[] = {"--drain-seconds=30s", "--dedupe-ttl=5m", "--metrics-interval=2h",
                 "--outbox-grace=1d"};
    assert_int_equal(load(&cfg, &err, s, 4), EDDY_OK);
    assert_int_equal(cfg.drain_seconds, 30);
    assert_int_equal(cfg.dedupe_ttl, 300);
    assert_int_equal(cfg.metrics_interval, 7200);
    assert_int_equal(cfg.outbox_grace, 86400);
    char *unit[] = {"--drain-seconds=5x"};
    refused(unit, 1, "--drain-seconds: ", "is not a duration of 1..3600 seconds");
    char *neg[] = {"--drain-seconds=-1"};
    refused(neg, 1, "--drain-seconds: ", NULL);
    char *over[] = {"--drain-seconds=2h"};
    refused(over, 1, "--drain-seconds: ", "1..3600");
    setenv("EDDY_DEDUPE_TTL", "59", 1); /* under a minute */
    refused(NULL, 0, "EDDY_DEDUPE_TTL: ", "60..31536000");
}

static void test_bools_and_enums(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
    setenv("EDDY_RELAY", "OFF", 1);
    setenv("EDDY_STATE_HISTORY", "yes", 1);
    char *args[] = {"--repair", "--on-reject=dlq", "--log-level", "error"};
    assert_int_equal(load(&cfg, &err, args, 4), EDDY_OK);
    assert_int_equal(cfg.relay, 0);
    assert_int_equal(cfg.state_history, 1);
    assert_int_equal(cfg.repair, 1); /* a bare boolean flag is on */
    assert_int_equal(cfg.on_reject, 1);
    assert_int_equal(cfg.log_level, 3);
    char *maybe[] = {"--repair=maybe"};
    refused(maybe, 1, "--repair: ", "is not on/off");
    char *upper[] = {"--on-reject=DLQ"};
    refused(upper, 1, "--on-reject: ", "is not one of record|dlq|drop");
}

static void test_pointers_and_namespace(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
    char *ok[] = {"--entity-id=/detail/a~1b", "--namespace=game"};
    assert_int_equal(load(&cfg, &err, ok, 2), EDDY_OK);
    assert_string_equal(cfg.entity_ptr_str, "/detail/a~1b");
    assert_string_equal(cfg.ns_str, "game");
    setenv("EDDY_ENTITY_ID", "detail/id", 1); /* no leading '/' */
    refused(NULL, 0, "EDDY_ENTITY_ID: ", NULL);
    unsetenv("EDDY_ENTITY_ID");
    char ns[EDDY_RECORD_NS_MAX + 2];
    memset(ns, 'n', sizeof ns - 1);
    ns[sizeof ns - 1] = '\0';
    setenv("EDDY_NAMESPACE", ns, 1);
    refused(NULL, 0, "EDDY_NAMESPACE: ", NULL);
}

static void test_flags_and_positionals(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
    char *unknown[] = {"--nope=1"};
    refused(unknown, 1, "unknown flag --nope=1", NULL);
    char *missing[] = {"--table"};
    refused(missing, 1, "flag --table needs a value", NULL);
    /* positionals keep their order; "--" makes the rest positionals */
    char *args[] = {"get", "--table=t", "e1", "--", "--help"};
    assert_int_equal(load(&cfg, &err, args, 5), EDDY_OK);
    assert_string_equal(cfg.table_str, "t");
    assert_int_equal(cfg.nargs, 3);
    assert_string_equal(cfg.args[0], "get");
    assert_string_equal(cfg.args[1], "e1");
    assert_string_equal(cfg.args[2], "--help");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_flags_win_over_environment, clear_env),
        cmocka_unit_test_setup(test_integers, clear_env),
        cmocka_unit_test_setup(test_durations, clear_env),
        cmocka_unit_test_setup(test_bools_and_enums, clear_env),
        cmocka_unit_test_setup(test_pointers_and_namespace, clear_env),
        cmocka_unit_test_setup(test_flags_and_positionals, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
