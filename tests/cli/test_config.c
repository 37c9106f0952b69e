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

/* A value refused: a flag on the command line, or an EDDY_ variable set to
 * value; the detail starts with source and holds want (NULL: anything). */
struct refusal {
    const char *flag; /* NULL: var=value */
    const char *var, *value;
    const char *source, *want;
};

/* One over the name's limit (filled by test_refusals). */
static char long_ns[EDDY_RECORD_NS_MAX + 2];

static const struct refusal refusals[] = {
    /* integers: digits only, within their range */
    {"--max-inflight=0", NULL, NULL, "--max-inflight: ", "not an integer in 1..100000"},
    {"--max-inflight=100001", NULL, NULL, "--max-inflight: ", "1..100000"},
    {"--max-inflight=+5", NULL, NULL, "--max-inflight: ", NULL},
    {"--max-inflight= 5", NULL, NULL, "--max-inflight: ", NULL},
    {"--max-inflight=1e3", NULL, NULL, "--max-inflight: ", NULL},
    {"--after=99999999999999999999", NULL, NULL, "--after: ", NULL},
    {NULL, "EDDY_WAIT_SECONDS", "21", "EDDY_WAIT_SECONDS: ", "0..20"},
    /* durations: a unit of s, m, h or d, within their range */
    {"--drain-seconds=5x", NULL, NULL, "--drain-seconds: ", "is not a duration of 1..3600 seconds"},
    {"--drain-seconds=-1", NULL, NULL, "--drain-seconds: ", NULL},
    {"--drain-seconds=2h", NULL, NULL, "--drain-seconds: ", "1..3600"},
    {NULL, "EDDY_DEDUPE_TTL", "59", "EDDY_DEDUPE_TTL: ", "60..31536000"}, /* under a minute */
    /* booleans and choices */
    {"--repair=maybe", NULL, NULL, "--repair: ", "is not on/off"},
    {"--on-reject=DLQ", NULL, NULL, "--on-reject: ", "is not one of record|dlq|drop"},
    /* JSON Pointers and the namespace */
    {NULL, "EDDY_ENTITY_ID", "detail/id", "EDDY_ENTITY_ID: ", NULL}, /* no leading '/' */
    {NULL, "EDDY_NAMESPACE", long_ns, "EDDY_NAMESPACE: ", NULL},
    /* flags */
    {"--nope=1", NULL, NULL, "unknown flag --nope=1", NULL},
    {"--table", NULL, NULL, "flag --table needs a value", NULL},
};

/* Every value of refusals, alone. */
static void test_refusals(void **state)
{
    (void)state;
    memset(long_ns, 'n', sizeof long_ns - 1);
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const struct refusal *r = &refusals[i];
        char *args[] = {(char *)r->flag};
        if (r->var)
            setenv(r->var, r->value, 1);
        refused(args, r->flag ? 1 : 0, r->source, r->want);
        if (r->var)
            unsetenv(r->var);
    }
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
}

static void test_flags_and_positionals(void **state)
{
    (void)state;
    struct eddy_config cfg;
    struct eddy_error err;
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
        cmocka_unit_test_setup(test_refusals, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
