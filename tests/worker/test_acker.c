/*
 * test_acker.c - batched deletes and visibility changes against the fake
 * transport: batching at 10, the flush timer, retries of failed entries,
 * receipt handles given up on, close.
 */
#include "rig.h"

#include <stdio.h>

#include "worker/acker.h"
#include "base/metrics.h"

/* What the acker said in its close callback, the last moment it exists. */
static int closed;
static struct eddy_acker_stats closed_stats;
static size_t closed_outstanding;

static void on_closed(void *ud)
{
    eddy_acker_stats(ud, &closed_stats);
    closed_outstanding = eddy_acker_outstanding(ud);
    closed = 1;
}

static void close_acker(struct rig *r, struct eddy_acker *a)
{
    closed = 0;
    eddy_acker_close(a, on_closed, a);
    rig_run_until(r, &closed, 1000);
    assert_true(closed);
}

/* The rig and an acker on it (the queue RIG_QURL unless cfg names one). */
static struct eddy_acker *open_acker(struct rig *r, struct eddy_acker_config cfg)
{
    rig_init_sqs(r);
    if (cfg.queue_url == NULL)
        cfg.queue_url = RIG_QURL;
    return eddy_acker_new(&r->loop, &r->sqs, &cfg);
}

/* Queue deletes of "rh-<from>" .. "rh-<to - 1>". */
static void delete_range(struct eddy_acker *a, int from, int to)
{
    char h[32];
    for (int i = from; i < to; i++) {
        snprintf(h, sizeof h, "rh-%d", i);
        assert_int_equal(eddy_acker_delete(a, h), EDDY_OK);
    }
}

static uint64_t sent(const struct eddy_acker *a, enum eddy_ack_kind kind)
{
    struct eddy_acker_stats st;
    eddy_acker_stats(a, &st);
    return st.sent[kind];
}

static void test_batches_of_ten(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_metrics *m = eddy_metrics_new(EDDY_METRICS_OFF);
    struct eddy_acker *a = open_acker(&r, (struct eddy_acker_config){.flush_ms = 5, .metrics = m});
    for (int i = 0; i < 3; i++)
        eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
    delete_range(a, 0, 25);
    /* two full batches leave at once; the rest waits for the timer */
    assert_int_equal(eddy_fake_count(r.fake), 2);
    close_acker(&r, a);
    assert_int_equal(rig_count(&r, "DeleteMessageBatch"), 3);
    assert_non_null(strstr(eddy_fake_request_at(r.fake, 0)->body, "\"rh-9\""));
    assert_null(strstr(eddy_fake_request_at(r.fake, 0)->body, "\"rh-10\""));
    assert_non_null(strstr(eddy_fake_request_at(r.fake, 2)->body, "\"rh-24\""));
    assert_int_equal(closed_stats.sent[EDDY_ACK_DELETE], 25);
    assert_int_equal(eddy_metrics_total(m, EDDY_METRIC_deleted), 25);
    eddy_metrics_free(m);
    rig_close(&r);
}

static void test_flush_timer_and_visibility(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a = open_acker(&r, (struct eddy_acker_config){.flush_ms = 5});
    eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
    assert_int_equal(eddy_acker_visibility(a, "rh-a", 0, EDDY_ACK_RELEASE), EDDY_OK);
    assert_int_equal(eddy_acker_visibility(a, "rh-b", 99999, EDDY_ACK_BACKOFF),
                     EDDY_OK); /* clamped to 43200 */
    assert_int_equal(eddy_fake_count(r.fake), 0);
    while (sent(a, EDDY_ACK_VISIBILITY) < 2)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_string_equal(rig_op(&r, 0), "ChangeMessageVisibilityBatch");
    const char *body = eddy_fake_request_at(r.fake, 0)->body;
    assert_non_null(strstr(body, "43200"));
    assert_non_null(strstr(body, "\"rh-a\""));
    close_acker(&r, a);
    rig_close(&r);
}

/*
 * Backoffs and heartbeats wait linger_ms to fill a call (the linger is a
 * minute: the flush timer does not send them); a release queued behind
 * them takes them along flush_ms later.
 */
static void test_visibility_lingers_until_a_release(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a =
        open_acker(&r, (struct eddy_acker_config){.flush_ms = 1, .linger_ms = 60000});
    eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
    assert_int_equal(eddy_acker_visibility(a, "rh-b", 30, EDDY_ACK_BACKOFF), EDDY_OK);
    assert_int_equal(eddy_acker_visibility(a, "rh-h", 60, EDDY_ACK_HEARTBEAT), EDDY_OK);
    uv_timer_t wait;
    uv_timer_init(&r.loop, &wait);
    uv_timer_start(&wait, rig_tick, 30, 0);
    while (uv_is_active((uv_handle_t *)&wait))
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(eddy_fake_count(r.fake), 0);
    assert_int_equal(eddy_acker_visibility(a, "rh-r", 0, EDDY_ACK_RELEASE), EDDY_OK);
    while (sent(a, EDDY_ACK_VISIBILITY) < 3)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(eddy_fake_count(r.fake), 1);
    const char *body = eddy_fake_request_at(r.fake, 0)->body;
    assert_non_null(strstr(body, "\"rh-b\""));
    assert_non_null(strstr(body, "\"rh-r\""));
    uv_close((uv_handle_t *)&wait, NULL);
    close_acker(&r, a);
    rig_close(&r);
}

static void test_failed_entries(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a = open_acker(
        &r, (struct eddy_acker_config){.flush_ms = 1, .retry_base_ms = 1, .retry_cap_ms = 2});
    /* entry 0 ok, 1 gone for good, 2 a passing failure; then a failed call; then ok */
    eddy_fake_push_json(r.fake, 200,
                        "{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":["
                        "{\"Id\":\"1\",\"Code\":\"ReceiptHandleIsInvalid\",\"SenderFault\":true},"
                        "{\"Id\":\"2\",\"Code\":\"InternalError\",\"SenderFault\":false}]}");
    eddy_fake_push_status(r.fake, 500, NULL, "{\"__type\":\"InternalFailure\"}");
    eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
    assert_int_equal(eddy_acker_delete(a, "rh-0"), EDDY_OK);
    assert_int_equal(eddy_acker_delete(a, "rh-1"), EDDY_OK);
    assert_int_equal(eddy_acker_delete(a, "rh-2"), EDDY_OK);
    close_acker(&r, a);
    assert_int_equal(eddy_fake_count(r.fake), 3);
    for (size_t i = 1; i < 3; i++) {
        const char *body = eddy_fake_request_at(r.fake, i)->body;
        assert_non_null(strstr(body, "\"rh-2\""));
        assert_null(strstr(body, "\"rh-1\""));
        assert_null(strstr(body, "\"rh-0\""));
    }
    assert_int_equal(closed_stats.sent[EDDY_ACK_DELETE], 2);
    assert_int_equal(closed_stats.dropped[EDDY_ACK_DELETE], 1);
    rig_close(&r);
}

static void test_gives_up_after_max_attempts(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a = open_acker(
        &r, (struct eddy_acker_config){
                .flush_ms = 1, .max_attempts = 3, .retry_base_ms = 1, .retry_cap_ms = 2});
    for (int i = 0; i < 3; i++)
        eddy_fake_push_error(r.fake, EDDY_ENET);
    assert_int_equal(eddy_acker_delete(a, "rh-x"), EDDY_OK);
    close_acker(&r, a);
    assert_int_equal(eddy_fake_count(r.fake), 3);
    assert_int_equal(closed_stats.dropped[EDDY_ACK_DELETE], 1);
    assert_int_equal(closed_outstanding, 0);
    rig_close(&r);
}

static void test_refuses_long_handle_and_after_close(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a = open_acker(&r, (struct eddy_acker_config){0});
    char big[EDDY_ACK_HANDLE_MAX + 2];
    memset(big, 'h', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(eddy_acker_delete(a, big), EDDY_ELIMIT);
    closed = 0;
    eddy_acker_close(a, on_closed, a);
    assert_int_equal(eddy_acker_delete(a, "rh"), EDDY_ECANCELED);
    rig_run_until(&r, &closed, 1000);
    assert_true(closed);
    assert_int_equal(eddy_fake_count(r.fake), 0);
    rig_close(&r);
}

/*
 * An entry holds a handle of any length up to the limit, also when it is
 * reused for a longer one than it first held (entries are sized to their
 * handles): each call carries each handle whole.
 */
static void test_handles_of_any_length(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a = open_acker(&r, (struct eddy_acker_config){.flush_ms = 1});
    static char h[3][EDDY_ACK_HANDLE_MAX + 1];
    const size_t len[3] = {5, EDDY_ACK_HANDLE_MAX, 200};
    for (int i = 0; i < 3; i++) {
        memset(h[i], 'a' + i, len[i]);
        h[i][len[i]] = '\0';
        eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
        assert_int_equal(eddy_acker_delete(a, h[i]), EDDY_OK);
        while (sent(a, EDDY_ACK_DELETE) < (uint64_t)i + 1) /* the entry is free again */
            uv_run(&r.loop, UV_RUN_ONCE);
    }
    close_acker(&r, a);
    assert_int_equal(eddy_fake_count(r.fake), 3);
    for (size_t i = 0; i < 3; i++) {
        char quoted[sizeof h + 3];
        snprintf(quoted, sizeof quoted, "\"%s\"", h[i]);
        assert_non_null(strstr(eddy_fake_request_at(r.fake, i)->body, quoted));
    }
    rig_close(&r);
}

static size_t expected_n;
static size_t expected(void *ud)
{
    (void)ud;
    return expected_n;
}

/*
 * Deletes wait for the deletes expected soon: with seven more expected, the
 * visibility change queued after three deletes leaves on its own, and the
 * deletes leave with the seven that follow, in one full call; once fewer
 * are expected than would fill a batch, a partial one leaves. (The linger
 * is a minute: nothing here waits for it.)
 */
static void test_deletes_linger_to_fill(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a = open_acker(
        &r, (struct eddy_acker_config){.flush_ms = 1, .linger_ms = 60000, .expected = expected});
    expected_n = 7;
    for (int i = 0; i < 3; i++)
        eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
    delete_range(a, 0, 3);
    assert_int_equal(eddy_acker_visibility(a, "rh-v", 0, EDDY_ACK_RELEASE), EDDY_OK);
    while (sent(a, EDDY_ACK_VISIBILITY) < 1)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(rig_count(&r, "DeleteMessageBatch"), 0);
    delete_range(a, 3, 10);
    assert_int_equal(rig_count(&r, "DeleteMessageBatch"), 1);
    /* one more, held for the nine expected (the second visibility change
     * leaves past its due time); then fewer are expected: it leaves at once */
    for (int i = 0; i < 2; i++)
        eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
    expected_n = 9;
    assert_int_equal(eddy_acker_delete(a, "rh-10"), EDDY_OK);
    assert_int_equal(eddy_acker_visibility(a, "rh-w", 0, EDDY_ACK_RELEASE), EDDY_OK);
    while (sent(a, EDDY_ACK_VISIBILITY) < 2)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(rig_count(&r, "DeleteMessageBatch"), 1);
    expected_n = 6;
    assert_int_equal(eddy_acker_delete(a, "rh-11"), EDDY_OK);
    assert_int_equal(rig_count(&r, "DeleteMessageBatch"), 2);
    close_acker(&r, a);
    assert_int_equal(rig_count(&r, "DeleteMessageBatch"), 2);
    assert_int_equal(closed_stats.sent[EDDY_ACK_DELETE], 12);
    rig_close(&r);
}

/* How many requests hold needle in their body. */
static int bodies_with(struct rig *r, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < eddy_fake_count(r->fake); i++)
        n += strstr(eddy_fake_request_at(r->fake, i)->body, needle) != NULL;
    return n;
}

/*
 * A heartbeat that failed is not retried once its message was released or
 * deleted: sent after the release it would hide the message again for a
 * whole visibility timeout. Here rh-x's heartbeat failed and waits for its
 * retry, rh-y's is out when the release of rh-x and the delete of rh-y are
 * queued, and fails after.
 */
static void test_heartbeat_not_retried_after_release(void **state)
{
    (void)state;
    struct rig r;
    struct eddy_acker *a =
        open_acker(&r, (struct eddy_acker_config){
                           .flush_ms = 1, .linger_ms = 1, .retry_base_ms = 50, .retry_cap_ms = 60});
    eddy_fake_push_status(r.fake, 500, NULL, "{\"__type\":\"InternalFailure\"}");
    assert_int_equal(eddy_acker_visibility(a, "rh-x", 300, EDDY_ACK_HEARTBEAT), EDDY_OK);
    while (eddy_fake_count(r.fake) < 1 || eddy_fake_inflight(r.fake) > 0)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(eddy_acker_visibility(a, "rh-y", 300, EDDY_ACK_HEARTBEAT), EDDY_OK);
    while (eddy_fake_count(r.fake) < 2) /* no reply yet: it waits */
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(eddy_acker_visibility(a, "rh-x", 0, EDDY_ACK_RELEASE), EDDY_OK);
    assert_int_equal(eddy_acker_delete(a, "rh-y"), EDDY_OK);
    eddy_fake_push_status(r.fake, 500, NULL, "{\"__type\":\"InternalFailure\"}");
    for (int i = 0; i < 4; i++)
        eddy_fake_push_json(r.fake, 200, RIG_ALL_OK);
    close_acker(&r, a);
    assert_int_equal(bodies_with(&r, "\"VisibilityTimeout\":300"), 2); /* the first tries */
    assert_int_equal(eddy_fake_count(r.fake), 4);
    assert_int_equal(closed_stats.sent[EDDY_ACK_VISIBILITY], 1);
    assert_int_equal(closed_stats.sent[EDDY_ACK_DELETE], 1);
    assert_int_equal(closed_outstanding, 0);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_of_ten),
        cmocka_unit_test(test_flush_timer_and_visibility),
        cmocka_unit_test(test_visibility_lingers_until_a_release),
        cmocka_unit_test(test_failed_entries),
        cmocka_unit_test(test_gives_up_after_max_attempts),
        cmocka_unit_test(test_heartbeat_not_retried_after_release),
        cmocka_unit_test(test_refuses_long_handle_and_after_close),
        cmocka_unit_test(test_deletes_linger_to_fill),
        cmocka_unit_test(test_handles_of_any_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
