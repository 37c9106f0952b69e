/* Unit tests for worker/health: the touch creates, updates and rate-limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/health.h"

struct fixture {
    char dir[256];
    char path[300];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/eddy-health-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/healthy", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static time_t mtime_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mtime;
}

/* Put the file's mtime an hour in the past, as a stuck worker would leave it. */
static void age_file(const char *path)
{
    struct timeval old[2];
    gettimeofday(&old[0], NULL);
    old[0].tv_sec -= 3600;
    old[1] = old[0];
    assert_int_equal(utimes(path, old), 0);
}

static void test_touch_creates_and_updates(void **state)
{
    struct fixture *f = *state;
    struct eddy_health h;
    struct eddy_error err = {0};
    eddy_health_init(&h, f->path);
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(eddy_health_touch(&h, 5000, &err), EDDY_OK);
    assert_int_equal(access(f->path, F_OK), 0);
    time_t now = time(NULL);
    assert_true(now - mtime_of(f->path) <= 2);

    /* Within the second: no system call, the old time stays. */
    age_file(f->path);
    assert_int_equal(eddy_health_touch(&h, 5999, &err), EDDY_OK);
    assert_true(now - mtime_of(f->path) >= 3500);
    /* A second later: updated to now. */
    assert_int_equal(eddy_health_touch(&h, 6000, &err), EDDY_OK);
    assert_true(time(NULL) - mtime_of(f->path) <= 2);
    eddy_health_cleanup(&h);
}

static void test_touch_reports_failure_once_a_second(void **state)
{
    struct fixture *f = *state;
    char bad[320];
    snprintf(bad, sizeof bad, "%s/missing-dir/healthy", f->dir);
    struct eddy_health h;
    struct eddy_error err = {0};
    eddy_health_init(&h, bad);
    assert_int_equal(eddy_health_touch(&h, 100, &err), EDDY_EIO);
    assert_non_null(strstr(err.detail, "missing-dir"));
    assert_int_equal(eddy_health_touch(&h, 200, &err), EDDY_OK);
    assert_int_equal(eddy_health_touch(&h, 1100, &err), EDDY_EIO);
    eddy_health_cleanup(&h);
}

static void test_off_does_nothing(void **state)
{
    (void)state;
    struct eddy_health h;
    eddy_health_init(&h, NULL);
    assert_int_equal(eddy_health_touch(&h, 1, NULL), EDDY_OK);
    eddy_health_cleanup(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_touch_creates_and_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_reports_failure_once_a_second, setup, teardown),
        cmocka_unit_test(test_off_does_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
