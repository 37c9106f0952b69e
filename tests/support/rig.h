/*
 * rig.h - the unit tests' AWS rig: a loop, the fake transport, static
 * credentials, the shared AWS context over them and an endpoint, with tiny
 * backoff delays. One rig for the JSON-protocol, service-client, worker,
 * processor and relay tests; what differs between them is an option:
 *
 *   clock   RIG_CLOCK_REAL (the loop's time), RIG_CLOCK_STEP (moves one
 *           second each time the wall clock is read, so each attempt is
 *           signed at a new time) or RIG_CLOCK_FAKE (r->fake_clock, moved by the
 *           test with eddy_clock_fake_advance)
 *   tick    a 1 ms timer, unreferenced so it never keeps the loop alive. Tests
 *           that step the loop with UV_RUN_ONCE need it: libuv runs due timers
 *           and then polls for I/O, blocking until the next timer; after the
 *           fake's 0 ms reply timers that could be a heartbeat seconds away.
 *   sqs     an SQS client over the rig (r->sqs)
 *
 * rig_init() is the JSON-protocol and service-client tests' rig, rig_init_sqs()
 * the acker and consumer tests'. Helpers a test does not use are static
 * inline, so they cost nothing there.
 */
#ifndef EDDY_TESTS_RIG_H
#define EDDY_TESTS_RIG_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aws/awscall.h"
#include "aws/credentials.h"
#include "base/clock.h"
#include "fake_transport.h"
#include "svc/sqs.h"

enum rig_clock { RIG_CLOCK_REAL, RIG_CLOCK_STEP, RIG_CLOCK_FAKE };

struct rig_opts {
    const char *token; /* the static credentials' session token, or NULL */
    unsigned max_attempts;
    uint64_t seed;
    unsigned backoff_base_ms, backoff_max_ms; /* 0: the AWS layer's defaults */
    const char *service;                      /* the endpoint's service name */
    enum rig_clock clock;
    bool tick;
    bool sqs;
};

struct rig {
    uv_loop_t loop;
    struct eddy_fake_transport *fake;
    struct eddy_creds *creds;
    struct eddy_clock_fake fake_clock; /* RIG_CLOCK_FAKE */
    int64_t now_ms;                    /* RIG_CLOCK_STEP */
    struct eddy_clock clock;           /* RIG_CLOCK_STEP */
    struct eddy_aws aws;
    struct eddy_endpoint ep;
    struct eddy_sqs sqs;
    uv_timer_t tick;
    struct rig_opts opts;
};

static inline uint64_t rig_mono(void *ud)
{
    return (uint64_t)((struct rig *)ud)->now_ms;
}

static inline int64_t rig_unix(void *ud)
{
    struct rig *r = ud;
    int64_t t = r->now_ms;
    r->now_ms += 1000;
    return t;
}

static inline void rig_tick(uv_timer_t *t)
{
    (void)t;
}

static inline void rig_open(struct rig *r, const struct rig_opts *o)
{
    memset(r, 0, sizeof *r);
    r->opts = *o;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    if (o->tick) {
        uv_timer_init(&r->loop, &r->tick);
        uv_timer_start(&r->tick, rig_tick, 1, 1);
        uv_unref((uv_handle_t *)&r->tick);
    }
    r->fake = eddy_fake_new(&r->loop);
    r->creds = eddy_creds_new_static(&r->loop, "AKIDEXAMPLE", "SECRETEXAMPLE", o->token);
    assert_non_null(r->creds);
    struct eddy_clock *clock = NULL;
    if (o->clock == RIG_CLOCK_STEP) {
        r->now_ms = 1700000000000; /* 2023-11-14T22:13:20Z */
        r->clock = (struct eddy_clock){r, rig_mono, rig_unix};
        clock = &r->clock;
    } else if (o->clock == RIG_CLOCK_FAKE) {
        eddy_clock_fake_init(&r->fake_clock, 1700000000000);
        clock = &r->fake_clock.clock;
    }
    struct eddy_aws_config cfg = {.loop = &r->loop,
                                  .transport = eddy_fake_transport(r->fake),
                                  .creds = r->creds,
                                  .clock = clock,
                                  .region = "us-east-1",
                                  .max_attempts = o->max_attempts,
                                  .seed = o->seed,
                                  .backoff_base_ms = o->backoff_base_ms,
                                  .backoff_max_ms = o->backoff_max_ms};
    struct eddy_error err = {0};
    assert_int_equal(eddy_aws_init(&r->aws, &cfg, &err), EDDY_OK);
    assert_int_equal(eddy_endpoint_parse("http://127.0.0.1:4566", o->service, &r->ep, &err),
                     EDDY_OK);
    if (o->sqs)
        assert_int_equal(eddy_sqs_init(&r->sqs, &r->aws, &r->ep, &err), EDDY_OK);
}

/* Close the fake transport and run the loop until its replies are delivered
 * (fakes that own service clients clean them up after this). */
static inline void rig_close_transport(struct rig *r)
{
    if (r->fake == NULL)
        return;
    eddy_fake_close(r->fake, NULL, NULL);
    r->fake = NULL;
}

/* Close everything and assert the loop closes. */
static inline void rig_close(struct rig *r)
{
    if (r->opts.sqs)
        eddy_sqs_cleanup(&r->sqs);
    rig_close_transport(r);
    eddy_creds_close(r->creds, NULL, NULL);
    eddy_endpoint_cleanup(&r->ep);
    eddy_aws_cleanup(&r->aws);
    if (r->opts.tick)
        uv_close((uv_handle_t *)&r->tick, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* The JSON-protocol and service-client tests' rig: the stepping clock, backoffs
 * of 1..4 ms. */
static inline void rig_init(struct rig *r, const char *token, unsigned max_attempts)
{
    rig_open(r, &(struct rig_opts){.token = token,
                                   .max_attempts = max_attempts,
                                   .seed = 42,
                                   .backoff_base_ms = 1,
                                   .backoff_max_ms = 4,
                                   .service = "test",
                                   .clock = RIG_CLOCK_STEP});
}

/* The acker and consumer tests' rig: an SQS client, one attempt a call, the
 * loop's own time and the 1 ms tick. */
#define RIG_QURL "http://127.0.0.1:4566/123456789012/q"
#define RIG_ALL_OK                                                                                 \
    "{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"1\"},{\"Id\":\"2\"},{\"Id\":\"3\"},{\"Id\":\"4\"}," \
    "{\"Id\":\"5\"},{\"Id\":\"6\"},{\"Id\":\"7\"},{\"Id\":\"8\"},{\"Id\":\"9\"}]}"

static inline void rig_init_sqs(struct rig *r)
{
    rig_open(r, &(struct rig_opts){.max_attempts = 1,
                                   .seed = 7,
                                   .backoff_base_ms = 1,
                                   .backoff_max_ms = 2,
                                   .service = "sqs",
                                   .tick = true,
                                   .sqs = true});
}

/* The recorded body of request i, parsed (cJSON_Delete it). */
static inline cJSON *sent_json(struct rig *r, size_t i)
{
    const struct eddy_fake_request *q = eddy_fake_request_at(r->fake, i);
    assert_non_null(q);
    cJSON *j = cJSON_Parse(q->body);
    assert_non_null(j);
    return j;
}

static inline const char *jget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double jnumber(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
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
