/*
 * worker_rig.h - a loop, the fake transport and an SQS client over it, shared
 * by the acker and consumer tests.
 *
 * The tests step the loop with UV_RUN_ONCE until what they wait for happens.
 * libuv runs due timers first and then polls for I/O, blocking until the next
 * timer: after the fake's 0 ms reply timers, that would be the consumer's
 * heartbeat, seconds away. A 1 ms tick, unreferenced so it never keeps the
 * loop alive, bounds each step instead.
 */
#ifndef EDDY_TESTS_WORKER_RIG_H
#define EDDY_TESTS_WORKER_RIG_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "aws/credentials.h"
#include "fake_transport.h"
#include "svc/sqs.h"

#define QURL "http://127.0.0.1:4566/123456789012/q"
#define ALL_OK                                                                                     \
    "{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"1\"},{\"Id\":\"2\"},{\"Id\":\"3\"},{\"Id\":\"4\"}," \
    "{\"Id\":\"5\"},{\"Id\":\"6\"},{\"Id\":\"7\"},{\"Id\":\"8\"},{\"Id\":\"9\"}]}"

struct rig {
    uv_loop_t loop;
    struct eddy_fake_transport *fake;
    struct eddy_creds *creds;
    struct eddy_aws aws;
    struct eddy_endpoint ep;
    struct eddy_sqs sqs;
    uv_timer_t tick;
};

static inline void rig_tick(uv_timer_t *t)
{
    (void)t;
}

static inline void rig_init(struct rig *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    uv_timer_init(&r->loop, &r->tick);
    uv_timer_start(&r->tick, rig_tick, 1, 1);
    uv_unref((uv_handle_t *)&r->tick);
    r->fake = eddy_fake_new(&r->loop);
    r->creds = eddy_creds_new_static(&r->loop, "AKIDEXAMPLE", "SECRETEXAMPLE", NULL);
    struct eddy_aws_config cfg = {.loop = &r->loop,
                                  .transport = eddy_fake_transport(r->fake),
                                  .creds = r->creds,
                                  .region = "us-east-1",
                                  .max_attempts = 1,
                                  .seed = 7,
                                  .backoff_base_ms = 1,
                                  .backoff_max_ms = 2};
    struct eddy_error err = {0};
    assert_int_equal(eddy_aws_init(&r->aws, &cfg, &err), EDDY_OK);
    assert_int_equal(eddy_endpoint_parse("http://127.0.0.1:4566", "sqs", &r->ep, &err), EDDY_OK);
    assert_int_equal(eddy_sqs_init(&r->sqs, &r->aws, &r->ep, &err), EDDY_OK);
}

static inline void rig_close(struct rig *r)
{
    eddy_sqs_cleanup(&r->sqs);
    eddy_fake_close(r->fake, NULL, NULL);
    eddy_creds_close(r->creds);
    eddy_endpoint_cleanup(&r->ep);
    eddy_aws_cleanup(&r->aws);
    uv_close((uv_handle_t *)&r->tick, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* The n-th request's X-Amz-Target operation ("AmazonSQS.DeleteMessageBatch" -> ...). */
static inline const char *rig_op(struct rig *r, size_t i)
{
    const char *t = eddy_fake_request_header(eddy_fake_request_at(r->fake, i), "X-Amz-Target");
    const char *dot = t ? strchr(t, '.') : NULL;
    return dot ? dot + 1 : "";
}

/* Requests whose operation is op. */
static inline size_t rig_count(struct rig *r, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < eddy_fake_count(r->fake); i++)
        n += strcmp(rig_op(r, i), op) == 0;
    return n;
}

/* Run the loop a turn at a time until *flag or the turns run out. */
static inline void rig_run_until(struct rig *r, const int *flag, int turns)
{
    while (!*flag && turns-- > 0)
        uv_run(&r->loop, UV_RUN_ONCE);
}

#endif
