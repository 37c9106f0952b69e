/* Unit tests for base/state: the table of moves, the names, the trace. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/log.h"
#include "base/state.h"

enum door { D_SHUT, D_OPEN, D_LOCKED };

static const struct eddy_state door_v[] = {
    [D_SHUT] = {"shut", EDDY_STATE_TO(D_OPEN) | EDDY_STATE_TO(D_LOCKED)},
    [D_OPEN] = {"open", EDDY_STATE_TO(D_SHUT)},
    [D_LOCKED] = {"locked", EDDY_STATE_TO(D_SHUT)},
};
static const struct eddy_states doors = EDDY_STATES("door", door_v);

static void test_moves(void **state)
{
    (void)state;
    assert_int_equal(doors.n, 3);
    assert_true(eddy_state_allowed(&doors, D_SHUT, D_OPEN));
    assert_true(eddy_state_allowed(&doors, D_SHUT, D_LOCKED));
    assert_true(eddy_state_allowed(&doors, D_OPEN, D_SHUT));
    assert_false(eddy_state_allowed(&doors, D_OPEN, D_LOCKED));
    assert_false(eddy_state_allowed(&doors, D_LOCKED, D_OPEN));
    assert_false(eddy_state_allowed(&doors, D_SHUT, D_SHUT)); /* not listed: no move */
    assert_false(eddy_state_allowed(&doors, D_SHUT, 3));      /* out of the table */
    assert_false(eddy_state_allowed(&doors, 7, D_SHUT));
    assert_false(eddy_state_allowed(&doors, D_SHUT, 40));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(eddy_state_name(&doors, D_LOCKED), "locked");
    assert_string_equal(eddy_state_name(&doors, 3), "?");
}

/* What eddy_state_move wrote to the log at level. */
static char *moved_at(enum eddy_log_level level, bool named)
{
    static char buf[1024];
    FILE *log = tmpfile();
    eddy_log_configure(level, EDDY_LOG_TEXT, log);
    if (named)
        eddy_state_move(&doors, D_SHUT, D_LOCKED, "%u", 3u);
    else
        eddy_state_move(&doors, D_LOCKED, D_SHUT, NULL);
    eddy_log_configure(EDDY_LOG_ERROR, EDDY_LOG_TEXT, stderr);
    rewind(log);
    size_t n = fread(buf, 1, sizeof buf - 1, log);
    buf[n] = '\0';
    fclose(log);
    return buf;
}

static void test_trace(void **state)
{
    (void)state;
    const char *log = moved_at(EDDY_LOG_DEBUG, true);
    assert_non_null(strstr(log, "door 3: shut -> locked"));
    assert_non_null(strstr(log, "debug"));
    log = moved_at(EDDY_LOG_DEBUG, false);
    assert_non_null(strstr(log, "door: locked -> shut"));
    /* above debug, a good move writes nothing */
    assert_string_equal(moved_at(EDDY_LOG_INFO, true), "");
}

/* A move the table does not have: an error line naming it, then the
 * assert (in a child, which must die of it). */
static void test_bad_move(void **state)
{
    (void)state;
    FILE *log = tmpfile();
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL) /* the assert's own message */
            _exit(2);
        eddy_log_configure(EDDY_LOG_INFO, EDDY_LOG_TEXT, log);
        eddy_state_move(&doors, D_OPEN, D_LOCKED, "%s", "front");
        fflush(log);
        _exit(0); /* not reached while asserts are on */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char buf[1024];
    rewind(log);
    size_t n = fread(buf, 1, sizeof buf - 1, log);
    buf[n] = '\0';
    fclose(log);
    assert_non_null(strstr(buf, "door front: open -> locked is no move of its"));
    assert_non_null(strstr(buf, "error"));
#ifdef NDEBUG
    assert_true(WIFEXITED(status));
#else
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moves),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_bad_move),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
