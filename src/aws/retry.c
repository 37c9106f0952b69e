/*
 * retry.c - the AWS SDKs' standard retry mode (see retry.h).
 *
 * The error code lists are the SDKs' (botocore's retries/standard.py and
 * the Go SDK v2's retry package): a service that answers with one of these
 * codes is saying "later", whatever the HTTP status.
 */
#include "aws/retry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const throttle_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

static const char *const transient_codes[] = {
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "IDPCommunicationError",
};

static bool in_list(const char *const *list, size_t n, const char *code, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], code, len) == 0)
            return true;
    return false;
}

bool eddy_retry_throttling_code(const char *code, size_t len)
{
    return in_list(throttle_codes, sizeof throttle_codes / sizeof *throttle_codes, code, len);
}

enum eddy_retry_class eddy_retry_classify(eddy_err transport_err, long http_status,
                                          const char *error_code)
{
    if (transport_err == EDDY_ETIMEOUT)
        return EDDY_RETRY_TIMEOUT;
    if (transport_err == EDDY_ENET)
        return EDDY_RETRY_TRANSIENT;
    if (transport_err != EDDY_OK)
        return EDDY_RETRY_NO; /* canceled, over a limit: retrying gives the same */
    if (error_code && error_code[0]) {
        /* "ns#Code" -> "Code"; "Code;Sender" or "Code:..." -> "Code" */
        const char *hash = strrchr(error_code, '#');
        const char *code = hash ? hash + 1 : error_code;
        size_t len = strcspn(code, ";:");
        if (eddy_retry_throttling_code(code, len))
            return EDDY_RETRY_THROTTLE;
        if (in_list(transient_codes, sizeof transient_codes / sizeof *transient_codes, code, len))
            return EDDY_RETRY_TRANSIENT;
    }
    switch (http_status) {
    case 500:
    case 502:
    case 503:
    case 504:
        return EDDY_RETRY_TRANSIENT;
    case 429: /* Too Many Requests, whatever the body says */
        return EDDY_RETRY_THROTTLE;
    default:
        return EDDY_RETRY_NO;
    }
}

const char *eddy_retry_class_name(enum eddy_retry_class cls)
{
    switch (cls) {
    case EDDY_RETRY_THROTTLE:
        return "throttle";
    case EDDY_RETRY_TRANSIENT:
        return "transient";
    case EDDY_RETRY_TIMEOUT:
        return "timeout";
    case EDDY_RETRY_NO:
    default:
        return "no";
    }
}

eddy_err eddy_retry_class_err(enum eddy_retry_class cls)
{
    switch (cls) {
    case EDDY_RETRY_THROTTLE:
        return EDDY_ETHROTTLED;
    case EDDY_RETRY_TRANSIENT:
        return EDDY_ETRANSIENT;
    case EDDY_RETRY_TIMEOUT:
        return EDDY_ETIMEOUT;
    case EDDY_RETRY_NO:
    default:
        return EDDY_OK;
    }
}

const char *eddy_retry_stop_name(enum eddy_retry_stop stop)
{
    switch (stop) {
    case EDDY_RETRY_STOP_NOT_RETRYABLE:
        return "not retryable";
    case EDDY_RETRY_STOP_MAX_ATTEMPTS:
        return "max attempts reached";
    case EDDY_RETRY_STOP_QUOTA:
        return "retry quota exhausted";
    case EDDY_RETRY_STOP_NONE:
    default:
        return "none";
    }
}

void eddy_retry_quota_init(struct eddy_retry_quota *q)
{
    q->available = EDDY_RETRY_QUOTA_INITIAL;
    q->capacity = EDDY_RETRY_QUOTA_INITIAL;
}

void eddy_retry_call_init(struct eddy_retry_call *c)
{
    c->failed = 0;
    c->last_cost = 0;
    c->stop = EDDY_RETRY_STOP_NONE;
}

uint32_t eddy_backoff_full_jitter(struct eddy_rng *rng, unsigned attempt, uint32_t base_ms,
                                  uint32_t cap_ms)
{
    uint32_t ceiling = cap_ms;
    /* base * 2^attempt, computed without overflowing past the cap */
    if (attempt < 32 && base_ms <= (cap_ms >> attempt))
        ceiling = base_ms << attempt;
    if (ceiling == 0)
        return 0;
    return (uint32_t)eddy_rng_below(rng, ceiling);
}

bool eddy_retry_decide(struct eddy_retry_quota *q, struct eddy_retry_call *c,
                       enum eddy_retry_class cls, unsigned max_attempts, struct eddy_rng *rng,
                       uint32_t *delay_ms)
{
    if (max_attempts == 0)
        max_attempts = EDDY_RETRY_MAX_ATTEMPTS_DEFAULT;
    c->failed++;
    *delay_ms = 0;
    if (cls == EDDY_RETRY_NO) {
        c->stop = EDDY_RETRY_STOP_NOT_RETRYABLE;
        return false;
    }
    if (c->failed >= max_attempts) {
        c->stop = EDDY_RETRY_STOP_MAX_ATTEMPTS;
        return false;
    }
    uint32_t cost = cls == EDDY_RETRY_TIMEOUT ? EDDY_RETRY_TIMEOUT_COST : EDDY_RETRY_COST;
    if (q->available < cost) {
        c->stop = EDDY_RETRY_STOP_QUOTA;
        return false;
    }
    q->available -= cost;
    c->last_cost = cost;
    c->stop = EDDY_RETRY_STOP_NONE;
    *delay_ms = eddy_backoff_full_jitter(rng, c->failed - 1, EDDY_RETRY_BASE_MS, EDDY_RETRY_CAP_MS);
    return true;
}

void eddy_retry_on_success(struct eddy_retry_quota *q, const struct eddy_retry_call *c)
{
    uint32_t refund = c->last_cost ? c->last_cost : EDDY_RETRY_NO_RETRY_REFUND;
    uint32_t room = q->capacity - q->available;
    q->available += refund < room ? refund : room;
}

eddy_err eddy_retry_parse_max_attempts(const char *text, unsigned *out, struct eddy_error *err)
{
    if (text == NULL || text[0] == '\0') {
        *out = EDDY_RETRY_MAX_ATTEMPTS_DEFAULT;
        return EDDY_OK;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    /* strtoul accepts leading blanks and a sign; a setting should not. */
    bool digits_only = text[0] >= '0' && text[0] <= '9' && *end == '\0';
    if (!digits_only || errno != 0 || v < 1 || v > EDDY_RETRY_MAX_ATTEMPTS_LIMIT)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "AWS_MAX_ATTEMPTS: \"%.64s\" is not a whole number from 1 to %u",
                              text, EDDY_RETRY_MAX_ATTEMPTS_LIMIT);
    *out = (unsigned)v;
    return EDDY_OK;
}

eddy_err eddy_retry_max_attempts_env(unsigned *out, struct eddy_error *err)
{
    return eddy_retry_parse_max_attempts(getenv("AWS_MAX_ATTEMPTS"), out, err);
}
