/*
 * retry.h - the AWS SDKs' "standard" retry mode, as pure functions.
 *
 * What it decides, not when: the caller (the AWS call layer) classifies each
 * failed attempt, asks whether to retry and how long to wait, and arms its
 * own timer. Randomness comes from a struct eddy_rng the caller passes in,
 * so tests and replays are deterministic; nothing here reads the clock or
 * the environment except eddy_retry_max_attempts_env.
 *
 * Standard mode, as the SDKs define it:
 * - at most AWS_MAX_ATTEMPTS attempts per call (default 3, first included);
 * - retryable: throttling error codes, transient error codes, HTTP 5xx (and
 *   429), connection errors and timeouts;
 * - backoff with full jitter: the n-th retry waits rand[0,1) * min(1 s * 2^(n-1),
 *   20 s);
 * - a retry quota shared by all calls of a client (a token bucket of 500):
 *   a retry takes 5 tokens (10 after a timeout); an attempt that succeeds
 *   gives back what its call took for its last retry, or 1 token when the
 *   call needed no retry; no retry while the bucket lacks the tokens. The
 *   quota stops a client from multiplying its load on a failing service.
 */
#ifndef EDDY_AWS_RETRY_H
#define EDDY_AWS_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "eddy/rng.h"

#define EDDY_RETRY_MAX_ATTEMPTS_DEFAULT 3u
#define EDDY_RETRY_MAX_ATTEMPTS_LIMIT 100u /* largest AWS_MAX_ATTEMPTS accepted */
#define EDDY_RETRY_QUOTA_INITIAL 500u
#define EDDY_RETRY_COST 5u
#define EDDY_RETRY_TIMEOUT_COST 10u
#define EDDY_RETRY_NO_RETRY_REFUND 1u
#define EDDY_RETRY_BASE_MS 1000u
#define EDDY_RETRY_CAP_MS 20000u

enum eddy_retry_class {
    EDDY_RETRY_NO,        /* success, or a failure retrying cannot fix */
    EDDY_RETRY_THROTTLE,  /* the service asked us to slow down */
    EDDY_RETRY_TRANSIENT, /* 5xx, a transient error code, a broken connection */
    EDDY_RETRY_TIMEOUT,   /* the attempt timed out (costs more quota) */
};

/* What one attempt's outcome means: the error a call that stops on it
 * returns, and how standard mode retries it. */
struct eddy_aws_class {
    eddy_err err;
    enum eddy_retry_class retry;
};

/*
 * Classify one attempt's outcome, from one table of codes (retry.c).
 * transport_err is what the HTTP layer reported (EDDY_OK when a response
 * arrived); http_status and error_code (the AWS error code, NULL or "" when
 * none) describe that response. A code may carry a namespace
 * ("com.amazonaws.dynamodb.v20120810#ThrottlingException") or a query-error
 * suffix ("RequestThrottled;Sender"); both are ignored.
 *   err: EDDY_OK (2xx), EDDY_ETHROTTLED (a throttling code, HTTP 429),
 *   EDDY_ETRANSIENT (a transient code, 5xx), EDDY_ECONDITION, EDDY_ETXN_CANCELED,
 *   EDDY_EAUTH (an identity or signature code, 401, 403), EDDY_EAWS (other
 *   codes), or the transport's error (EDDY_ENET, EDDY_ETIMEOUT, ...).
 *   retry: THROTTLE, TRANSIENT (also a broken connection), TIMEOUT, or NO.
 */
struct eddy_aws_class eddy_aws_classify(eddy_err transport_err, long http_status,
                                        const char *error_code);
/* True when code (e.g. a DynamoDB CancellationReasons code) asks to slow down. */
bool eddy_aws_code_throttles(const char *code);
/* "throttle", "transient", "timeout" or "no", for logs and metrics. */
const char *eddy_retry_class_name(enum eddy_retry_class cls);

/* The quota: one per client (per service endpoint), shared by its calls. */
struct eddy_retry_quota {
    uint32_t available;
    uint32_t capacity;
};
void eddy_retry_quota_init(struct eddy_retry_quota *q);

/* Why eddy_retry_decide said no. */
enum eddy_retry_stop {
    EDDY_RETRY_STOP_NONE,          /* it said yes */
    EDDY_RETRY_STOP_NOT_RETRYABLE, /* class EDDY_RETRY_NO */
    EDDY_RETRY_STOP_MAX_ATTEMPTS,  /* the attempts are used up */
    EDDY_RETRY_STOP_QUOTA,         /* the quota lacks the tokens */
};
const char *eddy_retry_stop_name(enum eddy_retry_stop stop);

/* Per call: the state of one logical request across its attempts. Zeroed
 * (eddy_retry_call_init) before the first attempt. */
struct eddy_retry_call {
    unsigned failed;           /* attempts that failed so far */
    uint32_t last_cost;        /* tokens taken for the latest retry, 0 if none */
    enum eddy_retry_stop stop; /* set when eddy_retry_decide says no */
};
void eddy_retry_call_init(struct eddy_retry_call *c);

/*
 * After a failed attempt of class cls: true to retry after *delay_ms (and
 * the tokens are taken from q), false to give up (c->stop says why). Counts
 * the failed attempt in c. max_attempts includes the first attempt; 0 means
 * the default.
 */
bool eddy_retry_decide(struct eddy_retry_quota *q, struct eddy_retry_call *c,
                       enum eddy_retry_class cls, unsigned max_attempts, struct eddy_rng *rng,
                       uint32_t *delay_ms);

/* After an attempt that succeeded: refund the quota. */
void eddy_retry_on_success(struct eddy_retry_quota *q, const struct eddy_retry_call *c);

/*
 * Exponential backoff with full jitter (also for OCC conflicts, the relay,
 * credential refresh): uniform in [0, min(base_ms * 2^attempt, cap_ms)),
 * attempt counting from 0 for the first retry. Never more than cap_ms.
 */
uint32_t eddy_backoff_full_jitter(struct eddy_rng *rng, unsigned attempt, uint32_t base_ms,
                                  uint32_t cap_ms);
/* The same ceiling with equal jitter: uniform in [ceiling / 2, ceiling], for
 * waits that must not come back at once (the breaker's probes, the
 * consumer's contention pauses). */
uint32_t eddy_backoff_equal_jitter(struct eddy_rng *rng, unsigned attempt, uint32_t base_ms,
                                   uint32_t cap_ms);

/*
 * Parse an AWS_MAX_ATTEMPTS value: a whole number from 1 to
 * EDDY_RETRY_MAX_ATTEMPTS_LIMIT; NULL or "" gives the default. Anything else
 * is EDDY_ECONFIG with a detail naming the variable and the value.
 */
EDDY_MUST_USE eddy_err eddy_retry_parse_max_attempts(const char *text, unsigned *out,
                                                     struct eddy_error *err);
/* The same, reading AWS_MAX_ATTEMPTS from the environment. */
EDDY_MUST_USE eddy_err eddy_retry_max_attempts_env(unsigned *out, struct eddy_error *err);

#endif
