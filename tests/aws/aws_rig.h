/* aws_rig.h - the rig the JSON-protocol and service-client unit tests share: a
 * loop, the fake transport, static credentials, a clock that moves one second
 * each time it is read (so each attempt is signed at a new time), tiny backoff
 * delays, and helpers to read the recorded request bodies. Include after
 * cmocka.h. Helpers a test does not use are static inline, so they cost
 * nothing there. */
#ifndef EDDY_TESTS_AWS_RIG_H
#define EDDY_TESTS_AWS_RIG_H

#include <string.h>

#include "aws/awscall.h"
#include "fake_transport.h"

/* The test rig: a loop, the fake transport, static credentials, a clock
 * that moves one second each time it is read (so each attempt is signed at
 * a new time), and tiny backoff delays. */
struct rig {
    uv_loop_t loop;
    struct eddy_fake_transport *fake;
    struct eddy_creds *creds;
    int64_t now_ms;
    struct eddy_clock clock;
    struct eddy_aws aws;
    struct eddy_endpoint ep;
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

static inline void rig_init(struct rig *r, const char *token, unsigned max_attempts)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    r->fake = eddy_fake_new(&r->loop);
    r->creds = eddy_creds_new_static(&r->loop, "AKIDEXAMPLE", "SECRETEXAMPLE", token);
    assert_non_null(r->creds);
    r->now_ms = 1700000000000; /* 2023-11-14T22:13:20Z */
    r->clock = (struct eddy_clock){r, rig_mono, rig_unix};
    struct eddy_aws_config cfg = {.loop = &r->loop,
                                  .transport = eddy_fake_transport(r->fake),
                                  .creds = r->creds,
                                  .clock = &r->clock,
                                  .region = "us-east-1",
                                  .max_attempts = max_attempts,
                                  .seed = 42,
                                  .backoff_base_ms = 1,
                                  .backoff_max_ms = 4};
    struct eddy_error err = {0};
    assert_int_equal(eddy_aws_init(&r->aws, &cfg, &err), EDDY_OK);
    assert_int_equal(eddy_endpoint_parse("http://127.0.0.1:4566", "test", &r->ep, &err), EDDY_OK);
}

static inline void rig_close(struct rig *r)
{
    eddy_fake_close(r->fake, NULL, NULL);
    eddy_creds_close(r->creds);
    eddy_endpoint_cleanup(&r->ep);
    eddy_aws_cleanup(&r->aws);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
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

#endif
